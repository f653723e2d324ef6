//! Transfer syntaxes Alpes reads and writes, and the VR dictionary for implicit VR.

use crate::dataset::Vr;
use dicom_core::dictionary::{DataDictionary, VirtualVr};
use dicom_dictionary_std::StandardDataDictionary;

/// Implicit VR Little Endian.
pub const IMPLICIT_LE: &str = "1.2.840.10008.1.2";
/// Explicit VR Little Endian.
pub const EXPLICIT_LE: &str = "1.2.840.10008.1.2.1";
/// Deflated Explicit VR Little Endian.
pub const DEFLATED_LE: &str = "1.2.840.10008.1.2.1.99";
/// RLE Lossless.
pub const RLE: &str = "1.2.840.10008.1.2.5";
/// Explicit VR Big Endian (retired).
pub const EXPLICIT_BE: &str = "1.2.840.10008.1.2.2";

/// How a dataset is encoded on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Encoding {
    /// Explicit VR (else implicit).
    pub explicit: bool,
    /// Big endian (else little).
    pub big_endian: bool,
}

/// A transfer syntax Alpes understands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferSyntax {
    /// Its UID.
    pub uid: String,
    /// The dataset encoding.
    pub encoding: Encoding,
    /// Whether the dataset after the file meta is deflated.
    pub deflated: bool,
    /// Whether pixel data is encapsulated (compressed).
    pub encapsulated: bool,
}

impl TransferSyntax {
    /// Looks up a transfer syntax by UID; `None` for one Alpes cannot read.
    pub fn from_uid(uid: &str) -> Option<TransferSyntax> {
        let uid = uid.trim_end_matches(['\0', ' ']).trim();
        let le = Encoding {
            explicit: true,
            big_endian: false,
        };
        let (encoding, deflated, encapsulated) = match uid {
            IMPLICIT_LE => (
                Encoding {
                    explicit: false,
                    big_endian: false,
                },
                false,
                false,
            ),
            EXPLICIT_LE => (le, false, false),
            DEFLATED_LE => (le, true, false),
            EXPLICIT_BE => (
                Encoding {
                    explicit: true,
                    big_endian: true,
                },
                false,
                false,
            ),
            // RLE Lossless, and every JPEG / JPEG-LS / JPEG 2000 / HTJ2K / MPEG / JPEG XL / encapsulated-uncompressed syntax.
            "1.2.840.10008.1.2.5" | "1.2.840.10008.1.2.1.98" => (le, false, true),
            u if u.starts_with("1.2.840.10008.1.2.4.") && u.len() <= 24 => (le, false, true),
            _ => return None,
        };
        Some(TransferSyntax {
            uid: uid.to_owned(),
            encoding,
            deflated,
            encapsulated,
        })
    }

    /// The syntax a guessed raw dataset is treated as.
    pub fn from_encoding(encoding: Encoding) -> TransferSyntax {
        let uid = match (encoding.explicit, encoding.big_endian) {
            (false, _) => IMPLICIT_LE,
            (true, false) => EXPLICIT_LE,
            (true, true) => EXPLICIT_BE,
        };
        TransferSyntax {
            uid: uid.to_owned(),
            encoding,
            deflated: false,
            encapsulated: false,
        }
    }
}

/// The dictionary VR of a tag, for implicit VR datasets (`UN` when unknown).
pub fn dictionary_vr(tag: u32) -> Vr {
    let (group, elem) = ((tag >> 16) as u16, (tag & 0xFFFF) as u16);
    if elem == 0 {
        return Vr::UL;
    }
    if group % 2 == 1 {
        return if (0x0010..=0x00FF).contains(&elem) { Vr::LO } else { Vr::UN };
    }
    let Some(entry) = StandardDataDictionary.by_tag(dicom_core::Tag(group, elem)) else {
        return Vr::UN;
    };
    let vr = match entry.vr {
        VirtualVr::Exact(vr) => vr,
        VirtualVr::Xs => dicom_core::VR::US,
        _ => dicom_core::VR::OW,
    };
    Vr::from_bytes(vr.to_bytes()).unwrap_or(Vr::UN)
}

/// Whether a public tag is defined by the standard data dictionary.
pub fn is_known(tag: u32) -> bool {
    StandardDataDictionary
        .by_tag(dicom_core::Tag((tag >> 16) as u16, (tag & 0xFFFF) as u16))
        .is_some()
}

/// The keyword of a public tag (`PatientID`), if the dictionary has it.
pub fn keyword(tag: u32) -> Option<&'static str> {
    StandardDataDictionary
        .by_tag(dicom_core::Tag((tag >> 16) as u16, (tag & 0xFFFF) as u16))
        .map(|e| e.alias)
}

/// The tag for a keyword, if the dictionary has it.
pub fn tag_for_keyword(keyword: &str) -> Option<u32> {
    StandardDataDictionary.by_name(keyword).map(|e| {
        let t = e.tag.inner();
        (u32::from(t.0) << 16) | u32::from(t.1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn implicit_vr_comes_from_the_dictionary() {
        assert_eq!(dictionary_vr(0x0010_0010), Vr::PN);
        assert_eq!(dictionary_vr(0x0008_1140), Vr::SQ);
        assert_eq!(dictionary_vr(0x0009_0010), Vr::LO);
        assert_eq!(dictionary_vr(0x0009_1001), Vr::UN);
        assert_eq!(dictionary_vr(0x6000_3000), Vr::OW);
    }

    #[test]
    fn keywords_round_trip_through_the_dictionary() {
        assert_eq!(tag_for_keyword("Modality"), Some(0x0008_0060));
        assert_eq!(keyword(0x0008_0060), Some("Modality"));
    }

    #[test]
    fn jpeg_and_rle_syntaxes_are_encapsulated() {
        assert!(TransferSyntax::from_uid("1.2.840.10008.1.2.4.50")
            .map(|t| t.encapsulated)
            .unwrap_or(false));
        assert!(TransferSyntax::from_uid("1.2.840.10008.1.2.5\0")
            .map(|t| t.encapsulated)
            .unwrap_or(false));
        assert!(TransferSyntax::from_uid("1.2.3.4").is_none());
    }
}
