//! The OpenAPI document of the ingest service: every route [`crate::router`]
//! serves (the operations of [`crate::routes::all`], which each route file
//! declares beside its handler, the document's own routes and the probes'),
//! the bodies' schemas derived from their types, and the parameters several
//! routes share. The shared parts (the `Error` schema, the error responses,
//! the security schemes) come from [`alpes_platform::openapi`].

use crate::profile::{ProfileField, Sets, PROFILE_FIELDS};
use alpes_anonymizer::profile::{CLEAN_OPTIONS, RETAIN_OPTIONS};
use alpes_anonymizer::requested::DEFAULT_RULES;
use alpes_platform::openapi::{
    answer_schemas, derived_schemas, doc_operations, image_media_types, marked_deprecated, query, query_list, response_header, string_enum,
};
use alpes_platform::probes;
use serde_json::{json, Value};
use utoipa::openapi::schema::{Array, Object, OneOf, Schema, Type};
use utoipa::openapi::RefOr;

/// The operations' tags.
pub const IMAGES: &str = "images";
/// STOW-RS.
pub const DICOMWEB: &str = "dicomweb";
/// Accounts, login and API keys.
pub const IDENTITY: &str = "identity";
/// Payments.
pub const MONEY: &str = "money";
/// The DICOM listener's calling AE titles.
pub const DIMSE: &str = "dimse";
/// Import jobs.
pub const IMPORTS: &str = "imports";
/// Institutions, doctors, patients and their consent.
pub const REGISTRY: &str = "registry";

/// What an upload's or a STOW-RS request's profile may get wrong.
pub const PROFILE_ERRORS: &str = "Unknown query keys are ignored. A profile naming an unknown option, a region that is not \
                                  `x,y,w,h` or another rule library is 400 `bad_profile`, before anything is stored.";

/// `x,y,w,h`, each a whole number of pixels.
const REGION_PATTERN: &str = "^[0-9]{1,9},[0-9]{1,9},[0-9]{1,9},[0-9]{1,9}$";

/// The ingest service's document.
pub fn document() -> Value {
    // The probes are the platform's; ingest's router serves them (and so does every process).
    let mut ops = crate::routes::all().into_parts().1;
    ops.extend(doc_operations());
    ops.extend(probes::operations());
    alpes_platform::openapi::document(
        "Alpes ingest",
        "The command side of Alpes: uploads (REST, multipart, STOW-RS), re-anonymization, accounts and login, \
         API keys and payments. Every error is JSON `{\"error\": code, \"message\": text}`.",
        ops,
        schemas(),
    )
}

/// The profile fields an upload or a STOW-RS request takes in its query.
pub fn profile_params() -> Vec<Value> {
    PROFILE_FIELDS
        .iter()
        .map(|f| {
            let (name, doc) = (f.names[0], described(f));
            if f.sets.repeatable() {
                query_list(name, profile_value(f.sets), &doc)
            } else {
                query(name, profile_value(f.sets), &doc)
            }
        })
        .collect()
}

/// The profile fields as text parts of a multipart upload (a list as one comma-separated part).
fn profile_form_fields() -> serde_json::Map<String, Value> {
    PROFILE_FIELDS
        .iter()
        .map(|f| {
            let mut schema = match f.sets {
                Sets::Retain | Sets::NoClean => json!({ "type": "string" }),
                other => profile_value(other),
            };
            schema["description"] = described(f).into();
            (f.names[0].to_owned(), schema)
        })
        .collect()
}

/// One value of a profile field.
fn profile_value(sets: Sets) -> Value {
    match sets {
        Sets::Retain => json!({ "type": "string", "enum": RETAIN_OPTIONS }),
        Sets::NoClean => json!({ "type": "string", "enum": CLEAN_OPTIONS }),
        Sets::Region => json!({ "type": "string", "pattern": REGION_PATTERN }),
        Sets::Rules => json!({ "type": "string", "enum": [DEFAULT_RULES] }),
        Sets::Ocr => json!({ "type": "string", "enum": alpes_anonymizer::ocr::OCR_MODES }),
        Sets::TipoImagen | Sets::RegionAnatomica => json!({ "type": "string" }),
    }
}

/// A field's description, naming the other names it is taken by.
fn described(f: &ProfileField) -> String {
    match &f.names[1..] {
        [] => f.doc.to_owned(),
        others => format!(
            "{} Taken as {} too.",
            f.doc,
            others.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// The `Location` of an accepted upload.
pub fn location() -> Value {
    response_header(json!({ "type": "string" }), true, "`/imagenes/{id}` of the (first) image.")
}

/// A DICOM JSON attribute (PS3.18 F.2) of value representation `vr`.
fn dicom_attribute(vr: &str, item: Value) -> Value {
    json!({
        "type": "object",
        "required": ["vr"],
        "additionalProperties": false,
        "properties": { "vr": { "type": "string", "enum": [vr] }, "Value": { "type": "array", "items": item } },
    })
}

/// The answers derived from the types that write them.
#[derive(utoipa::OpenApi)]
#[openapi(components(schemas(
    crate::routes::upload::Aceptadas,
    crate::routes::reanonymize::SolicitudAceptada,
    crate::routes::pagar::PagoAceptado,
    crate::routes::consumidor::Condiciones,
    crate::routes::usuarios::UsuarioCreado,
    crate::identity::Tokens,
    crate::routes::api_keys::Claves,
    crate::routes::api_keys::ClaveCreada,
    crate::routes::dimse_aes::TituloAe,
    crate::routes::dimse_aes::TitulosAe,
    crate::imports::Importacion,
    crate::imports::Conteos,
    crate::imports::Fallo,
    crate::routes::importaciones::Importaciones,
    crate::people::Institucion,
    crate::people::Medico,
    crate::people::Paciente,
    crate::people::Contacto,
    crate::routes::instituciones::Instituciones,
    crate::routes::medicos::Medicos,
    crate::routes::pacientes::Pacientes,
    crate::routes::webhooks::Suscripcion,
    crate::routes::webhooks::Suscripciones,
    crate::routes::notificaciones::Notificacion,
    crate::routes::notificaciones::Notificaciones,
)))]
struct Answers;

/// The request bodies derived from the types that read them, and the one
/// answer that leaves fields out (an inactive token's introspection).
#[derive(utoipa::OpenApi)]
#[openapi(components(schemas(
    crate::routes::auth_verify::Introspeccion,
    crate::routes::reanonymize::Request,
    crate::routes::pagar::Request,
    crate::routes::consumidor::Request,
    crate::routes::usuarios::Request,
    crate::routes::auth_login::Request,
    crate::routes::auth_refresh::Request,
    crate::routes::auth_verify::Request,
    crate::routes::api_keys::Request,
    crate::routes::dimse_aes::Request,
    alpes_domain::import::ImportSpec,
    alpes_domain::import::SourceAuth,
    crate::routes::instituciones::Request,
    crate::routes::institucion::Change,
    crate::routes::medicos::Request,
    crate::routes::medico::Change,
    crate::routes::pacientes::Request,
    crate::routes::codigos::Request,
    crate::routes::webhooks::Request,
)))]
struct Derived;

/// `retain` of a re-anonymization: the Retain options.
pub(crate) fn retain_options() -> Array {
    Array::new(string_enum(&RETAIN_OPTIONS))
}

/// `no_clean` of a re-anonymization: the Clean options to switch off.
pub(crate) fn no_clean_options() -> Array {
    Array::new(string_enum(&CLEAN_OPTIONS))
}

/// `regions` of a re-anonymization: rectangles to burn.
pub(crate) fn regions() -> Array {
    Array::new(Object::builder().schema_type(Type::String).pattern(Some(REGION_PATTERN)))
}

/// `rules` of a re-anonymization: `default`, or null.
pub(crate) fn rules() -> RefOr<Schema> {
    Schema::OneOf(
        OneOf::builder()
            .item(Object::with_type(Type::Null))
            .item(string_enum(&[DEFAULT_RULES]))
            .build(),
    )
    .into()
}

/// `ocr` of a re-anonymization: the burned-in text safety net's mode, or null for the default.
pub(crate) fn ocr_modes() -> RefOr<Schema> {
    Schema::OneOf(
        OneOf::builder()
            .item(Object::with_type(Type::Null))
            .item(string_enum(&alpes_anonymizer::ocr::OCR_MODES))
            .build(),
    )
    .into()
}

/// [`image_media_types`] under the name it replaced.
pub(crate) fn old_media_types() -> Object {
    marked_deprecated(image_media_types())
}

/// The bodies' schemas: derived ones first (the probes' too), then those with no Rust type
/// of their own (the multipart form, and the standard's shapes: DICOM JSON and the JWK Set).
fn schemas() -> Value {
    let jwks = json!({
            "type": "object",
            "required": ["keys"],
            "additionalProperties": false,
            "properties": {
    "keys": {
        "type": "array",
        "items": {
            "type": "object",
            "required": ["kty", "crv", "x", "kid", "alg", "use"],
            "properties": {
                "kty": { "type": "string", "enum": ["OKP"] },
                "crv": { "type": "string", "enum": ["Ed25519"] },
                "x": { "type": "string", "description": "The public key, base64url." },
                "kid": { "type": "string" },
                "alg": { "type": "string", "enum": ["EdDSA"] },
                "use": { "type": "string", "enum": ["sig"] },
            },
        },
    },
            },
        });
    let uid = dicom_attribute("UI", json!({ "type": "string" }));
    let mut schemas = answer_schemas::<Answers>();
    let mut built = json!({
        "UploadForm": {
            "type": "object",
            "description": "Any number of file parts (a part with a filename or a content type other than text/plain), \
                            and the profile fields as text parts.",
            "required": ["file"],
            "properties": {
                "file": { "type": "array", "items": { "type": "string", "format": "binary" }, "minItems": 1 },
            },
        },
        "StowResponse": {
            "type": "object",
            "description": "PS3.18 §10.5.3: DICOM JSON with the stored and the failed instances.",
            "required": ["00081199"],
            "additionalProperties": false,
            "properties": {
                "00081199": dicom_attribute("SQ", json!({
                    "type": "object",
                    "description": "A stored instance: SOP class, SOP instance and where to find it (RetrieveURL).",
                    "required": ["00081150", "00081155", "00081190"],
                    "additionalProperties": false,
                    "properties": {
                        "00081150": uid.clone(),
                        "00081155": uid.clone(),
                        "00081190": dicom_attribute("UR", json!({ "type": "string" })),
                    },
                })),
                "00081198": dicom_attribute("SQ", json!({
                    "type": "object",
                    "description": "A failed instance and its FailureReason: 49152 (C000, not DICOM) or 43264 (A900, another study).",
                    "required": ["00081150", "00081155", "00081197"],
                    "additionalProperties": false,
                    "properties": {
                        "00081150": uid.clone(),
                        "00081155": uid,
                        "00081197": dicom_attribute("US", json!({ "type": "integer", "enum": [0xC000, 0xA900] })),
                    },
                })),
            },
        },
        "Jwks": jwks,
    });
    if let Some(form) = built["UploadForm"]["properties"].as_object_mut() {
        form.extend(profile_form_fields());
    }
    for part in [derived_schemas::<Derived>(), derived_schemas::<probes::Answers>(), built] {
        if let (Value::Object(all), Value::Object(part)) = (&mut schemas, part) {
            all.extend(part);
        }
    }
    schemas
}

#[cfg(test)]
mod tests {
    use super::*;
    use alpes_platform::openapi::{undeprecated, unresolved_refs};
    use std::collections::BTreeSet;

    #[test]
    fn the_documented_media_types_are_the_ones_the_anonymizer_records() {
        use alpes_anonymizer::probe::MediaKind;
        // A new kind stops this from compiling until it is listed below.
        let _every_kind = |k: MediaKind| match k {
            MediaKind::Dicom | MediaKind::Png | MediaKind::Jpeg => (),
        };
        let recorded = [MediaKind::Dicom, MediaKind::Png, MediaKind::Jpeg].map(MediaKind::media_type);
        assert_eq!(recorded, alpes_platform::openapi::IMAGE_MEDIA_TYPES);
    }

    #[test]
    fn the_upload_documents_every_profile_field_in_its_query_and_its_form() {
        let doc = document();
        let names: Vec<&str> = PROFILE_FIELDS.iter().map(|f| f.names[0]).collect();
        let params = doc["paths"]["/imagenes"]["post"]["parameters"].as_array().expect("parameters");
        let documented: Vec<&str> = params
            .iter()
            .filter(|p| p["in"] == "query")
            .filter_map(|p| p["name"].as_str())
            .collect();
        assert_eq!(documented, names);
        let form = doc["components"]["schemas"]["UploadForm"]["properties"]
            .as_object()
            .expect("properties");
        let mut fields: Vec<&str> = form.keys().map(String::as_str).filter(|k| *k != "file").collect();
        fields.sort_unstable();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(fields, sorted);
        let no_clean = params.iter().find(|p| p["name"] == "no_clean").expect("no_clean");
        assert!(no_clean["description"].as_str().expect("text").contains("`no-clean`"));
    }

    #[test]
    fn every_name_the_vocabulary_replaced_is_marked_deprecated_wherever_it_is_answered() {
        let old = [
            "request_id",
            "size",
            "media_type",
            "duplicate",
            "images",
            "event_id",
            "created_at",
            "created_by",
            "revoked_at",
            "last_used_at",
        ];
        assert_eq!(undeprecated(&schemas(), &old), Vec::<String>::new());
    }

    #[test]
    fn the_document_is_openapi_3_with_every_ref_resolved_and_every_operation_answering_errors_as_json() {
        let doc = document();
        let text = serde_json::to_string(&doc).expect("serializes");
        let doc: Value = serde_json::from_str(&text).expect("valid JSON");
        assert_eq!(doc["openapi"], alpes_platform::openapi::OPENAPI_VERSION);
        assert_eq!(unresolved_refs(&doc), Vec::<String>::new());
        let mut ids = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, op) in item.as_object().expect("path item") {
                assert!(
                    ids.insert(op["operationId"].as_str().expect("operationId").to_owned()),
                    "{method} {path}: duplicate operationId"
                );
                assert!(op["security"].is_array(), "{method} {path}: security is stated");
                for name in path.split('{').skip(1).filter_map(|s| s.split('}').next()) {
                    let declared = op["parameters"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|p| p["in"] == "path" && p["name"] == name);
                    assert!(declared, "{method} {path}: path parameter {name} is declared");
                }
                let authenticated = op["security"].as_array().is_some_and(|s| !s.is_empty());
                if authenticated {
                    for status in ["401", "429"] {
                        assert!(op["responses"].get(status).is_some(), "{method} {path} documents {status}");
                    }
                }
            }
        }
    }
}
