//! Criterion benches for the write paths of the embedded (SQLite) store
//! adapters, one write per call, each its own transaction, as the services
//! issue them:
//!
//! - `ingest/claim`: [`IngestStore::claim`] of a new image with its first request;
//! - `catalog/registered`: [`CatalogStore::apply`] of one `ImagenRegistrada` (a new row);
//! - `catalog/anonymized`: [`CatalogStore::apply`] of one `ImagenAnonimizada` onto
//!   an image registered beforehand, outside the timing (the projection's upsert);
//! - `ledger/usage`: [`LedgerStore::apply`] of one usage event (a ledger row and a
//!   balance upsert);
//! - `audit/append`: [`AuditStore::append`] of one audit entry;
//! - `identity/create_account`: [`IdentityStore::create_account`] (the password
//!   hash is computed beforehand, so only the write is timed).
//!
//! Each adapter has its own database file in a temporary directory (WAL), opened
//! twice: group `store/fsync_off` (`synchronous=NORMAL`, what `alpes up` runs by
//! default) and group `store/fsync_on` (`synchronous=FULL`, every commit flushed).
//! Every timed write is new (fresh ids from a counter), so the tables grow as
//! the bench runs. The async API is driven by a current-thread tokio runtime's
//! `block_on`; each write hops to tokio's blocking pool and back, as in the
//! services. The fsync figures depend on the disk under the temporary
//! directory (`TMPDIR`).
//!
//! `cargo bench --workspace --bench store` (`-- --quick` for a short run);
//! `cargo test --workspace --all-targets` runs each bench once as a smoke check.

use alpes_platform::auth::Role;
use alpes_platform::store::conformance::{account, anonymized, audit_entry, registered, usage};
use alpes_platform::store::{
    AuditStore, CatalogEvent, CatalogStore, Claim, Created, IdentityStore, ImageRow, IngestStore, LedgerStore, NewImage, SqliteAudit,
    SqliteCatalog, SqliteIdentity, SqliteLedger, SqliteStore,
};
use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkGroup, Criterion, SamplingMode, Throughput};
use std::path::Path;
use std::time::Duration;
use tokio::runtime::Runtime;

const PROVIDER: &str = "0190a5b2-7c3e-7d4f-8a1b-2c3d4e5f6a7b";
/// A time in epoch milliseconds (2026-11-30).
const AT: i64 = 1_795_996_800_000;

/// The `n`th image's id and sha256 (64 hex digits).
fn image(n: u64) -> (String, String) {
    (format!("0190a5b4-2f60-7e21-8c3d-{n:012x}"), format!("{n:064x}"))
}

/// A new image `n` of 512 KiB with an idempotency key, and its `ImagenRegistrada` as JSON.
fn new_image(n: u64) -> NewImage {
    let (image_id, sha256) = image(n);
    let event_json = match registered(&format!("ev-{image_id}"), &image_id, PROVIDER, AT) {
        CatalogEvent::Registered(e) => serde_json::to_string(&e).expect("json"),
        _ => unreachable!("registered() builds an ImagenRegistrada"),
    };
    NewImage {
        image: ImageRow {
            image_id: image_id.clone(),
            provider_id: PROVIDER.into(),
            blob_key: format!("raw/{sha256}"),
            sha256,
            size: 524_288,
            media_type: "application/dicom".into(),
            tipo_imagen: Some("ct".into()),
            region_anatomica: Some("torax".into()),
        },
        idempotency_key: Some(format!("idem-{n}")),
        request_id: format!("req-{image_id}"),
        event_json,
    }
}

/// The `ImagenAnonimizada` of image `n`, as CT instance `n` of one study.
fn anonymized_event(n: u64) -> CatalogEvent {
    let (image_id, _) = image(n);
    let sop = format!("2.25.318223846312094117239848577135{n:05}");
    anonymized(
        &format!("an-{image_id}"),
        &image_id,
        PROVIDER,
        AT + 1_000,
        (
            "2.25.191815734651339474306217387310262939518",
            "2.25.262101582387946498390574322213845069330",
            &sop,
            "CT",
            "2.25.104620912405530582271358441452342516427",
            "20190312",
        ),
    )
}

/// The five adapters on their own files in `dir`, with or without fsync.
struct Stores {
    ingest: SqliteStore,
    catalog: SqliteCatalog,
    ledger: SqliteLedger,
    audit: SqliteAudit,
    identity: SqliteIdentity,
}

impl Stores {
    fn open(dir: &Path, fsync: bool) -> Stores {
        Stores {
            ingest: SqliteStore::open_with(&dir.join("ingest.db"), fsync).expect("ingest store"),
            catalog: SqliteCatalog::open(&dir.join("catalog.db"), fsync).expect("catalog"),
            ledger: SqliteLedger::open(&dir.join("ledger.db"), fsync).expect("ledger"),
            audit: SqliteAudit::open(&dir.join("audit.db"), fsync).expect("audit"),
            identity: SqliteIdentity::open(&dir.join("identity.db"), fsync).expect("identity"),
        }
    }
}

/// Times `write` on inputs made by `setup` (untimed) from 0, 1, 2, ...
fn bench_writes<I, O>(group: &mut BenchmarkGroup<'_, WallTime>, id: &str, mut setup: impl FnMut(u64) -> I, mut write: impl FnMut(I) -> O) {
    let mut n = 0u64;
    group.bench_function(id, |b| {
        b.iter_batched(
            || {
                n += 1;
                setup(n)
            },
            &mut write,
            BatchSize::SmallInput,
        );
    });
}

fn writes(c: &mut Criterion, rt: &Runtime, fsync: bool) {
    let dir = tempfile::tempdir().expect("tmp");
    let s = Stores::open(dir.path(), fsync);
    let mut group = c.benchmark_group(if fsync { "store/fsync_on" } else { "store/fsync_off" });
    // A flushed commit takes milliseconds: flat sampling, fewer samples.
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(30)
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::Elements(1));

    bench_writes(&mut group, "ingest/claim", new_image, |img| {
        assert_eq!(rt.block_on(s.ingest.claim(img)).expect("claim"), Claim::Created);
    });

    bench_writes(
        &mut group,
        "catalog/registered",
        |n| {
            let (image_id, _) = image(n);
            vec![registered(&format!("ev-{image_id}"), &image_id, PROVIDER, AT)]
        },
        |events| assert_eq!(rt.block_on(s.catalog.apply(events)).expect("apply"), 1),
    );

    // Images registered in a range of their own, before the write that is timed.
    bench_writes(
        &mut group,
        "catalog/anonymized",
        |n| {
            let (image_id, _) = image((1 << 40) | n);
            let first = registered(&format!("ev-{image_id}"), &image_id, PROVIDER, AT);
            rt.block_on(s.catalog.apply(vec![first])).expect("register");
            vec![anonymized_event((1 << 40) | n)]
        },
        |events| assert_eq!(rt.block_on(s.catalog.apply(events)).expect("apply"), 1),
    );

    bench_writes(
        &mut group,
        "ledger/usage",
        |n| vec![usage(&format!("0190a5b6-0000-7aaa-8bbb-{n:012x}"), PROVIDER, 125)],
        |entries| assert_eq!(rt.block_on(s.ledger.apply(entries)).expect("apply").len(), 1),
    );

    bench_writes(
        &mut group,
        "audit/append",
        |n| {
            let at = AT + i64::try_from(n).expect("small");
            vec![audit_entry(
                &format!("0190a5b6-0001-7aaa-8bbb-{n:012x}"),
                at,
                PROVIDER,
                "upload",
                "ok",
            )]
        },
        |entries| rt.block_on(s.audit.append(entries)).expect("append"),
    );

    bench_writes(
        &mut group,
        "identity/create_account",
        |n| {
            account(
                &format!("0190a5a0-0001-7abc-8def-{n:012x}"),
                &format!("user{n}@example.org"),
                Role::Consumidor,
            )
        },
        |a| assert_eq!(rt.block_on(s.identity.create_account(a)).expect("create"), Created::Created),
    );

    group.finish();
}

fn store(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    writes(c, &rt, false);
    writes(c, &rt, true);
}

criterion_group!(benches, store);
criterion_main!(benches);
