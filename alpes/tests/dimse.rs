//! The DICOM listener driven by dcmtk's own tools (Debian's `dcmtk`:
//! `echoscu`, `storescu`): a calling AE mapped to a provider by the admin
//! route echoes and stores; an unmapped one, or a call to another AE title,
//! is rejected at association; every instance of the fixture corpus that
//! storescu sends reaches an outcome (anonymized or rejected) as that
//! provider's image, compressed transfer syntaxes kept as sent, and every
//! study is announced complete (`EstudioCompleto`) once stable, by image ids
//! and never by its own identifiers.
//!
//! The tools are looked up on `PATH` (or in `ALPES_DCMTK_BIN`). Without them
//! the test is skipped, loudly, except under CI (`CI` set), where it fails.

mod common;

use alpes_platform::auth::Role;
use alpes_schemas::EstudioCompleto;
use common::{run_with_limit, Ran, TestApp};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const PROVIDER: &str = "hospital-dimse";
const CALLING: &str = "CT_SCANNER_1";
const TOOL_LIMIT: Duration = Duration::from_secs(300);

/// A dcmtk tool, or `None` when the test should be skipped.
fn dcmtk(tool: &str) -> Option<PathBuf> {
    let dirs: Vec<PathBuf> = match std::env::var_os("ALPES_DCMTK_BIN").filter(|v| !v.is_empty()) {
        Some(dir) => vec![PathBuf::from(dir)],
        None => std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).collect())
            .unwrap_or_default(),
    };
    if let Some(found) = dirs.iter().map(|d| d.join(tool)).find(|p| p.is_file()) {
        return Some(found);
    }
    let under_ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty());
    assert!(
        !under_ci,
        "dcmtk's {tool} is not installed but CI is set: .ci/run installs Debian's dcmtk"
    );
    let msg = format!("SKIPPED dimse: dcmtk's {tool} is not on PATH. To run it: apt-get install dcmtk");
    let _ = writeln!(std::io::stderr(), "\n*** {msg}\n");
    println!("\n*** {msg}\n");
    None
}

async fn run(cmd: Command) -> Ran {
    tokio::task::spawn_blocking(move || run_with_limit(cmd, TOOL_LIMIT))
        .await
        .expect("the tool ran")
}

fn call(tool: &Path, app: &TestApp, calling: &str, called: &str) -> Command {
    let addr = app.dimse.expect("the app runs the DICOM listener");
    let mut cmd = Command::new(tool);
    cmd.args(["-aet", calling, "-aec", called, &addr.ip().to_string(), &addr.port().to_string()]);
    cmd
}

/// Maps [`CALLING`] to [`PROVIDER`] through the admin route; the provider's token.
async fn mapped(app: &TestApp) -> String {
    let provider = app.token(PROVIDER, Role::Proveedor).await;
    common::map_calling_ae(app, CALLING, PROVIDER).await;
    provider
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_mapped_ae_echoes_and_an_unmapped_or_misdirected_one_is_rejected_at_association() {
    let Some(echoscu) = dcmtk("echoscu") else { return };
    let app = common::spawn_app().await;
    let before = run(call(&echoscu, &app, CALLING, "ALPES")).await;
    assert_ne!(before.status.map(|s| s.success()), Some(true), "not mapped yet: {}", before.stderr);
    mapped(&app).await;
    let ok = run(call(&echoscu, &app, CALLING, "ALPES")).await;
    assert_eq!(ok.status.map(|s| s.success()), Some(true), "{}\n{}", ok.stdout, ok.stderr);
    for (calling, called) in [("UNKNOWN_AE", "ALPES"), (CALLING, "ORTHANC")] {
        let refused = run(call(&echoscu, &app, calling, called)).await;
        assert_ne!(refused.status.map(|s| s.success()), Some(true), "{calling} → {called}");
        assert!(
            refused.stderr.contains("Association Rejected") || refused.stdout.contains("Association Rejected"),
            "{calling} → {called}: {}\n{}",
            refused.stdout,
            refused.stderr
        );
    }
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("alpes_dimse_associations_total{outcome=\"rejected\"} 3"),
        "{metrics}"
    );
    assert!(
        metrics.contains("alpes_dimse_associations_total{outcome=\"accepted\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("alpes_dimse_operations_total{command=\"c_echo\",outcome=\"ok\"} 1"),
        "{metrics}"
    );
    let entries = app
        .audit_until("accion=dimse_association", Duration::from_secs(30), |e| e.len() >= 4)
        .await;
    let denied = entries.iter().filter(|e| e["resultado"] == "denied").count();
    assert_eq!(denied, 3, "{entries:#?}");
    assert!(entries
        .iter()
        .any(|e| e["resultado"] == "ok" && e["actor"] == PROVIDER && e["objetivo"] == CALLING));
    // Removed, the AE is rejected again at its next association.
    let admin = app.token("dimse-admin", Role::Admin).await;
    let res = app
        .client
        .delete(format!("{}/dimse/aes/{CALLING}", app.base))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("delete");
    assert_eq!(res.status().as_u16(), 204);
    let after = run(call(&echoscu, &app, CALLING, "ALPES")).await;
    assert_ne!(after.status.map(|s| s.success()), Some(true));
    app.stop().await;
}

/// `alpes_dimse_operations_total` of C-STORE with `outcome`.
async fn counter(app: &TestApp, outcome: &str) -> usize {
    let metrics = app.metrics().await;
    let prefix = format!("alpes_dimse_operations_total{{command=\"c_store\",outcome=\"{outcome}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(0, |n| n.trim().parse().expect("a count"))
}

/// The provider's images, polled until `n` are there and none waits for the anonymizer.
async fn outcomes(app: &TestApp, token: &str, n: usize) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let page = app.get_json("/imagenes?limit=1000", token).await;
        let images = page["imagenes"].as_array().cloned().unwrap_or_default();
        if images.len() >= n && images.iter().all(|i| i["estado"] != "registrada") {
            return images;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {n} images, some without an outcome: {images:#?}",
            images.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The storescu option that proposes a transfer syntax (and the uncompressed ones), as a site
/// sends files of that syntax; `None` for one storescu cannot propose.
fn proposing(ts: &str) -> Option<&'static str> {
    Some(match ts {
        "1.2.840.10008.1.2" | "1.2.840.10008.1.2.1" | "1.2.840.10008.1.2.2" => "-x=",
        "1.2.840.10008.1.2.1.99" => "-xd",
        "1.2.840.10008.1.2.5" => "-xr",
        "1.2.840.10008.1.2.4.50" => "-xy",
        "1.2.840.10008.1.2.4.51" => "-xx",
        "1.2.840.10008.1.2.4.70" => "-xs",
        "1.2.840.10008.1.2.4.80" => "-xt",
        "1.2.840.10008.1.2.4.81" => "-xu",
        "1.2.840.10008.1.2.4.90" => "-xv",
        "1.2.840.10008.1.2.4.91" => "-xw",
        _ => return None,
    })
}

/// The corpus's files by the storescu option that sends them in their own transfer syntax
/// (a file without a file meta group is read as Implicit VR Little Endian), and those left out.
fn by_syntax() -> (std::collections::BTreeMap<&'static str, Vec<PathBuf>>, Vec<String>) {
    let mut groups: std::collections::BTreeMap<&'static str, Vec<PathBuf>> = Default::default();
    let mut left_out = Vec::new();
    for file in common::corpus() {
        let head = std::fs::read(&file).expect("fixture");
        let ts = alpes_anonymizer::probe::dicom(&head)
            .ok()
            .and_then(|p| p.transfer_syntax)
            .unwrap_or_else(|| "1.2.840.10008.1.2".into());
        match proposing(ts.trim_end_matches(['\0', ' '])) {
            Some(option) => groups.entry(option).or_default().push(file),
            None => left_out.push(format!("{} ({ts})", file.display())),
        }
    }
    (groups, left_out)
}

/// Sends each group of files with its option; the store responses' count, success first.
async fn send_corpus(storescu: &Path, app: &TestApp, log: &mut String) -> (usize, usize) {
    let (groups, left_out) = by_syntax();
    println!("files in a transfer syntax storescu cannot propose, not sent: {left_out:#?}");
    let (mut stored, mut failed) = (0, 0);
    for (option, files) in groups {
        let mut cmd = call(storescu, app, CALLING, "ALPES");
        // Propose only what the files need, go on past a file storescu cannot read.
        cmd.args([option, "--required", "--no-halt", "-v"]).args(&files);
        let sent = run(cmd).await;
        let out = format!("{}\n{}", sent.stdout, sent.stderr);
        assert!(sent.status.is_some(), "storescu {option} ran past its limit: {out}");
        let ok = out.matches("Received Store Response (Success)").count();
        stored += ok;
        failed += out.matches("Received Store Response (").count() - ok + out.matches("Store Failed").count();
        log.push_str(&format!("=== {option}: {ok} of {} stored\n{out}\n", files.len()));
    }
    (stored, failed)
}

/// The `EstudioCompleto` events on `consumer` until they count `instances` images (60 s at most).
async fn complete_studies(consumer: &rdkafka::consumer::StreamConsumer, instances: usize) -> Vec<(EstudioCompleto, Vec<u8>)> {
    let codec = alpes_schemas::Codec::from_env();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut events = Vec::new();
    while events
        .iter()
        .map(|(e, _): &(EstudioCompleto, Vec<u8>)| e.instancias as usize)
        .sum::<usize>()
        < instances
    {
        assert!(Instant::now() < deadline, "studies announced so far: {events:#?}");
        for (_, _, payload) in common::drain(consumer, 1, Duration::from_millis(500)).await {
            let event: EstudioCompleto = codec.decode(&payload).await.expect("an EstudioCompleto");
            events.push((event, payload));
        }
    }
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_instance_storescu_sends_reaches_an_outcome_as_the_mapped_providers_image() {
    let Some(storescu) = dcmtk("storescu") else { return };
    let app = common::spawn_app_with(|s| s.dimse.stable_study_secs = 2).await;
    app.ready().await;
    let provider = mapped(&app).await;
    let studies = app.consumer(&[alpes_schemas::topics::STUDIES_COMPLETE]);
    let mut log = String::new();
    let (stored, failed) = send_corpus(&storescu, &app, &mut log).await;
    assert_eq!(failed, 0, "a store failed: {log}");
    assert!(stored >= 60, "only {stored} stored: {log}");
    for compressed in ["=== -xy", "=== -xs", "=== -xt", "=== -xu", "=== -xr", "=== -xv", "=== -xw"] {
        let line = log.lines().find(|l| l.starts_with(compressed)).unwrap_or_default();
        assert!(
            !line.starts_with(&format!("{compressed}: 0 ")),
            "no file went as {compressed}: {log}"
        );
    }
    // Uncompressed files go in the syntax the listener accepted first, so two files of one data set
    // in two byte orders are the same instance twice: one image, the second a duplicate.
    let duplicates = counter(&app, "duplicate").await;
    let images = outcomes(&app, &provider, stored - duplicates).await;
    assert_eq!(images.len(), stored - duplicates, "one image per distinct instance");
    assert!(duplicates <= 5, "{duplicates} duplicates");
    let anonymized = images.iter().filter(|i| i["estado"] == "anonimizada").count();
    assert!(
        anonymized * 10 >= images.len() * 8,
        "{anonymized} of {} anonymized: {images:#?}",
        images.len()
    );
    assert_eq!(counter(&app, "stored").await, images.len());
    println!(
        "{stored} instances stored by C-STORE, {duplicates} duplicates, {} images, {anonymized} anonymized",
        images.len()
    );
    // Every study announced once stable, together naming every image once, and none of the
    // studies' UIDs as sent.
    let sent_uids: Vec<String> = common::corpus()
        .iter()
        .filter_map(|f| alpes_anonymizer::probe::dicom(&std::fs::read(f).ok()?).ok()?.study_instance_uid)
        .collect();
    assert!(sent_uids.len() > 30);
    let announced = complete_studies(&studies, images.len()).await;
    let mut named: Vec<String> = announced.iter().flat_map(|(e, _)| e.imagenes.clone()).collect();
    named.sort();
    let mut ids: Vec<String> = images.iter().map(|i| i["id"].as_str().expect("id").to_owned()).collect();
    ids.sort();
    assert_eq!(named, ids);
    for (event, payload) in &announced {
        assert_eq!(
            (event.proveedor_id.as_str(), event.titulo_ae.as_str(), event.actor.as_str()),
            (PROVIDER, CALLING, "dimse")
        );
        assert!(event.imagenes_completas && event.primera_at <= event.ultima_at && event.estable_ms == 2000);
        let text = String::from_utf8_lossy(payload);
        for uid in &sent_uids {
            assert!(!text.contains(uid.as_str()), "a study UID as sent: {text}");
        }
    }
    println!("{} studies announced complete", announced.len());
    // Sent again, every instance is a duplicate: success, and no new image.
    let (again, failed) = send_corpus(&storescu, &app, &mut log).await;
    assert_eq!((again, failed), (stored, 0), "{log}");
    assert_eq!(counter(&app, "duplicate").await, duplicates + stored);
    assert_eq!(outcomes(&app, &provider, images.len()).await.len(), images.len());
    app.stop().await;
}
