//! The web console: the app built from `console/web` (TypeScript, Preact, Vite) into
//! `console/dist`, which is committed and embedded in the binary by `build.rs`, so `cargo build`
//! needs no Node and the binary serves the console with nothing beside it.
//!
//! - `GET /`: the app's page, `Cache-Control: no-cache` (it names the current assets).
//! - `GET /assets/{file}`: its scripts, styles, worker and WebAssembly. Their names carry a hash of
//!   their content, so they are cached for a year (`immutable`); an unknown name is 404
//!   `not_found`, as JSON.
//!
//! Scripts, styles, the page and WebAssembly are gzipped once, at build time, and sent so to a
//! client that takes gzip (`Vary: Accept-Encoding`): the viewer's 3.3 MB script is under 1 MB.
//!
//! Both answer with [`CSP`], the platform's policy loosened only as far as the app needs: its
//! own scripts, styles, images and workers, requests to this origin, `blob:` images (thumbnails
//! fetched with the token, the viewer's tool cursors), the `data:` favicon, and
//! `'wasm-unsafe-eval'`: the DICOM viewer decodes compressed transfer syntaxes (JPEG 2000,
//! JPEG-LS, JPEG, HTJ2K, JPEG XL) with WebAssembly. No `'unsafe-eval'`, no inline script or style.
//! Every other route keeps `default-src 'none'` ([`alpes_platform::hardening`]). The app routes
//! by the URL's fragment (`/#/upload`), so no other path is the console's.

use alpes_platform::http::ApiError;
use alpes_platform::limits::Limits;
use alpes_platform::metrics::Metrics;
use alpes_platform::openapi::{content, Op};
use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::sync::Arc;

mod files {
    use super::Built;
    include!(concat!(env!("OUT_DIR"), "/files.rs"));
}

/// The console's Content-Security-Policy.
pub const CSP: &str = "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; \
                       img-src 'self' data: blob:; connect-src 'self'; font-src 'self'; worker-src 'self'; \
                       base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The OpenAPI tag of the console's routes.
const TAG: &str = "console";

/// A built file (`build.rs` makes the table of them): its path under `dist/`, its bytes, and
/// their gzip when worth it.
struct Built {
    path: &'static str,
    bytes: &'static [u8],
    gzip: Option<&'static [u8]>,
}

/// A built file, by its path under `dist/`.
fn file(path: &str) -> Option<&'static Built> {
    files::FILES.iter().find(|f| f.path == path)
}

/// The paths of the built files under `assets/` (for tests that fetch them).
pub fn asset_paths() -> impl Iterator<Item = &'static str> {
    files::FILES.iter().filter_map(|f| f.path.strip_prefix("assets/"))
}

/// Whether the request takes gzip (`Accept-Encoding`, without `gzip;q=0`).
fn takes_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or_default();
            let refused = parts.any(|p| {
                p.replace(' ', "")
                    .strip_prefix("q=")
                    .is_some_and(|q| q.parse::<f32>().is_ok_and(|q| q == 0.0))
            });
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
}

/// The media type of a built file, by its extension.
fn media_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json" | "map") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("woff2") => "font/woff2",
        Some("wasm") => "application/wasm",
        _ => "application/octet-stream",
    }
}

/// A built file's answer: gzipped when the client takes it and a gzip copy exists.
fn answer(built: &'static Built, cache: &'static str, request: &HeaderMap) -> Response {
    let gzip = built.gzip.filter(|_| takes_gzip(request));
    let mut res = (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(media_type(built.path))),
            (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
            (header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP)),
            (header::VARY, HeaderValue::from_static("accept-encoding")),
        ],
        gzip.unwrap_or(built.bytes),
    )
        .into_response();
    if gzip.is_some() {
        res.headers_mut().insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    res
}

async fn index(headers: HeaderMap) -> Response {
    match file("index.html") {
        Some(built) => answer(built, "no-cache", &headers),
        None => ApiError::not_found("the console was not built into this binary").into_response(),
    }
}

async fn asset(Path(name): Path<String>, headers: HeaderMap) -> Response {
    match file(&format!("assets/{name}")) {
        Some(built) => answer(built, "public, max-age=31536000, immutable", &headers),
        None => ApiError::not_found("no such console asset").into_response(),
    }
}

/// `GET /` and `GET /assets/{file}`, under the platform's layers (no audit: nothing here is data).
pub fn router(metrics: Arc<Metrics>, limits: Arc<Limits>) -> Router {
    let routes = Router::new().route("/", get(index)).route("/assets/{*file}", get(asset));
    alpes_platform::layers::unaudited(routes, metrics, limits)
}

/// The console's operations, as the OpenAPI document lists them.
pub fn operations() -> Vec<Op> {
    let html = || Some(content("text/html", serde_json::json!({ "type": "string" })));
    vec![
        Op::get("/", "getConsole", TAG, "The web console")
            .public()
            .describe(
                "The web console's page: log in, upload, follow images, search and download, read balances and the \
                 audit trail. Its scripts and styles come from `/assets/`; it talks to this API with the logged-in \
                 user's bearer token, and the API judges every request.",
            )
            .ok(200, "The page.", html(), &[]),
        Op::get("/assets/{file}", "getConsoleAsset", TAG, "A script or style of the web console")
            .public()
            .param(serde_json::json!({
                "name": "file", "in": "path", "required": true,
                "description": "The file's name, with its content hash, as the page names it.",
                "schema": { "type": "string" },
            }))
            .ok(
                200,
                "The file, cacheable for a year.",
                Some(content("*/*", serde_json::json!({ "type": "string", "format": "binary" }))),
                &[],
            )
            .error(404, &["not_found"], "No such file."),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use std::collections::BTreeSet;
    use tower::ServiceExt;

    fn app() -> Router {
        let jwt = Arc::new(alpes_platform::auth::Jwt::new(b"0123456789abcdef0123456789abcdef"));
        router(
            Arc::new(Metrics::new()),
            Limits::new(alpes_platform::limits::LimitArgs::default(), jwt),
        )
    }

    async fn get_path(path: &str) -> Response {
        app()
            .oneshot(axum::http::Request::builder().uri(path).body(Body::empty()).expect("request"))
            .await
            .expect("answers")
    }

    #[tokio::test]
    async fn the_page_and_every_asset_it_names_are_served_under_the_console_policy() {
        let res = get_path("/").await;
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()[header::CONTENT_SECURITY_POLICY], CSP);
        assert_eq!(res.headers()[header::CACHE_CONTROL], "no-cache");
        let page = axum::body::to_bytes(res.into_body(), usize::MAX).await.expect("body");
        let page = String::from_utf8(page.to_vec()).expect("utf-8");
        let named: Vec<&str> = page.split("\"/assets/").skip(1).filter_map(|s| s.split('"').next()).collect();
        assert!(named.len() >= 2, "the page names its script and its style: {page}");
        for name in named {
            let res = get_path(&format!("/assets/{name}")).await;
            assert_eq!(res.status(), 200, "{name}");
            assert_eq!(res.headers()[header::CONTENT_SECURITY_POLICY], CSP);
            assert!(res.headers()[header::CACHE_CONTROL].to_str().expect("ascii").contains("immutable"));
            let kind = res.headers()[header::CONTENT_TYPE].to_str().expect("ascii").to_owned();
            assert!(
                kind.starts_with("text/javascript") || kind.starts_with("text/css"),
                "{name}: {kind}"
            );
        }
    }

    #[tokio::test]
    async fn a_client_that_takes_gzip_gets_the_gzip_copy_and_it_is_the_same_file() {
        let name = asset_paths().find(|p| p.ends_with(".js")).expect("a script");
        let get = |gzip: Option<&str>| {
            let mut req = axum::http::Request::builder().uri(format!("/assets/{name}"));
            if let Some(v) = gzip {
                req = req.header(header::ACCEPT_ENCODING, v);
            }
            app().oneshot(req.body(Body::empty()).expect("request"))
        };
        let plain = get(None).await.expect("answers");
        assert!(plain.headers().get(header::CONTENT_ENCODING).is_none());
        let plain = axum::body::to_bytes(plain.into_body(), usize::MAX).await.expect("body");
        let zipped = get(Some("br, gzip;q=0.8")).await.expect("answers");
        assert_eq!(zipped.headers()[header::CONTENT_ENCODING], "gzip");
        assert_eq!(zipped.headers()[header::VARY], "accept-encoding");
        let zipped = axum::body::to_bytes(zipped.into_body(), usize::MAX).await.expect("body");
        assert!(zipped.len() < plain.len());
        let mut unzipped = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&zipped[..]), &mut unzipped).expect("gunzips");
        assert_eq!(unzipped, plain);
        let refused = get(Some("gzip;q=0, identity")).await.expect("answers");
        assert!(refused.headers().get(header::CONTENT_ENCODING).is_none());
    }

    #[tokio::test]
    async fn an_unknown_asset_is_a_json_404_and_the_policy_forbids_what_the_app_does_not_need() {
        let res = get_path("/assets/nothing.js").await;
        assert_eq!(res.status(), 404);
        assert!(res.headers()[header::CONTENT_TYPE]
            .to_str()
            .expect("ascii")
            .starts_with("application/json"));
        let res = get_path("/assets/../index.html").await;
        assert_eq!(res.status(), 404);
        for forbidden in ["unsafe-inline", "unsafe-eval", "*", "http:", "https:"] {
            assert!(
                !CSP.split([' ', ';']).any(|t| t.trim_matches('\'') == forbidden.trim_matches('\'')),
                "{forbidden}"
            );
        }
        assert!(CSP.contains("frame-ancestors 'none'") && CSP.starts_with("default-src 'none'"));
    }

    #[test]
    fn the_documented_operations_are_the_routed_ones() {
        let code = include_str!("lib.rs").split("#[cfg(test)]").next().expect("code");
        let routed = alpes_platform::openapi::routes_in_source(code).expect("reads the router");
        let routed: BTreeSet<(String, String)> = routed.into_iter().map(|(m, p)| (m, p.replace("{*", "{"))).collect();
        let documented: BTreeSet<(String, String)> = operations()
            .iter()
            .map(|o| (o.method().to_uppercase(), o.path().to_owned()))
            .collect();
        assert_eq!(routed, documented);
    }
}
