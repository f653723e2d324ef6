//! The ingest service as one app: [`IngestApp::build`] takes the adapters the
//! composition root chose ([`IngestDeps`]) and its settings
//! ([`IngestConfig`]), re-announces what a previous run left unannounced and
//! creates the bootstrap admin; [`IngestApp::router`] is its routes;
//! [`IngestApp::run_until_stopped`] runs its background tasks (the
//! `published` marks writer and the outcome follower) until the shutdown
//! signal. `alpes up` and the tests build it the same way.

use crate::identity::{Identity, IdentityArgs, NewUser};
use crate::marks::{MarksWriter, PublishedMarks};
use crate::{outcomes, republish, Error, IngestState, Result};
use alpes_domain::caller::Role;
use alpes_domain::identity::IdentityStore;
use alpes_domain::ingest::IngestStore;
use alpes_domain::ledger::LedgerStore;
use alpes_platform::audit::Auditor;
use alpes_platform::auth::Jwt;
use alpes_platform::blobs::Blobs;
use alpes_platform::kafka::projector::run_projection;
use alpes_platform::kafka::{Kafka, Producer};
use alpes_platform::limits::Limits;
use alpes_platform::metrics::Metrics;
use alpes_platform::probes::Probes;
use alpes_platform::public_url::PublicUrl;
use alpes_platform::shutdown::Shutdown;
use axum::Router;
use std::sync::Arc;

/// The adapters ingest runs on.
#[derive(Debug, Clone)]
pub struct IngestDeps {
    /// The event log.
    pub kafka: Arc<Kafka>,
    /// Produces `ImagenRegistrada`, `UsuarioRegistrado` and the audit records.
    pub producer: Producer,
    /// Raw blobs.
    pub blobs: Blobs,
    /// Images, idempotency keys and open requests.
    pub store: Arc<dyn IngestStore>,
    /// Import jobs and their items.
    pub imports: Arc<dyn alpes_domain::import::ImportStore>,
    /// Balances, read to refuse a payment above one at once.
    pub ledger: Arc<dyn LedgerStore>,
    /// Accounts, credentials and sessions.
    pub identity: Arc<dyn IdentityStore>,
    /// Verifies and issues tokens.
    pub jwt: Arc<Jwt>,
    /// Rate, body and time limits, CORS.
    pub limits: Arc<Limits>,
    /// Process metrics.
    pub metrics: Arc<Metrics>,
    /// Institutions, doctors and patients; `None` where the store has no registry (CQL, for
    /// now): their routes answer 503 and uploads belong to no institution.
    pub registry: Option<crate::registry::Registry>,
}

/// The admin created at start when the instance has none yet.
#[derive(Debug, Clone)]
pub struct BootstrapAdmin {
    /// Its email (the login).
    pub email: String,
    /// Its password (from the environment, never a flag); needed only when the admin is created.
    pub password: Option<String>,
}

/// Ingest's settings.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    /// Largest accepted upload body, bytes.
    pub max_upload: u64,
    /// Token lifetimes, the lockout rule and the password hasher.
    pub identity: IdentityArgs,
    /// The instance id of the data dir: names the outcome follower's own group
    /// ([`outcomes::group`]).
    pub instance: String,
    /// The admin to create if there is none.
    pub bootstrap_admin: Option<BootstrapAdmin>,
    /// The base of the links STOW-RS answers with.
    pub public_url: PublicUrl,
}

/// The ingest service, built and ready to serve.
#[derive(Debug)]
pub struct IngestApp {
    state: IngestState,
    marks: MarksWriter,
    outcomes_group: String,
    republished: usize,
}

impl IngestApp {
    /// Re-publishes the requests and accounts a previous run left unannounced, creates the
    /// bootstrap admin, and declares the outcome follower to the readiness.
    pub async fn build(deps: IngestDeps, config: IngestConfig) -> Result<IngestApp> {
        let IngestDeps {
            kafka,
            producer,
            blobs,
            store,
            imports,
            ledger,
            identity,
            jwt,
            limits,
            metrics,
            registry,
        } = deps;
        let republished = republish::republish(store.as_ref(), &producer).await?;
        let announced = crate::identity::republish_accounts(identity.as_ref(), &producer).await?;
        if announced > 0 {
            tracing::info!(accounts = announced, "announced accounts created while the platform was down");
        }
        let identity = Identity::new(identity, config.identity)?;
        if let Some(admin) = config.bootstrap_admin {
            bootstrap_admin(&identity, &producer, admin).await?;
        }
        let outcomes_group = outcomes::group(&config.instance);
        kafka.expect_projection::<outcomes::Follower>(&outcomes_group);
        let (published, marks) = PublishedMarks::new(store.clone());
        let state = IngestState {
            auditor: Auditor::new(producer.clone(), "ingest", metrics.clone()),
            jwt,
            kafka,
            producer,
            blobs,
            store,
            imports,
            ledger,
            metrics,
            max_upload: config.max_upload,
            published,
            identity,
            limits,
            public_url: config.public_url,
            registry,
        };
        Ok(IngestApp {
            state,
            marks,
            outcomes_group,
            republished,
        })
    }

    /// The routes' shared state.
    pub fn state(&self) -> &IngestState {
        &self.state
    }

    /// How many requests were re-published at start.
    pub fn republished(&self) -> usize {
        self.republished
    }

    /// The ingest routes ([`crate::api_router`]).
    pub fn router(&self) -> Router {
        crate::api_router(self.state.clone())
    }

    /// Runs the marks writer and the outcome follower until `stop`; returns when both have
    /// stopped (the follower's error, if it failed).
    pub async fn run_until_stopped(self, stop: Shutdown) -> Result<()> {
        let IngestApp {
            state,
            marks,
            outcomes_group,
            ..
        } = self;
        let follower = outcomes::Follower::new(state.producer.codec().clone(), state.store.clone());
        let followed = run_projection(&state.kafka, &outcomes_group, state.metrics.clone(), &follower, &stop);
        let ((), followed) = tokio::join!(marks.run_until_stopped(stop.clone()), followed);
        followed.map_err(Error::from)
    }
}

/// The probes of ingest on its own ([`crate::router`]): the broker, the blobs and the ingest store.
pub fn probes(state: &IngestState) -> Probes {
    Probes {
        kafka: state.kafka.clone(),
        schemas: state.producer.codec().describe(),
        blobs: Some(state.blobs.clone()),
        store: Some(state.store.clone()),
        metrics: state.metrics.clone(),
    }
}

/// Creates `admin` unless an admin exists already.
async fn bootstrap_admin(identity: &Identity, producer: &Producer, admin: BootstrapAdmin) -> Result<()> {
    if identity.store.has_admin().await? {
        return Ok(());
    }
    let password = admin.password.ok_or(Error::Bootstrap {
        code: "no_password",
        message: "--bootstrap-admin-email needs ALPES_BOOTSTRAP_ADMIN_PASSWORD in the environment".into(),
    })?;
    let user = NewUser {
        nombre: "Administrator".into(),
        email: admin.email,
        password,
        role: Role::Admin,
        organization: None,
        created_by: Some("bootstrap".into()),
    };
    let created = identity.register(producer, user, None).await.map_err(|e| Error::Bootstrap {
        code: e.code,
        message: e.message,
    })?;
    tracing::info!(user_id = %created.user_id, "bootstrap admin created");
    Ok(())
}
