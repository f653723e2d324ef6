//! WADO-RS bulk data other than Pixel Data: the metadata gives a large binary
//! attribute (here an overlay's data) by its `BulkDataURI`, which answers the
//! attribute's value, metered like a download; small ones stay inline.

mod common;

use alpes_platform::auth::Role;
use alpes_platform::store::conformance::{registered, user};
use alpes_platform::store::CatalogStore;
use alpes_schemas::EventoUsoDatos;
use std::time::Duration;

const CONSUMER: Option<(&str, Role)> = Some(("lab-1", Role::Consumidor));
const INSTANCE: &str = "/studies/6.6/series/6.6.1/instances/6.6.1.1";
const OVERLAY_DATA: dicom_core::Tag = dicom_core::Tag(0x6000, 0x3000);

fn fixture() -> Vec<u8> {
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../anonymizer/tests/fixtures/dicom/examples_overlay.dcm"
    ))
    .expect("fixture")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_binary_attribute_is_given_by_its_bulk_data_uri_and_served_metered() {
    let app = common::spawn_app().await;
    let bytes = fixture();
    let instance = ("6.6", "6.6.1", "6.6.1.1", "MR", "PSEUDO-6", "20200102");
    let e = common::stored_output(&app, bytes.clone(), "o", instance).await;
    app.catalog
        .apply(vec![registered("r1", "o", "p1", 100), e, user("w2", "lab-1", "consumidor", 2)])
        .await
        .expect("seed");
    let usage = app.consumer::<EventoUsoDatos>();

    let meta: serde_json::Value = app
        .get_raw(&format!("{INSTANCE}/metadata"), CONSUMER, &[])
        .await
        .json()
        .await
        .expect("json");
    let overlay = &meta[0]["60003000"];
    assert!(overlay.get("InlineBinary").is_none(), "{overlay}");
    let uri = overlay["BulkDataURI"].as_str().expect("a BulkDataURI").to_owned();
    assert_eq!(uri, format!("{}{INSTANCE}/bulkdata/60003000", app.base));

    let res = app.get_raw(uri.trim_start_matches(&app.base), CONSUMER, &[]).await;
    assert_eq!(res.status(), 200);
    let ct = res.headers()["content-type"].to_str().expect("type").to_owned();
    assert!(ct.starts_with("multipart/related; type=\"application/octet-stream\""), "{ct}");
    let body = res.bytes().await.expect("body");
    let obj = dicom_object::OpenFileOptions::new().from_reader(&bytes[..]).expect("fixture");
    let value = obj.element(OVERLAY_DATA).expect("overlay").to_bytes().expect("bytes").to_vec();
    assert!(value.len() > 1024, "a large value");
    assert!(
        body.windows(value.len()).any(|w| w == value.as_slice()),
        "the part is the overlay's data"
    );
    let events = app.events::<EventoUsoDatos>(&usage, 1, Duration::from_secs(60)).await;
    assert_eq!(events[0].bytes, value.len() as i64, "metered with the bytes served");

    for missing in ["54001010", "6000300", "zzzzzzzz"] {
        let res = app.get_raw(&format!("{INSTANCE}/bulkdata/{missing}"), CONSUMER, &[]).await;
        assert_eq!(res.status(), 404, "{missing}");
    }
}
