//! The composition root: it chooses the adapters and starts the services,
//! and nothing else. Every service in one process (the default), or those
//! `--services` names: ingest (REST and STOW-RS, with its outcome follower),
//! the anonymizer worker(s), billing, the query API (REST, QIDO-RS,
//! WADO-RS, with the materializer and the audit projector), on one listener,
//! the DICOM listener (C-ECHO, C-STORE; [`DimseApp`], on ingest's app) and
//! the importer (import jobs; [`ImporterApp`], on ingest's app too), with the configured Kafka (or the in-process development broker), blobs
//! and stores ([`crate::stores`]: only those the services use).
//!
//! Each service owns its app: [`IngestApp`], [`DimseApp`], [`ImporterApp`], [`QueryApp`], [`Billing`] and
//! [`Worker`] each have a `build` and a `run_until_stopped`; this module
//! builds them with the adapters, merges their routes with the probes
//! ([`alpes_platform::probes`]: `/health`, `/ready`, `/metrics`, checking
//! what this process depends on) and the merged OpenAPI document, and runs
//! their tasks.
//!
//! The outcome follower and the audit projector consume in groups named by
//! the data dir's instance id ([`crate::instance`]): every ingest replica
//! sees every outcome (its ingest store may be the data dir's SQLite), and
//! every query-api replica the whole audit trail (its table is the data
//! dir's). The materializer and billing feed the shared ledger and catalog
//! (on ScyllaDB) and stay one group each, shared by their replicas. The
//! instance id also names the anonymizer's transactional producers, so
//! processes on one host never fence each other and a restarted one fences
//! its predecessor.
//!
//! Every consumer is declared to the readiness ([`alpes_platform::readiness`])
//! when its service is built, before the listener serves, so `GET /ready`
//! answers 200 only once each has joined its group.
//!
//! Tokens are signed and verified as [`crate::jwt_keys::JwtArgs`] says: HS256
//! with the data dir's secret (the default), or an EdDSA key ring
//! ([`crate::jwt_keys`]).
//!
//! [`App::build`] binds the listener and builds every service;
//! [`App::run_until_stopped`] serves until the shutdown signal, then stops
//! every task cleanly (offsets committed, producers flushed).
//!
//! The listener also serves [`openapi_document`], the services' OpenAPI
//! documents merged into one, at `/openapi.json`, the `/docs` page, and the web console
//! ([`alpes_console`]) at `/` and `/assets/`.

use crate::jwt_keys::JwtAlg;
use crate::stores::Stores;
use crate::{instance, secret, stores};
use alpes_anonymizer::Secret;
use alpes_anonymizer_worker::{PseudonymScope, Worker, WorkerConfig};
use alpes_billing::Billing;
use alpes_dimse::DimseApp;
use alpes_importer::ImporterApp;
use alpes_ingest::{BootstrapAdmin, IngestApp, IngestConfig, IngestDeps};
use alpes_notifier::{NotifierApp, NotifierDeps};
use alpes_platform::auth::Jwt;
use alpes_platform::blobs::Blobs;
use alpes_platform::kafka::producer::REQUEST_LINGER;
use alpes_platform::kafka::{Kafka, Producer};
use alpes_platform::limits::Limits;
use alpes_platform::metrics::Metrics;
use alpes_platform::probes::Probes;
use alpes_platform::server::ServerArgs;
use alpes_platform::shutdown::Shutdown;
use alpes_platform::store::{AuditStore, CatalogStore, IdentityStore, LedgerStore, SqliteOutbox};
use alpes_query_api::{QueryApp, QueryConfig, QueryDeps};
use alpes_schemas::Codec;
use anyhow::{Context, Result};
use axum::Router;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use crate::settings::{Service, Settings};
pub use stores::open_identity;

/// The platform's OpenAPI document: ingest's and the query API's, merged
/// (every route the listener serves).
pub fn openapi_document() -> Result<serde_json::Value> {
    alpes_platform::openapi::merge(
        "Alpes",
        "Medical images in, de-identified, and out to research consumers: every REST, STOW-RS, QIDO-RS and \
         WADO-RS route of `alpes up`. Every error is JSON `{\"error\": code, \"message\": text}` with the status \
         its code implies; every answer carries `X-Request-Id`. Credentials: `Authorization: Bearer <JWT>` \
         (from `POST /auth/login`) or `X-API-Key: alpes_<id>_<secret>`.",
        &[
            alpes_ingest::openapi::document(),
            alpes_query_api::openapi::document(),
            console_document(),
        ],
    )
    .map_err(|e| anyhow::anyhow!("the services' OpenAPI documents disagree: {e}"))
}

/// The web console's operations as a document of their own, for [`openapi_document`].
fn console_document() -> serde_json::Value {
    alpes_platform::openapi::document(
        "Alpes console",
        "The web console's page and files.",
        alpes_console::operations(),
        serde_json::json!({}),
    )
}

/// The key file patients' contact data is sealed with, and their codes made with, under a data dir.
pub fn contact_key_path(data_dir: &std::path::Path) -> PathBuf {
    data_dir.join("keys").join("contact.key")
}

/// The engine secret file under a data dir.
pub fn engine_secret_path(data_dir: &std::path::Path) -> PathBuf {
    data_dir.join("keys").join("engine.secret")
}

/// The services a process runs, each built.
#[derive(Debug, Default)]
struct Services {
    ingest: Option<IngestApp>,
    /// Whether ingest's routes are served (the DICOM listener alone builds ingest for its upload path).
    ingest_routes: bool,
    dimse: Option<DimseApp>,
    importer: Option<ImporterApp>,
    notifier: Option<NotifierApp>,
    query: Option<QueryApp>,
    billing: Option<Billing>,
    workers: Vec<Worker>,
}

/// The running platform, built and bound but not yet serving.
#[derive(Debug)]
pub struct App {
    listener: tokio::net::TcpListener,
    addr: SocketAddr,
    kafka: Arc<Kafka>,
    codec: Codec,
    blobs: Blobs,
    producer: Producer,
    jwt: Arc<Jwt>,
    limits: Arc<Limits>,
    server: ServerArgs,
    metrics: Arc<Metrics>,
    stores: Stores,
    services: Services,
    instance: String,
    /// How many events the outbox kept from before the start and produced again.
    kept: usize,
}

/// Refuses `--transactional` with consumers that read uncommitted records: exactly once needs
/// the worker's input read committed (librdkafka's default); only then does a partition that
/// changed hands restart past the last committed transaction.
fn check_transactional(settings: &Settings) -> Result<()> {
    if settings.transactional {
        let mut props = settings.kafka.props.iter().chain(&settings.kafka.consumer_props);
        if let Some((_, level)) = props.rfind(|(k, _)| k == "isolation.level") {
            anyhow::ensure!(
                level == "read_committed",
                "--transactional needs the consumers' isolation.level to be read_committed, not {level}"
            );
        }
    }
    Ok(())
}

/// Connects Kafka as configured, or starts the development broker.
async fn connect_kafka(settings: &Settings) -> Result<Kafka> {
    let mut kafka_args = settings.kafka.clone();
    if kafka_args.bootstrap.as_deref().is_none_or(|b| b.trim().is_empty()) && kafka_args.partitions.is_none() {
        // librdkafka's mock broker finds a fetch offset by scanning every message set the
        // partition retains (up to 5 MB), from the oldest: each partition costs CPU on every
        // fetch. The development broker gets as many partitions as there are workers, at least 2.
        kafka_args.partitions = Some(i32::try_from(settings.workers.max(2)).unwrap_or(i32::MAX));
    }
    Kafka::connect(&kafka_args).await.context("cannot reach Kafka")
}

/// The admin `--bootstrap-admin-email` names, with its password from the environment.
fn bootstrap_admin(settings: &Settings) -> Option<BootstrapAdmin> {
    settings.bootstrap_admin_email.as_ref().map(|email| BootstrapAdmin {
        email: email.clone(),
        password: std::env::var("ALPES_BOOTSTRAP_ADMIN_PASSWORD").ok(),
    })
}

impl App {
    /// Creates keys on first start, connects Kafka (or starts the development broker), opens
    /// the blobs and the stores the services use, builds each service and binds.
    pub async fn build(settings: Settings) -> Result<App> {
        settings
            .server
            .check(settings.limits.request_timeout_secs)
            .map_err(anyhow::Error::msg)?;
        let data = &settings.data_dir;
        crate::private::private_data_dir(data)?;
        let tokens = settings.jwt.load(data)?;
        if let Some(path) = &tokens.created {
            tracing::info!(path = %path.display(), "created the token signing key");
        }
        match settings.jwt.alg {
            JwtAlg::Hs256 => tracing::info!(alg = "HS256", "token keys"),
            JwtAlg::Eddsa => tracing::info!(
                alg = "EdDSA",
                signing_kid = tokens.jwt.signing_kid().unwrap_or_default(),
                verifying_kids = ?tokens.jwt.verifying_kids(),
                "token keys"
            ),
        }
        let (engine_key, _) = secret::load_or_create(&engine_secret_path(data))?;
        let (contact_key, _) = secret::load_or_create(&contact_key_path(data))?;
        let contact_key = alpes_platform::seal::ContactKey::new(&contact_key);
        let (instance, created) = instance::load_or_create(data)?;
        tracing::info!(instance = %instance, created, "instance id of the data dir");
        check_transactional(&settings)?;
        // Bound first: a taken port fails the start before anything is connected, and the
        // address is the RetrieveURLs' default base.
        let listener = tokio::net::TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("cannot listen on {}", settings.listen))?;
        let addr = listener.local_addr()?;
        let public_url = settings
            .public_url
            .clone()
            .unwrap_or_else(|| alpes_platform::public_url::PublicUrl::of_listener(addr));
        let metrics = Arc::new(Metrics::new());
        let kafka = Arc::new(connect_kafka(&settings).await?);
        let codec = Codec::from_env();
        let blobs = Blobs::open(&settings.blobs, &data.join("blobs"), settings.fsync).context("cannot open the blob store")?;
        let stores = stores::open(&settings).await?;
        if kafka.mock().is_some() {
            // The development broker forgets everything on a crash: see alpes_platform::kafka::outbox.
            let outbox = SqliteOutbox::open(&data.join("alpes.db"), settings.fsync).context("cannot open the outbox")?;
            kafka.outbox().attach(Arc::new(outbox));
        }
        // Requests wait on their sends: a short linger, which an upload pays twice.
        let producer = Producer::with_linger(&kafka, codec.clone(), metrics.clone(), REQUEST_LINGER)?;
        let jwt = Arc::new(match &stores.identity {
            Some(identity) => tokens.jwt.with_revocations(identity.clone()),
            None => tokens.jwt,
        });
        let limits = Limits::new(settings.limits.clone(), jwt.clone());
        let mut services = Services::default();
        // The DICOM listener registers instances the way an upload is registered: it runs on
        // ingest's app (its outcome follower and marks too), whether or not ingest's routes are served.
        if let (true, Some(store), Some(imports), Some(ledger), Some(identity)) = (
            settings.runs(Service::Ingest) || settings.runs(Service::Dimse) || settings.runs(Service::Importer),
            &stores.ingest,
            &stores.imports,
            &stores.ledger,
            &stores.identity,
        ) {
            let deps = IngestDeps {
                kafka: kafka.clone(),
                producer: producer.clone(),
                blobs: blobs.clone(),
                store: store.clone(),
                imports: imports.clone(),
                ledger: ledger.clone(),
                identity: identity.clone(),
                jwt: jwt.clone(),
                limits: limits.clone(),
                metrics: metrics.clone(),
                registry: stores.registry.clone().zip(stores.notifications.clone()).map(|stores| {
                    alpes_ingest::registry::Registry::new(
                        stores,
                        contact_key.clone(),
                        (
                            Secret::new(engine_key.clone()),
                            settings.pseudonym_scope == PseudonymScope::Provider,
                        ),
                        settings.notify.webhook_allow.clone(),
                    )
                }),
            };
            let config = IngestConfig {
                max_upload: settings.max_upload,
                identity: settings.identity.clone(),
                instance: instance.clone(),
                bootstrap_admin: bootstrap_admin(&settings),
                public_url: public_url.clone(),
            };
            let ingest = IngestApp::build(deps, config).await.context("cannot start ingest")?;
            if settings.runs(Service::Dimse) {
                let dimse = DimseApp::build(ingest.state().clone(), &settings.dimse).await?;
                services.dimse = Some(dimse);
            }
            if settings.runs(Service::Importer) {
                let importer = ImporterApp::build(ingest.state().clone(), imports.clone(), &settings.import)
                    .map_err(|e| anyhow::anyhow!("cannot start the importer: {e}"))?;
                services.importer = Some(importer);
            }
            services.ingest_routes = settings.runs(Service::Ingest);
            services.ingest = Some(ingest);
        }
        if let (true, Some(registry), Some(notifications), Some(identity)) = (
            settings.runs(Service::Notifier),
            &stores.registry,
            &stores.notifications,
            &stores.identity,
        ) {
            let deps = NotifierDeps {
                kafka: kafka.clone(),
                producer: producer.clone(),
                registry: registry.clone(),
                identity: identity.clone(),
                store: notifications.clone(),
                key: contact_key.clone(),
                metrics: metrics.clone(),
            };
            let notifier = NotifierApp::build(deps, &settings.notify).map_err(|e| anyhow::anyhow!("cannot start the notifier: {e}"))?;
            services.notifier = Some(notifier);
        }
        if let (true, Some(catalog), Some(ledger), Some(audit), Some(identity)) = (
            settings.runs(Service::QueryApi),
            &stores.catalog,
            &stores.ledger,
            &stores.audit,
            &stores.identity,
        ) {
            let deps = QueryDeps {
                kafka: kafka.clone(),
                producer: producer.clone(),
                catalog: catalog.clone(),
                ledger: ledger.clone(),
                audit: audit.clone(),
                identity: identity.clone(),
                blobs: blobs.clone(),
                jwt: jwt.clone(),
                limits: limits.clone(),
                metrics: metrics.clone(),
                registry: stores.registry.clone(),
            };
            let config = QueryConfig {
                pricing: settings.pricing.clone(),
                currency: settings.currency.clone(),
                instance: instance.clone(),
                analysis_model: analysis_model(),
                public_url: public_url.clone(),
            };
            services.query = Some(QueryApp::build(deps, config));
        }
        if let (true, Some(ledger)) = (settings.runs(Service::Billing), &stores.ledger) {
            let billing = Billing::build(kafka.clone(), codec.clone(), ledger.clone(), metrics.clone(), producer.clone());
            kafka.expect_projection::<Billing>(billing.group());
            services.billing = Some(billing);
        }
        if settings.runs(Service::Anonymizer) {
            let secret = Secret::new(engine_key);
            for _ in 0..settings.workers.max(1) {
                let mut cfg = WorkerConfig {
                    transactional: settings.transactional,
                    pseudonyms: settings.pseudonym_scope,
                    engine_memory: settings.engine_memory,
                    // Stable across restarts and distinct per data dir: see the module docs.
                    instance: instance.clone(),
                    ..WorkerConfig::default()
                };
                if let Some(j) = settings.jobs {
                    cfg.jobs = j.max(1);
                }
                kafka.readiness().expect(&cfg.group);
                let worker = Worker::build(kafka.clone(), blobs.clone(), codec.clone(), secret.clone(), metrics.clone(), cfg)?;
                services.workers.push(worker);
            }
        }
        // Every reader is declared by now: what the outbox kept waits for them again.
        let kept = kafka.outbox().republish(&producer).await.context("cannot re-publish the outbox")?;
        Ok(App {
            listener,
            addr,
            kafka,
            codec,
            blobs,
            producer,
            jwt,
            limits,
            server: settings.server.clone(),
            metrics,
            stores,
            services,
            instance,
            kept,
        })
    }

    /// The data dir's instance id ([`crate::instance`]), which names the
    /// consumer groups of the consumers that feed this process's own stores.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// The bound address (useful with port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The DICOM listener's bound address, when this process runs it.
    pub fn dimse_addr(&self) -> Option<SocketAddr> {
        self.services.dimse.as_ref().and_then(|d| d.addr().ok())
    }

    /// The Kafka bootstrap address outside consumers can read the topics from.
    pub fn bootstrap(&self) -> &str {
        self.kafka.bootstrap()
    }

    /// The event log connection.
    pub fn kafka(&self) -> Arc<Kafka> {
        self.kafka.clone()
    }

    /// The token signer, for tests and `alpes token`.
    pub fn jwt(&self) -> Arc<Jwt> {
        self.jwt.clone()
    }

    /// The blob store.
    pub fn blobs(&self) -> Blobs {
        self.blobs.clone()
    }

    /// The codec events are written with.
    pub fn codec(&self) -> Codec {
        self.codec.clone()
    }

    /// The providers' ledgers and balances, when a service of this process uses them.
    pub fn ledger(&self) -> Option<Arc<dyn LedgerStore>> {
        self.stores.ledger.clone()
    }

    /// The query side's images, users and usage, when this process runs query-api.
    pub fn catalog(&self) -> Option<Arc<dyn CatalogStore>> {
        self.stores.catalog.clone()
    }

    /// The accounts, when a service of this process uses them (ingest, query-api).
    pub fn identity(&self) -> Option<Arc<dyn IdentityStore>> {
        self.stores.identity.clone()
    }

    /// The audit trail's table, when this process runs query-api.
    pub fn audit(&self) -> Option<Arc<dyn AuditStore>> {
        self.stores.audit.clone()
    }

    /// How many events the outbox kept from before the start (a crash) and produced again.
    pub fn kept(&self) -> usize {
        self.kept
    }

    /// How many requests were re-published at start.
    pub fn republished(&self) -> usize {
        self.services.ingest.as_ref().map_or(0, IngestApp::republished)
    }

    /// Every route the process serves: the probes, and the routes and the merged OpenAPI
    /// document of the HTTP services it runs.
    fn router(&self) -> Result<Router> {
        let Services {
            ingest,
            ingest_routes,
            query,
            workers,
            ..
        } = &self.services;
        // The broker always; the blobs when a service reads or writes them; ingest's store with ingest.
        let probes = Probes {
            kafka: self.kafka.clone(),
            schemas: self.codec.describe(),
            blobs: (ingest.is_some() || query.is_some() || !workers.is_empty()).then(|| self.blobs.clone()),
            store: ingest.as_ref().map(|i| i.state().store.clone()),
            metrics: self.metrics.clone(),
        };
        let mut router = probes.router();
        let served = ingest.as_ref().filter(|_| *ingest_routes);
        if let Some(ingest) = served {
            router = router.merge(ingest.router());
        }
        if let Some(query) = query {
            router = router.merge(query.router());
        }
        if served.is_some() || query.is_some() {
            router = router
                .merge(alpes_platform::openapi::router(&openapi_document()?, self.metrics.clone()))
                .merge(alpes_console::router(self.metrics.clone(), self.limits.clone()));
        }
        Ok(alpes_platform::limits::with_cors(router, self.limits.cors()))
    }

    /// Serves until `shutdown` fires, then stops every task cleanly.
    pub async fn run_until_stopped(self, shutdown: Shutdown) -> Result<()> {
        let router = self.router()?;
        let App {
            listener,
            producer,
            services,
            server,
            ..
        } = self;
        let mut tasks = tokio::task::JoinSet::new();
        let Services {
            ingest,
            dimse,
            importer,
            notifier,
            query,
            billing,
            workers,
            ..
        } = services;
        if let Some(notifier) = notifier {
            let stop = shutdown.clone();
            tasks.spawn(async move { notifier.run_until_stopped(stop).await.map_err(anyhow::Error::from) });
        }
        if let Some(dimse) = dimse {
            let stop = shutdown.clone();
            tasks.spawn(async move { dimse.run_until_stopped(stop).await.map_err(anyhow::Error::from) });
        }
        if let Some(importer) = importer {
            let stop = shutdown.clone();
            tasks.spawn(async move { importer.run_until_stopped(stop).await.map_err(anyhow::Error::from) });
        }
        if let Some(ingest) = ingest {
            let stop = shutdown.clone();
            tasks.spawn(async move { ingest.run_until_stopped(stop).await.map_err(anyhow::Error::from) });
        }
        if let Some(query) = query {
            let stop = shutdown.clone();
            tasks.spawn(async move { query.run_until_stopped(stop).await.map_err(anyhow::Error::from) });
        }
        if let Some(billing) = billing {
            let stop = shutdown.clone();
            tasks.spawn(async move { billing.run_until_stopped(stop).await.map_err(anyhow::Error::from) });
        }
        for worker in workers {
            let stop = shutdown.clone();
            tasks.spawn(async move { worker.run_until_stopped(stop).await.map_err(anyhow::Error::from) });
        }
        let stop = shutdown.clone();
        // Each request carries its client's address: it names an anonymous caller's rate-limit bucket.
        let serve = alpes_platform::server::serve(listener, router, server, stop);
        tokio::pin!(serve);
        // A service task that ends before the shutdown (a consumer that could not start, a fenced
        // transactional worker) leaves the process unable to serve what it claims: it stops, with
        // an error, so its supervisor restarts it, rather than answering with a part missing.
        let mut failure = None;
        let served = loop {
            tokio::select! {
                served = &mut serve => break served,
                Some(ended) = tasks.join_next(), if !shutdown.is_triggered() => {
                    let error = match ended {
                        Ok(Ok(())) => None,
                        Ok(Err(e)) => Some(format!("failed: {e:#}")),
                        Err(e) => Some(format!("panicked: {e}")),
                    };
                    if shutdown.is_triggered() {
                        // The shutdown came first: this is the task stopping as asked.
                        if let Some(why) = error {
                            tracing::error!(reason = %why, "a task stopped with an error");
                        }
                        continue;
                    }
                    let why = error.unwrap_or_else(|| "stopped on its own".to_owned());
                    tracing::error!(reason = %why, "a service task ended before the shutdown; stopping the process");
                    failure = Some(anyhow::anyhow!("a service task {why}"));
                    shutdown.trigger();
                }
            }
        };
        shutdown.trigger();
        while let Some(r) = tasks.join_next().await {
            match r {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "a task stopped with an error"),
                Err(e) => tracing::error!(error = %e, "a task panicked"),
            }
        }
        if let Err(e) = producer.flush(Duration::from_secs(10)) {
            tracing::warn!(error = %e, "producer flush on shutdown");
        }
        served.context("the HTTP server failed")?;
        failure.map_or(Ok(()), Err)
    }
}

/// The engine's burned-in text safety net, as `GET /analisis/modelo` describes it.
fn analysis_model() -> alpes_query_api::routes::modelo::ModeloAnalisis {
    use alpes_anonymizer::ocr::{OcrMode, LABELS, OCR_MODES};
    alpes_query_api::routes::modelo::ModeloAnalisis {
        modelo: alpes_anonymizer_worker::analysis_model().into(),
        modos: OCR_MODES.map(str::to_owned).to_vec(),
        modo_por_defecto: OcrMode::default().name().to_owned(),
        etiquetas: LABELS.map(str::to_owned).to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alpes_platform::openapi::{doc_operations, operations, unresolved_refs};
    use std::collections::BTreeSet;

    #[test]
    fn the_merged_document_lists_every_route_of_the_listener_and_resolves_every_ref() {
        let doc = openapi_document().expect("the documents merge");
        let (ingest, query) = (alpes_ingest::routes::all(), alpes_query_api::routes::all());
        let (docs, probes) = (doc_operations(), alpes_platform::probes::operations());
        let routed: BTreeSet<(String, String)> = ingest
            .operations()
            .iter()
            .chain(query.operations())
            .chain(&docs)
            .chain(&probes)
            .chain(&alpes_console::operations())
            .map(|o| (o.method().to_uppercase(), o.path().to_owned()))
            .collect();
        let documented: BTreeSet<(String, String)> = operations(&doc).into_iter().map(|(m, p, _)| (m, p)).collect();
        assert_eq!(documented, routed);
        assert_eq!(unresolved_refs(&doc), Vec::<String>::new());
        let text = serde_json::to_string(&doc).expect("serializes");
        assert_eq!(serde_json::from_str::<serde_json::Value>(&text).expect("valid JSON"), doc);
    }
}
