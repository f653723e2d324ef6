//! Alpes billing: consumes `alpes.usage` (`EventoUsoDatos`) and
//! `alpes.payments` (`PagoProcesado`) and keeps every provider's and
//! consumer's ledger and balance, exactly once per event: a usage credits
//! the provider and charges the consumer in one store step
//! ([`alpes_domain::ledger::consumer`]).
//!
//! # Exactly once
//!
//! Kafka delivers at least once: a message comes again after a crash between
//! the store write and the offset commit, on a rebalance, or when a group is
//! replayed from offset 0. Billing makes the *effect* exactly once instead:
//!
//! - Every entry is keyed by its event id. The ledger port
//!   ([`alpes_platform::store::LedgerStore`]) moves a balance only for an
//!   entry it actually inserted, and applies a whole batch atomically.
//! - Offsets are stored only after the batch is applied. A crash before that
//!   replays the batch; its entries are found and change nothing.
//! - A refused payment is recorded as refused, with its refusal, so a replay
//!   refuses it again even if the balance would cover it by then. Its
//!   `PagoRechazado` (on `alpes.payments.rejected`) is produced before the
//!   batch's offsets are stored, and its id is derived from the payment's. A
//!   crash after the store commit and before that produce is acknowledged
//!   replays the payment: the ledger hands the stored refusal back
//!   ([`Applied::RefusedBefore`]) and billing produces the same event again,
//!   with the same id. The event is therefore delivered at least once, and a
//!   consumer de-duplicates it by id, as it does every event.
//! - A usage is keyed by its charge key (`EventoUsoDatos.dedupe_key`, or the
//!   event id on events without one): retrievals of one image by one
//!   consumer in one repeat window share the key and are charged once.
//!
//! On SQLite the batch is one transaction (see
//! [`alpes_platform::store::SqliteLedger`]). On ScyllaDB, where counters are
//! not idempotent, nothing is ever incremented: an entry is a row keyed by
//! `(user_id, event_id)` (writing it twice writes the same row), balances are
//! summed from the user's ledger partition on read, and a payout is one
//! conditional batch that bumps a per-user version (`IF payout_version = v`),
//! so two concurrent payouts cannot overdraw. The full design is in
//! `alpes_platform::store::cql::ledger`.

pub mod entries;

pub use entries::entry;

use alpes_domain::ledger::{pago_rechazado, Applied, EntryKind, LedgerEntry, LedgerStore, Payout, Refusal, RefusedBy};
use alpes_platform::kafka::projector::{run_projection, Projection};
use alpes_platform::kafka::{Kafka, Producer};
use alpes_platform::metrics::Metrics;
use alpes_platform::retry::retry;
use alpes_platform::shutdown::Shutdown;
use alpes_schemas::{now_millis, Codec, Event, EventoUsoDatos, PagoProcesado, PagoRechazado};
use async_trait::async_trait;
use std::sync::Arc;

/// The consumer group of billing.
pub const GROUP: &str = "alpes-billing";

/// The most events applied in one store transaction.
pub const BATCH: usize = 1024;

/// Billing's errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A platform adapter failed.
    #[error(transparent)]
    Platform(#[from] alpes_platform::Error),
}

/// Billing's result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The billing consumer.
#[derive(Debug)]
pub struct Billing {
    kafka: Arc<Kafka>,
    codec: Codec,
    ledger: Arc<dyn LedgerStore>,
    metrics: Arc<Metrics>,
    producer: Producer,
    group: String,
}

impl Billing {
    /// Billing on `kafka`, applying to `ledger`, in the group [`GROUP`];
    /// `producer` carries the `PagoRechazado` of refused payments.
    pub fn build(kafka: Arc<Kafka>, codec: Codec, ledger: Arc<dyn LedgerStore>, metrics: Arc<Metrics>, producer: Producer) -> Billing {
        Billing {
            kafka,
            codec,
            ledger,
            metrics,
            producer,
            group: GROUP.to_owned(),
        }
    }

    /// The same billing in another consumer group (a group new to the topics replays them from offset 0).
    pub fn with_group(mut self, group: &str) -> Billing {
        group.clone_into(&mut self.group);
        self
    }

    /// The consumer group billing consumes in.
    pub fn group(&self) -> &str {
        &self.group
    }

    /// Consumes until `shutdown`; offsets are stored only after their batch is applied.
    pub async fn run_until_stopped(self, shutdown: Shutdown) -> Result<()> {
        run_projection(&self.kafka, &self.group, Arc::clone(&self.metrics), &self, &shutdown).await?;
        Ok(())
    }
}

#[async_trait]
impl Projection for Billing {
    type Item = LedgerEntry;
    const TOPICS: &'static [&'static str] = &[EventoUsoDatos::TOPIC, PagoProcesado::TOPIC];
    const BATCH: usize = BATCH;

    async fn decode(&self, topic: &str, payload: &[u8]) -> std::result::Result<Option<LedgerEntry>, &'static str> {
        entry(&self.codec, topic, payload).await.map(Some)
    }

    /// Applies one batch, retrying a failing store until it takes the batch,
    /// then produces the refusal event of every payment it refused; false if
    /// shutdown came first (the batch then comes again after a restart).
    async fn apply(&self, batch: Vec<LedgerEntry>, shutdown: &Shutdown) -> bool {
        // A usage is one movement with two sides: the provider's credit and the consumer's charge.
        let batch: Vec<LedgerEntry> = batch.into_iter().flat_map(entries::with_charge).collect();
        let Ok(applied) = retry(shutdown, "apply a billing batch", || self.ledger.apply(batch.clone())).await else {
            return false;
        };
        for (e, a) in batch.iter().zip(&applied) {
            let outcome = match a {
                Applied::Recorded => "recorded",
                Applied::Duplicate => "duplicate",
                Applied::Refused(r) | Applied::RefusedBefore(r) => {
                    let again = matches!(a, Applied::RefusedBefore(_));
                    tracing::info!(event_id = %e.event_id, user_id = %e.user_id, reason = r.code(), again, "payment refused");
                    let event = refusal_event(e, r);
                    let sent = retry(shutdown, "produce a PagoRechazado", || self.producer.send(&event.user_id, &event)).await;
                    if sent.is_err() {
                        return false;
                    }
                    if again {
                        "duplicate"
                    } else {
                        r.code()
                    }
                }
            };
            self.metrics.ledger_entries.with_label_values(&[e.kind.as_str(), outcome]).inc();
        }
        true
    }
}

/// The `PagoRechazado` of payment `e`, refused for `r`; its id is derived
/// from the payment's, so a re-send is dropped as a duplicate.
pub fn refusal_event(e: &LedgerEntry, r: &Refusal) -> PagoRechazado {
    debug_assert_eq!(e.kind, EntryKind::Payment);
    let by = RefusedBy::Billing {
        payment_event_id: e.event_id.clone(),
    };
    pago_rechazado(Payout::of(e), r, by, now_millis())
}
