//! The instance id: a stable name for one data dir, kept in `<data-dir>/instance.id`.
//!
//! A consumer that applies events to a store of its own data dir (the ingest
//! store's open requests, the audit table) must see every event, so its
//! consumer group is named per instance: replicas with their own data dirs get
//! their own groups, and processes that share one data dir (and so one store)
//! share one group. The id is created once (a random UUID, written under a
//! temporary name and hard-linked into place, so processes that start together
//! agree on one) and read back on every start, so a restart resumes its group's
//! offsets. An operator may write the file before the first start to choose a
//! readable name (`ingest-0`): 1 to 64 ASCII letters, digits, `.`, `_` or `-`.

use crate::secret;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// The longest instance id accepted.
const MAX_LEN: usize = 64;

/// Where a data dir keeps its instance id.
pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join("instance.id")
}

/// The data dir's instance id, created on first use. Returns the id and whether it was created.
pub fn load_or_create(data_dir: &Path) -> Result<(String, bool)> {
    let file = path(data_dir);
    if file.exists() {
        return Ok((read(&file)?, false));
    }
    std::fs::create_dir_all(data_dir).with_context(|| format!("cannot create {}", data_dir.display()))?;
    let id = uuid::Uuid::new_v4().to_string();
    match secret::create_private(&file, format!("{id}\n").as_bytes()) {
        Ok(()) => Ok((id, true)),
        // Another process on this data dir created it first: use theirs.
        Err(_) if file.exists() => Ok((read(&file)?, false)),
        Err(e) => Err(e.context(format!("cannot create the instance id {}", file.display()))),
    }
}

/// Reads and checks an instance id file (surrounding whitespace is not part of the id).
fn read(file: &Path) -> Result<String> {
    let text = std::fs::read_to_string(file).with_context(|| format!("cannot read the instance id {}", file.display()))?;
    let id = text.trim();
    let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if id.is_empty() || id.len() > MAX_LEN || !id.chars().all(valid) {
        bail!(
            "the instance id in {} must be 1 to {MAX_LEN} ASCII letters, digits, '.', '_' or '-'",
            file.display()
        );
    }
    Ok(id.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instance_id_is_created_once_and_read_back_on_every_start() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        let (id, created) = load_or_create(&data).expect("create");
        assert!(created);
        assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
        assert_eq!(load_or_create(&data).expect("reuse"), (id.clone(), false));
        let other = tempfile::tempdir().expect("tempdir");
        assert_ne!(load_or_create(other.path()).expect("another data dir").0, id);
    }

    #[test]
    fn processes_that_start_together_on_one_data_dir_agree_on_one_id() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ids: Vec<String> = std::thread::scope(|s| {
            let racers: Vec<_> = (0..8).map(|_| s.spawn(|| load_or_create(dir.path()).expect("load").0)).collect();
            racers.into_iter().map(|r| r.join().expect("join")).collect()
        });
        assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
        assert_eq!(read(&path(dir.path())).expect("read"), ids[0]);
    }

    #[test]
    fn an_operator_may_name_the_instance_but_not_with_a_bad_id() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(path(dir.path()), "ingest-0\n").expect("write");
        assert_eq!(load_or_create(dir.path()).expect("named"), ("ingest-0".to_owned(), false));
        for bad in ["", " \n", "ingest 0", "ingest/0", &"x".repeat(MAX_LEN + 1)] {
            std::fs::write(path(dir.path()), bad).expect("write");
            assert!(load_or_create(dir.path()).is_err(), "{bad:?} was accepted");
        }
    }
}
