//! Patient contact data at rest, and patients' codes.
//!
//! [`ContactKey`] comes from a key file (`keys/contact.key` under the data dir, created once,
//! 0600, like the engine secret). Two keys are derived from it: one seals contact data with
//! AES-256-GCM (a random 96-bit nonce per sealing, the version byte bound as associated data),
//! the other makes each patient's confirmation and revocation codes as a keyed hash of the
//! patient id, so the notifier can send the same code again without anyone storing it: the store
//! keeps only a keyed hash of each ([`ContactKey::code_digest`]).

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use alpes_domain::registry::CodeKind;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The format of a sealed value: `VERSION || nonce (12) || ciphertext and tag`.
const VERSION: u8 = 1;
const NONCE: usize = 12;
/// The code alphabet: digits and capitals without 0/O, 1/I/L, so a code read aloud or copied by
/// hand survives.
const ALPHABET: &[u8; 31] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";
/// Characters of a code (three groups of four: about 59 bits).
const CODE_CHARS: usize = 12;

/// Why a sealed value could not be opened (a value sealed under another key, or altered).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the sealed contact data could not be opened (another key, or altered)")]
pub struct Unsealable;

/// The key behind patients' sealed contact data and codes. Its bytes never appear in output.
#[derive(Clone)]
pub struct ContactKey {
    cipher: Aes256Gcm,
    codes: Hmac<Sha256>,
}

impl std::fmt::Debug for ContactKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ContactKey(..)")
    }
}

fn derive(key: &[u8], purpose: &str) -> [u8; 32] {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    m.update(b"alpes contact key\0");
    m.update(purpose.as_bytes());
    m.finalize().into_bytes().into()
}

impl ContactKey {
    /// The key from a key file's bytes (at least 16; the data dir's file has 32 random ones).
    pub fn new(key: &[u8]) -> ContactKey {
        let seal = derive(key, "seal");
        ContactKey {
            cipher: Aes256Gcm::new(&seal.into()),
            codes: <Hmac<Sha256> as Mac>::new_from_slice(&derive(key, "codes"))
                .unwrap_or_else(|_| unreachable!("HMAC takes any key length")),
        }
    }

    /// `plaintext` sealed.
    pub fn seal(&self, plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE];
        // The OS generator does not fail on the systems Alpes runs on; if it ever did, sealing
        // with a fixed nonce would be worse than stopping.
        getrandom::fill(&mut nonce).unwrap_or_else(|e| panic!("the OS random generator failed: {e}"));
        let sealed = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: &[VERSION],
                },
            )
            .unwrap_or_else(|_| unreachable!("AES-GCM seals any message this size"));
        let mut out = Vec::with_capacity(1 + NONCE + sealed.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// A sealed value opened.
    pub fn open(&self, sealed: &[u8]) -> Result<Vec<u8>, Unsealable> {
        if sealed.len() < 1 + NONCE || sealed[0] != VERSION {
            return Err(Unsealable);
        }
        let (nonce, body) = sealed[1..].split_at(NONCE);
        self.cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: body,
                    aad: &[VERSION],
                },
            )
            .map_err(|_| Unsealable)
    }

    /// The code of `kind` of patient `patient_id`: `XXXX-XXXX-XXXX`, the same every time.
    pub fn code(&self, kind: CodeKind, patient_id: &str) -> String {
        let mut m = self.codes.clone();
        m.update(match kind {
            CodeKind::Confirm => b"confirm\0",
            CodeKind::Revoke => b"revoke\0\0",
        });
        m.update(patient_id.as_bytes());
        let h: [u8; 32] = m.finalize().into_bytes().into();
        let mut n = u128::from_be_bytes(h[..16].try_into().unwrap_or_else(|_| unreachable!("16 of 32 bytes")));
        let mut code = String::with_capacity(CODE_CHARS + 2);
        for i in 0..CODE_CHARS {
            if i > 0 && i % 4 == 0 {
                code.push('-');
            }
            code.push(char::from(ALPHABET[(n % ALPHABET.len() as u128) as usize]));
            n /= ALPHABET.len() as u128;
        }
        code
    }
}

impl ContactKey {
    /// What a code is stored and looked up as: a keyed hash (HMAC-SHA256, hex) of the code
    /// upper-cased, without spaces or dashes, so `abcd-efgh-jkmn` and `ABCD EFGH JKMN` are the
    /// same code, and a copy of the database alone cannot be searched for codes.
    pub fn code_digest(&self, code: &str) -> String {
        let normal: String = code
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let mut m = self.codes.clone();
        m.update(b"digest\0");
        m.update(normal.as_bytes());
        hex::encode(m.finalize().into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_value_opens_only_with_its_key_and_unaltered() {
        let k = ContactKey::new(b"0123456789abcdef0123456789abcdef");
        let sealed = k.seal(b"{\"email\":\"ana@h.org\"}");
        assert!(!sealed.windows(3).any(|w| w == b"ana"), "no clear text");
        assert_eq!(k.open(&sealed).expect("opens"), b"{\"email\":\"ana@h.org\"}");
        assert_ne!(k.seal(b"x"), k.seal(b"x"), "a fresh nonce each time");
        let other = ContactKey::new(b"another key of sixteen+ bytes");
        assert_eq!(other.open(&sealed), Err(Unsealable));
        let mut altered = sealed.clone();
        let last = altered.len() - 1;
        altered[last] ^= 1;
        assert_eq!(k.open(&altered), Err(Unsealable));
        assert_eq!(k.open(&[VERSION, 1, 2]), Err(Unsealable));
    }

    #[test]
    fn codes_are_stable_keyed_distinct_and_typed_back_loosely() {
        let k = ContactKey::new(b"0123456789abcdef");
        let c = k.code(CodeKind::Confirm, "p1");
        assert_eq!(c, k.code(CodeKind::Confirm, "p1"));
        assert_ne!(c, k.code(CodeKind::Revoke, "p1"));
        assert_ne!(c, k.code(CodeKind::Confirm, "p2"));
        assert_ne!(c, ContactKey::new(b"fedcba9876543210").code(CodeKind::Confirm, "p1"));
        assert_eq!(c.len(), 14);
        assert_eq!(c.matches('-').count(), 2);
        assert!(c.bytes().all(|b| b == b'-' || ALPHABET.contains(&b)));
        assert_eq!(k.code_digest(&c), k.code_digest(&c.to_lowercase().replace('-', " ")));
        assert_ne!(k.code_digest(&c), k.code_digest(&k.code(CodeKind::Revoke, "p1")));
        assert_ne!(k.code_digest(&c), ContactKey::new(b"fedcba9876543210").code_digest(&c), "keyed");
    }
}
