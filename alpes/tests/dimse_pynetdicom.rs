//! The DICOM listener with pynetdicom (3.0) as the calling AE: C-ECHO, a
//! rejected calling AE, one C-STORE per compressed transfer syntax proposed
//! alone (JPEG baseline and extended, JPEG lossless, JPEG-LS lossless and
//! near-lossless, JPEG 2000 lossless and lossy, RLE, deflated), the
//! association limit (the next association rejected as transient, local
//! limit exceeded) and DICOM TLS (an echo verified against the listener's
//! certificate, a plain association to the TLS port refused). The checks
//! live in `tests/dimse/pynetdicom_checks.py`.
//!
//! The interpreter comes from `ALPES_PYNETDICOM_PYTHON` (a venv with
//! pynetdicom; `.ci/run` makes one). Without it the test is skipped, loudly,
//! except under CI (`CI` set), where it fails.

mod common;

use alpes_platform::auth::Role;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const PROVIDER: &str = "hospital-pynetdicom";
const CALLING: &str = "PYNETDICOM";
const MAX_ASSOCIATIONS: usize = 3;
/// One file per compressed transfer syntax of the corpus.
const COMPRESSED: [&str; 9] = [
    "SC_rgb_jpeg_dcmtk.dcm",
    "JPGExtended.dcm",
    "SC_rgb_jpeg_gdcm.dcm",
    "MR_small_jpeg_ls_lossless.dcm",
    "JPEGLSNearLossless_08.dcm",
    "MR_small_jp2klossless.dcm",
    "JPEG2000.dcm",
    "MR_small_RLE.dcm",
    "image_dfl.dcm",
];

/// A self-signed certificate for 127.0.0.1 and its key, made by the openssl CLI in `dir`.
fn certificate(dir: &Path) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("dimse-cert.pem"), dir.join("dimse-key.pem"));
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=alpes-dimse-test",
        ])
        .args(["-addext", "subjectAltName=IP:127.0.0.1", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl runs");
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    (cert, key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pynetdicom_echoes_stores_every_compressed_syntax_meets_the_limits_and_speaks_tls() {
    let how = "python3 -m venv .venv-pynetdicom && .venv-pynetdicom/bin/pip install 'pynetdicom==3.0.4'\n    \
               ALPES_PYNETDICOM_PYTHON=.venv-pynetdicom/bin/python cargo test -p alpes --test dimse_pynetdicom";
    let value = std::env::var_os("ALPES_PYNETDICOM_PYTHON");
    let Some(python) = common::interpreter(value, "ALPES_PYNETDICOM_PYTHON", "dimse_pynetdicom", how) else {
        return;
    };
    let app = common::spawn_app_with(|s| s.dimse.max_associations = MAX_ASSOCIATIONS).await;
    let provider = app.token(PROVIDER, Role::Proveedor).await;
    common::map_calling_ae(&app, CALLING, PROVIDER).await;
    // The TLS listener: a second platform whose calling AE comes from the flag.
    let certs = tempfile::tempdir().expect("tmp");
    let (cert, key) = certificate(certs.path());
    let (tls_cert, tls_key) = (cert.clone(), key.clone());
    let tls = common::spawn_app_with(move |s| {
        s.dimse.tls_cert = Some(tls_cert);
        s.dimse.tls_key = Some(tls_key);
        s.dimse.calling_aes = vec![(CALLING.into(), PROVIDER.into())];
    })
    .await;
    tls.token(PROVIDER, Role::Proveedor).await;
    let (plain, secure) = (app.dimse.expect("listener"), tls.dimse.expect("listener"));
    let cfg = serde_json::json!({
        "host": plain.ip().to_string(),
        "port": plain.port(),
        "tls_port": secure.port(),
        "ca": cert,
        "ae": CALLING,
        "called": "ALPES",
        "fixtures": common::fixtures_dir(),
        "files": COMPRESSED,
        "max_associations": MAX_ASSOCIATIONS,
    });
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/dimse/pynetdicom_checks.py");
    let mut cmd = Command::new(python);
    cmd.arg(script).arg(cfg.to_string());
    let ran = tokio::task::spawn_blocking(move || common::run_with_limit(cmd, Duration::from_secs(300)))
        .await
        .expect("ran");
    assert_eq!(
        ran.status.map(|s| s.success()),
        Some(true),
        "pynetdicom checks failed:\n{}\n{}",
        ran.stdout,
        ran.stderr
    );
    println!("{}", ran.stdout);
    // Every compressed instance became an image of the provider with an outcome.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let page = app.get_json("/imagenes?limit=100", &provider).await;
        let images = page["imagenes"].as_array().cloned().unwrap_or_default();
        if images.len() == COMPRESSED.len() && images.iter().all(|i| i["estado"] != "registrada") {
            break;
        }
        assert!(Instant::now() < deadline, "{images:#?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tls.stop().await;
    app.stop().await;
}
