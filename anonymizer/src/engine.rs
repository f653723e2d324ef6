//! The engine's entry point: bytes in, de-identified bytes plus a report out.

use crate::dataset::{DataSet, Element, Value, Vr, PIXEL_DATA};
use crate::deid::{patient_key, record_method, Deidentifier};
use crate::error::{Error, Result};
use crate::ocr::{self, luma, Found, OcrMode, Readings, Terms};
use crate::parse;
use crate::pixels::{self, BurnPlan, BurnedRegion, Geometry};
use crate::profile::Options;
use crate::pseudonym::Secret;
use crate::raster;
use crate::region::{Region, RegionSource};
use crate::report::{Format, Report};
use crate::rules::RuleLibrary;
use crate::syntax::{DEFLATED_LE, EXPLICIT_BE, EXPLICIT_LE};
use crate::write::{self, Meta};
use sha2::Digest;
use std::sync::Arc;
use std::time::Instant;

/// Everything the engine needs to de-identify one input. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Config {
    /// The PS3.15 options in force.
    pub options: Options,
    /// The key behind every pseudonym.
    pub secret: Secret,
    /// Regions burned in every image (command line or profile).
    pub regions: Vec<Region>,
    /// The rule library; the first matching signature adds its regions.
    pub rules: Arc<RuleLibrary>,
    /// Blank outside SequenceOfUltrasoundRegions unless BurnedInAnnotation is NO.
    pub ultrasound_regions: bool,
    /// The stored value written into burned samples.
    pub fill: u16,
    /// Deepest sequence nesting accepted.
    pub max_depth: usize,
    /// The most bytes one input may inflate or decode to: a deflated dataset, encapsulated pixel
    /// data to burn, a PNG, a JPEG to burn. Checked before the buffer is made (a deflate stream
    /// is cut there). [`Config::within_memory`] derives it from the engine's memory.
    pub max_decoded: u64,
    /// The burned-in text safety net ([`crate::ocr`]), under Clean Pixel Data.
    pub ocr: OcrMode,
}

/// The memory an engine's inputs in flight may take together, unless configured: 2 GiB.
pub const DEFAULT_ENGINE_MEMORY: u64 = 2 * 1024 * 1024 * 1024;

/// [`Config::max_decoded`] of [`Config::new`]: 512 MiB.
pub const DEFAULT_MAX_DECODED: u64 = 512 * 1024 * 1024;

/// How many times its decoded size one input can take at its peak: the decoded buffer, the
/// dataset parsed from it and the output written from that. Measured: a deflated dataset of
/// 805 MB inflated peaked at 1.77 GB of RSS (2.2×); 3 leaves room.
pub const PEAK_PER_DECODED_BYTE: u64 = 3;

impl Config {
    /// The strictest profile with the shipped rule library.
    pub fn new(secret: Secret) -> Self {
        Config {
            options: Options::default(),
            secret,
            regions: Vec::new(),
            rules: Arc::new(RuleLibrary::default_library()),
            ultrasound_regions: true,
            fill: 0,
            max_depth: 32,
            max_decoded: DEFAULT_MAX_DECODED,
            ocr: OcrMode::default(),
        }
    }

    /// `self` with the decode limit that keeps `jobs` inputs at once within `memory` bytes:
    /// `memory / (jobs × PEAK_PER_DECODED_BYTE)`.
    pub fn within_memory(mut self, memory: u64, jobs: usize) -> Self {
        let jobs = u64::try_from(jobs.max(1)).unwrap_or(u64::MAX);
        self.max_decoded = memory / jobs.saturating_mul(PEAK_PER_DECODED_BYTE);
        self
    }
}

/// The result of de-identifying one input.
#[derive(Debug)]
pub struct Anonymized {
    /// The de-identified file.
    pub bytes: Vec<u8>,
    /// What was done; never any PHI.
    pub report: Report,
}

/// De-identifies one DICOM, PNG or JPEG input.
pub fn anonymize(input: &[u8], cfg: &Config) -> Result<Anonymized> {
    let mut bytes = Vec::new();
    let report = anonymize_into(input, cfg, &mut bytes)?;
    Ok(Anonymized { bytes, report })
}

/// De-identifies one input into `out` (cleared first; its allocation is reused,
/// so a worker that keeps one buffer stops paying for a fresh one per file).
pub fn anonymize_into(input: &[u8], cfg: &Config, out: &mut Vec<u8>) -> Result<Report> {
    let started = Instant::now();
    let buffer = std::mem::take(out);
    let mut result = match raster::sniff(input) {
        Some(_) if !parse::looks_like_dicom(input) || input.get(128..132) != Some(b"DICM") => anonymize_raster(input, cfg),
        _ => anonymize_dicom(input, cfg, buffer),
    }?;
    result.report.input_bytes = input.len() as u64;
    result.report.output_bytes = result.bytes.len() as u64;
    result.report.duration_us = started.elapsed().as_micros() as u64;
    *out = result.bytes;
    Ok(result.report)
}

fn anonymize_raster(input: &[u8], cfg: &Config) -> Result<Anonymized> {
    let mut regions: Vec<(Region, RegionSource)> = Vec::new();
    let mut unread = None;
    let mut found = None;
    let mut readings = Readings::default();
    if cfg.options.clean_pixel_data {
        regions.extend(cfg.regions.iter().map(|r| (*r, RegionSource::Profile)));
        if cfg.ocr != OcrMode::Off {
            match raster::luma(input, cfg.max_decoded) {
                Ok(l) => {
                    let cleaned = BurnPlan {
                        rects: regions.clone(),
                        ..BurnPlan::default()
                    };
                    let f = ocr::find([l], cfg.ocr, &Terms::default(), &cleaned, &mut readings).map_err(|reason| Error::Ocr { reason })?;
                    regions.extend(f.regions.iter().map(|r| (*r, RegionSource::Ocr)));
                    found = Some(f);
                }
                Err(e) => unread = Some(e.code().to_owned()),
            }
        }
    }
    let rects: Vec<Region> = regions.iter().map(|(r, _)| *r).collect();
    let (bytes, outcome) = raster::anonymize(input, &rects, cfg.fill, cfg.max_decoded)?;
    let format = match outcome.format {
        raster::RasterFormat::Png => Format::Png,
        raster::RasterFormat::Jpeg => Format::Jpeg,
    };
    let mut report = Report::new(format);
    report.metadata_removed = u64::from(outcome.metadata_segments_removed);
    report.burned_area = outcome.burned_area;
    report.regions = regions
        .iter()
        .map(|(r, source)| BurnedRegion {
            region: *r,
            source: *source,
            area_per_frame: r
                .clip(outcome.width, outcome.height)
                .map_or(0, |(x0, y0, x1, y1)| u64::from(x1 - x0) * u64::from(y1 - y0)),
        })
        .collect();
    report.not_read(unread);
    if outcome.reencoded {
        report.notes.push("pixels decoded, burned and re-encoded".into());
    }
    report.ocr = found;
    check_residual(report.ocr.as_mut(), || {
        let output = raster::luma(&bytes, cfg.max_decoded)?;
        ocr::residual([output], &Terms::default(), &mut readings).map_err(|reason| Error::Ocr { reason })
    })?;
    Ok(Anonymized { bytes, report })
}

/// The string value of a top-level element as a rule sees it (numbers in decimal).
fn rule_value(ds: &DataSet<'_>, tag: u32) -> Option<String> {
    let el = ds.get(tag)?;
    if el.vr.is_text() {
        return ds.text(tag).map(str::to_owned);
    }
    let nums = ds.uints(tag);
    (!nums.is_empty()).then(|| nums.iter().map(u32::to_string).collect::<Vec<_>>().join("\\"))
}

/// Regions for one image from the profile, the rule library and ultrasound regions.
pub fn burn_plan(ds: &DataSet<'_>, cfg: &Config) -> BurnPlan {
    let mut plan = BurnPlan {
        fill: cfg.fill,
        ..Default::default()
    };
    if !cfg.options.clean_pixel_data || ds.get(PIXEL_DATA).is_none() {
        return plan;
    }
    plan.rects.extend(cfg.regions.iter().map(|r| (*r, RegionSource::Profile)));
    if let Some(sig) = cfg.rules.first_match(&|tag| rule_value(ds, tag)) {
        plan.rects.extend(sig.regions.iter().map(|r| (*r, RegionSource::Rule)));
    }
    let annotated = ds.text(0x0028_0301).map(|v| !v.eq_ignore_ascii_case("NO")).unwrap_or(true);
    if cfg.ultrasound_regions && annotated {
        if let Some(Value::Sequence(items)) = ds.get(0x0018_6011).map(|e| &e.value) {
            let keep: Vec<Region> = items
                .iter()
                .filter_map(|it| {
                    let v = |t| it.uints(t).first().copied();
                    let (x0, y0, x1, y1) = (v(0x0018_6018)?, v(0x0018_601A)?, v(0x0018_601C)?, v(0x0018_601E)?);
                    (x1 >= x0 && y1 >= y0).then(|| Region {
                        x: x0,
                        y: y0,
                        w: (x1 - x0).saturating_add(1),
                        h: (y1 - y0).saturating_add(1),
                    })
                })
                .collect();
            if !keep.is_empty() {
                plan.keep_only = Some(keep);
            }
        }
    }
    plan
}

const BURNED_IN_ANNOTATION: u32 = 0x0028_0301;

/// Why the safety net did not look at an image's pixels (a fixed text, for the report's notes).
struct Unread(&'static str);

/// Encapsulated pixel data as [`pixels::decode_encapsulated`] gives it.
type Decoded = (Vec<u8>, Geometry);

/// Runs `read` over the luminance frames of a dataset's pixel data (decoded first into
/// `decoded` when encapsulated, where the caller may take it to burn); `None` when it has none.
/// An error is pixel data the net cannot read.
fn with_frames<R>(
    ds: &DataSet<'_>,
    ts_uid: &str,
    limit: u64,
    decoded: &mut Option<Decoded>,
    read: impl FnOnce(&mut dyn Iterator<Item = luma::Luma>) -> R,
) -> Result<Option<R>, Unread> {
    let Some(pixel) = ds.get(PIXEL_DATA) else {
        return Ok(None);
    };
    let (data, g): (&[u8], Geometry) = match &pixel.value {
        Value::Bytes(b) => (b, Geometry::of(ds).map_err(|_| Unread("image pixel attributes"))?),
        Value::Encapsulated { .. } => {
            let (bytes, g) = decoded.insert(pixels::decode_encapsulated(ds, ts_uid, limit).map_err(|e| Unread(e.code()))?);
            (&bytes[..], *g)
        }
        Value::Sequence(_) => return Err(Unread("pixel data")),
    };
    let samples = luma::Samples {
        big_endian: ds.big_endian,
        signed: ds.u16(0x0028_0103) == Some(1),
        bits_stored: ds.u16(0x0028_0101).map_or(g.bits, u32::from),
    };
    let mut frames = luma::frames(data, &g, samples).ok_or(Unread("pixel layout (1-bit, or short data)"))?;
    Ok(Some(read(&mut frames)))
}

/// The safety net's findings for a dataset's pixel data outside what `plan` already blanks, when
/// Clean Pixel Data and the net are on (encapsulated data is left decoded in `decoded`). The
/// outer error is an image the net cannot read (noted, not fatal); the inner one a recognizer
/// that cannot run (fatal: the net is on, so no image goes out unchecked).
fn text_regions(
    ds: &DataSet<'_>,
    ts_uid: &str,
    cfg: &Config,
    terms: &Terms,
    plan: &BurnPlan,
    readings: &mut Readings,
    decoded: &mut Option<Decoded>,
) -> Result<Option<Result<Found>>, Unread> {
    if cfg.ocr == OcrMode::Off || !cfg.options.clean_pixel_data {
        return Ok(None);
    }
    with_frames(ds, ts_uid, cfg.max_decoded, decoded, |frames| {
        ocr::find(frames, cfg.ocr, terms, plan, readings).map_err(|reason| Error::Ocr { reason })
    })
}

/// The dataset bytes of a Part 10 input (inflated into `inflated` when deflated).
fn dataset_bytes<'a>(input: &'a [u8], layout: &parse::Layout, limit: u64, inflated: &'a mut Vec<u8>) -> Result<&'a [u8]> {
    let body = &input[layout.dataset_start..];
    if layout.transfer_syntax.deflated {
        *inflated = parse::inflate(body, limit)?;
        Ok(&inflated[..])
    } else {
        Ok(body)
    }
}

/// Reads a written output again (the net's residual check): how many lines in its pixels still
/// read as PHI for `terms`.
fn residual_dicom(output: &[u8], terms: &Terms, cfg: &Config, readings: &mut Readings) -> Result<u32> {
    let layout = parse::layout(output)?;
    let mut inflated = Vec::new();
    let bytes = dataset_bytes(output, &layout, cfg.max_decoded, &mut inflated)?;
    let ds = parse::dataset(bytes, layout.transfer_syntax.encoding, cfg.max_depth)?;
    match with_frames(&ds, &layout.transfer_syntax.uid, cfg.max_decoded, &mut None, |frames| {
        ocr::residual(frames, terms, readings)
    }) {
        Ok(read) => read.unwrap_or(Ok(0)).map_err(|reason| Error::Ocr { reason }),
        Err(Unread(what)) => Err(Error::Ocr {
            reason: format!("the output could not be read again ({what})"),
        }),
    }
}

/// Runs the residual check when the net blanked something (an image without text has nothing to
/// check), adding its time to the net's.
fn check_residual(found: Option<&mut Found>, read: impl FnOnce() -> Result<u32>) -> Result<()> {
    if let Some(f) = found.filter(|f| !f.regions.is_empty()) {
        let started = Instant::now();
        f.residual_lines = read()?;
        f.duration_us += started.elapsed().as_micros() as u64;
    }
    Ok(())
}

fn anonymize_dicom(input: &[u8], cfg: &Config, buffer: Vec<u8>) -> Result<Anonymized> {
    let layout = parse::layout(input)?;
    let ts = &layout.transfer_syntax;
    let mut inflated = Vec::new();
    let bytes = dataset_bytes(input, &layout, cfg.max_decoded, &mut inflated)?;
    let mut ds = parse::dataset(bytes, ts.encoding, cfg.max_depth)?;
    let mut report = Report::new(Format::Dicom);
    report.transfer_syntax_in = ts.uid.clone();
    report.notes.extend(layout.note.map(str::to_owned));
    if layout.guessed {
        report.notes.push(format!("no transfer syntax in file meta; read as {}", ts.uid));
    }

    let mut plan = burn_plan(&ds, cfg);
    // The header's identifying words, read before de-identification: the residual check (and
    // `phi` mode) looks for them in the pixels.
    let terms = if cfg.ocr == OcrMode::Off {
        Terms::default()
    } else {
        Terms::of(&ds)
    };
    let mut decoded = None;
    let mut readings = Readings::default();
    let found = match text_regions(&ds, &ts.uid, cfg, &terms, &plan, &mut readings, &mut decoded) {
        Ok(found) => found.transpose()?,
        Err(Unread(reason)) => {
            report.not_read(Some(reason.to_owned()));
            None
        }
    };
    if let Some(f) = &found {
        plan.rects.extend(f.regions.iter().map(|r| (*r, RegionSource::Ocr)));
    }
    // The net's decoding of encapsulated pixel data is kept only for the burn that will use it.
    let mut decoded = decoded.filter(|_| !plan.is_empty());
    let key_hint = patient_key(&ds).is_empty();
    let mut deid = Deidentifier::new(&cfg.options, &cfg.secret, &ds);
    deid.overlays_burned = !plan.is_empty();
    deid.run(&mut ds);
    if key_hint {
        report
            .notes
            .push("no PatientID or PatientName: pseudonyms and date shift use an empty key".into());
    }
    report.actions = deid.counts.clone();
    report.uids_remapped = deid.uids_remapped;
    report.iod = deid.iod.as_ref().map(|iod| iod.name.to_owned());
    report.kept_for_iod = deid.kept_for_iod;
    if deid.iod.is_none() {
        report
            .notes
            .push("SOP class not in the PS3.3 tables: compound codes resolved by the rule for any IOD".into());
    }
    record_method(&mut ds, &cfg.options);
    if found.is_some() {
        // PS3.3 C.7.6.1.1.4: the text that could identify the patient is gone.
        ds.put(Element::text(BURNED_IN_ANNOTATION, Vr::CS, "NO"));
    }
    report.ocr = found;

    let mut out_ts = match ts.uid.as_str() {
        EXPLICIT_BE => EXPLICIT_LE.to_owned(),
        other => other.to_owned(),
    };
    let encapsulated = matches!(ds.get(PIXEL_DATA).map(|e| &e.value), Some(Value::Encapsulated { .. }));
    let geometry = if plan.is_empty() { None } else { Some(Geometry::of(&ds)?) };
    if let Some(g) = &geometry {
        report.regions = pixels::report_regions(&plan, g);
        if cfg.options.clean_graphics {
            report.overlay_area = pixels::burn_overlays(&mut ds, &plan);
        }
        if encapsulated {
            let t = pixels::burn_encapsulated(&mut ds, &ts.uid, &plan, cfg.max_decoded, decoded.take())?;
            report.burned_area = t.filled;
            out_ts = t.transfer_syntax;
            report.notes.extend(t.note);
        }
    }
    if out_ts == ts.uid && ts.encapsulated {
        // Pixel data left encapsulated (as read, or re-encoded after burning): drop the free text
        // inside its JPEG, JPEG 2000 and JPEG XL frames.
        let stripped = pixels::strip_encapsulated_metadata(&mut ds, &ts.uid)?;
        report.metadata_removed += stripped.removed;
        if let Some(written_as) = stripped.transfer_syntax {
            out_ts = written_as.to_owned();
            report.notes.push(format!(
                "JPEG reconstruction data removed from JPEG XL frames: written as {written_as}"
            ));
        }
    }
    let sop_class = ds
        .text(0x0008_0016)
        .map(str::to_owned)
        .or(layout.media_sop_class.clone())
        .unwrap_or_default();
    let sop_instance = match ds.text(0x0008_0018) {
        Some(uid) if !uid.is_empty() => uid.to_owned(),
        _ => cfg.secret.uid(&format!("alpes:content:{:x}", sha2::Sha256::digest(input))),
    };
    let deflate = out_ts == DEFLATED_LE;
    let explicit = out_ts != crate::syntax::IMPLICIT_LE;
    let meta = Meta {
        sop_class: &sop_class,
        sop_instance: &sop_instance,
        transfer_syntax: &out_ts,
    };
    let mut written = write::part10_into(&ds, &meta, explicit, buffer);
    if let (Some(g), false) = (&geometry, encapsulated) {
        let range = written.pixel_data.clone().ok_or_else(|| Error::PixelData {
            reason: "regions to burn but no native pixel data".into(),
        })?;
        report.burned_area = pixels::burn_native(&mut written.bytes[range], g, &plan)?;
    }
    if deflate {
        write::deflate_dataset(&mut written);
    }
    check_residual(report.ocr.as_mut(), || residual_dicom(&written.bytes, &terms, cfg, &mut readings))?;
    report.transfer_syntax_out = out_ts;
    Ok(Anonymized {
        bytes: written.bytes,
        report,
    })
}
