//! OpenAPI 3.1 documents: the parts every service's document shares, a small
//! builder for operations, and the two routes that serve a document.
//!
//! - Shared components: the `Error` schema (`{"error": code, "message": text}`),
//!   one response per error status (429 and 503 with `Retry-After`), the
//!   `X-Request-Id` header every answer carries, and the security schemes
//!   (`bearerAuth`, a JWT; `apiKey`, the `X-API-Key` header).
//! - [`Op`] builds one operation, and [`Routes`] (`routes.rs`) registers each
//!   route with its operation, so a service's router and its document come
//!   from one declaration; [`document`] turns a service's operations and
//!   schemas into its document; [`merge`] joins service documents into the
//!   one `alpes up` serves.
//! - [`router`]: `GET /openapi.json` (the document) and `GET /docs`, a
//!   self-contained page (no CDN, no outside font or script) that fetches the
//!   document and renders every route. It sets its own Content-Security-Policy,
//!   which lets in only its own inline style and script (by hash) and fetches
//!   to its own origin; the hardening middleware keeps a handler's own policy.
//! - [`answer_schemas`] and [`derived_schemas`]: the bodies' schemas, derived
//!   from the types that serialize and deserialize them (`answers.rs`).
//! - Checks the tests run: [`operations`] lists a document's,
//!   [`unresolved_refs`] finds dangling `$ref`s, [`undeprecated`] finds a
//!   replaced name not marked deprecated, and [`routes_in_source`] reads the
//!   `.route(...)` calls of the two routers built by hand (the document's
//!   own and the probes').

mod answers;
mod routes;

pub use answers::{
    answer_schemas, deprecated_of, derived_schemas, image_media_types, marked_deprecated, string_enum, undeprecated, IMAGE_MEDIA_TYPES,
};
pub use routes::Routes;

use crate::metrics::Metrics;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;
use std::sync::{Arc, LazyLock};

/// The OpenAPI version of every document.
pub const OPENAPI_VERSION: &str = "3.1.0";

/// Marks an operation documented before its route exists. Since [`Routes`]
/// declares each route with its operation, a service cannot document one
/// ahead of its handler any more; the mark remains for the checks that skip
/// such an operation (Schemathesis), and no operation carries it today.
pub const PENDING: &str = "x-alpes-pending";

/// The last day the API answers (and reads) the field names its one vocabulary replaced
/// (README, "API vocabulary"); the document marks them `deprecated`.
pub const DEPRECATED_UNTIL: &str = "2027-06-30";

/// Lists the roles an operation needs (absent: any authenticated caller).
pub const ROLES: &str = "x-alpes-roles";

/// The routes [`router`] registers, as `(METHOD, path)`.
pub const DOC_ROUTES: [(&str, &str); 2] = [("GET", "/openapi.json"), ("GET", "/docs")];

/// A `$ref` to the schema `name` under `components/schemas`.
pub fn schema(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// Marks a parameter deprecated (a name the vocabulary replaced).
pub fn deprecated_param(mut p: Value) -> Value {
    p["deprecated"] = Value::Bool(true);
    p
}

/// A content map with one media type.
pub fn content(media_type: &str, schema: Value) -> Value {
    json!({ media_type: { "schema": schema } })
}

/// `application/json` content.
pub fn json_content(schema: Value) -> Value {
    content("application/json", schema)
}

/// Binary content in each of `media_types`.
pub fn binary_content(media_types: &[&str]) -> Value {
    let mut m = Map::new();
    for t in media_types {
        m.insert((*t).to_owned(), json!({ "schema": { "type": "string", "format": "binary" } }));
    }
    Value::Object(m)
}

/// A query parameter.
pub fn query(name: &str, schema: Value, description: &str) -> Value {
    json!({ "name": name, "in": "query", "required": false, "schema": schema, "description": description })
}

/// A query parameter that may be repeated (`?k=a&k=b`).
pub fn query_list(name: &str, items: Value, description: &str) -> Value {
    json!({
        "name": name, "in": "query", "required": false, "style": "form", "explode": true,
        "schema": { "type": "array", "items": items }, "description": description,
    })
}

/// A path parameter (a non-empty string).
pub fn path(name: &str, description: &str) -> Value {
    json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string", "minLength": 1 }, "description": description })
}

/// An optional request header.
pub fn header_param(name: &str, schema: Value, description: &str) -> Value {
    json!({ "name": name, "in": "header", "required": false, "schema": schema, "description": description })
}

/// A response header (`required`: always sent with that response).
pub fn response_header(schema: Value, required: bool, description: &str) -> Value {
    json!({ "schema": schema, "required": required, "description": description })
}

/// The component response of an error `status`, e.g. `Unauthorized` for 401.
fn standard_response_name(status: u16) -> Option<&'static str> {
    Some(match status {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        406 => "NotAcceptable",
        409 => "Conflict",
        413 => "PayloadTooLarge",
        415 => "UnsupportedMediaType",
        416 => "RangeNotSatisfiable",
        422 => "UnprocessableEntity",
        429 => "TooManyRequests",
        503 => "ServiceUnavailable",
        _ => return None,
    })
}

/// An error body whose `error` is one of `codes` (any code when empty).
pub fn error_schema(codes: &[&str]) -> Value {
    if codes.is_empty() {
        return schema("Error");
    }
    json!({ "allOf": [schema("Error"), { "type": "object", "properties": { "error": { "type": "string", "enum": codes } } }] })
}

/// The `Retry-After` header of 429 and 503 answers.
fn retry_after() -> Value {
    json!({ "$ref": "#/components/headers/RetryAfter" })
}

/// An error response: the `Error` body restricted to `codes`, with
/// `Retry-After` for 429 and 503.
pub fn error_response(status: u16, codes: &[&str], description: &str) -> Value {
    let mut r = json!({ "description": description, "content": json_content(error_schema(codes)) });
    if status == 429 || status == 503 {
        r["headers"] = json!({ "Retry-After": retry_after() });
    }
    r
}

/// What every document shares under `components`.
fn shared_components() -> Value {
    let standard = |status: u16, codes: &[&str], description: &str| error_response(status, codes, description);
    json!({
        "schemas": {
            "Error": {
                "type": "object",
                "description": "Every error answer. `error` is a stable machine-readable code, `message` a human-readable \
                                explanation that never carries PHI, and for a 5xx never internals.",
                "required": ["error", "message"],
                "additionalProperties": false,
                "properties": {
                    "error": { "type": "string", "description": "A stable code, e.g. `bad_json` or `unauthorized`." },
                    "message": { "type": "string" },
                },
            },
        },
        "responses": {
            "BadRequest": standard(400, &[], "The request cannot be understood."),
            "Unauthorized": standard(
                401,
                &["unauthorized", "two_credentials", "unknown_subject"],
                "No credentials, or a bad, expired or revoked bearer token or API key (`unauthorized`); a bearer \
                 token and an API key together (`two_credentials`); a token whose `sub` names no account of its role \
                 (`unknown_subject`).",
            ),
            "Forbidden": standard(403, &["forbidden"], "Authenticated, but the caller's role (or identity) may not do this."),
            "NotFound": standard(404, &["not_found"], "Nothing by that id that the caller may see."),
            "NotAcceptable": standard(406, &["not_acceptable"], "The `Accept` header allows no media type this route answers in."),
            "Conflict": standard(409, &[], "The request conflicts with the resource's state."),
            "PayloadTooLarge": standard(413, &["payload_too_large"], "The body is larger than the route's limit."),
            "UnsupportedMediaType": standard(415, &["unsupported_media_type"], "A media type this route does not take."),
            "RangeNotSatisfiable": standard(416, &["range_not_satisfiable"], "The `Range` is outside the resource."),
            "UnprocessableEntity": standard(422, &[], "Well-formed, but a value is not acceptable."),
            "TooManyRequests": standard(429, &[], "Too many requests (or attempts) for now; retry after `Retry-After` seconds."),
            "ServiceUnavailable": standard(503, &["unavailable"], "A dependency (the event broker, the store, the blob store) is down; retry after `Retry-After` seconds."),
        },
        "headers": {
            "RequestId": {
                "description": "The request's id: the client's `X-Request-Id` when it is 1 to 128 characters of \
                                `[A-Za-z0-9._:-]`, else a new UUID. Every log line of the request carries it.",
                "required": true,
                "schema": { "type": "string", "pattern": "^[A-Za-z0-9._:-]{1,128}$" },
            },
            "RetryAfter": {
                "description": "Seconds to wait before retrying.",
                "required": true,
                "schema": { "type": "integer", "minimum": 0 },
            },
        },
        "securitySchemes": {
            "bearerAuth": {
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": "JWT",
                "description": "`Authorization: Bearer <JWT>`: an HS256 access token from `POST /auth/login` \
                                (or `alpes token`), verified locally; refused once logged out.",
            },
            "apiKey": {
                "type": "apiKey",
                "in": "header",
                "name": "X-API-Key",
                "description": "`X-API-Key: alpes_<id>_<secret>`, made by an admin with `POST /api-keys`; \
                                acts as its user with its role until revoked.",
            },
        },
    })
}

/// One operation: a method on a path, with its parameters, body, responses
/// and security.
#[derive(Debug, Clone)]
pub struct Op {
    method: &'static str,
    path: &'static str,
    op: Map<String, Value>,
}

impl Op {
    /// An operation `id` under `tag`, with a one-line `summary`.
    fn new(method: &'static str, path: &'static str, id: &str, tag: &str, summary: &str) -> Op {
        let mut op = Map::new();
        op.insert("operationId".into(), json!(id));
        op.insert("tags".into(), json!([tag]));
        op.insert("summary".into(), json!(summary));
        op.insert("parameters".into(), json!([]));
        op.insert("responses".into(), json!({}));
        Op { method, path, op }
    }

    /// `GET path`.
    pub fn get(path: &'static str, id: &str, tag: &str, summary: &str) -> Op {
        Op::new("get", path, id, tag, summary)
    }

    /// `POST path`.
    pub fn post(path: &'static str, id: &str, tag: &str, summary: &str) -> Op {
        Op::new("post", path, id, tag, summary)
    }

    /// `PUT path`.
    pub fn put(path: &'static str, id: &str, tag: &str, summary: &str) -> Op {
        Op::new("put", path, id, tag, summary)
    }

    /// `DELETE path`.
    pub fn delete(path: &'static str, id: &str, tag: &str, summary: &str) -> Op {
        Op::new("delete", path, id, tag, summary)
    }

    /// The method, lower-case.
    pub fn method(&self) -> &'static str {
        self.method
    }

    /// The path template.
    pub fn path(&self) -> &'static str {
        self.path
    }

    /// What [`Routes`] routes to it.
    fn method_filter(&self) -> axum::routing::MethodFilter {
        match self.method {
            "post" => axum::routing::MethodFilter::POST,
            "put" => axum::routing::MethodFilter::PUT,
            "delete" => axum::routing::MethodFilter::DELETE,
            _ => axum::routing::MethodFilter::GET,
        }
    }

    /// A longer description (CommonMark).
    pub fn describe(mut self, text: &str) -> Op {
        self.op.insert("description".into(), json!(text));
        self
    }

    /// No credentials needed (any sent are ignored).
    pub fn public(mut self) -> Op {
        self.op.insert("security".into(), json!([]));
        self
    }

    /// Needs a bearer token or an API key of one of `roles` (any role when
    /// empty): 401 without, 403 with another role, and, like every
    /// authenticated route, 429 past the caller's rate limit and 503 when the
    /// store behind the credential check is down.
    pub fn auth(mut self, roles: &[&str]) -> Op {
        self.op.insert("security".into(), json!([{ "bearerAuth": [] }, { "apiKey": [] }]));
        self.authenticated(roles)
    }

    /// Needs a bearer token (an API key is not taken).
    pub fn bearer_only(mut self) -> Op {
        self.op.insert("security".into(), json!([{ "bearerAuth": [] }]));
        self.authenticated(&[])
    }

    /// Anyone may call it; a caller who sends credentials is identified by them
    /// (a bad credential is 401).
    pub fn optional_auth(mut self) -> Op {
        self.op
            .insert("security".into(), json!([{}, { "bearerAuth": [] }, { "apiKey": [] }]));
        self.standard(401).standard(429)
    }

    fn authenticated(mut self, roles: &[&str]) -> Op {
        if !roles.is_empty() {
            self.op.insert(ROLES.into(), json!(roles));
            self = self.standard(403);
        }
        self.standard(401).standard(429).standard(503)
    }

    /// A route whose caller acts for an institution: 403 is `forbidden` (another role),
    /// `no_institution` (a provider of none) or `doctor_inactive` (a suspended, retired or deleted
    /// doctor).
    pub fn institution_scoped(self) -> Op {
        self.error(
            403,
            &["forbidden", "no_institution", "doctor_inactive"],
            "Another role, a provider of no institution, or a doctor who is not active.",
        )
    }

    /// Documented ahead of its route (see [`PENDING`]).
    pub fn pending(mut self) -> Op {
        self.op.insert(PENDING.into(), Value::Bool(true));
        self
    }

    /// Adds `P`'s fields as query parameters, derived from the type the
    /// handler reads its query string into (`#[derive(IntoParams)]`): the
    /// names, the doc comments as descriptions, the types and constraints.
    pub fn query_params<P: utoipa::IntoParams>(mut self) -> Op {
        let query = || Some(utoipa::openapi::path::ParameterIn::Query);
        for p in P::into_params(query) {
            self = self.param(serde_json::to_value(p).unwrap_or(Value::Null));
        }
        self
    }

    /// Adds a parameter.
    pub fn param(mut self, p: Value) -> Op {
        if let Some(Value::Array(ps)) = self.op.get_mut("parameters") {
            ps.push(p);
        }
        self
    }

    /// Adds parameters.
    pub fn params(self, ps: impl IntoIterator<Item = Value>) -> Op {
        ps.into_iter().fold(self, Op::param)
    }

    /// The request body.
    pub fn body(mut self, required: bool, description: &str, content: Value) -> Op {
        self.op.insert(
            "requestBody".into(),
            json!({ "required": required, "description": description, "content": content }),
        );
        self
    }

    /// A response for `status`.
    pub fn response(mut self, status: u16, response: Value) -> Op {
        if let Some(Value::Object(rs)) = self.op.get_mut("responses") {
            rs.insert(status.to_string(), response);
        }
        self
    }

    /// A success response with an optional body and headers.
    pub fn ok(self, status: u16, description: &str, content: Option<Value>, headers: &[(&str, Value)]) -> Op {
        let mut r = json!({ "description": description });
        if let Some(c) = content {
            r["content"] = c;
        }
        if !headers.is_empty() {
            r["headers"] = Value::Object(headers.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect());
        }
        self.response(status, r)
    }

    /// An error response whose code is one of `codes`.
    pub fn error(self, status: u16, codes: &[&str], description: &str) -> Op {
        self.response(status, error_response(status, codes, description))
    }

    /// The shared response of an error `status` (see the components).
    pub fn standard(self, status: u16) -> Op {
        let name = standard_response_name(status).unwrap_or("BadRequest");
        self.response(status, json!({ "$ref": format!("#/components/responses/{name}") }))
    }

    /// The operation object. Every route but the document's own goes through
    /// [`crate::limits`], so each also documents 429 (its caller's rate), 503
    /// (its time limit) and, with a body, 413 (the body limit).
    pub fn into_value(mut self) -> Value {
        if !DOC_ROUTES.iter().any(|(_, p)| *p == self.path) {
            let has = |op: &Op, status: &str| op.op.get("responses").is_some_and(|r| r.get(status).is_some());
            for (status, needed) in [(429, true), (503, true), (413, self.op.contains_key("requestBody"))] {
                if needed && !has(&self, &status.to_string()) {
                    self = self.standard(status);
                }
            }
        }
        if let Some(Value::Object(rs)) = self.op.get_mut("responses") {
            let mut sorted: Vec<(String, Value)> = std::mem::take(rs).into_iter().collect();
            sorted.sort_by(|a, b| a.0.cmp(&b.0));
            rs.extend(sorted);
        }
        if self.op.get("parameters").is_some_and(|p| p.as_array().is_some_and(Vec::is_empty)) {
            self.op.remove("parameters");
        }
        Value::Object(self.op)
    }
}

/// The operations of [`router`]: each service's document lists them, as each
/// service's router serves them.
pub fn doc_operations() -> Vec<Op> {
    vec![
        Op::get("/openapi.json", "getOpenApi", "platform", "This OpenAPI document")
            .public()
            .ok(
                200,
                "The OpenAPI 3.1 document of every route served here.",
                Some(json_content(json!({ "type": "object" }))),
                &[],
            ),
        Op::get("/docs", "getDocs", "platform", "The API reference page")
            .public()
            .describe("A self-contained HTML page (no outside script, style or font) that fetches `/openapi.json` and renders it.")
            .ok(200, "The page.", Some(content("text/html", json!({ "type": "string" }))), &[]),
    ]
}

/// A service's document: `ops` grouped by path, `schemas` beside the shared
/// components, and `X-Request-Id` on every response.
pub fn document(title: &str, description: &str, ops: Vec<Op>, schemas: Value) -> Value {
    let mut paths = Map::new();
    let mut tags: Vec<String> = Vec::new();
    for op in ops {
        let (method, path) = (op.method, op.path);
        let value = op.into_value();
        for t in value["tags"].as_array().into_iter().flatten().filter_map(Value::as_str) {
            if !tags.iter().any(|x| x == t) {
                tags.push(t.to_owned());
            }
        }
        let item = paths.entry(path.to_owned()).or_insert_with(|| json!({}));
        item[method] = value;
    }
    let mut components = shared_components();
    if let (Some(Value::Object(all)), Value::Object(own)) = (components.get_mut("schemas"), schemas) {
        all.extend(own);
    }
    let mut doc = json!({
        "openapi": OPENAPI_VERSION,
        "info": { "title": title, "version": env!("CARGO_PKG_VERSION"), "description": description },
        "tags": tags.iter().map(|t| json!({ "name": t })).collect::<Vec<_>>(),
        "paths": paths,
        "components": components,
    });
    with_request_id(&mut doc);
    doc
}

/// Adds the `X-Request-Id` header to every response object that is not a `$ref`.
fn with_request_id(doc: &mut Value) {
    let add = |r: &mut Value| {
        if r.get("$ref").is_none() {
            let headers = r.as_object_mut().map(|o| o.entry("headers").or_insert_with(|| json!({})));
            if let Some(Value::Object(h)) = headers {
                h.insert("X-Request-Id".into(), json!({ "$ref": "#/components/headers/RequestId" }));
            }
        }
    };
    if let Some(Value::Object(paths)) = doc.get_mut("paths") {
        for item in paths.values_mut() {
            for op in item.as_object_mut().into_iter().flat_map(|m| m.values_mut()) {
                if let Some(Value::Object(rs)) = op.get_mut("responses") {
                    rs.values_mut().for_each(add);
                }
            }
        }
    }
    if let Some(Value::Object(rs)) = doc.pointer_mut("/components/responses") {
        rs.values_mut().for_each(add);
    }
}

/// Joins service documents into one titled `title`. An operation or component
/// defined twice must be the same both times.
pub fn merge(title: &str, description: &str, docs: &[Value]) -> Result<Value, String> {
    let mut paths = Map::new();
    let mut components: Map<String, Value> = Map::new();
    let mut tags: Vec<Value> = Vec::new();
    for doc in docs {
        for (path, item) in doc["paths"].as_object().into_iter().flatten() {
            let merged = paths.entry(path.clone()).or_insert_with(|| json!({}));
            for (method, op) in item.as_object().into_iter().flatten() {
                match merged.get(method) {
                    Some(existing) if existing != op => {
                        return Err(format!("{} {path} is defined twice, differently", method.to_uppercase()))
                    }
                    _ => merged[method.as_str()] = op.clone(),
                }
            }
        }
        for (kind, entries) in doc["components"].as_object().into_iter().flatten() {
            let all = components.entry(kind.clone()).or_insert_with(|| json!({}));
            for (name, value) in entries.as_object().into_iter().flatten() {
                match all.get(name) {
                    Some(existing) if existing != value => return Err(format!("components/{kind}/{name} is defined twice, differently")),
                    _ => all[name.as_str()] = value.clone(),
                }
            }
        }
        for t in doc["tags"].as_array().into_iter().flatten() {
            if !tags.contains(t) {
                tags.push(t.clone());
            }
        }
    }
    Ok(json!({
        "openapi": OPENAPI_VERSION,
        "info": { "title": title, "version": env!("CARGO_PKG_VERSION"), "description": description },
        "tags": tags,
        "paths": paths,
        "components": components,
    }))
}

/// Every `(METHOD, path)` of a document, and whether it is marked [`PENDING`].
pub fn operations(doc: &Value) -> BTreeSet<(String, String, bool)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for (method, op) in item.as_object().into_iter().flatten() {
            let pending = op.get(PENDING).and_then(Value::as_bool).unwrap_or(false);
            out.insert((method.to_uppercase(), path.clone(), pending));
        }
    }
    out
}

/// Every `$ref` in `doc` that does not point at something in it.
pub fn unresolved_refs(doc: &Value) -> Vec<String> {
    fn walk(v: &Value, doc: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    let found = r.strip_prefix('#').is_some_and(|p| doc.pointer(p).is_some());
                    if !found {
                        out.push(r.clone());
                    }
                }
                m.values().for_each(|x| walk(x, doc, out));
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, doc, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(doc, doc, &mut out);
    out
}

const METHODS: [&str; 8] = ["get", "post", "put", "delete", "patch", "head", "options", "trace"];

/// The `(METHOD, path)` pairs of every `.route("path", method(..).method(..))`
/// call in a router's Rust source, whatever its line breaks. Line comments are
/// skipped. A source that routes some other way (`.nest`, `.route_service`,
/// `any`, `on`) is an error, so that a check built on this cannot pass by
/// missing routes.
pub fn routes_in_source(src: &str) -> Result<BTreeSet<(String, String)>, String> {
    let code: String = src.lines().map(strip_line_comment).collect::<Vec<_>>().join("\n");
    for unsupported in [".nest(", ".nest_service(", ".route_service(", ".fallback("] {
        if code.contains(unsupported) {
            return Err(format!("the router uses `{unsupported}`, which this reader does not follow"));
        }
    }
    let mut out = BTreeSet::new();
    let bytes = code.as_bytes();
    let mut from = 0;
    while let Some(at) = code[from..].find(".route(") {
        let start = from + at + ".route(".len();
        // The arguments: up to the parenthesis that closes `.route(`.
        let mut depth = 1usize;
        let mut end = start;
        let mut in_str = false;
        while end < bytes.len() && depth > 0 {
            match bytes[end] {
                b'"' if !(in_str && bytes[end - 1] == b'\\') => in_str = !in_str,
                b'(' if !in_str => depth += 1,
                b')' if !in_str => depth -= 1,
                _ => {}
            }
            end += 1;
        }
        if depth != 0 {
            return Err(format!("unbalanced `.route(` at byte {}", from + at));
        }
        let args = &code[start..end - 1];
        let path = args
            .trim_start()
            .strip_prefix('"')
            .and_then(|s| s.split_once('"'))
            .map(|(p, _)| p.to_owned())
            .ok_or_else(|| format!("a `.route(` whose first argument is not a string literal: {}", args.trim()))?;
        let methods = top_level_methods(&args[args.find(',').unwrap_or(args.len())..]);
        if methods.is_empty() {
            return Err(format!("`.route(\"{path}\", ...)` names no method this reader knows"));
        }
        for m in methods {
            out.insert((m.to_uppercase(), path.clone()));
        }
        from = end;
    }
    Ok(out)
}

/// `line` without a trailing `//` comment (one outside a string literal).
fn strip_line_comment(line: &str) -> &str {
    let mut in_str = false;
    let b = line.as_bytes();
    for i in 0..b.len() {
        match b[i] {
            b'"' if i == 0 || b[i - 1] != b'\\' => in_str = !in_str,
            b'/' if !in_str && b.get(i + 1) == Some(&b'/') => return &line[..i],
            _ => {}
        }
    }
    line
}

/// The method-router calls at the top level of a `.route` call's second
/// argument: `get(`, `post(`, `axum::routing::delete(`, `.get(` in a chain.
fn top_level_methods(args: &str) -> Vec<&'static str> {
    let b = args.as_bytes();
    let mut depth = 0usize;
    let mut found = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'(' => depth += 1,
            b')' => depth = depth.saturating_sub(1),
            c if depth == 0 && c.is_ascii_alphabetic() && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_')) => {
                let word_end = (i..b.len())
                    .find(|&j| !(b[j].is_ascii_alphanumeric() || b[j] == b'_'))
                    .unwrap_or(b.len());
                let word = &args[i..word_end];
                if b.get(word_end) == Some(&b'(') {
                    if let Some(m) = METHODS.iter().find(|m| **m == word) {
                        found.push(*m);
                    }
                }
                i = word_end;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    found
}

/// The docs page with its style and script inlined, and the
/// Content-Security-Policy that lets in exactly those two.
struct DocsPage {
    html: String,
    csp: String,
}

static DOCS_PAGE: LazyLock<DocsPage> = LazyLock::new(|| {
    let style = include_str!("openapi/docs.css");
    let script = include_str!("openapi/docs.js");
    let html = include_str!("openapi/docs.html")
        .replace("/*STYLE*/", style)
        .replace("/*SCRIPT*/", script);
    let csp = format!(
        "default-src 'none'; script-src '{}'; style-src '{}'; connect-src 'self'; img-src 'self' data:; \
         base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        csp_hash(script),
        csp_hash(style)
    );
    DocsPage { html, csp }
});

/// A CSP source for an inline block: `sha256-` and its base64 digest.
fn csp_hash(text: &str) -> String {
    use base64::Engine;
    use sha2::{Digest, Sha256};
    format!(
        "sha256-{}",
        base64::engine::general_purpose::STANDARD.encode(Sha256::digest(text.as_bytes()))
    )
}

async fn docs_page() -> Response {
    let page = &*DOCS_PAGE;
    let mut res = (
        [(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"))],
        page.html.clone(),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&page.csp) {
        res.headers_mut().insert(header::CONTENT_SECURITY_POLICY, v);
    }
    res
}

/// `GET /openapi.json` (`doc`) and `GET /docs`, with the request id, security
/// headers and request metrics of every other route.
pub fn router(doc: &Value, metrics: Arc<Metrics>) -> Router {
    let body = bytes::Bytes::from(serde_json::to_vec(doc).unwrap_or_default());
    Router::new()
        .route(
            "/openapi.json",
            get(move || {
                let body = body.clone();
                async move { ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body) }
            }),
        )
        .route("/docs", get(docs_page))
        .layer(axum::middleware::from_fn_with_state(metrics, crate::metrics::track))
        .layer(axum::middleware::from_fn(crate::hardening::harden))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use tower::ServiceExt;

    fn set(pairs: &[(&str, &str)]) -> BTreeSet<(String, String)> {
        pairs.iter().map(|(m, p)| ((*m).to_owned(), (*p).to_owned())).collect()
    }

    #[test]
    fn routes_are_read_from_source_whatever_the_formatting() {
        let src = r#"
            // .route("/commented", get(x))
            Router::new()
                .route("/a", post(routes::a::handler))
                .route("/b", post(routes::b::create).get(routes::b::list))
                .route("/c/{id}", axum::routing::delete(routes::c::handler))
                .route(
                    "/d/{x}/metadata",
                    get(metadata::handler),
                )
                .route("/e", get(wrap(handler_named_post)))
                .layer(foo)
        "#;
        let found = routes_in_source(src).expect("reads");
        assert_eq!(
            found,
            set(&[
                ("POST", "/a"),
                ("POST", "/b"),
                ("GET", "/b"),
                ("DELETE", "/c/{id}"),
                ("GET", "/d/{x}/metadata"),
                ("GET", "/e"),
            ])
        );
    }

    #[test]
    fn a_router_built_some_other_way_is_refused_rather_than_half_read() {
        assert!(routes_in_source(r#"Router::new().nest("/x", other)"#).is_err());
        assert!(routes_in_source(r#"Router::new().route("/x", any(h))"#).is_err());
        assert!(routes_in_source(r#"Router::new().route(PATH, get(h))"#).is_err());
    }

    #[test]
    fn the_doc_routes_constant_is_what_the_router_registers() {
        let code = include_str!("openapi.rs").split("#[cfg(test)]").next().expect("code");
        let router_fn = code.split("pub fn router(").nth(1).expect("the router function");
        let found = routes_in_source(router_fn).expect("reads");
        assert_eq!(found, set(&DOC_ROUTES));
        let documented: BTreeSet<(String, String)> = doc_operations()
            .iter()
            .map(|o| (o.method().to_uppercase(), o.path().to_owned()))
            .collect();
        assert_eq!(documented, set(&DOC_ROUTES));
    }

    #[test]
    fn a_document_resolves_every_ref_and_tags_every_response_with_the_request_id() {
        let ops = vec![
            Op::get("/x/{id}", "getX", "things", "One thing")
                .auth(&["admin"])
                .param(path("id", "The id."))
                .ok(200, "The thing.", Some(json_content(schema("Thing"))), &[])
                .error(400, &["bad_id"], "A bad id."),
            Op::post("/x", "postX", "things", "Make one").optional_auth().standard(422),
        ];
        let doc = document("T", "d", ops, json!({ "Thing": { "type": "object" } }));
        assert_eq!(unresolved_refs(&doc), Vec::<String>::new());
        assert_eq!(
            doc["paths"]["/x/{id}"]["get"]["responses"]["200"]["headers"]["X-Request-Id"]["$ref"],
            "#/components/headers/RequestId"
        );
        assert_eq!(doc["paths"]["/x/{id}"]["get"][ROLES], json!(["admin"]));
        let statuses: Vec<&String> = doc["paths"]["/x/{id}"]["get"]["responses"]
            .as_object()
            .expect("map")
            .keys()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        assert_eq!(statuses, ["200", "400", "401", "403", "429", "503"]);
        assert!(doc["components"]["responses"]["TooManyRequests"]["headers"]["Retry-After"].is_object());
        let mut broken = doc.clone();
        broken["paths"]["/x"]["post"]["responses"]["200"] = json!({ "$ref": "#/components/responses/Nope" });
        assert_eq!(unresolved_refs(&broken), vec!["#/components/responses/Nope".to_owned()]);
    }

    #[test]
    fn merging_joins_paths_and_refuses_a_conflicting_definition() {
        let a = document(
            "A",
            "",
            vec![Op::get("/p", "getP", "t", "get").public()],
            json!({ "S": { "type": "string" } }),
        );
        let b = document(
            "B",
            "",
            vec![Op::post("/p", "postP", "t", "post").public()],
            json!({ "S": { "type": "string" } }),
        );
        let m = merge("M", "", &[a.clone(), b]).expect("merges");
        assert_eq!(
            operations(&m),
            [
                ("GET".to_owned(), "/p".to_owned(), false),
                ("POST".to_owned(), "/p".to_owned(), false)
            ]
            .into()
        );
        let c = document("C", "", vec![], json!({ "S": { "type": "integer" } }));
        assert!(merge("M", "", &[a, c]).expect_err("conflict").contains("components/schemas/S"));
    }

    #[tokio::test]
    async fn the_docs_page_is_self_contained_and_allows_only_its_own_inline_code() {
        let app = router(&json!({ "openapi": OPENAPI_VERSION }), Arc::new(Metrics::new()));
        let res = app
            .clone()
            .oneshot(axum::http::Request::builder().uri("/docs").body(Body::empty()).expect("request"))
            .await
            .expect("answer");
        assert_eq!(res.status(), 200);
        let csp = res.headers()[header::CONTENT_SECURITY_POLICY].to_str().expect("ascii").to_owned();
        assert!(res.headers().contains_key("x-request-id"));
        let html = String::from_utf8(axum::body::to_bytes(res.into_body(), 1 << 20).await.expect("body").to_vec()).expect("utf8");
        let script = include_str!("openapi/docs.js");
        assert!(html.contains(script) && csp.contains(&csp_hash(script)), "{csp}");
        assert!(csp.contains(&csp_hash(include_str!("openapi/docs.css"))));
        assert!(csp.starts_with("default-src 'none'") && csp.contains("connect-src 'self'"));
        assert!(!csp.contains("unsafe-inline"));
        for outside in ["http://", "https://", "src=\"//", "href=\"//", "@import"] {
            assert!(!html.contains(outside), "the page must load nothing from outside: {outside}");
        }
        let res = app
            .oneshot(
                axum::http::Request::builder()
                    .uri("/openapi.json")
                    .body(Body::empty())
                    .expect("request"),
            )
            .await
            .expect("answer");
        assert_eq!(res.headers()[header::CONTENT_TYPE], "application/json");
        let body = axum::body::to_bytes(res.into_body(), 1 << 20).await.expect("body");
        assert_eq!(serde_json::from_slice::<Value>(&body).expect("json")["openapi"], OPENAPI_VERSION);
    }
}
