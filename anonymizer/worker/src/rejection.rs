//! Why an image is rejected: a stable reason code plus an operator message built only from fixed
//! texts, codes, offsets and tag numbers. The engine's own `Display` is used only for the error
//! kinds whose fields are all structural; anything that could echo a value read from the input
//! (an unknown transfer syntax UID, a codec's free-form reason) is replaced by fixed text.

use alpes_anonymizer::Error as EngineError;

/// A rejected input: the `ImagenRechazada.reason` code and `message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// A stable, machine-readable code (an engine `code()`, a codec `reason()`, `"bad_profile"`,
    /// `"blob_missing"` or `"engine_panic"`).
    pub reason: &'static str,
    /// Fixed text, codes and ids only.
    pub message: String,
}

impl Rejection {
    /// A rejection with a fixed message.
    pub fn fixed(reason: &'static str, message: &'static str) -> Self {
        Rejection {
            reason,
            message: message.to_owned(),
        }
    }

    /// The raw blob the event names is not in the store.
    pub fn blob_missing() -> Self {
        Rejection::fixed("blob_missing", "the raw blob named by the event is not in the blob store")
    }

    /// The safety net still read PHI in the output after blanking: the image is held back.
    pub fn residual_text() -> Self {
        Rejection::fixed(
            crate::events::RESIDUAL_TEXT,
            "text that reads as PHI is still in the pixels after the safety net blanked them; the image is held back (re-run it with an explicit region or ocr=all-text)",
        )
    }

    /// The engine panicked on this input (a bug in the engine, caught on the pool).
    pub fn engine_panic() -> Self {
        Rejection::fixed("engine_panic", "the engine failed unexpectedly on this input")
    }

    /// A codec error on a consumed record (poison): the codec's texts are fixed and name at most
    /// a schema fingerprint or record name, never payload bytes.
    pub fn poison(err: &alpes_schemas::Error) -> Self {
        Rejection {
            reason: err.reason(),
            message: format!("undecodable record: {err}"),
        }
    }

    /// An engine error, without any value from the input.
    pub fn engine(err: &EngineError) -> Self {
        Rejection {
            reason: err.code(),
            message: engine_message(err),
        }
    }
}

/// The root of UIDs registered by DICOM itself: a transfer syntax under it is not PHI.
const DICOM_ROOT: &str = "1.2.840.10008.";

/// A transfer syntax UID when it is a well-formed DICOM-registered UID, else nothing.
fn registered_uid(uid: &str) -> Option<&str> {
    let well_formed = uid.len() <= 64 && uid.starts_with(DICOM_ROOT) && uid.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    well_formed.then_some(uid)
}

fn engine_message(err: &EngineError) -> String {
    match err {
        // Offsets, lengths, static names and tag numbers only.
        EngineError::UnknownFormat
        | EngineError::Truncated { .. }
        | EngineError::InvalidVr { .. }
        | EngineError::Malformed { .. }
        | EngineError::TooDeep { .. }
        | EngineError::InflateLimit { .. }
        | EngineError::DecodeLimit { .. }
        | EngineError::Inflate => err.to_string(),
        EngineError::UnsupportedTransferSyntax { uid } => match registered_uid(uid) {
            Some(uid) => format!("unsupported transfer syntax {uid}"),
            None => "unsupported transfer syntax (not a DICOM-registered UID)".to_owned(),
        },
        EngineError::PixelData { .. } => "pixel data does not match its attributes".to_owned(),
        EngineError::PixelDecode { transfer_syntax, .. } => match registered_uid(transfer_syntax) {
            Some(uid) => format!("cannot decode encapsulated pixel data ({uid}) to burn regions"),
            None => "cannot decode encapsulated pixel data to burn regions".to_owned(),
        },
        EngineError::Image { format, .. } => format!("cannot decode {format} image"),
        EngineError::Rules { line, .. } => format!("rule library line {line} does not parse"),
        EngineError::Region { .. } => "invalid region: expected x,y,w,h with non-negative integers".to_owned(),
        other => format!("the engine refused the input ({})", other.code()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structural_engine_errors_keep_their_offsets() {
        let r = Rejection::engine(&EngineError::Truncated {
            offset: 132,
            what: "element value",
            needed: 10,
            available: 2,
        });
        assert_eq!(r.reason, "truncated");
        assert!(r.message.contains("132"), "{}", r.message);
    }

    #[test]
    fn an_unknown_transfer_syntax_uid_never_reaches_the_message() {
        let r = Rejection::engine(&EngineError::UnsupportedTransferSyntax {
            uid: "DOE^JANE 19800101".into(),
        });
        assert_eq!(r.reason, "unsupported_transfer_syntax");
        assert!(!r.message.contains("DOE"), "{}", r.message);
        let r = Rejection::engine(&EngineError::UnsupportedTransferSyntax {
            uid: "1.2.840.10008.1.2.4.100".into(),
        });
        assert!(r.message.ends_with("1.2.840.10008.1.2.4.100"), "{}", r.message);
    }

    #[test]
    fn free_form_codec_reasons_are_replaced_by_fixed_text() {
        let r = Rejection::engine(&EngineError::Image {
            format: "PNG",
            reason: "chunk says SMITH^JOHN".into(),
        });
        assert_eq!(r.reason, "image");
        assert_eq!(r.message, "cannot decode PNG image");
        let r = Rejection::engine(&EngineError::PixelData { reason: "SMITH".into() });
        assert!(!r.message.contains("SMITH"));
        let r = Rejection::engine(&EngineError::PixelDecode {
            transfer_syntax: "SMITH".into(),
            reason: "SMITH".into(),
        });
        assert!(!r.message.contains("SMITH"));
    }

    #[test]
    fn a_poison_record_keeps_the_codec_reason() {
        let r = Rejection::poison(&alpes_schemas::Error::NotAvro("no header"));
        assert_eq!(r.reason, "not_avro");
        assert!(r.message.contains("no header"));
    }
}
