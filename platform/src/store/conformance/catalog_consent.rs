//! The consent side of [`CatalogStore`]: the release gate (the domain's
//! [`offered`] rule, on the point read, the image listing and QIDO-RS) and the
//! dashboards, on an empty catalog.

use super::{anonymized, registered, rejected, used};
use crate::store::catalog::{CatalogEvent, CatalogStore, DicomQuery, ImageFilter};
use alpes_domain::consent::{offered, ConsentState, Subject, UnregisteredPolicy};
use alpes_schemas::{ConsentimientoCambiado, InstitucionActualizada};

fn consent(n: usize, institution: &str, subject: &str, state: ConsentState, deleted: bool, at: i64) -> CatalogEvent {
    CatalogEvent::Consent(ConsentimientoCambiado {
        evento_id: format!("c{n}-{at}"),
        ocurrido_at: at,
        actor: "u".into(),
        paciente_id: format!("pac-{n}"),
        institucion_id: institution.into(),
        medico_id: format!("m-{institution}"),
        sujeto: subject.into(),
        estado_anterior: None,
        estado: state.as_str().into(),
        paso: "registered".into(),
        eliminado: deleted,
        solicitud_http_id: None,
    })
}

fn policy(n: usize, institution: &str, p: UnregisteredPolicy) -> CatalogEvent {
    institution_event(n, institution, p, false)
}

fn institution_event(n: usize, institution: &str, p: UnregisteredPolicy, deleted: bool) -> CatalogEvent {
    CatalogEvent::Institution(InstitucionActualizada {
        evento_id: format!("i{n}"),
        ocurrido_at: 1,
        actor: "a".into(),
        institucion_id: institution.into(),
        tipo: "hospital".into(),
        politica: p.as_str().into(),
        verificacion: "pendiente".into(),
        eliminada: deleted,
        solicitud_http_id: None,
    })
}

/// One image per case, each in its own institution, set up as `subject` says.
fn case(n: usize, subject: Subject) -> Vec<CatalogEvent> {
    let (image, inst, pseudo) = (format!("img{n}"), format!("inst{n}"), format!("ALPES-{n}"));
    let mut reg = registered(&format!("r{n}"), &image, "prov", 1);
    let mut events = vec![];
    match subject {
        Subject::NoInstitution => {}
        Subject::InstitutionDeleted => {
            if let CatalogEvent::Registered(e) = &mut reg {
                e.institucion_id = Some(inst.clone());
            }
            // Liberar, and a patient in full_access: a deleted institution's image is still held.
            events.push(institution_event(n, &inst, UnregisteredPolicy::Liberar, true));
            events.push(consent(n, &inst, &pseudo, ConsentState::FullAccess, false, 3));
        }
        Subject::Unregistered(p) => {
            if let CatalogEvent::Registered(e) = &mut reg {
                e.institucion_id = Some(inst.clone());
            }
            if p == UnregisteredPolicy::Liberar || n.is_multiple_of(2) {
                events.push(policy(n, &inst, p));
            }
            // A registered patient of another subject changes nothing.
            events.push(consent(n, &inst, "ALPES-other", ConsentState::FullAccess, false, 2));
        }
        Subject::Registered { state, deleted } => {
            if let CatalogEvent::Registered(e) = &mut reg {
                e.institucion_id = Some(inst.clone());
            }
            events.push(policy(n, &inst, UnregisteredPolicy::Liberar));
            events.push(consent(n, &inst, &pseudo, state, deleted, 3));
        }
    }
    let instance = ("1.2", "1.2.3", format!("1.2.3.{n}"), "CT", pseudo, "20240101");
    let instance = (
        instance.0,
        instance.1,
        instance.2.as_str(),
        instance.3,
        instance.4.as_str(),
        instance.5,
    );
    let mut all = vec![reg, anonymized(&format!("a{n}"), &image, "prov", 2, instance)];
    all.extend(events);
    all
}

/// Every rule of the consent gate and the dashboards, on an empty catalog.
pub async fn all(store: &dyn CatalogStore) {
    the_gate_is_the_domains_rule_in_every_case(store).await;
    the_dashboards_count_what_the_catalog_materialized(store).await;
    an_anonymized_image_read_before_its_registration_is_held_by_its_institution(store).await;
    a_revocation_hides_the_images_at_once_and_an_older_event_does_not_undo_it(store).await;
}

/// First, on the empty catalog: it lists every image.
async fn the_gate_is_the_domains_rule_in_every_case(store: &dyn CatalogStore) {
    let mut cases = vec![
        Subject::NoInstitution,
        Subject::InstitutionDeleted,
        Subject::Unregistered(UnregisteredPolicy::Retener),
        Subject::Unregistered(UnregisteredPolicy::Retener),
        Subject::Unregistered(UnregisteredPolicy::Liberar),
    ];
    for state in ConsentState::ALL {
        cases.push(Subject::Registered { state, deleted: false });
        cases.push(Subject::Registered { state, deleted: true });
    }
    for (n, subject) in cases.iter().enumerate() {
        store.apply(case(n, *subject)).await.expect("apply");
    }
    let mut expected = vec![];
    for (n, subject) in cases.iter().enumerate() {
        let image = format!("img{n}");
        assert_eq!(store.offered(&image).await.expect("read"), offered(*subject), "{subject:?}");
        if offered(*subject) {
            expected.push(image);
        }
    }
    let f = ImageFilter {
        offered_only: true,
        ..ImageFilter::default()
    };
    let mut listed: Vec<String> = store
        .images(&f, None, 100)
        .await
        .expect("list")
        .images
        .into_iter()
        .map(|i| i.image_id)
        .collect();
    listed.sort();
    expected.sort();
    assert_eq!(listed, expected, "the listing applies the same gate");
    let q = DicomQuery {
        offered_only: true,
        limit: 100,
        ..DicomQuery::default()
    };
    assert_eq!(store.instances(&q).await.expect("qido").len(), expected.len(), "and QIDO-RS");
    let studies = store.studies(&q).await.expect("studies");
    assert_eq!(
        studies[0].instances,
        i64::try_from(expected.len()).expect("small"),
        "a study counts only what is offered"
    );
    assert!(!store.offered("no-such-image").await.expect("read"));
}

async fn the_dashboards_count_what_the_catalog_materialized(store: &dyn CatalogStore) {
    store
        .apply(case(
            100,
            Subject::Registered {
                state: ConsentState::FullAccess,
                deleted: false,
            },
        ))
        .await
        .expect("apply");
    // Another patient of the same institution awaits their doctor, a third the institution.
    store
        .apply(vec![consent(101, "inst100", "ALPES-x", ConsentState::Pending, false, 4)])
        .await
        .expect("apply");
    store
        .apply(vec![consent(102, "inst100", "ALPES-y", ConsentState::ValidatedByDoctor, false, 4)])
        .await
        .expect("apply");
    store
        .apply(vec![consent(103, "inst100", "ALPES-z", ConsentState::Pending, true, 4)])
        .await
        .expect("a deleted one");
    let mut reg = registered("r-rej100", "img-rej100", "prov", 5);
    if let CatalogEvent::Registered(e) = &mut reg {
        e.institucion_id = Some("inst100".into());
    }
    store
        .apply(vec![reg, rejected("x-rej100", "img-rej100", "prov", 6)])
        .await
        .expect("apply");
    store
        .apply(vec![used("u100", "img100", "cons", "prov", 7)])
        .await
        .expect("a download");
    let p = store.institution_panel("inst100").await.expect("panel");
    assert_eq!(p.imagenes_por_estado.get("anonimizada"), Some(&1));
    assert_eq!(p.imagenes_por_estado.get("rechazada"), Some(&1));
    assert_eq!((p.imagenes_ofrecidas, p.descargas), (1, 1));
    assert!(p.ingresos_minor.values().sum::<i64>() > 0, "{p:?}");
    assert_eq!(
        (p.pendientes_medico, p.pendientes_institucion),
        (1, 1),
        "the deleted patient is not counted"
    );
    assert_eq!(p.pacientes_por_estado.get("full_access"), Some(&1));
    assert_eq!(p.rechazos_por_motivo.values().sum::<i64>(), 1);
    let other = store.institution_panel("inst-none").await.expect("panel");
    assert_eq!(other, alpes_domain::panel::InstitutionPanel::default());
    let d = store.doctor_panel("m-inst100").await.expect("panel");
    assert_eq!((d.pendientes_validacion, d.pacientes_por_estado.values().sum::<i64>()), (1, 3));
}

async fn an_anonymized_image_read_before_its_registration_is_held_by_its_institution(store: &dyn CatalogStore) {
    let instance = ("1.2", "1.2.3", "1.2.3.300", "CT", "ALPES-300", "20240101");
    let mut anonymized = anonymized("a300", "img300", "prov", 2, instance);
    if let CatalogEvent::Anonymized(e) = &mut anonymized {
        e.institucion_id = Some("inst300".into());
    }
    store.apply(vec![anonymized]).await.expect("apply");
    assert!(
        !store.offered("img300").await.expect("read"),
        "its institution holds it back from the first event"
    );
}

async fn a_revocation_hides_the_images_at_once_and_an_older_event_does_not_undo_it(store: &dyn CatalogStore) {
    store
        .apply(case(
            200,
            Subject::Registered {
                state: ConsentState::FullAccess,
                deleted: false,
            },
        ))
        .await
        .expect("apply");
    assert!(store.offered("img200").await.expect("read"));
    store
        .apply(vec![consent(200, "inst200", "ALPES-200", ConsentState::Revocado, false, 10)])
        .await
        .expect("revoke");
    assert!(!store.offered("img200").await.expect("read"));
    store
        .apply(vec![consent(200, "inst200", "ALPES-200", ConsentState::FullAccess, false, 5)])
        .await
        .expect("late");
    assert!(!store.offered("img200").await.expect("read"), "a late, older event changes nothing");
}
