//! Password hashing for the identity flows: argon2id with documented,
//! configurable parameters ([`PasswordArgs`]), PHC strings at rest
//! ([`Passwords`]), and the password policy ([`check_policy`]).
//!
//! A password exists in clear only in the request that carries it: this module
//! stores, logs and returns nothing but PHC strings, and no error it returns
//! (nor any `Debug` output) contains a password or a hash.
//!
//! **Timing.** [`Passwords::verify_or_dummy`] verifies an unknown user's
//! password against a dummy hash made with the same parameters, so an unknown
//! email and a wrong password cost the same argon2 work and get the same
//! answer (`false`).
//!
//! **Blocking.** One hash or verification at the default parameters costs tens
//! of milliseconds of CPU and 19 MiB of memory. The API is synchronous on
//! purpose: async callers must run [`Passwords::hash`], [`Passwords::verify`]
//! and [`Passwords::verify_or_dummy`] on `tokio::task::spawn_blocking` (never
//! on a runtime worker), and should bound how many run at once (a semaphore)
//! so that a burst of logins cannot take `concurrency × memory` of RAM.

use crate::http::ApiError;
use argon2::password_hash::phc::PasswordHash;
use argon2::{Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version, ARGON2ID_IDENT};
use std::fmt;
use std::sync::Arc;

/// Default argon2id memory cost, in KiB: 19 MiB (OWASP's recommendation).
pub const DEFAULT_MEMORY_KIB: u32 = 19_456;
/// Default argon2id iteration count (time cost): 2 (OWASP's recommendation).
pub const DEFAULT_ITERATIONS: u32 = 2;
/// Default argon2id degree of parallelism (lanes): 1 (OWASP's recommendation).
pub const DEFAULT_PARALLELISM: u32 = 1;

/// The shortest password the policy accepts, in characters (Unicode scalar values, not bytes).
pub const MIN_PASSWORD_CHARS: usize = 12;
/// The longest password accepted, in UTF-8 bytes: a guard against hashing
/// megabyte "passwords", and well above the 64 characters NIST SP 800-63B asks
/// verifiers to allow.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Length of the argon2 output (the tag) stored in the PHC string, in bytes.
const OUTPUT_LEN: usize = 32;
/// Length of the random salt, in bytes (the PHC string format's recommendation).
const SALT_LEN: usize = 16;
/// The password hashed into the dummy hash. Its value does not matter:
/// [`Passwords::verify_or_dummy`] answers `false` on the dummy path whatever
/// the outcome; only the work done has to match a real verification.
const DUMMY_PASSWORD: &str = "alpes-dummy-password-for-unknown-users";

/// The argon2id cost parameters, as `alpes` flags and environment variables.
///
/// The defaults are OWASP's current minimum recommendation for argon2id,
/// m = 19 MiB (19,456 KiB), t = 2 iterations, p = 1 lane (OWASP Password
/// Storage Cheat Sheet,
/// <https://cheatsheetseries.owasp.org/cheatsheets/Password_Storage_Cheat_Sheet.html>).
/// They are also the `argon2` crate's defaults. OWASP lists equivalent
/// trade-offs of memory for iterations (m = 12,288 KiB with t = 3, m = 9,216
/// KiB with t = 4, m = 7,168 KiB with t = 5); raise the memory first where the
/// hardware allows. p = 1 keeps each login on one core, which maximises login
/// throughput under load. Changing them applies to new hashes only; stored
/// hashes keep their own parameters and verify as before, and
/// [`Passwords::needs_rehash`] tells when to re-hash one after a successful login.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::Args)]
pub struct PasswordArgs {
    /// argon2id memory cost per hash, in KiB (at least 8 × parallelism). Default 19456 (19 MiB, OWASP).
    #[arg(
        id = "argon2_memory_kib",
        long = "argon2-memory-kib",
        env = "ALPES_ARGON2_MEMORY_KIB",
        value_name = "KIB",
        default_value_t = DEFAULT_MEMORY_KIB
    )]
    pub memory_kib: u32,
    /// argon2id iterations (time cost), at least 1. Default 2 (OWASP).
    #[arg(
        id = "argon2_iterations",
        long = "argon2-iterations",
        env = "ALPES_ARGON2_ITERATIONS",
        value_name = "N",
        default_value_t = DEFAULT_ITERATIONS
    )]
    pub iterations: u32,
    /// argon2id parallelism (lanes), 1 to 16777215. Default 1 (OWASP).
    #[arg(
        id = "argon2_parallelism",
        long = "argon2-parallelism",
        env = "ALPES_ARGON2_PARALLELISM",
        value_name = "N",
        default_value_t = DEFAULT_PARALLELISM
    )]
    pub parallelism: u32,
}

impl Default for PasswordArgs {
    fn default() -> Self {
        PasswordArgs {
            memory_kib: DEFAULT_MEMORY_KIB,
            iterations: DEFAULT_ITERATIONS,
            parallelism: DEFAULT_PARALLELISM,
        }
    }
}

impl PasswordArgs {
    /// The argon2 parameters, checked against argon2's limits.
    fn params(&self) -> Result<Params, PasswordError> {
        let max_p = Params::MAX_P_COST;
        if !(Params::MIN_P_COST..=max_p).contains(&self.parallelism) {
            return Err(PasswordError::InvalidParameter {
                name: "--argon2-parallelism",
                value: self.parallelism,
                min: Params::MIN_P_COST,
                max: max_p,
            });
        }
        // argon2 needs 8 blocks of 1 KiB per lane (2 per slice, 4 slices); 8 × 0xFFFFFF fits a u32.
        let min_m = Params::MIN_M_COST.max(8 * self.parallelism);
        if !(min_m..=Params::MAX_M_COST).contains(&self.memory_kib) {
            return Err(PasswordError::InvalidParameter {
                name: "--argon2-memory-kib",
                value: self.memory_kib,
                min: min_m,
                max: Params::MAX_M_COST,
            });
        }
        if !(Params::MIN_T_COST..=Params::MAX_T_COST).contains(&self.iterations) {
            return Err(PasswordError::InvalidParameter {
                name: "--argon2-iterations",
                value: self.iterations,
                min: Params::MIN_T_COST,
                max: Params::MAX_T_COST,
            });
        }
        Params::new(self.memory_kib, self.iterations, self.parallelism, Some(OUTPUT_LEN)).map_err(|e| PasswordError::Hash(e.into()))
    }
}

/// What hashing or verifying a password can fail with. No variant carries a
/// password or a hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    /// An argon2 parameter is outside argon2's limits.
    #[error("{name} must be between {min} and {max}, got {value}")]
    InvalidParameter {
        /// The flag that sets it.
        name: &'static str,
        /// The value given.
        value: u32,
        /// The smallest value allowed.
        min: u32,
        /// The largest value allowed.
        max: u32,
    },
    /// [`Passwords::hash`] was given more than [`MAX_PASSWORD_BYTES`].
    #[error("the password is longer than {max_bytes} bytes")]
    TooLong {
        /// The limit, [`MAX_PASSWORD_BYTES`].
        max_bytes: usize,
    },
    /// A stored hash is not an argon2 PHC string that can be verified.
    #[error("the stored password hash is malformed or not argon2")]
    MalformedHash,
    /// argon2 or the system's random number generator failed.
    #[error("password hashing failed: {0}")]
    Hash(#[source] argon2::password_hash::Error),
}

impl From<PasswordError> for crate::Error {
    fn from(e: PasswordError) -> Self {
        match e {
            PasswordError::InvalidParameter { .. } => crate::Error::Config(e.to_string()),
            other => crate::Error::Auth(other.to_string()),
        }
    }
}

/// Why a new password is refused by [`check_policy`]. No variant carries the password.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// Fewer than [`MIN_PASSWORD_CHARS`] characters.
    #[error("the password must be at least {min_chars} characters long")]
    TooShort {
        /// The minimum, [`MIN_PASSWORD_CHARS`].
        min_chars: usize,
    },
    /// More than [`MAX_PASSWORD_BYTES`] bytes of UTF-8.
    #[error("the password must be at most {max_bytes} bytes long")]
    TooLong {
        /// The maximum, [`MAX_PASSWORD_BYTES`].
        max_bytes: usize,
    },
    /// Only whitespace.
    #[error("the password must not be only whitespace")]
    Blank,
}

impl From<PolicyError> for ApiError {
    fn from(e: PolicyError) -> Self {
        ApiError::bad_request("weak_password", e.to_string())
    }
}

/// The password policy for a new or changed password (not applied when
/// verifying a login, so that a policy change never locks anyone out):
///
/// - at least [`MIN_PASSWORD_CHARS`] (12) characters, counted as Unicode
///   scalar values, not bytes, so that non-ASCII passwords are not favoured;
/// - at most [`MAX_PASSWORD_BYTES`] (1,024) bytes of UTF-8, which bounds the
///   work an attacker can make the hasher do;
/// - not only whitespace.
///
/// Length is what matters (NIST SP 800-63B): there are no composition rules,
/// and the password is hashed exactly as given (no trimming, no Unicode
/// normalisation).
pub fn check_policy(password: &str) -> Result<(), PolicyError> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(PolicyError::TooLong {
            max_bytes: MAX_PASSWORD_BYTES,
        });
    }
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(PolicyError::TooShort {
            min_chars: MIN_PASSWORD_CHARS,
        });
    }
    if password.chars().all(char::is_whitespace) {
        return Err(PolicyError::Blank);
    }
    Ok(())
}

/// Hashes and verifies passwords with argon2id (version 0x13) at one set of
/// parameters. Cheap to clone; `Debug` prints the parameters only.
#[derive(Clone)]
pub struct Passwords {
    argon2: Argon2<'static>,
    args: PasswordArgs,
    /// A PHC string of [`DUMMY_PASSWORD`] at `args`, made once by [`Passwords::new`].
    dummy: Arc<str>,
}

impl fmt::Debug for Passwords {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Passwords")
            .field("algorithm", &"argon2id")
            .field("version", &u32::from(Version::V0x13))
            .field("memory_kib", &self.args.memory_kib)
            .field("iterations", &self.args.iterations)
            .field("parallelism", &self.args.parallelism)
            .finish_non_exhaustive()
    }
}

impl Passwords {
    /// A hasher at `args`, after checking them against argon2's limits. Computes
    /// the dummy hash for [`Passwords::verify_or_dummy`], so it costs one hash.
    pub fn new(args: &PasswordArgs) -> Result<Self, PasswordError> {
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, args.params()?);
        let dummy = argon2.hash_password(DUMMY_PASSWORD.as_bytes()).map_err(PasswordError::Hash)?;
        Ok(Passwords {
            argon2,
            args: *args,
            dummy: dummy.to_string().into(),
        })
    }

    /// The parameters new hashes are made with.
    pub fn args(&self) -> &PasswordArgs {
        &self.args
    }

    /// The PHC string of `password` with a fresh random 16-byte salt, e.g.
    /// `$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`. Blocking: see the module docs.
    pub fn hash(&self, password: &str) -> Result<String, PasswordError> {
        if password.len() > MAX_PASSWORD_BYTES {
            return Err(PasswordError::TooLong {
                max_bytes: MAX_PASSWORD_BYTES,
            });
        }
        let salt = argon2::password_hash::try_generate_salt().map_err(|e| PasswordError::Hash(e.into()))?;
        debug_assert_eq!(salt.len(), SALT_LEN);
        let hash = self
            .argon2
            .hash_password_with_salt(password.as_bytes(), &salt)
            .map_err(PasswordError::Hash)?;
        Ok(hash.to_string())
    }

    /// Whether `password` matches the stored PHC string `phc`, at the parameters
    /// recorded in `phc` (so hashes made before a parameter change still verify).
    /// `Ok(false)` on a mismatch, and for a password longer than
    /// [`MAX_PASSWORD_BYTES`] (which no stored hash can match) without hashing it;
    /// an error when `phc` cannot be parsed or is not argon2. Blocking: see the
    /// module docs.
    pub fn verify(&self, password: &str, phc: &str) -> Result<bool, PasswordError> {
        let parsed = PasswordHash::new(phc).map_err(|_| PasswordError::MalformedHash)?;
        if parsed.salt.is_none() || parsed.hash.is_none() {
            return Err(PasswordError::MalformedHash);
        }
        if password.len() > MAX_PASSWORD_BYTES {
            return Ok(false);
        }
        match self.argon2.verify_password(password.as_bytes(), &parsed) {
            Ok(()) => Ok(true),
            Err(argon2::password_hash::Error::PasswordInvalid) => Ok(false),
            Err(
                e @ (argon2::password_hash::Error::OutOfMemory
                | argon2::password_hash::Error::RngFailure
                | argon2::password_hash::Error::Internal
                | argon2::password_hash::Error::Crypto),
            ) => Err(PasswordError::Hash(e)),
            Err(_) => Err(PasswordError::MalformedHash),
        }
    }

    /// The login check: whether `password` matches `phc`, the stored hash of the
    /// user the email names, or `None` when no user has that email. For `None`
    /// it verifies against the dummy hash (same parameters, so the same work)
    /// and answers `false`, so that an unknown email and a wrong password get
    /// the same answer in the same time. A stored hash that cannot be verified
    /// also answers `false`, after the same work, and is logged (without the
    /// hash). A stored hash made at older parameters costs the time of those.
    /// Blocking: see the module docs.
    pub fn verify_or_dummy(&self, password: &str, phc: Option<&str>) -> bool {
        match phc {
            Some(phc) => match self.verify(password, phc) {
                Ok(ok) => ok,
                Err(e) => {
                    tracing::error!(error = %e, "a stored password hash cannot be verified; the login is refused");
                    let _ = self.verify(password, &self.dummy);
                    false
                }
            },
            None => {
                let _ = self.verify(password, &self.dummy);
                false
            }
        }
    }

    /// Whether the stored hash `phc` was made with other settings than the
    /// current ones (another argon2 variant or version, other m/t/p, another
    /// output length, or a shorter salt), so that it should be re-hashed after
    /// the next successful login. An unparsable `phc` needs a re-hash too.
    pub fn needs_rehash(&self, phc: &str) -> bool {
        let Ok(parsed) = PasswordHash::new(phc) else {
            return true;
        };
        let Ok(params) = Params::try_from(&parsed) else {
            return true;
        };
        parsed.algorithm != ARGON2ID_IDENT
            || parsed.version != Some(u32::from(Version::V0x13))
            || params.m_cost() != self.args.memory_kib
            || params.t_cost() != self.args.iterations
            || params.p_cost() != self.args.parallelism
            || params.output_len() != Some(OUTPUT_LEN)
            || parsed.salt.as_ref().is_none_or(|s| s.len() < SALT_LEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWORD: &str = "correct horse battery staple";

    fn small() -> PasswordArgs {
        PasswordArgs {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        }
    }

    fn passwords() -> Passwords {
        Passwords::new(&small()).expect("small parameters are valid")
    }

    #[test]
    fn a_hashed_password_verifies() {
        let p = passwords();
        let phc = p.hash(PASSWORD).expect("hash");
        assert!(p.verify(PASSWORD, &phc).expect("verify"));
        assert!(p.verify_or_dummy(PASSWORD, Some(&phc)));
    }

    #[test]
    fn a_wrong_password_does_not_verify() {
        let p = passwords();
        let phc = p.hash(PASSWORD).expect("hash");
        assert!(!p.verify("correct horse battery stapler", &phc).expect("verify"));
        assert!(!p.verify("", &phc).expect("verify"));
        assert!(!p.verify_or_dummy("correct horse battery stapler", Some(&phc)));
    }

    #[test]
    fn the_same_password_gets_a_different_salt_each_time() {
        let p = passwords();
        let a = p.hash(PASSWORD).expect("hash");
        let b = p.hash(PASSWORD).expect("hash");
        assert_ne!(a, b);
        let salt = |phc: &str| phc.split('$').nth(4).expect("salt field").to_owned();
        assert_ne!(salt(&a), salt(&b));
        // 16 bytes in unpadded base64.
        assert_eq!(salt(&a).len(), 22);
        assert!(p.verify(PASSWORD, &a).expect("verify") && p.verify(PASSWORD, &b).expect("verify"));
    }

    #[test]
    fn an_unknown_user_never_verifies_even_with_the_dummy_password() {
        let p = passwords();
        assert!(!p.verify_or_dummy(PASSWORD, None));
        assert!(!p.verify_or_dummy(DUMMY_PASSWORD, None));
        // The dummy path does the same work as a real one: the dummy hash has the same parameters.
        assert!(p.dummy.starts_with("$argon2id$v=19$m=64,t=1,p=1$"));
        assert!(!p.needs_rehash(&p.dummy));
    }

    #[test]
    fn the_parameters_are_encoded_in_the_phc_string() {
        let p = passwords();
        let phc = p.hash(PASSWORD).expect("hash");
        assert!(phc.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "unexpected prefix");
        let q = Passwords::new(&PasswordArgs {
            memory_kib: 256,
            iterations: 3,
            parallelism: 2,
        })
        .expect("valid");
        assert!(q.hash(PASSWORD).expect("hash").starts_with("$argon2id$v=19$m=256,t=3,p=2$"));
    }

    #[test]
    fn a_hash_made_at_other_parameters_still_verifies_and_needs_a_rehash() {
        let old = passwords();
        let new = Passwords::new(&PasswordArgs {
            memory_kib: 128,
            iterations: 2,
            parallelism: 1,
        })
        .expect("valid");
        let phc = old.hash(PASSWORD).expect("hash");
        assert!(!old.needs_rehash(&phc));
        assert!(new.needs_rehash(&phc));
        assert!(new.verify(PASSWORD, &phc).expect("verify"));
        assert!(!new.needs_rehash(&new.hash(PASSWORD).expect("hash")));
        assert!(new.needs_rehash("not a phc string"));
        // Another argon2 variant is verified but re-hashed as argon2id.
        let argon2i = Argon2::new(Algorithm::Argon2i, Version::V0x13, small().params().expect("params"))
            .hash_password_with_salt(PASSWORD.as_bytes(), &[7u8; SALT_LEN])
            .expect("hash")
            .to_string();
        assert!(old.verify(PASSWORD, &argon2i).expect("verify"));
        assert!(old.needs_rehash(&argon2i));
    }

    #[test]
    fn an_unparsable_stored_hash_is_an_error_and_a_refused_login() {
        let p = passwords();
        for bad in [
            "",
            "plaintext",
            "$argon2id$v=19$m=64,t=1,p=1",
            "$argon2id$v=19$m=4,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g",
            "$scrypt$ln=15,r=8,p=1$c2FsdHNhbHQ$aGFzaGhhc2g",
        ] {
            assert_eq!(p.verify(PASSWORD, bad), Err(PasswordError::MalformedHash), "{bad:?}");
            assert!(!p.verify_or_dummy(PASSWORD, Some(bad)));
        }
    }

    #[test]
    fn an_overlong_password_is_neither_hashed_nor_verified() {
        let p = passwords();
        let phc = p.hash(PASSWORD).expect("hash");
        let long = "a".repeat(MAX_PASSWORD_BYTES + 1);
        assert_eq!(
            p.hash(&long),
            Err(PasswordError::TooLong {
                max_bytes: MAX_PASSWORD_BYTES
            })
        );
        assert!(!p.verify(&long, &phc).expect("verify"));
        assert!(p.hash(&"a".repeat(MAX_PASSWORD_BYTES)).is_ok());
    }

    #[test]
    fn the_defaults_are_owasps_argon2id_recommendation() {
        let d = PasswordArgs::default();
        assert_eq!((d.memory_kib, d.iterations, d.parallelism), (19_456, 2, 1));
        assert_eq!(d.memory_kib, 19 * 1024);
        let params = d.params().expect("the defaults are valid");
        assert_eq!((params.m_cost(), params.t_cost(), params.p_cost()), (19_456, 2, 1));
        // What a hash at the defaults will record (checked without paying for a hash).
        assert_eq!(params.to_string(), "m=19456,t=2,p=1");
        assert_eq!(u32::from(Version::V0x13), 19);
        // The clap defaults are the same values.
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            args: PasswordArgs,
        }
        let cli = <Cli as clap::Parser>::try_parse_from(["alpes"]).expect("parse");
        assert_eq!(cli.args, d);
        let cli =
            <Cli as clap::Parser>::try_parse_from(["alpes", "--argon2-memory-kib", "65536", "--argon2-iterations", "3"]).expect("parse");
        assert_eq!((cli.args.memory_kib, cli.args.iterations, cli.args.parallelism), (65_536, 3, 1));
    }

    #[test]
    fn parameters_outside_argon2s_limits_are_refused() {
        let with = |memory_kib, iterations, parallelism| {
            Passwords::new(&PasswordArgs {
                memory_kib,
                iterations,
                parallelism,
            })
            .expect_err("invalid")
        };
        assert!(matches!(
            with(64, 0, 1),
            PasswordError::InvalidParameter {
                name: "--argon2-iterations",
                ..
            }
        ));
        assert!(matches!(
            with(64, 1, 0),
            PasswordError::InvalidParameter {
                name: "--argon2-parallelism",
                ..
            }
        ));
        assert!(matches!(
            with(64, 1, 0x0100_0000),
            PasswordError::InvalidParameter {
                name: "--argon2-parallelism",
                ..
            }
        ));
        assert_eq!(
            with(7, 1, 1),
            PasswordError::InvalidParameter {
                name: "--argon2-memory-kib",
                value: 7,
                min: 8,
                max: u32::MAX
            }
        );
        assert!(matches!(
            with(31, 1, 4),
            PasswordError::InvalidParameter {
                name: "--argon2-memory-kib",
                min: 32,
                ..
            }
        ));
        assert!(Passwords::new(&PasswordArgs {
            memory_kib: 8,
            iterations: 1,
            parallelism: 1
        })
        .is_ok());
        let e: crate::Error = with(7, 1, 1).into();
        assert!(matches!(e, crate::Error::Config(_)));
    }

    #[test]
    fn the_policy_counts_characters_and_bounds_bytes() {
        assert_eq!(check_policy(""), Err(PolicyError::TooShort { min_chars: 12 }));
        assert_eq!(check_policy("elevenchars"), Err(PolicyError::TooShort { min_chars: 12 }));
        assert_eq!(check_policy("twelve chars"), Ok(()));
        // 11 characters but 22 bytes: too short, because characters count, not bytes.
        assert_eq!(check_policy("ééééééééééé"), Err(PolicyError::TooShort { min_chars: 12 }));
        assert_eq!(check_policy("éééééééééééé"), Ok(()));
        assert_eq!(check_policy(&" ".repeat(12)), Err(PolicyError::Blank));
        assert_eq!(check_policy("\t\n \u{00a0}\u{2003}        "), Err(PolicyError::Blank));
        assert_eq!(check_policy(&"x".repeat(MAX_PASSWORD_BYTES)), Ok(()));
        assert_eq!(
            check_policy(&"x".repeat(MAX_PASSWORD_BYTES + 1)),
            Err(PolicyError::TooLong { max_bytes: 1024 })
        );
        // 512 two-byte characters are 1,024 bytes; one more is over.
        assert_eq!(check_policy(&"é".repeat(512)), Ok(()));
        assert_eq!(check_policy(&"é".repeat(513)), Err(PolicyError::TooLong { max_bytes: 1024 }));
        let api: ApiError = PolicyError::Blank.into();
        assert_eq!(api.status, axum::http::StatusCode::BAD_REQUEST);
    }

    #[test]
    fn debug_and_errors_never_show_a_password_or_a_hash() {
        let p = passwords();
        let phc = p.hash(PASSWORD).expect("hash");
        let shown = format!("{p:?} {:?} {p:#?}", p.clone());
        assert!(shown.contains("memory_kib: 64") && shown.contains("argon2id"), "{shown}");
        for secret in [
            PASSWORD,
            DUMMY_PASSWORD,
            "$argon2",
            &phc[phc.len() - 20..],
            &p.dummy[p.dummy.len() - 20..],
        ] {
            assert!(!shown.contains(secret), "Debug shows {secret:?}");
        }
        let errors = [
            format!("{}", p.verify(PASSWORD, "$argon2id$v=19$m=64,t=1,p=1$").expect_err("malformed")),
            format!("{:?}", p.verify(PASSWORD, &phc.replace("$v=19$", "$v=99$")).expect_err("malformed")),
            format!("{}", check_policy("short").expect_err("short")),
            format!("{}", check_policy(&PASSWORD[..10]).expect_err("short")),
        ];
        for e in errors {
            assert!(!e.contains("correct") && !e.contains("$argon2") && !e.contains("m=64"), "{e}");
        }
    }
}
