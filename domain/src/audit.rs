//! The audit port: the audit trail's table, materialized from `alpes.audit`
//! (`RegistroAuditoria`, and `IntentoLogin` as `login` entries). Entries are
//! immutable and keyed by event id: a redelivered entry changes nothing.
//! `GET /auditoria` pages it newest first; `GET /usuarios/{id}` counts a
//! user's login attempts from it.

use crate::Result;
use alpes_schemas::{IntentoLogin, RegistroAuditoria};
use async_trait::async_trait;

/// The `login` entry of a login attempt: outcome `ok`, or `denied` with the
/// attempt's reason; the actor is the account (`unknown` for an unknown
/// email). It keeps the attempt's event id.
pub fn login_entry(e: &IntentoLogin) -> RegistroAuditoria {
    RegistroAuditoria {
        event_id: e.event_id.clone(),
        occurred_at: e.occurred_at,
        actor: e.user_id.clone(),
        actor_role: None,
        action: "login".into(),
        target: Some(e.user_id.clone()),
        route: Some("POST /auth/login".into()),
        outcome: if e.success { "ok" } else { "denied" }.into(),
        status: None,
        reason: e.reason.clone(),
        request_id: e.http_request_id.clone(),
        service: "ingest".into(),
    }
}

/// Which entries a page holds: every given field must match exactly;
/// `from` is inclusive and `to` exclusive (ms since the epoch).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// The actor.
    pub actor: Option<String>,
    /// The action code.
    pub action: Option<String>,
    /// `ok`, `denied` or `error`.
    pub outcome: Option<String>,
    /// The target (the whole field).
    pub target: Option<String>,
    /// The request id.
    pub request_id: Option<String>,
    /// Not before (ms).
    pub from: Option<i64>,
    /// Before (ms).
    pub to: Option<i64>,
}

/// One page of entries, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditPage {
    /// The entries.
    pub entries: Vec<RegistroAuditoria>,
    /// The cursor of the next (older) page, if there is one.
    pub next: Option<String>,
}

/// A user's login attempts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoginCounts {
    /// Every attempt.
    pub total: u64,
    /// The failed ones (wrong password, or refused while locked).
    pub failed: u64,
    /// When the last attempt happened (ms), if any.
    pub last_at: Option<i64>,
}

/// The audit table.
#[async_trait]
pub trait AuditStore: Send + Sync + std::fmt::Debug {
    /// Stores `entries` in one transaction, skipping event ids it has.
    async fn append(&self, entries: Vec<RegistroAuditoria>) -> Result<()>;
    /// A page of entries matching `filter`, newest first, after `cursor`.
    async fn page(&self, filter: &AuditFilter, cursor: Option<&str>, limit: usize) -> Result<AuditPage>;
    /// The login attempts recorded for `user_id`.
    async fn logins(&self, user_id: &str) -> Result<LoginCounts>;
}
