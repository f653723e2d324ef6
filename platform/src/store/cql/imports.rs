//! The import store on ScyllaDB (or any CQL cluster), shared by every replica
//! of the API and the importer: import jobs, their states, and the outcome of
//! each of their items. The tables are in `schemas/cql/009_imports.cql`, the
//! statements in [`statements`].
//!
//! SQLite gets each rule of [`ImportStore`] from one conditional statement;
//! here each rule has one single-partition commit point, a lightweight
//! transaction (LWT) where replicas can race, and the index rows are written
//! idempotently and checked against the job's row when read.
//!
//! # Jobs: the `import_jobs` row is the commit point
//!
//! `import_jobs` is keyed by `job_id`. **A job exists once its row does**:
//! [`ImportStore::create_job`] first writes its two index rows (plain writes),
//! then the row itself with `INSERT ... IF NOT EXISTS`. An insert that does not
//! apply is answered `Ok` only if the row found is this job's (a retry after a
//! Paxos timeout whose first try applied); otherwise the id is taken, an error.
//!
//! # States: compare-and-set, never plain writes
//!
//! Every write of `state`, `reason`, `started_at` and `finished_at` is an LWT,
//! so a later move is never shadowed by an earlier write with a later clock:
//! one statement, `UPDATE ... IF state IN (?, ?)`, bound with the states
//! [`may_come_from`] allows (the same state twice when there is one), and with
//! the columns it does not change left unset. A cancel and an importer's last
//! move cannot both win, and a final state never moves again. A move to
//! running is two LWTs: from pending, setting `started_at`; failing that, from
//! running, leaving it (a replayed job runs again and keeps its first start).
//! A move to a final state sets `finished_at`.
//!
//! `total` is the one column no LWT writes, so [`ImportStore::set_total`] is a
//! plain write (after a read: a total of an unknown job is not written; a row
//! without `provider_id` would not be a job anyway). A job created with a
//! total has it written the same way, after its row.
//!
//! # Listings: two index tables, paged by key
//!
//! `import_jobs_by_provider` (one partition per provider) and
//! `import_jobs_by_time` (every provider's, one fixed partition, shard 0) are
//! clustered by `(created_at DESC, job_id DESC)`, so a page is one slice
//! `(created_at, job_id) < (?, ?)` of one partition. Each index row is checked
//! against its job's row: one whose job does not exist (a create that stopped
//! half-way, or lost to another job with its id), or whose job has another
//! provider or creation time, is skipped, and the page is filled from the
//! next rows.
//!
//! # Items: the first outcome is kept
//!
//! `import_items` has one partition per job, clustered by `item_key`, so
//! [`ImportStore::items`] reads one partition, in key order. An outcome is
//! recorded with `INSERT ... IF NOT EXISTS`: of two importers recording one
//! item, exactly one is told it was kept.
//!
//! # Differences from SQLite
//!
//! - Creating a job takes two plain writes and a Paxos round; each move of a
//!   state and each item's outcome a Paxos round (a first start, two when it
//!   is a replay).
//! - An LWT whose Paxos round times out is tried again; if its first try had
//!   applied, the retry is answered as a loser would be: a move or an item
//!   that did apply (with this call's values) is answered `false`.
//! - Creating a job twice with the same values answers `Ok` both times (SQLite
//!   refuses the second); with other values under the same id, an error.
//! - The all-providers listing is one partition: fine for the number of jobs
//!   providers ask for (thousands a day), not for millions.
//!
//! Lightweight transactions need a keyspace without tablets on ScyllaDB
//! versions whose tablets lack them (`alpes migrate --tablets`).

mod statements;

use super::conn::db;
use super::exec::Cql;
use crate::store::import_rows::{parse_spec, parse_state, spec_json};
use crate::store::{ImportItem, ImportJob, ImportState, ImportStore, ItemOutcome};
use crate::{Error, Result};
use alpes_domain::import::may_come_from;
use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt};
use scylla::client::session::Session;
use scylla::value::MaybeUnset;
use scylla::DeserializeRow;
use statements::Statements;
use std::fmt;
use std::sync::Arc;

/// The one partition of `import_jobs_by_time`.
const TIME_SHARD: i32 = 0;
/// The most index rows one listing reads at a time.
const PAGE_ROWS: usize = 500;
/// Job rows read at once by a listing.
const IN_FLIGHT: usize = 16;

/// The ScyllaDB import store. Cheap to clone; the statements are prepared once, by [`ScyllaImports::new`].
#[derive(Clone)]
pub struct ScyllaImports {
    cql: Cql,
    st: Arc<Statements>,
}

impl fmt::Debug for ScyllaImports {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScyllaImports")
            .field("keyspace", &self.cql.keyspace())
            .finish_non_exhaustive()
    }
}

/// An `import_jobs` row as stored.
#[derive(Debug, Clone, DeserializeRow)]
struct JobRow {
    job_id: String,
    provider_id: Option<String>,
    created_by: Option<String>,
    spec: Option<String>,
    state: Option<String>,
    reason: Option<String>,
    total: Option<i64>,
    created_at: Option<i64>,
    started_at: Option<i64>,
    finished_at: Option<i64>,
}

/// A row that lacks a column Alpes always writes.
fn corrupt(table: &str) -> Error {
    Error::Store(format!("scylla: an {table} row lacks a column it is always written with"))
}

impl JobRow {
    /// The job, or `None` for a row that is not one (no `provider_id`: a stray `total`).
    fn job(self) -> Result<Option<ImportJob>> {
        let Some(provider_id) = self.provider_id else {
            return Ok(None);
        };
        let (Some(created_by), Some(spec), Some(state), Some(created_at)) = (self.created_by, self.spec, self.state, self.created_at)
        else {
            return Err(corrupt("import_jobs"));
        };
        Ok(Some(ImportJob {
            job_id: self.job_id,
            provider_id,
            created_by,
            spec: parse_spec(&spec)?,
            state: parse_state(&state)?,
            reason: self.reason,
            total: self.total.map(|t| t.max(0) as u64),
            created_at,
            started_at: self.started_at,
            finished_at: self.finished_at,
        }))
    }
}

/// An `import_items` row as stored.
#[derive(Debug, Clone, DeserializeRow)]
struct ItemRow {
    item_key: String,
    outcome: Option<String>,
    image_id: Option<String>,
    reason: Option<String>,
    recorded_at: Option<i64>,
}

impl ItemRow {
    fn item(self) -> Result<ImportItem> {
        let outcome = self.outcome.ok_or_else(|| corrupt("import_items"))?;
        Ok(ImportItem {
            key: self.item_key,
            outcome: ItemOutcome::parse(&outcome).ok_or_else(|| Error::Store("an import item has an unknown outcome".into()))?,
            image_id: self.image_id,
            reason: self.reason,
            at: self.recorded_at.ok_or_else(|| corrupt("import_items"))?,
        })
    }
}

fn unset_if_none<T>(v: Option<T>) -> MaybeUnset<T> {
    v.map_or(MaybeUnset::Unset, MaybeUnset::Set)
}

fn stored_total(total: u64) -> Result<i64> {
    i64::try_from(total).map_err(|_| Error::Store("an import job's total is too large to store".into()))
}

impl ScyllaImports {
    /// The import store in `args.keyspace` on an open session; prepares every statement now (the
    /// tables must exist: `alpes migrate`).
    pub async fn new(session: Arc<Session>, args: &super::ScyllaArgs) -> Result<ScyllaImports> {
        let cql = Cql::new(session, args)?;
        let st = Statements::prepare(&cql).await?;
        Ok(ScyllaImports { cql, st: Arc::new(st) })
    }

    async fn read_job(&self, job_id: &str) -> Result<Option<ImportJob>> {
        let row = self
            .cql
            .read_one::<JobRow>(&self.st.job_read, (job_id,), "read an import job")
            .await?;
        row.map_or(Ok(None), JobRow::job)
    }

    /// The job an index row names, if it exists and is the one the row was written for.
    async fn indexed(&self, provider: Option<&str>, created_at: i64, job_id: String) -> Result<Option<ImportJob>> {
        Ok(self
            .read_job(&job_id)
            .await?
            .filter(|j| j.created_at == created_at && provider.is_none_or(|p| j.provider_id == p)))
    }

    /// Up to `want` index rows of the listing (`provider`'s, or every provider's), after `after`.
    async fn index_rows(&self, provider: Option<&str>, after: Option<&(i64, String)>, want: usize) -> Result<Vec<(i64, String)>> {
        let want = i32::try_from(want).unwrap_or(i32::MAX);
        let step = "read an import listing";
        match (provider, after) {
            (Some(p), None) => self.cql.read_rows(&self.st.by_provider_first, (p, want), step).await,
            (Some(p), Some((at, id))) => {
                self.cql
                    .read_rows(&self.st.by_provider_after, (p, *at, id.as_str(), want), step)
                    .await
            }
            (None, None) => self.cql.read_rows(&self.st.by_time_first, (TIME_SHARD, want), step).await,
            (None, Some((at, id))) => {
                self.cql
                    .read_rows(&self.st.by_time_after, (TIME_SHARD, *at, id.as_str(), want), step)
                    .await
            }
        }
    }

    /// One LWT move of a job to `to` from `from` (one or two states); whether it applied.
    async fn move_job(
        &self,
        job_id: &str,
        to: ImportState,
        from: &[ImportState],
        reason: Option<&str>,
        started_at: MaybeUnset<i64>,
        finished_at: MaybeUnset<i64>,
    ) -> Result<bool> {
        let (a, b) = match from {
            [a] => (a, a),
            [a, b] => (a, b),
            _ => {
                return Err(Error::Store(format!(
                    "an import job moves to {} from at most two states",
                    to.as_str()
                )))
            }
        };
        let values = (
            to.as_str(),
            unset_if_none(reason),
            started_at,
            finished_at,
            job_id,
            a.as_str(),
            b.as_str(),
        );
        self.cql.lwt_retried(&self.st.job_move, values, "move an import job").await
    }
}

#[async_trait]
impl ImportStore for ScyllaImports {
    async fn create_job(&self, job: &ImportJob) -> alpes_domain::Result<()> {
        let spec = spec_json(&job.spec)?;
        let id = job.job_id.as_str();
        let by_provider = self.cql.write(
            &self.st.by_provider_write,
            (job.provider_id.as_str(), job.created_at, id),
            "list an import job",
        );
        let by_time = self
            .cql
            .write(&self.st.by_time_write, (TIME_SHARD, job.created_at, id), "list an import job");
        futures::try_join!(by_provider, by_time)?;
        let values = (
            id,
            job.provider_id.as_str(),
            job.created_by.as_str(),
            spec.as_str(),
            job.state.as_str(),
            unset_if_none(job.reason.as_deref()),
            job.created_at,
            unset_if_none(job.started_at),
            unset_if_none(job.finished_at),
        );
        if !self.cql.lwt_retried(&self.st.job_insert, values, "create an import job").await? {
            let ours = self.read_job(id).await?.is_some_and(|found| {
                (&found.provider_id, &found.created_by, found.created_at, &found.spec)
                    == (&job.provider_id, &job.created_by, job.created_at, &job.spec)
            });
            if !ours {
                return Err(Error::Store(format!("an import job {id} exists already")).into());
            }
        }
        if let Some(total) = job.total {
            self.cql
                .write(&self.st.job_total, (stored_total(total)?, id), "write an import job's total")
                .await?;
        }
        Ok(())
    }

    async fn job(&self, job_id: &str) -> alpes_domain::Result<Option<ImportJob>> {
        Ok(self.read_job(job_id).await?)
    }

    async fn jobs(&self, provider: Option<&str>, after: Option<(i64, String)>, limit: usize) -> alpes_domain::Result<Vec<ImportJob>> {
        let mut out = Vec::new();
        let mut cursor = after;
        while out.len() < limit {
            let want = (limit - out.len()).min(PAGE_ROWS);
            let rows = self.index_rows(provider, cursor.as_ref(), want).await?;
            let full = rows.len() == want;
            cursor = rows.last().cloned();
            let jobs: Vec<Option<ImportJob>> = futures::stream::iter(rows)
                .map(|(created_at, job_id)| self.indexed(provider, created_at, job_id))
                .buffered(IN_FLIGHT)
                .try_collect()
                .await?;
            out.extend(jobs.into_iter().flatten());
            if !full {
                break;
            }
        }
        Ok(out)
    }

    async fn transition(&self, job_id: &str, to: ImportState, reason: Option<&str>, now: i64) -> alpes_domain::Result<bool> {
        let from = may_come_from(to);
        if to == ImportState::Running {
            // From pending first (the first start sets started_at), then from running (a replay keeps it).
            let (first, again): (Vec<ImportState>, Vec<ImportState>) = from.iter().partition(|s| **s != ImportState::Running);
            for (states, started_at) in [(first, MaybeUnset::Set(now)), (again, MaybeUnset::Unset)] {
                if !states.is_empty() && self.move_job(job_id, to, &states, reason, started_at, MaybeUnset::Unset).await? {
                    return Ok(true);
                }
            }
            return Ok(false);
        }
        if from.is_empty() {
            return Ok(false);
        }
        let finished_at = if to.is_final() { MaybeUnset::Set(now) } else { MaybeUnset::Unset };
        Ok(self.move_job(job_id, to, from, reason, MaybeUnset::Unset, finished_at).await?)
    }

    async fn set_total(&self, job_id: &str, total: u64) -> alpes_domain::Result<()> {
        if self.read_job(job_id).await?.is_none() {
            return Ok(());
        }
        Ok(self
            .cql
            .write(&self.st.job_total, (stored_total(total)?, job_id), "write an import job's total")
            .await?)
    }

    async fn record_item(&self, job_id: &str, item: &ImportItem) -> alpes_domain::Result<bool> {
        let values = (
            job_id,
            item.key.as_str(),
            item.outcome.as_str(),
            unset_if_none(item.image_id.as_deref()),
            unset_if_none(item.reason.as_deref()),
            item.at,
        );
        Ok(self.cql.lwt_retried(&self.st.item_insert, values, "record an import item").await?)
    }

    async fn items(&self, job_id: &str) -> alpes_domain::Result<Vec<ImportItem>> {
        let rows: Vec<ItemRow> = self
            .cql
            .scan::<ItemRow>(&self.st.items_scan, (job_id,), "read an import job's items")
            .await?
            .try_collect()
            .await
            .map_err(db("read an import job's items"))?;
        Ok(rows.into_iter().map(ItemRow::item).collect::<Result<Vec<_>>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_without_its_provider_is_not_a_job_and_one_without_its_state_is_corrupt() {
        let row = JobRow {
            job_id: "j".into(),
            provider_id: None,
            created_by: None,
            spec: None,
            state: None,
            reason: None,
            total: Some(3),
            created_at: None,
            started_at: None,
            finished_at: None,
        };
        assert!(row.clone().job().expect("stray").is_none());
        let half = JobRow {
            provider_id: Some("p".into()),
            ..row.clone()
        };
        assert!(half.job().is_err());
        let spec = spec_json(&crate::store::ImportSpec::Urls {
            urls: vec!["http://h/a".into()],
            auth: None,
        })
        .expect("json");
        let whole = JobRow {
            provider_id: Some("p".into()),
            created_by: Some("p".into()),
            spec: Some(spec),
            state: Some("running".into()),
            created_at: Some(10),
            ..row
        };
        let job = whole.job().expect("job").expect("a job");
        assert_eq!((job.state, job.total, job.created_at), (ImportState::Running, Some(3), 10));
    }
}
