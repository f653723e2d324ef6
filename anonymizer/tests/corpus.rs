//! Every shared corpus file either anonymizes to valid Part 10 or fails with the expected typed error.

mod common;

use alpes_anonymizer::anonymize;
use std::collections::BTreeMap;

/// Files of the corpus that must fail, and the error code they must fail with.
fn expected_failures() -> BTreeMap<&'static str, &'static str> {
    BTreeMap::from([
        // The dataset ends inside the pixel data value.
        ("MR_truncated.dcm", "truncated"),
        // An RT Plan cut off in the middle of a sequence.
        ("rtplan_truncated.dcm", "truncated"),
    ])
}

#[test]
fn every_corpus_file_anonymizes_or_fails_with_its_expected_typed_error() {
    let cfg = common::config();
    let expected = expected_failures();
    let mut unexpected = Vec::new();
    for path in common::corpus() {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
        let input = std::fs::read(&path).expect("read fixture");
        let outcome = std::panic::catch_unwind(|| anonymize(&input, &cfg));
        match (outcome, expected.get(name.as_str())) {
            (Err(_), _) => unexpected.push(format!("{name}: PANIC")),
            (Ok(Ok(_)), Some(code)) => unexpected.push(format!("{name}: expected failure {code}, but it anonymized")),
            (Ok(Err(e)), Some(code)) if e.code() != *code => unexpected.push(format!("{name}: expected {code}, got {} ({e})", e.code())),
            (Ok(Err(e)), None) => unexpected.push(format!("{name}: unexpected failure {} ({e})", e.code())),
            (Ok(Ok(out)), None) => {
                let tmp = tempfile::NamedTempFile::new().expect("tmp");
                std::fs::write(tmp.path(), &out.bytes).expect("write");
                if let Err(e) = dicom_object::open_file(tmp.path()) {
                    unexpected.push(format!("{name}: output does not re-parse with dicom-object: {e}"));
                }
            }
            _ => {}
        }
    }
    assert!(unexpected.is_empty(), "{}", unexpected.join("\n"));
}

#[test]
fn outputs_record_the_deidentification_method_and_a_new_file_meta() {
    let cfg = common::config();
    let input = std::fs::read(common::fixtures().join("CT_small.dcm")).expect("read");
    let out = anonymize(&input, &cfg).expect("anonymize");
    let tmp = tempfile::NamedTempFile::new().expect("tmp");
    std::fs::write(tmp.path(), &out.bytes).expect("write");
    let obj = dicom_object::open_file(tmp.path()).expect("re-parse");
    let meta = obj.meta();
    let sop = obj
        .element_by_name("SOPInstanceUID")
        .expect("sop")
        .to_str()
        .expect("str")
        .trim_end_matches('\0')
        .to_owned();
    assert_eq!(meta.media_storage_sop_instance_uid(), sop);
    assert!(sop.starts_with("2.25."));
    assert_eq!(meta.implementation_class_uid(), alpes_anonymizer::write::IMPLEMENTATION_CLASS_UID);
    assert_eq!(
        meta.implementation_version_name.as_deref().map(str::trim),
        Some(alpes_anonymizer::write::IMPLEMENTATION_VERSION_NAME)
    );
    let s = |k: &str| obj.element_by_name(k).expect(k).to_str().expect("str").trim().to_owned();
    assert_eq!(s("PatientIdentityRemoved"), "YES");
    assert_eq!(s("LongitudinalTemporalInformationModified"), "REMOVED");
    let codes = obj.element_by_name("DeidentificationMethodCodeSequence").expect("codes");
    let values: Vec<String> = codes
        .items()
        .expect("items")
        .iter()
        .map(|i| i.element_by_name("CodeValue").expect("cv").to_str().expect("str").trim().to_owned())
        .collect();
    assert_eq!(values, vec!["113100", "113101", "113103", "113104", "113105"]);
}

#[test]
fn raw_datasets_and_big_endian_files_come_out_as_explicit_little_endian_part10() {
    let cfg = common::config();
    for (name, ts) in [
        ("ExplVR_BigEndNoMeta.dcm", "1.2.840.10008.1.2.1"),
        ("ExplVR_LitEndNoMeta.dcm", "1.2.840.10008.1.2.1"),
        ("no_meta.dcm", "1.2.840.10008.1.2.1"),
        ("no_meta_group_length.dcm", "1.2.840.10008.1.2"),
        ("MR_small_bigendian.dcm", "1.2.840.10008.1.2.1"),
        ("image_dfl.dcm", "1.2.840.10008.1.2.1.99"),
    ] {
        let input = std::fs::read(common::fixtures().join(name)).expect("read");
        let out = anonymize(&input, &cfg).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(out.report.transfer_syntax_out, ts, "{name}");
        assert_eq!(&out.bytes[128..132], b"DICM", "{name}");
    }
}

#[test]
fn the_report_carries_counts_and_syntaxes_but_no_values() {
    let cfg = common::config();
    let input = std::fs::read(common::fixtures().join("MR_small.dcm")).expect("read");
    let planted = common::plant_phi(&input).expect("plant");
    let out = anonymize(&planted, &cfg).expect("anonymize");
    let json = serde_json::to_string(&out.report).expect("json");
    for phi in common::PHI {
        assert!(!json.contains(phi), "{phi} in report");
    }
    assert!(out.report.uids_remapped > 0);
    assert!(json.contains("\"transfer_syntax_in\":\"1.2.840.10008.1.2.1\""));
    assert!(out.report.actions.values().sum::<u64>() > 10);
}
