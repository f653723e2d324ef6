//! PNG: the chunk walk and header checks, decoding, lossless burning (packed, 8- and 16-bit,
//! palette and alpha) and re-encoding with only `IHDR`, `PLTE`, `tRNS`, `IDAT` and `IEND`.

use super::area::{clip_all, union_area};
use super::{guarded, image_error, RasterFormat, RasterOutcome, PNG_SIGNATURE};
use crate::error::{Error, Result};
use crate::ocr::Luma;
use crate::region::Region;

fn png_error(reason: impl std::fmt::Display) -> Error {
    image_error("PNG", reason)
}

/// What the chunk walk learned about a PNG before decoding.
struct PngLayout {
    removed: u32,
}

/// Walks the chunk list: checks the signature, the IHDR and the declared decoded size, and counts the
/// chunks that will not be written back. CRCs are left to the decoder.
fn walk_png(input: &[u8], limit: u64) -> Result<PngLayout> {
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
            check_png_header(&input[data_start..data_end], limit)?;
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

/// Checks an IHDR payload and that the decoded image fits in `limit` bytes.
fn check_png_header(ihdr: &[u8], limit: u64) -> Result<()> {
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
    let needed = row_bytes.saturating_mul(height);
    if needed > limit {
        return Err(Error::DecodeLimit { needed, limit });
    }
    Ok(())
}

/// The PNG's first frame as luminance (8 bits, palette and alpha expanded), for the burned-in
/// text safety net.
pub(super) fn png_luma(input: &[u8], limit: u64) -> Result<Luma> {
    walk_png(input, limit)?;
    guarded("PNG", || {
        let (_, pixels, frame) = first_frame(input, png::Transformations::EXPAND | png::Transformations::STRIP_16, limit)?;
        let channels = frame.color_type.samples();
        let (w, h) = (frame.width as usize, frame.height as usize);
        let rows = pixels.chunks(frame.line_size).take(h);
        let packed: Vec<u8> = rows.flat_map(|r| r[..w * channels].iter().copied()).collect();
        let pixels = match channels {
            1 | 2 => packed.iter().step_by(channels).copied().collect(),
            _ => super::luma_of_rgb(&packed, channels),
        };
        Ok(Luma {
            width: frame.width,
            height: frame.height,
            pixels,
        })
    })
}

/// A PNG's reader (for its header), its first frame's samples and their layout.
type FirstFrame<'a> = (png::Reader<&'a [u8]>, Vec<u8>, png::OutputInfo);

/// The first frame decoded with `transformations` (text and ICC chunks ignored), refused before
/// decoding when it would take more than `limit` bytes.
fn first_frame(input: &[u8], transformations: png::Transformations, limit: u64) -> Result<FirstFrame<'_>> {
    let mut decoder = png::Decoder::new(input);
    decoder.set_transformations(transformations);
    decoder.set_ignore_text_chunk(true);
    decoder.set_ignore_iccp_chunk(true);
    let mut reader = decoder.read_info().map_err(png_error)?;
    let size = reader.output_buffer_size();
    if size as u64 > limit {
        return Err(Error::DecodeLimit {
            needed: size as u64,
            limit,
        });
    }
    let mut pixels = vec![0u8; size];
    let frame = reader.next_frame(&mut pixels).map_err(png_error)?;
    Ok((reader, pixels, frame))
}

pub(super) fn anonymize_png(input: &[u8], regions: &[Region], fill: u16, limit: u64) -> Result<(Vec<u8>, RasterOutcome)> {
    let layout = walk_png(input, limit)?;
    guarded("PNG", || reencode_png(input, regions, fill, layout.removed, limit))
}

fn reencode_png(input: &[u8], regions: &[Region], fill: u16, removed: u32, limit: u64) -> Result<(Vec<u8>, RasterOutcome)> {
    let (reader, mut pixels, frame) = first_frame(input, png::Transformations::IDENTITY, limit)?;
    let (width, height) = (reader.info().width, reader.info().height);
    let palette = reader.info().palette.as_ref().map(|p| p.to_vec());
    let trns = reader.info().trns.as_ref().map(|t| t.to_vec());
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

    let mut out = Vec::with_capacity(input.len().min(pixels.len()) / 2 + 1024);
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

#[cfg(test)]
mod tests;
