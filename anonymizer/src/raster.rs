//! De-identification of plain raster uploads (PNG and JPEG files that are not DICOM).
//!
//! This module owns three things:
//! - recognising PNG and JPEG by their magic bytes ([`sniff`]);
//! - removing every metadata carrier: a PNG is decoded and re-encoded with only `IHDR`, `PLTE`,
//!   `tRNS`, `IDAT` and `IEND`; a JPEG keeps only the segments a decoder needs plus a minimal JFIF
//!   `APP0` and Adobe `APP14` (all other `APPn`, `COM` and bytes after `EOI` are dropped);
//! - burning rectangular [`Region`]s to a fill value. PNG burns are lossless; a JPEG with a region
//!   that intersects the image is decoded and re-encoded at quality 95, otherwise its entropy-coded
//!   data is copied byte for byte.
//!
//! Sizes declared by headers are checked against [`MAX_DECODED_BYTES`] before any pixel buffer is
//! allocated. Error reasons come from the codecs or are fixed texts: never values read from the file.

use crate::error::{Error, Result};
use crate::region::Region;
use serde::Serialize;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// The most bytes a decoded image may take (width × height × channels × bytes per sample).
pub const MAX_DECODED_BYTES: u64 = 512 * 1024 * 1024;

/// JPEG quality used when a JPEG has to be re-encoded after burning.
pub const JPEG_REENCODE_QUALITY: u8 = 95;

const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];

/// The raster formats this module de-identifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RasterFormat {
    /// Portable Network Graphics.
    Png,
    /// JPEG (JFIF, Exif or bare JPEG interchange format).
    Jpeg,
}

impl RasterFormat {
    /// The name used in [`Error::Image`].
    pub fn name(self) -> &'static str {
        match self {
            RasterFormat::Png => "PNG",
            RasterFormat::Jpeg => "JPEG",
        }
    }
}

/// What [`anonymize`] did to one image.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RasterOutcome {
    /// The format of the input (and of the output).
    pub format: RasterFormat,
    /// Image width in pixels.
    pub width: u32,
    /// Image height in pixels.
    pub height: u32,
    /// PNG chunks or JPEG segments dropped (bytes after the end marker count as one).
    pub metadata_segments_removed: u32,
    /// Pixels filled, after clipping to the image; pixels covered by several regions count once.
    pub burned_area: u64,
    /// True when pixels were decoded and re-encoded (always for PNG; for JPEG only when burning).
    pub reencoded: bool,
}

/// Recognises PNG and JPEG by their magic bytes.
pub fn sniff(input: &[u8]) -> Option<RasterFormat> {
    if input.starts_with(&PNG_SIGNATURE) {
        Some(RasterFormat::Png)
    } else if input.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(RasterFormat::Jpeg)
    } else {
        None
    }
}

/// Removes all metadata from a PNG or JPEG and burns `regions` to `fill`.
///
/// `fill` is clamped to the largest sample value of the image's bit depth. Inside burned regions an
/// alpha channel becomes fully opaque; a palette image gets the palette entry of gray level `fill`
/// (added to the palette when there is room, else the nearest opaque entry).
pub fn anonymize(input: &[u8], regions: &[Region], fill: u16) -> Result<(Vec<u8>, RasterOutcome)> {
    match sniff(input) {
        Some(RasterFormat::Png) => anonymize_png(input, regions, fill),
        Some(RasterFormat::Jpeg) => anonymize_jpeg(input, regions, fill),
        None => Err(Error::UnknownFormat),
    }
}

fn image_error(format: &'static str, reason: impl std::fmt::Display) -> Error {
    let mut reason = reason.to_string();
    if reason.len() > 200 {
        let mut cut = 200;
        while !reason.is_char_boundary(cut) {
            cut -= 1;
        }
        reason.truncate(cut);
    }
    Error::Image { format, reason }
}

fn png_error(reason: impl std::fmt::Display) -> Error {
    image_error("PNG", reason)
}

fn jpeg_error(reason: impl std::fmt::Display) -> Error {
    image_error("JPEG", reason)
}

/// Runs a codec call, turning a panic inside the codec into an error.
fn guarded<T>(format: &'static str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| Err(image_error(format, "decoder failed on malformed data")))
}

/// The clipped, non-empty regions as half-open (x0, y0, x1, y1).
fn clip_all(regions: &[Region], cols: u32, rows: u32) -> Vec<(u32, u32, u32, u32)> {
    regions.iter().filter_map(|r| r.clip(cols, rows)).collect()
}

/// Area of the union of half-open rectangles.
fn union_area(rects: &[(u32, u32, u32, u32)]) -> u64 {
    let mut ys: Vec<u32> = rects.iter().flat_map(|r| [r.1, r.3]).collect();
    ys.sort_unstable();
    ys.dedup();
    let mut area = 0u64;
    let mut spans: Vec<(u32, u32)> = Vec::new();
    for band in ys.windows(2) {
        let (ya, yb) = (band[0], band[1]);
        spans.clear();
        spans.extend(rects.iter().filter(|r| r.1 <= ya && r.3 >= yb).map(|r| (r.0, r.2)));
        spans.sort_unstable();
        let mut covered = 0u64;
        let mut current: Option<(u32, u32)> = None;
        for &(a, b) in &spans {
            current = match current {
                Some((ca, cb)) if a <= cb => Some((ca, cb.max(b))),
                Some((ca, cb)) => {
                    covered += u64::from(cb - ca);
                    Some((a, b))
                }
                None => Some((a, b)),
            };
        }
        if let Some((ca, cb)) = current {
            covered += u64::from(cb - ca);
        }
        area += covered * u64::from(yb - ya);
    }
    area
}

// ---------------------------------------------------------------------------------------------
// PNG
// ---------------------------------------------------------------------------------------------

/// What the chunk walk learned about a PNG before decoding.
struct PngLayout {
    removed: u32,
}

/// Walks the chunk list: checks the signature, the IHDR and the declared decoded size, and counts the
/// chunks that will not be written back. CRCs are left to the decoder.
fn walk_png(input: &[u8]) -> Result<PngLayout> {
    let mut pos = PNG_SIGNATURE.len();
    let mut removed = 0u32;
    let mut first = true;
    loop {
        let header = input.get(pos..pos + 8).ok_or_else(|| png_error("truncated chunk header"))?;
        let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
        if len > 0x7FFF_FFFF {
            return Err(png_error("chunk length out of range"));
        }
        let kind = [header[4], header[5], header[6], header[7]];
        let data_start = pos + 8;
        let data_end = data_start
            .checked_add(len as usize)
            .ok_or_else(|| png_error("chunk length out of range"))?;
        let chunk_end = data_end.checked_add(4).ok_or_else(|| png_error("chunk length out of range"))?;
        if chunk_end > input.len() {
            return Err(png_error("truncated chunk"));
        }
        if first {
            if &kind != b"IHDR" {
                return Err(png_error("first chunk is not IHDR"));
            }
            check_png_header(&input[data_start..data_end])?;
            first = false;
        }
        match &kind {
            b"IHDR" | b"PLTE" | b"tRNS" | b"IDAT" => {}
            b"IEND" => {
                if chunk_end < input.len() {
                    removed += 1;
                }
                return Ok(PngLayout { removed });
            }
            _ => removed += 1,
        }
        pos = chunk_end;
    }
}

/// Checks an IHDR payload and that the decoded image fits in [`MAX_DECODED_BYTES`].
fn check_png_header(ihdr: &[u8]) -> Result<()> {
    if ihdr.len() != 13 {
        return Err(png_error("IHDR has the wrong length"));
    }
    let width = u64::from(u32::from_be_bytes([ihdr[0], ihdr[1], ihdr[2], ihdr[3]]));
    let height = u64::from(u32::from_be_bytes([ihdr[4], ihdr[5], ihdr[6], ihdr[7]]));
    let bits = u64::from(ihdr[8]);
    let channels = match ihdr[9] {
        0 | 3 => 1,
        2 => 3,
        4 => 2,
        6 => 4,
        _ => return Err(png_error("invalid colour type")),
    };
    if !matches!(bits, 1 | 2 | 4 | 8 | 16) {
        return Err(png_error("invalid bit depth"));
    }
    if width == 0 || height == 0 {
        return Err(png_error("image has zero width or height"));
    }
    let row_bytes = (width * channels * bits).div_ceil(8);
    match row_bytes.checked_mul(height) {
        Some(total) if total <= MAX_DECODED_BYTES => Ok(()),
        _ => Err(png_error("image too large to decode")),
    }
}

fn anonymize_png(input: &[u8], regions: &[Region], fill: u16) -> Result<(Vec<u8>, RasterOutcome)> {
    let layout = walk_png(input)?;
    guarded("PNG", || reencode_png(input, regions, fill, layout.removed))
}

fn reencode_png(input: &[u8], regions: &[Region], fill: u16, removed: u32) -> Result<(Vec<u8>, RasterOutcome)> {
    let mut decoder = png::Decoder::new(input);
    decoder.set_transformations(png::Transformations::IDENTITY);
    decoder.set_ignore_text_chunk(true);
    decoder.set_ignore_iccp_chunk(true);
    let mut reader = decoder.read_info().map_err(png_error)?;
    let (width, height) = (reader.info().width, reader.info().height);
    let palette = reader.info().palette.as_ref().map(|p| p.to_vec());
    let trns = reader.info().trns.as_ref().map(|t| t.to_vec());
    let size = reader.output_buffer_size();
    if size as u64 > MAX_DECODED_BYTES {
        return Err(png_error("image too large to decode"));
    }
    let mut pixels = vec![0u8; size];
    let frame = reader.next_frame(&mut pixels).map_err(png_error)?;
    if frame.width != width || frame.height != height {
        return Err(png_error("first frame does not cover the image"));
    }
    let color = frame.color_type;
    let depth = frame.bit_depth;
    let line = frame.line_size;
    let bits = depth as u8;
    let channels = color.samples();
    let needed_line = (width as usize).checked_mul(channels * bits as usize).map(|b| b.div_ceil(8));
    let needed_total = line.checked_mul(height as usize);
    if needed_line.is_none_or(|n| n > line) || needed_total.is_none_or(|n| n > pixels.len()) {
        return Err(png_error("decoded buffer does not match the header"));
    }

    let rects = clip_all(regions, width, height);
    let mut palette = palette;
    let value = match (color, rects.is_empty()) {
        (_, true) => 0,
        (png::ColorType::Indexed, false) => {
            let entries = palette.as_mut().ok_or_else(|| png_error("palette image without PLTE"))?;
            u16::from(palette_fill(entries, trns.as_deref(), bits, fill.min(255) as u8)?)
        }
        _ => fill.min(((1u32 << bits) - 1) as u16),
    };
    let alpha = matches!(color, png::ColorType::GrayscaleAlpha | png::ColorType::Rgba);
    for rect in &rects {
        burn_png_rect(&mut pixels, line, *rect, channels, bits, value, alpha);
    }

    let mut out = Vec::with_capacity(input.len().min(size) / 2 + 1024);
    {
        let mut encoder = png::Encoder::new(&mut out, width, height);
        encoder.set_color(color);
        encoder.set_depth(depth);
        encoder.set_compression(png::Compression::Default);
        if let Some(p) = palette {
            encoder.set_palette(p);
        }
        if let Some(t) = trns {
            encoder.set_trns(t);
        }
        let mut writer = encoder.write_header().map_err(png_error)?;
        writer.write_image_data(&pixels[..line * height as usize]).map_err(png_error)?;
        writer.finish().map_err(png_error)?;
    }
    let outcome = RasterOutcome {
        format: RasterFormat::Png,
        width,
        height,
        metadata_segments_removed: removed,
        burned_area: union_area(&rects),
        reencoded: true,
    };
    Ok((out, outcome))
}

/// Chooses the palette index for gray level `gray`: an opaque exact match, else a new entry when the
/// bit depth has room, else the nearest entry (opaque entries first).
fn palette_fill(palette: &mut Vec<u8>, trns: Option<&[u8]>, bits: u8, gray: u8) -> Result<u8> {
    let entries = palette.len() / 3;
    if entries == 0 {
        return Err(png_error("empty palette"));
    }
    let alpha = |i: usize| trns.and_then(|t| t.get(i)).copied().unwrap_or(255);
    let distance = |i: usize| -> u32 {
        palette[3 * i..3 * i + 3]
            .iter()
            .map(|&c| (i32::from(c) - i32::from(gray)).unsigned_abs().pow(2))
            .sum()
    };
    if let Some(i) = (0..entries).find(|&i| alpha(i) == 255 && distance(i) == 0) {
        return u8::try_from(i).map_err(|_| png_error("palette too long"));
    }
    let room = entries < (1usize << bits).min(256);
    if room && trns.is_none_or(|t| t.len() <= entries) {
        palette.extend_from_slice(&[gray, gray, gray]);
        return u8::try_from(entries).map_err(|_| png_error("palette too long"));
    }
    let best = (0..entries).min_by_key(|&i| (alpha(i) != 255, distance(i))).unwrap_or(0);
    u8::try_from(best).map_err(|_| png_error("palette too long"))
}

/// Fills one clipped rectangle of a raw (unfiltered, big-endian) PNG buffer.
fn burn_png_rect(pixels: &mut [u8], line: usize, rect: (u32, u32, u32, u32), channels: usize, bits: u8, value: u16, alpha: bool) {
    let (x0, y0, x1, y1) = rect;
    let max = ((1u32 << bits) - 1) as u16;
    for y in y0 as usize..y1 as usize {
        let row = &mut pixels[y * line..(y + 1) * line];
        if bits >= 8 {
            let bps = usize::from(bits / 8);
            let stride = channels * bps;
            for x in x0 as usize..x1 as usize {
                let px = &mut row[x * stride..(x + 1) * stride];
                for (c, sample) in px.chunks_exact_mut(bps).enumerate() {
                    let v = if alpha && c == channels - 1 { max } else { value };
                    if bps == 1 {
                        sample[0] = v as u8;
                    } else {
                        sample.copy_from_slice(&v.to_be_bytes());
                    }
                }
            }
        } else {
            let bits = usize::from(bits);
            let mask = (1u8 << bits) - 1;
            for x in x0 as usize..x1 as usize {
                let bit = x * bits;
                let shift = 8 - bits - bit % 8;
                let byte = &mut row[bit / 8];
                *byte = (*byte & !(mask << shift)) | (((value as u8) & mask) << shift);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// JPEG
// ---------------------------------------------------------------------------------------------

/// The frame header of the first SOFn segment.
#[derive(Debug, Clone, Copy)]
struct JpegFrame {
    width: u16,
    height: u16,
    components: u8,
}

/// A JPEG with its metadata segments removed.
struct StrippedJpeg {
    bytes: Vec<u8>,
    removed: u32,
    frame: JpegFrame,
}

/// Strips a JPEG stream of every metadata segment (APPn other than minimal JFIF/Adobe, COM,
/// bytes after EOI). Returns the stripped stream and how many segments were removed.
pub(crate) fn strip_jpeg_metadata(input: &[u8]) -> Result<(Vec<u8>, u32)> {
    strip_jpeg(input).map(|s| (s.bytes, s.removed))
}

/// Copies a JPEG marker by marker, keeping only what a decoder needs, a minimal JFIF APP0 and a
/// minimal Adobe APP14. Entropy-coded data (with its RSTn markers) is copied verbatim; fill bytes
/// before markers are dropped; copying stops at EOI.
fn strip_jpeg(input: &[u8]) -> Result<StrippedJpeg> {
    if !input.starts_with(&[0xFF, 0xD8]) {
        return Err(jpeg_error("missing SOI marker"));
    }
    let mut out = Vec::with_capacity(input.len());
    out.extend_from_slice(&[0xFF, 0xD8]);
    let mut pos = 2usize;
    let mut removed = 0u32;
    let mut frame: Option<JpegFrame> = None;
    let mut scans = 0u32;
    let mut have_jfif = false;
    let mut have_adobe = false;
    loop {
        // Marker, possibly preceded by 0xFF fill bytes.
        if input.get(pos) != Some(&0xFF) {
            return Err(if pos >= input.len() {
                jpeg_error("truncated before EOI")
            } else {
                jpeg_error("expected a marker")
            });
        }
        while input.get(pos) == Some(&0xFF) {
            pos += 1;
        }
        let code = *input.get(pos).ok_or_else(|| jpeg_error("truncated before EOI"))?;
        pos += 1;
        match code {
            0xD9 => {
                if frame.is_none() || scans == 0 {
                    return Err(jpeg_error("EOI before any frame or scan"));
                }
                out.extend_from_slice(&[0xFF, 0xD9]);
                if pos < input.len() {
                    removed += 1;
                }
                let frame = frame.ok_or_else(|| jpeg_error("no frame header"))?;
                return Ok(StrippedJpeg {
                    bytes: out,
                    removed,
                    frame,
                });
            }
            0x01 => continue, // TEM: standalone, carries nothing.
            0x00 | 0xD8 | 0xD0..=0xD7 | 0x02..=0xBF => return Err(jpeg_error("unexpected marker")),
            _ => {}
        }
        let len_bytes = input.get(pos..pos + 2).ok_or_else(|| jpeg_error("truncated segment length"))?;
        let len = usize::from(u16::from_be_bytes([len_bytes[0], len_bytes[1]]));
        if len < 2 {
            return Err(jpeg_error("segment length too small"));
        }
        let end = pos + len;
        let payload = input.get(pos + 2..end).ok_or_else(|| jpeg_error("truncated segment"))?;
        let segment = &input[pos - 2..end];
        pos = end;
        match code {
            0xE0 => {
                if !have_jfif && payload.len() >= 14 && payload.starts_with(b"JFIF\0") {
                    // Version, units and density only; the thumbnail is dropped.
                    out.extend_from_slice(&[0xFF, 0xE0, 0x00, 0x10]);
                    out.extend_from_slice(&payload[..12]);
                    out.extend_from_slice(&[0, 0]);
                    have_jfif = true;
                    if payload.len() > 14 {
                        removed += 1;
                    }
                } else {
                    removed += 1;
                }
            }
            0xEE => {
                if !have_adobe && payload.len() >= 12 && payload.starts_with(b"Adobe") {
                    out.extend_from_slice(&[0xFF, 0xEE, 0x00, 0x0E]);
                    out.extend_from_slice(&payload[..12]);
                    have_adobe = true;
                } else {
                    removed += 1;
                }
            }
            0xE1..=0xED | 0xEF | 0xFE => removed += 1,
            // JPEG-LS frame header and parameters are needed to decode; other JPGn and JPG are reserved.
            0xF7 | 0xF8 => out.extend_from_slice(segment),
            0xC8 | 0xF0..=0xF6 | 0xF9..=0xFD => removed += 1,
            0xC0..=0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => {
                let parsed = parse_sof(payload)?;
                frame.get_or_insert(parsed);
                out.extend_from_slice(segment);
            }
            0xDA => {
                if frame.is_none() {
                    return Err(jpeg_error("scan before frame header"));
                }
                scans += 1;
                out.extend_from_slice(segment);
                let ecs_end = entropy_coded_end(input, pos)?;
                out.extend_from_slice(&input[pos..ecs_end]);
                pos = ecs_end;
            }
            // DHT, DAC, DQT, DNL, DRI, DHP, EXP.
            _ => out.extend_from_slice(segment),
        }
    }
}

/// Parses a SOFn payload and checks the declared decoded size.
fn parse_sof(payload: &[u8]) -> Result<JpegFrame> {
    if payload.len() < 6 {
        return Err(jpeg_error("frame header too short"));
    }
    let precision = payload[0];
    let height = u16::from_be_bytes([payload[1], payload[2]]);
    let width = u16::from_be_bytes([payload[3], payload[4]]);
    let components = payload[5];
    if payload.len() < 6 + 3 * usize::from(components) || components == 0 {
        return Err(jpeg_error("frame header inconsistent with its component count"));
    }
    if width == 0 {
        return Err(jpeg_error("image has zero width"));
    }
    let bytes_per_sample = if precision > 8 { 2 } else { 1 };
    let total = u64::from(width) * u64::from(height) * u64::from(components) * bytes_per_sample;
    if total > MAX_DECODED_BYTES {
        return Err(jpeg_error("image too large to decode"));
    }
    Ok(JpegFrame { width, height, components })
}

/// The offset of the first marker after entropy-coded data starting at `start` (the first 0xFF of
/// any fill run before it). Stuffed 0xFF00 and RSTn stay inside the data.
fn entropy_coded_end(input: &[u8], start: usize) -> Result<usize> {
    let mut i = start;
    loop {
        let ff = i + input
            .get(i..)
            .and_then(|rest| rest.iter().position(|&b| b == 0xFF))
            .ok_or_else(|| jpeg_error("truncated scan data"))?;
        let mut k = ff + 1;
        while input.get(k) == Some(&0xFF) {
            k += 1;
        }
        match input.get(k) {
            None => return Err(jpeg_error("truncated scan data")),
            Some(0x00 | 0xD0..=0xD7) => i = k + 1,
            Some(_) => return Ok(ff),
        }
    }
}

fn anonymize_jpeg(input: &[u8], regions: &[Region], fill: u16) -> Result<(Vec<u8>, RasterOutcome)> {
    let stripped = strip_jpeg(input)?;
    let (width, height) = (u32::from(stripped.frame.width), u32::from(stripped.frame.height));
    let rects = clip_all(regions, width, height);
    if rects.is_empty() {
        let outcome = RasterOutcome {
            format: RasterFormat::Jpeg,
            width,
            height,
            metadata_segments_removed: stripped.removed,
            burned_area: 0,
            reencoded: false,
        };
        return Ok((stripped.bytes, outcome));
    }
    if !matches!(stripped.frame.components, 1 | 3) {
        return Err(jpeg_error(
            "unsupported: burning regions needs a grayscale or three-component colour image",
        ));
    }
    let (pixels, color) = guarded("JPEG", || decode_jpeg(&stripped.bytes, width, height))?;
    let mut pixels = pixels;
    let channels = match color {
        jpeg_encoder::ColorType::Luma => 1,
        _ => 3,
    };
    let value = fill.min(255) as u8;
    let row = width as usize * channels;
    for &(x0, y0, x1, y1) in &rects {
        for y in y0 as usize..y1 as usize {
            pixels[y * row + x0 as usize * channels..y * row + x1 as usize * channels].fill(value);
        }
    }
    let mut out = Vec::with_capacity(stripped.bytes.len() + 1024);
    let encoder = jpeg_encoder::Encoder::new(&mut out, JPEG_REENCODE_QUALITY);
    guarded("JPEG", || {
        encoder
            .encode(&pixels, stripped.frame.width, stripped.frame.height, color)
            .map_err(|e| jpeg_error(format_args!("re-encoding failed: {e}")))
    })?;
    let outcome = RasterOutcome {
        format: RasterFormat::Jpeg,
        width,
        height,
        metadata_segments_removed: stripped.removed,
        burned_area: union_area(&rects),
        reencoded: true,
    };
    Ok((out, outcome))
}

/// Decodes a stripped JPEG to 8-bit gray or RGB samples of exactly `width` × `height`.
fn decode_jpeg(bytes: &[u8], width: u32, height: u32) -> Result<(Vec<u8>, jpeg_encoder::ColorType)> {
    let mut decoder = jpeg_decoder::Decoder::new(bytes);
    decoder.set_max_decoding_buffer_size(MAX_DECODED_BYTES as usize);
    let pixels = decoder.decode().map_err(jpeg_error)?;
    let info = decoder.info().ok_or_else(|| jpeg_error("decoder returned no image information"))?;
    let (color, channels) = match info.pixel_format {
        jpeg_decoder::PixelFormat::L8 => (jpeg_encoder::ColorType::Luma, 1),
        jpeg_decoder::PixelFormat::RGB24 => (jpeg_encoder::ColorType::Rgb, 3),
        jpeg_decoder::PixelFormat::L16 => return Err(jpeg_error("unsupported: burning regions in a JPEG of more than 8 bits")),
        jpeg_decoder::PixelFormat::CMYK32 => return Err(jpeg_error("unsupported: burning regions in a CMYK JPEG")),
    };
    if u32::from(info.width) != width || u32::from(info.height) != height || pixels.len() != width as usize * height as usize * channels {
        return Err(jpeg_error("decoded image does not match its frame header"));
    }
    Ok((pixels, color))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MARKER: &[u8] = b"PHI-MARKER-JOHN-DOE";

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    /// Deterministic pseudo-random bytes.
    fn noise(n: usize, seed: u64) -> Vec<u8> {
        let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (0..n)
            .map(|_| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                (state >> 33) as u8
            })
            .collect()
    }

    fn region(x: u32, y: u32, w: u32, h: u32) -> Region {
        Region { x, y, w, h }
    }

    // ----- PNG helpers -----

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

    fn inside(rects: &[Region], x: u32, y: u32) -> bool {
        rects
            .iter()
            .any(|r| x >= r.x && x < r.x.saturating_add(r.w) && y >= r.y && y < r.y.saturating_add(r.h))
    }

    // ----- JPEG helpers -----

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

    // ----- sniffing and shared helpers -----

    #[test]
    fn formats_are_sniffed_by_magic_bytes() {
        assert_eq!(sniff(&PNG_SIGNATURE), Some(RasterFormat::Png));
        assert_eq!(sniff(&[0xFF, 0xD8, 0xFF, 0xE0]), Some(RasterFormat::Jpeg));
        assert_eq!(sniff(b"DICM"), None);
        assert_eq!(sniff(&[0xFF, 0xD8]), None);
        assert_eq!(anonymize(b"not an image", &[], 0), Err(Error::UnknownFormat));
    }

    #[test]
    fn union_area_counts_overlaps_once() {
        assert_eq!(union_area(&[]), 0);
        assert_eq!(union_area(&[(0, 0, 4, 4), (2, 2, 6, 6)]), 28);
        assert_eq!(union_area(&[(0, 0, 4, 4), (0, 0, 4, 4), (1, 1, 2, 2)]), 16);
        assert_eq!(union_area(&[(0, 0, 2, 10), (5, 0, 7, 10), (1, 3, 6, 4)]), 20 + 20 + 3);
    }

    #[test]
    fn outcome_serializes_with_a_lowercase_format() {
        let outcome = RasterOutcome {
            format: RasterFormat::Jpeg,
            width: 1,
            height: 2,
            metadata_segments_removed: 3,
            burned_area: 4,
            reencoded: false,
        };
        let json = serde_json::to_string(&outcome).expect("serializes");
        assert!(json.contains("\"format\":\"jpeg\""), "{json}");
        assert!(json.contains("\"metadata_segments_removed\":3"), "{json}");
    }

    // ----- PNG -----

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
        let (out, outcome) = anonymize(&input, &[], 0).expect("anonymizes");
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
        let (out, outcome) = anonymize(&input, &regions, 7).expect("anonymizes");
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
        let (out, _) = anonymize(&input, &[region(1, 1, 2, 2)], 1000).expect("anonymizes");
        assert_eq!(px(&decode_png(&out), 1, 1), &[255, 255, 255]);

        // 1-bit gray: any fill above 1 becomes 1.
        let (w, h) = (13u32, 5u32);
        let line = w.div_ceil(8) as usize;
        let bits = vec![0u8; line * h as usize];
        let input = encode_png(&spec(w, h, png::ColorType::Grayscale, png::BitDepth::One, &bits));
        let regions = [region(3, 1, 7, 3)];
        let (out, outcome) = anonymize(&input, &regions, 0xFFFF).expect("anonymizes");
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
        let (out, outcome) = anonymize(&input, &regions, 0x1234).expect("anonymizes");
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
        let (out, _) = anonymize(&input, &regions, 0).expect("anonymizes");
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
        let (out, _) = anonymize(&input, &regions, 9).expect("anonymizes");
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
        let (out, outcome) = anonymize(&input, &regions, 0).expect("anonymizes");
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
        let (out, _) = anonymize(&input, &[], 0).expect("anonymizes");
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
        let (out, _) = anonymize(&input, &regions, 0).expect("anonymizes");
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
        let (out, outcome) = anonymize(&input, &[region(0, 0, 2, 1)], 0).expect("anonymizes");
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
        let (out, outcome) = anonymize(&input, &[], 0).expect("anonymizes");
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
        match anonymize(&input, &[], 0) {
            Err(Error::Image { format: "PNG", reason }) => assert!(reason.contains("too large"), "{reason}"),
            other => panic!("expected a PNG error, got {other:?}"),
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
            match anonymize(&input[..len], &[region(1, 1, 3, 3)], 0) {
                Err(Error::Image { format: "PNG", .. }) | Err(Error::UnknownFormat) => {}
                other => panic!("truncation at {len} gave {other:?}"),
            }
        }
        let flips = noise(600, 13);
        for (i, pair) in flips.chunks(2).enumerate() {
            let mut bad = input.clone();
            let at = 8 + (usize::from(pair[0]) * 7 + i * 13) % (input.len() - 8);
            bad[at] ^= pair[1] | 1;
            let _ = anonymize(&bad, &[region(0, 0, 2, 2)], 0);
        }
        let mut garbage = PNG_SIGNATURE.to_vec();
        garbage.extend(noise(300, 14));
        assert!(anonymize(&garbage, &[], 0).is_err());
    }

    // ----- JPEG -----

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
        let (out, outcome) = anonymize(&input, &[], 0).expect("anonymizes");
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
            let (out, outcome) = anonymize(&input, &[region(w as u32, 0, 5, 5)], 0).expect("anonymizes");
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
        let (out, outcome) = anonymize(&input, &[], 0).expect("anonymizes");
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
        let (out, _) = anonymize(&input, &[], 0).expect("strip works for CMYK");
        assert_eq!(out, clean);
        assert!(jpeg_markers(&out).contains(&0xEE));
        match anonymize(&input, &[region(0, 0, 4, 4)], 0) {
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
        let (out, outcome) = anonymize(&input, &regions, 0).expect("anonymizes");
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
        let (out, outcome) = anonymize(&clean, &[region(8, 0, 8, 16)], 4000).expect("anonymizes");
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
        match anonymize(&input, &[region(0, 0, 1, 1)], 0) {
            Err(Error::Image { format: "JPEG", reason }) => assert!(reason.contains("too large"), "{reason}"),
            other => panic!("expected a JPEG error, got {other:?}"),
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
                match anonymize(&input[..len], regions, 0) {
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
            let _ = anonymize(&bad, &[], 0);
            let _ = anonymize(&bad, &[region(0, 0, 8, 8)], 0);
        }
        let mut garbage = vec![0xFF, 0xD8, 0xFF];
        garbage.extend(noise(300, 18));
        assert!(anonymize(&garbage, &[], 0).is_err());
        assert!(anonymize(&[0xFF, 0xD8, 0xFF, 0xD9], &[], 0).is_err());
    }
}
