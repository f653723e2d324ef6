//! From a usage or payment message to the ledger entry it stands for.

use alpes_platform::store::{EntryKind, LedgerEntry};
use alpes_schemas::{Codec, Event, EventoUsoDatos, PagoProcesado};
use rdkafka::message::BorrowedMessage;
use rdkafka::Message;

/// A message billing cannot use: not Avro, an unknown schema, or the wrong topic.
#[derive(Debug)]
pub struct Undecodable {
    topic: String,
    reason: &'static str,
}

impl Undecodable {
    /// A stable reason code (never payload bytes).
    pub fn reason(&self) -> &'static str {
        self.reason
    }

    /// The topic it came from.
    pub fn topic(&self) -> &str {
        &self.topic
    }
}

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

/// Decodes `msg` by its topic into a ledger entry.
pub async fn entry(codec: &Codec, msg: &BorrowedMessage<'_>) -> Result<LedgerEntry, Undecodable> {
    let payload = msg.payload().unwrap_or_default();
    let fail = |reason: &'static str| Undecodable {
        topic: msg.topic().to_owned(),
        reason,
    };
    match msg.topic() {
        t if t == EventoUsoDatos::TOPIC => codec
            .decode::<EventoUsoDatos>(payload)
            .await
            .map(usage)
            .map_err(|e| fail(e.reason())),
        t if t == PagoProcesado::TOPIC => codec
            .decode::<PagoProcesado>(payload)
            .await
            .map(payment)
            .map_err(|e| fail(e.reason())),
        _ => Err(fail("unexpected_topic")),
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
}
