//! Follows `alpes.images.anonymized` and `alpes.images.rejected` and closes the
//! matching requests in the ingest store, so [`crate::republish`] knows which
//! requests still wait for an outcome.
//!
//! The ingest store is per process (SQLite in the data dir), and each ingest
//! replica must close its own requests, so every replica reads every outcome:
//! its consumer group is its own ([`group`]), never one shared by the
//! replicas, which would hand each outcome to one of them only. An outcome of
//! another replica's request closes nothing here and is skipped.

use alpes_platform::kafka::projector::Projection;
use alpes_platform::retry::retry;
use alpes_platform::shutdown::Shutdown;
use alpes_platform::store::{IngestStore, RequestState};
use alpes_schemas::{topics, Codec, ImagenAnonimizada, ImagenRechazada};
use async_trait::async_trait;
use std::sync::Arc;

/// The prefix of the outcome follower's consumer group.
pub const GROUP_PREFIX: &str = "alpes-ingest-outcomes";

/// The consumer group of the follower of the ingest store named `instance`
/// (one per data dir): `alpes-ingest-outcomes-<instance>`.
pub fn group(instance: &str) -> String {
    format!("{GROUP_PREFIX}-{instance}")
}

/// The most outcomes recorded in one store transaction.
const BATCH: usize = 512;

/// The request an outcome of `topic` closes, and how.
async fn outcome(codec: &Codec, topic: &str, payload: &[u8]) -> alpes_schemas::Result<Option<(String, RequestState)>> {
    if topic == topics::IMAGES_ANONYMIZED {
        let e = codec.decode::<ImagenAnonimizada>(payload).await?;
        Ok(Some((e.request_id, RequestState::Anonymized)))
    } else {
        let e = codec.decode::<ImagenRechazada>(payload).await?;
        Ok(e.request_id.map(|r| (r, RequestState::Rejected)))
    }
}

/// The ingest store's request states as a projection of the outcome topics (run it with
/// [`alpes_platform::kafka::projector::run_projection`] in [`group`]).
#[derive(Debug)]
pub struct Follower {
    codec: Codec,
    store: Arc<dyn IngestStore>,
}

impl Follower {
    /// Outcomes decoded with `codec`, recorded in `store`.
    pub fn new(codec: Codec, store: Arc<dyn IngestStore>) -> Follower {
        Follower { codec, store }
    }
}

#[async_trait]
impl Projection for Follower {
    type Item = (String, RequestState);
    const TOPICS: &'static [&'static str] = &[topics::IMAGES_ANONYMIZED, topics::IMAGES_REJECTED];
    const BATCH: usize = BATCH;

    async fn decode(&self, topic: &str, payload: &[u8]) -> Result<Option<(String, RequestState)>, &'static str> {
        outcome(&self.codec, topic, payload).await.map_err(|e| e.reason())
    }

    async fn apply(&self, changes: Vec<(String, RequestState)>, stop: &Shutdown) -> bool {
        retry(stop, "record outcomes", || self.store.set_states(changes.clone()))
            .await
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_instance_follows_outcomes_in_a_group_of_its_own() {
        assert_eq!(group("ingest-0"), "alpes-ingest-outcomes-ingest-0");
        assert_ne!(group("a"), group("b"));
    }
}
