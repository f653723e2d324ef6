//! Finding 3: consumers paid nothing, and anyone could be one. On the
//! embedded defaults a consumer who registered downloads nothing until an
//! admin approves it; past its credit it gets 402, also when a burst of its
//! downloads arrives before billing applied any of them; and after concurrent
//! downloads by many consumers the consumers' charges add up to exactly the
//! providers' credits.

use crate::common::{spawn_app, TestApp};
use alpes_platform::auth::Role;
use std::time::{Duration, Instant};

const PASSWORD: &str = "Money-Probe-Password-7";

async fn register(app: &TestApp, name: &str, rol: &str) -> String {
    let body = serde_json::json!({"nombre": name, "email": format!("{name}@money.test"), "password": PASSWORD, "rol": rol});
    let (status, v) = app.post_json("/usuarios", None, body).await;
    assert_eq!(status, 201, "{v}");
    v["id"].as_str().expect("id").to_owned()
}

async fn approve(app: &TestApp, admin: &str, id: &str, limit: i64) {
    let body = serde_json::json!({"verificado": true, "limite_credito_minor": limit, "moneda": "EUR"});
    let res = app
        .client
        .put(format!("{}/monetizacion/consumidores/{id}", app.base))
        .bearer_auth(admin)
        .json(&body)
        .send()
        .await
        .expect("approve");
    assert_eq!(res.status().as_u16(), 200);
}

async fn download(app: &TestApp, token: &str, image: &str) -> (u16, serde_json::Value) {
    let res = app
        .client
        .get(format!("{}/imagenes/{image}/anonimizada", app.base))
        .bearer_auth(token)
        .send()
        .await
        .expect("download");
    let status = res.status().as_u16();
    let body = if status == 200 {
        serde_json::Value::Null
    } else {
        res.json().await.expect("a JSON error")
    };
    (status, body)
}

/// `(accrued, charged)` of `user` in EUR, as `GET /monetizacion/saldo` shows them.
async fn saldo(app: &TestApp, admin: &str, user: &str) -> (i64, i64) {
    let v = app.get_json(&format!("/monetizacion/saldo/{user}"), admin).await;
    (
        v["devengado_minor"].as_i64().expect("devengado"),
        v["cargado_minor"].as_i64().expect("cargado"),
    )
}

/// Waits until billing applied `charges` charges to `consumer`.
async fn billed(app: &TestApp, admin: &str, consumer: &str, charges: i64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v = app.get_json(&format!("/monetizacion/saldo/{consumer}"), admin).await;
        if v["cargos"].as_i64() == Some(charges) {
            return;
        }
        assert!(Instant::now() < deadline, "billing never charged {consumer} {charges} time(s): {v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unapproved_consumer_downloads_nothing_one_past_its_credit_gets_402_and_charges_equal_credits() {
    let app = spawn_app().await;
    app.ready().await;
    let admin = app.token("money-admin", Role::Admin).await;
    let (p1, p2) = (
        register(&app, "money-p1", "proveedor").await,
        register(&app, "money-p2", "proveedor").await,
    );
    let mut images = Vec::new();
    for (p, fixture) in [(&p1, "CT_small.dcm"), (&p1, "MR_small.dcm"), (&p2, "JPEG2000.dcm")] {
        images.push(app.upload_fixture(fixture, &app.token(p, Role::Proveedor).await).await);
    }
    for image in &images {
        app.download_when_ready(image, &app.token("money-admin", Role::Admin).await).await;
    }

    // A consumer who just registered: refused until an admin approves it.
    let fresh = register(&app, "money-fresh", "consumidor").await;
    let fresh_token = app.token(&fresh, Role::Consumidor).await;
    let (status, body) = download(&app, &fresh_token, &images[0]).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("consumer_not_verified")), "{body}");

    // Approved with credit for one download (100 each on the defaults): the second is 402.
    approve(&app, &admin, &fresh, 150).await;
    assert_eq!(download(&app, &fresh_token, &images[0]).await.0, 200);
    billed(&app, &admin, &fresh, 1).await;
    assert_eq!(
        download(&app, &fresh_token, &images[0]).await.0,
        200,
        "a repeat in the window is free"
    );
    let (status, body) = download(&app, &fresh_token, &images[1]).await;
    assert_eq!((status, body["error"].as_str()), (402, Some("insufficient_credit")), "{body}");
    assert!(body["message"].as_str().expect("message").contains("50 are left"), "{body}");

    // Concurrent load: 12 consumers download every image, each twice, from 12 tasks at once.
    let mut consumers = Vec::new();
    for i in 0..12 {
        let id = register(&app, &format!("money-c{i}"), "consumidor").await;
        approve(&app, &admin, &id, 1_000_000).await;
        consumers.push(id);
    }
    let app = std::sync::Arc::new(app);
    let mut tasks = Vec::new();
    for c in &consumers {
        let (app, token, images) = (app.clone(), app.token(c, Role::Consumidor).await, images.clone());
        tasks.push(tokio::spawn(async move {
            for image in images.iter().chain(images.iter()) {
                assert_eq!(download(&app, &token, image).await.0, 200);
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    for c in &consumers {
        billed(&app, &admin, c, images.len() as i64).await;
    }
    let mut charged = saldo(&app, &admin, &fresh).await.1;
    for c in &consumers {
        charged += saldo(&app, &admin, c).await.1;
    }
    // The admin's own downloads (waiting for the images) are charged to the admin, and credited too.
    charged += saldo(&app, &admin, "money-admin").await.1;
    let credited = saldo(&app, &admin, &p1).await.0 + saldo(&app, &admin, &p2).await.0;
    assert_eq!(charged, credited, "the consumers' charges and the providers' credits");
    assert_eq!(credited, 100 * (1 + 3 * 12 + 3), "one charge per consumer, image and window");
    std::sync::Arc::into_inner(app).expect("the tasks are done").stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_downloads_cannot_pass_the_credit_limit_by_the_ones_billing_has_not_applied() {
    let app = spawn_app().await;
    app.ready().await;
    let admin = app.token("burst-admin", Role::Admin).await;
    let provider = app.token("burst-provider", Role::Proveedor).await;
    let mut images = Vec::new();
    for fixture in ["CT_small.dcm", "MR_small.dcm", "JPEG2000.dcm"] {
        images.push(app.upload_fixture(fixture, &provider).await);
    }
    for image in &images {
        app.download_when_ready(image, &admin).await;
    }
    // Credit for two downloads of 100, not three; every image asked for four times at once.
    let consumer = register(&app, "burst-c", "consumidor").await;
    approve(&app, &admin, &consumer, 250).await;
    let token = app.token(&consumer, Role::Consumidor).await;
    let app = std::sync::Arc::new(app);
    let mut tasks = Vec::new();
    for image in images.iter().cycle().take(images.len() * 4) {
        let (app, token, image) = (app.clone(), token.clone(), image.clone());
        tasks.push(tokio::spawn(async move { (image.clone(), download(&app, &token, &image).await) }));
    }
    let mut served = std::collections::BTreeSet::new();
    for t in tasks {
        let (image, (status, body)) = t.await.expect("task");
        match status {
            200 => {
                served.insert(image);
            }
            402 => assert_eq!(body["error"].as_str(), Some("insufficient_credit"), "{body}"),
            other => panic!("download answered {other}: {body}"),
        }
    }
    assert_eq!(served.len(), 2, "two images fit the credit, the third does not: {served:?}");
    billed(&app, &admin, &consumer, 2).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(saldo(&app, &admin, &consumer).await.1, 200, "charged within the limit");
    std::sync::Arc::into_inner(app).expect("the tasks are done").stop().await;
}
