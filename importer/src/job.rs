//! One job, from `pending` (or `running`, when replayed) to its end.
//!
//! The job moves to `running`, its items are listed, and each item with no
//! outcome yet is fetched and registered, as many at once as the limits let.
//! A watcher reads the job's state every [`CANCEL_POLL`]: once it is
//! `cancelled` (or ended by another importer), no new item starts and those
//! under way are dropped unrecorded.
//! If the importer is stopping, the job is left `running` and its event is
//! not acknowledged: the next owner of its partition resumes it.
//!
//! The end: `failed` if the source could not be searched, or if it listed
//! items and none was imported or matched an existing image (the reason
//! names the first failure); `completed` otherwise (each failed item keeps
//! its reason). Logs and audit entries name the job, its provider, counts and
//! codes, never a URL (a URL may carry a patient's name).

use crate::dicomweb;
use crate::fetch::{again, final_, host_of, is_multipart, parts, Fetcher, ACCEPT_DICOM_PARTS, ACCEPT_IMAGES};
use crate::ItemError;
use alpes_anonymizer::probe;
use alpes_anonymizer::probe::MediaKind;
use alpes_domain::import::{reason, ImportItem, ImportJob, ImportSpec, ImportState, ImportStore, ItemOutcome, SourceAuth};
use alpes_ingest::profile::UploadMeta;
use alpes_ingest::register::{forget_blob, register, Registered, Source};
use alpes_platform::audit::{Auditor, RequestContext};
use alpes_platform::blobs::StoredBlob;
use alpes_platform::retry::{retry, retry_bounded, Attempt, GaveUp};
use alpes_platform::shutdown::Shutdown;
use alpes_schemas::{new_event_id, now_millis, RegistroAuditoria};
use futures::StreamExt;
use reqwest::Url;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Instances of one series answer being registered at once, while the next parts stream in.
const REGISTERING: usize = 8;

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

/// What one request fetches.
enum Unit {
    /// One URL, one item.
    One {
        /// The item's key (the URL).
        key: String,
        /// The URL, if it parses.
        url: Result<Url, ItemError>,
    },
    /// A DICOMweb series: its pending instances, in one WADO-RS answer.
    Series {
        /// The series' WADO-RS URL.
        url: Url,
        /// The pending instances' keys.
        keys: Vec<String>,
    },
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
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
            // Cancelled (the route counted it; the importer records that it stopped), or ended
            // by another importer that ran it too after its partition changed hands.
            if let Ok(Some(now)) = self.imports.job(job_id).await {
                if now.state == ImportState::Cancelled {
                    self.audit(&job, ImportState::Cancelled, None).await;
                }
            }
            return Ran::Done;
        }
        let (to, why) = match ended {
            Err(e) => (ImportState::Failed, Some(reason(&e.to_string()))),
            Ok(()) => match self.verdict(job_id, stop).await {
                Some(verdict) => verdict,
                None => return Ran::Stopped,
            },
        };
        match retry(stop, "end an import job", || {
            self.imports.transition(job_id, to, why.as_deref(), now_millis())
        })
        .await
        {
            Ok(true) => self.finished(&job, to, why).await,
            Ok(false) => {}
            // Stopping before the store took the end: the job resumes, and ends, at the next start.
            Err(_) => return Ran::Stopped,
        }
        Ran::Done
    }

    /// Lists the job's items and runs those without an outcome; `Err` if the source cannot be searched.
    async fn pull(&self, job: &ImportJob, job_stop: &Shutdown) -> Result<(), ItemError> {
        let (units, total, auth) = match &job.spec {
            ImportSpec::Urls { urls, auth } => {
                let units = urls
                    .iter()
                    .map(|u| Unit::One {
                        key: u.clone(),
                        url: Url::parse(u).map_err(|_| ItemError::new("bad_url", "the URL cannot be parsed")),
                    })
                    .collect::<Vec<_>>();
                (units, urls.len(), auth.as_ref())
            }
            ImportSpec::Dicomweb { url, consulta, auth } => {
                let found = dicomweb::instances(&self.fetcher, url, consulta, auth.as_ref(), job_stop).await?;
                let total = found.len();
                // One unit per series, in the order the search first named each (a search may
                // list one series' instances apart).
                let mut units: Vec<Unit> = Vec::new();
                let mut of_series: HashMap<Url, usize> = HashMap::new();
                for instance in found {
                    match of_series.get(&instance.series).and_then(|i| units.get_mut(*i)) {
                        Some(Unit::Series { keys, .. }) => keys.push(instance.key),
                        _ => {
                            of_series.insert(instance.series.clone(), units.len());
                            units.push(Unit::Series {
                                url: instance.series,
                                keys: vec![instance.key],
                            });
                        }
                    }
                }
                (units, total, auth.as_ref())
            }
        };
        let stopped = |_| ItemError::new("stopped", "stopped");
        retry(job_stop, "record an import job's total", || {
            self.imports.set_total(&job.job_id, total as u64)
        })
        .await
        .map_err(stopped)?;
        let done: HashSet<String> = retry(job_stop, "read an import job's items", || self.imports.items(&job.job_id))
            .await
            .map_err(stopped)?
            .into_iter()
            .map(|i| i.key)
            .collect();
        let units = units.into_iter().filter_map(|unit| match unit {
            Unit::One { key, .. } if done.contains(&key) => None,
            Unit::Series { url, keys } => {
                let keys: Vec<String> = keys.into_iter().filter(|k| !done.contains(k)).collect();
                (!keys.is_empty()).then_some(Unit::Series { url, keys })
            }
            one => Some(one),
        });
        futures::stream::iter(units)
            .for_each_concurrent(self.concurrency.max(1), |unit| async move {
                if job_stop.is_triggered() {
                    return;
                }
                match unit {
                    Unit::One { key, url } => {
                        let host = url.as_ref().map_or_else(|_| String::new(), host_of);
                        let outcome = match url {
                            Ok(url) => self.item(job, &url, ACCEPT_IMAGES, auth, job_stop).await,
                            Err(e) => Err(e),
                        };
                        self.settle(job, &host, &key, outcome, job_stop).await;
                    }
                    Unit::Series { url, keys } => self.series(job, &url, keys, auth, job_stop).await,
                }
            })
            .await;
        Ok(())
    }

    /// Records an item's outcome (unless the job was cancelled or the importer is stopping:
    /// then it is not recorded, and runs again if the job does).
    async fn settle(&self, job: &ImportJob, host: &str, key: &str, outcome: Result<(String, bool), ItemError>, job_stop: &Shutdown) {
        if job_stop.is_triggered() {
            return;
        }
        let (outcome, image_id, why) = match outcome {
            Ok((image_id, true)) => (ItemOutcome::Duplicate, Some(image_id), None),
            Ok((image_id, false)) => (ItemOutcome::Imported, Some(image_id), None),
            Err(e) => (ItemOutcome::Failed, None, Some(reason(&e.to_string()))),
        };
        let recorded = ImportItem {
            key: key.to_owned(),
            outcome,
            image_id,
            reason: why,
            at: now_millis(),
        };
        let metrics = &self.fetcher.state().metrics;
        let label = self.fetcher.host_label(host);
        metrics.import_items.with_label_values(&[label.as_str(), outcome.as_str()]).inc();
        let _ = retry(job_stop, "record an import item", || {
            self.imports.record_item(&job.job_id, &recorded)
        })
        .await;
    }

    /// Retrieves a series (WADO-RS, one multipart answer) and settles each of its pending
    /// instances as its part arrives. A failure of the answer (cut short, a 5xx) retrieves the
    /// series again, for the instances still pending; what it still lacks after that (an
    /// instance the answer leaves out or whose part cannot be read, or a series the PACS does
    /// not serve) is retrieved instance by instance.
    async fn series(&self, job: &ImportJob, url: &Url, keys: Vec<String>, auth: Option<&SourceAuth>, job_stop: &Shutdown) {
        let host = host_of(url);
        let pending = &Mutex::new(keys.iter().cloned().collect::<HashSet<String>>());
        let keys = &keys;
        let state = self.fetcher.state();
        let host = host.as_str();
        let answered = loop {
            let answered = self
                .fetcher
                .tried(url, job_stop, || async {
                    let resp = self.fetcher.send(url, ACCEPT_DICOM_PARTS, auth).await?;
                    let content_type = resp.headers().get(reqwest::header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
                    if !is_multipart(content_type) {
                        return Err(final_("bad_multipart", "the series answer is not multipart/related"));
                    }
                    let mut parts = parts(resp)?;
                    // The parts are read (and stored) by one future and registered by another, up to
                    // REGISTERING at once, so each instance is registered while the next streams in.
                    let (tx, mut rx) = tokio::sync::mpsc::channel::<(String, StoredBlob, MediaKind)>(REGISTERING);
                    let failed: Mutex<Option<Attempt<ItemError>>> = Mutex::new(None);
                    let reader = async move {
                        while let Some(part) = parts
                            .next_field()
                            .await
                            .map_err(|_| again("body", "the series answer is malformed or cut short"))?
                        {
                            if job_stop.is_triggered() {
                                return Err(final_("stopped", "the job was cancelled or the importer is stopping"));
                            }
                            let declared = part.content_type().map(|m| m.essence_str().to_owned());
                            let (blob, kind) = match self.fetcher.store(part, declared, None).await {
                                Ok(stored) => stored,
                                // An unreadable part: its instance stays pending, and is asked for alone.
                                Err(Attempt::Final(_)) => continue,
                                Err(again) => return Err(again),
                            };
                            let sop = probe::dicom(&blob.head).ok().and_then(|p| p.sop_instance_uid);
                            let key = sop.and_then(|sop| {
                                keys.iter()
                                    .find(|k| k.rsplit('/').next() == Some(sop.trim_end_matches(['\0', ' '])))
                                    .cloned()
                            });
                            // Taken from the pending ones while it is registered (back if that fails).
                            let Some(key) = key.filter(|k| lock(pending).remove(k)) else {
                                // Not a pending instance of this series (settled already, or unlisted).
                                forget_blob(state, &blob).await;
                                continue;
                            };
                            if tx.send((key, blob, kind)).await.is_err() {
                                break;
                            }
                        }
                        Ok(())
                    };
                    let registrar = async {
                        let mut running = futures::stream::FuturesUnordered::new();
                        loop {
                            tokio::select! {
                                got = rx.recv(), if running.len() < REGISTERING => match got {
                                    Some(part) => running.push(self.register_part(job, host, part, pending, &failed, job_stop)),
                                    None => break,
                                },
                                Some(()) = running.next(), if !running.is_empty() => {}
                            }
                        }
                        while running.next().await.is_some() {}
                    };
                    let (read, ()) = tokio::join!(reader, registrar);
                    read?;
                    if let Some(e) = lock(&failed).take() {
                        return Err(e);
                    }
                    Ok(())
                })
                .await;
            match answered {
                Err(g) if platform_failure(&g.error) && platform_wait(job_stop).await => {}
                answered => break answered,
            }
        };
        if job_stop.is_triggered() {
            return;
        }
        if let Err(g) = &answered {
            tracing::info!(host = %host, code = g.error.code, "a series answer failed; its instances are asked for one by one");
        }
        // What the series answer did not bring (a PACS that serves no series, or lacks an
        // instance in it), asked for one by one: each then fails with its own answer's reason.
        let left: Vec<String> = lock(pending).drain().collect();
        futures::stream::iter(left)
            .for_each_concurrent(self.concurrency.max(1), |key| async move {
                let outcome = match instance_url(url, &key) {
                    Ok(one) => self.item(job, &one, ACCEPT_DICOM_PARTS, auth, job_stop).await,
                    Err(e) => Err(e),
                };
                self.settle(job, host, &key, outcome, job_stop).await;
            })
            .await;
    }

    /// Registers one part of a series answer and settles its instance; a failure worth another
    /// try puts the instance back among the pending ones and is kept in `failed`.
    async fn register_part(
        &self,
        job: &ImportJob,
        host: &str,
        (key, blob, kind): (String, StoredBlob, MediaKind),
        pending: &Mutex<HashSet<String>>,
        failed: &Mutex<Option<Attempt<ItemError>>>,
        job_stop: &Shutdown,
    ) {
        let outcome = match self.register(job, &blob, kind).await {
            Err(again @ Attempt::Again(..)) => {
                lock(pending).insert(key);
                lock(failed).get_or_insert(again);
                return;
            }
            Err(Attempt::Final(e)) => Err(e),
            Ok(r) => Ok((r.id, r.duplicate)),
        };
        self.settle(job, host, &key, outcome, job_stop).await;
    }

    /// Registers a fetched image as an upload of the job's provider; a failure of the platform
    /// (the broker, the store) is worth another try, any other is the item's.
    async fn register(&self, job: &ImportJob, blob: &StoredBlob, kind: MediaKind) -> Result<Registered, Attempt<ItemError>> {
        let ctx = RequestContext::default();
        let state = self.fetcher.state();
        register(
            state,
            &ctx,
            &job.provider_id,
            (blob, kind),
            &UploadMeta::default(),
            None,
            Source::Import,
        )
        .await
        .map_err(|e| {
            if e.status.is_server_error() {
                again("platform_unavailable", "the platform could not register it")
            } else {
                Attempt::Final(ItemError::new("not_registered", e.message))
            }
        })
    }

    /// Fetches and registers one item: `(image id, duplicate)`. A failure to register (the
    /// broker or the store away) fetches it again, under the same retry policy.
    async fn item(
        &self,
        job: &ImportJob,
        url: &Url,
        accept: &'static str,
        auth: Option<&SourceAuth>,
        job_stop: &Shutdown,
    ) -> Result<(String, bool), ItemError> {
        let backoff = self.fetcher.backoff();
        loop {
            let registered = retry_bounded(
                backoff,
                job_stop,
                |_, _, _| {},
                |_| async {
                    let (blob, kind) = self
                        .fetcher
                        .image(url, accept, auth, job_stop)
                        .await
                        .map_err(|g| Attempt::Final(described(g)))?;
                    self.register(job, &blob, kind).await
                },
            )
            .await;
            match registered {
                Ok(r) => return Ok((r.id, r.duplicate)),
                Err(g) if platform_failure(&g.error) && platform_wait(job_stop).await => {}
                Err(g) => return Err(g.error),
            }
        }
    }

    /// The end of a job whose items all have an outcome.
    /// `None` if the importer stopped before the store answered.
    async fn verdict(&self, job_id: &str, stop: &Shutdown) -> Option<(ImportState, Option<String>)> {
        let items = retry(stop, "read an import job's items", || self.imports.items(job_id))
            .await
            .ok()?;
        let ok = items.iter().any(|i| i.outcome != ItemOutcome::Failed);
        Some(match items.iter().find(|i| i.outcome == ItemOutcome::Failed) {
            Some(first) if !ok => {
                let why = format!("every item failed; the first: {}", first.reason.as_deref().unwrap_or("unknown"));
                (ImportState::Failed, Some(reason(&why)))
            }
            _ => (ImportState::Completed, None),
        })
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

/// The WADO-RS URL of the instance `key` (`study/series/instance`) of the series at `series`.
fn instance_url(series: &Url, key: &str) -> Result<Url, ItemError> {
    let mut one = series.clone();
    one.path_segments_mut()
        .map_err(|()| ItemError::new("bad_url", "the series URL cannot have a path"))?
        .pop_if_empty()
        .extend(["instances", key.rsplit('/').next().unwrap_or_default()]);
    Ok(one)
}

/// How long a job waits before trying again what the platform itself failed.
const PLATFORM_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// A failure of the platform itself (the blob store, the ingest store, the broker), not of the
/// source: tried again until it works or the job stops, as every consumer of the platform does,
/// never recorded as the item's outcome.
fn platform_failure(e: &ItemError) -> bool {
    matches!(e.code, "platform_unavailable" | "blob_store")
}

/// Waits [`PLATFORM_WAIT`] (logged); false if the job stopped meanwhile.
async fn platform_wait(job_stop: &Shutdown) -> bool {
    tracing::warn!(
        wait_ms = PLATFORM_WAIT.as_millis() as u64,
        "the platform failed an import item; trying it again"
    );
    tokio::select! {
        () = tokio::time::sleep(PLATFORM_WAIT) => !job_stop.is_triggered(),
        () = job_stop.wait() => false,
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

/// Fires `job_stop` when the importer stops or the job is over: cancelled, or ended by another
/// importer that ran it too (a partition that changed hands mid-job).
async fn watch(imports: Arc<dyn ImportStore>, job_id: String, stop: Shutdown, job_stop: Shutdown) {
    loop {
        tokio::select! {
            () = stop.wait() => break,
            () = tokio::time::sleep(CANCEL_POLL) => {}
        }
        if let Ok(Some(job)) = imports.job(&job_id).await {
            if job.state.is_final() {
                tracing::info!(job = %job_id, state = job.state.as_str(), "import job over; stopping its items");
                break;
            }
        }
    }
    job_stop.trigger();
}
