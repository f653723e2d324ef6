use super::super::check::{assert_binds_one_marker_per_column, assert_names_only_schema, schema_columns};
use super::*;
use crate::store::conformance::{anonymized, registered, rejected, Instance};

#[test]
fn buckets_are_utc_hours_and_negative_times_round_down() {
    assert_eq!(bucket_of(0), 0);
    assert_eq!(bucket_of(3_599_999), 0);
    assert_eq!(bucket_of(3_600_000), 1);
    assert_eq!(bucket_of(-1), -1);
    assert_eq!(bucket_of(1_700_000_000_000), 472_222);
    assert_eq!(bucket_of(i64::MAX), i64::MAX / BUCKET_MS);
}

#[test]
fn a_full_bucket_read_continues_past_its_last_bucket_and_a_short_one_ends() {
    let full: Vec<(i64,)> = (0..i64::from(BUCKETS_PER_READ)).map(|b| (100 - b,)).collect();
    assert_eq!(next_bucket_read(&full, true), Some(100 - i64::from(BUCKETS_PER_READ)));
    let up: Vec<(i64,)> = (0..i64::from(BUCKETS_PER_READ)).map(|b| (b,)).collect();
    assert_eq!(next_bucket_read(&up, false), Some(i64::from(BUCKETS_PER_READ)));
    assert_eq!(next_bucket_read(&full[..3], true), None);
    assert_eq!(next_bucket_read(&[], false), None);
}

#[test]
fn fnv1a_is_the_published_function_and_shards_stay_in_range() {
    assert_eq!(fnv1a(""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(fnv1a("a"), 0xaf63_dc4c_8601_ec8c);
    assert_eq!(fnv1a("foobar"), 0x8594_4171_f739_67e8);
    for uid in ["1.1", "2.2", "1.2.840.10008.5.1.4.1.1.2", ""] {
        let s = study_shard(uid);
        assert!((0..STUDY_SHARDS).contains(&s), "{uid}: {s}");
        assert_eq!(s, study_shard(uid));
    }
}

#[test]
fn write_timestamps_order_by_time_then_by_event_and_stay_within_limits() {
    let now = 1_700_000_000_000_000;
    let a = write_timestamp(1_700_000_000_000, "n1", now);
    assert_eq!(a / 1000, 1_700_000_000_000);
    // Any two different milliseconds keep their order, whatever the tie-breaks.
    for (x, y) in [("n1", "n2"), ("n2", "n1"), ("zzz", "a")] {
        assert!(write_timestamp(249, x, now) < write_timestamp(250, y, now));
    }
    // The tie-break is a function of the event id alone.
    assert_eq!(write_timestamp(5, "n1", now), write_timestamp(5, "n1", now + 1));
    assert_ne!(write_timestamp(5, "n1", now), write_timestamp(5, "n2", now));
    // Far future is capped at a day ahead; before the epoch at zero.
    assert_eq!(write_timestamp(i64::MAX, "n1", now), now + MAX_AHEAD_MICROS);
    assert_eq!(write_timestamp(-10, "n1", now), 0);
    assert_eq!(write_timestamp(i64::MIN, "n1", now), 0);
}

#[test]
fn estado_follows_the_outcomes_present() {
    assert_eq!(estado_of(false, false), Estado::Registrada);
    assert_eq!(estado_of(false, true), Estado::Rechazada);
    assert_eq!(estado_of(true, false), Estado::Anonimizada);
    assert_eq!(estado_of(true, true), Estado::Anonimizada);
}

/// The rows a `SELECT` of an image's partition returns after `events` were written, in any order.
fn partition(events: &[CatalogEvent]) -> Vec<ImageRow> {
    let mut output: Option<(i64, String)> = None;
    let mut rejection: Option<(i64, String)> = None;
    let mut rows = Vec::new();
    for e in events {
        let mut row = ImageRow::default();
        match e {
            CatalogEvent::Registered(r) => {
                row.seen_at = Some(r.occurred_at);
                row.event_id = Some(r.event_id.clone());
                row.kind = Some(REGISTERED.into());
                row.provider_id = Some(r.provider_id.clone());
                row.tipo_imagen = r.tipo_imagen.clone();
                row.region_anatomica = r.region_anatomica.clone();
            }
            CatalogEvent::Anonymized(a) => {
                let stored = StoredOutput::of(a, now_micros());
                let key = InstanceKey::of(&stored).unwrap();
                row = ImageRow {
                    seen_at: Some(a.occurred_at),
                    event_id: Some(a.event_id.clone()),
                    kind: Some(ANONYMIZED.into()),
                    provider_id: Some(a.provider_id.clone()),
                    tipo_imagen: a.tipo_imagen.clone(),
                    region_anatomica: a.region_anatomica.clone(),
                    study_uid: Some(key.study),
                    series_uid: Some(key.series),
                    instance_number: Some(key.number),
                    sop_instance_uid: Some(key.sop),
                    ..ImageRow::default()
                };
                // Last write wins on the cell's timestamp, not on arrival.
                let json = serde_json::to_string(&stored).unwrap();
                if output.as_ref().is_none_or(|(ts, _)| stored.write_ts > *ts) {
                    output = Some((stored.write_ts, json));
                }
            }
            CatalogEvent::Rejected(x) => {
                row.seen_at = Some(x.occurred_at);
                row.event_id = Some(x.event_id.clone());
                row.kind = Some(REJECTED.into());
                row.provider_id = x.provider_id.clone();
                let ts = write_timestamp(x.occurred_at, &x.event_id, now_micros());
                if rejection.as_ref().is_none_or(|(t, _)| ts > *t) {
                    rejection = Some((ts, x.reason.clone()));
                }
            }
            CatalogEvent::User(_)
            | CatalogEvent::Usage(_)
            | CatalogEvent::Analyzed(_)
            | CatalogEvent::Consent(_)
            | CatalogEvent::Institution(_) => continue,
        }
        rows.push(row);
    }
    rows.sort_by(|a, b| (a.seen_at, &a.event_id).cmp(&(b.seen_at, &b.event_id)));
    for row in &mut rows {
        row.output = output.as_ref().map(|(_, j)| j.clone());
        row.rejection = rejection.as_ref().map(|(_, r)| r.clone());
    }
    rows
}

fn fold(events: &[CatalogEvent]) -> Option<(CatalogImage, Option<String>)> {
    ImageParts::from_rows(partition(events)).unwrap().image("a")
}

const CT: Instance<'static> = ("1.1", "1.1.1", "1.1.1.1", "CT", "PSEUDO-A", "20200105");
const RETAINED: Instance<'static> = ("9.9", "9.9.1", "9.9.1.1", "CT", "PSEUDO-A", "20200105");

#[test]
fn an_image_folds_the_same_whatever_order_its_events_arrive_in() {
    let events = vec![
        registered("r1", "a", "p1", 100),
        anonymized("n1", "a", "p1", 200, CT),
        rejected("x1", "a", "p1", 300),
        registered("r2", "a", "p1", 400),
        anonymized("n3", "a", "p1", 500, CT),
        anonymized("n2", "a", "p1", 250, CT),
    ];
    let expected = fold(&events).unwrap();
    assert_eq!(
        (expected.0.estado, expected.0.created_at, expected.0.modality.as_deref()),
        (Estado::Anonimizada, 100, Some("CT"))
    );
    assert_eq!(expected.0.anonymized.as_ref().unwrap().blob_key, "anonymized/n3");
    assert_eq!(expected.0.anonymized.as_ref().unwrap().report.value()["uids_remapped"], 3);
    assert_eq!(expected.0.rejection_reason.as_deref(), Some("not_dicom"));
    assert_eq!(expected.1.as_deref(), Some("n3"));
    let mut reversed = events.clone();
    reversed.reverse();
    assert_eq!(fold(&reversed), Some(expected.clone()));
    let mut rotated = events;
    rotated.rotate_left(3);
    assert_eq!(fold(&rotated), Some(expected));
}

#[test]
fn estado_and_labels_come_from_the_sightings_present() {
    assert!(fold(&[]).is_none());
    let (a, _) = fold(&[registered("r1", "a", "p1", 100)]).unwrap();
    assert_eq!(
        (a.estado, a.modality.as_deref(), a.tipo_imagen.as_deref(), a.provider_id.as_str()),
        (Estado::Registrada, Some("RX"), Some("rx"), "p1")
    );
    assert!(a.anonymized.is_none());
    // A rejection first, the registration late: created when registered, still rejected.
    let (c, _) = fold(&[rejected("x5", "a", "p2", 320), registered("r5", "a", "p2", 300)]).unwrap();
    assert_eq!(
        (c.estado, c.created_at, c.rejection_reason.as_deref()),
        (Estado::Rechazada, 300, Some("not_dicom"))
    );
    // The output before its registration: created when registered.
    let (b, _) = fold(&[anonymized("n4", "a", "p1", 220, CT), registered("r4", "a", "p1", 210)]).unwrap();
    assert_eq!((b.estado, b.created_at), (Estado::Anonimizada, 210));
    // Labels come from the first sighting that names them.
    let mut bare = registered("r0", "a", "p1", 50);
    if let CatalogEvent::Registered(r) = &mut bare {
        r.tipo_imagen = None;
    }
    let (d, _) = fold(&[bare, registered("r1", "a", "p1", 100)]).unwrap();
    assert_eq!(
        (d.created_at, d.tipo_imagen.as_deref(), d.modality.as_deref()),
        (50, Some("rx"), Some("RX"))
    );
}

#[test]
fn a_stored_output_reads_back_as_the_event_said() {
    let CatalogEvent::Anonymized(e) = anonymized("n1", "a", "p1", 200, CT) else {
        unreachable!()
    };
    let stored = StoredOutput::of(&e, now_micros());
    let back: StoredOutput = serde_json::from_str(&serde_json::to_string(&stored).unwrap()).unwrap();
    assert_eq!(back, stored);
    let out = back.to_output();
    assert_eq!(
        (
            out.blob_key.as_str(),
            out.study_uid.as_deref(),
            out.instance_number,
            out.anonymized_at
        ),
        ("anonymized/n1", Some("1.1"), Some(1), 200)
    );
    assert_eq!(stored.modality.as_deref(), Some("CT"));
    assert!(ImageParts::from_rows(vec![ImageRow {
        output: Some("{".into()),
        ..ImageRow::default()
    }])
    .is_err());
}

#[test]
fn only_the_rows_of_replaced_outputs_with_other_uids_are_deleted_at_the_newest_timestamp() {
    // The same UIDs rewrite the same row: nothing to delete.
    let same = ImageParts::from_rows(partition(&[
        anonymized("n1", "a", "p1", 200, CT),
        anonymized("n2", "a", "p1", 300, CT),
    ]))
    .unwrap();
    assert!(same.stale_instance_keys().is_none());
    // Re-anonymized with retained UIDs, the older output arriving last: its key goes, at the newer's timestamp.
    let moved = ImageParts::from_rows(partition(&[
        anonymized("n2", "a", "p1", 300, RETAINED),
        anonymized("n1", "a", "p1", 200, CT),
        registered("r1", "a", "p1", 100),
    ]))
    .unwrap();
    let (ts, stale) = moved.stale_instance_keys().unwrap();
    assert_eq!(ts, moved.output.as_ref().unwrap().write_ts);
    assert_eq!(ts / 1000, 300);
    let keys: Vec<_> = stale
        .iter()
        .map(|k| (k.study.as_str(), k.series.as_str(), k.number, k.sop.as_str()))
        .collect();
    assert_eq!(keys, vec![("1.1", "1.1.1", 1, "1.1.1.1")]);
    // No output: nothing to settle.
    assert!(ImageParts::from_rows(partition(&[registered("r1", "a", "p1", 100)]))
        .unwrap()
        .stale_instance_keys()
        .is_none());
}

#[test]
fn a_read_back_that_missed_this_replicas_writes_still_settles_with_them() {
    // At consistency ONE the read may return nothing of what was just written.
    let CatalogEvent::Registered(r) = registered("r0", "a", "p1", 50) else {
        unreachable!()
    };
    let CatalogEvent::Anonymized(n) = anonymized("n2", "a", "p1", 300, RETAINED) else {
        unreachable!()
    };
    let stored = StoredOutput::of(&n, now_micros());
    let mut own = ImageParts::default();
    own.sightings.push(Sighting::registered(&r));
    own.sightings.push(Sighting::anonymized(&n, &stored));
    own.keep_newer_output(stored.clone());
    // The read saw an older registration and an older output with other UIDs, not ours.
    let mut parts = ImageParts::from_rows(partition(&[registered("r1", "a", "p1", 100), anonymized("n1", "a", "p1", 200, CT)])).unwrap();
    parts.merge(own.clone());
    let ids: Vec<&str> = parts.sightings.iter().map(|s| s.event_id.as_str()).collect();
    assert_eq!(ids, vec!["r0", "r1", "n1", "n2"]);
    assert_eq!(parts.output.as_ref().map(|o| o.event_id.as_str()), Some("n2"));
    let (ts, stale) = parts.stale_instance_keys().unwrap();
    assert_eq!((ts, stale.len()), (stored.write_ts, 1));
    // Merging twice changes nothing; a newer stored output is not replaced by an older own one.
    parts.merge(own);
    assert_eq!(parts.sightings.len(), 4);
    let mut newer = ImageParts::from_rows(partition(&[anonymized("n3", "a", "p1", 400, CT)])).unwrap();
    let CatalogEvent::Anonymized(old) = anonymized("n1", "a", "p1", 200, CT) else {
        unreachable!()
    };
    let mut mine = ImageParts::default();
    mine.keep_newer_output(StoredOutput::of(&old, now_micros()));
    newer.merge(mine);
    assert_eq!(newer.output.as_ref().map(|o| o.event_id.as_str()), Some("n3"));
}

#[test]
fn an_output_without_a_study_writes_no_instance_row() {
    let mut png = anonymized("n1", "a", "p1", 200, CT);
    if let CatalogEvent::Anonymized(a) = &mut png {
        a.study_uid = None;
    }
    let CatalogEvent::Anonymized(a) = &png else { unreachable!() };
    assert!(InstanceKey::of(&StoredOutput::of(a, 0)).is_none());
    let k = InstanceKey::from_parts(Some("1"), None, None, None).unwrap();
    assert_eq!((k.series.as_str(), k.number, k.sop.as_str()), ("", ABSENT_NUMBER, ""));
    assert!(InstanceKey::from_parts(Some(""), Some("1"), Some(1), Some("1")).is_none());
}

#[test]
fn a_user_is_created_at_its_first_registration_with_its_latest_role() {
    let row = |at: i64, id: &str, role: &str| UserRow {
        registered_at: at,
        event_id: id.into(),
        user_role: Some(role.into()),
        organization: None,
    };
    let u = fold_user(
        "u1",
        vec![row(30, "w3", "admin"), row(10, "w1", "proveedor"), row(20, "w2", "consumidor")],
    )
    .unwrap();
    assert_eq!((u.created_at, u.role.as_str()), (10, "admin"));
    assert!(fold_user("u1", Vec::new()).is_none());
}

fn instance(study: &str, series: Option<&str>, n: Option<i32>, modality: &str, patient: &str, date: &str) -> InstanceRow {
    InstanceRow {
        study_uid: study.into(),
        series_uid: series.map(str::to_owned),
        instance_number: n,
        sop_instance_uid: Some(format!("{}.{}", series.unwrap_or("x"), n.unwrap_or(0))),
        image_id: "img".into(),
        output_event: Some("n".into()),
        patient_id: Some(patient.into()),
        study_date: Some(date.into()),
        modality: Some(modality.into()),
        series_number: n,
    }
}

#[test]
fn study_and_series_summaries_count_as_sqlite_does() {
    let rows = vec![
        instance("1.1", Some("1.1.1"), Some(1), "CT", "PSEUDO-A", "20200105"),
        instance("1.1", Some("1.1.1"), Some(2), "CT", "PSEUDO-A", "20200105"),
        instance("1.1", Some("1.1.2"), Some(7), "MR", "PSEUDO-A", "20200105"),
        instance("1.1", None, None, "OT", "PSEUDO-A", "20200106"),
    ];
    let s = study_summary("1.1".into(), &rows, None).unwrap();
    assert_eq!(
        (s.modalities, s.series, s.instances, s.study_date.as_deref()),
        (vec!["CT".to_owned(), "MR".to_owned(), "OT".to_owned()], 2, 4, Some("20200106"))
    );
    // A study matches a Modality when any instance has it; its counts stay whole.
    assert_eq!(study_summary("1.1".into(), &rows, Some("mr")).unwrap().instances, 4);
    assert!(study_summary("1.1".into(), &rows, Some("US")).is_none());
    let series = series_summaries("1.1", &rows, None);
    let got: Vec<_> = series
        .iter()
        .map(|s| (s.series_uid.as_str(), s.modality.as_deref(), s.series_number, s.instances))
        .collect();
    assert_eq!(got, vec![("1.1.1", Some("CT"), Some(1), 2), ("1.1.2", Some("MR"), Some(7), 1)]);
    assert_eq!(series_summaries("1.1", &rows, Some("mr")).len(), 1);
}

#[test]
fn instance_filters_are_sqlites_dicom_where() {
    let r = instance("1.1", Some("1.1.2"), Some(7), "MR", "PSEUDO-A", "20200105");
    let q = |f: fn(&mut DicomQuery)| {
        let mut q = DicomQuery {
            limit: 10,
            ..DicomQuery::default()
        };
        f(&mut q);
        q
    };
    assert!(r.matches(&q(|_| {})));
    assert!(r.matches(&q(|q| q.patient_id = Some("PSEUDO-?".into()))));
    assert!(!r.matches(&q(|q| q.patient_id = Some("PSEUDO-B".into()))));
    assert!(r.matches(&q(|q| q.study_date_from = Some("20200105".into()))));
    assert!(!r.matches(&q(|q| q.study_date_from = Some("20200106".into()))));
    assert!(r.matches(&q(|q| q.study_date_to = Some("20200105".into()))));
    assert!(!r.matches(&q(|q| q.study_date_to = Some("20191231".into()))));
    assert!(!r.matches(&q(|q| q.series_uid = Some("1.1.1".into()))));
    assert!(!r.matches(&q(|q| q.study_uid = Some("2.2".into()))));
    assert!(r.has_modality(Some("mr")) && !r.has_modality(Some("CT")) && r.has_modality(None));
    let mut absent = r.clone();
    absent.patient_id = None;
    absent.study_date = None;
    assert!(!absent.matches(&q(|q| q.patient_id = Some("*".into()))));
    assert!(!absent.matches(&q(|q| q.study_date_to = Some("99999999".into()))));
    // A study index combination prefilters the same way; empty text is absent.
    let combo = IndexRow {
        study_uid: "1.1".into(),
        patient_id: "PSEUDO-A".into(),
        study_date: "20200105".into(),
        modality: "MR".into(),
    };
    assert!(combo.may_match(&q(|q| q.modality = Some("mr".into()))));
    assert!(!combo.may_match(&q(|q| q.modality = Some("CT".into()))));
    assert!(!combo.may_match(&q(|q| q.study_date_from = Some("20210101".into()))));
    let blank = IndexRow {
        patient_id: String::new(),
        ..combo
    };
    assert!(!blank.may_match(&q(|q| q.patient_id = Some("*".into()))));
}

#[test]
fn image_filters_compare_as_sqlite_does() {
    let (img, _) = fold(&[registered("r1", "a", "p1", 100)]).unwrap();
    let f = ImageFilter::default();
    assert!(image_matches(&f, &img));
    assert!(image_matches(
        &ImageFilter {
            modality: Some("rx".into()),
            provider_id: Some("p1".into()),
            estado: Some(Estado::Registrada),
            region_anatomica: Some("torax".into()),
            created_from: Some(100),
            created_to: Some(101),
            offered_only: false,
        },
        &img
    ));
    for other in [
        ImageFilter {
            modality: Some("ct".into()),
            ..f.clone()
        },
        ImageFilter {
            provider_id: Some("p2".into()),
            ..f.clone()
        },
        ImageFilter {
            estado: Some(Estado::Anonimizada),
            ..f.clone()
        },
        ImageFilter {
            created_to: Some(100),
            ..f.clone()
        },
        ImageFilter {
            created_from: Some(101),
            ..f.clone()
        },
    ] {
        assert!(!image_matches(&other, &img), "{other:?}");
    }
}

#[test]
fn a_page_keeps_limit_items_and_a_cursor_only_when_more_exist() {
    let mut items = vec![1, 2, 3];
    assert_eq!(page_end(&mut items, 2, |i| i.to_string()), Some("2".into()));
    assert_eq!(items, vec![1, 2]);
    let mut few = vec![1];
    assert_eq!(page_end(&mut few, 2, |i| i.to_string()), None);
    let mut none: Vec<i32> = vec![1];
    assert_eq!(page_end(&mut none, 0, |i| i.to_string()), None);
}

#[test]
fn every_statement_names_only_tables_and_columns_of_the_schema() {
    const KEYWORDS: [&str; 15] = [
        "select",
        "from",
        "where",
        "and",
        "insert",
        "into",
        "values",
        "using",
        "timestamp",
        "limit",
        "order",
        "by",
        "asc",
        "desc",
        "delete",
    ];
    let mut tables = schema_columns("002_catalog.cql");
    assert_eq!(tables.len(), 9, "{:?}", tables.keys());
    tables.extend(schema_columns("007_provider_studies.cql"));
    let all = [
        EVENT_KNOWN,
        EVENT_RECORD,
        IMAGE_REGISTERED,
        IMAGE_ANONYMIZED,
        IMAGE_REJECTED,
        IMAGE_READ,
        INSTANCE_WRITE,
        INSTANCE_DELETE,
        INSTANCES_OF_STUDY,
        INSTANCES_OF_SERIES,
        STUDY_INDEX_WRITE,
        STUDY_INDEX_SCAN,
        PATIENT_INDEX_WRITE,
        PATIENT_INDEX_SCAN,
        USER_WRITE,
        USER_READ,
        USAGE_WRITE,
        USAGE_PAGE,
        LISTING_WRITE,
        LISTING_NEWEST,
        LISTING_OLDEST,
        BUCKET_WRITE,
        BUCKETS_NEWEST,
        BUCKETS_OLDEST,
        provider::WRITE,
        provider::SCAN,
        provider::OF_STUDY,
    ];
    for cql in all {
        assert_names_only_schema(cql, &tables, &KEYWORDS, false);
    }
    // The value-writing statements bind one marker per column, plus the timestamp where they name one.
    for cql in [
        IMAGE_REGISTERED,
        IMAGE_ANONYMIZED,
        IMAGE_REJECTED,
        INSTANCE_WRITE,
        USAGE_WRITE,
        USER_WRITE,
        LISTING_WRITE,
        provider::WRITE,
    ] {
        assert_binds_one_marker_per_column(cql);
    }
}
