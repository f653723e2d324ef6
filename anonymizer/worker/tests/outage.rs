//! The broker goes away in the middle of the stream and comes back: the worker retries its
//! produces, stores nothing it has not published, and every input still gets its output.

mod common;

use std::time::Duration;

use alpes_anonymizer_worker::WorkerConfig;
use common::*;

const INPUTS: usize = 24;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_outage_delays_outputs_but_loses_none() {
    let h = Harness::start().await;
    let ct = fixture("CT_small.dcm");
    let mut expected = std::collections::BTreeSet::new();
    for i in 0..INPUTS {
        let bytes = with_phi(&ct, &format!("P{i}^X"), &format!("ID{i}"));
        let event = h.register(&format!("outage-{i:02}"), &bytes, "application/dicom").await;
        expected.insert(expected_event_id(&event, &bytes));
        h.produce(&event).await;
    }
    let worker = h.spawn(WorkerConfig {
        batch_size: 4,
        jobs: 1,
        ..test_config("outage")
    });
    let mut reader = Reader::new(&h);
    reader.until_distinct(Duration::from_secs(30), 1).await;
    let mock = h.kafka.mock().expect("the mock cluster");
    mock.all_down().unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    mock.all_up().unwrap();
    reader.until_distinct(Duration::from_secs(30), INPUTS).await;
    reader.settle(Duration::from_millis(1000)).await;
    worker.stop().await.expect("clean stop");
    assert_eq!(reader.event_ids(), expected);
}
