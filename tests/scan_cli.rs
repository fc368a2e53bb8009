//! `sidecar scan` end to end: the real binary on real files.

use std::fs;
use std::io::Write;
use std::path::Path;

use crate::common::*;

const T: &str = "2026-11-26T20:18:57.123456789Z";
const OPENAI: &str = "sk-proj-Q3tX9vB2mK7pL4wR8nZ1yH6jF5dS0aG2cV7bN3mQ8xT4eW9uI1oP6lK2jH5gF8dS3aZ7xC4vB";
const ANTHROPIC: &str =
    "sk-ant-api03-kT7vQ2mX9pL4wR8nZ1yH6jF5dS0aG2cV7bN3mQ8xT4eW9uI1oP6lK2jH5gF8dS3aZ7xC4vBqW2eR5tY8uI0oP3aS6dF9gAA";
const PG_PASSWORD: &str = "Zq8vLm2Rt5Wx";

fn github() -> String {
    github_token("q8W3nZ0rT5vB1xK7mP4sD9fG2hJ6kL")
}

fn write(path: &Path, bytes: &[u8]) {
    if let Some(p) = path.parent() {
        fs::create_dir_all(p).unwrap();
    }
    fs::write(path, bytes).unwrap();
}

/// Decode the `log` values of a json-file, as `docker logs` prints them.
fn docker_logs(file: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for line in file.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let v: serde_json::Value = serde_json::from_slice(line).expect("every line is valid JSON");
        out.extend_from_slice(v["log"].as_str().unwrap().as_bytes());
    }
    out
}

#[test]
fn finds_secrets_in_a_json_file_log_with_exact_ranges_and_masks_them() {
    let dir = tempfile::tempdir().unwrap();
    let id = "a".repeat(64);
    let log = dir.path().join(format!("containers/{id}/{id}-json.log"));
    let gh = github();
    let mut body = Vec::new();
    body.extend(docker_line(b"gateway listening on 127.0.0.1:18789\n", "stdout", T));
    body.extend(docker_line(
        format!("{{\"level\":50,\"msg\":\"provider call failed\",\"apiKey\":\"{OPENAI}\"}}\n").as_bytes(),
        "stderr",
        T,
    ));
    body.extend(docker_line(
        format!("\x1b[33m{gh}\x1b[0m <- token\n").as_bytes(),
        "stdout",
        T,
    ));
    body.extend(docker_line(
        format!("db: postgres://openclaw:{PG_PASSWORD}@db:5432/app & more\n").as_bytes(),
        "stdout",
        T,
    ));
    write(&log, &body);

    let state = dir.path().join("state");
    let out_dir = dir.path().join("masked");
    let out = run(sidecar(&state)
        .arg("scan")
        .arg(dir.path().join("containers"))
        .args(["--format", "jsonl", "--redact-to"])
        .arg(&out_dir));
    assert_eq!(
        out.status.code(),
        Some(1),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let found = findings(&out.stdout);
    let rules: Vec<&str> = found.iter().map(|f| f["rule"].as_str().unwrap()).collect();
    assert_eq!(rules.len(), 3, "{rules:?}");
    for (f, (secret, line)) in found.iter().zip([(OPENAI, 2), (gh.as_str(), 3), (PG_PASSWORD, 4)]) {
        assert_eq!(f["line"], line);
        assert_eq!(f["end_line"], line);
        assert_eq!(f["container_id"], id.as_str());
        let s = f["start"].as_u64().unwrap() as usize;
        let e = f["end"].as_u64().unwrap() as usize;
        assert_eq!(&body[s..e], secret.as_bytes(), "ranges point at the raw secret bytes");
        assert_eq!(f["fingerprint"].as_str().unwrap().len(), 64);
        assert!(f.get("time").is_some() && f.get("stream").is_some());
    }
    assert_eq!(found[1]["rule"], "github-pat");
    assert!(found[1]["preview"].as_str().unwrap().starts_with("ghp_"));

    // The masked copy: same length, every line valid JSON, no secret, prefix readable.
    let masked = fs::read(out_dir.join(format!("{id}/{id}-json.log"))).unwrap();
    assert_eq!(masked.len(), body.len());
    assert_eq!(masked.iter().filter(|&&b| b == b'\n').count(), 4);
    let shown = docker_logs(&masked);
    assert_no_secret(&masked, &[OPENAI, &gh, PG_PASSWORD], "masked copy");
    assert!(String::from_utf8_lossy(&shown).contains("ghp_[github-pat:"));
    assert_no_secret(&out.stdout, &[OPENAI, &gh, PG_PASSWORD], "findings");
    assert_no_secret(&out.stderr, &[OPENAI, &gh, PG_PASSWORD], "stderr");
    // Files sidecar writes are private.
    assert_eq!(
        sidecar::fsutil::mode(&out_dir.join(format!("{id}/{id}-json.log"))).unwrap(),
        0o600
    );
    assert_eq!(sidecar::fsutil::mode(&state).unwrap(), 0o700);

    // A masked file scans clean.
    let again = run(sidecar(&state).arg("scan").arg(&out_dir).args(["--format", "jsonl"]));
    assert_eq!(
        again.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&again.stdout)
    );
}

#[test]
fn a_secret_across_docker_16k_split_maps_to_both_lines() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("split-json.log");
    // Place the key so that it straddles the 16384-byte boundary.
    let mut msg = vec![b'x'; 16384 - 20];
    msg.extend_from_slice(b" k=");
    msg.extend_from_slice(ANTHROPIC.as_bytes());
    msg.extend_from_slice(b" tail");
    let mut body = docker_line(b"before\n", "stdout", T);
    // an interleaved stderr entry between the parts must not break the join
    let split = docker_split(&msg, "stdout", T);
    let first_nl = split.iter().position(|&b| b == b'\n').unwrap() + 1;
    body.extend_from_slice(&split[..first_nl]);
    body.extend(docker_line(b"interleaved on stderr\n", "stderr", T));
    body.extend_from_slice(&split[first_nl..]);
    write(&log, &body);
    let state = dir.path().join("state");
    let out_dir = dir.path().join("masked");
    let out = run(sidecar(&state)
        .arg("scan")
        .arg(&log)
        .args(["--format", "jsonl", "--redact-to"])
        .arg(&out_dir));
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let found = findings(&out.stdout);
    assert_eq!(found.len(), 1, "{found:?}");
    let f = &found[0];
    assert_eq!(f["rule"], "anthropic-api-key");
    assert_eq!(f["line"], 2);
    assert_eq!(f["end_line"], 4);
    let ranges = f["ranges"].as_array().unwrap();
    assert_eq!(ranges.len(), 2);
    let mut joined = Vec::new();
    for r in ranges {
        joined.extend_from_slice(&body[r[0].as_u64().unwrap() as usize..r[1].as_u64().unwrap() as usize]);
    }
    assert_eq!(joined, ANTHROPIC.as_bytes());
    let masked = fs::read(out_dir.join("split-json.log")).unwrap();
    assert_eq!(masked.len(), body.len());
    assert_no_secret(
        &docker_logs(&masked),
        &[ANTHROPIC, &ANTHROPIC[..30], &ANTHROPIC[40..]],
        "masked logs",
    );
}

#[test]
fn secrets_in_a_long_entry_split_in_many_parts_are_found_in_any_part_and_across_joins() {
    // A 20-part entry (about 320 KiB): the keyword search of the joined text reads only the parts
    // whose raw lines held a keyword and the joins between parts. Three secrets: one inside part
    // 9, one whose keyword (`ghp_`) Docker's split cuts in two (no raw line holds it), one at the
    // end of the last part.
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("long-json.log");
    let gh = github();
    let mut msg = vec![b'x'; 16384 * 19 + 200];
    let inside = 16384 * 8 + 5000;
    let across = 16384 * 14 - 2;
    let at_end = msg.len() - OPENAI.len() - 1;
    for (at, s) in [(inside, ANTHROPIC), (across, gh.as_str()), (at_end, OPENAI)] {
        msg[at - 1] = b' ';
        msg[at..at + s.len()].copy_from_slice(s.as_bytes());
        msg[at + s.len()] = b' ';
    }
    let body = docker_split(&msg, "stdout", T);
    assert_eq!(body.iter().filter(|&&b| b == b'\n').count(), 20);
    write(&log, &body);
    let state = dir.path().join("state");
    let out = run(sidecar(&state).arg("scan").arg(&log).args(["--format", "jsonl"]));
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let mut rules: Vec<String> = findings(&out.stdout)
        .iter()
        .map(|f| f["rule"].as_str().unwrap().to_string())
        .collect();
    rules.sort();
    assert_eq!(
        rules,
        ["anthropic-api-key", "github-pat", "openai-api-key"],
        "{rules:?}"
    );
}

#[test]
fn a_keyword_that_looks_inside_base64_on_its_raw_line_is_searched_in_a_long_entry() {
    // On the raw line, Docker's escape `\n` (and the letters after it) make `AKIA` look like part
    // of a base64 run, which the prefilter passes over; in the decoded text a newline ends that
    // run. And once an entry passes the prefilter for another keyword (`password=` in part 0), a
    // keyword inside base64 in another part still triggers its rule. Both parts are searched.
    let dir = tempfile::tempdir().unwrap();
    let aws = "AKIAQ3NCWV6BR4FSP7D4";
    let filler = |n: usize| {
        b"lorem ipsum dolor sit amet "
            .iter()
            .copied()
            .cycle()
            .take(n)
            .collect::<Vec<u8>>()
    };
    let entry = |payloads: &[(usize, String)]| {
        let mut msg = filler(16384 * 4 - 100);
        for (at, p) in payloads {
            msg[at - 1] = b' ';
            msg[*at..at + p.len()].copy_from_slice(p.as_bytes());
            msg[at + p.len()] = b' ';
        }
        docker_split(&msg, "stdout", T)
    };
    let cases = [
        (
            "escaped.log",
            entry(&[(16384 * 2 + 5000, format!("\n/alice/bobkeys/{aws}"))]),
            vec!["aws-access-key-id"],
        ),
        (
            // The same in an entry of one line: the raw line alone is searched for keywords.
            "escaped-single.log",
            docker_split(format!("GET /x ok\n/alice/bobkeys/{aws} done").as_bytes(), "stdout", T),
            vec!["aws-access-key-id"],
        ),
        (
            "path.log",
            entry(&[
                (3000, "db_password=Hunter2Secret99x".to_string()),
                (16384 * 2 + 5000, format!("/api/v2/users/alice/keys/{aws}")),
            ]),
            vec!["aws-access-key-id", "password"],
        ),
    ];
    for (name, body, want) in cases {
        let log = dir.path().join(name);
        write(&log, &body);
        let out = run(sidecar(&dir.path().join("state"))
            .arg("scan")
            .arg(&log)
            .args(["--format", "jsonl"]));
        let mut rules: Vec<String> = findings(&out.stdout)
            .iter()
            .map(|f| f["rule"].as_str().unwrap().to_string())
            .collect();
        rules.sort();
        assert_eq!(rules, want, "{name}");
    }
}

#[test]
fn a_pem_key_printed_over_several_entries_is_one_finding() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("pem-json.log");
    let mut body = docker_line(b"loaded key:\n", "stdout", T);
    body.extend(docker_line(b"-----BEGIN PRIVATE KEY-----\n", "stdout", T));
    for (i, l) in PEM_BODY.iter().enumerate() {
        body.extend(docker_line(format!("{l}\n").as_bytes(), "stdout", T));
        if i == 1 {
            body.extend(docker_line(b"unrelated stderr line\n", "stderr", T));
        }
    }
    body.extend(docker_line(b"-----END PRIVATE KEY-----\n", "stdout", T));
    write(&log, &body);
    let state = dir.path().join("state");
    let out_dir = dir.path().join("masked");
    let out = run(sidecar(&state)
        .arg("scan")
        .arg(&log)
        .args(["--format", "jsonl", "--redact-to"])
        .arg(&out_dir));
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let found = findings(&out.stdout);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["rule"], "private-key-pem");
    assert_eq!(found[0]["line"], 3);
    assert_eq!(found[0]["end_line"], 7);
    let masked = fs::read(out_dir.join("pem-json.log")).unwrap();
    assert_eq!(masked.len(), body.len());
    let shown = docker_logs(&masked);
    assert_no_secret(&shown, &PEM_BODY, "masked logs");
    // Lines stay lines: docker logs shows as many lines as before.
    assert_eq!(shown.iter().filter(|&&b| b == b'\n').count(), 8);
    assert!(String::from_utf8_lossy(&shown).contains("-----BEGIN PRIVATE KEY-----\n"));
}

#[test]
fn malformed_lines_are_reported_and_still_scanned() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("bad-json.log");
    let gh = github();
    let mut body = docker_line(b"ok\n", "stdout", T);
    body.extend_from_slice(format!("{{\"log\":\"truncated {gh}\n").as_bytes());
    body.extend_from_slice(b"{\"log\":\"bad escape \\x\",\"stream\":\"stdout\",\"time\":\"t\"}\n");
    body.extend(docker_line(format!("later {OPENAI}\n").as_bytes(), "stdout", T));
    write(&log, &body);
    let state = dir.path().join("state");
    let out = run(sidecar(&state).arg("scan").arg(&log).args(["--format", "jsonl"]));
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("{}:2:", log.display())), "{stderr}");
    assert!(stderr.contains(&format!("{}:3:", log.display())), "{stderr}");
    let found = findings(&out.stdout);
    let lines: Vec<u64> = found.iter().map(|f| f["line"].as_u64().unwrap()).collect();
    assert_eq!(lines, vec![2, 4]);
    assert_no_secret(&out.stderr, &[&gh, OPENAI], "stderr");
}

#[test]
fn invalid_utf8_in_text_and_json_is_scanned() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("app.log");
    let mut t = b"\xff\xfe garbage \xc3\x28 ".to_vec();
    t.extend_from_slice(format!("OPENAI_API_KEY={OPENAI}\n").as_bytes());
    t.extend_from_slice(b"\x80\x81 more\n");
    write(&text, &t);
    let json = dir.path().join("c-json.log");
    let mut j = docker_line(b"\xff\xfe raw bytes\n", "stdout", T);
    // Docker writes invalid UTF-8 as \ufffd; a hand-written line may carry raw invalid bytes.
    j.extend_from_slice(b"{\"log\":\"\xff\xfe ");
    j.extend_from_slice(OPENAI.as_bytes());
    j.extend_from_slice(b"\\n\",\"stream\":\"stdout\",\"time\":\"t\"}\n");
    write(&json, &j);
    let state = dir.path().join("state");
    let out = run(sidecar(&state)
        .arg("scan")
        .arg(&text)
        .arg(&json)
        .args(["--format", "jsonl"]));
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let found = findings(&out.stdout);
    assert_eq!(found.len(), 2, "{found:?}");
    for f in &found {
        let bytes = fs::read(f["file"].as_str().unwrap()).unwrap();
        let (s, e) = (
            f["start"].as_u64().unwrap() as usize,
            f["end"].as_u64().unwrap() as usize,
        );
        assert_eq!(&bytes[s..e], OPENAI.as_bytes());
    }
}

#[test]
fn empty_binary_and_missing_inputs() {
    let dir = tempfile::tempdir().unwrap();
    // The scanned tree holds no state directory (its random key could look binary or not).
    let tree = dir.path().join("in");
    write(&tree.join("empty.log"), b"");
    let mut bin = vec![0u8, 1, 2, 3, 0, 0];
    bin.extend_from_slice(OPENAI.as_bytes());
    write(&tree.join("blob.bin"), &bin);
    let state = dir.path().join("state");
    let out = run(sidecar(&state)
        .arg("scan")
        .arg(&tree)
        .args(["--format", "jsonl", "--state-dir"])
        .arg(dir.path().join("st2")));
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("1 binary files skipped"));
    // A missing path is an error (exit 2) while the rest is still scanned and reported.
    write(&dir.path().join("real.log"), format!("token {}\n", github()).as_bytes());
    let out = run(sidecar(&state)
        .arg("scan")
        .arg(dir.path().join("does-not-exist.log"))
        .arg(dir.path().join("real.log"))
        .args(["--format", "jsonl"]));
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(findings(&out.stdout).len(), 1);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("does-not-exist.log: cannot read"), "{stderr}");
}

#[test]
fn unreadable_files_are_errors_and_the_rest_is_scanned() {
    let dir = tempfile::tempdir().unwrap();
    // World-traversable so an unprivileged user can reach the files.
    let root = dir.path().join("tree");
    write(&root.join("a.log"), format!("k {OPENAI}\n").as_bytes());
    write(&root.join("secret.log"), format!("k {}\n", github()).as_bytes());
    use std::os::unix::fs::PermissionsExt;
    for p in [dir.path(), root.as_path()] {
        fs::set_permissions(p, fs::Permissions::from_mode(0o755)).unwrap();
    }
    fs::set_permissions(root.join("a.log"), fs::Permissions::from_mode(0o644)).unwrap();
    fs::set_permissions(root.join("secret.log"), fs::Permissions::from_mode(0o000)).unwrap();
    let state = dir.path().join("state");
    fs::create_dir(&state).unwrap();
    fs::set_permissions(&state, fs::Permissions::from_mode(0o777)).unwrap();
    let is_root = fs::File::open(root.join("secret.log")).is_ok();
    let mut cmd = if is_root {
        // root reads everything: drop to nobody so permissions apply.
        let mut c = std::process::Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"]).arg(bin());
        c.env("SIDECAR_STATE_DIR", &state);
        c
    } else {
        sidecar(&state)
    };
    let out = cmd.arg("scan").arg(&root).args(["--format", "jsonl"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("secret.log: cannot open"), "{stderr}");
    assert!(stderr.contains("Permission denied"), "{stderr}");
    assert_eq!(findings(&out.stdout).len(), 1);
}

#[test]
fn gzip_logs_are_scanned_and_bad_gzip_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let id = "b".repeat(64);
    let plain = {
        let mut b = docker_line(b"rotated\n", "stdout", T);
        b.extend(docker_line(
            format!("Authorization: Bearer {OPENAI}\n").as_bytes(),
            "stdout",
            T,
        ));
        b
    };
    let gz_path = dir.path().join(format!("{id}-json.log.1.gz"));
    let mut enc = flate2::GzBuilder::new()
        .extra(br#"{"lastTime":"2026-11-26T20:18:57.123456789Z"}"#.to_vec())
        .write(fs::File::create(&gz_path).unwrap(), flate2::Compression::default());
    enc.write_all(&plain).unwrap();
    enc.finish().unwrap();
    let state = dir.path().join("state");
    let out_dir = dir.path().join("masked");
    let out = run(sidecar(&state)
        .arg("scan")
        .arg(&gz_path)
        .args(["--format", "jsonl", "--redact-to"])
        .arg(&out_dir));
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let found = findings(&out.stdout);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["line"], 2);
    // The masked copy is gzip with the same Extra field, and holds the masked text.
    let masked_gz = out_dir.join(format!("{id}-json.log.1.gz"));
    let dec = flate2::read::GzDecoder::new(fs::File::open(&masked_gz).unwrap());
    assert_eq!(
        dec.header().unwrap().extra().unwrap(),
        br#"{"lastTime":"2026-11-26T20:18:57.123456789Z"}"#
    );
    let mut text = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(fs::File::open(&masked_gz).unwrap()),
        &mut text,
    )
    .unwrap();
    assert_eq!(text.len(), plain.len());
    assert_no_secret(&text, &[OPENAI], "masked gzip");

    // Truncated and corrupted gzip: an error naming the file, the other file still scanned.
    let whole = fs::read(&gz_path).unwrap();
    let truncated = dir.path().join("t-json.log.2.gz");
    write(&truncated, &whole[..whole.len() / 2]);
    let corrupt = dir.path().join("c-json.log.3.gz");
    let mut c = whole.clone();
    let mid = c.len() / 2;
    c[mid] ^= 0xff;
    c[mid + 1] ^= 0x55;
    write(&corrupt, &c);
    let out = run(sidecar(&state)
        .arg("scan")
        .arg(&truncated)
        .arg(&corrupt)
        .arg(&gz_path)
        .args(["--format", "jsonl"]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("t-json.log.2.gz"), "{stderr}");
    assert!(stderr.contains("c-json.log.3.gz"), "{stderr}");
    assert!(findings(&out.stdout)
        .iter()
        .any(|f| f["file"].as_str().unwrap().ends_with(".1.gz")));
    assert_no_secret(&out.stderr, &[OPENAI], "stderr");
}

#[test]
fn stdin_formats_baseline_and_user_rules() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let input = format!("export OPENAI_API_KEY='{OPENAI}'\nACME=acme_live_0f9e8d7c6b5a4f3e2d1c0b9a\n");
    let run_stdin = |args: &[&str]| {
        let mut child = sidecar(&state)
            .arg("scan")
            .arg("-")
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        if let Err(e) = child.stdin.take().unwrap().write_all(input.as_bytes()) {
            // A usage error exits before reading standard input (checked by its output below).
            assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
        }
        child.wait_with_output().unwrap()
    };
    let out = run_stdin(&["--format", "jsonl"]);
    assert_eq!(out.status.code(), Some(1));
    let found = findings(&out.stdout);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["file"], "-");

    // SARIF and JSON are valid documents.
    let sarif: serde_json::Value = serde_json::from_slice(&run_stdin(&["--format", "sarif"]).stdout).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    assert_eq!(sarif["runs"][0]["results"].as_array().unwrap().len(), 1);
    let json: serde_json::Value = serde_json::from_slice(&run_stdin(&["--format", "json"]).stdout).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 1);
    let table = String::from_utf8(run_stdin(&["--format", "table"]).stdout).unwrap();
    assert!(table.contains("openai-api-key"), "{table}");

    // A baseline of the first run silences it.
    let baseline = dir.path().join("baseline.jsonl");
    fs::write(&baseline, &out.stdout).unwrap();
    let out = run_stdin(&["--format", "jsonl", "--baseline", baseline.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));

    // User rules in sidecar's schema and in gitleaks' format.
    let rules = dir.path().join("rules.toml");
    fs::write(
        &rules,
        "[[rule]]\nid = \"acme-key\"\ndescription = \"Acme\"\nkeywords = [\"acme_\"]\nregex = '''acme_live_([0-9a-f]{24})'''\n",
    )
    .unwrap();
    let out = run_stdin(&["--format", "jsonl", "--rules", rules.to_str().unwrap()]);
    let ids: Vec<String> = findings(&out.stdout)
        .iter()
        .map(|f| f["rule"].as_str().unwrap().to_string())
        .collect();
    assert!(ids.contains(&"acme-key".to_string()), "{ids:?}");
    let gl = dir.path().join("gitleaks.toml");
    fs::write(
        &gl,
        "[[rules]]\nid = \"acme-gl\"\nregex = '''acme_live_([0-9a-f]{24})'''\nsecretGroup = 1\nkeywords = [\"acme_live\"]\n",
    )
    .unwrap();
    let out = run_stdin(&["--format", "jsonl", "--gitleaks-config", gl.to_str().unwrap()]);
    let ids: Vec<String> = findings(&out.stdout)
        .iter()
        .map(|f| f["rule"].as_str().unwrap().to_string())
        .collect();
    assert!(ids.contains(&"acme-gl".to_string()), "{ids:?}");

    // --redact-to cannot copy stdin: clear usage error.
    let out = run_stdin(&["--redact-to", dir.path().join("x").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--redact-to cannot copy standard input"));
}

#[test]
fn config_check_show_and_env_overrides() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let out = run(sidecar(&state).args(["config", "show"]));
    assert_eq!(out.status.code(), Some(0));
    let shown = String::from_utf8(out.stdout).unwrap();
    assert!(
        shown.contains(&format!("state_dir = \"{}\"", state.display())),
        "{shown}"
    );
    let cfg = dir.path().join("sidecar.toml");
    fs::write(&cfg, "[scan]\nthreads = 1\n[rules]\ndisable = [\"jwt\"]\n").unwrap();
    let out = run(sidecar(&state).arg("--config").arg(&cfg).args(["config", "check"]));
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    fs::write(&cfg, "[scan]\nthreds = 1\n").unwrap();
    let out = run(sidecar(&state).arg("--config").arg(&cfg).args(["config", "check"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("threds"));
    let out = run(sidecar(&state).env("SIDECAR_SCAN__NOPE", "1").args(["config", "check"]));
    assert_eq!(out.status.code(), Some(2));
    let out = run(sidecar(&state)
        .env("SIDECAR_RULES__DISABLE", "[\"no-such-rule\"]")
        .args(["config", "check"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such-rule"));
    // help is complete
    let out = run(sidecar(&state).args(["scan", "--help"]));
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--format",
        "--output",
        "--redact-to",
        "--rules",
        "--gitleaks-config",
        "--baseline",
        "Exit status",
    ] {
        assert!(help.contains(flag), "scan --help lacks {flag}");
    }
}

#[test]
fn without_paths_scan_reads_the_docker_root_containers() {
    let dir = tempfile::tempdir().unwrap();
    let id = "c".repeat(64);
    let root = dir.path().join("docker");
    write(
        &root.join(format!("containers/{id}/{id}-json.log")),
        &docker_line(format!("boot with {OPENAI}\n").as_bytes(), "stdout", T),
    );
    let state = dir.path().join("state");
    let out = run(sidecar(&state)
        .env("SIDECAR_DOCKER_ROOT", &root)
        .args(["scan", "--format", "jsonl"]));
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let found = findings(&out.stdout);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["container_id"], id.as_str());
}

/// File names are chosen by whoever writes the scanned directory: one holding terminal escapes
/// (clear the screen, set the window title) and a newline is shown escaped in the table and in the
/// warnings, never raw.
#[test]
fn hostile_file_names_are_shown_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    let name = "x\u{1b}[2J\u{1b}]0;owned\u{7}\nerror: forged\u{202e}.log";
    let mut body = format!("{{\"log\":\"cut {OPENAI}\n").into_bytes();
    body.extend(docker_line(format!("token {}\n", github()).as_bytes(), "stdout", T));
    write(&logs.join(name), &body);
    let state = dir.path().join("state");
    let out = run(sidecar(&state)
        .arg("scan")
        .arg(&logs)
        .args(["--format", "table", "--no-progress"]));
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    for (what, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        let text = String::from_utf8_lossy(bytes);
        assert!(!text.contains(['\u{1b}', '\u{7}', '\u{202e}']), "{what}: {text:?}");
        assert!(
            text.contains("x\\x1b[2J\\x1b]0;owned\\x07\\nerror: forged\\u{202e}.log"),
            "{what}: {text}"
        );
        assert!(!text.lines().any(|l| l.starts_with("error: forged")), "{what}: {text}");
    }
}

/// Run with a deadline: a read that never ends (a device, a FIFO without a writer) must not hang
/// the test. Returns the output and how long it took.
fn run_within(
    cmd: &mut std::process::Command,
    deadline: std::time::Duration,
) -> (std::process::Output, std::time::Duration) {
    use std::process::Stdio;
    let started = std::time::Instant::now();
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > deadline {
            child.kill().unwrap();
            panic!("still running after {deadline:?}: {cmd:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    (child.wait_with_output().unwrap(), started.elapsed())
}

/// `--config /dev/zero` read forever (1.6 GB after 10 s): every file read as configuration, rules,
/// baseline or key must be a regular file under its size limit, and the error names it and says
/// what to do.
#[test]
fn config_rules_and_baseline_must_be_regular_files_under_their_limit() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let fifo = dir.path().join("fifo");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let big = dir.path().join("big.toml");
    fs::write(&big, format!("# {}\n", "x".repeat(1 << 20))).unwrap();
    let cases: Vec<(Vec<std::ffi::OsString>, String)> = vec![
        (
            vec!["--config".into(), "/dev/zero".into()],
            "config file /dev/zero: is a character device, not a regular file; give the path of the config file itself"
                .into(),
        ),
        (
            vec!["--config".into(), "/dev/urandom".into()],
            "config file /dev/urandom: is a character device".into(),
        ),
        (
            vec!["--config".into(), fifo.clone().into()],
            format!(
                "config file {}: is a FIFO (named pipe), not a regular file",
                fifo.display()
            ),
        ),
        (
            vec!["--config".into(), dir.path().into()],
            format!(
                "config file {}: is a directory, not a regular file",
                dir.path().display()
            ),
        ),
        (
            vec!["--config".into(), big.clone().into()],
            format!(
                "config file {}: larger than 1 MiB, the limit for a config file; is this the right file?",
                big.display()
            ),
        ),
    ];
    for (args, expect) in cases {
        let (out, took) = run_within(
            sidecar(&state).args(&args).args(["config", "check"]),
            std::time::Duration::from_secs(10),
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(&expect), "{args:?}: {stderr}");
        assert!(took < std::time::Duration::from_secs(2), "{args:?} took {took:?}");
    }
    // Rule files and baselines, through `scan` (the input itself is a small regular file).
    let input = dir.path().join("in.log");
    fs::write(&input, b"nothing here\n").unwrap();
    for (flag, path, expect) in [
        (
            "--rules",
            Path::new("/dev/zero"),
            "rule file /dev/zero: is a character device",
        ),
        ("--gitleaks-config", fifo.as_path(), "gitleaks config"),
        ("--baseline", fifo.as_path(), "baseline"),
        (
            "--baseline",
            Path::new("/dev/urandom"),
            "baseline /dev/urandom: is a character device",
        ),
    ] {
        let (out, took) = run_within(
            sidecar(&state).arg("scan").arg(flag).arg(path).arg(&input),
            std::time::Duration::from_secs(10),
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag}: {stderr}");
        assert!(
            stderr.contains(expect) && stderr.contains("not a regular file"),
            "{flag}: {stderr}"
        );
        assert!(took < std::time::Duration::from_secs(2), "{flag} took {took:?}");
    }
}
