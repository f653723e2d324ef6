//! How the ScyllaDB adapters prepare and run statements ([`Cql`]): every
//! statement is prepared once with `{ks}` replaced by the keyspace and marked
//! by its [`Kind`], which decides whether the driver may retry it and at
//! which consistency it runs; every driver error becomes [`crate::Error::Store`]
//! naming the step that failed.
//!
//! A lightweight transaction or a serial read that times out in Paxos (a
//! `WriteTimeout` of write type `CAS`: contention on its partition, or a slow
//! replica) has an unknown outcome. A serial read is tried again (it changes
//! nothing and completes the round it found); a lightweight transaction only
//! where its caller says trying it again is harmless
//! ([`Cql::lwt_retried`]).

use super::conn::{backoff, db, serial_read, validate_keyspace, was_applied, ScyllaArgs};
use crate::Result;
use scylla::client::pager::TypedRowStream;
use scylla::client::session::Session;
use scylla::deserialize::row::DeserializeRow;
use scylla::errors::{DbError, ExecutionError, RequestAttemptError, WriteType};
use scylla::response::query_result::QueryResult;
use scylla::serialize::row::SerializeRow;
use scylla::statement::prepared::PreparedStatement;
use scylla::statement::Consistency;
use scylla::statement::SerialConsistency;
use std::sync::Arc;

/// How a statement runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A read or a write that may be repeated: the driver may retry it.
    Plain,
    /// A whole partition, read page by page.
    Scan,
    /// A read at the serial consistency (it also completes a lightweight transaction in flight).
    SerialRead,
    /// A lightweight transaction: never retried by the driver (its outcome decides).
    Lwt,
}

/// How many times a Paxos timeout is tried again.
const CAS_RETRIES: u32 = 4;

/// Whether `e` is a Paxos round that timed out (outcome unknown).
fn cas_timeout(e: &ExecutionError) -> bool {
    matches!(
        e,
        ExecutionError::LastAttemptError(RequestAttemptError::DbError(
            DbError::WriteTimeout {
                write_type: WriteType::Cas,
                ..
            },
            _
        ))
    )
}

/// A session and the keyspace the statements name.
#[derive(Debug, Clone)]
pub(crate) struct Cql {
    session: Arc<Session>,
    keyspace: String,
    page_size: i32,
    serial: SerialConsistency,
}

impl Cql {
    /// Statements of `args.keyspace` on `session`.
    pub(crate) fn new(session: Arc<Session>, args: &ScyllaArgs) -> Result<Cql> {
        validate_keyspace(&args.keyspace)?;
        Ok(Cql {
            session,
            keyspace: args.keyspace.clone(),
            page_size: args.page_size,
            serial: args.serial_consistency,
        })
    }

    /// The keyspace.
    pub(crate) fn keyspace(&self) -> &str {
        &self.keyspace
    }

    /// Prepares `template` (`{ks}` standing for the keyspace) to run as `kind`.
    pub(crate) async fn prepare(&self, template: &str, kind: Kind) -> Result<PreparedStatement> {
        debug_assert_eq!(kind == Kind::Lwt, template.contains(" IF "), "{template}");
        let mut p = self
            .session
            .prepare(template.replace("{ks}", &self.keyspace))
            .await
            .map_err(db("prepare"))?;
        match kind {
            Kind::Plain => p.set_is_idempotent(true),
            Kind::Scan => {
                p.set_is_idempotent(true);
                p.set_page_size(self.page_size);
            }
            Kind::SerialRead => {
                p.set_is_idempotent(true);
                p.set_consistency(serial_read(self.serial));
            }
            Kind::Lwt => p.set_serial_consistency(Some(self.serial)),
        }
        Ok(p)
    }

    /// Runs a plain write.
    pub(crate) async fn write(&self, stmt: &PreparedStatement, values: impl SerializeRow, step: &'static str) -> Result<()> {
        self.session.execute_unpaged(stmt, values).await.map_err(db(step))?;
        Ok(())
    }

    /// Runs a lightweight transaction; whether it applied.
    pub(crate) async fn lwt(&self, stmt: &PreparedStatement, values: impl SerializeRow, step: &'static str) -> Result<bool> {
        was_applied(self.session.execute_unpaged(stmt, values).await.map_err(db(step))?)
    }

    /// Runs a lightweight transaction that may run twice with the same effect (an insert of a
    /// unique value whose caller recognises its own row, a release of its own claim, a move to a
    /// state), trying it again after a Paxos timeout; whether it applied (the last try's answer).
    pub(crate) async fn lwt_retried(&self, stmt: &PreparedStatement, values: impl SerializeRow, step: &'static str) -> Result<bool> {
        was_applied(self.run_retrying(stmt, &values, step).await?)
    }

    /// Runs `stmt`, again after a Paxos timeout (at most [`CAS_RETRIES`] more times).
    async fn run_retrying(&self, stmt: &PreparedStatement, values: &impl SerializeRow, step: &'static str) -> Result<QueryResult> {
        let mut attempt = 0;
        loop {
            match self.session.execute_unpaged(stmt, values).await {
                Err(e) if cas_timeout(&e) && attempt < CAS_RETRIES => {
                    tracing::debug!(step, attempt, "a Paxos round timed out; trying again");
                    tokio::time::sleep(backoff(attempt + 3)).await;
                    attempt += 1;
                }
                other => return other.map_err(db(step)),
            }
        }
    }

    /// The row of a single-row read, if any.
    pub(crate) async fn read_one<T>(&self, stmt: &PreparedStatement, values: impl SerializeRow, step: &'static str) -> Result<Option<T>>
    where
        T: for<'f, 'm> DeserializeRow<'f, 'm>,
    {
        let serial = matches!(stmt.get_consistency(), Some(Consistency::Serial | Consistency::LocalSerial));
        let result = if serial {
            self.run_retrying(stmt, &values, step).await?
        } else {
            self.session.execute_unpaged(stmt, values).await.map_err(db(step))?
        };
        let rows = result.into_rows_result().map_err(db(step))?;
        rows.maybe_first_row::<T>().map_err(db(step))
    }

    /// Every row of a short single-partition read.
    pub(crate) async fn read_rows<T>(&self, stmt: &PreparedStatement, values: impl SerializeRow, step: &'static str) -> Result<Vec<T>>
    where
        T: for<'f, 'm> DeserializeRow<'f, 'm>,
    {
        let result = self.session.execute_unpaged(stmt, values).await.map_err(db(step))?;
        let rows = result.into_rows_result().map_err(db(step))?;
        rows.rows::<T>().map_err(db(step))?.map(|r| r.map_err(db(step))).collect()
    }

    /// A partition, page by page.
    pub(crate) async fn scan<T>(&self, stmt: &PreparedStatement, values: impl SerializeRow, step: &'static str) -> Result<TypedRowStream<T>>
    where
        T: for<'f, 'm> DeserializeRow<'f, 'm>,
    {
        self.session
            .execute_iter(stmt.clone(), values)
            .await
            .map_err(db(step))?
            .rows_stream::<T>()
            .map_err(db(step))
    }
}
