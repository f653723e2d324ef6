//! Shared by the integration tests: the in-process mock cluster, a local blob store, fixtures
//! (real DICOM files from the engine's corpus, generated PNG/JPEG), producing inputs, spawning
//! workers and reading every output event back.
// Test helpers: a failed set-up step should panic, and not every test uses every helper.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use alpes_anonymizer::dataset::{Element, Vr};
use alpes_anonymizer::{anonymize, parse, write, Config, Secret};
use alpes_anonymizer_worker::{Worker, WorkerConfig};
use alpes_platform::blobs::{Blobs, RAW};
use alpes_platform::kafka::{Kafka, KafkaArgs, Producer};
use alpes_platform::metrics::Metrics;
use alpes_platform::shutdown::Shutdown;
use alpes_schemas::{
    deterministic_event_id, new_event_id, now_millis, topics, AnalisisCompletado, Codec, Event, ImagenAnonimizada, ImagenRechazada,
    ImagenRegistrada, Profile,
};
use bytes::Bytes;
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::message::Message as _;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use rdkafka::{Offset, TopicPartitionList};
use sha2::{Digest, Sha256};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Partitions of every topic the mock cluster creates.
pub const PARTITIONS: i32 = 6;

/// The secret every test worker uses.
pub const SECRET: &[u8] = b"alpes-worker-test-secret-0123456789";

pub fn secret() -> Secret {
    Secret::new(SECRET.to_vec())
}

/// The engine's fixture corpus (pydicom test files, MIT; see its LICENSE-pydicom.txt).
pub fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/dicom")
}

pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixture_dir().join(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A grey PNG with a text chunk holding `text`.
pub fn png(width: u32, height: u32, text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, width, height);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        enc.add_text_chunk("Comment".into(), text.into()).unwrap();
        let mut w = enc.write_header().unwrap();
        let data: Vec<u8> = (0..width * height).map(|i| (i % 251) as u8).collect();
        w.write_image_data(&data).unwrap();
    }
    out
}

/// A grey JPEG with an APP segment holding `text`.
pub fn jpeg(width: u16, height: u16, text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = jpeg_encoder::Encoder::new(&mut out, 90);
    enc.add_app_segment(13, text.as_bytes()).unwrap();
    let data: Vec<u8> = (0..u32::from(width) * u32::from(height)).map(|i| (i % 253) as u8).collect();
    enc.encode(&data, width, height, jpeg_encoder::ColorType::Luma).unwrap();
    out
}

/// `input` (explicit VR little endian) re-written with PatientName, PatientID and friends set to
/// the given values.
pub fn with_phi(input: &[u8], name: &str, id: &str) -> Vec<u8> {
    let layout = parse::layout(input).unwrap();
    let mut ds = parse::dataset(&input[layout.dataset_start..], layout.transfer_syntax.encoding, 32).unwrap();
    ds.put(Element::text(0x0010_0010, Vr::PN, name));
    ds.put(Element::text(0x0010_0020, Vr::LO, id));
    ds.put(Element::text(0x0010_1040, Vr::LO, &format!("{id} ADDRESS STREET")));
    ds.put(Element::text(0x0008_0080, Vr::LO, &format!("{name} INSTITUTION")));
    let sop_class = ds.text(0x0008_0016).unwrap_or("1.2.840.10008.5.1.4.1.1.7").to_owned();
    let sop_instance = ds.text(0x0008_0018).unwrap_or("1.2.3.4").to_owned();
    let meta = write::Meta {
        sop_class: &sop_class,
        sop_instance: &sop_instance,
        transfer_syntax: &layout.transfer_syntax.uid,
    };
    write::part10(&ds, &meta, layout.transfer_syntax.encoding.explicit, input.len()).bytes
}

/// A top-level text value of a DICOM file.
pub fn dicom_text(bytes: &[u8], tag: u32) -> Option<String> {
    let layout = parse::layout(bytes).ok()?;
    let ds = parse::dataset_head(&bytes[layout.dataset_start..], layout.transfer_syntax.encoding, 32).ok()?;
    ds.text(tag).map(str::to_owned)
}

/// What the engine makes of `bytes` of `provider` with the test secret and the strictest profile
/// (the provider's pseudonyms, as [`WorkerConfig`]'s default scope says).
pub fn engine_output(bytes: &[u8], provider: &str) -> Result<Vec<u8>, &'static str> {
    anonymize(bytes, &Config::new(secret().scoped(provider)))
        .map(|a| a.bytes)
        .map_err(|e| e.code())
}

/// The event ids the worker must produce for `input` with `bytes` as its raw blob (strictest profile).
pub fn expected_event_id(input: &ImagenRegistrada, bytes: &[u8]) -> String {
    match engine_output(bytes, &input.provider_id) {
        Ok(out) => deterministic_event_id("ImagenAnonimizada", &[&input.image_id, &input.request_id, &sha256_hex(&out)]),
        Err(code) => deterministic_event_id("ImagenRechazada", &[&input.image_id, &input.request_id, code]),
    }
}

/// A mock cluster, a local blob store and a producer of inputs.
pub struct Harness {
    pub kafka: Arc<Kafka>,
    pub blobs: Blobs,
    pub dir: tempfile::TempDir,
    pub codec: Codec,
    pub producer: Producer,
    raw: FutureProducer,
}

impl Harness {
    pub async fn start() -> Harness {
        let mut args = KafkaArgs::default();
        // The mock coordinator waits up to session timeout - 1 s for members after a leave or a
        // join; the 45 s default would make every rebalance in a test that slow.
        args.props.push(("session.timeout.ms".into(), "6000".into()));
        if let Ok(d) = std::env::var("TEST_KAFKA_DEBUG") {
            args.props.push(("debug".into(), d));
        }
        let kafka = Arc::new(Kafka::connect(&args).await.expect("mock cluster"));
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::local(dir.path()).unwrap();
        let codec = Codec::single_object();
        let producer = Producer::new(&kafka, codec.clone(), Arc::new(Metrics::new())).unwrap();
        let raw: FutureProducer = kafka.client_config().create().unwrap();
        Harness {
            kafka,
            blobs,
            dir,
            codec,
            producer,
            raw,
        }
    }

    /// Stores `bytes` as a raw blob.
    pub async fn put_raw(&self, bytes: &[u8]) -> (String, String) {
        self.blobs.put_bytes(RAW, Bytes::copy_from_slice(bytes)).await.unwrap()
    }

    /// An `ImagenRegistrada` for `bytes`, stored as a raw blob first.
    pub async fn register(&self, image_id: &str, bytes: &[u8], media_type: &str) -> ImagenRegistrada {
        let (blob_key, sha256) = self.put_raw(bytes).await;
        registered(image_id, &blob_key, &sha256, bytes.len(), media_type)
    }

    /// Produces `event` keyed by its image id.
    pub async fn produce(&self, event: &ImagenRegistrada) {
        self.producer.send(&event.image_id, event).await.unwrap();
    }

    /// Produces raw bytes to the registered topic with `key`; returns (partition, offset).
    pub async fn produce_raw(&self, key: &str, payload: &[u8]) -> (i32, i64) {
        let record = FutureRecord::to(topics::IMAGES_REGISTERED).key(key).payload(payload);
        let d = self
            .raw
            .send(record, Timeout::After(Duration::from_secs(10)))
            .await
            .map_err(|(e, _)| e)
            .unwrap();
        (d.partition, d.offset)
    }

    /// Produces an event keyed by `key`; returns (partition, offset).
    pub async fn produce_keyed<E: Event>(&self, key: &str, event: &E) -> (i32, i64) {
        let payload = self.codec.encode(event).await.unwrap();
        self.produce_raw(key, &payload).await
    }

    /// A built worker in `group` with test settings.
    pub fn worker(&self, cfg: WorkerConfig) -> Worker {
        Worker::build(
            Arc::clone(&self.kafka),
            self.blobs.clone(),
            self.codec.clone(),
            secret(),
            Arc::new(Metrics::new()),
            cfg,
        )
        .unwrap()
    }

    /// Spawns a worker with its own metrics.
    pub fn spawn(&self, cfg: WorkerConfig) -> Running {
        let metrics = Arc::new(Metrics::new());
        let worker = Worker::build(
            Arc::clone(&self.kafka),
            self.blobs.clone(),
            self.codec.clone(),
            secret(),
            Arc::clone(&metrics),
            cfg,
        )
        .unwrap();
        let shutdown = Shutdown::new();
        let handle = tokio::spawn(worker.run_until_stopped(shutdown.clone()));
        Running { shutdown, handle, metrics }
    }

    /// The committed offset (next to read) of each partition of the registered topic for `group`.
    pub fn committed(&self, group: &str) -> BTreeMap<i32, i64> {
        let consumer: BaseConsumer = self.kafka.client_config().set("group.id", group).create().unwrap();
        let mut tpl = TopicPartitionList::new();
        for p in 0..PARTITIONS {
            tpl.add_partition(topics::IMAGES_REGISTERED, p);
        }
        let got = consumer.committed_offsets(tpl, Duration::from_secs(10)).unwrap();
        got.elements()
            .iter()
            .filter_map(|e| match e.offset() {
                Offset::Offset(o) => Some((e.partition(), o)),
                _ => None,
            })
            .collect()
    }
}

/// Test worker settings: a fresh group, two engine threads, small batches.
pub fn test_config(group: &str) -> WorkerConfig {
    WorkerConfig {
        group: group.to_owned(),
        jobs: 2,
        batch_size: 8,
        ..WorkerConfig::default()
    }
}

pub fn registered(image_id: &str, blob_key: &str, sha256: &str, size: usize, media_type: &str) -> ImagenRegistrada {
    ImagenRegistrada {
        http_request_id: None,
        event_id: new_event_id(),
        occurred_at: now_millis(),
        actor: "prov-1".into(),
        image_id: image_id.into(),
        provider_id: "prov-1".into(),
        blob_key: blob_key.into(),
        sha256: sha256.into(),
        size_bytes: size as i64,
        media_type: media_type.into(),
        profile: Profile::default(),
        source: "rest".into(),
        request_id: format!("req-{image_id}"),
        tipo_imagen: Some("CT".into()),
        region_anatomica: Some("torax".into()),
        institucion_id: None,
    }
}

/// A worker running on the test runtime.
pub struct Running {
    pub shutdown: Shutdown,
    pub handle: JoinHandle<alpes_anonymizer_worker::Result<()>>,
    pub metrics: Arc<Metrics>,
}

impl Running {
    /// Asks the worker to stop and waits for it.
    pub async fn stop(self) -> alpes_anonymizer_worker::Result<()> {
        self.shutdown.trigger();
        tokio::time::timeout(Duration::from_secs(30), self.handle)
            .await
            .expect("the worker stops in time")
            .expect("the worker task")
    }

    /// Kills the worker: no shutdown, nothing beyond what it already stored gets committed.
    pub async fn kill(self) {
        self.handle.abort();
        let _ = self.handle.await;
    }

    /// Output events this worker produced so far.
    pub fn produced(&self) -> u64 {
        [topics::IMAGES_ANONYMIZED, topics::IMAGES_REJECTED]
            .iter()
            .map(|t| self.metrics.events_produced.with_label_values(&[t]).get())
            .sum()
    }
}

/// One output event.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)] // a few dozen per test
pub enum Out {
    Anonymized(ImagenAnonimizada),
    Rejected(ImagenRechazada),
}

impl Out {
    pub fn event_id(&self) -> &str {
        match self {
            Out::Anonymized(e) => &e.event_id,
            Out::Rejected(e) => &e.event_id,
        }
    }

    pub fn image_id(&self) -> Option<&str> {
        match self {
            Out::Anonymized(e) => Some(&e.image_id),
            Out::Rejected(e) => e.image_id.as_deref(),
        }
    }

    pub fn anonymized(&self) -> Option<&ImagenAnonimizada> {
        match self {
            Out::Anonymized(e) => Some(e),
            Out::Rejected(_) => None,
        }
    }

    pub fn rejected(&self) -> Option<&ImagenRechazada> {
        match self {
            Out::Rejected(e) => Some(e),
            Out::Anonymized(_) => None,
        }
    }
}

/// Reads every output event from the beginning of both output topics (read committed).
pub struct Reader {
    consumer: StreamConsumer,
    codec: Codec,
    pub seen: Vec<Out>,
    /// `AnalisisCompletado` events, apart from the outputs.
    pub analyses: Vec<AnalisisCompletado>,
}

impl Reader {
    pub fn new(h: &Harness) -> Reader {
        let consumer: StreamConsumer = h
            .kafka
            .client_config()
            .set("group.id", format!("test-reader-{}", new_event_id()))
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("isolation.level", "read_committed")
            .create()
            .unwrap();
        let mut tpl = TopicPartitionList::new();
        for topic in [topics::IMAGES_ANONYMIZED, topics::IMAGES_REJECTED, topics::IMAGES_ANALYZED] {
            for p in 0..PARTITIONS {
                tpl.add_partition_offset(topic, p, Offset::Beginning).unwrap();
            }
        }
        consumer.assign(&tpl).unwrap();
        Reader {
            consumer,
            codec: h.codec.clone(),
            seen: Vec::new(),
            analyses: Vec::new(),
        }
    }

    /// Reads one message if one comes within `wait`.
    async fn next(&mut self, wait: Duration) -> bool {
        let Ok(msg) = tokio::time::timeout(wait, self.consumer.recv()).await else {
            return false;
        };
        // Broker errors (an outage the test made) are not outputs; keep reading.
        let Ok(msg) = msg else { return true };
        let payload = msg.payload().unwrap_or_default();
        if msg.topic() == topics::IMAGES_ANALYZED {
            self.analyses.push(self.codec.decode(payload).await.unwrap());
            return true;
        }
        let out = if msg.topic() == topics::IMAGES_ANONYMIZED {
            Out::Anonymized(self.codec.decode(payload).await.unwrap())
        } else {
            Out::Rejected(self.codec.decode(payload).await.unwrap())
        };
        self.seen.push(out);
        true
    }

    /// Reads until `done(seen)` holds; panics after `timeout`.
    pub async fn until(&mut self, timeout: Duration, done: impl Fn(&[Out]) -> bool) -> &[Out] {
        let deadline = Instant::now() + timeout;
        while !done(&self.seen) {
            assert!(
                Instant::now() < deadline,
                "timed out with {} outputs: {:#?}",
                self.seen.len(),
                self.summary()
            );
            self.next(Duration::from_millis(200)).await;
        }
        &self.seen
    }

    /// Reads until `n` distinct event ids were seen.
    pub async fn until_distinct(&mut self, timeout: Duration, n: usize) -> &[Out] {
        self.until(timeout, |seen| seen.iter().map(Out::event_id).collect::<BTreeSet<_>>().len() >= n)
            .await
    }

    /// Reads until nothing more arrives for `quiet`.
    pub async fn settle(&mut self, quiet: Duration) -> &[Out] {
        while self.next(quiet).await {}
        &self.seen
    }

    /// The distinct event ids seen.
    pub fn event_ids(&self) -> BTreeSet<String> {
        self.seen.iter().map(|o| o.event_id().to_owned()).collect()
    }

    /// (image id, reason or blob key) of everything seen, for failure messages.
    pub fn summary(&self) -> Vec<(Option<String>, String)> {
        self.seen
            .iter()
            .map(|o| match o {
                Out::Anonymized(e) => (Some(e.image_id.clone()), e.blob_key.clone()),
                Out::Rejected(e) => (e.image_id.clone(), format!("{}: {}", e.reason, e.message)),
            })
            .collect()
    }
}
