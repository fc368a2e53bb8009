//! The finding record: the one schema of what the guard appends to `<state_dir>/findings/` and
//! what is read back from there (the report, the fold into the summary, the aggregates journal,
//! fleet shipping). A record is the engine's [`Finding`] (flattened) plus the container's name and
//! image, and, on an aggregate, the occurrences it stands for. Never a secret: the finding carries
//! only rule, location, fingerprint and masked preview.
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::redact::Finding;

/// A finding record as the guard writes it: the engine's finding plus the container's name and
/// image (absent in `sidecar scan` output).
///
/// The one schema of a finding record: the guard's sink writes it, `sidecar report`, the fold, the
/// aggregates journal and fleet shipping read it back. `F` is how the finding is held: owned when
/// read back (the default), borrowed (`FindingRecord<&Finding>`) when the sink writes one per
/// occurrence without copying the finding.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FindingRecord<F = Finding> {
    /// The finding.
    #[serde(flatten)]
    pub finding: F,
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

/// The first 12 characters of a fingerprint, as tables, pages and alerts show it (a record read
/// from a file may hold anything there, so characters, not bytes).
pub fn short_fingerprint(fp: &str) -> &str {
    fp.char_indices().nth(12).map_or(fp, |(end, _)| &fp[..end])
}

/// The log time of `f`, when it has a valid one.
pub(crate) fn when(f: &Finding) -> Option<DateTime<Utc>> {
    f.time
        .as_deref()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|d| d.with_timezone(&Utc))
}

impl<'a> FindingRecord<&'a Finding> {
    /// The record of one occurrence of `finding` in the log of the container `container` (name)
    /// running `image`, as the sink writes it.
    pub fn occurrence(finding: &'a Finding, container: &str, image: &str) -> Self {
        FindingRecord {
            finding,
            container: Some(container.to_string()),
            image: Some(image.to_string()),
            occurrences: None,
            batch: None,
        }
    }
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
            file: "logs/a.log".into(),
            line: 3,
            end_line: 4,
            start: 100,
            end: 140,
            ranges: vec![[100, 120], [121, 140]],
            container_id: Some("c".repeat(64)),
            stream: Some("stdout".into()),
            time: Some("2026-11-01T10:00:00.5Z".into()),
            fingerprint: "ab".repeat(32),
            preview: "ghp_********… (40 chars)".into(),
            mask: Vec::new(),
        }
    }

    #[test]
    fn a_written_record_reads_back_equal() {
        let f = finding();
        let line = serde_json::to_string(&FindingRecord::occurrence(&f, "web", "nginx:1")).unwrap();
        let back: FindingRecord = serde_json::from_str(&line).unwrap();
        assert_eq!(back.finding, f);
        assert_eq!(back.container.as_deref(), Some("web"));
        assert_eq!(back.image.as_deref(), Some("nginx:1"));
        assert_eq!(back.occurrences, None);
        assert_eq!(back.batch, None);
        assert_eq!(serde_json::to_string(&back).unwrap(), line, "the same bytes again");

        let mut aggregate = back.clone();
        aggregate.occurrences = Some(Occurrences::of(&f));
        aggregate.batch = Some("g1".into());
        let line = serde_json::to_string(&aggregate).unwrap();
        let back: FindingRecord = serde_json::from_str(&line).unwrap();
        assert_eq!(back.finding, f);
        assert_eq!(back.occurrences, aggregate.occurrences);
        assert_eq!(back.occurrences.unwrap().per_day["2026-11-01"], 1);
        assert_eq!(back.batch.as_deref(), Some("g1"));
    }

    #[test]
    fn a_record_without_container_reads_back_as_a_scan_finding() {
        let f = finding();
        let line = serde_json::to_string(&f).unwrap();
        let back: FindingRecord = serde_json::from_str(&line).unwrap();
        assert_eq!(back.finding, f);
        assert_eq!((back.container, back.image), (None, None));
    }
}
