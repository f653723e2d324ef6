//! Two workers in one consumer group share the six partitions of `alpes.images.registered`:
//! both get records, and together they produce each output once (by event id).

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use alpes_anonymizer_worker::WorkerConfig;
use common::*;

const INPUTS: usize = 36;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_in_one_group_share_the_partitions() {
    let h = Harness::start().await;
    let cfg = WorkerConfig {
        batch_size: 4,
        ..test_config("shared")
    };
    // Both join before there is anything to read; one of them pauses as soon as it blocks.
    let a = h.spawn(cfg.clone());
    let b = h.spawn(WorkerConfig {
        pause_after: Duration::ZERO,
        ..cfg
    });

    let files = [fixture("CT_small.dcm"), fixture("MR_small.dcm"), png(24, 16, "x")];
    let mut expected = BTreeSet::new();
    for i in 0..INPUTS {
        let bytes = &files[i % files.len()];
        let event = h.register(&format!("shared-{i:02}"), bytes, "application/octet-stream").await;
        expected.insert(expected_event_id(&event, bytes));
        h.produce(&event).await;
    }
    let mut reader = Reader::new(&h);
    reader.until_distinct(Duration::from_secs(30), INPUTS).await;
    reader.settle(Duration::from_millis(1500)).await;
    let (from_a, from_b) = (a.produced(), b.produced());
    a.stop().await.expect("a stops cleanly");
    b.stop().await.expect("b stops cleanly");

    assert_eq!(reader.event_ids(), expected, "{:#?}", reader.summary());
    assert!(
        from_a > 0 && from_b > 0,
        "both workers had partitions: {from_a} and {from_b} outputs"
    );
    assert_eq!(from_a + from_b, reader.seen.len() as u64);
    println!("{from_a} + {from_b} outputs for {INPUTS} inputs");
}
