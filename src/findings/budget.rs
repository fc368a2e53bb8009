//! How many findings the guard records one by one: a bound per container, so that a container
//! writing a new secret on every line (a flood: tens of thousands a second) cannot fill the state
//! disk, the guard's memory or the report, while every occurrence is still masked and counted.
//!
//! Each container has a budget of `per_second` records one by one, after a burst of
//! [`BURST_SECONDS`] seconds' worth. Past it, until the budget refills, its findings are counted in
//! aggregates written at the next checkpoint:
//! - a secret already recorded one by one in this run (its fingerprint is known): one aggregate
//!   record per secret (count, first and last log time, count per day), exactly what the report's
//!   summary keeps of it anyway;
//! - any other secret: one aggregate per container and rule, under the fingerprint
//!   [`OVER_CAP_PREFIX`]`<rule>`, with a preview that says so. The report then lists "N
//!   occurrences of rule R beyond the recording budget" instead of each secret.
//!
//! The report's size is bounded too: a new secret is recorded one by one only while the report has
//! room for it ([`Budget::set_room`]); beyond, it is counted per rule, so that no secret once
//! listed has to leave the list to keep the report under its cap.
//!
//! Memory is bounded: at most [`KNOWN_PER_CONTAINER`] fingerprints per container and
//! [`KNOWN_TOTAL`] in all are remembered, and at most [`AGGREGATES_MAX`] per-secret aggregates are
//! held between two checkpoints (beyond, per rule).
use std::collections::{HashMap, HashSet};
use std::time::Instant;

use super::record::{FindingRecord, Occurrences};
use crate::redact::Finding;

/// Fingerprint prefix of the aggregate that counts, per container and rule, the secrets not
/// recorded one by one.
pub const OVER_CAP_PREFIX: &str = "over-cap:";
/// The burst a container may record one by one, in seconds of its rate.
pub const BURST_SECONDS: f64 = 200.0;
/// Fingerprints remembered per container (repeats of these are aggregated per secret).
pub const KNOWN_PER_CONTAINER: usize = 1024;
/// Fingerprints remembered in all.
pub const KNOWN_TOTAL: usize = 16_384;
/// What a record of a new secret is taken to fill in the report (records are 0.5–1 KiB).
pub const RECORD_BYTES: u64 = 1024;
/// Per-secret aggregates held between two checkpoints.
pub const AGGREGATES_MAX: usize = 4096;

/// Preview of an over-cap aggregate: never a character of a secret.
pub const OVER_CAP_PREVIEW: &str = "(secrets beyond the recording budget, counted per rule)";

/// Make `f` its container's per-rule aggregate of secrets not listed one by one: the fingerprint
/// [`OVER_CAP_PREFIX`]`<rule>`, a preview that says so, no ranges.
pub fn mark_over_cap(f: &mut Finding) {
    f.fingerprint = format!("{OVER_CAP_PREFIX}{}", f.rule);
    f.preview = OVER_CAP_PREVIEW.to_string();
    f.ranges.clear();
    f.partial = false;
}

/// True for an aggregate of secrets not recorded one by one.
pub fn is_over_cap(fingerprint: &str) -> bool {
    fingerprint.starts_with(OVER_CAP_PREFIX)
}

/// One container's bucket.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// An aggregate waiting for the next checkpoint.
#[derive(Debug)]
struct Pending {
    record: FindingRecord,
    /// Order of creation (aggregates are written in that order).
    seq: u64,
}

/// What [`Budget::admit`] decided for one finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Record it one by one.
    One,
    /// Counted in the aggregate of its secret.
    PerSecret,
    /// Counted in the aggregate of its container and rule.
    PerRule,
}

/// The per-container recording budget (see the module's documentation).
#[derive(Debug)]
pub struct Budget {
    per_second: f64,
    buckets: HashMap<String, Bucket>,
    known: HashMap<String, HashSet<String>>,
    known_total: usize,
    pending: HashMap<(String, String), Pending>,
    /// What `pending` gained since [`Budget::take_delta`] (for the aggregates journal).
    delta: HashMap<(String, String), FindingRecord>,
    per_secret: usize,
    seq: u64,
    /// Bytes of records of new secrets the report can still take ([`Budget::set_room`]).
    room: u64,
    /// The last admission counted a new secret per rule because the report had no room left.
    out_of_room: bool,
}

impl Budget {
    /// A budget of `per_second` records one by one per container (at least 1).
    pub fn new(per_second: u32) -> Self {
        Budget {
            per_second: f64::from(per_second.max(1)),
            buckets: HashMap::new(),
            known: HashMap::new(),
            known_total: 0,
            pending: HashMap::new(),
            delta: HashMap::new(),
            per_secret: 0,
            seq: 0,
            room: u64::MAX,
            out_of_room: false,
        }
    }

    /// How many bytes of records of secrets new to it the report can still take (from
    /// `FindingLog::room_for_new_secrets`, before each batch): a new secret is recorded one by one
    /// only while [`RECORD_BYTES`] of it are left; beyond, it is counted per rule.
    pub fn set_room(&mut self, bytes: u64) {
        self.room = bytes;
    }

    /// The last [`Budget::admit`] counted a secret per rule because the report's room for new
    /// secrets was spent (not because of the rate).
    pub fn out_of_room(&self) -> bool {
        self.out_of_room
    }

    /// Decide how `f` (new, not recorded yet) of container `container_id` is recorded, and take
    /// it into an aggregate when it is not recorded one by one.
    pub fn admit(&mut self, f: &Finding, container_id: &str, name: &str, image: &str, now: Instant) -> Admit {
        let burst = self.per_second * BURST_SECONDS;
        let bucket = self
            .buckets
            .entry(container_id.to_string())
            .or_insert(Bucket { tokens: burst, at: now });
        bucket.tokens = (bucket.tokens + now.duration_since(bucket.at).as_secs_f64() * self.per_second).min(burst);
        bucket.at = now;
        let known = self.known.get(container_id).is_some_and(|k| k.contains(&f.fingerprint));
        let room = known || self.room >= RECORD_BYTES;
        self.out_of_room = !room;
        if bucket.tokens >= 1.0 && room {
            bucket.tokens -= 1.0;
            if !known {
                self.room -= RECORD_BYTES;
            }
            self.remember(container_id, &f.fingerprint);
            return Admit::One;
        }
        let secret_key = (container_id.to_string(), f.fingerprint.clone());
        let (key, admit) = if self.pending.contains_key(&secret_key) || (known && self.per_secret < AGGREGATES_MAX) {
            (secret_key, Admit::PerSecret)
        } else {
            (
                (container_id.to_string(), format!("{OVER_CAP_PREFIX}{}", f.rule)),
                Admit::PerRule,
            )
        };
        let occ = Occurrences::of(f);
        match self.delta.get_mut(&key) {
            Some(r) => r.occurrences.get_or_insert_with(Occurrences::default).merge(&occ),
            None => {
                let mut finding = f.clone();
                if admit == Admit::PerRule {
                    mark_over_cap(&mut finding);
                }
                finding.mask.clear();
                let record = FindingRecord {
                    finding,
                    container: Some(name.to_string()),
                    image: Some(image.to_string()),
                    occurrences: Some(occ.clone()),
                    batch: None,
                };
                self.delta.insert(key.clone(), record);
            }
        }
        let fresh = (!self.pending.contains_key(&key)).then(|| self.delta[&key].clone());
        self.add_pending(key, admit == Admit::PerSecret, &occ, fresh);
        admit
    }

    /// Add `occ` to the aggregate `key`, started from `record()` when new.
    fn add_pending(
        &mut self,
        key: (String, String),
        per_secret: bool,
        occ: &Occurrences,
        record: Option<FindingRecord>,
    ) {
        match self.pending.get_mut(&key) {
            Some(p) => p.record.occurrences.get_or_insert_with(Occurrences::default).merge(occ),
            None => {
                let Some(mut record) = record else { return };
                if per_secret {
                    self.per_secret += 1;
                }
                record.occurrences = Some(occ.clone());
                self.seq += 1;
                self.pending.insert(key, Pending { record, seq: self.seq });
            }
        }
    }

    /// The aggregates taken since the last call, as deltas (each with the occurrences added to it
    /// since): what the guard appends to the aggregates journal before writing the masks.
    pub fn take_delta(&mut self) -> Vec<FindingRecord> {
        self.delta.drain().map(|(_, r)| r).collect()
    }

    /// Take back aggregates not written (an earlier run's, read from the aggregates journal, or
    /// ones the report could not take): written at the next checkpoint with the rest.
    pub fn restore(&mut self, records: Vec<FindingRecord>) {
        for mut r in records {
            let Some(occ) = r.occurrences.take() else { continue };
            r.batch = None;
            let container = r.finding.container_id.clone().unwrap_or_default();
            let key = (container, r.finding.fingerprint.clone());
            let per_secret = !is_over_cap(&key.1);
            self.add_pending(key, per_secret, &occ, Some(r));
        }
    }

    fn remember(&mut self, container_id: &str, fingerprint: &str) {
        if self.known_total >= KNOWN_TOTAL {
            return;
        }
        let set = self.known.entry(container_id.to_string()).or_default();
        if set.len() < KNOWN_PER_CONTAINER && set.insert(fingerprint.to_string()) {
            self.known_total += 1;
        }
    }

    /// The aggregates taken since the last call, in the order they were started (written before
    /// each checkpoint).
    pub fn take_aggregates(&mut self) -> Vec<FindingRecord> {
        let mut all: Vec<Pending> = self.pending.drain().map(|(_, p)| p).collect();
        all.sort_by_key(|p| p.seq);
        self.per_secret = 0;
        all.into_iter().map(|p| p.record).collect()
    }

    /// True when aggregates wait for the next checkpoint.
    pub fn has_aggregates(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Forget the containers that are gone (`alive` false).
    pub fn retain(&mut self, alive: impl Fn(&str) -> bool) {
        self.buckets.retain(|id, _| alive(id));
        self.known.retain(|id, _| alive(id));
        self.known_total = self.known.values().map(HashSet::len).sum();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn finding(rule: &str, fp: &str, time: &str) -> Finding {
        Finding {
            schema: 1,
            rule: rule.into(),
            description: "d".into(),
            severity: crate::redact::Severity::High,
            confidence: None,
            file: "f".into(),
            line: 1,
            end_line: 1,
            start: 0,
            end: 10,
            ranges: vec![[0, 10]],
            container_id: Some("c1".into()),
            stream: None,
            time: Some(time.into()),
            fingerprint: fp.into(),
            preview: "sk-****".into(),
            partial: false,
            mask: b"**********".to_vec(),
        }
    }

    #[test]
    fn without_room_in_the_report_new_secrets_are_counted_per_rule_and_known_ones_still_recorded() {
        let mut b = Budget::new(1000);
        let t0 = Instant::now();
        b.set_room(2 * RECORD_BYTES + 10);
        for fp in ["a", "b"] {
            assert_eq!(
                b.admit(&finding("r", fp, "2026-12-04T10:00:00Z"), "c1", "gw", "img", t0),
                Admit::One
            );
            assert!(!b.out_of_room());
        }
        assert_eq!(
            b.admit(&finding("r", "c", "2026-12-04T10:00:00Z"), "c1", "gw", "img", t0),
            Admit::PerRule
        );
        assert!(b.out_of_room());
        // A secret already listed takes no new room: still one by one within the rate.
        assert_eq!(
            b.admit(&finding("r", "a", "2026-12-04T10:00:01Z"), "c1", "gw", "img", t0),
            Admit::One
        );
        assert!(!b.out_of_room());
        b.set_room(RECORD_BYTES);
        assert_eq!(
            b.admit(&finding("r", "d", "2026-12-04T10:00:02Z"), "c1", "gw", "img", t0),
            Admit::One
        );
    }

    #[test]
    fn past_the_burst_known_secrets_are_counted_per_secret_and_new_ones_per_rule() {
        let mut b = Budget::new(1);
        let t0 = Instant::now();
        let burst = BURST_SECONDS as usize;
        for i in 0..burst {
            let f = finding("r", &format!("fp{i}"), "2026-12-04T10:00:00Z");
            assert_eq!(b.admit(&f, "c1", "gw", "img", t0), Admit::One);
        }
        // Another container has its own budget.
        assert_eq!(
            b.admit(&finding("r", "x", "2026-12-04T10:00:00Z"), "c2", "other", "img", t0),
            Admit::One
        );
        // A repeat of a recorded secret: per secret; a new one: per rule.
        for t in ["2026-12-04T10:00:01Z", "2026-12-04T10:00:05Z"] {
            assert_eq!(
                b.admit(&finding("r", "fp3", t), "c1", "gw", "img", t0),
                Admit::PerSecret
            );
        }
        for i in 0..100 {
            let f = finding("r", &format!("new{i}"), "2026-12-04T10:00:02Z");
            assert_eq!(b.admit(&f, "c1", "gw", "img", t0), Admit::PerRule);
        }
        assert_eq!(
            b.admit(
                &finding("q", "other-rule", "2026-12-05T00:00:00Z"),
                "c1",
                "gw",
                "img",
                t0
            ),
            Admit::PerRule
        );
        // Two seconds later: two tokens.
        let t2 = t0 + Duration::from_secs(2);
        assert_eq!(
            b.admit(&finding("r", "a", "2026-12-04T10:00:06Z"), "c1", "gw", "img", t2),
            Admit::One
        );
        assert_eq!(
            b.admit(&finding("r", "b", "2026-12-04T10:00:06Z"), "c1", "gw", "img", t2),
            Admit::One
        );
        assert_eq!(
            b.admit(&finding("r", "c", "2026-12-04T10:00:06Z"), "c1", "gw", "img", t2),
            Admit::PerRule
        );

        let aggs = b.take_aggregates();
        assert!(!b.has_aggregates());
        let summary: Vec<(String, u64, Option<String>, Option<String>)> = aggs
            .iter()
            .map(|r| {
                let o = r.occurrences.as_ref().unwrap();
                (
                    r.finding.fingerprint.clone(),
                    o.count,
                    o.first_seen.clone(),
                    o.last_seen.clone(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                (
                    "fp3".into(),
                    2,
                    Some("2026-12-04T10:00:01Z".into()),
                    Some("2026-12-04T10:00:05Z".into())
                ),
                (
                    "over-cap:r".into(),
                    101,
                    Some("2026-12-04T10:00:02Z".into()),
                    Some("2026-12-04T10:00:06Z".into())
                ),
                (
                    "over-cap:q".into(),
                    1,
                    Some("2026-12-05T00:00:00Z".into()),
                    Some("2026-12-05T00:00:00Z".into())
                ),
            ]
        );
        let over = &aggs[1];
        assert_eq!(over.finding.preview, OVER_CAP_PREVIEW);
        assert!(over.finding.ranges.is_empty() && over.finding.mask.is_empty());
        assert_eq!(over.container.as_deref(), Some("gw"));
        assert!(is_over_cap(&over.finding.fingerprint) && !is_over_cap("fp3"));
        assert!(b.take_aggregates().is_empty());
    }

    #[test]
    fn memory_is_bounded_under_a_flood_of_distinct_secrets() {
        let mut b = Budget::new(1);
        let t0 = Instant::now();
        for c in 0..40 {
            for i in 0..2_000 {
                let f = finding("r", &format!("{c}-{i}"), "2026-12-04T10:00:00Z");
                b.admit(&f, &format!("c{c}"), "n", "i", t0);
            }
        }
        assert!(b.known_total <= KNOWN_TOTAL);
        assert!(b.known.values().all(|s| s.len() <= KNOWN_PER_CONTAINER));
        // One per-rule aggregate per container, no per-secret one (none of these repeated).
        let aggs = b.take_aggregates();
        assert_eq!(aggs.len(), 40);
        let counted: u64 = aggs.iter().map(|r| r.occurrences.as_ref().unwrap().count).sum();
        assert_eq!(counted, 40 * (2_000 - BURST_SECONDS as u64));
        b.retain(|id| id != "c0");
        assert!(!b.known.contains_key("c0"));
    }
}
