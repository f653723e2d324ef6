//! The notifier as one app: [`NotifierApp::build`] opens its channels from the flags and declares
//! its consumer group to the readiness; [`NotifierApp::run_until_stopped`] turns the events of
//! `alpes.consent`, `alpes.images.rejected` and `alpes.payments` into notifications until the
//! shutdown signal.
//!
//! The consume loop is the platform's ([`run_projection`]): a batch's offsets are stored once
//! every notification it asked for is settled, so a stop in between sends the rest after the
//! restart (what was settled is skipped). An event that does not decode is counted and skipped.

use crate::args::NotifyArgs;
use crate::deliver::Deliverer;
use crate::email::Mailer;
use crate::plan::{plan, Incoming};
use crate::sms::SmsClient;
use crate::webhook::WebhookClient;
use alpes_domain::identity::IdentityStore;
use alpes_domain::notification::NotificationStore;
use alpes_domain::registry::RegistryStore;
use alpes_platform::kafka::projector::{run_projection, Projection};
use alpes_platform::kafka::{Kafka, Producer};
use alpes_platform::metrics::Metrics;
use alpes_platform::retry::{retry, Backoff};
use alpes_platform::seal::ContactKey;
use alpes_platform::shutdown::Shutdown;
use alpes_schemas::{topics, Codec, ConsentimientoCambiado, ImagenRechazada, PagoProcesado};
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;

/// The notifiers' consumer group: every notifier shares the events.
pub const GROUP: &str = "alpes-notifier";

/// What the notifier is built from.
#[derive(Debug)]
pub struct NotifierDeps {
    /// The event log.
    pub kafka: Arc<Kafka>,
    /// Produces dead letters.
    pub producer: Producer,
    /// Patients and institutions.
    pub registry: Arc<dyn RegistryStore>,
    /// Accounts.
    pub identity: Arc<dyn IdentityStore>,
    /// Notifications and webhooks.
    pub store: Arc<dyn NotificationStore>,
    /// The contact key.
    pub key: ContactKey,
    /// Process metrics.
    pub metrics: Arc<Metrics>,
}

/// The notifier, built and ready to run.
#[derive(Debug)]
pub struct NotifierApp {
    kafka: Arc<Kafka>,
    metrics: Arc<Metrics>,
    events: Events,
}

/// The projection that notifies.
#[derive(Debug)]
struct Events {
    codec: Codec,
    deliverer: Deliverer,
}

#[async_trait]
impl Projection for Events {
    type Item = Incoming;
    const TOPICS: &'static [&'static str] = &[topics::CONSENT, topics::IMAGES_REJECTED, topics::PAYMENTS];
    const BATCH: usize = 64;
    // A batch may wait out every retry of its notifications.
    const CONSUMER_PROPS: &'static [(&'static str, &'static str)] = &[("max.poll.interval.ms", "3600000")];

    async fn decode(&self, topic: &str, payload: &[u8]) -> Result<Option<Incoming>, &'static str> {
        let event = match topic {
            topics::CONSENT => Incoming::Consent(self.codec.decode::<ConsentimientoCambiado>(payload).await.map_err(|e| e.reason())?),
            topics::IMAGES_REJECTED => Incoming::Rejected(self.codec.decode::<ImagenRechazada>(payload).await.map_err(|e| e.reason())?),
            topics::PAYMENTS => Incoming::Payment(self.codec.decode::<PagoProcesado>(payload).await.map_err(|e| e.reason())?),
            _ => return Err("unexpected_topic"),
        };
        Ok(Some(event))
    }

    async fn apply(&self, batch: Vec<Incoming>, stop: &Shutdown) -> bool {
        for event in batch {
            if self.one(&event, stop).await.is_err() {
                return false;
            }
        }
        true
    }
}

impl Events {
    async fn one(&self, event: &Incoming, stop: &Shutdown) -> Result<(), crate::deliver::Stopped> {
        let d = &self.deliverer;
        let institution = match (event, event.provider()) {
            (Incoming::Consent(e), _) => Some(e.institucion_id.clone()),
            (_, Some(provider)) => retry(stop, "read a provider's institution", || d.registry.member_of(provider))
                .await
                .map_err(|_| crate::deliver::Stopped)?,
            (_, None) => None,
        };
        let webhooks = match &institution {
            Some(i) => retry(stop, "read an institution's webhooks", || d.store.webhooks(i))
                .await
                .map_err(|_| crate::deliver::Stopped)?,
            None => Vec::new(),
        };
        d.notify(event, plan(event, institution.as_deref(), &webhooks), stop).await
    }
}

impl NotifierApp {
    /// The notifier over `deps`, with the channels `args` configures.
    pub fn build(deps: NotifierDeps, args: &NotifyArgs) -> Result<NotifierApp, String> {
        let mailer = args
            .smtp_url
            .as_deref()
            .map(|url| Mailer::new(url, &args.smtp_from))
            .transpose()
            .map_err(|e| format!("--smtp-url/--smtp-from: {e}"))?;
        let sms = args
            .sms_url
            .as_deref()
            .map(|url| SmsClient::new(url, &args.sms_account, &args.sms_token, &args.sms_from))
            .transpose()
            .map_err(|e| format!("--sms-url: {e}"))?;
        let webhooks = WebhookClient::new().map_err(|e| format!("webhooks: {e}"))?;
        if mailer.is_none() {
            tracing::warn!(
                "no --smtp-url: no email is sent (each is recorded omitida), so patients get no confirmation code \
                 by email"
            );
        }
        deps.kafka.expect_projection::<Events>(GROUP);
        let deliverer = Deliverer {
            mailer,
            sms,
            webhooks,
            allow: args.webhook_allow.clone(),
            registry: deps.registry,
            identity: deps.identity,
            store: deps.store,
            key: deps.key,
            producer: deps.producer.clone(),
            backoff: Backoff {
                first: Duration::from_millis(args.backoff_ms.max(1)),
                max: Duration::from_millis(args.backoff_ms.max(1)).saturating_mul(64),
                attempts: args.attempts.max(1),
            },
            metrics: deps.metrics.clone(),
        };
        Ok(NotifierApp {
            kafka: deps.kafka,
            metrics: deps.metrics,
            events: Events {
                codec: deps.producer.codec().clone(),
                deliverer,
            },
        })
    }

    /// Notifies until `stop`.
    pub async fn run_until_stopped(self, stop: Shutdown) -> alpes_platform::Result<()> {
        run_projection(&self.kafka, GROUP, self.metrics.clone(), &self.events, &stop).await
    }
}
