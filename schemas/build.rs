//! Embeds every superseded schema version under `avro/history/` into the crate, so data written
//! with an old schema still decodes; a file added there is picked up without touching the code.

use std::{env, fs, path::Path};

fn main() {
    let dir = Path::new(&env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR")).join("avro/history");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files: Vec<_> = fs::read_dir(&dir)
        .expect("avro/history is readable")
        .map(|entry| entry.expect("avro/history entry is readable").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "avsc"))
        .collect();
    files.sort();
    let mut out = String::from("/// Superseded schema versions: (file name, JSON text).\npub(crate) const HISTORY: &[(&str, &str)] = &[\n");
    for path in &files {
        let name = path.file_name().and_then(|n| n.to_str()).expect("history file names are UTF-8");
        out.push_str(&format!("    ({name:?}, include_str!({:?})),\n", path.display().to_string()));
    }
    out.push_str("];\n");
    let target = Path::new(&env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("history.rs");
    fs::write(target, out).expect("OUT_DIR is writable");
}
