//! `alpes token`: prints a bearer token signed with the instance's key (an
//! admin tool until the login flow exists).

use alpes::app::jwt_key_path;
use alpes::secret;
use alpes_platform::auth::{Jwt, Role};
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
}

/// Prints the token on stdout.
pub fn run(args: Args) -> Result<ExitCode> {
    let (key, created) = secret::load_or_create(&jwt_key_path(&args.data_dir))?;
    if created {
        eprintln!("alpes: created the signing key in {}", args.data_dir.display());
    }
    let token = Jwt::new(&key).issue(&args.user, args.role, Duration::from_secs(args.ttl_hours * 3600))?;
    println!("{token}");
    Ok(ExitCode::SUCCESS)
}
