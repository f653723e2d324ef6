//! PHI never leaves the raw blob: with inputs carrying planted names and ids (in DICOM attributes,
//! in a transfer syntax UID that makes the engine fail, in PNG/JPEG metadata, at the start of an
//! unreadable file) and the fixtures' own PatientName/PatientID, none of those strings appears in
//! the JSON logs (every level, every target), the events, the metrics or the anonymized blobs.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;

const NAME: &str = "ZYXWVPHINAME";
const ID: &str = "PHIID98765";

/// Collects every log line.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_phi_reaches_logs_events_metrics_or_blobs() {
    let logs = Capture::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_current_span(true)
        .with_span_list(true)
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let h = Harness::start().await;
    let (ct, mr) = (fixture("CT_small.dcm"), fixture("MR_small.dcm"));
    let mut phi: Vec<String> = vec![NAME.into(), ID.into()];
    for f in [&ct, &mr] {
        phi.extend(
            [0x0010_0010, 0x0010_0020]
                .iter()
                .filter_map(|t| dicom_text(f, *t))
                .filter(|v| v.len() >= 4),
        );
    }
    assert!(phi.len() >= 6, "the fixtures name their patients: {phi:?}");

    let planted = with_phi(&ct, &format!("{NAME}^JOHN"), ID);
    let mut truncated = planted.clone();
    truncated.truncate(planted.len() - 1000);
    // A transfer syntax UID that is a name: the engine's error would carry it.
    let mut bad_syntax = planted.clone();
    let ts = b"1.2.840.10008.1.2.1\0";
    let at = bad_syntax
        .windows(ts.len())
        .position(|w| w == ts)
        .expect("the meta names its transfer syntax");
    bad_syntax[at..at + ts.len()].copy_from_slice(format!("{NAME}^JOHN.12").as_bytes());
    let inputs: Vec<(&str, Vec<u8>)> = vec![
        ("planted", planted.clone()),
        ("truncated", truncated),
        ("bad-syntax", bad_syntax),
        ("ct", ct.clone()),
        ("mr", mr.clone()),
        ("png", png(32, 20, &format!("{NAME}^JOHN {ID}"))),
        ("jpeg", jpeg(32, 20, &format!("{NAME}^JOHN {ID}"))),
        ("garbage", format!("{NAME}^JOHN {ID} is not an image").into_bytes()),
    ];
    for (id, bytes) in &inputs {
        h.produce(&h.register(id, bytes, "application/dicom").await).await;
    }
    let worker = h.spawn(test_config("phi"));
    let mut reader = Reader::new(&h);
    reader.until_distinct(Duration::from_secs(30), inputs.len()).await;
    reader.settle(Duration::from_millis(1000)).await;
    let metrics = worker.metrics.render();
    worker.stop().await.expect("clean stop");

    let reasons: Vec<&str> = reader.seen.iter().filter_map(Out::rejected).map(|e| e.reason.as_str()).collect();
    for expected in ["unsupported_transfer_syntax", "unknown_format"] {
        assert!(reasons.contains(&expected), "{expected} among {reasons:?}");
    }
    assert!(reasons.len() >= 3, "the truncated copy is rejected too: {reasons:?}");
    assert!(!reader.analyses.is_empty(), "the safety net's analyses were read");
    let events = format!("{:?} {:?}", reader.seen, reader.analyses);
    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("image rejected") && logs.contains("\"image_id\""),
        "the logs were captured"
    );
    for s in &phi {
        assert!(!logs.contains(s.as_str()), "{s:?} in the logs");
        assert!(!events.contains(s.as_str()), "{s:?} in an event");
        assert!(!metrics.contains(s.as_str()), "{s:?} in the metrics");
    }
    for e in reader.seen.iter().filter_map(Out::anonymized) {
        let blob = h.blobs.get(&e.blob_key).await.unwrap();
        for s in [NAME, ID] {
            assert!(
                !blob.windows(s.len()).any(|w| w == s.as_bytes()),
                "{s:?} in the anonymized blob of {}",
                e.image_id
            );
        }
    }
}
