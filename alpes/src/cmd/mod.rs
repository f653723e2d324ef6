//! One module per subcommand.

pub mod admin;
pub mod anonymize;
pub mod jwt_key;
pub mod migrate;
pub mod perf;
pub mod token;
pub mod up;
