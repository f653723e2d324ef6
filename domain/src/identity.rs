//! The identity port: accounts with their credentials, the login-failure
//! count that locks an account, refresh-token families, revoked access
//! tokens and API keys. The command side (ingest) owns it; the query side
//! sees users only through `UsuarioRegistrado` events.
//!
//! Secrets never reach this port in clear: a password arrives as its
//! argon2id PHC string, a refresh token and an API key as the SHA-256 of
//! their random bytes (they carry 256 bits of entropy, so a fast hash is
//! enough; a slow one would only slow every request that presents one).

use crate::caller::Role;
use crate::Result;
use async_trait::async_trait;

/// A new account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAccount {
    /// The user id (a UUID).
    pub user_id: String,
    /// The display name.
    pub nombre: String,
    /// The email, normalized (trimmed, lower-case): unique.
    pub email: String,
    /// The argon2id PHC string of the password.
    pub password_hash: String,
    /// The role.
    pub role: Role,
    /// The organization, if given.
    pub organization: Option<String>,
    /// When it was created (ms since the epoch).
    pub created_at: i64,
    /// Who created it: its own id (self-registration) or an admin's.
    pub created_by: String,
}

/// An account as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct Account {
    /// The user id.
    pub user_id: String,
    /// The display name.
    pub nombre: String,
    /// The normalized email.
    pub email: String,
    /// The argon2id PHC string of the password.
    pub password_hash: String,
    /// The role.
    pub role: Role,
    /// The organization, if given.
    pub organization: Option<String>,
    /// When it was created (ms).
    pub created_at: i64,
    /// Failed logins since the last success (or since the window restarted).
    pub failed_logins: i64,
    /// When the first of those failures happened (ms), if any.
    pub first_failure_at: Option<i64>,
    /// Locked until this time (ms), if locked.
    pub locked_until: Option<i64>,
    /// The last successful login (ms), if any.
    pub last_login_at: Option<i64>,
    /// Who created it.
    pub created_by: String,
    /// Whether its `UsuarioRegistrado` is on the log.
    pub published: bool,
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("user_id", &self.user_id)
            .field("role", &self.role)
            .field("failed_logins", &self.failed_logins)
            .field("locked_until", &self.locked_until)
            .finish_non_exhaustive()
    }
}

/// What [`IdentityStore::create_account`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    /// The account exists now.
    Created,
    /// Another account has this email; nothing was written.
    EmailTaken,
}

/// The lockout rule: `max_failures` failed logins within `window_ms` lock the
/// account for `lock_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutRule {
    /// Failures that lock.
    pub max_failures: i64,
    /// The window they are counted in (ms), from the first of them.
    pub window_ms: i64,
    /// How long the lock lasts (ms).
    pub lock_ms: i64,
}

/// The failure count after a failed login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failures {
    /// Failures in the current window, this one included.
    pub count: i64,
    /// Set when this failure locked the account (or it already was).
    pub locked_until: Option<i64>,
}

/// One refresh token of a family (a login and every rotation after it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshToken {
    /// SHA-256 of the token, hex.
    pub token_hash: String,
    /// The family: the id of the login it descends from.
    pub family_id: String,
    /// The user.
    pub user_id: String,
    /// The user's role when issued.
    pub role: Role,
    /// When it was issued (ms).
    pub issued_at: i64,
    /// When it expires (ms).
    pub expires_at: i64,
}

/// What presenting a refresh token did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// It was current: it is now used, and its successor is stored.
    Rotated {
        /// The user.
        user_id: String,
        /// The role.
        role: Role,
        /// The family.
        family_id: String,
    },
    /// It was already used (a replay, maybe a theft): its whole family is revoked.
    Reused {
        /// The user whose family was revoked.
        user_id: String,
    },
    /// Unknown, expired or revoked.
    Invalid,
}

/// An API key, as stored (its secret only as a hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// The public id, also the key's prefix.
    pub key_id: String,
    /// SHA-256 of the whole key, hex.
    pub key_hash: String,
    /// What it may do.
    pub role: Role,
    /// The provider it acts for (its principal's user id).
    pub user_id: String,
    /// A label for humans.
    pub name: String,
    /// Who created it.
    pub created_by: String,
    /// When (ms).
    pub created_at: i64,
    /// When it was revoked (ms), if it was.
    pub revoked_at: Option<i64>,
    /// When it was last used (ms), if ever.
    pub last_used_at: Option<i64>,
}

/// The failure count after one more failure at `now`, under `rule`, from the
/// stored `(failed_logins, first_failure_at, locked_until)`: the new
/// `(failed_logins, first_failure_at, locked_until)`. Every adapter applies it.
pub fn next_failures(stored: (i64, Option<i64>, Option<i64>), now: i64, rule: LockoutRule) -> (i64, i64, Option<i64>) {
    let (count, first, locked_until) = stored;
    if let Some(until) = locked_until.filter(|u| *u > now) {
        // Still locked: the attempt counts, the lock does not move.
        return (count + 1, first.unwrap_or(now), Some(until));
    }
    let (count, first) = match first {
        Some(f) if now - f <= rule.window_ms && locked_until.is_none() => (count + 1, f),
        _ => (1, now),
    };
    let locked = (count >= rule.max_failures).then_some(now + rule.lock_ms);
    (count, first, locked)
}

/// The identity store.
#[async_trait]
pub trait IdentityStore: Send + Sync + std::fmt::Debug {
    /// Creates the account unless its email is taken (atomically).
    async fn create_account(&self, account: NewAccount) -> Result<Created>;
    /// The account with this normalized email.
    async fn account_by_email(&self, email: &str) -> Result<Option<Account>>;
    /// The account with this id.
    async fn account(&self, user_id: &str) -> Result<Option<Account>>;
    /// Whether any admin account exists.
    async fn has_admin(&self) -> Result<bool>;
    /// Marks the account's `UsuarioRegistrado` as acknowledged by the broker.
    async fn mark_published(&self, user_id: &str) -> Result<()>;
    /// Accounts whose `UsuarioRegistrado` was never acknowledged, oldest first.
    async fn unpublished_accounts(&self) -> Result<Vec<Account>>;
    /// Removes an account whose creation could not be announced (nothing else refers to it yet).
    async fn delete_account(&self, user_id: &str) -> Result<()>;
    /// Counts a failed login at `now` under `rule`; locks the account when it reaches the limit.
    async fn record_failure(&self, user_id: &str, now: i64, rule: LockoutRule) -> Result<Failures>;
    /// A successful login at `now`: the failure count and any lock are cleared.
    async fn record_success(&self, user_id: &str, now: i64) -> Result<()>;
    /// Stores a new refresh token (the first of a family, at login).
    async fn insert_refresh(&self, token: RefreshToken) -> Result<()>;
    /// Uses the token `token_hash` at `now` and stores its successor `next_hash`
    /// (same family, user and role, issued `now`, expiring `next_expires_at`),
    /// atomically; a token used before revokes its family.
    async fn rotate_refresh(&self, token_hash: &str, next_hash: &str, next_expires_at: i64, now: i64) -> Result<Rotation>;
    /// Revokes the family of the token `token_hash`; false if the token is unknown.
    async fn revoke_refresh_family(&self, token_hash: &str, now: i64) -> Result<bool>;
    /// Revokes an access token's `jti` until `expires_at` (ms).
    async fn revoke_jti(&self, jti: &str, expires_at: i64) -> Result<()>;
    /// Whether the `jti` was revoked (and has not expired yet).
    async fn jti_revoked(&self, jti: &str, now: i64) -> Result<bool>;
    /// Stores a new API key.
    async fn insert_api_key(&self, key: ApiKey) -> Result<()>;
    /// The API key with this id (revoked ones too).
    async fn api_key(&self, key_id: &str) -> Result<Option<ApiKey>>;
    /// Every API key (revoked ones too), newest first.
    async fn api_keys(&self) -> Result<Vec<ApiKey>>;
    /// Revokes an API key at `now`; false if unknown or already revoked.
    async fn revoke_api_key(&self, key_id: &str, now: i64) -> Result<bool>;
    /// Records a use of the key at `now`.
    async fn touch_api_key(&self, key_id: &str, now: i64) -> Result<()>;
}

/// The longest name (of an account, an organization or an API key), in characters.
pub const MAX_NAME_CHARS: usize = 200;

/// Whether `name` can name an account, an organization or an API key: 1 to
/// [`MAX_NAME_CHARS`] characters once trimmed, and none of them a control
/// character (NUL, escapes, line breaks), which would corrupt the logs, CSV
/// exports and terminals that show it.
pub fn acceptable_name(name: &str) -> bool {
    let name = name.trim();
    !name.is_empty() && name.chars().count() <= MAX_NAME_CHARS && !name.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_one_to_two_hundred_characters_with_no_control_character() {
        assert!(acceptable_name("Ana Ñúñez"));
        assert!(acceptable_name(&"a".repeat(200)));
        for bad in ["", "   ", &"a".repeat(201), "Ana\0", "Ana\u{1b}[31m", "line\nbreak"] {
            assert!(!acceptable_name(bad), "{bad:?}");
        }
    }

    const RULE: LockoutRule = LockoutRule {
        max_failures: 3,
        window_ms: 1000,
        lock_ms: 5000,
    };

    #[test]
    fn failures_lock_at_the_limit_within_the_window_and_restart_after_it() {
        assert_eq!(next_failures((0, None, None), 100, RULE), (1, 100, None));
        assert_eq!(next_failures((1, Some(100), None), 200, RULE), (2, 100, None));
        assert_eq!(next_failures((2, Some(100), None), 300, RULE), (3, 100, Some(5300)));
        // Outside the window the count restarts.
        assert_eq!(next_failures((2, Some(100), None), 1200, RULE), (1, 1200, None));
        // While locked, attempts count but the lock does not move.
        assert_eq!(next_failures((3, Some(100), Some(5300)), 400, RULE), (4, 100, Some(5300)));
        // After the lock ran out, a failure starts a new window.
        assert_eq!(next_failures((4, Some(100), Some(5300)), 6000, RULE), (1, 6000, None));
    }
}
