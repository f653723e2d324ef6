//! The production identity store: ScyllaDB, through the `scylla` driver
//! (prepared statements, token-aware routing). The tables are in
//! `schemas/cql/003_identity.cql`.
//!
//! Several ingest replicas serve registrations, logins and refreshes at once,
//! and ScyllaDB has no transaction across partitions. SQLite gets each rule of
//! [`IdentityStore`] from one write transaction; here each rule has one
//! single-partition commit point. Where two writers can race on a decision,
//! that point is a lightweight transaction (LWT: Paxos, linearizable within
//! its partition, at the configured serial consistency); every other write is
//! idempotent, or is checked against a commit point when it is read.
//!
//! # Accounts: the email claim is the commit point
//!
//! `identity_emails` is keyed by the normalized email. `create_account`:
//!
//! 1. writes the account's helper rows, a row in `identity_accounts_by_role`
//!    (for `has_admin`) and one in `identity_unpublished` (for
//!    `unpublished_accounts`);
//! 2. claims the email: `INSERT ... IF NOT EXISTS`, with the whole new
//!    account in the claim row. Of two registrations of one email, on any
//!    replicas, exactly one claim applies; the other finds the claim and
//!    answers [`Created::EmailTaken`], as SQLite's unique index does, after
//!    removing its helper rows;
//! 3. writes the `identity_accounts` row (`INSERT ... IF NOT EXISTS`). If that
//!    fails, the claim is released (`DELETE ... IF user_id = <ours>`, so only
//!    our own claim) and the error returned. A claim whose outcome is unknown
//!    (a timeout) is released the same way.
//!
//! **An account exists while the claim of its email names its user id.** The
//! claim carries the account as created, so a claim whose row is missing (the
//! creator stopped between 2 and 3) is finished by whoever finds it:
//! `account_by_email` and `unpublished_accounts` write the row from the claim
//! (`IF NOT EXISTS`: the same row the creator would write). A row whose claim
//! names another user, or none, is a leftover of a creation rolled back or a
//! deletion cut short: `account` does not return it and the listings skip
//! it. Helper rows are written before the claim and checked against it on
//! read, so an account that exists always has them, and a helper row of an
//! account that does not is skipped. `delete_account` releases the claim
//! first (the account is gone from then on), then deletes the row and the
//! helper rows; a repeated call finishes a deletion that was cut short.
//!
//! Every write of an `identity_accounts` row is an LWT (`IF NOT EXISTS`,
//! `IF EXISTS` or a version compare): mixed with plain writes, whose
//! timestamps come from another clock than Paxos ballots, a later write could
//! be shadowed by an earlier one.
//!
//! # Login failures: compare-and-set on a version
//!
//! `record_failure` reads `failed_logins`, `first_failure_at`, `locked_until`
//! and `failure_version` at the serial consistency (which also completes any
//! LWT still in flight on the row), computes the next count with the same rule
//! as SQLite ([`next_failures`]), and writes it with
//! `UPDATE ... SET ..., failure_version = v + 1 IF failure_version = v`. If
//! another replica changed the cells in between, the condition fails and it
//! starts again from the read, after a short jittered pause (at most
//! 50 times). So concurrent failures of one account are serialized: each
//! counts once, and the one that reaches the limit locks. `record_success`
//! clears the cells through the same compare-and-set, so a failure decided on
//! the count before a success cannot land after it. The version is set (to 0)
//! when the row is created, so a compare-and-set on a missing row fails
//! instead of creating a partial one.
//!
//! # Refresh tokens: one use per token, one revocation per family
//!
//! `identity_refresh` holds each token by the SHA-256 of its secret, and
//! `identity_refresh_families` the revoked families: revoking a family is one
//! write of one partition, and a token is valid only while its family has no
//! `revoked_at`. `rotate_refresh` reads the token and its family; a revoked
//! family or an unknown token is [`Rotation::Invalid`], a used token revokes
//! its family ([`Rotation::Reused`]), an expired one is invalid, in SQLite's
//! order. Otherwise it writes the successor row, then uses the token:
//! `UPDATE ... SET used_at = ? IF used_at = null AND family_id = ?`. Of
//! concurrent rotations of one token exactly one applies and answers
//! [`Rotation::Rotated`]; each other one finds the token used, so it is a
//! reuse and revokes the family, as a later replay would. The successor is
//! written first so that a token handed out always exists; a successor
//! written by a rotation that lost is never handed out, and its family is
//! revoked anyway. A family revoked while a rotation runs revokes the
//! successor too, since it is checked by family.
//!
//! # Revoked access tokens
//!
//! `identity_revoked_jti` rows are written `USING TTL` until the revocation
//! ends plus five minutes (for clocks that disagree), so they expire by
//! themselves; `jti_revoked` still compares `expires_at` with `now`, as
//! SQLite does. A revocation that has already ended is not written (SQLite
//! writes it and deletes it in the same transaction).
//!
//! # API keys
//!
//! `identity_api_keys` holds keys by id. A new key is `INSERT ... IF NOT
//! EXISTS` (an id taken is an error, as SQLite's primary key makes it); a
//! revocation is `UPDATE ... IF revoked_at = null AND key_hash != null`, so
//! exactly one of concurrent revocations answers true and an unknown id is
//! false. A use writes `last_used_at` `USING TIMESTAMP` of the use (capped at
//! one day ahead of this process's clock, as ScyllaDB refuses timestamps far
//! ahead), so the latest use wins whatever order replicas write in: SQLite's
//! `MAX`. `identity_api_key_list` lists the ids newest first in one partition
//! (API keys are few); a listing row counts only while its `created_at` is
//! its key's.
//!
//! # Differences from SQLite
//!
//! - Creating an account or changing its row takes a Paxos round (about four
//!   network round trips) instead of a local transaction; registration and
//!   login already pay an argon2id hash, which costs far more.
//! - A creation that fails after its claim may, if even the release of the
//!   claim fails, leave an account that the caller was told failed; it is
//!   complete (the claim carries it), is announced by the next
//!   `unpublished_accounts`, and its owner can log in with the password given.
//! - `account(user_id)` does not find an account whose creator stopped between
//!   the claim and the row until `account_by_email` or `unpublished_accounts`
//!   has finished it (SQLite has no such moment).
//! - A refresh token stored twice under one hash overwrites instead of failing
//!   (the hash is of 256 random bits), and a family revoked twice keeps the
//!   latest `revoked_at` rather than the first (neither is visible through the
//!   port). Refresh rows are kept, as in SQLite.
//! - A revoked jti's row lives at most 20 years (ScyllaDB's largest TTL), so a
//!   revocation until later than that ends early.
//! - `record_failure` and `record_success` act on the account's row without
//!   reading its claim, so on a leftover row (a user id whose account was
//!   deleted, which no caller holds) they count instead of failing.
//! - A use of an API key is a plain write: a use of an id that was never
//!   created leaves a row with only `last_used_at`, which is no key (reads
//!   skip it) but makes a later `insert_api_key` of that id fail. Uses come
//!   only after the key was read. A use dated before the key's stored
//!   `last_used_at` was written (only a key inserted with `last_used_at` set)
//!   may lose to it.
//!
//! Lightweight transactions need a keyspace without tablets on ScyllaDB
//! versions whose tablets lack them (`alpes migrate --tablets`). With several
//! datacenters, keep `LOCAL_SERIAL` with ingest in one datacenter, or use
//! `SERIAL`.

use super::conn::{backoff, db, ScyllaArgs};
use super::exec::{Cql, Kind};
use crate::store::identity::{
    next_failures, Account, ApiKey, Created, Failures, IdentityStore, LockoutRule, NewAccount, RefreshToken, Rotation,
};
use crate::{Error, Result};
use alpes_domain::caller::Role;
use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt};
use scylla::client::session::Session;
use scylla::statement::prepared::PreparedStatement;
use scylla::value::MaybeUnset;
use scylla::DeserializeRow;
use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

mod rows;
use rows::*;

/// How many times a compare-and-set of the failure cells is tried before giving up.
const CAS_ATTEMPTS: u32 = 50;
/// How many API keys `api_keys` reads at once.
const READS_IN_FLIGHT: usize = 32;
/// The one partition of `identity_unpublished`.
const UNPUBLISHED_SHARD: i32 = 0;
/// The one partition of `identity_api_key_list`.
const API_KEYS: &str = "api_keys";
/// How long a revoked jti's row outlives its revocation, for clocks that disagree (seconds).
const TTL_MARGIN_SECS: i64 = 300;
/// ScyllaDB's largest TTL: 20 years, in seconds.
const MAX_TTL_SECS: i64 = 630_720_000;
/// How far ahead of this process's clock a write timestamp may be (ScyllaDB refuses more than three days).
const MAX_AHEAD_MICROS: i64 = 86_400_000_000;

// The statements, `{ks}` standing for the keyspace.
const EMAIL_CLAIM: &str = "INSERT INTO {ks}.identity_emails \
    (email, user_id, nombre, password_hash, user_role, organization, created_at, created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?) IF NOT EXISTS";
const EMAIL_RELEASE: &str = "DELETE FROM {ks}.identity_emails WHERE email = ? IF user_id = ?";
const EMAIL_READ: &str = "SELECT email, user_id, nombre, password_hash, user_role, organization, created_at, created_by \
    FROM {ks}.identity_emails WHERE email = ?";
const ACCOUNT_INSERT: &str = "INSERT INTO {ks}.identity_accounts \
    (user_id, nombre, email, password_hash, user_role, organization, created_at, created_by, failed_logins, failure_version, published) \
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) IF NOT EXISTS";
const ACCOUNT_READ: &str = "SELECT user_id, nombre, email, password_hash, user_role, organization, created_at, created_by, \
    failed_logins, first_failure_at, locked_until, last_login_at, published FROM {ks}.identity_accounts WHERE user_id = ?";
const FAILURES_READ: &str =
    "SELECT failed_logins, first_failure_at, locked_until, failure_version FROM {ks}.identity_accounts WHERE user_id = ?";
const FAILURES_CAS: &str = "UPDATE {ks}.identity_accounts \
    SET failed_logins = ?, first_failure_at = ?, locked_until = ?, last_login_at = ?, failure_version = ? \
    WHERE user_id = ? IF failure_version = ?";
const ACCOUNT_PUBLISH: &str = "UPDATE {ks}.identity_accounts SET published = true WHERE user_id = ? IF EXISTS";
const ACCOUNT_DELETE: &str = "DELETE FROM {ks}.identity_accounts WHERE user_id = ? IF EXISTS";
const ROLE_WRITE: &str = "INSERT INTO {ks}.identity_accounts_by_role (user_role, user_id, email) VALUES (?, ?, ?)";
const ROLE_DELETE: &str = "DELETE FROM {ks}.identity_accounts_by_role WHERE user_role = ? AND user_id = ?";
const ROLE_SCAN: &str = "SELECT user_id, email FROM {ks}.identity_accounts_by_role WHERE user_role = ?";
const UNPUBLISHED_WRITE: &str = "INSERT INTO {ks}.identity_unpublished (shard, created_at, user_id, email) VALUES (?, ?, ?, ?)";
const UNPUBLISHED_DELETE: &str = "DELETE FROM {ks}.identity_unpublished WHERE shard = ? AND created_at = ? AND user_id = ?";
const UNPUBLISHED_SCAN: &str = "SELECT created_at, user_id, email FROM {ks}.identity_unpublished WHERE shard = ?";
const REFRESH_INSERT: &str = "INSERT INTO {ks}.identity_refresh \
    (token_hash, family_id, user_id, user_role, issued_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)";
const REFRESH_READ: &str = "SELECT family_id, user_id, user_role, expires_at, used_at FROM {ks}.identity_refresh WHERE token_hash = ?";
const REFRESH_USE: &str = "UPDATE {ks}.identity_refresh SET used_at = ? WHERE token_hash = ? IF used_at = null AND family_id = ?";
const FAMILY_READ: &str = "SELECT revoked_at FROM {ks}.identity_refresh_families WHERE family_id = ?";
const FAMILY_REVOKE: &str = "UPDATE {ks}.identity_refresh_families SET revoked_at = ?, user_id = ? WHERE family_id = ?";
const JTI_REVOKE: &str = "INSERT INTO {ks}.identity_revoked_jti (jti, expires_at) VALUES (?, ?) USING TTL ?";
const JTI_READ: &str = "SELECT expires_at FROM {ks}.identity_revoked_jti WHERE jti = ?";
const KEY_INSERT: &str = "INSERT INTO {ks}.identity_api_keys \
    (key_id, key_hash, user_role, user_id, name, created_by, created_at, revoked_at, last_used_at) \
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) IF NOT EXISTS";
const KEY_READ: &str = "SELECT key_id, key_hash, user_role, user_id, name, created_by, created_at, revoked_at, last_used_at \
    FROM {ks}.identity_api_keys WHERE key_id = ?";
const KEY_REVOKE: &str = "UPDATE {ks}.identity_api_keys SET revoked_at = ? WHERE key_id = ? IF revoked_at = null AND key_hash != null";
const KEY_TOUCH: &str = "UPDATE {ks}.identity_api_keys USING TIMESTAMP ? SET last_used_at = ? WHERE key_id = ?";
const KEY_LIST_WRITE: &str = "INSERT INTO {ks}.identity_api_key_list (listing, created_at, key_id) VALUES (?, ?, ?)";
const KEY_LIST_SCAN: &str = "SELECT created_at, key_id FROM {ks}.identity_api_key_list WHERE listing = ?";

/// The ScyllaDB identity store. Cheap to clone; the statements are prepared once, by [`ScyllaIdentity::new`].
#[derive(Clone)]
pub struct ScyllaIdentity {
    cql: Cql,
    st: Arc<Statements>,
}

impl fmt::Debug for ScyllaIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScyllaIdentity")
            .field("keyspace", &self.cql.keyspace())
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct Statements {
    email_claim: PreparedStatement,
    email_release: PreparedStatement,
    email_read: PreparedStatement,
    account_insert: PreparedStatement,
    account_read: PreparedStatement,
    /// Read at the serial consistency.
    failures_read: PreparedStatement,
    failures_cas: PreparedStatement,
    account_publish: PreparedStatement,
    account_delete: PreparedStatement,
    role_write: PreparedStatement,
    role_delete: PreparedStatement,
    role_scan: PreparedStatement,
    unpublished_write: PreparedStatement,
    unpublished_delete: PreparedStatement,
    unpublished_scan: PreparedStatement,
    refresh_insert: PreparedStatement,
    refresh_read: PreparedStatement,
    refresh_use: PreparedStatement,
    family_read: PreparedStatement,
    family_revoke: PreparedStatement,
    jti_revoke: PreparedStatement,
    jti_read: PreparedStatement,
    key_insert: PreparedStatement,
    key_read: PreparedStatement,
    key_revoke: PreparedStatement,
    key_touch: PreparedStatement,
    key_list_write: PreparedStatement,
    key_list_scan: PreparedStatement,
}

impl ScyllaIdentity {
    /// Connects with `args` and prepares the identity store's statements (the tables must exist: `alpes migrate`).
    pub async fn connect(args: &ScyllaArgs) -> Result<ScyllaIdentity> {
        let session = args.connect().await?;
        ScyllaIdentity::new(session, args).await
    }

    /// The identity store in `args.keyspace` on an open session; prepares every statement now.
    pub async fn new(session: Arc<Session>, args: &ScyllaArgs) -> Result<ScyllaIdentity> {
        let cql = Cql::new(session, args)?;
        let prepare = |template: &'static str, kind: Kind| cql.prepare(template, kind);
        let st = Statements {
            email_claim: prepare(EMAIL_CLAIM, Kind::Lwt).await?,
            email_release: prepare(EMAIL_RELEASE, Kind::Lwt).await?,
            email_read: prepare(EMAIL_READ, Kind::Plain).await?,
            account_insert: prepare(ACCOUNT_INSERT, Kind::Lwt).await?,
            account_read: prepare(ACCOUNT_READ, Kind::Plain).await?,
            failures_read: prepare(FAILURES_READ, Kind::SerialRead).await?,
            failures_cas: prepare(FAILURES_CAS, Kind::Lwt).await?,
            account_publish: prepare(ACCOUNT_PUBLISH, Kind::Lwt).await?,
            account_delete: prepare(ACCOUNT_DELETE, Kind::Lwt).await?,
            role_write: prepare(ROLE_WRITE, Kind::Plain).await?,
            role_delete: prepare(ROLE_DELETE, Kind::Plain).await?,
            role_scan: prepare(ROLE_SCAN, Kind::Scan).await?,
            unpublished_write: prepare(UNPUBLISHED_WRITE, Kind::Plain).await?,
            unpublished_delete: prepare(UNPUBLISHED_DELETE, Kind::Plain).await?,
            unpublished_scan: prepare(UNPUBLISHED_SCAN, Kind::Scan).await?,
            refresh_insert: prepare(REFRESH_INSERT, Kind::Plain).await?,
            refresh_read: prepare(REFRESH_READ, Kind::Plain).await?,
            refresh_use: prepare(REFRESH_USE, Kind::Lwt).await?,
            family_read: prepare(FAMILY_READ, Kind::Plain).await?,
            family_revoke: prepare(FAMILY_REVOKE, Kind::Plain).await?,
            jti_revoke: prepare(JTI_REVOKE, Kind::Plain).await?,
            jti_read: prepare(JTI_READ, Kind::Plain).await?,
            key_insert: prepare(KEY_INSERT, Kind::Lwt).await?,
            key_read: prepare(KEY_READ, Kind::Plain).await?,
            key_revoke: prepare(KEY_REVOKE, Kind::Lwt).await?,
            key_touch: prepare(KEY_TOUCH, Kind::Plain).await?,
            key_list_write: prepare(KEY_LIST_WRITE, Kind::Plain).await?,
            key_list_scan: prepare(KEY_LIST_SCAN, Kind::Scan).await?,
        };
        Ok(ScyllaIdentity { cql, st: Arc::new(st) })
    }

    /// The claim of `email`, if any.
    async fn claim_of(&self, email: &str) -> Result<Option<ClaimRow>> {
        self.cql.read_one(&self.st.email_read, (email,), "read an email claim").await
    }

    /// Whether the claim of `email` names `user_id`: whether that account exists.
    async fn claim_names(&self, email: &str, user_id: &str) -> Result<bool> {
        Ok(self.claim_of(email).await?.is_some_and(|c| c.user_id.as_deref() == Some(user_id)))
    }

    /// The `identity_accounts` row of `user_id`, whether or not its claim names it.
    async fn row_of(&self, user_id: &str) -> Result<Option<Account>> {
        self.cql
            .read_one::<AccountRow>(&self.st.account_read, (user_id,), "read an account")
            .await?
            .map_or(Ok(None), AccountRow::account)
    }

    /// The account a claim names: its row, written from the claim first if the creator stopped before it.
    async fn account_of_claim(&self, claim: ClaimRow) -> Result<Option<Account>> {
        let Some(new) = claim.account()? else { return Ok(None) };
        if let Some(a) = self.row_of(&new.user_id).await? {
            return Ok(Some(a));
        }
        self.insert_row(&new).await?;
        self.row_of(&new.user_id).await
    }

    /// Writes the `identity_accounts` row of a new account, unless it is there (then it is this same account).
    async fn insert_row(&self, a: &NewAccount) -> Result<()> {
        let values = (
            a.user_id.as_str(),
            a.nombre.as_str(),
            a.email.as_str(),
            a.password_hash.as_str(),
            a.role.as_str(),
            unset_if_none(a.organization.as_deref()),
            a.created_at,
            a.created_by.as_str(),
            0i64,
            0i64,
            false,
        );
        self.cql.lwt(&self.st.account_insert, values, "write an account").await?;
        Ok(())
    }

    /// Writes the helper rows of a new account (before its claim).
    async fn write_helpers(&self, a: &NewAccount) -> Result<()> {
        let role = self.cql.write(
            &self.st.role_write,
            (a.role.as_str(), a.user_id.as_str(), a.email.as_str()),
            "write the role index",
        );
        let unpublished = self.cql.write(
            &self.st.unpublished_write,
            (UNPUBLISHED_SHARD, a.created_at, a.user_id.as_str(), a.email.as_str()),
            "write the unpublished index",
        );
        futures::try_join!(role, unpublished)?;
        Ok(())
    }

    /// Removes the helper rows of an account that does not exist, or no longer does.
    async fn forget_helpers(&self, user_id: &str, role: Role, created_at: i64) -> Result<()> {
        let role = self
            .cql
            .write(&self.st.role_delete, (role.as_str(), user_id), "delete from the role index");
        let unpublished = self.cql.write(
            &self.st.unpublished_delete,
            (UNPUBLISHED_SHARD, created_at, user_id),
            "delete from the unpublished index",
        );
        futures::try_join!(role, unpublished)?;
        Ok(())
    }

    /// Undoes a creation that failed after (or while) claiming: releases the claim if it is ours, then
    /// removes the row and the helper rows. Best effort: what is left is either a complete account (the
    /// claim stayed) or rows that the claim no longer names.
    async fn roll_back(&self, a: &NewAccount) {
        if let Err(e) = self
            .cql
            .lwt(&self.st.email_release, (a.email.as_str(), a.user_id.as_str()), "release an email")
            .await
        {
            tracing::warn!(user_id = %a.user_id, error = %e, "an account creation failed and its email claim could not be released");
            return;
        }
        let cleaned = async {
            self.cql
                .lwt(&self.st.account_delete, (a.user_id.as_str(),), "delete an account")
                .await?;
            self.forget_helpers(&a.user_id, a.role, a.created_at).await
        };
        if let Err(e) = cleaned.await {
            tracing::warn!(user_id = %a.user_id, error = %e, "rows of a failed account creation were left behind (they are skipped)");
        }
    }

    /// Applies `next` to the failure cells of `user_id` under the compare-and-set on `failure_version`
    /// (see the module docs), setting `last_login_at` too when given; `None` when the account has no row.
    async fn change_failures<F>(&self, user_id: &str, last_login_at: Option<i64>, next: F) -> Result<Option<FailureCells>>
    where
        F: Fn(FailureCells) -> FailureCells + Send + Sync,
    {
        for attempt in 0..CAS_ATTEMPTS {
            let Some(row) = self
                .cql
                .read_one::<FailureRow>(&self.st.failures_read, (user_id,), "read login failures")
                .await?
            else {
                return Ok(None);
            };
            let version = row
                .failure_version
                .ok_or_else(|| Error::Store("scylla: an account row has no failure_version".into()))?;
            let cells = next(FailureCells {
                count: row.failed_logins.unwrap_or(0),
                first_failure_at: row.first_failure_at,
                locked_until: row.locked_until,
            });
            let values = (
                cells.count,
                cells.first_failure_at,
                cells.locked_until,
                last_login_at.map_or(MaybeUnset::Unset, MaybeUnset::Set),
                version.wrapping_add(1),
                user_id,
                version,
            );
            if self.cql.lwt(&self.st.failures_cas, values, "write login failures").await? {
                return Ok(Some(cells));
            }
            tokio::time::sleep(backoff(attempt)).await;
        }
        Err(Error::Store(format!(
            "scylla: the login failures of an account lost their compare-and-set {CAS_ATTEMPTS} times in a row"
        )))
    }

    /// Revokes a refresh-token family at `now`.
    async fn revoke_family(&self, family_id: &str, user_id: &str, now: i64) -> Result<()> {
        self.cql
            .write(&self.st.family_revoke, (now, user_id, family_id), "revoke a refresh family")
            .await
    }

    /// Whether a refresh-token family is revoked.
    async fn family_revoked(&self, family_id: &str) -> Result<bool> {
        let row = self
            .cql
            .read_one::<(Option<i64>,)>(&self.st.family_read, (family_id,), "read a refresh family")
            .await?;
        Ok(row.is_some_and(|(revoked_at,)| revoked_at.is_some()))
    }

    /// The refresh token with this hash, if complete.
    async fn refresh_of(&self, token_hash: &str) -> Result<Option<StoredRefresh>> {
        let row = self
            .cql
            .read_one::<RefreshRow>(&self.st.refresh_read, (token_hash,), "read a refresh token")
            .await?;
        Ok(row.and_then(RefreshRow::stored))
    }

    /// The API key with this id, if complete.
    async fn key_of(&self, key_id: &str) -> Result<Option<ApiKey>> {
        self.cql
            .read_one::<ApiKeyRow>(&self.st.key_read, (key_id,), "read an API key")
            .await?
            .map_or(Ok(None), ApiKeyRow::key)
    }
}

#[async_trait]
impl IdentityStore for ScyllaIdentity {
    async fn create_account(&self, a: NewAccount) -> alpes_domain::Result<Created> {
        self.write_helpers(&a).await?;
        let claim = (
            a.email.as_str(),
            a.user_id.as_str(),
            a.nombre.as_str(),
            a.password_hash.as_str(),
            a.role.as_str(),
            unset_if_none(a.organization.as_deref()),
            a.created_at,
            a.created_by.as_str(),
        );
        let claimed = match self.cql.lwt(&self.st.email_claim, claim, "claim an email").await {
            Ok(claimed) => claimed,
            Err(e) => {
                // The claim may have applied: release it, so that the error means no account.
                self.roll_back(&a).await;
                return Err(e.into());
            }
        };
        // Taken, unless by this very account (a repeated call whose first claim applied).
        if !claimed && !self.claim_names(&a.email, &a.user_id).await? {
            if let Err(e) = self.forget_helpers(&a.user_id, a.role, a.created_at).await {
                tracing::warn!(user_id = %a.user_id, error = %e, "index rows of a refused account were left behind (they are skipped)");
            }
            return Ok(Created::EmailTaken);
        }
        if let Err(e) = self.insert_row(&a).await {
            self.roll_back(&a).await;
            return Err(e.into());
        }
        Ok(Created::Created)
    }

    async fn account_by_email(&self, email: &str) -> alpes_domain::Result<Option<Account>> {
        match self.claim_of(email).await? {
            Some(claim) => Ok(self.account_of_claim(claim).await?),
            None => Ok(None),
        }
    }

    async fn account(&self, user_id: &str) -> alpes_domain::Result<Option<Account>> {
        let Some(a) = self.row_of(user_id).await? else { return Ok(None) };
        Ok(self.claim_names(&a.email, user_id).await?.then_some(a))
    }

    async fn has_admin(&self) -> alpes_domain::Result<bool> {
        const STEP: &str = "read the admins";
        let mut rows = self
            .cql
            .scan::<(String, Option<String>)>(&self.st.role_scan, (Role::Admin.as_str(),), STEP)
            .await?;
        while let Some((user_id, email)) = rows.try_next().await.map_err(db(STEP))? {
            if let Some(email) = email {
                if self.claim_names(&email, &user_id).await? {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    async fn mark_published(&self, user_id: &str) -> alpes_domain::Result<()> {
        let Some(a) = self.row_of(user_id).await? else { return Ok(()) };
        self.cql
            .lwt(&self.st.account_publish, (user_id,), "mark an account published")
            .await?;
        Ok(self
            .cql
            .write(
                &self.st.unpublished_delete,
                (UNPUBLISHED_SHARD, a.created_at, user_id),
                "delete from the unpublished index",
            )
            .await?)
    }

    async fn unpublished_accounts(&self) -> alpes_domain::Result<Vec<Account>> {
        const STEP: &str = "read the unpublished accounts";
        let mut rows = self
            .cql
            .scan::<(i64, String, Option<String>)>(&self.st.unpublished_scan, (UNPUBLISHED_SHARD,), STEP)
            .await?;
        let mut out = Vec::new();
        while let Some((_, user_id, email)) = rows.try_next().await.map_err(db(STEP))? {
            let Some(email) = email else { continue };
            let Some(claim) = self.claim_of(&email).await? else { continue };
            if claim.user_id.as_deref() != Some(user_id.as_str()) {
                continue;
            }
            if let Some(a) = self.account_of_claim(claim).await?.filter(|a| !a.published) {
                out.push(a);
            }
        }
        Ok(out)
    }

    async fn delete_account(&self, user_id: &str) -> alpes_domain::Result<()> {
        let Some(a) = self.row_of(user_id).await? else { return Ok(()) };
        // The claim first: from then on the account is gone, whatever is left of the rest.
        self.cql
            .lwt(&self.st.email_release, (a.email.as_str(), user_id), "release an email")
            .await?;
        self.cql.lwt(&self.st.account_delete, (user_id,), "delete an account").await?;
        Ok(self.forget_helpers(user_id, a.role, a.created_at).await?)
    }

    async fn record_failure(&self, user_id: &str, now: i64, rule: LockoutRule) -> alpes_domain::Result<Failures> {
        let next = |c: FailureCells| {
            let (count, first, locked_until) = next_failures((c.count, c.first_failure_at, c.locked_until), now, rule);
            FailureCells {
                count,
                first_failure_at: Some(first),
                locked_until,
            }
        };
        match self.change_failures(user_id, None, next).await? {
            Some(c) => Ok(Failures {
                count: c.count,
                locked_until: c.locked_until,
            }),
            None => Err(alpes_domain::Error::Store("no such account".into())),
        }
    }

    async fn record_success(&self, user_id: &str, now: i64) -> alpes_domain::Result<()> {
        let cleared = |_: FailureCells| FailureCells {
            count: 0,
            first_failure_at: None,
            locked_until: None,
        };
        self.change_failures(user_id, Some(now), cleared).await?;
        Ok(())
    }

    async fn insert_refresh(&self, t: RefreshToken) -> alpes_domain::Result<()> {
        let values = (
            t.token_hash.as_str(),
            t.family_id.as_str(),
            t.user_id.as_str(),
            t.role.as_str(),
            t.issued_at,
            t.expires_at,
        );
        Ok(self.cql.write(&self.st.refresh_insert, values, "write a refresh token").await?)
    }

    async fn rotate_refresh(&self, token_hash: &str, next_hash: &str, next_expires_at: i64, now: i64) -> alpes_domain::Result<Rotation> {
        let Some(t) = self.refresh_of(token_hash).await? else {
            return Ok(Rotation::Invalid);
        };
        if self.family_revoked(&t.family_id).await? {
            return Ok(Rotation::Invalid);
        }
        if t.used_at.is_some() {
            self.revoke_family(&t.family_id, &t.user_id, now).await?;
            return Ok(Rotation::Reused { user_id: t.user_id });
        }
        if t.expires_at <= now {
            return Ok(Rotation::Invalid);
        }
        let role = role_of(&t.role)?;
        // The successor first, so that a token handed out always exists.
        let successor = (
            next_hash,
            t.family_id.as_str(),
            t.user_id.as_str(),
            role.as_str(),
            now,
            next_expires_at,
        );
        self.cql.write(&self.st.refresh_insert, successor, "write a refresh token").await?;
        let won = self
            .cql
            .lwt(&self.st.refresh_use, (now, token_hash, t.family_id.as_str()), "use a refresh token")
            .await?;
        if !won {
            // Another rotation used it first: this presentation is a reuse.
            self.revoke_family(&t.family_id, &t.user_id, now).await?;
            return Ok(Rotation::Reused { user_id: t.user_id });
        }
        Ok(Rotation::Rotated {
            user_id: t.user_id,
            role,
            family_id: t.family_id,
        })
    }

    async fn revoke_refresh_family(&self, token_hash: &str, now: i64) -> alpes_domain::Result<bool> {
        let Some(t) = self.refresh_of(token_hash).await? else {
            return Ok(false);
        };
        self.revoke_family(&t.family_id, &t.user_id, now).await?;
        Ok(true)
    }

    async fn revoke_jti(&self, jti: &str, expires_at: i64) -> alpes_domain::Result<()> {
        // A revocation that already ended matters no more: the token it names is refused as expired.
        let Some(ttl) = jti_ttl_secs(expires_at, alpes_schemas::now_millis()) else {
            return Ok(());
        };
        Ok(self.cql.write(&self.st.jti_revoke, (jti, expires_at, ttl), "revoke a jti").await?)
    }

    async fn jti_revoked(&self, jti: &str, now: i64) -> alpes_domain::Result<bool> {
        let row = self
            .cql
            .read_one::<(Option<i64>,)>(&self.st.jti_read, (jti,), "read a revoked jti")
            .await?;
        Ok(row.is_some_and(|(expires_at,)| expires_at.is_some_and(|e| e >= now)))
    }

    async fn insert_api_key(&self, k: ApiKey) -> alpes_domain::Result<()> {
        // The listing row first: a key that exists is always listed.
        self.cql
            .write(
                &self.st.key_list_write,
                (API_KEYS, k.created_at, k.key_id.as_str()),
                "write the API key list",
            )
            .await?;
        let values = (
            k.key_id.as_str(),
            k.key_hash.as_str(),
            k.role.as_str(),
            k.user_id.as_str(),
            k.name.as_str(),
            k.created_by.as_str(),
            k.created_at,
            k.revoked_at.map_or(MaybeUnset::Unset, MaybeUnset::Set),
            k.last_used_at.map_or(MaybeUnset::Unset, MaybeUnset::Set),
        );
        if self.cql.lwt(&self.st.key_insert, values, "write an API key").await? {
            Ok(())
        } else {
            Err(alpes_domain::Error::Store("scylla: an API key with this id exists".into()))
        }
    }

    async fn api_key(&self, key_id: &str) -> alpes_domain::Result<Option<ApiKey>> {
        Ok(self.key_of(key_id).await?)
    }

    async fn api_keys(&self) -> alpes_domain::Result<Vec<ApiKey>> {
        const STEP: &str = "read the API key list";
        let listed: Vec<(i64, String)> = self
            .cql
            .scan::<(i64, String)>(&self.st.key_list_scan, (API_KEYS,), STEP)
            .await?
            .try_collect()
            .await
            .map_err(db(STEP))?;
        // The futures are collected before they are streamed (see `ScyllaCatalog::known`).
        let reads: Vec<_> = listed.iter().map(|(_, id)| self.key_of(id)).collect();
        let keys: Vec<Option<ApiKey>> = futures::stream::iter(reads).buffered(READS_IN_FLIGHT).try_collect().await?;
        Ok(listed_keys(&listed, keys))
    }

    async fn revoke_api_key(&self, key_id: &str, now: i64) -> alpes_domain::Result<bool> {
        Ok(self.cql.lwt(&self.st.key_revoke, (now, key_id), "revoke an API key").await?)
    }

    async fn touch_api_key(&self, key_id: &str, now: i64) -> alpes_domain::Result<()> {
        let ts = use_timestamp(now, now_micros());
        Ok(self.cql.write(&self.st.key_touch, (ts, now, key_id), "touch an API key").await?)
    }
}

#[cfg(test)]
mod tests;
