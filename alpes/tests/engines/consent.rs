//! The consent workflow on the engines: the registry, the notifications and the catalog's gate on
//! the CQL keyspace, across separate ingest, anonymizer, query-api and notifier processes. An
//! institution (whose licence a second one cannot take), its provider and doctor, a patient whose
//! MRN is a test file's PatientID; the file uploaded through ingest is held back from a consumer
//! until the doctor and the institution validate and the patient confirms with the code a real
//! SMTP server (aiosmtpd) received from the notifier; the patient's revocation hides it again.

use crate::common::smtp::{code_after, SmtpSink};
use crate::harness::{engines, eventually, serial, start_ready, Keys};
use crate::traffic::{anonymized, fixture, get, upload};
use alpes_platform::auth::Role;
use serde_json::{json, Value};
use std::time::Duration;

/// `POST url` of `body` (with `token` if given): the status and the JSON answer.
async fn post(client: &reqwest::Client, url: &str, token: Option<&str>, body: Value) -> (u16, Value) {
    let mut req = client.post(url).json(&body);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let res = req.send().await.expect("post");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// The status of `GET url` with `token`, once it is `want` (30 s at most).
async fn becomes(client: &reqwest::Client, url: &str, token: &str, want: u16) {
    eventually(&format!("GET {url} answers {want}"), Duration::from_secs(30), || async {
        (get(client, url, token).await.0 == want).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn consent_gates_a_consumers_view_across_processes_on_the_engines() {
    let _engines_held = serial().await;
    let Some(e) = engines("consent_gates_a_consumers_view_across_processes_on_the_engines") else {
        return;
    };
    let Some(python) = crate::common::interpreter(
        std::env::var_os("ALPES_AIOSMTPD_PYTHON"),
        "ALPES_AIOSMTPD_PYTHON",
        "consent on the engines",
        "python3 -m venv .venv-aiosmtpd && .venv-aiosmtpd/bin/pip install 'aiosmtpd==1.4.6' && export ALPES_AIOSMTPD_PYTHON=.venv-aiosmtpd/bin/python",
    ) else {
        return;
    };
    let smtp = SmtpSink::start(python);
    let smtp_url = format!("smtp://127.0.0.1:{}", smtp.port);
    let keys = Keys::new(&e);
    let topology = [
        ("ingest", "ingest"),
        ("anonymizer", "anonymizer"),
        ("query-api", "query-api"),
        ("notifier", "notifier"),
    ];
    let extra = ["--smtp-url", smtp_url.as_str(), "--smtp-from", "Alpes <noreply@alpes.example>"];
    let procs = start_ready(&e, &keys, &topology, &extra).await;
    let (ingest, query) = (procs[0].url.clone(), procs[2].url.clone());
    let client = reqwest::Client::new();
    let run = uuid::Uuid::new_v4().simple().to_string();

    // The institution; its licence is unique on the keyspace.
    let admin = keys.token(&format!("admin-consent-{run}"), Role::Admin).await;
    let licence = format!("LIC-{run}");
    let institution =
        json!({"nombre": "Hospital Motor", "tipo": "hospital", "licencia": licence, "email": format!("datos-{run}@h.example")});
    let (status, inst) = post(&client, &format!("{ingest}/instituciones"), Some(&admin), institution).await;
    assert_eq!(status, 201, "{inst}");
    let institution = inst["id"].as_str().expect("id").to_owned();
    let same = json!({"nombre": "Otro", "tipo": "hospital", "licencia": licence, "email": format!("otro-{run}@h.example")});
    let (status, body) = post(&client, &format!("{ingest}/instituciones"), Some(&admin), same).await;
    assert_eq!((status, body["error"].as_str()), (409, Some("licencia_taken")), "{body}");

    // Its provider and doctor, and a patient whose MRN is CT_small.dcm's PatientID.
    let provider = json!({"nombre": "PACS", "email": format!("pacs-{run}@h.example"), "password": "provider-Passw0rd-123", "rol": "proveedor", "institucion_id": institution});
    let (status, prov) = post(&client, &format!("{ingest}/usuarios"), Some(&admin), provider).await;
    assert_eq!(status, 201, "{prov}");
    let provider = keys.token(prov["id"].as_str().expect("id"), Role::Proveedor).await;
    let doctor = json!({"nombre": "Dra. Motor", "email": format!("dra-{run}@h.example"), "password": "doctor-Passw0rd-123", "licencia": format!("MED-{run}"), "institucion_id": institution, "especialidad": "radiologia"});
    let (status, doc) = post(&client, &format!("{ingest}/medicos"), Some(&provider), doctor).await;
    assert_eq!(status, 201, "{doc}");
    let doctor = keys.token(doc["id"].as_str().expect("id"), Role::Medico).await;
    let email = format!("paciente-{run}@paciente.example");
    let patient =
        json!({"nombre": "Paciente Motor", "email": email, "id_paciente": "1CT1", "institucion_id": institution, "medico_id": doc["id"]});
    let (status, pac) = post(&client, &format!("{ingest}/pacientes"), Some(&provider), patient).await;
    assert_eq!(status, 201, "{pac}");
    let patient = pac["id"].as_str().expect("id").to_owned();

    // The file, anonymized; a consumer does not see it while consent is pending.
    let up = upload(&client, &ingest, &provider, &fixture("CT_small.dcm"), None).await;
    assert_eq!(up.status, 202);
    let image = up.id.expect("id");
    let estado = anonymized(&client, &query, &provider, &image, Duration::from_secs(120)).await;
    assert_eq!(estado, "anonimizada");
    let consumer = keys.token(&format!("cons-consent-{run}"), Role::Consumidor).await;
    let seen = format!("{query}/imagenes/{image}");
    assert_eq!(get(&client, &seen, &consumer).await.0, 404, "pending: held back");

    // The doctor, then the institution, validate; the patient confirms with the mailed code.
    let validate = format!("{ingest}/pacientes/{patient}/validar");
    let (status, body) = post(&client, &validate, Some(&doctor), json!({})).await;
    assert_eq!((status, body["estado"].as_str()), (200, Some("validated_by_doctor")), "{body}");
    let (status, body) = post(&client, &validate, Some(&provider), json!({})).await;
    assert_eq!((status, body["estado"].as_str()), (200, Some("validated_by_institution")), "{body}");
    assert_eq!(get(&client, &seen, &consumer).await.0, 404, "not before the patient confirms");
    let mail = smtp.message_to(&email, "consentimiento").await;
    let text = mail["text"].as_str().expect("text");
    let (confirm, revoke) = (
        code_after(text, &["Código de confirmación"]),
        code_after(text, &["Código de revocación"]),
    );
    let (status, body) = post(
        &client,
        &format!("{ingest}/pacientes/consentimiento"),
        None,
        json!({"codigo": confirm}),
    )
    .await;
    assert_eq!((status, body["estado"].as_str()), (200, Some("full_access")), "{body}");
    becomes(&client, &seen, &consumer, 200).await;
    let panel = format!("{query}/instituciones/{institution}/panel");
    let (status, _, body) = get(&client, &panel, &provider).await;
    let p: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    assert_eq!((status, p["imagenes_ofrecidas"].as_i64()), (200, Some(1)), "{p}");

    // The patient revokes: the image is gone from the consumer's view.
    let (status, body) = post(&client, &format!("{ingest}/pacientes/revocacion"), None, json!({"codigo": revoke})).await;
    assert_eq!((status, body["estado"].as_str()), (200, Some("revocado")), "{body}");
    becomes(&client, &seen, &consumer, 404).await;
    assert_eq!(get(&client, &seen, &provider).await.0, 200, "the provider still sees its own");
    let (status, _, body) = get(&client, &format!("{ingest}/notificaciones"), &admin).await;
    let sent: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    assert_eq!(status, 200, "{sent}");
    assert!(
        sent["notificaciones"]
            .as_array()
            .is_some_and(|n| n.iter().any(|n| n["estado"] == "enviada")),
        "the notifier recorded what it sent in the keyspace: {sent}"
    );
}
