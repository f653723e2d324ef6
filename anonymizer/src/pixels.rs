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

use crate::dataset::DataSet;
use crate::error::{Error, Result};
use crate::region::{Region, RegionSource};
use serde::Serialize;

mod encapsulated;
mod native;
mod overlay;
mod source;
mod strip;

pub use encapsulated::{burn_encapsulated, decode_encapsulated, Transcoded};
pub use native::{burn_native, report_regions};
pub(crate) use native::{row_spans, Spans};
pub use overlay::burn_overlays;
pub use strip::{strip_encapsulated_metadata, StrippedFrames};

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

#[cfg(test)]
mod tests;
