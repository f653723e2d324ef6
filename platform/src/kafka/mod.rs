//! Kafka: settings, the development broker, topic creation and client set-up.
//!
//! With no bootstrap servers configured, [`Kafka::connect`] starts librdkafka's
//! in-process mock cluster ([`mock`]). It is the development broker: each
//! partition keeps only a few MB and nothing survives the process, so a real
//! cluster (`--kafka-bootstrap`) is for anything that must last.

pub mod consumer;
pub mod mock;
pub mod outbox;
pub mod producer;
pub mod projector;

use crate::{Error, Result};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use std::time::Duration;

pub use consumer::{CommitOnRevoke, GroupConsumer};
pub use mock::MockBroker;
pub use outbox::Outbox;
pub use producer::Producer;

/// Partitions per topic when none are configured.
pub const DEFAULT_PARTITIONS: i32 = 6;

/// Where the brokers are and how to reach them.
#[derive(Debug, Clone, clap::Args)]
pub struct KafkaArgs {
    /// Kafka bootstrap servers (host:port,...). Without it, the in-process development broker runs.
    #[arg(long = "kafka-bootstrap", env = "KAFKA_BOOTSTRAP_SERVERS")]
    pub bootstrap: Option<String>,
    /// A librdkafka property passed through to every client, e.g. `security.protocol=SASL_SSL`. Repeatable.
    #[arg(long = "kafka-prop", value_name = "KEY=VALUE", value_parser = parse_prop)]
    pub props: Vec<(String, String)>,
    /// A librdkafka property for producers only, e.g. `linger.ms=10`. Repeatable; wins over `--kafka-prop`.
    #[arg(long = "kafka-producer-prop", value_name = "KEY=VALUE", value_parser = parse_prop)]
    pub producer_props: Vec<(String, String)>,
    /// A librdkafka property for consumers only, e.g. `fetch.wait.max.ms=100`. Repeatable; wins over `--kafka-prop`.
    #[arg(long = "kafka-consumer-prop", value_name = "KEY=VALUE", value_parser = parse_prop)]
    pub consumer_props: Vec<(String, String)>,
    /// Partitions for the topics Alpes creates [default: 6; `alpes up` on the development broker: 2, or one per worker].
    #[arg(long = "kafka-partitions", env = "ALPES_KAFKA_PARTITIONS")]
    pub partitions: Option<i32>,
    /// Replication factor for the topics Alpes creates.
    #[arg(long = "kafka-replication", env = "ALPES_KAFKA_REPLICATION", default_value_t = 1)]
    pub replication: i32,
    /// How long a produce may wait for the broker's acknowledgement, in milliseconds.
    #[arg(
        long = "kafka-delivery-timeout-ms",
        env = "ALPES_KAFKA_DELIVERY_TIMEOUT_MS",
        default_value_t = 10_000
    )]
    pub delivery_timeout_ms: u64,
}

impl Default for KafkaArgs {
    fn default() -> Self {
        KafkaArgs {
            bootstrap: None,
            props: Vec::new(),
            producer_props: Vec::new(),
            consumer_props: Vec::new(),
            partitions: None,
            replication: 1,
            delivery_timeout_ms: 10_000,
        }
    }
}

fn parse_prop(s: &str) -> std::result::Result<(String, String), String> {
    let (k, v) = s.split_once('=').ok_or_else(|| format!("{s:?} is not KEY=VALUE"))?;
    if k.trim().is_empty() {
        return Err(format!("{s:?} has an empty key"));
    }
    Ok((k.trim().to_owned(), v.to_owned()))
}

/// Which kind of client a configuration is for, to pick its pass-through properties.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientKind {
    /// Admin and metadata clients: the common properties only.
    Other,
    /// Producers: the common properties, then `--kafka-producer-prop`.
    Producer,
    /// Consumers: the common properties, then `--kafka-consumer-prop`.
    Consumer,
}

/// A connection to the event log: the bootstrap address, pass-through
/// properties and, in development, the mock cluster that serves it.
pub struct Kafka {
    bootstrap: String,
    props: Vec<(String, String)>,
    producer_props: Vec<(String, String)>,
    consumer_props: Vec<(String, String)>,
    delivery_timeout: Duration,
    mock: Option<MockBroker>,
    /// One client kept for health probes, created on the first probe.
    probe: std::sync::OnceLock<std::sync::Arc<BaseConsumer>>,
    /// The consumers this process expects, and which have joined their groups.
    readiness: crate::readiness::Readiness,
    /// The events kept until this process's consumers applied them (development broker only).
    outbox: std::sync::Arc<Outbox>,
}

impl std::fmt::Debug for Kafka {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kafka")
            .field("bootstrap", &self.bootstrap)
            .field("mock", &self.mock.is_some())
            .finish_non_exhaustive()
    }
}

impl Kafka {
    /// Connects to the configured brokers, or starts the development broker,
    /// then creates every Alpes topic that is missing.
    pub async fn connect(args: &KafkaArgs) -> Result<Kafka> {
        let (bootstrap, mock) = match args.bootstrap.as_deref().filter(|b| !b.trim().is_empty()) {
            Some(b) => (b.to_owned(), None),
            None => {
                let mock = MockBroker::start(1)?;
                (mock.bootstrap().to_owned(), Some(mock))
            }
        };
        let kafka = Kafka {
            bootstrap,
            props: args.props.clone(),
            producer_props: args.producer_props.clone(),
            consumer_props: args.consumer_props.clone(),
            delivery_timeout: Duration::from_millis(args.delivery_timeout_ms),
            mock,
            probe: std::sync::OnceLock::new(),
            readiness: crate::readiness::Readiness::new(),
            outbox: std::sync::Arc::default(),
        };
        let replication = if kafka.mock.is_some() { 1 } else { args.replication };
        kafka
            .ensure_topics(
                &alpes_schemas::topics::ALL,
                args.partitions.unwrap_or(DEFAULT_PARTITIONS),
                replication,
            )
            .await?;
        Ok(kafka)
    }

    /// The bootstrap address clients (and outside tools such as kcat) use.
    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    /// The development broker, when it is the one in use.
    pub fn mock(&self) -> Option<&MockBroker> {
        self.mock.as_ref()
    }

    /// The consumers this process expects to run, and which have joined their groups: declare
    /// each with [`crate::readiness::Readiness::expect`] before serving; [`Kafka::consumer`] marks it.
    pub fn readiness(&self) -> &crate::readiness::Readiness {
        &self.readiness
    }

    /// Declares that this process runs projection `P` in consumer group `group`: readiness
    /// waits for it to join, and the outbox keeps the events of its topics until it has applied them.
    pub fn expect_projection<P: projector::Projection>(&self, group: &str) {
        self.readiness.expect(group);
        self.outbox.reads(group, P::TOPICS);
    }

    /// The outbox (inert until a store is attached: `alpes up` attaches one on the development broker).
    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    pub(crate) fn outbox_handle(&self) -> std::sync::Arc<Outbox> {
        self.outbox.clone()
    }

    /// How long a produce waits for the acknowledgement.
    pub fn delivery_timeout(&self) -> Duration {
        self.delivery_timeout
    }

    /// A client configuration with the bootstrap servers and the common pass-through properties.
    pub fn client_config(&self) -> ClientConfig {
        self.config_for(ClientKind::Other, &[])
    }

    /// A configuration for a `kind` client: the bootstrap servers, then
    /// `defaults`, then the pass-through properties for that kind, so an
    /// operator's setting always wins over a built-in default.
    pub fn config_for(&self, kind: ClientKind, defaults: &[(&str, &str)]) -> ClientConfig {
        let mut cfg = ClientConfig::new();
        cfg.set("bootstrap.servers", &self.bootstrap);
        if self.mock.is_some() {
            // The mock cluster's partitions are tiny; keep metadata fresh so new topics show quickly.
            cfg.set("topic.metadata.refresh.interval.ms", "1000");
        }
        for (k, v) in defaults {
            cfg.set(*k, *v);
        }
        let specific: &[(String, String)] = match kind {
            ClientKind::Other => &[],
            ClientKind::Producer => &self.producer_props,
            ClientKind::Consumer => &self.consumer_props,
        };
        for (k, v) in self.props.iter().chain(specific) {
            cfg.set(k, v);
        }
        cfg
    }

    /// Creates `topics` that do not exist yet. Topics the cluster lists already are left alone
    /// (an operator may have created them with other settings), and when every topic exists no
    /// admin request is made, so a principal without the right to create topics can run.
    pub async fn ensure_topics(&self, topics: &[&str], partitions: i32, replication: i32) -> Result<()> {
        if let Some(mock) = &self.mock {
            for t in topics {
                mock.create_topic(t, partitions, replication)?;
            }
            return Ok(());
        }
        let lister: BaseConsumer = self.client_config().create()?;
        let existing: std::collections::HashSet<String> = tokio::task::spawn_blocking(move || {
            let metadata = lister.fetch_metadata(None, Duration::from_secs(10))?;
            Ok::<_, Error>(
                metadata
                    .topics()
                    .iter()
                    .filter(|t| t.error().is_none() && !t.partitions().is_empty())
                    .map(|t| t.name().to_owned())
                    .collect(),
            )
        })
        .await
        .map_err(|e| Error::BrokerUnavailable(e.to_string()))??;
        let missing: Vec<&str> = topics.iter().copied().filter(|t| !existing.contains(*t)).collect();
        if missing.is_empty() {
            return Ok(());
        }
        let admin: AdminClient<DefaultClientContext> = self.client_config().create()?;
        let new: Vec<NewTopic<'_>> = missing
            .iter()
            .map(|t| NewTopic::new(t, partitions, TopicReplication::Fixed(replication)))
            .collect();
        let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
        for result in admin.create_topics(&new, &opts).await? {
            match result {
                Ok(_) | Err((_, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((topic, code)) => return Err(Error::Config(format!("cannot create topic {topic}: {code}"))),
            }
        }
        Ok(())
    }

    /// Whether the brokers answer a metadata request within `timeout`.
    pub async fn health(&self, timeout: Duration) -> Result<()> {
        let probe = match self.probe.get() {
            Some(p) => p.clone(),
            None => {
                let created: BaseConsumer = self.client_config().create()?;
                self.probe.get_or_init(|| std::sync::Arc::new(created)).clone()
            }
        };
        tokio::task::spawn_blocking(move || {
            probe.fetch_metadata(Some(alpes_schemas::topics::IMAGES_REGISTERED), timeout)?;
            Ok::<_, Error>(())
        })
        .await
        .map_err(|e| Error::BrokerUnavailable(e.to_string()))?
    }
}

#[cfg(test)]
impl Kafka {
    /// A broker outside the process with no properties of its own, for tests of the clients'
    /// settings: nothing contacts it.
    pub(crate) fn unreached() -> Kafka {
        Kafka {
            bootstrap: "127.0.0.1:1".into(),
            props: Vec::new(),
            producer_props: Vec::new(),
            consumer_props: Vec::new(),
            delivery_timeout: Duration::from_secs(1),
            mock: None,
            probe: std::sync::OnceLock::new(),
            readiness: crate::readiness::Readiness::new(),
            outbox: std::sync::Arc::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pass_through_properties_win_and_stay_with_their_kind_of_client() {
        let prop = |k: &str, v: &str| (k.to_owned(), v.to_owned());
        let kafka = Kafka {
            props: vec![prop("security.protocol", "SASL_SSL"), prop("linger.ms", "7")],
            producer_props: vec![prop("batch.size", "65536")],
            consumer_props: vec![prop("fetch.wait.max.ms", "100")],
            ..Kafka::unreached()
        };
        let producer = kafka.config_for(ClientKind::Producer, &[("linger.ms", "2"), ("acks", "all")]);
        assert_eq!(producer.get("linger.ms"), Some("7"), "an operator's setting wins over a default");
        assert_eq!(producer.get("acks"), Some("all"));
        assert_eq!(producer.get("batch.size"), Some("65536"));
        assert_eq!(producer.get("fetch.wait.max.ms"), None, "a consumer property reached a producer");
        let consumer = kafka.config_for(ClientKind::Consumer, &[]);
        assert_eq!(consumer.get("fetch.wait.max.ms"), Some("100"));
        assert_eq!(consumer.get("batch.size"), None, "a producer property reached a consumer");
        assert_eq!(consumer.get("security.protocol"), Some("SASL_SSL"));
        assert_eq!(kafka.client_config().get("batch.size"), None);
    }

    #[test]
    fn a_property_needs_a_key_and_an_equals_sign() {
        assert_eq!(
            parse_prop("sasl.mechanism=PLAIN").expect("ok"),
            ("sasl.mechanism".into(), "PLAIN".into())
        );
        assert_eq!(parse_prop("a=b=c").expect("ok").1, "b=c");
        assert!(parse_prop("novalue").is_err());
        assert!(parse_prop("=x").is_err());
    }
}
