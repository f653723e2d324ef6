//! The statements of the CQL import store (`schemas/cql/009_imports.cql`), prepared once.

use super::super::exec::{Cql, Kind};
use crate::Result;
use scylla::statement::prepared::PreparedStatement;

// The statements, `{ks}` standing for the keyspace.
pub(super) const JOB_INSERT: &str = "INSERT INTO {ks}.import_jobs (job_id, provider_id, created_by, spec, state, reason, created_at, \
    started_at, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) IF NOT EXISTS";
pub(super) const JOB_READ: &str = "SELECT job_id, provider_id, created_by, spec, state, reason, total, created_at, started_at, \
    finished_at FROM {ks}.import_jobs WHERE job_id = ?";
/// The one way a job's state moves: `state`, `reason`, `started_at` and `finished_at` bound or
/// unset, from either of two states (the same one twice for one).
pub(super) const JOB_MOVE: &str =
    "UPDATE {ks}.import_jobs SET state = ?, reason = ?, started_at = ?, finished_at = ? WHERE job_id = ? IF state IN (?, ?)";
/// A plain write of the one column no lightweight transaction writes.
pub(super) const JOB_TOTAL: &str = "UPDATE {ks}.import_jobs SET total = ? WHERE job_id = ?";
pub(super) const BY_PROVIDER_WRITE: &str = "INSERT INTO {ks}.import_jobs_by_provider (provider_id, created_at, job_id) VALUES (?, ?, ?)";
pub(super) const BY_PROVIDER_FIRST: &str = "SELECT created_at, job_id FROM {ks}.import_jobs_by_provider WHERE provider_id = ? LIMIT ?";
pub(super) const BY_PROVIDER_AFTER: &str =
    "SELECT created_at, job_id FROM {ks}.import_jobs_by_provider WHERE provider_id = ? AND (created_at, job_id) < (?, ?) LIMIT ?";
pub(super) const BY_TIME_WRITE: &str = "INSERT INTO {ks}.import_jobs_by_time (shard, created_at, job_id) VALUES (?, ?, ?)";
pub(super) const BY_TIME_FIRST: &str = "SELECT created_at, job_id FROM {ks}.import_jobs_by_time WHERE shard = ? LIMIT ?";
pub(super) const BY_TIME_AFTER: &str =
    "SELECT created_at, job_id FROM {ks}.import_jobs_by_time WHERE shard = ? AND (created_at, job_id) < (?, ?) LIMIT ?";
pub(super) const ITEM_INSERT: &str = "INSERT INTO {ks}.import_items (job_id, item_key, outcome, image_id, reason, recorded_at) \
    VALUES (?, ?, ?, ?, ?, ?) IF NOT EXISTS";
pub(super) const ITEMS_SCAN: &str = "SELECT item_key, outcome, image_id, reason, recorded_at FROM {ks}.import_items WHERE job_id = ?";

#[derive(Debug)]
pub(super) struct Statements {
    pub(super) job_insert: PreparedStatement,
    pub(super) job_read: PreparedStatement,
    pub(super) job_move: PreparedStatement,
    pub(super) job_total: PreparedStatement,
    pub(super) by_provider_write: PreparedStatement,
    pub(super) by_provider_first: PreparedStatement,
    pub(super) by_provider_after: PreparedStatement,
    pub(super) by_time_write: PreparedStatement,
    pub(super) by_time_first: PreparedStatement,
    pub(super) by_time_after: PreparedStatement,
    pub(super) item_insert: PreparedStatement,
    pub(super) items_scan: PreparedStatement,
}

impl Statements {
    /// Every statement, prepared on `cql`.
    pub(super) async fn prepare(cql: &Cql) -> Result<Statements> {
        Ok(Statements {
            job_insert: cql.prepare(JOB_INSERT, Kind::Lwt).await?,
            job_read: cql.prepare(JOB_READ, Kind::Plain).await?,
            job_move: cql.prepare(JOB_MOVE, Kind::Lwt).await?,
            job_total: cql.prepare(JOB_TOTAL, Kind::Plain).await?,
            by_provider_write: cql.prepare(BY_PROVIDER_WRITE, Kind::Plain).await?,
            by_provider_first: cql.prepare(BY_PROVIDER_FIRST, Kind::Plain).await?,
            by_provider_after: cql.prepare(BY_PROVIDER_AFTER, Kind::Plain).await?,
            by_time_write: cql.prepare(BY_TIME_WRITE, Kind::Plain).await?,
            by_time_first: cql.prepare(BY_TIME_FIRST, Kind::Plain).await?,
            by_time_after: cql.prepare(BY_TIME_AFTER, Kind::Plain).await?,
            item_insert: cql.prepare(ITEM_INSERT, Kind::Lwt).await?,
            items_scan: cql.prepare(ITEMS_SCAN, Kind::Scan).await?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::check::{assert_binds_one_marker_per_column, assert_names_only_schema, schema_columns};
    use super::*;
    use std::collections::HashSet;

    const ALL: [&str; 12] = [
        JOB_INSERT,
        JOB_READ,
        JOB_MOVE,
        JOB_TOTAL,
        BY_PROVIDER_WRITE,
        BY_PROVIDER_FIRST,
        BY_PROVIDER_AFTER,
        BY_TIME_WRITE,
        BY_TIME_FIRST,
        BY_TIME_AFTER,
        ITEM_INSERT,
        ITEMS_SCAN,
    ];

    #[test]
    fn every_statement_names_only_tables_and_columns_of_the_schema() {
        const KEYWORDS: [&str; 14] = [
            "select", "from", "where", "and", "insert", "into", "values", "update", "set", "if", "not", "exists", "limit", "in",
        ];
        let tables = schema_columns("009_imports.cql");
        assert_eq!(tables.len(), 4, "{:?}", tables.keys());
        let mut used = HashSet::new();
        for cql in ALL {
            used.insert(assert_names_only_schema(cql, &tables, &KEYWORDS, false));
        }
        assert_eq!(used.len(), tables.len(), "a table of the schema has no statement");
    }

    #[test]
    fn every_insert_binds_one_marker_per_column() {
        for cql in ALL.iter().filter(|c| c.starts_with("INSERT")) {
            assert_binds_one_marker_per_column(cql);
        }
    }

    #[test]
    fn a_jobs_state_is_written_only_by_lightweight_transactions_and_its_total_only_by_plain_writes() {
        let lwt: Vec<&str> = ALL.iter().copied().filter(|c| c.contains(" IF ")).collect();
        assert_eq!(lwt, vec![JOB_INSERT, JOB_MOVE, ITEM_INSERT]);
        let writes_of = |column: &str| -> Vec<&str> {
            ALL.iter()
                .copied()
                .filter(|c| c.contains("{ks}.import_jobs ") && !c.starts_with("SELECT"))
                .filter(|c| c.split(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_')).any(|w| w == column))
                .collect()
        };
        for column in ["state", "reason", "started_at", "finished_at"] {
            assert!(writes_of(column).iter().all(|c| c.contains(" IF ")), "{column}");
        }
        assert_eq!(writes_of("total"), vec![JOB_TOTAL]);
        assert!(!JOB_TOTAL.contains(" IF "));
    }
}
