//! Institutions, their doctors and their patients, and the port that keeps them.
//!
//! A patient is kept without their MRN: only the pseudonymous PatientID the engine gives their
//! images (`subject`), so images and patients link without the MRN in clear. Their contact data
//! (name, email, phone) is held sealed by the adapter's key; this crate never sees it in clear.
//! Their codes are kept as SHA-256 digests only. Nothing is ever removed: a delete sets
//! `deleted_at`.

use crate::consent::{ConsentState, UnregisteredPolicy};
use crate::Result;
use async_trait::async_trait;

/// Kinds of institution.
pub const INSTITUTION_TYPES: [&str; 7] = [
    "hospital",
    "clinica",
    "laboratorio",
    "aseguradora",
    "centro_investigacion",
    "centro_imagen",
    "otro",
];

/// Doctor statuses: only an `active` doctor may do anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum DoctorStatus {
    /// May work.
    Active,
    /// Suspended: every call is refused (403).
    Suspended,
    /// Retired: every call is refused (403).
    Retired,
}

impl DoctorStatus {
    /// The wire and stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            DoctorStatus::Active => "active",
            DoctorStatus::Suspended => "suspended",
            DoctorStatus::Retired => "retired",
        }
    }

    /// Parses a wire or stored name.
    pub fn parse(s: &str) -> Option<DoctorStatus> {
        [DoctorStatus::Active, DoctorStatus::Suspended, DoctorStatus::Retired]
            .into_iter()
            .find(|d| d.as_str() == s)
    }
}

/// Whether an admin checked an institution's licence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Verification {
    /// Not checked yet.
    Pendiente,
    /// Checked.
    Verificada,
    /// Checked and refused.
    Rechazada,
}

impl Verification {
    /// The wire and stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Verification::Pendiente => "pendiente",
            Verification::Verificada => "verificada",
            Verification::Rechazada => "rechazada",
        }
    }

    /// Parses a wire or stored name.
    pub fn parse(s: &str) -> Option<Verification> {
        [Verification::Pendiente, Verification::Verificada, Verification::Rechazada]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

/// An institution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Institution {
    /// Its id (a UUID).
    pub id: String,
    /// Its name.
    pub nombre: String,
    /// One of [`INSTITUTION_TYPES`].
    pub tipo: String,
    /// Its licence number: unique among live institutions.
    pub licencia: String,
    /// Its contact email (where revocations are notified): unique among live institutions,
    /// trimmed and lower-case.
    pub email: String,
    /// Its region, if given.
    pub region: Option<String>,
    /// Whether its licence was checked.
    pub verificacion: Verification,
    /// What happens to images of patients it has not registered.
    pub politica: UnregisteredPolicy,
    /// When it was created, ms.
    pub created_at: i64,
    /// When it was deleted, ms.
    pub deleted_at: Option<i64>,
}

/// A doctor: an account with the role `medico`, and what this adds to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Doctor {
    /// The account's user id.
    pub user_id: String,
    /// The institution they work for.
    pub institution_id: String,
    /// Their licence number: unique among live doctors.
    pub licencia: String,
    /// Their specialty.
    pub especialidad: String,
    /// Their status.
    pub status: DoctorStatus,
    /// When they were created, ms.
    pub created_at: i64,
    /// When they were deleted, ms.
    pub deleted_at: Option<i64>,
}

/// A patient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Patient {
    /// Their id (a UUID).
    pub id: String,
    /// The institution that registered them.
    pub institution_id: String,
    /// Their doctor, who validates first.
    pub doctor_id: String,
    /// The pseudonymous PatientID their images get (the keyed hash of their MRN).
    pub subject: String,
    /// Their name, email and phone, sealed by the adapter's key (never in clear here).
    pub contact: Vec<u8>,
    /// The language of their messages: `es` or `en`.
    pub idioma: String,
    /// Their consent.
    pub state: ConsentState,
    /// SHA-256 (hex) of their confirmation code.
    pub confirm_digest: String,
    /// SHA-256 (hex) of their revocation code.
    pub revoke_digest: String,
    /// Who registered them (a provider or doctor of the institution, or an admin).
    pub created_by: String,
    /// When they were registered, ms.
    pub created_at: i64,
    /// When their consent last moved, ms.
    pub updated_at: i64,
    /// When they were deleted, ms.
    pub deleted_at: Option<i64>,
}

/// Which of a patient's codes a digest is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeKind {
    /// Confirms consent (`POST /pacientes/consentimiento`).
    Confirm,
    /// Revokes it (`POST /pacientes/revocacion`).
    Revoke,
}

/// What a create found already taken (HTTP 409).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    /// The licence number.
    Licencia,
    /// The email.
    Email,
    /// A live patient of the institution with the same PatientID.
    Paciente,
}

/// Which patients to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PatientFilter {
    /// Only this institution's.
    pub institution_id: Option<String>,
    /// Only this doctor's.
    pub doctor_id: Option<String>,
    /// Only in this state.
    pub state: Option<ConsentState>,
}

/// Which institutions an account acts for in the registry's routes and the dashboards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every one (an admin).
    All,
    /// Its own (a provider's, or an active doctor's).
    Institution(String),
}

/// What an account may not touch: another institution's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("this belongs to another institution")]
pub struct OtherInstitution;

impl Scope {
    /// Whether `institution` is within the scope.
    pub fn require(&self, institution: &str) -> std::result::Result<(), OtherInstitution> {
        match self {
            Scope::All => Ok(()),
            Scope::Institution(own) if own == institution => Ok(()),
            Scope::Institution(_) => Err(OtherInstitution),
        }
    }

    /// The one institution, unless every one.
    pub fn institution(&self) -> Option<&str> {
        match self {
            Scope::All => None,
            Scope::Institution(i) => Some(i),
        }
    }
}

/// Why an account acts for no institution (HTTP 403).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unscoped {
    /// A provider that is no institution's member.
    #[error("this provider belongs to no institution")]
    NoInstitution,
    /// A doctor account with no live doctor, or one not active.
    #[error("{0}")]
    InactiveDoctor(String),
    /// A consumer.
    #[error("this route needs the role proveedor, medico or admin")]
    Role,
}

/// The scope of an account of `role`: an admin every institution; a provider its membership
/// (`member_of`); a doctor the institution of its doctor row, while that is live and active.
pub fn scope(role: crate::caller::Role, member_of: Option<String>, doctor: Option<&Doctor>) -> std::result::Result<Scope, Unscoped> {
    use crate::caller::Role;
    match role {
        Role::Admin => Ok(Scope::All),
        Role::Proveedor => member_of.map(Scope::Institution).ok_or(Unscoped::NoInstitution),
        Role::Medico => match doctor {
            Some(d) if d.deleted_at.is_none() && d.status == DoctorStatus::Active => Ok(Scope::Institution(d.institution_id.clone())),
            Some(d) if d.deleted_at.is_none() => Err(Unscoped::InactiveDoctor(format!("a {} doctor can do nothing", d.status.as_str()))),
            _ => Err(Unscoped::InactiveDoctor("this account is no doctor of any institution".into())),
        },
        Role::Consumidor => Err(Unscoped::Role),
    }
}

/// The registry store.
#[async_trait]
pub trait RegistryStore: Send + Sync + std::fmt::Debug {
    /// Stores a new institution, unless its licence or email is taken.
    async fn create_institution(&self, i: &Institution) -> Result<Result<(), Taken>>;
    /// One institution, deleted or not.
    async fn institution(&self, id: &str) -> Result<Option<Institution>>;
    /// Live institutions, oldest first, after `(created_at, id)`.
    async fn institutions(&self, after: Option<(i64, String)>, limit: usize) -> Result<Vec<Institution>>;
    /// Deletes an institution; false if there is none live.
    async fn delete_institution(&self, id: &str, at: i64) -> Result<bool>;
    /// Writes what may change of an institution: its verification, its policy, its deletion.
    async fn update_institution(&self, i: &Institution) -> Result<()>;
    /// Makes a provider account a member of an institution.
    async fn set_member(&self, user_id: &str, institution_id: &str) -> Result<()>;
    /// The institution of a provider account.
    async fn member_of(&self, user_id: &str) -> Result<Option<String>>;
    /// Stores a new doctor, unless their licence is taken.
    async fn create_doctor(&self, d: &Doctor) -> Result<Result<(), Taken>>;
    /// One doctor, deleted or not.
    async fn doctor(&self, user_id: &str) -> Result<Option<Doctor>>;
    /// Live doctors (of one institution), oldest first, after `(created_at, id)`.
    async fn doctors(&self, institution_id: Option<&str>, after: Option<(i64, String)>, limit: usize) -> Result<Vec<Doctor>>;
    /// Sets a live doctor's status; false if there is none.
    async fn set_doctor_status(&self, user_id: &str, status: DoctorStatus) -> Result<bool>;
    /// Deletes a doctor; false if there is none live.
    async fn delete_doctor(&self, user_id: &str, at: i64) -> Result<bool>;
    /// Stores a new patient, unless the institution has a live one with the same subject.
    async fn create_patient(&self, p: &Patient) -> Result<Result<(), Taken>>;
    /// One patient, deleted or not.
    async fn patient(&self, id: &str) -> Result<Option<Patient>>;
    /// Live patients matching `filter`, oldest first, after `(created_at, id)`.
    async fn patients(&self, filter: &PatientFilter, after: Option<(i64, String)>, limit: usize) -> Result<Vec<Patient>>;
    /// The live patient one of whose code digests is `digest`, and which code it is.
    async fn patient_by_code(&self, digest: &str) -> Result<Option<(Patient, CodeKind)>>;
    /// Moves a live patient's consent from `from` to `to`, only if it is still in `from`
    /// (compare-and-set); false otherwise.
    async fn move_patient(&self, id: &str, from: ConsentState, to: ConsentState, at: i64) -> Result<bool>;
    /// Deletes a patient; false if there is none live.
    async fn delete_patient(&self, id: &str, at: i64) -> Result<bool>;
    /// Undoes a deletion the broker did not take (unless the institution registered the same
    /// patient again meanwhile); false if it could not.
    async fn undelete_patient(&self, id: &str) -> Result<bool>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_acts_for_its_institution_only_while_it_may() {
        use crate::caller::Role;
        let doctor = |status: DoctorStatus, deleted_at: Option<i64>| Doctor {
            user_id: "d".into(),
            institution_id: "i1".into(),
            licencia: "L".into(),
            especialidad: "x".into(),
            status,
            created_at: 1,
            deleted_at,
        };
        assert_eq!(scope(Role::Admin, None, None), Ok(Scope::All));
        assert_eq!(scope(Role::Proveedor, Some("i1".into()), None), Ok(Scope::Institution("i1".into())));
        assert_eq!(scope(Role::Proveedor, None, None), Err(Unscoped::NoInstitution));
        let active = doctor(DoctorStatus::Active, None);
        assert_eq!(scope(Role::Medico, None, Some(&active)), Ok(Scope::Institution("i1".into())));
        assert!(matches!(
            scope(Role::Medico, None, Some(&doctor(DoctorStatus::Suspended, None))),
            Err(Unscoped::InactiveDoctor(_))
        ));
        assert!(matches!(
            scope(Role::Medico, None, Some(&doctor(DoctorStatus::Active, Some(2)))),
            Err(Unscoped::InactiveDoctor(_))
        ));
        assert!(matches!(scope(Role::Medico, None, None), Err(Unscoped::InactiveDoctor(_))));
        assert_eq!(scope(Role::Consumidor, Some("i1".into()), None), Err(Unscoped::Role));
        let own = Scope::Institution("i1".into());
        assert_eq!((own.require("i1"), own.require("i2")), (Ok(()), Err(OtherInstitution)));
        assert_eq!(
            (Scope::All.require("i2"), Scope::All.institution(), own.institution()),
            (Ok(()), None, Some("i1"))
        );
    }

    #[test]
    fn statuses_read_back_from_their_names() {
        for s in [DoctorStatus::Active, DoctorStatus::Suspended, DoctorStatus::Retired] {
            assert_eq!(DoctorStatus::parse(s.as_str()), Some(s));
        }
        for v in [Verification::Pendiente, Verification::Verificada, Verification::Rechazada] {
            assert_eq!(Verification::parse(v.as_str()), Some(v));
        }
        assert_eq!(DoctorStatus::parse("on_leave"), None);
    }
}
