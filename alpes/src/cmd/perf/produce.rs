//! `alpes perf produce`: kafka-producer-perf-test's options and output on
//! librdkafka. Records go out through a `BaseProducer` polled on the sending
//! thread; each record's latency runs from `send` to its delivery callback.

use super::payload_file::PayloadStream;
use super::stats::Stats;
use super::{read_props, Rng, Target};
use alpes_schemas::{Codec, ImagenRegistrada, Profile};
use anyhow::{bail, Context, Result};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{ClientConfig, ClientContext};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The default transaction length when transactions are on and no duration is given (the Java tool's).
const DEFAULT_TRANSACTION_DURATION_MS: u64 = 3000;

/// Arguments of `alpes perf produce` (kafka-producer-perf-test's, plus `--embedded`,
/// `--bootstrap-server` and `--value-schema`).
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("payload").required(true).args(["record_size", "payload_file", "value_schema"])))]
pub struct Args {
    /// Produce records to this topic.
    #[arg(long)]
    topic: String,
    /// Number of records to produce.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    num_records: u64,
    /// Record size in bytes (random upper-case letters).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    record_size: Option<u32>,
    /// A file of payloads, split by --payload-delimiter (empty payloads are skipped); the records are its
    /// payloads in file order, from the start again when there are fewer than --num-records
    /// (kafka-producer-perf-test picks one at random for each record instead).
    #[arg(long)]
    payload_file: Option<PathBuf>,
    /// The payload file's delimiter (`\n` by default; the two characters `\n` also mean a newline).
    #[arg(long, default_value = "\\n")]
    payload_delimiter: String,
    /// Produce Avro events of this schema instead of opaque bytes, framed as the platform frames them
    /// (Schema Registry framing when SCHEMA_REGISTRY_URL is set).
    #[arg(long, value_enum)]
    value_schema: Option<ValueSchema>,
    /// Throttle to about this many records per second; -1 for no limit.
    #[arg(long, allow_negative_numbers = true)]
    throughput: f64,
    /// Producer properties, `NAME=VALUE` (librdkafka names, which include Kafka's common ones such as acks,
    /// linger.ms, batch.size, compression.type); they win over --producer.config.
    #[arg(long, num_args = 1.., value_name = "PROP-NAME=PROP-VALUE")]
    producer_props: Vec<String>,
    /// A producer properties file.
    #[arg(long = "producer.config", value_name = "CONFIG-FILE")]
    producer_config: Option<PathBuf>,
    /// Produce in transactions with this id (it wins over transactional.id in the properties).
    #[arg(long)]
    transactional_id: Option<String>,
    /// Commit a transaction after this many milliseconds (3000 when transactions are on and it is not given).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    transaction_duration_ms: Option<u64>,
    /// Records to treat as warm-up: a second summary line gives the steady state after them.
    #[arg(long, default_value_t = 0)]
    warmup_records: u64,
    #[command(flatten)]
    target: Target,
}

/// The Avro events `--value-schema` can produce.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum ValueSchema {
    /// `ImagenRegistrada`: an image uploaded and its raw blob stored, keyed by image id.
    #[value(name = "ImagenRegistrada")]
    ImagenRegistrada,
}

/// Where each record's latency and size go: the whole run's statistics and, after the warm-up, the steady state's.
struct Recorder {
    clock: Instant,
    stats: Mutex<(Stats, Option<Stats>)>,
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl Recorder {
    fn now(&self) -> Duration {
        self.clock.elapsed()
    }
}

impl ClientContext for Recorder {
    /// librdkafka's warnings and errors (a broker that cannot be reached, refused credentials)
    /// go to stderr, so that stdout keeps only the Java tool's lines.
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, log_message: &str) {
        use rdkafka::config::RDKafkaLogLevel as L;
        if matches!(level, L::Emerg | L::Alert | L::Critical | L::Error | L::Warning) {
            eprintln!("alpes: librdkafka {fac}: {log_message}");
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        eprintln!("alpes: kafka: {error}: {reason}");
    }
}

impl ProducerContext for Recorder {
    /// [`opaque`]: when `send` was called, and whether the record counts toward the steady state.
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, opaque: usize) {
        let now = self.now();
        let (sent_at, in_steady_state) = (Duration::from_micros((opaque >> 1) as u64), opaque & 1 == 1);
        match result {
            Ok(m) => {
                let latency = now.saturating_sub(sent_at);
                // The value's bytes, as the Java tool counts `payload.length` (keys are not counted).
                let bytes = m.payload_len();
                let Ok(mut guard) = self.stats.lock() else { return };
                let (stats, steady) = &mut *guard;
                let mut lines = stats.record(latency, bytes, now);
                if let (Some(steady), true) = (steady, in_steady_state) {
                    lines.extend(steady.record(latency, bytes, now));
                }
                for line in lines {
                    println!("{line}");
                }
            }
            Err((e, _)) => {
                if self.failed.fetch_add(1, Ordering::Relaxed) == 0 {
                    if let Ok(mut first) = self.first_error.lock() {
                        *first = Some(e.to_string());
                    }
                }
            }
        }
    }
}

/// What each record carries.
enum Payloads {
    Letters(Vec<u8>),
    File(Box<PayloadStream<std::fs::File>>),
    Events(Box<Events>),
}

/// Realistic `ImagenRegistrada` events, encoded as the platform encodes them.
struct Events {
    codec: Codec,
    rt: tokio::runtime::Runtime,
    buf: Vec<u8>,
    key: String,
}

impl Payloads {
    fn new(args: &Args) -> Result<Payloads> {
        if let Some(size) = args.record_size {
            return Ok(Payloads::Letters(vec![0; size as usize]));
        }
        if let Some(path) = &args.payload_file {
            let delimiter = if args.payload_delimiter == "\\n" {
                "\n"
            } else {
                args.payload_delimiter.as_str()
            };
            println!(
                "Reading payloads from: {}",
                std::path::absolute(path).unwrap_or_else(|_| path.clone()).display()
            );
            let file = std::fs::File::open(path).context("File does not exist or empty file provided.")?;
            let payloads = PayloadStream::new(file, delimiter.as_bytes());
            return Ok(Payloads::File(Box::new(payloads)));
        }
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        Ok(Payloads::Events(Box::new(Events {
            codec: Codec::from_env(),
            rt,
            buf: Vec::new(),
            key: String::new(),
        })))
    }

    /// The next record's key and value.
    fn next(&mut self, rng: &mut Rng, i: u64) -> Result<(Option<&[u8]>, &[u8])> {
        match self {
            Payloads::Letters(buf) => {
                rng.fill_letters(buf);
                Ok((None, buf))
            }
            Payloads::File(file) => Ok((None, file.next_payload()?)),
            Payloads::Events(ev) => {
                let event = registered_image(rng, i);
                ev.buf = ev.rt.block_on(ev.codec.encode(&event)).context("cannot encode the event")?;
                ev.key = event.image_id;
                Ok((Some(ev.key.as_bytes()), &ev.buf))
            }
        }
    }
}

fn uuid_from(rng: &mut Rng) -> String {
    let bits = (u128::from(rng.next_u64()) << 64) | u128::from(rng.next_u64());
    uuid::Builder::from_random_bytes(bits.to_le_bytes()).into_uuid().to_string()
}

fn hex64(rng: &mut Rng) -> String {
    (0..4).map(|_| format!("{:016x}", rng.next_u64())).collect()
}

/// An `ImagenRegistrada` as an upload makes one: ids, a content hash and sizes drawn at random,
/// the media types, sources and modalities a hospital sends. No PHI: events never carry any.
fn registered_image(rng: &mut Rng, i: u64) -> ImagenRegistrada {
    const MODALITIES: [&str; 6] = ["CT", "MR", "US", "CR", "DX", "MG"];
    const REGIONS: [&str; 5] = ["CHEST", "HEAD", "ABDOMEN", "KNEE", "BREAST"];
    const SOURCES: [&str; 3] = ["rest", "multipart", "stow"];
    let pick = |rng: &mut Rng, from: &[&'static str]| from[rng.below(from.len() as u64) as usize].to_owned();
    let sha256 = hex64(rng);
    let media = rng.below(10);
    ImagenRegistrada {
        event_id: uuid_from(rng),
        occurred_at: alpes_schemas::now_millis(),
        actor: format!("provider-{}", rng.below(50)),
        image_id: uuid_from(rng),
        provider_id: format!("provider-{}", i % 50),
        blob_key: format!("raw/{sha256}"),
        sha256,
        size_bytes: i64::try_from(100_000 + rng.below(50_000_000)).unwrap_or(0),
        media_type: match media {
            0 => "image/png",
            1 => "image/jpeg",
            _ => "application/dicom",
        }
        .to_owned(),
        profile: Profile::default(),
        source: pick(rng, &SOURCES),
        request_id: uuid_from(rng),
        tipo_imagen: Some(pick(rng, &MODALITIES)),
        region_anatomica: Some(pick(rng, &REGIONS)),
        http_request_id: Some(uuid_from(rng)),
        institucion_id: None,
    }
}

/// Runs the test and prints kafka-producer-perf-test's lines.
pub fn run(args: Args) -> Result<ExitCode> {
    if args.warmup_records >= args.num_records {
        bail!("The value for --warmup-records must be strictly fewer than the number of records in the test, --num-records.");
    }
    let mut props = read_props(args.producer_config.as_deref(), &args.producer_props)?;
    if args.producer_props.is_empty() && args.producer_config.is_none() && !args.target.embedded && args.target.bootstrap_server.is_none() {
        bail!("Either --producer-props or --producer.config must be specified.");
    }
    let _mock = args.target.apply(&mut props)?;
    let transactional =
        args.transaction_duration_ms.is_some() || args.transactional_id.is_some() || props.iter().any(|(k, _)| k == "transactional.id");
    let transaction_duration = Duration::from_millis(args.transaction_duration_ms.unwrap_or(DEFAULT_TRANSACTION_DURATION_MS));
    if transactional {
        let id = match (&args.transactional_id, props.iter().find(|(k, _)| k == "transactional.id")) {
            (Some(id), _) => id.clone(),
            (None, Some((_, id))) => id.clone(),
            (None, None) => format!("performance-producer-{}", uuid::Uuid::new_v4()),
        };
        props.retain(|(k, _)| k != "transactional.id");
        props.push(("transactional.id".into(), id));
    }
    let mut config = ClientConfig::new();
    config.set("client.id", "perf-producer-client");
    for (k, v) in &props {
        config.set(k, v);
    }
    let mut payloads = Payloads::new(&args)?;
    let recorder = Recorder {
        clock: Instant::now(),
        stats: Mutex::new((Stats::new(args.num_records, false, Duration::ZERO), None)),
        failed: AtomicU64::new(0),
        first_error: Mutex::new(None),
    };
    let producer: BaseProducer<Recorder> = config.create_with_context(recorder).context("cannot create the producer")?;
    if transactional {
        producer
            .init_transactions(Duration::from_secs(30))
            .context("cannot initialise transactions")?;
    }
    if args.warmup_records > 0 {
        println!(
            "Warmup first {} records. Steady state results will print after the complete test summary.",
            args.warmup_records
        );
    }
    let ctx = producer.context();
    {
        // The run's clock starts with the first send, as the Java tool's does.
        let now = ctx.now();
        let mut guard = ctx.stats.lock().map_err(|_| anyhow::anyhow!("statistics lock poisoned"))?;
        guard.0 = Stats::new(args.num_records, false, now);
    }
    let start = ctx.now();
    let sent = send_all(
        &producer,
        &args,
        &mut payloads,
        start,
        transactional.then_some(transaction_duration),
    );
    if let Err(e) = sent {
        if transactional {
            // An open transaction would hold back read_committed consumers until it timed out.
            let _ = producer.abort_transaction(Duration::from_secs(30));
        }
        report_failures(ctx);
        return Err(e);
    }
    if let Err(e) = producer.flush(Duration::from_secs(300)) {
        report_failures(ctx);
        return Err(e).context("cannot deliver every record");
    }
    let now = ctx.now();
    let mut guard = ctx.stats.lock().map_err(|_| anyhow::anyhow!("statistics lock poisoned"))?;
    println!("{}", guard.0.total_line(now));
    if let Some(steady) = guard.1.as_mut() {
        println!("{}", steady.total_line(now));
    }
    drop(guard);
    Ok(if report_failures(ctx) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// How long a send may wait for room in the local queue with no record acknowledged
/// (the Java producer's `max.block.ms` default).
const MAX_BLOCK: Duration = Duration::from_secs(60);

/// Sends every record: serves delivery callbacks as it goes (one `poll` serves one batch's
/// callbacks), waits for room when the local queue is full, throttles by polling (so callbacks
/// keep their true time), and commits transactions as they come due.
fn send_all(
    producer: &BaseProducer<Recorder>,
    args: &Args,
    payloads: &mut Payloads,
    start: Duration,
    transaction_duration: Option<Duration>,
) -> Result<()> {
    let ctx = producer.context();
    let mut rng = Rng::new(0);
    let mut in_transaction = 0u64;
    let mut transaction_start = start;
    for i in 0..args.num_records {
        let (key, value) = payloads.next(&mut rng, i)?;
        if transaction_duration.is_some() && in_transaction == 0 {
            producer.begin_transaction().context("cannot begin a transaction")?;
        }
        let sent_at = ctx.now();
        if in_transaction == 0 {
            transaction_start = sent_at;
        }
        if args.warmup_records > 0 && i == args.warmup_records {
            let mut guard = ctx.stats.lock().map_err(|_| anyhow::anyhow!("statistics lock poisoned"))?;
            guard.1 = Some(Stats::new(args.num_records - args.warmup_records, true, sent_at));
            guard.0.suppress_printing();
        }
        let opaque = opaque(sent_at, args.warmup_records > 0 && i >= args.warmup_records);
        let mut record = BaseRecord::with_opaque_to(&args.topic, opaque).payload(value);
        if let Some(key) = key {
            record = record.key(key);
        }
        let mut blocked_since: Option<(Instant, u64)> = None;
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    // The local queue is full: serve delivery callbacks until there is room, as
                    // Java's send blocks, but not forever when nothing is being acknowledged.
                    let done = acknowledged(ctx);
                    match blocked_since {
                        Some((since, at)) if at == done && since.elapsed() >= MAX_BLOCK => {
                            bail!("no record was acknowledged for {} s with the local queue full", MAX_BLOCK.as_secs())
                        }
                        Some((_, at)) if at == done => {}
                        _ => blocked_since = Some((Instant::now(), done)),
                    }
                    producer.poll(Duration::from_millis(1));
                    record = back;
                }
                Err((e, _)) => return Err(e).context("cannot produce"),
            }
        }
        in_transaction += 1;
        if let Some(duration) = transaction_duration {
            if sent_at.saturating_sub(transaction_start) >= duration {
                producer
                    .commit_transaction(Duration::from_secs(60))
                    .context("cannot commit a transaction")?;
                in_transaction = 0;
            }
        }
        // One poll serves one event (one batch's callbacks). A throttled run polls after every
        // send, so each record is timed to its acknowledgement, not to the next poll; a run at
        // full speed fills batches of hundreds of records, and polling after every send would
        // cost a fifth of its rate (measured against kcat), so it polls every 64th.
        if args.throughput > 0.0 || i.is_multiple_of(64) {
            producer.poll(Duration::ZERO);
        }
        if args.throughput > 0.0 {
            while let Some(ahead) = ahead_of_rate(args.throughput, i + 1, ctx.now().saturating_sub(start)) {
                producer.poll(ahead.min(Duration::from_millis(10)));
            }
        }
    }
    if transaction_duration.is_some() && in_transaction > 0 {
        producer
            .commit_transaction(Duration::from_secs(60))
            .context("cannot commit a transaction")?;
    }
    Ok(())
}

/// Records acknowledged or failed so far.
fn acknowledged(ctx: &Recorder) -> u64 {
    let ok = ctx.stats.lock().map_or(0, |g| g.0.count());
    ok + ctx.failed.load(Ordering::Relaxed)
}

/// Prints the count and first error of undelivered records to stderr; whether there were any.
fn report_failures(ctx: &Recorder) -> bool {
    let failed = ctx.failed.load(Ordering::Relaxed);
    if failed > 0 {
        let first = ctx.first_error.lock().ok().and_then(|e| e.clone()).unwrap_or_default();
        eprintln!("alpes: {failed} record(s) were not delivered; the first error: {first}");
    }
    failed > 0
}

/// A record's delivery opaque: the microseconds from the run's clock start to its `send`, shifted
/// left one bit, and in that bit whether it was sent after the warm-up (only those make the
/// steady state, as only they do in the Java tool, whatever order the acknowledgements come in).
fn opaque(sent_at: Duration, steady_state: bool) -> usize {
    let us = usize::try_from(sent_at.as_micros()).unwrap_or(usize::MAX).min(usize::MAX >> 1);
    (us << 1) | usize::from(steady_state)
}

/// How far ahead of `throughput` records per second a run is that sent `sent` records in
/// `elapsed` (`None` when it is not ahead by a millisecond or more, or has no limit).
fn ahead_of_rate(throughput: f64, sent: u64, elapsed: Duration) -> Option<Duration> {
    if throughput <= 0.0 {
        return None;
    }
    // A rate so low that the due time overflows waits as long as a Duration can.
    let due = Duration::try_from_secs_f64(sent as f64 / throughput).unwrap_or(Duration::MAX);
    due.checked_sub(elapsed).filter(|ahead| *ahead >= Duration::from_millis(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_throttled_run_waits_only_when_ahead_of_the_rate() {
        assert_eq!(ahead_of_rate(-1.0, 1_000_000, Duration::ZERO), None, "no limit");
        assert_eq!(ahead_of_rate(1000.0, 10, Duration::from_millis(20)), None, "behind the rate");
        assert_eq!(ahead_of_rate(1000.0, 20, Duration::ZERO), Some(Duration::from_millis(20)));
        assert_eq!(
            ahead_of_rate(1000.0, 20, Duration::from_micros(19_500)),
            None,
            "less than a millisecond ahead"
        );
        assert_eq!(ahead_of_rate(1e-300, 1, Duration::ZERO), Some(Duration::MAX), "no overflow panic");
    }

    #[test]
    fn a_generated_event_is_realistic() {
        let mut rng = Rng::new(7);
        let a = registered_image(&mut rng, 0);
        let b = registered_image(&mut rng, 1);
        assert_ne!(a.event_id, b.event_id);
        assert_ne!(a.image_id, b.image_id);
        assert_eq!(a.blob_key, format!("raw/{}", a.sha256));
        assert_eq!(a.sha256.len(), 64);
        assert!(uuid::Uuid::parse_str(&a.event_id).is_ok());
        assert!(a.size_bytes >= 100_000);
        assert!(["application/dicom", "image/png", "image/jpeg"].contains(&a.media_type.as_str()));
    }
}
