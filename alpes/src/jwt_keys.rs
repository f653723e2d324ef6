//! The keys bearer tokens are signed and verified with, as `alpes up` and
//! `alpes token` configure them ([`JwtArgs`]):
//!
//! - `--jwt-alg hs256` (the default): the shared secret `keys/jwt.key` in the
//!   data dir, created on first start.
//! - `--jwt-alg eddsa`: an Ed25519 key ring. The signing key is
//!   `--jwt-signing-key` (PKCS#8 PEM) or, without it, `keys/jwt-ed25519.key.pem`
//!   in the data dir, created on first start (0600) with its public key beside
//!   it (`keys/jwt-ed25519.pub.pem`) and kept. Its kid is `--jwt-kid`, or
//!   derived from the public key (the first 16 hex digits of its RFC 7638 JWK
//!   thumbprint). Each `--jwt-verify-key KID=PATH` (SPKI PEM) adds a key
//!   tokens are accepted under but never signed with: the previous signing
//!   key during a rotation.

use crate::secret;
use alpes_platform::auth::keys::{check_kid, Ed25519PublicKey, Ed25519SigningKey};
use alpes_platform::auth::Jwt;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// How tokens are signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum JwtAlg {
    /// HMAC-SHA256 with one shared secret (`keys/jwt.key` in the data dir).
    #[default]
    Hs256,
    /// Ed25519 signatures; every token names its key by `kid`.
    Eddsa,
}

/// The token key settings of `alpes up` and `alpes token`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct JwtArgs {
    /// How tokens are signed: hs256 (a shared secret, keys/jwt.key in the data dir) or eddsa
    /// (Ed25519 with a kid in every token; the public keys are served at /.well-known/jwks.json).
    #[arg(long = "jwt-alg", env = "ALPES_JWT_ALG", value_enum, default_value_t = JwtAlg::Hs256)]
    pub alg: JwtAlg,
    /// eddsa: the Ed25519 private key that signs tokens (PKCS#8 PEM). Without it,
    /// keys/jwt-ed25519.key.pem in the data dir, created on first start.
    #[arg(long = "jwt-signing-key", env = "ALPES_JWT_SIGNING_KEY", value_name = "PATH")]
    pub signing_key: Option<PathBuf>,
    /// eddsa: the signing key's kid. Without it, derived from the public key (the first 16 hex
    /// digits of its RFC 7638 JWK thumbprint, SHA-256; `alpes jwt-key kid PATH` prints it).
    #[arg(long = "jwt-kid", env = "ALPES_JWT_KID", value_name = "KID")]
    pub kid: Option<String>,
    /// eddsa: a public key (SPKI PEM) tokens are also accepted under, never signed with: the
    /// previous signing key during a rotation. Repeatable; the environment variable takes a
    /// comma-separated list.
    #[arg(
        long = "jwt-verify-key",
        env = "ALPES_JWT_VERIFY_KEYS",
        value_name = "KID=PATH",
        value_delimiter = ',',
        value_parser = parse_verify_key
    )]
    pub verify_keys: Vec<VerifyKeyArg>,
}

/// One `--jwt-verify-key KID=PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyKeyArg {
    /// The kid tokens signed with its private key carry.
    pub kid: String,
    /// The public key file (SPKI PEM).
    pub path: PathBuf,
}

fn parse_verify_key(s: &str) -> Result<VerifyKeyArg, String> {
    let (kid, path) = s.split_once('=').ok_or_else(|| format!("expected KID=PATH, got {s:?}"))?;
    let kid = kid.trim();
    check_kid(kid).map_err(|e| e.to_string())?;
    if path.trim().is_empty() {
        return Err(format!("no path after {kid}="));
    }
    Ok(VerifyKeyArg {
        kid: kid.to_owned(),
        path: PathBuf::from(path.trim()),
    })
}

/// The signer/verifier the settings name, and the key file created for it, if one was.
#[derive(Debug)]
pub struct Loaded {
    /// Signs and verifies tokens.
    pub jwt: Jwt,
    /// The key file created in the data dir on this first start, if any.
    pub created: Option<PathBuf>,
}

impl JwtArgs {
    /// The token signer/verifier for an instance whose data dir is `data_dir`,
    /// creating its key there on first use (HS256: `keys/jwt.key`; EdDSA without
    /// `--jwt-signing-key`: `keys/jwt-ed25519.key.pem` and `.pub.pem`).
    pub fn load(&self, data_dir: &Path) -> Result<Loaded> {
        match self.alg {
            JwtAlg::Hs256 => {
                if self.signing_key.is_some() || self.kid.is_some() || !self.verify_keys.is_empty() {
                    bail!("--jwt-signing-key, --jwt-kid and --jwt-verify-key need --jwt-alg eddsa");
                }
                let path = jwt_key_path(data_dir);
                let (key, created) = secret::load_or_create(&path)?;
                Ok(Loaded {
                    jwt: Jwt::new(&key),
                    created: created.then_some(path),
                })
            }
            JwtAlg::Eddsa => {
                let kid = self.kid.as_deref();
                let (signing, created) = match &self.signing_key {
                    Some(path) => (read_signing_key(path, kid)?, None),
                    None => {
                        let path = ed25519_key_path(data_dir);
                        let (key, created) = load_or_create_keypair(&path, kid)?;
                        (key, created.then_some(path))
                    }
                };
                let verify_only = self
                    .verify_keys
                    .iter()
                    .map(|v| read_public_key(&v.path, Some(&v.kid)))
                    .collect::<Result<Vec<_>>>()?;
                let jwt = Jwt::eddsa(&signing, verify_only).context("bad token keys")?;
                Ok(Loaded { jwt, created })
            }
        }
    }
}

/// The Ed25519 private key (PKCS#8 PEM) at `path`, named `kid` or its derived kid.
pub fn read_signing_key(path: &Path, kid: Option<&str>) -> Result<Ed25519SigningKey> {
    let pem = std::fs::read_to_string(path).with_context(|| format!("cannot read the token signing key {}", path.display()))?;
    Ed25519SigningKey::from_pkcs8_pem(&pem, kid).with_context(|| format!("bad token signing key {}", path.display()))
}

/// The Ed25519 public key (SPKI PEM) at `path`, named `kid` or its derived kid.
pub fn read_public_key(path: &Path, kid: Option<&str>) -> Result<Ed25519PublicKey> {
    let pem = std::fs::read_to_string(path).with_context(|| format!("cannot read the token verification key {}", path.display()))?;
    Ed25519PublicKey::from_public_key_pem(&pem, kid).with_context(|| {
        let hint = if pem.contains("PRIVATE KEY-----") {
            " (`alpes jwt-key public PATH` prints a key's public key)"
        } else {
            ""
        };
        format!("bad token verification key {}{hint}", path.display())
    })
}

/// The public key of the key file at `path`, private (PKCS#8) or public (SPKI), with its derived kid.
pub fn read_any_key(path: &Path) -> Result<Ed25519PublicKey> {
    let pem = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    if pem.contains("PRIVATE KEY-----") {
        Ok(Ed25519SigningKey::from_pkcs8_pem(&pem, None)
            .with_context(|| format!("bad key file {}", path.display()))?
            .public())
    } else {
        Ed25519PublicKey::from_public_key_pem(&pem, None).with_context(|| format!("bad key file {}", path.display()))
    }
}

/// Where the public key of the private key file `private` is written:
/// `x.key.pem` → `x.pub.pem`, any other name gets `.pub.pem` appended.
pub fn public_path(private: &Path) -> PathBuf {
    let name = private.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let public = match name.strip_suffix(".key.pem") {
        Some(stem) => format!("{stem}.pub.pem"),
        None => format!("{name}.pub.pem"),
    };
    private.with_file_name(public)
}

/// Writes `key` to `private` (PKCS#8 PEM, 0600, never over an existing file)
/// and its public key beside it ([`public_path`], SPKI PEM); returns that path.
pub fn write_keypair(key: &Ed25519SigningKey, private: &Path) -> Result<PathBuf> {
    if let Some(dir) = private.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    secret::create_private(private, key.to_pkcs8_pem()?.as_bytes())?;
    let public = public_path(private);
    write_public(key, &public)?;
    Ok(public)
}

fn write_public(key: &Ed25519SigningKey, path: &Path) -> Result<()> {
    std::fs::write(path, key.public().to_public_key_pem()?).with_context(|| format!("cannot write {}", path.display()))
}

/// The key pair at `path`, created there if it does not exist; whether it was created.
/// A missing public key file beside an existing private key is written again.
fn load_or_create_keypair(path: &Path, kid: Option<&str>) -> Result<(Ed25519SigningKey, bool)> {
    if !path.exists() {
        let key = Ed25519SigningKey::generate()?;
        match write_keypair(&key, path) {
            Ok(_) => return Ok((read_signing_key(path, kid)?, true)),
            // Another process (`alpes token` beside `alpes up`) created it first: use theirs.
            Err(_) if path.exists() => {}
            Err(e) => return Err(e),
        }
    }
    let key = read_signing_key(path, kid)?;
    let public = public_path(path);
    if !public.exists() {
        write_public(&key, &public)?;
    }
    Ok((key, false))
}

/// The HS256 token secret under a data dir.
pub fn jwt_key_path(data_dir: &std::path::Path) -> PathBuf {
    data_dir.join("keys").join("jwt.key")
}

/// The EdDSA token signing key (PKCS#8 PEM) under a data dir, used without
/// `--jwt-signing-key`; its public key is beside it (`jwt-ed25519.pub.pem`).
pub fn ed25519_key_path(data_dir: &std::path::Path) -> PathBuf {
    data_dir.join("keys").join("jwt-ed25519.key.pem")
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Args, FromArgMatches};

    fn parse(args: &[&str]) -> Result<JwtArgs, clap::Error> {
        let cmd = JwtArgs::augment_args(clap::Command::new("up"));
        let m = cmd.try_get_matches_from(std::iter::once("up").chain(args.iter().copied()))?;
        JwtArgs::from_arg_matches(&m)
    }

    #[test]
    fn the_flags_default_to_hs256_and_take_repeated_verify_keys() {
        let a = parse(&[]).expect("no flags");
        assert_eq!((a.alg, a.signing_key, a.kid, a.verify_keys.len()), (JwtAlg::Hs256, None, None, 0));
        let a = parse(&[
            "--jwt-alg",
            "eddsa",
            "--jwt-signing-key",
            "/k/new.key.pem",
            "--jwt-kid",
            "2025-06",
            "--jwt-verify-key",
            "old=/k/old.pub.pem",
            "--jwt-verify-key",
            "older=/k/a=b.pem",
        ])
        .expect("flags");
        assert_eq!(a.alg, JwtAlg::Eddsa);
        assert_eq!(a.kid.as_deref(), Some("2025-06"));
        assert_eq!(
            a.verify_keys,
            vec![
                VerifyKeyArg {
                    kid: "old".into(),
                    path: "/k/old.pub.pem".into()
                },
                VerifyKeyArg {
                    kid: "older".into(),
                    path: "/k/a=b.pem".into()
                },
            ]
        );
        for bad in [
            &["--jwt-alg", "rs256"][..],
            &["--jwt-verify-key", "/k/old.pub.pem"],
            &["--jwt-verify-key", "bad kid=/k"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn hs256_keeps_the_data_dirs_secret_and_refuses_eddsa_flags() {
        let dir = tempfile::tempdir().expect("tmp");
        let first = parse(&[]).expect("args").load(dir.path()).expect("load");
        assert_eq!(first.created, Some(jwt_key_path(dir.path())));
        let token = first
            .jwt
            .issue("u", alpes_platform::auth::Role::Admin, std::time::Duration::from_secs(60))
            .expect("issue");
        let again = parse(&[]).expect("args").load(dir.path()).expect("load");
        assert_eq!(again.created, None);
        assert!(again.jwt.verify(&token).is_ok(), "the same secret");
        let err = parse(&["--jwt-kid", "k"]).expect("args").load(dir.path()).expect_err("needs eddsa");
        assert!(err.to_string().contains("--jwt-alg eddsa"), "{err}");
    }

    #[test]
    fn eddsa_creates_a_private_keypair_in_the_data_dir_once_and_keeps_it() {
        let dir = tempfile::tempdir().expect("tmp");
        let args = parse(&["--jwt-alg", "eddsa"]).expect("args");
        let first = args.load(dir.path()).expect("load");
        let path = ed25519_key_path(dir.path());
        assert_eq!(first.created.as_deref(), Some(path.as_path()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(!jwt_key_path(dir.path()).exists(), "no HS256 secret in EdDSA mode");
        let kid = first.jwt.signing_kid().expect("kid").to_owned();
        assert_eq!(read_any_key(&public_path(&path)).expect("public").kid(), kid);
        std::fs::remove_file(public_path(&path)).expect("rm");
        let again = args.load(dir.path()).expect("load");
        assert_eq!((again.created, again.jwt.signing_kid()), (None, Some(kid.as_str())));
        assert!(public_path(&path).exists(), "the public key is written again");
        let named = parse(&["--jwt-alg", "eddsa", "--jwt-kid", "main"]).expect("args");
        assert_eq!(named.load(dir.path()).expect("load").jwt.signing_kid(), Some("main"));
    }

    #[test]
    fn eddsa_reads_the_named_keys_and_refuses_a_private_key_as_a_verify_key() {
        let dir = tempfile::tempdir().expect("tmp");
        let (new, old) = (
            Ed25519SigningKey::generate().expect("key"),
            Ed25519SigningKey::generate().expect("key"),
        );
        let new_path = dir.path().join(format!("{}.key.pem", new.kid()));
        let old_path = dir.path().join(format!("{}.key.pem", old.kid()));
        write_keypair(&new, &new_path).expect("write");
        let old_public = write_keypair(&old, &old_path).expect("write");
        assert_eq!(old_public, dir.path().join(format!("{}.pub.pem", old.kid())));
        assert!(write_keypair(&new, &new_path).is_err(), "never overwritten");
        let signing = format!("{}", new_path.display());
        let verify = format!("{}={}", old.kid(), old_public.display());
        let loaded = parse(&["--jwt-alg", "eddsa", "--jwt-signing-key", &signing, "--jwt-verify-key", &verify])
            .expect("args")
            .load(dir.path())
            .expect("load");
        assert_eq!(loaded.created, None);
        assert_eq!(loaded.jwt.signing_kid(), Some(new.kid()));
        let mut kids = vec![new.kid(), old.kid()];
        kids.sort_unstable();
        assert_eq!(loaded.jwt.verifying_kids(), kids);
        assert!(!ed25519_key_path(dir.path()).exists(), "nothing created beside a named key");
        let private_as_public = format!("{}={}", old.kid(), old_path.display());
        let err = parse(&[
            "--jwt-alg",
            "eddsa",
            "--jwt-signing-key",
            &signing,
            "--jwt-verify-key",
            &private_as_public,
        ])
        .expect("args")
        .load(dir.path())
        .expect_err("private key");
        assert!(format!("{err:#}").contains("private key"), "{err:#}");
        let missing = parse(&["--jwt-alg", "eddsa", "--jwt-signing-key", "/nonexistent/key.pem"]).expect("args");
        assert!(missing.load(dir.path()).is_err());
    }

    #[test]
    fn an_openssl_key_pair_is_read_with_the_same_kid() {
        // `openssl genpkey -algorithm ed25519` and `openssl pkey -pubout` of the RFC 8037 A.1 key.
        let dir = tempfile::tempdir().expect("tmp");
        let private = dir.path().join("k.pem");
        let public = dir.path().join("k.pub");
        std::fs::write(
            &private,
            "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g\n-----END PRIVATE KEY-----\n",
        )
        .expect("write");
        std::fs::write(
            &public,
            "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\n-----END PUBLIC KEY-----\n",
        )
        .expect("write");
        assert_eq!(read_signing_key(&private, None).expect("private").kid(), "90facafea9b15566");
        assert_eq!(read_public_key(&public, None).expect("public").kid(), "90facafea9b15566");
        assert_eq!(read_any_key(&private).expect("any"), read_any_key(&public).expect("any"));
    }
}
