//! Applies the embedded CQL schema ([`alpes_schemas::cql`]) to a ScyllaDB
//! cluster: what `alpes migrate` runs.
//!
//! Every run executes the bootstrap (the keyspace and `schema_migrations`),
//! then each numbered file whose version is not recorded in
//! `schema_migrations`, in order, waiting for schema agreement after each and
//! recording it afterwards. Every statement is `CREATE ... IF NOT EXISTS`, so a
//! run cut off half-way simply runs again, two runs at once are harmless, and
//! a re-run applies nothing. A recorded file whose checksum no longer matches
//! the embedded one is an error: released files are never edited, a change is
//! a new numbered file.

use super::conn::{db, validate_keyspace};
use crate::{Error, Result};
use alpes_schemas::cql::{self, Migration};
use scylla::client::session::Session;
use scylla::value::CqlTimestamp;
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// The replication of a keyspace created for development: one copy.
pub const DEFAULT_REPLICATION: &str = "{'class': 'SimpleStrategy', 'replication_factor': 1}";

/// Whether a new keyspace uses ScyllaDB tablets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Tablets {
    /// Off for NetworkTopologyStrategy (the ledger's payouts need lightweight
    /// transactions, which keyspaces with tablets lack on ScyllaDB up to
    /// 2025.x); not mentioned otherwise (SimpleStrategy never uses tablets).
    Auto,
    /// `tablets = {'enabled': false}`.
    Off,
    /// `tablets = {'enabled': true}` (only on a ScyllaDB whose tablets support lightweight transactions).
    On,
    /// Say nothing: the cluster's default (Apache Cassandra, or a ScyllaDB without tablets).
    Omit,
}

impl Tablets {
    /// The text that follows the replication map in `CREATE KEYSPACE`.
    fn clause(self, replication: &str) -> &'static str {
        let off = " AND tablets = {'enabled': false}";
        match self {
            Tablets::Auto if replication.contains("NetworkTopologyStrategy") => off,
            Tablets::Auto | Tablets::Omit => "",
            Tablets::Off => off,
            Tablets::On => " AND tablets = {'enabled': true}",
        }
    }
}

/// What a migration run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migrated {
    /// The keyspace was created by this run.
    pub created_keyspace: bool,
    /// Files applied by this run, in order.
    pub applied: Vec<&'static str>,
    /// Files that were already applied.
    pub already: Vec<&'static str>,
}

/// Applies the schema to `keyspace`, creating it with `replication` (a CQL map) if it does not exist.
pub async fn migrate(session: &Session, keyspace: &str, replication: &str, tablets: Tablets) -> Result<Migrated> {
    validate_keyspace(keyspace)?;
    let replication = validate_replication(replication)?;
    let vars = [
        ("keyspace", keyspace),
        ("replication", replication),
        ("tablets", tablets.clause(replication)),
    ];
    let existed = keyspace_exists(session, keyspace).await?;
    run_script(session, &cql::render(cql::BOOTSTRAP, &vars)).await?;
    let recorded = recorded(session, keyspace).await?;
    let mut done = Migrated {
        created_keyspace: !existed,
        applied: Vec::new(),
        already: Vec::new(),
    };
    for m in cql::MIGRATIONS {
        let sum = checksum(m);
        match recorded.get(&m.version) {
            Some(had) if *had == sum => done.already.push(m.name),
            Some(had) => {
                return Err(Error::Config(format!(
                    "{} was applied with checksum {had} but the embedded file has {sum}: released schema files must not change; \
                     put the change in a new numbered file",
                    m.name
                )))
            }
            None => {
                run_script(session, &cql::render(m.source, &vars)).await?;
                session
                    .query_unpaged(
                        format!("INSERT INTO {keyspace}.schema_migrations (version, name, checksum, applied_at) VALUES (?, ?, ?, ?)"),
                        (m.version, m.name, sum.as_str(), CqlTimestamp(alpes_schemas::now_millis())),
                    )
                    .await
                    .map_err(db("record a migration"))?;
                done.applied.push(m.name);
            }
        }
    }
    Ok(done)
}

/// Checks that `replication` is one CQL map literal, and nothing else (it is written into CQL text).
pub fn validate_replication(replication: &str) -> Result<&str> {
    let r = replication.trim();
    if r.starts_with('{') && r.ends_with('}') && !r.contains(';') && !r.contains("--") && !r.contains("//") {
        Ok(r)
    } else {
        Err(Error::Config(format!(
            "replication {replication:?}: give one CQL map, e.g. {DEFAULT_REPLICATION} or \
             {{'class': 'NetworkTopologyStrategy', 'dc1': 3}}"
        )))
    }
}

/// Runs each statement of a script, then waits until the cluster agrees on the schema.
async fn run_script(session: &Session, script: &str) -> Result<()> {
    for statement in cql::statements(script) {
        session.query_unpaged(statement, &[]).await.map_err(db("apply the schema"))?;
    }
    session.await_schema_agreement().await.map_err(db("await schema agreement"))?;
    Ok(())
}

async fn keyspace_exists(session: &Session, keyspace: &str) -> Result<bool> {
    let result = session
        .query_unpaged(
            "SELECT keyspace_name FROM system_schema.keyspaces WHERE keyspace_name = ?",
            (keyspace,),
        )
        .await
        .map_err(db("read the keyspaces"))?;
    Ok(result.into_rows_result().map_err(db("read the keyspaces"))?.rows_num() > 0)
}

/// The versions recorded in `schema_migrations`, with their checksums.
async fn recorded(session: &Session, keyspace: &str) -> Result<HashMap<i32, String>> {
    let result = session
        .query_unpaged(format!("SELECT version, checksum FROM {keyspace}.schema_migrations"), &[])
        .await
        .map_err(db("read schema_migrations"))?;
    let rows = result.into_rows_result().map_err(db("read schema_migrations"))?;
    rows.rows::<(i32, Option<String>)>()
        .map_err(db("read schema_migrations"))?
        .map(|r| r.map(|(v, sum)| (v, sum.unwrap_or_default())).map_err(db("read schema_migrations")))
        .collect()
}

/// sha256 of the file as embedded (the template, before substitution).
fn checksum(m: &Migration) -> String {
    hex::encode(Sha256::digest(m.source.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replication_map_is_accepted_and_anything_else_refused() {
        assert_eq!(
            validate_replication(&format!(" {DEFAULT_REPLICATION} ")).unwrap(),
            DEFAULT_REPLICATION
        );
        assert!(validate_replication("{'class': 'NetworkTopologyStrategy', 'dc1': 3}").is_ok());
        for bad in ["", "SimpleStrategy", "{'a': 1}; DROP KEYSPACE alpes", "{'a': 1} -- x}", "{'a': 1"] {
            assert!(validate_replication(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tablets_are_turned_off_by_default_only_where_they_would_be_used() {
        let nts = "{'class': 'NetworkTopologyStrategy', 'dc1': 3}";
        assert_eq!(Tablets::Auto.clause(nts), " AND tablets = {'enabled': false}");
        assert_eq!(Tablets::Auto.clause(DEFAULT_REPLICATION), "");
        assert_eq!(Tablets::Omit.clause(nts), "");
        assert_eq!(Tablets::On.clause(DEFAULT_REPLICATION), " AND tablets = {'enabled': true}");
    }

    #[test]
    fn checksums_are_stable_hex() {
        let m = cql::MIGRATIONS[0];
        assert_eq!(checksum(&m), checksum(&m));
        assert_eq!(checksum(&m).len(), 64);
    }
}
