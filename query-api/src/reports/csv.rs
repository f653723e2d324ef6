//! A report as CSV (RFC 4180): a header of [`COLUMNS`], then one row per image; comma-separated,
//! CRLF line ends, fields quoted when they hold a comma, a quote or a line end. A field that a
//! spreadsheet would take for a formula (`=`, `+`, `-`, `@` first) is prefixed with `'`.

use alpes_domain::report::{Fila, COLUMNS};

/// The CSV file of `filas`.
pub fn render(filas: &[Fila]) -> Vec<u8> {
    let mut out = String::new();
    line(&mut out, COLUMNS.iter().map(|c| (*c).to_owned()));
    for f in filas {
        line(&mut out, f.cells().into_iter());
    }
    out.into_bytes()
}

fn line(out: &mut String, cells: impl Iterator<Item = String>) {
    let cells: Vec<String> = cells.map(|c| field(&c)).collect();
    out.push_str(&cells.join(","));
    out.push_str("\r\n");
}

fn field(value: &str) -> String {
    let value = if value.starts_with(['=', '+', '-', '@']) {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    if value.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_quoted_and_formulas_defused() {
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("=1+1"), "'=1+1");
        assert_eq!(field("plain"), "plain");
        let csv = String::from_utf8(render(&[Fila::default()])).expect("utf-8");
        let lines: Vec<&str> = csv.split("\r\n").collect();
        assert_eq!(lines[0].split(',').count(), COLUMNS.len());
        assert_eq!(lines[1].split(',').count(), COLUMNS.len());
    }
}
