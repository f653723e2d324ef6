//! Renamed fields: during a deprecation period an event carries each renamed field twice, under
//! its old name and under the new one, with the same value.
//!
//! The schema says which: an old field carries `"replaced_by": "<new name>"`, and the new field
//! follows it, nullable with default null (null on records written before the rename). The Rust
//! types keep the old names, which every record of every version has, so decoding needs nothing;
//! [`Doubled`] writes each value once more under its new name on the way out.

use std::{collections::HashMap, sync::LazyLock};

use apache_avro::Schema;
use serde::ser::{Serialize, SerializeStruct, Serializer};

use crate::catalog;

/// The custom attribute of an old field that names the field replacing it.
pub const REPLACED_BY: &str = "replaced_by";

/// `(old name, new name)` of each renamed field.
type Pairs = Vec<(&'static str, &'static str)>;

/// The renamed fields of every record of the current schemas, nested ones included, by record
/// name.
static RENAMES: LazyLock<HashMap<&'static str, Pairs>> = LazyLock::new(|| {
    let mut found = HashMap::new();
    for entry in catalog::entries().iter().filter(|e| e.version.is_none()) {
        collect(&entry.schema, &mut found);
    }
    found
});

fn collect(schema: &'static Schema, found: &mut HashMap<&'static str, Pairs>) {
    match schema {
        Schema::Record(record) => {
            let pairs = record
                .fields
                .iter()
                .filter_map(|f| match f.custom_attributes.get(REPLACED_BY) {
                    Some(serde_json::Value::String(new)) => Some((f.name.as_str(), new.as_str())),
                    _ => None,
                })
                .collect();
            found.insert(record.name.name(), pairs);
            for field in &record.fields {
                collect(&field.schema, found);
            }
        }
        Schema::Union(union) => union.variants().iter().for_each(|v| collect(v, found)),
        _ => {}
    }
}

/// The renamed fields of the record named `record` (its short name): `(old, new)` pairs.
pub fn renames(record: &str) -> &'static [(&'static str, &'static str)] {
    RENAMES.get(record).map_or(&[], Vec::as_slice)
}

/// `value`, serialized with every renamed field of its records written under both names.
#[derive(Debug)]
pub struct Doubled<'a, T: ?Sized>(pub &'a T);

impl<T: Serialize + ?Sized> Serialize for Doubled<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(DoubledSerializer(serializer))
    }
}

/// Forwards everything to the inner serializer, except that a struct's renamed fields are
/// written twice, and a field's own value goes through [`Doubled`] (for nested records).
struct DoubledSerializer<S>(S);

struct DoubledStruct<S> {
    inner: S,
    renames: &'static [(&'static str, &'static str)],
}

impl<S> DoubledStruct<S> {
    /// The new name of the field named `old`, if it was renamed.
    fn replacement(&self, old: &str) -> Option<&'static str> {
        self.renames.iter().find(|(o, _)| *o == old).map(|(_, new)| *new)
    }
}

impl<S: SerializeStruct> SerializeStruct for DoubledStruct<S> {
    type Ok = S::Ok;
    type Error = S::Error;

    fn serialize_field<T: ?Sized + Serialize>(&mut self, key: &'static str, value: &T) -> Result<(), S::Error> {
        let value = Doubled(value);
        self.inner.serialize_field(key, &value)?;
        match self.replacement(key) {
            Some(new) => self.inner.serialize_field(new, &value),
            None => Ok(()),
        }
    }

    fn skip_field(&mut self, key: &'static str) -> Result<(), S::Error> {
        self.inner.skip_field(key)?;
        match self.replacement(key) {
            Some(new) => self.inner.skip_field(new),
            None => Ok(()),
        }
    }

    fn end(self) -> Result<S::Ok, S::Error> {
        self.inner.end()
    }
}

/// Serializer methods forwarded as they are: `name(args) -> what it returns`.
macro_rules! forward {
    ($($name:ident($($v:ident: $ty:ty),*) -> $ret:ty;)+) => {
        $(
            fn $name(self $(, $v: $ty)*) -> Result<$ret, S::Error> {
                self.0.$name($($v),*)
            }
        )+
    };
}

impl<S: Serializer> Serializer for DoubledSerializer<S> {
    type Ok = S::Ok;
    type Error = S::Error;
    type SerializeSeq = S::SerializeSeq;
    type SerializeTuple = S::SerializeTuple;
    type SerializeTupleStruct = S::SerializeTupleStruct;
    type SerializeTupleVariant = S::SerializeTupleVariant;
    type SerializeMap = S::SerializeMap;
    type SerializeStruct = DoubledStruct<S::SerializeStruct>;
    type SerializeStructVariant = S::SerializeStructVariant;

    forward! {
        serialize_bool(v: bool) -> S::Ok;
        serialize_i8(v: i8) -> S::Ok;
        serialize_i16(v: i16) -> S::Ok;
        serialize_i32(v: i32) -> S::Ok;
        serialize_i64(v: i64) -> S::Ok;
        serialize_i128(v: i128) -> S::Ok;
        serialize_u8(v: u8) -> S::Ok;
        serialize_u16(v: u16) -> S::Ok;
        serialize_u32(v: u32) -> S::Ok;
        serialize_u64(v: u64) -> S::Ok;
        serialize_u128(v: u128) -> S::Ok;
        serialize_f32(v: f32) -> S::Ok;
        serialize_f64(v: f64) -> S::Ok;
        serialize_char(v: char) -> S::Ok;
        serialize_str(v: &str) -> S::Ok;
        serialize_bytes(v: &[u8]) -> S::Ok;
        serialize_none() -> S::Ok;
        serialize_unit() -> S::Ok;
        serialize_unit_struct(name: &'static str) -> S::Ok;
        serialize_unit_variant(name: &'static str, index: u32, variant: &'static str) -> S::Ok;
        serialize_seq(len: Option<usize>) -> S::SerializeSeq;
        serialize_tuple(len: usize) -> S::SerializeTuple;
        serialize_tuple_struct(name: &'static str, len: usize) -> S::SerializeTupleStruct;
        serialize_tuple_variant(name: &'static str, index: u32, variant: &'static str, len: usize) -> S::SerializeTupleVariant;
        serialize_map(len: Option<usize>) -> S::SerializeMap;
        serialize_struct_variant(name: &'static str, index: u32, variant: &'static str, len: usize) -> S::SerializeStructVariant;
    }

    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Result<S::Ok, S::Error> {
        self.0.serialize_some(&Doubled(value))
    }

    fn serialize_newtype_struct<T: ?Sized + Serialize>(self, name: &'static str, value: &T) -> Result<S::Ok, S::Error> {
        self.0.serialize_newtype_struct(name, &Doubled(value))
    }

    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<S::Ok, S::Error> {
        self.0.serialize_newtype_variant(name, index, variant, &Doubled(value))
    }

    fn serialize_struct(self, name: &'static str, len: usize) -> Result<Self::SerializeStruct, S::Error> {
        let renames = renames(name);
        Ok(DoubledStruct {
            inner: self.0.serialize_struct(name, len + renames.len())?,
            renames,
        })
    }

    fn is_human_readable(&self) -> bool {
        self.0.is_human_readable()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_renamed_field_is_followed_by_its_nullable_replacement() {
        for entry in catalog::entries().iter().filter(|e| e.version.is_none()) {
            let Schema::Record(record) = &entry.schema else {
                panic!("{} is a record", entry.name)
            };
            for (old, new) in renames(entry.name) {
                let at = record.lookup[*old];
                let next = &record.fields[at + 1];
                assert_eq!(next.name, *new, "{}: {old} is followed by {new}", entry.name);
                assert_eq!(next.default, Some(serde_json::Value::Null), "{}.{new} defaults to null", entry.name);
                assert!(
                    matches!(&next.schema, Schema::Union(u) if u.is_nullable()),
                    "{}.{new} is nullable",
                    entry.name
                );
            }
        }
    }

    #[test]
    fn nested_records_have_their_renames_too() {
        assert!(renames("Profile").contains(&("retain", "retener")));
        assert!(renames("ImagenRegistrada").contains(&("profile", "perfil")));
        assert!(renames("NoSuchRecord").is_empty());
    }

    #[test]
    fn a_doubled_struct_writes_each_renamed_field_under_both_names_with_one_value() {
        let event = crate::tests::samples().registrada;
        let value = serde_json::to_value(Doubled(&event)).expect("serializes");
        assert_eq!(value["image_id"], value["imagen_id"]);
        assert_eq!(value["image_id"], serde_json::json!(event.image_id));
        assert_eq!(value["profile"]["retain"], value["perfil"]["retener"]);
        assert_eq!(value["perfil"], value["profile"]);
        assert_eq!(
            value["sha256"],
            serde_json::json!(event.sha256),
            "fields not renamed are written once"
        );
    }
}
