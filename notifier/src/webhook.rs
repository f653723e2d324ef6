//! Signed webhooks: the signature scheme ([`signature`], [`signature_header`], [`verify`]:
//! Stripe's, an HMAC-SHA256 over `"{timestamp}." ++ body`) and [`WebhookClient`], which POSTs
//! one event to a receiver's URL. Also the HTTP client and URL rule both HTTP channels (this
//! one and [`crate::sms`]) use: a 10 s timeout, no redirect followed, no proxy, and plain
//! `http://` only to a loopback address.

use crate::error::{Error, Result, SendError};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::time::Duration;

/// `t={timestamp},v1={hex HMAC-SHA256}`.
pub const SIGNATURE_HEADER: &str = "X-Alpes-Signature";
/// The event's type, e.g. `ImagenRechazada`.
pub const EVENT_HEADER: &str = "X-Alpes-Event";
/// The delivery's id: the same on every retry of one delivery, for the receiver's dedup.
pub const DELIVERY_HEADER: &str = "X-Alpes-Delivery";
/// How long one HTTP request may take, connection included.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

type HmacSha256 = Hmac<Sha256>;

fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The hex HMAC-SHA256 of `"{timestamp}." ++ body` under `secret`.
pub fn signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    hex::encode(mac(secret, timestamp, body).finalize().into_bytes())
}

/// The value of [`SIGNATURE_HEADER`]: `t={timestamp},v1={signature}`.
pub fn signature_header(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    format!("t={timestamp},v1={}", signature(secret, timestamp, body))
}

/// Whether `header_value` signs `body` under `secret` with a timestamp at most
/// `tolerance_secs` away from `now`. Several `v1=` entries are allowed (a secret being
/// rotated): one matching is enough. The comparison is constant-time.
pub fn verify(secret: &[u8], header_value: &str, body: &[u8], now: i64, tolerance_secs: i64) -> bool {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header_value.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) if timestamp.is_none() => timestamp = t.parse::<i64>().ok(),
            Some(("t", _)) => return false,
            Some(("v1", s)) => signatures.push(s),
            _ => {}
        }
    }
    let Some(timestamp) = timestamp else { return false };
    if now
        .checked_sub(timestamp)
        .is_none_or(|age| age.checked_abs().is_none_or(|a| a > tolerance_secs))
    {
        return false;
    }
    signatures
        .into_iter()
        .filter_map(|s| hex::decode(s).ok())
        .any(|s| mac(secret, timestamp, body).verify_slice(&s).is_ok())
}

/// The HTTP client of both HTTP channels: a 10 s timeout, no redirect followed (an answer
/// 3xx is a permanent failure: nothing goes anywhere but the configured URL), no proxy.
pub(crate) fn http_client() -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(HTTP_TIMEOUT)
        .connect_timeout(HTTP_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .map_err(|e| Error::Client(e.to_string()))
}

/// `url` if it is `https://`, or `http://` to a loopback address, with a host, and with
/// neither credentials nor a fragment. The reason never repeats the URL.
pub(crate) fn checked_url(what: &'static str, url: &str) -> Result<url::Url> {
    let bad = |reason: &str| Error::Url {
        what,
        reason: reason.into(),
    };
    let url = url::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => return Err(bad("no host")),
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => return Err(bad("plain http only to a loopback address; use https")),
        _ => return Err(bad("the scheme must be https")),
    }
    if !url.username().is_empty() || url.password().is_some() || url.fragment().is_some() {
        return Err(bad("credentials or a fragment are not allowed"));
    }
    Ok(url)
}

/// Whether `s` may go in a header as it is: 1 to 200 visible ASCII characters.
fn header_safe(s: &str) -> bool {
    (1..=200).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_graphic())
}

/// POSTs signed events to receivers.
#[derive(Debug, Clone)]
pub struct WebhookClient {
    http: reqwest::Client,
}

impl WebhookClient {
    /// A client with the HTTP channels' rules (see the module's header).
    pub fn new() -> Result<WebhookClient> {
        Ok(WebhookClient { http: http_client()? })
    }

    /// POSTs `body` (JSON) to `url`, signed with `secret` at `now` (Unix seconds), with the
    /// event's type and the delivery's id in their headers. A 2xx is a delivery; a 5xx, 429,
    /// 408, a refused connection or a timeout is transient; anything else, an unusable URL,
    /// type or id included, is permanent.
    pub async fn deliver(
        &self,
        url: &str,
        secret: &[u8],
        event_type: &str,
        delivery_id: &str,
        body: &[u8],
        now: i64,
    ) -> Result<(), SendError> {
        let url = checked_url("webhook", url).map_err(|_| SendError::permanent("invalid url"))?;
        if !header_safe(event_type) || !header_safe(delivery_id) {
            return Err(SendError::permanent("invalid event type or delivery id"));
        }
        let sent = self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, signature_header(secret, now, body))
            .header(EVENT_HEADER, event_type)
            .header(DELIVERY_HEADER, delivery_id)
            .body(body.to_vec())
            .send()
            .await;
        match sent {
            Ok(res) if res.status().is_success() => Ok(()),
            Ok(res) => Err(SendError::from_http_status(res.status().as_u16())),
            Err(e) => Err(SendError::from_reqwest(&e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"whsec_test";

    #[test]
    fn the_signature_is_hmac_sha256_of_timestamp_dot_body() {
        // Computed apart, with Python: hmac.new(b"whsec_test", b'1700000000.{"a":1}', sha256).hexdigest()
        let known = "38877139021993b830af32feea6e18a8da83eb2f6e49ee50bd9e4cf4ca4d3789";
        assert_eq!(signature(SECRET, 1_700_000_000, br#"{"a":1}"#), known);
        assert_eq!(
            signature_header(SECRET, 1_700_000_000, br#"{"a":1}"#),
            format!("t=1700000000,v1={known}")
        );
    }

    #[test]
    fn verify_accepts_its_own_header_and_refuses_the_rest() {
        let body = br#"{"evento":"ImagenRechazada"}"#;
        let h = signature_header(SECRET, 1000, body);
        assert!(h.starts_with("t=1000,v1=") && h.len() == "t=1000,v1=".len() + 64, "{h}");
        assert!(verify(SECRET, &h, body, 1000, 300));
        assert!(verify(SECRET, &h, body, 1300, 300));
        assert!(verify(SECRET, &h, body, 700, 300));
        assert!(!verify(SECRET, &h, body, 1301, 300), "too old");
        assert!(!verify(SECRET, &h, b"{\"evento\":\"ImagenAceptada\"}", 1000, 300), "tampered body");
        assert!(!verify(b"other", &h, body, 1000, 300), "other secret");
        let other_time = h.replace("t=1000", "t=1001");
        assert!(!verify(SECRET, &other_time, body, 1000, 300), "timestamp changed");
        let rotated = format!("t=1000,v1={},v1={}", "00".repeat(32), signature(SECRET, 1000, body));
        assert!(verify(SECRET, &rotated, body, 1000, 300));
        for bad in ["", "v1=abc", "t=x,v1=abc", "t=1000", "t=1000,t=1000,v1=00"] {
            assert!(!verify(SECRET, bad, body, 1000, 300), "{bad}");
        }
        assert!(!verify(SECRET, &signature_header(SECRET, i64::MIN, body), body, i64::MAX, 300));
    }

    #[test]
    fn only_https_or_loopback_http_urls() {
        for ok in [
            "https://hooks.example.org/a",
            "http://127.0.0.1:8080/x",
            "http://[::1]/x",
            "http://localhost/x",
        ] {
            assert!(checked_url("webhook", ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://hooks.example.org/a",
            "ftp://x/",
            "https://u:p@hooks.example.org/",
            "https://h/#f",
            "nope",
        ] {
            let err = checked_url("webhook", bad).expect_err(bad).to_string();
            assert!(!err.contains("hooks.example.org") && !err.contains("u:p"), "{err}");
        }
    }

    #[tokio::test]
    async fn unusable_urls_and_headers_are_permanent() {
        let c = WebhookClient::new().expect("client");
        let err = c
            .deliver("http://hooks.example.org/", SECRET, "E", "d1", b"{}", 0)
            .await
            .expect_err("refused");
        assert_eq!((err.reason.as_str(), err.transient), ("invalid url", false));
        let err = c
            .deliver("http://127.0.0.1:9/", SECRET, "E\r\nX: y", "d1", b"{}", 0)
            .await
            .expect_err("refused");
        assert!(!err.transient);
    }
}
