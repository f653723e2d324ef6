//! The authorization matrix: every route of both routers (ingest and
//! query-api, as `alpes up` composes them) × every kind of principal × the
//! caller's own provider's data versus another provider's → the status the
//! rules give. The rules:
//!
//! - Providers upload, and see their own images, balances and ledgers.
//! - Consumers search and download anonymized images only (and are billed).
//! - Admins see everything.
//! - Raw bytes, the ones not yet anonymized, are never served to anyone,
//!   admin included: an image still `registrada` or `rechazada` yields no
//!   bytes from any route that serves image bytes
//!   (`GET /imagenes/{id}/anonimizada` and the WADO-RS retrieve routes), and
//!   the UIDs an upload carried before de-identification reach nothing.
//! - No credential, or a bad one (a forged, unsigned or expired token, a logged-out
//!   token, an unknown or revoked API key) → 401; the wrong role → 403;
//!   another provider's balance or ledger → 403.
//! - Another provider's *image* → 404, deliberately: an image the caller may
//!   not see is answered exactly like one that does not exist, so its
//!   existence is not revealed (`visible_image` on the query side,
//!   `POST /anonimizar/{id}` on the ingest side). The rows for an unknown
//!   id show the two answers are the same.
//! - Public routes (`/health`, `/metrics`, `/.well-known/jwks.json`, `/auth/login`, `/auth/refresh`,
//!   `/auth/verify`, and `POST /usuarios` for a non-admin account) answer
//!   everyone. Those that take no credential ignore one; `POST /usuarios`
//!   reads an optional one (an admin may create admins), so a bad one is 401
//!   there too.
//!
//! Every row acts on provider A's data: the `own` column is provider A, the
//! `other` column provider B, and `own key` an API key that acts as A. A few
//! rows act on B's data, to show that A (and A's key) is held off it. Each
//! request carries a freshly minted token (a new `jti`), so the logout row
//! revokes only its own. The platform and its fixtures are set up once; the
//! rows run in order, and every mismatch is reported at once, as a table.

mod common;
#[path = "authz_matrix/rows.rs"]
mod rows;

use alpes_platform::auth::{Claims, Role};
use alpes_platform::blobs::RAW;
use alpes_platform::store::CatalogEvent;
use alpes_schemas::{new_event_id, now_millis, ImagenRegistrada, Profile};
use reqwest::Method;
use rows::rows;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

const PASSWORD: &str = "correct horse battery staple";

/// A well-formed API key no one was ever given.
const UNKNOWN_KEY: &str = "alpes_0000000000000000_this-key-was-never-issued";

/// Provider A's anonymized image, B's anonymized image, A's never-anonymized
/// (injected as `registrada`), the rows' uploads, and the two rejected ones
/// (truncated: accepted at upload, refused by the anonymizer).
const A_IMAGE: &str = "CT_small.dcm";
const B_IMAGE: &str = "MR_small.dcm";
const A_PENDING: &str = "rtdose_1frame.dcm";
const UPLOADED: &str = "SC_rgb_small_odd.dcm";
const A_REJECTED: &str = "MR_truncated.dcm";
const B_REJECTED: &str = "rtplan_truncated.dcm";

/// Who calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Who {
    /// No credential at all.
    Anonymous,
    /// An admin's claims signed with another key.
    Forged,
    /// An admin's claims, unsigned (`alg: none`).
    Unsigned,
    /// An admin token signed with the instance's key, expired an hour ago.
    Expired,
    /// Provider A's token after `POST /auth/logout`.
    LoggedOut,
    /// A well-formed `X-API-Key` that was never issued.
    UnknownKey,
    /// Provider A's API key after `DELETE /api-keys/{id}`.
    RevokedKey,
    /// Provider A: the owner of the data the rows name.
    Own,
    /// Provider B: another provider.
    Other,
    /// A consumer.
    Consumer,
    /// An admin.
    Admin,
    /// Provider A's live API key.
    OwnKey,
}

const EVERYONE: [Who; 12] = [
    Who::Anonymous,
    Who::Forged,
    Who::Unsigned,
    Who::Expired,
    Who::LoggedOut,
    Who::UnknownKey,
    Who::RevokedKey,
    Who::Own,
    Who::Other,
    Who::Consumer,
    Who::Admin,
    Who::OwnKey,
];

impl Who {
    fn column(self) -> &'static str {
        match self {
            Who::Anonymous => "none",
            Who::Forged => "forged",
            Who::Unsigned => "unsigned",
            Who::Expired => "expired",
            Who::LoggedOut => "logout",
            Who::UnknownKey => "nokey",
            Who::RevokedKey => "revkey",
            Who::Own => "own",
            Who::Other => "other",
            Who::Consumer => "cons",
            Who::Admin => "admin",
            Who::OwnKey => "ownkey",
        }
    }
}

/// A credential-needing route: 401 for no or a bad credential (the first seven
/// columns), then provider A, provider B, the consumer, the admin and A's key.
fn guarded(own: u16, other: u16, consumer: u16, admin: u16, own_key: u16) -> [u16; 12] {
    [401, 401, 401, 401, 401, 401, 401, own, other, consumer, admin, own_key]
}

/// A public route that ignores credentials: the same answer for everyone.
fn public(status: u16) -> [u16; 12] {
    [status; 12]
}

/// A request body.
#[derive(Debug, Clone)]
enum Body {
    Empty,
    Json(Value),
    Bytes(String, Vec<u8>),
}

/// What a row's answers must also satisfy, beyond the status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Serves {
    /// Nothing more.
    Data,
    /// Image data (metadata, search answers, bytes) from the anonymized set or the
    /// catalog: a 2xx body is not empty and never holds an identifier the upload carried.
    ImageData,
    /// A bytes route aimed at an image that was never anonymized: no 2xx, ever.
    Raw,
}

struct Row {
    method: Method,
    template: String,
    path: String,
    body: Box<dyn Fn(Who) -> Body>,
    expect: [u16; 12],
    serves: Serves,
}

/// `(StudyInstanceUID, SeriesInstanceUID, SOPInstanceUID)` of a fixture as uploaded.
fn raw_uids(name: &str) -> (String, String, String) {
    let obj = dicom_object::OpenFileOptions::new()
        .read_until(dicom_object::Tag(0x7FE0, 0x0010))
        .open_file(common::fixtures_dir().join(name))
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let get = |keyword: &str| {
        let v = obj.element_by_name(keyword).unwrap_or_else(|e| panic!("{name} {keyword}: {e}"));
        v.to_str().expect("text").trim_end_matches(['\0', ' ']).to_owned()
    };
    (get("StudyInstanceUID"), get("SeriesInstanceUID"), get("SOPInstanceUID"))
}

/// Base64url without padding, as a JWT writes its parts.
fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(common::fixtures_dir().join(name)).expect("fixture")
}

/// A STOW-RS body of one instance.
fn stow_body(bytes: &[u8]) -> Body {
    let boundary = "authz-boundary-5d1e";
    let mut body = format!("--{boundary}\r\nContent-Type: application/dicom\r\n\r\n").into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    Body::Bytes(format!("multipart/related; type=\"application/dicom\"; boundary={boundary}"), body)
}

struct Fixtures {
    app: common::TestApp,
    /// Provider A's user id.
    a: String,
    /// Provider B's user id.
    b: String,
    /// The consumer's user id.
    consumer: String,
    /// The admin's user id.
    admin: String,
    /// Provider A's login.
    a_email: String,
    /// The bad credentials, as [`Who`] describes them.
    forged: String,
    unsigned: String,
    expired: String,
    logged_out: String,
    revoked_key: String,
    /// Provider A's live API key.
    own_key: String,
    /// Placeholder → value, for the rows' path templates.
    values: Vec<(&'static str, String)>,
    /// Unused refresh tokens of A, per column, for the refresh and the logout rows.
    refresh_tokens: HashMap<(&'static str, Who), String>,
    /// Identifiers uploads carried before de-identification.
    raw_markers: Vec<String>,
}

impl Fixtures {
    async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
        let mut req = self.app.client.post(format!("{}{path}", self.app.base)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let res = req.send().await.expect("request");
        (res.status().as_u16(), res.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        let res = self
            .app
            .client
            .get(format!("{}{path}", self.app.base))
            .bearer_auth(token)
            .send()
            .await
            .expect("request");
        (res.status().as_u16(), res.json().await.unwrap_or(Value::Null))
    }

    async fn root(&self) -> String {
        self.app.token(&self.admin, Role::Admin).await
    }

    async fn register(app: &common::TestApp, nombre: &str, email: &str, rol: &str) -> String {
        let mut req = app
            .client
            .post(format!("{}/usuarios", app.base))
            .json(&json!({"nombre": nombre, "email": email, "password": PASSWORD, "rol": rol}));
        if rol == "admin" {
            req = req.bearer_auth(app.token("bootstrap-admin", Role::Admin).await);
        }
        let res = req.send().await.expect("register");
        assert_eq!(res.status().as_u16(), 201, "registering {email}");
        let v: Value = res.json().await.expect("json");
        v["id"].as_str().expect("id").to_owned()
    }

    async fn login(&self) -> (String, String) {
        let (status, v) = self
            .post("/auth/login", None, json!({"email": self.a_email, "password": PASSWORD}))
            .await;
        assert_eq!(status, 200, "login: {v}");
        let field = |k: &str| v[k].as_str().expect(k).to_owned();
        (field("access_token"), field("refresh_token"))
    }

    async fn upload(&self, token: &str, name: &str) -> String {
        let res = self
            .app
            .client
            .post(format!("{}/imagenes", self.app.base))
            .bearer_auth(token)
            .header("content-type", "application/dicom")
            .body(fixture(name))
            .send()
            .await
            .expect("upload");
        assert_eq!(res.status().as_u16(), 202, "uploading {name}");
        let v: Value = res.json().await.expect("json");
        v["id"].as_str().expect("id").to_owned()
    }

    /// The image as an admin sees it, once it is `estado` (60 s at most).
    async fn until_estado(&self, id: &str, estado: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (status, v) = self.get(&format!("/imagenes/{id}"), &self.root().await).await;
            if status == 200 && v["estado"] == estado {
                return v;
            }
            assert!(Instant::now() < deadline, "image {id} never became {estado}: {status} {v}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Until the catalog has the safety net's analysis of image `id` (20 s at most).
    async fn until_analysed(&self, id: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.get(&format!("/imagenes/{id}/analisis"), &self.root().await).await.0 != 200 {
            assert!(Instant::now() < deadline, "image {id} was never analysed");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Until the catalog has user `id` (20 s at most).
    async fn until_user(&self, id: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.get(&format!("/usuarios/{id}"), &self.root().await).await.0 != 200 {
            assert!(Instant::now() < deadline, "user {id} never reached the catalog");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn api_key(&self, nombre: &str) -> (String, String) {
        let (status, v) = self
            .post(
                "/api-keys",
                Some(&self.root().await),
                json!({"nombre": nombre, "rol": "proveedor", "usuario_id": self.a}),
            )
            .await;
        assert_eq!(status, 201, "api key: {v}");
        (v["id"].as_str().expect("id").to_owned(), v["key"].as_str().expect("key").to_owned())
    }

    async fn set_up() -> Fixtures {
        let app = common::spawn_app_with(|s| {
            s.identity.passwords.memory_kib = 64;
            s.identity.passwords.iterations = 1;
        })
        .await;
        app.ready().await;
        let a_email = "ana@provider-a.example".to_owned();
        let a = Self::register(&app, "Provider A", &a_email, "proveedor").await;
        let b = Self::register(&app, "Provider B", "bruno@provider-b.example", "proveedor").await;
        let consumer = Self::register(&app, "Lab", "lab@consumer.example", "consumidor").await;
        let admin = Self::register(&app, "Admin", "admin@alpes.example", "admin").await;

        // Bad credentials: forged and expired admin tokens, a logged-out token.
        let secs = u64::try_from(now_millis() / 1000).expect("now");
        let claims = |exp: u64| Claims {
            sub: admin.clone(),
            role: Role::Admin,
            iat: secs - 7200,
            exp,
            iss: "alpes".into(),
            jti: Some(new_event_id()),
        };
        let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        let forged = jsonwebtoken::encode(
            &header,
            &claims(secs + 3600),
            &jsonwebtoken::EncodingKey::from_secret(b"not the instance's signing key, 32+"),
        )
        .expect("forge");
        let unsigned = format!(
            "{}.{}.",
            base64url(br#"{"alg":"none","typ":"JWT"}"#),
            base64url(&serde_json::to_vec(&claims(secs + 3600)).expect("claims"))
        );
        let key = alpes::secret::read(&alpes::jwt_keys::jwt_key_path(app.data.path())).expect("jwt key");
        let expired = jsonwebtoken::encode(&header, &claims(secs - 3600), &jsonwebtoken::EncodingKey::from_secret(&key)).expect("expire");

        let mut fx = Fixtures {
            app,
            a,
            b,
            consumer,
            admin,
            a_email,
            forged,
            unsigned,
            expired,
            logged_out: String::new(),
            revoked_key: String::new(),
            own_key: String::new(),
            values: Vec::new(),
            refresh_tokens: HashMap::new(),
            raw_markers: Vec::new(),
        };
        let (access, _) = fx.login().await;
        let res = fx
            .app
            .client
            .post(format!("{}/auth/logout", fx.app.base))
            .bearer_auth(&access)
            .send()
            .await
            .expect("logout");
        assert_eq!(res.status().as_u16(), 204);
        fx.logged_out = access;
        for row in ["refresh", "logout"] {
            for who in EVERYONE {
                let (_, refresh) = fx.login().await;
                fx.refresh_tokens.insert((row, who), refresh);
            }
        }

        // API keys: A's live one, a revoked one, and one the matrix revokes.
        fx.own_key = fx.api_key("a-bridge").await.1;
        let (revoked_id, revoked) = fx.api_key("a-old-bridge").await;
        let res = fx
            .app
            .client
            .delete(format!("{}/api-keys/{revoked_id}", fx.app.base))
            .bearer_auth(fx.root().await)
            .send()
            .await
            .expect("revoke");
        assert_eq!(res.status().as_u16(), 204);
        fx.revoked_key = revoked;
        let (revocable, _) = fx.api_key("a-spare-bridge").await;

        // Images: each provider's anonymized and rejected uploads ...
        let a_token = fx.app.token(&fx.a, Role::Proveedor).await;
        let b_token = fx.app.token(&fx.b, Role::Proveedor).await;
        let a_img = fx.upload(&a_token, A_IMAGE).await;
        let a_rej = fx.upload(&a_token, A_REJECTED).await;
        let b_img = fx.upload(&b_token, B_IMAGE).await;
        let b_rej = fx.upload(&b_token, B_REJECTED).await;
        // ... and one of A's that stays `registrada`: its raw blob is stored and the catalog has
        // its registration, but no anonymizer ever sees it (the state between an upload and its
        // outcome, held still).
        let bytes = fixture(A_PENDING);
        let (blob_key, sha256) = fx.app.blobs.put_bytes(RAW, bytes.clone().into()).await.expect("raw blob");
        let a_pend = uuid::Uuid::now_v7().to_string();
        let registered = ImagenRegistrada {
            event_id: new_event_id(),
            occurred_at: now_millis(),
            actor: fx.a.clone(),
            image_id: a_pend.clone(),
            provider_id: fx.a.clone(),
            blob_key,
            sha256,
            size_bytes: i64::try_from(bytes.len()).expect("size"),
            media_type: "application/dicom".into(),
            profile: Profile::default(),
            source: "rest".into(),
            request_id: new_event_id(),
            tipo_imagen: None,
            region_anatomica: None,
            http_request_id: None,
            institucion_id: None,
        };
        fx.app
            .catalog
            .apply(vec![CatalogEvent::Registered(registered)])
            .await
            .expect("registered");

        let anonymized = fx.until_estado(&a_img, "anonimizada").await;
        fx.until_estado(&b_img, "anonimizada").await;
        fx.until_estado(&a_rej, "rechazada").await;
        fx.until_estado(&b_rej, "rechazada").await;
        fx.until_estado(&a_pend, "registrada").await;
        fx.until_analysed(&a_img).await;
        fx.until_analysed(&b_img).await;
        let (status, v) = fx.post("/reportes", Some(&a_token), json!({"formato": "csv"})).await;
        assert_eq!(status, 202, "A's report: {v}");
        let a_report = v["id"].as_str().expect("report id").to_owned();
        let deadline = Instant::now() + Duration::from_secs(30);
        while fx.get(&format!("/reportes/{a_report}"), &a_token).await.0 != 200 {
            assert!(Instant::now() < deadline, "A's report was never ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        for id in [&fx.a, &fx.b, &fx.consumer, &fx.admin] {
            fx.until_user(id).await;
        }

        // A has money to be paid: the consumer downloads A's image once, and billing credits A.
        let (status, _) = fx
            .get(
                &format!("/imagenes/{a_img}/anonimizada"),
                &fx.app.consumer_token(&fx.consumer).await,
            )
            .await;
        assert_eq!(status, 200);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let balances = fx.app.ledger.balances(&fx.a).await.expect("balances");
            if balances.iter().any(|b| b.currency == "EUR" && b.pending_minor >= 1) {
                break;
            }
            assert!(Instant::now() < deadline, "billing never credited A: {balances:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        let uid = |k: &str| anonymized["anonymized"][k].as_str().expect(k).to_owned();
        let (study, series, sop) = (uid("study_uid"), uid("series_uid"), uid("sop_instance_uid"));
        let (raw_study, raw_series, raw_sop) = raw_uids(A_IMAGE);
        let (rej_study, rej_series, rej_sop) = raw_uids(A_REJECTED);
        let (pend_study, pend_series, pend_sop) = raw_uids(A_PENDING);
        let (up_study, _, up_sop) = raw_uids(UPLOADED);
        let (_, _, b_sop) = raw_uids(B_IMAGE);
        fx.raw_markers = vec![raw_study.clone(), raw_sop.clone(), up_sop, b_sop, pend_sop.clone()];
        fx.values = vec![
            ("{A}", fx.a.clone()),
            ("{B}", fx.b.clone()),
            ("{consumer}", fx.consumer.clone()),
            ("{a_img}", a_img),
            ("{a_report}", a_report),
            ("{a_rej}", a_rej),
            ("{a_pend}", a_pend),
            ("{b_img}", b_img),
            ("{b_rej}", b_rej),
            ("{unknown}", uuid::Uuid::now_v7().to_string()),
            ("{study}", study),
            ("{series}", series),
            ("{sop}", sop),
            ("{raw_study}", raw_study),
            ("{raw_series}", raw_series),
            ("{raw_sop}", raw_sop),
            ("{rej_study}", rej_study),
            ("{rej_series}", rej_series),
            ("{rej_sop}", rej_sop),
            ("{pend_study}", pend_study),
            ("{pend_series}", pend_series),
            ("{pend_sop}", pend_sop),
            ("{up_study}", up_study),
            ("{key_id}", revocable),
        ];
        fx
    }

    fn fill(&self, template: &str) -> String {
        let mut path = template.to_owned();
        for (k, v) in &self.values {
            path = path.replace(k, v);
        }
        assert!(!path.contains('{'), "unfilled placeholder in {template}");
        path
    }

    /// One request by `who`, with a fresh token where `who` has one.
    async fn send(&self, who: Who, method: &Method, path: &str, body: Body) -> (u16, Vec<u8>) {
        let app = &self.app;
        let mut req = app.client.request(method.clone(), format!("{}{path}", app.base));
        req = match who {
            Who::Anonymous => req,
            Who::Forged => req.bearer_auth(&self.forged),
            Who::Unsigned => req.bearer_auth(&self.unsigned),
            Who::Expired => req.bearer_auth(&self.expired),
            Who::LoggedOut => req.bearer_auth(&self.logged_out),
            Who::UnknownKey => req.header("x-api-key", UNKNOWN_KEY),
            Who::RevokedKey => req.header("x-api-key", &self.revoked_key),
            Who::Own => req.bearer_auth(app.token(&self.a, Role::Proveedor).await),
            Who::Other => req.bearer_auth(app.token(&self.b, Role::Proveedor).await),
            Who::Consumer => req.bearer_auth(app.consumer_token(&self.consumer).await),
            Who::Admin => req.bearer_auth(app.token(&self.admin, Role::Admin).await),
            Who::OwnKey => req.header("x-api-key", &self.own_key),
        };
        req = match body {
            Body::Empty => req,
            Body::Json(v) => req.json(&v),
            Body::Bytes(ct, bytes) => req.header("content-type", ct).body(bytes),
        };
        let res = req.send().await.unwrap_or_else(|e| panic!("{method} {path} as {who:?}: {e}"));
        let status = res.status().as_u16();
        // A stream of events never ends: its status and headers are the answer.
        let stream = res
            .headers()
            .get("content-type")
            .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
        let body = if stream {
            Vec::new()
        } else {
            res.bytes().await.expect("body").to_vec()
        };
        (status, body)
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// The matrix as a table (`got` where it matches, `got≠expected` where not),
/// and every problem, with the start of its answer.
fn report(rows: &[Row], answers: &[Vec<(u16, Vec<u8>)>], raw_markers: &[String]) -> (String, Vec<String>) {
    let width = rows
        .iter()
        .map(|r| r.method.as_str().len() + 1 + r.template.len())
        .max()
        .unwrap_or(0);
    let mut table = format!("{:width$}", "route");
    for who in EVERYONE {
        let _ = write!(table, " {:>8}", who.column());
    }
    table.push('\n');
    let mut problems = Vec::new();
    for (row, got) in rows.iter().zip(answers) {
        let _ = write!(table, "{:width$}", format!("{} {}", row.method, row.template));
        for ((who, expected), (status, body)) in EVERYONE.iter().zip(row.expect).zip(got) {
            let excerpt = || String::from_utf8_lossy(&body[..body.len().min(240)]).into_owned();
            let cell = if *status == expected {
                status.to_string()
            } else {
                problems.push(format!(
                    "{} {} as {}: {status}, expected {expected}: {}",
                    row.method,
                    row.path,
                    who.column(),
                    excerpt()
                ));
                format!("{status}≠{expected}")
            };
            let _ = write!(table, " {cell:>8}");
            let ok = (200..300).contains(status);
            if ok && row.serves == Serves::Raw {
                problems.push(format!(
                    "{} {} as {}: {status} for bytes never anonymized",
                    row.method,
                    row.path,
                    who.column()
                ));
            }
            if ok && row.serves == Serves::ImageData {
                if body.is_empty() {
                    problems.push(format!("{} {} as {}: an empty {status}", row.method, row.path, who.column()));
                }
                for marker in raw_markers {
                    if contains(body, marker.as_bytes()) {
                        problems.push(format!(
                            "{} {} as {}: the answer holds {marker}, an identifier from before de-identification",
                            row.method,
                            row.path,
                            who.column()
                        ));
                    }
                }
            }
        }
        table.push('\n');
    }
    (table, problems)
}

/// Every `(method, path template)` the listener serves: the operations of its OpenAPI document,
/// which each service builds from the same declarations as its router (and the platform from its
/// probes' and the document's own), so a route added without a row here fails this test.
fn declared_routes() -> Vec<(String, String)> {
    let doc = alpes::app::openapi_document().expect("the document");
    let out: Vec<(String, String)> = alpes_platform::openapi::operations(&doc)
        .into_iter()
        .filter(|(_, _, pending)| !pending)
        .map(|(method, path, _)| (method, path))
        .collect();
    assert!(out.len() >= 30, "the operations were not found: {out:?}");
    out
}

/// The declared template a concrete path is served by (query string aside).
fn template_of<'a>(declared: &'a [(String, String)], method: &Method, path: &str) -> Option<&'a str> {
    let path = path.split('?').next().unwrap_or(path);
    let segments: Vec<&str> = path.split('/').collect();
    declared
        .iter()
        .filter(|(m, _)| m == method.as_str())
        .map(|(_, t)| t.as_str())
        .filter(|t| {
            let parts: Vec<&str> = t.split('/').collect();
            parts.len() == segments.len() && parts.iter().zip(&segments).all(|(p, s)| p.starts_with('{') || p == s)
        })
        // A literal segment wins over a parameter, as in the router.
        .max_by_key(|t| t.split('/').filter(|p| !p.starts_with('{')).count())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_every_principal_as_the_rules_say() {
    let fx = Fixtures::set_up().await;
    let rows = rows(&fx, &fx.app.token(&fx.a, Role::Proveedor).await);

    // The matrix covers every route both routers declare, and nothing else.
    let declared = declared_routes();
    let mut covered = std::collections::BTreeSet::new();
    for row in &rows {
        let template = template_of(&declared, &row.method, &row.path)
            .unwrap_or_else(|| panic!("{} {} is served by no declared route", row.method, row.template));
        covered.insert((row.method.as_str().to_owned(), template.to_owned()));
    }
    let missing: Vec<_> = declared.iter().filter(|d| !covered.contains(*d)).collect();
    assert!(missing.is_empty(), "routes without a row in the matrix: {missing:?}");

    let mut answers = Vec::with_capacity(rows.len());
    for row in &rows {
        let mut got = Vec::with_capacity(EVERYONE.len());
        for who in EVERYONE {
            got.push(fx.send(who, &row.method, &row.path, (row.body)(who)).await);
        }
        answers.push(got);
    }
    let (table, problems) = report(&rows, &answers, &fx.raw_markers);
    let size = format!(
        "{} rows over {} routes × {} principals = {} requests",
        rows.len(),
        covered.len(),
        EVERYONE.len(),
        rows.len() * EVERYONE.len()
    );
    assert!(
        problems.is_empty(),
        "{size}; {} answers are wrong:\n{table}\n{}",
        problems.len(),
        problems.join("\n")
    );
    println!("{size}\n{table}");
    fx.app.shutdown.trigger();
    fx.app.task.await.expect("join").expect("clean stop");
}
