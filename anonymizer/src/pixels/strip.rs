//! Stripping free text (JPEG APPn/COM, JPEG 2000 COM and JP2 boxes, JPEG XL metadata boxes) from
//! encapsulated frames.

use super::encapsulated::put_encapsulated;
use super::source::PixelSource;
use crate::dataset::{DataSet, Value, PIXEL_DATA};
use crate::error::{Error, Result};
use dicom_encoding::adapters::PixelDataObject;
use std::borrow::Cow;

/// JPEG transfer syntaxes whose frames are stripped like JPEG files (baseline, extended,
/// lossless) and JPEG-LS (lossless, near-lossless), which shares JPEG's marker structure.
const JPEG_SYNTAXES: &[&str] = &[
    "1.2.840.10008.1.2.4.50",
    "1.2.840.10008.1.2.4.51",
    "1.2.840.10008.1.2.4.57",
    "1.2.840.10008.1.2.4.70",
    "1.2.840.10008.1.2.4.80",
    "1.2.840.10008.1.2.4.81",
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

/// JPEG XL transfer syntaxes: lossless, JPEG recompression, and JPEG XL.
const JPEG_XL_SYNTAXES: &[&str] = &[crate::jxl::LOSSLESS, crate::jxl::RECOMPRESSION, crate::jxl::JPEG_XL];

/// What stripping removed, and the transfer syntax the pixel data is in afterwards when it
/// changed (JPEG XL JPEG Recompression without its reconstruction data is JPEG XL).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StrippedFrames {
    /// Segments, boxes and trailers removed.
    pub removed: u64,
    /// The transfer syntax to write, when it is no longer the one read.
    pub transfer_syntax: Option<&'static str>,
}

/// Strips free text that rides along with the image from every frame of encapsulated pixel data:
/// - JPEG and JPEG-LS: APPn and COM segments and bytes after EOI (they can carry EXIF dates,
///   device names or typed comments), as for plain JPEG files ([`crate::raster`]);
/// - JPEG 2000 and HTJ2K: COM segments of the main and tile-part headers, bytes after EOC, and
///   every JP2 box but the signature, `ftyp`, `jp2h` and `jp2c` ([`crate::j2k`]);
/// - JPEG XL: every container box but the signature, `ftyp`, `jxll`, `jxli`, `jxlc` and `jxlp`
///   (Exif, XMP, JUMBF, Brotli-compressed boxes and the JPEG reconstruction data, [`crate::jxl`]).
///
/// The coded image is copied byte for byte. It runs on whatever is written encapsulated, a frame
/// re-encoded after burning included.
pub fn strip_encapsulated_metadata(ds: &mut DataSet<'_>, ts_uid: &str) -> Result<StrippedFrames> {
    type Strip = fn(&[u8]) -> std::result::Result<(Vec<u8>, u32), String>;
    let strip: Strip = if JPEG_SYNTAXES.contains(&ts_uid) {
        |f| crate::raster::strip_jpeg_metadata(f).map_err(|e| e.to_string())
    } else if JPEG_2000_SYNTAXES.contains(&ts_uid) {
        |f| crate::j2k::strip_frame(f).map_err(str::to_owned)
    } else if JPEG_XL_SYNTAXES.contains(&ts_uid) {
        |f| crate::jxl::strip_frame(f).map_err(str::to_owned)
    } else {
        return Ok(StrippedFrames::default());
    };
    let Some(Value::Encapsulated { fragments, .. }) = ds.get(PIXEL_DATA).map(|e| &e.value) else {
        return Ok(StrippedFrames::default());
    };
    if fragments.is_empty() {
        return Ok(StrippedFrames::default());
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
    if removed == 0 {
        return Ok(StrippedFrames::default());
    }
    put_encapsulated(ds, stripped);
    Ok(StrippedFrames {
        removed,
        transfer_syntax: (ts_uid == crate::jxl::RECOMPRESSION).then_some(crate::jxl::JPEG_XL),
    })
}
