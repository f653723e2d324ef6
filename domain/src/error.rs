//! The error every port returns. Messages name what failed, never payload
//! bytes or PHI.

/// What a store port can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The store failed or could not be reached (usually transient: retry).
    #[error("store: {0}")]
    Store(String),
    /// A page cursor that this server did not issue.
    #[error("the page cursor is not valid")]
    InvalidCursor,
}

/// The domain's result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;
