//! A cheap look at the first bytes of an upload: what kind of image it is and,
//! for DICOM, the identifiers a STOW-RS answer needs. Reads only the prefix it
//! is given, so an ingest service can check a file of any size in bounded memory.

use crate::dataset::DataSet;
use crate::error::{Error, Result};
use crate::parse::{dataset_head, layout};
use crate::raster::{self, RasterFormat};

const SOP_CLASS_UID: u32 = 0x0008_0016;
const SOP_INSTANCE_UID: u32 = 0x0008_0018;
const STUDY_INSTANCE_UID: u32 = 0x0020_000D;
const MODALITY: u32 = 0x0008_0060;

/// The kind of an upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    /// DICOM Part 10 or a raw dataset.
    Dicom,
    /// A PNG image.
    Png,
    /// A JPEG image.
    Jpeg,
}

impl MediaKind {
    /// The media type Alpes records.
    pub fn media_type(self) -> &'static str {
        match self {
            MediaKind::Dicom => "application/dicom",
            MediaKind::Png => "image/png",
            MediaKind::Jpeg => "image/jpeg",
        }
    }
}

/// What the first bytes of an upload say.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Probe {
    /// The transfer syntax UID (DICOM only).
    pub transfer_syntax: Option<String>,
    /// SOPClassUID, from the dataset or the file meta (DICOM only).
    pub sop_class_uid: Option<String>,
    /// SOPInstanceUID (DICOM only).
    pub sop_instance_uid: Option<String>,
    /// StudyInstanceUID (DICOM only).
    pub study_instance_uid: Option<String>,
    /// Modality (DICOM only).
    pub modality: Option<String>,
}

/// The kind of upload the bytes start like, if any Alpes takes.
pub fn sniff(head: &[u8]) -> Option<MediaKind> {
    if head.get(128..132) == Some(b"DICM") {
        return Some(MediaKind::Dicom);
    }
    match raster::sniff(head) {
        Some(RasterFormat::Png) => Some(MediaKind::Png),
        Some(RasterFormat::Jpeg) => Some(MediaKind::Jpeg),
        None => crate::parse::looks_like_dicom(head).then_some(MediaKind::Dicom),
    }
}

/// Reads the file meta and the leading elements of a DICOM prefix. An error
/// means no reader could make sense of the file (bad meta, unknown transfer
/// syntax, malformed leading elements).
pub fn dicom(head: &[u8]) -> Result<Probe> {
    let l = layout(head)?;
    let mut p = Probe {
        transfer_syntax: Some(l.transfer_syntax.uid.clone()),
        sop_class_uid: l.media_sop_class.clone(),
        ..Probe::default()
    };
    if l.transfer_syntax.deflated {
        // The leading elements are compressed; the meta is all a prefix gives.
        return Ok(p);
    }
    let rest = head.get(l.dataset_start..).ok_or(Error::Truncated {
        offset: l.dataset_start,
        what: "dataset",
        needed: 1,
        available: 0,
    })?;
    let ds = dataset_head(rest, l.transfer_syntax.encoding, 32)?;
    if ds.elements.is_empty() {
        return Err(Error::Malformed {
            offset: l.dataset_start,
            reason: "no dataset elements",
        });
    }
    let text = |ds: &DataSet<'_>, tag| ds.text(tag).filter(|s| !s.is_empty()).map(str::to_owned);
    p.sop_class_uid = text(&ds, SOP_CLASS_UID).or(p.sop_class_uid);
    p.sop_instance_uid = text(&ds, SOP_INSTANCE_UID);
    p.study_instance_uid = text(&ds, STUDY_INSTANCE_UID);
    p.modality = text(&ds, MODALITY);
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!("{}/tests/fixtures/dicom/{name}", env!("CARGO_MANIFEST_DIR"))).expect("fixture")
    }

    #[test]
    fn a_prefix_of_a_dicom_file_gives_its_identifiers() {
        let bytes = fixture("CT_small.dcm");
        let full = dicom(&bytes).expect("full");
        let head = dicom(&bytes[..16384.min(bytes.len())]).expect("head");
        assert_eq!(sniff(&bytes), Some(MediaKind::Dicom));
        assert_eq!(head.sop_instance_uid, full.sop_instance_uid);
        assert_eq!(head.study_instance_uid, full.study_instance_uid);
        assert!(head
            .sop_class_uid
            .as_deref()
            .is_some_and(|u| u.starts_with("1.2.840.10008.5.1.4.1.1.2")));
        assert_eq!(head.modality.as_deref(), Some("CT"));
    }

    #[test]
    fn garbage_is_not_an_upload_kind_and_a_broken_meta_is_an_error() {
        assert_eq!(sniff(b"hello world, this is not an image at all"), None);
        let mut bytes = fixture("CT_small.dcm");
        bytes.truncate(140);
        assert!(dicom(&bytes).is_err());
    }
}
