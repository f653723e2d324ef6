//! JPEG: the marker-by-marker metadata strip (lossless, entropy-coded data copied verbatim) and,
//! when a region intersects the image, decoding, burning and re-encoding.

use super::area::{clip_all, union_area};
use super::{guarded, image_error, RasterFormat, RasterOutcome, JPEG_REENCODE_QUALITY};
use crate::error::{Error, Result};
use crate::ocr::Luma;
use crate::region::Region;

fn jpeg_error(reason: impl std::fmt::Display) -> Error {
    image_error("JPEG", reason)
}

/// The frame header of the first SOFn segment.
#[derive(Debug, Clone, Copy)]
struct JpegFrame {
    width: u16,
    height: u16,
    components: u8,
    /// Bytes its samples take decoded.
    decoded: u64,
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
    let mut jpeg_ls = false;
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
            // JPEG-LS (ISO 14495-1) parameters are needed to decode; its frame header is SOF55 below.
            0xF8 => out.extend_from_slice(segment),
            0xC8 | 0xF0..=0xF6 | 0xF9..=0xFD => removed += 1,
            0xC0..=0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF | 0xF7 => {
                let parsed = parse_sof(payload)?;
                frame.get_or_insert(parsed);
                jpeg_ls |= code == 0xF7;
                out.extend_from_slice(segment);
            }
            0xDA => {
                if frame.is_none() {
                    return Err(jpeg_error("scan before frame header"));
                }
                scans += 1;
                out.extend_from_slice(segment);
                let ecs_end = entropy_coded_end(input, pos, jpeg_ls)?;
                out.extend_from_slice(&input[pos..ecs_end]);
                pos = ecs_end;
            }
            // DHT, DAC, DQT, DNL, DRI, DHP, EXP.
            _ => out.extend_from_slice(segment),
        }
    }
}

/// Parses a SOFn payload and reckons its decoded size.
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
    let decoded = u64::from(width) * u64::from(height) * u64::from(components) * bytes_per_sample;
    Ok(JpegFrame {
        width,
        height,
        components,
        decoded,
    })
}

/// The offset of the first marker after entropy-coded data starting at `start` (the first 0xFF of
/// any fill run before it). Stuffed 0xFF00 and RSTn stay inside the data; in JPEG-LS scans
/// (`jpeg_ls`) 0xFF is followed by a stuffed zero bit, so any byte below 0x80 is data too.
fn entropy_coded_end(input: &[u8], start: usize, jpeg_ls: bool) -> Result<usize> {
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
            Some(&b) if jpeg_ls && b < 0x80 => i = k + 1,
            Some(_) => return Ok(ff),
        }
    }
}

pub(super) fn anonymize_jpeg(input: &[u8], regions: &[Region], fill: u16, limit: u64) -> Result<(Vec<u8>, RasterOutcome)> {
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
    if stripped.frame.decoded > limit {
        return Err(Error::DecodeLimit {
            needed: stripped.frame.decoded,
            limit,
        });
    }
    let (pixels, color) = guarded("JPEG", || decode_jpeg(&stripped.bytes, width, height, limit))?;
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

/// The JPEG's pixels as luminance, for the burned-in text safety net.
pub(super) fn jpeg_luma(input: &[u8], limit: u64) -> Result<Luma> {
    let stripped = strip_jpeg(input)?;
    let (width, height) = (u32::from(stripped.frame.width), u32::from(stripped.frame.height));
    if stripped.frame.decoded > limit {
        return Err(Error::DecodeLimit {
            needed: stripped.frame.decoded,
            limit,
        });
    }
    let (pixels, color) = guarded("JPEG", || decode_jpeg(&stripped.bytes, width, height, limit))?;
    let pixels = match color {
        jpeg_encoder::ColorType::Luma => pixels,
        _ => super::luma_of_rgb(&pixels, 3),
    };
    Ok(Luma { width, height, pixels })
}

/// Decodes a stripped JPEG to 8-bit gray or RGB samples of exactly `width` × `height`.
fn decode_jpeg(bytes: &[u8], width: u32, height: u32, limit: u64) -> Result<(Vec<u8>, jpeg_encoder::ColorType)> {
    let mut decoder = jpeg_decoder::Decoder::new(bytes);
    decoder.set_max_decoding_buffer_size(usize::try_from(limit).unwrap_or(usize::MAX));
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
mod tests;
