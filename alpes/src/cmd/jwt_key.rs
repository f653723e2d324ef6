//! `alpes jwt-key`: Ed25519 key pairs for EdDSA tokens (`--jwt-alg eddsa`).
//! `new` writes a fresh pair for a rotation and prints its kid; `kid` prints
//! the kid derived from a key file; `public` prints a private key's public key.

use alpes::jwt_keys::{read_any_key, write_keypair};
use alpes_platform::auth::keys::Ed25519SigningKey;
use anyhow::Result;
use std::path::PathBuf;
use std::process::ExitCode;

/// The subcommands of `alpes jwt-key`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Write a new key pair, DIR/<kid>.key.pem (PKCS#8, 0600) and DIR/<kid>.pub.pem (SPKI), and print its kid.
    New {
        /// Where the two files are written.
        #[arg(long, default_value = ".")]
        out_dir: PathBuf,
    },
    /// Print the kid derived from a key file, private or public (what `--jwt-kid` defaults to).
    Kid {
        /// A PKCS#8 (BEGIN PRIVATE KEY) or SPKI (BEGIN PUBLIC KEY) PEM file.
        path: PathBuf,
    },
    /// Print the public key (SPKI PEM) of a key file, for `--jwt-verify-key`.
    Public {
        /// A PKCS#8 (BEGIN PRIVATE KEY) or SPKI (BEGIN PUBLIC KEY) PEM file.
        path: PathBuf,
    },
}

/// Runs the subcommand.
pub fn run(command: Command) -> Result<ExitCode> {
    match command {
        Command::New { out_dir } => {
            let key = Ed25519SigningKey::generate()?;
            let private = out_dir.join(format!("{}.key.pem", key.kid()));
            let public = write_keypair(&key, &private)?;
            eprintln!(
                "alpes: wrote {} (private, 0600) and {}\n\
                 alpes: sign with it: --jwt-signing-key {}\n\
                 alpes: accept its tokens elsewhere: --jwt-verify-key {}={}",
                private.display(),
                public.display(),
                private.display(),
                key.kid(),
                public.display()
            );
            println!("{}", key.kid());
        }
        Command::Kid { path } => println!("{}", read_any_key(&path)?.kid()),
        Command::Public { path } => print!("{}", read_any_key(&path)?.to_public_key_pem()?),
    }
    Ok(ExitCode::SUCCESS)
}
