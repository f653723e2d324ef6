//! Every error is JSON, whoever answers it (a route, or axum before the
//! route), and client input is answered as client input: a body that cannot
//! be read is 400, not 413.

use super::common;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What the listener answers to the raw `request`: its status line and body.
async fn raw(base: &str, request: &str) -> (String, String) {
    let mut stream = tokio::net::TcpStream::connect(base.trim_start_matches("http://"))
        .await
        .expect("connect");
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.expect("answer");
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer.lines().next().unwrap_or_default().to_owned();
    let body = answer.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_answered_before_any_handler_are_json_too() {
    let app = common::spawn_app().await;
    let token = app.consumer_token("json-consumer").await;
    let auth = format!("authorization: Bearer {token}\r\n");
    let malformed_chunk = "POST /auth/login HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\ncontent-type: application/json\r\nconnection: close\r\n\r\nzz\r\n{}\r\n0\r\n\r\n";
    for (request, status, code) in [
        (
            format!("GET /imagenes/%FF%FE HTTP/1.1\r\nhost: a\r\n{auth}connection: close\r\n\r\n"),
            "400",
            "bad_request",
        ),
        (
            "DELETE /health HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n".to_owned(),
            "405",
            "method_not_allowed",
        ),
        (
            "GET /no/such/route HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n".to_owned(),
            "404",
            "not_found",
        ),
        (malformed_chunk.to_owned(), "400", "bad_body"),
    ] {
        let (line, body) = raw(&app.base, &request).await;
        assert!(line.starts_with(&format!("HTTP/1.1 {status}")), "{request:?}: {line}");
        let json: serde_json::Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("{request:?}: not JSON: {body}"));
        assert_eq!(json["error"], code, "{request:?}");
        assert!(!body.contains("%FF") && !body.contains("\u{FFFD}"), "{body}");
    }
    app.stop().await;
}
