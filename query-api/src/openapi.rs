//! The OpenAPI document of the query API: every route [`crate::router`]
//! serves, with its parameters, every status it answers, its bodies and the
//! roles it needs. The shared parts come from [`alpes_platform::openapi`]. A
//! test below checks the document against the router's `.route(...)` calls,
//! both ways.

use alpes_platform::openapi::{
    answer_schemas, binary_content, content, deprecated_param, doc_operations, header_param, json_content, path, query, response_header,
    schema, Op,
};
use serde_json::{json, Value};

const IMAGES: &str = "images";
const DICOMWEB: &str = "dicomweb";
const IDENTITY: &str = "identity";
const MONEY: &str = "money";
const AUDIT: &str = "audit";

/// The query API's document.
pub fn document() -> Value {
    let mut ops = operations();
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

fn limit() -> Value {
    query(
        "limit",
        json!({ "type": "integer", "minimum": 1, "maximum": 1000, "default": 100 }),
        "Page size, 1 to 1000.",
    )
}

fn cursor(next: &str) -> Value {
    query(
        "cursor",
        json!({ "type": "string", "minLength": 1 }),
        &format!("The previous page's `{next}` (opaque); a cursor this server did not issue is 400 `bad_cursor`."),
    )
}

fn etag(required: bool) -> Value {
    response_header(json!({ "type": "string" }), required, "A strong entity tag of the body.")
}

fn if_none_match() -> Value {
    header_param(
        "If-None-Match",
        json!({ "type": "string" }),
        "Entity tags the client holds (or `*`): 304 when one matches.",
    )
}

/// The QIDO-RS matching keys and paging parameters.
fn qido_params() -> Vec<Value> {
    let text = |name: &str, description: &str| query(name, json!({ "type": "string" }), description);
    vec![
        text(
            "PatientID",
            "The pseudonymous PatientID (`*` and `?` wildcards); `00100020` is taken too.",
        ),
        text("StudyInstanceUID", "`0020000D` is taken too."),
        text("SeriesInstanceUID", "`0020000E` is taken too."),
        text("SOPInstanceUID", "`00080018` is taken too."),
        text("ModalitiesInStudy", "A modality, e.g. `CT`; `00080061` is taken too."),
        text("Modality", "Same as ModalitiesInStudy; `00080060` is taken too."),
        query(
            "StudyDate",
            json!({ "type": "string", "pattern": "^([0-9]{8})?(-([0-9]{8})?)?$" }),
            "`YYYYMMDD`, or a range `YYYYMMDD-YYYYMMDD` open at either end; `00080020` is taken too.",
        ),
        query(
            "limit",
            json!({ "type": "integer", "minimum": 1, "maximum": 1000, "default": 100 }),
            "At most this many results, 1 to 1000.",
        ),
        query(
            "offset",
            json!({ "type": "integer", "minimum": 0, "maximum": u64::MAX, "default": 0 }),
            "Skip this many results.",
        ),
        text("includefield", "Accepted; every attribute Alpes has is always included."),
        text("fuzzymatching", "Accepted and ignored."),
    ]
}

fn qido_op(p: &'static str, id: &str, summary: &str, level: &str) -> Op {
    Op::get(p, id, DICOMWEB, summary)
        .describe(&format!(
            "QIDO-RS (PS3.18 §10.6) over the anonymized DICOM set: the matching {level}, as DICOM JSON. Any other \
             query key is ignored and named in a `Warning` header, as the standard asks."
        ))
        .auth(&["consumidor", "admin"])
        .params(qido_params())
        .ok(
            200,
            &format!("The matching {level} (maybe none)."),
            Some(content(
                "application/dicom+json",
                json!({ "type": "array", "items": schema("DicomDataset") }),
            )),
            &[(
                "Warning",
                response_header(
                    json!({ "type": "string" }),
                    false,
                    "`299 alpes \"matching keys not supported and ignored: ...\"`",
                ),
            )],
        )
        .error(
            400,
            &["bad_query", "bad_limit", "bad_offset", "bad_study_date"],
            "A malformed query string, a limit outside 1 to 1000, an offset that is not a whole number, or a bad StudyDate.",
        )
}

fn wado_op(p: &'static str, id: &str, what: &str) -> Op {
    Op::get(p, id, DICOMWEB, &format!("Retrieve {what} (WADO-RS)"))
        .describe(&format!(
            "WADO-RS (PS3.18 §10.4): every anonymized instance of {what}, as `multipart/related; \
             type=\"application/dicom\"`. Each instance retrieved is metered like a download: its `EventoUsoDatos` is \
             on the log before the answer goes out."
        ))
        .auth(&["consumidor", "admin"])
        .param(header_param(
            "Accept",
            json!({ "type": "string", "example": "multipart/related; type=\"application/dicom\"" }),
            "Must allow `multipart/related; type=\"application/dicom\"` (`*/*`, `multipart/*`, `multipart/related` \
             without a `type`, or any type naming `application/dicom`); else 406.",
        ))
        .ok(
            200,
            "The instances, one per part.",
            Some(binary_content(&["multipart/related; type=\"application/dicom\""])),
            &[],
        )
        .standard(404)
        .standard(406)
}

fn metadata_op(p: &'static str, id: &str, what: &str) -> Op {
    Op::get(p, id, DICOMWEB, &format!("Metadata of {what} (WADO-RS)"))
        .describe(&format!(
            "Every top-level attribute of each anonymized instance of {what} up to Pixel Data, as DICOM JSON. \
             Reading metadata is not metered."
        ))
        .auth(&["consumidor", "admin"])
        .param(if_none_match())
        .ok(
            200,
            "One DICOM JSON dataset per instance.",
            Some(content(
                "application/dicom+json",
                json!({ "type": "array", "items": schema("DicomDataset") }),
            )),
            &[("ETag", etag(true))],
        )
        .ok(304, "The client's copy is current.", None, &[("ETag", etag(true))])
        .standard(404)
}

/// Every query operation but the document's own.
fn operations() -> Vec<Op> {
    let study = || path("study", "The StudyInstanceUID (remapped by the anonymizer).");
    let series = || path("series", "The SeriesInstanceUID.");
    let instance = || path("instance", "The SOPInstanceUID.");
    vec![
        Op::get("/imagenes", "listImages", IMAGES, "Images, newest first")
            .describe(
                "A provider lists its own images (naming another `proveedor_id` is 403), a consumer the anonymized \
                 ones (asking for another `estado` is 403), an admin every image. A page boundary stays put while new \
                 images arrive. Unknown query keys are 400 `bad_query`.",
            )
            .auth(&[])
            .params([
                query("proveedor_id", json!({ "type": "string" }), "Only this provider's images."),
                query(
                    "modalidad",
                    json!({ "type": "string" }),
                    "Only this modality (DICOM Modality, or the provider's `tipo_imagen`).",
                ),
                query("region_anatomica", json!({ "type": "string" }), "Only this body region label."),
                query(
                    "estado",
                    json!({ "type": "string", "enum": ["registrada", "anonimizada", "rechazada"] }),
                    "Only images in this state.",
                ),
                query(
                    "creada_desde",
                    json!({ "type": "integer", "format": "int64" }),
                    "Created at or after (ms since the epoch).",
                ),
                query(
                    "creada_hasta",
                    json!({ "type": "integer", "format": "int64" }),
                    "Created before (ms since the epoch).",
                ),
                limit(),
                cursor("next_cursor"),
            ])
            .ok(200, "One page.", Some(json_content(schema("Imagenes"))), &[])
            .error(
                400,
                &["bad_query", "bad_limit", "bad_estado", "bad_cursor"],
                "A malformed or unknown query key, a limit outside 1 to 1000, an unknown `estado`, or a foreign cursor.",
            )
            .standard(403),
        Op::get(
            "/imagenes/{id}",
            "getImage",
            IMAGES,
            "One image: state, anonymized output, report and price",
        )
        .describe("404 for an image the caller may not see (a provider sees its own, a consumer the anonymized ones).")
        .auth(&[])
        .param(path("id", "The image id."))
        .param(if_none_match())
        .ok(200, "The image.", Some(json_content(schema("ImagenDetalle"))), &[("ETag", etag(true))])
        .ok(304, "The client's copy is current.", None, &[("ETag", etag(true))])
        .standard(404),
        Op::get(
            "/imagenes/{id}/anonimizada",
            "downloadImage",
            IMAGES,
            "Download the anonymized bytes (metered)",
        )
        .describe(
            "Whole, or one byte range. Every retrieval produces `EventoUsoDatos` (consumer, provider, price, \
                 `dedupe_key`) before the bytes go out; several ranges, or a unit other than bytes, get the whole body.",
        )
        .auth(&["consumidor", "admin"])
        .param(path("id", "The image id."))
        .param(header_param(
            "Range",
            json!({ "type": "string" }),
            "`bytes=first-last`, `bytes=first-` or `bytes=-suffix`.",
        ))
        .ok(200, "The anonymized image.", Some(download_content()), &download_headers(false))
        .ok(206, "The range asked for.", Some(download_content()), &download_headers(true))
        .standard(404)
        .error(409, &["not_anonymized"], "The image has no anonymized output (yet).")
        .standard(416),
        Op::get("/usuarios", "listUsers", IDENTITY, "Users, oldest first")
            .describe("Never a password hash or a secret.")
            .auth(&["admin"])
            .params([
                query(
                    "rol",
                    json!({ "type": "string", "enum": ["proveedor", "consumidor", "admin"] }),
                    "Only this role.",
                ),
                limit(),
                cursor("next_cursor"),
            ])
            .ok(200, "One page.", Some(json_content(schema("Usuarios"))), &[])
            .error(
                400,
                &["bad_query", "bad_limit", "bad_rol", "bad_cursor"],
                "A malformed or unknown query key, a limit outside 1 to 1000, an unknown role, or a foreign cursor.",
            ),
        Op::get("/usuarios/{id}", "getUser", IDENTITY, "One user")
            .describe("An admin reads anyone; any other user only itself (403 otherwise).")
            .auth(&[])
            .param(path("id", "The user id."))
            .ok(200, "The user, with its login attempts.", Some(json_content(schema("UsuarioDetalle"))), &[])
            .standard(403)
            .standard(404),
        Op::get("/monetizacion/saldo/{usuario_id}", "getBalance", MONEY, "A provider's balance")
            .describe(
                "What Alpes owes the provider, in minor units, as of the latest event billing applied. A provider \
                 reads only its own; a consumer none.",
            )
            .auth(&["proveedor", "admin"])
            .param(path("usuario_id", "The provider."))
            .param(query(
                "moneda",
                json!({ "type": "string", "pattern": "^[A-Z]{3}$" }),
                "ISO 4217; the instance's default currency when absent.",
            ))
            .param(deprecated_param(query(
                "currency",
                json!({ "type": "string", "pattern": "^[A-Z]{3}$" }),
                "The deprecated name of `moneda` (give one of the two).",
            )))
            .ok(200, "The balance.", Some(json_content(schema("Saldo"))), &[])
            .error(
                400,
                &["bad_query", "bad_currency"],
                "A malformed or unknown query key, both `moneda` and `currency`, or a currency that is not ISO 4217.",
            ),
        Op::get(
            "/monetizacion/movimientos/{usuario_id}",
            "listMovements",
            MONEY,
            "A provider's ledger, newest first",
        )
        .describe("A page boundary stays put while new movements arrive. A provider reads only its own; a consumer none.")
        .auth(&["proveedor", "admin"])
        .param(path("usuario_id", "The provider."))
        .params([limit(), cursor("next_cursor")])
        .ok(200, "One page.", Some(json_content(schema("Movimientos"))), &[])
        .error(
            400,
            &["bad_query", "bad_limit", "bad_cursor"],
            "A malformed or unknown query key, a limit outside 1 to 1000, or a foreign cursor.",
        ),
        qido_op("/studies", "searchStudies", "Search studies (QIDO-RS)", "studies"),
        qido_op("/series", "searchSeries", "Search series (QIDO-RS)", "series"),
        qido_op("/instances", "searchInstances", "Search instances (QIDO-RS)", "instances"),
        qido_op(
            "/studies/{study}/series",
            "searchStudySeries",
            "Search a study's series (QIDO-RS)",
            "series of the study",
        )
        .param(study()),
        qido_op(
            "/studies/{study}/instances",
            "searchStudyInstances",
            "Search a study's instances (QIDO-RS)",
            "instances of the study",
        )
        .param(study()),
        qido_op(
            "/studies/{study}/series/{series}/instances",
            "searchSeriesInstances",
            "Search a series' instances (QIDO-RS)",
            "instances of the series",
        )
        .params([study(), series()]),
        wado_op("/studies/{study}", "retrieveStudy", "a study").param(study()),
        wado_op("/studies/{study}/series/{series}", "retrieveSeries", "a series").params([study(), series()]),
        wado_op(
            "/studies/{study}/series/{series}/instances/{instance}",
            "retrieveInstance",
            "an instance",
        )
        .params([study(), series(), instance()]),
        metadata_op("/studies/{study}/metadata", "retrieveStudyMetadata", "a study").param(study()),
        metadata_op("/studies/{study}/series/{series}/metadata", "retrieveSeriesMetadata", "a series").params([study(), series()]),
        metadata_op(
            "/studies/{study}/series/{series}/instances/{instance}/metadata",
            "retrieveInstanceMetadata",
            "an instance",
        )
        .params([study(), series(), instance()]),
        Op::get("/auditoria", "listAuditEvents", AUDIT, "The audit trail, newest first")
            .describe(
                "Who did what, to what, with which outcome, under which request: logins, uploads, anonymizations, \
                 downloads, payments, account and key changes, every admin request and every refused one. \
                 Filters combine. Reading the trail is itself recorded (`audit_read`).",
            )
            .auth(&["admin"])
            .params([
                query(
                    "actor",
                    json!({ "type": "string" }),
                    "Only entries by this user id (`anonymous` for callers without a valid credential, `anonymizer` for the engine, `unknown` for logins with an unknown email).",
                ),
                query(
                    "accion",
                    json!({ "type": "string" }),
                    "Only this action (`login`, `upload`, `anonymization`, `download`, `payment`, `user_create`, `token_refresh`, `logout`, `api_key_create`, `api_key_revoke`, `reanonymize`, `audit_read`, `admin_read`, `access`).",
                ),
                query(
                    "resultado",
                    json!({ "type": "string", "enum": ["ok", "denied", "error"] }),
                    "Only this outcome.",
                ),
                query("objetivo", json!({ "type": "string" }), "Only entries on this object id."),
                query(
                    "solicitud_http_id",
                    json!({ "type": "string" }),
                    "Only the entries of this request (its `X-Request-Id`).",
                ),
                deprecated_param(query("action", json!({ "type": "string" }), "The deprecated name of `accion`.")),
                deprecated_param(query(
                    "outcome",
                    json!({ "type": "string", "enum": ["ok", "denied", "error"] }),
                    "The deprecated name of `resultado`.",
                )),
                deprecated_param(query("target", json!({ "type": "string" }), "The deprecated name of `objetivo`.")),
                deprecated_param(query(
                    "request_id",
                    json!({ "type": "string" }),
                    "The deprecated name of `solicitud_http_id`.",
                )),
                query(
                    "desde",
                    json!({ "type": "integer", "format": "int64" }),
                    "At or after (ms since the epoch).",
                ),
                query(
                    "hasta",
                    json!({ "type": "integer", "format": "int64" }),
                    "Before (ms since the epoch).",
                ),
                limit(),
                cursor("next_cursor"),
            ])
            .ok(200, "One page.", Some(json_content(schema("Registros"))), &[])
            .error(
                400,
                &["bad_query", "bad_limit", "bad_outcome", "bad_cursor"],
                "A malformed or unknown query key, a filter given under both its names, a limit outside 1 to 1000, an unknown outcome, or a foreign cursor.",
            ),
    ]
}

fn download_content() -> Value {
    binary_content(&["application/dicom", "image/png", "image/jpeg"])
}

fn download_headers(partial: bool) -> Vec<(&'static str, Value)> {
    let mut h = vec![
        (
            "ETag",
            response_header(
                json!({ "type": "string" }),
                true,
                "The sha256 of the whole anonymized blob, quoted.",
            ),
        ),
        (
            "Accept-Ranges",
            response_header(json!({ "type": "string", "enum": ["bytes"] }), true, "Ranges are served."),
        ),
        (
            "Content-Disposition",
            response_header(
                json!({ "type": "string" }),
                true,
                "`attachment; filename=\"<id>.dcm\"` (or `.png`, `.jpg`).",
            ),
        ),
    ];
    if partial {
        h.push((
            "Content-Range",
            response_header(
                json!({ "type": "string", "pattern": "^bytes [0-9]+-[0-9]+/[0-9]+$" }),
                true,
                "`bytes first-last/size`.",
            ),
        ));
    }
    h
}

/// The answers' schemas, derived from the types that serialize them.
#[derive(utoipa::OpenApi)]
#[openapi(components(schemas(
    crate::routes::imagenes::Imagenes,
    crate::routes::imagen::Imagen,
    crate::routes::usuarios::Usuarios,
    crate::routes::usuario::Usuario,
    crate::routes::saldo::Saldo,
    crate::routes::movimientos::Movimientos,
    crate::routes::auditoria::Registros,
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
    use alpes_platform::openapi::{assert_covers_routes, undeprecated, unresolved_refs, PENDING};
    use std::collections::BTreeSet;

    #[test]
    fn the_document_covers_every_route_of_the_router_and_nothing_else() {
        assert_covers_routes(&document(), &[include_str!("lib.rs")]);
    }

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
        assert_eq!(undeprecated(&document(), &old), Vec::<String>::new());
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
