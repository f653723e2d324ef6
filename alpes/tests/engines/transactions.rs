//! Transactions on real Kafka: two `--transactional` anonymizers under a
//! stream of uploads. Each round one of them is killed with SIGKILL mid-batch
//! (the moment a reader that sees uncommitted records sees a new output) and
//! restarted on its data dir, so its `transactional.id` fences the dead
//! producer and aborts any transaction it left open, while the other one goes
//! on through both rebalances (the dead member leaving, the restarted one
//! joining). Each image must end with exactly one committed outcome; what a
//! `read_uncommitted` reader sees beyond that was aborted.

use crate::harness::{engines, serial, start_ready, Keys};
use crate::traffic::{codec, fixture, outcome_reader, outcomes, upload};
use alpes_platform::auth::Role;
use rdkafka::consumer::StreamConsumer;
use rdkafka::Message;
use std::collections::{HashMap, HashSet};
use std::time::Duration;

/// Where the next outcome `reader` gets is on the log: topic, partition and offset (`wait` at most).
async fn next_output(reader: &StreamConsumer, wait: Duration) -> Option<(String, i32, i64)> {
    let msg = tokio::time::timeout(wait, reader.recv()).await.ok()?.ok()?;
    Some((msg.topic().to_owned(), msg.partition(), msg.offset()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_transactional_worker_killed_mid_batch_leaves_exactly_one_committed_outcome_per_image() {
    let _engines_held = serial().await;
    let Some(e) = engines("a_transactional_worker_killed_mid_batch_leaves_exactly_one_committed_outcome_per_image") else {
        return;
    };
    let keys = Keys::new(&e);
    let mut ingest = start_ready(&e, &keys, &[("ingest", "ingest")], &[]).await;
    // A short session: a killed member leaves the group in 6 s instead of librdkafka's 45 s.
    let flags = ["--transactional", "--jobs", "1", "--kafka-consumer-prop", "session.timeout.ms=6000"];
    let mut workers = start_ready(&e, &keys, &[("anonymizer-a", "anonymizer"), ("anonymizer-b", "anonymizer")], &flags).await;
    let client = reqwest::Client::new();
    let run = uuid::Uuid::new_v4().simple().to_string();
    let bytes = fixture("CT_small.dcm");
    let codec = codec(&e);
    let watcher = outcome_reader(&e, "read_uncommitted");
    // Skip what earlier tests left on the topics: the watcher reacts only to new outputs.
    while next_output(&watcher, Duration::from_secs(3)).await.is_some() {}

    let mut requests = HashSet::new();
    let rounds = 4;
    for round in 0..rounds {
        for i in 0..8 {
            let provider = format!("prov-tx-{run}-{round}-{i}");
            let up = upload(&client, &ingest[0].url, &keys.token(&provider, Role::Proveedor).await, &bytes, None).await;
            assert_eq!(up.status, 202, "upload {round}/{i}");
            requests.insert(up.request_id.expect("request id"));
        }
        // The first output of this round is on the log: kill one worker mid-batch.
        assert!(
            next_output(&watcher, Duration::from_secs(120)).await.is_some(),
            "no output in round {round}"
        );
        let victim = &mut workers[round % 2];
        victim.kill();
        victim.restart();
        victim.ready(Duration::from_secs(120)).await;
        while next_output(&watcher, Duration::from_secs(2)).await.is_some() {}
    }
    let committed = outcome_reader(&e, "read_committed");
    let uncommitted = outcome_reader(&e, "read_uncommitted");

    let wait = Duration::from_secs(240);
    let seen_committed = outcomes(&committed, &codec, &requests, wait, Duration::from_secs(5)).await;
    let seen_all = outcomes(&uncommitted, &codec, &requests, wait, Duration::from_secs(2)).await;
    let missing: Vec<&String> = requests.iter().filter(|r| !seen_committed.contains_key(*r)).collect();
    let twice: HashMap<&String, &usize> = seen_committed.iter().filter(|(_, n)| **n != 1).collect();
    let aborted: usize = seen_all.values().map(|n| n.saturating_sub(1)).sum();
    eprintln!(
        "transactions: {} uploads acknowledged, {} with a committed outcome, {} committed twice, \
         {rounds} worker kills, {aborted} aborted outputs seen only by read_uncommitted",
        requests.len(),
        seen_committed.len(),
        twice.len()
    );
    assert!(missing.is_empty(), "no committed outcome for {missing:?}");
    assert!(twice.is_empty(), "more than one committed outcome: {twice:?}");
    for (r, n) in &seen_all {
        assert!(*n >= seen_committed[r], "read_uncommitted saw fewer than read_committed for {r}");
    }
    ingest[0].stop();
    for w in &mut workers {
        w.stop();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rebalance_during_a_transactional_batch_leaves_exactly_one_committed_outcome_per_image() {
    let _engines_held = serial().await;
    let Some(e) = engines("a_rebalance_during_a_transactional_batch_leaves_exactly_one_committed_outcome_per_image") else {
        return;
    };
    let keys = Keys::new(&e);
    let mut ingest = start_ready(&e, &keys, &[("ingest", "ingest")], &[]).await;
    let flags = ["--transactional", "--jobs", "1"];
    let mut worker = start_ready(&e, &keys, &[("anonymizer", "anonymizer")], &flags).await;
    let client = reqwest::Client::new();
    let run = uuid::Uuid::new_v4().simple().to_string();
    let bytes = fixture("CT_small.dcm");
    let codec = codec(&e);
    // A member joins the anonymizers' group while the uploads stream in and the worker's batches
    // run (a rebalance), holds its share of the partitions for a while without processing them,
    // and leaves (another rebalance): the worker gets them back from the committed offsets.
    let member = {
        let bootstrap = e.var("KAFKA_BOOTSTRAP_SERVERS");
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(2)).await;
            let mut cfg = rdkafka::ClientConfig::new();
            cfg.set("bootstrap.servers", bootstrap)
                .set("group.id", "alpes-anonymizer")
                .set("enable.auto.commit", "false")
                .set("session.timeout.ms", "6000");
            let member: StreamConsumer = cfg.create().expect("member");
            rdkafka::consumer::Consumer::subscribe(&member, &[alpes_schemas::topics::IMAGES_REGISTERED]).expect("subscribe");
            let until = tokio::time::Instant::now() + Duration::from_secs(8);
            while tokio::time::timeout_at(until, member.recv()).await.is_ok() {}
        })
    };
    let mut requests = HashSet::new();
    for round in 0..6 {
        let mut tokens = Vec::new();
        for i in 0..8 {
            tokens.push(keys.token(&format!("prov-rb-{run}-{round}-{i}"), Role::Proveedor).await);
        }
        let uploads = tokens.into_iter().map(|token| {
            let (client, base, bytes) = (client.clone(), ingest[0].url.clone(), bytes.clone());
            async move { upload(&client, &base, &token, &bytes, None).await }
        });
        for up in futures::future::join_all(uploads).await {
            assert_eq!(up.status, 202);
            requests.insert(up.request_id.expect("request id"));
        }
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    member.await.expect("member");

    let committed = outcome_reader(&e, "read_committed");
    let seen = outcomes(&committed, &codec, &requests, Duration::from_secs(240), Duration::from_secs(5)).await;
    let missing = requests.iter().filter(|r| !seen.contains_key(*r)).count();
    let twice: HashMap<&String, &usize> = seen.iter().filter(|(_, n)| **n != 1).collect();
    eprintln!(
        "rebalance mid-batch: {} uploads acknowledged, {} with a committed outcome, {} committed more than once",
        requests.len(),
        seen.len(),
        twice.len()
    );
    assert_eq!(missing, 0, "images without a committed outcome");
    assert!(twice.is_empty(), "more than one committed outcome: {twice:?}");
    ingest[0].stop();
    worker[0].stop();
}
