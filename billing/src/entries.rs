//! From a usage or payment message to the ledger entry it stands for.

use alpes_platform::store::{EntryKind, LedgerEntry};
use alpes_schemas::{Codec, Event, EventoUsoDatos, PagoProcesado};

/// The usage credit to the provider of an `EventoUsoDatos`, keyed by its
/// charge key: retrievals in one repeat window share it and are charged once.
pub fn usage(e: EventoUsoDatos) -> LedgerEntry {
    LedgerEntry {
        event_id: e.charge_key().to_owned(),
        user_id: e.provider_id,
        kind: EntryKind::Usage,
        amount_minor: e.amount_minor,
        currency: e.currency,
        occurred_at: e.occurred_at,
        image_id: Some(e.image_id),
        counterparty: Some(e.consumer_id),
    }
}

/// A usage credit and the consumer's charge that goes with it (applied in
/// one store step, so the two sides never differ); any other entry alone.
pub fn with_charge(e: LedgerEntry) -> Vec<LedgerEntry> {
    match e.kind {
        EntryKind::Usage => {
            let charge = alpes_domain::ledger::charge_of(&e);
            vec![e, charge]
        }
        _ => vec![e],
    }
}

/// The payout to the user of a `PagoProcesado`.
pub fn payment(e: PagoProcesado) -> LedgerEntry {
    LedgerEntry {
        event_id: e.event_id,
        user_id: e.user_id,
        kind: EntryKind::Payment,
        amount_minor: e.amount_minor,
        currency: e.currency,
        occurred_at: e.occurred_at,
        image_id: None,
        counterparty: Some(e.reference),
    }
}

/// Decodes a message of `topic` into a ledger entry; `Err` is a reason code.
pub async fn entry(codec: &Codec, topic: &str, payload: &[u8]) -> Result<LedgerEntry, &'static str> {
    match topic {
        t if t == EventoUsoDatos::TOPIC => codec.decode::<EventoUsoDatos>(payload).await.map(usage).map_err(|e| e.reason()),
        t if t == PagoProcesado::TOPIC => codec.decode::<PagoProcesado>(payload).await.map(payment).map_err(|e| e.reason()),
        _ => Err("unexpected_topic"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn used(event_id: &str, dedupe_key: Option<&str>) -> EventoUsoDatos {
        EventoUsoDatos {
            http_request_id: None,
            event_id: event_id.into(),
            occurred_at: 1,
            actor: "c".into(),
            consumer_id: "c".into(),
            provider_id: "p".into(),
            image_id: "i".into(),
            bytes: 1,
            amount_minor: 100,
            currency: "EUR".into(),
            dedupe_key: dedupe_key.map(str::to_owned),
        }
    }

    #[tokio::test]
    async fn two_retrievals_in_one_repeat_window_are_charged_once() {
        let ledger = alpes_platform::store::SqliteLedger::in_memory().expect("ledger");
        let entries = vec![usage(used("e1", Some("k"))), usage(used("e2", Some("k"))), usage(used("e3", None))];
        assert_eq!(entries[2].event_id, "e3", "an event without a charge key is keyed by its id");
        alpes_platform::store::LedgerStore::apply(&ledger, entries).await.expect("apply");
        let b = alpes_platform::store::LedgerStore::balances(&ledger, "p").await.expect("balances");
        assert_eq!((b[0].accrued_minor, b[0].uses), (200, 2));
    }

    #[test]
    fn a_usage_goes_with_its_consumers_charge_and_a_payment_alone() {
        let sides = with_charge(usage(used("e1", Some("k"))));
        assert_eq!(sides.len(), 2);
        assert_eq!(
            (sides[1].kind, sides[1].user_id.as_str(), sides[1].amount_minor),
            (EntryKind::Charge, "c", 100)
        );
        assert_eq!(
            sides[1].event_id,
            alpes_domain::ledger::charge_id("k"),
            "keyed by the charge key too"
        );
        let pay = payment(alpes_schemas::PagoProcesado {
            http_request_id: None,
            event_id: "pay".into(),
            occurred_at: 1,
            actor: "a".into(),
            user_id: "p".into(),
            amount_minor: 5,
            currency: "EUR".into(),
            reference: "r".into(),
        });
        assert_eq!(with_charge(pay).len(), 1);
    }
}
