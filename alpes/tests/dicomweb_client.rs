//! The whole platform driven by the real Python DICOMweb client
//! (`dicomweb-client` 0.61, with pydicom): STOW-RS as a provider, QIDO-RS and
//! WADO-RS as a consumer, then the provider's balance. The checks live in
//! `tests/dicomweb/test_dicomweb_client.py`; this test spawns the platform
//! with CT priced apart from the default, makes the tokens and runs it.
//!
//! The interpreter comes from `ALPES_DICOMWEB_PYTHON` (a venv with
//! dicomweb-client installed; `.ci/run` makes one). Without it the test is
//! skipped, loudly, except under CI (`CI` set), where it fails.

mod common;

use alpes_platform::auth::Role;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const PROVIDER: &str = "hospital-dicomweb";
const CONSUMER: &str = "research-dicomweb";
/// The price of a CT download in this test, apart from the default (100).
const CT_PRICE: i64 = 250;
/// The most the Python side may take (it polls for up to 60 s per wait).
const SCRIPT_LIMIT: Duration = Duration::from_secs(600);

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_path_buf()
}

/// The interpreter to run, or `None` when the test should be skipped.
fn python() -> Option<PathBuf> {
    let how = "python3 -m venv .venv-dicomweb && .venv-dicomweb/bin/pip install 'dicomweb-client==0.61.*'\n    \
               ALPES_DICOMWEB_PYTHON=.venv-dicomweb/bin/python cargo test -p alpes --test dicomweb_client";
    common::interpreter(
        std::env::var_os("ALPES_DICOMWEB_PYTHON"),
        "ALPES_DICOMWEB_PYTHON",
        "dicomweb_client",
        how,
    )
}

/// The platform as `common::spawn_app` builds it, with CT priced at [`CT_PRICE`].
async fn spawn_priced_app() -> common::TestApp {
    common::spawn_app_with(|s| s.pricing.by_modality = vec![("CT".into(), CT_PRICE)]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_dicomweb_client_stores_searches_retrieves_and_is_billed() {
    let Some(python) = python() else {
        return;
    };
    let root = workspace_root();
    let script = root.join("alpes/tests/dicomweb/test_dicomweb_client.py");
    let fixture = common::fixtures_dir().join("CT_small.dcm");
    assert!(Path::new(&script).is_file(), "{} is missing", script.display());
    assert!(fixture.is_file(), "{} is missing", fixture.display());

    let app = spawn_priced_app().await;
    let mut cmd = Command::new(&python);
    cmd.current_dir(&root)
        .arg(&script)
        .arg("--base")
        .arg(&app.base)
        .arg("--provider-id")
        .arg(PROVIDER)
        .arg("--price")
        .arg(CT_PRICE.to_string())
        .arg("--fixture")
        .arg(&fixture)
        // Tokens through the environment, not the command line.
        .env("ALPES_PROVIDER_TOKEN", app.token(PROVIDER, Role::Proveedor).await)
        .env("ALPES_CONSUMER_TOKEN", app.consumer_token(CONSUMER).await)
        .env("PYTHONUNBUFFERED", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        // The server is on 127.0.0.1: keep any proxy of the environment out of the way.
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost");
    let ran = tokio::task::spawn_blocking(move || common::run_with_limit(cmd, SCRIPT_LIMIT))
        .await
        .expect("join the script runner");

    println!("--- {} {} stdout:\n{}", python.display(), script.display(), ran.stdout);
    println!("--- stderr:\n{}", ran.stderr);
    app.shutdown.trigger();
    app.task.await.expect("join").expect("clean stop");
    match ran.status {
        None => panic!(
            "the dicomweb-client script ran past {SCRIPT_LIMIT:?} and was killed; stderr:\n{}",
            ran.stderr
        ),
        Some(status) => assert!(
            status.success(),
            "the dicomweb-client script failed ({status}):\n{}",
            ran.stderr
                .lines()
                .filter(|l| l.starts_with("FAILED"))
                .collect::<Vec<_>>()
                .join("\n")
        ),
    }
    assert!(ran.stdout.contains("all checks passed"), "the script exited 0 without its summary");
}
