//! The calling AE titles of the DICOM listener: `GET /dimse/aes` lists them (an admin every
//! one, a provider its own), and an admin only changes them: `PUT /dimse/aes/{ae}` with
//! `{"proveedor_id": "..."}` maps one to the provider whose images it sends
//! (replacing any mapping it had), `DELETE /dimse/aes/{ae}` removes one. The
//! listener reads them when an association arrives, so a change applies to
//! the next association. `--dimse-calling-ae` sets the same mappings at start.

use super::json_body;
use crate::openapi::DIMSE;
use crate::IngestState;
use alpes_domain::dimse::{ae_title, CallingAe};
use alpes_platform::audit::RequestContext;
use alpes_platform::auth::{Authenticated, Role};
use alpes_platform::http::ApiError;
use alpes_platform::openapi::{json_content, path, schema, Op};
use alpes_schemas::now_millis;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Which provider a calling AE title sends for.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = CallingAeRequest)]
#[serde(deny_unknown_fields)]
pub(crate) struct Request {
    /// The provider (user id) its images belong to.
    proveedor_id: String,
}

/// A calling AE title and its provider.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = CallingAe)]
pub(crate) struct TituloAe {
    /// The AE title (leading and trailing spaces are not part of it).
    titulo_ae: String,
    /// The provider its images belong to.
    proveedor_id: String,
    /// When the mapping was set, ms since the Unix epoch.
    actualizado_at: i64,
}

impl From<CallingAe> for TituloAe {
    fn from(a: CallingAe) -> Self {
        TituloAe {
            titulo_ae: a.ae_title,
            proveedor_id: a.provider_id,
            actualizado_at: a.updated_at,
        }
    }
}

/// Every calling AE title.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = CallingAes)]
pub(crate) struct TitulosAe {
    /// By AE title.
    titulos_ae: Vec<TituloAe>,
}

fn ae_param() -> serde_json::Value {
    path("ae", "The calling AE title: 1 to 16 printable ASCII characters, no backslash.")
}

fn parse_ae(ae: &str) -> Result<String, ApiError> {
    ae_title(ae).map_err(|e| ApiError::unprocessable("bad_ae_title", e.to_string()))
}

/// `GET /dimse/aes`.
pub fn list_op() -> Op {
    Op::get(
        "/dimse/aes",
        "listCallingAes",
        DIMSE,
        "List the calling AE titles of the DICOM listener",
    )
    .describe(
        "Each maps a calling AE title to the provider whose images it sends; any other calling AE is rejected at \
         association. A provider lists its own; an admin every one.",
    )
    .auth(&["admin", "proveedor"])
    .ok(200, "The mappings, by AE title.", Some(json_content(schema("CallingAes"))), &[])
}

/// `PUT /dimse/aes/{ae}`.
pub fn put_op() -> Op {
    Op::put("/dimse/aes/{ae}", "putCallingAe", DIMSE, "Map a calling AE title to a provider")
        .describe("Replaces any mapping the AE title had; the next association from it is admitted for that provider.")
        .auth(&["admin"])
        .param(ae_param())
        .body(true, "The provider.", json_content(schema("CallingAeRequest")))
        .ok(200, "Set.", Some(json_content(schema("CallingAe"))), &[])
        .error(400, &["bad_json"], "The body is not a provider.")
        .error(404, &["not_found"], "No account has this id.")
        .error(409, &["not_a_provider"], "The account is not a provider's.")
        .standard(413)
        .error(
            422,
            &["bad_ae_title"],
            "The AE title is empty, longer than 16 characters, or has a character an AE title cannot.",
        )
}

/// `DELETE /dimse/aes/{ae}`.
pub fn delete_op() -> Op {
    Op::delete("/dimse/aes/{ae}", "deleteCallingAe", DIMSE, "Remove a calling AE title")
        .describe("The next association from it is rejected. One under way finishes.")
        .auth(&["admin"])
        .param(ae_param())
        .ok(204, "Removed.", None, &[])
        .standard(404)
        .error(422, &["bad_ae_title"], "Not an AE title.")
}

/// `GET /dimse/aes`.
#[tracing::instrument(name = "GET /dimse/aes", skip_all, fields(user = %caller.user_id))]
pub async fn list(State(state): State<IngestState>, Authenticated(caller): Authenticated) -> Result<Response, ApiError> {
    caller.require(&[Role::Admin, Role::Proveedor])?;
    let titulos_ae = state
        .store
        .calling_aes()
        .await?
        .into_iter()
        .filter(|a| caller.is_admin_or(&a.provider_id))
        .map(TituloAe::from)
        .collect();
    Ok(axum::Json(TitulosAe { titulos_ae }).into_response())
}

/// `PUT /dimse/aes/{ae}`.
#[tracing::instrument(name = "PUT /dimse/aes/{ae}", skip_all, fields(user = %caller.user_id))]
pub async fn put(
    State(state): State<IngestState>,
    Authenticated(caller): Authenticated,
    ctx: RequestContext,
    Path(ae): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    caller.require(&[Role::Admin])?;
    let ae = parse_ae(&ae)?;
    let req: Request = json_body(&body, 4 * 1024, "calling AE mapping")?;
    let account = state.identity.store.account(req.proveedor_id.trim()).await?;
    let account = account.ok_or_else(|| ApiError::not_found("no account has this id"))?;
    if account.role != Role::Proveedor {
        return Err(ApiError::conflict(
            "not_a_provider",
            "only a provider's images can come from a calling AE title",
        ));
    }
    ctx.target(&ae);
    let now = now_millis();
    state.store.put_calling_ae(&ae, &account.user_id, now).await?;
    tracing::info!(ae_title = %ae, provider = %account.user_id, "calling AE title mapped");
    Ok(axum::Json(TituloAe::from(CallingAe {
        ae_title: ae,
        provider_id: account.user_id,
        updated_at: now,
    }))
    .into_response())
}

/// `DELETE /dimse/aes/{ae}`.
#[tracing::instrument(name = "DELETE /dimse/aes/{ae}", skip_all, fields(user = %caller.user_id))]
pub async fn delete(
    State(state): State<IngestState>,
    Authenticated(caller): Authenticated,
    ctx: RequestContext,
    Path(ae): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(&[Role::Admin])?;
    let ae = parse_ae(&ae)?;
    ctx.target(&ae);
    if !state.store.remove_calling_ae(&ae).await? {
        return Err(ApiError::not_found("no mapping for this calling AE title"));
    }
    tracing::info!(ae_title = %ae, "calling AE title removed");
    Ok(StatusCode::NO_CONTENT)
}
