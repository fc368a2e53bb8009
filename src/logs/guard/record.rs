//! Appending findings to the report: each occurrence once (not past the checkpoint, not recovered
//! after a crash, not in the baseline), one by one within the recording budget and counted beyond
//! it; the counts are journaled before the masks are written.
use std::io;
use std::time::Instant;

use super::{short_id, Found, Guard, SyncStats};
use crate::findings::budget::Admit;
use crate::findings::journal::AggregateJournal;
use crate::findings::sink::{occurrence_id, occurrence_key};
use crate::logs::containers::ContainerLog;
use crate::redact::Finding;

impl Guard<'_> {
    /// Observe, for each finding whose masks were just written, how long after Docker's
    /// timestamp of its entry (`sidecar_log_mask_delay_seconds`).
    /// `how`: which write (for a debug line when the delay was long).
    pub(super) fn observe_delays(&self, findings: &[Finding], how: &str) {
        let now = chrono::Utc::now();
        let delays: Vec<f64> = findings
            .iter()
            .filter_map(|f| {
                let t = chrono::DateTime::parse_from_rfc3339(f.time.as_deref()?).ok()?;
                Some((now - t.with_timezone(&chrono::Utc)).as_seconds_f64())
            })
            .collect();
        if let Some(max) = delays.iter().copied().reduce(f64::max).filter(|m| *m > 0.1) {
            tracing::debug!(
                "log guard: {} mask(s) written {how} up to {:.0} ms after their entry",
                delays.len(),
                max * 1000.0
            );
        }
        self.metrics.observe(crate::metrics::LOG_MASK_DELAY_SECONDS, delays);
    }

    /// [`Self::record`]; when the report cannot be written (a full disk), the error is counted and
    /// the secrets are masked all the same: a secret left in the log is worse than a missing record.
    pub(super) fn record_or_count(&mut self, c: &ContainerLog, findings: &[Found]) -> SyncStats {
        match self.record(c, findings) {
            Ok(s) => s,
            Err(e) => {
                let n = findings.iter().filter(|f| f.is_new).count();
                self.error(&format!(
                    "cannot append {n} finding(s) of container {} to the report: {e}; the secrets are masked but missing from the report (free space in the state directory)",
                    c.name
                ));
                SyncStats::default()
            }
        }
    }

    /// The masks of every finding recorded so far are written (or saved to be written): the
    /// aggregates journal notes it (see [`AggregateJournal`]).
    pub(super) fn masked_all(&mut self) {
        if let Some(Err(e)) = self.journal.as_mut().map(AggregateJournal::masked) {
            self.error(&format!(
                "cannot append to {} ({e}): a kill before the next checkpoint may count some secrets past the recording budget twice (free space in the state directory)",
                AggregateJournal::path(&self.opts.state_dir).display()
            ));
        }
    }

    /// Append the new findings (not yet recorded, not in the baseline) to the report.
    pub(super) fn record(&mut self, c: &ContainerLog, findings: &[Found]) -> io::Result<SyncStats> {
        let mut new: Vec<&Finding> = Vec::new();
        let mut all: Vec<&Finding> = Vec::new();
        // Keys of the occurrences counted past the budget (journaled with their counts).
        let mut counted: Vec<crate::findings::sink::OccurrenceId> = Vec::new();
        let mut new_keys: std::collections::HashSet<crate::findings::sink::OccurrenceId> = Default::default();
        let now = Instant::now();
        self.budget.set_room(self.sink.room_for_new_secrets());
        for Found { finding: f, is_new } in findings {
            if !is_new || self.opts.baseline.contains(&f.fingerprint) {
                continue;
            }
            let key = occurrence_id(&occurrence_key(f));
            if self.uncommitted.contains(&key)
                || self.syncing.as_ref().is_some_and(|s| s.recorded.contains(&key))
                || self.recovered.contains(&key)
                || new_keys.contains(&key)
            {
                continue;
            }
            all.push(f);
            match self.budget.admit(f, &c.id, &c.name, &c.image, now) {
                // Known as recorded once the report holds it (a panic before then, and its key
                // would pass for recorded in the scan after; see `contain_panic`).
                Admit::One => {
                    new.push(f);
                    new_keys.insert(key);
                }
                admit => {
                    // Counted in memory at once.
                    self.uncommitted.insert(key);
                    counted.push(key);
                    self.metrics.add(
                        if admit == Admit::PerRule {
                            crate::metrics::FINDINGS_OVER_CAP_TOTAL
                        } else {
                            crate::metrics::FINDINGS_AGGREGATED_TOTAL
                        },
                        1.0,
                    );
                    if self.budget.out_of_room() {
                        if self.found_logged.allow("report-full", now).is_some() {
                            tracing::warn!(
                                "log guard: the report holds as many secrets one by one as guard.findings_max_mib ({} MiB) allows: new secrets are masked and counted per rule in the report, not one by one (raise guard.findings_max_mib to list more)",
                                self.opts.findings_max_bytes >> 20
                            );
                        }
                    } else if self.found_logged.allow(&format!("budget\0{}", c.id), now).is_some() {
                        tracing::warn!(
                            "log guard: container {} ({}) logs secrets faster than {} a second: further ones are masked and counted per secret or per rule in the report, not one by one",
                            c.name,
                            short_id(&c.id),
                            self.opts.findings_per_second
                        );
                    }
                }
            }
        }
        if all.is_empty() {
            return Ok(SyncStats::default());
        }
        self.sink.append(new.iter().copied(), &c.name, &c.image)?;
        self.uncommitted.extend(new_keys);
        // The counts past the budget are journaled before the masks are written (the caller
        // writes them next): a kill before the checkpoint that reports them loses none. With
        // the keys they count: a kill before the masks leaves them to a rescan, which must not
        // count them again (`masked_all` notes the masks written).
        let delta = self.budget.take_delta();
        let masks = self.masks(c);
        if let Some(j) = self.journal.as_mut().filter(|_| !delta.is_empty()) {
            if let Err(e) = j.append(&delta, &counted, masks) {
                self.error(&format!(
                    "cannot append to {} ({e}): counts of secrets past the recording budget are lost if sidecar stops before the next checkpoint (free space in the state directory)",
                    AggregateJournal::path(&self.opts.state_dir).display()
                ));
            }
        }
        for f in &all {
            self.metrics
                .add(&format!("sidecar_findings_total{{rule=\"{}\"}}", f.rule), 1.0);
            // One line per container and rule every 10 s at most: a container that leaks all the
            // time must not flood sidecar's own output (every occurrence is in the report).
            let more = match self
                .found_logged
                .allow(&format!("{}\0{}", c.id, f.rule), Instant::now())
            {
                None => continue,
                Some(0) => String::new(),
                Some(n) => format!(" ({n} more of this rule in this container since the last line)"),
            };
            tracing::info!(
                "secret found: rule {} in container {} ({}), line {}, fingerprint {}{more}",
                f.rule,
                c.name,
                short_id(&c.id),
                f.line,
                &f.fingerprint[..16.min(f.fingerprint.len())]
            );
        }
        self.marks_dirty = true;
        Ok(SyncStats {
            recorded: all.len() as u64,
            ..SyncStats::default()
        })
    }
}
