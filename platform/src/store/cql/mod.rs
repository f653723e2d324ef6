//! The CQL store adapters (ScyllaDB in production, Cassandra here): the
//! connection settings and retries (`conn`), the statement helpers (`exec`),
//! the schema migrations (`migrate`, with the CQL files in `schemas/cql/`),
//! and one adapter per port.

pub mod catalog;
#[cfg(test)]
mod check;
pub mod conn;
mod exec;
pub mod identity;
pub mod imports;
pub mod ingest;
pub mod ledger;
pub mod migrate;
pub mod notifications;
pub mod registry;
mod written;

pub use catalog::ScyllaCatalog;
pub use conn::ScyllaArgs;
pub use identity::ScyllaIdentity;
pub use imports::ScyllaImports;
pub use ingest::ScyllaIngest;
pub use ledger::ScyllaLedger;
pub use notifications::ScyllaNotifications;
pub use registry::ScyllaRegistry;
