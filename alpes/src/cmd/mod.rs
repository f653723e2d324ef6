//! One module per subcommand, and the test that holds `docs/configuration.md`
//! to their flags (`config_reference`, tests only).

pub mod admin;
pub mod anonymize;
pub mod jwt_key;
pub mod migrate;
pub mod perf;
pub mod token;
pub mod up;

#[cfg(test)]
mod config_reference;
