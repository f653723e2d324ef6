//! `spawn_app()`: the query routes on 127.0.0.1:0 over in-memory SQLite
//! stores, local blobs in a temporary dir and the in-process mock cluster
//! (where downloads produce their usage events).

#![allow(dead_code)]

use alpes_domain::ledger::{Approval, ConsumerTerms, LedgerStore};
use alpes_platform::auth::{Jwt, Role};
use alpes_platform::blobs::Blobs;
use alpes_platform::kafka::consumer::next_before;
use alpes_platform::kafka::{Kafka, KafkaArgs, Producer};
use alpes_platform::limits::{LimitArgs, Limits};
use alpes_platform::metrics::Metrics;
use alpes_platform::store::{SqliteAudit, SqliteCatalog, SqliteIdentity, SqliteLedger};
use alpes_query_api::{router, PricingArgs, QueryApp, QueryConfig, QueryDeps};
use alpes_schemas::{Codec, Event};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::Message;
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct TestApp {
    pub base: String,
    pub jwt: Arc<Jwt>,
    pub kafka: Arc<Kafka>,
    pub ledger: Arc<SqliteLedger>,
    pub catalog: Arc<SqliteCatalog>,
    pub audit: Arc<SqliteAudit>,
    pub identity: Arc<SqliteIdentity>,
    pub blobs: Blobs,
    pub codec: Codec,
    pub client: reqwest::Client,
    _blobs_dir: tempfile::TempDir,
}

/// The bytes of CT_small.dcm, the anonymized image the tests serve.
pub fn fixture() -> Vec<u8> {
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../anonymizer/tests/fixtures/dicom/CT_small.dcm"
    ))
    .expect("fixture")
}

/// Image a of provider p1, anonymized (CT, study 1.2.3) with [`fixture`]'s bytes in `app`'s blob store.
pub async fn image_a(app: &TestApp) -> alpes_platform::store::CatalogEvent {
    let instance = ("1.2.3", "1.2.3.4", "1.2.3.4.5", "CT", "PSEUDO-1", "20200102");
    stored_output(app, fixture(), "a", instance).await
}

/// The output event `n1` of provider p1's image `image` (at 110) as `instance`, whose
/// anonymized blob, stored in the app's blob store, is `bytes`.
pub async fn stored_output(
    app: &TestApp,
    bytes: Vec<u8>,
    image: &str,
    instance: alpes_platform::store::conformance::Instance<'_>,
) -> alpes_platform::store::CatalogEvent {
    let size = bytes.len() as i64;
    let (key, sha) = app.blobs.put_bytes("anonymized", bytes.into()).await.expect("blob");
    let mut e = alpes_platform::store::conformance::anonymized("n1", image, "p1", 110, instance);
    if let alpes_platform::store::CatalogEvent::Anonymized(a) = &mut e {
        (a.blob_key, a.sha256, a.size_bytes) = (key, sha, size);
    }
    e
}

/// Consumer `user`'s terms once an admin approved it with `limit` minor units of EUR.
pub fn approved(user: &str, limit: i64) -> ConsumerTerms {
    ConsumerTerms {
        user_id: user.to_owned(),
        verified: true,
        credit_limit_minor: limit,
        currency: "EUR".into(),
        daily_downloads: None,
        daily_bytes: None,
        updated_at: 1,
        updated_by: "admin-1".into(),
    }
}

/// The app with prices CT=250, default 100, and a one-hour repeat window; consumers
/// download once approved (lab-1 is).
pub async fn spawn_app() -> TestApp {
    let kafka = Arc::new(Kafka::connect(&KafkaArgs::default()).await.expect("mock cluster"));
    let codec = Codec::single_object();
    let metrics = Arc::new(Metrics::new());
    let blobs_dir = tempfile::tempdir().expect("tmp");
    let blobs = Blobs::local(blobs_dir.path()).expect("blobs");
    let ledger = Arc::new(SqliteLedger::in_memory().expect("ledger"));
    let catalog = Arc::new(SqliteCatalog::in_memory().expect("catalog"));
    let jwt = Arc::new(Jwt::new(b"query-test-key-query-test-key-32"));
    let pricing = PricingArgs {
        default_minor: 100,
        by_modality: vec![("CT".into(), 250)],
        repeat_window_secs: 3600,
        approval: Approval::Admin,
    };
    // lab-1, the consumer most tests download as, is approved with ample credit.
    ledger.set_terms(approved("lab-1", 1_000_000)).await.expect("approve lab-1");
    let audit = Arc::new(SqliteAudit::in_memory().expect("audit"));
    let identity = Arc::new(SqliteIdentity::in_memory().expect("identity"));
    let producer = Producer::new(&kafka, codec.clone(), metrics.clone()).expect("producer");
    let deps = QueryDeps {
        kafka: kafka.clone(),
        producer,
        catalog: catalog.clone(),
        ledger: ledger.clone(),
        audit: audit.clone(),
        identity: identity.clone(),
        blobs: blobs.clone(),
        limits: Limits::new(LimitArgs::default(), jwt.clone()),
        jwt: jwt.clone(),
        metrics,
        registry: None,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let base = format!("http://{addr}");
    let config = QueryConfig {
        pricing,
        currency: "EUR".into(),
        instance: "query-test".into(),
        analysis_model: analysis_model(),
        public_url: alpes_query_api::PublicUrl::of_listener(addr),
    };
    // Its consumers are not run: the tests write the catalog themselves.
    let state = QueryApp::build(deps, config).state().clone();
    tokio::spawn(async move { axum::serve(listener, router(state)).await });
    TestApp {
        base,
        jwt,
        kafka,
        ledger,
        catalog,
        audit,
        identity,
        blobs,
        codec,
        client: reqwest::Client::new(),
        _blobs_dir: blobs_dir,
    }
}

impl TestApp {
    /// A GET as `who` (or anonymous) with extra headers; the raw response.
    pub async fn get_raw(&self, path: &str, who: Option<(&str, Role)>, headers: &[(&str, &str)]) -> reqwest::Response {
        let mut req = self.client.get(format!("{}{path}", self.base));
        if let Some((user, role)) = who {
            let token = self.jwt.issue(user, role, Duration::from_secs(60)).expect("token");
            req = req.bearer_auth(token);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send().await.expect("request")
    }

    /// A GET as `who`; the status and the JSON body.
    pub async fn get(&self, path: &str, who: Option<(&str, Role)>) -> (u16, Value) {
        let res = self.get_raw(path, who, &[]).await;
        let status = res.status().as_u16();
        (status, res.json().await.expect("a JSON body"))
    }

    /// A fresh consumer group reading `E::TOPIC` from the start.
    pub fn consumer<E: Event>(&self) -> StreamConsumer {
        let mut cfg = self.kafka.client_config();
        cfg.set("group.id", format!("test-{}", uuid::Uuid::new_v4()))
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "false")
            .set("topic.metadata.refresh.interval.ms", "500");
        let c: StreamConsumer = cfg.create().expect("consumer");
        c.subscribe(&[E::TOPIC]).expect("subscribe");
        c
    }

    /// Events of type `E` until `n` arrived or `wait` passed.
    pub async fn events<E: Event>(&self, c: &StreamConsumer, n: usize, wait: Duration) -> Vec<E> {
        let deadline = Instant::now() + wait;
        let mut out = Vec::new();
        while out.len() < n {
            let Some(m) = next_before(c, deadline).await else { break };
            out.push(self.codec.decode::<E>(m.payload().unwrap_or_default()).await.expect("decode"));
        }
        out
    }
}

/// The model the tests' query API describes (this process runs no engine).
pub fn analysis_model() -> alpes_query_api::routes::modelo::ModeloAnalisis {
    alpes_query_api::routes::modelo::ModeloAnalisis {
        modelo: alpes_query_api::routes::analisis::Modelo {
            nombre: "tesseract".into(),
            version: "5.3.0".into(),
            idioma: "eng".into(),
            datos_sha256: Some("ab".repeat(32)),
        },
        modos: vec!["off".into(), "all-text".into(), "phi".into()],
        modo_por_defecto: "all-text".into(),
        etiquetas: vec!["texto_incrustado".into(), "sin_texto".into(), "no_analizada".into()],
    }
}

/// Image `c` of provider p2 as the safety net held it back: rejected for residual text (at 310),
/// with its analysis (at 320).
pub fn held_back() -> [alpes_platform::store::CatalogEvent; 2] {
    use alpes_platform::store::conformance::{analyzed, rejected};
    use alpes_platform::store::CatalogEvent;
    let mut rejection = rejected("x3", "c", "p2", 310);
    if let CatalogEvent::Rejected(x) = &mut rejection {
        x.reason = "texto_residual".into();
    }
    let mut analysis = analyzed("an-c", "c", "p2", 320, "texto_incrustado");
    if let CatalogEvent::Analyzed(a) = &mut analysis {
        (a.liberada, a.lineas_residuales, a.motivo) = (false, 1, Some("texto_residual".into()));
    }
    [rejection, analysis]
}
