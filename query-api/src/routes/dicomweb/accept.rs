//! The media ranges of an `Accept` header, as the DICOMweb routes read them:
//! lower-cased, quotes and spaces dropped, parameters by name. One parser for
//! WADO-RS instances (`transcode.rs`), frames and rendered images.

use axum::http::{header, HeaderMap};

/// One media range: `multipart/related; type="application/dicom"; transfer-syntax=*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaRange {
    /// The type and subtype (`multipart/related`).
    pub main: String,
    params: Vec<(String, String)>,
}

impl MediaRange {
    /// A parameter's value (`type`, `transfer-syntax`).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// The media ranges `headers` accept, in order; `None` without an `Accept`.
pub fn ranges(headers: &HeaderMap) -> Option<Vec<MediaRange>> {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok())?;
    Some(
        accept
            .split(',')
            .map(|range| {
                let range = range.trim().to_ascii_lowercase().replace(['"', ' '], "");
                let mut parts = range.split(';');
                let main = parts.next().unwrap_or_default().to_owned();
                let params = parts
                    .filter_map(|p| p.split_once('='))
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect();
                MediaRange { main, params }
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn ranges_are_read_with_their_parameters() {
        let mut h = HeaderMap::new();
        assert_eq!(ranges(&h), None);
        h.insert(
            header::ACCEPT,
            HeaderValue::from_static("Multipart/Related; type=\"application/dicom\"; transfer-syntax=*, image/png"),
        );
        let r = ranges(&h).expect("ranges");
        assert_eq!(
            (r[0].main.as_str(), r[0].param("type"), r[0].param("transfer-syntax")),
            ("multipart/related", Some("application/dicom"), Some("*"))
        );
        assert_eq!((r[1].main.as_str(), r[1].param("type")), ("image/png", None));
    }
}
