//! Which notifications an event asks for ([`plan`]): the one place the cases are written.
//!
//! - a patient registered (`ConsentimientoCambiado`, `registered`): their confirmation with
//!   their two codes, by email and by SMS when they gave a phone; a validation request to
//!   their doctor;
//! - a patient's consent revoked: a notice to the institution's email;
//! - an image rejected (`ImagenRechazada`): a notice to its provider;
//! - a payment made (`PagoProcesado`): a notice to the provider paid;
//! - and each of these events to every webhook its institution subscribed to its type.
//!
//! A recipient is named by id; its address is read when the notification is sent.

use alpes_domain::notification::{institution_key, user_key, Webhook};
use alpes_schemas::{ConsentimientoCambiado, Event, ImagenRechazada, PagoProcesado};

/// An event the notifier acts on.
#[derive(Debug, Clone)]
pub enum Incoming {
    /// A patient's consent moved.
    Consent(ConsentimientoCambiado),
    /// An image was rejected.
    Rejected(ImagenRechazada),
    /// A provider was paid.
    Payment(PagoProcesado),
}

impl Incoming {
    /// The event's id.
    pub fn event_id(&self) -> &str {
        match self {
            Incoming::Consent(e) => &e.evento_id,
            Incoming::Rejected(e) => &e.event_id,
            Incoming::Payment(e) => &e.event_id,
        }
    }

    /// The event's record name.
    pub fn event_type(&self) -> &'static str {
        match self {
            Incoming::Consent(_) => ConsentimientoCambiado::NAME,
            Incoming::Rejected(_) => ImagenRechazada::NAME,
            Incoming::Payment(_) => PagoProcesado::NAME,
        }
    }

    /// The event as a webhook's body: its JSON (no event carries PHI).
    pub fn json(&self) -> Vec<u8> {
        match self {
            Incoming::Consent(e) => serde_json::to_vec(e),
            Incoming::Rejected(e) => serde_json::to_vec(e),
            Incoming::Payment(e) => serde_json::to_vec(e),
        }
        .unwrap_or_default()
    }

    /// The provider the event is about, if any (its institution's webhooks receive it).
    pub fn provider(&self) -> Option<&str> {
        match self {
            Incoming::Consent(_) => None,
            Incoming::Rejected(e) => e.provider_id.as_deref(),
            Incoming::Payment(e) => Some(&e.user_id),
        }
    }
}

/// Whom a notification is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipient {
    /// A patient (their sealed contact data).
    Patient(String),
    /// An account (its email).
    User(String),
    /// An institution (its contact email).
    Institution(String),
    /// A webhook.
    Webhook(Webhook),
}

impl Recipient {
    /// How the notification names it: `paciente:<id>`, `usuario:<id>`, `institucion:<id>`,
    /// `webhook:<id>`.
    pub fn key(&self) -> String {
        match self {
            Recipient::Patient(id) => format!("paciente:{id}"),
            Recipient::User(id) => user_key(id),
            Recipient::Institution(id) => institution_key(id),
            Recipient::Webhook(w) => format!("webhook:{}", w.id),
        }
    }
}

/// One notification to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    /// `email`, `sms` or `webhook`.
    pub channel: &'static str,
    /// What it says.
    pub template: &'static str,
    /// Whom it is for.
    pub recipient: Recipient,
    /// Who may read it: `usuario:<id>`, or `institucion:<id>` for what concerns an institution.
    pub owner: String,
}

/// The notifications `event` asks for; `institution` is the institution it concerns (the
/// patient's, or the provider's when it has one) and `webhooks` that institution's.
pub fn plan(event: &Incoming, institution: Option<&str>, webhooks: &[Webhook]) -> Vec<Planned> {
    let owner_of = |user: &str| institution.map_or_else(|| user_key(user), institution_key);
    let mut out = Vec::new();
    let mut email = |template, recipient, owner| {
        out.push(Planned {
            channel: "email",
            template,
            recipient,
            owner,
        })
    };
    match event {
        Incoming::Consent(e) if e.paso == "registered" => {
            email(
                "confirmacion_paciente",
                Recipient::Patient(e.paciente_id.clone()),
                institution_key(&e.institucion_id),
            );
            email("solicitud_validacion", Recipient::User(e.medico_id.clone()), user_key(&e.medico_id));
            out.push(Planned {
                channel: "sms",
                template: "confirmacion_paciente",
                recipient: Recipient::Patient(e.paciente_id.clone()),
                owner: institution_key(&e.institucion_id),
            });
        }
        Incoming::Consent(e) if e.estado == "revocado" && e.estado_anterior.as_deref() != Some("revocado") => {
            email(
                "revocacion",
                Recipient::Institution(e.institucion_id.clone()),
                institution_key(&e.institucion_id),
            );
        }
        Incoming::Consent(_) => {}
        Incoming::Rejected(e) => {
            if let Some(provider) = &e.provider_id {
                email("imagen_rechazada", Recipient::User(provider.clone()), owner_of(provider));
            }
        }
        Incoming::Payment(e) => email("pago", Recipient::User(e.user_id.clone()), owner_of(&e.user_id)),
    }
    if let Some(i) = institution {
        for w in webhooks.iter().filter(|w| w.events.iter().any(|t| t == event.event_type())) {
            out.push(Planned {
                channel: "webhook",
                template: "webhook",
                recipient: Recipient::Webhook(w.clone()),
                owner: institution_key(i),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn consent(paso: &str, from: Option<&str>, to: &str) -> Incoming {
        Incoming::Consent(ConsentimientoCambiado {
            evento_id: "e1".into(),
            ocurrido_at: 1,
            actor: "u".into(),
            paciente_id: "p1".into(),
            institucion_id: "i1".into(),
            medico_id: "d1".into(),
            sujeto: "ALPES-1".into(),
            estado_anterior: from.map(str::to_owned),
            estado: to.into(),
            paso: paso.into(),
            eliminado: false,
            solicitud_http_id: None,
        })
    }

    fn hook(id: &str, events: &[&str]) -> Webhook {
        Webhook {
            id: id.into(),
            institution_id: "i1".into(),
            url: "https://h/".into(),
            secret: vec![],
            events: events.iter().map(|e| (*e).to_owned()).collect(),
            created_at: 0,
        }
    }

    fn shape(p: &[Planned]) -> Vec<(&str, &str, String)> {
        p.iter().map(|p| (p.channel, p.template, p.recipient.key())).collect()
    }

    #[test]
    fn a_registration_tells_the_patient_and_asks_the_doctor() {
        let p = plan(
            &consent("registered", None, "pending"),
            Some("i1"),
            &[hook("w1", &["ConsentimientoCambiado"])],
        );
        assert_eq!(
            shape(&p),
            [
                ("email", "confirmacion_paciente", "paciente:p1".to_owned()),
                ("email", "solicitud_validacion", "usuario:d1".to_owned()),
                ("sms", "confirmacion_paciente", "paciente:p1".to_owned()),
                ("webhook", "webhook", "webhook:w1".to_owned()),
            ]
        );
        assert_eq!(p[1].owner, "usuario:d1", "the doctor reads their own");
        assert_eq!(p[0].owner, "institucion:i1");
    }

    #[test]
    fn a_revocation_tells_the_institution_and_a_validation_only_the_webhooks() {
        let hooks = [hook("w1", &["ImagenRechazada"]), hook("w2", &["ConsentimientoCambiado"])];
        let p = plan(&consent("patient_revokes", Some("full_access"), "revocado"), Some("i1"), &hooks);
        assert_eq!(
            shape(&p),
            [
                ("email", "revocacion", "institucion:i1".to_owned()),
                ("webhook", "webhook", "webhook:w2".to_owned())
            ]
        );
        let p = plan(
            &consent("doctor_validates", Some("pending"), "validated_by_doctor"),
            Some("i1"),
            &hooks,
        );
        assert_eq!(shape(&p), [("webhook", "webhook", "webhook:w2".to_owned())]);
        let deleted = plan(&consent("deleted", Some("revocado"), "revocado"), Some("i1"), &[]);
        assert!(deleted.is_empty(), "the deletion of a revoked patient is no second revocation");
    }

    #[test]
    fn a_rejection_and_a_payment_tell_the_provider() {
        let rejected = Incoming::Rejected(ImagenRechazada {
            event_id: "r1".into(),
            occurred_at: 1,
            actor: "anonymizer".into(),
            image_id: Some("img".into()),
            provider_id: Some("prov".into()),
            request_id: None,
            reason: "unreadable_dicom".into(),
            message: "m".into(),
            source_topic: None,
            source_partition: None,
            source_offset: None,
            http_request_id: None,
        });
        let p = plan(&rejected, None, &[]);
        assert_eq!(shape(&p), [("email", "imagen_rechazada", "usuario:prov".to_owned())]);
        assert_eq!(p[0].owner, "usuario:prov");
        let p = plan(&rejected, Some("i1"), &[hook("w1", &["ImagenRechazada"])]);
        assert_eq!(p[0].owner, "institucion:i1", "a provider of an institution: the institution's");
        assert_eq!(p.len(), 2);
        let paid = Incoming::Payment(PagoProcesado {
            event_id: "x".into(),
            occurred_at: 1,
            actor: "a".into(),
            user_id: "prov".into(),
            amount_minor: 1234,
            currency: "EUR".into(),
            reference: "ref".into(),
            http_request_id: None,
        });
        assert_eq!(shape(&plan(&paid, None, &[])), [("email", "pago", "usuario:prov".to_owned())]);
    }
}
