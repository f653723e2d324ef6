//! The stores a process opens: only those its services use, each once.
//!
//! With a ScyllaDB cluster named (`SCYLLA_NODES` / `--scylla-nodes`), the
//! ledger, the catalog, the identity store, the ingest store (images,
//! idempotency keys, open requests), the registry (institutions, doctors,
//! patients) and the notifications live there, one session shared by all
//! (the tables must exist: `alpes migrate`), shared by every replica; without
//! one, in the data dir's `alpes.db`. The audit table is the data dir's
//! SQLite either way.
//!
//! | store    | opened when the process runs       |
//! |----------|------------------------------------|
//! | ledger   | ingest, billing or query-api       |
//! | catalog  | query-api                          |
//! | identity | ingest or query-api (accounts, revoked tokens) |
//! | ingest   | ingest, dimse or importer (with the import jobs) |
//! | audit    | query-api                          |
//! | registry, notifications | ingest, dimse, importer, notifier or query-api |

use crate::settings::{Service, Settings};
use alpes_platform::store::{
    AuditStore, CatalogStore, IdentityStore, ImportStore, IngestStore, LedgerStore, ScyllaArgs, ScyllaCatalog, ScyllaIdentity,
    ScyllaImports, ScyllaIngest, ScyllaLedger, ScyllaNotifications, ScyllaRegistry, SqliteAudit, SqliteCatalog, SqliteIdentity,
    SqliteImports, SqliteLedger, SqliteStore,
};
use anyhow::{Context, Result};
use std::path::Path;
use std::sync::Arc;

/// The stores a process opened; `None` for those none of its services uses.
#[derive(Debug, Default, Clone)]
pub struct Stores {
    /// Ledgers and balances.
    pub ledger: Option<Arc<dyn LedgerStore>>,
    /// The query side's tables.
    pub catalog: Option<Arc<dyn CatalogStore>>,
    /// Accounts and credentials.
    pub identity: Option<Arc<dyn IdentityStore>>,
    /// Images, idempotency keys and open requests.
    pub ingest: Option<Arc<dyn IngestStore>>,
    /// Import jobs and their items (opened with the ingest store).
    pub imports: Option<Arc<dyn ImportStore>>,
    /// Institutions, doctors and patients (for ingest, the notifier, and the dashboards' rights).
    pub registry: Option<Arc<dyn alpes_platform::store::registry::RegistryStore>>,
    /// Notifications and institutions' webhooks (for ingest and the notifier).
    pub notifications: Option<Arc<dyn alpes_platform::store::notification::NotificationStore>>,
    /// The audit trail's table.
    pub audit: Option<Arc<dyn AuditStore>>,
}

/// Which stores `settings`' services use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Needs {
    /// The registry and the notifications.
    registry: bool,
    ledger: bool,
    catalog: bool,
    identity: bool,
    ingest: bool,
    audit: bool,
}

impl Needs {
    fn of(settings: &Settings) -> Needs {
        // The DICOM listener and the importer register images on ingest's app: they need what ingest needs.
        let (ingest, billing, query) = (
            settings.runs(Service::Ingest) || settings.runs(Service::Dimse) || settings.runs(Service::Importer),
            settings.runs(Service::Billing),
            settings.runs(Service::QueryApi),
        );
        let notifier = settings.runs(Service::Notifier);
        Needs {
            registry: ingest || notifier || query,
            ledger: ingest || billing || query,
            catalog: query,
            identity: ingest || query || notifier,
            ingest,
            audit: query,
        }
    }
}

/// The identity store alone (`alpes admin create`): ScyllaDB when configured, else the data dir's SQLite.
pub async fn open_identity(scylla: &ScyllaArgs, data_dir: &Path, fsync: bool) -> Result<Arc<dyn IdentityStore>> {
    if scylla.configured() {
        let identity = ScyllaIdentity::connect(scylla).await.with_context(|| scylla_hint(scylla))?;
        return Ok(Arc::new(identity));
    }
    Ok(Arc::new(
        SqliteIdentity::open(&data_dir.join("alpes.db"), fsync).context("cannot open the identity store")?,
    ))
}

fn scylla_hint(scylla: &ScyllaArgs) -> String {
    format!(
        "cannot reach ScyllaDB at {} or prepare statements in keyspace {} (has `alpes migrate` been run?)",
        scylla.contact_points().join(","),
        scylla.keyspace
    )
}

/// Opens the stores `settings`' services use.
pub async fn open(settings: &Settings) -> Result<Stores> {
    let needs = Needs::of(settings);
    let data = &settings.data_dir;
    let db = data.join("alpes.db");
    let mut stores = Stores {
        audit: if needs.audit {
            Some(Arc::new(
                SqliteAudit::open(&db, settings.fsync).context("cannot open the audit table")?,
            ))
        } else {
            None
        },
        ..Stores::default()
    };
    let scylla: &ScyllaArgs = &settings.scylla;
    if scylla.configured() && (needs.ledger || needs.catalog || needs.identity || needs.ingest || needs.registry) {
        let session = scylla.connect().await.with_context(|| scylla_hint(scylla))?;
        let hint = || scylla_hint(scylla);
        if needs.ledger {
            stores.ledger = Some(Arc::new(ScyllaLedger::new(session.clone(), scylla).await.with_context(hint)?));
        }
        if needs.catalog {
            stores.catalog = Some(Arc::new(ScyllaCatalog::new(session.clone(), scylla).await.with_context(hint)?));
        }
        if needs.identity {
            stores.identity = Some(Arc::new(ScyllaIdentity::new(session.clone(), scylla).await.with_context(hint)?));
        }
        if needs.registry {
            stores.registry = Some(Arc::new(ScyllaRegistry::new(session.clone(), scylla).await.with_context(hint)?));
            stores.notifications = Some(Arc::new(
                ScyllaNotifications::new(session.clone(), scylla).await.with_context(hint)?,
            ));
        }
        if needs.ingest {
            stores.imports = Some(Arc::new(ScyllaImports::new(session.clone(), scylla).await.with_context(hint)?));
            stores.ingest = Some(Arc::new(ScyllaIngest::new(session, scylla).await.with_context(hint)?));
        }
        tracing::info!(
            store = "scylladb",
            nodes = %scylla.contact_points().join(","),
            keyspace = %scylla.keyspace,
            consistency = ?scylla.consistency,
            "the services' ledger, catalog, identity, ingest, registry and notification stores on ScyllaDB; the audit table \
             stays on SQLite"
        );
        return Ok(stores);
    }
    if needs.ledger {
        stores.ledger = Some(Arc::new(SqliteLedger::open(&db, settings.fsync).context("cannot open the ledger")?));
    }
    if needs.catalog {
        stores.catalog = Some(Arc::new(
            SqliteCatalog::open(&db, settings.fsync).context("cannot open the catalog")?,
        ));
    }
    if needs.identity {
        stores.identity = Some(open_identity(scylla, data, settings.fsync).await?);
    }
    if needs.ingest {
        stores.ingest = Some(Arc::new(
            SqliteStore::open_with(&db, settings.fsync).context("cannot open the store")?,
        ));
        stores.imports = Some(Arc::new(
            SqliteImports::open(&db, settings.fsync).context("cannot open the import jobs")?,
        ));
    }
    if needs.registry {
        stores.registry = Some(Arc::new(
            alpes_platform::store::SqliteRegistry::open(&db, settings.fsync).context("cannot open the registry")?,
        ));
        stores.notifications = Some(Arc::new(
            alpes_platform::store::SqliteNotifications::open(&db, settings.fsync).context("cannot open the notifications")?,
        ));
    }
    tracing::info!(store = "sqlite", path = %db.display(), "the services' stores on SQLite");
    Ok(stores)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn needs(services: &[Service]) -> Needs {
        let mut s = Settings::embedded("data".into(), "127.0.0.1:0".parse().unwrap());
        s.services = services.to_vec();
        Needs::of(&s)
    }

    #[test]
    fn a_process_opens_only_the_stores_its_services_use() {
        let billing = needs(&[Service::Billing]);
        assert!(billing.ledger);
        assert!(!billing.ingest && !billing.catalog && !billing.identity && !billing.audit);
        let anonymizer = needs(&[Service::Anonymizer]);
        assert_eq!(
            anonymizer,
            Needs {
                registry: false,
                ledger: false,
                catalog: false,
                identity: false,
                ingest: false,
                audit: false
            }
        );
        let all = needs(&Service::ALL);
        assert!(all.ledger && all.catalog && all.identity && all.ingest && all.audit);
        let query = needs(&[Service::QueryApi]);
        assert!(query.catalog && query.audit && query.identity && !query.ingest);
        let dimse = needs(&[Service::Dimse]);
        assert_eq!(dimse, needs(&[Service::Ingest]), "the DICOM listener runs on ingest's app");
        assert_eq!(needs(&[Service::Importer]), needs(&[Service::Ingest]), "so does the importer");
        let notifier = needs(&[Service::Notifier]);
        assert!(
            notifier.registry && notifier.identity && !notifier.ingest && !notifier.catalog,
            "the notifier reads addresses"
        );
    }
}
