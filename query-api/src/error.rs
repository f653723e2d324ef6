//! The query service's error: what can stop its consumers. A request's
//! failures are [`alpes_platform::http::ApiError`]s, answered to the client.

/// The query service's errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An adapter (Kafka, a consumer) failed.
    #[error(transparent)]
    Platform(#[from] alpes_platform::Error),
}

/// The query service's result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;
