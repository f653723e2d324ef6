//! How much authentication costs: a login's password verification at the
//! default argon2id parameters (19 MiB, t = 2, p = 1), for a known user with
//! the right password, a wrong password and an unknown email (which must cost
//! the same), and the bearer-token verification every protected request pays,
//! in both key modes: HS256 (the shared secret) and EdDSA (Ed25519, the key
//! picked by the token's `kid` from a ring of two: the signing key and a
//! verification-only previous key, as during a rotation). Each mode is
//! measured twice: `first use`, with the verified-token memory off, so every
//! call is a full check (a token's first request: signature and claims); and
//! `seen before`, as `alpes up` runs it, where the token was verified once
//! already (every later request with it).
//!
//! The request path is measured three ways in each mode: `Jwt::verify` alone (signature and
//! claims), the [`Authenticated`] extractor without a revocation store, and the
//! extractor with the SQLite identity store as the revocation list (10,000
//! revoked `jti`s, the token's own not among them). The extractor is driven by
//! a current-thread tokio runtime's `block_on`, whose small overhead is included.
//!
//! Criterion reports means; the budget for the request path is a p99 (under
//! 50 µs), so after the criterion groups this bench also times each of 200,000
//! calls of each with `Instant` and prints p50, p99, p99.9 and max. When run
//! without `--bench` (as `cargo test --all-targets` runs benches, once each as
//! a smoke check), it times 1,000 calls and seeds 100 revoked `jti`s instead.
//!
//! `cargo bench -p alpes-platform --bench auth` (all), `... -- eddsa` (the
//! EdDSA criterion cases only; the percentiles of every mode are printed either way).

use alpes_platform::auth::keys::Ed25519SigningKey;
use alpes_platform::auth::{Authenticated, Jwt, Role};
use alpes_platform::password::{PasswordArgs, Passwords};
use alpes_platform::store::{IdentityStore, SqliteIdentity};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use criterion::{criterion_group, BenchmarkId, Criterion, SamplingMode, Throughput};
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

const PASSWORD: &str = "correct horse battery staple";
const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

fn login(c: &mut Criterion) {
    let args = PasswordArgs::default();
    let passwords = Passwords::new(&args).expect("the default parameters are valid");
    let phc = passwords.hash(PASSWORD).expect("hash");
    let mut group = c.benchmark_group("login");
    // Tens of milliseconds an iteration: flat sampling, fewer samples.
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(20)
        .measurement_time(Duration::from_secs(8));
    group.throughput(Throughput::Elements(1));
    let params = format!("m={},t={},p={}", args.memory_kib, args.iterations, args.parallelism);
    group.bench_function(BenchmarkId::new("hash verify at the default argon2id parameters", &params), |b| {
        b.iter(|| assert!(passwords.verify(black_box(PASSWORD), black_box(&phc)).expect("verify")));
    });
    group.bench_function(BenchmarkId::new("wrong password", &params), |b| {
        b.iter(|| assert!(!passwords.verify_or_dummy(black_box("not the password at all"), black_box(Some(&phc)))));
    });
    group.bench_function(BenchmarkId::new("unknown email (dummy verify)", &params), |b| {
        b.iter(|| assert!(!passwords.verify_or_dummy(black_box(PASSWORD), black_box(None))));
    });
    group.finish();
}

/// How many revoked `jti`s the revocation store holds while the request path is measured.
const REVOKED: usize = 10_000;

/// Whether this run benchmarks (`cargo bench`) rather than smoke-tests (`cargo test`).
fn benchmarking() -> bool {
    let args: Vec<String> = std::env::args().collect();
    args.iter().any(|a| a == "--bench") && !args.iter().any(|a| a == "--test")
}

/// Which signature the tokens carry.
#[derive(Clone, Copy)]
enum Mode {
    /// HS256 with no verified-token memory: a full HMAC and claims check every call.
    Hs256FirstUse,
    /// HS256 as `alpes up` runs it (the default mode): the token was verified before.
    Hs256SeenBefore,
    /// EdDSA with no verified-token memory: a full Ed25519 check every call.
    EdDsaFirstUse,
    /// EdDSA as `alpes up` runs it: the token was verified before.
    EdDsaSeenBefore,
}

const MODES: [Mode; 4] = [
    Mode::Hs256FirstUse,
    Mode::Hs256SeenBefore,
    Mode::EdDsaFirstUse,
    Mode::EdDsaSeenBefore,
];

impl Mode {
    /// The name criterion ids and the percentile lines start with.
    fn label(self) -> &'static str {
        match self {
            Mode::Hs256FirstUse => "hs256 first use",
            Mode::Hs256SeenBefore => "hs256 seen before",
            Mode::EdDsaFirstUse => "eddsa first use",
            Mode::EdDsaSeenBefore => "eddsa seen before",
        }
    }

    /// A signer/verifier in this mode (EdDSA: a fresh signing key plus one verification-only key).
    fn signer(self) -> Jwt {
        let eddsa = || {
            let (signing, previous) = (
                Ed25519SigningKey::generate().expect("key"),
                Ed25519SigningKey::generate().expect("key"),
            );
            Jwt::eddsa(&signing, [previous.public()]).expect("key ring")
        };
        match self {
            Mode::Hs256FirstUse => Jwt::new(KEY).with_verified_capacity(0),
            Mode::Hs256SeenBefore => Jwt::new(KEY),
            Mode::EdDsaFirstUse => eddsa().with_verified_capacity(0),
            Mode::EdDsaSeenBefore => eddsa(),
        }
    }
}

/// The user the request path's token names (an account in the identity store).
const SUBJECT: &str = "0190a5b2-7c3e-7d4f-8a1b-2c3d4e5f6a7b";

/// The bearer token and the request path it is checked on.
struct RequestPath {
    rt: tokio::runtime::Runtime,
    jwt: Arc<Jwt>,
    with_revocations: Arc<Jwt>,
    token: String,
    parts: Parts,
    /// Holds the revocation store's database.
    _dir: tempfile::TempDir,
}

impl RequestPath {
    /// A signer in `mode`, a one-hour consumer token and the request parts that carry it;
    /// the same signer with the SQLite identity store as its revocation list,
    /// holding `revoked` other revoked `jti`s (the token's own is not revoked).
    fn new(revoked: usize, mode: Mode) -> Self {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let dir = tempfile::tempdir().expect("tmp");
        let store = SqliteIdentity::open(&dir.path().join("alpes.db"), false).expect("identity store");
        let expires_at = i64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("clock")
                .as_millis(),
        )
        .expect("ms")
            + 3_600_000;
        rt.block_on(async {
            let account = alpes_domain::identity::NewAccount {
                user_id: SUBJECT.into(),
                nombre: "bench".into(),
                email: "bench@example.org".into(),
                password_hash: "$argon2id$v=19$m=64,t=1,p=1$unused".into(),
                role: Role::Consumidor,
                organization: None,
                created_at: 0,
                created_by: SUBJECT.into(),
            };
            store.create_account(account).await.expect("the token's account");
            for i in 0..revoked {
                store
                    .revoke_jti(&format!("00000000-0000-4000-8000-{i:012}"), expires_at)
                    .await
                    .expect("revoke");
            }
        });
        let signer = mode.signer();
        let jwt = Arc::new(signer.clone());
        let with_revocations = Arc::new(signer.with_revocations(Arc::new(store)));
        let token = jwt.issue(SUBJECT, Role::Consumidor, Duration::from_secs(3600)).expect("issue");
        // The first request remembers the token (the signature check, and the account lookup with
        // the store); the paths measured are every request after it.
        rt.block_on(async {
            jwt.authenticate(&token).await.expect("valid");
            with_revocations.authenticate(&token).await.expect("valid");
        });
        let (parts, ()) = axum::http::Request::builder()
            .uri("/v1/studies")
            .header(axum::http::header::AUTHORIZATION, format!("Bearer {token}"))
            .body(())
            .expect("request")
            .into_parts();
        RequestPath {
            rt,
            jwt,
            with_revocations,
            token,
            parts,
            _dir: dir,
        }
    }

    /// The extractor every protected route runs, with the signer `jwt`.
    fn extract(&mut self, revocations: bool) -> Authenticated {
        let jwt = if revocations { &self.with_revocations } else { &self.jwt };
        self.rt
            .block_on(Authenticated::from_request_parts(black_box(&mut self.parts), jwt))
            .expect("a valid token")
    }
}

fn request_path(c: &mut Criterion) {
    let revoked = if benchmarking() { REVOKED } else { 100 };
    let mut group = c.benchmark_group("request path");
    group.throughput(Throughput::Elements(1));
    for mode in MODES {
        let mut path = RequestPath::new(revoked, mode);
        let m = mode.label();
        // HS256 first use keeps the ids earlier runs used (every call was a full check then), so
        // criterion compares it with their baselines.
        let id = |what: &str| match mode {
            Mode::Hs256FirstUse => what.to_owned(),
            _ => format!("{m}: {what}"),
        };
        group.bench_function(id("token verification on the request path"), |b| {
            b.iter(|| path.jwt.verify(black_box(&path.token)).expect("verify"));
        });
        group.bench_function(id("Caller extractor, no revocation store"), |b| {
            b.iter(|| path.extract(false));
        });
        group.bench_function(id("Caller extractor with the SQLite revocation store"), |b| {
            b.iter(|| path.extract(true));
        });
    }
    group.finish();
}

/// Nearest-rank percentiles of `samples` (nanoseconds), printed in µs.
fn report(label: &str, mut samples: Vec<u64>) {
    samples.sort_unstable();
    let n = samples.len();
    let at = |q: f64| {
        // Nearest rank: the smallest sample with at least q of the samples at or below it.
        let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
        samples[rank - 1] as f64 / 1_000.0
    };
    let p99 = at(0.99);
    println!(
        "{label}: {n} calls, each timed with Instant: p50 {:.2} µs, p99 {p99:.2} µs, p99.9 {:.2} µs, max {:.2} µs (p99 budget 50 µs: {})",
        at(0.50),
        at(0.999),
        samples[n - 1] as f64 / 1_000.0,
        if p99 < 50.0 { "within" } else { "OVER" }
    );
}

/// Times each call of `f` separately, after a warm-up of a tenth as many.
fn time_each(calls: usize, mut f: impl FnMut()) -> Vec<u64> {
    for _ in 0..calls / 10 {
        f();
    }
    let mut samples = Vec::with_capacity(calls);
    for _ in 0..calls {
        let start = Instant::now();
        f();
        samples.push(u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX));
    }
    samples
}

fn token_percentiles() {
    let benchmarking = benchmarking();
    let calls = if benchmarking { 200_000 } else { 1_000 };
    let revoked = if benchmarking { REVOKED } else { 100 };
    println!();
    println!(
        "== request path percentiles ({}) ==",
        if benchmarking { "bench" } else { "smoke run" }
    );
    for mode in MODES {
        let mut path = RequestPath::new(revoked, mode);
        let m = mode.label();
        let (jwt, token) = (path.jwt.clone(), path.token.clone());
        report(
            &format!("{m}: token verification on the request path (Jwt::verify)"),
            time_each(calls, || {
                black_box(jwt.verify(black_box(&token)).expect("verify"));
            }),
        );
        report(
            &format!("{m}: Caller extractor, no revocation store"),
            time_each(calls, || {
                black_box(path.extract(false));
            }),
        );
        report(
            &format!("{m}: Caller extractor with the SQLite revocation store ({revoked} revoked jtis)"),
            time_each(calls, || {
                black_box(path.extract(true));
            }),
        );
    }
}

criterion_group!(benches, login, request_path);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    token_percentiles();
}
