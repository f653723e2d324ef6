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
use crate::openapi::{content, json_content, response_header, schema, string_enum, Op};
use alpes_domain::ingest::IngestStore;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Serialize;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use utoipa::openapi::schema::Object;
use utoipa::ToSchema;

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

/// The routes [`Probes::router`] registers, as `(METHOD, path)`.
pub const ROUTES: [(&str, &str); 3] = [("GET", "/health"), ("GET", "/ready"), ("GET", "/metrics")];

/// What `/health` answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    #[schema(schema_with = health_statuses)]
    status: &'static str,
    #[serde(flatten)]
    dependencies: Dependencies,
}

/// What `/ready` answers: `/health`'s dependencies, and the consumer groups.
#[derive(Debug, Serialize, ToSchema)]
pub struct Ready {
    #[schema(schema_with = ready_statuses)]
    status: &'static str,
    #[serde(flatten)]
    dependencies: Dependencies,
    /// Each consumer group this process runs, and whether all its members have joined.
    consumers: BTreeMap<String, Joined>,
}

/// Each dependency of the process, and this build's version.
#[derive(Debug, Serialize, ToSchema)]
pub struct Dependencies {
    broker: ComponentState,
    /// Absent when the process runs no ingest.
    #[serde(skip_serializing_if = "Option::is_none")]
    store: Option<ComponentState>,
    /// Absent when the process neither reads nor writes blobs.
    #[serde(skip_serializing_if = "Option::is_none")]
    blobs: Option<BlobsState>,
    kafka: KafkaState,
    version: &'static str,
}

/// Whether a dependency answers, and if not, why.
#[derive(Debug, Serialize, ToSchema)]
pub struct ComponentState {
    #[schema(schema_with = up_down)]
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// Whether the blob store answers, and which it is.
#[derive(Debug, Serialize, ToSchema)]
pub struct BlobsState {
    #[schema(schema_with = up_down)]
    status: &'static str,
    store: String,
}

/// The event log outside consumers read from.
#[derive(Debug, Serialize, ToSchema)]
pub struct KafkaState {
    bootstrap: String,
    mode: &'static str,
    #[schema(schema_with = codecs)]
    schemas: &'static str,
}

/// Whether a consumer group has every member in.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Joined {
    /// Every member has its first assignment.
    Joined,
    /// Some member has not.
    Joining,
}

fn health_statuses() -> Object {
    string_enum(&["up", "degraded"])
}

fn ready_statuses() -> Object {
    string_enum(&["ready", "starting"])
}

fn up_down() -> Object {
    string_enum(&["up", "down"])
}

fn codecs() -> Object {
    string_enum(&["single-object", "schema-registry"])
}

fn state_of(r: Result<(), String>) -> ComponentState {
    match r {
        Ok(()) => ComponentState { status: "up", error: None },
        Err(e) => ComponentState {
            status: "down",
            error: Some(e),
        },
    }
}

impl Probes {
    /// Whether every dependency answers, and what each says.
    pub async fn dependencies(&self) -> (bool, Dependencies) {
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
        let dependencies = Dependencies {
            broker: state_of(broker),
            store: store.map(state_of),
            blobs: blobs.zip(self.blobs.as_ref()).map(|(ok, b)| BlobsState {
                status: if ok { "up" } else { "down" },
                store: b.describe().to_owned(),
            }),
            kafka: KafkaState {
                bootstrap: self.kafka.bootstrap().to_owned(),
                mode: if self.kafka.mock().is_some() {
                    "development (in-process mock cluster, not durable)"
                } else {
                    "cluster"
                },
                schemas: self.schemas,
            },
            version: env!("CARGO_PKG_VERSION"),
        };
        (up, dependencies)
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

/// The answers' schemas.
#[derive(Debug, utoipa::OpenApi)]
#[openapi(components(schemas(Health, Ready)))]
pub struct Answers;

/// The operations of [`Probes::router`]: every process serves them.
pub fn operations() -> Vec<Op> {
    vec![
        Op::get("/health", "health", "platform", "The state of the broker, the store and the blobs")
            .public()
            .ok(200, "Everything is up.", Some(json_content(schema("Health"))), &[])
            .ok(503, "Something is down; the body says what.", Some(json_content(schema("Health"))), &[]),
        Op::get("/ready", "ready", "platform", "Whether this process can serve: its dependencies answer and its consumers have joined")
            .public()
            .describe(
                "The readiness probe: 200 once the broker, the store and the blobs answer and every consumer \
                 group this process runs has its first assignment (before that, a user registered at once could \
                 read 404 for their own account). Route traffic on this, and use `/health` for liveness.",
            )
            .ok(200, "Ready.", Some(json_content(schema("Ready"))), &[])
            .ok(
                503,
                "Starting, or something is down; the body says what.",
                Some(json_content(schema("Ready"))),
                &[("Retry-After", response_header(json!({ "type": "integer" }), true, "Seconds to wait: 1."))],
            ),
        Op::get("/metrics", "metrics", "platform", "Prometheus metrics")
            .public()
            .describe("Requests and latency by route, consumer lag by partition, engine time, bytes in and out, rejections by reason, events produced.")
            .ok(
                200,
                "The Prometheus text exposition format 0.0.4.",
                Some(content("text/plain", json!({ "type": "string" }))),
                &[],
            ),
    ]
}

/// `GET /health`.
async fn health(State(probes): State<Arc<Probes>>) -> Response {
    let (up, dependencies) = probes.dependencies().await;
    let (code, status) = if up {
        (StatusCode::OK, "up")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "degraded")
    };
    (code, axum::Json(Health { status, dependencies })).into_response()
}

/// `GET /ready`.
async fn ready(State(probes): State<Arc<Probes>>) -> Response {
    let (up, dependencies) = probes.dependencies().await;
    let readiness = probes.kafka.readiness();
    let consumers = readiness
        .groups()
        .into_iter()
        .map(|(group, joined)| (group, if joined { Joined::Joined } else { Joined::Joining }))
        .collect();
    let ready = up && readiness.ready();
    let body = Ready {
        status: if ready { "ready" } else { "starting" },
        dependencies,
        consumers,
    };
    if ready {
        return (StatusCode::OK, axum::Json(body)).into_response();
    }
    (StatusCode::SERVICE_UNAVAILABLE, [(header::RETRY_AFTER, "1")], axum::Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openapi::routes_in_source;
    use std::collections::BTreeSet;

    #[test]
    fn the_routes_constant_is_what_the_router_registers_and_documents() {
        let code = include_str!("probes.rs").split("#[cfg(test)]").next().expect("code");
        let router_fn = code.split("pub fn router(").nth(1).expect("the router function");
        let routes: BTreeSet<(String, String)> = ROUTES.iter().map(|(m, p)| ((*m).to_owned(), (*p).to_owned())).collect();
        assert_eq!(routes_in_source(router_fn).expect("reads"), routes);
        let documented: BTreeSet<(String, String)> = operations()
            .iter()
            .map(|o| (o.method().to_uppercase(), o.path().to_owned()))
            .collect();
        assert_eq!(documented, routes);
    }

    #[test]
    fn a_dependency_that_does_not_answer_says_why_and_one_that_does_says_nothing_more() {
        let up = serde_json::to_value(state_of(Ok(()))).expect("serializes");
        assert_eq!(up, json!({ "status": "up" }));
        let down = serde_json::to_value(state_of(Err("refused".into()))).expect("serializes");
        assert_eq!(down, json!({ "status": "down", "error": "refused" }));
    }
}
