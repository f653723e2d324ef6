//! The image, user and DICOMweb routes over a seeded catalog and real blobs:
//! who sees what, filters, stable pages, ETags, 404 and 409, Range, and the
//! usage event every retrieval produces.

mod common;

use alpes_platform::auth::Role;
use alpes_platform::store::conformance::{anonymized, registered, rejected, user};
use alpes_platform::store::CatalogStore;
use alpes_schemas::EventoUsoDatos;
use std::time::Duration;

const ADMIN: Option<(&str, Role)> = Some(("admin-1", Role::Admin));
const CONSUMER: Option<(&str, Role)> = Some(("lab-1", Role::Consumidor));
const PROVIDER: Option<(&str, Role)> = Some(("p1", Role::Proveedor));

/// Images a (p1, CT, anonymized, with real bytes), b (p1, registered), c (p2, rejected),
/// d (p2, MR, anonymized), and users.
async fn seeded() -> (common::TestApp, Vec<u8>) {
    let app = common::spawn_app().await;
    let bytes = common::fixture();
    let a = common::image_a(&app).await;
    app.catalog
        .apply(vec![
            registered("r1", "a", "p1", 100),
            a,
            registered("r2", "b", "p1", 200),
            registered("r3", "c", "p2", 300),
            rejected("x3", "c", "p2", 310),
            registered("r4", "d", "p2", 400),
            anonymized("n4", "d", "p2", 410, ("9.9", "9.9.1", "9.9.1.1", "MR", "PSEUDO-2", "20220202")),
            user("w1", "p1", "proveedor", 1),
            user("w2", "lab-1", "consumidor", 2),
        ])
        .await
        .expect("seed");
    (app, bytes)
}

fn ids(v: &serde_json::Value) -> Vec<String> {
    v["imagenes"]
        .as_array()
        .expect("imagenes")
        .iter()
        .map(|i| i["image_id"].as_str().expect("id").to_owned())
        .collect()
}

#[tokio::test]
async fn listing_filters_by_role_and_query_and_pages_stably() {
    let (app, _) = seeded().await;
    assert_eq!(ids(&app.get("/imagenes", ADMIN).await.1), vec!["d", "c", "b", "a"]);
    assert_eq!(
        ids(&app.get("/imagenes", CONSUMER).await.1),
        vec!["d", "a"],
        "a consumer sees anonymized images only"
    );
    assert_eq!(
        ids(&app.get("/imagenes", PROVIDER).await.1),
        vec!["b", "a"],
        "a provider sees its own"
    );
    assert_eq!(app.get("/imagenes?proveedor_id=p2", PROVIDER).await.0, 403);
    assert_eq!(app.get("/imagenes?estado=rechazada", CONSUMER).await.0, 403);
    assert_eq!(ids(&app.get("/imagenes?modalidad=ct", ADMIN).await.1), vec!["a"]);
    assert_eq!(ids(&app.get("/imagenes?estado=rechazada", ADMIN).await.1), vec!["c"]);
    assert_eq!(
        ids(&app.get("/imagenes?proveedor_id=p2&region_anatomica=torax", ADMIN).await.1),
        vec!["d", "c"]
    );
    assert_eq!(
        ids(&app.get("/imagenes?creada_desde=200&creada_hasta=400", ADMIN).await.1),
        vec!["c", "b"]
    );

    let (_, first) = app.get("/imagenes?limit=2", ADMIN).await;
    assert_eq!(ids(&first), vec!["d", "c"]);
    app.catalog
        .apply(vec![registered("r9", "z", "p1", 900)])
        .await
        .expect("a newer image");
    let cursor = first["next_cursor"].as_str().expect("a cursor");
    let (_, second) = app.get(&format!("/imagenes?limit=2&cursor={cursor}"), ADMIN).await;
    assert_eq!(ids(&second), vec!["b", "a"], "the page boundary held");
    assert!(second["next_cursor"].is_null());

    for (path, code) in [
        ("/imagenes?limit=0", "bad_limit"),
        ("/imagenes?limit=1001", "bad_limit"),
        ("/imagenes?estado=perdida", "bad_estado"),
        ("/imagenes?cursor=nope", "bad_cursor"),
        ("/imagenes?color=azul", "bad_query"),
    ] {
        let (status, body) = app.get(path, ADMIN).await;
        assert_eq!((status, body["error"].as_str()), (400, Some(code)), "{path}");
    }
    assert_eq!(app.get("/imagenes", None).await.0, 401);
}

#[tokio::test]
async fn an_image_that_changes_is_answered_with_its_new_body_and_a_new_etag() {
    let (app, _) = seeded().await;
    let before = app.get_raw("/imagenes/b", ADMIN, &[]).await;
    let etag = before.headers()["etag"].to_str().expect("etag").to_owned();
    assert_eq!(before.json::<serde_json::Value>().await.expect("json")["estado"], "registrada");
    assert_eq!(app.get_raw("/imagenes/b", ADMIN, &[("if-none-match", &etag)]).await.status(), 304);
    app.catalog
        .apply(vec![anonymized(
            "n2",
            "b",
            "p1",
            210,
            ("5.5", "5.5.1", "5.5.1.1", "US", "PSEUDO-3", "20210303"),
        )])
        .await
        .expect("anonymized");
    let after = app.get_raw("/imagenes/b", ADMIN, &[("if-none-match", &etag)]).await;
    assert_eq!(after.status(), 200, "the old ETag no longer matches");
    assert_ne!(after.headers()["etag"].to_str().expect("etag"), etag);
    let body: serde_json::Value = after.json().await.expect("json");
    assert_eq!(
        (body["estado"].as_str(), body["descarga"].as_str()),
        (Some("anonimizada"), Some("/imagenes/b/anonimizada"))
    );
}

#[tokio::test]
async fn one_image_has_its_state_report_price_and_etag() {
    let (app, _) = seeded().await;
    let res = app.get_raw("/imagenes/a", CONSUMER, &[]).await;
    assert_eq!(res.status(), 200);
    let etag = res.headers()["etag"].to_str().expect("etag").to_owned();
    let a: serde_json::Value = res.json().await.expect("json");
    assert_eq!(
        (a["estado"].as_str(), a["precio_minor"].as_i64(), a["currency"].as_str()),
        (Some("anonimizada"), Some(250), Some("EUR"))
    );
    assert_eq!(a["anonymized"]["report"]["uids_remapped"], 3);
    assert_eq!(a["descarga"], "/imagenes/a/anonimizada");
    assert!(a["anonymized"].get("blob_key").is_none(), "storage keys stay internal");
    let again = app.get_raw("/imagenes/a", CONSUMER, &[("if-none-match", &etag)]).await;
    assert_eq!(again.status(), 304);
    assert_eq!(app.get("/imagenes/c", ADMIN).await.1["estado"], "rechazada");
    assert_eq!(app.get("/imagenes/c", ADMIN).await.1["rejection_reason"], "not_dicom");
    assert_eq!(app.get("/imagenes/nope", ADMIN).await.0, 404);
    assert_eq!(
        app.get("/imagenes/b", CONSUMER).await.0,
        404,
        "not anonymized: not visible to consumers"
    );
    assert_eq!(app.get("/imagenes/d", PROVIDER).await.0, 404, "another provider's image");
}

#[tokio::test]
async fn an_image_answers_the_vocabulary_and_the_deprecated_names_alike() {
    let (app, bytes) = seeded().await;
    let (status, a) = app.get("/imagenes/a", CONSUMER).await;
    assert_eq!(status, 200);
    for (new, old) in [
        ("id", "image_id"),
        ("proveedor_id", "provider_id"),
        ("creada_at", "created_at"),
        ("modalidad", "modality"),
        ("motivo_rechazo", "rejection_reason"),
        ("moneda", "currency"),
    ] {
        assert_eq!(a[new], a[old], "{new} and {old}");
    }
    assert_eq!((a["id"].as_str(), a["moneda"].as_str()), (Some("a"), Some("EUR")));
    let (new, old) = (&a["anonimizada"], &a["anonymized"]);
    assert_eq!(new["tamano_bytes"].as_i64(), Some(bytes.len() as i64));
    for (n, o) in [
        ("tamano_bytes", "size_bytes"),
        ("tipo_medio", "media_type"),
        ("anonimizada_at", "anonymized_at"),
        ("informe", "report"),
        ("study_uid", "study_uid"),
        ("sha256", "sha256"),
    ] {
        assert_eq!(new[n], old[o], "{n} and {o}");
    }
    assert!(new.get("blob_key").is_none() && new.get("size_bytes").is_none());
    let (_, page) = app.get("/imagenes?limit=10", ADMIN).await;
    let listed = &page["imagenes"].as_array().expect("imagenes")[0];
    assert_eq!(listed["id"], listed["image_id"]);
    assert!(listed.get("precio_minor").is_none(), "a listing has no prices");
}

#[tokio::test]
async fn a_user_is_named_from_its_account_in_both_vocabularies() {
    use alpes_platform::store::{IdentityStore, NewAccount};
    let (app, _) = seeded().await;
    app.identity
        .create_account(NewAccount {
            user_id: "lab-1".into(),
            nombre: "Laboratorio Uno".into(),
            email: "lab@example.org".into(),
            password_hash: "x".into(),
            role: Role::Consumidor,
            organization: None,
            created_at: 2,
            created_by: "lab-1".into(),
        })
        .await
        .expect("account");
    let (status, me) = app.get("/usuarios/lab-1", CONSUMER).await;
    assert_eq!(status, 200);
    assert_eq!(
        (
            me["id"].as_str(),
            me["nombre"].as_str(),
            me["rol"].as_str(),
            me["creado_at"].as_i64()
        ),
        (Some("lab-1"), Some("Laboratorio Uno"), Some("consumidor"), Some(2))
    );
    assert_eq!((me["user_id"].as_str(), me["role"].as_str()), (Some("lab-1"), Some("consumidor")));
    assert_eq!(me["organizacion"], me["organization"]);
    assert!(me.to_string().find("lab@example.org").is_none(), "the email stays in the account");
    let (_, page) = app.get("/usuarios", ADMIN).await;
    let names: Vec<(&str, Option<&str>)> = page["usuarios"]
        .as_array()
        .expect("usuarios")
        .iter()
        .map(|u| (u["id"].as_str().expect("id"), u["nombre"].as_str()))
        .collect();
    assert_eq!(names, [("p1", None), ("lab-1", Some("Laboratorio Uno"))], "p1 has no account here");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_streams_the_bytes_supports_ranges_and_is_metered() {
    let (app, bytes) = seeded().await;
    let usage = app.consumer::<EventoUsoDatos>();
    let res = app.get_raw("/imagenes/a/anonimizada", CONSUMER, &[]).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/dicom");
    assert_eq!(res.headers()["accept-ranges"], "bytes");
    assert_eq!(res.bytes().await.expect("body").to_vec(), bytes);
    // A HEAD tells the size and sends nothing: it is not metered.
    let (user, role) = CONSUMER.expect("a consumer");
    let head = app
        .client
        .head(format!("{}/imagenes/a/anonimizada", app.base))
        .bearer_auth(app.jwt.issue(user, role, Duration::from_secs(60)).expect("token"))
        .send()
        .await
        .expect("head");
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["content-length"], bytes.len().to_string().as_str());

    let res = app
        .get_raw("/imagenes/a/anonimizada", CONSUMER, &[("range", "bytes=128-131")])
        .await;
    assert_eq!(res.status(), 206);
    assert_eq!(res.headers()["content-range"], format!("bytes 128-131/{}", bytes.len()));
    assert_eq!(res.bytes().await.expect("body").as_ref(), b"DICM");
    let past = format!("bytes={}-", bytes.len());
    assert_eq!(
        app.get_raw("/imagenes/a/anonimizada", CONSUMER, &[("range", &past)]).await.status(),
        416
    );

    let events = app.events::<EventoUsoDatos>(&usage, 2, Duration::from_secs(60)).await;
    assert_eq!(events.len(), 2, "one usage event per retrieval (the 416 served nothing)");
    assert!(
        app.events::<EventoUsoDatos>(&usage, 1, Duration::from_secs(2)).await.is_empty(),
        "the HEAD was not metered"
    );
    let e = &events[0];
    assert_eq!(
        (e.consumer_id.as_str(), e.provider_id.as_str(), e.image_id.as_str()),
        ("lab-1", "p1", "a")
    );
    assert_eq!((e.amount_minor, e.currency.as_str(), e.bytes), (250, "EUR", bytes.len() as i64));
    assert_eq!(events[1].bytes, 4);
    assert_ne!(events[0].event_id, events[1].event_id);
    assert_eq!(events[0].dedupe_key, events[1].dedupe_key, "one repeat window: one charge key");

    let (status, body) = app.get("/imagenes/b/anonimizada", ADMIN).await;
    assert_eq!((status, body["error"].as_str()), (409, Some("not_anonymized")));
    assert_eq!(app.get("/imagenes/c/anonimizada", ADMIN).await.0, 409);
    assert_eq!(app.get("/imagenes/nope/anonimizada", CONSUMER).await.0, 404);
    assert_eq!(app.get("/imagenes/a/anonimizada", PROVIDER).await.0, 403);
}

#[tokio::test]
async fn users_are_listed_by_admins_and_read_by_themselves() {
    let (app, _) = seeded().await;
    let (status, page) = app.get("/usuarios?limit=1", ADMIN).await;
    assert_eq!(status, 200);
    assert_eq!(page["usuarios"][0]["user_id"], "p1");
    let cursor = page["next_cursor"].as_str().expect("cursor");
    let (_, rest) = app.get(&format!("/usuarios?cursor={cursor}"), ADMIN).await;
    assert_eq!(rest["usuarios"][0]["user_id"], "lab-1");
    assert_eq!(
        app.get("/usuarios?rol=consumidor", ADMIN).await.1["usuarios"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    assert_eq!(app.get("/usuarios?rol=jefe", ADMIN).await.0, 400);
    assert_eq!(app.get("/usuarios", CONSUMER).await.0, 403);
    let (status, me) = app.get("/usuarios/lab-1", CONSUMER).await;
    assert_eq!((status, me["role"].as_str()), (200, Some("consumidor")));
    let text = me.to_string();
    assert!(!text.contains("hash") && !text.contains("secret") && !text.contains("password"));
    assert_eq!(app.get("/usuarios/p1", CONSUMER).await.0, 403);
    assert_eq!(app.get("/usuarios/nobody", ADMIN).await.0, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qido_searches_and_wado_retrieves_the_anonymized_set() {
    let (app, bytes) = seeded().await;
    let json = |r: reqwest::Response| async move {
        assert_eq!(r.headers()["content-type"], "application/dicom+json");
        r.json::<serde_json::Value>().await.expect("json")
    };
    // RetrieveURLs name the configured public URL, whatever Host the client sends.
    let studies = json(
        app.get_raw("/studies?ModalitiesInStudy=CT", CONSUMER, &[("host", "evil.example")])
            .await,
    )
    .await;
    assert_eq!(studies.as_array().map(Vec::len), Some(1));
    assert_eq!(studies[0]["00081190"]["Value"][0], format!("{}/studies/1.2.3", app.base));
    assert_eq!(studies[0]["0020000D"]["Value"][0], "1.2.3");
    assert_eq!(studies[0]["00100020"]["Value"][0], "PSEUDO-1");
    assert_eq!(studies[0]["00201208"]["Value"][0], 1);
    let by_date = json(app.get_raw("/studies?StudyDate=20220101-", CONSUMER, &[]).await).await;
    assert_eq!(by_date[0]["0020000D"]["Value"][0], "9.9");
    let by_patient = json(app.get_raw("/studies?00100020=PSEUDO-*&limit=1&offset=1", CONSUMER, &[]).await).await;
    assert_eq!(by_patient[0]["0020000D"]["Value"][0], "9.9");
    let series = json(app.get_raw("/studies/1.2.3/series", CONSUMER, &[]).await).await;
    assert_eq!(series[0]["0020000E"]["Value"][0], "1.2.3.4");
    let instances = json(app.get_raw("/studies/1.2.3/series/1.2.3.4/instances", CONSUMER, &[]).await).await;
    assert_eq!(instances[0]["00080018"]["Value"][0], "1.2.3.4.5");
    let warned = app.get_raw("/studies?PatientName=*", CONSUMER, &[]).await;
    assert!(warned.headers()["warning"].to_str().expect("warning").contains("PatientName"));
    // Ignoring a key that narrows would answer more than asked: it is refused.
    let refused = app.get_raw("/studies?PatientName=X", CONSUMER, &[]).await;
    assert_eq!(refused.status(), 400);
    assert_eq!(
        refused.json::<serde_json::Value>().await.expect("json")["error"],
        "unsupported_match"
    );
    // A page cut at its limit says where the next one starts; the last page does not.
    let cut = app.get_raw("/studies?limit=1", CONSUMER, &[]).await;
    let warning = cut.headers()["warning"].to_str().expect("warning").to_owned();
    assert!(warning.contains("offset=1"), "{warning}");
    assert_eq!(json(cut).await.as_array().map(Vec::len), Some(1));
    let last = app.get_raw("/studies?limit=1&offset=1", CONSUMER, &[]).await;
    assert!(last.headers().get("warning").is_none(), "{:?}", last.headers());
    assert_eq!(json(last).await.as_array().map(Vec::len), Some(1));
    // Lists of UIDs and of modalities: any of them, in the catalog's order, paged as one search.
    let uids = |v: &serde_json::Value, tag: &str| -> Vec<String> {
        let items = v.as_array().expect("an array").iter();
        items.map(|s| s[tag]["Value"][0].as_str().expect("a UID").to_owned()).collect()
    };
    let listed = json(app.get_raw("/studies?StudyInstanceUID=9.9,1.2.3", CONSUMER, &[]).await).await;
    assert_eq!(uids(&listed, "0020000D"), ["1.2.3", "9.9"]);
    let first = app.get_raw("/studies?ModalitiesInStudy=CT\\MR&limit=1", CONSUMER, &[]).await;
    assert!(first.headers()["warning"].to_str().expect("warning").contains("offset=1"));
    assert_eq!(uids(&json(first).await, "0020000D"), ["1.2.3"]);
    let second = json(
        app.get_raw("/studies?ModalitiesInStudy=CT,MR&limit=1&offset=1", CONSUMER, &[])
            .await,
    )
    .await;
    assert_eq!(uids(&second, "0020000D"), ["9.9"]);
    let both = json(app.get_raw("/studies?StudyInstanceUID=1.2.3,9.9&Modality=MR", CONSUMER, &[]).await).await;
    assert_eq!(uids(&both, "0020000D"), ["9.9"]);
    // The path's study stands over a list in the query string.
    let scoped = json(app.get_raw("/studies/1.2.3/series?StudyInstanceUID=9.9,1.2.3", CONSUMER, &[]).await).await;
    assert_eq!(uids(&scoped, "0020000D"), ["1.2.3"]);
    let sops = json(app.get_raw("/instances?SOPInstanceUID=9.9.1.1,1.2.3.4.5,7.7", CONSUMER, &[]).await).await;
    assert_eq!(uids(&sops, "00080018"), ["1.2.3.4.5", "9.9.1.1"]);
    assert_eq!(app.get_raw("/studies?StudyDate=2020", CONSUMER, &[]).await.status(), 400);
    // Keys of the instance level are taken by instance searches, not above them.
    let ct = "1.2.840.10008.5.1.4.1.1.2";
    let by_class = json(app.get_raw(&format!("/instances?SOPClassUID={ct},1.2.9"), CONSUMER, &[]).await).await;
    assert_eq!(uids(&by_class, "00080018"), ["1.2.3.4.5", "9.9.1.1"]);
    let none = json(app.get_raw("/instances?00080016=1.2.9", CONSUMER, &[]).await).await;
    assert_eq!(none, serde_json::json!([]));
    let refused = app.get_raw(&format!("/studies?SOPClassUID={ct}"), CONSUMER, &[]).await;
    assert_eq!(refused.status(), 400);
    assert_eq!(
        refused.json::<serde_json::Value>().await.expect("json")["error"],
        "unsupported_match"
    );

    let usage = app.consumer::<EventoUsoDatos>();
    let res = app
        .get_raw("/studies/1.2.3/series/1.2.3.4/instances/1.2.3.4.5", CONSUMER, &[])
        .await;
    assert_eq!(res.status(), 200);
    let ct = res.headers()["content-type"].to_str().expect("type").to_owned();
    assert!(ct.starts_with("multipart/related; type=\"application/dicom\"; boundary="), "{ct}");
    let body = res.bytes().await.expect("body");
    assert!(body.windows(bytes.len()).any(|w| w == bytes.as_slice()), "the part is the blob");
    let events = app.events::<EventoUsoDatos>(&usage, 1, Duration::from_secs(60)).await;
    assert_eq!((events[0].image_id.as_str(), events[0].amount_minor), ("a", 250));
    let refused = app.get_raw("/studies/1.2.3", CONSUMER, &[("accept", "application/json")]).await;
    assert_eq!(refused.status(), 406);
    assert_eq!(
        app.get_raw("/studies/7.7.7/series/1/instances/2", CONSUMER, &[]).await.status(),
        404
    );

    let meta = app
        .get_raw("/studies/1.2.3/series/1.2.3.4/instances/1.2.3.4.5/metadata", CONSUMER, &[])
        .await;
    assert_eq!(meta.status(), 200);
    let etag = meta.headers()["etag"].to_str().expect("etag").to_owned();
    let meta = json(meta).await;
    assert_eq!(meta[0]["00080060"]["Value"][0], "CT");
    // Pixel Data is not inline: the metadata names it by its BulkDataURI, under the public URL.
    let pixel = &meta[0]["7FE00010"];
    assert!(pixel.get("Value").is_none() && pixel.get("InlineBinary").is_none(), "{pixel}");
    assert_eq!(pixel["vr"], "OW", "CT_small is 16-bit native");
    let uri = pixel["BulkDataURI"].as_str().expect("a BulkDataURI").to_owned();
    assert_eq!(
        uri,
        format!("{}/studies/1.2.3/series/1.2.3.4/instances/1.2.3.4.5/bulkdata/7FE00010", app.base)
    );
    let bulk = app.get_raw(uri.trim_start_matches(&app.base), CONSUMER, &[]).await;
    assert_eq!(bulk.status(), 200);
    assert!(bulk.headers()["content-type"]
        .to_str()
        .expect("type")
        .starts_with("multipart/related; type=\"application/octet-stream\""));
    let other = "/studies/1.2.3/series/1.2.3.4/instances/1.2.3.4.5/bulkdata/00100010";
    assert_eq!(app.get_raw(other, CONSUMER, &[]).await.status(), 404);
    let cached = app.get_raw("/studies/1.2.3/metadata", CONSUMER, &[("if-none-match", &etag)]).await;
    assert_eq!(cached.status(), 304, "the same instance set has the same ETag");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_searches_and_retrieves_its_own_studies_only_and_unmetered() {
    let (app, bytes) = seeded().await;
    let study_uids = |v: serde_json::Value| -> Vec<String> {
        let items = v.as_array().expect("an array").iter();
        items
            .map(|s| s["0020000D"]["Value"][0].as_str().expect("a UID").to_owned())
            .collect()
    };
    let search = |path: &'static str| {
        let app = &app;
        async move {
            let res = app.get_raw(path, PROVIDER, &[]).await;
            assert_eq!(res.status(), 200, "{path}");
            res.json::<serde_json::Value>().await.expect("json")
        }
    };
    // p1's study, not p2's (9.9), at every level and whatever the query names.
    assert_eq!(study_uids(search("/studies").await), ["1.2.3"]);
    assert_eq!(study_uids(search("/studies?StudyInstanceUID=9.9").await), Vec::<String>::new());
    assert_eq!(study_uids(search("/series").await), ["1.2.3"]);
    assert_eq!(study_uids(search("/instances?StudyInstanceUID=9.9,1.2.3").await), ["1.2.3"]);
    assert_eq!(search("/studies/9.9/instances").await, serde_json::json!([]));

    let usage = app.consumer::<EventoUsoDatos>();
    let own = "/studies/1.2.3/series/1.2.3.4/instances/1.2.3.4.5";
    let res = app.get_raw(own, PROVIDER, &[]).await;
    assert_eq!(res.status(), 200);
    let body = res.bytes().await.expect("body");
    assert!(body.windows(bytes.len()).any(|w| w == bytes.as_slice()), "the part is the blob");
    assert_eq!(app.get_raw(&format!("{own}/metadata"), PROVIDER, &[]).await.status(), 200);
    assert_eq!(app.get_raw(&format!("{own}/frames/1"), PROVIDER, &[]).await.status(), 200);
    // p2's instance is not there for p1, as an unknown one is not.
    for other in ["/studies/9.9", "/studies/9.9/series/9.9.1/instances/9.9.1.1/frames/1"] {
        let res = app.get_raw(other, PROVIDER, &[]).await;
        assert_eq!(res.status(), 404, "{other}");
        assert_eq!(res.json::<serde_json::Value>().await.expect("json")["error"], "not_found");
    }
    // None of it is a download: nothing is billed to, or credited to, p1 for its own images.
    let events = app.events::<EventoUsoDatos>(&usage, 1, Duration::from_secs(3)).await;
    assert!(events.is_empty(), "{events:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wado_frames_come_in_the_stored_syntax_and_are_metered_like_a_download() {
    let (app, bytes) = seeded().await;
    let obj = dicom_object::OpenFileOptions::new().from_reader(&bytes[..]).expect("fixture");
    let pixels = obj
        .element(dicom_dictionary_std::tags::PIXEL_DATA)
        .expect("pixels")
        .to_bytes()
        .expect("native")
        .to_vec();
    let frame = "/studies/1.2.3/series/1.2.3.4/instances/1.2.3.4.5/frames";
    let usage = app.consumer::<EventoUsoDatos>();
    let octets = "multipart/related; type=\"application/octet-stream\"";
    let res = app.get_raw(&format!("{frame}/1"), CONSUMER, &[("accept", octets)]).await;
    assert_eq!(res.status(), 200);
    let ct = res.headers()["content-type"].to_str().expect("type").to_owned();
    assert!(ct.starts_with(&format!("{octets}; boundary=")), "{ct}");
    let body = res.bytes().await.expect("body");
    let head = format!(
        "Content-Type: application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1\r\nContent-Length: {}\r\n\r\n",
        pixels.len()
    );
    let at = body.windows(head.len()).position(|w| w == head.as_bytes()).expect("one part");
    assert_eq!(
        &body[at + head.len()..at + head.len() + pixels.len()],
        &pixels[..],
        "the frame is CT_small's pixels"
    );
    let events = app.events::<EventoUsoDatos>(&usage, 1, Duration::from_secs(60)).await;
    assert_eq!((events[0].image_id.as_str(), events[0].bytes), ("a", pixels.len() as i64));
    let jpeg = "multipart/related; type=\"image/jpeg\"";
    assert_eq!(
        app.get_raw(&format!("{frame}/1"), CONSUMER, &[("accept", jpeg)]).await.status(),
        406
    );
    assert_eq!(app.get_raw(&format!("{frame}/2"), CONSUMER, &[]).await.status(), 404);
    assert_eq!(app.get_raw(&format!("{frame}/0"), CONSUMER, &[]).await.status(), 400);
    assert_eq!(
        app.get_raw(&format!("{frame}/1"), PROVIDER, &[]).await.status(),
        200,
        "p1's own frame"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rendered_images_and_thumbnails_are_decoded_windowed_and_sized() {
    let (app, _) = seeded().await;
    let at = "/studies/1.2.3/series/1.2.3.4/instances/1.2.3.4.5";
    let usage = app.consumer::<EventoUsoDatos>();
    let image = |r: reqwest::Response, media: &'static str| async move {
        let status = r.status();
        if status != 200 {
            panic!("{status}: {}", r.text().await.unwrap_or_default());
        }
        assert_eq!(r.headers()["content-type"], media);
        r.bytes().await.expect("body").to_vec()
    };
    let jpeg_size = |bytes: &[u8]| {
        let mut d = jpeg_decoder::Decoder::new(bytes);
        let pixels = d.decode().expect("a JPEG");
        let info = d.info().expect("info");
        (info.width, info.height, pixels)
    };
    // CT_small is 128 × 128: the first frame at its own size, windowed by its own attributes.
    let rendered = image(app.get_raw(&format!("{at}/rendered"), CONSUMER, &[]).await, "image/jpeg").await;
    let (w, h, own) = jpeg_size(&rendered);
    assert_eq!((w, h), (128, 128));
    let events = app.events::<EventoUsoDatos>(&usage, 1, Duration::from_secs(60)).await;
    assert_eq!(events[0].image_id, "a", "a rendered image is metered");
    // Another window gives other pixels; a viewport scales to fit, the aspect kept; PNG on asking.
    let narrow = image(
        app.get_raw(&format!("{at}/rendered?window=40,1"), CONSUMER, &[]).await,
        "image/jpeg",
    )
    .await;
    assert_ne!(jpeg_size(&narrow).2, own, "the window changes the image");
    let png = image(
        app.get_raw(
            &format!("{at}/frames/1/rendered?viewport=64,32"),
            CONSUMER,
            &[("accept", "image/png")],
        )
        .await,
        "image/png",
    )
    .await;
    let reader = png::Decoder::new(std::io::Cursor::new(png)).read_info().expect("a PNG");
    assert_eq!((reader.info().width, reader.info().height), (32, 32));
    let thumb = image(app.get_raw(&format!("{at}/thumbnail"), CONSUMER, &[]).await, "image/jpeg").await;
    let (w, h, _) = jpeg_size(&thumb);
    assert_eq!((w, h), (128, 128), "a thumbnail is at most 128 a side");
    let small = image(
        app.get_raw(&format!("{at}/thumbnail?viewport=16,16"), CONSUMER, &[]).await,
        "image/jpeg",
    )
    .await;
    let (w, h, _) = jpeg_size(&small);
    assert_eq!((w, h), (16, 16));
    for (path, accept, status) in [
        (format!("{at}/rendered"), "image/gif", 406),
        (format!("{at}/frames/2/rendered"), "image/jpeg", 404),
        (format!("{at}/frames/0/rendered"), "image/jpeg", 400),
        (format!("{at}/rendered?viewport=0,0"), "image/jpeg", 400),
        (format!("{at}/rendered?annotation=patient"), "image/jpeg", 400),
    ] {
        assert_eq!(app.get_raw(&path, CONSUMER, &[("accept", accept)]).await.status(), status, "{path}");
    }
    assert_eq!(
        app.get_raw(&format!("{at}/thumbnail"), PROVIDER, &[]).await.status(),
        200,
        "p1's own"
    );
    // A study's and a series' thumbnail: their first instance's.
    for level in ["/studies/1.2.3/thumbnail", "/studies/1.2.3/series/1.2.3.4/thumbnail"] {
        let (w, h, _) = jpeg_size(&image(app.get_raw(level, CONSUMER, &[]).await, "image/jpeg").await);
        assert_eq!((w, h), (128, 128), "{level}");
    }
    assert_eq!(app.get_raw("/studies/7.7.7/thumbnail", CONSUMER, &[]).await.status(), 404);
    // A study rendered: every instance's first frame, one part each (study 1.2.3 has one).
    let multi = "multipart/related; type=\"image/png\"";
    let study = app.get_raw("/studies/1.2.3/rendered", CONSUMER, &[("accept", multi)]).await;
    assert_eq!(study.status(), 200);
    let ct = study.headers()["content-type"].to_str().expect("type").to_owned();
    assert!(ct.starts_with(&format!("{multi}; boundary=")), "{ct}");
    let body = String::from_utf8_lossy(&study.bytes().await.expect("body")).into_owned();
    assert_eq!(body.matches("Content-Type: image/png\r\n").count(), 1, "one part");
    // A HEAD of a rendered image sends no pixels: not metered either.
    let token = app.jwt.issue("lab-1", Role::Consumidor, Duration::from_secs(60)).expect("token");
    let head = app
        .client
        .head(format!("{}{at}/rendered", app.base))
        .bearer_auth(token)
        .send()
        .await;
    assert_eq!(head.expect("HEAD").status(), 200);
    // Metered: the narrow window, the PNG frame and the study after the first; no thumbnail, no
    // error, no HEAD.
    let rest = app.events::<EventoUsoDatos>(&usage, 10, Duration::from_secs(3)).await;
    assert_eq!(rest.len(), 3, "{rest:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_sop_instance_uid_is_one_instance_the_newest_upload() {
    let (app, _) = seeded().await;
    // The same instance sent twice with other bytes: two images, one SOP Instance UID.
    let first = common::fixture();
    let mut second = first.clone();
    second.extend_from_slice(b"\0\0");
    let mut events = Vec::new();
    for (n, image, at, bytes) in [("e1", "e", 500, &first), ("f1", "f", 600, &second)] {
        let (key, sha) = app.blobs.put_bytes("anonymized", bytes.clone().into()).await.expect("blob");
        let mut out = anonymized(n, image, "p1", at + 10, ("5.5", "5.5.1", "5.5.1.1", "CT", "PSEUDO-5", "20210101"));
        if let alpes_platform::store::CatalogEvent::Anonymized(e) = &mut out {
            (e.blob_key, e.sha256, e.size_bytes) = (key, sha, bytes.len() as i64);
        }
        events.push(registered(&format!("r-{image}"), image, "p1", at));
        events.push(out);
    }
    app.catalog.apply(events).await.expect("seed");
    let res = app.get_raw("/studies/5.5/series/5.5.1/instances/5.5.1.1", CONSUMER, &[]).await;
    assert_eq!(res.status(), 200);
    let body = res.bytes().await.expect("body");
    let parts = body
        .windows(b"Content-Type: application/dicom".len())
        .filter(|w| *w == b"Content-Type: application/dicom")
        .count();
    assert_eq!(parts, 1, "one part for one instance");
    assert!(
        body.windows(second.len()).any(|w| w == second.as_slice()),
        "the newest upload's bytes"
    );
    let found = app.get_raw("/studies/5.5/instances", CONSUMER, &[]).await;
    let found: serde_json::Value = found.json().await.expect("json");
    assert_eq!(found.as_array().map(Vec::len), Some(1), "{found}");
    let meta = app.get_raw("/studies/5.5/metadata", CONSUMER, &[]).await;
    let meta: serde_json::Value = meta.json().await.expect("json");
    assert_eq!(meta.as_array().map(Vec::len), Some(1));
}
