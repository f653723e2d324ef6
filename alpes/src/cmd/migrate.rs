//! `alpes migrate`: applies the embedded CQL schema (`schemas/cql`) to the
//! ScyllaDB cluster named by `--scylla-nodes` / `SCYLLA_NODES`. Idempotent: a
//! re-run applies nothing. Without a cluster there is nothing to do: the
//! embedded SQLite store applies its schema when it is opened.

use alpes_platform::store::cql::conn::validate_keyspace;
use alpes_platform::store::cql::migrate::{migrate, validate_replication, Tablets, DEFAULT_REPLICATION};
use alpes_platform::store::ScyllaArgs;
use anyhow::{Context, Result};
use std::process::ExitCode;

/// Arguments of `alpes migrate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    scylla: ScyllaArgs,
    /// The keyspace's replication, a CQL map (used only when the keyspace is created).
    #[arg(long, env = "SCYLLA_REPLICATION", default_value = DEFAULT_REPLICATION)]
    replication: String,
    /// ScyllaDB tablets for a new keyspace: auto turns them off for NetworkTopologyStrategy,
    /// since the ledger's payouts use lightweight transactions.
    #[arg(long, value_enum, default_value_t = Tablets::Auto)]
    tablets: Tablets,
}

/// Migrates, printing what it applied.
pub fn run(args: Args) -> Result<ExitCode> {
    if !args.scylla.configured() {
        println!(
            "alpes migrate: no ScyllaDB cluster named (SCYLLA_NODES / --scylla-nodes), nothing to do: \
             the embedded SQLite store needs no migration, its schema is applied when alpes opens it"
        );
        return Ok(ExitCode::SUCCESS);
    }
    // Refuse bad settings before dialling anything.
    validate_keyspace(&args.scylla.keyspace)?;
    validate_replication(&args.replication)?;
    let nodes = args.scylla.contact_points().join(",");
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async {
        let session = args.scylla.connect().await.with_context(|| format!("connecting to {nodes}"))?;
        let keyspace = &args.scylla.keyspace;
        let done = migrate(&session, keyspace, &args.replication, args.tablets).await?;
        if done.created_keyspace {
            println!(
                "alpes migrate: created keyspace {keyspace} with replication {}",
                args.replication.trim()
            );
        }
        for name in &done.already {
            println!("alpes migrate: {name} already applied");
        }
        for name in &done.applied {
            println!("alpes migrate: applied {name}");
        }
        println!(
            "alpes migrate: keyspace {keyspace} on {nodes} is up to date ({} applied now, {} before)",
            done.applied.len(),
            done.already.len()
        );
        Ok(ExitCode::SUCCESS)
    })
}
