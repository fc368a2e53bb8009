//! The reviewer report as one self-contained HTML page: no external script, style, font or image,
//! so it opens offline and can be mailed or archived. Every value is HTML-escaped (container names
//! and triage notes are not trusted), and nothing in it is a secret.
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use super::Review;
use crate::findings::audit_stream::AuditRecord;
use crate::findings::group::{Item, ItemStatus};
use crate::findings::record::short_fingerprint;

/// Escape text for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

const PALETTE: &[&str] = &[
    "#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
];

/// Stacked bars of occurrences per day, one colour per rule, with a legend (inline SVG).
fn chart(items: &[Item]) -> String {
    let mut per_day: BTreeMap<&str, BTreeMap<&str, u64>> = BTreeMap::new();
    let mut rules: BTreeSet<&str> = BTreeSet::new();
    for i in items {
        rules.insert(&i.rule);
        for (day, n) in &i.per_day {
            *per_day.entry(day).or_default().entry(&i.rule).or_insert(0) += n;
        }
    }
    if per_day.is_empty() {
        return "<p>No dated occurrences.</p>".into();
    }
    let rules: Vec<&str> = rules.into_iter().collect();
    let colour = |r: &str| PALETTE[rules.iter().position(|x| *x == r).unwrap_or(0) % PALETTE.len()];
    let max = per_day
        .values()
        .map(|m| m.values().sum::<u64>())
        .max()
        .unwrap_or(1)
        .max(1);
    let (h, bar, gap, left, bottom) = (160.0, 18.0, 6.0, 40.0, 80.0);
    let width = left + per_day.len() as f64 * (bar + gap) + 70.0;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" aria-label=\"findings per day and rule\" width=\"{width}\" height=\"{}\">",
        h + bottom + 10.0
    );
    let _ = write!(
        svg,
        "<text x=\"0\" y=\"12\" font-size=\"11\">{max}</text><text x=\"0\" y=\"{}\" font-size=\"11\">0</text>",
        h + 10.0
    );
    for (k, (day, by_rule)) in per_day.iter().enumerate() {
        let x = left + k as f64 * (bar + gap);
        let mut y = h + 10.0;
        for r in &rules {
            let n = by_rule.get(r).copied().unwrap_or(0);
            if n == 0 {
                continue;
            }
            let bh = n as f64 / max as f64 * h;
            y -= bh;
            let _ = write!(
                svg,
                "<rect x=\"{x}\" y=\"{y:.1}\" width=\"{bar}\" height=\"{bh:.1}\" fill=\"{}\"><title>{} {}: {n}</title></rect>",
                colour(r),
                esc(day),
                esc(r)
            );
        }
        let _ = write!(
            svg,
            "<text x=\"{x}\" y=\"{}\" font-size=\"9\" transform=\"rotate(45 {x} {})\">{}</text>",
            h + 22.0,
            h + 22.0,
            esc(day)
        );
    }
    svg.push_str("</svg><p class=\"legend\">");
    for r in &rules {
        let _ = write!(
            svg,
            "<span><i style=\"background:{}\"></i>{}</span> ",
            colour(r),
            esc(r)
        );
    }
    svg.push_str("</p>");
    svg
}

const STYLE: &str = "body{font:14px system-ui,sans-serif;margin:2em;color:#222}h1{font-size:1.4em}
table{border-collapse:collapse;width:100%}th,td{border-bottom:1px solid #ddd;padding:4px 6px;text-align:left;vertical-align:top}
th{cursor:pointer;background:#f4f4f4;user-select:none}th[data-dir]::after{content:attr(data-dir)}
tr.new td:first-child{border-left:4px solid #d62728}tr.acked{color:#777}.legend i{display:inline-block;width:10px;height:10px;margin:0 4px 0 10px}
.totals span{margin-right:2em}td:nth-child(3),td:nth-child(5),td:nth-child(6){white-space:nowrap}.controls{margin:1em 0}code{font-size:12px}.note{font-size:12px;color:#555}";

const SCRIPT: &str = r#"(function(){
var table=document.getElementById('items'),body=table.tBodies[0];
var rows=Array.prototype.slice.call(body.rows);
var q=document.getElementById('q'),st=document.getElementById('status');
function filter(){var t=q.value.toLowerCase(),s=st.value,shown=0;
rows.forEach(function(r){var ok=(s==='all'||r.dataset.status===s)&&r.textContent.toLowerCase().indexOf(t)>=0;
r.style.display=ok?'':'none';if(ok)shown++;});document.getElementById('shown').textContent=shown;}
q.addEventListener('input',filter);st.addEventListener('change',filter);
Array.prototype.forEach.call(table.tHead.rows[0].cells,function(th,col){th.addEventListener('click',function(){
var dir=th.dataset.dir==='▲'?-1:1;Array.prototype.forEach.call(table.tHead.rows[0].cells,function(h){delete h.dataset.dir;});
th.dataset.dir=dir>0?'▲':'▼';var num=th.dataset.type==='num';
rows.sort(function(a,b){var x=a.cells[col].dataset.key||a.cells[col].textContent,y=b.cells[col].dataset.key||b.cells[col].textContent;
if(num){x=+x;y=+y;}return x<y?-dir:x>y?dir:0;});rows.forEach(function(r){body.appendChild(r);});});});
filter();})();"#;

/// The whole page.
pub fn page(review: &Review<'_>) -> String {
    let Review { items, audit, damaged } = *review;
    let new = items.iter().filter(|i| i.status == ItemStatus::New).count();
    let occurrences: u64 = items.iter().map(|i| i.count).sum();
    let generated = crate::timefmt::rfc3339(std::time::SystemTime::now());
    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>sidecar: flagged secrets</title><style>{STYLE}</style></head><body>"
    );
    let _ = write!(
        h,
        "<h1>Flagged secrets</h1><p class=\"totals\"><span><b id=\"total\">{}</b> secrets</span><span><b>{new}</b> new</span><span><b>{}</b> acknowledged</span><span><b>{occurrences}</b> occurrences</span><span>generated {}</span>{}</p>",
        items.len(),
        items.len() - new,
        esc(&generated),
        if damaged > 0 { format!("<span><b>{damaged}</b> damaged records skipped</span>") } else { String::new() }
    );
    let _ = write!(h, "<h2>Occurrences per day and rule</h2>{}", chart(items));
    items_table(&mut h, items);
    posture(&mut h, audit);
    let _ = writeln!(h, "<script>{SCRIPT}</script></body></html>");
    h
}

/// The sortable, filterable table of the items, with its controls.
fn items_table(h: &mut String, items: &[Item]) {
    let _ = write!(
        h,
        "<h2>Secrets</h2><div class=\"controls\"><input id=\"q\" type=\"search\" placeholder=\"filter (rule, container, preview, note…)\"> <select id=\"status\"><option value=\"all\">all</option><option value=\"new\">new</option><option value=\"acked\">acknowledged</option></select> <span id=\"shown\"></span> shown</div>"
    );
    h.push_str("<table id=\"items\"><thead><tr><th>Status</th><th>Severity</th><th>Rule</th><th data-type=\"num\">Count</th><th>First seen</th><th>Last seen</th><th>Containers</th><th>Preview</th><th>Fingerprint</th><th>Triage</th></tr></thead><tbody>");
    for i in items {
        let (status, class) = match (i.status, i.again_after_ack) {
            (ItemStatus::New, true) => ("new (again after ack)", "new"),
            (ItemStatus::New, false) => ("new", "new"),
            (ItemStatus::Acked, _) => ("acknowledged", "acked"),
        };
        let sev_rank = match i.severity.as_str() {
            "critical" => 4,
            "high" => 3,
            "medium" => 2,
            _ => 1,
        };
        let triage = i
            .ack
            .as_ref()
            .map(|a| {
                format!(
                    "<span class=\"note\">{} — {}, {}</span>",
                    esc(&a.note),
                    esc(&a.by),
                    esc(&a.at)
                )
            })
            .unwrap_or_default();
        let _ = write!(
            h,
            "<tr class=\"item {class}\" data-status=\"{class}\"><td>{}</td><td data-key=\"{sev_rank}\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td><code title=\"{}\">{}</code></td><td>{triage}</td></tr>",
            esc(status),
            esc(i.severity.as_str()),
            esc(&i.rule),
            i.count,
            esc(&i.first_seen),
            esc(&i.last_seen),
            esc(&i.containers.iter().cloned().collect::<Vec<_>>().join(", ")),
            esc(&i.preview),
            esc(&i.fingerprint),
            esc(short_fingerprint(&i.fingerprint))
        );
    }
    h.push_str("</tbody></table>");
}

/// The audit posture: how many checks, and a table of the ones failing or accepted (nothing
/// without results).
fn posture(h: &mut String, audit: &[AuditRecord]) {
    if audit.is_empty() {
        return;
    }
    let bad: Vec<&AuditRecord> = audit.iter().filter(|r| r.is_failing_or_accepted()).collect();
    let _ = write!(
        h,
        "<h2>Posture (latest audit)</h2><p>{} checks, {} failing or accepted.</p><table id=\"audit\"><thead><tr><th>Status</th><th>Severity</th><th>Container</th><th>Check</th><th>Evidence</th><th>Fix or reason</th></tr></thead><tbody>",
        audit.len(),
        bad.len()
    );
    for r in bad {
        // An accepted risk shows why it was accepted; a failure, how to fix it.
        let fix = if r.status == "accepted" {
            esc(r.reason.as_deref().unwrap_or(""))
        } else {
            esc(&r.fix)
        };
        let _ = write!(
            h,
            "<tr class=\"check\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{fix}</td></tr>",
            esc(&r.status),
            esc(&r.severity),
            esc(&r.container),
            esc(&r.check),
            esc(&r.evidence)
        );
    }
    h.push_str("</tbody></table>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping() {
        assert_eq!(
            esc("<img src=x onerror='a'>&\""),
            "&lt;img src=x onerror=&#39;a&#39;&gt;&amp;&quot;"
        );
    }

    #[test]
    fn page_is_self_contained_and_escaped() {
        let item = Item {
            fingerprint: "ab".repeat(32),
            rule: "github-pat".into(),
            description: "d".into(),
            severity: crate::redact::Severity::Critical,
            first_seen: "2026-11-01T00:00:00Z".into(),
            last_seen: "2026-11-02T00:00:00Z".into(),
            count: 3,
            containers: ["<script>x</script>".to_string()].into_iter().collect(),
            preview: "ghp_****".into(),
            status: ItemStatus::Acked,
            again_after_ack: false,
            ack: Some(crate::findings::triage::Ack {
                note: "rotated </td><b>".into(),
                by: "alice".into(),
                at: "2026-11-03T00:00:00Z".into(),
            }),
            per_day: [("2026-11-01".to_string(), 2), ("2026-11-02".to_string(), 1)]
                .into_iter()
                .collect(),
        };
        // The fingerprint also goes into an attribute (`title`), the rule into the chart's SVG.
        let mut attr = item.clone();
        attr.fingerprint = "\"><img src=x onerror=alert(1)>".into();
        attr.rule = "r\"/><script>y</script>".into();
        let p = page(&Review {
            items: &[item, attr],
            audit: &[],
            damaged: 0,
        });
        assert!(!p.contains("<script>x</script>") && p.contains("&lt;script&gt;x&lt;/script&gt;"));
        assert!(!p.contains("\"><img") && !p.contains("<script>y"), "{p}");
        assert!(
            p.contains("title=\"&quot;&gt;&lt;img src=x onerror=alert(1)&gt;\""),
            "{p}"
        );
        assert!(p.contains("rotated &lt;/td&gt;&lt;b&gt;"));
        assert_eq!(p.matches("<rect ").count(), 4);
        for external in ["src=\"http", "href=\"http", "@import", "url("] {
            assert!(!p.contains(external), "{external}");
        }
    }
}
