//! The one HTTP error type. Every route returns `Result<_, ApiError>`; the body
//! is always `{"error": code, "message": text}` and the status matches the code.
//! A 5xx body never carries internals: the cause goes to the log, not the client.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// An error answered to an HTTP client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// A stable machine-readable code, e.g. `payload_too_large`.
    pub code: &'static str,
    /// A human-readable explanation; never PHI, never internals for 5xx.
    pub message: String,
    /// Seconds for a `Retry-After` header (503 and 429).
    pub retry_after: Option<u32>,
}

/// A route's query string as `T`: like axum's `Query`, but a query that does not parse
/// (a malformed value, an unknown key where `T` denies them, a name given twice) is
/// 400 `bad_query` with axum's explanation, as JSON like every error.
#[derive(Debug, Clone)]
pub struct QueryParams<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> axum::extract::FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(t)| QueryParams(t))
            .map_err(|e| ApiError::bad_request("bad_query", e.body_text()))
    }
}

/// The error code of an answer, in its extensions (for the audit trail).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorCode(pub &'static str);

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    message: &'a str,
}

impl ApiError {
    /// An error with any status.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }
    /// 409: the request conflicts with the resource's state.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }
    /// 400: the request cannot be understood.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }
    /// 401: no or bad credentials.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }
    /// 422: well-formed, but a value is not acceptable.
    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }
    /// 403: authenticated, but the role may not do this.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }
    /// 404: nothing by that id.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }
    /// 413: the body is larger than the configured limit.
    pub fn too_large(limit: u64) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the body exceeds the limit of {limit} bytes"),
        )
    }
    /// 415: a media type Alpes does not take.
    pub fn unsupported_media(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", message)
    }
    /// 503 with `Retry-After`: a dependency (the broker, the store) is down.
    pub fn unavailable(what: &str, retry_after: u32) -> Self {
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "unavailable",
            message: format!("{what} is unavailable; retry later"),
            retry_after: Some(retry_after),
        }
    }
    /// 429 with `Retry-After`: too many requests (or attempts) for now.
    pub fn too_many(code: &'static str, message: impl Into<String>, retry_after: u32) -> Self {
        ApiError {
            retry_after: Some(retry_after),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, code, message)
        }
    }
    /// The same error with another code.
    pub fn with_code(mut self, code: &'static str) -> Self {
        self.code = code;
        self
    }
    /// 500: logs the cause and answers a fixed text.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error")
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.code, self.message)
    }
}

impl ApiError {
    /// The JSON body every error answer has: `{"error": code, "message": text}`.
    pub fn json_body(&self) -> Vec<u8> {
        serde_json::to_vec(&Body {
            error: self.code,
            message: &self.message,
        })
        .unwrap_or_default()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = self.json_body();
        let mut res = (
            self.status,
            [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))],
            body,
        )
            .into_response();
        if let Some(secs) = self.retry_after {
            res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        res.extensions_mut().insert(ErrorCode(self.code));
        res
    }
}

impl From<alpes_domain::Error> for ApiError {
    fn from(e: alpes_domain::Error) -> Self {
        crate::Error::from(e).into()
    }
}

impl From<alpes_domain::caller::Forbidden> for ApiError {
    fn from(e: alpes_domain::caller::Forbidden) -> Self {
        ApiError::forbidden(e.to_string())
    }
}

impl From<alpes_domain::registry::OtherInstitution> for ApiError {
    fn from(e: alpes_domain::registry::OtherInstitution) -> Self {
        ApiError::forbidden(e.to_string())
    }
}

impl From<alpes_domain::registry::Unscoped> for ApiError {
    fn from(e: alpes_domain::registry::Unscoped) -> Self {
        use alpes_domain::registry::Unscoped;
        let error = ApiError::forbidden(e.to_string());
        match e {
            Unscoped::NoInstitution => error.with_code("no_institution"),
            Unscoped::InactiveDoctor(_) => error.with_code("doctor_inactive"),
            Unscoped::Role => error,
        }
    }
}

impl From<crate::Error> for ApiError {
    fn from(e: crate::Error) -> Self {
        // The client's own mistake, not a failure of anything Alpes depends on.
        if let crate::Error::InvalidCursor = e {
            return ApiError::bad_request("bad_cursor", "the page cursor is not one this server issued");
        }
        // Adapter errors name what failed, never payloads, so the cause can be logged.
        tracing::warn!(error = %e, "dependency failure answered as an HTTP error");
        match e {
            crate::Error::BrokerUnavailable(_) | crate::Error::Kafka(_) => ApiError::unavailable("the event broker", 5),
            crate::Error::Store(_) => ApiError::unavailable("the store", 5),
            #[cfg(feature = "blobs")]
            crate::Error::Blob(_) => ApiError::unavailable("the blob store", 5),
            other => ApiError::internal(&other),
        }
    }
}

/// A JSON body of at most `limit` bytes, as `T`: 413 past the limit, 400
/// `bad_json` naming `what` was expected and only where parsing failed
/// (serde's own message may quote a value: a password, for one).
pub fn json_body<T: serde::de::DeserializeOwned>(body: &[u8], limit: usize, what: &str) -> Result<T, ApiError> {
    if body.len() > limit {
        return Err(ApiError::too_large(limit as u64));
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(
            "bad_json",
            format!("the body is not {what}: line {} column {}", e.line(), e.column()),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_unavailable_error_has_retry_after_and_a_json_body() {
        let res = ApiError::unavailable("the event broker", 7).into_response();
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(res.headers()[header::RETRY_AFTER], "7");
        let body = axum::body::to_bytes(res.into_body(), 1024).await.expect("body");
        let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(v["error"], "unavailable");
    }

    #[test]
    fn a_bad_cursor_is_400_and_not_logged_as_a_dependency_failure() {
        use std::sync::{Arc, Mutex};
        let logged = Arc::new(Mutex::new(Vec::<u8>::new()));
        let sink = logged.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || LogSink(sink.clone()))
            .with_max_level(tracing::Level::TRACE)
            .finish();
        let (cursor, store) = tracing::subscriber::with_default(subscriber, || {
            (
                ApiError::from(crate::Error::InvalidCursor),
                ApiError::from(crate::Error::Store("connection refused".into())),
            )
        });
        assert_eq!((cursor.status, cursor.code), (StatusCode::BAD_REQUEST, "bad_cursor"));
        assert_eq!(store.status, StatusCode::SERVICE_UNAVAILABLE);
        let text = String::from_utf8(logged.lock().expect("log").clone()).expect("utf8");
        assert_eq!(text.matches("dependency failure").count(), 1, "only the store's: {text}");
    }

    struct LogSink(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for LogSink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().map_err(|_| std::io::Error::other("poisoned"))?.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn an_internal_error_hides_its_cause() {
        let e = ApiError::internal(&"secret path /data/raw/abc");
        assert_eq!(e.message, "internal error");
    }
}
