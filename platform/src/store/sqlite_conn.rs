//! The one SQLite connection each embedded adapter keeps: WAL, a busy timeout,
//! its schema applied, behind a mutex, and used only from the blocking pool.

use crate::{Error, Result};
use rusqlite::{Connection, Transaction, TransactionBehavior};
use std::sync::{Arc, Mutex};

/// A shared SQLite connection.
#[derive(Debug, Clone)]
pub(crate) struct SqliteConn {
    conn: Arc<Mutex<Connection>>,
}

impl SqliteConn {
    /// Opens (creating) the database at `path` and applies `schema`; with
    /// `fsync`, every commit is flushed to disk before it returns
    /// (`synchronous=FULL`, else `NORMAL`: a commit survives a crash of the
    /// process, not necessarily a power loss).
    pub(crate) fn open(path: &std::path::Path, fsync: bool, schema: &str) -> Result<SqliteConn> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        Self::init(Connection::open(path)?, fsync, schema)
    }

    /// A private in-memory database with `schema` (tests).
    pub(crate) fn in_memory(schema: &str) -> Result<SqliteConn> {
        Self::init(Connection::open_in_memory()?, false, schema)
    }

    fn init(conn: Connection, fsync: bool, schema: &str) -> Result<SqliteConn> {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", if fsync { "FULL" } else { "NORMAL" })?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(schema)?;
        Ok(SqliteConn {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Runs `f` on the connection, on the blocking pool.
    pub(crate) async fn with<T: Send + 'static>(&self, f: impl FnOnce(&mut Connection) -> Result<T> + Send + 'static) -> Result<T> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().map_err(|_| Error::Store("connection lock poisoned".into()))?;
            f(&mut guard)
        })
        .await
        .map_err(|e| Error::Store(e.to_string()))?
    }
}

/// Begins a write transaction: `BEGIN IMMEDIATE`, which takes the write lock
/// first (waiting up to the busy timeout for it). A deferred transaction that
/// reads before it writes fails at once with "database is locked" when another
/// connection to the same file (ingest, ledger and catalog each keep one)
/// committed in between, whatever the busy timeout.
pub(crate) fn write_tx(conn: &mut Connection) -> Result<Transaction<'_>> {
    Ok(conn.transaction_with_behavior(TransactionBehavior::Immediate)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn writers_on_separate_connections_to_one_file_wait_for_each_other() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("alpes.db");
        let schema = "CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, n INTEGER NOT NULL);";
        let conns: Vec<SqliteConn> = (0..4).map(|_| SqliteConn::open(&path, false, schema).expect("open")).collect();
        let writers = conns.iter().cycle().take(16).cloned().map(|c| {
            tokio::spawn(async move {
                for _ in 0..50 {
                    c.with(|conn| {
                        let tx = write_tx(conn)?;
                        // Read, then write: the pattern a deferred transaction cannot upgrade under contention.
                        let n: i64 = tx.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))?;
                        tx.execute("INSERT INTO t (n) VALUES (?1)", [n])?;
                        tx.commit()?;
                        Ok(())
                    })
                    .await?;
                }
                Ok::<_, Error>(())
            })
        });
        for w in futures::future::join_all(writers).await {
            w.expect("join").expect("every write commits");
        }
        let n: i64 = conns[0]
            .with(|conn| Ok(conn.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))?))
            .await
            .expect("count");
        assert_eq!(n, 16 * 50);
    }

    #[tokio::test]
    async fn fsync_makes_every_commit_flush() {
        let dir = tempfile::tempdir().expect("tmp");
        for (fsync, expected) in [(true, 2), (false, 1)] {
            let c = SqliteConn::open(&dir.path().join(format!("{fsync}.db")), fsync, "").expect("open");
            let sync: i64 = c
                .with(|conn| Ok(conn.query_row("PRAGMA synchronous", [], |r| r.get(0))?))
                .await
                .expect("pragma");
            assert_eq!(sync, expected, "fsync {fsync}: 2 is FULL, 1 is NORMAL");
        }
    }
}
