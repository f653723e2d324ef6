//! Alpes anonymizer worker: consumes `ImagenRegistrada` from `alpes.images.registered` in a
//! consumer group, de-identifies each image on a dedicated rayon pool, writes the anonymized blob
//! (content addressed) and produces exactly one `ImagenAnonimizada` or `ImagenRechazada` per
//! record, keyed by image id.
//!
//! - Delivery is at-least-once: a batch's offsets are stored only after the broker acknowledged
//!   its outputs, in the order batches were taken. Outputs are deterministic (same input, secret
//!   and profile → same bytes, blob key and event id), so consumers drop duplicates.
//! - With [`WorkerConfig::transactional`], each batch's outputs and offsets commit in one Kafka
//!   transaction instead.
//! - Poison records (not Avro, unknown schema, wrong type, empty) become `ImagenRechazada` with
//!   their source coordinates and never stop a partition.
//! - PHI lives only in the raw blob; nothing from it reaches a log line, a metric label, an error
//!   or an event except sizes and fixed reason codes.
//!
//! ```no_run
//! # async fn demo(kafka: std::sync::Arc<alpes_platform::kafka::Kafka>, blobs: alpes_platform::blobs::Blobs,
//! #     metrics: std::sync::Arc<alpes_platform::metrics::Metrics>) -> alpes_anonymizer_worker::Result<()> {
//! use alpes_anonymizer_worker::{Worker, WorkerConfig};
//! let shutdown = alpes_platform::shutdown::Shutdown::new();
//! let secret = alpes_anonymizer::Secret::new(b"from the secret store".to_vec());
//! let worker = Worker::build(kafka, blobs, alpes_schemas::Codec::from_env(), secret, metrics, WorkerConfig::default())?;
//! worker.run_until_stopped(shutdown).await
//! # }
//! ```

mod batch;
mod config;
mod consume;
mod context;
mod error;
mod events;
mod facts;
mod image;
mod pool;
mod produced;
mod profile;
mod publish;
mod record;
mod rejection;
mod transaction;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use alpes_anonymizer::{Config, Secret};
use alpes_platform::blobs::Blobs;
use alpes_platform::kafka::{GroupConsumer, Kafka, Producer};
use alpes_platform::metrics::Metrics;
use alpes_platform::shutdown::Shutdown;
use alpes_schemas::{topics, Codec};
use tokio::sync::Semaphore;
use tracing::Instrument;

pub use config::{PseudonymScope, WorkerConfig};
pub use error::{Error, Result};
pub use events::{model as analysis_model, ACTOR, ENGINE_VERSION};

use context::Context;
use pool::EnginePool;
use publish::Publisher;
use transaction::Transactional;

/// Transactional workers built in this process so far: the last part of their `transactional.id`.
static TRANSACTIONAL_BUILT: AtomicUsize = AtomicUsize::new(0);

/// A built worker: its consumer has subscribed, its producer and engine pool exist.
pub struct Worker {
    consumer: Arc<GroupConsumer>,
    ctx: Context,
    cfg: WorkerConfig,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("cfg", &self.cfg)
            .field("ctx", &self.ctx)
            .finish_non_exhaustive()
    }
}

impl Worker {
    /// Builds the consumer (subscribed to `alpes.images.registered` in `cfg.group`), the producer
    /// (transactional when `cfg.transactional`) and the engine pool. Call it inside a tokio runtime.
    pub fn build(
        kafka: Arc<Kafka>,
        blobs: Blobs,
        codec: Codec,
        secret: Secret,
        metrics: Arc<Metrics>,
        cfg: WorkerConfig,
    ) -> Result<Worker> {
        cfg.validate()?;
        let consumer = Arc::new(kafka.consumer(&cfg.group, &[topics::IMAGES_REGISTERED], Arc::clone(&metrics))?);
        let publisher = if cfg.transactional {
            let id = cfg.transactional_id(TRANSACTIONAL_BUILT.fetch_add(1, Ordering::Relaxed));
            Publisher::Transactional(Transactional::new(&kafka, &id, Arc::clone(&consumer), Arc::clone(&metrics))?)
        } else {
            Publisher::Plain(Producer::new(&kafka, codec.clone(), Arc::clone(&metrics))?)
        };
        let ctx = Context {
            blobs,
            codec,
            base: Config::new(secret).within_memory(cfg.engine_memory, cfg.jobs),
            pseudonyms: cfg.pseudonyms,
            pool: EnginePool::new(cfg.jobs)?,
            metrics,
            fetches: Semaphore::new(cfg.fetch_concurrency),
            publisher,
            stop: Shutdown::new(),
        };
        Ok(Worker { consumer, ctx, cfg })
    }

    /// The worker's settings.
    pub fn config(&self) -> &WorkerConfig {
        &self.cfg
    }

    /// Consumes until `shutdown` fires, then finishes the batches in flight, stores and commits
    /// their offsets, flushes the producer and returns. An error means a batch could not be
    /// finished (its records will be redelivered to the group) or a transaction was fenced.
    pub async fn run_until_stopped(self, shutdown: Shutdown) -> Result<()> {
        let Worker { consumer, ctx, cfg } = self;
        let span =
            tracing::info_span!("anonymizer_worker", group = %cfg.group, transactional = cfg.transactional, jobs = ctx.pool.threads());
        async move {
            if let Publisher::Transactional(tx) = &ctx.publisher {
                tx.init().await?;
            }
            // Forward the caller's signal to the worker's own stop, which a failure can also fire.
            let stop = ctx.stop.clone();
            let forward = tokio::spawn(async move {
                shutdown.wait().await;
                stop.trigger();
            });
            tracing::info!(batch_size = cfg.batch_size, in_flight = cfg.max_batches_in_flight, "consuming");
            let result = consume::run(Arc::new(ctx), Arc::clone(&consumer), cfg).await;
            forward.abort();
            // Closing the consumer leaves the group and blocks until done, and librdkafka can hang
            // in it when a rebalance races the close (its `rd_kafka_assign` waits forever,
            // confluentinc/librdkafka#4884): on a thread of its own, waited for at most 10 s.
            alpes_platform::kafka::consumer::bounded("consumer close", move || drop(consumer)).await;
            tracing::info!(ok = result.is_ok(), "stopped");
            result
        }
        .instrument(span)
        .await
    }
}
