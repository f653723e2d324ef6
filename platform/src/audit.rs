//! The audit trail's HTTP side: which requests are audited, and the
//! middleware that writes their `RegistroAuditoria` to `alpes.audit`.
//!
//! [`record`] wraps every route of a service. After the handler answers it
//! decides from the method, the route template, the answer's status and the
//! caller whether the request is audited ([`action_of`]):
//!
//! - the actions: upload, re-anonymization, download, payment, account
//!   creation, token refresh, logout, API key creation and revocation,
//!   reading the audit trail, every change to an institution, a doctor or a
//!   patient, every move of a patient's consent, and every read of a
//!   patient's contact data, whatever their outcome;
//! - every other request an admin makes (`admin_read`);
//! - every other request refused for its credential, role or rate
//!   (`access`, status 401, 403 or 429).
//!
//! Logins are audited by the login route itself (`IntentoLogin`, on the same
//! topic); `/health`, `/metrics` and the documentation never are.
//!
//! The entry names the caller the route authenticated (the [`Caller`]
//! extractor notes it in the request's [`RequestContext`]), the object acted
//! on (noted by the handler, or else the route's last path parameter when
//! that is an id: a UUID, a DICOM UID or a short token of `[A-Za-z0-9_-]`;
//! never an upload's, which names a study before de-identification), the
//! outcome (`ok` for 2xx and 3xx, `denied` for 401/403/429, else `error`),
//! the answer's error code, and the request id. Never a body, a query string
//! or a header: no PHI, password, token or key can reach it.
//!
//! The entry is produced before the answer is returned. A broker that does
//! not acknowledge it is logged and counted (`alpes_audit_unrecorded_total`)
//! but does not change the answer: the action has happened by then.

use crate::hardening::RequestId;
use crate::http::ErrorCode;
use crate::kafka::Producer;
use crate::metrics::Metrics;
use alpes_domain::caller::{Caller, Role};
use alpes_schemas::{new_event_id, now_millis, RegistroAuditoria};
use axum::extract::{FromRequestParts, MatchedPath, RawPathParams, Request, State};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

/// Where a service's audit entries go.
#[derive(Debug, Clone)]
pub struct Auditor {
    producer: Producer,
    service: &'static str,
    metrics: Arc<Metrics>,
}

impl Auditor {
    /// Entries written by `service` (`"ingest"`, `"query-api"`), produced with `producer`.
    pub fn new(producer: Producer, service: &'static str, metrics: Arc<Metrics>) -> Self {
        Auditor {
            producer,
            service,
            metrics,
        }
    }

    /// Produces `entry`; a failure is logged (by entry id and action) and counted.
    pub async fn send(&self, entry: &RegistroAuditoria) {
        let key = entry.target.as_deref().unwrap_or(&entry.actor);
        if let Err(e) = self.producer.send(key, entry).await {
            self.metrics.audit_unrecorded.inc();
            tracing::error!(error = %e, event_id = %entry.event_id, action = %entry.action, "an audit entry was not recorded");
        }
    }
}

/// What a handler tells the audit trail about its request: who the caller
/// is and which object it acted on. Shared with [`record`] through the
/// request's extensions; a request without the middleware gets one that
/// nobody reads.
#[derive(Debug, Clone, Default)]
pub struct RequestContext {
    request_id: Option<String>,
    noted: Arc<Mutex<Noted>>,
}

#[derive(Debug, Default, Clone)]
struct Noted {
    caller: Option<(String, Option<Role>)>,
    targets: Vec<String>,
}

/// The most targets an entry names (a STOW-RS request may store many instances).
const MAX_TARGETS: usize = 20;

impl RequestContext {
    /// The request id (`X-Request-Id`, accepted or generated), if the hardening middleware ran.
    pub fn request_id(&self) -> Option<String> {
        self.request_id.clone()
    }

    /// Notes who made the request.
    pub fn caller(&self, caller: &Caller) {
        self.actor(&caller.user_id, Some(caller.role));
    }

    /// Notes who made the request, when a route authenticates it itself
    /// (a refresh token, for one).
    pub fn actor(&self, user_id: &str, role: Option<Role>) {
        self.with(|n| n.caller = Some((user_id.to_owned(), role)));
    }

    /// Notes an object the request acted on (an id, never PHI).
    pub fn target(&self, id: impl Into<String>) {
        self.with(|n| n.targets.push(id.into()));
    }

    fn with(&self, f: impl FnOnce(&mut Noted)) {
        if let Ok(mut n) = self.noted.lock() {
            f(&mut n);
        }
    }

    fn noted(&self) -> Noted {
        self.noted.lock().map(|n| n.clone()).unwrap_or_default()
    }

    /// The request's context, from its extensions.
    pub fn of(parts: &Parts) -> RequestContext {
        parts.extensions.get::<RequestContext>().cloned().unwrap_or_else(|| RequestContext {
            request_id: parts.extensions.get::<RequestId>().map(|r| r.0.clone()),
            noted: Arc::default(),
        })
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RequestContext {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(RequestContext::of(parts))
    }
}

/// The action code of an audited request, `None` when it is not audited.
pub fn action_of(method: &Method, route: &str, status: StatusCode, role: Option<Role>) -> Option<&'static str> {
    let action = match (method.as_str(), route) {
        ("GET", "/health" | "/ready" | "/metrics" | "/openapi.json" | "/docs" | "/.well-known/jwks.json") => return None,
        ("POST", "/auth/login") => return None, // IntentoLogin
        ("POST", "/imagenes" | "/studies" | "/studies/{study}") => Some("upload"),
        ("POST", "/anonimizar/{id}") => Some("reanonymize"),
        ("POST", "/importaciones") => Some("import_create"),
        ("POST", "/importaciones/{id}/cancelar") => Some("import_cancel"),
        ("POST", "/monetizacion/pagar") => Some("payment"),
        ("PUT", "/monetizacion/consumidores/{usuario_id}") => Some("consumer_terms"),
        ("POST", "/usuarios") => Some("user_create"),
        ("POST", "/auth/refresh") => Some("token_refresh"),
        ("POST", "/auth/logout") => Some("logout"),
        ("POST", "/api-keys") => Some("api_key_create"),
        ("DELETE", "/api-keys/{id}") => Some("api_key_revoke"),
        ("GET", "/auditoria") => Some("audit_read"),
        ("POST", "/instituciones") => Some("institution_create"),
        ("PUT", "/instituciones/{id}") => Some("institution_change"),
        ("DELETE", "/instituciones/{id}") => Some("institution_delete"),
        ("POST", "/medicos") => Some("doctor_create"),
        ("PUT", "/medicos/{id}/estado") => Some("doctor_status"),
        ("DELETE", "/medicos/{id}") => Some("doctor_delete"),
        ("POST", "/pacientes") => Some("patient_create"),
        ("POST", "/instituciones/{id}/webhooks") => Some("webhook_create"),
        ("DELETE", "/instituciones/{id}/webhooks/{webhook_id}") => Some("webhook_delete"),
        // The one read of a patient's contact data: audited whoever reads it.
        ("GET", "/pacientes/{id}") => Some("patient_read"),
        ("DELETE", "/pacientes/{id}") => Some("patient_delete"),
        ("POST", "/pacientes/{id}/validar") => Some("consent_validate"),
        ("POST", "/pacientes/consentimiento") => Some("consent_confirm"),
        ("POST", "/pacientes/{id}/revocar" | "/pacientes/revocacion") => Some("consent_revoke"),
        ("POST", "/reportes") => Some("report_create"),
        ("GET", "/reportes/{id}") => Some("report_read"),
        (
            "GET",
            "/imagenes/{id}/anonimizada"
            | "/studies/{study}"
            | "/studies/{study}/series/{series}"
            | "/studies/{study}/series/{series}/instances/{instance}",
        ) => Some("download"),
        _ => None,
    };
    action.or(if role == Some(Role::Admin) {
        Some("admin_read")
    } else if matches!(
        status,
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::TOO_MANY_REQUESTS
    ) {
        Some("access")
    } else {
        None
    })
}

/// The outcome code of a status.
pub fn outcome_of(status: StatusCode) -> &'static str {
    match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::TOO_MANY_REQUESTS => "denied",
        s if s.is_success() || s.is_redirection() => "ok",
        _ => "error",
    }
}

/// Whether a path parameter may be named in an entry: a UUID, a DICOM UID,
/// or a short token; anything else a client typed there is left out.
fn id_like(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && (s.bytes().all(|b| b.is_ascii_digit() || b == b'.') || s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
}

/// Middleware: audits the request (see the module docs). Needs the
/// hardening middleware outside it for the request id.
pub async fn record(State(auditor): State<Auditor>, req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    let Some(matched) = parts.extensions.get::<MatchedPath>().cloned() else {
        return next.run(Request::from_parts(parts, body)).await;
    };
    let route = matched.as_str();
    let method = parts.method.clone();
    let last_param = match RawPathParams::from_request_parts(&mut parts, &()).await {
        Ok(params) => params.iter().last().map(|(_, v)| v.to_owned()).filter(|v| id_like(v)),
        Err(_) => None,
    };
    let ctx = RequestContext::of(&parts);
    parts.extensions.insert(ctx.clone());
    let res = next.run(Request::from_parts(parts, body)).await;
    let status = res.status();
    let noted = ctx.noted();
    let role = noted.caller.as_ref().and_then(|(_, r)| *r);
    let Some(action) = action_of(&method, route, status, role) else {
        return res;
    };
    let target = if noted.targets.is_empty() {
        // An upload's path names the study as sent, before de-identification.
        last_param.filter(|_| action != "upload")
    } else {
        let mut t = noted.targets.iter().take(MAX_TARGETS).cloned().collect::<Vec<_>>().join(",");
        if noted.targets.len() > MAX_TARGETS {
            t.push_str(&format!(",+{}", noted.targets.len() - MAX_TARGETS));
        }
        Some(t)
    };
    let entry = RegistroAuditoria {
        event_id: new_event_id(),
        occurred_at: now_millis(),
        actor: noted.caller.as_ref().map_or_else(|| "anonymous".to_owned(), |(id, _)| id.clone()),
        actor_role: role.map(|r| r.as_str().to_owned()),
        action: action.to_owned(),
        target,
        route: Some(format!("{method} {route}")),
        outcome: outcome_of(status).to_owned(),
        status: Some(i32::from(status.as_u16())),
        reason: res.extensions().get::<ErrorCode>().map(|c| c.0.to_owned()),
        request_id: ctx.request_id(),
        service: auditor.service.to_owned(),
    };
    auditor.send(&entry).await;
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_are_audited_whatever_their_outcome() {
        for status in [StatusCode::OK, StatusCode::FORBIDDEN, StatusCode::BAD_REQUEST] {
            assert_eq!(action_of(&Method::POST, "/imagenes", status, None), Some("upload"));
            assert_eq!(
                action_of(&Method::GET, "/imagenes/{id}/anonimizada", status, Some(Role::Consumidor)),
                Some("download")
            );
            assert_eq!(
                action_of(&Method::DELETE, "/api-keys/{id}", status, Some(Role::Admin)),
                Some("api_key_revoke")
            );
        }
    }

    #[test]
    fn other_reads_are_audited_for_admins_and_refusals_only() {
        let get = Method::GET;
        assert_eq!(action_of(&get, "/imagenes", StatusCode::OK, Some(Role::Consumidor)), None);
        assert_eq!(action_of(&get, "/imagenes", StatusCode::OK, Some(Role::Admin)), Some("admin_read"));
        assert_eq!(action_of(&get, "/imagenes", StatusCode::UNAUTHORIZED, None), Some("access"));
        assert_eq!(
            action_of(&get, "/usuarios/{id}", StatusCode::FORBIDDEN, Some(Role::Proveedor)),
            Some("access")
        );
        assert_eq!(action_of(&get, "/imagenes", StatusCode::TOO_MANY_REQUESTS, None), Some("access"));
        assert_eq!(action_of(&get, "/imagenes", StatusCode::NOT_FOUND, Some(Role::Proveedor)), None);
    }

    #[test]
    fn health_metrics_docs_and_logins_are_never_audited_here() {
        for route in ["/health", "/ready", "/metrics", "/openapi.json", "/docs"] {
            assert_eq!(action_of(&Method::GET, route, StatusCode::OK, Some(Role::Admin)), None);
        }
        assert_eq!(action_of(&Method::POST, "/auth/login", StatusCode::UNAUTHORIZED, None), None);
    }

    #[test]
    fn outcomes_follow_the_status() {
        assert_eq!(outcome_of(StatusCode::ACCEPTED), "ok");
        assert_eq!(outcome_of(StatusCode::NOT_MODIFIED), "ok");
        assert_eq!(outcome_of(StatusCode::TOO_MANY_REQUESTS), "denied");
        assert_eq!(outcome_of(StatusCode::NOT_FOUND), "error");
        assert_eq!(outcome_of(StatusCode::SERVICE_UNAVAILABLE), "error");
    }

    #[test]
    fn only_id_like_path_parameters_are_named() {
        assert!(id_like("0193f6a2-7c1e-7b7a-9a0e-1d2b3c4d5e6f"));
        assert!(id_like("1.2.840.113619.2.55.3"));
        assert!(id_like("k9f2Ab"));
        assert!(!id_like("Doe^John"));
        assert!(!id_like("john doe"));
        assert!(!id_like(&"1".repeat(65)));
    }
}
