//! `alpes anonymize` end to end: recursion, relative paths, report lines, exit status, secret handling.

use std::path::{Path, PathBuf};
use std::process::Command;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../anonymizer/tests/fixtures/dicom")
}

fn alpes(args: &[&str], data_home: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_alpes"))
        .args(args)
        .env("XDG_DATA_HOME", data_home)
        .env_remove("ALPES_SECRET_FILE")
        .output()
        .expect("run alpes")
}

#[test]
fn a_directory_tree_is_anonymized_with_relative_paths_kept() {
    let tmp = tempfile::tempdir().expect("tmp");
    let input = tmp.path().join("in");
    std::fs::create_dir_all(input.join("study/series")).expect("mkdir");
    for name in ["CT_small.dcm", "MR_small.dcm"] {
        std::fs::copy(fixtures().join(name), input.join("study/series").join(name)).expect("copy");
    }
    let out = tmp.path().join("out");
    let report = tmp.path().join("report.jsonl");
    let run = alpes(
        &[
            "anonymize",
            "--report",
            report.to_str().expect("utf8"),
            "--out",
            out.to_str().expect("utf8"),
            input.to_str().expect("utf8"),
        ],
        tmp.path(),
    );
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(out.join("study/series/CT_small.dcm").is_file());
    assert!(out.join("study/series/MR_small.dcm").is_file());
    assert!(stderr.contains("2 files ok, 0 failed"), "{stderr}");
    assert!(stderr.contains("created secret"), "{stderr}");
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&report)
        .expect("report")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 2);
    assert!(lines
        .iter()
        .all(|l| l["ok"] == true && l["report"]["uids_remapped"].as_u64().unwrap_or(0) > 0));
    // The created secret is reused: a second run gives identical bytes.
    let out2 = tmp.path().join("out2");
    let run = alpes(
        &["anonymize", "--out", out2.to_str().expect("utf8"), input.to_str().expect("utf8")],
        tmp.path(),
    );
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(stderr.contains("using secret"), "{stderr}");
    assert_eq!(
        std::fs::read(out.join("study/series/CT_small.dcm")).ok(),
        std::fs::read(out2.join("study/series/CT_small.dcm")).ok()
    );
}

#[test]
fn any_failed_file_makes_the_exit_status_non_zero_and_is_listed_with_its_reason() {
    let tmp = tempfile::tempdir().expect("tmp");
    let secret = tmp.path().join("k");
    std::fs::write(&secret, "0123456789abcdef0123456789abcdef").expect("secret");
    let good = fixtures().join("CT_small.dcm");
    let bad = fixtures().join("MR_truncated.dcm");
    let out = tmp.path().join("out");
    let run = alpes(
        &[
            "anonymize",
            "--secret-file",
            secret.to_str().expect("utf8"),
            "--out",
            out.to_str().expect("utf8"),
            good.to_str().expect("utf8"),
            bad.to_str().expect("utf8"),
        ],
        tmp.path(),
    );
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("1 files ok, 1 failed"), "{stderr}");
    assert!(stderr.contains("failed MR_truncated.dcm: truncated input"), "{stderr}");
    assert!(!out.join("MR_truncated.dcm").exists());
}

#[test]
fn bad_options_are_a_usage_error() {
    let tmp = tempfile::tempdir().expect("tmp");
    let run = alpes(
        &[
            "anonymize",
            "--retain",
            "everything",
            "--out",
            "x",
            fixtures().join("CT_small.dcm").to_str().expect("utf8"),
        ],
        tmp.path(),
    );
    assert_eq!(run.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&run.stderr).contains("unknown retain option"));
    let run = alpes(
        &[
            "anonymize",
            "--region",
            "1,2,3",
            "--out",
            "x",
            fixtures().join("CT_small.dcm").to_str().expect("utf8"),
        ],
        tmp.path(),
    );
    assert_eq!(run.status.code(), Some(2));
}
