//! The query routes' JSON in the API's one vocabulary (README, "API
//! vocabulary"): Spanish names for resources and fields, `id` for a
//! resource's own id and `<recurso>_id` for another's, the unit suffixes
//! `_minor` (minor units of `moneda`), `_at` (ms since the epoch) and
//! `_bytes` kept as they are, and DICOM attributes under their DICOM names
//! (`study_uid`, `rows`, ...).
//!
//! Until [`DEPRECATED_UNTIL`] every answer also carries the names it had
//! before, with the same values, so a client written against them keeps
//! working; the OpenAPI document marks them `deprecated`. The domain types
//! keep their Rust names: this module is the only place that names the
//! fields on the wire.

use alpes_domain::caller::Role;
use alpes_domain::catalog::{AnonymizedOutput, CatalogImage, CatalogUser, Estado, ReportJson};
use alpes_domain::ledger::{Balance, EntryKind, LedgerEntry};
use alpes_platform::openapi::{deprecated_of, image_media_types, marked_deprecated, string_enum};
use alpes_schemas::RegistroAuditoria;
use serde::Serialize;
use utoipa::openapi::schema::Object;
use utoipa::ToSchema;

pub use alpes_platform::openapi::DEPRECATED_UNTIL;

/// An image (`GET /imagenes`, and the body of `GET /imagenes/{id}`).
#[derive(Debug, Serialize, ToSchema)]
pub struct Imagen<'a> {
    id: &'a str,
    proveedor_id: &'a str,
    estado: Estado,
    /// When it was first registered.
    creada_at: i64,
    /// The DICOM Modality once anonymized, else the provider's `tipo_imagen`.
    modalidad: Option<&'a str>,
    tipo_imagen: Option<&'a str>,
    region_anatomica: Option<&'a str>,
    anonimizada: Option<Anonimizada<'a>>,
    /// The reason code of the latest rejection.
    motivo_rechazo: Option<&'a str>,
    // Deprecated names.
    #[schema(deprecated)]
    image_id: &'a str,
    #[schema(deprecated)]
    provider_id: &'a str,
    #[schema(deprecated)]
    created_at: i64,
    #[schema(deprecated)]
    modality: Option<&'a str>,
    #[schema(schema_with = deprecated_of::<Option<AnonymizedOutput>>)]
    anonymized: Option<&'a AnonymizedOutput>,
    #[schema(deprecated)]
    rejection_reason: Option<&'a str>,
}

impl<'a> From<&'a CatalogImage> for Imagen<'a> {
    fn from(i: &'a CatalogImage) -> Self {
        Imagen {
            id: &i.image_id,
            proveedor_id: &i.provider_id,
            estado: i.estado,
            creada_at: i.created_at,
            modalidad: i.modality.as_deref(),
            tipo_imagen: i.tipo_imagen.as_deref(),
            region_anatomica: i.region_anatomica.as_deref(),
            anonimizada: i.anonymized.as_ref().map(Anonimizada::from),
            motivo_rechazo: i.rejection_reason.as_deref(),
            image_id: &i.image_id,
            provider_id: &i.provider_id,
            created_at: i.created_at,
            modality: i.modality.as_deref(),
            anonymized: i.anonymized.as_ref(),
            rejection_reason: i.rejection_reason.as_deref(),
        }
    }
}

/// An image's anonymized output (`anonimizada`); the deprecated `anonymized`
/// is [`AnonymizedOutput`] as it was.
#[derive(Debug, Serialize, ToSchema)]
pub struct Anonimizada<'a> {
    #[schema(pattern = "^[0-9a-f]{64}$")]
    sha256: &'a str,
    tamano_bytes: i64,
    #[schema(schema_with = image_media_types)]
    tipo_medio: &'a str,
    study_uid: Option<&'a str>,
    series_uid: Option<&'a str>,
    sop_instance_uid: Option<&'a str>,
    sop_class_uid: Option<&'a str>,
    patient_id: Option<&'a str>,
    study_date: Option<&'a str>,
    series_number: Option<i32>,
    instance_number: Option<i32>,
    body_part: Option<&'a str>,
    rows: i32,
    columns: i32,
    frames: i32,
    anonimizada_at: i64,
    /// The de-identification report summary: actions, UIDs remapped, regions burned,
    /// transfer syntaxes, profile, engine, timing.
    #[schema(value_type = Object)]
    informe: &'a ReportJson,
}

impl<'a> From<&'a AnonymizedOutput> for Anonimizada<'a> {
    fn from(a: &'a AnonymizedOutput) -> Self {
        Anonimizada {
            sha256: &a.sha256,
            tamano_bytes: a.size_bytes,
            tipo_medio: &a.media_type,
            study_uid: a.study_uid.as_deref(),
            series_uid: a.series_uid.as_deref(),
            sop_instance_uid: a.sop_instance_uid.as_deref(),
            sop_class_uid: a.sop_class_uid.as_deref(),
            patient_id: a.patient_id.as_deref(),
            study_date: a.study_date.as_deref(),
            series_number: a.series_number,
            instance_number: a.instance_number,
            body_part: a.body_part.as_deref(),
            rows: a.rows,
            columns: a.columns,
            frames: a.frames,
            anonimizada_at: a.anonymized_at,
            informe: &a.report,
        }
    }
}

/// A user (`GET /usuarios`, and the body of `GET /usuarios/{id}`).
#[derive(Debug, Serialize, ToSchema)]
pub struct Usuario<'a> {
    id: &'a str,
    /// The account's display name; null when the account is not in this
    /// process's identity store.
    nombre: Option<&'a str>,
    #[schema(value_type = Role)]
    rol: &'a str,
    organizacion: Option<&'a str>,
    creado_at: i64,
    // Deprecated names.
    #[schema(deprecated)]
    user_id: &'a str,
    #[schema(schema_with = deprecated_of::<Role>)]
    role: &'a str,
    #[schema(deprecated)]
    organization: Option<&'a str>,
    #[schema(deprecated)]
    created_at: i64,
}

impl<'a> Usuario<'a> {
    /// `user`, named `nombre`.
    pub fn new(user: &'a CatalogUser, nombre: Option<&'a str>) -> Self {
        Usuario {
            id: &user.user_id,
            nombre,
            rol: &user.role,
            organizacion: user.organization.as_deref(),
            creado_at: user.created_at,
            user_id: &user.user_id,
            role: &user.role,
            organization: user.organization.as_deref(),
            created_at: user.created_at,
        }
    }
}

/// A user's balance in one currency (`saldos` of `GET /monetizacion/saldo/{usuario_id}`).
#[derive(Debug, Serialize, ToSchema)]
pub struct SaldoMoneda<'a> {
    usuario_id: &'a str,
    moneda: &'a str,
    /// Everything credited for usage.
    devengado_minor: i64,
    /// Everything paid out.
    pagado_minor: i64,
    /// Devengado minus pagado: what Alpes owes.
    pendiente_minor: i64,
    /// Usages credited.
    usos: i64,
    /// Everything charged for the user's own downloads (a consumer's).
    cargado_minor: i64,
    /// Downloads charged.
    cargos: i64,
    /// The latest event time applied.
    actualizado_at: i64,
    // Deprecated names.
    #[schema(deprecated)]
    user_id: &'a str,
    #[schema(deprecated)]
    currency: &'a str,
    #[schema(deprecated)]
    accrued_minor: i64,
    #[schema(deprecated)]
    paid_minor: i64,
    #[schema(deprecated)]
    pending_minor: i64,
    #[schema(deprecated)]
    uses: i64,
    #[schema(deprecated)]
    as_of: i64,
}

impl<'a> From<&'a Balance> for SaldoMoneda<'a> {
    fn from(b: &'a Balance) -> Self {
        SaldoMoneda {
            usuario_id: &b.user_id,
            moneda: &b.currency,
            devengado_minor: b.accrued_minor,
            pagado_minor: b.paid_minor,
            pendiente_minor: b.pending_minor,
            usos: b.uses,
            cargado_minor: b.charged_minor,
            cargos: b.charges,
            actualizado_at: b.as_of,
            user_id: &b.user_id,
            currency: &b.currency,
            accrued_minor: b.accrued_minor,
            paid_minor: b.paid_minor,
            pending_minor: b.pending_minor,
            uses: b.uses,
            as_of: b.as_of,
        }
    }
}

/// The Spanish names of [`tipo`].
fn tipos() -> Object {
    string_enum(&["uso", "pago", "pago_rechazado", "cargo"])
}

/// What became of an audited action.
pub(crate) fn resultados() -> Object {
    string_enum(&["ok", "denied", "error"])
}

/// [`resultados`] under the name they replaced.
fn old_resultados() -> Object {
    marked_deprecated(resultados())
}

/// What moved a balance: `uso`, `pago`, `pago_rechazado` or `cargo` (a consumer's download;
/// the deprecated `kind` says `usage`, `payment`, `refused_payment` or `charge`).
pub fn tipo(kind: EntryKind) -> &'static str {
    match kind {
        EntryKind::Usage => "uso",
        EntryKind::Payment => "pago",
        EntryKind::RefusedPayment => "pago_rechazado",
        EntryKind::Charge => "cargo",
    }
}

/// One movement of a provider's or a consumer's ledger (`GET /monetizacion/movimientos/{usuario_id}`).
#[derive(Debug, Serialize, ToSchema)]
pub struct Movimiento<'a> {
    /// The event that caused it (its idempotency key).
    evento_id: &'a str,
    usuario_id: &'a str,
    #[schema(schema_with = tipos)]
    tipo: &'static str,
    /// Always positive; `tipo` gives the direction.
    importe_minor: i64,
    moneda: &'a str,
    ocurrido_at: i64,
    /// A usage's or a charge's image.
    imagen_id: Option<&'a str>,
    /// A usage's consumer billed; a charge's provider credited; a payment's reference.
    contraparte: Option<&'a str>,
    // Deprecated names.
    #[schema(deprecated)]
    event_id: &'a str,
    #[schema(deprecated)]
    user_id: &'a str,
    #[schema(schema_with = deprecated_of::<EntryKind>)]
    kind: EntryKind,
    #[schema(deprecated)]
    amount_minor: i64,
    #[schema(deprecated)]
    currency: &'a str,
    #[schema(deprecated)]
    occurred_at: i64,
    #[schema(deprecated)]
    image_id: Option<&'a str>,
    #[schema(deprecated)]
    counterparty: Option<&'a str>,
}

impl<'a> From<&'a LedgerEntry> for Movimiento<'a> {
    fn from(e: &'a LedgerEntry) -> Self {
        Movimiento {
            evento_id: &e.event_id,
            usuario_id: &e.user_id,
            tipo: tipo(e.kind),
            importe_minor: e.amount_minor,
            moneda: &e.currency,
            ocurrido_at: e.occurred_at,
            imagen_id: e.image_id.as_deref(),
            contraparte: e.counterparty.as_deref(),
            event_id: &e.event_id,
            user_id: &e.user_id,
            kind: e.kind,
            amount_minor: e.amount_minor,
            currency: &e.currency,
            occurred_at: e.occurred_at,
            image_id: e.image_id.as_deref(),
            counterparty: e.counterparty.as_deref(),
        }
    }
}

/// One entry of the audit trail (`GET /auditoria`). Its codes (`accion`, `resultado`,
/// `motivo`) stay as they are, like error codes: they are what a filter names.
#[derive(Debug, Serialize, ToSchema)]
pub struct Registro<'a> {
    evento_id: &'a str,
    ocurrido_at: i64,
    /// The acting user id, `anonymous`, `unknown` (a login with an unknown email) or a service.
    actor: &'a str,
    #[schema(value_type = Option<Role>)]
    rol_actor: Option<&'a str>,
    accion: &'a str,
    /// The ids acted on (comma-separated when several).
    objetivo: Option<&'a str>,
    /// Method and route template; null for the engine.
    ruta: Option<&'a str>,
    #[schema(schema_with = resultados)]
    resultado: &'a str,
    /// The HTTP status answered.
    estado_http: Option<i32>,
    /// The error code of a refusal or failure.
    motivo: Option<&'a str>,
    /// The X-Request-Id of the request.
    solicitud_http_id: Option<&'a str>,
    /// The service that recorded it.
    servicio: &'a str,
    // Deprecated names (`actor` is the same in both).
    #[schema(deprecated)]
    event_id: &'a str,
    #[schema(deprecated)]
    occurred_at: i64,
    #[schema(schema_with = deprecated_of::<Option<Role>>)]
    actor_role: Option<&'a str>,
    #[schema(deprecated)]
    action: &'a str,
    #[schema(deprecated)]
    target: Option<&'a str>,
    #[schema(deprecated)]
    route: Option<&'a str>,
    #[schema(schema_with = old_resultados)]
    outcome: &'a str,
    #[schema(deprecated)]
    status: Option<i32>,
    #[schema(deprecated)]
    reason: Option<&'a str>,
    #[schema(deprecated)]
    request_id: Option<&'a str>,
    #[schema(deprecated)]
    service: &'a str,
}

impl<'a> From<&'a RegistroAuditoria> for Registro<'a> {
    fn from(r: &'a RegistroAuditoria) -> Self {
        Registro {
            evento_id: &r.event_id,
            ocurrido_at: r.occurred_at,
            actor: &r.actor,
            rol_actor: r.actor_role.as_deref(),
            accion: &r.action,
            objetivo: r.target.as_deref(),
            ruta: r.route.as_deref(),
            resultado: &r.outcome,
            estado_http: r.status,
            motivo: r.reason.as_deref(),
            solicitud_http_id: r.request_id.as_deref(),
            servicio: &r.service,
            event_id: &r.event_id,
            occurred_at: r.occurred_at,
            actor_role: r.actor_role.as_deref(),
            action: &r.action,
            target: r.target.as_deref(),
            route: r.route.as_deref(),
            outcome: &r.outcome,
            status: r.status,
            reason: r.reason.as_deref(),
            request_id: r.request_id.as_deref(),
            service: &r.service,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn keys(v: &Value) -> Vec<&str> {
        v.as_object().expect("object").keys().map(String::as_str).collect()
    }

    #[test]
    fn a_user_answers_the_vocabulary_and_the_deprecated_names_with_the_same_values() {
        let user = CatalogUser {
            user_id: "u-1".into(),
            role: "proveedor".into(),
            organization: Some("Hospital".into()),
            created_at: 7,
        };
        let v = serde_json::to_value(Usuario::new(&user, Some("Ana"))).unwrap();
        assert_eq!(
            v,
            json!({
                "id": "u-1", "nombre": "Ana", "rol": "proveedor", "organizacion": "Hospital", "creado_at": 7,
                "user_id": "u-1", "role": "proveedor", "organization": "Hospital", "created_at": 7,
            })
        );
    }

    #[test]
    fn a_movement_names_its_kind_in_spanish_and_keeps_the_old_kind() {
        let entry = LedgerEntry {
            event_id: "e-1".into(),
            user_id: "p-1".into(),
            kind: EntryKind::RefusedPayment,
            amount_minor: 500,
            currency: "EUR".into(),
            occurred_at: 9,
            image_id: None,
            counterparty: Some("ref-1".into()),
        };
        let v = serde_json::to_value(Movimiento::from(&entry)).unwrap();
        assert_eq!(
            (v["tipo"].as_str(), v["kind"].as_str()),
            (Some("pago_rechazado"), Some("refused_payment"))
        );
        assert_eq!((v["importe_minor"].as_i64(), v["amount_minor"].as_i64()), (Some(500), Some(500)));
        assert_eq!(v["contraparte"], v["counterparty"]);
        assert_eq!(keys(&v).len(), 16);
        assert_eq!(
            [EntryKind::Usage, EntryKind::Payment, EntryKind::Charge].map(tipo),
            ["uso", "pago", "cargo"],
            "every kind has its Spanish name"
        );
    }

    #[test]
    fn a_balance_answers_both_vocabularies() {
        let b = Balance {
            user_id: "p-1".into(),
            currency: "EUR".into(),
            accrued_minor: 300,
            paid_minor: 100,
            pending_minor: 200,
            uses: 3,
            charged_minor: 40,
            charges: 2,
            as_of: 11,
        };
        let v = serde_json::to_value(SaldoMoneda::from(&b)).unwrap();
        assert_eq!((v["cargado_minor"].as_i64(), v["cargos"].as_i64()), (Some(40), Some(2)));
        for (new, old) in [
            ("usuario_id", "user_id"),
            ("moneda", "currency"),
            ("devengado_minor", "accrued_minor"),
            ("pagado_minor", "paid_minor"),
            ("pendiente_minor", "pending_minor"),
            ("usos", "uses"),
            ("actualizado_at", "as_of"),
        ] {
            assert_eq!(v[new], v[old], "{new} and {old}");
            assert!(!v[new].is_null(), "{new}");
        }
    }
}
