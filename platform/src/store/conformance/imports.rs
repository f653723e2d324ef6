//! The rules of [`ImportStore`], on an empty store.

use crate::store::{ImportItem, ImportJob, ImportSpec, ImportState, ImportStore, ItemOutcome};

fn job(id: &str, provider: &str, created_at: i64) -> ImportJob {
    ImportJob {
        job_id: id.into(),
        provider_id: provider.into(),
        created_by: provider.into(),
        spec: ImportSpec::Urls {
            urls: vec!["http://h/a.dcm".into(), "http://h/b.png".into()],
            auth: Some(alpes_domain::import::SourceAuth::Bearer { token: "t0k".into() }),
        },
        state: ImportState::Pending,
        reason: None,
        total: None,
        created_at,
        started_at: None,
        finished_at: None,
    }
}

fn item(key: &str, outcome: ItemOutcome, image: Option<&str>, at: i64) -> ImportItem {
    ImportItem {
        key: key.into(),
        outcome,
        image_id: image.map(str::to_owned),
        reason: (outcome == ItemOutcome::Failed).then(|| "http_404: not found".to_owned()),
        at,
    }
}

/// Every rule of [`ImportStore`], on an empty store.
pub async fn imports(store: &dyn ImportStore) {
    assert!(store.job("nope").await.expect("read").is_none());
    let a = job("0001-a", "p1", 100);
    store.create_job(&a).await.expect("create");
    store.create_job(&job("0002-b", "p2", 200)).await.expect("create");
    store.create_job(&job("0003-c", "p1", 300)).await.expect("create");
    assert_eq!(
        store.job("0001-a").await.expect("read"),
        Some(a.clone()),
        "a job reads back as written, auth included"
    );

    // Newest first, by provider or all, in pages.
    let ids = |jobs: Vec<ImportJob>| jobs.into_iter().map(|j| j.job_id).collect::<Vec<_>>();
    assert_eq!(ids(store.jobs(Some("p1"), None, 10).await.expect("list")), ["0003-c", "0001-a"]);
    assert_eq!(ids(store.jobs(None, None, 10).await.expect("list")), ["0003-c", "0002-b", "0001-a"]);
    let first = store.jobs(None, None, 2).await.expect("page");
    let last = first.last().expect("two");
    let after = Some((last.created_at, last.job_id.clone()));
    assert_eq!(ids(store.jobs(None, after, 2).await.expect("page")), ["0001-a"]);
    assert!(store.jobs(Some("p3"), None, 10).await.expect("list").is_empty());

    // States move only forward, and a final one never moves again.
    assert!(
        !store.transition("0001-a", ImportState::Completed, None, 110).await.expect("cas"),
        "pending cannot complete"
    );
    assert!(store.transition("0001-a", ImportState::Running, None, 120).await.expect("start"));
    assert!(
        store.transition("0001-a", ImportState::Running, None, 125).await.expect("restart"),
        "a replayed job runs again"
    );
    store.set_total("0001-a", 2).await.expect("total");
    assert!(store
        .transition("0001-a", ImportState::Cancelled, Some("cancelled by p1"), 130)
        .await
        .expect("cancel"));
    assert!(
        !store.transition("0001-a", ImportState::Completed, None, 140).await.expect("cas"),
        "cancel wins"
    );
    assert!(!store.transition("0001-a", ImportState::Running, None, 150).await.expect("cas"));
    let read = store.job("0001-a").await.expect("read").expect("job");
    assert_eq!(read.state, ImportState::Cancelled);
    assert_eq!(read.reason.as_deref(), Some("cancelled by p1"));
    assert_eq!((read.total, read.started_at, read.finished_at), (Some(2), Some(120), Some(130)));
    assert!(!store.transition("nope", ImportState::Running, None, 1).await.expect("unknown"));
    assert!(store.transition("0002-b", ImportState::Running, None, 210).await.expect("start"));
    assert!(store
        .transition("0002-b", ImportState::Failed, Some("source_unreachable"), 220)
        .await
        .expect("fail"));
    assert_eq!(store.job("0002-b").await.expect("read").expect("job").state, ImportState::Failed);

    // An item's first outcome is its only one.
    assert!(store.items("0003-c").await.expect("items").is_empty());
    assert!(store
        .record_item("0003-c", &item("http://h/b.png", ItemOutcome::Imported, Some("img-1"), 310))
        .await
        .expect("record"));
    assert!(store
        .record_item("0003-c", &item("http://h/a.dcm", ItemOutcome::Failed, None, 320))
        .await
        .expect("record"));
    assert!(!store
        .record_item("0003-c", &item("http://h/b.png", ItemOutcome::Duplicate, Some("img-1"), 330))
        .await
        .expect("again"));
    assert!(store
        .record_item("0001-a", &item("http://h/b.png", ItemOutcome::Duplicate, Some("img-1"), 340))
        .await
        .expect("other job"));
    let items = store.items("0003-c").await.expect("items");
    assert_eq!(
        items,
        vec![
            item("http://h/a.dcm", ItemOutcome::Failed, None, 320),
            item("http://h/b.png", ItemOutcome::Imported, Some("img-1"), 310),
        ],
        "by key, each with its first outcome"
    );
}
