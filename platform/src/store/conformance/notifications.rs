//! The rules of [`NotificationStore`], on an empty store.

use alpes_domain::notification::{DeliveryState, Notification, NotificationStore, Webhook};

fn notification(id: &str, owner: &str, at: i64) -> Notification {
    Notification {
        id: id.into(),
        event_id: format!("ev-{id}"),
        event_type: "ConsentimientoCambiado".into(),
        channel: "email".into(),
        template: "confirmacion_paciente".into(),
        recipient: "paciente:p1".into(),
        owner: owner.into(),
        state: DeliveryState::Pendiente,
        attempts: 0,
        reason: None,
        created_at: at,
        updated_at: at,
    }
}

/// Every rule of the port.
pub async fn all(store: &dyn NotificationStore) {
    let n = notification("n1", "institucion:i1", 10);
    assert_eq!(store.claim(&n).await.expect("claim"), None, "new");
    store.settle("n1", DeliveryState::Enviada, 2, None, 12).await.expect("settle");
    let again = store.claim(&n).await.expect("claim").expect("exists");
    assert_eq!(
        (again.state, again.attempts, again.updated_at),
        (DeliveryState::Enviada, 2, 12),
        "claimed once"
    );
    assert_eq!(store.claim(&notification("n2", "usuario:u1", 11)).await.expect("claim"), None);
    assert_eq!(store.claim(&notification("n3", "institucion:i1", 13)).await.expect("claim"), None);
    store
        .settle("n3", DeliveryState::Fallida, 5, Some("http 500"), 14)
        .await
        .expect("settle");
    let ids = |v: Vec<Notification>| v.into_iter().map(|n| n.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.notifications(None, None, 10).await.expect("list")),
        ["n3", "n2", "n1"],
        "newest first"
    );
    assert_eq!(
        ids(store.notifications(Some("institucion:i1"), None, 10).await.expect("list")),
        ["n3", "n1"]
    );
    assert_eq!(
        ids(store.notifications(None, Some((13, "n3".into())), 1).await.expect("page")),
        ["n2"]
    );
    let failed = store.notifications(Some("institucion:i1"), None, 1).await.expect("list");
    assert_eq!(failed[0].reason.as_deref(), Some("http 500"));

    let w = Webhook {
        id: "w1".into(),
        institution_id: "i1".into(),
        url: "https://hooks.example.org/alpes".into(),
        secret: vec![9, 0, 9],
        events: vec!["ConsentimientoCambiado".into(), "ImagenRechazada".into()],
        created_at: 20,
    };
    store.add_webhook(&w).await.expect("add");
    assert_eq!(store.webhooks("i1").await.expect("list"), vec![w]);
    assert!(store.webhooks("i2").await.expect("list").is_empty());
    assert!(!store.delete_webhook("i2", "w1").await.expect("delete"), "another institution's");
    assert!(store.delete_webhook("i1", "w1").await.expect("delete"));
    assert!(store.webhooks("i1").await.expect("list").is_empty());
}
