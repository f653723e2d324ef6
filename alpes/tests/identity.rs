//! The first admin, end to end: `alpes admin create` writes it offline,
//! `alpes up` announces it, it logs in, creates another admin over REST, and
//! both reach the query side's user list.

mod common;

use alpes_schemas::{Codec, Event, UsuarioRegistrado};
use serde_json::{json, Value};
use std::process::Command;
use std::time::Duration;

const PASSWORD: &str = "correct horse battery staple";

fn admin_create(data_dir: &std::path::Path, email: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_alpes"))
        .args([
            "admin",
            "create",
            "--email",
            email,
            "--argon2-memory-kib",
            "64",
            "--argon2-iterations",
            "1",
        ])
        .arg("--data-dir")
        .arg(data_dir)
        .env("ALPES_ADMIN_PASSWORD", PASSWORD)
        .output()
        .expect("run alpes admin create")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_admin_is_created_offline_announced_at_start_and_logs_in() {
    let mut admin_id = String::new();
    let app = common::spawn_app_with(|s| {
        let out = admin_create(&s.data_dir, "root@hospital.org");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        admin_id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        let again = admin_create(&s.data_dir, "ROOT@hospital.org");
        assert_eq!(again.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&again.stderr).contains("email_taken"));
        s.identity.passwords.memory_kib = 64;
        s.identity.passwords.iterations = 1;
    })
    .await;
    assert_eq!(admin_id.len(), 36, "the new admin's id is printed");

    // `alpes up` announced it at start.
    let consumer = app.consumer(&[UsuarioRegistrado::TOPIC]);
    let codec = Codec::single_object();
    let seen = common::drain(&consumer, 1, Duration::from_secs(20)).await;
    assert_eq!(seen.len(), 1);
    let e: UsuarioRegistrado = codec.decode(&seen[0].2).await.expect("decode");
    assert_eq!((e.user_id.as_str(), e.role.as_str()), (admin_id.as_str(), "admin"));

    // It logs in and creates a second admin.
    let login: Value = app
        .client
        .post(format!("{}/auth/login", app.base))
        .json(&json!({"email": "root@hospital.org", "password": PASSWORD}))
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("json");
    let access = login["access_token"].as_str().expect("access token");
    let res = app
        .client
        .post(format!("{}/usuarios", app.base))
        .bearer_auth(access)
        .json(&json!({"nombre": "Second", "email": "second@hospital.org", "password": PASSWORD, "rol": "admin"}))
        .send()
        .await
        .expect("create");
    assert_eq!(res.status().as_u16(), 201);
    let second: Value = res.json().await.expect("json");
    let second_id = second["id"].as_str().expect("id");

    // Both reach the query side.
    for id in [admin_id.as_str(), second_id] {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let res = app
                .client
                .get(format!("{}/usuarios/{id}", app.base))
                .bearer_auth(access)
                .send()
                .await
                .expect("get user");
            if res.status().as_u16() == 200 {
                let user: Value = res.json().await.expect("json");
                assert_eq!(user["role"].as_str(), Some("admin"), "{user}");
                assert!(!user.to_string().contains("argon2"), "{user}");
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "user {id} never reached the catalog");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    app.stop().await;
}
