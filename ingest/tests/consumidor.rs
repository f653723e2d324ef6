//! `PUT /monetizacion/consumidores/{usuario_id}`: only an admin approves a
//! consumer and sets its credit; the account must exist and be a consumer's,
//! and the terms land in the ledger store the downloads read.

mod common;

use alpes_platform::auth::Role;
use alpes_platform::store::LedgerStore;
use serde_json::{json, Value};

async fn put(app: &common::TestApp, id: &str, role: Role, body: Value) -> (u16, Value) {
    let path = format!("/monetizacion/consumidores/{id}");
    app.json_as(reqwest::Method::PUT, &path, (&format!("{}-1", role.as_str()), role), &body)
        .await
}

async fn register(app: &common::TestApp, email: &str, rol: &str) -> String {
    let body = json!({"nombre": "Lab", "email": email, "password": "Consumer-Terms-Password-1", "rol": rol});
    let res = app
        .client
        .post(format!("{}/usuarios", app.base))
        .json(&body)
        .send()
        .await
        .expect("register");
    assert_eq!(res.status().as_u16(), 201);
    res.json::<Value>().await.expect("json")["id"].as_str().expect("id").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_approves_a_consumer_with_a_credit_limit_and_nobody_else_can() {
    let app = common::spawn_app(1 << 20).await;
    let consumer = register(&app, "lab@terms.test", "consumidor").await;
    let provider = register(&app, "hospital@terms.test", "proveedor").await;
    assert_eq!(
        app.ledger.terms(&consumer).await.expect("terms"),
        None,
        "a new consumer is not approved"
    );

    let terms = json!({"verificado": true, "limite_credito_minor": 5000, "moneda": "EUR", "descargas_dia": 40});
    let (status, body) = put(&app, &consumer, Role::Admin, terms.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!((body["descargas_dia"].as_i64(), body["bytes_dia"].as_i64()), (Some(40), None));
    assert_eq!(
        (
            body["verificado"].as_bool(),
            body["limite_credito_minor"].as_i64(),
            body["actualizado_por"].as_str()
        ),
        (Some(true), Some(5000), Some("admin-1"))
    );
    let stored = app.ledger.terms(&consumer).await.expect("terms").expect("set");
    assert_eq!(
        (stored.verified, stored.credit_limit_minor, stored.currency.as_str()),
        (true, 5000, "EUR")
    );

    for role in [Role::Consumidor, Role::Proveedor] {
        let (status, body) = put(&app, &consumer, role, terms.clone()).await;
        assert_eq!((status, body["error"].as_str()), (403, Some("forbidden")), "{role:?}");
    }
    let (status, body) = put(&app, &provider, Role::Admin, terms.clone()).await;
    assert_eq!((status, body["error"].as_str()), (409, Some("not_a_consumer")));
    let (status, body) = put(&app, "nobody", Role::Admin, terms).await;
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")));
    for (bad, code) in [
        (
            json!({"verificado": true, "limite_credito_minor": -1, "moneda": "EUR"}),
            "invalid_amount",
        ),
        (
            json!({"verificado": true, "limite_credito_minor": 1, "moneda": "euro"}),
            "bad_currency",
        ),
    ] {
        let (status, body) = put(&app, &consumer, Role::Admin, bad).await;
        assert_eq!((status, body["error"].as_str()), (422, Some(code)));
    }
    let (status, body) = put(&app, &consumer, Role::Admin, json!({"verificado": true})).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("bad_json")));

    let (status, _) = put(
        &app,
        &consumer,
        Role::Admin,
        json!({"verificado": false, "limite_credito_minor": 0, "moneda": "EUR"}),
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        !app.ledger.terms(&consumer).await.expect("terms").expect("set").verified,
        "the approval is withdrawn"
    );
}
