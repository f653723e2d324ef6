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

use crate::pixels::{row_spans, BurnPlan, Spans};
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
pub use reader::{model, Model, Readings};

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
/// [`MIN_CONFIDENCE`], or two with [`SURE`] (Tesseract gives 10–60 to speckle and edges), or a
/// [`LONG`] clean token at [`LOW_CONFIDENCE`] (device fonts: "630P630" reads right at 17).
const MIN_CHARACTERS: usize = 3;
/// See [`MIN_CHARACTERS`].
const MIN_CONFIDENCE: f32 = 50.0;
/// See [`MIN_CHARACTERS`].
const SURE: f32 = 80.0;
/// Letters or digits of a reading that is text at [`LOW_CONFIDENCE`] when at least 3 in 4 of its
/// characters (spaces aside) are letters or digits: speckle reads as short or ragged strings.
const LONG: usize = 5;
/// See [`LONG`].
const LOW_CONFIDENCE: f32 = 15.0;

/// Whether a reading is text (see [`MIN_CHARACTERS`]).
fn is_text(reading: &reader::Reading) -> bool {
    let visible = reading.text.chars().filter(|c| !c.is_whitespace()).count();
    let characters = reading.text.chars().filter(char::is_ascii_alphanumeric).count();
    (characters >= MIN_CHARACTERS && reading.confidence >= MIN_CONFIDENCE)
        || (characters == 2 && reading.confidence >= SURE)
        || (characters >= LONG && characters * 4 >= visible * 3 && reading.confidence >= LOW_CONFIDENCE)
}

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
    /// How sure the net is of its [`Found::label`], 0–100: with text, the highest reader
    /// confidence among the lines read as text; without, 100 less the highest confidence among
    /// the candidates read and not taken for text (100 when no candidate was read).
    pub confidence: f32,
    /// Lines that still read as PHI in the output, after blanking (see [`Found::released`]).
    pub residual_lines: u32,
    /// Time spent, microseconds (both reads, when the output was read again).
    pub duration_us: u64,
}

/// [`Found::label`] of an image with text.
pub const WITH_TEXT: &str = "texto_incrustado";
/// [`Found::label`] of an image without text.
pub const WITHOUT_TEXT: &str = "sin_texto";
/// The label of an image whose pixels the net, though on, could not read.
pub const NOT_ANALYSED: &str = "no_analizada";
/// Why an output that still reads as PHI after blanking is held back (not released, not written).
pub const RESIDUAL_TEXT: &str = "texto_residual";
/// Every label an analysis may have.
pub const LABELS: [&str; 3] = [WITH_TEXT, WITHOUT_TEXT, NOT_ANALYSED];

impl Found {
    /// `texto_incrustado` when the reader confirmed a line of text, else `sin_texto`.
    pub fn label(&self) -> &'static str {
        if self.text_lines > 0 {
            WITH_TEXT
        } else {
            WITHOUT_TEXT
        }
    }

    /// Whether the output may be released: no line reads as PHI after blanking.
    pub fn released(&self) -> bool {
        self.residual_lines == 0
    }
}

/// A candidate already read: its box, and for one left in place (not text, or a line `phi` mode
/// keeps), the pixels the reader saw around it: the same box later (a later round, a later frame)
/// is skipped only while those are unchanged. A blanked line is blanked in every frame, so its
/// box is skipped whatever it holds.
struct Decided {
    area: Region,
    context: Region,
    kept: Option<Vec<u8>>,
}

/// The pixels of `area` in `frame`, row by row (`area` lies within the frame).
fn pixels_of(frame: &Luma, area: &Region) -> Vec<u8> {
    let mut out = Vec::with_capacity((area.w * area.h) as usize);
    for y in area.y..area.y + area.h {
        let row = (y * frame.width + area.x) as usize;
        out.extend_from_slice(&frame.pixels[row..row + area.w as usize]);
    }
    out
}

impl Decided {
    /// Whether `c` in `frame` needs no reading: it lies in this box, and the box is blanked or
    /// what the reader saw around it is unchanged.
    fn settles(&self, c: &Region, frame: &Luma) -> bool {
        covers(&self.area, c) && self.kept.as_ref().is_none_or(|held| *held == pixels_of(frame, &self.context))
    }
}

/// Most reading rounds per frame. A line can hide another from the reader (two lines close
/// together read as noise); once a round's lines are blanked in the frame the next round reads
/// what they hid, until a round finds nothing new.
const ROUNDS: usize = 3;

/// Blanks `regions` in `frame` (as the output will have them), so later rounds and frames read
/// what is left.
fn blank(frame: &mut Luma, regions: &[Region]) {
    for r in regions {
        let Some((x0, y0, x1, y1)) = r.clip(frame.width, frame.height) else {
            continue;
        };
        for y in y0..y1 {
            let row = (y * frame.width) as usize;
            frame.pixels[row + x0 as usize..row + x1 as usize].fill(0);
        }
    }
}

/// Blanks the row spans `(y, x0, x1)` in `frame`.
fn blank_spans(frame: &mut Luma, spans: &Spans) {
    for &(y, x0, x1) in spans {
        let row = (y * frame.width) as usize;
        frame.pixels[row + x0 as usize..row + x1 as usize].fill(0);
    }
}

/// Finds the text to blank in `frames`, each read whole before the next is taken, in up to
/// [`ROUNDS`] rounds. A candidate that overlaps one already decided (the same annotation on the
/// next frame) is not read again. What `cleaned` already blanks (the regions of the profile, the
/// rules and ultrasound) is blanked before reading: the output has no text there, so the net
/// spends no recognition on it. `readings` holds what was read of this image so far.
pub fn find(
    frames: impl IntoIterator<Item = Luma>,
    mode: OcrMode,
    terms: &Terms,
    cleaned: &BurnPlan,
    readings: &mut Readings,
) -> Result<Found, String> {
    let started = Instant::now();
    let mut found = Found { mode, ..Found::default() };
    if mode == OcrMode::Off {
        return Ok(found);
    }
    let mut decided: Vec<Decided> = Vec::new();
    let (mut best_text, mut best_not_text) = (0f32, 0f32);
    let mut spans: Option<((u32, u32), Spans)> = None;
    for mut frame in frames {
        let size = (frame.width, frame.height);
        if spans.as_ref().is_none_or(|(s, _)| *s != size) {
            spans = Some((size, row_spans(cleaned, frame.width, frame.height)));
        }
        if let Some((_, s)) = &spans {
            blank_spans(&mut frame, s);
        }
        blank(&mut frame, &found.regions);
        for round in 0..ROUNDS {
            let before = found.regions.len();
            for c in candidates(&frame) {
                let settled = decided.iter().any(|d| d.settles(&c, &frame));
                found.candidates += u32::from(round == 0 || !settled);
                if settled {
                    continue;
                }
                let reading = reader::read(&frame, c, readings)?;
                let text = is_text(&reading);
                let blank = text && (mode != OcrMode::Phi || phi::is_phi(&reading.text, terms));
                let context = reader::context(c, &frame);
                decided.push(Decided {
                    area: c,
                    context,
                    kept: (!blank).then(|| pixels_of(&frame, &context)),
                });
                if !text {
                    best_not_text = best_not_text.max(reading.confidence);
                    continue;
                }
                found.text_lines += 1;
                best_text = best_text.max(reading.confidence);
                if !blank {
                    found.kept_lines += 1;
                    continue;
                }
                found.regions.push(padded(c, &frame));
            }
            if found.regions.len() == before {
                break;
            }
            blank(&mut frame, &found.regions[before..]);
        }
    }
    found.confidence = if found.text_lines > 0 { best_text } else { 100.0 - best_not_text };
    found.duration_us = started.elapsed().as_micros() as u64;
    Ok(found)
}

/// How many lines of `frames` read as PHI for `terms` (as `phi` mode judges them): the check of
/// an output after blanking. `readings` are the image's readings before blanking: the lines
/// left in place are not read twice.
pub fn residual(frames: impl IntoIterator<Item = Luma>, terms: &Terms, readings: &mut Readings) -> Result<u32, String> {
    Ok(find(frames, OcrMode::Phi, terms, &BurnPlan::default(), readings)?.regions.len() as u32)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str, confidence: f32) -> bool {
        is_text(&reader::Reading {
            text: text.into(),
            confidence,
        })
    }

    #[test]
    fn readings_are_text_by_length_cleanliness_and_confidence() {
        // What the reader made of the corpus's GE ultrasound screen (device text, then speckle).
        for (text, confidence) in [
            ("BAPTIST", 95.0),
            ("630P630", 17.0),
            ("A0=1608%", 26.0),
            ("12:83: 04", 44.0),
            ("OB", 94.0),
        ] {
            assert!(read(text, confidence), "{text} at {confidence} is text");
        }
        for (text, confidence) in [
            ("vel we:y", 0.0),
            ("0 ee a", 22.0),
            ("—————", 16.0),
            ("eel", 8.0),
            ("ab", 79.0),
            ("abc", 49.0),
        ] {
            assert!(!read(text, confidence), "{text} at {confidence} is not text");
        }
    }
}
