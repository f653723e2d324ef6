//! Alpes importer: runs import jobs.
//!
//! A job (`POST /importaciones`, stored by ingest and announced as
//! `ImportacionSolicitada` on `alpes.imports.requested`) is run by whichever
//! importer of the consumer group `alpes-importer` owns its partition:
//!
//! 1. it moves the job to `running` and lists its items: the URLs of a `urls`
//!    job, or every instance of every study a QIDO-RS search of a DICOMweb
//!    server matches ([`dicomweb`]);
//! 2. it fetches each item that has no outcome yet ([`fetch`]; a DICOMweb
//!    job's a series at a time, one WADO-RS answer each), at most
//!    `--import-max-per-host` at once per host and `--import-max-concurrent`
//!    in all ([`hosts`]), retrying timeouts, refused connections, 5xx and 429
//!    with exponential backoff and jitter, at least as long as `Retry-After`,
//!    never a 4xx ([`alpes_platform::retry::retry_bounded`]);
//! 3. it checks what came (an image type the upload path takes, the size
//!    limit, the checksum the source gave) and registers it as an upload
//!    (`ImagenRegistrada`, source `import`); each item's outcome is recorded
//!    once, so a job replayed after a restart skips what is done;
//! 4. it ends the job `completed`, or `failed` with a reason (its source could
//!    not be searched, or every item failed); a cancel stops it between items.
//!
//! The job's offset is stored only once it ended: a job under way when its
//! importer stops is run again, from where it stopped, by the next owner.
//! Only hosts outside the loopback, link-local, multicast and unspecified
//! ranges are fetched from, unless `--import-allow-network` names them
//! ([`network`]).
//!
//! - [`app`]: the service as one app; [`args`]: its flags; [`job`]: one job.

pub mod app;
pub mod args;
pub mod dicomweb;
pub mod fetch;
pub mod hosts;
pub mod job;
pub mod network;

pub use app::ImporterApp;
pub use args::ImportArgs;

/// What failed, as a stable code and a short text (never payload or PHI).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {detail}")]
pub struct ItemError {
    /// A stable code (`http_404`, `timeout`, `not_an_image`, ...).
    pub code: &'static str,
    /// A short text.
    pub detail: String,
}

impl ItemError {
    /// An error with `code` and `detail`.
    pub fn new(code: &'static str, detail: impl Into<String>) -> ItemError {
        ItemError {
            code,
            detail: detail.into(),
        }
    }
}
