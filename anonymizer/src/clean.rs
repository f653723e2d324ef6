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
pub(crate) fn token_is_safe(token: &str) -> bool {
    let lower = token.to_ascii_lowercase();
    if vocabulary().contains(lower.as_str()) {
        return true;
    }
    // A short number, optionally followed by a unit: "5", "2.5mm", "120kv". Letters anywhere
    // else ("JS123", "AB12") could be initials or an identifier, so they do not pass.
    let split = lower.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(lower.len());
    let (number, unit) = lower.split_at(split);
    let digits = number.bytes().filter(u8::is_ascii_digit).count();
    const UNITS: &[&str] = &[
        "", "mm", "cm", "ml", "cc", "kv", "kvp", "ma", "mas", "ms", "s", "sec", "min", "d", "x", "t", "hz", "khz", "mhz",
    ];
    (1..=3).contains(&digits) && number.bytes().all(|b| b.is_ascii_digit() || b == b'.') && UNITS.contains(&unit)
}

/// Blanks digit groups joined by `-`, `/`, `.`, `:`, `,`, `_` or a space (dates, times, phone
/// numbers, record numbers written in groups), so their short parts cannot survive one by one.
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
            if j + 1 < b.len() && matches!(b[j], b'-' | b'/' | b'.' | b':' | b',' | b'_' | b' ') && b[j + 1].is_ascii_digit() {
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
    fn identifiers_written_in_groups_or_mixed_with_letters_never_survive() {
        for text in [
            "MRN 123 456 789",
            "ID 12,345,678",
            "pt 123_456_789",
            "DOB 12 03 1965",
            "SSN 123 45 6789",
            "CT HEAD JS123 AB12",
        ] {
            let out = clean_text(text);
            assert!(!out.bytes().any(|b| b.is_ascii_digit()), "{text:?} -> {out:?}");
        }
        assert_eq!(clean_text("CT HEAD 5mm 120kv"), "CT HEAD 5mm 120kv");
    }

    #[test]
    fn empty_and_all_unsafe_text_clean_to_empty() {
        assert_eq!(clean_text(""), "");
        assert_eq!(clean_text("JOHN^DOE"), "");
    }
}
