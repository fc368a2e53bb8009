//! Output formats for findings: a table for people, JSON, JSONL and SARIF 2.1.0 for tools.
//! Every format carries rule, location, fingerprint and masked preview; none carries a secret.
use std::io::{self, Write};

use serde_json::json;

use crate::escape::terminal;
use crate::redact::Finding;

pub mod alert;
pub mod audit;
pub mod budget;
pub mod fleet;
pub mod html;
pub mod journal;
pub mod metrics;
pub mod review;
pub mod sink;
pub use audit::{write_audit, AuditFormat};

/// An output format of `sidecar scan`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Aligned columns for a terminal.
    Table,
    /// One JSON array of finding records.
    Json,
    /// One finding record per line.
    Jsonl,
    /// SARIF 2.1.0, for code-scanning dashboards.
    Sarif,
}

/// Write `findings` in `format`.
pub fn write_findings<W: Write>(format: OutputFormat, findings: &[Finding], out: &mut W) -> io::Result<()> {
    match format {
        OutputFormat::Jsonl => {
            for f in findings {
                serde_json::to_writer(&mut *out, f)?;
                out.write_all(b"\n")?;
            }
            Ok(())
        }
        OutputFormat::Json => {
            serde_json::to_writer_pretty(&mut *out, findings)?;
            out.write_all(b"\n")
        }
        OutputFormat::Sarif => {
            serde_json::to_writer_pretty(&mut *out, &sarif(findings))?;
            out.write_all(b"\n")
        }
        OutputFormat::Table => table(findings, out),
    }
}

fn table<W: Write>(findings: &[Finding], out: &mut W) -> io::Result<()> {
    if findings.is_empty() {
        return writeln!(out, "no findings");
    }
    // File names, rule ids and previews come from outside: shown escaped (see `crate::escape`).
    let rows: Vec<[String; 5]> = findings
        .iter()
        .map(|f| {
            let file = terminal(&f.file);
            let loc = if f.end_line != f.line {
                format!("{file}:{}-{}", f.line, f.end_line)
            } else {
                format!("{file}:{}", f.line)
            };
            [
                loc,
                terminal(&f.rule).into_owned(),
                f.severity.as_str().to_string(),
                terminal(&f.preview).into_owned(),
                terminal(short_fingerprint(&f.fingerprint)).into_owned(),
            ]
        })
        .collect();
    let header = ["LOCATION", "RULE", "SEVERITY", "PREVIEW", "FINGERPRINT"];
    let mut widths = header.map(|h| h.chars().count());
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r.iter()) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: [&str; 5], out: &mut W| -> io::Result<()> {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 < cells.len() {
                s.push_str(&format!("{c:<w$}  ", w = widths[i]));
            } else {
                s.push_str(c);
            }
        }
        writeln!(out, "{}", s.trim_end())
    };
    line(header, out)?;
    for r in &rows {
        line([&r[0], &r[1], &r[2], &r[3], &r[4]], out)?;
    }
    Ok(())
}

/// The first 12 characters of a fingerprint, as tables show it (a record read from a file may hold
/// anything there, so characters, not bytes).
pub fn short_fingerprint(fp: &str) -> &str {
    fp.char_indices().nth(12).map_or(fp, |(end, _)| &fp[..end])
}

fn sarif_level(f: &Finding) -> &'static str {
    use crate::redact::Severity::*;
    match f.severity {
        Critical | High => "error",
        Medium => "warning",
        Low => "note",
    }
}

/// The SARIF 2.1.0 log for `findings`.
pub fn sarif(findings: &[Finding]) -> serde_json::Value {
    let mut rule_ids: Vec<&str> = findings.iter().map(|f| f.rule.as_str()).collect();
    rule_ids.sort();
    rule_ids.dedup();
    let rules: Vec<_> = rule_ids
        .iter()
        .map(|id| {
            let f = findings.iter().find(|f| f.rule == *id).expect("id from findings");
            json!({
                "id": id,
                "name": id,
                "shortDescription": {"text": f.description},
                "defaultConfiguration": {"level": sarif_level(f)},
                "properties": {"security-severity": match f.severity {
                    crate::redact::Severity::Critical => "9.5",
                    crate::redact::Severity::High => "8.0",
                    crate::redact::Severity::Medium => "5.0",
                    crate::redact::Severity::Low => "2.0",
                }, "tags": ["security", "secret"]},
            })
        })
        .collect();
    let results: Vec<_> = findings
        .iter()
        .map(|f| {
            json!({
                "ruleId": f.rule,
                "ruleIndex": rule_ids.iter().position(|r| *r == f.rule),
                "level": sarif_level(f),
                "message": {"text": format!("{} found: {} (fingerprint {})", f.description, f.preview, short_fingerprint(&f.fingerprint))},
                "locations": [{"physicalLocation": {
                    "artifactLocation": {"uri": uri(&f.file)},
                    "region": {
                        "startLine": f.line,
                        "endLine": f.end_line,
                        "byteOffset": f.start,
                        "byteLength": f.end - f.start,
                    }
                }}],
                "partialFingerprints": {"sidecarFingerprint/v1": f.fingerprint},
                "properties": {
                    "containerId": f.container_id,
                    "stream": f.stream,
                    "time": f.time,
                    "ranges": f.ranges,
                },
            })
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "sidecar",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            }},
            "columnKind": "utf16CodeUnits",
            "results": results,
        }]
    })
}

fn uri(path: &str) -> String {
    let mut s = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"/-_.~".contains(&b) {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redact::Severity;

    fn finding() -> Finding {
        Finding {
            partial: false,
            schema: 1,
            rule: "github-pat".into(),
            description: "GitHub token".into(),
            severity: Severity::Critical,
            confidence: None,
            file: "logs/a b.log".into(),
            line: 3,
            end_line: 3,
            start: 100,
            end: 140,
            ranges: vec![[100, 140]],
            container_id: None,
            stream: Some("stdout".into()),
            time: None,
            fingerprint: "ab".repeat(32),
            preview: "ghp_********… (40 chars)".into(),
            mask: b"ghp_****".to_vec(),
        }
    }

    #[test]
    fn jsonl_has_the_documented_fields() {
        let mut out = Vec::new();
        write_findings(OutputFormat::Jsonl, &[finding()], &mut out).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        for k in [
            "schema",
            "rule",
            "file",
            "line",
            "end_line",
            "start",
            "end",
            "ranges",
            "fingerprint",
            "preview",
            "stream",
            "severity",
        ] {
            assert!(v.get(k).is_some(), "missing {k}");
        }
        assert!(v.get("mask").is_none());
    }

    #[test]
    fn sarif_shape() {
        let v = sarif(&[finding()]);
        assert_eq!(v["version"], "2.1.0");
        let r = &v["runs"][0]["results"][0];
        assert_eq!(r["ruleId"], "github-pat");
        assert_eq!(r["locations"][0]["physicalLocation"]["region"]["startLine"], 3);
        assert_eq!(
            r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            "logs/a%20b.log"
        );
    }

    #[test]
    fn table_shows_names_from_outside_escaped() {
        let mut f = finding();
        f.file = "logs/\x1b[2J\x1b]0;owned\x07.log".into();
        f.rule = "rule\u{202e}".into();
        f.preview = "ghp_\u{9b}2J****".into();
        f.fingerprint = "é".repeat(20);
        let mut out = Vec::new();
        write_findings(OutputFormat::Table, &[f], &mut out).unwrap();
        let s = String::from_utf8(out).unwrap();
        assert!(!s.contains(['\x1b', '\x07', '\u{9b}', '\u{202e}']), "{s:?}");
        assert!(s.contains("logs/\\x1b[2J\\x1b]0;owned\\x07.log:3"), "{s}");
        assert!(s.contains("rule\\u{202e}") && s.contains("ghp_\\u{9b}2J****"), "{s}");
        assert!(s.contains(&"é".repeat(12)), "the first 12 characters, not bytes: {s}");
    }

    #[test]
    fn table_lists_rows() {
        let mut out = Vec::new();
        write_findings(OutputFormat::Table, &[finding()], &mut out).unwrap();
        let s = String::from_utf8(out).unwrap();
        assert!(s.starts_with("LOCATION"));
        assert!(s.contains("logs/a b.log:3"));
    }
}
