//! The event producer: idempotent, `acks=all`, lz4, and every send awaits the
//! broker's acknowledgement so a caller knows the event is durable.

use super::Kafka;
use crate::metrics::Metrics;
use crate::{Error, Result};
use alpes_schemas::{Codec, Event};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer as _};
use rdkafka::util::Timeout;
use std::sync::Arc;
use std::time::Duration;

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
    /// An idempotent producer on `kafka`.
    pub fn new(kafka: &Kafka, codec: Codec, metrics: Arc<Metrics>) -> Result<Producer> {
        let timeout = kafka.delivery_timeout();
        let inner: FutureProducer = producer_config(kafka, timeout).create()?;
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

/// The producer settings: idempotence, `acks=all`, lz4, a bounded delivery time.
pub fn producer_config(kafka: &Kafka, timeout: Duration) -> rdkafka::ClientConfig {
    let mut cfg = kafka.client_config();
    cfg.set("enable.idempotence", "true")
        .set("acks", "all")
        .set("compression.type", "lz4")
        .set("linger.ms", "2")
        .set("message.timeout.ms", timeout.as_millis().to_string());
    cfg
}
