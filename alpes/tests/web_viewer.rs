//! A web viewer opens an anonymized study from Alpes: dwv (npm, the version
//! pinned in `tests/viewer/package.json`) in headless Chromium, configured
//! with nothing but Alpes' DICOMweb root, a Study Instance UID and a
//! consumer's token. The page (`tests/viewer/index.html`) searches the study's
//! instances with QIDO-RS and loads them with WADO-RS, from another origin
//! than Alpes (allowed by `--cors-origin`), as a site's viewer would. The
//! screenshot's image area must show the CT: many grey levels, not a blank.
//!
//! Chromium comes from `ALPES_CHROMIUM` and the page's packages from
//! `npm ci` in `tests/viewer` (`.ci/run` does both). Without them the test
//! is skipped, loudly, except under CI, where it fails, unless `.ci/run`
//! could not install Chromium and said why in `ALPES_CHROMIUM_MISSING`.

mod common;

use alpes_platform::auth::Role;
use axum::extract::{Path as UrlPath, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const PROVIDER: &str = "hospital-viewer";
const CONSUMER: &str = "research-viewer";
/// The viewer's image area (the page's `#layerGroup0`), from the top left corner.
const VIEW: u32 = 512;

fn viewer_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/viewer")
}

/// Chromium, or `None` (after saying why) when the test cannot run here.
fn chromium() -> Option<PathBuf> {
    common::browser::chromium(
        "web_viewer",
        &viewer_dir().join("node_modules/dwv/dist/dwv.min.js"),
        "npm ci --prefix alpes/tests/viewer; ALPES_CHROMIUM=/usr/bin/chromium cargo test -p alpes --test web_viewer",
    )
}

/// Serves the viewer's files (the page, its shims and node_modules) from its own origin.
async fn serve_viewer(listener: tokio::net::TcpListener) {
    async fn file(State(dir): State<PathBuf>, UrlPath(path): UrlPath<String>) -> axum::response::Response {
        if path.split('/').any(|part| part == ".." || part.is_empty()) {
            return StatusCode::NOT_FOUND.into_response();
        }
        let kind = match Path::new(&path).extension().and_then(|e| e.to_str()) {
            Some("html") => "text/html; charset=utf-8",
            Some("js" | "mjs") => "text/javascript",
            Some("json" | "map") => "application/json",
            _ => "application/octet-stream",
        };
        match tokio::fs::read(dir.join(&path)).await {
            Ok(bytes) => ([(header::CONTENT_TYPE, kind)], bytes).into_response(),
            Err(_) => StatusCode::NOT_FOUND.into_response(),
        }
    }
    let app = axum::Router::new()
        .route("/{*path}", axum::routing::get(file))
        .with_state(viewer_dir());
    axum::serve(listener, app).await.expect("viewer server");
}

/// The anonymized study's UID, once a consumer's search finds it (60 s at most).
async fn study_uid(app: &common::TestApp, token: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let res = app
            .client
            .get(format!("{}/studies", app.base))
            .bearer_auth(token)
            .header("accept", "application/dicom+json")
            .send()
            .await
            .expect("QIDO-RS");
        if res.status().as_u16() == 200 {
            let studies: serde_json::Value = res.json().await.expect("json");
            if let Some(uid) = studies[0]["0020000D"]["Value"][0].as_str() {
                return uid.to_owned();
            }
        }
        assert!(Instant::now() < deadline, "the study never showed up in QIDO-RS");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The most one Chromium run may take: virtual time waits for every fetch, so a stalled answer
/// would otherwise hang the test.
const CHROMIUM_LIMIT: Duration = Duration::from_secs(120);

/// Runs headless Chromium on `url` with `args` (killed past [`CHROMIUM_LIMIT`]); its stdout.
fn chromium_run(chromium: &Path, profile: &Path, url: &str, args: &[&str]) -> String {
    let mut cmd = Command::new(chromium);
    cmd.args(["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--window-size={VIEW},{VIEW}"))
        // Virtual time runs only while nothing is fetched: the page gets what it asks for.
        .arg("--virtual-time-budget=30000")
        .args(args)
        .arg(url)
        .env("NO_PROXY", "127.0.0.1,localhost");
    let ran = common::run_with_limit(cmd, CHROMIUM_LIMIT);
    match ran.status {
        None => panic!("chromium ran past {CHROMIUM_LIMIT:?} and was killed"),
        Some(status) => assert!(status.success(), "chromium failed ({status}): {}", ran.stderr),
    }
    ran.stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dwv_in_headless_chromium_shows_an_anonymized_ct_from_alpes() {
    let Some(chromium) = chromium() else {
        return;
    };
    let viewer = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let origin = format!("http://{}", viewer.local_addr().expect("addr"));
    tokio::spawn(serve_viewer(viewer));
    let cors = origin.clone();
    let app = common::spawn_app_with(move |s| s.limits.cors_origins = vec![cors]).await;
    let provider = app.token(PROVIDER, Role::Proveedor).await;
    let consumer = app.consumer_token(CONSUMER).await;
    app.upload_fixture("CT_small.dcm", &provider).await;
    let study = study_uid(&app, &consumer).await;

    let url = format!("{origin}/index.html?root={}&study={study}&token={consumer}", app.base);
    let profile = tempfile::tempdir().expect("tmp");
    let shot = profile.path().join("shot.png");
    let (dom, png_bytes) = tokio::task::spawn_blocking({
        let (chromium, profile_dir, shot) = (chromium.clone(), profile.path().join("p"), shot.clone());
        move || {
            let dom = chromium_run(&chromium, &profile_dir, &url, &["--dump-dom"]);
            chromium_run(&chromium, &profile_dir, &url, &[&format!("--screenshot={}", shot.display())]);
            (dom, std::fs::read(&shot).expect("the screenshot"))
        }
    })
    .await
    .expect("join chromium");
    app.shutdown.trigger();
    app.task.await.expect("join").expect("clean stop");

    let title = dom
        .split("<title>")
        .nth(1)
        .and_then(|t| t.split("</title>").next())
        .unwrap_or_default();
    assert_eq!(title, "loaded 1", "the page's title says how the viewer did");
    let (levels, lit) = common::browser::image_area(&png_bytes, VIEW);
    assert!(
        levels >= 32 && lit >= 0.05,
        "the image area looks blank: {levels} grey levels, {:.1} % lit",
        lit * 100.0
    );
}
