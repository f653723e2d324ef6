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

use crate::events::Message;
use crate::publish::{Offsets, Taken};
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

    /// Produces `messages` and commits `offsets` in one transaction, retrying abortable failures,
    /// unless the consumer has been through a rebalance since the batch was `taken`: then the
    /// batch is dropped, produced and committed nothing, as whoever owns its partitions now
    /// (maybe this consumer) fetches its records again from the committed offsets. Committing it
    /// would give those records a second committed outcome.
    pub async fn commit_batch(&self, seq: u64, stop: &Shutdown, messages: &[Message], offsets: &Offsets, taken: &Taken) -> Result<()> {
        let mut delay = FIRST_DELAY;
        let mut stopping_failures = 0;
        loop {
            let err = match self.attempt(messages, offsets, taken).await {
                Ok(true) => {
                    for m in messages {
                        self.metrics.events_produced.with_label_values(&[m.topic]).inc();
                    }
                    return Ok(());
                }
                Ok(false) => {
                    tracing::info!(
                        seq,
                        "a rebalance came after the batch was taken: dropped, its records are fetched again"
                    );
                    return Ok(());
                }
                Err(e) => e,
            };
            if is_fatal(&err) {
                return Err(Error::Transaction(err.to_string()));
            }
            let timeout = self.timeout;
            if let Err(abort) = self.blocking(move |p, _| p.abort_transaction(timeout)).await {
                if is_fatal(&abort) {
                    return Err(Error::Transaction(abort.to_string()));
                }
                tracing::debug!(seq, error = %abort, "abort after a failed transaction");
            }
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

    /// One transaction: false, producing nothing, when a rebalance came since the batch was taken.
    async fn attempt(&self, messages: &[Message], offsets: &Offsets, taken: &Taken) -> Result<bool, KafkaError> {
        if self.consumer.context().rebalances() != taken.generation {
            return Ok(false);
        }
        self.producer.begin_transaction()?;
        let sends = messages.iter().map(|m| {
            let record = FutureRecord::to(m.topic).key(m.key.as_str()).payload(m.payload.as_slice());
            self.producer.send(record, Timeout::After(self.timeout))
        });
        for sent in join_all(sends).await {
            sent.map_err(|(e, _)| e)?;
        }
        let offsets = offsets.clone();
        let group = taken.group.clone();
        let timeout = self.timeout;
        self.blocking(move |producer, _| {
            let mut tpl = TopicPartitionList::new();
            for (topic, partition, offset) in &offsets {
                tpl.add_partition_offset(topic, *partition, Offset::Offset(offset + 1))?;
            }
            tracing::debug!(partitions = tpl.count(), "offsets into the transaction");
            if tpl.count() > 0 {
                // The group metadata of when the batch was taken: a rebalance since makes the
                // group coordinator refuse these offsets, and the transaction aborts.
                let group = group.ok_or(KafkaError::ConsumerCommit(RDKafkaErrorCode::State))?;
                producer.send_offsets_to_transaction(&tpl, &group, timeout)?;
            }
            producer.commit_transaction(timeout)
        })
        .await?;
        Ok(true)
    }

    /// Waits until every produced message is delivered (on stop).
    pub async fn flush(&self) -> Result<()> {
        let timeout = self.timeout;
        self.blocking(move |p, _| p.flush(timeout)).await.map_err(Error::from)
    }
}
