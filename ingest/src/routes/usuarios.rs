//! `POST /usuarios`: creates an account. JSON body
//! `{"nombre": "...", "email": "...", "password": "...", "rol": "proveedor", "organizacion": "..."}`.
//!
//! Anyone may register a `proveedor` or `consumidor` account; only an admin
//! (bearer token) may create an `admin`. The email is unique (409
//! `email_taken`), the password meets the policy (422 `weak_password`) and is
//! stored only as its argon2id hash. The answer (201) and the
//! `UsuarioRegistrado` event carry no hash and no email.
//!
//! [`crate::identity::Identity::register`] stores and announces it.

use super::{json_body, role_named};
use crate::identity::NewUser;
use crate::openapi::IDENTITY;
use crate::IngestState;
use alpes_platform::audit::RequestContext;
use alpes_platform::auth::{Authenticated, Role};
use alpes_platform::http::ApiError;
use alpes_platform::openapi::{json_content, schema, Op};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// An account created.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = UserCreated)]
pub(crate) struct UsuarioCreado<'a> {
    id: &'a str,
    nombre: &'a str,
    rol: Role,
    organizacion: Option<&'a str>,
    /// The institution of a provider account, if it belongs to one.
    institucion_id: Option<&'a str>,
    /// ms since the epoch.
    creado_at: i64,
    // Deprecated names.
    #[schema(deprecated)]
    created_at: i64,
}

#[derive(Deserialize, ToSchema)]
#[schema(as = NewUser)]
#[serde(deny_unknown_fields)]
pub(crate) struct Request {
    #[schema(min_length = 1, max_length = 200)]
    nombre: String,
    #[schema(format = Email, max_length = 254)]
    email: String,
    /// At least 12 characters, at most 1,024 bytes; stored only as its argon2id hash.
    #[schema(min_length = 12)]
    password: String,
    #[schema(value_type = Role)]
    rol: String,
    #[serde(default)]
    #[schema(max_length = 200)]
    organizacion: Option<String>,
    /// The institution a `proveedor` account belongs to (admins only): its uploads are then the
    /// institution's, and its patients' consent decides which are offered.
    #[serde(default)]
    institucion_id: Option<String>,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request").field("rol", &self.rol).finish_non_exhaustive()
    }
}

/// The operation, as the document lists it.
pub fn op() -> Op {
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
        .error(404, &["not_found"], "`institucion_id` names no live institution.")
        .error(
            409,
            &["email_taken"],
            "An account with this email exists (emails compare trimmed and lower-case).",
        )
        .standard(413)
        .error(
            422,
            &[
                "bad_rol",
                "bad_nombre",
                "bad_email",
                "bad_organizacion",
                "weak_password",
                "bad_institucion",
            ],
            "A value is not acceptable; passwords need at least 12 characters; only a `proveedor` account joins an \
             institution, and only an admin makes it join.",
        )
        .standard(503)
}

/// The handler.
#[tracing::instrument(name = "POST /usuarios", skip_all)]
pub async fn handler(
    State(state): State<IngestState>,
    caller: Option<Authenticated>,
    ctx: RequestContext,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: Request = json_body(&body, 16 * 1024, "an account")?;
    let role = role_named(&req.rol)?;
    if role == Role::Admin {
        match &caller {
            None => return Err(ApiError::unauthorized("creating an admin needs an admin's bearer token")),
            Some(c) => c.require(&[Role::Admin])?,
        }
    }
    let institution = match req.institucion_id.as_deref().map(str::trim) {
        None => None,
        Some(id) => {
            if role != Role::Proveedor || caller.as_ref().is_none_or(|c| c.0.role != Role::Admin) {
                return Err(ApiError::unprocessable(
                    "bad_institucion",
                    "only an admin makes an account join an institution, and only a proveedor account",
                ));
            }
            Some(state.registry()?.live_institution(id).await?.id)
        }
    };
    let user = NewUser {
        nombre: req.nombre,
        email: req.email,
        password: req.password,
        role,
        organization: req.organizacion,
        created_by: caller.map(|c| c.0.user_id),
    };
    let stored = state.identity.register(&state.producer, user, ctx.request_id()).await?;
    ctx.target(&stored.user_id);
    if let Some(institution) = &institution {
        // Before the answer: the account's first upload is already the institution's. An account
        // that could not join is removed again: its uploads would escape the consent rule.
        if let Err(e) = state.registry()?.store.set_member(&stored.user_id, institution).await {
            state.identity.store.delete_account(&stored.user_id).await?;
            return Err(e.into());
        }
    }
    let body = UsuarioCreado {
        id: &stored.user_id,
        nombre: &stored.nombre,
        rol: stored.role,
        organizacion: stored.organization.as_deref(),
        institucion_id: institution.as_deref(),
        creado_at: stored.created_at,
        created_at: stored.created_at,
    };
    Ok((StatusCode::CREATED, axum::Json(body)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_debug_never_shows_the_password_or_email() {
        let r = Request {
            nombre: "Ana".into(),
            email: "ana@h.org".into(),
            password: "correct horse battery".into(),
            rol: "proveedor".into(),
            organizacion: None,
            institucion_id: None,
        };
        let shown = format!("{r:?}");
        assert!(!shown.contains("horse") && !shown.contains("ana@"), "{shown}");
    }
}
