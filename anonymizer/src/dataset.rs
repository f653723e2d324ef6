//! The in-memory dataset: a tree of elements that borrows values from the input.
//!
//! Values stay `Cow::Borrowed` until the engine replaces them, so pixel data
//! and every untouched value are never copied until the writer emits them.

use std::borrow::Cow;

/// A value representation, as its two ASCII bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Vr(pub [u8; 2]);

impl std::fmt::Debug for Vr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}", self.0[0] as char, self.0[1] as char)
    }
}

macro_rules! vrs {
    ($($name:ident),*) => {
        impl Vr {
            $(
                #[doc = concat!("The ", stringify!($name), " value representation.")]
                pub const $name: Vr = Vr([stringify!($name).as_bytes()[0], stringify!($name).as_bytes()[1]]);
            )*
            /// Every VR defined by PS3.5.
            pub const ALL: &'static [Vr] = &[$(Vr::$name),*];
        }
    };
}
vrs!(
    AE, AS, AT, CS, DA, DS, DT, FL, FD, IS, LO, LT, OB, OD, OF, OL, OV, OW, PN, SH, SL, SQ, SS, ST, SV, TM, UC, UI, UL, UN, UR, US, UT, UV
);

impl Vr {
    /// Parses two bytes as a VR defined by PS3.5.
    pub fn from_bytes(b: [u8; 2]) -> Option<Vr> {
        let vr = Vr(b);
        Vr::ALL.contains(&vr).then_some(vr)
    }

    /// Whether explicit VR encoding uses the 4-byte length form.
    pub fn has_long_length(self) -> bool {
        matches!(
            self,
            Vr::OB | Vr::OD | Vr::OF | Vr::OL | Vr::OV | Vr::OW | Vr::SQ | Vr::UC | Vr::UN | Vr::UR | Vr::UT | Vr::SV | Vr::UV
        )
    }

    /// The byte width to swap when converting between endiannesses (1 = none).
    pub fn swap_width(self) -> usize {
        match self {
            Vr::US | Vr::SS | Vr::OW | Vr::AT => 2,
            Vr::UL | Vr::SL | Vr::FL | Vr::OL | Vr::OF => 4,
            Vr::FD | Vr::OD | Vr::SV | Vr::UV | Vr::OV => 8,
            _ => 1,
        }
    }

    /// Whether values are character strings.
    pub fn is_text(self) -> bool {
        matches!(
            self,
            Vr::AE
                | Vr::AS
                | Vr::CS
                | Vr::DA
                | Vr::DS
                | Vr::DT
                | Vr::IS
                | Vr::LO
                | Vr::LT
                | Vr::PN
                | Vr::SH
                | Vr::ST
                | Vr::TM
                | Vr::UC
                | Vr::UI
                | Vr::UR
                | Vr::UT
        )
    }

    /// Whether values are free text that may carry narrative PHI.
    pub fn is_free_text(self) -> bool {
        matches!(self, Vr::LO | Vr::LT | Vr::SH | Vr::ST | Vr::UC | Vr::UT)
    }

    /// The padding byte for odd-length values.
    pub fn pad(self) -> u8 {
        match self {
            Vr::UI | Vr::OB | Vr::UN => 0,
            v if v.is_text() => b' ',
            _ => 0,
        }
    }
}

/// Tags of the delimitation items.
pub const ITEM: u32 = 0xFFFE_E000;
/// Item Delimitation Item.
pub const ITEM_DELIM: u32 = 0xFFFE_E00D;
/// Sequence Delimitation Item.
pub const SEQ_DELIM: u32 = 0xFFFE_E0DD;
/// Pixel Data.
pub const PIXEL_DATA: u32 = 0x7FE0_0010;

/// The value of one element.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    /// A primitive value, in the byte order of the dataset it came from.
    Bytes(Cow<'a, [u8]>),
    /// A sequence of items.
    Sequence(Vec<DataSet<'a>>),
    /// Encapsulated pixel data: the basic offset table, then the fragments.
    Encapsulated {
        /// The Basic Offset Table item (may be empty).
        offset_table: Cow<'a, [u8]>,
        /// The fragments, in order.
        fragments: Vec<Cow<'a, [u8]>>,
    },
}

/// One data element.
#[derive(Debug, Clone, PartialEq)]
pub struct Element<'a> {
    /// `(group << 16) | element`.
    pub tag: u32,
    /// The VR (from the stream, or the dictionary for implicit VR).
    pub vr: Vr,
    /// The value.
    pub value: Value<'a>,
}

impl<'a> Element<'a> {
    /// A primitive element.
    pub fn bytes(tag: u32, vr: Vr, bytes: impl Into<Cow<'a, [u8]>>) -> Self {
        Element {
            tag,
            vr,
            value: Value::Bytes(bytes.into()),
        }
    }

    /// A text element, padded to even length as its VR requires.
    pub fn text(tag: u32, vr: Vr, text: &str) -> Self {
        let mut b = text.as_bytes().to_vec();
        if b.len() % 2 == 1 {
            b.push(vr.pad());
        }
        Element::bytes(tag, vr, b)
    }

    /// The group number.
    pub fn group(&self) -> u16 {
        (self.tag >> 16) as u16
    }

    /// The primitive bytes, if primitive.
    pub fn raw(&self) -> Option<&[u8]> {
        match &self.value {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }
}

/// A dataset or sequence item: elements in ascending tag order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DataSet<'a> {
    /// The elements, ascending by tag.
    pub elements: Vec<Element<'a>>,
    /// Whether primitive values are big endian.
    pub big_endian: bool,
}

impl<'a> DataSet<'a> {
    /// Finds an element by tag.
    pub fn get(&self, tag: u32) -> Option<&Element<'a>> {
        self.elements.binary_search_by_key(&tag, |e| e.tag).ok().map(|i| &self.elements[i])
    }

    /// Finds an element by tag, mutably.
    pub fn get_mut(&mut self, tag: u32) -> Option<&mut Element<'a>> {
        match self.elements.binary_search_by_key(&tag, |e| e.tag) {
            Ok(i) => Some(&mut self.elements[i]),
            Err(_) => None,
        }
    }

    /// Inserts or replaces an element, keeping tag order.
    pub fn put(&mut self, element: Element<'a>) {
        match self.elements.binary_search_by_key(&element.tag, |e| e.tag) {
            Ok(i) => self.elements[i] = element,
            Err(i) => self.elements.insert(i, element),
        }
    }

    /// Removes an element by tag.
    pub fn remove(&mut self, tag: u32) -> Option<Element<'a>> {
        match self.elements.binary_search_by_key(&tag, |e| e.tag) {
            Ok(i) => Some(self.elements.remove(i)),
            Err(_) => None,
        }
    }

    /// A text value with trailing padding (spaces and NULs) removed.
    pub fn text(&self, tag: u32) -> Option<&str> {
        let raw = self.get(tag)?.raw()?;
        std::str::from_utf8(raw).ok().map(|s| s.trim_end_matches(['\0', ' ']).trim_start())
    }

    /// The first value of a US element.
    pub fn u16(&self, tag: u32) -> Option<u16> {
        let raw = self.get(tag)?.raw()?;
        let b: [u8; 2] = raw.get(..2)?.try_into().ok()?;
        Some(if self.big_endian {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        })
    }

    /// The values of a US/UL/SS/SL element as u32s (byte width taken from the VR).
    pub fn uints(&self, tag: u32) -> Vec<u32> {
        let Some(e) = self.get(tag) else { return Vec::new() };
        let Some(raw) = e.raw() else { return Vec::new() };
        let be = self.big_endian;
        match e.vr.swap_width() {
            2 => raw
                .chunks_exact(2)
                .map(|c| {
                    u32::from(if be {
                        u16::from_be_bytes([c[0], c[1]])
                    } else {
                        u16::from_le_bytes([c[0], c[1]])
                    })
                })
                .collect(),
            4 => raw
                .chunks_exact(4)
                .map(|c| {
                    let b = [c[0], c[1], c[2], c[3]];
                    if be {
                        u32::from_be_bytes(b)
                    } else {
                        u32::from_le_bytes(b)
                    }
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    /// An IS or DS value parsed as an integer.
    pub fn int(&self, tag: u32) -> Option<i64> {
        let t = self.text(tag)?;
        let first = t.split('\\').next()?.trim();
        first
            .parse::<i64>()
            .ok()
            .or_else(|| first.parse::<f64>().ok().filter(|f| f.is_finite()).map(|f| f as i64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vr_constants_spell_their_names() {
        assert_eq!(Vr::SQ.0, *b"SQ");
        assert_eq!(Vr::from_bytes(*b"UV"), Some(Vr::UV));
        assert_eq!(Vr::from_bytes(*b"ZZ"), None);
    }

    #[test]
    fn put_keeps_elements_sorted() {
        let mut ds = DataSet::default();
        ds.put(Element::text(0x0010_0020, Vr::LO, "B"));
        ds.put(Element::text(0x0008_0060, Vr::CS, "MR"));
        ds.put(Element::text(0x0010_0010, Vr::PN, "A"));
        let tags: Vec<u32> = ds.elements.iter().map(|e| e.tag).collect();
        assert_eq!(tags, vec![0x0008_0060, 0x0010_0010, 0x0010_0020]);
        assert_eq!(ds.text(0x0008_0060), Some("MR"));
    }
}
