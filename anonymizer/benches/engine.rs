//! Criterion benches for the engine:
//!
//! - `engine/syntax/<syntax>/<file>`: one per transfer syntax the engine reads
//!   (every native syntax, deflate, RLE, JPEG, JPEG-LS, JPEG 2000, and a bare
//!   dataset without file meta);
//! - `engine/modality/<modality>/<file>`: one per modality among the fixtures;
//! - `engine/format/<png|jpeg>/<no_region|with_region>`: the plain image
//!   inputs, a 512×512 grey gradient;
//! - `burn_out_native`: burn-out on native pixel data, to measure its overhead;
//! - `burn_out_encapsulated`: burn-out on encapsulated pixel data, which
//!   decodes, burns and re-encodes (or writes native) every frame.
//!
//! Every input is a real DICOM file from `tests/fixtures/dicom` (pydicom's test
//! set, see `LICENSE-pydicom.txt` there), read into memory once, so a fresh
//! clone runs these without `../shared`; the PNG and JPEG inputs are synthetic
//! gradients made here. Throughput is the input size in bytes, so files with
//! large native pixel data show very high figures. Each input is de-identified
//! once before it is timed and must succeed, so no bench times an error path.
//! The fixtures hold no XA, CR, DX, MG or PT file, so those modalities have no
//! bench.
//!
//! `cargo bench --workspace --bench engine` (`-- --quick` for a short run);
//! `cargo test --workspace --all-targets` runs each bench once as a smoke check.

use alpes_anonymizer::{anonymize, Config, Region, Secret};
use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use std::path::PathBuf;

/// One fixture per transfer syntax: (syntax name, UID, file). The MR_small
/// files are one image in six syntaxes, so those rows compare like with like.
const SYNTAXES: &[(&str, &str, &str)] = &[
    ("implicit-vr-le", "1.2.840.10008.1.2", "MR_small_implicit.dcm"),
    ("explicit-vr-le", "1.2.840.10008.1.2.1", "CT_small.dcm"),
    ("explicit-vr-le", "1.2.840.10008.1.2.1", "MR_small.dcm"),
    ("deflated-explicit-vr-le", "1.2.840.10008.1.2.1.99", "image_dfl.dcm"),
    ("explicit-vr-be", "1.2.840.10008.1.2.2", "MR_small_bigendian.dcm"),
    ("jpeg-baseline", "1.2.840.10008.1.2.4.50", "SC_rgb_jpeg_dcmtk.dcm"),
    ("jpeg-extended", "1.2.840.10008.1.2.4.51", "JPGExtended.dcm"),
    ("jpeg-lossless-sv1", "1.2.840.10008.1.2.4.70", "SC_rgb_jpeg_gdcm.dcm"),
    ("jpeg-ls-lossless", "1.2.840.10008.1.2.4.80", "MR_small_jpeg_ls_lossless.dcm"),
    ("jpeg-ls-near-lossless", "1.2.840.10008.1.2.4.81", "JPEGLSNearLossless_16.dcm"),
    ("jpeg-2000-lossless", "1.2.840.10008.1.2.4.90", "MR_small_jp2klossless.dcm"),
    ("jpeg-2000", "1.2.840.10008.1.2.4.91", "JPEG2000.dcm"),
    ("rle-lossless", "1.2.840.10008.1.2.5", "MR_small_RLE.dcm"),
    // A bare dataset without the file meta header: the engine guesses the encoding.
    ("no-file-meta", "", "no_meta.dcm"),
];

/// One fixture per modality (the Modality attribute), in native pixel data
/// where the fixtures have it: (modality, file).
const MODALITIES: &[(&str, &str)] = &[
    ("CT", "CT_small.dcm"),
    ("MR", "MR_small.dcm"),
    ("US", "examples_rgb_color.dcm"),
    // Blanked outside its SequenceOfUltrasoundRegions.
    ("US", "examples_palette.dcm"),
    ("NM", "JPEG-lossy.dcm"),
    ("OT", "SC_ybr_full_422_uncompressed.dcm"),
    ("SEG", "liver_1frame.dcm"),
    ("SR", "test-SR.dcm"),
    ("ECG", "waveform_ecg.dcm"),
    ("RTDOSE", "rtdose.dcm"),
    ("RTPLAN", "rtplan.dcm"),
    ("RTSTRUCT", "rtstruct.dcm"),
];

/// Encapsulated fixtures burned in `burn_out_encapsulated`: (syntax name, file).
const ENCAPSULATED: &[(&str, &str)] = &[
    ("jpeg-baseline", "SC_rgb_jpeg_dcmtk.dcm"),
    ("jpeg-lossless-sv1", "SC_rgb_jpeg_gdcm.dcm"),
    ("jpeg-ls-lossless", "MR_small_jpeg_ls_lossless.dcm"),
    ("jpeg-2000-lossless", "MR_small_jp2klossless.dcm"),
    ("jpeg-2000", "JPEG2000.dcm"),
    ("rle-lossless", "MR_small_RLE.dcm"),
];

/// The region burned where a bench burns one (a typical top banner).
const REGION: Region = Region { x: 0, y: 0, w: 128, h: 24 };

fn config() -> Config {
    Config::new(Secret::new(b"bench-secret-0123456789abcdef".to_vec()))
}

fn burning() -> Config {
    let mut cfg = config();
    cfg.regions = vec![REGION];
    cfg
}

/// The bytes of a fixture; a missing one is a broken checkout, not a skipped bench.
fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dicom").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

/// Times `anonymize(input, cfg)` as `<function>/<parameter>` in `group`, after checking that it
/// succeeds (and burns something where `cfg` has regions).
fn bench_one(group: &mut BenchmarkGroup<'_, WallTime>, function: &str, parameter: &str, input: &[u8], cfg: &Config) {
    let id = format!("{function}/{parameter}");
    match anonymize(input, cfg) {
        Err(e) => panic!("{id}: the engine refuses this input: {e}"),
        Ok(a) => assert!(
            cfg.regions.is_empty() || a.report.burned_area > 0,
            "{id}: a region was asked for and nothing was burned"
        ),
    }
    group.throughput(Throughput::Bytes(input.len() as u64));
    group.bench_with_input(BenchmarkId::new(function, parameter), input, |b, input| {
        b.iter(|| anonymize(black_box(input), cfg))
    });
}

fn bench_syntaxes(c: &mut Criterion) {
    let cfg = config();
    let mut group = c.benchmark_group("engine/syntax");
    for (syntax, uid, name) in SYNTAXES {
        let input = fixture(name);
        if !uid.is_empty() {
            let report = anonymize(&input, &cfg).map(|a| a.report.transfer_syntax_in);
            assert!(
                report.as_ref().is_ok_and(|ts| ts.trim_end_matches(['\0', ' ']) == *uid),
                "{name} should be {syntax} ({uid}), the engine read {report:?}"
            );
        }
        bench_one(&mut group, syntax, name, &input, &cfg);
    }
    group.finish();
}

fn bench_modalities(c: &mut Criterion) {
    let cfg = config();
    let mut group = c.benchmark_group("engine/modality");
    for (modality, name) in MODALITIES {
        bench_one(&mut group, modality, name, &fixture(name), &cfg);
    }
    group.finish();
}

/// A 512×512 8-bit grey gradient (no text, no metadata).
fn gradient() -> Vec<u8> {
    (0..512u32 * 512).map(|i| ((i % 512 + i / 512) / 4) as u8).collect()
}

fn png_input() -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, 512, 512);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().expect("png header");
    writer.write_image_data(&gradient()).expect("png data");
    writer.finish().expect("png end");
    out
}

fn jpeg_input() -> Vec<u8> {
    let mut out = Vec::new();
    jpeg_encoder::Encoder::new(&mut out, 90)
        .encode(&gradient(), 512, 512, jpeg_encoder::ColorType::Luma)
        .expect("jpeg");
    out
}

fn bench_formats(c: &mut Criterion) {
    let (plain, burning) = (config(), burning());
    let mut group = c.benchmark_group("engine/format");
    for (format, input) in [("png", png_input()), ("jpeg", jpeg_input())] {
        bench_one(&mut group, format, "no_region", &input, &plain);
        bench_one(&mut group, format, "with_region", &input, &burning);
    }
    group.finish();
}

fn bench_burn_out(c: &mut Criterion) {
    let (plain, burning) = (config(), burning());
    let mut group = c.benchmark_group("burn_out_native");
    for name in ["CT_small.dcm", "examples_rgb_color.dcm", "rtdose.dcm"] {
        let input = fixture(name);
        bench_one(&mut group, "header_only", name, &input, &plain);
        bench_one(&mut group, "with_region", name, &input, &burning);
    }
    group.finish();
}

fn bench_burn_out_encapsulated(c: &mut Criterion) {
    let (plain, burning) = (config(), burning());
    let mut group = c.benchmark_group("burn_out_encapsulated");
    for (syntax, name) in ENCAPSULATED {
        let input = fixture(name);
        bench_one(&mut group, &format!("header_only/{syntax}"), name, &input, &plain);
        bench_one(&mut group, &format!("with_region/{syntax}"), name, &input, &burning);
    }
    group.finish();
}

criterion_group!(
    benches,
    bench_syntaxes,
    bench_modalities,
    bench_formats,
    bench_burn_out,
    bench_burn_out_encapsulated
);
criterion_main!(benches);
