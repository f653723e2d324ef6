//! `POST /monetizacion/pagar`: who may pay, what is refused at once (with a
//! `PagoRechazado`), and the `PagoProcesado` of an accepted payment, whose id
//! a retry with the same reference keeps.

mod common;

use alpes_platform::auth::Role;
use alpes_platform::store::conformance::{payment, usage};
use alpes_platform::store::LedgerStore;
use alpes_schemas::{PagoProcesado, PagoRechazado};
use serde_json::{json, Value};
use std::time::Duration;

async fn pay(app: &common::TestApp, role: Role, body: Value) -> (u16, Value) {
    app.json_as(
        reqwest::Method::POST,
        "/monetizacion/pagar",
        (&format!("finance-{}", role.as_str()), role),
        &body,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_within_the_balance_is_produced_and_one_above_it_is_refused_with_an_event() {
    let app = common::spawn_app(1 << 20).await;
    app.ledger.apply(vec![usage("u1", "hospital-7", 500)]).await.expect("seed");
    let refused_events = app.consumer::<PagoRechazado>();
    let paid_events = app.consumer::<PagoProcesado>();

    let body = json!({"usuario_id": "hospital-7", "amount_minor": 600, "currency": "EUR", "reference": "payout-1"});
    let (status, answer) = pay(&app, Role::Admin, body).await;
    assert_eq!((status, answer["error"].as_str()), (409, Some("insufficient_balance")), "{answer}");
    let refused = app.events::<PagoRechazado>(&refused_events, 1, Duration::from_secs(60)).await;
    assert_eq!(refused.len(), 1);
    let r = &refused[0].1;
    assert_eq!(
        (r.reason.as_str(), r.pending_minor, r.payment_event_id.as_deref()),
        ("insufficient_balance", Some(500), None)
    );

    let body = json!({"usuario_id": "hospital-7", "amount_minor": 300, "currency": "EUR", "reference": "payout-2"});
    let (status, first) = pay(&app, Role::Admin, body.clone()).await;
    assert_eq!(status, 202, "{first}");
    let (status, retry) = pay(&app, Role::Admin, body).await;
    assert_eq!(status, 202);
    assert_eq!(
        first["event_id"], retry["event_id"],
        "a retry keeps the event id, so billing applies it once"
    );
    // The same payment in the vocabulary's names is the same request: same event id.
    let spanish = json!({"usuario_id": "hospital-7", "importe_minor": 300, "moneda": "EUR", "referencia": "payout-2"});
    let (status, same) = pay(&app, Role::Admin, spanish).await;
    assert_eq!(status, 202, "{same}");
    assert_eq!(same["evento_id"], first["event_id"]);
    assert_eq!(same["evento_id"], same["event_id"], "the deprecated name carries the same id");
    let paid = app.events::<PagoProcesado>(&paid_events, 3, Duration::from_secs(60)).await;
    assert_eq!(paid.len(), 3);
    assert_eq!(
        (paid[0].0.as_str(), paid[0].1.amount_minor, paid[0].1.reference.as_str()),
        ("hospital-7", 300, "payout-2")
    );
    assert_eq!(paid[0].1.event_id, paid[1].1.event_id);
    assert_eq!(paid[1].1.event_id, paid[2].1.event_id);

    // Once billing has applied it, the reference is taken: the same request is refused at once.
    app.ledger
        .apply(vec![payment(&paid[0].1.event_id, "hospital-7", 300, "payout-2")])
        .await
        .expect("billing applies the payment");
    let body = json!({"usuario_id": "hospital-7", "amount_minor": 100, "currency": "EUR", "reference": "payout-2"});
    let (status, answer) = pay(&app, Role::Admin, body).await;
    assert_eq!((status, answer["error"].as_str()), (409, Some("repeated_reference")), "{answer}");
    let refused = app.events::<PagoRechazado>(&refused_events, 1, Duration::from_secs(60)).await;
    assert_eq!(refused.len(), 1);
    assert_eq!(
        (
            refused[0].1.reason.as_str(),
            refused[0].1.reference.as_str(),
            refused[0].1.amount_minor
        ),
        ("repeated_reference", "payout-2", 100)
    );
    assert!(
        app.events::<PagoProcesado>(&paid_events, 1, Duration::from_secs(2))
            .await
            .is_empty(),
        "nothing is paid"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_an_admin_pays_and_a_bad_payment_gets_a_typed_error() {
    let app = common::spawn_app(1 << 20).await;
    let ok = json!({"usuario_id": "p", "amount_minor": 1, "currency": "EUR", "reference": "r"});
    assert_eq!(pay(&app, Role::Proveedor, ok.clone()).await.0, 403);
    assert_eq!(pay(&app, Role::Consumidor, ok).await.0, 403);
    for (body, status, code) in [
        (
            json!({"usuario_id": "p", "amount_minor": 0, "currency": "EUR", "reference": "r"}),
            422,
            "invalid_amount",
        ),
        (
            json!({"usuario_id": "p", "amount_minor": 5, "currency": "euros", "reference": "r"}),
            422,
            "bad_currency",
        ),
        (
            json!({"usuario_id": "p", "amount_minor": 5.5, "currency": "EUR", "reference": "r"}),
            400,
            "bad_json",
        ),
        (json!({"usuario_id": "p"}), 400, "bad_json"),
    ] {
        let (got, answer) = pay(&app, Role::Admin, body.clone()).await;
        assert_eq!((got, answer["error"].as_str()), (status, Some(code)), "{body}");
    }
}
