//! The store conformance suites (ledger, catalog and its consent gate, identity,
//! ingest, imports, registry and notifications) on a
//! real CQL cluster (ScyllaDB, or the Apache Cassandra of
//! `deploy/local/engines.sh`), plus the races only a cluster can show
//! (concurrent payouts, concurrent redeliveries, materializer replicas
//! applying one image's events in different orders at once, registrations of
//! one email, rotations of one refresh token, failed logins of one account,
//! uploads of one provider's bytes or key from several replicas at once, and
//! moves and item outcomes of one import job from several importers at once,
//! creates of one licence and moves of one consent, claims of one
//! notification).
//!
//! Runs only when `SCYLLA_NODES` names a cluster (`host:port`, comma-separated);
//! nothing else is ever contacted. Each test migrates a fresh keyspace
//! (`SCYLLA_TEST_REPLICATION` overrides its replication) and drops it at the
//! end. Without `SCYLLA_NODES` each test says loudly that it was SKIPPED and
//! passes.

use alpes_domain::consent::ConsentState;
use alpes_platform::auth::Role;
use alpes_platform::store::catalog::{DicomQuery, ImageFilter};
use alpes_platform::store::conformance::{self, account, anonymized, new_image, payment, refresh, registered, rejected, usage, Instance};
use alpes_platform::store::cql::migrate::{migrate, Tablets, DEFAULT_REPLICATION};
use alpes_platform::store::notification::{DeliveryState, Notification, NotificationStore};
use alpes_platform::store::registry::RegistryStore;
use alpes_platform::store::{
    Applied, CatalogStore, Claim, Created, Estado, IdentityStore, ImportItem, ImportJob, ImportSpec, ImportState, ImportStore, IngestStore,
    ItemOutcome, LedgerStore, LockoutRule, Refusal, RequestState, Rotation, ScyllaArgs, ScyllaCatalog, ScyllaIdentity, ScyllaImports,
    ScyllaIngest, ScyllaLedger, ScyllaNotifications, ScyllaRegistry,
};
use futures::FutureExt;
use scylla::client::session::Session;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

/// Runs `body` against a fresh, migrated keyspace, or reports the skip.
async fn with_cluster<F, Fut>(test: &str, body: F)
where
    F: FnOnce(Arc<Session>, ScyllaArgs) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut args = ScyllaArgs::from_env().expect("ScyllaDB settings from the environment");
    if !args.configured() {
        let line = "=".repeat(78);
        let msg = format!(
            "{line}\nSKIPPED: ScyllaDB conformance run `{test}` did NOT run: SCYLLA_NODES is not set, so there is no \
             ScyllaDB cluster to run it against.\n\
             Set SCYLLA_NODES=host:port[,host:port...] to run it (only those nodes are contacted).\n{line}"
        );
        // Straight to the process's stderr: the test harness captures `eprintln!` of a passing
        // test, and this line must show in every `cargo test` run.
        let _ = std::io::Write::write_all(&mut std::io::stderr(), format!("{msg}\n").as_bytes());
        return;
    }
    args.keyspace = format!("alpes_test_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let session = args.connect().await.expect("connect to SCYLLA_NODES");
    let replication = std::env::var("SCYLLA_TEST_REPLICATION").unwrap_or_else(|_| DEFAULT_REPLICATION.to_owned());
    let first = migrate(&session, &args.keyspace, &replication, Tablets::Auto)
        .await
        .expect("migrate");
    assert!(
        first.created_keyspace && first.already.is_empty() && !first.applied.is_empty(),
        "{first:?}"
    );
    let again = migrate(&session, &args.keyspace, &replication, Tablets::Auto)
        .await
        .expect("migrate again");
    assert!(
        !again.created_keyspace && again.applied.is_empty(),
        "a re-run must apply nothing: {again:?}"
    );
    let outcome = AssertUnwindSafe(body(Arc::clone(&session), args.clone())).catch_unwind().await;
    let dropped = session
        .query_unpaged(format!("DROP KEYSPACE IF EXISTS {}", args.keyspace), &[])
        .await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
    dropped.expect("drop the test keyspace");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_ledger_conformance_suite_passes_on_scylladb() {
    with_cluster("the_ledger_conformance_suite_passes_on_scylladb", |session, args| async move {
        let ledger = ScyllaLedger::new(session, &args).await.expect("prepare");
        conformance::ledger(&ledger).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_registry_conformance_suite_passes_on_scylladb() {
    with_cluster("the_registry_conformance_suite_passes_on_scylladb", |session, args| async move {
        let registry = ScyllaRegistry::new(session, &args).await.expect("prepare");
        conformance::registry::all(&registry).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_catalog_consent_conformance_suite_passes_on_scylladb() {
    with_cluster(
        "the_catalog_consent_conformance_suite_passes_on_scylladb",
        |session, args| async move {
            let catalog = ScyllaCatalog::new(session, &args).await.expect("prepare");
            conformance::catalog_consent::all(&catalog).await;
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_registrations_of_one_licence_or_patient_take_it_once_on_scylladb() {
    with_cluster(
        "concurrent_registrations_of_one_licence_or_patient_take_it_once_on_scylladb",
        |session, args| async move {
            let stores: Vec<ScyllaRegistry> = futures::future::join_all((0..4).map(|_| ScyllaRegistry::new(Arc::clone(&session), &args)))
                .await
                .into_iter()
                .collect::<Result<_, _>>()
                .expect("prepare");
            // Eight institutions with one licence, from four replicas at once: exactly one is created.
            let creates = (0..8).map(|n| {
                let store = stores[n % stores.len()].clone();
                async move {
                    let i = conformance::registry::institution(&format!("i{n}"), "LIC-RACE", &format!("{n}@h.org"), 10);
                    store.create_institution(&i).await.expect("create")
                }
            });
            let created = futures::future::join_all(creates).await;
            assert_eq!(created.iter().filter(|r| r.is_ok()).count(), 1, "{created:?}");
            assert_eq!(
                stores[1].institutions(None, 10).await.expect("list").len(),
                1,
                "only the winner is listed"
            );
            // Eight moves of one consent from the state it is in: exactly one applies.
            let p = conformance::registry::patient("p1", "i0", "ALPES-A", 10);
            assert_eq!(stores[0].create_patient(&p).await.expect("create"), Ok(()));
            let moves = (0..8).map(|n| {
                let store = stores[n % stores.len()].clone();
                async move {
                    store
                        .move_patient("p1", ConsentState::Pending, ConsentState::ValidatedByDoctor, 20 + n as i64)
                        .await
                        .expect("move")
                }
            });
            let moved = futures::future::join_all(moves).await;
            assert_eq!(moved.iter().filter(|m| **m).count(), 1, "{moved:?}");
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_payouts_of_one_user_never_overdraw_on_scylladb() {
    with_cluster(
        "concurrent_payouts_of_one_user_never_overdraw_on_scylladb",
        |session, args| async move {
            let ledgers: Vec<ScyllaLedger> = futures::future::join_all((0..4).map(|_| ScyllaLedger::new(Arc::clone(&session), &args)))
                .await
                .into_iter()
                .collect::<Result<_, _>>()
                .expect("prepare");
            ledgers[0].apply(vec![usage("u1", "p", 100)]).await.expect("credit");
            // Ten payouts of 30 from four ledgers at once: exactly three fit in 100.
            let payouts = (0..10).map(|i| {
                let ledger = ledgers[i % ledgers.len()].clone();
                async move { ledger.apply(vec![payment(&format!("pay{i}"), "p", 30, &format!("ref-{i}"))]).await }
            });
            let applied: Vec<Applied> = futures::future::join_all(payouts)
                .await
                .into_iter()
                .map(|r| r.expect("apply").remove(0))
                .collect();
            let accepted = applied.iter().filter(|a| **a == Applied::Recorded).count();
            assert_eq!(accepted, 3, "{applied:?}");
            assert!(applied
                .iter()
                .all(|a| matches!(a, Applied::Recorded | Applied::Refused(Refusal::InsufficientBalance { .. }))));
            let b = ledgers[1].balances("p").await.expect("balances");
            assert_eq!((b[0].accrued_minor, b[0].paid_minor, b[0].pending_minor), (100, 90, 10));
            assert_eq!(ledgers[2].movements("p", None, 100).await.expect("page").entries.len(), 11);
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_redeliveries_count_once_and_list_once_on_scylladb() {
    with_cluster(
        "concurrent_redeliveries_count_once_and_list_once_on_scylladb",
        |session, args| async move {
            let ledger = ScyllaLedger::new(session, &args).await.expect("prepare");
            let batch = vec![usage("u1", "p", 10), usage("u2", "p", 20), usage("u3", "q", 5)];
            let redeliveries = (0..8).map(|_| ledger.apply(batch.clone()));
            for applied in futures::future::join_all(redeliveries).await {
                assert_eq!(applied.expect("apply").len(), 3);
            }
            let b = ledger.balances("p").await.expect("balances");
            assert_eq!((b[0].accrued_minor, b[0].uses), (30, 2));
            // Racing redeliveries may each give an event its seq, so only the set is certain, once each.
            let mut ids: Vec<String> = ledger
                .movements("p", None, 100)
                .await
                .expect("page")
                .entries
                .into_iter()
                .map(|e| e.event_id)
                .collect();
            ids.sort();
            assert_eq!(ids, vec!["u1", "u2"]);
            assert_eq!(
                ledger.apply(batch).await.expect("replay"),
                vec![Applied::Duplicate, Applied::Duplicate, Applied::Duplicate]
            );
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_catalog_conformance_suite_passes_on_scylladb() {
    with_cluster("the_catalog_conformance_suite_passes_on_scylladb", |session, args| async move {
        let catalog = ScyllaCatalog::new(session, &args).await.expect("prepare");
        conformance::catalog(&catalog).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn materializer_replicas_applying_one_image_in_different_orders_converge_on_scylladb() {
    with_cluster(
        "materializer_replicas_applying_one_image_in_different_orders_converge_on_scylladb",
        |session, args| async move {
            let catalogs: Vec<ScyllaCatalog> = futures::future::join_all((0..4).map(|_| ScyllaCatalog::new(Arc::clone(&session), &args)))
                .await
                .into_iter()
                .collect::<Result<_, _>>()
                .expect("prepare");
            const REMAPPED: Instance<'static> = ("1.1", "1.1.1", "1.1.1.1", "CT", "PSEUDO-A", "20200105");
            const RETAINED: Instance<'static> = ("9.9", "9.9.1", "9.9.1.1", "CT", "PSEUDO-A", "20200105");
            // A re-anonymization that moved the image to other UIDs, a rejection in between and a
            // registration older than all of them, each replica applying them one by one in its own order.
            let events = vec![
                registered("r1", "a", "p1", 100),
                anonymized("n1", "a", "p1", 200, REMAPPED),
                rejected("x1", "a", "p1", 250),
                anonymized("n2", "a", "p1", 300, RETAINED),
                registered("r0", "a", "p1", 50),
            ];
            let runs = catalogs.iter().enumerate().map(|(i, catalog)| {
                let mut order = events.clone();
                order.rotate_left(i);
                if i % 2 == 1 {
                    order.reverse();
                }
                async move {
                    for e in order {
                        catalog.apply(vec![e]).await.expect("apply");
                    }
                }
            });
            futures::future::join_all(runs).await;
            let a = catalogs[0].image("a").await.expect("image").expect("a");
            assert_eq!((a.estado, a.created_at), (Estado::Anonimizada, 50));
            assert_eq!(a.anonymized.as_ref().expect("output").blob_key, "anonymized/n2");
            let page = catalogs[1].images(&ImageFilter::default(), None, 10).await.expect("images");
            assert_eq!(page.images.iter().map(|i| i.image_id.as_str()).collect::<Vec<_>>(), vec!["a"]);
            let q = DicomQuery {
                limit: 10,
                ..DicomQuery::default()
            };
            let studies = catalogs[2].studies(&q).await.expect("studies");
            assert_eq!(
                studies.iter().map(|s| (s.study_uid.as_str(), s.instances)).collect::<Vec<_>>(),
                vec![("9.9", 1)]
            );
            let old = DicomQuery {
                study_uid: Some("1.1".into()),
                ..q
            };
            assert!(catalogs[3].instances(&old).await.expect("instances").is_empty());
            assert_eq!(catalogs[0].apply(events).await.expect("replay"), 0);
        },
    )
    .await;
}

/// Identity stores on `session`, as `n` ingest replicas would have them.
async fn identity_replicas(session: &Arc<Session>, args: &ScyllaArgs, n: usize) -> Vec<ScyllaIdentity> {
    futures::future::join_all((0..n).map(|_| ScyllaIdentity::new(Arc::clone(session), args)))
        .await
        .into_iter()
        .collect::<Result<_, _>>()
        .expect("prepare")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_identity_conformance_suite_passes_on_scylladb() {
    with_cluster("the_identity_conformance_suite_passes_on_scylladb", |session, args| async move {
        let identity = ScyllaIdentity::new(session, &args).await.expect("prepare");
        conformance::identity(&identity).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_registrations_of_one_email_create_one_account_on_scylladb() {
    with_cluster(
        "concurrent_registrations_of_one_email_create_one_account_on_scylladb",
        |session, args| async move {
            let stores = identity_replicas(&session, &args, 4).await;
            let creates = (0..8).map(|i| {
                let store = stores[i % stores.len()].clone();
                async move {
                    let created = store
                        .create_account(account(&format!("u{i}"), "same@example.org", Role::Admin))
                        .await
                        .expect("create");
                    (format!("u{i}"), created)
                }
            });
            let outcomes = futures::future::join_all(creates).await;
            let winners: Vec<&str> = outcomes
                .iter()
                .filter(|(_, c)| *c == Created::Created)
                .map(|(id, _)| id.as_str())
                .collect();
            assert_eq!(winners.len(), 1, "{outcomes:?}");
            let winner = winners[0];
            let found = stores[1]
                .account_by_email("same@example.org")
                .await
                .expect("by email")
                .expect("found");
            assert_eq!(found.user_id, winner);
            for (id, _) in outcomes.iter().filter(|(id, _)| id != winner) {
                assert!(stores[2].account(id).await.expect("account").is_none(), "{id} must not exist");
            }
            let unpublished: Vec<String> = stores[3]
                .unpublished_accounts()
                .await
                .expect("unpublished")
                .into_iter()
                .map(|a| a.user_id)
                .collect();
            assert_eq!(unpublished, vec![winner.to_owned()]);
            assert!(stores[0].has_admin().await.expect("has_admin"));
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_rotations_of_one_refresh_token_rotate_once_and_revoke_the_family_on_scylladb() {
    with_cluster(
        "concurrent_rotations_of_one_refresh_token_rotate_once_and_revoke_the_family_on_scylladb",
        |session, args| async move {
            let stores = identity_replicas(&session, &args, 4).await;
            let now = 1_000;
            stores[0].insert_refresh(refresh("t0", "fam", "u1", now)).await.expect("insert");
            let rotations = (0..8).map(|i| {
                let store = stores[i % stores.len()].clone();
                async move {
                    let next = format!("t1-{i}");
                    let r = store.rotate_refresh("t0", &next, now + 2_000, now + 10).await.expect("rotate");
                    (next, r)
                }
            });
            let outcomes = futures::future::join_all(rotations).await;
            let rotated: Vec<&str> = outcomes
                .iter()
                .filter(|(_, r)| matches!(r, Rotation::Rotated { .. }))
                .map(|(next, _)| next.as_str())
                .collect();
            assert_eq!(rotated.len(), 1, "exactly one rotation wins: {outcomes:?}");
            assert!(
                outcomes.iter().any(|(_, r)| *r == Rotation::Reused { user_id: "u1".into() }),
                "a loser saw the reuse: {outcomes:?}"
            );
            assert!(outcomes
                .iter()
                .all(|(_, r)| matches!(r, Rotation::Rotated { .. } | Rotation::Reused { .. } | Rotation::Invalid)));
            // The reuse revoked the family, the winner's successor included.
            assert_eq!(
                stores[1]
                    .rotate_refresh(rotated[0], "t2", now + 3_000, now + 20)
                    .await
                    .expect("rotate"),
                Rotation::Invalid
            );
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_failed_logins_each_count_once_on_scylladb() {
    with_cluster("concurrent_failed_logins_each_count_once_on_scylladb", |session, args| async move {
        let stores = identity_replicas(&session, &args, 4).await;
        assert_eq!(
            stores[0]
                .create_account(account("u1", "ana@example.org", Role::Proveedor))
                .await
                .expect("create"),
            Created::Created
        );
        let rule = LockoutRule {
            max_failures: 10,
            window_ms: 60_000,
            lock_ms: 300_000,
        };
        let failures = (0..10).map(|i| {
            let store = stores[i % stores.len()].clone();
            async move { store.record_failure("u1", 10_000 + i as i64, rule).await.expect("fail") }
        });
        let mut outcomes = futures::future::join_all(failures).await;
        outcomes.sort_by_key(|f| f.count);
        let counts: Vec<i64> = outcomes.iter().map(|f| f.count).collect();
        assert_eq!(counts, (1..=10).collect::<Vec<i64>>(), "each failure counted once");
        let locking: Vec<_> = outcomes.iter().filter(|f| f.locked_until.is_some()).collect();
        assert_eq!(locking.len(), 1, "only the tenth locks: {outcomes:?}");
        let a = stores[1].account("u1").await.expect("account").expect("found");
        assert_eq!((a.failed_logins, a.locked_until), (10, locking[0].locked_until));
        stores[2].record_success("u1", 400_000).await.expect("success");
        let a = stores[3].account("u1").await.expect("account").expect("found");
        assert_eq!((a.failed_logins, a.locked_until, a.last_login_at), (0, None, Some(400_000)));
    })
    .await;
}

async fn ingest_replicas(session: &Arc<Session>, args: &ScyllaArgs, n: usize) -> Vec<ScyllaIngest> {
    futures::future::join_all((0..n).map(|_| ScyllaIngest::new(Arc::clone(session), args)))
        .await
        .into_iter()
        .collect::<Result<_, _>>()
        .expect("prepare")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_ingest_conformance_suite_passes_on_scylladb() {
    with_cluster("the_ingest_conformance_suite_passes_on_scylladb", |session, args| async move {
        conformance::ingest(&ScyllaIngest::new(session, &args).await.expect("prepare")).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_import_conformance_suite_passes_on_scylladb() {
    with_cluster("the_import_conformance_suite_passes_on_scylladb", |session, args| async move {
        conformance::imports(&ScyllaImports::new(session, &args).await.expect("prepare")).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_moves_and_outcomes_of_one_import_job_each_win_once_on_scylladb() {
    with_cluster(
        "concurrent_moves_and_outcomes_of_one_import_job_each_win_once_on_scylladb",
        |session, args| async move {
            let stores: Vec<ScyllaImports> = futures::future::join_all((0..4).map(|_| ScyllaImports::new(Arc::clone(&session), &args)))
                .await
                .into_iter()
                .collect::<Result<_, _>>()
                .expect("prepare");
            let job = ImportJob {
                job_id: "job-1".into(),
                provider_id: "p".into(),
                created_by: "p".into(),
                spec: ImportSpec::Urls {
                    urls: vec!["http://h/a.png".into()],
                    auth: None,
                },
                state: ImportState::Pending,
                reason: None,
                total: None,
                created_at: 1_000,
                started_at: None,
                finished_at: None,
            };
            stores[0].create_job(&job).await.expect("create");
            // Eight starts at once (a job redelivered to several importers): the first start's time stays.
            let starts = (0..8).map(|i| {
                let store = stores[i % stores.len()].clone();
                async move {
                    store
                        .transition("job-1", ImportState::Running, None, 2_000 + i as i64)
                        .await
                        .expect("start")
                }
            });
            assert!(futures::future::join_all(starts).await.into_iter().all(|moved| moved));
            let started = stores[1]
                .job("job-1")
                .await
                .expect("read")
                .expect("job")
                .started_at
                .expect("started");
            assert!((2_000..2_008).contains(&started), "{started}");
            // Cancels and completions at once: exactly one final move wins.
            let finals = (0..8).map(|i| {
                let store = stores[i % stores.len()].clone();
                let to = if i % 2 == 0 {
                    ImportState::Cancelled
                } else {
                    ImportState::Completed
                };
                async move {
                    (
                        to,
                        store.transition("job-1", to, Some("stop"), 3_000 + i as i64).await.expect("move"),
                    )
                }
            });
            let outcomes = futures::future::join_all(finals).await;
            let winners: Vec<ImportState> = outcomes.iter().filter(|(_, moved)| *moved).map(|(to, _)| *to).collect();
            assert_eq!(winners.len(), 1, "{outcomes:?}");
            let read = stores[2].job("job-1").await.expect("read").expect("job");
            assert_eq!((read.state, read.started_at), (winners[0], Some(started)));
            // One item recorded by four importers at once: one outcome is kept.
            let records = (0..4).map(|i| {
                let store = stores[i].clone();
                let item = ImportItem {
                    key: "http://h/a.png".into(),
                    outcome: if i == 0 { ItemOutcome::Imported } else { ItemOutcome::Duplicate },
                    image_id: Some(format!("img-{i}")),
                    reason: None,
                    at: 4_000 + i as i64,
                };
                async move { (item.clone(), store.record_item("job-1", &item).await.expect("record")) }
            });
            let recorded = futures::future::join_all(records).await;
            let kept: Vec<&ImportItem> = recorded.iter().filter(|(_, k)| *k).map(|(item, _)| item).collect();
            assert_eq!(kept.len(), 1, "{recorded:?}");
            assert_eq!(stores[3].items("job-1").await.expect("items"), vec![kept[0].clone()]);

            // An index row whose job was never written (a create that stopped half-way) is skipped,
            // and the page is filled from the rows after it.
            for cql in [
                "INSERT INTO {ks}.import_jobs_by_provider (provider_id, created_at, job_id) VALUES ('p', 5000, 'ghost')",
                "INSERT INTO {ks}.import_jobs_by_time (shard, created_at, job_id) VALUES (0, 5000, 'ghost')",
            ] {
                session
                    .query_unpaged(cql.replace("{ks}", &args.keyspace), &[])
                    .await
                    .expect("write a bare index row");
            }
            for provider in [Some("p"), None] {
                let page = stores[0].jobs(provider, None, 1).await.expect("list");
                assert_eq!(
                    page.iter().map(|j| j.job_id.as_str()).collect::<Vec<_>>(),
                    ["job-1"],
                    "{provider:?}"
                );
            }
            // A total of an unknown job leaves no row behind.
            stores[0].set_total("ghost", 3).await.expect("total");
            assert_eq!(stores[0].job("ghost").await.expect("read"), None);
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_uploads_of_one_providers_bytes_or_key_through_several_replicas_make_one_image_on_scylladb() {
    with_cluster(
        "concurrent_uploads_of_one_providers_bytes_or_key_through_several_replicas_make_one_image_on_scylladb",
        |session, args| async move {
            let stores = ingest_replicas(&session, &args, 4).await;
            // Eight uploads of the same bytes, half with one key, through four replicas at once.
            let claims = (0..8).map(|i| {
                let store = stores[i % stores.len()].clone();
                let key = (i % 2 == 0).then_some("k-same");
                async move { store.claim(new_image(&format!("same-{i}"), "p", "s-same", key)).await }
            });
            let results: Vec<Claim> = futures::future::join_all(claims)
                .await
                .into_iter()
                .collect::<Result<_, _>>()
                .expect("claim");
            let created: Vec<usize> = (0..8).filter(|i| results[*i] == Claim::Created).collect();
            assert_eq!(created.len(), 1, "{results:?}");
            let winner = format!("same-{}", created[0]);
            // A loser that wrote the winner's first request before the winner did answers Resumed
            // (and would publish its event too: the same event id).
            let names_winner = |r: &Claim| match r {
                Claim::Created => true,
                Claim::Existing { image_id } | Claim::Resumed { image_id, .. } => *image_id == winner,
            };
            assert!(results.iter().all(names_winner), "{results:?}");
            assert!(stores[1].image(&winner).await.expect("image").is_some());
            assert_eq!(stores[2].unfinished().await.expect("open").len(), 1, "one request, once");

            // Four uploads of other bytes under one key at once: each one the key did not name
            // first stands as an image of its own (SQLite would serialize them; see the adapter's
            // docs), and the key ends naming exactly one of them, which a retry answers.
            let keyed = (0..4).map(|i| {
                let store = stores[i].clone();
                async move {
                    store
                        .claim(new_image(&format!("key-{i}"), "p", &format!("s-key-{i}"), Some("k-race")))
                        .await
                }
            });
            let results: Vec<Claim> = futures::future::join_all(keyed)
                .await
                .into_iter()
                .collect::<Result<_, _>>()
                .expect("claim");
            let retry = stores[3]
                .claim(new_image("key-retry", "p", "s-key-retry", Some("k-race")))
                .await
                .expect("claim");
            let Claim::Existing { image_id: named } = retry else {
                panic!("a retry with the key is not the key's image: {retry:?}")
            };
            for (i, r) in results.iter().enumerate() {
                match r {
                    Claim::Created => assert!(stores[0].image(&format!("key-{i}")).await.expect("image").is_some()),
                    Claim::Existing { image_id } | Claim::Resumed { image_id, .. } => {
                        assert!(stores[0].image(image_id).await.expect("image").is_some(), "{results:?}");
                        assert_eq!(stores[0].image(&format!("key-{i}")).await.expect("image"), None);
                        assert!(
                            !stores[0].blob_in_use(&format!("s-key-{i}")).await.expect("in use"),
                            "a loser's bytes stay claimed"
                        );
                    }
                }
            }
            assert!(results[named.trim_start_matches("key-").parse::<usize>().expect("an index")] == Claim::Created);
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_upload_whose_replica_stopped_after_the_claim_is_finished_by_the_next_upload_on_scylladb() {
    with_cluster(
        "an_upload_whose_replica_stopped_after_the_claim_is_finished_by_the_next_upload_on_scylladb",
        |session, args| async move {
            let store = ScyllaIngest::new(Arc::clone(&session), &args).await.expect("prepare");
            // The claim alone, as a replica that stopped right after it leaves it.
            session
                .query_unpaged(
                    format!(
                        "INSERT INTO {}.ingest_content (provider_id, sha256, image_id, size, media_type, blob_key, idem_key, \
                         created_at, request_id, event) VALUES ('p', 's1', 'orphan', 3, 'application/dicom', 'raw/s1', 'k1', \
                         1000000, 'req-orphan', '{{\"image_id\":\"orphan\"}}') IF NOT EXISTS",
                        args.keyspace
                    ),
                    &[],
                )
                .await
                .expect("write a bare claim");
            assert_eq!(store.image("orphan").await.expect("image"), None, "no row yet");
            assert_eq!(
                store.claim(new_image("retry", "p", "s1", None)).await.expect("claim"),
                Claim::Resumed {
                    image_id: "orphan".into(),
                    event_json: "{\"image_id\":\"orphan\"}".into()
                },
                "the finder wrote its first request, so it publishes it"
            );
            assert_eq!(
                store.claim(new_image("again", "p", "s1", None)).await.expect("claim"),
                Claim::Existing { image_id: "orphan".into() },
                "once complete, it is an image like any other"
            );
            let image = store.image("orphan").await.expect("image").expect("finished from the claim");
            assert_eq!((image.size, image.blob_key.as_str()), (3, "raw/s1"));
            assert_eq!(store.request_state("req-orphan").await.expect("state"), Some(RequestState::Pending));
            assert_eq!(
                store.unfinished().await.expect("open"),
                vec!["{\"image_id\":\"orphan\"}".to_owned()]
            );
            assert!(store.blob_in_use("s1").await.expect("in use"));

            // A replica that stopped after the claim and the request row, before the request's
            // link and open row: the next upload of those bytes writes them, so it is announced.
            for cql in [
                "INSERT INTO {ks}.ingest_content (provider_id, sha256, image_id, size, media_type, blob_key, created_at, \
                 request_id, event) VALUES ('p', 's2', 'half', 3, 'application/dicom', 'raw/s2', 2000000, 'req-half', \
                 '{\"image_id\":\"half\"}') IF NOT EXISTS",
                "INSERT INTO {ks}.ingest_requests (request_id, image_id, state, event, bucket, created_at) VALUES \
                 ('req-half', 'half', 'pending', '{\"image_id\":\"half\"}', 0, 2000000) IF NOT EXISTS",
            ] {
                session
                    .query_unpaged(cql.replace("{ks}", &args.keyspace), &[])
                    .await
                    .expect("write a half-written upload");
            }
            assert_eq!(
                store.claim(new_image("retry2", "p", "s2", None)).await.expect("claim"),
                Claim::Existing { image_id: "half".into() },
                "its first request was recorded: its uploader publishes it, or the next start does"
            );
            assert_eq!(
                store.unfinished().await.expect("open"),
                vec!["{\"image_id\":\"orphan\"}".to_owned(), "{\"image_id\":\"half\"}".to_owned()],
                "the repaired request is open again"
            );
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_notifications_conformance_suite_passes_on_scylladb() {
    with_cluster(
        "the_notifications_conformance_suite_passes_on_scylladb",
        |session, args| async move {
            let store = ScyllaNotifications::new(session, &args).await.expect("prepare");
            conformance::notifications::all(&store).await;
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn notifications_claimed_concurrently_are_claimed_once_and_listed_once_on_scylladb() {
    with_cluster(
        "notifications_claimed_concurrently_are_claimed_once_and_listed_once_on_scylladb",
        |session, args| async move {
            let stores: Vec<ScyllaNotifications> =
                futures::future::join_all((0..4).map(|_| ScyllaNotifications::new(Arc::clone(&session), &args)))
                    .await
                    .into_iter()
                    .collect::<Result<_, _>>()
                    .expect("prepare");
            let notification = |id: &str, at: i64| Notification {
                id: id.into(),
                event_id: "ev-1".into(),
                event_type: "PagoProcesado".into(),
                channel: "email".into(),
                template: "pago".into(),
                recipient: "usuario:u1".into(),
                owner: "usuario:u1".into(),
                state: DeliveryState::Pendiente,
                attempts: 0,
                reason: None,
                created_at: at,
                updated_at: at,
            };
            // One event delivered to eight notifiers at once, each at its own time: one claim wins.
            let claims = (0..8).map(|i| {
                let store = stores[i % stores.len()].clone();
                let n = notification("n1", 1_000 + i as i64);
                async move { (n.created_at, store.claim(&n).await.expect("claim")) }
            });
            let outcomes = futures::future::join_all(claims).await;
            let winners: Vec<i64> = outcomes.iter().filter(|(_, c)| c.is_none()).map(|(at, _)| *at).collect();
            assert_eq!(winners.len(), 1, "{outcomes:?}");
            let winner = notification("n1", winners[0]);
            assert!(
                outcomes.iter().all(|(_, c)| c.as_ref().is_none_or(|c| *c == winner)),
                "{outcomes:?}"
            );
            for owner in [Some("usuario:u1"), None] {
                assert_eq!(
                    stores[1].notifications(owner, None, 10).await.expect("list"),
                    vec![winner.clone()],
                    "{owner:?}"
                );
            }
            // The losers took their listing rows back.
            let listed = session
                .query_unpaged(
                    format!(
                        "SELECT id FROM {}.notifications_by_owner WHERE owner = '*' AND bucket = 0",
                        args.keyspace
                    ),
                    &[],
                )
                .await
                .expect("read the listing")
                .into_rows_result()
                .expect("rows")
                .rows_num();
            assert_eq!(listed, 1);

            // A listing row whose claim never came (a notifier that stopped) is skipped, and the
            // page is filled from the rows after it; a settle of an unknown id leaves no row.
            for cql in [
                "INSERT INTO {ks}.notification_buckets (owner, bucket) VALUES ('usuario:u1', 1)",
                "INSERT INTO {ks}.notifications_by_owner (owner, bucket, created_at, id) VALUES ('usuario:u1', 1, 90000000, 'ghost')",
            ] {
                session
                    .query_unpaged(cql.replace("{ks}", &args.keyspace), &[])
                    .await
                    .expect("write a bare listing row");
            }
            stores[2].settle("ghost", DeliveryState::Enviada, 1, None, 5).await.expect("settle");
            let page = stores[3].notifications(Some("usuario:u1"), None, 1).await.expect("list");
            assert_eq!(page, vec![winner.clone()]);
            assert_eq!(
                stores[0].claim(&notification("ghost", 90_000_000)).await.expect("claim"),
                None,
                "new"
            );
            let ghost = notification("ghost", 90_000_000);
            assert_eq!(
                stores[1].notifications(None, None, 10).await.expect("list"),
                vec![ghost, winner.clone()],
                "newest first, across days"
            );
            let older = stores[2]
                .notifications(Some("usuario:u1"), Some((90_000_000, "ghost".into())), 10)
                .await
                .expect("page");
            assert_eq!(older, vec![winner]);
        },
    )
    .await;
}
