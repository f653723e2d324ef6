//! The embedded store adapters: SQLite, one file per data dir, WAL, one
//! writer and a pool of readers (`conn`). The schemas are beside the code
//! that uses them.

pub mod audit;
pub mod catalog;
mod conn;
mod fresh;
pub mod identity;
pub mod imports;
pub mod ingest;
pub mod ledger;
pub mod outbox;
mod writer;

pub use audit::SqliteAudit;
pub use catalog::SqliteCatalog;
pub use identity::SqliteIdentity;
pub use imports::SqliteImports;
pub use ingest::SqliteStore;
pub use ledger::SqliteLedger;
pub use outbox::SqliteOutbox;
