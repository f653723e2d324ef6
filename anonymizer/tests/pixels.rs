//! Clean Pixel Data: outputs decode with the same dimensions, burned regions hold the fill
//! value in every frame, and outside them lossless data is pixel-exact.

mod common;

use alpes_anonymizer::{anonymize, Region};
use dicom_pixeldata::PixelDecoder;

struct Decoded {
    rows: usize,
    cols: usize,
    frames: usize,
    samples: usize,
    data: Vec<u8>,
}

fn decode(bytes: &[u8]) -> Decoded {
    let tmp = tempfile::NamedTempFile::new().expect("tmp");
    std::fs::write(tmp.path(), bytes).expect("write");
    let obj = dicom_object::open_file(tmp.path()).expect("open");
    let d = obj.decode_pixel_data().expect("decode");
    Decoded {
        rows: d.rows() as usize,
        cols: d.columns() as usize,
        frames: d.number_of_frames() as usize,
        samples: d.samples_per_pixel() as usize,
        data: d.data().to_vec(),
    }
}

const REGION: Region = Region { x: 1, y: 1, w: 5, h: 4 };

fn inside(x: usize, y: usize) -> bool {
    (1..6).contains(&x) && (1..5).contains(&y)
}

/// Anonymizes with one region and checks dims, the burned region and (if `exact`) every other pixel.
fn check(name: &str, exact: bool, tolerance: u8) {
    let input = std::fs::read(common::fixtures().join(name)).expect("read");
    let mut cfg = common::config();
    cfg.regions = vec![REGION];
    // Rectangles only: the ultrasound palette example would otherwise also be blanked outside its
    // regions, and its burned-in text by the safety net (tests/burned_text.rs tests that).
    cfg.ultrasound_regions = false;
    cfg.ocr = alpes_anonymizer::ocr::OcrMode::Off;
    let out = anonymize(&input, &cfg).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(out.report.burned_area > 0, "{name}: nothing burned");
    let (a, b) = (decode(&input), decode(&out.bytes));
    assert_eq!(
        (a.rows, a.cols, a.frames, a.samples),
        (b.rows, b.cols, b.frames, b.samples),
        "{name}: dimensions changed"
    );
    // Bytes per pixel as decoded (palette images may come back as RGB).
    let px = a.data.len() / (a.rows * a.cols * a.frames);
    assert_eq!(a.data.len(), b.data.len(), "{name}: decoded sizes differ");
    let frame = a.rows * a.cols * px;
    let mut differing = 0usize;
    for f in 0..a.frames {
        for y in 0..a.rows {
            for x in 0..a.cols {
                let i = f * frame + (y * a.cols + x) * px;
                let (pa, pb) = (&a.data[i..i + px], &b.data[i..i + px]);
                if inside(x, y) {
                    // YBR 4:2:2 decodes as raw Y Y Cb Cr pairs: luma takes the fill, chroma the neutral 128.
                    let ybr422 = name.contains("422");
                    let ok = pb.iter().all(|v| *v <= tolerance || (ybr422 && *v == 128));
                    assert!(ok, "{name}: frame {f} ({x},{y}) = {pb:?}, not the fill value");
                } else if name.contains("422") && (inside(x & !1, y) || inside(x | 1, y)) {
                    // 4:2:2 shares chroma within a pixel pair: the partner of a burned pixel gets neutral chroma.
                } else if pa != pb {
                    differing += 1;
                }
            }
        }
    }
    if exact {
        assert_eq!(differing, 0, "{name}: {differing} pixels outside the region changed");
    }
}

#[test]
fn native_monochrome_8_16_and_32_bit_and_big_endian_are_burned_in_place() {
    for name in [
        "CT_small.dcm",
        "MR_small.dcm",
        "MR_small_bigendian.dcm",
        "MR_small_implicit.dcm",
        "rtdose.dcm",
        "liver_1frame.dcm",
        "image_dfl.dcm",
    ] {
        check(name, true, 0);
    }
}

#[test]
fn native_colour_palette_planar_odd_and_multiframe_are_burned_in_place() {
    for name in [
        "SC_rgb_small_odd.dcm",
        "SC_rgb_small_odd_big_endian.dcm",
        "examples_palette.dcm",
        "examples_rgb_color.dcm",
        "examples_ybr_color.dcm",
        "SC_ybr_full_422_uncompressed.dcm",
    ] {
        check(name, true, 0);
    }
}

#[test]
fn lossless_encapsulated_data_is_decoded_burned_and_reencoded_pixel_exact() {
    for name in [
        "MR_small_RLE.dcm",
        "SC_rgb_rle.dcm",
        "SC_rgb_rle_16bit_2frame.dcm",
        "MR_small_jpeg_ls_lossless.dcm",
        "MR_small_jp2klossless.dcm",
    ] {
        check(name, true, 0);
    }
}

#[test]
fn lossy_encapsulated_data_is_burned_with_the_codec_tolerance() {
    for name in [
        "SC_rgb_jpeg_gdcm.dcm",
        "SC_rgb_jpeg_dcmtk.dcm",
        "JPEG2000.dcm",
        "SC_rgb_jls_lossy_line.dcm",
    ] {
        check(name, false, 12);
    }
}

#[test]
fn burned_lossy_or_unencodable_data_is_written_as_rle_lossless_not_uncompressed() {
    // Lossy inputs are not encoded lossy a second time, and JPEG lossless and JPEG 2000 have no
    // encoder here: their burned pixels go out as RLE Lossless, exactly as decoded, and smaller
    // than the same pixels uncompressed (examples_ybr_color, 30 frames of ultrasound, was 6.9 MB).
    for (name, lossy) in [
        ("examples_ybr_color.dcm", true),
        ("SC_rgb_jpeg_dcmtk.dcm", true),
        ("JPEG2000.dcm", true),
        ("SC_rgb_jls_lossy_line.dcm", true),
        ("SC_rgb_jpeg_gdcm.dcm", false),
        ("MR_small_jp2klossless.dcm", false),
    ] {
        check(name, true, 0);
        let input = std::fs::read(common::fixtures().join(name)).expect("read");
        let mut cfg = common::config();
        cfg.regions = vec![REGION];
        cfg.ocr = alpes_anonymizer::ocr::OcrMode::Off;
        let out = anonymize(&input, &cfg).expect(name);
        assert_eq!(out.report.transfer_syntax_out, "1.2.840.10008.1.2.5", "{name}");
        assert!(
            out.report
                .notes
                .iter()
                .any(|n| n.ends_with("burned pixel data written as RLE Lossless")),
            "{name}: {:?}",
            out.report.notes
        );
        let decoded = decode(&input).data.len();
        assert!(
            out.bytes.len() < decoded,
            "{name}: {} bytes for {decoded} of pixels",
            out.bytes.len()
        );
        let flag = common::with_output(&out.bytes, |ds| ds.text(0x0028_2110).map(str::to_owned));
        assert_eq!(flag.as_deref(), Some(if lossy { "01" } else { "00" }), "{name}");
    }
}

#[test]
fn twelve_bit_jpeg_without_a_decoder_is_a_typed_error_when_regions_must_be_burned() {
    let mut cfg = common::config();
    cfg.regions = vec![REGION];
    for name in ["JPEG-lossy.dcm", "JPGExtended.dcm"] {
        let input = std::fs::read(common::fixtures().join(name)).expect("read");
        let err = anonymize(&input, &cfg).expect_err(name);
        assert_eq!(err.code(), "pixel_decode", "{name}: {err}");
    }
}

/// dicom-pixeldata cannot decode 32-bit RLE, so these are checked fragment by fragment with
/// Alpes' RLE decoder (itself round-trip tested) against the original file.
#[test]
fn thirty_two_bit_rle_is_burned_and_stays_pixel_exact_elsewhere() {
    use alpes_anonymizer::dataset::Value;
    use alpes_anonymizer::{parse, rle};
    for name in ["SC_rgb_rle_32bit_2frame.dcm", "rtdose_rle.dcm"] {
        let input = std::fs::read(common::fixtures().join(name)).expect("read");
        let mut cfg = common::config();
        cfg.regions = vec![REGION];
        let out = anonymize(&input, &cfg).expect(name);
        let l = parse::layout(&input).expect("layout");
        let a = parse::dataset(&input[l.dataset_start..], l.transfer_syntax.encoding, 32).expect("parse");
        let (rows, cols, samples) = (
            a.u16(0x0028_0010).expect("rows") as usize,
            a.u16(0x0028_0011).expect("cols") as usize,
            a.u16(0x0028_0002).unwrap_or(1) as usize,
        );
        let frames_of = |ds: &alpes_anonymizer::dataset::DataSet<'_>| -> Vec<Vec<u8>> {
            let Some(Value::Encapsulated { fragments, .. }) = ds.get(0x7FE0_0010).map(|e| &e.value) else {
                panic!("{name}: not encapsulated")
            };
            fragments
                .iter()
                .map(|f| {
                    let mut v = Vec::new();
                    rle::decode_frame(f, rows * cols, samples, 4, &mut v).expect("decode");
                    v
                })
                .collect()
        };
        let before = frames_of(&a);
        let after = common::with_output(&out.bytes, |b| frames_of(b));
        assert_eq!(before.len(), after.len());
        let px = samples * 4;
        for (fa, fb) in before.iter().zip(&after) {
            for y in 0..rows {
                for x in 0..cols {
                    let i = (y * cols + x) * px;
                    if inside(x, y) {
                        assert!(fb[i..i + px].iter().all(|v| *v == 0), "{name} ({x},{y})");
                    } else {
                        assert_eq!(fa[i..i + px], fb[i..i + px], "{name} ({x},{y})");
                    }
                }
            }
        }
    }
}

#[test]
fn rle_stays_rle_after_burning() {
    let mut cfg = common::config();
    cfg.regions = vec![REGION];
    let input = std::fs::read(common::fixtures().join("SC_rgb_rle_32bit_2frame.dcm")).expect("read");
    let out = anonymize(&input, &cfg).expect("anonymize");
    assert_eq!(out.report.transfer_syntax_out, "1.2.840.10008.1.2.5");
    assert!(out.report.notes.is_empty());
}

#[test]
fn without_regions_pixel_data_is_passed_through_untouched() {
    let cfg = common::config();
    for name in ["JPEG2000.dcm", "CT_small.dcm"] {
        let input = std::fs::read(common::fixtures().join(name)).expect("read");
        let out = anonymize(&input, &cfg).expect("anonymize");
        assert_eq!(out.report.transfer_syntax_in, out.report.transfer_syntax_out);
        let (a, b) = (decode(&input), decode(&out.bytes));
        assert_eq!(a.data, b.data, "{name}");
    }
}

#[test]
fn ultrasound_regions_blank_everything_outside_their_union() {
    use alpes_anonymizer::dataset::{DataSet, Element, Value, Vr};
    use alpes_anonymizer::parse;
    let input = std::fs::read(common::fixtures().join("CT_small.dcm")).expect("read");
    let layout = parse::layout(&input).expect("layout");
    let mut ds = parse::dataset(&input[layout.dataset_start..], layout.transfer_syntax.encoding, 32).expect("parse");
    let mut item = DataSet::default();
    for (tag, v) in [(0x0018_6018u32, 10u32), (0x0018_601A, 20), (0x0018_601C, 40), (0x0018_601E, 50)] {
        item.put(Element::bytes(tag, Vr::UL, v.to_le_bytes().to_vec()));
    }
    ds.put(Element {
        tag: 0x0018_6011,
        vr: Vr::SQ,
        value: Value::Sequence(vec![item]),
    });
    ds.put(Element::text(0x0008_0060, Vr::CS, "US"));
    let bytes = common::part10(&ds, "1.2.840.10008.5.1.4.1.1.6.1");
    let out = anonymize(&bytes, &common::config()).expect("anonymize");
    let (a, b) = (decode(&bytes), decode(&out.bytes));
    for y in 0..a.rows {
        for x in 0..a.cols {
            let i = (y * a.cols + x) * 2;
            let kept = (10..=40).contains(&x) && (20..=50).contains(&y);
            if kept {
                assert_eq!(a.data[i..i + 2], b.data[i..i + 2]);
            } else {
                assert_eq!(b.data[i..i + 2], [0, 0], "({x},{y})");
            }
        }
    }
    // BurnedInAnnotation NO turns it off.
    ds.put(Element::text(0x0028_0301, Vr::CS, "NO"));
    let bytes = common::part10(&ds, "1.2.840.10008.5.1.4.1.1.6.1");
    let out = anonymize(&bytes, &common::config()).expect("anonymize");
    assert_eq!(out.report.burned_area, 0);
}

/// Overlay tests: a 16×16 overlay at origin (1,1) with an irregular bit pattern that differs
/// between the two bytes of every 16-bit word, and a region straddling the byte boundary.
const OVERLAY: u16 = 16;
const OVERLAY_REGION: Region = Region { x: 5, y: 2, w: 6, h: 5 };

/// One 16-bit row per overlay row, bit `x` for column `x`; the two bytes of each row differ.
const OVERLAY_ROWS: [u16; 16] = [
    0xA5C3, 0x3C96, 0xF0E1, 0x7B2D, 0xC3A5, 0x96E7, 0x1F8E, 0xD24B, 0x6A9D, 0xE3B1, 0x4C7F, 0xB8D2, 0x2E5A, 0x97C4, 0x5BE8, 0x8D36,
];

fn overlay_bit(x: u16, y: u16) -> bool {
    OVERLAY_ROWS[usize::from(y)] >> x & 1 == 1
}

/// The overlay's bits as 16-bit words, pixel `i` in bit `i % 16` of word `i / 16` (PS3.5 8.1.2).
fn overlay_words() -> Vec<u16> {
    let mut words = vec![0u16; usize::from(OVERLAY * OVERLAY / 16)];
    for y in 0..OVERLAY {
        for x in 0..OVERLAY {
            let i = usize::from(y * OVERLAY + x);
            if overlay_bit(x, y) {
                words[i / 16] |= 1 << (i % 16);
            }
        }
    }
    words
}

/// The overlay group 6000 as explicit VR big endian element bytes, in tag order.
fn overlay_elements_big_endian() -> Vec<u8> {
    let mut out = Vec::new();
    let mut short = |elem: u16, vr: &[u8; 2], value: &[u8]| {
        out.extend_from_slice(&0x6000u16.to_be_bytes());
        out.extend_from_slice(&elem.to_be_bytes());
        out.extend_from_slice(vr);
        out.extend_from_slice(&(value.len() as u16).to_be_bytes());
        out.extend_from_slice(value);
    };
    short(0x0010, b"US", &OVERLAY.to_be_bytes());
    short(0x0011, b"US", &OVERLAY.to_be_bytes());
    short(0x0040, b"CS", b"G ");
    short(0x0050, b"SS", &[0, 1, 0, 1]);
    short(0x0100, b"US", &1u16.to_be_bytes());
    short(0x0102, b"US", &0u16.to_be_bytes());
    let data: Vec<u8> = overlay_words().iter().flat_map(|w| w.to_be_bytes()).collect();
    out.extend_from_slice(&[0x60, 0x00, 0x30, 0x00]);
    out.extend_from_slice(b"OW\0\0");
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(&data);
    out
}

/// Anonymizes with one region under Clean Graphics and returns the output's overlay data.
fn burned_overlay(input: &[u8]) -> Vec<u8> {
    let mut cfg = common::config();
    cfg.regions = vec![OVERLAY_REGION];
    cfg.ultrasound_regions = false;
    let out = anonymize(input, &cfg).expect("anonymize");
    assert_eq!(out.report.regions.len(), 1, "only the configured region applies");
    assert_eq!(out.report.overlay_area, u64::from(OVERLAY_REGION.w * OVERLAY_REGION.h));
    assert_eq!(out.report.transfer_syntax_out, "1.2.840.10008.1.2.1");
    common::with_output(&out.bytes, |ds| {
        let el = ds.get(0x6000_3000).expect("overlay data kept");
        assert_eq!(el.vr, alpes_anonymizer::dataset::Vr::OW);
        el.raw().expect("bytes").to_vec()
    })
}

/// Checks little endian overlay bytes: the region cleared, every other bit as planted.
fn assert_overlay_burned(name: &str, data: &[u8]) {
    assert_eq!(data.len(), usize::from(OVERLAY * OVERLAY / 8), "{name}");
    let inside = |x: u16, y: u16| {
        (OVERLAY_REGION.x..OVERLAY_REGION.x + OVERLAY_REGION.w).contains(&u32::from(x))
            && (OVERLAY_REGION.y..OVERLAY_REGION.y + OVERLAY_REGION.h).contains(&u32::from(y))
    };
    let mut cleared = 0;
    for y in 0..OVERLAY {
        for x in 0..OVERLAY {
            let i = usize::from(y * OVERLAY + x);
            let bit = data[i / 8] >> (i % 8) & 1 == 1;
            let expected = overlay_bit(x, y) && !inside(x, y);
            assert_eq!(bit, expected, "{name}: overlay bit ({x},{y})");
            cleared += usize::from(inside(x, y) && overlay_bit(x, y));
        }
    }
    assert!(cleared >= 10, "the region must cover set bits in both bytes of a word");
}

#[test]
fn overlays_in_big_endian_ow_are_burned_at_the_same_bits_as_little_endian_ones() {
    // Big endian: the overlay group spliced in raw, just before Pixel Data.
    let original = std::fs::read(common::fixtures().join("MR_small_bigendian.dcm")).expect("read");
    let at = original
        .windows(6)
        .position(|w| w == [0x7F, 0xE0, 0x00, 0x10, b'O', b'W'])
        .expect("pixel data");
    let mut big = original[..at].to_vec();
    big.extend_from_slice(&overlay_elements_big_endian());
    big.extend_from_slice(&original[at..]);
    let be = burned_overlay(&big);
    assert_overlay_burned("big endian", &be);

    // Little endian, for comparison: the same overlay written by the test writer.
    use alpes_anonymizer::dataset::{Element, Vr};
    let input = std::fs::read(common::fixtures().join("MR_small.dcm")).expect("read");
    let (mut ds, _) = common::parse_file(&input);
    ds.put(Element::bytes(0x6000_0010, Vr::US, OVERLAY.to_le_bytes().to_vec()));
    ds.put(Element::bytes(0x6000_0011, Vr::US, OVERLAY.to_le_bytes().to_vec()));
    ds.put(Element::text(0x6000_0040, Vr::CS, "G"));
    ds.put(Element::bytes(0x6000_0050, Vr::SS, vec![1, 0, 1, 0]));
    ds.put(Element::bytes(0x6000_0100, Vr::US, 1u16.to_le_bytes().to_vec()));
    ds.put(Element::bytes(0x6000_0102, Vr::US, 0u16.to_le_bytes().to_vec()));
    let words: Vec<u8> = overlay_words().iter().flat_map(|w| w.to_le_bytes()).collect();
    ds.put(Element::bytes(0x6000_3000, Vr::OW, words));
    let le = burned_overlay(&common::part10(&ds, "1.2.840.10008.5.1.4.1.1.4"));
    assert_overlay_burned("little endian", &le);
    assert_eq!(be, le);
}
