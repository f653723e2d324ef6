//! Notifications: what the notifier was asked to send, through which channel, for whom and how
//! it went; and the webhooks institutions subscribe. A notification names its recipient by id (a
//! user, a patient, an institution, a webhook), never by address: the address is read when it is
//! sent, and never stored with it.

use crate::Result;
use async_trait::async_trait;

/// The channels.
pub const CHANNELS: [&str; 3] = ["email", "sms", "webhook"];

/// The event types an institution may subscribe a webhook to.
pub const WEBHOOK_EVENTS: [&str; 3] = ["ConsentimientoCambiado", "ImagenRechazada", "PagoProcesado"];

/// Whether a webhook may be posted to `url`: an `https` URL (or `http` to a loopback host, where
/// nothing travels) without credentials, whose host, or host and port, the operator allowed
/// (`--webhook-allow`). Nothing is posted anywhere else, nor in clear over a network.
pub fn webhook_allowed(url: &str, allow: &[String]) -> bool {
    let Some(authority) = crate::import::url_host(url) else {
        return false;
    };
    let name = match authority.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => authority.as_str(),
    };
    let host = name.trim_start_matches('[').trim_end_matches(']');
    let loopback = host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    let https = url.get(..8).is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"));
    (https || loopback)
        && allow.iter().any(|a| {
            let a = a.trim().to_ascii_lowercase();
            a == authority || a == name
        })
}

/// How a notification names an account, as its recipient or its owner: `usuario:<id>`.
pub fn user_key(user_id: &str) -> String {
    format!("usuario:{user_id}")
}

/// How a notification names an institution, as its recipient or its owner: `institucion:<id>`.
pub fn institution_key(institution_id: &str) -> String {
    format!("institucion:{institution_id}")
}

/// How a notification went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum DeliveryState {
    /// Being sent (or its sender stopped before it knew: sent again after a restart).
    Pendiente,
    /// Delivered.
    Enviada,
    /// Given up after its last try: on the dead-letter topic.
    Fallida,
    /// Not sent, and never will be: no channel configured, no address, a recipient gone.
    Omitida,
}

impl DeliveryState {
    /// The wire and stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pendiente => "pendiente",
            DeliveryState::Enviada => "enviada",
            DeliveryState::Fallida => "fallida",
            DeliveryState::Omitida => "omitida",
        }
    }

    /// Parses a wire or stored name.
    pub fn parse(s: &str) -> Option<DeliveryState> {
        [
            DeliveryState::Pendiente,
            DeliveryState::Enviada,
            DeliveryState::Fallida,
            DeliveryState::Omitida,
        ]
        .into_iter()
        .find(|d| d.as_str() == s)
    }

    /// Whether it is settled: never sent again.
    pub fn is_final(self) -> bool {
        self != DeliveryState::Pendiente
    }
}

/// One notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// Its id: derived from the event, the channel, the template and the recipient, so an
    /// event delivered twice is notified once.
    pub id: String,
    /// The event it is for.
    pub event_id: String,
    /// That event's record name.
    pub event_type: String,
    /// `email`, `sms` or `webhook`.
    pub channel: String,
    /// What it says (`confirmacion_paciente`, `solicitud_validacion`, `imagen_rechazada`,
    /// `pago`, `revocacion`, `webhook`).
    pub template: String,
    /// Whom it is for: `paciente:<id>`, `usuario:<id>`, `institucion:<id>`, `webhook:<id>`.
    pub recipient: String,
    /// Who may read it (`GET /notificaciones`): the user it was sent to, or the institution's
    /// users for a patient's, an institution's or a webhook's.
    pub owner: String,
    /// How it went.
    pub state: DeliveryState,
    /// Tries made.
    pub attempts: u32,
    /// Why the last try failed, or why it was not sent.
    pub reason: Option<String>,
    /// When it was first tried, ms.
    pub created_at: i64,
    /// When it last changed, ms.
    pub updated_at: i64,
}

/// A webhook an institution subscribed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    /// Its id.
    pub id: String,
    /// The institution.
    pub institution_id: String,
    /// Where callbacks are posted.
    pub url: String,
    /// The signing secret, sealed.
    pub secret: Vec<u8>,
    /// The event types it receives ([`WEBHOOK_EVENTS`]).
    pub events: Vec<String>,
    /// When it was created, ms.
    pub created_at: i64,
}

/// The notification store.
#[async_trait]
pub trait NotificationStore: Send + Sync + std::fmt::Debug {
    /// Stores `n` unless a notification with its id exists; returns the existing one if so.
    async fn claim(&self, n: &Notification) -> Result<Option<Notification>>;
    /// Records how a notification went.
    async fn settle(&self, id: &str, state: DeliveryState, attempts: u32, reason: Option<&str>, at: i64) -> Result<()>;
    /// Notifications (of `owner`), newest first, before `(created_at, id)`.
    async fn notifications(&self, owner: Option<&str>, before: Option<(i64, String)>, limit: usize) -> Result<Vec<Notification>>;
    /// Stores a webhook.
    async fn add_webhook(&self, w: &Webhook) -> Result<()>;
    /// An institution's webhooks, oldest first.
    async fn webhooks(&self, institution_id: &str) -> Result<Vec<Webhook>>;
    /// Removes a webhook of an institution; false if it had none with this id.
    async fn delete_webhook(&self, institution_id: &str, id: &str) -> Result<bool>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_webhook_goes_only_where_the_operator_allowed() {
        let allow = vec!["hooks.example.org".to_owned(), "127.0.0.1:9000".to_owned()];
        assert!(webhook_allowed("https://hooks.example.org/a", &allow));
        assert!(
            webhook_allowed("https://HOOKS.example.org:8443/a", &allow),
            "any port of an allowed name"
        );
        assert!(webhook_allowed("http://127.0.0.1:9000/cb", &allow));
        assert!(!webhook_allowed("http://127.0.0.1:9001/cb", &allow), "only the allowed port");
        assert!(!webhook_allowed("https://evil.example.org/a", &allow));
        assert!(!webhook_allowed("https://user:pw@hooks.example.org/a", &allow));
        assert!(!webhook_allowed("ftp://hooks.example.org/a", &allow));
        assert!(!webhook_allowed("https://hooks.example.org/a", &[]), "nothing by default");
        assert!(
            !webhook_allowed("http://hooks.example.org/a", &allow),
            "no plain HTTP over a network"
        );
        let local = vec!["127.0.0.1".to_owned(), "[::1]".to_owned(), "localhost".to_owned()];
        assert!(webhook_allowed("http://127.0.0.1/cb", &local) && webhook_allowed("http://[::1]:8080/cb", &local));
        assert!(webhook_allowed("http://localhost:8080/cb", &local));
    }

    #[test]
    fn states_read_back_and_only_pending_is_open() {
        for s in [
            DeliveryState::Pendiente,
            DeliveryState::Enviada,
            DeliveryState::Fallida,
            DeliveryState::Omitida,
        ] {
            assert_eq!(DeliveryState::parse(s.as_str()), Some(s));
            assert_eq!(s.is_final(), s != DeliveryState::Pendiente);
        }
    }
}
