//! The OpenAPI document of the ingest service: every route [`crate::router`]
//! serves, with its parameters, bodies, every status it answers and the
//! credentials it needs. The shared parts (the `Error` schema, the error
//! responses, the security schemes) come from [`alpes_platform::openapi`].
//! A test below checks the document against the router's `.route(...)` calls,
//! both ways.

use alpes_platform::openapi::{
    answer_schemas, binary_content, content, doc_operations, header_param, json_content, marked_deprecated, nullable,
    object_with_deprecated, path, query, query_list, request_schemas, response_header, schema, string_enum as enum_schema, Op,
};
use serde_json::{json, Value};
use utoipa::openapi::schema::{Array, Object, OneOf, Schema, Type};
use utoipa::openapi::RefOr;

const IMAGES: &str = "images";
const DICOMWEB: &str = "dicomweb";
const IDENTITY: &str = "identity";
const MONEY: &str = "money";
const PLATFORM: &str = "platform";

/// The Retain options an upload's profile may name.
pub const RETAIN_OPTIONS: [&str; 7] = [
    "safe-private",
    "uids",
    "device-identity",
    "institution-identity",
    "patient-characteristics",
    "full-dates",
    "modified-dates",
];

/// The Clean options an upload's profile may switch off.
pub const NO_CLEAN_OPTIONS: [&str; 4] = ["descriptors", "structured-content", "graphics", "pixel-data"];

/// `x,y,w,h`, each a whole number of pixels.
const REGION_PATTERN: &str = "^[0-9]{1,9},[0-9]{1,9},[0-9]{1,9},[0-9]{1,9}$";

/// The ingest service's document.
pub fn document() -> Value {
    let mut ops = operations();
    ops.extend(doc_operations());
    alpes_platform::openapi::document(
        "Alpes ingest",
        "The command side of Alpes: uploads (REST, multipart, STOW-RS), re-anonymization, accounts and login, \
         API keys and payments. Every error is JSON `{\"error\": code, \"message\": text}`.",
        ops,
        schemas(),
    )
}

/// The profile fields an upload or a STOW-RS request takes in its query.
fn profile_params() -> Vec<Value> {
    vec![
        query_list(
            "retain",
            json!({ "type": "string", "enum": RETAIN_OPTIONS }),
            "Retain options of PS3.15 Table E.1-1 to apply (repeat the key, or separate them with commas).",
        ),
        query_list(
            "no_clean",
            json!({ "type": "string", "enum": NO_CLEAN_OPTIONS }),
            "Clean options to switch off (repeat the key, or separate them with commas; `no-clean` is taken too).",
        ),
        query_list(
            "region",
            json!({ "type": "string", "pattern": REGION_PATTERN }),
            "An extra rectangle `x,y,w,h` to burn in every frame (repeatable).",
        ),
        query(
            "rules",
            json!({ "type": "string", "enum": ["default"] }),
            "The rule library (only `default` is installed).",
        ),
        query(
            "tipo_imagen",
            json!({ "type": "string" }),
            "The provider's image type label, e.g. `CT`.",
        ),
        query(
            "region_anatomica",
            json!({ "type": "string" }),
            "The provider's body region label, e.g. `CHEST`.",
        ),
    ]
}

fn location() -> Value {
    response_header(json!({ "type": "string" }), true, "`/imagenes/{id}` of the (first) image.")
}

fn stow_answer(description: &str) -> Value {
    json!({ "description": description, "content": content("application/dicom+json", schema("StowResponse")) })
}

/// Every ingest operation but the document's own.
fn operations() -> Vec<Op> {
    let profile_regions = "Unknown query keys are ignored. A profile naming an unknown option, a region that is not \
                           `x,y,w,h` or another rule library is 400 `bad_profile`, before anything is stored.";
    vec![
        Op::post("/imagenes", "uploadImage", IMAGES, "Upload one image, or several in a form")
            .describe(&format!(
                "The body is one image (`application/dicom`, `image/png`, `image/jpeg`, or `application/octet-stream` \
                 to let the bytes decide), or `multipart/form-data` with one or more file parts and the profile fields. \
                 The bytes stream to the blob store while they are hashed; the image is registered and \
                 `ImagenRegistrada` produced before the answer. The same `Idempotency-Key`, or the same bytes from the \
                 same provider, answers the same id with `\"duplicate\": true` and produces no second event.\n\n{profile_regions}"
            ))
            .auth(&["proveedor", "admin"])
            .params(profile_params())
            .param(header_param(
                "Idempotency-Key",
                json!({ "type": "string", "pattern": "^[!-~]{1,255}$" }),
                "Makes a retry answer the first upload's id (1 to 255 visible ASCII characters).",
            ))
            .body(
                true,
                "The image, or a form of images and profile fields.",
                {
                    let mut c = binary_content(&["application/dicom", "image/png", "image/jpeg", "application/octet-stream"]);
                    c["multipart/form-data"] = json!({
                        "schema": schema("UploadForm"),
                        "encoding": { "file": { "contentType": "application/dicom, image/png, image/jpeg, application/octet-stream" } },
                    });
                    c
                },
            )
            .ok(
                202,
                "Registered; anonymization follows. `id` is the first image's.",
                Some(json_content(schema("UploadAccepted"))),
                &[("Location", location())],
            )
            .error(
                400,
                &["bad_profile", "unreadable_dicom", "bad_multipart", "no_file", "bad_idempotency_key", "bad_body"],
                "A bad profile, DICOM no reader can parse, a malformed or truncated form, a form with no file, \
                 a bad `Idempotency-Key`, or a body that ended early.",
            )
            .standard(413)
            .standard(415),
        stow_op("/studies", "stowStudies", "Store instances (STOW-RS)", profile_regions),
        stow_op(
            "/studies/{study}",
            "stowStudy",
            "Store instances of one study (STOW-RS)",
            "Every instance must belong to `study`; one of another study fails with FailureReason `A900`.",
        )
        .param(path("study", "The StudyInstanceUID every instance must have.")),
        Op::post("/anonimizar/{id}", "reanonymizeImage", IMAGES, "Anonymize an image again with another profile")
            .describe(
                "A new anonymization request for an existing image; a provider may name only its own images. \
                 An empty body means the default (strictest) profile.",
            )
            .auth(&["proveedor", "admin"])
            .param(path("id", "The image id."))
            .body(false, "The profile; every field is optional.", json_content(schema("ReanonymizeRequest")))
            .ok(
                202,
                "The request is on its way.",
                Some(json_content(schema("ReanonymizeAccepted"))),
                &[("Location", location())],
            )
            .error(400, &["bad_json", "bad_profile"], "The body is not a profile, or names an unknown option or a bad region.")
            .standard(404)
            .standard(413),
        Op::post("/monetizacion/pagar", "payProvider", MONEY, "Pay a provider out of its pending balance")
            .describe(
                "Checked against the ledger billing has applied so far; a refusal produces `PagoRechazado`. \
                 Otherwise `PagoProcesado` is produced (its id derived from the user and the reference, so a retry \
                 pays once) and billing applies it.",
            )
            .auth(&["admin"])
            .body(true, "The payment.", json_content(schema("PaymentRequest")))
            .ok(202, "Produced; billing applies it.", Some(json_content(schema("PaymentAccepted"))), &[])
            .error(400, &["bad_json"], "The body is not a payment.")
            .error(
                409,
                &["repeated_reference", "insufficient_balance"],
                "The user was already paid under this reference, or the amount is above the pending balance.",
            )
            .standard(413)
            .error(
                422,
                &["bad_usuario_id", "invalid_amount", "bad_currency", "bad_reference"],
                "An empty user, a non-positive amount, a currency that is not ISO 4217, or a reference that is not \
                 1 to 128 visible ASCII characters.",
            ),
        Op::post("/usuarios", "createUser", IDENTITY, "Create an account")
            .describe(
                "Anyone may create a `proveedor` or `consumidor` account; only an admin's credentials create an \
                 `admin` (401 without, 403 with another role). Produces `UsuarioRegistrado` (no hash, no email); if the \
                 broker does not acknowledge, the account is removed again and the answer is 503.",
            )
            .optional_auth()
            .body(true, "The account.", json_content(schema("NewUser")))
            .ok(201, "Created.", Some(json_content(schema("UserCreated"))), &[])
            .error(400, &["bad_json"], "The body is not an account.")
            .standard(403)
            .error(409, &["email_taken"], "An account with this email exists (emails compare trimmed and lower-case).")
            .standard(413)
            .error(
                422,
                &["bad_rol", "bad_nombre", "bad_email", "bad_organizacion", "weak_password"],
                "A value is not acceptable; passwords need at least 12 characters.",
            )
            .standard(503),
        Op::post("/auth/login", "login", IDENTITY, "Log in: an access token and a refresh token")
            .describe(
                "An unknown email and a wrong password get the same 401 after the same work. Too many failures \
                 lock the account for a while: 429 `account_locked` with `Retry-After`, even for the right password.",
            )
            .public()
            .body(true, "The credentials.", json_content(schema("LoginRequest")))
            .ok(200, "Logged in.", Some(json_content(schema("Tokens"))), &[])
            .error(400, &["bad_json"], "The body is not a login.")
            .error(401, &["invalid_credentials"], "Unknown email or wrong password.")
            .standard(413)
            .error(429, &["account_locked"], "The account is locked after too many failed logins.")
            .standard(503),
        Op::post("/auth/refresh", "refreshToken", IDENTITY, "A new access token for a refresh token")
            .describe(
                "A refresh token works once and is answered with its successor. Presenting a used one again \
                 revokes its whole family (`refresh_reused`).",
            )
            .public()
            .body(true, "The refresh token.", json_content(schema("RefreshRequest")))
            .ok(200, "A new token pair.", Some(json_content(schema("Tokens"))), &[])
            .error(400, &["bad_json"], "The body is not `{\"refresh_token\": ...}`.")
            .error(401, &["refresh_reused", "invalid_refresh"], "A used, unknown, expired or revoked refresh token.")
            .standard(413)
            .standard(503),
        Op::post("/auth/logout", "logout", IDENTITY, "Log out")
            .describe(
                "Revokes the bearer token for as long as it could still be accepted (its expiry plus the verification \
                 leeway) and, given a refresh token, that token's whole family. An unknown refresh token is not an error.",
            )
            .bearer_only()
            .body(false, "The refresh token to revoke too.", json_content(schema("RefreshRequest")))
            .ok(204, "Logged out.", None, &[])
            .error(400, &["bad_json"], "The body is not `{\"refresh_token\": ...}`.")
            .standard(413),
        Op::post("/auth/verify", "verifyToken", IDENTITY, "Introspect an access token (RFC 7662 style)")
            .describe("`active: false` for a bad, expired or revoked token; the claims otherwise.")
            .public()
            .body(true, "The token.", json_content(schema("VerifyRequest")))
            .ok(200, "The token's state.", Some(json_content(schema("Introspection"))), &[])
            .error(400, &["bad_json"], "The body is not `{\"token\": ...}`.")
            .standard(413)
            .standard(503),
        Op::post("/api-keys", "createApiKey", IDENTITY, "Create an API key for a service client")
            .describe(
                "The key (`alpes_<id>_<secret>`) is shown this once; only its SHA-256 is kept. Sent as `X-API-Key`, \
                 it acts as `usuario_id` with `rol`.",
            )
            .auth(&["admin"])
            .body(true, "The key's name, role and user.", json_content(schema("ApiKeyRequest")))
            .ok(201, "Created.", Some(json_content(schema("ApiKeyCreated"))), &[])
            .error(400, &["bad_json"], "The body is not an API key request.")
            .standard(413)
            .error(422, &["bad_nombre", "bad_rol", "bad_usuario_id"], "A value is not acceptable."),
        Op::get("/api-keys", "listApiKeys", IDENTITY, "Every API key, without its secret")
            .auth(&["admin"])
            .ok(200, "The keys.", Some(json_content(schema("ApiKeys"))), &[]),
        Op::delete("/api-keys/{id}", "revokeApiKey", IDENTITY, "Revoke an API key")
            .describe("Requests with it are refused (401) at once.")
            .auth(&["admin"])
            .param(path("id", "The key's id (the part between `alpes_` and the next `_`)."))
            .ok(204, "Revoked.", None, &[])
            .standard(404),
        Op::get("/health", "health", PLATFORM, "The state of the broker, the store and the blobs")
            .public()
            .ok(200, "Everything is up.", Some(json_content(schema("Health"))), &[])
            .ok(503, "Something is down; the body says what.", Some(json_content(schema("Health"))), &[]),
        Op::get("/ready", "ready", PLATFORM, "Whether this process can serve: its dependencies answer and its consumers have joined")
            .public()
            .describe(
                "The readiness probe: 200 once the broker, the store and the blobs answer and every consumer \
                 group this process runs has its first assignment (before that, a user registered at once could \
                 read 404 for their own account). Route traffic on this, and use `/health` for liveness.",
            )
            .ok(200, "Ready.", Some(json_content(schema("Ready"))), &[])
            .ok(
                503,
                "Starting, or something is down; the body says what.",
                Some(json_content(schema("Ready"))),
                &[("Retry-After", response_header(json!({ "type": "integer" }), true, "Seconds to wait: 1."))],
            ),
        Op::get("/.well-known/jwks.json", "jwks", IDENTITY, "The public keys tokens are verified with")
            .public()
            .describe(
                "A JWK Set (RFC 7517): in EdDSA mode the signing key first, then every verification-only key; \
                 empty in HS256 mode. Never a private key. Cacheable for five minutes.",
            )
            .ok(
                200,
                "The key set.",
                Some(json_content(schema("Jwks"))),
                &[("Cache-Control", response_header(json!({ "type": "string" }), true, "`public, max-age=300`."))],
            ),
        Op::get("/metrics", "metrics", PLATFORM, "Prometheus metrics")
            .public()
            .describe("Requests and latency by route, consumer lag by partition, engine time, bytes in and out, rejections by reason, events produced.")
            .ok(
                200,
                "The Prometheus text exposition format 0.0.4.",
                Some(content("text/plain", json!({ "type": "string" }))),
                &[],
            ),
    ]
}

fn stow_op(p: &'static str, id: &str, summary: &str, extra: &str) -> Op {
    Op::post(p, id, DICOMWEB, summary)
        .describe(&format!(
            "PS3.18 §10.5. The body is `multipart/related; type=\"application/dicom\"; boundary=...` with one \
             DICOM instance per part. Each part is stored and registered like an upload. The answer lists the \
             stored instances (ReferencedSOPSequence, 0008,1199) and the failed ones (FailedSOPSequence, \
             0008,1198, with FailureReason `C000` for a part that is not DICOM). {extra}"
        ))
        .auth(&["proveedor", "admin"])
        .params(profile_params())
        .body(
            true,
            "DICOM instances, one per part.",
            binary_content(&["multipart/related; type=\"application/dicom\""]),
        )
        .response(200, stow_answer("Every instance was stored."))
        .response(202, stow_answer("Some instances were stored, some failed."))
        .response(409, stow_answer("No instance was stored."))
        .error(
            400,
            &["bad_multipart", "bad_profile"],
            "A malformed body (or no boundary), or a bad profile in the query.",
        )
        .standard(413)
        .standard(415)
}

fn string_enum(values: &[&str]) -> Value {
    json!({ "type": "string", "enum": values })
}

fn millis(description: &str) -> Value {
    json!({ "type": "integer", "format": "int64", "description": description })
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

/// An API key as listed, or as created (`with_key`: plus the key itself, shown that once).
fn api_key(roles: Value, with_key: bool) -> Value {
    let mut current = json!({
        "id": { "type": "string" },
        "nombre": { "type": "string" },
        "rol": roles,
        "usuario_id": { "type": "string" },
        "creada_por": { "type": "string" },
        "creada_at": millis("ms since the epoch."),
        "revocada_at": nullable(millis("ms since the epoch.")),
        "usada_at": nullable(millis("When it was last used (ms since the epoch); written at most once a minute.")),
    });
    if with_key {
        current["key"] = json!({ "type": "string", "pattern": "^alpes_[A-Za-z0-9]+_.+$", "description": "Shown this once." });
    }
    object_with_deprecated(
        current,
        json!({
            "created_by": { "type": "string" },
            "created_at": millis("ms since the epoch."),
            "revoked_at": nullable(millis("ms since the epoch.")),
            "last_used_at": nullable(millis("ms since the epoch.")),
        }),
    )
}

/// The answers derived from the types that write them.
#[derive(utoipa::OpenApi)]
#[openapi(components(schemas(
    crate::routes::upload::Aceptadas,
    crate::routes::reanonymize::SolicitudAceptada,
    crate::routes::pagar::PagoAceptado,
    crate::routes::usuarios::UsuarioCreado,
    crate::identity::Tokens,
)))]
struct Answers;

/// The request bodies derived from the types that read them.
#[derive(utoipa::OpenApi)]
#[openapi(components(schemas(
    crate::routes::reanonymize::Request,
    crate::routes::pagar::Request,
    crate::routes::usuarios::Request,
    crate::routes::auth_login::Request,
    crate::routes::auth_refresh::Request,
    crate::routes::auth_verify::Request,
    crate::routes::api_keys::Request,
)))]
struct Requests;

/// `retain` of a re-anonymization: the Retain options.
pub(crate) fn retain_options() -> Array {
    Array::new(enum_schema(&RETAIN_OPTIONS))
}

/// `no_clean` of a re-anonymization: the Clean options to switch off.
pub(crate) fn no_clean_options() -> Array {
    Array::new(enum_schema(&NO_CLEAN_OPTIONS))
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
            .item(enum_schema(&["default"]))
            .build(),
    )
    .into()
}

/// The media types an upload may have.
pub(crate) fn media_types() -> Object {
    enum_schema(&["application/dicom", "image/png", "image/jpeg"])
}

/// [`media_types`] under the name it replaced.
pub(crate) fn old_media_types() -> Object {
    marked_deprecated(media_types())
}

/// The bodies' schemas: derived ones first, then those with no Rust type of their own
/// (the multipart form, DICOM JSON, and the answers still written as JSON values).
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
    let roles = string_enum(&["proveedor", "consumidor", "admin"]);
    let uid = dicom_attribute("UI", json!({ "type": "string" }));
    let mut schemas = answer_schemas::<Answers>();
    let built = json!({
        "UploadForm": {
            "type": "object",
            "description": "Any number of file parts (a part with a filename or a content type other than text/plain), \
                            and the profile fields as text parts.",
            "required": ["file"],
            "properties": {
                "file": { "type": "array", "items": { "type": "string", "format": "binary" }, "minItems": 1 },
                "retain": { "type": "string", "description": "Retain options, comma-separated." },
                "no_clean": { "type": "string", "description": "Clean options to switch off, comma-separated." },
                "region": { "type": "string", "pattern": REGION_PATTERN },
                "rules": { "type": "string", "enum": ["default"] },
                "tipo_imagen": { "type": "string" },
                "region_anatomica": { "type": "string" },
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
        "Introspection": {
            "type": "object",
            "description": "`{\"active\": false}` alone for a bad, expired or revoked token.",
            "required": ["active"],
            "additionalProperties": false,
            "properties": {
                "active": { "type": "boolean" },
                "sub": { "type": "string" },
                "role": roles.clone(),
                "exp": { "type": "integer", "description": "Seconds since the epoch." },
                "iat": { "type": "integer", "description": "Seconds since the epoch." },
                "jti": nullable(json!({ "type": "string" })),
            },
        },
        "ApiKey": api_key(roles.clone(), false),
        "ApiKeyCreated": api_key(roles.clone(), true),
        "ApiKeys": {
            "type": "object",
            "required": ["api_keys"],
            "additionalProperties": false,
            "properties": { "api_keys": { "type": "array", "items": schema("ApiKey") } },
        },
        "ComponentState": {
            "type": "object",
            "required": ["status"],
            "additionalProperties": false,
            "properties": { "status": string_enum(&["up", "down"]), "error": { "type": "string" } },
        },
        "Jwks": jwks,
        "BlobsState": {
            "type": "object",
            "required": ["status", "store"],
            "additionalProperties": false,
            "properties": { "status": string_enum(&["up", "down"]), "store": { "type": "string" } },
        },
        "KafkaState": {
            "type": "object",
            "required": ["bootstrap", "mode", "schemas"],
            "additionalProperties": false,
            "properties": {
                "bootstrap": { "type": "string" },
                "mode": { "type": "string" },
                "schemas": string_enum(&["single-object", "schema-registry"]),
            },
        },
        "Health": {
            "type": "object",
            "required": ["status", "broker", "store", "blobs", "kafka", "version"],
            "additionalProperties": false,
            "properties": {
                "status": string_enum(&["up", "degraded"]),
                "broker": schema("ComponentState"),
                "store": schema("ComponentState"),
                "blobs": schema("BlobsState"),
                "kafka": schema("KafkaState"),
                "version": { "type": "string" },
            },
        },
        "Ready": {
            "type": "object",
            "required": ["status", "broker", "store", "blobs", "kafka", "version", "consumers"],
            "additionalProperties": false,
            "properties": {
                "status": string_enum(&["ready", "starting"]),
                "broker": schema("ComponentState"),
                "store": schema("ComponentState"),
                "blobs": schema("BlobsState"),
                "kafka": schema("KafkaState"),
                "version": { "type": "string" },
                "consumers": {
                    "type": "object",
                    "description": "Each consumer group this process runs, and whether all its members have joined.",
                    "additionalProperties": string_enum(&["joined", "joining"]),
                },
            },
        },
    });
    if let (Value::Object(all), Value::Object(requests), Value::Object(built)) = (&mut schemas, request_schemas::<Requests>(), built) {
        all.extend(requests);
        all.extend(built);
    }
    schemas
}

#[cfg(test)]
mod tests {
    use super::*;
    use alpes_platform::openapi::{assert_covers_routes, undeprecated, unresolved_refs};
    use std::collections::BTreeSet;

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
        assert_eq!(undeprecated(&document(), &old), Vec::<String>::new());
    }

    #[test]
    fn the_document_covers_every_route_of_the_router_and_nothing_else() {
        assert_covers_routes(&document(), &[include_str!("lib.rs"), include_str!("../../platform/src/probes.rs")]);
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
