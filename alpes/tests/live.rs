//! `GET /eventos/imagenes`, the live image changes, over HTTP: a provider's stream brings its
//! own image registered and then anonymized (and never another provider's), an admin's brings
//! every image, a consumer is refused (403, JSON), no change carries a value from the file, and
//! every stream ends when the server shuts down (so the graceful stop is not held open).

mod common;

use alpes_platform::auth::Role;
use futures::StreamExt;
use std::time::Duration;

/// The `(event, data)` pairs of an SSE stream, as they come.
struct Events {
    body: std::pin::Pin<Box<dyn futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buffer: String,
}

impl Events {
    async fn open(app: &common::TestApp, token: &str) -> Events {
        let res = app
            .client
            .get(format!("{}/eventos/imagenes", app.base))
            .bearer_auth(token)
            .send()
            .await
            .expect("stream");
        assert_eq!(res.status().as_u16(), 200);
        assert_eq!(res.headers()["content-type"], "text/event-stream");
        Events {
            body: Box::pin(res.bytes_stream()),
            buffer: String::new(),
        }
    }

    /// The next event (comments skipped), `None` once the stream ended; 30 s at most.
    async fn next(&mut self) -> Option<(String, serde_json::Value)> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let field = |name: &str| block.lines().find_map(|l| l.strip_prefix(name)).map(str::to_owned);
                if let (Some(event), Some(data)) = (field("event: "), field("data: ")) {
                    return Some((event, serde_json::from_str(&data).expect("JSON data")));
                }
                continue;
            }
            let chunk = tokio::time::timeout(Duration::from_secs(30), self.body.next())
                .await
                .expect("an event within 30 s")?;
            self.buffer.push_str(std::str::from_utf8(&chunk.expect("chunk")).expect("utf-8"));
        }
    }

    /// The states of image `id` until it is anonymized.
    async fn until_anonymized(&mut self, id: &str) -> Vec<String> {
        let mut states = Vec::new();
        while let Some((event, data)) = self.next().await {
            assert_eq!(event, "imagen");
            assert_eq!(data["id"], id, "a change of an image this stream must not see: {data}");
            states.push(data["estado"].as_str().expect("estado").to_owned());
            if data["estado"] == "anonimizada" {
                assert_eq!(data["modalidad"], "CT");
                let mut keys: Vec<&String> = data.as_object().expect("object").keys().collect();
                keys.sort();
                assert_eq!(
                    keys,
                    [
                        "estado",
                        "id",
                        "modalidad",
                        "motivo_rechazo",
                        "ocurrido_at",
                        "proveedor_id",
                        "region_anatomica"
                    ]
                );
                return states;
            }
        }
        panic!("the stream ended before {id} was anonymized: {states:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_stream_brings_the_changes_its_caller_may_see_and_ends_at_shutdown() {
    let app = common::spawn_app().await;
    app.ready().await;
    let (own, other) = (
        app.token("hospital-live", Role::Proveedor).await,
        app.token("hospital-other", Role::Proveedor).await,
    );
    let admin = app.token("ops-live", Role::Admin).await;
    let consumer = app.consumer_token("lab-live").await;

    let refused = app
        .client
        .get(format!("{}/eventos/imagenes", app.base))
        .bearer_auth(&consumer)
        .send()
        .await
        .expect("request");
    assert_eq!(refused.status().as_u16(), 403);
    let body: serde_json::Value = refused.json().await.expect("a JSON error");
    assert_eq!(body["error"], "forbidden");

    let mut mine = Events::open(&app, &own).await;
    let mut all = Events::open(&app, &admin).await;
    // The other provider's upload first: the first stream must skip it, the admin's must not.
    let theirs = app.upload_fixture("MR_small.dcm", &other).await;
    let id = app.upload_fixture("CT_small.dcm", &own).await;
    assert_eq!(mine.until_anonymized(&id).await, ["registrada", "anonimizada"]);
    let mut seen = std::collections::BTreeSet::new();
    while seen.len() < 2 {
        let (_, data) = all.next().await.expect("the admin's stream goes on");
        if data["estado"] == "anonimizada" {
            seen.insert(data["id"].as_str().expect("id").to_owned());
        }
    }
    assert_eq!(seen, [id.clone(), theirs].into_iter().collect());

    // Shutdown ends the streams: the stop completes, and each stream reaches its end.
    app.shutdown.trigger();
    tokio::time::timeout(Duration::from_secs(30), app.task)
        .await
        .expect("the server stopped with streams open")
        .expect("join")
        .expect("clean stop");
    assert_eq!(mine.next().await, None);
    assert_eq!(all.next().await, None);
}
