//! File modes: the data dir, the raw blobs (PHI), the database (emails,
//! password hashes) and every other file Alpes writes are its user's only.

use super::common;
use alpes_platform::auth::Role;
use std::os::unix::fs::PermissionsExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_file_and_folder_of_the_data_dir_is_the_users_alone() {
    let app = common::spawn_app().await;
    let provider = app.token("modes-provider", Role::Proveedor).await;
    let consumer = app.consumer_token("modes-consumer").await;
    let id = app.upload_fixture("CT_small.dcm", &provider).await;
    app.download_when_ready(&id, &consumer).await;
    let (status, _) = app
        .post_json(
            "/usuarios",
            None,
            serde_json::json!({"nombre": "Modes", "email": "modes@example.org", "password": "a long enough password", "rol": "consumidor"}),
        )
        .await;
    assert_eq!(status, 201);
    let mut seen = (0, 0);
    for entry in walkdir::WalkDir::new(app.data.path()).min_depth(0) {
        let entry = entry.expect("entry");
        let mode = entry.metadata().expect("metadata").permissions().mode() & 0o777;
        let path = entry.path().display().to_string();
        if entry.file_type().is_dir() {
            assert_eq!(mode, 0o700, "{path}");
            seen.0 += 1;
        } else if entry.file_type().is_file() {
            assert_eq!(mode, 0o600, "{path}");
            seen.1 += 1;
        }
    }
    assert!(seen.0 >= 3 && seen.1 >= 3, "walked too little: {seen:?}");
    app.stop().await;
}
