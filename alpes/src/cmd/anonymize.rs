//! `alpes anonymize`: de-identify files and directories offline on a rayon pool.

use alpes::secret;
use alpes_anonymizer::{anonymize_into, Config, Region, RuleLibrary, Secret};
use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use serde::Serialize;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Arguments of `alpes anonymize`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Key for pseudonyms (at least 16 bytes). Default: created once in the user's data directory.
    #[arg(long, env = "ALPES_SECRET_FILE")]
    secret_file: Option<PathBuf>,
    /// Rule library in RSNA CTP DicomPixelAnonymizer.script syntax (default: the shipped library).
    #[arg(long)]
    rules: Option<PathBuf>,
    /// A region x,y,w,h burned in every image (repeatable).
    #[arg(long = "region", value_name = "X,Y,W,H")]
    regions: Vec<String>,
    /// Retain option: safe-private, uids, device-identity, institution-identity,
    /// patient-characteristics, full-dates, modified-dates (repeatable).
    #[arg(long = "retain", value_name = "OPTION")]
    retain: Vec<String>,
    /// Turn a Clean option off: descriptors, structured-content, graphics, pixel-data (repeatable).
    #[arg(long = "no-clean", value_name = "OPTION")]
    no_clean: Vec<String>,
    /// Do not blank outside SequenceOfUltrasoundRegions.
    #[arg(long)]
    no_ultrasound_regions: bool,
    /// The burned-in text safety net (under Clean Pixel Data): all-text blanks every line of text
    /// it finds, phi only the lines that are or may be PHI, off runs nothing.
    #[arg(long, value_name = "MODE", default_value = "all-text", value_parser = clap::builder::PossibleValuesParser::new(alpes_anonymizer::ocr::OCR_MODES))]
    ocr: String,
    /// Stored pixel value written into burned regions.
    #[arg(long, default_value_t = 0)]
    fill: u16,
    /// Worker threads (default: one per core).
    #[arg(long)]
    jobs: Option<usize>,
    /// Bytes the files being de-identified at once may take together; each may inflate or decode
    /// to this divided by the jobs and by 3 (its peak), and is refused past it.
    #[arg(long, env = "ALPES_ENGINE_MEMORY", default_value_t = alpes_anonymizer::DEFAULT_ENGINE_MEMORY)]
    engine_memory: u64,
    /// Write one JSON report per input line to this file.
    #[arg(long, value_name = "FILE.jsonl")]
    report: Option<PathBuf>,
    /// Output directory; relative paths of the inputs are kept.
    #[arg(long)]
    out: PathBuf,
    /// Files or directories (searched recursively).
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
}

/// One input and the relative path its output takes.
#[derive(Debug)]
struct Job {
    path: PathBuf,
    rel: PathBuf,
}

#[derive(Serialize)]
struct Line<'a> {
    path: &'a str,
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    report: Option<&'a alpes_anonymizer::Report>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorLine>,
}

#[derive(Serialize)]
struct ErrorLine {
    code: &'static str,
    message: String,
}

fn collect(inputs: &[PathBuf]) -> Result<Vec<Job>> {
    let mut jobs = Vec::new();
    for input in inputs {
        let meta = std::fs::metadata(input).with_context(|| format!("cannot read {}", input.display()))?;
        if meta.is_dir() {
            for entry in walkdir::WalkDir::new(input).follow_links(true).sort_by_file_name() {
                let entry = entry.with_context(|| format!("cannot walk {}", input.display()))?;
                if entry.file_type().is_file() {
                    let rel = entry.path().strip_prefix(input).unwrap_or(entry.path()).to_path_buf();
                    jobs.push(Job {
                        path: entry.path().to_path_buf(),
                        rel,
                    });
                }
            }
        } else {
            let name = input.file_name().map(PathBuf::from).unwrap_or_else(|| input.clone());
            jobs.push(Job {
                path: input.clone(),
                rel: name,
            });
        }
    }
    Ok(jobs)
}

/// The engine settings; each input's decode limit shares `--engine-memory` among `threads`.
fn config(args: &Args, threads: usize) -> Result<Config> {
    let key = match &args.secret_file {
        Some(path) => secret::read(path)?,
        None => {
            let path = secret::default_path()?;
            let (key, created) = secret::load_or_create(&path)?;
            eprintln!("alpes: {} secret {}", if created { "created" } else { "using" }, path.display());
            key
        }
    };
    let options = alpes_anonymizer::requested::options(&args.retain, &args.no_clean)?;
    let mut cfg = Config::new(Secret::new(key)).within_memory(args.engine_memory, threads);
    cfg.options = options;
    cfg.fill = args.fill;
    cfg.ultrasound_regions = !args.no_ultrasound_regions;
    cfg.ocr = alpes_anonymizer::ocr::OcrMode::parse(&args.ocr).context("unknown --ocr mode")?;
    cfg.regions = args.regions.iter().map(|r| Region::parse(r)).collect::<Result<_, _>>()?;
    if let Some(path) = &args.rules {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read rules {}", path.display()))?;
        cfg.rules = Arc::new(RuleLibrary::parse(&text).with_context(|| format!("in {}", path.display()))?);
    }
    Ok(cfg)
}

thread_local! {
    /// Each worker keeps its input and output buffers: no fresh allocation (and page faults) per file.
    static BUFFERS: std::cell::RefCell<(Vec<u8>, Vec<u8>)> = const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
}

fn process(job: &Job, out_dir: &Path, cfg: &Config) -> Result<(u64, alpes_anonymizer::Report), (String, &'static str)> {
    BUFFERS.with_borrow_mut(|(input, output)| {
        input.clear();
        std::fs::File::open(&job.path)
            .and_then(|mut f| f.read_to_end(input))
            .map_err(|e| (format!("cannot read: {e}"), "io"))?;
        let report = anonymize_into(input, cfg, output).map_err(|e| (e.to_string(), e.code()))?;
        if report.ocr.as_ref().is_some_and(|f| !f.released()) {
            // As the worker holds such an image back, the command does not write it.
            return Err((
                "text that reads as PHI is still in the pixels after the safety net blanked them; not written".into(),
                alpes_anonymizer::ocr::RESIDUAL_TEXT,
            ));
        }
        write_output(out_dir, job, output)?;
        Ok((input.len() as u64, report))
    })
}

fn write_output(out_dir: &Path, job: &Job, bytes: &[u8]) -> Result<(), (String, &'static str)> {
    // Output directories were created up front by `run`.
    let dest = out_dir.join(&job.rel);
    let tmp = dest.with_extension("alpes-tmp");
    std::fs::write(&tmp, bytes)
        .and_then(|_| std::fs::rename(&tmp, &dest))
        .map_err(|e| (format!("cannot write output: {e}"), "io"))
}

/// Runs the command; the exit code is 1 if any file failed.
pub fn run(args: Args) -> Result<ExitCode> {
    // The pool first: the engine's memory is shared among the threads it really has.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.jobs.unwrap_or(0))
        .build()
        .context("cannot start worker pool")?;
    let cfg = config(&args, pool.current_num_threads())?;
    let jobs = collect(&args.inputs)?;
    let dirs: std::collections::BTreeSet<PathBuf> = jobs
        .iter()
        .filter_map(|j| args.out.join(&j.rel).parent().map(Path::to_path_buf))
        .collect();
    for dir in std::iter::once(&args.out).chain(&dirs) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let report = match &args.report {
        Some(p) => Some(Mutex::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("cannot create report {}", p.display()))?,
        ))),
        None => None,
    };
    let bar = if std::io::stderr().is_terminal() {
        ProgressBar::new(jobs.len() as u64)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} files {per_sec} eta {eta}").unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let started = Instant::now();
    let failures: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());
    let bytes: u64 = pool.install(|| {
        jobs.par_iter()
            .map(|job| {
                let outcome = process(job, &args.out, &cfg);
                let rel = job.rel.display().to_string();
                if let Some(w) = &report {
                    let line = match &outcome {
                        Ok((_, r)) => Line {
                            path: &rel,
                            ok: true,
                            report: Some(r),
                            error: None,
                        },
                        Err((message, code)) => Line {
                            path: &rel,
                            ok: false,
                            report: None,
                            error: Some(ErrorLine {
                                code,
                                message: message.clone(),
                            }),
                        },
                    };
                    if let (Ok(json), Ok(mut w)) = (serde_json::to_string(&line), w.lock()) {
                        let _ = writeln!(w, "{json}");
                    }
                }
                bar.inc(1);
                match outcome {
                    Ok((n, _)) => n,
                    Err((message, _)) => {
                        if let Ok(mut f) = failures.lock() {
                            f.push((rel, message));
                        }
                        0
                    }
                }
            })
            .sum()
    });
    bar.finish_and_clear();
    if let Some(w) = report {
        w.into_inner().map_err(|_| anyhow::anyhow!("report writer poisoned"))?.flush()?;
    }
    let secs = started.elapsed().as_secs_f64();
    let mut failures = failures.into_inner().unwrap_or_default();
    failures.sort();
    let ok = jobs.len() - failures.len();
    let mb = bytes as f64 / 1e6;
    eprintln!(
        "alpes: {ok} files ok, {} failed; {mb:.1} MB in {secs:.2} s ({:.1} MB/s, {:.0} files/s)",
        failures.len(),
        if secs > 0.0 { mb / secs } else { 0.0 },
        if secs > 0.0 { ok as f64 / secs } else { 0.0 }
    );
    for (path, reason) in &failures {
        eprintln!("  failed {path}: {reason}");
    }
    Ok(if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
