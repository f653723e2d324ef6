//! Alpes DIMSE: the DICOM network listener through which modalities and
//! PACS push studies (C-STORE) and check the link (C-ECHO).
//!
//! A calling AE title is mapped to the provider whose images it sends (the
//! ingest store keeps the mapping; `--dimse-calling-ae` and the admin route
//! `PUT /dimse/aes/{ae}` set it); any other calling AE is rejected at
//! association. Each instance goes the way a REST upload goes: it streams to
//! the raw blob store, is registered idempotently by provider and sha256,
//! and is announced as `ImagenRegistrada` (`origen` "dimse"); the C-STORE
//! answers success only once both are durable.
//!
//! - [`app`]: the listener (`build`, `run_until_stopped`), limits and TLS.
//! - [`access`]: which calling AE titles are admitted, and for whom.
//! - [`association`]: one association, PDU by PDU.
//! - [`cstore`]: one C-STORE, from its fragments to its status.
//! - [`stable`]: stable studies, announced as `EstudioCompleto`.
//! - [`command`]: DIMSE command sets read and written.
//! - [`syntaxes`]: the abstract and transfer syntaxes negotiated.
//! - [`tls`]: DICOM TLS from PEM files; [`args`]: the flags; [`error`]: the error enum.

pub mod access;
pub mod app;
pub mod args;
pub mod association;
pub mod command;
pub mod cstore;
pub mod error;
pub mod stable;
pub mod syntaxes;
pub mod tls;

pub use app::DimseApp;
pub use args::DimseArgs;
pub use error::{Error, Result};
