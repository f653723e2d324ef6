//! The servers `channels.rs` talks to, all on 127.0.0.1: [`SmtpSink`], a real SMTP server
//! (aiosmtpd, run by `smtp_sink.py`), and [`Recorder`], an HTTP server (axum) that records
//! each request and answers with the statuses it is given.

#![allow(dead_code)]

use axum::http::{HeaderMap, Method, StatusCode, Uri};
use std::collections::VecDeque;
use std::io::BufRead;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How to get an interpreter with aiosmtpd, for the failure message.
const HOW: &str = "from the workspace root:\n    \
    python3 -m venv .venv-aiosmtpd && .venv-aiosmtpd/bin/pip install 'aiosmtpd==1.4.6'\n    \
    ALPES_AIOSMTPD_PYTHON=$PWD/.venv-aiosmtpd/bin/python cargo test -p alpes-notifier";

/// `ALPES_AIOSMTPD_PYTHON`, a relative path taken from the workspace root. Panics, saying
/// how to set it, when it is unset: the SMTP tests are never skipped.
pub fn aiosmtpd_python() -> PathBuf {
    let Some(value) = std::env::var_os("ALPES_AIOSMTPD_PYTHON").filter(|v| !v.is_empty()) else {
        panic!("ALPES_AIOSMTPD_PYTHON is not set: it must name a python that has aiosmtpd. To set it up, {HOW}");
    };
    let python = PathBuf::from(value);
    if python.is_relative() && python.components().count() > 1 {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join(python)
    } else {
        python
    }
}

/// A running `smtp_sink.py`: a real SMTP server on 127.0.0.1:`port` that writes each message
/// it receives into `dir`. Stopped when dropped.
pub struct SmtpSink {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

impl SmtpSink {
    pub fn start() -> SmtpSink {
        let python = aiosmtpd_python();
        let dir = tempfile::tempdir().expect("tmp dir");
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/smtp_sink.py");
        let mut child = Command::new(&python)
            .arg(&script)
            .arg(dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("ALPES_AIOSMTPD_PYTHON={} does not run ({e}). To set it up, {HOW}", python.display()));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = std::io::BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_default();
        let Ok(port) = line.trim().parse::<u16>() else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "smtp_sink.py did not print its port (got {line:?}); does {} have aiosmtpd? To set it up, {HOW}",
                python.display()
            );
        };
        SmtpSink { child, port, dir }
    }

    /// The `n`th message received (from 1), once written; panics after 10 s.
    pub async fn message(&self, n: usize) -> serde_json::Value {
        let path = self.dir.path().join(format!("msg-{n}.json"));
        let start = Instant::now();
        loop {
            if let Ok(text) = std::fs::read_to_string(&path) {
                return serde_json::from_str(&text).expect("the sink writes JSON");
            }
            assert!(start.elapsed() < Duration::from_secs(10), "no message {n} in 10 s");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// How many messages were received so far.
    pub fn count(&self) -> usize {
        std::fs::read_dir(self.dir.path())
            .expect("sink dir")
            .filter(|e| e.as_ref().is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".json")))
            .count()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port on 127.0.0.1 where nothing listens (bound, then closed).
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// One request the [`Recorder`] received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: Method,
    pub path: String,
    pub headers: HeaderMap,
    pub body: bytes::Bytes,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as `application/x-www-form-urlencoded` fields, in order.
    pub fn form(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(&self.body).into_owned().collect()
    }
}

/// An HTTP server on 127.0.0.1:0 that records every request and answers each with the next
/// of its statuses (then 200); a 3xx comes with `Location: /elsewhere`.
#[derive(Clone)]
pub struct Recorder {
    pub base: String,
    requests: Arc<Mutex<Vec<Recorded>>>,
    statuses: Arc<Mutex<VecDeque<u16>>>,
}

impl Recorder {
    pub async fn start(statuses: &[u16]) -> Recorder {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let recorder = Recorder {
            base,
            requests: Arc::default(),
            statuses: Arc::new(Mutex::new(statuses.iter().copied().collect())),
        };
        let state = recorder.clone();
        let app = axum::Router::new().fallback(move |method: Method, uri: Uri, headers: HeaderMap, body: bytes::Bytes| {
            let state = state.clone();
            async move {
                let path = uri.path().to_owned();
                state.requests.lock().expect("lock").push(Recorded {
                    method,
                    path,
                    headers,
                    body,
                });
                let status = state.statuses.lock().expect("lock").pop_front().unwrap_or(200);
                let status = StatusCode::from_u16(status).expect("status");
                (status, [(axum::http::header::LOCATION, "/elsewhere")], "{}")
            }
        });
        tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
        recorder
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().expect("lock").clone()
    }
}
