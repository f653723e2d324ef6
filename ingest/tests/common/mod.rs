//! `spawn_app()`: the ingest routes on 127.0.0.1:0 with the in-process mock
//! Kafka cluster, local blobs in a temp dir and an in-memory store.

#![allow(dead_code)]

use alpes_ingest::{IngestApp, IngestConfig, IngestDeps};
use alpes_platform::auth::{Jwt, Role};
use alpes_platform::blobs::Blobs;
use alpes_platform::kafka::consumer::next_before;
use alpes_platform::kafka::{Kafka, KafkaArgs, Producer};
use alpes_platform::metrics::Metrics;
use alpes_platform::store::{IngestStore, SqliteStore};
use alpes_schemas::{Codec, Event};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::Message;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct TestApp {
    pub base: String,
    pub jwt: Arc<Jwt>,
    pub kafka: Arc<Kafka>,
    pub store: Arc<SqliteStore>,
    pub ledger: Arc<alpes_platform::store::SqliteLedger>,
    pub identity: Arc<alpes_platform::store::SqliteIdentity>,
    pub codec: Codec,
    /// The local blob directory (shared with the replicas of [`spawn_replica`]).
    pub blobs_dir: Arc<tempfile::TempDir>,
    pub client: reqwest::Client,
}

pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixtures_dir().join(name)).expect("fixture")
}

pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../anonymizer/tests/fixtures/dicom")
}

/// Identity settings for tests: cheap argon2id (the production parameters cost ~50 ms a hash),
/// 3 failures lock for 60 s.
pub fn test_identity_args() -> alpes_ingest::identity::IdentityArgs {
    alpes_ingest::identity::IdentityArgs {
        lockout_failures: 3,
        lockout_window_secs: 60,
        lockout_secs: 60,
        passwords: alpes_platform::password::PasswordArgs {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        },
        ..Default::default()
    }
}

pub async fn spawn_app(max_upload: u64) -> TestApp {
    spawn_app_with(max_upload, test_identity_args()).await
}

pub async fn spawn_app_with(max_upload: u64, identity_args: alpes_ingest::identity::IdentityArgs) -> TestApp {
    spawn(max_upload, identity_args, None, false).await
}

/// An app whose local blob store is flagged shared (as S3 always is) or private.
pub async fn spawn_app_with_blobs(max_upload: u64, shared: bool) -> TestApp {
    spawn(max_upload, test_identity_args(), None, shared).await
}

/// Another ingest replica writing to `other`'s blob directory, flagged shared: its own
/// broker, store and accounts, as a replica of a deployment has its own data dir.
pub async fn spawn_replica(other: &TestApp) -> TestApp {
    spawn(64 << 20, test_identity_args(), Some(other.blobs_dir.clone()), true).await
}

async fn spawn(
    max_upload: u64,
    identity_args: alpes_ingest::identity::IdentityArgs,
    blobs_dir: Option<Arc<tempfile::TempDir>>,
    shared_blobs: bool,
) -> TestApp {
    let kafka = Arc::new(
        Kafka::connect(&KafkaArgs {
            delivery_timeout_ms: 3000,
            partitions: Some(3),
            ..KafkaArgs::default()
        })
        .await
        .expect("mock kafka"),
    );
    let blobs_dir = blobs_dir.unwrap_or_else(|| Arc::new(tempfile::tempdir().expect("tmp")));
    let blobs = Blobs::local(blobs_dir.path()).expect("blobs").with_shared(shared_blobs);
    let store = Arc::new(SqliteStore::in_memory().expect("store"));
    let ledger = Arc::new(alpes_platform::store::SqliteLedger::in_memory().expect("ledger"));
    let metrics = Arc::new(Metrics::new());
    let codec = Codec::single_object();
    let producer = Producer::new(&kafka, codec.clone(), metrics.clone()).expect("producer");
    let identity = Arc::new(alpes_platform::store::SqliteIdentity::in_memory().expect("identity"));
    let jwt = Arc::new(Jwt::new(b"test-key-test-key-test-key-test-key").with_revocations(identity.clone()));
    let deps = IngestDeps {
        kafka: kafka.clone(),
        producer,
        blobs,
        store: store.clone() as Arc<dyn IngestStore>,
        imports: Arc::new(alpes_platform::store::SqliteImports::in_memory().expect("imports")),
        ledger: ledger.clone(),
        identity: identity.clone(),
        limits: alpes_platform::limits::Limits::new(alpes_platform::limits::LimitArgs::default(), jwt.clone()),
        jwt: jwt.clone(),
        metrics,
        registry: None,
    };
    // Bound first: its address is the links' base.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let config = IngestConfig {
        max_upload,
        identity: identity_args,
        instance: "ingest-test".into(),
        bootstrap_admin: None,
        public_url: alpes_platform::public_url::PublicUrl::of_listener(addr),
    };
    let app = IngestApp::build(deps, config).await.expect("ingest");
    let state = app.state().clone();
    // Never stopped: its tasks end with the test's runtime.
    tokio::spawn(app.run_until_stopped(alpes_platform::shutdown::Shutdown::new()));
    tokio::spawn(async move { axum::serve(listener, alpes_ingest::router(state)).await });
    TestApp {
        base: format!("http://{addr}"),
        jwt,
        kafka,
        store,
        ledger,
        identity,
        codec,
        blobs_dir,
        client: reqwest::Client::new(),
    }
}

impl TestApp {
    /// A token of `user` with `role`; the account is created first unless one has that id (the
    /// platform refuses a token naming no account).
    pub async fn token(&self, user: &str, role: Role) -> String {
        let accounts = alpes_ingest::identity::Identity::new(self.identity.clone(), test_identity_args()).expect("identity");
        let account = accounts.token_subject(user, Some(role), true).await.expect("the token's account");
        self.jwt.issue(&account.user_id, role, Duration::from_secs(600)).expect("token")
    }

    pub async fn provider(&self) -> String {
        self.token("prov-1", Role::Proveedor).await
    }

    /// `method path` with the JSON `body`, as `user` with `role`: the status and the JSON answered.
    pub async fn json_as(
        &self,
        method: reqwest::Method,
        path: &str,
        (user, role): (&str, Role),
        body: &serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let res = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(self.token(user, role).await)
            .json(body)
            .send()
            .await
            .expect("request");
        let status = res.status().as_u16();
        (status, res.json().await.expect("JSON"))
    }

    /// `POST {path}` as provider `prov-1` with a body of `content_type`.
    pub async fn post(&self, path: &str, content_type: impl AsRef<str>, body: impl Into<reqwest::Body>) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.base))
            .bearer_auth(self.provider().await)
            .header("content-type", content_type.as_ref())
            .body(body)
            .send()
            .await
            .expect("send")
    }

    /// Files under the blob dir (excluding directories).
    pub fn blob_files(&self) -> Vec<PathBuf> {
        fn walk(d: &std::path::Path, out: &mut Vec<PathBuf>) {
            for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
                if e.path().is_dir() {
                    walk(&e.path(), out);
                } else {
                    out.push(e.path());
                }
            }
        }
        let mut out = Vec::new();
        walk(self.blobs_dir.path(), &mut out);
        out
    }

    /// A fresh consumer group reading `E::TOPIC` from the start.
    pub fn consumer<E: Event>(&self) -> StreamConsumer {
        let mut cfg = self.kafka.client_config();
        cfg.set("group.id", format!("test-{}", uuid::Uuid::new_v4()))
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "false");
        let c: StreamConsumer = cfg.create().expect("consumer");
        c.subscribe(&[E::TOPIC]).expect("subscribe");
        c
    }

    /// Reads events of type `E` until `n` arrived or `wait` passed; returns them with their keys.
    pub async fn events<E: Event>(&self, c: &StreamConsumer, n: usize, wait: Duration) -> Vec<(String, E)> {
        let deadline = Instant::now() + wait;
        let mut out = Vec::new();
        while out.len() < n {
            let Some(m) = next_before(c, deadline).await else { break };
            let key = String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned();
            // `alpes.audit` carries two record types: skip the other one.
            match self.codec.decode::<E>(m.payload().unwrap_or_default()).await {
                Ok(ev) => out.push((key, ev)),
                Err(alpes_schemas::Error::WrongType { .. }) => {}
                Err(e) => panic!("decode: {e}"),
            }
        }
        out
    }
}
