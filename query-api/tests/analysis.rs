//! `GET /imagenes/{id}/analisis` and `GET /analisis/modelo` over a seeded catalog: the newest
//! analysis of an image, seen by whoever may see the image, 404 (JSON) for one not analysed or
//! not visible, an ETag, and the model of the deployment's engine.

mod common;

use alpes_platform::auth::Role;
use alpes_platform::store::conformance::{analyzed, anonymized, registered};
use alpes_platform::store::CatalogStore;

const ADMIN: Option<(&str, Role)> = Some(("admin-1", Role::Admin));
const CONSUMER: Option<(&str, Role)> = Some(("lab-1", Role::Consumidor));
const P1: Option<(&str, Role)> = Some(("p1", Role::Proveedor));
const P2: Option<(&str, Role)> = Some(("p2", Role::Proveedor));

/// a (p1, anonymized, text found and blanked), c (p2, held back for residual text), d (p2,
/// anonymized, never analysed).
async fn seeded() -> common::TestApp {
    let app = common::spawn_app().await;
    let [held_c, held_a] = common::held_back();
    app.catalog
        .apply(vec![
            registered("r1", "a", "p1", 100),
            common::image_a(&app).await,
            analyzed("an-a0", "a", "p1", 105, "sin_texto"),
            analyzed("an-a1", "a", "p1", 111, "texto_incrustado"),
            registered("r3", "c", "p2", 300),
            held_c,
            held_a,
            registered("r4", "d", "p2", 400),
            anonymized("n4", "d", "p2", 410, ("9.9", "9.9.1", "9.9.1.1", "MR", "PSEUDO-2", "20220202")),
        ])
        .await
        .expect("seed");
    app
}

#[tokio::test]
async fn an_image_analysis_is_served_to_whoever_may_see_the_image() {
    let app = seeded().await;
    let (status, body) = app.get("/imagenes/a/analisis", ADMIN).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["imagen_id"].as_str(), body["etiqueta"].as_str(), body["analizada_at"].as_i64()),
        (Some("a"), Some("texto_incrustado"), Some(111)),
        "the newest analysis: {body}"
    );
    assert_eq!(
        (body["liberada"].as_bool(), body["regiones_blanqueadas"].as_i64()),
        (Some(true), Some(2))
    );
    assert_eq!(body["modelo"]["nombre"].as_str(), Some("tesseract"));
    for key in [
        "confianza",
        "modo",
        "candidatos",
        "regiones_encontradas",
        "area_blanqueada",
        "lineas_residuales",
        "duracion_micros",
    ] {
        assert!(body.get(key).is_some(), "{key} in {body}");
    }
    assert_eq!(app.get("/imagenes/a/analisis", P1).await.0, 200, "its provider");
    assert_eq!(
        app.get("/imagenes/a/analisis", CONSUMER).await.0,
        200,
        "a consumer, for an anonymized image"
    );

    // Held back: its provider and an admin see why; a consumer does not see the image at all.
    let (status, body) = app.get("/imagenes/c/analisis", P2).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (
            body["liberada"].as_bool(),
            body["motivo"].as_str(),
            body["lineas_residuales"].as_i64()
        ),
        (Some(false), Some("texto_residual"), Some(1))
    );
    for (path, who) in [
        ("/imagenes/c/analisis", CONSUMER),
        ("/imagenes/a/analisis", P2),
        ("/imagenes/d/analisis", ADMIN),
        ("/imagenes/nope/analisis", ADMIN),
    ] {
        let (status, body) = app.get(path, who).await;
        assert_eq!((status, body["error"].as_str()), (404, Some("not_found")), "{path} {who:?}: {body}");
    }
    assert_eq!(app.get("/imagenes/a/analisis", None).await.0, 401);
}

#[tokio::test]
async fn an_analysis_carries_an_etag() {
    let app = seeded().await;
    let first = app.get_raw("/imagenes/a/analisis", ADMIN, &[]).await;
    let etag = first.headers()["etag"].to_str().expect("etag").to_owned();
    let again = app.get_raw("/imagenes/a/analisis", ADMIN, &[("If-None-Match", &etag)]).await;
    assert_eq!(again.status(), 304);
}

#[tokio::test]
async fn the_model_names_the_engine_its_modes_and_labels() {
    let app = seeded().await;
    let (status, body) = app.get("/analisis/modelo", CONSUMER).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, serde_json::to_value(common::analysis_model()).expect("json"));
    assert_eq!(body["modo_por_defecto"].as_str(), Some("all-text"));
    assert_eq!(app.get("/analisis/modelo", None).await.0, 401);
}
