//! `sidecar report` on findings written by the real scanner: grouping by secret, the formats,
//! triage (`ack`, `unack`, seen again after an ack), gzip-rotated finding files, and never a secret.
mod common;

use std::fs;

use common::{assert_no_secret, docker_line, github_token, run, sidecar};

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn report_groups_by_secret_and_triage_sticks_until_the_secret_returns() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let id = "d".repeat(64);
    let logs = tmp.path().join("containers").join(&id);
    fs::create_dir_all(&logs).unwrap();
    let token = github_token("Zq3xT7wK9mB2vN5cR8yL4pF6hJ1dG0");
    let other = github_token("Aa1Bb2Cc3Dd4Ee5Ff6Gg7Hh8Ii9Jj0");
    let mut log = Vec::new();
    log.extend(docker_line(
        format!("push with {token}\n").as_bytes(),
        "stdout",
        "2026-11-01T10:00:00.000000001Z",
    ));
    log.extend(docker_line(b"ok\n", "stdout", "2026-11-01T10:00:01Z"));
    log.extend(docker_line(
        format!("retry with {token}\n").as_bytes(),
        "stderr",
        "2026-11-02T10:00:00Z",
    ));
    log.extend(docker_line(
        format!("other {other}\n").as_bytes(),
        "stdout",
        "2026-11-03T10:00:00Z",
    ));
    fs::write(logs.join(format!("{id}-json.log")), &log).unwrap();

    // The findings, as the scanner writes them, into the state directory.
    let findings = state.join("findings");
    fs::create_dir_all(&findings).unwrap();
    let out = run(sidecar(&state)
        .args(["scan", "--format", "jsonl", "--output"])
        .arg(findings.join("findings.jsonl"))
        .arg(tmp.path().join("containers")));
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));

    let report = |args: &[&str]| run(sidecar(&state).arg("report").args(args));
    let out = report(&["--format", "json"]);
    assert_eq!(out.status.code(), Some(1), "new items: exit 1");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let items = v["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "two secrets");
    let first = items
        .iter()
        .find(|i| i["count"] == 2)
        .expect("the repeated token is one item");
    assert_eq!(first["first_seen"], "2026-11-01T10:00:00.000000001Z");
    assert_eq!(first["last_seen"], "2026-11-02T10:00:00Z");
    assert_eq!(first["status"], "new");
    let fp = first["fingerprint"].as_str().unwrap().to_string();
    for format in ["table", "json", "csv", "sarif"] {
        let out = report(&["--format", format]);
        assert_no_secret(
            &[out.stdout.as_slice(), out.stderr.as_slice()].concat(),
            &[&token, &other],
            format,
        );
    }

    // Acknowledge by a prefix: it leaves the "new" view.
    let out = report(&["ack", &fp[..12], "--note", "key rotated", "--by", "alice"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let out = report(&["--status", "acked", "--format", "csv"]);
    let csv = stdout(&out);
    assert!(
        csv.contains(&fp) && csv.contains("key rotated") && csv.contains("alice"),
        "{csv}"
    );
    let out = report(&["--status", "new", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["items"].as_array().unwrap().len(), 1, "only the other secret is new");
    assert_eq!(
        fs::metadata(state.join("triage.json"))
            .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777)
            .unwrap(),
        0o600
    );

    // The secret shows up again after the ack (a later log, in a rotated, compressed findings file).
    let later = "2099-01-01T00:00:00Z";
    let mut log2 = Vec::new();
    log2.extend(docker_line(format!("again {token}\n").as_bytes(), "stdout", later));
    fs::write(logs.join(format!("{id}-json.log")), &log2).unwrap();
    let out = run(sidecar(&state)
        .args(["scan", "--format", "jsonl"])
        .arg(tmp.path().join("containers")));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &out.stdout).unwrap();
    fs::write(findings.join("findings.jsonl.1.gz"), gz.finish().unwrap()).unwrap();
    let out = report(&["--status", "new", "--format", "table"]);
    let table = stdout(&out);
    assert!(
        table.contains(&fp[..12]) && table.contains("new (again after ack)"),
        "{table}"
    );

    // Filters, and unack.
    let out = report(&["--since", "2026-11-03", "--until", "2026-11-04", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["items"].as_array().unwrap().len(), 1);
    let out = report(&["unack", &fp[..10]]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let out = report(&["ack", "short", "--note", "x"]);
    assert_eq!(out.status.code(), Some(2));
    let out = report(&["--since", "yesterday"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--since"));
}
