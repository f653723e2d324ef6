//! One batch of consumed records: every record processed side by side (fetches bounded by the
//! shared limit, the engine on the pool), the outputs encoded and published in record order,
//! and the highest offset of each partition handed back for the consume loop to store.

use std::sync::Arc;
use std::time::Instant;

use futures::future::join_all;

use crate::context::Context;
use crate::events::Output;
use crate::image;
use crate::produced::{highest_offsets, Offsets, Produced};
use crate::publish::Turn;
use crate::record::Record;
use crate::Result;

/// Records taken from the consumer together.
#[derive(Debug)]
pub struct Batch {
    /// The order the batch was taken in; offsets are stored in this order.
    pub seq: u64,
    /// The records, in consumption order.
    pub records: Vec<Record>,
}

/// What a batch produced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// `ImagenAnonimizada` events.
    pub anonymized: usize,
    /// `ImagenRechazada` events for readable events.
    pub rejected: usize,
    /// `ImagenRechazada` events for poison records.
    pub poison: usize,
}

/// What one record produced.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Anonymized,
    Rejected,
    Poison,
}

/// A published batch.
#[derive(Debug)]
pub struct Done {
    /// The batch's sequence number.
    pub seq: u64,
    /// The highest offset of each partition, to store (plain mode; a transaction committed its
    /// own).
    pub offsets: Offsets,
    /// Outputs by kind.
    pub counts: Counts,
}

impl Batch {
    /// The highest offset of each partition in the batch, sorted by topic and partition.
    pub fn offsets(&self) -> Offsets {
        highest_offsets(self.records.iter().map(|r| (r.topic.as_str(), r.partition, r.offset)))
    }
}

/// Processes and publishes `batch`. The caller instruments it with the batch's span.
pub async fn run(ctx: Arc<Context>, batch: Batch, turn: Turn) -> Result<Done> {
    let started = Instant::now();
    let offsets = batch.offsets();
    let outputs = join_all(batch.records.iter().map(|r| image::process(&ctx, r))).await;
    // Each result, its analysis, then its audit entry (in the same transaction in transactional
    // mode).
    let mut produced = Vec::with_capacity(outputs.len());
    let mut kinds = Vec::with_capacity(outputs.len());
    for (output, record) in outputs.into_iter().zip(&batch.records) {
        let processed = output?;
        kinds.push(match &processed.output {
            Output::Anonymized(_) => Kind::Anonymized,
            Output::Rejected(e) if e.image_id.is_some() => Kind::Rejected,
            Output::Rejected(_) => Kind::Poison,
        });
        produced.push(Produced {
            topic: record.topic.clone(),
            partition: record.partition,
            offset: record.offset,
            epoch: record.epoch,
            messages: processed.encode(&ctx.codec, record).await?,
        });
    }
    let published = ctx.publisher.publish(batch.seq, &ctx.stop, &produced, turn).await?;
    let mut counts = Counts::default();
    for (kind, _) in kinds.iter().zip(&published).filter(|(_, p)| **p) {
        match kind {
            Kind::Anonymized => counts.anonymized += 1,
            Kind::Rejected => counts.rejected += 1,
            Kind::Poison => counts.poison += 1,
        }
    }
    let dropped = published.iter().filter(|p| !**p).count();
    let span = tracing::Span::current();
    span.record("anonymized", counts.anonymized);
    span.record("rejected", counts.rejected);
    span.record("poison", counts.poison);
    tracing::info!(millis = started.elapsed().as_millis() as u64, dropped, "batch published");
    Ok(Done {
        seq: batch.seq,
        offsets,
        counts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(partition: i32, offset: i64) -> Record {
        Record {
            topic: "t".into(),
            partition,
            offset,
            payload: Vec::new(),
            epoch: 0,
        }
    }

    #[test]
    fn a_batch_stores_the_highest_offset_of_each_partition() {
        let batch = Batch {
            seq: 0,
            records: vec![record(1, 5), record(0, 9), record(1, 7), record(1, 6), record(0, 8)],
        };
        assert_eq!(batch.offsets(), vec![("t".to_owned(), 0, 9), ("t".to_owned(), 1, 7)]);
    }
}
