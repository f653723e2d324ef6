//! Alpes platform: the adapters every service shares.
//!
//! - [`kafka`]: client settings, the development broker (librdkafka's mock
//!   cluster), topic creation, the idempotent producer and the consumer set-up.
//! - [`blobs`]: content-addressed blobs on `object_store` (local directory or S3).
//! - [`store`]: the ingest store port and its SQLite adapter.
//! - [`auth`]: JWT bearer tokens and roles.
//! - [`http`]: the one `ApiError` every route returns.
//! - [`metrics`] and [`telemetry`]: Prometheus metrics and JSON logs.
//! - [`shutdown`]: the stop signal every long-running task takes.

pub mod auth;
pub mod blobs;
pub mod error;
pub mod http;
pub mod kafka;
pub mod metrics;
pub mod password;
pub mod shutdown;
pub mod store;
pub mod telemetry;

pub use error::{Error, Result};
