//! Output formats for audit results: a table, JSON (one record per container and check) and
//! SARIF 2.1.0 (built by [`super::sarif::audit`]), and the conversion of results into the audit
//! stream's records ([`append_audit_stream`]). Evidence never holds a secret (the checks give rule
//! and fingerprint only).
use std::io::{self, Write};

use crate::escape::terminal;
use crate::findings::audit_stream::{AuditRecord, AUDIT_SCHEMA};
use crate::policy::{CheckResult, Status};

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
        AuditFormat::Json => super::write_json(results, out),
        AuditFormat::Sarif => super::write_json(&super::sarif::audit(results), out),
        AuditFormat::Table => table(results, out),
    }
}

/// Append `results` of the audit that ran at `time` (RFC 3339) to the audit stream at `path` (see
/// [`crate::findings::audit_stream`]): one record per result, fsynced once per batch.
pub fn append_audit_stream(path: &std::path::Path, results: &[CheckResult], time: &str) -> io::Result<()> {
    let records: Vec<AuditRecord> = results.iter().map(|r| record(r, time)).collect();
    crate::findings::audit_stream::append_audit_stream(path, &records)
}

/// The stream's record of `r`.
fn record(r: &CheckResult, time: &str) -> AuditRecord {
    AuditRecord {
        check: r.check.clone(),
        container: r.container.clone(),
        evidence: r.evidence.clone(),
        fix: r.fix.clone(),
        reason: r.reason.clone(),
        schema: AUDIT_SCHEMA,
        severity: r.severity.as_str().to_string(),
        status: r.status.as_str().to_string(),
        time: time.to_string(),
    }
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
        let s = super::super::sarif::audit(&r);
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
