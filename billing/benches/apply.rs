//! How fast billing's store applies usage: batches of [`alpes_billing::BATCH`]
//! new usage events, and the same batches delivered again (all duplicates),
//! into a SQLite ledger file (WAL, `synchronous=NORMAL`, as `alpes up` runs it).
//!
//! `cargo bench -p alpes-billing --bench apply`

use alpes_billing::BATCH;
use alpes_platform::store::conformance::usage;
use alpes_platform::store::{LedgerEntry, LedgerStore, SqliteLedger};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

fn batch(start: usize, providers: usize) -> Vec<LedgerEntry> {
    (start..start + BATCH)
        .map(|i| {
            usage(
                &format!("00000000-0000-4000-8000-{i:012}"),
                &format!("provider-{}", i % providers),
                125,
            )
        })
        .collect()
}

fn apply(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("tmp");
    let ledger = SqliteLedger::open(&dir.path().join("alpes.db"), false).expect("ledger");
    let mut group = c.benchmark_group("billing");
    group.throughput(Throughput::Elements(BATCH as u64));
    let mut next = 0usize;
    group.bench_function("apply new usage (1024 per batch, 100 providers)", |b| {
        b.iter_batched(
            || {
                next += BATCH;
                batch(next, 100)
            },
            |entries| rt.block_on(ledger.apply(entries)).expect("apply"),
            BatchSize::SmallInput,
        );
    });
    let seen = batch(0, 100);
    rt.block_on(ledger.apply(seen.clone())).expect("apply");
    group.bench_function("apply redelivered usage (all duplicates)", |b| {
        b.iter_batched(
            || seen.clone(),
            |entries| rt.block_on(ledger.apply(entries)).expect("apply"),
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

criterion_group!(benches, apply);
criterion_main!(benches);
