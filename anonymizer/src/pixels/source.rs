//! The adapter that lets the dicom-rs codecs read a [`DataSet`]'s pixel data.

use crate::dataset::{DataSet, Value, PIXEL_DATA};
use dicom_encoding::adapters::{PixelDataObject, RawPixelData};
use std::borrow::Cow;

/// Adapter presenting a [`DataSet`] to the dicom-rs codecs.
pub(super) struct PixelSource<'d, 'a> {
    pub(super) ds: &'d DataSet<'a>,
    pub(super) ts: &'d str,
    pub(super) native: Option<&'d [u8]>,
}

impl PixelDataObject for PixelSource<'_, '_> {
    fn transfer_syntax_uid(&self) -> &str {
        self.ts
    }
    fn rows(&self) -> Option<u16> {
        self.ds.u16(0x0028_0010)
    }
    fn cols(&self) -> Option<u16> {
        self.ds.u16(0x0028_0011)
    }
    fn samples_per_pixel(&self) -> Option<u16> {
        self.ds.u16(0x0028_0002)
    }
    fn bits_allocated(&self) -> Option<u16> {
        self.ds.u16(0x0028_0100)
    }
    fn bits_stored(&self) -> Option<u16> {
        self.ds.u16(0x0028_0101)
    }
    fn photometric_interpretation(&self) -> Option<&str> {
        self.ds.text(0x0028_0004)
    }
    fn number_of_frames(&self) -> Option<u32> {
        self.ds.int(0x0028_0008).and_then(|n| u32::try_from(n).ok())
    }
    fn number_of_fragments(&self) -> Option<u32> {
        if self.native.is_some() {
            return None;
        }
        match &self.ds.get(PIXEL_DATA)?.value {
            Value::Encapsulated { fragments, .. } => u32::try_from(fragments.len()).ok(),
            _ => None,
        }
    }
    fn fragment(&self, fragment: usize) -> Option<Cow<'_, [u8]>> {
        if let Some(n) = self.native {
            return (fragment == 0).then_some(Cow::Borrowed(n));
        }
        match &self.ds.get(PIXEL_DATA)?.value {
            Value::Encapsulated { fragments, .. } => fragments.get(fragment).map(|f| Cow::Borrowed(&f[..])),
            _ => None,
        }
    }
    fn offset_table(&self) -> Option<Cow<'_, [u32]>> {
        match &self.ds.get(PIXEL_DATA)?.value {
            Value::Encapsulated { offset_table, .. } => Some(Cow::Owned(
                offset_table
                    .chunks_exact(4)
                    .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
            )),
            _ => None,
        }
    }
    fn raw_pixel_data(&self) -> Option<RawPixelData> {
        if let Some(n) = self.native {
            return Some(RawPixelData {
                fragments: std::iter::once(n.to_vec()).collect(),
                offset_table: Default::default(),
            });
        }
        match &self.ds.get(PIXEL_DATA)?.value {
            Value::Encapsulated { fragments, .. } => Some(RawPixelData {
                fragments: fragments.iter().map(|f| f.to_vec()).collect(),
                offset_table: self.offset_table().map(|t| t.iter().copied().collect()).unwrap_or_default(),
            }),
            _ => None,
        }
    }
}
