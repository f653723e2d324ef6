//! The recognizer: Tesseract (Debian's `libtesseract5` and `tesseract-ocr-eng`, the LSTM model),
//! one instance per engine thread, reading one candidate line at a time.
//!
//! A candidate is cut out with a margin, turned dark-on-light (Tesseract's own inversion costs a
//! second recognition), and enlarged when its letters are smaller than the model reads well.

use super::luma::Luma;
use crate::region::Region;
use serde::Serialize;
use sha2::Digest;
use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::CString;
use std::sync::OnceLock;
use tesseract_plumbing::TessBaseApi;

/// What the reader made of one candidate. The text stays in memory; it is never reported.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    /// The recognized text, trimmed.
    pub text: String,
    /// The best word's confidence, 0–100 (one word misread, a `^` read as `*`, must not hide
    /// the others).
    pub confidence: f32,
}

/// Candidates lower than this many rows are enlarged to it (the LSTM model reads 20–40 best;
/// recognition time grows with the area, so no more than needed).
const TARGET_HEIGHT: u32 = 24;

thread_local! {
    static READER: RefCell<Option<Result<TessBaseApi, String>>> = const { RefCell::new(None) };
}

/// The language the reader loads.
const LANGUAGE: &str = "eng";

/// Where Tesseract finds its language data when `TESSDATA_PREFIX` does not say: Debian's
/// `tesseract-ocr-eng` for Tesseract 5, then 4.
const TESSDATA_DIRS: [&str; 3] = [
    "/usr/share/tesseract-ocr/5/tessdata",
    "/usr/share/tesseract-ocr/4.00/tessdata",
    "/usr/share/tessdata",
];

/// The model the reader runs: the OCR engine and its version, and the language data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Model {
    /// The OCR engine, `tesseract`.
    #[serde(rename = "nombre")]
    pub name: String,
    /// The engine's version, as the library reports it (e.g. `5.3.0`).
    pub version: String,
    /// The language data loaded, `eng`.
    #[serde(rename = "idioma")]
    pub language: String,
    /// sha256 of the language data file (`eng.traineddata`): the model's own version, which
    /// changes with the data package. `None` when the file is not where Tesseract looks.
    #[serde(rename = "datos_sha256")]
    pub data_sha256: Option<String>,
}

/// The model the reader runs, read once per process (hashing the language data reads it).
pub fn model() -> Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL
        .get_or_init(|| {
            let file = format!("{LANGUAGE}.traineddata");
            let dirs = std::env::var("TESSDATA_PREFIX")
                .ok()
                .into_iter()
                .chain(TESSDATA_DIRS.map(str::to_owned));
            let data_sha256 = dirs
                .map(|d| std::path::Path::new(&d).join(&file))
                .find_map(|p| std::fs::read(p).ok())
                .map(|bytes| format!("{:x}", sha2::Sha256::digest(&bytes)));
            Model {
                name: "tesseract".into(),
                version: tesseract_plumbing::version().to_string_lossy().into_owned(),
                language: LANGUAGE.into(),
                data_sha256,
            }
        })
        .clone()
}

fn start() -> Result<TessBaseApi, String> {
    let mut api = TessBaseApi::create();
    let lang = CString::new(LANGUAGE).map_err(|e| e.to_string())?;
    api.init_2(None, Some(&lang))
        .map_err(|_| "Tesseract could not load its English language data (install tesseract-ocr-eng)".to_owned())?;
    for (name, value) in [("debug_file", "/dev/null"), ("tessedit_do_invert", "0")] {
        let (n, v) = (
            CString::new(name).map_err(|e| e.to_string())?,
            CString::new(value).map_err(|e| e.to_string())?,
        );
        api.set_variable(&n, &v)
            .map_err(|_| format!("Tesseract refused the variable {name}"))?;
    }
    api.set_page_seg_mode(tesseract_sys::TessPageSegMode_PSM_SINGLE_LINE);
    Ok(api)
}

/// The readings of one image, by the exact pixels the reader was given, so that the same crop
/// (in a later round, on a later frame, or in the residual check of the output, where the lines
/// left in place are unchanged) is recognized once. Tesseract gives the same reading for the
/// same pixels, so this changes no result, only the time. Kept per image: it holds crops, and
/// the pixels of one patient's image are never compared with another's.
#[derive(Debug, Default)]
pub struct Readings(HashMap<(u32, Vec<u8>), Reading>);

impl Readings {
    /// How many crops were recognized (not found here).
    pub fn recognized(&self) -> usize {
        self.0.len()
    }
}

/// Reads the text in `area` of `frame` (the area is clipped to the frame), or finds the reading
/// of the same pixels in `readings`.
pub fn read(frame: &Luma, area: Region, readings: &mut Readings) -> Result<Reading, String> {
    let Some((crop, w, h)) = prepare(frame, area) else {
        return Ok(Reading {
            text: String::new(),
            confidence: 0.0,
        });
    };
    let key = (w, crop);
    if let Some(reading) = readings.0.get(&key) {
        return Ok(reading.clone());
    }
    let reading = recognize(&key.1, w, h)?;
    readings.0.insert(key, reading.clone());
    Ok(reading)
}

/// Tesseract's reading of a prepared crop, `w` × `h`.
fn recognize(crop: &[u8], w: u32, h: u32) -> Result<Reading, String> {
    READER.with(|cell| {
        let mut slot = cell.borrow_mut();
        let api = match slot.get_or_insert_with(start) {
            Ok(api) => api,
            Err(e) => return Err(e.clone()),
        };
        let (wi, hi) = (
            i32::try_from(w).map_err(|e| e.to_string())?,
            i32::try_from(h).map_err(|e| e.to_string())?,
        );
        api.set_image(crop, wi, hi, 1, wi).map_err(|e| format!("{e:?}"))?;
        api.recognize()
            .map_err(|_| "Tesseract failed to recognize a candidate".to_owned())?;
        let text = api
            .get_utf8_text()
            .map(|t| t.as_ref().to_string_lossy().trim().to_owned())
            .unwrap_or_default();
        let best_word = api
            .all_word_confidences()
            .map_or(0, |c| c.as_slice().iter().copied().max().unwrap_or(0));
        let confidence = best_word.max(api.mean_text_conf()) as f32;
        Ok(Reading { text, confidence })
    })
}

/// What the reader cuts out of `frame` to read `area`: the area with a margin (a third of its
/// height, at least 4), clipped to the frame.
pub fn context(area: Region, frame: &Luma) -> Region {
    let margin = (area.h / 3).max(4);
    let x0 = area.x.saturating_sub(margin).min(frame.width);
    let y0 = area.y.saturating_sub(margin).min(frame.height);
    let x1 = area.x.saturating_add(area.w).saturating_add(margin).min(frame.width);
    let y1 = area.y.saturating_add(area.h).saturating_add(margin).min(frame.height);
    Region {
        x: x0,
        y: y0,
        w: x1.saturating_sub(x0),
        h: y1.saturating_sub(y0),
    }
}

/// The candidate cut out with a margin, dark text on a light ground, enlarged if small.
fn prepare(frame: &Luma, area: Region) -> Option<(Vec<u8>, u32, u32)> {
    let Region {
        x: x0,
        y: y0,
        w: cw,
        h: ch,
    } = context(area, frame);
    if cw == 0 || ch == 0 {
        return None;
    }
    let (x1, y1) = (x0 + cw, y0 + ch);
    let mut crop = Vec::with_capacity((cw * ch) as usize);
    for y in y0..y1 {
        let row = (y * frame.width) as usize;
        crop.extend_from_slice(&frame.pixels[row + x0 as usize..row + x1 as usize]);
    }
    // Stretched to full contrast, and inverted when the text is lighter than its ground (the
    // margin, which is mostly ground): Tesseract reads dark text on a light ground.
    let (lo, hi) = crop.iter().fold((255u8, 0u8), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    let range = u32::from(hi - lo).max(1);
    let border = crop[..cw as usize].iter().chain(&crop[((ch - 1) * cw) as usize..]);
    let ground = border.clone().map(|&v| u32::from(v)).sum::<u32>() / (2 * cw);
    let overall = crop.iter().map(|&v| u32::from(v)).sum::<u32>() / (cw * ch);
    let invert = overall > ground;
    for v in crop.iter_mut() {
        let s = (u32::from(*v - lo) * 255 / range) as u8;
        *v = if invert { 255 - s } else { s };
    }
    let scale = TARGET_HEIGHT.div_ceil(area.h.max(1)).clamp(1, 4);
    if scale == 1 {
        return Some((crop, cw, ch));
    }
    let (sw, sh) = (cw * scale, ch * scale);
    let mut big = vec![0u8; (sw * sh) as usize];
    for y in 0..sh {
        let src = ((y / scale) * cw) as usize;
        let dst = (y * sw) as usize;
        for x in 0..sw {
            big[dst + x as usize] = crop[src + (x / scale) as usize];
        }
    }
    Some((big, sw, sh))
}
