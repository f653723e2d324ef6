//! The SQLite audit table (`audit_entries` in `alpes.db`): one row per
//! entry, keyed by event id, indexed for the newest-first page by time and
//! by actor, action and request id.

use super::conn::{keyset_page, write_tx, SqliteConn, Where};
use crate::store::audit::{AuditFilter, AuditPage, AuditStore, LoginCounts};
use crate::Result;
use alpes_domain::page::PageCursor;
use alpes_schemas::RegistroAuditoria;
use async_trait::async_trait;
use rusqlite::{params, Row};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS audit_entries (
    event_id TEXT PRIMARY KEY,
    occurred_at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    actor_role TEXT,
    action TEXT NOT NULL,
    target TEXT,
    route TEXT,
    outcome TEXT NOT NULL,
    status INTEGER,
    reason TEXT,
    request_id TEXT,
    service TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_by_time ON audit_entries (occurred_at, event_id);
CREATE INDEX IF NOT EXISTS audit_by_actor ON audit_entries (actor, action, occurred_at);
CREATE INDEX IF NOT EXISTS audit_by_action ON audit_entries (action, occurred_at);
CREATE INDEX IF NOT EXISTS audit_by_request ON audit_entries (request_id);
";

const COLUMNS: &str = "event_id, occurred_at, actor, actor_role, action, target, route, outcome, status, reason, request_id, service";

/// The SQLite audit table.
#[derive(Debug, Clone)]
pub struct SqliteAudit {
    conn: SqliteConn,
}

impl SqliteAudit {
    /// Opens (creating) the audit table in the database at `path`.
    pub fn open(path: &std::path::Path, fsync: bool) -> Result<SqliteAudit> {
        Ok(SqliteAudit {
            conn: SqliteConn::open(path, fsync, SCHEMA)?,
        })
    }

    /// A private in-memory table (tests).
    pub fn in_memory() -> Result<SqliteAudit> {
        Ok(SqliteAudit {
            conn: SqliteConn::in_memory(SCHEMA)?,
        })
    }
}

fn entry(r: &Row<'_>) -> rusqlite::Result<RegistroAuditoria> {
    Ok(RegistroAuditoria {
        event_id: r.get(0)?,
        occurred_at: r.get(1)?,
        actor: r.get(2)?,
        actor_role: r.get(3)?,
        action: r.get(4)?,
        target: r.get(5)?,
        route: r.get(6)?,
        outcome: r.get(7)?,
        status: r.get(8)?,
        reason: r.get(9)?,
        request_id: r.get(10)?,
        service: r.get(11)?,
    })
}

#[async_trait]
impl AuditStore for SqliteAudit {
    async fn append(&self, entries: Vec<RegistroAuditoria>) -> alpes_domain::Result<()> {
        self.conn
            .with(move |conn| {
                let tx = write_tx(conn)?;
                {
                    let mut insert = tx.prepare_cached(&format!(
                        "INSERT OR IGNORE INTO audit_entries ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
                    ))?;
                    for e in &entries {
                        insert.execute(params![
                            e.event_id,
                            e.occurred_at,
                            e.actor,
                            e.actor_role,
                            e.action,
                            e.target,
                            e.route,
                            e.outcome,
                            e.status,
                            e.reason,
                            e.request_id,
                            e.service
                        ])?;
                    }
                }
                tx.commit()?;
                Ok(())
            })
            .await
    }

    async fn page(&self, filter: &AuditFilter, cursor: Option<&str>, limit: usize) -> alpes_domain::Result<AuditPage> {
        let before = cursor.map(|c| PageCursor::decode('a', c).map(PageCursor::key)).transpose()?;
        let f = filter.clone();
        self.conn
            .read(move |conn| {
                let mut w = Where::default();
                w.opt("actor = ?", f.actor);
                w.opt("action = ?", f.action);
                w.opt("outcome = ?", f.outcome);
                w.opt("target = ?", f.target);
                w.opt("request_id = ?", f.request_id);
                w.opt("occurred_at >= ?", f.from);
                w.opt("occurred_at < ?", f.to);
                if let Some((at, id)) = before {
                    w.push("(occurred_at, event_id) < (?, ?)", [at.into(), id.into()]);
                }
                let take = i64::try_from(limit + 1).unwrap_or(i64::MAX);
                let sql = format!(
                    "SELECT {COLUMNS} FROM audit_entries {} ORDER BY occurred_at DESC, event_id DESC LIMIT {take}",
                    w.sql()
                );
                let (entries, next) = keyset_page(conn, &sql, w.params, limit, entry, |e| {
                    PageCursor::new(e.occurred_at, &e.event_id).encode('a')
                })?;
                Ok(AuditPage { entries, next })
            })
            .await
    }

    async fn logins(&self, user_id: &str) -> alpes_domain::Result<LoginCounts> {
        let user_id = user_id.to_owned();
        self.conn
            .read(move |conn| {
                let (total, failed, last_at): (i64, i64, Option<i64>) = conn
                    .prepare_cached(
                        "SELECT COUNT(*), COALESCE(SUM(outcome <> 'ok'), 0), MAX(occurred_at)
                         FROM audit_entries WHERE actor = ?1 AND action = 'login'",
                    )?
                    .query_row(params![user_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
                Ok(LoginCounts {
                    total: u64::try_from(total).unwrap_or_default(),
                    failed: u64::try_from(failed).unwrap_or_default(),
                    last_at,
                })
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_sqlite_audit_table_passes_the_conformance_suite() {
        crate::store::conformance::audit(&SqliteAudit::in_memory().expect("store")).await;
    }

    #[tokio::test]
    async fn a_cursor_that_is_not_ours_is_refused() {
        let store = SqliteAudit::in_memory().expect("store");
        let err = store
            .page(&AuditFilter::default(), Some("i12.x"), 10)
            .await
            .expect_err("foreign cursor");
        assert!(matches!(err, alpes_domain::Error::InvalidCursor));
    }
}
