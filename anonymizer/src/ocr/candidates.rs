//! The first pass: where text could be, in a few passes over the frame and no recognition.
//!
//! Text is short strokes of sharp contrast in rows. So: the morphological gradient (3×3 maximum
//! minus minimum) marks sharp edges; marked pixels closer than [`JOIN`] in a row are joined, so
//! the letters of a word become one run; runs touching from row to row become one component;
//! and a component is a candidate when it has a text line's shape (height, width, edge density,
//! and several separate strokes across a row). Anatomy gives large connected outlines or smooth
//! blobs, which the shape rules drop; what is left is only a candidate, for the reader to confirm.

use super::luma::Luma;
use crate::region::Region;

/// The gradient (0–255 luminance) that marks an edge.
const EDGE: u8 = 64;
/// Marked pixels up to this many columns apart in a row join one run (letters into words).
const JOIN: u32 = 6;
/// Text lines the reader can confirm: at least this many rows high.
const MIN_HEIGHT: u32 = 7;
/// And at most this many rows (a title on a screen capture).
const MAX_HEIGHT: u32 = 120;

/// The text candidates of one frame, as boxes around their edges.
pub fn candidates(l: &Luma) -> Vec<Region> {
    let (w, h) = (l.width as usize, l.height as usize);
    if w < 16 || h < MIN_HEIGHT as usize || l.pixels.len() < w * h {
        return Vec::new();
    }
    let marked = edges(l);
    let runs = runs(&marked, w, h);
    components(&runs)
        .into_iter()
        .filter(|c| c.is_text_like(l.height))
        .map(|c| Region {
            x: c.x0,
            y: c.y0,
            w: c.x1 - c.x0,
            h: c.y1 - c.y0,
        })
        .collect()
}

/// 1 where the 3×3 morphological gradient reaches [`EDGE`]. Separable (a row pass, then a
/// column pass), written as zips of shifted slices so that the compiler vectorizes both.
fn edges(l: &Luma) -> Vec<u8> {
    let (w, h) = (l.width as usize, l.height as usize);
    let mut hmax = vec![0u8; w * h];
    let mut hmin = vec![0u8; w * h];
    for ((row, mx), mn) in l.pixels[..w * h]
        .chunks_exact(w)
        .zip(hmax.chunks_exact_mut(w))
        .zip(hmin.chunks_exact_mut(w))
    {
        // Edges: the pixel itself and its one neighbour.
        mx[0] = row[0].max(row[(1).min(w - 1)]);
        mn[0] = row[0].min(row[(1).min(w - 1)]);
        mx[w - 1] = row[w - 1].max(row[w.saturating_sub(2)]);
        mn[w - 1] = row[w - 1].min(row[w.saturating_sub(2)]);
        if w > 2 {
            let (a, b, c) = (&row[..w - 2], &row[1..w - 1], &row[2..]);
            for (((o, &a), &b), &c) in mx[1..w - 1].iter_mut().zip(a).zip(b).zip(c) {
                *o = a.max(b).max(c);
            }
            for (((o, &a), &b), &c) in mn[1..w - 1].iter_mut().zip(a).zip(b).zip(c) {
                *o = a.min(b).min(c);
            }
        }
    }
    let mut out = vec![0u8; w * h];
    for (y, o) in out.chunks_exact_mut(w).enumerate() {
        let rows = [y.saturating_sub(1), y, (y + 1).min(h - 1)];
        let [a, b, c] = rows.map(|r| &hmax[r * w..(r + 1) * w]);
        let [d, e, f] = rows.map(|r| &hmin[r * w..(r + 1) * w]);
        for (i, o) in o.iter_mut().enumerate() {
            let mx = a[i].max(b[i]).max(c[i]);
            let mn = d[i].min(e[i]).min(f[i]);
            *o = u8::from(mx - mn >= EDGE);
        }
    }
    out
}

/// A run of joined marked pixels in one row.
#[derive(Debug, Clone, Copy)]
struct Run {
    y: u32,
    x0: u32,
    x1: u32,
    /// Marked pixels in it.
    marked: u32,
    /// Separate stretches of marked pixels joined into it.
    strokes: u32,
}

fn runs(marked: &[u8], w: usize, h: usize) -> Vec<Run> {
    let mut out = Vec::new();
    for y in 0..h {
        let row = &marked[y * w..(y + 1) * w];
        let mut x = 0;
        let mut open: Option<Run> = None;
        while x < w {
            if row[x] == 0 {
                x += 1;
                continue;
            }
            let start = x;
            while x < w && row[x] != 0 {
                x += 1;
            }
            let (s, e) = (start as u32, x as u32);
            match open.as_mut() {
                Some(r) if s - r.x1 <= JOIN => {
                    r.x1 = e;
                    r.marked += e - s;
                    r.strokes += 1;
                }
                _ => {
                    out.extend(open.take());
                    open = Some(Run {
                        y: y as u32,
                        x0: s,
                        x1: e,
                        marked: e - s,
                        strokes: 1,
                    });
                }
            }
        }
        out.extend(open);
    }
    out
}

/// A connected group of runs.
#[derive(Debug, Clone, Copy)]
struct Component {
    x0: u32,
    y0: u32,
    x1: u32,
    y1: u32,
    marked: u64,
    strokes: u64,
    rows: u64,
}

impl Component {
    fn is_text_like(&self, image_height: u32) -> bool {
        let (bw, bh) = (self.x1 - self.x0, self.y1 - self.y0);
        if bh < MIN_HEIGHT || bh > MAX_HEIGHT.min(image_height / 3).max(MIN_HEIGHT) {
            return false;
        }
        // A word or more: wider than high, and not a rule or a long edge.
        if bw * 10 < bh * 11 || bw > bh * 60 {
            return false;
        }
        let area = u64::from(bw) * u64::from(bh);
        let fill = self.marked as f64 / area as f64;
        // Several strokes across an average row: letters, not one outline.
        let strokes_per_row = self.strokes as f64 / self.rows.max(1) as f64;
        (0.25..=0.95).contains(&fill) && strokes_per_row >= 1.6
    }
}

fn components(runs: &[Run]) -> Vec<Component> {
    let mut parent: Vec<usize> = (0..runs.len()).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    // Runs are in row order; join each run with the overlapping runs of the row above.
    let mut above = 0..0;
    let mut i = 0;
    while i < runs.len() {
        let y = runs[i].y;
        let row_end = runs[i..].iter().position(|r| r.y != y).map_or(runs.len(), |k| i + k);
        if above.end > above.start && runs[above.start].y + 1 != y {
            above = 0..0;
        }
        for k in i..row_end {
            for a in above.clone() {
                if runs[a].x0 < runs[k].x1 && runs[k].x0 < runs[a].x1 {
                    let (ra, rk) = (root(&mut parent, a), root(&mut parent, k));
                    if ra != rk {
                        parent[rk] = ra;
                    }
                }
            }
        }
        above = i..row_end;
        i = row_end;
    }
    let mut by_root: std::collections::HashMap<usize, Component> = std::collections::HashMap::new();
    for (k, r) in runs.iter().enumerate() {
        let c = by_root.entry(root(&mut parent, k)).or_insert(Component {
            x0: r.x0,
            y0: r.y,
            x1: r.x1,
            y1: r.y + 1,
            marked: 0,
            strokes: 0,
            rows: 0,
        });
        c.x0 = c.x0.min(r.x0);
        c.x1 = c.x1.max(r.x1);
        c.y0 = c.y0.min(r.y);
        c.y1 = c.y1.max(r.y + 1);
        c.marked += u64::from(r.marked);
        c.strokes += u64::from(r.strokes);
        c.rows += 1;
    }
    let mut out: Vec<Component> = by_root.into_values().collect();
    out.sort_by_key(|c| (c.y0, c.x0));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(w: u32, h: u32, ink: impl Fn(u32, u32) -> bool) -> Luma {
        Luma {
            width: w,
            height: h,
            pixels: (0..h)
                .flat_map(|y| (0..w).map(move |x| (x, y)))
                .map(|(x, y)| if ink(x, y) { 255 } else { 20 })
                .collect(),
        }
    }

    #[test]
    fn strokes_in_a_row_are_one_candidate_around_them() {
        // Ten 2-column strokes, 14 rows high, 4 columns apart: the shape of a word.
        let f = frame(200, 80, |x, y| (20..34).contains(&y) && (30..90).contains(&x) && (x - 30) % 6 < 2);
        let c = candidates(&f);
        assert_eq!(c.len(), 1, "{c:?}");
        let r = c[0];
        assert!(r.x <= 30 && r.x + r.w >= 86 && r.y <= 20 && r.y + r.h >= 34, "{r:?}");
    }

    #[test]
    fn smooth_grounds_large_outlines_and_single_blobs_are_not_candidates() {
        assert!(candidates(&frame(200, 200, |_, _| false)).is_empty());
        let gradient = Luma {
            width: 200,
            height: 200,
            pixels: (0..200u32 * 200).map(|i| (i % 200) as u8).collect(),
        };
        assert!(candidates(&gradient).is_empty());
        let disc = |cx: i64, cy: i64, r: i64| move |x: u32, y: u32| (i64::from(x) - cx).pow(2) + (i64::from(y) - cy).pow(2) < r * r;
        assert!(candidates(&frame(200, 200, disc(100, 100, 70))).is_empty(), "a body outline");
        assert!(candidates(&frame(200, 200, disc(100, 100, 6))).is_empty(), "a vessel");
    }
}
