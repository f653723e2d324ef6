//! Test support for the ScyllaDB adapters: the tables and columns a
//! migration creates, and the check that a statement names only those.

use std::collections::{HashMap, HashSet};

/// The columns of each table the migration `name` (`schemas/cql/`) creates.
pub(crate) fn schema_columns(name: &str) -> HashMap<String, HashSet<String>> {
    let source = alpes_schemas::cql::MIGRATIONS
        .iter()
        .find(|m| m.name == name)
        .unwrap_or_else(|| panic!("no migration {name}"))
        .source;
    let mut tables = HashMap::new();
    for stmt in alpes_schemas::cql::statements(source) {
        let Some(rest) = stmt.strip_prefix("CREATE TABLE IF NOT EXISTS {keyspace}.") else {
            continue;
        };
        let (name, body) = rest.split_once('(').expect("a column list");
        let columns = body
            .lines()
            .map(str::trim)
            .filter(|l| !l.starts_with("PRIMARY KEY") && !l.starts_with(')'))
            .filter_map(|l| l.split_whitespace().next())
            .filter(|w| w.starts_with(|c: char| c.is_ascii_lowercase()))
            .map(str::to_owned)
            .collect();
        tables.insert(name.trim().to_owned(), columns);
    }
    tables
}

/// The table a statement (`... {ks}.<table> ...`) names.
pub(crate) fn table_of(cql: &str) -> String {
    let (_, after) = cql.split_once("{ks}.").expect("a {ks}.<table>");
    after.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect()
}

/// Asserts that the insert `cql` binds one marker per column it names, plus one for its
/// `USING TTL ?` or `USING TIMESTAMP ?`.
pub(crate) fn assert_binds_one_marker_per_column(cql: &str) {
    let (cols, vals) = cql.split_once("VALUES").unwrap_or_else(|| panic!("not an insert: {cql}"));
    let named = cols
        .rsplit_once('(')
        .unwrap_or_else(|| panic!("no column list: {cql}"))
        .1
        .split(',')
        .count();
    let using = usize::from(cql.contains("USING TTL ?")) + usize::from(cql.contains("USING TIMESTAMP ?"));
    assert_eq!(named + using, vals.matches('?').count(), "{cql}");
}

/// Asserts that `cql` names one table of `tables` once, and that every other
/// word is one of `keywords`, that table, a column of it or, with
/// `numbers`, a numeric literal; returns the table.
pub(crate) fn assert_names_only_schema(cql: &str, tables: &HashMap<String, HashSet<String>>, keywords: &[&str], numbers: bool) -> String {
    let table = table_of(cql);
    let columns = tables.get(&table).unwrap_or_else(|| panic!("{table} is not in the schema: {cql}"));
    let words = cql
        .replace("{ks}", " ")
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !(w.is_empty() || numbers && w.starts_with(|c: char| c.is_ascii_digit())))
        .map(str::to_owned)
        .collect::<Vec<_>>();
    for w in words {
        let known = keywords.contains(&w.to_ascii_lowercase().as_str()) || w == table || columns.contains(&w);
        assert!(known, "{w} is neither a keyword nor a column of {table}: {cql}");
    }
    assert_eq!(cql.matches("{ks}").count(), 1, "{cql}");
    table
}

/// Asserts that every statement of `statements` names only the tables and columns of migration
/// `name` (every other word one of `keywords`), that the migration creates `tables` tables and
/// each has a statement, and that each insert binds one marker per column.
pub(crate) fn assert_statements_cover(name: &str, tables: usize, statements: &[&str], keywords: &[&str]) {
    let schema = schema_columns(name);
    assert_eq!(schema.len(), tables, "{:?}", schema.keys());
    let used: HashSet<String> = statements
        .iter()
        .map(|cql| assert_names_only_schema(cql, &schema, keywords, false))
        .collect();
    assert_eq!(used.len(), schema.len(), "a table of {name} has no statement");
    for cql in statements.iter().filter(|c| c.starts_with("INSERT")) {
        assert_binds_one_marker_per_column(cql);
    }
}
