//! The engines the suite runs on, and `alpes up` processes started on them.
//!
//! [`engines`] reads `ALPES_ENGINES_DIR` (a directory `deploy/local/engines.sh
//! start` brought up); without it the test says SKIPPED and passes. Its
//! settings come from `engines.sh env`, its faults from `engines.sh kill`,
//! `halt` and `resume`. Every test shares one keyspace, migrated once
//! ([`Engines::keyspace`]), and one key directory ([`Keys`]), as a deployment
//! shares the cluster and the keys volume; each process has its own data dir.

use alpes_platform::auth::{Jwt, Role};
use std::io::{BufRead, BufReader, Write as _};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// The repository's root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn script() -> PathBuf {
    root().join("deploy/local/engines.sh")
}

/// The running engines.
#[derive(Debug, Clone)]
pub struct Engines {
    dir: PathBuf,
    env: Vec<(String, String)>,
}

/// The engines of `ALPES_ENGINES_DIR`, or `None` after saying loudly that `test` was skipped.
pub fn engines(test: &str) -> Option<Engines> {
    let Some(dir) = std::env::var_os("ALPES_ENGINES_DIR").filter(|d| !d.is_empty()) else {
        let line = "=".repeat(78);
        let msg = format!(
            "{line}\nSKIPPED: `{test}` did NOT run: ALPES_ENGINES_DIR is not set, so there are no real engines \
             (Kafka, Cassandra, S3, registry) to run it on.\nStart them with `deploy/local/engines.sh start DIR` and \
             set ALPES_ENGINES_DIR=DIR (the CI does: .ci/run).\n{line}\n"
        );
        // Straight to stderr: the harness captures a passing test's eprintln!.
        let _ = std::io::stderr().write_all(msg.as_bytes());
        return None;
    };
    let dir = PathBuf::from(dir);
    let out = Command::new("bash")
        .arg("-c")
        .arg(r#"exports="$("$0" env "$1")" || exit 1; printf '%s\n' "$exports" >&2; eval "$exports"; env -0"#)
        .arg(script())
        .arg(&dir)
        .output()
        .expect("run engines.sh env");
    assert!(
        out.status.success(),
        "engines.sh env failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let names: Vec<String> = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter_map(|l| l.strip_prefix("export ")?.split_once('=').map(|(k, _)| k.to_owned()))
        .collect();
    let env = out
        .stdout
        .split(|b| *b == 0)
        .filter_map(|kv| std::str::from_utf8(kv).ok()?.split_once('='))
        .filter(|(k, _)| names.iter().any(|n| n == k))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    Some(Engines { dir, env })
}

impl Engines {
    /// A setting the engines printed.
    pub fn var(&self, name: &str) -> String {
        self.env
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("the engines printed no {name}"))
    }

    fn run(&self, verb: &str, instance: &str) {
        let status = Command::new(script())
            .args([verb, &self.dir.display().to_string(), instance])
            .status()
            .expect("run engines.sh");
        assert!(status.success(), "engines.sh {verb} {instance} failed");
    }

    /// SIGKILL of one instance (`kafka-2`, `cql-1`, `s3`, ...): a crash.
    pub fn kill(&self, instance: &str) {
        self.run("kill", instance);
    }

    /// SIGTERM of one instance, waiting until it exits.
    pub fn halt(&self, instance: &str) {
        self.run("halt", instance);
    }

    /// Starts one instance again and waits until it answers.
    pub fn resume(&self, instance: &str) {
        self.run("resume", instance);
    }

    /// The keyspace every test of this run shares, migrated by `alpes migrate` on first use.
    pub fn keyspace(&self) -> String {
        static KEYSPACE: OnceLock<String> = OnceLock::new();
        KEYSPACE
            .get_or_init(|| {
                let ks = format!("alpes_it_{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
                let out = self
                    .command("migrate")
                    .args(["--scylla-keyspace", &ks])
                    .output()
                    .expect("alpes migrate");
                assert!(out.status.success(), "alpes migrate: {}", String::from_utf8_lossy(&out.stderr));
                ks
            })
            .clone()
    }

    /// `alpes <subcommand>` with the engines' settings.
    pub fn command(&self, subcommand: &str) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_alpes"));
        c.arg(subcommand).envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        c
    }
}

/// The key directory every process shares (the token secret and the engine secret), and tokens
/// signed with it for accounts of the shared keyspace.
#[derive(Debug, Clone)]
pub struct Keys {
    dir: Arc<tempfile::TempDir>,
    jwt: Arc<Jwt>,
    /// The shared keyspace's identity store, as the processes reach it.
    scylla: Arc<alpes_platform::store::ScyllaArgs>,
    accounts: Arc<tokio::sync::OnceCell<alpes_ingest::identity::Identity>>,
}

impl Keys {
    /// New keys, created as `alpes up` creates them, for processes on `engines`.
    pub fn new(engines: &Engines) -> Keys {
        #[derive(clap::Parser)]
        struct Scylla {
            #[command(flatten)]
            args: alpes_platform::store::ScyllaArgs,
        }
        let dir = tempfile::tempdir().expect("tmp");
        let loaded = alpes::jwt_keys::JwtArgs::default().load(dir.path()).expect("token key");
        alpes::secret::load_or_create(&alpes::app::engine_secret_path(dir.path())).expect("engine secret");
        // Patients' contact data is sealed by ingest and opened by the notifier: one key for all.
        alpes::secret::load_or_create(&alpes::app::contact_key_path(dir.path())).expect("contact key");
        let nodes = engines.var("SCYLLA_NODES");
        let keyspace = engines.keyspace();
        let scylla = <Scylla as clap::Parser>::parse_from(["keys", "--scylla-nodes", &nodes, "--scylla-keyspace", &keyspace]);
        Keys {
            dir: Arc::new(dir),
            jwt: Arc::new(loaded.jwt),
            scylla: Arc::new(scylla.args),
            accounts: Arc::default(),
        }
    }

    /// A token of `user` with `role`, as `alpes token --create-account` makes it: the account is
    /// created in the shared keyspace first unless one has that id (the platform refuses a token
    /// naming no account).
    pub async fn token(&self, user: &str, role: Role) -> String {
        self.try_token(user, role).await.expect("the token's account")
    }

    /// [`Keys::token`], or the store's error (it is down).
    pub async fn try_token(&self, user: &str, role: Role) -> Result<String, alpes_platform::http::ApiError> {
        let accounts = self
            .accounts
            .get_or_init(|| async {
                let store = alpes::app::open_identity(&self.scylla, self.dir.path(), false)
                    .await
                    .expect("the keyspace's identity store");
                alpes_ingest::identity::Identity::new(store, Default::default()).expect("identity")
            })
            .await;
        let account = accounts.token_subject(user, Some(role), true).await?;
        Ok(self.jwt.issue(&account.user_id, role, Duration::from_secs(3600)).expect("token"))
    }

    /// A new data dir holding these keys.
    pub fn data_dir(&self) -> tempfile::TempDir {
        let data = tempfile::tempdir().expect("tmp");
        let keys = data.path().join("keys");
        std::fs::create_dir_all(&keys).expect("keys dir");
        for entry in std::fs::read_dir(self.dir.path().join("keys")).expect("keys") {
            let path = entry.expect("entry").path();
            std::fs::copy(&path, keys.join(path.file_name().expect("name"))).expect("copy a key");
        }
        data
    }
}

/// One `alpes up` process on the engines.
#[derive(Debug)]
pub struct Alpes {
    name: String,
    child: Option<Child>,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    data: tempfile::TempDir,
    log: PathBuf,
    args: Vec<String>,
    engines: Engines,
}

impl Alpes {
    /// Starts `alpes up --services <services>` named `name`, on a new data dir with `keys`, in the
    /// shared keyspace, with `extra` flags; returns once it listens.
    pub fn start(engines: &Engines, keys: &Keys, name: &str, services: &str, extra: &[&str]) -> Alpes {
        let data = keys.data_dir();
        let mut args: Vec<String> = ["--services", services, "--listen", "127.0.0.1:0", "--scylla-keyspace"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        args.push(engines.keyspace());
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        let log = data.path().join("alpes.log");
        let mut alpes = Alpes {
            name: name.to_owned(),
            child: None,
            url: String::new(),
            data,
            log,
            args,
            engines: engines.clone(),
        };
        alpes.launch();
        alpes
    }

    /// Starts the process (again, on the same data dir) and waits until it listens.
    fn launch(&mut self) {
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        let mut child = self
            .engines
            .command("up")
            .args(&self.args)
            // Replicas run side by side: each DICOM listener on a port of its own.
            .args(["--dimse-listen", "127.0.0.1:0"])
            .arg("--data-dir")
            .arg(self.data.path())
            .env("RUST_LOG", "info")
            // This suite is about the engines: its consumers download with no admin approval (the
            // security suite and the conformance suite cover approval and credit).
            .env("ALPES_CONSUMER_APPROVAL", "none")
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn alpes up");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        let log = self.log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("alpes: listening on ") {
                    let _ = tx.send(url.trim().to_owned());
                }
                if let Ok(mut f) = std::fs::OpenOptions::new().append(true).open(&log) {
                    let _ = writeln!(f, "{line}");
                }
            }
        });
        self.child = Some(child);
        match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(url) => self.url = url,
            Err(_) => panic!("{} never listened:\n{}", self.name, self.log_tail()),
        }
    }

    /// Waits until `GET /ready` answers 200 (`wait` at most).
    pub async fn ready(&self, wait: Duration) {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + wait;
        loop {
            if let Ok(res) = client.get(format!("{}/ready", self.url)).send().await {
                if res.status().as_u16() == 200 {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "{} was never ready:\n{}", self.name, self.log_tail());
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// The last lines of the process's log.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    fn signal(&mut self, signal: &str) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill").args([signal, &child.id().to_string()]).status();
        Some(child.wait().expect("wait for alpes"))
    }

    /// SIGKILL: a crash.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, as an orchestrator stops it; asserts a clean exit.
    pub fn stop(&mut self) {
        if let Some(status) = self.signal("-TERM") {
            assert!(status.success(), "{} exited with {status}:\n{}", self.name, self.log_tail());
        }
    }

    /// Starts it again on the same data dir, as an orchestrator restarts a crashed process.
    pub fn restart(&mut self) {
        self.launch();
    }
}

/// Starts one process per `(name, services)`, each with `extra` flags, and waits until every
/// one is ready.
pub async fn start_ready(engines: &Engines, keys: &Keys, procs: &[(&str, &str)], extra: &[&str]) -> Vec<Alpes> {
    let started: Vec<Alpes> = procs
        .iter()
        .map(|(name, services)| Alpes::start(engines, keys, name, services, extra))
        .collect();
    for p in &started {
        p.ready(Duration::from_secs(120)).await;
    }
    started
}

impl Drop for Alpes {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs `probe` every 200 ms until it returns `Some` (`wait` at most); panics with `what`.
pub async fn eventually<T, F, Fut>(what: &str, wait: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + wait;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within {wait:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Holds the engines for one test: the tests share them (and stop parts of them), so they run
/// one at a time whatever `--test-threads` says.
pub async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}
