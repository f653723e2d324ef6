//! How every import store adapter stores a job's spec and state: the spec
//! (credentials included) as JSON text, the state by its name.

use crate::store::{ImportSpec, ImportState};
use crate::{Error, Result};

/// The stored spec (credentials included) as JSON.
#[cfg_attr(not(any(feature = "sqlite", feature = "cql")), allow(dead_code))]
pub(crate) fn spec_json(spec: &ImportSpec) -> Result<String> {
    serde_json::to_string(spec).map_err(|e| Error::Store(format!("cannot write an import spec: {e}")))
}

/// A stored spec read back.
#[cfg_attr(not(any(feature = "sqlite", feature = "cql")), allow(dead_code))]
pub(crate) fn parse_spec(json: &str) -> Result<ImportSpec> {
    serde_json::from_str(json).map_err(|_| Error::Store("an import job's stored spec cannot be read".into()))
}

/// A stored state read back.
#[cfg_attr(not(any(feature = "sqlite", feature = "cql")), allow(dead_code))]
pub(crate) fn parse_state(s: &str) -> Result<ImportState> {
    ImportState::parse(s).ok_or_else(|| Error::Store("an import job has an unknown state".into()))
}
