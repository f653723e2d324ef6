//! The embedded ledger: SQLite (WAL), one transaction per batch.
//!
//! Exactly-once accrual rests on one rule: inside the batch's transaction a
//! balance moves only when its ledger row was actually inserted
//! (`INSERT OR IGNORE` on the event id, then `changes() == 1`). A redelivered
//! or replayed event finds its row and moves nothing; a batch cut off by a
//! crash rolls back whole, so its events apply once when they come again.

use super::conn::{write_tx, SqliteConn};
use crate::store::ledger::{
    movements_cursor, parse_movements_cursor, refuse_payout, Applied, Balance, ConsumerTerms, EntryKind, LedgerEntry, LedgerPage,
    LedgerStore, PairVolume, PayoutCheck, Refusal,
};
use crate::Result;
use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS ledger (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id     TEXT NOT NULL UNIQUE,
    user_id      TEXT NOT NULL,
    kind         TEXT NOT NULL,
    amount_minor INTEGER NOT NULL,
    currency     TEXT NOT NULL,
    occurred_at  INTEGER NOT NULL,
    image_id     TEXT,
    counterparty TEXT,
    refusal      TEXT
);
CREATE INDEX IF NOT EXISTS ledger_user ON ledger(user_id, seq);
CREATE UNIQUE INDEX IF NOT EXISTS ledger_payment_reference ON ledger(user_id, counterparty) WHERE kind = 'payment';
CREATE INDEX IF NOT EXISTS ledger_kind_time ON ledger(kind, occurred_at);
CREATE TABLE IF NOT EXISTS balances (
    user_id       TEXT NOT NULL,
    currency      TEXT NOT NULL,
    accrued_minor INTEGER NOT NULL DEFAULT 0,
    paid_minor    INTEGER NOT NULL DEFAULT 0,
    uses          INTEGER NOT NULL DEFAULT 0,
    as_of         INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, currency)
);
CREATE TABLE IF NOT EXISTS charges (
    user_id       TEXT NOT NULL,
    currency      TEXT NOT NULL,
    charged_minor INTEGER NOT NULL DEFAULT 0,
    charges       INTEGER NOT NULL DEFAULT 0,
    as_of         INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, currency)
);
CREATE TABLE IF NOT EXISTS consumer_terms (
    user_id            TEXT PRIMARY KEY,
    verified           INTEGER NOT NULL,
    credit_limit_minor INTEGER NOT NULL,
    currency           TEXT NOT NULL,
    daily_downloads    INTEGER,
    daily_bytes        INTEGER,
    updated_at         INTEGER NOT NULL,
    updated_by         TEXT NOT NULL
);
";

const INSERT: &str = "INSERT OR IGNORE INTO ledger
    (event_id, user_id, kind, amount_minor, currency, occurred_at, image_id, counterparty, refusal)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";

const CREDIT: &str = "INSERT INTO balances (user_id, currency, accrued_minor, uses, as_of) VALUES (?1, ?2, ?3, 1, ?4)
    ON CONFLICT (user_id, currency) DO UPDATE SET
        accrued_minor = accrued_minor + excluded.accrued_minor,
        uses = uses + 1,
        as_of = MAX(as_of, excluded.as_of)";

const DEBIT: &str = "INSERT INTO balances (user_id, currency, paid_minor, as_of) VALUES (?1, ?2, ?3, ?4)
    ON CONFLICT (user_id, currency) DO UPDATE SET
        paid_minor = paid_minor + excluded.paid_minor,
        as_of = MAX(as_of, excluded.as_of)";

const CHARGE: &str = "INSERT INTO charges (user_id, currency, charged_minor, charges, as_of) VALUES (?1, ?2, ?3, 1, ?4)
    ON CONFLICT (user_id, currency) DO UPDATE SET
        charged_minor = charged_minor + excluded.charged_minor,
        charges = charges + 1,
        as_of = MAX(as_of, excluded.as_of)";

/// The SQLite ledger.
#[derive(Debug, Clone)]
pub struct SqliteLedger {
    conn: SqliteConn,
}

impl SqliteLedger {
    /// Opens (creating) the ledger tables in the database at `path`; with
    /// `fsync`, every commit is flushed to disk before it returns.
    pub fn open(path: &std::path::Path, fsync: bool) -> Result<SqliteLedger> {
        Ok(SqliteLedger {
            conn: SqliteConn::open(path, fsync, SCHEMA)?,
        })
    }

    /// A private in-memory ledger (tests).
    pub fn in_memory() -> Result<SqliteLedger> {
        Ok(SqliteLedger {
            conn: SqliteConn::in_memory(SCHEMA)?,
        })
    }

    async fn with<T: Send + 'static>(&self, f: impl FnOnce(&mut Connection) -> Result<T> + Send + 'static) -> alpes_domain::Result<T> {
        self.conn.with(f).await
    }
}

/// Inserts the entry's row; true if it was new.
fn insert(tx: &Connection, e: &LedgerEntry, kind: EntryKind, refusal: Option<&Refusal>) -> Result<bool> {
    let n = tx.prepare_cached(INSERT)?.execute(params![
        e.event_id,
        e.user_id,
        kind.as_str(),
        e.amount_minor,
        e.currency,
        e.occurred_at,
        e.image_id,
        e.counterparty,
        refusal.map(Refusal::stored),
    ])?;
    Ok(n == 1)
}

/// `Some(refusal)` if the event id is in the ledger (with the refusal stored with it, if any).
fn known(tx: &Connection, event_id: &str) -> Result<Option<Option<String>>> {
    Ok(tx
        .prepare_cached("SELECT refusal FROM ledger WHERE event_id = ?1")?
        .query_row(params![event_id], |r| r.get(0))
        .optional()?)
}

/// Reads what the payout rule needs, and applies it.
fn payment_refusal(tx: &Connection, e: &LedgerEntry) -> Result<Option<Refusal>> {
    let reference_paid = tx
        .prepare_cached("SELECT 1 FROM ledger WHERE user_id = ?1 AND kind = 'payment' AND counterparty IS ?2")?
        .query_row(params![e.user_id, e.counterparty], |_| Ok(()))
        .optional()?
        .is_some();
    let pending_minor: i64 = tx
        .prepare_cached("SELECT accrued_minor - paid_minor FROM balances WHERE user_id = ?1 AND currency = ?2")?
        .query_row(params![e.user_id, e.currency], |r| r.get(0))
        .optional()?
        .unwrap_or(0);
    Ok(refuse_payout(PayoutCheck {
        amount_minor: e.amount_minor,
        reference_paid,
        pending_minor,
    }))
}

fn apply_one(tx: &Connection, e: &LedgerEntry) -> Result<Applied> {
    match e.kind {
        EntryKind::Usage | EntryKind::Charge => {
            if !insert(tx, e, e.kind, None)? {
                return Ok(Applied::Duplicate);
            }
            let sum = if e.kind == EntryKind::Usage { CREDIT } else { CHARGE };
            tx.prepare_cached(sum)?
                .execute(params![e.user_id, e.currency, e.amount_minor, e.occurred_at])?;
            Ok(Applied::Recorded)
        }
        EntryKind::Payment | EntryKind::RefusedPayment => {
            if let Some(refusal) = known(tx, &e.event_id)? {
                return Ok(refusal
                    .as_deref()
                    .and_then(Refusal::from_stored)
                    .map_or(Applied::Duplicate, Applied::RefusedBefore));
            }
            if let Some(r) = payment_refusal(tx, e)? {
                insert(tx, e, EntryKind::RefusedPayment, Some(&r))?;
                return Ok(Applied::Refused(r));
            }
            insert(tx, e, EntryKind::Payment, None)?;
            tx.prepare_cached(DEBIT)?
                .execute(params![e.user_id, e.currency, e.amount_minor, e.occurred_at])?;
            Ok(Applied::Recorded)
        }
    }
}

#[async_trait]
impl LedgerStore for SqliteLedger {
    async fn apply(&self, entries: Vec<LedgerEntry>) -> alpes_domain::Result<Vec<Applied>> {
        self.with(move |conn| {
            let tx = write_tx(conn)?;
            let applied = entries.iter().map(|e| apply_one(&tx, e)).collect::<Result<Vec<_>>>()?;
            tx.commit()?;
            Ok(applied)
        })
        .await
    }

    async fn balances(&self, user_id: &str) -> alpes_domain::Result<Vec<Balance>> {
        Ok(self.conn.read_now(|conn| {
            let mut by_currency = std::collections::BTreeMap::new();
            let blank = |currency: String| Balance {
                user_id: user_id.to_owned(),
                currency,
                accrued_minor: 0,
                paid_minor: 0,
                pending_minor: 0,
                uses: 0,
                charged_minor: 0,
                charges: 0,
                as_of: 0,
            };
            let mut stmt =
                conn.prepare_cached("SELECT currency, accrued_minor, paid_minor, uses, as_of FROM balances WHERE user_id = ?1")?;
            let rows = stmt.query_map(params![user_id], |r| {
                Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })?;
            for row in rows {
                let (currency, accrued, paid, uses, as_of): (String, i64, i64, i64, i64) = row?;
                let b = by_currency.entry(currency.clone()).or_insert_with(|| blank(currency));
                (b.accrued_minor, b.paid_minor, b.pending_minor, b.uses) = (accrued, paid, accrued - paid, uses);
                b.as_of = b.as_of.max(as_of);
            }
            let mut stmt = conn.prepare_cached("SELECT currency, charged_minor, charges, as_of FROM charges WHERE user_id = ?1")?;
            let rows = stmt.query_map(params![user_id], |r| Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
            for row in rows {
                let (currency, charged, charges, as_of): (String, i64, i64, i64) = row?;
                let b = by_currency.entry(currency.clone()).or_insert_with(|| blank(currency));
                (b.charged_minor, b.charges) = (charged, charges);
                b.as_of = b.as_of.max(as_of);
            }
            Ok(by_currency.into_values().collect())
        })?)
    }

    async fn entries_among(&self, user_id: &str, event_ids: &[&str]) -> alpes_domain::Result<std::collections::HashSet<String>> {
        Ok(self.conn.read_now(|conn| {
            let mut known = conn.prepare_cached("SELECT 1 FROM ledger WHERE event_id = ?1 AND user_id = ?2")?;
            let mut found = std::collections::HashSet::new();
            for id in event_ids {
                if known.query_row(params![id, user_id], |_| Ok(())).optional()?.is_some() {
                    found.insert((*id).to_owned());
                }
            }
            Ok(found)
        })?)
    }

    async fn terms(&self, user_id: &str) -> alpes_domain::Result<Option<ConsumerTerms>> {
        Ok(self.conn.read_now(|conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT verified, credit_limit_minor, currency, daily_downloads, daily_bytes, updated_at, updated_by
                     FROM consumer_terms WHERE user_id = ?1",
                )?
                .query_row(params![user_id], |r| {
                    Ok(ConsumerTerms {
                        user_id: user_id.to_owned(),
                        verified: r.get(0)?,
                        credit_limit_minor: r.get(1)?,
                        currency: r.get(2)?,
                        daily_downloads: r.get(3)?,
                        daily_bytes: r.get(4)?,
                        updated_at: r.get(5)?,
                        updated_by: r.get(6)?,
                    })
                })
                .optional()?)
        })?)
    }

    async fn set_terms(&self, t: ConsumerTerms) -> alpes_domain::Result<()> {
        self.with(move |conn| {
            conn.prepare_cached(
                "INSERT OR REPLACE INTO consumer_terms
                 (user_id, verified, credit_limit_minor, currency, daily_downloads, daily_bytes, updated_at, updated_by)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                t.user_id,
                t.verified,
                t.credit_limit_minor,
                t.currency,
                t.daily_downloads,
                t.daily_bytes,
                t.updated_at,
                t.updated_by
            ])?;
            Ok(())
        })
        .await
    }

    async fn pairs(&self, since: i64, until: i64, limit: usize) -> alpes_domain::Result<Vec<PairVolume>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.conn
            .read(move |conn| {
                let mut stmt = conn.prepare_cached(
                    "SELECT user_id, counterparty, currency, COUNT(*), SUM(amount_minor) FROM ledger
                     WHERE kind = 'charge' AND occurred_at >= ?1 AND occurred_at < ?2
                     GROUP BY user_id, counterparty, currency
                     ORDER BY SUM(amount_minor) DESC, COUNT(*) DESC, user_id, counterparty, currency LIMIT ?3",
                )?;
                let rows = stmt.query_map(params![since, until, limit], |r| {
                    Ok(PairVolume {
                        consumer_id: r.get(0)?,
                        provider_id: r.get::<_, Option<String>>(1)?.unwrap_or_default(),
                        currency: r.get(2)?,
                        charges: r.get(3)?,
                        amount_minor: r.get(4)?,
                    })
                })?;
                Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
            })
            .await
    }

    async fn reference_paid(&self, user_id: &str, reference: &str) -> alpes_domain::Result<bool> {
        Ok(self.conn.read_now(|conn| {
            Ok(conn
                .prepare_cached("SELECT 1 FROM ledger WHERE user_id = ?1 AND kind = 'payment' AND counterparty = ?2")?
                .query_row(params![user_id, reference], |_| Ok(()))
                .optional()?
                .is_some())
        })?)
    }

    async fn movements(&self, user_id: &str, cursor: Option<&str>, limit: usize) -> alpes_domain::Result<LedgerPage> {
        let before = cursor.map(parse_movements_cursor).transpose()?.map_or(i64::MAX, |(seq, _)| seq);
        let user_id = user_id.to_owned();
        let limit = limit.clamp(1, 1000);
        self.conn
            .read(move |conn| {
                let mut stmt = conn.prepare_cached(
                    "SELECT seq, event_id, kind, amount_minor, currency, occurred_at, image_id, counterparty
                 FROM ledger WHERE user_id = ?1 AND seq < ?2 ORDER BY seq DESC LIMIT ?3",
                )?;
                let rows = stmt.query_map(params![user_id, before, limit as i64 + 1], |r| {
                    let kind: String = r.get(2)?;
                    Ok((
                        r.get::<_, i64>(0)?,
                        LedgerEntry {
                            event_id: r.get(1)?,
                            user_id: user_id.clone(),
                            kind: EntryKind::parse(&kind).unwrap_or(EntryKind::RefusedPayment),
                            amount_minor: r.get(3)?,
                            currency: r.get(4)?,
                            occurred_at: r.get(5)?,
                            image_id: r.get(6)?,
                            counterparty: r.get(7)?,
                        },
                    ))
                })?;
                let mut rows = rows.collect::<std::result::Result<Vec<_>, _>>()?;
                let next = if rows.len() > limit {
                    rows.truncate(limit);
                    rows.last().map(|(seq, e)| movements_cursor(*seq, &e.event_id))
                } else {
                    None
                };
                Ok(LedgerPage {
                    entries: rows.into_iter().map(|(_, e)| e).collect(),
                    next,
                })
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_ledger_conformance_suite_passes_on_sqlite() {
        let ledger = SqliteLedger::in_memory().expect("ledger");
        crate::store::conformance::ledger(&ledger).await;
    }

    #[tokio::test]
    async fn a_ledger_on_disk_keeps_its_balances_across_a_reopen() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("alpes.db");
        let entry = crate::store::conformance::usage("ev-1", "prov", 250);
        SqliteLedger::open(&path, false)
            .expect("open")
            .apply(vec![entry.clone()])
            .await
            .expect("apply");
        let again = SqliteLedger::open(&path, true).expect("reopen");
        assert_eq!(again.apply(vec![entry]).await.expect("apply"), vec![Applied::Duplicate]);
        assert_eq!(again.balances("prov").await.expect("balance")[0].pending_minor, 250);
    }
}
