//! The embedded catalog: SQLite (WAL), one transaction per batch of events.
//!
//! `catalog_events` remembers every applied event id; an event whose id is
//! already there is skipped whole. Images move forward only: each upsert
//! keeps the higher `estado_rank`, the earliest `created_at`, and the
//! anonymized output with the latest `anonymized_at`.

use super::catalog_consent::{self as consent, OFFERED};
use super::conn::{keyset_page, rows, write_tx, SqliteConn, Where};
use super::fresh::Fresh;
use crate::store::catalog::{
    analysis_json, report_summary, AnonymizedOutput, CatalogEvent, CatalogImage, CatalogStore, CatalogUser, DicomQuery, Estado,
    ImageAnalysis, ImageFilter, ImagePage, ReportJson, SeriesSummary, StudySummary, Usage, UsageBy, UsagePage, UserPage,
};
use crate::{Error, Result};
use alpes_domain::dicom_match::sqlite_glob;
use alpes_domain::ledger::DailyUse;
use alpes_domain::page::PageCursor;
use alpes_schemas::{AnalisisCompletado, EventoUsoDatos, ImagenAnonimizada, ImagenRechazada, ImagenRegistrada, UsuarioRegistrado};
use async_trait::async_trait;
use rusqlite::types::Value;
use rusqlite::{params, Connection, OptionalExtension, Row};
use std::sync::Arc;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS catalog_events (event_id TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS catalog_images (
    image_id         TEXT PRIMARY KEY,
    provider_id      TEXT NOT NULL,
    estado           TEXT NOT NULL,
    estado_rank      INTEGER NOT NULL,
    created_at       INTEGER NOT NULL,
    tipo_imagen      TEXT,
    region_anatomica TEXT,
    modality         TEXT,
    rejection_reason TEXT,
    anonymized_at    INTEGER,
    blob_key         TEXT,
    sha256           TEXT,
    size_bytes       INTEGER,
    media_type       TEXT,
    study_uid        TEXT,
    series_uid       TEXT,
    sop_instance_uid TEXT,
    sop_class_uid    TEXT,
    patient_id       TEXT,
    study_date       TEXT,
    series_number    INTEGER,
    instance_number  INTEGER,
    body_part        TEXT,
    rows_            INTEGER,
    columns_         INTEGER,
    frames           INTEGER,
    report           TEXT
);
CREATE INDEX IF NOT EXISTS catalog_images_created ON catalog_images(created_at, image_id);
CREATE INDEX IF NOT EXISTS catalog_images_provider ON catalog_images(provider_id, created_at, image_id);
CREATE INDEX IF NOT EXISTS catalog_images_study ON catalog_images(study_uid, series_uid, instance_number) WHERE estado = 'anonimizada';
CREATE TABLE IF NOT EXISTS catalog_users (
    user_id      TEXT PRIMARY KEY,
    role         TEXT NOT NULL,
    organization TEXT,
    created_at   INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS catalog_users_created ON catalog_users(created_at, user_id);
CREATE TABLE IF NOT EXISTS catalog_usage (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id     TEXT NOT NULL UNIQUE,
    occurred_at  INTEGER NOT NULL,
    consumer_id  TEXT NOT NULL,
    provider_id  TEXT NOT NULL,
    image_id     TEXT NOT NULL,
    bytes        INTEGER NOT NULL,
    amount_minor INTEGER NOT NULL,
    currency     TEXT NOT NULL,
    charge_key   TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS catalog_usage_image ON catalog_usage(image_id, seq);
CREATE INDEX IF NOT EXISTS catalog_usage_consumer ON catalog_usage(consumer_id, seq);
CREATE INDEX IF NOT EXISTS catalog_usage_consumer_time ON catalog_usage(consumer_id, occurred_at);
CREATE TABLE IF NOT EXISTS catalog_analyses (
    image_id     TEXT PRIMARY KEY,
    provider_id  TEXT NOT NULL,
    analyzed_at  INTEGER NOT NULL,
    body         TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS catalog_analyses_provider ON catalog_analyses(provider_id, analyzed_at);
";

const REGISTERED: &str = "INSERT INTO catalog_images
    (image_id, provider_id, estado, estado_rank, created_at, tipo_imagen, region_anatomica, modality)
    VALUES (?1, ?2, 'registrada', 0, ?3, ?4, ?5, UPPER(?4))
    ON CONFLICT (image_id) DO UPDATE SET
        created_at = MIN(created_at, excluded.created_at),
        tipo_imagen = COALESCE(tipo_imagen, excluded.tipo_imagen),
        region_anatomica = COALESCE(region_anatomica, excluded.region_anatomica),
        modality = COALESCE(modality, excluded.modality)";

const REJECTED: &str = "INSERT INTO catalog_images
    (image_id, provider_id, estado, estado_rank, created_at, rejection_reason)
    VALUES (?1, ?2, 'rechazada', 1, ?3, ?4)
    ON CONFLICT (image_id) DO UPDATE SET
        estado = CASE WHEN estado_rank < 1 THEN 'rechazada' ELSE estado END,
        estado_rank = MAX(estado_rank, 1),
        created_at = MIN(created_at, excluded.created_at),
        rejection_reason = excluded.rejection_reason";

const ANONYMIZED: &str = "INSERT INTO catalog_images
    (image_id, provider_id, estado, estado_rank, created_at, tipo_imagen, region_anatomica, modality, anonymized_at,
     blob_key, sha256, size_bytes, media_type, study_uid, series_uid, sop_instance_uid, sop_class_uid, patient_id,
     study_date, series_number, instance_number, body_part, rows_, columns_, frames, report)
    VALUES (?1, ?2, 'anonimizada', 2, ?3, ?4, ?5, ?6, ?3, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23)
    ON CONFLICT (image_id) DO UPDATE SET
        estado = 'anonimizada', estado_rank = 2,
        created_at = MIN(created_at, excluded.created_at),
        tipo_imagen = COALESCE(tipo_imagen, excluded.tipo_imagen),
        region_anatomica = COALESCE(region_anatomica, excluded.region_anatomica),
        modality = excluded.modality, anonymized_at = excluded.anonymized_at, blob_key = excluded.blob_key,
        sha256 = excluded.sha256, size_bytes = excluded.size_bytes, media_type = excluded.media_type,
        study_uid = excluded.study_uid, series_uid = excluded.series_uid, sop_instance_uid = excluded.sop_instance_uid,
        sop_class_uid = excluded.sop_class_uid, patient_id = excluded.patient_id, study_date = excluded.study_date,
        series_number = excluded.series_number, instance_number = excluded.instance_number, body_part = excluded.body_part,
        rows_ = excluded.rows_, columns_ = excluded.columns_, frames = excluded.frames, report = excluded.report
    WHERE anonymized_at IS NULL OR anonymized_at <= excluded.anonymized_at";

const USER: &str = "INSERT INTO catalog_users (user_id, role, organization, created_at) VALUES (?1, ?2, ?3, ?4)
    ON CONFLICT (user_id) DO UPDATE SET
        role = CASE WHEN excluded.created_at >= created_at THEN excluded.role ELSE role END,
        organization = CASE WHEN excluded.created_at >= created_at THEN excluded.organization ELSE organization END";

const USAGE: &str = "INSERT OR IGNORE INTO catalog_usage
    (event_id, occurred_at, consumer_id, provider_id, image_id, bytes, amount_minor, currency, charge_key)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";

const ANALYZED: &str = "INSERT INTO catalog_analyses (image_id, provider_id, analyzed_at, body) VALUES (?1, ?2, ?3, ?4)
    ON CONFLICT (image_id) DO UPDATE SET
        provider_id = excluded.provider_id, analyzed_at = excluded.analyzed_at, body = excluded.body
    WHERE analyzed_at <= excluded.analyzed_at";

const IMAGE_COLUMNS: &str = "image_id, provider_id, estado, created_at, modality, tipo_imagen, region_anatomica, rejection_reason,
    anonymized_at, blob_key, sha256, size_bytes, media_type, study_uid, series_uid, sop_instance_uid, sop_class_uid,
    patient_id, study_date, series_number, instance_number, body_part, rows_, columns_, frames, report";

/// The SQLite catalog.
#[derive(Debug, Clone)]
pub struct SqliteCatalog {
    conn: SqliteConn,
    /// Images by id, as `GET /imagenes/{id}` reads them (see [`super::fresh`]);
    /// every applied batch clears it.
    images: Arc<Fresh<Option<Arc<CatalogImage>>>>,
}

/// How many images [`SqliteCatalog`] keeps in memory (a few MB).
const IMAGE_CACHE: usize = 4_096;

impl SqliteCatalog {
    /// Opens (creating) the catalog tables in the database at `path`.
    pub fn open(path: &std::path::Path, fsync: bool) -> Result<SqliteCatalog> {
        Ok(SqliteCatalog {
            conn: SqliteConn::open(path, fsync, &[SCHEMA, consent::SCHEMA].concat())?,
            images: Arc::new(Fresh::new(IMAGE_CACHE)),
        })
    }

    /// A private in-memory catalog (tests).
    pub fn in_memory() -> Result<SqliteCatalog> {
        Ok(SqliteCatalog {
            conn: SqliteConn::in_memory(&[SCHEMA, consent::SCHEMA].concat())?,
            images: Arc::new(Fresh::new(IMAGE_CACHE)),
        })
    }
}

fn registered(tx: &Connection, e: &ImagenRegistrada) -> Result<()> {
    tx.prepare_cached(REGISTERED)?
        .execute(params![e.image_id, e.provider_id, e.occurred_at, e.tipo_imagen, e.region_anatomica])?;
    consent::of_institution(tx, &e.image_id, e.institucion_id.as_deref())
}

fn rejected(tx: &Connection, e: &ImagenRechazada) -> Result<()> {
    // A message that never decoded names no image: nothing to materialize.
    let Some(image_id) = &e.image_id else { return Ok(()) };
    tx.prepare_cached(REJECTED)?.execute(params![
        image_id,
        e.provider_id.as_deref().unwrap_or_default(),
        e.occurred_at,
        e.reason
    ])?;
    Ok(())
}

fn anonymized(tx: &Connection, e: &ImagenAnonimizada) -> Result<()> {
    let modality = e.modality.clone().or_else(|| e.tipo_imagen.clone()).map(|m| m.to_uppercase());
    let report = report_summary(e);
    tx.prepare_cached(ANONYMIZED)?.execute(params![
        e.image_id,
        e.provider_id,
        e.occurred_at,
        e.tipo_imagen,
        e.region_anatomica,
        modality,
        e.blob_key,
        e.sha256,
        e.size_bytes,
        e.media_type,
        e.study_uid,
        e.series_uid,
        e.sop_instance_uid,
        e.sop_class_uid,
        e.patient_id,
        e.study_date,
        e.series_number,
        e.instance_number,
        e.body_part,
        e.rows,
        e.columns,
        e.frames,
        report.to_string(),
    ])?;
    consent::of_institution(tx, &e.image_id, e.institucion_id.as_deref())
}

fn user(tx: &Connection, e: &UsuarioRegistrado) -> Result<()> {
    tx.prepare_cached(USER)?
        .execute(params![e.user_id, e.role, e.organization, e.occurred_at])?;
    Ok(())
}

fn usage(tx: &Connection, e: &EventoUsoDatos) -> Result<()> {
    tx.prepare_cached(USAGE)?.execute(params![
        e.event_id,
        e.occurred_at,
        e.consumer_id,
        e.provider_id,
        e.image_id,
        e.bytes,
        e.amount_minor,
        e.currency,
        e.charge_key()
    ])?;
    Ok(())
}

fn analyzed(tx: &Connection, e: &AnalisisCompletado) -> Result<()> {
    tx.prepare_cached(ANALYZED)?
        .execute(params![e.imagen_id, e.proveedor_id, e.ocurrido_at, analysis_json(e).to_string()])?;
    Ok(())
}

fn image_row(r: &Row<'_>) -> rusqlite::Result<CatalogImage> {
    let estado: String = r.get(2)?;
    let anonymized_at: Option<i64> = r.get(8)?;
    let anonymized = match anonymized_at {
        None => None,
        Some(at) => {
            let report: Option<String> = r.get(25)?;
            Some(AnonymizedOutput {
                blob_key: r.get(9)?,
                sha256: r.get(10)?,
                size_bytes: r.get(11)?,
                media_type: r.get(12)?,
                study_uid: r.get(13)?,
                series_uid: r.get(14)?,
                sop_instance_uid: r.get(15)?,
                sop_class_uid: r.get(16)?,
                patient_id: r.get(17)?,
                study_date: r.get(18)?,
                series_number: r.get(19)?,
                instance_number: r.get(20)?,
                body_part: r.get(21)?,
                rows: r.get(22)?,
                columns: r.get(23)?,
                frames: r.get(24)?,
                anonymized_at: at,
                report: report.map_or_else(ReportJson::null, ReportJson::from_stored),
            })
        }
    };
    Ok(CatalogImage {
        image_id: r.get(0)?,
        provider_id: r.get(1)?,
        estado: Estado::parse(&estado).unwrap_or(Estado::Registrada),
        created_at: r.get(3)?,
        modality: r.get(4)?,
        tipo_imagen: r.get(5)?,
        region_anatomica: r.get(6)?,
        rejection_reason: r.get(7)?,
        anonymized,
    })
}

fn user_row(r: &Row<'_>) -> rusqlite::Result<CatalogUser> {
    Ok(CatalogUser {
        user_id: r.get(0)?,
        role: r.get(1)?,
        organization: r.get(2)?,
        created_at: r.get(3)?,
    })
}

fn usage_row(r: &Row<'_>) -> rusqlite::Result<(i64, Usage)> {
    Ok((
        r.get(0)?,
        Usage {
            event_id: r.get(1)?,
            occurred_at: r.get(2)?,
            consumer_id: r.get(3)?,
            provider_id: r.get(4)?,
            image_id: r.get(5)?,
            bytes: r.get(6)?,
            amount_minor: r.get(7)?,
            currency: r.get(8)?,
            charge_key: r.get(9)?,
        },
    ))
}

/// The anonymized-DICOM conditions of a QIDO query.
fn dicom_where(q: &DicomQuery) -> Where {
    let mut w = Where::default();
    w.push("estado = 'anonimizada' AND study_uid IS NOT NULL", []);
    w.opt("study_uid = ?", q.study_uid.clone());
    w.opt("series_uid = ?", q.series_uid.clone());
    w.opt("sop_instance_uid = ?", q.sop_instance_uid.clone());
    w.opt("provider_id = ?", q.provider_id.clone());
    w.opt("series_number = ?", q.series_number);
    w.opt("instance_number = ?", q.instance_number);
    w.opt("sop_class_uid = ?", q.sop_class_uid.clone());
    // DICOM wildcard matching (`*`, `?`) is GLOB's; a `[` is matched literally.
    w.opt("patient_id GLOB ?", q.patient_id.as_deref().map(sqlite_glob));
    w.opt("study_date >= ?", q.study_date_from.clone());
    w.opt("study_date <= ?", q.study_date_to.clone());
    if q.offered_only {
        w.push(OFFERED, []);
    }
    w
}

/// [`dicom_where`] plus the query's modality matched per instance (series
/// and instance level; a study matches on any of its modalities instead).
fn dicom_rows_where(q: &DicomQuery) -> Where {
    let mut w = dicom_where(q);
    w.opt("modality = ?", q.modality.as_ref().map(|m| m.to_uppercase()));
    w
}

/// `params` followed by the query's `LIMIT ? OFFSET ?` values.
fn with_limit_offset(mut params: Vec<Value>, q: &DicomQuery) -> Vec<Value> {
    params.push(Value::Integer(i64::try_from(q.limit).unwrap_or(i64::MAX)));
    params.push(Value::Integer(i64::try_from(q.offset).unwrap_or(i64::MAX)));
    params
}

fn apply_one(tx: &Connection, e: &CatalogEvent) -> Result<bool> {
    let new = tx
        .prepare_cached("INSERT OR IGNORE INTO catalog_events (event_id) VALUES (?1)")?
        .execute(params![e.event_id()])?
        == 1;
    if new {
        match e {
            CatalogEvent::Registered(e) => registered(tx, e)?,
            CatalogEvent::Anonymized(e) => anonymized(tx, e)?,
            CatalogEvent::Rejected(e) => rejected(tx, e)?,
            CatalogEvent::User(e) => user(tx, e)?,
            CatalogEvent::Usage(e) => usage(tx, e)?,
            CatalogEvent::Analyzed(e) => analyzed(tx, e)?,
            CatalogEvent::Consent(e) => consent::consent(tx, e)?,
            CatalogEvent::Institution(e) => consent::institution(tx, e)?,
        }
    }
    Ok(new)
}

fn images_page(conn: &Connection, filter: &ImageFilter, after: Option<(i64, String)>, limit: usize) -> Result<ImagePage> {
    let mut w = Where::default();
    w.opt("provider_id = ?", filter.provider_id.clone());
    w.opt("modality = ?", filter.modality.as_ref().map(|m| m.to_uppercase()));
    w.opt("region_anatomica = ?", filter.region_anatomica.clone());
    w.opt("estado = ?", filter.estado.map(|e| e.as_str().to_owned()));
    w.opt("created_at >= ?", filter.created_from);
    w.opt("created_at < ?", filter.created_to);
    if filter.offered_only {
        w.push(OFFERED, []);
    }
    if let Some((at, id)) = after {
        w.push(
            "(created_at < ? OR (created_at = ? AND image_id < ?))",
            [Value::Integer(at), Value::Integer(at), Value::Text(id)],
        );
    }
    let sql = format!(
        "SELECT {IMAGE_COLUMNS} FROM catalog_images {} ORDER BY created_at DESC, image_id DESC LIMIT {}",
        w.sql(),
        limit + 1
    );
    let (images, next) = keyset_page(conn, &sql, w.params, limit, image_row, |i| {
        PageCursor::new(i.created_at, &i.image_id).encode('i')
    })?;
    Ok(ImagePage { images, next })
}

#[async_trait]
impl CatalogStore for SqliteCatalog {
    async fn apply(&self, events: Vec<CatalogEvent>) -> alpes_domain::Result<usize> {
        let images = Arc::clone(&self.images);
        self.conn
            .with(move |conn| {
                let tx = write_tx(conn)?;
                let mut new = 0;
                for e in &events {
                    new += usize::from(apply_one(&tx, e)?);
                }
                tx.commit()?;
                // Before the batch is acknowledged, so a reader after it never sees the old row.
                images.clear();
                Ok(new)
            })
            .await
    }

    async fn image(&self, image_id: &str) -> alpes_domain::Result<Option<Arc<CatalogImage>>> {
        Ok(self.images.get_or_read(image_id, || {
            self.conn
                .read_now(|conn| {
                    let sql = format!("SELECT {IMAGE_COLUMNS} FROM catalog_images WHERE image_id = ?1");
                    Ok(conn.prepare_cached(&sql)?.query_row(params![image_id], image_row).optional()?)
                })
                .map(|image| image.map(Arc::new))
        })?)
    }

    async fn images(&self, filter: &ImageFilter, cursor: Option<&str>, limit: usize) -> alpes_domain::Result<ImagePage> {
        let after = cursor.map(|c| PageCursor::decode('i', c).map(PageCursor::key)).transpose()?;
        let filter = filter.clone();
        self.conn.read(move |conn| images_page(conn, &filter, after, limit)).await
    }

    async fn studies(&self, q: &DicomQuery) -> alpes_domain::Result<Vec<StudySummary>> {
        let q = q.clone();
        self.conn
            .read(move |conn| {
                let w = dicom_where(&q);
                let where_sql = w.sql();
                let mut p = w.params;
                let having = match &q.modality {
                    Some(m) => {
                        p.push(Value::Text(m.to_uppercase()));
                        "HAVING SUM(modality = ?) > 0"
                    }
                    None => "",
                };
                let sql = format!(
                    "SELECT study_uid, MAX(patient_id), MAX(study_date), GROUP_CONCAT(DISTINCT modality),
                            COUNT(DISTINCT series_uid), COUNT(DISTINCT COALESCE(sop_instance_uid, image_id))
                     FROM catalog_images {where_sql} GROUP BY study_uid {having} ORDER BY study_uid LIMIT ? OFFSET ?"
                );
                rows(conn, &sql, with_limit_offset(p, &q), |r| {
                    let modalities: Option<String> = r.get(3)?;
                    let mut modalities: Vec<String> = modalities.map(|m| m.split(',').map(str::to_owned).collect()).unwrap_or_default();
                    modalities.sort();
                    Ok(StudySummary {
                        study_uid: r.get(0)?,
                        patient_id: r.get(1)?,
                        study_date: r.get(2)?,
                        modalities,
                        series: r.get(4)?,
                        instances: r.get(5)?,
                    })
                })
            })
            .await
    }

    async fn series(&self, q: &DicomQuery) -> alpes_domain::Result<Vec<SeriesSummary>> {
        let q = q.clone();
        self.conn
            .read(move |conn| {
                let w = dicom_rows_where(&q);
                let sql = format!(
                    "SELECT study_uid, series_uid, MAX(modality), MIN(series_number),
                            COUNT(DISTINCT COALESCE(sop_instance_uid, image_id))
                     FROM catalog_images {} AND series_uid IS NOT NULL
                     GROUP BY study_uid, series_uid ORDER BY study_uid, series_uid LIMIT ? OFFSET ?",
                    w.sql()
                );
                rows(conn, &sql, with_limit_offset(w.params, &q), |r| {
                    Ok(SeriesSummary {
                        study_uid: r.get(0)?,
                        series_uid: r.get(1)?,
                        modality: r.get(2)?,
                        series_number: r.get(3)?,
                        instances: r.get(4)?,
                    })
                })
            })
            .await
    }

    async fn instances(&self, q: &DicomQuery) -> alpes_domain::Result<Vec<CatalogImage>> {
        let q = q.clone();
        self.conn
            .read(move |conn| {
                let w = dicom_rows_where(&q);
                let sql = format!(
                    "SELECT {IMAGE_COLUMNS} FROM catalog_images {}
                     ORDER BY study_uid, series_uid, instance_number, sop_instance_uid LIMIT ? OFFSET ?",
                    w.sql()
                );
                rows(conn, &sql, with_limit_offset(w.params, &q), image_row)
            })
            .await
    }

    async fn user(&self, user_id: &str) -> alpes_domain::Result<Option<CatalogUser>> {
        Ok(self.conn.read_now(|conn| {
            Ok(conn
                .prepare_cached("SELECT user_id, role, organization, created_at FROM catalog_users WHERE user_id = ?1")?
                .query_row(params![user_id], user_row)
                .optional()?)
        })?)
    }

    async fn users(&self, role: Option<&str>, cursor: Option<&str>, limit: usize) -> alpes_domain::Result<UserPage> {
        let after = cursor.map(|c| PageCursor::decode('u', c).map(PageCursor::key)).transpose()?;
        let role = role.map(str::to_owned);
        self.conn
            .read(move |conn| {
                let mut w = Where::default();
                w.opt("role = ?", role);
                if let Some((at, id)) = after {
                    w.push(
                        "(created_at > ? OR (created_at = ? AND user_id > ?))",
                        [Value::Integer(at), Value::Integer(at), Value::Text(id)],
                    );
                }
                let sql = format!(
                    "SELECT user_id, role, organization, created_at FROM catalog_users {} ORDER BY created_at, user_id LIMIT {}",
                    w.sql(),
                    limit + 1
                );
                let (users, next) = keyset_page(conn, &sql, w.params, limit, user_row, |u| {
                    PageCursor::new(u.created_at, &u.user_id).encode('u')
                })?;
                Ok(UserPage { users, next })
            })
            .await
    }

    async fn used_since(&self, consumer: &str, since: i64) -> alpes_domain::Result<DailyUse> {
        Ok(self.conn.read_now(|conn| {
            Ok(conn
                .prepare_cached("SELECT COUNT(*), COALESCE(SUM(bytes), 0) FROM catalog_usage WHERE consumer_id = ?1 AND occurred_at >= ?2")?
                .query_row(params![consumer, since], |r| {
                    Ok(DailyUse {
                        downloads: r.get(0)?,
                        bytes: r.get(1)?,
                    })
                })?)
        })?)
    }

    async fn analysis(&self, image_id: &str) -> alpes_domain::Result<Option<ImageAnalysis>> {
        Ok(self.conn.read_now(|conn| {
            Ok(conn
                .prepare_cached("SELECT image_id, provider_id, analyzed_at, body FROM catalog_analyses WHERE image_id = ?1")?
                .query_row(params![image_id], |r| {
                    Ok(ImageAnalysis {
                        image_id: r.get(0)?,
                        provider_id: r.get(1)?,
                        analyzed_at: r.get(2)?,
                        body: ReportJson::from_stored(r.get(3)?),
                    })
                })
                .optional()?)
        })?)
    }

    async fn offered(&self, image_id: &str) -> alpes_domain::Result<bool> {
        let image_id = image_id.to_owned();
        self.conn
            .read(move |conn| {
                let sql = format!("SELECT EXISTS (SELECT 1 FROM catalog_images WHERE image_id = ?1 AND {OFFERED})");
                Ok(conn.prepare_cached(&sql)?.query_row(params![image_id], |r| r.get(0))?)
            })
            .await
    }

    async fn institution_panel(&self, institution_id: &str) -> alpes_domain::Result<alpes_domain::panel::InstitutionPanel> {
        let id = institution_id.to_owned();
        self.conn.read(move |conn| consent::institution_panel(conn, &id)).await
    }

    async fn doctor_panel(&self, doctor_id: &str) -> alpes_domain::Result<alpes_domain::panel::DoctorPanel> {
        let id = doctor_id.to_owned();
        self.conn.read(move |conn| consent::doctor_panel(conn, &id)).await
    }

    async fn usage(&self, by: UsageBy<'_>, cursor: Option<&str>, limit: usize) -> alpes_domain::Result<UsagePage> {
        let before = cursor
            .map(|c| c.strip_prefix('s').and_then(|s| s.parse::<i64>().ok()).ok_or(Error::InvalidCursor))
            .transpose()?;
        let (column, key) = match by {
            UsageBy::Image(id) => ("image_id", id.to_owned()),
            UsageBy::Consumer(id) => ("consumer_id", id.to_owned()),
        };
        self.conn
            .read(move |conn| {
                let sql = format!(
                    "SELECT seq, event_id, occurred_at, consumer_id, provider_id, image_id, bytes, amount_minor, currency, charge_key
                     FROM catalog_usage WHERE {column} = ?1 AND seq < ?2 ORDER BY seq DESC LIMIT ?3"
                );
                let params = vec![
                    Value::Text(key),
                    Value::Integer(before.unwrap_or(i64::MAX)),
                    Value::Integer(i64::try_from(limit + 1).unwrap_or(i64::MAX)),
                ];
                let (found, next) = keyset_page(conn, &sql, params, limit, usage_row, |(seq, _)| format!("s{seq}"))?;
                Ok(UsagePage {
                    usage: found.into_iter().map(|(_, u)| u).collect(),
                    next,
                })
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_sqlite_catalog_passes_the_conformance_suite() {
        let store = SqliteCatalog::in_memory().expect("open");
        crate::store::conformance::catalog(&store).await;
    }

    #[tokio::test]
    async fn a_cursor_that_is_not_ours_is_refused() {
        let store = SqliteCatalog::in_memory().expect("open");
        for bad in ["x1.a", "i.a", "inope", "u1.a"] {
            let e = store.images(&ImageFilter::default(), Some(bad), 10).await;
            assert!(matches!(e, Err(alpes_domain::Error::InvalidCursor)), "{bad}");
        }
        assert!(matches!(
            store.usage(UsageBy::Image("a"), Some("q"), 10).await,
            Err(alpes_domain::Error::InvalidCursor)
        ));
    }

    #[tokio::test]
    async fn an_applied_event_is_read_at_once_here_and_within_the_max_age_by_another_process() {
        use crate::store::conformance::{anonymized, registered};
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("alpes.db");
        let here = SqliteCatalog::open(&path, false).expect("open");
        let there = SqliteCatalog::open(&path, false).expect("open");
        here.apply(vec![registered("r1", "img", "p", 1)]).await.expect("apply");
        let estado = |i: Option<Arc<CatalogImage>>| i.expect("image").estado;
        assert_eq!(estado(here.image("img").await.expect("read")), Estado::Registrada);
        assert_eq!(estado(there.image("img").await.expect("read")), Estado::Registrada);
        let instance = ("1.2", "1.2.3", "1.2.3.4", "CT", "PSEUDO-A", "20240101");
        here.apply(vec![anonymized("a1", "img", "p", 2, instance)]).await.expect("apply");
        assert_eq!(
            estado(here.image("img").await.expect("read")),
            Estado::Anonimizada,
            "at once where it was applied"
        );
        tokio::time::sleep(super::super::fresh::MAX_AGE + std::time::Duration::from_millis(50)).await;
        assert_eq!(
            estado(there.image("img").await.expect("read")),
            Estado::Anonimizada,
            "within MAX_AGE elsewhere"
        );
    }
}
