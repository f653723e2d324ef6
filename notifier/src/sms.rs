//! SMS through a Twilio-style REST provider: [`SmsClient`] POSTs one message to
//! `{base_url}/2010-04-01/Accounts/{account}/Messages.json` with HTTP Basic auth
//! (account, token) and the form fields `To`, `From` and `Body`, as Twilio's API takes them.
//! Phone numbers are E.164 (`+` and 6 to 15 digits; spaces and dashes are dropped).

use crate::error::{Error, Result, SendError};
use crate::webhook::{checked_url, http_client};

/// One provider account and the sender its messages come from.
#[derive(Clone)]
pub struct SmsClient {
    http: reqwest::Client,
    endpoint: url::Url,
    account: String,
    token: String,
    from: String,
}

impl std::fmt::Debug for SmsClient {
    // Never the token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmsClient")
            .field("endpoint", &self.endpoint.as_str())
            .field("account", &self.account)
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

/// `number` in E.164 (`+` then 6 to 15 digits, the first not 0) once its spaces and dashes
/// are dropped.
pub fn normalize_phone(number: &str) -> Option<String> {
    let kept: String = number.trim().chars().filter(|c| !matches!(c, ' ' | '-')).collect();
    let digits = kept.strip_prefix('+')?;
    let ok = (6..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0');
    ok.then_some(kept)
}

/// An alphanumeric sender ID: 1 to 11 ASCII letters, digits or spaces, at least one letter.
fn alphanumeric_sender(s: &str) -> bool {
    (1..=11).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b' ')
        && s.bytes().any(|b| b.is_ascii_alphabetic())
        && s.trim() == s
}

impl SmsClient {
    /// A client of the provider at `base_url` (`https://api.twilio.com`, or `http://` to a
    /// loopback address), for `account` (letters, digits, `_`, `-`) with `token`, sending from
    /// `from` (an E.164 number or an alphanumeric sender ID).
    pub fn new(base_url: &str, account: &str, token: &str, from: &str) -> Result<SmsClient> {
        let base = checked_url("SMS provider", base_url)?;
        if base.query().is_some() {
            return Err(Error::Url {
                what: "SMS provider",
                reason: "a query is not understood".into(),
            });
        }
        if account.is_empty() || account.len() > 64 || !account.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
            return Err(Error::Setting("the SMS account must be 1 to 64 letters, digits, '_' or '-'"));
        }
        if token.is_empty() {
            return Err(Error::Setting("the SMS token is empty"));
        }
        let from = match normalize_phone(from) {
            Some(number) => number,
            None if alphanumeric_sender(from) => from.to_owned(),
            None => return Err(Error::Sender("neither an E.164 number nor an alphanumeric sender ID")),
        };
        let path = format!("{}/2010-04-01/Accounts/{account}/Messages.json", base.path().trim_end_matches('/'));
        let mut endpoint = base;
        endpoint.set_path(&path);
        Ok(SmsClient {
            http: http_client()?,
            endpoint,
            account: account.to_owned(),
            token: token.to_owned(),
            from,
        })
    }

    /// The URL every message is POSTed to.
    pub fn endpoint(&self) -> &url::Url {
        &self.endpoint
    }

    /// Sends `body` to `to`. A number that is not E.164 is a permanent failure whose reason
    /// does not repeat it; a 2xx is a delivery to the provider; a 5xx, 429, 408, a refused
    /// connection or a timeout is transient; any other answer (a 3xx too) permanent.
    pub async fn send(&self, to: &str, body: &str) -> Result<(), SendError> {
        let to = normalize_phone(to).ok_or_else(|| SendError::permanent("invalid phone number"))?;
        if body.trim().is_empty() {
            return Err(SendError::permanent("empty message"));
        }
        let form = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("To", &to)
            .append_pair("From", &self.from)
            .append_pair("Body", body)
            .finish();
        let sent = self
            .http
            .post(self.endpoint.clone())
            .basic_auth(&self.account, Some(&self.token))
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form)
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

    #[test]
    fn phone_numbers_are_e164() {
        assert_eq!(normalize_phone("+34 600-123-456").as_deref(), Some("+34600123456"));
        assert_eq!(normalize_phone(" +573001234567 ").as_deref(), Some("+573001234567"));
        assert_eq!(normalize_phone("+123456").as_deref(), Some("+123456"));
        for bad in [
            "600123456",
            "+12345",
            "+1234567890123456",
            "+34 (600) 123",
            "+0600123456",
            "+34600abc",
            "",
            "+",
        ] {
            assert_eq!(normalize_phone(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_endpoint_is_twilios_path_under_the_base() {
        let c = SmsClient::new("https://api.twilio.com", "AC123", "tok", "+15005550006").expect("valid");
        assert_eq!(
            c.endpoint().as_str(),
            "https://api.twilio.com/2010-04-01/Accounts/AC123/Messages.json"
        );
        let c = SmsClient::new("http://127.0.0.1:8080/prefix/", "AC123", "tok", "Alpes").expect("valid");
        assert_eq!(
            c.endpoint().as_str(),
            "http://127.0.0.1:8080/prefix/2010-04-01/Accounts/AC123/Messages.json"
        );
    }

    #[test]
    fn bad_settings_are_refused() {
        let ok = ("https://api.twilio.com", "AC123", "tok", "+15005550006");
        assert!(
            SmsClient::new("http://api.twilio.com", ok.1, ok.2, ok.3).is_err(),
            "plain http to a remote host"
        );
        assert!(SmsClient::new("https://api.twilio.com?x=1", ok.1, ok.2, ok.3).is_err());
        assert!(SmsClient::new(ok.0, "AC/../x", ok.2, ok.3).is_err());
        assert!(SmsClient::new(ok.0, "", ok.2, ok.3).is_err());
        assert!(SmsClient::new(ok.0, ok.1, "", ok.3).is_err());
        assert!(SmsClient::new(ok.0, ok.1, ok.2, "600123456").is_err());
        assert!(SmsClient::new(ok.0, ok.1, ok.2, "An Overly Long Name").is_err());
    }

    #[test]
    fn debug_hides_the_token() {
        let c = SmsClient::new("https://api.twilio.com", "AC123", "s3cr3t-token", "+15005550006").expect("valid");
        let debug = format!("{c:?}");
        assert!(!debug.contains("s3cr3t-token") && debug.contains("AC123"), "{debug}");
    }

    #[tokio::test]
    async fn a_bad_number_is_permanent_and_not_repeated() {
        let c = SmsClient::new("http://127.0.0.1:9", "AC123", "tok", "+15005550006").expect("valid");
        let err = c.send("600 12 34 56", "hola").await.expect_err("refused");
        assert_eq!((err.reason.as_str(), err.transient), ("invalid phone number", false));
    }
}
