//! What a batch produced, record by record, and the offsets it consumed: what
//! both the plain publisher and the transaction need.

use crate::events::Message;

/// The highest consumed offset of each partition in a batch.
pub type Offsets = Vec<(String, i32, i64)>;

/// The output messages of one consumed record, and where that record came from.
#[derive(Debug)]
pub struct Produced {
    /// Source topic.
    pub topic: String,
    /// Source partition.
    pub partition: i32,
    /// Source offset.
    pub offset: i64,
    /// The epoch of the source partition when the record was taken.
    pub epoch: u64,
    /// The result, its analysis (when the safety net ran), then its audit entry.
    pub messages: Vec<Message>,
}

/// The highest offset of each partition among `(topic, partition, offset)`s, sorted by topic and
/// partition.
pub fn highest_offsets<'a>(records: impl IntoIterator<Item = (&'a str, i32, i64)>) -> Offsets {
    let mut highest: std::collections::BTreeMap<(&str, i32), i64> = std::collections::BTreeMap::new();
    for (topic, partition, offset) in records {
        let slot = highest.entry((topic, partition)).or_insert(offset);
        *slot = (*slot).max(offset);
    }
    highest.into_iter().map(|((t, p), o)| (t.to_owned(), p, o)).collect()
}
