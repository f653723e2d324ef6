//! `spawn_app()`: the whole platform (`alpes up`) on 127.0.0.1:0 with the
//! in-process mock cluster and a temporary data dir, plus a plain consumer.

#![allow(dead_code)]

pub mod browser;
pub mod orthanc;
pub mod smtp;

use alpes::app::{App, Settings};
use alpes_platform::auth::{Jwt, Role};
use alpes_platform::blobs::Blobs;
use alpes_platform::kafka::consumer::next_before;
use alpes_platform::kafka::Kafka;
use alpes_platform::shutdown::Shutdown;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::Message;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct TestApp {
    pub base: String,
    /// The DICOM listener's address (the app runs it on port 0).
    pub dimse: Option<std::net::SocketAddr>,
    pub jwt: Arc<Jwt>,
    pub kafka: Arc<Kafka>,
    pub blobs: Blobs,
    pub ledger: Arc<dyn alpes_platform::store::LedgerStore>,
    pub catalog: Arc<dyn alpes_platform::store::CatalogStore>,
    /// Signs the tests' tokens.
    pub signer: Signer,
    pub shutdown: Shutdown,
    pub task: tokio::task::JoinHandle<anyhow::Result<()>>,
    pub data: tempfile::TempDir,
    pub client: reqwest::Client,
}

/// The engine's fixtures (real DICOM files from pydicom's test set, MIT).
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../anonymizer/tests/fixtures/dicom")
}

/// Every `.dcm` fixture, sorted.
pub fn corpus() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(fixtures_dir())
        .expect("fixtures")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "dcm"))
        .collect();
    files.sort();
    files
}

/// Uploads the fixture `name` as DICOM to the Alpes at `base` with `token`; the image id of the 202.
pub async fn upload_to(client: &reqwest::Client, base: &str, name: &str, token: &str) -> String {
    let bytes = std::fs::read(fixtures_dir().join(name)).expect("fixture");
    let res = client
        .post(format!("{base}/imagenes"))
        .bearer_auth(token)
        .header("content-type", "application/dicom")
        .body(bytes)
        .send()
        .await
        .expect("upload");
    assert_eq!(res.status().as_u16(), 202, "{name}");
    let body: serde_json::Value = res.json().await.expect("json");
    body["id"].as_str().expect("id").to_owned()
}

/// The terms of consumer `user` once an admin approved it, with ample credit.
pub fn approved(user: &str) -> alpes_platform::store::ledger::ConsumerTerms {
    alpes_platform::store::ledger::ConsumerTerms {
        user_id: user.to_owned(),
        verified: true,
        credit_limit_minor: 1_000_000_000,
        currency: "EUR".into(),
        daily_downloads: None,
        daily_bytes: None,
        updated_at: alpes_schemas::now_millis(),
        updated_by: "test-admin".into(),
    }
}

/// Signs tokens as an app does, for accounts of its identity store.
#[derive(Debug, Clone)]
pub struct Signer {
    jwt: Arc<Jwt>,
    accounts: alpes_ingest::identity::Identity,
}

impl Signer {
    /// The signer of `app`, which runs a service that keeps accounts (ingest or query-api).
    pub fn of(app: &App) -> Signer {
        let identity = app.identity().expect("the app keeps accounts");
        Signer {
            jwt: app.jwt(),
            accounts: alpes_ingest::identity::Identity::new(identity, Default::default()).expect("identity"),
        }
    }

    /// A token of `user` with `role`, as `alpes token --create-account` makes it: the account is
    /// created first unless one has that id (the platform refuses a token naming no account).
    pub async fn token(&self, user: &str, role: Role) -> String {
        let account = self
            .accounts
            .token_subject(user, Some(role), true)
            .await
            .expect("the token's account");
        self.jwt.issue(&account.user_id, role, Duration::from_secs(3600)).expect("token")
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// `spawn_app()` with `adjust` applied to the settings first.
pub async fn spawn_app_with(adjust: impl FnOnce(&mut Settings)) -> TestApp {
    let data = tempfile::tempdir().expect("tmp");
    let mut settings = Settings::embedded(data.path().to_path_buf(), "127.0.0.1:0".parse().expect("addr"));
    settings.kafka.partitions = Some(3);
    adjust(&mut settings);
    let app = App::build(settings).await.expect("build");
    let base = format!("http://{}", app.addr());
    let dimse = app.dimse_addr();
    let (jwt, kafka, blobs, ledger, catalog) = (app.jwt(), app.kafka(), app.blobs(), app.ledger(), app.catalog());
    let signer = Signer::of(&app);
    let shutdown = Shutdown::new();
    let task = tokio::spawn(app.run_until_stopped(shutdown.clone()));
    TestApp {
        base,
        dimse,
        jwt,
        kafka,
        blobs,
        ledger: ledger.expect("the app runs billing"),
        catalog: catalog.expect("the app runs query-api"),
        signer,
        shutdown,
        task,
        data,
        client: reqwest::Client::new(),
    }
}

impl TestApp {
    /// `POST path` with the JSON `body` and `token` (if any): the status and the JSON answered
    /// (null when the answer is not JSON).
    pub async fn post_json(&self, path: &str, token: Option<&str>, body: serde_json::Value) -> (u16, serde_json::Value) {
        let mut req = self.client.post(format!("{}{path}", self.base)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let res = req.send().await.expect("request");
        (res.status().as_u16(), res.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// The JSON answered to `GET path` with `token` (null when the answer is not JSON).
    pub async fn get_json(&self, path: &str, token: &str) -> serde_json::Value {
        let res = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .expect("request");
        res.json().await.unwrap_or(serde_json::Value::Null)
    }

    /// `GET path` with `token`, again every 100 ms until `done` holds of its status and JSON body
    /// (null when not JSON), `wait` at most: that answer.
    pub async fn get_until(
        &self,
        path: &str,
        token: &str,
        wait: Duration,
        done: impl Fn(u16, &serde_json::Value) -> bool,
    ) -> (u16, serde_json::Value) {
        let deadline = Instant::now() + wait;
        loop {
            let res = self
                .client
                .get(format!("{}{path}", self.base))
                .bearer_auth(token)
                .send()
                .await
                .expect("get");
            let status = res.status().as_u16();
            let body: serde_json::Value = res.json().await.unwrap_or(serde_json::Value::Null);
            if done(status, &body) {
                return (status, body);
            }
            assert!(Instant::now() < deadline, "GET {path} never got there: {status} {body}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The Prometheus text of `GET /metrics`.
    pub async fn metrics(&self) -> String {
        let res = self.client.get(format!("{}/metrics", self.base)).send().await.expect("metrics");
        res.text().await.expect("text")
    }

    /// Every entry `GET /auditoria?<query>` answers, all pages walked, as the admin `auditor`.
    pub async fn audit_entries(&self, query: &str) -> Vec<serde_json::Value> {
        let admin = self.token("auditor", Role::Admin).await;
        let mut entries = Vec::new();
        let mut cursor = String::new();
        loop {
            let res = self
                .client
                .get(format!("{}/auditoria?{query}{cursor}", self.base))
                .bearer_auth(&admin)
                .send()
                .await
                .expect("audit");
            assert_eq!(res.status().as_u16(), 200);
            let page: serde_json::Value = res.json().await.expect("json");
            entries.extend(page["registros"].as_array().expect("registros").iter().cloned());
            match page["next_cursor"].as_str() {
                Some(c) => cursor = format!("&cursor={c}"),
                None => return entries,
            }
        }
    }

    /// [`TestApp::audit_entries`], polled until `done` holds (`wait` at most).
    pub async fn audit_until(&self, query: &str, wait: Duration, done: impl Fn(&[serde_json::Value]) -> bool) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + wait;
        loop {
            let entries = self.audit_entries(query).await;
            if done(&entries) {
                return entries;
            }
            assert!(
                Instant::now() < deadline,
                "the audit trail never showed it for {query}: {entries:#?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A token of `user` with `role` ([`Signer::token`]).
    pub async fn token(&self, user: &str, role: Role) -> String {
        self.signer.token(user, role).await
    }

    /// Stops the app and waits for it: its consumers commit and close while the broker is still
    /// there (dropped without this, a consumer's close can wait forever on a broker already gone,
    /// and the test's runtime with it).
    pub async fn stop(self) {
        self.shutdown.trigger();
        self.task.await.expect("join").expect("clean stop");
    }

    /// A token of consumer `user`, whom an admin approved for downloads with
    /// ample credit (as `PUT /monetizacion/consumidores/{id}` does): a consumer
    /// downloads nothing before that.
    pub async fn consumer_token(&self, user: &str) -> String {
        self.ledger.set_terms(approved(user)).await.expect("approve the consumer");
        self.token(user, Role::Consumidor).await
    }

    /// Uploads the fixture `name` as DICOM with `token`; the image id of the 202.
    pub async fn upload_fixture(&self, name: &str, token: &str) -> String {
        upload_to(&self.client, &self.base, name, token).await
    }

    /// Downloads the anonymized image `id` with `token` once it is there (60 s at most).
    pub async fn download_when_ready(&self, id: &str, token: &str) -> Vec<u8> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let res = self
                .client
                .get(format!("{}/imagenes/{id}/anonimizada", self.base))
                .bearer_auth(token)
                .send()
                .await
                .expect("download");
            if res.status().as_u16() == 200 {
                return res.bytes().await.expect("bytes").to_vec();
            }
            assert!(Instant::now() < deadline, "{id} never anonymized: {}", res.status());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until `GET /ready` answers 200: every consumer has joined its group (60 s at most).
    pub async fn ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let res = self.client.get(format!("{}/ready", self.base)).send().await.expect("ready");
            if res.status().as_u16() == 200 {
                return;
            }
            assert!(Instant::now() < deadline, "never ready: {}", res.text().await.unwrap_or_default());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A plain consumer in a fresh group, reading `topics` from the start.
    pub fn consumer(&self, topics: &[&str]) -> StreamConsumer {
        let mut cfg = rdkafka::ClientConfig::new();
        cfg.set("bootstrap.servers", self.kafka.bootstrap())
            .set("group.id", format!("plain-{}", uuid::Uuid::new_v4()))
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "false");
        let c: StreamConsumer = cfg.create().expect("consumer");
        c.subscribe(topics).expect("subscribe");
        c
    }
}

/// Raw messages (topic, key, payload) until `n` arrived or `wait` passed.
pub async fn drain(c: &StreamConsumer, n: usize, wait: Duration) -> Vec<(String, String, Vec<u8>)> {
    let deadline = Instant::now() + wait;
    let mut out = Vec::new();
    while out.len() < n {
        let Some(m) = next_before(c, deadline).await else { break };
        out.push((
            m.topic().to_owned(),
            String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned(),
            m.payload().unwrap_or_default().to_vec(),
        ));
    }
    out
}

/// The longest one run of the example consumer may take (coreutils `timeout` ends it).
pub const CONSUMER_LIMIT: Duration = Duration::from_secs(180);

/// Runs the example downstream consumer (`examples/python/consume_events.py`) with `python` and
/// `args` until it has been idle 5 s (killed after [`CONSUMER_LIMIT`] so a stuck run fails the
/// test instead of hanging it), asserts it decoded everything in `framing`
/// (`single-object` or `schema-registry`), and counts the events of each record type (short
/// name) whose line names one of `markers` (every event when `markers` is empty).
pub fn consume_events(python: &str, args: &[String], framing: &str, markers: &[String]) -> std::collections::BTreeMap<String, usize> {
    let out = std::process::Command::new("timeout")
        .args(["--kill-after=5", &CONSUMER_LIMIT.as_secs().to_string(), python])
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/python/consume_events.py"))
        .args(args)
        .args(["--idle", "5"])
        .output()
        .expect("run the example consumer");
    assert!(
        out.status.success(),
        "the example consumer could not decode every event, or ran past {CONSUMER_LIMIT:?} ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let mut counts = std::collections::BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
        assert_eq!(v["framing"], framing, "{line}");
        if markers.is_empty() || markers.iter().any(|m| line.contains(m.as_str())) {
            let name = v["record"].as_str().expect("record").trim_start_matches("io.alpes.events.");
            *counts.entry(name.to_owned()).or_insert(0) += 1;
        }
    }
    counts
}

/// The interpreter `value` names, read from the variable `var` by the test `test` (a path with
/// a directory in it is taken from the workspace root, where `cargo test` runs, not this
/// package's directory), or `None` when it is unset: the test is then skipped, loudly, with
/// `how` (the commands that would set it up), except under CI (`CI` set), where it fails.
pub fn interpreter(value: Option<std::ffi::OsString>, var: &str, test: &str, how: &str) -> Option<PathBuf> {
    let Some(python) = value.filter(|v| !v.is_empty()) else {
        let under_ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty());
        assert!(!under_ci, "{var} is not set but CI is: .ci/run must set it before `cargo test`");
        let msg = format!("SKIPPED {test}: {var} is not set. To run it, from the workspace root:\n    {how}");
        // Straight to stderr as well as println!: libtest captures the output of a passing
        // test, and a skip must show up in a plain `cargo test` too.
        let _ = std::io::Write::write_fmt(&mut std::io::stderr(), format_args!("\n*** {msg}\n\n"));
        println!("\n*** {msg}\n");
        return None;
    };
    let python = PathBuf::from(python);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    Some(if python.is_relative() && python.components().count() > 1 {
        root.join(python)
    } else {
        python
    })
}

/// Maps the calling AE title `ae` to `provider` with the admin route, as an admin would.
pub async fn map_calling_ae(app: &TestApp, ae: &str, provider: &str) {
    let admin = app.token("dimse-admin", Role::Admin).await;
    let res = app
        .client
        .put(format!("{}/dimse/aes/{ae}", app.base))
        .bearer_auth(&admin)
        .json(&serde_json::json!({ "proveedor_id": provider }))
        .send()
        .await
        .expect("put");
    assert_eq!(res.status().as_u16(), 200);
    let body: serde_json::Value = res.json().await.expect("json");
    assert_eq!(
        (body["titulo_ae"].as_str(), body["proveedor_id"].as_str()),
        (Some(ae), Some(provider))
    );
}

/// What a command did: its exit status (`None` if it ran past its limit and was killed) and
/// its output.
pub struct Ran {
    pub status: Option<std::process::ExitStatus>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `cmd` to completion or `limit`, its output drained as it runs (a full pipe would stall
/// it), blocking; for `spawn_blocking`, so an in-process server keeps serving meanwhile.
pub fn run_with_limit(mut cmd: std::process::Command, limit: Duration) -> Ran {
    use std::io::Read;
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {:?}: {e}", cmd.get_program()));
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let out = drain(Box::new(child.stdout.take().expect("stdout")));
    let err = drain(Box::new(child.stderr.take().expect("stderr")));
    let status = wait_or_kill(&mut child, limit);
    Ran {
        status,
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
    }
}

/// Waits for `child` to exit, at most `limit`: its exit status, or `None` if it ran past the
/// limit and was killed.
pub fn wait_or_kill(child: &mut std::process::Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
