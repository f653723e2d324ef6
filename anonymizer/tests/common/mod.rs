//! Helpers shared by the integration tests: fixtures, PHI planting and tree walks.
#![allow(dead_code)]

use alpes_anonymizer::dataset::{DataSet, Element, Value, Vr};
use alpes_anonymizer::{parse, write, Config, Secret};
use std::path::PathBuf;

/// The fixtures directory (real DICOM files from pydicom's test set, MIT; see LICENSE-pydicom.txt).
pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("fixtures")
        .join("dicom")
}

/// Every `.dcm` fixture, sorted by name.
pub fn corpus() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(fixtures())
        .expect("fixtures dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "dcm"))
        .collect();
    files.sort();
    files
}

/// A config with a fixed test secret and the strictest default profile.
pub fn config() -> Config {
    Config::new(Secret::new(b"alpes-test-secret-0123456789abcdef".to_vec()))
}

/// PHI strings planted by [`plant_phi`].
pub const PHI: &[&str] = &[
    "ZYXWVPHINAME",
    "PHIID98765",
    "18990317",
    "221B PHIADDR STREET",
    "PHIINSTITUTION GENERAL",
    "PHIREFERRING^DOCTOR",
    "PHIOPERATOR^NURSE",
    "PHIACC12345",
    "PHICOMMENT FREETEXT",
    "PHICODE0317",
    "99PHISCHEME",
    "PHICODEMEANING",
];

fn text(tag: u32, vr: Vr, s: &str) -> Element<'static> {
    Element::text(tag, vr, s)
}

/// The planted attributes for one dataset level.
fn phi_elements() -> Vec<Element<'static>> {
    vec![
        text(0x0010_0010, Vr::PN, "ZYXWVPHINAME^JOHN"),
        text(0x0010_0020, Vr::LO, "PHIID98765"),
        text(0x0010_0030, Vr::DA, "18990317"),
        text(0x0010_1040, Vr::LO, "221B PHIADDR STREET"),
        text(0x0008_0080, Vr::LO, "PHIINSTITUTION GENERAL"),
        text(0x0008_0090, Vr::PN, "PHIREFERRING^DOCTOR"),
        text(0x0008_1070, Vr::PN, "PHIOPERATOR^NURSE"),
        text(0x0008_0050, Vr::SH, "PHIACC12345"),
        text(0x0020_4000, Vr::LT, "PHICOMMENT FREETEXT about ZYXWVPHINAME"),
        // Not in Table E.1-1: narrative text the profile must still catch.
        text(0x0040_A160, Vr::UT, "PHICOMMENT FREETEXT by ZYXWVPHINAME"),
        // A coded entry of a local coding scheme, typed at the site.
        Element {
            tag: 0x0040_A043,
            vr: Vr::SQ,
            value: Value::Sequence(vec![item(vec![
                text(0x0008_0100, Vr::SH, "PHICODE0317"),
                text(0x0008_0102, Vr::SH, "99PHISCHEME"),
                text(0x0008_0104, Vr::LO, "PHICODEMEANING for ZYXWVPHINAME"),
            ])]),
        },
    ]
}

fn item(elements: Vec<Element<'static>>) -> DataSet<'static> {
    let mut ds = DataSet::default();
    for e in elements {
        ds.put(e);
    }
    ds
}

/// Re-writes `input` with PHI planted at the top level, two levels deep in
/// kept sequences (Referenced Image Sequence → Content Sequence) and in a
/// private element. Returns None if the file cannot be parsed at all.
pub fn plant_phi(input: &[u8]) -> Option<Vec<u8>> {
    let layout = parse::layout(input).ok()?;
    let ts = layout.transfer_syntax.clone();
    let body = &input[layout.dataset_start..];
    let inflated;
    let bytes = if ts.deflated {
        inflated = parse::inflate(body, 1 << 30).ok()?;
        &inflated[..]
    } else {
        body
    };
    let mut ds = parse::dataset(bytes, ts.encoding, 32).ok()?;
    let be = ds.big_endian;
    for e in phi_elements() {
        ds.put(e);
    }
    let mut content = phi_elements();
    content.push(text(0x0040_A040, Vr::CS, "TEXT"));
    content.push(text(0x0040_A123, Vr::PN, "ZYXWVPHINAME^OBSERVER"));
    content.push(text(0x0040_A160, Vr::UT, "PHICOMMENT FREETEXT seen by PHIREFERRING^DOCTOR"));
    let mut referenced = phi_elements();
    referenced.push(text(0x0008_1150, Vr::UI, "1.2.840.10008.5.1.4.1.1.7"));
    referenced.push(text(0x0008_1155, Vr::UI, "1.2.826.0.1.3680043.2.1125.99.1"));
    referenced.push(Element {
        tag: 0x0040_A730,
        vr: Vr::SQ,
        value: Value::Sequence(vec![item(content)]),
    });
    ds.put(Element {
        tag: 0x0008_1140,
        vr: Vr::SQ,
        value: Value::Sequence(vec![item(referenced)]),
    });
    ds.put(text(0x0009_0010, Vr::LO, "PHI PRIVATE CREATOR"));
    ds.put(text(0x0009_1001, Vr::LO, "ZYXWVPHINAME PHIID98765"));
    ds.big_endian = be;
    fix_endianness(&mut ds, be);
    let sop_class = ds.text(0x0008_0016).unwrap_or("1.2.840.10008.5.1.4.1.1.7").to_owned();
    let sop_instance = ds.text(0x0008_0018).unwrap_or("1.2.3.4").to_owned();
    let mut w = write::part10(
        &ds,
        &write::Meta {
            sop_class: &sop_class,
            sop_instance: &sop_instance,
            transfer_syntax: out_ts(&ts.uid),
        },
        ts.uid != "1.2.840.10008.1.2",
        input.len(),
    );
    if ts.deflated {
        write::deflate_dataset(&mut w);
    }
    Some(w.bytes)
}

fn out_ts(uid: &str) -> &str {
    if uid == "1.2.840.10008.1.2.2" {
        "1.2.840.10008.1.2.1"
    } else {
        uid
    }
}

fn fix_endianness(ds: &mut DataSet<'_>, be: bool) {
    ds.big_endian = be;
    for e in &mut ds.elements {
        if let Value::Sequence(items) = &mut e.value {
            for it in items {
                fix_endianness(it, be);
            }
        }
    }
}

/// Calls `f` on every primitive element at every depth.
pub fn walk<'a>(ds: &'a DataSet<'a>, f: &mut dyn FnMut(&Element<'a>)) {
    for e in &ds.elements {
        f(e);
        if let Value::Sequence(items) = &e.value {
            for it in items {
                walk(it, f);
            }
        }
    }
}

/// Parses a Part 10 output of the engine (inflating if needed) and hands the dataset to `f`.
pub fn with_output<R>(bytes: &[u8], f: impl FnOnce(&DataSet<'_>) -> R) -> R {
    let layout = parse::layout(bytes).expect("output layout");
    let body = &bytes[layout.dataset_start..];
    let inflated;
    let data = if layout.transfer_syntax.deflated {
        inflated = parse::inflate(body, 1 << 30).expect("inflate output");
        &inflated[..]
    } else {
        body
    };
    let ds = parse::dataset(data, layout.transfer_syntax.encoding, 32).expect("output parses");
    f(&ds)
}

/// Finds `needle` in `haystack`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Writes a dataset as explicit VR little endian Part 10, for building test inputs.
pub fn part10(ds: &DataSet<'_>, sop_class: &str) -> Vec<u8> {
    let sop_instance = ds.text(0x0008_0018).unwrap_or("1.2.3").to_owned();
    write::part10(
        ds,
        &write::Meta {
            sop_class,
            sop_instance: &sop_instance,
            transfer_syntax: alpes_anonymizer::syntax::EXPLICIT_LE,
        },
        true,
        0,
    )
    .bytes
}

/// Every planted PHI string (first token) found in any primitive element of an output.
pub fn phi_in_elements(bytes: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    with_output(bytes, |ds| {
        walk(ds, &mut |e| {
            if let Value::Bytes(b) = &e.value {
                let s = String::from_utf8_lossy(b);
                for phi in PHI {
                    let token = phi.split(['^', ' ']).next().unwrap_or(phi);
                    if s.contains(token) {
                        found.push(format!("{phi:?} in element {:08X}", e.tag));
                    }
                }
            }
            if e.group() % 2 == 1 {
                found.push(format!("private element {:08X} kept", e.tag));
            }
        });
    });
    found
}

/// The decoded pixel data of a Part 10 file (dicom-pixeldata, the reference decoder).
pub fn decode_pixels(bytes: &[u8]) -> Vec<u8> {
    use dicom_pixeldata::PixelDecoder;
    let tmp = tempfile::NamedTempFile::new().expect("tmp");
    std::fs::write(tmp.path(), bytes).expect("write");
    let obj = dicom_object::open_file(tmp.path()).expect("open");
    obj.decode_pixel_data().expect("decode").data().to_vec()
}

/// Parses a fixture (or any Part 10 input) into its dataset and transfer syntax UID.
pub fn parse_file(input: &[u8]) -> (DataSet<'_>, String) {
    let layout = parse::layout(input).expect("layout");
    let ds = parse::dataset(&input[layout.dataset_start..], layout.transfer_syntax.encoding, 32).expect("parse");
    (ds, layout.transfer_syntax.uid)
}

/// Writes a dataset as Part 10 in the given (little endian, explicit VR) transfer syntax.
pub fn part10_in(ds: &DataSet<'_>, transfer_syntax: &str) -> Vec<u8> {
    let sop_class = ds.text(0x0008_0016).unwrap_or("1.2.840.10008.5.1.4.1.1.7").to_owned();
    let sop_instance = ds.text(0x0008_0018).unwrap_or("1.2.3").to_owned();
    write::part10(
        ds,
        &write::Meta {
            sop_class: &sop_class,
            sop_instance: &sop_instance,
            transfer_syntax,
        },
        true,
        0,
    )
    .bytes
}
