//! The embedded identity store: `identity_*` tables in the SQLite file (WAL).
//! The email's uniqueness is a unique index, so two concurrent registrations
//! of one email cannot both succeed; the failure count, a refresh rotation and
//! a family revocation each run in one write transaction.

use super::conn::{write_tx, SqliteConn};
use super::fresh::Fresh;
use crate::store::identity::{
    next_failures, Account, ApiKey, Created, Failures, IdentityStore, LockoutRule, NewAccount, RefreshToken, Rotation,
};
use crate::{Error, Result};
use alpes_domain::caller::Role;
use async_trait::async_trait;
use rusqlite::{params, OptionalExtension, Row};
use std::sync::Arc;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS identity_accounts (
    user_id          TEXT PRIMARY KEY,
    nombre           TEXT NOT NULL,
    email            TEXT NOT NULL,
    password_hash    TEXT NOT NULL,
    role             TEXT NOT NULL,
    organization     TEXT,
    created_at       INTEGER NOT NULL,
    failed_logins    INTEGER NOT NULL DEFAULT 0,
    first_failure_at INTEGER,
    locked_until     INTEGER,
    last_login_at    INTEGER,
    created_by       TEXT NOT NULL,
    published        INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS identity_accounts_unpublished ON identity_accounts(created_at) WHERE published = 0;
CREATE UNIQUE INDEX IF NOT EXISTS identity_accounts_email ON identity_accounts(email);
CREATE INDEX IF NOT EXISTS identity_accounts_role ON identity_accounts(role);
CREATE TABLE IF NOT EXISTS identity_refresh (
    token_hash TEXT PRIMARY KEY,
    family_id  TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    role       TEXT NOT NULL,
    issued_at  INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER,
    revoked_at INTEGER
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS identity_refresh_family ON identity_refresh(family_id);
CREATE TABLE IF NOT EXISTS identity_revoked_jti (
    jti        TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS identity_api_keys (
    key_id       TEXT PRIMARY KEY,
    key_hash     TEXT NOT NULL,
    role         TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    name         TEXT NOT NULL,
    created_by   TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    revoked_at   INTEGER,
    last_used_at INTEGER
) WITHOUT ROWID;
";

const ACCOUNT_COLUMNS: &str = "user_id, nombre, email, password_hash, role, organization, created_at, \
                               failed_logins, first_failure_at, locked_until, last_login_at, created_by, published";
const API_KEY_COLUMNS: &str = "key_id, key_hash, role, user_id, name, created_by, created_at, revoked_at, last_used_at";

/// The SQLite identity store.
#[derive(Debug, Clone)]
pub struct SqliteIdentity {
    conn: SqliteConn,
    /// Revoked access tokens by jti: the revocation's expiry, or `None` when
    /// not revoked (see [`super::fresh`]): checked on every authenticated request.
    revoked: Arc<Fresh<Option<i64>>>,
}

/// How many jtis [`SqliteIdentity`] keeps in memory (about 1 MB).
const REVOKED_CACHE: usize = 10_000;

impl SqliteIdentity {
    /// Opens (creating) the identity tables in the database at `path`.
    pub fn open(path: &std::path::Path, fsync: bool) -> Result<SqliteIdentity> {
        Ok(SqliteIdentity {
            conn: SqliteConn::open(path, fsync, SCHEMA)?,
            revoked: Arc::new(Fresh::new(REVOKED_CACHE)),
        })
    }

    /// A private in-memory store (tests).
    pub fn in_memory() -> Result<SqliteIdentity> {
        Ok(SqliteIdentity {
            conn: SqliteConn::in_memory(SCHEMA)?,
            revoked: Arc::new(Fresh::new(REVOKED_CACHE)),
        })
    }
}

fn role_of(stored: &str) -> rusqlite::Result<Role> {
    stored
        .parse()
        .map_err(|e: String| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, e.into()))
}

fn account_row(r: &Row<'_>) -> rusqlite::Result<Account> {
    Ok(Account {
        user_id: r.get(0)?,
        nombre: r.get(1)?,
        email: r.get(2)?,
        password_hash: r.get(3)?,
        role: role_of(&r.get::<_, String>(4)?)?,
        organization: r.get(5)?,
        created_at: r.get(6)?,
        failed_logins: r.get(7)?,
        first_failure_at: r.get(8)?,
        locked_until: r.get(9)?,
        last_login_at: r.get(10)?,
        created_by: r.get(11)?,
        published: r.get(12)?,
    })
}

fn api_key_row(r: &Row<'_>) -> rusqlite::Result<ApiKey> {
    Ok(ApiKey {
        key_id: r.get(0)?,
        key_hash: r.get(1)?,
        role: role_of(&r.get::<_, String>(2)?)?,
        user_id: r.get(3)?,
        name: r.get(4)?,
        created_by: r.get(5)?,
        created_at: r.get(6)?,
        revoked_at: r.get(7)?,
        last_used_at: r.get(8)?,
    })
}

#[async_trait]
impl IdentityStore for SqliteIdentity {
    async fn create_account(&self, a: NewAccount) -> alpes_domain::Result<Created> {
        self.conn
            .with(move |conn| {
                let n = conn
                    .prepare_cached(
                        "INSERT INTO identity_accounts (user_id, nombre, email, password_hash, role, organization, created_at, created_by)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (email) DO NOTHING",
                    )?
                    .execute(params![
                        a.user_id,
                        a.nombre,
                        a.email,
                        a.password_hash,
                        a.role.as_str(),
                        a.organization,
                        a.created_at,
                        a.created_by
                    ])?;
                Ok(if n == 1 { Created::Created } else { Created::EmailTaken })
            })
            .await
    }

    async fn account_by_email(&self, email: &str) -> alpes_domain::Result<Option<Account>> {
        Ok(self.conn.read_now(|conn| {
            let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM identity_accounts WHERE email = ?1");
            Ok(conn.prepare_cached(&sql)?.query_row(params![email], account_row).optional()?)
        })?)
    }

    async fn account(&self, user_id: &str) -> alpes_domain::Result<Option<Account>> {
        Ok(self.conn.read_now(|conn| {
            let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM identity_accounts WHERE user_id = ?1");
            Ok(conn.prepare_cached(&sql)?.query_row(params![user_id], account_row).optional()?)
        })?)
    }

    async fn has_admin(&self) -> alpes_domain::Result<bool> {
        Ok(self.conn.read_now(|conn| {
            Ok(conn
                .prepare_cached("SELECT 1 FROM identity_accounts WHERE role = 'admin' LIMIT 1")?
                .query_row([], |_| Ok(()))
                .optional()?
                .is_some())
        })?)
    }

    async fn mark_published(&self, user_id: &str) -> alpes_domain::Result<()> {
        let user_id = user_id.to_owned();
        self.conn
            .with(move |conn| {
                conn.prepare_cached("UPDATE identity_accounts SET published = 1 WHERE user_id = ?1")?
                    .execute(params![user_id])?;
                Ok(())
            })
            .await
    }

    async fn unpublished_accounts(&self) -> alpes_domain::Result<Vec<Account>> {
        self.conn
            .read(|conn| {
                let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM identity_accounts WHERE published = 0 ORDER BY created_at, user_id");
                let mut stmt = conn.prepare_cached(&sql)?;
                let rows = stmt.query_map([], account_row)?;
                Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
            })
            .await
    }

    async fn delete_account(&self, user_id: &str) -> alpes_domain::Result<()> {
        let user_id = user_id.to_owned();
        self.conn
            .with(move |conn| {
                conn.prepare_cached("DELETE FROM identity_accounts WHERE user_id = ?1")?
                    .execute(params![user_id])?;
                Ok(())
            })
            .await
    }

    async fn record_failure(&self, user_id: &str, now: i64, rule: LockoutRule) -> alpes_domain::Result<Failures> {
        let user_id = user_id.to_owned();
        self.conn
            .with(move |conn| {
                let tx = write_tx(conn)?;
                let stored: Option<(i64, Option<i64>, Option<i64>)> = tx
                    .prepare_cached("SELECT failed_logins, first_failure_at, locked_until FROM identity_accounts WHERE user_id = ?1")?
                    .query_row(params![user_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .optional()?;
                let Some(stored) = stored else {
                    return Err(Error::Store("no such account".into()));
                };
                let (count, first, locked_until) = next_failures(stored, now, rule);
                tx.prepare_cached(
                    "UPDATE identity_accounts SET failed_logins = ?2, first_failure_at = ?3, locked_until = ?4 WHERE user_id = ?1",
                )?
                .execute(params![user_id, count, first, locked_until])?;
                tx.commit()?;
                Ok(Failures { count, locked_until })
            })
            .await
    }

    async fn record_success(&self, user_id: &str, now: i64) -> alpes_domain::Result<()> {
        let user_id = user_id.to_owned();
        self.conn
            .with(move |conn| {
                conn.prepare_cached(
                    "UPDATE identity_accounts SET failed_logins = 0, first_failure_at = NULL, locked_until = NULL, last_login_at = ?2
                     WHERE user_id = ?1",
                )?
                .execute(params![user_id, now])?;
                Ok(())
            })
            .await
    }

    async fn insert_refresh(&self, t: RefreshToken) -> alpes_domain::Result<()> {
        self.conn
            .with(move |conn| {
                insert_refresh(conn, &t)?;
                Ok(())
            })
            .await
    }

    async fn rotate_refresh(&self, token_hash: &str, next_hash: &str, next_expires_at: i64, now: i64) -> alpes_domain::Result<Rotation> {
        let (token_hash, next_hash) = (token_hash.to_owned(), next_hash.to_owned());
        self.conn
            .with(move |conn| {
                let tx = write_tx(conn)?;
                let row: Option<(String, String, String, i64, Option<i64>, Option<i64>)> = tx
                    .prepare_cached(
                        "SELECT family_id, user_id, role, expires_at, used_at, revoked_at FROM identity_refresh WHERE token_hash = ?1",
                    )?
                    .query_row(params![token_hash], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
                    })
                    .optional()?;
                let Some((family_id, user_id, role, expires_at, used_at, revoked_at)) = row else {
                    return Ok(Rotation::Invalid);
                };
                if revoked_at.is_some() {
                    return Ok(Rotation::Invalid);
                }
                if used_at.is_some() {
                    revoke_family(&tx, &family_id, now)?;
                    tx.commit()?;
                    return Ok(Rotation::Reused { user_id });
                }
                if expires_at <= now {
                    return Ok(Rotation::Invalid);
                }
                let role = role_of(&role)?;
                tx.prepare_cached("UPDATE identity_refresh SET used_at = ?2 WHERE token_hash = ?1")?
                    .execute(params![token_hash, now])?;
                insert_refresh(
                    &tx,
                    &RefreshToken {
                        token_hash: next_hash,
                        family_id: family_id.clone(),
                        user_id: user_id.clone(),
                        role,
                        issued_at: now,
                        expires_at: next_expires_at,
                    },
                )?;
                tx.commit()?;
                Ok(Rotation::Rotated { user_id, role, family_id })
            })
            .await
    }

    async fn revoke_refresh_family(&self, token_hash: &str, now: i64) -> alpes_domain::Result<bool> {
        let token_hash = token_hash.to_owned();
        self.conn
            .with(move |conn| {
                let tx = write_tx(conn)?;
                let family: Option<String> = tx
                    .prepare_cached("SELECT family_id FROM identity_refresh WHERE token_hash = ?1")?
                    .query_row(params![token_hash], |r| r.get(0))
                    .optional()?;
                let Some(family) = family else { return Ok(false) };
                revoke_family(&tx, &family, now)?;
                tx.commit()?;
                Ok(true)
            })
            .await
    }

    async fn revoke_jti(&self, jti: &str, expires_at: i64) -> alpes_domain::Result<()> {
        let key = jti.to_owned();
        self.conn
            .with(move |conn| {
                let tx = write_tx(conn)?;
                tx.prepare_cached("INSERT OR REPLACE INTO identity_revoked_jti (jti, expires_at) VALUES (?1, ?2)")?
                    .execute(params![key, expires_at])?;
                // Expired revocations matter no more: the token they name is refused as expired.
                tx.prepare_cached("DELETE FROM identity_revoked_jti WHERE expires_at < CAST(strftime('%s', 'now') AS INTEGER) * 1000")?
                    .execute([])?;
                tx.commit()?;
                Ok(())
            })
            .await?;
        self.revoked.wrote(jti, Some(expires_at));
        Ok(())
    }

    async fn jti_revoked(&self, jti: &str, now: i64) -> alpes_domain::Result<bool> {
        let revoked = self.revoked.get_or_read(jti, || {
            self.conn.read_now(|conn| {
                Ok(conn
                    .prepare_cached("SELECT expires_at FROM identity_revoked_jti WHERE jti = ?1")?
                    .query_row(params![jti], |r| r.get::<_, i64>(0))
                    .optional()?)
            })
        })?;
        Ok(revoked.is_some_and(|until| until >= now))
    }

    async fn insert_api_key(&self, k: ApiKey) -> alpes_domain::Result<()> {
        self.conn
            .with(move |conn| {
                let sql = format!("INSERT INTO identity_api_keys ({API_KEY_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)");
                conn.prepare_cached(&sql)?.execute(params![
                    k.key_id,
                    k.key_hash,
                    k.role.as_str(),
                    k.user_id,
                    k.name,
                    k.created_by,
                    k.created_at,
                    k.revoked_at,
                    k.last_used_at
                ])?;
                Ok(())
            })
            .await
    }

    async fn api_key(&self, key_id: &str) -> alpes_domain::Result<Option<ApiKey>> {
        Ok(self.conn.read_now(|conn| {
            let sql = format!("SELECT {API_KEY_COLUMNS} FROM identity_api_keys WHERE key_id = ?1");
            Ok(conn.prepare_cached(&sql)?.query_row(params![key_id], api_key_row).optional()?)
        })?)
    }

    async fn api_keys(&self) -> alpes_domain::Result<Vec<ApiKey>> {
        self.conn
            .read(|conn| {
                let sql = format!("SELECT {API_KEY_COLUMNS} FROM identity_api_keys ORDER BY created_at DESC, key_id DESC");
                let mut stmt = conn.prepare_cached(&sql)?;
                let rows = stmt.query_map([], api_key_row)?;
                Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
            })
            .await
    }

    async fn revoke_api_key(&self, key_id: &str, now: i64) -> alpes_domain::Result<bool> {
        let key_id = key_id.to_owned();
        self.conn
            .with(move |conn| {
                Ok(conn
                    .prepare_cached("UPDATE identity_api_keys SET revoked_at = ?2 WHERE key_id = ?1 AND revoked_at IS NULL")?
                    .execute(params![key_id, now])?
                    == 1)
            })
            .await
    }

    async fn touch_api_key(&self, key_id: &str, now: i64) -> alpes_domain::Result<()> {
        let key_id = key_id.to_owned();
        self.conn
            .with(move |conn| {
                conn.prepare_cached("UPDATE identity_api_keys SET last_used_at = MAX(COALESCE(last_used_at, 0), ?2) WHERE key_id = ?1")?
                    .execute(params![key_id, now])?;
                Ok(())
            })
            .await
    }
}

fn insert_refresh(conn: &rusqlite::Connection, t: &RefreshToken) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO identity_refresh (token_hash, family_id, user_id, role, issued_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        t.token_hash,
        t.family_id,
        t.user_id,
        t.role.as_str(),
        t.issued_at,
        t.expires_at
    ])?;
    Ok(())
}

fn revoke_family(conn: &rusqlite::Connection, family_id: &str, now: i64) -> Result<()> {
    conn.prepare_cached("UPDATE identity_refresh SET revoked_at = ?2 WHERE family_id = ?1 AND revoked_at IS NULL")?
        .execute(params![family_id, now])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_identity_conformance_suite_passes_on_sqlite() {
        crate::store::conformance::identity(&SqliteIdentity::in_memory().expect("store")).await;
    }

    #[tokio::test]
    async fn a_revocation_is_seen_at_once_here_and_within_the_max_age_by_another_process() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("alpes.db");
        let here = SqliteIdentity::open(&path, false).expect("open");
        // Another process with the same data dir: its own connections, its own memory.
        let there = SqliteIdentity::open(&path, false).expect("open");
        let far = i64::MAX / 2;
        assert!(!here.jti_revoked("j1", 1).await.expect("lookup"));
        assert!(
            !there.jti_revoked("j1", 1).await.expect("lookup"),
            "now remembered there as not revoked"
        );
        here.revoke_jti("j1", far).await.expect("revoke");
        assert!(
            here.jti_revoked("j1", 1).await.expect("lookup"),
            "the revoking process refuses it at once"
        );
        tokio::time::sleep(super::super::fresh::MAX_AGE + std::time::Duration::from_millis(50)).await;
        assert!(
            there.jti_revoked("j1", 1).await.expect("lookup"),
            "the other process refuses it within MAX_AGE"
        );
        assert!(
            !there.jti_revoked("j1", far + 1).await.expect("lookup"),
            "a revocation ends with the token"
        );
    }
}
