//! Sending one planned notification, once: it is claimed in the store by an id derived from the
//! event, the channel, the template and the recipient (an event delivered twice is notified
//! once); its recipient's address is read from the registry or the identity store only now;
//! it is tried up to `--notify-attempts` times with exponential backoff and jitter
//! ([`alpes_platform::retry::retry_bounded`]: a transient failure is retried, a permanent one is
//! not); and a notification given up goes to `alpes.notifications.dead` (`NotificacionFallida`)
//! with its reason. A notification that cannot be sent at all (no channel configured, no
//! address, a recipient gone, a webhook host not allowed) is recorded `omitida`.
//!
//! A failure of the platform itself (the store, the broker) is retried until it works or the
//! notifier stops; then the event comes again after the restart, and what was settled is skipped.

use crate::email::Mailer;
use crate::error::SendError;
use crate::plan::{Incoming, Planned, Recipient};
use crate::sms::SmsClient;
use crate::templates::{render, Lang, Message, Rendered};
use crate::webhook::WebhookClient;
use alpes_domain::identity::IdentityStore;
use alpes_domain::notification::{webhook_allowed, DeliveryState, Notification, NotificationStore};
use alpes_domain::registry::{CodeKind, RegistryStore};
use alpes_platform::kafka::Producer;
use alpes_platform::metrics::Metrics;
use alpes_platform::retry::{retry, retry_bounded, Attempt, Backoff};
use alpes_platform::seal::ContactKey;
use alpes_platform::shutdown::Shutdown;
use alpes_schemas::{deterministic_event_id, now_millis, NotificacionFallida};
use serde::Deserialize;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

/// The notifier stopped before it knew how a notification went: it stays `pendiente`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped;

/// The channels, the stores and the keys a notification needs.
#[derive(Debug)]
pub struct Deliverer {
    /// Email, if an SMTP server is configured.
    pub mailer: Option<Mailer>,
    /// SMS, if a provider is configured.
    pub sms: Option<SmsClient>,
    /// Webhooks.
    pub webhooks: WebhookClient,
    /// Where webhooks may go.
    pub allow: Vec<String>,
    /// Patients and institutions (their addresses).
    pub registry: Arc<dyn RegistryStore>,
    /// Accounts (their emails).
    pub identity: Arc<dyn IdentityStore>,
    /// Notifications and webhooks.
    pub store: Arc<dyn NotificationStore>,
    /// Opens contact data and webhook secrets, and makes patients' codes.
    pub key: ContactKey,
    /// Produces dead letters.
    pub producer: Producer,
    /// The tries and their waits.
    pub backoff: Backoff,
    /// Counts outcomes.
    pub metrics: Arc<Metrics>,
}

/// What a notification sends, addressed.
enum Addressed {
    Email { to: String, message: Rendered },
    Sms { to: String, message: Rendered },
    Webhook { url: String, secret: Vec<u8>, body: Vec<u8> },
}

/// A patient's contact data, as sealed by ingest.
#[derive(Deserialize)]
struct Contact {
    email: String,
    telefono: Option<String>,
}

/// Why a notification is not sent at all.
type Omit = &'static str;

impl Deliverer {
    /// Sends what `event` asks for (`planned`), each once.
    pub async fn notify(&self, event: &Incoming, planned: Vec<Planned>, stop: &Shutdown) -> Result<(), Stopped> {
        for p in planned {
            self.one(event, p, stop).await?;
        }
        Ok(())
    }

    async fn one(&self, event: &Incoming, p: Planned, stop: &Shutdown) -> Result<(), Stopped> {
        let recipient = p.recipient.key();
        let id = deterministic_event_id("Notificacion", &[event.event_id(), p.channel, p.template, &recipient]);
        let now = now_millis();
        let n = Notification {
            id: id.clone(),
            event_id: event.event_id().to_owned(),
            event_type: event.event_type().to_owned(),
            channel: p.channel.to_owned(),
            template: p.template.to_owned(),
            recipient,
            owner: p.owner.clone(),
            state: DeliveryState::Pendiente,
            attempts: 0,
            reason: None,
            created_at: now,
            updated_at: now,
        };
        let existing = retry(stop, "claim a notification", || self.store.claim(&n))
            .await
            .map_err(|_| Stopped)?;
        if existing.is_some_and(|e| e.state.is_final()) {
            return Ok(());
        }
        let addressed = retry(stop, "read a notification's recipient", || self.address_or_omit(event, &p))
            .await
            .map_err(|_| Stopped)?;
        let addressed = match addressed {
            Ok(a) => a,
            Err(omit) => return self.settle(&n, DeliveryState::Omitida, 0, Some(omit), stop).await,
        };
        let tries = AtomicU32::new(0);
        let sent = retry_bounded(
            self.backoff,
            stop,
            |attempt, e: &SendError, wait| {
                self.metrics.notifications.with_label_values(&[p.channel, "reintento"]).inc();
                tracing::info!(notification = %id, channel = p.channel, attempt, reason = %e.reason, wait_ms = wait.as_millis() as u64, "notification failed; retrying");
            },
            |_| {
                tries.fetch_add(1, Ordering::Relaxed);
                self.send(&id, event, &addressed)
            },
        )
        .await;
        let attempts = tries.load(Ordering::Relaxed);
        match sent {
            Ok(()) => self.settle(&n, DeliveryState::Enviada, attempts, None, stop).await,
            Err(gave_up) if gave_up.stopped => Err(Stopped),
            Err(gave_up) => {
                let reason = gave_up.error.reason;
                self.dead_letter(&n, &reason, attempts, stop).await?;
                self.settle(&n, DeliveryState::Fallida, attempts, Some(&reason), stop).await
            }
        }
    }

    /// One try.
    async fn send(&self, id: &str, event: &Incoming, addressed: &Addressed) -> Result<(), Attempt<SendError>> {
        let sent = match addressed {
            Addressed::Email { to, message } => match &self.mailer {
                Some(m) => m.send(to, &message.subject, &message.text).await,
                None => Err(SendError::permanent("no SMTP server configured")),
            },
            Addressed::Sms { to, message } => match &self.sms {
                Some(s) => s.send(to, &message.text).await,
                None => Err(SendError::permanent("no SMS provider configured")),
            },
            Addressed::Webhook { url, secret, body } => {
                self.webhooks
                    .deliver(url, secret, event.event_type(), id, body, now_millis() / 1000)
                    .await
            }
        };
        sent.map_err(|e| if e.transient { Attempt::Again(e, None) } else { Attempt::Final(e) })
    }

    /// The notification addressed, or why it cannot be sent at all; `Err` when a store failed.
    async fn address_or_omit(&self, event: &Incoming, p: &Planned) -> Result<Result<Addressed, Omit>, alpes_domain::Error> {
        match self.address(event, p).await {
            Ok(a) => Ok(Ok(a)),
            Err(Ok(omit)) => Ok(Err(omit)),
            Err(Err(e)) => Err(e),
        }
    }

    /// The notification addressed; `Err(Ok(why))` when it cannot be sent at all, `Err(Err(e))`
    /// when a store failed.
    async fn address(&self, event: &Incoming, p: &Planned) -> Result<Addressed, Result<Omit, alpes_domain::Error>> {
        match (&p.recipient, p.channel) {
            (Recipient::Webhook(w), _) => {
                if !webhook_allowed(&w.url, &self.allow) {
                    return Err(Ok("the webhook's host is not allowed (--webhook-allow)"));
                }
                let secret = self.key.open(&w.secret).map_err(|_| Ok("the webhook's secret cannot be opened"))?;
                Ok(Addressed::Webhook {
                    url: w.url.clone(),
                    secret,
                    body: event.json(),
                })
            }
            (_, "email") if self.mailer.is_none() => Err(Ok("no SMTP server configured (--smtp-url)")),
            (_, "sms") if self.sms.is_none() => Err(Ok("no SMS provider configured (--sms-url)")),
            (Recipient::Patient(id), channel) => self.to_patient(id, channel).await,
            (Recipient::User(id), _) => {
                let account = self.identity.account(id).await.map_err(Err)?.ok_or(Ok("the account is gone"))?;
                deliverable(&account.email)?;
                Ok(Addressed::Email {
                    to: account.email,
                    message: render(&message_for(event), Lang::Es),
                })
            }
            (Recipient::Institution(id), _) => {
                let i = self
                    .registry
                    .institution(id)
                    .await
                    .map_err(Err)?
                    .ok_or(Ok("the institution is gone"))?;
                deliverable(&i.email)?;
                Ok(Addressed::Email {
                    to: i.email,
                    message: render(&message_for(event), Lang::Es),
                })
            }
        }
    }

    /// A patient's confirmation with their codes, by `channel`.
    async fn to_patient(&self, id: &str, channel: &str) -> Result<Addressed, Result<Omit, alpes_domain::Error>> {
        let patient = self.registry.patient(id).await.map_err(Err)?;
        let patient = patient.filter(|p| p.deleted_at.is_none()).ok_or(Ok("the patient is gone"))?;
        let institution = self.registry.institution(&patient.institution_id).await.map_err(Err)?;
        let name = institution.map(|i| i.nombre).unwrap_or_default();
        let opened = self
            .key
            .open(&patient.contact)
            .map_err(|_| Ok("the patient's contact data cannot be opened"))?;
        let contact: Contact = serde_json::from_slice(&opened).map_err(|_| Ok("the patient's contact data is not readable"))?;
        let (confirm, revoke) = (self.key.code(CodeKind::Confirm, id), self.key.code(CodeKind::Revoke, id));
        let message = render(
            &Message::PatientConfirmation {
                institution: &name,
                confirm_code: &confirm,
                revoke_code: &revoke,
            },
            Lang::parse_or_default(&patient.idioma),
        );
        if channel == "sms" {
            let to = contact.telefono.ok_or(Ok("the patient gave no phone"))?;
            return Ok(Addressed::Sms { to, message });
        }
        deliverable(&contact.email)?;
        Ok(Addressed::Email {
            to: contact.email,
            message,
        })
    }

    async fn settle(
        &self,
        n: &Notification,
        state: DeliveryState,
        attempts: u32,
        reason: Option<&str>,
        stop: &Shutdown,
    ) -> Result<(), Stopped> {
        let at = now_millis();
        retry(stop, "settle a notification", || {
            self.store.settle(&n.id, state, attempts, reason, at)
        })
        .await
        .map_err(|_| Stopped)?;
        self.metrics.notifications.with_label_values(&[&n.channel, state.as_str()]).inc();
        tracing::info!(notification = %n.id, event = %n.event_id, channel = %n.channel, template = %n.template, state = state.as_str(), attempts, "notification settled");
        Ok(())
    }

    async fn dead_letter(&self, n: &Notification, reason: &str, attempts: u32, stop: &Shutdown) -> Result<(), Stopped> {
        let dead = NotificacionFallida {
            evento_id: deterministic_event_id("NotificacionFallida", &[&n.id]),
            ocurrido_at: now_millis(),
            actor: "notifier".into(),
            notificacion_id: n.id.clone(),
            evento_origen_id: n.event_id.clone(),
            tipo_evento: n.event_type.clone(),
            canal: n.channel.clone(),
            plantilla: n.template.clone(),
            motivo: reason.to_owned(),
            intentos: i32::try_from(attempts).unwrap_or(i32::MAX),
        };
        retry(stop, "produce a dead letter", || self.producer.send(&n.id, &dead))
            .await
            .map_err(|_| Stopped)
    }
}

/// `Err` for an address no message can reach: the reserved `.invalid` domain of accounts made
/// by `alpes token`.
fn deliverable(email: &str) -> Result<(), Result<Omit, alpes_domain::Error>> {
    if email.ends_with(".invalid") {
        Err(Ok("the address is not deliverable (.invalid)"))
    } else {
        Ok(())
    }
}

/// What an event says to an account or an institution.
fn message_for(event: &Incoming) -> Message<'_> {
    match event {
        Incoming::Consent(e) if e.paso == "registered" => Message::ValidationRequest {
            patient_id: &e.paciente_id,
        },
        Incoming::Consent(e) => Message::ConsentRevoked {
            patient_id: &e.paciente_id,
        },
        Incoming::Rejected(e) => Message::ImageRejected {
            image_id: e.image_id.as_deref().unwrap_or_default(),
            reason: &e.reason,
        },
        Incoming::Payment(e) => Message::PaymentMade {
            amount_minor: e.amount_minor,
            currency: &e.currency,
            reference: &e.reference,
        },
    }
}
