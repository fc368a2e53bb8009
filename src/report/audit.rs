//! Output formats for audit results: a table, JSON (one record per container and check) and
//! SARIF 2.1.0. Evidence never holds a secret (the checks give rule and fingerprint only).
use std::io::{self, Write};

use serde_json::json;

use crate::escape::terminal;
use crate::policy::{CheckResult, Severity, Status, CHECKS};

/// An output format of `sidecar audit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AuditFormat {
    /// Aligned columns for a terminal, failures first.
    Table,
    /// One JSON array of `{container, check, severity, status, evidence, fix[, reason]}`.
    Json,
    /// SARIF 2.1.0, for code-scanning dashboards (failures and accepted risks only).
    Sarif,
}

/// Write `results` in `format`.
pub fn write_audit<W: Write>(format: AuditFormat, results: &[CheckResult], out: &mut W) -> io::Result<()> {
    match format {
        AuditFormat::Json => {
            serde_json::to_writer_pretty(&mut *out, results)?;
            out.write_all(b"\n")
        }
        AuditFormat::Sarif => {
            serde_json::to_writer_pretty(&mut *out, &sarif(results))?;
            out.write_all(b"\n")
        }
        AuditFormat::Table => table(results, out),
    }
}

/// Version of the audit stream's records.
pub const AUDIT_SCHEMA: u32 = 1;
/// The audit stream is rotated (to `.1`, one kept) past this size.
const AUDIT_STREAM_MAX: u64 = 16 << 20;

/// Append `results` to the audit stream at `path` (JSONL, 0600, created with its directory 0700),
/// one record per result with `schema` and `time`, fsynced once per batch.
pub fn append_audit_stream(path: &std::path::Path, results: &[CheckResult], time: &str) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        crate::fsutil::create_private_dir(dir)?;
    }
    if std::fs::metadata(path).is_ok_and(|m| m.len() > AUDIT_STREAM_MAX) {
        let mut old = path.as_os_str().to_owned();
        old.push(".1");
        std::fs::rename(path, old)?;
    }
    let mut buf = Vec::new();
    for r in results {
        let mut v = serde_json::to_value(r)?;
        v["schema"] = json!(AUDIT_SCHEMA);
        v["time"] = json!(time);
        serde_json::to_writer(&mut buf, &v)?;
        buf.push(b'\n');
    }
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(&buf)?;
    f.sync_data()
}

fn rank(s: Status) -> u8 {
    match s {
        Status::Fail => 0,
        Status::Error => 1,
        Status::Accepted => 2,
        Status::Pass => 3,
    }
}

fn table<W: Write>(results: &[CheckResult], out: &mut W) -> io::Result<()> {
    let mut rows: Vec<&CheckResult> = results.iter().collect();
    rows.sort_by(|a, b| {
        rank(a.status)
            .cmp(&rank(b.status))
            .then(b.severity.cmp(&a.severity))
            .then(a.container.cmp(&b.container))
            .then(a.check.cmp(&b.check))
    });
    // Container names, evidence (labels, mounts, image names) and accepted-risk reasons (a label)
    // come from the containers: escaped.
    let cells: Vec<[String; 5]> = rows
        .iter()
        .map(|r| {
            let mut evidence = r.evidence.clone();
            if let Some(reason) = &r.reason {
                evidence.push_str(&format!(" [accepted: {reason}]"));
            } else if r.status == Status::Fail {
                evidence.push_str(&format!(" [fix: {}]", r.fix));
            }
            [
                r.status.as_str().to_uppercase(),
                r.severity.as_str().to_string(),
                terminal(&r.container).into_owned(),
                terminal(&r.check).into_owned(),
                terminal(&evidence).into_owned(),
            ]
        })
        .collect();
    let header = ["STATUS", "SEVERITY", "CONTAINER", "CHECK", "EVIDENCE"];
    let mut widths = header.map(|h| h.len());
    for c in &cells {
        for i in 0..4 {
            widths[i] = widths[i].max(c[i].chars().count());
        }
    }
    let line = |c: [&str; 5], out: &mut W| {
        writeln!(
            out,
            "{:<w0$}  {:<w1$}  {:<w2$}  {:<w3$}  {}",
            c[0],
            c[1],
            c[2],
            c[3],
            c[4],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3]
        )
    };
    line(header, out)?;
    for c in &cells {
        line([&c[0], &c[1], &c[2], &c[3], &c[4]], out)?;
    }
    let count = |s: Status| results.iter().filter(|r| r.status == s).count();
    writeln!(
        out,
        "\n{} checks: {} failed, {} accepted, {} errors, {} passed",
        results.len(),
        count(Status::Fail),
        count(Status::Accepted),
        count(Status::Error),
        count(Status::Pass)
    )
}

fn level(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low => "note",
    }
}

/// The SARIF 2.1.0 log: every check as a rule, every failure or accepted risk as a result
/// (accepted ones carry an external suppression with the reason).
pub fn sarif(results: &[CheckResult]) -> serde_json::Value {
    let rules: Vec<_> = CHECKS
        .iter()
        .map(|c| {
            json!({
                "id": c.id,
                "name": c.id,
                "shortDescription": {"text": c.title},
                "help": {"text": c.fix},
                "defaultConfiguration": {"level": level(c.severity)},
                "properties": {"security-severity": match c.severity {
                    Severity::Critical => "9.5",
                    Severity::High => "8.0",
                    Severity::Medium => "5.0",
                    Severity::Low => "2.0",
                }, "tags": ["security", "docker"]},
            })
        })
        .collect();
    let out: Vec<_> = results
        .iter()
        .filter(|r| matches!(r.status, Status::Fail | Status::Accepted))
        .map(|r| {
            let mut v = json!({
                "ruleId": r.check,
                "ruleIndex": CHECKS.iter().position(|c| c.id == r.check),
                "level": level(r.severity),
                "message": {"text": format!("{}: {} (fix: {})", r.container, r.evidence, r.fix)},
                "locations": [{"logicalLocations": [{"name": r.container, "kind": "resource"}]}],
                "partialFingerprints": {"sidecarAudit/v1": format!("{}/{}", r.container, r.check)},
            });
            if let Some(reason) = &r.reason {
                v["suppressions"] = json!([{"kind": "external", "justification": reason}]);
            }
            v
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "sidecar-audit", "version": env!("CARGO_PKG_VERSION"), "rules": rules}},
            "results": out,
        }]
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{apply_accepted, result, CheckId, Verdict};

    #[test]
    fn formats() {
        let mut r = vec![
            result("bad", CheckId::Privileged, Verdict::fail("Privileged: true")),
            result("good", CheckId::Privileged, Verdict::pass("Privileged: false")),
            result("sidecar", CheckId::DockerSocket, Verdict::fail("mounted")),
        ];
        apply_accepted(&mut r[2..], &["docker-socket".into()], "audit reads the API");
        let mut t = Vec::new();
        write_audit(AuditFormat::Table, &r, &mut t).unwrap();
        let t = String::from_utf8(t).unwrap();
        let first = t.lines().nth(1).unwrap();
        assert!(first.starts_with("FAIL") && first.contains("bad"), "{t}");
        assert!(t.contains("[accepted: audit reads the API]"), "{t}");
        assert!(t.contains("3 checks: 1 failed, 1 accepted, 0 errors, 1 passed"), "{t}");
        let s = sarif(&r);
        let mut hostile = result(
            "\x1b[2Jweb",
            CheckId::Privileged,
            Verdict::fail("label x=\x1b]0;owned\x07"),
        );
        apply_accepted(
            std::slice::from_mut(&mut hostile),
            &["privileged".into()],
            "ok\u{202e}\r\nFAIL",
        );
        let mut t = Vec::new();
        write_audit(AuditFormat::Table, &[hostile], &mut t).unwrap();
        let t = String::from_utf8(t).unwrap();
        assert!(!t.contains(['\x1b', '\x07', '\r', '\u{202e}']), "{t:?}");
        assert!(
            t.contains("\\x1b[2Jweb") && t.contains("[accepted: ok\\u{202e}\\r\\nFAIL]"),
            "{t}"
        );
        let results = s["runs"][0]["results"].as_array().unwrap();
        assert_eq!(results.len(), 2);
        assert_eq!(results[1]["suppressions"][0]["justification"], "audit reads the API");
        let mut j = Vec::new();
        write_audit(AuditFormat::Json, &r, &mut j).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&j).unwrap();
        assert_eq!(v[0]["status"], "fail");
        assert_eq!(v[2]["status"], "accepted");
        assert!(v[0].get("reason").is_none());
    }
}
