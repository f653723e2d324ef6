//! The burned-in text safety net: finds text in every frame and returns the regions to blank.
//!
//! Two stages, so that a frame with no text costs a few passes over its pixels and no
//! recognition: [`candidates`] finds what could be text from its shape, and the [`reader`]
//! (Tesseract) confirms each candidate by reading it. What is blanked depends on the mode:
//! - `all-text` (the default) blanks every confirmed line: burned-in text is annotation a
//!   research image does not need, and a line kept on a word-list's say-so could still be PHI
//!   the list does not know;
//! - `phi` blanks a confirmed line only if it names the header's patient, ids, dates, people or
//!   institution, or holds a word that is not imaging vocabulary ([`phi`]), so orientation
//!   markers, sequence names and scales stay;
//! - `off` runs nothing.
//!
//! Only geometry and counts leave this module: the text read is never reported.

use crate::region::Region;
use serde::{Deserialize, Serialize};
use std::time::Instant;

mod candidates;
pub mod luma;
pub mod phi;
mod reader;

pub use candidates::candidates;
pub use luma::Luma;
pub use phi::Terms;
pub use reader::model;

/// Which text the safety net blanks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OcrMode {
    /// No text detection.
    Off,
    /// Blank every line of text found.
    #[default]
    AllText,
    /// Blank the lines that are or may be PHI.
    Phi,
}

/// The names [`OcrMode::parse`] takes.
pub const OCR_MODES: [&str; 3] = ["off", "all-text", "phi"];

impl OcrMode {
    /// The mode of a name in [`OCR_MODES`].
    pub fn parse(name: &str) -> Option<OcrMode> {
        match name {
            "off" => Some(OcrMode::Off),
            "all-text" => Some(OcrMode::AllText),
            "phi" => Some(OcrMode::Phi),
            _ => None,
        }
    }

    /// The mode's name.
    pub fn name(self) -> &'static str {
        match self {
            OcrMode::Off => "off",
            OcrMode::AllText => "all-text",
            OcrMode::Phi => "phi",
        }
    }
}

/// A candidate is text when the reader reads at least this many letters or digits in it with
/// [`MIN_CONFIDENCE`], or two with [`SURE`] (Tesseract gives 10–60 to speckle and edges).
const MIN_CHARACTERS: usize = 3;
/// See [`MIN_CHARACTERS`].
const MIN_CONFIDENCE: f32 = 50.0;
/// See [`MIN_CHARACTERS`].
const SURE: f32 = 80.0;

/// What the safety net found in one image. Never any text.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Found {
    /// The mode it ran in.
    pub mode: OcrMode,
    /// Regions to blank (padded), in every frame; the report lists them with the other regions.
    #[serde(skip)]
    pub regions: Vec<Region>,
    /// Candidates the first pass found, all frames.
    pub candidates: u32,
    /// Candidates the reader confirmed as text.
    pub text_lines: u32,
    /// Text lines left in place (`phi` mode: not PHI).
    pub kept_lines: u32,
    /// The highest reader confidence among the blanked lines, 0–100 (0 when none).
    pub confidence: f32,
    /// Time spent, microseconds.
    pub duration_us: u64,
}

/// Finds the text to blank in `frames`, each read whole before the next is taken. A candidate
/// that overlaps a region already decided (the same annotation on the next frame) is not read
/// again.
pub fn find(frames: impl IntoIterator<Item = Luma>, mode: OcrMode, terms: &Terms) -> Result<Found, String> {
    let started = Instant::now();
    let mut found = Found { mode, ..Found::default() };
    if mode == OcrMode::Off {
        return Ok(found);
    }
    let mut decided: Vec<Region> = Vec::new();
    for frame in frames {
        let frame = &frame;
        for c in candidates(frame) {
            found.candidates += 1;
            if decided.iter().any(|d| covers(d, &c)) {
                continue;
            }
            decided.push(c);
            let reading = reader::read(frame, c)?;
            let characters = reading.text.chars().filter(char::is_ascii_alphanumeric).count();
            let text =
                (characters >= MIN_CHARACTERS && reading.confidence >= MIN_CONFIDENCE) || (characters == 2 && reading.confidence >= SURE);
            if !text {
                continue;
            }
            found.text_lines += 1;
            if mode == OcrMode::Phi && !phi::is_phi(&reading.text, terms) {
                found.kept_lines += 1;
                continue;
            }
            found.confidence = found.confidence.max(reading.confidence);
            found.regions.push(padded(c, frame));
        }
    }
    found.duration_us = started.elapsed().as_micros() as u64;
    Ok(found)
}

/// Whether `outer` holds most of `inner`.
fn covers(outer: &Region, inner: &Region) -> bool {
    let x0 = outer.x.max(inner.x);
    let y0 = outer.y.max(inner.y);
    let x1 = (outer.x + outer.w).min(inner.x + inner.w);
    let y1 = (outer.y + outer.h).min(inner.y + inner.h);
    let overlap = u64::from(x1.saturating_sub(x0)) * u64::from(y1.saturating_sub(y0));
    overlap * 10 >= u64::from(inner.w) * u64::from(inner.h) * 8
}

/// A text box grown by a margin (antialiased edges and descenders), clipped to the frame.
fn padded(r: Region, frame: &Luma) -> Region {
    let pad = 2 + r.h / 5;
    let x = r.x.saturating_sub(pad);
    let y = r.y.saturating_sub(pad);
    Region {
        x,
        y,
        w: (r.x + r.w + pad).min(frame.width) - x,
        h: (r.y + r.h + pad).min(frame.height) - y,
    }
}
