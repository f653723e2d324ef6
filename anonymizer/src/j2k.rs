//! Free text removed from JPEG 2000 frames of encapsulated pixel data.
//!
//! A JPEG 2000 frame can carry text that is not part of the image: COM marker segments in the
//! main header and in tile-part headers, bytes after the end of the codestream, and, when the
//! frame is wrapped as a JP2 file, XML, UUID, UUID-info, IPR and other boxes. [`strip_frame`]
//! removes all of it without touching the coded image:
//! - a raw codestream (starting with SOC, `FF4F`) loses every COM (`FF64`) segment. A tile-part
//!   whose header loses one has its Psot (the tile-part length in its SOT segment) decreased by
//!   the bytes removed; Psot 0 ("to the end of the codestream") stays 0. TLM segments, which
//!   repeat tile-part lengths in the main header and are optional, are dropped when any
//!   tile-part length changed. Bytes after EOC (`FFD9`) are dropped;
//! - a JP2 file keeps only the signature box, `ftyp`, `jp2h` (with only its image header,
//!   bits-per-component, colour, palette, component mapping, channel definition and resolution
//!   boxes) and the first `jp2c` box, whose codestream is stripped as above.
//!
//! The same holds for HTJ2K, which uses the same codestream syntax. Packet data is copied byte
//! for byte, so the frame decodes to the same pixels. Errors are fixed texts, never values read
//! from the frame.

use crate::boxes::{put as put_box, split as boxes};

/// Start of codestream.
const SOC: u16 = 0xFF4F;
/// Image and tile size: the first segment of the main header.
const SIZ: u16 = 0xFF51;
/// Tile-part lengths (main header, optional).
const TLM: u16 = 0xFF55;
/// Comment.
const COM: u16 = 0xFF64;
/// Start of tile-part.
const SOT: u16 = 0xFF90;
/// Start of data (ends a tile-part header).
const SOD: u16 = 0xFF93;
/// End of codestream.
const EOC: u16 = 0xFFD9;

/// The JP2 signature box: length 12, type `jP  `, content `0D 0A 87 0A`.
pub const JP2_SIGNATURE: [u8; 12] = [0, 0, 0, 0x0C, 0x6A, 0x50, 0x20, 0x20, 0x0D, 0x0A, 0x87, 0x0A];

/// Boxes inside `jp2h` that a reader needs: image header, bits per component, colour
/// specification, palette, component mapping, channel definition, resolution.
const JP2H_KEPT: [&[u8; 4]; 7] = [b"ihdr", b"bpcc", b"colr", b"pclr", b"cmap", b"cdef", b"res "];

/// What stripping needs to report: the frame's new bytes and how many carriers were removed
/// (COM segments, boxes, and the bytes after EOC counting as one).
pub type Stripped = (Vec<u8>, u32);

/// Strips a JPEG 2000 frame, raw codestream or JP2 file.
pub fn strip_frame(frame: &[u8]) -> Result<Stripped, &'static str> {
    if frame.starts_with(&JP2_SIGNATURE) {
        strip_jp2(frame)
    } else if frame.starts_with(&SOC.to_be_bytes()) {
        strip_codestream(frame)
    } else {
        Err("frame is neither a JPEG 2000 codestream nor a JP2 file")
    }
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    b.get(at..at.checked_add(2)?).map(|s| u16::from_be_bytes([s[0], s[1]]))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at.checked_add(4)?).map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

/// The marker segment starting at `at` (marker and length included).
fn segment(input: &[u8], at: usize) -> Result<&[u8], &'static str> {
    let marker = be16(input, at).ok_or("truncated marker")?;
    if marker < 0xFF01 {
        return Err("expected a JPEG 2000 marker");
    }
    // Reserved markers FF30..FF3F stand alone, with no length.
    if (0xFF30..=0xFF3F).contains(&marker) {
        return Ok(&input[at..at + 2]);
    }
    let len = usize::from(be16(input, at + 2).ok_or("truncated marker segment length")?);
    if len < 2 {
        return Err("marker segment length too small");
    }
    input.get(at..at + 2 + len).ok_or("truncated marker segment")
}

/// The offset of the first EOC marker at or after `from`. Packet data never holds `FF` followed
/// by a byte above `8F` (both the MQ coder and packet headers stuff a bit after `FF`), so the
/// first `FFD9` after a tile-part header is the EOC marker.
fn find_marker(input: &[u8], from: usize, marker: u16) -> Option<usize> {
    input
        .get(from..)
        .and_then(|rest| rest.windows(2).position(|w| w == marker.to_be_bytes()))
        .map(|i| from + i)
}

/// Strips COM segments and the bytes after EOC from a raw codestream.
pub fn strip_codestream(input: &[u8]) -> Result<Stripped, &'static str> {
    if be16(input, 0) != Some(SOC) {
        return Err("missing SOC marker");
    }
    if be16(input, 2) != Some(SIZ) {
        return Err("SIZ does not follow SOC");
    }
    let mut removed = 0u32;
    // Main header: every marker segment up to the first SOT (or EOC, for a codestream with no tile).
    let mut main: Vec<&[u8]> = Vec::new();
    let mut pos = 2usize;
    loop {
        let marker = be16(input, pos).ok_or("truncated main header")?;
        if marker == SOT || marker == EOC {
            break;
        }
        let seg = segment(input, pos)?;
        pos += seg.len();
        if marker == COM {
            removed += 1;
        } else {
            main.push(seg);
        }
    }
    // Tile-parts: SOT, header segments, SOD, then packet data up to Psot bytes from SOT.
    let mut tiles: Vec<u8> = Vec::with_capacity(input.len().saturating_sub(pos));
    let mut lengths_changed = false;
    while be16(input, pos) == Some(SOT) {
        let sot = input.get(pos..pos + 12).ok_or("truncated SOT segment")?;
        if be16(sot, 2) != Some(10) {
            return Err("SOT segment length is not 10");
        }
        let psot = be32(sot, 6).ok_or("truncated SOT segment")?;
        let end = match psot {
            0 => None,
            n => {
                let end = usize::try_from(n)
                    .ok()
                    .and_then(|n| pos.checked_add(n))
                    .ok_or("tile-part length overflows")?;
                if end > input.len() || end < pos + 14 {
                    return Err("tile-part length (Psot) does not fit the codestream");
                }
                Some(end)
            }
        };
        let mut header: Vec<u8> = Vec::new();
        let mut cut = 0usize;
        let mut at = pos + 12;
        loop {
            let marker = be16(input, at).ok_or("truncated tile-part header")?;
            if marker == SOD {
                break;
            }
            let seg = segment(input, at)?;
            at += seg.len();
            if end.is_some_and(|e| at > e) {
                return Err("tile-part header runs past its Psot");
            }
            if marker == COM {
                removed += 1;
                cut += seg.len();
            } else {
                header.extend_from_slice(seg);
            }
        }
        if end.is_some_and(|e| at + 2 > e) {
            return Err("tile-part header runs past its Psot");
        }
        // Psot 0: the tile-part is the last one and runs to EOC (which is not part of it).
        let data_end = match end {
            Some(e) => e,
            None => find_marker(input, at + 2, EOC).unwrap_or(input.len()),
        };
        let new_psot = if psot == 0 {
            0
        } else {
            lengths_changed |= cut > 0;
            u32::try_from(data_end - pos - cut).map_err(|_| "tile-part length overflows")?
        };
        tiles.extend_from_slice(&sot[..6]);
        tiles.extend_from_slice(&new_psot.to_be_bytes());
        tiles.extend_from_slice(&sot[10..12]);
        tiles.extend_from_slice(&header);
        tiles.extend_from_slice(&input[at..data_end]);
        pos = data_end;
        if psot == 0 {
            break;
        }
    }
    // After the last tile-part comes EOC; whatever follows it is dropped (zero padding silently).
    let rest = input.get(pos..).unwrap_or_default();
    let trailing = if be16(rest, 0) == Some(EOC) {
        &rest[2..]
    } else if find_marker(rest, 0, SOT).is_some() || find_marker(rest, 0, EOC).is_some() {
        // More tile-parts or an EOC further on: a Psot that does not lead to the next marker.
        return Err("tile-part length (Psot) does not lead to the next tile-part or EOC");
    } else {
        rest
    };
    if trailing.iter().any(|&b| b != 0) {
        removed += 1;
    }
    let mut out = Vec::with_capacity(input.len());
    out.extend_from_slice(&SOC.to_be_bytes());
    for seg in main {
        if lengths_changed && be16(seg, 0) == Some(TLM) {
            continue;
        }
        out.extend_from_slice(seg);
    }
    out.extend_from_slice(&tiles);
    out.extend_from_slice(&EOC.to_be_bytes());
    Ok((out, removed))
}

/// Keeps the boxes of a JP2 file a reader needs, with the codestream stripped.
pub fn strip_jp2(input: &[u8]) -> Result<Stripped, &'static str> {
    if !input.starts_with(&JP2_SIGNATURE) {
        return Err("missing JP2 signature box");
    }
    let mut out = Vec::with_capacity(input.len());
    let mut removed = 0u32;
    let (mut ftyp, mut header, mut codestream) = (false, false, false);
    out.extend_from_slice(&JP2_SIGNATURE);
    for b in boxes(&input[JP2_SIGNATURE.len()..])? {
        match &b.kind {
            b"ftyp" if !ftyp => {
                ftyp = true;
                put_box(&mut out, &b.kind, b.body);
            }
            b"jp2h" if !header => {
                header = true;
                let mut body = Vec::with_capacity(b.body.len());
                for sub in boxes(b.body)? {
                    if JP2H_KEPT.contains(&&sub.kind) {
                        put_box(&mut body, &sub.kind, sub.body);
                    } else {
                        removed += 1;
                    }
                }
                put_box(&mut out, &b.kind, &body);
            }
            b"jp2c" if !codestream => {
                codestream = true;
                let (stream, n) = strip_codestream(b.body)?;
                removed += n;
                put_box(&mut out, &b.kind, &stream);
            }
            _ => removed += 1,
        }
    }
    if !(ftyp && header && codestream) {
        return Err("JP2 file without its ftyp, jp2h or jp2c box");
    }
    Ok((out, removed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn com(text: &[u8]) -> Vec<u8> {
        let mut s = vec![0xFF, 0x64];
        s.extend_from_slice(&((text.len() + 4) as u16).to_be_bytes());
        s.extend_from_slice(&[0, 1]);
        s.extend_from_slice(text);
        s
    }

    /// A tiny structurally valid codestream: SIZ, COD-like segment, one tile-part with `tile_hdr`
    /// in its header, and `data` as packet data.
    fn codestream(main_extra: &[u8], tile_hdr: &[u8], data: &[u8], psot_zero: bool) -> Vec<u8> {
        let mut c = vec![0xFF, 0x4F];
        c.extend_from_slice(&[0xFF, 0x51, 0, 4, 0xAA, 0xBB]);
        c.extend_from_slice(main_extra);
        c.extend_from_slice(&[0xFF, 0x52, 0, 3, 0x01]);
        let psot = if psot_zero {
            0
        } else {
            (12 + tile_hdr.len() + 2 + data.len()) as u32
        };
        c.extend_from_slice(&[0xFF, 0x90, 0, 10, 0, 0]);
        c.extend_from_slice(&psot.to_be_bytes());
        c.extend_from_slice(&[0, 1]);
        c.extend_from_slice(tile_hdr);
        c.extend_from_slice(&[0xFF, 0x93]);
        c.extend_from_slice(data);
        c.extend_from_slice(&[0xFF, 0xD9]);
        c
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn comments_in_the_main_and_tile_part_headers_are_removed_and_psot_shrinks() {
        let data = [0x12, 0xFF, 0x7F, 0x34];
        let clean = codestream(&[], &[], &data, false);
        let dirty = codestream(&com(b"PATIENT SMITH"), &com(b"MRN 1234"), &data, false);
        let (out, removed) = strip_codestream(&dirty).expect("strip");
        assert_eq!(removed, 2);
        assert_eq!(out, clean);
        assert!(!contains(&out, b"SMITH") && !contains(&out, b"1234"));
    }

    #[test]
    fn psot_zero_stays_zero_and_bytes_after_eoc_go() {
        let data = [0x12, 0xFF, 0x7F, 0x34];
        let clean = codestream(&[], &[], &data, true);
        let mut dirty = codestream(&[], &com(b"SMITH"), &data, true);
        dirty.extend_from_slice(b"TRAILING SMITH");
        let (out, removed) = strip_codestream(&dirty).expect("strip");
        assert_eq!(out, clean);
        assert_eq!(removed, 2);
    }

    #[test]
    fn tlm_goes_only_when_a_tile_part_length_changed() {
        // Ztlm 0, Stlm: no tile index, 32-bit lengths; one tile-part of 20 bytes.
        let tlm = [0xFF, 0x55, 0, 8, 0, 0x40, 0, 0, 0, 20];
        let data = [1, 2, 3, 4];
        let (out, _) = strip_codestream(&codestream(&tlm, &com(b"X"), &data, false)).expect("strip");
        assert!(!contains(&out, &tlm));
        let (out, removed) = strip_codestream(&codestream(&tlm, &[], &data, false)).expect("strip");
        assert_eq!(removed, 0);
        assert!(contains(&out, &tlm));
    }

    #[test]
    fn padding_after_eoc_is_not_counted_as_metadata() {
        let mut c = codestream(&[], &[], &[1, 2, 3], false);
        c.push(0);
        let (out, removed) = strip_codestream(&c).expect("strip");
        assert_eq!(removed, 0);
        assert_eq!(out, &c[..c.len() - 1]);
    }

    #[test]
    fn a_psot_that_points_into_the_middle_of_a_header_is_an_error() {
        let mut c = codestream(&[], &com(b"ABCDEFGH"), &[1, 2], false);
        // Psot says 14: the COM segment runs past it.
        let sot = c.windows(2).position(|w| w == [0xFF, 0x90]).expect("sot");
        c[sot + 6..sot + 10].copy_from_slice(&14u32.to_be_bytes());
        assert!(strip_codestream(&c).is_err());
        assert!(strip_frame(b"not a codestream").is_err());
        assert!(strip_codestream(&[0xFF, 0x4F, 0xFF, 0x51, 0, 40]).is_err());
    }

    #[test]
    fn a_jp2_file_keeps_only_signature_ftyp_header_and_stripped_codestream() {
        let data = [9, 8, 7];
        let mut ihdr = Vec::new();
        put_box(&mut ihdr, b"ihdr", &[0, 0, 0, 4, 0, 0, 0, 4, 0, 1, 7, 7, 0, 0]);
        let mut colr = Vec::new();
        put_box(&mut colr, b"colr", &[1, 0, 0, 0, 0, 0, 17]);
        let header_clean = [ihdr.clone(), colr.clone()].concat();
        let mut file = JP2_SIGNATURE.to_vec();
        put_box(&mut file, b"ftyp", b"jp2 \0\0\0\0jp2 ");
        let mut header_dirty = ihdr;
        put_box(&mut header_dirty, b"lbl ", b"PATIENT SMITH");
        header_dirty.extend_from_slice(&colr);
        put_box(&mut file, b"jp2h", &header_dirty);
        put_box(&mut file, b"xml ", b"<patient>SMITH</patient>");
        put_box(&mut file, b"uuid", b"0123456789abcdefSMITH EXIF");
        put_box(&mut file, b"jp2c", &codestream(&com(b"SMITH"), &com(b"SMITH"), &data, false));
        put_box(&mut file, b"uinf", b"SMITH");
        let (out, removed) = strip_frame(&file).expect("strip");
        assert!(!contains(&out, b"SMITH"), "{out:?}");
        assert_eq!(removed, 6);
        let mut expected = JP2_SIGNATURE.to_vec();
        put_box(&mut expected, b"ftyp", b"jp2 \0\0\0\0jp2 ");
        put_box(&mut expected, b"jp2h", &header_clean);
        put_box(&mut expected, b"jp2c", &codestream(&[], &[], &data, false));
        assert_eq!(out, expected);
    }

    #[test]
    fn a_jp2_box_that_runs_to_the_end_of_the_file_is_read() {
        let mut file = JP2_SIGNATURE.to_vec();
        put_box(&mut file, b"ftyp", b"jp2 \0\0\0\0jp2 ");
        put_box(&mut file, b"jp2h", &[]);
        file.extend_from_slice(&[0, 0, 0, 0]);
        file.extend_from_slice(b"jp2c");
        file.extend_from_slice(&codestream(&com(b"SMITH"), &[], &[1], false));
        let (out, removed) = strip_frame(&file).expect("strip");
        assert_eq!(removed, 1);
        assert!(!contains(&out, b"SMITH"));
        assert!(strip_frame(&JP2_SIGNATURE).is_err(), "a JP2 file with no codestream is refused");
    }
}
