//! One step shared by every upload route: a stored blob becomes a registered
//! image and an `ImagenRegistrada` on the log, exactly once per provider and
//! content (or idempotency key).
//!
//! The event is produced only after the blob is durable and the image is in
//! the store. If the broker does not acknowledge, the request is forgotten and
//! the caller answers 503; the blob is deleted only where that is safe (see
//! [`forget_blob`]).

use crate::profile::UploadMeta;
use crate::IngestState;
use alpes_anonymizer::probe::MediaKind;
use alpes_platform::audit::RequestContext;
use alpes_platform::blobs::StoredBlob;
use alpes_platform::http::ApiError;
use alpes_platform::store::{Claim, ImageRow, NewImage};
use alpes_schemas::{deterministic_event_id, now_millis, ImagenRegistrada, Profile};
use serde::Serialize;
use utoipa::ToSchema;

/// Where an upload came from, as recorded in the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `POST /imagenes` with a DICOM, PNG or JPEG body.
    Rest,
    /// `POST /imagenes` with `multipart/form-data`.
    Multipart,
    /// STOW-RS.
    Stow,
    /// DICOM C-STORE, from a mapped calling AE title (the `alpes-dimse` listener).
    Dimse,
    /// An import job (`POST /importaciones`), run by the `alpes-importer` importer.
    Import,
    /// `POST /anonimizar/{id}`.
    Reanonymize,
}

impl Source {
    fn as_str(self) -> &'static str {
        match self {
            Source::Rest => "rest",
            Source::Multipart => "multipart",
            Source::Stow => "stow",
            Source::Dimse => "dimse",
            Source::Import => "import",
            Source::Reanonymize => "reanonymize",
        }
    }
}

/// What a client is told about one registered image; on the wire in the API's vocabulary
/// (`solicitud_id`, `tamano_bytes`, `tipo_medio`, `duplicada`), with the names before it
/// (`request_id`, `size`, `media_type`, `duplicate`) until
/// [`alpes_platform::openapi::DEPRECATED_UNTIL`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registered {
    /// The image id.
    pub id: String,
    /// The anonymization request id.
    pub request_id: Option<String>,
    /// sha256 of the uploaded bytes.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// The media type detected.
    pub media_type: String,
    /// True when the image was already registered (same bytes or idempotency key): no new event.
    pub duplicate: bool,
}

impl Serialize for Registered {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Registrada {
            id: &self.id,
            solicitud_id: self.request_id.as_deref(),
            sha256: &self.sha256,
            tamano_bytes: self.size,
            tipo_medio: &self.media_type,
            duplicada: self.duplicate,
            request_id: self.request_id.as_deref(),
            size: self.size,
            media_type: &self.media_type,
            duplicate: self.duplicate,
        }
        .serialize(s)
    }
}

/// [`Registered`] on the wire.
#[derive(Serialize, ToSchema)]
#[schema(as = Registered)]
pub(crate) struct Registrada<'a> {
    /// The image id.
    id: &'a str,
    /// The anonymization request id; null for a duplicate.
    solicitud_id: Option<&'a str>,
    #[schema(pattern = "^[0-9a-f]{64}$")]
    sha256: &'a str,
    tamano_bytes: u64,
    #[schema(schema_with = alpes_platform::openapi::image_media_types)]
    tipo_medio: &'a str,
    /// The image was already registered: no new event.
    duplicada: bool,
    // Deprecated names.
    #[schema(deprecated)]
    request_id: Option<&'a str>,
    #[schema(deprecated)]
    size: u64,
    #[schema(schema_with = crate::openapi::old_media_types)]
    media_type: &'a str,
    #[schema(deprecated)]
    duplicate: bool,
}

fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// `(image id, anonymization request id)`.
type Ids<'a> = (&'a str, &'a str);

fn event(
    actor: &str,
    (image_id, request_id): Ids<'_>,
    provider: &str,
    blob: (&str, &str, u64, &str),
    meta: &UploadMeta,
    source: Source,
    (http_request_id, institucion_id): (Option<String>, Option<String>),
) -> ImagenRegistrada {
    let (blob_key, sha256, size, media_type) = blob;
    ImagenRegistrada {
        event_id: deterministic_event_id("ImagenRegistrada", &[request_id]),
        occurred_at: now_millis(),
        actor: actor.to_owned(),
        image_id: image_id.to_owned(),
        provider_id: provider.to_owned(),
        blob_key: blob_key.to_owned(),
        sha256: sha256.to_owned(),
        size_bytes: size as i64,
        media_type: media_type.to_owned(),
        profile: meta.profile.clone(),
        source: source.as_str().to_owned(),
        request_id: request_id.to_owned(),
        tipo_imagen: meta.tipo_imagen.clone(),
        region_anatomica: meta.region_anatomica.clone(),
        http_request_id,
        institucion_id,
    }
}

/// Registers a stored blob for `provider` and announces it.
pub async fn register(
    state: &IngestState,
    ctx: &RequestContext,
    provider: &str,
    (blob, kind): (&StoredBlob, MediaKind),
    meta: &UploadMeta,
    idempotency_key: Option<&str>,
    source: Source,
) -> Result<Registered, ApiError> {
    let image_id = new_id();
    let request_id = new_id();
    let institution = match institution_of(state, provider).await {
        Ok(i) => i,
        Err(e) => {
            forget_blob(state, blob).await;
            return Err(e);
        }
    };
    let ev = event(
        provider,
        (&image_id, &request_id),
        provider,
        (&blob.key, &blob.sha256, blob.size, kind.media_type()),
        meta,
        source,
        (ctx.request_id(), institution),
    );
    let event_json = serde_json::to_string(&ev).map_err(|e| ApiError::internal(&e))?;
    let claim = state
        .store
        .claim(NewImage {
            image: ImageRow {
                image_id: image_id.clone(),
                provider_id: provider.to_owned(),
                sha256: blob.sha256.clone(),
                size: blob.size,
                media_type: kind.media_type().to_owned(),
                blob_key: blob.key.clone(),
                tipo_imagen: meta.tipo_imagen.clone(),
                region_anatomica: meta.region_anatomica.clone(),
            },
            idempotency_key: idempotency_key.map(str::to_owned),
            request_id: request_id.clone(),
            event_json,
        })
        .await;
    let claim = match claim {
        Ok(c) => c,
        Err(e) => {
            forget_blob(state, blob).await;
            return Err(e.into());
        }
    };
    let existing = match claim {
        Claim::Created => None,
        Claim::Existing { image_id } => Some(image_id),
        Claim::Resumed { image_id, event_json } => {
            resume(state, &event_json).await?;
            Some(image_id)
        }
    };
    if let Some(image_id) = existing {
        ctx.target(&image_id);
        // The idempotency key may have come with other bytes: keep no orphan.
        forget_blob(state, blob).await;
        let existing = state.store.image(&image_id).await.map_err(ApiError::from)?;
        let (sha256, size, media_type) = existing.map_or_else(
            || (blob.sha256.clone(), blob.size, kind.media_type().to_owned()),
            |r| (r.sha256, r.size, r.media_type),
        );
        return Ok(Registered {
            id: image_id,
            request_id: None,
            sha256,
            size,
            media_type,
            duplicate: true,
        });
    }
    ctx.target(&image_id);
    publish(state, &ev).await?;
    state.metrics.bytes_in.inc_by(blob.size);
    tracing::info!(image_id = %image_id, request_id = %request_id, size = blob.size, media_type = kind.media_type(), source = source.as_str(), "image registered");
    Ok(Registered {
        id: image_id,
        request_id: Some(request_id),
        sha256: blob.sha256.clone(),
        size: blob.size,
        media_type: kind.media_type().to_owned(),
        duplicate: false,
    })
}

/// Publishes the first request of an image whose uploader stopped before it could (the store
/// answered [`Claim::Resumed`]). On failure the request stays pending, for the next start's
/// re-publication, and the caller answers 503.
async fn resume(state: &IngestState, event_json: &str) -> Result<(), ApiError> {
    let ev: ImagenRegistrada = serde_json::from_str(event_json).map_err(|e| ApiError::internal(&e))?;
    match state.producer.send(&ev.image_id, &ev).await {
        Ok(()) => {
            state.published.mark(&ev.request_id);
            tracing::info!(image_id = %ev.image_id, request_id = %ev.request_id, "published the request of an upload its replica left unfinished");
            Ok(())
        }
        Err(e) => {
            tracing::warn!(error = %e, request_id = %ev.request_id, "broker did not acknowledge a resumed request; it stays pending");
            Err(ApiError::unavailable("the event broker", 5))
        }
    }
}

/// Re-announces an existing image with another profile (a new request).
pub async fn reanonymize(
    state: &IngestState,
    ctx: &RequestContext,
    actor: &str,
    image_id: &str,
    profile: Profile,
) -> Result<String, ApiError> {
    let row = state
        .store
        .image(image_id)
        .await
        .map_err(ApiError::from)?
        .ok_or_else(|| ApiError::not_found("no image with this id"))?;
    let request_id = new_id();
    let meta = UploadMeta {
        profile,
        tipo_imagen: row.tipo_imagen.clone(),
        region_anatomica: row.region_anatomica.clone(),
    };
    let institution = institution_of(state, &row.provider_id).await?;
    let ev = event(
        actor,
        (image_id, &request_id),
        &row.provider_id,
        (&row.blob_key, &row.sha256, row.size, &row.media_type),
        &meta,
        Source::Reanonymize,
        (ctx.request_id(), institution),
    );
    let json = serde_json::to_string(&ev).map_err(|e| ApiError::internal(&e))?;
    state
        .store
        .add_request(image_id, &request_id, &json)
        .await
        .map_err(ApiError::from)?;
    publish(state, &ev).await?;
    Ok(request_id)
}

/// The institution `provider` belongs to, whose upload this is (none where the store has no
/// registry).
async fn institution_of(state: &IngestState, provider: &str) -> Result<Option<String>, ApiError> {
    match &state.registry {
        Some(registry) => registry.institution_of_provider(provider).await,
        None => Ok(None),
    }
}

/// Produces the event; on failure forgets the request (and an unused blob) and answers 503.
async fn publish(state: &IngestState, ev: &ImagenRegistrada) -> Result<(), ApiError> {
    match state.producer.send(&ev.image_id, ev).await {
        Ok(()) => {
            state.published.mark(&ev.request_id);
            Ok(())
        }
        Err(e) => {
            tracing::warn!(error = %e, request_id = %ev.request_id, "broker did not acknowledge; request forgotten");
            match state.store.abandon(&ev.request_id).await {
                Ok(false) => delete_unused(state, &ev.blob_key).await,
                Ok(true) => {}
                Err(e) => tracing::warn!(error = %e, "cannot forget the request"),
            }
            Err(ApiError::unavailable("the event broker", 5))
        }
    }
}

/// Deletes a stored raw blob that no image in this process's ingest store
/// uses, unless the blob store is shared.
///
/// Blobs are content-addressed, so every replica that receives the same bytes
/// writes the same key. The ingest store is per process (SQLite), so in a
/// shared store ([`alpes_platform::blobs::Blobs::shared`]: S3 always, a local
/// directory with `--blobs-shared`) "no image here uses it" does not mean
/// "no image uses it": an upload that fails on replica B must not delete the
/// bytes that replica A's image needs. There the blob is kept and counted
/// (`alpes_raw_blobs_kept_total`). A private store (the local directory of
/// one data dir, whose `alpes.db` every process writing it shares) is cleaned.
///
/// A kept blob may be an orphan: raw bytes (PHI) that no image uses. A
/// lifecycle rule cannot tell it from a live one (both are `raw/<sha256>`).
/// An operator sweeps them: list the `raw/` keys older than a day (older than
/// any upload in flight) and delete those that are not the `blob_key` of any
/// `ImagenRegistrada` on `alpes.images.registered` (or, past the topic's
/// retention, of any row of the replicas' `images` tables).
pub async fn forget_blob(state: &IngestState, blob: &StoredBlob) {
    match state.store.blob_in_use(&blob.sha256).await {
        Ok(true) => {}
        Ok(false) => delete_unused(state, &blob.key).await,
        Err(e) => tracing::warn!(error = %e, "cannot check blob use"),
    }
}

/// Deletes the raw blob at `key`, which no image in this process's ingest store
/// uses, unless the blob store is shared (see [`forget_blob`]).
async fn delete_unused(state: &IngestState, key: &str) {
    if state.blobs.shared() {
        state.metrics.raw_blobs_kept.inc();
        tracing::debug!("the blob store is shared: an unused raw blob is kept for the sweep");
        return;
    }
    if let Err(e) = state.blobs.delete(key).await {
        tracing::warn!(error = %e, "cannot delete an unused blob");
    }
}
