//! The `alpes` crate: the composition root. [`settings`] reads how a process
//! runs, [`stores`] opens the stores its services use, and [`app`] builds each
//! service (`alpes up` runs it and the integration tests start it), plus the key files it keeps ([`secret`]), the
//! token keys it signs with ([`jwt_keys`]), the data dir's instance id
//! ([`instance`]) and its modes ([`private`]).
//! The command-line front end is in `main.rs` and `cmd/`.

pub mod app;
pub mod instance;
pub mod jwt_keys;
pub mod openmp;
pub mod private;
pub mod secret;
pub mod settings;
pub mod stores;
