//! DICOM attribute matching for QIDO-RS (PS3.4 C.2.2.2.4): `*` matches any
//! run of characters, `?` exactly one, anything else itself, case-sensitive.
//! Every store matches the same way: the CQL one with [`wildcard_match`], the
//! SQL one with [`sqlite_glob`] (GLOB's syntax with `[` taken literally).

/// Whether a matching value uses wildcards.
pub fn has_wildcard(pattern: &str) -> bool {
    pattern.contains(['*', '?'])
}

/// Whether `text` matches the DICOM wildcard `pattern`.
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    // The last `*` seen and the text position it is currently matched up to.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// The pattern as SQLite's `GLOB` reads it to match the same texts: `*` and
/// `?` are already GLOB's; a `[` would open a character class, so it is
/// written as the class of itself.
pub fn sqlite_glob(pattern: &str) -> String {
    pattern.replace('[', "[[]")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_as_sqlite_glob_with_a_literal_bracket() {
        for (p, t) in [
            ("PSEUDO-*", "PSEUDO-A"),
            ("PSEUDO-*", "PSEUDO-"),
            ("*", ""),
            ("?", "ñ"),
            ("P?E*-B", "PSEUDO-B"),
            ("*A*B*", "xxAyyBzz"),
            ("a*b*c", "abcbc"),
            ("[ab]", "[ab]"),
            ("exact", "exact"),
        ] {
            assert!(wildcard_match(p, t), "{p} ~ {t}");
        }
        for (p, t) in [
            ("PSEUDO-*", "pseudo-a"),
            ("?", ""),
            ("?", "ab"),
            ("a*b", "ab-"),
            ("[ab]", "a"),
            ("exact", "exactly"),
            ("", "x"),
        ] {
            assert!(!wildcard_match(p, t), "{p} !~ {t}");
        }
        assert!(has_wildcard("A*") && has_wildcard("A?") && !has_wildcard("A[1]"));
        assert_eq!(sqlite_glob("A[1]*"), "A[[]1]*");
    }
}
