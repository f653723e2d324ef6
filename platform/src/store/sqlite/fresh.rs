//! What a SQLite adapter keeps in memory in front of a lookup on the request
//! path (a token's revocation, an image by id), so that a request does not
//! open a read transaction for it.
//!
//! - A write through this process's adapter updates or clears the cache
//!   before it returns, so this process reads its own writes at once.
//! - A write by another process that shares the data dir is seen within
//!   [`MAX_AGE`]: an entry answers only that long after it was read. (With
//!   the CQL stores, which several replicas share, nothing is cached: every
//!   lookup reads the store.)
//! - A read that raced with a write never stores what it read: every write
//!   moves a generation, and a value read under an older generation is
//!   dropped instead of cached.
//! - It is bounded: when full, stale entries go, and if that frees nothing,
//!   everything does.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;
use std::time::{Duration, Instant};

/// How long a cached answer stands for writes made by other processes.
pub(crate) const MAX_AGE: Duration = Duration::from_secs(1);

/// Values by key, each answering for [`MAX_AGE`] after it was read.
#[derive(Debug)]
pub(crate) struct Fresh<V> {
    capacity: usize,
    generation: AtomicU64,
    entries: RwLock<HashMap<String, (Instant, V)>>,
}

impl<V: Clone> Fresh<V> {
    /// A cache of at most `capacity` entries.
    pub(crate) fn new(capacity: usize) -> Fresh<V> {
        Fresh {
            capacity,
            generation: AtomicU64::new(0),
            entries: RwLock::new(HashMap::new()),
        }
    }

    /// The cached value of `key`, if it was read less than [`MAX_AGE`] ago.
    pub(crate) fn get(&self, key: &str) -> Option<V> {
        let entries = self.entries.read().ok()?;
        entries.get(key).filter(|(at, _)| at.elapsed() < MAX_AGE).map(|(_, v)| v.clone())
    }

    /// The cached value of `key`, or else what `read` finds in the store
    /// (cached unless a write came meanwhile).
    pub(crate) fn get_or_read<E>(&self, key: &str, read: impl FnOnce() -> Result<V, E>) -> Result<V, E> {
        if let Some(v) = self.get(key) {
            return Ok(v);
        }
        let generation = self.generation();
        let v = read()?;
        self.fill(key, v.clone(), generation);
        Ok(v)
    }

    /// The generation to read under: take it before reading the store.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Caches `value`, read from the store under `generation`, unless a write came since.
    pub(crate) fn fill(&self, key: &str, value: V, generation: u64) {
        let Ok(mut entries) = self.entries.write() else { return };
        if self.generation.load(Ordering::Acquire) == generation {
            self.insert(&mut entries, key, value);
        }
    }

    /// A write of `key` through this adapter: its value is `value` from now on.
    pub(crate) fn wrote(&self, key: &str, value: V) {
        let Ok(mut entries) = self.entries.write() else { return };
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.insert(&mut entries, key, value);
    }

    /// A write that may change any key: forget everything.
    pub(crate) fn clear(&self) {
        let Ok(mut entries) = self.entries.write() else { return };
        self.generation.fetch_add(1, Ordering::AcqRel);
        entries.clear();
    }

    fn insert(&self, entries: &mut HashMap<String, (Instant, V)>, key: &str, value: V) {
        if entries.len() >= self.capacity && !entries.contains_key(key) {
            entries.retain(|_, (at, _)| at.elapsed() < MAX_AGE);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        if self.capacity > 0 {
            entries.insert(key.to_owned(), (Instant::now(), value));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_read_before_a_write_is_not_cached() {
        let cache = Fresh::new(8);
        let before = cache.generation();
        cache.wrote("a", 2);
        cache.fill("a", 1, before);
        assert_eq!(cache.get("a"), Some(2), "the write stands, not the older read");
        let now = cache.generation();
        cache.fill("b", 3, now);
        assert_eq!(cache.get("b"), Some(3));
        cache.clear();
        assert_eq!((cache.get("a"), cache.get("b")), (None, None));
        cache.fill("c", 4, now);
        assert_eq!(cache.get("c"), None, "read before the clear");
    }

    #[test]
    fn it_stays_within_its_capacity_and_zero_caches_nothing() {
        let cache = Fresh::new(2);
        for (i, k) in ["a", "b", "c"].into_iter().enumerate() {
            cache.fill(k, i, cache.generation());
        }
        assert!(cache.entries.read().expect("lock").len() <= 2);
        assert_eq!(cache.get("c"), Some(2));
        let none = Fresh::new(0);
        none.fill("a", 1, none.generation());
        assert_eq!(none.get("a"), None);
    }
}
