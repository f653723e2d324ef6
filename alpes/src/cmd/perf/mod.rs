//! `alpes perf`: Kafka load tools that take the options of Kafka's own
//! kafka-producer-perf-test and kafka-consumer-perf-test and print their
//! output formats, so scripts and parsers written for those tools work as they
//! are. They run against any broker, or with `--embedded` against librdkafka's
//! in-process mock cluster; `alpes perf broker` keeps such a cluster up for
//! outside clients (kcat, the Java tools) to share.

mod consume;
mod payload_file;
mod produce;
mod stats;

use alpes_platform::kafka::MockBroker;
use anyhow::{bail, Context, Result};
use std::path::Path;
use std::process::ExitCode;

/// The subcommands of `alpes perf`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Produce records and print kafka-producer-perf-test's progress and summary lines.
    Produce(Box<produce::Args>),
    /// Consume records and print kafka-consumer-perf-test's header and rows.
    Consume(Box<consume::Args>),
    /// Run librdkafka's in-process mock cluster and print its bootstrap address, until Ctrl-C or SIGTERM.
    Broker(BrokerArgs),
}

/// Arguments of `alpes perf broker`.
#[derive(Debug, clap::Args)]
pub struct BrokerArgs {
    /// Brokers in the mock cluster.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i32).range(1..=16))]
    brokers: i32,
}

/// Where the clients connect: `--bootstrap-server`, or `--embedded` for a mock cluster of their own.
#[derive(Debug, Clone, clap::Args)]
pub struct Target {
    /// Start librdkafka's in-process mock cluster (one broker) and run against it.
    #[arg(long, conflicts_with = "bootstrap_server")]
    embedded: bool,
    /// The brokers, `host:port,...`; wins over `bootstrap.servers` from the properties.
    #[arg(long, value_name = "HOST:PORT")]
    bootstrap_server: Option<String>,
}

impl Target {
    /// Sets `bootstrap.servers` in `props`, starting the mock cluster if asked; the cluster lives as long as the handle.
    fn apply(&self, props: &mut Vec<(String, String)>) -> Result<Option<MockBroker>> {
        let (servers, mock) = if self.embedded {
            let mock = MockBroker::start(1).context("cannot start the in-process mock cluster")?;
            (Some(mock.bootstrap().to_owned()), Some(mock))
        } else {
            (self.bootstrap_server.clone(), None)
        };
        if let Some(servers) = servers {
            props.retain(|(k, _)| k != "bootstrap.servers");
            props.push(("bootstrap.servers".into(), servers));
        }
        if !props.iter().any(|(k, _)| k == "bootstrap.servers") {
            bail!("no broker: pass --bootstrap-server, --embedded, or bootstrap.servers in the properties");
        }
        Ok(mock)
    }
}

/// Runs `alpes perf`.
pub fn run(command: Command) -> Result<ExitCode> {
    match command {
        Command::Produce(a) => produce::run(*a),
        Command::Consume(a) => consume::run(*a),
        Command::Broker(a) => broker(a),
    }
}

fn broker(args: BrokerArgs) -> Result<ExitCode> {
    let mock = MockBroker::start(args.brokers).context("cannot start the in-process mock cluster")?;
    println!("{}", mock.bootstrap());
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let stop = alpes_platform::shutdown::Shutdown::new();
        stop.on_ctrl_c();
        stop.wait().await;
    });
    drop(mock);
    Ok(ExitCode::SUCCESS)
}

/// Client properties as the Java tools take them: a properties file (`key=value`
/// or `key: value` lines, `#` and `!` comments), then `key=value` pairs, which win.
pub fn read_props(file: Option<&Path>, pairs: &[String]) -> Result<Vec<(String, String)>> {
    let mut props: Vec<(String, String)> = Vec::new();
    let mut set = |k: &str, v: &str| {
        props.retain(|(key, _)| key != k);
        props.push((k.to_owned(), v.to_owned()));
    };
    if let Some(path) = file {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
                continue;
            }
            let Some(split) = line.find(['=', ':']) else {
                bail!("{}:{}: not a `key=value` line", path.display(), n + 1);
            };
            set(line[..split].trim(), line[split + 1..].trim());
        }
    }
    for pair in pairs {
        match pair.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => set(k.trim(), v.trim()),
            _ => bail!("invalid property {pair:?}: expected KEY=VALUE"),
        }
    }
    Ok(props)
}

/// A small fast generator (xorshift64*) for payloads: the records' content is
/// not what is measured, so it must cost as little as possible.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (0 is replaced: xorshift needs a non-zero state).
    pub fn new(seed: u64) -> Rng {
        Rng(if seed == 0 { 0x9E37_79B9_7F4A_7C15 } else { seed })
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// Fills `buf` with random upper-case letters, as the Java tool's `--record-size` payloads are.
    pub fn fill_letters(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let bits = self.next_u64().to_le_bytes();
            for (b, r) in chunk.iter_mut().zip(bits) {
                // 26 × r / 256: a letter without a division.
                *b = b'A' + ((u16::from(r) * 26) >> 8) as u8;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_come_from_the_file_then_the_pairs_which_win() {
        let dir = tempfile::tempdir().expect("tmp");
        let file = dir.path().join("producer.properties");
        std::fs::write(
            &file,
            "# a comment\n! another\nacks=1\nlinger.ms: 5\n\nbootstrap.servers = a:9092\n",
        )
        .expect("write");
        let props = read_props(Some(&file), &["acks=all".into(), "client.id=perf".into()]).expect("props");
        assert_eq!(
            props,
            [
                ("linger.ms", "5"),
                ("bootstrap.servers", "a:9092"),
                ("acks", "all"),
                ("client.id", "perf")
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
        assert!(read_props(None, &["acks".into()]).is_err());
        std::fs::write(&file, "no separator\n").expect("write");
        assert!(read_props(Some(&file), &[]).expect_err("bad line").to_string().contains(":1:"));
    }

    #[test]
    fn the_target_sets_the_bootstrap_servers_or_refuses_to_guess() {
        let mut props = vec![("bootstrap.servers".to_owned(), "old:1".to_owned())];
        let target = Target {
            embedded: false,
            bootstrap_server: Some("new:2".into()),
        };
        assert!(target.apply(&mut props).expect("apply").is_none());
        assert_eq!(props, vec![("bootstrap.servers".to_owned(), "new:2".to_owned())]);
        let none = Target {
            embedded: false,
            bootstrap_server: None,
        };
        assert!(none.apply(&mut Vec::new()).is_err());
    }

    #[test]
    fn letters_are_upper_case_and_vary() {
        let mut rng = Rng::new(0);
        let mut a = [0u8; 37];
        let mut b = [0u8; 37];
        rng.fill_letters(&mut a);
        rng.fill_letters(&mut b);
        assert!(a.iter().chain(&b).all(u8::is_ascii_uppercase));
        assert_ne!(a, b);
        let mut seen = [false; 26];
        for _ in 0..100 {
            let mut buf = [0u8; 64];
            rng.fill_letters(&mut buf);
            buf.iter().for_each(|c| seen[usize::from(c - b'A')] = true);
        }
        assert!(seen.iter().all(|s| *s), "every letter A to Z occurs");
    }
}
