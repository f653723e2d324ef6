//! `POST /reportes` and `GET /reportes/{id}` over a seeded catalog and real blobs: a provider's
//! CSV of its own images, an admin's PDF of every image (its text extracted with `pdftotext`,
//! its first page rendered with `pdftoppm`, both from Debian's poppler-utils), a study's report,
//! who may ask for and read what, and JSON errors for bad requests.

mod common;

use alpes_domain::report::COLUMNS;
use alpes_platform::auth::Role;
use alpes_platform::store::conformance::{analyzed, anonymized, registered};
use alpes_platform::store::CatalogStore;
use serde_json::{json, Value};
use std::process::Command;
use std::time::{Duration, Instant};

const ADMIN: (&str, Role) = ("admin-1", Role::Admin);
const P1: (&str, Role) = ("p1", Role::Proveedor);
const P2: (&str, Role) = ("p2", Role::Proveedor);
const CONSUMER: (&str, Role) = ("lab-1", Role::Consumidor);

/// a (p1, anonymized, text blanked), b (p1, registered), c (p2, held back for residual text),
/// d (p2, anonymized, not analysed).
async fn seeded() -> common::TestApp {
    let app = common::spawn_app().await;
    let [held_c, held_a] = common::held_back();
    app.catalog
        .apply(vec![
            registered("r1", "a", "p1", 100),
            common::image_a(&app).await,
            analyzed("an-a", "a", "p1", 111, "texto_incrustado"),
            registered("r2", "b", "p1", 200),
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

async fn post(app: &common::TestApp, who: (&str, Role), body: &str) -> (u16, Option<String>, Value) {
    let token = app.jwt.issue(who.0, who.1, Duration::from_secs(60)).expect("token");
    let res = app
        .client
        .post(format!("{}/reportes", app.base))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .expect("post");
    let location = res.headers().get("location").map(|v| v.to_str().expect("text").to_owned());
    (res.status().as_u16(), location, res.json().await.unwrap_or(Value::Null))
}

/// Polls `GET location` as `who` until it is no longer 202 (30 s at most): its content type and
/// bytes.
async fn fetched(app: &common::TestApp, who: (&str, Role), location: &str) -> (String, Vec<u8>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let res = app.get_raw(location, Some(who), &[]).await;
        let status = res.status().as_u16();
        if status != 202 {
            assert_eq!(status, 200, "{location}: {:?}", res.text().await);
            let kind = res.headers()["content-type"].to_str().expect("type").to_owned();
            return (kind, res.bytes().await.expect("bytes").to_vec());
        }
        assert_eq!(res.headers()["retry-after"], "2");
        assert!(Instant::now() < deadline, "{location} is still pending");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn poppler(tool: &str, args: &[&str]) -> Vec<u8> {
    let out = Command::new(tool)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{tool} (Debian's poppler-utils; .ci/run installs it): {e}"));
    assert!(out.status.success(), "{tool}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

#[tokio::test]
async fn a_provider_gets_a_csv_of_its_own_images() {
    let app = seeded().await;
    let (status, location, body) = post(&app, P1, r#"{"formato": "csv"}"#).await;
    assert_eq!(status, 202, "{body}");
    let location = location.expect("Location");
    assert_eq!(location, format!("/reportes/{}", body["id"].as_str().expect("id")));
    assert_eq!(body["alcance"], json!({"proveedor_id": "p1"}), "a provider's scope is its own");
    let (kind, bytes) = fetched(&app, P1, &location).await;
    assert_eq!(kind, "text/csv; charset=utf-8");
    let csv = String::from_utf8(bytes).expect("utf-8");
    let rows: Vec<Vec<&str>> = csv.trim_end().split("\r\n").map(|l| l.split(',').collect()).collect();
    assert_eq!(rows[0], COLUMNS.to_vec());
    assert_eq!(rows.len(), 3, "the header and p1's two images: {csv}");
    let col = |name: &str| COLUMNS.iter().position(|c| *c == name).expect("column");
    let a = rows.iter().find(|r| r[0] == "a").expect("image a");
    assert_eq!(
        [
            col("estado"),
            col("sha256_entrada"),
            col("regiones_rule"),
            col("regiones_ocr"),
            col("etiqueta"),
            col("acciones")
        ]
        .map(|c| a[c]),
        ["anonimizada", "raw-n1", "1", "2", "texto_incrustado", "remove=3"]
    );
    assert_eq!(a[col("sha256_salida")].len(), 64, "the output's checksum");
    let b = rows.iter().find(|r| r[0] == "b").expect("image b");
    assert_eq!((b[col("estado")], b[col("etiqueta")]), ("registrada", ""));

    // The state, on request, says what was made.
    let res = app.get_raw(&location, Some(P1), &[("Accept", "application/json")]).await;
    let state: Value = res.json().await.expect("json");
    assert_eq!(
        (state["estado"].as_str(), state["imagenes"].as_u64()),
        (Some("listo"), Some(2)),
        "{state}"
    );
    assert_eq!(state["bytes"].as_u64(), Some(csv.len() as u64));
}

#[tokio::test]
async fn an_admin_gets_a_pdf_of_every_image_with_a_summary_and_a_chart() {
    let app = seeded().await;
    let (status, location, body) = post(&app, ADMIN, r#"{"formato": "pdf", "alcance": {}}"#).await;
    assert_eq!(status, 202, "{body}");
    let (kind, bytes) = fetched(&app, ADMIN, &location.expect("Location")).await;
    assert_eq!(kind, "application/pdf");
    assert!(bytes.starts_with(b"%PDF-"), "a PDF");
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("report.pdf");
    std::fs::write(&file, &bytes).expect("write");
    let path = file.to_str().expect("path");

    let text = String::from_utf8(poppler("pdftotext", &["-layout", path, "-"])).expect("utf-8");
    for expected in [
        "Alpes - de-identification report",
        "Scope: provider all",
        "Images in scope: 4",
        "Held back for residual burned-in text: 1",
        "Rejected, by reason: texto_residual 1",
        "Regions blanked by source",
        "Images by burned-in text label",
        "page 1 of 2",
        "texto_incrustado (held)",
    ] {
        assert!(text.contains(expected), "{expected:?} not in:\n{text}");
    }
    for image in ["a", "b", "c", "d"] {
        assert!(
            text.lines().any(|l| l.split_whitespace().next() == Some(image)),
            "image {image} has no line:\n{text}"
        );
    }

    // The first page, rendered: ink on it, and the chart's coloured bars.
    let prefix = dir.path().join("page");
    poppler(
        "pdftoppm",
        &["-r", "40", "-f", "1", "-l", "1", "-png", path, prefix.to_str().expect("path")],
    );
    let png = std::fs::read_dir(dir.path())
        .expect("dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "png"))
        .expect("a rendered page");
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(png).expect("open")));
    let mut reader = decoder.read_info().expect("png");
    let mut pixels = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut pixels).expect("frame");
    assert_eq!(info.color_type, png::ColorType::Rgb, "pdftoppm renders RGB");
    let rgb: Vec<&[u8]> = pixels[..info.buffer_size()].chunks(3).collect();
    let ink = rgb.iter().filter(|p| p.iter().all(|v| *v < 128)).count();
    let blue = rgb.iter().filter(|p| p[2] > 150 && p[0] < 100).count();
    assert!(ink * 200 > rgb.len(), "text on the page: {ink} of {}", rgb.len());
    assert!(blue > 20, "the chart's first bar is drawn: {blue} blue pixels");
}

#[tokio::test]
async fn a_study_report_covers_that_study_only() {
    let app = seeded().await;
    let (status, location, _) = post(&app, ADMIN, r#"{"formato": "csv", "alcance": {"estudio_uid": "1.2.3"}}"#).await;
    assert_eq!(status, 202);
    let (_, bytes) = fetched(&app, ADMIN, &location.expect("Location")).await;
    let csv = String::from_utf8(bytes).expect("utf-8");
    let ids: Vec<&str> = csv
        .trim_end()
        .split("\r\n")
        .skip(1)
        .map(|l| l.split(',').next().unwrap_or(""))
        .collect();
    assert_eq!(ids, vec!["a"], "{csv}");
}

#[tokio::test]
async fn reports_are_for_their_requester_and_admins_and_bad_requests_are_typed() {
    let app = seeded().await;
    let (_, location, _) = post(&app, P1, r#"{"formato": "csv"}"#).await;
    let location = location.expect("Location");
    fetched(&app, P1, &location).await;
    assert_eq!(app.get_raw(&location, Some(ADMIN), &[]).await.status(), 200, "an admin");
    for (who, status) in [(Some(P2), 404), (Some(CONSUMER), 403), (None, 401)] {
        let res = app.get_raw(&location, who, &[]).await;
        assert_eq!(res.status().as_u16(), status, "{who:?}");
        let body: Value = res.json().await.expect("a JSON error");
        assert!(body["error"].is_string(), "{body}");
    }
    assert_eq!(app.get("/reportes/no-such-report", Some(ADMIN)).await.0, 404);
    assert_eq!(app.get("/reportes/..%2F..%2Fetc", Some(ADMIN)).await.0, 404);

    for (who, body, status, code) in [
        (CONSUMER, r#"{"formato": "csv"}"#, 403, "forbidden"),
        (P1, r#"{"formato": "csv", "alcance": {"proveedor_id": "p2"}}"#, 403, "forbidden"),
        (P1, r#"{"formato": "docx"}"#, 422, "bad_formato"),
        (
            P1,
            r#"{"formato": "csv", "alcance": {"creada_desde": 5, "creada_hasta": 5}}"#,
            400,
            "bad_range",
        ),
        (P1, r#"{"formato": "csv", "alcance": {"paciente": "x"}}"#, 400, "bad_json"),
        (P1, "not json", 400, "bad_json"),
    ] {
        let (got, _, answer) = post(&app, who, body).await;
        assert_eq!((got, answer["error"].as_str()), (status, Some(code)), "{body}: {answer}");
    }
}
