//! `alpes perf`: its lines are read with the regular expressions of
//! kafka-producer-perf-test's and kafka-consumer-perf-test's output formats
//! (the Java tools' `printf` patterns), and its numbers add up.

use regex::Regex;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

fn alpes() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_alpes"));
    // Avro events are framed for a Schema Registry only when one is named; the tests use none.
    cmd.env_remove("SCHEMA_REGISTRY_URL");
    cmd
}

/// `%d records sent, %.1f records/sec (%.2f MB/sec), %.1f ms avg latency, %.1f ms max latency.`
fn progress() -> Regex {
    Regex::new(r"^(\d+) records sent, (\d+\.\d) records/sec \((\d+\.\d\d) MB/sec\), (\d+\.\d) ms avg latency, (\d+\.\d) ms max latency\.$")
        .expect("regex")
}

/// `%d%s records sent, %f records/sec (%.2f MB/sec), %.2f ms avg latency, %.2f ms max latency,
/// %d ms 50th, %d ms 95th, %d ms 99th, %d ms 99.9th.`
fn summary() -> Regex {
    Regex::new(
        r"^(\d+)( steady state)? records sent, (\d+\.\d{6}) records/sec \((\d+\.\d\d) MB/sec\), (\d+\.\d\d) ms avg latency, (\d+\.\d\d) ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th, (\d+) ms 99\.9th\.$",
    )
    .expect("regex")
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run alpes");
    assert!(
        out.status.success(),
        "{:?} failed: {}\n{}",
        cmd,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

fn num(caps: &regex::Captures<'_>, i: usize) -> f64 {
    caps[i].parse().expect("number")
}

#[test]
fn a_million_records_print_lines_a_kafka_producer_perf_test_parser_accepts() {
    let started = std::time::Instant::now();
    let out = run(alpes().args([
        "perf",
        "produce",
        "--embedded",
        "--topic",
        "t",
        "--num-records",
        "1000000",
        "--record-size",
        "512",
        "--throughput",
        "-1",
        "--producer-props",
        "acks=all",
    ]));
    let took = started.elapsed();
    let lines: Vec<&str> = out.lines().collect();
    let (progress, summary) = (progress(), summary());
    let (last, windows) = lines.split_last().expect("some output");
    let mut in_windows = 0.0;
    for line in windows {
        let caps = progress.captures(line).unwrap_or_else(|| panic!("not a progress line: {line:?}"));
        in_windows += num(&caps, 1);
        // MB is 1024²: each record is 512 bytes.
        assert!(
            (num(&caps, 2) * 512.0 / 1048576.0 - num(&caps, 3)).abs() < 0.01 + num(&caps, 3) * 0.01,
            "{line}"
        );
        assert!(num(&caps, 4) <= num(&caps, 5), "{line}");
    }
    assert!(in_windows <= 1_000_000.0, "the windows count no record twice");
    if took.as_secs() > 6 {
        assert!(!windows.is_empty(), "a {took:?} run prints a line every 5 s");
    }
    let caps = summary.captures(last).unwrap_or_else(|| panic!("not a summary line: {last:?}"));
    assert_eq!(&caps[1], "1000000");
    assert!(caps.get(2).is_none());
    assert!(
        (num(&caps, 3) * 512.0 / 1048576.0 - num(&caps, 4)).abs() < 0.01 + num(&caps, 4) * 0.01,
        "{last}"
    );
    let (avg, max) = (num(&caps, 5), num(&caps, 6));
    let percentiles: Vec<f64> = (7..=10).map(|i| num(&caps, i)).collect();
    assert!(percentiles.windows(2).all(|w| w[0] <= w[1]), "{last}");
    assert!(avg <= max && percentiles[3] <= max, "{last}");
}

#[test]
fn warm_up_adds_a_steady_state_summary_and_avro_events_are_the_platforms() {
    let out = run(alpes().args([
        "perf",
        "produce",
        "--embedded",
        "--topic",
        "alpes.images.registered",
        "--num-records",
        "3000",
        "--value-schema",
        "ImagenRegistrada",
        "--throughput",
        "-1",
        "--warmup-records",
        "1000",
    ]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        "Warmup first 1000 records. Steady state results will print after the complete test summary."
    );
    let summary = summary();
    let total = summary.captures(lines[lines.len() - 2]).expect("total line");
    let steady = summary.captures(lines[lines.len() - 1]).expect("steady state line");
    assert_eq!((&total[1], total.get(2).is_none()), ("3000", true));
    assert_eq!(
        (&steady[1], steady.get(2).is_some()),
        ("2000", true),
        "only records sent after the warm-up"
    );
}

#[test]
fn bad_options_are_refused_as_the_java_tool_refuses_them() {
    for (args, says) in [
        (
            &["--topic", "t", "--num-records", "10", "--throughput", "-1", "--embedded"][..],
            "--record-size",
        ),
        (
            &["--topic", "t", "--num-records", "10", "--record-size", "1", "--throughput", "-1"],
            "--producer-props or --producer.config",
        ),
        (
            &[
                "--topic",
                "t",
                "--num-records",
                "10",
                "--record-size",
                "1",
                "--throughput",
                "-1",
                "--embedded",
                "--warmup-records",
                "10",
            ],
            "strictly fewer",
        ),
        (
            &[
                "--topic",
                "t",
                "--num-records",
                "0",
                "--record-size",
                "1",
                "--throughput",
                "-1",
                "--embedded",
            ],
            "--num-records",
        ),
    ] {
        let out = alpes().args(["perf", "produce"]).args(args).output().expect("run");
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
    }
}

#[test]
fn a_throttled_run_keeps_its_rate_and_times_each_record_to_its_acknowledgement() {
    let started = std::time::Instant::now();
    let out = run(alpes().args([
        "perf",
        "produce",
        "--embedded",
        "--topic",
        "slow",
        "--num-records",
        "2000",
        "--record-size",
        "100",
        "--throughput",
        "500",
    ]));
    let took = started.elapsed();
    assert!(took.as_secs_f64() >= 3.9, "2,000 records at 500/s take 4 s, not {took:?}");
    let caps = summary().captures(out.lines().last().expect("summary")).expect("summary line");
    assert_eq!(&caps[1], "2000");
    assert!(num(&caps, 3) <= 550.0, "{out}");
    // Callbacks are served as records go, so latency is the broker's, not the throttle's waits.
    assert!(num(&caps, 5) < 200.0, "avg latency {} ms: {out}", &caps[5]);
}

#[test]
fn undelivered_records_are_counted_on_stderr_and_fail_the_run() {
    // Port 1 on this machine: nothing listens, so every record times out.
    let out = alpes()
        .args([
            "perf",
            "produce",
            "--bootstrap-server",
            "127.0.0.1:1",
            "--topic",
            "t",
            "--num-records",
            "10",
            "--record-size",
            "10",
            "--throughput",
            "-1",
            "--producer-props",
            "message.timeout.ms=1000",
        ])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let caps = summary().captures(stdout.lines().last().expect("summary")).expect("summary line");
    assert_eq!(&caps[1], "0");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("10 record(s) were not delivered"), "{stderr}");
}

/// `alpes perf broker`, stopped when dropped.
struct Broker(Child, String);

impl Broker {
    fn start() -> Broker {
        let mut child = alpes().args(["perf", "broker"]).stdout(Stdio::piped()).spawn().expect("broker");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("bootstrap");
        Broker(child, line.trim().to_owned())
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_consumer_reads_what_the_producer_sent_on_a_shared_broker_and_prints_the_java_tools_columns() {
    let broker = Broker::start();
    assert!(broker.1.starts_with("127.0.0.1:"), "{}", broker.1);
    let produced = run(alpes().args([
        "perf",
        "produce",
        "--bootstrap-server",
        &broker.1,
        "--topic",
        "c",
        "--num-records",
        "5000",
        "--record-size",
        "100",
        "--throughput",
        "-1",
    ]));
    assert!(summary().is_match(produced.lines().last().expect("summary")), "{produced}");
    let out = run(alpes().args([
        "perf",
        "consume",
        "--bootstrap-server",
        &broker.1,
        "--topic",
        "c",
        "--messages",
        "5000",
    ]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        vec![
            "start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec",
            lines[1]
        ]
    );
    let time = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d:\d{3}";
    let row = Regex::new(&format!(
        r"^({time}), ({time}), (\d+\.\d{{4}}), (\d+\.\d{{4}}), (\d+), (\d+\.\d{{4}}), (\d+), (\d+), (\d+\.\d{{4}}), (\d+\.\d{{4}})$"
    ))
    .expect("regex");
    let caps = row
        .captures(lines[1])
        .unwrap_or_else(|| panic!("not a consumer row: {:?}", lines[1]));
    assert_eq!(&caps[5], "5000");
    assert_eq!(&caps[3], format!("{:.4}", 5000.0 * 100.0 / 1048576.0));
    // Transactions committed every 50 ms, read by a read_committed consumer: every record, once.
    let dir = tempfile::tempdir().expect("tmp");
    let payloads = dir.path().join("payloads.txt");
    std::fs::write(&payloads, "alpha\nbeta\n\ngamma").expect("write");
    let produced = run(alpes().args([
        "perf",
        "produce",
        "--bootstrap-server",
        &broker.1,
        "--topic",
        "tx",
        "--num-records",
        "3000",
        "--payload-file",
        payloads.to_str().expect("utf-8"),
        "--throughput",
        "-1",
        "--transaction-duration-ms",
        "50",
    ]));
    assert!(summary().is_match(produced.lines().last().expect("summary")), "{produced}");
    let out = run(alpes().args([
        "perf",
        "consume",
        "--bootstrap-server",
        &broker.1,
        "--topic",
        "tx",
        "--messages",
        "3000",
        "--hide-header",
        "--consumer-props",
        "isolation.level=read_committed",
    ]));
    let last = out.lines().last().expect("row");
    let caps = row.captures(last).unwrap_or_else(|| panic!("not a consumer row: {out}"));
    assert_eq!(&caps[5], "3000");
    // alpha, beta, gamma in turn: 1,000 of each, 14 bytes for every three records.
    assert_eq!(&caps[3], format!("{:.4}", 14_000.0 / 1048576.0));
}
