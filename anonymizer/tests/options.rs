//! Each PS3.15 option changes exactly what it should, and the method codes record it.

mod common;

use alpes_anonymizer::dataset::{DataSet, Element, Vr};
use alpes_anonymizer::{anonymize, Options};

const SC: &str = "1.2.840.10008.5.1.4.1.1.7";

fn input() -> Vec<u8> {
    let mut ds = DataSet::default();
    for (tag, vr, v) in [
        (0x0008_0016u32, Vr::UI, SC),
        (0x0008_0018, Vr::UI, "1.2.826.0.1.3680043.2.1125.5.1"),
        (0x0008_0020, Vr::DA, "20200115"),
        (0x0008_0080, Vr::LO, "PHIINSTITUTION GENERAL"),
        (0x0008_1010, Vr::SH, "STATION7"),
        (0x0010_0010, Vr::PN, "DOE^JANE"),
        (0x0010_0020, Vr::LO, "MRN12345"),
        (0x0010_0040, Vr::CS, "F"),
        (0x0010_1010, Vr::AS, "093Y"),
        (0x0018_1000, Vr::LO, "SN-998877"),
        (0x0020_000D, Vr::UI, "1.2.826.0.1.3680043.2.1125.5.2"),
        (0x0019_0010, Vr::LO, "SIEMENS MR HEADER"),
        (0x0019_100C, Vr::IS, "1000"),
        (0x0019_1008, Vr::LO, "PRIVATE PHI"),
    ] {
        ds.put(Element::text(tag, vr, v));
    }
    common::part10(&ds, SC)
}

fn run(options: Options) -> (Vec<u8>, Vec<String>) {
    let mut cfg = common::config();
    cfg.options = options;
    let out = anonymize(&input(), &cfg).expect("anonymize");
    let codes = common::with_output(&out.bytes, |ds| {
        let Some(alpes_anonymizer::dataset::Value::Sequence(items)) = ds.get(0x0012_0064).map(|e| &e.value) else {
            panic!("no method codes")
        };
        items.iter().map(|i| i.text(0x0008_0100).unwrap_or_default().to_owned()).collect()
    });
    (out.bytes, codes)
}

fn text(bytes: &[u8], tag: u32) -> Option<String> {
    common::with_output(bytes, |ds| ds.text(tag).map(str::to_owned))
}

#[test]
fn without_retain_options_identity_dates_and_private_data_go() {
    let (out, codes) = run(Options::default());
    assert_eq!(text(&out, 0x0008_0020).as_deref(), Some(""), "Study Date is Z");
    // X/Z/D, and Type 3 in Secondary Capture's General Equipment: removed.
    assert!(text(&out, 0x0008_1010).is_none(), "Station Name");
    assert!(text(&out, 0x0018_1000).is_none(), "Device Serial Number");
    assert!(text(&out, 0x0019_100C).is_none() && text(&out, 0x0019_0010).is_none());
    assert!(text(&out, 0x0010_1010).is_none(), "Patient's Age is X");
    assert_eq!(codes, ["113100", "113101", "113103", "113104", "113105"]);
}

#[test]
fn retain_safe_private_keeps_only_listed_private_attributes_and_their_creator() {
    let mut o = Options::default();
    o.retain("safe-private");
    let (out, codes) = run(o);
    assert_eq!(text(&out, 0x0019_100C).as_deref(), Some("1000"));
    assert_eq!(text(&out, 0x0019_0010).as_deref(), Some("SIEMENS MR HEADER"));
    assert!(text(&out, 0x0019_1008).is_none(), "unlisted private attribute kept");
    assert!(codes.contains(&"113111".to_owned()));
}

#[test]
fn retain_device_and_institution_identity_keep_those_attributes() {
    let mut o = Options::default();
    o.retain("device-identity");
    o.retain("institution-identity");
    let (out, codes) = run(o);
    assert_eq!(text(&out, 0x0008_1010).as_deref(), Some("STATION7"));
    assert_eq!(text(&out, 0x0018_1000).as_deref(), Some("SN-998877"));
    assert_eq!(text(&out, 0x0008_0080).as_deref(), Some("PHIINSTITUTION GENERAL"));
    assert!(codes.contains(&"113109".to_owned()) && codes.contains(&"113112".to_owned()));
}

#[test]
fn retain_patient_characteristics_keeps_sex_and_age_as_the_table_says() {
    let mut o = Options::default();
    o.retain("patient-characteristics");
    let (out, codes) = run(o);
    assert_eq!(text(&out, 0x0010_0040).as_deref(), Some("F"));
    // Patient's Age is K under this option in Table E.1-1 (no HIPAA-style capping is applied).
    assert_eq!(text(&out, 0x0010_1010).as_deref(), Some("093Y"));
    assert!(codes.contains(&"113108".to_owned()));
}

#[test]
fn full_dates_keep_dates_and_retain_uids_keeps_uids() {
    let mut o = Options::default();
    o.retain("full-dates");
    o.retain("uids");
    let (out, codes) = run(o);
    assert_eq!(text(&out, 0x0008_0020).as_deref(), Some("20200115"));
    assert_eq!(text(&out, 0x0020_000D).as_deref(), Some("1.2.826.0.1.3680043.2.1125.5.2"));
    assert_eq!(text(&out, 0x0028_0303).as_deref(), Some("UNMODIFIED"));
    assert!(codes.contains(&"113106".to_owned()) && codes.contains(&"113110".to_owned()));
}

#[test]
fn pseudonyms_replace_patient_name_and_id_under_every_option() {
    let mut o = Options::default();
    for name in [
        "safe-private",
        "uids",
        "device-identity",
        "institution-identity",
        "patient-characteristics",
        "full-dates",
    ] {
        o.retain(name);
    }
    let (out, _) = run(o);
    let id = text(&out, 0x0010_0020).unwrap_or_default();
    let name = text(&out, 0x0010_0010).unwrap_or_default();
    assert!(id.starts_with("ALPES-") && !id.contains("MRN12345"), "{id}");
    assert!(name.starts_with("ALPES^") && !name.contains("DOE"), "{name}");
}

#[test]
fn png_and_jpeg_inputs_lose_their_metadata_through_the_engine_entry_point() {
    // A PNG with a tEXt chunk carrying PHI.
    let mut png_bytes = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut png_bytes, 4, 4);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        enc.add_text_chunk("Comment".into(), "PATIENT ZYXWVPHINAME".into())
            .expect("text chunk");
        let mut w = enc.write_header().expect("header");
        w.write_image_data(&[200u8; 16]).expect("data");
    }
    assert!(common::contains(&png_bytes, b"ZYXWVPHINAME"));
    let mut cfg = common::config();
    cfg.regions = vec![alpes_anonymizer::Region { x: 0, y: 0, w: 2, h: 2 }];
    let out = anonymize(&png_bytes, &cfg).expect("png");
    assert!(!common::contains(&out.bytes, b"ZYXWVPHINAME"));
    assert_eq!(out.report.burned_area, 4);
    assert!(out.report.metadata_removed >= 1);
    assert_eq!(serde_json::to_value(&out.report).expect("json")["format"], "png");
}
