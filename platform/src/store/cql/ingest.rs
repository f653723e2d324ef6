//! The ingest store on ScyllaDB (or any CQL cluster), shared by every ingest
//! replica: idempotency keys, duplicate detection by provider and sha256,
//! open requests and re-anonymization requests. The tables are in
//! `schemas/cql/004_ingest.cql`, the statements in [`statements`].
//!
//! SQLite gets each rule of [`IngestStore`] from one write transaction; here,
//! as in [`super::identity`], each rule has one single-partition commit
//! point, a lightweight transaction (LWT) where replicas can race, and every
//! other row is written idempotently and checked against a commit point when
//! read.
//!
//! # Images: the content claim is the commit point
//!
//! `ingest_content` is keyed by `(provider_id, sha256)`. **An image exists
//! while the claim of its bytes names its image id.** The claim carries the
//! image and its first request, so once it is written anyone who finds it can
//! write what its uploader did not: the claim only ever rolls forward, and is
//! taken back only by [`IngestStore::abandon`] (its event never reached the
//! broker). `claim`:
//!
//! 1. With an idempotency key, reads its row in `ingest_keys` (at the serial
//!    consistency). A key that names an existing image answers that image,
//!    as SQLite looks the key up first. A key whose image does not exist (a
//!    leftover of an upload abandoned) is released.
//! 2. Lists the image as a user of its raw blob (`ingest_blob_users`), then
//!    claims the bytes: `INSERT ... IF NOT EXISTS`. Of two uploads of one
//!    provider's bytes, on any replicas, exactly one claim applies.
//! 3. The winner writes the rest ([`ScyllaIngest::complete`]): the
//!    `ingest_images` row, then the first request (an LWT insert), its link
//!    in `ingest_requests_by_image` and its `ingest_open` row. Then it binds
//!    the key (`INSERT ... IF NOT EXISTS`). A write that fails returns the
//!    error and leaves the claim, which the next finder completes.
//! 4. A loser reads the winner's claim, completes whatever of it is missing
//!    (and if that wrote the first request, answers [`Claim::Resumed`], so the
//!    caller publishes its event), binds its key to the winner's image, and
//!    answers it. If the claim was taken back meanwhile, it claims again.
//!
//! A finisher checks the claim again after writing: if `abandon` took it back
//! in between, the finisher removes what it wrote.
//!
//! # Requests: compare-and-set on the state
//!
//! Every write of an `ingest_requests` row is an LWT, so a later change is
//! never shadowed by an earlier write with a later clock. A request moves to
//! `published` only `IF state IN ('pending', 'published')`, and to
//! `anonymized` or `rejected` `IF EXISTS`: a finished request never goes
//! back, as in SQLite. A finished request's `ingest_open` row is deleted. A
//! request row that exists already has its link and open row written again
//! (if it is unfinished), so a writer that stopped half-way is repaired.
//!
//! # Unfinished requests
//!
//! `ingest_open` has one partition per minute of creation, and
//! `ingest_open_buckets` lists the minutes that may hold rows. A partition of
//! a minute holds at most that minute's tombstones (rows are deleted as their
//! requests finish), where one partition for all would fill with them.
//! [`IngestStore::unfinished`] reads the listed minutes side by side, checks
//! each row against its request and its image (removing rows of finished,
//! abandoned or rolled-back requests), answers oldest first, and unlists
//! minutes over an hour old that hold nothing. Removing rows and minutes is
//! housekeeping: a failure there is logged, not returned.
//!
//! # Differences from SQLite
//!
//! - An upload takes about five Paxos rounds (key read, content claim, first
//!   request, key claim, and the serial read a duplicate makes) instead of one
//!   local transaction.
//! - `set_states` is not atomic: each change is its own compare-and-set, run
//!   concurrently; a failure leaves some applied, and the caller (the outcome
//!   follower) retries the batch, which applies the rest.
//! - "Oldest first" orders by the creating process's clock (microseconds,
//!   strictly increasing within a process); SQLite by insertion.
//! - Every replica's start re-announces every replica's unfinished requests,
//!   including ones another live replica is announcing at that moment; the
//!   event keeps its id, so consumers drop the duplicate.
//! - Two uploads that send one idempotency key with different bytes at the
//!   same moment may both create an image (the key then names one of them);
//!   SQLite serializes them, and the second answers the first's image.
//! - An upload whose replica stopped after its claim is completed by the next
//!   upload of its bytes or key ([`Claim::Resumed`]); until then
//!   [`IngestStore::image`] does not find it. If nothing uploads it again, its
//!   claim stays without rows: the client was never answered 202, and its
//!   raw blob stays listed as used.
//! - A claim whose outcome is unknown (a timeout) is left as it is: if it
//!   applied, the next finder completes it, although the client was told the
//!   upload failed.
//! - `add_request` refuses an image that does not exist, as SQLite's foreign
//!   key does, but an `abandon` of that image's last request running at the
//!   same moment can still leave the new request without its image.
//!
//! Every lightweight transaction here may run twice with the same effect (a
//! claim recognises its own id, a release names its own claim, a state move
//! is idempotent), so one that times out in Paxos (contention, a slow
//! replica) is tried again ([`super::exec::Cql::lwt_retried`]).
//!
//! Lightweight transactions need a keyspace without tablets on ScyllaDB
//! versions whose tablets lack them (`alpes migrate --tablets`). With several
//! datacenters, keep `LOCAL_SERIAL` with ingest in one datacenter, or use
//! `SERIAL`.

mod rows;
mod statements;

use super::conn::db;
use super::exec::Cql;
use crate::store::{Claim, ImageRow, IngestStore, NewImage, RequestState};
use crate::{Error, Result};
use alpes_domain::dimse::CallingAe;
use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt};
use rows::{corrupt, size, ContentRow, ImageRecord, NewRequest, RequestRecord};
use scylla::client::session::Session;
use statements::Statements;
use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// How many times a claim is tried again when the row it lost to vanished before it was read.
const CLAIM_ATTEMPTS: u32 = 5;
/// The one partition of `ingest_open_buckets`.
const BUCKETS_SHARD: i32 = 0;
/// Statements run at once by `set_states` and `unfinished`.
const IN_FLIGHT: usize = 32;
/// Microseconds per `ingest_open` partition.
const BUCKET_MICROS: i64 = 60_000_000;
/// How old an empty minute must be before it is unlisted (microseconds).
const UNLIST_AFTER_MICROS: i64 = 3_600_000_000;

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

/// What completing a claim found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Completed {
    /// The image exists; `resumed` when this call wrote its first request.
    Done { resumed: bool },
    /// The claim was taken back meanwhile: the image does not exist.
    Gone,
}

fn now_micros() -> i64 {
    alpes_schemas::now_millis().saturating_mul(1000)
}

/// Logs a failed housekeeping write instead of failing the caller.
fn housekeeping(result: Result<()>, what: &'static str) {
    if let Err(e) = result {
        tracing::warn!(error = %e, step = what, "ingest store housekeeping failed; the next reader does it again");
    }
}

impl ScyllaIngest {
    /// The ingest store in `args.keyspace` on an open session; prepares every statement now (the
    /// tables must exist: `alpes migrate`).
    pub async fn new(session: Arc<Session>, args: &super::ScyllaArgs) -> Result<ScyllaIngest> {
        let cql = Cql::new(session, args)?;
        let st = Statements::prepare(&cql).await?;
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

    async fn read_request(&self, request_id: &str) -> Result<Option<RequestRecord>> {
        self.cql.read_one(&self.st.request_read, (request_id,), "read a request").await
    }

    /// Writes a request's rows: the request (unless it exists), its image link, its minute and
    /// its open row. A request that exists already, of this image and unfinished, gets its link
    /// and open row written again (its writer may have stopped before them). Whether this call
    /// wrote the request row. `list_always` writes the minute's row even if this process wrote
    /// it before (a finisher may write into an old minute another process unlisted).
    async fn write_request(&self, r: &NewRequest<'_>, list_always: bool) -> Result<bool> {
        let bucket = r.created_at.div_euclid(BUCKET_MICROS);
        let values = (
            r.request_id,
            r.image_id,
            RequestState::Pending.as_str(),
            r.event,
            bucket,
            r.created_at,
        );
        let new = self.cql.lwt_retried(&self.st.request_insert, values, "write a request").await?;
        let (bucket, created_at) = if new {
            (bucket, r.created_at)
        } else {
            match self.read_request(r.request_id).await? {
                Some(old) if old.image_id.as_deref() == Some(r.image_id) && old.unfinished() => (
                    old.bucket.ok_or_else(|| corrupt("ingest_requests"))?,
                    old.created_at.ok_or_else(|| corrupt("ingest_requests"))?,
                ),
                _ => return Ok(false),
            }
        };
        self.cql
            .write(&self.st.by_image_write, (r.image_id, r.request_id), "link a request")
            .await?;
        if list_always || self.listed.load(Ordering::SeqCst) != bucket {
            self.cql
                .write(&self.st.bucket_write, (BUCKETS_SHARD, bucket), "list a minute")
                .await?;
            self.listed.store(bucket, Ordering::SeqCst);
        }
        self.cql
            .write(&self.st.open_write, (bucket, created_at, r.request_id, r.event), "open a request")
            .await?;
        Ok(new)
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

    /// Writes every row of the image a claim carries (they are idempotent): its blob user, its
    /// `ingest_images` row, then its first request. Whether this call wrote that request.
    async fn complete(&self, claim: &ContentRow, list_always: bool) -> Result<bool> {
        let image = claim.image()?;
        self.cql
            .write(
                &self.st.user_write,
                (image.sha256.as_str(), image.image_id.as_str()),
                "list a blob user",
            )
            .await?;
        let created_at = claim.created_at.ok_or_else(|| corrupt("ingest_content"))?;
        self.write_image(&image, claim.idem_key.as_deref(), created_at).await?;
        let (Some(request_id), Some(event)) = (&claim.request_id, &claim.event) else {
            return Err(corrupt("ingest_content"));
        };
        let request = NewRequest {
            image_id: &image.image_id,
            request_id,
            event,
            created_at,
        };
        self.write_request(&request, list_always).await
    }

    /// Completes the image of another upload's claim, then checks that the claim still names it:
    /// if it was taken back in between, removes what this call may have brought back.
    async fn finish(&self, claim: &ContentRow) -> Result<Completed> {
        let resumed = self.complete(claim, true).await?;
        let image = claim.image()?;
        if self.claim_names(&image.provider_id, &image.sha256, &image.image_id).await? {
            return Ok(Completed::Done { resumed });
        }
        if let Some(request_id) = &claim.request_id {
            if let Some(record) = self.read_request(request_id).await? {
                self.forget_request(request_id, &record).await;
            }
        }
        self.forget_image(&image.image_id, &image.sha256).await;
        Ok(Completed::Gone)
    }

    /// What finding `claim` answers an upload: the image it names, `Resumed` if this call wrote
    /// its first request; `None` if it was taken back meanwhile.
    async fn answer(&self, claim: &ContentRow) -> Result<Option<Claim>> {
        let image_id = claim.id()?.to_owned();
        Ok(match self.finish(claim).await? {
            Completed::Gone => None,
            Completed::Done { resumed: false } => Some(Claim::Existing { image_id }),
            Completed::Done { resumed: true } => Some(Claim::Resumed {
                image_id,
                event_json: claim.event.clone().unwrap_or_default(),
            }),
        })
    }

    /// What `provider`'s `key` answers: the image it names, if that image exists. A key whose
    /// image does not exist is a leftover of an upload abandoned: it is released.
    async fn image_of_key(&self, provider: &str, key: &str) -> Result<Option<Claim>> {
        let Some((image_id, sha256)) = self.key_of(provider, key).await? else {
            return Ok(None);
        };
        if let Some(claim) = self.content_claim_of(provider, &sha256).await? {
            if claim.image_id.as_deref() == Some(image_id.as_str()) {
                if let Some(answer) = self.answer(&claim).await? {
                    return Ok(Some(answer));
                }
            }
        }
        self.cql
            .lwt_retried(&self.st.key_release, (provider, key, image_id.as_str()), "release a key")
            .await?;
        Ok(None)
    }

    /// The image id and sha256 a key names (read at the serial consistency).
    async fn key_of(&self, provider: &str, key: &str) -> Result<Option<(String, String)>> {
        match self
            .cql
            .read_one::<(Option<String>, Option<String>)>(&self.st.key_read, (provider, key), "read a key")
            .await?
        {
            None => Ok(None),
            Some((Some(id), Some(sha))) => Ok(Some((id, sha))),
            Some(_) => Err(corrupt("ingest_keys")),
        }
    }

    /// Binds `key` to `image_id` of `sha256`: `None` once it names that image, else the other
    /// existing image it names. A key left by an image that does not exist is taken over.
    async fn bind_key(&self, provider: &str, key: &str, image_id: &str, sha256: &str) -> Result<Option<String>> {
        for _ in 0..CLAIM_ATTEMPTS {
            if self
                .cql
                .lwt_retried(&self.st.key_claim, (provider, key, image_id, sha256), "claim a key")
                .await?
            {
                return Ok(None);
            }
            let Some((other, other_sha)) = self.key_of(provider, key).await? else {
                continue;
            };
            if other == image_id {
                return Ok(None);
            }
            if self.claim_names(provider, &other_sha, &other).await? {
                return Ok(Some(other));
            }
            self.cql
                .lwt_retried(&self.st.key_release, (provider, key, other.as_str()), "release a key")
                .await?;
        }
        Err(Error::Store(
            "scylla: the claim of this idempotency key keeps changing hands".into(),
        ))
    }

    /// Removes what is left of a request: its open row, its image link and the request.
    async fn forget_request(&self, request_id: &str, r: &RequestRecord) {
        if let (Some(bucket), Some(created_at)) = (r.bucket, r.created_at) {
            let closed = self
                .cql
                .write(&self.st.open_delete, (bucket, created_at, request_id), "close a request")
                .await;
            housekeeping(closed, "close a request");
        }
        if let Some(image_id) = &r.image_id {
            let unlinked = self
                .cql
                .write(&self.st.by_image_delete, (image_id.as_str(), request_id), "unlink a request")
                .await;
            housekeeping(unlinked, "unlink a request");
        }
        let deleted = self
            .cql
            .lwt_retried(&self.st.request_delete, (request_id,), "delete a request")
            .await;
        housekeeping(deleted.map(|_| ()), "delete a request");
    }

    /// Removes an image's row and its blob user row (its claim is gone already).
    async fn forget_image(&self, image_id: &str, sha256: &str) {
        let row = self.cql.write(&self.st.image_delete, (image_id,), "delete an image").await;
        housekeeping(row, "delete an image");
        let user = self.cql.write(&self.st.user_delete, (sha256, image_id), "unlist a blob user").await;
        housekeeping(user, "unlist a blob user");
    }

    /// The event of an open row that still stands for an unfinished request of an existing
    /// image; a row that does not is removed.
    async fn still_open(&self, bucket: i64, created_at: i64, request_id: String, event: String) -> Result<Option<(i64, String)>> {
        let open = match self.read_request(&request_id).await? {
            Some(r) if r.unfinished() => self.image(r.image_id.as_deref().unwrap_or_default()).await?.is_some(),
            _ => false,
        };
        if open {
            return Ok(Some((created_at, event)));
        }
        let closed = self
            .cql
            .write(&self.st.open_delete, (bucket, created_at, request_id.as_str()), "close a request")
            .await;
        housekeeping(closed, "close a request");
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
            .map_err(db("read open requests"))?;
        let open: Vec<(i64, String)> = futures::stream::iter(rows)
            .map(|(created_at, request_id, event)| self.still_open(bucket, created_at, request_id, event))
            .buffer_unordered(IN_FLIGHT)
            .try_filter_map(|r| async move { Ok(r) })
            .try_collect()
            .await?;
        if open.is_empty() && (bucket + 1) * BUCKET_MICROS + UNLIST_AFTER_MICROS < now {
            let unlisted = self
                .cql
                .write(&self.st.bucket_delete, (BUCKETS_SHARD, bucket), "unlist a minute")
                .await;
            housekeeping(unlisted, "unlist a minute");
        }
        Ok(open)
    }
}

#[async_trait]
impl IngestStore for ScyllaIngest {
    async fn claim(&self, img: NewImage) -> alpes_domain::Result<Claim> {
        let (provider, sha, id) = (
            img.image.provider_id.as_str(),
            img.image.sha256.as_str(),
            img.image.image_id.as_str(),
        );
        let key = img.idempotency_key.as_deref();
        if let Some(key) = key {
            if let Some(found) = self.image_of_key(provider, key).await? {
                return Ok(found);
            }
        }
        let ours = ContentRow::of(&img, self.next_created_at())?;
        for _ in 0..CLAIM_ATTEMPTS {
            self.cql.write(&self.st.user_write, (sha, id), "list a blob user").await?;
            let values = (
                provider,
                sha,
                id,
                size(&img.image)?,
                img.image.media_type.as_str(),
                img.image.blob_key.as_str(),
                img.image.tipo_imagen.as_deref(),
                img.image.region_anatomica.as_deref(),
                key,
                ours.created_at,
                img.request_id.as_str(),
                img.event_json.as_str(),
            );
            if self.cql.lwt_retried(&self.st.content_claim, values, "claim the bytes").await? {
                // Committed: from here on it only rolls forward (a failure leaves it to a finisher).
                self.complete(&ours, false).await?;
                if let Some(key) = key {
                    if self.bind_key(provider, key, id, sha).await?.is_some() {
                        tracing::warn!("an idempotency key came with other bytes at the same moment; both uploads stand");
                    }
                }
                return Ok(Claim::Created);
            }
            // The bytes are taken: complete the winner's image and answer it.
            let Some(winner) = self.content_claim_of(provider, sha).await? else {
                continue;
            };
            if winner.image_id.as_deref() == Some(id) {
                // Ours: the claim timed out in Paxos, was tried again, and its first try had applied.
                self.complete(&ours, false).await?;
                return Ok(Claim::Created);
            }
            self.cql.write(&self.st.user_delete, (sha, id), "unlist a blob user").await?;
            let Some(answer) = self.answer(&winner).await? else {
                continue;
            };
            if let Some(key) = key {
                let theirs = winner.id()?;
                if let Some(other) = self.bind_key(provider, key, theirs, sha).await? {
                    // The key names another existing image: it is looked up first, as in SQLite.
                    return Ok(Claim::Existing { image_id: other });
                }
            }
            return Ok(answer);
        }
        Err(alpes_domain::Error::Store(
            "scylla: the claim of these bytes keeps changing hands".into(),
        ))
    }

    async fn add_request(&self, image_id: &str, request_id: &str, event_json: &str) -> alpes_domain::Result<()> {
        if self.image(image_id).await?.is_none() {
            return Err(alpes_domain::Error::Store(format!("no image {image_id} to add a request to")));
        }
        let request = NewRequest {
            image_id,
            request_id,
            event: event_json,
            created_at: self.next_created_at(),
        };
        if self.write_request(&request, false).await? {
            Ok(())
        } else {
            Err(alpes_domain::Error::Store("a request with this id exists already".into()))
        }
    }

    async fn set_state(&self, request_id: &str, state: RequestState) -> alpes_domain::Result<bool> {
        let Some(record) = self.read_request(request_id).await? else {
            return Ok(false);
        };
        let finished = matches!(state, RequestState::Anonymized | RequestState::Rejected);
        let applied = if finished {
            self.cql
                .lwt_retried(&self.st.request_finish, (state.as_str(), request_id), "finish a request")
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
            let closed = self
                .cql
                .write(&self.st.open_delete, (bucket, created_at, request_id), "close a request")
                .await;
            housekeeping(closed, "close a request");
        }
        Ok(applied)
    }

    async fn set_states(&self, changes: Vec<(String, RequestState)>) -> alpes_domain::Result<usize> {
        let moved: Vec<bool> = futures::stream::iter(changes)
            .map(|(request_id, state)| async move { self.set_state(&request_id, state).await })
            .buffer_unordered(IN_FLIGHT)
            .try_collect()
            .await?;
        Ok(moved.into_iter().filter(|m| *m).count())
    }

    async fn abandon(&self, request_id: &str) -> alpes_domain::Result<bool> {
        let Some(record) = self.read_request(request_id).await? else {
            return Ok(true);
        };
        let image_id = record.image_id.clone().ok_or_else(|| corrupt("ingest_requests"))?;
        let others: Vec<(String,)> = self
            .cql
            .scan::<(String,)>(&self.st.by_image_read, (image_id.as_str(),), "read an image's requests")
            .await?
            .try_collect()
            .await
            .map_err(db("read an image's requests"))?;
        let last = others.iter().all(|(r,)| r == request_id);
        let image = self
            .cql
            .read_one::<ImageRecord>(&self.st.image_read, (image_id.as_str(),), "read an image")
            .await?;
        let sha = image.as_ref().and_then(|i| i.sha256.clone());
        if let (true, Some(image)) = (last, image) {
            // The claim goes first: from then on the image does not exist, and a finisher that
            // read the claim before removes what it writes.
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
                    .lwt_retried(&self.st.key_release, (p.as_str(), key, image_id.as_str()), "release a key")
                    .await?;
            }
            self.forget_image(&image_id, &s).await;
        }
        self.forget_request(request_id, &record).await;
        match sha {
            Some(sha) => self.blob_in_use(&sha).await,
            None => Ok(true),
        }
    }

    async fn blob_in_use(&self, sha256: &str) -> alpes_domain::Result<bool> {
        Ok(self
            .cql
            .read_one::<(String,)>(&self.st.users_read, (sha256,), "read a blob's users")
            .await?
            .is_some())
    }

    async fn image(&self, image_id: &str) -> alpes_domain::Result<Option<ImageRow>> {
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

    async fn request_state(&self, request_id: &str) -> alpes_domain::Result<Option<RequestState>> {
        let record = self.read_request(request_id).await?;
        Ok(record.and_then(|r| r.state.as_deref().and_then(RequestState::parse)))
    }

    async fn unfinished(&self) -> alpes_domain::Result<Vec<String>> {
        let buckets: Vec<(i64,)> = self
            .cql
            .scan::<(i64,)>(&self.st.bucket_scan, (BUCKETS_SHARD,), "read the listed minutes")
            .await?
            .try_collect()
            .await
            .map_err(db("read the listed minutes"))?;
        let now = now_micros();
        let minutes: Vec<Vec<(i64, String)>> = futures::stream::iter(buckets)
            .map(|(bucket,)| self.unfinished_in(bucket, now))
            .buffer_unordered(4)
            .try_collect()
            .await?;
        let mut open: Vec<(i64, String)> = minutes.into_iter().flatten().collect();
        open.sort_by_key(|(created_at, _)| *created_at);
        Ok(open.into_iter().map(|(_, event)| event).collect())
    }

    async fn put_calling_ae(&self, ae_title: &str, provider_id: &str, now: i64) -> alpes_domain::Result<()> {
        Ok(self
            .cql
            .write(&self.st.ae_write, (ae_title, provider_id, now), "map a calling AE title")
            .await?)
    }

    async fn remove_calling_ae(&self, ae_title: &str) -> alpes_domain::Result<bool> {
        let had = self
            .cql
            .read_one::<(Option<String>,)>(&self.st.ae_read, (ae_title,), "read a calling AE title")
            .await?
            .is_some();
        if had {
            self.cql.write(&self.st.ae_delete, (ae_title,), "unmap a calling AE title").await?;
        }
        Ok(had)
    }

    async fn calling_aes(&self) -> alpes_domain::Result<Vec<CallingAe>> {
        let rows: Vec<(String, Option<String>, Option<i64>)> = self
            .cql
            .scan(&self.st.ae_scan, (), "read the calling AE titles")
            .await?
            .try_collect()
            .await
            .map_err(db("read the calling AE titles"))?;
        let mut aes: Vec<CallingAe> = rows
            .into_iter()
            .filter_map(|(ae_title, provider_id, updated_at)| {
                Some(CallingAe {
                    ae_title,
                    provider_id: provider_id?,
                    updated_at: updated_at.unwrap_or(0),
                })
            })
            .collect();
        aes.sort_by(|a, b| a.ae_title.cmp(&b.ae_title));
        Ok(aes)
    }

    async fn health(&self) -> alpes_domain::Result<()> {
        Ok(self
            .cql
            .read_one::<(Option<String>,)>(&self.st.health, (), "health check")
            .await
            .map(|_| ())?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minute_of_requests_is_one_partition() {
        assert_eq!(BUCKET_MICROS, 60 * 1_000_000);
        assert_eq!(59_999_999i64.div_euclid(BUCKET_MICROS), 0);
        assert_eq!(60_000_000i64.div_euclid(BUCKET_MICROS), 1);
    }
}
