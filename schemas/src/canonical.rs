//! Avro's Parsing Canonical Form (the specification's "Transforming into
//! Parsing Canonical Form") and the single-object fingerprint taken of it,
//! exactly as the reference implementation, Java's `SchemaNormalization`,
//! and the other Avro libraries (fastavro, avro-python) compute them.
//!
//! It is built from the schema's JSON, not from `apache_avro`'s parsed
//! `Schema`: that crate's canonical form keeps a logical type's
//! `{"type":"long"}` wrapper where the specification reduces it to `"long"`,
//! so its fingerprints differ from every other implementation's for any
//! schema with a logical type (all of Alpes' events: `occurred_at` is a
//! `timestamp-millis`). Those old fingerprints are still read: see
//! [`crate::catalog::Entry::legacy_fingerprint`].
//!
//! The rules: primitives as bare names (`"long"`), named types by full name
//! (written whole the first time, as the quoted name after that), only the
//! attributes that matter for parsing (`name`, `type`, `fields`, `symbols`,
//! `items`, `values`, `size`), in that order, no whitespace. Attributes such
//! as `doc`, `default`, `aliases`, `order`, `namespace` and `logicalType` go.

use serde_json::Value;
use std::collections::HashSet;
use std::fmt::Write as _;

const PRIMITIVES: [&str; 8] = ["null", "boolean", "int", "long", "float", "double", "bytes", "string"];

/// The Parsing Canonical Form of the schema `json` (the text of an `.avsc`).
pub fn canonical_form(json: &str) -> Result<String, String> {
    let value: Value = serde_json::from_str(json).map_err(|e| format!("not JSON: {e}"))?;
    let mut out = String::with_capacity(json.len() / 2);
    Canon::default().write(&value, "", &mut out)?;
    Ok(out)
}

/// CRC-64-AVRO (Rabin) of `canonical`, as the 8 little-endian bytes that
/// follow `C3 01` in a single-object header (the specification's
/// `fingerprint64`).
pub fn fingerprint_of_canonical(canonical: &str) -> [u8; 8] {
    let fp = canonical
        .bytes()
        .fold(EMPTY, |fp, b| (fp >> 8) ^ TABLE[((fp ^ u64::from(b)) & 0xff) as usize]);
    fp.to_le_bytes()
}

/// The fingerprint of the empty input, and the polynomial.
const EMPTY: u64 = 0xc15d_213a_a4d7_a795;

/// The specification's `FP_TABLE`.
const TABLE: [u64; 256] = {
    let mut table = [0; 256];
    let mut i = 0;
    while i < 256 {
        let mut fp = i as u64;
        let mut j = 0;
        while j < 8 {
            fp = (fp >> 1) ^ (EMPTY & (fp & 1).wrapping_neg());
            j += 1;
        }
        table[i] = fp;
        i += 1;
    }
    table
};

/// The named types already written (by full name).
#[derive(Default)]
struct Canon {
    seen: HashSet<String>,
}

impl Canon {
    fn write(&mut self, schema: &Value, namespace: &str, out: &mut String) -> Result<(), String> {
        match schema {
            Value::String(name) => self.write_reference(name, namespace, out),
            Value::Array(branches) => {
                out.push('[');
                for (i, branch) in branches.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    self.write(branch, namespace, out)?;
                }
                out.push(']');
                Ok(())
            }
            Value::Object(attrs) => {
                let ty = attrs.get("type").ok_or("a schema object without \"type\"")?;
                let Value::String(ty) = ty else {
                    // `{"type": {...}}` or `{"type": [...]}`: the attributes wrap another schema.
                    return self.write(ty, namespace, out);
                };
                match ty.as_str() {
                    "record" | "error" | "enum" | "fixed" => self.write_named(attrs, ty, namespace, out),
                    "array" => {
                        out.push_str("{\"type\":\"array\",\"items\":");
                        self.write(attrs.get("items").ok_or("an array without \"items\"")?, namespace, out)?;
                        out.push('}');
                        Ok(())
                    }
                    "map" => {
                        out.push_str("{\"type\":\"map\",\"values\":");
                        self.write(attrs.get("values").ok_or("a map without \"values\"")?, namespace, out)?;
                        out.push('}');
                        Ok(())
                    }
                    // A primitive with attributes (a logical type, say) is the bare primitive.
                    other => self.write_reference(other, namespace, out),
                }
            }
            other => Err(format!("{other} is not a schema")),
        }
    }

    fn write_reference(&mut self, name: &str, namespace: &str, out: &mut String) -> Result<(), String> {
        if PRIMITIVES.contains(&name) {
            let _ = write!(out, "\"{name}\"");
            return Ok(());
        }
        let full = full_name(name, None, namespace);
        // A short name refers to the type of that name in the current namespace if one was
        // defined, else to the name as written (the null namespace), as Java resolves it.
        let resolved = if self.seen.contains(&full) { full } else { name.to_owned() };
        if !self.seen.contains(&resolved) {
            return Err(format!("{resolved} names no type defined before it"));
        }
        let _ = write!(out, "\"{resolved}\"");
        Ok(())
    }

    fn write_named(&mut self, attrs: &serde_json::Map<String, Value>, ty: &str, namespace: &str, out: &mut String) -> Result<(), String> {
        let name = attrs.get("name").and_then(Value::as_str).ok_or("a named type without \"name\"")?;
        let full = full_name(name, attrs.get("namespace").and_then(Value::as_str), namespace);
        if !self.seen.insert(full.clone()) {
            let _ = write!(out, "\"{full}\"");
            return Ok(());
        }
        // Types nested in this one default to its namespace.
        let inner = full.rsplit_once('.').map_or("", |(ns, _)| ns).to_owned();
        let ty = if ty == "error" { "record" } else { ty };
        let _ = write!(out, "{{\"name\":\"{full}\",\"type\":\"{ty}\"");
        match ty {
            "enum" => {
                out.push_str(",\"symbols\":[");
                let symbols = attrs
                    .get("symbols")
                    .and_then(Value::as_array)
                    .ok_or("an enum without \"symbols\"")?;
                for (i, s) in symbols.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    let _ = write!(out, "\"{}\"", s.as_str().ok_or("an enum symbol that is not a string")?);
                }
                out.push(']');
            }
            "fixed" => {
                let size = attrs.get("size").and_then(Value::as_u64).ok_or("a fixed without \"size\"")?;
                let _ = write!(out, ",\"size\":{size}");
            }
            _ => {
                out.push_str(",\"fields\":[");
                let fields = attrs.get("fields").and_then(Value::as_array).ok_or("a record without \"fields\"")?;
                for (i, field) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    let fname = field.get("name").and_then(Value::as_str).ok_or("a field without \"name\"")?;
                    let _ = write!(out, "{{\"name\":\"{fname}\",\"type\":");
                    self.write(field.get("type").ok_or("a field without \"type\"")?, &inner, out)?;
                    out.push('}');
                }
                out.push(']');
            }
        }
        out.push('}');
        Ok(())
    }
}

/// A named type's full name: `name` when it holds a dot, else `namespace`
/// (its own, or the enclosing one) + `.` + `name`.
fn full_name(name: &str, own: Option<&str>, enclosing: &str) -> String {
    if name.contains('.') {
        return name.to_owned();
    }
    match own.unwrap_or(enclosing) {
        "" => name.to_owned(),
        ns => format!("{ns}.{name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(json: &str) -> String {
        canonical_form(json).expect("canonical form")
    }

    #[test]
    fn a_logical_type_is_reduced_to_its_primitive() {
        assert_eq!(canon(r#"{"type": "long", "logicalType": "timestamp-millis"}"#), r#""long""#);
        assert_eq!(canon(r#"{"type": "string", "logicalType": "uuid"}"#), r#""string""#);
        assert_eq!(canon(r#"{"type": "int"}"#), r#""int""#);
    }

    #[test]
    fn names_become_full_and_attributes_that_do_not_parse_go() {
        let json = r#"{"type": "record", "name": "R", "namespace": "a.b", "doc": "d", "aliases": ["x"],
            "fields": [{"name": "f", "type": ["null", {"type": "enum", "name": "E", "symbols": ["A", "B"], "doc": "e"}], "default": null},
                       {"name": "g", "type": "E"},
                       {"name": "h", "type": {"type": "fixed", "name": "x.F", "size": 16}},
                       {"name": "i", "type": {"type": "map", "values": {"type": "array", "items": "a.b.E"}}}]}"#;
        assert_eq!(
            canon(json),
            r#"{"name":"a.b.R","type":"record","fields":[{"name":"f","type":["null",{"name":"a.b.E","type":"enum","symbols":["A","B"]}]},{"name":"g","type":"a.b.E"},{"name":"h","type":{"name":"x.F","type":"fixed","size":16}},{"name":"i","type":{"type":"map","values":{"type":"array","items":"a.b.E"}}}]}"#
        );
    }

    #[test]
    fn the_null_schema_has_the_fingerprint_of_the_avro_test_suite() {
        // The Avro specification's test value for `"null"`: 7195948357588979594.
        let fp = fingerprint_of_canonical(&canon(r#""null""#));
        assert_eq!(u64::from_le_bytes(fp), 0x63dd_24e7_cc25_8f8a);
    }

    #[test]
    fn a_reference_to_an_undefined_type_is_an_error() {
        assert!(canonical_form(r#"{"type": "record", "name": "R", "fields": [{"name": "f", "type": "Nope"}]}"#).is_err());
        assert!(canonical_form("{").is_err());
    }
}
