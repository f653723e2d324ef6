//! Holds `docs/configuration.md` to the code, both ways: every flag of every
//! `alpes` subcommand and every environment variable the code reads is in the
//! reference, and everything the reference names exists in the code.
//!
//! - **The code's flags** come from the clap command tree of `Cli`, walked
//!   recursively: for each subcommand path (`up`, `admin create`, ...), each
//!   `--long` name (visible aliases too) and the variable clap reads for it.
//! - **The reference's flags** come from its tables whose header's first cell
//!   starts with `flag`. A table belongs to the subcommands a heading above it
//!   names in backticks (`` ## `alpes up` ``) until a heading of the same or a
//!   higher level names none. In a row, every backticked `--name` of the first
//!   cell is a flag, and the backticked `UPPER_CASE` name of the second cell
//!   (if any) its variable.
//! - **The variables the code reads directly** (outside clap) come from a scan
//!   of the Rust sources of every crate in the repository (the workspace
//!   members and the crates beside them at the root, such as `fuzz/`; `target/`
//!   and hidden directories skipped; whole-line comments skipped; build scripts
//!   skipped, since cargo sets what they read). The argument of each
//!   `env::var(…)` and `env::var_os(…)` is a string literal; or a constant,
//!   resolved through its `const NAME: &str = "…";`; or a parameter of the
//!   enclosing `fn` or closure, resolved through the string literals that
//!   function is called with in the same file. A call that fits none of these
//!   fails the test, naming its file, so a new form is never silently missed.
//!   `RUST_LOG` counts as read wherever `tracing_subscriber`'s
//!   `EnvFilter::…from_default_env` is called.
//! - **The reference's variables** are the backticked names in the first cell
//!   of its tables whose header's first cell starts with `variable`. A variable
//!   read directly that is also a flag's variable (the tests' `SCYLLA_NODES`)
//!   is documented by the flag's row; it may be listed again, not must.
//!
//! This file is left out of the scan: its own tests hold example sources.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The reference, as the test checks it.
const REFERENCE: &str = include_str!("../../../docs/configuration.md");
/// Where it is, for messages.
const REFERENCE_PATH: &str = "docs/configuration.md";
/// This file, relative to the repository root: not scanned.
const THIS_FILE: &str = "alpes/src/cmd/config_reference.rs";

/// Flags: (subcommand path such as `admin create`, `--name`) → the variable clap reads for it.
type Flags = BTreeMap<(String, String), Option<String>>;

/// Variables read directly → the files that read them.
type Reads = BTreeMap<String, BTreeSet<String>>;

/// `alpes` plus the subcommand path, for messages.
fn command_name(path: &str) -> String {
    if path.is_empty() {
        "alpes".to_owned()
    } else {
        format!("alpes {path}")
    }
}

// ---------------------------------------------------------------- the code's flags

/// Every flag of the `alpes` command tree.
fn code_flags() -> Flags {
    let mut flags = Flags::new();
    collect_flags(&<crate::Cli as clap::CommandFactory>::command(), "", &mut flags);
    flags
}

fn collect_flags(cmd: &clap::Command, path: &str, flags: &mut Flags) {
    for arg in cmd.get_arguments() {
        // clap's own --help and --version (added when a command is built) need no row.
        if matches!(
            arg.get_action(),
            clap::ArgAction::Help | clap::ArgAction::HelpShort | clap::ArgAction::HelpLong | clap::ArgAction::Version
        ) {
            continue;
        }
        let env = arg.get_env().map(|e| e.to_string_lossy().into_owned());
        for long in arg.get_long_and_visible_aliases().unwrap_or_default() {
            flags.insert((path.to_owned(), format!("--{long}")), env.clone());
        }
    }
    for sub in cmd.get_subcommands() {
        let sub_path = if path.is_empty() {
            sub.get_name().to_owned()
        } else {
            format!("{path} {}", sub.get_name())
        };
        collect_flags(sub, &sub_path, flags);
    }
}

// ---------------------------------------------------------------- the reference

/// What the reference documents, and the rows it could not read.
#[derive(Debug, Default)]
struct Reference {
    flags: Flags,
    variables: BTreeSet<String>,
    problems: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Table {
    /// Not in a table.
    None,
    /// The header was read; the separator row comes next.
    Header(Kind),
    /// In the rows.
    Rows(Kind),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Flags,
    Variables,
    Other,
}

/// The level of a markdown heading (`## x` is 2), if `line` is one.
fn heading_level(line: &str) -> Option<usize> {
    let level = line.chars().take_while(|c| *c == '#').count();
    (level > 0 && line[level..].starts_with(' ')).then_some(level)
}

/// The backticked spans of `text`.
fn backticked(text: &str) -> impl Iterator<Item = &str> {
    text.split('`').skip(1).step_by(2)
}

/// The subcommand paths a heading names: `` `alpes admin create` `` is `admin create`.
fn commands_named(heading: &str) -> Vec<String> {
    backticked(heading)
        .filter_map(|span| {
            let mut words = span.split_whitespace();
            (words.next() == Some("alpes")).then(|| {
                words
                    .take_while(|w| {
                        w.starts_with(|c: char| c.is_ascii_lowercase())
                            && w.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            })
        })
        .collect()
}

/// Whether `s` has the shape of an environment variable's name.
fn is_variable_name(s: &str) -> bool {
    s.len() >= 2
        && s.starts_with(|c: char| c.is_ascii_uppercase())
        && s.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// The cells of a table row; `\|` is a pipe inside a cell.
fn cells(row: &str) -> Vec<String> {
    let inner = row.trim().strip_prefix('|').unwrap_or(row);
    let inner = inner.strip_suffix('|').unwrap_or(inner);
    let mut out = Vec::new();
    let mut cell = String::new();
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                cell.push('|');
                chars.next();
            }
            '|' => out.push(std::mem::take(&mut cell).trim().to_owned()),
            _ => cell.push(c),
        }
    }
    out.push(cell.trim().to_owned());
    out
}

/// The `--names` in the backticked spans of a cell (`` `--scylla-keyspace NAME`, alias `--keyspace` ``).
fn flag_names(cell: &str) -> Vec<String> {
    backticked(cell)
        .flat_map(str::split_whitespace)
        .filter_map(|word| {
            let name: String = word
                .strip_prefix("--")?
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '.')
                .collect();
            // A dot belongs to a name (`--producer.config`, as Kafka's tools spell it), not after one.
            let name = name.trim_end_matches('.');
            (!name.is_empty()).then(|| format!("--{name}"))
        })
        .collect()
}

/// The variable names in the backticked spans of a cell.
fn variable_names(cell: &str) -> Vec<String> {
    backticked(cell)
        .map(str::trim)
        .filter(|s| is_variable_name(s))
        .map(str::to_owned)
        .collect()
}

fn parse_reference(text: &str) -> Reference {
    let mut reference = Reference::default();
    let mut commands: Vec<String> = Vec::new();
    let mut section_level = 0;
    let mut table = Table::None;
    let mut in_code = false;
    for (i, line) in text.lines().enumerate() {
        let (n, line) = (i + 1, line.trim());
        if line.starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if in_code {
            continue;
        }
        if let Some(level) = heading_level(line) {
            let named = commands_named(line);
            if !named.is_empty() {
                commands = named;
                section_level = level;
            } else if level <= section_level {
                commands.clear();
                section_level = 0;
            }
            table = Table::None;
            continue;
        }
        if !line.starts_with('|') {
            table = Table::None;
            continue;
        }
        let row = cells(line);
        match table {
            Table::None => {
                let head = row[0].to_ascii_lowercase();
                let kind = if head.starts_with("flag") {
                    Kind::Flags
                } else if head.starts_with("variable") {
                    Kind::Variables
                } else {
                    Kind::Other
                };
                if kind == Kind::Flags && commands.is_empty() {
                    reference.problems.push(format!(
                        "{REFERENCE_PATH}:{n}: a flag table under no heading that names a subcommand"
                    ));
                }
                table = Table::Header(kind);
            }
            Table::Header(kind) => table = Table::Rows(kind),
            Table::Rows(Kind::Flags) => {
                let names = flag_names(&row[0]);
                // A row without a --name documents a positional argument: nothing to check.
                if names.is_empty() {
                    continue;
                }
                let env = row.get(1).map(|c| variable_names(c)).unwrap_or_default();
                if env.len() > 1 {
                    reference.problems.push(format!(
                        "{REFERENCE_PATH}:{n}: a flag row names {} variables; one at most",
                        env.len()
                    ));
                }
                for path in &commands {
                    for name in &names {
                        let key = (path.clone(), name.clone());
                        if reference.flags.insert(key, env.first().cloned()).is_some() {
                            reference
                                .problems
                                .push(format!("{REFERENCE_PATH}:{n}: `{}` {name} is documented twice", command_name(path)));
                        }
                    }
                }
            }
            Table::Rows(Kind::Variables) => {
                let names = variable_names(&row[0]);
                if names.is_empty() {
                    reference
                        .problems
                        .push(format!("{REFERENCE_PATH}:{n}: a variable row whose first cell names no `VARIABLE`"));
                }
                reference.variables.extend(names);
            }
            Table::Rows(Kind::Other) => {}
        }
    }
    reference
}

// ---------------------------------------------------------------- the variables the code reads

/// The repository root (the workspace's).
fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the alpes crate sits in the repository root")
        .to_path_buf()
}

/// The crate directories to scan: the workspace members, and every directory at the root with a
/// `Cargo.toml` of its own (crates outside the workspace, such as `fuzz/`).
fn crate_dirs(root: &Path) -> BTreeSet<PathBuf> {
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).expect("the workspace's Cargo.toml");
    let members = manifest
        .split_once("members")
        .and_then(|(_, rest)| rest.split_once('[')?.1.split_once(']'))
        .map(|(list, _)| list)
        .expect("a members list in the workspace's Cargo.toml");
    let mut dirs: BTreeSet<PathBuf> = members.split('"').skip(1).step_by(2).map(|m| root.join(m)).collect();
    for entry in std::fs::read_dir(root).expect("the repository root").flatten() {
        let path = entry.path();
        if path.join("Cargo.toml").is_file() && !is_skipped_dir(&path) {
            dirs.insert(path);
        }
    }
    dirs
}

fn is_skipped_dir(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n == "target" || n.starts_with('.'))
}

/// Every Rust source under the crate directories, relative path → text; build scripts and this file left out.
fn rust_sources(root: &Path) -> BTreeMap<String, String> {
    let mut sources = BTreeMap::new();
    for dir in crate_dirs(root) {
        let walk = walkdir::WalkDir::new(&dir)
            .into_iter()
            .filter_entry(|e| !(e.file_type().is_dir() && e.depth() > 0 && is_skipped_dir(e.path())));
        for entry in walk {
            let entry = entry.expect("a readable source tree");
            let path = entry.path();
            let is_build_script = path.parent() == Some(dir.as_path()) && path.file_name().is_some_and(|n| n == "build.rs");
            if !entry.file_type().is_file() || path.extension().is_none_or(|e| e != "rs") || is_build_script {
                continue;
            }
            let rel = path.strip_prefix(root).unwrap_or(path).to_string_lossy().replace('\\', "/");
            if rel == THIS_FILE {
                continue;
            }
            let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {rel}: {e}"));
            sources.insert(rel, text);
        }
    }
    sources
}

/// The source without its whole-line comments (doc comments included).
fn code_lines(source: &str) -> String {
    source
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `const NAME: &str = "VALUE";` definitions in `code`.
fn str_consts(code: &str) -> BTreeMap<String, String> {
    code.match_indices("const ")
        .filter_map(|(at, _)| str_const(&code[at + "const ".len()..]))
        .collect()
}

/// The name and value of the `NAME: &str = "VALUE"` that `text` starts with.
fn str_const(text: &str) -> Option<(String, String)> {
    let name = identifier(text);
    let after = text[name.len()..].trim_start().strip_prefix(':')?.trim_start();
    let after = after.strip_prefix("&'static str").or_else(|| after.strip_prefix("&str"))?;
    let value = string_literal(after.trim_start().strip_prefix('=')?)?;
    (!name.is_empty()).then(|| (name.to_owned(), value))
}

/// The identifier `text` starts with (empty if none).
fn identifier(text: &str) -> &str {
    let end = text
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '_'))
        .map_or(text.len(), |(i, _)| i);
    &text[..end]
}

/// The plain string literal `text` starts with (after blanks), without its quotes.
fn string_literal(text: &str) -> Option<String> {
    let rest = text.trim_start().strip_prefix('"')?;
    rest.split_once('"').map(|(s, _)| s.to_owned())
}

/// The text of the call's argument list that starts right after its `(` at `code[from..]`.
fn argument(code: &str, from: usize) -> &str {
    let mut depth = 0usize;
    for (i, c) in code[from..].char_indices() {
        match c {
            '(' => depth += 1,
            ')' if depth == 0 => return code[from..from + i].trim(),
            ')' => depth -= 1,
            _ => {}
        }
    }
    code[from..].trim()
}

/// The name of the `fn` or closure (`let name = |…|`) that encloses position `at`: the nearest
/// one defined before it.
fn enclosing_callable(code: &str, at: usize) -> Option<String> {
    let before = &code[..at];
    let function = before
        .match_indices("fn ")
        .filter(|(p, _)| *p == 0 || !before[..*p].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_'))
        .last()
        .map(|(p, _)| (p, identifier(&before[p + 3..]).to_owned()));
    let closure = before
        .match_indices("let ")
        .filter_map(|(p, _)| {
            let rest = before[p + 4..].trim_start();
            let rest = rest.strip_prefix("mut ").unwrap_or(rest);
            let name = identifier(rest);
            let after = rest[name.len()..].trim_start();
            let after = after
                .strip_prefix(':')
                .map_or(after, |typed| typed.split_once('=').map_or("", |(_, r)| r));
            let after = after.trim_start().strip_prefix('=').unwrap_or(after).trim_start();
            (!name.is_empty() && after.starts_with('|')).then(|| (p, name.to_owned()))
        })
        .last();
    match (function, closure) {
        (Some(f), Some(c)) => Some(if c.0 > f.0 { c.1 } else { f.1 }),
        (f, c) => f.or(c).map(|(_, name)| name),
    }
    .filter(|name| !name.is_empty())
}

/// The string literals `callable` is called with as its first argument in `code`.
fn literal_arguments_of(code: &str, callable: &str) -> Vec<String> {
    let needle = format!("{callable}(");
    code.match_indices(&needle)
        .filter(|(p, _)| {
            let before = &code[..*p];
            !before.ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_') && !before.ends_with("fn ")
        })
        .filter_map(|(p, _)| string_literal(&code[p + needle.len()..]))
        .collect()
}

/// The variables one file reads directly, or what could not be resolved. `consts` are every
/// file's string constants, tried after the file's own.
fn variables_read(file: &str, source: &str, consts: &BTreeMap<String, String>) -> (BTreeSet<String>, Vec<String>) {
    let code = code_lines(source);
    let own = str_consts(&code);
    let mut names = BTreeSet::new();
    let mut unresolved = Vec::new();
    if code.contains("from_default_env(") {
        names.insert("RUST_LOG".to_owned());
    }
    for needle in ["env::var(", "env::var_os("] {
        for (at, _) in code.match_indices(needle) {
            let arg = argument(&code, at + needle.len());
            if let Some(name) = string_literal(arg) {
                names.insert(name);
                continue;
            }
            let ident = identifier(arg.rsplit("::").next().unwrap_or(arg).trim());
            let resolved: Vec<String> = if is_variable_name(ident) {
                own.get(ident).or_else(|| consts.get(ident)).cloned().into_iter().collect()
            } else if !ident.is_empty() && ident == arg {
                enclosing_callable(&code, at)
                    .map(|f| literal_arguments_of(&code, &f))
                    .unwrap_or_default()
            } else {
                Vec::new()
            };
            if resolved.is_empty() {
                unresolved.push(format!(
                    "{file}: cannot tell which variable `{needle}{arg})` reads: give it a string literal or a \
                     `const NAME: &str`, or teach {THIS_FILE} the new form"
                ));
            }
            names.extend(resolved);
        }
    }
    (names, unresolved)
}

/// Every variable the repository's Rust code reads directly, and what could not be resolved.
fn scan(sources: &BTreeMap<String, String>) -> (Reads, Vec<String>) {
    let consts: BTreeMap<String, String> = sources.values().flat_map(|s| str_consts(&code_lines(s))).collect();
    let mut reads = Reads::new();
    let mut unresolved = Vec::new();
    for (file, source) in sources {
        let (names, problems) = variables_read(file, source, &consts);
        for name in names {
            reads.entry(name).or_default().insert(file.clone());
        }
        unresolved.extend(problems);
    }
    (reads, unresolved)
}

// ---------------------------------------------------------------- the comparison

/// Every difference between the code and the reference, one message each.
fn differences(code: &Flags, reads: &Reads, reference: &Reference) -> Vec<String> {
    let mut out = Vec::new();
    for ((path, flag), env) in code {
        match reference.flags.get(&(path.clone(), flag.clone())) {
            None => out.push(format!(
                "`{} {flag}` is in the code but not in {REFERENCE_PATH}",
                command_name(path)
            )),
            Some(documented) if documented != env => out.push(format!(
                "`{} {flag}`: {REFERENCE_PATH} gives its variable as {}, the code as {}",
                command_name(path),
                documented.as_deref().unwrap_or("none"),
                env.as_deref().unwrap_or("none")
            )),
            Some(_) => {}
        }
    }
    for (path, flag) in reference.flags.keys() {
        if !code.contains_key(&(path.clone(), flag.clone())) {
            out.push(format!(
                "`{} {flag}` is in {REFERENCE_PATH} but the code has no such flag",
                command_name(path)
            ));
        }
    }
    let flag_variables: BTreeSet<&str> = code.values().flatten().map(String::as_str).collect();
    for (name, files) in reads {
        if !flag_variables.contains(name.as_str()) && !reference.variables.contains(name) {
            out.push(format!(
                "{name} is read by {} but is in no variable table of {REFERENCE_PATH}",
                files.iter().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
    }
    for name in &reference.variables {
        if !reads.contains_key(name) {
            out.push(format!(
                "{name} is in a variable table of {REFERENCE_PATH} but no code reads it directly"
            ));
        }
    }
    out
}

#[test]
fn every_flag_and_variable_of_the_code_is_in_the_reference_and_everything_the_reference_names_is_in_the_code() {
    let reference = parse_reference(REFERENCE);
    let (reads, unresolved) = scan(&rust_sources(&repository_root()));
    let code = code_flags();
    assert!(code.len() > 50, "the command tree walk found only {} flags", code.len());
    assert!(reads.len() > 10, "the source scan found only {} variables", reads.len());
    let mut problems = reference.problems.clone();
    problems.extend(unresolved);
    problems.extend(differences(&code, &reads, &reference));
    assert!(
        problems.is_empty(),
        "{REFERENCE_PATH} and the code disagree ({} differences):\n  - {}",
        problems.len(),
        problems.join("\n  - ")
    );
}

#[test]
fn the_reference_is_read_per_subcommand_with_aliases_and_shared_headings() {
    let text = "\
# Reference

## `alpes up`

| flag | variable | default | meaning |
|---|---|---|---|
| `--data-dir DIR` | `ALPES_DATA_DIR` | `./data` | where \\| things live |
| `--scylla-keyspace NAME`, alias `--keyspace` | `SCYLLA_KEYSPACE` | `alpes` | the keyspace |
| `INPUT...` | — | | a positional argument |

### Kafka

| flag | variable | default | meaning |
|---|---|---|---|
| `--kafka-prop KEY=VALUE` | — | | pass-through |

## `alpes admin create` and `alpes migrate`

| flag | variable | default | meaning |
|---|---|---|---|
| `--scylla-nodes HOST:PORT` | `SCYLLA_NODES` | | nodes |

## Variables

| variable | meaning |
|---|---|
| `RUST_LOG` | the log filter |

```
| flag | not a table |
| `--in-a-code-block` | |
```
";
    let r = parse_reference(text);
    assert_eq!(r.problems, Vec::<String>::new());
    let flag = |p: &str, f: &str| r.flags.get(&(p.to_owned(), f.to_owned())).cloned();
    assert_eq!(flag("up", "--data-dir"), Some(Some("ALPES_DATA_DIR".to_owned())));
    assert_eq!(flag("up", "--keyspace"), Some(Some("SCYLLA_KEYSPACE".to_owned())));
    assert_eq!(flag("up", "--kafka-prop"), Some(None), "a deeper heading keeps the subcommand");
    assert_eq!(flag("admin create", "--scylla-nodes"), Some(Some("SCYLLA_NODES".to_owned())));
    assert_eq!(flag("migrate", "--scylla-nodes"), Some(Some("SCYLLA_NODES".to_owned())));
    assert_eq!(r.flags.len(), 6, "{:?}", r.flags);
    assert_eq!(r.variables, BTreeSet::from(["RUST_LOG".to_owned()]));
}

#[test]
fn a_flag_table_outside_a_subcommand_and_a_flag_documented_twice_are_reported() {
    let text = "\
## General

| flag | variable | meaning |
|---|---|---|
| `--orphan` | | nowhere |

## `alpes token`

| flag | variable | meaning |
|---|---|---|
| `--user ID` | | once |
| `--user ID` | | twice |
";
    let r = parse_reference(text);
    assert_eq!(r.problems.len(), 2, "{:?}", r.problems);
    assert!(
        r.problems[0].starts_with(&format!("{REFERENCE_PATH}:3: a flag table under no heading")),
        "{:?}",
        r.problems
    );
    assert!(
        r.problems[1].contains("`alpes token` --user is documented twice"),
        "{:?}",
        r.problems
    );
}

#[test]
fn the_scan_names_literals_constants_and_the_literal_arguments_of_helpers_and_closures() {
    let source = r#"
//! Mentions env::var("IN_A_COMMENT"), which is not code.
pub const URL_VAR: &str = "THE_URL";
fn f() {
    let a = std::env::var("LITERAL");
    let b = std::env::var_os( "OS_LITERAL" );
    let c = std::env::var(URL_VAR);
    let d = std::env::var(other::SHARED);
    let f = tracing_subscriber::EnvFilter::try_from_default_env();
}
fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}
fn g() {
    let unset = |var: &str| std::env::var_os(var).is_none();
    if unset("FIRST") && unset("SECOND") {}
    let n = env_number("NUMBER", 1);
}
"#;
    let consts = BTreeMap::from([("SHARED".to_owned(), "FROM_ELSEWHERE".to_owned())]);
    let (names, unresolved) = variables_read("x.rs", source, &consts);
    assert_eq!(unresolved, Vec::<String>::new());
    let expected = [
        "FIRST",
        "FROM_ELSEWHERE",
        "LITERAL",
        "NUMBER",
        "OS_LITERAL",
        "RUST_LOG",
        "SECOND",
        "THE_URL",
    ];
    assert_eq!(names, expected.iter().map(|s| (*s).to_owned()).collect::<BTreeSet<_>>());
}

#[test]
fn a_read_the_scan_cannot_name_fails_with_its_file() {
    let source = "fn f(v: Vec<String>) { let x = std::env::var(&v[0]); }";
    let (names, unresolved) = variables_read("odd.rs", source, &BTreeMap::new());
    assert!(names.is_empty());
    assert_eq!(unresolved.len(), 1);
    assert!(unresolved[0].starts_with("odd.rs: cannot tell which variable"), "{unresolved:?}");
}

#[test]
fn every_difference_is_named_in_both_directions() {
    let key = |p: &str, f: &str| (p.to_owned(), f.to_owned());
    let code = Flags::from([
        (key("up", "--listen"), Some("ALPES_LISTEN".to_owned())),
        (key("up", "--workers"), Some("ALPES_WORKERS".to_owned())),
        (key("jwt-key new", "--out-dir"), None),
        (key("migrate", "--scylla-nodes"), Some("SCYLLA_NODES".to_owned())),
    ]);
    let reference = Reference {
        flags: Flags::from([
            (key("up", "--listen"), Some("ALPES_LISTEN".to_owned())),
            (key("up", "--workers"), None),
            (key("up", "--gone"), None),
            (key("migrate", "--scylla-nodes"), Some("SCYLLA_NODES".to_owned())),
        ]),
        variables: BTreeSet::from(["RUST_LOG".to_owned(), "NOT_READ".to_owned()]),
        problems: Vec::new(),
    };
    let reads = Reads::from([
        ("RUST_LOG".to_owned(), BTreeSet::from(["a.rs".to_owned()])),
        ("UNDOCUMENTED".to_owned(), BTreeSet::from(["b.rs".to_owned()])),
        ("SCYLLA_NODES".to_owned(), BTreeSet::from(["c.rs".to_owned()])),
    ]);
    let found = differences(&code, &reads, &reference);
    assert_eq!(
        found,
        vec![
            format!("`alpes jwt-key new --out-dir` is in the code but not in {REFERENCE_PATH}"),
            format!("`alpes up --workers`: {REFERENCE_PATH} gives its variable as none, the code as ALPES_WORKERS"),
            format!("`alpes up --gone` is in {REFERENCE_PATH} but the code has no such flag"),
            format!("UNDOCUMENTED is read by b.rs but is in no variable table of {REFERENCE_PATH}"),
            format!("NOT_READ is in a variable table of {REFERENCE_PATH} but no code reads it directly"),
        ]
    );
}
