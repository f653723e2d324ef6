//! The PS3.3 attribute types the engine judges by, and what they change in its
//! output: compound codes by type, required attributes kept valid, overlays
//! removed whole. `iod_conformance.rs` checks whole outputs with dciodvfy.

mod common;

use alpes_anonymizer::dataset::{DataSet, Element, Value, Vr};
use alpes_anonymizer::iod::{self, Iod, Requirement};
use alpes_anonymizer::{anonymize, Options};
use std::path::PathBuf;

const CT: &str = "1.2.840.10008.5.1.4.1.1.2";
const ENHANCED_MR: &str = "1.2.840.10008.5.1.4.1.1.4.1";
const SEGMENTATION: &str = "1.2.840.10008.5.1.4.1.1.66.4";
const COMPREHENSIVE_SR: &str = "1.2.840.10008.5.1.4.1.1.88.33";

const SEGMENT_SEQUENCE: u32 = 0x0062_0002;
const PER_FRAME: u32 = 0x5200_9230;
const DERIVATION_IMAGE: u32 = 0x0008_9124;
const SOURCE_IMAGE: u32 = 0x0008_2112;
const CONTENT_SEQUENCE: u32 = 0x0040_A730;
const CONCEPT_NAME: u32 = 0x0040_A043;
const CODE_MEANING: u32 = 0x0008_0104;

fn iod(uid: &str) -> Iod {
    Iod::for_sop_class(uid).unwrap_or_else(|| panic!("{uid} in the tables"))
}

#[test]
fn types_are_the_standards_for_the_objects_iod_at_the_attributes_path() {
    let ct = iod(CT);
    assert_eq!(ct.name, "ct-image");
    assert_eq!(ct.requirement(&[], 0x0010_0010), Requirement::Type2, "Patient's Name");
    assert_eq!(ct.requirement(&[], 0x0008_0018), Requirement::Type1, "SOP Instance UID");
    assert_eq!(ct.requirement(&[], 0x0008_0080), Requirement::Optional, "Institution Name");
    assert_eq!(ct.requirement(&[], 0x0008_0021), Requirement::Optional, "Series Date");
    // An overlay in any of the 16 groups is the Overlay Plane module's (User in CT).
    assert_eq!(ct.requirement(&[], 0x6002_3000), Requirement::Type1, "Overlay Data");
    // Manufacturer's Model Name is Type 3 in General Equipment and Type 1 in Enhanced General Equipment.
    assert_eq!(ct.requirement(&[], 0x0008_1090), Requirement::Optional);
    assert_eq!(iod(ENHANCED_MR).requirement(&[], 0x0008_1090), Requirement::Type1);
    let seg = iod(SEGMENTATION);
    assert_eq!(
        seg.requirement(&[SEGMENT_SEQUENCE], 0x0062_0009),
        Requirement::Type1,
        "Segment Algorithm Name (1C)"
    );
    assert_eq!(seg.requirement(&[], 0x0062_0009), Requirement::Optional, "not at the top level");
    assert_eq!(seg.requirement(&[PER_FRAME, DERIVATION_IMAGE], SOURCE_IMAGE), Requirement::Type2);
    // SR content items nest to any depth and all have the root's attributes.
    let sr = iod(COMPREHENSIVE_SR);
    let deep = [CONTENT_SEQUENCE, CONTENT_SEQUENCE, CONTENT_SEQUENCE, CONCEPT_NAME];
    assert_eq!(sr.requirement(&deep, CODE_MEANING), Requirement::Type1);
    // What the tables do not describe is unknown, not optional.
    assert_eq!(ct.requirement(&[0x0009_1001], 0x0008_0100), Requirement::Unknown);
    assert!(Iod::for_sop_class("1.2.826.0.1.3680043.2.1125.99.1").is_none());
}

#[test]
fn the_tables_hold_every_sop_class_and_iod_and_what_they_leave_out_is_named() {
    let (modules, iods, sop_classes, unknown_keywords, missing_modules) = iod::tables();
    assert_eq!((modules, iods, sop_classes), (436, 175, 180));
    // Keywords dicom-rs's dictionary does not know (newer than it, or retired names).
    assert!(unknown_keywords.len() < 40, "{unknown_keywords:?}");
    // Waveform and real-time modules that highdicom's attribute table lacks.
    assert_eq!(missing_modules.len(), 9, "{missing_modules:?}");
}

/// `../shared/standard/ps3.3-iods/` beside the repository, where CI has it.
fn shared_tables() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/standard/ps3.3-iods");
    if dir.is_dir() {
        return Some(dir);
    }
    assert!(
        std::env::var_os("CI").is_none_or(|v| v.is_empty()),
        "CI runs with ../shared beside the repository, and {} is missing",
        dir.display()
    );
    None
}

#[test]
fn the_shipped_tables_are_the_shared_standards_byte_for_byte() {
    let Some(shared) = shared_tables() else {
        println!("SKIPPED: ../shared/standard/ps3.3-iods is not beside the repository");
        return;
    };
    let ours = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("standard/ps3.3-iods");
    for name in ["sop_class_iod_map.json", "iod_module_map.json", "module_attribute_map.json"] {
        let gz = std::fs::File::open(ours.join(format!("{name}.gz"))).expect("shipped table");
        let mut shipped = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(gz), &mut shipped).expect("gunzip");
        let original = std::fs::read(shared.join(name)).expect("shared table");
        assert!(shipped == original, "{name} differs from ../shared: copy it again (gzip -9 -n)");
    }
}

fn deidentified(name: &str, options: Options) -> (Vec<u8>, alpes_anonymizer::Report) {
    let input = std::fs::read(common::fixtures().join(name)).expect("fixture");
    let mut cfg = common::config();
    cfg.options = options;
    let out = anonymize(&input, &cfg).expect("anonymize");
    (out.bytes, out.report)
}

fn sequence_items<'a>(ds: &'a DataSet<'a>, tag: u32) -> &'a [DataSet<'a>] {
    match ds.get(tag).map(|e| &e.value) {
        Some(Value::Sequence(items)) => items,
        other => panic!("{tag:08X}: {other:?}"),
    }
}

#[test]
fn type_1_text_that_cleaning_empties_gets_a_dummy_and_a_type_2_reference_keeps_its_items() {
    let (out, report) = deidentified("liver_1frame.dcm", Options::default());
    assert_eq!(report.iod.as_deref(), Some("segmentation"));
    assert!(report.kept_for_iod >= 3, "{report:?}");
    common::with_output(&out, |ds| {
        // dcmqi's values ("https://github.com/fedorov/dcmqi.git", "0d533f1", "SlicerEditor")
        // are cleaned away, and the Type 1 attributes get the dummy instead of nothing.
        assert_eq!(ds.text(0x0008_1090), Some("ANONYMIZED"), "Manufacturer's Model Name");
        assert_eq!(ds.text(0x0018_1020), Some("ANONYMIZED"), "Software Versions");
        assert_eq!(sequence_items(ds, SEGMENT_SEQUENCE)[0].text(0x0062_0009), Some("ANONYMIZED"));
        // Source Image Sequence (X/Z/U*, Type 2 there) keeps its item, the UID replaced.
        let frame = &sequence_items(ds, PER_FRAME)[0];
        let derivation = &sequence_items(frame, DERIVATION_IMAGE)[0];
        let source = &sequence_items(derivation, SOURCE_IMAGE)[0];
        let uid = source.text(0x0008_1155).expect("Referenced SOP Instance UID");
        assert!(uid.starts_with("2.25."), "{uid}");
    });
}

#[test]
fn compound_codes_remove_what_the_iod_leaves_optional_and_empty_what_it_requires_empty() {
    let (out, report) = deidentified("CT_small.dcm", Options::default());
    assert_eq!(report.iod.as_deref(), Some("ct-image"));
    common::with_output(&out, |ds| {
        // X/Z/D, X/D, X/Z and X/Z/D attributes that CT leaves optional: removed, no dummy.
        for (tag, name) in [
            (0x0008_0080, "Institution Name"),
            (0x0008_0021, "Series Date"),
            (0x0008_0022, "Acquisition Date"),
            (0x0008_1010, "Station Name"),
        ] {
            assert!(ds.get(tag).is_none(), "{name} kept");
        }
        // Content Date (Z/D) is Type 2C in General Image: emptied, not dummied.
        assert_eq!(ds.text(0x0008_0023), Some(""), "Content Date");
    });
}

#[test]
fn an_overlay_whose_data_goes_goes_whole() {
    let (out, _) = deidentified("examples_overlay.dcm", Options::basic());
    common::with_output(&out, |ds| {
        let left: Vec<String> = ds
            .elements
            .iter()
            .filter(|e| e.tag >> 16 == 0x6000)
            .map(|e| format!("{:08X}", e.tag))
            .collect();
        assert!(left.is_empty(), "overlay attributes left without their data: {left:?}");
    });
}

#[test]
fn in_an_enhanced_mr_a_type_2_sequence_is_emptied_and_type_1_text_keeps_a_value() {
    // Acquisition Context Sequence (X/Z) is Type 2 in Enhanced MR: emptied, not removed.
    let mut ds = DataSet::default();
    ds.put(Element::text(0x0008_0016, Vr::UI, ENHANCED_MR));
    ds.put(Element::text(0x0008_0018, Vr::UI, "1.2.826.0.1.3680043.2.1125.7"));
    let mut item = DataSet::default();
    item.put(Element::text(0x0040_A160, Vr::UT, "PHI SCAN NOTE"));
    ds.put(Element {
        tag: 0x0040_0555,
        vr: Vr::SQ,
        value: Value::Sequence(vec![item]),
    });
    ds.put(Element::text(0x0008_1090, Vr::LO, "ST MARY SCANNER 7"));
    let input = common::part10(&ds, ENHANCED_MR);
    let mut cfg = common::config();
    // The Basic Profile: no Clean option keeps the sequence to clean it, and free text
    // outside Table E.1-1 is removed, so what keeps it is its type alone.
    cfg.options = Options::basic();
    let out = anonymize(&input, &cfg).expect("anonymize");
    assert_eq!(out.report.iod.as_deref(), Some("enhanced-mr-image"));
    common::with_output(&out.bytes, |res| {
        assert!(
            sequence_items(res, 0x0040_0555).is_empty(),
            "Acquisition Context Sequence emptied, kept"
        );
        assert_eq!(
            res.text(0x0008_1090),
            Some("ANONYMIZED"),
            "Type 1 text the profile removes gets the dummy"
        );
    });
}
