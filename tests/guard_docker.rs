//! The live log guard (`sidecar run`) on the real Docker engine and its real `/var/lib/docker`: a
//! container prints realistic lines with secrets (a line over 16 KiB with a secret across Docker's
//! split, a PEM key over several entries, JSON escaped twice, URLs, env dumps) with a small
//! `max-size` and `compress=true`, so Docker rotates and compresses while the guard follows.
//! Afterwards `docker logs` works, shows every line and no secret, and the report holds exactly
//! the findings `sidecar scan` finds in the same lines rendered as Docker renders them. A second
//! test kills the guard with SIGKILL at random moments while the container writes.
#![allow(clippy::disallowed_macros)] // test output; a dead stderr is not tested here

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::common::*;

/// One guard at a time writes to Docker's files in this test binary.
static SERIAL: Mutex<()> = Mutex::new(());

/// What the container prints, group by group (a `sleep` between groups), and the secrets in it.
struct Plan {
    groups: Vec<Vec<String>>,
    /// Substrings that must not survive anywhere (token bodies, PEM lines).
    secrets: Vec<String>,
    /// Secrets planted (a PEM key counts once).
    planted: usize,
}

impl Plan {
    fn new(groups: usize, filler: usize, secret_every: usize, extras: bool, seed: u64) -> Plan {
        let mut rng = Rng(seed);
        let mut plan = Plan {
            groups: Vec::new(),
            secrets: Vec::new(),
            planted: 0,
        };
        let mut k = 0usize;
        for g in 0..groups {
            let mut lines = Vec::new();
            for i in 0..filler {
                lines.push(format!(
                    "{{\"level\":30,\"time\":{},\"msg\":\"request completed\",\"reqId\":\"req-{}\",\"path\":\"/v1/chat/completions\",\"status\":200,\"ms\":{}}}",
                    1_764_200_000_000u64 + (g * filler + i) as u64,
                    rng.base62(12),
                    rng.next() % 900
                ));
            }
            if g % secret_every == secret_every - 1 {
                let tok = github_token(&rng.base62(30));
                plan.secrets.push(tok[4..].to_string());
                plan.planted += 1;
                lines.insert(
                    filler / 2,
                    match k % 4 {
                        0 => format!("gateway: authenticating to GitHub with {tok}"),
                        1 => format!(
                            "{{\"level\":40,\"msg\":\"tool config {{\\\"env\\\":{{\\\"GH_AUTH\\\":\\\"{tok}\\\"}}}}\"}}"
                        ),
                        2 => format!("env: GITHUB_TOKEN={tok} HOME=/home/node"),
                        _ => format!("git clone https://x-access-token:{tok}@github.com/acme/agent.git"),
                    },
                );
                k += 1;
            }
            if extras && g == groups / 3 {
                // Over 16 KiB, the secret across Docker's split at 16384 bytes.
                let tok = github_token(&rng.base62(30));
                plan.secrets.push(tok[4..].to_string());
                plan.planted += 1;
                let mut long = "payload=".to_string();
                long.push_str(&"A".repeat(16384 - 20 - long.len()));
                long.push_str(" token=");
                long.push_str(&tok);
                long.push(' ');
                long.push_str(&"b".repeat(4000));
                lines.push(long);
            }
            if extras && g == groups / 2 {
                plan.planted += 1;
                lines.push("loaded signing key:".into());
                lines.push("-----BEGIN PRIVATE KEY-----".into());
                for l in PEM_BODY {
                    lines.push(l.to_string());
                    plan.secrets.push(l.to_string());
                }
                lines.push("-----END PRIVATE KEY-----".into());
            }
            plan.groups.push(lines);
        }
        plan
    }

    fn lines(&self) -> usize {
        self.groups.iter().map(Vec::len).sum()
    }

    /// The shell script the container runs.
    fn script(&self, pause: &str) -> String {
        let mut s = String::new();
        for g in &self.groups {
            s.push_str("printf '%s\\n'");
            for l in g {
                assert!(!l.contains('\''));
                s.push_str(" '");
                s.push_str(l);
                s.push('\'');
            }
            s.push_str(&format!("\nsleep {pause}\n"));
        }
        s
    }

    /// The lines as Docker's json-file driver writes them (timestamps aside).
    fn docker_rendering(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for l in self.groups.iter().flatten() {
            out.extend(docker_split(l.as_bytes(), "stdout", "2026-11-27T00:00:00.000000000Z"));
        }
        out
    }
}

/// (rule, fingerprint) → count, as `sidecar scan` finds them in the Docker rendering.
fn expected(plan: &Plan, state: &Path, dir: &Path) -> BTreeMap<(String, String), usize> {
    let log = dir.join("expected-json.log");
    fs::write(&log, plan.docker_rendering()).unwrap();
    let out = run(sidecar(state).args(["scan", "--format", "jsonl"]).arg(&log));
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let mut m = BTreeMap::new();
    for f in findings(&out.stdout) {
        *m.entry((
            f["rule"].as_str().unwrap().to_string(),
            f["fingerprint"].as_str().unwrap().to_string(),
        ))
        .or_insert(0) += 1;
    }
    assert_eq!(m.len(), plan.planted, "one finding per planted secret: {m:?}");
    m
}

/// The guard's records for one container: (rule, fingerprint) → count.
fn recorded(state: &Path, container: &str) -> BTreeMap<(String, String), usize> {
    // Through `sidecar report`, as a reviewer reads it: occurrence records, rotated files and the
    // summaries that fold them, read consistently while the guard rotates them.
    let out = run(sidecar(state).args([
        "report",
        "--format",
        "json",
        "--status",
        "all",
        "--container",
        container,
    ]));
    // Exit status 1: new secrets are listed.
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut m = BTreeMap::new();
    for item in v["items"].as_array().unwrap() {
        m.insert(
            (
                item["rule"].as_str().unwrap().to_string(),
                item["fingerprint"].as_str().unwrap().to_string(),
            ),
            item["count"].as_u64().unwrap() as usize,
        );
    }
    m
}

/// What differs between the expected and the recorded findings, readably.
fn diff(want: &BTreeMap<(String, String), usize>, got: &BTreeMap<(String, String), usize>) -> String {
    let mut out = String::new();
    for (k, n) in want {
        let g = got.get(k).copied().unwrap_or(0);
        if g != *n {
            out.push_str(&format!("{} {}: want {n}, got {g}\n", k.0, &k.1[..12]));
        }
    }
    for (k, g) in got {
        if !want.contains_key(k) {
            out.push_str(&format!("{} {}: not expected, got {g}\n", k.0, &k.1[..12]));
        }
    }
    out
}

/// One test's setting: the serial lock, a temporary directory, the plan, what the report must hold,
/// the writer's name. `None` (skipped) without a Docker daemon outside CI.
struct Case {
    _serial: std::sync::MutexGuard<'static, ()>,
    tmp: tempfile::TempDir,
    state: PathBuf,
    plan: Plan,
    want: BTreeMap<(String, String), usize>,
    name: String,
}

impl Case {
    fn new(plan: Plan, what: &str) -> Option<Case> {
        if !docker_ok() {
            return None;
        }
        let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        ensure_image();
        let tmp = tempfile::tempdir().unwrap();
        let state = tmp.path().join("state");
        let want = expected(&plan, &state, tmp.path());
        Some(Case {
            _serial: serial,
            tmp,
            state,
            plan,
            want,
            name: format!("sidecar-guard-{what}-{}", std::process::id()),
        })
    }
}

/// `sidecar run` following the engine, with its stderr read as it comes (a pipe nobody reads
/// would fill up; sidecar drops its messages then, and the test would lose them).
struct Guard {
    child: Child,
    err: std::thread::JoinHandle<String>,
}

fn start_guard(state: &Path, container: &str) -> Guard {
    let mut child = sidecar(state)
        .env("SIDECAR_DOCKER_ROOT", "/var/lib/docker")
        // Only the test's own container: the engine is shared (guard.containers, as a user would).
        .env("SIDECAR_GUARD__CONTAINERS", format!("[{container:?}]"))
        // The test's containers are masked by this guard only: another sidecar on the engine (the
        // host's own, after `sidecar/up.sh`) reports them and leaves their files to this one.
        .env("SIDECAR_GUARD__NAME", guard_name())
        .env("SIDECAR_RUN__AUDIT_MINUTES", "0")
        .env("SIDECAR_RUN__ENFORCE_MINUTES", "0")
        .env("SIDECAR_GUARD__RESCAN_SECONDS", "1")
        .env("SIDECAR_LOG", "info")
        .arg("run")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stderr.take().unwrap();
    let err = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = std::io::Read::read_to_end(&mut pipe, &mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    });
    Guard { child, err }
}

fn docker(args: &[&str]) -> std::process::Output {
    Command::new("docker").args(args).output().unwrap()
}

/// The name of this test run's guards, and the `sidecar.guard` label of its containers.
fn guard_name() -> String {
    format!("test-guard-docker-{}", std::process::id())
}

/// Start the writer container; returns its log directory.
fn start_writer(name: &str, dir: &Path, script: &str, log_opts: &[&str]) -> PathBuf {
    let _ = docker(&["rm", "-f", name]);
    fs::write(dir.join("script.sh"), script).unwrap();
    let mount = format!("{}:/t:ro", dir.display());
    let label = format!("sidecar.guard={}", guard_name());
    let mut args = vec![
        "run",
        "-d",
        "--name",
        name,
        "--label",
        &label,
        "--log-driver",
        "json-file",
        "-v",
        &mount,
    ];
    for o in log_opts {
        args.push("--log-opt");
        args.push(o);
    }
    args.extend([IMAGE, "/bin/busybox", "sh", "/t/script.sh"]);
    let out = docker(&args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let id = String::from_utf8(out.stdout).unwrap().trim().to_string();
    PathBuf::from("/var/lib/docker/containers").join(id)
}

/// Every log file of the container (live, rotated, compressed) decompressed: (name, bytes).
fn log_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.contains("-json.log") {
            continue;
        }
        let raw = fs::read(e.path()).unwrap();
        let bytes = if name.ends_with(".gz") {
            let mut d = flate2::read::MultiGzDecoder::new(&raw[..]);
            let mut v = Vec::new();
            std::io::Read::read_to_end(&mut d, &mut v).unwrap_or_else(|e| panic!("{name}: {e}"));
            v
        } else {
            raw
        };
        out.push((name, bytes));
    }
    out.sort();
    out
}

fn secret_left(dir: &Path, secrets: &[String]) -> Option<String> {
    for (name, bytes) in log_files(dir) {
        for s in secrets {
            if memchr::memmem::find(&bytes, s.as_bytes()).is_some() {
                return Some(name);
            }
        }
    }
    None
}

/// Every line of every log file is valid JSON with a `log` string.
fn assert_valid_json(dir: &Path) {
    for (name, bytes) in log_files(dir) {
        for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
            if line.is_empty() {
                continue;
            }
            let v: serde_json::Value =
                serde_json::from_slice(line).unwrap_or_else(|e| panic!("{name}:{}: not JSON: {e}", i + 1));
            assert!(v["log"].is_string(), "{name}:{}", i + 1);
        }
    }
}

fn stop(mut guard: Guard) -> String {
    let t = Instant::now();
    Command::new("kill")
        .args(["-TERM", &guard.child.id().to_string()])
        .status()
        .unwrap();
    let status = guard.child.wait().unwrap();
    let err = guard.err.join().unwrap();
    assert!(t.elapsed() < Duration::from_secs(5), "SIGTERM took {:?}", t.elapsed());
    assert_eq!(status.code(), Some(0), "{err}");
    err
}

fn docker_logs(args: &[&str], name: &str) -> String {
    let mut a = vec!["logs"];
    a.extend_from_slice(args);
    a.push(name);
    let out = docker(&a);
    assert!(
        out.status.success(),
        "docker logs: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stderr.is_empty(), "the container writes nothing to stderr");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_guard_masks_docker_logs_in_place_through_rotation_and_compression() {
    let Some(Case {
        _serial,
        tmp,
        state,
        plan,
        want,
        name,
    }) = Case::new(Plan::new(30, 8, 3, true, 0x5eed_0001), "test")
    else {
        return;
    };

    let guard = start_guard(&state, &name);
    let dir = start_writer(
        &name,
        tmp.path(),
        &plan.script("0.1"),
        &["max-size=24k", "max-file=3", "compress=true"],
    );
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait_for("the writer to finish", Duration::from_secs(60), || {
            docker(&["inspect", "-f", "{{.State.Running}}", &name])
                .stdout
                .starts_with(b"false")
        });
        let t = Instant::now();
        while recorded(&state, &name) != want && t.elapsed() < Duration::from_secs(60) {
            std::thread::sleep(Duration::from_millis(200));
        }
        assert_eq!(diff(&want, &recorded(&state, &name)), "", "the report");
        wait_for("no secret left in any log file", Duration::from_secs(30), || {
            secret_left(&dir, &plan.secrets).is_none()
        });
        let health = run(sidecar(&state).arg("health"));
        assert_eq!(
            health.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&health.stderr)
        );
        let names: Vec<String> = log_files(&dir).into_iter().map(|(n, _)| n).collect();
        assert!(
            names.iter().filter(|n| n.ends_with(".gz")).count() == 2,
            "Docker rotated and compressed twice: {names:?}"
        );
        assert_valid_json(&dir);
        // Docker's gzip header is kept in every compressed file: its lastTime is the time of the
        // file's last entry, which `docker logs --since` relies on to skip whole files. (Docker
        // 20.10 reads that time when its compression goroutine runs, so on a busy host it may be
        // the time of the next entry, already in the newer file: never earlier than the last one.)
        for e in fs::read_dir(&dir).unwrap().flatten() {
            if e.file_name().to_string_lossy().ends_with(".gz") {
                let mut d = flate2::read::GzDecoder::new(fs::File::open(e.path()).unwrap());
                let mut plain = String::new();
                std::io::Read::read_to_string(&mut d, &mut plain).unwrap();
                let last: serde_json::Value = serde_json::from_str(plain.lines().last().unwrap()).unwrap();
                let extra = d
                    .header()
                    .and_then(|h| h.extra())
                    .map(|x| x.to_vec())
                    .unwrap_or_default();
                let extra: serde_json::Value = serde_json::from_slice(&extra).unwrap();
                let time = |v: &serde_json::Value| chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap();
                let (header, entry) = (time(&extra["lastTime"]), time(&last["time"]));
                assert!(
                    header >= entry && header - entry < chrono::Duration::seconds(5),
                    "{:?}: lastTime {header} for a last entry at {entry}",
                    e.path()
                );
            }
        }
        // docker logs: every line, no secret; also with --since, which reads every file's header.
        let all = docker_logs(&[], &name);
        assert_eq!(all.lines().count(), plan.lines());
        assert_no_secret(
            all.as_bytes(),
            &plan.secrets.iter().map(String::as_str).collect::<Vec<_>>(),
            "docker logs",
        );
        assert!(all.contains("-----BEGIN PRIVATE KEY-----") && all.contains("ghp_"));
        let stamped = docker_logs(&["-t"], &name);
        let first = stamped.split(' ').next().unwrap();
        assert_eq!(docker_logs(&["--since", first], &name), all, "--since {first}");
        assert!(!fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().ends_with(".tmp")));
    }));
    let err = stop(guard);
    let _ = docker(&["rm", "-f", &name]);
    if let Err(p) = result {
        eprintln!("guard output:\n{err}");
        std::panic::resume_unwind(p);
    }
    // Nothing sidecar printed holds a secret.
    assert_no_secret(
        err.as_bytes(),
        &plan.secrets.iter().map(String::as_str).collect::<Vec<_>>(),
        "sidecar's output",
    );
    assert_eq!(
        fs::metadata(state.join("findings/findings.jsonl"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
}

use std::os::unix::fs::PermissionsExt;

#[test]
fn killing_the_guard_at_random_moments_loses_no_mask_and_duplicates_no_finding() {
    let Some(Case {
        _serial,
        tmp,
        state,
        plan,
        want,
        name,
    }) = Case::new(Plan::new(120, 8, 2, true, 0x5eed_0002), "kill")
    else {
        return;
    };
    let dir = start_writer(
        &name,
        tmp.path(),
        &plan.script("0.05"),
        &["max-size=40k", "max-file=20", "compress=true"],
    );
    let mut rng = Rng(std::process::id() as u64 | 1);
    let mut kills = 0;
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let running = || {
            docker(&["inspect", "-f", "{{.State.Running}}", &name])
                .stdout
                .starts_with(b"true")
        };
        while kills < 20 || running() {
            let mut g = start_guard(&state, &name);
            std::thread::sleep(Duration::from_millis(100 + rng.next() % 700));
            g.child.kill().unwrap();
            g.child.wait().unwrap();
            let _ = g.err.join();
            kills += 1;
        }
        let guard = start_guard(&state, &name);
        let done = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            wait_for("every finding in the report", Duration::from_secs(60), || {
                recorded(&state, &name).values().sum::<usize>() >= want.values().sum::<usize>()
            });
            wait_for("no secret left in any log file", Duration::from_secs(30), || {
                secret_left(&dir, &plan.secrets).is_none()
            });
            // A last rescan (every second) must find nothing more.
            std::thread::sleep(Duration::from_secs(2));
        }));
        let err = stop(guard);
        if let Err(p) = done {
            eprintln!("guard output:\n{err}");
            std::panic::resume_unwind(p);
        }
        assert_eq!(
            diff(&want, &recorded(&state, &name)),
            "",
            "each finding exactly once after {kills} kills"
        );
        assert_valid_json(&dir);
        let all = docker_logs(&[], &name);
        assert_eq!(all.lines().count(), plan.lines());
        assert!(!fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().ends_with(".tmp")));
    }));
    let _ = docker(&["rm", "-f", &name]);
    if let Err(p) = result {
        std::panic::resume_unwind(p);
    }
    assert!(kills >= 20);
}
