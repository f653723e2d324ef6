//! The integration suite on real engines: Apache Kafka (KRaft, 3 brokers),
//! Apache Cassandra (the CQL stand-in for ScyllaDB), a SeaweedFS S3 server
//! and an Apicurio Registry (Confluent API), started by
//! `deploy/local/engines.sh start DIR`; the suite runs with
//! `ALPES_ENGINES_DIR=DIR` and says SKIPPED without it.
//!
//! - [`topology`]: the compose topology as processes: two ingest, two
//!   anonymizer, billing and query-api processes share the engines.
//! - [`transactions`]: `--transactional` workers, a worker killed mid-batch,
//!   and `read_committed` readers.
//! - [`faults`]: a Kafka broker killed, the CQL node stopped and the S3
//!   server stopped while traffic runs; each reports what was acknowledged
//!   and what came out, which must be equal.
//! - [`consent`]: the consent workflow with the registry, the notifications
//!   and the catalog's gate on the keyspace, across processes.
//! - [`downstream`]: a Python consumer (confluent-kafka's
//!   `AvroDeserializer`) reads every event type through the registry.
//!
//! The tests share the engines, so they run one at a time ([`harness::serial`]).

#[path = "common/mod.rs"]
mod common;
#[path = "engines/consent.rs"]
mod consent;
#[path = "engines/downstream.rs"]
mod downstream;
#[path = "engines/faults.rs"]
mod faults;
#[path = "engines/harness.rs"]
mod harness;
#[path = "engines/topology.rs"]
mod topology;
#[path = "engines/traffic.rs"]
mod traffic;
#[path = "engines/transactions.rs"]
mod transactions;
