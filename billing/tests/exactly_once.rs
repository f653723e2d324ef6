//! Billing against the in-process mock cluster: redelivery, replay from
//! offset 0, a crash between the store write and the offset commit, and a
//! poison message each leave every use counted exactly once, and a refused
//! payment's event survives a crash before it was produced.

use alpes_billing::Billing;
use alpes_platform::kafka::{Kafka, KafkaArgs, Producer};
use alpes_platform::metrics::Metrics;
use alpes_platform::shutdown::Shutdown;
use alpes_platform::store::{Applied, LedgerStore, Refusal, SqliteLedger};
use alpes_schemas::{Codec, Event, EventoUsoDatos, PagoProcesado, PagoRechazado};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::Message;
use std::sync::Arc;
use std::time::Duration;

fn usage(i: usize, provider: &str, amount: i64) -> EventoUsoDatos {
    EventoUsoDatos {
        http_request_id: None,
        event_id: format!("00000000-0000-4000-8000-{i:012}"),
        occurred_at: 1_700_000_000_000 + i as i64,
        actor: "consumer-1".into(),
        consumer_id: "consumer-1".into(),
        provider_id: provider.into(),
        image_id: format!("image-{i}"),
        bytes: 1000,
        amount_minor: amount,
        currency: "EUR".into(),
        dedupe_key: None,
    }
}

struct Cluster {
    kafka: Arc<Kafka>,
    producer: Producer,
    codec: Codec,
}

async fn cluster() -> Cluster {
    let kafka = Arc::new(Kafka::connect(&KafkaArgs::default()).await.expect("mock cluster"));
    let codec = Codec::single_object();
    let producer = Producer::new(&kafka, codec.clone(), Arc::new(Metrics::new())).expect("producer");
    Cluster { kafka, producer, codec }
}

/// Runs billing in `group` until `done` holds for the ledger, then stops it.
async fn bill_until<F, Fut>(c: &Cluster, ledger: &Arc<SqliteLedger>, group: &str, metrics: Arc<Metrics>, done: F)
where
    F: Fn(Arc<Metrics>) -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let stop = Shutdown::new();
    let billing = Billing::build(
        c.kafka.clone(),
        c.codec.clone(),
        ledger.clone(),
        metrics.clone(),
        c.producer.clone(),
    )
    .with_group(group);
    let task = tokio::spawn(billing.run_until_stopped(stop.clone()));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !done(metrics.clone()).await {
        assert!(tokio::time::Instant::now() < deadline, "billing did not finish in time");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.trigger();
    task.await.expect("join").expect("billing");
}

fn counted(m: &Metrics, outcome: &str) -> u64 {
    m.ledger_entries.with_label_values(&["usage", outcome]).get()
}

async fn pending(ledger: &SqliteLedger, user: &str) -> i64 {
    ledger.balances(user).await.expect("balances").iter().map(|b| b.pending_minor).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redelivered_and_replayed_usage_counts_once() {
    let c = cluster().await;
    let events: Vec<_> = (0..200)
        .map(|i| usage(i, if i % 2 == 0 { "p1" } else { "p2" }, 10 + i as i64))
        .collect();
    // Every event is delivered twice, the copies far apart.
    for e in events.iter().chain(events.iter()) {
        c.producer.send(&e.image_id, e).await.expect("send");
    }
    let expected = |p: &str| -> i64 { events.iter().filter(|e| e.provider_id == p).map(|e| e.amount_minor).sum() };
    let dir = tempfile::tempdir().expect("tmp");
    let ledger = Arc::new(SqliteLedger::open(&dir.path().join("alpes.db"), false).expect("ledger"));

    bill_until(&c, &ledger, "billing-a", Arc::new(Metrics::new()), |m| async move {
        counted(&m, "recorded") + counted(&m, "duplicate") == 400
    })
    .await;
    assert_eq!(
        (pending(&ledger, "p1").await, pending(&ledger, "p2").await),
        (expected("p1"), expected("p2"))
    );

    // A new group replays both topics from offset 0: every entry is a duplicate.
    let replay = Arc::new(Metrics::new());
    bill_until(&c, &ledger, "billing-replay", replay.clone(), |m| async move {
        counted(&m, "duplicate") == 400
    })
    .await;
    assert_eq!(counted(&replay, "recorded"), 0);
    assert_eq!(
        (pending(&ledger, "p1").await, pending(&ledger, "p2").await),
        (expected("p1"), expected("p2"))
    );
    let b = ledger.balances("p1").await.expect("balances");
    assert_eq!(b[0].uses, 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_the_store_write_and_the_offset_commit_counts_each_use_once() {
    let c = cluster().await;
    let events: Vec<_> = (0..100).map(|i| usage(i, "p", 7)).collect();
    for e in &events {
        c.producer.send(&e.image_id, e).await.expect("send");
    }
    // The state a crash leaves behind: the first 60 uses are in the store, no offset was committed.
    let ledger = Arc::new(SqliteLedger::in_memory().expect("ledger"));
    let written: Vec<_> = events[..60].iter().cloned().map(alpes_billing::entries::usage).collect();
    ledger.apply(written).await.expect("store write");

    // The restarted billing consumes everything again from the start.
    let m = Arc::new(Metrics::new());
    bill_until(&c, &ledger, "billing-after-crash", m.clone(), |m| async move {
        counted(&m, "recorded") + counted(&m, "duplicate") == 100
    })
    .await;
    assert_eq!((counted(&m, "recorded"), counted(&m, "duplicate")), (40, 60));
    assert_eq!(pending(&ledger, "p").await, 700);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_message_is_skipped_with_a_reason_and_the_partition_keeps_moving() {
    let c = cluster().await;
    let raw: rdkafka::producer::FutureProducer = c.kafka.client_config().create().expect("raw producer");
    let key = "image-same-partition";
    let poison = rdkafka::producer::FutureRecord::to(EventoUsoDatos::TOPIC)
        .key(key)
        .payload(&b"not avro at all"[..]);
    raw.send(poison, Duration::from_secs(5)).await.expect("poison");
    let mut after = usage(1, "p", 42);
    after.image_id = key.into();
    c.producer.send(key, &after).await.expect("send");

    let ledger = Arc::new(SqliteLedger::in_memory().expect("ledger"));
    let m = Arc::new(Metrics::new());
    let stop = Shutdown::new();
    let billing =
        Billing::build(c.kafka.clone(), c.codec.clone(), ledger.clone(), m.clone(), c.producer.clone()).with_group("billing-poison");
    let task = tokio::spawn(billing.run_until_stopped(stop.clone()));
    let wait = |what: &'static str, done: Box<dyn Fn() -> bool>| async move {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while !done() {
            assert!(tokio::time::Instant::now() < deadline, "billing never got to: {what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let seen = m.clone();
    wait("the usage after the poison", Box::new(move || counted(&seen, "recorded") == 1)).await;
    // The payout is produced once the credit it draws on is applied, as ingest does after checking the balance.
    let payment = PagoProcesado {
        http_request_id: None,
        event_id: "00000000-0000-4000-8000-00000000beef".into(),
        occurred_at: 1_700_000_000_500,
        actor: "admin".into(),
        user_id: "p".into(),
        amount_minor: 40,
        currency: "EUR".into(),
        reference: "payout-1".into(),
    };
    c.producer.send(&payment.user_id, &payment).await.expect("send");
    let seen = m.clone();
    wait(
        "the payment",
        Box::new(move || seen.ledger_entries.with_label_values(&["payment", "recorded"]).get() == 1),
    )
    .await;
    stop.trigger();
    task.await.expect("join").expect("billing");
    assert_eq!(m.rejections.with_label_values(&["not_avro"]).get(), 1);
    let b = ledger.balances("p").await.expect("balances");
    assert_eq!((b[0].accrued_minor, b[0].paid_minor, b[0].pending_minor), (42, 40, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_payment_cut_off_before_its_event_was_produced_produces_it_after_the_restart() {
    let c = cluster().await;
    let payment = PagoProcesado {
        http_request_id: None,
        event_id: "00000000-0000-4000-8000-0000000000aa".into(),
        occurred_at: 1_700_000_000_000,
        actor: "admin".into(),
        user_id: "p".into(),
        amount_minor: 500,
        currency: "EUR".into(),
        reference: "payout-7".into(),
    };
    c.producer.send(&payment.user_id, &payment).await.expect("send");
    // The state a crash leaves behind: the refusal is committed to the store, its
    // PagoRechazado was never acknowledged and no offset was committed.
    let ledger = Arc::new(SqliteLedger::in_memory().expect("ledger"));
    ledger.apply(vec![usage_credit(100)]).await.expect("credit");
    let entry = alpes_billing::entries::payment(payment.clone());
    assert_eq!(
        ledger.apply(vec![entry.clone()]).await.expect("store write"),
        vec![Applied::Refused(Refusal::InsufficientBalance { pending_minor: 100 })]
    );

    let m = Arc::new(Metrics::new());
    bill_until(&c, &ledger, "billing-refusal-after-crash", m.clone(), |m| async move {
        m.ledger_entries.with_label_values(&["payment", "duplicate"]).get() == 1
    })
    .await;
    let mut cfg = c.kafka.client_config();
    cfg.set("group.id", "refusals-reader")
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false");
    let reader: StreamConsumer = cfg.create().expect("consumer");
    reader.subscribe(&[PagoRechazado::TOPIC]).expect("subscribe");
    let msg = tokio::time::timeout(Duration::from_secs(30), reader.recv())
        .await
        .expect("a PagoRechazado within 30 s")
        .expect("receive");
    let refused: PagoRechazado = c.codec.decode(msg.payload().unwrap_or_default()).await.expect("decode");
    let expected = alpes_billing::refusal_event(&entry, &Refusal::InsufficientBalance { pending_minor: 100 });
    assert_eq!(refused.event_id, expected.event_id, "the same id as the one the crash lost");
    assert_eq!(
        (refused.reason.as_str(), refused.pending_minor, refused.payment_event_id.as_deref()),
        ("insufficient_balance", Some(100), Some(payment.event_id.as_str()))
    );
    assert_eq!(m.ledger_entries.with_label_values(&["payment", "insufficient_balance"]).get(), 0);
    assert_eq!(pending(&ledger, "p").await, 100, "the refused payment moved nothing");
}

/// A credit of `amount` for provider `p`, applied straight to a ledger.
fn usage_credit(amount: i64) -> alpes_platform::store::LedgerEntry {
    alpes_billing::entries::usage(usage(999, "p", amount))
}
