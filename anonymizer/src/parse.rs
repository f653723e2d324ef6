//! Reads DICOM Part 10 files and raw datasets into a borrowed [`DataSet`] tree.
//!
//! Every declared length is checked against the bytes that remain before it is
//! used, nesting is bounded, and nothing is allocated from a declared length,
//! so memory stays proportional to the input and no input can panic the reader.

use crate::dataset::{DataSet, Element, Value, Vr, ITEM, ITEM_DELIM, PIXEL_DATA, SEQ_DELIM};
use crate::error::{fmt_tag, Error, Result};
use crate::syntax::{dictionary_vr, Encoding, TransferSyntax};
use std::borrow::Cow;
use std::io::Read;

const UNDEFINED: u32 = 0xFFFF_FFFF;

/// Where the dataset starts and how it is encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// Byte offset of the dataset (after preamble and file meta).
    pub dataset_start: usize,
    /// The transfer syntax (declared, or guessed when the meta lacks one).
    pub transfer_syntax: TransferSyntax,
    /// Whether the transfer syntax was guessed from the dataset bytes.
    pub guessed: bool,
    /// MediaStorageSOPClassUID from the meta, if any.
    pub media_sop_class: Option<String>,
    /// A correction made to read the file, for the report (never a value from the file).
    pub note: Option<&'static str>,
}

/// Whether the bytes look like DICOM (Part 10 or a raw dataset we can guess).
pub fn looks_like_dicom(input: &[u8]) -> bool {
    if input.get(128..132) == Some(b"DICM") || input.starts_with(b"DICM") {
        return true;
    }
    guess_encoding(input).is_some()
}

/// Guesses the encoding of a raw dataset from its first element header.
fn guess_encoding(b: &[u8]) -> Option<Encoding> {
    if b.len() < 8 {
        return None;
    }
    let le = u16::from_le_bytes([b[0], b[1]]);
    let be = u16::from_be_bytes([b[0], b[1]]);
    if Vr::from_bytes([b[4], b[5]]).is_some() {
        return Some(Encoding {
            explicit: true,
            big_endian: be < le,
        });
    }
    // Implicit VR little endian: a plausible first group (0002..0028) and length.
    let len = u32::from_le_bytes([b[4], b[5], b[6], b[7]]) as usize;
    ((0x0002..=0x0028).contains(&le) && le.is_multiple_of(2) && (len <= b.len() || len == UNDEFINED as usize)).then_some(Encoding {
        explicit: false,
        big_endian: false,
    })
}

/// Finds the file meta (if any) and the transfer syntax.
pub fn layout(input: &[u8]) -> Result<Layout> {
    let meta_start = if input.get(128..132) == Some(b"DICM") {
        Some(132)
    } else if input.starts_with(b"DICM") {
        Some(4)
    } else if input.len() >= 8 && input[0..2] == [0x02, 0x00] && Vr::from_bytes([input[4], input[5]]).is_some() {
        Some(0)
    } else {
        None
    };
    let Some(start) = meta_start else {
        if let Some(encoding) = guess_encoding(input) {
            return Ok(Layout {
                dataset_start: 0,
                transfer_syntax: TransferSyntax::from_encoding(encoding),
                guessed: true,
                media_sop_class: None,
                note: None,
            });
        }
        // A few stray bytes before the first element: accept only a strongly valid explicit header.
        let skip = (1..=8).find(|&k| {
            input
                .get(k..k + 8)
                .is_some_and(|b| Vr::from_bytes([b[4], b[5]]).is_some() && (0x0002..=0x0010).contains(&u16::from_le_bytes([b[0], b[1]])))
        });
        let k = skip.ok_or(Error::UnknownFormat)?;
        return Ok(Layout {
            dataset_start: k,
            transfer_syntax: TransferSyntax::from_encoding(Encoding {
                explicit: true,
                big_endian: false,
            }),
            guessed: true,
            media_sop_class: None,
            note: Some("skipped stray bytes before the first element"),
        });
    };
    let mut r = Reader::new(
        input,
        Encoding {
            explicit: true,
            big_endian: false,
        },
        8,
    );
    r.pos = start;
    let mut ts_uid = None;
    let mut media_sop_class = None;
    while r.pos + 4 <= input.len() && r.peek_group()? == 0x0002 {
        let el = r.element(0)?;
        let text = el
            .raw()
            .map(|b| String::from_utf8_lossy(b).trim_end_matches(['\0', ' ']).trim().to_owned());
        match el.tag {
            0x0002_0010 => ts_uid = text,
            0x0002_0002 => media_sop_class = text,
            _ => {}
        }
    }
    let dataset_start = r.pos;
    let rest = &input[dataset_start..];
    let explicit_header = rest.len() >= 8 && Vr::from_bytes([rest[4], rest[5]]).is_some();
    let (mut transfer_syntax, guessed) = match ts_uid.filter(|u| !u.is_empty()) {
        Some(uid) => (
            TransferSyntax::from_uid(&uid).ok_or(Error::UnsupportedTransferSyntax { uid })?,
            false,
        ),
        None => {
            let enc = guess_encoding(rest).unwrap_or(Encoding {
                explicit: explicit_header,
                big_endian: false,
            });
            (TransferSyntax::from_encoding(enc), true)
        }
    };
    let mut note = None;
    if transfer_syntax.encoding.explicit && !transfer_syntax.deflated && rest.len() >= 8 && !explicit_header {
        // The meta says explicit VR but the dataset is implicit VR little endian (a known writer bug).
        transfer_syntax.encoding = Encoding {
            explicit: false,
            big_endian: false,
        };
        note = Some("file meta declares explicit VR but the dataset is implicit VR; read as implicit");
    }
    Ok(Layout {
        dataset_start,
        transfer_syntax,
        guessed,
        media_sop_class,
        note,
    })
}

/// Inflates a deflated dataset, refusing to grow past `limit` bytes.
pub fn inflate(deflated: &[u8], limit: u64) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(deflated.len().saturating_mul(4).min(limit as usize));
    flate2::read::DeflateDecoder::new(deflated)
        .take(limit + 1)
        .read_to_end(&mut out)
        .map_err(|_| Error::Inflate)?;
    if out.len() as u64 > limit {
        return Err(Error::InflateLimit { limit });
    }
    Ok(out)
}

/// Parses a whole dataset (no file meta) in the given encoding.
pub fn dataset(bytes: &[u8], encoding: Encoding, max_depth: usize) -> Result<DataSet<'_>> {
    let mut r = Reader::new(bytes, encoding, max_depth);
    r.items(None, 0, true)
}

/// Parses the top-level elements at the start of a dataset that may be cut
/// short (the first bytes of an upload). It stops without error where the
/// bytes end inside an element, and at Pixel Data; any other fault is an error.
pub fn dataset_head(bytes: &[u8], encoding: Encoding, max_depth: usize) -> Result<DataSet<'_>> {
    let mut r = Reader::new(bytes, encoding, max_depth);
    let mut ds = DataSet {
        elements: Vec::new(),
        big_endian: encoding.big_endian,
    };
    while r.pos < r.buf.len() && !r.buf[r.pos..].iter().all(|&b| b == 0) {
        let start = r.pos;
        match r.element(0) {
            Ok(el) => {
                let tag = el.tag;
                if ds.elements.last().is_some_and(|l| l.tag >= tag) {
                    return Err(Error::Malformed {
                        offset: start,
                        reason: "elements out of order",
                    });
                }
                ds.elements.push(el);
                if tag >= PIXEL_DATA {
                    break;
                }
            }
            Err(Error::Truncated { .. }) => break,
            Err(e) => return Err(e),
        }
    }
    Ok(ds)
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    enc: Encoding,
    max_depth: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8], enc: Encoding, max_depth: usize) -> Self {
        Reader {
            buf,
            pos: 0,
            enc,
            max_depth,
        }
    }

    fn take(&mut self, n: u64, what: &'static str) -> Result<&'a [u8]> {
        let available = self.buf.len() - self.pos;
        if n > available as u64 {
            return Err(Error::Truncated {
                offset: self.pos,
                what,
                needed: n,
                available,
            });
        }
        let s = &self.buf[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Ok(s)
    }

    fn u16(&mut self, what: &'static str) -> Result<u16> {
        let b = self.take(2, what)?;
        Ok(if self.enc.big_endian {
            u16::from_be_bytes([b[0], b[1]])
        } else {
            u16::from_le_bytes([b[0], b[1]])
        })
    }

    fn u32(&mut self, what: &'static str) -> Result<u32> {
        let b = self.take(4, what)?;
        let a = [b[0], b[1], b[2], b[3]];
        Ok(if self.enc.big_endian {
            u32::from_be_bytes(a)
        } else {
            u32::from_le_bytes(a)
        })
    }

    fn tag(&mut self) -> Result<u32> {
        let g = self.u16("tag")?;
        let e = self.u16("tag")?;
        Ok((u32::from(g) << 16) | u32::from(e))
    }

    fn peek_group(&self) -> Result<u16> {
        let b = self.buf.get(self.pos..self.pos + 2).ok_or(Error::Truncated {
            offset: self.pos,
            what: "tag",
            needed: 2,
            available: self.buf.len() - self.pos,
        })?;
        Ok(if self.enc.big_endian {
            u16::from_be_bytes([b[0], b[1]])
        } else {
            u16::from_le_bytes([b[0], b[1]])
        })
    }

    /// Reads elements until `end` (defined length), an item delimiter, or end of input (top level).
    fn items(&mut self, end: Option<usize>, depth: usize, top: bool) -> Result<DataSet<'a>> {
        if depth > self.max_depth {
            return Err(Error::TooDeep { limit: self.max_depth });
        }
        let mut ds = DataSet {
            elements: Vec::new(),
            big_endian: self.enc.big_endian,
        };
        let mut sorted = true;
        loop {
            let limit = end.unwrap_or(self.buf.len());
            if self.pos >= limit {
                if end.is_none() && !top {
                    return Err(Error::Truncated {
                        offset: self.pos,
                        what: "item delimiter",
                        needed: 8,
                        available: 0,
                    });
                }
                break;
            }
            if top && self.buf[self.pos..].iter().all(|&b| b == 0) {
                // Trailing zero padding after the last element.
                break;
            }
            let start = self.pos;
            let tag = self.tag()?;
            if tag == ITEM_DELIM {
                self.u32("item delimiter length")?;
                if end.is_some() || top {
                    return Err(Error::Malformed {
                        offset: start,
                        reason: "item delimiter outside an undefined-length item",
                    });
                }
                break;
            }
            if tag == SEQ_DELIM || tag == ITEM {
                return Err(Error::Malformed {
                    offset: start,
                    reason: "sequence delimiter or item where an element was expected",
                });
            }
            self.pos = start;
            let el = self.element(depth)?;
            if let Some(last) = ds.elements.last() {
                if last.tag >= el.tag {
                    sorted = false;
                }
            }
            ds.elements.push(el);
            if let Some(e) = end {
                if self.pos > e {
                    return Err(Error::Malformed {
                        offset: start,
                        reason: "element overruns its item",
                    });
                }
            }
        }
        if !sorted {
            ds.elements.sort_by_key(|e| e.tag);
            ds.elements.dedup_by_key(|e| e.tag);
        }
        Ok(ds)
    }

    fn element(&mut self, depth: usize) -> Result<Element<'a>> {
        let start = self.pos;
        let tag = self.tag()?;
        let (vr, len) = if self.enc.explicit {
            let b = self.take(2, "VR")?;
            let vr = Vr::from_bytes([b[0], b[1]]).ok_or_else(|| Error::InvalidVr {
                offset: start,
                tag: fmt_tag(tag),
            })?;
            let len = if vr.has_long_length() {
                self.take(2, "reserved")?;
                self.u32("length")?
            } else {
                u32::from(self.u16("length")?)
            };
            (vr, len)
        } else {
            (dictionary_vr(tag), self.u32("length")?)
        };
        if len == UNDEFINED {
            if tag == PIXEL_DATA {
                return self.encapsulated(tag, vr);
            }
            if vr == Vr::SQ || vr == Vr::UN {
                // CP-246: an undefined-length UN is a sequence encoded in implicit VR little endian.
                let saved = self.enc;
                if vr == Vr::UN {
                    self.enc = Encoding {
                        explicit: false,
                        big_endian: false,
                    };
                }
                let items = self.sequence(None, depth);
                self.enc = saved;
                return Ok(Element {
                    tag,
                    vr: Vr::SQ,
                    value: Value::Sequence(items?),
                });
            }
            return Err(Error::Malformed {
                offset: start,
                reason: "undefined length on a non-sequence element",
            });
        }
        if vr == Vr::SQ {
            let end = self
                .pos
                .checked_add(len as usize)
                .filter(|&e| e <= self.buf.len())
                .ok_or(Error::Truncated {
                    offset: start,
                    what: "sequence",
                    needed: u64::from(len),
                    available: self.buf.len() - self.pos,
                })?;
            let items = self.sequence(Some(end), depth)?;
            return Ok(Element {
                tag,
                vr,
                value: Value::Sequence(items),
            });
        }
        let bytes = self.take(u64::from(len), "element value")?;
        if vr == Vr::UN && (tag >> 16) & 1 == 0 && !self.enc.big_endian {
            // CP-246: a standard attribute written as UN is implicit VR little endian inside.
            // Decode it with the dictionary VR so the profile sees (and cleans) what it holds.
            let dict = dictionary_vr(tag);
            if dict == Vr::SQ {
                let mut inner = Reader::new(
                    bytes,
                    Encoding {
                        explicit: false,
                        big_endian: false,
                    },
                    self.max_depth,
                );
                if let Ok(items) = inner.sequence(Some(bytes.len()), depth) {
                    return Ok(Element {
                        tag,
                        vr: Vr::SQ,
                        value: Value::Sequence(items),
                    });
                }
            } else if dict != Vr::UN {
                return Ok(Element {
                    tag,
                    vr: dict,
                    value: Value::Bytes(Cow::Borrowed(bytes)),
                });
            }
        }
        Ok(Element {
            tag,
            vr,
            value: Value::Bytes(Cow::Borrowed(bytes)),
        })
    }

    fn sequence(&mut self, end: Option<usize>, depth: usize) -> Result<Vec<DataSet<'a>>> {
        if depth + 1 > self.max_depth {
            return Err(Error::TooDeep { limit: self.max_depth });
        }
        let mut items = Vec::new();
        loop {
            if let Some(e) = end {
                if self.pos >= e {
                    break;
                }
            }
            let start = self.pos;
            let tag = self.tag()?;
            let len = self.u32("item length")?;
            match tag {
                SEQ_DELIM if end.is_none() => break,
                ITEM if len == UNDEFINED => items.push(self.items(None, depth + 1, false)?),
                ITEM => {
                    let item_end = self
                        .pos
                        .checked_add(len as usize)
                        .filter(|&e| e <= self.buf.len() && end.is_none_or(|se| e <= se))
                        .ok_or(Error::Truncated {
                            offset: start,
                            what: "item",
                            needed: u64::from(len),
                            available: self.buf.len() - self.pos,
                        })?;
                    let item = self.items(Some(item_end), depth + 1, false)?;
                    self.pos = item_end;
                    items.push(item);
                }
                _ => {
                    return Err(Error::Malformed {
                        offset: start,
                        reason: "expected an item in a sequence",
                    })
                }
            }
        }
        Ok(items)
    }

    fn encapsulated(&mut self, tag: u32, vr: Vr) -> Result<Element<'a>> {
        let mut offset_table = None;
        let mut fragments = Vec::new();
        loop {
            let start = self.pos;
            let t = self.tag()?;
            let len = self.u32("fragment length")?;
            match t {
                SEQ_DELIM => break,
                ITEM if len != UNDEFINED => {
                    let b = Cow::Borrowed(self.take(u64::from(len), "pixel data fragment")?);
                    if offset_table.is_none() {
                        offset_table = Some(b);
                    } else {
                        fragments.push(b);
                    }
                }
                _ => {
                    return Err(Error::Malformed {
                        offset: start,
                        reason: "bad item in encapsulated pixel data",
                    })
                }
            }
        }
        let offset_table = offset_table.ok_or(Error::Malformed {
            offset: self.pos,
            reason: "encapsulated pixel data without offset table",
        })?;
        Ok(Element {
            tag,
            vr: if vr == Vr::UN { Vr::OB } else { vr },
            value: Value::Encapsulated { offset_table, fragments },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn explicit_le() -> Encoding {
        Encoding {
            explicit: true,
            big_endian: false,
        }
    }

    #[test]
    fn a_declared_length_past_the_end_is_a_truncation_error_not_an_allocation() {
        // (0010,0010) PN with length 0xFFFE but only 2 bytes follow.
        let bytes = [0x10, 0x00, 0x10, 0x00, b'P', b'N', 0xFE, 0xFF, b'A', b'B'];
        let err = dataset(&bytes, explicit_le(), 16).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Truncated {
                    needed: 0xFFFE,
                    available: 2,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn nesting_beyond_the_limit_is_refused() {
        // Many nested undefined-length sequences (0008,1140).
        let mut bytes = Vec::new();
        for _ in 0..40 {
            bytes.extend_from_slice(&[0x08, 0x00, 0x40, 0x11, b'S', b'Q', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF]);
            bytes.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF]);
        }
        let err = dataset(&bytes, explicit_le(), 16).unwrap_err();
        assert_eq!(err, Error::TooDeep { limit: 16 });
    }

    #[test]
    fn an_invalid_explicit_vr_is_a_typed_error() {
        let bytes = [0x10, 0x00, 0x10, 0x00, b'z', b'z', 0x02, 0x00, b'A', b'B'];
        assert!(matches!(dataset(&bytes, explicit_le(), 16), Err(Error::InvalidVr { .. })));
    }

    #[test]
    fn a_standard_sequence_written_as_un_is_decoded_so_its_contents_are_seen() {
        // (0008,1140) UN, defined length, holding one implicit-VR item with (0010,0010) "AB".
        let item = [0x10, 0x00, 0x10, 0x00, 2, 0, 0, 0, b'A', b'B'];
        let mut value = vec![0xFE, 0xFF, 0x00, 0xE0, item.len() as u8, 0, 0, 0];
        value.extend_from_slice(&item);
        let mut bytes = vec![0x08, 0x00, 0x40, 0x11, b'U', b'N', 0, 0, value.len() as u8, 0, 0, 0];
        bytes.extend_from_slice(&value);
        let ds = dataset(&bytes, explicit_le(), 16).expect("parse");
        let el = ds.get(0x0008_1140).expect("element");
        assert_eq!(el.vr, Vr::SQ);
        let Value::Sequence(items) = &el.value else {
            panic!("not decoded as a sequence")
        };
        assert_eq!(items[0].text(0x0010_0010), Some("AB"));
    }

    #[test]
    fn inflate_stops_at_the_limit() {
        use std::io::Write;
        let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(&vec![0u8; 1 << 20]).expect("deflate");
        let z = enc.finish().expect("deflate");
        assert_eq!(inflate(&z, 1000), Err(Error::InflateLimit { limit: 1000 }));
        assert_eq!(inflate(&z, 1 << 20).map(|v| v.len()), Ok(1 << 20));
    }

    #[test]
    fn raw_datasets_are_guessed() {
        assert_eq!(guess_encoding(&[0x08, 0, 0x05, 0, b'C', b'S', 0, 0]), Some(explicit_le()));
        assert_eq!(
            guess_encoding(&[0, 0x08, 0, 0x05, b'C', b'S', 0, 0]),
            Some(Encoding {
                explicit: true,
                big_endian: true
            })
        );
        assert_eq!(
            guess_encoding(&[0x08, 0, 0x05, 0, 2, 0, 0, 0]),
            Some(Encoding {
                explicit: false,
                big_endian: false
            })
        );
        assert_eq!(guess_encoding(b"hello world"), None);
    }
}
