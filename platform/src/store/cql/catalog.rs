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
//! - `catalog_provider_studies` lists each provider's images by study, in 16
//!   partitions per provider chosen as the study index's: a provider's search
//!   (its own studies over DICOMweb) takes its candidate studies from there,
//!   and keeps of each study's instance rows those of its own images.
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

use super::conn::{db, ScyllaArgs};
use super::exec::{Cql, Kind};
use super::written::Written;
use crate::store::catalog::{
    report_summary, AnonymizedOutput, CatalogEvent, CatalogImage, CatalogStore, CatalogUser, DicomQuery, Estado, ImageAnalysis,
    ImageFilter, ImagePage, ReportJson, SeriesSummary, StudySummary, Usage, UsageBy, UsagePage, UserPage,
};
use crate::{Error, Result};
use alpes_domain::dicom_match::{has_wildcard, wildcard_match};
use alpes_domain::ledger::DailyUse;
use alpes_domain::page::PageCursor;
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
use std::sync::Arc;

mod analysis;
mod consent;
mod keys;
mod provider;
mod qido;
mod rows;
mod walk;

use keys::*;
use provider::ProviderRow;
use qido::*;
use rows::*;
use walk::*;

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
    /// The bucket rows this process wrote.
    known_buckets: Arc<Written<BucketKey>>,
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
    analysis_write: PreparedStatement,
    analysis_read: PreparedStatement,
    provider_write: PreparedStatement,
    provider_scan: PreparedStatement,
    provider_of_study: PreparedStatement,
    consent: consent::Statements,
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
            analysis_write: prepare(analysis::WRITE, None).await?,
            analysis_read: prepare(analysis::READ, None).await?,
            provider_write: prepare(provider::WRITE, None).await?,
            provider_scan: prepare(provider::SCAN, Some(args.page_size.clamp(1, INDEX_PAGE_ROWS))).await?,
            provider_of_study: prepare(provider::OF_STUDY, paged).await?,
            consent: consent::Statements::prepare(&cql).await?,
        };
        Ok(ScyllaCatalog {
            cql,
            st: Arc::new(st),
            known_buckets: Arc::new(Written::new(KNOWN_BUCKETS)),
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
        if self.known_buckets.has(&key) {
            return Ok(());
        }
        self.cql
            .write(&self.st.bucket_write, (listing, owner, bucket), "write a bucket")
            .await?;
        self.known_buckets.remember(key);
        Ok(())
    }

    /// Applies the new events of one image, in batch order, then settles its listing and instance rows.
    async fn apply_image(&self, image_id: &str, events: Vec<&CatalogEvent>) -> Result<()> {
        let ours: HashSet<&str> = events.iter().map(|e| e.event_id()).collect();
        let mut own = ImageParts::default();
        for e in events {
            match e {
                CatalogEvent::Registered(r) => {
                    self.write_image_institution(image_id, r.institucion_id.as_deref()).await?;
                    self.write_registered(r).await?;
                    own.sightings.push(Sighting::registered(r));
                }
                CatalogEvent::Anonymized(a) => {
                    self.write_image_institution(image_id, a.institucion_id.as_deref()).await?;
                    let stored = self.write_anonymized(a).await?;
                    own.sightings.push(Sighting::anonymized(a, &stored));
                    own.keep_newer_output(stored);
                }
                CatalogEvent::Rejected(x) => {
                    self.write_rejected(image_id, x).await?;
                    own.sightings.push(Sighting::rejected(x));
                }
                CatalogEvent::User(_)
                | CatalogEvent::Usage(_)
                | CatalogEvent::Analyzed(_)
                | CatalogEvent::Consent(_)
                | CatalogEvent::Institution(_) => {}
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
            let of_provider = self.write_provider_study(&e.provider_id, &k.study, &e.image_id);
            futures::try_join!(index, by_patient, instance, of_provider)?;
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

    /// Applies one event that is not about an image's state: a user, a download or an analysis.
    async fn apply_other(&self, e: &CatalogEvent) -> Result<()> {
        match e {
            CatalogEvent::User(u) if !u.user_id.is_empty() => self.write_user(u).await,
            CatalogEvent::Usage(u) => self.write_usage(u).await.and(self.write_institution_usage(u).await),
            CatalogEvent::Analyzed(a) => self.write_analysis(a).await,
            CatalogEvent::Consent(c) => self.write_consent(c).await,
            CatalogEvent::Institution(i) => self.write_policy(i).await,
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
        let mine = match q.provider_id.as_deref() {
            Some(provider) => Some(self.provider_images(provider, study_uid).await?),
            None => None,
        };
        let mut rows: Vec<InstanceRow> = stored
            .into_iter()
            .filter(|s| mine.as_ref().is_none_or(|m| m.contains(&s.image_id)))
            .map(|s| s.into_row(study_uid))
            .filter(|r| r.matches(q))
            .collect();
        if q.offered_only {
            let keys: Vec<_> = rows.iter().map(|r| (r.image_id.as_str(), r.patient_id.as_deref())).collect();
            let mut offered = self.gate(&keys).await?.into_iter();
            rows.retain(|_| offered.next().unwrap_or(false));
        }
        Ok(rows)
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
        if let Some(provider) = &q.provider_id {
            return Ok(Candidates::Provider(self.provider_shards(provider).await?));
        }
        let shards = (0..STUDY_SHARDS).map(|shard| Shard::open(&self.cql, &self.st.study_index_scan, (shard,), "read the study index"));
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
    async fn apply(&self, events: Vec<CatalogEvent>) -> alpes_domain::Result<usize> {
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

    async fn analysis(&self, image_id: &str) -> alpes_domain::Result<Option<ImageAnalysis>> {
        Ok(self.read_analysis(image_id).await?)
    }

    async fn offered(&self, image_id: &str) -> alpes_domain::Result<bool> {
        Ok(self.offered_image(image_id).await?)
    }

    async fn institution_panel(&self, institution_id: &str) -> alpes_domain::Result<alpes_domain::panel::InstitutionPanel> {
        Ok(self.panel_of_institution(institution_id).await?)
    }

    async fn doctor_panel(&self, doctor_id: &str) -> alpes_domain::Result<alpes_domain::panel::DoctorPanel> {
        Ok(self.panel_of_doctor(doctor_id).await?)
    }

    async fn image(&self, image_id: &str) -> alpes_domain::Result<Option<Arc<CatalogImage>>> {
        Ok(self.read_image(image_id).await?.map(|(image, _)| Arc::new(image)))
    }

    async fn images(&self, filter: &ImageFilter, cursor: Option<&str>, limit: usize) -> alpes_domain::Result<ImagePage> {
        let after = cursor.map(|c| PageCursor::decode('i', c).map(PageCursor::key)).transpose()?;
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
            let mut images: Vec<CatalogImage> = self.listed_images(&rows, provider).await?;
            images.retain(|i| image_matches(filter, i));
            if filter.offered_only {
                let keys: Vec<_> = images.iter().map(consent::gate_key).collect();
                let mut offered = self.gate(&keys).await?.into_iter();
                images.retain(|_| offered.next().unwrap_or(false));
            }
            found.extend(images);
        }
        let next = page_end(&mut found, limit, |i| PageCursor::new(i.created_at, &i.image_id).encode('i'));
        Ok(ImagePage { images: found, next })
    }

    async fn studies(&self, q: &DicomQuery) -> alpes_domain::Result<Vec<StudySummary>> {
        Ok(self
            .summarize_studies(q, |uid, rows| study_summary(uid, rows, q.modality.as_deref()))
            .await?)
    }

    async fn series(&self, q: &DicomQuery) -> alpes_domain::Result<Vec<SeriesSummary>> {
        Ok(self
            .summarize_studies(q, |uid, rows| series_summaries(&uid, rows, q.modality.as_deref()))
            .await?)
    }

    async fn instances(&self, q: &DicomQuery) -> alpes_domain::Result<Vec<CatalogImage>> {
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
                            let class = image.anonymized.as_ref().and_then(|o| o.sop_class_uid.as_deref());
                            if row.output_event.as_deref() == Some(output_event.as_str())
                                && image.estado == Estado::Anonimizada
                                && q.sop_class_uid.as_deref().is_none_or(|c| class == Some(c))
                            {
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

    async fn user(&self, user_id: &str) -> alpes_domain::Result<Option<CatalogUser>> {
        Ok(self.read_user(user_id).await?)
    }

    async fn users(&self, role: Option<&str>, cursor: Option<&str>, limit: usize) -> alpes_domain::Result<UserPage> {
        let after = cursor.map(|c| PageCursor::decode('u', c).map(PageCursor::key)).transpose()?;
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
        let next = page_end(&mut found, limit, |u| PageCursor::new(u.created_at, &u.user_id).encode('u'));
        Ok(UserPage { users: found, next })
    }

    /// Walks the consumer's downloads newest first (the listing is ordered by time across its hour
    /// buckets) until one is older than `since`.
    async fn used_since(&self, consumer: &str, since: i64) -> alpes_domain::Result<DailyUse> {
        let mut used = DailyUse::default();
        let mut cursor: Option<String> = None;
        loop {
            let page = self.usage(UsageBy::Consumer(consumer), cursor.as_deref(), 1000).await?;
            for u in page.usage.iter().take_while(|u| u.occurred_at >= since) {
                used.downloads += 1;
                used.bytes = used.bytes.saturating_add(u.bytes);
            }
            match page.next {
                Some(next) if page.usage.last().is_some_and(|u| u.occurred_at >= since) => cursor = Some(next),
                _ => return Ok(used),
            }
        }
    }

    async fn usage(&self, by: UsageBy<'_>, cursor: Option<&str>, limit: usize) -> alpes_domain::Result<UsagePage> {
        let before = cursor.map(|c| PageCursor::decode('k', c).map(PageCursor::key)).transpose()?;
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
        let next = page_end(&mut found, limit, |u| PageCursor::new(u.occurred_at, &u.event_id).encode('k'));
        Ok(UsagePage { usage: found, next })
    }
}

#[cfg(test)]
mod tests;
