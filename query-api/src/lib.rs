//! Alpes query API: the read side. Every GET is answered from the store
//! (the catalog and the ledger); no request path reads Kafka. Downloads and
//! WADO-RS retrievals also produce `EventoUsoDatos`.
//!
//! - [`app`]: the service as one app (`build`, `router`, `run_until_stopped`),
//!   as `alpes up` and the tests run it; [`error`]: its error enum.
//! - [`materializer`]: consumes image, user and usage events into the catalog.
//! - [`audit`]: consumes `alpes.audit` into the audit table; [`routes::auditoria`] pages it.
//! - [`live`]: the image topics into an in-process broadcast; [`routes::eventos`] streams it.
//! - [`routes::imagenes`], [`routes::imagen`], [`routes::descarga`]: images,
//!   one image, and its metered download.
//! - [`routes::usuarios`], [`routes::usuario`]: users.
//! - [`routes::saldo`], [`routes::movimientos`]: balances and ledgers;
//!   [`routes::pares`]: the consumer–provider pairs by volume.
//! - [`routes::dicomweb`]: QIDO-RS and WADO-RS over the anonymized set.
//! - [`pricing`], [`admission`] and [`meter`]: what a download costs, whether the
//!   consumer may make it, and its usage event.
//! - [`rendered`]: one image's JSON body and ETag, kept while the image reads the same.
//! - [`vocabulary`]: the JSON the routes answer, in the API's one vocabulary
//!   (with the names before it, deprecated, beside them).
//! - [`openapi`]: the service's OpenAPI document, served at `/openapi.json`
//!   (with the `/docs` page) by [`router`].

pub mod admission;
pub mod app;
pub mod audit;
pub mod error;
pub mod held;
pub mod live;
pub mod materializer;
pub mod meter;
pub mod openapi;
pub mod pricing;
pub mod rendered;
pub mod reports;
pub mod routes;
pub mod vocabulary;

use alpes_platform::audit::Auditor;
use alpes_platform::auth::Jwt;
use alpes_platform::blobs::Blobs;
use alpes_platform::kafka::Producer;
use alpes_platform::limits::Limits;
use alpes_platform::metrics::Metrics;
use alpes_platform::store::{AuditStore, CatalogStore, IdentityStore, LedgerStore};
use axum::extract::FromRef;
use axum::Router;
use std::sync::Arc;

pub use alpes_platform::public_url::PublicUrl;
pub use app::{QueryApp, QueryConfig, QueryDeps};
pub use error::{Error, Result};
pub use pricing::{Pricing, PricingArgs};

/// Everything the query routes share.
#[derive(Debug, Clone)]
pub struct QueryState {
    /// Verifies bearer tokens.
    pub jwt: Arc<Jwt>,
    /// Images, users and usage, materialized from events.
    pub catalog: Arc<dyn CatalogStore>,
    /// Ledgers and balances.
    pub ledger: Arc<dyn LedgerStore>,
    /// The audit trail's table.
    pub audit: Arc<dyn AuditStore>,
    /// Accounts: a user's display name (`nombre`) is the account's, never in an event.
    pub identity: Arc<dyn IdentityStore>,
    /// Records the audited requests.
    pub auditor: Auditor,
    /// Rate, body and time limits, CORS.
    pub limits: Arc<Limits>,
    /// The anonymized bytes.
    pub blobs: Blobs,
    /// Produces the usage events of downloads.
    pub producer: Producer,
    /// Prices and the repeat window.
    pub pricing: Arc<Pricing>,
    /// Process metrics.
    pub metrics: Arc<Metrics>,
    /// The currency a balance is shown in when the caller names none (ISO 4217);
    /// shared, not copied, by the state's per-request clones.
    pub currency: Arc<str>,
    /// The bodies `GET /imagenes/{id}` rendered, reused while an image reads the same.
    pub rendered: Arc<rendered::Rendered>,
    /// The credit admitted retrievals hold until billing applies their charges.
    pub held: Arc<held::Held>,
    /// What `GET /analisis/modelo` describes: the engine's safety net, as the composition root
    /// read it.
    pub analysis_model: Arc<routes::modelo::ModeloAnalisis>,
    /// De-identification reports: their state and files, and their generation.
    pub reports: Arc<reports::Reports>,
    /// The base of DICOMweb's RetrieveURLs.
    pub public_url: PublicUrl,
    /// Who belongs to which institution (the dashboards' authorization); `None` where the
    /// store has no registry.
    pub registry: Option<Arc<dyn alpes_domain::registry::RegistryStore>>,
    /// Image changes as they happen, for `GET /eventos/imagenes`.
    pub live: live::Live,
}

/// The state the query routes run with: [`QueryState`] behind one `Arc`.
/// axum hands every request its own copy of the state; this way that copy is
/// one reference count, not a dozen.
#[derive(Debug, Clone)]
pub struct Shared(Arc<QueryState>);

impl std::ops::Deref for Shared {
    type Target = QueryState;
    fn deref(&self) -> &QueryState {
        &self.0
    }
}

impl FromRef<Shared> for Arc<Jwt> {
    fn from_ref(s: &Shared) -> Self {
        s.jwt.clone()
    }
}

/// The query API on its own: [`api_router`] plus its OpenAPI document at
/// `/openapi.json` and the `/docs` page.
pub fn router(state: QueryState) -> Router {
    let metrics = state.metrics.clone();
    let cors = state.limits.cors();
    alpes_platform::limits::with_cors(
        api_router(state).merge(alpes_platform::openapi::router(&openapi::document(), metrics)),
        cors,
    )
}

/// The query routes (without `/health` and `/metrics`, which the ingest router serves, and
/// without the document routes). Paths ingest serves with `POST` (`/imagenes`, `/studies`,
/// `/studies/{study}`) merge with them.
pub fn api_router(state: QueryState) -> Router {
    let (routes, _) = routes::all().into_parts();
    alpes_platform::layers::service(routes, state.metrics.clone(), state.limits.clone(), state.auditor.clone())
        .with_state(Shared(Arc::new(state)))
}
