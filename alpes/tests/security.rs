//! The security suite: each probe of the outside review (issue 16), replayed
//! against `alpes up` on the embedded defaults, one file per finding.

mod common;

#[path = "security/slow_clients.rs"]
mod slow_clients;
