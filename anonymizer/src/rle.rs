//! DICOM RLE Lossless (PS3.5 Annex G): decode and encode one frame, any bits allocated.
//!
//! A frame is a 64-byte header (segment count and up to 15 offsets) followed
//! by PackBits segments, one per byte plane: for each sample, most
//! significant byte first. Native data is little endian, samples interleaved.

use crate::error::{Error, Result};

fn bad(reason: &str) -> Error {
    Error::PixelDecode {
        transfer_syntax: crate::syntax::RLE.into(),
        reason: reason.into(),
    }
}

/// Decodes one RLE frame into `dst` (appended), `pixels` pixels of `samples` × `bytes` each.
pub fn decode_frame(frame: &[u8], pixels: usize, samples: usize, bytes: usize, dst: &mut Vec<u8>) -> Result<()> {
    let header = frame.get(..64).ok_or_else(|| bad("RLE frame shorter than its header"))?;
    let word = |i: usize| u32::from_le_bytes([header[i * 4], header[i * 4 + 1], header[i * 4 + 2], header[i * 4 + 3]]) as usize;
    let segments = word(0);
    if segments != samples * bytes || segments > 15 {
        return Err(bad("RLE segment count does not match samples per pixel and bits allocated"));
    }
    let base = dst.len();
    dst.resize(base + pixels * segments, 0);
    let mut plane = Vec::with_capacity(pixels);
    for seg in 0..segments {
        let start = word(seg + 1);
        let end = if seg + 1 < segments { word(seg + 2) } else { frame.len() };
        let data = frame
            .get(start..end.max(start).min(frame.len()))
            .ok_or_else(|| bad("RLE segment offset out of range"))?;
        plane.clear();
        unpack_bits(data, pixels, &mut plane);
        if plane.len() < pixels {
            return Err(bad("RLE segment decodes to fewer bytes than the frame needs"));
        }
        let (sample, msb_index) = (seg / bytes, seg % bytes);
        let byte = bytes - 1 - msb_index;
        let out = &mut dst[base..];
        for (p, v) in plane.iter().take(pixels).enumerate() {
            out[(p * samples + sample) * bytes + byte] = *v;
        }
    }
    Ok(())
}

fn unpack_bits(src: &[u8], want: usize, out: &mut Vec<u8>) {
    let mut i = 0;
    while i < src.len() && out.len() < want {
        let n = src[i] as i8;
        i += 1;
        if n >= 0 {
            let len = n as usize + 1;
            let end = (i + len).min(src.len());
            out.extend_from_slice(&src[i..end]);
            i = end;
        } else if n != -128 {
            let Some(&v) = src.get(i) else { break };
            out.extend(std::iter::repeat_n(v, (1 - i16::from(n)) as usize));
            i += 1;
        }
    }
    out.truncate(want);
}

fn pack_bits(src: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    while i < src.len() {
        let mut run = 1;
        while i + run < src.len() && run < 128 && src[i + run] == src[i] {
            run += 1;
        }
        if run >= 2 {
            out.push((1i16 - run as i16) as i8 as u8);
            out.push(src[i]);
            i += run;
            continue;
        }
        let start = i;
        while i < src.len() && i - start < 128 && !(i + 1 < src.len() && src[i + 1] == src[i]) {
            i += 1;
        }
        if i == start {
            i += 1;
        }
        out.push((i - start - 1) as u8);
        out.extend_from_slice(&src[start..i]);
    }
}

/// Encodes one native frame (little endian, interleaved) as an RLE fragment.
pub fn encode_frame(native: &[u8], samples: usize, bytes: usize) -> Vec<u8> {
    let segments = samples * bytes;
    let pixels = native.len() / segments.max(1);
    let mut out = vec![0u8; 64];
    out[0..4].copy_from_slice(&(segments as u32).to_le_bytes());
    let mut plane = Vec::with_capacity(pixels);
    for seg in 0..segments {
        let offset = out.len() as u32;
        out[4 + seg * 4..8 + seg * 4].copy_from_slice(&offset.to_le_bytes());
        let (sample, byte) = (seg / bytes, bytes - 1 - seg % bytes);
        plane.clear();
        plane.extend((0..pixels).map(|p| native[(p * samples + sample) * bytes + byte]));
        pack_bits(&plane, &mut out);
        if out.len() % 2 == 1 {
            out.push(0x80); // a no-op code keeps segments even
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_for_every_sample_layout() {
        for (samples, bytes) in [(1, 1), (1, 2), (3, 1), (3, 2), (1, 4), (3, 4)] {
            let pixels = 37;
            let native: Vec<u8> = (0..pixels * samples * bytes)
                .map(|i| if i % 7 < 3 { 9 } else { (i * 31 % 251) as u8 })
                .collect();
            let enc = encode_frame(&native, samples, bytes);
            let mut dec = Vec::new();
            decode_frame(&enc, pixels, samples, bytes, &mut dec).expect("decode");
            assert_eq!(dec, native, "samples {samples} bytes {bytes}");
        }
    }

    #[test]
    fn long_runs_and_literals_pack_and_unpack() {
        let src: Vec<u8> = std::iter::repeat_n(5u8, 300)
            .chain(0..=255)
            .chain(std::iter::repeat_n(1, 3))
            .collect();
        let mut packed = Vec::new();
        pack_bits(&src, &mut packed);
        let mut out = Vec::new();
        unpack_bits(&packed, src.len(), &mut out);
        assert_eq!(out, src);
    }

    #[test]
    fn corrupt_frames_are_errors_not_panics() {
        let mut dst = Vec::new();
        assert!(decode_frame(&[0u8; 10], 4, 1, 1, &mut dst).is_err());
        let mut header = vec![0u8; 64];
        header[0] = 1;
        header[4] = 200;
        assert!(decode_frame(&header, 4, 1, 1, &mut dst).is_err());
    }
}
