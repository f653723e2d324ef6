//! The consent workflow end to end, on `alpes up`: an institution, a doctor and a provider are
//! created; the provider registers a patient whose MRN is a test file's PatientID, uploads that
//! file, and a consumer cannot see or download its anonymized image; the doctor and then the
//! institution validate, and the patient confirms with the code from the email a real SMTP
//! server (aiosmtpd, which this test starts) received; the consumer downloads it and is billed;
//! the patient revokes with the other code, and the image is gone from listings, QIDO-RS and
//! downloads. Two webhook receivers (axum on 127.0.0.1) get signed callbacks: one answers 500
//! twice and then takes the third delivery, the other is always down and its notifications end
//! on the dead-letter topic. Nothing the patient is (name, email, phone, MRN) appears in any
//! event, log line, metric or audit entry.

mod common;

use common::smtp::{code_after, SmtpSink};

use alpes_platform::auth::Role;
use alpes_schemas::{topics, Codec, NotificacionFallida};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Who the patient is: each of these must stay out of events, logs, metrics and the audit trail.
const NAME: &str = "Valentina Quintero-Plantada";
const EMAIL: &str = "valentina.plantada@paciente.example";
const PHONE: &str = "+573001234987";
/// CT_small.dcm's PatientID: the MRN the institution registers.
const MRN: &str = "1CT1";

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One callback a receiver got: its headers, its body, and the status it was answered.
type Got = (HeaderMap, Vec<u8>, u16);

/// A webhook receiver that answers each request with the next of `statuses` (then 200).
#[derive(Clone)]
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Got>>>,
}

async fn receiver(statuses: Vec<u16>) -> Receiver {
    let got: Arc<Mutex<Vec<Got>>> = Arc::default();
    let script = Arc::new(Mutex::new(statuses.into_iter()));
    let (g, s) = (got.clone(), script.clone());
    let app = axum::Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let (g, s) = (g.clone(), s.clone());
            async move {
                let status = s.lock().expect("lock").next().unwrap_or(200);
                g.lock().expect("lock").push((headers, body.to_vec(), status));
                StatusCode::from_u16(status).expect("status")
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    Receiver { url, got }
}

/// Polls `GET path` with `token` until `done` holds (30 s at most); the last answer.
async fn until(app: &common::TestApp, path: &str, token: &str, done: impl Fn(u16, &Value) -> bool) -> (u16, Value) {
    app.get_until(path, token, Duration::from_secs(30), done).await
}

async fn status_of(app: &common::TestApp, path: &str, token: &str) -> u16 {
    app.client
        .get(format!("{}{path}", app.base))
        .bearer_auth(token)
        .send()
        .await
        .expect("get")
        .status()
        .as_u16()
}

/// What a consumer sees of image `id` and its study: the image, its download, and whether the
/// listing and QIDO-RS show it.
async fn consumer_view(app: &common::TestApp, consumer: &str, id: &str, study: &str) -> (u16, u16, bool, bool) {
    let listed = app.get_json("/imagenes?limit=1000", consumer).await["imagenes"]
        .as_array()
        .is_some_and(|a| a.iter().any(|i| i["id"] == id));
    let qido = app
        .client
        .get(format!("{}/studies?StudyInstanceUID={study}", app.base))
        .bearer_auth(consumer)
        .send()
        .await
        .expect("qido");
    let in_qido = qido.status().as_u16() == 200
        && !qido
            .json::<Value>()
            .await
            .unwrap_or(Value::Null)
            .as_array()
            .is_none_or(Vec::is_empty);
    (
        status_of(app, &format!("/imagenes/{id}"), consumer).await,
        status_of(app, &format!("/imagenes/{id}/anonimizada"), consumer).await,
        listed,
        in_qido,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patients_consent_decides_what_a_consumer_gets_from_registration_to_revocation() {
    let Some(python) = common::interpreter(
        std::env::var_os("ALPES_AIOSMTPD_PYTHON"),
        "ALPES_AIOSMTPD_PYTHON",
        "consent",
        "python3 -m venv .venv-aiosmtpd && .venv-aiosmtpd/bin/pip install 'aiosmtpd==1.4.6' && export ALPES_AIOSMTPD_PYTHON=.venv-aiosmtpd/bin/python",
    ) else {
        return;
    };
    let logs = Captured::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(move || writer.clone())
        .try_init()
        .expect("the only subscriber in this test binary");
    let smtp = SmtpSink::start(python);
    let flaky = receiver(vec![500, 500]).await;
    let down = receiver(vec![503; 64]).await;
    let app = common::spawn_app_with(|s| {
        s.notify.smtp_url = Some(format!("smtp://127.0.0.1:{}", smtp.port));
        s.notify.smtp_from = "Alpes <noreply@alpes.example>".into();
        s.notify.webhook_allow = vec!["127.0.0.1".into()];
        s.notify.attempts = 3;
        s.notify.backoff_ms = 50;
    })
    .await;
    app.ready().await;
    let everything = app.consumer(&topics::ALL);

    // 1. An institution, a provider of it, its doctor (who logs in), and its webhooks.
    let admin = app.token("consent-admin", Role::Admin).await;
    let (status, inst) = app
        .post_json(
            "/instituciones",
            Some(&admin),
            json!({"nombre": "Hospital San Plantado", "tipo": "hospital", "licencia": "LIC-CONSENT-1", "email": "datos@hospital.example"}),
        )
        .await;
    assert_eq!(status, 201, "{inst}");
    let institution = inst["id"].as_str().expect("id").to_owned();
    assert_eq!(inst["politica_no_registrados"], "retener");
    let (status, prov) = app
        .post_json(
            "/usuarios",
            Some(&admin),
            json!({"nombre": "Radiología", "email": "pacs@hospital.example", "password": "provider-Passw0rd-123", "rol": "proveedor", "institucion_id": institution}),
        )
        .await;
    assert_eq!(status, 201, "{prov}");
    assert_eq!(prov["institucion_id"], institution.as_str());
    let provider_id = prov["id"].as_str().expect("id").to_owned();
    let provider = app.token(&provider_id, Role::Proveedor).await;
    let (status, doc) = app
        .post_json(
            "/medicos",
            Some(&provider),
            json!({"nombre": "Dra. Ruiz", "email": "ruiz@hospital.example", "password": "doctor-Passw0rd-123", "licencia": "MED-77", "institucion_id": institution, "especialidad": "radiologia"}),
        )
        .await;
    assert_eq!(status, 201, "{doc}");
    let doctor_id = doc["id"].as_str().expect("id").to_owned();
    let (status, login) = app
        .post_json(
            "/auth/login",
            None,
            json!({"email": "ruiz@hospital.example", "password": "doctor-Passw0rd-123"}),
        )
        .await;
    assert_eq!(status, 200, "{login}");
    let doctor = login["access_token"].as_str().expect("access_token").to_owned();
    for r in [&flaky, &down] {
        let (status, hook) = app
            .post_json(
                &format!("/instituciones/{institution}/webhooks"),
                Some(&provider),
                json!({"url": r.url, "eventos": ["ConsentimientoCambiado"]}),
            )
            .await;
        assert_eq!(status, 201, "{hook}");
    }
    let (status, body) = app
        .post_json(
            &format!("/instituciones/{institution}/webhooks"),
            Some(&provider),
            json!({"url": "http://192.0.2.1/hook", "eventos": ["ConsentimientoCambiado"]}),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (422, Some("bad_url")),
        "a host the operator did not allow"
    );
    let flaky_secret = {
        let hooks = app.get_json(&format!("/instituciones/{institution}/webhooks"), &provider).await;
        assert!(hooks["webhooks"][0].get("secreto").is_none(), "the secret is shown once");
        // Subscribed again to read a secret: the test's receiver checks it.
        let (_, hook) = app
            .post_json(
                &format!("/instituciones/{institution}/webhooks"),
                Some(&admin),
                json!({"url": flaky.url, "eventos": ["ConsentimientoCambiado", "ImagenRechazada"]}),
            )
            .await;
        hook["secreto"].as_str().expect("secreto").to_owned()
    };

    // 2. The patient, registered by the provider; the file uploaded and anonymized.
    let (status, pac) = app
        .post_json(
            "/pacientes",
            Some(&provider),
            json!({"nombre": NAME, "email": EMAIL, "telefono": PHONE, "id_paciente": MRN, "institucion_id": institution, "medico_id": doctor_id}),
        )
        .await;
    assert_eq!(status, 201, "{pac}");
    assert_eq!(pac["estado"], "pending");
    let patient = pac["id"].as_str().expect("id").to_owned();
    let (status, again) = app
        .post_json(
            "/pacientes",
            Some(&provider),
            json!({"nombre": "x", "email": "x@y.example", "id_paciente": MRN, "institucion_id": institution, "medico_id": doctor_id}),
        )
        .await;
    assert_eq!((status, again["error"].as_str()), (409, Some("paciente_exists")));
    let image = app.upload_fixture("CT_small.dcm", &provider).await;
    let (_, img) = until(&app, &format!("/imagenes/{image}"), &provider, |s, b| {
        s == 200 && b["estado"] == "anonimizada"
    })
    .await;
    let study = img["anonimizada"]["study_uid"].as_str().expect("study uid").to_owned();
    assert_eq!(
        img["anonimizada"]["patient_id"], pac["id_paciente_seudonimo"],
        "the image's pseudonymous PatientID is the one the registry keeps for the MRN"
    );
    let consumer = app.consumer_token("consent-consumer").await;
    assert_eq!(
        consumer_view(&app, &consumer, &image, &study).await,
        (404, 404, false, false),
        "pending: held back"
    );

    // 3. The doctor validates, then the institution; the patient confirms with the emailed code.
    let validate = |token: String| {
        let path = format!("/pacientes/{patient}/validar");
        let app = &app;
        async move { app.post_json(&path, Some(&token), json!({})).await }
    };
    let (status, body) = validate(provider.clone()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("invalid_transition")),
        "the doctor validates first"
    );
    let (status, body) = validate(doctor.clone()).await;
    assert_eq!((status, body["estado"].as_str()), (200, Some("validated_by_doctor")), "{body}");
    assert_eq!(consumer_view(&app, &consumer, &image, &study).await, (404, 404, false, false));
    let mail = smtp.message_to(EMAIL, "consentimiento").await;
    let text = mail["text"].as_str().expect("text");
    let confirm = code_after(text, &["Código de confirmación"]);
    let revoke = code_after(text, &["Código de revocación"]);
    let (status, body) = app.post_json("/pacientes/consentimiento", None, json!({"codigo": confirm})).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("invalid_transition")),
        "not before the institution validated"
    );
    let (status, body) = validate(provider.clone()).await;
    assert_eq!((status, body["estado"].as_str()), (200, Some("validated_by_institution")), "{body}");
    let (status, body) = app
        .post_json("/pacientes/consentimiento", None, json!({"codigo": "NOPE-NOPE-NOPE"}))
        .await;
    assert_eq!((status, body["error"].as_str()), (404, Some("unknown_code")));
    let (status, body) = app
        .post_json("/pacientes/consentimiento", None, json!({"codigo": confirm.to_lowercase()}))
        .await;
    assert_eq!((status, body["estado"].as_str()), (200, Some("full_access")), "{body}");
    let (status, _) = app.post_json("/pacientes/consentimiento", None, json!({"codigo": confirm})).await;
    assert_eq!(status, 409, "a confirmation code works once");

    // 4. The consumer finds, downloads and is billed.
    until(&app, &format!("/imagenes/{image}"), &consumer, |s, _| s == 200).await;
    let bytes = app.download_when_ready(&image, &consumer).await;
    assert!(bytes.len() > 1000);
    assert_eq!(consumer_view(&app, &consumer, &image, &study).await, (200, 200, true, true));
    let deadline = Instant::now() + Duration::from_secs(30);
    while app
        .ledger
        .balances("consent-consumer")
        .await
        .expect("balances")
        .iter()
        .all(|b| b.charges == 0)
    {
        assert!(Instant::now() < deadline, "the consumer was never billed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The dashboards count it all, from the query side's tables.
    let panel = format!("/instituciones/{institution}/panel");
    // Two downloads: `download_when_ready`'s and the one `consumer_view` made.
    let (_, p) = until(&app, &panel, &provider, |s, b| s == 200 && b["descargas"] == 2).await;
    assert_eq!(
        (p["imagenes_ofrecidas"].as_i64(), p["pacientes_por_estado"]["full_access"].as_i64()),
        (Some(1), Some(1)),
        "{p}"
    );
    assert_eq!(p["imagenes_por_estado"]["anonimizada"], 1, "{p}");
    assert!(
        p["ingresos_minor"]
            .as_object()
            .is_some_and(|m| m.values().any(|v| v.as_i64() > Some(0))),
        "{p}"
    );
    let (_, d) = until(&app, &format!("/medicos/{doctor_id}/panel"), &doctor, |s, _| s == 200).await;
    assert_eq!(
        (
            d["pacientes_por_estado"]["full_access"].as_i64(),
            d["pendientes_validacion"].as_i64()
        ),
        (Some(1), Some(0)),
        "{d}"
    );
    assert_eq!(status_of(&app, &panel, &consumer).await, 403, "not a consumer's");

    // 5. The patient revokes: the image is gone from every consumer's view at once.
    let (status, body) = app.post_json("/pacientes/revocacion", None, json!({"codigo": revoke})).await;
    assert_eq!((status, body["estado"].as_str()), (200, Some("revocado")), "{body}");
    until(&app, &format!("/imagenes/{image}"), &consumer, |s, _| s == 404).await;
    assert_eq!(
        consumer_view(&app, &consumer, &image, &study).await,
        (404, 404, false, false),
        "revoked"
    );
    let (status, _) = app.post_json("/pacientes/revocacion", None, json!({"codigo": revoke})).await;
    assert_eq!(status, 409, "revoked once");
    assert_eq!(
        status_of(&app, &format!("/imagenes/{image}"), &provider).await,
        200,
        "the provider still sees its own"
    );
    smtp.message_to("datos@hospital.example", &patient).await;
    smtp.message_to("ruiz@hospital.example", &patient).await;

    // 6. Webhooks: signed; the flaky one took the third try; the dead one is dead-lettered.
    let deadline = Instant::now() + Duration::from_secs(30);
    let dead: Vec<NotificacionFallida> = loop {
        let notes = app.get_json("/notificaciones?limit=200", &provider).await;
        let failed = notes["notificaciones"]
            .as_array()
            .expect("list")
            .iter()
            .filter(|n| n["estado"] == "fallida")
            .count();
        if failed >= 5 {
            let msgs = common::drain(&app.consumer(&[topics::NOTIFICATIONS_DEAD]), failed, Duration::from_secs(10)).await;
            let codec = Codec::single_object();
            let mut out = Vec::new();
            for (_, _, payload) in msgs {
                out.push(codec.decode::<NotificacionFallida>(&payload).await.expect("decode"));
            }
            break out;
        }
        assert!(Instant::now() < deadline, "the dead receiver's notifications never failed: {notes}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(dead.len() >= 5, "one dead letter per consent event to the dead receiver");
    assert!(
        dead.iter()
            .all(|d| d.canal == "webhook" && d.intentos == 3 && d.motivo == "http 503"),
        "{dead:?}"
    );
    let got = flaky.got.lock().expect("lock").clone();
    let first = &got[..3];
    assert_eq!(
        first.iter().map(|g| g.2).collect::<Vec<_>>(),
        [500, 500, 200],
        "the third try was taken"
    );
    let delivery = |h: &HeaderMap| h["x-alpes-delivery"].to_str().expect("ascii").to_owned();
    assert!(
        first.iter().all(|g| delivery(&g.0) == delivery(&first[0].0)),
        "one delivery id across retries"
    );
    let now = alpes_schemas::now_millis() / 1000;
    let signed: Vec<&Got> = got
        .iter()
        .filter(|g| {
            let sig = g.0["x-alpes-signature"].to_str().expect("ascii");
            alpes_notifier::webhook::verify(flaky_secret.as_bytes(), sig, &g.1, now, 300)
        })
        .collect();
    assert!(
        !signed.is_empty(),
        "the callbacks of the subscription whose secret the test kept verify"
    );
    let body: Value = serde_json::from_slice(&signed[0].1).expect("json");
    assert_eq!(body["institucion_id"], institution.as_str());
    let mut tampered = signed[0].1.clone();
    tampered.push(b' ');
    assert!(!alpes_notifier::webhook::verify(
        flaky_secret.as_bytes(),
        signed[0].0["x-alpes-signature"].to_str().expect("ascii"),
        &tampered,
        now,
        300
    ));

    // 7. Nothing the patient is went anywhere it should not.
    let events = common::drain(&everything, 10_000, Duration::from_secs(5)).await;
    assert!(events.iter().any(|e| e.0 == topics::CONSENT), "the consent events were read");
    let trail = Value::Array(app.audit_entries("limit=1000").await).to_string();
    assert!(trail.contains("patient_create") && trail.contains("consent_confirm") && trail.contains("consent_revoke"));
    let metrics = app.metrics().await;
    assert!(metrics.contains("alpes_notifications_total"));
    let logs = String::from_utf8_lossy(&logs.0.lock().expect("lock")).into_owned();
    assert!(logs.contains("consent moved"), "the capture saw the workflow");
    let phone_digits = PHONE.trim_start_matches('+');
    for phi in [NAME, "Quintero", EMAIL, "valentina", PHONE, phone_digits] {
        for (topic, _, payload) in &events {
            assert!(!String::from_utf8_lossy(payload).contains(phi), "{phi:?} in an event on {topic}");
        }
        assert!(!logs.contains(phi), "{phi:?} in the logs");
        assert!(!metrics.contains(phi), "{phi:?} in the metrics");
        assert!(!trail.contains(phi), "{phi:?} in the audit trail");
    }
    // "1CT1" cannot occur by chance in an id: UUIDs are lower-case hex, pseudonyms upper-case hex.
    for (topic, _, payload) in &events {
        assert!(!String::from_utf8_lossy(payload).contains(MRN), "the MRN in an event on {topic}");
    }
    assert!(
        !logs.contains(MRN) && !trail.contains(MRN) && !metrics.contains(MRN),
        "the MRN leaked"
    );
    app.stop().await;
}
