//! The platform's error type. Messages name what failed, never payload bytes or PHI.

/// Everything an adapter can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// librdkafka reported an error.
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// The broker did not acknowledge in time.
    #[error("broker unavailable: {0}")]
    BrokerUnavailable(String),
    /// The object store failed.
    #[cfg(feature = "blobs")]
    #[error("blob store: {0}")]
    Blob(#[from] object_store::Error),
    /// The store failed.
    #[error("store: {0}")]
    Store(String),
    /// An event could not be encoded or decoded.
    #[error("codec: {0}")]
    Codec(#[from] alpes_schemas::Error),
    /// A token could not be issued or verified.
    #[error("auth: {0}")]
    Auth(String),
    /// The configuration is invalid.
    #[error("configuration: {0}")]
    Config(String),
    /// A page cursor that this server did not issue.
    #[error("the page cursor is not valid")]
    InvalidCursor,
    /// A local file operation failed.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

#[cfg(feature = "sqlite")]
impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Error::Store(e.to_string())
    }
}

impl From<alpes_domain::Error> for Error {
    fn from(e: alpes_domain::Error) -> Self {
        match e {
            alpes_domain::Error::Store(m) => Error::Store(m),
            alpes_domain::Error::InvalidCursor => Error::InvalidCursor,
        }
    }
}

/// What an adapter's failure is to the port that called it: a cursor stays a
/// bad cursor, anything else is the store failing.
impl From<Error> for alpes_domain::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::InvalidCursor => alpes_domain::Error::InvalidCursor,
            Error::Store(m) => alpes_domain::Error::Store(m),
            other => alpes_domain::Error::Store(other.to_string()),
        }
    }
}

/// The platform's result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;
