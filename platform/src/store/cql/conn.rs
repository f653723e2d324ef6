//! The ScyllaDB connection settings ([`ScyllaArgs`], shared by `alpes migrate`
//! and the services) and the session they open.
//!
//! The session uses the driver's default load balancing, which is token aware
//! (and shard aware on ScyllaDB): a prepared statement whose partition key is
//! bound goes straight to a replica that owns it. Every request runs at the
//! configured consistency (`LOCAL_QUORUM` by default); lightweight
//! transactions and serial reads use the configured serial consistency
//! (`LOCAL_SERIAL` by default). Only the contact points named in
//! `SCYLLA_NODES` are dialled first; the driver then learns the rest of that
//! cluster from their `system.peers`. TLS is not compiled in (the driver's
//! `rustls-023` feature adds it).
//!
//! Writes carry this process's own timestamps (a monotonic microsecond clock),
//! not each coordinator's: a write and a delete of one row a moment apart go
//! to whichever nodes the driver picks, and with coordinator clocks a skew
//! larger than that moment could order them the wrong way round. A statement
//! that names its own (`USING TIMESTAMP`) keeps it, and lightweight
//! transactions use their Paxos ballot.

use crate::{Error, Result};
use scylla::client::execution_profile::ExecutionProfile;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::policies::timestamp_generator::MonotonicTimestampGenerator;
use scylla::statement::{Consistency, SerialConsistency};
use scylla::value::{CqlValue, Row};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// The keyspace used when none is given.
pub const DEFAULT_KEYSPACE: &str = "alpes";

/// How to reach the ScyllaDB cluster. Without nodes, Alpes uses its embedded SQLite store.
#[derive(Clone, clap::Args)]
pub struct ScyllaArgs {
    /// ScyllaDB contact points, `host:port`, comma-separated. Unset: the embedded SQLite store.
    #[arg(
        id = "scylla_nodes",
        long = "scylla-nodes",
        env = "SCYLLA_NODES",
        value_name = "HOST:PORT",
        value_delimiter = ','
    )]
    pub nodes: Vec<String>,
    /// The keyspace that holds Alpes' tables.
    #[arg(
        id = "scylla_keyspace",
        long = "scylla-keyspace",
        visible_alias = "keyspace",
        env = "SCYLLA_KEYSPACE",
        value_name = "NAME",
        default_value = DEFAULT_KEYSPACE
    )]
    pub keyspace: String,
    /// Consistency of reads and writes: one, two, three, quorum, all, local_one, local_quorum, each_quorum.
    #[arg(
        id = "scylla_consistency",
        long = "scylla-consistency",
        env = "SCYLLA_CONSISTENCY",
        value_name = "LEVEL",
        default_value = "local_quorum",
        value_parser = parse_consistency
    )]
    pub consistency: Consistency,
    /// Consistency of lightweight transactions and serial reads: serial or local_serial.
    #[arg(
        id = "scylla_serial_consistency",
        long = "scylla-serial-consistency",
        env = "SCYLLA_SERIAL_CONSISTENCY",
        value_name = "LEVEL",
        default_value = "local_serial",
        value_parser = parse_serial_consistency
    )]
    pub serial_consistency: SerialConsistency,
    /// User name, for a cluster with password authentication.
    #[arg(
        id = "scylla_username",
        long = "scylla-username",
        env = "SCYLLA_USERNAME",
        value_name = "USER",
        requires = "scylla_password"
    )]
    pub username: Option<String>,
    /// Password, for a cluster with password authentication (prefer the environment variable).
    #[arg(
        id = "scylla_password",
        long = "scylla-password",
        env = "SCYLLA_PASSWORD",
        value_name = "PASSWORD",
        hide_env_values = true,
        requires = "scylla_username"
    )]
    pub password: Option<String>,
    /// Rows per page when a whole partition is read (a balance is summed from its user's partition).
    #[arg(
        id = "scylla_page_size",
        long = "scylla-page-size",
        env = "SCYLLA_PAGE_SIZE",
        value_name = "ROWS",
        default_value_t = 1000,
        value_parser = clap::value_parser!(i32).range(1..)
    )]
    pub page_size: i32,
    /// Seconds to wait for a connection to a node.
    #[arg(
        id = "scylla_connect_timeout",
        long = "scylla-connect-timeout",
        env = "SCYLLA_CONNECT_TIMEOUT",
        value_name = "SECONDS",
        default_value_t = 10
    )]
    pub connect_timeout_secs: u64,
}

impl fmt::Debug for ScyllaArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScyllaArgs")
            .field("nodes", &self.nodes)
            .field("keyspace", &self.keyspace)
            .field("consistency", &self.consistency)
            .field("serial_consistency", &self.serial_consistency)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("page_size", &self.page_size)
            .field("connect_timeout_secs", &self.connect_timeout_secs)
            .finish()
    }
}

impl Default for ScyllaArgs {
    /// The flags' defaults, with no cluster named (so Alpes uses its embedded SQLite store); the environment is not read.
    fn default() -> Self {
        ScyllaArgs {
            nodes: Vec::new(),
            keyspace: DEFAULT_KEYSPACE.to_owned(),
            consistency: Consistency::LocalQuorum,
            serial_consistency: SerialConsistency::LocalSerial,
            username: None,
            password: None,
            page_size: 1000,
            connect_timeout_secs: 10,
        }
    }
}

impl ScyllaArgs {
    /// The settings from the environment alone (`SCYLLA_NODES`, `SCYLLA_KEYSPACE`, ...), with the defaults of the flags.
    pub fn from_env() -> Result<ScyllaArgs> {
        use clap::{Args, FromArgMatches};
        let matches = ScyllaArgs::augment_args(clap::Command::new("alpes"))
            .try_get_matches_from(["alpes"])
            .map_err(|e| Error::Config(e.to_string()))?;
        ScyllaArgs::from_arg_matches(&matches).map_err(|e| Error::Config(e.to_string()))
    }

    /// The contact points named, blanks dropped.
    pub fn contact_points(&self) -> Vec<&str> {
        self.nodes.iter().map(|n| n.trim()).filter(|n| !n.is_empty()).collect()
    }

    /// Whether a cluster is named at all (else Alpes runs on SQLite).
    pub fn configured(&self) -> bool {
        !self.contact_points().is_empty()
    }

    /// Opens a session on the named cluster; its default execution profile
    /// carries the configured consistencies.
    pub async fn connect(&self) -> Result<Arc<Session>> {
        let nodes = self.contact_points();
        if nodes.is_empty() {
            return Err(Error::Config("no ScyllaDB node named (set SCYLLA_NODES or --scylla-nodes)".into()));
        }
        validate_keyspace(&self.keyspace)?;
        let profile = ExecutionProfile::builder()
            .consistency(self.consistency)
            .serial_consistency(Some(self.serial_consistency))
            .build();
        let mut builder = SessionBuilder::new()
            .known_nodes(&nodes)
            .default_execution_profile_handle(profile.into_handle())
            .connection_timeout(Duration::from_secs(self.connect_timeout_secs.max(1)))
            .timestamp_generator(Arc::new(MonotonicTimestampGenerator::new()))
            .keyspaces_to_fetch([self.keyspace.clone()]);
        match (&self.username, &self.password) {
            (Some(user), Some(password)) => builder = builder.user(user, password),
            (None, None) => {}
            _ => {
                return Err(Error::Config(
                    "a ScyllaDB user name needs a password, and a password a user name".into(),
                ))
            }
        }
        let session = builder.build().await.map_err(db("connect"))?;
        Ok(Arc::new(session))
    }
}

/// Checks that `name` is a plain, unquoted keyspace name (it is written into CQL text).
pub fn validate_keyspace(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= 48;
    if ok {
        Ok(())
    } else {
        Err(Error::Config(format!(
            "keyspace {name:?}: use 1 to 48 lowercase letters, digits or _, starting with a letter"
        )))
    }
}

/// Parses a consistency name (`local_quorum`, `QUORUM`, ...); the serial ones are not accepted here.
pub fn parse_consistency(s: &str) -> std::result::Result<Consistency, String> {
    Ok(match s.trim().to_ascii_lowercase().replace('-', "_").as_str() {
        "any" => Consistency::Any,
        "one" => Consistency::One,
        "two" => Consistency::Two,
        "three" => Consistency::Three,
        "quorum" => Consistency::Quorum,
        "all" => Consistency::All,
        "local_quorum" => Consistency::LocalQuorum,
        "each_quorum" => Consistency::EachQuorum,
        "local_one" => Consistency::LocalOne,
        other => return Err(format!("unknown consistency {other:?} (serial ones go in the serial consistency)")),
    })
}

/// Parses a serial consistency name: `serial` or `local_serial`.
pub fn parse_serial_consistency(s: &str) -> std::result::Result<SerialConsistency, String> {
    match s.trim().to_ascii_lowercase().replace('-', "_").as_str() {
        "serial" => Ok(SerialConsistency::Serial),
        "local_serial" => Ok(SerialConsistency::LocalSerial),
        other => Err(format!("unknown serial consistency {other:?}: serial or local_serial")),
    }
}

/// The consistency a serial read runs at.
pub(crate) fn serial_read(sc: SerialConsistency) -> Consistency {
    match sc {
        SerialConsistency::Serial => Consistency::Serial,
        SerialConsistency::LocalSerial => Consistency::LocalSerial,
    }
}

/// Maps a driver error to [`Error::Store`], naming the step that failed.
pub(crate) fn db<E: fmt::Display>(step: &'static str) -> impl FnOnce(E) -> Error {
    move |e| Error::Store(format!("scylla {step}: {e}"))
}

/// Whether a conditional statement (a lightweight transaction) applied: the `[applied]` column of its first row.
pub(crate) fn was_applied(result: scylla::response::query_result::QueryResult) -> Result<bool> {
    let rows = result.into_rows_result().map_err(db("read a compare-and-set"))?;
    let row = rows.first_row::<Row>().map_err(db("read a compare-and-set"))?;
    match row.columns.first() {
        Some(Some(CqlValue::Boolean(applied))) => Ok(*applied),
        _ => Err(Error::Store("scylla: a compare-and-set answered without [applied]".into())),
    }
}

/// A short, growing, jittered pause before a lost compare-and-set is tried again.
pub(crate) fn backoff(attempt: u32) -> Duration {
    let base = 2u64 << attempt.min(5);
    let jitter = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::from(d.subsec_nanos()) % base);
    Duration::from_millis(base + jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consistency_names_parse_in_any_case() {
        assert_eq!(parse_consistency("LOCAL_QUORUM"), Ok(Consistency::LocalQuorum));
        assert_eq!(parse_consistency("local-one"), Ok(Consistency::LocalOne));
        assert!(parse_consistency("serial").is_err());
        assert_eq!(parse_serial_consistency("SERIAL"), Ok(SerialConsistency::Serial));
        assert!(parse_serial_consistency("quorum").is_err());
    }

    #[test]
    fn only_plain_keyspace_names_are_accepted() {
        assert!(validate_keyspace("alpes").is_ok());
        assert!(validate_keyspace("alpes_test_01").is_ok());
        for bad in ["", "Alpes", "1alpes", "alpes;drop", "a-b", "\"alpes\"", &"a".repeat(49)] {
            assert!(validate_keyspace(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn default_is_the_flags_defaults_without_a_cluster() {
        use clap::{Args, FromArgMatches};
        let d = ScyllaArgs::default();
        assert!(!d.configured());
        // The flags' defaults, where the environment names none of them.
        let parsed = ScyllaArgs::from_arg_matches(
            &ScyllaArgs::augment_args(clap::Command::new("t"))
                .try_get_matches_from(["t"])
                .unwrap(),
        )
        .unwrap();
        let unset = |var: &str| std::env::var_os(var).is_none();
        if unset("SCYLLA_KEYSPACE") {
            assert_eq!(parsed.keyspace, d.keyspace);
        }
        if unset("SCYLLA_CONSISTENCY") && unset("SCYLLA_SERIAL_CONSISTENCY") {
            assert_eq!(
                (parsed.consistency, parsed.serial_consistency),
                (d.consistency, d.serial_consistency)
            );
        }
        if unset("SCYLLA_PAGE_SIZE") && unset("SCYLLA_CONNECT_TIMEOUT") {
            assert_eq!(
                (parsed.page_size, parsed.connect_timeout_secs),
                (d.page_size, d.connect_timeout_secs)
            );
        }
    }

    #[test]
    fn the_defaults_name_no_cluster_and_hide_the_password() {
        use clap::{Args, FromArgMatches};
        let m = ScyllaArgs::augment_args(clap::Command::new("t"))
            .try_get_matches_from([
                "t",
                "--scylla-nodes",
                "a:9042, b:9042,",
                "--scylla-username",
                "u",
                "--scylla-password",
                "secret",
            ])
            .unwrap();
        let args = ScyllaArgs::from_arg_matches(&m).unwrap();
        assert_eq!(args.contact_points(), vec!["a:9042", "b:9042"]);
        assert_eq!(args.keyspace, "alpes");
        assert_eq!(args.consistency, Consistency::LocalQuorum);
        assert_eq!(args.serial_consistency, SerialConsistency::LocalSerial);
        assert!(!format!("{args:?}").contains("secret"));
        let bare = ScyllaArgs::from_arg_matches(
            &ScyllaArgs::augment_args(clap::Command::new("t"))
                .try_get_matches_from(["t"])
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            bare.configured(),
            std::env::var("SCYLLA_NODES").is_ok_and(|n| n.split(',').any(|n| !n.trim().is_empty()))
        );
    }
}
