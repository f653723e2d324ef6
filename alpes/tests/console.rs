//! The web console, end to end in headless Chromium: `console/web/e2e/walk.mjs` (Playwright,
//! pinned in `console/web/package-lock.json`) drives the console `alpes` serves at `/`, as a
//! provider, a consumer and an admin with real accounts and passwords:
//!
//! 0. the login screen switches to English and back, and an account locked by failed logins is
//!    told so;
//! 1. the provider logs in (a refused access token is refreshed once, with rotation), uploads a
//!    folder of DICOM files (a subfolder and a hidden file included: the hidden one is left out),
//!    sees each file's progress and then every image anonymized, drops one more file on the drop
//!    zone and sees it anonymized too; after its logout the session it had is refused (the
//!    console says it ended, even when the page paints late: the refusal then comes before the
//!    page's first effects);
//! 2. the consumer finds the images, sees the price and downloads one (a DICOM file), then opens
//!    the CT in the viewer (Cornerstone3D over WADO-RS): the image area shows the CT (many grey
//!    levels, not a blank), window/level changes it, and a length measurement reads in mm;
//! 3. the provider's balance rises on screen, its PDF de-identification report is made and
//!    downloaded, and it sees its own calling AE title (not another provider's);
//! 4. an admin finds the download in the audit trail, pays the provider (whose balance then shows
//!    it paid), and opens every admin screen (users and API keys, payments, institutions, AE
//!    titles, reports, imports, health and metrics);
//! 5. a doctor validates their patient's consent, then the admin validates it for the
//!    institution, each seeing the new state on screen.
//!
//! The script also runs axe-core on every main screen (no serious or critical violation) and
//! fails on any Content-Security-Policy violation the browser reports but the one it is known to
//! make (a style attribute on the viewer's measurement labels). Its screenshots go to
//! `ALPES_CONSOLE_SHOTS` when set (the README's come from `docs/screenshots`), else to a
//! temporary directory, and must each be a real picture.
//!
//! Chromium and the npm packages: see [`common::browser`].

mod common;

use alpes_platform::auth::Role;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const PASSWORD: &str = "correct horse battery staple";
/// The files of the uploaded folder, by where they go in it.
const FOLDER: [(&str, &str); 4] = [
    ("CT_small.dcm", "estudio/CT_small.dcm"),
    ("MR_small.dcm", "estudio/MR_small.dcm"),
    ("MR_small_RLE.dcm", "estudio/serie-2/MR_small_RLE.dcm"),
    ("MR_small_implicit.dcm", "estudio/serie-2/MR_small_implicit.dcm"),
];
const SCREENS: [&str; 11] = [
    "login",
    "provider-upload",
    "provider-images",
    "consumer-search",
    "consumer-viewer",
    "provider-balance",
    "admin-audit",
    "admin-users",
    "admin-health",
    "provider-reports",
    "doctor-patients",
];
/// The most the walk may take.
const LIMIT: Duration = Duration::from_secs(300);

fn web_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../console/web")
}

/// Registers an account with a password (an admin's needs an admin's token); its id.
async fn register(app: &common::TestApp, email: &str, rol: &str, admin: Option<&str>) -> String {
    let body = serde_json::json!({ "nombre": email, "email": email, "password": PASSWORD, "rol": rol });
    let (status, body) = app.post_json("/usuarios", admin, body).await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().expect("id").to_owned()
}

/// An institution, its doctor (who logs in with a password) and a patient of theirs, pending.
async fn patient_of_a_doctor(app: &common::TestApp, admin: &str) {
    let post = |path: &'static str, body: serde_json::Value| async move {
        let (status, body) = app.post_json(path, Some(admin), body).await;
        assert_eq!(status, 201, "{path}: {body}");
        body["id"].as_str().expect("id").to_owned()
    };
    let institution = post(
        "/instituciones",
        serde_json::json!({"nombre": "Hospital Console", "tipo": "hospital", "licencia": "LIC-CONSOLE-1", "email": "inst@hospital.example"}),
    )
    .await;
    let doctor = post(
        "/medicos",
        serde_json::json!({"nombre": "Dra. Vidal", "email": "vidal@hospital.example", "password": PASSWORD, "licencia": "MED-CONSOLE-1", "institucion_id": institution, "especialidad": "radiologia"}),
    )
    .await;
    post(
        "/pacientes",
        serde_json::json!({"nombre": "Paciente Uno", "email": "p1@patients.example", "id_paciente": "MRN-CONSOLE-1", "institucion_id": institution, "medico_id": doctor}),
    )
    .await;
}

fn folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tmp");
    for (fixture, at) in FOLDER {
        let to = dir.path().join(at);
        std::fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
        std::fs::copy(common::fixtures_dir().join(fixture), to).expect("copy");
    }
    std::fs::write(dir.path().join("estudio/.DS_Store"), b"not an image").expect("hidden file");
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_a_consumer_and_an_admin_walk_through_the_console_in_chromium() {
    let Some(chromium) = common::browser::chromium(
        "console",
        &web_dir().join("node_modules/playwright-core/package.json"),
        "npm ci --prefix console/web; ALPES_CHROMIUM=/usr/bin/chromium cargo test -p alpes --test console",
    ) else {
        return;
    };
    let app = common::spawn_app().await;
    app.ready().await;
    let provider = register(&app, "datos@hospital.example", "proveedor", None).await;
    let locked = register(&app, "locked@hospital.example", "proveedor", None).await;
    common::map_calling_ae(&app, "CONSOLE_SCU", &provider).await;
    common::map_calling_ae(&app, "OTHER_SCU", &locked).await;
    let lab = register(&app, "lab@research.example", "consumidor", None).await;
    app.ledger.set_terms(common::approved(&lab)).await.expect("approve the consumer");
    let root = app.token("console-root", Role::Admin).await;
    register(&app, "ops@alpes.example", "admin", Some(&root)).await;
    patient_of_a_doctor(&app, &root).await;

    let lockout = alpes_ingest::identity::IdentityArgs::default().lockout_failures;
    let folder = folder();
    let tmp_shots = tempfile::tempdir().expect("tmp");
    // A relative ALPES_CONSOLE_SHOTS is from the workspace root (`docs/screenshots`).
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let shots = std::env::var_os("ALPES_CONSOLE_SHOTS").map_or_else(|| tmp_shots.path().to_path_buf(), |p| workspace.join(p));
    std::fs::create_dir_all(&shots).expect("shots dir");
    let mut cmd = Command::new("node");
    cmd.arg(web_dir().join("e2e/walk.mjs"))
        .current_dir(web_dir())
        .env("ALPES_URL", &app.base)
        .env("ALPES_CHROMIUM", &chromium)
        .env("ALPES_FOLDER", folder.path().join("estudio"))
        .env("ALPES_FILES", FOLDER.len().to_string())
        .env("ALPES_PROVIDER", format!("datos@hospital.example {PASSWORD}"))
        .env("ALPES_CONSUMER", format!("lab@research.example {PASSWORD}"))
        .env("ALPES_ADMIN", format!("ops@alpes.example {PASSWORD}"))
        .env("ALPES_DOCTOR", format!("vidal@hospital.example {PASSWORD}"))
        .env("ALPES_PROVIDER_ID", &provider)
        .env("ALPES_OWN_AE", "CONSOLE_SCU")
        .env("ALPES_DROP_FILE", common::fixtures_dir().join("MR_small_padded.dcm"))
        .env("ALPES_LOCKED", format!("locked@hospital.example {PASSWORD}"))
        .env("ALPES_LOCKOUT_FAILURES", lockout.to_string())
        .env("ALPES_SHOTS", &shots)
        .env("NO_PROXY", "127.0.0.1,localhost");
    let ran = tokio::task::spawn_blocking(move || common::run_with_limit(cmd, LIMIT))
        .await
        .expect("join the walk");
    app.shutdown.trigger();
    app.task.await.expect("join").expect("clean stop");

    println!("{}", ran.stdout);
    match ran.status {
        None => panic!("the walk ran past {LIMIT:?} and was killed:\n{}\n{}", ran.stdout, ran.stderr),
        Some(status) => assert!(status.success(), "the walk failed ({status}):\n{}\n{}", ran.stdout, ran.stderr),
    }
    assert_eq!(ran.stdout.lines().last(), Some(r#"{"step":"done"}"#), "the walk ended early");
    let steps: Vec<serde_json::Value> = ran.stdout.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let step = |name: &str| steps.iter().find(|s| s["step"] == name).unwrap_or_else(|| panic!("no {name} step"));
    assert_eq!(step("provider_uploaded")["files"], FOLDER.len());
    assert_ne!(
        step("provider_balance_after")["accrued"],
        step("provider_balance_before")["accrued"]
    );
    let image = std::fs::read(shots.join("viewer-image.png")).expect("the viewer's image");
    let (levels, lit) = common::browser::image_area(&image, u32::MAX);
    assert!(
        levels >= 32 && lit >= 0.05,
        "the viewer's image area looks blank: {levels} grey levels, {:.1} % lit",
        lit * 100.0
    );
    for screen in SCREENS {
        let png = std::fs::read(shots.join(format!("{screen}.png"))).unwrap_or_else(|e| panic!("{screen}.png: {e}"));
        assert!(
            png.starts_with(b"\x89PNG") && png.len() > 10_000,
            "{screen}.png is not a screenshot"
        );
    }
}
