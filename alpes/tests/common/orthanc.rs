//! `Orthanc::start()`: a real Orthanc (Debian's `orthanc` and `orthanc-dicomweb`) with its
//! DICOMweb plugin, on free 127.0.0.1 ports with a temporary storage dir, for the tests that
//! pull from a DICOMweb server. Without it the test is skipped, loudly, except under CI (`CI`
//! set), where it fails. Std only: a tiny blocking HTTP/1.1 client (`Connection: close`), so
//! no async runtime is needed; the calls block, briefly (a local server).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The DICOMweb plugin of Debian's `orthanc-dicomweb`.
const PLUGIN: &str = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so";
/// How long Orthanc may take to answer `GET /system` after its start.
const START_LIMIT: Duration = Duration::from_secs(30);
/// How long one request may wait on the socket.
const IO_LIMIT: Duration = Duration::from_secs(60);

/// A running Orthanc with the DICOMweb plugin; killed (and waited for) on drop, its
/// storage dir removed.
#[derive(Debug)]
pub struct Orthanc {
    child: Child,
    http_port: u16,
    dir: tempfile::TempDir,
}

/// The Orthanc binary: `ORTHANC` if set, else `Orthanc` on `PATH`, else `/usr/sbin/Orthanc`
/// (where Debian puts it; `/usr/sbin` is not on every user's `PATH`).
fn binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("ORTHANC").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(p)).filter(|p| p.is_file());
    }
    let on_path = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).map(|d| d.join("Orthanc")).collect::<Vec<_>>())
        .unwrap_or_default();
    on_path
        .into_iter()
        .chain([PathBuf::from("/usr/sbin/Orthanc")])
        .find(|p| p.is_file())
}

/// A TCP port free on 127.0.0.1 right now (bound to port 0, then released).
fn free_port() -> (TcpListener, u16) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let port = l.local_addr().expect("local addr").port();
    (l, port)
}

/// The last `n` lines of the file at `path` (empty if it cannot be read).
fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The position of `needle` in `hay`, if any.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The body of a `Transfer-Encoding: chunked` answer, decoded.
fn dechunk(mut raw: &[u8]) -> std::io::Result<Vec<u8>> {
    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, "bad chunked body");
    let mut out = Vec::new();
    loop {
        let eol = find(raw, b"\r\n").ok_or_else(bad)?;
        let size_text = String::from_utf8_lossy(&raw[..eol]);
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| bad())?;
        raw = &raw[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        if raw.len() < size + 2 {
            return Err(bad());
        }
        out.extend_from_slice(&raw[..size]);
        raw = &raw[size + 2..];
    }
}

/// One HTTP/1.1 request to 127.0.0.1:`port` (`Connection: close`, the body sent with its
/// `Content-Length`): the status and the body answered.
fn request(port: u16, method: &str, path: &str, content_type: &str, body: &[u8]) -> std::io::Result<(u16, Vec<u8>)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(IO_LIMIT))?;
    stream.set_write_timeout(Some(IO_LIMIT))?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\
         Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{what} in the answer to {method} {path}"));
    let end = find(&raw, b"\r\n\r\n").ok_or_else(|| bad("no end of headers"))?;
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("no status"))?;
    let mut rest = raw[end + 4..].to_vec();
    let header = |name: &str| {
        head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_ascii_lowercase())
        })
    };
    if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        rest = dechunk(&rest)?;
    } else if let Some(len) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        rest.truncate(len);
    }
    Ok((status, rest))
}

impl Orthanc {
    /// Starts an Orthanc with the DICOMweb plugin (at `/dicom-web/`) on free ports of
    /// 127.0.0.1, its storage and index in a fresh temporary dir, and waits (30 s at most)
    /// until `GET /system` answers; panics with its log's tail if it never does. `None`,
    /// after a loud SKIPPED line, when Orthanc or the plugin is not installed; under CI
    /// (`CI` set), which installs them, that panics instead.
    pub fn start() -> Option<Orthanc> {
        let (Some(bin), true) = (binary(), Path::new(PLUGIN).is_file()) else {
            let test = std::thread::current().name().unwrap_or("orthanc").to_owned();
            let msg = format!(
                "SKIPPED {test}: Orthanc or its DICOMweb plugin is not installed \
                 (Orthanc on PATH or /usr/sbin, {PLUGIN}). To run it: apt-get install orthanc orthanc-dicomweb"
            );
            let under_ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty());
            assert!(!under_ci, "{msg} but CI is set: CI must install them");
            // Straight to stderr as well as println!: libtest captures a passing test's output.
            let _ = writeln!(std::io::stderr(), "\n*** {msg}\n");
            println!("\n*** {msg}\n");
            return None;
        };
        let dir = tempfile::tempdir().expect("a temporary dir for Orthanc");
        // Both ports held at once, so they differ, then released for Orthanc.
        let ((http_l, http_port), (dicom_l, dicom_port)) = (free_port(), free_port());
        drop((http_l, dicom_l));
        let storage = dir.path().join("storage");
        std::fs::create_dir_all(&storage).expect("storage dir");
        let config = serde_json::json!({
            "Name": "alpes-test",
            "StorageDirectory": storage.to_str().expect("a UTF-8 temporary dir"),
            "IndexDirectory": storage.to_str().expect("a UTF-8 temporary dir"),
            "HttpPort": http_port,
            "DicomPort": dicom_port,
            "RemoteAccessAllowed": false,
            "AuthenticationEnabled": false,
            "Plugins": [PLUGIN],
            "DicomWeb": { "Enable": true, "Root": "/dicom-web/" },
        });
        let config_path = dir.path().join("orthanc.json");
        std::fs::write(&config_path, serde_json::to_vec_pretty(&config).expect("config json")).expect("write the config");
        let log_path = dir.path().join("orthanc.log");
        let log = std::fs::File::create(&log_path).expect("log file");
        let child = Command::new(&bin)
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
        let mut orthanc = Orthanc { child, http_port, dir };
        let deadline = Instant::now() + START_LIMIT;
        loop {
            if let Ok((200, _)) = request(http_port, "GET", "/system", "text/plain", b"") {
                return Some(orthanc);
            }
            if let Ok(Some(status)) = orthanc.child.try_wait() {
                panic!("Orthanc exited ({status}) before answering:\n{}", tail(&log_path, 40));
            }
            assert!(
                Instant::now() < deadline,
                "Orthanc never answered GET /system on port {http_port} in {START_LIMIT:?}:\n{}",
                tail(&log_path, 40)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The base URL of its REST API, e.g. `http://127.0.0.1:8042` (no trailing slash).
    pub fn http(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    /// The base URL of its DICOMweb server, e.g. `http://127.0.0.1:8042/dicom-web`
    /// (no trailing slash), as an import job's `url` takes it.
    pub fn dicomweb(&self) -> String {
        format!("{}/dicom-web", self.http())
    }

    /// `method path` on its REST API with `body`: the status and the body answered; panics,
    /// with the log's tail, if the request cannot be made.
    fn call(&self, method: &str, path: &str, content_type: &str, body: &[u8]) -> (u16, Vec<u8>) {
        request(self.http_port, method, path, content_type, body)
            .unwrap_or_else(|e| panic!("Orthanc {method} {path}: {e}\n{}", tail(&self.dir.path().join("orthanc.log"), 40)))
    }

    /// Stores the DICOM file `dicom` (`POST /instances`): its Orthanc instance id (the
    /// answer's `ID`), or Orthanc's answer when it refused the file (a file it already had
    /// counts as stored: its `Status` is then `AlreadyStored`).
    pub fn try_upload(&self, dicom: &[u8]) -> Result<String, String> {
        let (status, body) = self.call("POST", "/instances", "application/dicom", dicom);
        let text = String::from_utf8_lossy(&body);
        if status != 200 {
            return Err(format!("Orthanc POST /instances answered {status}: {text}"));
        }
        let json: serde_json::Value = serde_json::from_slice(&body).map_err(|e| format!("Orthanc POST /instances: {e}: {text}"))?;
        json["ID"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("Orthanc POST /instances answered no ID: {text}"))
    }

    /// [`Orthanc::try_upload`], panicking with Orthanc's answer when it refused the file.
    pub fn upload(&self, dicom: &[u8]) -> String {
        self.try_upload(dicom).unwrap_or_else(|e| panic!("{e}"))
    }

    /// How many instances it stores (`GET /instances`, a JSON array of ids).
    pub fn count_instances(&self) -> usize {
        let (status, body) = self.call("GET", "/instances", "text/plain", b"");
        let text = String::from_utf8_lossy(&body);
        assert_eq!(status, 200, "Orthanc GET /instances answered {status}: {text}");
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_else(|e| panic!("Orthanc GET /instances: {e}: {text}"));
        json.as_array()
            .unwrap_or_else(|| panic!("Orthanc GET /instances answered no array: {text}"))
            .len()
    }
}

impl Drop for Orthanc {
    /// Kills Orthanc and waits for it (then the temporary dir goes).
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
