//! The query service as one app: [`QueryApp::build`] takes the adapters the
//! composition root chose ([`QueryDeps`]) and its settings ([`QueryConfig`]);
//! [`QueryApp::router`] is its routes; [`QueryApp::run_until_stopped`] runs
//! its consumers (the materializer into the catalog, the audit projector into
//! the audit table, the live projection into the streams of `GET /eventos/imagenes`) until the
//! shutdown signal. `alpes up` and the tests build it the same way.

use crate::materializer::{self, Materializer};
use crate::rendered::Rendered;
use crate::{audit, live, Error, Pricing, PricingArgs, QueryState, Result};
use alpes_domain::audit::AuditStore;
use alpes_domain::catalog::CatalogStore;
use alpes_domain::identity::IdentityStore;
use alpes_domain::ledger::LedgerStore;
use alpes_platform::audit::Auditor;
use alpes_platform::auth::Jwt;
use alpes_platform::blobs::Blobs;
use alpes_platform::kafka::projector::run_projection;
use alpes_platform::kafka::{Kafka, Producer};
use alpes_platform::limits::Limits;
use alpes_platform::metrics::Metrics;
use alpes_platform::shutdown::Shutdown;
use axum::Router;
use std::sync::Arc;

/// The adapters the query service runs on.
#[derive(Debug, Clone)]
pub struct QueryDeps {
    /// The event log its consumers read.
    pub kafka: Arc<Kafka>,
    /// Produces the usage events of downloads and the audit records.
    pub producer: Producer,
    /// Images, users and usage, materialized from events.
    pub catalog: Arc<dyn CatalogStore>,
    /// Ledgers and balances.
    pub ledger: Arc<dyn LedgerStore>,
    /// The audit trail's table.
    pub audit: Arc<dyn AuditStore>,
    /// Accounts (the users' display names).
    pub identity: Arc<dyn IdentityStore>,
    /// The anonymized bytes.
    pub blobs: Blobs,
    /// Verifies tokens.
    pub jwt: Arc<Jwt>,
    /// Rate, body and time limits, CORS.
    pub limits: Arc<Limits>,
    /// Process metrics.
    pub metrics: Arc<Metrics>,
    /// Institutions and doctors (who may read a dashboard); `None` where the store has none.
    pub registry: Option<Arc<dyn alpes_domain::registry::RegistryStore>>,
}

/// The query service's settings.
#[derive(Debug, Clone)]
pub struct QueryConfig {
    /// Download prices and the repeat window.
    pub pricing: PricingArgs,
    /// The currency balances are shown in by default (ISO 4217).
    pub currency: String,
    /// The instance id of the data dir: names the audit projector's own group
    /// ([`audit::group`]), since the audit table is the data dir's.
    pub instance: String,
    /// The engine's burned-in text safety net (`GET /analisis/modelo`).
    pub analysis_model: crate::routes::modelo::ModeloAnalisis,
    /// The base of DICOMweb's RetrieveURLs ([`crate::PublicUrl`]).
    pub public_url: crate::PublicUrl,
}

/// The query service, built and ready to serve.
#[derive(Debug)]
pub struct QueryApp {
    state: QueryState,
    kafka: Arc<Kafka>,
    audit_group: String,
    live_group: String,
}

impl QueryApp {
    /// The routes' state, and both consumers declared to the readiness.
    pub fn build(deps: QueryDeps, config: QueryConfig) -> QueryApp {
        let QueryDeps {
            kafka,
            producer,
            catalog,
            ledger,
            audit,
            identity,
            blobs,
            jwt,
            limits,
            metrics,
            registry,
        } = deps;
        let audit_group = audit::group(&config.instance);
        let live_group = live::group(&config.instance);
        kafka.expect_projection::<materializer::Materializer>(materializer::GROUP);
        kafka.expect_projection::<audit::Projector>(&audit_group);
        kafka.expect_projection::<live::Projector>(&live_group);
        let reports = Arc::new(crate::reports::Reports::new(blobs.clone(), catalog.clone()));
        let state = QueryState {
            jwt,
            catalog,
            ledger,
            audit,
            identity,
            auditor: Auditor::new(producer.clone(), "query-api", metrics.clone()),
            limits,
            blobs,
            producer,
            pricing: Arc::new(Pricing::new(&config.pricing, &config.currency)),
            metrics,
            currency: config.currency.as_str().into(),
            rendered: Arc::new(Rendered::default()),
            held: Arc::default(),
            analysis_model: Arc::new(config.analysis_model),
            reports,
            public_url: config.public_url,
            registry,
            live: live::Live::default(),
        };
        QueryApp {
            state,
            kafka,
            audit_group,
            live_group,
        }
    }

    /// The routes' shared state.
    pub fn state(&self) -> &QueryState {
        &self.state
    }

    /// The query routes ([`crate::api_router`]).
    pub fn router(&self) -> Router {
        crate::api_router(self.state.clone())
    }

    /// Runs the materializer, the audit projector and the live projection until `stop`, and
    /// ends the live streams as soon as `stop` comes; returns when all have stopped (the first
    /// error, if one failed).
    pub async fn run_until_stopped(self, stop: Shutdown) -> Result<()> {
        let QueryApp {
            state,
            kafka,
            audit_group,
            live_group,
        } = self;
        let codec = state.producer.codec();
        let materializer = Materializer::new(codec.clone(), state.catalog.clone());
        let projector = audit::Projector::new(codec.clone(), state.audit.clone());
        let live = live::Projector::new(codec.clone(), state.live.clone());
        let close_streams = async {
            stop.wait().await;
            state.live.close();
        };
        let (materialized, audited, followed, ()) = tokio::join!(
            run_projection(&kafka, materializer::GROUP, state.metrics.clone(), &materializer, &stop),
            run_projection(&kafka, &audit_group, state.metrics.clone(), &projector, &stop),
            run_projection(&kafka, &live_group, state.metrics.clone(), &live, &stop),
            close_streams,
        );
        materialized.and(audited).and(followed).map_err(Error::from)
    }
}
