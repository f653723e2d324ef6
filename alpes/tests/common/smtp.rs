//! A real SMTP server for the tests (aiosmtpd, `notifier/tests/smtp_sink.py`), and the codes
//! its messages carry.

use serde_json::Value;
use std::io::BufRead;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A real SMTP server (`notifier/tests/smtp_sink.py`, aiosmtpd) on 127.0.0.1; stopped when dropped.
pub struct SmtpSink {
    child: Child,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl SmtpSink {
    pub fn start(python: PathBuf) -> SmtpSink {
        let dir = tempfile::tempdir().expect("tmp");
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../notifier/tests/smtp_sink.py");
        let mut child = Command::new(&python)
            .arg(&script)
            .arg(dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("smtp_sink.py runs");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("port line");
        let port = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("smtp_sink.py printed {line:?}, not its port"));
        SmtpSink { child, port, dir }
    }

    /// Every message received so far.
    pub fn messages(&self) -> Vec<Value> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(self.dir.path()).expect("dir").flatten() {
            if e.file_name().to_string_lossy().ends_with(".json") {
                out.push(serde_json::from_str(&std::fs::read_to_string(e.path()).expect("read")).expect("json"));
            }
        }
        out
    }

    /// The first message to `to` whose text contains `needle` (30 s at most).
    pub async fn message_to(&self, to: &str, needle: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let found = self.messages().into_iter().find(|m| {
                m["rcpt_tos"].as_array().is_some_and(|r| r.iter().any(|a| a == to))
                    && m["text"].as_str().is_some_and(|t| t.contains(needle))
            });
            if let Some(m) = found {
                return m;
            }
            assert!(
                Instant::now() < deadline,
                "no message to {to} saying {needle:?}: {:#?}",
                self.messages()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The code on the line of `text` that starts with one of `labels`.
pub fn code_after(text: &str, labels: &[&str]) -> String {
    text.lines()
        .find_map(|l| labels.iter().find_map(|label| l.trim().strip_prefix(label)))
        .map(|rest| rest.trim().trim_start_matches(':').trim().to_owned())
        .unwrap_or_else(|| panic!("no {labels:?} line in {text}"))
}
