//! Per-request limits, on every route: a rate per principal, a body size and
//! a time limit by route class, and CORS.
//!
//! - **Rate** ([`LimitArgs::rate_limit_rps`], burst
//!   [`LimitArgs::rate_limit_burst`]): a GCRA bucket per principal. The
//!   principal is the verified bearer token's user, an API key's id, or for
//!   requests without credentials the client's IP (with their own, separate
//!   limit, [`LimitArgs::anonymous_rate_limit_rps`]). Past it: 429
//!   `rate_limited` with `Retry-After`. A rate of 0 turns that limit off.
//! - **Body**: an upload route (`POST /imagenes`, `POST /studies`,
//!   `POST /studies/{study}`) streams its body under the upload limit its
//!   handler enforces; every other route takes at most
//!   [`LimitArgs::max_body_bytes`] (64 KiB by default), read here before the
//!   handler runs: 413 `payload_too_large` past it, declared or not.
//!   An upload refused (any non-2xx) is answered with `Connection: close`:
//!   its body may not have been read, so the connection is not reused.
//! - **Time**: an upload route has [`LimitArgs::upload_timeout_secs`] (an
//!   hour by default: a large upload streams for long), every other route
//!   [`LimitArgs::request_timeout_secs`] (30 s), reading its body included.
//!   Past it: 503 `timeout`. A request body may pause at most
//!   [`LimitArgs::body_timeout_secs`] (30 s) between two of its pieces, on
//!   every route: past it, 408 `body_timeout`, and the connection is closed.
//!   A body that cannot be read (a malformed chunk, a reset) is 400
//!   `bad_body`; only one past the size limit is 413.
//! - **CORS** ([`LimitArgs::cors_origins`]): none by default (browsers on
//!   other origins are refused by their own same-origin rule); each listed
//!   origin, or `*`, may call every route with the `Accept` (a DICOMweb
//!   viewer's `multipart/related; type="application/dicom"` is not one a
//!   browser sends without asking), `Authorization`, `X-API-Key`,
//!   `Content-Type`, `Idempotency-Key` and `X-Request-Id` headers and read
//!   `X-Request-Id`, `Location`, `Retry-After` and `Warning` (QIDO-RS's).

use crate::audit::RequestContext;
use crate::auth::{api_key_id, bearer_token, Jwt, API_KEY_HEADER};
use crate::http::ApiError;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The limits' settings (flags and environment variables of every service).
#[derive(Debug, Clone, clap::Args)]
pub struct LimitArgs {
    /// Requests per second each authenticated principal (user or API key) may
    /// sustain; 0 for no limit.
    #[arg(long = "rate-limit-rps", env = "ALPES_RATE_LIMIT_RPS", default_value_t = 0)]
    pub rate_limit_rps: u32,
    /// Requests an authenticated principal may send at once above its rate
    /// (0: twice the rate).
    #[arg(long = "rate-limit-burst", env = "ALPES_RATE_LIMIT_BURST", default_value_t = 0)]
    pub rate_limit_burst: u32,
    /// Requests per second each client IP may sustain without credentials
    /// (registration, login, refresh, verification); 0 for no limit.
    #[arg(long = "anonymous-rate-limit-rps", env = "ALPES_ANONYMOUS_RATE_LIMIT_RPS", default_value_t = 20)]
    pub anonymous_rate_limit_rps: u32,
    /// Requests a client IP may send at once without credentials above its rate (0: twice the rate).
    #[arg(
        long = "anonymous-rate-limit-burst",
        env = "ALPES_ANONYMOUS_RATE_LIMIT_BURST",
        default_value_t = 100
    )]
    pub anonymous_rate_limit_burst: u32,
    /// The largest body of a route that is not an upload, bytes.
    #[arg(long = "max-body-bytes", env = "ALPES_MAX_BODY_BYTES", default_value_t = 64 * 1024)]
    pub max_body_bytes: usize,
    /// Seconds a request other than an upload may take.
    #[arg(long = "request-timeout-secs", env = "ALPES_REQUEST_TIMEOUT_SECS", default_value_t = 30)]
    pub request_timeout_secs: u64,
    /// Seconds an upload may take.
    #[arg(long = "upload-timeout-secs", env = "ALPES_UPLOAD_TIMEOUT_SECS", default_value_t = 3600)]
    pub upload_timeout_secs: u64,
    /// Seconds a request body may pause between two of its pieces.
    #[arg(long = "body-timeout-secs", env = "ALPES_BODY_TIMEOUT_SECS", default_value_t = 30)]
    pub body_timeout_secs: u64,
    /// An origin browsers may call the API from (`https://viewer.example.org`, or `*`); repeatable.
    #[arg(long = "cors-origin", env = "ALPES_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,
}

impl Default for LimitArgs {
    fn default() -> Self {
        LimitArgs {
            rate_limit_rps: 0,
            rate_limit_burst: 0,
            anonymous_rate_limit_rps: 20,
            anonymous_rate_limit_burst: 100,
            max_body_bytes: 64 * 1024,
            request_timeout_secs: 30,
            upload_timeout_secs: 3600,
            body_timeout_secs: 30,
            cors_origins: Vec::new(),
        }
    }
}

/// A GCRA rate: one request per `interval`, `burst` at once.
#[derive(Debug)]
struct Rate {
    interval: Duration,
    tolerance: Duration,
    /// Each key's theoretical arrival time.
    keys: Mutex<HashMap<String, Instant>>,
}

/// Keys beyond this many trigger a sweep of the idle ones.
const SWEEP_AT: usize = 100_000;

impl Rate {
    fn new(rps: u32, burst: u32) -> Option<Rate> {
        if rps == 0 {
            return None;
        }
        let burst = if burst == 0 { rps.saturating_mul(2) } else { burst };
        let interval = Duration::from_secs(1) / rps;
        Some(Rate {
            interval,
            tolerance: interval * burst.saturating_sub(1),
            keys: Mutex::new(HashMap::new()),
        })
    }

    /// `Ok` if `key` may send now, else how long until it may.
    fn check(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let Ok(mut keys) = self.keys.lock() else { return Ok(()) };
        if keys.len() >= SWEEP_AT {
            keys.retain(|_, tat| *tat > now);
        }
        let tat = keys.get(key).copied().map_or(now, |t| t.max(now));
        if tat.duration_since(now) > self.tolerance {
            return Err(tat.duration_since(now) - self.tolerance);
        }
        keys.insert(key.to_owned(), tat + self.interval);
        Ok(())
    }
}

/// The limits of one service, shared by its routes.
#[derive(Debug)]
pub struct Limits {
    args: LimitArgs,
    jwt: Arc<Jwt>,
    principal: Option<Rate>,
    anonymous: Option<Rate>,
}

impl Limits {
    /// Limits as `args` say; `jwt` names the principal of a bearer token.
    pub fn new(args: LimitArgs, jwt: Arc<Jwt>) -> Arc<Limits> {
        Arc::new(Limits {
            principal: Rate::new(args.rate_limit_rps, args.rate_limit_burst),
            anonymous: Rate::new(args.anonymous_rate_limit_rps, args.anonymous_rate_limit_burst),
            args,
            jwt,
        })
    }

    /// The CORS layer of the configured origins; `None` without any.
    pub fn cors(&self) -> Option<tower_http::cors::CorsLayer> {
        cors_layer(&self.args.cors_origins)
    }

    /// The principal of a request's credentials, for its rate: `None` when
    /// the request has none (its IP is used) or they are not valid (the
    /// route answers 401 itself).
    fn principal(&self, req: &Request, ctx: &RequestContext) -> Result<Option<String>, ()> {
        if let Some(key) = req.headers().get(API_KEY_HEADER) {
            return key.to_str().ok().and_then(api_key_id).map(|id| Some(format!("key:{id}"))).ok_or(());
        }
        match bearer_token(req.headers()) {
            Ok(Some(token)) => {
                let claims = self.jwt.verify(token).map_err(|_| ())?;
                ctx.actor(&claims.sub, Some(claims.role));
                Ok(Some(format!("user:{}", claims.sub)))
            }
            Ok(None) => Ok(None),
            Err(_) => Err(()),
        }
    }

    fn rate_limited(&self, req: &Request, ctx: &RequestContext) -> Option<Duration> {
        let now = Instant::now();
        let has_credentials = req.headers().contains_key(header::AUTHORIZATION) || req.headers().contains_key(API_KEY_HEADER);
        if has_credentials {
            let rate = self.principal.as_ref()?;
            let key = self.principal(req, ctx).ok()??;
            rate.check(&key, now).err()
        } else {
            let rate = self.anonymous.as_ref()?;
            let ip = req
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map_or_else(|| "unknown".to_owned(), |c| c.0.ip().to_string());
            rate.check(&ip, now).err()
        }
    }
}

/// The CORS layer for `origins` (`*` for any); `None` when empty.
pub fn cors_layer(origins: &[String]) -> Option<tower_http::cors::CorsLayer> {
    use tower_http::cors::{AllowOrigin, CorsLayer};
    let origins: Vec<&str> = origins.iter().map(|o| o.trim()).filter(|o| !o.is_empty()).collect();
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.contains(&"*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::POST, Method::DELETE, Method::OPTIONS])
            .allow_headers([
                header::ACCEPT,
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::HeaderName::from_static(API_KEY_HEADER),
                header::HeaderName::from_static("idempotency-key"),
                header::HeaderName::from_static(crate::hardening::REQUEST_ID),
            ])
            .expose_headers([
                header::HeaderName::from_static(crate::hardening::REQUEST_ID),
                header::LOCATION,
                header::RETRY_AFTER,
                header::WARNING,
            ])
            .max_age(Duration::from_secs(600)),
    )
}

/// `router` with the CORS layer, if there is one.
pub fn with_cors(router: axum::Router, cors: Option<tower_http::cors::CorsLayer>) -> axum::Router {
    match cors {
        Some(cors) => router.layer(cors),
        None => router,
    }
}

/// Whether a route streams an upload (its own limit and a long timeout).
pub fn is_upload(method: &Method, route: &str) -> bool {
    method == Method::POST && matches!(route, "/imagenes" | "/studies" | "/studies/{study}")
}

fn secs_ceil(d: Duration) -> u32 {
    u32::try_from(d.as_millis().div_ceil(1000)).unwrap_or(u32::MAX).max(1)
}

/// Middleware: the rate, body and time limits (see the module docs).
pub async fn enforce(State(limits): State<Arc<Limits>>, req: Request, next: Next) -> Response {
    let matched = req.extensions().get::<MatchedPath>().cloned();
    let route = matched.as_ref().map(MatchedPath::as_str);
    let upload = route.is_some_and(|r| is_upload(req.method(), r));
    let (parts, body) = req.into_parts();
    let ctx = RequestContext::of(&parts);
    let req = Request::from_parts(parts, body);
    if let Some(wait) = limits.rate_limited(&req, &ctx) {
        return ApiError::too_many("rate_limited", "too many requests; slow down", secs_ceil(wait)).into_response();
    }
    let pause = Duration::from_secs(limits.args.body_timeout_secs.max(1));
    let (parts, body) = req.into_parts();
    let (body, stalled) = paced(body, pause);
    let req = Request::from_parts(parts, body);
    let secs = if upload {
        limits.args.upload_timeout_secs
    } else {
        limits.args.request_timeout_secs
    };
    let max_body = limits.args.max_body_bytes;
    let work = async move {
        let req = if upload { req } else { buffered(req, max_body).await? };
        Ok::<_, ApiError>(next.run(req).await)
    };
    match tokio::time::timeout(Duration::from_secs(secs), work).await {
        // Whatever the route made of its cut body: the client stopped sending.
        Ok(_) if stalled.is_some_and(|s| s.load(Ordering::Relaxed)) => closing(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "body_timeout",
            format!("the request body paused for more than {} s", pause.as_secs()),
        )),
        Ok(Err(e)) => closing(e),
        // An upload refused before its body was read (401, 403, 413, 415...):
        // the rest of the body may still be on the wire, so the connection
        // cannot carry another request. Say so, or a client that pools it
        // sends its next request into the refused body's remains.
        Ok(Ok(mut res)) if upload && !res.status().is_success() => {
            res.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
            res
        }
        Ok(Ok(res)) => res,
        Err(_) => {
            tracing::warn!(route = route.unwrap_or("unmatched"), secs, "request timed out");
            closing(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "timeout",
                format!("the request took longer than {secs} s"),
            ))
        }
    }
}

/// `e`'s answer, closing the connection: the request's body may not have
/// been read to its end.
fn closing(e: ApiError) -> Response {
    let mut res = e.into_response();
    res.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    res
}

/// The error a request body gives when it paused past the body time.
#[derive(Debug, thiserror::Error)]
#[error("the request body paused for more than {0:?}")]
struct Paused(Duration);

/// `body`, failing if it pauses longer than `pause` between two pieces, and
/// the flag it then sets. A body with nothing to come (a GET's) is left as
/// it is, with no flag: the read path pays nothing for this.
fn paced(body: axum::body::Body, pause: Duration) -> (axum::body::Body, Option<Arc<AtomicBool>>) {
    use futures::StreamExt;
    if axum::body::HttpBody::is_end_stream(&body) {
        return (body, None);
    }
    let stalled = Arc::new(AtomicBool::new(false));
    let state = Some((body.into_data_stream(), stalled.clone()));
    let pieces = futures::stream::unfold(state, move |state| async move {
        let (mut pieces, stalled) = state?;
        match tokio::time::timeout(pause, pieces.next()).await {
            Ok(Some(piece)) => Some((piece, Some((pieces, stalled)))),
            Ok(None) => None,
            Err(_) => {
                stalled.store(true, Ordering::Relaxed);
                Some((Err(axum::Error::new(Paused(pause))), None))
            }
        }
    });
    (axum::body::Body::from_stream(pieces), Some(stalled))
}

/// `req` with its body read into memory, refused past `limit` bytes.
async fn buffered(req: Request, limit: usize) -> Result<Request, ApiError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ApiError::too_large(limit as u64));
    }
    // Whatever the headers say (HTTP/2 needs no Content-Length): a body
    // with more to come is read here, under the limit.
    if axum::body::HttpBody::is_end_stream(req.body()) {
        return Ok(req);
    }
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|e| {
        if e.into_inner().is::<http_body_util::LengthLimitError>() {
            ApiError::too_large(limit as u64)
        } else {
            ApiError::bad_request("bad_body", "the request body could not be read (malformed or cut short)")
        }
    })?;
    Ok(Request::from_parts(parts, axum::body::Body::from(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rate_lets_its_burst_through_then_waits_one_interval_per_request() {
        let rate = Rate::new(10, 3).expect("on");
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(rate.check("a", t0).is_ok());
        }
        let wait = rate.check("a", t0).expect_err("past the burst");
        assert!(wait <= Duration::from_millis(100) && wait > Duration::ZERO, "{wait:?}");
        assert!(rate.check("b", t0).is_ok(), "each key has its own bucket");
        assert!(rate.check("a", t0 + Duration::from_millis(100)).is_ok(), "one interval later");
        assert!(rate.check("a", t0 + Duration::from_millis(100)).is_err());
    }

    #[test]
    fn a_rate_of_zero_is_no_limit_and_a_zero_burst_is_twice_the_rate() {
        assert!(Rate::new(0, 5).is_none());
        let rate = Rate::new(5, 0).expect("on");
        let t0 = Instant::now();
        assert_eq!((0..20).filter(|_| rate.check("k", t0).is_ok()).count(), 10);
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(secs_ceil(Duration::from_millis(1)), 1);
        assert_eq!(secs_ceil(Duration::from_millis(1500)), 2);
        assert_eq!(secs_ceil(Duration::ZERO), 1);
    }

    #[test]
    fn only_the_upload_routes_stream() {
        assert!(is_upload(&Method::POST, "/imagenes"));
        assert!(is_upload(&Method::POST, "/studies/{study}"));
        assert!(!is_upload(&Method::GET, "/imagenes"));
        assert!(!is_upload(&Method::POST, "/usuarios"));
    }

    /// A router with a route that takes `secs`, behind limits with `args`.
    fn slow_router(secs: u64, args: LimitArgs) -> axum::Router {
        let jwt = Arc::new(Jwt::new(b"limits-test-key-limits-test-key-"));
        axum::Router::new()
            .route(
                "/slow",
                axum::routing::post(move || async move {
                    tokio::time::sleep(Duration::from_secs(secs)).await;
                    "done"
                }),
            )
            .layer(axum::middleware::from_fn_with_state(Limits::new(args, jwt), enforce))
    }

    async fn status_of(router: axum::Router, body: &'static str) -> StatusCode {
        use tower::ServiceExt;
        let req = Request::post("/slow").body(axum::body::Body::from(body)).expect("request");
        router.oneshot(req).await.expect("infallible").status()
    }

    #[tokio::test]
    async fn a_request_past_its_time_limit_is_503_and_one_within_it_is_answered() {
        let args = LimitArgs {
            request_timeout_secs: 1,
            ..LimitArgs::default()
        };
        assert_eq!(status_of(slow_router(30, args.clone()), "").await, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(status_of(slow_router(0, args), "").await, StatusCode::OK);
    }

    #[tokio::test]
    async fn a_body_past_the_limit_is_413_before_the_handler_runs() {
        let args = LimitArgs {
            max_body_bytes: 4,
            ..LimitArgs::default()
        };
        assert_eq!(
            status_of(slow_router(0, args.clone()), "12345").await,
            StatusCode::PAYLOAD_TOO_LARGE
        );
        assert_eq!(status_of(slow_router(0, args), "1234").await, StatusCode::OK);
    }

    /// The status and `Connection` header of a POST whose body is `pieces`.
    async fn answer_to(
        router: axum::Router,
        pieces: Vec<Result<&'static str, std::io::Error>>,
        then_wait: bool,
    ) -> (StatusCode, Option<HeaderValue>) {
        use futures::StreamExt;
        use tower::ServiceExt;
        let sent = futures::stream::iter(pieces);
        let body = if then_wait {
            axum::body::Body::from_stream(sent.chain(futures::stream::pending()))
        } else {
            axum::body::Body::from_stream(sent)
        };
        let req = Request::post("/slow").body(body).expect("request");
        let res = router.oneshot(req).await.expect("infallible");
        (res.status(), res.headers().get(header::CONNECTION).cloned())
    }

    #[tokio::test]
    async fn a_body_that_pauses_past_the_body_time_is_408_and_closes_the_connection() {
        let args = LimitArgs {
            body_timeout_secs: 1,
            ..LimitArgs::default()
        };
        // Five bytes of a promised twenty, then nothing.
        let (status, connection) = answer_to(slow_router(0, args.clone()), vec![Ok("12345")], true).await;
        assert_eq!(status, StatusCode::REQUEST_TIMEOUT);
        assert_eq!(connection, Some(HeaderValue::from_static("close")));
        let (status, _) = answer_to(slow_router(0, args), vec![Ok("12"), Ok("345")], false).await;
        assert_eq!(status, StatusCode::OK, "a body that keeps coming is read");
    }

    #[tokio::test]
    async fn a_body_that_cannot_be_read_is_400_not_413() {
        let broken = vec![Ok("12"), Err(std::io::Error::other("invalid chunk size line"))];
        let (status, connection) = answer_to(slow_router(0, LimitArgs::default()), broken, false).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(connection, Some(HeaderValue::from_static("close")));
    }

    #[test]
    fn cors_is_off_without_origins() {
        assert!(cors_layer(&[]).is_none());
        assert!(cors_layer(&[" ".into()]).is_none());
        assert!(cors_layer(&["https://viewer.example.org".into()]).is_some());
        assert!(cors_layer(&["*".into()]).is_some());
    }
}
