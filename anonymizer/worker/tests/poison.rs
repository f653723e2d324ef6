//! Poison records on `alpes.images.registered` (garbage, empty, an unknown schema fingerprint,
//! another event's bytes) become `ImagenRechazada` with their source coordinates, and the good
//! events after them on the same partition are still processed.

mod common;

use std::time::Duration;

use alpes_schemas::{deterministic_event_id, ImagenRechazada};
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_records_are_routed_aside_and_the_partition_keeps_moving() {
    let h = Harness::start().await;
    let key = "same-partition";
    let ct = fixture("CT_small.dcm");
    let first = h.register("before-poison", &ct, "application/dicom").await;
    let mut unknown = h.codec.encode(&first).await.unwrap();
    unknown[2..10].copy_from_slice(&[0xde, 0xad, 0xbe, 0xef, 0, 1, 2, 3]);
    let other_event = ImagenRechazada {
        http_request_id: None,
        event_id: "x".into(),
        occurred_at: 1,
        actor: "a".into(),
        image_id: None,
        provider_id: None,
        request_id: None,
        reason: "r".into(),
        message: "m".into(),
        source_topic: None,
        source_partition: None,
        source_offset: None,
    };

    let (p0, _) = h.produce_keyed(key, &first).await;
    let poisons = [
        (h.produce_raw(key, b"%PDF-1.7 garbage that is not avro at all").await, "not_avro"),
        (h.produce_raw(key, &unknown).await, "unknown_schema"),
        (h.produce_raw(key, b"").await, "not_avro"),
        (h.produce_keyed(key, &other_event).await, "wrong_type"),
    ];
    let mr = fixture("MR_small.dcm");
    let after = h.register("after-poison", &mr, "application/dicom").await;
    let (p1, last_offset) = h.produce_keyed(key, &after).await;
    assert!(poisons.iter().all(|((p, _), _)| *p == p0) && p1 == p0, "one key, one partition");

    let worker = h.spawn(test_config("poison"));
    let mut reader = Reader::new(&h);
    reader.until_distinct(Duration::from_secs(30), 2 + poisons.len()).await;
    reader.settle(Duration::from_millis(1000)).await;
    worker.stop().await.expect("clean stop");

    assert_eq!(reader.seen.len(), 2 + poisons.len(), "{:#?}", reader.summary());
    for ((partition, offset), reason) in poisons {
        let e = reader
            .seen
            .iter()
            .filter_map(Out::rejected)
            .find(|e| e.source_offset == Some(offset))
            .unwrap_or_else(|| panic!("no rejection for offset {offset}: {:#?}", reader.summary()));
        assert_eq!(e.reason, reason, "{}", e.message);
        assert_eq!((e.image_id.as_deref(), e.source_partition), (None, Some(partition)));
        assert_eq!(e.source_topic.as_deref(), Some("alpes.images.registered"));
        let (p, o) = (partition.to_string(), offset.to_string());
        assert_eq!(
            e.event_id,
            deterministic_event_id("ImagenRechazada", &["alpes.images.registered", &p, &o])
        );
    }
    for (event, bytes) in [(&first, &ct), (&after, &mr)] {
        let out = reader
            .seen
            .iter()
            .find(|o| o.image_id() == Some(event.image_id.as_str()))
            .expect("the good event was processed");
        assert_eq!(out.event_id(), expected_event_id(event, bytes));
        assert!(out.anonymized().is_some());
    }
    assert_eq!(
        h.committed("poison").get(&p0),
        Some(&(last_offset + 1)),
        "the partition's offset moved past the poison"
    );
}
