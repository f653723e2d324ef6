//! The ingest store on ScyllaDB (or any CQL cluster), shared by every ingest
//! replica: idempotency keys, duplicate detection by provider and sha256,
//! open requests and re-anonymization requests. The tables are in
//! `schemas/cql/004_ingest.cql`.
//!
//! SQLite gets each rule of [`IngestStore`] from one write transaction; here,
//! as in [`super::scylla_identity`], each rule has one single-partition commit
//! point, a lightweight transaction (LWT) where replicas can race, and every
//! other row is idempotent or checked against a commit point when read.
//!
//! # Images: the content claim is the commit point
//!
//! `ingest_content` is keyed by `(provider_id, sha256)`. `claim`:
//!
//! 1. With an idempotency key, reads its claim in `ingest_keys` (at the
//!    serial consistency). A key that names an existing image answers
//!    [`Claim::Existing`], as SQLite looks the key up first.
//! 2. Writes the `ingest_blob_users` row (the blob's users), then claims the
//!    bytes: `INSERT ... IF NOT EXISTS` with the whole image and its first
//!    request in the claim row. Of two uploads of one provider's bytes, on
//!    any replicas, exactly one claim applies; the other reads the winner,
//!    binds its key to the winner's image (or finds the key taken meanwhile)
//!    and answers [`Claim::Existing`].
//! 3. Binds the key: `INSERT ... IF NOT EXISTS`. If another upload took the
//!    key since step 1, the claim of step 2 is released (`DELETE ... IF
//!    image_id = <ours>`) and the key's image answered.
//! 4. Writes the first request (an LWT insert), its `ingest_requests_by_image`
//!    and `ingest_open` rows, then the `ingest_images` row. If one of these
//!    writes fails, the claims are released and the error returned.
//!
//! **An image exists while the claim of its bytes names its image id.** The
//! claim carries the image, so a claim whose rows are missing (the creator
//! stopped in step 4) is finished by whoever finds it: the next upload of
//! those bytes or that key writes the rows from the claim (its request stays
//! pending, and the next start's [`IngestStore::unfinished`] announces it).
//! An `ingest_images` row whose claim names another image, or none, is a
//! leftover of an upload rolled back: [`IngestStore::image`] does not return
//! it.
//!
//! # Requests: compare-and-set on the state
//!
//! Every write of an `ingest_requests` row is an LWT, so a later change is
//! never shadowed by an earlier write with a later clock. A request moves to
//! `published` only `IF state IN ('pending', 'published')`, and to
//! `anonymized` or `rejected` `IF EXISTS`: a finished request never goes
//! back, as in SQLite. A finished request's `ingest_open` row is deleted.
//!
//! # Unfinished requests
//!
//! `ingest_open` has one partition per minute of creation, and
//! `ingest_open_buckets` lists the minutes that may hold rows. A partition of
//! a minute holds at most that minute's tombstones (rows are deleted as their
//! requests finish), where one partition for all would fill with them.
//! [`IngestStore::unfinished`] reads every listed minute, checks each row
//! against its request and its image (removing rows of finished, abandoned
//! or rolled-back requests), answers oldest first, and unlists minutes over
//! an hour old that hold nothing.
//!
//! # Differences from SQLite
//!
//! - An upload takes three or four Paxos rounds (key read, content claim,
//!   key claim, request) instead of one local transaction.
//! - `set_states` is not atomic: each change is its own compare-and-set, run
//!   concurrently; a failure leaves some applied, and the caller (the outcome
//!   follower) retries the batch, which applies the rest.
//! - "Oldest first" orders by the creating process's clock (microseconds,
//!   strictly increasing within a process); SQLite by insertion.
//! - Every replica's start re-announces every replica's unfinished requests,
//!   including ones another live replica is announcing at that moment; the
//!   event keeps its id, so consumers drop the duplicate.
//!
//! Lightweight transactions need a keyspace without tablets on ScyllaDB
//! versions whose tablets lack them (`alpes migrate --tablets`).

use super::scylla_exec::{Cql, Kind};
use super::{Claim, ImageRow, IngestStore, NewImage, RequestState};
use crate::{Error, Result};
use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt};
use scylla::client::session::Session;
use scylla::statement::prepared::PreparedStatement;
use scylla::DeserializeRow;
use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// How many times a lost content claim whose winner vanished is tried again.
const CLAIM_ATTEMPTS: u32 = 5;
/// Statements run at once by `set_states` and `unfinished`.
const IN_FLIGHT: usize = 32;
/// The one partition of `ingest_open_buckets`.
const BUCKETS_SHARD: i32 = 0;
/// Microseconds per `ingest_open` partition.
const BUCKET_MICROS: i64 = 60_000_000;
/// How old an empty minute must be before it is unlisted (microseconds).
const UNLIST_AFTER_MICROS: i64 = 3_600_000_000;

// The statements, `{ks}` standing for the keyspace.
const CONTENT_CLAIM: &str = "INSERT INTO {ks}.ingest_content (provider_id, sha256, image_id, size, media_type, blob_key, \
    tipo_imagen, region_anatomica, idem_key, created_at, request_id, event) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) IF NOT EXISTS";
const CONTENT_READ: &str = "SELECT provider_id, sha256, image_id, size, media_type, blob_key, tipo_imagen, region_anatomica, \
    idem_key, created_at, request_id, event FROM {ks}.ingest_content WHERE provider_id = ? AND sha256 = ?";
const CONTENT_RELEASE: &str = "DELETE FROM {ks}.ingest_content WHERE provider_id = ? AND sha256 = ? IF image_id = ?";
const KEY_CLAIM: &str = "INSERT INTO {ks}.ingest_keys (provider_id, idem_key, image_id, sha256) VALUES (?, ?, ?, ?) IF NOT EXISTS";
const KEY_READ: &str = "SELECT image_id, sha256 FROM {ks}.ingest_keys WHERE provider_id = ? AND idem_key = ?";
const KEY_RELEASE: &str = "DELETE FROM {ks}.ingest_keys WHERE provider_id = ? AND idem_key = ? IF image_id = ?";
const IMAGE_WRITE: &str = "INSERT INTO {ks}.ingest_images (image_id, provider_id, sha256, size, media_type, blob_key, \
    tipo_imagen, region_anatomica, idem_key, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
const IMAGE_READ: &str = "SELECT image_id, provider_id, sha256, size, media_type, blob_key, tipo_imagen, region_anatomica, \
    idem_key FROM {ks}.ingest_images WHERE image_id = ?";
const IMAGE_DELETE: &str = "DELETE FROM {ks}.ingest_images WHERE image_id = ?";
const USER_WRITE: &str = "INSERT INTO {ks}.ingest_blob_users (sha256, image_id) VALUES (?, ?)";
const USER_DELETE: &str = "DELETE FROM {ks}.ingest_blob_users WHERE sha256 = ? AND image_id = ?";
const USERS_READ: &str = "SELECT image_id FROM {ks}.ingest_blob_users WHERE sha256 = ? LIMIT 1";
const REQUEST_INSERT: &str = "INSERT INTO {ks}.ingest_requests (request_id, image_id, state, event, bucket, created_at) \
    VALUES (?, ?, ?, ?, ?, ?) IF NOT EXISTS";
const REQUEST_READ: &str = "SELECT image_id, state, bucket, created_at FROM {ks}.ingest_requests WHERE request_id = ?";
const REQUEST_ADVANCE: &str = "UPDATE {ks}.ingest_requests SET state = ? WHERE request_id = ? IF state IN (?, ?)";
const REQUEST_FINISH: &str = "UPDATE {ks}.ingest_requests SET state = ? WHERE request_id = ? IF EXISTS";
const REQUEST_DELETE: &str = "DELETE FROM {ks}.ingest_requests WHERE request_id = ? IF EXISTS";
const BY_IMAGE_WRITE: &str = "INSERT INTO {ks}.ingest_requests_by_image (image_id, request_id) VALUES (?, ?)";
const BY_IMAGE_DELETE: &str = "DELETE FROM {ks}.ingest_requests_by_image WHERE image_id = ? AND request_id = ?";
const BY_IMAGE_READ: &str = "SELECT request_id FROM {ks}.ingest_requests_by_image WHERE image_id = ? LIMIT 2";
const OPEN_WRITE: &str = "INSERT INTO {ks}.ingest_open (bucket, created_at, request_id, event) VALUES (?, ?, ?, ?)";
const OPEN_DELETE: &str = "DELETE FROM {ks}.ingest_open WHERE bucket = ? AND created_at = ? AND request_id = ?";
const OPEN_SCAN: &str = "SELECT created_at, request_id, event FROM {ks}.ingest_open WHERE bucket = ?";
const BUCKET_WRITE: &str = "INSERT INTO {ks}.ingest_open_buckets (shard, bucket) VALUES (?, ?)";
const BUCKET_DELETE: &str = "DELETE FROM {ks}.ingest_open_buckets WHERE shard = ? AND bucket = ?";
const BUCKET_SCAN: &str = "SELECT bucket FROM {ks}.ingest_open_buckets WHERE shard = ?";
const HEALTH: &str = "SELECT release_version FROM system.local";

/// The ScyllaDB ingest store. Cheap to clone; the statements are prepared once, by [`ScyllaIngest::new`].
#[derive(Clone)]
pub struct ScyllaIngest {
    cql: Cql,
    st: Arc<Statements>,
    /// The last creation time handed out (microseconds), so this process's requests are strictly ordered.
    clock: Arc<AtomicI64>,
    /// The last minute this process listed in `ingest_open_buckets`.
    listed: Arc<AtomicI64>,
}

impl fmt::Debug for ScyllaIngest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScyllaIngest")
            .field("keyspace", &self.cql.keyspace())
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct Statements {
    content_claim: PreparedStatement,
    /// Read at the serial consistency.
    content_read: PreparedStatement,
    content_release: PreparedStatement,
    key_claim: PreparedStatement,
    /// Read at the serial consistency.
    key_read: PreparedStatement,
    key_release: PreparedStatement,
    image_write: PreparedStatement,
    image_read: PreparedStatement,
    image_delete: PreparedStatement,
    user_write: PreparedStatement,
    user_delete: PreparedStatement,
    users_read: PreparedStatement,
    request_insert: PreparedStatement,
    request_read: PreparedStatement,
    request_advance: PreparedStatement,
    request_finish: PreparedStatement,
    request_delete: PreparedStatement,
    by_image_write: PreparedStatement,
    by_image_delete: PreparedStatement,
    by_image_read: PreparedStatement,
    open_write: PreparedStatement,
    open_delete: PreparedStatement,
    open_scan: PreparedStatement,
    bucket_write: PreparedStatement,
    bucket_delete: PreparedStatement,
    bucket_scan: PreparedStatement,
    health: PreparedStatement,
}

/// A content claim as stored: the image and its first request.
#[derive(Debug, Clone, DeserializeRow)]
struct ContentRow {
    provider_id: String,
    sha256: String,
    image_id: Option<String>,
    size: Option<i64>,
    media_type: Option<String>,
    blob_key: Option<String>,
    tipo_imagen: Option<String>,
    region_anatomica: Option<String>,
    idem_key: Option<String>,
    created_at: Option<i64>,
    request_id: Option<String>,
    event: Option<String>,
}

/// An `ingest_images` row.
#[derive(Debug, Clone, DeserializeRow)]
struct ImageRecord {
    image_id: String,
    provider_id: Option<String>,
    sha256: Option<String>,
    size: Option<i64>,
    media_type: Option<String>,
    blob_key: Option<String>,
    tipo_imagen: Option<String>,
    region_anatomica: Option<String>,
    idem_key: Option<String>,
}

/// An `ingest_requests` row, without its event.
#[derive(Debug, Clone, DeserializeRow)]
struct RequestRecord {
    image_id: Option<String>,
    state: Option<String>,
    bucket: Option<i64>,
    created_at: Option<i64>,
}

/// A request to write: its ids, event and creation time.
struct NewRequest<'a> {
    image_id: &'a str,
    request_id: &'a str,
    event: &'a str,
    created_at: i64,
}

fn corrupt(what: &str) -> Error {
    Error::Store(format!("scylla: an {what} row lacks a column it is always written with"))
}

impl ContentRow {
    /// The image the claim carries.
    fn image(&self) -> Result<ImageRow> {
        Ok(ImageRow {
            image_id: self.image_id.clone().ok_or_else(|| corrupt("ingest_content"))?,
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
    fn image(self) -> Result<ImageRow> {
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

fn size(image: &ImageRow) -> Result<i64> {
    i64::try_from(image.size).map_err(|_| Error::Store("an image over 2^63 bytes".into()))
}

fn now_micros() -> i64 {
    alpes_schemas::now_millis().saturating_mul(1000)
}

impl ScyllaIngest {
    /// The ingest store in `args.keyspace` on an open session; prepares every statement now (the
    /// tables must exist: `alpes migrate`).
    pub async fn new(session: Arc<Session>, args: &super::ScyllaArgs) -> Result<ScyllaIngest> {
        let cql = Cql::new(session, args)?;
        let prepare = |template: &'static str, kind: Kind| cql.prepare(template, kind);
        let st = Statements {
            content_claim: prepare(CONTENT_CLAIM, Kind::Lwt).await?,
            content_read: prepare(CONTENT_READ, Kind::SerialRead).await?,
            content_release: prepare(CONTENT_RELEASE, Kind::Lwt).await?,
            key_claim: prepare(KEY_CLAIM, Kind::Lwt).await?,
            key_read: prepare(KEY_READ, Kind::SerialRead).await?,
            key_release: prepare(KEY_RELEASE, Kind::Lwt).await?,
            image_write: prepare(IMAGE_WRITE, Kind::Plain).await?,
            image_read: prepare(IMAGE_READ, Kind::Plain).await?,
            image_delete: prepare(IMAGE_DELETE, Kind::Plain).await?,
            user_write: prepare(USER_WRITE, Kind::Plain).await?,
            user_delete: prepare(USER_DELETE, Kind::Plain).await?,
            users_read: prepare(USERS_READ, Kind::Plain).await?,
            request_insert: prepare(REQUEST_INSERT, Kind::Lwt).await?,
            request_read: prepare(REQUEST_READ, Kind::Plain).await?,
            request_advance: prepare(REQUEST_ADVANCE, Kind::Lwt).await?,
            request_finish: prepare(REQUEST_FINISH, Kind::Lwt).await?,
            request_delete: prepare(REQUEST_DELETE, Kind::Lwt).await?,
            by_image_write: prepare(BY_IMAGE_WRITE, Kind::Plain).await?,
            by_image_delete: prepare(BY_IMAGE_DELETE, Kind::Plain).await?,
            by_image_read: prepare(BY_IMAGE_READ, Kind::Plain).await?,
            open_write: prepare(OPEN_WRITE, Kind::Plain).await?,
            open_delete: prepare(OPEN_DELETE, Kind::Plain).await?,
            open_scan: prepare(OPEN_SCAN, Kind::Scan).await?,
            bucket_write: prepare(BUCKET_WRITE, Kind::Plain).await?,
            bucket_delete: prepare(BUCKET_DELETE, Kind::Plain).await?,
            bucket_scan: prepare(BUCKET_SCAN, Kind::Scan).await?,
            health: prepare(HEALTH, Kind::Plain).await?,
        };
        Ok(ScyllaIngest {
            cql,
            st: Arc::new(st),
            clock: Arc::new(AtomicI64::new(0)),
            listed: Arc::new(AtomicI64::new(i64::MIN)),
        })
    }

    /// A creation time later than any this process handed out before.
    fn next_created_at(&self) -> i64 {
        let now = now_micros();
        let prev = self
            .clock
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |last| Some(now.max(last + 1)))
            .unwrap_or(now);
        now.max(prev + 1)
    }

    async fn content_claim_of(&self, provider: &str, sha256: &str) -> Result<Option<ContentRow>> {
        self.cql
            .read_one(&self.st.content_read, (provider, sha256), "read a content claim")
            .await
    }

    /// Whether the claim of `provider`'s `sha256` names `image_id`: whether that image exists.
    async fn claim_names(&self, provider: &str, sha256: &str, image_id: &str) -> Result<bool> {
        Ok(self
            .content_claim_of(provider, sha256)
            .await?
            .is_some_and(|c| c.image_id.as_deref() == Some(image_id)))
    }

    /// Writes a request's rows: the request (unless it exists), then its image link and open row.
    /// Whether the request row was new.
    async fn write_request(&self, r: &NewRequest<'_>) -> Result<bool> {
        let bucket = r.created_at.div_euclid(BUCKET_MICROS);
        let values = (
            r.request_id,
            r.image_id,
            RequestState::Pending.as_str(),
            r.event,
            bucket,
            r.created_at,
        );
        let new = self.cql.lwt(&self.st.request_insert, values, "write a request").await?;
        if !new {
            return Ok(false);
        }
        self.cql
            .write(&self.st.by_image_write, (r.image_id, r.request_id), "link a request")
            .await?;
        if self.listed.load(Ordering::SeqCst) != bucket {
            self.cql
                .write(&self.st.bucket_write, (BUCKETS_SHARD, bucket), "list a minute")
                .await?;
            self.listed.store(bucket, Ordering::SeqCst);
        }
        self.cql
            .write(&self.st.open_write, (bucket, r.created_at, r.request_id, r.event), "open a request")
            .await?;
        Ok(true)
    }

    async fn write_image(&self, image: &ImageRow, idem_key: Option<&str>, created_at: i64) -> Result<()> {
        let values = (
            image.image_id.as_str(),
            image.provider_id.as_str(),
            image.sha256.as_str(),
            size(image)?,
            image.media_type.as_str(),
            image.blob_key.as_str(),
            image.tipo_imagen.as_deref(),
            image.region_anatomica.as_deref(),
            idem_key,
            created_at,
        );
        self.cql.write(&self.st.image_write, values, "write an image").await
    }

    /// Writes the rows of the image a claim carries, if its creator stopped before them.
    async fn finish(&self, claim: &ContentRow) -> Result<()> {
        let image = claim.image()?;
        if self
            .cql
            .read_one::<ImageRecord>(&self.st.image_read, (image.image_id.as_str(),), "read an image")
            .await?
            .is_some()
        {
            return Ok(());
        }
        self.cql
            .write(
                &self.st.user_write,
                (image.sha256.as_str(), image.image_id.as_str()),
                "list a blob user",
            )
            .await?;
        let created_at = claim.created_at.unwrap_or_else(now_micros);
        if let (Some(request_id), Some(event)) = (&claim.request_id, &claim.event) {
            let request = NewRequest {
                image_id: &image.image_id,
                request_id,
                event,
                created_at,
            };
            self.write_request(&request).await?;
        }
        self.write_image(&image, claim.idem_key.as_deref(), created_at).await
    }

    /// The image a key names, if the key's image exists (finished first if its creator stopped).
    /// A key whose image does not exist is a leftover of an upload rolled back: it is released.
    async fn image_of_key(&self, provider: &str, key: &str) -> Result<Option<String>> {
        let Some((image_id, sha256)) = self
            .cql
            .read_one::<(Option<String>, Option<String>)>(&self.st.key_read, (provider, key), "read a key")
            .await?
        else {
            return Ok(None);
        };
        let (Some(image_id), Some(sha256)) = (image_id, sha256) else {
            return Err(corrupt("ingest_keys"));
        };
        match self.content_claim_of(provider, &sha256).await? {
            Some(claim) if claim.image_id.as_deref() == Some(image_id.as_str()) => {
                self.finish(&claim).await?;
                Ok(Some(image_id))
            }
            _ => {
                self.cql
                    .lwt(&self.st.key_release, (provider, key, image_id.as_str()), "release a key")
                    .await?;
                Ok(None)
            }
        }
    }

    /// Binds `key` to `image_id` of `sha256`; the image the key names if another upload bound it first.
    async fn bind_key(&self, provider: &str, key: &str, image_id: &str, sha256: &str) -> Result<Option<String>> {
        if self
            .cql
            .lwt(&self.st.key_claim, (provider, key, image_id, sha256), "claim a key")
            .await?
        {
            return Ok(None);
        }
        let winner = self
            .cql
            .read_one::<(Option<String>, Option<String>)>(&self.st.key_read, (provider, key), "read a key")
            .await?;
        Ok(Some(winner.and_then(|(id, _)| id).unwrap_or_else(|| image_id.to_owned())))
    }

    /// Releases what a new image claimed (best effort: an error leaves a complete claim behind,
    /// which the next finder finishes).
    async fn release(&self, img: &NewImage, key_bound: bool) {
        let (p, sha, id) = (
            img.image.provider_id.as_str(),
            img.image.sha256.as_str(),
            img.image.image_id.as_str(),
        );
        let released = self.cql.lwt(&self.st.content_release, (p, sha, id), "release a claim").await;
        if let Err(e) = released {
            tracing::warn!(error = %e, "cannot release a content claim");
            return;
        }
        if let (true, Some(key)) = (key_bound, img.idempotency_key.as_deref()) {
            if let Err(e) = self.cql.lwt(&self.st.key_release, (p, key, id), "release a key").await {
                tracing::warn!(error = %e, "cannot release a key");
            }
        }
        if let Err(e) = self.cql.write(&self.st.user_delete, (sha, id), "unlist a blob user").await {
            tracing::warn!(error = %e, "cannot unlist a blob user");
        }
    }

    /// Step 4 of a claim: the first request and the image's rows.
    async fn write_new_image(&self, img: &NewImage, created_at: i64) -> Result<()> {
        let request = NewRequest {
            image_id: &img.image.image_id,
            request_id: &img.request_id,
            event: &img.event_json,
            created_at,
        };
        self.write_request(&request).await?;
        self.write_image(&img.image, img.idempotency_key.as_deref(), created_at).await
    }

    /// The content claim, step 2: `Ok(None)` if it applied, else the image that holds the bytes.
    async fn claim_content(&self, img: &NewImage, created_at: i64) -> Result<Option<ContentRow>> {
        let i = &img.image;
        let values = (
            i.provider_id.as_str(),
            i.sha256.as_str(),
            i.image_id.as_str(),
            size(i)?,
            i.media_type.as_str(),
            i.blob_key.as_str(),
            i.tipo_imagen.as_deref(),
            i.region_anatomica.as_deref(),
            img.idempotency_key.as_deref(),
            created_at,
            img.request_id.as_str(),
            img.event_json.as_str(),
        );
        for _ in 0..CLAIM_ATTEMPTS {
            if self.cql.lwt(&self.st.content_claim, values, "claim the bytes").await? {
                return Ok(None);
            }
            // The winner was released between the claim and this read: claim again.
            if let Some(winner) = self.content_claim_of(&i.provider_id, &i.sha256).await? {
                return Ok(Some(winner));
            }
        }
        Err(Error::Store("scylla: the claim of these bytes keeps changing hands".into()))
    }

    /// Removes what is left of a request: its open row, its image link and the request.
    async fn forget_request(&self, request_id: &str, r: &RequestRecord) -> Result<()> {
        if let (Some(bucket), Some(created_at)) = (r.bucket, r.created_at) {
            self.cql
                .write(&self.st.open_delete, (bucket, created_at, request_id), "close a request")
                .await?;
        }
        if let Some(image_id) = &r.image_id {
            self.cql
                .write(&self.st.by_image_delete, (image_id.as_str(), request_id), "unlink a request")
                .await?;
        }
        self.cql.lwt(&self.st.request_delete, (request_id,), "delete a request").await?;
        Ok(())
    }

    /// Whether the image `image_id` exists (its claim names it).
    async fn image_exists(&self, image_id: &str) -> Result<bool> {
        Ok(self.image(image_id).await?.is_some())
    }

    /// The event of an open row that still stands for an unfinished request of an existing
    /// image; a row that does not is deleted.
    async fn still_open(&self, bucket: i64, created_at: i64, request_id: String, event: String) -> Result<Option<(i64, String)>> {
        let record = self
            .cql
            .read_one::<RequestRecord>(&self.st.request_read, (request_id.as_str(),), "read a request")
            .await?;
        let open = match &record {
            Some(r) => {
                let unfinished = matches!(
                    r.state.as_deref().and_then(RequestState::parse),
                    Some(RequestState::Pending | RequestState::Published)
                );
                unfinished && self.image_exists(r.image_id.as_deref().unwrap_or_default()).await?
            }
            None => false,
        };
        if open {
            return Ok(Some((created_at, event)));
        }
        self.cql
            .write(&self.st.open_delete, (bucket, created_at, request_id.as_str()), "close a request")
            .await?;
        Ok(None)
    }

    /// The unfinished requests of one minute, `(created_at, event)`; unlists the minute when it is
    /// old and empty.
    async fn unfinished_in(&self, bucket: i64, now: i64) -> Result<Vec<(i64, String)>> {
        let rows: Vec<(i64, String, String)> = self
            .cql
            .scan::<(i64, String, String)>(&self.st.open_scan, (bucket,), "read open requests")
            .await?
            .try_collect()
            .await
            .map_err(super::scylla_conn::db("read open requests"))?;
        let open: Vec<(i64, String)> = futures::stream::iter(rows)
            .map(|(created_at, request_id, event)| self.still_open(bucket, created_at, request_id, event))
            .buffer_unordered(IN_FLIGHT)
            .try_filter_map(|r| async move { Ok(r) })
            .try_collect()
            .await?;
        if open.is_empty() && (bucket + 1) * BUCKET_MICROS + UNLIST_AFTER_MICROS < now {
            self.cql
                .write(&self.st.bucket_delete, (BUCKETS_SHARD, bucket), "unlist a minute")
                .await?;
        }
        Ok(open)
    }
}

#[async_trait]
impl IngestStore for ScyllaIngest {
    async fn claim(&self, img: NewImage) -> Result<Claim> {
        let provider = img.image.provider_id.as_str();
        if let Some(key) = img.idempotency_key.as_deref() {
            if let Some(image_id) = self.image_of_key(provider, key).await? {
                return Ok(Claim::Existing { image_id });
            }
        }
        let (sha, id) = (img.image.sha256.as_str(), img.image.image_id.as_str());
        self.cql.write(&self.st.user_write, (sha, id), "list a blob user").await?;
        let created_at = self.next_created_at();
        if let Some(winner) = self.claim_content(&img, created_at).await? {
            self.cql.write(&self.st.user_delete, (sha, id), "unlist a blob user").await?;
            self.finish(&winner).await?;
            let theirs = winner.image_id.clone().ok_or_else(|| corrupt("ingest_content"))?;
            if let Some(key) = img.idempotency_key.as_deref() {
                if let Some(bound) = self.bind_key(provider, key, &theirs, sha).await? {
                    return Ok(Claim::Existing { image_id: bound });
                }
            }
            return Ok(Claim::Existing { image_id: theirs });
        }
        if let Some(key) = img.idempotency_key.as_deref() {
            if let Some(bound) = self.bind_key(provider, key, id, sha).await? {
                self.release(&img, false).await;
                return Ok(Claim::Existing { image_id: bound });
            }
        }
        if let Err(e) = self.write_new_image(&img, created_at).await {
            self.release(&img, true).await;
            return Err(e);
        }
        Ok(Claim::Created)
    }

    async fn add_request(&self, image_id: &str, request_id: &str, event_json: &str) -> Result<()> {
        let request = NewRequest {
            image_id,
            request_id,
            event: event_json,
            created_at: self.next_created_at(),
        };
        if self.write_request(&request).await? {
            Ok(())
        } else {
            Err(Error::Store("a request with this id exists already".into()))
        }
    }

    async fn set_state(&self, request_id: &str, state: RequestState) -> Result<bool> {
        let Some(record) = self
            .cql
            .read_one::<RequestRecord>(&self.st.request_read, (request_id,), "read a request")
            .await?
        else {
            return Ok(false);
        };
        let finished = matches!(state, RequestState::Anonymized | RequestState::Rejected);
        let applied = if finished {
            self.cql
                .lwt(&self.st.request_finish, (state.as_str(), request_id), "finish a request")
                .await?
        } else {
            let open = (RequestState::Pending.as_str(), RequestState::Published.as_str());
            self.cql
                .lwt(
                    &self.st.request_advance,
                    (state.as_str(), request_id, open.0, open.1),
                    "advance a request",
                )
                .await?
        };
        if let (true, true, Some(bucket), Some(created_at)) = (applied, finished, record.bucket, record.created_at) {
            self.cql
                .write(&self.st.open_delete, (bucket, created_at, request_id), "close a request")
                .await?;
        }
        Ok(applied)
    }

    async fn set_states(&self, changes: Vec<(String, RequestState)>) -> Result<usize> {
        let moved: Vec<bool> = futures::stream::iter(changes)
            .map(|(request_id, state)| async move { self.set_state(&request_id, state).await })
            .buffer_unordered(IN_FLIGHT)
            .try_collect()
            .await?;
        Ok(moved.into_iter().filter(|m| *m).count())
    }

    async fn abandon(&self, request_id: &str) -> Result<bool> {
        let Some(record) = self
            .cql
            .read_one::<RequestRecord>(&self.st.request_read, (request_id,), "read a request")
            .await?
        else {
            return Ok(true);
        };
        let image_id = record.image_id.clone().ok_or_else(|| corrupt("ingest_requests"))?;
        let others: Vec<(String,)> = self
            .cql
            .scan::<(String,)>(&self.st.by_image_read, (image_id.as_str(),), "read an image's requests")
            .await?
            .try_collect()
            .await
            .map_err(super::scylla_conn::db("read an image's requests"))?;
        let last = others.iter().all(|(r,)| r == request_id);
        let image = self
            .cql
            .read_one::<ImageRecord>(&self.st.image_read, (image_id.as_str(),), "read an image")
            .await?;
        let sha = match &image {
            Some(i) => i.sha256.clone(),
            None => None,
        };
        if let (true, Some(image)) = (last, image) {
            // The image goes first (its claim is released), so no finder brings the request back.
            let (p, s) = (image.provider_id.clone().unwrap_or_default(), sha.clone().unwrap_or_default());
            self.cql
                .lwt(
                    &self.st.content_release,
                    (p.as_str(), s.as_str(), image_id.as_str()),
                    "release a claim",
                )
                .await?;
            if let Some(key) = image.idem_key.as_deref() {
                self.cql
                    .lwt(&self.st.key_release, (p.as_str(), key, image_id.as_str()), "release a key")
                    .await?;
            }
            self.cql
                .write(&self.st.image_delete, (image_id.as_str(),), "delete an image")
                .await?;
            self.cql
                .write(&self.st.user_delete, (s.as_str(), image_id.as_str()), "unlist a blob user")
                .await?;
        }
        self.forget_request(request_id, &record).await?;
        match sha {
            Some(sha) => self.blob_in_use(&sha).await,
            None => Ok(true),
        }
    }

    async fn blob_in_use(&self, sha256: &str) -> Result<bool> {
        Ok(self
            .cql
            .read_one::<(String,)>(&self.st.users_read, (sha256,), "read a blob's users")
            .await?
            .is_some())
    }

    async fn image(&self, image_id: &str) -> Result<Option<ImageRow>> {
        let Some(record) = self
            .cql
            .read_one::<ImageRecord>(&self.st.image_read, (image_id,), "read an image")
            .await?
        else {
            return Ok(None);
        };
        let image = record.image()?;
        if self.claim_names(&image.provider_id, &image.sha256, image_id).await? {
            Ok(Some(image))
        } else {
            Ok(None)
        }
    }

    async fn request_state(&self, request_id: &str) -> Result<Option<RequestState>> {
        let record = self
            .cql
            .read_one::<RequestRecord>(&self.st.request_read, (request_id,), "read a request")
            .await?;
        Ok(record.and_then(|r| r.state.as_deref().and_then(RequestState::parse)))
    }

    async fn unfinished(&self) -> Result<Vec<String>> {
        let buckets: Vec<(i64,)> = self
            .cql
            .scan::<(i64,)>(&self.st.bucket_scan, (BUCKETS_SHARD,), "read the listed minutes")
            .await?
            .try_collect()
            .await
            .map_err(super::scylla_conn::db("read the listed minutes"))?;
        let now = now_micros();
        let mut open = Vec::new();
        for (bucket,) in buckets {
            open.extend(self.unfinished_in(bucket, now).await?);
        }
        open.sort_by_key(|(created_at, _)| *created_at);
        Ok(open.into_iter().map(|(_, event)| event).collect())
    }

    async fn health(&self) -> Result<()> {
        self.cql
            .read_one::<(Option<String>,)>(&self.st.health, (), "health check")
            .await
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::super::cql_check::{assert_names_only_schema, schema_columns};
    use super::*;
    use std::collections::HashSet;

    const ALL: [&str; 26] = [
        CONTENT_CLAIM,
        CONTENT_READ,
        CONTENT_RELEASE,
        KEY_CLAIM,
        KEY_READ,
        KEY_RELEASE,
        IMAGE_WRITE,
        IMAGE_READ,
        IMAGE_DELETE,
        USER_WRITE,
        USER_DELETE,
        USERS_READ,
        REQUEST_INSERT,
        REQUEST_READ,
        REQUEST_ADVANCE,
        REQUEST_FINISH,
        REQUEST_DELETE,
        BY_IMAGE_WRITE,
        BY_IMAGE_DELETE,
        BY_IMAGE_READ,
        OPEN_WRITE,
        OPEN_DELETE,
        OPEN_SCAN,
        BUCKET_WRITE,
        BUCKET_DELETE,
        BUCKET_SCAN,
    ];

    #[test]
    fn every_statement_names_only_tables_and_columns_of_the_schema() {
        const KEYWORDS: [&str; 15] = [
            "select", "from", "where", "and", "insert", "into", "values", "update", "set", "delete", "if", "not", "exists", "limit", "in",
        ];
        let tables = schema_columns("004_ingest.cql");
        assert_eq!(tables.len(), 8, "{:?}", tables.keys());
        let mut used = HashSet::new();
        for cql in ALL {
            used.insert(assert_names_only_schema(cql, &tables, &KEYWORDS, true));
        }
        assert_eq!(used.len(), tables.len(), "a table of the schema has no statement");
    }

    #[test]
    fn every_insert_binds_one_marker_per_column() {
        for cql in ALL.iter().filter(|c| c.starts_with("INSERT")) {
            let (cols, vals) = cql.split_once("VALUES").expect("values");
            let named = cols.rsplit_once('(').expect("columns").1.split(',').count();
            assert_eq!(named, vals.matches('?').count(), "{cql}");
        }
    }

    #[test]
    fn only_the_claims_and_the_request_rows_are_lightweight_transactions() {
        let lwt: Vec<&str> = ALL.iter().copied().filter(|c| c.contains(" IF ")).collect();
        assert_eq!(
            lwt,
            vec![
                CONTENT_CLAIM,
                CONTENT_RELEASE,
                KEY_CLAIM,
                KEY_RELEASE,
                REQUEST_INSERT,
                REQUEST_ADVANCE,
                REQUEST_FINISH,
                REQUEST_DELETE
            ]
        );
        // Every write of a request row is one of them (see the module docs).
        for cql in ALL.iter().filter(|c| c.contains("{ks}.ingest_requests ")) {
            assert!(cql.starts_with("SELECT") || cql.contains(" IF "), "{cql}");
        }
    }

    #[test]
    fn a_minute_of_requests_is_one_partition() {
        assert_eq!(BUCKET_MICROS, 60 * 1_000_000);
        assert_eq!(59_999_999i64.div_euclid(BUCKET_MICROS), 0);
        assert_eq!(60_000_000i64.div_euclid(BUCKET_MICROS), 1);
    }
}
