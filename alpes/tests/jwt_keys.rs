//! EdDSA token keys end to end: `alpes jwt-key new` writes key pairs, `alpes
//! up` signs with one and serves its public keys at `/.well-known/jwks.json`,
//! a rotation (new signing key, the old one verification-only) keeps the old
//! tokens working while new ones carry the new kid, and dropping the old key
//! ends them. Without a key named, `alpes up` creates one in the data dir that
//! `alpes token` signs with too.

mod common;

use alpes::jwt_keys::{read_any_key, JwtAlg, VerifyKeyArg};
use alpes_platform::auth::{Jwt, Role};
use common::TestApp;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// `alpes jwt-key new --out-dir dir`: the kid it prints and the two files it wrote.
fn jwt_key_new(dir: &Path) -> (String, PathBuf, PathBuf) {
    let out = Command::new(env!("CARGO_BIN_EXE_alpes"))
        .args(["jwt-key", "new", "--out-dir"])
        .arg(dir)
        .output()
        .expect("run alpes jwt-key new");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let kid = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let (private, public) = (dir.join(format!("{kid}.key.pem")), dir.join(format!("{kid}.pub.pem")));
    assert!(private.exists() && public.exists(), "{kid}");
    (kid, private, public)
}

fn kid_of(token: &str) -> String {
    let header = jsonwebtoken::decode_header(token).expect("header");
    assert_eq!(header.alg, jsonwebtoken::Algorithm::EdDSA);
    header.kid.expect("every EdDSA token names its key")
}

/// `GET /imagenes` with `token`: the status and the body.
async fn list(app: &TestApp, token: &str) -> (u16, Value) {
    let res = app
        .client
        .get(format!("{}/imagenes", app.base))
        .bearer_auth(token)
        .send()
        .await
        .expect("GET /imagenes");
    (res.status().as_u16(), res.json().await.expect("json"))
}

/// What `GET /.well-known/jwks.json` answers (200 checked).
async fn jwks_body(app: &TestApp) -> Value {
    let res = app
        .client
        .get(format!("{}/.well-known/jwks.json", app.base))
        .send()
        .await
        .expect("jwks");
    assert_eq!(res.status().as_u16(), 200);
    res.json().await.expect("json")
}

/// The kids `GET /.well-known/jwks.json` lists, in order, after checking each key's shape.
async fn jwks(app: &TestApp) -> Vec<Value> {
    let keys = jwks_body(app).await["keys"].as_array().expect("keys").clone();
    for k in &keys {
        assert_eq!((k["kty"].as_str(), k["crv"].as_str()), (Some("OKP"), Some("Ed25519")), "{k}");
        assert_eq!((k["alg"].as_str(), k["use"].as_str()), (Some("EdDSA"), Some("sig")), "{k}");
        assert!(k.get("d").is_none(), "never a private key: {k}");
    }
    keys
}

async fn stop(app: TestApp) {
    app.shutdown.trigger();
    app.task.await.expect("join").expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_tokens_keep_working_through_a_key_rotation_and_stop_when_the_old_key_is_dropped() {
    let keys = tempfile::tempdir().expect("tmp");
    let (old_kid, old_key, old_pub) = jwt_key_new(keys.path());
    let (new_kid, new_key, new_pub) = jwt_key_new(keys.path());
    assert_ne!(old_kid, new_kid);

    // One instance, restarted at each step: its data dir (and so its accounts) stays.
    let data = tempfile::tempdir().expect("tmp");
    // Before: the old key signs.
    let before = common::spawn_app_with(|s| {
        s.data_dir = data.path().to_path_buf();
        s.jwt.alg = JwtAlg::Eddsa;
        s.jwt.signing_key = Some(old_key.clone());
    })
    .await;
    let old_token = before.consumer_token("lab-1").await;
    assert_eq!(kid_of(&old_token), old_kid);
    assert_eq!(list(&before, &old_token).await.0, 200);
    let listed = jwks(&before).await;
    assert_eq!(listed, vec![read_any_key(&old_pub).expect("old").jwk()]);
    // An HS256 token, even one signed with the data dir's kind of secret, is refused.
    let hs256 = Jwt::new(b"0123456789abcdef0123456789abcdef")
        .issue("lab-1", Role::Admin, std::time::Duration::from_secs(60))
        .expect("issue");
    let (status, body) = list(&before, &hs256).await;
    assert_eq!(
        (status, body["message"].as_str()),
        (401, Some("invalid bearer token: wrong algorithm"))
    );
    stop(before).await;

    // The rotation: the new key signs, the old one only verifies.
    let during = common::spawn_app_with(|s| {
        s.data_dir = data.path().to_path_buf();
        s.jwt.alg = JwtAlg::Eddsa;
        s.jwt.signing_key = Some(new_key.clone());
        s.jwt.verify_keys = vec![VerifyKeyArg {
            kid: old_kid.clone(),
            path: old_pub.clone(),
        }];
    })
    .await;
    assert_eq!(list(&during, &old_token).await.0, 200, "a token of the old key still works");
    let new_token = during.consumer_token("lab-1").await;
    assert_eq!(kid_of(&new_token), new_kid, "new tokens carry the new kid");
    assert_eq!(list(&during, &new_token).await.0, 200);
    let listed = jwks(&during).await;
    let expected = vec![
        read_any_key(&new_pub).expect("new").jwk(),
        read_any_key(&old_pub).expect("old").jwk(),
    ];
    assert_eq!(listed, expected, "the signing key first, then the verification-only one");
    // Another service verifies locally with a key from the set.
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(listed[0].clone()).expect("jwk");
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.set_issuer(&["alpes"]);
    let claims = jsonwebtoken::decode::<Value>(&new_token, &jsonwebtoken::DecodingKey::from_jwk(&jwk).expect("key"), &validation)
        .expect("verifies with the published key");
    assert_eq!(claims.claims["sub"], "lab-1");
    stop(during).await;

    // After the longest token lifetime: the old key is dropped.
    let after = common::spawn_app_with(|s| {
        s.data_dir = data.path().to_path_buf();
        s.jwt.alg = JwtAlg::Eddsa;
        s.jwt.signing_key = Some(new_key.clone());
    })
    .await;
    let (status, body) = list(&after, &old_token).await;
    assert_eq!(
        (status, body["message"].as_str()),
        (401, Some("invalid bearer token: unknown key id (kid)"))
    );
    assert!(!body.to_string().contains(&old_kid), "the kid is not echoed");
    assert_eq!(list(&after, &new_token).await.0, 200);
    assert_eq!(jwks(&after).await.len(), 1);
    stop(after).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_key_named_alpes_up_creates_one_in_the_data_dir_that_alpes_token_signs_with() {
    let data = tempfile::tempdir().expect("tmp");
    let dir = data.path().to_path_buf();
    let app = common::spawn_app_with(|s| {
        s.data_dir = dir.clone();
        s.jwt.alg = JwtAlg::Eddsa;
    })
    .await;
    let private = alpes::jwt_keys::ed25519_key_path(&dir);
    let kid = read_any_key(&private).expect("created").kid().to_owned();
    let listed = jwks(&app).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["kid"].as_str(), Some(kid.as_str()));

    let alpes_token = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_alpes"))
            .args(["token", "--user", "lab-2", "--role", "consumidor", "--jwt-alg", "eddsa"])
            .args(extra)
            .arg("--data-dir")
            .arg(&dir)
            .output()
            .expect("run alpes token")
    };
    // No account has the id: no token (the instance would refuse it).
    let out = alpes_token(&[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("no account has the id lab-2") && said.contains("--create-account"),
        "{said}"
    );
    let out = alpes_token(&["--create-account"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stderr.is_empty(), "the key existed: nothing created");
    let token = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert_eq!(kid_of(&token), kid);
    assert_eq!(list(&app, &token).await.0, 200);
    stop(app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_hs256_instance_publishes_an_empty_key_set() {
    let app = common::spawn_app().await;
    assert_eq!(jwks_body(&app).await, serde_json::json!({"keys": []}));
    let token = app.consumer_token("lab-3").await;
    assert!(jsonwebtoken::decode_header(&token).expect("header").kid.is_none());
    assert_eq!(list(&app, &token).await.0, 200);
    stop(app).await;
}
