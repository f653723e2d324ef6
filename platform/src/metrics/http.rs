//! `GET /metrics` and the middleware that counts and times every request.

use super::Metrics;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, StatusCode};
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
    let method = req.method().clone();
    let started = Instant::now();
    let res = next.run(req).await;
    metrics
        .http_latency
        .with_label_values(&[route])
        .observe(started.elapsed().as_secs_f64());
    metrics
        .http_requests
        .with_label_values(&[route, method.as_str(), res.status().as_str()])
        .inc();
    res
}
