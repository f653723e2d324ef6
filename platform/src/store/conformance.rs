//! The conformance suite for the store ports, written once and run against
//! every adapter: SQLite always, ScyllaDB when `SCYLLA_NODES` is set. It
//! panics with a message on the first broken rule, like any test.

use super::ledger::{Applied, EntryKind, LedgerEntry, LedgerStore, Refusal};

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
    assert_eq!(b[0].as_of, 2000);

    // A refused payment stays refused on replay, even once the balance would cover it.
    store.apply(vec![usage("u4", "p", 1000)]).await.expect("apply");
    let replay = store
        .apply(vec![payment("pay3", "p", 101, "ref-3"), payment("pay1", "p", 60, "ref-1")])
        .await
        .expect("apply");
    assert_eq!(replay, vec![Applied::Duplicate, Applied::Duplicate]);
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
}
