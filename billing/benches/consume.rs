//! Billing end to end: `EventoUsoDatos` already on the broker (the in-process
//! development broker, 2 partitions, as `alpes up` runs it) → fetch → Avro
//! decode → ledger → offsets stored, with two ledgers side by side on the
//! same events: a SQLite file (WAL, `synchronous=NORMAL`), and, when
//! `SCYLLA_NODES` names a CQL cluster (e.g. the Cassandra of
//! `deploy/local/engines.sh`), `ScyllaLedger` in a keyspace of its own.
//!
//! Each iteration is a new consumer group (so it reads the topic from offset
//! 0) into a new, empty ledger (on CQL a new keyspace, migrated before the
//! clock starts and dropped after), and every event is a new use. The clock
//! runs from the first applied batch to the last: the group join before it is
//! setup, not billing work. The time is scaled to every event (the first
//! batch, at most [`alpes_billing::BATCH`] of them, is outside the clock).
//!
//! `cargo bench -p alpes-billing --bench consume`
//! `SCYLLA_NODES=127.0.0.1:9042 cargo bench -p alpes-billing --bench consume`

use alpes_billing::Billing;
use alpes_platform::kafka::{Kafka, KafkaArgs, Producer};
use alpes_platform::metrics::Metrics;
use alpes_platform::shutdown::Shutdown;
use alpes_platform::store::cql::migrate::{migrate, Tablets, DEFAULT_REPLICATION};
use alpes_platform::store::{LedgerStore, ScyllaArgs, ScyllaLedger, SqliteLedger};
use alpes_schemas::{Codec, EventoUsoDatos};
use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Events on the topic: 100k when benchmarking, fewer in `cargo test`'s smoke run.
fn events() -> usize {
    if std::env::args().any(|a| a == "--bench") {
        100_000
    } else {
        5_000
    }
}

fn usage(i: usize) -> EventoUsoDatos {
    EventoUsoDatos {
        http_request_id: None,
        event_id: format!("00000000-0000-4000-8000-{i:012}"),
        occurred_at: 1_700_000_000_000 + i as i64,
        actor: format!("consumer-{}", i % 50),
        consumer_id: format!("consumer-{}", i % 50),
        provider_id: format!("provider-{}", i % 100),
        image_id: format!("image-{i}"),
        bytes: 524_288,
        amount_minor: 125,
        currency: "EUR".into(),
        dedupe_key: Some(format!("consumer-{}:image-{i}:0", i % 50)),
    }
}

/// Produces `n` usage events, 4,096 in flight at a time.
async fn fill(producer: &Producer, n: usize) {
    for start in (0..n).step_by(4096) {
        let mut sends = tokio::task::JoinSet::new();
        for i in start..(start + 4096).min(n) {
            let producer = producer.clone();
            sends.spawn(async move {
                let e = usage(i);
                producer.send(&e.image_id, &e).await
            });
        }
        while let Some(sent) = sends.join_next().await {
            sent.expect("join").expect("produce");
        }
    }
}

/// Where a pass keeps its ledger.
enum Ledgers {
    Sqlite,
    /// A CQL cluster: each pass migrates keyspace `<prefix>_<pass>` and drops it after.
    Cql {
        args: ScyllaArgs,
        prefix: String,
    },
}

impl Ledgers {
    fn name(&self) -> &'static str {
        match self {
            Ledgers::Sqlite => "SQLite",
            Ledgers::Cql { .. } => "CQL (SCYLLA_NODES)",
        }
    }

    /// Bills all `n` events into a new ledger of this kind (see [`bill_all`]).
    async fn pass(&self, kafka: &Arc<Kafka>, codec: &Codec, producer: &Producer, n: usize, pass: usize) -> Duration {
        match self {
            Ledgers::Sqlite => {
                let dir = tempfile::tempdir().expect("tmp");
                let ledger = Arc::new(SqliteLedger::open(&dir.path().join("alpes.db"), false).expect("ledger"));
                bill_all(kafka, codec, producer, ledger, n, pass).await
            }
            Ledgers::Cql { args, prefix } => {
                let mut args = args.clone();
                args.keyspace = format!("{prefix}_{pass}");
                let session = args.connect().await.expect("connect to SCYLLA_NODES");
                let replication = std::env::var("SCYLLA_TEST_REPLICATION").unwrap_or_else(|_| DEFAULT_REPLICATION.to_owned());
                migrate(&session, &args.keyspace, &replication, Tablets::Auto)
                    .await
                    .expect("migrate");
                let ledger = Arc::new(ScyllaLedger::new(Arc::clone(&session), &args).await.expect("prepare"));
                let elapsed = bill_all(kafka, codec, producer, ledger, n, pass).await;
                session
                    .query_unpaged(format!("DROP KEYSPACE IF EXISTS {}", args.keyspace), &[])
                    .await
                    .expect("drop the bench keyspace");
                elapsed
            }
        }
    }
}

/// One pass: a new group bills all `n` events into `ledger`; the time from the first applied batch to the last, scaled to `n`.
async fn bill_all(kafka: &Arc<Kafka>, codec: &Codec, producer: &Producer, ledger: Arc<dyn LedgerStore>, n: usize, pass: usize) -> Duration {
    let metrics = Arc::new(Metrics::new());
    let stop = Shutdown::new();
    let billing = Billing::build(kafka.clone(), codec.clone(), ledger.clone(), metrics.clone(), producer.clone())
        .with_group(&format!("bench-billing-{pass}"));
    let task = tokio::spawn(billing.run_until_stopped(stop.clone()));
    let recorded = || usize::try_from(metrics.ledger_entries.with_label_values(&["usage", "recorded"]).get()).unwrap_or(0);
    let deadline = Instant::now() + Duration::from_secs(600);
    let (t0, before) = loop {
        let now = recorded();
        if now > 0 {
            break (Instant::now(), now);
        }
        assert!(Instant::now() < deadline, "billing applied nothing");
        tokio::time::sleep(Duration::from_micros(200)).await;
    };
    while recorded() < n {
        assert!(Instant::now() < deadline, "billing did not finish");
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    let elapsed = t0.elapsed();
    stop.trigger();
    task.await.expect("join").expect("billing");
    let uses: i64 = total_uses(&*ledger, 100).await;
    assert_eq!(uses, n as i64, "every use counted once");
    if before >= n {
        // Everything came in the first batch (the smoke run): no interval to scale.
        return elapsed;
    }
    elapsed.mul_f64(n as f64 / (n - before) as f64)
}

/// The uses credited to `providers` providers.
async fn total_uses(ledger: &dyn LedgerStore, providers: usize) -> i64 {
    let mut uses = 0;
    for p in 0..providers {
        uses += ledger
            .balances(&format!("provider-{p}"))
            .await
            .expect("balances")
            .iter()
            .map(|b| b.uses)
            .sum::<i64>();
    }
    uses
}

fn consume(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let n = events();
    let args = KafkaArgs {
        partitions: Some(2),
        ..KafkaArgs::default()
    };
    let kafka = Arc::new(rt.block_on(Kafka::connect(&args)).expect("development broker"));
    let codec = Codec::single_object();
    let producer = Producer::new(&kafka, codec.clone(), Arc::new(Metrics::new())).expect("producer");
    rt.block_on(fill(&producer, n));
    let mut group = c.benchmark_group("billing");
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .measurement_time(Duration::from_secs(45))
        .throughput(Throughput::Elements(n as u64));
    let scylla = ScyllaArgs::from_env().expect("ScyllaDB settings from the environment");
    let mut ledgers = vec![Ledgers::Sqlite];
    if scylla.configured() {
        ledgers.push(Ledgers::Cql {
            args: scylla,
            prefix: format!("alpes_bench_billing_{}", std::process::id()),
        });
    } else {
        eprintln!("billing/consume: the CQL ledger case SKIPPED: SCYLLA_NODES is not set (no CQL cluster to bill into)");
    }
    let mut pass = 0;
    for ledgers in &ledgers {
        group.bench_function(format!("consume {n} usage events from the broker into {}", ledgers.name()), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    pass += 1;
                    total += rt.block_on(ledgers.pass(&kafka, &codec, &producer, n, pass));
                }
                total
            });
        });
    }
    group.finish();
}

criterion_group!(benches, consume);
criterion_main!(benches);
