//! Traffic for the suite: uploads, reads and downloads over HTTP, and the
//! outcome events read back from the topics.

use crate::harness::{eventually, Engines};
use alpes_schemas::{topics, Codec, ImagenAnonimizada, ImagenRechazada};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::Message;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

/// A real DICOM fixture's bytes.
pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(crate::common::fixtures_dir().join(name)).expect("fixture")
}

/// What an upload answered.
#[derive(Debug, Clone)]
pub struct Upload {
    pub status: u16,
    pub retry_after: Option<String>,
    pub id: Option<String>,
    pub request_id: Option<String>,
    pub duplicate: bool,
}

/// `POST /imagenes` of `bytes` (DICOM) with `token`, and an `Idempotency-Key` if given.
pub async fn upload(client: &reqwest::Client, base: &str, token: &str, bytes: &[u8], key: Option<&str>) -> Upload {
    upload_as(client, base, token, (bytes, "application/dicom"), key).await
}

/// `POST /imagenes` of `bytes` of `media_type` with `token`, and an `Idempotency-Key` if given.
pub async fn upload_as(client: &reqwest::Client, base: &str, token: &str, (bytes, media_type): (&[u8], &str), key: Option<&str>) -> Upload {
    let mut req = client
        .post(format!("{base}/imagenes"))
        .bearer_auth(token)
        .header("content-type", media_type)
        .timeout(Duration::from_secs(60))
        .body(bytes.to_vec());
    if let Some(k) = key {
        req = req.header("idempotency-key", k);
    }
    let res = match req.send().await {
        Ok(r) => r,
        // A connection cut (the server stopped mid-request) is no acknowledgement.
        Err(_) => {
            return Upload {
                status: 0,
                retry_after: None,
                id: None,
                request_id: None,
                duplicate: false,
            }
        }
    };
    let status = res.status().as_u16();
    let retry_after = res.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let body: Value = res.json().await.unwrap_or(Value::Null);
    Upload {
        status,
        retry_after,
        id: body["id"].as_str().map(str::to_owned),
        request_id: body["images"][0]["request_id"].as_str().map(str::to_owned),
        duplicate: body["images"][0]["duplicate"].as_bool().unwrap_or(false),
    }
}

/// `GET path` with `token`: the status, the `Retry-After` header and the body.
pub async fn get(client: &reqwest::Client, url: &str, token: &str) -> (u16, Option<String>, Vec<u8>) {
    match client.get(url).bearer_auth(token).timeout(Duration::from_secs(30)).send().await {
        Ok(res) => {
            let status = res.status().as_u16();
            let retry = res.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned);
            (status, retry, res.bytes().await.map(|b| b.to_vec()).unwrap_or_default())
        }
        Err(_) => (0, None, Vec::new()),
    }
}

/// Waits until the query side shows image `id` anonymized; returns its `estado`.
pub async fn anonymized(client: &reqwest::Client, query: &str, token: &str, id: &str, wait: Duration) -> String {
    eventually(&format!("image {id} anonymized"), wait, || async {
        let (status, _, body) = get(client, &format!("{query}/imagenes/{id}"), token).await;
        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let estado = v["estado"].as_str().unwrap_or_default().to_owned();
        (status == 200 && estado != "registrada").then_some(estado)
    })
    .await
}

/// A consumer of the outcome topics in a fresh group, from the start, at `isolation`
/// (`read_committed` or `read_uncommitted`).
pub fn outcome_reader(engines: &Engines, isolation: &str) -> StreamConsumer {
    let mut cfg = rdkafka::ClientConfig::new();
    cfg.set("bootstrap.servers", engines.var("KAFKA_BOOTSTRAP_SERVERS"))
        .set("group.id", format!("it-outcomes-{}", uuid::Uuid::new_v4()))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("isolation.level", isolation);
    let c: StreamConsumer = cfg.create().expect("consumer");
    c.subscribe(&[topics::IMAGES_ANONYMIZED, topics::IMAGES_REJECTED])
        .expect("subscribe");
    c
}

/// The outcomes `reader` sees for the requests in `wanted`: request id → how many outcome
/// events. Reads until each has one (`wait` at most), then `settle` longer, so duplicates show.
pub async fn outcomes(
    reader: &StreamConsumer,
    codec: &Codec,
    wanted: &HashSet<String>,
    wait: Duration,
    settle: Duration,
) -> HashMap<String, usize> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let deadline = Instant::now() + wait;
    let mut until = deadline;
    loop {
        if until == deadline && wanted.iter().all(|r| seen.contains_key(r)) {
            until = Instant::now() + settle;
        }
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return seen;
        }
        let msg = match tokio::time::timeout(left, reader.recv()).await {
            Err(_) => return seen,
            Ok(Err(e)) => {
                eprintln!("outcome reader: {e} (still reading)");
                continue;
            }
            Ok(Ok(m)) => m,
        };
        let payload = msg.payload().unwrap_or_default();
        let request = if msg.topic() == topics::IMAGES_ANONYMIZED {
            codec.decode::<ImagenAnonimizada>(payload).await.ok().map(|e| e.request_id)
        } else {
            codec.decode::<ImagenRechazada>(payload).await.ok().and_then(|e| e.request_id)
        };
        if let Some(r) = request.filter(|r| wanted.contains(r)) {
            *seen.entry(r).or_default() += 1;
        }
    }
}

/// The codec the engines' events are framed with (the registry's).
pub fn codec(engines: &Engines) -> Codec {
    Codec::registry(&engines.var("SCHEMA_REGISTRY_URL"))
}
