//! The event codec: Avro datum encoding of an [`Event`] inside one of the two framings, and
//! decoding of either framing back into the current type through Avro schema resolution, so
//! records written with an older schema still read.

use std::io::Read;

use apache_avro::{reader::datum::GenericDatumReader, writer::datum::GenericDatumWriter, Schema};

use crate::{
    catalog,
    framing::{self, Frame},
    registry::Registry,
    renamed::Doubled,
    Error, Event, Result, SchemaKey,
};

/// The environment variable that switches [`Codec::from_env`] to Schema Registry framing.
pub const SCHEMA_REGISTRY_URL: &str = "SCHEMA_REGISTRY_URL";

/// Encodes and decodes events. Cheap to clone (the registry client and its caches are shared).
///
/// Encoding uses the mode's framing; decoding accepts both framings whatever the mode.
#[derive(Clone, Debug)]
pub struct Codec {
    registry: Option<Registry>,
}

impl Codec {
    /// No registry: Avro single-object encoding (`C3 01`, the writer schema's 8-byte
    /// little-endian CRC-64-AVRO fingerprint, the datum). Old versions are found by fingerprint
    /// among the schemas embedded in this build.
    pub fn single_object() -> Codec {
        Codec { registry: None }
    }

    /// Confluent framing (`00`, the 4-byte big-endian schema id, the datum) with the registry at
    /// `url`. Each event's schema is registered on first use under `"<topic>-value"`, or under
    /// `"<topic>-<record full name>"` when its topic carries several record types (`alpes.audit`).
    pub fn registry(url: &str) -> Codec {
        Codec {
            registry: Some(Registry::new(url)),
        }
    }

    /// [`Codec::registry`] when `SCHEMA_REGISTRY_URL` is set and not blank, else
    /// [`Codec::single_object`].
    pub fn from_env() -> Codec {
        match std::env::var(SCHEMA_REGISTRY_URL) {
            Ok(url) if !url.trim().is_empty() => Codec::registry(&url),
            _ => Codec::single_object(),
        }
    }

    /// `"single-object"` or `"schema-registry"`, for logs and health output.
    pub fn describe(&self) -> &'static str {
        match self.registry {
            None => "single-object",
            Some(_) => "schema-registry",
        }
    }

    /// Encodes `event` with its current schema, for its topic `E::TOPIC`: a renamed field under
    /// both its names ([`crate::renamed`]).
    pub async fn encode<E: Event>(&self, event: &E) -> Result<Vec<u8>> {
        let body = GenericDatumWriter::builder(E::schema())
            .build()
            .and_then(|writer| writer.write_ser_to_vec(&Doubled(event)))
            .map_err(|e| Error::Encode(e.to_string()))?;
        match &self.registry {
            None => Ok(framing::single_object(current_fingerprint::<E>(), &body)),
            Some(registry) => Ok(framing::registry(registry.id_of::<E>().await?, &body)),
        }
    }

    /// Decodes a record of either framing into `E`, resolving the writer schema to `E`'s.
    pub async fn decode<E: Event>(&self, bytes: &[u8]) -> Result<E> {
        match framing::parse(bytes)? {
            Frame::SingleObject { fingerprint, body } => {
                let writer = match catalog::by_fingerprint(&fingerprint) {
                    Some(entry) if entry.name == E::NAME => &entry.schema,
                    Some(entry) => {
                        return Err(Error::WrongType {
                            expected: E::NAME,
                            found: entry.name.to_owned(),
                        })
                    }
                    None if fingerprint == current_fingerprint::<E>() => E::schema(),
                    None => {
                        return Err(Error::UnknownSchema {
                            writer: SchemaKey::Fingerprint(fingerprint),
                        })
                    }
                };
                read::<E>(writer, body)
            }
            Frame::Registry { id, body } => {
                let Some(registry) = &self.registry else {
                    return Err(Error::UnknownSchema {
                        writer: SchemaKey::RegistryId(id),
                    });
                };
                let writer = registry.writer_schema(id).await?;
                if writer.parsed.name() != E::schema().name() {
                    let found = writer
                        .parsed
                        .name()
                        .map_or_else(|| "a schema that is not a record".to_owned(), |n| n.fullname(None));
                    return Err(Error::WrongType { expected: E::NAME, found });
                }
                read::<E>(&writer.parsed, body)
            }
        }
    }
}

/// The fingerprint of `E`'s current schema: precomputed for the events of this crate.
fn current_fingerprint<E: Event>() -> [u8; 8] {
    match catalog::current(E::NAME) {
        Some(entry) if std::ptr::eq(&entry.schema, E::schema()) => entry.fingerprint,
        _ => catalog::fingerprint(E::schema()),
    }
}

/// Reads one datum written with `writer` as `E`, which must use up the whole body exactly. Error
/// texts are fixed: nothing from the body reaches them.
fn read<E: Event>(writer: &Schema, body: &[u8]) -> Result<E> {
    let reader = GenericDatumReader::builder(writer)
        .reader_schema(E::schema())
        .build()
        .map_err(|_| Error::NotAvro("the writer schema does not resolve"))?;
    let mut input = Exact {
        rest: body,
        overrun: false,
    };
    let value = reader
        .read_value(&mut input)
        .map_err(|_| Error::NotAvro("the body does not decode with its writer schema"))?;
    if input.overrun {
        return Err(Error::NotAvro("the body is truncated"));
    }
    if !input.rest.is_empty() {
        return Err(Error::NotAvro("trailing bytes after the record"));
    }
    apache_avro::from_value(&value).map_err(|_| Error::NotAvro("the record does not fit the event type"))
}

/// The body as a reader that notes any read past its end. apache-avro reads a string, boolean or
/// union index cut short by end of input as null instead of failing, so without this a
/// truncated record could decode with its last optional fields silently `None`.
struct Exact<'a> {
    rest: &'a [u8],
    overrun: bool,
}

impl Read for Exact<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.overrun |= buf.len() > self.rest.len();
        self.rest.read(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{tests::samples, ImagenAnonimizada, ImagenRegistrada};
    use apache_avro::{types::Value, GenericSingleObjectWriter};

    async fn round_trip<E: Event + PartialEq + std::fmt::Debug>(codec: &Codec, event: &E) {
        let bytes = codec.encode(event).await.unwrap();
        assert_eq!(codec.decode::<E>(&bytes).await.unwrap(), *event, "{}", E::NAME);
    }

    #[tokio::test]
    async fn every_event_round_trips_in_single_object_mode() {
        let codec = Codec::single_object();
        let s = samples();
        round_trip(&codec, &s.registrada).await;
        round_trip(&codec, &s.anonimizada).await;
        round_trip(&codec, &s.rechazada).await;
        round_trip(&codec, &s.usuario).await;
        round_trip(&codec, &s.login).await;
        round_trip(&codec, &s.uso).await;
        round_trip(&codec, &s.pago).await;
        round_trip(&codec, &s.pago_rechazado).await;
        round_trip(&codec, &s.auditoria).await;
        round_trip(&codec, &s.analisis).await;
        round_trip(&codec, &s.estudio).await;
        round_trip(&codec, &s.importacion).await;
        round_trip(&codec, &s.consentimiento).await;
        round_trip(&codec, &s.institucion).await;
        round_trip(&codec, &s.notificacion).await;
    }

    #[tokio::test]
    async fn optional_fields_round_trip_when_absent_too() {
        let mut event = samples().registrada;
        event.tipo_imagen = None;
        event.region_anatomica = None;
        event.profile.rules = None;
        round_trip(&Codec::single_object(), &event).await;
    }

    #[tokio::test]
    async fn a_single_object_header_is_c3_01_and_the_little_endian_rabin_fingerprint() {
        let event = samples().registrada;
        let bytes = Codec::single_object().encode(&event).await.unwrap();
        let fingerprint = catalog::fingerprint(ImagenRegistrada::schema());
        assert_eq!(&bytes[..2], &[0xC3, 0x01]);
        assert_eq!(&bytes[2..10], &fingerprint);
        // The body byte for byte what apache-avro's own single-object writer produces; its header
        // carries apache-avro's fingerprint, which differs for schemas with logical types (the
        // legacy one, still read).
        let mut expected = Vec::new();
        let value = apache_avro::to_value(Doubled(&event))
            .unwrap()
            .resolve(ImagenRegistrada::schema())
            .unwrap();
        GenericSingleObjectWriter::new_with_capacity(ImagenRegistrada::schema(), 1024)
            .unwrap()
            .write_value(value, &mut expected)
            .unwrap();
        assert_eq!(bytes[10..], expected[10..]);
        let entry = catalog::current("ImagenRegistrada").unwrap();
        assert_eq!(expected[2..10], entry.legacy_fingerprint);
    }

    #[tokio::test]
    async fn a_reader_of_the_new_names_finds_every_renamed_value_under_them() {
        let event = samples().anonimizada;
        let bytes = Codec::single_object().encode(&event).await.unwrap();
        let schema = ImagenAnonimizada::schema();
        let read = GenericDatumReader::builder(schema)
            .build()
            .unwrap()
            .read_value(&mut &bytes[10..])
            .unwrap();
        let Value::Record(fields) = read else { panic!("a record") };
        let field = |name: &str| fields.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone()).unwrap();
        let some = |v: Value| Value::Union(1, Box::new(v));
        assert_eq!(field("imagen_id"), some(Value::String(event.image_id.clone())));
        assert_eq!(field("evento_id"), some(Value::String(event.event_id.clone())));
        assert_eq!(field("tamano_bytes"), some(Value::Long(event.size_bytes)));
        assert_eq!(
            field("modalidad"),
            field("modality"),
            "an optional field's replacement is the same union"
        );
        let Value::Union(1, perfil) = field("perfil") else {
            panic!("perfil is set")
        };
        let Value::Record(perfil) = *perfil else {
            panic!("perfil is a Profile")
        };
        let retener = perfil.iter().find(|(n, _)| n == "retener").map(|(_, v)| v.clone()).unwrap();
        let strings = event.profile.retain.iter().map(|r| Value::String(r.clone())).collect();
        assert_eq!(retener, some(Value::Array(strings)));
        for (old, new) in crate::renamed::renames(ImagenAnonimizada::NAME) {
            let expected = match field(old) {
                union @ Value::Union(..) => union,
                value => some(value),
            };
            assert_eq!(field(new), expected, "{new} carries {old}'s value");
        }
    }

    #[tokio::test]
    async fn garbage_is_not_avro() {
        let codec = Codec::single_object();
        for bytes in [&b"%PDF-1.7 not an event"[..], b"", &[0xC3, 0x01]] {
            let err = codec.decode::<ImagenRegistrada>(bytes).await.unwrap_err();
            assert_eq!(err.reason(), "not_avro", "{bytes:?}");
        }
    }

    #[tokio::test]
    async fn a_truncated_body_is_not_avro_wherever_it_is_cut() {
        let codec = Codec::single_object();
        let bytes = codec.encode(&samples().registrada).await.unwrap();
        for len in 10..bytes.len() {
            let err = codec.decode::<ImagenRegistrada>(&bytes[..len]).await.unwrap_err();
            assert!(matches!(err, Error::NotAvro(_)), "cut at {len}: {err}");
            assert!(!err.to_string().contains("raw/"), "{err}");
        }
    }

    #[tokio::test]
    async fn trailing_bytes_are_not_avro() {
        let codec = Codec::single_object();
        let mut bytes = codec.encode(&samples().registrada).await.unwrap();
        bytes.push(0);
        let err = codec.decode::<ImagenRegistrada>(&bytes).await.unwrap_err();
        assert!(matches!(err, Error::NotAvro("trailing bytes after the record")), "{err}");
    }

    #[tokio::test]
    async fn an_unknown_fingerprint_is_unknown_schema_and_names_only_the_fingerprint() {
        let mut bytes = Codec::single_object().encode(&samples().registrada).await.unwrap();
        bytes[2..10].copy_from_slice(&[0xde, 0xad, 0xbe, 0xef, 0, 1, 2, 3]);
        let err = Codec::single_object().decode::<ImagenRegistrada>(&bytes).await.unwrap_err();
        assert!(matches!(
            err,
            Error::UnknownSchema {
                writer: SchemaKey::Fingerprint([0xde, 0xad, 0xbe, 0xef, 0, 1, 2, 3])
            }
        ));
        assert_eq!(err.to_string(), "unknown writer schema: fingerprint deadbeef00010203");
    }

    #[tokio::test]
    async fn another_events_bytes_are_the_wrong_type() {
        let bytes = Codec::single_object().encode(&samples().anonimizada).await.unwrap();
        let err = Codec::single_object().decode::<ImagenRegistrada>(&bytes).await.unwrap_err();
        assert!(
            matches!(&err, Error::WrongType { expected: "ImagenRegistrada", found } if found == ImagenAnonimizada::NAME),
            "{err}"
        );
        assert_eq!(err.reason(), "wrong_type");
    }

    #[tokio::test]
    async fn registry_framed_bytes_without_a_registry_are_unknown_schema() {
        let err = Codec::single_object()
            .decode::<ImagenRegistrada>(&[0, 0, 0, 0, 42, 2, b'x'])
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::UnknownSchema {
                    writer: SchemaKey::RegistryId(42)
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn a_codec_and_its_futures_can_cross_threads() {
        fn assert_send_sync<T: Send + Sync + Clone + std::fmt::Debug>(_: &T) {}
        fn assert_send<T: Send>(_: T) {}
        let codec = Codec::registry("http://127.0.0.1:1");
        assert_send_sync(&codec);
        let event = samples().registrada;
        assert_send(codec.encode(&event));
        assert_send(codec.decode::<ImagenRegistrada>(&[]));
    }

    #[test]
    fn the_codec_describes_its_mode() {
        assert_eq!(Codec::single_object().describe(), "single-object");
        assert_eq!(Codec::registry("http://127.0.0.1:1").describe(), "schema-registry");
    }
}
