//! When backups run: a cron expression (5 fields, optionally a 6th for seconds first, or `@daily`,
//! `@hourly`, …) in a time zone, with a per-host jitter. A backup missed while the host was down
//! runs at start; runs never overlap (one at a time in a process, and a lock file in the
//! destination across processes).
//!
//! [`run_scheduled`] is the one scheduling loop of backups (`sidecar backup --schedule` and `sidecar
//! run` both call it): it reports what happens as [`ScheduledEvent`]s and leaves the wording to the
//! caller.
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use croner::Cron;

use super::catalog::{backup_time, list_backups};
use super::create::{create_backup, BackupOptions, BackupResult};
use super::crypto::Recipient;
use super::error::BackupError;
use super::prune::{prune, PruneMode};
use super::retention;

/// A parsed schedule.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// The cron expression as configured.
    pub spec: String,
    cron: Cron,
    tz: chrono_tz::Tz,
    jitter: u64,
}

fn utc(t: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(t, 0).single().unwrap_or_default()
}

impl Schedule {
    /// Parse `spec` in time zone `tz` (an IANA name such as `Europe/Berlin`, or `UTC`), with up to
    /// `jitter_secs` of delay added to every run.
    pub fn new(spec: &str, tz: &str, jitter_secs: u64) -> Result<Self, String> {
        let cron = Cron::from_str(spec.trim())
            .map_err(|e| format!("schedule `{spec}`: {e} (use 5 cron fields, e.g. `30 3 * * *`, or @daily)"))?;
        let tz = chrono_tz::Tz::from_str(tz.trim())
            .map_err(|_| format!("time zone `{tz}` is not an IANA name such as `UTC` or `Europe/Berlin`"))?;
        Ok(Schedule {
            spec: spec.to_string(),
            cron,
            tz,
            jitter: jitter_secs,
        })
    }

    /// The first scheduled time strictly after `t` (seconds since the epoch).
    pub fn next_after(&self, t: i64) -> Option<i64> {
        let local = utc(t).with_timezone(&self.tz);
        self.cron
            .find_next_occurrence(&local, false)
            .ok()
            .map(|d| d.timestamp())
    }

    /// The last scheduled time at or before `t`.
    pub fn previous_at_or_before(&self, t: i64) -> Option<i64> {
        let local = utc(t).with_timezone(&self.tz);
        self.cron
            .find_previous_occurrence(&local, true)
            .ok()
            .map(|d| d.timestamp())
    }

    /// Was a run missed: the last scheduled time before `now` is later than the newest backup?
    pub fn missed(&self, now: i64, newest_backup: Option<i64>) -> bool {
        match (self.previous_at_or_before(now), newest_backup) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(p), Some(b)) => b < p,
        }
    }

    /// This host's delay for the run scheduled at `fire`: the same for a given host and time, spread
    /// over `0..=jitter` across hosts (so a fleet does not hit the storage at one instant).
    pub fn jitter_for(&self, fire: i64, host_seed: u64) -> u64 {
        if self.jitter == 0 {
            return 0;
        }
        // splitmix64 of (seed, fire)
        let mut z = host_seed ^ (fire as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        z % (self.jitter + 1)
    }
}

/// Seconds since the epoch, now.
pub fn now() -> i64 {
    Utc::now().timestamp()
}

/// Sleep until `until` (epoch seconds) or until `stop` is set; true when stopped.
pub fn sleep_until(until: i64, stop: &AtomicBool) -> bool {
    loop {
        if stop.load(Ordering::Relaxed) {
            return true;
        }
        let left = until - now();
        if left <= 0 {
            return false;
        }
        std::thread::sleep(Duration::from_millis((left as u64 * 1000).min(250)));
    }
}

/// A seed for the per-host jitter, stable across restarts: from `/etc/machine-id` (else the host
/// name), so that hosts sharing a schedule spread their runs.
pub fn host_seed() -> u64 {
    use sha2::Digest;
    let id = std::fs::read("/etc/machine-id")
        .or_else(|_| std::fs::read("/proc/sys/kernel/hostname"))
        .unwrap_or_default();
    let h = sha2::Sha256::digest(&id);
    u64::from_le_bytes(h[..8].try_into().expect("8 bytes"))
}

/// What a scheduled run did, for the caller to report.
#[derive(Debug)]
pub enum ScheduledEvent {
    /// The loop starts (the options were accepted).
    Started,
    /// A run starts (`missed`: it catches up on a run missed while sidecar was not running).
    Starting {
        /// Catching up.
        missed: bool,
    },
    /// A backup was written and verified.
    Done(BackupResult),
    /// A backup failed; the next one runs at the next scheduled time.
    Failed(BackupError),
    /// Another process holds the destination's backup lock: this run is skipped.
    Skipped,
    /// Retention ran after a backup: how many backups were deleted.
    Pruned(usize),
    /// The next run is due at this time (epoch seconds, jitter included).
    Next(i64),
}

/// Backups on a schedule: what to back up, when, and what to prune after each backup.
#[derive(Debug)]
pub struct ScheduledBackups<'a> {
    /// The backup to make (its `progress` and `stop` are ignored: each run gets the loop's `stop`).
    pub backup: &'a BackupOptions,
    /// When.
    pub schedule: &'a Schedule,
    /// Pruned after each successful backup (none, or an empty policy: nothing is pruned).
    pub retention: Option<&'a retention::Policy>,
    /// Per-host jitter seed ([`host_seed`]).
    pub host_seed: u64,
}

/// How a scheduled loop ended.
#[derive(Debug, Default)]
pub struct ScheduleSummary {
    /// Runs that failed (a failed prune counts too).
    pub failures: u64,
}

/// Run backups on `plan.schedule` until `stop` is set: a run missed while sidecar was down runs
/// first, runs never overlap, and after each successful backup the retention policy (if any)
/// prunes the destination. Refuses to start without recipients.
pub fn run_scheduled(
    plan: &ScheduledBackups<'_>,
    stop: Arc<AtomicBool>,
    mut on_event: impl FnMut(ScheduledEvent),
) -> Result<ScheduleSummary, BackupError> {
    if plan.backup.recipients.is_empty() {
        return Err(BackupError::Recipient(
            "missing: set backup.recipients (or give -r age1…) before scheduling backups".into(),
        ));
    }
    let mut summary = ScheduleSummary::default();
    let mut report = |event: ScheduledEvent| {
        if matches!(event, ScheduledEvent::Failed(_)) {
            summary.failures += 1;
        }
        on_event(event)
    };
    report(ScheduledEvent::Started);
    let (schedule, opts) = (plan.schedule, plan.backup);
    let mut catch_up = schedule.missed(now(), newest_backup(opts));
    loop {
        if !catch_up {
            let Some(fire) = schedule.next_after(now()) else {
                break;
            };
            let due = fire + schedule.jitter_for(fire, plan.host_seed) as i64;
            report(ScheduledEvent::Next(due));
            if sleep_until(due, &stop) {
                break;
            }
        }
        report(ScheduledEvent::Starting { missed: catch_up });
        catch_up = false;
        if run_once(plan, &stop, &mut report) == Continue::No || stop.load(Ordering::Relaxed) {
            break;
        }
    }
    Ok(summary)
}

/// Whether the loop goes on after a run.
#[derive(Debug, PartialEq, Eq)]
enum Continue {
    Yes,
    No,
}

/// When the newest backup of `opts.name` in its store was made (None: none, or unreadable).
fn newest_backup(opts: &BackupOptions) -> Option<i64> {
    let prefix = format!("{}-", opts.name);
    list_backups(opts.store.as_ref())
        .ok()?
        .iter()
        .filter(|n| n.starts_with(&prefix))
        .filter_map(|n| backup_time(n))
        .max()
}

/// One scheduled run under the destination's lock: back up, then prune.
fn run_once(plan: &ScheduledBackups<'_>, stop: &Arc<AtomicBool>, report: &mut impl FnMut(ScheduledEvent)) -> Continue {
    let opts = plan.backup;
    let lock = match opts.store.lock() {
        Ok(Some(lock)) => lock,
        Ok(None) => {
            report(ScheduledEvent::Skipped);
            return Continue::Yes;
        }
        Err(e) => {
            report(ScheduledEvent::Failed(e.into()));
            return Continue::Yes;
        }
    };
    let run = BackupOptions {
        recipients: opts.recipients.iter().map(Recipient::clone_parsed).collect(),
        source: opts.source.clone(),
        store: opts.store.clone(),
        name: opts.name.clone(),
        level: opts.level,
        threads: opts.threads,
        progress: None,
        stop: Some(stop.clone()),
        pause: opts.pause.clone(),
    };
    match create_backup(&run) {
        Ok(result) => {
            report(ScheduledEvent::Done(result));
            if let Some(policy) = plan.retention.filter(|p| !p.is_empty()) {
                match prune(opts.store.as_ref(), &opts.name, policy, PruneMode::Delete) {
                    Ok(d) => report(ScheduledEvent::Pruned(
                        d.iter().filter(|d| d.reasons.is_empty()).count(),
                    )),
                    Err(e) => report(ScheduledEvent::Failed(e)),
                }
            }
        }
        Err(BackupError::Interrupted) => {
            drop(lock);
            report(ScheduledEvent::Failed(BackupError::Interrupted));
            return Continue::No;
        }
        Err(e) => report(ScheduledEvent::Failed(e)),
    }
    drop(lock);
    Continue::Yes
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2026-11-27T01:30:00Z
    const T: i64 = 1_795_743_000;

    #[test]
    fn daily_in_a_time_zone() {
        let s = Schedule::new("30 3 * * *", "Europe/Berlin", 0).unwrap();
        // 03:30 in Berlin (UTC+1 in November) is 02:30Z.
        assert_eq!(s.next_after(T), Some(T + 3600));
        assert_eq!(s.previous_at_or_before(T), Some(T + 3600 - 86_400));
        let at = Schedule::new("@daily", "UTC", 0).unwrap();
        assert_eq!(at.next_after(T), Some(1_795_824_000)); // 2026-11-28T00:00:00Z
        assert!(Schedule::new("61 * * * *", "UTC", 0).is_err());
        assert!(Schedule::new("@daily", "Mars/Olympus", 0).unwrap_err().contains("IANA"));
    }

    #[test]
    fn missed_runs_are_detected() {
        let s = Schedule::new("@daily", "UTC", 0).unwrap();
        let midnight = 1_795_737_600; // 2026-11-27T00:00:00Z
        assert!(s.missed(T, None));
        assert!(s.missed(T, Some(midnight - 10)));
        assert!(!s.missed(T, Some(midnight + 5)));
    }

    #[test]
    fn jitter_is_bounded_and_stable_per_host() {
        let s = Schedule::new("@hourly", "UTC", 600).unwrap();
        let a: Vec<u64> = (0..50).map(|i| s.jitter_for(T + i * 3600, 42)).collect();
        assert!(a.iter().all(|&j| j <= 600));
        assert_eq!(a, (0..50).map(|i| s.jitter_for(T + i * 3600, 42)).collect::<Vec<_>>());
        assert_ne!(a, (0..50).map(|i| s.jitter_for(T + i * 3600, 43)).collect::<Vec<_>>());
        assert_eq!(Schedule::new("@hourly", "UTC", 0).unwrap().jitter_for(T, 42), 0);
    }
}
