//! What a download costs: a price per modality with a default, in minor
//! units, and the repeat window within which the same consumer retrieving the
//! same image again pays once; and who may download at all.
//!
//! The window is tumbling, aligned to multiples of its length since the Unix
//! epoch: every retrieval in one window shares one charge key
//! (`EventoUsoDatos.dedupe_key`) and billing charges each key once. That
//! makes "pays once" exact with no shared state between query-api instances
//! and no race between two quick retrievals; the cost is that two retrievals
//! on either side of a window edge pay twice.

use alpes_domain::ledger::Approval;
use alpes_schemas::deterministic_event_id;
use std::collections::BTreeMap;

/// Pricing settings (`alpes up` flags).
#[derive(Debug, Clone, clap::Args)]
pub struct PricingArgs {
    /// Price of one download when its modality has no price of its own, minor units (cents).
    #[arg(long = "price-default-minor", env = "ALPES_PRICE_DEFAULT_MINOR", default_value_t = 100)]
    pub default_minor: i64,
    /// Price of one download of a modality, as MODALITY=MINOR (repeatable, or comma-separated in
    /// the environment), e.g. `--price CT=250 --price MR=300`.
    #[arg(long = "price", env = "ALPES_PRICES", value_delimiter = ',', value_parser = parse_price)]
    pub by_modality: Vec<(String, i64)>,
    /// Seconds within which the same consumer retrieving the same image again pays once.
    #[arg(long = "repeat-window-secs", env = "ALPES_REPEAT_WINDOW_SECS", default_value_t = 86_400)]
    pub repeat_window_secs: u64,
    /// Who may download: `admin`, a consumer once an admin approved it and within the credit the
    /// admin gave it (`PUT /monetizacion/consumidores/{usuario_id}`); or `none`, every consumer
    /// without limit (development and benchmarks only: anyone can register as a consumer).
    /// Downloads are charged to the consumer either way.
    #[arg(long = "consumer-approval", env = "ALPES_CONSUMER_APPROVAL", default_value_t = Approval::Admin)]
    pub approval: Approval,
}

impl Default for PricingArgs {
    fn default() -> Self {
        PricingArgs {
            default_minor: 100,
            by_modality: Vec::new(),
            repeat_window_secs: 86_400,
            approval: Approval::Admin,
        }
    }
}

fn parse_price(s: &str) -> Result<(String, i64), String> {
    let (modality, minor) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: expected MODALITY=MINOR, e.g. CT=250"))?;
    let modality = modality.trim().to_uppercase();
    if modality.is_empty() {
        return Err(format!("{s:?}: the modality is empty"));
    }
    let minor: i64 = minor
        .trim()
        .parse()
        .map_err(|_| format!("{s:?}: the price is not an integer of minor units"))?;
    if minor < 0 {
        return Err(format!("{s:?}: a price cannot be negative"));
    }
    Ok((modality, minor))
}

/// The price list in force.
#[derive(Debug, Clone)]
pub struct Pricing {
    default_minor: i64,
    by_modality: BTreeMap<String, i64>,
    window_ms: i64,
    currency: String,
    approval: Approval,
}

impl Pricing {
    /// The price list of `args`, in `currency`.
    pub fn new(args: &PricingArgs, currency: &str) -> Pricing {
        Pricing {
            default_minor: args.default_minor.max(0),
            by_modality: args.by_modality.iter().cloned().collect(),
            window_ms: i64::try_from(args.repeat_window_secs.max(1).saturating_mul(1000)).unwrap_or(i64::MAX),
            currency: currency.to_owned(),
            approval: args.approval,
        }
    }

    /// Who may download.
    pub fn approval(&self) -> Approval {
        self.approval
    }

    /// The price of one download of an image of `modality`, minor units.
    pub fn price(&self, modality: Option<&str>) -> i64 {
        modality
            .and_then(|m| self.by_modality.get(&m.to_uppercase()))
            .copied()
            .unwrap_or(self.default_minor)
    }

    /// The currency prices are in.
    pub fn currency(&self) -> &str {
        &self.currency
    }

    /// The charge key of `consumer` retrieving `image` at `now_ms`: the same
    /// for every retrieval in one repeat window.
    pub fn charge_key(&self, consumer: &str, image: &str, now_ms: i64) -> String {
        let window = now_ms.div_euclid(self.window_ms).to_string();
        deterministic_event_id("charge", &[consumer, image, &window])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pricing() -> Pricing {
        let args = PricingArgs {
            default_minor: 100,
            by_modality: vec![parse_price("ct=250").expect("valid")],
            repeat_window_secs: 60,
            approval: Approval::Admin,
        };
        Pricing::new(&args, "EUR")
    }

    #[test]
    fn a_modality_with_a_price_costs_that_and_any_other_the_default() {
        let p = pricing();
        assert_eq!(
            (p.price(Some("CT")), p.price(Some("Ct")), p.price(Some("MR")), p.price(None)),
            (250, 250, 100, 100)
        );
    }

    #[test]
    fn retrievals_in_one_window_share_a_charge_key_and_the_next_window_does_not() {
        let p = pricing();
        let k = p.charge_key("c", "i", 120_000);
        assert_eq!(k, p.charge_key("c", "i", 179_999));
        assert_ne!(k, p.charge_key("c", "i", 180_000));
        assert_ne!(k, p.charge_key("other", "i", 120_000));
        assert_ne!(k, p.charge_key("c", "other", 120_000));
    }

    #[test]
    fn a_malformed_price_is_refused_with_the_reason() {
        assert!(parse_price("CT").unwrap_err().contains("MODALITY=MINOR"));
        assert!(parse_price("CT=1.5").unwrap_err().contains("integer"));
        assert!(parse_price("CT=-1").unwrap_err().contains("negative"));
        assert!(parse_price("=1").unwrap_err().contains("empty"));
    }
}
