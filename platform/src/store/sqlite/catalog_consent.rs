//! The embedded catalog's side of consent: which institution an image is of, each institution's
//! patients' consent (by the pseudonymous PatientID their images carry) and its policy for
//! patients it has not registered, and [`OFFERED`], the SQL form of
//! [`alpes_domain::consent::offered`] every consumer's read adds to its conditions.
//!
//! The newest event of a patient or an institution stands; a revocation hides the images at
//! once, as the gate is evaluated on each read rather than copied into the image rows.

use crate::Result;
use alpes_domain::panel::{DoctorPanel, InstitutionPanel};
use alpes_schemas::{ConsentimientoCambiado, InstitucionActualizada};
use rusqlite::{params, Connection};
use std::collections::BTreeMap;

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS catalog_image_institution (
    image_id       TEXT PRIMARY KEY,
    institution_id TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS catalog_consent (
    institution_id TEXT NOT NULL,
    subject        TEXT NOT NULL,
    patient_id     TEXT NOT NULL,
    doctor_id      TEXT NOT NULL,
    estado         TEXT NOT NULL,
    deleted        INTEGER NOT NULL,
    at             INTEGER NOT NULL,
    PRIMARY KEY (institution_id, subject)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS catalog_consent_doctor ON catalog_consent(doctor_id);
CREATE TABLE IF NOT EXISTS catalog_institutions (
    institution_id TEXT PRIMARY KEY,
    politica       TEXT NOT NULL,
    deleted        INTEGER NOT NULL,
    at             INTEGER NOT NULL
) WITHOUT ROWID;
";

/// Whether a consumer is offered the `catalog_images` row in scope: its provider has no
/// institution; or its institution is not deleted and either its patient is registered, in
/// `full_access` and not deleted, or its patient is not registered and the institution's policy
/// is `liberar` (no policy row: `retener`).
pub(super) const OFFERED: &str = "(
    NOT EXISTS (SELECT 1 FROM catalog_image_institution o WHERE o.image_id = catalog_images.image_id)
    OR NOT EXISTS (SELECT 1 FROM catalog_image_institution o
                   JOIN catalog_institutions p ON p.institution_id = o.institution_id
                   WHERE o.image_id = catalog_images.image_id AND p.deleted = 1)
    AND (EXISTS (SELECT 1 FROM catalog_image_institution o
               JOIN catalog_consent c ON c.institution_id = o.institution_id AND c.subject = catalog_images.patient_id
               WHERE o.image_id = catalog_images.image_id AND c.estado = 'full_access' AND c.deleted = 0)
    OR EXISTS (SELECT 1 FROM catalog_image_institution o
               JOIN catalog_institutions p ON p.institution_id = o.institution_id
               WHERE o.image_id = catalog_images.image_id AND p.politica = 'liberar'
                 AND NOT EXISTS (SELECT 1 FROM catalog_consent c
                                 WHERE c.institution_id = o.institution_id AND c.subject = catalog_images.patient_id))))";

/// Remembers the institution of an image, from whichever of its `ImagenRegistrada` and
/// `ImagenAnonimizada` comes first (both carry it): an anonymized image is never offered before
/// its institution is known.
pub(super) fn of_institution(tx: &Connection, image_id: &str, institution: Option<&str>) -> Result<()> {
    if let Some(institution) = institution {
        tx.prepare_cached("INSERT OR IGNORE INTO catalog_image_institution (image_id, institution_id) VALUES (?1, ?2)")?
            .execute(params![image_id, institution])?;
    }
    Ok(())
}

/// A patient's consent, unless a newer one is there.
pub(super) fn consent(tx: &Connection, e: &ConsentimientoCambiado) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO catalog_consent (institution_id, subject, patient_id, doctor_id, estado, deleted, at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (institution_id, subject) DO UPDATE SET
             patient_id = excluded.patient_id, doctor_id = excluded.doctor_id, estado = excluded.estado,
             deleted = excluded.deleted, at = excluded.at
         WHERE at <= excluded.at",
    )?
    .execute(params![
        e.institucion_id,
        e.sujeto,
        e.paciente_id,
        e.medico_id,
        e.estado,
        e.eliminado,
        e.ocurrido_at
    ])?;
    Ok(())
}

/// An institution's policy, unless a newer one is there.
pub(super) fn institution(tx: &Connection, e: &InstitucionActualizada) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO catalog_institutions (institution_id, politica, deleted, at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (institution_id) DO UPDATE SET politica = excluded.politica, deleted = excluded.deleted, at = excluded.at
         WHERE at <= excluded.at",
    )?
    .execute(params![e.institucion_id, e.politica, e.eliminada, e.ocurrido_at])?;
    Ok(())
}

/// `(key, count)` rows of `sql` (one `?1` parameter) as a map.
fn counts(conn: &Connection, sql: &str, id: &str) -> Result<BTreeMap<String, i64>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map(params![id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<BTreeMap<_, _>>>()?)
}

/// An institution's dashboard, counted from the catalog's tables.
pub(super) fn institution_panel(conn: &Connection, institution: &str) -> Result<InstitutionPanel> {
    let of_institution = "FROM catalog_images i JOIN catalog_image_institution o ON o.image_id = i.image_id WHERE o.institution_id = ?1";
    let patients = counts(
        conn,
        "SELECT estado, COUNT(*) FROM catalog_consent WHERE institution_id = ?1 AND deleted = 0 GROUP BY estado",
        institution,
    )?;
    let offered_sql = format!(
        "SELECT COUNT(*) FROM catalog_images JOIN catalog_image_institution oi ON oi.image_id = catalog_images.image_id
         WHERE oi.institution_id = ?1 AND catalog_images.estado = 'anonimizada' AND {OFFERED}"
    );
    let usage = counts(
        conn,
        "SELECT u.currency, SUM(u.amount_minor) FROM catalog_usage u
         JOIN catalog_image_institution o ON o.image_id = u.image_id WHERE o.institution_id = ?1 GROUP BY u.currency",
        institution,
    )?;
    Ok(InstitutionPanel {
        imagenes_por_estado: counts(conn, &format!("SELECT i.estado, COUNT(*) {of_institution} GROUP BY i.estado"), institution)?,
        imagenes_ofrecidas: conn.prepare_cached(&offered_sql)?.query_row(params![institution], |r| r.get(0))?,
        descargas: conn
            .prepare_cached("SELECT COUNT(*) FROM catalog_usage u JOIN catalog_image_institution o ON o.image_id = u.image_id WHERE o.institution_id = ?1")?
            .query_row(params![institution], |r| r.get(0))?,
        ingresos_minor: usage,
        pendientes_medico: patients.get("pending").copied().unwrap_or(0),
        pendientes_institucion: patients.get("validated_by_doctor").copied().unwrap_or(0),
        pacientes_por_estado: patients,
        rechazos_por_motivo: counts(
            conn,
            &format!("SELECT i.rejection_reason, COUNT(*) {of_institution} AND i.estado = 'rechazada' AND i.rejection_reason IS NOT NULL GROUP BY i.rejection_reason"),
            institution,
        )?,
    })
}

/// A doctor's dashboard, counted from the consent events the catalog materialized.
pub(super) fn doctor_panel(conn: &Connection, doctor: &str) -> Result<DoctorPanel> {
    let patients = counts(
        conn,
        "SELECT estado, COUNT(*) FROM catalog_consent WHERE doctor_id = ?1 AND deleted = 0 GROUP BY estado",
        doctor,
    )?;
    Ok(DoctorPanel {
        pendientes_validacion: patients.get("pending").copied().unwrap_or(0),
        pacientes_por_estado: patients,
    })
}

#[cfg(test)]
mod tests {
    use crate::store::catalog::{CatalogEvent, CatalogStore, DicomQuery, ImageFilter};
    use crate::store::conformance::{anonymized, registered};
    use crate::store::sqlite::SqliteCatalog;
    use alpes_domain::consent::{offered, ConsentState, Subject, UnregisteredPolicy};
    use alpes_schemas::{ConsentimientoCambiado, InstitucionActualizada};

    fn consent(n: usize, institution: &str, subject: &str, state: ConsentState, deleted: bool, at: i64) -> CatalogEvent {
        CatalogEvent::Consent(ConsentimientoCambiado {
            evento_id: format!("c{n}-{at}"),
            ocurrido_at: at,
            actor: "u".into(),
            paciente_id: format!("pac-{n}"),
            institucion_id: institution.into(),
            medico_id: "m".into(),
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

    #[tokio::test]
    async fn the_sql_gate_is_the_domains_rule_in_every_case() {
        let store = SqliteCatalog::in_memory().expect("open");
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

    #[tokio::test]
    async fn the_dashboards_count_what_the_catalog_materialized() {
        use crate::store::conformance::{rejected, used};
        let store = SqliteCatalog::in_memory().expect("open");
        store
            .apply(case(
                0,
                Subject::Registered {
                    state: ConsentState::FullAccess,
                    deleted: false,
                },
            ))
            .await
            .expect("apply");
        // Another patient of the same institution awaits their doctor, a third the institution.
        store
            .apply(vec![consent(1, "inst0", "ALPES-x", ConsentState::Pending, false, 4)])
            .await
            .expect("apply");
        store
            .apply(vec![consent(2, "inst0", "ALPES-y", ConsentState::ValidatedByDoctor, false, 4)])
            .await
            .expect("apply");
        store
            .apply(vec![consent(3, "inst0", "ALPES-z", ConsentState::Pending, true, 4)])
            .await
            .expect("a deleted one");
        let mut reg = registered("r-rej", "img-rej", "prov", 5);
        if let CatalogEvent::Registered(e) = &mut reg {
            e.institucion_id = Some("inst0".into());
        }
        store
            .apply(vec![reg, rejected("x-rej", "img-rej", "prov", 6)])
            .await
            .expect("apply");
        store.apply(vec![used("u1", "img0", "cons", "prov", 7)]).await.expect("a download");
        let p = store.institution_panel("inst0").await.expect("panel");
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
        let d = store.doctor_panel("m").await.expect("panel");
        assert_eq!((d.pendientes_validacion, d.pacientes_por_estado.values().sum::<i64>()), (1, 3));
    }

    #[tokio::test]
    async fn an_anonymized_image_read_before_its_registration_is_held_by_its_institution() {
        let store = SqliteCatalog::in_memory().expect("open");
        let instance = ("1.2", "1.2.3", "1.2.3.9", "CT", "ALPES-9", "20240101");
        let mut anonymized = anonymized("a9", "img9", "prov", 2, instance);
        if let CatalogEvent::Anonymized(e) = &mut anonymized {
            e.institucion_id = Some("inst9".into());
        }
        store.apply(vec![anonymized]).await.expect("apply");
        assert!(
            !store.offered("img9").await.expect("read"),
            "its institution holds it back from the first event"
        );
    }

    #[tokio::test]
    async fn a_revocation_hides_the_images_at_once_and_an_older_event_does_not_undo_it() {
        let store = SqliteCatalog::in_memory().expect("open");
        store
            .apply(case(
                0,
                Subject::Registered {
                    state: ConsentState::FullAccess,
                    deleted: false,
                },
            ))
            .await
            .expect("apply");
        assert!(store.offered("img0").await.expect("read"));
        store
            .apply(vec![consent(0, "inst0", "ALPES-0", ConsentState::Revocado, false, 10)])
            .await
            .expect("revoke");
        assert!(!store.offered("img0").await.expect("read"));
        store
            .apply(vec![consent(0, "inst0", "ALPES-0", ConsentState::FullAccess, false, 5)])
            .await
            .expect("late");
        assert!(!store.offered("img0").await.expect("read"), "a late, older event changes nothing");
    }
}
