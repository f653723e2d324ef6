//! `alpes token`: prints a bearer token signed with the instance's key (an
//! admin tool beside the login flow). It takes the same `--jwt-*` settings as
//! `alpes up`, so it signs with HS256 or the EdDSA signing key (its kid in the
//! header) as the instance does.
//!
//! The token names an account of the instance's identity store (the data
//! dir's SQLite file, or ScyllaDB with `--scylla-nodes`, as `alpes up`
//! chooses), with that account's role: the instance refuses a token whose
//! subject names no account (401 `unknown_subject`), so this refuses to make
//! one. `--create-account` first creates an account with that id and role
//! that cannot log in (for scripts and benchmarks).

use alpes::jwt_keys::JwtArgs;
use alpes_ingest::identity::IdentityArgs;
use alpes_platform::auth::Role;
use alpes_platform::password::PasswordArgs;
use alpes_platform::store::ScyllaArgs;
use anyhow::Result;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Arguments of `alpes token`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The id of the account the token names.
    #[arg(long)]
    user: String,
    /// proveedor, consumidor or admin: the account's role (checked; by default the account's).
    #[arg(long)]
    role: Option<Role>,
    /// Create the account first when no account has this id: one of `--role` that cannot log in.
    #[arg(long, requires = "role")]
    create_account: bool,
    /// The instance's data dir (its signing key is created there if missing).
    #[arg(long, env = "ALPES_DATA_DIR", default_value = "./data")]
    data_dir: PathBuf,
    /// Validity in hours.
    #[arg(long, default_value_t = 24)]
    ttl_hours: u64,
    /// The instance's token keys (the same flags and variables as `alpes up`).
    #[command(flatten)]
    jwt: JwtArgs,
    /// The password hasher's parameters (for `--create-account`; the same as `alpes up`'s).
    #[command(flatten)]
    passwords: PasswordArgs,
    /// ScyllaDB, when the instance keeps its identity store there.
    #[command(flatten)]
    scylla: ScyllaArgs,
}

/// Prints the token on stdout; exits 2 when the account is not there (or has another role).
pub fn run(args: Args) -> Result<ExitCode> {
    let loaded = args.jwt.load(&args.data_dir)?;
    if let Some(path) = &loaded.created {
        eprintln!("alpes: created the signing key {}", path.display());
    }
    let (rt, identity, place) = super::admin::open(
        &args.data_dir,
        &args.scylla,
        IdentityArgs {
            passwords: args.passwords,
            ..IdentityArgs::default()
        },
    )?;
    let account = match rt.block_on(identity.token_subject(&args.user, args.role, args.create_account)) {
        Ok(account) => account,
        Err(e) => {
            let hint = match e.code {
                "no_account" => "; register it (POST /usuarios, `alpes admin create`), or pass --create-account --role ROLE",
                _ => "",
            };
            eprintln!("alpes token: {} ({}) in {place}{hint}", e.message, e.code);
            return Ok(ExitCode::from(2));
        }
    };
    let token = loaded
        .jwt
        .issue(&account.user_id, account.role, Duration::from_secs(args.ttl_hours * 3600))?;
    println!("{token}");
    Ok(ExitCode::SUCCESS)
}
