//! Frames as 8-bit luminance, the one form the text detector reads: grey of any depth is
//! stretched from the frame's own darkest to brightest stored value, colour becomes its luma.

use crate::pixels::Geometry;

/// One frame as 8-bit luminance, row-major.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Luma {
    /// Columns.
    pub width: u32,
    /// Rows.
    pub height: u32,
    /// `width × height` values.
    pub pixels: Vec<u8>,
}

/// How the samples of native (or decoded) pixel data are laid out, beyond [`Geometry`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Samples {
    /// The data's byte order (big endian only for Explicit VR Big Endian native data).
    pub big_endian: bool,
    /// Pixel Representation 1: two's complement.
    pub signed: bool,
    /// Bits Stored (the rest of each sample is masked off).
    pub bits_stored: u32,
}

/// Each frame of `data` as luminance, converted one at a time as the iterator is read (a large
/// multi-frame image is never held twice), or none when the layout is one the detector does not
/// read (1-bit samples, which hold no text a reader could confirm, or data shorter than the
/// geometry says).
pub fn frames<'d>(data: &'d [u8], g: &'d Geometry, s: Samples) -> Option<impl Iterator<Item = Luma> + 'd> {
    if !matches!(g.bits, 8 | 16 | 32) || !matches!(g.samples, 1 | 3) {
        return None;
    }
    let frame_bytes = usize::try_from(g.frame_bytes()).ok()?;
    let count = g.frames as usize;
    if data.len() < frame_bytes.checked_mul(count)? {
        return None;
    }
    Some(data.chunks_exact(frame_bytes).take(count).map(move |f| one_frame(f, g, s)))
}

fn one_frame(f: &[u8], g: &Geometry, s: Samples) -> Luma {
    let (w, h) = (g.cols as usize, g.rows as usize);
    let n = w * h;
    let pixels = if g.samples == 1 {
        grey(f, n, g.bits, s)
    } else if g.subsampled_422 {
        // Y0 Y1 Cb Cr for each pair of pixels (8-bit only in practice).
        (0..n).map(|i| f[(i / 2) * 4 + (i % 2)]).collect()
    } else {
        let step = (g.bits / 8) as usize;
        let at = |i: usize, c: usize| -> u8 {
            let idx = if g.planar { c * n + i } else { i * 3 + c } * step;
            // The high byte of a wider sample is its luminance to 8 bits.
            f[if s.big_endian { idx } else { idx + step - 1 }]
        };
        if g.ybr {
            (0..n).map(|i| at(i, 0)).collect()
        } else {
            (0..n).map(|i| of_rgb(at(i, 0), at(i, 1), at(i, 2))).collect()
        }
    };
    Luma {
        width: g.cols,
        height: g.rows,
        pixels,
    }
}

/// The luma of an RGB sample (BT.601 weights, in 8 bits).
pub fn of_rgb(r: u8, g: u8, b: u8) -> u8 {
    ((77 * u32::from(r) + 150 * u32::from(g) + 29 * u32::from(b)) >> 8) as u8
}

/// Grey samples stretched to 0–255 between the frame's extremes.
fn grey(f: &[u8], n: usize, bits: u32, s: Samples) -> Vec<u8> {
    if bits == 8 {
        let v = &f[..n];
        return stretch(v.iter().map(|&b| i64::from(b)), v.iter().map(|&b| i64::from(b)));
    }
    if bits == 32 {
        let value = |c: &[u8]| -> i64 {
            let b = [c[0], c[1], c[2], c[3]];
            let raw = if s.big_endian {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            };
            if s.signed {
                i64::from(raw as i32)
            } else {
                i64::from(raw)
            }
        };
        let words = &f[..n * 4];
        return stretch(words.chunks_exact(4).map(value), words.chunks_exact(4).map(value));
    }
    let shift = 16 - s.bits_stored.clamp(1, 16);
    let value = |c: &[u8]| -> i64 {
        let raw = if s.big_endian {
            u16::from_be_bytes([c[0], c[1]])
        } else {
            u16::from_le_bytes([c[0], c[1]])
        };
        // Move the stored bits to the top, then back: sign-extends signed data, masks the rest.
        let top = raw << shift;
        if s.signed {
            i64::from((top as i16) >> shift)
        } else {
            i64::from(top >> shift)
        }
    };
    let words = &f[..n * 2];
    stretch(words.chunks_exact(2).map(value), words.chunks_exact(2).map(value))
}

fn stretch(scan: impl Iterator<Item = i64>, values: impl Iterator<Item = i64>) -> Vec<u8> {
    let (lo, hi) = scan.fold((i64::MAX, i64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let range = (hi - lo).max(1);
    values.map(|v| (((v - lo) * 255) / range) as u8).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geometry(rows: u32, cols: u32, samples: u32, bits: u32) -> Geometry {
        Geometry {
            rows,
            cols,
            samples,
            bits,
            planar: false,
            frames: 1,
            subsampled_422: false,
            ybr: false,
        }
    }

    const PLAIN: Samples = Samples {
        big_endian: false,
        signed: false,
        bits_stored: 12,
    };

    #[test]
    fn grey_of_any_depth_stretches_from_darkest_to_brightest() {
        let data: Vec<u8> = [0u16, 1024, 4095, 2048].iter().flat_map(|v| v.to_le_bytes()).collect();
        let f = frames(&data, &geometry(2, 2, 1, 16), PLAIN)
            .expect("16-bit grey")
            .collect::<Vec<_>>();
        assert_eq!(f[0].pixels, vec![0, 63, 255, 127]);
        let signed: Vec<u8> = [-1000i16, 0, 1000, 3000].iter().flat_map(|v| v.to_le_bytes()).collect();
        let s = Samples {
            signed: true,
            bits_stored: 16,
            ..PLAIN
        };
        assert_eq!(
            frames(&signed, &geometry(2, 2, 1, 16), s).expect("signed").collect::<Vec<_>>()[0].pixels,
            vec![0, 63, 127, 255]
        );
    }

    #[test]
    fn colour_becomes_luma_and_each_frame_is_its_own() {
        let mut g = geometry(1, 2, 3, 8);
        g.frames = 2;
        let data = [255, 255, 255, 0, 0, 0, 255, 0, 0, 0, 0, 255];
        let f = frames(&data, &g, PLAIN).expect("rgb").collect::<Vec<_>>();
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].pixels, vec![255, 0]);
        assert_eq!(f[1].pixels, vec![76, 28]);
    }

    #[test]
    fn thirty_two_bit_grey_stretches_too() {
        let data: Vec<u8> = [0u32, 1 << 20, 1 << 24, 1 << 23].iter().flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(
            frames(&data, &geometry(2, 2, 1, 32), PLAIN).expect("32-bit").collect::<Vec<_>>()[0].pixels,
            vec![0, 15, 255, 127]
        );
    }

    #[test]
    fn layouts_the_detector_does_not_read_give_none() {
        assert!(frames(&[0; 1], &geometry(2, 2, 1, 1), PLAIN).is_none());
        assert!(frames(&[0; 3], &geometry(2, 2, 1, 8), PLAIN).is_none());
    }
}
