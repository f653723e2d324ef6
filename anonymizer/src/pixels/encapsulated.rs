//! Encapsulated pixel data: decode with the registry codecs (RLE with Alpes' own), burn, and
//! re-encode losslessly in the same syntax, or else in RLE Lossless (native Explicit VR Little
//! Endian when RLE cannot carry the samples).

use super::source::PixelSource;
use super::{burn_native, BurnPlan, Geometry};
use crate::dataset::{DataSet, Element, Value, Vr, PIXEL_DATA};
use crate::error::{Error, Result};
use crate::syntax::{dictionary_vr, EXPLICIT_LE, RLE};
use dicom_encoding::adapters::{EncodeOptions, PixelDataObject};
use dicom_encoding::transfer_syntax::{Codec, TransferSyntaxIndex};
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;
use rayon::prelude::*;
use std::borrow::Cow;

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
/// would degrade the image, so the burned pixels are written in RLE Lossless.
fn reencode_allowed(ts: &str) -> bool {
    matches!(ts, "1.2.840.10008.1.2.4.80" | "1.2.840.10008.1.2.4.90" | "1.2.840.10008.1.2.4.201")
}

/// Decodes encapsulated pixel data, burns it, and re-encodes it (or writes it native).
/// `decoded` is the pixel data as [`decode_encapsulated`] gave it already (the burned-in text
/// safety net decoded it to read it), so it is not decoded twice; RLE, burned frame by frame in
/// parallel, decodes its own.
pub fn burn_encapsulated(
    ds: &mut DataSet<'_>,
    ts_uid: &str,
    plan: &BurnPlan,
    limit: u64,
    decoded: Option<(Vec<u8>, Geometry)>,
) -> Result<Transcoded> {
    if ts_uid == RLE {
        let g = Geometry::of(ds)?;
        within(&g, limit)?;
        return burn_rle(ds, g, plan);
    }
    let (mut native, g) = match decoded {
        Some(d) => d,
        None => decode_encapsulated(ds, ts_uid, limit)?,
    };
    let writer = match TransferSyntaxRegistry.get(ts_uid).map(|ts| ts.codec()) {
        Some(Codec::EncapsulatedPixelData(_, writer)) => writer.as_ref(),
        _ => None,
    };
    let pi = ds.text(0x0028_0004).unwrap_or("").to_owned();
    let colour = g.samples == 3;
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
    // Once lossy, always lossy (PS3.3 C.7.6.1.1.5): the flag records the image's history.
    let lossy = is_lossy(ts_uid);
    if lossy || ds.text(0x0028_2110) != Some("01") {
        ds.put(Element::text(0x0028_2110, Vr::CS, if lossy { "01" } else { "00" }));
    }
    let why = if lossy {
        format!("lossy {ts_uid} is not re-encoded (no second lossy generation)")
    } else {
        format!("no encoder for {ts_uid}")
    };
    if let Some(fragments) = rle_frames(&native, &g) {
        put_encapsulated(ds, fragments);
        return Ok(Transcoded {
            transfer_syntax: RLE.to_owned(),
            note: Some(format!("{why}; burned pixel data written as RLE Lossless")),
            filled,
        });
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
    Ok(Transcoded {
        transfer_syntax: EXPLICIT_LE.to_owned(),
        note: Some(format!("{why}; burned pixel data written as Explicit VR Little Endian")),
        filled,
    })
}

/// Decoded frames (native little endian, interleaved) as RLE Lossless fragments, encoded on the
/// rayon pool, or `None` when RLE cannot carry them (PS3.5 G.2: at most 15 segments, one per
/// byte of each sample, so 8, 16 or 32 bits, and 1 or 3 samples).
fn rle_frames(native: &[u8], g: &Geometry) -> Option<Vec<Cow<'static, [u8]>>> {
    let (samples, bytes) = (g.samples as usize, (g.bits / 8) as usize);
    if !matches!(g.bits, 8 | 16 | 32) || samples * bytes > 15 || g.frames == 0 {
        return None;
    }
    let frame = usize::try_from(g.frame_bytes()).ok()?;
    if frame == 0 || native.len() < frame * g.frames as usize {
        return None;
    }
    Some(
        native
            .par_chunks_exact(frame)
            .take(g.frames as usize)
            .map(|f| Cow::Owned(crate::rle::encode_frame(f, samples, bytes)))
            .collect(),
    )
}

fn within(g: &Geometry, limit: u64) -> Result<()> {
    let decoded_size = g.frame_bytes().saturating_mul(u64::from(g.frames));
    if decoded_size > limit {
        return Err(Error::DecodeLimit {
            needed: decoded_size,
            limit,
        });
    }
    Ok(())
}

/// Decodes every frame of encapsulated pixel data (within `limit` bytes) to native samples, with
/// the geometry they have: decoders give colour as interleaved RGB.
pub fn decode_encapsulated(ds: &DataSet<'_>, ts_uid: &str, limit: u64) -> Result<(Vec<u8>, Geometry)> {
    let decode_err = |reason: String| Error::PixelDecode {
        transfer_syntax: ts_uid.to_owned(),
        reason,
    };
    let mut g = Geometry::of(ds)?;
    within(&g, limit)?;
    let mut native = Vec::with_capacity((g.frame_bytes() * u64::from(g.frames)).min(1 << 30) as usize);
    if ts_uid == RLE {
        g.planar = false;
        g.subsampled_422 = false;
        let (samples, bytes) = (g.samples as usize, (g.bits / 8) as usize);
        let pixels = g.rows as usize * g.cols as usize;
        for f in rle_fragments(ds, &g)? {
            crate::rle::decode_frame(f, pixels, samples, bytes, &mut native)?;
        }
        return Ok((native, g));
    }
    let ts = TransferSyntaxRegistry
        .get(ts_uid)
        .ok_or_else(|| decode_err("transfer syntax not in the codec registry".into()))?;
    let Codec::EncapsulatedPixelData(reader, _) = ts.codec() else {
        return Err(decode_err("not an encapsulated transfer syntax".into()));
    };
    let reader = reader
        .as_ref()
        .ok_or_else(|| decode_err("no decoder is built in for this transfer syntax".into()))?;
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
    if g.samples == 3 {
        g.planar = false;
        g.ybr = false;
        g.subsampled_422 = false;
    }
    Ok((native, g))
}

/// The RLE fragments of each frame (one per frame, as PS3.5 Annex G has it).
fn rle_fragments<'d>(ds: &'d DataSet<'_>, g: &Geometry) -> Result<Vec<&'d [u8]>> {
    if g.bits == 1 {
        return Err(Error::PixelDecode {
            transfer_syntax: RLE.into(),
            reason: "1-bit RLE is not supported".into(),
        });
    }
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
    Ok(fragments.iter().take(g.frames as usize).map(|f| &f[..]).collect())
}

/// RLE Lossless: decode each frame, burn, and re-encode in RLE with Alpes' own codec.
fn burn_rle(ds: &mut DataSet<'_>, mut g: Geometry, plan: &BurnPlan) -> Result<Transcoded> {
    g.planar = false;
    g.subsampled_422 = false;
    let (samples, bytes) = (g.samples as usize, (g.bits / 8) as usize);
    let pixels = g.rows as usize * g.cols as usize;
    let frames = rle_fragments(ds, &g)?;
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

/// Replaces the pixel data with encapsulated fragments and a Basic Offset Table
/// (left empty when offsets would not fit in 32 bits, as PS3.5 A.4 allows).
pub(super) fn put_encapsulated(ds: &mut DataSet<'_>, fragments: Vec<Cow<'static, [u8]>>) {
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
pub(super) fn check_jpeg_header(frame: &[u8], g: &Geometry) -> std::result::Result<(), &'static str> {
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
