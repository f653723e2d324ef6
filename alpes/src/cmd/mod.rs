//! One module per subcommand.

pub mod anonymize;
pub mod token;
pub mod up;
