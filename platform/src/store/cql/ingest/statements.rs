//! The statements of the CQL ingest store (`schemas/cql/004_ingest.cql`), prepared once.

use super::super::exec::{Cql, Kind};
use crate::Result;
use scylla::statement::prepared::PreparedStatement;

// The statements, `{ks}` standing for the keyspace.
pub(super) const CONTENT_CLAIM: &str = "INSERT INTO {ks}.ingest_content (provider_id, sha256, image_id, size, media_type, blob_key, \
    tipo_imagen, region_anatomica, idem_key, created_at, request_id, event) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) IF NOT EXISTS";
pub(super) const CONTENT_READ: &str = "SELECT provider_id, sha256, image_id, size, media_type, blob_key, tipo_imagen, region_anatomica, \
    idem_key, created_at, request_id, event FROM {ks}.ingest_content WHERE provider_id = ? AND sha256 = ?";
pub(super) const CONTENT_RELEASE: &str = "DELETE FROM {ks}.ingest_content WHERE provider_id = ? AND sha256 = ? IF image_id = ?";
pub(super) const KEY_CLAIM: &str =
    "INSERT INTO {ks}.ingest_keys (provider_id, idem_key, image_id, sha256) VALUES (?, ?, ?, ?) IF NOT EXISTS";
pub(super) const KEY_READ: &str = "SELECT image_id, sha256 FROM {ks}.ingest_keys WHERE provider_id = ? AND idem_key = ?";
pub(super) const KEY_RELEASE: &str = "DELETE FROM {ks}.ingest_keys WHERE provider_id = ? AND idem_key = ? IF image_id = ?";
pub(super) const IMAGE_WRITE: &str = "INSERT INTO {ks}.ingest_images (image_id, provider_id, sha256, size, media_type, blob_key, \
    tipo_imagen, region_anatomica, idem_key, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
pub(super) const IMAGE_READ: &str = "SELECT image_id, provider_id, sha256, size, media_type, blob_key, tipo_imagen, region_anatomica, \
    idem_key FROM {ks}.ingest_images WHERE image_id = ?";
pub(super) const IMAGE_DELETE: &str = "DELETE FROM {ks}.ingest_images WHERE image_id = ?";
pub(super) const USER_WRITE: &str = "INSERT INTO {ks}.ingest_blob_users (sha256, image_id) VALUES (?, ?)";
pub(super) const USER_DELETE: &str = "DELETE FROM {ks}.ingest_blob_users WHERE sha256 = ? AND image_id = ?";
pub(super) const USERS_READ: &str = "SELECT image_id FROM {ks}.ingest_blob_users WHERE sha256 = ? LIMIT 1";
pub(super) const REQUEST_INSERT: &str = "INSERT INTO {ks}.ingest_requests (request_id, image_id, state, event, bucket, created_at) \
    VALUES (?, ?, ?, ?, ?, ?) IF NOT EXISTS";
pub(super) const REQUEST_READ: &str = "SELECT image_id, state, bucket, created_at FROM {ks}.ingest_requests WHERE request_id = ?";
pub(super) const REQUEST_ADVANCE: &str = "UPDATE {ks}.ingest_requests SET state = ? WHERE request_id = ? IF state IN (?, ?)";
pub(super) const REQUEST_FINISH: &str = "UPDATE {ks}.ingest_requests SET state = ? WHERE request_id = ? IF EXISTS";
pub(super) const REQUEST_DELETE: &str = "DELETE FROM {ks}.ingest_requests WHERE request_id = ? IF EXISTS";
pub(super) const BY_IMAGE_WRITE: &str = "INSERT INTO {ks}.ingest_requests_by_image (image_id, request_id) VALUES (?, ?)";
pub(super) const BY_IMAGE_DELETE: &str = "DELETE FROM {ks}.ingest_requests_by_image WHERE image_id = ? AND request_id = ?";
pub(super) const BY_IMAGE_READ: &str = "SELECT request_id FROM {ks}.ingest_requests_by_image WHERE image_id = ? LIMIT 2";
pub(super) const OPEN_WRITE: &str = "INSERT INTO {ks}.ingest_open (bucket, created_at, request_id, event) VALUES (?, ?, ?, ?)";
pub(super) const OPEN_DELETE: &str = "DELETE FROM {ks}.ingest_open WHERE bucket = ? AND created_at = ? AND request_id = ?";
pub(super) const OPEN_SCAN: &str = "SELECT created_at, request_id, event FROM {ks}.ingest_open WHERE bucket = ?";
pub(super) const BUCKET_WRITE: &str = "INSERT INTO {ks}.ingest_open_buckets (shard, bucket) VALUES (?, ?)";
pub(super) const BUCKET_DELETE: &str = "DELETE FROM {ks}.ingest_open_buckets WHERE shard = ? AND bucket = ?";
pub(super) const BUCKET_SCAN: &str = "SELECT bucket FROM {ks}.ingest_open_buckets WHERE shard = ?";
pub(super) const AE_WRITE: &str = "INSERT INTO {ks}.dimse_calling_aes (ae_title, provider_id, updated_at) VALUES (?, ?, ?)";
// Plain writes only, the delete too: a lightweight transaction's timestamp beside plain writes'
// could shadow one with the other. Whether the AE had a mapping is read first (AE_READ).
pub(super) const AE_DELETE: &str = "DELETE FROM {ks}.dimse_calling_aes WHERE ae_title = ?";
pub(super) const AE_READ: &str = "SELECT provider_id FROM {ks}.dimse_calling_aes WHERE ae_title = ?";
pub(super) const AE_SCAN: &str = "SELECT ae_title, provider_id, updated_at FROM {ks}.dimse_calling_aes";
pub(super) const HEALTH: &str = "SELECT release_version FROM system.local";

#[derive(Debug)]
pub(super) struct Statements {
    pub(super) content_claim: PreparedStatement,
    /// Read at the serial consistency.
    pub(super) content_read: PreparedStatement,
    pub(super) content_release: PreparedStatement,
    pub(super) key_claim: PreparedStatement,
    /// Read at the serial consistency.
    pub(super) key_read: PreparedStatement,
    pub(super) key_release: PreparedStatement,
    pub(super) image_write: PreparedStatement,
    pub(super) image_read: PreparedStatement,
    pub(super) image_delete: PreparedStatement,
    pub(super) user_write: PreparedStatement,
    pub(super) user_delete: PreparedStatement,
    pub(super) users_read: PreparedStatement,
    pub(super) request_insert: PreparedStatement,
    pub(super) request_read: PreparedStatement,
    pub(super) request_advance: PreparedStatement,
    pub(super) request_finish: PreparedStatement,
    pub(super) request_delete: PreparedStatement,
    pub(super) by_image_write: PreparedStatement,
    pub(super) by_image_delete: PreparedStatement,
    pub(super) by_image_read: PreparedStatement,
    pub(super) open_write: PreparedStatement,
    pub(super) open_delete: PreparedStatement,
    pub(super) open_scan: PreparedStatement,
    pub(super) bucket_write: PreparedStatement,
    pub(super) bucket_delete: PreparedStatement,
    pub(super) bucket_scan: PreparedStatement,
    pub(super) ae_write: PreparedStatement,
    pub(super) ae_delete: PreparedStatement,
    pub(super) ae_read: PreparedStatement,
    pub(super) ae_scan: PreparedStatement,
    pub(super) health: PreparedStatement,
}

impl Statements {
    /// Every statement, prepared on `cql`.
    pub(super) async fn prepare(cql: &Cql) -> Result<Statements> {
        Ok(Statements {
            content_claim: cql.prepare(CONTENT_CLAIM, Kind::Lwt).await?,
            content_read: cql.prepare(CONTENT_READ, Kind::SerialRead).await?,
            content_release: cql.prepare(CONTENT_RELEASE, Kind::Lwt).await?,
            key_claim: cql.prepare(KEY_CLAIM, Kind::Lwt).await?,
            key_read: cql.prepare(KEY_READ, Kind::SerialRead).await?,
            key_release: cql.prepare(KEY_RELEASE, Kind::Lwt).await?,
            image_write: cql.prepare(IMAGE_WRITE, Kind::Plain).await?,
            image_read: cql.prepare(IMAGE_READ, Kind::Plain).await?,
            image_delete: cql.prepare(IMAGE_DELETE, Kind::Plain).await?,
            user_write: cql.prepare(USER_WRITE, Kind::Plain).await?,
            user_delete: cql.prepare(USER_DELETE, Kind::Plain).await?,
            users_read: cql.prepare(USERS_READ, Kind::Plain).await?,
            request_insert: cql.prepare(REQUEST_INSERT, Kind::Lwt).await?,
            request_read: cql.prepare(REQUEST_READ, Kind::Plain).await?,
            request_advance: cql.prepare(REQUEST_ADVANCE, Kind::Lwt).await?,
            request_finish: cql.prepare(REQUEST_FINISH, Kind::Lwt).await?,
            request_delete: cql.prepare(REQUEST_DELETE, Kind::Lwt).await?,
            by_image_write: cql.prepare(BY_IMAGE_WRITE, Kind::Plain).await?,
            by_image_delete: cql.prepare(BY_IMAGE_DELETE, Kind::Plain).await?,
            by_image_read: cql.prepare(BY_IMAGE_READ, Kind::Plain).await?,
            open_write: cql.prepare(OPEN_WRITE, Kind::Plain).await?,
            open_delete: cql.prepare(OPEN_DELETE, Kind::Plain).await?,
            open_scan: cql.prepare(OPEN_SCAN, Kind::Scan).await?,
            bucket_write: cql.prepare(BUCKET_WRITE, Kind::Plain).await?,
            bucket_delete: cql.prepare(BUCKET_DELETE, Kind::Plain).await?,
            bucket_scan: cql.prepare(BUCKET_SCAN, Kind::Scan).await?,
            ae_write: cql.prepare(AE_WRITE, Kind::Plain).await?,
            ae_delete: cql.prepare(AE_DELETE, Kind::Plain).await?,
            ae_read: cql.prepare(AE_READ, Kind::Plain).await?,
            ae_scan: cql.prepare(AE_SCAN, Kind::Scan).await?,
            health: cql.prepare(HEALTH, Kind::Plain).await?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::check::{assert_binds_one_marker_per_column, assert_names_only_schema, schema_columns};
    use super::*;
    use std::collections::HashSet;

    const ALL: [&str; 30] = [
        CONTENT_CLAIM,
        CONTENT_READ,
        CONTENT_RELEASE,
        KEY_CLAIM,
        KEY_READ,
        KEY_RELEASE,
        IMAGE_WRITE,
        IMAGE_READ,
        IMAGE_DELETE,
        USER_WRITE,
        USER_DELETE,
        USERS_READ,
        REQUEST_INSERT,
        REQUEST_READ,
        REQUEST_ADVANCE,
        REQUEST_FINISH,
        REQUEST_DELETE,
        BY_IMAGE_WRITE,
        BY_IMAGE_DELETE,
        BY_IMAGE_READ,
        OPEN_WRITE,
        OPEN_DELETE,
        OPEN_SCAN,
        BUCKET_WRITE,
        BUCKET_DELETE,
        BUCKET_SCAN,
        AE_WRITE,
        AE_DELETE,
        AE_READ,
        AE_SCAN,
    ];

    #[test]
    fn every_statement_names_only_tables_and_columns_of_the_schema() {
        const KEYWORDS: [&str; 15] = [
            "select", "from", "where", "and", "insert", "into", "values", "update", "set", "delete", "if", "not", "exists", "limit", "in",
        ];
        let mut tables = schema_columns("004_ingest.cql");
        assert_eq!(tables.len(), 8, "{:?}", tables.keys());
        tables.extend(schema_columns("008_dimse_calling_aes.cql"));
        let mut used = HashSet::new();
        for cql in ALL {
            used.insert(assert_names_only_schema(cql, &tables, &KEYWORDS, true));
        }
        assert_eq!(used.len(), tables.len(), "a table of the schema has no statement");
    }

    #[test]
    fn every_insert_binds_one_marker_per_column() {
        for cql in ALL.iter().filter(|c| c.starts_with("INSERT")) {
            assert_binds_one_marker_per_column(cql);
        }
    }

    #[test]
    fn only_the_claims_and_the_request_rows_are_lightweight_transactions() {
        let lwt: Vec<&str> = ALL.iter().copied().filter(|c| c.contains(" IF ")).collect();
        assert_eq!(
            lwt,
            vec![
                CONTENT_CLAIM,
                CONTENT_RELEASE,
                KEY_CLAIM,
                KEY_RELEASE,
                REQUEST_INSERT,
                REQUEST_ADVANCE,
                REQUEST_FINISH,
                REQUEST_DELETE
            ]
        );
        // Every write of a request row is one of them (see the module docs).
        for cql in ALL.iter().filter(|c| c.contains("{ks}.ingest_requests ")) {
            assert!(cql.starts_with("SELECT") || cql.contains(" IF "), "{cql}");
        }
        // And none of a calling AE title's: plain writes only, so none shadows another.
        for cql in ALL.iter().filter(|c| c.contains("{ks}.dimse_calling_aes")) {
            assert!(!cql.contains(" IF "), "{cql}");
        }
    }
}
