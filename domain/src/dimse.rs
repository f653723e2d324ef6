//! The DICOM network listener's rules: what an Application Entity title is
//! (PS3.5 §6.2, VR AE), and which provider a calling AE title's images belong
//! to. The mapping is kept by the ingest store ([`crate::ingest::IngestStore`]).

/// The longest AE title, in characters (PS3.5 Table 6.2-1: 16 bytes).
pub const MAX_AE_CHARS: usize = 16;

/// A calling AE title mapped to the provider whose images it sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallingAe {
    /// The AE title, as [`ae_title`] normalizes it.
    pub ae_title: String,
    /// The provider (user id) its images belong to.
    pub provider_id: String,
    /// When the mapping was last set (ms).
    pub updated_at: i64,
}

/// Why a text is not an AE title.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BadAeTitle {
    /// Only spaces, or nothing.
    #[error("an AE title needs at least one character other than a space")]
    Empty,
    /// More than [`MAX_AE_CHARS`] characters once trimmed.
    #[error("an AE title has at most 16 characters")]
    TooLong,
    /// A backslash, a control character or a character outside ASCII.
    #[error("an AE title takes printable ASCII characters other than the backslash")]
    BadCharacter,
}

/// Normalizes an AE title as the standard compares them: leading and
/// trailing spaces are not significant (nor the NUL padding some senders
/// leave); what remains has 1 to 16 characters of the default repertoire
/// without the backslash or control characters. Case is significant.
pub fn ae_title(text: &str) -> Result<String, BadAeTitle> {
    let t = text.trim_matches(|c| c == ' ' || c == '\0');
    if t.is_empty() {
        return Err(BadAeTitle::Empty);
    }
    if t.chars().any(|c| !(' '..='~').contains(&c) || c == '\\') {
        return Err(BadAeTitle::BadCharacter);
    }
    if t.len() > MAX_AE_CHARS {
        return Err(BadAeTitle::TooLong);
    }
    Ok(t.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ae_title_is_trimmed_of_spaces_and_padding_and_keeps_its_case() {
        assert_eq!(ae_title("  CT_SCANNER_1 ").as_deref(), Ok("CT_SCANNER_1"));
        assert_eq!(ae_title("storescu\0").as_deref(), Ok("storescu"));
        assert_eq!(ae_title("A B").as_deref(), Ok("A B"));
        assert_eq!(ae_title(&"X".repeat(16)).map(|s| s.len()), Ok(16));
    }

    #[test]
    fn an_ae_title_refuses_nothing_too_much_and_what_the_vr_forbids() {
        assert_eq!(ae_title("   "), Err(BadAeTitle::Empty));
        assert_eq!(ae_title(""), Err(BadAeTitle::Empty));
        assert_eq!(ae_title(&"X".repeat(17)), Err(BadAeTitle::TooLong));
        for bad in ["A\\B", "A\nB", "A\u{1b}B", "ÁLPES"] {
            assert_eq!(ae_title(bad), Err(BadAeTitle::BadCharacter), "{bad:?}");
        }
    }
}
