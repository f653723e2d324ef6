//! Inputs the fuzzer found that once crashed the engine; each must now give a typed error or succeed.

mod common;

use alpes_anonymizer::{anonymize, Region};

#[test]
fn fuzzer_findings_no_longer_panic() {
    let dir = common::fixtures().join("../fuzz");
    let mut cfg = common::config();
    // Fuzzer findings plus the review's crafted inputs (odd-width 4:2:2, non-ASCII dates,
    // overflowing ultrasound regions, packed 1-bit frames, big-endian UN sequences).
    for (regions, dates) in [
        (vec![], false),
        (vec![Region { x: 0, y: 0, w: 8, h: 8 }], false),
        (vec![Region { x: 0, y: 0, w: 3, h: 3 }], true),
    ] {
        cfg.regions = regions;
        if dates {
            cfg.options.retain("modified-dates");
        }
        for entry in std::fs::read_dir(&dir).expect("fuzz fixtures") {
            let path = entry.expect("entry").path();
            let input = std::fs::read(&path).expect("read");
            let outcome = std::panic::catch_unwind(|| anonymize(&input, &cfg).map(|_| ()));
            assert!(outcome.is_ok(), "{} panicked", path.display());
        }
    }
}

#[test]
fn a_jpeg_frame_larger_than_its_attributes_is_a_pixel_decode_error() {
    let input = std::fs::read(common::fixtures().join("../fuzz/jpeg-larger-than-attributes.dcm")).expect("read");
    let mut cfg = common::config();
    cfg.regions = vec![Region { x: 0, y: 0, w: 8, h: 8 }];
    let err = anonymize(&input, &cfg).expect_err("must be refused");
    assert_eq!(err.code(), "pixel_decode", "{err}");
}
