//! Output formats: findings of `sidecar scan` (table, JSON, JSONL, SARIF), the reviewer report of
//! `sidecar report` (table, JSON, CSV, SARIF, HTML) and audit results of `sidecar audit` (table,
//! JSON, SARIF; see [`audit`]). Pure: values in, bytes out; the records come from
//! `crate::findings`, which never imports this module. Every format carries rule, location,
//! fingerprint and masked preview; none carries a secret. Text from outside (file and container
//! names, rule ids, previews, notes) is escaped for where it goes (`crate::escape`, [`html::esc`]).
use std::io::{self, Write};

use serde::Serialize;

use crate::findings::audit_stream::AuditRecord;
use crate::findings::group::{Item, ItemStatus};
use crate::redact::Finding;

pub mod audit;
pub mod csv;
pub mod html;
pub mod sarif;
pub mod table;
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
        OutputFormat::Json => write_json(findings, out),
        OutputFormat::Sarif => write_json(&sarif::findings(findings), out),
        OutputFormat::Table => table::findings(findings, out),
    }
}

/// Output formats of `sidecar report`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReviewFormat {
    /// Aligned columns, then the audit posture.
    Table,
    /// `{"items": [...], "audit": [...], "damaged_records": N}`.
    Json,
    /// The items only, one row each (RFC 4180); a text cell a spreadsheet would read as a formula
    /// gets a `'` in front, control characters are shown escaped.
    Csv,
    /// SARIF 2.1.0: one result per secret, acknowledged ones as suppressed.
    Sarif,
    /// One self-contained HTML page (no external assets): totals, findings per day and rule, a
    /// sortable and filterable table, triage notes, the audit posture.
    Html,
}

/// What `sidecar report` shows: the grouped items, the latest audit result per container and check
/// (the posture), and how many damaged finding records were skipped.
#[derive(Debug, Clone, Copy)]
pub struct Review<'a> {
    /// The items (one per secret), in report order.
    pub items: &'a [Item],
    /// The latest audit results.
    pub audit: &'a [AuditRecord],
    /// Damaged finding records skipped while reading.
    pub damaged: u64,
}

/// Write the report.
pub fn write_review<W: Write>(format: ReviewFormat, review: &Review<'_>, out: &mut W) -> io::Result<()> {
    match format {
        ReviewFormat::Json => write_json(
            &serde_json::json!({"items": review.items, "audit": review.audit, "damaged_records": review.damaged}),
            out,
        ),
        ReviewFormat::Sarif => write_json(&sarif::items(review.items), out),
        ReviewFormat::Html => out.write_all(html::page(review).as_bytes()),
        ReviewFormat::Csv => csv::items(review.items, out),
        ReviewFormat::Table => table::review(review, out),
    }
}

/// `value` as pretty JSON and a newline.
fn write_json<W: Write, T: Serialize + ?Sized>(value: &T, out: &mut W) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value)?;
    out.write_all(b"\n")
}

/// An item's review status in words (tables and CSV).
fn status_text(i: &Item) -> String {
    match (i.status, i.again_after_ack) {
        (ItemStatus::New, true) => "new (again after ack)".into(),
        (ItemStatus::New, false) => "new".into(),
        (ItemStatus::Acked, _) => "acked".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::findings::group::{group, parse_time, Filter};
    use crate::findings::read::{finding_files, read_findings};
    use crate::findings::record::FindingRecord;
    use crate::findings::triage::{Ack, Triage};
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
        let v = sarif::findings(&[finding()]);
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

    fn review(items: &[Item], damaged: u64) -> Review<'_> {
        Review {
            items,
            audit: &[],
            damaged,
        }
    }

    fn record(fp: &str, rule: &str, time: &str, container: &str) -> String {
        serde_json::json!({
            "schema": 1, "rule": rule, "description": "d", "severity": "high", "file": "f", "line": 1,
            "end_line": 1, "start": 0, "end": 10, "ranges": [[0, 10]], "container_id": "c".repeat(64),
            "time": time, "fingerprint": fp, "preview": "sk-****(51)", "container": container, "image": "img"
        })
        .to_string()
    }

    #[test]
    fn groups_filters_acks_and_reads_gzip_and_damage() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("findings");
        std::fs::create_dir(&dir).unwrap();
        let a = "a".repeat(64);
        let b = "b".repeat(64);
        std::fs::write(
            dir.join("findings.jsonl.1"),
            format!(
                "{}\n{}\nnot json\n",
                record(&a, "openai-api-key", "2026-11-01T10:00:00.5Z", "openclaw"),
                record(&b, "github-pat", "2026-11-02T10:00:00Z", "worker")
            ),
        )
        .unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        writeln!(gz, "{}", record(&a, "openai-api-key", "2026-11-03T10:00:00Z", "caddy")).unwrap();
        let mut bytes = gz.finish().unwrap();
        std::fs::write(dir.join("findings.jsonl.2.gz"), &bytes).unwrap();
        bytes.truncate(bytes.len() - 6);
        std::fs::write(dir.join("findings.jsonl.3.gz"), &bytes).unwrap(); // truncated gzip
        let files = finding_files(&dir).unwrap();
        let mut recs = Vec::new();
        let damaged = read_findings(&files, |r| recs.push(r)).unwrap();
        assert_eq!(damaged, 2, "the bad line and the truncated gzip");
        let items = group(recs.clone(), &Filter::default(), &Triage::default());
        assert_eq!(items.len(), 2);
        let ia = items.iter().find(|i| i.fingerprint == a).unwrap();
        assert!(ia.count >= 2);
        assert_eq!(ia.first_seen, "2026-11-01T10:00:00.5Z");
        assert_eq!(ia.last_seen, "2026-11-03T10:00:00Z");
        assert!(ia.containers.contains("openclaw") && ia.containers.contains("caddy"));

        let f = Filter {
            since: Some(parse_time("2026-11-02").unwrap()),
            ..Default::default()
        };
        let items = group(recs.clone(), &f, &Triage::default());
        let ia = items.iter().find(|i| i.fingerprint == a).unwrap();
        assert_eq!(ia.first_seen, "2026-11-03T10:00:00Z");
        let f = Filter {
            containers: vec!["worker".into()],
            ..Default::default()
        };
        assert_eq!(group(recs.clone(), &f, &Triage::default()).len(), 1);

        let mut triage = Triage::default();
        triage.acks.insert(
            b.clone(),
            Ack {
                note: "rotated".into(),
                by: "alice".into(),
                at: "2026-11-05T00:00:00Z".into(),
            },
        );
        triage.acks.insert(
            a.clone(),
            Ack {
                note: "rotated".into(),
                by: "alice".into(),
                at: "2026-11-02T00:00:00Z".into(),
            },
        );
        let items = group(recs, &Filter::default(), &triage);
        let ib = items.iter().find(|i| i.fingerprint == b).unwrap();
        assert_eq!(ib.status, ItemStatus::Acked);
        let ia = items.iter().find(|i| i.fingerprint == a).unwrap();
        assert_eq!(ia.status, ItemStatus::New, "seen again after the ack");
        assert!(ia.again_after_ack);

        let mut csv = Vec::new();
        write_review(ReviewFormat::Csv, &review(&items, 0), &mut csv).unwrap();
        let csv = String::from_utf8(csv).unwrap();
        assert_eq!(csv.lines().count(), 3);
        assert!(csv.contains("new (again after ack)"));
        let mut sar = Vec::new();
        write_review(ReviewFormat::Sarif, &review(&items, 0), &mut sar).unwrap();
        let sar: serde_json::Value = serde_json::from_slice(&sar).unwrap();
        let results = sar["runs"][0]["results"].as_array().unwrap();
        assert_eq!(results.len(), 2);
        let rb = results
            .iter()
            .find(|r| r["partialFingerprints"]["sidecarFingerprint/v1"] == b.as_str())
            .unwrap();
        assert_eq!(
            rb["suppressions"][0]["justification"],
            "rotated (alice, 2026-11-05T00:00:00Z)"
        );
        let ra = results
            .iter()
            .find(|r| r["partialFingerprints"]["sidecarFingerprint/v1"] == a.as_str())
            .unwrap();
        assert!(ra.get("suppressions").is_none(), "seen again: not suppressed");
        let mut t = Vec::new();
        write_review(ReviewFormat::Table, &review(&items, 2), &mut t).unwrap();
        let t = String::from_utf8(t).unwrap();
        assert!(t.starts_with("2 secret(s): 1 new, 1 acknowledged"), "{t}");
        assert!(t.contains("acked by alice"), "{t}");
    }

    #[test]
    fn table_and_csv_show_text_from_outside_escaped_and_neutralised() {
        let record = record(
            &"e".repeat(64),
            "=cmd|' /C calc'!A0",
            "2026-11-01T10:00:00Z",
            "\x1b[2Jweb",
        );
        let r: FindingRecord = serde_json::from_str(&record).unwrap();
        let mut triage = Triage::default();
        triage.acks.insert(
            "e".repeat(64),
            Ack {
                note: "@SUM(1+1)\x1b]0;owned\x07".into(),
                by: "-1".into(),
                at: "2026-11-02T00:00:00Z".into(),
            },
        );
        let items = group([r], &Filter::default(), &triage);
        let mut t = Vec::new();
        write_review(ReviewFormat::Table, &review(&items, 0), &mut t).unwrap();
        let t = String::from_utf8(t).unwrap();
        assert!(!t.contains(['\x1b', '\x07']), "{t:?}");
        assert!(
            t.contains("\\x1b[2Jweb") && t.contains("@SUM(1+1)\\x1b]0;owned\\x07"),
            "{t}"
        );
        let mut csv = Vec::new();
        write_review(ReviewFormat::Csv, &review(&items, 0), &mut csv).unwrap();
        let csv = String::from_utf8(csv).unwrap();
        let row = csv.lines().nth(1).unwrap();
        assert!(!csv.contains(['\x1b', '\x07']), "{csv:?}");
        assert_eq!(
            row,
            format!(
                "{},'=cmd|' /C calc'!A0,high,acked,1,2026-11-01T10:00:00Z,2026-11-01T10:00:00Z,\\x1b[2Jweb,sk-****(51),\"'@SUM(1+1)\\x1b]0;owned\\x07\",'-1,2026-11-02T00:00:00Z",
                "e".repeat(64)
            )
        );
    }
}
