//! WADO-RS transfer syntax negotiation: an instance stored compressed is served
//! as stored for `transfer-syntax=*`, decoded to Explicit VR Little Endian by
//! default, in another syntax dicom-rs can write when asked, and 406 when none
//! asked can be made; frames likewise; each part names its syntax, and the
//! usage event counts the bytes served.

mod common;

use alpes_domain::ledger::LedgerStore;
use alpes_platform::auth::Role;
use alpes_platform::store::conformance::{registered, user};
use alpes_platform::store::CatalogStore;
use alpes_schemas::EventoUsoDatos;
use dicom_core::value::PixelFragmentSequence;
use dicom_core::{DataElement, VR};
use dicom_dictionary_std::tags;
use dicom_pixeldata::PixelDecoder;
use std::time::Duration;

const CONSUMER: Option<(&str, Role)> = Some(("lab-1", Role::Consumidor));
const INSTANCE: &str = "/studies/5.5/series/5.5.1/instances/5.5.1.1";
const JPEG_LS_LOSSLESS: &str = "1.2.840.10008.1.2.4.80";
const EXPLICIT_LE: &str = "1.2.840.10008.1.2.1";
const IMPLICIT_LE: &str = "1.2.840.10008.1.2";

fn fixture(name: &str) -> Vec<u8> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../anonymizer/tests/fixtures/dicom/");
    std::fs::read(format!("{dir}{name}")).expect("fixture")
}

/// An app whose one anonymized instance is MR_small stored in JPEG-LS lossless.
async fn seeded() -> common::TestApp {
    seeded_with("MR_small_jpeg_ls_lossless.dcm").await
}

/// An app whose one anonymized instance, at [`INSTANCE`], is the fixture `name`.
async fn seeded_with(name: &str) -> common::TestApp {
    let app = common::spawn_app().await;
    let instance = ("5.5", "5.5.1", "5.5.1.1", "MR", "PSEUDO-5", "20200102");
    let e = common::stored_output(&app, fixture(name), "e", instance).await;
    app.catalog
        .apply(vec![registered("r1", "e", "p1", 100), e, user("w2", "lab-1", "consumidor", 2)])
        .await
        .expect("seed");
    app
}

/// The one part of a multipart body: its Content-Type and bytes.
fn only_part(body: &[u8]) -> (String, Vec<u8>) {
    let text = String::from_utf8_lossy(body);
    let ct = text
        .split("Content-Type: ")
        .nth(1)
        .and_then(|t| t.split("\r\n").next())
        .expect("a part type")
        .to_owned();
    let len: usize = text
        .split("Content-Length: ")
        .nth(1)
        .and_then(|t| t.split("\r\n").next())
        .and_then(|n| n.parse().ok())
        .expect("a part length");
    let start = body.windows(4).position(|w| w == b"\r\n\r\n").expect("headers end") + 4;
    (ct, body[start..start + len].to_vec())
}

fn native_pixels(part10: &[u8]) -> (String, Vec<u8>) {
    let obj = dicom_object::OpenFileOptions::new().from_reader(part10).expect("a DICOM part");
    let ts = obj.meta().transfer_syntax().trim_end_matches('\0').to_owned();
    let pixels = obj.element(tags::PIXEL_DATA).expect("pixels").to_bytes().expect("native").to_vec();
    (ts, pixels)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_comes_as_stored_or_transcoded_as_asked_and_each_part_names_its_syntax() {
    let app = seeded().await;
    let usage = app.consumer::<EventoUsoDatos>();
    let dicom = |ts: &str| format!("multipart/related; type=\"application/dicom\"; transfer-syntax={ts}");
    let get = |accept: String| {
        let app = &app;
        async move {
            let res = app.get_raw(INSTANCE, CONSUMER, &[("accept", &accept)]).await;
            let status = res.status().as_u16();
            (status, res.bytes().await.expect("body").to_vec())
        }
    };

    // Any syntax: as stored.
    let (status, body) = get(dicom("*")).await;
    assert_eq!(status, 200);
    let (ct, part) = only_part(&body);
    assert_eq!(ct, format!("application/dicom; transfer-syntax={JPEG_LS_LOSSLESS}"));
    assert_eq!(part, fixture("MR_small_jpeg_ls_lossless.dcm"));

    // No transfer-syntax: PS3.18's default, decoded, pixel for pixel MR_small's.
    let (status, body) = get("multipart/related; type=\"application/dicom\"".into()).await;
    assert_eq!(status, 200);
    let (ct, part) = only_part(&body);
    assert_eq!(ct, format!("application/dicom; transfer-syntax={EXPLICIT_LE}"));
    let (ts, pixels) = native_pixels(&part);
    assert_eq!(ts, EXPLICIT_LE);
    assert_eq!(pixels, native_pixels(&fixture("MR_small.dcm")).1, "lossless: the same pixels");
    let decoded_size = part.len() as i64;

    // A list: the first one that can be made (MPEG-2 cannot, implicit VR can).
    let (status, body) = get(format!("{}, {}", dicom("1.2.840.10008.1.2.4.100"), dicom(IMPLICIT_LE))).await;
    assert_eq!(status, 200);
    let (ct, part) = only_part(&body);
    assert_eq!(ct, format!("application/dicom; transfer-syntax={IMPLICIT_LE}"));
    assert_eq!(native_pixels(&part).0, IMPLICIT_LE);

    // Nothing asked can be made: 406, in JSON.
    let (status, body) = get(dicom("1.2.840.10008.1.2.4.100")).await;
    assert_eq!(status, 406);
    let error: serde_json::Value = serde_json::from_slice(&body).expect("a JSON error");
    assert_eq!(error["error"], "not_acceptable");

    // Each retrieval is metered with the bytes it served.
    let events = app.events::<EventoUsoDatos>(&usage, 3, Duration::from_secs(60)).await;
    assert!(events.iter().any(|e| e.bytes == decoded_size), "{events:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_frames_come_as_stored_or_decoded_when_only_octets_are_accepted() {
    let app = seeded().await;
    let frame = format!("{INSTANCE}/frames/1");
    let stored = app
        .get_raw(&frame, CONSUMER, &[("accept", "multipart/related; type=\"image/jls\"")])
        .await;
    assert_eq!(stored.status(), 200);
    let (ct, _) = only_part(&stored.bytes().await.expect("body"));
    assert_eq!(ct, format!("image/jls; transfer-syntax={JPEG_LS_LOSSLESS}"));

    let octets = "multipart/related; type=\"application/octet-stream\"";
    let decoded = app.get_raw(&frame, CONSUMER, &[("accept", octets)]).await;
    assert_eq!(decoded.status(), 200);
    let (ct, part) = only_part(&decoded.bytes().await.expect("body"));
    assert_eq!(ct, format!("application/octet-stream; transfer-syntax={EXPLICIT_LE}"));
    assert_eq!(
        part,
        native_pixels(&fixture("MR_small.dcm")).1,
        "the frame decoded, pixel for pixel"
    );

    let png = app
        .get_raw(&frame, CONSUMER, &[("accept", "multipart/related; type=\"image/png\"")])
        .await;
    assert_eq!(png.status(), 406);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_are_transcoded_to_the_first_compressed_syntax_asked_that_can_be_written() {
    let app = seeded_with("MR_small.dcm").await;
    let usage = app.consumer::<EventoUsoDatos>();
    let frame = format!("{INSTANCE}/frames/1");
    // image/jpeg without a syntax is JPEG lossless (PS3.18's default), which has no encoder here;
    // image/jls's default, JPEG-LS lossless, has one.
    let accept = "multipart/related; type=\"image/jpeg\", multipart/related; type=\"image/jls\"";
    let res = app.get_raw(&frame, CONSUMER, &[("accept", accept)]).await;
    assert_eq!(res.status(), 200);
    let (ct, part) = only_part(&res.bytes().await.expect("body"));
    assert_eq!(ct, format!("image/jls; transfer-syntax={JPEG_LS_LOSSLESS}"));
    assert_eq!(part[..4], [0xFF, 0xD8, 0xFF, 0xF7], "a JPEG-LS stream (SOI, SOF55)");

    // Lossless: put in the place of the JPEG-LS fixture's own frame, it decodes to MR_small's pixels.
    let mut obj = dicom_object::OpenFileOptions::new()
        .from_reader(&fixture("MR_small_jpeg_ls_lossless.dcm")[..])
        .expect("the JPEG-LS fixture");
    obj.put(DataElement::new(
        tags::PIXEL_DATA,
        VR::OB,
        PixelFragmentSequence::new_fragments(vec![part.clone()]),
    ));
    let pixels = obj.decode_pixel_data().expect("the served frame decodes");
    assert_eq!(pixels.data(), native_pixels(&fixture("MR_small.dcm")).1, "pixel for pixel");

    // Only what cannot be made: 406, in JSON.
    let res = app
        .get_raw(&frame, CONSUMER, &[("accept", "multipart/related; type=\"image/jpeg\"")])
        .await;
    assert_eq!(res.status(), 406);
    let error: serde_json::Value = res.json().await.expect("a JSON error");
    assert_eq!(error["error"], "not_acceptable");

    // Metered with the bytes served: the transcoded frame's.
    let mut events = app.events::<EventoUsoDatos>(&usage, 1, Duration::from_secs(60)).await;
    events.extend(app.events::<EventoUsoDatos>(&usage, 1, Duration::from_secs(3)).await);
    assert_eq!(events.len(), 1, "the 406 is not metered: {events:?}");
    assert_eq!(events[0].bytes, part.len() as i64, "{events:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decoded_answer_counts_against_the_daily_bytes_with_what_it_serves() {
    let app = seeded().await;
    let stored = fixture("MR_small_jpeg_ls_lossless.dcm").len() as i64;
    let lab = Some(("lab-9", Role::Consumidor));
    let mut terms = common::approved("lab-9", 1_000_000);
    // Room for the instance as stored, not for it decoded (MR_small: 64 × 64 × 2 bytes of pixels).
    terms.daily_bytes = Some(stored + 100);
    app.ledger.set_terms(terms).await.expect("terms");
    let dicom = "multipart/related; type=\"application/dicom\"";
    let decoded = app.get_raw(INSTANCE, lab, &[("accept", dicom)]).await;
    assert_eq!(decoded.status(), 429, "the decoded answer is larger than the day's room");
    let body: serde_json::Value = decoded.json().await.expect("json");
    assert_eq!(body["error"], "daily_limit");
    let as_stored = app
        .get_raw(INSTANCE, lab, &[("accept", &format!("{dicom}; transfer-syntax=*"))])
        .await;
    assert_eq!(as_stored.status(), 200, "as stored it fits");
}
