//! The crate's error type. Every variant says what went wrong without echoing the payload, so
//! an error can be logged, counted and put in an `ImagenRechazada.message` as it is.

use std::fmt;

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Why an event could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bytes carry neither framing header, or the body does not decode with the writer schema.
    /// Poison: route the record aside.
    #[error("not an Alpes Avro record: {0}")]
    NotAvro(&'static str),
    /// The framing names a writer schema this process does not know (no such fingerprint, no
    /// registry configured, or the registry has no such id). Poison unless a deploy is lagging.
    #[error("unknown writer schema: {writer}")]
    UnknownSchema {
        /// The fingerprint or registry id found in the header.
        writer: SchemaKey,
    },
    /// The record is a known event, but not the one asked for: it sits on the wrong topic.
    #[error("wrong event type: expected {expected}, found {found}")]
    WrongType {
        /// The record name asked for.
        expected: &'static str,
        /// The record name of the writer schema.
        found: String,
    },
    /// The schema registry could not be reached or refused a call. Usually transient: retry.
    #[error("schema registry: {0}")]
    Registry(String),
    /// The event does not fit its own schema (a bug in the producer).
    #[error("cannot encode event: {0}")]
    Encode(String),
}

impl Error {
    /// A stable, machine-readable code for metrics and `ImagenRechazada.reason`.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::NotAvro(_) => "not_avro",
            Error::UnknownSchema { .. } => "unknown_schema",
            Error::WrongType { .. } => "wrong_type",
            Error::Registry(_) => "registry",
            Error::Encode(_) => "encode",
        }
    }
}

/// How a record names its writer schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SchemaKey {
    /// Single-object encoding: the CRC-64-AVRO (Rabin) fingerprint, in wire (little-endian) order.
    Fingerprint([u8; 8]),
    /// Confluent framing: the schema id in the registry.
    RegistryId(u32),
}

impl fmt::Display for SchemaKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SchemaKey::Fingerprint(bytes) => {
                f.write_str("fingerprint ")?;
                bytes.iter().try_for_each(|b| write!(f, "{b:02x}"))
            }
            SchemaKey::RegistryId(id) => write!(f, "registry id {id}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_has_its_own_reason_code() {
        let errors = [
            Error::NotAvro("x"),
            Error::UnknownSchema {
                writer: SchemaKey::RegistryId(1),
            },
            Error::WrongType {
                expected: "A",
                found: "B".into(),
            },
            Error::Registry("down".into()),
            Error::Encode("bad".into()),
        ];
        let codes: Vec<_> = errors.iter().map(Error::reason).collect();
        assert_eq!(codes, ["not_avro", "unknown_schema", "wrong_type", "registry", "encode"]);
    }

    #[test]
    fn a_fingerprint_displays_as_hex_in_wire_order() {
        let key = SchemaKey::Fingerprint([0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef]);
        assert_eq!(key.to_string(), "fingerprint 0123456789abcdef");
        assert_eq!(SchemaKey::RegistryId(7).to_string(), "registry id 7");
    }
}
