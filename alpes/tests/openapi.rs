//! `/openapi.json` and `/docs` on the listener `alpes up` serves: the merged
//! document of every service, and the offline page that renders it.

mod common;

#[tokio::test]
async fn the_listener_serves_the_merged_document_and_the_docs_page() {
    let app = common::spawn_app().await;
    let res = app
        .client
        .get(format!("{}/openapi.json", app.base))
        .send()
        .await
        .expect("openapi.json");
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/json");
    assert!(res.headers().contains_key("x-request-id"));
    let served: serde_json::Value = res.json().await.expect("JSON");
    assert_eq!(served, alpes::app::openapi_document().expect("merges"));
    for (path, method) in [
        ("/imagenes", "post"),
        ("/imagenes", "get"),
        ("/studies", "post"),
        ("/studies", "get"),
        ("/health", "get"),
    ] {
        assert!(
            served["paths"][path][method].is_object(),
            "{method} {path} is in the merged document"
        );
    }

    let res = app.client.get(format!("{}/docs", app.base)).send().await.expect("docs");
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"].to_str().expect("ascii").starts_with("text/html"));
    let csp = res.headers()["content-security-policy"].to_str().expect("ascii").to_owned();
    assert!(csp.contains("script-src 'sha256-") && csp.contains("connect-src 'self'"), "{csp}");
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    let html = res.text().await.expect("text");
    assert!(html.contains("fetch('openapi.json'"));

    let other = app.client.get(format!("{}/health", app.base)).send().await.expect("health");
    assert_eq!(
        other.headers()["content-security-policy"],
        "default-src 'none'; frame-ancestors 'none'"
    );
    app.shutdown.trigger();
    app.task.await.expect("join").expect("clean stop");
}
