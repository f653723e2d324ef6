//! The consumer side of the money: a download charges its consumer what it
//! credits its provider, and a consumer downloads only once an admin has
//! approved its account and given it credit.
//!
//! - **One movement, two sides.** Billing turns each charge key of
//!   `EventoUsoDatos` into the provider's credit ([`super::EntryKind::Usage`],
//!   keyed by the charge key) and the consumer's charge
//!   ([`super::EntryKind::Charge`], keyed by [`charge_id`] of it), applied in
//!   one store step: both or neither, each exactly once. So the sum of the
//!   consumers' charges is the sum of the providers' credits.
//! - **Terms.** An admin approves a consumer ([`ConsumerTerms::verified`]) and
//!   sets its credit limit in one currency. A download is refused while the
//!   consumer is unapproved (403 `consumer_not_verified`), and when its price
//!   would take the consumer's charges past the limit (402
//!   `insufficient_credit`); a repeat in the charge window costs nothing and
//!   is never refused for credit.
//! - **The check reads what billing has applied.** Downloads answered in the
//!   few milliseconds before billing applies the previous ones are not yet
//!   counted, so concurrent downloads can pass the limit by their prices.

use super::LedgerEntry;
use serde::Serialize;

/// Who may download, as an operator configures it (`--consumer-approval`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Approval {
    /// A consumer downloads only once an admin approved it, within the credit the admin gave it.
    #[default]
    Admin,
    /// Every consumer downloads, without limit (development and benchmarks); downloads are still charged.
    None,
}

impl Approval {
    /// The setting's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Approval::Admin => "admin",
            Approval::None => "none",
        }
    }
}

impl std::fmt::Display for Approval {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Approval {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "admin" => Ok(Approval::Admin),
            "none" => Ok(Approval::None),
            _ => Err(format!("{s:?}: expected admin or none")),
        }
    }
}

/// What an admin granted a consumer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConsumerTerms {
    /// The consumer.
    pub user_id: String,
    /// Approved to download.
    pub verified: bool,
    /// How much its charges may reach, minor units of `currency`.
    pub credit_limit_minor: i64,
    /// ISO 4217 code of the limit.
    pub currency: String,
    /// The most retrievals a UTC day (none: no limit).
    pub daily_downloads: Option<i64>,
    /// The most bytes retrieved a UTC day (none: no limit).
    pub daily_bytes: Option<i64>,
    /// When the terms were last set, ms since the Unix epoch.
    pub updated_at: i64,
    /// The admin who set them.
    pub updated_by: String,
}

impl ConsumerTerms {
    /// What is left of the limit after `charged_minor` of charges in `currency`
    /// (a limit in another currency gives no credit), never below 0.
    pub fn available(&self, currency: &str, charged_minor: i64) -> i64 {
        let limit = if self.currency == currency { self.credit_limit_minor } else { 0 };
        limit.saturating_sub(charged_minor).max(0)
    }
}

/// What a consumer retrieved in one UTC day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DailyUse {
    /// Retrievals.
    pub downloads: i64,
    /// Bytes retrieved.
    pub bytes: i64,
}

/// Which daily limit a retrieval would pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DailyLimit {
    /// Retrievals a day.
    Downloads(i64),
    /// Bytes a day.
    Bytes(i64),
}

/// The length of the day daily limits count in, ms.
pub const DAY_MS: i64 = 86_400_000;

/// The start of the UTC day of `now_ms`.
pub fn day_start(now_ms: i64) -> i64 {
    now_ms - now_ms.rem_euclid(DAY_MS)
}

/// Why a download is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DownloadRefusal {
    /// No admin has approved the consumer.
    NotVerified,
    /// The retrieval would pass a daily limit; it may be made again the next UTC day.
    Daily(DailyLimit),
    /// The price would take the consumer's charges past its limit.
    InsufficientCredit {
        /// What is left of the limit, minor units.
        available_minor: i64,
    },
}

/// What a download is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DownloadCheck<'a> {
    /// How downloads are approved.
    pub approval: Approval,
    /// The consumer's terms, if an admin set any.
    pub terms: Option<&'a ConsumerTerms>,
    /// The consumer's charges so far in the price's currency, minor units.
    pub charged_minor: i64,
    /// What the download will charge, minor units: its price, or 0 for a repeat
    /// in the charge window (charged already).
    pub price_minor: i64,
    /// The price's currency.
    pub currency: &'a str,
    /// What the consumer retrieved so far this UTC day.
    pub today: DailyUse,
    /// What this retrieval adds: retrievals (one per image) and bytes.
    pub adds: DailyUse,
}

/// Why a download is refused, if it is: an unapproved consumer first, then a
/// daily limit, then credit.
pub fn refuse_download(c: DownloadCheck<'_>) -> Option<DownloadRefusal> {
    if c.approval == Approval::None {
        return None;
    }
    let Some(terms) = c.terms.filter(|t| t.verified) else {
        return Some(DownloadRefusal::NotVerified);
    };
    let after = |today: i64, adds: i64| today.saturating_add(adds);
    if let Some(max) = terms
        .daily_downloads
        .filter(|max| after(c.today.downloads, c.adds.downloads) > *max)
    {
        return Some(DownloadRefusal::Daily(DailyLimit::Downloads(max)));
    }
    if let Some(max) = terms.daily_bytes.filter(|max| after(c.today.bytes, c.adds.bytes) > *max) {
        return Some(DownloadRefusal::Daily(DailyLimit::Bytes(max)));
    }
    if c.price_minor <= 0 {
        return None;
    }
    let available_minor = terms.available(c.currency, c.charged_minor);
    (c.price_minor > available_minor).then_some(DownloadRefusal::InsufficientCredit { available_minor })
}

/// One consumer–provider pair: what the consumer's downloads of the
/// provider's images were charged in a period (the self-dealing report: a
/// provider paying itself through consumer accounts shows as a pair with
/// volume no real customer has).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PairVolume {
    /// The consumer charged.
    pub consumer_id: String,
    /// The provider credited.
    pub provider_id: String,
    /// ISO 4217 code.
    pub currency: String,
    /// Charges (downloads charged).
    pub charges: i64,
    /// Their sum, minor units.
    pub amount_minor: i64,
}

/// Orders pairs by volume, largest first: amount, then charges, then the ids.
pub fn by_volume(pairs: &mut [PairVolume]) {
    pairs.sort_by(|a, b| {
        (b.amount_minor, b.charges)
            .cmp(&(a.amount_minor, a.charges))
            .then_with(|| (&a.consumer_id, &a.provider_id, &a.currency).cmp(&(&b.consumer_id, &b.provider_id, &b.currency)))
    });
}

/// The event id of the consumer's charge for charge key `key`.
pub fn charge_id(key: &str) -> String {
    format!("charge:{key}")
}

/// The consumer's charge that goes with the provider's usage credit `usage`
/// (whose counterparty is the consumer).
pub fn charge_of(usage: &LedgerEntry) -> LedgerEntry {
    LedgerEntry {
        event_id: charge_id(&usage.event_id),
        user_id: usage.counterparty.clone().unwrap_or_default(),
        kind: super::EntryKind::Charge,
        amount_minor: usage.amount_minor,
        currency: usage.currency.clone(),
        occurred_at: usage.occurred_at,
        image_id: usage.image_id.clone(),
        counterparty: Some(usage.user_id.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms(verified: bool, limit: i64) -> ConsumerTerms {
        ConsumerTerms {
            user_id: "c".into(),
            verified,
            credit_limit_minor: limit,
            currency: "EUR".into(),
            daily_downloads: None,
            daily_bytes: None,
            updated_at: 1,
            updated_by: "admin".into(),
        }
    }

    fn check(terms: Option<&ConsumerTerms>, charged_minor: i64, price_minor: i64) -> Option<DownloadRefusal> {
        refuse_download(DownloadCheck {
            approval: Approval::Admin,
            terms,
            charged_minor,
            price_minor,
            currency: "EUR",
            today: DailyUse::default(),
            adds: DailyUse { downloads: 1, bytes: 10 },
        })
    }

    #[test]
    fn a_download_needs_an_approved_consumer_then_credit_for_its_price() {
        assert_eq!(check(None, 0, 100), Some(DownloadRefusal::NotVerified));
        assert_eq!(check(Some(&terms(false, 1000)), 0, 0), Some(DownloadRefusal::NotVerified));
        assert_eq!(check(Some(&terms(true, 1000)), 900, 100), None, "the whole limit may be spent");
        assert_eq!(
            check(Some(&terms(true, 1000)), 901, 100),
            Some(DownloadRefusal::InsufficientCredit { available_minor: 99 })
        );
        assert_eq!(
            check(Some(&terms(true, 1000)), 1000, 0),
            None,
            "a repeat in the window (or a free image) costs nothing"
        );
        assert_eq!(
            check(Some(&terms(true, 50)), 80, 100),
            Some(DownloadRefusal::InsufficientCredit { available_minor: 0 })
        );
    }

    #[test]
    fn a_limit_in_another_currency_gives_no_credit_and_open_approval_refuses_nothing() {
        let mut usd = terms(true, 1000);
        usd.currency = "USD".into();
        assert_eq!(
            check(Some(&usd), 0, 100),
            Some(DownloadRefusal::InsufficientCredit { available_minor: 0 })
        );
        let open = DownloadCheck {
            approval: Approval::None,
            terms: None,
            charged_minor: 0,
            price_minor: 100,
            currency: "EUR",
            today: DailyUse::default(),
            adds: DailyUse { downloads: 1, bytes: 10 },
        };
        assert_eq!(refuse_download(open), None);
    }

    #[test]
    fn a_day_allows_its_downloads_and_bytes_and_not_one_more() {
        let mut t = terms(true, 1000);
        (t.daily_downloads, t.daily_bytes) = (Some(3), Some(100));
        let day = |downloads, bytes, adds_bytes| {
            refuse_download(DownloadCheck {
                approval: Approval::Admin,
                terms: Some(&t),
                charged_minor: 0,
                price_minor: 0,
                currency: "EUR",
                today: DailyUse { downloads, bytes },
                adds: DailyUse {
                    downloads: 1,
                    bytes: adds_bytes,
                },
            })
        };
        assert_eq!(day(2, 90, 10), None, "the third download and the hundredth byte are allowed");
        assert_eq!(day(3, 0, 1), Some(DownloadRefusal::Daily(DailyLimit::Downloads(3))));
        assert_eq!(day(0, 95, 6), Some(DownloadRefusal::Daily(DailyLimit::Bytes(100))));
        assert_eq!((day_start(DAY_MS * 3 + 5), day_start(DAY_MS * 3 - 1)), (DAY_MS * 3, DAY_MS * 2));
    }

    #[test]
    fn the_charge_mirrors_the_credit_on_the_consumer() {
        let usage = LedgerEntry {
            event_id: "key-1".into(),
            user_id: "p".into(),
            kind: super::super::EntryKind::Usage,
            amount_minor: 250,
            currency: "EUR".into(),
            occurred_at: 7,
            image_id: Some("i".into()),
            counterparty: Some("c".into()),
        };
        let charge = charge_of(&usage);
        assert_eq!((charge.event_id.as_str(), charge.user_id.as_str()), ("charge:key-1", "c"));
        assert_eq!((charge.amount_minor, charge.counterparty.as_deref()), (250, Some("p")));
        assert_eq!(charge.kind, super::super::EntryKind::Charge);
    }
}
