//! Free text removed from JPEG XL frames of encapsulated pixel data.
//!
//! A JPEG XL frame is a bare codestream (it starts `FF 0A`) or a container of ISO base media
//! boxes (ISO/IEC 18181-2). The codestream has nowhere to carry text; the container does: Exif
//! (`Exif`), XMP (`xml `), JUMBF (`jumb`), any of them Brotli-compressed (`brob`, as `cjxl` writes
//! Exif), and the JPEG reconstruction data (`jbrd`), which keeps the APPn and COM segments of the
//! JPEG the frame was recompressed from. [`strip_frame`] keeps the signature box, `ftyp`, the level
//! (`jxll`), the frame index (`jxli`) and the codestream (`jxlc`, or its parts `jxlp`), byte for
//! byte, and drops every other box, so the frame decodes to the same pixels. Without `jbrd` the
//! original JPEG can no longer be rebuilt from the frame: an instance in JPEG XL JPEG
//! Recompression that loses it is written as JPEG XL ([`RECOMPRESSION`] → [`JPEG_XL`]).

use crate::boxes::{put, split};
use crate::j2k::Stripped;

/// The JPEG XL container's signature box: length 12, type `JXL `, content `0D 0A 87 0A`.
pub const SIGNATURE: [u8; 12] = [0, 0, 0, 0x0C, b'J', b'X', b'L', b' ', 0x0D, 0x0A, 0x87, 0x0A];

/// The first bytes of a bare JPEG XL codestream.
const CODESTREAM: [u8; 2] = [0xFF, 0x0A];

/// The boxes a decoder needs: file type, level, frame index, codestream, codestream parts.
const KEPT: [&[u8; 4]; 5] = [b"ftyp", b"jxll", b"jxli", b"jxlc", b"jxlp"];

/// JPEG XL Lossless.
pub const LOSSLESS: &str = "1.2.840.10008.1.2.4.110";
/// JPEG XL JPEG Recompression: the frame can rebuild the JPEG it was made from (`jbrd`).
pub const RECOMPRESSION: &str = "1.2.840.10008.1.2.4.111";
/// JPEG XL.
pub const JPEG_XL: &str = "1.2.840.10008.1.2.4.112";

/// Strips a JPEG XL frame: a bare codestream is kept as it is; a container keeps only the boxes
/// a decoder needs. Returns the frame and how many boxes were dropped.
pub fn strip_frame(frame: &[u8]) -> Result<Stripped, &'static str> {
    if frame.starts_with(&CODESTREAM) {
        return Ok((frame.to_vec(), 0));
    }
    let body = frame
        .strip_prefix(&SIGNATURE[..])
        .ok_or("neither a JPEG XL codestream nor a container")?;
    let mut out = Vec::with_capacity(frame.len());
    out.extend_from_slice(&SIGNATURE);
    let (mut removed, mut ftyp, mut codestream) = (0u32, false, false);
    for b in split(body)? {
        if KEPT.contains(&&b.kind) {
            ftyp |= &b.kind == b"ftyp";
            codestream |= &b.kind == b"jxlc" || &b.kind == b"jxlp";
            put(&mut out, &b.kind, b.body);
        } else {
            removed += 1;
        }
    }
    if !(ftyp && codestream) {
        return Err("JPEG XL container without its ftyp or codestream box");
    }
    Ok((out, removed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(boxes: &[(&[u8; 4], &[u8])]) -> Vec<u8> {
        let mut f = SIGNATURE.to_vec();
        for (kind, body) in boxes {
            put(&mut f, kind, body);
        }
        f
    }

    #[test]
    fn a_container_keeps_the_codestream_boxes_byte_for_byte_and_loses_every_text_carrier() {
        let parts: [(&[u8; 4], &[u8]); 9] = [
            (b"ftyp", b"jxl \0\0\0\0jxl "),
            (b"jxll", &[5]),
            (b"Exif", b"\0\0\0\0MM\0*PATIENT SMITH"),
            (b"jxlp", &[0, 0, 0, 0, 0xFF, 0x0A, 1, 2]),
            (b"jbrd", b"COM PATIENT SMITH"),
            (b"brob", b"Exif compressed PATIENT"),
            (b"xml ", b"<x:xmpmeta>SMITH</x:xmpmeta>"),
            (b"jumb", b"SMITH"),
            (b"jxlp", &[0x80, 0, 0, 1, 3, 4]),
        ];
        let (out, removed) = strip_frame(&container(&parts)).expect("stripped");
        assert_eq!(removed, 5);
        assert_eq!(out, container(&[parts[0], parts[1], parts[3], parts[8]]));
        assert!(!out.windows(5).any(|w| w == b"SMITH"));
    }

    #[test]
    fn a_bare_codestream_is_kept_and_a_broken_frame_is_an_error() {
        let bare = [0xFF, 0x0A, 0xFA, 0x12, 0x00, 0x00];
        assert_eq!(strip_frame(&bare).expect("bare"), (bare.to_vec(), 0));
        assert!(strip_frame(b"JFIF nonsense").is_err());
        assert!(strip_frame(&container(&[(b"ftyp", b"jxl ")])).is_err(), "no codestream");
        assert!(strip_frame(&container(&[(b"jxlc", &[0xFF, 0x0A])])).is_err(), "no ftyp");
        let mut truncated = container(&[(b"ftyp", b"jxl "), (b"jxlc", &[0xFF, 0x0A, 1, 2])]);
        truncated.truncate(truncated.len() - 2);
        assert!(strip_frame(&truncated).is_err());
        // The pad byte of an odd fragment is not a box.
        let mut padded = container(&[(b"ftyp", b"jxl "), (b"jxlc", &[0xFF, 0x0A, 1])]);
        assert_eq!(padded.len() % 2, 1);
        padded.push(0);
        assert_eq!(strip_frame(&padded).expect("padded").1, 0);
    }
}
