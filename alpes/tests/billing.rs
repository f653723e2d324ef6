//! `alpes up` runs billing: a usage event on the topic reaches the provider's
//! balance, once, however often it is delivered.

mod common;

use alpes_platform::kafka::Producer;
use alpes_platform::metrics::Metrics;
use alpes_schemas::{Codec, EventoUsoDatos};
use std::sync::Arc;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_usage_event_credits_the_provider_once() {
    let app = common::spawn_app().await;
    let producer = Producer::new(&app.kafka, Codec::single_object(), Arc::new(Metrics::new())).expect("producer");
    let usage = EventoUsoDatos {
        http_request_id: None,
        event_id: "00000000-0000-4000-8000-000000000001".into(),
        occurred_at: 1_700_000_000_000,
        actor: "consumer-9".into(),
        consumer_id: "consumer-9".into(),
        provider_id: "hospital-1".into(),
        image_id: "image-1".into(),
        bytes: 123,
        amount_minor: 250,
        currency: "EUR".into(),
        dedupe_key: None,
    };
    for _ in 0..3 {
        producer.send(&usage.image_id, &usage).await.expect("send");
    }
    // All three deliveries are applied: one recorded, two found to be duplicates.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let text = app.metrics().await;
        let applied = |outcome: &str| {
            text.lines()
                .find(|l| l.starts_with("alpes_ledger_entries_total") && l.contains(&format!("outcome=\"{outcome}\"")))
                .and_then(|l| l.rsplit(' ').next())
                .map_or(0, |v| v.parse::<u64>().unwrap_or(0))
        };
        if applied("recorded") == 1 && applied("duplicate") == 2 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "billing did not apply the three deliveries:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let balance = app.ledger.balances("hospital-1").await.expect("balances");
    assert_eq!(balance.len(), 1);
    assert_eq!(
        (balance[0].pending_minor, balance[0].uses, balance[0].currency.as_str()),
        (250, 1, "EUR")
    );
    app.shutdown.trigger();
    app.task.await.expect("join").expect("app");
}
