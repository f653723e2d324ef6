//! `alpes perf consume`: kafka-consumer-perf-test's options and output on
//! librdkafka: its header, then one summary row (or, with
//! `--show-detailed-stats`, a row per reporting interval).

use super::stats::{Consumed, CONSUMER_DETAILED_HEADER, CONSUMER_HEADER};
use super::{read_props, Target};
use anyhow::{Context, Result};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::{ClientConfig, ClientContext, Message};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

/// Arguments of `alpes perf consume` (kafka-consumer-perf-test's, plus `--embedded`).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The topic to consume from.
    #[arg(long)]
    topic: String,
    /// The number of records to consume.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    messages: u64,
    /// The consumer group (default: `perf-consumer-` and a random number).
    #[arg(long)]
    group: Option<String>,
    /// Start from the latest record when the group has no committed offset (default: the earliest).
    #[arg(long)]
    from_latest: bool,
    /// Stop when no record arrives for this many milliseconds.
    #[arg(long, default_value_t = 10_000)]
    timeout: u64,
    /// With --show-detailed-stats, milliseconds between rows.
    #[arg(long, default_value_t = 5_000, value_parser = clap::value_parser!(u64).range(1..))]
    reporting_interval: u64,
    /// Print a row per reporting interval instead of one summary row.
    #[arg(long)]
    show_detailed_stats: bool,
    /// Do not print the header.
    #[arg(long)]
    hide_header: bool,
    /// A consumer properties file (librdkafka names).
    #[arg(long = "consumer.config", value_name = "CONFIG-FILE")]
    consumer_config: Option<PathBuf>,
    /// Consumer properties, `NAME=VALUE`; they win over --consumer.config.
    #[arg(long, num_args = 1.., value_name = "PROP-NAME=PROP-VALUE")]
    consumer_props: Vec<String>,
    #[command(flatten)]
    target: Target,
}

/// Times the group joins: from the start (or the last revocation) to the assignment.
struct Joins {
    started: Mutex<(Instant, Duration, Duration)>,
}

impl Joins {
    /// (total join time, join time since the last call).
    fn take(&self) -> (Duration, Duration) {
        match self.started.lock() {
            Ok(mut g) => {
                let round = std::mem::take(&mut g.2);
                (g.1, round)
            }
            Err(_) => (Duration::ZERO, Duration::ZERO),
        }
    }
}

impl ClientContext for Joins {}

impl ConsumerContext for Joins {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let (Rebalance::Revoke(_), Ok(mut g)) = (rebalance, self.started.lock()) {
            g.0 = Instant::now();
        }
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let (Rebalance::Assign(_), Ok(mut g)) = (rebalance, self.started.lock()) {
            let took = g.0.elapsed();
            g.1 += took;
            g.2 += took;
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Runs the test and prints kafka-consumer-perf-test's header and rows.
pub fn run(args: Args) -> Result<ExitCode> {
    let mut props = read_props(args.consumer_config.as_deref(), &args.consumer_props)?;
    let mock = args.target.apply(&mut props)?;
    if let Some(mock) = &mock {
        // A fresh mock cluster holds nothing: its topic is created so that the run ends by its timeout.
        mock.create_topic(&args.topic, 1, 1)?;
    }
    // Defaults, then the properties, then the flags: a flag given wins, as in the Java tool.
    let mut config = ClientConfig::new();
    config
        .set(
            "group.id",
            format!("perf-consumer-{}", super::Rng::new(u64::from(std::process::id())).below(100_000)),
        )
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "true")
        .set("client.id", "perf-consumer-client");
    for (k, v) in &props {
        config.set(k, v);
    }
    if let Some(group) = &args.group {
        config.set("group.id", group);
    }
    if args.from_latest {
        config.set("auto.offset.reset", "latest");
    }
    if !args.hide_header {
        println!(
            "{}",
            if args.show_detailed_stats {
                CONSUMER_DETAILED_HEADER
            } else {
                CONSUMER_HEADER
            }
        );
    }
    let joins = Joins {
        started: Mutex::new((Instant::now(), Duration::ZERO, Duration::ZERO)),
    };
    let consumer: BaseConsumer<Joins> = config.create_with_context(joins).context("cannot create the consumer")?;
    let start = SystemTime::now();
    consumer.subscribe(&[&args.topic]).context("cannot subscribe")?;
    let mut read = Consumed {
        start,
        end: start,
        bytes: 0,
        messages: 0,
        rebalance_ms: 0,
    };
    let mut last_report = read;
    let interval = Duration::from_millis(args.reporting_interval);
    let timeout = Duration::from_millis(args.timeout);
    let mut last_record = Instant::now();
    let mut warned = false;
    while read.messages < args.messages && last_record.elapsed() <= timeout {
        let message = match consumer.poll(Duration::from_millis(100)) {
            None => continue,
            Some(Ok(message)) => message,
            Some(Err(e @ KafkaError::MessageConsumptionFatal(_))) => return Err(e).context("cannot consume"),
            // A broker that drops a connection, a topic not created yet: librdkafka retries, and
            // the run goes on until --timeout, as the Java tool's does.
            Some(Err(e)) => {
                if !warned {
                    eprintln!("alpes: kafka: {e} (retrying until --timeout)");
                    warned = true;
                }
                continue;
            }
        };
        last_record = Instant::now();
        read.messages += 1;
        read.bytes += (message.payload_len() + message.key().map_or(0, <[u8]>::len)) as u64;
        if args.show_detailed_stats {
            read.end = SystemTime::now();
            if read.end.duration_since(last_report.end).unwrap_or_default() >= interval {
                read.rebalance_ms = millis(consumer.context().take().1);
                println!("{}", read.interval_row(&last_report));
                last_report = read;
            }
        }
    }
    if read.messages < args.messages {
        println!(
            "WARNING: Exiting before consuming the expected number of messages: timeout ({} ms) exceeded. \
             You can use the --timeout option to increase the timeout.",
            args.timeout
        );
    }
    read.end = SystemTime::now();
    read.rebalance_ms = millis(consumer.context().take().0);
    drop(consumer);
    if !args.show_detailed_stats {
        println!("{}", read.summary_row());
    }
    Ok(ExitCode::SUCCESS)
}
