//! `alpes token`: prints a bearer token signed with the instance's key (an
//! admin tool beside the login flow). It takes the same `--jwt-*` settings as
//! `alpes up`, so it signs with HS256 or the EdDSA signing key (its kid in the
//! header) as the instance does.

use alpes::jwt_keys::JwtArgs;
use alpes_platform::auth::Role;
use anyhow::Result;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Arguments of `alpes token`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The user id the token names.
    #[arg(long)]
    user: String,
    /// proveedor, consumidor or admin.
    #[arg(long)]
    role: Role,
    /// The instance's data dir (its signing key is created there if missing).
    #[arg(long, env = "ALPES_DATA_DIR", default_value = "./data")]
    data_dir: PathBuf,
    /// Validity in hours.
    #[arg(long, default_value_t = 24)]
    ttl_hours: u64,
    /// The instance's token keys (the same flags and variables as `alpes up`).
    #[command(flatten)]
    jwt: JwtArgs,
}

/// Prints the token on stdout.
pub fn run(args: Args) -> Result<ExitCode> {
    let loaded = args.jwt.load(&args.data_dir)?;
    if let Some(path) = &loaded.created {
        eprintln!("alpes: created the signing key {}", path.display());
    }
    let token = loaded
        .jwt
        .issue(&args.user, args.role, Duration::from_secs(args.ttl_hours * 3600))?;
    println!("{token}");
    Ok(ExitCode::SUCCESS)
}
