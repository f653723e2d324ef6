//! Keyed, stateless pseudonyms: the same input and secret give the same output
//! in any process on any machine, so studies stay linked across uploads.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fmt::Write as _;

/// The secret key behind every pseudonym. Its bytes never appear in output, logs or errors.
///
/// Holds the HMAC state already keyed with the secret, so each pseudonym costs
/// two SHA-256 compressions instead of four.
#[derive(Clone)]
pub struct Secret(Hmac<Sha256>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Secret {
    /// Wraps key bytes.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        let key: Vec<u8> = bytes.into();
        // HMAC accepts keys of any length, so this cannot fail.
        Secret(<Hmac<Sha256> as Mac>::new_from_slice(&key).unwrap_or_else(|_| unreachable!("HMAC takes any key length")))
    }

    fn mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut m = self.0.clone();
        for p in parts {
            m.update(p);
        }
        m.finalize().into_bytes().into()
    }

    /// The secret of one namespace (a provider, say): its pseudonyms are
    /// unrelated to this secret's and to every other namespace's, so the same
    /// UID or patient under two namespaces gets two pseudonyms. The key is
    /// HMAC-SHA256(secret, `namespace` 0x00 name): stable, and needing no state.
    pub fn scoped(&self, namespace: &str) -> Secret {
        Secret::new(self.mac(&[b"namespace", &[0], namespace.as_bytes()]).to_vec())
    }

    /// `2.25.` followed by the decimal value of the first 128 bits of HMAC-SHA256(secret, uid).
    pub fn uid(&self, uid: &str) -> String {
        let h = self.mac(&[uid.as_bytes()]);
        let mut first = [0u8; 16];
        first.copy_from_slice(&h[..16]);
        format!("2.25.{}", u128::from_be_bytes(first))
    }

    fn hex(&self, domain: &str, value: &[u8], chars: usize) -> String {
        let h = self.mac(&[domain.as_bytes(), &[0], value]);
        let mut s = String::with_capacity(chars);
        for b in h.iter().take(chars.div_ceil(2)) {
            let _ = write!(s, "{b:02X}");
        }
        s.truncate(chars);
        s
    }

    /// The pseudonymous PatientID for a patient key (the raw value bytes, any character set).
    pub fn patient_id(&self, key: impl AsRef<[u8]>) -> String {
        format!("ALPES-{}", self.hex("patient-id", key.as_ref(), 16))
    }

    /// The pseudonymous PatientName for a patient key (`ALPES^<hex>`).
    pub fn patient_name(&self, key: impl AsRef<[u8]>) -> String {
        format!("ALPES^{}", self.hex("patient-name", key.as_ref(), 12))
    }

    /// `chars` hex digits (at most 64) of a keyed HMAC of a private or local coding scheme's
    /// designator and one of its code values (both raw bytes), so one local code always maps to
    /// one pseudonym and equal values of different schemes do not collide.
    pub fn code_value(&self, designator: &[u8], value: &[u8], chars: usize) -> String {
        let mut key = Vec::with_capacity(8 + designator.len() + value.len());
        key.extend_from_slice(&(designator.len() as u64).to_be_bytes());
        key.extend_from_slice(designator);
        key.extend_from_slice(value);
        self.hex("code-value", &key, chars)
    }

    /// The pseudonym of a private or local Coding Scheme Designator: `99ALPES` plus 9 hex digits,
    /// 16 characters (the SH limit). The `99` prefix marks a private scheme, as PS3.16 asks.
    pub fn coding_scheme(&self, designator: impl AsRef<[u8]>) -> String {
        format!("99ALPES{}", self.hex("coding-scheme", designator.as_ref(), 9))
    }

    /// The whole-day date shift for a patient key: between 1 and 3650 days back.
    pub fn date_shift_days(&self, key: impl AsRef<[u8]>) -> i64 {
        let h = self.mac(&[b"date-shift", &[0], key.as_ref()]);
        -(i64::from(u32::from_be_bytes([h[0], h[1], h[2], h[3]]) % 3650) + 1)
    }
}

/// The namespace an upload's pseudonyms are made in, when each owner has its own (`per_owner`):
/// its institution's when its provider belongs to one, so every provider of an institution gives
/// a patient the one pseudonymous PatientID the institution's registry keeps for them; else its
/// provider's. `None` when the instance has one namespace for everybody.
pub fn namespace(per_owner: bool, provider_id: &str, institution_id: Option<&str>) -> Option<String> {
    if !per_owner {
        return None;
    }
    Some(match institution_id {
        Some(institution) => format!("institucion:{institution}"),
        None => provider_id.to_owned(),
    })
}

/// The pseudonymous PatientID an institution's images of the patient with this MRN (PatientID
/// before de-identification) get: what its registry keeps instead of the MRN. The MRN is
/// trimmed as the engine trims the attribute (leading spaces, trailing spaces and NULs).
pub fn patient_subject(secret: &Secret, per_owner: bool, institution_id: &str, mrn: &str) -> String {
    let key = mrn.trim_start_matches(' ').trim_end_matches([' ', '\0']);
    match namespace(per_owner, "", Some(institution_id)) {
        Some(ns) => secret.scoped(&ns).patient_id(key),
        None => secret.patient_id(key),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_institutions_providers_share_its_namespace() {
        assert_eq!(namespace(true, "prov-a", Some("i1")), namespace(true, "prov-b", Some("i1")));
        assert_ne!(namespace(true, "prov-a", Some("i1")), namespace(true, "prov-a", Some("i2")));
        assert_eq!(namespace(true, "prov-a", None).as_deref(), Some("prov-a"));
        assert_eq!(namespace(false, "prov-a", Some("i1")), None);
        let s = Secret::new("k");
        let subject = patient_subject(&s, true, "i1", " MRN-7 ");
        assert_eq!(subject, s.scoped("institucion:i1").patient_id("MRN-7"));
        assert_eq!(patient_subject(&s, false, "i1", "MRN-7"), s.patient_id("MRN-7"));
    }

    #[test]
    fn uid_pseudonyms_are_stable_and_keyed() {
        let a = Secret::new("k1");
        let b = Secret::new("k2");
        assert_eq!(a.uid("1.2.3"), a.uid("1.2.3"));
        assert_ne!(a.uid("1.2.3"), b.uid("1.2.3"));
        assert_ne!(a.uid("1.2.3"), a.uid("1.2.4"));
        let u = a.uid("1.2.3");
        assert!(u.starts_with("2.25.") && u.len() <= 64);
        assert!(!u[5..].starts_with('0'));
    }

    #[test]
    fn uid_pseudonym_is_the_first_128_bits_of_hmac_sha256() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let s = Secret::new("Jefe");
        let expected = u128::from_str_radix("5bdcc146bf60754e6a042426089575c7", 16).expect("hex");
        assert_eq!(s.uid("what do ya want for nothing?"), format!("2.25.{expected}"));
    }

    #[test]
    fn date_shifts_stay_in_range() {
        let s = Secret::new("k");
        for i in 0..200 {
            let d = s.date_shift_days(i.to_string());
            assert!((-3650..=-1).contains(&d));
        }
    }

    #[test]
    fn local_code_pseudonyms_are_keyed_by_scheme_and_value_and_fit_their_vr() {
        let s = Secret::new("k");
        assert_eq!(s.code_value(b"99LOCAL", b"A1", 10), s.code_value(b"99LOCAL", b"A1", 10));
        assert_ne!(s.code_value(b"99LOCAL", b"A1", 10), s.code_value(b"99OTHER", b"A1", 10));
        assert_ne!(s.code_value(b"99LOCAL", b"A1", 10), s.code_value(b"99LOCA", b"LA1", 10));
        assert_ne!(
            s.code_value(b"99LOCAL", b"A1", 10),
            Secret::new("k2").code_value(b"99LOCAL", b"A1", 10)
        );
        assert_eq!(s.code_value(b"L", b"X", 32).len(), 32);
        let d = s.coding_scheme("99LOCAL");
        assert!(d.starts_with("99ALPES") && d.len() == 16, "{d}");
    }

    #[test]
    fn each_namespace_has_its_own_stable_pseudonyms() {
        let s = Secret::new("k");
        let (a, b) = (s.scoped("provider-a"), s.scoped("provider-b"));
        assert_eq!(a.uid("1.2.3"), s.scoped("provider-a").uid("1.2.3"), "stable");
        assert_ne!(a.uid("1.2.3"), b.uid("1.2.3"));
        assert_ne!(a.uid("1.2.3"), s.uid("1.2.3"));
        assert_ne!(a.patient_id("P1"), b.patient_id("P1"));
        assert_ne!(s.scoped("ab").uid("1"), s.scoped("a").scoped("b").uid("1"));
    }

    #[test]
    fn the_secret_does_not_debug_print() {
        assert_eq!(format!("{:?}", Secret::new("hunter2")), "Secret(..)");
    }
}
