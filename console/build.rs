//! Embeds the built console (`dist/`, committed; see `web/README.md`) in the crate: a table of
//! every file under it, sorted by path, each `include_bytes!`d, with a gzip copy of those worth
//! compressing (scripts, styles, the page, WebAssembly), made here once so that no request pays
//! for it. A missing or empty `dist/` fails the build with what to run.

use flate2::write::GzEncoder;
use flate2::Compression;
use std::fmt::Write as _;
use std::io::Write as _;
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

/// Whether a file of this name gains from gzip (text and WebAssembly; not images).
fn compressible(name: &str) -> bool {
    [".js", ".mjs", ".css", ".html", ".json", ".svg", ".wasm"]
        .iter()
        .any(|ext| name.ends_with(ext))
}

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    let dist = root.join("dist");
    println!("cargo:rerun-if-changed=dist");
    let mut found = Vec::new();
    files(&dist, &mut found);
    assert!(
        found.iter().any(|p| p.ends_with("index.html")),
        "console/dist has no index.html: run `npm ci && npm run build` in console/web"
    );
    found.sort();
    let mut table = String::from("/// Every file of the built console.\n");
    table.push_str("pub(super) static FILES: &[Built] = &[\n");
    for (i, path) in found.iter().enumerate() {
        let rel = path.strip_prefix(&dist).expect("under dist").to_str().expect("a UTF-8 path");
        let rel = rel.replace(std::path::MAIN_SEPARATOR, "/");
        let gz = if compressible(&rel) {
            let bytes = std::fs::read(path).expect("reads a built file");
            let mut enc = GzEncoder::new(Vec::new(), Compression::best());
            enc.write_all(&bytes).expect("compresses");
            let gz_path = out.join(format!("{i}.gz"));
            std::fs::write(&gz_path, enc.finish().expect("compresses")).expect("writes the gzip copy");
            format!("Some(include_bytes!({:?}))", gz_path.display().to_string())
        } else {
            "None".to_owned()
        };
        writeln!(
            table,
            "    Built {{ path: {rel:?}, bytes: include_bytes!({:?}), gzip: {gz} }},",
            path.display().to_string()
        )
        .expect("writes");
    }
    table.push_str("];\n");
    std::fs::write(out.join("files.rs"), table).expect("writes the table");
}
