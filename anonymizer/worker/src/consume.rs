//! The consume loop of `alpes.images.registered`: batches records by count or time, keeps at most
//! `max_batches_in_flight` batches running, and stores each batch's offsets only after its outputs
//! are acknowledged, strictly in the order the batches were taken. On stop it takes nothing new,
//! finishes what is in flight, stores and commits.
//!
//! Backpressure: with every slot taken the next batch still fills; once it is complete the loop
//! stops taking records. If that lasts `pause_after`, the assignment is paused and the consumer
//! polled anyway, so it serves rebalances and stays in the group however long the batches take;
//! it resumes when a slot frees. Pausing is not immediate because librdkafka drops the records it
//! prefetched on pause and refetches them on resume, which costs up to `fetch.wait.max.ms` each
//! time (measured on the mock cluster, 400 small images: 19 s with a zero `pause_after`, 3.6 s
//! with the 1 s default).
//!
//! Rebalances: the records of a partition revoked or assigned since they were taken are fetched
//! again from the committed offset by whoever owns it now (this consumer too). So pending records
//! of such a partition are dropped, and a transactional batch commits none of them
//! ([`crate::transaction::Transactional::commit_batch`]): each record then has one committed
//! outcome. A partition that a cooperative rebalance leaves in place keeps its epoch and goes on.
//! A plain batch publishes anyway (at least once; the outputs keep their ids).

use std::collections::VecDeque;
use std::sync::Arc;

use alpes_platform::kafka::GroupConsumer;
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::Instrument;

use crate::batch::{self, Batch, Done};
use crate::context::Context;
use crate::publish::{Publisher, Turn};
use crate::record::Record;
use crate::{Error, Result, WorkerConfig};

/// A spawned batch; dropping it (the worker was dropped or killed) aborts the task.
struct InFlight {
    seq: u64,
    handle: JoinHandle<Result<Done>>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

/// Awaits the oldest batch in flight; never resolves when there is none.
async fn oldest(in_flight: &mut VecDeque<InFlight>) -> Result<Done> {
    match in_flight.front_mut() {
        Some(batch) => {
            let seq = batch.seq;
            (&mut batch.handle).await.map_err(|e| Error::Batch {
                seq,
                reason: format!("task failed: {e}"),
            })?
        }
        None => std::future::pending().await,
    }
}

/// The loop's state.
struct Loop {
    ctx: Arc<Context>,
    consumer: Arc<GroupConsumer>,
    cfg: WorkerConfig,
    pending: Vec<Record>,
    deadline: Option<Instant>,
    in_flight: VecDeque<InFlight>,
    paused: bool,
    /// Since when the loop could take nothing more (every slot taken, the next batch complete).
    blocked_since: Option<Instant>,
    next_seq: u64,
    /// The signal the next batch waits on (the last dispatched batch's `done`).
    last_turn: Option<oneshot::Receiver<()>>,
}

/// Runs until `ctx.stop` fires or a batch fails for good.
pub async fn run(ctx: Arc<Context>, consumer: Arc<GroupConsumer>, cfg: WorkerConfig) -> Result<()> {
    let pending = Vec::with_capacity(cfg.batch_size);
    let mut state = Loop {
        ctx,
        consumer,
        cfg,
        pending,
        deadline: None,
        in_flight: VecDeque::new(),
        paused: false,
        blocked_since: None,
        next_seq: 0,
        last_turn: None,
    };
    let failure = state.consume().await.err();
    if failure.is_some() {
        state.ctx.stop.trigger();
    }
    state.drain(failure).await
}

impl Loop {
    fn transactional(&self) -> bool {
        matches!(self.ctx.publisher, Publisher::Transactional(_))
    }

    async fn consume(&mut self) -> Result<()> {
        let stop = self.ctx.stop.clone();
        loop {
            let now = Instant::now();
            let due = self.deadline.is_some_and(|d| now >= d);
            let full = self.in_flight.len() >= self.cfg.max_batches_in_flight;
            if !self.pending.is_empty() && !full && (self.pending.len() >= self.cfg.batch_size || due) {
                self.dispatch();
                continue;
            }
            // Blocked: every slot is taken and the next batch is complete, so nothing more can be taken.
            let blocked = full && self.pending.len() >= self.cfg.batch_size;
            self.blocked_since = if blocked { Some(self.blocked_since.unwrap_or(now)) } else { None };
            let pause_at = self.blocked_since.map(|since| since + self.cfg.pause_after);
            let pause = pause_at.is_some_and(|at| now >= at);
            self.set_paused(pause);
            // Paused, the consumer is polled anyway: it serves rebalances and stays in the group.
            let poll = !blocked || self.paused;
            let batch_timer = self.deadline.filter(|_| !self.pending.is_empty() && !full);
            let pause_timer = pause_at.filter(|_| !self.paused);
            tokio::select! {
                biased;
                () = stop.wait() => return Ok(()),
                done = oldest(&mut self.in_flight), if !self.in_flight.is_empty() => {
                    self.in_flight.pop_front();
                    self.finish(done?);
                }
                msg = self.consumer.recv(), if poll => match msg {
                    Ok(msg) => {
                        let epoch = self.consumer.context().epoch(rdkafka::Message::topic(&msg), rdkafka::Message::partition(&msg));
                        let record = Record::from_message(&msg, epoch);
                        drop(msg);
                        self.drop_moved_pending();
                        if self.pending.is_empty() {
                            self.deadline = Some(Instant::now() + self.cfg.batch_wait);
                        }
                        self.pending.push(record);
                        if self.paused {
                            // From a partition assigned since the pause: pause the new assignment too.
                            self.pause_or_resume(true);
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "consumer error");
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    }
                },
                () = sleep_until(batch_timer.into_iter().chain(pause_timer).min()), if batch_timer.is_some() || pause_timer.is_some() => {}
            }
        }
    }

    /// Drops the pending records whose partition was revoked or assigned since they were taken:
    /// they are fetched again from the committed offset.
    fn drop_moved_pending(&mut self) {
        let before = self.pending.len();
        let context = self.consumer.context();
        self.pending.retain(|r| context.epoch(&r.topic, r.partition) == r.epoch);
        if self.pending.len() < before {
            tracing::debug!(
                dropped = before - self.pending.len(),
                "records of a partition that changed hands are fetched again"
            );
        }
        if self.pending.is_empty() {
            self.deadline = None;
        }
    }

    /// Spawns the pending records as the next batch.
    fn dispatch(&mut self) {
        self.drop_moved_pending();
        if self.pending.is_empty() {
            return;
        }
        let records = std::mem::replace(&mut self.pending, Vec::with_capacity(self.cfg.batch_size));
        self.deadline = None;
        let seq = self.next_seq;
        self.next_seq += 1;
        let (done, next) = oneshot::channel();
        let turn = Turn {
            previous: self.last_turn.replace(next),
            done,
        };
        let span = tracing::info_span!(
            "batch",
            seq,
            records = records.len(),
            anonymized = tracing::field::Empty,
            rejected = tracing::field::Empty,
            poison = tracing::field::Empty
        );
        let handle = tokio::spawn(batch::run(Arc::clone(&self.ctx), Batch { seq, records }, turn).instrument(span));
        self.in_flight.push_back(InFlight { seq, handle });
    }

    /// Stores a published batch's offsets (plain mode; a transaction has committed them already).
    fn finish(&self, done: Done) {
        tracing::debug!(
            seq = done.seq,
            anonymized = done.counts.anonymized,
            rejected = done.counts.rejected,
            poison = done.counts.poison,
            "batch finished"
        );
        if self.transactional() {
            return;
        }
        for (topic, partition, offset) in &done.offsets {
            if let Err(e) = self.consumer.store_offset(topic, *partition, *offset) {
                // Revoked since the batch was taken: the new owner redoes those records, with the same event ids.
                tracing::debug!(seq = done.seq, partition, offset, error = %e, "offset not stored");
            }
        }
    }

    fn set_paused(&mut self, pause: bool) {
        if pause != self.paused && self.pause_or_resume(pause) {
            tracing::debug!(paused = pause, in_flight = self.in_flight.len(), "backpressure");
            self.paused = pause;
        }
    }

    /// Pauses or resumes the whole current assignment; false if librdkafka refused.
    fn pause_or_resume(&self, pause: bool) -> bool {
        let result = self.consumer.assignment().and_then(|assigned| {
            if pause {
                self.consumer.pause(&assigned)
            } else {
                self.consumer.resume(&assigned)
            }
        });
        if let Err(e) = &result {
            tracing::warn!(error = %e, paused = pause, "cannot pause or resume the assignment");
        }
        result.is_ok()
    }

    /// Stop: publish what was already taken, finish every batch in order, store, commit.
    async fn drain(mut self, mut failure: Option<Error>) -> Result<()> {
        if failure.is_none() && !self.pending.is_empty() {
            self.dispatch();
        }
        while let Some(mut batch) = self.in_flight.pop_front() {
            let seq = batch.seq;
            let done = (&mut batch.handle)
                .await
                .map_err(|e| Error::Batch {
                    seq,
                    reason: format!("task failed: {e}"),
                })
                .and_then(|r| r);
            match done {
                // After a failure nothing later may be stored: it would skip the failed records.
                Ok(done) if failure.is_none() => self.finish(done),
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(seq, error = %e, "batch not finished; its records will be redelivered");
                    self.ctx.stop.trigger();
                    failure.get_or_insert(e);
                }
            }
        }
        if !self.transactional() {
            let consumer = Arc::clone(&self.consumer);
            // Bounded: with no broker to answer, librdkafka's synchronous commit never returns.
            alpes_platform::kafka::consumer::bounded("final commit", move || match consumer.commit_consumer_state(CommitMode::Sync) {
                Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
                Err(e) => tracing::warn!(error = %e, "final commit failed"),
            })
            .await;
        }
        if let Err(e) = self.ctx.publisher.flush().await {
            tracing::warn!(error = %e, "final flush failed");
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
