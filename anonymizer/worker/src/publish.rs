//! Producing a batch's output events. Plain mode: the platform's idempotent producer, every
//! send awaited until the broker acknowledges it, batches publishing side by side. Transactional
//! mode: one Kafka transaction per batch that also commits the batch's offsets, taken in the
//! order the batches were consumed (each waits for its predecessor's turn).

use std::sync::Arc;

use alpes_platform::kafka::Producer;
use futures::future::join_all;
use rdkafka::consumer::ConsumerGroupMetadata;
use tokio::sync::oneshot;

use crate::events::Message;
use crate::retry::retry;
use crate::transaction::Transactional;
use crate::{Error, Result};
use alpes_platform::shutdown::Shutdown;

/// The highest consumed offset of each partition in a batch.
pub type Offsets = Vec<(String, i32, i64)>;

/// When a batch's records were taken: the consumer's rebalance count then, and (transactional
/// mode) its group metadata then, which the group coordinator checks when the transaction commits
/// the batch's offsets: a rebalance since makes that commit fail, and the batch is dropped.
#[derive(Clone, Default)]
pub struct Taken {
    /// [`alpes_platform::kafka::CommitOnRevoke::rebalances`] when the first record was taken.
    pub generation: u64,
    /// The consumer's group metadata at that time (transactional mode only).
    pub group: Option<Arc<ConsumerGroupMetadata>>,
}

impl std::fmt::Debug for Taken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Taken")
            .field("generation", &self.generation)
            .field("group", &self.group.is_some())
            .finish()
    }
}

/// A batch's place in the commit order: the previous batch's signal and its own.
#[derive(Debug)]
pub struct Turn {
    /// Fires when the previous batch has published (dropped unsent if it failed).
    pub previous: Option<oneshot::Receiver<()>>,
    /// Sent once this batch has published.
    pub done: oneshot::Sender<()>,
}

/// Where the outputs go.
#[derive(Debug)]
pub enum Publisher {
    /// Idempotent producer; offsets are stored by the consume loop afterwards.
    Plain(Producer),
    /// Transactional producer; offsets go into each batch's transaction.
    Transactional(Transactional),
}

impl Publisher {
    /// Produces `messages` (and in transactional mode commits `offsets` with them) once it is this
    /// batch's turn. Resolves when the broker has everything.
    pub async fn publish(
        &self,
        seq: u64,
        stop: &Shutdown,
        (messages, offsets, taken): (&[Message], &Offsets, &Taken),
        turn: Turn,
    ) -> Result<()> {
        match self {
            Publisher::Plain(producer) => {
                let sends = messages
                    .iter()
                    .map(|m| retry(stop, "produce", || producer.send_raw(m.topic, &m.key, &m.payload)));
                for sent in join_all(sends).await {
                    sent?;
                }
            }
            Publisher::Transactional(tx) => {
                if let Some(previous) = turn.previous {
                    previous.await.map_err(|_| Error::Batch {
                        seq,
                        reason: "an earlier batch was not committed".into(),
                    })?;
                }
                tx.commit_batch(seq, stop, messages, offsets, taken).await?;
            }
        }
        // The next batch may be gone already (the worker is stopping).
        let _ = turn.done.send(());
        Ok(())
    }

    /// Waits until every produced message is delivered (on stop).
    pub async fn flush(&self) -> Result<()> {
        match self {
            Publisher::Plain(producer) => {
                let producer = producer.clone();
                tokio::task::spawn_blocking(move || producer.flush(std::time::Duration::from_secs(10)))
                    .await
                    .map_err(|e| Error::Task(e.to_string()))??;
                Ok(())
            }
            Publisher::Transactional(tx) => tx.flush().await,
        }
    }
}
