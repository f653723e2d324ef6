//! The rules of [`RegistryStore`], on an empty store.

use alpes_domain::consent::{ConsentState, UnregisteredPolicy};
use alpes_domain::registry::{CodeKind, Doctor, DoctorStatus, Institution, Patient, PatientFilter, RegistryStore, Taken, Verification};

/// An institution `id`, created at `at`.
pub fn institution(id: &str, licencia: &str, email: &str, at: i64) -> Institution {
    Institution {
        id: id.into(),
        nombre: format!("Hospital {id}"),
        tipo: "hospital".into(),
        licencia: licencia.into(),
        email: email.into(),
        region: Some("Cundinamarca".into()),
        verificacion: Verification::Pendiente,
        politica: UnregisteredPolicy::Retener,
        created_at: at,
        deleted_at: None,
    }
}

fn doctor(user: &str, institution: &str, licencia: &str, at: i64) -> Doctor {
    Doctor {
        user_id: user.into(),
        institution_id: institution.into(),
        licencia: licencia.into(),
        especialidad: "radiologia".into(),
        status: DoctorStatus::Active,
        created_at: at,
        deleted_at: None,
    }
}

/// A pending patient `id` of `institution`, registered at `at`.
pub fn patient(id: &str, institution: &str, subject: &str, at: i64) -> Patient {
    Patient {
        id: id.into(),
        institution_id: institution.into(),
        doctor_id: "doc-1".into(),
        subject: subject.into(),
        contact: vec![1, 2, 3, 0, 255],
        idioma: "es".into(),
        state: ConsentState::Pending,
        confirm_digest: format!("c-{id}"),
        revoke_digest: format!("r-{id}"),
        created_by: "prov-1".into(),
        created_at: at,
        updated_at: at,
        deleted_at: None,
    }
}

/// Every rule of the port.
pub async fn all(store: &dyn RegistryStore) {
    institutions(store).await;
    doctors(store).await;
    patients(store).await;
}

async fn institutions(store: &dyn RegistryStore) {
    let a = institution("i1", "LIC-1", "a@h.org", 10);
    assert_eq!(store.create_institution(&a).await.expect("create"), Ok(()));
    assert_eq!(
        store.institution("i1").await.expect("read"),
        Some(a.clone()),
        "read back as written"
    );
    let same_licence = institution("i2", "LIC-1", "b@h.org", 11);
    assert_eq!(store.create_institution(&same_licence).await.expect("create"), Err(Taken::Licencia));
    let same_email = institution("i2", "LIC-2", "a@h.org", 11);
    assert_eq!(store.create_institution(&same_email).await.expect("create"), Err(Taken::Email));
    assert_eq!(
        store
            .create_institution(&institution("i2", "LIC-2", "b@h.org", 11))
            .await
            .expect("create"),
        Ok(())
    );
    assert_eq!(
        store
            .create_institution(&institution("i3", "LIC-3", "c@h.org", 11))
            .await
            .expect("create"),
        Ok(())
    );
    let ids = |v: Vec<Institution>| v.into_iter().map(|i| i.id).collect::<Vec<_>>();
    assert_eq!(ids(store.institutions(None, 10).await.expect("list")), ["i1", "i2", "i3"]);
    assert_eq!(ids(store.institutions(Some((11, "i2".into())), 10).await.expect("page")), ["i3"]);
    assert!(store.delete_institution("i3", 20).await.expect("delete"));
    assert!(!store.delete_institution("i3", 21).await.expect("again"), "once");
    assert_eq!(
        ids(store.institutions(None, 10).await.expect("list")),
        ["i1", "i2"],
        "a deleted one is not listed"
    );
    assert_eq!(
        store.institution("i3").await.expect("read").and_then(|i| i.deleted_at),
        Some(20),
        "but kept"
    );
    assert_eq!(
        store
            .create_institution(&institution("i4", "LIC-3", "c@h.org", 22))
            .await
            .expect("create"),
        Ok(()),
        "a deleted one's licence and email are free again"
    );
    assert!(store.delete_institution("i4", 23).await.expect("delete"));
    let mut changed = a.clone();
    changed.politica = UnregisteredPolicy::Liberar;
    changed.verificacion = Verification::Verificada;
    changed.nombre = "not changed by an update".into();
    store.update_institution(&changed).await.expect("update");
    let read = store.institution("i1").await.expect("read").expect("there");
    assert_eq!(
        (read.politica, read.verificacion, read.nombre),
        (UnregisteredPolicy::Liberar, Verification::Verificada, a.nombre)
    );
    assert_eq!(store.member_of("prov-1").await.expect("read"), None);
    store.set_member("prov-1", "i1").await.expect("member");
    assert_eq!(store.member_of("prov-1").await.expect("read").as_deref(), Some("i1"));
}

async fn doctors(store: &dyn RegistryStore) {
    let d = doctor("doc-1", "i1", "MED-1", 10);
    assert_eq!(store.create_doctor(&d).await.expect("create"), Ok(()));
    assert_eq!(store.doctor("doc-1").await.expect("read"), Some(d));
    assert_eq!(
        store.create_doctor(&doctor("doc-2", "i1", "MED-1", 11)).await.expect("create"),
        Err(Taken::Licencia)
    );
    assert_eq!(
        store.create_doctor(&doctor("doc-2", "i2", "MED-2", 11)).await.expect("create"),
        Ok(())
    );
    let of = |v: Vec<Doctor>| v.into_iter().map(|d| d.user_id).collect::<Vec<_>>();
    assert_eq!(of(store.doctors(Some("i1"), None, 10).await.expect("list")), ["doc-1"]);
    assert_eq!(of(store.doctors(None, None, 10).await.expect("list")), ["doc-1", "doc-2"]);
    assert!(store.set_doctor_status("doc-1", DoctorStatus::Suspended).await.expect("suspend"));
    assert_eq!(
        store.doctor("doc-1").await.expect("read").map(|d| d.status),
        Some(DoctorStatus::Suspended)
    );
    assert!(!store.set_doctor_status("nobody", DoctorStatus::Active).await.expect("none"));
    assert!(store.delete_doctor("doc-2", 30).await.expect("delete"));
    assert_eq!(of(store.doctors(None, None, 10).await.expect("list")), ["doc-1"]);
}

async fn patients(store: &dyn RegistryStore) {
    let p = patient("p1", "i1", "ALPES-A", 10);
    assert_eq!(store.create_patient(&p).await.expect("create"), Ok(()));
    assert_eq!(
        store.patient("p1").await.expect("read"),
        Some(p.clone()),
        "the sealed contact comes back byte for byte"
    );
    assert_eq!(
        store.create_patient(&patient("p2", "i1", "ALPES-A", 11)).await.expect("create"),
        Err(Taken::Paciente),
        "one live patient per PatientID and institution"
    );
    assert_eq!(
        store.create_patient(&patient("p3", "i2", "ALPES-A", 12)).await.expect("create"),
        Ok(()),
        "another institution's"
    );
    let found = store.patient_by_code("c-p1").await.expect("code").map(|(p, k)| (p.id, k));
    assert_eq!(found, Some(("p1".to_owned(), CodeKind::Confirm)));
    let found = store.patient_by_code("r-p1").await.expect("code").map(|(p, k)| (p.id, k));
    assert_eq!(found, Some(("p1".to_owned(), CodeKind::Revoke)));
    assert!(store.patient_by_code("nope").await.expect("code").is_none());
    use ConsentState::*;
    assert!(store.move_patient("p1", Pending, ValidatedByDoctor, 20).await.expect("move"));
    assert!(
        !store.move_patient("p1", Pending, ValidatedByDoctor, 21).await.expect("move"),
        "compare-and-set"
    );
    let moved = store.patient("p1").await.expect("read").expect("there");
    assert_eq!((moved.state, moved.updated_at), (ValidatedByDoctor, 20));
    let of = |v: Vec<Patient>| v.into_iter().map(|p| p.id).collect::<Vec<_>>();
    let by_institution = PatientFilter {
        institution_id: Some("i1".into()),
        ..PatientFilter::default()
    };
    assert_eq!(of(store.patients(&by_institution, None, 10).await.expect("list")), ["p1"]);
    let by_state = PatientFilter {
        state: Some(Pending),
        ..PatientFilter::default()
    };
    assert_eq!(of(store.patients(&by_state, None, 10).await.expect("list")), ["p3"]);
    let by_doctor = PatientFilter {
        doctor_id: Some("doc-1".into()),
        ..PatientFilter::default()
    };
    assert_eq!(
        of(store.patients(&by_doctor, Some((10, "p1".into())), 10).await.expect("page")),
        ["p3"]
    );
    assert!(store.delete_patient("p3", 39).await.expect("delete"));
    assert!(
        store.undelete_patient("p3").await.expect("undo"),
        "a deletion the broker did not take is undone"
    );
    assert_eq!(store.patient("p3").await.expect("read").and_then(|p| p.deleted_at), None);
    assert!(store.delete_patient("p1", 40).await.expect("delete"));
    assert!(
        !store
            .move_patient("p1", ValidatedByDoctor, ValidatedByInstitution, 41)
            .await
            .expect("move"),
        "not once deleted"
    );
    assert!(
        store.patient_by_code("c-p1").await.expect("code").is_none(),
        "a deleted patient's codes work no more"
    );
    assert_eq!(
        store.create_patient(&patient("p4", "i1", "ALPES-A", 50)).await.expect("create"),
        Ok(()),
        "registered again"
    );
    assert!(
        !store.undelete_patient("p1").await.expect("undo"),
        "not over the patient registered again"
    );
}
