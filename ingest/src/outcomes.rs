//! Follows `alpes.images.anonymized` and `alpes.images.rejected` and closes the
//! matching requests in the ingest store, so [`crate::republish`] knows which
//! requests still wait for an outcome.
//!
//! The ingest store is per process (SQLite in the data dir), and each ingest
//! replica must close its own requests, so every replica reads every outcome:
//! its consumer group is its own ([`group`]), never one shared by the
//! replicas, which would hand each outcome to one of them only. An outcome of
//! another replica's request closes nothing here and is skipped.

use alpes_platform::kafka::consumer::{commit_on_stop, next_batch, retry_until_stopped, store_offsets};
use alpes_platform::kafka::Kafka;
use alpes_platform::metrics::Metrics;
use alpes_platform::shutdown::Shutdown;
use alpes_platform::store::{IngestStore, RequestState};
use alpes_schemas::{topics, Codec, ImagenAnonimizada, ImagenRechazada};
use rdkafka::message::BorrowedMessage;
use rdkafka::Message;
use std::sync::Arc;

/// The prefix of the outcome follower's consumer group.
pub const GROUP_PREFIX: &str = "alpes-ingest-outcomes";

/// The consumer group of the follower of the ingest store named `instance`
/// (one per data dir): `alpes-ingest-outcomes-<instance>`.
pub fn group(instance: &str) -> String {
    format!("{GROUP_PREFIX}-{instance}")
}

/// The most outcomes recorded in one store transaction.
const BATCH: usize = 512;

/// The request an outcome closes, and how.
async fn outcome(codec: &Codec, msg: &BorrowedMessage<'_>) -> alpes_schemas::Result<Option<(String, RequestState)>> {
    let payload = msg.payload().unwrap_or_default();
    if msg.topic() == topics::IMAGES_ANONYMIZED {
        let e = codec.decode::<ImagenAnonimizada>(payload).await?;
        Ok(Some((e.request_id, RequestState::Anonymized)))
    } else {
        let e = codec.decode::<ImagenRechazada>(payload).await?;
        Ok(e.request_id.map(|r| (r, RequestState::Rejected)))
    }
}

/// Consumes outcomes in `group` (see [`group`]) until `shutdown`; offsets are stored after the
/// store is updated.
pub async fn run_until_stopped(
    kafka: Arc<Kafka>,
    codec: Codec,
    store: Arc<dyn IngestStore>,
    metrics: Arc<Metrics>,
    group: &str,
    shutdown: Shutdown,
) -> alpes_platform::Result<()> {
    let consumer = kafka.consumer(group, &[topics::IMAGES_ANONYMIZED, topics::IMAGES_REJECTED], metrics)?;
    while let Some(messages) = next_batch(&consumer, BATCH, &shutdown).await {
        if messages.is_empty() {
            continue;
        }
        let mut changes = Vec::with_capacity(messages.len());
        for msg in &messages {
            match outcome(&codec, msg).await {
                Ok(Some(change)) => changes.push(change),
                Ok(None) => {}
                Err(e) => tracing::warn!(
                    reason = e.reason(),
                    topic = msg.topic(),
                    offset = msg.offset(),
                    "undecodable outcome skipped"
                ),
            }
        }
        // A store outage is retried here: storing a later batch's offsets would commit past this one.
        if retry_until_stopped(&shutdown, "record outcomes", || store.set_states(changes.clone()))
            .await
            .is_none()
        {
            break;
        }
        store_offsets(&consumer, &messages);
    }
    commit_on_stop(&consumer);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_instance_follows_outcomes_in_a_group_of_its_own() {
        assert_eq!(group("ingest-0"), "alpes-ingest-outcomes-ingest-0");
        assert_ne!(group("a"), group("b"));
    }
}
