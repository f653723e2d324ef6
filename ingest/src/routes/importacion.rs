//! `GET /importaciones/{id}`: one import job, with its counts, the images it
//! created or matched and its failed items with their reasons; and
//! `POST /importaciones/{id}/cancelar`, which cancels it: no new item starts,
//! those under way are dropped, images already imported stay.

use crate::imports::{view, visible};
use crate::openapi::IMPORTS;
use crate::IngestState;
use alpes_domain::import::ImportState;
use alpes_platform::audit::RequestContext;
use alpes_platform::auth::{Authenticated, Role};
use alpes_platform::http::ApiError;
use alpes_platform::openapi::{json_content, path, schema, Op};
use alpes_schemas::now_millis;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};

fn id_param() -> serde_json::Value {
    path("id", "The job id.")
}

/// `GET /importaciones/{id}`.
pub fn op() -> Op {
    Op::get("/importaciones/{id}", "getImport", IMPORTS, "One import job")
        .describe("Its state, counts, timings, the images it created or matched, and each failed item with its reason.")
        .auth(&["proveedor", "admin"])
        .param(id_param())
        .ok(200, "The job.", Some(json_content(schema("Import"))), &[])
        .standard(404)
}

/// `POST /importaciones/{id}/cancelar`.
pub fn cancel_op() -> Op {
    Op::post("/importaciones/{id}/cancelar", "cancelImport", IMPORTS, "Cancel an import job")
        .describe(
            "A pending job never starts; a running one starts no new item and drops those under way (within a \
             second). Images it already imported stay.",
        )
        .auth(&["proveedor", "admin"])
        .param(id_param())
        .ok(
            200,
            "Cancelled; `estado` is `cancelled`.",
            Some(json_content(schema("Import"))),
            &[],
        )
        .standard(404)
        .error(409, &["already_finished"], "The job has ended already.")
}

/// `GET /importaciones/{id}`.
#[tracing::instrument(name = "GET /importaciones/{id}", skip_all, fields(user = %caller.user_id))]
pub async fn handler(
    State(state): State<IngestState>,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(&[Role::Proveedor, Role::Admin])?;
    let job = visible(&caller, state.imports.job(&id).await?)?;
    let items = state.imports.items(&job.job_id).await?;
    Ok(axum::Json(view(&job, &items, true, now_millis())).into_response())
}

/// `POST /importaciones/{id}/cancelar`.
#[tracing::instrument(name = "POST /importaciones/{id}/cancelar", skip_all, fields(user = %caller.user_id))]
pub async fn cancel(
    State(state): State<IngestState>,
    Authenticated(caller): Authenticated,
    ctx: RequestContext,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(&[Role::Proveedor, Role::Admin])?;
    let job = visible(&caller, state.imports.job(&id).await?)?;
    ctx.target(&job.job_id);
    let why = format!("cancelled by {}", caller.user_id);
    if !state
        .imports
        .transition(&job.job_id, ImportState::Cancelled, Some(&why), now_millis())
        .await?
    {
        return Err(ApiError::conflict("already_finished", "the job has ended already"));
    }
    state.metrics.import_jobs.with_label_values(&["cancelled"]).inc();
    tracing::info!(job = %job.job_id, "import job cancelled");
    let job = visible(&caller, state.imports.job(&id).await?)?;
    let items = state.imports.items(&job.job_id).await?;
    Ok(axum::Json(view(&job, &items, true, now_millis())).into_response())
}
