//! The one consume loop: every service that projects topics into a store
//! (billing's ledger, ingest's outcome follower, the query side's
//! materializer and audit projector) plugs a [`Projection`] into
//! [`run_projection`], which does the rest the same way for all of them:
//!
//! 1. take the next batch of fetched messages (up to [`Projection::BATCH`])
//!    of the projection's [`Projection::TOPICS`];
//! 2. decode each one; a message that does not decode is poison: logged by
//!    reason (never payload), counted in `alpes_rejections_total` and skipped,
//!    so it can never stop a partition;
//! 3. apply the batch (the projection retries with [`crate::retry::retry`]);
//! 4. only then store the batch's offsets, which librdkafka commits; a crash
//!    before that replays the batch, which every projection applies
//!    idempotently (by event id), and settle the batch's outbox ids
//!    ([`super::outbox`]: on the development broker, the events kept until
//!    their consumers applied them);
//! 5. on a partition revoke the consumer commits what is stored, and on
//!    `stop` the loop commits once more and returns.

use super::consumer::{commit_and_close, next_batch, store_offsets};
use super::Kafka;
use crate::metrics::Metrics;
use crate::shutdown::Shutdown;
use async_trait::async_trait;
use rdkafka::Message;
use std::sync::Arc;

/// What a consume loop does with its messages.
#[async_trait]
pub trait Projection: Send + Sync {
    /// What one message becomes.
    type Item: Send;

    /// The topics it reads.
    const TOPICS: &'static [&'static str];

    /// The most messages applied in one batch (one store transaction).
    const BATCH: usize;

    /// Consumer settings of its own (librdkafka names and values), e.g. a longer
    /// `max.poll.interval.ms` for a projection whose batches take minutes.
    const CONSUMER_PROPS: &'static [(&'static str, &'static str)] = &[];

    /// Decodes one message of `topic`: `Ok(None)` when it asks nothing of
    /// this projection, `Err(reason)` (a stable code) when it is poison.
    async fn decode(&self, topic: &str, payload: &[u8]) -> Result<Option<Self::Item>, &'static str>;

    /// Applies a non-empty batch, in order, retrying until it is in; false if
    /// `stop` came first (the batch comes again after a restart).
    async fn apply(&self, batch: Vec<Self::Item>, stop: &Shutdown) -> bool;
}

/// Runs `projection` over its topics in consumer group `group` until `stop`; offsets are
/// stored only after their batch is applied.
pub async fn run_projection<P: Projection>(
    kafka: &Kafka,
    group: &str,
    metrics: Arc<Metrics>,
    projection: &P,
    stop: &Shutdown,
) -> crate::Result<()> {
    let consumer = kafka.consumer_with(group, P::TOPICS, Arc::clone(&metrics), P::CONSUMER_PROPS)?;
    while let Some(messages) = next_batch(&consumer, P::BATCH, stop).await {
        let mut batch = Vec::with_capacity(messages.len());
        let mut kept = Vec::new();
        for msg in &messages {
            kept.extend(super::outbox::id_of(msg));
            match projection.decode(msg.topic(), msg.payload().unwrap_or_default()).await {
                Ok(Some(item)) => batch.push(item),
                Ok(None) => {}
                Err(reason) => {
                    tracing::warn!(
                        reason,
                        group,
                        topic = msg.topic(),
                        partition = msg.partition(),
                        offset = msg.offset(),
                        "undecodable message skipped"
                    );
                    metrics.rejections.with_label_values(&[reason]).inc();
                }
            }
        }
        if !batch.is_empty() && !projection.apply(batch, stop).await {
            break;
        }
        store_offsets(&consumer, &messages);
        kafka.outbox().settle(group, kept).await;
    }
    commit_and_close(consumer).await;
    Ok(())
}
