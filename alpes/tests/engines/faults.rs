//! Faults while traffic runs, each with its figure of what was lost, which
//! must be nothing: a Kafka broker killed during a stream of uploads, the CQL
//! node stopped and restarted while billing and downloads run, and the S3
//! server stopped in the middle of an upload.

use crate::harness::{engines, eventually, serial, start_ready, Keys};
use crate::traffic::{anonymized, codec, fixture, get, outcome_reader, outcomes, upload, upload_as};
use alpes_platform::auth::Role;
use alpes_platform::blobs::{BlobArgs, Blobs};
use futures::StreamExt;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_kafka_broker_killed_during_a_stream_of_uploads_loses_no_acknowledged_upload() {
    let _engines_held = serial().await;
    let Some(e) = engines("a_kafka_broker_killed_during_a_stream_of_uploads_loses_no_acknowledged_upload") else {
        return;
    };
    let keys = Keys::new(&e);
    let mut procs = start_ready(&e, &keys, &[("ingest", "ingest"), ("anonymizer", "anonymizer")], &[]).await;
    let client = reqwest::Client::new();
    let run = uuid::Uuid::new_v4().simple().to_string();
    let bytes = fixture("CT_small.dcm");
    let reader = outcome_reader(&e, "read_committed");
    let (mut acknowledged, mut refused) = (HashSet::new(), 0);
    for i in 0..30 {
        if i == 10 {
            e.kill("kafka-2");
        }
        let provider = format!("prov-broker-{run}-{i}");
        let up = upload(&client, &procs[0].url, &keys.token(&provider, Role::Proveedor).await, &bytes, None).await;
        match up.status {
            202 => {
                acknowledged.insert(up.request_id.expect("request id"));
            }
            503 => {
                assert!(up.retry_after.is_some(), "a 503 without Retry-After");
                refused += 1;
            }
            other => panic!("upload {i} answered {other}"),
        }
    }
    e.resume("kafka-2");
    let seen = outcomes(&reader, &codec(&e), &acknowledged, Duration::from_secs(240), Duration::from_secs(1)).await;
    let lost: Vec<&String> = acknowledged.iter().filter(|r| !seen.contains_key(*r)).collect();
    eprintln!(
        "broker SIGKILL: {} uploads acknowledged, {} outcomes seen, {} lost, {refused} refused with 503 (not acknowledged)",
        acknowledged.len(),
        acknowledged.len() - lost.len(),
        lost.len()
    );
    assert!(lost.is_empty(), "acknowledged uploads without an outcome: {lost:?}");
    assert!(acknowledged.len() >= 20, "too few uploads went through: {}", acknowledged.len());
    for p in &mut procs {
        p.stop();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_cql_node_stopped_during_downloads_answers_503_and_bills_each_download_once() {
    let _engines_held = serial().await;
    let Some(e) = engines("the_cql_node_stopped_during_downloads_answers_503_and_bills_each_download_once") else {
        return;
    };
    // With one node, its loss stops every CQL call (503); with three (RF 3), quorum still holds.
    let single = e.var("SCYLLA_NODES").split(',').count() == 1;
    let keys = Keys::new(&e);
    let services = [
        ("ingest", "ingest"),
        ("anonymizer", "anonymizer"),
        ("billing", "billing"),
        ("query-api", "query-api"),
    ];
    let mut procs = start_ready(&e, &keys, &services, &[]).await;
    let (ingest, query) = (procs[0].url.clone(), procs[3].url.clone());
    let client = reqwest::Client::new();
    let run = uuid::Uuid::new_v4().simple().to_string();
    let bytes = fixture("CT_small.dcm");
    let providers: Vec<String> = (0..3).map(|i| format!("prov-cql-{run}-{i}")).collect();
    let mut images = Vec::new();
    for p in &providers {
        let up = upload(&client, &ingest, &keys.token(p, Role::Proveedor).await, &bytes, None).await;
        assert_eq!(up.status, 202);
        images.push(up.id.expect("id"));
    }
    for id in &images {
        let probe = keys.token("cons-probe", Role::Consumidor).await;
        assert_eq!(
            anonymized(&client, &query, &probe, id, Duration::from_secs(180)).await,
            "anonimizada"
        );
    }
    // Every download is by another consumer, so each is charged (no repeat window applies).
    let mut d = Downloads {
        client: client.clone(),
        query: query.clone(),
        keys: keys.clone(),
        run: run.clone(),
        images: images.clone(),
        stocked: Vec::new(),
        next: 0,
        served: 0,
        unavailable: 0,
    };
    for _ in 0..6 {
        d.one().await;
    }
    // The accounts of the consumers downloading while the node is down are made while it is up.
    d.stock(40).await;
    e.halt("cql-1");
    let down_until = std::time::Instant::now() + Duration::from_secs(8);
    while std::time::Instant::now() < down_until {
        d.one().await;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    e.resume("cql-1");
    let served_before = d.served;
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while d.one().await != 200 {
        assert!(std::time::Instant::now() < deadline, "downloads never served again");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    for _ in 0..6 {
        d.one().await;
    }
    let (served, unavailable) = (d.served, d.unavailable);
    assert!(served > served_before);
    if single {
        assert!(unavailable > 0, "no download answered 503 while the only CQL node was down");
    }
    // Each served download is credited exactly once, after the outage too.
    let uses = |provider: String| {
        let (client, query, keys) = (client.clone(), query.clone(), keys.clone());
        async move {
            // Right after the node comes back the keys' own CQL session may still be reconnecting:
            // a 503 here is one more try of `eventually`, not a failure.
            let token = keys.try_token(&provider, Role::Proveedor).await.ok()?;
            let (status, _, body) = get(&client, &format!("{query}/monetizacion/saldo/{provider}"), &token).await;
            let v: Value = serde_json::from_slice(&body).ok()?;
            (status == 200).then(|| v["uses"].as_u64().unwrap_or(0))
        }
    };
    let total = || async {
        let mut sum = 0;
        for p in &providers {
            sum += uses(p.clone()).await?;
        }
        Some(sum)
    };
    eventually("every served download credited", Duration::from_secs(120), || async {
        (total().await? as usize >= served).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let credited = total().await.expect("balances") as usize;
    eprintln!(
        "CQL node stopped ({}): {served} downloads served, {credited} credited, {unavailable} answered 503 while it was down",
        if single { "the only node" } else { "one of three" }
    );
    assert_eq!(credited, served, "downloads served and credited differ");
    for p in &mut procs {
        p.stop();
    }
}

/// Downloads, each by a new consumer, counted by outcome.
struct Downloads {
    client: reqwest::Client,
    query: String,
    keys: Keys,
    run: String,
    images: Vec<String>,
    /// Tokens of consumers made in advance, used first.
    stocked: Vec<String>,
    next: usize,
    served: usize,
    unavailable: usize,
}

impl Downloads {
    /// Makes `n` more consumers (accounts and tokens) for the downloads to come.
    async fn stock(&mut self, n: usize) {
        for i in 0..n {
            let name = format!("cons-cql-{}-stock-{}-{i}", self.run, self.stocked.len());
            self.stocked.push(self.keys.token(&name, Role::Consumidor).await);
        }
    }

    /// A token of a consumer that has not downloaded yet: a stocked one, else a new one (made
    /// once the store answers again).
    async fn consumer(&mut self) -> String {
        if let Some(token) = self.stocked.pop() {
            return token;
        }
        let (keys, name) = (&self.keys, format!("cons-cql-{}-{}", self.run, self.next));
        eventually("a consumer account", Duration::from_secs(120), || async {
            keys.try_token(&name, Role::Consumidor).await.ok()
        })
        .await
    }

    /// One download; its status (200 or 503 with `Retry-After`, nothing else).
    async fn one(&mut self) -> u16 {
        let token = self.consumer().await;
        let id = &self.images[self.next % self.images.len()];
        self.next += 1;
        let (status, retry, _) = get(&self.client, &format!("{}/imagenes/{id}/anonimizada", self.query), &token).await;
        match status {
            200 => self.served += 1,
            503 => {
                assert!(retry.is_some(), "a 503 without Retry-After");
                self.unavailable += 1;
            }
            other => panic!("a download answered {other}"),
        }
        status
    }
}

/// A PNG of `side`×`side` RGB noise: incompressible, so it is about 3·side² bytes.
fn noise_png(side: u32) -> Vec<u8> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let pixels: Vec<u8> = (0..side * side * 3)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect();
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, side, side);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().expect("png header");
    writer.write_image_data(&pixels).expect("png data");
    writer.finish().expect("png end");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_s3_server_stopped_mid_upload_leaves_nothing_half_written_and_the_upload_can_be_retried() {
    let _engines_held = serial().await;
    let Some(e) = engines("the_s3_server_stopped_mid_upload_leaves_nothing_half_written_and_the_upload_can_be_retried") else {
        return;
    };
    let keys = Keys::new(&e);
    let mut procs = start_ready(&e, &keys, &[("ingest", "ingest"), ("anonymizer", "anonymizer")], &[]).await;
    let client = reqwest::Client::new();
    let run = uuid::Uuid::new_v4().simple().to_string();
    let token = keys.token(&format!("prov-s3-{run}"), Role::Proveedor).await;
    // Large enough to stream through S3 multipart (over one 5 MiB part), unique to this run.
    let mut png = noise_png(1500);
    png.extend_from_slice(run.as_bytes());
    let key = format!("raw/{}", hex::encode(Sha256::digest(&png)));
    let blobs = Blobs::open(
        &BlobArgs {
            s3_endpoint: Some(e.var("ALPES_S3_ENDPOINT")),
            s3_bucket: Some(e.var("ALPES_S3_BUCKET")),
            s3_region: e.var("ALPES_S3_REGION"),
            s3_access_key_id: Some(e.var("AWS_ACCESS_KEY_ID")),
            s3_secret_access_key: Some(e.var("AWS_SECRET_ACCESS_KEY")),
            shared: false,
        },
        std::path::Path::new("unused"),
        false,
    )
    .expect("s3 client");

    // The body trickles in; the S3 server is killed half-way through it.
    let chunks: Vec<Vec<u8>> = png.chunks(256 * 1024).map(<[u8]>::to_vec).collect();
    let half = chunks.len() / 2;
    let engines_for_body = e.clone();
    let body = futures::stream::iter(chunks.into_iter().enumerate()).then(move |(n, chunk)| {
        let e = engines_for_body.clone();
        async move {
            if n == half {
                tokio::task::spawn_blocking(move || e.kill("s3")).await.expect("kill s3");
            }
            tokio::time::sleep(Duration::from_millis(30)).await;
            Ok::<_, std::io::Error>(chunk)
        }
    });
    let res = client
        .post(format!("{}/imagenes", procs[0].url))
        .bearer_auth(&token)
        .header("content-type", "image/png")
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await;
    let status = res.as_ref().map_or(0, |r| r.status().as_u16());
    assert_ne!(status, 202, "an upload acknowledged while its blob store was down");
    if let Ok(r) = &res {
        assert_eq!(status, 503, "the upload answered {status}");
        assert!(r.headers().contains_key("retry-after"));
    }
    // A small upload while it is down is refused too.
    let small = upload(&client, &procs[0].url, &token, &fixture("MR_small.dcm"), None).await;
    assert_eq!(small.status, 503);
    e.resume("s3");
    assert!(
        !blobs.exists(&key).await.expect("head"),
        "a blob was left at {key} by the refused upload"
    );

    // The same upload again goes through, whole, and is anonymized.
    let retried = upload_as(&client, &procs[0].url, &token, (&png, "image/png"), None).await;
    assert_eq!(retried.status, 202, "the retried upload");
    let stored = blobs.get(&key).await.expect("the raw blob");
    assert_eq!(
        hex::encode(Sha256::digest(&stored)),
        hex::encode(Sha256::digest(&png)),
        "the stored blob is whole"
    );
    let reader = outcome_reader(&e, "read_committed");
    let wanted: HashSet<String> = retried.request_id.into_iter().collect();
    let seen = outcomes(&reader, &codec(&e), &wanted, Duration::from_secs(240), Duration::ZERO).await;
    eprintln!(
        "S3 stopped mid-upload: 1 upload refused (status {status}), 0 blobs half-written, the retry acknowledged and {} outcome seen",
        seen.len()
    );
    assert_eq!(seen.len(), 1, "the retried upload has no outcome");
    for p in &mut procs {
        p.stop();
    }
}
