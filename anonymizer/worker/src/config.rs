//! The worker's settings ([`WorkerConfig`]): consumer group, batching, engine threads,
//! backpressure, fetch concurrency and the transactional mode.

use std::time::Duration;

use crate::{Error, Result};

/// How the worker consumes, batches and produces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerConfig {
    /// Consumer group; every worker in it shares the partitions of `alpes.images.registered`.
    pub group: String,
    /// A batch is dispatched once it holds this many records...
    pub batch_size: usize,
    /// ...or this long after its first record arrived, whichever comes first.
    pub batch_wait: Duration,
    /// Threads of the engine's rayon pool (`alpes-engine-N`).
    pub jobs: usize,
    /// Batches being processed at once; past it the consumer's assignment is paused.
    pub max_batches_in_flight: usize,
    /// How long the pipeline may stay blocked (every slot taken, the next batch complete) before
    /// the consumer's assignment is paused so it can be polled without taking records. Zero pauses
    /// as soon as it blocks.
    pub pause_after: Duration,
    /// Raw blobs fetched at once, across every batch in flight.
    pub fetch_concurrency: usize,
    /// Produce each batch's outputs and commit its offsets in one Kafka transaction.
    pub transactional: bool,
    /// A name for this process that stays the same across restarts (a pod or host name). The
    /// transactional producer's `transactional.id` is `<group>-<instance>-<n>`, `n` counting the
    /// transactional workers built in this process (0, 1, ...), so a restarted process fences its
    /// predecessor's producers and aborts their open transactions at once. Processes running at
    /// the same time need different instances. Defaults to `$HOSTNAME`, else `"0"`.
    pub instance: String,
    /// Whose pseudonyms an image gets: its provider's own (the default), or the instance's.
    pub pseudonyms: PseudonymScope,
    /// Bytes the engine's images in flight may take together: each may inflate or decode to
    /// this divided by `jobs` and by [`alpes_anonymizer::PEAK_PER_DECODED_BYTE`], and is
    /// rejected (`inflate_limit` or `decode_limit`) past it.
    pub engine_memory: u64,
}

/// The namespace of the pseudonyms (UIDs, patient ids and names, date shifts) the engine makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum PseudonymScope {
    /// Each provider has its own: the same Study Instance UID or patient from two providers gets
    /// two pseudonyms, so nothing links one provider's data to another's.
    #[default]
    Provider,
    /// One for the whole instance: the same original UID or patient gets the same pseudonym
    /// whoever uploads it. For an operator who links providers' data on purpose.
    Instance,
}

impl PseudonymScope {
    /// The namespace of an image of `provider_id` (of `institution_id`), `None` for the
    /// instance's ([`alpes_anonymizer::pseudonym::namespace`]).
    pub fn namespace(self, provider_id: &str, institution_id: Option<&str>) -> Option<String> {
        alpes_anonymizer::pseudonym::namespace(self == PseudonymScope::Provider, provider_id, institution_id)
    }
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            group: "alpes-anonymizer".to_owned(),
            batch_size: 32,
            batch_wait: Duration::from_millis(20),
            jobs: std::thread::available_parallelism().map_or(1, usize::from),
            max_batches_in_flight: 2,
            pause_after: Duration::from_secs(1),
            fetch_concurrency: 16,
            transactional: false,
            instance: std::env::var("HOSTNAME")
                .ok()
                .filter(|h| !h.trim().is_empty())
                .unwrap_or_else(|| "0".to_owned()),
            pseudonyms: PseudonymScope::default(),
            engine_memory: alpes_anonymizer::DEFAULT_ENGINE_MEMORY,
        }
    }
}

impl WorkerConfig {
    /// The `transactional.id` of the `n`th transactional worker built in this process.
    pub fn transactional_id(&self, n: usize) -> String {
        format!("{}-{}-{n}", self.group, self.instance)
    }

    /// Refuses settings the worker cannot run with.
    pub fn validate(&self) -> Result<()> {
        let zero = [
            ("batch_size", self.batch_size),
            ("jobs", self.jobs),
            ("max_batches_in_flight", self.max_batches_in_flight),
            ("fetch_concurrency", self.fetch_concurrency),
        ];
        if let Some((name, _)) = zero.iter().find(|(_, v)| *v == 0) {
            return Err(Error::Config(format!("{name} must be at least 1")));
        }
        if self.group.trim().is_empty() {
            return Err(Error::Config("the consumer group must not be empty".into()));
        }
        if self.transactional && self.instance.trim().is_empty() {
            return Err(Error::Config("a transactional worker needs an instance name".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_those_of_the_design() {
        let c = WorkerConfig::default();
        assert_eq!(c.group, "alpes-anonymizer");
        assert_eq!((c.batch_size, c.max_batches_in_flight, c.fetch_concurrency), (32, 2, 16));
        assert_eq!(c.batch_wait, Duration::from_millis(20));
        assert!(c.jobs >= 1);
        assert!(!c.transactional);
        assert!(c.validate().is_ok());
    }

    #[test]
    fn a_zero_count_or_an_empty_group_is_refused() {
        let c = WorkerConfig {
            batch_size: 0,
            ..WorkerConfig::default()
        };
        assert!(matches!(c.validate(), Err(Error::Config(m)) if m.contains("batch_size")));
        let c = WorkerConfig {
            group: " ".into(),
            ..WorkerConfig::default()
        };
        assert!(c.validate().is_err());
    }

    #[test]
    fn the_transactional_id_is_the_group_and_the_instance() {
        let c = WorkerConfig {
            group: "g".into(),
            instance: "pod-3".into(),
            ..WorkerConfig::default()
        };
        assert_eq!(c.transactional_id(1), "g-pod-3-1");
    }
}
