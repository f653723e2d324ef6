//! Every service in one process: ingest (REST and STOW-RS), the anonymizer
//! worker(s), the outcome follower, billing, the materializer and the query
//! API (REST, QIDO-RS, WADO-RS), on one listener, with the configured
//! Kafka (or the in-process development broker), blobs and store.
//!
//! The store: with a ScyllaDB cluster named (`SCYLLA_NODES` /
//! `--scylla-nodes`), the ledger, the catalog, the identity store and the
//! ingest store (images, idempotency keys, open requests) live in ScyllaDB
//! ([`ScyllaLedger`], [`ScyllaCatalog`], [`ScyllaIdentity`], [`ScyllaIngest`],
//! one session shared by all; the tables must exist: `alpes migrate`), shared
//! by every replica; without one, in `alpes.db`. The audit table is the data
//! dir's SQLite either way.
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
//! before the listener serves, so `GET /ready` answers 200 only once each has
//! joined its group.
//!
//! Tokens are signed and verified as [`JwtArgs`] says: HS256 with the data
//! dir's secret (the default), or an EdDSA key ring ([`crate::jwt_keys`]).
//!
//! [`App::build`] binds the listener and connects everything;
//! [`App::run_until_stopped`] serves until the shutdown signal, then stops
//! every task cleanly (offsets committed, producers flushed).
//!
//! The listener also serves [`openapi_document`], the services' OpenAPI
//! documents merged into one, at `/openapi.json`, and the `/docs` page.

use crate::jwt_keys::{JwtAlg, JwtArgs};
use crate::{instance, secret};
use alpes_anonymizer::Secret;
use alpes_anonymizer_worker::{Worker, WorkerConfig};
use alpes_billing::Billing;
use alpes_ingest::identity::{Identity, IdentityArgs, NewUser};
use alpes_ingest::marks::{MarksWriter, PublishedMarks};
use alpes_ingest::IngestState;
use alpes_platform::audit::Auditor;
use alpes_platform::auth::Jwt;
use alpes_platform::blobs::{BlobArgs, Blobs};
use alpes_platform::kafka::{Kafka, KafkaArgs, Producer};
use alpes_platform::limits::{LimitArgs, Limits};
use alpes_platform::metrics::Metrics;
use alpes_platform::shutdown::Shutdown;
use alpes_platform::store::{
    AuditStore, CatalogStore, IdentityStore, IngestStore, LedgerStore, ScyllaArgs, ScyllaCatalog, ScyllaIdentity, ScyllaIngest,
    ScyllaLedger, SqliteAudit, SqliteCatalog, SqliteIdentity, SqliteLedger, SqliteStore,
};
use alpes_query_api::{Pricing, PricingArgs, QueryState};
use alpes_schemas::Codec;
use anyhow::{Context, Result};
use std::future::IntoFuture;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// One of the services a process runs (`--services`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Service {
    /// REST and STOW-RS uploads, accounts and tokens, and the outcome follower.
    Ingest,
    /// The anonymizer worker(s).
    Anonymizer,
    /// The ledgers: usage and payments into balances.
    Billing,
    /// The materializer, the audit projector and the query routes (REST, QIDO-RS, WADO-RS).
    QueryApi,
}

impl Service {
    /// Every service, the default.
    pub const ALL: [Service; 4] = [Service::Ingest, Service::Anonymizer, Service::Billing, Service::QueryApi];
}

/// How to run the platform.
#[derive(Debug, Clone, clap::Args)]
pub struct Settings {
    /// The services this process runs, comma-separated: ingest, anonymizer, billing, query-api.
    /// Every process answers `GET /health` and `GET /metrics`; a deployment runs each service
    /// in its own processes (replicas share the key directory, the cluster and the buckets).
    #[arg(
        long,
        env = "ALPES_SERVICES",
        value_enum,
        value_delimiter = ',',
        default_value = "ingest,anonymizer,billing,query-api"
    )]
    pub services: Vec<Service>,
    /// Where keys, the store and local blobs live.
    #[arg(long, env = "ALPES_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// The one listener for every route.
    #[arg(long, env = "ALPES_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Largest accepted upload body, bytes.
    #[arg(long, env = "ALPES_MAX_UPLOAD_BYTES", default_value_t = alpes_ingest::DEFAULT_MAX_UPLOAD)]
    pub max_upload: u64,
    /// Anonymizer workers in this process (each a group member with its own engine pool).
    #[arg(long, env = "ALPES_WORKERS", default_value_t = 1)]
    pub workers: usize,
    /// Engine threads per worker (default: one per core).
    #[arg(long, env = "ALPES_JOBS")]
    pub jobs: Option<usize>,
    /// Produce the worker's outputs in Kafka transactions that also commit its offsets.
    #[arg(long, env = "ALPES_TRANSACTIONAL")]
    pub transactional: bool,
    /// Flush every local blob and every store commit to disk before an upload is
    /// acknowledged, so it survives a power loss. Off, an acknowledged upload
    /// survives a crash of the process (the OS has it), as Kafka's own log does.
    #[arg(long, env = "ALPES_FSYNC")]
    pub fsync: bool,
    /// The currency balances are shown in by default (ISO 4217).
    #[arg(long, env = "ALPES_CURRENCY", default_value = "EUR")]
    pub currency: String,
    /// Download prices and the repeat window.
    #[command(flatten)]
    pub pricing: PricingArgs,
    /// Kafka settings.
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// Blob store settings.
    #[command(flatten)]
    pub blobs: BlobArgs,
    /// ScyllaDB settings: with nodes named, the ledger, the catalog, the identity store and the
    /// ingest store live there (the audit table stays SQLite).
    #[command(flatten)]
    pub scylla: ScyllaArgs,
    /// Token lifetimes, the lockout rule and the password hasher.
    #[command(flatten)]
    pub identity: IdentityArgs,
    /// Rate limits, body and time limits, CORS.
    #[command(flatten)]
    pub limits: LimitArgs,
    /// The token keys: HS256 (the default) or an EdDSA key ring.
    #[command(flatten)]
    pub jwt: JwtArgs,
    /// Creates this admin at start if the instance has no admin yet; the password comes from
    /// ALPES_BOOTSTRAP_ADMIN_PASSWORD (an environment variable only, never a flag).
    #[arg(long, env = "ALPES_BOOTSTRAP_ADMIN_EMAIL", value_name = "EMAIL")]
    pub bootstrap_admin_email: Option<String>,
}

impl Settings {
    /// Whether this process runs `service`.
    pub fn runs(&self, service: Service) -> bool {
        self.services.contains(&service)
    }

    /// The embedded defaults rooted at `data_dir`, listening on `listen`.
    pub fn embedded(data_dir: PathBuf, listen: SocketAddr) -> Self {
        Settings {
            services: Service::ALL.to_vec(),
            data_dir,
            listen,
            max_upload: alpes_ingest::DEFAULT_MAX_UPLOAD,
            workers: 1,
            jobs: None,
            transactional: false,
            fsync: false,
            currency: "EUR".into(),
            pricing: PricingArgs::default(),
            kafka: KafkaArgs::default(),
            blobs: BlobArgs {
                s3_endpoint: None,
                s3_bucket: None,
                s3_region: "us-east-1".into(),
                s3_access_key_id: None,
                s3_secret_access_key: None,
                shared: false,
            },
            scylla: ScyllaArgs::default(),
            identity: IdentityArgs::default(),
            limits: LimitArgs::default(),
            jwt: JwtArgs::default(),
            bootstrap_admin_email: None,
        }
    }
}

/// The stores `alpes up` keeps on ScyllaDB when it is configured, shared by every replica.
#[derive(Debug)]
pub struct SharedStores {
    /// Ledgers and balances.
    pub ledger: Arc<dyn LedgerStore>,
    /// The query side's tables.
    pub catalog: Arc<dyn CatalogStore>,
    /// Accounts and credentials.
    pub identity: Arc<dyn IdentityStore>,
    /// Images, idempotency keys and open requests.
    pub ingest: Arc<dyn IngestStore>,
}

/// The identity store alone (`alpes admin create`): ScyllaDB when configured, else the data dir's SQLite.
pub async fn open_identity(scylla: &ScyllaArgs, data_dir: &std::path::Path, fsync: bool) -> Result<Arc<dyn IdentityStore>> {
    if scylla.configured() {
        let identity = ScyllaIdentity::connect(scylla).await.with_context(|| scylla_hint(scylla))?;
        return Ok(Arc::new(identity));
    }
    Ok(Arc::new(
        SqliteIdentity::open(&data_dir.join("alpes.db"), fsync).context("cannot open the identity store")?,
    ))
}

fn scylla_hint(scylla: &ScyllaArgs) -> String {
    format!(
        "cannot reach ScyllaDB at {} or prepare statements in keyspace {} (has `alpes migrate` been run?)",
        scylla.contact_points().join(","),
        scylla.keyspace
    )
}

/// The ledger, the catalog, the identity store and the ingest store: on ScyllaDB when
/// `--scylla-nodes` is set, else in the data dir's SQLite file.
async fn open_shared_stores(settings: &Settings) -> Result<SharedStores> {
    let scylla: &ScyllaArgs = &settings.scylla;
    if scylla.configured() {
        let session = scylla.connect().await.with_context(|| scylla_hint(scylla))?;
        let ledger = ScyllaLedger::new(Arc::clone(&session), scylla)
            .await
            .with_context(|| scylla_hint(scylla))?;
        let catalog = ScyllaCatalog::new(Arc::clone(&session), scylla)
            .await
            .with_context(|| scylla_hint(scylla))?;
        let identity = ScyllaIdentity::new(Arc::clone(&session), scylla)
            .await
            .with_context(|| scylla_hint(scylla))?;
        let ingest = ScyllaIngest::new(session, scylla).await.with_context(|| scylla_hint(scylla))?;
        tracing::info!(
            store = "scylladb",
            nodes = %scylla.contact_points().join(","),
            keyspace = %scylla.keyspace,
            consistency = ?scylla.consistency,
            "ledger, catalog, identity and ingest store on ScyllaDB; the audit table stays on SQLite"
        );
        return Ok(SharedStores {
            ledger: Arc::new(ledger),
            catalog: Arc::new(catalog),
            identity: Arc::new(identity),
            ingest: Arc::new(ingest),
        });
    }
    let db = settings.data_dir.join("alpes.db");
    let ledger = SqliteLedger::open(&db, settings.fsync).context("cannot open the ledger")?;
    let catalog = SqliteCatalog::open(&db, settings.fsync).context("cannot open the catalog")?;
    let identity = open_identity(scylla, &settings.data_dir, settings.fsync).await?;
    let ingest = SqliteStore::open_with(&db, settings.fsync).context("cannot open the store")?;
    tracing::info!(store = "sqlite", path = %db.display(), "every store on SQLite");
    Ok(SharedStores {
        ledger: Arc::new(ledger),
        catalog: Arc::new(catalog),
        identity,
        ingest: Arc::new(ingest),
    })
}

/// Creates the admin named by `--bootstrap-admin-email` (password from
/// `ALPES_BOOTSTRAP_ADMIN_PASSWORD`) unless an admin exists already.
async fn bootstrap_admin(settings: &Settings, identity: &Identity, producer: &Producer) -> Result<()> {
    let Some(email) = &settings.bootstrap_admin_email else {
        return Ok(());
    };
    if identity.store.has_admin().await? {
        return Ok(());
    }
    let password = std::env::var("ALPES_BOOTSTRAP_ADMIN_PASSWORD")
        .context("--bootstrap-admin-email needs ALPES_BOOTSTRAP_ADMIN_PASSWORD in the environment")?;
    let user = NewUser {
        nombre: "Administrator".into(),
        email: email.clone(),
        password,
        role: alpes_platform::auth::Role::Admin,
        organization: None,
        created_by: Some("bootstrap".into()),
    };
    let admin = identity
        .register(producer, user, None)
        .await
        .map_err(|e| anyhow::anyhow!("cannot create the bootstrap admin: {} ({})", e.message, e.code))?;
    tracing::info!(user_id = %admin.user_id, "bootstrap admin created");
    Ok(())
}

/// The platform's OpenAPI document: ingest's and the query API's, merged
/// (every route the listener serves).
pub fn openapi_document() -> Result<serde_json::Value> {
    alpes_platform::openapi::merge(
        "Alpes",
        "Medical images in, de-identified, and out to research consumers: every REST, STOW-RS, QIDO-RS and \
         WADO-RS route of `alpes up`. Every error is JSON `{\"error\": code, \"message\": text}` with the status \
         its code implies; every answer carries `X-Request-Id`. Credentials: `Authorization: Bearer <JWT>` \
         (from `POST /auth/login`) or `X-API-Key: alpes_<id>_<secret>`.",
        &[alpes_ingest::openapi::document(), alpes_query_api::openapi::document()],
    )
    .map_err(|e| anyhow::anyhow!("the services' OpenAPI documents disagree: {e}"))
}

/// The engine secret file under a data dir.
pub fn engine_secret_path(data_dir: &std::path::Path) -> PathBuf {
    data_dir.join("keys").join("engine.secret")
}

/// The running platform, built and bound but not yet serving.
#[derive(Debug)]
pub struct App {
    /// Writes ingest's `published` marks; runs with the other tasks.
    marks: MarksWriter,
    listener: tokio::net::TcpListener,
    addr: SocketAddr,
    state: IngestState,
    kafka: Arc<Kafka>,
    codec: Codec,
    blobs: Blobs,
    secret: Secret,
    ledger: Arc<dyn LedgerStore>,
    catalog: Arc<dyn CatalogStore>,
    audit: Arc<dyn AuditStore>,
    settings: Settings,
    instance: String,
    republished: usize,
}

impl App {
    /// Creates keys on first start, connects Kafka (or starts the development
    /// broker), opens blobs and store, re-publishes unfinished requests and binds.
    pub async fn build(settings: Settings) -> Result<App> {
        let data = &settings.data_dir;
        std::fs::create_dir_all(data).with_context(|| format!("cannot create data dir {}", data.display()))?;
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
        let (instance, created) = instance::load_or_create(data)?;
        tracing::info!(instance = %instance, created, "instance id of the data dir");
        if settings.transactional {
            // Exactly once needs the worker's input read committed (librdkafka's default): only
            // then does a partition that changed hands restart past the last committed transaction.
            let mut props = settings.kafka.props.iter().chain(&settings.kafka.consumer_props);
            if let Some((_, level)) = props.rfind(|(k, _)| k == "isolation.level") {
                anyhow::ensure!(
                    level == "read_committed",
                    "--transactional needs the consumers' isolation.level to be read_committed, not {level}"
                );
            }
        }
        let metrics = Arc::new(Metrics::new());
        let mut kafka_args = settings.kafka.clone();
        if kafka_args.bootstrap.as_deref().is_none_or(|b| b.trim().is_empty()) && kafka_args.partitions.is_none() {
            // librdkafka's mock broker finds a fetch offset by scanning every message set the
            // partition retains (up to 5 MB), from the oldest: each partition costs CPU on every
            // fetch. The development broker gets as many partitions as there are workers, at least 2.
            kafka_args.partitions = Some(i32::try_from(settings.workers.max(2)).unwrap_or(i32::MAX));
        }
        let kafka = Arc::new(Kafka::connect(&kafka_args).await.context("cannot reach Kafka")?);
        let codec = Codec::from_env();
        let blobs = Blobs::open(&settings.blobs, &data.join("blobs"), settings.fsync).context("cannot open the blob store")?;
        let SharedStores {
            ledger,
            catalog,
            identity: identity_store,
            ingest: store,
        } = open_shared_stores(&settings).await?;
        // Every upload waits on its own send: holding records back to batch them only adds latency.
        let producer = Producer::with_linger(&kafka, codec.clone(), metrics.clone(), Duration::ZERO)?;
        let ingest = settings.runs(Service::Ingest);
        let republished = if ingest {
            alpes_ingest::republish::republish(store.as_ref(), &producer)
                .await
                .context("cannot re-publish unfinished requests")?
        } else {
            0
        };
        let audit: Arc<dyn AuditStore> =
            Arc::new(SqliteAudit::open(&data.join("alpes.db"), settings.fsync).context("cannot open the audit table")?);
        let identity = Identity::new(identity_store.clone(), settings.identity.clone()).context("bad password hashing settings")?;
        if ingest {
            let announced = alpes_ingest::identity::republish_accounts(identity_store.as_ref(), &producer)
                .await
                .context("cannot announce new accounts")?;
            if announced > 0 {
                tracing::info!(accounts = announced, "announced accounts created while the platform was down");
            }
            bootstrap_admin(&settings, &identity, &producer).await?;
        }
        let listener = tokio::net::TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("cannot listen on {}", settings.listen))?;
        let addr = listener.local_addr()?;
        let jwt = Arc::new(tokens.jwt.with_revocations(identity_store));
        let (published, marks) = PublishedMarks::new(store.clone());
        let state = IngestState {
            limits: Limits::new(settings.limits.clone(), jwt.clone()),
            jwt,
            kafka: kafka.clone(),
            producer: producer.clone(),
            blobs: blobs.clone(),
            published,
            store,
            ledger: ledger.clone(),
            auditor: Auditor::new(producer.clone(), "ingest", metrics.clone()),
            metrics,
            max_upload: settings.max_upload,
            identity,
        };
        Ok(App {
            marks,
            listener,
            addr,
            state,
            kafka,
            codec,
            blobs,
            secret: Secret::new(engine_key),
            ledger,
            catalog,
            audit,
            settings,
            instance,
            republished,
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
        self.state.jwt.clone()
    }

    /// The blob store.
    pub fn blobs(&self) -> Blobs {
        self.blobs.clone()
    }

    /// The codec events are written with.
    pub fn codec(&self) -> Codec {
        self.codec.clone()
    }

    /// The providers' ledgers and balances.
    pub fn ledger(&self) -> Arc<dyn LedgerStore> {
        self.ledger.clone()
    }

    /// The query side's images, users and usage.
    pub fn catalog(&self) -> Arc<dyn CatalogStore> {
        self.catalog.clone()
    }

    /// The audit trail's table.
    pub fn audit(&self) -> Arc<dyn AuditStore> {
        self.audit.clone()
    }

    /// How many requests were re-published at start.
    pub fn republished(&self) -> usize {
        self.republished
    }

    /// Serves until `shutdown` fires, then stops every task cleanly.
    pub async fn run_until_stopped(self, shutdown: Shutdown) -> Result<()> {
        let App {
            marks,
            listener,
            state,
            kafka,
            codec,
            blobs,
            secret,
            ledger,
            catalog,
            audit,
            settings,
            instance,
            ..
        } = self;
        let mut tasks = tokio::task::JoinSet::new();
        {
            let stop = shutdown.clone();
            tasks.spawn(async move {
                marks.run_until_stopped(stop).await;
                Ok(())
            });
        }
        let workers = if settings.runs(Service::Anonymizer) {
            settings.workers.max(1)
        } else {
            0
        };
        for _ in 0..workers {
            let mut cfg = WorkerConfig {
                transactional: settings.transactional,
                // Stable across restarts and distinct per data dir: see the module docs.
                instance: instance.clone(),
                ..WorkerConfig::default()
            };
            if let Some(j) = settings.jobs {
                cfg.jobs = j.max(1);
            }
            kafka.readiness().expect(&cfg.group);
            let worker = Worker::build(
                kafka.clone(),
                blobs.clone(),
                codec.clone(),
                secret.clone(),
                state.metrics.clone(),
                cfg,
            )?;
            let stop = shutdown.clone();
            tasks.spawn(async move { worker.run_until_stopped(stop).await.map_err(anyhow::Error::from) });
        }
        if settings.runs(Service::Ingest) {
            let (kafka, codec, store, metrics, stop) = (
                kafka.clone(),
                codec.clone(),
                state.store.clone(),
                state.metrics.clone(),
                shutdown.clone(),
            );
            // The ingest store is this data dir's: its follower reads every outcome in a group of its own.
            let group = alpes_ingest::outcomes::group(&instance);
            kafka.readiness().expect(&group);
            tasks.spawn(async move {
                alpes_ingest::outcomes::run_until_stopped(kafka, codec, store, metrics, &group, stop)
                    .await
                    .map_err(anyhow::Error::from)
            });
        }
        if settings.runs(Service::Billing) {
            let billing = Billing::build(
                kafka.clone(),
                codec.clone(),
                ledger.clone(),
                state.metrics.clone(),
                state.producer.clone(),
            );
            kafka.readiness().expect(billing.group());
            let stop = shutdown.clone();
            tasks.spawn(async move { billing.run_until_stopped(stop).await.map_err(anyhow::Error::from) });
        }
        let query_api = settings.runs(Service::QueryApi);
        if query_api {
            let (kafka, codec, catalog, metrics, stop) = (
                kafka.clone(),
                codec.clone(),
                catalog.clone(),
                state.metrics.clone(),
                shutdown.clone(),
            );
            kafka.readiness().expect(alpes_query_api::materializer::GROUP);
            tasks.spawn(async move {
                alpes_query_api::materializer::run_until_stopped(kafka, codec, catalog, metrics, alpes_query_api::materializer::GROUP, stop)
                    .await
                    .map_err(anyhow::Error::from)
            });
        }
        if query_api {
            let (kafka, codec, audit, metrics, stop) =
                (kafka.clone(), codec.clone(), audit.clone(), state.metrics.clone(), shutdown.clone());
            // The audit table is this data dir's too: every query-api replica reads the whole trail.
            let group = alpes_query_api::audit::group(&instance);
            kafka.readiness().expect(&group);
            tasks.spawn(async move {
                alpes_query_api::audit::run_until_stopped(kafka, codec, audit, metrics, &group, stop)
                    .await
                    .map_err(anyhow::Error::from)
            });
        }
        let producer = state.producer.clone();
        let query = QueryState {
            jwt: state.jwt.clone(),
            limits: state.limits.clone(),
            catalog,
            ledger,
            audit,
            auditor: Auditor::new(producer.clone(), "query-api", state.metrics.clone()),
            blobs: blobs.clone(),
            producer: producer.clone(),
            pricing: Arc::new(Pricing::new(&settings.pricing, &settings.currency)),
            metrics: state.metrics.clone(),
            currency: settings.currency.as_str().into(),
        };
        let docs = alpes_platform::openapi::router(&openapi_document()?, state.metrics.clone());
        let cors = state.limits.cors();
        let ingest = settings.runs(Service::Ingest);
        let mut router = if ingest {
            alpes_ingest::api_router(state)
        } else {
            alpes_ingest::probe_router(state)
        };
        if query_api {
            router = router.merge(alpes_query_api::api_router(query));
        }
        if ingest || query_api {
            router = router.merge(docs);
        }
        let router = alpes_platform::limits::with_cors(router, cors);
        let stop = shutdown.clone();
        // The client's address names an anonymous caller's rate-limit bucket.
        let serve = axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(async move { stop.wait().await })
            .into_future();
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

#[cfg(test)]
mod tests {
    use super::*;
    use alpes_platform::openapi::{assert_covers_routes, unresolved_refs};
    use clap::{Args, FromArgMatches};

    #[test]
    fn the_merged_document_covers_every_route_of_the_listener_and_resolves_every_ref() {
        let doc = openapi_document().expect("the documents merge");
        assert_covers_routes(
            &doc,
            &[include_str!("../../ingest/src/lib.rs"), include_str!("../../query-api/src/lib.rs")],
        );
        assert_eq!(unresolved_refs(&doc), Vec::<String>::new());
        let text = serde_json::to_string(&doc).expect("serializes");
        assert_eq!(serde_json::from_str::<serde_json::Value>(&text).expect("valid JSON"), doc);
    }

    #[test]
    fn the_up_flags_do_not_clash_and_name_scylladb_only_when_asked() {
        let cmd = Settings::augment_args(clap::Command::new("up"));
        cmd.clone().debug_assert();
        let m = cmd
            .try_get_matches_from(["up", "--scylla-nodes", "a:9042,b:9042", "--scylla-keyspace", "alpes_prod"])
            .unwrap();
        let s = Settings::from_arg_matches(&m).unwrap();
        assert!(s.scylla.configured());
        assert_eq!(
            (s.scylla.contact_points(), s.scylla.keyspace.as_str()),
            (vec!["a:9042", "b:9042"], "alpes_prod")
        );
        let embedded = Settings::embedded(PathBuf::from("data"), "127.0.0.1:0".parse().unwrap());
        assert!(!embedded.scylla.configured());
    }
}
