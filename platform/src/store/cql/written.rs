//! [`Written`]: the rows of a kind this process has written, so it does not write them again
//! (bucket rows, written before every row of their bucket).

use std::collections::HashSet;
use std::hash::Hash;
use std::sync::Mutex;

/// A bounded set of keys written by this process; a cache, so a miss only writes a row again.
#[derive(Debug)]
pub(crate) struct Written<K> {
    keys: Mutex<HashSet<K>>,
    cap: usize,
}

impl<K: Eq + Hash> Written<K> {
    /// Remembers at most `cap` keys (then forgets them all and starts again).
    pub(crate) fn new(cap: usize) -> Written<K> {
        Written {
            keys: Mutex::new(HashSet::new()),
            cap,
        }
    }

    /// Whether `key` was written.
    pub(crate) fn has(&self, key: &K) -> bool {
        self.keys.lock().is_ok_and(|k| k.contains(key))
    }

    /// Remembers that `key` was written.
    pub(crate) fn remember(&self, key: K) {
        if let Ok(mut keys) = self.keys.lock() {
            if keys.len() >= self.cap {
                keys.clear();
            }
            keys.insert(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_remembers_up_to_its_bound_then_starts_again() {
        let w = Written::new(2);
        w.remember(1);
        w.remember(2);
        assert!(w.has(&1) && w.has(&2) && !w.has(&3));
        w.remember(3);
        assert!(w.has(&3) && !w.has(&1), "forgot all at the bound");
    }
}
