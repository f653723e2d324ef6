//! The rows of the CQL ingest store as read, and as written.

use crate::store::{ImageRow, NewImage, RequestState};
use crate::{Error, Result};
use scylla::DeserializeRow;

/// A content claim as stored: the image and its first request.
#[derive(Debug, Clone, DeserializeRow)]
pub(super) struct ContentRow {
    pub(super) provider_id: String,
    pub(super) sha256: String,
    pub(super) image_id: Option<String>,
    pub(super) size: Option<i64>,
    pub(super) media_type: Option<String>,
    pub(super) blob_key: Option<String>,
    pub(super) tipo_imagen: Option<String>,
    pub(super) region_anatomica: Option<String>,
    pub(super) idem_key: Option<String>,
    pub(super) created_at: Option<i64>,
    pub(super) request_id: Option<String>,
    pub(super) event: Option<String>,
}

/// An `ingest_images` row.
#[derive(Debug, Clone, DeserializeRow)]
pub(super) struct ImageRecord {
    pub(super) image_id: String,
    pub(super) provider_id: Option<String>,
    pub(super) sha256: Option<String>,
    pub(super) size: Option<i64>,
    pub(super) media_type: Option<String>,
    pub(super) blob_key: Option<String>,
    pub(super) tipo_imagen: Option<String>,
    pub(super) region_anatomica: Option<String>,
    pub(super) idem_key: Option<String>,
}

/// An `ingest_requests` row, without its event.
#[derive(Debug, Clone, DeserializeRow)]
pub(super) struct RequestRecord {
    pub(super) image_id: Option<String>,
    pub(super) state: Option<String>,
    pub(super) bucket: Option<i64>,
    pub(super) created_at: Option<i64>,
}

/// A request to write: its ids, event and creation time.
#[derive(Debug)]
pub(super) struct NewRequest<'a> {
    pub(super) image_id: &'a str,
    pub(super) request_id: &'a str,
    pub(super) event: &'a str,
    pub(super) created_at: i64,
}

/// A row that lacks a column Alpes always writes.
pub(super) fn corrupt(table: &str) -> Error {
    Error::Store(format!("scylla: an {table} row lacks a column it is always written with"))
}

/// An image's size as CQL's `bigint`.
pub(super) fn size(image: &ImageRow) -> Result<i64> {
    i64::try_from(image.size).map_err(|_| Error::Store("an image over 2^63 bytes".into()))
}

impl ContentRow {
    /// The claim a new image makes, created at `created_at` (microseconds).
    pub(super) fn of(img: &NewImage, created_at: i64) -> Result<ContentRow> {
        let i = &img.image;
        Ok(ContentRow {
            provider_id: i.provider_id.clone(),
            sha256: i.sha256.clone(),
            image_id: Some(i.image_id.clone()),
            size: Some(size(i)?),
            media_type: Some(i.media_type.clone()),
            blob_key: Some(i.blob_key.clone()),
            tipo_imagen: i.tipo_imagen.clone(),
            region_anatomica: i.region_anatomica.clone(),
            idem_key: img.idempotency_key.clone(),
            created_at: Some(created_at),
            request_id: Some(img.request_id.clone()),
            event: Some(img.event_json.clone()),
        })
    }

    /// The image id the claim names.
    pub(super) fn id(&self) -> Result<&str> {
        self.image_id.as_deref().ok_or_else(|| corrupt("ingest_content"))
    }

    /// The image the claim carries.
    pub(super) fn image(&self) -> Result<ImageRow> {
        Ok(ImageRow {
            image_id: self.id()?.to_owned(),
            provider_id: self.provider_id.clone(),
            sha256: self.sha256.clone(),
            size: self
                .size
                .and_then(|s| u64::try_from(s).ok())
                .ok_or_else(|| corrupt("ingest_content"))?,
            media_type: self.media_type.clone().unwrap_or_default(),
            blob_key: self.blob_key.clone().unwrap_or_default(),
            tipo_imagen: self.tipo_imagen.clone(),
            region_anatomica: self.region_anatomica.clone(),
        })
    }
}

impl ImageRecord {
    /// The image, if the row is whole.
    pub(super) fn image(self) -> Result<ImageRow> {
        Ok(ImageRow {
            image_id: self.image_id,
            provider_id: self.provider_id.ok_or_else(|| corrupt("ingest_images"))?,
            sha256: self.sha256.ok_or_else(|| corrupt("ingest_images"))?,
            size: self
                .size
                .and_then(|s| u64::try_from(s).ok())
                .ok_or_else(|| corrupt("ingest_images"))?,
            media_type: self.media_type.unwrap_or_default(),
            blob_key: self.blob_key.unwrap_or_default(),
            tipo_imagen: self.tipo_imagen,
            region_anatomica: self.region_anatomica,
        })
    }
}

impl RequestRecord {
    /// Whether the request still waits for an outcome.
    pub(super) fn unfinished(&self) -> bool {
        matches!(
            self.state.as_deref().and_then(RequestState::parse),
            Some(RequestState::Pending | RequestState::Published)
        )
    }
}
