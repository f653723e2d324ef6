//! Finding 4: downloads and payments answered just before a crash were lost
//! on the development broker. `alpes up` is killed (SIGKILL) in the middle of
//! a burst of downloads and payments, then started again on the same data
//! dir. Every download answered 200 must then have exactly one usage movement
//! in the provider's ledger and its audit entry, and every payment answered
//! 202 must be applied or refused, exactly once.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PASSWORD: &str = "Crash-Test-Password-42";
const CONSUMERS: usize = 24;
const PAYMENTS: usize = 30;
/// The process is killed once this many downloads were answered.
const KILL_AFTER: usize = 40;

/// `alpes up` on `data`, listening on `addr`; killed when dropped.
struct Up(Child);

impl Up {
    fn start(data: &Path, addr: &str) -> Up {
        let child = Command::new(env!("CARGO_BIN_EXE_alpes"))
            .args(["up", "--listen", addr, "--dimse-listen", "127.0.0.1:0"])
            .args(["--argon2-memory-kib", "64", "--argon2-iterations", "1"])
            .arg("--data-dir")
            .arg(data)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("alpes up");
        Up(child)
    }

    /// SIGKILL: a crash.
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").to_string()
}

fn token(data: &Path, user: &str, role: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_alpes"))
        .args(["token", "--create-account", "--user", user, "--role", role])
        .arg("--data-dir")
        .arg(data)
        .output()
        .expect("alpes token");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8").trim().to_owned()
}

async fn ready(http: &reqwest::Client, base: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        if let Ok(res) = http.get(format!("{base}/ready")).send().await {
            if res.status().as_u16() == 200 {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("alpes up never became ready");
}

async fn register(http: &reqwest::Client, base: &str, name: &str, rol: &str) -> String {
    let body = serde_json::json!({"nombre": name, "email": format!("{name}@crash.test"), "password": PASSWORD, "rol": rol});
    let res = http.post(format!("{base}/usuarios")).json(&body).send().await.expect("register");
    assert_eq!(res.status().as_u16(), 201, "{name}");
    let v: serde_json::Value = res.json().await.expect("json");
    v["id"].as_str().expect("id").to_owned()
}

/// An admin approves consumer `id` for downloads, with credit for them all.
async fn approve(http: &reqwest::Client, base: &str, admin: &str, id: &str) {
    let body = serde_json::json!({"verificado": true, "limite_credito_minor": 1_000_000, "moneda": "EUR"});
    let res = http
        .put(format!("{base}/monetizacion/consumidores/{id}"))
        .bearer_auth(admin)
        .json(&body)
        .send()
        .await
        .expect("approve");
    assert_eq!(res.status().as_u16(), 200, "approve {id}");
}

/// `GET /imagenes/{id}/anonimizada`: the status and the request id, or `None` if no answer came.
async fn download(http: &reqwest::Client, base: &str, token: &str, image: &str) -> Option<(u16, String)> {
    let res = http
        .get(format!("{base}/imagenes/{image}/anonimizada"))
        .bearer_auth(token)
        .send()
        .await
        .ok()?;
    let status = res.status().as_u16();
    let id = res.headers().get("x-request-id")?.to_str().ok()?.to_owned();
    res.bytes().await.ok()?;
    Some((status, id))
}

async fn pay(http: &reqwest::Client, base: &str, admin: &str, provider: &str, reference: &str) -> Option<u16> {
    let body = serde_json::json!({"usuario_id": provider, "importe_minor": 1, "moneda": "EUR", "referencia": reference});
    let res = http
        .post(format!("{base}/monetizacion/pagar"))
        .bearer_auth(admin)
        .json(&body)
        .send()
        .await
        .ok()?;
    Some(res.status().as_u16())
}

async fn movements(http: &reqwest::Client, base: &str, admin: &str, provider: &str) -> Vec<serde_json::Value> {
    let url = format!("{base}/monetizacion/movimientos/{provider}?limit=1000");
    let res = http.get(url).bearer_auth(admin).send().await.expect("movements");
    assert_eq!(res.status().as_u16(), 200);
    let v: serde_json::Value = res.json().await.expect("json");
    v["movimientos"].as_array().expect("movimientos").clone()
}

/// Usage movements per (consumer, image), and payments (applied or refused) per reference.
type Tally = (BTreeMap<(String, String), usize>, BTreeMap<String, usize>);

fn tally(movements: Vec<serde_json::Value>) -> Tally {
    let (mut uses, mut paid) = Tally::default();
    for m in movements {
        let counterparty = m["contraparte"].as_str().unwrap_or_default().to_owned();
        match m["tipo"].as_str() {
            Some("uso") => {
                *uses
                    .entry((counterparty, m["imagen_id"].as_str().unwrap_or_default().to_owned()))
                    .or_default() += 1
            }
            Some("pago" | "pago_rechazado") => *paid.entry(counterparty).or_default() += 1,
            other => panic!("unexpected movement {other:?}"),
        }
    }
    (uses, paid)
}

#[derive(Default)]
struct Answered {
    /// (consumer, image) → the request ids answered 200.
    downloads: BTreeMap<(String, String), Vec<String>>,
    /// The references answered 202.
    payments: BTreeSet<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn downloads_and_payments_answered_before_a_kill_are_each_in_the_ledger_once_after_the_restart() {
    let data = tempfile::tempdir().expect("tmp");
    let (addr, http) = (free_addr(), reqwest::Client::new());
    let base = format!("http://{addr}");
    let mut up = Up::start(data.path(), &addr);
    ready(&http, &base).await;

    let provider = register(&http, &base, "crash-provider", "proveedor").await;
    let provider_token = token(data.path(), &provider, "proveedor");
    let admin = token(data.path(), "crash-admin", "admin");
    let mut consumers = Vec::new();
    for i in 0..CONSUMERS {
        let id = register(&http, &base, &format!("crash-consumer-{i}"), "consumidor").await;
        approve(&http, &base, &admin, &id).await;
        let t = token(data.path(), &id, "consumidor");
        consumers.push((id, t));
    }
    let mut images = Vec::new();
    for f in ["CT_small.dcm", "MR_small.dcm", "JPEG2000.dcm"] {
        images.push(crate::common::upload_to(&http, &base, f, &provider_token).await);
    }
    // The first consumer waits for every image, and its downloads give the provider a balance to pay out of.
    let everyone: Vec<String> = consumers.iter().map(|(id, _)| id.clone()).collect();
    let (warm, warm_token) = consumers.remove(0);
    let mut answered = Answered::default();
    for image in &images {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some((200, rid)) = download(&http, &base, &warm_token, image).await {
                answered.downloads.entry((warm.clone(), image.clone())).or_default().push(rid);
                break;
            }
            assert!(Instant::now() < deadline, "{image} never anonymized");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while movements(&http, &base, &admin, &provider).await.len() < images.len() {
        assert!(Instant::now() < deadline, "billing never applied the first downloads");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The burst: every other consumer downloads every image, and the provider is paid 1 cent at a
    // time, from 8 clients at once; the process is killed once KILL_AFTER downloads are answered.
    let answered = Arc::new(Mutex::new(answered));
    let done = Arc::new(AtomicUsize::new(0));
    let mut work: Vec<Option<(String, String, String)>> = Vec::new();
    for (c, t) in &consumers {
        for image in &images {
            work.push(Some((c.clone(), t.clone(), image.clone())));
        }
    }
    for k in 0..PAYMENTS {
        work.insert(k * work.len() / PAYMENTS, None);
    }
    let work = Arc::new(Mutex::new(work.into_iter().enumerate().collect::<Vec<_>>()));
    let mut clients = Vec::new();
    for _ in 0..8 {
        let (work, answered, done, http, base, admin, provider) = (
            work.clone(),
            answered.clone(),
            done.clone(),
            http.clone(),
            base.clone(),
            admin.clone(),
            provider.clone(),
        );
        clients.push(tokio::spawn(async move {
            loop {
                let Some((n, item)) = work.lock().expect("work").pop() else {
                    return;
                };
                match item {
                    Some((consumer, token, image)) => {
                        if let Some((200, rid)) = download(&http, &base, &token, &image).await {
                            answered
                                .lock()
                                .expect("answered")
                                .downloads
                                .entry((consumer, image))
                                .or_default()
                                .push(rid);
                            done.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    None => {
                        let reference = format!("crash-{n}");
                        if pay(&http, &base, &admin, &provider, &reference).await == Some(202) {
                            answered.lock().expect("answered").payments.insert(reference);
                        }
                    }
                }
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while done.load(Ordering::SeqCst) < KILL_AFTER {
        assert!(Instant::now() < deadline, "the burst stalled before the kill");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    up.kill();
    for c in clients {
        c.await.expect("client");
    }
    let answered = std::mem::take(&mut *answered.lock().expect("answered"));
    assert!(
        answered.downloads.len() > KILL_AFTER,
        "downloads answered: {}",
        answered.downloads.len()
    );
    assert!(!answered.payments.is_empty(), "no payment was answered before the kill");

    let _up = Up::start(data.path(), &addr);
    ready(&http, &base).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let (uses, paid) = loop {
        let (uses, paid) = tally(movements(&http, &base, &admin, &provider).await);
        let all_in = answered.downloads.keys().all(|k| uses.contains_key(k)) && answered.payments.iter().all(|r| paid.contains_key(r));
        if all_in || Instant::now() > deadline {
            break (uses, paid);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let lost: Vec<_> = answered.downloads.keys().filter(|k| !uses.contains_key(*k)).collect();
    assert!(
        lost.is_empty(),
        "{} of {} downloads answered 200 have no usage movement: {lost:?}",
        lost.len(),
        answered.downloads.len()
    );
    assert!(uses.values().all(|n| *n == 1), "a download was charged twice: {uses:?}");
    let unpaid: Vec<_> = answered.payments.iter().filter(|r| !paid.contains_key(*r)).collect();
    assert!(
        unpaid.is_empty(),
        "payments answered 202 and neither applied nor refused: {unpaid:?}"
    );
    assert!(paid.values().all(|n| *n == 1), "a payment was applied twice: {paid:?}");

    // The other side of each download: exactly one charge to its consumer, and as much in all (read
    // again until billing is quiet: downloads in flight at the kill may still be applied, both sides at once).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut charged = 0;
        for consumer in &everyone {
            let mut charges = BTreeMap::<String, usize>::new();
            for m in movements(&http, &base, &admin, consumer).await {
                assert_eq!(m["tipo"], "cargo", "{m}");
                *charges.entry(m["imagen_id"].as_str().unwrap_or_default().to_owned()).or_default() += 1;
                charged += m["importe_minor"].as_i64().expect("importe");
            }
            for ((c, image), _) in answered.downloads.iter().filter(|((c, _), _)| c == consumer) {
                assert_eq!(charges.get(image), Some(&1), "{c} downloaded {image}: one charge");
            }
        }
        let credited: i64 = movements(&http, &base, &admin, &provider)
            .await
            .iter()
            .filter(|m| m["tipo"] == "uso")
            .map(|m| m["importe_minor"].as_i64().expect("importe"))
            .sum();
        if charged == credited {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the consumers' charges {charged} and the provider's credits {credited}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    for rid in answered.downloads.values().flatten() {
        let url = format!("{base}/auditoria?solicitud_http_id={rid}");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let v: serde_json::Value = http
                .get(&url)
                .bearer_auth(&admin)
                .send()
                .await
                .expect("audit")
                .json()
                .await
                .expect("json");
            let entries = v["registros"].as_array().cloned().unwrap_or_default();
            if entries.len() == 1 {
                break;
            }
            assert!(entries.len() < 2, "download {rid} audited twice");
            assert!(Instant::now() < deadline, "download {rid}, answered 200, has no audit entry");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

#[tokio::test]
async fn the_outbox_empties_once_billing_the_materializer_and_the_audit_projector_applied_its_events() {
    let app = crate::common::spawn_app().await;
    app.ready().await;
    let provider = app.token("p-outbox", alpes_platform::auth::Role::Proveedor).await;
    let consumer = app.consumer_token("c-outbox").await;
    let image = app.upload_fixture("CT_small.dcm", &provider).await;
    app.download_when_ready(&image, &consumer).await;
    assert!(app.kafka.outbox().attached(), "the development broker runs with an outbox");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let waiting = app.kafka.outbox().waiting().await.expect("outbox");
        if waiting == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{waiting} event(s) still kept after every consumer had time to apply them"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.stop().await;
}
