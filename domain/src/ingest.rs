//! The ingest port: which images exist, who uploaded them, which idempotency
//! keys map to them, and which anonymization requests are still open. The
//! command side (ingest) owns it.

use crate::Result;
use async_trait::async_trait;

/// An image to register, with its first anonymization request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewImage {
    /// The image as it will be stored.
    pub image: ImageRow,
    /// The client's `Idempotency-Key`, if any.
    pub idempotency_key: Option<String>,
    /// The first request's id.
    pub request_id: String,
    /// The `ImagenRegistrada` to publish, as JSON (replayed after a restart).
    pub event_json: String,
}

/// A registered image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRow {
    /// The image id.
    pub image_id: String,
    /// The uploading provider.
    pub provider_id: String,
    /// sha256 of the uploaded bytes.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// The media type.
    pub media_type: String,
    /// The raw blob key.
    pub blob_key: String,
    /// The provider's image type label.
    pub tipo_imagen: Option<String>,
    /// The provider's body region label.
    pub region_anatomica: Option<String>,
}

/// The result of [`IngestStore::claim`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The image is new; its request is pending publication.
    Created,
    /// The same bytes from the same provider, or the same idempotency key, exist already.
    Existing {
        /// The existing image id.
        image_id: String,
    },
    /// As [`Claim::Existing`], but that image's uploader stopped before recording its first
    /// request, and this claim recorded it: the caller publishes `event_json` (the
    /// `ImagenRegistrada` that uploader would have). Only a store shared by several processes
    /// (the CQL one) answers it.
    Resumed {
        /// The existing image id.
        image_id: String,
        /// Its first request's event, as JSON.
        event_json: String,
    },
}

/// Where an anonymization request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestState {
    /// Stored, event not yet acknowledged by the broker.
    Pending,
    /// `ImagenRegistrada` is on the log.
    Published,
    /// `ImagenAnonimizada` was seen.
    Anonymized,
    /// `ImagenRechazada` was seen.
    Rejected,
}

impl RequestState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestState::Pending => "pending",
            RequestState::Published => "published",
            RequestState::Anonymized => "anonymized",
            RequestState::Rejected => "rejected",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => RequestState::Pending,
            "published" => RequestState::Published,
            "anonymized" => RequestState::Anonymized,
            "rejected" => RequestState::Rejected,
            _ => return None,
        })
    }
}

/// The ingest store.
#[async_trait]
pub trait IngestStore: Send + Sync + std::fmt::Debug {
    /// Registers `img` and its first request, unless the provider already has
    /// these bytes or this idempotency key.
    async fn claim(&self, img: NewImage) -> Result<Claim>;
    /// Adds another request (a re-anonymization) for an existing image.
    async fn add_request(&self, image_id: &str, request_id: &str, event_json: &str) -> Result<()>;
    /// Moves a request to `state`. Returns false if the request is unknown.
    async fn set_state(&self, request_id: &str, state: RequestState) -> Result<bool>;
    /// Moves many requests at once (all or none); unknown ones are skipped.
    /// Returns how many moved.
    async fn set_states(&self, changes: Vec<(String, RequestState)>) -> Result<usize>;
    /// Forgets a request whose event never reached the broker; forgets its image too
    /// if that was the image's only request. Returns whether any image still uses the blob.
    async fn abandon(&self, request_id: &str) -> Result<bool>;
    /// Whether any image still uses the raw blob with this sha256.
    async fn blob_in_use(&self, sha256: &str) -> Result<bool>;
    /// One image.
    async fn image(&self, image_id: &str) -> Result<Option<ImageRow>>;
    /// The state of one request.
    async fn request_state(&self, request_id: &str) -> Result<Option<RequestState>>;
    /// Events of requests not yet anonymized or rejected, oldest first.
    async fn unfinished(&self) -> Result<Vec<String>>;
    /// Maps a calling AE title (normalized by [`crate::dimse::ae_title`]) to a
    /// provider, replacing any mapping it had; `now` in ms.
    async fn put_calling_ae(&self, ae_title: &str, provider_id: &str, now: i64) -> Result<()>;
    /// Removes a calling AE title's mapping; false if it had none.
    async fn remove_calling_ae(&self, ae_title: &str) -> Result<bool>;
    /// Every calling AE title's mapping, by AE title.
    async fn calling_aes(&self) -> Result<Vec<crate::dimse::CallingAe>>;
    /// Whether the store answers.
    async fn health(&self) -> Result<()>;
}
