//! The production catalog: ScyllaDB, through the `scylla` driver (prepared
//! statements, token-aware routing). The tables are in
//! `schemas/cql/002_catalog.cql`.
//!
//! The materializer may run as several replicas, events of one image arrive
//! on three topics (so possibly at three replicas), and every event can be
//! redelivered. SQLite gets the catalog's rules from one transaction per
//! batch; here there is no transaction, no lightweight transaction and no
//! counter. Every rule holds because every write is idempotent and every
//! conflict is settled either by last-write-wins on a timestamp taken from
//! the event, or by a fold over rows that are only ever added, done on read.
//!
//! # Images: sightings and statics
//!
//! `catalog_images` has one partition per image. Every image event
//! (registration, rejection, anonymized output) adds one clustering row, a
//! *sighting*, keyed `(occurred_at, event_id)`; a sighting is never changed
//! or removed. On read:
//!
//! - `created_at` and `provider_id` are the earliest sighting's, and the
//!   labels (`tipo_imagen`, `region_anatomica`) the first that names them.
//!   A re-anonymization request or a redelivery adds a later sighting, which
//!   changes nothing; an earlier registration arriving late becomes the
//!   earliest. No arrival order changes the result.
//! - The latest anonymized output is one static cell, `output` (the whole
//!   output as JSON, so it is replaced whole and never mixed cell by cell
//!   with another), written `USING TIMESTAMP` of the output's time: its
//!   `anonymized_at` in microseconds plus a tie-break in `0..1000` derived
//!   from the event id. ScyllaDB keeps the cell with the highest timestamp,
//!   so the newest output wins in any arrival order and a late older one
//!   changes nothing. The latest rejection is the static cell `rejection`,
//!   written the same way.
//! - `estado` is not stored: `anonimizada` when `output` is present, else
//!   `rechazada` when `rejection` is, else `registrada`. Cells are never
//!   deleted, so it only moves forward, and a rejection after an output
//!   leaves the image `anonimizada`.
//!
//! ScyllaDB refuses a write timestamp more than three days ahead of its clock
//! (`restrict_future_timestamp`), and a refused write would stop the
//! materializer for good, so a timestamp is capped at one day ahead of this
//! process's clock: an event dated further ahead is ordered as if it were a
//! day ahead.
//!
//! # Listings by time
//!
//! `catalog_listings` holds keys in time order, one partition per
//! `(listing, owner, UTC hour)`: every image and each provider's images,
//! newest first by `(created_at, image_id)`, and users, oldest first.
//! `catalog_buckets` lists the hours that hold rows, so a page walks only
//! those (a bucket row is written before any row of its bucket, and each
//! process remembers the bucket rows it wrote). Hour buckets keep a
//! partition at tens of thousands of rows even at a million images a day.
//! The opaque cursor is the last `(time, id)` returned, and the next page
//! starts strictly after it, so a boundary holds while new rows arrive.
//! Filters other than provider and time are applied to the rows read, page
//! after page, until the page is full or the range is exhausted.
//!
//! A listing row holds only keys, and counts only while its time is still
//! the item's `created_at` (and, by provider, the image is still that
//! provider's). After writing an image's sightings, `apply` reads the
//! partition back and writes the listing rows only if the earliest sighting
//! is one it just wrote, so an image normally has one row per listing; a row
//! left behind by a later-found earlier registration is skipped on read. The
//! read-back comes after the write, and what the replica just wrote is added
//! to what it read (a read at consistency ONE may miss it), so the earliest
//! sighting's listing rows are always written by whoever applied it; and
//! they are written before the event id is recorded, so a crash in between
//! re-applies the event.
//!
//! # QIDO
//!
//! - `catalog_instances` has one partition per study, clustered in QIDO
//!   order `(series_uid, instance_number, sop_instance_uid, image_id)`
//!   (absent values stored as empty text or `i32::MIN`, which sort first as
//!   NULL does in SQLite). An output writes its row `USING TIMESTAMP` of the
//!   output, with every column set, so the newest output of an image wins
//!   the row. An output whose UIDs differ from an older output's leaves the
//!   older key behind: after writing, `apply` reads the image back and
//!   deletes the row of every other output's key `USING TIMESTAMP` of the
//!   current (newest) output, which can only shadow writes older than it.
//!   Two replicas that apply two outputs of one image at once each write
//!   their sighting and then read: at the configured consistency (quorum by
//!   default) at least one of them sees both and deletes the older key.
//!   `instances` also drops a row whose output is not the image's current
//!   one.
//! - `catalog_study_index` lists every study in StudyInstanceUID order
//!   within 16 fixed partitions (merged on read), with each (PatientID,
//!   StudyDate, Modality) combination its instances have had, and
//!   `catalog_studies_by_patient` the studies of each PatientID pseudonym.
//!   They are only added to: they choose which studies to read, and each
//!   study is confirmed by reading its `catalog_instances` partition, where
//!   the query's filters are applied per instance exactly as SQLite does
//!   (PatientID with `*` and `?`, StudyDate range, Modality, UIDs), then
//!   grouped, counted and cut by `offset` and `limit`.
//!
//! # Users, usage and event ids
//!
//! - `catalog_users` has one row per registration event of a user: the
//!   earliest gives `created_at`, the latest the role and organization.
//! - `catalog_usage` holds every download twice, by image and by consumer,
//!   newest first by `(occurred_at, event_id)`, in hour buckets; a usage
//!   event never changes, so its rows hold everything.
//! - `catalog_events` records applied event ids. `apply` reads it to skip
//!   known events and count the new ones, and records an event only after
//!   its effects are written. Two replicas racing on one event may both
//!   count it as new; its writes are idempotent, so it still counts once in
//!   every table.
//!
//! A batch is not atomic here, unlike SQLite: images, users and downloads
//! are applied concurrently, and a failure can leave a batch half applied.
//! That is safe for the same reason: the materializer retries the batch, the
//! recorded events are skipped and the rest is written again.
//!
//! Where order of application decided in SQLite, event time decides here,
//! since replicas apply in no common order: an image's provider and labels
//! are its earliest event's (SQLite: the first applied), a user's role is its
//! latest registration's, and downloads are listed by `(occurred_at,
//! event_id)` (SQLite: in the order applied). With events produced by Alpes
//! these agree.
//!
//! Partition keys cannot be empty, so an event with an empty image, user,
//! study or event id (Alpes produces none) has those effects skipped rather
//! than stopping the materializer on a write that would always fail.

use super::catalog::{
    report_summary, AnonymizedOutput, CatalogEvent, CatalogImage, CatalogStore, CatalogUser, DicomQuery, Estado, ImageFilter, ImagePage,
    SeriesSummary, StudySummary, Usage, UsageBy, UsagePage, UserPage,
};
use super::scylla_conn::{db, ScyllaArgs};
use super::scylla_exec::{Cql, Kind};
use crate::{Error, Result};
use alpes_schemas::{EventoUsoDatos, ImagenAnonimizada, ImagenRechazada, ImagenRegistrada, UsuarioRegistrado};
use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt};
use scylla::client::pager::TypedRowStream;
use scylla::client::session::Session;
use scylla::deserialize::row::DeserializeRow as RowDeserialize;
use scylla::statement::prepared::PreparedStatement;
use scylla::value::MaybeUnset;
use scylla::DeserializeRow;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex};

/// The width of a listing bucket: one UTC hour, in milliseconds.
const BUCKET_MS: i64 = 3_600_000;
/// The partitions of `catalog_study_index` (changing it needs a new table).
const STUDY_SHARDS: i32 = 16;
/// Rows per page when a study index partition is scanned (16 of them start at once).
const INDEX_PAGE_ROWS: i32 = 200;
/// How many images, users or downloads one `apply` writes at once.
const WRITES_IN_FLIGHT: usize = 32;
/// How many point reads run at once.
const READS_IN_FLIGHT: usize = 64;
/// How many bucket numbers one read of `catalog_buckets` returns.
const BUCKETS_PER_READ: i32 = 32;
/// The fewest and most listing rows read at a time.
const WALK_ROWS: (usize, usize) = (16, 256);
/// How many candidate studies a QIDO search confirms at once.
const STUDIES_PER_ROUND: usize = 16;
/// How far ahead of this process's clock a write timestamp may be (ScyllaDB refuses more than three days).
const MAX_AHEAD_MICROS: i64 = 86_400_000_000;
/// How many bucket rows a process remembers having written before it forgets them all.
const KNOWN_BUCKETS: usize = 65_536;
/// An absent InstanceNumber in a clustering key (sorts first, as NULL does in SQLite).
const ABSENT_NUMBER: i32 = i32::MIN;

/// The listings of `catalog_listings`, `catalog_buckets` and `catalog_usage`.
const IMAGES: &str = "images";
const PROVIDER: &str = "provider";
const USERS: &str = "users";
const USAGE_IMAGE: &str = "usage_image";
const USAGE_CONSUMER: &str = "usage_consumer";

/// The kinds of sighting.
const REGISTERED: &str = "registered";
const ANONYMIZED: &str = "anonymized";
const REJECTED: &str = "rejected";

// The statements, `{ks}` standing for the keyspace.
const EVENT_KNOWN: &str = "SELECT event_id FROM {ks}.catalog_events WHERE event_id = ?";
const EVENT_RECORD: &str = "INSERT INTO {ks}.catalog_events (event_id) VALUES (?)";
const IMAGE_REGISTERED: &str = "INSERT INTO {ks}.catalog_images \
    (image_id, seen_at, event_id, kind, provider_id, tipo_imagen, region_anatomica) VALUES (?, ?, ?, ?, ?, ?, ?)";
const IMAGE_ANONYMIZED: &str = "INSERT INTO {ks}.catalog_images \
    (image_id, seen_at, event_id, kind, provider_id, tipo_imagen, region_anatomica, study_uid, series_uid, instance_number, \
    sop_instance_uid, output) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?";
const IMAGE_REJECTED: &str = "INSERT INTO {ks}.catalog_images \
    (image_id, seen_at, event_id, kind, provider_id, rejection) VALUES (?, ?, ?, ?, ?, ?) USING TIMESTAMP ?";
const IMAGE_READ: &str = "SELECT seen_at, event_id, kind, provider_id, tipo_imagen, region_anatomica, study_uid, series_uid, \
    instance_number, sop_instance_uid, output, rejection FROM {ks}.catalog_images WHERE image_id = ?";
const INSTANCE_WRITE: &str = "INSERT INTO {ks}.catalog_instances \
    (study_uid, series_uid, instance_number, sop_instance_uid, image_id, output_event, patient_id, study_date, modality, series_number) \
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?";
const INSTANCE_DELETE: &str = "DELETE FROM {ks}.catalog_instances USING TIMESTAMP ? \
    WHERE study_uid = ? AND series_uid = ? AND instance_number = ? AND sop_instance_uid = ? AND image_id = ?";
const INSTANCES_OF_STUDY: &str = "SELECT series_uid, instance_number, sop_instance_uid, image_id, output_event, patient_id, study_date, \
    modality, series_number FROM {ks}.catalog_instances WHERE study_uid = ?";
const INSTANCES_OF_SERIES: &str = "SELECT series_uid, instance_number, sop_instance_uid, image_id, output_event, patient_id, study_date, \
    modality, series_number FROM {ks}.catalog_instances WHERE study_uid = ? AND series_uid = ?";
const STUDY_INDEX_WRITE: &str = "INSERT INTO {ks}.catalog_study_index (shard, study_uid, patient_id, study_date, modality) \
    VALUES (?, ?, ?, ?, ?)";
const STUDY_INDEX_SCAN: &str = "SELECT study_uid, patient_id, study_date, modality FROM {ks}.catalog_study_index WHERE shard = ?";
const PATIENT_INDEX_WRITE: &str = "INSERT INTO {ks}.catalog_studies_by_patient (patient_id, study_uid) VALUES (?, ?)";
const PATIENT_INDEX_SCAN: &str = "SELECT study_uid FROM {ks}.catalog_studies_by_patient WHERE patient_id = ?";
const USER_WRITE: &str = "INSERT INTO {ks}.catalog_users (user_id, registered_at, event_id, user_role, organization) \
    VALUES (?, ?, ?, ?, ?)";
const USER_READ: &str = "SELECT registered_at, event_id, user_role, organization FROM {ks}.catalog_users WHERE user_id = ?";
const USAGE_WRITE: &str = "INSERT INTO {ks}.catalog_usage \
    (listing, owner_id, bucket, occurred_at, event_id, consumer_id, provider_id, image_id, size_bytes, amount_minor, currency, charge_key) \
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
const USAGE_PAGE: &str = "SELECT occurred_at, event_id, consumer_id, provider_id, image_id, size_bytes, amount_minor, currency, \
    charge_key FROM {ks}.catalog_usage WHERE listing = ? AND owner_id = ? AND bucket = ? AND (occurred_at, event_id) < (?, ?) LIMIT ?";
const LISTING_WRITE: &str = "INSERT INTO {ks}.catalog_listings (listing, owner_id, bucket, sort_at, item_id) VALUES (?, ?, ?, ?, ?)";
const LISTING_NEWEST: &str = "SELECT sort_at, item_id FROM {ks}.catalog_listings \
    WHERE listing = ? AND owner_id = ? AND bucket = ? AND (sort_at, item_id) < (?, ?) LIMIT ?";
const LISTING_OLDEST: &str = "SELECT sort_at, item_id FROM {ks}.catalog_listings \
    WHERE listing = ? AND owner_id = ? AND bucket = ? AND (sort_at, item_id) > (?, ?) ORDER BY sort_at ASC, item_id ASC LIMIT ?";
const BUCKET_WRITE: &str = "INSERT INTO {ks}.catalog_buckets (listing, owner_id, bucket) VALUES (?, ?, ?)";
const BUCKETS_NEWEST: &str = "SELECT bucket FROM {ks}.catalog_buckets \
    WHERE listing = ? AND owner_id = ? AND bucket <= ? ORDER BY bucket DESC LIMIT ?";
const BUCKETS_OLDEST: &str = "SELECT bucket FROM {ks}.catalog_buckets \
    WHERE listing = ? AND owner_id = ? AND bucket >= ? ORDER BY bucket ASC LIMIT ?";

/// The ScyllaDB catalog. Cheap to clone; the statements are prepared once, by [`ScyllaCatalog::new`].
#[derive(Clone)]
pub struct ScyllaCatalog {
    cql: Cql,
    st: Arc<Statements>,
    /// The bucket rows this process wrote (a cache: a miss only writes the row again).
    known_buckets: Arc<Mutex<HashSet<BucketKey>>>,
}

impl fmt::Debug for ScyllaCatalog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScyllaCatalog")
            .field("keyspace", &self.cql.keyspace())
            .finish_non_exhaustive()
    }
}

/// A `catalog_buckets` row: `(listing, owner_id, bucket)`.
type BucketKey = (&'static str, String, i64);

#[derive(Debug)]
struct Statements {
    event_known: PreparedStatement,
    event_record: PreparedStatement,
    image_registered: PreparedStatement,
    image_anonymized: PreparedStatement,
    image_rejected: PreparedStatement,
    image_read: PreparedStatement,
    instance_write: PreparedStatement,
    instance_delete: PreparedStatement,
    instances_of_study: PreparedStatement,
    instances_of_series: PreparedStatement,
    study_index_write: PreparedStatement,
    study_index_scan: PreparedStatement,
    patient_index_write: PreparedStatement,
    patient_index_scan: PreparedStatement,
    user_write: PreparedStatement,
    user_read: PreparedStatement,
    usage_write: PreparedStatement,
    usage_page: PreparedStatement,
    listing_write: PreparedStatement,
    listing_newest: PreparedStatement,
    listing_oldest: PreparedStatement,
    bucket_write: PreparedStatement,
    buckets_newest: PreparedStatement,
    buckets_oldest: PreparedStatement,
}

impl ScyllaCatalog {
    /// Connects with `args` and prepares the catalog's statements (the tables must exist: `alpes migrate`).
    pub async fn connect(args: &ScyllaArgs) -> Result<ScyllaCatalog> {
        let session = args.connect().await?;
        ScyllaCatalog::new(session, args).await
    }

    /// The catalog in `args.keyspace` on an open session; prepares every statement now.
    pub async fn new(session: Arc<Session>, args: &ScyllaArgs) -> Result<ScyllaCatalog> {
        let cql = Cql::new(session, args)?;
        // Every statement is idempotent: a write sets the same cells to the same values (with the same
        // timestamp where it names one), so the driver may retry any of them.
        let prepare = |template: &'static str, page_size: Option<i32>| {
            let cql = &cql;
            async move {
                let mut p = cql.prepare(template, Kind::Plain).await?;
                if let Some(rows) = page_size {
                    p.set_page_size(rows);
                }
                Ok::<_, Error>(p)
            }
        };
        let paged = Some(args.page_size);
        let st = Statements {
            event_known: prepare(EVENT_KNOWN, None).await?,
            event_record: prepare(EVENT_RECORD, None).await?,
            image_registered: prepare(IMAGE_REGISTERED, None).await?,
            image_anonymized: prepare(IMAGE_ANONYMIZED, None).await?,
            image_rejected: prepare(IMAGE_REJECTED, None).await?,
            image_read: prepare(IMAGE_READ, None).await?,
            instance_write: prepare(INSTANCE_WRITE, None).await?,
            instance_delete: prepare(INSTANCE_DELETE, None).await?,
            instances_of_study: prepare(INSTANCES_OF_STUDY, paged).await?,
            instances_of_series: prepare(INSTANCES_OF_SERIES, paged).await?,
            study_index_write: prepare(STUDY_INDEX_WRITE, None).await?,
            study_index_scan: prepare(STUDY_INDEX_SCAN, Some(args.page_size.clamp(1, INDEX_PAGE_ROWS))).await?,
            patient_index_write: prepare(PATIENT_INDEX_WRITE, None).await?,
            patient_index_scan: prepare(PATIENT_INDEX_SCAN, paged).await?,
            user_write: prepare(USER_WRITE, None).await?,
            user_read: prepare(USER_READ, None).await?,
            usage_write: prepare(USAGE_WRITE, None).await?,
            usage_page: prepare(USAGE_PAGE, None).await?,
            listing_write: prepare(LISTING_WRITE, None).await?,
            listing_newest: prepare(LISTING_NEWEST, None).await?,
            listing_oldest: prepare(LISTING_OLDEST, None).await?,
            bucket_write: prepare(BUCKET_WRITE, None).await?,
            buckets_newest: prepare(BUCKETS_NEWEST, None).await?,
            buckets_oldest: prepare(BUCKETS_OLDEST, None).await?,
        };
        Ok(ScyllaCatalog {
            cql,
            st: Arc::new(st),
            known_buckets: Arc::new(Mutex::new(HashSet::new())),
        })
    }

    /// The event ids among `events` that are already recorded.
    async fn known(&self, events: &[&CatalogEvent]) -> Result<HashSet<String>> {
        // The futures are collected before they are streamed: a closure inside the stream would make
        // the future of `apply` not provably `Send` (rust-lang/rust#102211).
        let reads: Vec<_> = events
            .iter()
            .map(|e| e.event_id())
            .filter(|id| !id.is_empty())
            .map(|id| self.cql.read_rows::<(String,)>(&self.st.event_known, (id,), "read event ids"))
            .collect();
        let found: Vec<Vec<(String,)>> = futures::stream::iter(reads).buffer_unordered(READS_IN_FLIGHT).try_collect().await?;
        Ok(found.into_iter().flatten().map(|(id,)| id).collect())
    }

    /// Writes the bucket row of `(listing, owner, bucket)` unless this process already did.
    async fn ensure_bucket(&self, listing: &'static str, owner: &str, bucket: i64) -> Result<()> {
        let key = (listing, owner.to_owned(), bucket);
        if self.known_buckets.lock().is_ok_and(|k| k.contains(&key)) {
            return Ok(());
        }
        self.cql
            .write(&self.st.bucket_write, (listing, owner, bucket), "write a bucket")
            .await?;
        if let Ok(mut known) = self.known_buckets.lock() {
            if known.len() >= KNOWN_BUCKETS {
                known.clear();
            }
            known.insert(key);
        }
        Ok(())
    }

    /// Applies the new events of one image, in batch order, then settles its listing and instance rows.
    async fn apply_image(&self, image_id: &str, events: Vec<&CatalogEvent>) -> Result<()> {
        let ours: HashSet<&str> = events.iter().map(|e| e.event_id()).collect();
        let mut own = ImageParts::default();
        for e in events {
            match e {
                CatalogEvent::Registered(r) => {
                    self.write_registered(r).await?;
                    own.sightings.push(Sighting::registered(r));
                }
                CatalogEvent::Anonymized(a) => {
                    let stored = self.write_anonymized(a).await?;
                    own.sightings.push(Sighting::anonymized(a, &stored));
                    own.keep_newer_output(stored);
                }
                CatalogEvent::Rejected(x) => {
                    self.write_rejected(image_id, x).await?;
                    own.sightings.push(Sighting::rejected(x));
                }
                CatalogEvent::User(_) | CatalogEvent::Usage(_) => {}
            }
        }
        let output = own.output.is_some();
        // Read back after writing: see the module docs for why this settles every race. What this
        // replica just wrote is added in, in case the read missed it (at consistency ONE).
        let mut parts = ImageParts::from_rows(self.image_rows(image_id).await?)?;
        parts.merge(own);
        if let Some(first) = parts.sightings.first().filter(|s| ours.contains(s.event_id.as_str())) {
            self.list_image(image_id, first).await?;
        }
        if output {
            if let Some((ts, stale)) = parts.stale_instance_keys() {
                for k in stale {
                    let values = (ts, k.study.as_str(), k.series.as_str(), k.number, k.sop.as_str(), image_id);
                    self.cql
                        .write(&self.st.instance_delete, values, "delete a replaced instance")
                        .await?;
                }
            }
        }
        Ok(())
    }

    async fn write_registered(&self, e: &ImagenRegistrada) -> Result<()> {
        let values = (
            e.image_id.as_str(),
            e.occurred_at,
            e.event_id.as_str(),
            REGISTERED,
            e.provider_id.as_str(),
            unset_if_none(e.tipo_imagen.as_deref()),
            unset_if_none(e.region_anatomica.as_deref()),
        );
        self.cql.write(&self.st.image_registered, values, "write an image").await
    }

    async fn write_rejected(&self, image_id: &str, e: &ImagenRechazada) -> Result<()> {
        let ts = write_timestamp(e.occurred_at, &e.event_id, now_micros());
        let values = (
            image_id,
            e.occurred_at,
            e.event_id.as_str(),
            REJECTED,
            e.provider_id.as_deref().unwrap_or_default(),
            e.reason.as_str(),
            ts,
        );
        self.cql.write(&self.st.image_rejected, values, "write an image").await
    }

    /// The instance and index rows of an output, then its sighting and the `output` cell together;
    /// returns the output as stored.
    async fn write_anonymized(&self, e: &ImagenAnonimizada) -> Result<StoredOutput> {
        let stored = StoredOutput::of(e, now_micros());
        let json = serde_json::to_string(&stored).map_err(|_| Error::Store("scylla: an anonymized output could not be encoded".into()))?;
        let key = InstanceKey::of(&stored);
        if let Some(k) = &key {
            let patient = stored.patient_id.as_deref().filter(|p| !p.is_empty());
            let index = self.cql.write(
                &self.st.study_index_write,
                (
                    study_shard(&k.study),
                    k.study.as_str(),
                    patient.unwrap_or_default(),
                    stored.study_date.as_deref().unwrap_or_default(),
                    stored.modality.as_deref().unwrap_or_default(),
                ),
                "write the study index",
            );
            let by_patient = async {
                match patient {
                    Some(p) => {
                        self.cql
                            .write(&self.st.patient_index_write, (p, k.study.as_str()), "write the patient index")
                            .await
                    }
                    None => Ok(()),
                }
            };
            let instance = self.cql.write(
                &self.st.instance_write,
                (
                    k.study.as_str(),
                    k.series.as_str(),
                    k.number,
                    k.sop.as_str(),
                    e.image_id.as_str(),
                    e.event_id.as_str(),
                    stored.patient_id.as_deref(),
                    stored.study_date.as_deref(),
                    stored.modality.as_deref(),
                    stored.series_number,
                    stored.write_ts,
                ),
                "write an instance",
            );
            futures::try_join!(index, by_patient, instance)?;
        }
        let (study, series, number, sop) = key.as_ref().map_or(("", "", ABSENT_NUMBER, ""), |k| {
            (k.study.as_str(), k.series.as_str(), k.number, k.sop.as_str())
        });
        let values = (
            e.image_id.as_str(),
            e.occurred_at,
            e.event_id.as_str(),
            ANONYMIZED,
            e.provider_id.as_str(),
            unset_if_none(e.tipo_imagen.as_deref()),
            unset_if_none(e.region_anatomica.as_deref()),
            study,
            series,
            number,
            sop,
            json.as_str(),
            stored.write_ts,
        );
        self.cql.write(&self.st.image_anonymized, values, "write an image").await?;
        Ok(stored)
    }

    /// The listing rows of an image whose earliest sighting is `first` (buckets first).
    async fn list_image(&self, image_id: &str, first: &Sighting) -> Result<()> {
        let bucket = bucket_of(first.seen_at);
        for (listing, owner) in [(IMAGES, ""), (PROVIDER, first.provider_id.as_str())] {
            self.ensure_bucket(listing, owner, bucket).await?;
            self.cql
                .write(
                    &self.st.listing_write,
                    (listing, owner, bucket, first.seen_at, image_id),
                    "write an image listing",
                )
                .await?;
        }
        Ok(())
    }

    /// Applies one event that is not about an image's state: a user or a download.
    async fn apply_other(&self, e: &CatalogEvent) -> Result<()> {
        match e {
            CatalogEvent::User(u) if !u.user_id.is_empty() => self.write_user(u).await,
            CatalogEvent::Usage(u) => self.write_usage(u).await,
            _ => Ok(()),
        }
    }

    async fn write_user(&self, u: &UsuarioRegistrado) -> Result<()> {
        let bucket = bucket_of(u.occurred_at);
        self.ensure_bucket(USERS, "", bucket).await?;
        self.cql
            .write(
                &self.st.listing_write,
                (USERS, "", bucket, u.occurred_at, u.user_id.as_str()),
                "write a user listing",
            )
            .await?;
        let values = (
            u.user_id.as_str(),
            u.occurred_at,
            u.event_id.as_str(),
            u.role.as_str(),
            unset_if_none(u.organization.as_deref()),
        );
        self.cql.write(&self.st.user_write, values, "write a user").await
    }

    async fn write_usage(&self, u: &EventoUsoDatos) -> Result<()> {
        let bucket = bucket_of(u.occurred_at);
        for (listing, owner) in [(USAGE_IMAGE, u.image_id.as_str()), (USAGE_CONSUMER, u.consumer_id.as_str())] {
            self.ensure_bucket(listing, owner, bucket).await?;
            let values = (
                listing,
                owner,
                bucket,
                u.occurred_at,
                u.event_id.as_str(),
                u.consumer_id.as_str(),
                u.provider_id.as_str(),
                u.image_id.as_str(),
                u.bytes,
                u.amount_minor,
                u.currency.as_str(),
                u.charge_key(),
            );
            self.cql.write(&self.st.usage_write, values, "write a download").await?;
        }
        Ok(())
    }

    /// Every row of an image's partition.
    async fn image_rows(&self, image_id: &str) -> Result<Vec<ImageRow>> {
        if image_id.is_empty() {
            return Ok(Vec::new());
        }
        self.cql.read_rows(&self.st.image_read, (image_id,), "read an image").await
    }

    /// One image, with the event id of its current output.
    async fn read_image(&self, image_id: &str) -> Result<Option<(CatalogImage, Option<String>)>> {
        let parts = ImageParts::from_rows(self.image_rows(image_id).await?)?;
        Ok(parts.image(image_id))
    }

    /// One user.
    async fn read_user(&self, user_id: &str) -> Result<Option<CatalogUser>> {
        if user_id.is_empty() {
            return Ok(None);
        }
        let rows: Vec<UserRow> = self.cql.read_rows(&self.st.user_read, (user_id,), "read a user").await?;
        Ok(fold_user(user_id, rows))
    }

    /// The instance rows of a study (of one series, when the query names it) that pass the query's
    /// filters other than Modality, in QIDO order.
    async fn instance_rows(&self, study_uid: &str, q: &DicomQuery) -> Result<Vec<InstanceRow>> {
        if study_uid.is_empty() {
            return Ok(Vec::new());
        }
        let stream = match q.series_uid.as_deref().filter(|s| !s.is_empty()) {
            Some(series) => {
                self.cql
                    .scan::<StoredInstance>(&self.st.instances_of_series, (study_uid, series), "read instances")
                    .await?
            }
            None => {
                self.cql
                    .scan::<StoredInstance>(&self.st.instances_of_study, (study_uid,), "read instances")
                    .await?
            }
        };
        let stored: Vec<StoredInstance> = stream.try_collect().await.map_err(db("read instances"))?;
        Ok(stored.into_iter().map(|s| s.into_row(study_uid)).filter(|r| r.matches(q)).collect())
    }

    /// Where the candidate studies of `q` come from.
    async fn candidates(&self, q: &DicomQuery) -> Result<Candidates> {
        if let Some(uid) = &q.study_uid {
            return Ok(Candidates::One(Some(uid.clone())));
        }
        if let Some(patient) = q.patient_id.as_deref().filter(|p| !p.is_empty() && !has_wildcard(p)) {
            let rows = self
                .cql
                .scan::<(String,)>(&self.st.patient_index_scan, (patient,), "read the patient index")
                .await?;
            return Ok(Candidates::Patient(rows));
        }
        let shards = (0..STUDY_SHARDS).map(|shard| async move {
            let mut rows = self
                .cql
                .scan::<IndexRow>(&self.st.study_index_scan, (shard,), "read the study index")
                .await?;
            let head = rows.try_next().await.map_err(db("read the study index"))?;
            Ok::<_, Error>(Shard { head, rows })
        });
        Ok(Candidates::Shards(futures::future::try_join_all(shards).await?))
    }

    /// Walks the studies that match `q` in StudyInstanceUID order and hands each, with its matching
    /// instance rows, to `take`, until `take` says it has enough.
    /// What `summarize` makes of each matching study, study by study, cut by the query's offset and limit.
    async fn summarize_studies<T, I>(&self, q: &DicomQuery, mut summarize: impl FnMut(String, &[InstanceRow]) -> I) -> Result<Vec<T>>
    where
        I: IntoIterator<Item = T>,
    {
        let want = q.offset.saturating_add(q.limit);
        let mut found = Vec::new();
        if q.limit > 0 {
            self.walk_studies(q, |uid, rows| {
                found.extend(summarize(uid, &rows));
                found.len() >= want
            })
            .await?;
        }
        Ok(found.into_iter().skip(q.offset).take(q.limit).collect())
    }

    async fn walk_studies(&self, q: &DicomQuery, mut take: impl FnMut(String, Vec<InstanceRow>) -> bool) -> Result<()> {
        let mut candidates = self.candidates(q).await?;
        loop {
            let mut uids = Vec::with_capacity(STUDIES_PER_ROUND);
            while uids.len() < STUDIES_PER_ROUND {
                match candidates.next(q).await? {
                    Some(uid) => uids.push(uid),
                    None => break,
                }
            }
            if uids.is_empty() {
                return Ok(());
            }
            let rows = futures::future::try_join_all(uids.iter().map(|uid| self.instance_rows(uid, q))).await?;
            for (uid, rows) in uids.into_iter().zip(rows) {
                if !rows.is_empty() && take(uid, rows) {
                    return Ok(());
                }
            }
        }
    }

    /// The images of `rows` (keys of a listing) that the listing still holds, in order.
    async fn listed_images(&self, rows: &[ListingRow], provider: Option<&str>) -> Result<Vec<CatalogImage>> {
        let reads: Vec<_> = rows.iter().map(|r| self.read_image(&r.item_id)).collect();
        let images: Vec<Option<(CatalogImage, Option<String>)>> =
            futures::stream::iter(reads).buffered(READS_IN_FLIGHT).try_collect().await?;
        Ok(rows
            .iter()
            .zip(images)
            .filter_map(|(row, image)| {
                let (image, _) = image?;
                let listed = image.created_at == row.sort_at && provider.is_none_or(|p| image.provider_id == p);
                listed.then_some(image)
            })
            .collect())
    }
}

#[async_trait]
impl CatalogStore for ScyllaCatalog {
    async fn apply(&self, events: Vec<CatalogEvent>) -> Result<usize> {
        // The first of each event id in the batch, unless it is already recorded.
        let mut seen = HashSet::new();
        let first: Vec<&CatalogEvent> = events.iter().filter(|e| seen.insert(e.event_id())).collect();
        let known = self.known(&first).await?;
        let fresh: Vec<&CatalogEvent> = first.into_iter().filter(|e| !known.contains(e.event_id())).collect();
        // Each image's events together, in batch order; users and downloads one by one.
        let mut images: Vec<(&str, Vec<&CatalogEvent>)> = Vec::new();
        let mut group_of: HashMap<&str, usize> = HashMap::new();
        let mut others: Vec<&CatalogEvent> = Vec::new();
        for e in &fresh {
            match image_of(e) {
                Some(image_id) => {
                    let g = *group_of.entry(image_id).or_insert_with(|| {
                        images.push((image_id, Vec::new()));
                        images.len() - 1
                    });
                    images[g].1.push(*e);
                }
                None => others.push(*e),
            }
        }
        let images: Vec<_> = images
            .into_iter()
            .map(|(image_id, events)| self.apply_image(image_id, events))
            .collect();
        let others: Vec<_> = others.into_iter().map(|e| self.apply_other(e)).collect();
        futures::try_join!(
            futures::stream::iter(images)
                .buffer_unordered(WRITES_IN_FLIGHT)
                .try_collect::<Vec<()>>(),
            futures::stream::iter(others)
                .buffer_unordered(WRITES_IN_FLIGHT)
                .try_collect::<Vec<()>>(),
        )?;
        // The commit point: only now is an event skipped when it comes again.
        let records: Vec<_> = fresh
            .iter()
            .map(|e| e.event_id())
            .filter(|id| !id.is_empty())
            .map(|id| self.cql.write(&self.st.event_record, (id,), "record an event id"))
            .collect();
        futures::stream::iter(records)
            .buffer_unordered(READS_IN_FLIGHT)
            .try_collect::<Vec<()>>()
            .await?;
        Ok(fresh.len())
    }

    async fn image(&self, image_id: &str) -> Result<Option<CatalogImage>> {
        Ok(self.read_image(image_id).await?.map(|(image, _)| image))
    }

    async fn images(&self, filter: &ImageFilter, cursor: Option<&str>, limit: usize) -> Result<ImagePage> {
        let after = cursor.map(|c| parse_cursor('i', c)).transpose()?;
        let mut before = after.unwrap_or((i64::MAX, String::new()));
        if let Some(to) = filter.created_to {
            // `created_at < to` is `(created_at, image_id) < (to, "")`: the empty id sorts first.
            before = before.min((to, String::new()));
        }
        let (listing, owner) = match &filter.provider_id {
            Some(p) => (PROVIDER, p.clone()),
            None => (IMAGES, String::new()),
        };
        let provider = filter.provider_id.as_deref();
        let mut walk = Walk::newest_first(listing, owner, before, filter.created_from);
        let want = limit.saturating_add(1);
        let mut found = Vec::new();
        while found.len() < want {
            let n = (want - found.len()).clamp(WALK_ROWS.0, WALK_ROWS.1);
            let rows: Vec<ListingRow> = walk.next(self, &self.st.listing_newest, n).await?;
            if rows.is_empty() {
                break;
            }
            let images = self.listed_images(&rows, provider).await?;
            found.extend(images.into_iter().filter(|i| image_matches(filter, i)));
        }
        let next = page_end(&mut found, limit, |i| cursor_of('i', i.created_at, &i.image_id));
        Ok(ImagePage { images: found, next })
    }

    async fn studies(&self, q: &DicomQuery) -> Result<Vec<StudySummary>> {
        self.summarize_studies(q, |uid, rows| study_summary(uid, rows, q.modality.as_deref()))
            .await
    }

    async fn series(&self, q: &DicomQuery) -> Result<Vec<SeriesSummary>> {
        self.summarize_studies(q, |uid, rows| series_summaries(&uid, rows, q.modality.as_deref()))
            .await
    }

    async fn instances(&self, q: &DicomQuery) -> Result<Vec<CatalogImage>> {
        let want = q.offset.saturating_add(q.limit);
        let mut found = Vec::new();
        if q.limit == 0 {
            return Ok(found);
        }
        // A round of studies at a time; of their rows, keep those whose image still has that output
        // (a replaced output's row may linger while a race settles).
        let mut candidates = self.candidates(q).await?;
        'walk: loop {
            let mut uids = Vec::with_capacity(STUDIES_PER_ROUND);
            while uids.len() < STUDIES_PER_ROUND {
                match candidates.next(q).await? {
                    Some(uid) => uids.push(uid),
                    None => break,
                }
            }
            if uids.is_empty() {
                break;
            }
            for study_rows in futures::future::try_join_all(uids.iter().map(|uid| self.instance_rows(uid, q))).await? {
                let rows: Vec<InstanceRow> = study_rows.into_iter().filter(|r| r.has_modality(q.modality.as_deref())).collect();
                for chunk in rows.chunks(WALK_ROWS.1) {
                    let reads: Vec<_> = chunk.iter().map(|r| self.read_image(&r.image_id)).collect();
                    let images: Vec<Option<(CatalogImage, Option<String>)>> =
                        futures::stream::iter(reads).buffered(READS_IN_FLIGHT).try_collect().await?;
                    for (row, image) in chunk.iter().zip(images) {
                        if let Some((image, Some(output_event))) = image {
                            if row.output_event.as_deref() == Some(output_event.as_str()) && image.estado == Estado::Anonimizada {
                                found.push(image);
                            }
                        }
                    }
                    if found.len() >= want {
                        break 'walk;
                    }
                }
            }
        }
        Ok(found.into_iter().skip(q.offset).take(q.limit).collect())
    }

    async fn user(&self, user_id: &str) -> Result<Option<CatalogUser>> {
        self.read_user(user_id).await
    }

    async fn users(&self, role: Option<&str>, cursor: Option<&str>, limit: usize) -> Result<UserPage> {
        let after = cursor.map(|c| parse_cursor('u', c)).transpose()?;
        let mut walk = Walk::oldest_first(USERS, String::new(), after.unwrap_or((i64::MIN, String::new())));
        let want = limit.saturating_add(1);
        let mut found = Vec::new();
        while found.len() < want {
            let n = (want - found.len()).clamp(WALK_ROWS.0, WALK_ROWS.1);
            let rows: Vec<ListingRow> = walk.next(self, &self.st.listing_oldest, n).await?;
            if rows.is_empty() {
                break;
            }
            let reads: Vec<_> = rows.iter().map(|r| self.read_user(&r.item_id)).collect();
            let users: Vec<Option<CatalogUser>> = futures::stream::iter(reads).buffered(READS_IN_FLIGHT).try_collect().await?;
            found.extend(rows.iter().zip(users).filter_map(|(row, user)| {
                let user = user?;
                (user.created_at == row.sort_at && role.is_none_or(|r| user.role == r)).then_some(user)
            }));
        }
        let next = page_end(&mut found, limit, |u| cursor_of('u', u.created_at, &u.user_id));
        Ok(UserPage { users: found, next })
    }

    async fn usage(&self, by: UsageBy<'_>, cursor: Option<&str>, limit: usize) -> Result<UsagePage> {
        let before = cursor.map(|c| parse_cursor('k', c)).transpose()?;
        let (listing, owner) = match by {
            UsageBy::Image(id) => (USAGE_IMAGE, id),
            UsageBy::Consumer(id) => (USAGE_CONSUMER, id),
        };
        let mut walk = Walk::newest_first(listing, owner.to_owned(), before.unwrap_or((i64::MAX, String::new())), None);
        let want = limit.saturating_add(1);
        let mut found: Vec<Usage> = Vec::new();
        while found.len() < want {
            let n = (want - found.len()).clamp(WALK_ROWS.0, WALK_ROWS.1);
            let rows: Vec<UsageRow> = walk.next(self, &self.st.usage_page, n).await?;
            if rows.is_empty() {
                break;
            }
            found.extend(rows.into_iter().map(UsageRow::into_usage));
        }
        let next = page_end(&mut found, limit, |u| cursor_of('k', u.occurred_at, &u.event_id));
        Ok(UsagePage { usage: found, next })
    }
}

/// The image an event changes the state of, if any.
fn image_of(e: &CatalogEvent) -> Option<&str> {
    let id = match e {
        CatalogEvent::Registered(r) => r.image_id.as_str(),
        CatalogEvent::Anonymized(a) => a.image_id.as_str(),
        // A message that never decoded names no image: nothing to materialize.
        CatalogEvent::Rejected(x) => x.image_id.as_deref()?,
        CatalogEvent::User(_) | CatalogEvent::Usage(_) => return None,
    };
    (!id.is_empty()).then_some(id)
}

/// An optional text left unset when absent (no tombstone written).
fn unset_if_none(v: Option<&str>) -> MaybeUnset<&str> {
    v.map_or(MaybeUnset::Unset, MaybeUnset::Set)
}

/// Keeps the first `limit` of `found` and returns the cursor after them if there were more.
fn page_end<T>(found: &mut Vec<T>, limit: usize, cursor: impl Fn(&T) -> String) -> Option<String> {
    if found.len() > limit {
        found.truncate(limit);
        found.last().map(cursor)
    } else {
        None
    }
}

/// Whether an image passes the filters a listing cannot apply by itself.
fn image_matches(f: &ImageFilter, i: &CatalogImage) -> bool {
    f.provider_id.as_ref().is_none_or(|p| *p == i.provider_id)
        && f.modality
            .as_ref()
            .is_none_or(|m| i.modality.as_deref() == Some(m.to_uppercase().as_str()))
        && f.region_anatomica.as_ref().is_none_or(|r| i.region_anatomica.as_ref() == Some(r))
        && f.estado.is_none_or(|e| i.estado == e)
        && f.created_from.is_none_or(|from| i.created_at >= from)
        && f.created_to.is_none_or(|to| i.created_at < to)
}

/// Where an image stands, from which outcomes it has.
fn estado_of(has_output: bool, has_rejection: bool) -> Estado {
    if has_output {
        Estado::Anonimizada
    } else if has_rejection {
        Estado::Rechazada
    } else {
        Estado::Registrada
    }
}

/// The hour bucket of a time in milliseconds.
fn bucket_of(at_ms: i64) -> i64 {
    at_ms.div_euclid(BUCKET_MS)
}

/// 64-bit FNV-1a: a hash that never changes between builds or platforms (it picks stored partitions).
fn fnv1a(s: &str) -> u64 {
    s.bytes()
        .fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3))
}

/// The `catalog_study_index` partition of a study.
fn study_shard(study_uid: &str) -> i32 {
    i32::try_from(fnv1a(study_uid) % u64::from(STUDY_SHARDS.unsigned_abs())).unwrap_or(0)
}

/// The write timestamp of an outcome that happened at `at_ms`: microseconds, plus a tie-break in
/// `0..1000` from the event id (so two outcomes of one millisecond are still ordered, the same way
/// everywhere), never below 0 nor more than a day ahead of `now_micros`.
fn write_timestamp(at_ms: i64, event_id: &str, now_micros: i64) -> i64 {
    let tie = i64::try_from(fnv1a(event_id) % 1000).unwrap_or(0);
    at_ms
        .saturating_mul(1000)
        .saturating_add(tie)
        .clamp(0, now_micros.max(0).saturating_add(MAX_AHEAD_MICROS))
}

fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// The opaque cursor after the row `(at, id)`.
fn cursor_of(prefix: char, at: i64, id: &str) -> String {
    format!("{prefix}{at}.{}", hex::encode(id))
}

fn parse_cursor(prefix: char, cursor: &str) -> Result<(i64, String)> {
    let (at, id) = cursor
        .strip_prefix(prefix)
        .and_then(|c| c.split_once('.'))
        .ok_or(Error::InvalidCursor)?;
    let at = at.parse::<i64>().map_err(|_| Error::InvalidCursor)?;
    let id = hex::decode(id)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .filter(|id| !id.is_empty())
        .ok_or(Error::InvalidCursor)?;
    Ok((at, id))
}

/// Whether a QIDO matching value uses wildcards.
fn has_wildcard(pattern: &str) -> bool {
    pattern.contains(['*', '?'])
}

/// DICOM wildcard matching, as SQLite's GLOB with `[` taken literally: `*` matches any run of
/// characters, `?` exactly one, anything else itself (case-sensitive).
fn wildcard_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    // The last `*` seen and the text position it is currently matched up to.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// The anonymized output as stored in the `output` cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct StoredOutput {
    /// The `ImagenAnonimizada` it came from.
    event_id: String,
    /// The write timestamp of its cells (microseconds).
    write_ts: i64,
    anonymized_at: i64,
    /// The DICOM Modality (or the provider's label), upper-case.
    modality: Option<String>,
    blob_key: String,
    sha256: String,
    size_bytes: i64,
    media_type: String,
    study_uid: Option<String>,
    series_uid: Option<String>,
    sop_instance_uid: Option<String>,
    sop_class_uid: Option<String>,
    patient_id: Option<String>,
    study_date: Option<String>,
    series_number: Option<i32>,
    instance_number: Option<i32>,
    body_part: Option<String>,
    rows: i32,
    columns: i32,
    frames: i32,
    #[serde(default)]
    report: serde_json::Value,
}

impl StoredOutput {
    fn of(e: &ImagenAnonimizada, now_micros: i64) -> StoredOutput {
        StoredOutput {
            event_id: e.event_id.clone(),
            write_ts: write_timestamp(e.occurred_at, &e.event_id, now_micros),
            anonymized_at: e.occurred_at,
            modality: e.modality.clone().or_else(|| e.tipo_imagen.clone()).map(|m| m.to_uppercase()),
            blob_key: e.blob_key.clone(),
            sha256: e.sha256.clone(),
            size_bytes: e.size_bytes,
            media_type: e.media_type.clone(),
            study_uid: e.study_uid.clone(),
            series_uid: e.series_uid.clone(),
            sop_instance_uid: e.sop_instance_uid.clone(),
            sop_class_uid: e.sop_class_uid.clone(),
            patient_id: e.patient_id.clone(),
            study_date: e.study_date.clone(),
            series_number: e.series_number,
            instance_number: e.instance_number,
            body_part: e.body_part.clone(),
            rows: e.rows,
            columns: e.columns,
            frames: e.frames,
            report: report_summary(e),
        }
    }

    fn to_output(&self) -> AnonymizedOutput {
        AnonymizedOutput {
            blob_key: self.blob_key.clone(),
            sha256: self.sha256.clone(),
            size_bytes: self.size_bytes,
            media_type: self.media_type.clone(),
            study_uid: self.study_uid.clone(),
            series_uid: self.series_uid.clone(),
            sop_instance_uid: self.sop_instance_uid.clone(),
            sop_class_uid: self.sop_class_uid.clone(),
            patient_id: self.patient_id.clone(),
            study_date: self.study_date.clone(),
            series_number: self.series_number,
            instance_number: self.instance_number,
            body_part: self.body_part.clone(),
            rows: self.rows,
            columns: self.columns,
            frames: self.frames,
            anonymized_at: self.anonymized_at,
            report: self.report.clone(),
        }
    }
}

/// The clustering key of a `catalog_instances` row (absent values as empty text or [`ABSENT_NUMBER`]).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct InstanceKey {
    study: String,
    series: String,
    number: i32,
    sop: String,
}

impl InstanceKey {
    /// The instance row an output writes: none without a StudyInstanceUID.
    fn of(o: &StoredOutput) -> Option<InstanceKey> {
        InstanceKey::from_parts(
            o.study_uid.as_deref(),
            o.series_uid.as_deref(),
            o.instance_number,
            o.sop_instance_uid.as_deref(),
        )
    }

    fn from_parts(study: Option<&str>, series: Option<&str>, number: Option<i32>, sop: Option<&str>) -> Option<InstanceKey> {
        let study = study.filter(|s| !s.is_empty())?;
        Some(InstanceKey {
            study: study.to_owned(),
            series: series.unwrap_or_default().to_owned(),
            number: number.unwrap_or(ABSENT_NUMBER),
            sop: sop.unwrap_or_default().to_owned(),
        })
    }
}

/// One row of an image's partition: a sighting, with the partition's static cells.
#[derive(Debug, Clone, Default, DeserializeRow)]
struct ImageRow {
    seen_at: Option<i64>,
    event_id: Option<String>,
    kind: Option<String>,
    provider_id: Option<String>,
    tipo_imagen: Option<String>,
    region_anatomica: Option<String>,
    study_uid: Option<String>,
    series_uid: Option<String>,
    instance_number: Option<i32>,
    sop_instance_uid: Option<String>,
    output: Option<String>,
    rejection: Option<String>,
}

/// One event seen for an image.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Sighting {
    seen_at: i64,
    event_id: String,
    kind: String,
    provider_id: String,
    tipo_imagen: Option<String>,
    region_anatomica: Option<String>,
    /// The instance row an output sighting wrote.
    instance: Option<InstanceKey>,
}

impl Sighting {
    fn registered(e: &ImagenRegistrada) -> Sighting {
        Sighting {
            seen_at: e.occurred_at,
            event_id: e.event_id.clone(),
            kind: REGISTERED.to_owned(),
            provider_id: e.provider_id.clone(),
            tipo_imagen: e.tipo_imagen.clone(),
            region_anatomica: e.region_anatomica.clone(),
            instance: None,
        }
    }

    fn anonymized(e: &ImagenAnonimizada, stored: &StoredOutput) -> Sighting {
        Sighting {
            seen_at: e.occurred_at,
            event_id: e.event_id.clone(),
            kind: ANONYMIZED.to_owned(),
            provider_id: e.provider_id.clone(),
            tipo_imagen: e.tipo_imagen.clone(),
            region_anatomica: e.region_anatomica.clone(),
            instance: InstanceKey::of(stored),
        }
    }

    fn rejected(e: &ImagenRechazada) -> Sighting {
        Sighting {
            seen_at: e.occurred_at,
            event_id: e.event_id.clone(),
            kind: REJECTED.to_owned(),
            provider_id: e.provider_id.clone().unwrap_or_default(),
            tipo_imagen: None,
            region_anatomica: None,
            instance: None,
        }
    }
}

/// An image's partition, read back.
#[derive(Debug, Clone, Default)]
struct ImageParts {
    /// Earliest first, by `(seen_at, event_id)`.
    sightings: Vec<Sighting>,
    output: Option<StoredOutput>,
    rejection: Option<String>,
}

impl ImageParts {
    fn from_rows(rows: Vec<ImageRow>) -> Result<ImageParts> {
        let mut parts = ImageParts::default();
        for row in rows {
            if parts.output.is_none() {
                if let Some(json) = &row.output {
                    parts.output = Some(
                        serde_json::from_str(json).map_err(|_| Error::Store("scylla: a stored anonymized output does not parse".into()))?,
                    );
                }
            }
            if parts.rejection.is_none() {
                parts.rejection = row.rejection.clone();
            }
            let (Some(seen_at), Some(event_id)) = (row.seen_at, row.event_id) else {
                continue; // the static row of a partition without sightings
            };
            let instance = if row.kind.as_deref() == Some(ANONYMIZED) {
                InstanceKey::from_parts(
                    row.study_uid.as_deref(),
                    row.series_uid.as_deref(),
                    row.instance_number.filter(|n| *n != ABSENT_NUMBER),
                    row.sop_instance_uid.as_deref(),
                )
            } else {
                None
            };
            parts.sightings.push(Sighting {
                seen_at,
                event_id,
                kind: row.kind.unwrap_or_default(),
                provider_id: row.provider_id.unwrap_or_default(),
                tipo_imagen: row.tipo_imagen,
                region_anatomica: row.region_anatomica,
                instance,
            });
        }
        parts
            .sightings
            .sort_by(|a, b| (a.seen_at, &a.event_id).cmp(&(b.seen_at, &b.event_id)));
        Ok(parts)
    }

    /// Keeps `o` as the output if it is newer (by write timestamp) than the one held; on a tie the
    /// one held stays (ScyllaDB breaks it by value, which only the stored cell shows).
    fn keep_newer_output(&mut self, o: StoredOutput) {
        if self.output.as_ref().is_none_or(|cur| o.write_ts > cur.write_ts) {
            self.output = Some(o);
        }
    }

    /// Adds what this replica wrote (`own`) to what it read back: the sightings the read missed,
    /// and its output where newer.
    fn merge(&mut self, own: ImageParts) {
        let read: HashSet<String> = self.sightings.iter().map(|s| s.event_id.clone()).collect();
        self.sightings
            .extend(own.sightings.into_iter().filter(|s| !read.contains(&s.event_id)));
        self.sightings
            .sort_by(|a, b| (a.seen_at, &a.event_id).cmp(&(b.seen_at, &b.event_id)));
        if let Some(o) = own.output {
            self.keep_newer_output(o);
        }
        if self.rejection.is_none() {
            self.rejection = own.rejection;
        }
    }

    /// The image, folded from its sightings and statics, with its current output's event id; none
    /// before its first sighting.
    fn image(&self, image_id: &str) -> Option<(CatalogImage, Option<String>)> {
        let first = self.sightings.first()?;
        let tipo_imagen = self.sightings.iter().find_map(|s| s.tipo_imagen.clone());
        let region_anatomica = self.sightings.iter().find_map(|s| s.region_anatomica.clone());
        let modality = match &self.output {
            Some(o) => o.modality.clone(),
            None => tipo_imagen.as_ref().map(|t| t.to_uppercase()),
        };
        let image = CatalogImage {
            image_id: image_id.to_owned(),
            provider_id: first.provider_id.clone(),
            estado: estado_of(self.output.is_some(), self.rejection.is_some()),
            created_at: first.seen_at,
            modality,
            tipo_imagen,
            region_anatomica,
            anonymized: self.output.as_ref().map(StoredOutput::to_output),
            rejection_reason: self.rejection.clone(),
        };
        Some((image, self.output.as_ref().map(|o| o.event_id.clone())))
    }

    /// The write timestamp of the current output and the instance rows of every other output whose
    /// key is not the current one's: rows to delete at that timestamp.
    fn stale_instance_keys(&self) -> Option<(i64, BTreeSet<InstanceKey>)> {
        let current = self.output.as_ref()?;
        let keep = InstanceKey::of(current);
        let stale: BTreeSet<InstanceKey> = self
            .sightings
            .iter()
            .filter(|s| s.kind == ANONYMIZED && s.event_id != current.event_id)
            .filter_map(|s| s.instance.clone())
            .filter(|k| Some(k) != keep.as_ref())
            .collect();
        (!stale.is_empty()).then_some((current.write_ts, stale))
    }
}

/// One row of a user's partition.
#[derive(Debug, Clone, DeserializeRow)]
struct UserRow {
    registered_at: i64,
    event_id: String,
    user_role: Option<String>,
    organization: Option<String>,
}

/// The user: created when first registered, with the latest registration's role and organization.
fn fold_user(user_id: &str, mut rows: Vec<UserRow>) -> Option<CatalogUser> {
    rows.sort_by(|a, b| (a.registered_at, &a.event_id).cmp(&(b.registered_at, &b.event_id)));
    let first = rows.first()?;
    let last = rows.last()?;
    Some(CatalogUser {
        user_id: user_id.to_owned(),
        role: last.user_role.clone().unwrap_or_default(),
        organization: last.organization.clone(),
        created_at: first.registered_at,
    })
}

/// A row a [`Walk`] reads: its place in the listing.
trait Keyed {
    fn key(&self) -> (i64, &str);
}

/// A `catalog_listings` row.
#[derive(Debug, Clone, DeserializeRow)]
struct ListingRow {
    sort_at: i64,
    item_id: String,
}

impl Keyed for ListingRow {
    fn key(&self) -> (i64, &str) {
        (self.sort_at, &self.item_id)
    }
}

/// A `catalog_usage` row.
#[derive(Debug, Clone, DeserializeRow)]
struct UsageRow {
    occurred_at: i64,
    event_id: String,
    consumer_id: Option<String>,
    provider_id: Option<String>,
    image_id: Option<String>,
    size_bytes: Option<i64>,
    amount_minor: Option<i64>,
    currency: Option<String>,
    charge_key: Option<String>,
}

impl Keyed for UsageRow {
    fn key(&self) -> (i64, &str) {
        (self.occurred_at, &self.event_id)
    }
}

impl UsageRow {
    fn into_usage(self) -> Usage {
        Usage {
            charge_key: self.charge_key.unwrap_or_else(|| self.event_id.clone()),
            event_id: self.event_id,
            occurred_at: self.occurred_at,
            consumer_id: self.consumer_id.unwrap_or_default(),
            provider_id: self.provider_id.unwrap_or_default(),
            image_id: self.image_id.unwrap_or_default(),
            bytes: self.size_bytes.unwrap_or(0),
            amount_minor: self.amount_minor.unwrap_or(0),
            currency: self.currency.unwrap_or_default(),
        }
    }
}

/// A page-by-page read of one listing, bucket after bucket, in one direction, strictly past a
/// keyset bound.
#[derive(Debug)]
struct Walk {
    listing: &'static str,
    owner: String,
    newest_first: bool,
    /// The last key returned (or the cursor): the next row comes strictly after it.
    after: (i64, String),
    /// Newest first: nothing older than this time (ms, inclusive).
    floor: Option<i64>,
    /// Buckets known to hold rows, to read in order; the front one is being read.
    buckets: VecDeque<i64>,
    /// Where the next read of `catalog_buckets` starts (inclusive); none once it is exhausted.
    next_bucket: Option<i64>,
}

impl Walk {
    /// Newest first, from just before `before`, down to `floor`.
    fn newest_first(listing: &'static str, owner: String, before: (i64, String), floor: Option<i64>) -> Walk {
        Walk {
            listing,
            owner,
            newest_first: true,
            next_bucket: Some(bucket_of(before.0)),
            after: before,
            floor,
            buckets: VecDeque::new(),
        }
    }

    /// Oldest first, from just after `after`.
    fn oldest_first(listing: &'static str, owner: String, after: (i64, String)) -> Walk {
        Walk {
            listing,
            owner,
            newest_first: false,
            next_bucket: Some(bucket_of(after.0)),
            after,
            floor: None,
            buckets: VecDeque::new(),
        }
    }

    /// Ends the walk.
    fn finish(&mut self) {
        self.buckets.clear();
        self.next_bucket = None;
    }

    /// The bucket being read, reading more of `catalog_buckets` when needed.
    async fn bucket(&mut self, cat: &ScyllaCatalog) -> Result<Option<i64>> {
        if self.buckets.is_empty() {
            let Some(from) = self.next_bucket else { return Ok(None) };
            let stmt = if self.newest_first {
                &cat.st.buckets_newest
            } else {
                &cat.st.buckets_oldest
            };
            let found: Vec<(i64,)> = cat
                .cql
                .read_rows(stmt, (self.listing, self.owner.as_str(), from, BUCKETS_PER_READ), "read buckets")
                .await?;
            self.next_bucket = next_bucket_read(&found, self.newest_first);
            let floor = self.floor.map(bucket_of);
            for (bucket,) in found {
                if floor.is_some_and(|f| bucket < f) {
                    self.next_bucket = None;
                    break;
                }
                self.buckets.push_back(bucket);
            }
        }
        Ok(self.buckets.front().copied())
    }

    /// Up to `n` rows past the last one returned, from one bucket; empty once the walk is over.
    async fn next<T>(&mut self, cat: &ScyllaCatalog, page: &PreparedStatement, n: usize) -> Result<Vec<T>>
    where
        T: Keyed + for<'f, 'm> RowDeserialize<'f, 'm>,
    {
        let limit = i32::try_from(n.max(1)).unwrap_or(i32::MAX);
        loop {
            let Some(bucket) = self.bucket(cat).await? else {
                return Ok(Vec::new());
            };
            let values = (
                self.listing,
                self.owner.as_str(),
                bucket,
                self.after.0,
                self.after.1.as_str(),
                limit,
            );
            let rows: Vec<T> = cat.cql.read_rows(page, values, "read a listing").await?;
            if rows.len() < n.max(1) {
                self.buckets.pop_front();
            }
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                let (at, id) = row.key();
                if self.newest_first && self.floor.is_some_and(|f| at < f) {
                    self.finish();
                    return Ok(out);
                }
                self.after = (at, id.to_owned());
                out.push(row);
            }
            if !out.is_empty() {
                return Ok(out);
            }
        }
    }
}

/// Where to continue reading `catalog_buckets` after a read that returned `found`: none when it
/// returned fewer than it asked for (nothing is left).
fn next_bucket_read(found: &[(i64,)], newest_first: bool) -> Option<i64> {
    if found.len() < usize::try_from(BUCKETS_PER_READ).unwrap_or(usize::MAX) {
        return None;
    }
    let (last,) = *found.last()?;
    if newest_first {
        last.checked_sub(1)
    } else {
        last.checked_add(1)
    }
}

/// A `catalog_study_index` row.
#[derive(Debug, Clone, DeserializeRow)]
struct IndexRow {
    study_uid: String,
    patient_id: String,
    study_date: String,
    modality: String,
}

impl IndexRow {
    /// Whether some instance with this combination could match `q` (the instance rows decide).
    fn may_match(&self, q: &DicomQuery) -> bool {
        let present = |s: &str| (!s.is_empty()).then_some(s.to_owned());
        patient_and_date_match(q, present(&self.patient_id).as_deref(), present(&self.study_date).as_deref())
            && q.modality
                .as_ref()
                .is_none_or(|m| present(&self.modality) == Some(m.to_uppercase()))
    }
}

/// One partition of the study index being merged, with its next row.
struct Shard {
    head: Option<IndexRow>,
    rows: TypedRowStream<IndexRow>,
}

/// The studies a QIDO search reads, in StudyInstanceUID order.
enum Candidates {
    /// The study the query names.
    One(Option<String>),
    /// The studies of the PatientID the query names exactly.
    Patient(TypedRowStream<(String,)>),
    /// Every study, merged from the study index partitions and prefiltered.
    Shards(Vec<Shard>),
}

impl Candidates {
    async fn next(&mut self, q: &DicomQuery) -> Result<Option<String>> {
        match self {
            Candidates::One(uid) => Ok(uid.take()),
            Candidates::Patient(rows) => Ok(rows.try_next().await.map_err(db("read the patient index"))?.map(|(uid,)| uid)),
            Candidates::Shards(shards) => loop {
                let lowest = shards
                    .iter()
                    .enumerate()
                    .filter_map(|(i, s)| s.head.as_ref().map(|h| (i, h.study_uid.as_str())))
                    .min_by(|a, b| a.1.cmp(b.1))
                    .map(|(i, uid)| (i, uid.to_owned()));
                let Some((i, uid)) = lowest else { return Ok(None) };
                // A study lives in one partition, its combinations side by side.
                let shard = &mut shards[i];
                let mut may_match = false;
                while shard.head.as_ref().is_some_and(|h| h.study_uid == uid) {
                    if let Some(h) = shard.head.take() {
                        may_match |= h.may_match(q);
                    }
                    shard.head = shard.rows.try_next().await.map_err(db("read the study index"))?;
                }
                if may_match {
                    return Ok(Some(uid));
                }
            },
        }
    }
}

/// A `catalog_instances` row as stored.
#[derive(Debug, Clone, DeserializeRow)]
struct StoredInstance {
    series_uid: String,
    instance_number: i32,
    sop_instance_uid: String,
    image_id: String,
    output_event: Option<String>,
    patient_id: Option<String>,
    study_date: Option<String>,
    modality: Option<String>,
    series_number: Option<i32>,
}

impl StoredInstance {
    fn into_row(self, study_uid: &str) -> InstanceRow {
        let present = |s: String| (!s.is_empty()).then_some(s);
        InstanceRow {
            study_uid: study_uid.to_owned(),
            series_uid: present(self.series_uid),
            instance_number: (self.instance_number != ABSENT_NUMBER).then_some(self.instance_number),
            sop_instance_uid: present(self.sop_instance_uid),
            image_id: self.image_id,
            output_event: self.output_event,
            patient_id: self.patient_id,
            study_date: self.study_date,
            modality: self.modality,
            series_number: self.series_number,
        }
    }
}

/// An anonymized DICOM instance, absent values back to `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct InstanceRow {
    study_uid: String,
    series_uid: Option<String>,
    instance_number: Option<i32>,
    sop_instance_uid: Option<String>,
    image_id: String,
    output_event: Option<String>,
    patient_id: Option<String>,
    study_date: Option<String>,
    modality: Option<String>,
    series_number: Option<i32>,
}

impl InstanceRow {
    /// The query's conditions other than Modality, as SQLite's `dicom_where`.
    fn matches(&self, q: &DicomQuery) -> bool {
        q.study_uid.as_ref().is_none_or(|s| *s == self.study_uid)
            && q.series_uid.as_ref().is_none_or(|s| self.series_uid.as_ref() == Some(s))
            && q.sop_instance_uid
                .as_ref()
                .is_none_or(|s| self.sop_instance_uid.as_ref() == Some(s))
            && patient_and_date_match(q, self.patient_id.as_deref(), self.study_date.as_deref())
    }

    /// The query's Modality condition, compared upper-case.
    fn has_modality(&self, modality: Option<&str>) -> bool {
        modality.is_none_or(|m| self.modality.as_deref() == Some(m.to_uppercase().as_str()))
    }
}

/// PatientID (with wildcards) and the StudyDate range; an absent value matches no condition.
fn patient_and_date_match(q: &DicomQuery, patient: Option<&str>, date: Option<&str>) -> bool {
    q.patient_id.as_ref().is_none_or(|p| patient.is_some_and(|v| wildcard_match(p, v)))
        && q.study_date_from
            .as_ref()
            .is_none_or(|from| date.is_some_and(|d| d >= from.as_str()))
        && q.study_date_to.as_ref().is_none_or(|to| date.is_some_and(|d| d <= to.as_str()))
}

/// A study's summary over its matching instances, if one of them has the query's Modality.
fn study_summary(study_uid: String, rows: &[InstanceRow], modality: Option<&str>) -> Option<StudySummary> {
    if rows.is_empty() || (modality.is_some() && !rows.iter().any(|r| r.has_modality(modality))) {
        return None;
    }
    let modalities: BTreeSet<&str> = rows.iter().filter_map(|r| r.modality.as_deref()).collect();
    let series: BTreeSet<&str> = rows.iter().filter_map(|r| r.series_uid.as_deref()).collect();
    Some(StudySummary {
        study_uid,
        patient_id: rows.iter().filter_map(|r| r.patient_id.clone()).max(),
        study_date: rows.iter().filter_map(|r| r.study_date.clone()).max(),
        modalities: modalities.into_iter().map(str::to_owned).collect(),
        series: i64::try_from(series.len()).unwrap_or(i64::MAX),
        instances: i64::try_from(rows.len()).unwrap_or(i64::MAX),
    })
}

/// The summaries of a study's series over its instances with the query's Modality, by SeriesInstanceUID.
fn series_summaries(study_uid: &str, rows: &[InstanceRow], modality: Option<&str>) -> Vec<SeriesSummary> {
    let mut by_series: BTreeMap<&str, SeriesSummary> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.has_modality(modality)) {
        let Some(series_uid) = r.series_uid.as_deref() else { continue };
        let s = by_series.entry(series_uid).or_insert_with(|| SeriesSummary {
            study_uid: study_uid.to_owned(),
            series_uid: series_uid.to_owned(),
            modality: None,
            series_number: None,
            instances: 0,
        });
        s.modality = s.modality.take().max(r.modality.clone());
        s.series_number = match (s.series_number, r.series_number) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        s.instances += 1;
    }
    by_series.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::super::conformance::{anonymized, registered, rejected, Instance};
    use super::super::cql_check::{assert_names_only_schema, schema_columns};
    use super::*;

    #[test]
    fn a_cursor_round_trips_and_a_foreign_one_is_refused() {
        let c = cursor_of('i', 1_700_000_000_123, "img.1/ñ");
        assert_eq!(parse_cursor('i', &c).unwrap(), (1_700_000_000_123, "img.1/ñ".to_owned()));
        assert_eq!(parse_cursor('u', &cursor_of('u', -5, "a")).unwrap(), (-5, "a".to_owned()));
        for bad in ["x1.a", "i.a", "inope", "u1.61", "i1.a", "i1.", "i1.zz", "garbage", "", "i1.ff"] {
            assert!(matches!(parse_cursor('i', bad), Err(Error::InvalidCursor)), "{bad}");
        }
    }

    #[test]
    fn buckets_are_utc_hours_and_negative_times_round_down() {
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(3_599_999), 0);
        assert_eq!(bucket_of(3_600_000), 1);
        assert_eq!(bucket_of(-1), -1);
        assert_eq!(bucket_of(1_700_000_000_000), 472_222);
        assert_eq!(bucket_of(i64::MAX), i64::MAX / BUCKET_MS);
    }

    #[test]
    fn a_full_bucket_read_continues_past_its_last_bucket_and_a_short_one_ends() {
        let full: Vec<(i64,)> = (0..i64::from(BUCKETS_PER_READ)).map(|b| (100 - b,)).collect();
        assert_eq!(next_bucket_read(&full, true), Some(100 - i64::from(BUCKETS_PER_READ)));
        let up: Vec<(i64,)> = (0..i64::from(BUCKETS_PER_READ)).map(|b| (b,)).collect();
        assert_eq!(next_bucket_read(&up, false), Some(i64::from(BUCKETS_PER_READ)));
        assert_eq!(next_bucket_read(&full[..3], true), None);
        assert_eq!(next_bucket_read(&[], false), None);
    }

    #[test]
    fn fnv1a_is_the_published_function_and_shards_stay_in_range() {
        assert_eq!(fnv1a(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a("a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a("foobar"), 0x8594_4171_f739_67e8);
        for uid in ["1.1", "2.2", "1.2.840.10008.5.1.4.1.1.2", ""] {
            let s = study_shard(uid);
            assert!((0..STUDY_SHARDS).contains(&s), "{uid}: {s}");
            assert_eq!(s, study_shard(uid));
        }
    }

    #[test]
    fn write_timestamps_order_by_time_then_by_event_and_stay_within_limits() {
        let now = 1_700_000_000_000_000;
        let a = write_timestamp(1_700_000_000_000, "n1", now);
        assert_eq!(a / 1000, 1_700_000_000_000);
        // Any two different milliseconds keep their order, whatever the tie-breaks.
        for (x, y) in [("n1", "n2"), ("n2", "n1"), ("zzz", "a")] {
            assert!(write_timestamp(249, x, now) < write_timestamp(250, y, now));
        }
        // The tie-break is a function of the event id alone.
        assert_eq!(write_timestamp(5, "n1", now), write_timestamp(5, "n1", now + 1));
        assert_ne!(write_timestamp(5, "n1", now), write_timestamp(5, "n2", now));
        // Far future is capped at a day ahead; before the epoch at zero.
        assert_eq!(write_timestamp(i64::MAX, "n1", now), now + MAX_AHEAD_MICROS);
        assert_eq!(write_timestamp(-10, "n1", now), 0);
        assert_eq!(write_timestamp(i64::MIN, "n1", now), 0);
    }

    #[test]
    fn estado_follows_the_outcomes_present() {
        assert_eq!(estado_of(false, false), Estado::Registrada);
        assert_eq!(estado_of(false, true), Estado::Rechazada);
        assert_eq!(estado_of(true, false), Estado::Anonimizada);
        assert_eq!(estado_of(true, true), Estado::Anonimizada);
    }

    #[test]
    fn wildcards_match_as_sqlite_glob_with_a_literal_bracket() {
        for (p, t) in [
            ("PSEUDO-*", "PSEUDO-A"),
            ("PSEUDO-*", "PSEUDO-"),
            ("*", ""),
            ("?", "ñ"),
            ("P?E*-B", "PSEUDO-B"),
            ("*A*B*", "xxAyyBzz"),
            ("a*b*c", "abcbc"),
            ("[ab]", "[ab]"),
            ("exact", "exact"),
        ] {
            assert!(wildcard_match(p, t), "{p} ~ {t}");
        }
        for (p, t) in [
            ("PSEUDO-*", "pseudo-a"),
            ("?", ""),
            ("?", "ab"),
            ("a*b", "ab-"),
            ("[ab]", "a"),
            ("exact", "exactly"),
            ("", "x"),
        ] {
            assert!(!wildcard_match(p, t), "{p} !~ {t}");
        }
        assert!(has_wildcard("A*") && has_wildcard("A?") && !has_wildcard("A[1]"));
    }

    /// The rows a `SELECT` of an image's partition returns after `events` were written, in any order.
    fn partition(events: &[CatalogEvent]) -> Vec<ImageRow> {
        let mut output: Option<(i64, String)> = None;
        let mut rejection: Option<(i64, String)> = None;
        let mut rows = Vec::new();
        for e in events {
            let mut row = ImageRow::default();
            match e {
                CatalogEvent::Registered(r) => {
                    row.seen_at = Some(r.occurred_at);
                    row.event_id = Some(r.event_id.clone());
                    row.kind = Some(REGISTERED.into());
                    row.provider_id = Some(r.provider_id.clone());
                    row.tipo_imagen = r.tipo_imagen.clone();
                    row.region_anatomica = r.region_anatomica.clone();
                }
                CatalogEvent::Anonymized(a) => {
                    let stored = StoredOutput::of(a, now_micros());
                    let key = InstanceKey::of(&stored).unwrap();
                    row = ImageRow {
                        seen_at: Some(a.occurred_at),
                        event_id: Some(a.event_id.clone()),
                        kind: Some(ANONYMIZED.into()),
                        provider_id: Some(a.provider_id.clone()),
                        tipo_imagen: a.tipo_imagen.clone(),
                        region_anatomica: a.region_anatomica.clone(),
                        study_uid: Some(key.study),
                        series_uid: Some(key.series),
                        instance_number: Some(key.number),
                        sop_instance_uid: Some(key.sop),
                        ..ImageRow::default()
                    };
                    // Last write wins on the cell's timestamp, not on arrival.
                    let json = serde_json::to_string(&stored).unwrap();
                    if output.as_ref().is_none_or(|(ts, _)| stored.write_ts > *ts) {
                        output = Some((stored.write_ts, json));
                    }
                }
                CatalogEvent::Rejected(x) => {
                    row.seen_at = Some(x.occurred_at);
                    row.event_id = Some(x.event_id.clone());
                    row.kind = Some(REJECTED.into());
                    row.provider_id = x.provider_id.clone();
                    let ts = write_timestamp(x.occurred_at, &x.event_id, now_micros());
                    if rejection.as_ref().is_none_or(|(t, _)| ts > *t) {
                        rejection = Some((ts, x.reason.clone()));
                    }
                }
                CatalogEvent::User(_) | CatalogEvent::Usage(_) => continue,
            }
            rows.push(row);
        }
        rows.sort_by(|a, b| (a.seen_at, &a.event_id).cmp(&(b.seen_at, &b.event_id)));
        for row in &mut rows {
            row.output = output.as_ref().map(|(_, j)| j.clone());
            row.rejection = rejection.as_ref().map(|(_, r)| r.clone());
        }
        rows
    }

    fn fold(events: &[CatalogEvent]) -> Option<(CatalogImage, Option<String>)> {
        ImageParts::from_rows(partition(events)).unwrap().image("a")
    }

    const CT: Instance<'static> = ("1.1", "1.1.1", "1.1.1.1", "CT", "PSEUDO-A", "20200105");
    const RETAINED: Instance<'static> = ("9.9", "9.9.1", "9.9.1.1", "CT", "PSEUDO-A", "20200105");

    #[test]
    fn an_image_folds_the_same_whatever_order_its_events_arrive_in() {
        let events = vec![
            registered("r1", "a", "p1", 100),
            anonymized("n1", "a", "p1", 200, CT),
            rejected("x1", "a", "p1", 300),
            registered("r2", "a", "p1", 400),
            anonymized("n3", "a", "p1", 500, CT),
            anonymized("n2", "a", "p1", 250, CT),
        ];
        let expected = fold(&events).unwrap();
        assert_eq!(
            (expected.0.estado, expected.0.created_at, expected.0.modality.as_deref()),
            (Estado::Anonimizada, 100, Some("CT"))
        );
        assert_eq!(expected.0.anonymized.as_ref().unwrap().blob_key, "anonymized/n3");
        assert_eq!(expected.0.anonymized.as_ref().unwrap().report["uids_remapped"], 3);
        assert_eq!(expected.0.rejection_reason.as_deref(), Some("not_dicom"));
        assert_eq!(expected.1.as_deref(), Some("n3"));
        let mut reversed = events.clone();
        reversed.reverse();
        assert_eq!(fold(&reversed), Some(expected.clone()));
        let mut rotated = events;
        rotated.rotate_left(3);
        assert_eq!(fold(&rotated), Some(expected));
    }

    #[test]
    fn estado_and_labels_come_from_the_sightings_present() {
        assert!(fold(&[]).is_none());
        let (a, _) = fold(&[registered("r1", "a", "p1", 100)]).unwrap();
        assert_eq!(
            (a.estado, a.modality.as_deref(), a.tipo_imagen.as_deref(), a.provider_id.as_str()),
            (Estado::Registrada, Some("RX"), Some("rx"), "p1")
        );
        assert!(a.anonymized.is_none());
        // A rejection first, the registration late: created when registered, still rejected.
        let (c, _) = fold(&[rejected("x5", "a", "p2", 320), registered("r5", "a", "p2", 300)]).unwrap();
        assert_eq!(
            (c.estado, c.created_at, c.rejection_reason.as_deref()),
            (Estado::Rechazada, 300, Some("not_dicom"))
        );
        // The output before its registration: created when registered.
        let (b, _) = fold(&[anonymized("n4", "a", "p1", 220, CT), registered("r4", "a", "p1", 210)]).unwrap();
        assert_eq!((b.estado, b.created_at), (Estado::Anonimizada, 210));
        // Labels come from the first sighting that names them.
        let mut bare = registered("r0", "a", "p1", 50);
        if let CatalogEvent::Registered(r) = &mut bare {
            r.tipo_imagen = None;
        }
        let (d, _) = fold(&[bare, registered("r1", "a", "p1", 100)]).unwrap();
        assert_eq!(
            (d.created_at, d.tipo_imagen.as_deref(), d.modality.as_deref()),
            (50, Some("rx"), Some("RX"))
        );
    }

    #[test]
    fn a_stored_output_reads_back_as_the_event_said() {
        let CatalogEvent::Anonymized(e) = anonymized("n1", "a", "p1", 200, CT) else {
            unreachable!()
        };
        let stored = StoredOutput::of(&e, now_micros());
        let back: StoredOutput = serde_json::from_str(&serde_json::to_string(&stored).unwrap()).unwrap();
        assert_eq!(back, stored);
        let out = back.to_output();
        assert_eq!(
            (
                out.blob_key.as_str(),
                out.study_uid.as_deref(),
                out.instance_number,
                out.anonymized_at
            ),
            ("anonymized/n1", Some("1.1"), Some(1), 200)
        );
        assert_eq!(stored.modality.as_deref(), Some("CT"));
        assert!(ImageParts::from_rows(vec![ImageRow {
            output: Some("{".into()),
            ..ImageRow::default()
        }])
        .is_err());
    }

    #[test]
    fn only_the_rows_of_replaced_outputs_with_other_uids_are_deleted_at_the_newest_timestamp() {
        // The same UIDs rewrite the same row: nothing to delete.
        let same = ImageParts::from_rows(partition(&[
            anonymized("n1", "a", "p1", 200, CT),
            anonymized("n2", "a", "p1", 300, CT),
        ]))
        .unwrap();
        assert!(same.stale_instance_keys().is_none());
        // Re-anonymized with retained UIDs, the older output arriving last: its key goes, at the newer's timestamp.
        let moved = ImageParts::from_rows(partition(&[
            anonymized("n2", "a", "p1", 300, RETAINED),
            anonymized("n1", "a", "p1", 200, CT),
            registered("r1", "a", "p1", 100),
        ]))
        .unwrap();
        let (ts, stale) = moved.stale_instance_keys().unwrap();
        assert_eq!(ts, moved.output.as_ref().unwrap().write_ts);
        assert_eq!(ts / 1000, 300);
        let keys: Vec<_> = stale
            .iter()
            .map(|k| (k.study.as_str(), k.series.as_str(), k.number, k.sop.as_str()))
            .collect();
        assert_eq!(keys, vec![("1.1", "1.1.1", 1, "1.1.1.1")]);
        // No output: nothing to settle.
        assert!(ImageParts::from_rows(partition(&[registered("r1", "a", "p1", 100)]))
            .unwrap()
            .stale_instance_keys()
            .is_none());
    }

    #[test]
    fn a_read_back_that_missed_this_replicas_writes_still_settles_with_them() {
        // At consistency ONE the read may return nothing of what was just written.
        let CatalogEvent::Registered(r) = registered("r0", "a", "p1", 50) else {
            unreachable!()
        };
        let CatalogEvent::Anonymized(n) = anonymized("n2", "a", "p1", 300, RETAINED) else {
            unreachable!()
        };
        let stored = StoredOutput::of(&n, now_micros());
        let mut own = ImageParts::default();
        own.sightings.push(Sighting::registered(&r));
        own.sightings.push(Sighting::anonymized(&n, &stored));
        own.keep_newer_output(stored.clone());
        // The read saw an older registration and an older output with other UIDs, not ours.
        let mut parts =
            ImageParts::from_rows(partition(&[registered("r1", "a", "p1", 100), anonymized("n1", "a", "p1", 200, CT)])).unwrap();
        parts.merge(own.clone());
        let ids: Vec<&str> = parts.sightings.iter().map(|s| s.event_id.as_str()).collect();
        assert_eq!(ids, vec!["r0", "r1", "n1", "n2"]);
        assert_eq!(parts.output.as_ref().map(|o| o.event_id.as_str()), Some("n2"));
        let (ts, stale) = parts.stale_instance_keys().unwrap();
        assert_eq!((ts, stale.len()), (stored.write_ts, 1));
        // Merging twice changes nothing; a newer stored output is not replaced by an older own one.
        parts.merge(own);
        assert_eq!(parts.sightings.len(), 4);
        let mut newer = ImageParts::from_rows(partition(&[anonymized("n3", "a", "p1", 400, CT)])).unwrap();
        let CatalogEvent::Anonymized(old) = anonymized("n1", "a", "p1", 200, CT) else {
            unreachable!()
        };
        let mut mine = ImageParts::default();
        mine.keep_newer_output(StoredOutput::of(&old, now_micros()));
        newer.merge(mine);
        assert_eq!(newer.output.as_ref().map(|o| o.event_id.as_str()), Some("n3"));
    }

    #[test]
    fn an_output_without_a_study_writes_no_instance_row() {
        let mut png = anonymized("n1", "a", "p1", 200, CT);
        if let CatalogEvent::Anonymized(a) = &mut png {
            a.study_uid = None;
        }
        let CatalogEvent::Anonymized(a) = &png else { unreachable!() };
        assert!(InstanceKey::of(&StoredOutput::of(a, 0)).is_none());
        let k = InstanceKey::from_parts(Some("1"), None, None, None).unwrap();
        assert_eq!((k.series.as_str(), k.number, k.sop.as_str()), ("", ABSENT_NUMBER, ""));
        assert!(InstanceKey::from_parts(Some(""), Some("1"), Some(1), Some("1")).is_none());
    }

    #[test]
    fn a_user_is_created_at_its_first_registration_with_its_latest_role() {
        let row = |at: i64, id: &str, role: &str| UserRow {
            registered_at: at,
            event_id: id.into(),
            user_role: Some(role.into()),
            organization: None,
        };
        let u = fold_user(
            "u1",
            vec![row(30, "w3", "admin"), row(10, "w1", "proveedor"), row(20, "w2", "consumidor")],
        )
        .unwrap();
        assert_eq!((u.created_at, u.role.as_str()), (10, "admin"));
        assert!(fold_user("u1", Vec::new()).is_none());
    }

    fn instance(study: &str, series: Option<&str>, n: Option<i32>, modality: &str, patient: &str, date: &str) -> InstanceRow {
        InstanceRow {
            study_uid: study.into(),
            series_uid: series.map(str::to_owned),
            instance_number: n,
            sop_instance_uid: Some(format!("{}.{}", series.unwrap_or("x"), n.unwrap_or(0))),
            image_id: "img".into(),
            output_event: Some("n".into()),
            patient_id: Some(patient.into()),
            study_date: Some(date.into()),
            modality: Some(modality.into()),
            series_number: n,
        }
    }

    #[test]
    fn study_and_series_summaries_count_as_sqlite_does() {
        let rows = vec![
            instance("1.1", Some("1.1.1"), Some(1), "CT", "PSEUDO-A", "20200105"),
            instance("1.1", Some("1.1.1"), Some(2), "CT", "PSEUDO-A", "20200105"),
            instance("1.1", Some("1.1.2"), Some(7), "MR", "PSEUDO-A", "20200105"),
            instance("1.1", None, None, "OT", "PSEUDO-A", "20200106"),
        ];
        let s = study_summary("1.1".into(), &rows, None).unwrap();
        assert_eq!(
            (s.modalities, s.series, s.instances, s.study_date.as_deref()),
            (vec!["CT".to_owned(), "MR".to_owned(), "OT".to_owned()], 2, 4, Some("20200106"))
        );
        // A study matches a Modality when any instance has it; its counts stay whole.
        assert_eq!(study_summary("1.1".into(), &rows, Some("mr")).unwrap().instances, 4);
        assert!(study_summary("1.1".into(), &rows, Some("US")).is_none());
        let series = series_summaries("1.1", &rows, None);
        let got: Vec<_> = series
            .iter()
            .map(|s| (s.series_uid.as_str(), s.modality.as_deref(), s.series_number, s.instances))
            .collect();
        assert_eq!(got, vec![("1.1.1", Some("CT"), Some(1), 2), ("1.1.2", Some("MR"), Some(7), 1)]);
        assert_eq!(series_summaries("1.1", &rows, Some("mr")).len(), 1);
    }

    #[test]
    fn instance_filters_are_sqlites_dicom_where() {
        let r = instance("1.1", Some("1.1.2"), Some(7), "MR", "PSEUDO-A", "20200105");
        let q = |f: fn(&mut DicomQuery)| {
            let mut q = DicomQuery {
                limit: 10,
                ..DicomQuery::default()
            };
            f(&mut q);
            q
        };
        assert!(r.matches(&q(|_| {})));
        assert!(r.matches(&q(|q| q.patient_id = Some("PSEUDO-?".into()))));
        assert!(!r.matches(&q(|q| q.patient_id = Some("PSEUDO-B".into()))));
        assert!(r.matches(&q(|q| q.study_date_from = Some("20200105".into()))));
        assert!(!r.matches(&q(|q| q.study_date_from = Some("20200106".into()))));
        assert!(r.matches(&q(|q| q.study_date_to = Some("20200105".into()))));
        assert!(!r.matches(&q(|q| q.study_date_to = Some("20191231".into()))));
        assert!(!r.matches(&q(|q| q.series_uid = Some("1.1.1".into()))));
        assert!(!r.matches(&q(|q| q.study_uid = Some("2.2".into()))));
        assert!(r.has_modality(Some("mr")) && !r.has_modality(Some("CT")) && r.has_modality(None));
        let mut absent = r.clone();
        absent.patient_id = None;
        absent.study_date = None;
        assert!(!absent.matches(&q(|q| q.patient_id = Some("*".into()))));
        assert!(!absent.matches(&q(|q| q.study_date_to = Some("99999999".into()))));
        // A study index combination prefilters the same way; empty text is absent.
        let combo = IndexRow {
            study_uid: "1.1".into(),
            patient_id: "PSEUDO-A".into(),
            study_date: "20200105".into(),
            modality: "MR".into(),
        };
        assert!(combo.may_match(&q(|q| q.modality = Some("mr".into()))));
        assert!(!combo.may_match(&q(|q| q.modality = Some("CT".into()))));
        assert!(!combo.may_match(&q(|q| q.study_date_from = Some("20210101".into()))));
        let blank = IndexRow {
            patient_id: String::new(),
            ..combo
        };
        assert!(!blank.may_match(&q(|q| q.patient_id = Some("*".into()))));
    }

    #[test]
    fn image_filters_compare_as_sqlite_does() {
        let (img, _) = fold(&[registered("r1", "a", "p1", 100)]).unwrap();
        let f = ImageFilter::default();
        assert!(image_matches(&f, &img));
        assert!(image_matches(
            &ImageFilter {
                modality: Some("rx".into()),
                provider_id: Some("p1".into()),
                estado: Some(Estado::Registrada),
                region_anatomica: Some("torax".into()),
                created_from: Some(100),
                created_to: Some(101),
            },
            &img
        ));
        for other in [
            ImageFilter {
                modality: Some("ct".into()),
                ..f.clone()
            },
            ImageFilter {
                provider_id: Some("p2".into()),
                ..f.clone()
            },
            ImageFilter {
                estado: Some(Estado::Anonimizada),
                ..f.clone()
            },
            ImageFilter {
                created_to: Some(100),
                ..f.clone()
            },
            ImageFilter {
                created_from: Some(101),
                ..f.clone()
            },
        ] {
            assert!(!image_matches(&other, &img), "{other:?}");
        }
    }

    #[test]
    fn a_page_keeps_limit_items_and_a_cursor_only_when_more_exist() {
        let mut items = vec![1, 2, 3];
        assert_eq!(page_end(&mut items, 2, |i| i.to_string()), Some("2".into()));
        assert_eq!(items, vec![1, 2]);
        let mut few = vec![1];
        assert_eq!(page_end(&mut few, 2, |i| i.to_string()), None);
        let mut none: Vec<i32> = vec![1];
        assert_eq!(page_end(&mut none, 0, |i| i.to_string()), None);
    }

    #[test]
    fn every_statement_names_only_tables_and_columns_of_the_schema() {
        const KEYWORDS: [&str; 15] = [
            "select",
            "from",
            "where",
            "and",
            "insert",
            "into",
            "values",
            "using",
            "timestamp",
            "limit",
            "order",
            "by",
            "asc",
            "desc",
            "delete",
        ];
        let tables = schema_columns("002_catalog.cql");
        assert_eq!(tables.len(), 9, "{:?}", tables.keys());
        let all = [
            EVENT_KNOWN,
            EVENT_RECORD,
            IMAGE_REGISTERED,
            IMAGE_ANONYMIZED,
            IMAGE_REJECTED,
            IMAGE_READ,
            INSTANCE_WRITE,
            INSTANCE_DELETE,
            INSTANCES_OF_STUDY,
            INSTANCES_OF_SERIES,
            STUDY_INDEX_WRITE,
            STUDY_INDEX_SCAN,
            PATIENT_INDEX_WRITE,
            PATIENT_INDEX_SCAN,
            USER_WRITE,
            USER_READ,
            USAGE_WRITE,
            USAGE_PAGE,
            LISTING_WRITE,
            LISTING_NEWEST,
            LISTING_OLDEST,
            BUCKET_WRITE,
            BUCKETS_NEWEST,
            BUCKETS_OLDEST,
        ];
        for cql in all {
            assert_names_only_schema(cql, &tables, &KEYWORDS, false);
        }
        // The value-writing statements bind one marker per column, plus the timestamp where they name one.
        for cql in [
            IMAGE_REGISTERED,
            IMAGE_ANONYMIZED,
            IMAGE_REJECTED,
            INSTANCE_WRITE,
            USAGE_WRITE,
            USER_WRITE,
            LISTING_WRITE,
        ] {
            let (cols, vals) = cql.split_once("VALUES").unwrap();
            let named = cols.rsplit_once('(').unwrap().1.split(',').count();
            let markers = vals.matches('?').count();
            let ts = usize::from(cql.contains("USING TIMESTAMP ?"));
            assert_eq!(named + ts, markers, "{cql}");
        }
    }
}
