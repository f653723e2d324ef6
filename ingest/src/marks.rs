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
        match self.tx.try_send(request_id.to_owned()) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => tracing::debug!("published-mark queue full; the request stays pending"),
            Err(mpsc::error::TrySendError::Closed(_)) => tracing::debug!("stopping: the request stays pending"),
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
            tokio::select! {
                taken = self.rx.recv_many(&mut batch, BATCH) => {
                    if taken == 0 {
                        return; // every handle is gone and the queue is written
                    }
                    self.write(&mut batch).await;
                }
                () = stop.wait() => break,
            }
        }
        // Closed first, so the drain ends even while handles are still alive.
        self.rx.close();
        while self.rx.recv_many(&mut batch, BATCH).await > 0 {
            self.write(&mut batch).await;
        }
    }

    async fn write(&self, batch: &mut Vec<String>) {
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

    /// An ingest store with the images `ids`, each with its request `req-<id>` pending.
    async fn store_with(ids: &[&str]) -> Arc<dyn IngestStore> {
        let store: Arc<dyn IngestStore> = Arc::new(SqliteStore::in_memory().expect("db"));
        for id in ids {
            let sha = format!("sha-{id}");
            store
                .claim(NewImage {
                    image: ImageRow {
                        image_id: (*id).into(),
                        provider_id: "p".into(),
                        sha256: sha.clone(),
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
        store
    }

    #[tokio::test]
    async fn queued_marks_reach_the_store_and_never_undo_an_outcome() {
        let store = store_with(&["a", "b"]).await;
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

    #[tokio::test]
    async fn a_stop_writes_what_is_queued_and_ends_while_handles_are_alive() {
        let store = store_with(&["a"]).await;
        let (marks, writer) = PublishedMarks::new(store.clone());
        marks.mark("req-a");
        let stop = Shutdown::new();
        stop.trigger();
        // Both the queue and the stop are ready when the writer starts, and `marks` lives on.
        tokio::time::timeout(std::time::Duration::from_secs(5), writer.run_until_stopped(stop))
            .await
            .expect("the writer ends after the stop, though a handle is alive");
        assert_eq!(store.request_state("req-a").await.expect("state"), Some(RequestState::Published));
        drop(marks);
    }
}
