//! Email over SMTP (lettre): [`Mailer`] sends one text/plain UTF-8 message per call to the one
//! relay it is configured with, and classifies a failure as transient or permanent.
//!
//! The relay is a URL: `smtp://HOST:PORT` (plain, no TLS and no AUTH: a local relay),
//! `smtp://USER:PASS@HOST:PORT?tls=starttls` (STARTTLS required, then AUTH) or
//! `smtps://USER:PASS@HOST:PORT` (implicit TLS). Credentials are refused over plain SMTP.

use crate::error::{refused, Error, Result, SendError};
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::time::Duration;

/// How long one send may take, from connecting to the relay's last answer.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// How the connection to the relay is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// No TLS (`smtp://` without `tls`): for a relay on the same host or network.
    Plain,
    /// STARTTLS, required (`smtp://…?tls=starttls`, or `tls=required`).
    StartTls,
    /// TLS from the first byte (`smtps://`).
    Tls,
}

/// An SMTP relay and the sender every message comes from.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    host: String,
    port: u16,
    security: Security,
    authenticated: bool,
}

impl std::fmt::Debug for Mailer {
    // Never the credentials: only whether there are some.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("authenticated", &self.authenticated)
            .field("from", &self.from.email.to_string())
            .finish()
    }
}

fn url_error(reason: impl Into<String>) -> Error {
    Error::Url {
        what: "SMTP",
        reason: reason.into(),
    }
}

impl Mailer {
    /// A mailer for the relay at `url` (see the module's header), sending as `from`
    /// (`Alpes <noreply@example.org>` or a bare address).
    pub fn new(url: &str, from: &str) -> Result<Mailer> {
        let from: Mailbox = from.parse().map_err(|_| Error::Sender("not a mailbox"))?;
        // Not `AsyncSmtpTransport::from_url`: it would accept credentials over plain SMTP and
        // opportunistic TLS (a silent downgrade), and ignore unknown parameters.
        let url = url::Url::parse(url).map_err(|e| url_error(e.to_string()))?;
        let host = match url.host() {
            Some(url::Host::Domain(d)) if !d.is_empty() => d.to_owned(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            _ => return Err(url_error("no host")),
        };
        if !matches!(url.path(), "" | "/") || url.fragment().is_some() {
            return Err(url_error("a path or fragment is not understood"));
        }
        let mut tls = None;
        for (key, value) in url.query_pairs() {
            match (key.as_ref(), tls) {
                ("tls", None) => tls = Some(value.into_owned()),
                _ => return Err(url_error("the only parameter understood is tls=starttls, once")),
            }
        }
        let security = match (url.scheme(), tls.as_deref()) {
            ("smtp", None) => Security::Plain,
            ("smtp", Some("starttls" | "required")) => Security::StartTls,
            ("smtps", None) => Security::Tls,
            ("smtp" | "smtps", Some(_)) => return Err(url_error("tls must be starttls, on smtp:// only")),
            _ => return Err(url_error("the scheme must be smtp or smtps")),
        };
        let port = url.port().unwrap_or(match security {
            Security::Plain => 25,
            Security::StartTls => 587,
            Security::Tls => 465,
        });
        let credentials = match (url.username(), url.password()) {
            ("", None) => None,
            (user, Some(pass)) => Some(Credentials::new(decode(user)?, decode(pass)?)),
            (_, None) => return Err(url_error("a user needs a password")),
        };
        if credentials.is_some() && security == Security::Plain {
            return Err(url_error("credentials need TLS (smtps:// or ?tls=starttls)"));
        }
        let mut builder = match security {
            Security::Plain => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&host),
            Security::StartTls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&host).map_err(|_| url_error("TLS setup failed"))?,
            Security::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&host).map_err(|_| url_error("TLS setup failed"))?,
        };
        let authenticated = credentials.is_some();
        if let Some(credentials) = credentials {
            builder = builder.credentials(credentials);
        }
        let transport = builder.port(port).timeout(Some(SEND_TIMEOUT)).build();
        Ok(Mailer {
            transport,
            from,
            host,
            port,
            security,
            authenticated,
        })
    }

    /// The relay's host, the only one this mailer ever connects to.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The relay's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// How the connection to the relay is protected.
    pub fn security(&self) -> Security {
        self.security
    }

    /// Sends `text` (text/plain, UTF-8) with `subject` to `to` (a mailbox). An unparsable `to`
    /// is a permanent failure whose reason does not repeat it; a line break in `subject` is
    /// sent as a space.
    pub async fn send(&self, to: &str, subject: &str, text: &str) -> Result<(), SendError> {
        let to: Mailbox = to.parse().map_err(|_| SendError::permanent("invalid recipient"))?;
        let subject: String = subject.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            // lettre's own Message-ID would end in "@localhost" (without its `hostname` feature):
            // one in the sender's domain is what a relay and a spam filter expect.
            .message_id(Some(format!("<{}@{}>", uuid::Uuid::new_v4().simple(), self.from.email.domain())))
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(text.to_owned())
            .map_err(|_| SendError::permanent("message not built"))?;
        match tokio::time::timeout(SEND_TIMEOUT, self.transport.send(message)).await {
            Err(_) => Err(SendError::transient("timeout")),
            Ok(Err(e)) => Err(classify(&e)),
            Ok(Ok(_)) => Ok(()),
        }
    }
}

/// A percent-encoded user or password of the URL.
fn decode(s: &str) -> Result<String> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| url_error("credentials are not UTF-8"))
}

/// A failed SMTP exchange: the reply code alone (the reply's text may repeat the recipient).
fn classify(e: &lettre::transport::smtp::Error) -> SendError {
    if let Some(code) = e.status() {
        let reason = format!("smtp {code}");
        return if e.is_transient() {
            SendError::transient(reason)
        } else {
            SendError::permanent(reason)
        };
    }
    if e.is_timeout() {
        SendError::transient("timeout")
    } else if refused(e) {
        SendError::transient("connect refused")
    } else if e.is_tls() {
        // A certificate or protocol mismatch: no later attempt will pass it.
        SendError::permanent("smtp tls")
    } else if e.is_client() {
        SendError::permanent("smtp client")
    } else if e.is_response() {
        SendError::transient("smtp bad response")
    } else {
        SendError::transient("smtp connection failed")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mailer(url: &str) -> Mailer {
        Mailer::new(url, "Alpes <noreply@example.org>").expect("valid")
    }

    #[test]
    fn urls_give_host_port_and_security() {
        let m = mailer("smtp://127.0.0.1:2525");
        assert_eq!((m.host(), m.port(), m.security()), ("127.0.0.1", 2525, Security::Plain));
        let m = mailer("smtp://relay.example.org");
        assert_eq!((m.host(), m.port()), ("relay.example.org", 25));
        let m = mailer("smtp://u%40x:p%2Fw@mail.example.org?tls=starttls");
        assert_eq!((m.host(), m.port(), m.security()), ("mail.example.org", 587, Security::StartTls));
        let m = mailer("smtps://u:p@mail.example.org");
        assert_eq!((m.port(), m.security()), (465, Security::Tls));
        let m = mailer("smtp://[::1]:25");
        assert_eq!(m.host(), "::1");
    }

    #[test]
    fn bad_urls_and_senders_are_refused_without_echoing_them() {
        for url in [
            "http://relay.example.org",
            "smtp://",
            "smtp://u:secret@relay.example.org",
            "smtp://relay.example.org?tls=opportunistic",
            "smtps://relay.example.org?tls=starttls",
            "smtp://relay.example.org/path",
            "smtp://relay.example.org?tls=starttls&x=1",
            "smtp://u@relay.example.org?tls=starttls",
            "not a url",
        ] {
            let err = Mailer::new(url, "noreply@example.org").expect_err(url).to_string();
            assert!(!err.contains("secret") && !err.contains("relay.example.org"), "{url}: {err}");
        }
        assert!(matches!(Mailer::new("smtp://127.0.0.1", "not an address"), Err(Error::Sender(_))));
        assert!(Mailer::new("smtp://127.0.0.1", "noreply@example.org").is_ok());
    }

    #[test]
    fn debug_hides_the_credentials() {
        let m = mailer("smtps://someone:hunter2@mail.example.org:465");
        let debug = format!("{m:?}");
        assert!(!debug.contains("hunter2") && !debug.contains("someone"), "{debug}");
        assert!(
            debug.contains("mail.example.org") && debug.contains("authenticated: true"),
            "{debug}"
        );
    }

    #[tokio::test]
    async fn an_unparsable_recipient_is_permanent_and_not_repeated() {
        // Port 9 on loopback: never reached, the address is refused before connecting.
        let m = mailer("smtp://127.0.0.1:9");
        let err = m.send("maria.lopez(at)example.org", "s", "t").await.expect_err("refused");
        assert!(!err.transient);
        assert_eq!(err.reason, "invalid recipient");
    }
}
