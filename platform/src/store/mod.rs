//! The store ports (defined in `alpes_domain`, re-exported here) and their
//! adapters, one folder per engine:
//!
//! - [`sqlite`]: the embedded adapters, one SQLite file per data dir.
//! - [`cql`]: the ScyllaDB adapters (Cassandra here), shared by every replica.
//! - [`conformance`]: the suite every adapter must pass.
//!
//! The ports: [`IngestStore`] (images, idempotency keys, open requests),
//! [`ledger::LedgerStore`] (money movements and balances, exactly once per
//! event), [`catalog::CatalogStore`] (the query side's tables),
//! [`identity::IdentityStore`] (accounts, login failures, refresh tokens,
//! revoked tokens, API keys), [`registry::RegistryStore`] (institutions,
//! doctors, patients), [`notification::NotificationStore`] (notifications and
//! webhooks), [`audit::AuditStore`] (the audit trail; SQLite
//! only) and [`outbox::OutboxStore`] (events kept for the development
//! broker's consumers; SQLite only).

pub mod conformance;
#[cfg(feature = "cql")]
pub mod cql;
mod import_rows;
#[cfg(feature = "sqlite")]
pub mod sqlite;

pub use alpes_domain::import::{ImportItem, ImportJob, ImportSpec, ImportState, ImportStore, ItemOutcome};
pub use alpes_domain::ingest::{Claim, ImageRow, IngestStore, NewImage, RequestState};
pub use alpes_domain::{audit, catalog, identity, ledger, notification, outbox, registry};
pub use audit::{AuditFilter, AuditPage, AuditStore, LoginCounts};
pub use catalog::{CatalogEvent, CatalogImage, CatalogStore, Estado};
#[cfg(feature = "cql")]
pub use cql::{ScyllaArgs, ScyllaCatalog, ScyllaIdentity, ScyllaImports, ScyllaIngest, ScyllaLedger, ScyllaNotifications, ScyllaRegistry};
pub use identity::{Account, ApiKey, Created, IdentityStore, LockoutRule, NewAccount, RefreshToken, Rotation};
pub use ledger::{Applied, Balance, EntryKind, LedgerEntry, LedgerPage, LedgerStore, Refusal};
pub use outbox::{OutboxRow, OutboxStore};
#[cfg(feature = "sqlite")]
pub use sqlite::{
    SqliteAudit, SqliteCatalog, SqliteIdentity, SqliteImports, SqliteLedger, SqliteNotifications, SqliteOutbox, SqliteRegistry, SqliteStore,
};
