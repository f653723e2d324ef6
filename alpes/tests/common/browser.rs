//! Headless Chromium for the browser tests (the dwv viewer, the web console): Debian's package,
//! named by `ALPES_CHROMIUM`, and the npm packages a test's page or script needs. Without them
//! a test is skipped, loudly, except under CI, where it fails, unless `.ci/run` could not
//! install Chromium and said why in `ALPES_CHROMIUM_MISSING`.

use std::io::Write;
use std::path::{Path, PathBuf};

fn skip(test: &str, msg: &str, how: &str) {
    let under_ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty());
    let missing = std::env::var("ALPES_CHROMIUM_MISSING").unwrap_or_default();
    assert!(!under_ci || !missing.is_empty(), "{msg}, but CI is set: .ci/run must provide it");
    let why = if missing.is_empty() {
        String::new()
    } else {
        format!(" ({missing})")
    };
    let msg = format!("SKIPPED {test}: {msg}{why}. To run it: apt-get install chromium; {how}");
    // Straight to stderr as well: libtest captures the output of a passing test.
    let _ = writeln!(std::io::stderr(), "\n*** {msg}\n");
    println!("\n*** {msg}\n");
}

/// Chromium, or `None` (after saying why) when `test` cannot run here: `ALPES_CHROMIUM` is
/// unset, or `installed` (a file `npm ci` puts in place) is missing; `how` says how to run it.
pub fn chromium(test: &str, installed: &Path, how: &str) -> Option<PathBuf> {
    let Some(chromium) = std::env::var_os("ALPES_CHROMIUM").filter(|v| !v.is_empty()) else {
        skip(test, "ALPES_CHROMIUM is not set", how);
        return None;
    };
    if !installed.is_file() {
        skip(test, &format!("{} is missing (npm ci)", installed.display()), how);
        return None;
    }
    Some(PathBuf::from(chromium))
}

/// Distinct grey levels and the share of lit (non-black) pixels in the top left `side` × `side`
/// pixels of a screenshot (its image area): a blank or a failed render has few levels.
pub fn image_area(png_bytes: &[u8], side: u32) -> (usize, f64) {
    let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    let mut reader = decoder.read_info().expect("png header");
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).expect("png frame");
    let channels = info.color_type.samples();
    let (w, h) = (info.width.min(side), info.height.min(side));
    let mut levels = std::collections::BTreeSet::new();
    let mut lit = 0u64;
    for y in 0..h {
        for x in 0..w {
            let grey = buf[(y as usize * info.width as usize + x as usize) * channels];
            levels.insert(grey);
            if grey > 8 {
                lit += 1;
            }
        }
    }
    (levels.len(), lit as f64 / f64::from(w * h))
}
