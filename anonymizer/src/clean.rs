//! The Clean Descriptors cleaner: keeps only allow-listed tokens of free text.
//!
//! Free text cannot be proven free of PHI by looking for PHI, so the cleaner
//! works the other way round: a descriptor keeps only tokens from a shipped
//! vocabulary of imaging terms (`data/descriptor-safe-words.txt`) and short
//! numbers with optional units. Names, addresses, identifiers and dates are
//! never on that list, so they never survive.

use std::collections::HashSet;
use std::sync::OnceLock;

fn vocabulary() -> &'static HashSet<&'static str> {
    static WORDS: OnceLock<HashSet<&'static str>> = OnceLock::new();
    WORDS.get_or_init(|| {
        include_str!("../data/descriptor-safe-words.txt")
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .flat_map(str::split_whitespace)
            .collect()
    })
}

/// Whether a single token (letters, digits, `/`) may stay in a cleaned descriptor.
fn token_is_safe(token: &str) -> bool {
    let lower = token.to_ascii_lowercase();
    if vocabulary().contains(lower.as_str()) {
        return true;
    }
    // Short numbers, optionally with a short unit or prefix: "5", "2.5mm", "3d", "t1", "120kv".
    let digits = lower.bytes().filter(u8::is_ascii_digit).count();
    let letters = lower.bytes().filter(u8::is_ascii_alphabetic).count();
    digits > 0 && digits <= 3 && letters <= 3 && lower.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.')
}

/// Blanks digit groups joined by `-`, `/`, `.` or `:` (dates, times, phone numbers, versions),
/// so their short parts cannot survive one by one.
fn blank_joined_numbers(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = b.to_vec();
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        let mut groups = 0;
        let mut end;
        let mut j = i;
        loop {
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            groups += 1;
            end = j;
            if j + 1 < b.len() && matches!(b[j], b'-' | b'/' | b'.' | b':') && b[j + 1].is_ascii_digit() {
                j += 1;
            } else {
                break;
            }
        }
        if groups > 2 || (groups == 2 && !b[start..end].contains(&b'.')) {
            out[start..end].fill(b' ');
        }
        i = end.max(i + 1);
    }
    String::from_utf8(out).unwrap_or_default()
}

/// Cleans a descriptor: unsafe tokens are dropped, separators between kept tokens are kept.
pub fn clean_text(text: &str) -> String {
    let text = blank_joined_numbers(text);
    let text = text.as_str();
    let mut out = String::with_capacity(text.len());
    let mut pending_sep = String::new();
    for piece in text.split_inclusive(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '/')) {
        let (token, sep) = match piece.char_indices().last() {
            Some((i, c)) if !(c.is_ascii_alphanumeric() || c == '.' || c == '/') => (&piece[..i], &piece[i..]),
            _ => (piece, ""),
        };
        if !token.is_empty() && token_is_safe(token) {
            if !out.is_empty() {
                out.push_str(if pending_sep.is_empty() { " " } else { &pending_sep });
            }
            out.push_str(token);
            pending_sep.clear();
        }
        if !sep.is_empty() && pending_sep.len() < 4 && !sep.chars().any(|c| c.is_control()) {
            // Keep the separator that followed the last kept token (space, '-', '_', '^', '\\').
            pending_sep = sep.to_owned();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imaging_descriptors_survive_cleaning() {
        assert_eq!(clean_text("CT HEAD W/O CONTRAST"), "CT HEAD W/O CONTRAST");
        assert_eq!(clean_text("AX T1 POST 5mm"), "AX T1 POST 5mm");
    }

    #[test]
    fn names_ids_and_dates_never_survive_cleaning() {
        let out = clean_text("Seen by Dr. John Smith MRN 12345678 on 2020-01-05 at St Mary Hospital");
        for bad in ["John", "Smith", "12345678", "Mary", "Hospital", "2020"] {
            assert!(!out.contains(bad), "{bad} survived in {out:?}");
        }
        assert!(!out.contains("01") && !out.contains("05"), "{out:?}");
    }

    #[test]
    fn empty_and_all_unsafe_text_clean_to_empty() {
        assert_eq!(clean_text(""), "");
        assert_eq!(clean_text("JOHN^DOE"), "");
    }
}
