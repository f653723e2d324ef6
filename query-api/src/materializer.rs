//! The materializer: consumes the image, user and usage topics into the
//! catalog's query-first tables, one store transaction per fetched batch.
//!
//! Offsets are stored only after a batch is applied; a crash replays the
//! batch and the catalog skips the event ids it already has. A message that
//! does not decode is counted, logged by reason (never payload) and skipped:
//! it cannot stop a partition.

use alpes_platform::kafka::consumer::{commit_on_stop, next_batch, retry_until_stopped, store_offsets};
use alpes_platform::kafka::Kafka;
use alpes_platform::metrics::Metrics;
use alpes_platform::shutdown::Shutdown;
use alpes_platform::store::{CatalogEvent, CatalogStore};
use alpes_schemas::{topics, Codec, EventoUsoDatos, ImagenAnonimizada, ImagenRechazada, ImagenRegistrada, UsuarioRegistrado};
use rdkafka::message::BorrowedMessage;
use rdkafka::Message;
use std::sync::Arc;

/// The consumer group of the materializer.
pub const GROUP: &str = "alpes-query-materializer";

/// The topics it reads.
pub const TOPICS: [&str; 5] = [
    topics::IMAGES_REGISTERED,
    topics::IMAGES_ANONYMIZED,
    topics::IMAGES_REJECTED,
    topics::USERS,
    topics::USAGE,
];

/// The most events applied in one store transaction.
pub const BATCH: usize = 1024;

/// Decodes `msg` by its topic; `Err` is a reason code.
pub async fn decode(codec: &Codec, msg: &BorrowedMessage<'_>) -> Result<CatalogEvent, &'static str> {
    let payload = msg.payload().unwrap_or_default();
    let event = match msg.topic() {
        topics::IMAGES_REGISTERED => CatalogEvent::Registered(codec.decode::<ImagenRegistrada>(payload).await.map_err(|e| e.reason())?),
        topics::IMAGES_ANONYMIZED => {
            CatalogEvent::Anonymized(Box::new(codec.decode::<ImagenAnonimizada>(payload).await.map_err(|e| e.reason())?))
        }
        topics::IMAGES_REJECTED => CatalogEvent::Rejected(codec.decode::<ImagenRechazada>(payload).await.map_err(|e| e.reason())?),
        topics::USERS => CatalogEvent::User(codec.decode::<UsuarioRegistrado>(payload).await.map_err(|e| e.reason())?),
        topics::USAGE => CatalogEvent::Usage(codec.decode::<EventoUsoDatos>(payload).await.map_err(|e| e.reason())?),
        _ => return Err("unexpected_topic"),
    };
    Ok(event)
}

/// Consumes `TOPICS` in `group` into `catalog` until `shutdown`.
pub async fn run_until_stopped(
    kafka: Arc<Kafka>,
    codec: Codec,
    catalog: Arc<dyn CatalogStore>,
    metrics: Arc<Metrics>,
    group: &str,
    shutdown: Shutdown,
) -> alpes_platform::Result<()> {
    let consumer = kafka.consumer(group, &TOPICS, Arc::clone(&metrics))?;
    while let Some(messages) = next_batch(&consumer, BATCH, &shutdown).await {
        let mut batch = Vec::with_capacity(messages.len());
        for msg in &messages {
            match decode(&codec, msg).await {
                Ok(e) => batch.push(e),
                Err(reason) => {
                    tracing::warn!(reason, topic = msg.topic(), "undecodable event skipped by the materializer");
                    metrics.rejections.with_label_values(&[reason]).inc();
                }
            }
        }
        if !batch.is_empty() {
            let applied = retry_until_stopped(&shutdown, "apply a catalog batch", || catalog.apply(batch.clone())).await;
            if applied.is_none() {
                break; // shutdown first: the batch comes again after a restart
            }
        }
        store_offsets(&consumer, &messages);
    }
    commit_on_stop(&consumer);
    Ok(())
}
