//! The smaller findings, replayed on `alpes up`: token edge cases (claims
//! missing or in the future, a subject no account has), two credentials at once, an over-long QIDO filter, `Range` and `If-Range`,
//! and control characters in names.

use super::common;
use alpes_platform::auth::{Claims, Role};
use alpes_schemas::{new_event_id, now_millis};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_with_missing_or_future_claims_or_an_unknown_subject_and_requests_with_two_credentials_are_refused() {
    let app = common::spawn_app().await;
    let key = alpes::secret::read(&alpes::jwt_keys::jwt_key_path(app.data.path())).expect("jwt key");
    let secs = u64::try_from(now_millis() / 1000).expect("now");
    let good = Claims {
        sub: "probe-consumer".into(),
        role: Role::Consumidor,
        iat: secs,
        exp: secs + 600,
        iss: "alpes".into(),
        jti: Some(new_event_id()),
    };
    let sign = |c: &Claims| {
        let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        jsonwebtoken::encode(&header, c, &jsonwebtoken::EncodingKey::from_secret(&key)).expect("sign")
    };
    let status = |token: String, api_key: Option<&'static str>| {
        let mut req = app.client.get(format!("{}/imagenes", app.base)).bearer_auth(token);
        if let Some(k) = api_key {
            req = req.header("x-api-key", k);
        }
        async move {
            let res = req.send().await.expect("request");
            let status = res.status().as_u16();
            let body: serde_json::Value = res.json().await.expect("json");
            (
                status,
                body["error"].as_str().unwrap_or_default().to_owned(),
                body["message"].to_string(),
            )
        }
    };
    // Signed with the instance's key, but naming a user no account has: nobody.
    let (code, error, message) = status(sign(&good), None).await;
    assert_eq!((code, error.as_str()), (401, "unknown_subject"), "{message}");
    assert!(message.contains("names no account"), "{message}");
    // Once the account exists the same token is accepted; with another role than the account's, not.
    app.token(&good.sub, Role::Consumidor).await;
    assert_eq!(status(sign(&good), None).await.0, 200);
    let as_admin = Claims {
        role: Role::Admin,
        jti: Some(new_event_id()),
        ..good.clone()
    };
    let (code, error, message) = status(sign(&as_admin), None).await;
    assert_eq!((code, error.as_str()), (401, "unknown_subject"), "{message}");
    assert!(message.contains("not the account's"), "{message}");
    for (claims, why) in [
        (
            Claims {
                iat: secs + 86_400,
                ..good.clone()
            },
            "issued in the future",
        ),
        (Claims { jti: None, ..good.clone() }, "no token id"),
        (
            Claims {
                sub: String::new(),
                ..good.clone()
            },
            "no subject",
        ),
    ] {
        let (code, error, message) = status(sign(&claims), None).await;
        assert_eq!((code, error.as_str()), (401, "unauthorized"), "{why}");
        assert!(message.contains(why), "{message}");
    }
    // An invalid token beside a key, and a valid token beside a key: both refused.
    for token in ["not.a.token".to_owned(), sign(&good)] {
        let (code, error, _) = status(token, Some("alpes_abc_def")).await;
        assert_eq!((code, error.as_str()), (401, "two_credentials"));
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_long_filters_ranges_that_do_not_parse_stale_if_range_and_control_characters() {
    let app = common::spawn_app().await;
    let consumer = app.consumer_token("probe-reader").await;
    let provider = app.token("probe-provider", Role::Proveedor).await;
    // A 50,001-character PatientID is the client's mistake, not an outage.
    let res = app
        .client
        .get(format!("{}/studies?PatientID={}", app.base, "1".repeat(50_001)))
        .bearer_auth(&consumer)
        .send()
        .await
        .expect("qido");
    assert_eq!(res.status().as_u16(), 400);
    let body: serde_json::Value = res.json().await.expect("json");
    assert_eq!(body["error"], "bad_match");

    let id = app.upload_fixture("CT_small.dcm", &provider).await;
    let whole = app.download_when_ready(&id, &consumer).await;
    let get = |headers: &[(&'static str, String)]| {
        let mut req = app
            .client
            .get(format!("{}/imagenes/{id}/anonimizada", app.base))
            .bearer_auth(&consumer);
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        async move { req.send().await.expect("download") }
    };
    let ranged = get(&[("range", "bytes=0-9".into())]).await;
    assert_eq!(ranged.status().as_u16(), 206);
    let etag = ranged.headers()["etag"].to_str().expect("etag").to_owned();
    let ignored = get(&[("range", "bytes=abc".into())]).await;
    assert_eq!(ignored.status().as_u16(), 200, "a range that does not parse is ignored");
    assert_eq!(ignored.bytes().await.expect("bytes").len(), whole.len());
    let stale = get(&[("range", "bytes=0-9".into()), ("if-range", "\"another\"".into())]).await;
    assert_eq!(stale.status().as_u16(), 200, "a stale If-Range gets the whole image");
    let fresh = get(&[("range", "bytes=0-9".into()), ("if-range", etag)]).await;
    assert_eq!(fresh.status().as_u16(), 206);
    assert_eq!(fresh.bytes().await.expect("bytes").len(), 10);

    let (status, body) = app
        .post_json(
            "/usuarios",
            None,
            json!({"nombre": "Ana\u{0}Null", "email": "nul@example.org", "password": "a long enough password", "rol": "consumidor"}),
        )
        .await;
    assert_eq!((status, body["error"].as_str()), (422, Some("bad_nombre")));
    app.stop().await;
}
