//! The audit projector: consumes `alpes.audit` into the audit table, one
//! store transaction per fetched batch. `RegistroAuditoria` is stored as it
//! is; `IntentoLogin` becomes a `login` entry with the attempt's id.
//!
//! Offsets are stored only after a batch is stored; a crash replays the
//! batch and the table skips the ids it has. A message that decodes as
//! neither is counted, logged by reason (never payload) and skipped.
//!
//! The audit table is per data dir (SQLite; there is no shared adapter), and
//! every query-api replica answers `GET /auditoria` from its own, so each
//! replica reads the whole topic in a group of its own ([`group`]); a group
//! shared by the replicas would give each one part of the trail.

use alpes_platform::kafka::projector::Projection;
use alpes_platform::retry::retry;
use alpes_platform::shutdown::Shutdown;
use alpes_platform::store::audit::login_entry;
use alpes_platform::store::AuditStore;
use alpes_schemas::{topics, Codec, Error, IntentoLogin, RegistroAuditoria};
use async_trait::async_trait;
use std::sync::Arc;

/// The prefix of the projector's consumer group.
pub const GROUP_PREFIX: &str = "alpes-audit-projector";

/// The consumer group of the projector into the audit table of the data dir
/// named `instance`: `alpes-audit-projector-<instance>`.
pub fn group(instance: &str) -> String {
    format!("{GROUP_PREFIX}-{instance}")
}

/// The most entries stored in one transaction.
pub const BATCH: usize = 1024;

/// An audit topic payload as an entry; `Err` is a reason code.
pub async fn decode(codec: &Codec, payload: &[u8]) -> Result<RegistroAuditoria, &'static str> {
    match codec.decode::<RegistroAuditoria>(payload).await {
        Ok(entry) => Ok(entry),
        Err(Error::WrongType { .. }) => codec
            .decode::<IntentoLogin>(payload)
            .await
            .map(|attempt| login_entry(&attempt))
            .map_err(|e| e.reason()),
        Err(e) => Err(e.reason()),
    }
}

/// The audit table as a projection of `alpes.audit` (run it with
/// [`alpes_platform::kafka::projector::run_projection`] in [`group`]).
#[derive(Debug)]
pub struct Projector {
    codec: Codec,
    store: Arc<dyn AuditStore>,
}

impl Projector {
    /// Entries decoded with `codec`, appended to `store`.
    pub fn new(codec: Codec, store: Arc<dyn AuditStore>) -> Projector {
        Projector { codec, store }
    }
}

#[async_trait]
impl Projection for Projector {
    type Item = RegistroAuditoria;
    const TOPICS: &'static [&'static str] = &[topics::AUDIT];
    const BATCH: usize = BATCH;

    async fn decode(&self, _topic: &str, payload: &[u8]) -> Result<Option<RegistroAuditoria>, &'static str> {
        decode(&self.codec, payload).await.map(Some)
    }

    async fn apply(&self, batch: Vec<RegistroAuditoria>, stop: &Shutdown) -> bool {
        retry(stop, "store an audit batch", || self.store.append(batch.clone()))
            .await
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_instance_projects_the_audit_trail_in_a_group_of_its_own() {
        assert_eq!(group("query-0"), "alpes-audit-projector-query-0");
        assert_ne!(group("a"), group("b"));
    }

    #[tokio::test]
    async fn both_record_types_of_the_audit_topic_decode_as_entries() {
        let codec = Codec::single_object();
        let attempt = IntentoLogin {
            event_id: "a1".into(),
            occurred_at: 7,
            actor: "u1".into(),
            user_id: "u1".into(),
            success: false,
            reason: Some("locked".into()),
            http_request_id: Some("r1".into()),
        };
        let entry = decode(&codec, &codec.encode(&attempt).await.expect("encode")).await.expect("login");
        assert_eq!(
            (
                entry.event_id.as_str(),
                entry.action.as_str(),
                entry.outcome.as_str(),
                entry.request_id.as_deref()
            ),
            ("a1", "login", "denied", Some("r1"))
        );
        let written = alpes_platform::store::conformance::audit_entry("e1", 9, "u2", "download", "ok");
        let read = decode(&codec, &codec.encode(&written).await.expect("encode")).await.expect("entry");
        assert_eq!(read, written);
        let other = codec
            .encode(&alpes_platform::store::conformance::audit_entry("e2", 9, "u2", "x", "ok"))
            .await
            .expect("encode");
        assert!(
            decode(&codec, &other[..other.len() - 1]).await.is_err(),
            "a truncated entry is refused"
        );
    }
}
