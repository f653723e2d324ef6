//! The schemas of the answers, derived from the types that serialize them.
//!
//! A service lists its answer types (each `#[derive(Serialize, ToSchema)]`)
//! in a `#[derive(utoipa::OpenApi)] #[openapi(components(schemas(...)))]`
//! marker; [`answer_schemas`] turns it into the `components/schemas` of its
//! document. The document then cannot drift from the wire: a field exists in
//! the schema because the type serializes it, with the type's doc comment as
//! its description.
//!
//! Two rules of Alpes' answers are applied here, once, rather than on every
//! field: an answer carries every field (null when it has no value; no answer
//! type skips one), so every property is required; and a field the
//! vocabulary replaced (`#[schema(deprecated)]`) says until when it is
//! answered ([`DEPRECATED_UNTIL`]).

use super::DEPRECATED_UNTIL;
use serde_json::Value;
use utoipa::openapi::schema::{Object, Schema, Type};
use utoipa::openapi::{Deprecated, RefOr};
use utoipa::PartialSchema;

/// The `components/schemas` of `T`, answers: every schema it lists and every
/// one they reference, with the rules above applied.
pub fn answer_schemas<T: utoipa::OpenApi>() -> Value {
    let mut schemas = derived_schemas::<T>();
    if let Value::Object(all) = &mut schemas {
        all.values_mut().for_each(every_property_required);
    }
    schemas
}

/// The `components/schemas` of `T` as derived: for request bodies (a field
/// with a default, or an `Option`, is not required) and for an answer that
/// leaves fields out.
pub fn derived_schemas<T: utoipa::OpenApi>() -> Value {
    let schemas = T::openapi().components.map(|c| c.schemas).unwrap_or_default();
    serde_json::to_value(schemas).unwrap_or(Value::Null)
}

/// A string that is one of `values` (for a field whose Rust type is a
/// `&str` code, with `#[schema(schema_with = ...)]`).
pub fn string_enum(values: &[&str]) -> Object {
    Object::builder()
        .schema_type(Type::String)
        .enum_values(Some(values.iter().copied()))
        .build()
}

/// `schema` marked deprecated: for a replaced name's `schema_with` function
/// (the derive ignores `#[schema(deprecated)]` beside `schema_with`).
pub fn marked_deprecated(mut schema: Object) -> Object {
    schema.deprecated = Some(Deprecated::True);
    schema
}

/// The media types of an image Alpes stores (the anonymizer's `MediaKind`; a test of
/// ingest's checks the two agree).
pub const IMAGE_MEDIA_TYPES: [&str; 3] = ["application/dicom", "image/png", "image/jpeg"];

/// A field holding one of [`IMAGE_MEDIA_TYPES`].
pub fn image_media_types() -> Object {
    string_enum(&IMAGE_MEDIA_TYPES)
}

/// `T`'s schema inline, marked deprecated (with
/// `#[schema(schema_with = deprecated_of::<T>)]`): the derive drops
/// `#[schema(deprecated)]` on a field whose type is another schema or an
/// `Option` of one.
pub fn deprecated_of<T: PartialSchema>() -> RefOr<Schema> {
    let mut schema = T::schema();
    match &mut schema {
        RefOr::T(Schema::Object(o)) => o.deprecated = Some(Deprecated::True),
        // `oneOf` has no `deprecated` of its own in utoipa; the keyword is written beside it.
        RefOr::T(Schema::OneOf(o)) => {
            o.extensions
                .get_or_insert_with(Default::default)
                .insert("deprecated".into(), Value::Bool(true));
        }
        _ => {}
    }
    schema
}

/// The deprecation note of a replaced name.
fn deprecation_note() -> String {
    format!("Deprecated: answered until {DEPRECATED_UNTIL}; read the vocabulary's name.")
}

/// `schema.property` for every property of `schemas` (a service's
/// `components/schemas`) that is named in `old` (names the vocabulary
/// replaced) but not marked deprecated: a check for a service's tests, since
/// the derive drops the mark silently in some places (see [`deprecated_of`],
/// [`marked_deprecated`]).
pub fn undeprecated(schemas: &Value, old: &[&str]) -> Vec<String> {
    fn walk(name: &str, schema: &Value, old: &[&str], found: &mut Vec<String>) {
        for (p, v) in schema["properties"].as_object().into_iter().flatten() {
            if old.contains(&p.as_str()) && v.get("deprecated") != Some(&Value::Bool(true)) {
                found.push(format!("{name}.{p}"));
            }
        }
        for part in schema["allOf"].as_array().into_iter().flatten() {
            walk(name, part, old, found);
        }
    }
    let mut found = Vec::new();
    for (name, schema) in schemas.as_object().into_iter().flatten() {
        walk(name, schema, old, &mut found);
    }
    found
}

fn every_property_required(schema: &mut Value) {
    let Value::Object(m) = schema else { return };
    if let Some(Value::Object(props)) = m.get_mut("properties") {
        for p in props.values_mut() {
            if p.get("deprecated") == Some(&Value::Bool(true)) {
                p["description"] = Value::String(deprecation_note());
            }
            every_property_required(p);
        }
        let names = props.keys().cloned().map(Value::String).collect();
        m.insert("required".into(), Value::Array(names));
    }
    for composition in ["allOf", "oneOf", "anyOf"] {
        if let Some(Value::Array(parts)) = m.get_mut(composition) {
            parts.iter_mut().for_each(every_property_required);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Serialize;
    use serde_json::json;
    use utoipa::ToSchema;

    /// A thing.
    #[derive(Serialize, ToSchema)]
    #[allow(dead_code)]
    struct Cosa {
        /// Its id.
        id: String,
        nota: Option<String>,
        #[schema(deprecated)]
        thing_id: String,
        #[schema(schema_with = tipo)]
        tipo: &'static str,
        parte: Option<Parte>,
        #[schema(schema_with = deprecated_of::<Option<Parte>>)]
        part: Option<Parte>,
    }

    #[derive(Serialize, ToSchema)]
    #[allow(dead_code)]
    struct Parte {
        n: Option<i32>,
    }

    fn tipo() -> Object {
        string_enum(&["a", "b"])
    }

    #[derive(utoipa::OpenApi)]
    #[openapi(components(schemas(Cosa)))]
    struct Answers;

    #[test]
    fn every_field_of_an_answer_is_required_and_a_replaced_name_says_until_when() {
        let s = answer_schemas::<Answers>();
        let mut required: Vec<&str> = s["Cosa"]["required"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        required.sort_unstable();
        assert_eq!(required, ["id", "nota", "part", "parte", "thing_id", "tipo"]);
        assert_eq!(s["Cosa"]["description"], "A thing.");
        assert_eq!(s["Cosa"]["properties"]["id"]["description"], "Its id.");
        assert_eq!(s["Cosa"]["properties"]["nota"]["type"], json!(["string", "null"]));
        assert_eq!(s["Cosa"]["properties"]["thing_id"]["deprecated"], true);
        assert!(s["Cosa"]["properties"]["thing_id"]["description"]
            .as_str()
            .is_some_and(|d| d.contains(DEPRECATED_UNTIL)));
        assert_eq!(s["Cosa"]["properties"]["tipo"]["enum"], json!(["a", "b"]));
        let part = &s["Cosa"]["properties"]["part"];
        assert_eq!((&part["deprecated"], &part["oneOf"][0]["type"]), (&json!(true), &json!("null")));
        assert!(part["description"].as_str().is_some_and(|d| d.contains(DEPRECATED_UNTIL)));
        assert_eq!(s["Parte"]["required"], json!(["n"]), "a referenced schema is listed too");
    }
}
