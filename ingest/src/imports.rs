//! Import jobs as the API shows them (`/importaciones`), and who may see one:
//! its provider, whoever asked for it, and admins. Credentials are never shown.

use alpes_domain::import::{ImportItem, ImportJob, ItemOutcome};
use alpes_platform::auth::Caller;
use alpes_platform::http::ApiError;
use serde::Serialize;
use utoipa::ToSchema;

/// How many items reached each outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ToSchema)]
#[schema(as = ImportCounts)]
pub struct Conteos {
    /// Items the source listed (null until it was searched).
    pub total: Option<u64>,
    /// New images registered.
    pub importadas: u64,
    /// Items the provider had already (same bytes): the existing image.
    pub duplicadas: u64,
    /// Items that failed, each with its reason in `fallos`.
    pub fallidas: u64,
    /// Items with no outcome yet.
    pub pendientes: Option<u64>,
}

/// One failed item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[schema(as = ImportFailure)]
pub struct Fallo {
    /// The item: its URL, or `study/series/instance` of a DICOMweb job.
    pub item: String,
    /// A code and a short text, e.g. `http_404: the source answered 404`.
    pub motivo: String,
}

/// An import job.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(as = Import)]
pub struct Importacion {
    /// The job id.
    pub id: String,
    /// The provider whose images it creates.
    pub proveedor_id: String,
    /// Who asked for it.
    pub creada_por: String,
    /// `dicomweb` or `urls`.
    pub tipo: &'static str,
    /// What it pulls, as asked, without `auth`.
    #[schema(value_type = Object)]
    pub fuente: serde_json::Value,
    /// `pending`, `running`, `completed`, `failed` or `cancelled`.
    #[schema(pattern = "^(pending|running|completed|failed|cancelled)$")]
    pub estado: &'static str,
    /// Why it failed or who cancelled it.
    pub motivo: Option<String>,
    /// Its items' outcomes.
    pub conteos: Conteos,
    /// When it was asked for, ms since the Unix epoch.
    pub creada_at: i64,
    /// When an importer started it.
    pub iniciada_at: Option<i64>,
    /// When it ended.
    pub terminada_at: Option<i64>,
    /// From start to end (or to now, while it runs), ms.
    pub duracion_ms: Option<i64>,
    /// The images it created or matched, by item key order (`GET /importaciones/{id}` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub imagenes: Option<Vec<String>>,
    /// Its failed items (`GET /importaciones/{id}` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallos: Option<Vec<Fallo>>,
}

/// `job` as shown, with its items' counts; with `detail`, the images and failures too.
pub fn view(job: &ImportJob, items: &[ImportItem], detail: bool, now: i64) -> Importacion {
    let count = |o: ItemOutcome| items.iter().filter(|i| i.outcome == o).count() as u64;
    let conteos = Conteos {
        total: job.total,
        importadas: count(ItemOutcome::Imported),
        duplicadas: count(ItemOutcome::Duplicate),
        fallidas: count(ItemOutcome::Failed),
        pendientes: job.total.map(|t| t.saturating_sub(items.len() as u64)),
    };
    let fuente = serde_json::to_value(job.spec.without_auth()).unwrap_or_default();
    Importacion {
        id: job.job_id.clone(),
        proveedor_id: job.provider_id.clone(),
        creada_por: job.created_by.clone(),
        tipo: job.spec.tipo(),
        fuente,
        estado: job.state.as_str(),
        motivo: job.reason.clone(),
        conteos,
        creada_at: job.created_at,
        iniciada_at: job.started_at,
        terminada_at: job.finished_at,
        duracion_ms: job.started_at.map(|s| job.finished_at.unwrap_or(now) - s),
        imagenes: detail.then(|| items.iter().filter_map(|i| i.image_id.clone()).collect()),
        fallos: detail.then(|| {
            items
                .iter()
                .filter(|i| i.outcome == ItemOutcome::Failed)
                .map(|i| Fallo {
                    item: i.key.clone(),
                    motivo: i.reason.clone().unwrap_or_default(),
                })
                .collect()
        }),
    }
}

/// `job` if `caller` may see it; 404 otherwise (another provider's job is not admitted to exist).
pub fn visible(caller: &Caller, job: Option<ImportJob>) -> Result<ImportJob, ApiError> {
    job.filter(|j| caller.is_admin_or(&j.provider_id) || j.created_by == caller.user_id)
        .ok_or_else(|| ApiError::not_found("no import job with this id"))
}
