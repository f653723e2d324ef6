//! Criterion benches for the engine: one per transfer syntax and modality, plus
//! burn-out on native pixel data to measure its overhead.
//!
//! `cargo bench -p alpes-anonymizer --bench engine`

use alpes_anonymizer::{anonymize, Config, Region, Secret};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::path::PathBuf;

const FILES: &[(&str, &str)] = &[
    ("CT_small.dcm", "CT explicit LE 16-bit"),
    ("MR_small_implicit.dcm", "MR implicit LE"),
    ("MR_small_bigendian.dcm", "MR explicit BE"),
    ("image_dfl.dcm", "deflated explicit LE"),
    ("MR_small_RLE.dcm", "MR RLE"),
    ("JPEG2000.dcm", "JPEG 2000"),
    ("SC_rgb_jpeg_gdcm.dcm", "SC RGB JPEG baseline"),
    ("MR_small_jpeg_ls_lossless.dcm", "MR JPEG-LS lossless"),
    ("examples_palette.dcm", "US palette 800x350"),
    ("rtdose.dcm", "RT dose multi-frame"),
    ("examples_rgb_color.dcm", "US RGB 800x600"),
];

fn fixture(name: &str) -> Option<Vec<u8>> {
    std::fs::read(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dicom").join(name)).ok()
}

fn bench_syntaxes(c: &mut Criterion) {
    let cfg = Config::new(Secret::new(b"bench-secret-0123456789abcdef".to_vec()));
    let mut group = c.benchmark_group("anonymize");
    for (name, label) in FILES {
        let Some(input) = fixture(name) else { continue };
        group.throughput(Throughput::Bytes(input.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(label), &input, |b, input| {
            b.iter(|| anonymize(input, &cfg))
        });
    }
    group.finish();
}

fn bench_burn_out(c: &mut Criterion) {
    let plain = Config::new(Secret::new(b"bench-secret-0123456789abcdef".to_vec()));
    let mut burning = plain.clone();
    burning.regions = vec![Region { x: 0, y: 0, w: 128, h: 24 }];
    let mut group = c.benchmark_group("burn_out_native");
    for name in ["CT_small.dcm", "examples_rgb_color.dcm", "rtdose.dcm"] {
        let Some(input) = fixture(name) else { continue };
        group.throughput(Throughput::Bytes(input.len() as u64));
        group.bench_with_input(BenchmarkId::new("header_only", name), &input, |b, input| {
            b.iter(|| anonymize(input, &plain))
        });
        group.bench_with_input(BenchmarkId::new("with_region", name), &input, |b, input| {
            b.iter(|| anonymize(input, &burning))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_syntaxes, bench_burn_out);
criterion_main!(benches);
