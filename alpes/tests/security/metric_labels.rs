//! Label flooding: methods a client makes up fold into `other`, so `/metrics`
//! does not grow with them.

use super::common;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn six_hundred_made_up_methods_do_not_grow_the_metrics() {
    // Without the anonymous rate limit, which would answer most of them 429 first.
    let app = common::spawn_app_with(|s| s.limits.anonymous_rate_limit_rps = 0).await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let before = app.metrics().await.len();
    for i in 0..600 {
        let mut stream = tokio::net::TcpStream::connect(&addr).await.expect("connect");
        let method = format!("M{i:0>1023}");
        let request = format!("{method} /imagenes HTTP/1.1\r\nhost: alpes\r\nconnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.expect("send");
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.expect("answer");
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 405"), "{answer}");
        assert!(answer.contains("\r\n\r\n{"), "a JSON body: {answer}");
    }
    let text = app.metrics().await;
    assert!(!text.contains("M0000"), "a made-up method became a label");
    assert!(text.contains(r#"method="other""#));
    assert!(
        text.len() < before + 16 * 1024,
        "/metrics grew from {before} to {} bytes",
        text.len()
    );
    app.stop().await;
}
