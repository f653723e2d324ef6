//! The production ledger: ScyllaDB, through the `scylla` driver (prepared
//! statements, token-aware routing). The tables are in
//! `schemas/cql/001_ledger.cql`.
//!
//! # Exactly once without transactions
//!
//! ScyllaDB has no multi-partition transaction and a counter increment is not
//! idempotent, so this adapter never increments anything:
//!
//! - **One row per event.** `ledger_entries` is keyed by
//!   `((user_id), event_id)`. Writing an entry twice writes the same row
//!   twice, and a balance is *summed from the user's partition on read*
//!   (paged by the driver), so a redelivered or replayed event counts once,
//!   whatever races it loses. An entry whose row is already there is reported
//!   [`Applied::Duplicate`]; the check is a read before the write, so two
//!   redeliveries racing each other may both report `Recorded`, but the
//!   balance still counts the event once.
//! - **Usage is written without a lightweight transaction.** A run of a
//!   user's usages is checked with one `IN` read and written with two
//!   single-partition batches (one mutation each).
//! - **Order.** Each entry gets a `seq` (microseconds, strictly increasing in
//!   this process) and a row in `ledger_movements`, clustered
//!   `(seq DESC, event_id DESC)`, which the movements query pages by keyset:
//!   the opaque cursor is the last `(seq, event_id)` returned, so a page
//!   boundary holds while new entries arrive. The movement row is written
//!   *before* the entry row; the entry row is the commit point. A movement
//!   whose `seq` is not its entry's (the write was cut off by a crash, or the
//!   entry was rewritten by a racing redelivery) is skipped on read.
//! - **A batch is not atomic here**, unlike SQLite: entries of different
//!   users are applied concurrently and a failure can leave a batch half
//!   applied. That is safe because each entry is idempotent: billing retries
//!   the batch, the half that was written comes back `Duplicate`, and the
//!   rest applies. A user's entries are applied in batch order.
//!
//! # Payouts
//!
//! A payout must see the balance it is checked against, and two payouts of
//! one user must not both spend it. Each user's partition has a static
//! column, `payout_version`, that only payouts (accepted or refused) write,
//! through a lightweight transaction. A payout:
//!
//! 1. reads `payout_version` at the serial consistency (`LOCAL_SERIAL`),
//!    which completes any payout still in flight, then sums the partition at
//!    the normal consistency: that sum includes every payout up to that
//!    version;
//! 2. decides as SQLite does: a known event id is a duplicate; else a
//!    non-positive amount, an accepted payment's reference, or an amount
//!    above the pending balance in its currency is a refusal;
//! 3. writes its movement row, then one conditional batch on the partition:
//!    `payout_version = v + 1 IF payout_version = v` plus its entry row
//!    (kind `payment`, or `refused_payment` with the reason), so the
//!    decision and the row land together or not at all;
//! 4. if another payout got in first (the condition failed), starts again
//!    from 1.
//!
//! So payouts of one user are serialized, and a refused payment is recorded
//! as refused: a replay finds its row and stays refused whatever the balance
//! is by then. A usage is not serialized against payouts: a payout that
//! misses a usage written at the same moment is decided as if the usage came
//! after it. Lightweight transactions need a keyspace without tablets on
//! ScyllaDB versions that do not support both (see `alpes migrate --tablets`).
//! With several datacenters, run billing in one and keep `LOCAL_SERIAL`, or use
//! `SERIAL` with `QUORUM`.

use super::conn::{backoff, db, serial_read, validate_keyspace, was_applied, ScyllaArgs};
use crate::store::ledger::{
    by_volume, day_start, movements_cursor, parse_movements_cursor, refuse_payout, Applied, Balance, ConsumerTerms, EntryKind, LedgerEntry,
    LedgerPage, LedgerStore, PairVolume, PayoutCheck, Refusal, DAY_MS,
};
use crate::{Error, Result};
use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt};
use scylla::client::session::Session;
use scylla::statement::batch::{Batch, BatchType};
use scylla::statement::prepared::PreparedStatement;
use scylla::value::MaybeUnset;
use scylla::{DeserializeRow, SerializeRow};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// The most keys in one `IN` (ScyllaDB refuses more than 100 clustering keys per query by default).
const IN_KEYS: usize = 100;
/// The most rows in one single-partition batch (well under the batch size warning).
const BATCH_ROWS: usize = 100;
/// How many users' entries one `apply` works on at once.
const USERS_IN_FLIGHT: usize = 32;
/// How many times a payout retries its compare-and-set before giving up (billing then retries the batch).
const CAS_ATTEMPTS: u32 = 50;

/// The ScyllaDB ledger. Cheap to clone; the statements are prepared once, by [`ScyllaLedger::new`].
#[derive(Clone)]
pub struct ScyllaLedger {
    session: Arc<Session>,
    keyspace: String,
    st: Arc<Statements>,
}

impl fmt::Debug for ScyllaLedger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScyllaLedger")
            .field("keyspace", &self.keyspace)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct Statements {
    /// Which of these event ids the user has: `(user_id, [event_id])`.
    known: PreparedStatement,
    /// Whole entries by event id: `(user_id, [event_id])`.
    entries: PreparedStatement,
    /// The user's whole partition, for sums (paged).
    scan: PreparedStatement,
    insert_entry: PreparedStatement,
    insert_movement: PreparedStatement,
    /// `payout_version`, read at the serial consistency.
    payout_version: PreparedStatement,
    /// `SET payout_version = ? ... IF payout_version = null`: `(new, user_id)`.
    cas_first: PreparedStatement,
    /// `SET payout_version = ? ... IF payout_version = ?`: `(new, user_id, old)`.
    cas_next: PreparedStatement,
    /// The newest movements: `(user_id, limit)`.
    page_first: PreparedStatement,
    /// The movements older than a `(seq, event_id)`: `(user_id, seq, event_id, limit)`.
    page_after: PreparedStatement,
    /// A consumer's terms: `(user_id)`.
    terms: PreparedStatement,
    /// Sets a consumer's terms.
    set_terms: PreparedStatement,
    /// A charge's row in its day: `(day, consumer, provider, event_id, currency, amount, occurred_at)`.
    insert_charge_day: PreparedStatement,
    /// A day's charges: `(day)` (paged).
    charges_of_day: PreparedStatement,
}

impl ScyllaLedger {
    /// Connects with `args` and prepares the ledger's statements (the tables must exist: `alpes migrate`).
    pub async fn connect(args: &ScyllaArgs) -> Result<ScyllaLedger> {
        let session = args.connect().await?;
        ScyllaLedger::new(session, args).await
    }

    /// The ledger in `args.keyspace` on an open session; prepares every statement now.
    pub async fn new(session: Arc<Session>, args: &ScyllaArgs) -> Result<ScyllaLedger> {
        let ks = args.keyspace.as_str();
        validate_keyspace(ks)?;
        let entry_columns = "event_id, seq, kind, amount_minor, currency, occurred_at, image_id, counterparty";
        let prepare = |cql: String| {
            let session = Arc::clone(&session);
            async move { session.prepare(cql).await.map_err(db("prepare")) }
        };
        let idempotent = |mut p: PreparedStatement| {
            p.set_is_idempotent(true);
            p
        };
        let mut scan = prepare(format!(
            "SELECT event_id, kind, amount_minor, currency, occurred_at, counterparty, refusal FROM {ks}.ledger_entries WHERE user_id = ?"
        ))
        .await?;
        scan.set_page_size(args.page_size);
        let mut charges_of_day = prepare(format!(
            "SELECT consumer_id, provider_id, currency, amount_minor, occurred_at FROM {ks}.ledger_charges_by_day WHERE day = ?"
        ))
        .await?;
        charges_of_day.set_page_size(args.page_size);
        let mut payout_version = prepare(format!("SELECT payout_version FROM {ks}.ledger_entries WHERE user_id = ? LIMIT 1")).await?;
        payout_version.set_consistency(serial_read(args.serial_consistency));
        let st = Statements {
            known: idempotent(
                prepare(format!(
                    "SELECT event_id FROM {ks}.ledger_entries WHERE user_id = ? AND event_id IN ?"
                ))
                .await?,
            ),
            entries: idempotent(
                prepare(format!(
                    "SELECT {entry_columns} FROM {ks}.ledger_entries WHERE user_id = ? AND event_id IN ?"
                ))
                .await?,
            ),
            scan: idempotent(scan),
            insert_entry: idempotent(
                prepare(format!(
                    "INSERT INTO {ks}.ledger_entries (user_id, {entry_columns}, refusal) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                ))
                .await?,
            ),
            insert_movement: idempotent(
                prepare(format!(
                    "INSERT INTO {ks}.ledger_movements (user_id, seq, event_id) VALUES (?, ?, ?)"
                ))
                .await?,
            ),
            payout_version: idempotent(payout_version),
            cas_first: prepare(format!(
                "UPDATE {ks}.ledger_entries SET payout_version = ? WHERE user_id = ? IF payout_version = null"
            ))
            .await?,
            cas_next: prepare(format!(
                "UPDATE {ks}.ledger_entries SET payout_version = ? WHERE user_id = ? IF payout_version = ?"
            ))
            .await?,
            page_first: idempotent(prepare(format!("SELECT seq, event_id FROM {ks}.ledger_movements WHERE user_id = ? LIMIT ?")).await?),
            page_after: idempotent(
                prepare(format!(
                    "SELECT seq, event_id FROM {ks}.ledger_movements WHERE user_id = ? AND (seq, event_id) < (?, ?) LIMIT ?"
                ))
                .await?,
            ),
            terms: idempotent(
                prepare(format!(
                    "SELECT verified, credit_limit_minor, currency, daily_downloads, daily_bytes, updated_at, updated_by \
                     FROM {ks}.consumer_terms WHERE user_id = ?"
                ))
                .await?,
            ),
            set_terms: idempotent(
                prepare(format!(
                    "INSERT INTO {ks}.consumer_terms \
                     (user_id, verified, credit_limit_minor, currency, daily_downloads, daily_bytes, updated_at, updated_by) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                ))
                .await?,
            ),
            insert_charge_day: idempotent(
                prepare(format!(
                    "INSERT INTO {ks}.ledger_charges_by_day \
                     (day, consumer_id, provider_id, event_id, currency, amount_minor, occurred_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
                ))
                .await?,
            ),
            charges_of_day: idempotent(charges_of_day),
        };
        Ok(ScyllaLedger {
            session,
            keyspace: ks.to_owned(),
            st: Arc::new(st),
        })
    }

    /// Applies the entries at `idx` (all of `user_id`); returns them with what each did.
    async fn apply_group(&self, user_id: &str, entries: &[LedgerEntry], idx: Vec<usize>) -> Result<(Vec<usize>, Vec<Applied>)> {
        let applied = self.apply_user(user_id, idx.iter().map(|&i| &entries[i]).collect()).await?;
        Ok((idx, applied))
    }

    /// A user's entries in batch order: each run of usages (or charges) together, each payout on its own.
    async fn apply_user(&self, user_id: &str, entries: Vec<&LedgerEntry>) -> Result<Vec<Applied>> {
        let mut out = Vec::with_capacity(entries.len());
        let mut run: Vec<&LedgerEntry> = Vec::new();
        for e in entries {
            if matches!(e.kind, EntryKind::Usage | EntryKind::Charge) {
                run.push(e);
                continue;
            }
            if !run.is_empty() {
                out.extend(self.apply_usages(user_id, &run).await?);
                run.clear();
            }
            out.push(self.apply_payout(e).await?);
        }
        if !run.is_empty() {
            out.extend(self.apply_usages(user_id, &run).await?);
        }
        Ok(out)
    }

    /// Writes a run of one user's usages or charges: new event ids are written, known ones are duplicates.
    async fn apply_usages(&self, user_id: &str, run: &[&LedgerEntry]) -> Result<Vec<Applied>> {
        let ids: Vec<&str> = run.iter().map(|e| e.event_id.as_str()).collect();
        let known = self.known(user_id, &ids).await?;
        let mut seen = HashSet::new();
        let mut fresh = Vec::new();
        let applied = run
            .iter()
            .map(|e| {
                if known.contains(e.event_id.as_str()) || !seen.insert(e.event_id.as_str()) {
                    Applied::Duplicate
                } else {
                    fresh.push((next_seq(), *e));
                    Applied::Recorded
                }
            })
            .collect();
        // Movements first: the entry rows are the commit point.
        let movements = fresh.chunks(BATCH_ROWS).map(|chunk| {
            let values: Vec<_> = chunk.iter().map(|(seq, e)| (user_id, *seq, e.event_id.as_str())).collect();
            self.batch(&self.st.insert_movement, values)
        });
        futures::future::try_join_all(movements).await?;
        // A charge's day row, for the pairs report, before its entry too.
        let mut days = Vec::new();
        for (_, e) in &fresh {
            if e.kind == EntryKind::Charge {
                days.push(self.write_charge_day(e));
            }
        }
        futures::future::try_join_all(days).await?;
        let entries = fresh.chunks(BATCH_ROWS).map(|chunk| {
            let values: Vec<_> = chunk.iter().map(|(seq, e)| EntryValues::new(e, *seq, e.kind, None)).collect();
            self.batch(&self.st.insert_entry, values)
        });
        futures::future::try_join_all(entries).await?;
        Ok(applied)
    }

    /// Writes charge `e`'s row in its UTC day.
    async fn write_charge_day(&self, e: &LedgerEntry) -> Result<()> {
        let values = (
            day_start(e.occurred_at),
            e.user_id.as_str(),
            e.counterparty.as_deref().unwrap_or_default(),
            e.event_id.as_str(),
            e.currency.as_str(),
            e.amount_minor,
            e.occurred_at,
        );
        self.session
            .execute_unpaged(&self.st.insert_charge_day, values)
            .await
            .map_err(db("write a charge's day"))?;
        Ok(())
    }

    /// Applies one payout (a `Payment` or `RefusedPayment` entry) under the user's compare-and-set.
    async fn apply_payout(&self, e: &LedgerEntry) -> Result<Applied> {
        let seq = next_seq();
        let mut moved = false;
        for attempt in 0..CAS_ATTEMPTS {
            let version = self.payout_version(&e.user_id).await?;
            let sums = self.sum(&e.user_id, Some(e)).await?;
            if sums.has_event {
                return Ok(sums
                    .prior_refusal
                    .as_deref()
                    .and_then(Refusal::from_stored)
                    .map_or(Applied::Duplicate, Applied::RefusedBefore));
            }
            let refusal = payment_refusal(e, &sums);
            if !moved {
                self.session
                    .execute_unpaged(&self.st.insert_movement, (e.user_id.as_str(), seq, e.event_id.as_str()))
                    .await
                    .map_err(db("write a movement"))?;
                moved = true;
            }
            let kind = if refusal.is_some() {
                EntryKind::RefusedPayment
            } else {
                EntryKind::Payment
            };
            let row = EntryValues::new(e, seq, kind, refusal.as_ref());
            let next = version.map_or(1, |v| v + 1);
            let result = match version {
                None => {
                    let batch = self.cas_batch(&self.st.cas_first);
                    self.session.batch(&batch, ((next, e.user_id.as_str()), row)).await
                }
                Some(v) => {
                    let batch = self.cas_batch(&self.st.cas_next);
                    self.session.batch(&batch, ((next, e.user_id.as_str(), v), row)).await
                }
            }
            .map_err(db("write a payout"))?;
            if was_applied(result)? {
                return Ok(refusal.map_or(Applied::Recorded, Applied::Refused));
            }
            tokio::time::sleep(backoff(attempt)).await;
        }
        Err(Error::Store(format!(
            "scylla: a payout lost its compare-and-set {CAS_ATTEMPTS} times in a row; the batch will be retried"
        )))
    }

    /// The conditional batch of a payout: the compare-and-set, then the entry row (one partition).
    fn cas_batch(&self, cas: &PreparedStatement) -> Batch {
        let mut batch = Batch::new(BatchType::Logged);
        batch.append_statement(cas.clone());
        batch.append_statement(self.st.insert_entry.clone());
        batch
    }

    /// One single-partition batch of `stmt` with each of `values`.
    async fn batch<V: scylla::serialize::row::SerializeRow>(&self, stmt: &PreparedStatement, values: Vec<V>) -> Result<()> {
        let mut batch = Batch::new(BatchType::Unlogged);
        for _ in &values {
            batch.append_statement(stmt.clone());
        }
        batch.set_is_idempotent(true);
        self.session.batch(&batch, values).await.map_err(db("write a batch"))?;
        Ok(())
    }

    /// Which of `ids` the user's partition holds.
    async fn known(&self, user_id: &str, ids: &[&str]) -> Result<HashSet<String>> {
        let ids = distinct(ids);
        let reads = ids.chunks(IN_KEYS).map(|chunk| async move {
            let result = self
                .session
                .execute_unpaged(&self.st.known, (user_id, chunk))
                .await
                .map_err(db("read entries"))?;
            let rows = result.into_rows_result().map_err(db("read entries"))?;
            rows.rows::<(String,)>()
                .map_err(db("read entries"))?
                .map(|r| r.map(|(id,)| id).map_err(db("read entries")))
                .collect::<Result<Vec<_>>>()
        });
        Ok(futures::future::try_join_all(reads).await?.into_iter().flatten().collect())
    }

    /// The user's entries with these ids, by id.
    async fn entries(&self, user_id: &str, ids: &[&str]) -> Result<HashMap<String, EntryRow>> {
        let ids = distinct(ids);
        let reads = ids.chunks(IN_KEYS).map(|chunk| async move {
            let result = self
                .session
                .execute_unpaged(&self.st.entries, (user_id, chunk))
                .await
                .map_err(db("read entries"))?;
            let rows = result.into_rows_result().map_err(db("read entries"))?;
            rows.rows::<EntryRow>()
                .map_err(db("read entries"))?
                .map(|r| r.map_err(db("read entries")))
                .collect::<Result<Vec<_>>>()
        });
        Ok(futures::future::try_join_all(reads)
            .await?
            .into_iter()
            .flatten()
            .map(|row| (row.event_id.clone(), row))
            .collect())
    }

    /// The user's `payout_version`, read at the serial consistency.
    async fn payout_version(&self, user_id: &str) -> Result<Option<i64>> {
        let result = self
            .session
            .execute_unpaged(&self.st.payout_version, (user_id,))
            .await
            .map_err(db("read the payout version"))?;
        let rows = result.into_rows_result().map_err(db("read the payout version"))?;
        Ok(rows
            .maybe_first_row::<(Option<i64>,)>()
            .map_err(db("read the payout version"))?
            .and_then(|(v,)| v))
    }

    /// Sums the user's partition, page by page; with `probe`, also notes
    /// whether its event id is there and whether its reference is taken.
    async fn sum(&self, user_id: &str, probe: Option<&LedgerEntry>) -> Result<Sums> {
        let mut rows = self
            .session
            .execute_iter(self.st.scan.clone(), (user_id,))
            .await
            .map_err(db("read a balance"))?
            .rows_stream::<ScanRow>()
            .map_err(db("read a balance"))?;
        let mut sums = Sums::default();
        while let Some(row) = rows.try_next().await.map_err(db("read a balance"))? {
            sums.add(row, probe);
        }
        Ok(sums)
    }

    /// Up to `n` movement keys of the user, newest first, older than `after`.
    async fn movement_keys(&self, user_id: &str, after: Option<&(i64, String)>, n: usize) -> Result<Vec<(i64, String)>> {
        let n = i32::try_from(n).unwrap_or(i32::MAX);
        let result = match after {
            None => self.session.execute_unpaged(&self.st.page_first, (user_id, n)).await,
            Some((seq, id)) => {
                self.session
                    .execute_unpaged(&self.st.page_after, (user_id, *seq, id.as_str(), n))
                    .await
            }
        }
        .map_err(db("read movements"))?;
        let rows = result.into_rows_result().map_err(db("read movements"))?;
        rows.rows::<(i64, String)>()
            .map_err(db("read movements"))?
            .map(|r| r.map_err(db("read movements")))
            .collect()
    }
}

#[async_trait]
impl LedgerStore for ScyllaLedger {
    async fn apply(&self, entries: Vec<LedgerEntry>) -> alpes_domain::Result<Vec<Applied>> {
        // Group by user, keeping each user's entries in batch order.
        let mut groups: Vec<(&str, Vec<usize>)> = Vec::new();
        let mut group_of: HashMap<&str, usize> = HashMap::new();
        for (i, e) in entries.iter().enumerate() {
            let g = *group_of.entry(e.user_id.as_str()).or_insert_with(|| {
                groups.push((e.user_id.as_str(), Vec::new()));
                groups.len() - 1
            });
            groups[g].1.push(i);
        }
        let work: Vec<_> = groups
            .into_iter()
            .map(|(user_id, idx)| self.apply_group(user_id, &entries, idx))
            .collect();
        let done: Vec<(Vec<usize>, Vec<Applied>)> = futures::stream::iter(work).buffer_unordered(USERS_IN_FLIGHT).try_collect().await?;
        let mut out: Vec<Option<Applied>> = vec![None; entries.len()];
        for (idx, applied) in done {
            for (i, a) in idx.into_iter().zip(applied) {
                out[i] = Some(a);
            }
        }
        out.into_iter()
            .map(|a| a.ok_or_else(|| alpes_domain::Error::Store("scylla: an entry was not applied".into())))
            .collect()
    }

    async fn balances(&self, user_id: &str) -> alpes_domain::Result<Vec<Balance>> {
        let sums = self.sum(user_id, None).await?;
        Ok(sums
            .currencies
            .into_iter()
            .map(|(currency, s)| Balance {
                user_id: user_id.to_owned(),
                currency,
                accrued_minor: s.accrued,
                paid_minor: s.paid,
                pending_minor: s.accrued.saturating_sub(s.paid),
                uses: s.uses,
                charged_minor: s.charged,
                charges: s.charges,
                as_of: s.as_of,
            })
            .collect())
    }

    async fn entries_among(&self, user_id: &str, event_ids: &[&str]) -> alpes_domain::Result<HashSet<String>> {
        Ok(self.known(user_id, event_ids).await?)
    }

    async fn terms(&self, user_id: &str) -> alpes_domain::Result<Option<ConsumerTerms>> {
        let result = self
            .session
            .execute_unpaged(&self.st.terms, (user_id,))
            .await
            .map_err(db("read consumer terms"))?;
        let rows = result.into_rows_result().map_err(db("read consumer terms"))?;
        let row = rows.maybe_first_row::<TermsRow>().map_err(db("read consumer terms"))?;
        Ok(row.map(|r| ConsumerTerms {
            user_id: user_id.to_owned(),
            verified: r.verified.unwrap_or(false),
            credit_limit_minor: r.credit_limit_minor.unwrap_or(0),
            currency: r.currency.unwrap_or_default(),
            daily_downloads: r.daily_downloads,
            daily_bytes: r.daily_bytes,
            updated_at: r.updated_at.unwrap_or(0),
            updated_by: r.updated_by.unwrap_or_default(),
        }))
    }

    async fn set_terms(&self, t: ConsumerTerms) -> alpes_domain::Result<()> {
        let values = (
            &t.user_id,
            t.verified,
            t.credit_limit_minor,
            &t.currency,
            t.daily_downloads,
            t.daily_bytes,
            t.updated_at,
            &t.updated_by,
        );
        self.session
            .execute_unpaged(&self.st.set_terms, values)
            .await
            .map_err(db("write consumer terms"))?;
        Ok(())
    }

    /// Reads each UTC day partition of the period, page by page, and sums the pairs.
    async fn pairs(&self, since: i64, until: i64, limit: usize) -> alpes_domain::Result<Vec<PairVolume>> {
        let mut sums: HashMap<(String, String, String), (i64, i64)> = HashMap::new();
        let mut day = day_start(since);
        while day < until {
            let mut rows = self
                .session
                .execute_iter(self.st.charges_of_day.clone(), (day,))
                .await
                .map_err(db("read charges by day"))?
                .rows_stream::<(String, String, String, i64, i64)>()
                .map_err(db("read charges by day"))?;
            while let Some((consumer, provider, currency, amount, at)) = rows.try_next().await.map_err(db("read charges by day"))? {
                if (since..until).contains(&at) {
                    let sum = sums.entry((consumer, provider, currency)).or_default();
                    *sum = (sum.0 + 1, sum.1.saturating_add(amount));
                }
            }
            day += DAY_MS;
        }
        let mut pairs: Vec<PairVolume> = sums
            .into_iter()
            .map(|((consumer_id, provider_id, currency), (charges, amount_minor))| PairVolume {
                consumer_id,
                provider_id,
                currency,
                charges,
                amount_minor,
            })
            .collect();
        by_volume(&mut pairs);
        pairs.truncate(limit);
        Ok(pairs)
    }

    /// Scans the user's partition (payments are rare; the partition is read page by page).
    async fn reference_paid(&self, user_id: &str, reference: &str) -> alpes_domain::Result<bool> {
        let probe = LedgerEntry {
            event_id: String::new(),
            user_id: user_id.to_owned(),
            kind: EntryKind::Payment,
            amount_minor: 0,
            currency: String::new(),
            occurred_at: 0,
            image_id: None,
            counterparty: Some(reference.to_owned()),
        };
        Ok(self.sum(user_id, Some(&probe)).await?.reference_taken)
    }

    async fn movements(&self, user_id: &str, cursor: Option<&str>, limit: usize) -> alpes_domain::Result<LedgerPage> {
        let mut after = cursor.map(parse_movements_cursor).transpose()?;
        let limit = limit.clamp(1, 1000);
        let want = limit + 1;
        let mut found: Vec<(i64, LedgerEntry)> = Vec::with_capacity(want);
        loop {
            let n = want - found.len();
            let keys = self.movement_keys(user_id, after.as_ref(), n).await?;
            let exhausted = keys.len() < n;
            let ids: Vec<&str> = keys.iter().map(|(_, id)| id.as_str()).collect();
            let rows = self.entries(user_id, &ids).await?;
            for (seq, id) in &keys {
                // A movement counts only if its entry was written with the same seq.
                if let Some(row) = rows.get(id).filter(|r| r.seq == Some(*seq)) {
                    found.push((*seq, row.to_entry(user_id)));
                }
            }
            after = keys.last().cloned();
            if found.len() >= want || exhausted {
                break;
            }
        }
        let next = if found.len() > limit {
            found.truncate(limit);
            found.last().map(|(seq, e)| movements_cursor(*seq, &e.event_id))
        } else {
            None
        };
        Ok(LedgerPage {
            entries: found.into_iter().map(|(_, e)| e).collect(),
            next,
        })
    }
}

/// A `consumer_terms` row, every column as it may be absent.
#[derive(Debug, DeserializeRow)]
struct TermsRow {
    verified: Option<bool>,
    credit_limit_minor: Option<i64>,
    currency: Option<String>,
    daily_downloads: Option<i64>,
    daily_bytes: Option<i64>,
    updated_at: Option<i64>,
    updated_by: Option<String>,
}

/// The values of one `ledger_entries` row; an absent optional is left unset (no tombstone).
#[derive(Debug, SerializeRow)]
struct EntryValues<'a> {
    user_id: &'a str,
    event_id: &'a str,
    seq: i64,
    kind: &'static str,
    amount_minor: i64,
    currency: &'a str,
    occurred_at: i64,
    image_id: MaybeUnset<&'a str>,
    counterparty: MaybeUnset<&'a str>,
    refusal: MaybeUnset<String>,
}

impl<'a> EntryValues<'a> {
    fn new(e: &'a LedgerEntry, seq: i64, kind: EntryKind, refusal: Option<&Refusal>) -> EntryValues<'a> {
        let opt = |v: Option<&'a String>| v.map_or(MaybeUnset::Unset, |s| MaybeUnset::Set(s.as_str()));
        EntryValues {
            user_id: &e.user_id,
            event_id: &e.event_id,
            seq,
            kind: kind.as_str(),
            amount_minor: e.amount_minor,
            currency: &e.currency,
            occurred_at: e.occurred_at,
            image_id: opt(e.image_id.as_ref()),
            counterparty: opt(e.counterparty.as_ref()),
            refusal: refusal.map_or(MaybeUnset::Unset, |r| MaybeUnset::Set(r.stored())),
        }
    }
}

/// One `ledger_entries` row, as the movements query reads it.
#[derive(Debug, DeserializeRow)]
struct EntryRow {
    event_id: String,
    seq: Option<i64>,
    kind: Option<String>,
    amount_minor: Option<i64>,
    currency: Option<String>,
    occurred_at: Option<i64>,
    image_id: Option<String>,
    counterparty: Option<String>,
}

impl EntryRow {
    fn to_entry(&self, user_id: &str) -> LedgerEntry {
        LedgerEntry {
            event_id: self.event_id.clone(),
            user_id: user_id.to_owned(),
            kind: self.kind.as_deref().and_then(EntryKind::parse).unwrap_or(EntryKind::RefusedPayment),
            amount_minor: self.amount_minor.unwrap_or(0),
            currency: self.currency.clone().unwrap_or_default(),
            occurred_at: self.occurred_at.unwrap_or(0),
            image_id: self.image_id.clone(),
            counterparty: self.counterparty.clone(),
        }
    }
}

/// One row of a partition scan. Everything is optional: a partition's static
/// row comes back with null clustering columns when it has no other row.
#[derive(Debug, DeserializeRow)]
struct ScanRow {
    event_id: Option<String>,
    kind: Option<String>,
    amount_minor: Option<i64>,
    currency: Option<String>,
    occurred_at: Option<i64>,
    counterparty: Option<String>,
    refusal: Option<String>,
}

/// A user's balances summed from the partition, plus what a payout checks.
#[derive(Debug, Default)]
struct Sums {
    currencies: BTreeMap<String, CurrencySum>,
    /// The probed entry's event id is in the partition.
    has_event: bool,
    /// The refusal stored with the probed entry's row, if it was refused.
    prior_refusal: Option<String>,
    /// An accepted payment has the probed entry's reference.
    reference_taken: bool,
}

#[derive(Debug, Default, Clone, Copy)]
struct CurrencySum {
    accrued: i64,
    paid: i64,
    uses: i64,
    charged: i64,
    charges: i64,
    as_of: i64,
}

impl Sums {
    fn add(&mut self, row: ScanRow, probe: Option<&LedgerEntry>) {
        let Some(event_id) = row.event_id else { return };
        let kind = row.kind.as_deref().and_then(EntryKind::parse);
        if let Some(p) = probe {
            if event_id == p.event_id {
                self.has_event = true;
                self.prior_refusal.clone_from(&row.refusal);
            }
            self.reference_taken |= kind == Some(EntryKind::Payment) && row.counterparty == p.counterparty;
        }
        let (Some(currency), Some(amount)) = (row.currency, row.amount_minor) else {
            return;
        };
        let occurred_at = row.occurred_at.unwrap_or(0);
        let c = self.currencies.entry(currency).or_default();
        match kind {
            Some(EntryKind::Usage) => (c.accrued, c.uses) = (c.accrued.saturating_add(amount), c.uses + 1),
            Some(EntryKind::Payment) => c.paid = c.paid.saturating_add(amount),
            Some(EntryKind::Charge) => (c.charged, c.charges) = (c.charged.saturating_add(amount), c.charges + 1),
            Some(EntryKind::RefusedPayment) | None => return,
        }
        c.as_of = c.as_of.max(occurred_at);
    }

    fn pending(&self, currency: &str) -> i64 {
        self.currencies.get(currency).map_or(0, |c| c.accrued.saturating_sub(c.paid))
    }
}

/// `ids` without repeats, in first-seen order (an `IN` list is kept short and plain).
fn distinct<'a>(ids: &[&'a str]) -> Vec<&'a str> {
    let mut seen = HashSet::new();
    ids.iter().copied().filter(|id| seen.insert(*id)).collect()
}

/// Why a new payout is refused: the payout rule, on the summed partition.
fn payment_refusal(e: &LedgerEntry, sums: &Sums) -> Option<Refusal> {
    refuse_payout(PayoutCheck {
        amount_minor: e.amount_minor,
        reference_paid: sums.reference_taken,
        pending_minor: sums.pending(&e.currency),
    })
}

/// The last seq handed out in this process.
static LAST_SEQ: AtomicI64 = AtomicI64::new(0);

/// A movement's order key: microseconds since the epoch, strictly increasing in this process.
fn next_seq() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX));
    let mut prev = LAST_SEQ.load(Ordering::Relaxed);
    loop {
        let next = now.max(prev.saturating_add(1));
        match LAST_SEQ.compare_exchange_weak(prev, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(actual) => prev = actual,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::conformance::{payment, usage};

    #[test]
    fn seqs_strictly_increase() {
        let mut last = 0;
        for _ in 0..10_000 {
            let s = next_seq();
            assert!(s > last);
            last = s;
        }
    }

    fn row(e: &LedgerEntry, kind: EntryKind) -> ScanRow {
        ScanRow {
            event_id: Some(e.event_id.clone()),
            kind: Some(kind.as_str().to_owned()),
            amount_minor: Some(e.amount_minor),
            currency: Some(e.currency.clone()),
            occurred_at: Some(e.occurred_at),
            counterparty: e.counterparty.clone(),
            refusal: None,
        }
    }

    #[test]
    fn sums_count_usage_and_accepted_payments_only() {
        let mut late = usage("u2", "p", 50);
        late.occurred_at = 10;
        let probe = payment("pay9", "p", 1, "ref-1");
        let mut sums = Sums::default();
        sums.add(row(&usage("u1", "p", 100), EntryKind::Usage), Some(&probe));
        sums.add(row(&late, EntryKind::Usage), Some(&probe));
        sums.add(row(&payment("pay1", "p", 30, "ref-1"), EntryKind::Payment), Some(&probe));
        sums.add(row(&payment("pay2", "p", 500, "ref-2"), EntryKind::RefusedPayment), Some(&probe));
        sums.add(
            ScanRow {
                event_id: None,
                kind: None,
                amount_minor: None,
                currency: None,
                occurred_at: None,
                counterparty: None,
                refusal: None,
            },
            Some(&probe),
        );
        let eur = sums.currencies["EUR"];
        assert_eq!((eur.accrued, eur.paid, eur.uses, eur.as_of), (150, 30, 2, 2000));
        assert!(sums.reference_taken);
        assert!(!sums.has_event);
        assert_eq!(sums.pending("EUR"), 120);
        assert_eq!(sums.pending("COP"), 0);
    }

    #[test]
    fn a_probed_payment_refused_before_brings_its_refusal_back() {
        let refused = payment("pay2", "p", 500, "ref-2");
        let mut stored = row(&refused, EntryKind::RefusedPayment);
        stored.refusal = Some(Refusal::InsufficientBalance { pending_minor: 120 }.stored());
        let mut sums = Sums::default();
        sums.add(row(&usage("u1", "p", 100), EntryKind::Usage), Some(&refused));
        sums.add(stored, Some(&refused));
        assert!(sums.has_event);
        assert_eq!(
            sums.prior_refusal.as_deref().and_then(Refusal::from_stored),
            Some(Refusal::InsufficientBalance { pending_minor: 120 })
        );
    }

    #[test]
    fn payout_refusals_follow_the_sqlite_order() {
        let mut sums = Sums::default();
        sums.add(row(&usage("u1", "p", 100), EntryKind::Usage), None);
        assert_eq!(payment_refusal(&payment("a", "p", 0, "r"), &sums), Some(Refusal::InvalidAmount));
        assert_eq!(payment_refusal(&payment("a", "p", 100, "r"), &sums), None);
        assert_eq!(
            payment_refusal(&payment("a", "p", 101, "r"), &sums),
            Some(Refusal::InsufficientBalance { pending_minor: 100 })
        );
        sums.reference_taken = true;
        assert_eq!(payment_refusal(&payment("a", "p", 1, "r"), &sums), Some(Refusal::RepeatedReference));
    }
}
