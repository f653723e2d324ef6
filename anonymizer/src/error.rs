//! The engine's one error type. Messages name offsets, tags and reasons, never values.

/// Everything that can go wrong while de-identifying one input.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
#[non_exhaustive]
pub enum Error {
    /// The input is not DICOM, PNG or JPEG.
    #[error("unrecognised input: not DICOM Part 10, a raw DICOM dataset, PNG or JPEG")]
    UnknownFormat,
    /// The input ends before a declared structure does.
    #[error("truncated input at byte {offset}: {what} needs {needed} bytes, {available} left")]
    Truncated {
        /// Byte offset where the structure starts.
        offset: usize,
        /// What was being read.
        what: &'static str,
        /// Bytes the structure declares.
        needed: u64,
        /// Bytes actually left.
        available: usize,
    },
    /// An explicit VR that is not one of the VRs of PS3.5.
    #[error("invalid value representation at byte {offset} for tag {tag}")]
    InvalidVr {
        /// Byte offset of the element header.
        offset: usize,
        /// The tag, formatted `(GGGG,EEEE)`.
        tag: String,
    },
    /// A structural violation of PS3.5 (bad delimiter, undefined length where none is allowed, ...).
    #[error("malformed dataset at byte {offset}: {reason}")]
    Malformed {
        /// Byte offset where the problem was found.
        offset: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// Sequences nested deeper than the configured limit.
    #[error("sequences nested deeper than {limit} levels")]
    TooDeep {
        /// The limit.
        limit: usize,
    },
    /// A transfer syntax Alpes does not read.
    #[error("unsupported transfer syntax {uid}")]
    UnsupportedTransferSyntax {
        /// The transfer syntax UID (a registered UID, never PHI).
        uid: String,
    },
    /// A deflated dataset that inflates past the configured limit.
    #[error("deflated dataset inflates past the limit of {limit} bytes")]
    InflateLimit {
        /// The limit in bytes.
        limit: u64,
    },
    /// An image that would decode past the configured limit (pixel data to burn, a PNG, a JPEG
    /// to burn); refused before it is decoded.
    #[error("the image would decode to {needed} bytes, past the limit of {limit}")]
    DecodeLimit {
        /// The bytes its header declares it decodes to.
        needed: u64,
        /// The limit in bytes.
        limit: u64,
    },
    /// The deflate stream is corrupt.
    #[error("corrupt deflate stream")]
    Inflate,
    /// The pixel attributes are inconsistent with the pixel data.
    #[error("pixel data does not match its attributes: {reason}")]
    PixelData {
        /// What does not match.
        reason: String,
    },
    /// Encapsulated pixel data could not be decoded, so regions could not be burned.
    #[error("cannot decode encapsulated pixel data ({transfer_syntax}) to burn regions: {reason}")]
    PixelDecode {
        /// Transfer syntax UID.
        transfer_syntax: String,
        /// The codec's reason.
        reason: String,
    },
    /// A PNG or JPEG image that cannot be decoded.
    #[error("cannot decode {format} image: {reason}")]
    Image {
        /// `PNG` or `JPEG`.
        format: &'static str,
        /// The decoder's reason.
        reason: String,
    },
    /// A rule library that does not parse.
    #[error("rule library line {line}: {reason}")]
    Rules {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// The text recognizer could not run (its library or language data is missing).
    #[error("the burned-in text detector could not run: {reason}")]
    Ocr {
        /// What failed (a fixed text, never image content).
        reason: String,
    },
    /// A region that cannot be parsed.
    #[error("invalid region {text:?}: expected x,y,w,h with non-negative integers")]
    Region {
        /// The text given.
        text: String,
    },
}

impl Error {
    /// A short stable code for the error kind, for reports, metrics and rejected events.
    pub fn code(&self) -> &'static str {
        match self {
            Error::UnknownFormat => "unknown_format",
            Error::Truncated { .. } => "truncated",
            Error::InvalidVr { .. } => "invalid_vr",
            Error::Malformed { .. } => "malformed",
            Error::TooDeep { .. } => "too_deep",
            Error::UnsupportedTransferSyntax { .. } => "unsupported_transfer_syntax",
            Error::InflateLimit { .. } => "inflate_limit",
            Error::DecodeLimit { .. } => "decode_limit",
            Error::Inflate => "inflate",
            Error::PixelData { .. } => "pixel_data",
            Error::PixelDecode { .. } => "pixel_decode",
            Error::Image { .. } => "image",
            Error::Rules { .. } => "rules",
            Error::Region { .. } => "region",
            Error::Ocr { .. } => "ocr",
        }
    }
}

/// The engine's result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Formats a tag as `(GGGG,EEEE)`.
pub fn fmt_tag(tag: u32) -> String {
    format!("({:04X},{:04X})", tag >> 16, tag & 0xFFFF)
}
