//! `POST /importaciones` asks for an import job (a provider for itself, an
//! admin for the provider `?proveedor_id=` names); `GET /importaciones` lists
//! jobs, newest first (a provider its own, an admin every provider's or one's).
//!
//! A job is stored `pending`, then announced (`ImportacionSolicitada`, keyed by
//! its id) for the importers; if the broker does not acknowledge, the job is
//! ended `failed` ("not announced") and the answer is 503.

use crate::imports::{view, visible, Importacion};
use crate::openapi::IMPORTS;
use crate::IngestState;
use alpes_domain::import::{ImportJob, ImportSpec, ImportState, MAX_URLS};
use alpes_domain::page::PageCursor;
use alpes_platform::audit::RequestContext;
use alpes_platform::auth::{Authenticated, Caller, Role};
use alpes_platform::http::{json_body, ApiError, QueryParams};
use alpes_platform::openapi::{json_content, schema, Op};
use alpes_schemas::{new_event_id, now_millis, ImportacionSolicitada};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

/// The largest body: 10,000 URLs of up to 2 KiB.
const MAX_BODY: usize = 24 << 20;
/// The page cursor's kind letter.
const CURSOR: char = 'j';

/// `POST /importaciones`'s query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CreateParams {
    /// The provider whose images the job creates (admins only; a provider's job is its own).
    proveedor_id: Option<String>,
}

/// `GET /importaciones`'s query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Only this provider's jobs (admins; a provider sees only its own).
    proveedor_id: Option<String>,
    /// Page size, 1 to 200.
    #[param(minimum = 1, maximum = 200, default = 50)]
    limit: Option<usize>,
    /// The previous page's `next_cursor` (opaque); a cursor this server did not issue is 400 `bad_cursor`.
    #[param(min_length = 1)]
    cursor: Option<String>,
}

/// One page of jobs.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Imports)]
pub struct Importaciones {
    /// Newest first, without their images and failures (`GET /importaciones/{id}` has them).
    importaciones: Vec<Importacion>,
    /// Pass as `cursor` for the next (older) page; null on the last page.
    next_cursor: Option<String>,
}

/// `POST /importaciones`.
pub fn create_op() -> Op {
    Op::post("/importaciones", "createImport", IMPORTS, "Ask for an import job")
        .describe(
            "`{\"tipo\": \"dicomweb\", \"url\": \".../dicom-web\", \"consulta\": {QIDO-RS keys}, \"auth\": {...}}` pulls every \
             instance of every study the search matches (QIDO-RS, then WADO-RS); `{\"tipo\": \"urls\", \"urls\": [...]}` \
             fetches each URL (DICOM, PNG or JPEG; a URL given twice is one item; at most 10,000). `auth` is \
             `{\"tipo\": \"basic\", \"usuario\", \"password\"}` or `{\"tipo\": \"bearer\", \"token\"}`, and is never shown again. \
             Each image fetched is registered as an upload of the provider (source `import`): a duplicate is \
             recognized by its bytes. The job runs on an importer; follow it with `GET /importaciones/{id}`.",
        )
        .auth(&["proveedor", "admin"])
        .query_params::<CreateParams>()
        .body(true, "What to pull.", json_content(schema("ImportRequest")))
        .ok(
            202,
            "Stored and announced; `estado` is `pending`.",
            Some(json_content(schema("Import"))),
            &[(
                "Location",
                json!({ "description": "The job: `/importaciones/{id}`.", "schema": { "type": "string" } }),
            )],
        )
        .error(
            400,
            &["bad_json", "bad_query"],
            "The body is not a job, or the query has a key other than `proveedor_id`.",
        )
        .error(404, &["not_found"], "`proveedor_id` names no account.")
        .error(409, &["not_a_provider"], "`proveedor_id` is not a provider's account.")
        .standard(413)
        .error(
            422,
            &["bad_url", "bad_urls", "bad_consulta", "no_provider"],
            "A URL, the URL list or a QIDO-RS key is not acceptable, or an admin named no provider.",
        )
        .standard(503)
}

/// `GET /importaciones`.
pub fn list_op() -> Op {
    Op::get("/importaciones", "listImports", IMPORTS, "List import jobs, newest first")
        .describe("A provider sees its own jobs, an admin every provider's (or one's, with `proveedor_id`).")
        .auth(&["proveedor", "admin"])
        .query_params::<ListParams>()
        .ok(200, "One page.", Some(json_content(schema("Imports"))), &[])
        .error(
            400,
            &["bad_query", "bad_cursor", "bad_limit"],
            "An unknown query key, or a cursor or page size that is not acceptable.",
        )
}

/// The provider a job is for: the caller, or for an admin the one named.
async fn provider_for(state: &IngestState, caller: &Caller, named: Option<String>) -> Result<String, ApiError> {
    if caller.role != Role::Admin {
        return Ok(caller.user_id.clone());
    }
    let named = named.ok_or_else(|| ApiError::unprocessable("no_provider", "an admin names the provider with ?proveedor_id="))?;
    let account = state.identity.store.account(named.trim()).await?;
    let account = account.ok_or_else(|| ApiError::not_found("no account has this id"))?;
    if account.role != Role::Proveedor {
        return Err(ApiError::conflict("not_a_provider", "only a provider's images can be imported"));
    }
    Ok(account.user_id)
}

/// `POST /importaciones`.
#[tracing::instrument(name = "POST /importaciones", skip_all, fields(user = %caller.user_id))]
pub async fn create(
    State(state): State<IngestState>,
    Authenticated(caller): Authenticated,
    ctx: RequestContext,
    QueryParams(params): QueryParams<CreateParams>,
    body: Bytes,
) -> Result<Response, ApiError> {
    caller.require(&[Role::Proveedor, Role::Admin])?;
    let spec: ImportSpec = json_body(&body, MAX_BODY, "import job")?;
    let spec = spec
        .validate(MAX_URLS)
        .map_err(|e| ApiError::unprocessable(e.code(), e.to_string()))?;
    let provider = provider_for(&state, &caller, params.proveedor_id).await?;
    let urls = match &spec {
        ImportSpec::Urls { urls, .. } => Some(urls.len() as i32),
        ImportSpec::Dicomweb { .. } => None,
    };
    let now = now_millis();
    let job = ImportJob {
        job_id: uuid::Uuid::now_v7().to_string(),
        provider_id: provider,
        created_by: caller.user_id.clone(),
        spec,
        state: ImportState::Pending,
        reason: None,
        total: urls.map(|n| n as u64),
        created_at: now,
        started_at: None,
        finished_at: None,
    };
    ctx.target(&job.job_id);
    state.imports.create_job(&job).await?;
    let event = ImportacionSolicitada {
        evento_id: new_event_id(),
        ocurrido_at: now,
        actor: caller.user_id.clone(),
        importacion_id: job.job_id.clone(),
        proveedor_id: job.provider_id.clone(),
        tipo: job.spec.tipo().to_owned(),
        urls,
        solicitud_http_id: ctx.request_id(),
    };
    if let Err(e) = state.producer.send(&job.job_id, &event).await {
        tracing::warn!(error = %e, job = %job.job_id, "broker did not acknowledge an import job; it is ended failed");
        let why = "not announced: the event broker was unavailable";
        let _ = state
            .imports
            .transition(&job.job_id, ImportState::Failed, Some(why), now_millis())
            .await;
        return Err(ApiError::unavailable("the event broker", 5));
    }
    tracing::info!(job = %job.job_id, provider = %job.provider_id, tipo = job.spec.tipo(), "import job asked for");
    let location = format!("/importaciones/{}", job.job_id);
    let shown = view(&job, &[], false, now);
    Ok((StatusCode::ACCEPTED, [(header::LOCATION, location)], axum::Json(shown)).into_response())
}

/// `GET /importaciones`.
#[tracing::instrument(name = "GET /importaciones", skip_all, fields(user = %caller.user_id))]
pub async fn list(
    State(state): State<IngestState>,
    Authenticated(caller): Authenticated,
    QueryParams(params): QueryParams<ListParams>,
) -> Result<Response, ApiError> {
    caller.require(&[Role::Proveedor, Role::Admin])?;
    let limit = params.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::bad_request("bad_limit", "limit must be 1 to 200"));
    }
    let after = match params.cursor.as_deref() {
        Some(c) => Some(
            PageCursor::decode(CURSOR, c)
                .map_err(|_| ApiError::bad_request("bad_cursor", "the cursor was not issued by this listing"))?
                .key(),
        ),
        None => None,
    };
    let provider = if caller.role == Role::Admin {
        params.proveedor_id
    } else {
        Some(caller.user_id.clone())
    };
    let jobs = state.imports.jobs(provider.as_deref(), after, limit + 1).await?;
    let more = jobs.len() > limit;
    let now = now_millis();
    let mut importaciones = Vec::with_capacity(limit);
    for job in jobs.into_iter().take(limit) {
        let job = visible(&caller, Some(job))?;
        let items = state.imports.items(&job.job_id).await?;
        importaciones.push(view(&job, &items, false, now));
    }
    let next_cursor = more
        .then(|| {
            importaciones
                .last()
                .map(|j| PageCursor::new(j.creada_at, j.id.clone()).encode(CURSOR))
        })
        .flatten();
    Ok(axum::Json(Importaciones {
        importaciones,
        next_cursor,
    })
    .into_response())
}
