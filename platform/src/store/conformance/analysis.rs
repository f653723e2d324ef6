//! The catalog's analyses: the newest analysis of an image stands, whatever order they arrive in,
//! and an event applied twice changes nothing.

use crate::store::catalog::{CatalogEvent, CatalogStore};
use alpes_schemas::{AnalisisCompletado, ModeloAnalisis};

/// An analysis of `image` at `at`, labelled `etiqueta`.
pub fn analyzed(event_id: &str, image: &str, provider: &str, at: i64, etiqueta: &str) -> CatalogEvent {
    CatalogEvent::Analyzed(Box::new(AnalisisCompletado {
        evento_id: event_id.into(),
        ocurrido_at: at,
        actor: "anonymizer".into(),
        imagen_id: image.into(),
        proveedor_id: provider.into(),
        solicitud_id: format!("req-{event_id}"),
        etiqueta: etiqueta.into(),
        confianza: 90,
        modo: "all-text".into(),
        candidatos: 3,
        regiones_encontradas: 2,
        regiones_blanqueadas: 2,
        area_blanqueada: 640,
        lineas_residuales: 0,
        liberada: true,
        motivo: None,
        modelo: ModeloAnalisis {
            nombre: "tesseract".into(),
            version: "5.3.0".into(),
            idioma: "eng".into(),
            datos_sha256: None,
        },
        version_motor: "0.1.0".into(),
        duracion_micros: 1_000,
        solicitud_http_id: None,
    }))
}

/// Part of [`super::catalog`].
pub async fn analyses(store: &dyn CatalogStore) {
    assert_eq!(store.analysis("an-1").await.expect("read"), None, "not analysed yet");
    let newer = analyzed("an-e2", "an-1", "p1", 2_000, "texto_incrustado");
    let older = analyzed("an-e1", "an-1", "p1", 1_000, "sin_texto");
    assert_eq!(store.apply(vec![newer.clone(), older]).await.expect("apply"), 2);
    assert_eq!(store.apply(vec![newer]).await.expect("apply"), 0, "applied once per event id");
    let a = store.analysis("an-1").await.expect("read").expect("analysed");
    assert_eq!((a.image_id.as_str(), a.provider_id.as_str(), a.analyzed_at), ("an-1", "p1", 2_000));
    let body = a.body.value();
    assert_eq!(
        (
            body["etiqueta"].as_str(),
            body["solicitud_id"].as_str(),
            body["analizada_at"].as_i64()
        ),
        (Some("texto_incrustado"), Some("req-an-e2"), Some(2_000)),
        "the newest analysis stands: {body}"
    );
    assert_eq!(body["modelo"]["nombre"].as_str(), Some("tesseract"));
    assert!(body.get("evento_id").is_none() && body.get("actor").is_none(), "{body}");
    store
        .apply(vec![analyzed("an-e3", "an-1", "p1", 3_000, "sin_texto")])
        .await
        .expect("apply");
    let a = store.analysis("an-1").await.expect("read").expect("analysed");
    assert_eq!(
        a.body.value()["etiqueta"].as_str(),
        Some("sin_texto"),
        "a later analysis replaces it"
    );
}
