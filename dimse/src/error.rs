//! What can stop the DIMSE listener.

/// The listener's errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The listen address cannot be bound.
    #[error("cannot listen for DICOM associations on {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The TLS files cannot be used.
    #[error("DICOM TLS: {0}")]
    Tls(String),
    /// A configuration value is wrong (the AE title, a calling AE mapping).
    #[error("{0}")]
    Config(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] alpes_domain::Error),
}

/// The listener's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;
