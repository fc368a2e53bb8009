//! The flagged-secret report for reviewers: findings (JSONL, rotated and gzip-compressed files too)
//! grouped by fingerprint, with triage (acknowledged items stay acknowledged until the secret shows
//! up again) and the latest audit posture. Never holds a secret: findings carry only rule, location,
//! fingerprint and masked preview.
use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::escape::{csv_cell, terminal};
use crate::redact::{Finding, Severity};

/// A finding record as the guard writes it: the engine's finding plus the container's name and
/// image (absent in `sidecar scan` output).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FindingRecord {
    /// The finding.
    #[serde(flatten)]
    pub finding: Finding,
    /// Container name.
    #[serde(default)]
    pub container: Option<String>,
    /// Container image.
    #[serde(default)]
    pub image: Option<String>,
    /// Present on an aggregate (a summary record): the occurrences it stands for. Absent: one
    /// occurrence, at the finding's `time`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occurrences: Option<Occurrences>,
    /// On an aggregate the guard wrote at a checkpoint: the generation of the aggregates journal
    /// it empties (see [`super::journal`]); after a crash it tells whether the journal's counts
    /// reached the report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<String>,
}

/// How many times a secret was seen in one file of one container, and when: what a summary record
/// keeps of the occurrence records folded into it (see [`super::sink`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Occurrences {
    /// Occurrences.
    pub count: u64,
    /// Earliest log time (RFC 3339), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_seen: Option<String>,
    /// Latest log time (RFC 3339), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<String>,
    /// Occurrences per day (`YYYY-MM-DD`, UTC) of the ones with a log time.
    #[serde(default)]
    pub per_day: BTreeMap<String, u64>,
}

impl Occurrences {
    /// The occurrences of one plain record.
    pub fn of(f: &Finding) -> Occurrences {
        let mut o = Occurrences {
            count: 1,
            first_seen: f.time.clone(),
            last_seen: f.time.clone(),
            per_day: BTreeMap::new(),
        };
        if let Some(t) = when(f) {
            o.per_day.insert(t.format("%Y-%m-%d").to_string(), 1);
        }
        o
    }

    /// Add `other`'s occurrences.
    pub fn merge(&mut self, other: &Occurrences) {
        self.count += other.count;
        let parsed = |t: &Option<String>| t.as_deref().and_then(|t| DateTime::parse_from_rfc3339(t).ok());
        if let Some(b) = parsed(&other.first_seen) {
            if parsed(&self.first_seen).is_none_or(|a| b < a) {
                self.first_seen.clone_from(&other.first_seen);
            }
        }
        if let Some(b) = parsed(&other.last_seen) {
            if parsed(&self.last_seen).is_none_or(|a| b > a) {
                self.last_seen.clone_from(&other.last_seen);
            }
        }
        for (day, n) in &other.per_day {
            *self.per_day.entry(day.clone()).or_insert(0) += n;
        }
    }
}

/// A reviewer's acknowledgement of one fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    /// What was done ("key rotated").
    pub note: String,
    /// Who acknowledged it.
    pub by: String,
    /// When (RFC 3339 UTC).
    pub at: String,
}

/// The triage state: acknowledgements by fingerprint. Written atomically (0600).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Triage {
    /// Format version.
    #[serde(default)]
    pub version: u32,
    /// Acknowledged fingerprints.
    #[serde(default)]
    pub acks: BTreeMap<String, Ack>,
}

impl Triage {
    /// `<state_dir>/triage.json`.
    pub fn path(state_dir: &Path) -> PathBuf {
        state_dir.join("triage.json")
    }

    /// Load (an absent file is an empty triage).
    pub fn load(state_dir: &Path) -> io::Result<Triage> {
        let path = Self::path(state_dir);
        match crate::fsutil::open_input(&path, crate::fsutil::InputKind::TRIAGE) {
            Ok(f) => serde_json::from_reader(io::BufReader::new(f))
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{}: {e}", path.display()))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Triage::default()),
            Err(e) => Err(e),
        }
    }

    /// Save atomically.
    pub fn save(&self, state_dir: &Path) -> io::Result<()> {
        crate::fsutil::create_private_dir(state_dir)?;
        let mut t = self.clone();
        t.version = 1;
        crate::fsutil::write_atomic(&Self::path(state_dir), &serde_json::to_vec_pretty(&t)?)
    }
}

/// Review status of an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ItemStatus {
    /// Not acknowledged, or seen again after its acknowledgement.
    New,
    /// Acknowledged, and not seen since.
    Acked,
}

/// One secret (one fingerprint) and everywhere it was seen.
#[derive(Debug, Clone, Serialize)]
pub struct Item {
    /// Keyed fingerprint.
    pub fingerprint: String,
    /// Rule id.
    pub rule: String,
    /// Rule description.
    pub description: String,
    /// Severity.
    pub severity: Severity,
    /// Earliest log time it was seen at.
    pub first_seen: String,
    /// Latest log time it was seen at.
    pub last_seen: String,
    /// Occurrences.
    pub count: u64,
    /// Containers (names, else short IDs).
    pub containers: BTreeSet<String>,
    /// Masked preview.
    pub preview: String,
    /// Review status.
    pub status: ItemStatus,
    /// Seen again after it was acknowledged.
    pub again_after_ack: bool,
    /// The acknowledgement.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ack: Option<Ack>,
    /// Occurrences per day (`YYYY-MM-DD` of the log time, UTC).
    pub per_day: BTreeMap<String, u64>,
}

/// Which findings count.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only occurrences at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only occurrences before this time.
    pub until: Option<DateTime<Utc>>,
    /// Only these containers (name, or ID prefix).
    pub containers: Vec<String>,
    /// Only these rules.
    pub rules: Vec<String>,
}

/// Parse `T`: RFC 3339, a date (`2026-11-27`), or an age before now (`24h`, `7d`, `30m`).
pub fn parse_time(t: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Ok(d.with_timezone(&Utc));
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).expect("midnight").and_utc());
    }
    let (num, unit) = t.split_at(t.len().saturating_sub(1));
    let n: i64 = num
        .parse()
        .map_err(|_| format!("{t:?}: expected RFC 3339, YYYY-MM-DD or an age like 24h, 7d"))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        "w" => n * 7 * 86_400,
        _ => return Err(format!("{t:?}: the age unit must be s, m, h, d or w")),
    };
    Ok(Utc::now() - chrono::Duration::seconds(secs))
}

fn when(f: &Finding) -> Option<DateTime<Utc>> {
    f.time
        .as_deref()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|d| d.with_timezone(&Utc))
}

/// The finding files under `dir` that `sidecar report` reads, oldest name first: the newest summary
/// (`secrets-<stamp>.jsonl`), the rotated occurrence files not folded into it yet
/// (`findings-<stamp>.jsonl`, names after the summary's stamp), other `*.jsonl*` files (rotated
/// `.N`, compressed `.gz`, copies) and the current `findings.jsonl`. Temporary (dot-named) files,
/// older summaries and folded files a crash left behind are skipped (the guard removes them).
pub fn finding_files(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let n = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            !n.starts_with('.') && n.contains(".jsonl") && p.is_file()
        })
        .collect();
    v.sort();
    let stamp_of = |p: &PathBuf, prefix: &str| -> Option<String> {
        let n = p.file_name()?.to_str()?;
        Some(n.strip_prefix(prefix)?.strip_suffix(".jsonl")?.to_string())
    };
    let summary = v.iter().filter_map(|p| stamp_of(p, SUMMARY_PREFIX)).max();
    if let Some(folded) = summary {
        v.retain(|p| match (stamp_of(p, SUMMARY_PREFIX), stamp_of(p, ROTATED_PREFIX)) {
            (Some(s), _) => s == folded,
            (None, Some(r)) => r > folded,
            (None, None) => true,
        });
    }
    Ok(v)
}

/// Every finding record under `dir` (see [`finding_files`]), read while the guard may be rotating
/// and folding the files: when a file vanished under the reader, or the listing changed while it
/// read, it reads again (at most 10 times, then an error). Returns the records and the number of
/// damaged lines; no directory, no records.
pub fn read_findings_dir(dir: &Path) -> io::Result<(Vec<FindingRecord>, u64)> {
    fold_findings_dir(dir, Vec::new, |v, r| v.push(r))
}

/// [`read_findings_dir`] without holding the records: each is passed to `each` with an accumulator
/// made by `init` (made again when the files changed during the reading and it starts over).
pub fn fold_findings_dir<A>(
    dir: &Path,
    mut init: impl FnMut() -> A,
    mut each: impl FnMut(&mut A, FindingRecord),
) -> io::Result<(A, u64)> {
    for attempt in 0..10 {
        if attempt > 0 {
            std::thread::sleep(std::time::Duration::from_millis(20 * attempt));
        }
        let files = match finding_files(dir) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((init(), 0)),
            Err(e) => return Err(e),
        };
        let mut records = init();
        let damaged = match read_findings(&files, |r| each(&mut records, r)) {
            Ok(damaged) => damaged,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if finding_files(dir).is_ok_and(|now| now == files) {
            return Ok((records, damaged));
        }
    }
    Err(io::Error::other(format!(
        "{}: the findings files changed during each of 10 readings (the guard is rotating them); try again",
        dir.display()
    )))
}

/// Name prefix of a summary file: `secrets-<stamp>.jsonl` holds one aggregate record per secret,
/// container and file for every occurrence record up to the rotated file `findings-<stamp>.jsonl`.
pub const SUMMARY_PREFIX: &str = "secrets-";
/// Name prefix of a rotated occurrence file, `findings-<stamp>.jsonl`.
pub const ROTATED_PREFIX: &str = "findings-";

/// Longest finding record accepted (a larger line is reported as damaged, not read whole).
const MAX_RECORD: usize = 1 << 20;

/// Read every finding record of `files` (gzip detected by its magic), calling `each`. Damaged lines
/// are counted, not fatal. Returns the number of damaged lines.
pub fn read_findings(files: &[PathBuf], mut each: impl FnMut(FindingRecord)) -> io::Result<u64> {
    let mut damaged = 0;
    for path in files {
        let file = File::open(path).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        damaged += read_findings_from(file, &mut each)?;
    }
    Ok(damaged)
}

/// Read the finding records of one stream (gzip detected by its magic).
pub fn read_findings_from(src: impl Read, each: &mut dyn FnMut(FindingRecord)) -> io::Result<u64> {
    let mut damaged = 0;
    let mut head = BufReader::new(src);
    let gz = head.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    let mut reader: Box<dyn BufRead + '_> = if gz {
        Box::new(BufReader::new(flate2::bufread::MultiGzDecoder::new(head)))
    } else {
        Box::new(head)
    };
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = match reader.by_ref().take(MAX_RECORD as u64 + 1).read_until(b'\n', &mut line) {
            Ok(n) => n,
            Err(_) => {
                // A truncated or corrupted gzip member: what was read counts, the rest is damaged.
                damaged += 1;
                break;
            }
        };
        if n == 0 {
            break;
        }
        if line.len() > MAX_RECORD {
            damaged += 1;
            // Skip the rest of the overlong line, in bounded pieces.
            while !line.ends_with(b"\n") {
                line.clear();
                match reader.by_ref().take(64 << 10).read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
            continue;
        }
        let text = line.strip_suffix(b"\n").unwrap_or(&line);
        if text.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<FindingRecord>(text) {
            Ok(r) => each(r),
            Err(_) => damaged += 1,
        }
    }
    Ok(damaged)
}

/// Earliest and latest time a fingerprint was seen.
type Span = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// The part of an aggregate inside the filter's time range, by day (a day counts when any of it is
/// inside); `None` when nothing is.
fn within(o: &Occurrences, filter: &Filter) -> Option<Occurrences> {
    let since = filter.since.map(|t| t.format("%Y-%m-%d").to_string());
    let until = filter.until.map(|t| t.format("%Y-%m-%d").to_string());
    let per_day: BTreeMap<String, u64> = o
        .per_day
        .iter()
        .filter(|(d, _)| since.as_ref().is_none_or(|s| *d >= s) && until.as_ref().is_none_or(|u| *d <= u))
        .map(|(d, n)| (d.clone(), *n))
        .collect();
    let count: u64 = per_day.values().sum();
    if count == 0 {
        return None;
    }
    let first = per_day.keys().next().cloned();
    let last = per_day.keys().next_back().cloned();
    let clamp = |day: Option<String>, t: &Option<String>, end: bool| -> Option<String> {
        // Keep the exact time when it falls on the first (last) day kept; else that day's edge.
        let day = day?;
        match t {
            Some(t) if t.starts_with(&day) => Some(t.clone()),
            _ if end => Some(format!("{day}T23:59:59Z")),
            _ => Some(format!("{day}T00:00:00Z")),
        }
    };
    Some(Occurrences {
        count,
        first_seen: clamp(first, &o.first_seen, false),
        last_seen: clamp(last, &o.last_seen, true),
        per_day,
    })
}

/// Group findings by fingerprint, apply the filter and the triage; most severe, then newest first.
pub fn group(records: impl IntoIterator<Item = FindingRecord>, filter: &Filter, triage: &Triage) -> Vec<Item> {
    let mut g = Grouper::new(filter);
    for r in records {
        g.add(r);
    }
    g.finish(triage)
}

/// [`group`] one record at a time: memory grows with the distinct secrets (and their containers
/// and days), not with the records, so a report over millions of occurrences stays small.
pub struct Grouper<'f> {
    filter: &'f Filter,
    items: BTreeMap<String, Item>,
    seen: BTreeMap<String, Span>,
}

impl<'f> Grouper<'f> {
    /// An empty grouping under `filter`.
    pub fn new(filter: &'f Filter) -> Self {
        Grouper {
            filter,
            items: BTreeMap::new(),
            seen: BTreeMap::new(),
        }
    }

    /// Take one record into its secret's item (or drop it when the filter says so).
    pub fn add(&mut self, r: FindingRecord) {
        let filter = self.filter;
        let f = &r.finding;
        let occ = match &r.occurrences {
            // An aggregate under a time filter counts the days inside it (day granularity).
            Some(o) if filter.since.is_some() || filter.until.is_some() => match within(o, filter) {
                Some(o) => Some(o),
                None => return,
            },
            Some(o) => Some(o.clone()),
            None => {
                let t = when(f);
                if let (Some(since), Some(t)) = (filter.since, t) {
                    if t < since {
                        return;
                    }
                }
                if let (Some(until), Some(t)) = (filter.until, t) {
                    if t >= until {
                        return;
                    }
                }
                None
            }
        };
        let container = r
            .container
            .clone()
            .or_else(|| f.container_id.as_ref().map(|id| id.chars().take(12).collect()))
            .unwrap_or_else(|| f.file.clone());
        if !filter.containers.is_empty()
            && !filter.containers.iter().any(|c| {
                r.container.as_deref() == Some(c.as_str())
                    || f.container_id
                        .as_deref()
                        .is_some_and(|id| !c.is_empty() && id.starts_with(c.as_str()))
            })
        {
            return;
        }
        if !filter.rules.is_empty() && !filter.rules.contains(&f.rule) {
            return;
        }
        let item = self.items.entry(f.fingerprint.clone()).or_insert_with(|| Item {
            fingerprint: f.fingerprint.clone(),
            rule: f.rule.clone(),
            description: f.description.clone(),
            severity: f.severity,
            first_seen: String::new(),
            last_seen: String::new(),
            count: 0,
            containers: BTreeSet::new(),
            preview: f.preview.clone(),
            status: ItemStatus::New,
            again_after_ack: false,
            ack: None,
            per_day: BTreeMap::new(),
        });
        let occ = occ.unwrap_or_else(|| Occurrences::of(f));
        item.count += occ.count;
        for (day, n) in &occ.per_day {
            *item.per_day.entry(day.clone()).or_insert(0) += n;
        }
        item.containers.insert(container);
        let span = self.seen.entry(f.fingerprint.clone()).or_insert((None, None));
        let parse = |t: &Option<String>| {
            t.as_deref()
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|d| d.with_timezone(&Utc))
        };
        if let Some(t) = parse(&occ.first_seen) {
            if span.0.is_none_or(|a| t < a) {
                span.0 = Some(t);
                item.first_seen = occ.first_seen.clone().unwrap_or_default();
            }
        }
        if let Some(t) = parse(&occ.last_seen) {
            if span.1.is_none_or(|b| t > b) {
                span.1 = Some(t);
                item.last_seen = occ.last_seen.clone().unwrap_or_default();
            }
        }
    }

    /// The items, with the triage applied; most severe, then newest first.
    pub fn finish(self, triage: &Triage) -> Vec<Item> {
        let Grouper { items, seen, .. } = self;
        let mut out: Vec<Item> = items
            .into_values()
            .map(|mut item| {
                if let Some(ack) = triage.acks.get(&item.fingerprint) {
                    let acked_at = DateTime::parse_from_rfc3339(&ack.at)
                        .ok()
                        .map(|d| d.with_timezone(&Utc));
                    let last = seen.get(&item.fingerprint).and_then(|s| s.1);
                    item.again_after_ack = matches!((last, acked_at), (Some(l), Some(a)) if l > a);
                    item.status = if item.again_after_ack {
                        ItemStatus::New
                    } else {
                        ItemStatus::Acked
                    };
                    item.ack = Some(ack.clone());
                }
                item
            })
            .collect();
        out.sort_by(|a, b| {
            b.severity
                .cmp(&a.severity)
                .then(b.last_seen.cmp(&a.last_seen))
                .then(a.fingerprint.cmp(&b.fingerprint))
        });
        out
    }
}

/// The latest audit result per container and check, from the audit stream (and its rotated `.1`).
pub fn latest_audit(state_dir: &Path) -> io::Result<Vec<serde_json::Value>> {
    let stream = state_dir.join("audit").join("audit.jsonl");
    let mut latest: BTreeMap<(String, String), serde_json::Value> = BTreeMap::new();
    for path in [stream.with_extension("jsonl.1"), stream] {
        let Ok(file) = File::open(&path) else { continue };
        for line in BufReader::new(file).lines() {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&line?) else {
                continue;
            };
            let key = (
                v["container"].as_str().unwrap_or("").to_string(),
                v["check"].as_str().unwrap_or("").to_string(),
            );
            latest.insert(key, v);
        }
    }
    Ok(latest.into_values().collect())
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

/// SARIF 2.1.0 for the grouped items: the rule, the containers as logical locations, the
/// fingerprint as the partial fingerprint, and an external suppression for acknowledged items.
pub fn sarif(items: &[Item]) -> serde_json::Value {
    use serde_json::json;
    let mut rules: Vec<&str> = items.iter().map(|i| i.rule.as_str()).collect();
    rules.sort_unstable();
    rules.dedup();
    let level = |s: Severity| match s {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low => "note",
    };
    let rule_objs: Vec<_> = rules
        .iter()
        .map(|id| {
            let i = items.iter().find(|i| i.rule == *id).expect("rule from items");
            json!({"id": id, "name": id, "shortDescription": {"text": i.description},
                   "defaultConfiguration": {"level": level(i.severity)}})
        })
        .collect();
    let results: Vec<_> = items
        .iter()
        .map(|i| {
            let mut r = json!({
                "ruleId": i.rule,
                "ruleIndex": rules.iter().position(|r| *r == i.rule),
                "level": level(i.severity),
                "message": {"text": format!("{} seen {} time(s), {} to {}: {}", i.description, i.count, i.first_seen, i.last_seen, i.preview)},
                "locations": i.containers.iter().map(|c| json!({"logicalLocations": [{"name": c, "kind": "resource"}]})).collect::<Vec<_>>(),
                "partialFingerprints": {"sidecarFingerprint/v1": i.fingerprint},
                "properties": {"count": i.count, "firstSeen": i.first_seen, "lastSeen": i.last_seen, "againAfterAck": i.again_after_ack},
            });
            if let (ItemStatus::Acked, Some(a)) = (i.status, &i.ack) {
                r["suppressions"] = json!([{"kind": "external", "justification": format!("{} ({}, {})", a.note, a.by, a.at)}]);
            }
            r
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{"tool": {"driver": {"name": "sidecar-report", "version": env!("CARGO_PKG_VERSION"), "rules": rule_objs}},
                  "results": results}]
    })
}

fn status_text(i: &Item) -> String {
    match (i.status, i.again_after_ack) {
        (ItemStatus::New, true) => "new (again after ack)".into(),
        (ItemStatus::New, false) => "new".into(),
        (ItemStatus::Acked, _) => "acked".into(),
    }
}

/// Write the report.
pub fn write_review<W: Write>(
    format: ReviewFormat,
    items: &[Item],
    audit: &[serde_json::Value],
    damaged: u64,
    out: &mut W,
) -> io::Result<()> {
    match format {
        ReviewFormat::Json => {
            serde_json::to_writer_pretty(
                &mut *out,
                &serde_json::json!({"items": items, "audit": audit, "damaged_records": damaged}),
            )?;
            out.write_all(b"\n")
        }
        ReviewFormat::Sarif => {
            serde_json::to_writer_pretty(&mut *out, &sarif(items))?;
            out.write_all(b"\n")
        }
        ReviewFormat::Html => out.write_all(super::html::page(items, audit, damaged).as_bytes()),
        ReviewFormat::Csv => {
            writeln!(
                out,
                "fingerprint,rule,severity,status,count,first_seen,last_seen,containers,preview,ack_note,ack_by,ack_at"
            )?;
            for i in items {
                // Every text cell may come from outside (records are files, notes are typed by
                // people): neutralised and quoted by `escape::csv_cell`. The count is a number.
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
        ReviewFormat::Table => {
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
                    terminal(super::short_fingerprint(&i.fingerprint)),
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
            let bad: Vec<&serde_json::Value> = audit
                .iter()
                .filter(|v| v["status"] == "fail" || v["status"] == "accepted")
                .collect();
            if !audit.is_empty() {
                writeln!(
                    out,
                    "\nPosture (latest audit results): {} checks, {} failing or accepted",
                    audit.len(),
                    bad.len()
                )?;
                let cell = |v: &serde_json::Value, k: &str| terminal(v[k].as_str().unwrap_or("")).into_owned();
                for v in bad {
                    writeln!(
                        out,
                        "  {:<8}  {:<6}  {:<24}  {:<20}  {}",
                        cell(v, "status"),
                        cell(v, "severity"),
                        cell(v, "container"),
                        cell(v, "check"),
                        cell(v, "evidence")
                    )?;
                }
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        write_review(ReviewFormat::Csv, &items, &[], 0, &mut csv).unwrap();
        let csv = String::from_utf8(csv).unwrap();
        assert_eq!(csv.lines().count(), 3);
        assert!(csv.contains("new (again after ack)"));
        let mut sar = Vec::new();
        write_review(ReviewFormat::Sarif, &items, &[], 0, &mut sar).unwrap();
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
        write_review(ReviewFormat::Table, &items, &[], 2, &mut t).unwrap();
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
        write_review(ReviewFormat::Table, &items, &[], 0, &mut t).unwrap();
        let t = String::from_utf8(t).unwrap();
        assert!(!t.contains(['\x1b', '\x07']), "{t:?}");
        assert!(
            t.contains("\\x1b[2Jweb") && t.contains("@SUM(1+1)\\x1b]0;owned\\x07"),
            "{t}"
        );
        let mut csv = Vec::new();
        write_review(ReviewFormat::Csv, &items, &[], 0, &mut csv).unwrap();
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

    #[test]
    fn latest_audit_result_per_container_and_check() {
        let tmp = tempfile::tempdir().unwrap();
        let r = |status: &str| crate::policy::CheckResult {
            status: if status == "fail" {
                crate::policy::Status::Fail
            } else {
                crate::policy::Status::Pass
            },
            ..crate::policy::result(
                "openclaw",
                crate::policy::CheckId::Privileged,
                crate::policy::Verdict::pass("x"),
            )
        };
        let stream = tmp.path().join("audit/audit.jsonl");
        crate::report::audit::append_audit_stream(&stream, &[r("fail")], "2026-11-01T00:00:00Z").unwrap();
        crate::report::audit::append_audit_stream(&stream, &[r("pass")], "2026-11-02T00:00:00Z").unwrap();
        let latest = latest_audit(tmp.path()).unwrap();
        assert_eq!(latest.len(), 1);
        assert_eq!(latest[0]["status"], "pass");
        assert_eq!(latest[0]["time"], "2026-11-02T00:00:00Z");
    }

    #[test]
    fn times() {
        assert!(parse_time("24h").unwrap() < Utc::now());
        assert_eq!(
            parse_time("2026-11-27T01:00:00+01:00").unwrap().to_rfc3339(),
            "2026-11-27T00:00:00+00:00"
        );
        assert!(parse_time("yesterday").is_err());
        assert!(parse_time("5y").is_err());
    }

    #[test]
    fn a_triage_file_that_is_not_a_regular_file_is_an_error_naming_it() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(Triage::path(tmp.path())).unwrap();
        let err = Triage::load(tmp.path()).unwrap_err().to_string();
        assert!(
            err.contains("triage file") && err.contains("is a directory, not a regular file"),
            "{err}"
        );
    }

    #[test]
    fn triage_round_trip_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let mut t = Triage::default();
        t.acks.insert(
            "f".repeat(64),
            Ack {
                note: "n".into(),
                by: "b".into(),
                at: "2026-11-27T00:00:00Z".into(),
            },
        );
        t.save(tmp.path()).unwrap();
        let back = Triage::load(tmp.path()).unwrap();
        assert_eq!(back.acks, t.acks);
        let mode = std::fs::metadata(Triage::path(tmp.path()))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
