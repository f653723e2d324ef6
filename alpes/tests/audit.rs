//! The audit trail, end to end on `alpes up`: an upload, its anonymization
//! and its download share the client's request id across the events and
//! the audit entries; refusals, admin reads, key changes, payments and logins
//! are recorded; `GET /auditoria` filters and pages it for admins only; and
//! `GET /usuarios/{id}` counts the user's login attempts.

mod common;

use alpes_platform::auth::Role;
use alpes_schemas::{Codec, Event, ImagenAnonimizada, ImagenRegistrada, RegistroAuditoria};
use serde_json::{json, Value};
use std::time::Duration;

const PASSWORD: &str = "correct horse battery staple";

/// `GET /auditoria?<query>`, every page, polled until `done` holds (20 s at most).
async fn audit_until(app: &common::TestApp, query: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    app.audit_until(query, Duration::from_secs(20), done).await
}

fn field<'a>(e: &'a Value, name: &str) -> &'a str {
    e[name].as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_its_anonymization_and_its_download_are_audited_under_one_request_id() {
    let app = common::spawn_app().await;
    let provider = app.token("prov-audit", Role::Proveedor).await;
    let consumer = app.consumer_token("cons-audit").await;
    let events = app.consumer(&[ImagenRegistrada::TOPIC, ImagenAnonimizada::TOPIC]);

    let bytes = std::fs::read(common::fixtures_dir().join("CT_small.dcm")).expect("fixture");
    let res = app
        .client
        .post(format!("{}/imagenes", app.base))
        .bearer_auth(&provider)
        .header("content-type", "application/dicom")
        .header("x-request-id", "upload-req-1")
        .body(bytes)
        .send()
        .await
        .expect("upload");
    assert_eq!(res.status().as_u16(), 202);
    assert_eq!(res.headers()["x-request-id"], "upload-req-1");
    let id = res.json::<Value>().await.expect("json")["id"].as_str().expect("id").to_owned();

    // The events carry the request id, and so does the anonymizer's entry.
    let codec = Codec::single_object();
    let mut seen = (None, None);
    for (topic, _, payload) in common::drain(&events, 2, Duration::from_secs(30)).await {
        if topic == ImagenRegistrada::TOPIC {
            seen.0 = Some(codec.decode::<ImagenRegistrada>(&payload).await.expect("decode").http_request_id);
        } else {
            seen.1 = Some(codec.decode::<ImagenAnonimizada>(&payload).await.expect("decode").http_request_id);
        }
    }
    let ours = Some(Some("upload-req-1".to_owned()));
    assert_eq!(seen, (ours.clone(), ours));
    let trail = audit_until(&app, "request_id=upload-req-1", |e| e.len() == 2).await;
    let actions: Vec<_> = trail
        .iter()
        .map(|e| (field(e, "action"), field(e, "actor"), field(e, "outcome")))
        .collect();
    assert!(actions.contains(&("upload", "prov-audit", "ok")), "{actions:?}");
    assert!(actions.contains(&("anonymization", "anonymizer", "ok")), "{actions:?}");
    assert!(trail.iter().all(|e| field(e, "target") == id));
    // The vocabulary's filters and fields find the same entries, with the same values.
    let spanish = audit_until(&app, "solicitud_http_id=upload-req-1&accion=upload", |e| e.len() == 1).await;
    let upload = &spanish[0];
    for (new, old) in [
        ("evento_id", "event_id"),
        ("ocurrido_at", "occurred_at"),
        ("rol_actor", "actor_role"),
        ("accion", "action"),
        ("objetivo", "target"),
        ("ruta", "route"),
        ("resultado", "outcome"),
        ("estado_http", "status"),
        ("solicitud_http_id", "request_id"),
        ("servicio", "service"),
    ] {
        assert_eq!(upload[new], upload[old], "{new} and {old}");
        assert!(!upload[new].is_null() || new == "motivo", "{new} in {upload}");
    }
    assert_eq!((field(upload, "accion"), field(upload, "objetivo")), ("upload", id.as_str()));

    // The download, by the consumer, under a generated request id (the anonymization's audit
    // entry can come before the materializer has the output: 404 until then).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let res = loop {
        let res = app
            .client
            .get(format!("{}/imagenes/{id}/anonimizada", app.base))
            .bearer_auth(&consumer)
            .send()
            .await
            .expect("download");
        if res.status().as_u16() != 404 || tokio::time::Instant::now() > deadline {
            break res;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(res.status().as_u16(), 200);
    let rid = res.headers()["x-request-id"].to_str().expect("ascii").to_owned();
    let download = audit_until(&app, &format!("request_id={rid}"), |e| !e.is_empty()).await;
    let d = &download[0];
    assert_eq!(
        (field(d, "action"), field(d, "actor"), field(d, "actor_role"), field(d, "target")),
        ("download", "cons-audit", "consumidor", id.as_str())
    );
    assert_eq!(
        (field(d, "route"), d["status"].as_i64()),
        ("GET /imagenes/{id}/anonimizada", Some(200))
    );

    // Raw bytes are never served: the provider's own image is not downloadable as uploaded,
    // and a consumer reading another's balance is refused; both are recorded as denied.
    let res = app
        .client
        .get(format!("{}/monetizacion/saldo/prov-audit", app.base))
        .bearer_auth(&consumer)
        .header("x-request-id", "nosy-1")
        .send()
        .await
        .expect("saldo");
    assert_eq!(res.status().as_u16(), 403);
    let denied = audit_until(&app, "request_id=nosy-1", |e| !e.is_empty()).await;
    assert_eq!(
        (
            field(&denied[0], "action"),
            field(&denied[0], "outcome"),
            field(&denied[0], "reason")
        ),
        ("access", "denied", "forbidden")
    );
    let res = app
        .client
        .get(format!("{}/imagenes", app.base))
        .header("x-request-id", "anon-1")
        .send()
        .await
        .expect("anon");
    assert_eq!(res.status().as_u16(), 401);
    let anon = audit_until(&app, "request_id=anon-1", |e| !e.is_empty()).await;
    assert_eq!((field(&anon[0], "actor"), field(&anon[0], "outcome")), ("anonymous", "denied"));

    // Only an admin reads the trail, and that read is itself recorded.
    for who in [&provider, &consumer] {
        let res = app
            .client
            .get(format!("{}/auditoria", app.base))
            .bearer_auth(who)
            .send()
            .await
            .expect("audit");
        assert_eq!(res.status().as_u16(), 403);
    }
    audit_until(&app, "action=audit_read", |e| e.iter().any(|e| field(e, "actor") == "auditor")).await;
    app.shutdown.trigger();
    app.task.await.expect("join").expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_changes_payments_admin_reads_and_logins_are_audited_and_paged() {
    let app = common::spawn_app_with(|s| {
        s.identity.passwords.memory_kib = 64;
        s.identity.passwords.iterations = 1;
    })
    .await;
    let admin = app.token("root-audit", Role::Admin).await;
    // An account, two failed logins and a good one.
    let (status, user) = app
        .post_json(
            "/usuarios",
            None,
            json!({"nombre": "Ana", "email": "ana@audit.example", "password": PASSWORD, "rol": "proveedor"}),
        )
        .await;
    assert_eq!(status, 201);
    let user_id = user["id"].as_str().expect("id").to_owned();
    for password in ["wrong one number 1", "wrong one number 2", PASSWORD] {
        app.post_json("/auth/login", None, json!({"email": "ana@audit.example", "password": password}))
            .await;
    }
    // A key created and revoked, a refused payment, an admin read.
    let (status, key) = app
        .post_json(
            "/api-keys",
            Some(&admin),
            json!({"nombre": "svc", "rol": "proveedor", "usuario_id": user_id}),
        )
        .await;
    assert_eq!(status, 201);
    let key_id = key["id"].as_str().expect("key id").to_owned();
    let res = app
        .client
        .delete(format!("{}/api-keys/{key_id}", app.base))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("revoke");
    assert_eq!(res.status().as_u16(), 204);
    let (status, _) = app
        .post_json(
            "/monetizacion/pagar",
            Some(&admin),
            json!({"usuario_id": user_id, "amount_minor": 500, "currency": "EUR", "reference": "pay-1"}),
        )
        .await;
    assert_eq!(status, 409, "nothing is pending yet");

    let everything = |e: &[Value]| {
        ["user_create", "api_key_create", "api_key_revoke", "payment"]
            .iter()
            .all(|a| e.iter().any(|x| field(x, "action") == *a))
            && e.iter().filter(|x| field(x, "action") == "login").count() == 3
    };
    let trail = audit_until(&app, "limit=1000", everything).await;
    let one = |action: &str| trail.iter().find(|e| field(e, "action") == action).expect(action).clone();
    assert_eq!(
        (field(&one("user_create"), "actor"), field(&one("user_create"), "target")),
        ("anonymous", user_id.as_str())
    );
    assert_eq!(field(&one("api_key_create"), "target"), key_id);
    assert_eq!(
        (field(&one("api_key_revoke"), "target"), field(&one("api_key_revoke"), "actor_role")),
        (key_id.as_str(), "admin")
    );
    let payment = one("payment");
    assert_eq!(
        (field(&payment, "outcome"), field(&payment, "reason"), field(&payment, "target")),
        ("error", "insufficient_balance", user_id.as_str())
    );

    // The user shows its attempts, once the materializer has the account (it runs apart from
    // the audit projector, so it may come later).
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let shown: Value = loop {
        let res = app
            .client
            .get(format!("{}/usuarios/{user_id}", app.base))
            .bearer_auth(&admin)
            .send()
            .await
            .expect("user");
        let shown: Value = res.json().await.expect("json");
        if shown["intentos_login"]["total"] == 3 || std::time::Instant::now() > deadline {
            break shown;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(shown["intentos_login"]["total"], 3, "{shown}");
    assert_eq!(shown["intentos_login"]["fallidos"], 2);
    assert!(shown["intentos_login"]["ultimo_at"].as_i64().is_some());
    audit_until(&app, &format!("action=admin_read&target={user_id}"), |e| !e.is_empty()).await;

    // Filters combine, and pages of 2 walk the logins newest first without a gap.
    let logins = audit_until(&app, &format!("action=login&actor={user_id}"), |e| e.len() == 3).await;
    let paged = app.audit_entries(&format!("action=login&actor={user_id}&limit=2")).await;
    assert_eq!(paged, logins);
    let outcomes: Vec<_> = logins.iter().map(|e| field(e, "outcome")).collect();
    assert_eq!(outcomes, ["ok", "denied", "denied"]);
    let denied = audit_until(&app, &format!("action=login&actor={user_id}&outcome=denied"), |e| e.len() == 2).await;
    assert!(denied.iter().all(|e| field(e, "reason") == "bad_credentials"));

    // Bad filters are 400s; every entry decodes as the published schema.
    for bad in [
        "outcome=maybe",
        "resultado=maybe",
        "accion=login&action=login",
        "limit=0",
        "desde=yesterday",
        "cursor=nope",
        "colour=red",
    ] {
        let res = app
            .client
            .get(format!("{}/auditoria?{bad}", app.base))
            .bearer_auth(&admin)
            .send()
            .await
            .expect("bad");
        assert_eq!(res.status().as_u16(), 400, "{bad}");
    }
    for e in &trail {
        let entry: RegistroAuditoria = serde_json::from_value(e.clone()).expect("an entry");
        assert!(!entry.event_id.is_empty() && entry.occurred_at > 0);
        let text = e.to_string();
        assert!(
            !text.contains(PASSWORD) && !text.contains("ana@audit.example"),
            "a secret in {text}"
        );
    }
    assert_eq!(RegistroAuditoria::TOPIC, "alpes.audit");
    app.shutdown.trigger();
    app.task.await.expect("join").expect("clean stop");
}
