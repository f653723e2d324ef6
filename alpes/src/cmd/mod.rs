//! One module per subcommand.

pub mod anonymize;
pub mod secret;
