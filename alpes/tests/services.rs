//! `alpes up --services`: the platform split across processes as a deployment
//! runs it. A front process (ingest and the query API) and a back process
//! (anonymizer and billing) share only the broker, the key directory, the
//! blobs and the store, and an upload still ends as a paid download. Two
//! ingest replicas with their own data dirs each close their own requests,
//! two query-api replicas each serve the whole audit trail, and a process
//! running the DICOM listener alone feeds the front's anonymizer.

mod common;

use alpes::app::{App, Service, Settings};
use alpes_platform::auth::Role;
use alpes_platform::shutdown::Shutdown;
use common::Signer;
use serde_json::Value;
use std::time::Duration;

async fn start(settings: Settings) -> (String, App) {
    let app = App::build(settings).await.expect("build");
    (format!("http://{}", app.addr()), app)
}

/// Processes running, each with its own stop signal. The first one hosts the development
/// broker the others joined, so [`Running::stop`] stops them last to first: a consumer's
/// final commit needs its broker (without it, the stop waits `FINAL_COMMIT_WAIT` for nothing;
/// `a_process_whose_broker_is_gone_still_stops` checks that it does stop).
struct Running(Vec<(Shutdown, tokio::task::JoinHandle<anyhow::Result<()>>)>);

impl Running {
    fn start(apps: impl IntoIterator<Item = App>) -> Running {
        Running(
            apps.into_iter()
                .map(|app| {
                    let stop = Shutdown::new();
                    let task = tokio::spawn(app.run_until_stopped(stop.clone()));
                    (stop, task)
                })
                .collect(),
        )
    }

    async fn stop(self) {
        for (stop, task) in self.0.into_iter().rev() {
            stop.trigger();
            task.await.expect("join").expect("app");
        }
    }
}

/// The settings of a process with a data dir of its own, `dir`, running `services` on the
/// development broker `host` runs.
fn joining(dir: &std::path::Path, services: Vec<Service>, host: &App) -> Settings {
    let mut s = Settings::embedded(dir.to_path_buf(), "127.0.0.1:0".parse().expect("addr"));
    s.services = services;
    s.kafka.bootstrap = Some(host.bootstrap().to_owned());
    s
}

/// Waits (30 s at most) until `base`'s audit trail serves `n` uploads.
async fn until_audited(client: &reqwest::Client, base: &str, signer: &Signer, n: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let seen = audited_uploads(client, base, signer).await;
        if seen == n {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{base} serves {seen} of {n} uploads");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The ledger entries a process recorded, from its `GET /metrics`.
async fn recorded(client: &reqwest::Client, base: &str) -> u64 {
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    text.lines()
        .filter(|l| l.starts_with("alpes_ledger_entries_total") && l.contains("outcome=\"recorded\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_to_the_front_process_is_anonymized_and_billed_by_the_back_process() {
    let data = tempfile::tempdir().expect("tmp");
    let addr = "127.0.0.1:0".parse().expect("addr");
    let mut front = Settings::embedded(data.path().to_path_buf(), addr);
    front.services = vec![Service::Ingest, Service::QueryApi];
    front.kafka.partitions = Some(2);
    let (front_url, front_app) = start(front).await;
    let signer = Signer::of(&front_app);
    // The back process joins the front's broker; the data dir stands for the shared key
    // volume, blob bucket and cluster of a deployment.
    let (back_url, back_app) = start(joining(data.path(), vec![Service::Anonymizer, Service::Billing], &front_app)).await;
    // It opened the ledger billing writes, and none of the query side's stores.
    assert!(back_app.ledger().is_some() && back_app.catalog().is_none() && back_app.audit().is_none());
    let ledger = front_app.ledger().expect("the front process reads the ledger");
    ledger.set_terms(common::approved("cons-split")).await.expect("approve");
    let running = Running::start([front_app, back_app]);
    let client = reqwest::Client::new();

    // The back process serves probes and scrapes, and no API route.
    let health = client.get(format!("{back_url}/health")).send().await.expect("health");
    assert_eq!(health.status().as_u16(), 200);
    let health = health.json::<Value>().await.expect("json");
    assert_eq!(health["status"], "up");
    // It checks what its services use: the broker and the blobs, not ingest's store.
    assert_eq!(
        (health["broker"]["status"].as_str(), health["blobs"]["status"].as_str()),
        (Some("up"), Some("up"))
    );
    assert!(health.get("store").is_none(), "{health}");
    let metrics = client.get(format!("{back_url}/metrics")).send().await.expect("metrics");
    assert_eq!(metrics.status().as_u16(), 200);
    let consumer = signer.token("cons-split", Role::Consumidor).await;
    for path in ["/imagenes", "/openapi.json"] {
        let res = client
            .get(format!("{back_url}{path}"))
            .bearer_auth(&consumer)
            .send()
            .await
            .expect("get");
        assert_eq!(res.status().as_u16(), 404, "{path} is not served by anonymizer,billing");
    }

    let provider = signer.token("prov-split", Role::Proveedor).await;
    let bytes = std::fs::read(common::fixtures_dir().join("CT_small.dcm")).expect("fixture");
    let res = client
        .post(format!("{front_url}/imagenes"))
        .bearer_auth(&provider)
        .header("content-type", "application/dicom")
        .body(bytes)
        .send()
        .await
        .expect("upload");
    assert_eq!(res.status().as_u16(), 202);
    let id = res.json::<Value>().await.expect("json")["id"].as_str().expect("id").to_owned();

    // Only the back process anonymizes; the front materializes the result and serves it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let res = client
            .get(format!("{front_url}/imagenes/{id}/anonimizada"))
            .bearer_auth(&consumer)
            .send()
            .await
            .expect("download");
        if res.status().as_u16() == 200 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never anonymized: {}", res.status());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // And only the back process bills the download.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while recorded(&client, &back_url).await == 0 {
        assert!(tokio::time::Instant::now() < deadline, "the download was never billed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(recorded(&client, &front_url).await, 0, "the front process runs no billing");

    running.stop().await;
}

/// Uploads the fixture to `base` once per provider `<tag>-<i>` (so each is a new image and
/// request); returns the request ids.
async fn uploads(client: &reqwest::Client, base: &str, signer: &Signer, tag: &str, n: usize) -> Vec<String> {
    let bytes = std::fs::read(common::fixtures_dir().join("CT_small.dcm")).expect("fixture");
    let mut requests = Vec::new();
    for i in 0..n {
        let provider = signer.token(&format!("{tag}-{i}"), Role::Proveedor).await;
        let res = client
            .post(format!("{base}/imagenes"))
            .bearer_auth(&provider)
            .header("content-type", "application/dicom")
            .body(bytes.clone())
            .send()
            .await
            .expect("upload");
        assert_eq!(res.status().as_u16(), 202);
        let body = res.json::<Value>().await.expect("json");
        requests.push(body["images"][0]["request_id"].as_str().expect("a request id").to_owned());
    }
    requests
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_ingest_replica_closes_its_own_requests_from_the_outcomes_on_one_broker() {
    use alpes_platform::store::{IngestStore, RequestState, SqliteStore};
    let (a_dir, b_dir) = (tempfile::tempdir().expect("tmp"), tempfile::tempdir().expect("tmp"));
    let addr = "127.0.0.1:0".parse().expect("addr");
    // Two partitions per topic: a group shared by the replicas would give each one of them.
    let mut a = Settings::embedded(a_dir.path().to_path_buf(), addr);
    a.services = vec![Service::Ingest];
    a.kafka.partitions = Some(2);
    a.blobs.shared = true;
    let (a_url, a_app) = start(a).await;
    // Replica B has a data dir (ingest store, keys, instance id) of its own; the blob
    // directory is A's, as a bucket would be, and so is the anonymizer's.
    std::os::unix::fs::symlink(a_dir.path().join("blobs"), b_dir.path().join("blobs")).expect("shared blobs");
    let mut b = joining(b_dir.path(), vec![Service::Ingest], &a_app);
    b.blobs.shared = true;
    let (b_url, b_app) = start(b).await;
    let (_, worker_app) = start(joining(a_dir.path(), vec![Service::Anonymizer], &a_app)).await;
    assert_ne!(a_app.instance(), b_app.instance(), "each data dir names its own instance");
    assert_eq!(worker_app.instance(), a_app.instance(), "one data dir, one instance");
    let (a_signer, b_signer) = (Signer::of(&a_app), Signer::of(&b_app));
    let running = Running::start([a_app, b_app, worker_app]);
    let client = reqwest::Client::new();

    let requests = [
        (a_dir.path(), uploads(&client, &a_url, &a_signer, "prov-a", 3).await),
        (b_dir.path(), uploads(&client, &b_url, &b_signer, "prov-b", 3).await),
    ];

    // Each replica's store sees each of its own requests closed by the outcome.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    for (dir, ids) in &requests {
        let store = SqliteStore::open(&dir.join("alpes.db")).expect("the replica's store");
        loop {
            let mut states = Vec::new();
            for id in ids {
                states.push(store.request_state(id).await.expect("state"));
            }
            if states.iter().all(|s| *s == Some(RequestState::Anonymized)) {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{}: requests never closed: {states:?}",
                dir.display()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(store.unfinished().await.expect("open").is_empty());
    }

    running.stop().await;
}

/// The `upload` entries `base`'s `GET /auditoria` serves, read with an admin token of `signer`.
async fn audited_uploads(client: &reqwest::Client, base: &str, signer: &Signer) -> usize {
    let admin = signer.token("auditor", Role::Admin).await;
    let res = client
        .get(format!("{base}/auditoria?action=upload&limit=1000"))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("audit");
    assert_eq!(res.status().as_u16(), 200);
    res.json::<Value>().await.expect("json")["registros"]
        .as_array()
        .expect("registros")
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_query_api_replica_serves_the_whole_audit_trail() {
    let (a_dir, b_dir) = (tempfile::tempdir().expect("tmp"), tempfile::tempdir().expect("tmp"));
    let addr = "127.0.0.1:0".parse().expect("addr");
    // Two partitions: a group shared by the replicas would give each one of them.
    let mut a = Settings::embedded(a_dir.path().to_path_buf(), addr);
    a.services = vec![Service::Ingest, Service::QueryApi];
    a.kafka.partitions = Some(2);
    let (a_url, a_app) = start(a).await;
    // Replica B: the query API alone, with a data dir (and so an audit table) of its own.
    let (b_url, b_app) = start(joining(b_dir.path(), vec![Service::QueryApi], &a_app)).await;
    let (a_signer, b_signer) = (Signer::of(&a_app), Signer::of(&b_app));
    let running = Running::start([a_app, b_app]);
    let client = reqwest::Client::new();

    // Each upload's entry is keyed by its new image id, so the entries spread over both partitions.
    let uploaded = uploads(&client, &a_url, &a_signer, "prov-audit", 6).await.len();

    for (base, signer) in [(&a_url, &a_signer), (&b_url, &b_signer)] {
        until_audited(&client, base, signer, uploaded).await;
    }

    running.stop().await;
}

#[test]
fn the_services_flag_takes_a_comma_separated_subset_and_defaults_to_all() {
    use clap::{Args, FromArgMatches};
    let parse = |args: &[&str]| {
        let cmd = Settings::augment_args(clap::Command::new("up"));
        let m = cmd.try_get_matches_from(std::iter::once("up").chain(args.iter().copied()))?;
        Settings::from_arg_matches(&m)
    };
    assert_eq!(parse(&[]).expect("default").services, Service::ALL.to_vec());
    assert_eq!(
        parse(&["--services", "anonymizer,query-api"]).expect("two").services,
        vec![Service::Anonymizer, Service::QueryApi]
    );
    assert!(parse(&["--services", "ingest,gateway"]).is_err(), "an unknown service is refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_whose_broker_is_gone_still_stops() {
    let (a_dir, b_dir) = (tempfile::tempdir().expect("tmp"), tempfile::tempdir().expect("tmp"));
    let addr = "127.0.0.1:0".parse().expect("addr");
    let mut a = Settings::embedded(a_dir.path().to_path_buf(), addr);
    a.services = vec![Service::Ingest];
    let (a_url, a_app) = start(a).await;
    let (b_url, b_app) = start(joining(b_dir.path(), vec![Service::QueryApi], &a_app)).await;
    let (a_signer, b_signer) = (Signer::of(&a_app), Signer::of(&b_app));
    let (a_stop, b_stop) = (Shutdown::new(), Shutdown::new());
    let a_task = tokio::spawn(a_app.run_until_stopped(a_stop.clone()));
    let b_task = tokio::spawn(b_app.run_until_stopped(b_stop.clone()));
    let client = reqwest::Client::new();

    // B's audit projector has read A's entries, so it has offsets to commit when it stops.
    let uploaded = uploads(&client, &a_url, &a_signer, "prov-gone", 2).await.len();
    until_audited(&client, &b_url, &b_signer, uploaded).await;

    // The broker's process stops first; B's final commit has nobody to answer it.
    a_stop.trigger();
    a_task.await.expect("join").expect("A");
    b_stop.trigger();
    let limit = alpes_platform::kafka::consumer::FINAL_COMMIT_WAIT + Duration::from_secs(20);
    let stopped = tokio::time::timeout(limit, b_task)
        .await
        .expect("B stops within the final commit's wait, broker or not");
    stopped.expect("join").expect("B");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dicom_listener_process_stores_without_serving_ingests_routes_and_the_front_anonymizes() {
    // One data dir: it stands for the shared key volume, blob bucket and cluster of a deployment.
    let data = tempfile::tempdir().expect("tmp");
    let mut front = Settings::embedded(data.path().to_path_buf(), "127.0.0.1:0".parse().expect("addr"));
    front.services = vec![Service::Ingest, Service::QueryApi, Service::Anonymizer];
    front.dimse.listen = "127.0.0.1:0".parse().expect("addr");
    let (front_url, front_app) = start(front).await;
    let mut listener = joining(data.path(), vec![Service::Dimse], &front_app);
    listener.dimse.calling_aes = vec![("SOLO_SCU".into(), "prov-solo".into())];
    let (dimse_url, dimse_app) = start(listener).await;
    let addr = dimse_app.dimse_addr().expect("the listener runs");
    assert!(front_app.dimse_addr().is_none(), "the front does not run it");
    let front_signer = Signer::of(&front_app);
    let provider = front_signer.token("prov-solo", Role::Proveedor).await;
    let running = Running::start([front_app, dimse_app]);
    let client = reqwest::Client::new();
    // No ingest routes on the listener's process; its probes answer.
    let upload = client.post(format!("{dimse_url}/imagenes")).send().await.expect("post");
    assert_eq!(upload.status().as_u16(), 404);
    let health = client.get(format!("{dimse_url}/health")).send().await.expect("health");
    assert_eq!(health.status().as_u16(), 200);
    // One instance by dcmtk's storescu (tests/dimse.rs has the rest of the listener's checks).
    let Some(storescu) = std::env::var_os("PATH").and_then(|p| std::env::split_paths(&p).map(|d| d.join("storescu")).find(|p| p.is_file()))
    else {
        assert!(std::env::var_os("CI").is_none_or(|v| v.is_empty()), "dcmtk is missing under CI");
        running.stop().await;
        return;
    };
    let file = common::fixtures_dir().join("CT_small.dcm");
    let mut cmd = std::process::Command::new(storescu);
    cmd.args([
        "-aet",
        "SOLO_SCU",
        "-aec",
        "ALPES",
        &addr.ip().to_string(),
        &addr.port().to_string(),
    ])
    .arg(file);
    let sent = tokio::task::spawn_blocking(move || common::run_with_limit(cmd, Duration::from_secs(60)))
        .await
        .expect("ran");
    assert_eq!(sent.status.map(|s| s.success()), Some(true), "{}", sent.stderr);
    // The front's anonymizer and materializer take it from the shared broker.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let page: Value = client
            .get(format!("{front_url}/imagenes"))
            .bearer_auth(&provider)
            .send()
            .await
            .expect("list")
            .json()
            .await
            .expect("json");
        if page["imagenes"]
            .as_array()
            .is_some_and(|i| i.len() == 1 && i[0]["estado"] == "anonimizada")
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{page}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    running.stop().await;
}
