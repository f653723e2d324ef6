//! The embedded store adapters: SQLite, one file per data dir, WAL, one
//! writer and a pool of readers (`conn`). The schemas are beside the code
//! that uses them.

pub mod audit;
pub mod catalog;
mod catalog_consent;
mod conn;
mod fresh;
pub mod identity;
pub mod imports;
pub mod ingest;
pub mod ledger;
pub mod notifications;
pub mod outbox;
pub mod registry;
mod writer;

pub use audit::SqliteAudit;
pub use catalog::SqliteCatalog;
pub use identity::SqliteIdentity;
pub use imports::SqliteImports;
pub use ingest::SqliteStore;
pub use ledger::SqliteLedger;
pub use notifications::SqliteNotifications;
pub use outbox::SqliteOutbox;
pub use registry::SqliteRegistry;
