//! Re-announces requests that were registered but never got an outcome. The
//! development broker forgets everything on restart, so `alpes up` runs this at
//! start; the event keeps its id, so a consumer that saw it already drops it.

use alpes_platform::kafka::Producer;
use alpes_platform::store::{IngestStore, RequestState};
use alpes_schemas::ImagenRegistrada;

/// Produces every unfinished request's event again; returns how many.
pub async fn republish(store: &dyn IngestStore, producer: &Producer) -> alpes_platform::Result<usize> {
    let mut n = 0;
    for json in store.unfinished().await? {
        let Ok(ev) = serde_json::from_str::<ImagenRegistrada>(&json) else {
            tracing::warn!("an unfinished request holds an unreadable event; skipped");
            continue;
        };
        producer.send(&ev.image_id, &ev).await?;
        store.set_state(&ev.request_id, RequestState::Published).await?;
        n += 1;
    }
    if n > 0 {
        tracing::info!(count = n, "re-published unfinished requests");
    }
    Ok(n)
}
