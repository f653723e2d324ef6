//! A patient's consent, and whether their anonymized images may leave.
//!
//! The steps run in one order: `pending` (registered) → `validated_by_doctor` →
//! `validated_by_institution` → `full_access` (the patient confirmed with their code). Either
//! side may revoke at any time (`revocado`), which is final. [`next`] is the one rule for
//! every move; [`offered`] the one rule for what a consumer may see.

use serde::Serialize;

/// Where a patient's consent stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ConsentState {
    /// Registered; nobody validated yet.
    Pending,
    /// The patient's doctor validated.
    ValidatedByDoctor,
    /// A provider of the institution validated after the doctor.
    ValidatedByInstitution,
    /// The patient confirmed with their code: their images are offered.
    FullAccess,
    /// Revoked by the patient or the institution: final.
    #[serde(rename = "revocado")]
    Revocado,
}

impl ConsentState {
    /// Every state, in workflow order.
    pub const ALL: [ConsentState; 5] = [
        ConsentState::Pending,
        ConsentState::ValidatedByDoctor,
        ConsentState::ValidatedByInstitution,
        ConsentState::FullAccess,
        ConsentState::Revocado,
    ];

    /// The wire and stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ConsentState::Pending => "pending",
            ConsentState::ValidatedByDoctor => "validated_by_doctor",
            ConsentState::ValidatedByInstitution => "validated_by_institution",
            ConsentState::FullAccess => "full_access",
            ConsentState::Revocado => "revocado",
        }
    }

    /// Parses a wire or stored name.
    pub fn parse(s: &str) -> Option<ConsentState> {
        ConsentState::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// Who does what to a patient's consent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The patient's doctor validates.
    DoctorValidates,
    /// A provider (or admin) of the institution validates.
    InstitutionValidates,
    /// The patient confirms with their confirmation code.
    PatientConfirms,
    /// The institution revokes.
    InstitutionRevokes,
    /// The patient revokes with their revocation code.
    PatientRevokes,
}

impl Step {
    /// The step's name in the audit trail and in events' `motivo`.
    pub fn as_str(self) -> &'static str {
        match self {
            Step::DoctorValidates => "doctor_validates",
            Step::InstitutionValidates => "institution_validates",
            Step::PatientConfirms => "patient_confirms",
            Step::InstitutionRevokes => "institution_revokes",
            Step::PatientRevokes => "patient_revokes",
        }
    }
}

/// A step that does not apply in the state the patient is in (HTTP 409).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a patient in state {} cannot take the step {}", .from.as_str(), .step.as_str())]
pub struct InvalidTransition {
    /// The state the patient was in.
    pub from: ConsentState,
    /// The step asked for.
    pub step: Step,
}

/// The state `step` moves a patient in `from` to.
pub fn next(from: ConsentState, step: Step) -> Result<ConsentState, InvalidTransition> {
    use ConsentState::*;
    let to = match (step, from) {
        (Step::DoctorValidates, Pending) => ValidatedByDoctor,
        (Step::InstitutionValidates, ValidatedByDoctor) => ValidatedByInstitution,
        (Step::PatientConfirms, ValidatedByInstitution) => FullAccess,
        (Step::InstitutionRevokes | Step::PatientRevokes, s) if s != Revocado => Revocado,
        _ => return Err(InvalidTransition { from, step }),
    };
    Ok(to)
}

/// What happens to the images of a patient an institution has not registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum UnregisteredPolicy {
    /// Held back: never offered to consumers (the default).
    #[default]
    Retener,
    /// Offered like any anonymized image.
    Liberar,
}

impl UnregisteredPolicy {
    /// The wire and stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            UnregisteredPolicy::Retener => "retener",
            UnregisteredPolicy::Liberar => "liberar",
        }
    }

    /// Parses a wire or stored name.
    pub fn parse(s: &str) -> Option<UnregisteredPolicy> {
        match s {
            "retener" => Some(UnregisteredPolicy::Retener),
            "liberar" => Some(UnregisteredPolicy::Liberar),
            _ => None,
        }
    }
}

/// What the query side knows of one anonymized image's patient, for [`offered`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// Its provider belongs to no institution: no consent regime applies.
    NoInstitution,
    /// Its institution was deleted: nothing of it is offered any more.
    InstitutionDeleted,
    /// Its institution (with that policy for unregistered patients) has no patient with the
    /// image's pseudonymous PatientID (or the image has none).
    Unregistered(UnregisteredPolicy),
    /// Its patient is registered and in this state; `deleted` if the patient was removed.
    Registered {
        /// The patient's consent.
        state: ConsentState,
        /// The patient was (soft) deleted.
        deleted: bool,
    },
}

/// Whether a consumer may see (list, search, retrieve, download) an anonymized image.
///
/// - A provider with no institution: yes, as before institutions existed.
/// - A deleted institution: no.
/// - A registered patient: only in `full_access`, and never once deleted.
/// - An unregistered patient: as the institution's policy says (`retener` by default).
pub fn offered(subject: Subject) -> bool {
    match subject {
        Subject::NoInstitution => true,
        Subject::InstitutionDeleted => false,
        Subject::Unregistered(policy) => policy == UnregisteredPolicy::Liberar,
        Subject::Registered { state, deleted } => state == ConsentState::FullAccess && !deleted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ConsentState::*;

    #[test]
    fn the_workflow_runs_in_its_one_order() {
        let mut s = Pending;
        for step in [Step::DoctorValidates, Step::InstitutionValidates, Step::PatientConfirms] {
            s = next(s, step).expect("in order");
        }
        assert_eq!(s, FullAccess);
    }

    #[test]
    fn a_step_out_of_order_is_refused() {
        assert!(next(Pending, Step::InstitutionValidates).is_err());
        assert!(next(Pending, Step::PatientConfirms).is_err());
        assert!(next(ValidatedByDoctor, Step::DoctorValidates).is_err());
        assert!(next(ValidatedByDoctor, Step::PatientConfirms).is_err());
        assert!(next(FullAccess, Step::PatientConfirms).is_err(), "a confirmation code works once");
        let e = next(Pending, Step::PatientConfirms).expect_err("refused");
        assert_eq!(e.to_string(), "a patient in state pending cannot take the step patient_confirms");
    }

    #[test]
    fn either_side_revokes_from_any_state_but_once() {
        for s in [Pending, ValidatedByDoctor, ValidatedByInstitution, FullAccess] {
            assert_eq!(next(s, Step::PatientRevokes), Ok(Revocado));
            assert_eq!(next(s, Step::InstitutionRevokes), Ok(Revocado));
        }
        for step in [
            Step::PatientRevokes,
            Step::InstitutionRevokes,
            Step::DoctorValidates,
            Step::PatientConfirms,
        ] {
            assert!(next(Revocado, step).is_err(), "revocado is final");
        }
    }

    #[test]
    fn states_and_policies_read_back_from_their_names() {
        for s in ConsentState::ALL {
            assert_eq!(ConsentState::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).expect("json"), s.as_str());
        }
        assert_eq!(ConsentState::parse("granted"), None);
        for p in [UnregisteredPolicy::Retener, UnregisteredPolicy::Liberar] {
            assert_eq!(UnregisteredPolicy::parse(p.as_str()), Some(p));
        }
    }

    #[test]
    fn only_full_access_releases_a_registered_patients_images() {
        for s in ConsentState::ALL {
            let subject = Subject::Registered { state: s, deleted: false };
            assert_eq!(offered(subject), s == FullAccess, "{s:?}");
        }
        assert!(!offered(Subject::Registered {
            state: FullAccess,
            deleted: true
        }));
        assert!(
            !offered(Subject::Unregistered(UnregisteredPolicy::default())),
            "held back by default"
        );
        assert!(offered(Subject::Unregistered(UnregisteredPolicy::Liberar)));
        assert!(offered(Subject::NoInstitution));
        assert!(!offered(Subject::InstitutionDeleted));
    }
}
