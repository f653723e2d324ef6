//! Slow clients: connections that send half a request line, nothing at all,
//! a part of HTTP/2's preface or part of a promised body are closed within the configured time, while
//! everyone else is served; and one address cannot hold more than its share
//! of connections.

use super::common;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const HEADER_SECS: u64 = 2;
const BODY_SECS: u64 = 2;

/// What a slow client sends before it goes quiet.
#[derive(Debug, Clone, Copy)]
enum Probe {
    Nothing,
    HalfARequestLine,
    PartOfHttp2sPreface,
    PartOfABody,
}

impl Probe {
    fn bytes(self) -> &'static [u8] {
        match self {
            Probe::Nothing => b"",
            Probe::HalfARequestLine => b"GET /heal",
            Probe::PartOfHttp2sPreface => b"PRI * HTTP/2.0\r\n",
            Probe::PartOfABody => {
                b"POST /auth/login HTTP/1.1\r\nhost: alpes\r\ncontent-type: application/json\r\ncontent-length: 20\r\n\r\n{\"ema"
            }
        }
    }
}

/// How long `stream` stays open after `since`, and what it was answered.
async fn held_open(mut stream: TcpStream, since: Instant, cap: Duration) -> (Duration, String) {
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout_at((since + cap).into(), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => answer.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
    }
    (since.elapsed(), String::from_utf8_lossy(&answer).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_slow_connections_are_each_closed_in_time_while_others_are_served() {
    let app = common::spawn_app_with(|s| {
        s.server.header_timeout_secs = HEADER_SECS;
        s.server.idle_timeout_secs = 8;
        s.server.max_connections_per_ip = 1_500;
        s.limits.request_timeout_secs = 5;
        s.limits.body_timeout_secs = BODY_SECS;
        s.limits.anonymous_rate_limit_rps = 0;
    })
    .await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let probes = [
        Probe::Nothing,
        Probe::HalfARequestLine,
        Probe::PartOfHttp2sPreface,
        Probe::PartOfABody,
    ];
    let mut held = Vec::new();
    for i in 0..1_000 {
        let probe = probes[i % probes.len()];
        let mut stream = TcpStream::connect(&addr).await.expect("connect");
        let since = Instant::now();
        stream.write_all(probe.bytes()).await.expect("send");
        held.push((probe, tokio::spawn(held_open(stream, since, Duration::from_secs(30)))));
    }
    // Everyone else is served meanwhile.
    for _ in 0..20 {
        let started = Instant::now();
        let res = app.client.get(format!("{}/health", app.base)).send().await.expect("health");
        assert_eq!(res.status().as_u16(), 200);
        assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
    }
    // Each slow connection is closed within its limit and a little scheduling slack.
    let slack = Duration::from_secs(3);
    for (probe, task) in held {
        let (open_for, answer) = task.await.expect("reader");
        let limit = match probe {
            Probe::PartOfABody => Duration::from_secs(BODY_SECS),
            _ => Duration::from_secs(HEADER_SECS),
        };
        assert!(open_for <= limit + slack, "{probe:?} stayed open {open_for:?}");
        assert!(
            open_for >= limit - Duration::from_millis(100),
            "{probe:?} closed early, after {open_for:?}"
        );
        if let Probe::PartOfABody = probe {
            assert!(answer.starts_with("HTTP/1.1 408"), "{probe:?}: {answer}");
            assert!(answer.contains("\"error\":\"body_timeout\""), "{answer}");
        }
    }
    let res = app.client.get(format!("{}/health", app.base)).send().await.expect("health");
    assert_eq!(res.status().as_u16(), 200);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_past_its_connection_limit_is_answered_503_json_and_closed() {
    let app = common::spawn_app_with(|s| {
        s.server.header_timeout_secs = HEADER_SECS;
        s.server.max_connections_per_ip = 5;
    })
    .await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let mut idle = Vec::new();
    for _ in 0..5 {
        idle.push(TcpStream::connect(&addr).await.expect("connect"));
    }
    let extra = TcpStream::connect(&addr).await.expect("connect");
    let (_, answer) = held_open(extra, Instant::now(), Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    let body = answer.split("\r\n\r\n").nth(1).expect("a body");
    let body: serde_json::Value = serde_json::from_str(body).expect("json");
    assert_eq!(body["error"], "too_many_connections");
    // Once the idle ones are closed (by the header time), the address is served again.
    for stream in idle {
        let (open_for, _) = held_open(stream, Instant::now(), Duration::from_secs(10)).await;
        assert!(open_for <= Duration::from_secs(HEADER_SECS + 3), "{open_for:?}");
    }
    let res = app.client.get(format!("{}/health", app.base)).send().await.expect("health");
    assert_eq!(res.status().as_u16(), 200);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keep_alive_connection_left_idle_is_closed_after_the_header_time() {
    let app = common::spawn_app_with(|s| s.server.header_timeout_secs = HEADER_SECS).await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let mut stream = TcpStream::connect(&addr).await.expect("connect");
    stream
        .write_all(b"GET /health HTTP/1.1\r\nhost: alpes\r\n\r\n")
        .await
        .expect("send");
    let mut buf = vec![0u8; 4096];
    let n = stream.read(&mut buf).await.expect("answer");
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    let (open_for, rest) = held_open(stream, Instant::now(), Duration::from_secs(20)).await;
    assert!(rest.is_empty(), "{rest}");
    assert!(open_for <= Duration::from_secs(HEADER_SECS + 3), "idle for {open_for:?}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http2_connection_on_which_nothing_moves_is_closed_after_the_idle_time() {
    const IDLE_SECS: u64 = 3;
    let app = common::spawn_app_with(|s| {
        s.server.idle_timeout_secs = IDLE_SECS;
        s.limits.request_timeout_secs = 2;
    })
    .await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let mut stream = TcpStream::connect(&addr).await.expect("connect");
    // HTTP/2 with prior knowledge: the preface and an empty SETTINGS frame, then nothing. HTTP/2
    // has no header timer, and hyper keeps such a connection open for as long as it lasts.
    stream.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await.expect("preface");
    stream.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).await.expect("settings");
    let since = Instant::now();
    let (open_for, answer) = held_open(stream, since, Duration::from_secs(30)).await;
    assert!(!answer.is_empty(), "the server spoke HTTP/2 (its SETTINGS)");
    assert!(
        open_for >= Duration::from_secs(IDLE_SECS) - Duration::from_millis(200) && open_for <= Duration::from_secs(IDLE_SECS + 3),
        "closed after {open_for:?}"
    );
    app.stop().await;
}
