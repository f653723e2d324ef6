//! `GET /health`, `GET /ready` and `GET /metrics` of any process, whatever
//! services it runs: the broker, the blobs and the stores the process uses
//! answer, and (for `/ready`) every consumer it runs has joined its group.
//!
//! The composition root names what the process depends on ([`Probes`]):
//! an ingest process checks its ingest store, a billing-only process no
//! store of ingest's, and a process that neither reads nor writes blobs
//! does not check them.
//!
//! - `/health` is the liveness probe: 200 when every dependency answers,
//!   else 503, with the Kafka bootstrap address outside consumers read from.
//! - `/ready` adds the consumer groups: 200 once each has joined, else 503
//!   with `Retry-After` and the groups still joining. Load balancers route
//!   to a process only when it is ready.

use crate::blobs::Blobs;
use crate::kafka::Kafka;
use crate::metrics::Metrics;
use alpes_domain::ingest::IngestStore;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

/// What a process depends on, as its probes check it.
#[derive(Debug, Clone)]
pub struct Probes {
    /// The event log (every process has one).
    pub kafka: Arc<Kafka>,
    /// How events are encoded, as `/health` describes it ([`alpes_schemas::Codec::describe`]).
    pub schemas: &'static str,
    /// The blob store, when the process reads or writes blobs.
    pub blobs: Option<Blobs>,
    /// The ingest store, when the process runs ingest (the one store port with a health check).
    pub store: Option<Arc<dyn IngestStore>>,
    /// The process's metrics, served at `/metrics`.
    pub metrics: Arc<Metrics>,
}

fn state_of(r: &Result<(), String>) -> Value {
    match r {
        Ok(()) => json!({ "status": "up" }),
        Err(e) => json!({ "status": "down", "error": e }),
    }
}

impl Probes {
    /// Whether every dependency answers, and the body that says so.
    pub async fn dependencies(&self) -> (bool, Value) {
        let broker = async { self.kafka.health(Duration::from_secs(2)).await.map_err(|e| e.to_string()) };
        let store = async {
            match &self.store {
                Some(s) => Some(s.health().await.map_err(|e| e.to_string())),
                None => None,
            }
        };
        let blobs = async {
            match &self.blobs {
                Some(b) => Some(b.health().await.is_ok()),
                None => None,
            }
        };
        let (broker, store, blobs) = tokio::join!(broker, store, blobs);
        let up = broker.is_ok() && store.as_ref().is_none_or(Result::is_ok) && blobs.is_none_or(|b| b);
        let mut body = json!({
            "status": if up { "up" } else { "degraded" },
            "broker": state_of(&broker),
            "kafka": {
                "bootstrap": self.kafka.bootstrap(),
                "mode": if self.kafka.mock().is_some() { "development (in-process mock cluster, not durable)" } else { "cluster" },
                "schemas": self.schemas,
            },
            "version": env!("CARGO_PKG_VERSION"),
        });
        if let Some(store) = &store {
            body["store"] = state_of(store);
        }
        if let (Some(ok), Some(b)) = (blobs, &self.blobs) {
            body["blobs"] = json!({ "status": if ok { "up" } else { "down" }, "store": b.describe() });
        }
        (up, body)
    }

    /// [`Probes::dependencies`], and every consumer group the process runs.
    pub async fn readiness(&self) -> (bool, Value) {
        let (up, mut body) = self.dependencies().await;
        let readiness = self.kafka.readiness();
        let groups: serde_json::Map<String, Value> = readiness
            .groups()
            .into_iter()
            .map(|(group, joined)| (group, json!(if joined { "joined" } else { "joining" })))
            .collect();
        body["consumers"] = Value::Object(groups);
        (up && readiness.ready(), body)
    }

    /// `/health`, `/ready` and `/metrics` (no token needed, so probes, load balancers and
    /// scrapers can call them).
    /// Each answer carries the request id and the security headers, and is counted in the
    /// HTTP metrics by route.
    pub fn router(self) -> Router {
        let metrics = self.metrics.clone();
        Router::new()
            .route("/health", get(health))
            .route("/ready", get(ready))
            .with_state(Arc::new(self))
            .merge(
                Router::new()
                    .route("/metrics", get(crate::metrics::handler))
                    .with_state(metrics.clone()),
            )
            .layer(axum::middleware::from_fn_with_state(metrics, crate::metrics::track))
            .layer(axum::middleware::from_fn(crate::hardening::harden))
    }
}

/// `GET /health`.
async fn health(State(probes): State<Arc<Probes>>) -> Response {
    let (up, body) = probes.dependencies().await;
    let code = if up { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (code, axum::Json(body)).into_response()
}

/// `GET /ready`.
async fn ready(State(probes): State<Arc<Probes>>) -> Response {
    let (up, mut body) = probes.readiness().await;
    if up {
        body["status"] = json!("ready");
        return (StatusCode::OK, axum::Json(body)).into_response();
    }
    body["status"] = json!("starting");
    (StatusCode::SERVICE_UNAVAILABLE, [(header::RETRY_AFTER, "1")], axum::Json(body)).into_response()
}
