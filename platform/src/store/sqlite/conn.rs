//! The SQLite connections each embedded adapter keeps: one writer (WAL, a
//! busy timeout, its schema applied, behind a mutex, used only from the
//! blocking pool) and a few read-only readers.
//!
//! In WAL mode a reader never waits for the writer, nor the writer for a
//! reader. A point lookup by primary key takes microseconds, less than the
//! hop to the blocking pool and back, so [`SqliteConn::read_now`] runs it
//! right on the calling task; longer reads (pages, aggregates) go to the
//! blocking pool on a reader ([`SqliteConn::read`]).

use crate::{Error, Result};
use rusqlite::types::Value;
use rusqlite::{params_from_iter, Connection, OpenFlags, Row, Transaction, TransactionBehavior};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, TryLockError};

/// A shared SQLite database: one writer, some readers.
#[derive(Debug, Clone)]
pub(crate) struct SqliteConn {
    conn: Arc<Mutex<Connection>>,
    readers: Arc<Readers>,
}

/// The read-only connections (none for an in-memory database: reads then use the writer).
#[derive(Debug)]
struct Readers {
    conns: Vec<Mutex<Connection>>,
    next: AtomicUsize,
}

/// How many readers a file-backed database gets: one per core, 2 to 8.
fn reader_count() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 8))
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
        let writer = Self::init(Connection::open(path)?, fsync, schema)?;
        let conns = (0..reader_count())
            .map(|_| {
                let r = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
                r.busy_timeout(std::time::Duration::from_secs(5))?;
                Ok(Mutex::new(r))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(SqliteConn {
            readers: Arc::new(Readers {
                conns,
                next: AtomicUsize::new(0),
            }),
            ..writer
        })
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
            readers: Arc::new(Readers {
                conns: Vec::new(),
                next: AtomicUsize::new(0),
            }),
        })
    }

    /// Runs the short read `f` (a lookup by key) on a reader, on the calling
    /// thread: a free reader if there is one, else the next in turn.
    pub(crate) fn read_now<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let poisoned = || Error::Store("connection lock poisoned".into());
        let conns = &self.readers.conns;
        if conns.is_empty() {
            return f(&*self.conn.lock().map_err(|_| poisoned())?);
        }
        let start = self.readers.next.fetch_add(1, Ordering::Relaxed);
        for i in 0..conns.len() {
            match conns[(start + i) % conns.len()].try_lock() {
                Ok(conn) => return f(&conn),
                Err(TryLockError::WouldBlock) => {}
                Err(TryLockError::Poisoned(_)) => return Err(poisoned()),
            }
        }
        f(&*conns[start % conns.len()].lock().map_err(|_| poisoned())?)
    }

    /// Runs the read `f` on a reader, on the blocking pool; its error as the port's.
    pub(crate) async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> alpes_domain::Result<T> {
        let this = self.clone();
        let done = tokio::task::spawn_blocking(move || this.read_now(f)).await;
        Ok(done.map_err(|e| Error::Store(e.to_string()))??)
    }

    /// Runs `f` on the connection, on the blocking pool; its error as the port's.
    pub(crate) async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    ) -> alpes_domain::Result<T> {
        let conn = self.conn.clone();
        let done = tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().map_err(|_| Error::Store("connection lock poisoned".into()))?;
            f(&mut guard)
        })
        .await;
        Ok(done.map_err(|e| Error::Store(e.to_string()))??)
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

/// Every row of `sql` with `params`, mapped by `row`.
pub(crate) fn rows<T>(
    conn: &Connection,
    sql: &str,
    params: Vec<Value>,
    row: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>> {
    Ok(conn
        .prepare_cached(sql)?
        .query_map(params_from_iter(params), row)?
        .collect::<rusqlite::Result<Vec<_>>>()?)
}

/// Runs `sql` (which asks for `limit + 1` rows) and turns the extra row, if
/// any, into the cursor of the next page.
pub(crate) fn keyset_page<T>(
    conn: &Connection,
    sql: &str,
    params: Vec<Value>,
    limit: usize,
    row: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
    cursor: impl Fn(&T) -> String,
) -> Result<(Vec<T>, Option<String>)> {
    let mut items = rows(conn, sql, params, row)?;
    let next = if items.len() > limit {
        items.truncate(limit);
        items.last().map(cursor)
    } else {
        None
    };
    Ok((items, next))
}

/// A WHERE clause built one condition at a time, with its parameters.
#[derive(Default)]
pub(crate) struct Where {
    conds: Vec<String>,
    pub(crate) params: Vec<Value>,
}

impl Where {
    pub(crate) fn push(&mut self, cond: &str, values: impl IntoIterator<Item = Value>) {
        self.conds.push(cond.to_owned());
        self.params.extend(values);
    }

    pub(crate) fn opt(&mut self, cond: &str, value: Option<impl Into<Value>>) {
        if let Some(v) = value {
            self.push(cond, [v.into()]);
        }
    }

    pub(crate) fn sql(&self) -> String {
        if self.conds.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.conds.join(" AND "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn readers_see_committed_writes_and_cannot_write() {
        let dir = tempfile::tempdir().expect("tmp");
        let c = SqliteConn::open(&dir.path().join("alpes.db"), false, "CREATE TABLE IF NOT EXISTS t (n INTEGER);").expect("open");
        assert_eq!(c.readers.conns.len(), reader_count());
        c.with(|conn| Ok(conn.execute("INSERT INTO t (n) VALUES (7)", []).map(drop)?))
            .await
            .expect("write");
        let n: i64 = c
            .read_now(|conn| Ok(conn.query_row("SELECT n FROM t", [], |r| r.get(0))?))
            .expect("read now");
        assert_eq!(n, 7);
        let m: i64 = c
            .read(|conn| Ok(conn.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))?))
            .await
            .expect("read");
        assert_eq!(m, 1);
        assert!(
            c.read_now(|conn| Ok(conn.execute("INSERT INTO t (n) VALUES (8)", [])?)).is_err(),
            "a reader is read-only"
        );
    }

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
