//! The importer's flags, as `alpes up` reads them.

use alpes_platform::retry::Backoff;
use std::time::Duration;

/// The importer's settings.
#[derive(Debug, Clone, clap::Args)]
pub struct ImportArgs {
    /// Requests to one host (name and port) at once, over every job of this importer.
    #[arg(
        id = "import_max_per_host",
        long = "import-max-per-host",
        env = "ALPES_IMPORT_MAX_PER_HOST",
        default_value_t = 4,
        value_parser = clap::value_parser!(u32).range(1..=256)
    )]
    pub max_per_host: u32,
    /// Requests at once over every host and job of this importer.
    #[arg(
        id = "import_max_concurrent",
        long = "import-max-concurrent",
        env = "ALPES_IMPORT_MAX_CONCURRENT",
        default_value_t = 16,
        value_parser = clap::value_parser!(u32).range(1..=1024)
    )]
    pub max_concurrent: u32,
    /// Jobs one importer runs at once (more wait on their partitions).
    #[arg(
        id = "import_max_jobs",
        long = "import-max-jobs",
        env = "ALPES_IMPORT_MAX_JOBS",
        default_value_t = 4,
        value_parser = clap::value_parser!(u32).range(1..=64)
    )]
    pub max_jobs: u32,
    /// Attempts per request (the first included) before an item, or a job's search of its
    /// source, fails.
    #[arg(
        id = "import_attempts",
        long = "import-attempts",
        env = "ALPES_IMPORT_ATTEMPTS",
        default_value_t = 5,
        value_parser = clap::value_parser!(u32).range(1..=20)
    )]
    pub attempts: u32,
    /// The ceiling of the first retry's wait, ms; it doubles per retry, with jitter.
    #[arg(
        id = "import_backoff_ms",
        long = "import-backoff-ms",
        env = "ALPES_IMPORT_BACKOFF_MS",
        default_value_t = 500
    )]
    pub backoff_ms: u64,
    /// The largest wait between retries, ms (a longer `Retry-After` is honoured up to 300 s).
    #[arg(
        id = "import_backoff_max_ms",
        long = "import-backoff-max-ms",
        env = "ALPES_IMPORT_BACKOFF_MAX_MS",
        default_value_t = 30_000
    )]
    pub backoff_max_ms: u64,
    /// Seconds a request may wait on its source (for its answer, or for the next bytes of it)
    /// before it is tried again.
    #[arg(
        id = "import_timeout_secs",
        long = "import-timeout-secs",
        env = "ALPES_IMPORT_TIMEOUT_SECS",
        default_value_t = 120
    )]
    pub timeout_secs: u64,
    /// A network (CIDR, e.g. `10.0.0.0/8` or `127.0.0.1/32`) sources may be in although it is
    /// loopback, link-local, multicast or unspecified, which are refused otherwise; repeatable
    /// (comma-separated in the environment). Private ranges (10/8, 172.16/12, 192.168/16, fc00::/7)
    /// are allowed without it: a hospital's PACS lives there.
    #[arg(
        id = "import_allow_networks",
        long = "import-allow-network",
        env = "ALPES_IMPORT_ALLOW_NETWORKS",
        value_name = "CIDR",
        value_delimiter = ','
    )]
    pub allow_networks: Vec<String>,
}

impl Default for ImportArgs {
    fn default() -> Self {
        ImportArgs {
            max_per_host: 4,
            max_concurrent: 16,
            max_jobs: 4,
            attempts: 5,
            backoff_ms: 500,
            backoff_max_ms: 30_000,
            timeout_secs: 120,
            allow_networks: Vec::new(),
        }
    }
}

impl ImportArgs {
    /// The retry policy of every request.
    pub fn backoff(&self) -> Backoff {
        Backoff {
            first: Duration::from_millis(self.backoff_ms.max(1)),
            max: Duration::from_millis(self.backoff_max_ms.max(self.backoff_ms).max(1)),
            attempts: self.attempts.max(1),
        }
    }
}
