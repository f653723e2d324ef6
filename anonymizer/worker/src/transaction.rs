//! The transactional producer (`--transactional`): `transactional.id` = `<group>-<instance>-<n>`,
//! `init_transactions` once, then per batch `begin_transaction`, the outputs,
//! `send_offsets_to_transaction` with the consumer's group metadata, `commit_transaction`.
//! An abortable failure aborts and retries the whole batch; a fatal one (the producer was fenced)
//! stops the worker. librdkafka's transactional calls block, so they run on blocking threads.

use std::sync::Arc;
use std::time::Duration;

use alpes_platform::kafka::producer::{producer_config, DEFAULT_LINGER};
use alpes_platform::kafka::{GroupConsumer, Kafka};
use alpes_platform::metrics::Metrics;
use alpes_platform::shutdown::Shutdown;
use futures::future::join_all;
use rdkafka::consumer::Consumer;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer as _};
use rdkafka::util::Timeout;
use rdkafka::{Offset, TopicPartitionList};

use crate::produced::{highest_offsets, Produced};
use crate::{Error, Result};

const FIRST_DELAY: Duration = Duration::from_millis(100);
const MAX_DELAY: Duration = Duration::from_secs(5);
/// Attempts left to a failing transaction once the worker is stopping.
const TRIES_WHEN_STOPPING: u32 = 2;

/// A transactional producer bound to the worker's consumer.
pub struct Transactional {
    producer: FutureProducer,
    consumer: Arc<GroupConsumer>,
    timeout: Duration,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Transactional {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transactional")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

fn is_fatal(e: &KafkaError) -> bool {
    matches!(e, KafkaError::Transaction(r) if r.is_fatal()) || e.rdkafka_error_code() == Some(RDKafkaErrorCode::Fatal)
}

impl Transactional {
    /// A transactional producer with `transactional_id` on `kafka`'s brokers.
    pub fn new(kafka: &Kafka, transactional_id: &str, consumer: Arc<GroupConsumer>, metrics: Arc<Metrics>) -> Result<Transactional> {
        let timeout = kafka.delivery_timeout();
        let mut cfg = producer_config(kafka, timeout, DEFAULT_LINGER);
        cfg.set("transactional.id", transactional_id);
        let producer: FutureProducer = cfg.create()?;
        Ok(Transactional {
            producer,
            consumer,
            timeout,
            metrics,
        })
    }

    /// Runs a blocking librdkafka call off the async threads.
    async fn blocking<T, F>(&self, call: F) -> Result<T, KafkaError>
    where
        T: Send + 'static,
        F: FnOnce(&FutureProducer, &GroupConsumer) -> Result<T, KafkaError> + Send + 'static,
    {
        let (producer, consumer) = (self.producer.clone(), Arc::clone(&self.consumer));
        tokio::task::spawn_blocking(move || call(&producer, &consumer))
            .await
            .map_err(|_| KafkaError::Canceled)?
    }

    /// Registers the `transactional.id` with the broker, fencing any earlier producer with it and
    /// aborting the transaction it left open.
    pub async fn init(&self) -> Result<()> {
        let timeout = self.timeout;
        self.blocking(move |p, _| p.init_transactions(timeout))
            .await
            .map_err(|e| Error::Transaction(e.to_string()))
    }

    /// Produces the messages of `produced` and commits their offsets in one transaction, retrying
    /// abortable failures. Only the records whose partition is still in the epoch they were taken
    /// in go into it: a partition revoked or assigned since is fetched again from its committed
    /// offset by its owner (maybe this consumer), and committing its records here too would give
    /// them a second committed outcome. A rebalance during the transaction aborts it (the group
    /// coordinator refuses offsets of an older generation, or the epochs are checked again right
    /// before the offsets go in), and the batch is tried again without the records that moved.
    /// Says which records were committed.
    pub async fn commit_batch(&self, seq: u64, stop: &Shutdown, produced: &[Produced]) -> Result<Vec<bool>> {
        let mut delay = FIRST_DELAY;
        let mut stopping_failures = 0;
        loop {
            let ours: Vec<bool> = produced.iter().map(|p| self.still_ours(p)).collect();
            let current: Vec<&Produced> = produced.iter().zip(&ours).filter(|(_, o)| **o).map(|(p, _)| p).collect();
            if current.len() < produced.len() {
                tracing::info!(
                    seq,
                    dropped = produced.len() - current.len(),
                    "records whose partition changed hands since they were taken are dropped: they are fetched again"
                );
            }
            if current.is_empty() {
                return Ok(ours);
            }
            let err = match self.attempt(&current).await {
                Ok(true) => {
                    for m in current.iter().flat_map(|p| &p.messages) {
                        self.metrics.events_produced.with_label_values(&[m.topic]).inc();
                    }
                    return Ok(ours);
                }
                Ok(false) => None,
                Err(e) => Some(e),
            };
            if let Some(err) = &err {
                if is_fatal(err) {
                    return Err(Error::Transaction(err.to_string()));
                }
            }
            let timeout = self.timeout;
            if let Err(abort) = self.blocking(move |p, _| p.abort_transaction(timeout)).await {
                if is_fatal(&abort) {
                    return Err(Error::Transaction(abort.to_string()));
                }
                tracing::debug!(seq, error = %abort, "abort after a failed transaction");
            }
            let Some(err) = err else {
                // A partition changed hands during the transaction: again, without its records.
                tracing::info!(seq, "a rebalance came during the transaction: aborted, tried again");
                continue;
            };
            if stop.is_triggered() {
                stopping_failures += 1;
                if stopping_failures >= TRIES_WHEN_STOPPING {
                    return Err(Error::Batch {
                        seq,
                        reason: err.to_string(),
                    });
                }
            }
            tracing::warn!(seq, error = %err, "transaction aborted; retrying the batch");
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = stop.wait() => {}
            }
            delay = (delay * 2).min(MAX_DELAY);
        }
    }

    /// Whether the record's partition is still in the epoch it was taken in.
    fn still_ours(&self, p: &Produced) -> bool {
        self.consumer.context().epoch(&p.topic, p.partition) == p.epoch
    }

    /// One transaction of `current`'s messages and offsets: false (to abort) if a partition of
    /// theirs changed hands before the offsets went in.
    async fn attempt(&self, current: &[&Produced]) -> Result<bool, KafkaError> {
        self.producer.begin_transaction()?;
        let sends = current.iter().flat_map(|p| &p.messages).map(|m| {
            let record = FutureRecord::to(m.topic).key(m.key.as_str()).payload(m.payload.as_slice());
            self.producer.send(record, Timeout::After(self.timeout))
        });
        for sent in join_all(sends).await {
            sent.map_err(|(e, _)| e)?;
        }
        let offsets = highest_offsets(current.iter().map(|p| (p.topic.as_str(), p.partition, p.offset)));
        let epochs: Vec<(String, i32, u64)> = current.iter().map(|p| (p.topic.clone(), p.partition, p.epoch)).collect();
        let timeout = self.timeout;
        self.blocking(move |producer, consumer| {
            // The group metadata from now on, checked against the epochs: a rebalance after this
            // point makes the group coordinator refuse the offsets, and the transaction aborts.
            let group = consumer
                .group_metadata()
                .ok_or(KafkaError::ConsumerCommit(RDKafkaErrorCode::State))?;
            if epochs.iter().any(|(t, p, e)| consumer.context().epoch(t, *p) != *e) {
                return Ok(false);
            }
            let mut tpl = TopicPartitionList::new();
            for (topic, partition, offset) in &offsets {
                tpl.add_partition_offset(topic, *partition, Offset::Offset(offset + 1))?;
            }
            tracing::debug!(partitions = tpl.count(), "offsets into the transaction");
            producer.send_offsets_to_transaction(&tpl, &group, timeout)?;
            producer.commit_transaction(timeout)?;
            Ok(true)
        })
        .await
    }

    /// Waits until every produced message is delivered (on stop).
    pub async fn flush(&self) -> Result<()> {
        let timeout = self.timeout;
        self.blocking(move |p, _| p.flush(timeout)).await.map_err(Error::from)
    }
}
