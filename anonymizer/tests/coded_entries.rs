//! Coded entries: codes of standard coding schemes are kept exactly; codes of private or local
//! schemes get keyed pseudonyms for their values and designator, and their meaning is cleaned.

mod common;

use alpes_anonymizer::clean::clean_text;
use alpes_anonymizer::dataset::{DataSet, Element, Value, Vr};
use alpes_anonymizer::{anonymize, Options, Secret};

const SC: &str = "1.2.840.10008.5.1.4.1.1.7";
const CODE_VALUE: u32 = 0x0008_0100;
const DESIGNATOR: u32 = 0x0008_0102;
const VERSION: u32 = 0x0008_0103;
const MEANING: u32 = 0x0008_0104;
const LONG_CODE_VALUE: u32 = 0x0008_0119;
const CONTENT: u32 = 0x0040_A730;
const CONCEPT_NAME: u32 = 0x0040_A043;
const CONCEPT_CODE: u32 = 0x0040_A168;
const ANATOMIC_REGION: u32 = 0x0008_2218;

const LOCAL_MEANING: &str = "CT HEAD tumour board ZYXWVPHINAME MRN 12345678";

fn item(fields: &[(u32, Vr, &str)]) -> DataSet<'static> {
    let mut ds = DataSet::default();
    for (tag, vr, v) in fields {
        ds.put(Element::text(*tag, *vr, v));
    }
    ds
}

fn sequence(tag: u32, items: Vec<DataSet<'static>>) -> Element<'static> {
    Element {
        tag,
        vr: Vr::SQ,
        value: Value::Sequence(items),
    }
}

fn sct_head() -> DataSet<'static> {
    item(&[
        (CODE_VALUE, Vr::SH, "69536005"),
        (DESIGNATOR, Vr::SH, "SCT"),
        (MEANING, Vr::LO, "Head"),
    ])
}

fn dcm_finding() -> DataSet<'static> {
    item(&[
        (CODE_VALUE, Vr::SH, "121071"),
        (DESIGNATOR, Vr::SH, "DCM"),
        (MEANING, Vr::LO, "Finding"),
    ])
}

fn local_code() -> DataSet<'static> {
    item(&[
        (CODE_VALUE, Vr::SH, "ZYXWVPHI0317"),
        (DESIGNATOR, Vr::SH, "99STMARY"),
        (VERSION, Vr::SH, "ZYXWVPHINAME 2"),
        (MEANING, Vr::LO, LOCAL_MEANING),
    ])
}

/// A code with no designator at all, and a value too long for Code Value.
fn unnamed_scheme_code() -> DataSet<'static> {
    item(&[
        (LONG_CODE_VALUE, Vr::UC, "ZYXWVPHINAME-19650312-PHIID98765"),
        (MEANING, Vr::LO, "ZYXWVPHINAME"),
    ])
}

/// An image whose anatomic region is a standard code, with an SR-style content item nested below
/// it whose concept name is a local code, and a second content item with a standard concept name,
/// the same local code as its value, and a code that names no scheme.
fn input() -> Vec<u8> {
    let mut ds = DataSet::default();
    ds.put(Element::text(0x0008_0016, Vr::UI, SC));
    ds.put(Element::text(0x0008_0018, Vr::UI, "1.2.826.0.1.3680043.2.1125.7.1"));
    ds.put(sequence(ANATOMIC_REGION, vec![sct_head()]));
    let mut first = item(&[(0x0040_A010, Vr::CS, "CONTAINS"), (0x0040_A040, Vr::CS, "CODE")]);
    first.put(sequence(CONCEPT_NAME, vec![local_code()]));
    first.put(sequence(CONCEPT_CODE, vec![sct_head()]));
    let mut second = item(&[(0x0040_A010, Vr::CS, "CONTAINS"), (0x0040_A040, Vr::CS, "CODE")]);
    second.put(sequence(CONCEPT_NAME, vec![dcm_finding()]));
    second.put(sequence(CONCEPT_CODE, vec![local_code(), unnamed_scheme_code()]));
    ds.put(sequence(CONTENT, vec![first, second]));
    common::part10(&ds, SC)
}

fn run(options: Options) -> Vec<u8> {
    let mut cfg = common::config();
    cfg.options = options;
    anonymize(&input(), &cfg).expect("anonymize").bytes
}

/// The first item of a sequence.
fn first<'d, 'a>(ds: &'d DataSet<'a>, tag: u32) -> &'d DataSet<'a> {
    items(ds, tag).first().expect("an item")
}

fn items<'d, 'a>(ds: &'d DataSet<'a>, tag: u32) -> &'d [DataSet<'a>] {
    match ds.get(tag).map(|e| &e.value) {
        Some(Value::Sequence(items)) => items,
        other => panic!("({:04X},{:04X}) is not a sequence: {other:?}", tag >> 16, tag & 0xFFFF),
    }
}

fn assert_same_code(got: &DataSet<'_>, expected: &DataSet<'_>) {
    for tag in [CODE_VALUE, DESIGNATOR, MEANING] {
        assert_eq!(
            got.get(tag).and_then(|e| e.raw()),
            expected.get(tag).and_then(|e| e.raw()),
            "{tag:08X}"
        );
    }
}

fn assert_no_phi(bytes: &[u8]) {
    for phi in ["ZYXWVPHI", "PHIID98765", "12345678", "19650312", "STMARY"] {
        assert!(!common::contains(bytes, phi.as_bytes()), "{phi:?} survived");
    }
}

fn secret() -> Secret {
    Secret::new(b"alpes-test-secret-0123456789abcdef".to_vec())
}

#[test]
fn standard_codes_stay_exact_and_local_codes_are_pseudonymised_and_cleaned() {
    let out = run(Options::default());
    assert_no_phi(&out);
    let secret = secret();
    let value = format!("ALPES-{}", secret.code_value(b"99STMARY", b"ZYXWVPHI0317", 10));
    let designator = secret.coding_scheme("99STMARY");
    common::with_output(&out, |ds| {
        assert_same_code(first(ds, ANATOMIC_REGION), &sct_head());
        let content = items(ds, CONTENT);
        assert_eq!(content.len(), 2);
        assert_same_code(first(&content[0], CONCEPT_CODE), &sct_head());
        assert_same_code(first(&content[1], CONCEPT_NAME), &dcm_finding());
        // The same local code, at two places: one pseudonym, 16 characters as SH allows.
        for local in [first(&content[0], CONCEPT_NAME), &items(&content[1], CONCEPT_CODE)[0]] {
            assert_eq!(local.text(CODE_VALUE), Some(value.as_str()));
            assert_eq!(value.len(), 16);
            assert_eq!(local.text(DESIGNATOR), Some(designator.as_str()));
            assert_eq!(local.text(MEANING), Some(clean_text(LOCAL_MEANING).as_str()));
            assert_eq!(local.text(VERSION), Some("2"), "the version is cleaned too");
        }
        let unnamed = &items(&content[1], CONCEPT_CODE)[1];
        let long = unnamed.text(LONG_CODE_VALUE).expect("long code value");
        assert!(long.starts_with("ALPES-") && long.len() > 16, "{long}");
        assert!(unnamed.get(DESIGNATOR).is_none());
        assert_eq!(unnamed.text(MEANING), Some(""));
    });
    // Stateless: another run with the same secret gives the same bytes.
    assert_eq!(run(Options::default()), out);
}

#[test]
fn without_clean_descriptors_a_local_meaning_is_a_dummy_and_its_other_text_goes() {
    let out = run(Options::basic());
    assert_no_phi(&out);
    common::with_output(&out, |ds| {
        assert_same_code(first(ds, ANATOMIC_REGION), &sct_head());
        let content = items(ds, CONTENT);
        let local = first(&content[0], CONCEPT_NAME);
        assert!(local.text(CODE_VALUE).is_some_and(|v| v.starts_with("ALPES-")));
        assert_eq!(local.text(MEANING), Some("ANONYMIZED"));
        assert!(local.get(VERSION).is_none());
        assert_same_code(first(&content[1], CONCEPT_NAME), &dcm_finding());
    });
}
