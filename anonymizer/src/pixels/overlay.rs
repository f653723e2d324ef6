//! Clean Graphics: burning the plan's regions out of overlay planes (60xx,3000).

use super::native::{fill_bits, row_spans, span_area};
use super::{BurnPlan, Geometry};
use crate::dataset::{DataSet, Value, Vr};
use crate::region::Region;

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
        let spans = row_spans(&local, g.cols, g.rows);
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
