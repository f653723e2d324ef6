//! The data dir is private to the user that runs Alpes: it holds raw images
//! (PHI), the database (emails, password hashes, encrypted contact data) and
//! the keys.
//!
//! [`private_data_dir`] sets the process' file-creation mask to `077`, so
//! every file and folder it creates from then on (blobs, the SQLite database
//! and its journal, keys, temporary parts of uploads) is `0600` or `0700`,
//! whichever library creates it. A data dir made by an earlier version is
//! put right: the dir and its top-level folders become `0700`, its top-level
//! files `0600`. What lies deeper is out of other users' reach once its
//! parent is `0700`.

use anyhow::{Context, Result};
use std::path::Path;

/// Creates `data_dir` if needed and makes it private (see the module docs).
pub fn private_data_dir(data_dir: &Path) -> Result<()> {
    #[cfg(unix)]
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    std::fs::create_dir_all(data_dir).with_context(|| format!("cannot create data dir {}", data_dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let only_me = |path: &Path, mode: u32| {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
                .with_context(|| format!("cannot make {} private", path.display()))
        };
        only_me(data_dir, 0o700)?;
        for entry in std::fs::read_dir(data_dir).with_context(|| format!("cannot read {}", data_dir.display()))? {
            let entry = entry?;
            let kind = entry.file_type()?;
            if kind.is_dir() {
                only_me(&entry.path(), 0o700)?;
            } else if kind.is_file() {
                only_me(&entry.path(), 0o600)?;
            }
        }
    }
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).expect("metadata").permissions().mode() & 0o777
    }

    #[test]
    fn a_data_dir_made_open_by_an_earlier_version_is_closed_and_what_comes_next_is_private() {
        let tmp = tempfile::tempdir().expect("tmp");
        let data = tmp.path().join("data");
        std::fs::create_dir_all(data.join("blobs")).expect("mkdir");
        std::fs::write(data.join("alpes.db"), b"x").expect("write");
        for p in [&data, &data.join("blobs")] {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        std::fs::set_permissions(data.join("alpes.db"), std::fs::Permissions::from_mode(0o644)).expect("chmod");
        private_data_dir(&data).expect("private");
        assert_eq!(mode(&data), 0o700);
        assert_eq!(mode(&data.join("blobs")), 0o700);
        assert_eq!(mode(&data.join("alpes.db")), 0o600);
        std::fs::write(data.join("blobs/new"), b"phi").expect("write");
        std::fs::create_dir_all(data.join("blobs/raw/ab")).expect("mkdir");
        assert_eq!(mode(&data.join("blobs/new")), 0o600);
        assert_eq!(mode(&data.join("blobs/raw/ab")), 0o700);
    }
}
