//! `GET /health`: the state of the broker, the store and the blobs, plus the
//! Kafka bootstrap address for outside consumers. 200 when all are up, else 503.

use crate::IngestState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::time::Duration;

fn state_of<E: std::fmt::Display>(r: &Result<(), E>) -> serde_json::Value {
    match r {
        Ok(()) => json!({ "status": "up" }),
        Err(e) => json!({ "status": "down", "error": e.to_string() }),
    }
}

/// Whether the broker, the store and the blobs answer, and the body that says so.
pub async fn dependencies(state: &IngestState) -> (bool, serde_json::Value) {
    let (broker, store, blobs) = tokio::join!(
        state.kafka.health(Duration::from_secs(2)),
        state.store.health(),
        state.blobs.health()
    );
    let up = broker.is_ok() && store.is_ok() && blobs.is_ok();
    let body = json!({
        "status": if up { "up" } else { "degraded" },
        "broker": state_of(&broker),
        "store": state_of(&store),
        "blobs": { "status": if blobs.is_ok() { "up" } else { "down" }, "store": state.blobs.describe() },
        "kafka": {
            "bootstrap": state.kafka.bootstrap(),
            "mode": if state.kafka.mock().is_some() { "development (in-process mock cluster, not durable)" } else { "cluster" },
            "schemas": state.producer.codec().describe(),
        },
        "version": env!("CARGO_PKG_VERSION"),
    });
    (up, body)
}

/// The handler (no token needed, so probes and load balancers can call it).
pub async fn handler(State(state): State<IngestState>) -> Response {
    let (up, body) = dependencies(&state).await;
    let code = if up { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (code, axum::Json(body)).into_response()
}
