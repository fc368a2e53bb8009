//! Consistency pauses against the real Docker daemon: a container labelled for pausing is paused
//! while `sidecar backup` reads the source and unpaused afterwards, and also when the backup is
//! stopped by SIGTERM, when the maximum pause time runs out, and (at the next backup) after sidecar
//! was killed with SIGKILL.
#![allow(clippy::disallowed_macros)] // test output; a dead stderr is not tested here

use std::fs;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{docker_ok, ensure_image, sidecar, IMAGE};
use age::secrecy::ExposeSecret;

/// A running container with a label, removed on drop.
struct Container {
    name: String,
}

impl Container {
    fn start(name: &str, label: &str) -> Container {
        let _ = Command::new("docker").args(["rm", "-f", name]).output();
        let out = Command::new("docker")
            .args(["run", "-d", "--name", name, "--label", label, IMAGE])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        Container { name: name.into() }
    }

    fn paused(&self) -> bool {
        let out = Command::new("docker")
            .args(["inspect", "-f", "{{.State.Paused}}", &self.name])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim() == "true"
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", &self.name]).output();
    }
}

/// Compressible pseudo-text: slow to compress at level 19, so the backup lasts a few seconds.
fn data(root: &Path, mib: usize) {
    fs::create_dir_all(root).unwrap();
    let words = [
        "agent", "session", "token", "reply", "model", "tool", "memory", "channel", "user", "gateway",
    ];
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut text = String::with_capacity(mib << 20);
    while text.len() < mib << 20 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        text.push_str(words[(seed % 10) as usize]);
        text.push_str(&format!(" {} ", seed % 9973));
        if seed.is_multiple_of(13) {
            text.push('\n');
        }
    }
    fs::write(root.join("transcript.jsonl"), text).unwrap();
}

fn backup(state: &Path, src: &Path, dest: &Path, public: &str, label: &str, max: &str) -> Command {
    let mut cmd = sidecar(state);
    cmd.env("SIDECAR_BACKUP__PAUSE_LABEL", label)
        .env("SIDECAR_BACKUP__PAUSE_MAX_SECONDS", max)
        .env("SIDECAR_BACKUP__THREADS", "1")
        .args(["backup", "--no-progress", "--level", "19", "--source"])
        .arg(src)
        .arg("--to")
        .arg(dest)
        .args(["-r", public])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Wait until `cond` holds while `child` runs; false if the child exits first or time runs out.
fn wait_while_running(child: &mut Child, what: &str, cond: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if cond() {
            return true;
        }
        if child.try_wait().unwrap().is_some() {
            eprintln!("backup ended before: {what}");
            return false;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

fn finish(child: Child) -> (Option<i32>, String) {
    let out = child.wait_with_output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn labelled_containers_are_paused_and_always_unpaused() {
    if !docker_ok() {
        return;
    }
    ensure_image();
    let tmp = tempfile::tempdir().unwrap();
    let tag = format!(
        "{}-{}",
        std::process::id(),
        tmp.path().file_name().unwrap().to_string_lossy()
    );
    let label = format!("sidecar.backup.pause=test-{tag}");
    let app = Container::start(&format!("sidecar-pause-app-{tag}"), &label);
    // Same image, other label: never touched.
    let other = Container::start(
        &format!("sidecar-pause-other-{tag}"),
        "sidecar.backup.pause=someone-else",
    );
    let src = tmp.path().join("data");
    data(&src, 6);
    // Larger than zstd's input buffers, so that a signal soon after the pause lands while the
    // source is still being read.
    let big = tmp.path().join("big");
    data(&big, 40);
    let id = age::x25519::Identity::generate();
    let public = id.to_public().to_string();
    fs::write(tmp.path().join("key.txt"), id.to_string().expose_secret()).unwrap();
    let dest = tmp.path().join("backups");
    let state = tmp.path().join("state");
    let journal = state.join("backup-paused.json");

    // 1. Paused while the source is read, unpaused after.
    let mut child = backup(&state, &src, &dest, &public, &label, "600").spawn().unwrap();
    let saw = wait_while_running(&mut child, "container paused", || app.paused());
    let (code, err) = finish(child);
    assert!(saw, "the container was never seen paused; {err}");
    assert_eq!(code, Some(0), "{err}");
    assert!(!app.paused() && !other.paused());
    assert!(
        err.contains(&format!("paused while reading the source: {}", app.name)),
        "{err}"
    );
    assert!(!journal.exists());

    // 2. SIGTERM mid-backup: the backup is abandoned and the container unpaused.
    let mut child = backup(&state, &big, &dest, &public, &label, "600").spawn().unwrap();
    assert!(wait_while_running(&mut child, "container paused", || app.paused()));
    signal(&child, "-TERM");
    let (code, err) = finish(child);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("interrupted"), "{err}");
    assert!(!app.paused(), "still paused after SIGTERM");
    assert!(!journal.exists());

    // 3. The maximum pause time runs out: unpaused while the backup goes on, with a warning.
    let mut child = backup(&state, &src, &dest, &public, &label, "1").spawn().unwrap();
    assert!(wait_while_running(&mut child, "container paused", || app.paused()));
    let unpaused_early = wait_while_running(&mut child, "container unpaused early", || !app.paused());
    let (code, err) = finish(child);
    assert!(unpaused_early, "{err}");
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("maximum pause time"), "{err}");

    // 4. SIGKILL leaves it paused; the next backup releases it first.
    let mut child = backup(&state, &big, &dest, &public, &label, "600").spawn().unwrap();
    assert!(wait_while_running(&mut child, "container paused", || app.paused()));
    signal(&child, "-KILL");
    let _ = finish(child);
    assert!(app.paused(), "SIGKILL cannot unpause");
    assert!(journal.exists(), "the journal lists what was paused");
    let small = tmp.path().join("small");
    fs::create_dir_all(&small).unwrap();
    fs::write(small.join("a"), b"a").unwrap();
    let (code, err) = finish(backup(&state, &small, &dest, &public, &label, "600").spawn().unwrap());
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("left paused by an interrupted backup"), "{err}");
    assert!(!app.paused() && !journal.exists());
    assert!(!other.paused());
}
