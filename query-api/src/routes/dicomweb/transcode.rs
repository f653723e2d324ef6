//! Transfer syntax negotiation for WADO-RS instances (PS3.18 §8.7.3): which
//! syntaxes an `Accept` allows `application/dicom` in, and the stored
//! instance in one of them, transcoded by dicom-rs where it was stored in
//! another and an encoder exists (406 where none does).
//!
//! - No `Accept`, `*/*`, `multipart/*` or `transfer-syntax=*`: as stored.
//! - `multipart/related; type="application/dicom"` without a
//!   `transfer-syntax`: the standard's default, Explicit VR Little Endian, so
//!   compressed pixel data is decoded (what dicomweb-client asks by default).
//! - A list of syntaxes: the stored one if listed, else the first one the
//!   instance can be transcoded to.

use alpes_platform::http::ApiError;
use axum::http::{HeaderMap, StatusCode};
use bytes::Bytes;
use dicom_encoding::TransferSyntaxIndex;
use dicom_object::meta::FileMetaTable;
use dicom_object::OpenFileOptions;
use dicom_pixeldata::Transcode;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;

/// Explicit VR Little Endian: PS3.18's default for `application/dicom`.
pub const EXPLICIT_LE: &str = "1.2.840.10008.1.2.1";

/// The syntaxes an `Accept` allows instances in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wanted {
    /// Any: each instance as it is stored.
    AsStored,
    /// These, in the order asked.
    Syntaxes(Vec<String>),
}

/// One instance as served: its bytes and the transfer syntax they are in.
#[derive(Debug, Clone)]
pub struct Instance {
    /// The Part 10 file.
    pub bytes: Bytes,
    /// Its transfer syntax UID.
    pub transfer_syntax: String,
}

impl super::wado::Served for Instance {
    fn bytes_served(&self) -> u64 {
        self.bytes.len() as u64
    }
}

fn not_acceptable(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::NOT_ACCEPTABLE, "not_acceptable", message)
}

/// What `headers` ask of instances; 406 when their `Accept` allows no `application/dicom`.
pub fn wanted(headers: &HeaderMap) -> Result<Wanted, ApiError> {
    let Some(ranges) = super::accept::ranges(headers) else {
        return Ok(Wanted::AsStored);
    };
    let mut syntaxes = Vec::new();
    for range in ranges {
        match range.main.as_str() {
            "*/*" | "multipart/*" => return Ok(Wanted::AsStored),
            "multipart/related" if range.param("type").is_none_or(|t| t == "application/dicom") => match range.param("transfer-syntax") {
                Some("*") => return Ok(Wanted::AsStored),
                Some(ts) => syntaxes.push(ts.to_owned()),
                None => syntaxes.push(EXPLICIT_LE.to_owned()),
            },
            _ => {}
        }
    }
    if syntaxes.is_empty() {
        return Err(not_acceptable(
            "instances are served as multipart/related; type=\"application/dicom\" (with a transfer-syntax, or *)",
        ));
    }
    Ok(Wanted::Syntaxes(syntaxes))
}

/// The transfer syntax of a stored Part 10 blob.
fn stored_syntax(blob: &[u8]) -> Result<String, ApiError> {
    let meta = blob
        .get(128..132)
        .filter(|magic| *magic == b"DICM")
        .and_then(|_| FileMetaTable::from_reader(&blob[128..]).ok())
        .ok_or_else(|| ApiError::internal(&"a stored anonymized blob has no file meta"))?;
    Ok(meta.transfer_syntax().trim_end_matches('\0').to_owned())
}

/// The stored instance `blob` in a syntax `wanted` allows: as stored when it may be, else
/// transcoded to the first one asked that dicom-rs can produce from it; 406 when none.
pub fn in_syntax(blob: Bytes, wanted: &Wanted) -> Result<Instance, ApiError> {
    let stored = stored_syntax(&blob)?;
    let asked = match wanted {
        Wanted::Syntaxes(asked) if !asked.contains(&stored) => asked,
        _ => {
            return Ok(Instance {
                bytes: blob,
                transfer_syntax: stored,
            })
        }
    };
    for uid in asked {
        let Some(ts) = TransferSyntaxRegistry.get(uid) else { continue };
        let Ok(mut obj) = OpenFileOptions::new().from_reader(&blob[..]) else {
            return Err(ApiError::internal(&"a stored anonymized blob does not parse as DICOM"));
        };
        if obj.transcode(ts).is_err() {
            continue;
        }
        let mut out = Vec::with_capacity(blob.len());
        if obj.write_all(&mut out).is_ok() {
            return Ok(Instance {
                bytes: out.into(),
                transfer_syntax: uid.clone(),
            });
        }
    }
    Err(not_acceptable(format!(
        "this instance is stored as {stored} and cannot be transcoded to {} here",
        asked.join(", ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{header, HeaderValue};

    fn accept(v: &str) -> Result<Wanted, ApiError> {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_str(v).expect("header"));
        wanted(&h)
    }

    #[test]
    fn an_accept_asks_as_stored_the_default_syntax_or_a_list() {
        assert_eq!(wanted(&HeaderMap::new()).expect("ok"), Wanted::AsStored);
        assert_eq!(accept("*/*").expect("ok"), Wanted::AsStored);
        assert_eq!(
            accept("multipart/related; type=\"application/dicom\"; transfer-syntax=*").expect("ok"),
            Wanted::AsStored
        );
        assert_eq!(
            accept("multipart/related; type=\"application/dicom\"").expect("ok"),
            Wanted::Syntaxes(vec![EXPLICIT_LE.into()])
        );
        assert_eq!(
            accept(
                "multipart/related; type=\"application/dicom\"; transfer-syntax=1.2.840.10008.1.2.4.80, \
                 multipart/related; type=\"application/dicom\"; transfer-syntax=1.2.840.10008.1.2"
            )
            .expect("ok"),
            Wanted::Syntaxes(vec!["1.2.840.10008.1.2.4.80".into(), "1.2.840.10008.1.2".into()])
        );
        for refused in [
            "application/json",
            "application/dicom+json",
            "multipart/related; type=\"image/jpeg\"",
        ] {
            assert_eq!(accept(refused).expect_err(refused).status, StatusCode::NOT_ACCEPTABLE);
        }
    }
}
