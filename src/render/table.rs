//! Aligned text tables for a terminal: the findings of `sidecar scan` and the reviewer report of
//! `sidecar report` (items, then the audit posture). Everything from outside (file and container
//! names, rule ids, previews, notes, evidence) is shown escaped by `crate::escape::terminal`, so a
//! record cannot move the cursor, retitle the terminal or reorder the line.
use std::io::{self, Write};

use super::{status_text, Review};
use crate::escape::terminal;
use crate::findings::audit_stream::AuditRecord;
use crate::findings::group::{Item, ItemStatus};
use crate::findings::record::short_fingerprint;
use crate::redact::Finding;

/// `sidecar scan --format table`: one row per finding ("no findings" when there are none).
pub fn findings<W: Write>(findings: &[Finding], out: &mut W) -> io::Result<()> {
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

/// `sidecar report --format table`: totals, one row per item (and its acknowledgement), then the
/// audit posture (the checks failing or accepted).
pub fn review<W: Write>(review: &Review<'_>, out: &mut W) -> io::Result<()> {
    let Review { items, audit, damaged } = *review;
    let new = items.iter().filter(|i| i.status == ItemStatus::New).count();
    writeln!(
        out,
        "{} secret(s): {new} new, {} acknowledged; {} occurrence(s){}",
        items.len(),
        items.len() - new,
        items.iter().map(|i| i.count).sum::<u64>(),
        if damaged > 0 {
            format!("; {damaged} damaged record(s) skipped")
        } else {
            String::new()
        }
    )?;
    items_table(items, out)?;
    posture(audit, out)
}

/// The items' rows, with a header when there are any.
fn items_table<W: Write>(items: &[Item], out: &mut W) -> io::Result<()> {
    if !items.is_empty() {
        writeln!(out)?;
        writeln!(
            out,
            "{:<12}  {:<26}  {:<8}  {:<21}  {:>5}  {:<20}  {:<30}  PREVIEW",
            "FINGERPRINT", "RULE", "SEVERITY", "STATUS", "COUNT", "LAST SEEN", "CONTAINERS"
        )?;
    }
    // Rule ids, container names, previews and notes come from records and people: escaped.
    for i in items {
        writeln!(
            out,
            "{:<12}  {:<26}  {:<8}  {:<21}  {:>5}  {:<20}  {:<30}  {}",
            terminal(short_fingerprint(&i.fingerprint)),
            terminal(&i.rule),
            i.severity.as_str(),
            status_text(i),
            i.count,
            terminal(&i.last_seen.chars().take(19).collect::<String>()),
            terminal(&i.containers.iter().cloned().collect::<Vec<_>>().join(",")),
            terminal(&i.preview)
        )?;
        if let Some(a) = &i.ack {
            writeln!(
                out,
                "{:<12}  acked by {} at {}: {}",
                "",
                terminal(&a.by),
                terminal(&a.at),
                terminal(&a.note)
            )?;
        }
    }
    Ok(())
}

/// The audit posture: how many checks, and the ones failing or accepted (nothing without results).
fn posture<W: Write>(audit: &[AuditRecord], out: &mut W) -> io::Result<()> {
    if audit.is_empty() {
        return Ok(());
    }
    let bad: Vec<&AuditRecord> = audit.iter().filter(|r| r.is_failing_or_accepted()).collect();
    writeln!(
        out,
        "\nPosture (latest audit results): {} checks, {} failing or accepted",
        audit.len(),
        bad.len()
    )?;
    for r in bad {
        writeln!(
            out,
            "  {:<8}  {:<6}  {:<24}  {:<20}  {}",
            terminal(&r.status),
            terminal(&r.severity),
            terminal(&r.container),
            terminal(&r.check),
            terminal(&r.evidence)
        )?;
    }
    Ok(())
}
