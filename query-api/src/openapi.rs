//! The OpenAPI document of the query API: the operations of
//! [`crate::routes::all`] (each route file declares its own beside its
//! handler, so the document lists exactly what the router serves), the
//! answers' schemas derived from their types, and the parameters several
//! routes share. The shared parts come from [`alpes_platform::openapi`].

use alpes_platform::openapi::{answer_schemas, doc_operations, header_param, response_header, schema};
use serde_json::{json, Value};

/// The operations' tags.
pub const IMAGES: &str = "images";
/// QIDO-RS and WADO-RS.
pub const DICOMWEB: &str = "dicomweb";
/// Users.
pub const IDENTITY: &str = "identity";
/// Balances and ledgers.
pub const MONEY: &str = "money";
/// The audit trail.
pub const AUDIT: &str = "audit";
/// De-identification reports.
pub const REPORTS: &str = "reports";
/// Institutions' and doctors' dashboards.
pub const REGISTRY: &str = "registry";

/// The query API's document.
pub fn document() -> Value {
    let mut ops = crate::routes::all().into_parts().1;
    ops.extend(doc_operations());
    alpes_platform::openapi::document(
        "Alpes query API",
        "The read side of Alpes: images and their metered downloads, users, balances and ledgers, QIDO-RS and \
         WADO-RS over the anonymized set, and the audit trail. Every answer comes from the store, never from Kafka. \
         Every error is JSON `{\"error\": code, \"message\": text}`.",
        ops,
        schemas(),
    )
}

/// The `ETag` of an answer.
pub fn etag(required: bool) -> Value {
    response_header(json!({ "type": "string" }), required, "A strong entity tag of the body.")
}

/// `If-None-Match`: 304 when the client's copy is current.
pub fn if_none_match() -> Value {
    header_param(
        "If-None-Match",
        json!({ "type": "string" }),
        "Entity tags the client holds (or `*`): 304 when one matches.",
    )
}

/// The answers' schemas, derived from the types that serialize them.
#[derive(utoipa::OpenApi)]
#[openapi(components(schemas(
    crate::routes::imagenes::Imagenes,
    crate::routes::imagen::Imagen,
    crate::routes::analisis::Analisis,
    crate::routes::analisis::Modelo,
    crate::routes::modelo::ModeloAnalisis,
    crate::routes::reportes::Solicitud,
    crate::routes::reporte::Estado,
    crate::routes::usuarios::Usuarios,
    crate::routes::usuario::Usuario,
    crate::routes::saldo::Saldo,
    crate::routes::saldo::Credito,
    crate::routes::pares::Pares,
    crate::routes::pares::Par,
    crate::routes::movimientos::Movimientos,
    crate::routes::auditoria::Registros,
    crate::live::CambioImagen,
    alpes_domain::panel::InstitutionPanel,
    alpes_domain::panel::DoctorPanel,
)))]
struct Answers;

/// The answers' schemas, and DICOM JSON (PS3.18 F.2), whose shape is the
/// standard's rather than a Rust type's.
fn schemas() -> Value {
    let mut schemas = answer_schemas::<Answers>();
    schemas["DicomAttribute"] = json!({
        "type": "object",
        "description": "A DICOM JSON attribute (PS3.18 F.2): its VR and, unless empty, its values.",
        "required": ["vr"],
        "additionalProperties": false,
        "properties": {
            "vr": { "type": "string", "pattern": "^[A-Z]{2}$" },
            "Value": { "type": "array", "items": {} },
            "InlineBinary": { "type": "string" },
            "BulkDataURI": { "type": "string" },
        },
    });
    schemas["DicomDataset"] = json!({
        "type": "object",
        "description": "A DICOM JSON dataset: attributes keyed by tag (`GGGGEEEE`, upper-case hex).",
        "additionalProperties": schema("DicomAttribute"),
    });
    schemas
}

#[cfg(test)]
mod tests {
    use super::*;
    use alpes_platform::openapi::{undeprecated, unresolved_refs, PENDING};
    use std::collections::BTreeSet;

    #[test]
    fn every_name_the_vocabulary_replaced_is_marked_deprecated_wherever_it_is_answered() {
        let old = [
            "image_id",
            "provider_id",
            "created_at",
            "modality",
            "anonymized",
            "rejection_reason",
            "user_id",
            "role",
            "organization",
            "currency",
            "accrued_minor",
            "paid_minor",
            "pending_minor",
            "uses",
            "as_of",
            "accrued",
            "paid",
            "balances",
            "event_id",
            "kind",
            "amount_minor",
            "occurred_at",
            "counterparty",
            "actor_role",
            "action",
            "target",
            "route",
            "outcome",
            "status",
            "reason",
            "request_id",
            "service",
        ];
        assert_eq!(undeprecated(&schemas(), &old), Vec::<String>::new());
    }

    #[test]
    fn the_audit_route_is_for_admins_and_documents_its_refusals() {
        let doc = document();
        let op = &doc["paths"]["/auditoria"]["get"];
        assert!(op.get(PENDING).is_none(), "the route is served");
        assert_eq!(op["x-alpes-roles"], json!(["admin"]));
        let statuses: Vec<&String> = op["responses"]
            .as_object()
            .expect("responses")
            .keys()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        assert_eq!(statuses, ["200", "400", "401", "403", "429", "503"]);
        assert_eq!(unresolved_refs(&doc), Vec::<String>::new());
    }

    #[test]
    fn every_operation_states_its_credentials_and_declares_its_path_parameters() {
        let doc: Value = serde_json::from_str(&serde_json::to_string(&document()).expect("serializes")).expect("valid JSON");
        for (p, item) in doc["paths"].as_object().expect("paths") {
            for (method, op) in item.as_object().expect("path item") {
                assert!(op["security"].is_array(), "{method} {p}: security is stated");
                for name in p.split('{').skip(1).filter_map(|s| s.split('}').next()) {
                    let declared = op["parameters"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|x| x["in"] == "path" && x["name"] == name);
                    assert!(declared, "{method} {p}: path parameter {name} is declared");
                }
                if op["security"].as_array().is_some_and(|s| !s.is_empty()) {
                    assert!(op["responses"].get("429").is_some(), "{method} {p} documents 429");
                }
            }
        }
    }
}
