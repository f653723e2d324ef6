//! One job, from `pending` (or `running`, when replayed) to its end.
//!
//! The job moves to `running`, its items are listed, and each item with no
//! outcome yet is fetched and registered, as many at once as the limits let.
//! A watcher reads the job's state every [`CANCEL_POLL`]: once it is
//! `cancelled`, no new item starts and those under way are dropped unrecorded.
//! If the importer is stopping, the job is left `running` and its event is
//! not acknowledged: the next owner of its partition resumes it.
//!
//! The end: `failed` if the source could not be searched, or if it listed
//! items and none was imported or matched an existing image (the reason
//! names the first failure); `completed` otherwise (each failed item keeps
//! its reason). Logs and audit entries name the job, its provider, counts and
//! codes, never a URL (a URL may carry a patient's name).

use crate::dicomweb;
use crate::fetch::{host_of, Fetcher, ACCEPT_DICOM_PARTS, ACCEPT_IMAGES};
use crate::ItemError;
use alpes_domain::import::{reason, ImportItem, ImportJob, ImportSpec, ImportState, ImportStore, ItemOutcome, SourceAuth};
use alpes_ingest::profile::UploadMeta;
use alpes_ingest::register::{register, Source};
use alpes_platform::audit::{Auditor, RequestContext};
use alpes_platform::retry::{retry, retry_bounded, Attempt, GaveUp};
use alpes_platform::shutdown::Shutdown;
use alpes_schemas::{new_event_id, now_millis, RegistroAuditoria};
use futures::StreamExt;
use reqwest::Url;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

/// How often a running job's state is read, to see a cancel.
pub const CANCEL_POLL: Duration = Duration::from_millis(500);

/// Whether a job ended here or was left for the next owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ran {
    /// It ended (or was over already, or unknown): its event is done.
    Done,
    /// The importer is stopping: the job stays `running`, its event is read again.
    Stopped,
}

/// One item to fetch.
struct Item {
    key: String,
    url: Result<Url, ItemError>,
    accept: &'static str,
}

/// Runs jobs.
#[derive(Debug, Clone)]
pub struct Runner {
    /// Fetches and stores.
    pub fetcher: Arc<Fetcher>,
    /// The jobs and their items.
    pub imports: Arc<dyn ImportStore>,
    /// Records each job's end.
    pub auditor: Auditor,
    /// Items of one job fetched at once (the host and global limits apply too).
    pub concurrency: usize,
}

impl Runner {
    /// Runs job `job_id` until it ends, or `stop` fires.
    pub async fn run(&self, job_id: &str, stop: &Shutdown) -> Ran {
        let Ok(job) = retry(stop, "read an import job", || self.imports.job(job_id)).await else {
            return Ran::Stopped;
        };
        let Some(job) = job else {
            tracing::warn!(job = %job_id, "an import job event names no stored job; skipped");
            return Ran::Done;
        };
        if job.state.is_final() {
            return Ran::Done;
        }
        let Ok(moved) = retry(stop, "start an import job", || {
            self.imports.transition(job_id, ImportState::Running, None, now_millis())
        })
        .await
        else {
            return Ran::Stopped;
        };
        if !moved {
            return Ran::Done;
        }
        self.fetcher.state().metrics.import_jobs.with_label_values(&["running"]).inc();
        tracing::info!(job = %job_id, provider = %job.provider_id, tipo = job.spec.tipo(), "import job running");
        let job_stop = Shutdown::new();
        let watcher = tokio::spawn(watch(self.imports.clone(), job_id.to_owned(), stop.clone(), job_stop.clone()));
        let ended = self.pull(&job, &job_stop).await;
        watcher.abort();
        if stop.is_triggered() {
            tracing::info!(job = %job_id, "the importer is stopping: the job resumes at its next start");
            return Ran::Stopped;
        }
        if job_stop.is_triggered() {
            // Cancelled: the route counted it; the importer records that it stopped.
            self.audit(&job, ImportState::Cancelled, None).await;
            return Ran::Done;
        }
        let (to, why) = match ended {
            Err(e) => (ImportState::Failed, Some(reason(&e.to_string()))),
            Ok(()) => self.verdict(job_id, stop).await,
        };
        if let Ok(true) = retry(stop, "end an import job", || {
            self.imports.transition(job_id, to, why.as_deref(), now_millis())
        })
        .await
        {
            self.finished(&job, to, why).await;
        }
        Ran::Done
    }

    /// Lists the job's items and runs those without an outcome; `Err` if the source cannot be searched.
    async fn pull(&self, job: &ImportJob, job_stop: &Shutdown) -> Result<(), ItemError> {
        let (items, auth) = match &job.spec {
            ImportSpec::Urls { urls, auth } => (
                urls.iter()
                    .map(|u| Item {
                        key: u.clone(),
                        url: Url::parse(u).map_err(|_| ItemError::new("bad_url", "the URL cannot be parsed")),
                        accept: ACCEPT_IMAGES,
                    })
                    .collect::<Vec<_>>(),
                auth.as_ref(),
            ),
            ImportSpec::Dicomweb { url, consulta, auth } => {
                let found = dicomweb::instances(&self.fetcher, url, consulta, auth.as_ref(), job_stop).await?;
                let items = found
                    .into_iter()
                    .map(|i| Item {
                        key: i.key,
                        url: Ok(i.url),
                        accept: ACCEPT_DICOM_PARTS,
                    })
                    .collect();
                (items, auth.as_ref())
            }
        };
        let total = items.len() as u64;
        retry(job_stop, "record an import job's total", || {
            self.imports.set_total(&job.job_id, total)
        })
        .await
        .map_err(|_| ItemError::new("stopped", "stopped"))?;
        let done: HashSet<String> = retry(job_stop, "read an import job's items", || self.imports.items(&job.job_id))
            .await
            .map_err(|_| ItemError::new("stopped", "stopped"))?
            .into_iter()
            .map(|i| i.key)
            .collect();
        futures::stream::iter(items.into_iter().filter(|i| !done.contains(&i.key)))
            .for_each_concurrent(self.concurrency.max(1), |item| async move {
                if job_stop.is_triggered() {
                    return;
                }
                let host = item.url.as_ref().map_or_else(|_| String::new(), host_of);
                let outcome = self.item(job, &item, auth, job_stop).await;
                if job_stop.is_triggered() {
                    return; // Cancelled or stopping: the item is not recorded, and runs again if the job does.
                }
                let (outcome, image_id, why) = match outcome {
                    Ok((image_id, true)) => (ItemOutcome::Duplicate, Some(image_id), None),
                    Ok((image_id, false)) => (ItemOutcome::Imported, Some(image_id), None),
                    Err(e) => (ItemOutcome::Failed, None, Some(reason(&e.to_string()))),
                };
                let recorded = ImportItem {
                    key: item.key.clone(),
                    outcome,
                    image_id,
                    reason: why,
                    at: now_millis(),
                };
                let metrics = &self.fetcher.state().metrics;
                metrics.import_items.with_label_values(&[host.as_str(), outcome.as_str()]).inc();
                let _ = retry(job_stop, "record an import item", || {
                    self.imports.record_item(&job.job_id, &recorded)
                })
                .await;
            })
            .await;
        Ok(())
    }

    /// Fetches and registers one item: `(image id, duplicate)`. A failure to register (the
    /// broker or the store away) fetches it again, under the same retry policy.
    async fn item(
        &self,
        job: &ImportJob,
        item: &Item,
        auth: Option<&SourceAuth>,
        job_stop: &Shutdown,
    ) -> Result<(String, bool), ItemError> {
        let url = item.url.clone()?;
        let state = self.fetcher.state();
        let backoff = self.fetcher.backoff();
        let registered = retry_bounded(
            backoff,
            job_stop,
            |_, _, _| {},
            |_| async {
                let (blob, kind) = self
                    .fetcher
                    .image(&url, item.accept, auth, job_stop)
                    .await
                    .map_err(|g| Attempt::Final(described(g)))?;
                let ctx = RequestContext::default();
                register(
                    state,
                    &ctx,
                    &job.provider_id,
                    (&blob, kind),
                    &UploadMeta::default(),
                    None,
                    Source::Import,
                )
                .await
                .map_err(|e| {
                    if e.status.is_server_error() {
                        Attempt::Again(ItemError::new("not_registered", "the platform could not register it"), None)
                    } else {
                        Attempt::Final(ItemError::new("not_registered", e.message))
                    }
                })
            },
        )
        .await
        .map_err(|g| g.error)?;
        Ok((registered.id, registered.duplicate))
    }

    /// The end of a job whose items all have an outcome.
    async fn verdict(&self, job_id: &str, stop: &Shutdown) -> (ImportState, Option<String>) {
        let items = retry(stop, "read an import job's items", || self.imports.items(job_id))
            .await
            .unwrap_or_default();
        let ok = items.iter().any(|i| i.outcome != ItemOutcome::Failed);
        match items.iter().find(|i| i.outcome == ItemOutcome::Failed) {
            Some(first) if !ok => {
                let why = format!("every item failed; the first: {}", first.reason.as_deref().unwrap_or("unknown"));
                (ImportState::Failed, Some(reason(&why)))
            }
            _ => (ImportState::Completed, None),
        }
    }

    /// Counts, logs and audits a job's end.
    async fn finished(&self, job: &ImportJob, to: ImportState, why: Option<String>) {
        self.fetcher.state().metrics.import_jobs.with_label_values(&[to.as_str()]).inc();
        self.audit(job, to, why).await;
    }

    /// Logs and audits a job's end.
    async fn audit(&self, job: &ImportJob, to: ImportState, why: Option<String>) {
        tracing::info!(job = %job.job_id, provider = %job.provider_id, state = to.as_str(), "import job ended");
        let entry = RegistroAuditoria {
            event_id: new_event_id(),
            occurred_at: now_millis(),
            actor: job.created_by.clone(),
            actor_role: None,
            action: "import_end".into(),
            target: Some(job.job_id.clone()),
            route: Some("IMPORT".into()),
            outcome: if to == ImportState::Failed { "error" } else { "ok" }.into(),
            status: None,
            reason: Some(match why {
                Some(w) => format!("{}: {w}", to.as_str()),
                None => to.as_str().to_owned(),
            }),
            request_id: None,
            service: "importer".into(),
        };
        self.auditor.send(&entry).await;
    }
}

/// A request that gave up, as an item's reason.
fn described(g: GaveUp<ItemError>) -> ItemError {
    if g.attempts > 1 {
        ItemError::new(g.error.code, format!("{} (after {} attempts)", g.error.detail, g.attempts))
    } else {
        g.error
    }
}

/// Fires `job_stop` when the importer stops or the job is cancelled.
async fn watch(imports: Arc<dyn ImportStore>, job_id: String, stop: Shutdown, job_stop: Shutdown) {
    loop {
        tokio::select! {
            () = stop.wait() => break,
            () = tokio::time::sleep(CANCEL_POLL) => {}
        }
        if let Ok(Some(job)) = imports.job(&job_id).await {
            if job.state == ImportState::Cancelled {
                tracing::info!(job = %job_id, "import job cancelled; stopping its items");
                break;
            }
        }
    }
    job_stop.trigger();
}
