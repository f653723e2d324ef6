//! `GET /ready`: 200 once the process can serve what it claims: the broker,
//! the store and the blobs answer ([`super::health::dependencies`]) and every
//! consumer it runs has joined its group ([`alpes_platform::readiness`]);
//! else 503 with `Retry-After` and the groups still joining. Load balancers
//! and orchestrators route to a process only when it is ready; `/health`
//! stays the liveness probe.

use crate::IngestState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// The handler (no token needed).
pub async fn handler(State(state): State<IngestState>) -> Response {
    let (up, mut body) = dependencies_and_consumers(&state).await;
    if up {
        body["status"] = json!("ready");
        return (StatusCode::OK, axum::Json(body)).into_response();
    }
    body["status"] = json!("starting");
    (StatusCode::SERVICE_UNAVAILABLE, [(header::RETRY_AFTER, "1")], axum::Json(body)).into_response()
}

async fn dependencies_and_consumers(state: &IngestState) -> (bool, serde_json::Value) {
    let (up, mut body) = super::health::dependencies(state).await;
    let readiness = state.kafka.readiness();
    let groups: serde_json::Map<String, serde_json::Value> = readiness
        .groups()
        .into_iter()
        .map(|(group, joined)| (group, json!(if joined { "joined" } else { "joining" })))
        .collect();
    body["consumers"] = serde_json::Value::Object(groups);
    (up && readiness.ready(), body)
}
