//! The property: whatever the interleaving of duplicate and out-of-order
//! deliveries, and however they are cut into batches, every provider's
//! balance equals the sum of its distinct usage events.

use alpes_platform::store::{LedgerEntry, LedgerStore, SqliteLedger};
use proptest::prelude::*;
use std::collections::BTreeMap;

fn entry(i: usize, provider: usize, amount: i64, at: i64) -> LedgerEntry {
    alpes_billing::entries::usage(alpes_schemas::EventoUsoDatos {
        http_request_id: None,
        event_id: format!("event-{i}"),
        occurred_at: at,
        actor: "c".into(),
        consumer_id: "c".into(),
        provider_id: format!("p{provider}"),
        image_id: format!("image-{i}"),
        bytes: 1,
        amount_minor: amount,
        currency: "EUR".into(),
        dedupe_key: Some(format!("charge-{i}")),
    })
}

/// Distinct events, then a delivery order in which each appears one to three times.
fn deliveries() -> impl Strategy<Value = (Vec<LedgerEntry>, Vec<usize>, Vec<usize>)> {
    prop::collection::vec((0..3usize, 1..10_000i64, 0..1_000_000i64), 1..40).prop_flat_map(|events| {
        let n = events.len();
        let events: Vec<_> = events
            .into_iter()
            .enumerate()
            .map(|(i, (p, amount, at))| entry(i, p, amount, at))
            .collect();
        (
            Just(events),
            prop::collection::vec(1..=3usize, n).prop_flat_map(|copies| {
                let order: Vec<usize> = copies.iter().enumerate().flat_map(|(i, c)| std::iter::repeat_n(i, *c)).collect();
                Just(order).prop_shuffle()
            }),
            prop::collection::vec(1..10usize, 1..20),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn every_balance_is_the_sum_of_the_distinct_events((events, order, cuts) in deliveries()) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(async {
            let ledger = SqliteLedger::in_memory().expect("ledger");
            let delivered: Vec<_> = order.iter().map(|i| events[*i].clone()).collect();
            let mut rest = delivered.as_slice();
            for cut in cuts.iter().cycle() {
                if rest.is_empty() {
                    break;
                }
                let (batch, tail) = rest.split_at((*cut).min(rest.len()));
                ledger.apply(batch.to_vec()).await.expect("apply");
                rest = tail;
            }
            let mut expected: BTreeMap<String, (i64, i64, i64)> = BTreeMap::new();
            for e in &events {
                let t = expected.entry(e.user_id.clone()).or_default();
                t.0 += e.amount_minor;
                t.1 += 1;
                t.2 = t.2.max(e.occurred_at);
            }
            for (user, (sum, uses, latest)) in expected {
                let b = ledger.balances(&user).await.expect("balances");
                prop_assert_eq!(b.len(), 1);
                prop_assert_eq!((b[0].pending_minor, b[0].uses, b[0].as_of), (sum, uses, latest));
            }
            Ok(())
        })?;
    }
}
