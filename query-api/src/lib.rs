//! Alpes query API: the read side. Every GET is answered from the store; no
//! request path reads Kafka.
//!
//! - [`routes::saldo`]: `GET /monetizacion/saldo/{usuario_id}`.
//! - [`routes::movimientos`]: `GET /monetizacion/movimientos/{usuario_id}`.

pub mod routes;

use alpes_platform::auth::Jwt;
use alpes_platform::metrics::Metrics;
use alpes_platform::store::LedgerStore;
use axum::extract::FromRef;
use axum::routing::get;
use axum::Router;
use std::sync::Arc;

/// Everything the query routes share.
#[derive(Debug, Clone)]
pub struct QueryState {
    /// Verifies bearer tokens.
    pub jwt: Arc<Jwt>,
    /// Ledgers and balances.
    pub ledger: Arc<dyn LedgerStore>,
    /// Process metrics.
    pub metrics: Arc<Metrics>,
    /// The currency a balance is shown in when the caller names none (ISO 4217).
    pub currency: String,
}

impl FromRef<QueryState> for Arc<Jwt> {
    fn from_ref(s: &QueryState) -> Self {
        s.jwt.clone()
    }
}

/// The query routes (without `/health` and `/metrics`, which the ingest router serves).
pub fn router(state: QueryState) -> Router {
    Router::new()
        .route("/monetizacion/saldo/{usuario_id}", get(routes::saldo::handler))
        .route("/monetizacion/movimientos/{usuario_id}", get(routes::movimientos::handler))
        .layer(axum::middleware::from_fn_with_state(
            state.metrics.clone(),
            alpes_platform::metrics::track,
        ))
        .with_state(state)
}
