//! What the `ImagenAnonimizada` event says about the output image: its media type, the new
//! study/series/SOP UIDs, SOP class, the patient pseudonym, study date, series and instance
//! numbers, modality, body part, rows, columns and frames (what QIDO-RS searches on). Read from the anonymized
//! bytes (never the input), so every value is already de-identified: DICOM through the engine's
//! parser (top-level elements up to Pixel Data), PNG and JPEG from their headers.

use alpes_anonymizer::dataset::DataSet;
use alpes_anonymizer::parse;
use alpes_anonymizer::report::Format;

const SOP_CLASS_UID: u32 = 0x0008_0016;
const SOP_INSTANCE_UID: u32 = 0x0008_0018;
const STUDY_DATE: u32 = 0x0008_0020;
const PATIENT_ID: u32 = 0x0010_0020;
const SERIES_NUMBER: u32 = 0x0020_0011;
const INSTANCE_NUMBER: u32 = 0x0020_0013;
const MODALITY: u32 = 0x0008_0060;
const BODY_PART_EXAMINED: u32 = 0x0018_0015;
const STUDY_INSTANCE_UID: u32 = 0x0020_000D;
const SERIES_INSTANCE_UID: u32 = 0x0020_000E;
const NUMBER_OF_FRAMES: u32 = 0x0028_0008;
const ROWS: u32 = 0x0028_0010;
const COLUMNS: u32 = 0x0028_0011;
const PIXEL_DATA: u32 = 0x7FE0_0010;

/// Sequence nesting accepted while reading the output's leading elements.
const MAX_DEPTH: usize = 32;
/// An engine output never inflates past the engine's own limit.
const MAX_INFLATED: u64 = 1 << 30;

/// The facts of one anonymized image.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutputFacts {
    /// `application/dicom`, `image/png` or `image/jpeg`.
    pub media_type: &'static str,
    /// StudyInstanceUID (DICOM only).
    pub study_uid: Option<String>,
    /// SeriesInstanceUID (DICOM only).
    pub series_uid: Option<String>,
    /// SOPInstanceUID (DICOM only).
    pub sop_instance_uid: Option<String>,
    /// SOPClassUID (DICOM only).
    pub sop_class_uid: Option<String>,
    /// PatientID: the engine's keyed pseudonym (DICOM only).
    pub patient_id: Option<String>,
    /// StudyDate as the engine left it (DICOM only).
    pub study_date: Option<String>,
    /// SeriesNumber (DICOM only).
    pub series_number: Option<i32>,
    /// InstanceNumber (DICOM only).
    pub instance_number: Option<i32>,
    /// Modality (DICOM only).
    pub modality: Option<String>,
    /// BodyPartExamined (DICOM only).
    pub body_part: Option<String>,
    /// Image height in pixels (0 when there is no image).
    pub rows: i32,
    /// Image width in pixels (0 when there is no image).
    pub columns: i32,
    /// Frames (1 for a single image, 0 when there is no image).
    pub frames: i32,
}

/// The media type of an engine output format.
pub fn media_type(format: Format) -> &'static str {
    match format {
        Format::Dicom => "application/dicom",
        Format::Png => "image/png",
        Format::Jpeg => "image/jpeg",
    }
}

/// Reads the facts of `bytes`, an engine output of `format`. Fields it cannot read stay empty
/// (an output the engine wrote always parses; this never fails the image).
pub fn read(format: Format, bytes: &[u8]) -> OutputFacts {
    let mut facts = OutputFacts {
        media_type: media_type(format),
        ..OutputFacts::default()
    };
    match format {
        Format::Dicom => dicom(bytes, &mut facts),
        Format::Png => {
            if let Some((w, h)) = png_size(bytes) {
                (facts.columns, facts.rows, facts.frames) = (w, h, 1);
            }
        }
        Format::Jpeg => {
            if let Some((w, h)) = jpeg_size(bytes) {
                (facts.columns, facts.rows, facts.frames) = (w, h, 1);
            }
        }
    }
    facts
}

fn dicom(bytes: &[u8], facts: &mut OutputFacts) {
    let Ok(layout) = parse::layout(bytes) else { return };
    let Some(body) = bytes.get(layout.dataset_start..) else { return };
    let ts = &layout.transfer_syntax;
    let inflated;
    let body = if ts.deflated {
        let Ok(data) = parse::inflate(body, MAX_INFLATED) else { return };
        inflated = data;
        &inflated[..]
    } else {
        body
    };
    let Ok(ds) = parse::dataset_head(body, ts.encoding, MAX_DEPTH) else {
        return;
    };
    let text = |tag| ds.text(tag).filter(|s| !s.is_empty()).map(str::to_owned);
    facts.study_uid = text(STUDY_INSTANCE_UID);
    facts.series_uid = text(SERIES_INSTANCE_UID);
    facts.sop_instance_uid = text(SOP_INSTANCE_UID);
    facts.sop_class_uid = text(SOP_CLASS_UID);
    facts.patient_id = text(PATIENT_ID);
    facts.study_date = text(STUDY_DATE);
    facts.series_number = ds.int(SERIES_NUMBER).and_then(|n| i32::try_from(n).ok());
    facts.instance_number = ds.int(INSTANCE_NUMBER).and_then(|n| i32::try_from(n).ok());
    facts.modality = text(MODALITY);
    facts.body_part = text(BODY_PART_EXAMINED);
    facts.rows = ds.u16(ROWS).map_or(0, i32::from);
    facts.columns = ds.u16(COLUMNS).map_or(0, i32::from);
    facts.frames = frames(&ds, facts.rows, facts.columns);
}

fn frames(ds: &DataSet<'_>, rows: i32, columns: i32) -> i32 {
    match ds.int(NUMBER_OF_FRAMES).and_then(|n| i32::try_from(n).ok()) {
        Some(n) if n > 0 => n,
        _ if ds.get(PIXEL_DATA).is_some() || (rows > 0 && columns > 0) => 1,
        _ => 0,
    }
}

/// Width and height from a PNG's IHDR chunk.
fn png_size(b: &[u8]) -> Option<(i32, i32)> {
    if b.get(12..16)? != b"IHDR" {
        return None;
    }
    let w = u32::from_be_bytes(b.get(16..20)?.try_into().ok()?);
    let h = u32::from_be_bytes(b.get(20..24)?.try_into().ok()?);
    Some((i32::try_from(w).ok()?, i32::try_from(h).ok()?))
}

/// Width and height from a JPEG's first start-of-frame segment.
fn jpeg_size(b: &[u8]) -> Option<(i32, i32)> {
    let mut i = 2;
    while i + 4 <= b.len() {
        if b[i] != 0xFF {
            return None;
        }
        let marker = b[i + 1];
        if marker == 0xFF {
            i += 1; // fill byte
            continue;
        }
        if marker == 0x01 || (0xD0..=0xD7).contains(&marker) {
            i += 2; // markers without a length
            continue;
        }
        let len = usize::from(u16::from_be_bytes([b[i + 2], b[i + 3]]));
        let is_sof = matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC);
        if is_sof {
            let seg = b.get(i + 4..i + 2 + len)?;
            let h = u16::from_be_bytes([*seg.get(1)?, *seg.get(2)?]);
            let w = u16::from_be_bytes([*seg.get(3)?, *seg.get(4)?]);
            return Some((i32::from(w), i32::from(h)));
        }
        if marker == 0xDA || len < 2 {
            return None; // scan data before any frame header
        }
        i += 2 + len;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!("{}/../tests/fixtures/dicom/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    #[test]
    fn a_dicom_output_gives_its_uids_and_geometry() {
        let f = read(Format::Dicom, &fixture("CT_small.dcm"));
        assert_eq!(f.media_type, "application/dicom");
        assert_eq!(f.modality.as_deref(), Some("CT"));
        assert_eq!((f.rows, f.columns, f.frames), (128, 128, 1));
        assert!(f.study_uid.is_some() && f.series_uid.is_some() && f.sop_instance_uid.is_some());
        assert_eq!(f.sop_class_uid.as_deref(), Some("1.2.840.10008.5.1.4.1.1.2"));
        assert_eq!(
            f.patient_id.as_deref(),
            Some("1CT1"),
            "read as the file has it (this fixture is not anonymized)"
        );
        assert_eq!(f.study_date.as_deref(), Some("20040119"));
        assert_eq!((f.series_number, f.instance_number), (Some(1), Some(1)));
    }

    #[test]
    fn a_multi_frame_dicom_counts_its_frames() {
        let f = read(Format::Dicom, &fixture("SC_rgb_rle_2frame.dcm"));
        assert_eq!(f.frames, 2);
    }

    #[test]
    fn a_png_header_gives_its_size() {
        let mut png = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13];
        png.extend_from_slice(b"IHDR");
        png.extend_from_slice(&640u32.to_be_bytes());
        png.extend_from_slice(&480u32.to_be_bytes());
        png.extend_from_slice(&[8, 0, 0, 0, 0]);
        assert_eq!(png_size(&png), Some((640, 480)));
    }

    #[test]
    fn a_jpeg_header_gives_its_size_after_other_segments() {
        let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x04, 0x00, 0x00];
        jpeg.extend_from_slice(&[0xFF, 0xC0, 0x00, 0x0B, 8, 0x01, 0xE0, 0x02, 0x80, 1, 1, 0x11, 0]);
        assert_eq!(jpeg_size(&jpeg), Some((640, 480)));
        assert_eq!(jpeg_size(&[0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x02]), None);
    }

    #[test]
    fn garbage_gives_empty_facts_without_failing() {
        let f = read(Format::Dicom, b"not dicom at all");
        assert_eq!((f.rows, f.columns, f.frames), (0, 0, 0));
        assert_eq!(read(Format::Png, b"\x89PNG").rows, 0);
    }
}
