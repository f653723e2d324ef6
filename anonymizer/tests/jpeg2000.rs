//! JPEG 2000 frames of encapsulated pixel data lose their free text (COM segments in the main and
//! tile-part headers, bytes after EOC, JP2 boxes other than the ones a reader needs) and still
//! decode to exactly the same pixels.

mod common;

use alpes_anonymizer::dataset::{DataSet, Element, Value, Vr};
use alpes_anonymizer::{anonymize, Region};
use std::borrow::Cow;

/// Every JPEG 2000 fixture: (file, encoder comment it carries, if any).
const FIXTURES: &[(&str, Option<&str>)] = &[
    ("693_J2KI.dcm", Some("Created by GDCM/OpenJPEG")),
    ("GDCMJ2K_TextGBR.dcm", None),
    ("J2K_pixelrep_mismatch.dcm", Some("Creator: JasPer")),
    ("JPEG2000.dcm", Some("Kakadu")),
    ("JPEG2000-embedded-sequence-delimiter.dcm", Some("Kakadu")),
    ("MR_small_jp2klossless.dcm", Some("Created by GDCM/OpenJPEG")),
    ("SC_rgb_gdcm_KY.dcm", Some("Created by GDCM/OpenJPEG")),
    ("examples_jpeg2k.dcm", Some("Kakadu")),
];

const PHI: &[u8] = b"ZYXWVPHINAME";

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// A COM marker segment holding Latin-1 text.
fn com(text: &[u8]) -> Vec<u8> {
    let mut s = vec![0xFF, 0x64];
    s.extend_from_slice(&(text.len() as u16 + 4).to_be_bytes());
    s.extend_from_slice(&[0, 1]);
    s.extend_from_slice(text);
    s
}

/// A JP2 box with an explicit length.
fn jp2_box(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut b = (body.len() as u32 + 8).to_be_bytes().to_vec();
    b.extend_from_slice(kind);
    b.extend_from_slice(body);
    b
}

/// The structure of a codestream, read strictly: every marker segment of the main header and of
/// each tile-part header, and the offset of each SOT. Panics if Psot does not lead from one
/// tile-part to the next and finally to EOC.
struct Codestream {
    /// (marker, offset) of every header segment, main and tile-part.
    segments: Vec<(u16, usize)>,
    /// Offsets of the SOT markers.
    tile_parts: Vec<usize>,
    /// Offset just past EOC.
    end: usize,
}

fn walk(cs: &[u8]) -> Codestream {
    assert_eq!(be16(cs, 0), 0xFF4F, "SOC");
    let mut segments = Vec::new();
    let mut pos = 2;
    while be16(cs, pos) != 0xFF90 {
        segments.push((be16(cs, pos), pos));
        pos += 2 + usize::from(be16(cs, pos + 2));
    }
    let mut tile_parts = Vec::new();
    while be16(cs, pos) == 0xFF90 {
        tile_parts.push(pos);
        let psot = be32(cs, pos + 6) as usize;
        assert_ne!(psot, 0, "fixtures give every tile-part its length");
        let mut at = pos + 12;
        while be16(cs, at) != 0xFF93 {
            segments.push((be16(cs, at), at));
            at += 2 + usize::from(be16(cs, at + 2));
        }
        assert!(at < pos + psot, "tile-part header runs past Psot");
        pos += psot;
    }
    assert_eq!(be16(cs, pos), 0xFFD9, "Psot leads to EOC");
    Codestream {
        segments,
        tile_parts,
        end: pos + 2,
    }
}

/// Plants PHI in a codestream: a COM right after SIZ, a COM in the header of tile-part `k` (its
/// Psot grown to match), and text after EOC.
fn plant_codestream(cs: &[u8], k: usize) -> Vec<u8> {
    let structure = walk(cs);
    let mut out = cs[..structure.end].to_vec();
    out.extend_from_slice(b"PHIJ2KTAIL ZYXWVPHINAME");
    let sot = structure.tile_parts[k];
    let tile_com = com(b"PHIJ2KTILE ZYXWVPHINAME");
    let psot = be32(&out, sot + 6) + tile_com.len() as u32;
    out[sot + 6..sot + 10].copy_from_slice(&psot.to_be_bytes());
    out.splice(sot + 12..sot + 12, tile_com);
    let siz_end = 4 + usize::from(be16(&out, 4));
    out.splice(siz_end..siz_end, com(b"PHIJ2KMAIN ZYXWVPHINAME"));
    out
}

/// Splits a JP2 file into its boxes: (type, content).
fn jp2_boxes(file: &[u8]) -> Vec<([u8; 4], Vec<u8>)> {
    let mut boxes = Vec::new();
    let mut pos = 0;
    while pos + 8 <= file.len() {
        let len = be32(file, pos) as usize;
        assert!(len >= 8, "the fixtures use explicit box lengths");
        let kind: [u8; 4] = file[pos + 4..pos + 8].try_into().expect("type");
        boxes.push((kind, file[pos + 8..pos + len].to_vec()));
        pos += len;
    }
    boxes
}

/// Plants PHI in a frame: in the codestream (see [`plant_codestream`]) and, for a JP2 file, in an
/// XML box after the codestream and a label box inside the header box.
fn plant_frame(frame: &[u8], k: usize) -> Vec<u8> {
    if frame.starts_with(&[0xFF, 0x4F]) {
        return plant_codestream(frame, k);
    }
    let mut out = Vec::new();
    for (kind, body) in jp2_boxes(frame) {
        match &kind {
            b"jp2c" => {
                out.extend(jp2_box(b"jp2c", &plant_codestream(&body, k)));
                out.extend(jp2_box(b"xml ", b"<patient>PHIJ2KXML ZYXWVPHINAME</patient>"));
            }
            b"jp2h" => {
                let mut header = body.clone();
                header.extend(jp2_box(b"lbl ", b"PHIJ2KLABEL ZYXWVPHINAME"));
                out.extend(jp2_box(b"jp2h", &header));
            }
            _ => out.extend(jp2_box(&kind, &body)),
        }
    }
    out
}

/// The single frame of a fixture, its fragments joined.
fn frame_of(ds: &DataSet<'_>) -> Vec<u8> {
    let Some(Value::Encapsulated { fragments, .. }) = ds.get(0x7FE0_0010).map(|e| &e.value) else {
        panic!("not encapsulated")
    };
    fragments.concat()
}

fn with_frame(ds: &mut DataSet<'_>, frame: Vec<u8>) {
    ds.put(Element {
        tag: 0x7FE0_0010,
        vr: Vr::OB,
        value: Value::Encapsulated {
            offset_table: Cow::Owned(Vec::new()),
            fragments: vec![Cow::Owned(frame)],
        },
    });
}

/// The codestream inside an output frame (the frame itself, or the content of its `jp2c` box).
fn codestream_of(frame: &[u8]) -> Vec<u8> {
    if frame.starts_with(&[0xFF, 0x4F]) {
        return frame.to_vec();
    }
    let boxes = jp2_boxes(frame);
    let kinds: Vec<[u8; 4]> = boxes.iter().map(|b| b.0).collect();
    assert_eq!(kinds, vec![*b"jP  ", *b"ftyp", *b"jp2h", *b"jp2c"], "only the boxes a reader needs");
    boxes.into_iter().find(|b| &b.0 == b"jp2c").map(|b| b.1).expect("jp2c")
}

/// Checks an output frame: no COM anywhere in its headers, Psot chains to EOC, nothing after EOC
/// but padding.
fn assert_clean_codestream(name: &str, frame: &[u8]) {
    let cs = codestream_of(frame);
    let structure = walk(&cs);
    assert!(
        structure.segments.iter().all(|(m, _)| *m != 0xFF64),
        "{name}: a COM segment survived"
    );
    assert!(cs[structure.end..].iter().all(|&b| b == 0), "{name}: bytes after EOC survived");
}

#[test]
fn encoder_comments_in_every_jpeg_2000_fixture_are_removed_and_pixels_decode_the_same() {
    let mut cfg = common::config();
    // The ultrasound fixture has text burned in, which the safety net would blank (and write
    // native: lossy data is not re-encoded); this test is about the codestream's own text.
    cfg.ocr = alpes_anonymizer::ocr::OcrMode::Off;
    for (name, comment) in FIXTURES {
        let input = std::fs::read(common::fixtures().join(name)).expect("read");
        if let Some(c) = comment {
            assert!(common::contains(&input, c.as_bytes()), "{name}: fixture lost its comment");
        }
        let out = anonymize(&input, &cfg).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(out.report.transfer_syntax_out, out.report.transfer_syntax_in, "{name}");
        if let Some(c) = comment {
            assert!(!common::contains(&out.bytes, c.as_bytes()), "{name}: {c:?} survived");
            assert!(out.report.metadata_removed >= 1, "{name}");
        }
        let frame = common::with_output(&out.bytes, frame_of);
        assert_clean_codestream(name, &frame);
        // pydicom's sequence-delimiter fixture has those bytes inside SIZ: no decoder reads it, before or after.
        if !name.contains("embedded-sequence-delimiter") {
            assert_eq!(
                common::decode_pixels(&input),
                common::decode_pixels(&out.bytes),
                "{name}: pixels changed"
            );
        }
    }
}

#[test]
fn phi_planted_in_main_and_tile_part_headers_after_eoc_and_in_jp2_boxes_is_removed() {
    let cfg = common::config();
    // A one-tile raw codestream, and a JP2 file whose codestream has 96 tile-parts.
    for (name, tile_part) in [("MR_small_jp2klossless.dcm", 0), ("GDCMJ2K_TextGBR.dcm", 40)] {
        let input = std::fs::read(common::fixtures().join(name)).expect("read");
        let (mut ds, ts) = common::parse_file(&input);
        let frame = frame_of(&ds);
        let planted_frame = plant_frame(&frame, tile_part);
        let jp2 = !planted_frame.starts_with(&[0xFF, 0x4F]);
        with_frame(&mut ds, planted_frame);
        let planted = common::part10_in(&ds, &ts);
        for marker in ["PHIJ2KMAIN", "PHIJ2KTILE", "PHIJ2KTAIL"] {
            assert!(common::contains(&planted, marker.as_bytes()), "{name}: {marker} not planted");
        }
        let pixels = common::decode_pixels(&input);
        assert_eq!(common::decode_pixels(&planted), pixels, "{name}: the planted frame must stay valid");

        let out = anonymize(&planted, &cfg).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!common::contains(&out.bytes, PHI), "{name}: PHI survived");
        assert!(!common::contains(&out.bytes, b"PHIJ2K"), "{name}: PHI survived");
        // Main COM, tile-part COM and trailer; for JP2 also the XML and label boxes.
        let expected = if jp2 { 5 } else { 3 };
        assert!(out.report.metadata_removed >= expected, "{name}: {}", out.report.metadata_removed);
        assert_eq!(out.report.transfer_syntax_out, ts, "{name}: stripping keeps the transfer syntax");
        let tmp = tempfile::NamedTempFile::new().expect("tmp");
        std::fs::write(tmp.path(), &out.bytes).expect("write");
        dicom_object::open_file(tmp.path()).unwrap_or_else(|e| panic!("{name}: output does not re-parse: {e}"));
        let frame = common::with_output(&out.bytes, frame_of);
        assert_clean_codestream(name, &frame);
        assert_eq!(common::decode_pixels(&out.bytes), pixels, "{name}: pixels changed");
    }
}

#[test]
fn burned_jpeg_2000_frames_carry_no_planted_text_either() {
    let mut cfg = common::config();
    cfg.regions = vec![Region { x: 1, y: 1, w: 5, h: 4 }];
    let input = std::fs::read(common::fixtures().join("MR_small_jp2klossless.dcm")).expect("read");
    let (mut ds, ts) = common::parse_file(&input);
    let frame = frame_of(&ds);
    with_frame(&mut ds, plant_frame(&frame, 0));
    let out = anonymize(&common::part10_in(&ds, &ts), &cfg).expect("anonymize");
    assert!(out.report.burned_area > 0);
    assert!(!common::contains(&out.bytes, PHI));
    // However the burned frame is written (this build has no JPEG 2000 encoder, so natively),
    // no encoder comment rides along.
    assert!(!common::contains(&out.bytes, b"OpenJPEG"));
}
