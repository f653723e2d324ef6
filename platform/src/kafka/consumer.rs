//! Consumer set-up for at-least-once processing.
//!
//! - Offsets are stored by the application only after its work is done
//!   (`enable.auto.offset.store=false`); librdkafka commits stored offsets.
//! - On a partition revoke, the stored offsets are committed synchronously,
//!   so the next owner starts right after the last finished message.
//! - Statistics feed the per-partition consumer lag gauge.
//! - Every partition revoked or assigned gets a new epoch
//!   ([`CommitOnRevoke::epoch`]), so a consume loop can tell records taken
//!   before the partition changed hands from records taken after: its next
//!   owner, maybe this consumer again, fetches from the committed offset. A
//!   partition a cooperative rebalance leaves in place keeps its epoch, and
//!   its fetch goes on.
//! - The first assignment marks the consumer's readiness ticket
//!   ([`crate::readiness`]), so `/ready` knows it has joined its group.

use super::{ClientKind, Kafka};
use crate::metrics::Metrics;
use crate::Result;
use futures::FutureExt;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::BorrowedMessage;
use rdkafka::ClientContext;
use std::sync::Arc;

/// The next message `c` receives before `deadline`, or `None` once it has passed. A consumer
/// error (the group still joining, a fetch retried) is logged and reading goes on: for tools and
/// tests that read a topic up to what they expect in it.
pub async fn next_before<C: ConsumerContext + 'static>(c: &StreamConsumer<C>, deadline: std::time::Instant) -> Option<BorrowedMessage<'_>> {
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return None;
        }
        match tokio::time::timeout(left, c.recv()).await {
            Err(_) => return None,
            Ok(Ok(m)) => return Some(m),
            Ok(Err(e)) => tracing::warn!(error = %e, "consumer error, still reading"),
        }
    }
}

/// The consumer context: commits on revoke, exports lag and marks readiness.
#[derive(Debug, Clone)]
pub struct CommitOnRevoke {
    group: String,
    metrics: Arc<Metrics>,
    ready: Option<Arc<crate::readiness::Ticket>>,
    epochs: Arc<std::sync::Mutex<std::collections::HashMap<(String, i32), u64>>>,
}

impl CommitOnRevoke {
    /// How many times `topic`/`partition` has been revoked from or assigned to this consumer.
    pub fn epoch(&self, topic: &str, partition: i32) -> u64 {
        let epochs = self.epochs.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        epochs.get(&(topic.to_owned(), partition)).copied().unwrap_or(0)
    }

    fn bump(&self, parts: &rdkafka::TopicPartitionList) {
        let mut epochs = self.epochs.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for p in parts.elements() {
            *epochs.entry((p.topic().to_owned(), p.partition())).or_insert(0) += 1;
        }
    }
}

impl ClientContext for CommitOnRevoke {
    // Parsed loosely (not into rdkafka's `Statistics`, which rejects some
    // librdkafka versions' JSON): only topics → partitions → consumer_lag is read.
    fn stats_raw(&self, statistics: &[u8]) {
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(statistics) else {
            return;
        };
        let Some(topics) = v.get("topics").and_then(|t| t.as_object()) else {
            return;
        };
        for (topic, t) in topics {
            let Some(parts) = t.get("partitions").and_then(|p| p.as_object()) else {
                continue;
            };
            for (partition, p) in parts {
                let lag = p.get("consumer_lag").and_then(serde_json::Value::as_i64).unwrap_or(-1);
                // -1 is librdkafka's "unknown" and the -1 partition is its internal UA partition.
                if lag >= 0 && partition != "-1" {
                    self.metrics
                        .consumer_lag
                        .with_label_values(&[self.group.as_str(), topic.as_str(), partition.as_str()])
                        .set(lag);
                }
            }
        }
    }
}

impl ConsumerContext for CommitOnRevoke {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(parts) = rebalance {
            self.bump(parts);
            if parts.count() > 0 {
                // Nothing stored yet is not an error worth more than a debug line.
                if let Err(e) = consumer.commit_consumer_state(CommitMode::Sync) {
                    tracing::debug!(error = %e, group = %self.group, "commit on revoke");
                }
            }
        }
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(parts) = rebalance {
            self.bump(parts);
            if let Some(ticket) = &self.ready {
                tracing::info!(group = %self.group, partitions = parts.count(), "joined the consumer group");
                ticket.joined();
            }
        }
    }
}

/// A group consumer with [`CommitOnRevoke`].
pub type GroupConsumer = StreamConsumer<CommitOnRevoke>;

impl Kafka {
    /// A consumer in `group`, subscribed to `topics`, that commits only offsets
    /// the application stored.
    pub fn consumer(&self, group: &str, topics: &[&str], metrics: Arc<Metrics>) -> Result<GroupConsumer> {
        self.consumer_with(group, topics, metrics, &[])
    }

    /// As [`Kafka::consumer`], with `extra` defaults of this consumer's own (the operator's
    /// `--kafka-consumer-prop`s still win).
    pub fn consumer_with(&self, group: &str, topics: &[&str], metrics: Arc<Metrics>, extra: &[(&str, &str)]) -> Result<GroupConsumer> {
        let mut defaults = vec![
            ("group.id", group),
            ("enable.auto.commit", "true"),
            ("auto.commit.interval.ms", "1000"),
            ("enable.auto.offset.store", "false"),
            ("auto.offset.reset", "earliest"),
            ("statistics.interval.ms", "5000"),
            ("queued.max.messages.kbytes", "16384"),
        ];
        if self.mock().is_some() {
            // The mock coordinator waits up to the session timeout for members after a
            // leave or join; a short one keeps development rebalances quick.
            defaults.push(("session.timeout.ms", "6000"));
            // The mock broker answers a fetch on an empty partition only when the full
            // wait is over (a real broker answers as soon as data arrives): the 500 ms
            // default would put half a second on every hop of the pipeline.
            defaults.push(("fetch.wait.max.ms", "10"));
        }
        defaults.extend_from_slice(extra);
        let cfg = self.config_for(ClientKind::Consumer, &defaults);
        let context = CommitOnRevoke {
            group: group.to_owned(),
            metrics,
            ready: self.readiness().ticket(group).map(Arc::new),
            epochs: Arc::default(),
        };
        let consumer: GroupConsumer = cfg.create_with_context(context)?;
        consumer.subscribe(topics)?;
        Ok(consumer)
    }
}

/// Waits for the next message, then takes whatever else is already fetched,
/// up to `max` in all, so a consume loop can handle them in one store
/// transaction. `None` once `shutdown` fires. Receive errors are logged and
/// dropped from the batch; a batch of only errors comes back empty after a
/// short pause.
pub async fn next_batch<'c>(
    consumer: &'c GroupConsumer,
    max: usize,
    shutdown: &crate::shutdown::Shutdown,
) -> Option<Vec<BorrowedMessage<'c>>> {
    let first = tokio::select! {
        _ = shutdown.wait() => return None,
        m = consumer.recv() => m,
    };
    let mut received: Vec<std::result::Result<BorrowedMessage<'c>, KafkaError>> = vec![first];
    while received.len() < max.max(1) {
        match consumer.recv().now_or_never() {
            Some(m) => received.push(m),
            None => break,
        }
    }
    let mut batch = Vec::with_capacity(received.len());
    for m in received {
        match m {
            Ok(m) => batch.push(m),
            Err(e) => tracing::warn!(error = %e, "consumer"),
        }
    }
    if batch.is_empty() {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    Some(batch)
}

/// Stores the offsets of `messages`, whose work is done; librdkafka commits them.
pub fn store_offsets(consumer: &GroupConsumer, messages: &[BorrowedMessage<'_>]) {
    for msg in messages {
        if let Err(e) = consumer.store_offset_from_message(msg) {
            tracing::warn!(error = %e, "cannot store offset");
        }
    }
}

/// How long a stopping consume loop waits for its final commit and close.
pub const FINAL_COMMIT_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The last synchronous commit of a consume loop that is stopping, then the consumer's close,
/// run by [`bounded`]: librdkafka's synchronous commit waits without a timeout, and with no
/// broker to answer it would hold the process forever.
pub async fn commit_and_close(consumer: GroupConsumer) {
    bounded("final commit", move || {
        if let Err(e) = consumer.commit_consumer_state(CommitMode::Sync) {
            tracing::debug!(error = %e, "final commit");
        }
        drop(consumer);
    })
    .await;
}

/// Runs `work` (a blocking librdkafka call of a stopping consumer) on a thread of its own and
/// waits for it at most [`FINAL_COMMIT_WAIT`]; past that the caller goes on without it (the
/// offsets stored since the last auto-commit are read again after a restart, which every
/// consumer tolerates) and the thread is left to finish or not. Not a tokio blocking task: a
/// runtime waits for those when it shuts down.
pub async fn bounded(what: &'static str, work: impl FnOnce() + Send + 'static) {
    let (done, finished) = tokio::sync::oneshot::channel::<()>();
    let spawned = std::thread::Builder::new().name("alpes-final-commit".into()).spawn(move || {
        work();
        let _ = done.send(());
    });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, what, "no thread for it; stopping without it");
        return;
    }
    if tokio::time::timeout(FINAL_COMMIT_WAIT, finished).await.is_err() {
        tracing::warn!(
            what,
            wait_s = FINAL_COMMIT_WAIT.as_secs(),
            "did not finish (is the broker reachable?); stopping without it"
        );
    }
}
