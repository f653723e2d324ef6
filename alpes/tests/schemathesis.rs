//! Schemathesis (PyPI, pinned in `.ci/run`) against the real binary: `alpes up`
//! on 127.0.0.1 with a temporary data dir, its document read from
//! `/openapi.json`, a bounded number of examples per operation. Every response
//! must match its documented status, media type, headers and schema, and none
//! may be a 5xx.
//!
//! Before the runs the test seeds what random ids never reach: an anonymized
//! CT image (uploaded as a provider, downloaded once by a consumer, so the
//! provider's ledger has a movement) and an account. Their ids become the
//! `example`s of the matching path parameters (`alpes_hooks.py`, which also
//! frames STOW-RS bodies as multipart/related), so the 200 bodies of single
//! images, downloads, WADO-RS and metadata are checked too.
//!
//! Runs: as an admin (every operation but logout), as a consumer, as a
//! provider, as an admin's API key, and finally `POST /auth/logout` alone with
//! a token of its own (a logout revokes the token it is sent with).
//! Operations marked `x-alpes-pending` are skipped while their route is
//! missing and checked once it is served.
//!
//! The `st` executable comes from `ALPES_SCHEMATHESIS` (a venv with
//! schemathesis installed; `.ci/run` makes one). Without it the test is
//! skipped, loudly, except under CI (`CI` set), where it fails.
//! `ALPES_SCHEMATHESIS_EXAMPLES` (default 40) and `ALPES_SCHEMATHESIS_SEED`
//! (default 1) change the admin run's examples per operation and the seed.

mod common;

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PROVIDER: &str = "st-provider";
const ADMIN: &str = "st-admin";
/// The checks every run makes.
const CHECKS: &str =
    "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance";
/// The most one Schemathesis run may take.
const RUN_LIMIT: Duration = Duration::from_secs(300);

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_path_buf()
}

/// The `st` executable, or `None` when the test should be skipped.
fn schemathesis() -> Option<PathBuf> {
    let Some(st) = std::env::var_os("ALPES_SCHEMATHESIS").filter(|v| !v.is_empty()) else {
        let under_ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty());
        assert!(
            !under_ci,
            "ALPES_SCHEMATHESIS is not set but CI is: .ci/run must create the schemathesis venv \
             and export ALPES_SCHEMATHESIS (the venv's `st`) before `cargo test`"
        );
        let msg = "SKIPPED schemathesis: ALPES_SCHEMATHESIS is not set. To run it, from the workspace root (Python 3.11+):\n    \
                   python3 -m venv .venv-schemathesis && .venv-schemathesis/bin/pip install 'schemathesis==4.32.5'\n    \
                   ALPES_SCHEMATHESIS=.venv-schemathesis/bin/st cargo test -p alpes --test schemathesis -- --nocapture";
        // Straight to stderr as well as println!: libtest captures the output of a
        // passing test, and a skip must show up in a plain `cargo test` too.
        let _ = writeln!(std::io::stderr(), "\n*** {msg}\n");
        println!("\n*** {msg}\n");
        return None;
    };
    let st = PathBuf::from(st);
    // A relative path with a directory in it is taken from the workspace root (where
    // `cargo test` is run), not from this package's directory (where the test runs).
    if st.is_relative() && st.components().count() > 1 {
        return Some(workspace_root().join(st));
    }
    Some(st)
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// `alpes up` as a child process; killed when dropped, so a failed test leaves none behind.
struct Platform {
    child: Child,
    base: String,
    data: tempfile::TempDir,
}

impl Drop for Platform {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Platform {
    /// Starts `alpes up` on 127.0.0.1, port 0, with cheap password hashing, and waits for its URL.
    fn start() -> Platform {
        let data = tempfile::tempdir().expect("tmp");
        let log = std::fs::File::create(data.path().join("alpes.log")).expect("log file");
        let mut child = Command::new(env!("CARGO_BIN_EXE_alpes"))
            .arg("up")
            .arg("--data-dir")
            .arg(data.path().join("data"))
            .args(["--listen", "127.0.0.1:0", "--dimse-listen", "127.0.0.1:0", "--jobs", "1"])
            .args(["--argon2-memory-kib", "64", "--argon2-iterations", "1", "--argon2-parallelism", "1"])
            // Every service but the importer: it would fetch the URLs the fuzzer invents for
            // POST /importaciones (and resolve their names), and a test reaches only 127.0.0.1.
            // The jobs are still checked, stored and announced.
            .args(["--services", "ingest,anonymizer,billing,query-api,dimse"])
            // Nothing from the environment picks another broker, store or blob store.
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn alpes up");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("alpes: listening on ") {
                    let _ = tx.send(url.trim().to_owned());
                }
            }
        });
        let mut platform = Platform {
            child,
            base: String::new(),
            data,
        };
        match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(url) => platform.base = url,
            Err(_) => panic!("alpes up did not start within 120 s; its log:\n{}", platform.log_tail()),
        }
        platform
    }

    fn data_dir(&self) -> PathBuf {
        self.data.path().join("data")
    }

    /// A token from `alpes token` (the instance's signing key is in its data dir).
    fn token(&self, user: &str, role: &str) -> String {
        let out = Command::new(env!("CARGO_BIN_EXE_alpes"))
            .args([
                "token",
                "--create-account",
                "--user",
                user,
                "--role",
                role,
                "--ttl-hours",
                "2",
                "--data-dir",
            ])
            .arg(self.data_dir())
            .env_remove("ALPES_DATA_DIR")
            .output()
            .expect("alpes token");
        assert!(out.status.success(), "alpes token: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).expect("utf8").trim().to_owned()
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.data.path().join("alpes.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

/// The ids the seeding made, for the examples.
struct Seeded {
    image: String,
    study: String,
    series: String,
    instance: String,
    user: String,
}

/// Uploads a CT image, waits for its anonymized output, creates a consumer account an admin
/// approves, and downloads the image once as that consumer.
async fn seed(p: &Platform, admin: &str, provider: &str) -> Seeded {
    let client = reqwest::Client::new();
    let dicom = std::fs::read(workspace_root().join("anonymizer/tests/fixtures/dicom/CT_small.dcm")).expect("fixture");
    let res = client
        .post(format!("{}/imagenes", p.base))
        .bearer_auth(provider)
        .header("content-type", "application/dicom")
        .body(dicom)
        .send()
        .await
        .expect("upload");
    assert_eq!(res.status(), 202, "seeding upload");
    let image = res.json::<Value>().await.expect("json")["id"].as_str().expect("id").to_owned();
    let deadline = Instant::now() + Duration::from_secs(90);
    let shown = loop {
        let res = client
            .get(format!("{}/imagenes/{image}", p.base))
            .bearer_auth(admin)
            .send()
            .await
            .expect("image");
        if res.status() == 200 {
            let v: Value = res.json().await.expect("json");
            if v["estado"] == "anonimizada" {
                break v;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the seeded image was not anonymized within 90 s:\n{}",
            p.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let res = client
        .post(format!("{}/usuarios", p.base))
        .json(&json!({ "nombre": "Seeded", "email": "seeded@example.org", "password": "correct horse battery", "rol": "consumidor" }))
        .send()
        .await
        .expect("create user");
    assert_eq!(res.status(), 201, "seeding account");
    let user = res.json::<Value>().await.expect("json")["id"].as_str().expect("id").to_owned();
    // The consumer is that account, approved by the admin: a consumer downloads nothing before that.
    let res = client
        .put(format!("{}/monetizacion/consumidores/{user}", p.base))
        .bearer_auth(admin)
        .json(&json!({ "verificado": true, "limite_credito_minor": 1_000_000, "moneda": "EUR" }))
        .send()
        .await
        .expect("approve the consumer");
    assert_eq!(res.status(), 200, "approving the seeded consumer");
    let consumer = p.token(&user, "consumidor");
    let download = client
        .get(format!("{}/imagenes/{image}/anonimizada", p.base))
        .bearer_auth(&consumer)
        .send()
        .await
        .expect("download");
    assert_eq!(download.status(), 200, "seeding download");
    let uid = |k: &str| shown["anonymized"][k].as_str().expect("a DICOM uid").to_owned();
    Seeded {
        study: uid("study_uid"),
        series: uid("series_uid"),
        instance: uid("sop_instance_uid"),
        image,
        user,
    }
}

/// `ALPES_ST_EXAMPLES` for `alpes_hooks.py`: path template → path parameter → seeded value.
fn examples(s: &Seeded) -> Value {
    let (study, series, instance) = (&s.study, &s.series, &s.instance);
    let at_series = json!({ "study": study, "series": series });
    let at_instance = json!({ "study": study, "series": series, "instance": instance });
    json!({
        "/imagenes/{id}": { "id": s.image },
        "/imagenes/{id}/anonimizada": { "id": s.image },
        "/imagenes/{id}/analisis": { "id": s.image },
        "/anonimizar/{id}": { "id": s.image },
        "/usuarios/{id}": { "id": s.user },
        "/monetizacion/saldo/{usuario_id}": { "usuario_id": PROVIDER },
        "/monetizacion/movimientos/{usuario_id}": { "usuario_id": PROVIDER },
        "/monetizacion/consumidores/{usuario_id}": { "usuario_id": s.user },
        "/studies/{study}": { "study": study },
        "/studies/{study}/metadata": { "study": study },
        "/studies/{study}/series": { "study": study },
        "/studies/{study}/instances": { "study": study },
        "/studies/{study}/series/{series}": at_series,
        "/studies/{study}/series/{series}/metadata": at_series,
        "/studies/{study}/series/{series}/instances": at_series,
        "/studies/{study}/series/{series}/instances/{instance}": at_instance,
        "/studies/{study}/series/{series}/instances/{instance}/metadata": at_instance,
        "/studies/{study}/series/{series}/instances/{instance}/frames/{frames}":
            { "study": study, "series": series, "instance": instance, "frames": "1" },
        "/studies/{study}/series/{series}/instances/{instance}/frames/{frames}/rendered":
            { "study": study, "series": series, "instance": instance, "frames": "1" },
        "/studies/{study}/series/{series}/instances/{instance}/rendered": at_instance,
        "/studies/{study}/series/{series}/instances/{instance}/thumbnail": at_instance,
        "/studies/{study}/thumbnail": { "study": study },
        "/studies/{study}/rendered": { "study": study },
        "/studies/{study}/series/{series}/rendered": at_series,
        "/studies/{study}/series/{series}/thumbnail": at_series,
        "/studies/{study}/series/{series}/instances/{instance}/bulkdata/{tag}":
            { "study": study, "series": series, "instance": instance, "tag": "7FE00010" },
    })
}

/// The operation ids marked pending in the served document whose route is still
/// missing (an unmatched path answers 404 `not_found` with the message "no such route", which
/// no route's own 404 gives).
async fn unserved_pending(base: &str, admin: &str) -> Vec<String> {
    let client = reqwest::Client::new();
    let doc: Value = client
        .get(format!("{base}/openapi.json"))
        .send()
        .await
        .expect("openapi.json")
        .json()
        .await
        .expect("json");
    let mut missing = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            if op["x-alpes-pending"] != true {
                continue;
            }
            let id = op["operationId"].as_str().expect("operationId").to_owned();
            if method != "get" {
                missing.push(id);
                continue;
            }
            let res = client.get(format!("{base}{path}")).bearer_auth(admin).send().await.expect("probe");
            let status = res.status();
            let body: Value = res.json().await.unwrap_or_default();
            if status == 404 && body["error"] == "not_found" && body["message"] == "no such route" {
                missing.push(id);
            }
        }
    }
    missing
}

/// One Schemathesis run's outcome.
struct Ran {
    status: Option<std::process::ExitStatus>,
    output: String,
}

/// Runs `cmd` (stdout and stderr merged into one file) to completion or `limit`.
fn run_with_limit(mut cmd: Command, out_file: &Path, limit: Duration) -> Ran {
    let out = std::fs::File::create(out_file).expect("output file");
    let err = out.try_clone().expect("clone");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .spawn()
        .expect("spawn the st executable in ALPES_SCHEMATHESIS");
    let status = common::wait_or_kill(&mut child, limit);
    let mut output = String::new();
    let _ = std::fs::File::open(out_file).and_then(|mut f| f.read_to_string(&mut output));
    Ran { status, output }
}

/// What every run shares.
struct Session<'a> {
    st: &'a Path,
    platform: &'a Platform,
    examples_json: String,
    seed: u64,
}

/// One run: its name, its credential as a header line (`Authorization: Bearer ...`
/// or `X-API-Key: ...`), its examples per operation and its operation filters.
struct Run {
    name: &'static str,
    credential: String,
    max_examples: u64,
    filters: Vec<String>,
}

/// Runs Schemathesis once; the run's summary line, and its failure (empty when it passed).
fn schemathesis_run(session: &Session<'_>, run: &Run) -> (String, String) {
    let (p, name) = (session.platform, run.name);
    let work = p.data.path().join(format!("st-{name}"));
    std::fs::create_dir_all(&work).expect("work dir");
    let mut cmd = Command::new(session.st);
    cmd.current_dir(&work)
        .arg("run")
        .arg(format!("{}/openapi.json", p.base))
        .args(["--checks", CHECKS])
        .args([
            "--max-examples",
            &run.max_examples.max(1).to_string(),
            "--seed",
            &session.seed.to_string(),
        ])
        .args([
            // One worker: with two, Hypothesis parses lambda sources (`ast.parse`) on two threads at
            // once, and CPython 3.11's AST recursion-depth counter is not per-thread, so a run
            // could die with "SystemError: AST constructor recursion depth mismatch".
            "--workers",
            "1",
            "--no-color",
            "--request-timeout",
            "30",
            "--generation-database",
            "none",
        ])
        .args(["--generation-with-security-parameters", "false", "--output-truncate", "false"])
        .args(["--header", &run.credential])
        .args(&run.filters)
        .env("PYTHONPATH", workspace_root().join("alpes/tests/schemathesis"))
        .env("SCHEMATHESIS_HOOKS", "alpes_hooks")
        .env("ALPES_ST_EXAMPLES", &session.examples_json)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        // The server is on 127.0.0.1: keep any proxy of the environment out of the way.
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost");
    let started = Instant::now();
    let ran = run_with_limit(cmd, &work.join("output.txt"), RUN_LIMIT);
    let summary = ran
        .output
        .lines()
        .filter(|l| l.contains("generated") || l.contains("Selected:") || l.contains("Tested:"))
        .map(str::trim)
        .collect::<Vec<_>>()
        .join("; ");
    let line = format!("{name}: {summary} in {:.0?}", started.elapsed());
    println!("--- schemathesis {line}\n{}", ran.output);
    let verdict = match ran.status {
        None => Some(format!("ran past {RUN_LIMIT:?} and was killed")),
        Some(s) if !s.success() => Some(format!("failed ({s})")),
        Some(_) => None,
    };
    let failure = verdict.map(|v| {
        let tail: Vec<&str> = ran.output.lines().collect();
        format!(
            "schemathesis run `{name}` {v}:\n{}",
            tail[tail.len().saturating_sub(120)..].join("\n")
        )
    });
    (line, failure.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_of_alpes_up_matches_its_openapi_document_and_none_is_a_5xx() {
    let Some(st) = schemathesis() else {
        return;
    };
    let platform = Platform::start();
    let admin = platform.token(ADMIN, "admin");
    let provider = platform.token(PROVIDER, "proveedor");
    let seeded = seed(&platform, &admin, &provider).await;
    let consumer = platform.token(&seeded.user, "consumidor");
    let api_key = {
        let res = reqwest::Client::new()
            .post(format!("{}/api-keys", platform.base))
            .bearer_auth(&admin)
            .json(&json!({ "nombre": "schemathesis", "rol": "admin", "usuario_id": "st-key-admin" }))
            .send()
            .await
            .expect("create an API key");
        assert_eq!(res.status(), 201);
        res.json::<Value>().await.expect("json")["key"].as_str().expect("key").to_owned()
    };
    let mut filters: Vec<String> = Vec::new();
    for id in unserved_pending(&platform.base, &admin).await {
        println!("--- schemathesis: skipping {id}, documented ahead of its route (x-alpes-pending) and not served yet");
        filters.extend(["--exclude-operation-id".to_owned(), id]);
    }
    filters.extend(["--exclude-path".to_owned(), "/auth/logout".to_owned()]);
    // A stream of live changes never ends by itself: Schemathesis would wait for its body until
    // the request timeout. alpes/tests/live.rs checks it (events, roles, JSON refusals, its end).
    filters.extend(["--exclude-path".to_owned(), "/eventos/imagenes".to_owned()]);
    let (examples_n, seed) = (
        env_number("ALPES_SCHEMATHESIS_EXAMPLES", 40),
        env_number("ALPES_SCHEMATHESIS_SEED", 1),
    );
    let bearer = |t: &str| format!("Authorization: Bearer {t}");
    let runs = [
        Run {
            name: "admin",
            credential: bearer(&admin),
            max_examples: examples_n,
            filters: filters.clone(),
        },
        Run {
            name: "consumer",
            credential: bearer(&consumer),
            max_examples: examples_n / 2,
            filters: filters.clone(),
        },
        Run {
            name: "provider",
            credential: bearer(&provider),
            max_examples: examples_n / 2,
            filters: filters.clone(),
        },
        Run {
            name: "api-key",
            credential: format!("X-API-Key: {api_key}"),
            max_examples: examples_n / 4,
            filters,
        },
        Run {
            name: "logout",
            credential: bearer(&platform.token("st-logout", "admin")),
            max_examples: examples_n / 2,
            filters: vec!["--include-path".to_owned(), "/auth/logout".to_owned()],
        },
    ];
    let session = Session {
        st: &st,
        platform: &platform,
        examples_json: examples(&seeded).to_string(),
        seed,
    };
    let mut lines = Vec::new();
    let mut failures = Vec::new();
    for run in &runs {
        let (line, failure) = tokio::task::block_in_place(|| schemathesis_run(&session, run));
        lines.push(line);
        if !failure.is_empty() {
            failures.push(failure);
        }
    }
    println!("--- schemathesis summary (seed {seed}):\n{}", lines.join("\n"));
    assert!(
        failures.is_empty(),
        "{}\n--- alpes up log tail:\n{}",
        failures.join("\n\n"),
        platform.log_tail()
    );
}
