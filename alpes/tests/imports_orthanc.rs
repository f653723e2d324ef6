//! An import job against a real PACS: Orthanc with its DICOMweb plugin
//! (Debian's `orthanc` and `orthanc-dicomweb`), loaded with the corpus (real
//! studies from pydicom's test set). One job pulls every study it has (QIDO-RS,
//! then WADO-RS per instance) and ends `completed` with every instance
//! imported; a QIDO-RS key narrows the search; the same job again finds only
//! duplicates. Skipped, loudly, where Orthanc is not installed (never under CI).

mod common;

use alpes_platform::auth::Role;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

async fn ended(app: &common::TestApp, id: &str, token: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let job = app.get_json(&format!("/importaciones/{id}"), token).await;
        if matches!(job["estado"].as_str(), Some("completed" | "failed" | "cancelled")) {
            return job;
        }
        assert!(Instant::now() < deadline, "the job never ended: {job:#}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn import(app: &common::TestApp, token: &str, body: Value) -> Value {
    let (status, job) = app.post_json("/importaciones", Some(token), body).await;
    assert_eq!(status, 202, "{job}");
    ended(app, job["id"].as_str().expect("id"), token).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_job_imports_every_study_of_an_orthanc_pacs_and_the_same_job_again_only_duplicates() {
    let Some(pacs) = common::orthanc::Orthanc::start() else { return };
    // The held-out studies: the corpus files that name their study and instance, one file per
    // SOP Instance UID (several corpus files are encodings of one instance, which a PACS keeps
    // once), without badVR.dcm (an instance with a value its VR cannot have, which Orthanc
    // stores and then cannot serve: its WADO-RS answers 404), each stored by Orthanc.
    let mut uids = std::collections::HashSet::new();
    let mut held_out = 0usize;
    for path in common::corpus() {
        let bytes = std::fs::read(&path).expect("fixture");
        let Ok(probe) = alpes_anonymizer::probe::dicom(&bytes) else {
            continue;
        };
        let (Some(_), Some(sop)) = (probe.study_instance_uid, probe.sop_instance_uid) else {
            continue;
        };
        if path.ends_with("badVR.dcm") || !uids.insert(sop) {
            continue;
        }
        held_out += usize::from(pacs.try_upload(&bytes).is_ok());
    }
    let instances = pacs.count_instances();
    assert_eq!(instances, held_out, "Orthanc keeps each held-out instance once");
    assert!(instances >= 20, "{instances} held-out instances");

    let app = common::spawn_app_with(|s| s.import.allow_networks = vec!["127.0.0.1/32".into()]).await;
    app.ready().await;
    let provider = app.token("pacs-prov", Role::Proveedor).await;
    let job = import(&app, &provider, json!({"tipo": "dicomweb", "url": pacs.dicomweb(), "consulta": {}})).await;
    assert_eq!(job["estado"], "completed", "{job:#}");
    let c = &job["conteos"];
    assert_eq!(c["total"].as_u64(), Some(instances as u64), "{job:#}");
    assert_eq!(c["fallidas"], 0, "{job:#}");
    assert_eq!(c["importadas"].as_u64(), Some(instances as u64), "{job:#}");
    assert_eq!(job["imagenes"].as_array().expect("images").len(), instances);
    assert!(job["fuente"]["url"].as_str().is_some_and(|u| u.ends_with("/dicom-web")));

    // A QIDO-RS key narrows the search to the matching studies.
    let mr = import(
        &app,
        &provider,
        json!({"tipo": "dicomweb", "url": pacs.dicomweb(), "consulta": {"ModalitiesInStudy": "MR"}}),
    )
    .await;
    assert_eq!(mr["estado"], "completed", "{mr:#}");
    let mr_total = mr["conteos"]["total"].as_u64().expect("total");
    assert!(
        mr_total > 0 && mr_total < instances as u64,
        "MR studies only: {mr_total} of {instances}"
    );
    assert_eq!(
        mr["conteos"]["duplicadas"].as_u64(),
        Some(mr_total),
        "already imported by the first job"
    );

    // The whole PACS again: nothing new, every instance matched to its image.
    let again = import(
        &app,
        &provider,
        json!({"tipo": "dicomweb", "url": format!("{}/", pacs.dicomweb()), "consulta": {}}),
    )
    .await;
    assert_eq!(again["estado"], "completed");
    assert_eq!(again["conteos"]["importadas"], 0, "{again:#}");
    assert_eq!(again["conteos"]["duplicadas"].as_u64(), Some(instances as u64));
    app.stop().await;
}
