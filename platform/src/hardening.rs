//! What every HTTP answer gets, whatever the route: a request id and the
//! security headers.
//!
//! - `X-Request-Id`: the client's, when it is 1 to 128 characters of
//!   `[A-Za-z0-9._:-]`, else a new UUID. It is answered back, kept in the
//!   request's extensions ([`RequestId`]) for handlers, and recorded on the
//!   `http` span every log line of the request is written under.
//! - `X-Content-Type-Options: nosniff`, `X-Frame-Options: DENY`,
//!   `Referrer-Policy: no-referrer` and a `Content-Security-Policy` that lets
//!   an answer load nothing and be framed by nothing (the API serves data, not
//!   pages), unless the handler set its own.
//! - **JSON errors**: an error answer that is not JSON (axum's own: a method
//!   a route does not take, a path segment that is not UTF-8, an unknown
//!   route) gets the body every `ApiError` has, `{"error", "message"}`, with
//!   a code and message from its status alone: nothing of the request is
//!   echoed. (A request line hyper cannot parse is answered by hyper, before
//!   any route, with no body.)

use axum::extract::{MatchedPath, Request};
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

/// The request id header.
pub const REQUEST_ID: &str = "x-request-id";

/// The request's id, in its extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

/// Whether a client's request id can be kept as it is.
fn acceptable(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

const SECURITY_HEADERS: [(&str, &str); 4] = [
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
    ("content-security-policy", "default-src 'none'; frame-ancestors 'none'"),
];

/// Middleware: the request id and the security headers (see the module docs).
pub async fn harden(mut req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| acceptable(v))
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned);
    let value = HeaderValue::from_str(&id).unwrap_or_else(|_| HeaderValue::from_static("invalid"));
    req.headers_mut().insert(REQUEST_ID, value.clone());
    req.extensions_mut().insert(RequestId(id.clone()));
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let method = crate::metrics::method_label(req.method());
    let span = tracing::info_span!("http", request_id = %id, method, route = %route);
    let mut res = next.run(req).instrument(span).await;
    let headers = res.headers_mut();
    headers.insert(REQUEST_ID, value);
    for (name, v) in SECURITY_HEADERS {
        headers.entry(HeaderName::from_static(name)).or_insert(HeaderValue::from_static(v));
    }
    as_json(res)
}

/// `res` with a JSON body if it is an error that has another (see the module docs).
fn as_json(res: Response) -> Response {
    let status = res.status();
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json") || ct.starts_with("application/dicom+json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return res;
    }
    let (code, message) = match status {
        StatusCode::BAD_REQUEST => ("bad_request", "the request's path, query or body is malformed"),
        StatusCode::NOT_FOUND => ("not_found", "no such route"),
        StatusCode::METHOD_NOT_ALLOWED => ("method_not_allowed", "the route does not take this method"),
        StatusCode::NOT_ACCEPTABLE => ("not_acceptable", "no answer in the media types the request accepts"),
        StatusCode::PAYLOAD_TOO_LARGE => ("payload_too_large", "the request body is too large"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ("unsupported_media_type", "the request body's media type is not accepted here"),
        StatusCode::UNPROCESSABLE_ENTITY => ("unprocessable", "the request body is well formed but not valid"),
        s if s.is_server_error() => ("internal", "the server could not answer; the request id names it in the logs"),
        _ => ("http_error", status.canonical_reason().unwrap_or("the request failed")),
    };
    let (mut parts, _) = res.into_parts();
    let body = crate::http::ApiError::new(status, code, message).json_body();
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::from(body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::routing::get;
    use axum::Router;
    use tower::ServiceExt;

    async fn answer(request_id: Option<&str>) -> Response {
        let app = Router::new()
            .route(
                "/x",
                get(|axum::Extension(RequestId(id)): axum::Extension<RequestId>| async move { id }),
            )
            .layer(axum::middleware::from_fn(harden));
        let mut req = axum::http::Request::builder().uri("/x");
        if let Some(id) = request_id {
            req = req.header(REQUEST_ID, id);
        }
        app.oneshot(req.body(Body::empty()).expect("request")).await.expect("answer")
    }

    async fn body(res: Response) -> String {
        let bytes = axum::body::to_bytes(res.into_body(), 1024).await.expect("body");
        String::from_utf8(bytes.to_vec()).expect("utf8")
    }

    #[tokio::test]
    async fn a_sane_client_request_id_is_kept_and_answered_back() {
        let res = answer(Some("trace-42:a.b_c")).await;
        assert_eq!(res.headers()[REQUEST_ID], "trace-42:a.b_c");
        assert_eq!(body(res).await, "trace-42:a.b_c", "handlers see the same id");
    }

    #[tokio::test]
    async fn a_missing_or_unsafe_request_id_is_replaced_by_a_uuid() {
        for sent in [None, Some("has spaces"), Some("ünïcode"), Some(&*"x".repeat(129))] {
            let res = answer(sent).await;
            let id = res.headers()[REQUEST_ID].to_str().expect("ascii").to_owned();
            assert!(uuid::Uuid::parse_str(&id).is_ok(), "{sent:?} → {id}");
            assert_eq!(body(res).await, id);
        }
    }

    #[tokio::test]
    async fn errors_axum_answers_in_plain_text_are_json_and_echo_nothing() {
        use axum::extract::Path;
        let app = Router::new()
            .route("/x/{id}", get(|Path(id): Path<String>| async move { id }))
            .layer(axum::middleware::from_fn(harden));
        let call = |method: &str, uri: &str| {
            let req = axum::http::Request::builder()
                .method(method)
                .uri(uri)
                .body(Body::empty())
                .expect("request");
            app.clone().oneshot(req)
        };
        for (method, uri, status, code) in [
            ("GET", "/x/%FF%FE", 400, "bad_request"),
            ("POST", "/x/1", 405, "method_not_allowed"),
            ("GET", "/nowhere", 404, "not_found"),
        ] {
            let res = call(method, uri).await.expect("answer");
            assert_eq!(res.status().as_u16(), status, "{uri}");
            assert_eq!(res.headers()[header::CONTENT_TYPE], "application/json");
            let text = body(res).await;
            let json: serde_json::Value = serde_json::from_str(&text).expect(&text);
            assert_eq!(json["error"], code);
            assert!(!text.contains("FF"), "{text}");
        }
        let ok = call("GET", "/x/plain").await.expect("answer");
        assert_eq!(body(ok).await, "plain", "a success keeps its body");
    }

    #[tokio::test]
    async fn every_answer_has_the_security_headers() {
        let res = answer(None).await;
        for (name, value) in SECURITY_HEADERS {
            assert_eq!(res.headers()[name], value, "{name}");
        }
    }
}
