//! Keys, buckets, shards and write timestamps: the pure functions the CQL
//! catalog writes and reads with.

use super::*;

/// The image an event changes the state of, if any.
pub(super) fn image_of(e: &CatalogEvent) -> Option<&str> {
    let id = match e {
        CatalogEvent::Registered(r) => r.image_id.as_str(),
        CatalogEvent::Anonymized(a) => a.image_id.as_str(),
        // A message that never decoded names no image: nothing to materialize.
        CatalogEvent::Rejected(x) => x.image_id.as_deref()?,
        // An analysis is an image's, but not of its state: written on its own.
        CatalogEvent::User(_)
        | CatalogEvent::Usage(_)
        | CatalogEvent::Analyzed(_)
        | CatalogEvent::Consent(_)
        | CatalogEvent::Institution(_) => return None,
    };
    (!id.is_empty()).then_some(id)
}

/// An optional text left unset when absent (no tombstone written).
pub(super) fn unset_if_none(v: Option<&str>) -> MaybeUnset<&str> {
    v.map_or(MaybeUnset::Unset, MaybeUnset::Set)
}

/// Keeps the first `limit` of `found` and returns the cursor after them if there were more.
pub(super) fn page_end<T>(found: &mut Vec<T>, limit: usize, cursor: impl Fn(&T) -> String) -> Option<String> {
    if found.len() > limit {
        found.truncate(limit);
        found.last().map(cursor)
    } else {
        None
    }
}

/// Whether an image passes the filters a listing cannot apply by itself.
pub(super) fn image_matches(f: &ImageFilter, i: &CatalogImage) -> bool {
    f.provider_id.as_ref().is_none_or(|p| *p == i.provider_id)
        && f.modality
            .as_ref()
            .is_none_or(|m| i.modality.as_deref() == Some(m.to_uppercase().as_str()))
        && f.region_anatomica.as_ref().is_none_or(|r| i.region_anatomica.as_ref() == Some(r))
        && f.estado.is_none_or(|e| i.estado == e)
        && f.created_from.is_none_or(|from| i.created_at >= from)
        && f.created_to.is_none_or(|to| i.created_at < to)
}

/// Where an image stands, from which outcomes it has.
pub(super) fn estado_of(has_output: bool, has_rejection: bool) -> Estado {
    if has_output {
        Estado::Anonimizada
    } else if has_rejection {
        Estado::Rechazada
    } else {
        Estado::Registrada
    }
}

/// The hour bucket of a time in milliseconds.
pub(super) fn bucket_of(at_ms: i64) -> i64 {
    at_ms.div_euclid(BUCKET_MS)
}

/// 64-bit FNV-1a: a hash that never changes between builds or platforms (it picks stored partitions).
pub(super) fn fnv1a(s: &str) -> u64 {
    s.bytes()
        .fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3))
}

/// The `catalog_study_index` partition of a study.
pub(super) fn study_shard(study_uid: &str) -> i32 {
    i32::try_from(fnv1a(study_uid) % u64::from(STUDY_SHARDS.unsigned_abs())).unwrap_or(0)
}

/// The write timestamp of an outcome that happened at `at_ms`: microseconds, plus a tie-break in
/// `0..1000` from the event id (so two outcomes of one millisecond are still ordered, the same way
/// everywhere), never below 0 nor more than a day ahead of `now_micros`.
pub(super) fn write_timestamp(at_ms: i64, event_id: &str, now_micros: i64) -> i64 {
    let tie = i64::try_from(fnv1a(event_id) % 1000).unwrap_or(0);
    at_ms
        .saturating_mul(1000)
        .saturating_add(tie)
        .clamp(0, now_micros.max(0).saturating_add(MAX_AHEAD_MICROS))
}

pub(super) fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}
