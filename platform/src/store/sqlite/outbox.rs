//! The SQLite outbox (`outbox` and `outbox_readers` in `alpes.db`): an event
//! and, per consumer group still to apply it, one reader row.

use super::conn::{write_tx, SqliteConn};
use crate::store::outbox::{OutboxRow, OutboxStore};
use crate::Result;
use alpes_schemas::now_millis;
use async_trait::async_trait;
use rusqlite::params;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS outbox (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    topic      TEXT NOT NULL,
    key        TEXT NOT NULL,
    payload    BLOB NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox_readers (
    id     INTEGER NOT NULL,
    reader TEXT NOT NULL,
    PRIMARY KEY (id, reader)
) WITHOUT ROWID;
";

/// The SQLite outbox.
#[derive(Debug, Clone)]
pub struct SqliteOutbox {
    conn: SqliteConn,
}

impl SqliteOutbox {
    /// Opens (creating) the outbox tables in the database at `path`.
    pub fn open(path: &std::path::Path, fsync: bool) -> Result<SqliteOutbox> {
        Ok(SqliteOutbox {
            conn: SqliteConn::open(path, fsync, SCHEMA)?,
        })
    }

    /// A private in-memory outbox (tests).
    pub fn in_memory() -> Result<SqliteOutbox> {
        Ok(SqliteOutbox {
            conn: SqliteConn::in_memory(SCHEMA)?,
        })
    }
}

#[async_trait]
impl OutboxStore for SqliteOutbox {
    async fn put(&self, topic: &str, key: &str, payload: Vec<u8>, readers: Vec<String>) -> alpes_domain::Result<i64> {
        let (topic, key) = (topic.to_owned(), key.to_owned());
        self.conn
            .with(move |conn| {
                let tx = write_tx(conn)?;
                tx.prepare_cached("INSERT INTO outbox (topic, key, payload, created_at) VALUES (?1, ?2, ?3, ?4)")?
                    .execute(params![topic, key, payload, now_millis()])?;
                let id = tx.last_insert_rowid();
                for r in &readers {
                    tx.prepare_cached("INSERT OR IGNORE INTO outbox_readers (id, reader) VALUES (?1, ?2)")?
                        .execute(params![id, r])?;
                }
                tx.commit()?;
                Ok(id)
            })
            .await
    }

    async fn settle(&self, reader: &str, ids: Vec<i64>) -> alpes_domain::Result<()> {
        let reader = reader.to_owned();
        self.conn
            .with(move |conn| {
                let tx = write_tx(conn)?;
                for id in ids {
                    tx.prepare_cached("DELETE FROM outbox_readers WHERE id = ?1 AND reader = ?2")?
                        .execute(params![id, reader])?;
                    tx.prepare_cached("DELETE FROM outbox WHERE id = ?1 AND NOT EXISTS (SELECT 1 FROM outbox_readers WHERE id = ?1)")?
                        .execute(params![id])?;
                }
                tx.commit()?;
                Ok(())
            })
            .await
    }

    async fn discard(&self, id: i64) -> alpes_domain::Result<()> {
        self.conn
            .with(move |conn| {
                let tx = write_tx(conn)?;
                tx.prepare_cached("DELETE FROM outbox_readers WHERE id = ?1")?
                    .execute(params![id])?;
                tx.prepare_cached("DELETE FROM outbox WHERE id = ?1")?.execute(params![id])?;
                tx.commit()?;
                Ok(())
            })
            .await
    }

    async fn waiting(&self) -> alpes_domain::Result<Vec<OutboxRow>> {
        self.conn
            .read(|conn| {
                let mut stmt = conn.prepare("SELECT id, topic, key, payload FROM outbox ORDER BY id")?;
                let rows = stmt.query_map([], |r| {
                    Ok(OutboxRow {
                        id: r.get(0)?,
                        topic: r.get(1)?,
                        key: r.get(2)?,
                        payload: r.get(3)?,
                    })
                })?;
                Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(rows: &[OutboxRow]) -> Vec<i64> {
        rows.iter().map(|r| r.id).collect()
    }

    #[tokio::test]
    async fn an_event_stays_until_every_reader_settled_it() {
        let outbox = SqliteOutbox::in_memory().expect("outbox");
        let readers = || vec!["billing".to_owned(), "materializer".to_owned()];
        let a = outbox.put("alpes.usage", "k1", b"a".to_vec(), readers()).await.expect("put");
        let b = outbox.put("alpes.usage", "k2", b"b".to_vec(), readers()).await.expect("put");
        let waiting = outbox.waiting().await.expect("waiting");
        assert_eq!(ids(&waiting), vec![a, b]);
        assert_eq!(
            (waiting[0].topic.as_str(), waiting[0].key.as_str(), &waiting[0].payload[..]),
            ("alpes.usage", "k1", &b"a"[..])
        );

        outbox.settle("billing", vec![a, b]).await.expect("settle");
        outbox.settle("billing", vec![a]).await.expect("settling twice changes nothing");
        assert_eq!(
            ids(&outbox.waiting().await.expect("waiting")),
            vec![a, b],
            "the materializer has not applied them"
        );
        outbox.settle("materializer", vec![a, 999]).await.expect("settle");
        assert_eq!(ids(&outbox.waiting().await.expect("waiting")), vec![b]);
        outbox.settle("someone-else", vec![b]).await.expect("settle");
        assert_eq!(
            ids(&outbox.waiting().await.expect("waiting")),
            vec![b],
            "only its own readers settle it"
        );
    }
}
