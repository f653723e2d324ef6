//! Clean Pixel Data: burns regions out of every frame.
//!
//! Native pixel data is burned in place in the output buffer (rayon over
//! frames and rows). Encapsulated pixel data is decoded with the
//! dicom-transfer-syntax-registry codecs, burned, and re-encoded in the same
//! transfer syntax where an encoder exists; otherwise it is written as native
//! Explicit VR Little Endian and the report says so. Overlay planes (60xx) are
//! burned the same way under Clean Graphics. Encapsulated frames that stay
//! encapsulated lose the text they carry (JPEG APPn / COM, JPEG 2000 COM and JP2
//! boxes; see [`strip_encapsulated_metadata`]).

use crate::dataset::{DataSet, Element, Value, Vr, PIXEL_DATA};
use crate::error::{Error, Result};
use crate::region::{Region, RegionSource};
use crate::syntax::{dictionary_vr, EXPLICIT_LE, RLE};
use dicom_encoding::adapters::{EncodeOptions, PixelDataObject, RawPixelData};
use dicom_encoding::transfer_syntax::{Codec, TransferSyntaxIndex};
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;
use rayon::prelude::*;
use serde::Serialize;
use std::borrow::Cow;

/// What to burn in one image.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BurnPlan {
    /// Rectangles to fill, with their source.
    pub rects: Vec<(Region, RegionSource)>,
    /// If set, fill everything outside the union of these (ultrasound regions).
    pub keep_only: Option<Vec<Region>>,
    /// The stored value written into burned samples.
    pub fill: u16,
}

impl BurnPlan {
    /// Whether there is nothing to burn.
    pub fn is_empty(&self) -> bool {
        self.rects.is_empty() && self.keep_only.is_none()
    }
}

/// One burned region in the report (no pixel values, only geometry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BurnedRegion {
    /// The region as given.
    #[serde(flatten)]
    pub region: Region,
    /// Where it came from.
    pub source: RegionSource,
    /// Pixels filled per frame after clipping to the image.
    pub area_per_frame: u64,
}

/// The geometry of native pixel data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// Rows.
    pub rows: u32,
    /// Columns.
    pub cols: u32,
    /// Samples per pixel.
    pub samples: u32,
    /// Bits allocated per sample.
    pub bits: u32,
    /// Planar configuration 1 (colour-by-plane).
    pub planar: bool,
    /// Number of frames.
    pub frames: u32,
    /// 4:2:2 chroma subsampling of YBR_*_422 native data.
    pub subsampled_422: bool,
    /// A YBR photometric interpretation (chroma filled with its neutral value).
    pub ybr: bool,
}

impl Geometry {
    /// Reads the Image Pixel module attributes.
    pub fn of(ds: &DataSet<'_>) -> Result<Geometry> {
        let need = |tag: u32, name: &str| {
            ds.u16(tag).map(u32::from).ok_or_else(|| Error::PixelData {
                reason: format!("{name} is missing"),
            })
        };
        let pi = ds.text(0x0028_0004).unwrap_or("");
        let g = Geometry {
            rows: need(0x0028_0010, "Rows")?,
            cols: need(0x0028_0011, "Columns")?,
            samples: ds.u16(0x0028_0002).map(u32::from).unwrap_or(1),
            bits: need(0x0028_0100, "BitsAllocated")?,
            planar: ds.u16(0x0028_0006) == Some(1),
            frames: ds
                .int(0x0028_0008)
                .filter(|&n| n > 0)
                .map(|n| n.min(i64::from(u32::MAX)) as u32)
                .unwrap_or(1),
            subsampled_422: pi.ends_with("_422"),
            ybr: pi.starts_with("YBR"),
        };
        if g.subsampled_422 && g.cols % 2 == 1 {
            return Err(Error::PixelData {
                reason: "4:2:2 pixel data needs an even number of columns".into(),
            });
        }
        if g.rows == 0 || g.cols == 0 || g.samples == 0 || !matches!(g.bits, 1 | 8 | 16 | 32) {
            return Err(Error::PixelData {
                reason: "unsupported rows, columns, samples or bits allocated".into(),
            });
        }
        Ok(g)
    }

    /// Bytes per frame (bits for 1-bit data are packed).
    pub fn frame_bytes(&self) -> u64 {
        let px = u64::from(self.rows) * u64::from(self.cols);
        if self.bits == 1 {
            return (px * u64::from(self.samples)).div_ceil(8);
        }
        let per_sample = u64::from(self.bits / 8);
        if self.subsampled_422 {
            return px * 2 * per_sample;
        }
        px * u64::from(self.samples) * per_sample
    }
}

/// Column spans to fill: `(row, x0, x1)` half-open, sorted by row then column, merged.
type Spans = Vec<(u32, u32, u32)>;

/// Data above this size is burned on the rayon pool; below it, thread hand-off costs more than the fill.
const PARALLEL_BYTES: usize = 4 << 20;

fn row_spans(plan: &BurnPlan, g: &Geometry) -> Spans {
    let mut spans: Spans = Vec::new();
    for (r, _) in &plan.rects {
        if let Some((x0, y0, x1, y1)) = r.clip(g.cols, g.rows) {
            spans.extend((y0..y1).map(|y| (y, x0, x1)));
        }
    }
    if let Some(keep) = &plan.keep_only {
        let clipped: Vec<(u32, u32, u32, u32)> = keep.iter().filter_map(|r| r.clip(g.cols, g.rows)).collect();
        let mut kept: Vec<(u32, u32)> = Vec::new();
        for y in 0..g.rows {
            kept.clear();
            kept.extend(
                clipped
                    .iter()
                    .filter(|&&(_, y0, _, y1)| (y0..y1).contains(&y))
                    .map(|&(x0, _, x1, _)| (x0, x1)),
            );
            kept.sort_unstable();
            let mut x = 0;
            for &(k0, k1) in &kept {
                if k0 > x {
                    spans.push((y, x, k0));
                }
                x = x.max(k1);
            }
            if x < g.cols {
                spans.push((y, x, g.cols));
            }
        }
    }
    spans.sort_unstable();
    let mut merged: Spans = Vec::with_capacity(spans.len());
    for (y, a, b) in spans {
        match merged.last_mut() {
            Some(last) if last.0 == y && a <= last.2 => last.2 = last.2.max(b),
            _ => merged.push((y, a, b)),
        }
    }
    merged
}

fn span_area(spans: &Spans) -> u64 {
    spans.iter().map(|&(_, a, b)| u64::from(b - a)).sum()
}

/// The report entries for a plan: each region clipped to the image, plus the area blanked
/// outside ultrasound regions.
pub fn report_regions(plan: &BurnPlan, g: &Geometry) -> Vec<BurnedRegion> {
    let mut out: Vec<BurnedRegion> = plan
        .rects
        .iter()
        .map(|(r, s)| BurnedRegion {
            region: *r,
            source: *s,
            area_per_frame: r
                .clip(g.cols, g.rows)
                .map_or(0, |(x0, y0, x1, y1)| u64::from(x1 - x0) * u64::from(y1 - y0)),
        })
        .collect();
    if let Some(keep) = &plan.keep_only {
        let outside = BurnPlan {
            rects: Vec::new(),
            keep_only: Some(keep.clone()),
            fill: plan.fill,
        };
        out.push(BurnedRegion {
            region: Region {
                x: 0,
                y: 0,
                w: g.cols,
                h: g.rows,
            },
            source: RegionSource::Ultrasound,
            area_per_frame: span_area(&row_spans(&outside, g)),
        });
    }
    out
}

/// Burns native little-endian pixel data in place. Returns the pixels filled (all frames).
pub fn burn_native(data: &mut [u8], g: &Geometry, plan: &BurnPlan) -> Result<u64> {
    let frame = g.frame_bytes();
    let needed = if g.bits == 1 {
        // 1-bit frames are packed with no padding between them.
        (u64::from(g.rows) * u64::from(g.cols) * u64::from(g.samples) * u64::from(g.frames)).div_ceil(8)
    } else {
        frame.saturating_mul(u64::from(g.frames))
    };
    if (data.len() as u64) < needed {
        return Err(Error::PixelData {
            reason: format!("pixel data holds {} bytes, attributes need {needed}", data.len()),
        });
    }
    let spans = row_spans(plan, g);
    let filled = span_area(&spans) * u64::from(g.frames);
    if filled == 0 || frame == 0 {
        return Ok(0);
    }
    let data = &mut data[..needed as usize];
    if g.bits == 1 {
        let bits_per_frame = u64::from(g.rows) * u64::from(g.cols) * u64::from(g.samples);
        for f in 0..u64::from(g.frames) {
            fill_bits(data, f * bits_per_frame, g.cols, &spans, plan.fill != 0);
        }
        return Ok(filled);
    }
    let frame = frame as usize;
    let burner = Burner::new(g, plan.fill);
    if data.len() >= PARALLEL_BYTES && g.frames > 1 {
        data.par_chunks_mut(frame).for_each(|f| burner.frame(f, &spans));
    } else if frame >= PARALLEL_BYTES && !g.planar && !g.subsampled_422 {
        // One large frame: rayon over blocks of rows, each with its own slice of spans.
        let block_rows = 64usize;
        let row_bytes = burner.row_bytes();
        for f in data.chunks_exact_mut(frame) {
            f.par_chunks_mut(row_bytes * block_rows).enumerate().for_each(|(i, block)| {
                let (y0, y1) = ((i * block_rows) as u32, ((i + 1) * block_rows) as u32);
                let lo = spans.partition_point(|s| s.0 < y0);
                let hi = spans.partition_point(|s| s.0 < y1);
                let local: Spans = spans[lo..hi].iter().map(|&(y, a, b)| (y - y0, a, b)).collect();
                burner.frame(block, &local);
            });
        }
    } else {
        for f in data.chunks_exact_mut(frame) {
            burner.frame(f, &spans);
        }
    }
    Ok(filled)
}

/// Writes fill values into one frame's samples for a pixel layout.
struct Burner {
    bps: usize,
    cols: usize,
    rows: usize,
    samples: usize,
    fill: u16,
    neutral: u32,
    ybr: bool,
    planar: bool,
    subsampled_422: bool,
}

impl Burner {
    fn new(g: &Geometry, fill: u16) -> Self {
        Burner {
            bps: (g.bits / 8) as usize,
            cols: g.cols as usize,
            rows: g.rows as usize,
            samples: g.samples as usize,
            fill,
            neutral: 1u32 << (g.bits.min(16) - 1),
            ybr: g.ybr,
            planar: g.planar && g.samples > 1,
            subsampled_422: g.subsampled_422,
        }
    }

    fn row_bytes(&self) -> usize {
        self.cols * self.samples * self.bps
    }

    fn sample_value(&self, s: usize) -> u32 {
        if self.ybr && s > 0 {
            self.neutral
        } else {
            u32::from(self.fill)
        }
    }

    fn write(&self, dst: &mut [u8], value: u32) {
        match self.bps {
            1 => dst[0] = value.min(255) as u8,
            2 => dst.copy_from_slice(&(value.min(0xFFFF) as u16).to_le_bytes()),
            _ => dst.copy_from_slice(&value.to_le_bytes()),
        }
    }

    /// Burns `spans` (rows relative to the start of `frame`) into one frame or block of rows.
    fn frame(&self, frame: &mut [u8], spans: &Spans) {
        let bps = self.bps;
        if self.subsampled_422 {
            // Y0 Y1 Cb Cr per pixel pair: luma of burned pixels takes the fill, the pair's chroma goes neutral.
            let row_bytes = self.cols * 2 * bps;
            for &(y, a, b) in spans {
                let Some(row) = frame.get_mut(y as usize * row_bytes..(y as usize + 1) * row_bytes) else {
                    continue;
                };
                for x in a as usize..b as usize {
                    let pair = x / 2 * 4 * bps;
                    self.write(&mut row[pair + (x % 2) * bps..pair + (x % 2 + 1) * bps], u32::from(self.fill));
                    self.write(&mut row[pair + 2 * bps..pair + 3 * bps], self.neutral);
                    self.write(&mut row[pair + 3 * bps..pair + 4 * bps], self.neutral);
                }
            }
        } else if self.planar {
            let plane = self.cols * self.rows * bps;
            for (s, plane_data) in frame.chunks_exact_mut(plane).enumerate() {
                let v = self.sample_value(s);
                for &(y, a, b) in spans {
                    let start = (y as usize * self.cols + a as usize) * bps;
                    let end = (y as usize * self.cols + b as usize) * bps;
                    for px in plane_data[start..end].chunks_exact_mut(bps) {
                        self.write(px, v);
                    }
                }
            }
        } else {
            let row_bytes = self.row_bytes();
            let px_bytes = self.samples * bps;
            for &(y, a, b) in spans {
                let start = y as usize * row_bytes + a as usize * px_bytes;
                let end = y as usize * row_bytes + b as usize * px_bytes;
                let Some(seg) = frame.get_mut(start..end) else { continue };
                if self.fill == 0 && !self.ybr {
                    seg.fill(0);
                    continue;
                }
                for px in seg.chunks_exact_mut(px_bytes) {
                    for (s, sample) in px.chunks_exact_mut(bps).enumerate() {
                        self.write(sample, self.sample_value(s));
                    }
                }
            }
        }
    }
}

/// Sets or clears packed bits (LSB first) for spans of one bit-plane frame starting at `bit_base`.
fn fill_bits(data: &mut [u8], bit_base: u64, cols: u32, spans: &Spans, set: bool) {
    for &(y, a, b) in spans {
        for x in a..b {
            let bit = bit_base + u64::from(y) * u64::from(cols) + u64::from(x);
            if let Some(byte) = data.get_mut((bit / 8) as usize) {
                let mask = 1u8 << (bit % 8);
                if set {
                    *byte |= mask;
                } else {
                    *byte &= !mask;
                }
            }
        }
    }
}

/// Clears the plan's regions in every overlay plane (60xx,3000) of the dataset.
pub fn burn_overlays(ds: &mut DataSet<'_>, plan: &BurnPlan) -> u64 {
    let groups: Vec<u32> = ds
        .elements
        .iter()
        .filter(|e| e.tag & 0xFF01_FFFF == 0x6000_3000)
        .map(|e| e.tag >> 16)
        .collect();
    let mut total = 0;
    for group in groups {
        let base = group << 16;
        let (Some(rows), Some(cols)) = (ds.u16(base | 0x0010), ds.u16(base | 0x0011)) else {
            continue;
        };
        let origin = ds.uints(base | 0x0050);
        let (oy, ox) = (origin.first().copied().unwrap_or(1), origin.get(1).copied().unwrap_or(1));
        let frames = ds.int(base | 0x0015).filter(|&n| n > 0).unwrap_or(1).min(i64::from(u16::MAX)) as u32;
        // Regions are in image coordinates; overlay origin is 1-based (row, column), and may be signed.
        let shift = |r: &Region| -> Option<Region> {
            let x = i64::from(r.x) - (i64::from(ox as i16) - 1);
            let y = i64::from(r.y) - (i64::from(oy as i16) - 1);
            let (x0, y0) = (x.max(0), y.max(0));
            let (x1, y1) = (x + i64::from(r.w), y + i64::from(r.h));
            (x1 > x0 && y1 > y0).then(|| Region {
                x: x0 as u32,
                y: y0 as u32,
                w: (x1 - x0) as u32,
                h: (y1 - y0) as u32,
            })
        };
        let local = BurnPlan {
            rects: plan.rects.iter().filter_map(|(r, s)| shift(r).map(|r| (r, *s))).collect(),
            keep_only: plan.keep_only.as_ref().map(|k| k.iter().filter_map(shift).collect()),
            fill: 0,
        };
        let g = Geometry {
            rows: u32::from(rows),
            cols: u32::from(cols),
            samples: 1,
            bits: 1,
            planar: false,
            frames,
            subsampled_422: false,
            ybr: false,
        };
        let spans = row_spans(&local, &g);
        let big_endian_words = ds.big_endian;
        let Some(el) = ds.get_mut(base | 0x3000) else { continue };
        // Big endian OW holds the bit stream in byte-swapped 16-bit words: burn it in LE order.
        let swap = big_endian_words && el.vr == Vr::OW;
        let Value::Bytes(bytes) = &mut el.value else { continue };
        let bits_per_frame = u64::from(rows) * u64::from(cols);
        let data = bytes.to_mut();
        if swap {
            data.chunks_exact_mut(2).for_each(|w| w.swap(0, 1));
        }
        for f in 0..u64::from(frames) {
            fill_bits(data, f * bits_per_frame, g.cols, &spans, false);
        }
        if swap {
            data.chunks_exact_mut(2).for_each(|w| w.swap(0, 1));
        }
        total += span_area(&spans) * u64::from(frames);
    }
    total
}

/// Adapter presenting a [`DataSet`] to the dicom-rs codecs.
struct PixelSource<'d, 'a> {
    ds: &'d DataSet<'a>,
    ts: &'d str,
    native: Option<&'d [u8]>,
}

impl PixelDataObject for PixelSource<'_, '_> {
    fn transfer_syntax_uid(&self) -> &str {
        self.ts
    }
    fn rows(&self) -> Option<u16> {
        self.ds.u16(0x0028_0010)
    }
    fn cols(&self) -> Option<u16> {
        self.ds.u16(0x0028_0011)
    }
    fn samples_per_pixel(&self) -> Option<u16> {
        self.ds.u16(0x0028_0002)
    }
    fn bits_allocated(&self) -> Option<u16> {
        self.ds.u16(0x0028_0100)
    }
    fn bits_stored(&self) -> Option<u16> {
        self.ds.u16(0x0028_0101)
    }
    fn photometric_interpretation(&self) -> Option<&str> {
        self.ds.text(0x0028_0004)
    }
    fn number_of_frames(&self) -> Option<u32> {
        self.ds.int(0x0028_0008).and_then(|n| u32::try_from(n).ok())
    }
    fn number_of_fragments(&self) -> Option<u32> {
        if self.native.is_some() {
            return None;
        }
        match &self.ds.get(PIXEL_DATA)?.value {
            Value::Encapsulated { fragments, .. } => u32::try_from(fragments.len()).ok(),
            _ => None,
        }
    }
    fn fragment(&self, fragment: usize) -> Option<Cow<'_, [u8]>> {
        if let Some(n) = self.native {
            return (fragment == 0).then_some(Cow::Borrowed(n));
        }
        match &self.ds.get(PIXEL_DATA)?.value {
            Value::Encapsulated { fragments, .. } => fragments.get(fragment).map(|f| Cow::Borrowed(&f[..])),
            _ => None,
        }
    }
    fn offset_table(&self) -> Option<Cow<'_, [u32]>> {
        match &self.ds.get(PIXEL_DATA)?.value {
            Value::Encapsulated { offset_table, .. } => Some(Cow::Owned(
                offset_table
                    .chunks_exact(4)
                    .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
            )),
            _ => None,
        }
    }
    fn raw_pixel_data(&self) -> Option<RawPixelData> {
        if let Some(n) = self.native {
            return Some(RawPixelData {
                fragments: std::iter::once(n.to_vec()).collect(),
                offset_table: Default::default(),
            });
        }
        match &self.ds.get(PIXEL_DATA)?.value {
            Value::Encapsulated { fragments, .. } => Some(RawPixelData {
                fragments: fragments.iter().map(|f| f.to_vec()).collect(),
                offset_table: self.offset_table().map(|t| t.iter().copied().collect()).unwrap_or_default(),
            }),
            _ => None,
        }
    }
}

/// What happened to encapsulated pixel data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transcoded {
    /// The transfer syntax the dataset must now be written in.
    pub transfer_syntax: String,
    /// A note for the report when the syntax changed.
    pub note: Option<String>,
    /// Pixels filled, all frames.
    pub filled: u64,
}

/// Syntaxes whose registry encoder Alpes re-encodes with after burning: the
/// lossless ones, which round-trip exactly. Lossy syntaxes (JPEG baseline and
/// extended, lossy JPEG 2000) are not re-encoded: a second lossy generation
/// would degrade the image, so the burned pixels are written uncompressed.
fn reencode_allowed(ts: &str) -> bool {
    matches!(ts, "1.2.840.10008.1.2.4.80" | "1.2.840.10008.1.2.4.90" | "1.2.840.10008.1.2.4.201")
}

/// Decodes encapsulated pixel data, burns it, and re-encodes it (or writes it native).
pub fn burn_encapsulated(ds: &mut DataSet<'_>, ts_uid: &str, plan: &BurnPlan, limit: u64) -> Result<Transcoded> {
    let decode_err = |reason: String| Error::PixelDecode {
        transfer_syntax: ts_uid.to_owned(),
        reason,
    };
    let mut g = Geometry::of(ds)?;
    let decoded_size = g.frame_bytes().saturating_mul(u64::from(g.frames));
    if decoded_size > limit {
        return Err(decode_err(format!(
            "decoded pixel data would take {decoded_size} bytes, over the limit of {limit}"
        )));
    }
    if ts_uid == RLE {
        return burn_rle(ds, g, plan);
    }
    let ts = TransferSyntaxRegistry
        .get(ts_uid)
        .ok_or_else(|| decode_err("transfer syntax not in the codec registry".into()))?;
    let Codec::EncapsulatedPixelData(reader, writer) = ts.codec() else {
        return Err(decode_err("not an encapsulated transfer syntax".into()));
    };
    let reader = reader
        .as_ref()
        .ok_or_else(|| decode_err("no decoder is built in for this transfer syntax".into()))?;
    let mut native = Vec::with_capacity((g.frame_bytes() * u64::from(g.frames)).min(1 << 30) as usize);
    {
        let src = PixelSource {
            ds,
            ts: ts_uid,
            native: None,
        };
        let jpeg = ts_uid.starts_with("1.2.840.10008.1.2.4.5") || ts_uid.starts_with("1.2.840.10008.1.2.4.7");
        for f in 0..g.frames {
            if jpeg {
                let frame = src
                    .frame_pixel_data(f)
                    .ok_or_else(|| decode_err(format!("frame {f} has no fragments")))?;
                check_jpeg_header(&frame, &g).map_err(|r| decode_err(r.into()))?;
            }
            let before = native.len();
            // Codecs are third-party code: a panic in one becomes this file's typed error.
            let decoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| reader.decode_frame(&src, f, &mut native)));
            match decoded {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(decode_err(e.to_string())),
                Err(_) => return Err(decode_err("the codec failed on this data".into())),
            }
            if (native.len() - before) as u64 != g.frame_bytes() && !(g.samples == 3 && g.subsampled_422) {
                return Err(decode_err(format!(
                    "frame {f} decoded to {} bytes, attributes need {}",
                    native.len() - before,
                    g.frame_bytes()
                )));
            }
        }
    }
    // Decoders emit interleaved RGB for colour and native values for monochrome / palette.
    let pi = ds.text(0x0028_0004).unwrap_or("").to_owned();
    let colour = g.samples == 3;
    if colour {
        g.planar = false;
        g.ybr = false;
        g.subsampled_422 = false;
    }
    let filled = burn_native(&mut native, &g, plan)?;
    let be = ds.big_endian;
    let set_us = |ds: &mut DataSet<'_>, tag: u32, v: u16| {
        ds.put(Element::bytes(
            tag,
            Vr::US,
            if be { v.to_be_bytes().to_vec() } else { v.to_le_bytes().to_vec() },
        ))
    };
    if colour {
        ds.put(Element::text(0x0028_0004, Vr::CS, "RGB"));
        set_us(ds, 0x0028_0006, 0);
    } else if pi.starts_with("YBR") {
        ds.put(Element::text(0x0028_0004, Vr::CS, "MONOCHROME2"));
    }
    if let (Some(w), true) = (writer.as_ref(), reencode_allowed(ts_uid)) {
        let mut fragments: Vec<Cow<'static, [u8]>> = Vec::with_capacity(g.frames as usize);
        let mut ops = Vec::new();
        {
            let src = PixelSource {
                ds,
                ts: EXPLICIT_LE,
                native: Some(&native),
            };
            let options = EncodeOptions::default();
            for f in 0..g.frames {
                let mut out = Vec::new();
                match w.encode_frame(&src, f, options.clone(), &mut out) {
                    Ok(o) => {
                        ops = o;
                        fragments.push(Cow::Owned(out));
                    }
                    Err(_) => {
                        fragments.clear();
                        break;
                    }
                }
            }
        }
        if fragments.len() == g.frames as usize {
            apply_ops(ds, &ops);
            put_encapsulated(ds, fragments);
            return Ok(Transcoded {
                transfer_syntax: ts_uid.to_owned(),
                note: None,
                filled,
            });
        }
    }
    let vr = if g.bits > 8 { Vr::OW } else { Vr::OB };
    let native = if be && g.bits == 16 {
        // The writer swaps OW from big endian; hand it big-endian words.
        let mut n = native;
        n.chunks_exact_mut(2).for_each(|c| c.swap(0, 1));
        n
    } else {
        native
    };
    ds.put(Element::bytes(PIXEL_DATA, vr, native));
    // Once lossy, always lossy (PS3.3 C.7.6.1.1.5): the flag records the image's history.
    let lossy = is_lossy(ts_uid);
    if lossy || ds.text(0x0028_2110) != Some("01") {
        ds.put(Element::text(0x0028_2110, Vr::CS, if lossy { "01" } else { "00" }));
    }
    Ok(Transcoded {
        transfer_syntax: EXPLICIT_LE.to_owned(),
        note: Some(if lossy {
            format!("lossy {ts_uid} is not re-encoded (no second lossy generation); burned pixel data written as Explicit VR Little Endian")
        } else {
            format!("no encoder for {ts_uid}; burned pixel data written as Explicit VR Little Endian")
        }),
        filled,
    })
}

/// RLE Lossless: decode each frame, burn, and re-encode in RLE with Alpes' own codec.
fn burn_rle(ds: &mut DataSet<'_>, mut g: Geometry, plan: &BurnPlan) -> Result<Transcoded> {
    g.planar = false;
    g.subsampled_422 = false;
    if g.bits == 1 {
        return Err(Error::PixelDecode {
            transfer_syntax: RLE.into(),
            reason: "1-bit RLE is not supported".into(),
        });
    }
    let (samples, bytes) = (g.samples as usize, (g.bits / 8) as usize);
    let pixels = g.rows as usize * g.cols as usize;
    let Some(Value::Encapsulated { fragments, .. }) = ds.get(PIXEL_DATA).map(|e| &e.value) else {
        return Err(Error::PixelData {
            reason: "RLE transfer syntax without encapsulated pixel data".into(),
        });
    };
    if fragments.len() < g.frames as usize {
        return Err(Error::PixelData {
            reason: "fewer RLE fragments than frames".into(),
        });
    }
    let frames: Vec<&[u8]> = fragments.iter().take(g.frames as usize).map(|f| &f[..]).collect();
    let encoded: Vec<Result<(Vec<u8>, u64)>> = frames
        .par_iter()
        .map(|f| {
            let mut native = Vec::with_capacity(pixels * samples * bytes);
            crate::rle::decode_frame(f, pixels, samples, bytes, &mut native)?;
            let one = Geometry { frames: 1, ..g };
            let filled = burn_native(&mut native, &one, plan)?;
            Ok((crate::rle::encode_frame(&native, samples, bytes), filled))
        })
        .collect();
    let mut out: Vec<Cow<'static, [u8]>> = Vec::with_capacity(encoded.len());
    let mut filled = 0;
    for e in encoded {
        let (frag, n) = e?;
        filled += n;
        out.push(Cow::Owned(frag));
    }
    put_encapsulated(ds, out);
    Ok(Transcoded {
        transfer_syntax: RLE.to_owned(),
        note: None,
        filled,
    })
}

/// JPEG transfer syntaxes whose frames are stripped like JPEG files (baseline, extended, lossless).
const JPEG_SYNTAXES: &[&str] = &[
    "1.2.840.10008.1.2.4.50",
    "1.2.840.10008.1.2.4.51",
    "1.2.840.10008.1.2.4.57",
    "1.2.840.10008.1.2.4.70",
];

/// JPEG 2000 transfer syntaxes: Part 1 lossless and lossy, Part 2 multi-component lossless and
/// lossy, and HTJ2K lossless, lossless RPCL and lossy.
const JPEG_2000_SYNTAXES: &[&str] = &[
    "1.2.840.10008.1.2.4.90",
    "1.2.840.10008.1.2.4.91",
    "1.2.840.10008.1.2.4.92",
    "1.2.840.10008.1.2.4.93",
    "1.2.840.10008.1.2.4.201",
    "1.2.840.10008.1.2.4.202",
    "1.2.840.10008.1.2.4.203",
];

/// Strips free text that rides along with the image from every frame of encapsulated pixel data:
/// - JPEG: APPn and COM segments and bytes after EOI (they can carry EXIF dates, device names or
///   typed comments), as for plain JPEG files ([`crate::raster`]);
/// - JPEG 2000 and HTJ2K: COM segments of the main and tile-part headers, bytes after EOC, and
///   every JP2 box but the signature, `ftyp`, `jp2h` and `jp2c` ([`crate::j2k`]).
///
/// The coded image is copied byte for byte. It runs on whatever is written encapsulated, a frame
/// re-encoded after burning included. Returns the segments, boxes and trailers removed.
pub fn strip_encapsulated_metadata(ds: &mut DataSet<'_>, ts_uid: &str) -> Result<u64> {
    type Strip = fn(&[u8]) -> std::result::Result<(Vec<u8>, u32), String>;
    let strip: Strip = if JPEG_SYNTAXES.contains(&ts_uid) {
        |f| crate::raster::strip_jpeg_metadata(f).map_err(|e| e.to_string())
    } else if JPEG_2000_SYNTAXES.contains(&ts_uid) {
        |f| crate::j2k::strip_frame(f).map_err(str::to_owned)
    } else {
        return Ok(0);
    };
    let Some(Value::Encapsulated { fragments, .. }) = ds.get(PIXEL_DATA).map(|e| &e.value) else {
        return Ok(0);
    };
    if fragments.is_empty() {
        return Ok(0);
    }
    let frames = ds.int(0x0028_0008).filter(|&n| n > 0).unwrap_or(1) as usize;
    let err = |reason: String| Error::PixelDecode {
        transfer_syntax: ts_uid.to_owned(),
        reason,
    };
    let mut stripped: Vec<Cow<'static, [u8]>> = Vec::with_capacity(frames.min(fragments.len()));
    let mut removed = 0u64;
    {
        let src = PixelSource {
            ds,
            ts: ts_uid,
            native: None,
        };
        let per_frame: Vec<Cow<'_, [u8]>> = if fragments.len() == frames {
            fragments.iter().map(|f| Cow::Borrowed(&f[..])).collect()
        } else if frames == 1 {
            vec![Cow::Owned(fragments.concat())]
        } else {
            (0..frames as u32)
                .map(|f| src.frame_pixel_data(f).ok_or_else(|| err(format!("frame {f} has no fragments"))))
                .collect::<Result<_>>()?
        };
        for frame in &per_frame {
            let (bytes, n) = strip(frame).map_err(err)?;
            removed += u64::from(n);
            stripped.push(Cow::Owned(bytes));
        }
    }
    if removed > 0 {
        put_encapsulated(ds, stripped);
    }
    Ok(removed)
}

/// Replaces the pixel data with encapsulated fragments and a Basic Offset Table
/// (left empty when offsets would not fit in 32 bits, as PS3.5 A.4 allows).
fn put_encapsulated(ds: &mut DataSet<'_>, fragments: Vec<Cow<'static, [u8]>>) {
    let mut table = Vec::with_capacity(fragments.len() * 4);
    let mut offset = 0u64;
    for f in &fragments {
        table.extend_from_slice(&(offset as u32).to_le_bytes());
        // Each item: 8-byte header plus the fragment padded to even length.
        offset += f.len() as u64 + (f.len() as u64 & 1) + 8;
    }
    if offset > u64::from(u32::MAX) {
        table.clear();
    }
    ds.put(Element {
        tag: PIXEL_DATA,
        vr: Vr::OB,
        value: Value::Encapsulated {
            offset_table: Cow::Owned(table),
            fragments,
        },
    });
}

/// Checks a JPEG frame's SOF against the image attributes before any codec sees it:
/// the registry's JPEG adapter trusts the attributes and indexes past its buffer otherwise.
fn check_jpeg_header(frame: &[u8], g: &Geometry) -> std::result::Result<(), &'static str> {
    if !frame.starts_with(&[0xFF, 0xD8]) {
        return Err("fragment does not start with a JPEG SOI marker");
    }
    let mut i = 2;
    while i + 4 <= frame.len() {
        if frame[i] != 0xFF {
            return Err("corrupt JPEG marker structure");
        }
        let marker = frame[i + 1];
        if marker == 0xFF {
            i += 1;
            continue;
        }
        let len = usize::from(u16::from_be_bytes([frame[i + 2], frame[i + 3]]));
        let sof = matches!(marker, 0xC0..=0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF);
        if sof {
            let body = frame.get(i + 4..i + 2 + len).ok_or("truncated JPEG SOF")?;
            if body.len() < 6 {
                return Err("truncated JPEG SOF");
            }
            let height = u32::from(u16::from_be_bytes([body[1], body[2]]));
            let width = u32::from(u16::from_be_bytes([body[3], body[4]]));
            let components = u32::from(body[5]);
            if height != g.rows || width != g.cols || components != g.samples {
                return Err("JPEG frame dimensions or components differ from Rows, Columns and SamplesPerPixel");
            }
            return Ok(());
        }
        if len < 2 {
            return Err("corrupt JPEG segment length");
        }
        i += 2 + len;
    }
    Err("no JPEG SOF marker before the scan")
}

/// Whether a transfer syntax is (or may be) lossy.
fn is_lossy(ts: &str) -> bool {
    ts.starts_with("1.2.840.10008.1.2.4.")
        && matches!(
            ts.rsplit('.').next(),
            Some("50" | "51" | "81" | "91" | "93" | "203" | "111" | "112")
        )
}

fn apply_ops(ds: &mut DataSet<'_>, ops: &[dicom_core::ops::AttributeOp]) {
    use dicom_core::ops::{AttributeAction, AttributeSelectorStep};
    for op in ops {
        let AttributeSelectorStep::Tag(t) = op.selector.first_step() else {
            continue;
        };
        let tag = (u32::from(t.0) << 16) | u32::from(t.1);
        let vr = dictionary_vr(tag);
        match &op.action {
            AttributeAction::Remove => {
                ds.remove(tag);
            }
            AttributeAction::SetStr(s) => ds.put(Element::text(tag, vr, s)),
            AttributeAction::SetIfMissing(v) if ds.get(tag).is_none() => ds.put(Element::text(tag, vr, &v.to_str())),
            AttributeAction::PushStr(s) => {
                let joined = match ds.text(tag) {
                    Some(old) if !old.is_empty() => format!("{old}\\{s}"),
                    _ => s.to_string(),
                };
                ds.put(Element::text(tag, vr, &joined));
            }
            AttributeAction::Set(v) if vr == Vr::US => {
                if let Ok(n) = v.to_int::<u16>() {
                    let b = if ds.big_endian { n.to_be_bytes() } else { n.to_le_bytes() };
                    ds.put(Element::bytes(tag, Vr::US, b.to_vec()));
                }
            }
            AttributeAction::Set(v) => ds.put(Element::text(tag, vr, &v.to_str())),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gray(rows: u32, cols: u32, bits: u32) -> Geometry {
        Geometry {
            rows,
            cols,
            samples: 1,
            bits,
            planar: false,
            frames: 1,
            subsampled_422: false,
            ybr: false,
        }
    }

    #[test]
    fn a_region_is_filled_and_nothing_else_changes() {
        let g = gray(4, 4, 16);
        let mut data: Vec<u8> = (0..32).map(|i| i as u8 + 1).collect();
        let before = data.clone();
        let plan = BurnPlan {
            rects: vec![(Region { x: 1, y: 1, w: 2, h: 2 }, RegionSource::Profile)],
            keep_only: None,
            fill: 0,
        };
        assert_eq!(burn_native(&mut data, &g, &plan).ok(), Some(4));
        for y in 0..4 {
            for x in 0..4 {
                let i = (y * 4 + x) * 2;
                let inside = (1..3).contains(&x) && (1..3).contains(&y);
                if inside {
                    assert_eq!(&data[i..i + 2], &[0, 0]);
                } else {
                    assert_eq!(&data[i..i + 2], &before[i..i + 2]);
                }
            }
        }
    }

    #[test]
    fn ultrasound_keep_only_fills_outside_the_union() {
        let g = gray(2, 4, 8);
        let mut data = vec![9u8; 8];
        let plan = BurnPlan {
            rects: vec![],
            keep_only: Some(vec![Region { x: 1, y: 0, w: 2, h: 1 }]),
            fill: 0,
        };
        assert_eq!(burn_native(&mut data, &g, &plan).ok(), Some(6));
        assert_eq!(data, vec![0, 9, 9, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn short_pixel_data_is_a_typed_error() {
        let g = gray(10, 10, 16);
        let plan = BurnPlan {
            rects: vec![(Region { x: 0, y: 0, w: 1, h: 1 }, RegionSource::Profile)],
            keep_only: None,
            fill: 0,
        };
        assert!(matches!(burn_native(&mut [0u8; 10], &g, &plan), Err(Error::PixelData { .. })));
    }

    #[test]
    fn planar_rgb_fills_every_plane() {
        let g = Geometry {
            samples: 3,
            planar: true,
            ..gray(1, 2, 8)
        };
        let mut data = vec![7u8; 6];
        let plan = BurnPlan {
            rects: vec![(Region { x: 1, y: 0, w: 1, h: 1 }, RegionSource::Profile)],
            keep_only: None,
            fill: 0,
        };
        burn_native(&mut data, &g, &plan).ok();
        assert_eq!(data, vec![7, 0, 7, 0, 7, 0]);
    }

    #[test]
    fn a_jpeg_whose_size_differs_from_the_attributes_is_refused_before_decoding() {
        let g = gray(4, 4, 8);
        let sof = |h: u8, w: u8| vec![0xFF, 0xD8, 0xFF, 0xC0, 0, 11, 8, 0, h, 0, w, 1, 1, 0x11, 0];
        assert!(check_jpeg_header(&sof(4, 4), &g).is_ok());
        assert!(check_jpeg_header(&sof(4, 5), &g).is_err());
        assert!(check_jpeg_header(&[0xFF, 0xD8, 0xFF], &g).is_err());
        assert!(check_jpeg_header(b"not a jpeg", &g).is_err());
    }

    #[test]
    fn packed_bits_are_cleared_lsb_first() {
        let mut data = vec![0xFFu8; 2];
        fill_bits(&mut data, 0, 8, &vec![(0, 1, 3)], false);
        assert_eq!(data, vec![0b1111_1001, 0xFF]);
    }
}
