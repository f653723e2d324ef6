//! The event producer: idempotent, `acks=all`, lz4, and every send awaits the
//! broker's acknowledgement so a caller knows the event is durable.

use super::{ClientKind, Kafka};
use crate::metrics::Metrics;
use crate::{Error, Result};
use alpes_schemas::{Codec, Event};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer as _};
use rdkafka::util::Timeout;
use std::sync::Arc;
use std::time::Duration;

/// How long a producer holds records to batch them, unless told otherwise.
pub const DEFAULT_LINGER: Duration = Duration::from_millis(2);

/// Produces Avro-encoded events, keyed, to their topics.
#[derive(Clone)]
pub struct Producer {
    inner: FutureProducer,
    codec: Codec,
    timeout: Duration,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer").field("codec", &self.codec.describe()).finish()
    }
}

impl Producer {
    /// An idempotent producer on `kafka` that holds records up to 2 ms to batch them.
    pub fn new(kafka: &Kafka, codec: Codec, metrics: Arc<Metrics>) -> Result<Producer> {
        Self::with_linger(kafka, codec, metrics, DEFAULT_LINGER)
    }

    /// An idempotent producer on `kafka` that holds records up to `linger` to
    /// batch them (`linger.ms`; a pass-through property still wins).
    pub fn with_linger(kafka: &Kafka, codec: Codec, metrics: Arc<Metrics>, linger: Duration) -> Result<Producer> {
        let timeout = kafka.delivery_timeout();
        let inner: FutureProducer = producer_config(kafka, timeout, linger).create()?;
        Ok(Producer {
            inner,
            codec,
            timeout,
            metrics,
        })
    }

    /// The codec events are encoded with.
    pub fn codec(&self) -> &Codec {
        &self.codec
    }

    /// Encodes `event` and produces it keyed by `key`; resolves once the broker has it.
    pub async fn send<E: Event>(&self, key: &str, event: &E) -> Result<()> {
        let payload = self.codec.encode(event).await?;
        self.send_raw(E::TOPIC, key, &payload).await
    }

    /// Produces already-encoded bytes; resolves once the broker has them.
    pub async fn send_raw(&self, topic: &str, key: &str, payload: &[u8]) -> Result<()> {
        let record = FutureRecord::to(topic).key(key).payload(payload);
        match self.inner.send(record, Timeout::After(self.timeout)).await {
            Ok(_) => {
                self.metrics.events_produced.with_label_values(&[topic]).inc();
                Ok(())
            }
            Err((e, _)) => Err(Error::BrokerUnavailable(e.to_string())),
        }
    }

    /// Waits for every queued message to be delivered (on shutdown).
    pub fn flush(&self, timeout: Duration) -> Result<()> {
        self.inner.flush(Timeout::After(timeout)).map_err(Error::from)
    }
}

/// The producer settings: idempotence, `acks=all`, lz4, a bounded delivery
/// time and `linger`; pass-through properties win over all of them.
pub fn producer_config(kafka: &Kafka, timeout: Duration, linger: Duration) -> rdkafka::ClientConfig {
    let timeout = timeout.as_millis().to_string();
    let linger = linger.as_millis().to_string();
    kafka.config_for(
        ClientKind::Producer,
        &[
            ("enable.idempotence", "true"),
            ("acks", "all"),
            ("compression.type", "lz4"),
            ("linger.ms", &linger),
            ("message.timeout.ms", &timeout),
        ],
    )
}
