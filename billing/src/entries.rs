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

/// The usage credit to the provider of an `EventoUsoDatos`.
pub fn usage(e: EventoUsoDatos) -> LedgerEntry {
    LedgerEntry {
        event_id: e.event_id,
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
