//! Registration, login with lockout, refresh rotation with reuse detection,
//! logout and token introspection, against the ingest routes on the mock
//! cluster. Every test also checks what reached the log: no password, no
//! hash, no email.

mod common;

use alpes_platform::auth::Role;
use alpes_platform::store::{IdentityStore, IngestStore};
use alpes_schemas::{IntentoLogin, UsuarioRegistrado};
use serde_json::{json, Value};
use std::time::Duration;

const PASSWORD: &str = "correct horse battery staple";

async fn post(app: &common::TestApp, path: &str, token: Option<&str>, body: Value) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut req = app.client.post(format!("{}{path}", app.base)).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.expect("request");
    let (status, headers) = (res.status().as_u16(), res.headers().clone());
    let text = res.text().await.expect("body");
    (status, headers, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn register(app: &common::TestApp, email: &str, rol: &str, token: Option<&str>) -> (u16, Value) {
    let body = json!({"nombre": "Ana Pérez", "email": email, "password": PASSWORD, "rol": rol, "organizacion": "Hospital 7"});
    let (status, _, answer) = post(app, "/usuarios", token, body).await;
    (status, answer)
}

async fn login(app: &common::TestApp, email: &str, password: &str) -> (u16, reqwest::header::HeaderMap, Value) {
    post(app, "/auth/login", None, json!({"email": email, "password": password})).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_is_created_once_per_email_and_only_an_admin_creates_admins() {
    let app = common::spawn_app(1 << 20).await;
    let registered = app.consumer::<UsuarioRegistrado>();
    let (status, answer) = register(&app, "Ana@Hospital.org", "proveedor", None).await;
    assert_eq!(status, 201, "{answer}");
    let id = answer["id"].as_str().expect("id").to_owned();
    assert_eq!(
        (answer["rol"].as_str(), answer["organizacion"].as_str()),
        (Some("proveedor"), Some("Hospital 7"))
    );
    let text = answer.to_string();
    assert!(
        !text.contains("argon2") && !text.contains(PASSWORD) && !text.contains("ana@"),
        "{text}"
    );

    let stored = app.identity.account(&id).await.expect("account").expect("stored");
    assert!(stored.password_hash.starts_with("$argon2id$"), "stored as argon2id");
    assert_eq!(stored.email, "ana@hospital.org", "normalized");
    assert!(stored.published);
    let events = app.events::<UsuarioRegistrado>(&registered, 1, Duration::from_secs(60)).await;
    assert_eq!(events.len(), 1);
    let e = &events[0].1;
    assert_eq!(
        (e.user_id.as_str(), e.role.as_str(), e.actor.as_str()),
        (id.as_str(), "proveedor", id.as_str())
    );
    let shown = format!("{e:?}");
    assert!(!shown.contains("argon2") && !shown.contains("hospital.org"), "{shown}");

    // The email is unique, compared normalized.
    assert_eq!(register(&app, " ana@hospital.ORG", "consumidor", None).await.0, 409);
    // Bad input gets a typed error.
    let weak = json!({"nombre": "B", "email": "b@h.org", "password": "short", "rol": "consumidor"});
    let (status, _, answer) = post(&app, "/usuarios", None, weak).await;
    assert_eq!((status, answer["error"].as_str()), (422, Some("weak_password")));
    assert!(!answer.to_string().contains("short"), "the password is not echoed");
    let (status, _, answer) = post(&app, "/usuarios", None, json!({"nombre": "B"})).await;
    assert_eq!((status, answer["error"].as_str()), (400, Some("bad_json")));

    // Only an admin creates an admin.
    assert_eq!(register(&app, "root@h.org", "admin", None).await.0, 401);
    let provider = app.token("p-1", Role::Proveedor).await;
    assert_eq!(register(&app, "root@h.org", "admin", Some(&provider)).await.0, 403);
    let admin = app.token("admin-0", Role::Admin).await;
    let (status, answer) = register(&app, "root@h.org", "admin", Some(&admin)).await;
    assert_eq!(status, 201, "{answer}");
    assert!(app.identity.has_admin().await.expect("has_admin"));
    let created = app
        .identity
        .account(answer["id"].as_str().expect("id"))
        .await
        .expect("account")
        .expect("stored");
    assert_eq!(created.created_by, "admin-0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_answers_an_unknown_email_like_a_wrong_password_and_records_every_attempt() {
    let app = common::spawn_app(1 << 20).await;
    let attempts = app.consumer::<IntentoLogin>();
    let (_, answer) = register(&app, "ana@h.org", "consumidor", None).await;
    let id = answer["id"].as_str().expect("id").to_owned();

    let (s1, _, unknown) = login(&app, "nobody@h.org", PASSWORD).await;
    let (s2, _, wrong) = login(&app, "ana@h.org", "not the password at all").await;
    assert_eq!((s1, s2), (401, 401));
    assert_eq!(unknown, wrong, "the same answer for both");
    assert_eq!(unknown["error"].as_str(), Some("invalid_credentials"));

    let (status, _, tokens) = login(&app, "ANA@h.org", PASSWORD).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["token_type"].as_str(), Some("Bearer"));
    let access = tokens["access_token"].as_str().expect("access");
    let (_, _, verified) = post(&app, "/auth/verify", None, json!({"token": access})).await;
    assert_eq!(
        (verified["active"].as_bool(), verified["sub"].as_str()),
        (Some(true), Some(id.as_str()))
    );
    assert_eq!(verified["role"].as_str(), Some("consumidor"));
    let (_, _, garbage) = post(&app, "/auth/verify", None, json!({"token": "not.a.token"})).await;
    assert_eq!(garbage, json!({"active": false}));

    let seen = app.events::<IntentoLogin>(&attempts, 3, Duration::from_secs(60)).await;
    // Keyed by user, so the unknown attempt may sit on another partition: compare without order.
    let mut outcomes: Vec<_> = seen.iter().map(|(_, e)| (e.user_id.clone(), e.success, e.reason.clone())).collect();
    outcomes.sort();
    let mut expected = vec![
        ("unknown".to_owned(), false, Some("unknown_user".to_owned())),
        (id.clone(), false, Some("bad_credentials".to_owned())),
        (id.clone(), true, None),
    ];
    expected.sort();
    assert_eq!(outcomes, expected);
    let own: Vec<_> = seen.iter().filter(|(_, e)| e.user_id == id).map(|(_, e)| e.success).collect();
    assert_eq!(own, vec![false, true], "one user's attempts stay in order");
    let all = format!("{seen:?}");
    assert!(
        !all.contains("nobody@") && !all.contains("ana@") && !all.contains("not the password"),
        "{all}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_lock_the_account_with_retry_after_and_a_success_resets_the_count() {
    let app = common::spawn_app(1 << 20).await;
    let (_, answer) = register(&app, "ana@h.org", "proveedor", None).await;
    let id = answer["id"].as_str().expect("id").to_owned();
    // Two failures, then a success: the count is back to 0.
    for _ in 0..2 {
        assert_eq!(login(&app, "ana@h.org", "wrong wrong wrong").await.0, 401);
    }
    assert_eq!(app.identity.account(&id).await.expect("a").expect("a").failed_logins, 2);
    assert_eq!(login(&app, "ana@h.org", PASSWORD).await.0, 200);
    assert_eq!(app.identity.account(&id).await.expect("a").expect("a").failed_logins, 0);
    // Three failures in the window lock it (test limit 3, 60 s): even the right password gets 429.
    for _ in 0..3 {
        assert_eq!(login(&app, "ana@h.org", "wrong wrong wrong").await.0, 401);
    }
    let (status, headers, body) = login(&app, "ana@h.org", PASSWORD).await;
    assert_eq!((status, body["error"].as_str()), (429, Some("account_locked")), "{body}");
    let retry: u64 = headers["retry-after"].to_str().expect("ascii").parse().expect("seconds");
    assert!((1..=60).contains(&retry), "{retry}");
    // Every answer, an error too, carries a request id and the security headers.
    assert!(uuid::Uuid::parse_str(headers["x-request-id"].to_str().expect("ascii")).is_ok());
    assert_eq!(headers["x-content-type-options"], "nosniff");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_token_rotates_once_and_a_reused_one_revokes_its_family() {
    let app = common::spawn_app(1 << 20).await;
    register(&app, "ana@h.org", "consumidor", None).await;
    let (_, _, first) = login(&app, "ana@h.org", PASSWORD).await;
    let r1 = first["refresh_token"].as_str().expect("refresh").to_owned();
    let (status, _, second) = post(&app, "/auth/refresh", None, json!({"refresh_token": r1})).await;
    assert_eq!(status, 200, "{second}");
    let r2 = second["refresh_token"].as_str().expect("refresh").to_owned();
    assert_ne!(r1, r2);
    let (_, _, verified) = post(&app, "/auth/verify", None, json!({"token": second["access_token"]})).await;
    assert_eq!(verified["active"].as_bool(), Some(true));

    // r1 again: a copy is in use somewhere. The family goes, r2 with it.
    let (status, _, reused) = post(&app, "/auth/refresh", None, json!({"refresh_token": r1})).await;
    assert_eq!((status, reused["error"].as_str()), (401, Some("refresh_reused")));
    let (status, _, after) = post(&app, "/auth/refresh", None, json!({"refresh_token": r2})).await;
    assert_eq!((status, after["error"].as_str()), (401, Some("invalid_refresh")));
    // Another login's family is untouched.
    let (_, _, other) = login(&app, "ana@h.org", PASSWORD).await;
    let (status, _, _) = post(&app, "/auth/refresh", None, json!({"refresh_token": other["refresh_token"]})).await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_revokes_the_access_token_and_the_refresh_family() {
    let app = common::spawn_app(1 << 20).await;
    register(&app, "ana@h.org", "proveedor", None).await;
    let (_, _, tokens) = login(&app, "ana@h.org", PASSWORD).await;
    let access = tokens["access_token"].as_str().expect("access").to_owned();
    let refresh = tokens["refresh_token"].as_str().expect("refresh").to_owned();
    assert_eq!(post(&app, "/auth/logout", None, json!({})).await.0, 401, "logout needs the token");
    let (status, _, _) = post(&app, "/auth/logout", Some(&access), json!({"refresh_token": refresh})).await;
    assert_eq!(status, 204);

    let (_, _, verified) = post(&app, "/auth/verify", None, json!({"token": access})).await;
    assert_eq!(verified, json!({"active": false}));
    // A protected route refuses it too.
    let res = app
        .client
        .post(format!("{}/imagenes", app.base))
        .bearer_auth(&access)
        .header("content-type", "application/dicom")
        .body(common::fixture("CT_small.dcm"))
        .send()
        .await
        .expect("upload");
    assert_eq!(res.status().as_u16(), 401);
    let body: Value = res.json().await.expect("json");
    assert!(body["message"].as_str().expect("message").contains("revoked"), "{body}");
    let (status, _, _) = post(&app, "/auth/refresh", None, json!({"refresh_token": refresh})).await;
    assert_eq!(status, 401, "the refresh token went with the logout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_key_is_shown_once_acts_for_its_user_and_stops_working_when_revoked() {
    let app = common::spawn_app(1 << 20).await;
    let admin = app.token("admin-1", Role::Admin).await;
    let request = json!({"nombre": "PACS bridge", "rol": "proveedor", "usuario_id": "hospital-7"});
    assert_eq!(post(&app, "/api-keys", None, request.clone()).await.0, 401);
    assert_eq!(
        post(&app, "/api-keys", Some(&app.token("p", Role::Proveedor).await), request.clone())
            .await
            .0,
        403
    );
    let (status, _, created) = post(&app, "/api-keys", Some(&admin), request).await;
    assert_eq!(status, 201, "{created}");
    let key = created["key"].as_str().expect("the key, once").to_owned();
    let id = created["id"].as_str().expect("id").to_owned();
    assert!(key.starts_with(&format!("alpes_{id}_")), "{key}");
    let stored = app.identity.api_key(&id).await.expect("key").expect("stored");
    assert!(
        !stored.key_hash.contains(&key) && stored.key_hash.len() == 64,
        "stored as its SHA-256"
    );

    let upload = |key: String| {
        let app = &app;
        async move {
            app.client
                .post(format!("{}/imagenes", app.base))
                .header("x-api-key", key)
                .header("content-type", "application/dicom")
                .body(common::fixture("CT_small.dcm"))
                .send()
                .await
                .expect("upload")
        }
    };
    let res = upload(key.clone()).await;
    assert_eq!(res.status().as_u16(), 202);
    let image: Value = res.json().await.expect("json");
    let row = app
        .store
        .image(image["id"].as_str().expect("id"))
        .await
        .expect("image")
        .expect("stored");
    assert_eq!(row.provider_id, "hospital-7", "the key acts for its user");
    assert!(app
        .identity
        .api_key(&id)
        .await
        .expect("key")
        .expect("stored")
        .last_used_at
        .is_some());
    let forged = format!("alpes_{id}_not-the-secret");
    assert_eq!(upload(forged).await.status().as_u16(), 401);

    // Listed without its secret.
    let listed: Value = app
        .client
        .get(format!("{}/api-keys", app.base))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    assert_eq!(listed["api_keys"][0]["id"].as_str(), Some(id.as_str()));
    assert!(!listed.to_string().contains(&key), "{listed}");

    let revoke = || app.client.delete(format!("{}/api-keys/{id}", app.base)).bearer_auth(&admin).send();
    assert_eq!(revoke().await.expect("revoke").status().as_u16(), 204);
    assert_eq!(revoke().await.expect("again").status().as_u16(), 404);
    let res = upload(key).await;
    assert_eq!(res.status().as_u16(), 401);
    let body: Value = res.json().await.expect("json");
    assert!(body["message"].as_str().expect("message").contains("revoked"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_subject_is_an_account_of_its_role_made_only_when_asked() {
    let app = common::spawn_app(1 << 20).await;
    let accounts = alpes_ingest::identity::Identity::new(app.identity.clone(), common::test_identity_args()).expect("identity");
    let missing = accounts
        .token_subject("svc-1", Some(Role::Proveedor), false)
        .await
        .expect_err("no account");
    assert_eq!((missing.status.as_u16(), missing.code), (404, "no_account"));
    let made = accounts.token_subject("svc-1", Some(Role::Proveedor), true).await.expect("made");
    assert_eq!((made.user_id.as_str(), made.role), ("svc-1", Role::Proveedor));
    assert_eq!(made.email, "svc-1@accounts.invalid");
    let again = accounts.token_subject("svc-1", None, false).await.expect("found");
    assert_eq!(again.user_id, made.user_id);
    let other = accounts
        .token_subject("svc-1", Some(Role::Admin), true)
        .await
        .expect_err("other role");
    assert_eq!((other.status.as_u16(), other.code), (409, "other_role"));
    let no_role = accounts.token_subject("svc-2", None, true).await.expect_err("no role");
    assert_eq!(no_role.code, "no_role");
    // The account cannot log in: nobody knows its password.
    let (status, _, _) = login(&app, "svc-1@accounts.invalid", "").await;
    assert_eq!(status, 401);
}
