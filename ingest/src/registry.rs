//! What the institution, doctor and patient routes share: the registry store with the contact
//! key and the pseudonym secret ([`Registry`]), who a caller is to an institution
//! ([`Registry::scope_of`]), and the one way a patient's consent moves and is announced
//! ([`Registry::move_consent`]).
//!
//! Contact data is sealed before it reaches the store and opened only for `GET /pacientes/{id}`
//! (an audited read); it never reaches a log line, an event or an error message.

use alpes_anonymizer::pseudonym::patient_subject;
use alpes_anonymizer::Secret;
use alpes_domain::consent::{next, ConsentState, Step};
use alpes_domain::notification::NotificationStore;
use alpes_domain::registry::{scope, Doctor, Patient, RegistryStore};
use alpes_platform::auth::{Caller, Role};
use alpes_platform::http::ApiError;
use alpes_platform::kafka::Producer;
use alpes_platform::seal::ContactKey;
use alpes_schemas::{deterministic_event_id, now_millis, ConsentimientoCambiado, Event};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// The registry and the keys its routes need.
#[derive(Debug, Clone)]
pub struct Registry {
    /// Institutions, doctors, members, patients.
    pub store: Arc<dyn RegistryStore>,
    /// Seals contact data and makes patients' codes.
    pub key: ContactKey,
    /// The engine's secret: a patient's MRN becomes the pseudonym their images get.
    secret: Secret,
    /// Whether pseudonyms are made per owner (`--pseudonym-scope provider`, the default).
    per_owner: bool,
    /// Providers' institutions (or none) already read: a membership is set when the account is
    /// created, before it can upload, and never changes.
    members: Arc<RwLock<HashMap<String, Option<String>>>>,
    /// Notifications and institutions' webhooks.
    pub notifications: Arc<dyn NotificationStore>,
    /// The hosts webhooks may be posted to (`--webhook-allow`).
    pub webhook_allow: Vec<String>,
}

/// How many memberships [`Registry::institution_of_provider`] keeps.
const MEMBERS_KEPT: usize = 65_536;

/// A patient's contact data, as sealed.
#[derive(Serialize, Deserialize)]
pub struct Contact {
    /// Their name.
    pub nombre: String,
    /// Their email.
    pub email: String,
    /// Their phone, if given.
    pub telefono: Option<String>,
}

impl std::fmt::Debug for Contact {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Contact(..)")
    }
}

pub use alpes_domain::registry::Scope;

impl Registry {
    /// The registry over `store`, sealing with `key`, pseudonyms from `secret` (per owner when
    /// `per_owner`, as the engine makes them); webhooks in `notifications`, to `webhook_allow`.
    pub fn new(
        (store, notifications): (Arc<dyn RegistryStore>, Arc<dyn NotificationStore>),
        key: ContactKey,
        (secret, per_owner): (Secret, bool),
        webhook_allow: Vec<String>,
    ) -> Registry {
        Registry {
            store,
            key,
            secret,
            per_owner,
            members: Arc::default(),
            notifications,
            webhook_allow,
        }
    }

    /// The pseudonymous PatientID the institution's images of the patient with `mrn` get.
    pub fn subject(&self, institution_id: &str, mrn: &str) -> String {
        patient_subject(&self.secret, self.per_owner, institution_id, mrn)
    }

    /// `contact` sealed.
    pub fn seal(&self, contact: &Contact) -> Result<Vec<u8>, ApiError> {
        let json = serde_json::to_vec(contact).map_err(|e| ApiError::internal(&e))?;
        Ok(self.key.seal(&json))
    }

    /// A patient's contact data opened.
    pub fn open(&self, patient: &Patient) -> Result<Contact, ApiError> {
        let json = self.key.open(&patient.contact).map_err(|e| ApiError::internal(&e))?;
        serde_json::from_slice(&json).map_err(|_| ApiError::internal(&"sealed contact data is not JSON"))
    }

    /// The live institution `id`; 404 if there is none (or it was deleted).
    pub async fn live_institution(&self, id: &str) -> Result<alpes_domain::registry::Institution, ApiError> {
        match self.store.institution(id).await? {
            Some(i) if i.deleted_at.is_none() => Ok(i),
            _ => Err(ApiError::not_found("no institution with this id")),
        }
    }

    /// The live institution `id` if `caller` acts for it ([`Self::scope_of`]); 404 otherwise.
    pub async fn institution_for(&self, caller: &Caller, id: &str) -> Result<alpes_domain::registry::Institution, ApiError> {
        let scope = self.scope_of(caller).await?;
        match self.store.institution(id).await? {
            Some(i) if i.deleted_at.is_none() && scope.require(&i.id).is_ok() => Ok(i),
            _ => Err(ApiError::not_found("no institution with this id")),
        }
    }

    /// The institution of provider `user_id`, if it belongs to one (kept once read, and so is
    /// "none": an upload of a provider of no institution reads the store once, not per upload).
    pub async fn institution_of_provider(&self, user_id: &str) -> Result<Option<String>, ApiError> {
        if let Some(found) = self.members.read().ok().and_then(|m| m.get(user_id).cloned()) {
            return Ok(found);
        }
        let found = self.store.member_of(user_id).await?;
        if let Ok(mut members) = self.members.write() {
            if members.len() >= MEMBERS_KEPT {
                members.clear();
            }
            members.insert(user_id.to_owned(), found.clone());
        }
        Ok(found)
    }

    /// The doctor `caller` is, if active; 403 for a suspended, retired or deleted one.
    pub async fn active_doctor(&self, caller: &Caller) -> Result<Doctor, ApiError> {
        let doctor = self.store.doctor(&caller.user_id).await?;
        scope(Role::Medico, None, doctor.as_ref())?;
        doctor.ok_or_else(|| ApiError::internal(&"an active doctor without a row"))
    }

    /// Which institutions `caller` acts for ([`scope`]); 403 for a provider of no institution, an
    /// inactive doctor, a consumer.
    pub async fn scope_of(&self, caller: &Caller) -> Result<Scope, ApiError> {
        let (member_of, doctor) = match caller.role {
            Role::Proveedor => (self.institution_of_provider(&caller.user_id).await?, None),
            Role::Medico => (None, self.store.doctor(&caller.user_id).await?),
            Role::Admin | Role::Consumidor => (None, None),
        };
        Ok(scope(caller.role, member_of, doctor.as_ref())?)
    }

    /// Moves `patient`'s consent by `step` (409 `invalid_transition` if it does not apply, or if
    /// the patient moved meanwhile), then announces it. If the broker does not acknowledge, the
    /// move is undone and the answer is 503: a move the query side does not learn of never stands.
    pub async fn move_consent(
        &self,
        producer: &Producer,
        patient: &Patient,
        step: Step,
        actor: &str,
        request_id: Option<String>,
    ) -> Result<ConsentState, ApiError> {
        let to = next(patient.state, step).map_err(|e| ApiError::conflict("invalid_transition", e.to_string()))?;
        // Later than the patient's last move whatever the clocks of the replicas say: the query
        // side keeps the newest event of a patient.
        let at = now_millis().max(patient.updated_at + 1);
        if !self.store.move_patient(&patient.id, patient.state, to, at).await? {
            return Err(ApiError::conflict(
                "invalid_transition",
                "the patient's consent moved meanwhile; read it again",
            ));
        }
        let event = consent_event(patient, Some(patient.state), to, step.as_str(), actor, at, request_id.clone());
        if let Err(e) = producer.send(&patient.id, &event).await {
            tracing::warn!(error = %e, patient = %patient.id, "broker did not acknowledge a consent move; it is undone");
            self.undo(producer, patient, to, (actor, at), request_id).await;
            return Err(ApiError::unavailable("the event broker", 5));
        }
        tracing::info!(patient = %patient.id, from = patient.state.as_str(), to = to.as_str(), step = step.as_str(), "consent moved");
        Ok(to)
    }

    /// Undoes a move to `to` (made at `at`) the broker did not acknowledge. A failed send may
    /// still have been written, so the restored state is announced too (`undone`, later than
    /// the move): the query side never keeps a move the registry undid.
    async fn undo(&self, producer: &Producer, patient: &Patient, to: ConsentState, (actor, at): (&str, i64), request_id: Option<String>) {
        if !self
            .store
            .move_patient(&patient.id, to, patient.state, at + 1)
            .await
            .unwrap_or(false)
        {
            tracing::error!(patient = %patient.id, "a consent move the broker did not take could not be undone");
            return;
        }
        let back = consent_event(patient, Some(to), patient.state, "undone", actor, at + 1, request_id);
        if let Err(e) = producer.send(&patient.id, &back).await {
            tracing::warn!(error = %e, patient = %patient.id, "the undoing of a consent move was not announced either");
        }
    }
}

/// The `ConsentimientoCambiado` of `patient` reaching `to` by `paso` at `at`; its id is derived
/// from the patient, the step and the time, so a re-send is a duplicate.
pub fn consent_event(
    patient: &Patient,
    from: Option<ConsentState>,
    to: ConsentState,
    paso: &str,
    actor: &str,
    at: i64,
    request_id: Option<String>,
) -> ConsentimientoCambiado {
    ConsentimientoCambiado {
        evento_id: deterministic_event_id(ConsentimientoCambiado::NAME, &[&patient.id, paso, &at.to_string()]),
        ocurrido_at: at,
        actor: actor.to_owned(),
        paciente_id: patient.id.clone(),
        institucion_id: patient.institution_id.clone(),
        medico_id: patient.doctor_id.clone(),
        sujeto: patient.subject.clone(),
        estado_anterior: from.map(|s| s.as_str().to_owned()),
        estado: to.as_str().to_owned(),
        paso: paso.to_owned(),
        eliminado: patient.deleted_at.is_some() || paso == "deleted",
        solicitud_http_id: request_id,
    }
}
