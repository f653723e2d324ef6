//! The rows of the CQL registry, and what they read back as.

use crate::{Error, Result};
use alpes_domain::consent::{ConsentState, UnregisteredPolicy};
use alpes_domain::registry::{Doctor, DoctorStatus, Institution, Patient, Verification};
use scylla::DeserializeRow;

/// A stored name that does not parse: the row was not written by this code.
fn unknown(what: &str) -> Error {
    Error::Store(format!("scylla: the registry holds an unknown {what}"))
}

#[derive(Debug, Clone, DeserializeRow)]
pub(super) struct InstitutionRow {
    id: String,
    nombre: Option<String>,
    tipo: Option<String>,
    licencia: Option<String>,
    email: Option<String>,
    region: Option<String>,
    verificacion: Option<String>,
    politica: Option<String>,
    created_at: Option<i64>,
    deleted_at: Option<i64>,
}

impl InstitutionRow {
    /// The institution, or `None` for a row that is not one (cells written for an unknown id).
    pub(super) fn into_institution(self) -> Result<Option<Institution>> {
        let (Some(licencia), Some(created_at)) = (self.licencia, self.created_at) else {
            return Ok(None);
        };
        let verificacion = self.verificacion.unwrap_or_default();
        let politica = self.politica.unwrap_or_default();
        Ok(Some(Institution {
            id: self.id,
            nombre: self.nombre.unwrap_or_default(),
            tipo: self.tipo.unwrap_or_default(),
            licencia,
            email: self.email.unwrap_or_default(),
            region: self.region,
            verificacion: Verification::parse(&verificacion).ok_or_else(|| unknown("verification"))?,
            politica: UnregisteredPolicy::parse(&politica).ok_or_else(|| unknown("policy"))?,
            created_at,
            deleted_at: self.deleted_at,
        }))
    }
}

#[derive(Debug, Clone, DeserializeRow)]
pub(super) struct DoctorRow {
    user_id: String,
    institution_id: Option<String>,
    licencia: Option<String>,
    especialidad: Option<String>,
    status: Option<String>,
    created_at: Option<i64>,
    deleted_at: Option<i64>,
}

impl DoctorRow {
    /// The doctor, or `None` for a row that is not one.
    pub(super) fn into_doctor(self) -> Result<Option<Doctor>> {
        let (Some(licencia), Some(created_at)) = (self.licencia, self.created_at) else {
            return Ok(None);
        };
        let status = self.status.unwrap_or_default();
        Ok(Some(Doctor {
            user_id: self.user_id,
            institution_id: self.institution_id.unwrap_or_default(),
            licencia,
            especialidad: self.especialidad.unwrap_or_default(),
            status: DoctorStatus::parse(&status).ok_or_else(|| unknown("doctor status"))?,
            created_at,
            deleted_at: self.deleted_at,
        }))
    }
}

#[derive(Debug, Clone, DeserializeRow)]
pub(super) struct PatientRow {
    id: String,
    institution_id: Option<String>,
    doctor_id: Option<String>,
    subject: Option<String>,
    contact: Option<Vec<u8>>,
    idioma: Option<String>,
    state: Option<String>,
    confirm_digest: Option<String>,
    revoke_digest: Option<String>,
    created_by: Option<String>,
    created_at: Option<i64>,
    updated_at: Option<i64>,
    deleted_at: Option<i64>,
}

impl PatientRow {
    /// The patient, or `None` for a row that is not one.
    pub(super) fn into_patient(self) -> Result<Option<Patient>> {
        let (Some(subject), Some(created_at)) = (self.subject, self.created_at) else {
            return Ok(None);
        };
        let state = self.state.unwrap_or_default();
        Ok(Some(Patient {
            id: self.id,
            institution_id: self.institution_id.unwrap_or_default(),
            doctor_id: self.doctor_id.unwrap_or_default(),
            subject,
            contact: self.contact.unwrap_or_default(),
            idioma: self.idioma.unwrap_or_default(),
            state: ConsentState::parse(&state).ok_or_else(|| unknown("consent state"))?,
            confirm_digest: self.confirm_digest.unwrap_or_default(),
            revoke_digest: self.revoke_digest.unwrap_or_default(),
            created_by: self.created_by.unwrap_or_default(),
            created_at,
            updated_at: self.updated_at.unwrap_or(created_at),
            deleted_at: self.deleted_at,
        }))
    }
}
