//! The Rust side of the event contracts: one type per Avro record in `avro/`, with the same
//! field names, and the [`Event`] trait tying each type to its schema and topic.
//!
//! Field docs live in the `.avsc` files (the contract); the types only mirror them, under the
//! names every version has: a renamed field's old name ([`crate::renamed`]). An
//! `Option<T>` is a `["null", T]` union with default null. Times are epoch milliseconds and
//! money is an integer of minor units plus an ISO 4217 currency: no floats anywhere.

use std::collections::BTreeMap;

use apache_avro::Schema;
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::{catalog, topics};

/// An event with an Avro schema and a home topic.
pub trait Event: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The Avro record name, e.g. `"ImagenRegistrada"` (namespace [`crate::NAMESPACE`]).
    const NAME: &'static str;
    /// The Kafka topic the event is produced to, e.g. `"alpes.images.registered"`.
    const TOPIC: &'static str;
    /// The current (writer and reader) schema, parsed once.
    fn schema() -> &'static Schema;
    /// The unique id of this event, for deduplication.
    fn event_id(&self) -> &str;
}

/// The de-identification profile requested for, or applied to, an image.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    /// PS3.15 Retain options, by name (e.g. `"uids"`, `"device-identity"`).
    pub retain: Vec<String>,
    /// Extra pixel regions to burn, each `"x,y,w,h"`.
    pub regions: Vec<String>,
    /// Name of the rule library that finds burned-in text; `None` for the default.
    pub rules: Option<String>,
    /// Clean options switched off, by name (e.g. `"graphics"`); empty for every Clean option.
    #[serde(default)]
    pub no_clean: Vec<String>,
    /// The burned-in text safety net's mode (`"off"`, `"all-text"`, `"phi"`); `None` for the
    /// engine's default (`all-text`), and on records written before it existed.
    #[serde(default)]
    pub ocr: Option<String>,
}

/// An image was uploaded and its raw blob stored (topic `alpes.images.registered`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImagenRegistrada {
    pub event_id: String,
    pub occurred_at: i64,
    pub actor: String,
    pub image_id: String,
    pub provider_id: String,
    /// `"raw/<sha256 hex>"`.
    pub blob_key: String,
    pub sha256: String,
    pub size_bytes: i64,
    /// `"application/dicom"`, `"image/png"` or `"image/jpeg"`.
    pub media_type: String,
    pub profile: Profile,
    /// `"rest"`, `"multipart"`, `"stow"`, `"reanonymize"` or `"republish"`.
    pub source: String,
    pub request_id: String,
    pub tipo_imagen: Option<String>,
    pub region_anatomica: Option<String>,
    /// The `X-Request-Id` of the request that caused it; `None` otherwise and on old events.
    pub http_request_id: Option<String>,
    /// The provider's institution; `None` for a provider of none, and on records before v6.
    #[serde(default)]
    pub institucion_id: Option<String>,
}

/// An image was de-identified and the anonymized blob written (topic `alpes.images.anonymized`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImagenAnonimizada {
    pub event_id: String,
    pub occurred_at: i64,
    pub actor: String,
    pub image_id: String,
    pub provider_id: String,
    pub request_id: String,
    /// `"anonymized/<sha256 hex>"`.
    pub blob_key: String,
    pub sha256: String,
    pub size_bytes: i64,
    pub media_type: String,
    pub study_uid: Option<String>,
    pub series_uid: Option<String>,
    pub sop_instance_uid: Option<String>,
    pub modality: Option<String>,
    pub rows: i32,
    pub columns: i32,
    pub frames: i32,
    /// Attributes handled, by engine action name. Ordered, so the encoding is deterministic.
    pub action_counts: BTreeMap<String, i64>,
    pub uids_remapped: i64,
    pub transfer_syntax_in: Option<String>,
    pub transfer_syntax_out: Option<String>,
    pub profile: Profile,
    pub engine_version: String,
    pub duration_micros: i64,
    pub body_part: Option<String>,
    pub regions_burned: i32,
    pub tipo_imagen: Option<String>,
    pub region_anatomica: Option<String>,
    /// The keyed pseudonym that replaced PatientID.
    pub patient_id: Option<String>,
    /// StudyDate after de-identification (DA text).
    pub study_date: Option<String>,
    pub sop_class_uid: Option<String>,
    pub series_number: Option<i32>,
    pub instance_number: Option<i32>,
    /// The `X-Request-Id` of the upload that asked for it; `None` when unknown and on old events.
    pub http_request_id: Option<String>,
    /// sha256 of the input (v7); `None` on older events.
    pub sha256_entrada: Option<String>,
    /// Regions burned by source (`rule`, `ultrasound`, `profile`, `ocr`; v7); `None` on older events.
    pub regiones_por_origen: Option<BTreeMap<String, i32>>,
    /// The PS3.3 IOD the attributes were judged against (v8); `None` when the tables lack
    /// the SOP class, for non-DICOM outputs and on older events.
    pub iod: Option<String>,
    /// Required attributes emptied or dummied instead of removed (v8); `None` on older events.
    pub conservados_por_iod: Option<i64>,
    /// The institution the image is of, from its `ImagenRegistrada` (v9); `None` for a provider
    /// of none and on older events.
    #[serde(default)]
    pub institucion_id: Option<String>,
}

/// An input could not be anonymized and was routed aside (topic `alpes.images.rejected`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImagenRechazada {
    pub event_id: String,
    pub occurred_at: i64,
    pub actor: String,
    pub image_id: Option<String>,
    pub provider_id: Option<String>,
    pub request_id: Option<String>,
    /// A code such as `"not_avro"` or `"unreadable_dicom"`; see the schema.
    pub reason: String,
    /// Fixed text, codes and ids only: never PHI, never input bytes.
    pub message: String,
    pub source_topic: Option<String>,
    pub source_partition: Option<i32>,
    pub source_offset: Option<i64>,
    /// The `X-Request-Id` of the upload that asked for it; `None` when unknown and on old events.
    pub http_request_id: Option<String>,
}

/// A user account was created (topic `alpes.users`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsuarioRegistrado {
    pub event_id: String,
    pub occurred_at: i64,
    pub actor: String,
    pub user_id: String,
    /// `"proveedor"`, `"consumidor"` or `"admin"`.
    pub role: String,
    pub organization: Option<String>,
    /// The `X-Request-Id` of the request that caused it; `None` otherwise and on old events.
    pub http_request_id: Option<String>,
}

/// A login attempt, for the audit trail (topic `alpes.audit`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntentoLogin {
    pub event_id: String,
    pub occurred_at: i64,
    pub actor: String,
    pub user_id: String,
    pub success: bool,
    pub reason: Option<String>,
    /// The `X-Request-Id` of the request that caused it; `None` otherwise and on old events.
    pub http_request_id: Option<String>,
}

/// A consumer downloaded an anonymized image: billed and credited (topic `alpes.usage`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventoUsoDatos {
    pub event_id: String,
    pub occurred_at: i64,
    pub actor: String,
    pub consumer_id: String,
    pub provider_id: String,
    pub image_id: String,
    pub bytes: i64,
    /// Minor units (cents) of `currency`.
    pub amount_minor: i64,
    /// ISO 4217 code.
    pub currency: String,
    /// Retrievals sharing a key are charged once; `None` on old events (the event id is the key).
    pub dedupe_key: Option<String>,
    /// The `X-Request-Id` of the request that caused it; `None` otherwise and on old events.
    pub http_request_id: Option<String>,
}

impl EventoUsoDatos {
    /// The key billing charges once: the dedupe key, or the event id on events without one.
    pub fn charge_key(&self) -> &str {
        self.dedupe_key.as_deref().unwrap_or(&self.event_id)
    }
}

/// A payment was processed (topic `alpes.payments`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PagoProcesado {
    pub event_id: String,
    pub occurred_at: i64,
    pub actor: String,
    pub user_id: String,
    /// Minor units (cents) of `currency`.
    pub amount_minor: i64,
    /// ISO 4217 code.
    pub currency: String,
    pub reference: String,
    /// The `X-Request-Id` of the request that caused it; `None` otherwise and on old events.
    pub http_request_id: Option<String>,
}

/// A payment was refused and moved nothing (topic `alpes.payments.rejected`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PagoRechazado {
    pub event_id: String,
    pub occurred_at: i64,
    pub actor: String,
    /// The refused `PagoProcesado`; `None` when ingest refused the request itself.
    pub payment_event_id: Option<String>,
    pub user_id: String,
    /// Minor units (cents) of `currency`.
    pub amount_minor: i64,
    /// ISO 4217 code.
    pub currency: String,
    pub reference: String,
    /// `insufficient_balance`, `repeated_reference` or `invalid_amount`.
    pub reason: String,
    /// The pending balance when refused for it, minor units.
    pub pending_minor: Option<i64>,
    /// The `X-Request-Id` of the request that caused it; `None` otherwise and on old events.
    pub http_request_id: Option<String>,
}

/// One entry of the audit trail (topic `alpes.audit`, beside `IntentoLogin`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistroAuditoria {
    pub event_id: String,
    pub occurred_at: i64,
    /// A user id, `"anonymous"`, or a service name.
    pub actor: String,
    pub actor_role: Option<String>,
    /// A code: `"upload"`, `"download"`, `"payment"`, `"api_key_create"`, ...
    pub action: String,
    pub target: Option<String>,
    /// `"GET /imagenes/{id}/anonimizada"`; `None` for automated steps.
    pub route: Option<String>,
    /// `"ok"`, `"denied"` or `"error"`.
    pub outcome: String,
    pub status: Option<i32>,
    pub reason: Option<String>,
    pub request_id: Option<String>,
    pub service: String,
}

/// The model that analysed an image (`AnalisisCompletado.modelo`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModeloAnalisis {
    pub nombre: String,
    pub version: String,
    pub idioma: String,
    pub datos_sha256: Option<String>,
}

/// The burned-in text safety net analysed an image (topic `alpes.images.analyzed`). A newer
/// record than the others: its fields have the API's names from its first version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnalisisCompletado {
    pub evento_id: String,
    pub ocurrido_at: i64,
    pub actor: String,
    pub imagen_id: String,
    pub proveedor_id: String,
    pub solicitud_id: String,
    /// `"texto_incrustado"`, `"sin_texto"` or `"no_analizada"`.
    pub etiqueta: String,
    /// 0–100.
    pub confianza: i32,
    /// `"all-text"` or `"phi"`.
    pub modo: String,
    pub candidatos: i32,
    pub regiones_encontradas: i32,
    pub regiones_blanqueadas: i32,
    pub area_blanqueada: i64,
    pub lineas_residuales: i32,
    pub liberada: bool,
    /// `"texto_residual"`, or why the pixels were not analysed.
    pub motivo: Option<String>,
    pub modelo: ModeloAnalisis,
    pub version_motor: String,
    pub duracion_micros: i64,
    pub solicitud_http_id: Option<String>,
}

/// A study sent over DICOM is complete: no new instance for its stable time (topic
/// `alpes.studies.complete`). Names the images, never the study's DICOM identifiers as sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EstudioCompleto {
    pub evento_id: String,
    pub ocurrido_at: i64,
    pub actor: String,
    pub proveedor_id: String,
    pub titulo_ae: String,
    pub instancias: i32,
    pub imagenes: Vec<String>,
    pub imagenes_completas: bool,
    pub primera_at: i64,
    pub ultima_at: i64,
    pub estable_ms: i64,
}

/// An import job was asked for (topic `alpes.imports.requested`, keyed by job id): the importer
/// runs it. Names the job, never its source or credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportacionSolicitada {
    pub evento_id: String,
    pub ocurrido_at: i64,
    pub actor: String,
    pub importacion_id: String,
    pub proveedor_id: String,
    pub tipo: String,
    pub urls: Option<i32>,
    pub solicitud_http_id: Option<String>,
}

/// A patient's consent moved (topic `alpes.consent`, keyed by patient id). No PHI: ids and the
/// pseudonymous PatientID only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentimientoCambiado {
    pub evento_id: String,
    pub ocurrido_at: i64,
    pub actor: String,
    pub paciente_id: String,
    pub institucion_id: String,
    pub medico_id: String,
    pub sujeto: String,
    pub estado_anterior: Option<String>,
    pub estado: String,
    pub paso: String,
    pub eliminado: bool,
    pub solicitud_http_id: Option<String>,
}

/// An institution was created, changed or deleted (topic `alpes.institutions`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstitucionActualizada {
    pub evento_id: String,
    pub ocurrido_at: i64,
    pub actor: String,
    pub institucion_id: String,
    pub tipo: String,
    pub politica: String,
    pub verificacion: String,
    pub eliminada: bool,
    pub solicitud_http_id: Option<String>,
}

/// A notification given up after its last try (the dead-letter topic `alpes.notifications.dead`).
/// Never an address, a URL or a body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificacionFallida {
    pub evento_id: String,
    pub ocurrido_at: i64,
    pub actor: String,
    pub notificacion_id: String,
    pub evento_origen_id: String,
    pub tipo_evento: String,
    pub canal: String,
    pub plantilla: String,
    pub motivo: String,
    pub intentos: i32,
}

macro_rules! event {
    ($ty:ident, $topic:expr, $id:ident) => {
        impl Event for $ty {
            const NAME: &'static str = stringify!($ty);
            const TOPIC: &'static str = $topic;

            fn schema() -> &'static Schema {
                &catalog::current(Self::NAME)
                    .unwrap_or_else(|| panic!("avro/{}.avsc is embedded", Self::NAME))
                    .schema
            }

            fn event_id(&self) -> &str {
                &self.$id
            }
        }
    };
}

/// Implements [`Event`] for each type on its topic (its id in the field named after `;`), and
/// lists them all in [`EVENTS`].
macro_rules! events {
    ($($ty:ident => $topic:expr; $id:ident),+ $(,)?) => {
        $(event!($ty, $topic, $id);)+

        /// `(record name, topic)` of every event of this crate.
        #[cfg(feature = "codec")]
        pub(crate) const EVENTS: &[(&str, &str)] = &[$((stringify!($ty), $topic)),+];
    };
}

events! {
    ImagenRegistrada => topics::IMAGES_REGISTERED; event_id,
    ImagenAnonimizada => topics::IMAGES_ANONYMIZED; event_id,
    ImagenRechazada => topics::IMAGES_REJECTED; event_id,
    UsuarioRegistrado => topics::USERS; event_id,
    IntentoLogin => topics::AUDIT; event_id,
    RegistroAuditoria => topics::AUDIT; event_id,
    EventoUsoDatos => topics::USAGE; event_id,
    PagoProcesado => topics::PAYMENTS; event_id,
    PagoRechazado => topics::PAYMENTS_REJECTED; event_id,
    AnalisisCompletado => topics::IMAGES_ANALYZED; evento_id,
    EstudioCompleto => topics::STUDIES_COMPLETE; evento_id,
    ImportacionSolicitada => topics::IMPORTS_REQUESTED; evento_id,
    ConsentimientoCambiado => topics::CONSENT; evento_id,
    InstitucionActualizada => topics::INSTITUTIONS; evento_id,
    NotificacionFallida => topics::NOTIFICATIONS_DEAD; evento_id,
}

/// Whether `topic` carries more than one event type of this crate (`alpes.audit` does).
#[cfg(feature = "codec")]
pub(crate) fn shared_topic(topic: &str) -> bool {
    EVENTS.iter().filter(|(_, t)| *t == topic).count() > 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_names(schema: &Schema) -> Vec<String> {
        match schema {
            Schema::Record(record) => record.fields.iter().map(|f| f.name.clone()).collect(),
            other => panic!("not a record: {other:?}"),
        }
    }

    fn assert_fields_match<E: Event>(sample: &E) {
        let value = serde_json::to_value(crate::renamed::Doubled(sample)).expect("serializes");
        let mut names: Vec<String> = value.as_object().expect("a struct").keys().cloned().collect();
        names.sort();
        let mut avro = field_names(E::schema());
        avro.sort();
        assert_eq!(names, avro, "{}", E::NAME);
    }

    #[test]
    fn every_type_has_exactly_the_fields_of_its_schema() {
        let t = crate::tests::samples();
        assert_fields_match(&t.registrada);
        assert_fields_match(&t.anonimizada);
        assert_fields_match(&t.rechazada);
        assert_fields_match(&t.usuario);
        assert_fields_match(&t.login);
        assert_fields_match(&t.uso);
        assert_fields_match(&t.pago);
        assert_fields_match(&t.pago_rechazado);
        assert_fields_match(&t.auditoria);
        assert_fields_match(&t.analisis);
        assert_fields_match(&t.estudio);
        assert_fields_match(&t.importacion);
        assert_fields_match(&t.consentimiento);
        assert_fields_match(&t.institucion);
        assert_fields_match(&t.notificacion);
    }

    #[test]
    fn every_event_names_its_schema_and_topic() {
        assert_eq!(ImagenRegistrada::NAME, "ImagenRegistrada");
        assert_eq!(ImagenRegistrada::TOPIC, "alpes.images.registered");
        assert_eq!(PagoProcesado::TOPIC, "alpes.payments");
        let names = [
            ImagenRegistrada::schema(),
            ImagenAnonimizada::schema(),
            ImagenRechazada::schema(),
            UsuarioRegistrado::schema(),
            IntentoLogin::schema(),
            EventoUsoDatos::schema(),
            PagoProcesado::schema(),
            PagoRechazado::schema(),
        ]
        .map(|s| s.name().map(|n| n.name().to_owned()));
        let expected = [
            ImagenRegistrada::NAME,
            ImagenAnonimizada::NAME,
            ImagenRechazada::NAME,
            UsuarioRegistrado::NAME,
            IntentoLogin::NAME,
            EventoUsoDatos::NAME,
            PagoProcesado::NAME,
            PagoRechazado::NAME,
        ]
        .map(|n| Some(n.to_owned()));
        assert_eq!(names, expected);
    }
}
