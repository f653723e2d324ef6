//! Burning native pixel data in place: the row spans of a plan, the per-layout sample writer
//! (interleaved, planar, 4:2:2, packed bits) and the report's per-region areas.

use super::{BurnPlan, BurnedRegion, Geometry};
use crate::error::{Error, Result};
use crate::region::{Region, RegionSource};
use rayon::prelude::*;

/// Column spans to fill: `(row, x0, x1)` half-open, sorted by row then column, merged.
pub(crate) type Spans = Vec<(u32, u32, u32)>;

/// Data above this size is burned on the rayon pool; below it, thread hand-off costs more than the fill.
const PARALLEL_BYTES: usize = 4 << 20;

/// The row spans `plan` fills in a `cols` × `rows` frame.
pub(crate) fn row_spans(plan: &BurnPlan, cols: u32, rows: u32) -> Spans {
    let mut spans: Spans = Vec::new();
    for (r, _) in &plan.rects {
        if let Some((x0, y0, x1, y1)) = r.clip(cols, rows) {
            spans.extend((y0..y1).map(|y| (y, x0, x1)));
        }
    }
    if let Some(keep) = &plan.keep_only {
        let clipped: Vec<(u32, u32, u32, u32)> = keep.iter().filter_map(|r| r.clip(cols, rows)).collect();
        let mut kept: Vec<(u32, u32)> = Vec::new();
        for y in 0..rows {
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
            if x < cols {
                spans.push((y, x, cols));
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

pub(super) fn span_area(spans: &Spans) -> u64 {
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
            area_per_frame: span_area(&row_spans(&outside, g.cols, g.rows)),
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
    let spans = row_spans(plan, g.cols, g.rows);
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
pub(super) fn fill_bits(data: &mut [u8], bit_base: u64, cols: u32, spans: &Spans, set: bool) {
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
