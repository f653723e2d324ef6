//! Decompression bombs: a 783 KB deflated DICOM that inflates to 805 MB and a
//! 389 KB PNG that decodes to 400 MB (`bombs/make.py` writes both) are
//! refused within the engine's configured memory, measured as the peak RSS
//! of the process that reads them; and through `alpes up` each is rejected
//! with its reason.

use super::common;
use alpes_platform::auth::Role;
use std::path::PathBuf;
use std::process::Command;

const ENGINE_MEMORY: u64 = 512 * 1024 * 1024;

fn bombs() -> [PathBuf; 2] {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/security/bombs");
    [dir.join("deflated-16384x16384x3.dcm"), dir.join("zeros-20000x20000.png")]
}

#[test]
fn four_bombs_at_once_stay_within_the_engine_memory() {
    let tmp = tempfile::tempdir().expect("tmp");
    let secret = tmp.path().join("secret.key");
    std::fs::write(&secret, "0123456789abcdef0123456789abcdef").expect("secret");
    // Two copies of each, on two engine threads: two bombs in flight at any time.
    let inputs = tmp.path().join("in");
    std::fs::create_dir_all(&inputs).expect("mkdir");
    for (i, bomb) in bombs().iter().chain(bombs().iter()).enumerate() {
        let name = format!("{i}-{}", bomb.file_name().and_then(|n| n.to_str()).expect("name"));
        std::fs::copy(bomb, inputs.join(name)).expect("copy");
    }
    let report = tmp.path().join("report.jsonl");
    let out = Command::new(env!("CARGO_BIN_EXE_alpes"))
        .args([
            "anonymize",
            "--jobs",
            "2",
            "--engine-memory",
            &ENGINE_MEMORY.to_string(),
            "--secret-file",
        ])
        .arg(&secret)
        .arg("--report")
        .arg(&report)
        .arg("--out")
        .arg(tmp.path().join("out"))
        .arg(&inputs)
        .output()
        .expect("alpes anonymize");
    assert_eq!(
        out.status.code(),
        Some(1),
        "every bomb fails: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let peak_kib = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
        .expect("rusage")
        .max_rss();
    let peak = u64::try_from(peak_kib).expect("kib") * 1024;
    assert!(
        peak < ENGINE_MEMORY,
        "peak RSS {} MiB, over the engine's {} MiB",
        peak >> 20,
        ENGINE_MEMORY >> 20
    );
    let lines = std::fs::read_to_string(&report).expect("report");
    let mut codes: Vec<String> = lines
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json line");
            v["error"]["code"].as_str().expect("an error code").to_owned()
        })
        .collect();
    codes.sort();
    assert_eq!(codes, ["decode_limit", "decode_limit", "inflate_limit", "inflate_limit"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bomb_uploaded_is_rejected_with_its_reason() {
    let app = common::spawn_app_with(|s| {
        s.engine_memory = ENGINE_MEMORY;
        s.jobs = Some(2);
    })
    .await;
    let provider = app.token("bomb-provider", Role::Proveedor).await;
    let admin = app.token("bomb-admin", Role::Admin).await;
    for (bomb, media_type, reason) in [
        (&bombs()[0], "application/dicom", "inflate_limit"),
        (&bombs()[1], "image/png", "decode_limit"),
    ] {
        let res = app
            .client
            .post(format!("{}/imagenes", app.base))
            .bearer_auth(&provider)
            .header("content-type", media_type)
            .body(std::fs::read(bomb).expect("bomb"))
            .send()
            .await
            .expect("upload");
        assert_eq!(res.status().as_u16(), 202);
        let id = res.json::<serde_json::Value>().await.expect("json")["id"]
            .as_str()
            .expect("id")
            .to_owned();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let image = app.get_json(&format!("/imagenes/{id}"), &admin).await;
            if image["estado"] == "rechazada" {
                assert_eq!(image["motivo_rechazo"], reason, "{image}");
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{id} not rejected: {image}");
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }
    app.stop().await;
}
