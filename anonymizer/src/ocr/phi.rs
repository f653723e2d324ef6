//! What `phi` mode blanks: a line that names the header's patient, ids, dates, people or
//! institution, or that holds anything but imaging vocabulary (the Clean Descriptors allow-list,
//! [`crate::clean`]), since a name, an id or a date is never on that list. The header's values are
//! read before de-identification and kept only in memory, for the one image.

use crate::clean::token_is_safe;
use crate::dataset::DataSet;

/// Header attributes whose values, read in an image's pixels, are PHI.
const IDENTIFYING: [u32; 11] = [
    0x0010_0010, // PatientName
    0x0010_0020, // PatientID
    0x0010_1000, // OtherPatientIDs
    0x0010_0030, // PatientBirthDate
    0x0008_0050, // AccessionNumber
    0x0008_0080, // InstitutionName
    0x0008_0090, // ReferringPhysicianName
    0x0008_1050, // PerformingPhysicianName
    0x0008_1070, // OperatorsName
    0x0020_0010, // StudyID
    0x0008_0020, // StudyDate
];

/// The header's identifying words, upper-case letters and digits only, at least 2 long.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Terms(Vec<String>);

impl Terms {
    /// Reads the identifying attributes of a dataset (before it is de-identified).
    pub fn of(ds: &DataSet<'_>) -> Terms {
        let mut words: Vec<String> = IDENTIFYING
            .iter()
            .filter_map(|&t| ds.text(t))
            .flat_map(|v| v.split(['^', ' ', '\\', '=', ',', '-', '.', '/']).map(normal).collect::<Vec<_>>())
            .filter(|w| w.len() >= 2)
            .collect();
        // A date also shows as its parts (12/03/1965 for 19651203).
        if let Some(d) = ds.text(0x0010_0030).filter(|d| d.len() == 8) {
            words.extend([d[..4].to_owned(), d[4..6].to_owned() + &d[6..8], d[6..8].to_owned() + &d[4..6]]);
        }
        words.sort();
        words.dedup();
        Terms(words)
    }

    /// Whether a read line holds one of the words, or the words of a line run together.
    fn named_in(&self, line: &str) -> bool {
        let joined = normal(line);
        self.0
            .iter()
            .any(|w| joined.contains(w.as_str()) || (w.len() >= 5 && line.split_whitespace().any(|t| one_edit(&normal(t), w))))
    }
}

/// Upper-case letters and digits of `s`.
fn normal(s: &str) -> String {
    s.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// Whether `a` and `b` differ by at most one substitution, insertion or deletion (OCR confusions).
fn one_edit(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len().abs_diff(b.len()) > 1 {
        return false;
    }
    let prefix = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let suffix = a[prefix..]
        .iter()
        .rev()
        .zip(b[prefix..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    a.len().max(b.len()) - prefix - suffix <= 1 && a.len().min(b.len()) >= prefix + suffix
}

/// Whether a read line is PHI: it names the header, or a token of it is not imaging vocabulary.
pub fn is_phi(line: &str, terms: &Terms) -> bool {
    terms.named_in(line)
        || line
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '/'))
            .filter(|t| t.chars().any(|c| c.is_ascii_alphanumeric()))
            .any(|t| !token_is_safe(t.trim_matches(['.', '/'])))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms(words: &[&str]) -> Terms {
        Terms(words.iter().map(|w| normal(w)).collect())
    }

    #[test]
    fn names_ids_and_dates_are_phi_and_imaging_words_are_not() {
        let t = terms(&["DOE", "JOHN", "MRN12345678", "1965", "1203"]);
        assert!(is_phi("DOE, JOHN", &t));
        assert!(is_phi("MRN 12345678", &t));
        assert!(is_phi("Smith", &t), "a name outside the header is not vocabulary");
        assert!(is_phi("DOB 12/03/1965", &t));
        assert!(!is_phi("AX T1 POST 5mm", &t));
        assert!(!is_phi("CT HEAD", &t));
    }

    #[test]
    fn a_header_word_read_with_one_confusion_is_still_found() {
        let t = terms(&["GONZALEZ"]);
        assert!(t.named_in("G0NZALEZ"));
        assert!(t.named_in("GONZALE"));
        assert!(!t.named_in("GARCIA"));
        assert!(one_edit("ABC", "ABD") && one_edit("ABC", "AC") && !one_edit("ABC", "CBA"));
    }
}
