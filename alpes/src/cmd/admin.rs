//! `alpes admin create`: creates an admin account in the instance's identity
//! store (the data dir's SQLite file, or ScyllaDB with `--scylla-nodes`, as
//! `alpes up` chooses), offline (the first admin; later ones an admin
//! creates with `POST /usuarios`).
//! The password comes from `ALPES_ADMIN_PASSWORD` or, without it, from the
//! first line of standard input; never from a flag (it would show in `ps`).
//! The account can log in at once; its `UsuarioRegistrado` is produced when
//! `alpes up` next starts (it announces every account not yet announced).

use alpes_ingest::identity::{Identity, IdentityArgs, NewUser};
use alpes_platform::auth::Role;
use alpes_platform::store::ScyllaArgs;
use anyhow::{Context, Result};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The subcommands of `alpes admin`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Create an admin account (the password from ALPES_ADMIN_PASSWORD or standard input).
    Create(CreateArgs),
}

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// The admin's email (the login name).
    #[arg(long)]
    email: String,
    /// The admin's display name.
    #[arg(long, default_value = "Administrator")]
    nombre: String,
    /// The organization, if any.
    #[arg(long)]
    organizacion: Option<String>,
    /// The instance's data dir.
    #[arg(long, env = "ALPES_DATA_DIR", default_value = "./data")]
    data_dir: PathBuf,
    /// The password hasher's parameters (the same as `alpes up`'s).
    #[command(flatten)]
    identity: IdentityArgs,
    /// ScyllaDB, when the instance keeps its identity store there.
    #[command(flatten)]
    scylla: ScyllaArgs,
}

/// Runs the subcommand.
pub fn run(command: Command) -> Result<ExitCode> {
    match command {
        Command::Create(a) => create(a),
    }
}

fn create(a: CreateArgs) -> Result<ExitCode> {
    let password = match std::env::var("ALPES_ADMIN_PASSWORD") {
        Ok(p) => p,
        Err(_) => {
            eprintln!("alpes admin create: password (one line on standard input):");
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line).context("cannot read the password")?;
            line.trim_end_matches(['\r', '\n']).to_owned()
        }
    };
    let (rt, identity, place) = open(&a.data_dir, &a.scylla, a.identity)?;
    let user = NewUser {
        nombre: a.nombre,
        email: a.email,
        password,
        role: Role::Admin,
        organization: a.organizacion,
        created_by: Some("alpes-admin-create".into()),
    };
    match rt.block_on(identity.create(user)) {
        Ok(admin) => {
            println!("{}", admin.user_id);
            eprintln!(
                "alpes admin create: admin {} created in {}; its UsuarioRegistrado is produced when alpes up next starts",
                admin.user_id, place
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("alpes admin create: {} ({})", e.message, e.code);
            Ok(ExitCode::from(2))
        }
    }
}

/// The instance's identity store as `alpes up` opens it (the data dir made
/// private first), a runtime to drive it, and where it is, in words.
pub fn open(data_dir: &Path, scylla: &ScyllaArgs, args: IdentityArgs) -> Result<(tokio::runtime::Runtime, Identity, String)> {
    alpes::private::private_data_dir(data_dir)?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let store = rt.block_on(alpes::app::open_identity(scylla, data_dir, false))?;
    let place = if scylla.configured() {
        format!("keyspace {} on ScyllaDB", scylla.keyspace)
    } else {
        data_dir.join("alpes.db").display().to_string()
    };
    let identity = Identity::new(store, args).context("bad password hashing settings")?;
    Ok((rt, identity, place))
}
