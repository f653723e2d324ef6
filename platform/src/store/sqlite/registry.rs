//! Institutions, doctors, members and patients in the data dir's SQLite file.
//!
//! A create checks what must be unique and inserts in one step on the file's one writer, so two
//! creates cannot both take a licence. A patient's consent moves by one conditional `UPDATE`
//! (compare-and-set on the state it was read in). Contact data arrives sealed and is stored as
//! it came.

use super::conn::{rows, write_tx, SqliteConn, Where};
use crate::Result;
use alpes_domain::consent::{ConsentState, UnregisteredPolicy};
use alpes_domain::registry::{CodeKind, Doctor, DoctorStatus, Institution, Patient, PatientFilter, RegistryStore, Taken, Verification};
use async_trait::async_trait;
use rusqlite::types::Value;
use rusqlite::{params, Connection, OptionalExtension, Row};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS registry_institutions (
    id           TEXT PRIMARY KEY,
    nombre       TEXT NOT NULL,
    tipo         TEXT NOT NULL,
    licencia     TEXT NOT NULL,
    email        TEXT NOT NULL,
    region       TEXT,
    verificacion TEXT NOT NULL,
    politica     TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    deleted_at   INTEGER
);
CREATE UNIQUE INDEX IF NOT EXISTS registry_institutions_licencia ON registry_institutions(licencia) WHERE deleted_at IS NULL;
CREATE UNIQUE INDEX IF NOT EXISTS registry_institutions_email ON registry_institutions(email) WHERE deleted_at IS NULL;
CREATE INDEX IF NOT EXISTS registry_institutions_created ON registry_institutions(created_at, id);
CREATE TABLE IF NOT EXISTS registry_members (
    user_id        TEXT PRIMARY KEY,
    institution_id TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS registry_doctors (
    user_id        TEXT PRIMARY KEY,
    institution_id TEXT NOT NULL,
    licencia       TEXT NOT NULL,
    especialidad   TEXT NOT NULL,
    status         TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    deleted_at     INTEGER
);
CREATE UNIQUE INDEX IF NOT EXISTS registry_doctors_licencia ON registry_doctors(licencia) WHERE deleted_at IS NULL;
CREATE INDEX IF NOT EXISTS registry_doctors_institution ON registry_doctors(institution_id, created_at, user_id);
CREATE TABLE IF NOT EXISTS registry_patients (
    id             TEXT PRIMARY KEY,
    institution_id TEXT NOT NULL,
    doctor_id      TEXT NOT NULL,
    subject        TEXT NOT NULL,
    contact        BLOB NOT NULL,
    idioma         TEXT NOT NULL,
    state          TEXT NOT NULL,
    confirm_digest TEXT NOT NULL,
    revoke_digest  TEXT NOT NULL,
    created_by     TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    deleted_at     INTEGER
);
CREATE UNIQUE INDEX IF NOT EXISTS registry_patients_live_subject
    ON registry_patients(institution_id, subject) WHERE deleted_at IS NULL;
CREATE INDEX IF NOT EXISTS registry_patients_institution ON registry_patients(institution_id, created_at, id);
CREATE INDEX IF NOT EXISTS registry_patients_doctor ON registry_patients(doctor_id, created_at, id);
CREATE UNIQUE INDEX IF NOT EXISTS registry_patients_confirm ON registry_patients(confirm_digest);
CREATE UNIQUE INDEX IF NOT EXISTS registry_patients_revoke ON registry_patients(revoke_digest);
";

const INSTITUTION_COLUMNS: &str = "id, nombre, tipo, licencia, email, region, verificacion, politica, created_at, deleted_at";
const DOCTOR_COLUMNS: &str = "user_id, institution_id, licencia, especialidad, status, created_at, deleted_at";
const PATIENT_COLUMNS: &str = "id, institution_id, doctor_id, subject, contact, idioma, state, confirm_digest, revoke_digest,
    created_by, created_at, updated_at, deleted_at";

/// The SQLite registry store.
#[derive(Debug, Clone)]
pub struct SqliteRegistry {
    conn: SqliteConn,
}

impl SqliteRegistry {
    /// Opens (creating) its tables in the database at `path`.
    pub fn open(path: &std::path::Path, fsync: bool) -> Result<SqliteRegistry> {
        Ok(SqliteRegistry {
            conn: SqliteConn::open(path, fsync, SCHEMA)?,
        })
    }

    /// A private in-memory database (tests).
    pub fn in_memory() -> Result<SqliteRegistry> {
        Ok(SqliteRegistry {
            conn: SqliteConn::in_memory(SCHEMA)?,
        })
    }
}

/// A stored name that does not parse: the row was not written by this code.
fn bad(column: usize, what: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(column, rusqlite::types::Type::Text, format!("unknown {what}").into())
}

fn institution_of(r: &Row<'_>) -> rusqlite::Result<Institution> {
    let verificacion: String = r.get(6)?;
    let politica: String = r.get(7)?;
    Ok(Institution {
        id: r.get(0)?,
        nombre: r.get(1)?,
        tipo: r.get(2)?,
        licencia: r.get(3)?,
        email: r.get(4)?,
        region: r.get(5)?,
        verificacion: Verification::parse(&verificacion).ok_or_else(|| bad(6, "verification"))?,
        politica: UnregisteredPolicy::parse(&politica).ok_or_else(|| bad(7, "policy"))?,
        created_at: r.get(8)?,
        deleted_at: r.get(9)?,
    })
}

fn doctor_of(r: &Row<'_>) -> rusqlite::Result<Doctor> {
    let status: String = r.get(4)?;
    Ok(Doctor {
        user_id: r.get(0)?,
        institution_id: r.get(1)?,
        licencia: r.get(2)?,
        especialidad: r.get(3)?,
        status: DoctorStatus::parse(&status).ok_or_else(|| bad(4, "doctor status"))?,
        created_at: r.get(5)?,
        deleted_at: r.get(6)?,
    })
}

fn patient_of(r: &Row<'_>) -> rusqlite::Result<Patient> {
    let state: String = r.get(6)?;
    Ok(Patient {
        id: r.get(0)?,
        institution_id: r.get(1)?,
        doctor_id: r.get(2)?,
        subject: r.get(3)?,
        contact: r.get(4)?,
        idioma: r.get(5)?,
        state: ConsentState::parse(&state).ok_or_else(|| bad(6, "consent state"))?,
        confirm_digest: r.get(7)?,
        revoke_digest: r.get(8)?,
        created_by: r.get(9)?,
        created_at: r.get(10)?,
        updated_at: r.get(11)?,
        deleted_at: r.get(12)?,
    })
}

/// Whether `sql` (one `?1` parameter) finds a row.
fn exists(conn: &Connection, sql: &str, value: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached(sql)?
        .query_row(params![value], |_| Ok(()))
        .optional()?
        .is_some())
}

/// The `(created_at, id)` keyset condition of an oldest-first page.
fn after_key(w: &mut Where, id_column: &str, after: Option<(i64, String)>) {
    if let Some((at, id)) = after {
        w.push(
            &format!("(created_at > ? OR (created_at = ? AND {id_column} > ?))"),
            [Value::Integer(at), Value::Integer(at), Value::Text(id)],
        );
    }
}

/// `limit` as SQL's integer.
fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

#[async_trait]
impl RegistryStore for SqliteRegistry {
    async fn create_institution(&self, i: &Institution) -> alpes_domain::Result<Result<(), Taken>> {
        let i = i.clone();
        self.conn
            .with(move |conn| {
                let tx = write_tx(conn)?;
                if exists(
                    &tx,
                    "SELECT 1 FROM registry_institutions WHERE licencia = ?1 AND deleted_at IS NULL",
                    &i.licencia,
                )? {
                    return Ok(Err(Taken::Licencia));
                }
                if exists(
                    &tx,
                    "SELECT 1 FROM registry_institutions WHERE email = ?1 AND deleted_at IS NULL",
                    &i.email,
                )? {
                    return Ok(Err(Taken::Email));
                }
                tx.prepare_cached(&format!(
                    "INSERT INTO registry_institutions ({INSTITUTION_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
                ))?
                .execute(params![
                    i.id,
                    i.nombre,
                    i.tipo,
                    i.licencia,
                    i.email,
                    i.region,
                    i.verificacion.as_str(),
                    i.politica.as_str(),
                    i.created_at,
                    i.deleted_at
                ])?;
                tx.commit()?;
                Ok(Ok(()))
            })
            .await
    }

    async fn institution(&self, id: &str) -> alpes_domain::Result<Option<Institution>> {
        let id = id.to_owned();
        self.conn
            .read(move |conn| {
                let sql = format!("SELECT {INSTITUTION_COLUMNS} FROM registry_institutions WHERE id = ?1");
                Ok(conn.prepare_cached(&sql)?.query_row(params![id], institution_of).optional()?)
            })
            .await
    }

    async fn institutions(&self, after: Option<(i64, String)>, limit: usize) -> alpes_domain::Result<Vec<Institution>> {
        self.conn
            .read(move |conn| {
                let mut w = Where::default();
                w.push("deleted_at IS NULL", []);
                after_key(&mut w, "id", after);
                let sql = format!(
                    "SELECT {INSTITUTION_COLUMNS} FROM registry_institutions {} ORDER BY created_at, id LIMIT {}",
                    w.sql(),
                    sql_limit(limit)
                );
                rows(conn, &sql, w.params, institution_of)
            })
            .await
    }

    async fn delete_institution(&self, id: &str, at: i64) -> alpes_domain::Result<bool> {
        let id = id.to_owned();
        self.conn
            .with(move |conn| {
                let n = conn
                    .prepare_cached("UPDATE registry_institutions SET deleted_at = ?2 WHERE id = ?1 AND deleted_at IS NULL")?
                    .execute(params![id, at])?;
                Ok(n == 1)
            })
            .await
    }

    async fn update_institution(&self, i: &Institution) -> alpes_domain::Result<()> {
        let i = i.clone();
        self.conn
            .with(move |conn| {
                conn.prepare_cached("UPDATE registry_institutions SET verificacion = ?2, politica = ?3, deleted_at = ?4 WHERE id = ?1")?
                    .execute(params![i.id, i.verificacion.as_str(), i.politica.as_str(), i.deleted_at])?;
                Ok(())
            })
            .await
    }

    async fn set_member(&self, user_id: &str, institution_id: &str) -> alpes_domain::Result<()> {
        let (user_id, institution_id) = (user_id.to_owned(), institution_id.to_owned());
        self.conn
            .with(move |conn| {
                conn.prepare_cached(
                    "INSERT INTO registry_members (user_id, institution_id) VALUES (?1, ?2)
                     ON CONFLICT (user_id) DO UPDATE SET institution_id = excluded.institution_id",
                )?
                .execute(params![user_id, institution_id])?;
                Ok(())
            })
            .await
    }

    async fn member_of(&self, user_id: &str) -> alpes_domain::Result<Option<String>> {
        let user_id = user_id.to_owned();
        self.conn
            .read(move |conn| {
                Ok(conn
                    .prepare_cached("SELECT institution_id FROM registry_members WHERE user_id = ?1")?
                    .query_row(params![user_id], |r| r.get(0))
                    .optional()?)
            })
            .await
    }

    async fn create_doctor(&self, d: &Doctor) -> alpes_domain::Result<Result<(), Taken>> {
        let d = d.clone();
        self.conn
            .with(move |conn| {
                let tx = write_tx(conn)?;
                if exists(
                    &tx,
                    "SELECT 1 FROM registry_doctors WHERE licencia = ?1 AND deleted_at IS NULL",
                    &d.licencia,
                )? {
                    return Ok(Err(Taken::Licencia));
                }
                tx.prepare_cached(&format!(
                    "INSERT INTO registry_doctors ({DOCTOR_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
                ))?
                .execute(params![
                    d.user_id,
                    d.institution_id,
                    d.licencia,
                    d.especialidad,
                    d.status.as_str(),
                    d.created_at,
                    d.deleted_at
                ])?;
                tx.commit()?;
                Ok(Ok(()))
            })
            .await
    }

    async fn doctor(&self, user_id: &str) -> alpes_domain::Result<Option<Doctor>> {
        let user_id = user_id.to_owned();
        self.conn
            .read(move |conn| {
                let sql = format!("SELECT {DOCTOR_COLUMNS} FROM registry_doctors WHERE user_id = ?1");
                Ok(conn.prepare_cached(&sql)?.query_row(params![user_id], doctor_of).optional()?)
            })
            .await
    }

    async fn doctors(&self, institution_id: Option<&str>, after: Option<(i64, String)>, limit: usize) -> alpes_domain::Result<Vec<Doctor>> {
        let institution_id = institution_id.map(str::to_owned);
        self.conn
            .read(move |conn| {
                let mut w = Where::default();
                w.push("deleted_at IS NULL", []);
                w.opt("institution_id = ?", institution_id);
                after_key(&mut w, "user_id", after);
                let sql = format!(
                    "SELECT {DOCTOR_COLUMNS} FROM registry_doctors {} ORDER BY created_at, user_id LIMIT {}",
                    w.sql(),
                    sql_limit(limit)
                );
                rows(conn, &sql, w.params, doctor_of)
            })
            .await
    }

    async fn set_doctor_status(&self, user_id: &str, status: DoctorStatus) -> alpes_domain::Result<bool> {
        let user_id = user_id.to_owned();
        self.conn
            .with(move |conn| {
                let n = conn
                    .prepare_cached("UPDATE registry_doctors SET status = ?2 WHERE user_id = ?1 AND deleted_at IS NULL")?
                    .execute(params![user_id, status.as_str()])?;
                Ok(n == 1)
            })
            .await
    }

    async fn delete_doctor(&self, user_id: &str, at: i64) -> alpes_domain::Result<bool> {
        let user_id = user_id.to_owned();
        self.conn
            .with(move |conn| {
                let n = conn
                    .prepare_cached("UPDATE registry_doctors SET deleted_at = ?2 WHERE user_id = ?1 AND deleted_at IS NULL")?
                    .execute(params![user_id, at])?;
                Ok(n == 1)
            })
            .await
    }

    async fn create_patient(&self, p: &Patient) -> alpes_domain::Result<Result<(), Taken>> {
        let p = p.clone();
        self.conn
            .with(move |conn| {
                let tx = write_tx(conn)?;
                let live = tx
                    .prepare_cached("SELECT 1 FROM registry_patients WHERE institution_id = ?1 AND subject = ?2 AND deleted_at IS NULL")?
                    .query_row(params![p.institution_id, p.subject], |_| Ok(()))
                    .optional()?;
                if live.is_some() {
                    return Ok(Err(Taken::Paciente));
                }
                tx.prepare_cached(&format!(
                    "INSERT INTO registry_patients ({PATIENT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
                ))?
                .execute(params![
                    p.id,
                    p.institution_id,
                    p.doctor_id,
                    p.subject,
                    p.contact,
                    p.idioma,
                    p.state.as_str(),
                    p.confirm_digest,
                    p.revoke_digest,
                    p.created_by,
                    p.created_at,
                    p.updated_at,
                    p.deleted_at
                ])?;
                tx.commit()?;
                Ok(Ok(()))
            })
            .await
    }

    async fn patient(&self, id: &str) -> alpes_domain::Result<Option<Patient>> {
        let id = id.to_owned();
        self.conn
            .read(move |conn| {
                let sql = format!("SELECT {PATIENT_COLUMNS} FROM registry_patients WHERE id = ?1");
                Ok(conn.prepare_cached(&sql)?.query_row(params![id], patient_of).optional()?)
            })
            .await
    }

    async fn patients(&self, filter: &PatientFilter, after: Option<(i64, String)>, limit: usize) -> alpes_domain::Result<Vec<Patient>> {
        let filter = filter.clone();
        self.conn
            .read(move |conn| {
                let mut w = Where::default();
                w.push("deleted_at IS NULL", []);
                w.opt("institution_id = ?", filter.institution_id);
                w.opt("doctor_id = ?", filter.doctor_id);
                w.opt("state = ?", filter.state.map(|s| s.as_str().to_owned()));
                after_key(&mut w, "id", after);
                let sql = format!(
                    "SELECT {PATIENT_COLUMNS} FROM registry_patients {} ORDER BY created_at, id LIMIT {}",
                    w.sql(),
                    sql_limit(limit)
                );
                rows(conn, &sql, w.params, patient_of)
            })
            .await
    }

    async fn patient_by_code(&self, digest: &str) -> alpes_domain::Result<Option<(Patient, CodeKind)>> {
        let digest = digest.to_owned();
        self.conn
            .read(move |conn| {
                let sql = format!(
                    "SELECT {PATIENT_COLUMNS} FROM registry_patients
                     WHERE (confirm_digest = ?1 OR revoke_digest = ?1) AND deleted_at IS NULL"
                );
                let found = conn.prepare_cached(&sql)?.query_row(params![digest], patient_of).optional()?;
                Ok(found.map(|p| {
                    let kind = if p.confirm_digest == digest {
                        CodeKind::Confirm
                    } else {
                        CodeKind::Revoke
                    };
                    (p, kind)
                }))
            })
            .await
    }

    async fn move_patient(&self, id: &str, from: ConsentState, to: ConsentState, at: i64) -> alpes_domain::Result<bool> {
        let id = id.to_owned();
        self.conn
            .with(move |conn| {
                let n = conn
                    .prepare_cached(
                        "UPDATE registry_patients SET state = ?3, updated_at = ?4
                         WHERE id = ?1 AND state = ?2 AND deleted_at IS NULL",
                    )?
                    .execute(params![id, from.as_str(), to.as_str(), at])?;
                Ok(n == 1)
            })
            .await
    }

    async fn delete_patient(&self, id: &str, at: i64) -> alpes_domain::Result<bool> {
        let id = id.to_owned();
        self.conn
            .with(move |conn| {
                let n = conn
                    .prepare_cached("UPDATE registry_patients SET deleted_at = ?2, updated_at = ?2 WHERE id = ?1 AND deleted_at IS NULL")?
                    .execute(params![id, at])?;
                Ok(n == 1)
            })
            .await
    }

    async fn undelete_patient(&self, id: &str) -> alpes_domain::Result<bool> {
        let id = id.to_owned();
        self.conn
            .with(move |conn| {
                let n = conn
                    .prepare_cached(
                        "UPDATE registry_patients SET deleted_at = NULL WHERE id = ?1 AND deleted_at IS NOT NULL
                         AND NOT EXISTS (SELECT 1 FROM registry_patients o
                                         WHERE o.institution_id = registry_patients.institution_id
                                           AND o.subject = registry_patients.subject AND o.deleted_at IS NULL)",
                    )?
                    .execute(params![id])?;
                Ok(n == 1)
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_sqlite_registry_passes_the_conformance_suite() {
        let store = SqliteRegistry::in_memory().expect("open");
        crate::store::conformance::registry::all(&store).await;
    }
}
