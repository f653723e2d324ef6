//! `alpes up`: every service in one process on the embedded defaults, or the
//! services `--services` names (one per container in a deployment), with the
//! ledger, the catalog and the identity store on ScyllaDB when a cluster is named.

use alpes::app::{App, Settings};
use alpes_platform::shutdown::Shutdown;
use anyhow::Result;
use std::process::ExitCode;

/// Arguments of `alpes up`.
pub type Args = Settings;

/// Runs the platform until Ctrl-C or SIGTERM.
pub fn run(args: Args) -> Result<ExitCode> {
    alpes_platform::telemetry::init();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async move {
        let app = App::build(args.clone()).await?;
        let url = format!("http://{}", app.addr());
        let services: Vec<String> = args
            .services
            .iter()
            .filter_map(|s| clap::ValueEnum::to_possible_value(s).map(|v| v.get_name().to_owned()))
            .collect();
        // The URL ends its line: scripts read it from there.
        println!("alpes: listening on {url}");
        println!("alpes: services {}", services.join(", "));
        if let Some(dimse) = app.dimse_addr() {
            println!("alpes: DICOM listener (AE title {}) on {dimse}", args.dimse.ae_title.trim());
        }
        println!(
            "alpes: kafka bootstrap {}{}",
            app.bootstrap(),
            if args.kafka.bootstrap.is_none() {
                " (in-process development broker: not durable)"
            } else {
                ""
            }
        );
        println!("alpes: data dir {}", args.data_dir.display());
        match app.jwt().signing_kid() {
            Some(kid) => println!(
                "alpes: tokens signed with EdDSA, kid {kid} (accepted kids {}); public keys at {url}/.well-known/jwks.json",
                app.jwt().verifying_kids().join(", ")
            ),
            None => println!("alpes: tokens signed with HS256 (the data dir's keys/jwt.key)"),
        }
        if args.scylla.configured() {
            println!(
                "alpes: ledger, catalog, identity and ingest store on ScyllaDB {} (keyspace {}); audit table on SQLite",
                args.scylla.contact_points().join(","),
                args.scylla.keyspace
            );
        } else {
            println!("alpes: every store on SQLite (alpes.db in the data dir)");
        }
        if args.transactional && args.kafka.bootstrap.is_none() {
            eprintln!(
                "alpes: warning: --transactional on the development broker: its transactions work, but it does not store \
                 transactional offset commits, so a restarted worker reprocesses from the start (same event ids)"
            );
        }
        if app.kept() > 0 {
            println!(
                "alpes: re-published {} usage, payment and audit event(s) kept from before a crash",
                app.kept()
            );
        }
        if app.republished() > 0 {
            println!("alpes: re-published {} unfinished request(s)", app.republished());
        }
        println!(
            "alpes: get a token with `alpes token --user <id> --role proveedor --data-dir {}`{}",
            args.data_dir.display(),
            if app.jwt().signing_kid().is_some() {
                " and the same --jwt-* settings"
            } else {
                ""
            }
        );
        let shutdown = Shutdown::new();
        shutdown.on_ctrl_c();
        app.run_until_stopped(shutdown).await?;
        println!("alpes: stopped");
        Ok(ExitCode::SUCCESS)
    })
}
