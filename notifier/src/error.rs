//! The notifier's errors: [`SendError`], why one delivery failed and whether it is worth
//! retrying, and [`Error`], a configuration the adapters refuse at construction.
//!
//! Neither ever holds an address, a phone number, a message body, a secret or any patient
//! data: a reason is a short fixed phrase plus, at most, a protocol status code.

/// Why one delivery failed. Never holds an address, a message body or any patient data.
///
/// `transient` says whether trying again later may succeed: a refused or timed-out
/// connection, an SMTP 4xx reply, an HTTP 5xx, 429 or 408. Anything else (an SMTP 5xx, any
/// other HTTP 4xx, a redirect, an unusable address) is permanent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct SendError {
    /// e.g. "smtp 451", "http 500", "connect refused", "timeout", "invalid recipient".
    pub reason: String,
    /// Worth retrying.
    pub transient: bool,
}

impl SendError {
    /// A failure that a later attempt may not meet.
    pub fn transient(reason: impl Into<String>) -> Self {
        SendError {
            reason: reason.into(),
            transient: true,
        }
    }

    /// A failure that every later attempt would meet too.
    pub fn permanent(reason: impl Into<String>) -> Self {
        SendError {
            reason: reason.into(),
            transient: false,
        }
    }

    /// An HTTP answer that is not a success: 5xx, 429 (too many requests) and 408 (request
    /// timeout) are transient, every other status (4xx, a 3xx not followed) permanent.
    pub fn from_http_status(status: u16) -> Self {
        let reason = format!("http {status}");
        if status >= 500 || status == 429 || status == 408 {
            SendError::transient(reason)
        } else {
            SendError::permanent(reason)
        }
    }

    /// A request that got no answer: a timeout or a connection failure is transient, anything
    /// else (a request that could not be built, a redirect refused) permanent. The reason never
    /// repeats reqwest's message, which names the URL.
    pub(crate) fn from_reqwest(err: &reqwest::Error) -> Self {
        if err.is_timeout() {
            SendError::transient("timeout")
        } else if err.is_connect() {
            if refused(err) {
                SendError::transient("connect refused")
            } else {
                SendError::transient("connect failed")
            }
        } else if err.is_redirect() {
            SendError::permanent("redirect refused")
        } else if err.is_request() || err.is_body() {
            // The connection broke while the request was on its way.
            SendError::transient("request interrupted")
        } else {
            SendError::permanent("request failed")
        }
    }
}

/// Whether an `std::io::Error` with kind `ConnectionRefused` is somewhere in `err`'s sources.
pub(crate) fn refused(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::ConnectionRefused {
                return true;
            }
        }
        source = e.source();
    }
    false
}

/// A configuration the notifier refuses, at construction.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A server URL that does not parse or that the adapter does not speak. Never repeats the
    /// URL itself (it may carry credentials).
    #[error("invalid {what} URL: {reason}")]
    Url { what: &'static str, reason: String },
    /// A sender that is not a valid mailbox or phone number.
    #[error("invalid sender: {0}")]
    Sender(&'static str),
    /// A missing or malformed setting (an empty account, token…).
    #[error("invalid setting: {0}")]
    Setting(&'static str),
    /// The HTTP or SMTP client could not be built.
    #[error("client setup failed: {0}")]
    Client(String),
}

/// The crate's result, for configuration.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_statuses_are_classified() {
        for s in [500, 502, 503, 504, 429, 408] {
            assert!(SendError::from_http_status(s).transient, "{s}");
        }
        for s in [400, 401, 403, 404, 410, 413, 422, 301, 302, 307] {
            assert!(!SendError::from_http_status(s).transient, "{s}");
        }
        assert_eq!(SendError::from_http_status(503).to_string(), "http 503");
    }
}
