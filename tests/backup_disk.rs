//! Backups and restores against a full and a read-only file system (small tmpfs mounts, as root).
//! Outside CI, a machine where mounting is not allowed skips these; in CI they must run.
#![allow(clippy::disallowed_macros)] // test output; a dead stderr is not tested here
use crate::common;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{run, sidecar};
use age::secrecy::ExposeSecret;

struct Mount(PathBuf);

impl Mount {
    fn tmpfs(at: &Path, opts: &str) -> Option<Mount> {
        fs::create_dir_all(at).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", opts, "tmpfs"])
            .arg(at)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must be able to mount a tmpfs (run the tests as root)"
            );
            eprintln!("skipped: cannot mount a tmpfs here (not root?)");
            return None;
        }
        Some(Mount(at.to_path_buf()))
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn keys(dir: &Path) -> (String, PathBuf) {
    let id = age::x25519::Identity::generate();
    let path = dir.join("key.txt");
    fs::write(&path, format!("{}\n", id.to_string().expose_secret())).unwrap();
    (id.to_public().to_string(), path)
}

/// 4 MiB of incompressible data plus a small file.
fn data(root: &Path) {
    fs::create_dir_all(root.join("media")).unwrap();
    let mut f = fs::File::create(root.join("media/big.bin")).unwrap();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut buf = vec![0u8; 1 << 20];
    for _ in 0..4 {
        for b in buf.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        f.write_all(&buf).unwrap();
    }
    fs::write(root.join("openclaw.json"), b"{}\n").unwrap();
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn a_full_destination_fails_cleanly_and_keeps_earlier_backups() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("data");
    data(&src);
    let (public, _) = keys(tmp.path());
    let dest = tmp.path().join("small");
    let Some(_m) = Mount::tmpfs(&dest, "size=2m") else {
        return;
    };
    fs::write(
        dest.join("openclaw_data-20261101T000000Z.tar.zst.age"),
        b"an earlier backup",
    )
    .unwrap();
    let out = run(sidecar(tmp.path())
        .args(["backup", "--source"])
        .arg(&src)
        .arg("--to")
        .arg(&dest)
        .args(["-r", &public]));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("No space left"), "{}", stderr(&out));
    let names: Vec<String> = fs::read_dir(&dest)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        vec!["openclaw_data-20261101T000000Z.tar.zst.age".to_string()],
        "no partial left"
    );
    assert_eq!(
        fs::read(dest.join("openclaw_data-20261101T000000Z.tar.zst.age")).unwrap(),
        b"an earlier backup"
    );
}

#[test]
fn a_read_only_destination_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("data");
    data(&src);
    let (public, _) = keys(tmp.path());
    let dest = tmp.path().join("ro");
    let Some(_m) = Mount::tmpfs(&dest, "size=8m,ro") else {
        return;
    };
    let out = run(sidecar(tmp.path())
        .args(["backup", "--source"])
        .arg(&src)
        .arg("--to")
        .arg(&dest)
        .args(["-r", &public]));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("Read-only file system"), "{}", stderr(&out));
}

#[test]
fn a_full_restore_target_is_left_as_it_was() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("data");
    data(&src);
    let (public, identity) = keys(tmp.path());
    let out = run(sidecar(tmp.path())
        .args(["backup", "--source"])
        .arg(&src)
        .arg("--to")
        .arg(tmp.path().join("b"))
        .args(["-r", &public]));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let backup = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let target = tmp.path().join("target");
    let Some(_m) = Mount::tmpfs(&target, "size=2m") else {
        return;
    };
    let out = run(sidecar(tmp.path())
        .args(["restore", &backup, "--to"])
        .arg(&target)
        .arg("--identity")
        .arg(&identity));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("No space left"), "{}", stderr(&out));
    assert_eq!(
        fs::read_dir(&target).unwrap().count(),
        0,
        "staging removed, target as it was"
    );
}

/// The log guard with its state directory on a full file system: the secret is still masked in the
/// log, the error is reported, and the report holds no half record.
#[test]
fn the_guard_masks_even_when_the_report_cannot_be_written() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let Some(_mount) = Mount::tmpfs(&state, "size=64k,mode=0700") else {
        return;
    };
    let id = "e".repeat(64);
    let dir = tmp.path().join("docker/containers").join(&id);
    fs::create_dir_all(&dir).unwrap();
    fs::write(
        dir.join("config.v2.json"),
        format!(r#"{{"ID":"{id}","Name":"/gw","Config":{{"Image":"gw:1"}}}}"#),
    )
    .unwrap();
    let log = dir.join(format!("{id}-json.log"));
    let token = common::github_token("Zq3xT7wK9mB2vN5cR8yL4pF6hJ1dG0");
    let mut body = common::docker_line(b"start\n", "stdout", "2026-11-27T00:00:00.000000001Z");
    body.extend(common::docker_line(
        format!("token {token}\n").as_bytes(),
        "stdout",
        "2026-11-27T00:00:00.000000002Z",
    ));
    fs::write(&log, &body).unwrap();
    // Fill the state file system (the fingerprint key is created first, then the disk is full).
    let out = run(sidecar(&state).args(["scan", "/dev/null"]));
    assert!(out.status.code().is_some());
    let mut filler = fs::File::create(state.join("filler")).unwrap();
    let chunk = vec![0u8; 4096];
    while filler.write_all(&chunk).is_ok() {}
    let _ = filler.sync_all();
    let mut child = sidecar(&state)
        .env("SIDECAR_DOCKER_ROOT", tmp.path().join("docker"))
        .env("SIDECAR_RUN__AUDIT_MINUTES", "0")
        .env("SIDECAR_RUN__ENFORCE_MINUTES", "0")
        .arg("run")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while String::from_utf8_lossy(&fs::read(&log).unwrap()).contains(&token) {
        assert!(start.elapsed().as_secs() < 30, "the secret was not masked");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let _ = child.wait();
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert_eq!(fs::read(&log).unwrap().len(), body.len(), "same length");
    assert!(err.contains("missing from the report"), "{err}");
    assert!(!err.contains(&token[4..]), "no secret in the output");
    let report = fs::read(state.join("findings/findings.jsonl")).unwrap_or_default();
    assert!(report.is_empty() || report.ends_with(b"\n"), "no half record");
}
