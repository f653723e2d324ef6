//! Ingest's error: what can stop the service from starting or running. A
//! request's failures are [`alpes_platform::http::ApiError`]s, answered to
//! the client; these are the service's own.

/// Ingest's errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An adapter (Kafka, blobs) failed.
    #[error(transparent)]
    Platform(#[from] alpes_platform::Error),
    /// A store failed.
    #[error(transparent)]
    Store(#[from] alpes_domain::Error),
    /// The password hasher's settings are out of range.
    #[error("bad password hashing settings: {0}")]
    Passwords(#[from] alpes_platform::password::PasswordError),
    /// The bootstrap admin could not be created (its email is in use, or its password is too weak).
    #[error("cannot create the bootstrap admin: {message} ({code})")]
    Bootstrap {
        /// The refusal's code.
        code: &'static str,
        /// What was refused.
        message: String,
    },
}

/// Ingest's result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;
