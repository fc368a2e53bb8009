//! Backups to a real S3-compatible server (moto, from PyPI, started here): a multipart upload, list,
//! verify, restore and prune through `s3://bucket/prefix`; and the server going away mid-upload,
//! which must leave no object that looks like a backup and harm no earlier backup. Also the fleet
//! report: two hosts ship their findings, one report reads them all.
#![allow(clippy::disallowed_macros)] // test output; a dead stderr is not tested here
use crate::common;

use std::fs;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::{assert_no_secret, findings_state, github_token, keys, run, sidecar, tree_bytes};

/// A moto S3 server on a free loopback port, killed on drop.
struct Moto {
    child: Child,
    port: u16,
}

impl Moto {
    /// Start moto, or `None` when it is not installed (outside CI only: CI must have it).
    fn start() -> Option<Moto> {
        let have = Command::new("python3")
            .args(["-c", "import moto.server"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !have {
            assert!(
                std::env::var_os("CI").is_none(),
                "moto is required in CI (.ci/run installs it: pip install 'moto[server]')"
            );
            eprintln!("skipped: moto not installed (pip install 'moto[server]')");
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new("python3")
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 runs");
        let moto = Moto { child, port };
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto did not start on port {port}");
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(moto)
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// One plain HTTP request without a body (moto does not check signatures); the whole response.
    fn http(&self, method: &str, path: &str) -> String {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        )
        .unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).unwrap();
        resp
    }

    /// The status code of a request.
    fn request(&self, method: &str, path: &str) -> u16 {
        self.http(method, path)
            .split_whitespace()
            .nth(1)
            .unwrap()
            .parse()
            .unwrap()
    }

    /// Keys under `prefix/` in `bucket` (ListObjectsV2 XML, parsed crudely).
    fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let resp = self.http("GET", &format!("/{bucket}?list-type=2&prefix={prefix}/"));
        let mut out: Vec<String> = resp
            .split("<Key>")
            .skip(1)
            .map(|k| k.split("</Key>").next().unwrap().to_string())
            .collect();
        out.sort();
        out
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Incompressible bytes (xorshift), so the backup spans several 8 MiB parts.
fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        out.extend_from_slice(&seed.to_le_bytes());
    }
    out.truncate(len);
    out
}

fn data(root: &Path, big: usize) {
    fs::create_dir_all(root.join("workspace")).unwrap();
    fs::write(root.join("openclaw.json"), b"{\"agents\":{}}\n").unwrap();
    fs::write(root.join("workspace/media.bin"), noise(big, 0x9e37_79b9_7f4a_7c15)).unwrap();
    std::os::unix::fs::symlink("media.bin", root.join("workspace/latest")).unwrap();
}

fn s3_env<'a>(cmd: &'a mut Command, endpoint: &str) -> &'a mut Command {
    cmd.env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn backup_list_verify_restore_and_prune_on_s3() {
    let Some(moto) = Moto::start() else { return };
    assert_eq!(moto.request("PUT", "/backups"), 200);
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("data");
    data(&src, 20 << 20);
    let k = keys(tmp.path());
    let dest = "s3://backups/host-1";

    let mut names = Vec::new();
    for _ in 0..2 {
        let out = run(s3_env(&mut sidecar(tmp.path()), &moto.url())
            .args(["backup", "--source"])
            .arg(&src)
            .args(["--to", dest, "-r", &k.public]));
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let loc = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert!(loc.starts_with("s3://backups/host-1/openclaw_data-"), "{loc}");
        names.push(loc.rsplit('/').next().unwrap().to_string());
        std::thread::sleep(Duration::from_millis(1100));
    }
    // Each backup is three objects; nothing else (no temporary keys).
    let keys_now = moto.keys("backups", "host-1");
    assert_eq!(keys_now.len(), 6, "{keys_now:?}");
    for n in &names {
        for suffix in ["", ".b3", ".index.age"] {
            assert!(keys_now.contains(&format!("host-1/{n}{suffix}")), "{keys_now:?}");
        }
    }

    let out = run(s3_env(&mut sidecar(tmp.path()), &moto.url())
        .args(["backups", "list", "--from", dest, "--identity"])
        .arg(&k.identity));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let listing = String::from_utf8_lossy(&out.stdout);
    assert_eq!(listing.matches(" yes ").count(), 2, "{listing}");
    assert!(listing.contains("20.0 MiB"), "{listing}");

    verify_and_restore(&moto, tmp.path(), dest, "--all", &k, &src);

    let out = run(s3_env(&mut sidecar(tmp.path()), &moto.url()).args(["prune", "--from", dest, "--keep-last", "1"]));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let left = moto.keys("backups", "host-1");
    assert_eq!(
        left,
        [
            format!("host-1/{}", names[1]),
            format!("host-1/{}.b3", names[1]),
            format!("host-1/{}.index.age", names[1])
        ]
    );

    // Wrong credentials or a missing bucket: a clear error, exit 2.
    let out =
        run(s3_env(&mut sidecar(tmp.path()), &moto.url()).args(["backups", "list", "--from", "s3://no-such-bucket/x"]));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("s3://no-such-bucket/x"), "{}", stderr(&out));
}

/// A TCP relay to moto that goes down (drops every connection, refuses new ones) once `limit` bytes
/// have gone upstream: the server vanishing in the middle of a multipart upload.
struct Relay {
    port: u16,
    down: Arc<AtomicBool>,
    up_bytes: Arc<AtomicU64>,
}

impl Relay {
    fn start(upstream: u16, limit: u64) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let down = Arc::new(AtomicBool::new(false));
        let up_bytes = Arc::new(AtomicU64::new(0));
        let conns: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (d, u) = (down.clone(), up_bytes.clone());
        std::thread::spawn(move || loop {
            if d.load(Ordering::SeqCst) {
                for c in conns.lock().unwrap().drain(..) {
                    let _ = c.shutdown(Shutdown::Both);
                }
                return; // the listener is dropped: new connections are refused
            }
            match listener.accept() {
                Ok((client, _)) => {
                    client.set_nonblocking(false).unwrap();
                    let server = TcpStream::connect(("127.0.0.1", upstream)).unwrap();
                    conns.lock().unwrap().push(client.try_clone().unwrap());
                    conns.lock().unwrap().push(server.try_clone().unwrap());
                    let (mut c2, mut s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                    let (d2, u2) = (d.clone(), u.clone());
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 65536];
                        while let Ok(n) = c2.read(&mut buf) {
                            if n == 0 || d2.load(Ordering::SeqCst) || s2.write_all(&buf[..n]).is_err() {
                                break;
                            }
                            if u2.fetch_add(n as u64, Ordering::SeqCst) + n as u64 > limit {
                                d2.store(true, Ordering::SeqCst);
                                break;
                            }
                        }
                        let _ = s2.shutdown(Shutdown::Both);
                        let _ = c2.shutdown(Shutdown::Both);
                    });
                    let (mut c3, mut s3) = (client, server);
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut s3, &mut c3);
                        let _ = c3.shutdown(Shutdown::Both);
                    });
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        });
        Relay { port, down, up_bytes }
    }
}

#[test]
fn server_gone_mid_upload_leaves_no_backup_and_harms_none() {
    let Some(moto) = Moto::start() else { return };
    assert_eq!(moto.request("PUT", "/backups"), 200);
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("data");
    data(&src, 40 << 20);
    let k = keys(tmp.path());
    let dest = "s3://backups/host-2";

    // One good backup first, straight to moto.
    let out = run(s3_env(&mut sidecar(tmp.path()), &moto.url())
        .args(["backup", "--source"])
        .arg(&src)
        .args(["--to", dest, "-r", &k.public]));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let before = moto.keys("backups", "host-2");
    assert_eq!(before.len(), 3, "{before:?}");
    std::thread::sleep(Duration::from_millis(1100));

    // The second one goes through a relay that dies after ~12 MiB (the second 8 MiB part).
    let relay = Relay::start(moto.port, 12 << 20);
    let started = Instant::now();
    let out = run(
        s3_env(&mut sidecar(tmp.path()), &format!("http://127.0.0.1:{}", relay.port))
            .args(["backup", "--source"])
            .arg(&src)
            .args(["--to", dest, "-r", &k.public]),
    );
    assert!(relay.down.load(Ordering::SeqCst), "the relay never went down");
    assert!(relay.up_bytes.load(Ordering::SeqCst) > 8 << 20);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    eprintln!("interrupted backup said: {err}");
    assert!(
        err.contains("s3://backups/host-2/openclaw_data-") && err.contains("upload"),
        "the error names the backup and the problem: {err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(120),
        "gave up in {:?}",
        started.elapsed()
    );

    // Nothing new is visible; the earlier backup still verifies and restores.
    assert_eq!(moto.keys("backups", "host-2"), before);
    verify_and_restore(&moto, tmp.path(), dest, "latest", &k, &src);
}

/// `sidecar verify WHICH --identity` passes, and `restore latest` reproduces `src`.
fn verify_and_restore(moto: &Moto, tmp: &Path, dest: &str, which: &str, k: &common::Keys, src: &Path) {
    let out = run(s3_env(&mut sidecar(tmp), &moto.url())
        .args(["verify", which, "--from", dest, "--identity"])
        .arg(&k.identity));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let target = tmp.join("restored");
    let out = run(s3_env(&mut sidecar(tmp), &moto.url())
        .args(["restore", "latest", "--from", dest, "--to"])
        .arg(&target)
        .arg("--identity")
        .arg(&k.identity));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(tree_bytes(src), tree_bytes(&target));
}

fn host_findings(root: &Path, lines: &[(String, &str)], key_from: Option<&Path>) -> std::path::PathBuf {
    findings_state(root, &"a".repeat(64), lines, key_from)
}

#[test]
fn fleet_report_reads_the_findings_every_host_shipped() {
    let Some(moto) = Moto::start() else { return };
    assert_eq!(moto.request("PUT", "/fleet"), 200);
    let tmp = tempfile::tempdir().unwrap();
    let shared = github_token("Zq3xT7wK9mB2vN5cR8yL4pF6hJ1dG0");
    let only_b = github_token("Aa1Bb2Cc3Dd4Ee5Ff6Gg7Hh8Ii9Jj0");
    let a = host_findings(
        &tmp.path().join("a"),
        &[(format!("token {shared}\n"), "2026-11-01T10:00:00Z")],
        None,
    );
    let b = host_findings(
        &tmp.path().join("b"),
        &[
            (format!("token {shared}\n"), "2026-11-02T10:00:00Z"),
            (format!("other {only_b}\n"), "2026-11-03T10:00:00Z"),
        ],
        Some(&a),
    );
    let ship = |state: &Path, host: &str| {
        let out = run(s3_env(&mut sidecar(state), &moto.url())
            .env("SIDECAR_FLEET__SHIP_TO", "s3://fleet/reports")
            .env("SIDECAR_FLEET__HOST", host)
            .args(["report", "ship"]));
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(ship(&a, "host-a").starts_with("1 object(s) shipped"));
    assert!(ship(&b, "host-b").starts_with("1 object(s) shipped"));
    assert!(
        ship(&a, "host-a").starts_with("0 object(s)"),
        "nothing new, nothing sent"
    );
    // Shipped again after losing its record (a kill between upload and record): same object, no duplicate.
    fs::remove_file(a.join("shipped.json")).unwrap();
    ship(&a, "host-a");
    assert_eq!(moto.keys("fleet", "reports/host-a").len(), 1);
    assert_eq!(moto.keys("fleet", "reports/host-b").len(), 1);
    // New findings on host a (another container, later) are shipped as a new object.
    let later = host_findings(
        &tmp.path().join("a2"),
        &[(format!("again {shared}\n"), "2026-11-04T10:00:00Z")],
        Some(&a),
    );
    let more = later.join("findings/findings.jsonl");
    let mut f = fs::OpenOptions::new()
        .append(true)
        .open(a.join("findings/findings.jsonl"))
        .unwrap();
    f.write_all(&fs::read(&more).unwrap()).unwrap();
    assert!(ship(&a, "host-a").starts_with("1 object(s) shipped"));
    assert_eq!(moto.keys("fleet", "reports/host-a").len(), 2);

    let out = run(s3_env(&mut sidecar(&tmp.path().join("reviewer")), &moto.url()).args([
        "report",
        "--from",
        "s3://fleet/reports",
        "--format",
        "json",
    ]));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_no_secret(&out.stdout, &[&shared, &only_b], "fleet report");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let items = v["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{v}");
    let both = items
        .iter()
        .find(|i| i["count"] == 3)
        .expect("the shared token: 2 on host a, 1 on host b");
    let containers: Vec<&str> = both["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(containers, ["host-a/aaaaaaaaaaaa", "host-b/aaaaaaaaaaaa"]);
    assert_eq!(both["first_seen"], "2026-11-01T10:00:00Z");
}
