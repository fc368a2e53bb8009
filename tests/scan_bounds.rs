//! Bounded memory on huge lines, and a directory that changes while it is scanned.

use std::fs;
use std::io::Write;
use std::time::Duration;

use crate::common::*;

const GROQ: &str = "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";
const OPENAI: &str = "sk-proj-Q3tX9vB2mK7pL4wR8nZ1yH6jF5dS0aG2cV7bN3mQ8xT4eW9uI1oP6lK2jH5gF8dS3aZ7xC4vB";

/// Peak resident memory of a running process, sampled from /proc until it exits.
fn run_measuring_peak_rss(mut cmd: std::process::Command) -> (std::process::Output, u64) {
    let child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let sampler = std::thread::spawn(move || {
        let mut peak = 0u64;
        while let Ok(status) = fs::read_to_string(format!("/proc/{pid}/status")) {
            if let Some(kb) = status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
            {
                peak = peak.max(kb);
            }
            if status.contains("State:\tZ") {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        peak
    });
    let out = child.wait_with_output().unwrap();
    (out, sampler.join().unwrap() * 1024)
}

#[test]
fn a_100_mb_line_is_scanned_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.log");
    let mut f = std::io::BufWriter::new(fs::File::create(&path).unwrap());
    let filler: Vec<u8> = (0..1024u32)
        .map(|i| b"abcdefghij klmnopqrst"[(i % 21) as usize])
        .collect();
    let total = 100 * 1024 * 1024;
    // Secrets near the start, straddling the 1 MiB window boundary, and near the end.
    let plants = [(1000usize, GROQ), ((1 << 20) - 20, OPENAI), (total - 500, GROQ)];
    let mut written = 0usize;
    let mut expected = Vec::new();
    for (at, secret) in plants {
        while written + filler.len() <= at {
            f.write_all(&filler).unwrap();
            written += filler.len();
        }
        f.write_all(&filler[..at - written]).unwrap();
        written = at;
        f.write_all(b" key ").unwrap();
        written += 5;
        expected.push((written as u64, secret));
        f.write_all(secret.as_bytes()).unwrap();
        f.write_all(b" ").unwrap();
        written += secret.len() + 1;
    }
    f.write_all(b"\nsecond line\n").unwrap();
    drop(f);

    let state = dir.path().join("state");
    let mut cmd = sidecar(&state);
    cmd.arg("scan").arg(&path).args(["--format", "jsonl"]);
    let (out, peak) = run_measuring_peak_rss(cmd);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let found = findings(&out.stdout);
    let starts: Vec<(u64, u64)> = found
        .iter()
        .map(|f| (f["start"].as_u64().unwrap(), f["line"].as_u64().unwrap()))
        .collect();
    let want: Vec<(u64, u64)> = expected.iter().map(|(s, _)| (*s, 1)).collect();
    assert_eq!(starts, want);
    for (f, (_, secret)) in found.iter().zip(&expected) {
        assert_eq!(
            f["end"].as_u64().unwrap() - f["start"].as_u64().unwrap(),
            secret.len() as u64
        );
    }
    assert!(String::from_utf8_lossy(&out.stderr).contains("huge.log:1: line longer than"));
    assert!(peak > 0 && peak <= 64 << 20, "peak RSS {} MiB", peak >> 20);
}

#[test]
fn a_directory_that_changes_during_the_scan_is_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("logs");
    fs::create_dir(&root).unwrap();
    let mut line = docker_line(
        b"steady traffic with a token word in it\n",
        "stdout",
        "2026-11-26T20:18:57Z",
    );
    line.extend(docker_line(
        format!("key {OPENAI}\n").as_bytes(),
        "stdout",
        "2026-11-26T20:18:57Z",
    ));
    let body = line.repeat(4000);
    for i in 0..120 {
        fs::write(root.join(format!("c{i:03}-json.log")), &body).unwrap();
    }
    let state = dir.path().join("state");
    let child = sidecar(&state)
        .arg("scan")
        .arg(&root)
        .args(["--format", "jsonl", "-j", "1"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Delete files and add new ones while the scan runs.
    for i in (0..120).rev().step_by(2) {
        let _ = fs::remove_file(root.join(format!("c{i:03}-json.log")));
        fs::write(root.join(format!("new{i:03}-json.log")), &body[..body.len() / 2]).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("error"), "{stderr}");
    assert!(!findings(&out.stdout).is_empty());
}
