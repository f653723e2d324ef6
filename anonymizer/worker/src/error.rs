//! The worker's one error type and its `Result` alias. Messages name what failed (a broker call,
//! the blob store, the engine pool), never an input byte or a value read from an image.

/// Everything that stops the worker or fails a batch.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A platform adapter (Kafka set-up, blob store, producer) failed.
    #[error("platform: {0}")]
    Platform(#[from] alpes_platform::Error),
    /// librdkafka reported an error.
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// An output event could not be encoded (a bug: the event does not fit its schema).
    #[error("codec: {0}")]
    Codec(#[from] alpes_schemas::Error),
    /// The engine's rayon pool could not be built.
    #[error("engine pool: {0}")]
    Pool(#[from] rayon::ThreadPoolBuildError),
    /// The worker settings are invalid.
    #[error("configuration: {0}")]
    Config(String),
    /// A Kafka transaction failed fatally (for example the producer was fenced by another
    /// instance with the same `transactional.id`).
    #[error("transaction: {0}")]
    Transaction(String),
    /// A blocking helper task panicked or was cancelled.
    #[error("background task: {0}")]
    Task(String),
    /// A batch could not be finished (its outputs or offsets never reached the broker), so no
    /// later offset may be stored either.
    #[error("batch {seq} not finished: {reason}")]
    Batch {
        /// The batch's sequence number.
        seq: u64,
        /// What failed last.
        reason: String,
    },
}

/// The worker's result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;
