//! Marks requests `published` off the request path. An acknowledged send
//! queues its request id; one task writes whatever is queued in one store
//! transaction. A mark that is lost (a full queue, a crash, a store error)
//! costs nothing: pending and published requests are both re-announced at
//! start, and the store never moves a finished request back.

use alpes_platform::shutdown::Shutdown;
use alpes_platform::store::{IngestStore, RequestState};
use std::sync::Arc;
use tokio::sync::mpsc;

/// The most marks waiting to be written; past it a mark is dropped.
const QUEUE: usize = 8192;
/// The most marks written in one transaction.
const BATCH: usize = 512;

/// The queue of `published` marks.
#[derive(Debug, Clone)]
pub struct PublishedMarks {
    tx: mpsc::Sender<String>,
}

/// The task that writes the queued marks; see [`MarksWriter::run_until_stopped`].
#[derive(Debug)]
pub struct MarksWriter {
    store: Arc<dyn IngestStore>,
    rx: mpsc::Receiver<String>,
}

impl PublishedMarks {
    /// The queue, and the writer that empties it (to be run with [`MarksWriter::run_until_stopped`]).
    pub fn new(store: Arc<dyn IngestStore>) -> (PublishedMarks, MarksWriter) {
        let (tx, rx) = mpsc::channel::<String>(QUEUE);
        (PublishedMarks { tx }, MarksWriter { store, rx })
    }

    /// Queues `request_id` to be marked published.
    pub fn mark(&self, request_id: &str) {
        if self.tx.try_send(request_id.to_owned()).is_err() {
            tracing::debug!("published-mark queue full; the request stays pending");
        }
    }
}

impl MarksWriter {
    /// Writes whatever is queued, one store transaction per batch, until
    /// `stop` (then what is queued already is written, and no mark is taken
    /// after it) or until every [`PublishedMarks`] handle is gone.
    pub async fn run_until_stopped(mut self, stop: Shutdown) {
        let mut batch = Vec::with_capacity(BATCH);
        loop {
            let taken = tokio::select! {
                n = self.rx.recv_many(&mut batch, BATCH) => n,
                () = stop.wait() => {
                    self.rx.close();
                    0
                }
            };
            if taken == 0 && !stop.is_triggered() {
                return;
            }
            self.write(&mut batch).await;
            if stop.is_triggered() {
                while self.rx.recv_many(&mut batch, BATCH).await > 0 {
                    self.write(&mut batch).await;
                }
                return;
            }
        }
    }

    async fn write(&self, batch: &mut Vec<String>) {
        if batch.is_empty() {
            return;
        }
        let changes = batch.drain(..).map(|id| (id, RequestState::Published)).collect();
        if let Err(e) = self.store.set_states(changes).await {
            tracing::warn!(error = %e, "cannot mark requests published; they stay pending");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alpes_platform::store::{ImageRow, NewImage, SqliteStore};

    #[tokio::test]
    async fn queued_marks_reach_the_store_and_never_undo_an_outcome() {
        let store: Arc<dyn IngestStore> = Arc::new(SqliteStore::in_memory().expect("db"));
        for (id, sha) in [("a", "s1"), ("b", "s2")] {
            store
                .claim(NewImage {
                    image: ImageRow {
                        image_id: id.into(),
                        provider_id: "p".into(),
                        sha256: sha.into(),
                        size: 1,
                        media_type: "application/dicom".into(),
                        blob_key: format!("raw/{sha}"),
                        tipo_imagen: None,
                        region_anatomica: None,
                    },
                    idempotency_key: None,
                    request_id: format!("req-{id}"),
                    event_json: "{}".into(),
                })
                .await
                .expect("claim");
        }
        store.set_state("req-b", RequestState::Anonymized).await.expect("outcome");
        let (marks, writer) = PublishedMarks::new(store.clone());
        let stop = Shutdown::new();
        let running = tokio::spawn(writer.run_until_stopped(stop.clone()));
        marks.mark("req-a");
        marks.mark("req-b");
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        while store.request_state("req-a").await.expect("state") != Some(RequestState::Published) {
            assert!(tokio::time::Instant::now() < deadline, "the mark was not written");
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(store.request_state("req-b").await.expect("state"), Some(RequestState::Anonymized));
        stop.trigger();
        tokio::time::timeout(std::time::Duration::from_secs(5), running)
            .await
            .expect("the writer stops with the signal")
            .expect("join");
        marks.mark("req-a");
    }
}
