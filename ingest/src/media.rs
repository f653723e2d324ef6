//! What an upload is: its declared media type checked against its first bytes.

use alpes_anonymizer::probe::{self, MediaKind, Probe};
use alpes_platform::http::ApiError;

/// The declared type of a body or part, from its Content-Type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Declared {
    /// `application/dicom`.
    Dicom,
    /// `image/png`.
    Png,
    /// `image/jpeg`.
    Jpeg,
    /// No type, or `application/octet-stream`: decided by the bytes.
    Unspecified,
}

/// Parses a Content-Type into a [`Declared`] type; 415 for anything else.
pub fn declared(content_type: Option<&str>) -> Result<Declared, ApiError> {
    let Some(ct) = content_type.map(str::trim).filter(|c| !c.is_empty()) else {
        return Ok(Declared::Unspecified);
    };
    let essence = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    match essence.as_str() {
        "application/dicom" => Ok(Declared::Dicom),
        "image/png" => Ok(Declared::Png),
        "image/jpeg" | "image/jpg" => Ok(Declared::Jpeg),
        "application/octet-stream" => Ok(Declared::Unspecified),
        _ => Err(ApiError::unsupported_media(format!(
            "media type {essence:?} is not accepted; send application/dicom, image/png or image/jpeg"
        ))),
    }
}

/// Checks the first bytes against the declared type. DICOM that no reader can
/// make sense of is 400 with the reason; bytes of another kind are 415.
pub fn check(declared: Declared, head: &[u8]) -> Result<(MediaKind, Probe), ApiError> {
    let sniffed = probe::sniff(head);
    let kind = match (declared, sniffed) {
        (Declared::Dicom, _) => MediaKind::Dicom,
        (Declared::Png, Some(MediaKind::Png)) => MediaKind::Png,
        (Declared::Jpeg, Some(MediaKind::Jpeg)) => MediaKind::Jpeg,
        (Declared::Unspecified, Some(k)) => k,
        (Declared::Png | Declared::Jpeg, _) => {
            return Err(ApiError::unsupported_media("the bytes are not the declared image type"));
        }
        (Declared::Unspecified, None) => {
            return Err(ApiError::unsupported_media("the bytes are not DICOM, PNG or JPEG"));
        }
    };
    if kind != MediaKind::Dicom {
        return Ok((kind, Probe::default()));
    }
    probe::dicom(head)
        .map(|p| (kind, p))
        .map_err(|e| ApiError::bad_request("unreadable_dicom", format!("the DICOM file cannot be read: {}", e.code())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_media_types_are_415_and_parameters_are_ignored() {
        assert_eq!(
            declared(Some("application/dicom; transfer-syntax=1.2.840.10008.1.2.1")).expect("ok"),
            Declared::Dicom
        );
        assert_eq!(declared(None).expect("ok"), Declared::Unspecified);
        assert_eq!(declared(Some("text/plain")).expect_err("415").status.as_u16(), 415);
    }

    #[test]
    fn garbage_declared_as_dicom_is_400_and_undeclared_garbage_is_415() {
        assert_eq!(
            check(Declared::Dicom, b"not a dicom file at all........")
                .expect_err("400")
                .status
                .as_u16(),
            400
        );
        assert_eq!(
            check(Declared::Unspecified, b"GIF89a........").expect_err("415").status.as_u16(),
            415
        );
        let png = [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 0];
        assert_eq!(check(Declared::Unspecified, &png).expect("png").0, MediaKind::Png);
        assert_eq!(check(Declared::Jpeg, &png).expect_err("mismatch").status.as_u16(), 415);
    }
}
