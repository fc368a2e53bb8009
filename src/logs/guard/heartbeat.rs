//! The heartbeat (`health.json`, read by `sidecar health`) and the lag it reports: bytes written to
//! live logs and not scanned yet, and how long the container furthest behind has been behind.
use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

use super::{short_id, unix_now, Guard};

/// Write the heartbeat.
pub fn write_heartbeat(state_dir: &Path, beat: &Heartbeat) -> io::Result<()> {
    let body = serde_json::json!({
        "time": unix_now(),
        "pid": std::process::id(),
        "containers": beat.containers,
        "lag_bytes": beat.lag_bytes,
        "lag_seconds": beat.lag_seconds,
        "behind": beat.behind,
    });
    crate::fsutil::write_atomic(
        &crate::state::StateDir::new(state_dir).heartbeat(),
        body.to_string().as_bytes(),
    )
}

/// What the guard's heartbeat says besides its time.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Heartbeat {
    /// Containers followed.
    pub containers: u64,
    /// Bytes written to live logs and not scanned yet, all containers.
    pub lag_bytes: u64,
    /// How long the container furthest behind has had bytes not scanned yet.
    pub lag_seconds: u64,
    /// The name of the container furthest behind (empty when none is).
    pub behind: String,
}

/// Age of the heartbeat in seconds, with what it says.
pub fn heartbeat_age(state_dir: &Path) -> io::Result<(u64, Heartbeat)> {
    let path = crate::state::StateDir::new(state_dir).heartbeat();
    let text = crate::fsutil::read_input(&path, crate::fsutil::InputKind::HEARTBEAT)?;
    let v: serde_json::Value =
        serde_json::from_slice(&text).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
    let time = v["time"]
        .as_u64()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no time"))?;
    let beat = Heartbeat {
        containers: v["containers"].as_u64().unwrap_or(0),
        lag_bytes: v["lag_bytes"].as_u64().unwrap_or(0),
        lag_seconds: v["lag_seconds"].as_u64().unwrap_or(0),
        behind: v["behind"].as_str().unwrap_or("").chars().take(256).collect(),
    };
    Ok((unix_now().saturating_sub(time), beat))
}

impl Guard<'_> {
    /// Write the heartbeat when it is due (every 5 s).
    pub(super) fn beat(&mut self) {
        if Instant::now() < self.next_beat {
            return;
        }
        self.next_beat = Instant::now() + Duration::from_secs(5);
        let beat = Heartbeat {
            containers: self.containers.len() as u64,
            lag_bytes: self.lag.values().sum(),
            lag_seconds: self.lag_seconds().as_secs(),
            behind: self.furthest_behind(),
        };
        if let Err(e) = write_heartbeat(&self.opts.state_dir, &beat) {
            self.error(&format!("cannot write the heartbeat: {e}"));
        }
    }

    /// A followed container's name (its short id when it is gone).
    pub(super) fn name_of<'s>(&'s self, id: &'s str) -> &'s str {
        self.containers.get(id).map_or(short_id(id), |c| c.name.as_str())
    }

    /// The container furthest behind (its name), when one is.
    pub(super) fn furthest_behind(&self) -> String {
        self.lag_since
            .iter()
            .min_by_key(|(_, t)| **t)
            .map(|(id, _)| self.name_of(id).to_string())
            .unwrap_or_default()
    }

    /// How long the container furthest behind has had bytes not scanned yet (0 when none is).
    pub fn lag_seconds(&self) -> Duration {
        self.lag_since.values().map(Instant::elapsed).max().unwrap_or_default()
    }

    /// Set the gauges updated at each checkpoint: the lag (all containers, and each one), the files
    /// followed, and the messages dropped.
    pub(super) fn publish_lag(&self) {
        self.metrics
            .set(crate::metrics::LOG_LAG_BYTES, self.lag.values().sum::<u64>() as f64);
        self.metrics
            .set(crate::metrics::LOG_LAG_SECONDS, self.lag_seconds().as_secs_f64());
        self.metrics
            .set(crate::metrics::LOG_FILES_FOLLOWED, self.marks.files.len() as f64);
        let name = |id| self.name_of(id);
        self.metrics.set_family(
            crate::metrics::LOG_CONTAINER_LAG_BYTES,
            "container",
            self.lag.iter().map(|(id, b)| (name(id), *b as f64)),
        );
        self.metrics.set_family(
            crate::metrics::LOG_CONTAINER_LAG_SECONDS,
            "container",
            self.lag.keys().map(|id| {
                (
                    name(id),
                    self.lag_since.get(id).map_or(0.0, |t| t.elapsed().as_secs_f64()),
                )
            }),
        );
        self.metrics
            .set(crate::metrics::MESSAGES_DROPPED_TOTAL, crate::diag::dropped() as f64);
    }
}
