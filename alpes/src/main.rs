//! The `alpes` binary: thin command-line front end over the Alpes crates.

mod cmd;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Alpes: de-identify and stream medical images.
#[derive(Debug, Parser)]
#[command(name = "alpes", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// De-identify DICOM, PNG and JPEG files offline (PS3.15 Annex E).
    Anonymize(cmd::anonymize::Args),
    /// Run every service in one process (ingest, anonymizer worker, billing, query API) on the embedded defaults,
    /// or only those `--services` names (with SCYLLA_NODES set, the ledger, catalog and accounts on that ScyllaDB cluster).
    Up(Box<cmd::up::Args>),
    /// Print a bearer token signed with the instance's key.
    Token(cmd::token::Args),
    /// Ed25519 key pairs for EdDSA tokens: `new` (for a rotation; prints the kid), `kid PATH`, `public PATH`.
    #[command(subcommand)]
    JwtKey(cmd::jwt_key::Command),
    /// Create the first admin account offline (`alpes admin create --email ...`).
    #[command(subcommand)]
    Admin(cmd::admin::Command),
    /// Apply the CQL schema to the ScyllaDB cluster in SCYLLA_NODES (the embedded SQLite store needs none).
    Migrate(Box<cmd::migrate::Args>),
    /// Kafka load tools that speak like Kafka's: `produce` (kafka-producer-perf-test's options and lines),
    /// `consume` (kafka-consumer-perf-test's) and `broker` (an in-process mock cluster for outside clients).
    #[command(subcommand)]
    Perf(cmd::perf::Command),
}

fn main() -> ExitCode {
    alpes::openmp::one_openmp_thread();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Anonymize(args) => cmd::anonymize::run(args),
        Command::Up(args) => cmd::up::run(*args),
        Command::Token(args) => cmd::token::run(args),
        Command::JwtKey(args) => cmd::jwt_key::run(args),
        Command::Migrate(args) => cmd::migrate::run(*args),
        Command::Admin(args) => cmd::admin::run(args),
        Command::Perf(args) => cmd::perf::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("alpes: {e:#}");
            ExitCode::from(2)
        }
    }
}
