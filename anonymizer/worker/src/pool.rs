//! The engine's own rayon pool (`alpes-engine-N` threads). The engine is CPU-bound and never runs
//! on a tokio thread: each image is a `pool.spawn` job whose result comes back over a oneshot
//! channel. A panic in the engine is caught on the pool thread and becomes an `"engine_panic"`
//! rejection instead of taking the process down.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use alpes_anonymizer::{anonymize_into, Config, Report};
use bytes::Bytes;
use tokio::sync::oneshot;

use crate::facts::{self, OutputFacts};
use crate::rejection::Rejection;
use crate::Result;

/// One image through the engine.
#[derive(Debug)]
pub struct Engined {
    /// The anonymized bytes.
    pub bytes: Vec<u8>,
    /// Their lowercase hex sha256, hashed on the pool (a few hundred µs for a large output,
    /// which on an async thread would hold up every request queued behind it).
    pub sha256: String,
    /// What the engine did (no PHI).
    pub report: Report,
    /// What the output says about itself.
    pub facts: OutputFacts,
}

/// The outcome of one engine job and the time it took on the pool.
pub type Outcome = (std::result::Result<Engined, Rejection>, Duration);

/// A dedicated thread pool for the engine.
#[derive(Debug)]
pub struct EnginePool {
    pool: rayon::ThreadPool,
}

impl EnginePool {
    /// A pool of `jobs` threads named `alpes-engine-N`.
    pub fn new(jobs: usize) -> Result<EnginePool> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(jobs.max(1))
            .thread_name(|i| format!("alpes-engine-{i}"))
            .panic_handler(|_| tracing::error!("an engine job panicked outside the guard"))
            .build()?;
        Ok(EnginePool { pool })
    }

    /// Threads in the pool.
    pub fn threads(&self) -> usize {
        self.pool.current_num_threads()
    }

    /// Runs the engine on `input` with `cfg` on the pool and awaits the result without blocking
    /// the caller's thread. The output facts are read on the pool too.
    pub async fn run(&self, input: Bytes, cfg: Config) -> Outcome {
        let (tx, rx) = oneshot::channel();
        self.pool.spawn(move || {
            let started = Instant::now();
            let result = catch_unwind(AssertUnwindSafe(|| engine(&input, &cfg))).unwrap_or_else(|_| Err(Rejection::engine_panic()));
            // The receiver is gone only when the batch was dropped (the worker was killed).
            let _ = tx.send((result, started.elapsed()));
        });
        rx.await.unwrap_or_else(|_| (Err(Rejection::engine_panic()), Duration::ZERO))
    }
}

fn engine(input: &[u8], cfg: &Config) -> std::result::Result<Engined, Rejection> {
    let mut bytes = Vec::new();
    let report = anonymize_into(input, cfg, &mut bytes).map_err(|e| Rejection::engine(&e))?;
    let facts = facts::read(report.format, &bytes);
    let sha256 = alpes_platform::blobs::sha256_hex(&bytes);
    Ok(Engined {
        bytes,
        sha256,
        report,
        facts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alpes_anonymizer::Secret;

    fn cfg() -> Config {
        Config::new(Secret::new(b"pool-test".to_vec()))
    }

    #[tokio::test]
    async fn the_engine_runs_on_a_named_pool_thread() {
        let pool = EnginePool::new(2).unwrap();
        assert_eq!(pool.threads(), 2);
        let (tx, rx) = oneshot::channel();
        pool.pool.spawn(move || {
            let _ = tx.send(std::thread::current().name().map(str::to_owned));
        });
        assert!(rx.await.unwrap().unwrap().starts_with("alpes-engine-"));
    }

    #[tokio::test]
    async fn a_dicom_fixture_is_anonymized_and_garbage_is_rejected() {
        let pool = EnginePool::new(1).unwrap();
        let ct = std::fs::read(format!("{}/../tests/fixtures/dicom/CT_small.dcm", env!("CARGO_MANIFEST_DIR"))).unwrap();
        let (ok, _) = pool.run(Bytes::from(ct), cfg()).await;
        let ok = ok.unwrap();
        assert_eq!(ok.facts.modality.as_deref(), Some("CT"));
        assert!(!ok.bytes.is_empty());
        let (bad, _) = pool.run(Bytes::from_static(b"definitely not an image"), cfg()).await;
        assert_eq!(bad.unwrap_err().reason, "unknown_format");
    }
}
