//! Blobs: the image bytes, content-addressed by sha256 on `object_store`.
//!
//! Keys are `raw/<sha256>` (as uploaded, PHI) and `anonymized/<sha256>`.
//! Every write is atomic: a small body is hashed in memory and put in one go, a
//! large one streams to `tmp/<uuid>` while it is hashed and then moves to its
//! key. No reader ever sees a half-written blob, and memory per upload stays
//! bounded by one chunk whatever the size.
//!
//! A store is *private* or *shared* ([`Blobs::shared`]). A private store is
//! written only by processes that share one ingest store (the local directory
//! under one data dir), so that store knows every image that uses a blob. A
//! shared store (S3, or a local directory mounted into several data dirs and
//! flagged `--blobs-shared`) is written by replicas whose ingest stores each
//! know only their own images: no one process may conclude a blob is unused.

use crate::{Error, Result};
use bytes::Bytes;
use futures::{Stream, StreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// Prefix of uploaded (identified) blobs.
pub const RAW: &str = "raw";
/// Prefix of de-identified blobs.
pub const ANONYMIZED: &str = "anonymized";

/// How many leading bytes an upload keeps in memory for sniffing its type.
pub const SNIFF_BYTES: usize = 64 * 1024;

/// The part size of a streamed upload, and the largest body hashed in memory before it is written.
pub const CHUNK: usize = 5 * 1024 * 1024;

/// Where blobs live.
#[derive(Debug, Clone, clap::Args)]
pub struct BlobArgs {
    /// S3 endpoint URL (e.g. MinIO's). Without `--s3-bucket`, blobs go to `<data-dir>/blobs`.
    #[arg(long = "s3-endpoint", env = "ALPES_S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,
    /// S3 bucket; setting it selects the S3 store.
    #[arg(long = "s3-bucket", env = "ALPES_S3_BUCKET")]
    pub s3_bucket: Option<String>,
    /// S3 region.
    #[arg(long = "s3-region", env = "ALPES_S3_REGION", default_value = "us-east-1")]
    pub s3_region: String,
    /// S3 access key id (or `AWS_ACCESS_KEY_ID`).
    #[arg(long = "s3-access-key-id", env = "AWS_ACCESS_KEY_ID", hide_env_values = true)]
    pub s3_access_key_id: Option<String>,
    /// S3 secret access key (or `AWS_SECRET_ACCESS_KEY`).
    #[arg(long = "s3-secret-access-key", env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true)]
    pub s3_secret_access_key: Option<String>,
    /// The local blob directory is shared with processes that have another data dir (a mount
    /// at `<data-dir>/blobs` on several hosts or containers): ingest then never deletes a raw
    /// blob, as with S3. Processes that share the whole data dir need not set it.
    #[arg(long = "blobs-shared", env = "ALPES_BLOBS_SHARED")]
    pub shared: bool,
}

/// A blob after it was stored.
impl Default for BlobArgs {
    /// The flags' defaults: the local blob directory, private to its process.
    fn default() -> Self {
        BlobArgs {
            s3_endpoint: None,
            s3_bucket: None,
            s3_region: "us-east-1".into(),
            s3_access_key_id: None,
            s3_secret_access_key: None,
            shared: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBlob {
    /// The final key, e.g. `raw/<sha256>`.
    pub key: String,
    /// Lowercase hex sha256 of the bytes.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// The first [`SNIFF_BYTES`] bytes, for type detection.
    pub head: Vec<u8>,
}

/// Why a streamed upload was not stored.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// The body passed the size limit; nothing was kept.
    #[error("the body exceeds the limit of {0} bytes")]
    TooLarge(u64),
    /// The client's body failed (truncated, reset); nothing was kept.
    #[error("the request body could not be read: {0}")]
    Body(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] Error),
}

/// The blob store.
#[derive(Debug, Clone)]
pub struct Blobs {
    store: Arc<dyn ObjectStore>,
    /// Shared, not copied, by every clone (a route's state is cloned per request).
    describe: Arc<str>,
    shared: bool,
}

impl Blobs {
    /// A local directory store (created if missing), private to this process
    /// (see [`Blobs::with_shared`]). A blob is stored once it is in the operating
    /// system's hands: it survives a crash of the process, not a power loss.
    pub fn local(dir: &std::path::Path) -> Result<Blobs> {
        Self::local_with(dir, false)
    }

    /// A local directory store (created if missing); with `fsync`, every blob and
    /// its directory are flushed to disk before the write returns.
    pub fn local_with(dir: &std::path::Path, fsync: bool) -> Result<Blobs> {
        std::fs::create_dir_all(dir)?;
        let store = LocalFileSystem::new_with_prefix(dir)?
            .with_automatic_cleanup(true)
            .with_fsync(fsync);
        Ok(Blobs {
            store: Arc::new(store),
            describe: format!("local:{}", dir.display()).into(),
            shared: false,
        })
    }

    /// The store the arguments select: S3 when a bucket is given (always shared),
    /// else `default_dir` (flushing every write to disk with `fsync`; shared only
    /// with `--blobs-shared`).
    pub fn open(args: &BlobArgs, default_dir: &std::path::Path, fsync: bool) -> Result<Blobs> {
        let Some(bucket) = args.s3_bucket.as_deref().filter(|b| !b.is_empty()) else {
            return Ok(Self::local_with(default_dir, fsync)?.with_shared(args.shared));
        };
        let mut b = AmazonS3Builder::new().with_bucket_name(bucket).with_region(&args.s3_region);
        if let Some(ep) = &args.s3_endpoint {
            b = b.with_endpoint(ep).with_allow_http(ep.starts_with("http://"));
        }
        if let Some(k) = &args.s3_access_key_id {
            b = b.with_access_key_id(k);
        }
        if let Some(s) = &args.s3_secret_access_key {
            b = b.with_secret_access_key(s);
        }
        Ok(Blobs {
            store: Arc::new(b.build()?),
            describe: format!("s3:{bucket}").into(),
            shared: true,
        })
    }

    /// Which store this is, for logs and health (no credentials).
    pub fn describe(&self) -> &str {
        &self.describe
    }

    /// This store, marked shared (other processes with their own ingest store
    /// write to it too) or private.
    #[must_use]
    pub fn with_shared(mut self, shared: bool) -> Blobs {
        self.shared = shared;
        self
    }

    /// Whether processes that do not share this process's ingest store also
    /// write here, so no one of them knows every image that uses a blob. An
    /// unused-looking raw blob in a shared store must not be deleted.
    pub fn shared(&self) -> bool {
        self.shared
    }

    /// Streams `body` under `prefix/<sha256>`, hashing as it goes, failing with
    /// [`UploadError::TooLarge`] past `limit` bytes. Nothing is left behind on failure.
    ///
    /// A body of at most [`CHUNK`] bytes is hashed in memory before anything is
    /// written: bytes already stored are not written again, and new ones go in one
    /// atomic put. A larger body streams to `tmp/<uuid>` in parts and is then
    /// renamed to its key. Either way memory per upload stays bounded by one chunk.
    pub async fn put_stream<S, E>(&self, prefix: &str, body: S, limit: u64) -> Result<StoredBlob, UploadError>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        let mut head = Vec::new();
        let mut buffered: Vec<Bytes> = Vec::new();
        let mut streaming: Option<(Path, WriteMultipart)> = None;
        let mut body = body;
        let failure = loop {
            let chunk = match body.next().await {
                None => break None,
                Some(Ok(c)) => c,
                Some(Err(e)) => break Some(UploadError::Body(e.to_string())),
            };
            size += chunk.len() as u64;
            if size > limit {
                break Some(UploadError::TooLarge(limit));
            }
            if head.len() < SNIFF_BYTES {
                let take = (SNIFF_BYTES - head.len()).min(chunk.len());
                head.extend_from_slice(&chunk[..take]);
            }
            hasher.update(&chunk);
            let pending = if streaming.is_none() {
                buffered.push(chunk);
                if size <= CHUNK as u64 {
                    continue;
                }
                let tmp = Path::from(format!("tmp/{}", uuid::Uuid::new_v4()));
                match self.store.put_multipart(&tmp).await {
                    Ok(upload) => streaming = Some((tmp, WriteMultipart::new_with_chunk_size(upload, CHUNK))),
                    Err(e) => break Some(UploadError::Store(e.into())),
                }
                std::mem::take(&mut buffered)
            } else {
                vec![chunk]
            };
            let Some((_, writer)) = streaming.as_mut() else {
                unreachable!("streaming starts above")
            };
            if let Err(e) = writer.wait_for_capacity(4).await {
                break Some(UploadError::Store(e.into()));
            }
            pending.into_iter().for_each(|b| writer.put(b));
        };
        if let Some(e) = failure {
            if let Some((_, writer)) = streaming {
                let _ = writer.abort().await;
            }
            return Err(e);
        }
        let sha256 = hex::encode(hasher.finalize());
        let key = format!("{prefix}/{sha256}");
        match streaming {
            None => self.put_if_absent(&key, buffered.into_iter().collect()).await?,
            Some((tmp, writer)) => {
                writer.finish().await.map_err(Error::from)?;
                self.promote(&tmp, &Path::from(key.as_str())).await?;
            }
        }
        Ok(StoredBlob { key, sha256, size, head })
    }

    /// Moves a finished temporary blob to its content key. Content keys name
    /// their bytes, so replacing an existing copy changes nothing a reader sees.
    async fn promote(&self, tmp: &Path, key: &Path) -> Result<()> {
        if let Err(e) = self.store.rename(tmp, key).await {
            let _ = self.store.delete(tmp).await;
            return Err(e.into());
        }
        Ok(())
    }

    /// Writes `payload` at the content key `key` in one atomic put, unless it is
    /// already there (then nothing is written: no temporary file is created and
    /// deleted for bytes the store already has).
    async fn put_if_absent(&self, key: &str, payload: PutPayload) -> Result<()> {
        if self.exists(key).await? {
            return Ok(());
        }
        // Overwrite, not create-if-absent: a racing writer of the same key writes the same bytes,
        // and a plain put is atomic on every store (a rename locally, one PUT on S3).
        self.store.put(&Path::from(key), payload).await?;
        Ok(())
    }

    /// Stores `bytes` under `prefix/<sha256>` in one atomic put; returns the key and hash.
    pub async fn put_bytes(&self, prefix: &str, bytes: Bytes) -> Result<(String, String)> {
        let sha256 = sha256_hex(&bytes);
        let key = self.put_hashed(prefix, bytes, &sha256).await?;
        Ok((key, sha256))
    }

    /// Stores `bytes` under `prefix/<sha256>` in one atomic put, where `sha256` is
    /// [`sha256_hex`] of them, computed by the caller (the anonymizer hashes its output on
    /// the engine's pool, off the async threads); returns the key.
    pub async fn put_hashed(&self, prefix: &str, bytes: Bytes, sha256: &str) -> Result<String> {
        debug_assert_eq!(sha256, sha256_hex(&bytes), "a content key must name its bytes");
        let key = format!("{prefix}/{sha256}");
        self.put_if_absent(&key, PutPayload::from(bytes)).await?;
        Ok(key)
    }

    /// Stores `bytes` at `key`, replacing what is there: a blob that changes (a report's
    /// state), which content addressing cannot name.
    pub async fn put_at(&self, key: &str, bytes: Bytes) -> Result<()> {
        self.store.put(&Path::from(key), PutPayload::from(bytes)).await?;
        Ok(())
    }

    /// The whole blob at `key`.
    pub async fn get(&self, key: &str) -> Result<Bytes> {
        Ok(self.store.get(&Path::from(key)).await?.bytes().await?)
    }

    /// Bytes `range` (end exclusive) of the blob at `key`.
    pub async fn get_range(&self, key: &str, range: std::ops::Range<u64>) -> Result<Bytes> {
        Ok(self.store.get_range(&Path::from(key), range).await?)
    }

    /// Whether a blob exists at `key`.
    pub async fn exists(&self, key: &str) -> Result<bool> {
        match self.store.head(&Path::from(key)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes the blob at `key`; a missing blob is not an error.
    pub async fn delete(&self, key: &str) -> Result<()> {
        match self.store.delete(&Path::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Whether the store answers (a head on a key that need not exist).
    pub async fn health(&self) -> Result<()> {
        self.exists("health/probe").await.map(|_| ())
    }
}

/// The lowercase hex sha256 of `bytes`: the name of their content key.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(parts: Vec<&'static [u8]>) -> impl Stream<Item = std::result::Result<Bytes, String>> + Unpin {
        futures::stream::iter(parts.into_iter().map(|p| Ok(Bytes::from_static(p))))
    }

    #[tokio::test]
    async fn a_streamed_blob_is_keyed_by_its_sha256_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().expect("tmp");
        let blobs = Blobs::local(dir.path()).expect("local");
        let b = blobs.put_stream(RAW, chunks(vec![b"hello ", b"world"]), 100).await.expect("put");
        assert_eq!(b.sha256, hex::encode(Sha256::digest(b"hello world")));
        assert_eq!(b.key, format!("raw/{}", b.sha256));
        assert_eq!(b.size, 11);
        assert_eq!(blobs.get(&b.key).await.expect("get"), Bytes::from_static(b"hello world"));
        let again = blobs.put_stream(RAW, chunks(vec![b"hello world"]), 100).await.expect("put again");
        assert_eq!(again.key, b.key);
        let tmp = dir.path().join("tmp");
        assert!(
            !tmp.exists() || std::fs::read_dir(&tmp).expect("dir").next().is_none(),
            "a temporary blob was left"
        );
    }

    #[tokio::test]
    async fn an_oversized_or_broken_body_leaves_nothing() {
        let dir = tempfile::tempdir().expect("tmp");
        let blobs = Blobs::local(dir.path()).expect("local");
        let err = blobs
            .put_stream(RAW, chunks(vec![b"0123456789", b"abc"]), 12)
            .await
            .expect_err("too large");
        assert!(matches!(err, UploadError::TooLarge(12)));
        let broken = futures::stream::iter(vec![Ok(Bytes::from_static(b"abc")), Err("reset".to_owned())]);
        assert!(matches!(blobs.put_stream(RAW, broken, 100).await, Err(UploadError::Body(_))));
        let files: Vec<_> = walk(dir.path());
        assert!(files.is_empty(), "left behind: {files:?}");
    }

    #[tokio::test]
    async fn put_bytes_is_idempotent() {
        let dir = tempfile::tempdir().expect("tmp");
        let blobs = Blobs::local_with(dir.path(), true).expect("local, fsync");
        let (k1, _) = blobs.put_bytes(ANONYMIZED, Bytes::from_static(b"x")).await.expect("put");
        let (k2, _) = blobs.put_bytes(ANONYMIZED, Bytes::from_static(b"x")).await.expect("put");
        assert_eq!(k1, k2);
        assert!(blobs.exists(&k1).await.expect("head"));
        blobs.delete(&k1).await.expect("delete");
        assert!(!blobs.exists(&k1).await.expect("head"));
    }

    #[tokio::test]
    async fn a_body_over_one_chunk_streams_in_parts_and_lands_whole() {
        let dir = tempfile::tempdir().expect("tmp");
        let blobs = Blobs::local(dir.path()).expect("local");
        let part = vec![7u8; 1 << 20];
        let parts: Vec<std::result::Result<Bytes, String>> = (0..7).map(|_| Ok(Bytes::from(part.clone()))).collect();
        let whole: Vec<u8> = part.iter().copied().cycle().take(7 << 20).collect();
        let b = blobs.put_stream(RAW, futures::stream::iter(parts), 8 << 20).await.expect("put");
        assert_eq!(b.size, 7 << 20);
        assert_eq!(b.sha256, hex::encode(Sha256::digest(&whole)));
        assert_eq!(b.head.len(), SNIFF_BYTES);
        assert_eq!(blobs.get(&b.key).await.expect("get").len(), 7 << 20);
        assert_eq!(walk(dir.path()), vec![dir.path().join(&b.key)], "only the blob itself is left");
    }

    #[test]
    fn a_local_store_is_private_unless_flagged_and_an_s3_store_is_always_shared() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut args = BlobArgs::default();
        assert!(!Blobs::local(dir.path()).expect("local").shared());
        assert!(!Blobs::open(&args, dir.path(), false).expect("local").shared());
        args.shared = true;
        assert!(Blobs::open(&args, dir.path(), false).expect("local, flagged").shared());
        args.shared = false;
        args.s3_bucket = Some("alpes".into());
        args.s3_endpoint = Some("http://127.0.0.1:1".into());
        let s3 = Blobs::open(&args, dir.path(), false).expect("s3 (nothing is contacted)");
        assert!(s3.shared(), "{}", s3.describe());
    }

    fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).expect("dir").flatten() {
            if e.path().is_dir() {
                out.extend(walk(&e.path()));
            } else {
                out.push(e.path());
            }
        }
        out
    }
}
