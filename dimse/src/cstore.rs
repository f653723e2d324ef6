//! One C-STORE: the data set's fragments stream into the raw blob store
//! behind a file meta group Alpes writes (the command's SOP class and
//! instance, the presentation context's transfer syntax; not the calling AE,
//! so that one instance sent by two AE titles of a provider is one image),
//! and the stored instance is registered
//! the way every upload is ([`alpes_ingest::register`]): idempotent by
//! provider and sha256, answered as success only once the blob is stored and
//! `ImagenRegistrada` acknowledged. Anything else answers a DIMSE failure
//! status and leaves nothing behind.
//!
//! Memory per instance stays bounded: the fragments go through a channel of
//! [`IN_FLIGHT`] PDUs, and the blob store holds at most one chunk.

use crate::command::{Command, CANNOT_UNDERSTAND, DATA_SET_MISMATCH, OUT_OF_RESOURCES, SUCCESS};
use alpes_anonymizer::probe::{self, MediaKind};
use alpes_anonymizer::write::{file_meta, Meta};
use alpes_ingest::profile::UploadMeta;
use alpes_ingest::register::{forget_blob, register, Source};
use alpes_ingest::IngestState;
use alpes_platform::audit::RequestContext;
use alpes_platform::blobs::{StoredBlob, UploadError, RAW};
use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// PDUs of one instance waiting for the blob store.
pub const IN_FLIGHT: usize = 8;

/// What a C-STORE ended as: the status answered, a fixed comment (never PHI)
/// and the metric outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// The DIMSE status.
    pub status: u16,
    /// The Error Comment (failures only).
    pub comment: Option<&'static str>,
    /// The `alpes_dimse_operations_total` outcome.
    pub outcome: &'static str,
    /// A new image: its id and its StudyInstanceUID as sent, when the first bytes hold it (for
    /// the stable-study tracker only).
    pub new_image: Option<(String, Option<String>)>,
}

impl Stored {
    const fn failed(status: u16, comment: &'static str, outcome: &'static str) -> Stored {
        Stored {
            status,
            comment: Some(comment),
            outcome,
            new_image: None,
        }
    }
}

/// The Implementation Version Name of the file meta group the listener writes. Fixed, not the
/// crate's version: the group is part of the stored bytes, whose sha256 makes a resent instance
/// a duplicate, across upgrades too.
pub const VERSION_NAME: &str = "ALPES_DIMSE";

/// What goes on the channel to the blob store: a fragment, or the end of the data set.
enum Piece {
    Fragment(Bytes),
    End,
}

/// A data set on its way to the blob store. Only [`Incoming::finish`] ends it: if the
/// association goes away first (dropped, aborted, cut at shutdown), the channel closes without
/// its end and the blob store keeps nothing.
#[derive(Debug)]
pub struct Incoming {
    tx: mpsc::Sender<Piece>,
    task: JoinHandle<Result<StoredBlob, UploadError>>,
}

impl std::fmt::Debug for Piece {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Piece::Fragment(_) => "Fragment",
            Piece::End => "End",
        })
    }
}

/// The start of the stored file: the preamble and the file meta group for `cmd`'s instance.
pub fn head(cmd: &Command, transfer_syntax: &str) -> Vec<u8> {
    let mut head = Vec::with_capacity(512);
    let meta = Meta {
        sop_class: &cmd.sop_class,
        sop_instance: &cmd.sop_instance,
        transfer_syntax,
    };
    file_meta(&meta, VERSION_NAME, &mut head);
    head
}

impl Incoming {
    /// Starts storing the instance `cmd` announces, in `transfer_syntax`.
    pub fn start(state: &IngestState, cmd: &Command, transfer_syntax: &str) -> Incoming {
        let head = head(cmd, transfer_syntax);
        let (tx, rx) = mpsc::channel::<Piece>(IN_FLIGHT);
        let rest = futures::stream::unfold((rx, false), |(mut rx, ended)| async move {
            if ended {
                return None;
            }
            match rx.recv().await {
                Some(Piece::Fragment(b)) => Some((Ok(b), (rx, false))),
                Some(Piece::End) => None,
                // Closed without its end: an error, so nothing is kept.
                None => Some((Err("the association ended before the data set did"), (rx, true))),
            }
        });
        let body = futures::stream::once(async move { Ok(Bytes::from(head)) }).chain(rest);
        let (blobs, limit) = (state.blobs.clone(), state.max_upload);
        let task = tokio::spawn(async move { blobs.put_stream(RAW, Box::pin(body), limit).await });
        Incoming { tx, task }
    }

    /// Hands one fragment to the blob store, waiting while it is behind.
    pub async fn push(&mut self, fragment: Vec<u8>) {
        // A closed channel means the store already failed: `finish` reports it.
        let _ = self.tx.send(Piece::Fragment(Bytes::from(fragment))).await;
    }

    /// The last fragment was pushed: the stored blob, or why not.
    pub async fn finish(self) -> Result<StoredBlob, UploadError> {
        let _ = self.tx.send(Piece::End).await;
        drop(self.tx);
        match self.task.await {
            Ok(r) => r,
            Err(e) => Err(UploadError::Body(format!("the blob task ended: {e}"))),
        }
    }

    /// The association ended mid-instance: nothing is kept (waits for the store to discard it).
    pub async fn abandon(self) {
        drop(self.tx);
        let _ = self.task.await;
    }
}

/// Registers a stored instance for `provider` and says what to answer.
pub async fn complete(state: &IngestState, provider: &str, cmd: &Command, stored: Result<StoredBlob, UploadError>) -> Stored {
    let blob = match stored {
        Ok(b) => b,
        Err(UploadError::TooLarge(_)) => return Stored::failed(CANNOT_UNDERSTAND, "instance over the size limit", "too_large"),
        Err(UploadError::Body(_)) => return Stored::failed(CANNOT_UNDERSTAND, "data set incomplete", "incomplete"),
        Err(UploadError::Store(e)) => {
            tracing::error!(error = %e, "the blob store failed a C-STORE");
            return Stored::failed(OUT_OF_RESOURCES, "storage unavailable, try again", "unavailable");
        }
    };
    let probed = match probe::dicom(&blob.head) {
        Ok(p) if probe::sniff(&blob.head) == Some(MediaKind::Dicom) => p,
        _ => {
            forget_blob(state, &blob).await;
            return Stored::failed(CANNOT_UNDERSTAND, "data set cannot be read", "unreadable");
        }
    };
    let differs = |found: Option<&str>, said: &str| found.is_some_and(|f| f.trim_end_matches(['\0', ' ']) != said);
    if differs(probed.sop_class_uid.as_deref(), &cmd.sop_class) || differs(probed.sop_instance_uid.as_deref(), &cmd.sop_instance) {
        forget_blob(state, &blob).await;
        return Stored::failed(DATA_SET_MISMATCH, "data set does not match the command", "mismatch");
    }
    let ctx = RequestContext::default();
    match register(
        state,
        &ctx,
        provider,
        (&blob, MediaKind::Dicom),
        &UploadMeta::default(),
        None,
        Source::Dimse,
    )
    .await
    {
        Ok(r) if r.duplicate => Stored {
            status: SUCCESS,
            comment: None,
            outcome: "duplicate",
            new_image: None,
        },
        Ok(r) => Stored {
            status: SUCCESS,
            comment: None,
            outcome: "stored",
            new_image: Some((r.id, probed.study_instance_uid)),
        },
        Err(e) => {
            tracing::warn!(code = %e.code, status = e.status.as_u16(), "a C-STORE was not registered");
            Stored::failed(OUT_OF_RESOURCES, "not registered, try again", "unavailable")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stored_head_names_the_instance_and_syntax_and_never_the_build() {
        let cmd = Command {
            field: crate::command::C_STORE_RQ,
            message_id: 1,
            sop_class: "1.2.840.10008.5.1.4.1.1.2".into(),
            sop_instance: "1.2.3.4".into(),
            has_data_set: true,
            status: None,
        };
        let a = head(&cmd, "1.2.840.10008.1.2.1");
        assert_eq!(a, head(&cmd, "1.2.840.10008.1.2.1"), "the same instance, the same bytes");
        assert_eq!(&a[128..132], b"DICM");
        let text = String::from_utf8_lossy(&a);
        assert!(text.contains("1.2.3.4") && text.contains("1.2.840.10008.1.2.1") && text.contains(VERSION_NAME));
        assert!(
            !text.contains(env!("CARGO_PKG_VERSION")),
            "an upgrade must not change a resent instance's bytes"
        );
    }
}
