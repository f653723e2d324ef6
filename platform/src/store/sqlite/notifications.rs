//! Notifications and webhooks in the data dir's SQLite file. A notification is claimed by
//! `INSERT OR IGNORE` on its id, so an event delivered twice is notified once.

use super::conn::{rows, SqliteConn, Where};
use crate::Result;
use alpes_domain::notification::{DeliveryState, Notification, NotificationStore, Webhook};
use async_trait::async_trait;
use rusqlite::types::Value;
use rusqlite::{params, OptionalExtension, Row};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS notifications (
    id         TEXT PRIMARY KEY,
    event_id   TEXT NOT NULL,
    event_type TEXT NOT NULL,
    channel    TEXT NOT NULL,
    template   TEXT NOT NULL,
    recipient  TEXT NOT NULL,
    owner      TEXT NOT NULL,
    state      TEXT NOT NULL,
    attempts   INTEGER NOT NULL,
    reason     TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS notifications_by_owner ON notifications(owner, created_at, id);
CREATE INDEX IF NOT EXISTS notifications_by_time ON notifications(created_at, id);
CREATE TABLE IF NOT EXISTS webhooks (
    id             TEXT PRIMARY KEY,
    institution_id TEXT NOT NULL,
    url            TEXT NOT NULL,
    secret         BLOB NOT NULL,
    events         TEXT NOT NULL,
    created_at     INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS webhooks_by_institution ON webhooks(institution_id, created_at, id);
";

const COLUMNS: &str = "id, event_id, event_type, channel, template, recipient, owner, state, attempts, reason, created_at, updated_at";

/// The SQLite notification store.
#[derive(Debug, Clone)]
pub struct SqliteNotifications {
    conn: SqliteConn,
}

impl SqliteNotifications {
    /// Opens (creating) its tables in the database at `path`.
    pub fn open(path: &std::path::Path, fsync: bool) -> Result<SqliteNotifications> {
        Ok(SqliteNotifications {
            conn: SqliteConn::open(path, fsync, SCHEMA)?,
        })
    }

    /// A private in-memory database (tests).
    pub fn in_memory() -> Result<SqliteNotifications> {
        Ok(SqliteNotifications {
            conn: SqliteConn::in_memory(SCHEMA)?,
        })
    }
}

fn notification_of(r: &Row<'_>) -> rusqlite::Result<Notification> {
    let state: String = r.get(7)?;
    Ok(Notification {
        id: r.get(0)?,
        event_id: r.get(1)?,
        event_type: r.get(2)?,
        channel: r.get(3)?,
        template: r.get(4)?,
        recipient: r.get(5)?,
        owner: r.get(6)?,
        state: DeliveryState::parse(&state)
            .ok_or_else(|| rusqlite::Error::FromSqlConversionFailure(7, rusqlite::types::Type::Text, "unknown delivery state".into()))?,
        attempts: r.get(8)?,
        reason: r.get(9)?,
        created_at: r.get(10)?,
        updated_at: r.get(11)?,
    })
}

fn webhook_of(r: &Row<'_>) -> rusqlite::Result<Webhook> {
    let events: String = r.get(4)?;
    Ok(Webhook {
        id: r.get(0)?,
        institution_id: r.get(1)?,
        url: r.get(2)?,
        secret: r.get(3)?,
        events: events.split(',').filter(|e| !e.is_empty()).map(str::to_owned).collect(),
        created_at: r.get(5)?,
    })
}

#[async_trait]
impl NotificationStore for SqliteNotifications {
    async fn claim(&self, n: &Notification) -> alpes_domain::Result<Option<Notification>> {
        let n = n.clone();
        self.conn
            .with(move |conn| {
                let inserted = conn
                    .prepare_cached(&format!(
                        "INSERT OR IGNORE INTO notifications ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
                    ))?
                    .execute(params![
                        n.id,
                        n.event_id,
                        n.event_type,
                        n.channel,
                        n.template,
                        n.recipient,
                        n.owner,
                        n.state.as_str(),
                        n.attempts,
                        n.reason,
                        n.created_at,
                        n.updated_at
                    ])?;
                if inserted == 1 {
                    return Ok(None);
                }
                let sql = format!("SELECT {COLUMNS} FROM notifications WHERE id = ?1");
                Ok(conn.prepare_cached(&sql)?.query_row(params![n.id], notification_of).optional()?)
            })
            .await
    }

    async fn settle(&self, id: &str, state: DeliveryState, attempts: u32, reason: Option<&str>, at: i64) -> alpes_domain::Result<()> {
        let (id, reason) = (id.to_owned(), reason.map(str::to_owned));
        self.conn
            .with(move |conn| {
                conn.prepare_cached("UPDATE notifications SET state = ?2, attempts = ?3, reason = ?4, updated_at = ?5 WHERE id = ?1")?
                    .execute(params![id, state.as_str(), attempts, reason, at])?;
                Ok(())
            })
            .await
    }

    async fn notifications(
        &self,
        owner: Option<&str>,
        before: Option<(i64, String)>,
        limit: usize,
    ) -> alpes_domain::Result<Vec<Notification>> {
        let owner = owner.map(str::to_owned);
        self.conn
            .read(move |conn| {
                let mut w = Where::default();
                w.opt("owner = ?", owner);
                if let Some((at, id)) = before {
                    w.push(
                        "(created_at < ? OR (created_at = ? AND id < ?))",
                        [Value::Integer(at), Value::Integer(at), Value::Text(id)],
                    );
                }
                let sql = format!(
                    "SELECT {COLUMNS} FROM notifications {} ORDER BY created_at DESC, id DESC LIMIT {}",
                    w.sql(),
                    i64::try_from(limit).unwrap_or(i64::MAX)
                );
                rows(conn, &sql, w.params, notification_of)
            })
            .await
    }

    async fn add_webhook(&self, w: &Webhook) -> alpes_domain::Result<()> {
        let w = w.clone();
        self.conn
            .with(move |conn| {
                conn.prepare_cached(
                    "INSERT INTO webhooks (id, institution_id, url, secret, events, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?
                .execute(params![w.id, w.institution_id, w.url, w.secret, w.events.join(","), w.created_at])?;
                Ok(())
            })
            .await
    }

    async fn webhooks(&self, institution_id: &str) -> alpes_domain::Result<Vec<Webhook>> {
        let institution_id = institution_id.to_owned();
        self.conn
            .read(move |conn| {
                rows(
                    conn,
                    "SELECT id, institution_id, url, secret, events, created_at FROM webhooks WHERE institution_id = ?1 ORDER BY created_at, id",
                    vec![Value::Text(institution_id)],
                    webhook_of,
                )
            })
            .await
    }

    async fn delete_webhook(&self, institution_id: &str, id: &str) -> alpes_domain::Result<bool> {
        let (institution_id, id) = (institution_id.to_owned(), id.to_owned());
        self.conn
            .with(move |conn| {
                let n = conn
                    .prepare_cached("DELETE FROM webhooks WHERE institution_id = ?1 AND id = ?2")?
                    .execute(params![institution_id, id])?;
                Ok(n == 1)
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_sqlite_notification_store_passes_the_conformance_suite() {
        let store = SqliteNotifications::in_memory().expect("open");
        crate::store::conformance::notifications::all(&store).await;
    }
}
