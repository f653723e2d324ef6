//! The money routes over a real SQLite ledger: who may read what, the
//! balance fields, paging and every bad request.

mod common;

use alpes_platform::auth::Role;
use alpes_platform::store::conformance::{payment, usage};
use alpes_platform::store::LedgerStore;

async fn spawn_app() -> common::TestApp {
    let app = common::spawn_app().await;
    let mut cop = usage("u-cop", "p1", 7);
    cop.currency = "COP".into();
    let entries = vec![
        usage("u1", "p1", 100),
        usage("u2", "p1", 50),
        payment("pay1", "p1", 30, "ref-1"),
        payment("pay2", "p1", 500, "ref-2"),
        cop,
        usage("u3", "p2", 9),
    ];
    app.ledger.apply(entries).await.expect("apply");
    app
}

#[tokio::test]
async fn a_provider_reads_its_own_balance_in_minor_units() {
    let app = spawn_app().await;
    let (status, body) = app.get("/monetizacion/saldo/p1", Some(("p1", Role::Proveedor))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["saldo_pendiente"], 120);
    assert_eq!(
        (body["accrued"].as_i64(), body["paid"].as_i64(), body["uses"].as_i64()),
        (Some(150), Some(30), Some(2))
    );
    assert_eq!(body["currency"], "EUR");
    assert_eq!(body["as_of"], 2000);
    assert_eq!(body["balances"].as_array().map(Vec::len), Some(2), "EUR and COP");
    let (_, cop) = app.get("/monetizacion/saldo/p1?currency=COP", Some(("p1", Role::Proveedor))).await;
    assert_eq!(cop["saldo_pendiente"], 7);
    let (status, nobody) = app.get("/monetizacion/saldo/p9", Some(("p9", Role::Proveedor))).await;
    assert_eq!(status, 200);
    assert_eq!((nobody["saldo_pendiente"].as_i64(), nobody["as_of"].is_null()), (Some(0), true));
}

#[tokio::test]
async fn money_answers_the_vocabulary_and_the_deprecated_names_alike() {
    let app = spawn_app().await;
    let p1 = Some(("p1", Role::Proveedor));
    let (status, body) = app.get("/monetizacion/saldo/p1?moneda=COP", p1).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!((body["moneda"].as_str(), body["saldo_pendiente"].as_i64()), (Some("COP"), Some(7)));
    let (_, eur) = app.get("/monetizacion/saldo/p1", p1).await;
    for (new, old) in [
        ("moneda", "currency"),
        ("devengado_minor", "accrued"),
        ("pagado_minor", "paid"),
        ("usos", "uses"),
        ("actualizado_at", "as_of"),
        ("saldos", "balances"),
    ] {
        assert_eq!(eur[new], eur[old], "{new} and {old}");
        assert!(!eur[new].is_null(), "{new}");
    }
    let saldo = &eur["saldos"][0];
    assert_eq!(
        (saldo["usuario_id"].as_str(), saldo["pendiente_minor"].as_i64()),
        (Some("p1"), saldo["pending_minor"].as_i64())
    );
    let (status, both) = app.get("/monetizacion/saldo/p1?moneda=EUR&currency=COP", p1).await;
    assert_eq!((status, both["error"].as_str()), (400, Some("bad_query")), "one name, not both");

    let (_, page) = app.get("/monetizacion/movimientos/p1?limit=10", p1).await;
    let kinds: Vec<(&str, &str)> = page["movimientos"]
        .as_array()
        .expect("movimientos")
        .iter()
        .map(|m| (m["tipo"].as_str().expect("tipo"), m["kind"].as_str().expect("kind")))
        .collect();
    assert!(
        kinds.contains(&("uso", "usage")) && kinds.contains(&("pago", "payment")),
        "{kinds:?}"
    );
    let first = &page["movimientos"][0];
    for (new, old) in [
        ("evento_id", "event_id"),
        ("usuario_id", "user_id"),
        ("importe_minor", "amount_minor"),
        ("moneda", "currency"),
        ("ocurrido_at", "occurred_at"),
        ("imagen_id", "image_id"),
        ("contraparte", "counterparty"),
    ] {
        assert_eq!(first[new], first[old], "{new} and {old}");
    }
}

#[tokio::test]
async fn only_the_user_itself_or_an_admin_reads_money() {
    let app = spawn_app().await;
    for path in ["/monetizacion/saldo/p1", "/monetizacion/movimientos/p1"] {
        assert_eq!(app.get(path, Some(("p1", Role::Proveedor))).await.0, 200, "{path}");
        assert_eq!(app.get(path, Some(("admin-1", Role::Admin))).await.0, 200, "{path}");
        let (status, body) = app.get(path, Some(("p2", Role::Proveedor))).await;
        assert_eq!((status, body["error"].as_str()), (403, Some("forbidden")), "{path}");
        assert_eq!(app.get(path, Some(("c1", Role::Consumidor))).await.0, 403, "{path}: another user's");
        let (status, body) = app.get(path, None).await;
        assert_eq!((status, body["error"].as_str()), (401, Some("unauthorized")), "{path}");
    }
}

#[tokio::test]
async fn the_ledger_pages_newest_first_with_an_opaque_cursor() {
    let app = spawn_app().await;
    let who = Some(("p1", Role::Proveedor));
    let mut seen = Vec::new();
    let mut path = "/monetizacion/movimientos/p1?limit=2".to_owned();
    loop {
        let (status, body) = app.get(&path, who).await;
        assert_eq!(status, 200, "{body}");
        let page = body["movimientos"].as_array().expect("movimientos");
        assert!(page.len() <= 2);
        seen.extend(page.iter().map(|m| {
            (
                m["event_id"].as_str().unwrap_or("").to_owned(),
                m["kind"].as_str().unwrap_or("").to_owned(),
            )
        }));
        match body["next_cursor"].as_str() {
            Some(c) => path = format!("/monetizacion/movimientos/p1?limit=2&cursor={c}"),
            None => break,
        }
    }
    let expect = [
        ("u-cop", "usage"),
        ("pay2", "refused_payment"),
        ("pay1", "payment"),
        ("u2", "usage"),
        ("u1", "usage"),
    ];
    assert_eq!(seen, expect.map(|(a, b)| (a.to_owned(), b.to_owned())));
}

#[tokio::test]
async fn bad_paging_and_currency_get_a_json_400() {
    let app = spawn_app().await;
    let who = Some(("p1", Role::Proveedor));
    for (path, code) in [
        ("/monetizacion/movimientos/p1?limit=0", "bad_limit"),
        ("/monetizacion/movimientos/p1?limit=1001", "bad_limit"),
        ("/monetizacion/movimientos/p1?limit=ten", "bad_query"),
        ("/monetizacion/movimientos/p1?cursor=forged", "bad_cursor"),
        ("/monetizacion/movimientos/p1?colour=red", "bad_query"),
        ("/monetizacion/saldo/p1?currency=euro", "bad_currency"),
    ] {
        let (status, body) = app.get(path, who).await;
        assert_eq!((status, body["error"].as_str()), (400, Some(code)), "{path}: {body}");
    }
}
