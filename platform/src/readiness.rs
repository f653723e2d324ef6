//! Readiness: whether the consumers a process runs have joined their groups.
//!
//! A process answers `/health` as soon as it listens, but until each of its
//! consumers has its first partition assignment it serves stale answers: a
//! user registered in that window reads 404 for their own account, since the
//! materializer has not started reading. The composition root declares every
//! consumer it starts ([`Readiness::expect`], by consumer group, before it
//! serves); [`crate::kafka::Kafka::consumer`] takes a [`Ticket`] for its group
//! and marks it on the first assignment (an empty one counts: the member has
//! joined). `GET /ready` answers 200 once none is pending. A member that has
//! joined once stays ready through later rebalances.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

/// The consumers a process expects, by group: how many, and how many have joined.
#[derive(Debug, Clone, Default)]
pub struct Readiness {
    groups: Arc<Mutex<BTreeMap<String, Slots>>>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Slots {
    expected: usize,
    taken: usize,
    joined: usize,
}

/// One expected consumer's place; [`Ticket::joined`] marks it (once).
#[derive(Debug)]
pub struct Ticket {
    readiness: Readiness,
    group: String,
    done: std::sync::atomic::AtomicBool,
}

impl Readiness {
    /// A readiness with nothing expected (ready).
    pub fn new() -> Readiness {
        Readiness::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut BTreeMap<String, Slots>) -> T) -> T {
        f(&mut self.groups.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Declares one more consumer of `group`, to start before the process serves.
    pub fn expect(&self, group: &str) {
        self.with(|g| g.entry(group.to_owned()).or_default().expected += 1);
    }

    /// A ticket for a consumer of `group` being created, if one was expected and not yet taken.
    pub fn ticket(&self, group: &str) -> Option<Ticket> {
        let taken = self.with(|g| match g.get_mut(group) {
            Some(s) if s.taken < s.expected => {
                s.taken += 1;
                true
            }
            _ => false,
        });
        taken.then(|| Ticket {
            readiness: self.clone(),
            group: group.to_owned(),
            done: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Each group with members still to join, and how many.
    pub fn pending(&self) -> BTreeMap<String, usize> {
        self.with(|g| {
            g.iter()
                .filter(|(_, s)| s.joined < s.expected)
                .map(|(name, s)| (name.clone(), s.expected - s.joined))
                .collect()
        })
    }

    /// Every expected group, and whether all its members have joined.
    pub fn groups(&self) -> BTreeMap<String, bool> {
        self.with(|g| g.iter().map(|(name, s)| (name.clone(), s.joined >= s.expected)).collect())
    }

    /// Whether every expected consumer has joined its group.
    pub fn ready(&self) -> bool {
        self.pending().is_empty()
    }
}

impl Ticket {
    /// Marks this consumer as joined; later calls do nothing.
    pub fn joined(&self) {
        if !self.done.swap(true, std::sync::atomic::Ordering::SeqCst) {
            self.readiness.with(|g| {
                if let Some(s) = g.get_mut(&self.group) {
                    s.joined += 1;
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_is_ready_once_every_expected_consumer_has_joined() {
        let r = Readiness::new();
        assert!(r.ready(), "nothing expected");
        r.expect("alpes-anonymizer");
        r.expect("alpes-anonymizer");
        r.expect("alpes-billing");
        assert_eq!(r.pending().get("alpes-anonymizer"), Some(&2));
        let a = r.ticket("alpes-anonymizer").expect("first");
        let b = r.ticket("alpes-anonymizer").expect("second");
        assert!(r.ticket("alpes-anonymizer").is_none(), "only as many tickets as expected");
        assert!(r.ticket("alpes-perf").is_none(), "an unexpected group has none");
        a.joined();
        a.joined();
        assert_eq!(r.pending().get("alpes-anonymizer"), Some(&1), "a ticket counts once");
        b.joined();
        assert!(!r.ready());
        assert_eq!(r.groups().get("alpes-anonymizer"), Some(&true));
        r.ticket("alpes-billing").expect("billing").joined();
        assert!(r.ready());
    }
}
