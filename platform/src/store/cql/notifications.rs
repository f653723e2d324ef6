//! The notification store on ScyllaDB (or any CQL cluster), shared by every
//! notifier replica and the API that lists notifications and manages
//! webhooks. The tables are in `schemas/cql/011_notifications.cql`.
//!
//! SQLite gets each rule of [`NotificationStore`] from one statement; here
//! each rule has one single-partition commit point, a lightweight transaction
//! (LWT), and the listing rows are written idempotently before it and checked
//! against it when read.
//!
//! # Notifications: the `notifications` row is the commit point
//!
//! `notifications` has one partition per id. **A notification exists once its
//! row does.** [`NotificationStore::claim`] first writes its listing rows (and
//! their bucket rows), then the row itself with `INSERT ... IF NOT EXISTS`:
//! of two notifiers claiming one id (an event delivered twice), exactly one
//! applies and is answered `None`; the other reads the row at the serial
//! consistency and is answered with it. A claim that loses removes the
//! listing rows it wrote that are not the winner's ([`stale_keys`]).
//! [`NotificationStore::settle`] is `UPDATE ... IF EXISTS`, so a settle of an
//! unknown id is a no-op (as SQLite's) and never leaves a partial row. Every
//! write of the row is an LWT: mixed with plain writes, whose timestamps come
//! from another clock than Paxos ballots, a settle could be shadowed by the
//! claim before it.
//!
//! # Listings: by owner and by UTC day, newest first
//!
//! `notifications_by_owner` holds keys only, one partition per `(owner, UTC
//! day)`, clustered by `(created_at DESC, id DESC)`; every notification is
//! listed under its owner and under `*` (the listing of all of them).
//! `notification_buckets` lists the days that hold rows of each listing, so a
//! page walks only those (a bucket row is written before any listing row of
//! its day, and each process remembers the bucket rows it wrote). A page is a
//! slice `(created_at, id) < (?, ?)` of one day after another, newest first.
//! Each listing row is checked against its notification's row: one whose
//! notification does not exist (a claim that stopped half-way), or has
//! another owner or creation time (a claim that lost), is skipped, and the
//! page is filled from the next rows. Day buckets keep the `*` partition of
//! a day at the day's notifications (a few MB at 100 000 a day); a page of
//! an owner with a notification every few days reads one partition per day.
//!
//! # Webhooks
//!
//! `webhooks` has one partition per institution, clustered by id: a listing
//! reads one partition and sorts it by `(created_at, id)`. A webhook is
//! added with `INSERT ... IF NOT EXISTS` and removed with `DELETE ... IF
//! EXISTS`, whose `[applied]` is the answer; another institution's id is not
//! in the partition, so it answers `false`.
//!
//! # Differences from SQLite
//!
//! - A claim takes up to four plain writes (two listing rows, and the bucket
//!   rows this process has not written yet) and a Paxos round; a lost claim a
//!   serial read and up to two deletes more; a settle a Paxos round.
//! - An LWT whose Paxos round times out is tried again; if its first try had
//!   applied, the retry is answered as a loser would be: a claim with its own
//!   row (still `pendiente`, so the notifier sends it, as after a restart), a
//!   removal of a webhook with `false`.
//! - A webhook id is unique per institution, not globally (SQLite's primary
//!   key); adding one twice with the same values answers `Ok` both times.
//!
//! Lightweight transactions need a keyspace without tablets on ScyllaDB
//! versions whose tablets lack them (`alpes migrate --tablets`).

use super::conn::{db, ScyllaArgs};
use super::exec::{Cql, Kind};
use super::written::Written;
use crate::{Error, Result};
use alpes_domain::notification::{DeliveryState, Notification, NotificationStore, Webhook};
use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt};
use scylla::client::session::Session;
use scylla::statement::prepared::PreparedStatement;
use scylla::value::MaybeUnset;
use scylla::DeserializeRow;
use std::fmt;
use std::sync::Arc;

/// The width of a listing bucket: one UTC day, in milliseconds.
const BUCKET_MS: i64 = 86_400_000;
/// The owner under which every notification is listed (no owner is `*`).
const ALL: &str = "*";
/// The most listing rows read at a time.
const PAGE_ROWS: usize = 256;
/// How many bucket numbers one read of `notification_buckets` returns.
const BUCKETS_PER_READ: i32 = 32;
/// How many notification rows a listing reads at once.
const READS_IN_FLIGHT: usize = 64;
/// How many bucket rows a process remembers having written before it forgets them all.
const KNOWN_BUCKETS: usize = 65_536;

// The statements, `{ks}` standing for the keyspace.
const CLAIM: &str = "INSERT INTO {ks}.notifications (id, event_id, event_type, channel, template, recipient, owner, state, \
    attempts, reason, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) IF NOT EXISTS";
const READ: &str = "SELECT id, event_id, event_type, channel, template, recipient, owner, state, attempts, reason, created_at, \
    updated_at FROM {ks}.notifications WHERE id = ?";
const SETTLE: &str = "UPDATE {ks}.notifications SET state = ?, attempts = ?, reason = ?, updated_at = ? WHERE id = ? IF EXISTS";
const BUCKET_WRITE: &str = "INSERT INTO {ks}.notification_buckets (owner, bucket) VALUES (?, ?)";
const BUCKETS_READ: &str = "SELECT bucket FROM {ks}.notification_buckets WHERE owner = ? AND bucket <= ? LIMIT ?";
const LIST_WRITE: &str = "INSERT INTO {ks}.notifications_by_owner (owner, bucket, created_at, id) VALUES (?, ?, ?, ?)";
const LIST_DELETE: &str = "DELETE FROM {ks}.notifications_by_owner WHERE owner = ? AND bucket = ? AND created_at = ? AND id = ?";
const LIST_FIRST: &str = "SELECT created_at, id FROM {ks}.notifications_by_owner WHERE owner = ? AND bucket = ? LIMIT ?";
const LIST_BEFORE: &str =
    "SELECT created_at, id FROM {ks}.notifications_by_owner WHERE owner = ? AND bucket = ? AND (created_at, id) < (?, ?) LIMIT ?";
const WEBHOOK_INSERT: &str =
    "INSERT INTO {ks}.webhooks (institution_id, id, url, secret, events, created_at) VALUES (?, ?, ?, ?, ?, ?) IF NOT EXISTS";
const WEBHOOK_READ: &str =
    "SELECT institution_id, id, url, secret, events, created_at FROM {ks}.webhooks WHERE institution_id = ? AND id = ?";
const WEBHOOKS_SCAN: &str = "SELECT institution_id, id, url, secret, events, created_at FROM {ks}.webhooks WHERE institution_id = ?";
const WEBHOOK_DELETE: &str = "DELETE FROM {ks}.webhooks WHERE institution_id = ? AND id = ? IF EXISTS";

/// The ScyllaDB notification store. Cheap to clone; the statements are prepared once, by [`ScyllaNotifications::new`].
#[derive(Clone)]
pub struct ScyllaNotifications {
    cql: Cql,
    st: Arc<Statements>,
    /// The bucket rows this process wrote.
    known_buckets: Arc<Written<(String, i64)>>,
}

impl fmt::Debug for ScyllaNotifications {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScyllaNotifications")
            .field("keyspace", &self.cql.keyspace())
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct Statements {
    claim: PreparedStatement,
    read: PreparedStatement,
    /// [`READ`] at the serial consistency.
    read_serial: PreparedStatement,
    settle: PreparedStatement,
    bucket_write: PreparedStatement,
    buckets_read: PreparedStatement,
    list_write: PreparedStatement,
    list_delete: PreparedStatement,
    list_first: PreparedStatement,
    list_before: PreparedStatement,
    webhook_insert: PreparedStatement,
    webhook_read: PreparedStatement,
    webhooks_scan: PreparedStatement,
    webhook_delete: PreparedStatement,
}

/// The listing bucket of a time: its UTC day.
fn bucket_of(at: i64) -> i64 {
    at.div_euclid(BUCKET_MS)
}

/// The listings (owners) under which a claim that lost listed `ours` in rows that are not the
/// `winner`'s: those to remove. The winner's rows are `(winner.owner, winner.created_at)` and
/// `(*, winner.created_at)`.
fn stale_keys<'a>(ours: &'a Notification, winner: &Notification) -> Vec<&'a str> {
    let mut keys = vec![ours.owner.as_str(), ALL];
    keys.dedup();
    keys.retain(|k| ours.created_at != winner.created_at || (*k != winner.owner && *k != ALL));
    keys
}

/// A `notifications` row as stored. Every column but `reason` is always written: the row is
/// written whole by the claim, and a settle changes only a row that exists.
#[derive(Debug, Clone, DeserializeRow)]
struct NotificationRow {
    id: String,
    event_id: String,
    event_type: String,
    channel: String,
    template: String,
    recipient: String,
    owner: String,
    state: String,
    attempts: i64,
    reason: Option<String>,
    created_at: i64,
    updated_at: i64,
}

impl NotificationRow {
    fn notification(self) -> Result<Notification> {
        let state = DeliveryState::parse(&self.state).ok_or_else(|| Error::Store("a notification has an unknown delivery state".into()))?;
        let attempts =
            u32::try_from(self.attempts).map_err(|_| Error::Store("a notification has an impossible number of attempts".into()))?;
        Ok(Notification {
            id: self.id,
            event_id: self.event_id,
            event_type: self.event_type,
            channel: self.channel,
            template: self.template,
            recipient: self.recipient,
            owner: self.owner,
            state,
            attempts,
            reason: self.reason,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// A `webhooks` row as stored (written whole, by one insert).
#[derive(Debug, Clone, DeserializeRow)]
struct WebhookRow {
    institution_id: String,
    id: String,
    url: String,
    secret: Vec<u8>,
    /// An empty list is stored as null.
    events: Option<Vec<String>>,
    created_at: i64,
}

impl WebhookRow {
    fn webhook(self) -> Webhook {
        Webhook {
            id: self.id,
            institution_id: self.institution_id,
            url: self.url,
            secret: self.secret,
            events: self.events.unwrap_or_default(),
            created_at: self.created_at,
        }
    }
}

impl ScyllaNotifications {
    /// Connects with `args` and prepares the notification store's statements (the tables must exist: `alpes migrate`).
    pub async fn connect(args: &ScyllaArgs) -> Result<ScyllaNotifications> {
        let session = args.connect().await?;
        ScyllaNotifications::new(session, args).await
    }

    /// The notification store in `args.keyspace` on an open session; prepares every statement now.
    pub async fn new(session: Arc<Session>, args: &ScyllaArgs) -> Result<ScyllaNotifications> {
        let cql = Cql::new(session, args)?;
        let prepare = |template: &'static str, kind: Kind| cql.prepare(template, kind);
        let st = Statements {
            claim: prepare(CLAIM, Kind::Lwt).await?,
            read: prepare(READ, Kind::Plain).await?,
            read_serial: prepare(READ, Kind::SerialRead).await?,
            settle: prepare(SETTLE, Kind::Lwt).await?,
            bucket_write: prepare(BUCKET_WRITE, Kind::Plain).await?,
            buckets_read: prepare(BUCKETS_READ, Kind::Plain).await?,
            list_write: prepare(LIST_WRITE, Kind::Plain).await?,
            list_delete: prepare(LIST_DELETE, Kind::Plain).await?,
            list_first: prepare(LIST_FIRST, Kind::Plain).await?,
            list_before: prepare(LIST_BEFORE, Kind::Plain).await?,
            webhook_insert: prepare(WEBHOOK_INSERT, Kind::Lwt).await?,
            webhook_read: prepare(WEBHOOK_READ, Kind::SerialRead).await?,
            webhooks_scan: prepare(WEBHOOKS_SCAN, Kind::Scan).await?,
            webhook_delete: prepare(WEBHOOK_DELETE, Kind::Lwt).await?,
        };
        Ok(ScyllaNotifications {
            cql,
            st: Arc::new(st),
            known_buckets: Arc::new(Written::new(KNOWN_BUCKETS)),
        })
    }

    /// The notification `id`, read at `stmt`'s consistency.
    async fn read(&self, stmt: &PreparedStatement, id: &str) -> Result<Option<Notification>> {
        self.cql
            .read_one::<NotificationRow>(stmt, (id,), "read a notification")
            .await?
            .map(NotificationRow::notification)
            .transpose()
    }

    /// Writes the bucket row of `(owner, bucket)` unless this process already did.
    async fn ensure_bucket(&self, owner: &str, bucket: i64) -> Result<()> {
        let key = (owner.to_owned(), bucket);
        if self.known_buckets.has(&key) {
            return Ok(());
        }
        self.cql
            .write(&self.st.bucket_write, (owner, bucket), "write a notification bucket")
            .await?;
        self.known_buckets.remember(key);
        Ok(())
    }

    /// Lists `n` under `owner` (its bucket row first).
    async fn list(&self, owner: &str, n: &Notification) -> Result<()> {
        let bucket = bucket_of(n.created_at);
        self.ensure_bucket(owner, bucket).await?;
        let values = (owner, bucket, n.created_at, n.id.as_str());
        self.cql.write(&self.st.list_write, values, "list a notification").await
    }

    /// Up to `want` listing rows of `(key, bucket)`, before `before`.
    async fn bucket_rows(&self, key: &str, bucket: i64, before: Option<&(i64, String)>, want: usize) -> Result<Vec<(i64, String)>> {
        let want = i32::try_from(want).unwrap_or(i32::MAX);
        let step = "read a notification listing";
        match before {
            None => self.cql.read_rows(&self.st.list_first, (key, bucket, want), step).await,
            Some((at, id)) => {
                self.cql
                    .read_rows(&self.st.list_before, (key, bucket, *at, id.as_str(), want), step)
                    .await
            }
        }
    }

    /// The notifications the listing rows name that exist as listed (of `owner`, if given).
    async fn listed(&self, owner: Option<&str>, rows: Vec<(i64, String)>) -> Result<Vec<Notification>> {
        let found: Vec<Option<Notification>> = futures::stream::iter(rows)
            .map(|(created_at, id)| async move {
                let n = self.read(&self.st.read, &id).await?;
                Ok::<_, Error>(n.filter(|n| n.created_at == created_at && owner.is_none_or(|o| n.owner == o)))
            })
            .buffered(READS_IN_FLIGHT)
            .try_collect()
            .await?;
        Ok(found.into_iter().flatten().collect())
    }

    /// Up to `limit` notifications of the listing `owner` (or `*`), newest first, before `before`.
    async fn walk(&self, owner: Option<&str>, before: Option<(i64, String)>, limit: usize) -> Result<Vec<Notification>> {
        let key = owner.unwrap_or(ALL);
        let mut out = Vec::new();
        let mut top = before.as_ref().map_or(i64::MAX, |(at, _)| bucket_of(*at));
        let mut cursor = before;
        while out.len() < limit {
            let buckets: Vec<(i64,)> = self
                .cql
                .read_rows(
                    &self.st.buckets_read,
                    (key, top, BUCKETS_PER_READ),
                    "read a notification listing's buckets",
                )
                .await?;
            for &(bucket,) in &buckets {
                // Rows of older buckets are all older than the cursor, so it bounds them too.
                loop {
                    let want = (limit - out.len()).min(PAGE_ROWS);
                    let rows = self.bucket_rows(key, bucket, cursor.as_ref(), want).await?;
                    let full = rows.len() == want;
                    if let Some(last) = rows.last() {
                        cursor = Some(last.clone());
                    }
                    out.extend(self.listed(owner, rows).await?);
                    if out.len() >= limit {
                        return Ok(out);
                    }
                    if !full {
                        break;
                    }
                }
            }
            match buckets.last() {
                Some(&(oldest,)) if buckets.len() == BUCKETS_PER_READ as usize && oldest > i64::MIN => top = oldest - 1,
                _ => break,
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl NotificationStore for ScyllaNotifications {
    async fn claim(&self, n: &Notification) -> alpes_domain::Result<Option<Notification>> {
        futures::try_join!(self.list(&n.owner, n), self.list(ALL, n))?;
        let values = (
            n.id.as_str(),
            n.event_id.as_str(),
            n.event_type.as_str(),
            n.channel.as_str(),
            n.template.as_str(),
            n.recipient.as_str(),
            n.owner.as_str(),
            n.state.as_str(),
            i64::from(n.attempts),
            n.reason.as_deref().map_or(MaybeUnset::Unset, MaybeUnset::Set),
            n.created_at,
            n.updated_at,
        );
        if self.cql.lwt_retried(&self.st.claim, values, "claim a notification").await? {
            return Ok(None);
        }
        let winner = self
            .read(&self.st.read_serial, &n.id)
            .await?
            .ok_or_else(|| Error::Store(format!("a notification {} was neither claimed nor found", n.id)))?;
        let bucket = bucket_of(n.created_at);
        for key in stale_keys(n, &winner) {
            let values = (key, bucket, n.created_at, n.id.as_str());
            if let Err(e) = self
                .cql
                .write(&self.st.list_delete, values, "unlist a lost notification claim")
                .await
            {
                // Harmless: a listing row whose notification is another's is skipped on read.
                tracing::warn!(notification = %n.id, error = %e, "a listing row of a lost claim stays");
            }
        }
        Ok(Some(winner))
    }

    async fn settle(&self, id: &str, state: DeliveryState, attempts: u32, reason: Option<&str>, at: i64) -> alpes_domain::Result<()> {
        let values = (state.as_str(), i64::from(attempts), reason, at, id);
        self.cql.lwt_retried(&self.st.settle, values, "settle a notification").await?;
        Ok(())
    }

    async fn notifications(
        &self,
        owner: Option<&str>,
        before: Option<(i64, String)>,
        limit: usize,
    ) -> alpes_domain::Result<Vec<Notification>> {
        Ok(self.walk(owner, before, limit).await?)
    }

    async fn add_webhook(&self, w: &Webhook) -> alpes_domain::Result<()> {
        let values = (
            w.institution_id.as_str(),
            w.id.as_str(),
            w.url.as_str(),
            w.secret.as_slice(),
            w.events.as_slice(),
            w.created_at,
        );
        if self.cql.lwt_retried(&self.st.webhook_insert, values, "add a webhook").await? {
            return Ok(());
        }
        let found = self
            .cql
            .read_one::<WebhookRow>(&self.st.webhook_read, (w.institution_id.as_str(), w.id.as_str()), "read a webhook")
            .await?
            .map(WebhookRow::webhook);
        if found.as_ref() == Some(w) {
            return Ok(());
        }
        Err(Error::Store(format!("a webhook {} exists already", w.id)).into())
    }

    async fn webhooks(&self, institution_id: &str) -> alpes_domain::Result<Vec<Webhook>> {
        let step = "read an institution's webhooks";
        let rows: Vec<WebhookRow> = self
            .cql
            .scan::<WebhookRow>(&self.st.webhooks_scan, (institution_id,), step)
            .await?
            .try_collect()
            .await
            .map_err(db(step))?;
        let mut hooks: Vec<Webhook> = rows.into_iter().map(WebhookRow::webhook).collect();
        hooks.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(hooks)
    }

    async fn delete_webhook(&self, institution_id: &str, id: &str) -> alpes_domain::Result<bool> {
        Ok(self
            .cql
            .lwt_retried(&self.st.webhook_delete, (institution_id, id), "remove a webhook")
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::super::check::assert_statements_cover;
    use super::*;

    const ALL_STATEMENTS: [&str; 13] = [
        CLAIM,
        READ,
        SETTLE,
        BUCKET_WRITE,
        BUCKETS_READ,
        LIST_WRITE,
        LIST_DELETE,
        LIST_FIRST,
        LIST_BEFORE,
        WEBHOOK_INSERT,
        WEBHOOK_READ,
        WEBHOOKS_SCAN,
        WEBHOOK_DELETE,
    ];

    #[test]
    fn every_statement_names_only_tables_and_columns_of_the_schema() {
        const KEYWORDS: [&str; 14] = [
            "select", "from", "where", "and", "insert", "into", "values", "update", "set", "if", "not", "exists", "limit", "delete",
        ];
        assert_statements_cover("011_notifications.cql", 4, &ALL_STATEMENTS, &KEYWORDS);
    }

    #[test]
    fn the_rows_of_notifications_and_webhooks_are_written_only_by_lightweight_transactions() {
        for cql in ALL_STATEMENTS.iter().filter(|c| !c.starts_with("SELECT")) {
            let table = super::super::check::table_of(cql);
            assert_eq!(cql.contains(" IF "), table == "notifications" || table == "webhooks", "{cql}");
        }
    }

    fn notification(owner: &str, created_at: i64) -> Notification {
        Notification {
            id: "n".into(),
            event_id: "e".into(),
            event_type: "PagoProcesado".into(),
            channel: "email".into(),
            template: "pago".into(),
            recipient: "usuario:u".into(),
            owner: owner.into(),
            state: DeliveryState::Pendiente,
            attempts: 0,
            reason: None,
            created_at,
            updated_at: created_at,
        }
    }

    #[test]
    fn a_lost_claim_removes_only_the_listing_rows_that_are_not_the_winners() {
        let ours = notification("usuario:u", 10);
        assert!(stale_keys(&ours, &notification("usuario:u", 10)).is_empty(), "the same rows");
        assert_eq!(stale_keys(&ours, &notification("usuario:u", 11)), ["usuario:u", ALL]);
        assert_eq!(
            stale_keys(&ours, &notification("usuario:v", 10)),
            ["usuario:u"],
            "`*` is the winner's too"
        );
        assert!(stale_keys(&notification(ALL, 10), &notification("usuario:v", 10)).is_empty());
        assert_eq!(stale_keys(&notification(ALL, 10), &notification(ALL, 9)), [ALL]);
    }

    #[test]
    fn buckets_are_utc_days() {
        assert_eq!(
            (bucket_of(0), bucket_of(BUCKET_MS - 1), bucket_of(BUCKET_MS), bucket_of(-1)),
            (0, 0, 1, -1)
        );
    }
}
