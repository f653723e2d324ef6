//! The producer's statistics and the lines kafka-producer-perf-test prints:
//! a window line every 5 s and a summary with the 50th, 95th, 99th and 99.9th
//! percentiles, in that tool's exact format (MB is 1024², latency is from
//! `send` to the delivery callback). Also the consumer's summary row and the
//! time format kafka-consumer-perf-test uses.

use std::time::{Duration, SystemTime};

/// How often a window line is printed, as the Java tool does.
pub const REPORTING_INTERVAL: Duration = Duration::from_secs(5);

/// At most this many latencies are kept for the percentiles (every n-th record).
const MAX_SAMPLES: u64 = 500_000;

const MB: f64 = 1024.0 * 1024.0;

/// The statistics of one run (or of its steady state, after the warm-up records).
#[derive(Debug)]
pub struct Stats {
    start: Duration,
    steady_state: bool,
    suppressed: bool,
    sampling: u64,
    iteration: u64,
    samples_us: Vec<u32>,
    count: u64,
    bytes: u64,
    total_latency_us: u64,
    max_latency_us: u64,
    window: Window,
}

#[derive(Debug, Default)]
struct Window {
    start: Duration,
    count: u64,
    bytes: u64,
    total_latency_us: u64,
    max_latency_us: u64,
}

/// The summary of a run, as numbers (what [`Stats::total_line`] prints).
#[derive(Debug, Clone, PartialEq)]
pub struct Total {
    /// Records acknowledged.
    pub count: u64,
    /// Records per second over the run.
    pub records_per_sec: f64,
    /// MiB per second over the run.
    pub mb_per_sec: f64,
    /// Mean latency, milliseconds.
    pub avg_ms: f64,
    /// Largest latency, milliseconds.
    pub max_ms: f64,
    /// The 50th, 95th, 99th and 99.9th percentile latencies, whole milliseconds (rounded).
    pub percentiles_ms: [u64; 4],
}

impl Stats {
    /// Statistics for `num_records` records, timed from `now` (time since the run's clock started).
    pub fn new(num_records: u64, steady_state: bool, now: Duration) -> Stats {
        let sampling = (num_records / num_records.clamp(1, MAX_SAMPLES)).max(1);
        Stats {
            start: now,
            steady_state,
            suppressed: false,
            sampling,
            iteration: 0,
            samples_us: Vec::with_capacity(usize::try_from(num_records / sampling + 1).unwrap_or(0)),
            count: 0,
            bytes: 0,
            total_latency_us: 0,
            max_latency_us: 0,
            window: Window {
                start: now,
                ..Window::default()
            },
        }
    }

    /// Stops the window lines (the warm-up's statistics, once the steady state begins).
    pub fn suppress_printing(&mut self) {
        self.suppressed = true;
    }

    /// Records one acknowledged record; returns the lines to print now (a window line every 5 s).
    pub fn record(&mut self, latency: Duration, bytes: usize, now: Duration) -> Vec<String> {
        let latency_us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        let bytes = bytes as u64;
        self.count += 1;
        self.bytes += bytes;
        self.total_latency_us += latency_us;
        self.max_latency_us = self.max_latency_us.max(latency_us);
        let w = &mut self.window;
        w.count += 1;
        w.bytes += bytes;
        w.total_latency_us += latency_us;
        w.max_latency_us = w.max_latency_us.max(latency_us);
        if self.iteration.is_multiple_of(self.sampling) {
            self.samples_us.push(u32::try_from(latency_us).unwrap_or(u32::MAX));
        }
        self.iteration += 1;
        let mut lines = Vec::new();
        if now.saturating_sub(self.window.start) >= REPORTING_INTERVAL {
            if self.steady_state && self.count == self.window.count {
                lines.push("In steady state.".to_owned());
            }
            if !self.suppressed {
                lines.push(self.window_line(now));
            }
            self.window = Window {
                start: now,
                ..Window::default()
            };
        }
        lines
    }

    /// The window line: `N records sent, X records/sec (Y MB/sec), A ms avg latency, M ms max latency.`
    fn window_line(&self, now: Duration) -> String {
        let w = &self.window;
        let secs = elapsed_secs(w.start, now);
        format!(
            "{} records sent, {:.1} records/sec ({:.2} MB/sec), {:.1} ms avg latency, {:.1} ms max latency.",
            w.count,
            w.count as f64 / secs,
            w.bytes as f64 / secs / MB,
            w.total_latency_us as f64 / 1000.0 / w.count.max(1) as f64,
            w.max_latency_us as f64 / 1000.0
        )
    }

    /// Records acknowledged so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The run's summary at `now`.
    pub fn total(&mut self, now: Duration) -> Total {
        let secs = elapsed_secs(self.start, now);
        self.samples_us.sort_unstable();
        let n = self.samples_us.len();
        let pick = |q: f64| {
            // The Java tool's rule: the sample at index floor(q × n), in whole milliseconds
            // (rounded: the Java tool's are differences of millisecond clocks, unbiased).
            let i = ((q * n as f64) as usize).min(n.saturating_sub(1));
            self.samples_us.get(i).map_or(0, |us| (u64::from(*us) + 500) / 1000)
        };
        Total {
            count: self.count,
            records_per_sec: self.count as f64 / secs,
            mb_per_sec: self.bytes as f64 / secs / MB,
            avg_ms: self.total_latency_us as f64 / 1000.0 / self.count.max(1) as f64,
            max_ms: self.max_latency_us as f64 / 1000.0,
            percentiles_ms: [pick(0.5), pick(0.95), pick(0.99), pick(0.999)],
        }
    }

    /// The summary line, with ` steady state` after the count for the steady-state statistics.
    pub fn total_line(&mut self, now: Duration) -> String {
        let t = self.total(now);
        format!(
            "{}{} records sent, {:.6} records/sec ({:.2} MB/sec), {:.2} ms avg latency, {:.2} ms max latency, \
             {} ms 50th, {} ms 95th, {} ms 99th, {} ms 99.9th.",
            t.count,
            if self.steady_state { " steady state" } else { "" },
            t.records_per_sec,
            t.mb_per_sec,
            t.avg_ms,
            t.max_ms,
            t.percentiles_ms[0],
            t.percentiles_ms[1],
            t.percentiles_ms[2],
            t.percentiles_ms[3]
        )
    }
}

/// Seconds between two instants of the run's clock, at least a millisecond (no division by zero).
fn elapsed_secs(from: Duration, to: Duration) -> f64 {
    to.saturating_sub(from).as_secs_f64().max(0.001)
}

/// kafka-consumer-perf-test's header (without `--show-detailed-stats`).
pub const CONSUMER_HEADER: &str = "start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, \
                                   rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec";

/// kafka-consumer-perf-test's header with `--show-detailed-stats`.
pub const CONSUMER_DETAILED_HEADER: &str = "time, threadId, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, \
                                            rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec";

/// What a consumer read between two instants.
#[derive(Debug, Clone, Copy)]
pub struct Consumed {
    /// When the span began.
    pub start: SystemTime,
    /// When it ended.
    pub end: SystemTime,
    /// Key and value bytes read.
    pub bytes: u64,
    /// Records read.
    pub messages: u64,
    /// Time spent joining the group (rebalancing), milliseconds.
    pub rebalance_ms: u64,
}

impl Consumed {
    fn span_ms(&self) -> u64 {
        u64::try_from(self.end.duration_since(self.start).unwrap_or_default().as_millis()).unwrap_or(u64::MAX)
    }

    /// The summary row: `start, end, MB, MB/s, n, n/s, rebalance ms, fetch ms, fetch MB/s, fetch n/s`.
    pub fn summary_row(&self) -> String {
        let mb = self.bytes as f64 / MB;
        let secs = self.span_ms() as f64 / 1000.0;
        let fetch_ms = self.span_ms().saturating_sub(self.rebalance_ms);
        let fetch_secs = fetch_ms as f64 / 1000.0;
        // A zero span (all of it spent joining) gives 0, not the Java tool's NaN or Infinity,
        // so that every column parses as a number.
        let per_sec = |x: f64, secs: f64| if secs > 0.0 { x / secs } else { 0.0 };
        format!(
            "{}, {}, {:.4}, {:.4}, {}, {:.4}, {}, {}, {:.4}, {:.4}",
            format_time(self.start),
            format_time(self.end),
            mb,
            per_sec(mb, secs),
            self.messages,
            per_sec(self.messages as f64, secs),
            self.rebalance_ms,
            fetch_ms,
            per_sec(mb, fetch_secs),
            per_sec(self.messages as f64, fetch_secs)
        )
    }

    /// A `--show-detailed-stats` row for the interval since `last` (totals so far, rates over the interval).
    pub fn interval_row(&self, last: &Consumed) -> String {
        let elapsed_ms = u64::try_from(self.end.duration_since(last.end).unwrap_or_default().as_millis()).unwrap_or(u64::MAX);
        let interval_mb = (self.bytes - last.bytes) as f64 / MB;
        let interval_n = self.messages - last.messages;
        let fetch_ms = elapsed_ms.saturating_sub(self.rebalance_ms);
        let per_sec = |x: f64, ms: u64| if ms == 0 { 0.0 } else { 1000.0 * x / ms as f64 };
        format!(
            "{}, 0, {:.4}, {:.4}, {}, {:.4}, {}, {}, {:.4}, {:.4}",
            format_time(self.end),
            self.bytes as f64 / MB,
            per_sec(interval_mb, elapsed_ms),
            self.messages,
            per_sec(interval_n as f64, elapsed_ms),
            self.rebalance_ms,
            fetch_ms,
            per_sec(interval_mb, fetch_ms),
            per_sec(interval_n as f64, fetch_ms)
        )
    }
}

/// The Java tool's default `--date-format`, `yyyy-MM-dd HH:mm:ss:SSS`, here in UTC.
pub fn format_time(t: SystemTime) -> String {
    // "2026-11-24T10:11:12.345Z" → "2026-11-24 10:11:12:345"
    let iso = humantime::format_rfc3339_millis(t).to_string();
    iso.trim_end_matches('Z').replacen('T', " ", 1).replacen('.', ":", 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn the_summary_counts_bytes_in_mebibytes_and_takes_percentiles_as_the_java_tool_does() {
        let mut s = Stats::new(1000, false, ms(0));
        for i in 0..1000u64 {
            // latencies 1..=1000 ms, 1 KiB each
            assert!(s.record(ms(i + 1), 1024, ms(10)).is_empty());
        }
        let t = s.total(ms(1000));
        assert_eq!(t.count, 1000);
        assert!((t.records_per_sec - 1000.0).abs() < 1e-9);
        assert!((t.mb_per_sec - 1000.0 * 1024.0 / MB).abs() < 1e-9);
        assert!((t.avg_ms - 500.5).abs() < 1e-9);
        assert_eq!(t.max_ms, 1000.0);
        assert_eq!(t.percentiles_ms, [501, 951, 991, 1000]);
        assert_eq!(
            s.total_line(ms(1000)),
            "1000 records sent, 1000.000000 records/sec (0.98 MB/sec), 500.50 ms avg latency, 1000.00 ms max latency, \
             501 ms 50th, 951 ms 95th, 991 ms 99th, 1000 ms 99.9th."
        );
    }

    #[test]
    fn a_window_line_comes_every_five_seconds_and_not_from_suppressed_statistics() {
        let mut s = Stats::new(10, false, ms(0));
        assert!(s.record(ms(2), 100, ms(4_999)).is_empty());
        assert_eq!(
            s.record(ms(4), 100, ms(5_000)),
            vec!["2 records sent, 0.4 records/sec (0.00 MB/sec), 3.0 ms avg latency, 4.0 ms max latency.".to_owned()]
        );
        assert!(s.record(ms(1), 100, ms(6_000)).is_empty(), "a new window began");
        s.suppress_printing();
        assert!(s.record(ms(1), 100, ms(20_000)).is_empty());
        let mut steady = Stats::new(10, true, ms(0));
        let lines = steady.record(ms(1), 100, ms(5_000));
        assert_eq!(lines[0], "In steady state.");
        assert!(steady.total_line(ms(5_000)).starts_with("1 steady state records sent, "));
    }

    #[test]
    fn a_large_run_keeps_at_most_half_a_million_latencies() {
        let mut s = Stats::new(2_000_000, false, ms(0));
        for _ in 0..2_000_000 {
            s.record(Duration::from_micros(300), 1, ms(1));
        }
        assert_eq!(s.samples_us.len(), 500_000);
        assert_eq!(
            s.total(ms(2)).percentiles_ms,
            [0, 0, 0, 0],
            "sub-millisecond latencies truncate to 0 ms"
        );
    }

    #[test]
    fn the_consumer_row_has_the_ten_columns_of_the_java_tool() {
        let start = SystemTime::UNIX_EPOCH + Duration::from_millis(1_764_000_000_123);
        let c = Consumed {
            start,
            end: start + Duration::from_secs(2),
            bytes: 2 * 1024 * 1024,
            messages: 4000,
            rebalance_ms: 1000,
        };
        assert_eq!(
            c.summary_row(),
            "2025-11-24 16:00:00:123, 2025-11-24 16:00:02:123, 2.0000, 1.0000, 4000, 2000.0000, 1000, 1000, 2.0000, 4000.0000"
        );
        assert_eq!(CONSUMER_HEADER.split(", ").count(), 10);
        assert_eq!(c.summary_row().split(", ").count(), 10);
    }
}
