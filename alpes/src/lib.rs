//! The `alpes` crate: the composed platform ([`app`]) that `alpes up` runs and
//! the integration tests start, plus the key files it keeps ([`secret`]), the
//! token keys it signs with ([`jwt_keys`]) and the data dir's instance id
//! ([`instance`]).
//! The command-line front end is in `main.rs` and `cmd/`.

pub mod app;
pub mod instance;
pub mod jwt_keys;
pub mod secret;
