//! The two wire framings of an Avro datum and how to tell them apart:
//! Avro single-object encoding (`C3 01`, 8-byte little-endian Rabin fingerprint, body) and
//! Confluent Schema Registry framing (`00`, 4-byte big-endian schema id, body).

use crate::{Error, Result};

/// The two magic bytes of Avro single-object encoding.
pub(crate) const SINGLE_OBJECT_MAGIC: [u8; 2] = [0xC3, 0x01];
/// The magic byte of Confluent framing.
pub(crate) const REGISTRY_MAGIC: u8 = 0x00;

/// A framed datum, split into the header's writer-schema key and the body.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Frame<'a> {
    SingleObject { fingerprint: [u8; 8], body: &'a [u8] },
    Registry { id: u32, body: &'a [u8] },
}

/// Reads the header; says nothing about the body.
pub(crate) fn parse(bytes: &[u8]) -> Result<Frame<'_>> {
    if let Some(rest) = bytes.strip_prefix(&SINGLE_OBJECT_MAGIC) {
        if let Some((fingerprint, body)) = rest.split_first_chunk::<8>() {
            return Ok(Frame::SingleObject {
                fingerprint: *fingerprint,
                body,
            });
        }
    } else if let Some((&REGISTRY_MAGIC, rest)) = bytes.split_first() {
        if let Some((id, body)) = rest.split_first_chunk::<4>() {
            return Ok(Frame::Registry {
                id: u32::from_be_bytes(*id),
                body,
            });
        }
    }
    Err(Error::NotAvro("no single-object or schema-registry header"))
}

/// `C3 01` + fingerprint + body.
pub(crate) fn single_object(fingerprint: [u8; 8], body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(10 + body.len());
    out.extend_from_slice(&SINGLE_OBJECT_MAGIC);
    out.extend_from_slice(&fingerprint);
    out.extend_from_slice(body);
    out
}

/// `00` + big-endian id + body.
pub(crate) fn registry(id: u32, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + body.len());
    out.push(REGISTRY_MAGIC);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_single_object_frame_round_trips() {
        let bytes = single_object([1, 2, 3, 4, 5, 6, 7, 8], b"body");
        assert_eq!(&bytes[..2], &[0xC3, 0x01]);
        assert_eq!(
            parse(&bytes).unwrap(),
            Frame::SingleObject {
                fingerprint: [1, 2, 3, 4, 5, 6, 7, 8],
                body: b"body"
            }
        );
    }

    #[test]
    fn a_registry_frame_starts_with_magic_zero_and_a_big_endian_id() {
        let bytes = registry(0x0102_0304, b"x");
        assert_eq!(bytes, [0, 1, 2, 3, 4, b'x']);
        assert_eq!(
            parse(&bytes).unwrap(),
            Frame::Registry {
                id: 0x0102_0304,
                body: b"x"
            }
        );
    }

    #[test]
    fn an_empty_body_is_still_a_frame() {
        assert!(matches!(parse(&[0, 0, 0, 0, 9]), Ok(Frame::Registry { id: 9, body: [] })));
    }

    #[test]
    fn truncated_headers_and_other_bytes_are_not_avro() {
        for bytes in [
            &b""[..],
            &[0xC3],
            &[0xC3, 0x01, 1, 2, 3, 4, 5, 6, 7],
            &[0, 0, 0, 1],
            b"{\"json\":1}",
            &[0xC3, 0x02, 0, 0, 0, 0, 0, 0, 0, 0],
        ] {
            assert!(matches!(parse(bytes), Err(Error::NotAvro(_))), "{bytes:?}");
        }
    }
}
