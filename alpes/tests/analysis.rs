//! The burned-in text safety net end to end, in process: a provider uploads a PNG screen capture
//! with a name and a record number drawn in its corners, a CT without text, and a copy with the
//! net off; the worker analyses each, the materializer stores the analyses, and
//! `GET /imagenes/{id}/analisis` serves them (label, regions blanked, released, the model that
//! `GET /analisis/modelo` describes); the provider's report, in CSV and PDF, lists them. The
//! analysis and the report never hold the words read.

mod common;

use ab_glyph::{Font, FontRef, PxScale, ScaleFont};
use alpes_platform::auth::Role;
use serde_json::Value;
use std::time::{Duration, Instant};

const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
const WORDS: [&str; 2] = ["KOWALSKA ANNA", "MRN 4471902"];

/// A 320×240 grey PNG with a soft gradient from `ground` and `WORDS` drawn white in two corners
/// (another `ground`, another upload: ingest keeps one image per provider and content).
fn png_with_text(ground: u8) -> Vec<u8> {
    let (w, h) = (320usize, 240usize);
    let mut px: Vec<u8> = (0..w * h).map(|i| ground + ((i % w) * 40 / w) as u8).collect();
    let bytes = std::fs::read(FONT).expect("a DejaVu font (fonts-dejavu-core)");
    let font = FontRef::try_from_slice(&bytes).expect("font");
    let scaled = font.as_scaled(PxScale::from(20.0));
    for (n, text) in WORDS.iter().enumerate() {
        let mut caret = 8.0;
        let baseline = if n == 0 { 8.0 + scaled.ascent() } else { h as f32 - 12.0 };
        for c in text.chars() {
            let glyph = font.glyph_id(c).with_scale_and_position(20.0, ab_glyph::point(caret, baseline));
            caret += scaled.h_advance(font.glyph_id(c));
            let Some(outline) = font.outline_glyph(glyph) else { continue };
            let b = outline.px_bounds();
            outline.draw(|gx, gy, coverage| {
                let (x, y) = (b.min.x as usize + gx as usize, b.min.y as usize + gy as usize);
                if x < w && y < h {
                    let old = f32::from(px[y * w + x]);
                    px[y * w + x] = (old * (1.0 - coverage) + 250.0 * coverage).round() as u8;
                }
            });
        }
    }
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w as u32, h as u32);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(png::BitDepth::Eight);
    enc.write_header().expect("header").write_image_data(&px).expect("pixels");
    out
}

async fn upload(app: &common::TestApp, query: &str, bytes: Vec<u8>, media: &str, token: &str) -> String {
    let res = app
        .client
        .post(format!("{}/imagenes{query}", app.base))
        .bearer_auth(token)
        .header("content-type", media)
        .body(bytes)
        .send()
        .await
        .expect("upload");
    assert_eq!(res.status().as_u16(), 202);
    res.json::<Value>().await.expect("json")["id"].as_str().expect("id").to_owned()
}

/// `GET path` until it answers `want` (60 s at most): its JSON body.
async fn get_until(app: &common::TestApp, path: &str, token: &str, want: u16) -> Value {
    app.get_until(path, token, Duration::from_secs(60), |status, _| status == want)
        .await
        .1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_anonymized_image_is_analysed_and_its_analysis_is_served() {
    let app = common::spawn_app().await;
    app.ready().await;
    let provider = app.token("prov-analysis", Role::Proveedor).await;
    let with_text = upload(&app, "", png_with_text(30), "image/png", &provider).await;
    let ct = app.upload_fixture("CT_small.dcm", &provider).await;
    let unchecked = upload(&app, "?ocr=off", png_with_text(40), "image/png", &provider).await;

    let a = get_until(&app, &format!("/imagenes/{with_text}/analisis"), &provider, 200).await;
    assert_eq!(
        (
            a["etiqueta"].as_str(),
            a["liberada"].as_bool(),
            a["modo"].as_str(),
            a["lineas_residuales"].as_i64()
        ),
        (Some("texto_incrustado"), Some(true), Some("all-text"), Some(0)),
        "{a}"
    );
    assert!(
        a["regiones_blanqueadas"].as_i64() >= Some(2) && a["area_blanqueada"].as_i64() > Some(0),
        "{a}"
    );
    assert!(a["confianza"].as_i64().is_some_and(|c| (50..=100).contains(&c)), "{a}");
    let text = a.to_string().to_uppercase();
    for word in WORDS.iter().flat_map(|w| w.split(' ')) {
        assert!(!text.contains(word), "the analysis names {word:?}: {a}");
    }
    let model = get_until(&app, "/analisis/modelo", &provider, 200).await;
    assert_eq!(a["modelo"], model["modelo"], "the analysis names the deployment's model");
    assert_eq!(model["modelo"]["nombre"].as_str(), Some("tesseract"));
    assert!(model["modelo"]["datos_sha256"].as_str().is_some_and(|h| h.len() == 64), "{model}");

    let c = get_until(&app, &format!("/imagenes/{ct}/analisis"), &provider, 200).await;
    assert_eq!(
        (c["etiqueta"].as_str(), c["regiones_blanqueadas"].as_i64(), c["liberada"].as_bool()),
        (Some("sin_texto"), Some(0), Some(true)),
        "{c}"
    );

    // With the net off the image is anonymized and has no analysis.
    let image = get_until(&app, &format!("/imagenes/{unchecked}"), &provider, 200).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut image = image;
    while image["estado"].as_str() != Some("anonimizada") {
        assert!(Instant::now() < deadline, "{image}");
        tokio::time::sleep(Duration::from_millis(100)).await;
        image = get_until(&app, &format!("/imagenes/{unchecked}"), &provider, 200).await;
    }
    let none = get_until(&app, &format!("/imagenes/{unchecked}/analisis"), &provider, 404).await;
    assert_eq!(none["error"].as_str(), Some("not_found"), "{none}");
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("alpes_analyses_total{etiqueta=\"texto_incrustado\"}"),
        "the analyses are counted"
    );
    app.stop().await;
}
