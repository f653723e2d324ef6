//! `GET /metrics` and the middleware that counts and times every request.

use super::Metrics;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use std::time::Instant;

/// `GET /metrics`.
pub async fn handler(State(metrics): State<Arc<Metrics>>) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        metrics.render(),
    )
        .into_response()
}

/// Middleware: counts and times every request by its route template (never the raw path).
pub async fn track(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    // Both are cheap to keep (a shared string, a standard method): no copy per request.
    let matched = req.extensions().get::<MatchedPath>().cloned();
    let route = matched.as_ref().map_or("unmatched", MatchedPath::as_str);
    let method = method_label(req.method());
    let started = Instant::now();
    let res = next.run(req).await;
    metrics
        .http_latency
        .with_label_values(&[route])
        .observe(started.elapsed().as_secs_f64());
    metrics
        .http_requests
        .with_label_values(&[route, method, res.status().as_str()])
        .inc();
    res
}

/// A method's label: one of RFC 9110's methods and PATCH, or `other`. The
/// method is the client's to choose, so its label set is closed.
pub fn method_label(method: &Method) -> &'static str {
    const KNOWN: [Method; 9] = [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::CONNECT,
        Method::OPTIONS,
        Method::TRACE,
        Method::PATCH,
    ];
    KNOWN.iter().find(|m| *m == method).map_or("other", Method::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt;

    #[tokio::test]
    async fn a_method_the_client_makes_up_is_counted_as_other_and_the_label_set_stays_closed() {
        let metrics = Arc::new(Metrics::new());
        let router = axum::Router::new()
            .fallback(|| async { StatusCode::NOT_FOUND })
            .layer(axum::middleware::from_fn_with_state(metrics.clone(), track));
        let before = metrics.render().len();
        for i in 0..200 {
            let made_up = Method::from_bytes(format!("PROBE{i:0>1000}").as_bytes()).expect("a token");
            let req = Request::builder()
                .method(made_up)
                .uri("/x")
                .body(axum::body::Body::empty())
                .expect("request");
            router.clone().oneshot(req).await.expect("infallible");
        }
        let req = Request::get("/x").body(axum::body::Body::empty()).expect("request");
        router.oneshot(req).await.expect("infallible");
        let text = metrics.render();
        assert!(
            text.contains(r#"alpes_http_requests_total{method="other",route="unmatched",status="404"} 200"#),
            "{text}"
        );
        assert!(text.contains(r#"method="GET""#));
        assert!(!text.contains("PROBE"));
        assert!(text.len() < before + 2_000, "{} bytes grew to {}", before, text.len());
    }
}
