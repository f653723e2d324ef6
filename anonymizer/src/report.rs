//! The per-file report: what was done, in counts and geometry. Never any PHI:
//! no values, no original UIDs, no names, only tags' actions, counts and sizes.

use crate::ocr::Found;
use crate::pixels::BurnedRegion;
use crate::profile::Action;
use serde::Serialize;
use std::collections::BTreeMap;

/// The kind of input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// DICOM Part 10 or a raw dataset.
    Dicom,
    /// PNG image.
    Png,
    /// JPEG image.
    Jpeg,
}

/// What the engine did to one input.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// The kind of input.
    pub format: Format,
    /// Attributes handled, by action.
    pub actions: BTreeMap<Action, u64>,
    /// UID values replaced by keyed pseudonyms.
    pub uids_remapped: u64,
    /// The IOD the attributes were judged against (its key in the PS3.3 tables, such as
    /// `ct-image`); `None` when the tables lack the SOP class, and a note says so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iod: Option<String>,
    /// Attributes the IOD requires that were emptied or given a dummy value instead of
    /// being removed (or emptied), to keep the object as valid as it came.
    pub kept_for_iod: u64,
    /// Regions burned, each with its clipped area per frame.
    pub regions: Vec<BurnedRegion>,
    /// Pixels filled in the image, all frames.
    pub burned_area: u64,
    /// Overlay bits cleared (Clean Graphics).
    pub overlay_area: u64,
    /// Metadata chunks, segments or boxes removed: PNG and JPEG files, and the JPEG and JPEG 2000
    /// frames of DICOM pixel data (bytes after the end marker count as one).
    pub metadata_removed: u64,
    /// Transfer syntax read (DICOM only).
    pub transfer_syntax_in: String,
    /// Transfer syntax written (DICOM only).
    pub transfer_syntax_out: String,
    /// Input size in bytes.
    pub input_bytes: u64,
    /// Output size in bytes.
    pub output_bytes: u64,
    /// Time spent in the engine, microseconds.
    pub duration_us: u64,
    /// Remarks such as a transcoding fallback; fixed texts and UIDs of transfer syntaxes only.
    pub notes: Vec<String>,
    /// What the burned-in text safety net found, when it ran (counts only, never text).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ocr: Option<Found>,
    /// Why the safety net, though on, could not read the pixels (a fixed code, also in
    /// `notes`); `None` when it read them, was off, or there were none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ocr_unread: Option<String>,
}

impl Report {
    /// An empty report for one input kind.
    pub fn new(format: Format) -> Self {
        Report {
            format,
            actions: BTreeMap::new(),
            uids_remapped: 0,
            iod: None,
            kept_for_iod: 0,
            regions: Vec::new(),
            burned_area: 0,
            overlay_area: 0,
            metadata_removed: 0,
            transfer_syntax_in: String::new(),
            transfer_syntax_out: String::new(),
            input_bytes: 0,
            output_bytes: 0,
            duration_us: 0,
            notes: Vec::new(),
            ocr: None,
            ocr_unread: None,
        }
    }

    /// Records why the safety net could not read the pixels (nothing when `reason` is `None`).
    pub fn not_read(&mut self, reason: Option<String>) {
        if let Some(reason) = reason {
            self.notes.push(format!("burned-in text not checked: {reason}"));
            self.ocr_unread = Some(reason);
        }
    }
}
