//! A mix of DICOM, PNG, JPEG and unreadable inputs through one worker on the mock cluster: one
//! event per image, the right reason for each bad one, blobs that exist and re-parse, and the
//! group's offsets committed on shutdown.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use alpes_anonymizer::probe;
use alpes_schemas::{ImagenRegistrada, Profile};
use common::*;

const STUDY: u32 = 0x0020_000D;
const SERIES: u32 = 0x0020_000E;
const SOP: u32 = 0x0008_0018;

struct Case {
    event: ImagenRegistrada,
    bytes: Vec<u8>,
    /// `Ok((rows, columns, media type))` or `Err(reason)`.
    expect: Result<(i32, i32, &'static str), &'static str>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_image_gets_exactly_one_event_with_the_right_content() {
    let h = Harness::start().await;
    let mut cases = Vec::new();
    for (id, name, rows, cols) in [("ct-1", "CT_small.dcm", 128, 128), ("mr-1", "MR_small.dcm", 64, 64)] {
        let bytes = fixture(name);
        let event = h.register(id, &bytes, "application/dicom").await;
        cases.push(Case {
            event,
            bytes,
            expect: Ok((rows, cols, "application/dicom")),
        });
    }
    let png = png(40, 30, "Patient ZYXWV");
    cases.push(Case {
        event: h.register("png-1", &png, "image/png").await,
        bytes: png,
        expect: Ok((30, 40, "image/png")),
    });
    let jpeg = jpeg(48, 16, "Patient ZYXWV");
    cases.push(Case {
        event: h.register("jpeg-1", &jpeg, "image/jpeg").await,
        bytes: jpeg,
        expect: Ok((16, 48, "image/jpeg")),
    });
    let truncated = fixture("MR_truncated.dcm");
    let reason = engine_output(&truncated, "any provider").expect_err("MR_truncated is unreadable");
    cases.push(Case {
        event: h.register("trunc-1", &truncated, "application/dicom").await,
        bytes: truncated,
        expect: Err(reason),
    });
    let garbage = b"%PDF-1.7 this is no image at all, just some bytes".to_vec();
    cases.push(Case {
        event: h.register("garbage-1", &garbage, "application/dicom").await,
        bytes: garbage,
        expect: Err("unknown_format"),
    });
    let missing = registered(
        "missing-1",
        "raw/0000000000000000000000000000000000000000000000000000000000000000",
        "00",
        10,
        "image/png",
    );
    cases.push(Case {
        event: missing,
        bytes: Vec::new(),
        expect: Err("blob_missing"),
    });
    let mut bad_profile = h.register("profile-1", &fixture("CT_small.dcm"), "application/dicom").await;
    bad_profile.profile = Profile {
        retain: vec!["everything".into()],
        ..Profile::default()
    };
    cases.push(Case {
        event: bad_profile,
        bytes: Vec::new(),
        expect: Err("bad_profile"),
    });

    for c in &cases {
        h.produce(&c.event).await;
    }
    let group = "happy";
    let worker = h.spawn(test_config(group));
    let mut reader = Reader::new(&h);
    reader.until_distinct(Duration::from_secs(30), cases.len()).await;
    reader.settle(Duration::from_millis(1500)).await;
    worker.stop().await.expect("clean stop");

    let by_image: BTreeMap<&str, Vec<&Out>> = reader.seen.iter().fold(BTreeMap::new(), |mut m, o| {
        m.entry(o.image_id().expect("no poison here")).or_default().push(o);
        m
    });
    assert_eq!(by_image.len(), cases.len(), "{:#?}", reader.summary());
    for c in &cases {
        let id = c.event.image_id.as_str();
        let outs = &by_image[id];
        assert_eq!(outs.len(), 1, "{id}: {:#?}", reader.summary());
        match (&c.expect, outs[0]) {
            (Ok((rows, cols, media)), Out::Anonymized(e)) => {
                assert_eq!(
                    e.event_id,
                    expected_event_id(&c.event, &c.bytes),
                    "{id}: deterministic id from the engine output"
                );
                assert_eq!(
                    (e.rows, e.columns, e.frames, e.media_type.as_str()),
                    (*rows, *cols, 1, *media),
                    "{id}"
                );
                assert_eq!(
                    (e.request_id.as_str(), e.provider_id.as_str()),
                    (c.event.request_id.as_str(), "prov-1")
                );
                assert_eq!(
                    (e.tipo_imagen.as_deref(), e.region_anatomica.as_deref()),
                    (Some("CT"), Some("torax"))
                );
                assert_eq!(e.engine_version, env!("CARGO_PKG_VERSION"));
                assert_eq!(e.profile, c.event.profile);
                let blob = h.blobs.get(&e.blob_key).await.expect("the anonymized blob exists");
                assert_eq!(e.blob_key, format!("anonymized/{}", sha256_hex(&blob)));
                assert_eq!((e.sha256.as_str(), e.size_bytes), (sha256_hex(&blob).as_str(), blob.len() as i64));
                assert_eq!(
                    blob.to_vec(),
                    engine_output(&c.bytes, &c.event.provider_id).unwrap(),
                    "{id}: the blob is the engine's output"
                );
                if *media == "application/dicom" {
                    let out = probe::dicom(&blob).expect("the blob re-parses");
                    assert_eq!(e.sop_instance_uid, out.sop_instance_uid);
                    assert_eq!(e.study_uid, out.study_instance_uid);
                    assert_eq!(e.modality, out.modality);
                    assert_eq!(e.series_uid, dicom_text(&blob, SERIES));
                    for tag in [STUDY, SERIES, SOP] {
                        let before = dicom_text(&c.bytes, tag).expect("the input has the UID");
                        assert_ne!(
                            dicom_text(&blob, tag).as_deref(),
                            Some(before.as_str()),
                            "{id}: UID {tag:08X} was remapped"
                        );
                    }
                    assert!(e.uids_remapped > 0 && e.action_counts.values().sum::<i64>() > 0, "{id}");
                    assert!(e.transfer_syntax_in.is_some() && e.transfer_syntax_out.is_some());
                    // Every DICOM input here has a SOP class the PS3.3 tables hold.
                    assert!(e.iod.is_some() && e.conservados_por_iod.is_some(), "{id}: {:?}", e.iod);
                } else {
                    assert!(e.study_uid.is_none() && e.transfer_syntax_in.is_none(), "{id}");
                    assert!(!blob.windows(5).any(|w| w == b"ZYXWV"), "{id}: metadata text removed");
                }
            }
            (Err(reason), Out::Rejected(e)) => {
                assert_eq!(e.reason, *reason, "{id}: {}", e.message);
                assert_eq!(e.image_id.as_deref(), Some(id));
                assert_eq!(
                    e.event_id,
                    alpes_schemas::deterministic_event_id("ImagenRechazada", &[id, &c.event.request_id, reason])
                );
                assert_eq!(e.source_topic.as_deref(), Some("alpes.images.registered"));
                assert!(e.source_partition.is_some() && e.source_offset.is_some());
                assert!(!e.message.is_empty());
            }
            (expect, got) => panic!("{id}: expected {expect:?}, got {got:#?}"),
        }
    }

    // The safety net analysed every anonymized image (none has text drawn in it) and no rejected
    // one, under the image's request, with the model it ran.
    for c in &cases {
        let id = c.event.image_id.as_str();
        let analyses: Vec<_> = reader.analyses.iter().filter(|a| a.imagen_id == id).collect();
        match c.expect {
            Ok(_) => {
                assert_eq!(analyses.len(), 1, "{id}: {analyses:#?}");
                let a = analyses[0];
                assert_eq!(
                    (
                        a.etiqueta.as_str(),
                        a.liberada,
                        a.modo.as_str(),
                        a.regiones_blanqueadas,
                        a.lineas_residuales
                    ),
                    ("sin_texto", true, "all-text", 0, 0),
                    "{id}"
                );
                assert_eq!(
                    (a.solicitud_id.as_str(), a.proveedor_id.as_str()),
                    (c.event.request_id.as_str(), "prov-1")
                );
                assert_eq!((a.modelo.nombre.as_str(), a.modelo.idioma.as_str()), ("tesseract", "eng"));
                assert!(
                    a.modelo.datos_sha256.as_ref().is_some_and(|h| h.len() == 64),
                    "{id}: {:?}",
                    a.modelo
                );
                assert!((0..=100).contains(&a.confianza) && a.motivo.is_none(), "{id}: {a:?}");
            }
            Err(_) => assert!(analyses.is_empty(), "{id}: a rejected image has no analysis: {analyses:#?}"),
        }
    }

    // Shutdown committed every offset: a new member of the group would start at the end.
    let committed = h.committed(group);
    assert_eq!(committed.values().map(|o| *o as usize).sum::<usize>(), cases.len(), "{committed:?}");
}
