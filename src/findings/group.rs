//! Grouping finding records into the reviewer's items: one per secret (fingerprint), with its
//! occurrences, containers, first and last time and count per day, filtered by time, container and
//! rule, with the triage applied. Memory grows with the distinct secrets, not with the records.
use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::record::{when, FindingRecord, Occurrences};
use super::triage::{Ack, Triage};
use crate::redact::Severity;

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
