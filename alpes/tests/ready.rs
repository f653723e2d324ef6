//! `GET /ready`: 200 only once every consumer of the process has joined its
//! group, so a user registered the moment it says ready reads their own
//! account (before readiness existed, `/health` said 200 about 10 s earlier
//! and that read was a 404); 503 with `Retry-After` while a group is joining.

mod common;

use alpes::app::{App, Service, Settings};
use alpes_platform::shutdown::Shutdown;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

async fn get(client: &reqwest::Client, url: &str) -> (u16, Option<String>, Value) {
    let res = client.get(url).send().await.expect("get");
    let status = res.status().as_u16();
    let retry = res.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned);
    (status, retry, res.json().await.unwrap_or(Value::Null))
}

/// Polls `GET /ready` until 200; returns its body.
async fn ready(client: &reqwest::Client, base: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let (status, retry, body) = get(client, &format!("{base}/ready")).await;
        match status {
            200 => return body,
            503 => assert_eq!(retry.as_deref(), Some("1"), "{body}"),
            other => panic!("/ready answered {other}: {body}"),
        }
        assert!(Instant::now() < deadline, "never ready: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_ready_a_new_user_reads_their_own_account_at_once() {
    let app = common::spawn_app().await;
    let body = ready(&app.client, &app.base).await;
    assert_eq!(body["status"], "ready");
    let groups = body["consumers"].as_object().expect("consumers");
    assert_eq!(groups.len(), 8, "{body}");
    assert!(groups.values().all(|v| v == "joined"), "{body}");
    for group in [
        "alpes-anonymizer",
        "alpes-billing",
        "alpes-query-materializer",
        "alpes-importer",
        "alpes-notifier",
    ] {
        assert!(groups.contains_key(group), "{group} is missing: {body}");
    }
    assert!(groups.keys().any(|g| g.starts_with("alpes-ingest-outcomes-")), "{body}");
    assert!(groups.keys().any(|g| g.starts_with("alpes-audit-projector-")), "{body}");
    assert!(groups.keys().any(|g| g.starts_with("alpes-live-")), "{body}");

    let res = app
        .client
        .post(format!("{}/usuarios", app.base))
        .json(&json!({"nombre": "Ready", "email": "ready@example.org", "password": "a-long-enough-Passw0rd", "rol": "consumidor"}))
        .send()
        .await
        .expect("register");
    assert_eq!(res.status().as_u16(), 201);
    let id = res.json::<Value>().await.expect("json")["id"].as_str().expect("id").to_owned();
    let token = app.consumer_token(&id).await;
    // The materializer has joined: the account shows up within moments, not after a rebalance.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let res = app
            .client
            .get(format!("{}/usuarios/{id}", app.base))
            .bearer_auth(&token)
            .send()
            .await
            .expect("read");
        if res.status().as_u16() == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "a user registered once ready read {}", res.status());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    app.shutdown.trigger();
    app.task.await.expect("join").expect("app");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_still_joining_answers_503_with_retry_after_and_names_it() {
    let data = tempfile::tempdir().expect("tmp");
    let mut settings = Settings::embedded(data.path().to_path_buf(), "127.0.0.1:0".parse().expect("addr"));
    settings.services = vec![Service::Billing];
    let app = App::build(settings).await.expect("build");
    // A consumer the process says it runs but never starts: the process never becomes ready.
    app.kafka().readiness().expect("alpes-never-joins");
    let base = format!("http://{}", app.addr());
    let shutdown = Shutdown::new();
    let task = tokio::spawn(app.run_until_stopped(shutdown.clone()));
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, retry, body) = get(&client, &format!("{base}/ready")).await;
        assert_eq!(status, 503, "{body}");
        assert_eq!(retry.as_deref(), Some("1"));
        assert_eq!(body["status"], "starting");
        assert_eq!(body["consumers"]["alpes-never-joins"], "joining");
        // Billing, the consumer this process does start, joins; the process stays unready.
        if body["consumers"]["alpes-billing"] == "joined" {
            break;
        }
        assert!(Instant::now() < deadline, "billing never joined: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, _, health) = get(&client, &format!("{base}/health")).await;
    assert_eq!((status, health["status"].as_str()), (200, Some("up")), "liveness is not readiness");
    shutdown.trigger();
    task.await.expect("join").expect("app");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_that_cannot_start_stops_the_process_with_an_error() {
    let data = tempfile::tempdir().expect("tmp");
    let mut settings = Settings::embedded(data.path().to_path_buf(), "127.0.0.1:0".parse().expect("addr"));
    settings.services = vec![Service::Billing];
    // A consumer property librdkafka refuses: billing's consumer cannot be created.
    settings.kafka.consumer_props = vec![("fetch.wait.max.ms".into(), "not-a-number".into())];
    let app = App::build(settings).await.expect("build");
    let stopped = tokio::time::timeout(Duration::from_secs(30), app.run_until_stopped(Shutdown::new()))
        .await
        .expect("the process stops by itself instead of serving without billing");
    let err = stopped.expect_err("an error, so its supervisor restarts it");
    assert!(err.to_string().contains("a service task failed"), "{err:#}");
}
