use crate::error::Error;
use crate::raster::tests::{contains, inside, noise, region, MARKER};
use crate::raster::{anonymize, RasterFormat, RasterOutcome};

fn encode_jpeg(
    width: u16,
    height: u16,
    color: jpeg_encoder::ColorType,
    pixels: &[u8],
    configure: impl FnOnce(&mut jpeg_encoder::Encoder<&mut Vec<u8>>),
) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = jpeg_encoder::Encoder::new(&mut out, 90);
    configure(&mut encoder);
    encoder.encode(pixels, width, height, color).expect("encodes");
    out
}

fn segment(code: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0xFF, code];
    out.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Inserts bytes right after the 16-byte JFIF APP0 that jpeg-encoder writes.
fn splice_after_app0(jpeg: &[u8], extra: &[u8]) -> Vec<u8> {
    assert_eq!(&jpeg[2..6], &[0xFF, 0xE0, 0x00, 0x10]);
    let mut out = jpeg[..20].to_vec();
    out.extend_from_slice(extra);
    out.extend_from_slice(&jpeg[20..]);
    out
}

fn metadata_segments() -> Vec<u8> {
    let mut exif = b"Exif\0\0MM\0\x2a\0\0\0\x08".to_vec();
    exif.extend_from_slice(MARKER);
    let mut icc = b"ICC_PROFILE\0\x01\x01".to_vec();
    icc.extend_from_slice(MARKER);
    let mut photoshop = b"Photoshop 3.0\08BIM".to_vec();
    photoshop.extend_from_slice(MARKER);
    let mut out = segment(0xE1, &exif);
    out.extend(segment(0xE2, &icc));
    out.extend(segment(0xED, &photoshop));
    out.extend(segment(0xFE, MARKER));
    out
}

fn decode_jpeg_pixels(bytes: &[u8]) -> (Vec<u8>, jpeg_decoder::ImageInfo) {
    let mut decoder = jpeg_decoder::Decoder::new(bytes);
    let pixels = decoder.decode().expect("decodes");
    (pixels, decoder.info().expect("info"))
}

/// Marker codes of the segments of a JPEG, in order (entropy-coded data skipped).
fn jpeg_markers(bytes: &[u8]) -> Vec<u8> {
    let mut codes = vec![];
    let mut pos = 2;
    while pos + 1 < bytes.len() {
        assert_eq!(bytes[pos], 0xFF, "marker expected at {pos}");
        let code = bytes[pos + 1];
        codes.push(code);
        if code == 0xD9 {
            break;
        }
        let len = u16::from_be_bytes([bytes[pos + 2], bytes[pos + 3]]) as usize;
        pos += 2 + len;
        if code == 0xDA {
            while !(bytes[pos] == 0xFF && bytes[pos + 1] != 0 && !(0xD0..=0xD7).contains(&bytes[pos + 1])) {
                pos += 1;
            }
        }
    }
    codes
}

fn assert_no_metadata_segments(bytes: &[u8]) {
    for code in jpeg_markers(bytes) {
        assert!(!matches!(code, 0xE1..=0xED | 0xEF | 0xFE), "segment FF{code:02X} survived");
    }
}

fn rgb_gradient(width: u16, height: u16) -> Vec<u8> {
    let n = noise(width as usize * height as usize * 3, 7);
    let mut out = Vec::new();
    for y in 0..height as usize {
        for x in 0..width as usize {
            for c in 0..3 {
                let base = 120 + (x * 3 + y * 2 + c * 20) % 100;
                out.push((base + n[(y * width as usize + x) * 3 + c] as usize % 16) as u8);
            }
        }
    }
    out
}

#[test]
fn jpeg_metadata_segments_are_stripped_losslessly() {
    let (w, h) = (32u16, 24u16);
    let clean = encode_jpeg(w, h, jpeg_encoder::ColorType::Rgb, &rgb_gradient(w, h), |_| {});
    let mut input = splice_after_app0(&clean, &metadata_segments());
    // Fill bytes before the marker that follows the spliced segments.
    let next = 20 + metadata_segments().len();
    assert_eq!(input[next], 0xFF);
    input.splice(next..next, [0xFF, 0xFF, 0xFF]);
    assert!(contains(&input, MARKER));
    let (out, outcome) = anonymize(&input, &[], 0, crate::engine::DEFAULT_MAX_DECODED).expect("anonymizes");
    assert!(!contains(&out, MARKER));
    assert_no_metadata_segments(&out);
    assert_eq!(out, clean, "strip must give back the encoder's own bytes");
    assert_eq!(
        outcome,
        RasterOutcome {
            format: RasterFormat::Jpeg,
            width: 32,
            height: 24,
            metadata_segments_removed: 4,
            burned_area: 0,
            reencoded: false
        }
    );
    assert_eq!(decode_jpeg_pixels(&out).0, decode_jpeg_pixels(&input).0);
}

#[test]
fn jpeg_restart_markers_and_progressive_scans_survive_the_strip() {
    let (w, h) = (40u16, 33u16);
    let pixels = rgb_gradient(w, h);
    let restart = encode_jpeg(w, h, jpeg_encoder::ColorType::Rgb, &pixels, |e| e.set_restart_interval(2));
    let progressive = encode_jpeg(w, h, jpeg_encoder::ColorType::Rgb, &pixels, |e| e.set_progressive(true));
    assert!(jpeg_markers(&progressive).iter().filter(|&&c| c == 0xDA).count() > 1);
    for clean in [restart, progressive] {
        let input = splice_after_app0(&clean, &metadata_segments());
        let (out, outcome) = anonymize(&input, &[region(w as u32, 0, 5, 5)], 0, crate::engine::DEFAULT_MAX_DECODED).expect("anonymizes");
        assert!(!outcome.reencoded);
        assert_eq!(outcome.metadata_segments_removed, 4);
        assert_eq!(out, clean);
        assert_eq!(decode_jpeg_pixels(&out).0, decode_jpeg_pixels(&clean).0);
    }
}

#[test]
fn jpeg_thumbnails_trailers_and_foreign_app0_are_removed() {
    let (w, h) = (16u16, 16u16);
    let clean = encode_jpeg(w, h, jpeg_encoder::ColorType::Luma, &noise(256, 15), |_| {});
    // Replace the JFIF APP0 with one carrying a 1x1 thumbnail, then add a JFXX APP0.
    let mut jfif = clean[6..20].to_vec();
    jfif[12] = 1;
    jfif[13] = 1;
    jfif.extend_from_slice(&[1, 2, 3]);
    let mut input = vec![0xFF, 0xD8];
    input.extend(segment(0xE0, &jfif));
    input.extend(segment(0xE0, &[b"JFXX\0\x13".as_slice(), MARKER].concat()));
    input.extend(segment(0xEE, &[b"NotAdobe".as_slice(), MARKER].concat()));
    input.extend_from_slice(&clean[20..]);
    // A second image with metadata after EOI, as in multi-picture files.
    input.extend(splice_after_app0(&clean, &metadata_segments()));
    let (out, outcome) = anonymize(&input, &[], 0, crate::engine::DEFAULT_MAX_DECODED).expect("anonymizes");
    assert_eq!(out, clean);
    assert!(!contains(&out, MARKER));
    assert_eq!(outcome.metadata_segments_removed, 4);
}

#[test]
fn jpeg_adobe_segment_is_kept_for_cmyk_which_cannot_be_burned() {
    let (w, h) = (16u16, 8u16);
    let clean = encode_jpeg(w, h, jpeg_encoder::ColorType::Cmyk, &noise(16 * 8 * 4, 16), |_| {});
    assert!(jpeg_markers(&clean).contains(&0xEE));
    let input = splice_after_app0(&clean, &metadata_segments());
    let (out, _) = anonymize(&input, &[], 0, crate::engine::DEFAULT_MAX_DECODED).expect("strip works for CMYK");
    assert_eq!(out, clean);
    assert!(jpeg_markers(&out).contains(&0xEE));
    match anonymize(&input, &[region(0, 0, 4, 4)], 0, crate::engine::DEFAULT_MAX_DECODED) {
        Err(Error::Image { format: "JPEG", reason }) => assert!(reason.contains("unsupported"), "{reason}"),
        other => panic!("expected unsupported, got {other:?}"),
    }
}

#[test]
fn jpeg_regions_are_burned_by_reencoding() {
    let (w, h) = (48u16, 40u16);
    let pixels = rgb_gradient(w, h);
    let clean = encode_jpeg(w, h, jpeg_encoder::ColorType::Rgb, &pixels, |_| {});
    let input = splice_after_app0(&clean, &metadata_segments());
    let regions = [region(8, 8, 16, 16), region(16, 16, 16, 8), region(40, 32, 50, 50)];
    let (out, outcome) = anonymize(&input, &regions, 0, crate::engine::DEFAULT_MAX_DECODED).expect("anonymizes");
    assert!(outcome.reencoded);
    assert_eq!(outcome.metadata_segments_removed, 4);
    assert_eq!(outcome.burned_area, 256 + 64 + 64);
    assert!(!contains(&out, MARKER));
    assert_no_metadata_segments(&out);
    let (after, info) = decode_jpeg_pixels(&out);
    let (before, _) = decode_jpeg_pixels(&clean);
    assert_eq!(
        (info.width, info.height, info.pixel_format),
        (w, h, jpeg_decoder::PixelFormat::RGB24)
    );
    let mut outside_error = 0u64;
    let mut outside_count = 0u64;
    for y in 0..h as u32 {
        for x in 0..w as u32 {
            let i = (y as usize * w as usize + x as usize) * 3;
            let near_edge = regions
                .iter()
                .any(|r| x + 8 >= r.x && x < r.x + r.w + 8 && y + 8 >= r.y && y < r.y + r.h + 8);
            if inside(&regions, x, y) {
                assert!(
                    after[i..i + 3].iter().all(|&v| v <= 12),
                    "burned pixel at {x},{y} is {:?}",
                    &after[i..i + 3]
                );
            } else if !near_edge {
                outside_error += after[i..i + 3]
                    .iter()
                    .zip(&before[i..i + 3])
                    .map(|(a, b)| u64::from(a.abs_diff(*b)))
                    .sum::<u64>();
                outside_count += 3;
            }
        }
    }
    assert!(outside_count > 0);
    assert!(outside_error / outside_count <= 3, "mean error {}", outside_error / outside_count);
}

#[test]
fn jpeg_grayscale_regions_are_burned_to_the_clamped_fill() {
    let (w, h) = (24u16, 16u16);
    let clean = encode_jpeg(w, h, jpeg_encoder::ColorType::Luma, &vec![40; 24 * 16], |_| {});
    let (out, outcome) = anonymize(&clean, &[region(8, 0, 8, 16)], 4000, crate::engine::DEFAULT_MAX_DECODED).expect("anonymizes");
    assert!(outcome.reencoded);
    assert_eq!(outcome.burned_area, 128);
    let (after, info) = decode_jpeg_pixels(&out);
    assert_eq!(info.pixel_format, jpeg_decoder::PixelFormat::L8);
    assert!(after[8 * 24 + 10] >= 250);
    assert!(after[8 * 24 + 2].abs_diff(40) <= 4);
}

#[test]
fn jpeg_oversized_frames_are_rejected_before_decoding() {
    let mut input = vec![0xFF, 0xD8];
    input.extend(segment(0xC0, &[8, 0xFF, 0xFF, 0xFF, 0xFF, 3, 1, 0x11, 0, 2, 0x11, 1, 3, 0x11, 1]));
    input.extend(segment(0xDA, &[3, 1, 0, 2, 0x11, 3, 0x11, 0, 63, 0]));
    input.extend_from_slice(&[0x12, 0x34, 0xFF, 0xD9]);
    match anonymize(&input, &[region(0, 0, 1, 1)], 0, crate::engine::DEFAULT_MAX_DECODED) {
        Err(Error::DecodeLimit { needed, limit }) => assert!(needed > limit && limit == crate::engine::DEFAULT_MAX_DECODED),
        other => panic!("expected a decode limit, got {other:?}"),
    }
}

#[test]
fn jpeg_truncations_and_corruptions_are_errors_not_panics() {
    let (w, h) = (24u16, 20u16);
    let clean = encode_jpeg(w, h, jpeg_encoder::ColorType::Rgb, &rgb_gradient(w, h), |e| {
        e.set_restart_interval(1)
    });
    let input = splice_after_app0(&clean, &metadata_segments());
    for len in 0..input.len() {
        for regions in [&[][..], &[region(2, 2, 4, 4)][..]] {
            match anonymize(&input[..len], regions, 0, crate::engine::DEFAULT_MAX_DECODED) {
                Err(Error::Image { format: "JPEG", .. }) | Err(Error::UnknownFormat) => {}
                other => panic!("truncation at {len} gave {other:?}"),
            }
        }
    }
    let flips = noise(800, 17);
    for (i, pair) in flips.chunks(2).enumerate() {
        let mut bad = input.clone();
        let at = 3 + (usize::from(pair[0]) * 11 + i * 7) % (input.len() - 3);
        bad[at] ^= pair[1] | 1;
        let _ = anonymize(&bad, &[], 0, crate::engine::DEFAULT_MAX_DECODED);
        let _ = anonymize(&bad, &[region(0, 0, 8, 8)], 0, crate::engine::DEFAULT_MAX_DECODED);
    }
    let mut garbage = vec![0xFF, 0xD8, 0xFF];
    garbage.extend(noise(300, 18));
    assert!(anonymize(&garbage, &[], 0, crate::engine::DEFAULT_MAX_DECODED).is_err());
    assert!(anonymize(&[0xFF, 0xD8, 0xFF, 0xD9], &[], 0, crate::engine::DEFAULT_MAX_DECODED).is_err());
}
