//! Embeds the built console (`dist/`, committed; see `web/README.md`) in the crate: a table of
//! every file under it, sorted by path, each `include_bytes!`d. A missing or empty `dist/`
//! fails the build with what to run.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            files(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let dist = root.join("dist");
    println!("cargo:rerun-if-changed=dist");
    let mut found = Vec::new();
    files(&dist, &mut found);
    assert!(
        found.iter().any(|p| p.ends_with("index.html")),
        "console/dist has no index.html: run `npm ci && npm run build` in console/web"
    );
    found.sort();
    let mut table = String::from("/// Every file of the built console: its path under `dist/` and its bytes.\n");
    table.push_str("pub(crate) static FILES: &[(&str, &[u8])] = &[\n");
    for path in &found {
        let rel = path.strip_prefix(&dist).expect("under dist").to_str().expect("a UTF-8 path");
        let rel = rel.replace(std::path::MAIN_SEPARATOR, "/");
        writeln!(table, "    ({rel:?}, include_bytes!({:?})),", path.display().to_string()).expect("writes");
    }
    table.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("files.rs");
    std::fs::write(out, table).expect("writes the table");
}
