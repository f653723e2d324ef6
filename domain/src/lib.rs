//! Alpes' domain: the types, the rules and the ports, with no I/O.
//!
//! Nothing here opens a socket, a file or a database, and nothing depends on
//! an async runtime, HTTP, Kafka or a database driver: the adapters (the
//! `platform` crate's `store`, `kafka`, `blobs` and web modules) implement
//! the ports, and the services (`ingest`, `billing`, `query-api`, the
//! anonymizer worker) drive them.
//!
//! - [`caller`]: roles and the caller, as plain data.
//! - [`ingest`]: the ingest port (images, idempotency keys, open requests,
//!   the calling AE titles of the DICOM listener).
//! - [`dimse`]: what an AE title is, and a calling AE mapped to a provider.
//! - [`import`]: import jobs (DICOMweb or URL sources), their states and items, and their port.
//! - [`ledger`]: ledger entries, balances, the payout rules and `PagoRechazado`.
//! - [`catalog`]: the query side's tables, and the estado an image moves through.
//! - [`identity`]: accounts, the lockout rule, refresh tokens, API keys.
//! - [`consent`]: a patient's consent workflow, and which images a consumer is offered.
//! - [`registry`]: institutions, doctors and patients, and their port.
//! - [`notification`]: notifications, their delivery states, and institutions' webhooks.
//! - [`panel`]: the dashboards of an institution and of a doctor.
//! - [`audit`]: the audit trail.
//! - [`outbox`]: events kept until this process's consumers applied them.
//! - [`page`]: the one page cursor every listing hands out.
//! - [`dicom_match`]: QIDO-RS wildcard matching, as every store applies it.
//! - [`report`]: de-identification reports: scope, state, and one line per image.

pub mod audit;
pub mod caller;
pub mod catalog;
pub mod consent;
pub mod dicom_match;
pub mod dimse;
mod error;
pub mod identity;
pub mod import;
pub mod ingest;
pub mod ledger;
pub mod notification;
pub mod outbox;
pub mod page;
pub mod panel;
pub mod registry;
pub mod report;

pub use error::{Error, Result};
