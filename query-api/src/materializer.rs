//! The materializer: consumes the image, analysis, user, usage, consent and institution topics into the
//! catalog's query-first tables, one store transaction per fetched batch.
//!
//! Offsets are stored only after a batch is applied; a crash replays the
//! batch and the catalog skips the event ids it already has. A message that
//! does not decode is counted, logged by reason (never payload) and skipped:
//! it cannot stop a partition.

use alpes_platform::kafka::projector::Projection;
use alpes_platform::retry::retry;
use alpes_platform::shutdown::Shutdown;
use alpes_platform::store::{CatalogEvent, CatalogStore};
use alpes_schemas::{
    topics, AnalisisCompletado, Codec, ConsentimientoCambiado, EventoUsoDatos, ImagenAnonimizada, ImagenRechazada, ImagenRegistrada,
    InstitucionActualizada, UsuarioRegistrado,
};
use async_trait::async_trait;
use std::sync::Arc;

/// The consumer group of the materializer.
pub const GROUP: &str = "alpes-query-materializer";

/// The topics it reads.
pub const TOPICS: [&str; 8] = [
    topics::IMAGES_REGISTERED,
    topics::IMAGES_ANONYMIZED,
    topics::IMAGES_REJECTED,
    topics::IMAGES_ANALYZED,
    topics::USERS,
    topics::USAGE,
    topics::CONSENT,
    topics::INSTITUTIONS,
];

/// The most events applied in one store transaction.
pub const BATCH: usize = 1024;

/// Decodes a message of `topic`; `Err` is a reason code.
pub async fn decode(codec: &Codec, topic: &str, payload: &[u8]) -> Result<CatalogEvent, &'static str> {
    let event = match topic {
        topics::IMAGES_REGISTERED => CatalogEvent::Registered(codec.decode::<ImagenRegistrada>(payload).await.map_err(|e| e.reason())?),
        topics::IMAGES_ANONYMIZED => {
            CatalogEvent::Anonymized(Box::new(codec.decode::<ImagenAnonimizada>(payload).await.map_err(|e| e.reason())?))
        }
        topics::IMAGES_REJECTED => CatalogEvent::Rejected(codec.decode::<ImagenRechazada>(payload).await.map_err(|e| e.reason())?),
        topics::IMAGES_ANALYZED => {
            CatalogEvent::Analyzed(Box::new(codec.decode::<AnalisisCompletado>(payload).await.map_err(|e| e.reason())?))
        }
        topics::USERS => CatalogEvent::User(codec.decode::<UsuarioRegistrado>(payload).await.map_err(|e| e.reason())?),
        topics::USAGE => CatalogEvent::Usage(codec.decode::<EventoUsoDatos>(payload).await.map_err(|e| e.reason())?),
        topics::CONSENT => CatalogEvent::Consent(codec.decode::<ConsentimientoCambiado>(payload).await.map_err(|e| e.reason())?),
        topics::INSTITUTIONS => CatalogEvent::Institution(codec.decode::<InstitucionActualizada>(payload).await.map_err(|e| e.reason())?),
        _ => return Err("unexpected_topic"),
    };
    Ok(event)
}

/// The catalog as a projection of `TOPICS` (run it with
/// [`alpes_platform::kafka::projector::run_projection`] in [`GROUP`]).
#[derive(Debug)]
pub struct Materializer {
    codec: Codec,
    catalog: Arc<dyn CatalogStore>,
}

impl Materializer {
    /// Events decoded with `codec`, applied to `catalog`.
    pub fn new(codec: Codec, catalog: Arc<dyn CatalogStore>) -> Materializer {
        Materializer { codec, catalog }
    }
}

#[async_trait]
impl Projection for Materializer {
    type Item = CatalogEvent;
    const TOPICS: &'static [&'static str] = &TOPICS;
    const BATCH: usize = BATCH;

    async fn decode(&self, topic: &str, payload: &[u8]) -> Result<Option<CatalogEvent>, &'static str> {
        decode(&self.codec, topic, payload).await.map(Some)
    }

    async fn apply(&self, batch: Vec<CatalogEvent>, stop: &Shutdown) -> bool {
        retry(stop, "apply a catalog batch", || self.catalog.apply(batch.clone()))
            .await
            .is_ok()
    }
}
