//! The consumer side of the money model on the query routes: an unapproved
//! consumer downloads nothing, an approved one downloads within its credit
//! (402 past it, a repeat in the window free), and reads its own charges.

mod common;

use alpes_domain::ledger::{charge_of, LedgerStore};
use alpes_platform::auth::Role;
use alpes_platform::store::conformance::{anonymized, registered, usage, used};
use alpes_platform::store::{CatalogEvent, CatalogStore};
use alpes_schemas::EventoUsoDatos;
use std::time::Duration;

/// Image a (CT, 250, with real bytes) and image d (MR, 100, no bytes), both anonymized.
async fn seeded() -> common::TestApp {
    let app = common::spawn_app().await;
    let a = common::image_a(&app).await;
    let d = anonymized("n4", "d", "p2", 410, ("9.9", "9.9.1", "9.9.1.1", "MR", "PSEUDO-2", "20220202"));
    app.catalog
        .apply(vec![registered("r1", "a", "p1", 100), a, registered("r4", "d", "p2", 400), d])
        .await
        .expect("seed");
    app
}

#[tokio::test]
async fn an_unapproved_consumer_downloads_nothing_and_is_told_why() {
    let app = seeded().await;
    let stranger = Some(("lab-9", Role::Consumidor));
    for path in ["/imagenes/a/anonimizada", "/studies/1.2.3"] {
        let res = app
            .get_raw(path, stranger, &[("accept", "multipart/related; type=\"application/dicom\"")])
            .await;
        assert_eq!(res.status().as_u16(), 403, "{path}");
        let body: serde_json::Value = res.json().await.expect("json");
        assert_eq!(body["error"], "consumer_not_verified", "{path}");
    }
    let mut withdrawn = common::approved("lab-8", 1000);
    withdrawn.verified = false;
    app.ledger.set_terms(withdrawn).await.expect("terms");
    let (status, body) = app.get("/imagenes/a/anonimizada", Some(("lab-8", Role::Consumidor))).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("consumer_not_verified")),
        "approval withdrawn"
    );
    assert_eq!(
        app.get_raw("/imagenes/a/anonimizada", Some(("admin-1", Role::Admin)), &[])
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn an_approved_consumer_downloads_within_its_credit_and_a_repeat_in_the_window_is_free() {
    let app = seeded().await;
    let usage_events = app.consumer::<EventoUsoDatos>();
    app.ledger.set_terms(common::approved("lab-3", 300)).await.expect("approve");
    let lab3 = Some(("lab-3", Role::Consumidor));
    assert_eq!(app.get_raw("/imagenes/a/anonimizada", lab3, &[]).await.status(), 200, "250 of 300");

    // Billing applies the download: the provider's credit and the consumer's charge.
    let used = app.events::<EventoUsoDatos>(&usage_events, 1, Duration::from_secs(30)).await;
    let mut credit = usage(used[0].dedupe_key.as_deref().expect("charge key"), "p1", 250);
    credit.counterparty = Some("lab-3".into());
    app.ledger.apply(vec![credit.clone(), charge_of(&credit)]).await.expect("bill");

    assert_eq!(
        app.get_raw("/imagenes/a/anonimizada", lab3, &[]).await.status(),
        200,
        "paid already in this window"
    );
    let (status, body) = app.get("/imagenes/d/anonimizada", lab3).await;
    assert_eq!((status, body["error"].as_str()), (402, Some("insufficient_credit")), "{body}");
    assert!(body["message"].as_str().expect("message").contains("50 are left"), "{body}");

    let (status, saldo) = app.get("/monetizacion/saldo/lab-3", lab3).await;
    assert_eq!(status, 200, "{saldo}");
    assert_eq!((saldo["cargado_minor"].as_i64(), saldo["cargos"].as_i64()), (Some(250), Some(1)));
    let credito = &saldo["credito"];
    assert_eq!(
        (
            credito["verificado"].as_bool(),
            credito["limite_credito_minor"].as_i64(),
            credito["disponible_minor"].as_i64()
        ),
        (Some(true), Some(300), Some(50))
    );
    let (status, page) = app.get("/monetizacion/movimientos/lab-3", lab3).await;
    assert_eq!(status, 200);
    let moves = page["movimientos"].as_array().expect("movimientos");
    assert_eq!(moves.len(), 1);
    assert_eq!(
        (moves[0]["tipo"].as_str(), moves[0]["contraparte"].as_str()),
        (Some("cargo"), Some("p1"))
    );
    assert_eq!(app.get("/monetizacion/saldo/lab-1", lab3).await.0, 403, "another consumer's money");
}

#[tokio::test]
async fn a_consumer_past_a_daily_limit_waits_for_the_next_utc_day() {
    let app = seeded().await;
    let now = alpes_schemas::now_millis();
    let (yesterday, today) = (alpes_domain::ledger::day_start(now) - 1, now - 1);
    // Two retrievals today (90 bytes each) and one yesterday, as the materializer records them.
    app.catalog
        .apply(vec![
            used("t1", "a", "lab-4", "p1", today),
            used("t2", "a", "lab-4", "p1", today),
            used("y1", "a", "lab-4", "p1", yesterday),
        ])
        .await
        .expect("usage");
    let lab4 = Some(("lab-4", Role::Consumidor));
    let mut terms = common::approved("lab-4", 1_000_000);
    terms.daily_downloads = Some(3);
    app.ledger.set_terms(terms.clone()).await.expect("terms");
    assert_eq!(
        app.get_raw("/imagenes/a/anonimizada", lab4, &[]).await.status(),
        200,
        "the third today"
    );

    terms.daily_downloads = Some(2);
    app.ledger.set_terms(terms.clone()).await.expect("terms");
    let res = app.get_raw("/imagenes/a/anonimizada", lab4, &[]).await;
    assert_eq!(res.status().as_u16(), 429);
    let wait: u64 = res.headers()["retry-after"].to_str().expect("ascii").parse().expect("seconds");
    assert!((1..=86_401).contains(&wait), "until the next UTC day: {wait}");
    let body: serde_json::Value = res.json().await.expect("json");
    assert_eq!(body["error"], "daily_limit");
    assert!(body["message"].as_str().expect("message").contains("2 retrievals a day"), "{body}");

    (terms.daily_downloads, terms.daily_bytes) = (None, Some(200));
    app.ledger.set_terms(terms).await.expect("terms");
    let (status, body) = app.get("/imagenes/a/anonimizada", lab4).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (429, Some("daily_limit")),
        "180 bytes today and the image's on top"
    );
    assert_eq!(
        app.get_raw("/imagenes/a/anonimizada", lab4, &[("range", "bytes=0-19")])
            .await
            .status(),
        206,
        "20 bytes more fit"
    );
    let (_, saldo) = app.get("/monetizacion/saldo/lab-4", lab4).await;
    assert_eq!(
        (saldo["credito"]["bytes_dia"].as_i64(), saldo["credito"]["descargas_dia"].as_i64()),
        (Some(200), None)
    );
}

#[tokio::test]
async fn an_admin_sees_the_consumer_provider_pairs_by_volume_with_their_organizations() {
    let app = seeded().await;
    let now = alpes_schemas::now_millis();
    let bill = |key: &str, consumer: &str, provider: &str, amount: i64, at: i64| {
        let mut credit = usage(key, provider, amount);
        (credit.counterparty, credit.occurred_at) = (Some(consumer.into()), at);
        vec![credit.clone(), charge_of(&credit)]
    };
    let entries = [
        bill("s1", "shell-1", "p1", 250, now - 1000),
        bill("s2", "shell-1", "p1", 250, now - 900),
        bill("s3", "lab-1", "p1", 100, now - 800),
        bill("s4", "lab-1", "p2", 100, now - 40 * 86_400_000),
    ]
    .concat();
    app.ledger.apply(entries).await.expect("bill");
    let org = |id: &str, role: &str, organization: &str| {
        CatalogEvent::User(alpes_schemas::UsuarioRegistrado {
            http_request_id: None,
            event_id: format!("reg-{id}"),
            occurred_at: 1,
            actor: id.into(),
            user_id: id.into(),
            role: role.into(),
            organization: Some(organization.into()),
        })
    };
    app.catalog
        .apply(vec![
            org("shell-1", "consumidor", "Hospital Uno"),
            org("p1", "proveedor", "Hospital Uno"),
        ])
        .await
        .expect("users");

    let admin = Some(("admin-1", Role::Admin));
    let (status, body) = app.get("/monetizacion/pares", admin).await;
    assert_eq!(status, 200, "{body}");
    let pares = body["pares"].as_array().expect("pares");
    assert_eq!(pares.len(), 2, "the last 30 days by default: {body}");
    let first = &pares[0];
    assert_eq!(
        (
            first["consumidor_id"].as_str(),
            first["proveedor_id"].as_str(),
            first["cargos"].as_i64(),
            first["importe_minor"].as_i64()
        ),
        (Some("shell-1"), Some("p1"), Some(2), Some(500))
    );
    assert_eq!(
        first["consumidor_organizacion"], first["proveedor_organizacion"],
        "the same organization on both sides"
    );
    assert_eq!(pares[1]["consumidor_id"], "lab-1");

    let since = now - 41 * 86_400_000;
    let (_, wider) = app.get(&format!("/monetizacion/pares?desde={since}&limit=3"), admin).await;
    assert_eq!(wider["pares"].as_array().map(Vec::len), Some(3), "{wider}");
    for bad in ["?desde=10&hasta=10", "?desde=0&hasta=31708800001", "?limit=0"] {
        let (status, body) = app.get(&format!("/monetizacion/pares{bad}"), admin).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    assert_eq!(app.get("/monetizacion/pares", Some(("p1", Role::Proveedor))).await.0, 403);
    assert_eq!(app.get("/monetizacion/pares", Some(("lab-1", Role::Consumidor))).await.0, 403);
}
