//! The ledger port: per-user money movements and balances, applied exactly
//! once per event id.
//!
//! Billing turns every `EventoUsoDatos` into a credit for the provider and a
//! charge to the consumer (one movement, see [`consumer`]) and every
//! `PagoProcesado` into a payout from the provider's pending balance.
//! An entry is keyed by the event id that caused it: applying the same event
//! again (a redelivery, a replay from offset 0, a batch cut off by a crash
//! before its offsets were committed) finds the key taken and changes nothing.
//! A refused payment is recorded too, with its refusal, so a replay refuses
//! it again whatever the balance is by then, and hands the refusal back
//! ([`Applied::RefusedBefore`]) so its event can be produced again.

pub mod consumer;
mod payment;

pub use consumer::{
    by_volume, charge_id, charge_of, day_start, refuse_download, Approval, ConsumerTerms, DailyLimit, DailyUse, DownloadCheck,
    DownloadRefusal, PairVolume, DAY_MS,
};
pub use payment::{pago_rechazado, refuse_payout, Payout, PayoutCheck, RefusedBy};

use crate::page::PageCursor;
use crate::{Error, Result};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// What moved (or would have moved) a balance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// A consumer used (downloaded) one of the user's images: the user is credited.
    Usage,
    /// The user was paid out: the pending balance goes down.
    Payment,
    /// A payment that was refused; it moved nothing.
    RefusedPayment,
    /// The user (a consumer) downloaded an image: its charges go up by the price.
    Charge,
}

impl EntryKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Usage => "usage",
            EntryKind::Payment => "payment",
            EntryKind::RefusedPayment => "refused_payment",
            EntryKind::Charge => "charge",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "usage" => EntryKind::Usage,
            "payment" => EntryKind::Payment,
            "refused_payment" => EntryKind::RefusedPayment,
            "charge" => EntryKind::Charge,
            _ => return None,
        })
    }
}

/// One event, as billing applies it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LedgerEntry {
    /// The id of the event that caused the entry; the idempotency key.
    pub event_id: String,
    /// The user whose balance moves: the provider (usage, payment) or the consumer (charge).
    pub user_id: String,
    /// Usage or payment (a refused payment only comes back from the store).
    pub kind: EntryKind,
    /// Amount in minor units (cents), always positive; the kind gives the direction.
    pub amount_minor: i64,
    /// ISO 4217 currency code.
    pub currency: String,
    /// When the event happened, milliseconds since the Unix epoch.
    pub occurred_at: i64,
    /// Usage: the image used.
    pub image_id: Option<String>,
    /// Usage: the consumer billed. Charge: the provider credited. Payment: the payment reference.
    pub counterparty: Option<String>,
}

/// Why a payment was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Refusal {
    /// The payment is larger than the pending balance in its currency.
    InsufficientBalance {
        /// The pending balance when the payment was applied.
        pending_minor: i64,
    },
    /// The user already has an accepted payment with this reference.
    RepeatedReference,
    /// The amount is zero or negative.
    InvalidAmount,
}

impl Refusal {
    /// A stable code for logs, metrics and events.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::InsufficientBalance { .. } => "insufficient_balance",
            Refusal::RepeatedReference => "repeated_reference",
            Refusal::InvalidAmount => "invalid_amount",
        }
    }

    /// The stored form: JSON with the code as `reason` (and the pending balance of an
    /// insufficient-balance refusal), so a replay can give the whole refusal back.
    pub fn stored(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| self.code().to_owned())
    }

    /// Parses [`Refusal::stored`]; a bare code is accepted for the refusals that carry
    /// nothing else. `None` if the text is neither.
    pub fn from_stored(s: &str) -> Option<Refusal> {
        serde_json::from_str(s).ok().or(match s {
            "repeated_reference" => Some(Refusal::RepeatedReference),
            "invalid_amount" => Some(Refusal::InvalidAmount),
            _ => None,
        })
    }
}

/// What applying one entry did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// The entry was new and moved the balance.
    Recorded,
    /// The event id was already applied: nothing changed.
    Duplicate,
    /// A payment whose event id was already applied, and refused then: nothing
    /// changed, and here is that refusal again (a crash may have cut billing off
    /// before it produced the refusal's event).
    RefusedBefore(Refusal),
    /// A new payment that was refused; recorded as refused, the balance did not move.
    Refused(Refusal),
}

/// A user's balance in one currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Balance {
    /// The user.
    pub user_id: String,
    /// ISO 4217 currency code.
    pub currency: String,
    /// Everything credited for usage, minor units.
    pub accrued_minor: i64,
    /// Everything paid out, minor units.
    pub paid_minor: i64,
    /// `accrued_minor - paid_minor`: what Alpes still owes the user.
    pub pending_minor: i64,
    /// How many usages were credited.
    pub uses: i64,
    /// Everything charged for downloads (a consumer's), minor units.
    pub charged_minor: i64,
    /// How many downloads were charged.
    pub charges: i64,
    /// The latest event time applied, milliseconds since the Unix epoch (0 if none).
    pub as_of: i64,
}

/// One page of a user's ledger, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerPage {
    /// The entries, newest first.
    pub entries: Vec<LedgerEntry>,
    /// The cursor of the next (older) page, if there is one.
    pub next: Option<String>,
}

/// Whether `code` has the shape of an ISO 4217 code: three capital letters.
pub fn is_currency(code: &str) -> bool {
    code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase())
}

/// The letter of a ledger page cursor.
const CURSOR_KIND: char = 'l';

/// The cursor after the movement `(seq, event_id)` of a user's ledger.
pub fn movements_cursor(seq: i64, event_id: &str) -> String {
    PageCursor::new(seq, event_id).encode(CURSOR_KIND)
}

/// Reads [`movements_cursor`]: the movement's `(seq, event_id)`. Movements are
/// numbered from 1, so a sequence that is not positive is refused too.
pub fn parse_movements_cursor(cursor: &str) -> Result<(i64, String)> {
    let c = PageCursor::decode(CURSOR_KIND, cursor)?;
    if c.at <= 0 {
        return Err(Error::InvalidCursor);
    }
    Ok(c.key())
}

/// The ledger store.
#[async_trait]
pub trait LedgerStore: Send + Sync + std::fmt::Debug {
    /// Applies `entries` in order, all in one atomic step; returns what each did.
    /// An entry whose event id is already in the ledger changes nothing (a
    /// payment refused then comes back [`Applied::RefusedBefore`]). A
    /// `RefusedPayment` entry is applied as a payment.
    async fn apply(&self, entries: Vec<LedgerEntry>) -> Result<Vec<Applied>>;
    /// The user's balances, one per currency (empty if the user has none).
    async fn balances(&self, user_id: &str) -> Result<Vec<Balance>>;
    /// Whether the user already has an accepted payment with this reference.
    async fn reference_paid(&self, user_id: &str, reference: &str) -> Result<bool>;
    /// A page of the user's ledger, newest first, after `cursor` (from a previous page).
    async fn movements(&self, user_id: &str, cursor: Option<&str>, limit: usize) -> Result<LedgerPage>;
    /// Which of `event_ids` the user's ledger has (one read, however many).
    async fn entries_among(&self, user_id: &str, event_ids: &[&str]) -> Result<std::collections::HashSet<String>>;
    /// The consumer's terms, if an admin set any.
    async fn terms(&self, user_id: &str) -> Result<Option<ConsumerTerms>>;
    /// Sets a consumer's terms, replacing any before.
    async fn set_terms(&self, terms: ConsumerTerms) -> Result<()>;
    /// The consumer–provider pairs charged at or after `since` and before
    /// `until` (ms), largest volume first ([`by_volume`]), at most `limit`.
    async fn pairs(&self, since: i64, until: i64, limit: usize) -> Result<Vec<PairVolume>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_movements_cursor_round_trips_and_a_foreign_or_non_positive_one_is_refused() {
        let c = movements_cursor(1_700_000_000_000_123, "ev.1/ñ");
        assert_eq!(
            parse_movements_cursor(&c).expect("ours"),
            (1_700_000_000_000_123, "ev.1/ñ".to_owned())
        );
        for bad in ["not-a-cursor", "l12", "s12.6576", "l0.6576", "l-5.6576", "l12.zz", "l12."] {
            assert!(matches!(parse_movements_cursor(bad), Err(Error::InvalidCursor)), "{bad}");
        }
    }

    #[test]
    fn a_stored_refusal_reads_back_whole() {
        for r in [
            Refusal::InsufficientBalance { pending_minor: 100 },
            Refusal::RepeatedReference,
            Refusal::InvalidAmount,
        ] {
            assert_eq!(Refusal::from_stored(&r.stored()), Some(r.clone()), "{}", r.stored());
        }
        assert_eq!(Refusal::from_stored("repeated_reference"), Some(Refusal::RepeatedReference));
        assert_eq!(Refusal::from_stored("insufficient_balance"), None, "a bare code lacks the balance");
        assert_eq!(Refusal::from_stored("nonsense"), None);
    }
}
