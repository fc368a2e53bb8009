//! CSV (RFC 4180) of the reviewer report: one row per item, the items only. Every text cell may
//! come from outside (records are files, notes are typed by people): it is neutralised (a cell a
//! spreadsheet would read as a formula gets a `'` in front) and quoted by `escape::csv_cell`.
use std::io::{self, Write};

use super::status_text;
use crate::escape::csv_cell;
use crate::findings::group::Item;

/// `sidecar report --format csv`: a header, then one row per item.
pub fn items<W: Write>(items: &[Item], out: &mut W) -> io::Result<()> {
    writeln!(
        out,
        "fingerprint,rule,severity,status,count,first_seen,last_seen,containers,preview,ack_note,ack_by,ack_at"
    )?;
    for i in items {
        // The count is a number: the one cell not passed through `csv_cell`.
        let ack = i.ack.as_ref();
        let containers = i.containers.iter().cloned().collect::<Vec<_>>().join(" ");
        let text = [i.fingerprint.as_str(), &i.rule, i.severity.as_str(), &status_text(i)]
            .map(csv_cell)
            .join(",");
        let rest = [
            i.first_seen.as_str(),
            &i.last_seen,
            &containers,
            &i.preview,
            ack.map_or("", |a| &a.note),
            ack.map_or("", |a| &a.by),
            ack.map_or("", |a| &a.at),
        ]
        .map(csv_cell)
        .join(",");
        writeln!(out, "{text},{},{rest}", i.count)?;
    }
    Ok(())
}
