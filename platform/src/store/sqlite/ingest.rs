//! The embedded ingest store: one SQLite file in WAL mode (rusqlite, bundled).
//! Calls run on the blocking pool; one connection behind a mutex.

use super::conn::{write_tx, SqliteConn};
use crate::store::{Claim, ImageRow, IngestStore, NewImage, RequestState};
use crate::Result;
use alpes_domain::dimse::CallingAe;
use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS images (
    image_id    TEXT PRIMARY KEY,
    provider_id TEXT NOT NULL,
    sha256      TEXT NOT NULL,
    size        INTEGER NOT NULL,
    media_type  TEXT NOT NULL,
    blob_key    TEXT NOT NULL,
    tipo_imagen TEXT,
    region_anatomica TEXT,
    created_at  INTEGER NOT NULL,
    UNIQUE (provider_id, sha256)
);
CREATE TABLE IF NOT EXISTS idempotency (
    provider_id TEXT NOT NULL,
    idem_key    TEXT NOT NULL,
    image_id    TEXT NOT NULL REFERENCES images(image_id) ON DELETE CASCADE,
    PRIMARY KEY (provider_id, idem_key)
);
CREATE TABLE IF NOT EXISTS requests (
    request_id TEXT PRIMARY KEY,
    image_id   TEXT NOT NULL REFERENCES images(image_id) ON DELETE CASCADE,
    state      TEXT NOT NULL,
    event      TEXT NOT NULL,
    seq        INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS requests_open ON requests(state, seq);
CREATE INDEX IF NOT EXISTS requests_seq ON requests(seq);
CREATE INDEX IF NOT EXISTS images_sha256 ON images(sha256);
CREATE TABLE IF NOT EXISTS dimse_calling_aes (
    ae_title    TEXT PRIMARY KEY,
    provider_id TEXT NOT NULL,
    updated_at  INTEGER NOT NULL
);
";

/// The SQLite adapter.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    conn: SqliteConn,
}

impl SqliteStore {
    /// Opens (creating) the database at `path`. A commit survives a crash of the
    /// process (WAL, `synchronous=NORMAL`), not necessarily a power loss.
    pub fn open(path: &std::path::Path) -> Result<SqliteStore> {
        Self::open_with(path, false)
    }

    /// Opens (creating) the database at `path`; with `fsync`, every commit is
    /// flushed to disk before it returns (`synchronous=FULL`).
    pub fn open_with(path: &std::path::Path, fsync: bool) -> Result<SqliteStore> {
        Ok(SqliteStore {
            conn: SqliteConn::open(path, fsync, SCHEMA)?,
        })
    }

    /// A private in-memory database (tests).
    pub fn in_memory() -> Result<SqliteStore> {
        Ok(SqliteStore {
            conn: SqliteConn::in_memory(SCHEMA)?,
        })
    }

    async fn with<T: Send + 'static>(&self, f: impl FnOnce(&mut Connection) -> Result<T> + Send + 'static) -> alpes_domain::Result<T> {
        self.conn.with(f).await
    }
}

/// Moves one request to a state; a finished request never goes back to pending or published.
const SET_STATE: &str = "UPDATE requests SET state = ?2 WHERE request_id = ?1
    AND (state IN ('pending', 'published') OR ?2 IN ('anonymized', 'rejected'))";

fn next_seq(tx: &Connection) -> Result<i64> {
    Ok(tx
        .prepare_cached("SELECT COALESCE(MAX(seq), 0) + 1 FROM requests")?
        .query_row([], |r| r.get(0))?)
}

#[async_trait]
impl IngestStore for SqliteStore {
    async fn claim(&self, img: NewImage) -> alpes_domain::Result<Claim> {
        self.with(move |conn| {
            let tx = write_tx(conn)?;
            if let Some(key) = &img.idempotency_key {
                let found: Option<String> = tx
                    .prepare_cached("SELECT image_id FROM idempotency WHERE provider_id = ?1 AND idem_key = ?2")?
                    .query_row(params![img.image.provider_id, key], |r| r.get(0))
                    .optional()?;
                if let Some(image_id) = found {
                    return Ok(Claim::Existing { image_id });
                }
            }
            let same_bytes: Option<String> = tx
                .prepare_cached("SELECT image_id FROM images WHERE provider_id = ?1 AND sha256 = ?2")?
                .query_row(params![img.image.provider_id, img.image.sha256], |r| r.get(0))
                .optional()?;
            if let Some(image_id) = same_bytes {
                if let Some(key) = &img.idempotency_key {
                    tx.prepare_cached("INSERT OR IGNORE INTO idempotency (provider_id, idem_key, image_id) VALUES (?1, ?2, ?3)")?
                        .execute(params![img.image.provider_id, key, image_id])?;
                }
                tx.commit()?;
                return Ok(Claim::Existing { image_id });
            }
            tx.prepare_cached(
                "INSERT INTO images (image_id, provider_id, sha256, size, media_type, blob_key, tipo_imagen, region_anatomica, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?
            .execute(params![
                img.image.image_id,
                img.image.provider_id,
                img.image.sha256,
                img.image.size as i64,
                img.image.media_type,
                img.image.blob_key,
                img.image.tipo_imagen,
                img.image.region_anatomica,
                alpes_schemas::now_millis()
            ])?;
            if let Some(key) = &img.idempotency_key {
                tx.prepare_cached("INSERT INTO idempotency (provider_id, idem_key, image_id) VALUES (?1, ?2, ?3)")?
                    .execute(params![img.image.provider_id, key, img.image.image_id])?;
            }
            let seq = next_seq(&tx)?;
            tx.prepare_cached("INSERT INTO requests (request_id, image_id, state, event, seq) VALUES (?1, ?2, 'pending', ?3, ?4)")?
                .execute(params![img.request_id, img.image.image_id, img.event_json, seq])?;
            tx.commit()?;
            Ok(Claim::Created)
        })
        .await
    }

    async fn add_request(&self, image_id: &str, request_id: &str, event_json: &str) -> alpes_domain::Result<()> {
        let (image_id, request_id, event_json) = (image_id.to_owned(), request_id.to_owned(), event_json.to_owned());
        self.with(move |conn| {
            let tx = write_tx(conn)?;
            let seq = next_seq(&tx)?;
            tx.prepare_cached("INSERT INTO requests (request_id, image_id, state, event, seq) VALUES (?1, ?2, 'pending', ?3, ?4)")?
                .execute(params![request_id, image_id, event_json, seq])?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn set_state(&self, request_id: &str, state: RequestState) -> alpes_domain::Result<bool> {
        let request_id = request_id.to_owned();
        self.with(move |conn| Ok(conn.prepare_cached(SET_STATE)?.execute(params![request_id, state.as_str()])? > 0))
            .await
    }

    async fn set_states(&self, changes: Vec<(String, RequestState)>) -> alpes_domain::Result<usize> {
        if changes.is_empty() {
            return Ok(0);
        }
        self.with(move |conn| {
            let tx = write_tx(conn)?;
            let mut changed = 0;
            {
                let mut update = tx.prepare_cached(SET_STATE)?;
                for (request_id, state) in &changes {
                    changed += update.execute(params![request_id, state.as_str()])?;
                }
            }
            tx.commit()?;
            Ok(changed)
        })
        .await
    }

    async fn abandon(&self, request_id: &str) -> alpes_domain::Result<bool> {
        let request_id = request_id.to_owned();
        self.with(move |conn| {
            let tx = write_tx(conn)?;
            let row: Option<(String, String)> = tx
                .prepare_cached("SELECT r.image_id, i.sha256 FROM requests r JOIN images i USING (image_id) WHERE r.request_id = ?1")?
                .query_row(params![request_id], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            let Some((image_id, sha)) = row else {
                return Ok(true);
            };
            tx.prepare_cached("DELETE FROM requests WHERE request_id = ?1")?
                .execute(params![request_id])?;
            let others: i64 = tx
                .prepare_cached("SELECT COUNT(*) FROM requests WHERE image_id = ?1")?
                .query_row(params![image_id], |r| r.get(0))?;
            if others == 0 {
                tx.prepare_cached("DELETE FROM images WHERE image_id = ?1")?
                    .execute(params![image_id])?;
            }
            let users: i64 = tx
                .prepare_cached("SELECT COUNT(*) FROM images WHERE sha256 = ?1")?
                .query_row(params![sha], |r| r.get(0))?;
            tx.commit()?;
            Ok(users > 0)
        })
        .await
    }

    async fn blob_in_use(&self, sha256: &str) -> alpes_domain::Result<bool> {
        let sha256 = sha256.to_owned();
        self.with(move |conn| {
            let n: i64 = conn
                .prepare_cached("SELECT COUNT(*) FROM images WHERE sha256 = ?1")?
                .query_row(params![sha256], |r| r.get(0))?;
            Ok(n > 0)
        })
        .await
    }

    async fn image(&self, image_id: &str) -> alpes_domain::Result<Option<ImageRow>> {
        let image_id = image_id.to_owned();
        self.with(move |conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT image_id, provider_id, sha256, size, media_type, blob_key, tipo_imagen, region_anatomica
                     FROM images WHERE image_id = ?1",
                )?
                .query_row(params![image_id], |r| {
                    Ok(ImageRow {
                        image_id: r.get(0)?,
                        provider_id: r.get(1)?,
                        sha256: r.get(2)?,
                        size: r.get::<_, i64>(3)? as u64,
                        media_type: r.get(4)?,
                        blob_key: r.get(5)?,
                        tipo_imagen: r.get(6)?,
                        region_anatomica: r.get(7)?,
                    })
                })
                .optional()?)
        })
        .await
    }

    async fn request_state(&self, request_id: &str) -> alpes_domain::Result<Option<RequestState>> {
        let request_id = request_id.to_owned();
        self.with(move |conn| {
            let s: Option<String> = conn
                .prepare_cached("SELECT state FROM requests WHERE request_id = ?1")?
                .query_row(params![request_id], |r| r.get(0))
                .optional()?;
            Ok(s.as_deref().and_then(RequestState::parse))
        })
        .await
    }

    async fn unfinished(&self) -> alpes_domain::Result<Vec<String>> {
        self.with(|conn| {
            let mut stmt = conn.prepare("SELECT event FROM requests WHERE state IN ('pending', 'published') ORDER BY seq")?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
            Ok(rows.collect::<std::result::Result<Vec<_>, _>>()?)
        })
        .await
    }

    async fn put_calling_ae(&self, ae_title: &str, provider_id: &str, now: i64) -> alpes_domain::Result<()> {
        let (ae, provider) = (ae_title.to_owned(), provider_id.to_owned());
        self.with(move |conn| {
            conn.prepare_cached(
                "INSERT INTO dimse_calling_aes (ae_title, provider_id, updated_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (ae_title) DO UPDATE SET provider_id = excluded.provider_id, updated_at = excluded.updated_at",
            )?
            .execute(params![ae, provider, now])?;
            Ok(())
        })
        .await
    }

    async fn remove_calling_ae(&self, ae_title: &str) -> alpes_domain::Result<bool> {
        let ae = ae_title.to_owned();
        self.with(move |conn| {
            Ok(conn
                .prepare_cached("DELETE FROM dimse_calling_aes WHERE ae_title = ?1")?
                .execute(params![ae])?
                > 0)
        })
        .await
    }

    async fn calling_aes(&self) -> alpes_domain::Result<Vec<CallingAe>> {
        self.with(|conn| {
            let mut stmt = conn.prepare_cached("SELECT ae_title, provider_id, updated_at FROM dimse_calling_aes ORDER BY ae_title")?;
            let rows = stmt.query_map([], |r| {
                Ok(CallingAe {
                    ae_title: r.get(0)?,
                    provider_id: r.get(1)?,
                    updated_at: r.get(2)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    async fn health(&self) -> alpes_domain::Result<()> {
        self.with(|conn| Ok(conn.prepare_cached("SELECT 1")?.query_row([], |r| r.get::<_, i64>(0)).map(|_| ())?))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_ingest_conformance_suite_passes_on_sqlite() {
        crate::store::conformance::ingest(&SqliteStore::in_memory().expect("db")).await;
    }
}
