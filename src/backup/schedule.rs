//! When backups run: a cron expression (5 fields, optionally a 6th for seconds first, or `@daily`,
//! `@hourly`, …) in a time zone, with a per-host jitter. A backup missed while the host was down
//! runs at start; runs never overlap (one at a time in a process, and a lock file in the
//! destination across processes).
use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use croner::Cron;

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

/// An exclusive lock on `<dest>/.sidecar-backup.lock`, held while a backup runs; `None` when another
/// process holds it.
pub fn try_lock(dest: &Path) -> std::io::Result<Option<File>> {
    crate::fsutil::create_private_dir(dest)?;
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(dest.join(".sidecar-backup.lock"))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => Err(e),
    }
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

    #[test]
    fn a_second_lock_holder_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let first = try_lock(dir.path()).unwrap();
        assert!(first.is_some());
        assert!(try_lock(dir.path()).unwrap().is_none());
        drop(first);
        assert!(try_lock(dir.path()).unwrap().is_some());
    }
}
