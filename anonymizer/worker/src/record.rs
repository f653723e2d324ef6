//! A consumed record, detached from the consumer: where it came from and its bytes.

use rdkafka::message::{BorrowedMessage, Message as _};

/// One record of `alpes.images.registered`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Source topic.
    pub topic: String,
    /// Source partition.
    pub partition: i32,
    /// Source offset.
    pub offset: i64,
    /// The payload (empty when the record had none).
    pub payload: Vec<u8>,
    /// The epoch of its partition when it was taken
    /// ([`alpes_platform::kafka::CommitOnRevoke::epoch`]).
    pub epoch: u64,
}

impl Record {
    /// Copies what the worker needs out of a consumed message, taken in `epoch` of its partition.
    pub fn from_message(msg: &BorrowedMessage<'_>, epoch: u64) -> Record {
        Record {
            topic: msg.topic().to_owned(),
            partition: msg.partition(),
            offset: msg.offset(),
            payload: msg.payload().map(<[u8]>::to_vec).unwrap_or_default(),
            epoch,
        }
    }

    /// `topic/partition/offset`, the key of a poison record's rejection.
    pub fn coordinates(&self) -> String {
        format!("{}/{}/{}", self.topic, self.partition, self.offset)
    }
}
