//! Ed25519 keys for EdDSA tokens: the signing key (PKCS#8 PEM, `BEGIN
//! PRIVATE KEY`) and the public keys tokens are verified with (SPKI PEM,
//! `BEGIN PUBLIC KEY`), each named by a key id (`kid`), plus their JWK form
//! for the JWKS document.
//!
//! A key's default `kid` is derived from its public key: the first 16 hex
//! digits (64 bits) of its RFC 7638 JWK thumbprint, the SHA-256 of
//! `{"crv":"Ed25519","kty":"OKP","x":"<x>"}`. The same key always gets the
//! same kid, on any machine, and anyone holding the JWK can recompute it. Hex,
//! not the thumbprint's usual base64url, so that a kid never starts with `-`
//! (a command line would take it for a flag). A kid given explicitly must be
//! 1 to 64 characters of `A-Z a-z 0-9 . _ -`, not starting with `-`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ed25519_dalek::pkcs8::spki::der::{pem::LineEnding, zeroize::Zeroizing};
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use serde_json::{json, Value};

/// How many hex digits of the JWK thumbprint a derived kid keeps (64 bits).
pub const DERIVED_KID_LEN: usize = 16;

/// The longest kid accepted.
pub const MAX_KID_LEN: usize = 64;

fn config(message: impl Into<String>) -> crate::Error {
    crate::Error::Config(message.into())
}

/// Refuses a kid that is empty, longer than [`MAX_KID_LEN`], holds a
/// character outside `A-Z a-z 0-9 . _ -` or starts with `-`.
pub fn check_kid(kid: &str) -> crate::Result<()> {
    let ok = !kid.is_empty()
        && !kid.starts_with('-')
        && kid.len() <= MAX_KID_LEN
        && kid.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(config(format!(
            "a key id (kid) must be 1 to {MAX_KID_LEN} characters of A-Z a-z 0-9 . _ -, not starting with -"
        )))
    }
}

/// The RFC 7638 JWK thumbprint (SHA-256) of an Ed25519 public key.
fn thumbprint_digest(public: &ed25519_dalek::VerifyingKey) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    // The required members in lexicographic order, no whitespace (RFC 7638 §3.2; RFC 8037 §2).
    let canonical = format!(
        r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
        URL_SAFE_NO_PAD.encode(public.as_bytes())
    );
    Sha256::digest(canonical.as_bytes()).into()
}

/// The RFC 7638 JWK thumbprint of an Ed25519 public key, as usually written: unpadded base64url.
pub fn thumbprint(public: &ed25519_dalek::VerifyingKey) -> String {
    URL_SAFE_NO_PAD.encode(thumbprint_digest(public))
}

/// The kid a key gets when none is given: the first [`DERIVED_KID_LEN`] hex digits of its thumbprint.
pub fn derive_kid(public: &ed25519_dalek::VerifyingKey) -> String {
    let mut kid = hex::encode(thumbprint_digest(public));
    kid.truncate(DERIVED_KID_LEN);
    kid
}

/// The kid to use: `kid` when given (checked), else the one derived from `public`.
fn kid_for(public: &ed25519_dalek::VerifyingKey, kid: Option<&str>) -> crate::Result<String> {
    match kid {
        Some(kid) => check_kid(kid).map(|()| kid.to_owned()),
        None => Ok(derive_kid(public)),
    }
}

/// The Ed25519 key that signs tokens, with its kid.
#[derive(Clone)]
pub struct Ed25519SigningKey {
    kid: String,
    key: ed25519_dalek::SigningKey,
}

impl std::fmt::Debug for Ed25519SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Ed25519SigningKey(kid {})", self.kid)
    }
}

impl Ed25519SigningKey {
    /// A new key from the operating system's random source, with its derived kid.
    pub fn generate() -> crate::Result<Self> {
        let mut seed = Zeroizing::new([0u8; 32]);
        getrandom::fill(seed.as_mut()).map_err(|e| config(format!("no randomness for a new key: {e}")))?;
        let key = ed25519_dalek::SigningKey::from_bytes(&seed);
        Ok(Ed25519SigningKey {
            kid: derive_kid(&key.verifying_key()),
            key,
        })
    }

    /// The key in a PKCS#8 PEM document (`BEGIN PRIVATE KEY`, as `openssl genpkey
    /// -algorithm ed25519` writes it), named `kid`, or its derived kid without one.
    pub fn from_pkcs8_pem(pem: &str, kid: Option<&str>) -> crate::Result<Self> {
        let key = ed25519_dalek::SigningKey::from_pkcs8_pem(pem.trim())
            .map_err(|_| config("not an Ed25519 private key in PKCS#8 PEM (BEGIN PRIVATE KEY)"))?;
        Ok(Ed25519SigningKey {
            kid: kid_for(&key.verifying_key(), kid)?,
            key,
        })
    }

    /// The key id every token it signs carries.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The key as a PKCS#8 PEM document.
    pub fn to_pkcs8_pem(&self) -> crate::Result<Zeroizing<String>> {
        self.key
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| config(format!("cannot encode the private key: {e}")))
    }

    /// The key as PKCS#8 DER, as `jsonwebtoken` signs with it.
    pub(crate) fn to_pkcs8_der(&self) -> crate::Result<Zeroizing<Vec<u8>>> {
        let doc = self
            .key
            .to_pkcs8_der()
            .map_err(|e| config(format!("cannot encode the private key: {e}")))?;
        Ok(Zeroizing::new(doc.as_bytes().to_vec()))
    }

    /// Its public key, under the same kid.
    pub fn public(&self) -> Ed25519PublicKey {
        Ed25519PublicKey {
            kid: self.kid.clone(),
            key: self.key.verifying_key(),
        }
    }
}

/// An Ed25519 public key tokens are verified with, with its kid.
#[derive(Clone, PartialEq, Eq)]
pub struct Ed25519PublicKey {
    kid: String,
    key: ed25519_dalek::VerifyingKey,
}

impl std::fmt::Debug for Ed25519PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Ed25519PublicKey(kid {})", self.kid)
    }
}

impl Ed25519PublicKey {
    /// The key in an SPKI PEM document (`BEGIN PUBLIC KEY`, as `openssl pkey
    /// -pubout` writes it), named `kid`, or its derived kid without one.
    pub fn from_public_key_pem(pem: &str, kid: Option<&str>) -> crate::Result<Self> {
        let pem = pem.trim();
        if pem.contains("PRIVATE KEY-----") {
            return Err(config(
                "this is a private key; a verification key must be a public key (BEGIN PUBLIC KEY)",
            ));
        }
        let key = ed25519_dalek::VerifyingKey::from_public_key_pem(pem)
            .map_err(|_| config("not an Ed25519 public key in SPKI PEM (BEGIN PUBLIC KEY)"))?;
        Ok(Ed25519PublicKey {
            kid: kid_for(&key, kid)?,
            key,
        })
    }

    /// The key id tokens signed with its private key carry.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The 32-byte public key.
    pub fn as_bytes(&self) -> &[u8; 32] {
        self.key.as_bytes()
    }

    /// The key as an SPKI PEM document.
    pub fn to_public_key_pem(&self) -> crate::Result<String> {
        self.key
            .to_public_key_pem(LineEnding::LF)
            .map_err(|e| config(format!("cannot encode the public key: {e}")))
    }

    /// The key as a JWK (RFC 8037): `kty`, `crv`, `x`, `kid`, `alg`, `use`.
    pub fn jwk(&self) -> Value {
        json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "x": URL_SAFE_NO_PAD.encode(self.key.as_bytes()),
            "kid": self.kid,
            "alg": "EdDSA",
            "use": "sig",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8037 appendix A.1: the example Ed25519 private key, as PKCS#8 PEM.
    const RFC8037_PEM: &str = "-----BEGIN PRIVATE KEY-----\n\
        MC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g\n\
        -----END PRIVATE KEY-----\n";

    #[test]
    fn the_rfc_8037_key_has_the_rfc_thumbprint_and_x() {
        let key = Ed25519SigningKey::from_pkcs8_pem(RFC8037_PEM, None).expect("pem");
        let public = key.public();
        // RFC 8037 A.2 (x) and A.3 (the RFC 7638 thumbprint).
        assert_eq!(public.jwk()["x"], "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo");
        assert_eq!(
            thumbprint(&ed25519_dalek::VerifyingKey::from_bytes(public.as_bytes()).expect("key")),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
        // Its first 8 bytes, in hex.
        assert_eq!(key.kid(), "90facafea9b15566");
        assert_eq!(public.kid(), key.kid());
    }

    #[test]
    fn a_generated_key_round_trips_through_pem_with_its_derived_kid() {
        let key = Ed25519SigningKey::generate().expect("generate");
        assert_eq!(key.kid().len(), DERIVED_KID_LEN);
        assert!(key.kid().bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        let pem = key.to_pkcs8_pem().expect("pem");
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        let again = Ed25519SigningKey::from_pkcs8_pem(&pem, None).expect("parse");
        assert_eq!(again.kid(), key.kid());
        let public_pem = key.public().to_public_key_pem().expect("public pem");
        assert!(public_pem.starts_with("-----BEGIN PUBLIC KEY-----"));
        let public = Ed25519PublicKey::from_public_key_pem(&public_pem, None).expect("parse public");
        assert_eq!(public, key.public());
        let named = Ed25519PublicKey::from_public_key_pem(&public_pem, Some("2025-06")).expect("named");
        assert_eq!(named.kid(), "2025-06");
        assert_ne!(Ed25519SigningKey::generate().expect("generate").kid(), key.kid());
    }

    #[test]
    fn a_private_key_is_refused_where_a_public_one_is_expected_and_the_reverse() {
        let key = Ed25519SigningKey::generate().expect("generate");
        let private = key.to_pkcs8_pem().expect("pem");
        let err = Ed25519PublicKey::from_public_key_pem(&private, None).expect_err("private");
        assert!(err.to_string().contains("private key"), "{err}");
        let public = key.public().to_public_key_pem().expect("pem");
        assert!(Ed25519SigningKey::from_pkcs8_pem(&public, None).is_err());
        assert!(Ed25519SigningKey::from_pkcs8_pem("not a key", None).is_err());
    }

    #[test]
    fn a_kid_is_short_plain_ascii() {
        for good in ["a", "2025-06-01.main_key", &"k".repeat(MAX_KID_LEN)] {
            assert!(check_kid(good).is_ok(), "{good}");
        }
        for bad in ["", "-a", "a b", "a=b", "a,b", "ké", "a/b", &"k".repeat(MAX_KID_LEN + 1)] {
            assert!(check_kid(bad).is_err(), "{bad}");
        }
        let key = Ed25519SigningKey::generate().expect("generate");
        let pem = key.to_pkcs8_pem().expect("pem");
        assert!(Ed25519SigningKey::from_pkcs8_pem(&pem, Some("bad kid")).is_err());
    }
}
