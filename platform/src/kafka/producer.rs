//! The event producer: idempotent, `acks=all`, lz4 (none on the development
//! broker), batching for a few ms, and every send awaits the
//! broker's acknowledgement so a caller knows the event is durable.

use super::outbox::{Outbox, HEADER};
use super::{ClientKind, Kafka};
use crate::metrics::Metrics;
use crate::{Error, Result};
use alpes_schemas::{Codec, Event};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer as _};
use rdkafka::util::Timeout;
use std::sync::Arc;
use std::time::Duration;

/// How long a producer holds records to batch them, unless told otherwise: 5 ms, librdkafka's
/// default and Apache Kafka's since 4.0 (KIP-1030). The pipeline's own producers (the anonymizer
/// worker's) use it: a batch per partition every few ms costs the brokers, and every consumer
/// fetch, far less than a record at a time (on the development broker, over a quarter less CPU per
/// image in `bench/load/run.sh`). A request that waits on its send uses [`REQUEST_LINGER`].
pub const DEFAULT_LINGER: Duration = Duration::from_millis(5);

/// The linger of the producer that requests wait on (an upload on its `ImagenRegistrada`, then
/// on its audit entry): 1 ms. Unloaded, an upload takes about 3 ms with it, 1 ms with none and
/// 11 ms with [`DEFAULT_LINGER`]; under the pipeline bench's load it carried 1,339 files/s at
/// 1.25 ms of CPU each, against 1,107 at 1.52 ms with none (BENCHMARKS.md, issue 15).
pub const REQUEST_LINGER: Duration = Duration::from_millis(1);

/// Produces Avro-encoded events, keyed, to their topics.
#[derive(Clone)]
pub struct Producer {
    inner: FutureProducer,
    codec: Codec,
    timeout: Duration,
    metrics: Arc<Metrics>,
    outbox: Arc<Outbox>,
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer").field("codec", &self.codec.describe()).finish()
    }
}

impl Producer {
    /// An idempotent producer on `kafka` that holds records up to [`DEFAULT_LINGER`] to batch them.
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
            outbox: kafka.outbox_handle(),
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

    /// Produces already-encoded bytes; resolves once the broker has them (and,
    /// on the development broker, once the outbox has them if it keeps the topic).
    pub async fn send_raw(&self, topic: &str, key: &str, payload: &[u8]) -> Result<()> {
        let kept = self.outbox.keep(topic, key, payload).await?;
        let sent = self.produce(topic, key, payload, kept).await;
        if let (Err(_), Some(id)) = (&sent, kept) {
            // Not sent means not done: the event must not come back at the next start.
            self.outbox.discard(id).await;
        }
        sent
    }

    /// Produces `payload`, carrying `outbox_id` in its headers if it has one.
    pub(crate) async fn produce(&self, topic: &str, key: &str, payload: &[u8], outbox_id: Option<i64>) -> Result<()> {
        let mut record = FutureRecord::to(topic).key(key).payload(payload);
        let id = outbox_id.map(i64::to_be_bytes);
        if let Some(id) = &id {
            record = record.headers(OwnedHeaders::new().insert(Header {
                key: HEADER,
                value: Some(&id[..]),
            }));
        }
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

/// The producer settings: idempotence, `acks=all`, lz4 (none on the development
/// broker), a bounded delivery time and `linger`; pass-through properties win
/// over all of them.
pub fn producer_config(kafka: &Kafka, timeout: Duration, linger: Duration) -> rdkafka::ClientConfig {
    let timeout = timeout.as_millis().to_string();
    let linger = linger.as_millis().to_string();
    // The development broker is in the process: compressing for it saves no network, and it
    // walks its retained message sets (up to 5 MB a partition) on every fetch, so smaller
    // sets cost it more (BENCHMARKS, issue 15).
    let compression = if kafka.mock().is_some() { "none" } else { "lz4" };
    kafka.config_for(
        ClientKind::Producer,
        &[
            ("enable.idempotence", "true"),
            ("acks", "all"),
            ("compression.type", compression),
            ("linger.ms", &linger),
            ("message.timeout.ms", &timeout),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kafka::KafkaArgs;

    #[tokio::test]
    async fn only_the_development_broker_gets_uncompressed_batches() {
        let dev = Kafka::connect(&KafkaArgs::default()).await.expect("development broker");
        let cfg = producer_config(&dev, Duration::from_secs(1), DEFAULT_LINGER);
        assert_eq!(cfg.get("compression.type"), Some("none"));
        assert_eq!(cfg.get("linger.ms"), Some("5"));
        let real = Kafka::unreached();
        let cfg = producer_config(&real, Duration::from_secs(1), REQUEST_LINGER);
        assert_eq!(cfg.get("compression.type"), Some("lz4"));
        assert_eq!(cfg.get("linger.ms"), Some("1"));
    }
}
