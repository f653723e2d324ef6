//! DIMSE command sets (PS3.7 §9.3, §E): the group 0000 elements of a
//! request, read from their Implicit VR Little Endian bytes, and the
//! responses Alpes writes. Only what C-ECHO and C-STORE use; a command set
//! never holds a sequence, so a flat reader is the whole parser.

/// C-STORE-RQ.
pub const C_STORE_RQ: u16 = 0x0001;
/// C-ECHO-RQ.
pub const C_ECHO_RQ: u16 = 0x0030;
/// What a response's Command Field adds to its request's.
const RESPONSE: u16 = 0x8000;
/// Command Data Set Type: no data set follows.
pub const NO_DATA_SET: u16 = 0x0101;

/// Status (PS3.4 Annex B.2.3, PS3.7 Annex C): success.
pub const SUCCESS: u16 = 0x0000;
/// Refused: the SOP class is not the presentation context's.
pub const SOP_CLASS_NOT_SUPPORTED: u16 = 0x0122;
/// The operation is not one the listener performs (C-FIND on a storage context, say).
pub const UNRECOGNIZED_OPERATION: u16 = 0x0211;
/// Refused: out of resources (the store or the broker did not answer; try again).
pub const OUT_OF_RESOURCES: u16 = 0xA700;
/// Error: the data set does not match the SOP class (or instance) the command names.
pub const DATA_SET_MISMATCH: u16 = 0xA900;
/// Error: cannot understand (not DICOM the engine reads, or over the size limit).
pub const CANNOT_UNDERSTAND: u16 = 0xC000;

const AFFECTED_SOP_CLASS: u32 = 0x0000_0002;
const COMMAND_FIELD: u32 = 0x0000_0100;
const MESSAGE_ID: u32 = 0x0000_0110;
const RESPONDED_TO: u32 = 0x0000_0120;
const DATA_SET_TYPE: u32 = 0x0000_0800;
const STATUS: u32 = 0x0000_0900;
const ERROR_COMMENT: u32 = 0x0000_0902;
const AFFECTED_SOP_INSTANCE: u32 = 0x0000_1000;

/// The largest command set taken, bytes: real ones are a few hundred.
pub const MAX_COMMAND: usize = 64 * 1024;

/// A request's command set, as far as the listener reads it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Command {
    /// Command Field (0000,0100).
    pub field: u16,
    /// Message ID (0000,0110).
    pub message_id: u16,
    /// Affected SOP Class UID (0000,0002), without padding.
    pub sop_class: String,
    /// Affected SOP Instance UID (0000,1000), without padding.
    pub sop_instance: String,
    /// Whether a data set follows (Command Data Set Type other than 0101H).
    pub has_data_set: bool,
    /// Status (0000,0900), in a response.
    pub status: Option<u16>,
}

/// Why a command set could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadCommand {
    /// An element runs past the end, or an element of another group.
    #[error("the command set is malformed")]
    Malformed,
    /// No Command Field.
    #[error("the command set has no Command Field")]
    NoCommandField,
}

fn u16_of(v: &[u8]) -> Option<u16> {
    Some(u16::from_le_bytes(v.get(..2)?.try_into().ok()?))
}

fn uid_of(v: &[u8]) -> String {
    String::from_utf8_lossy(v).trim_end_matches(['\0', ' ']).trim().to_owned()
}

impl Command {
    /// Reads a command set (Implicit VR Little Endian, group 0000 only).
    pub fn parse(bytes: &[u8]) -> Result<Command, BadCommand> {
        let mut cmd = Command {
            has_data_set: true,
            ..Command::default()
        };
        let mut field = None;
        let mut rest = bytes;
        while !rest.is_empty() {
            let head: [u8; 8] = rest.get(..8).and_then(|h| h.try_into().ok()).ok_or(BadCommand::Malformed)?;
            let tag = u32::from_le_bytes([head[2], head[3], head[0], head[1]]);
            let len = u32::from_le_bytes([head[4], head[5], head[6], head[7]]) as usize;
            let value = rest.get(8..8 + len).ok_or(BadCommand::Malformed)?;
            if tag >> 16 != 0 {
                return Err(BadCommand::Malformed);
            }
            match tag {
                COMMAND_FIELD => field = u16_of(value),
                MESSAGE_ID => cmd.message_id = u16_of(value).ok_or(BadCommand::Malformed)?,
                AFFECTED_SOP_CLASS => cmd.sop_class = uid_of(value),
                AFFECTED_SOP_INSTANCE => cmd.sop_instance = uid_of(value),
                DATA_SET_TYPE => cmd.has_data_set = u16_of(value).ok_or(BadCommand::Malformed)? != NO_DATA_SET,
                STATUS => cmd.status = u16_of(value),
                _ => {}
            }
            rest = &rest[8 + len..];
        }
        cmd.field = field.ok_or(BadCommand::NoCommandField)?;
        Ok(cmd)
    }

    /// The response to this request with `status`, and an Error Comment when
    /// the status is not success (at most 64 characters; never PHI: callers
    /// pass a fixed reason).
    pub fn response(&self, status: u16, comment: Option<&str>) -> Vec<u8> {
        let mut elements: Vec<(u32, Vec<u8>)> = Vec::with_capacity(7);
        if !self.sop_class.is_empty() {
            elements.push((AFFECTED_SOP_CLASS, padded(self.sop_class.as_bytes(), 0)));
        }
        elements.push((COMMAND_FIELD, (self.field | RESPONSE).to_le_bytes().to_vec()));
        elements.push((RESPONDED_TO, self.message_id.to_le_bytes().to_vec()));
        elements.push((DATA_SET_TYPE, NO_DATA_SET.to_le_bytes().to_vec()));
        elements.push((STATUS, status.to_le_bytes().to_vec()));
        if let Some(c) = comment.filter(|_| status != SUCCESS) {
            let c: String = c.chars().filter(|c| (' '..='~').contains(c) && *c != '\\').take(64).collect();
            elements.push((ERROR_COMMENT, padded(c.as_bytes(), b' ')));
        }
        if !self.sop_instance.is_empty() {
            elements.push((AFFECTED_SOP_INSTANCE, padded(self.sop_instance.as_bytes(), 0)));
        }
        let body_len: usize = elements.iter().map(|(_, v)| 8 + v.len()).sum();
        let mut out = Vec::with_capacity(12 + body_len);
        put_element(&mut out, 0x0000_0000, &u32::try_from(body_len).unwrap_or(u32::MAX).to_le_bytes());
        for (tag, v) in &elements {
            put_element(&mut out, *tag, v);
        }
        out
    }
}

/// A value padded to even length with `pad`.
fn padded(v: &[u8], pad: u8) -> Vec<u8> {
    let mut v = v.to_vec();
    if v.len() % 2 == 1 {
        v.push(pad);
    }
    v
}

fn put_element(out: &mut Vec<u8>, tag: u32, value: &[u8]) {
    out.extend_from_slice(&((tag >> 16) as u16).to_le_bytes());
    out.extend_from_slice(&(tag as u16).to_le_bytes());
    out.extend_from_slice(&u32::try_from(value.len()).unwrap_or(u32::MAX).to_le_bytes());
    out.extend_from_slice(value);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(field: u16, data_set: u16) -> Command {
        Command {
            field,
            message_id: 7,
            sop_class: "1.2.840.10008.5.1.4.1.1.2".into(),
            sop_instance: "1.2.3.4".into(),
            has_data_set: data_set != NO_DATA_SET,
            status: None,
        }
    }

    #[test]
    fn a_response_reads_back_with_its_group_length_and_padding() {
        let rq = request(C_STORE_RQ, 0x0000);
        let bytes = rq.response(CANNOT_UNDERSTAND, Some("not DICOM"));
        assert_eq!(bytes.len() % 2, 0);
        let group_len = u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize;
        assert_eq!(group_len, bytes.len() - 12);
        let back = Command::parse(&bytes).expect("parses");
        assert_eq!(back.field, 0x8001);
        assert_eq!(back.sop_class, rq.sop_class);
        assert_eq!(back.sop_instance, "1.2.3.4", "the NUL pad is not part of the UID");
        assert!(!back.has_data_set);
        assert_eq!(back.status, Some(CANNOT_UNDERSTAND));
        assert!(bytes.windows(9).any(|w| w == b"not DICOM"));
    }

    #[test]
    fn a_success_carries_no_comment_and_an_echo_no_instance() {
        let echo = Command {
            field: C_ECHO_RQ,
            message_id: 1,
            sop_class: "1.2.840.10008.1.1".into(),
            ..Command::default()
        };
        let bytes = echo.response(SUCCESS, Some("ignored"));
        assert!(!bytes.windows(7).any(|w| w == b"ignored"));
        let back = Command::parse(&bytes).expect("parses");
        assert_eq!((back.field, back.sop_instance.as_str()), (0x8030, ""));
    }

    #[test]
    fn a_truncated_or_foreign_command_set_is_refused() {
        let bytes = request(C_STORE_RQ, 0).response(SUCCESS, None);
        assert_eq!(Command::parse(&bytes[..bytes.len() - 3]), Err(BadCommand::Malformed));
        let mut foreign = bytes.clone();
        foreign[0] = 8; // group 0008
        assert_eq!(Command::parse(&foreign), Err(BadCommand::Malformed));
        assert_eq!(Command::parse(&[]), Err(BadCommand::NoCommandField));
    }
}
