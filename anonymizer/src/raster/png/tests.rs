use crate::error::Error;
use crate::raster::tests::{contains, inside, noise, region, MARKER};
use crate::raster::{anonymize, RasterFormat, RasterOutcome, PNG_SIGNATURE};

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut out = (data.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let mut crc_input = kind.to_vec();
    crc_input.extend_from_slice(data);
    out.extend_from_slice(&crc32(&crc_input).to_be_bytes());
    out
}

/// A zlib stream of stored (uncompressed) deflate blocks.
fn zlib_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = if data.is_empty() { vec![&[]] } else { data.chunks(65535).collect() };
    for (i, block) in blocks.iter().enumerate() {
        out.push(u8::from(i + 1 == blocks.len()));
        let len = block.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(block);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in data {
        a = (a + u32::from(byte)) % 65521;
        b = (b + a) % 65521;
    }
    out.extend_from_slice(&((b << 16) | a).to_be_bytes());
    out
}

struct PngSpec<'a> {
    width: u32,
    height: u32,
    color: png::ColorType,
    depth: png::BitDepth,
    pixels: &'a [u8],
    palette: Option<&'a [u8]>,
    trns: Option<&'a [u8]>,
    metadata: bool,
}

fn spec(width: u32, height: u32, color: png::ColorType, depth: png::BitDepth, pixels: &[u8]) -> PngSpec<'_> {
    PngSpec {
        width,
        height,
        color,
        depth,
        pixels,
        palette: None,
        trns: None,
        metadata: false,
    }
}

fn encode_png(s: &PngSpec) -> Vec<u8> {
    let marker = String::from_utf8(MARKER.to_vec()).expect("ascii");
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, s.width, s.height);
        encoder.set_color(s.color);
        encoder.set_depth(s.depth);
        if let Some(p) = s.palette {
            encoder.set_palette(p.to_vec());
        }
        if let Some(t) = s.trns {
            encoder.set_trns(t.to_vec());
        }
        if s.metadata {
            encoder.set_source_gamma(png::ScaledFloat::new(0.45455));
            encoder.add_text_chunk("Patient".into(), marker.clone()).expect("tEXt");
            encoder.add_ztxt_chunk("Comment".into(), marker.repeat(4)).expect("zTXt");
            encoder.add_itxt_chunk("Author".into(), marker.clone()).expect("iTXt");
        }
        let mut writer = encoder.write_header().expect("header");
        if s.metadata {
            let mut exif = b"MM\0\x2a".to_vec();
            exif.extend_from_slice(MARKER);
            writer.write_chunk(png::chunk::ChunkType(*b"eXIf"), &exif).expect("eXIf");
            writer
                .write_chunk(png::chunk::ChunkType(*b"tIME"), &[7, 232, 1, 2, 3, 4, 5])
                .expect("tIME");
            writer.write_chunk(png::chunk::ChunkType(*b"prVt"), MARKER).expect("private");
        }
        writer.write_image_data(s.pixels).expect("data");
        writer.finish().expect("finish");
    }
    out
}

struct Decoded {
    width: u32,
    height: u32,
    color: png::ColorType,
    depth: png::BitDepth,
    line: usize,
    pixels: Vec<u8>,
    palette: Option<Vec<u8>>,
    trns: Option<Vec<u8>>,
    interlaced: bool,
}

fn decode_png(bytes: &[u8]) -> Decoded {
    let mut decoder = png::Decoder::new(bytes);
    decoder.set_transformations(png::Transformations::IDENTITY);
    let mut reader = decoder.read_info().expect("decodes");
    let mut pixels = vec![0; reader.output_buffer_size()];
    let frame = reader.next_frame(&mut pixels).expect("frame");
    let info = reader.info();
    Decoded {
        width: frame.width,
        height: frame.height,
        color: frame.color_type,
        depth: frame.bit_depth,
        line: frame.line_size,
        pixels,
        palette: info.palette.as_ref().map(|p| p.to_vec()),
        trns: info.trns.as_ref().map(|t| t.to_vec()),
        interlaced: info.interlaced,
    }
}

fn chunk_types(bytes: &[u8]) -> Vec<String> {
    let mut pos = 8;
    let mut kinds = Vec::new();
    while pos + 8 <= bytes.len() {
        let len = u32::from_be_bytes(bytes[pos..pos + 4].try_into().expect("4 bytes")) as usize;
        kinds.push(String::from_utf8_lossy(&bytes[pos + 4..pos + 8]).into_owned());
        pos += 12 + len;
    }
    kinds
}

fn assert_only_critical_chunks(bytes: &[u8]) {
    for kind in chunk_types(bytes) {
        assert!(
            ["IHDR", "PLTE", "tRNS", "IDAT", "IEND"].contains(&kind.as_str()),
            "unexpected chunk {kind}"
        );
    }
}

/// Samples of pixel (x, y) in a decoded buffer, for bit depths of 8 and 16.
fn px(d: &Decoded, x: u32, y: u32) -> &[u8] {
    let stride = d.color.samples() * (d.depth as usize / 8);
    let start = y as usize * d.line + x as usize * stride;
    &d.pixels[start..start + stride]
}

/// Sample of pixel (x, y) in a decoded buffer of 1, 2 or 4 bits per pixel.
fn packed(d: &Decoded, x: u32, y: u32) -> u8 {
    let bits = d.depth as usize;
    let bit = x as usize * bits;
    let byte = d.pixels[y as usize * d.line + bit / 8];
    (byte >> (8 - bits - bit % 8)) & ((1 << bits) - 1)
}

#[test]
fn png_text_chunks_are_dropped() {
    let pixels = noise(20 * 10 * 3, 1);
    let input = encode_png(&PngSpec {
        metadata: true,
        ..spec(20, 10, png::ColorType::Rgb, png::BitDepth::Eight, &pixels)
    });
    assert!(contains(&input, MARKER));
    let kinds = chunk_types(&input);
    for k in ["tEXt", "zTXt", "iTXt", "eXIf", "tIME", "prVt", "gAMA"] {
        assert!(kinds.iter().any(|c| c == k), "fixture lacks {k}: {kinds:?}");
    }
    let (out, outcome) = anonymize(&input, &[], 0, crate::engine::DEFAULT_MAX_DECODED).expect("anonymizes");
    assert!(!contains(&out, MARKER));
    assert_only_critical_chunks(&out);
    assert_eq!(outcome.metadata_segments_removed, 7);
    assert_eq!(
        outcome,
        RasterOutcome {
            format: RasterFormat::Png,
            width: 20,
            height: 10,
            metadata_segments_removed: 7,
            burned_area: 0,
            reencoded: true
        }
    );
    assert_eq!(decode_png(&out).pixels, decode_png(&input).pixels);
}

#[test]
fn png_rgb_regions_are_burned_and_the_rest_is_untouched() {
    let (w, h) = (23u32, 17u32);
    let pixels = noise((w * h * 3) as usize, 2);
    let input = encode_png(&PngSpec {
        metadata: true,
        ..spec(w, h, png::ColorType::Rgb, png::BitDepth::Eight, &pixels)
    });
    let regions = [
        region(0, 0, 4, 4),
        region(2, 2, 4, 4),
        region(20, 15, 100, 100),
        region(100, 100, 5, 5),
    ];
    let (out, outcome) = anonymize(&input, &regions, 7, crate::engine::DEFAULT_MAX_DECODED).expect("anonymizes");
    assert_eq!(outcome.burned_area, 28 + 3 * 2);
    let d = decode_png(&out);
    let original = decode_png(&input);
    assert_eq!(
        (d.width, d.height, d.color, d.depth),
        (w, h, png::ColorType::Rgb, png::BitDepth::Eight)
    );
    let mut burned = 0;
    for y in 0..h {
        for x in 0..w {
            if inside(&regions, x, y) {
                assert_eq!(px(&d, x, y), &[7, 7, 7], "at {x},{y}");
                burned += 1;
            } else {
                assert_eq!(px(&d, x, y), px(&original, x, y), "at {x},{y}");
            }
        }
    }
    assert_eq!(burned, outcome.burned_area);
    assert!(!contains(&out, MARKER));
}

#[test]
fn png_fill_is_clamped_to_the_sample_maximum() {
    let pixels = noise(8 * 8 * 3, 3);
    let input = encode_png(&spec(8, 8, png::ColorType::Rgb, png::BitDepth::Eight, &pixels));
    let (out, _) = anonymize(&input, &[region(1, 1, 2, 2)], 1000, crate::engine::DEFAULT_MAX_DECODED).expect("anonymizes");
    assert_eq!(px(&decode_png(&out), 1, 1), &[255, 255, 255]);

    // 1-bit gray: any fill above 1 becomes 1.
    let (w, h) = (13u32, 5u32);
    let line = w.div_ceil(8) as usize;
    let bits = vec![0u8; line * h as usize];
    let input = encode_png(&spec(w, h, png::ColorType::Grayscale, png::BitDepth::One, &bits));
    let regions = [region(3, 1, 7, 3)];
    let (out, outcome) = anonymize(&input, &regions, 0xFFFF, crate::engine::DEFAULT_MAX_DECODED).expect("anonymizes");
    assert_eq!(outcome.burned_area, 21);
    let d = decode_png(&out);
    assert_eq!(d.depth, png::BitDepth::One);
    for y in 0..h {
        for x in 0..w {
            assert_eq!(packed(&d, x, y), u8::from(inside(&regions, x, y)), "at {x},{y}");
        }
    }
}

#[test]
fn png_sixteen_bit_gray_is_burned_big_endian() {
    let (w, h) = (11u32, 9u32);
    let pixels = noise((w * h * 2) as usize, 4);
    let input = encode_png(&PngSpec {
        metadata: true,
        ..spec(w, h, png::ColorType::Grayscale, png::BitDepth::Sixteen, &pixels)
    });
    let regions = [region(5, 2, 3, 6)];
    let (out, outcome) = anonymize(&input, &regions, 0x1234, crate::engine::DEFAULT_MAX_DECODED).expect("anonymizes");
    assert_eq!(outcome.burned_area, 18);
    let d = decode_png(&out);
    let original = decode_png(&input);
    assert_eq!(d.depth, png::BitDepth::Sixteen);
    for y in 0..h {
        for x in 0..w {
            if inside(&regions, x, y) {
                assert_eq!(px(&d, x, y), &[0x12, 0x34]);
            } else {
                assert_eq!(px(&d, x, y), px(&original, x, y));
            }
        }
    }
    assert!(!contains(&out, MARKER));
}

#[test]
fn png_alpha_becomes_opaque_inside_regions() {
    let (w, h) = (10u32, 6u32);
    let pixels = noise((w * h * 4) as usize, 5);
    let input = encode_png(&spec(w, h, png::ColorType::Rgba, png::BitDepth::Eight, &pixels));
    let regions = [region(2, 1, 3, 3)];
    let (out, _) = anonymize(&input, &regions, 0, crate::engine::DEFAULT_MAX_DECODED).expect("anonymizes");
    let d = decode_png(&out);
    let original = decode_png(&input);
    for y in 0..h {
        for x in 0..w {
            if inside(&regions, x, y) {
                assert_eq!(px(&d, x, y), &[0, 0, 0, 255]);
            } else {
                assert_eq!(px(&d, x, y), px(&original, x, y));
            }
        }
    }

    let pixels = noise((w * h * 4) as usize, 6);
    let input = encode_png(&spec(w, h, png::ColorType::GrayscaleAlpha, png::BitDepth::Sixteen, &pixels));
    let (out, _) = anonymize(&input, &regions, 9, crate::engine::DEFAULT_MAX_DECODED).expect("anonymizes");
    let d = decode_png(&out);
    assert_eq!(px(&d, 3, 2), &[0, 9, 0xFF, 0xFF]);
    assert_eq!(px(&d, 0, 0), px(&decode_png(&input), 0, 0));
}

#[test]
fn png_palette_keeps_indices_and_gains_a_fill_entry_when_there_is_room() {
    let (w, h) = (12u32, 7u32);
    let palette = [255, 0, 0, 0, 255, 0, 0, 0, 255, 200, 200, 200];
    let trns = [0u8, 128];
    let pixels: Vec<u8> = noise((w * h) as usize, 8).iter().map(|b| b % 4).collect();
    let input = encode_png(&PngSpec {
        palette: Some(&palette),
        trns: Some(&trns),
        metadata: true,
        ..spec(w, h, png::ColorType::Indexed, png::BitDepth::Eight, &pixels)
    });
    let regions = [region(3, 3, 4, 10)];
    let (out, outcome) = anonymize(&input, &regions, 0, crate::engine::DEFAULT_MAX_DECODED).expect("anonymizes");
    assert_eq!(outcome.burned_area, 16);
    assert_only_critical_chunks(&out);
    assert!(!contains(&out, MARKER));
    let d = decode_png(&out);
    assert_eq!(d.color, png::ColorType::Indexed);
    let out_palette = d.palette.clone().expect("PLTE kept");
    assert_eq!(&out_palette[..12], &palette);
    assert_eq!(&out_palette[12..], &[0, 0, 0]);
    assert_eq!(d.trns.as_deref(), Some(&trns[..]));
    for y in 0..h {
        for x in 0..w {
            let expected = if inside(&regions, x, y) { 4 } else { pixels[(y * w + x) as usize] };
            assert_eq!(px(&d, x, y), &[expected], "at {x},{y}");
        }
    }

    // With no region, the palette is left exactly as it was.
    let (out, _) = anonymize(&input, &[], 0, crate::engine::DEFAULT_MAX_DECODED).expect("anonymizes");
    assert_eq!(decode_png(&out).palette.as_deref(), Some(&palette[..]));
}

#[test]
fn png_full_packed_palette_uses_the_nearest_opaque_entry() {
    let (w, h) = (7u32, 5u32);
    let palette = [0, 0, 0, 10, 10, 10, 200, 200, 200, 0, 0, 255];
    let trns = [0u8];
    let line = (w as usize * 2).div_ceil(8);
    let values: Vec<u8> = noise((w * h) as usize, 9).iter().map(|b| b % 4).collect();
    let mut pixels = vec![0u8; line * h as usize];
    for y in 0..h as usize {
        for x in 0..w as usize {
            pixels[y * line + x / 4] |= values[y * w as usize + x] << (6 - 2 * (x % 4));
        }
    }
    let input = encode_png(&PngSpec {
        palette: Some(&palette),
        trns: Some(&trns),
        ..spec(w, h, png::ColorType::Indexed, png::BitDepth::Two, &pixels)
    });
    let regions = [region(1, 1, 5, 3)];
    let (out, _) = anonymize(&input, &regions, 0, crate::engine::DEFAULT_MAX_DECODED).expect("anonymizes");
    let d = decode_png(&out);
    assert_eq!(d.depth, png::BitDepth::Two);
    assert_eq!(d.palette.as_deref(), Some(&palette[..]));
    for y in 0..h {
        for x in 0..w {
            let expected = if inside(&regions, x, y) { 1 } else { values[(y * w + x) as usize] };
            assert_eq!(packed(&d, x, y), expected, "at {x},{y}");
        }
    }
}

#[test]
fn png_interlaced_input_is_written_non_interlaced_with_the_same_pixels() {
    let (w, h) = (9usize, 7usize);
    let image = noise(w * h, 10);
    let passes = [
        (0, 0, 8, 8),
        (4, 0, 8, 8),
        (0, 4, 4, 8),
        (2, 0, 4, 4),
        (0, 2, 2, 4),
        (1, 0, 2, 2),
        (0, 1, 1, 2),
    ];
    let mut raw = Vec::new();
    for (x0, y0, dx, dy) in passes {
        if x0 >= w {
            continue;
        }
        for y in (y0..h).step_by(dy) {
            raw.push(0);
            raw.extend((x0..w).step_by(dx).map(|x| image[y * w + x]));
        }
    }
    let mut ihdr = (w as u32).to_be_bytes().to_vec();
    ihdr.extend_from_slice(&(h as u32).to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 1]);
    let mut input = PNG_SIGNATURE.to_vec();
    input.extend(chunk(b"IHDR", &ihdr));
    input.extend(chunk(b"tEXt", &[b"Patient\0".as_slice(), MARKER].concat()));
    input.extend(chunk(b"IDAT", &zlib_stored(&raw)));
    input.extend(chunk(b"IEND", &[]));
    assert!(decode_png(&input).interlaced);
    let (out, outcome) = anonymize(&input, &[region(0, 0, 2, 1)], 0, crate::engine::DEFAULT_MAX_DECODED).expect("anonymizes");
    assert_eq!(outcome.metadata_segments_removed, 1);
    let d = decode_png(&out);
    assert!(!d.interlaced);
    let mut expected = image.clone();
    expected[0] = 0;
    expected[1] = 0;
    assert_eq!(&d.pixels[..w * h], &expected[..]);
}

#[test]
fn png_bytes_after_iend_are_dropped_and_counted() {
    let pixels = noise(4 * 4, 11);
    let mut input = encode_png(&spec(4, 4, png::ColorType::Grayscale, png::BitDepth::Eight, &pixels));
    input.extend_from_slice(MARKER);
    let (out, outcome) = anonymize(&input, &[], 0, crate::engine::DEFAULT_MAX_DECODED).expect("anonymizes");
    assert_eq!(outcome.metadata_segments_removed, 1);
    assert!(!contains(&out, MARKER));
    assert!(out.ends_with(&chunk(b"IEND", &[])));
}

#[test]
fn png_oversized_headers_are_rejected_before_decoding() {
    let mut ihdr = 100_000u32.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&100_000u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 6, 0, 0, 0]);
    let mut input = PNG_SIGNATURE.to_vec();
    input.extend(chunk(b"IHDR", &ihdr));
    input.extend(chunk(b"IDAT", &zlib_stored(&[0])));
    input.extend(chunk(b"IEND", &[]));
    match anonymize(&input, &[], 0, crate::engine::DEFAULT_MAX_DECODED) {
        Err(Error::DecodeLimit { needed, limit }) => assert!(needed > limit && limit == crate::engine::DEFAULT_MAX_DECODED),
        other => panic!("expected a decode limit, got {other:?}"),
    }
}

#[test]
fn png_truncations_and_corruptions_are_errors_not_panics() {
    let pixels = noise(16 * 12 * 3, 12);
    let input = encode_png(&PngSpec {
        metadata: true,
        ..spec(16, 12, png::ColorType::Rgb, png::BitDepth::Eight, &pixels)
    });
    for len in 0..input.len() {
        match anonymize(&input[..len], &[region(1, 1, 3, 3)], 0, crate::engine::DEFAULT_MAX_DECODED) {
            Err(Error::Image { format: "PNG", .. }) | Err(Error::UnknownFormat) => {}
            other => panic!("truncation at {len} gave {other:?}"),
        }
    }
    let flips = noise(600, 13);
    for (i, pair) in flips.chunks(2).enumerate() {
        let mut bad = input.clone();
        let at = 8 + (usize::from(pair[0]) * 7 + i * 13) % (input.len() - 8);
        bad[at] ^= pair[1] | 1;
        let _ = anonymize(&bad, &[region(0, 0, 2, 2)], 0, crate::engine::DEFAULT_MAX_DECODED);
    }
    let mut garbage = PNG_SIGNATURE.to_vec();
    garbage.extend(noise(300, 14));
    assert!(anonymize(&garbage, &[], 0, crate::engine::DEFAULT_MAX_DECODED).is_err());
}
