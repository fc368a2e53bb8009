//! `sidecar report` on findings written by the real scanner: grouping by secret, the formats,
//! triage (`ack`, `unack`, seen again after an ack), gzip-rotated finding files, and never a secret.
#![allow(clippy::disallowed_macros)] // test output; a dead stderr is not tested here

use std::fs;

use crate::common::{assert_no_secret, docker_line, findings_state, github_token, run, sidecar};

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn report_groups_by_secret_and_triage_sticks_until_the_secret_returns() {
    let tmp = tempfile::tempdir().unwrap();
    let id = "d".repeat(64);
    let logs = tmp.path().join("containers").join(&id);
    let token = github_token("Zq3xT7wK9mB2vN5cR8yL4pF6hJ1dG0");
    let other = github_token("Aa1Bb2Cc3Dd4Ee5Ff6Gg7Hh8Ii9Jj0");
    // The findings, as the scanner writes them, into the state directory.
    let state = findings_state(
        tmp.path(),
        &id,
        &[
            (format!("push with {token}\n"), "2026-11-01T10:00:00.000000001Z"),
            ("ok\n".to_string(), "2026-11-01T10:00:01Z"),
            (format!("retry with {token}\n"), "2026-11-02T10:00:00Z"),
            (format!("other {other}\n"), "2026-11-03T10:00:00Z"),
        ],
        None,
    );
    let findings = state.join("findings");

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

/// The requests a test webhook received: the status it answered, and the body.
type Received = std::sync::Arc<std::sync::Mutex<Vec<(u16, Vec<u8>)>>>;

/// A local webhook: answers 500 to the first `fail_first` requests, then 200; records the bodies.
fn webhook(fail_first: usize) -> (u16, Received) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut len = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0u8; len];
            reader.read_exact(&mut body).unwrap();
            let mut log = log.lock().unwrap();
            let status = if log.len() < fail_first { 500 } else { 200 };
            log.push((status, body));
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    });
    (port, seen)
}

#[test]
fn alerts_post_once_per_new_secret_with_retries_and_never_the_secret() {
    let tmp = tempfile::tempdir().unwrap();
    let token = github_token("Zq3xT7wK9mB2vN5cR8yL4pF6hJ1dG0");
    let other = github_token("Aa1Bb2Cc3Dd4Ee5Ff6Gg7Hh8Ii9Jj0");
    let state = findings_state(
        tmp.path(),
        &"e".repeat(64),
        &[
            (format!("use {token}\n"), "2026-11-01T10:00:00Z"),
            (format!("use {token}\n"), "2026-11-02T10:00:00Z"),
            (format!("use {other}\n"), "2026-11-03T10:00:00Z"),
        ],
        None,
    );

    let (port, seen) = webhook(1);
    let url = format!("http://127.0.0.1:{port}/hook/T000/SECRETPATH");
    let alert = |url: &str| {
        run(sidecar(&state)
            .env("SIDECAR_ALERTS__WEBHOOK_URL", url)
            .env("SIDECAR_ALERTS__BACKOFF_SECONDS", "0")
            .env("SIDECAR_ALERTS__ATTEMPTS", "3")
            .args(["report", "alert"]))
    };
    let out = alert(&url);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout(&out).contains("2 alert(s) sent"), "{}", stdout(&out));
    let got = seen.lock().unwrap().clone();
    assert_eq!(
        got.len(),
        3,
        "one failed attempt retried, then one POST per secret (not per occurrence)"
    );
    assert_eq!(got[0].0, 500);
    let mut fps = std::collections::BTreeSet::new();
    for (_, body) in &got {
        assert_no_secret(body, &[&token, &other], "alert payload");
        let v: serde_json::Value = serde_json::from_slice(body).unwrap();
        assert!(
            v["text"].as_str().unwrap().contains("new secret found: github-pat"),
            "{v}"
        );
        fps.insert(v["fingerprint"].as_str().unwrap().to_string());
    }
    assert_eq!(fps.len(), 2);
    // Sent once: nothing the second time.
    let out = alert(&url);
    assert!(stdout(&out).contains("0 alert(s) sent"));
    assert_eq!(seen.lock().unwrap().len(), 3);

    // An unreachable webhook: exit 2, and the URL (a credential) is in no message.
    fs::remove_file(state.join("alerted.json")).unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = alert(&format!("http://127.0.0.1:{closed}/hook/T000/SECRETPATH"));
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("connection failed") && !err.contains("SECRETPATH"),
        "{err}"
    );
    let out = run(sidecar(&state)
        .env("SIDECAR_ALERTS__WEBHOOK_URL", &url)
        .args(["config", "show"]));
    assert!(
        !stdout(&out).contains("SECRETPATH"),
        "config show prints the webhook URL"
    );
}

/// Debian's chromium, required in CI (.ci/run installs it).
fn chromium() -> Option<&'static str> {
    let found = std::process::Command::new("chromium")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "chromium is required in CI (.ci/run installs it with apt-get)"
        );
        eprintln!("skipped: chromium not installed");
        return None;
    }
    Some("chromium")
}

#[test]
fn html_report_loads_in_headless_chromium_and_shows_the_rows() {
    let Some(browser) = chromium() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let token = github_token("Zq3xT7wK9mB2vN5cR8yL4pF6hJ1dG0");
    let other = github_token("Aa1Bb2Cc3Dd4Ee5Ff6Gg7Hh8Ii9Jj0");
    let state = findings_state(
        tmp.path(),
        &"f".repeat(64),
        &[
            (format!("a {token}\n"), "2026-11-01T10:00:00Z"),
            (format!("b {token}\n"), "2026-11-02T10:00:00Z"),
            (format!("c {other}\n"), "2026-11-02T11:00:00Z"),
        ],
        None,
    );
    let v: serde_json::Value =
        serde_json::from_slice(&run(sidecar(&state).args(["report", "--format", "json"])).stdout).unwrap();
    let fp = v["items"][0]["fingerprint"].as_str().unwrap().to_string();
    let out = run(sidecar(&state).args(["report", "ack", &fp, "--note", "rotated <b>now</b>", "--by", "bob"]));
    assert_eq!(out.status.code(), Some(0));

    let page = tmp.path().join("report.html");
    let out = run(sidecar(&state)
        .args(["report", "--format", "html", "--output"])
        .arg(&page));
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let html = fs::read(&page).unwrap();
    assert_no_secret(&html, &[&token, &other], "html report");

    let profile = tmp.path().join("chromium-profile");
    let out = std::process::Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let dom = String::from_utf8_lossy(&out.stdout);
    let log = String::from_utf8_lossy(&out.stderr);
    for bad in ["Uncaught", ":ERROR:CONSOLE"] {
        assert!(!log.contains(bad), "page error in the console: {log}");
    }
    assert_eq!(dom.matches("<tr class=\"item ").count(), 2, "{dom}");
    assert!(
        dom.contains("<span id=\"shown\">2</span>"),
        "the script ran and counted the rows: {dom}"
    );
    assert!(
        dom.contains("rotated &lt;b&gt;now&lt;/b&gt;") && dom.contains("bob"),
        "triage note, escaped"
    );
    assert_eq!(dom.matches("<rect ").count(), 2, "one bar per day");
}

/// Finding records and triage notes are files anyone with access to the state directory (or a
/// fleet destination) could have written: a container name, file path or rule id holding terminal
/// escapes or a spreadsheet formula is shown escaped in the table and neutralised in the CSV.
#[test]
fn hostile_names_are_escaped_in_the_table_and_neutralised_in_the_csv() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    fs::create_dir_all(state.join("findings")).unwrap();
    let fp = "f".repeat(64);
    let record = serde_json::json!({
        "schema": 1, "rule": "=cmd|' /C calc'!A0", "description": "d\u{1b}[2J", "severity": "high",
        "file": "/var/lib/docker/containers/x/\u{1b}[2J\u{1b}]0;owned\u{7}.log", "line": 1, "end_line": 1,
        "start": 0, "end": 10, "ranges": [[0, 10]], "container_id": "c".repeat(64),
        "time": "2026-11-01T10:00:00Z", "fingerprint": fp, "preview": "sk-****\u{9b}2J",
        "container": "@SUM(1+1)\u{1b}[2J", "image": "img"
    });
    fs::write(state.join("findings/findings.jsonl"), format!("{record}\n")).unwrap();
    let triage = serde_json::json!({"version": 1, "acks": {fp.clone(): {
        "note": "+1\u{1b}[2J", "by": "-x", "at": "2026-11-02T00:00:00Z"}}});
    fs::write(state.join("triage.json"), triage.to_string()).unwrap();

    let out = run(sidecar(&state).args(["report", "--format", "table"]));
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!out.stdout.contains(&0x1b) && !out.stderr.contains(&0x1b), "no raw ESC");
    let table = stdout(&out);
    assert!(
        table.contains("@SUM(1+1)\\x1b[2J") && table.contains("sk-****\\u{9b}2J") && table.contains("+1\\x1b[2J"),
        "{table}"
    );

    let out = run(sidecar(&state).args(["report", "--format", "csv"]));
    assert!(!out.stdout.contains(&0x1b), "no raw ESC in the CSV");
    let csv = stdout(&out);
    let row: Vec<&str> = csv.lines().nth(1).unwrap().split(',').collect();
    assert_eq!(row[1], "'=cmd|' /C calc'!A0", "rule: {csv}");
    assert_eq!(row[7], "'@SUM(1+1)\\x1b[2J", "containers: {csv}");
    assert_eq!(row[9..11], ["'+1\\x1b[2J", "'-x"], "triage note and author: {csv}");
}
