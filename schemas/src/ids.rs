//! Event ids and event times: time-ordered ids, deterministic ids for idempotent producers, and
//! the epoch-millisecond clock every `occurred_at` uses.

use std::time::{SystemTime, UNIX_EPOCH};

use uuid::Uuid;

/// The UUID namespace of Alpes event ids (`deterministic_event_id` hashes under it).
pub const EVENT_ID_NAMESPACE: Uuid = Uuid::from_u128(0x6a1f_04b2_9c3e_4d8a_b5e7_2f10_c4d9_a3e8);

/// A fresh event id: a UUID v7, so ids sort in the order they were made. Within one process
/// the uuid crate's shared counter keeps them strictly increasing even inside one millisecond,
/// which is what a listing ordered by `(occurred_at, event_id)` needs to show the newest first.
pub fn new_event_id() -> String {
    Uuid::now_v7().to_string()
}

/// A reproducible event id: UUID v5 under [`EVENT_ID_NAMESPACE`] of `namespace` and `parts`,
/// joined by the ASCII unit separator (`0x1F`) so `["a-b", "c"]` and `["a", "b-c"]` differ.
/// The same inputs always give the same id, so a redelivered event deduplicates.
pub fn deterministic_event_id(namespace: &str, parts: &[&str]) -> String {
    let mut name = String::from(namespace);
    for part in parts {
        name.push('\u{1f}');
        name.push_str(part);
    }
    Uuid::new_v5(&EVENT_ID_NAMESPACE, name.as_bytes()).to_string()
}

/// Now, in milliseconds since the Unix epoch (UTC), as `occurred_at` wants it.
pub fn now_millis() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_millis()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_millis()).map_or(i64::MIN, |ms| -ms),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_event_ids_are_time_ordered_uuids_even_within_a_millisecond() {
        let ids: Vec<String> = (0..1000).map(|_| new_event_id()).collect();
        assert_eq!(Uuid::parse_str(&ids[0]).unwrap().get_version_num(), 7);
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids must strictly increase");
    }

    #[test]
    fn a_deterministic_event_id_depends_only_on_its_inputs() {
        let id = deterministic_event_id("anonymized", &["img-1", "req-9"]);
        assert_eq!(id, deterministic_event_id("anonymized", &["img-1", "req-9"]));
        assert_eq!(Uuid::parse_str(&id).unwrap().get_version_num(), 5);
        assert_ne!(id, deterministic_event_id("rejected", &["img-1", "req-9"]));
        assert_ne!(
            deterministic_event_id("n", &["a-b", "c"]),
            deterministic_event_id("n", &["a", "b-c"])
        );
        assert_ne!(deterministic_event_id("n", &["ab"]), deterministic_event_id("n", &["a", "b"]));
    }

    #[test]
    fn now_is_after_2024_in_milliseconds() {
        assert!(now_millis() > 1_704_067_200_000);
    }
}
