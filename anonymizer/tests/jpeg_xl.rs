//! JPEG XL frames lose the boxes that carry text and keep their pixels, checked with libjxl's own
//! tools (Debian `libjxl-tools`): `cjxl` recompresses a JPEG that carries an Exif block and a
//! comment, as a modality or a scanner leaves them, into JPEG XL (the Exif goes into a
//! Brotli-compressed `brob` box, the comment into the JPEG reconstruction data, `jbrd`); the
//! engine de-identifies the instance; `djxl` decodes the frame before and after to the same
//! pixels. The tools come from `ALPES_CJXL` and `ALPES_DJXL` (`.ci/run` installs them); without
//! them the test is skipped, loudly, except under CI, where it fails, unless `.ci/run` could not
//! install them and said why in `ALPES_LIBJXL_MISSING`.

mod common;

use alpes_anonymizer::anonymize;
use alpes_anonymizer::dataset::{DataSet, Element, Value, Vr};
use alpes_anonymizer::jxl;
use std::borrow::Cow;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A JPEG baseline RGB secondary capture (dcmtk), whose frame is recompressed.
const FIXTURE: &str = "SC_rgb_jpeg_dcmtk.dcm";
const EXIF_TEXT: &[u8] = b"PHIJXLEXIF ZYXWVPHINAME";
const COM_TEXT: &[u8] = b"PHIJXLCOM ZYXWVPHINAME";

fn tools() -> Option<(PathBuf, PathBuf)> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    let (Some(cjxl), Some(djxl)) = (var("ALPES_CJXL"), var("ALPES_DJXL")) else {
        let missing = std::env::var("ALPES_LIBJXL_MISSING").unwrap_or_default();
        assert!(
            std::env::var_os("CI").is_none_or(|v| v.is_empty()) || !missing.is_empty(),
            "ALPES_CJXL or ALPES_DJXL is not set but CI is: .ci/run must install libjxl-tools and export them"
        );
        let msg = format!(
            "SKIPPED jpeg_xl: ALPES_CJXL and ALPES_DJXL are not set{}. To run it:\n    \
             apt-get install libjxl-tools\n    \
             ALPES_CJXL=/usr/bin/cjxl ALPES_DJXL=/usr/bin/djxl cargo test -p alpes-anonymizer --test jpeg_xl",
            if missing.is_empty() {
                String::new()
            } else {
                format!(" ({missing})")
            }
        );
        let _ = writeln!(std::io::stderr(), "\n*** {msg}\n");
        println!("\n*** {msg}\n");
        return None;
    };
    Some((cjxl, djxl))
}

/// A JPEG marker segment.
fn segment(marker: u8, body: &[u8]) -> Vec<u8> {
    let mut s = vec![0xFF, marker];
    s.extend_from_slice(&(body.len() as u16 + 2).to_be_bytes());
    s.extend_from_slice(body);
    s
}

/// The single frame of a dataset, its fragments joined.
fn frame_of(ds: &DataSet<'_>) -> Vec<u8> {
    let Some(Value::Encapsulated { fragments, .. }) = ds.get(0x7FE0_0010).map(|e| &e.value) else {
        panic!("not encapsulated")
    };
    fragments.concat()
}

/// The types of a JPEG XL container's boxes (the pad byte of an odd fragment is not one).
fn box_types(frame: &[u8]) -> Vec<[u8; 4]> {
    let mut kinds = Vec::new();
    let mut pos = 0;
    while pos + 8 <= frame.len() {
        let len = u32::from_be_bytes(frame[pos..pos + 4].try_into().expect("length")) as usize;
        assert!(len >= 8, "explicit box lengths");
        kinds.push(frame[pos + 4..pos + 8].try_into().expect("type"));
        pos += len;
    }
    kinds
}

fn run(tool: &Path, args: &[&Path]) {
    let out = Command::new(tool).args(args).output().expect("run a libjxl tool");
    assert!(
        out.status.success(),
        "{} {args:?}: {}",
        tool.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_jpeg_xl_recompression_loses_its_exif_and_comment_and_decodes_to_the_same_pixels() {
    let Some((cjxl, djxl)) = tools() else { return };
    let dir = tempfile::tempdir().expect("tmp");
    let at = |name: &str| dir.path().join(name);

    // The fixture's JPEG with an Exif block and a comment after its SOI, made JPEG XL by cjxl.
    let input = std::fs::read(common::fixtures().join(FIXTURE)).expect("read");
    let (mut ds, _) = common::parse_file(&input);
    let jpeg = frame_of(&ds);
    let end = jpeg.windows(2).rposition(|w| w == [0xFF, 0xD9]).expect("EOI") + 2;
    let mut exif = b"Exif\0\0MM\0\x2a\0\0\0\x08\0\0".to_vec();
    exif.extend_from_slice(EXIF_TEXT);
    let mut planted = jpeg[..2].to_vec();
    planted.extend(segment(0xE1, &exif));
    planted.extend(segment(0xFE, COM_TEXT));
    planted.extend_from_slice(&jpeg[2..end]);
    std::fs::write(at("in.jpg"), &planted).expect("write");
    run(&cjxl, &[&at("in.jpg"), &at("in.jxl"), Path::new("--lossless_jpeg=1")]);
    let frame = std::fs::read(at("in.jxl")).expect("cjxl output");
    let kinds = box_types(&frame);
    assert!(kinds.contains(b"jbrd") && kinds.contains(b"brob"), "{kinds:?}");
    assert!(
        common::contains(&frame, COM_TEXT),
        "cjxl keeps the comment for the JPEG it can rebuild"
    );
    ds.put(Element {
        tag: 0x7FE0_0010,
        vr: Vr::OB,
        value: Value::Encapsulated {
            offset_table: Cow::Owned(Vec::new()),
            fragments: vec![Cow::Owned(frame.clone())],
        },
    });
    let instance = common::part10_in(&ds, jxl::RECOMPRESSION);

    let out = anonymize(&instance, &common::config()).expect("anonymize");
    assert_eq!(out.report.transfer_syntax_out, jxl::JPEG_XL, "no JPEG can be rebuilt from it");
    assert!(out.report.metadata_removed >= 2, "{}", out.report.metadata_removed);
    assert!(!common::contains(&out.bytes, b"PHIJXL"), "text survived");
    assert!(!common::contains(&out.bytes, b"ZYXWVPHINAME"), "text survived");
    let cleaned = common::with_output(&out.bytes, frame_of);
    let kinds = box_types(&cleaned);
    assert!(
        kinds
            .iter()
            .all(|k| [*b"JXL ", *b"ftyp", *b"jxlp", *b"jxlc", *b"jxll", *b"jxli"].contains(k)),
        "{kinds:?}"
    );

    // libjxl decodes both frames to the same pixels.
    std::fs::write(at("out.jxl"), &cleaned).expect("write");
    run(&djxl, &[&at("in.jxl"), &at("in.ppm")]);
    run(&djxl, &[&at("out.jxl"), &at("out.ppm")]);
    let (before, after) = (
        std::fs::read(at("in.ppm")).expect("ppm"),
        std::fs::read(at("out.ppm")).expect("ppm"),
    );
    assert!(before.len() > 100 * 100 * 3, "a 100 × 100 RGB image");
    assert!(before == after, "the pixels changed");
}
