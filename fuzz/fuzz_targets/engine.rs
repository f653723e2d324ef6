//! Fuzzes the whole engine: `alpes_anonymizer::anonymize` on arbitrary bytes,
//! once with the default configuration (no profile regions) and once with an
//! 8x8 profile region so the pixel burn path (native, RLE, JPEG / JPEG 2000 /
//! JPEG-LS decode, PNG / JPEG raster) runs too. Results are ignored; the only
//! failures are panics, aborts, timeouts and out-of-memory.
#![no_main]

use alpes_anonymizer::{anonymize, Config, Region, Secret};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn configs() -> &'static (Config, Config) {
    static CONFIGS: OnceLock<(Config, Config)> = OnceLock::new();
    CONFIGS.get_or_init(|| {
        let plain = Config::new(Secret::new(b"fuzz-secret-0123456789".to_vec()));
        let mut burn = Config::new(Secret::new(b"fuzz-secret-0123456789".to_vec()));
        burn.regions = vec![Region { x: 0, y: 0, w: 8, h: 8 }];
        (plain, burn)
    })
}

fuzz_target!(|data: &[u8]| {
    let (plain, burn) = configs();
    let _ = anonymize(data, plain);
    let _ = anonymize(data, burn);
});
