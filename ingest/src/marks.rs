//! Marks requests `published` off the request path. An acknowledged send
//! queues its request id; one task writes whatever is queued in one store
//! transaction. A mark that is lost (a full queue, a crash, a store error)
//! costs nothing: pending and published requests are both re-announced at
//! start, and the store never moves a finished request back.

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

impl PublishedMarks {
    /// Starts the writer task; it ends once every handle is dropped and the queue is written.
    pub fn start(store: Arc<dyn IngestStore>) -> PublishedMarks {
        let (tx, mut rx) = mpsc::channel::<String>(QUEUE);
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(BATCH);
            while rx.recv_many(&mut batch, BATCH).await > 0 {
                let changes = batch.drain(..).map(|id| (id, RequestState::Published)).collect();
                if let Err(e) = store.set_states(changes).await {
                    tracing::warn!(error = %e, "cannot mark requests published; they stay pending");
                }
            }
        });
        PublishedMarks { tx }
    }

    /// Queues `request_id` to be marked published.
    pub fn mark(&self, request_id: &str) {
        if self.tx.try_send(request_id.to_owned()).is_err() {
            tracing::debug!("published-mark queue full; the request stays pending");
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
        let marks = PublishedMarks::start(store.clone());
        marks.mark("req-a");
        marks.mark("req-b");
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        while store.request_state("req-a").await.expect("state") != Some(RequestState::Published) {
            assert!(tokio::time::Instant::now() < deadline, "the mark was not written");
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(store.request_state("req-b").await.expect("state"), Some(RequestState::Anonymized));
    }
}
