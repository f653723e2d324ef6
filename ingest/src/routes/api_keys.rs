//! `/api-keys` (admin only): API keys for service clients (a PACS bridge, a
//! batch uploader). `POST` creates one: `{"nombre", "rol", "usuario_id"}` →
//! 201 with the key, shown this once (`alpes_<id>_<secret>`; only its SHA-256
//! is kept). The key acts as `usuario_id` with `rol`, sent as `X-API-Key`.
//! `GET` lists every key without its secret: id, name, role, user, creator,
//! created, revoked and last used.

use super::{json_body, role_named};
use crate::identity::random_token;
use crate::openapi::IDENTITY;
use crate::IngestState;
use alpes_platform::audit::RequestContext;
use alpes_platform::auth::{secret_hash, Authenticated, Role, API_KEY_PREFIX};
use alpes_platform::http::ApiError;
use alpes_platform::openapi::{json_content, schema, Op};
use alpes_platform::store::ApiKey;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = ApiKeyRequest)]
#[serde(deny_unknown_fields)]
pub(crate) struct Request {
    #[schema(min_length = 1, max_length = 200)]
    nombre: String,
    #[schema(value_type = Role)]
    rol: String,
    /// The user the key acts as.
    #[schema(pattern = "^[!-~]{1,128}$")]
    usuario_id: String,
}

/// A key as listed: everything but its hash, in the API's vocabulary, with the names before it
/// until [`alpes_platform::openapi::DEPRECATED_UNTIL`].
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ApiKey)]
pub(crate) struct Clave<'a> {
    id: &'a str,
    nombre: &'a str,
    rol: Role,
    usuario_id: &'a str,
    creada_por: &'a str,
    /// ms since the epoch.
    creada_at: i64,
    /// ms since the epoch.
    revocada_at: Option<i64>,
    /// When it was last used (ms since the epoch); written at most once a minute.
    usada_at: Option<i64>,
    // Deprecated names.
    #[schema(deprecated)]
    created_by: &'a str,
    #[schema(deprecated)]
    created_at: i64,
    #[schema(deprecated)]
    revoked_at: Option<i64>,
    #[schema(deprecated)]
    last_used_at: Option<i64>,
}

impl<'a> From<&'a ApiKey> for Clave<'a> {
    fn from(k: &'a ApiKey) -> Self {
        Clave {
            id: &k.key_id,
            nombre: &k.name,
            rol: k.role,
            usuario_id: &k.user_id,
            creada_por: &k.created_by,
            creada_at: k.created_at,
            revocada_at: k.revoked_at,
            usada_at: k.last_used_at,
            created_by: &k.created_by,
            created_at: k.created_at,
            revoked_at: k.revoked_at,
            last_used_at: k.last_used_at,
        }
    }
}

/// A key just created: the key itself is shown this once.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ApiKeyCreated)]
pub(crate) struct ClaveCreada<'a> {
    #[serde(flatten)]
    clave: Clave<'a>,
    /// Shown this once.
    #[schema(pattern = "^alpes_[A-Za-z0-9]+_.+$")]
    key: &'a str,
}

/// Every key, revoked ones included.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ApiKeys)]
pub(crate) struct Claves<'a> {
    api_keys: Vec<Clave<'a>>,
}

/// The operation, as the document lists it.
pub fn create_op() -> Op {
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
        .error(422, &["bad_nombre", "bad_rol", "bad_usuario_id"], "A value is not acceptable.")
}

/// `POST /api-keys`.
#[tracing::instrument(name = "POST /api-keys", skip_all, fields(user = %caller.user_id))]
pub async fn create(
    State(state): State<IngestState>,
    Authenticated(caller): Authenticated,
    ctx: RequestContext,
    body: Bytes,
) -> Result<Response, ApiError> {
    caller.require(&[Role::Admin])?;
    let req: Request = json_body(&body, 4 * 1024, "an API key request")?;
    if !alpes_domain::identity::acceptable_name(&req.nombre) {
        return Err(crate::identity::bad_nombre());
    }
    let name = req.nombre.trim();
    let role = role_named(&req.rol)?;
    let user_id = req.usuario_id.trim();
    if user_id.is_empty() || user_id.len() > 128 || !user_id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::unprocessable(
            "bad_usuario_id",
            "usuario_id must be 1 to 128 visible ASCII characters",
        ));
    }
    let id = random_token()?
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(16)
        .collect::<String>();
    let key = format!("{API_KEY_PREFIX}{id}_{}", random_token()?);
    let stored = ApiKey {
        key_id: id,
        key_hash: secret_hash(&key),
        role,
        user_id: user_id.to_owned(),
        name: name.to_owned(),
        created_by: caller.user_id.clone(),
        created_at: alpes_schemas::now_millis(),
        revoked_at: None,
        last_used_at: None,
    };
    state.identity.store.insert_api_key(stored.clone()).await?;
    ctx.target(&stored.key_id);
    tracing::info!(key_id = %stored.key_id, role = role.as_str(), for_user = %stored.user_id, "API key created");
    let body = ClaveCreada {
        clave: Clave::from(&stored),
        key: &key,
    };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// The operation, as the document lists it.
pub fn list_op() -> Op {
    Op::get("/api-keys", "listApiKeys", IDENTITY, "Every API key, without its secret")
        .auth(&["admin"])
        .ok(200, "The keys.", Some(json_content(schema("ApiKeys"))), &[])
}

/// `GET /api-keys`.
#[tracing::instrument(name = "GET /api-keys", skip_all, fields(user = %caller.user_id))]
pub async fn list(State(state): State<IngestState>, Authenticated(caller): Authenticated) -> Result<Response, ApiError> {
    caller.require(&[Role::Admin])?;
    let keys = state.identity.store.api_keys().await?;
    let body = Claves {
        api_keys: keys.iter().map(Clave::from).collect(),
    };
    Ok(Json(body).into_response())
}
