//! The conformance suite for the store ports, written once and run against
//! every adapter: SQLite always, ScyllaDB when `SCYLLA_NODES` is set. It
//! panics with a message on the first broken rule, like any test.

use super::catalog::{CatalogEvent, CatalogStore, DicomQuery, Estado, ImageFilter, UsageBy};
use super::identity::{ApiKey, Created, IdentityStore, LockoutRule, NewAccount, RefreshToken, Rotation};
use super::ledger::{Applied, DailyUse, EntryKind, LedgerEntry, LedgerStore, Refusal};
mod analysis;
pub mod catalog_consent;
mod consumer;
mod imports;
mod ingest;
pub mod notifications;
pub mod registry;

pub use analysis::analyzed;
pub use consumer::consumer_ledger;
pub use imports::imports;
pub use ingest::{ingest, new_image};

use alpes_schemas::{EventoUsoDatos, ImagenAnonimizada, ImagenRechazada, ImagenRegistrada, Profile, UsuarioRegistrado};

/// A usage of `amount` minor units (EUR) crediting `provider`, at time 1000.
pub fn usage(event_id: &str, provider: &str, amount: i64) -> LedgerEntry {
    LedgerEntry {
        event_id: event_id.into(),
        user_id: provider.into(),
        kind: EntryKind::Usage,
        amount_minor: amount,
        currency: "EUR".into(),
        occurred_at: 1000,
        image_id: Some(format!("img-{event_id}")),
        counterparty: Some("consumer-1".into()),
    }
}

/// A payout of `amount` minor units (EUR) to `provider` with `reference`, at time 2000.
pub fn payment(event_id: &str, provider: &str, amount: i64, reference: &str) -> LedgerEntry {
    LedgerEntry {
        event_id: event_id.into(),
        user_id: provider.into(),
        kind: EntryKind::Payment,
        amount_minor: amount,
        currency: "EUR".into(),
        occurred_at: 2000,
        image_id: None,
        counterparty: Some(reference.into()),
    }
}

async fn pending(store: &dyn LedgerStore, user: &str) -> i64 {
    store
        .balances(user)
        .await
        .expect("balances")
        .iter()
        .find(|b| b.currency == "EUR")
        .map_or(0, |b| b.pending_minor)
}

/// Every rule of [`LedgerStore`], on an empty store.
pub async fn ledger(store: &dyn LedgerStore) {
    // Credits apply once per event id, inside a batch and across batches.
    let first = store
        .apply(vec![usage("u1", "p", 100), usage("u2", "p", 50), usage("u1", "p", 100)])
        .await
        .expect("apply");
    assert_eq!(first, vec![Applied::Recorded, Applied::Recorded, Applied::Duplicate]);
    assert_eq!(
        store.apply(vec![usage("u2", "p", 50)]).await.expect("apply"),
        vec![Applied::Duplicate]
    );
    let b = store.balances("p").await.expect("balances");
    assert_eq!(b.len(), 1);
    assert_eq!(
        (b[0].accrued_minor, b[0].paid_minor, b[0].pending_minor, b[0].uses),
        (150, 0, 150, 2)
    );
    assert_eq!(b[0].as_of, 1000);

    // An older event (out of order) never moves as_of back.
    let mut late = usage("u3", "p", 10);
    late.occurred_at = 500;
    store.apply(vec![late]).await.expect("apply");
    let b = store.balances("p").await.expect("balances");
    assert_eq!((b[0].pending_minor, b[0].as_of), (160, 1000));

    // Payouts lower the pending balance; a repeated reference, an amount above
    // the balance or a non-positive amount is refused and moves nothing.
    let applied = store
        .apply(vec![
            payment("pay1", "p", 60, "ref-1"),
            payment("pay2", "p", 10, "ref-1"),
            payment("pay3", "p", 101, "ref-3"),
            payment("pay4", "p", 0, "ref-4"),
        ])
        .await
        .expect("apply");
    assert_eq!(
        applied,
        vec![
            Applied::Recorded,
            Applied::Refused(Refusal::RepeatedReference),
            Applied::Refused(Refusal::InsufficientBalance { pending_minor: 100 }),
            Applied::Refused(Refusal::InvalidAmount),
        ]
    );
    let b = store.balances("p").await.expect("balances");
    assert_eq!((b[0].accrued_minor, b[0].paid_minor, b[0].pending_minor), (160, 60, 100), "{b:?}");
    // Only an accepted payment takes its reference.
    assert!(store.reference_paid("p", "ref-1").await.expect("reference"));
    assert!(!store.reference_paid("p", "ref-3").await.expect("reference"), "ref-3 was refused");
    assert!(
        !store.reference_paid("q", "ref-1").await.expect("reference"),
        "references are per user"
    );
    assert_eq!(b[0].as_of, 2000);

    // A refused payment stays refused on replay, even once the balance would cover it,
    // and the replay gives its refusal back.
    store.apply(vec![usage("u4", "p", 1000)]).await.expect("apply");
    let replay = store
        .apply(vec![payment("pay3", "p", 101, "ref-3"), payment("pay1", "p", 60, "ref-1")])
        .await
        .expect("apply");
    assert_eq!(
        replay,
        vec![
            Applied::RefusedBefore(Refusal::InsufficientBalance { pending_minor: 100 }),
            Applied::Duplicate
        ]
    );
    assert_eq!(pending(store, "p").await, 1100);

    // Balances are per user and per currency.
    let mut cop = usage("u5", "p", 7);
    cop.currency = "COP".into();
    store.apply(vec![cop, usage("u6", "q", 9)]).await.expect("apply");
    let b = store.balances("p").await.expect("balances");
    assert_eq!(
        b.iter().map(|b| (b.currency.as_str(), b.pending_minor)).collect::<Vec<_>>(),
        vec![("COP", 7), ("EUR", 1100)]
    );
    assert_eq!(pending(store, "q").await, 9);
    assert!(store.balances("nobody").await.expect("balances").is_empty());

    // The ledger pages newest first, and a page boundary holds while new entries arrive.
    let page = store.movements("p", None, 3).await.expect("page");
    let ids: Vec<_> = page.entries.iter().map(|e| e.event_id.as_str()).collect();
    assert_eq!(ids, vec!["u5", "u4", "pay4"]);
    assert_eq!(page.entries[2].kind, EntryKind::RefusedPayment);
    store.apply(vec![usage("u7", "p", 1)]).await.expect("apply");
    let mut seen = ids.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let mut cursor = page.next;
    while let Some(c) = cursor {
        let page = store.movements("p", Some(&c), 3).await.expect("page");
        seen.extend(page.entries.iter().map(|e| e.event_id.clone()));
        cursor = page.next;
    }
    assert_eq!(seen, vec!["u5", "u4", "pay4", "pay3", "pay2", "pay1", "u3", "u2", "u1"]);
    assert!(store.movements("p", Some("not-a-cursor"), 3).await.is_err());
    let usage_row = store.movements("q", None, 10).await.expect("page").entries;
    assert_eq!(usage_row, vec![usage("u6", "q", 9)]);
    consumer_ledger(store).await;
}

/// `ImagenRegistrada` of `image` by `provider` at `at`.
pub fn registered(event_id: &str, image: &str, provider: &str, at: i64) -> CatalogEvent {
    CatalogEvent::Registered(ImagenRegistrada {
        http_request_id: None,
        event_id: event_id.into(),
        occurred_at: at,
        actor: provider.into(),
        image_id: image.into(),
        provider_id: provider.into(),
        blob_key: format!("raw/{image}"),
        sha256: format!("sha-{image}"),
        size_bytes: 100,
        media_type: "application/dicom".into(),
        profile: Profile::default(),
        source: "rest".into(),
        request_id: format!("req-{event_id}"),
        tipo_imagen: Some("rx".into()),
        region_anatomica: Some("torax".into()),
        institucion_id: None,
    })
}

/// The DICOM identity of an anonymized instance: (study, series, sop, modality, patient, study date).
pub type Instance<'a> = (&'a str, &'a str, &'a str, &'a str, &'a str, &'a str);

/// `ImagenAnonimizada` of `image` by `provider` at `at`, as instance `i`.
pub fn anonymized(event_id: &str, image: &str, provider: &str, at: i64, i: Instance<'_>) -> CatalogEvent {
    let (study, series, sop, modality, patient, date) = i;
    CatalogEvent::Anonymized(Box::new(ImagenAnonimizada {
        http_request_id: None,
        event_id: event_id.into(),
        occurred_at: at,
        actor: "anonymizer".into(),
        image_id: image.into(),
        provider_id: provider.into(),
        request_id: format!("req-{event_id}"),
        blob_key: format!("anonymized/{event_id}"),
        sha256: format!("sha-{event_id}"),
        size_bytes: 90,
        media_type: "application/dicom".into(),
        study_uid: Some(study.into()),
        series_uid: Some(series.into()),
        sop_instance_uid: Some(sop.into()),
        modality: Some(modality.into()),
        rows: 8,
        columns: 8,
        frames: 1,
        action_counts: [("remove".to_owned(), 3)].into(),
        uids_remapped: 3,
        transfer_syntax_in: None,
        transfer_syntax_out: None,
        profile: Profile::default(),
        engine_version: "test".into(),
        duration_micros: 1,
        body_part: None,
        regions_burned: 0,
        tipo_imagen: Some("rx".into()),
        region_anatomica: Some("torax".into()),
        patient_id: Some(patient.into()),
        study_date: Some(date.into()),
        sop_class_uid: Some("1.2.840.10008.5.1.4.1.1.2".into()),
        series_number: Some(1),
        instance_number: sop.rsplit('.').next().and_then(|n| n.parse().ok()),
        sha256_entrada: Some(format!("raw-{event_id}")),
        regiones_por_origen: Some([("rule".to_owned(), 1), ("ocr".to_owned(), 2)].into()),
        iod: Some("ct-image".into()),
        conservados_por_iod: Some(1),
        institucion_id: None,
    }))
}

/// `ImagenRechazada` of `image` at `at`.
pub fn rejected(event_id: &str, image: &str, provider: &str, at: i64) -> CatalogEvent {
    CatalogEvent::Rejected(ImagenRechazada {
        http_request_id: None,
        event_id: event_id.into(),
        occurred_at: at,
        actor: "anonymizer".into(),
        image_id: Some(image.into()),
        provider_id: Some(provider.into()),
        request_id: None,
        reason: "not_dicom".into(),
        message: "not a DICOM file".into(),
        source_topic: None,
        source_partition: None,
        source_offset: None,
    })
}

/// `UsuarioRegistrado` of `user` with `role` at `at`.
pub fn user(event_id: &str, user: &str, role: &str, at: i64) -> CatalogEvent {
    CatalogEvent::User(UsuarioRegistrado {
        http_request_id: None,
        event_id: event_id.into(),
        occurred_at: at,
        actor: "admin".into(),
        user_id: user.into(),
        role: role.into(),
        organization: None,
    })
}

/// `EventoUsoDatos`: `consumer` downloaded `image` of `provider` at `at`.
pub fn used(event_id: &str, image: &str, consumer: &str, provider: &str, at: i64) -> CatalogEvent {
    CatalogEvent::Usage(EventoUsoDatos {
        http_request_id: None,
        event_id: event_id.into(),
        occurred_at: at,
        actor: consumer.into(),
        consumer_id: consumer.into(),
        provider_id: provider.into(),
        image_id: image.into(),
        bytes: 90,
        amount_minor: 25,
        currency: "EUR".into(),
        dedupe_key: Some(format!("{consumer}/{image}")),
    })
}

async fn estado(store: &dyn CatalogStore, image: &str) -> Option<Estado> {
    store.image(image).await.expect("image").map(|i| i.estado)
}

async fn image_ids(store: &dyn CatalogStore, filter: &ImageFilter) -> Vec<String> {
    let page = store.images(filter, None, 1000).await.expect("images");
    assert!(page.next.is_none());
    page.images.into_iter().map(|i| i.image_id).collect()
}

/// Every rule of [`CatalogStore`], on an empty store.
pub async fn catalog(store: &dyn CatalogStore) {
    const CT: Instance<'static> = ("1.1", "1.1.1", "1.1.1.1", "CT", "PSEUDO-A", "20200105");
    const CT2: Instance<'static> = ("1.1", "1.1.1", "1.1.1.2", "CT", "PSEUDO-A", "20200105");

    // Applied once per event id.
    let n = store
        .apply(vec![registered("r1", "a", "p1", 100), registered("r1", "a", "p1", 100)])
        .await
        .expect("apply");
    assert_eq!(n, 1);
    assert_eq!(store.apply(vec![registered("r1", "a", "p1", 100)]).await.expect("apply"), 0);
    let a = store.image("a").await.expect("image").expect("a exists");
    assert_eq!(
        (a.estado, a.created_at, a.modality.as_deref()),
        (Estado::Registrada, 100, Some("RX"))
    );
    assert!(a.anonymized.is_none());
    assert!(store.image("nope").await.expect("image").is_none());

    // Forward only: anonymized stays anonymized whatever comes after, in any order.
    store
        .apply(vec![
            anonymized("n1", "a", "p1", 200, CT),
            rejected("x1", "a", "p1", 300),
            registered("r2", "a", "p1", 400),
        ])
        .await
        .expect("apply");
    let a = store.image("a").await.expect("image").expect("a");
    assert_eq!(
        (a.estado, a.created_at, a.modality.as_deref()),
        (Estado::Anonimizada, 100, Some("CT"))
    );
    let out = a.anonymized.clone().expect("output");
    assert_eq!(
        (out.blob_key.as_str(), out.patient_id.as_deref()),
        ("anonymized/n1", Some("PSEUDO-A"))
    );
    assert_eq!(out.report.value()["uids_remapped"], 3);
    // A newer output replaces it; an older one arriving late does not.
    store
        .apply(vec![anonymized("n3", "a", "p1", 500, CT), anonymized("n2", "a", "p1", 250, CT)])
        .await
        .expect("apply");
    let out = store
        .image("a")
        .await
        .expect("image")
        .expect("a")
        .anonymized
        .clone()
        .expect("output");
    assert_eq!(out.blob_key, "anonymized/n3");
    // Out of order: the output before the registration; a rejection, then a success.
    store
        .apply(vec![anonymized("n4", "b", "p1", 220, CT2), registered("r4", "b", "p1", 210)])
        .await
        .expect("apply");
    let b = store.image("b").await.expect("image").expect("b");
    assert_eq!((b.estado, b.created_at), (Estado::Anonimizada, 210));
    store
        .apply(vec![rejected("x5", "c", "p2", 320), registered("r5", "c", "p2", 300)])
        .await
        .expect("apply");
    assert_eq!(estado(store, "c").await, Some(Estado::Rechazada));
    let c = store.image("c").await.expect("image").expect("c");
    assert_eq!((c.created_at, c.rejection_reason.as_deref()), (300, Some("not_dicom")));

    // Filters.
    let second = ("1.1", "1.1.2", "1.1.2.7", "MR", "PSEUDO-A", "20200105");
    let other = ("2.2", "2.2.1", "2.2.1.1", "CT", "PSEUDO-B", "20211231");
    store
        .apply(vec![
            registered("r6", "d", "p2", 600),
            anonymized("n6", "d", "p2", 610, second),
            registered("r7", "e", "p2", 700),
            anonymized("n7", "e", "p2", 710, other),
        ])
        .await
        .expect("apply");
    let all = ImageFilter::default();
    assert_eq!(image_ids(store, &all).await, vec!["e", "d", "c", "b", "a"]);
    let by = |f: ImageFilter| async move { image_ids(store, &f).await };
    assert_eq!(
        by(ImageFilter {
            provider_id: Some("p1".into()),
            ..all.clone()
        })
        .await,
        vec!["b", "a"]
    );
    assert_eq!(
        by(ImageFilter {
            modality: Some("ct".into()),
            ..all.clone()
        })
        .await,
        vec!["e", "b", "a"]
    );
    assert_eq!(
        by(ImageFilter {
            estado: Some(Estado::Rechazada),
            ..all.clone()
        })
        .await,
        vec!["c"]
    );
    assert_eq!(
        by(ImageFilter {
            region_anatomica: Some("pie".into()),
            ..all.clone()
        })
        .await,
        Vec::<String>::new()
    );
    let window = ImageFilter {
        created_from: Some(210),
        created_to: Some(700),
        ..all.clone()
    };
    assert_eq!(by(window).await, vec!["d", "c", "b"]);

    // Pages newest first; a boundary holds while newer images arrive.
    let page = store.images(&all, None, 2).await.expect("page");
    let mut seen: Vec<String> = page.images.iter().map(|i| i.image_id.clone()).collect();
    assert_eq!(seen, vec!["e", "d"]);
    store.apply(vec![registered("r8", "f", "p1", 800)]).await.expect("apply");
    let mut cursor = page.next;
    while let Some(c) = cursor {
        let page = store.images(&all, Some(&c), 2).await.expect("page");
        seen.extend(page.images.iter().map(|i| i.image_id.clone()));
        cursor = page.next;
    }
    assert_eq!(seen, vec!["e", "d", "c", "b", "a"]);
    assert!(store.images(&all, Some("garbage"), 2).await.is_err());

    // QIDO over the anonymized DICOM set only.
    let q = DicomQuery {
        limit: 100,
        ..DicomQuery::default()
    };
    let studies = store.studies(&q).await.expect("studies");
    let uids: Vec<_> = studies.iter().map(|s| s.study_uid.as_str()).collect();
    assert_eq!(uids, vec!["1.1", "2.2"]);
    assert_eq!(
        (studies[0].modalities.clone(), studies[0].series, studies[0].instances),
        (vec!["CT".to_owned(), "MR".to_owned()], 2, 3)
    );
    let find = |q: DicomQuery| async move {
        store
            .studies(&q)
            .await
            .expect("studies")
            .into_iter()
            .map(|s| s.study_uid)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        find(DicomQuery {
            patient_id: Some("PSEUDO-B".into()),
            ..q.clone()
        })
        .await,
        vec!["2.2"]
    );
    assert_eq!(
        find(DicomQuery {
            patient_id: Some("PSEUDO-*".into()),
            ..q.clone()
        })
        .await,
        vec!["1.1", "2.2"]
    );
    assert_eq!(
        find(DicomQuery {
            modality: Some("MR".into()),
            ..q.clone()
        })
        .await,
        vec!["1.1"]
    );
    assert_eq!(
        find(DicomQuery {
            study_date_from: Some("20210101".into()),
            ..q.clone()
        })
        .await,
        vec!["2.2"]
    );
    assert_eq!(
        find(DicomQuery {
            study_date_to: Some("20201231".into()),
            ..q.clone()
        })
        .await,
        vec!["1.1"]
    );
    assert_eq!(
        find(DicomQuery {
            study_uid: Some("2.2".into()),
            ..q.clone()
        })
        .await,
        vec!["2.2"]
    );
    assert_eq!(
        find(DicomQuery {
            limit: 1,
            offset: 1,
            ..q.clone()
        })
        .await,
        vec!["2.2"]
    );
    let series = store
        .series(&DicomQuery {
            study_uid: Some("1.1".into()),
            ..q.clone()
        })
        .await
        .expect("series");
    let got: Vec<_> = series
        .iter()
        .map(|s| (s.series_uid.as_str(), s.modality.as_deref(), s.instances))
        .collect();
    assert_eq!(got, vec![("1.1.1", Some("CT"), 2), ("1.1.2", Some("MR"), 1)]);
    let inst = store
        .instances(&DicomQuery {
            study_uid: Some("1.1".into()),
            series_uid: Some("1.1.2".into()),
            ..q.clone()
        })
        .await
        .expect("instances");
    assert_eq!(inst.len(), 1);
    assert_eq!(inst[0].image_id, "d");
    assert_eq!(inst[0].anonymized.as_ref().and_then(|o| o.instance_number), Some(7));
    let none = store
        .instances(&DicomQuery {
            study_uid: Some("9.9".into()),
            ..q.clone()
        })
        .await
        .expect("instances");
    assert!(none.is_empty());
    // A provider's own studies: p1 has a and b in 1.1; p2 has d in 1.1 and e in 2.2. Each sees
    // only its studies, summarized over its own instances.
    let of = |provider: &str| DicomQuery {
        provider_id: Some(provider.into()),
        ..q.clone()
    };
    let p1 = store.studies(&of("p1")).await.expect("studies");
    assert_eq!(
        p1.iter().map(|s| (s.study_uid.as_str(), s.series, s.instances)).collect::<Vec<_>>(),
        vec![("1.1", 1, 2)]
    );
    assert_eq!(p1[0].modalities, vec!["CT".to_owned()]);
    let p2 = store.studies(&of("p2")).await.expect("studies");
    assert_eq!(
        p2.iter().map(|s| (s.study_uid.as_str(), s.series, s.instances)).collect::<Vec<_>>(),
        vec![("1.1", 1, 1), ("2.2", 1, 1)]
    );
    assert_eq!(
        find(DicomQuery {
            modality: Some("CT".into()),
            ..of("p2")
        })
        .await,
        vec!["2.2"]
    );
    let series = store
        .series(&DicomQuery {
            study_uid: Some("1.1".into()),
            ..of("p2")
        })
        .await
        .expect("series");
    assert_eq!(series.iter().map(|s| s.series_uid.as_str()).collect::<Vec<_>>(), vec!["1.1.2"]);
    let mine = |q: DicomQuery| async move {
        let found = store.instances(&q).await.expect("instances");
        found.into_iter().map(|i| i.image_id).collect::<Vec<_>>()
    };
    assert_eq!(mine(of("p1")).await, vec!["a", "b"]);
    assert_eq!(
        mine(DicomQuery {
            study_uid: Some("2.2".into()),
            ..of("p1")
        })
        .await,
        Vec::<String>::new()
    );
    assert_eq!(
        mine(DicomQuery {
            patient_id: Some("PSEUDO-A".into()),
            ..of("p2")
        })
        .await,
        vec!["d"]
    );
    assert!(store.studies(&of("p9")).await.expect("studies").is_empty());
    // Keys of lower levels: every series here is number 1, instance numbers are the SOP
    // Instance UIDs' last parts, and every SOP class is CT Image Storage.
    let with = |f: fn(&mut DicomQuery)| {
        let mut with = q.clone();
        f(&mut with);
        with
    };
    assert_eq!(mine(with(|q| q.instance_number = Some(7))).await, vec!["d"]);
    assert_eq!(mine(with(|q| q.instance_number = Some(1))).await, vec!["a", "e"]);
    assert_eq!(mine(with(|q| q.series_number = Some(2))).await, Vec::<String>::new());
    let numbered = store.series(&with(|q| q.series_number = Some(1))).await.expect("series");
    assert_eq!(numbered.len(), 3, "{numbered:?}");
    assert_eq!(
        mine(with(|q| q.sop_class_uid = Some("1.2.840.10008.5.1.4.1.1.4".into()))).await,
        Vec::<String>::new()
    );
    let ct = with(|q| {
        q.sop_class_uid = Some("1.2.840.10008.5.1.4.1.1.2".into());
        q.study_uid = Some("2.2".into());
    });
    assert_eq!(mine(ct).await, vec!["e"]);
    // The same SOP Instance UID uploaded again (other bytes, so another image): the study and
    // the series still count it once, as WADO-RS serves it once.
    store
        .apply(vec![registered("r9", "g", "p1", 900), anonymized("n9", "g", "p1", 910, CT)])
        .await
        .expect("apply");
    let again = store.studies(&q).await.expect("studies");
    assert_eq!((again[0].study_uid.as_str(), again[0].series, again[0].instances), ("1.1", 2, 3));
    let series = store
        .series(&DicomQuery {
            study_uid: Some("1.1".into()),
            ..q.clone()
        })
        .await
        .expect("series");
    assert_eq!(series[0].instances, 2, "{series:?}");

    // Users.
    store
        .apply(vec![
            user("w1", "u1", "proveedor", 10),
            user("w2", "u2", "consumidor", 20),
            user("w3", "u3", "consumidor", 30),
        ])
        .await
        .expect("apply");
    let u2 = store.user("u2").await.expect("user").expect("u2");
    assert_eq!((u2.role.as_str(), u2.created_at), ("consumidor", 20));
    assert!(store.user("u9").await.expect("user").is_none());
    let page = store.users(None, None, 2).await.expect("users");
    assert_eq!(page.users.iter().map(|u| u.user_id.as_str()).collect::<Vec<_>>(), vec!["u1", "u2"]);
    let rest = store.users(None, page.next.as_deref(), 2).await.expect("users");
    assert_eq!((rest.users.len(), rest.next), (1, None));
    assert_eq!(store.users(Some("consumidor"), None, 10).await.expect("users").users.len(), 2);

    // Usage, by image and by consumer, once per event id, newest first.
    store
        .apply(vec![
            used("k1", "a", "u2", "p1", 1000),
            used("k2", "a", "u3", "p1", 1001),
            used("k3", "d", "u2", "p2", 1002),
            used("k1", "a", "u2", "p1", 1000),
        ])
        .await
        .expect("apply");
    let by_image = store.usage(UsageBy::Image("a"), None, 1).await.expect("usage");
    assert_eq!(by_image.usage[0].event_id, "k2");
    let older = store.usage(UsageBy::Image("a"), by_image.next.as_deref(), 1).await.expect("usage");
    assert_eq!((older.usage[0].event_id.as_str(), older.next), ("k1", None));
    let by_consumer = store.usage(UsageBy::Consumer("u2"), None, 10).await.expect("usage");
    let ids: Vec<_> = by_consumer.usage.iter().map(|u| u.event_id.as_str()).collect();
    assert_eq!(ids, vec!["k3", "k1"]);
    assert_eq!(by_consumer.usage[1].charge_key, "u2/a");

    // What a consumer used since a time, whatever order its downloads arrived in (90 bytes each).
    store
        .apply(vec![
            used("k5", "a", "u5", "p1", 7_200_500),
            used("k4", "a", "u5", "p1", 3_600_000),
            used("k6", "d", "u5", "p2", 10_000_000),
        ])
        .await
        .expect("apply");
    let since = |t| store.used_since("u5", t);
    assert_eq!(since(3_600_000).await.expect("used"), DailyUse { downloads: 3, bytes: 270 });
    assert_eq!(since(3_600_001).await.expect("used"), DailyUse { downloads: 2, bytes: 180 });
    assert_eq!(since(10_000_001).await.expect("used"), DailyUse::default());
    assert_eq!(store.used_since("u2", 1001).await.expect("used").downloads, 1);
    analysis::analyses(store).await;
}

/// A new account with `email` and `role`, created at time 1000.
pub fn account(user_id: &str, email: &str, role: alpes_domain::caller::Role) -> NewAccount {
    NewAccount {
        user_id: user_id.into(),
        nombre: format!("Name of {user_id}"),
        email: email.into(),
        password_hash: "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaA".into(),
        role,
        organization: None,
        created_at: 1000,
        created_by: user_id.into(),
    }
}

/// A refresh token of `family` for `user`, issued at `at`, valid 1,000 ms.
pub fn refresh(token_hash: &str, family: &str, user: &str, at: i64) -> RefreshToken {
    RefreshToken {
        token_hash: token_hash.into(),
        family_id: family.into(),
        user_id: user.into(),
        role: alpes_domain::caller::Role::Consumidor,
        issued_at: at,
        expires_at: at + 1000,
    }
}

/// Every rule of [`IdentityStore`], on an empty store.
pub async fn identity(store: &dyn IdentityStore) {
    use alpes_domain::caller::Role;
    // An email is unique; the second account with it is refused and nothing is written.
    assert!(!store.has_admin().await.expect("has_admin"));
    assert_eq!(
        store
            .create_account(account("u1", "ana@example.org", Role::Proveedor))
            .await
            .expect("create"),
        Created::Created
    );
    assert_eq!(
        store
            .create_account(account("u2", "ana@example.org", Role::Admin))
            .await
            .expect("create"),
        Created::EmailTaken
    );
    assert!(store.account("u2").await.expect("account").is_none());
    assert!(!store.has_admin().await.expect("has_admin"));
    store
        .create_account(account("u3", "root@example.org", Role::Admin))
        .await
        .expect("create");
    assert!(store.has_admin().await.expect("has_admin"));
    let a = store.account_by_email("ana@example.org").await.expect("by email").expect("found");
    assert_eq!(
        (a.user_id.as_str(), a.role, a.failed_logins, a.locked_until),
        ("u1", Role::Proveedor, 0, None)
    );
    assert!(store.account_by_email("nobody@example.org").await.expect("by email").is_none());

    // An account is unpublished until its event is acknowledged; one that could not be announced is removed.
    let unpublished: Vec<_> = store
        .unpublished_accounts()
        .await
        .expect("unpublished")
        .into_iter()
        .map(|a| a.user_id)
        .collect();
    assert_eq!(unpublished, vec!["u1", "u3"]);
    store.mark_published("u3").await.expect("mark");
    assert!(store.account("u3").await.expect("account").expect("found").published);
    store
        .create_account(account("u4", "gone@example.org", Role::Consumidor))
        .await
        .expect("create");
    store.delete_account("u4").await.expect("delete");
    assert!(store.account("u4").await.expect("account").is_none());
    assert_eq!(
        store
            .create_account(account("u5", "gone@example.org", Role::Consumidor))
            .await
            .expect("create"),
        Created::Created,
        "the email is free again"
    );

    // Failures lock at the limit within the window; a success clears them.
    let rule = LockoutRule {
        max_failures: 3,
        window_ms: 60_000,
        lock_ms: 300_000,
    };
    assert_eq!(store.record_failure("u1", 10_000, rule).await.expect("fail").count, 1);
    assert_eq!(store.record_failure("u1", 11_000, rule).await.expect("fail").locked_until, None);
    let third = store.record_failure("u1", 12_000, rule).await.expect("fail");
    assert_eq!((third.count, third.locked_until), (3, Some(312_000)));
    let a = store.account("u1").await.expect("account").expect("found");
    assert_eq!(
        (a.failed_logins, a.first_failure_at, a.locked_until),
        (3, Some(10_000), Some(312_000))
    );
    store.record_success("u1", 400_000).await.expect("success");
    let a = store.account("u1").await.expect("account").expect("found");
    assert_eq!((a.failed_logins, a.locked_until, a.last_login_at), (0, None, Some(400_000)));
    assert!(
        store.record_failure("nobody", 1, rule).await.is_err(),
        "no account, nothing to count"
    );

    // Refresh tokens rotate once; a reused one revokes its whole family.
    store.insert_refresh(refresh("r1", "fam", "u1", 100)).await.expect("insert");
    let rotated = store.rotate_refresh("r1", "r2", 1200, 200).await.expect("rotate");
    assert_eq!(
        rotated,
        Rotation::Rotated {
            user_id: "u1".into(),
            role: Role::Consumidor,
            family_id: "fam".into()
        }
    );
    assert_eq!(
        store.rotate_refresh("r1", "r3", 1300, 300).await.expect("reuse"),
        Rotation::Reused { user_id: "u1".into() }
    );
    assert_eq!(
        store.rotate_refresh("r2", "r4", 1310, 310).await.expect("revoked"),
        Rotation::Invalid,
        "the reuse revoked r2 too"
    );
    assert_eq!(store.rotate_refresh("zz", "r5", 1001, 1).await.expect("unknown"), Rotation::Invalid);
    store.insert_refresh(refresh("e1", "fam2", "u1", 100)).await.expect("insert");
    assert_eq!(
        store.rotate_refresh("e1", "e2", 6000, 5000).await.expect("expired"),
        Rotation::Invalid
    );
    store.insert_refresh(refresh("l1", "fam3", "u1", 100)).await.expect("insert");
    assert!(store.revoke_refresh_family("l1", 150).await.expect("logout"));
    assert!(!store.revoke_refresh_family("nope", 150).await.expect("logout"));
    assert_eq!(
        store.rotate_refresh("l1", "l2", 1160, 160).await.expect("after logout"),
        Rotation::Invalid
    );

    // A revoked jti stays revoked until it expires.
    let far = 4_000_000_000_000;
    store.revoke_jti("j1", far).await.expect("revoke");
    assert!(store.jti_revoked("j1", 1).await.expect("revoked"));
    assert!(!store.jti_revoked("j1", far + 1).await.expect("expired"));
    assert!(!store.jti_revoked("j2", 1).await.expect("other"));

    // API keys: stored hashed, listed newest first, revoked once, touched.
    for (id, at) in [("k1", 10), ("k2", 20)] {
        store
            .insert_api_key(ApiKey {
                key_id: id.into(),
                key_hash: format!("hash-{id}"),
                role: Role::Proveedor,
                user_id: "u1".into(),
                name: "pacs bridge".into(),
                created_by: "u3".into(),
                created_at: at,
                revoked_at: None,
                last_used_at: None,
            })
            .await
            .expect("insert key");
    }
    let keys: Vec<_> = store.api_keys().await.expect("keys").into_iter().map(|k| k.key_id).collect();
    assert_eq!(keys, vec!["k2", "k1"]);
    store.touch_api_key("k1", 500).await.expect("touch");
    store.touch_api_key("k1", 400).await.expect("touch");
    assert_eq!(store.api_key("k1").await.expect("key").expect("found").last_used_at, Some(500));
    assert!(store.revoke_api_key("k1", 600).await.expect("revoke"));
    assert!(!store.revoke_api_key("k1", 700).await.expect("again"));
    assert!(!store.revoke_api_key("k9", 700).await.expect("unknown"));
    assert_eq!(store.api_key("k1").await.expect("key").expect("found").revoked_at, Some(600));
    assert!(store.api_key("k9").await.expect("key").is_none());
}

/// An audit entry by `actor` doing `action` at `at`.
pub fn audit_entry(id: &str, at: i64, actor: &str, action: &str, outcome: &str) -> alpes_schemas::RegistroAuditoria {
    alpes_schemas::RegistroAuditoria {
        event_id: id.into(),
        occurred_at: at,
        actor: actor.into(),
        actor_role: Some("proveedor".into()),
        action: action.into(),
        target: Some(format!("img-{id}")),
        route: Some("POST /imagenes".into()),
        outcome: outcome.into(),
        status: Some(202),
        reason: None,
        request_id: Some(format!("req-{id}")),
        service: "ingest".into(),
    }
}

/// The rules of every [`AuditStore`](super::audit::AuditStore).
pub async fn audit(store: &dyn super::audit::AuditStore) {
    use super::audit::{login_entry, AuditFilter};
    // Entries 0..25 at times 1000.., three actors; a redelivered entry is dropped.
    let entries: Vec<_> = (0..25)
        .map(|i| {
            let outcome = if i % 5 == 0 { "denied" } else { "ok" };
            audit_entry(&format!("e{i:02}"), 1000 + i64::from(i), &format!("u{}", i % 3), "upload", outcome)
        })
        .collect();
    store.append(entries.clone()).await.expect("append");
    let mut changed = entries[3].clone();
    changed.outcome = "error".into();
    store.append(vec![changed]).await.expect("re-append");

    // Paged newest first with a stable cursor, every entry once, unchanged.
    let all = AuditFilter::default();
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = store.page(&all, cursor.as_deref(), 10).await.expect("page");
        assert!(page.entries.len() <= 10);
        seen.extend(page.entries);
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let mut expected = entries.clone();
    expected.reverse();
    assert_eq!(seen, expected, "every entry once, newest first, as written the first time");

    // Filters combine; the time range is [from, to).
    let by = |actor: &str, outcome: &str| AuditFilter {
        actor: Some(actor.into()),
        outcome: Some(outcome.into()),
        ..AuditFilter::default()
    };
    let page = store.page(&by("u0", "denied"), None, 100).await.expect("filtered");
    let ids: Vec<_> = page.entries.iter().map(|e| e.event_id.as_str()).collect();
    assert_eq!(ids, ["e15", "e00"], "u0 has i = 0, 3, ..., 24; denied when i % 5 == 0");
    let ranged = AuditFilter {
        from: Some(1010),
        to: Some(1013),
        ..AuditFilter::default()
    };
    let page = store.page(&ranged, None, 100).await.expect("ranged");
    let ids: Vec<_> = page.entries.iter().map(|e| e.event_id.as_str()).collect();
    assert_eq!(ids, ["e12", "e11", "e10"]);
    let by_request = AuditFilter {
        request_id: Some("req-e07".into()),
        action: Some("upload".into()),
        target: Some("img-e07".into()),
        ..AuditFilter::default()
    };
    assert_eq!(
        store.page(&by_request, None, 100).await.expect("by request").entries,
        vec![entries[7].clone()]
    );
    assert!(store
        .page(
            &AuditFilter {
                action: Some("download".into()),
                ..AuditFilter::default()
            },
            None,
            100
        )
        .await
        .expect("none")
        .entries
        .is_empty());

    // Login attempts, counted per user.
    assert_eq!(store.logins("u9").await.expect("none yet"), super::audit::LoginCounts::default());
    let attempt = |id: &str, at: i64, success: bool| {
        login_entry(&alpes_schemas::IntentoLogin {
            event_id: id.into(),
            occurred_at: at,
            actor: "u9".into(),
            user_id: "u9".into(),
            success,
            reason: (!success).then(|| "bad_credentials".into()),
            http_request_id: None,
        })
    };
    store
        .append(vec![
            attempt("l1", 5000, false),
            attempt("l2", 5001, false),
            attempt("l3", 5002, true),
        ])
        .await
        .expect("logins");
    store.append(vec![attempt("l1", 5000, false)]).await.expect("redelivered");
    let counts = store.logins("u9").await.expect("counts");
    assert_eq!((counts.total, counts.failed, counts.last_at), (3, 2, Some(5002)));
}
