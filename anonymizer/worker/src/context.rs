//! What every batch task shares: the blob store, codec, engine settings and pool, metrics, the
//! fetch limit, the publisher and the worker's internal stop signal.

use std::sync::Arc;

use alpes_anonymizer::Config;
use alpes_platform::blobs::Blobs;
use alpes_platform::metrics::Metrics;
use alpes_platform::shutdown::Shutdown;
use alpes_schemas::Codec;
use tokio::sync::Semaphore;

use crate::config::PseudonymScope;
use crate::pool::EnginePool;
use crate::publish::Publisher;

/// Shared by the consume loop and every batch in flight.
#[derive(Debug)]
pub struct Context {
    /// Raw blobs in, anonymized blobs out.
    pub blobs: Blobs,
    /// Decodes the input events and encodes the outputs.
    pub codec: Codec,
    /// The engine settings every profile starts from (secret, shipped rule library, limits).
    pub base: Config,
    /// Whose pseudonyms an image gets (its provider's, by default).
    pub pseudonyms: PseudonymScope,
    /// The engine's thread pool.
    pub pool: EnginePool,
    /// The process's metrics.
    pub metrics: Arc<Metrics>,
    /// Raw-blob fetches allowed at once.
    pub fetches: Semaphore,
    /// Produces the outputs (and, in transactional mode, commits the offsets).
    pub publisher: Publisher,
    /// Fires when the worker stops (asked to, or after a failure): retries give up.
    pub stop: Shutdown,
}
