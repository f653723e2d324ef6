//! Prometheus metrics. One [`Metrics`] per process, shared by every service in
//! it. Labels are routes, topics, partitions and reason codes: never PHI.

use prometheus::{Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder};

/// Every metric Alpes exports.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    /// HTTP requests by route, method and status.
    pub http_requests: IntCounterVec,
    /// HTTP latency by route, seconds.
    pub http_latency: HistogramVec,
    /// Consumer lag by group, topic and partition, messages.
    pub consumer_lag: IntGaugeVec,
    /// Engine time per image by outcome, seconds.
    pub engine_seconds: HistogramVec,
    /// Upload bytes received.
    pub bytes_in: IntCounter,
    /// Anonymized bytes written.
    pub bytes_out: IntCounter,
    /// Images rejected, by reason code.
    pub rejections: IntCounterVec,
    /// Images the burned-in text safety net analysed, by label.
    pub analyses: IntCounterVec,
    /// Events produced, by topic.
    pub events_produced: IntCounterVec,
    /// Ledger entries billing applied, by kind and outcome (recorded, duplicate, refused code).
    pub ledger_entries: IntCounterVec,
    /// Audit entries the broker did not acknowledge.
    pub audit_unrecorded: IntCounter,
    /// Raw blobs no image of this process uses, kept because the blob store is shared.
    pub raw_blobs_kept: IntCounter,
    /// DICOM associations, by outcome (accepted, rejected, over_limit, failed).
    pub dimse_associations: IntCounterVec,
    /// DIMSE operations, by command (c_echo, c_store, other) and outcome (stored, duplicate, or the failure).
    pub dimse_operations: IntCounterVec,
    /// Import jobs that reached a state (running, completed, failed, cancelled).
    pub import_jobs: IntCounterVec,
    /// Import items by source host and outcome (imported, duplicate, failed).
    pub import_items: IntCounterVec,
    /// Requests of import jobs by source host and result (ok, http_4xx, http_429, http_5xx,
    /// timeout, connect, body, refused).
    pub import_requests: IntCounterVec,
    /// Notifications by channel and outcome (enviada, fallida, omitida, reintento): never an
    /// address or a recipient.
    pub notifications: IntCounterVec,
}

fn must<T>(r: prometheus::Result<T>) -> T {
    match r {
        Ok(v) => v,
        // The options are compile-time constants; a failure is a programming error.
        Err(e) => panic!("metric definition: {e}"),
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every metric registered.
    pub fn new() -> Self {
        let registry = Registry::new_custom(Some("alpes".into()), None).unwrap_or_default();
        let http_requests = must(IntCounterVec::new(
            Opts::new("http_requests_total", "HTTP requests by route, method and status"),
            &["route", "method", "status"],
        ));
        let http_latency = must(HistogramVec::new(
            HistogramOpts::new("http_request_duration_seconds", "HTTP request latency by route")
                .buckets(vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
            &["route"],
        ));
        let consumer_lag = must(IntGaugeVec::new(
            Opts::new(
                "consumer_lag",
                "Messages behind the partition end, by consumer group, topic and partition",
            ),
            &["group", "topic", "partition"],
        ));
        let engine_seconds = must(HistogramVec::new(
            HistogramOpts::new("engine_seconds", "De-identification engine time per image")
                .buckets(vec![0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0]),
            &["outcome"],
        ));
        let bytes_in = must(IntCounter::new("bytes_in_total", "Upload bytes received"));
        let bytes_out = must(IntCounter::new("bytes_out_total", "Anonymized bytes written"));
        let rejections = must(IntCounterVec::new(
            Opts::new("rejections_total", "Images rejected, by reason"),
            &["reason"],
        ));
        let analyses = must(IntCounterVec::new(
            Opts::new("analyses_total", "Images the burned-in text safety net analysed, by label"),
            &["etiqueta"],
        ));
        let events_produced = must(IntCounterVec::new(
            Opts::new("events_produced_total", "Events produced, by topic"),
            &["topic"],
        ));
        let ledger_entries = must(IntCounterVec::new(
            Opts::new(
                "ledger_entries_total",
                "Usage and payment events billing applied, by kind and outcome",
            ),
            &["kind", "outcome"],
        ));
        let audit_unrecorded = must(IntCounter::new(
            "audit_unrecorded_total",
            "Audit entries the broker did not acknowledge",
        ));
        let raw_blobs_kept = must(IntCounter::new(
            "raw_blobs_kept_total",
            "Raw blobs of failed uploads that no image of this process uses, kept because the blob store is shared",
        ));
        let dimse_associations = must(IntCounterVec::new(
            Opts::new("dimse_associations_total", "DICOM associations, by outcome"),
            &["outcome"],
        ));
        let dimse_operations = must(IntCounterVec::new(
            Opts::new("dimse_operations_total", "DIMSE operations, by command and outcome"),
            &["command", "outcome"],
        ));
        let import_jobs = must(IntCounterVec::new(
            Opts::new("import_jobs_total", "Import jobs that reached a state, by state"),
            &["state"],
        ));
        let import_items = must(IntCounterVec::new(
            Opts::new("import_items_total", "Import items, by source host and outcome"),
            &["host", "outcome"],
        ));
        let import_requests = must(IntCounterVec::new(
            Opts::new("import_requests_total", "Requests of import jobs, by source host and result"),
            &["host", "result"],
        ));
        let notifications = must(IntCounterVec::new(
            Opts::new("notifications_total", "Notifications, by channel and outcome"),
            &["channel", "outcome"],
        ));
        for c in [
            Box::new(http_requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(http_latency.clone()),
            Box::new(consumer_lag.clone()),
            Box::new(engine_seconds.clone()),
            Box::new(bytes_in.clone()),
            Box::new(bytes_out.clone()),
            Box::new(rejections.clone()),
            Box::new(analyses.clone()),
            Box::new(events_produced.clone()),
            Box::new(ledger_entries.clone()),
            Box::new(audit_unrecorded.clone()),
            Box::new(raw_blobs_kept.clone()),
            Box::new(dimse_associations.clone()),
            Box::new(dimse_operations.clone()),
            Box::new(import_jobs.clone()),
            Box::new(import_items.clone()),
            Box::new(import_requests.clone()),
            Box::new(notifications.clone()),
        ] {
            must(registry.register(c));
        }
        Metrics {
            registry,
            http_requests,
            http_latency,
            consumer_lag,
            engine_seconds,
            bytes_in,
            bytes_out,
            rejections,
            analyses,
            events_produced,
            ledger_entries,
            audit_unrecorded,
            raw_blobs_kept,
            dimse_associations,
            dimse_operations,
            import_jobs,
            import_items,
            import_requests,
            notifications,
        }
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

#[cfg(feature = "web")]
mod http;
#[cfg(feature = "web")]
pub use http::{handler, method_label, track};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_names_every_metric_family() {
        let m = Metrics::new();
        m.http_requests.with_label_values(&["/imagenes", "POST", "202"]).inc();
        m.http_latency.with_label_values(&["/imagenes"]).observe(0.01);
        m.consumer_lag.with_label_values(&["g", "t", "0"]).set(3);
        m.engine_seconds.with_label_values(&["anonymized"]).observe(0.002);
        m.rejections.with_label_values(&["not_avro"]).inc();
        m.events_produced.with_label_values(&["t"]).inc();
        m.bytes_in.inc_by(10);
        m.bytes_out.inc_by(5);
        let text = m.render();
        for name in [
            "alpes_http_requests_total",
            "alpes_http_request_duration_seconds",
            "alpes_consumer_lag",
            "alpes_engine_seconds",
            "alpes_bytes_in_total 10",
            "alpes_bytes_out_total 5",
            "alpes_rejections_total",
            "alpes_events_produced_total",
        ] {
            assert!(text.contains(name), "{name} missing");
        }
    }
}
