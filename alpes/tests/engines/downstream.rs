//! A real downstream consumer on the real engines: the example consumer
//! (`examples/python/consume_events.py`: confluent-kafka with its
//! `AvroDeserializer`, through the registry) reads every event type the
//! platform writes, after a session that causes each of them.

use crate::harness::{engines, eventually, serial, start_ready, Keys};
use crate::traffic::{anonymized, fixture, get, upload};
use alpes_platform::auth::Role;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// The interpreter of a venv with confluent-kafka and fastavro (`ALPES_PYTHON_KAFKA`).
pub fn python() -> Option<String> {
    std::env::var("ALPES_PYTHON_KAFKA").ok().filter(|p| !p.is_empty())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_python_consumer_reads_every_event_type_through_the_registry() {
    let _engines_held = serial().await;
    let Some(e) = engines("a_python_consumer_reads_every_event_type_through_the_registry") else {
        return;
    };
    let python = python().expect("ALPES_PYTHON_KAFKA: a venv's python with confluent-kafka and fastavro (.ci/run makes one)");
    let keys = Keys::new(&e);
    let mut procs = start_ready(&e, &keys, &[("all", "ingest,anonymizer,billing,query-api")], &[]).await;
    let (base, client) = (procs[0].url.clone(), reqwest::Client::new());
    let run = uuid::Uuid::new_v4().simple().to_string();
    let provider = format!("prov-down-{run}");
    let ptoken = keys.token(&provider, Role::Proveedor).await;

    // ImagenRegistrada, ImagenAnonimizada and, for a truncated file, ImagenRechazada.
    let good = upload(&client, &base, &ptoken, &fixture("CT_small.dcm"), None).await;
    let bad = upload(&client, &base, &ptoken, &fixture("MR_truncated.dcm"), None).await;
    assert_eq!((good.status, bad.status), (202, 202));
    let consumer = keys.token(&format!("cons-down-{run}"), Role::Consumidor).await;
    let id = good.id.expect("id");
    anonymized(&client, &base, &consumer, &id, Duration::from_secs(180)).await;
    // EventoUsoDatos, and RegistroAuditoria for every audited request.
    let (status, _, _) = get(&client, &format!("{base}/imagenes/{id}/anonimizada"), &consumer).await;
    assert_eq!(status, 200);
    // UsuarioRegistrado and IntentoLogin.
    let email = format!("down-{run}@example.org");
    let password = "a-long-enough-Passw0rd";
    let res = client
        .post(format!("{base}/usuarios"))
        .json(&json!({"nombre": "Downstream", "email": email, "password": password, "rol": "proveedor"}))
        .send()
        .await
        .expect("register");
    assert_eq!(res.status().as_u16(), 201);
    let user: Value = res.json().await.expect("json");
    let user_id = user["id"].as_str().expect("user id").to_owned();
    let res = client
        .post(format!("{base}/auth/login"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .expect("login");
    assert_eq!(res.status().as_u16(), 200);
    // PagoProcesado once the download is credited, and PagoRechazado for more than is owed.
    eventually("the download credited", Duration::from_secs(90), || async {
        let (_, _, body) = get(&client, &format!("{base}/monetizacion/saldo/{provider}"), &ptoken).await;
        let v: Value = serde_json::from_slice(&body).ok()?;
        (v["uses"] == 1).then_some(())
    })
    .await;
    let admin = keys.token("admin-down", Role::Admin).await;
    for (amount, reference, status) in [(1, format!("ok-{run}"), 202), (1_000_000_000, format!("too-much-{run}"), 409)] {
        let res = client
            .post(format!("{base}/monetizacion/pagar"))
            .bearer_auth(&admin)
            .json(&json!({"usuario_id": provider, "amount_minor": amount, "currency": "EUR", "reference": reference}))
            .send()
            .await
            .expect("pay");
        assert_eq!(res.status().as_u16(), status, "payment of {amount}");
    }
    // This run's events name one of these.
    let markers = [run.clone(), id.clone(), bad.id.clone().expect("id"), user_id];

    // Each type shows up in the example consumer's output, decoded through the registry.
    let wanted: BTreeSet<&str> = [
        "ImagenRegistrada",
        "ImagenAnonimizada",
        "ImagenRechazada",
        "UsuarioRegistrado",
        "IntentoLogin",
        "EventoUsoDatos",
        "PagoProcesado",
        "PagoRechazado",
        "RegistroAuditoria",
    ]
    .into();
    let args = vec![
        "--bootstrap".to_owned(),
        e.var("KAFKA_BOOTSTRAP_SERVERS"),
        "--registry".to_owned(),
        e.var("SCHEMA_REGISTRY_URL"),
    ];
    let counts: BTreeMap<String, usize> = eventually("every event type decoded", Duration::from_secs(120), || {
        let (python, args, markers, wanted) = (python.clone(), args.clone(), markers.to_vec(), &wanted);
        async move {
            let counts = tokio::task::spawn_blocking(move || crate::common::consume_events(&python, &args, "schema-registry", &markers))
                .await
                .expect("join");
            wanted.iter().all(|w| counts.contains_key(*w)).then_some(counts)
        }
    })
    .await;
    eprintln!("downstream (Python, confluent-kafka AvroDeserializer via the registry): {counts:?}");
    procs[0].stop();
}
