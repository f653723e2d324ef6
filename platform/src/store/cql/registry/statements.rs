//! The statements of the CQL registry (`schemas/cql/010_registry.cql`), prepared once.

use super::super::exec::{Cql, Kind};
use crate::Result;
use scylla::statement::prepared::PreparedStatement;

// The statements, `{ks}` standing for the keyspace.
const INSTITUTION_INSERT: &str = "INSERT INTO {ks}.registry_institutions (id, nombre, tipo, licencia, email, region, verificacion, \
    politica, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) IF NOT EXISTS";
const INSTITUTION_READ: &str = "SELECT id, nombre, tipo, licencia, email, region, verificacion, politica, created_at, deleted_at \
    FROM {ks}.registry_institutions WHERE id = ?";
const INSTITUTION_DELETE: &str =
    "UPDATE {ks}.registry_institutions SET deleted_at = ? WHERE id = ? IF deleted_at = null AND licencia != null";
const INSTITUTION_UPDATE: &str =
    "UPDATE {ks}.registry_institutions SET verificacion = ?, politica = ?, deleted_at = ? WHERE id = ? IF licencia != null";
const CLAIM_INSERT: &str = "INSERT INTO {ks}.registry_claims (kind, value, owner, claimed_at) VALUES (?, ?, ?, ?) IF NOT EXISTS";
const CLAIM_READ: &str = "SELECT owner, claimed_at FROM {ks}.registry_claims WHERE kind = ? AND value = ?";
const CLAIM_TAKE_OVER: &str = "UPDATE {ks}.registry_claims SET owner = ?, claimed_at = ? WHERE kind = ? AND value = ? IF owner = ?";
const CLAIM_RELEASE: &str = "DELETE FROM {ks}.registry_claims WHERE kind = ? AND value = ? IF owner = ?";
const MEMBER_WRITE: &str = "INSERT INTO {ks}.registry_members (user_id, institution_id) VALUES (?, ?)";
const MEMBER_READ: &str = "SELECT institution_id FROM {ks}.registry_members WHERE user_id = ?";
const DOCTOR_INSERT: &str = "INSERT INTO {ks}.registry_doctors (user_id, institution_id, licencia, especialidad, status, created_at) \
    VALUES (?, ?, ?, ?, ?, ?) IF NOT EXISTS";
const DOCTOR_READ: &str = "SELECT user_id, institution_id, licencia, especialidad, status, created_at, deleted_at \
    FROM {ks}.registry_doctors WHERE user_id = ?";
const DOCTOR_STATUS: &str = "UPDATE {ks}.registry_doctors SET status = ? WHERE user_id = ? IF deleted_at = null AND licencia != null";
const DOCTOR_DELETE: &str = "UPDATE {ks}.registry_doctors SET deleted_at = ? WHERE user_id = ? IF deleted_at = null AND licencia != null";
const PATIENT_INSERT: &str = "INSERT INTO {ks}.registry_patients (id, institution_id, doctor_id, subject, contact, idioma, state, \
    confirm_digest, revoke_digest, created_by, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) IF NOT EXISTS";
const PATIENT_READ: &str = "SELECT id, institution_id, doctor_id, subject, contact, idioma, state, confirm_digest, revoke_digest, \
    created_by, created_at, updated_at, deleted_at FROM {ks}.registry_patients WHERE id = ?";
const PATIENT_MOVE: &str = "UPDATE {ks}.registry_patients SET state = ?, updated_at = ? WHERE id = ? IF state = ? AND deleted_at = null";
const PATIENT_DELETE: &str =
    "UPDATE {ks}.registry_patients SET deleted_at = ?, updated_at = ? WHERE id = ? IF deleted_at = null AND subject != null";
const PATIENT_UNDELETE: &str = "UPDATE {ks}.registry_patients SET deleted_at = null WHERE id = ? IF deleted_at != null";
const CODE_WRITE: &str = "INSERT INTO {ks}.registry_codes (digest, patient_id, kind) VALUES (?, ?, ?)";
const CODE_READ: &str = "SELECT patient_id, kind FROM {ks}.registry_codes WHERE digest = ?";
const LISTING_WRITE: &str = "INSERT INTO {ks}.registry_listings (listing, created_at, id) VALUES (?, ?, ?)";
const LISTING_AFTER: &str = "SELECT created_at, id FROM {ks}.registry_listings WHERE listing = ? AND (created_at, id) > (?, ?) LIMIT ?";

#[derive(Debug)]
pub(super) struct Statements {
    pub(super) institution_insert: PreparedStatement,
    pub(super) institution_read: PreparedStatement,
    pub(super) institution_delete: PreparedStatement,
    pub(super) institution_update: PreparedStatement,
    pub(super) claim_insert: PreparedStatement,
    pub(super) claim_read: PreparedStatement,
    pub(super) claim_take_over: PreparedStatement,
    pub(super) claim_release: PreparedStatement,
    pub(super) member_write: PreparedStatement,
    pub(super) member_read: PreparedStatement,
    pub(super) doctor_insert: PreparedStatement,
    pub(super) doctor_read: PreparedStatement,
    pub(super) doctor_status: PreparedStatement,
    pub(super) doctor_delete: PreparedStatement,
    pub(super) patient_insert: PreparedStatement,
    pub(super) patient_read: PreparedStatement,
    pub(super) patient_move: PreparedStatement,
    pub(super) patient_delete: PreparedStatement,
    pub(super) patient_undelete: PreparedStatement,
    pub(super) code_write: PreparedStatement,
    pub(super) code_read: PreparedStatement,
    pub(super) listing_write: PreparedStatement,
    pub(super) listing_after: PreparedStatement,
}

impl Statements {
    /// Every statement, prepared on `cql`. A claim is read at the serial consistency (it decides
    /// a takeover, and completes a claim still in flight); rows at the configured one.
    pub(super) async fn prepare(cql: &Cql) -> Result<Statements> {
        Ok(Statements {
            institution_insert: cql.prepare(INSTITUTION_INSERT, Kind::Lwt).await?,
            institution_read: cql.prepare(INSTITUTION_READ, Kind::Plain).await?,
            institution_delete: cql.prepare(INSTITUTION_DELETE, Kind::Lwt).await?,
            institution_update: cql.prepare(INSTITUTION_UPDATE, Kind::Lwt).await?,
            claim_insert: cql.prepare(CLAIM_INSERT, Kind::Lwt).await?,
            claim_read: cql.prepare(CLAIM_READ, Kind::SerialRead).await?,
            claim_take_over: cql.prepare(CLAIM_TAKE_OVER, Kind::Lwt).await?,
            claim_release: cql.prepare(CLAIM_RELEASE, Kind::Lwt).await?,
            member_write: cql.prepare(MEMBER_WRITE, Kind::Plain).await?,
            member_read: cql.prepare(MEMBER_READ, Kind::Plain).await?,
            doctor_insert: cql.prepare(DOCTOR_INSERT, Kind::Lwt).await?,
            doctor_read: cql.prepare(DOCTOR_READ, Kind::Plain).await?,
            doctor_status: cql.prepare(DOCTOR_STATUS, Kind::Lwt).await?,
            doctor_delete: cql.prepare(DOCTOR_DELETE, Kind::Lwt).await?,
            patient_insert: cql.prepare(PATIENT_INSERT, Kind::Lwt).await?,
            patient_read: cql.prepare(PATIENT_READ, Kind::Plain).await?,
            patient_move: cql.prepare(PATIENT_MOVE, Kind::Lwt).await?,
            patient_delete: cql.prepare(PATIENT_DELETE, Kind::Lwt).await?,
            patient_undelete: cql.prepare(PATIENT_UNDELETE, Kind::Lwt).await?,
            code_write: cql.prepare(CODE_WRITE, Kind::Plain).await?,
            code_read: cql.prepare(CODE_READ, Kind::Plain).await?,
            listing_write: cql.prepare(LISTING_WRITE, Kind::Plain).await?,
            listing_after: cql.prepare(LISTING_AFTER, Kind::Plain).await?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::check::assert_statements_cover;
    use super::*;

    const ALL_STATEMENTS: [&str; 23] = [
        INSTITUTION_INSERT,
        INSTITUTION_READ,
        INSTITUTION_DELETE,
        INSTITUTION_UPDATE,
        CLAIM_INSERT,
        CLAIM_READ,
        CLAIM_TAKE_OVER,
        CLAIM_RELEASE,
        MEMBER_WRITE,
        MEMBER_READ,
        DOCTOR_INSERT,
        DOCTOR_READ,
        DOCTOR_STATUS,
        DOCTOR_DELETE,
        PATIENT_INSERT,
        PATIENT_READ,
        PATIENT_MOVE,
        PATIENT_DELETE,
        PATIENT_UNDELETE,
        CODE_WRITE,
        CODE_READ,
        LISTING_WRITE,
        LISTING_AFTER,
    ];

    #[test]
    fn every_statement_names_only_tables_and_columns_of_the_schema() {
        const KEYWORDS: [&str; 15] = [
            "select", "from", "where", "and", "insert", "into", "values", "update", "set", "if", "not", "exists", "limit", "delete", "null",
        ];
        assert_statements_cover("010_registry.cql", 7, &ALL_STATEMENTS, &KEYWORDS);
    }

    #[test]
    fn the_rows_of_entities_and_claims_are_written_only_by_lightweight_transactions() {
        let entities = ["registry_institutions", "registry_doctors", "registry_patients", "registry_claims"];
        for cql in ALL_STATEMENTS.iter().filter(|c| !c.starts_with("SELECT")) {
            let table = super::super::super::check::table_of(cql);
            assert_eq!(cql.contains(" IF "), entities.contains(&table.as_str()), "{cql}");
        }
    }
}
