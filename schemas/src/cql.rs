//! The CQL schema of the ScyllaDB store (`schemas/cql/*.cql`), embedded in the
//! binary so `alpes migrate` needs no files beside it.
//!
//! [`BOOTSTRAP`] creates the keyspace and the `schema_migrations` table and is
//! run every time. [`MIGRATIONS`] are the numbered files, in the order they
//! apply; each is applied once and recorded by version. To change the schema,
//! add the next numbered file here (never edit one that was released: migrate
//! refuses a file whose checksum differs from the one it recorded). Every
//! statement must be idempotent (`CREATE ... IF NOT EXISTS`), so a run cut off
//! half-way through a file can simply run again.
//!
//! The files are templates: [`render`] substitutes `{keyspace}`,
//! `{replication}` and `{tablets}`, and [`statements`] splits a file into its
//! statements.

/// One numbered schema file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migration {
    /// Its version: the number its file name starts with.
    pub version: i32,
    /// The file name under `schemas/cql/`.
    pub name: &'static str,
    /// The file's text (a template, see [`render`]).
    pub source: &'static str,
}

/// Creates the keyspace and the `schema_migrations` table; run before the numbered files, every time.
pub const BOOTSTRAP: &str = include_str!("../cql/keyspace.cql");

/// The numbered schema files, in the order they apply.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "001_ledger.cql",
        source: include_str!("../cql/001_ledger.cql"),
    },
    Migration {
        version: 2,
        name: "002_catalog.cql",
        source: include_str!("../cql/002_catalog.cql"),
    },
    Migration {
        version: 3,
        name: "003_identity.cql",
        source: include_str!("../cql/003_identity.cql"),
    },
    Migration {
        version: 4,
        name: "004_ingest.cql",
        source: include_str!("../cql/004_ingest.cql"),
    },
    Migration {
        version: 5,
        name: "005_consumer_terms.cql",
        source: include_str!("../cql/005_consumer_terms.cql"),
    },
    Migration {
        version: 6,
        name: "006_analyses.cql",
        source: include_str!("../cql/006_analyses.cql"),
    },
    Migration {
        version: 7,
        name: "007_provider_studies.cql",
        source: include_str!("../cql/007_provider_studies.cql"),
    },
    Migration {
        version: 8,
        name: "008_dimse_calling_aes.cql",
        source: include_str!("../cql/008_dimse_calling_aes.cql"),
    },
    Migration {
        version: 9,
        name: "009_imports.cql",
        source: include_str!("../cql/009_imports.cql"),
    },
    Migration {
        version: 10,
        name: "010_registry.cql",
        source: include_str!("../cql/010_registry.cql"),
    },
    Migration {
        version: 11,
        name: "011_notifications.cql",
        source: include_str!("../cql/011_notifications.cql"),
    },
    Migration {
        version: 12,
        name: "012_catalog_consent.cql",
        source: include_str!("../cql/012_catalog_consent.cql"),
    },
];

/// The placeholders a schema file may use.
pub const PLACEHOLDERS: [&str; 3] = ["keyspace", "replication", "tablets"];

/// Substitutes every `{name}` in `template` for which `vars` has a value, in
/// one pass (a substituted value is not scanned again). Anything else in
/// braces, such as a CQL map literal, is left as it is.
pub fn render(template: &str, vars: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let value = after
            .find('}')
            .and_then(|close| vars.iter().find(|(name, _)| *name == &after[..close]).map(|(_, v)| (close, *v)));
        match value {
            Some((close, v)) => {
                out.push_str(v);
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Splits a CQL script into its statements: `--` and `//` comments are
/// dropped, `;` ends a statement unless it is inside a quoted string or
/// identifier, and empty statements are skipped.
pub fn statements(script: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut quote: Option<char> = None;
    let mut chars = script.chars().peekable();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                current.push(c);
                if c == q {
                    // A doubled quote is an escaped quote, still inside the string.
                    if chars.peek() == Some(&q) {
                        current.push(q);
                        chars.next();
                    } else {
                        quote = None;
                    }
                }
            }
            None => match c {
                '\'' | '"' => {
                    quote = Some(c);
                    current.push(c);
                }
                '-' | '/' if chars.peek() == Some(&c) => {
                    for skipped in chars.by_ref() {
                        if skipped == '\n' {
                            current.push('\n');
                            break;
                        }
                    }
                }
                ';' => {
                    push_statement(&mut out, &current);
                    current.clear();
                }
                _ => current.push(c),
            },
        }
    }
    push_statement(&mut out, &current);
    out
}

fn push_statement(out: &mut Vec<String>, text: &str) {
    let lines: Vec<&str> = text.lines().map(str::trim_end).filter(|l| !l.trim().is_empty()).collect();
    if !lines.is_empty() {
        out.push(lines.join("\n").trim().to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(source: &str) -> String {
        render(
            source,
            &[
                ("keyspace", "alpes"),
                ("replication", "{'class': 'SimpleStrategy', 'replication_factor': 1}"),
                ("tablets", ""),
            ],
        )
    }

    #[test]
    fn migrations_are_numbered_in_order_and_named_after_their_version() {
        let mut last = 0;
        for m in MIGRATIONS {
            assert!(m.version > last, "{} is out of order", m.name);
            assert_eq!(
                m.name,
                format!("{:03}_{}", m.version, &m.name[4..]),
                "{} is not named after its version",
                m.name
            );
            assert!(m.name.ends_with(".cql"));
            last = m.version;
        }
    }

    #[test]
    fn every_numbered_file_in_the_directory_is_listed() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("cql");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".cql") && n.starts_with(|c: char| c.is_ascii_digit()))
            .collect();
        on_disk.sort();
        let listed: Vec<&str> = MIGRATIONS.iter().map(|m| m.name).collect();
        assert_eq!(on_disk, listed);
    }

    #[test]
    fn every_statement_is_idempotent_and_fully_substituted() {
        for (name, source) in std::iter::once(("keyspace.cql", BOOTSTRAP)).chain(MIGRATIONS.iter().map(|m| (m.name, m.source))) {
            let stmts = statements(&rendered(source));
            assert!(!stmts.is_empty(), "{name} has no statement");
            for s in &stmts {
                let upper = s.to_ascii_uppercase();
                assert!(
                    upper.starts_with("CREATE "),
                    "{name}: only CREATE statements are idempotent here: {s}"
                );
                assert!(upper.contains(" IF NOT EXISTS "), "{name}: CREATE without IF NOT EXISTS: {s}");
                for p in PLACEHOLDERS {
                    assert!(!s.contains(&format!("{{{p}}}")), "{name}: {{{p}}} left in {s}");
                }
                assert!(!s.contains("--"), "{name}: a comment survived: {s}");
            }
        }
    }

    #[test]
    fn the_bootstrap_creates_the_keyspace_first_with_its_replication() {
        let stmts = statements(&render(
            BOOTSTRAP,
            &[
                ("keyspace", "ks1"),
                ("replication", "{'class': 'X'}"),
                ("tablets", " AND tablets = {'enabled': false}"),
            ],
        ));
        assert_eq!(
            stmts[0],
            "CREATE KEYSPACE IF NOT EXISTS ks1\n    WITH replication = {'class': 'X'} AND tablets = {'enabled': false}"
        );
        assert!(stmts[1].starts_with("CREATE TABLE IF NOT EXISTS ks1.schema_migrations"));
    }

    #[test]
    fn render_substitutes_known_placeholders_once_and_leaves_maps_alone() {
        let out = render("{a}.{b} {'k': 1} {unknown} {", &[("a", "{b}"), ("b", "x")]);
        assert_eq!(out, "{b}.x {'k': 1} {unknown} {");
    }

    #[test]
    fn statements_split_on_semicolons_outside_strings_and_comments() {
        let script = "-- a; comment\nCREATE A 'x;''y' \"q;\"; // c;\n\n  CREATE B ;;\n";
        assert_eq!(statements(script), vec!["CREATE A 'x;''y' \"q;\"", "CREATE B"]);
    }
}
