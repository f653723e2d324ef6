//! `--transactional` on the mock cluster: each batch's outputs and offsets commit in one Kafka
//! transaction; a read-committed consumer sees every output once, poison included, and the worker
//! never commits offsets through the consumer.

mod common;

use std::time::Duration;

use alpes_anonymizer_worker::WorkerConfig;
use common::*;

const INPUTS: usize = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactional_mode_publishes_every_output_once_through_transactions() {
    let h = Harness::start().await;
    let (ct, truncated) = (fixture("CT_small.dcm"), fixture("MR_truncated.dcm"));
    let mut expected = std::collections::BTreeSet::new();
    for i in 0..INPUTS {
        let bytes = if i % 5 == 4 { &truncated } else { &ct };
        let event = h.register(&format!("tx-{i:02}"), bytes, "application/dicom").await;
        expected.insert(expected_event_id(&event, bytes));
        h.produce(&event).await;
    }
    let poison_at = h.produce_raw("poison", b"%PDF not an event").await;

    let group = "transactional";
    let cfg = WorkerConfig {
        transactional: true,
        instance: "test-0".into(),
        batch_size: 6,
        ..test_config(group)
    };
    let worker = h.spawn(cfg);
    let mut reader = Reader::new(&h);
    reader.until_distinct(Duration::from_secs(30), INPUTS + 1).await;
    reader.settle(Duration::from_millis(1500)).await;
    worker.stop().await.expect("clean stop");

    assert_eq!(reader.seen.len(), INPUTS + 1, "{:#?}", reader.summary());
    let poison = reader
        .seen
        .iter()
        .filter_map(Out::rejected)
        .find(|e| e.image_id.is_none())
        .expect("the poison record's rejection");
    assert_eq!(
        (poison.source_partition, poison.source_offset),
        (Some(poison_at.0), Some(poison_at.1))
    );
    let ids: std::collections::BTreeSet<String> = reader
        .seen
        .iter()
        .filter(|o| o.image_id().is_some())
        .map(|o| o.event_id().to_owned())
        .collect();
    assert_eq!(ids, expected);
    // The worker never commits through the consumer in this mode; the offsets go in the
    // transactions (TxnOffsetCommit). librdkafka 2.12's mock cluster acknowledges TxnOffsetCommit
    // without storing the offsets (rdkafka_mock_handlers.c), so on the mock they stay empty; a real
    // broker has them all.
    let committed = h.committed(group);
    let all = committed.values().sum::<i64>() == INPUTS as i64 + 1;
    assert!(
        committed.is_empty() || all,
        "either dropped by the mock or all committed: {committed:?}"
    );
}

/// Each worker of a process gets its own `transactional.id` (`<group>-<instance>-<n>`). The mock
/// cluster does not fence a reused id, so this checks the sharing, not the fencing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_transactional_workers_in_one_process_share_the_partitions() {
    let h = Harness::start().await;
    let cfg = WorkerConfig {
        transactional: true,
        instance: "same-host".into(),
        batch_size: 4,
        ..test_config("tx-pair")
    };
    let (a, b) = (h.spawn(cfg.clone()), h.spawn(cfg));
    let ct = fixture("CT_small.dcm");
    let mut expected = std::collections::BTreeSet::new();
    for i in 0..24 {
        let event = h.register(&format!("pair-{i:02}"), &ct, "application/dicom").await;
        expected.insert(expected_event_id(&event, &ct));
        h.produce(&event).await;
    }
    let mut reader = Reader::new(&h);
    reader.until_distinct(Duration::from_secs(30), expected.len()).await;
    assert_eq!(reader.event_ids(), expected);
    let (from_a, from_b) = (a.produced(), b.produced());
    a.stop().await.expect("a stops cleanly");
    b.stop().await.expect("b stops cleanly");
    assert!(
        from_a > 0 && from_b > 0,
        "both workers had partitions: {from_a} and {from_b} outputs"
    );
}
