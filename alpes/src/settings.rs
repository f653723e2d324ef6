//! How a process runs: which services (`--services`), where its data dir
//! and listener are, and every adapter's flags, as `alpes up` reads them
//! from the command line and the environment.

use crate::jwt_keys::JwtArgs;
use alpes_anonymizer_worker::PseudonymScope;
use alpes_ingest::identity::IdentityArgs;
use alpes_platform::blobs::BlobArgs;
use alpes_platform::kafka::KafkaArgs;
use alpes_platform::limits::LimitArgs;
use alpes_platform::server::ServerArgs;
use alpes_platform::store::ScyllaArgs;
use alpes_query_api::PricingArgs;
use std::net::SocketAddr;
use std::path::PathBuf;

/// One of the services a process runs (`--services`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Service {
    /// REST and STOW-RS uploads, accounts and tokens, and the outcome follower.
    Ingest,
    /// The anonymizer worker(s).
    Anonymizer,
    /// The ledgers: usage and payments into balances.
    Billing,
    /// The materializer, the audit projector and the query routes (REST, QIDO-RS, WADO-RS).
    QueryApi,
    /// The DICOM network listener (C-ECHO, C-STORE), feeding the upload path.
    Dimse,
    /// The importer: runs import jobs (a DICOMweb server's studies, image URLs) into the upload path.
    Importer,
    /// The notifier: turns events into email, SMS and signed webhooks.
    Notifier,
}

impl Service {
    /// Every service, the default.
    pub const ALL: [Service; 7] = [
        Service::Ingest,
        Service::Anonymizer,
        Service::Billing,
        Service::QueryApi,
        Service::Dimse,
        Service::Importer,
        Service::Notifier,
    ];
}

/// How to run the platform.
#[derive(Debug, Clone, clap::Args)]
pub struct Settings {
    /// The services this process runs, comma-separated: ingest, anonymizer, billing, query-api, dimse,
    /// importer, notifier.
    /// Every process answers `GET /health` and `GET /metrics`; a deployment runs each service
    /// in its own processes (replicas share the key directory, the cluster and the buckets).
    #[arg(
        long,
        env = "ALPES_SERVICES",
        value_enum,
        value_delimiter = ',',
        default_value = "ingest,anonymizer,billing,query-api,dimse,importer,notifier"
    )]
    pub services: Vec<Service>,
    /// Where keys, the store and local blobs live.
    #[arg(long, env = "ALPES_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// The one listener for every route.
    #[arg(long, env = "ALPES_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// The URL clients reach this listener at (behind a proxy, the proxy's, with its path
    /// prefix): the base of DICOMweb's RetrieveURLs and of the links STOW-RS answers with.
    /// Default: `http://` and the listen address.
    /// Never taken from a request's `Host` or `X-Forwarded-*` headers.
    #[arg(long, env = "ALPES_PUBLIC_URL", value_name = "URL", value_parser = alpes_platform::public_url::PublicUrl::parse)]
    pub public_url: Option<alpes_platform::public_url::PublicUrl>,
    /// Largest accepted upload body, bytes.
    #[arg(long, env = "ALPES_MAX_UPLOAD_BYTES", default_value_t = alpes_ingest::DEFAULT_MAX_UPLOAD)]
    pub max_upload: u64,
    /// Anonymizer workers in this process (each a group member with its own engine pool).
    #[arg(long, env = "ALPES_WORKERS", default_value_t = 1)]
    pub workers: usize,
    /// Engine threads per worker (default: one per core).
    #[arg(long, env = "ALPES_JOBS")]
    pub jobs: Option<usize>,
    /// Produce the worker's outputs in Kafka transactions that also commit its offsets.
    #[arg(long, env = "ALPES_TRANSACTIONAL")]
    pub transactional: bool,
    /// Whose pseudonyms (UIDs, patient ids, date shifts) an image gets: `provider`, each provider
    /// its own, so the same study or patient from two providers is not linked; or `instance`, one
    /// for every provider, linking them on purpose.
    #[arg(long, env = "ALPES_PSEUDONYM_SCOPE", value_enum, default_value_t = PseudonymScope::Provider)]
    pub pseudonym_scope: PseudonymScope,
    /// Bytes the images an engine (one worker) has in flight may take together: each may
    /// inflate or decode to this divided by the engine's threads and by 3 (its peak), and is
    /// rejected past it.
    #[arg(long, env = "ALPES_ENGINE_MEMORY", default_value_t = alpes_anonymizer::DEFAULT_ENGINE_MEMORY)]
    pub engine_memory: u64,
    /// Flush every local blob and every store commit to disk before an upload is
    /// acknowledged, so it survives a power loss. Off, an acknowledged upload
    /// survives a crash of the process (the OS has it), as Kafka's own log does.
    #[arg(long, env = "ALPES_FSYNC")]
    pub fsync: bool,
    /// The currency balances are shown in by default (ISO 4217).
    #[arg(long, env = "ALPES_CURRENCY", default_value = "EUR")]
    pub currency: String,
    /// Download prices and the repeat window.
    #[command(flatten)]
    pub pricing: PricingArgs,
    /// Kafka settings.
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// Blob store settings.
    #[command(flatten)]
    pub blobs: BlobArgs,
    /// ScyllaDB settings: with nodes named, the ledger, the catalog, the identity store and the
    /// ingest store live there (the audit table stays SQLite).
    #[command(flatten)]
    pub scylla: ScyllaArgs,
    /// Token lifetimes, the lockout rule and the password hasher.
    #[command(flatten)]
    pub identity: IdentityArgs,
    /// Rate limits, body and time limits, CORS.
    #[command(flatten)]
    pub limits: LimitArgs,
    /// The listener: header and idle timeouts, open connections overall and per client address.
    #[command(flatten)]
    pub server: ServerArgs,
    /// The token keys: HS256 (the default) or an EdDSA key ring.
    #[command(flatten)]
    pub jwt: JwtArgs,
    /// The DICOM listener: address, AE titles, limits, TLS.
    #[command(flatten)]
    pub dimse: alpes_dimse::DimseArgs,
    /// The importer: per-host and overall limits, retries, timeouts, allowed networks.
    #[command(flatten)]
    pub import: alpes_importer::ImportArgs,
    /// The notifier: SMTP, the SMS provider, the hosts webhooks may go to, retries.
    #[command(flatten)]
    pub notify: alpes_notifier::NotifyArgs,
    /// Creates this admin at start if the instance has no admin yet; the password comes from
    /// ALPES_BOOTSTRAP_ADMIN_PASSWORD (an environment variable only, never a flag).
    #[arg(long, env = "ALPES_BOOTSTRAP_ADMIN_EMAIL", value_name = "EMAIL")]
    pub bootstrap_admin_email: Option<String>,
}

impl Settings {
    /// Whether this process runs `service`.
    pub fn runs(&self, service: Service) -> bool {
        self.services.contains(&service)
    }

    /// The embedded defaults rooted at `data_dir`, listening on `listen` (and for DICOM on
    /// `listen`'s host, on a port of the system's choosing).
    pub fn embedded(data_dir: PathBuf, listen: SocketAddr) -> Self {
        Settings {
            services: Service::ALL.to_vec(),
            data_dir,
            listen,
            public_url: None,
            max_upload: alpes_ingest::DEFAULT_MAX_UPLOAD,
            workers: 1,
            jobs: None,
            transactional: false,
            pseudonym_scope: PseudonymScope::Provider,
            engine_memory: alpes_anonymizer::DEFAULT_ENGINE_MEMORY,
            fsync: false,
            currency: "EUR".into(),
            pricing: PricingArgs::default(),
            kafka: KafkaArgs::default(),
            blobs: BlobArgs::default(),
            scylla: ScyllaArgs::default(),
            identity: IdentityArgs::default(),
            limits: LimitArgs::default(),
            server: ServerArgs::default(),
            jwt: JwtArgs::default(),
            dimse: alpes_dimse::DimseArgs {
                listen: SocketAddr::new(listen.ip(), 0),
                ..alpes_dimse::DimseArgs::default()
            },
            import: alpes_importer::ImportArgs::default(),
            notify: alpes_notifier::NotifyArgs::default(),
            bootstrap_admin_email: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Args, FromArgMatches};

    #[test]
    fn the_up_flags_do_not_clash_and_name_scylladb_only_when_asked() {
        let cmd = Settings::augment_args(clap::Command::new("up"));
        cmd.clone().debug_assert();
        let m = cmd
            .try_get_matches_from(["up", "--scylla-nodes", "a:9042,b:9042", "--scylla-keyspace", "alpes_prod"])
            .unwrap();
        let s = Settings::from_arg_matches(&m).unwrap();
        assert!(s.scylla.configured());
        assert_eq!(
            (s.scylla.contact_points(), s.scylla.keyspace.as_str()),
            (vec!["a:9042", "b:9042"], "alpes_prod")
        );
        let embedded = Settings::embedded(PathBuf::from("data"), "127.0.0.1:0".parse().unwrap());
        assert!(!embedded.scylla.configured());
        let public = |url: &str| {
            let m = Settings::augment_args(clap::Command::new("up")).try_get_matches_from(["up", "--public-url", url]);
            m.map(|m| Settings::from_arg_matches(&m).unwrap().public_url.map(|u| u.as_str().to_owned()))
        };
        assert_eq!(
            public("https://pacs.example.org/alpes/").unwrap(),
            Some("https://pacs.example.org/alpes".into())
        );
        assert!(public("pacs.example.org").is_err());
    }
}
