//! Import jobs and their items in the data dir's SQLite file.
//!
//! A job's state moves by one conditional `UPDATE` (from the states
//! [`may_come_from`] allows), so a cancel and an importer's last move cannot
//! both win; an item's outcome is `INSERT OR IGNORE`d, so its first is kept.

use super::conn::SqliteConn;
use crate::store::import_rows::{parse_spec, parse_state, spec_json};
use crate::store::{ImportItem, ImportJob, ImportSpec, ImportState, ImportStore, ItemOutcome};
use crate::{Error, Result};
use alpes_domain::import::may_come_from;
use async_trait::async_trait;
use rusqlite::{params, OptionalExtension, Row};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS import_jobs (
    job_id      TEXT PRIMARY KEY,
    provider_id TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    spec        TEXT NOT NULL,
    state       TEXT NOT NULL,
    reason      TEXT,
    total       INTEGER,
    created_at  INTEGER NOT NULL,
    started_at  INTEGER,
    finished_at INTEGER
);
CREATE INDEX IF NOT EXISTS import_jobs_by_provider ON import_jobs(provider_id, created_at, job_id);
CREATE INDEX IF NOT EXISTS import_jobs_by_time ON import_jobs(created_at, job_id);
CREATE TABLE IF NOT EXISTS import_items (
    job_id   TEXT NOT NULL,
    item_key TEXT NOT NULL,
    outcome  TEXT NOT NULL,
    image_id TEXT,
    reason   TEXT,
    at       INTEGER NOT NULL,
    PRIMARY KEY (job_id, item_key)
);
";

const COLUMNS: &str = "job_id, provider_id, created_by, spec, state, reason, total, created_at, started_at, finished_at";

/// The SQLite import store.
#[derive(Debug, Clone)]
pub struct SqliteImports {
    conn: SqliteConn,
}

impl SqliteImports {
    /// Opens (creating) its tables in the database at `path`.
    pub fn open(path: &std::path::Path, fsync: bool) -> Result<SqliteImports> {
        Ok(SqliteImports {
            conn: SqliteConn::open(path, fsync, SCHEMA)?,
        })
    }

    /// A private in-memory database (tests).
    pub fn in_memory() -> Result<SqliteImports> {
        Ok(SqliteImports {
            conn: SqliteConn::in_memory(SCHEMA)?,
        })
    }
}

fn job_of(r: &Row<'_>) -> rusqlite::Result<(ImportJob, String, String)> {
    let total: Option<i64> = r.get(6)?;
    Ok((
        ImportJob {
            job_id: r.get(0)?,
            provider_id: r.get(1)?,
            created_by: r.get(2)?,
            spec: ImportSpec::Urls { urls: vec![], auth: None },
            state: ImportState::Pending,
            reason: r.get(5)?,
            total: total.map(|t| t.max(0) as u64),
            created_at: r.get(7)?,
            started_at: r.get(8)?,
            finished_at: r.get(9)?,
        },
        r.get(3)?,
        r.get(4)?,
    ))
}

fn finish_job((mut job, spec, state): (ImportJob, String, String)) -> Result<ImportJob> {
    job.spec = parse_spec(&spec)?;
    job.state = parse_state(&state)?;
    Ok(job)
}

#[async_trait]
impl ImportStore for SqliteImports {
    async fn create_job(&self, job: &ImportJob) -> alpes_domain::Result<()> {
        let spec = spec_json(&job.spec)?;
        let job = job.clone();
        self.conn
            .with(move |conn| {
                conn.prepare_cached(&format!(
                    "INSERT INTO import_jobs ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
                ))?
                .execute(params![
                    job.job_id,
                    job.provider_id,
                    job.created_by,
                    spec,
                    job.state.as_str(),
                    job.reason,
                    job.total.map(|t| t as i64),
                    job.created_at,
                    job.started_at,
                    job.finished_at
                ])?;
                Ok(())
            })
            .await
    }

    async fn job(&self, job_id: &str) -> alpes_domain::Result<Option<ImportJob>> {
        let job_id = job_id.to_owned();
        let row = self
            .conn
            .read(move |conn| {
                Ok(conn
                    .prepare_cached(&format!("SELECT {COLUMNS} FROM import_jobs WHERE job_id = ?1"))?
                    .query_row([job_id], job_of)
                    .optional()?)
            })
            .await?;
        Ok(row.map(finish_job).transpose()?)
    }

    async fn jobs(&self, provider: Option<&str>, after: Option<(i64, String)>, limit: usize) -> alpes_domain::Result<Vec<ImportJob>> {
        let provider = provider.map(str::to_owned);
        let rows = self
            .conn
            .read(move |conn| {
                let (at, id) = after.unwrap_or((i64::MAX, String::new()));
                let sql = format!(
                    "SELECT {COLUMNS} FROM import_jobs WHERE (?1 IS NULL OR provider_id = ?1)
                     AND (created_at < ?2 OR (created_at = ?2 AND (?3 = '' OR job_id < ?3)))
                     ORDER BY created_at DESC, job_id DESC LIMIT ?4"
                );
                let mut stmt = conn.prepare_cached(&sql)?;
                let rows = stmt.query_map(params![provider, at, id, limit as i64], job_of)?;
                Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
            })
            .await?;
        Ok(rows.into_iter().map(finish_job).collect::<Result<Vec<_>>>()?)
    }

    async fn transition(&self, job_id: &str, to: ImportState, reason: Option<&str>, now: i64) -> alpes_domain::Result<bool> {
        let from: Vec<&'static str> = may_come_from(to).iter().map(|s| s.as_str()).collect();
        let (job_id, reason) = (job_id.to_owned(), reason.map(str::to_owned));
        self.conn
            .with(move |conn| {
                let placeholders = (0..from.len()).map(|i| format!("?{}", i + 5)).collect::<Vec<_>>().join(", ");
                if placeholders.is_empty() {
                    return Ok(false);
                }
                let sql = format!(
                    "UPDATE import_jobs SET state = ?2, reason = COALESCE(?3, reason),
                     started_at = CASE WHEN ?2 = 'running' THEN COALESCE(started_at, ?4) ELSE started_at END,
                     finished_at = CASE WHEN ?2 IN ('completed', 'failed', 'cancelled') THEN ?4 ELSE finished_at END
                     WHERE job_id = ?1 AND state IN ({placeholders})"
                );
                let mut values: Vec<rusqlite::types::Value> = vec![job_id.into(), to.as_str().to_owned().into(), reason.into(), now.into()];
                values.extend(from.iter().map(|s| rusqlite::types::Value::from((*s).to_owned())));
                let moved = conn.prepare_cached(&sql)?.execute(rusqlite::params_from_iter(values))?;
                Ok(moved == 1)
            })
            .await
    }

    async fn set_total(&self, job_id: &str, total: u64) -> alpes_domain::Result<()> {
        let job_id = job_id.to_owned();
        self.conn
            .with(move |conn| {
                conn.prepare_cached("UPDATE import_jobs SET total = ?2 WHERE job_id = ?1")?
                    .execute(params![job_id, total as i64])?;
                Ok(())
            })
            .await
    }

    async fn record_item(&self, job_id: &str, item: &ImportItem) -> alpes_domain::Result<bool> {
        let (job_id, item) = (job_id.to_owned(), item.clone());
        self.conn
            .with(move |conn| {
                let n = conn
                    .prepare_cached(
                        "INSERT OR IGNORE INTO import_items (job_id, item_key, outcome, image_id, reason, at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    )?
                    .execute(params![
                        job_id,
                        item.key,
                        item.outcome.as_str(),
                        item.image_id,
                        item.reason,
                        item.at
                    ])?;
                Ok(n == 1)
            })
            .await
    }

    async fn items(&self, job_id: &str) -> alpes_domain::Result<Vec<ImportItem>> {
        let job_id = job_id.to_owned();
        let rows = self
            .conn
            .read(move |conn| {
                let mut stmt = conn.prepare_cached(
                    "SELECT item_key, outcome, image_id, reason, at FROM import_items WHERE job_id = ?1 ORDER BY item_key",
                )?;
                let rows = stmt.query_map([job_id], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })?;
                Ok(rows.collect::<rusqlite::Result<Vec<(String, String, Option<String>, Option<String>, i64)>>>()?)
            })
            .await?;
        rows.into_iter()
            .map(|(key, outcome, image_id, reason, at)| {
                let outcome = ItemOutcome::parse(&outcome).ok_or_else(|| Error::Store("an import item has an unknown outcome".into()))?;
                Ok(ImportItem {
                    key,
                    outcome,
                    image_id,
                    reason,
                    at,
                })
            })
            .collect::<Result<Vec<_>>>()
            .map_err(Into::into)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_import_conformance_suite_passes_on_sqlite() {
        crate::store::conformance::imports(&SqliteImports::in_memory().expect("db")).await;
    }
}
