//! Helpers shared by the integration tests: run the real binary on real files.
#![allow(clippy::disallowed_macros)] // test output; a dead stderr is not tested here
#![allow(dead_code)]
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The `sidecar` binary built by cargo for these tests.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_sidecar"))
}

/// A command for the binary with a private state dir and no config file from the host.
pub fn sidecar(state: &Path) -> Command {
    let mut cmd = Command::new(bin());
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("SIDECAR_STATE_DIR", state);
    cmd.stdin(Stdio::null());
    cmd
}

/// Run and capture.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("sidecar runs")
}

/// Docker's json-file encoding of one entry (as the daemon writes it).
pub fn docker_line(log: &[u8], stream: &str, time: &str) -> Vec<u8> {
    let mut out = Vec::new();
    sidecar::logs::jsonfile::encode_line(log, stream, &[], time, &mut out);
    out
}

/// Docker's split of one message into 16 KiB parts (only the last part ends in `\n`).
pub fn docker_split(message: &[u8], stream: &str, time: &str) -> Vec<u8> {
    let mut full = message.to_vec();
    full.push(b'\n');
    let mut out = Vec::new();
    let parts: Vec<&[u8]> = full.chunks(16384).collect();
    for p in parts {
        out.extend(docker_line(p, stream, time));
    }
    out
}

/// Parse JSONL findings.
pub fn findings(stdout: &[u8]) -> Vec<serde_json::Value> {
    std::str::from_utf8(stdout)
        .expect("utf8 output")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("valid JSONL record"))
        .collect()
}

/// Assert that no secret appears anywhere in the given bytes.
pub fn assert_no_secret(haystack: &[u8], secrets: &[&str], what: &str) {
    for s in secrets {
        assert!(
            memchr::memmem::find(haystack, s.as_bytes()).is_none(),
            "{what} contains a secret (len {})",
            s.len()
        );
    }
}

/// A GitHub classic token with a valid CRC32 tail.
pub fn github_token(body30: &str) -> String {
    assert_eq!(body30.len(), 30);
    format!(
        "ghp_{body30}{}",
        sidecar::redact::validate::base62(crc32fast::hash(body30.as_bytes()) as u64, 6)
    )
}

/// A fresh age key pair: the public recipient and the identity file written in `dir`.
pub struct Keys {
    /// `age1…`.
    pub public: String,
    /// The identity file.
    pub identity: PathBuf,
}

/// Generate [`Keys`] in `dir`.
pub fn keys(dir: &Path) -> Keys {
    use age::secrecy::ExposeSecret;
    let id = age::x25519::Identity::generate();
    let identity = dir.join("key.txt");
    std::fs::write(&identity, format!("{}\n", id.to_string().expose_secret())).unwrap();
    Keys {
        public: id.to_public().to_string(),
        identity,
    }
}

/// A tree as (relative path, content or link target or `<dir>`), sorted, without the backup manifest.
pub fn tree_bytes(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for e in walkdir::WalkDir::new(root).min_depth(1).sort_by_file_name() {
        let e = e.unwrap();
        let rel = e.path().strip_prefix(root).unwrap().display().to_string();
        if rel.starts_with(".sidecar-manifest") {
            continue;
        }
        let ft = e.file_type();
        let content = if ft.is_symlink() {
            std::fs::read_link(e.path())
                .unwrap()
                .into_os_string()
                .into_encoded_bytes()
        } else if ft.is_file() {
            std::fs::read(e.path()).unwrap()
        } else {
            b"<dir>".to_vec()
        };
        out.push((rel, content));
    }
    out
}

/// The test image: busybox-static `FROM scratch` (nothing can be pulled here).
pub const IMAGE: &str = "sidecar-test-busybox:1";

pub fn docker_ok() -> bool {
    let ok = Command::new("docker")
        .arg("info")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "the Docker daemon is required in CI (docker info failed)"
        );
        eprintln!("skipped: no Docker daemon");
    }
    ok
}

/// A tiny image, built here: busybox-static on `scratch` (nothing can be pulled).
pub fn ensure_image() {
    let have = Command::new("docker")
        .args(["image", "inspect", IMAGE])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success();
    if have {
        return;
    }
    assert!(
        Path::new("/bin/busybox").exists(),
        "/bin/busybox is needed to build the test image (apt-get install busybox-static)"
    );
    let ctx = tempfile::tempdir().unwrap();
    std::fs::copy("/bin/busybox", ctx.path().join("busybox")).unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM scratch\nCOPY busybox /bin/busybox\nCMD [\"/bin/busybox\", \"sleep\", \"3600\"]\n",
    )
    .unwrap();
    let out = Command::new("docker")
        .args(["build", "-q", "-t", IMAGE])
        .arg(ctx.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// A host's state directory holding the findings of one container log: the log is written at
/// `<root>/containers/<id>/<id>-json.log` (one stdout entry per `(text, time)`), then `sidecar scan`
/// writes its records to `<root>/state/findings/findings.jsonl`. `key_from`: a state directory
/// whose fingerprint key is copied first (a fleet shares one key).
pub fn findings_state(root: &Path, id: &str, lines: &[(String, &str)], key_from: Option<&Path>) -> PathBuf {
    let state = root.join("state");
    if let Some(k) = key_from {
        std::fs::create_dir_all(&state).unwrap();
        std::fs::copy(k.join("fingerprint.key"), state.join("fingerprint.key")).unwrap();
    }
    let logs = root.join("containers").join(id);
    std::fs::create_dir_all(&logs).unwrap();
    let mut log = Vec::new();
    for (text, time) in lines {
        log.extend(docker_line(text.as_bytes(), "stdout", time));
    }
    std::fs::write(logs.join(format!("{id}-json.log")), &log).unwrap();
    std::fs::create_dir_all(state.join("findings")).unwrap();
    let out = run(sidecar(&state)
        .args(["scan", "--format", "jsonl", "--output"])
        .arg(state.join("findings/findings.jsonl"))
        .arg(root.join("containers")));
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    state
}

/// Poll `ok` every 200 ms until it holds, failing after `limit`.
pub fn wait_for(what: &str, limit: std::time::Duration, mut ok: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !ok() {
        assert!(start.elapsed() < limit, "timed out after {limit:?} waiting for {what}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// The body of a PEM private key, one line per log entry when printed.
pub const PEM_BODY: [&str; 4] = [
    "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj",
    "MzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNbvJZHtCSuYEvu",
    "NMoSfm76oqFvAp8Gy0iz5sxjZmSnXyCdPEovGhLa0VzMaQ8s+CLOyS56YyCFGeJZ",
    "qgtzJ6GR3eqoYSW9b9UMvkBpZODSctWSNGj3P7jRFDO5VoTwCQAWbFnOjDfH5Ulg",
];

/// A small xorshift generator for test data (seeded: reproducible; `from_time`: a fresh set per run).
pub struct Rng(pub u64);

impl Rng {
    pub fn from_time() -> Rng {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        Rng(t ^ (u64::from(std::process::id()) << 32) | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// `n` characters drawn from `alphabet`.
    pub fn pick(&mut self, alphabet: &[u8], n: usize) -> String {
        (0..n)
            .map(|_| alphabet[(self.next() % alphabet.len() as u64) as usize] as char)
            .collect()
    }

    pub fn base62(&mut self, n: usize) -> String {
        self.pick(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", n)
    }

    /// `n` digits, none of them 0.
    pub fn digits(&mut self, n: usize) -> String {
        self.pick(b"123456789", n)
    }
}

/// `docker-compose` (v1) or `docker compose` (v2), whichever works here; None (skip) without
/// either, except in CI, where that fails.
pub fn compose() -> Option<Vec<&'static str>> {
    for cmd in [vec!["docker-compose"], vec!["docker", "compose"]] {
        let ok = Command::new(cmd[0])
            .args(&cmd[1..])
            .arg("version")
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return Some(cmd);
        }
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI needs docker-compose or the docker compose plugin (.ci/run installs docker-compose)"
    );
    eprintln!("skipped: no docker-compose");
    None
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
