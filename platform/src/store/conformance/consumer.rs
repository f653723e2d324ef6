//! The consumer side of [`LedgerStore`]: charges beside credits, and terms.

use super::usage;
use crate::store::ledger::{charge_id, charge_of, Applied, ConsumerTerms, EntryKind, LedgerStore, PairVolume, DAY_MS};

/// Charges and terms, on a store where the users `p-cons` and `c-cons` have nothing yet.
pub async fn consumer_ledger(store: &dyn LedgerStore) {
    let mut credit = usage("key-c1", "p-cons", 120);
    credit.counterparty = Some("c-cons".into());
    let charge = charge_of(&credit);
    let movement = vec![credit.clone(), charge.clone()];
    assert_eq!(store.apply(movement.clone()).await.expect("apply"), vec![Applied::Recorded; 2]);
    assert_eq!(
        store.apply(movement).await.expect("apply"),
        vec![Applied::Duplicate; 2],
        "both sides apply once"
    );

    let consumer = store.balances("c-cons").await.expect("balances");
    assert_eq!(consumer.len(), 1);
    let c = &consumer[0];
    assert_eq!((c.charged_minor, c.charges, c.accrued_minor, c.pending_minor), (120, 1, 0, 0));
    let provider = store.balances("p-cons").await.expect("balances");
    assert_eq!((provider[0].accrued_minor, provider[0].charged_minor), (120, 0));

    let (charged, none) = (charge_id("key-c1"), charge_id("key-none"));
    let among = |user: &'static str| {
        let ids = [charged.as_str(), none.as_str(), charged.as_str()];
        async move { store.entries_among(user, &ids).await.expect("entries") }
    };
    assert_eq!(among("c-cons").await, std::collections::HashSet::from([charged.clone()]));
    assert!(among("p-cons").await.is_empty(), "the charge is the consumer's");
    assert!(store.entries_among("c-cons", &[]).await.expect("none asked").is_empty());

    let page = store.movements("c-cons", None, 10).await.expect("movements");
    assert_eq!(page.entries.len(), 1);
    assert_eq!(page.entries[0].kind, EntryKind::Charge);
    assert_eq!(page.entries[0].counterparty.as_deref(), Some("p-cons"));
    assert_eq!(page.entries[0].image_id, credit.image_id);

    assert_eq!(store.terms("c-cons").await.expect("terms"), None);
    let mut terms = ConsumerTerms {
        user_id: "c-cons".into(),
        verified: true,
        credit_limit_minor: 5000,
        currency: "EUR".into(),
        daily_downloads: Some(20),
        daily_bytes: None,
        updated_at: 10,
        updated_by: "admin-1".into(),
    };
    store.set_terms(terms.clone()).await.expect("set");
    assert_eq!(store.terms("c-cons").await.expect("terms").as_ref(), Some(&terms));
    terms.verified = false;
    terms.credit_limit_minor = 0;
    (terms.daily_downloads, terms.daily_bytes) = (None, Some(1 << 40));
    store.set_terms(terms.clone()).await.expect("set again");
    assert_eq!(
        store.terms("c-cons").await.expect("terms"),
        Some(terms),
        "new terms replace the old"
    );
    assert_eq!(store.terms("p-cons").await.expect("terms"), None);

    pairs(store).await;
}

/// The pairs report: charges summed per consumer and provider in a period, largest first.
async fn pairs(store: &dyn LedgerStore) {
    let day = 200 * DAY_MS;
    let charge = |key: &str, consumer: &str, provider: &str, amount: i64, at: i64| {
        let mut credit = usage(key, provider, amount);
        (credit.counterparty, credit.occurred_at) = (Some(consumer.into()), at);
        vec![credit.clone(), charge_of(&credit)]
    };
    let entries = [
        charge("pk1", "pc1", "pp1", 100, day + 3_600_000),
        charge("pk2", "pc1", "pp1", 100, day + 7_200_000),
        charge("pk3", "pc2", "pp1", 500, day + 10_800_000),
        charge("pk4", "pc1", "pp2", 50, day - 1),
        charge("pk5", "pc2", "pp2", 70, day + DAY_MS),
    ]
    .concat();
    store.apply(entries).await.expect("apply");
    let pair = |consumer: &str, provider: &str, charges: i64, amount_minor: i64| PairVolume {
        consumer_id: consumer.into(),
        provider_id: provider.into(),
        currency: "EUR".into(),
        charges,
        amount_minor,
    };
    assert_eq!(
        store.pairs(day, day + DAY_MS, 10).await.expect("pairs"),
        vec![pair("pc2", "pp1", 1, 500), pair("pc1", "pp1", 2, 200)],
        "one day: the charges before and after it are out"
    );
    assert_eq!(
        store.pairs(day, day + DAY_MS, 1).await.expect("pairs"),
        vec![pair("pc2", "pp1", 1, 500)]
    );
    let wider = store.pairs(day - DAY_MS, day + 2 * DAY_MS, 10).await.expect("pairs");
    assert_eq!(wider.len(), 4);
    assert_eq!(wider[3], pair("pc1", "pp2", 1, 50));
}
