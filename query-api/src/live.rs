//! Image changes as they happen, for the live views (`GET /eventos/imagenes`): a projection of
//! the image topics into an in-process broadcast, read in a consumer group of this instance's own
//! ([`group`]), as the audit projector is. The materializer's group is shared by the replicas,
//! each seeing some partitions; a stream answered by one replica must see every change.
//!
//! A change carries the image's id, provider, new state and, for a rejection, its reason code:
//! never a payload value, never PHI. Nothing is stored; a subscriber that falls more than
//! [`CAPACITY`] changes behind is told how many it missed and reloads its list. What the group
//! replays from before the process started (more than [`FRESH_MS`] old) is not sent. [`Live::close`]
//! (on shutdown) ends every stream, so the listener's graceful stop is not held open by them.

use alpes_platform::kafka::projector::Projection;
use alpes_platform::shutdown::Shutdown;
use alpes_platform::store::{CatalogEvent, Estado};
use alpes_schemas::{topics, Codec};
use async_trait::async_trait;
use serde::Serialize;
use std::sync::Arc;
use tokio::sync::{broadcast, watch};
use utoipa::ToSchema;

/// The prefix of the live projection's consumer group.
pub const GROUP_PREFIX: &str = "alpes-live";

/// The consumer group of the live projection of the instance `instance`.
pub fn group(instance: &str) -> String {
    format!("{GROUP_PREFIX}-{instance}")
}

/// How many changes a subscriber may fall behind before it misses some.
pub const CAPACITY: usize = 4096;

/// The image topics the live views follow.
pub const TOPICS: [&str; 3] = [topics::IMAGES_REGISTERED, topics::IMAGES_ANONYMIZED, topics::IMAGES_REJECTED];

/// One image's change of state (`event: imagen` on the stream).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(as = CambioImagen)]
pub struct CambioImagen {
    /// The image.
    pub id: String,
    /// Its provider.
    pub proveedor_id: String,
    /// Its state after the change.
    #[schema(value_type = Estado)]
    pub estado: Estado,
    /// The DICOM Modality once anonymized, else the provider's `tipo_imagen`.
    pub modalidad: Option<String>,
    /// The provider's body region label.
    pub region_anatomica: Option<String>,
    /// A rejection's reason code.
    pub motivo_rechazo: Option<String>,
    /// When the change happened (ms since the epoch).
    pub ocurrido_at: i64,
}

/// A message of an image topic as a change, decoded as the materializer decodes it (one mapping
/// of topics to event types); `None` for a rejection of no image (nothing to show).
pub async fn decode(codec: &Codec, topic: &str, payload: &[u8]) -> Result<Option<CambioImagen>, &'static str> {
    Ok(match crate::materializer::decode(codec, topic, payload).await? {
        CatalogEvent::Registered(e) => Some(CambioImagen {
            id: e.image_id,
            proveedor_id: e.provider_id,
            estado: Estado::Registrada,
            modalidad: e.tipo_imagen,
            region_anatomica: e.region_anatomica,
            motivo_rechazo: None,
            ocurrido_at: e.occurred_at,
        }),
        CatalogEvent::Anonymized(e) => Some(CambioImagen {
            id: e.image_id,
            proveedor_id: e.provider_id,
            estado: Estado::Anonimizada,
            modalidad: e.modality.or(e.tipo_imagen),
            region_anatomica: e.region_anatomica,
            motivo_rechazo: None,
            ocurrido_at: e.occurred_at,
        }),
        CatalogEvent::Rejected(e) => e.image_id.zip(e.provider_id).map(|(id, proveedor_id)| CambioImagen {
            id,
            proveedor_id,
            estado: Estado::Rechazada,
            modalidad: None,
            region_anatomica: None,
            motivo_rechazo: Some(e.reason),
            ocurrido_at: e.occurred_at,
        }),
        _ => return Err("unexpected_topic"),
    })
}

/// The changes' broadcast, shared by the projection and the streams.
#[derive(Debug, Clone)]
pub struct Live {
    changes: broadcast::Sender<Arc<CambioImagen>>,
    closed: watch::Sender<bool>,
}

impl Default for Live {
    fn default() -> Self {
        Live {
            changes: broadcast::channel(CAPACITY).0,
            closed: watch::channel(false).0,
        }
    }
}

impl Live {
    /// The changes from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<CambioImagen>> {
        self.changes.subscribe()
    }

    /// Resolves once [`Live::close`] was called (at once if it was).
    pub fn closed(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.closed.subscribe();
        async move {
            let _ = rx.wait_for(|c| *c).await;
        }
    }

    /// Ends every stream.
    pub fn close(&self) {
        self.closed.send_replace(true);
    }

    /// How many streams are open.
    pub fn subscribers(&self) -> usize {
        self.changes.receiver_count()
    }
}

/// How far before the projection started a change may have happened and still be sent: a new
/// instance's group starts at the topics' earliest offsets, and what it replays then is history,
/// not news.
pub const FRESH_MS: i64 = 60_000;

/// The image topics into [`Live`] (run it with
/// [`alpes_platform::kafka::projector::run_projection`] in [`group`]).
#[derive(Debug)]
pub struct Projector {
    codec: Codec,
    live: Live,
    /// Changes that happened before this (ms since the epoch) are not sent.
    since: i64,
}

impl Projector {
    /// Changes decoded with `codec`, sent to `live`'s subscribers if they happened at most
    /// [`FRESH_MS`] before now.
    pub fn new(codec: Codec, live: Live) -> Projector {
        Projector {
            codec,
            live,
            since: alpes_schemas::now_millis() - FRESH_MS,
        }
    }
}

#[async_trait]
impl Projection for Projector {
    type Item = CambioImagen;
    const TOPICS: &'static [&'static str] = &TOPICS;
    const BATCH: usize = 1024;

    async fn decode(&self, topic: &str, payload: &[u8]) -> Result<Option<CambioImagen>, &'static str> {
        decode(&self.codec, topic, payload).await
    }

    async fn apply(&self, batch: Vec<CambioImagen>, _stop: &Shutdown) -> bool {
        for change in batch.into_iter().filter(|c| c.ocurrido_at >= self.since) {
            // No subscriber is not an error: nobody is watching.
            let _ = self.live.changes.send(Arc::new(change));
        }
        true
    }
}
