//! Fuzzes the whole engine: `alpes_anonymizer::anonymize` on arbitrary bytes,
//! once with the default configuration (no profile regions) and once with an
//! 8x8 profile region so the pixel burn path (native, RLE, JPEG / JPEG 2000 /
//! JPEG-LS decode, PNG / JPEG raster) runs too. Results are ignored: a typed
//! error is a fine answer. Failures are panics escaping `anonymize`, aborts,
//! sanitizer reports, timeouts and out-of-memory.
//!
//! Panics: libfuzzer-sys installs a hook that aborts on *every* panic, even one
//! the engine catches itself (it wraps third-party codecs in `catch_unwind` and
//! turns their panics into a typed error). By default this target replaces that
//! hook: a panic is printed (with backtrace) and the input that caused it is
//! saved once per panic location as `artifacts/engine/caught-panic-*`; if the
//! panic then escapes `anonymize`, libfuzzer-sys aborts and libFuzzer writes the
//! usual `crash-*` artifact. Set `ALPES_FUZZ_STRICT_PANICS=1` to keep
//! libfuzzer-sys' behaviour (any panic, caught or not, is a crash).
#![no_main]

use alpes_anonymizer::{anonymize, Config, Region, Secret};
use libfuzzer_sys::fuzz_target;
use std::collections::hash_map::DefaultHasher;
use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::sync::{Mutex, OnceLock};

/// The input being run, for the panic hook (rayon workers have no other way to it).
static CURRENT: Mutex<Vec<u8>> = Mutex::new(Vec::new());
/// Panic locations already saved.
static SEEN: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();

fn install_hook() {
    if std::env::var_os("ALPES_FUZZ_STRICT_PANICS").is_some_and(|v| v == "1") {
        return;
    }
    let _libfuzzer_hook = std::panic::take_hook(); // the abort-on-any-panic hook
    let default_hook = std::panic::take_hook(); // std's printing hook
    std::panic::set_hook(Box::new(move |info| {
        default_hook(info);
        let location = info.location().map_or_else(|| "unknown".to_owned(), |l| format!("{}:{}", l.file(), l.line()));
        let first = SEEN.get_or_init(Default::default).lock().map(|mut s| s.insert(location.clone())).unwrap_or(false);
        if !first {
            return;
        }
        let Ok(input) = CURRENT.try_lock().map(|v| v.clone()) else { return };
        let mut h = DefaultHasher::new();
        input.hash(&mut h);
        let short: String = location.rsplit('/').next().unwrap_or("").chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
        let dir = std::env::var("ALPES_FUZZ_PANIC_DIR").unwrap_or_else(|_| "artifacts/engine".to_owned());
        let path = format!("{dir}/caught-panic-{short}-{:016x}", h.finish());
        if std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, &input)).is_ok() {
            eprintln!("alpes-fuzz: panic at {location}; input saved to {path}");
        }
    }));
}

fn configs() -> &'static (Config, Config) {
    static CONFIGS: OnceLock<(Config, Config)> = OnceLock::new();
    CONFIGS.get_or_init(|| {
        install_hook();
        let plain = Config::new(Secret::new(b"fuzz-secret-0123456789".to_vec()));
        let mut burn = Config::new(Secret::new(b"fuzz-secret-0123456789".to_vec()));
        burn.regions = vec![Region { x: 0, y: 0, w: 8, h: 8 }];
        (plain, burn)
    })
}

fuzz_target!(|data: &[u8]| {
    let (plain, burn) = configs();
    if let Ok(mut current) = CURRENT.lock() {
        current.clear();
        current.extend_from_slice(data);
    }
    let _ = anonymize(data, plain);
    let _ = anonymize(data, burn);
});
