//! The importer as one app: [`ImporterApp::build`] checks the flags and
//! declares its consumer group to the readiness; [`ImporterApp::run_until_stopped`]
//! runs the jobs of `alpes.imports.requested` until the shutdown signal.
//!
//! The consume loop is the platform's ([`run_projection`]): the job events
//! fetched together form a batch, `--import-max-jobs` of its jobs run at a
//! time, and the batch's offsets are stored when every job of it has ended
//! (a job event that arrives meanwhile waits for the batch) (a job left `running` by a stop
//! is read again by the next owner of its partition, and resumes). A job may
//! run for hours, so the group's `max.poll.interval.ms` is 24 h: a member
//! running a long job is not taken for dead.

use crate::args::ImportArgs;
use crate::fetch::Fetcher;
use crate::job::{Ran, Runner};
use alpes_domain::import::ImportStore;
use alpes_ingest::IngestState;
use alpes_platform::audit::Auditor;
use alpes_platform::kafka::projector::{run_projection, Projection};
use alpes_platform::shutdown::Shutdown;
use alpes_schemas::{topics, Codec, ImportacionSolicitada};
use async_trait::async_trait;
use futures::StreamExt;
use std::sync::Arc;

/// The importers' consumer group: every importer shares the jobs.
pub const GROUP: &str = "alpes-importer";

/// The importer, built and ready to run.
#[derive(Debug)]
pub struct ImporterApp {
    jobs: Jobs,
    state: IngestState,
}

/// The projection that runs jobs.
#[derive(Debug)]
struct Jobs {
    codec: Codec,
    runner: Runner,
    /// Jobs run at once.
    max: usize,
}

#[async_trait]
impl Projection for Jobs {
    type Item = String;
    const TOPICS: &'static [&'static str] = &[topics::IMPORTS_REQUESTED];
    // Jobs taken at once; `--import-max-jobs` of them run at a time (see `apply`).
    const BATCH: usize = 64;
    const CONSUMER_PROPS: &'static [(&'static str, &'static str)] = &[("max.poll.interval.ms", "86400000")];

    async fn decode(&self, _topic: &str, payload: &[u8]) -> Result<Option<String>, &'static str> {
        let event: ImportacionSolicitada = self.codec.decode(payload).await.map_err(|e| e.reason())?;
        Ok(Some(event.importacion_id))
    }

    async fn apply(&self, batch: Vec<String>, stop: &Shutdown) -> bool {
        let mut stopped = false;
        let mut running = futures::stream::FuturesUnordered::new();
        for job in batch {
            if running.len() >= self.max {
                stopped |= running.next().await == Some(Ran::Stopped);
            }
            running.push(run_one(&self.runner, job, stop));
        }
        while let Some(ran) = running.next().await {
            stopped |= ran == Ran::Stopped;
        }
        !stopped
    }
}

async fn run_one(runner: &Runner, job: String, stop: &Shutdown) -> Ran {
    runner.run(&job, stop).await
}

impl ImporterApp {
    /// The importer over `state`'s upload path, with `imports` as its job store.
    pub fn build(state: IngestState, imports: Arc<dyn ImportStore>, args: &ImportArgs) -> Result<ImporterApp, String> {
        let fetcher = Arc::new(Fetcher::new(state.clone(), args)?);
        state.kafka.expect_projection::<Jobs>(GROUP);
        let runner = Runner {
            fetcher,
            imports,
            auditor: Auditor::new(state.producer.clone(), "importer", state.metrics.clone()),
            concurrency: args.max_concurrent as usize,
        };
        Ok(ImporterApp {
            jobs: Jobs {
                codec: state.producer.codec().clone(),
                runner,
                max: args.max_jobs.max(1) as usize,
            },
            state,
        })
    }

    /// Runs jobs until `stop`: `--import-max-jobs` at once, as their events come.
    pub async fn run_until_stopped(self, stop: Shutdown) -> alpes_platform::Result<()> {
        let ImporterApp { jobs, state } = self;
        run_projection(&state.kafka, GROUP, state.metrics.clone(), &jobs, &stop).await
    }
}
