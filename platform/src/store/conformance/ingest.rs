//! The conformance suite of [`IngestStore`]: SQLite always, the CQL adapter
//! on a real cluster (`platform/tests/scylla_conformance.rs`).

use crate::store::{Claim, ImageRow, IngestStore, NewImage, RequestState};

/// An image `id` of `provider` with bytes `sha`, its request `req-<id>` and, with `key`, an
/// idempotency key.
pub fn new_image(id: &str, provider: &str, sha: &str, key: Option<&str>) -> NewImage {
    NewImage {
        image: ImageRow {
            image_id: id.into(),
            provider_id: provider.into(),
            sha256: sha.into(),
            size: 3,
            media_type: "application/dicom".into(),
            blob_key: format!("raw/{sha}"),
            tipo_imagen: Some("CT".into()),
            region_anatomica: None,
        },
        idempotency_key: key.map(Into::into),
        request_id: format!("req-{id}"),
        event_json: format!("{{\"image_id\":\"{id}\"}}"),
    }
}

async fn claim(store: &dyn IngestStore, img: NewImage) -> Claim {
    store.claim(img).await.expect("claim")
}

fn existing(id: &str) -> Claim {
    Claim::Existing { image_id: id.into() }
}

/// Every rule of [`IngestStore`], on an empty store.
pub async fn ingest(store: &dyn IngestStore) {
    store.health().await.expect("health");

    // The same bytes or the same key from one provider claim the same image; another provider
    // with the same bytes and key has its own.
    assert_eq!(claim(store, new_image("a", "p1", "s1", Some("k1"))).await, Claim::Created);
    assert_eq!(claim(store, new_image("b", "p1", "s1", None)).await, existing("a"));
    assert_eq!(
        claim(store, new_image("c", "p1", "s2", Some("k1"))).await,
        existing("a"),
        "the key wins"
    );
    assert_eq!(claim(store, new_image("d", "p2", "s1", Some("k1"))).await, Claim::Created);
    // New bytes under a new key bind the key to the image of those bytes.
    assert_eq!(claim(store, new_image("e", "p1", "s1", Some("k2"))).await, existing("a"));
    assert_eq!(
        claim(store, new_image("f", "p1", "s9", Some("k2"))).await,
        existing("a"),
        "k2 names a now"
    );
    let a = store.image("a").await.expect("image").expect("a exists");
    assert_eq!(a, new_image("a", "p1", "s1", Some("k1")).image, "stored as given");
    for never in ["b", "c", "e", "f", "nope"] {
        assert_eq!(store.image(never).await.expect("image"), None, "{never} was never created");
    }
    assert!(store.blob_in_use("s1").await.expect("in use"));
    assert!(!store.blob_in_use("s2").await.expect("in use"), "a claim that lost holds no blob");
    assert!(!store.blob_in_use("s9").await.expect("in use"));

    // Requests move forward only, and only known ones move.
    assert_eq!(store.request_state("req-a").await.expect("state"), Some(RequestState::Pending));
    assert_eq!(store.request_state("req-b").await.expect("state"), None);
    store.add_request("a", "req-a2", "{\"again\":1}").await.expect("add");
    assert_eq!(
        store.unfinished().await.expect("open"),
        vec![
            "{\"image_id\":\"a\"}".to_owned(),
            "{\"image_id\":\"d\"}".into(),
            "{\"again\":1}".into()
        ],
        "oldest first"
    );
    assert!(store.set_state("req-a", RequestState::Published).await.expect("set"));
    assert_eq!(store.request_state("req-a").await.expect("state"), Some(RequestState::Published));
    assert!(store.set_state("req-a", RequestState::Anonymized).await.expect("set"));
    assert!(
        !store.set_state("req-a", RequestState::Published).await.expect("set"),
        "a finished request went back"
    );
    assert!(!store.set_state("req-a", RequestState::Pending).await.expect("set"));
    assert!(!store.set_state("req-unknown", RequestState::Anonymized).await.expect("set"));
    assert_eq!(
        store
            .set_states(vec![
                ("req-d".into(), RequestState::Rejected),
                ("req-unknown".into(), RequestState::Anonymized),
                ("req-a".into(), RequestState::Pending),
            ])
            .await
            .expect("batch"),
        1,
        "only the known, unfinished request moves"
    );
    assert_eq!(store.set_states(Vec::new()).await.expect("empty batch"), 0);
    assert_eq!(store.request_state("req-a").await.expect("state"), Some(RequestState::Anonymized));
    assert_eq!(store.request_state("req-d").await.expect("state"), Some(RequestState::Rejected));
    assert_eq!(store.unfinished().await.expect("open"), vec!["{\"again\":1}".to_owned()]);
    // A finished request may still be finished again (a redelivered outcome).
    assert!(store.set_state("req-d", RequestState::Rejected).await.expect("set"));
    assert!(store.set_state("req-a2", RequestState::Rejected).await.expect("set"));
    assert!(store.unfinished().await.expect("open").is_empty());

    // Abandoning the only request of an image forgets the image, frees its key and reports
    // whether another image still uses the bytes.
    assert_eq!(claim(store, new_image("g", "p3", "s3", Some("kg"))).await, Claim::Created);
    assert_eq!(claim(store, new_image("h", "p4", "s3", None)).await, Claim::Created);
    assert!(store.abandon("req-g").await.expect("abandon"), "p4 still uses s3");
    assert_eq!(store.image("g").await.expect("image"), None);
    assert_eq!(store.request_state("req-g").await.expect("state"), None);
    assert_eq!(
        claim(store, new_image("i", "p3", "s4", Some("kg"))).await,
        Claim::Created,
        "the key was freed"
    );
    assert_eq!(
        claim(store, new_image("j", "p3", "s3", None)).await,
        Claim::Created,
        "the bytes were freed"
    );
    assert!(store.abandon("req-h").await.expect("abandon"), "j uses s3");
    assert!(!store.abandon("req-j").await.expect("abandon"), "nothing uses s3");
    assert!(!store.blob_in_use("s3").await.expect("in use"), "no image uses s3 any more");
    assert!(store.abandon("req-unknown").await.expect("abandon"), "unknown: keep the blob");
    // Abandoning a re-anonymization keeps the image.
    store.add_request("i", "req-i2", "{\"i\":2}").await.expect("add");
    assert!(store.abandon("req-i2").await.expect("abandon"));
    assert!(store.image("i").await.expect("image").is_some());
    assert_eq!(store.request_state("req-i").await.expect("state"), Some(RequestState::Pending));
    assert_eq!(store.unfinished().await.expect("open"), vec!["{\"image_id\":\"i\"}".to_owned()]);

    calling_aes(store).await;
}

/// The calling AE titles of the DICOM listener: set, replaced, listed in order, removed once.
async fn calling_aes(store: &dyn IngestStore) {
    assert!(store.calling_aes().await.expect("list").is_empty());
    store.put_calling_ae("MODALITY_B", "p1", 10).await.expect("put");
    store.put_calling_ae("MODALITY_A", "p1", 11).await.expect("put");
    store.put_calling_ae("MODALITY_B", "p2", 12).await.expect("replace");
    let listed: Vec<(String, String, i64)> = store
        .calling_aes()
        .await
        .expect("list")
        .into_iter()
        .map(|a| (a.ae_title, a.provider_id, a.updated_at))
        .collect();
    assert_eq!(
        listed,
        vec![("MODALITY_A".into(), "p1".into(), 11), ("MODALITY_B".into(), "p2".into(), 12)]
    );
    assert!(store.remove_calling_ae("MODALITY_A").await.expect("remove"));
    assert!(!store.remove_calling_ae("MODALITY_A").await.expect("remove"), "already removed");
    assert_eq!(store.calling_aes().await.expect("list").len(), 1);
}
