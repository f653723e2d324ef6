//! Producing a batch's output events. Plain mode: the platform's idempotent producer, every
//! send awaited until the broker acknowledges it, batches publishing side by side. Transactional
//! mode: one Kafka transaction per batch that also commits the batch's offsets, taken in the
//! order the batches were consumed (each waits for its predecessor's turn).

use alpes_platform::kafka::Producer;
use futures::future::join_all;
use tokio::sync::oneshot;

use crate::produced::Produced;
use crate::transaction::Transactional;
use crate::{Error, Result};
use alpes_platform::retry::retry;
use alpes_platform::shutdown::Shutdown;

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
    /// Produces the messages of `produced` (and in transactional mode commits their offsets with
    /// them) once it is this batch's turn. Resolves when the broker has everything; says for each
    /// record whether its outputs were published: a transactional batch drops the records whose
    /// partition changed hands since they were taken (they are fetched again).
    pub async fn publish(&self, seq: u64, stop: &Shutdown, produced: &[Produced], turn: Turn) -> Result<Vec<bool>> {
        let published = match self {
            Publisher::Plain(producer) => {
                let sends = produced
                    .iter()
                    .flat_map(|p| &p.messages)
                    .map(|m| retry(stop, "produce", || producer.send_raw(m.topic, &m.key, &m.payload)));
                for sent in join_all(sends).await {
                    sent?;
                }
                vec![true; produced.len()]
            }
            Publisher::Transactional(tx) => {
                if let Some(previous) = turn.previous {
                    previous.await.map_err(|_| Error::Batch {
                        seq,
                        reason: "an earlier batch was not committed".into(),
                    })?;
                }
                tx.commit_batch(seq, stop, produced).await?
            }
        };
        // The next batch may be gone already (the worker is stopping).
        let _ = turn.done.send(());
        Ok(published)
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
