//! The one SQLite connection each embedded adapter keeps: WAL, a busy timeout,
//! its schema applied, behind a mutex, and used only from the blocking pool.

use crate::{Error, Result};
use rusqlite::Connection;
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

#[cfg(test)]
mod tests {
    use super::*;

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
