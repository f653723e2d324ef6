//! The middleware every service's routes run under, in one place and one
//! order. From the outside in:
//!
//! 1. [`crate::hardening::harden`]: the request id and the security headers;
//! 2. [`crate::audit::record`]: the audit entry of an audited request;
//! 3. [`crate::limits::enforce`]: rate, body and time limits (a refusal is
//!    audited, since the audit layer is outside it);
//! 4. [`crate::metrics::track`]: requests and latency by route.
//!
//! [`unaudited`] is the same without the audit entry, for routes that serve no data (the web
//! console's files).

use crate::audit::Auditor;
use crate::limits::Limits;
use crate::metrics::Metrics;
use axum::Router;
use std::sync::Arc;

/// `router` under the service layers, its audit entries recorded by `auditor`.
pub fn service<S: Clone + Send + Sync + 'static>(
    router: Router<S>,
    metrics: Arc<Metrics>,
    limits: Arc<Limits>,
    auditor: Auditor,
) -> Router<S> {
    limited(router, metrics, limits)
        .layer(axum::middleware::from_fn_with_state(auditor, crate::audit::record))
        .layer(axum::middleware::from_fn(crate::hardening::harden))
}

/// `router` under the service layers but the audit's (see the module docs).
pub fn unaudited<S: Clone + Send + Sync + 'static>(router: Router<S>, metrics: Arc<Metrics>, limits: Arc<Limits>) -> Router<S> {
    limited(router, metrics, limits).layer(axum::middleware::from_fn(crate::hardening::harden))
}

/// The two innermost layers, shared by [`service`] and [`unaudited`]: limits, then metrics.
fn limited<S: Clone + Send + Sync + 'static>(router: Router<S>, metrics: Arc<Metrics>, limits: Arc<Limits>) -> Router<S> {
    router
        .layer(axum::middleware::from_fn_with_state(metrics, crate::metrics::track))
        .layer(axum::middleware::from_fn_with_state(limits, crate::limits::enforce))
}
