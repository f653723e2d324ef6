//! A plain Python Avro reader (fastavro, in `examples/python/consume_events.py`)
//! decodes the embedded mode's events: Avro single-object encoding, the
//! writer schema found by the fingerprint fastavro computes from the schema
//! files. This holds only if Alpes writes the specification's fingerprint
//! (Java's `SchemaNormalization`, fastavro and avro-python agree on it).
//!
//! The interpreter comes from `ALPES_PYTHON_KAFKA` (a venv with confluent-kafka
//! and fastavro; `.ci/run` makes one). Without it the test is skipped, loudly,
//! except under CI (`CI` set), where it fails.

mod common;

use alpes_platform::auth::Role;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

fn python() -> Option<String> {
    let Some(python) = std::env::var("ALPES_PYTHON_KAFKA").ok().filter(|p| !p.is_empty()) else {
        assert!(
            std::env::var_os("CI").is_none_or(|v| v.is_empty()),
            "ALPES_PYTHON_KAFKA is not set but CI is: .ci/run must make the venv with confluent-kafka and fastavro"
        );
        let msg = "SKIPPED python_consumer: ALPES_PYTHON_KAFKA is not set. To run it:\n    \
                   python3 -m venv .venv-kafka && .venv-kafka/bin/pip install 'confluent-kafka[avro,schemaregistry]' fastavro\n    \
                   ALPES_PYTHON_KAFKA=$PWD/.venv-kafka/bin/python cargo test -p alpes --test python_consumer\n";
        let _ = std::io::Write::write_all(&mut std::io::stderr(), msg.as_bytes());
        return None;
    };
    Some(python)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fastavro_decodes_every_single_object_event_of_the_embedded_mode() {
    let Some(python) = python() else { return };
    let app = common::spawn_app().await;
    let id = app
        .upload_fixture("CT_small.dcm", &app.token("prov-py", Role::Proveedor).await)
        .await;
    app.download_when_ready(&id, &app.consumer_token("cons-py").await).await;
    let res = app
        .client
        .post(format!("{}/usuarios", app.base))
        .json(&json!({"nombre": "Py", "email": "py@example.org", "password": "a-long-enough-Passw0rd", "rol": "consumidor"}))
        .send()
        .await
        .expect("register");
    assert_eq!(res.status().as_u16(), 201);

    let schemas = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../schemas/avro");
    let args = vec![
        "--bootstrap".to_owned(),
        app.kafka.bootstrap().to_owned(),
        "--schemas".to_owned(),
        schemas.display().to_string(),
    ];
    let wanted = [
        "ImagenRegistrada",
        "ImagenAnonimizada",
        "UsuarioRegistrado",
        "EventoUsoDatos",
        "RegistroAuditoria",
    ];
    let mut counts = BTreeMap::new();
    for _ in 0..10 {
        let (python, args) = (python.clone(), args.clone());
        counts = tokio::task::spawn_blocking(move || common::consume_events(&python, &args, "single-object", &[]))
            .await
            .expect("join");
        if wanted.iter().all(|w| counts.contains_key(*w)) {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    for w in wanted {
        assert!(counts.contains_key(w), "no {w} decoded: {counts:?}");
    }
    app.shutdown.trigger();
    app.task.await.expect("join").expect("app");
}
