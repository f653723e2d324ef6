//! The de-identification secret: read from a file, or created once (0600) in the user's data directory;
//! and [`create_private`], how every key file is written.

use anyhow::{bail, Context, Result};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// The default secret location: `$XDG_DATA_HOME/alpes/secret.key`, else `~/.local/share/alpes/secret.key`.
pub fn default_path() -> Result<PathBuf> {
    let base = match std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => {
            let home = std::env::var_os("HOME").context("neither XDG_DATA_HOME nor HOME is set; pass --secret-file")?;
            PathBuf::from(home).join(".local").join("share")
        }
    };
    Ok(base.join("alpes").join("secret.key"))
}

/// Reads a secret file; trailing newlines are not part of the key.
pub fn read(path: &Path) -> Result<Vec<u8>> {
    let mut bytes = std::fs::read(path).with_context(|| format!("cannot read secret file {}", path.display()))?;
    while bytes.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        bytes.pop();
    }
    if bytes.len() < 16 {
        bail!(
            "secret file {} holds {} bytes; at least 16 are required",
            path.display(),
            bytes.len()
        );
    }
    Ok(bytes)
}

/// Loads the secret at `path`, creating one there (mode 0600) if it does not exist: 32 random
/// bytes written as 64 hex digits and a newline, so that [`read`], which drops trailing newlines,
/// gives back exactly the key this call returns (raw random bytes end in `\n` one time in 128).
/// Returns the key and whether it was created.
pub fn load_or_create(path: &Path) -> Result<(Vec<u8>, bool)> {
    if path.exists() {
        return Ok((read(path)?, false));
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut random = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut random))
        .context("cannot read /dev/urandom")?;
    let key: String = random.iter().map(|b| format!("{b:02x}")).collect();
    match create_private(path, format!("{key}\n").as_bytes()) {
        Ok(()) => Ok((key.into_bytes(), true)),
        // Another process sharing the key directory created it first: use theirs.
        Err(_) if path.exists() => Ok((read(path)?, false)),
        Err(e) => Err(e),
    }
}

/// Writes `bytes` to a new file at `path` that only its owner can read (0600),
/// synced to disk; refuses to overwrite an existing file. The file appears whole
/// or not at all: it is written under a temporary name and hard-linked into place,
/// so replicas that start together on one key directory never read a half-written key.
pub fn create_private(path: &Path, bytes: &[u8]) -> Result<()> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let tmp = path.with_file_name(format!(
        ".{}.{}.{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("key"),
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let written = write_private(&tmp, bytes).and_then(|()| std::fs::hard_link(&tmp, path));
    let _ = std::fs::remove_file(&tmp);
    written.with_context(|| format!("cannot create secret file {}", path.display()))
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    // A name is never in use by two live writers (process id and counter); a stale one from a crash is reused.
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut file = opts.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_created_secret_is_private_and_reused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a").join("secret.key");
        let (k1, created) = load_or_create(&path).expect("create");
        assert!(created);
        let (k2, created) = load_or_create(&path).expect("reuse");
        assert!(!created);
        assert_eq!(k1, k2);
        assert_eq!(read(&path).expect("read"), k1, "what is read back is the key that was returned");
        assert_eq!(k1.len(), 64);
        assert!(k1.iter().all(u8::is_ascii_hexdigit), "hex text: no byte a reader could trim");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn processes_that_create_the_same_secret_at_once_all_get_the_one_that_landed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("keys").join("secret.key");
        let keys: Vec<Vec<u8>> = std::thread::scope(|s| {
            let racers: Vec<_> = (0..8).map(|_| s.spawn(|| load_or_create(&path).expect("load").0)).collect();
            racers.into_iter().map(|r| r.join().expect("join")).collect()
        });
        let on_disk = read(&path).expect("read");
        assert!(keys.iter().all(|k| *k == on_disk), "every racer uses the key on disk");
        let names: Vec<_> = std::fs::read_dir(path.parent().expect("dir"))
            .expect("ls")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(
            names,
            vec![std::ffi::OsString::from("secret.key")],
            "no temporary file is left behind"
        );
        assert!(
            create_private(&path, b"0123456789abcdef0123").is_err(),
            "an existing key is never overwritten"
        );
        assert_eq!(read(&path).expect("read"), on_disk);
    }

    #[test]
    fn a_short_secret_file_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("k");
        std::fs::write(&path, "short\n").expect("write");
        assert!(read(&path).is_err());
    }
}
