//! Identity on the command side: registration, login with lockout, refresh
//! rotation, logout. The routes (`routes::usuarios`, `routes::auth_*`) call
//! [`Identity`]; it owns the password hasher, the token lifetimes and the
//! lockout rule, and the identity store.
//!
//! - Access tokens are short-lived JWTs (15 minutes by default) with a `jti`.
//! - A refresh token is 32 random bytes (base64url), shown once, stored only
//!   as its SHA-256. Each refresh uses it and hands out its successor in the
//!   same family; presenting a used one again revokes the whole family (the
//!   token was copied: both holders are logged out).
//! - Emails are compared normalized (trimmed, lower-case) and are personal
//!   data: they never go into a log line or an event.

use alpes_domain::identity::acceptable_name;
use alpes_platform::auth::{secret_hash, Claims, Jwt, Role};
use alpes_platform::http::ApiError;
use alpes_platform::kafka::Producer;
use alpes_platform::password::{check_policy, PasswordArgs, Passwords};
use alpes_platform::store::{Account, Created, IdentityStore, LockoutRule, NewAccount, RefreshToken};
use alpes_schemas::{deterministic_event_id, now_millis, Event, UsuarioRegistrado};
use base64::Engine;
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;
use utoipa::ToSchema;

/// Token lifetimes, the lockout rule and the password hasher's parameters.
#[derive(Debug, Clone, clap::Args)]
pub struct IdentityArgs {
    /// Lifetime of an access token (a JWT), seconds.
    #[arg(long, env = "ALPES_ACCESS_TTL_SECS", default_value_t = 900)]
    pub access_ttl_secs: u64,
    /// Lifetime of a refresh token, seconds.
    #[arg(long, env = "ALPES_REFRESH_TTL_SECS", default_value_t = 30 * 24 * 3600)]
    pub refresh_ttl_secs: u64,
    /// Failed logins that lock an account.
    #[arg(long, env = "ALPES_LOCKOUT_FAILURES", default_value_t = 5, value_parser = clap::value_parser!(i64).range(1..))]
    pub lockout_failures: i64,
    /// The window those failures are counted in, seconds from the first.
    #[arg(long, env = "ALPES_LOCKOUT_WINDOW_SECS", default_value_t = 900, value_parser = clap::value_parser!(i64).range(1..))]
    pub lockout_window_secs: i64,
    /// How long a locked account stays locked, seconds.
    #[arg(long, env = "ALPES_LOCKOUT_SECS", default_value_t = 900, value_parser = clap::value_parser!(i64).range(1..))]
    pub lockout_secs: i64,
    /// The password hasher (argon2id).
    #[command(flatten)]
    pub passwords: PasswordArgs,
}

impl Default for IdentityArgs {
    fn default() -> Self {
        IdentityArgs {
            access_ttl_secs: 900,
            refresh_ttl_secs: 30 * 24 * 3600,
            lockout_failures: 5,
            lockout_window_secs: 900,
            lockout_secs: 900,
            passwords: PasswordArgs::default(),
        }
    }
}

/// What the identity routes share.
#[derive(Debug, Clone)]
pub struct Identity {
    /// Accounts, failures, refresh tokens, revocations, API keys.
    pub store: Arc<dyn IdentityStore>,
    /// Hashes and verifies passwords (on the blocking pool).
    pub passwords: Passwords,
    /// Token lifetimes and the lockout rule.
    pub args: IdentityArgs,
    /// Bounds the argon2id runs at once (each takes its memory cost, 19 MiB by
    /// default): two per core. A flood of logins queues here instead of
    /// exhausting memory.
    hashing: Arc<tokio::sync::Semaphore>,
}

/// An account to create, as given (not yet validated).
pub struct NewUser {
    /// The display name.
    pub nombre: String,
    /// The email, as typed.
    pub email: String,
    /// The password, in clear (hashed before it is stored).
    pub password: String,
    /// The role.
    pub role: Role,
    /// The organization, if any.
    pub organization: Option<String>,
    /// The admin creating it; `None` for a self-registration.
    pub created_by: Option<String>,
}

impl std::fmt::Debug for NewUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewUser").field("role", &self.role).finish_non_exhaustive()
    }
}

/// 422 `bad_nombre`: the rule is [`acceptable_name`].
pub fn bad_nombre() -> ApiError {
    ApiError::unprocessable("bad_nombre", "nombre must be 1 to 200 characters, none of them a control character")
}

/// 422 unless the name, email, organization and password are acceptable.
pub fn validate(u: &NewUser) -> Result<(), ApiError> {
    if !acceptable_name(&u.nombre) {
        return Err(bad_nombre());
    }
    if !plausible_email(&normalize_email(&u.email)) {
        return Err(ApiError::unprocessable("bad_email", "email is not an email address"));
    }
    if u.organization
        .as_deref()
        .is_some_and(|o| !o.trim().is_empty() && !acceptable_name(o))
    {
        return Err(ApiError::unprocessable(
            "bad_organizacion",
            "organizacion must be at most 200 characters, none of them a control character",
        ));
    }
    check_policy(&u.password).map_err(|e| ApiError::unprocessable("weak_password", e.to_string()))
}

/// The `UsuarioRegistrado` of `account`, created under `http_request_id`;
/// its id is derived from the user id, so a re-send is a duplicate.
pub fn registered_event(account: &Account, http_request_id: Option<String>) -> UsuarioRegistrado {
    UsuarioRegistrado {
        event_id: deterministic_event_id(UsuarioRegistrado::NAME, &[&account.user_id]),
        occurred_at: account.created_at,
        actor: account.created_by.clone(),
        user_id: account.user_id.clone(),
        role: account.role.as_str().into(),
        organization: account.organization.clone(),
        http_request_id,
    }
}

/// Produces the account's `UsuarioRegistrado` and marks it published.
async fn publish(
    store: &dyn IdentityStore,
    producer: &Producer,
    account: &Account,
    http_request_id: Option<String>,
) -> alpes_platform::Result<()> {
    let event = registered_event(account, http_request_id);
    producer.send(&event.user_id, &event).await?;
    Ok(store.mark_published(&account.user_id).await?)
}

/// Announces every account whose `UsuarioRegistrado` was never acknowledged
/// (a crash between storing and producing, or `alpes admin create`); returns how many.
pub async fn republish_accounts(store: &dyn IdentityStore, producer: &Producer) -> alpes_platform::Result<usize> {
    let pending = store.unpublished_accounts().await?;
    for account in &pending {
        publish(store, producer, account, None).await?;
    }
    Ok(pending.len())
}

/// A token pair, as login and refresh answer it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Tokens {
    /// The access token, a JWT for `Authorization: Bearer`.
    pub access_token: String,
    /// Always `Bearer`.
    #[schema(schema_with = bearer)]
    pub token_type: &'static str,
    /// Seconds the access token is valid.
    pub expires_in: u64,
    /// The refresh token (shown once).
    pub refresh_token: String,
    /// Seconds the refresh token is valid.
    pub refresh_expires_in: u64,
}

fn bearer() -> utoipa::openapi::schema::Object {
    alpes_platform::openapi::string_enum(&["Bearer"])
}

impl Identity {
    /// Identity over `store` with `args`.
    pub fn new(store: Arc<dyn IdentityStore>, args: IdentityArgs) -> Result<Identity, alpes_platform::password::PasswordError> {
        let permits = std::thread::available_parallelism().map_or(2, |n| n.get() * 2);
        Ok(Identity {
            passwords: Passwords::new(&args.passwords)?,
            store,
            args,
            hashing: Arc::new(tokio::sync::Semaphore::new(permits)),
        })
    }

    /// Validates `user`, hashes the password and stores the account, not yet
    /// announced (409 `email_taken` if the email is in use).
    pub async fn create(&self, user: NewUser) -> Result<Account, ApiError> {
        self.create_with_id(uuid::Uuid::new_v4().to_string(), user).await
    }

    /// [`Identity::create`] with the user id chosen by the caller.
    async fn create_with_id(&self, user_id: String, user: NewUser) -> Result<Account, ApiError> {
        validate(&user)?;
        let password_hash = self.hash(user.password).await?;
        let account = NewAccount {
            user_id: user_id.clone(),
            nombre: user.nombre.trim().to_owned(),
            email: normalize_email(&user.email),
            password_hash,
            role: user.role,
            organization: user.organization.map(|o| o.trim().to_owned()).filter(|o| !o.is_empty()),
            created_at: now_millis(),
            created_by: user.created_by.unwrap_or_else(|| user_id.clone()),
        };
        if self.store.create_account(account).await? == Created::EmailTaken {
            return Err(ApiError::conflict("email_taken", "an account with this email exists"));
        }
        self.store
            .account(&user_id)
            .await?
            .ok_or_else(|| ApiError::internal(&"the account just created is gone"))
    }

    /// The account a token for `user_id` names (`alpes token`, the tests'
    /// harnesses): the stored one, which must have `role` when one is given
    /// (`other_role` otherwise); or, when no account has that id and
    /// `create` is set, a new account of `role` with that id that cannot log
    /// in: its password is random and never shown, its email
    /// `<id>@accounts.invalid` (a reserved domain). It is announced like an
    /// account created offline, when `alpes up` next starts. Without
    /// `create`, no account is `no_account`.
    pub async fn token_subject(&self, user_id: &str, role: Option<Role>, create: bool) -> Result<Account, ApiError> {
        match (self.store.account(user_id).await?, role) {
            (Some(account), Some(role)) if account.role != role => Err(ApiError::conflict(
                "other_role",
                format!(
                    "the account {user_id} has the role {}, not {}",
                    account.role.as_str(),
                    role.as_str()
                ),
            )),
            (Some(account), _) => Ok(account),
            (None, Some(role)) if create => {
                let user = NewUser {
                    nombre: user_id.to_owned(),
                    email: format!("{user_id}@accounts.invalid"),
                    password: random_token()?,
                    role,
                    organization: None,
                    created_by: Some("alpes-token".into()),
                };
                self.create_with_id(user_id.to_owned(), user).await
            }
            (None, None) if create => Err(ApiError::bad_request("no_role", "creating an account needs its role")),
            (None, _) => Err(ApiError::not_found(format!("no account has the id {user_id}")).with_code("no_account")),
        }
    }

    /// [`Identity::create`], then announces the account (`UsuarioRegistrado`,
    /// naming the request that created it).
    /// If the broker does not acknowledge, the account is removed again and the
    /// error is 503; a crash in between leaves it unpublished, for
    /// [`republish_accounts`] at the next start.
    pub async fn register(&self, producer: &Producer, user: NewUser, http_request_id: Option<String>) -> Result<Account, ApiError> {
        let account = self.create(user).await?;
        if let Err(e) = publish(self.store.as_ref(), producer, &account, http_request_id).await {
            self.store.delete_account(&account.user_id).await?;
            return Err(e.into());
        }
        tracing::info!(user_id = %account.user_id, role = account.role.as_str(), "account created");
        Ok(account)
    }

    /// The lockout rule, in ms.
    pub fn lockout(&self) -> LockoutRule {
        LockoutRule {
            max_failures: self.args.lockout_failures,
            window_ms: self.args.lockout_window_secs.saturating_mul(1000),
            lock_ms: self.args.lockout_secs.saturating_mul(1000),
        }
    }

    /// Hashes `password` on the blocking pool.
    pub async fn hash(&self, password: String) -> Result<String, ApiError> {
        let _permit = self.hashing.acquire().await.map_err(|e| ApiError::internal(&e))?;
        let passwords = self.passwords.clone();
        tokio::task::spawn_blocking(move || passwords.hash(&password))
            .await
            .map_err(|e| ApiError::internal(&e))?
            .map_err(|e| ApiError::internal(&e))
    }

    /// Verifies `password` against `phc` on the blocking pool; against a dummy hash when
    /// there is no account, so an unknown email costs what a wrong password costs.
    pub async fn verify(&self, password: String, phc: Option<String>) -> Result<bool, ApiError> {
        let _permit = self.hashing.acquire().await.map_err(|e| ApiError::internal(&e))?;
        let passwords = self.passwords.clone();
        tokio::task::spawn_blocking(move || passwords.verify_or_dummy(&password, phc.as_deref()))
            .await
            .map_err(|e| ApiError::internal(&e))
    }

    /// A new access token and the refresh token `refresh` (already stored), as an answer.
    pub fn answer(&self, jwt: &Jwt, user_id: &str, role: Role, refresh: String) -> Result<(Tokens, Claims), ApiError> {
        let (access_token, claims) = jwt.issue_claims(user_id, role, Duration::from_secs(self.args.access_ttl_secs))?;
        Ok((
            Tokens {
                access_token,
                token_type: "Bearer",
                expires_in: self.args.access_ttl_secs,
                refresh_token: refresh,
                refresh_expires_in: self.args.refresh_ttl_secs,
            },
            claims,
        ))
    }

    /// A fresh refresh token for `user_id` in `family`, at `now`: the token and its stored form.
    pub fn new_refresh(&self, family_id: &str, user_id: &str, role: Role, now: i64) -> Result<(String, RefreshToken), ApiError> {
        let token = random_token()?;
        let stored = RefreshToken {
            token_hash: secret_hash(&token),
            family_id: family_id.to_owned(),
            user_id: user_id.to_owned(),
            role,
            issued_at: now,
            expires_at: self.refresh_expiry(now),
        };
        Ok((token, stored))
    }

    /// When a refresh token issued at `now` expires (ms).
    pub fn refresh_expiry(&self, now: i64) -> i64 {
        let ttl_ms = i64::try_from(self.args.refresh_ttl_secs)
            .unwrap_or(i64::MAX / 2)
            .saturating_mul(1000);
        now.saturating_add(ttl_ms)
    }
}

/// 32 random bytes from the OS, base64url without padding.
pub fn random_token() -> Result<String, ApiError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| ApiError::internal(&e))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// An email as compared and stored: trimmed and lower-case.
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// Whether `email` (normalized) looks like an address: one `@`, a non-empty
/// local part, a dotted domain, no spaces, at most 254 bytes.
pub fn plausible_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    email.len() <= 254
        && !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(nombre: &str, email: &str, password: &str) -> NewUser {
        NewUser {
            nombre: nombre.into(),
            email: email.into(),
            password: password.into(),
            role: Role::Proveedor,
            organization: None,
            created_by: None,
        }
    }

    #[test]
    fn an_account_needs_a_name_an_email_and_a_strong_password() {
        let good = "correct horse battery";
        assert!(validate(&user("Ana", "ana@h.org", good)).is_ok());
        let code = |u: NewUser| validate(&u).map_err(|e| (e.status.as_u16(), e.code));
        assert_eq!(code(user(" ", "ana@h.org", good)), Err((422, "bad_nombre")));
        assert_eq!(code(user("An\0a", "ana@h.org", good)), Err((422, "bad_nombre")));
        assert_eq!(code(user("Ana", "ana", good)), Err((422, "bad_email")));
        assert_eq!(code(user("Ana", "ana@h.org", "short")), Err((422, "weak_password")));
        let shown = format!("{:?}", user("Ana", "ana@h.org", good));
        assert!(!shown.contains("horse") && !shown.contains("ana@"), "{shown}");
    }

    #[test]
    fn emails_are_normalized_and_checked_for_shape() {
        assert_eq!(normalize_email("  Ana.Perez@Hospital.ORG "), "ana.perez@hospital.org");
        assert!(plausible_email("ana@hospital.org"));
        for bad in [
            "",
            "ana",
            "@hospital.org",
            "ana@hospital",
            "ana@@h.org",
            "a na@h.org",
            "ana@.org",
            "ana@h.org.",
        ] {
            assert!(!plausible_email(bad), "{bad:?}");
        }
    }

    #[test]
    fn a_random_token_is_256_bits_and_stored_only_as_its_hash() {
        let a = random_token().expect("token");
        let b = random_token().expect("token");
        assert_ne!(a, b);
        assert_eq!(a.len(), 43, "32 bytes, base64url without padding");
        let h = secret_hash(&a);
        assert_eq!(h.len(), 64);
        assert!(!h.contains(&a));
    }
}
