//! Alpes platform: the adapters every service shares.
//!
//! - [`kafka`]: client settings, the development broker (librdkafka's mock
//!   cluster), topic creation, the idempotent producer and the consumer set-up.
//! - [`blobs`]: content-addressed blobs on `object_store` (local directory or S3).
//! - [`store`]: the store ports (ingest, ledger, catalog, identity) and their adapters.
//! - [`auth`]: JWT bearer tokens, API keys and roles.
//! - [`http`]: the one `ApiError` every route returns.
//! - [`hardening`]: the request id and security headers on every answer.
//! - [`audit`]: which requests the audit trail records, and the middleware that does.
//! - [`layers`]: the middleware every service's routes run under, in one order.
//! - [`server`]: the HTTP listener, its connection limits and header and idle timeouts.
//! - [`limits`]: rate limits per principal, body and time limits per route, CORS.
//! - [`password`]: argon2id password hashing.
//! - [`metrics`] and [`telemetry`]: Prometheus metrics and JSON logs.
//! - [`openapi`]: the shared parts of every service's OpenAPI document, and `/openapi.json` and `/docs`.
//! - [`shutdown`]: the stop signal every long-running task takes.
//! - [`retry`]: the one retry policy.
//! - [`probes`]: `/health`, `/ready` and `/metrics` of any process, on what it depends on.
//! - [`readiness`]: whether every consumer a process runs has joined its group (`/ready`).
//! - [`public_url`]: the configured base URL of the links answers carry.

#[cfg(feature = "web")]
pub mod audit;
#[cfg(feature = "web")]
pub mod auth;
#[cfg(feature = "blobs")]
pub mod blobs;
pub mod error;
#[cfg(feature = "web")]
pub mod hardening;
#[cfg(feature = "web")]
pub mod http;
pub mod kafka;
#[cfg(feature = "web")]
pub mod layers;
#[cfg(feature = "web")]
pub mod limits;
pub mod metrics;
#[cfg(feature = "web")]
pub mod openapi;
#[cfg(feature = "web")]
pub mod password;
#[cfg(all(feature = "web", feature = "blobs"))]
pub mod probes;
pub mod public_url;
pub mod readiness;
pub mod retry;
pub mod seal;
#[cfg(feature = "web")]
pub mod server;
pub mod shutdown;
pub mod store;
pub mod telemetry;

pub use error::{Error, Result};
