//! The outbox port: events kept in the store until every consumer that
//! applies them in this process has applied them.
//!
//! The development broker (librdkafka's mock cluster) lives in the process
//! and forgets everything when it stops. An event a request waited on (a
//! download's usage, a payment, an audit entry) would be lost by a crash
//! after the broker acknowledged it and before its consumers applied it,
//! though the client was already answered. So on that broker such an event
//! is first written here, then produced carrying its outbox id; each consumer
//! group that reads its topic settles the id once its batch is applied; the
//! row goes when the last of them has. At start every row left is produced
//! again, and the consumers, idempotent by event id, drop what they applied
//! already.

use crate::Result;
use async_trait::async_trait;

/// One event waiting in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    /// The outbox id, carried by the message.
    pub id: i64,
    /// Its topic.
    pub topic: String,
    /// Its message key.
    pub key: String,
    /// The encoded event.
    pub payload: Vec<u8>,
}

/// The outbox store.
#[async_trait]
pub trait OutboxStore: Send + Sync + std::fmt::Debug {
    /// Keeps an event until every group in `readers` has settled it; returns its id.
    async fn put(&self, topic: &str, key: &str, payload: Vec<u8>, readers: Vec<String>) -> Result<i64>;
    /// Group `reader` has applied the events `ids`; an event every reader has
    /// settled is removed. Unknown ids (settled before) are ignored.
    async fn settle(&self, reader: &str, ids: Vec<i64>) -> Result<()>;
    /// Forgets the event `id` whatever its readers (its produce failed, and the
    /// request that made it was refused).
    async fn discard(&self, id: i64) -> Result<()>;
    /// Every event still waiting, oldest first.
    async fn waiting(&self) -> Result<Vec<OutboxRow>>;
}
