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
    #[tokio::test]
    async fn the_sqlite_catalog_passes_the_consent_conformance_suite() {
        let store = crate::store::sqlite::SqliteCatalog::in_memory().expect("open");
        crate::store::conformance::catalog_consent::all(&store).await;
    }
}
