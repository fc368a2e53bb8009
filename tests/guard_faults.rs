//! Faults around the live log guard never stop masking: a dead stderr (`/dev/full`), a container
//! whose work panics (injected in debug builds by `FAULT_SIDECAR_PANIC_CONTAINER`), inotify watches
//! run out (in a user namespace of its own, `unshare --user`). `sidecar run`
//! follows a Docker root made of plain files here, so these tests need no Docker daemon.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::common::{docker_line, free_port, github_token, sidecar, wait_for, Rng};

/// A container directory as Docker writes it; returns the live log's path.
fn container(root: &Path, id_char: char, name: &str) -> PathBuf {
    let id: String = std::iter::repeat_n(id_char, 64).collect();
    let dir = root.join("containers").join(&id);
    fs::create_dir_all(&dir).unwrap();
    fs::write(
        dir.join("config.v2.json"),
        format!(r#"{{"ID":"{id}","Name":"/{name}","Config":{{"Image":"img:1","Labels":{{}}}}}}"#),
    )
    .unwrap();
    fs::write(
        dir.join("hostconfig.json"),
        r#"{"LogConfig":{"Type":"json-file","Config":{"max-size":"10m","max-file":"3"}}}"#,
    )
    .unwrap();
    let log = dir.join(format!("{id}-json.log"));
    append(
        &log,
        &docker_line(b"starting\n", "stdout", "2026-12-02T00:00:00.000000001Z"),
    );
    log
}

fn append(path: &Path, bytes: &[u8]) {
    let mut f = OpenOptions::new().append(true).create(true).open(path).unwrap();
    f.write_all(bytes).unwrap();
}

fn secret_line(token: &str) -> Vec<u8> {
    docker_line(
        format!("exec: git clone with GITHUB_TOKEN={token}\n").as_bytes(),
        "stdout",
        "2026-12-02T00:00:01.000000001Z",
    )
}

fn has(path: &Path, needle: &str) -> bool {
    memchr::memmem::find(&fs::read(path).unwrap(), needle.as_bytes()).is_some()
}

fn metric(port: u16, name: &str) -> f64 {
    series(port, name).unwrap_or(0.0)
}

/// The value of one series (`name` with its labels), when it is exposed.
fn series(port: u16, name: &str) -> Option<f64> {
    use std::io::Read;
    let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    let _ = write!(
        c,
        "GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    );
    let mut out = String::new();
    let _ = c.read_to_string(&mut out);
    out.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
}

/// `sidecar run` with only the guard on, following `docker_root`; container `panicking` (an id
/// prefix) has its work panic every time.
fn start(tmp: &Path, docker_root: &Path, port: u16, panicking: &str, stderr: Stdio) -> Child {
    sidecar(&tmp.join("state"))
        .env("SIDECAR_DOCKER_ROOT", docker_root)
        .env("SIDECAR_RUN__AUDIT_MINUTES", "0")
        .env("SIDECAR_RUN__ENFORCE_MINUTES", "0")
        .env("SIDECAR_RUN__METRICS_LISTEN", format!("127.0.0.1:{port}"))
        .env("FAULT_SIDECAR_PANIC_CONTAINER", panicking)
        .arg("run")
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap()
}

fn stop(mut child: Child) -> std::process::ExitStatus {
    let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    for _ in 0..200 {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    panic!("sidecar run did not stop on SIGTERM");
}

#[test]
fn a_dead_stderr_and_a_panicking_container_do_not_stop_masking() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("docker");
    let sick = container(&root, 'a', "sick");
    let well = container(&root, 'b', "well");
    // Something to warn about on every pass, so that the guard keeps writing to its dead stderr.
    let damaged = well.with_file_name(format!("{}.3.gz", well.file_name().unwrap().to_string_lossy()));
    fs::write(&damaged, b"\x1f\x8b\x08\x00 not gzip").unwrap();
    let dev_full = OpenOptions::new().write(true).open("/dev/full").expect("/dev/full");
    let port = free_port();
    let mut child = start(tmp.path(), &root, port, "aaaaaaaa", Stdio::from(dev_full));
    let mut rng = Rng::from_time();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        for _ in 0..3 {
            let (t_sick, t_well) = (github_token(&rng.base62(30)), github_token(&rng.base62(30)));
            append(&sick, &secret_line(&t_sick));
            append(&well, &secret_line(&t_well));
            wait_for("the healthy container's token masked", Duration::from_secs(30), || {
                !has(&well, &t_well)
            });
            assert!(child.try_wait().unwrap().is_none(), "sidecar run died");
            // The container whose work panics is left as it is (and retried), not half-written.
            assert!(has(&sick, &t_sick));
        }
        wait_for("the panicking container retried", Duration::from_secs(30), || {
            metric(port, "sidecar_guard_panics_total") >= 3.0
        });
    }));
    let status = stop(child);
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
    assert!(status.success(), "{status:?}");
}

#[test]
fn a_panic_is_reported_without_its_message_and_the_container_recovers() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("docker");
    let sick = container(&root, 'c', "sick");
    let port = free_port();
    let log = tmp.path().join("stderr.txt");
    let child = start(
        tmp.path(),
        &root,
        port,
        "cccccccc",
        Stdio::from(fs::File::create(&log).unwrap()),
    );
    let token = github_token(&Rng::from_time().base62(30));
    append(&sick, &secret_line(&token));
    wait_for("a contained panic", Duration::from_secs(30), || {
        fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("retrying this one in")
    });
    let status = stop(child);
    assert!(status.success(), "{status:?}");
    let err = fs::read_to_string(&log).unwrap();
    assert!(err.contains("message withheld"), "{err}");
    assert!(
        !err.contains("PANICMESSAGEMUSTNOTLEAK"),
        "the panic's message reached the output: {err}"
    );
    assert!(has(&sick, &token));
    // Without the fault, the same state masks what was left behind: nothing was lost.
    let child = start(tmp.path(), &root, free_port(), "", Stdio::null());
    let masked = std::panic::catch_unwind(|| {
        wait_for("the token masked after recovery", Duration::from_secs(30), || {
            !has(&sick, &token)
        })
    });
    let status = stop(child);
    if let Err(e) = masked {
        std::panic::resume_unwind(e);
    }
    assert!(status.success(), "{status:?}");
}

#[test]
fn a_stderr_nobody_reads_does_not_stop_masking() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("docker");
    let log = container(&root, 'd', "chatty");
    let port = free_port();
    // A pipe whose reader never reads: once its 64 KiB are full, every write to it blocks.
    let mut child = sidecar(&tmp.path().join("state"))
        .env("SIDECAR_DOCKER_ROOT", &root)
        .env("SIDECAR_RUN__AUDIT_MINUTES", "0")
        .env("SIDECAR_RUN__ENFORCE_MINUTES", "0")
        .env("SIDECAR_RUN__METRICS_LISTEN", format!("127.0.0.1:{port}"))
        .env("SIDECAR_LOG", "debug")
        .arg("run")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut rng = Rng::from_time();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // Each line not in json-file format is logged at debug level: far more than 64 KiB.
        let mut junk = Vec::new();
        for i in 0..5000 {
            junk.extend_from_slice(format!("not json-file output, line {i} of a chatty container\n").as_bytes());
        }
        for _ in 0..3 {
            append(&log, &junk);
            let token = github_token(&rng.base62(30));
            append(&log, &secret_line(&token));
            wait_for("the token masked", Duration::from_secs(30), || !has(&log, &token));
        }
        assert!(
            metric(port, "sidecar_messages_dropped_total") > 0.0,
            "the pipe was full"
        );
        wait_for("the container's lag metric", Duration::from_secs(30), || {
            series(port, "sidecar_log_container_lag_bytes{container=\"chatty\"}") == Some(0.0)
                && series(port, "sidecar_log_container_lag_seconds{container=\"chatty\"}") == Some(0.0)
        });
    }));
    let status = stop(
        child
            .try_wait()
            .unwrap()
            .map_or(child, |s| panic!("sidecar run died: {s:?}")),
    );
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
    assert!(status.success(), "{status:?}");
}

/// A user namespace can be made here and its inotify watch limit set (not where unprivileged user
/// namespaces are restricted): false, with the reason printed, outside CI; a panic in CI.
#[allow(clippy::disallowed_macros)]
fn user_namespaces() -> bool {
    let probe = Command::new("unshare")
        .args(["--user", "--map-root-user", "sh", "-c"])
        .arg("echo 5 > /proc/sys/user/max_inotify_watches")
        .output();
    let why = match probe {
        Ok(o) if o.status.success() => return true,
        Ok(o) => String::from_utf8_lossy(&o.stderr).into_owned(),
        Err(e) => e.to_string(),
    };
    assert!(
        std::env::var_os("CI").is_none(),
        "CI: a user namespace with its own inotify limit cannot be made ({why})"
    );
    eprintln!("skipped: a user namespace with its own inotify limit cannot be made here ({why})");
    false
}

#[test]
fn containers_inotify_cannot_watch_are_still_masked_long_before_the_rescan() {
    if !user_namespaces() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("docker");
    let logs: Vec<PathBuf> = ['7', '8', '9']
        .iter()
        .map(|&c| container(&root, c, &format!("busy-{c}")))
        .collect();
    let port = free_port();
    let err = tmp.path().join("stderr.txt");
    // A user namespace of its own, whose inotify watch limit (2: the root and one container
    // directory) is lowered without touching the host's.
    let cmd = sidecar(&tmp.path().join("state"));
    let child = Command::new("unshare")
        .args(["--user", "--map-root-user", "sh", "-c"])
        .arg("echo 2 > /proc/sys/user/max_inotify_watches && exec \"$0\" run")
        .arg(cmd.get_program())
        .env_clear()
        .envs(cmd.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .env("SIDECAR_DOCKER_ROOT", &root)
        .env("SIDECAR_RUN__AUDIT_MINUTES", "0")
        .env("SIDECAR_RUN__ENFORCE_MINUTES", "0")
        .env("SIDECAR_RUN__METRICS_LISTEN", format!("127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(fs::File::create(&err).unwrap()))
        .spawn()
        .expect("unshare (util-linux) runs sidecar in a user namespace");
    let mut rng = Rng::from_time();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait_for("the warning that watches ran out", Duration::from_secs(30), || {
            fs::read_to_string(&err)
                .unwrap_or_default()
                .contains("no inotify watch left")
        });
        wait_for("the guard up", Duration::from_secs(30), || {
            metric(port, "sidecar_log_containers_followed") >= 3.0
        });
        wait_for(
            "the directories without a watch counted",
            Duration::from_secs(5),
            || metric(port, "sidecar_log_dirs_unwatched") >= 1.0,
        );
        // A container started now: Docker makes its directory, then writes its configuration.
        let mut logs = logs;
        let id: String = std::iter::repeat_n('6', 64).collect();
        let dir = root.join("containers").join(&id);
        fs::create_dir_all(&dir).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        logs.push(container(&root, '6', "late"));
        for round in 0..3 {
            let tokens: Vec<String> = logs.iter().map(|_| github_token(&rng.base62(30))).collect();
            for (log, t) in logs.iter().zip(&tokens) {
                append(log, &secret_line(t));
            }
            // The rescan comes every 30 s: only a look at every wake masks them this soon.
            wait_for(
                &format!("round {round}: every container's token masked"),
                Duration::from_secs(5),
                || logs.iter().zip(&tokens).all(|(log, t)| !has(log, t)),
            );
        }
    }));
    let status = stop(child);
    if let Err(e) = result {
        panic!(
            "{:?}\nstderr:\n{}",
            e.downcast_ref::<String>(),
            fs::read_to_string(&err).unwrap_or_default()
        );
    }
    assert!(status.success(), "{status:?}");
}
