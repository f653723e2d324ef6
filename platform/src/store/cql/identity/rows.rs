//! The identity tables' rows as stored and as the port returns them, and the
//! pure helpers (TTLs, write timestamps, roles) the CQL identity store uses.

use super::*;

/// The failure cells of an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct FailureCells {
    pub(super) count: i64,
    pub(super) first_failure_at: Option<i64>,
    pub(super) locked_until: Option<i64>,
}

/// The failure cells and their compare-and-set version, as read.
#[derive(Debug, DeserializeRow)]
pub(super) struct FailureRow {
    pub(super) failed_logins: Option<i64>,
    pub(super) first_failure_at: Option<i64>,
    pub(super) locked_until: Option<i64>,
    pub(super) failure_version: Option<i64>,
}

/// An `identity_emails` row (no `Debug`: it holds an email and a password hash).
#[derive(Default, DeserializeRow)]
pub(super) struct ClaimRow {
    pub(super) email: String,
    pub(super) user_id: Option<String>,
    pub(super) nombre: Option<String>,
    pub(super) password_hash: Option<String>,
    pub(super) user_role: Option<String>,
    pub(super) organization: Option<String>,
    pub(super) created_at: Option<i64>,
    pub(super) created_by: Option<String>,
}

impl ClaimRow {
    /// The account the claim carries; `None` if a cell is missing (no claim is written so).
    pub(super) fn account(self) -> Result<Option<NewAccount>> {
        let (Some(user_id), Some(nombre), Some(password_hash), Some(role), Some(created_at), Some(created_by)) = (
            self.user_id,
            self.nombre,
            self.password_hash,
            self.user_role,
            self.created_at,
            self.created_by,
        ) else {
            return Ok(None);
        };
        Ok(Some(NewAccount {
            user_id,
            nombre,
            email: self.email,
            password_hash,
            role: role_of(&role)?,
            organization: self.organization,
            created_at,
            created_by,
        }))
    }
}

/// An `identity_accounts` row (no `Debug`: it holds an email and a password hash).
#[derive(Default, DeserializeRow)]
pub(super) struct AccountRow {
    pub(super) user_id: String,
    pub(super) nombre: Option<String>,
    pub(super) email: Option<String>,
    pub(super) password_hash: Option<String>,
    pub(super) user_role: Option<String>,
    pub(super) organization: Option<String>,
    pub(super) created_at: Option<i64>,
    pub(super) created_by: Option<String>,
    pub(super) failed_logins: Option<i64>,
    pub(super) first_failure_at: Option<i64>,
    pub(super) locked_until: Option<i64>,
    pub(super) last_login_at: Option<i64>,
    pub(super) published: Option<bool>,
}

impl AccountRow {
    /// The account; `None` if a creation cell is missing (no row is written so).
    pub(super) fn account(self) -> Result<Option<Account>> {
        let (Some(nombre), Some(email), Some(password_hash), Some(role), Some(created_at), Some(created_by)) = (
            self.nombre,
            self.email,
            self.password_hash,
            self.user_role,
            self.created_at,
            self.created_by,
        ) else {
            return Ok(None);
        };
        Ok(Some(Account {
            user_id: self.user_id,
            nombre,
            email,
            password_hash,
            role: role_of(&role)?,
            organization: self.organization,
            created_at,
            failed_logins: self.failed_logins.unwrap_or(0),
            first_failure_at: self.first_failure_at,
            locked_until: self.locked_until,
            last_login_at: self.last_login_at,
            created_by,
            published: self.published.unwrap_or(false),
        }))
    }
}

/// An `identity_refresh` row.
#[derive(Debug, Default, DeserializeRow)]
pub(super) struct RefreshRow {
    pub(super) family_id: Option<String>,
    pub(super) user_id: Option<String>,
    pub(super) user_role: Option<String>,
    pub(super) expires_at: Option<i64>,
    pub(super) used_at: Option<i64>,
}

/// A refresh token as `rotate_refresh` needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct StoredRefresh {
    pub(super) family_id: String,
    pub(super) user_id: String,
    pub(super) role: String,
    pub(super) expires_at: i64,
    pub(super) used_at: Option<i64>,
}

impl RefreshRow {
    /// The token; `None` if a cell is missing (no token is written so).
    pub(super) fn stored(self) -> Option<StoredRefresh> {
        Some(StoredRefresh {
            family_id: self.family_id?,
            user_id: self.user_id?,
            role: self.user_role?,
            expires_at: self.expires_at?,
            used_at: self.used_at,
        })
    }
}

/// An `identity_api_keys` row.
#[derive(Debug, Default, DeserializeRow)]
pub(super) struct ApiKeyRow {
    pub(super) key_id: String,
    pub(super) key_hash: Option<String>,
    pub(super) user_role: Option<String>,
    pub(super) user_id: Option<String>,
    pub(super) name: Option<String>,
    pub(super) created_by: Option<String>,
    pub(super) created_at: Option<i64>,
    pub(super) revoked_at: Option<i64>,
    pub(super) last_used_at: Option<i64>,
}

impl ApiKeyRow {
    /// The key; `None` without its creation cells (a use of an unknown id writes only `last_used_at`).
    pub(super) fn key(self) -> Result<Option<ApiKey>> {
        let (Some(key_hash), Some(role), Some(user_id), Some(name), Some(created_by), Some(created_at)) = (
            self.key_hash,
            self.user_role,
            self.user_id,
            self.name,
            self.created_by,
            self.created_at,
        ) else {
            return Ok(None);
        };
        Ok(Some(ApiKey {
            key_id: self.key_id,
            key_hash,
            role: role_of(&role)?,
            user_id,
            name,
            created_by,
            created_at,
            revoked_at: self.revoked_at,
            last_used_at: self.last_used_at,
        }))
    }
}

/// The keys of the listing rows `listed` (newest first), given each row's key as read: a row counts
/// only while its `created_at` is its key's, and each key once.
pub(super) fn listed_keys(listed: &[(i64, String)], keys: Vec<Option<ApiKey>>) -> Vec<ApiKey> {
    let mut seen = HashSet::new();
    listed
        .iter()
        .zip(keys)
        .filter_map(|((at, id), key)| key.filter(|k| k.created_at == *at && k.key_id == *id))
        .filter(|k| seen.insert(k.key_id.clone()))
        .collect()
}

/// The TTL (seconds) of a jti revoked until `expires_at` (ms), written at `wall_now` (ms); `None` when
/// the revocation has already ended.
pub(super) fn jti_ttl_secs(expires_at: i64, wall_now: i64) -> Option<i32> {
    if expires_at < wall_now {
        return None;
    }
    let left_ms = expires_at.saturating_sub(wall_now);
    let secs = (left_ms / 1000 + i64::from(left_ms % 1000 != 0))
        .saturating_add(TTL_MARGIN_SECS)
        .min(MAX_TTL_SECS);
    Some(i32::try_from(secs).unwrap_or(i32::MAX))
}

/// The write timestamp (µs) of a use at `now_ms`: the use time, capped a day ahead of `wall_micros`.
pub(super) fn use_timestamp(now_ms: i64, wall_micros: i64) -> i64 {
    now_ms.saturating_mul(1000).min(wall_micros.saturating_add(MAX_AHEAD_MICROS))
}

pub(super) fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

pub(super) fn role_of(stored: &str) -> Result<Role> {
    stored.parse().map_err(|e: String| Error::Store(format!("scylla: {e}")))
}

pub(super) fn unset_if_none(v: Option<&str>) -> MaybeUnset<&str> {
    v.map_or(MaybeUnset::Unset, MaybeUnset::Set)
}
