//! The payment rules: when a payout is refused, and the `PagoRechazado` that
//! says so. Ingest checks a request with them before it produces a
//! `PagoProcesado`; billing checks the same payment again when it applies it
//! (the balance may have fallen meanwhile), inside the store's atomic step.

use super::{LedgerEntry, Refusal};
use alpes_schemas::{deterministic_event_id, new_event_id, Event, PagoRechazado};

/// What a payout is checked against, read from the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PayoutCheck {
    /// The amount asked for, minor units.
    pub amount_minor: i64,
    /// Whether the user already has an accepted payment with this reference.
    pub reference_paid: bool,
    /// The user's pending balance in the payment's currency, minor units.
    pub pending_minor: i64,
}

/// Why a payout is refused, if it is: a non-positive amount first, then a
/// reference already paid, then an amount above the pending balance.
pub fn refuse_payout(c: PayoutCheck) -> Option<Refusal> {
    if c.amount_minor <= 0 {
        Some(Refusal::InvalidAmount)
    } else if c.reference_paid {
        Some(Refusal::RepeatedReference)
    } else if c.amount_minor > c.pending_minor {
        Some(Refusal::InsufficientBalance {
            pending_minor: c.pending_minor,
        })
    } else {
        None
    }
}

/// A payout as refused: who was to be paid, how much, under which reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Payout<'a> {
    /// The user to be paid.
    pub user_id: &'a str,
    /// Minor units.
    pub amount_minor: i64,
    /// ISO 4217 code.
    pub currency: &'a str,
    /// The payment reference.
    pub reference: &'a str,
}

impl<'a> Payout<'a> {
    /// The payout a payment entry asked for.
    pub fn of(e: &'a LedgerEntry) -> Payout<'a> {
        Payout {
            user_id: &e.user_id,
            amount_minor: e.amount_minor,
            currency: &e.currency,
            reference: e.counterparty.as_deref().unwrap_or_default(),
        }
    }
}

/// Who refused a payout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefusedBy {
    /// Ingest, at the request, before any `PagoProcesado` existed: every
    /// refused request is a fact of its own, with a new id.
    Request {
        /// The admin who asked.
        actor: String,
        /// The request's `X-Request-Id`.
        http_request_id: Option<String>,
    },
    /// Billing, applying the `PagoProcesado` with this id: the refusal's id
    /// derives from it, so producing it again after a crash is a duplicate.
    Billing {
        /// The refused payment's event id.
        payment_event_id: String,
    },
}

/// The `PagoRechazado` of `payout`, refused for `refusal` by `by` at `occurred_at` (ms).
pub fn pago_rechazado(payout: Payout<'_>, refusal: &Refusal, by: RefusedBy, occurred_at: i64) -> PagoRechazado {
    let (event_id, actor, payment_event_id, http_request_id) = match by {
        RefusedBy::Request { actor, http_request_id } => (new_event_id(), actor, None, http_request_id),
        RefusedBy::Billing { payment_event_id } => (
            deterministic_event_id(PagoRechazado::NAME, &[&payment_event_id]),
            "billing".to_owned(),
            Some(payment_event_id),
            // Billing acts on a consumed event, not on a request.
            None,
        ),
    };
    PagoRechazado {
        event_id,
        occurred_at,
        actor,
        payment_event_id,
        user_id: payout.user_id.to_owned(),
        amount_minor: payout.amount_minor,
        currency: payout.currency.to_owned(),
        reference: payout.reference.to_owned(),
        reason: refusal.code().into(),
        pending_minor: match refusal {
            Refusal::InsufficientBalance { pending_minor } => Some(*pending_minor),
            _ => None,
        },
        http_request_id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(amount_minor: i64, reference_paid: bool, pending_minor: i64) -> Option<Refusal> {
        refuse_payout(PayoutCheck {
            amount_minor,
            reference_paid,
            pending_minor,
        })
    }

    #[test]
    fn a_payout_is_refused_for_its_amount_then_its_reference_then_the_balance() {
        assert_eq!(check(0, true, 0), Some(Refusal::InvalidAmount));
        assert_eq!(check(-5, false, 100), Some(Refusal::InvalidAmount));
        assert_eq!(check(50, true, 0), Some(Refusal::RepeatedReference));
        assert_eq!(check(101, false, 100), Some(Refusal::InsufficientBalance { pending_minor: 100 }));
        assert_eq!(check(100, false, 100), None, "the whole pending balance may be paid");
    }

    const PAYOUT: Payout<'static> = Payout {
        user_id: "p",
        amount_minor: 150,
        currency: "EUR",
        reference: "r-1",
    };

    #[test]
    fn billing_refusals_take_an_id_derived_from_the_payment() {
        let by = || RefusedBy::Billing {
            payment_event_id: "pay-1".into(),
        };
        let r = Refusal::InsufficientBalance { pending_minor: 100 };
        let a = pago_rechazado(PAYOUT, &r, by(), 1);
        let b = pago_rechazado(PAYOUT, &r, by(), 2);
        assert_eq!(a.event_id, b.event_id, "a re-send is a duplicate");
        assert_eq!(a.payment_event_id.as_deref(), Some("pay-1"));
        assert_eq!(
            (a.actor.as_str(), a.reason.as_str(), a.pending_minor),
            ("billing", "insufficient_balance", Some(100))
        );
        assert_eq!(a.http_request_id, None);
    }

    #[test]
    fn request_refusals_are_each_their_own_event() {
        let by = || RefusedBy::Request {
            actor: "admin-1".into(),
            http_request_id: Some("req-1".into()),
        };
        let a = pago_rechazado(PAYOUT, &Refusal::RepeatedReference, by(), 1);
        let b = pago_rechazado(PAYOUT, &Refusal::RepeatedReference, by(), 1);
        assert_ne!(a.event_id, b.event_id);
        assert_eq!((a.payment_event_id, a.pending_minor), (None, None));
        assert_eq!((a.actor.as_str(), a.reference.as_str(), a.amount_minor), ("admin-1", "r-1", 150));
        assert_eq!(a.http_request_id.as_deref(), Some("req-1"));
    }
}
