//! Region math shared by the PNG and JPEG paths: clipping to the image and the area of a union.

use crate::region::Region;

/// The clipped, non-empty regions as half-open (x0, y0, x1, y1).
pub(super) fn clip_all(regions: &[Region], cols: u32, rows: u32) -> Vec<(u32, u32, u32, u32)> {
    regions.iter().filter_map(|r| r.clip(cols, rows)).collect()
}

/// Area of the union of half-open rectangles.
pub(super) fn union_area(rects: &[(u32, u32, u32, u32)]) -> u64 {
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
