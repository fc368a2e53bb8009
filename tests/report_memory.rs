//! Bounded memory over many finding records, measured on the real binary (VmHWM of the process,
//! polled while it runs): `sidecar report` folds records into one item per secret as it reads, and
//! the guard folds rotated findings files into a summary it streams, never holds (a summary of
//! many distinct secrets once made the guard run out of memory at every start, and stop masking).
#![allow(clippy::disallowed_macros)] // test output

use std::io::{BufWriter, Write};
use std::process::Stdio;
use std::time::Duration;

use crate::common::sidecar;

/// Write `records` occurrence records of `distinct` secrets (as the guard writes them) into
/// `<state>/findings/findings.jsonl`; returns the file's size.
fn write_findings(state: &std::path::Path, records: u64, distinct: u64) -> u64 {
    write_findings_as(state, "findings.jsonl", records, distinct)
}

/// [`write_findings`] into `<state>/findings/<name>`.
fn write_findings_as(state: &std::path::Path, name: &str, records: u64, distinct: u64) -> u64 {
    let dir = state.join("findings");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    let mut out = BufWriter::new(std::fs::File::create(&path).unwrap());
    let id = "ab".repeat(32);
    for i in 0..records {
        let fp = format!("{:064x}", i % distinct + 1);
        let (s, n) = (i % 50, i % 1_000_000_000);
        writeln!(
            out,
            r#"{{"schema":1,"rule":"github-pat","description":"GitHub token: classic personal, OAuth, user-to-server, server-to-server (also the stateless ghs_<app id>_<JWT> form), refresh; the CRC32 checksum raises confidence, it does not decide","severity":"critical","confidence":"checksum","file":"/var/lib/docker/containers/{id}/{id}-json.log","line":{i},"end_line":{i},"start":{i},"end":{e},"ranges":[[{i},{e}]],"container_id":"{id}","stream":"stdout","time":"2026-12-04T15:05:{s:02}.{n:09}Z","fingerprint":"{fp}","preview":"ghp_********… (40 chars)","container":"noisy-{c}","image":"example:1"}}"#,
            e = i + 40,
            c = i % 7,
        )
        .unwrap();
    }
    out.flush().unwrap();
    std::fs::metadata(&path).unwrap().len()
}

/// The peak RSS (VmHWM, KiB) of the process `pid`, or None when it is gone.
fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
}

/// Run `sidecar report` on `state` and return (its exit code, stdout, its peak RSS in KiB).
fn report_peak_kib(state: &std::path::Path) -> (Option<i32>, Vec<u8>, u64) {
    let out_path = state.join("report.json");
    let mut child = sidecar(state)
        .args(["report", "--status", "all", "--format", "json"])
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut peak = 0;
    let code = loop {
        // VmHWM only grows: the last reading before the exit is the peak up to that moment.
        if let Some(kib) = vm_hwm_kib(child.id()) {
            peak = peak.max(kib);
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    (code, std::fs::read(&out_path).unwrap(), peak)
}

#[test]
fn the_report_over_many_records_stays_within_a_fixed_memory_bound() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path();
    // 150 000 records (about 130 MB) of 1 000 secrets: the whole file would not fit in the bound.
    let (records, distinct) = (150_000u64, 1_000u64);
    let size = write_findings(state, records, distinct);
    assert!(size > 100 << 20, "{size} bytes");
    let (code, stdout, peak_kib) = report_peak_kib(state);
    assert_eq!(code, Some(1), "new findings: exit 1");
    let items: Vec<serde_json::Value> = match serde_json::from_slice::<serde_json::Value>(&stdout).unwrap() {
        serde_json::Value::Object(m) => m["items"].as_array().unwrap().clone(),
        v => panic!("unexpected report shape: {v}"),
    };
    assert_eq!(items.len() as u64, distinct);
    let total: u64 = items.iter().map(|i| i["count"].as_u64().unwrap()).sum();
    assert_eq!(total, records, "every occurrence counted");
    // The report's own footprint (binary, rules, 1 000 items) is a few MiB; holding the records
    // would take several times the file's 130 MB.
    eprintln!(
        "report over {records} records ({} MB): peak RSS {} KiB",
        size >> 20,
        peak_kib
    );
    assert!(peak_kib > 0, "the process was measured");
    assert!(
        peak_kib < 48 << 10,
        "peak RSS {peak_kib} KiB over 48 MiB for {records} records"
    );
}

#[test]
fn the_guard_folds_a_large_summary_without_holding_it() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    std::fs::create_dir_all(state.join("findings")).unwrap();
    std::fs::set_permissions(&state, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    // A summary of 150 000 distinct secrets (about 130 MB), and three rotated files: with one kept,
    // the guard folds two into the summary as it starts.
    let old_summary = "secrets-20260101T000000.000000000Z.jsonl";
    let size = write_findings_as(&state, old_summary, 150_000, 150_000);
    assert!(size > 100 << 20, "{size} bytes");
    for (i, stamp) in [
        "20260102T000000.000000000Z",
        "20260103T000000.000000000Z",
        "20260104T000000.000000000Z",
    ]
    .iter()
    .enumerate()
    {
        write_findings_as(&state, &format!("findings-{stamp}.jsonl"), 100 + i as u64, 10);
    }
    let docker = tmp.path().join("docker");
    std::fs::create_dir_all(docker.join("containers")).unwrap();
    let mut child = sidecar(&state)
        .env("SIDECAR_DOCKER_ROOT", &docker)
        .env("SIDECAR_GUARD__FINDINGS_KEEP", "1")
        .env("SIDECAR_RUN__AUDIT_MINUTES", "0")
        .env("SIDECAR_RUN__ENFORCE_MINUTES", "0")
        .env("SIDECAR_RUN__BACKUP", "false")
        .arg("run")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut peak = 0;
    let start = std::time::Instant::now();
    let folded = loop {
        if let Some(kib) = vm_hwm_kib(child.id()) {
            peak = peak.max(kib);
        }
        let done = !state.join("findings").join(old_summary).exists()
            && std::fs::read_dir(state.join("findings"))
                .unwrap()
                .flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with("secrets-20260103"));
        if done || start.elapsed() > Duration::from_secs(120) {
            break done;
        }
        if child.try_wait().unwrap().is_some() {
            break false;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    if let Some(kib) = vm_hwm_kib(child.id()) {
        peak = peak.max(kib);
    }
    let _ = child.kill();
    let status = child.wait().unwrap();
    assert!(folded, "the fold did not finish (sidecar run: {status})");
    // Every distinct secret is still there, once.
    let summary = std::fs::read_dir(state.join("findings"))
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().starts_with("secrets-"))
        .unwrap()
        .path();
    let lines = std::io::BufRead::lines(std::io::BufReader::new(std::fs::File::open(&summary).unwrap())).count();
    assert_eq!(lines, 150_000);
    eprintln!("guard fold over a {} MB summary: peak RSS {peak} KiB", size >> 20);
    assert!(
        peak < 64 << 10,
        "peak RSS {peak} KiB over 64 MiB while folding a {size}-byte summary"
    );
}
