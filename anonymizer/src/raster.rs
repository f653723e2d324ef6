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
//! Sizes declared by headers are checked against the caller's limit (the engine's
//! [`crate::Config::max_decoded`]) before any pixel buffer is allocated. Error reasons come from the codecs or are fixed texts: never values read from the file.

use crate::error::{Error, Result};
use crate::region::Region;
use serde::Serialize;
use std::panic::{catch_unwind, AssertUnwindSafe};

mod area;
mod jpeg;
mod png;

use self::{
    jpeg::{anonymize_jpeg, jpeg_luma},
    png::{anonymize_png, png_luma},
};
use crate::ocr::Luma;
pub(crate) use jpeg::strip_jpeg_metadata;

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

/// A PNG's or JPEG's pixels as luminance, for the burned-in text safety net (within `limit`
/// decoded bytes, as [`anonymize`]).
pub fn luma(input: &[u8], limit: u64) -> Result<Luma> {
    match sniff(input) {
        Some(RasterFormat::Png) => png_luma(input, limit),
        Some(RasterFormat::Jpeg) => jpeg_luma(input, limit),
        None => Err(Error::UnknownFormat),
    }
}

/// Luma of interleaved samples whose first three are R, G, B (alpha, if any, is ignored).
fn luma_of_rgb(samples: &[u8], channels: usize) -> Vec<u8> {
    samples
        .chunks_exact(channels)
        .map(|p| crate::ocr::luma::of_rgb(p[0], p[1], p[2]))
        .collect()
}

/// Removes all metadata from a PNG or JPEG and burns `regions` to `fill`.
///
/// `fill` is clamped to the largest sample value of the image's bit depth. Inside burned regions an
/// alpha channel becomes fully opaque; a palette image gets the palette entry of gray level `fill`
/// (added to the palette when there is room, else the nearest opaque entry).
///
/// An image that would decode to more than `limit` bytes (width × height × channels × bytes per
/// sample) is refused before it is decoded.
pub fn anonymize(input: &[u8], regions: &[Region], fill: u16, limit: u64) -> Result<(Vec<u8>, RasterOutcome)> {
    match sniff(input) {
        Some(RasterFormat::Png) => anonymize_png(input, regions, fill, limit),
        Some(RasterFormat::Jpeg) => anonymize_jpeg(input, regions, fill, limit),
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

/// Runs a codec call, turning a panic inside the codec into an error.
fn guarded<T>(format: &'static str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| Err(image_error(format, "decoder failed on malformed data")))
}

#[cfg(test)]
mod tests;
