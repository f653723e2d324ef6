//! Alpes ingest: the command side.
//!
//! Every upload streams to the blob store while it is hashed, is registered in
//! the ingest store (which makes repeated uploads idempotent), and only then is
//! announced as `ImagenRegistrada` on Kafka, keyed by the image id. If the
//! broker does not acknowledge, the client gets 503 and nothing is left behind
//! (but the raw blob, in a shared blob store: see [`register::forget_blob`]).
//!
//! - [`app`]: the service as one app (`build`, `router`, `run_until_stopped`),
//!   as `alpes up` and the tests run it; [`error`]: its error enum.
//! - [`routes`]: `POST /imagenes`, STOW-RS `POST /studies[/{study}]`,
//!   `POST /anonimizar/{id}`, `POST /monetizacion/pagar`, `POST /usuarios`,
//!   `POST /auth/{login,refresh,logout,verify}`, `/api-keys` and
//!   `GET /.well-known/jwks.json`. `/health`, `/ready` and `/metrics` are the
//!   platform's probes ([`alpes_platform::probes`]).
//! - [`identity`]: registration, login with lockout, refresh rotation, logout.
//! - [`register`]: the shared "blob → store → event" step.
//! - [`imports`]: import jobs as `/importaciones` shows them (the importer runs them).
//! - [`marks`]: marks requests published, off the request path.
//! - [`outcomes`]: follows `ImagenAnonimizada` / `ImagenRechazada` to close requests.
//! - [`republish`]: re-announces requests that never got an outcome.
//! - [`openapi`]: the service's OpenAPI document, served at `/openapi.json`
//!   (with the `/docs` page) by [`router`].

pub mod app;
pub mod error;
pub mod identity;
pub mod imports;
pub mod marks;
pub mod media;
pub mod openapi;
pub mod outcomes;
pub mod people;
pub mod profile;
pub mod register;
pub mod registry;
pub mod republish;
pub mod routes;

use alpes_platform::audit::Auditor;
use alpes_platform::auth::Jwt;
use alpes_platform::blobs::Blobs;
use alpes_platform::kafka::{Kafka, Producer};
use alpes_platform::limits::Limits;
use alpes_platform::metrics::Metrics;
use alpes_platform::store::{IngestStore, LedgerStore};
use axum::extract::{DefaultBodyLimit, FromRef};
use axum::Router;
use std::sync::Arc;

pub use app::{BootstrapAdmin, IngestApp, IngestConfig, IngestDeps};
pub use error::{Error, Result};

/// The default upload limit: 2 GiB per body.
pub const DEFAULT_MAX_UPLOAD: u64 = 2 << 30;

/// Everything the ingest routes share.
#[derive(Debug, Clone)]
pub struct IngestState {
    /// Verifies bearer tokens.
    pub jwt: Arc<Jwt>,
    /// The event log.
    pub kafka: Arc<Kafka>,
    /// Produces `ImagenRegistrada`.
    pub producer: Producer,
    /// Raw blobs.
    pub blobs: Blobs,
    /// Images, idempotency keys and open requests.
    pub store: Arc<dyn IngestStore>,
    /// Import jobs and their items.
    pub imports: Arc<dyn alpes_domain::import::ImportStore>,
    /// Balances, read to refuse a payment above one at once.
    pub ledger: Arc<dyn LedgerStore>,
    /// Process metrics.
    pub metrics: Arc<Metrics>,
    /// Largest accepted body, bytes.
    pub max_upload: u64,
    /// Marks requests published once their event is acknowledged.
    pub published: marks::PublishedMarks,
    /// Accounts, passwords, sessions.
    pub identity: identity::Identity,
    /// Records the audited requests.
    pub auditor: Auditor,
    /// Rate, body and time limits, CORS.
    pub limits: Arc<Limits>,
    /// The base of the links STOW-RS answers with.
    pub public_url: alpes_platform::public_url::PublicUrl,
    /// Institutions, doctors and patients, if this store has them.
    pub registry: Option<registry::Registry>,
}

impl IngestState {
    /// The registry; 503 where the store has none.
    pub fn registry(&self) -> Result<&registry::Registry, alpes_platform::http::ApiError> {
        self.registry.as_ref().ok_or_else(|| {
            alpes_platform::http::ApiError::unavailable("the institution and patient registry (not opened by this process)", 60)
                .with_code("no_registry")
        })
    }
}

impl FromRef<IngestState> for Arc<Jwt> {
    fn from_ref(s: &IngestState) -> Self {
        s.jwt.clone()
    }
}

/// The ingest service on its own: [`api_router`], the probes (`/health`, `/ready`,
/// `/metrics`), and its OpenAPI document at `/openapi.json` with the `/docs` page.
pub fn router(state: IngestState) -> Router {
    let metrics = state.metrics.clone();
    let cors = state.limits.cors();
    let probes = app::probes(&state).router();
    alpes_platform::limits::with_cors(
        api_router(state)
            .merge(probes)
            .merge(alpes_platform::openapi::router(&openapi::document(), metrics)),
        cors,
    )
}

/// The ingest routes, without the probes and the document routes (for composing with other
/// services, which serve one merged document).
pub fn api_router(state: IngestState) -> Router {
    let (routes, _) = routes::all().into_parts();
    let routes = routes
        // Uploads are streamed and limited by `max_upload`, not buffered.
        .layer(DefaultBodyLimit::disable());
    alpes_platform::layers::service(routes, state.metrics.clone(), state.limits.clone(), state.auditor.clone()).with_state(state)
}
