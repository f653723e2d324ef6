//! Who may retrieve: before a consumer's retrieval is metered, its terms
//! (approval, daily limits, credit) are checked against what it has used
//! ([`alpes_domain::ledger::consumer`] holds the rule).

use crate::held::{Charge, Holding};
use crate::QueryState;
use alpes_domain::ledger::{charge_id, day_start, refuse_download, Approval, DailyLimit, DailyUse, DownloadCheck, DownloadRefusal, DAY_MS};
use alpes_platform::auth::{Caller, Role};
use alpes_platform::http::ApiError;
use alpes_platform::openapi::Op;
use alpes_platform::store::CatalogImage;
use alpes_schemas::now_millis;
use axum::http::StatusCode;

/// `op` with the answers [`admit`] gives: 402, the 403 of an unapproved consumer and the 429 of a daily limit.
pub fn admission_errors(op: Op) -> Op {
    op.error(
        429,
        &["rate_limited", "daily_limit"],
        "Too many requests for now, or the retrieval would pass one of the consumer's daily limits \
         (`Retry-After`: the next UTC day).",
    )
    .error(
        402,
        &["insufficient_credit"],
        "The retrieval would take the consumer's download charges past the credit limit an admin set.",
    )
    .error(
        403,
        &["forbidden", "consumer_not_verified"],
        "The caller's role may not retrieve images, or no admin has approved this consumer for downloads yet.",
    )
}

/// Refuses a consumer's retrieval of `images` (each with the bytes it will
/// serve), before any is metered, unless an admin approved the consumer (403
/// `consumer_not_verified`), the retrieval stays within its daily limits (429
/// `daily_limit`, `Retry-After` the next UTC day) and its credit covers what
/// the retrieval will charge (402 `insufficient_credit`): the price of each
/// image not charged already in this repeat window, against the charges
/// billing has applied plus those this process's retrievals hold
/// ([`crate::held`]). What it lets through holds its new charges: call
/// [`Holding::metered`] once the usage events are produced. Admins are not
/// checked; with `--consumer-approval none` nobody is.
pub async fn admit(state: &QueryState, caller: &Caller, images: &[(&CatalogImage, u64)]) -> Result<Holding, ApiError> {
    if caller.role != Role::Consumidor || state.pricing.approval() == Approval::None {
        return Ok(Holding::nothing());
    }
    let (ledger, pricing, consumer) = (&state.ledger, &state.pricing, caller.user_id.as_str());
    let terms = ledger.terms(consumer).await?;
    let now = now_millis();
    let mut charges = Vec::new();
    let mut check = DownloadCheck {
        approval: pricing.approval(),
        terms: terms.as_ref(),
        charged_minor: 0,
        price_minor: 0,
        currency: pricing.currency(),
        today: DailyUse::default(),
        adds: DailyUse {
            downloads: i64::try_from(images.len()).unwrap_or(i64::MAX),
            bytes: images
                .iter()
                .map(|(_, b)| i64::try_from(*b).unwrap_or(i64::MAX))
                .fold(0, i64::saturating_add),
        },
    };
    if let Some(t) = terms.as_ref().filter(|t| t.verified) {
        if t.daily_downloads.is_some() || t.daily_bytes.is_some() {
            check.today = state.catalog.used_since(consumer, day_start(now)).await?;
        }
        // The holds billing has applied since go first: the applied charges read next count them.
        let held = state.held.charge_ids(consumer);
        let new: Vec<Charge> = images
            .iter()
            .map(|(image, _)| Charge {
                image_id: image.image_id.clone(),
                charge_id: charge_id(&pricing.charge_key(consumer, &image.image_id, now)),
                price_minor: pricing.price(image.modality.as_deref()),
            })
            .collect();
        let ids: Vec<&str> = held.iter().chain(new.iter().map(|c| &c.charge_id)).map(String::as_str).collect();
        let applied = ledger.entries_among(consumer, &ids).await?;
        state.held.settle(consumer, &applied, now);
        charges = new.into_iter().filter(|c| !applied.contains(&c.charge_id)).collect();
        if !charges.is_empty() {
            let balances = ledger.balances(consumer).await?;
            check.charged_minor = balances
                .iter()
                .find(|b| b.currency == check.currency)
                .map_or(0, |b| b.charged_minor);
        }
    }
    let refusal = state.held.hold(consumer, charges, now, |held_minor, adds_minor| {
        check.charged_minor = check.charged_minor.saturating_add(held_minor);
        check.price_minor = adds_minor;
        refuse_download(check)
    });
    match refusal {
        Ok(holding) => Ok(holding),
        Err(refusal) => Err(refused(refusal, &check, now)),
    }
}

/// The answer to a refused retrieval.
fn refused(refusal: DownloadRefusal, check: &DownloadCheck<'_>, now: i64) -> ApiError {
    match refusal {
        DownloadRefusal::NotVerified => ApiError::new(
            StatusCode::FORBIDDEN,
            "consumer_not_verified",
            "an admin has not approved this consumer account for downloads yet",
        ),
        DownloadRefusal::Daily(limit) => {
            let what = match limit {
                DailyLimit::Downloads(n) => format!("{n} retrievals"),
                DailyLimit::Bytes(n) => format!("{n} bytes"),
            };
            let wait = (day_start(now) + DAY_MS - now) / 1000 + 1;
            ApiError::too_many(
                "daily_limit",
                format!("this retrieval would pass the consumer's limit of {what} a day (UTC)"),
                u32::try_from(wait).unwrap_or(u32::MAX),
            )
        }
        DownloadRefusal::InsufficientCredit { available_minor } => ApiError::new(
            StatusCode::PAYMENT_REQUIRED,
            "insufficient_credit",
            format!(
                "this retrieval costs {} {} minor units and {available_minor} are left of the credit limit",
                check.price_minor, check.currency
            ),
        ),
    }
}
