//! The one writer of a database file: a thread that owns the file's writing
//! connection and runs the writes of every adapter on the file, as many as are
//! waiting, in one transaction (a group commit).
//!
//! Each write runs in a savepoint of its own, so one that fails is rolled back
//! alone and answers its own error; the others still commit. A write is
//! answered only after the group's `COMMIT`, so what it returns is durable as
//! before (`synchronous=NORMAL`, or `FULL` with `--fsync`). Under load a commit
//! carries many writes: the pages they share (a table's last leaf, an index's)
//! go to the log once instead of once per write, and the requests that wait
//! on a write no longer each wait out the commits ahead of them.

use crate::{Error, Result};
use rusqlite::Connection;
use std::panic::AssertUnwindSafe;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

/// At most this many writes share a transaction.
const MAX_GROUP: usize = 128;

/// A write waiting for the writer thread.
trait Job: Send {
    /// Runs the write in its own savepoint on `conn`, keeping what it returned.
    fn run(&mut self, conn: &mut Connection);
    /// Answers the caller: the write's own error, the group's if the commit failed, or its value.
    fn finish(self: Box<Self>, committed: &std::result::Result<(), String>);
}

struct Pending<T, F> {
    write: Option<F>,
    out: Option<Result<T>>,
    reply: tokio::sync::oneshot::Sender<Result<T>>,
}

impl<T: Send, F: FnOnce(&mut Connection) -> Result<T> + Send> Job for Pending<T, F> {
    fn run(&mut self, conn: &mut Connection) {
        let Some(write) = self.write.take() else { return };
        if let Err(e) = conn.execute_batch("SAVEPOINT alpes_write") {
            self.out = Some(Err(e.into()));
            return;
        }
        let out = match std::panic::catch_unwind(AssertUnwindSafe(|| write(conn))) {
            Ok(out) => out,
            Err(_) => Err(Error::Store("a store write panicked".into())),
        };
        self.out = Some(match out {
            Ok(v) => match conn.execute_batch("RELEASE alpes_write") {
                Ok(()) => Ok(v),
                Err(e) => {
                    undo(conn);
                    Err(e.into())
                }
            },
            Err(e) => {
                undo(conn);
                Err(e)
            }
        });
    }

    fn finish(self: Box<Self>, committed: &std::result::Result<(), String>) {
        let out = match (self.out, committed) {
            (Some(Err(e)), _) => Err(e),
            (_, Err(e)) => Err(Error::Store(format!("the commit failed: {e}"))),
            (Some(Ok(v)), Ok(())) => Ok(v),
            (None, Ok(())) => Err(Error::Store("the write did not run".into())),
        };
        let _ = self.reply.send(out);
    }
}

/// Undoes the write in progress alone; the group goes on without it.
fn undo(conn: &Connection) {
    let _ = conn.execute_batch("ROLLBACK TO alpes_write; RELEASE alpes_write");
}

/// The writing connection of one database file and the thread that runs its writes.
pub(crate) struct Writer {
    conn: Arc<Mutex<Connection>>,
    jobs: mpsc::Sender<Box<dyn Job>>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Writer")
    }
}

impl Writer {
    /// Starts the writer thread on `conn`; it stops when the last handle on this writer is dropped.
    pub(crate) fn start(conn: Connection) -> Result<Writer> {
        conn.set_prepared_statement_cache_capacity(256);
        let conn = Arc::new(Mutex::new(conn));
        let (jobs, queue) = mpsc::channel::<Box<dyn Job>>();
        let serving = conn.clone();
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || serve(&serving, &queue))?;
        Ok(Writer { conn, jobs })
    }

    /// The connection itself, for a read on a database that has no readers (in memory).
    pub(crate) fn conn(&self) -> &Mutex<Connection> {
        &self.conn
    }

    /// Runs `write` on the writer thread, in a transaction with whatever other writes wait,
    /// and answers once that transaction has committed.
    pub(crate) async fn write<T: Send + 'static>(&self, write: impl FnOnce(&mut Connection) -> Result<T> + Send + 'static) -> Result<T> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job = Pending {
            write: Some(write),
            out: None,
            reply,
        };
        self.jobs
            .send(Box::new(job))
            .map_err(|_| Error::Store("the SQLite writer thread is gone".into()))?;
        answer.await.map_err(|_| Error::Store("the SQLite writer thread stopped".into()))?
    }
}

fn serve(conn: &Mutex<Connection>, queue: &mpsc::Receiver<Box<dyn Job>>) {
    while let Ok(first) = queue.recv() {
        let mut group = vec![first];
        group.extend(queue.try_iter().take(MAX_GROUP - 1));
        let committed = match conn.lock() {
            Ok(mut conn) => run_group(&mut conn, &mut group),
            Err(_) => Err("connection lock poisoned".to_owned()),
        };
        for job in group {
            job.finish(&committed);
        }
    }
}

fn run_group(conn: &mut Connection, group: &mut [Box<dyn Job>]) -> std::result::Result<(), String> {
    conn.execute_batch("BEGIN IMMEDIATE").map_err(|e| e.to_string())?;
    for job in group.iter_mut() {
        job.run(conn);
    }
    conn.execute_batch("COMMIT").map_err(|e| {
        let _ = conn.execute_batch("ROLLBACK");
        e.to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writer() -> Writer {
        let conn = Connection::open_in_memory().expect("open");
        conn.execute_batch("CREATE TABLE t (n INTEGER PRIMARY KEY)").expect("schema");
        Writer::start(conn).expect("start")
    }

    fn count(w: &Writer) -> i64 {
        w.conn()
            .lock()
            .expect("lock")
            .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
            .expect("count")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_failed_write_is_rolled_back_alone_and_answers_its_own_error() {
        let w = Arc::new(writer());
        let writes = (0..200i64).map(|n| {
            let w = w.clone();
            tokio::spawn(async move {
                w.write(move |conn| {
                    conn.execute("INSERT INTO t (n) VALUES (?1)", [n])?;
                    if n % 10 == 0 {
                        // Written, then failed: this row must not stay.
                        return Err(Error::Store(format!("refused {n}")));
                    }
                    Ok(n)
                })
                .await
            })
        });
        let answers = futures::future::join_all(writes).await;
        for (n, a) in answers.into_iter().enumerate() {
            match a.expect("join") {
                Ok(v) => assert_eq!(v, n as i64),
                Err(e) => assert!(n % 10 == 0 && e.to_string().contains(&format!("refused {n}")), "{n}: {e}"),
            }
        }
        assert_eq!(count(&w), 180, "the 20 failed writes left nothing; the 180 others committed");
    }

    #[tokio::test]
    async fn a_write_that_panics_is_an_error_and_the_writer_goes_on() {
        let w = writer();
        let panicked = w.write(|_conn| -> Result<()> { panic!("boom") }).await;
        assert!(panicked.is_err());
        w.write(|conn| Ok(conn.execute("INSERT INTO t (n) VALUES (1)", [])?))
            .await
            .expect("the next write");
        assert_eq!(count(&w), 1);
    }

    #[tokio::test]
    async fn a_failed_commit_fails_every_write_of_the_group() {
        let w = writer();
        w.conn()
            .lock()
            .expect("lock")
            .execute_batch(
                "PRAGMA foreign_keys = ON;
                 CREATE TABLE parent (id INTEGER PRIMARY KEY);
                 CREATE TABLE child (p INTEGER REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED);",
            )
            .expect("schema");
        // A deferred foreign key is checked at COMMIT: the whole group fails there.
        let out = w
            .write(|conn| {
                conn.execute("INSERT INTO t (n) VALUES (5)", [])?;
                Ok(conn.execute("INSERT INTO child (p) VALUES (42)", [])?)
            })
            .await;
        assert!(out.expect_err("the commit fails").to_string().contains("the commit failed"));
        assert_eq!(count(&w), 0, "nothing of the group stayed");
    }
}
