//! The outbox on the development broker: the events a request waits on are
//! kept in the store until every consumer group of this process that reads
//! them has applied them, and produced again at start (see
//! [`alpes_domain::outbox`] for why).
//!
//! It keeps the topics of [`KEPT`]: usage (a download answered 200), payments
//! (a payment answered 202), the audit trail, import jobs (a job answered
//! 202: a job under way when the process stops is run again after its start), and
//! patients' consent and institutions' policies (a revocation answered 200 must reach
//! the query side, and the notifier). An upload's
//! `ImagenRegistrada` has its own path (ingest re-publishes the requests
//! without an outcome), and the other events are re-derived or only read
//! outside the process. A real cluster acknowledges a produce only once its
//! replicas have the event (`acks=all`), so no outbox is attached there.
//!
//! The message carries its outbox id in the [`HEADER`] header; the one
//! consume loop ([`super::projector`]) settles the ids of a batch once the
//! batch is applied, so an event leaves the outbox only after its effect is
//! in the store. A settle lost to a crash just means the event is produced
//! again at start, and dropped as a duplicate by every consumer.

use super::Producer;
use crate::store::OutboxStore;
use crate::Result;
use alpes_schemas::topics;
use rdkafka::message::{BorrowedMessage, Headers};
use rdkafka::Message;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, OnceLock};

/// The header that carries a message's outbox id (8 bytes, big-endian).
pub const HEADER: &str = "alpes-outbox-id";

/// The topics the outbox keeps.
pub const KEPT: [&str; 6] = [
    topics::USAGE,
    topics::PAYMENTS,
    topics::AUDIT,
    topics::IMPORTS_REQUESTED,
    topics::CONSENT,
    topics::INSTITUTIONS,
];

/// The outbox of a connection to the event log; inert until a store is attached.
#[derive(Debug, Default)]
pub struct Outbox {
    store: OnceLock<Arc<dyn OutboxStore>>,
    readers: Mutex<BTreeMap<String, BTreeSet<String>>>,
}

impl Outbox {
    /// Keeps events in `store` from now on (once: a second store is ignored).
    pub fn attach(&self, store: Arc<dyn OutboxStore>) {
        let _ = self.store.set(store);
    }

    /// Whether a store is attached.
    pub fn attached(&self) -> bool {
        self.store.get().is_some()
    }

    /// Declares that consumer group `group` of this process reads `topics`:
    /// every event of a kept topic produced from now on waits for it.
    pub fn reads(&self, group: &str, topics: &[&str]) {
        if let Ok(mut readers) = self.readers.lock() {
            for t in topics.iter().filter(|t| KEPT.contains(t)) {
                readers.entry((*t).to_owned()).or_default().insert(group.to_owned());
            }
        }
    }

    /// Keeps an event of `topic` if the outbox keeps that topic and some group
    /// of this process reads it; its outbox id, or `None` if it is not kept.
    pub async fn keep(&self, topic: &str, key: &str, payload: &[u8]) -> Result<Option<i64>> {
        let Some(store) = self.store.get() else { return Ok(None) };
        let readers: Vec<String> = match self.readers.lock() {
            Ok(r) => r.get(topic).map(|g| g.iter().cloned().collect()).unwrap_or_default(),
            Err(_) => Vec::new(),
        };
        if readers.is_empty() {
            return Ok(None);
        }
        Ok(Some(store.put(topic, key, payload.to_vec(), readers).await?))
    }

    /// Group `group` has applied the messages `ids` came with; a failure is
    /// logged (the events come again at the next start, and are dropped as duplicates).
    pub async fn settle(&self, group: &str, ids: Vec<i64>) {
        let Some(store) = self.store.get() else { return };
        if ids.is_empty() {
            return;
        }
        if let Err(e) = store.settle(group, ids).await {
            tracing::warn!(error = %e, group, "could not settle outbox events; they are produced again at the next start");
        }
    }

    /// Forgets the kept event `id`: its produce failed, so the request that made it
    /// is answered with an error and the event must not come back at the next start.
    pub async fn discard(&self, id: i64) {
        let Some(store) = self.store.get() else { return };
        if let Err(e) = store.discard(id).await {
            tracing::warn!(error = %e, id, "could not discard an outbox event whose produce failed");
        }
    }

    /// How many events are kept, waiting for a reader (0 with no store).
    pub async fn waiting(&self) -> Result<usize> {
        match self.store.get() {
            Some(store) => Ok(store.waiting().await?.len()),
            None => Ok(0),
        }
    }

    /// Produces every event still kept again, with its outbox id; returns how many.
    pub async fn republish(&self, producer: &Producer) -> Result<usize> {
        let Some(store) = self.store.get() else { return Ok(0) };
        let waiting = store.waiting().await?;
        for row in &waiting {
            producer.produce(&row.topic, &row.key, &row.payload, Some(row.id)).await?;
        }
        if !waiting.is_empty() {
            tracing::info!(count = waiting.len(), "re-published events the outbox kept");
        }
        Ok(waiting.len())
    }
}

/// The outbox id a message carries, if any.
pub fn id_of(msg: &BorrowedMessage<'_>) -> Option<i64> {
    let headers = msg.headers()?;
    headers
        .iter()
        .find(|h| h.key == HEADER)
        .and_then(|h| h.value)
        .and_then(|v| <[u8; 8]>::try_from(v).ok())
        .map(i64::from_be_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kafka::{Kafka, KafkaArgs};
    use crate::metrics::Metrics;
    use crate::store::SqliteOutbox;

    #[tokio::test]
    async fn an_event_the_broker_refused_is_not_kept_and_one_it_took_waits_for_its_reader() {
        let args = KafkaArgs {
            delivery_timeout_ms: 1_000,
            ..KafkaArgs::default()
        };
        let kafka = Kafka::connect(&args).await.expect("development broker");
        kafka.outbox().attach(Arc::new(SqliteOutbox::in_memory().expect("outbox")));
        kafka.outbox().reads("billing", &[topics::USAGE, topics::IMAGES_REGISTERED]);
        let producer = Producer::new(&kafka, alpes_schemas::Codec::single_object(), Arc::new(Metrics::new())).expect("producer");

        sent_once_the_broker_answers(&producer, topics::IMAGES_REGISTERED).await;
        assert_eq!(
            kafka.outbox().waiting().await.expect("waiting"),
            0,
            "a topic the outbox does not keep"
        );

        kafka.mock().expect("mock").all_down().expect("down");
        assert!(producer.send_raw(topics::USAGE, "k", b"x").await.is_err(), "the broker is down");
        assert_eq!(kafka.outbox().waiting().await.expect("waiting"), 0, "not sent, so not kept");

        kafka.mock().expect("mock").all_up().expect("up");
        sent_once_the_broker_answers(&producer, topics::USAGE).await;
        assert_eq!(kafka.outbox().waiting().await.expect("waiting"), 1, "kept until billing applies it");
    }

    /// Sends until the broker takes it: a loaded CI machine can need more than
    /// the test's 1 s delivery timeout to reach the mock broker (at start or
    /// once it is back up). A refused send is not kept, which is what the test
    /// checks after each phase, so trying again cannot hide a kept refusal.
    async fn sent_once_the_broker_answers(producer: &Producer, topic: &str) {
        for attempt in 1..=20 {
            match producer.send_raw(topic, "k", b"x").await {
                Ok(_) => return,
                Err(e) if attempt == 20 => panic!("the broker never took the event: {e}"),
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(250)).await,
            }
        }
    }
}
