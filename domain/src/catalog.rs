//! The catalog port: the query side's tables, materialized from events.
//!
//! - images by id, by provider (newest first) and by study/series/instance
//!   (what QIDO-RS searches), each with its `estado`;
//! - users by id;
//! - usage by image and by consumer.
//!
//! Every event is applied at most once (its event id is remembered), and an
//! image's `estado` only moves forward: `registrada` → `rechazada` →
//! `anonimizada`. A later re-anonymization replaces the anonymized output; an
//! older one arriving late does not. A rejection after a successful
//! anonymization leaves the image `anonimizada` (its anonymized output still
//! stands).

use crate::Result;
use alpes_schemas::{
    AnalisisCompletado, ConsentimientoCambiado, EventoUsoDatos, ImagenAnonimizada, ImagenRechazada, ImagenRegistrada,
    InstitucionActualizada, UsuarioRegistrado,
};
use async_trait::async_trait;
use serde::Serialize;

/// One event the catalog applies.
#[derive(Debug, Clone)]
pub enum CatalogEvent {
    /// An upload or re-anonymization request.
    Registered(ImagenRegistrada),
    /// An anonymized output.
    Anonymized(Box<ImagenAnonimizada>),
    /// A rejected request.
    Rejected(ImagenRechazada),
    /// A new user.
    User(UsuarioRegistrado),
    /// A download.
    Usage(EventoUsoDatos),
    /// The burned-in text safety net's analysis of an image.
    Analyzed(Box<AnalisisCompletado>),
    /// A patient's consent moved: whether their images are offered ([`crate::consent::offered`]).
    Consent(ConsentimientoCambiado),
    /// An institution's policy for patients it has not registered.
    Institution(InstitucionActualizada),
}

impl CatalogEvent {
    /// The id of the event.
    pub fn event_id(&self) -> &str {
        match self {
            CatalogEvent::Registered(e) => &e.event_id,
            CatalogEvent::Anonymized(e) => &e.event_id,
            CatalogEvent::Rejected(e) => &e.event_id,
            CatalogEvent::User(e) => &e.event_id,
            CatalogEvent::Usage(e) => &e.event_id,
            CatalogEvent::Analyzed(e) => &e.evento_id,
            CatalogEvent::Consent(e) => &e.evento_id,
            CatalogEvent::Institution(e) => &e.evento_id,
        }
    }
}

/// Where an image stands, in the order it can move.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Estado {
    /// Uploaded, not yet processed.
    Registrada,
    /// Its anonymization failed (and none succeeded).
    Rechazada,
    /// An anonymized output exists.
    Anonimizada,
}

impl Estado {
    /// The wire and stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Estado::Registrada => "registrada",
            Estado::Rechazada => "rechazada",
            Estado::Anonimizada => "anonimizada",
        }
    }

    /// Parses a wire or stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "registrada" => Estado::Registrada,
            "rechazada" => Estado::Rechazada,
            "anonimizada" => Estado::Anonimizada,
            _ => return None,
        })
    }
}

/// The anonymized output of an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AnonymizedOutput {
    /// Blob key of the anonymized bytes.
    #[serde(skip)]
    pub blob_key: String,
    /// sha256 of the anonymized bytes.
    pub sha256: String,
    /// Size of the anonymized bytes.
    pub size_bytes: i64,
    /// Media type of the anonymized bytes.
    pub media_type: String,
    /// StudyInstanceUID (DICOM only), already remapped.
    pub study_uid: Option<String>,
    /// SeriesInstanceUID (DICOM only).
    pub series_uid: Option<String>,
    /// SOPInstanceUID (DICOM only).
    pub sop_instance_uid: Option<String>,
    /// SOPClassUID (DICOM only).
    pub sop_class_uid: Option<String>,
    /// The PatientID pseudonym (DICOM only).
    pub patient_id: Option<String>,
    /// StudyDate, DA text (DICOM only).
    pub study_date: Option<String>,
    /// SeriesNumber.
    pub series_number: Option<i32>,
    /// InstanceNumber.
    pub instance_number: Option<i32>,
    /// BodyPartExamined.
    pub body_part: Option<String>,
    /// Rows.
    pub rows: i32,
    /// Columns.
    pub columns: i32,
    /// Frames.
    pub frames: i32,
    /// When it was anonymized (ms since the epoch).
    pub anonymized_at: i64,
    /// The report summary: actions, UIDs remapped, regions burned, profile, engine.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub report: ReportJson,
}

/// One image as the query side sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CatalogImage {
    /// The image id.
    pub image_id: String,
    /// The provider who uploaded it.
    pub provider_id: String,
    /// Where it stands.
    pub estado: Estado,
    /// When it was first registered (ms since the epoch).
    pub created_at: i64,
    /// The DICOM Modality once anonymized, else the provider's `tipo_imagen`.
    pub modality: Option<String>,
    /// The provider's image type label.
    pub tipo_imagen: Option<String>,
    /// The provider's body region label.
    pub region_anatomica: Option<String>,
    /// The anonymized output, once there is one.
    pub anonymized: Option<AnonymizedOutput>,
    /// The reason code of the latest rejection, if any.
    pub rejection_reason: Option<String>,
}

/// Filters of [`CatalogStore::images`]; `None` matches anything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageFilter {
    /// Only this provider's images.
    pub provider_id: Option<String>,
    /// Only this modality (compared upper-case).
    pub modality: Option<String>,
    /// Only this region label.
    pub region_anatomica: Option<String>,
    /// Only images in this state.
    pub estado: Option<Estado>,
    /// Created at or after (ms).
    pub created_from: Option<i64>,
    /// Created before (ms).
    pub created_to: Option<i64>,
    /// Only images a consumer is offered ([`crate::consent::offered`]).
    pub offered_only: bool,
}

/// A page of images, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImagePage {
    /// The images.
    pub images: Vec<CatalogImage>,
    /// The cursor of the next (older) page, if there is one.
    pub next: Option<String>,
}

/// QIDO-RS matching keys; `None` matches anything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DicomQuery {
    /// StudyInstanceUID.
    pub study_uid: Option<String>,
    /// SeriesInstanceUID.
    pub series_uid: Option<String>,
    /// SOPInstanceUID.
    pub sop_instance_uid: Option<String>,
    /// PatientID (the pseudonym).
    pub patient_id: Option<String>,
    /// StudyDate from (inclusive, YYYYMMDD).
    pub study_date_from: Option<String>,
    /// StudyDate to (inclusive, YYYYMMDD).
    pub study_date_to: Option<String>,
    /// Modality (ModalitiesInStudy at study level).
    pub modality: Option<String>,
    /// SeriesNumber (series and instance searches: a study's summary would count only the
    /// instances it picks).
    pub series_number: Option<i32>,
    /// InstanceNumber (instance searches).
    pub instance_number: Option<i32>,
    /// SOPClassUID (instance searches: [`CatalogStore::instances`] only).
    pub sop_class_uid: Option<String>,
    /// Only this provider's instances (a provider searching its own studies): the studies and
    /// series are summarized over them alone.
    pub provider_id: Option<String>,
    /// Only instances a consumer is offered ([`crate::consent::offered`]): the studies and series
    /// are summarized over them alone.
    pub offered_only: bool,
    /// At most this many results.
    pub limit: usize,
    /// Skip this many results first.
    pub offset: usize,
}

/// One study of the anonymized set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StudySummary {
    /// StudyInstanceUID.
    pub study_uid: String,
    /// PatientID pseudonym.
    pub patient_id: Option<String>,
    /// StudyDate.
    pub study_date: Option<String>,
    /// Distinct modalities, sorted.
    pub modalities: Vec<String>,
    /// Number of series.
    pub series: i64,
    /// Number of instances.
    pub instances: i64,
}

/// One series of the anonymized set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SeriesSummary {
    /// StudyInstanceUID.
    pub study_uid: String,
    /// SeriesInstanceUID.
    pub series_uid: String,
    /// Modality.
    pub modality: Option<String>,
    /// SeriesNumber.
    pub series_number: Option<i32>,
    /// Number of instances.
    pub instances: i64,
}

/// A user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CatalogUser {
    /// The user id.
    pub user_id: String,
    /// proveedor, consumidor or admin.
    pub role: String,
    /// The organization, if given.
    pub organization: Option<String>,
    /// When the user was created (ms).
    pub created_at: i64,
}

/// A page of users, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserPage {
    /// The users.
    pub users: Vec<CatalogUser>,
    /// The cursor of the next page, if there is one.
    pub next: Option<String>,
}

/// One download.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// The usage event id.
    pub event_id: String,
    /// When it happened (ms).
    pub occurred_at: i64,
    /// The consumer billed.
    pub consumer_id: String,
    /// The provider credited.
    pub provider_id: String,
    /// The image.
    pub image_id: String,
    /// Bytes served.
    pub bytes: i64,
    /// Price, minor units.
    pub amount_minor: i64,
    /// ISO 4217 code.
    pub currency: String,
    /// The charge key (one charge per key).
    pub charge_key: String,
}

/// Whose usage to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageBy<'a> {
    /// Every download of one image.
    Image(&'a str),
    /// Every download by one consumer.
    Consumer(&'a str),
}

/// A page of usage, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsagePage {
    /// The downloads.
    pub usage: Vec<Usage>,
    /// The cursor of the next (older) page, if there is one.
    pub next: Option<String>,
}

/// The report summary as JSON text: read from a store and written into an
/// answer as it is, never parsed into a tree on the read path.
#[derive(Debug, Clone)]
pub struct ReportJson(Box<serde_json::value::RawValue>);

impl ReportJson {
    /// The summary `v`.
    pub fn of(v: &serde_json::Value) -> ReportJson {
        ReportJson(serde_json::value::to_raw_value(v).unwrap_or_else(|_| ReportJson::null().0))
    }

    /// Stored JSON text; `null` if it is not JSON.
    pub fn from_stored(text: String) -> ReportJson {
        serde_json::value::RawValue::from_string(text).map_or_else(|_| ReportJson::null(), ReportJson)
    }

    /// JSON `null`: no summary.
    pub fn null() -> ReportJson {
        // `Box<RawValue>`'s default is JSON `null`.
        ReportJson(Box::default())
    }

    /// The JSON text.
    pub fn as_str(&self) -> &str {
        self.0.get()
    }

    /// The summary parsed (for tests and tools; the read path never needs it).
    pub fn value(&self) -> serde_json::Value {
        serde_json::from_str(self.0.get()).unwrap_or(serde_json::Value::Null)
    }
}

impl PartialEq for ReportJson {
    fn eq(&self, other: &ReportJson) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for ReportJson {}

impl Serialize for ReportJson {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

/// The de-identification report summary of an anonymized output, as
/// [`AnonymizedOutput::report`] holds it: actions, UIDs remapped, regions
/// burned (and by source), transfer syntaxes, profile, engine, timing, the input's sha256
/// and the IOD the attributes were judged against.
pub fn report_summary(e: &ImagenAnonimizada) -> serde_json::Value {
    serde_json::json!({
        "actions": e.action_counts,
        "uids_remapped": e.uids_remapped,
        "regions_burned": e.regions_burned,
        "transfer_syntax_in": e.transfer_syntax_in,
        "transfer_syntax_out": e.transfer_syntax_out,
        "profile": e.profile,
        "engine_version": e.engine_version,
        "duration_micros": e.duration_micros,
        "request_id": e.request_id,
        "sha256_entrada": e.sha256_entrada,
        "regiones_por_origen": e.regiones_por_origen,
        "iod": e.iod,
        "conservados_por_iod": e.conservados_por_iod,
    })
}

/// The latest analysis of an image by the burned-in text safety net. A re-anonymization is
/// analysed again; the newest analysis stands, as the newest output does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageAnalysis {
    /// The image.
    pub image_id: String,
    /// Its provider.
    pub provider_id: String,
    /// When it was analysed (ms since the epoch).
    pub analyzed_at: i64,
    /// The analysis as served ([`analysis_json`]).
    pub body: ReportJson,
}

/// The analysis as `GET /imagenes/{id}/analisis` serves it: the event's fields but its id, actor
/// and HTTP request id, plus `analizada_at`.
pub fn analysis_json(e: &AnalisisCompletado) -> serde_json::Value {
    serde_json::json!({
        "imagen_id": e.imagen_id,
        "solicitud_id": e.solicitud_id,
        "etiqueta": e.etiqueta,
        "confianza": e.confianza,
        "modo": e.modo,
        "candidatos": e.candidatos,
        "regiones_encontradas": e.regiones_encontradas,
        "regiones_blanqueadas": e.regiones_blanqueadas,
        "area_blanqueada": e.area_blanqueada,
        "lineas_residuales": e.lineas_residuales,
        "liberada": e.liberada,
        "motivo": e.motivo,
        "modelo": e.modelo,
        "version_motor": e.version_motor,
        "duracion_micros": e.duracion_micros,
        "analizada_at": e.ocurrido_at,
    })
}

/// The catalog store.
#[async_trait]
pub trait CatalogStore: Send + Sync + std::fmt::Debug {
    /// Applies `events` in order, atomically; returns how many were new
    /// (an event id already applied changes nothing).
    async fn apply(&self, events: Vec<CatalogEvent>) -> Result<usize>;
    /// One image; shared, as the read path serves it (a cached image is not copied per request).
    async fn image(&self, image_id: &str) -> Result<Option<std::sync::Arc<CatalogImage>>>;
    /// A page of images matching `filter`, newest first, after `cursor`.
    async fn images(&self, filter: &ImageFilter, cursor: Option<&str>, limit: usize) -> Result<ImagePage>;
    /// Studies of the anonymized DICOM set matching `q`, by StudyInstanceUID.
    async fn studies(&self, q: &DicomQuery) -> Result<Vec<StudySummary>>;
    /// Series of the anonymized DICOM set matching `q` (its `study_uid` set), by SeriesInstanceUID.
    async fn series(&self, q: &DicomQuery) -> Result<Vec<SeriesSummary>>;
    /// Anonymized DICOM instances matching `q`, by series then InstanceNumber.
    async fn instances(&self, q: &DicomQuery) -> Result<Vec<CatalogImage>>;
    /// One user.
    async fn user(&self, user_id: &str) -> Result<Option<CatalogUser>>;
    /// A page of users (optionally of one role), oldest first, after `cursor`.
    async fn users(&self, role: Option<&str>, cursor: Option<&str>, limit: usize) -> Result<UserPage>;
    /// A page of downloads, newest first, after `cursor`.
    async fn usage(&self, by: UsageBy<'_>, cursor: Option<&str>, limit: usize) -> Result<UsagePage>;
    /// How many downloads `consumer` made at or after `since` (ms), and their bytes.
    async fn used_since(&self, consumer: &str, since: i64) -> Result<crate::ledger::DailyUse>;
    /// The latest analysis of an image, if it was analysed.
    async fn analysis(&self, image_id: &str) -> Result<Option<ImageAnalysis>>;
    /// Whether a consumer is offered the image now ([`crate::consent::offered`], from the
    /// consent and institution events applied so far); false for an unknown image.
    async fn offered(&self, image_id: &str) -> Result<bool>;
    /// An institution's dashboard.
    async fn institution_panel(&self, institution_id: &str) -> Result<crate::panel::InstitutionPanel>;
    /// A doctor's dashboard.
    async fn doctor_panel(&self, doctor_id: &str) -> Result<crate::panel::DoctorPanel>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_is_kept_as_stored_and_anything_but_json_is_null() {
        let stored = r#"{"uids_remapped":3}"#;
        let r = ReportJson::from_stored(stored.to_owned());
        assert_eq!((r.as_str(), r.value()["uids_remapped"].as_i64()), (stored, Some(3)));
        assert_eq!(serde_json::to_string(&r).expect("serialize"), stored, "served as stored");
        assert_eq!(ReportJson::from_stored("not json".to_owned()).as_str(), "null");
        assert_eq!(ReportJson::null().as_str(), "null");
        assert_eq!(ReportJson::of(&serde_json::json!({"a": 1})).as_str(), r#"{"a":1}"#);
    }
}
