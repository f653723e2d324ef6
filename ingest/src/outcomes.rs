//! Follows `alpes.images.anonymized` and `alpes.images.rejected` and closes the
//! matching requests in the ingest store, so [`crate::republish`] knows which
//! requests still wait for an outcome.

use alpes_platform::kafka::Kafka;
use alpes_platform::metrics::Metrics;
use alpes_platform::shutdown::Shutdown;
use alpes_platform::store::{IngestStore, RequestState};
use alpes_schemas::{topics, Codec, ImagenAnonimizada, ImagenRechazada};
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::Message;
use std::sync::Arc;

/// The consumer group of the outcome follower.
pub const GROUP: &str = "alpes-ingest-outcomes";

/// Consumes outcomes until `shutdown`; offsets are stored after the store is updated.
pub async fn run_until_stopped(
    kafka: Arc<Kafka>,
    codec: Codec,
    store: Arc<dyn IngestStore>,
    metrics: Arc<Metrics>,
    shutdown: Shutdown,
) -> alpes_platform::Result<()> {
    let consumer = kafka.consumer(GROUP, &[topics::IMAGES_ANONYMIZED, topics::IMAGES_REJECTED], metrics)?;
    loop {
        let msg = tokio::select! {
            _ = shutdown.wait() => break,
            m = consumer.recv() => m,
        };
        let msg = match msg {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "outcome consumer");
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                continue;
            }
        };
        let payload = msg.payload().unwrap_or_default();
        let outcome = if msg.topic() == topics::IMAGES_ANONYMIZED {
            codec
                .decode::<ImagenAnonimizada>(payload)
                .await
                .map(|e| Some((e.request_id, RequestState::Anonymized)))
        } else {
            codec
                .decode::<ImagenRechazada>(payload)
                .await
                .map(|e| e.request_id.map(|r| (r, RequestState::Rejected)))
        };
        match outcome {
            Ok(Some((request_id, state))) => {
                // A store outage is retried by not storing the offset: the message comes again after a restart.
                if let Err(e) = store.set_state(&request_id, state).await {
                    tracing::warn!(error = %e, "cannot record an outcome");
                    continue;
                }
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(
                reason = e.reason(),
                topic = msg.topic(),
                offset = msg.offset(),
                "undecodable outcome skipped"
            ),
        }
        if let Err(e) = consumer.store_offset_from_message(&msg) {
            tracing::warn!(error = %e, "cannot store offset");
        }
    }
    if let Err(e) = consumer.commit_consumer_state(CommitMode::Sync) {
        tracing::debug!(error = %e, "final commit");
    }
    Ok(())
}
