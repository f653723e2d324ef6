//! The per-request limits on `alpes up`: a rate per principal and per
//! anonymous client (429 with `Retry-After`, audited), the body limit of the
//! routes that are not uploads (413, declared or streamed), the time limit
//! (503 `timeout`), and CORS for the configured origins only.

mod common;

use alpes_platform::auth::Role;
use serde_json::Value;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_principal_past_its_burst_gets_429_with_retry_after_and_others_do_not() {
    let app = common::spawn_app_with(|s| {
        s.limits.rate_limit_rps = 1;
        s.limits.rate_limit_burst = 3;
        s.limits.anonymous_rate_limit_rps = 1;
        s.limits.anonymous_rate_limit_burst = 2;
    })
    .await;
    let get = |token: Option<String>, rid: &'static str| {
        let mut req = app.client.get(format!("{}/imagenes", app.base)).header("x-request-id", rid);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        async move { req.send().await.expect("request") }
    };
    let busy = app.consumer_token("busy-consumer").await;
    for _ in 0..3 {
        assert_eq!(get(Some(busy.clone()), "ok").await.status().as_u16(), 200);
    }
    let refused = get(Some(busy.clone()), "throttled-1").await;
    assert_eq!(refused.status().as_u16(), 429);
    let retry: u64 = refused.headers()["retry-after"].to_str().expect("ascii").parse().expect("seconds");
    assert!((1..=2).contains(&retry), "{retry}");
    let body: Value = refused.json().await.expect("json");
    assert_eq!(body["error"], "rate_limited");
    // Another principal has its own bucket, and so does each token's user, not the token.
    let other = app.consumer_token("calm-consumer").await;
    assert_eq!(get(Some(other), "ok").await.status().as_u16(), 200);
    assert_eq!(
        get(Some(app.consumer_token("busy-consumer").await), "ok").await.status().as_u16(),
        429
    );
    // Anonymous callers are limited by address, apart from the authenticated ones.
    let anon: Vec<u16> = futures_statuses(&app, 3).await;
    assert_eq!(anon, [401, 401, 429]);
    // The refusal is in the audit trail, with the principal the limiter saw.
    let admin = app.token("limits-admin", Role::Admin).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let page: Value = app
            .client
            .get(format!("{}/auditoria?request_id=throttled-1", app.base))
            .bearer_auth(&admin)
            .send()
            .await
            .expect("audit")
            .json()
            .await
            .expect("json");
        if let Some(e) = page["registros"].as_array().and_then(|r| r.first()) {
            assert_eq!((e["action"].as_str(), e["outcome"].as_str()), (Some("access"), Some("denied")));
            assert_eq!(
                (e["actor"].as_str(), e["reason"].as_str()),
                (Some("busy-consumer"), Some("rate_limited"))
            );
            break;
        }
        assert!(Instant::now() < deadline, "the refusal was not audited");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.shutdown.trigger();
    app.task.await.expect("join").expect("clean stop");
}

/// The statuses of `n` anonymous `GET /imagenes`, in order.
async fn futures_statuses(app: &common::TestApp, n: usize) -> Vec<u16> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(
            app.client
                .get(format!("{}/imagenes", app.base))
                .send()
                .await
                .expect("anonymous")
                .status()
                .as_u16(),
        );
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_past_the_limit_are_413_whether_declared_or_streamed() {
    let app = common::spawn_app_with(|s| s.limits.max_body_bytes = 1024).await;
    let big = vec![b' '; 4096];
    let declared = app
        .client
        .post(format!("{}/auth/login", app.base))
        .header("content-type", "application/json")
        .body(big.clone())
        .send()
        .await
        .expect("declared");
    assert_eq!(declared.status().as_u16(), 413);
    assert_eq!(declared.json::<Value>().await.expect("json")["error"], "payload_too_large");
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = vec![Ok(big[..2048].to_vec()), Ok(big[2048..].to_vec())];
    let streamed = app
        .client
        .post(format!("{}/auth/login", app.base))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .expect("streamed");
    assert_eq!(streamed.status().as_u16(), 413);
    // An upload is not held to it: it streams under the upload limit.
    let dicom = std::fs::read(common::fixtures_dir().join("CT_small.dcm")).expect("fixture");
    // One refused before its body is read closes the connection, which then
    // carries nothing else (the body's remains may still be on the wire).
    let refused = app
        .client
        .post(format!("{}/imagenes", app.base))
        .header("content-type", "application/dicom")
        .body(dicom.clone())
        .send()
        .await
        .expect("anonymous upload");
    assert_eq!(refused.status().as_u16(), 401);
    assert_eq!(refused.headers()["connection"], "close");
    assert!(dicom.len() > 1024);
    let upload = app
        .client
        .post(format!("{}/imagenes", app.base))
        .bearer_auth(app.token("prov-limits", Role::Proveedor).await)
        .header("content-type", "application/dicom")
        .body(dicom)
        .send()
        .await
        .expect("upload");
    assert_eq!(upload.status().as_u16(), 202);
    app.shutdown.trigger();
    app.task.await.expect("join").expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_answers_the_configured_origins_only() {
    let app = common::spawn_app_with(|s| s.limits.cors_origins = vec!["https://viewer.example.org".into()]).await;
    let preflight = |origin: &'static str| {
        app.client
            .request(reqwest::Method::OPTIONS, format!("{}/imagenes", app.base))
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization")
            .send()
    };
    let allowed = preflight("https://viewer.example.org").await.expect("preflight");
    assert!(allowed.status().is_success(), "{}", allowed.status());
    assert_eq!(allowed.headers()["access-control-allow-origin"], "https://viewer.example.org");
    let headers = allowed.headers()["access-control-allow-headers"]
        .to_str()
        .expect("ascii")
        .to_lowercase();
    assert!(headers.contains("authorization") && headers.contains("x-api-key"), "{headers}");
    // A DICOMweb viewer's Accept (multipart/related; type="application/dicom") needs asking.
    assert!(headers.contains("accept"), "{headers}");
    let refused = preflight("https://elsewhere.example").await.expect("preflight");
    assert!(refused.headers().get("access-control-allow-origin").is_none());
    let get = app
        .client
        .get(format!("{}/health", app.base))
        .header("origin", "https://viewer.example.org")
        .send()
        .await
        .expect("get");
    assert_eq!(get.headers()["access-control-allow-origin"], "https://viewer.example.org");
    assert!(get.headers()["access-control-expose-headers"]
        .to_str()
        .expect("ascii")
        .contains("x-request-id"));
    app.shutdown.trigger();
    app.task.await.expect("join").expect("clean stop");
}
