//! The credit this process's admitted retrievals hold until billing applies
//! their charges.
//!
//! Billing applies a download's charge from its usage event, after the bytes
//! went out; checked against the applied charges alone, a burst of one
//! consumer's downloads could pass its credit limit by the ones in flight.
//! So [`crate::admission::admit`] checks against the applied charges plus
//! what is held here, and a retrieval it lets through holds the price of each
//! new charge ([`Holding`]):
//! - until the ledger has the charge (billing applied it; the next check of
//!   that consumer lets it go, since the applied charges now count it);
//! - or until the request fails before its usage event is on the log (the
//!   [`Holding`] is dropped without [`Holding::metered`]; a retrieval of
//!   several images marks each one whose usage event is on the log with
//!   [`Holding::metered_image`], and only the others' holds go);
//! - or at most [`HOLD_FOR`], so a usage event billing never applies (a
//!   poison message on its rejected topic) does not hold credit for ever.
//!
//! A check and the holds it takes are one step under a lock, so two
//! concurrent retrievals of one consumer cannot both take the last credit. A
//! hold may be counted twice for an instant (applied after it was looked up,
//! before the applied charges were read): that errs towards a 402. The holds
//! are this process's: N query-api replicas each hold their own, so a burst
//! spread over them may pass the limit by what the others have in flight.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

/// How long a metered retrieval holds its credit at most (ms).
pub const HOLD_FOR: i64 = 10 * 60 * 1000;

/// The holds of every consumer, by consumer id.
#[derive(Debug, Default)]
pub struct Held {
    by_consumer: Mutex<HashMap<String, Vec<Hold>>>,
}

#[derive(Debug, Clone)]
struct Hold {
    charge_id: String,
    price_minor: i64,
    /// When it was taken (ms).
    at: i64,
}

/// A new charge a retrieval would make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charge {
    /// The image retrieved.
    pub image_id: String,
    /// The charge's id (of its charge key).
    pub charge_id: String,
    /// Its price, minor units.
    pub price_minor: i64,
}

/// The holds one admitted retrieval took: released when dropped, unless its
/// usage events were produced ([`Holding::metered`], or image by image
/// [`Holding::metered_image`]).
#[derive(Debug)]
#[must_use = "a retrieval's holds are released when dropped: call metered() once its usage is on the log"]
pub struct Holding {
    held: Option<Arc<Held>>,
    consumer: String,
    /// `(image id, charge id)` of each hold taken and not yet metered.
    charges: Vec<(String, String)>,
}

impl Holding {
    /// A retrieval that holds nothing (an admin's, a repeat, no credit checks).
    pub fn nothing() -> Holding {
        Holding {
            held: None,
            consumer: String::new(),
            charges: Vec::new(),
        }
    }

    /// The retrieval's usage events are on the log: its holds stay until billing applies them.
    pub fn metered(mut self) {
        self.held = None;
    }

    /// The usage event of `image_id` is on the log: its hold stays until billing applies it,
    /// whatever becomes of the rest of the retrieval.
    pub fn metered_image(&mut self, image_id: &str) {
        self.charges.retain(|(image, _)| image != image_id);
    }
}

impl Drop for Holding {
    fn drop(&mut self) {
        if let Some(held) = self.held.take() {
            let ids: Vec<String> = self.charges.iter().map(|(_, id)| id.clone()).collect();
            held.release(&self.consumer, &ids);
        }
    }
}

impl Held {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<Hold>>> {
        self.by_consumer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The charge ids `consumer` holds credit for.
    pub fn charge_ids(&self, consumer: &str) -> Vec<String> {
        self.lock()
            .get(consumer)
            .map(|holds| holds.iter().map(|h| h.charge_id.clone()).collect())
            .unwrap_or_default()
    }

    /// Lets go of `consumer`'s holds whose charges billing applied, and of those older than [`HOLD_FOR`].
    pub fn settle(&self, consumer: &str, applied: &HashSet<String>, now: i64) {
        self.retain(consumer, |h| !applied.contains(&h.charge_id) && now - h.at < HOLD_FOR);
    }

    fn release(&self, consumer: &str, charge_ids: &[String]) {
        self.retain(consumer, |h| !charge_ids.contains(&h.charge_id));
    }

    /// Keeps `consumer`'s holds that `keep` keeps (and no empty entry).
    fn retain(&self, consumer: &str, keep: impl Fn(&Hold) -> bool) {
        let mut by_consumer = self.lock();
        if let Some(holds) = by_consumer.get_mut(consumer) {
            holds.retain(keep);
            if holds.is_empty() {
                by_consumer.remove(consumer);
            }
        }
    }

    /// In one step: what `consumer` holds (minor units) and what the new
    /// `charges` add beyond the charges already held go to `refuse`; unless it
    /// refuses, those new charges are held.
    pub fn hold<R>(
        self: &Arc<Self>,
        consumer: &str,
        charges: Vec<Charge>,
        now: i64,
        refuse: impl FnOnce(i64, i64) -> Option<R>,
    ) -> Result<Holding, R> {
        let mut by_consumer = self.lock();
        let holds = by_consumer.entry(consumer.to_owned()).or_default();
        let held_minor = holds.iter().map(|h| h.price_minor).fold(0, i64::saturating_add);
        let mut new: Vec<Charge> = Vec::new();
        for c in charges {
            if !holds.iter().any(|h| h.charge_id == c.charge_id) && !new.iter().any(|n| n.charge_id == c.charge_id) {
                new.push(c);
            }
        }
        let adds_minor = new.iter().map(|c| c.price_minor).fold(0, i64::saturating_add);
        if let Some(refusal) = refuse(held_minor, adds_minor) {
            if holds.is_empty() {
                by_consumer.remove(consumer);
            }
            return Err(refusal);
        }
        let taken: Vec<(String, String)> = new.iter().map(|c| (c.image_id.clone(), c.charge_id.clone())).collect();
        holds.extend(new.into_iter().map(|c| Hold {
            charge_id: c.charge_id,
            price_minor: c.price_minor,
            at: now,
        }));
        if holds.is_empty() {
            by_consumer.remove(consumer);
        }
        Ok(Holding {
            held: Some(self.clone()),
            consumer: consumer.to_owned(),
            charges: taken,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A check with a credit limit of `limit`: refused when held + new passes it.
    fn within(limit: i64) -> impl FnOnce(i64, i64) -> Option<(i64, i64)> {
        move |held, adds| (held + adds > limit).then_some((held, adds))
    }

    /// A charge of 100 for each id, on the image of the same name.
    fn charges(ids: &[&str]) -> Vec<Charge> {
        ids.iter()
            .map(|id| Charge {
                image_id: (*id).to_owned(),
                charge_id: (*id).to_owned(),
                price_minor: 100,
            })
            .collect()
    }

    #[test]
    fn admitted_retrievals_hold_their_new_charges_until_billing_applies_them() {
        let held = Arc::new(Held::default());
        held.hold("c", charges(&["a", "b"]), 0, within(300)).expect("200 of 300").metered();
        // The third fits; a fourth does not, while the others are in flight.
        held.hold("c", charges(&["c"]), 0, within(300)).expect("300 of 300").metered();
        assert_eq!(held.hold("c", charges(&["d"]), 0, within(300)).expect_err("400"), (300, 100));
        // A charge already held (a repeat in the window) adds nothing.
        assert!(held.hold("c", charges(&["a"]), 0, within(300)).is_ok());
        // Other consumers hold their own.
        assert!(held.hold("other", charges(&["a"]), 0, within(100)).is_ok());
        // Billing applied a and b: the applied charges count them now, the holds let go.
        held.settle("c", &HashSet::from(["a".into(), "b".into()]), 1);
        assert_eq!(held.charge_ids("c"), vec!["c".to_owned()]);
        // (the applied 200 are the caller's to count: 100 of credit left for what is held and new)
        assert_eq!(held.hold("c", charges(&["d"]), 1, within(100)).expect_err("held 100"), (100, 100));
    }

    #[test]
    fn a_retrieval_that_fails_before_metering_releases_what_it_held() {
        let held = Arc::new(Held::default());
        let holding = held.hold("c", charges(&["a"]), 0, within(100)).expect("fits");
        assert!(held.hold("c", charges(&["b"]), 0, within(100)).is_err(), "a holds the credit");
        drop(holding);
        assert!(held.charge_ids("c").is_empty());
        held.hold("c", charges(&["b"]), 0, within(100)).expect("released").metered();
        assert_eq!(held.charge_ids("c"), vec!["b".to_owned()]);
    }

    #[test]
    fn a_retrieval_that_fails_after_metering_some_images_keeps_their_holds() {
        let held = Arc::new(Held::default());
        let mut holding = held.hold("c", charges(&["a", "b", "c"]), 0, within(300)).expect("fits");
        holding.metered_image("a");
        holding.metered_image("b");
        drop(holding);
        assert_eq!(
            held.charge_ids("c"),
            vec!["a".to_owned(), "b".to_owned()],
            "a and b are on the log: billing will charge them"
        );
        assert!(held.hold("c", charges(&["d", "e"]), 0, within(300)).is_err(), "a and b still count");
    }

    #[test]
    fn a_hold_billing_never_applies_goes_after_hold_for() {
        let held = Arc::new(Held::default());
        held.hold("c", charges(&["a"]), 0, within(100)).expect("fits").metered();
        held.settle("c", &HashSet::new(), HOLD_FOR - 1);
        assert_eq!(held.charge_ids("c").len(), 1);
        held.settle("c", &HashSet::new(), HOLD_FOR);
        assert!(held.charge_ids("c").is_empty());
        assert!(held.lock().is_empty(), "no empty entries are kept");
    }
}
