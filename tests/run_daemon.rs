//! `sidecar run` against the real Docker daemon: it audits everything at start and each container
//! that starts (results in the audit stream), runs the backup schedule (a scheduled backup that
//! verifies and restores), and stops cleanly on SIGTERM.
#![allow(clippy::disallowed_macros)] // test output; a dead stderr is not tested here

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{docker_ok, ensure_image, keys, run, sidecar, tree_bytes, wait_for, IMAGE};

fn stream_records(path: &std::path::Path) -> Vec<serde_json::Value> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad record ({e}): {l}")))
        .collect()
}

#[test]
fn run_audits_on_start_and_on_container_start_backs_up_on_schedule_and_stops_on_sigterm() {
    if !docker_ok() {
        return;
    }
    ensure_image();
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let src = tmp.path().join("data");
    fs::create_dir_all(src.join("workspace")).unwrap();
    fs::write(src.join("openclaw.json"), b"{\"gateway\":{}}").unwrap();
    fs::write(src.join("workspace/notes.md"), b"hello").unwrap();
    let dest = tmp.path().join("backups");
    let k = keys(tmp.path());
    let name = format!("sidecar-run-test-{}", std::process::id());
    let _ = Command::new("docker").args(["rm", "-f", &name]).output();

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = sidecar(&state)
        .env("SIDECAR_RUN__METRICS_LISTEN", format!("127.0.0.1:{port}"))
        .env("SIDECAR_DOCKER_ROOT", tmp.path().join("docker"))
        .env("SIDECAR_AUDIT__DATA_DIR", "")
        .env("SIDECAR_RUN__ENFORCE_MINUTES", "0")
        .env("SIDECAR_GUARD__ENABLED", "false")
        .env("SIDECAR_BACKUP__RECIPIENTS", format!("[\"{}\"]", k.public))
        .env("SIDECAR_BACKUP__SOURCE", &src)
        .env("SIDECAR_BACKUP__DEST", &dest)
        .env("SIDECAR_BACKUP__SCHEDULE", "*/2 * * * * *")
        .env("SIDECAR_BACKUP__PAUSE", "false")
        .arg("run")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stream = state.join("audit/audit.jsonl");
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait_for("the audit at start", Duration::from_secs(60), || {
            stream_records(&stream).iter().any(|r| r["container"] == "(daemon)")
        });
        let before = stream_records(&stream).len();
        let out = Command::new("docker")
            .args(["run", "-d", "--name", &name, IMAGE])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        wait_for("the audit of the started container", Duration::from_secs(30), || {
            stream_records(&stream)[before..]
                .iter()
                .any(|r| r["container"] == name.as_str())
        });
        let records = stream_records(&stream);
        let mine: Vec<&serde_json::Value> = records[before..]
            .iter()
            .filter(|r| r["container"] == name.as_str())
            .collect();
        assert_eq!(mine.len(), 23, "every container check, once");
        for r in &records {
            assert_eq!(r["schema"], 1);
            assert!(r["time"].as_str().is_some_and(|t| t.ends_with('Z')), "{r}");
        }
        assert!(mine
            .iter()
            .any(|r| r["check"] == "user.non-root" && r["status"] == "fail"));
        assert_eq!(fs::metadata(&stream).unwrap().permissions().mode() & 0o777, 0o600);
        wait_for("a scheduled backup", Duration::from_secs(60), || {
            fs::read_dir(&dest).is_ok_and(|rd| {
                rd.flatten()
                    .any(|e| e.file_name().to_string_lossy().ends_with(".tar.zst.age.b3"))
            })
        });
        // The metrics endpoint counts what happened.
        let metrics = http_get(port, "/metrics");
        assert!(metrics.starts_with("HTTP/1.1 200 OK"), "{metrics}");
        let value = |key: &str| -> f64 {
            metrics
                .lines()
                .find_map(|l| l.strip_prefix(key).and_then(|v| v.strip_prefix(' ')))
                .unwrap_or_else(|| panic!("{key} missing: {metrics}"))
                .parse()
                .unwrap()
        };
        assert!(value("sidecar_audit_runs_total") >= 2.0, "{metrics}");
        assert!(value("sidecar_backups_total{result=\"ok\"}") >= 1.0, "{metrics}");
        assert!(
            metrics.contains("sidecar_audit_results{status=\"pass\",severity=\"high\"}"),
            "{metrics}"
        );
        assert!(http_get(port, "/other").starts_with("HTTP/1.1 404"));
    }));
    // SIGTERM: everything stops within seconds, exit status 0.
    let stopped = Instant::now();
    send_signal(child.id(), 15);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if stopped.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("sidecar run did not stop within 20 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = Command::new("docker").args(["rm", "-f", &name]).output();
    let mut err = String::new();
    use std::io::Read;
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    if let Err(p) = result {
        eprintln!("sidecar run stderr:\n{err}");
        std::panic::resume_unwind(p);
    }
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(
        stopped.elapsed() < Duration::from_secs(10),
        "stopped in {:?}",
        stopped.elapsed()
    );
    assert!(err.contains("sidecar run: stopped"), "{err}");

    // The scheduled backup verifies and restores the tree exactly.
    let target = tmp.path().join("restored");
    let out = run(sidecar(&state)
        .args(["restore", "latest", "--from"])
        .arg(&dest)
        .arg("--to")
        .arg(&target)
        .arg("--identity")
        .arg(&k.identity));
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(tree_bytes(&src), tree_bytes(&target));
}

fn http_get(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(c, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    let mut out = String::new();
    c.read_to_string(&mut out).unwrap();
    out
}

fn send_signal(pid: u32, signal: i32) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn run_with_everything_off_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run(sidecar(tmp.path())
        .env("SIDECAR_RUN__AUDIT_MINUTES", "0")
        .env("SIDECAR_RUN__ENFORCE_MINUTES", "0")
        .env("SIDECAR_GUARD__ENABLED", "false")
        .arg("run"));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing to run"));
}

#[test]
fn health_is_unhealthy_without_a_guard_and_run_refuses_a_missing_containers_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run(sidecar(tmp.path()).arg("health"));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no heartbeat"));
    // A stale heartbeat is unhealthy too.
    fs::write(tmp.path().join("health.json"), br#"{"time":1,"containers":0}"#).unwrap();
    let out = run(sidecar(tmp.path()).arg("health"));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("old"));

    // A fresh heartbeat of a guard that has fallen behind is unhealthy past --max-lag (default 120 s).
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let beat = |lag: u64| {
        fs::write(
            tmp.path().join("health.json"),
            format!(r#"{{"time":{now},"containers":3,"lag_bytes":123456,"lag_seconds":{lag}}}"#),
        )
        .unwrap()
    };
    beat(500);
    let out = run(sidecar(tmp.path()).arg("health"));
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("500 s behind") && err.contains("123456 bytes"), "{err}");
    let out = run(sidecar(tmp.path()).args(["health", "--max-lag", "0"]));
    assert_eq!(out.status.code(), Some(0));
    let out = run(sidecar(tmp.path()).args(["health", "--max-lag", "600"]));
    assert_eq!(out.status.code(), Some(0));
    beat(7);
    let out = run(sidecar(tmp.path()).arg("health"));
    assert_eq!(out.status.code(), Some(0));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("3 container(s), 7 s and 123456 bytes behind"), "{said}");

    let out = run(sidecar(tmp.path())
        .env("SIDECAR_DOCKER_ROOT", tmp.path().join("no-docker-here"))
        .arg("run"));
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no-docker-here/containers") && err.contains("mount Docker's containers directory"),
        "{err}"
    );
}
