//! End to end, in process: every corpus file (with PHI planted where it
//! parses) is uploaded three ways (raw body, multipart form, STOW-RS) to the
//! whole platform on the mock cluster. Each upload must yield exactly one
//! `ImagenAnonimizada`, or one `ImagenRechazada` with the expected reason; each
//! anonymized blob must pass the engine's PHI scan; and a plain consumer
//! decodes the events straight from the topics. The identity flows run
//! during the same test, and no planted PHI, password, email, token or API
//! key may appear in any log line (captured at DEBUG) or metric.

mod common;
#[path = "../../anonymizer/tests/common/mod.rs"]
mod engine;

use alpes_platform::auth::Role;
use alpes_schemas::{topics, Codec, Event, ImagenAnonimizada, ImagenRechazada};
use common::{corpus, drain, spawn_app};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// Corpus files the engine must reject, with the reason code of the event.
fn expected_rejections() -> BTreeMap<&'static str, &'static str> {
    BTreeMap::from([("MR_truncated.dcm", "truncated"), ("rtplan_truncated.dcm", "truncated")])
}

/// The bytes a fixture is uploaded as (PHI planted where it parses).
fn engine_bytes(name: &str) -> Vec<u8> {
    let original = std::fs::read(common::fixtures_dir().join(name)).expect("read");
    engine::plant_phi(&original).unwrap_or(original)
}

fn stow_body(bytes: &[u8]) -> (String, Vec<u8>) {
    let boundary = "e2e-boundary-7f3a";
    let mut body = format!("--{boundary}\r\nContent-Type: application/dicom\r\n\r\n").into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/related; type=\"application/dicom\"; boundary={boundary}"), body)
}

/// A writer that keeps every log line the platform writes during the test.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Registers, fails a login, logs in, refreshes, creates and uses an API key
/// and logs out; returns every secret those flows handled, by name.
async fn identity_flows(app: &common::TestApp) -> Vec<(&'static str, String)> {
    let (email, password) = ("planted.email@hospital.example", "planted-Passw0rd-xyz-123");
    let (status, _) = app
        .post_json(
            "/usuarios",
            None,
            serde_json::json!({"nombre": "Planted Name", "email": email, "password": password, "rol": "proveedor"}),
        )
        .await;
    assert_eq!(status, 201);
    let wrong = "planted-wrong-password-456";
    assert_eq!(
        app.post_json("/auth/login", None, serde_json::json!({"email": email, "password": wrong}))
            .await
            .0,
        401
    );
    let unknown = "planted.unknown@elsewhere.example";
    assert_eq!(
        app.post_json("/auth/login", None, serde_json::json!({"email": unknown, "password": password}))
            .await
            .0,
        401
    );
    let (status, first) = app
        .post_json("/auth/login", None, serde_json::json!({"email": email, "password": password}))
        .await;
    assert_eq!(status, 200);
    let refresh1 = first["refresh_token"].as_str().expect("refresh").to_owned();
    let (status, second) = app
        .post_json("/auth/refresh", None, serde_json::json!({"refresh_token": refresh1}))
        .await;
    assert_eq!(status, 200);
    let access = second["access_token"].as_str().expect("access").to_owned();
    let refresh2 = second["refresh_token"].as_str().expect("refresh").to_owned();
    let admin = app.token("admin-e2e", Role::Admin).await;
    let (status, created) = app
        .post_json(
            "/api-keys",
            Some(&admin),
            serde_json::json!({"nombre": "e2e", "rol": "proveedor", "usuario_id": "prov-key"}),
        )
        .await;
    assert_eq!(status, 201);
    let key = created["key"].as_str().expect("key").to_owned();
    let listed = app
        .client
        .get(format!("{}/imagenes", app.base))
        .header("x-api-key", &key)
        .send()
        .await
        .expect("list with the key");
    assert_eq!(listed.status().as_u16(), 200);
    assert_eq!(
        app.post_json("/auth/logout", Some(&access), serde_json::json!({"refresh_token": refresh2}))
            .await
            .0,
        204
    );
    let signature = |jwt: &str| jwt.rsplit('.').next().unwrap_or(jwt).to_owned();
    vec![
        ("the password", password.to_owned()),
        ("a wrong password", wrong.to_owned()),
        ("the email", email.to_owned()),
        ("an unknown email", unknown.to_owned()),
        ("an access token's signature", signature(&access)),
        ("an admin token's signature", signature(&admin)),
        ("a refresh token", refresh1),
        ("a rotated refresh token", refresh2),
        ("an API key", key),
    ]
}

/// Every entry of the audit trail as JSON text, once the anonymizer's
/// `images` entries have all been stored (60 s at most).
async fn audit_trail(app: &common::TestApp, images: usize) -> String {
    let entries = app
        .audit_until("limit=1000", Duration::from_secs(60), |e| {
            e.iter().filter(|e| e["action"] == "anonymization").count() >= images
        })
        .await;
    let anonymizations = entries.iter().filter(|e| e["action"] == "anonymization").count();
    assert_eq!(anonymizations, images, "one anonymization entry per image");
    Value::Array(entries).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_corpus_file_uploaded_three_ways_yields_exactly_one_outcome() {
    let logs = Captured::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(move || writer.clone())
        .try_init()
        .expect("the only subscriber in this test binary");
    let app = spawn_app().await;
    let secrets = identity_flows(&app).await;
    let consumer = app.consumer(&[topics::IMAGES_ANONYMIZED, topics::IMAGES_REJECTED]);
    let expected = expected_rejections();
    // image id → (file name, way)
    let mut uploads: HashMap<String, (String, &str)> = HashMap::new();
    for path in corpus() {
        let name = path.file_name().and_then(|n| n.to_str()).expect("name").to_owned();
        let bytes = engine_bytes(&name);
        for way in ["raw", "multipart", "stow"] {
            // One provider per way: the same bytes from one provider are (rightly) one image.
            let tok = app.token(&format!("prov-{way}"), Role::Proveedor).await;
            let req = match way {
                "raw" => app
                    .client
                    .post(format!("{}/imagenes", app.base))
                    .header("content-type", "application/dicom")
                    .body(bytes.clone()),
                "multipart" => {
                    let part = reqwest::multipart::Part::bytes(bytes.clone())
                        .file_name(name.clone())
                        .mime_str("application/dicom")
                        .expect("mime");
                    app.client
                        .post(format!("{}/imagenes", app.base))
                        .multipart(reqwest::multipart::Form::new().part("file", part))
                }
                _ => {
                    let (ct, body) = stow_body(&bytes);
                    app.client
                        .post(format!("{}/studies", app.base))
                        .header("content-type", ct)
                        .body(body)
                }
            };
            let res = req.bearer_auth(tok).send().await.expect("send");
            let status = res.status().as_u16();
            let v: Value = res.json().await.expect("json");
            let id = if way == "stow" {
                assert_eq!(status, 200, "{name} via STOW: {v}");
                let url = v["00081199"]["Value"][0]["00081190"]["Value"][0]
                    .as_str()
                    .expect("retrieve url")
                    .to_owned();
                url.rsplit('/').next().expect("id").to_owned()
            } else {
                assert_eq!(status, 202, "{name} via {way}: {v}");
                v["id"].as_str().expect("id").to_owned()
            };
            match uploads.get(&id) {
                // Two fixtures can plant to the same bytes (the same dataset in two encodings):
                // one provider's same bytes are one image, so the second upload is a duplicate.
                Some((first, _)) => assert_eq!(
                    engine_bytes(first),
                    bytes,
                    "{name} via {way} reused the id of {first}, whose bytes differ"
                ),
                None => {
                    uploads.insert(id, (name.clone(), way));
                }
            }
        }
    }
    let messages = drain(&consumer, uploads.len(), Duration::from_secs(240)).await;
    assert_eq!(messages.len(), uploads.len(), "outcomes missing");
    // Nothing more arrives: exactly one outcome each.
    assert!(
        drain(&consumer, 1, Duration::from_secs(3)).await.is_empty(),
        "an upload had two outcomes"
    );

    let codec = Codec::single_object();
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut problems = Vec::new();
    for (topic, key, payload) in &messages {
        if topic == topics::IMAGES_ANONYMIZED {
            let ev: ImagenAnonimizada = codec.decode(payload).await.expect("decode");
            assert_eq!(key, &ev.image_id, "events are keyed by image id");
            *seen.entry(ev.image_id.clone()).or_default() += 1;
            let (name, way) = &uploads[&ev.image_id];
            if expected.contains_key(name.as_str()) {
                problems.push(format!("{name} via {way}: anonymized, expected a rejection"));
            }
            let blob = app.blobs.get(&ev.blob_key).await.expect("anonymized blob");
            for phi in engine::PHI {
                if engine::contains(&blob, phi.as_bytes()) {
                    problems.push(format!("{name} via {way}: {phi:?} in the output bytes"));
                }
            }
            let leaks = engine::phi_in_elements(&blob);
            if !leaks.is_empty() {
                problems.push(format!("{name} via {way}: {leaks:?}"));
            }
            for uid in [&ev.study_uid, &ev.series_uid, &ev.sop_instance_uid].into_iter().flatten() {
                if !uid.starts_with("2.25.") {
                    problems.push(format!("{name} via {way}: UID {uid} was not remapped"));
                }
            }
        } else {
            let ev: ImagenRechazada = codec.decode(payload).await.expect("decode");
            let id = ev.image_id.clone().expect("image id");
            *seen.entry(id.clone()).or_default() += 1;
            let (name, way) = &uploads[&id];
            match expected.get(name.as_str()) {
                Some(reason) if *reason == ev.reason => {}
                other => problems.push(format!(
                    "{name} via {way}: rejected {} ({}), expected {other:?}",
                    ev.reason, ev.message
                )),
            }
            for phi in engine::PHI {
                assert!(!ev.message.contains(phi), "PHI in a rejection message");
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert_eq!(seen.len(), uploads.len());
    // No PHI in a log line or a metric.
    let metrics = app.metrics().await;
    for family in [
        r#"alpes_http_requests_total{method="POST",route="/imagenes",status="202"}"#,
        r#"alpes_http_requests_total{method="POST",route="/studies",status="200"}"#,
        r#"alpes_engine_seconds_count{outcome="anonymized"}"#,
        r#"alpes_rejections_total{reason="truncated"} 6"#,
        r#"alpes_consumer_lag{group="alpes-anonymizer",partition="0",topic="alpes.images.registered"}"#,
        "alpes_bytes_in_total",
        "alpes_bytes_out_total",
    ] {
        assert!(metrics.contains(family), "{family} missing from /metrics");
    }
    let logs = String::from_utf8_lossy(&logs.0.lock().expect("lock")).into_owned();
    assert!(logs.contains("image registered"), "the capture saw no log line");
    for phi in engine::PHI {
        let token = phi.split(['^', ' ']).next().unwrap_or(phi);
        assert!(!logs.contains(token), "{phi:?} in the logs");
        assert!(!metrics.contains(token), "{phi:?} in the metrics");
    }
    assert!(
        logs.contains("account created") && logs.contains("logout"),
        "the capture saw the identity flows"
    );
    for (what, secret) in &secrets {
        assert!(!logs.contains(secret.as_str()), "{what} in the logs");
        assert!(!metrics.contains(secret.as_str()), "{what} in the metrics");
    }
    assert!(seen.values().all(|n| *n == 1));
    // The audit trail has every outcome, and no planted PHI or secret either.
    let trail = audit_trail(&app, uploads.len()).await;
    for phi in engine::PHI {
        let token = phi.split(['^', ' ']).next().unwrap_or(phi);
        assert!(!trail.contains(token), "{phi:?} in the audit trail");
    }
    for (what, secret) in &secrets {
        assert!(!trail.contains(secret.as_str()), "{what} in the audit trail");
    }
    app.shutdown.trigger();
    app.task.await.expect("join").expect("clean stop");
}

#[tokio::test]
async fn a_plain_avro_reader_decodes_the_event_with_only_the_published_schema() {
    let app = spawn_app().await;
    let consumer = app.consumer(&[topics::IMAGES_ANONYMIZED]);
    let bytes = std::fs::read(common::fixtures_dir().join("CT_small.dcm")).expect("read");
    let res = app
        .client
        .post(format!("{}/imagenes", app.base))
        .bearer_auth(app.token("p", Role::Proveedor).await)
        .header("content-type", "application/dicom")
        .body(bytes)
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), 202);
    let msgs = drain(&consumer, 1, Duration::from_secs(60)).await;
    assert_eq!(msgs.len(), 1);
    let payload = &msgs[0].2;
    // Single-object encoding: C3 01, the schema's 8-byte fingerprint (the one Java's
    // SchemaNormalization computes, from the table it wrote), then the Avro body.
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../schemas/avro/ImagenAnonimizada.avsc")).expect("avsc");
    let schema = apache_avro::Schema::parse_str(&text).expect("schema");
    assert_eq!(&payload[..2], &[0xC3, 0x01]);
    let reference = include_str!("../../schemas/tests/fingerprints.tsv")
        .lines()
        .find_map(|l| l.strip_prefix("ImagenAnonimizada.avsc\t"))
        .and_then(|rest| rest.rsplit('\t').next())
        .expect("the reference fingerprint");
    assert_eq!(hex::encode(&payload[2..10]), reference);
    let mut body = &payload[10..];
    #[allow(deprecated)]
    let value = apache_avro::from_avro_datum(&schema, &mut body, None).expect("datum");
    let apache_avro::types::Value::Record(fields) = value else {
        panic!("not a record")
    };
    let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).expect(k);
    assert_eq!(get("media_type"), apache_avro::types::Value::String("application/dicom".into()));
    // The vocabulary's name for it carries the same value (as the nullable field it was added as).
    let dicom = apache_avro::types::Value::String("application/dicom".into());
    assert_eq!(get("tipo_medio"), apache_avro::types::Value::Union(1, Box::new(dicom)));
    assert_eq!(get("rows"), apache_avro::types::Value::Int(128));
    assert_eq!(ImagenAnonimizada::TOPIC, topics::IMAGES_ANONYMIZED);
    app.shutdown.trigger();
    app.task.await.expect("join").expect("clean stop");
}

#[tokio::test]
async fn a_restart_republishes_requests_that_never_got_an_outcome() {
    use alpes_platform::blobs::{Blobs, RAW};
    use alpes_platform::store::{ImageRow, IngestStore, NewImage, SqliteStore};
    use alpes_schemas::{ImagenRegistrada, Profile};
    // The state a crash leaves: the blob and the request are stored, the event was
    // published to a development broker that has since forgotten it.
    let data = tempfile::tempdir().expect("tmp");
    let bytes = std::fs::read(common::fixtures_dir().join("MR_small.dcm")).expect("read");
    let blobs = Blobs::local(&data.path().join("blobs")).expect("blobs");
    let (key, sha) = blobs.put_bytes(RAW, bytes::Bytes::from(bytes.clone())).await.expect("put");
    let ev = ImagenRegistrada {
        http_request_id: None,
        event_id: "6f1c7a34-8a8e-4a7e-9d55-3a0f6f7f0001".into(),
        occurred_at: 1,
        actor: "prov-1".into(),
        image_id: "img-before-restart".into(),
        provider_id: "prov-1".into(),
        blob_key: key.clone(),
        sha256: sha.clone(),
        size_bytes: bytes.len() as i64,
        media_type: "application/dicom".into(),
        profile: Profile::default(),
        source: "rest".into(),
        request_id: "req-before-restart".into(),
        tipo_imagen: None,
        region_anatomica: None,
        institucion_id: None,
    };
    let store = SqliteStore::open(&data.path().join("alpes.db")).expect("db");
    store
        .claim(NewImage {
            image: ImageRow {
                image_id: ev.image_id.clone(),
                provider_id: ev.provider_id.clone(),
                sha256: sha,
                size: bytes.len() as u64,
                media_type: ev.media_type.clone(),
                blob_key: key,
                tipo_imagen: None,
                region_anatomica: None,
            },
            idempotency_key: None,
            request_id: ev.request_id.clone(),
            event_json: serde_json::to_string(&ev).expect("json"),
        })
        .await
        .expect("claim");
    drop(store);

    let settings = alpes::app::Settings::embedded(data.path().to_path_buf(), "127.0.0.1:0".parse().expect("addr"));
    let app = alpes::app::App::build(settings).await.expect("build");
    assert_eq!(app.republished(), 1);
    let c = {
        let mut cfg = rdkafka::ClientConfig::new();
        cfg.set("bootstrap.servers", app.bootstrap())
            .set("group.id", "plain")
            .set("auto.offset.reset", "earliest");
        let c: rdkafka::consumer::StreamConsumer = cfg.create().expect("consumer");
        rdkafka::consumer::Consumer::subscribe(&c, &[topics::IMAGES_ANONYMIZED]).expect("subscribe");
        c
    };
    let shutdown = alpes_platform::shutdown::Shutdown::new();
    let task = tokio::spawn(app.run_until_stopped(shutdown.clone()));
    let msgs = drain(&c, 1, Duration::from_secs(60)).await;
    assert_eq!(msgs.len(), 1, "the re-published image was not anonymized");
    let out: ImagenAnonimizada = Codec::single_object().decode(&msgs[0].2).await.expect("decode");
    assert_eq!(out.image_id, "img-before-restart");
    assert_eq!(out.request_id, "req-before-restart");
    // The outcome follower closes the request once it sees the event.
    let store = SqliteStore::open(&data.path().join("alpes.db")).expect("db");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while store.request_state("req-before-restart").await.expect("state") != Some(alpes_platform::store::RequestState::Anonymized) {
        assert!(std::time::Instant::now() < deadline, "the request was never closed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    shutdown.trigger();
    task.await.expect("join").expect("clean stop");
    // The outcome closed the request: the next start has nothing to re-publish.
    let again = alpes::app::App::build(alpes::app::Settings::embedded(
        data.path().to_path_buf(),
        "127.0.0.1:0".parse().expect("addr"),
    ))
    .await
    .expect("build");
    assert_eq!(again.republished(), 0);
}
