//! Serialises a [`DataSet`] as DICOM Part 10: a rebuilt file meta, then the dataset.
//!
//! Output is little endian. Big endian input is byte-swapped per VR on the way
//! out; sequences and items use undefined lengths; group lengths are dropped.

use crate::dataset::{DataSet, Element, Value, Vr, ITEM, ITEM_DELIM, PIXEL_DATA, SEQ_DELIM};
use std::io::Write;

/// Alpes' Implementation Class UID (a UUID-derived `2.25` root).
pub const IMPLEMENTATION_CLASS_UID: &str = "2.25.12977948255102616148425717541909989144";
/// Alpes' Implementation Version Name (at most 16 characters).
pub const IMPLEMENTATION_VERSION_NAME: &str = concat!("ALPES_", env!("CARGO_PKG_VERSION"));

/// What goes into the rebuilt file meta group.
#[derive(Debug, Clone)]
pub struct Meta<'m> {
    /// Media Storage SOP Class UID.
    pub sop_class: &'m str,
    /// Media Storage SOP Instance UID.
    pub sop_instance: &'m str,
    /// Transfer Syntax UID of the dataset that follows.
    pub transfer_syntax: &'m str,
}

/// A serialised file and where its native pixel data value sits.
#[derive(Debug)]
pub struct Written {
    /// The bytes: preamble, meta and the (not yet deflated) dataset.
    pub bytes: Vec<u8>,
    /// Byte offset where the dataset starts.
    pub dataset_start: usize,
    /// Byte range of the top-level native Pixel Data value, if any.
    pub pixel_data: Option<std::ops::Range<usize>>,
}

/// Writes preamble, meta and dataset. `explicit` picks explicit or implicit VR.
pub fn part10(ds: &DataSet<'_>, meta: &Meta<'_>, explicit: bool, size_hint: usize) -> Written {
    part10_into(ds, meta, explicit, Vec::with_capacity(size_hint + 512))
}

/// The start of a Part 10 file: the preamble, `DICM` and the file meta group for `meta`, with
/// `version_name` as Implementation Version Name (at most 16 characters; the DICOM listener,
/// which puts the group before a data set received over the network, writes a fixed one).
pub fn file_meta(meta: &Meta<'_>, version_name: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(&[0u8; 128]);
    out.extend_from_slice(b"DICM");
    let mut group = Vec::with_capacity(256);
    let mut w = Writer {
        out: &mut group,
        explicit: true,
        swap: false,
        pixel: None,
    };
    w.element(&Element::bytes(0x0002_0001, Vr::OB, &[0u8, 1][..]), false);
    for (tag, uid) in [
        (0x0002_0002, meta.sop_class),
        (0x0002_0003, meta.sop_instance),
        (0x0002_0010, meta.transfer_syntax),
        (0x0002_0012, IMPLEMENTATION_CLASS_UID),
    ] {
        w.element(&Element::text(tag, Vr::UI, uid), false);
    }
    w.element(&Element::text(0x0002_0013, Vr::SH, version_name), false);
    let mut len_el = Vec::with_capacity(12);
    Writer {
        out: &mut len_el,
        explicit: true,
        swap: false,
        pixel: None,
    }
    .element(
        &Element::bytes(0x0002_0000, Vr::UL, (group.len() as u32).to_le_bytes().to_vec()),
        false,
    );
    out.extend_from_slice(&len_el);
    out.extend_from_slice(&group);
}

/// Like [`part10`], reusing `out`'s allocation (it is cleared first).
pub fn part10_into(ds: &DataSet<'_>, meta: &Meta<'_>, explicit: bool, mut out: Vec<u8>) -> Written {
    out.clear();
    file_meta(meta, IMPLEMENTATION_VERSION_NAME, &mut out);
    let dataset_start = out.len();
    let mut w = Writer {
        out: &mut out,
        explicit,
        swap: ds.big_endian,
        pixel: None,
    };
    w.dataset(ds, true);
    let pixel = w.pixel.take();
    Written {
        bytes: out,
        dataset_start,
        pixel_data: pixel,
    }
}

/// Raw-deflates the dataset part of a written file in place (for Deflated Explicit VR Little Endian).
pub fn deflate_dataset(written: &mut Written) {
    let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing to a Vec cannot fail.
    let _ = enc.write_all(&written.bytes[written.dataset_start..]);
    let z = enc.finish().unwrap_or_default();
    written.bytes.truncate(written.dataset_start);
    written.bytes.extend_from_slice(&z);
    if written.bytes.len() % 2 == 1 {
        written.bytes.push(0);
    }
    written.pixel_data = None;
}

/// Writes just a dataset (no meta), little endian; used for tests and hashing.
pub fn dataset_bytes(ds: &DataSet<'_>, explicit: bool) -> Vec<u8> {
    let mut out = Vec::new();
    Writer {
        out: &mut out,
        explicit,
        swap: ds.big_endian,
        pixel: None,
    }
    .dataset(ds, false);
    out
}

struct Writer<'o> {
    out: &'o mut Vec<u8>,
    explicit: bool,
    swap: bool,
    pixel: Option<std::ops::Range<usize>>,
}

impl Writer<'_> {
    fn tag(&mut self, tag: u32) {
        self.out.extend_from_slice(&((tag >> 16) as u16).to_le_bytes());
        self.out.extend_from_slice(&((tag & 0xFFFF) as u16).to_le_bytes());
    }

    fn header(&mut self, tag: u32, vr: Vr, len: u32) {
        self.tag(tag);
        if !self.explicit {
            self.out.extend_from_slice(&len.to_le_bytes());
        } else if vr.has_long_length() {
            self.out.extend_from_slice(&vr.0);
            self.out.extend_from_slice(&[0, 0]);
            self.out.extend_from_slice(&len.to_le_bytes());
        } else {
            self.out.extend_from_slice(&vr.0);
            self.out.extend_from_slice(&(len as u16).to_le_bytes());
        }
    }

    fn dataset(&mut self, ds: &DataSet<'_>, top: bool) {
        // Items of a CP-246 UN sequence are little endian even inside a big endian file.
        let outer = std::mem::replace(&mut self.swap, ds.big_endian);
        self.dataset_elements(ds, top);
        self.swap = outer;
    }

    fn dataset_elements(&mut self, ds: &DataSet<'_>, top: bool) {
        for el in &ds.elements {
            // Group lengths are retired and would be wrong after de-identification.
            if el.tag & 0xFFFF == 0 || el.group() == 0x0002 {
                continue;
            }
            self.element(el, top);
        }
    }

    fn element(&mut self, el: &Element<'_>, top: bool) {
        match &el.value {
            Value::Bytes(b) => {
                let padded = b.len() + (b.len() & 1);
                let mut vr = el.vr;
                if self.explicit && !vr.has_long_length() && padded > 0xFFFF {
                    vr = Vr::UN;
                }
                self.header(el.tag, vr, padded as u32);
                let start = self.out.len();
                self.out.extend_from_slice(b);
                let width = el.vr.swap_width();
                if self.swap && width > 1 {
                    for chunk in self.out[start..].chunks_exact_mut(width) {
                        chunk.reverse();
                    }
                }
                if b.len() & 1 == 1 {
                    self.out.push(el.vr.pad());
                }
                if top && el.tag == PIXEL_DATA {
                    self.pixel = Some(start..start + b.len());
                }
            }
            Value::Sequence(items) => {
                self.header(el.tag, Vr::SQ, u32::MAX);
                for item in items {
                    self.tag(ITEM);
                    self.out.extend_from_slice(&u32::MAX.to_le_bytes());
                    self.dataset(item, false);
                    self.tag(ITEM_DELIM);
                    self.out.extend_from_slice(&0u32.to_le_bytes());
                }
                self.tag(SEQ_DELIM);
                self.out.extend_from_slice(&0u32.to_le_bytes());
            }
            Value::Encapsulated { offset_table, fragments } => {
                self.header(el.tag, Vr::OB, u32::MAX);
                for frag in std::iter::once(offset_table).chain(fragments) {
                    self.tag(ITEM);
                    let padded = frag.len() + (frag.len() & 1);
                    self.out.extend_from_slice(&(padded as u32).to_le_bytes());
                    self.out.extend_from_slice(frag);
                    if frag.len() & 1 == 1 {
                        self.out.push(0);
                    }
                }
                self.tag(SEQ_DELIM);
                self.out.extend_from_slice(&0u32.to_le_bytes());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse;
    use crate::syntax::Encoding;

    #[test]
    fn written_datasets_parse_back_identically() {
        let mut ds = DataSet::default();
        ds.put(Element::text(0x0008_0060, Vr::CS, "MR"));
        ds.put(Element::text(0x0010_0010, Vr::PN, "ODD"));
        let mut item = DataSet::default();
        item.put(Element::text(0x0008_1155, Vr::UI, "1.2.3"));
        ds.put(Element {
            tag: 0x0008_1140,
            vr: Vr::SQ,
            value: Value::Sequence(vec![item]),
        });
        for explicit in [true, false] {
            let bytes = dataset_bytes(&ds, explicit);
            let back = parse::dataset(
                &bytes,
                Encoding {
                    explicit,
                    big_endian: false,
                },
                8,
            )
            .expect("parse back");
            assert_eq!(back.text(0x0010_0010), Some("ODD"));
            assert_eq!(back.elements.len(), 3);
            let Some(Value::Sequence(items)) = back.get(0x0008_1140).map(|e| &e.value) else {
                panic!("sequence lost")
            };
            assert_eq!(items[0].text(0x0008_1155), Some("1.2.3"));
        }
    }

    #[test]
    fn big_endian_values_are_swapped_to_little_endian() {
        let mut ds = DataSet {
            big_endian: true,
            ..Default::default()
        };
        ds.put(Element::bytes(0x0028_0010, Vr::US, vec![0x01, 0x02]));
        let bytes = dataset_bytes(&ds, true);
        assert_eq!(&bytes[8..10], &[0x02, 0x01]);
    }
}
