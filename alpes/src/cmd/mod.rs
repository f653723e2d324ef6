//! One module per subcommand.

pub mod anonymize;
pub mod migrate;
pub mod token;
pub mod up;
