//! De-identification reports (`POST /reportes`, `GET /reportes/{id}`), generated off the
//! request path: [`jobs`] keeps each report's state and file in the blob store (shared by every
//! replica) and runs its generation on a task; [`gather`] reads the images in scope and their
//! analyses from the catalog; [`csv`] and [`pdf`] render them. The content (one line per image,
//! the totals) is the domain's ([`alpes_domain::report`]).

pub mod csv;
pub mod gather;
pub mod jobs;
pub mod pdf;

pub use jobs::Reports;
