//! Pseudonyms are consistent across instances and processes, and keyed by the secret.

mod common;

use alpes_anonymizer::dataset::{Element, Vr};
use alpes_anonymizer::{anonymize, parse, write, Config, Secret};

/// A second instance of the same study: same StudyInstanceUID, new SOPInstanceUID and series.
fn second_instance(input: &[u8]) -> Vec<u8> {
    let layout = parse::layout(input).expect("layout");
    let mut ds = parse::dataset(&input[layout.dataset_start..], layout.transfer_syntax.encoding, 32).expect("parse");
    ds.put(Element::text(0x0008_0018, Vr::UI, "1.2.826.0.1.3680043.2.1125.7.7.7"));
    ds.put(Element::text(0x0020_000E, Vr::UI, "1.2.826.0.1.3680043.2.1125.7.7.8"));
    let sop_class = ds.text(0x0008_0016).expect("class").to_owned();
    write::part10(
        &ds,
        &write::Meta {
            sop_class: &sop_class,
            sop_instance: "1.2.826.0.1.3680043.2.1125.7.7.7",
            transfer_syntax: &layout.transfer_syntax.uid,
        },
        true,
        input.len(),
    )
    .bytes
}

fn text(bytes: &[u8], tag: u32) -> String {
    common::with_output(bytes, |ds| ds.text(tag).unwrap_or_default().to_owned())
}

#[test]
fn two_instances_of_one_study_get_the_same_new_study_uid_and_different_instance_uids() {
    let cfg = common::config();
    let a = std::fs::read(common::fixtures().join("MR_small.dcm")).expect("read");
    let b = second_instance(&a);
    let (oa, ob) = (anonymize(&a, &cfg).expect("a"), anonymize(&b, &cfg).expect("b"));
    let study_a = text(&oa.bytes, 0x0020_000D);
    assert!(study_a.starts_with("2.25."));
    assert_eq!(study_a, text(&ob.bytes, 0x0020_000D));
    assert_ne!(text(&oa.bytes, 0x0008_0018), text(&ob.bytes, 0x0008_0018));
    assert_eq!(text(&oa.bytes, 0x0010_0020), text(&ob.bytes, 0x0010_0020));
    assert_eq!(text(&oa.bytes, 0x0010_0010), text(&ob.bytes, 0x0010_0010));
}

#[test]
fn a_different_secret_gives_a_different_study_uid() {
    let a = std::fs::read(common::fixtures().join("MR_small.dcm")).expect("read");
    let one = anonymize(&a, &common::config()).expect("one");
    let other = anonymize(&a, &Config::new(Secret::new(b"another-secret-of-enough-length".to_vec()))).expect("other");
    assert_ne!(text(&one.bytes, 0x0020_000D), text(&other.bytes, 0x0020_000D));
    assert_ne!(text(&one.bytes, 0x0010_0020), text(&other.bytes, 0x0010_0020));
}

#[test]
fn the_same_input_and_secret_give_byte_identical_output() {
    let a = std::fs::read(common::fixtures().join("CT_small.dcm")).expect("read");
    let cfg = common::config();
    assert_eq!(anonymize(&a, &cfg).expect("1").bytes, anonymize(&a, &cfg).expect("2").bytes);
}

#[test]
fn modified_dates_shift_every_date_of_a_patient_by_the_same_days() {
    let a = std::fs::read(common::fixtures().join("CT_small.dcm")).expect("read");
    let mut cfg = common::config();
    cfg.options.retain("modified-dates");
    let out = anonymize(&a, &cfg).expect("anonymize");
    let days = |s: &str| -> i64 {
        let (y, m, d): (i64, i64, i64) = (
            s[0..4].parse().expect("y"),
            s[4..6].parse().expect("m"),
            s[6..8].parse().expect("d"),
        );
        // days from civil, enough for differences
        let y2 = if m <= 2 { y - 1 } else { y };
        let era = y2.div_euclid(400);
        let yoe = y2 - era * 400;
        let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
        era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy
    };
    let layout = parse::layout(&a).expect("layout");
    let orig = parse::dataset(&a[layout.dataset_start..], layout.transfer_syntax.encoding, 32).expect("parse");
    let mut shifts = Vec::new();
    common::with_output(&out.bytes, |ds| {
        for tag in [0x0008_0020u32, 0x0008_0021, 0x0008_0022, 0x0008_0023] {
            if let (Some(o), Some(n)) = (orig.text(tag), ds.text(tag)) {
                if o.len() == 8 {
                    shifts.push(days(n) - days(o));
                }
            }
        }
        assert_eq!(ds.text(0x0028_0303), Some("MODIFIED"));
    });
    assert!(!shifts.is_empty());
    assert!(shifts.iter().all(|s| *s == shifts[0] && *s < 0), "{shifts:?}");
}

#[test]
fn latin1_patient_ids_that_differ_get_different_pseudonyms() {
    let dir = common::fixtures().join("../review");
    let cfg = common::config();
    let a = anonymize(&std::fs::read(dir.join("t18_latin1_a.dcm")).expect("a"), &cfg).expect("a");
    let b = anonymize(&std::fs::read(dir.join("t18_latin1_b.dcm")).expect("b"), &cfg).expect("b");
    assert_ne!(text(&a.bytes, 0x0010_0020), text(&b.bytes, 0x0010_0020));
    assert!(a.report.notes.iter().all(|n| !n.contains("no PatientID")));
}
