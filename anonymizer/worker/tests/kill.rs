//! A worker killed mid-stream (its task aborted: no shutdown, no final commit beyond what it had
//! stored) and a successor in the same group: every input ends with its output, nothing else
//! appears, and a full redelivery (a replay in another group) gives the same event ids and blob
//! keys, so consumers that drop duplicates by event id see exactly one output per input.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use alpes_anonymizer_worker::WorkerConfig;
use common::*;
use tokio::time::Instant;

const INPUTS: usize = 40;

fn anonymized_blobs(h: &Harness) -> usize {
    std::fs::read_dir(h.dir.path().join("anonymized")).map_or(0, |d| d.count())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_worker_loses_nothing_and_redelivery_duplicates_nothing_new() {
    let h = Harness::start().await;
    let (ct, mr, truncated) = (fixture("CT_small.dcm"), fixture("MR_small.dcm"), fixture("MR_truncated.dcm"));
    let mut expected = BTreeSet::new();
    for i in 0..INPUTS {
        // Distinct patients give distinct outputs, so the blob count shows progress.
        let bytes = match i % 8 {
            7 => truncated.clone(),
            n if n % 2 == 0 => with_phi(&ct, &format!("PATIENT{i}^TEST"), &format!("ID{i:04}")),
            _ => with_phi(&mr, &format!("PATIENT{i}^TEST"), &format!("ID{i:04}")),
        };
        let event = h.register(&format!("img-{i:02}"), &bytes, "application/dicom").await;
        expected.insert(expected_event_id(&event, &bytes));
        h.produce(&event).await;
    }
    assert_eq!(expected.len(), INPUTS);

    // The first worker pauses as soon as its pipeline blocks; it is killed in the middle of its work.
    let cfg = WorkerConfig {
        batch_size: 8,
        max_batches_in_flight: 2,
        jobs: 1,
        ..test_config("kill")
    };
    let first = h.spawn(WorkerConfig {
        pause_after: Duration::ZERO,
        ..cfg.clone()
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while anonymized_blobs(&h) < 12 {
        assert!(Instant::now() < deadline, "the first worker made no progress");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    first.kill().await;
    let mut reader = Reader::new(&h);
    reader.settle(Duration::from_millis(1500)).await;
    let at_kill = reader.event_ids().len();
    assert!(at_kill < INPUTS, "the kill came before the end");

    let second = h.spawn(cfg.clone());
    reader.until_distinct(Duration::from_secs(30), INPUTS).await;
    reader.settle(Duration::from_millis(1500)).await;
    second.stop().await.expect("clean stop");
    assert_eq!(
        reader.event_ids(),
        expected,
        "nothing missing, nothing unexpected ({at_kill} outputs before the kill)"
    );
    let after_kill = reader.seen.len();

    // Replay everything in another group: every output again, identical.
    let replay = h.spawn(test_config("kill-replay"));
    reader
        .until(Duration::from_secs(30), |seen| seen.len() >= after_kill + INPUTS)
        .await;
    reader.settle(Duration::from_millis(1000)).await;
    replay.stop().await.expect("clean stop");
    assert_eq!(reader.event_ids(), expected);
    let mut by_id: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for o in &reader.seen {
        let what = match o {
            Out::Anonymized(e) => format!("{} {} {}", e.blob_key, e.size_bytes, e.study_uid.as_deref().unwrap_or("")),
            Out::Rejected(e) => format!("{} {}", e.reason, e.message),
        };
        by_id.entry(o.event_id()).or_default().insert(what);
    }
    assert!(
        by_id.values().all(|v| v.len() == 1),
        "a redelivered input gave another result: {by_id:#?}"
    );
    println!(
        "{at_kill} outputs before the kill, {after_kill} after the successor, {} with the replay",
        reader.seen.len()
    );
}
