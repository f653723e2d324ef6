//! Boxes of the ISO base media file format, as JP2 files ([`crate::j2k`]) and JPEG XL
//! containers ([`crate::jxl`]) wrap their codestreams in: a 32-bit big-endian length (1: a
//! 64-bit one follows the type; 0: to the end), a four-byte type, then the content. Errors are
//! fixed texts, never values read from the frame.

/// One box: its type and its content.
pub(crate) struct IsoBox<'a> {
    pub(crate) kind: [u8; 4],
    pub(crate) body: &'a [u8],
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at.checked_add(4)?).map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

/// Splits a run of boxes (a file or a superbox's content). Zero padding at the end (a DICOM
/// fragment is padded to an even length) is not a box.
pub(crate) fn split(input: &[u8]) -> Result<Vec<IsoBox<'_>>, &'static str> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos < input.len() {
        if input[pos..].iter().all(|&b| b == 0) {
            break;
        }
        let size = be32(input, pos).ok_or("truncated box header")?;
        let kind: [u8; 4] = input
            .get(pos + 4..pos + 8)
            .and_then(|k| k.try_into().ok())
            .ok_or("truncated box header")?;
        let (header, len) = match size {
            0 => (8, input.len() - pos),
            1 => {
                let hi = be32(input, pos + 8).ok_or("truncated box header")?;
                let lo = be32(input, pos + 12).ok_or("truncated box header")?;
                let xl = (u64::from(hi) << 32) | u64::from(lo);
                (16, usize::try_from(xl).map_err(|_| "box too long")?)
            }
            n => (8, n as usize),
        };
        let end = pos.checked_add(len).filter(|_| len >= header).ok_or("box length out of range")?;
        let body = input.get(pos + header..end).ok_or("box runs past the end")?;
        out.push(IsoBox { kind, body });
        pos = end;
    }
    Ok(out)
}

/// Appends a box with an explicit length.
pub(crate) fn put(out: &mut Vec<u8>, kind: &[u8; 4], body: &[u8]) {
    match u32::try_from(body.len() + 8) {
        Ok(len) => {
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(kind);
        }
        Err(_) => {
            out.extend_from_slice(&1u32.to_be_bytes());
            out.extend_from_slice(kind);
            out.extend_from_slice(&(body.len() as u64 + 16).to_be_bytes());
        }
    }
    out.extend_from_slice(body);
}
