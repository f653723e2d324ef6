//! The Schema Registry path of the codec against a fake Confluent registry served in-process on
//! 127.0.0.1 (a few lines of HTTP/1.1 over tokio, nothing else is contacted): the Confluent
//! framing, registration under TopicNameStrategy (TopicRecordNameStrategy for the two record types
//! of `alpes.audit`), id lookups, and decoding of either framing.

use std::sync::{Arc, Mutex};

use alpes_schemas::{
    apache_avro::{self, writer::datum::GenericDatumWriter, Schema},
    catalog,
    renamed::Doubled,
    Codec, Error, Event, ImagenAnonimizada, ImagenRegistrada, IntentoLogin, Profile, RegistroAuditoria, SchemaKey,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

/// What the fake registry holds and saw.
#[derive(Debug, Default)]
struct State {
    /// Schema texts; the id of a schema is its index + 1.
    schemas: Vec<String>,
    /// `(subject, id)` for every registration.
    registrations: Vec<(String, u32)>,
    /// `(subject, id)` for every registration refused as incompatible (409).
    refusals: Vec<(String, u32)>,
    /// `"METHOD path"` for every request.
    requests: Vec<String>,
}

impl State {
    fn add(&mut self, schema: &str) -> u32 {
        let index = self.schemas.iter().position(|s| s == schema).unwrap_or_else(|| {
            self.schemas.push(schema.to_owned());
            self.schemas.len() - 1
        });
        u32::try_from(index + 1).expect("a small registry")
    }

    /// The registry's answer to one request: status line and JSON body.
    fn answer(&mut self, method: &str, path: &str, body: &[u8]) -> (&'static str, serde_json::Value) {
        self.requests.push(format!("{method} {path}"));
        let path = path.split_once('?').map_or(path, |(path, _query)| path);
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        match (method, segments.as_slice()) {
            ("POST", ["subjects", subject, "versions"]) => {
                let request: serde_json::Value = serde_json::from_slice(body).expect("a JSON registration");
                assert_eq!(request["schemaType"], "AVRO");
                let id = self.add(request["schema"].as_str().expect("a schema string"));
                // BACKWARD compatibility, as far as it matters here: a reader of the new schema
                // cannot read a record of another name, so another record type is refused.
                let latest = self.registrations.iter().rev().find(|(s, _)| s == subject).map(|&(_, id)| id);
                if latest
                    .is_some_and(|latest| record_name(&self.schemas[latest as usize - 1]) != record_name(&self.schemas[id as usize - 1]))
                {
                    self.refusals.push(((*subject).to_owned(), id));
                    return (
                        "409 Conflict",
                        serde_json::json!({ "error_code": 409, "message": "Schema being registered is incompatible with an earlier schema" }),
                    );
                }
                self.registrations.push(((*subject).to_owned(), id));
                ("200 OK", serde_json::json!({ "id": id }))
            }
            ("GET", ["schemas", "ids", id]) => match id.parse::<usize>().ok().and_then(|id| self.schemas.get(id.wrapping_sub(1))) {
                Some(schema) => ("200 OK", serde_json::json!({ "schema": schema })),
                None => (
                    "404 Not Found",
                    serde_json::json!({ "error_code": 40403, "message": "Schema not found" }),
                ),
            },
            _ => (
                "404 Not Found",
                serde_json::json!({ "error_code": 404, "message": "HTTP 404 Not Found" }),
            ),
        }
    }
}

/// The full name of the record a schema text defines.
fn record_name(schema: &str) -> String {
    let schema: serde_json::Value = serde_json::from_str(schema).expect("a JSON schema");
    let name = schema["name"].as_str().unwrap_or_default();
    match schema["namespace"].as_str() {
        Some(ns) if !name.contains('.') => format!("{ns}.{name}"),
        _ => name.to_owned(),
    }
}

struct FakeRegistry {
    url: String,
    state: Arc<Mutex<State>>,
}

impl FakeRegistry {
    async fn start() -> FakeRegistry {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
        let url = format!("http://{}", listener.local_addr().expect("a bound address"));
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, shared.clone()));
            }
        });
        FakeRegistry { url, state }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("registry state")
    }
}

/// Answers one HTTP/1.1 request, then closes the connection.
async fn serve(mut stream: TcpStream, state: Arc<Mutex<State>>) {
    let Some((head, body)) = read_request(&mut stream).await else {
        return;
    };
    let mut words = head.split_whitespace();
    let (Some(method), Some(path)) = (words.next(), words.next()) else {
        return;
    };
    let (status, reply) = state.lock().expect("registry state").answer(method, path, &body);
    let reply = reply.to_string();
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/vnd.schemaregistry.v1+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
        reply.len()
    );
    stream.write_all(response.as_bytes()).await.ok();
    stream.shutdown().await.ok();
}

/// The request head (as text) and body, or `None` if the client went away.
async fn read_request(stream: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk).await.ok().filter(|&n| n > 0)?;
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let length = head.lines().find_map(|l| {
        l.to_ascii_lowercase()
            .strip_prefix("content-length:")
            .and_then(|v| v.trim().parse().ok())
    });
    let length: usize = length.unwrap_or(0);
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).await.ok().filter(|&n| n > 0)?;
        buf.extend_from_slice(&chunk[..n]);
    }
    Some((head, buf[head_end..head_end + length].to_vec()))
}

fn registrada() -> ImagenRegistrada {
    ImagenRegistrada {
        http_request_id: None,
        event_id: alpes_schemas::new_event_id(),
        occurred_at: alpes_schemas::now_millis(),
        actor: "prov-1".into(),
        image_id: "img-1".into(),
        provider_id: "prov-1".into(),
        blob_key: "raw/ab12".into(),
        sha256: "ab12".into(),
        size_bytes: 1024,
        media_type: "image/png".into(),
        profile: Profile {
            retain: vec!["uids".into()],
            regions: vec!["0,0,10,10".into()],
            rules: None,
            no_clean: Vec::new(),
            ocr: None,
        },
        source: "multipart".into(),
        request_id: "req-1".into(),
        tipo_imagen: Some("rx".into()),
        region_anatomica: None,
        institucion_id: None,
    }
}

/// The plain Avro datum of `event` under its current schema, renamed fields under both names.
fn datum<E: Event>(event: &E) -> Vec<u8> {
    let value = apache_avro::to_value(Doubled(event))
        .and_then(|v| v.resolve(E::schema()))
        .expect("the event fits its schema");
    datum_with(E::schema(), value)
}

fn datum_with(schema: &Schema, value: apache_avro::types::Value) -> Vec<u8> {
    let writer = GenericDatumWriter::builder(schema).build().expect("a datum writer");
    writer.write_value_to_vec(value).expect("the value fits the schema")
}

fn framed(id: u32, body: &[u8]) -> Vec<u8> {
    [&[0][..], &id.to_be_bytes(), body].concat()
}

#[tokio::test]
async fn encoding_registers_under_the_topic_subject_and_frames_with_magic_zero_and_the_id() {
    let registry = FakeRegistry::start().await;
    registry.state().add("{\"type\": \"string\"}"); // so the event's id is not 1 by chance
    let codec = Codec::registry(&registry.url);
    assert_eq!(codec.describe(), "schema-registry");
    let event = registrada();

    let bytes = codec.encode(&event).await.unwrap();

    let registrations = registry.state().registrations.clone();
    assert_eq!(registrations, [("alpes.images.registered-value".to_owned(), 2)]);
    assert_eq!(bytes, framed(2, &datum(&event)));
    let registered = Schema::parse_str(&registry.state().schemas[1]).unwrap();
    assert_eq!(catalog::fingerprint(&registered), catalog::fingerprint(ImagenRegistrada::schema()));
    assert_eq!(codec.decode::<ImagenRegistrada>(&bytes).await.unwrap(), event);
}

#[tokio::test]
async fn both_record_types_of_the_audit_topic_register_under_their_own_subjects_and_round_trip() {
    let registry = FakeRegistry::start().await;
    let codec = Codec::registry(&registry.url);
    let login = IntentoLogin {
        event_id: alpes_schemas::new_event_id(),
        occurred_at: alpes_schemas::now_millis(),
        actor: "user-1".into(),
        user_id: "user-1".into(),
        success: false,
        reason: Some("bad_password".into()),
        http_request_id: Some("req-1".into()),
    };
    let entry = RegistroAuditoria {
        event_id: alpes_schemas::new_event_id(),
        occurred_at: alpes_schemas::now_millis(),
        actor: "prov-1".into(),
        actor_role: Some("proveedor".into()),
        action: "upload".into(),
        target: Some("img-1".into()),
        route: Some("POST /imagenes".into()),
        outcome: "ok".into(),
        status: Some(202),
        reason: None,
        request_id: Some("req-2".into()),
        service: "ingest".into(),
    };

    let login_bytes = codec.encode(&login).await.unwrap();
    let entry_bytes = codec.encode(&entry).await.unwrap();
    // Another producer (nothing cached) that meets them in the other order gets the same ids.
    let other = Codec::registry(&registry.url);
    assert_eq!(other.encode(&entry).await.unwrap(), entry_bytes);
    assert_eq!(other.encode(&login).await.unwrap(), login_bytes);

    assert_eq!(registry.state().refusals, []);
    let (login_subject, entry_subject) = (
        "alpes.audit-io.alpes.events.IntentoLogin".to_owned(),
        "alpes.audit-io.alpes.events.RegistroAuditoria".to_owned(),
    );
    assert_eq!(
        registry.state().registrations,
        [
            (login_subject.clone(), 1),
            (entry_subject.clone(), 2),
            (entry_subject, 2),
            (login_subject, 1)
        ]
    );
    assert_eq!(login_bytes, framed(1, &datum(&login)));
    assert_eq!(entry_bytes, framed(2, &datum(&entry)));
    // A consumer of the topic (another process: nothing cached) reads each as its own type.
    let consumer = Codec::registry(&registry.url);
    assert_eq!(consumer.decode::<IntentoLogin>(&login_bytes).await.unwrap(), login);
    assert_eq!(consumer.decode::<RegistroAuditoria>(&entry_bytes).await.unwrap(), entry);
    assert!(matches!(
        consumer.decode::<RegistroAuditoria>(&login_bytes).await,
        Err(Error::WrongType { .. })
    ));
}

#[tokio::test]
async fn the_fake_registry_refuses_a_second_record_type_under_one_subject_as_a_registry_would() {
    let registry = FakeRegistry::start().await;
    let mut state = registry.state();
    let login = catalog::current(IntentoLogin::NAME).unwrap().source;
    let entry = catalog::current(RegistroAuditoria::NAME).unwrap().source;
    let body = |schema: &str| serde_json::json!({ "schemaType": "AVRO", "schema": schema }).to_string();
    let path = "/subjects/alpes.audit-value/versions";
    assert_eq!(state.answer("POST", path, body(login).as_bytes()).0, "200 OK");
    assert_eq!(state.answer("POST", path, body(login).as_bytes()).0, "200 OK");
    assert_eq!(state.answer("POST", path, body(entry).as_bytes()).0, "409 Conflict");
}

#[tokio::test]
async fn the_registry_is_asked_once_per_subject_and_once_per_id() {
    let registry = FakeRegistry::start().await;
    let codec = Codec::registry(&registry.url);
    for _ in 0..3 {
        let bytes = codec.encode(&registrada()).await.unwrap();
        codec.clone().decode::<ImagenRegistrada>(&bytes).await.unwrap();
    }
    assert_eq!(
        registry.state().requests,
        [
            "POST /subjects/alpes.images.registered-value/versions",
            "GET /schemas/ids/1?deleted=true"
        ]
    );
}

#[tokio::test]
async fn a_registry_codec_also_decodes_single_object_data_without_calling_the_registry() {
    let registry = FakeRegistry::start().await;
    let event = registrada();
    let bytes = Codec::single_object().encode(&event).await.unwrap();
    assert_eq!(
        Codec::registry(&registry.url).decode::<ImagenRegistrada>(&bytes).await.unwrap(),
        event
    );
    assert!(registry.state().requests.is_empty());
}

#[tokio::test]
async fn a_single_object_codec_reads_registry_framing_only_as_an_unknown_schema() {
    let registry = FakeRegistry::start().await;
    let bytes = Codec::registry(&registry.url).encode(&registrada()).await.unwrap();
    let err = Codec::single_object().decode::<ImagenRegistrada>(&bytes).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::UnknownSchema {
                writer: SchemaKey::RegistryId(1)
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn an_id_the_registry_does_not_know_is_an_unknown_schema() {
    let registry = FakeRegistry::start().await;
    let err = Codec::registry(&registry.url)
        .decode::<ImagenRegistrada>(&framed(99, &datum(&registrada())))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::UnknownSchema {
                writer: SchemaKey::RegistryId(99)
            }
        ),
        "{err}"
    );
    assert_eq!(err.reason(), "unknown_schema");
}

#[tokio::test]
async fn data_written_with_an_older_registered_version_resolves_to_the_current_type() {
    let registry = FakeRegistry::start().await;
    let v1_text = catalog::entries()
        .iter()
        .find(|e| e.name == ImagenRegistrada::NAME && e.version == Some(1))
        .expect("v1")
        .source;
    let v1 = Schema::parse_str(v1_text).unwrap();
    let id = registry.state().add(v1_text);
    let mut event = registrada();
    let value = apache_avro::to_value(&event).unwrap();
    let apache_avro::types::Value::Record(mut fields) = value else {
        panic!("a record")
    };
    fields.retain(|(name, _)| name != "tipo_imagen" && name != "region_anatomica");
    let body = datum_with(&v1, apache_avro::types::Value::Record(fields).resolve(&v1).unwrap());

    let decoded: ImagenRegistrada = Codec::registry(&registry.url).decode(&framed(id, &body)).await.unwrap();

    event.tipo_imagen = None;
    assert_eq!(decoded, event);
}

#[tokio::test]
async fn another_events_registered_schema_is_the_wrong_type() {
    let registry = FakeRegistry::start().await;
    let id = registry.state().add(catalog::current(ImagenAnonimizada::NAME).unwrap().source);
    let err = Codec::registry(&registry.url)
        .decode::<ImagenRegistrada>(&framed(id, &[0]))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::WrongType { expected: "ImagenRegistrada", found } if found == "io.alpes.events.ImagenAnonimizada"),
        "{err}"
    );
}

#[tokio::test]
async fn a_registry_that_does_not_answer_is_a_registry_error() {
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let codec = Codec::registry(&url);
    let err = codec.encode(&registrada()).await.unwrap_err();
    assert_eq!(err.reason(), "registry", "{err}");
    let err = codec.decode::<ImagenRegistrada>(&framed(1, &[])).await.unwrap_err();
    assert_eq!(err.reason(), "registry", "{err}");
}
