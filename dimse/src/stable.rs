//! Stable studies, as Orthanc has them: a study whose instances came over
//! C-STORE is announced as complete (`EstudioCompleto` on
//! `alpes.studies.complete`) once no new instance of it has arrived for the
//! stable time (`--dimse-stable-study-secs`). More instances later make a new
//! announcement, of those.
//!
//! A study is known here by its provider and its StudyInstanceUID as sent,
//! in memory only: the event names the provider, the calling AE title and
//! the image ids, never the study's own identifiers. The tracking is this
//! process's (a study sent through two listeners is announced by each, for
//! its part). What is pending at shutdown is announced then, once: an
//! announcement the broker refuses at that point is logged and lost.

use alpes_platform::kafka::Producer;
use alpes_platform::shutdown::Shutdown;
use alpes_schemas::{new_event_id, now_millis, EstudioCompleto};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The most image ids one announcement lists.
pub const MAX_IMAGES: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    provider: String,
    study: String,
}

#[derive(Debug, Clone)]
struct Pending {
    calling_ae: String,
    images: Vec<String>,
    count: u32,
    first_ms: i64,
    last_ms: i64,
    last: Instant,
}

/// The studies with instances not yet announced.
#[derive(Debug)]
pub struct Studies {
    pending: Mutex<HashMap<Key, Pending>>,
    stable: Duration,
}

impl Studies {
    /// A tracker announcing a study `stable` after its last instance.
    pub fn new(stable: Duration) -> Arc<Studies> {
        Arc::new(Studies {
            pending: Mutex::new(HashMap::new()),
            stable,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Pending>> {
        self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A new image `image_id` of `study` (its StudyInstanceUID as sent) for `provider`.
    pub fn arrived(&self, provider: &str, study: &str, calling_ae: &str, image_id: &str) {
        self.arrived_at(provider, study, calling_ae, image_id, Instant::now(), now_millis());
    }

    fn arrived_at(&self, provider: &str, study: &str, calling_ae: &str, image_id: &str, at: Instant, at_ms: i64) {
        let key = Key {
            provider: provider.to_owned(),
            study: study.to_owned(),
        };
        let mut pending = self.lock();
        let p = pending.entry(key).or_insert_with(|| Pending {
            calling_ae: calling_ae.to_owned(),
            images: Vec::new(),
            count: 0,
            first_ms: at_ms,
            last_ms: at_ms,
            last: at,
        });
        if p.images.len() < MAX_IMAGES {
            p.images.push(image_id.to_owned());
        }
        p.count = p.count.saturating_add(1);
        p.calling_ae = calling_ae.to_owned();
        p.last_ms = at_ms;
        p.last = at;
    }

    /// Takes the studies stable at `now` (all of them with `all`), each with its event.
    fn take(&self, now: Instant, all: bool) -> Vec<(Key, Pending, EstudioCompleto)> {
        let mut pending = self.lock();
        let stable: Vec<Key> = pending
            .iter()
            .filter(|(_, p)| all || now.saturating_duration_since(p.last) >= self.stable)
            .map(|(k, _)| k.clone())
            .collect();
        stable
            .into_iter()
            .filter_map(|k| pending.remove(&k).map(|p| (k, p)))
            .map(|(k, p)| {
                let event = EstudioCompleto {
                    evento_id: new_event_id(),
                    ocurrido_at: now_millis(),
                    actor: "dimse".into(),
                    proveedor_id: k.provider.clone(),
                    titulo_ae: p.calling_ae.clone(),
                    instancias: i32::try_from(p.count).unwrap_or(i32::MAX),
                    imagenes: p.images.clone(),
                    imagenes_completas: p.images.len() as u64 == u64::from(p.count),
                    primera_at: p.first_ms,
                    ultima_at: p.last_ms,
                    estable_ms: i64::try_from(self.stable.as_millis()).unwrap_or(i64::MAX),
                };
                (k, p, event)
            })
            .collect()
    }

    /// Puts back a study whose announcement failed, merged with what arrived since.
    fn restore(&self, key: Key, mut p: Pending) {
        let mut pending = self.lock();
        if let Some(newer) = pending.remove(&key) {
            let room = MAX_IMAGES.saturating_sub(p.images.len());
            p.images.extend(newer.images.into_iter().take(room));
            p.count = p.count.saturating_add(newer.count);
            p.calling_ae = newer.calling_ae;
            p.last_ms = newer.last_ms;
        }
        p.last = Instant::now();
        pending.insert(key, p);
    }

    /// Announces the stable studies every tick until `stop`, then every study still pending.
    pub async fn run_until_stopped(self: Arc<Self>, producer: Producer, stop: Shutdown) {
        let tick = (self.stable / 4).clamp(Duration::from_millis(100), Duration::from_secs(1));
        loop {
            tokio::select! {
                () = stop.wait() => break,
                () = tokio::time::sleep(tick) => self.announce(&producer, false).await,
            }
        }
        self.announce(&producer, true).await;
    }

    async fn announce(&self, producer: &Producer, all: bool) {
        for (key, pending, event) in self.take(Instant::now(), all) {
            match producer.send(&event.proveedor_id, &event).await {
                Ok(()) => tracing::info!(
                    provider = %event.proveedor_id,
                    ae_title = %event.titulo_ae,
                    instances = event.instancias,
                    "a study sent over DICOM is complete"
                ),
                Err(e) => {
                    tracing::warn!(error = %e, "a complete study was not announced; it is tried again");
                    if !all {
                        self.restore(key, pending);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_study_is_announced_once_stable_with_its_images_in_arrival_order() {
        let s = Studies::new(Duration::from_secs(60));
        let t0 = Instant::now();
        s.arrived_at("p1", "1.2.3", "CT1", "img-a", t0, 1_000);
        s.arrived_at("p1", "1.2.3", "CT1", "img-b", t0 + Duration::from_secs(30), 31_000);
        s.arrived_at("p2", "1.2.3", "MR1", "img-c", t0, 1_000);
        assert!(s.take(t0 + Duration::from_secs(59), false).is_empty());
        let due = s.take(t0 + Duration::from_secs(61), false);
        assert_eq!(due.len(), 1, "p2's study is stable, p1's got an instance 31 s ago");
        assert_eq!((due[0].2.proveedor_id.as_str(), due[0].2.instancias), ("p2", 1));
        let due = s.take(t0 + Duration::from_secs(91), false);
        let ev = &due[0].2;
        assert_eq!(ev.imagenes, vec!["img-a".to_owned(), "img-b".to_owned()]);
        assert_eq!(
            (ev.instancias, ev.primera_at, ev.ultima_at, ev.estable_ms),
            (2, 1_000, 31_000, 60_000)
        );
        assert!(ev.imagenes_completas);
        assert!(
            !format!("{ev:?}").contains("1.2.3"),
            "the study's UID as sent is never in the event"
        );
        assert!(s.take(t0 + Duration::from_secs(999), true).is_empty());
    }

    #[test]
    fn a_failed_announcement_is_kept_with_what_arrived_since() {
        let s = Studies::new(Duration::from_secs(1));
        let t0 = Instant::now();
        s.arrived_at("p1", "9.9", "CT1", "img-a", t0, 1);
        let (key, pending, _) = s.take(t0 + Duration::from_secs(2), false).remove(0);
        s.arrived_at("p1", "9.9", "CT1", "img-b", t0 + Duration::from_secs(3), 3);
        s.restore(key, pending);
        let all = s.take(t0, true);
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].2.imagenes, vec!["img-a".to_owned(), "img-b".to_owned()]);
        assert_eq!((all[0].2.primera_at, all[0].2.ultima_at), (1, 3));
    }
}
