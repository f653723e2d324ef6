//! The SQLite connections each embedded adapter keeps: the file's one
//! [`Writer`] (WAL, a busy timeout, every adapter's schema applied, its own
//! thread, group commits) and a few read-only readers of its own.
//!
//! Every adapter opened on one file in a process shares that file's writer.
//! With a writing connection each, their transactions queued on SQLite's file
//! lock, whose busy handler sleeps 1, 2, 5, 10 ms and more between tries: an
//! upload's claim waited out a projection's commit in sleeps. Nor does a commit
//! copy the log into the database when the log passes 1,000 pages (SQLite's
//! automatic checkpoint, which made one commit in a few hundred take
//! milliseconds and an fsync): a thread per file does it every
//! [`CHECKPOINT_EVERY`], beside the writer.
//!
//! In WAL mode a reader never waits for the writer, nor the writer for a
//! reader. A point lookup by primary key takes microseconds, less than the
//! hop to the blocking pool and back, so [`SqliteConn::read_now`] runs it
//! right on the calling task; longer reads (pages, aggregates) go to the
//! blocking pool on a reader ([`SqliteConn::read`]).

use super::writer::Writer;
use crate::{Error, Result};
use rusqlite::types::Value;
use rusqlite::{params_from_iter, Connection, OpenFlags, Row, Savepoint};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex, TryLockError, Weak};
use std::time::Duration;

/// How long a connection waits for another process's lock on the file.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How often a file's checkpointer copies the write-ahead log into the database.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// The writer's own automatic checkpoint, kept only as a backstop should the
/// checkpointer fall behind: 65,536 pages (256 MiB of log).
const BACKSTOP_CHECKPOINT_PAGES: i64 = 65_536;

/// The log is cut back to this size after a checkpoint empties it.
const WAL_SIZE_LIMIT: i64 = 64 << 20;

/// Each open database file's writer, by absolute path.
static WRITERS: LazyLock<Mutex<HashMap<PathBuf, Weak<Writer>>>> = LazyLock::new(Mutex::default);

/// A shared SQLite database: one writer, some readers.
#[derive(Debug, Clone)]
pub(crate) struct SqliteConn {
    writer: Arc<Writer>,
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
    pub(crate) fn open(path: &Path, fsync: bool, schema: &str) -> Result<SqliteConn> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let writer = shared_writer(path, fsync, schema)?;
        let conns = (0..reader_count())
            .map(|_| {
                let r = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
                r.busy_timeout(BUSY_TIMEOUT)?;
                Ok(Mutex::new(r))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(SqliteConn {
            writer,
            readers: Arc::new(Readers {
                conns,
                next: AtomicUsize::new(0),
            }),
        })
    }

    /// A private in-memory database with `schema` (tests).
    pub(crate) fn in_memory(schema: &str) -> Result<SqliteConn> {
        Ok(SqliteConn {
            writer: Arc::new(Writer::start(writer(Connection::open_in_memory()?, false, schema)?)?),
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
            return f(&*self.writer.conn().lock().map_err(|_| poisoned())?);
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

    /// Runs the write `f` on the file's writer thread, in one transaction with
    /// the other writes waiting there; answers once it has committed.
    pub(crate) async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    ) -> alpes_domain::Result<T> {
        Ok(self.writer.write(f).await?)
    }
}

/// `conn` set up as a writer, with `schema` applied.
fn writer(conn: Connection, fsync: bool, schema: &str) -> Result<Connection> {
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", if fsync { "FULL" } else { "NORMAL" })?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.execute_batch(schema)?;
    Ok(conn)
}

/// The writer of the file at `path`, shared by every adapter on it in this
/// process, with `schema` applied; the first opens it and starts its checkpointer.
fn shared_writer(path: &Path, fsync: bool, schema: &str) -> Result<Arc<Writer>> {
    let key = std::path::absolute(path)?;
    let mut writers = WRITERS.lock().map_err(|_| Error::Store("writer registry poisoned".into()))?;
    writers.retain(|_, w| w.strong_count() > 0);
    if let Some(shared) = writers.get(&key).and_then(Weak::upgrade) {
        shared
            .conn()
            .lock()
            .map_err(|_| Error::Store("connection lock poisoned".into()))?
            .execute_batch(schema)?;
        return Ok(shared);
    }
    let conn = writer(Connection::open(path)?, fsync, schema)?;
    conn.pragma_update(None, "wal_autocheckpoint", BACKSTOP_CHECKPOINT_PAGES)?;
    conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT)?;
    let shared = Arc::new(Writer::start(conn)?);
    spawn_checkpointer(path, Arc::downgrade(&shared))?;
    writers.insert(key, Arc::downgrade(&shared));
    Ok(shared)
}

/// Every [`CHECKPOINT_EVERY`], copies what the log holds into the database
/// (a passive checkpoint: it waits for no reader and blocks no writer), until
/// the file's writer is gone.
fn spawn_checkpointer(path: &Path, writer: Weak<Writer>) -> Result<()> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    std::thread::Builder::new().name("sqlite-checkpoint".into()).spawn(move || loop {
        std::thread::sleep(CHECKPOINT_EVERY);
        if writer.strong_count() == 0 {
            break;
        }
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(error = %e, "SQLite checkpoint failed; the next one retries");
        }
    })?;
    Ok(())
}

/// Begins the writes of one store call: a savepoint inside the writer's
/// transaction (see [`Writer`]), committed by `commit()` and rolled back if
/// dropped. The writer began that transaction `IMMEDIATE`, taking the file's
/// write lock first: a deferred one that reads before it writes fails at once
/// with "database is locked" when another process's connection to the file
/// committed in between, whatever the busy timeout.
pub(crate) fn write_tx(conn: &mut Connection) -> Result<Savepoint<'_>> {
    Ok(conn.savepoint()?)
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
    async fn stores_on_one_file_share_its_writer_and_queue_on_it() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("alpes.db");
        let schema = "CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, n INTEGER NOT NULL);";
        let conns: Vec<SqliteConn> = (0..4).map(|_| SqliteConn::open(&path, false, schema).expect("open")).collect();
        assert!(
            conns.iter().all(|c| Arc::ptr_eq(&c.writer, &conns[0].writer)),
            "one writer per file"
        );
        let other = SqliteConn::open(&dir.path().join("other.db"), false, schema).expect("open");
        assert!(!Arc::ptr_eq(&other.writer, &conns[0].writer), "another file has its own writer");
        let writers = conns.iter().cycle().take(16).cloned().map(|c| {
            tokio::spawn(async move {
                for _ in 0..50 {
                    c.with(|conn| {
                        let tx = write_tx(conn)?;
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
    async fn another_connection_to_the_file_waits_for_the_writer() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("alpes.db");
        let c = SqliteConn::open(&path, false, "CREATE TABLE IF NOT EXISTS t (n INTEGER);").expect("open");
        // Another process's connection (the CLI's, say): it reads, then writes, while this one commits.
        let mut outside = writer(Connection::open(&path).expect("open"), false, "").expect("writer");
        let inside = c.with(|conn| {
            let tx = write_tx(conn)?;
            tx.execute("INSERT INTO t (n) VALUES (1)", [])?;
            std::thread::sleep(Duration::from_millis(50));
            tx.commit()?;
            Ok(())
        });
        let outside = tokio::task::spawn_blocking(move || {
            let tx = outside.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let n: i64 = tx.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))?;
            tx.execute("INSERT INTO t (n) VALUES (?1)", [n + 1])?;
            tx.commit()?;
            Ok::<_, Error>(())
        });
        inside.await.expect("inside");
        outside.await.expect("join").expect("the outside write waits, then commits");
        let n: i64 = c
            .read_now(|conn| Ok(conn.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))?))
            .expect("count");
        assert_eq!(n, 2);
    }

    #[tokio::test]
    async fn the_checkpointer_moves_the_log_into_the_database() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("alpes.db");
        let c = SqliteConn::open(&path, false, "CREATE TABLE IF NOT EXISTS t (b BLOB);").expect("open");
        let before = std::fs::metadata(&path).expect("db").len();
        c.with(|conn| {
            let tx = write_tx(conn)?;
            for _ in 0..512 {
                tx.execute("INSERT INTO t (b) VALUES (zeroblob(1024))", [])?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
        .expect("write");
        // Far below the writer's backstop: only the checkpointer can move these pages.
        let deadline = std::time::Instant::now() + 4 * CHECKPOINT_EVERY;
        while std::fs::metadata(&path).expect("db").len() < before + 512 * 1024 {
            assert!(
                std::time::Instant::now() < deadline,
                "the log was not checkpointed within {:?}",
                4 * CHECKPOINT_EVERY
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
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
