//! The security suite: each probe of the outside review (issue 16), replayed
//! against `alpes up` on the embedded defaults, one file per finding.

mod common;

#[path = "security/bombs.rs"]
mod bombs;
#[path = "security/crash.rs"]
mod crash;
#[path = "security/file_modes.rs"]
mod file_modes;
#[path = "security/json_errors.rs"]
mod json_errors;
#[path = "security/metric_labels.rs"]
mod metric_labels;
#[path = "security/money.rs"]
mod money;
#[path = "security/pseudonyms.rs"]
mod pseudonyms;
#[path = "security/requests.rs"]
mod requests;
#[path = "security/slow_clients.rs"]
mod slow_clients;
