//! Prometheus metrics of `sidecar run`, served in the text exposition format on an optional listen
//! address. Labels are check ids, severities, statuses and results: never a container's
//! environment, a path's content or a secret.
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

// Metric names: every name the crate counts under, one constant each (the families below and
// every caller use these, never a literal). The doc of each is the first sentence of its HELP.
/// `sidecar_log_mask_delay_seconds` (histogram): Time from Docker's timestamp of the entry
/// holding a secret to the write of its mask, per file copy written (the live or rotated file,
/// a rewritten .gz): how long the secret was readable in clear there.
pub const LOG_MASK_DELAY_SECONDS: &str = "sidecar_log_mask_delay_seconds";
/// `sidecar_log_bytes_scanned_total` (counter): Log bytes scanned by the guard (decompressed
/// bytes for .gz files).
pub const LOG_BYTES_SCANNED_TOTAL: &str = "sidecar_log_bytes_scanned_total";
/// `sidecar_log_gz_checked_total` (counter): Compressed rotated logs checked from the masks the
/// guard wrote into the plain file they were made from (neither decompressed nor scanned;
/// rewritten when a mask came after Docker compressed).
pub const LOG_GZ_CHECKED_TOTAL: &str = "sidecar_log_gz_checked_total";
/// `sidecar_log_gz_masks_found_total` (counter): Of those, files a mask came late for that held
/// it already (Docker read the masked bytes): decompressed to check, not rewritten.
pub const LOG_GZ_MASKS_FOUND_TOTAL: &str = "sidecar_log_gz_masks_found_total";
/// `sidecar_log_lines_scanned_total` (counter): Log lines scanned by the guard.
pub const LOG_LINES_SCANNED_TOTAL: &str = "sidecar_log_lines_scanned_total";
/// `sidecar_findings_total` (counter): Secret occurrences recorded in the report, by rule.
pub const FINDINGS_TOTAL: &str = "sidecar_findings_total";
/// `sidecar_findings_aggregated_total` (counter): Of those, occurrences past a container's
/// recording budget (guard.findings_per_second) of a secret recorded one by one before: counted
/// in one record per secret at each checkpoint.
pub const FINDINGS_AGGREGATED_TOTAL: &str = "sidecar_findings_aggregated_total";
/// `sidecar_findings_over_cap_total` (counter): Of those, occurrences past a container's
/// recording budget of secrets not recorded one by one: counted per container and rule
/// (fingerprint over-cap:<rule>).
pub const FINDINGS_OVER_CAP_TOTAL: &str = "sidecar_findings_over_cap_total";
/// `sidecar_masks_written_total` (counter): Byte ranges masked in Docker's log files.
pub const MASKS_WRITTEN_TOTAL: &str = "sidecar_masks_written_total";
/// `sidecar_log_containers_followed` (gauge): Containers whose json-file log is followed.
pub const LOG_CONTAINERS_FOLLOWED: &str = "sidecar_log_containers_followed";
/// `sidecar_log_containers_unmasked` (gauge): Followed containers whose secrets are reported
/// but not masked (guard.report_only, the labels sidecar.redact=false and
/// sidecar.guard=<another guard>).
pub const LOG_CONTAINERS_UNMASKED: &str = "sidecar_log_containers_unmasked";
/// `sidecar_log_files_followed` (gauge): Log files (live and rotated) with a checkpoint.
pub const LOG_FILES_FOLLOWED: &str = "sidecar_log_files_followed";
/// `sidecar_log_dirs_unwatched` (gauge): Container directories without an inotify watch
/// (fs.inotify.max_user_watches reached): listed several times a second instead.
pub const LOG_DIRS_UNWATCHED: &str = "sidecar_log_dirs_unwatched";
/// `sidecar_log_lag_bytes` (gauge): Bytes written to live logs and not scanned yet.
pub const LOG_LAG_BYTES: &str = "sidecar_log_lag_bytes";
/// `sidecar_log_lag_seconds` (gauge): How long the container furthest behind has had bytes in
/// its live log not scanned yet.
pub const LOG_LAG_SECONDS: &str = "sidecar_log_lag_seconds";
/// `sidecar_log_container_lag_bytes` (gauge): Per container (by name): bytes written to its
/// live log and not scanned yet.
pub const LOG_CONTAINER_LAG_BYTES: &str = "sidecar_log_container_lag_bytes";
/// `sidecar_log_container_lag_seconds` (gauge): Per container (by name): how long its live log
/// has had bytes not scanned yet.
pub const LOG_CONTAINER_LAG_SECONDS: &str = "sidecar_log_container_lag_seconds";
/// `sidecar_messages_dropped_total` (counter): sidecar's own messages dropped because its
/// stderr was not taking them (masking went on).
pub const MESSAGES_DROPPED_TOTAL: &str = "sidecar_messages_dropped_total";
/// `sidecar_guard_errors_total` (counter): Errors of the log guard (unreadable files, damaged
/// gzip files, failed writes).
pub const GUARD_ERRORS_TOTAL: &str = "sidecar_guard_errors_total";
/// `sidecar_guard_panics_total` (counter): Internal errors (panics) of the log guard,
/// contained: one container's work is retried with back-off, or the guard restarts from its
/// checkpoints.
pub const GUARD_PANICS_TOTAL: &str = "sidecar_guard_panics_total";
/// `sidecar_guard_malformed_lines_total` (counter): Log lines that are not valid json-file JSON
/// (scanned as text).
pub const GUARD_MALFORMED_LINES_TOTAL: &str = "sidecar_guard_malformed_lines_total";
/// `sidecar_audit_runs_total` (counter): Audits run (full and per started container).
pub const AUDIT_RUNS_TOTAL: &str = "sidecar_audit_runs_total";
/// `sidecar_audit_results` (gauge): Results of the last full audit by status and severity.
pub const AUDIT_RESULTS: &str = "sidecar_audit_results";
/// `sidecar_audit_failing` (gauge): Containers (or the daemon or host) failing each check in
/// the last full audit.
pub const AUDIT_FAILING: &str = "sidecar_audit_failing";
/// `sidecar_audit_last_timestamp_seconds` (gauge): When the last full audit finished.
pub const AUDIT_LAST_TIMESTAMP_SECONDS: &str = "sidecar_audit_last_timestamp_seconds";
/// `sidecar_backups_total` (counter): Scheduled backups by result (ok, failed, skipped).
pub const BACKUPS_TOTAL: &str = "sidecar_backups_total";
/// `sidecar_backup_last_success_timestamp_seconds` (gauge): When the last scheduled backup was
/// written and verified.
pub const BACKUP_LAST_SUCCESS_TIMESTAMP_SECONDS: &str = "sidecar_backup_last_success_timestamp_seconds";
/// `sidecar_backup_last_bytes` (gauge): Size of the last scheduled backup.
pub const BACKUP_LAST_BYTES: &str = "sidecar_backup_last_bytes";
/// `sidecar_enforce_changes_total` (counter): Changes made by enforcement (modes, owners,
/// rotations, removals).
pub const ENFORCE_CHANGES_TOTAL: &str = "sidecar_enforce_changes_total";
/// `sidecar_enforce_errors_total` (counter): Paths enforcement could not change.
pub const ENFORCE_ERRORS_TOTAL: &str = "sidecar_enforce_errors_total";

/// One audit result as the metrics count it (by status and severity; failures by check). Text,
/// not the policy's types: this module sits below every domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditSample<'a> {
    /// Check id.
    pub check: &'a str,
    /// `pass`, `fail`, `accepted` or `error`.
    pub status: &'a str,
    /// `low`, `medium` or `high`.
    pub severity: &'a str,
}

/// What an audit covered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditScope {
    /// Every container, the daemon and the host: its results replace the per-check gauges.
    Full,
    /// Only some containers (the ones just started): counted as a run, gauges kept.
    Containers,
}

/// The metric values, by name and label set (`name{labels}`).
#[derive(Debug, Default)]
pub struct Metrics {
    values: Mutex<BTreeMap<String, f64>>,
    histograms: Mutex<BTreeMap<&'static str, Histogram>>,
}

/// A Prometheus histogram: cumulative counts per upper bound, sum and count.
#[derive(Debug, Clone)]
struct Histogram {
    bounds: &'static [f64],
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

/// Upper bounds (seconds) of the buckets of `sidecar_log_mask_delay_seconds`: fine around the
/// 100 ms a secret should stay in clear at most under load, coarse beyond.
pub const MASK_DELAY_BOUNDS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

/// Histograms: name, help and bucket bounds.
const HISTOGRAMS: &[(&str, &str, &[f64])] = &[(
    LOG_MASK_DELAY_SECONDS,
    "Time from Docker's timestamp of the entry holding a secret to the write of its mask, per file copy written (the live or rotated file, a rewritten .gz): how long the secret was readable in clear there. Masks written after a restart include the time the guard was down.",
    MASK_DELAY_BOUNDS,
)];

/// HELP and TYPE of each metric family.
const FAMILIES: &[(&str, &str, &str)] = &[
    (
        LOG_BYTES_SCANNED_TOTAL,
        "counter",
        "Log bytes scanned by the guard (decompressed bytes for .gz files).",
    ),
    (
        LOG_GZ_CHECKED_TOTAL,
        "counter",
        "Compressed rotated logs checked from the masks the guard wrote into the plain file they were made from (neither decompressed nor scanned; rewritten when a mask came after Docker compressed).",
    ),
    (
        LOG_GZ_MASKS_FOUND_TOTAL,
        "counter",
        "Of those, files a mask came late for that held it already (Docker read the masked bytes): decompressed to check, not rewritten.",
    ),
    (
        LOG_LINES_SCANNED_TOTAL,
        "counter",
        "Log lines scanned by the guard.",
    ),
    (
        FINDINGS_TOTAL,
        "counter",
        "Secret occurrences recorded in the report, by rule.",
    ),
    (
        FINDINGS_AGGREGATED_TOTAL,
        "counter",
        "Of those, occurrences past a container's recording budget (guard.findings_per_second) of a secret recorded one by one before: counted in one record per secret at each checkpoint.",
    ),
    (
        FINDINGS_OVER_CAP_TOTAL,
        "counter",
        "Of those, occurrences past a container's recording budget of secrets not recorded one by one: counted per container and rule (fingerprint over-cap:<rule>). Masked all the same.",
    ),
    (
        MASKS_WRITTEN_TOTAL,
        "counter",
        "Byte ranges masked in Docker's log files.",
    ),
    (
        LOG_CONTAINERS_FOLLOWED,
        "gauge",
        "Containers whose json-file log is followed.",
    ),
    (
        LOG_CONTAINERS_UNMASKED,
        "gauge",
        "Followed containers whose secrets are reported but not masked (guard.report_only, the labels sidecar.redact=false and sidecar.guard=<another guard>).",
    ),
    (
        LOG_FILES_FOLLOWED,
        "gauge",
        "Log files (live and rotated) with a checkpoint.",
    ),
    (
        LOG_DIRS_UNWATCHED,
        "gauge",
        "Container directories without an inotify watch (fs.inotify.max_user_watches reached): listed several times a second instead.",
    ),
    (
        LOG_LAG_BYTES,
        "gauge",
        "Bytes written to live logs and not scanned yet.",
    ),
    (
        LOG_LAG_SECONDS,
        "gauge",
        "How long the container furthest behind has had bytes in its live log not scanned yet.",
    ),
    (
        LOG_CONTAINER_LAG_BYTES,
        "gauge",
        "Per container (by name): bytes written to its live log and not scanned yet.",
    ),
    (
        LOG_CONTAINER_LAG_SECONDS,
        "gauge",
        "Per container (by name): how long its live log has had bytes not scanned yet.",
    ),
    (
        MESSAGES_DROPPED_TOTAL,
        "counter",
        "sidecar's own messages dropped because its stderr was not taking them (masking went on).",
    ),
    (
        GUARD_ERRORS_TOTAL,
        "counter",
        "Errors of the log guard (unreadable files, damaged gzip files, failed writes).",
    ),
    (
        GUARD_PANICS_TOTAL,
        "counter",
        "Internal errors (panics) of the log guard, contained: one container's work is retried with back-off, or the guard restarts from its checkpoints.",
    ),
    (
        GUARD_MALFORMED_LINES_TOTAL,
        "counter",
        "Log lines that are not valid json-file JSON (scanned as text).",
    ),
    (
        AUDIT_RUNS_TOTAL,
        "counter",
        "Audits run (full and per started container).",
    ),
    (
        AUDIT_RESULTS,
        "gauge",
        "Results of the last full audit by status and severity.",
    ),
    (
        AUDIT_FAILING,
        "gauge",
        "Containers (or the daemon or host) failing each check in the last full audit.",
    ),
    (
        AUDIT_LAST_TIMESTAMP_SECONDS,
        "gauge",
        "When the last full audit finished.",
    ),
    (
        BACKUPS_TOTAL,
        "counter",
        "Scheduled backups by result (ok, failed, skipped).",
    ),
    (
        BACKUP_LAST_SUCCESS_TIMESTAMP_SECONDS,
        "gauge",
        "When the last scheduled backup was written and verified.",
    ),
    (
        BACKUP_LAST_BYTES,
        "gauge",
        "Size of the last scheduled backup.",
    ),
    (
        ENFORCE_CHANGES_TOTAL,
        "counter",
        "Changes made by enforcement (modes, owners, rotations, removals).",
    ),
    (
        ENFORCE_ERRORS_TOTAL,
        "counter",
        "Paths enforcement could not change.",
    ),
];

fn now_seconds() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

impl Metrics {
    /// Add `by` to a counter.
    pub fn add(&self, key: &str, by: f64) {
        *self
            .values
            .lock()
            .expect("metrics lock")
            .entry(key.to_string())
            .or_insert(0.0) += by;
    }

    /// Set a gauge.
    pub fn set(&self, key: &str, value: f64) {
        self.values.lock().expect("metrics lock").insert(key.to_string(), value);
    }

    /// Replace every series of the family `name` with `series` (label value, value) under `label`.
    /// Label values are escaped as the exposition format requires; control characters are dropped.
    pub fn set_family<'a>(&self, name: &str, label: &str, series: impl IntoIterator<Item = (&'a str, f64)>) {
        let mut v = self.values.lock().expect("metrics lock");
        let prefix = format!("{name}{{");
        v.retain(|k, _| !k.starts_with(&prefix));
        for (value, x) in series {
            v.insert(format!("{prefix}{label}=\"{}\"}}", label_value(value)), x);
        }
    }

    /// Observe `values` in the histogram `name` (one of [`HISTOGRAMS`]); other names are ignored.
    pub fn observe(&self, name: &'static str, values: impl IntoIterator<Item = f64>) {
        let Some((_, _, bounds)) = HISTOGRAMS.iter().find(|(n, _, _)| *n == name) else {
            return;
        };
        let mut hs = self.histograms.lock().expect("metrics lock");
        let h = hs.entry(name).or_insert_with(|| Histogram {
            bounds,
            counts: vec![0; bounds.len()],
            sum: 0.0,
            count: 0,
        });
        for v in values {
            let v = if v.is_finite() { v.max(0.0) } else { continue };
            for (b, c) in h.bounds.iter().zip(h.counts.iter_mut()) {
                if v <= *b {
                    *c += 1;
                }
            }
            h.sum += v;
            h.count += 1;
        }
    }

    /// Record an audit; a full one replaces the per-check gauges with its `results`.
    pub fn audit<'a>(&self, results: impl IntoIterator<Item = AuditSample<'a>>, scope: AuditScope) {
        self.add(AUDIT_RUNS_TOTAL, 1.0);
        if scope != AuditScope::Full {
            return;
        }
        let (results_prefix, failing_prefix) = (format!("{AUDIT_RESULTS}{{"), format!("{AUDIT_FAILING}{{"));
        let mut v = self.values.lock().expect("metrics lock");
        v.retain(|k, _| !k.starts_with(&results_prefix) && !k.starts_with(&failing_prefix));
        for r in results {
            *v.entry(format!(
                "{AUDIT_RESULTS}{{status=\"{}\",severity=\"{}\"}}",
                r.status, r.severity
            ))
            .or_insert(0.0) += 1.0;
            if r.status == "fail" {
                *v.entry(format!("{AUDIT_FAILING}{{check=\"{}\"}}", r.check))
                    .or_insert(0.0) += 1.0;
            }
        }
        v.insert(AUDIT_LAST_TIMESTAMP_SECONDS.into(), now_seconds());
    }

    /// Record a scheduled backup's outcome (`ok` with its size, `failed`, `skipped`).
    pub fn backup(&self, result: &str, bytes: Option<u64>) {
        self.add(&format!("{BACKUPS_TOTAL}{{result=\"{result}\"}}"), 1.0);
        if let Some(b) = bytes {
            self.set(BACKUP_LAST_SUCCESS_TIMESTAMP_SECONDS, now_seconds());
            self.set(BACKUP_LAST_BYTES, b as f64);
        }
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let v = self.values.lock().expect("metrics lock");
        let mut out = String::new();
        for (name, kind, help) in FAMILIES {
            out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
            for (k, val) in v.iter() {
                let base = k.split('{').next().unwrap_or(k);
                if base == *name {
                    out.push_str(&format!("{k} {val}\n"));
                }
            }
        }
        drop(v);
        let hs = self.histograms.lock().expect("metrics lock");
        for (name, help, bounds) in HISTOGRAMS {
            out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} histogram\n"));
            let h = hs.get(name);
            for (i, b) in bounds.iter().enumerate() {
                let c = h.map_or(0, |h| h.counts[i]);
                out.push_str(&format!("{name}_bucket{{le=\"{b}\"}} {c}\n"));
            }
            let (sum, count) = h.map_or((0.0, 0), |h| (h.sum, h.count));
            out.push_str(&format!(
                "{name}_bucket{{le=\"+Inf\"}} {count}\n{name}_sum {sum}\n{name}_count {count}\n"
            ));
        }
        out
    }
}

/// A label value in the exposition format: `\\`, `"` and newlines escaped, other control
/// characters dropped.
fn label_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for ch in value.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Serve `GET /metrics` on `listener` until `stop` is set.
pub fn serve(listener: TcpListener, metrics: &Metrics, stop: &AtomicBool) {
    if listener.set_nonblocking(true).is_err() {
        return;
    }
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, _)) => answer(stream, metrics),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(100)),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

fn answer(mut stream: TcpStream, metrics: &Metrics) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut req = [0u8; 1024];
    let n = stream.read(&mut req).unwrap_or(0);
    let line = String::from_utf8_lossy(&req[..n]);
    let (status, body) = if line.starts_with("GET /metrics ") || line.starts_with("GET / ") {
        ("200 OK", metrics.render())
    } else {
        ("404 Not Found", "not found: GET /metrics\n".to_string())
    };
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_family_is_replaced_whole_and_its_label_values_are_escaped() {
        let m = Metrics::default();
        m.set_family("sidecar_log_container_lag_bytes", "container", [("a", 1.0), ("b", 2.0)]);
        m.set_family(
            "sidecar_log_container_lag_bytes",
            "container",
            [("b", 3.0), ("x\"y\\z\n\u{1b}[2J", 4.0)],
        );
        let text = m.render();
        assert!(!text.contains("container=\"a\""), "{text}");
        assert!(
            text.contains("sidecar_log_container_lag_bytes{container=\"b\"} 3\n"),
            "{text}"
        );
        assert!(
            text.contains("sidecar_log_container_lag_bytes{container=\"x\\\"y\\\\z\\n[2J\"} 4\n"),
            "{text}"
        );
    }

    #[test]
    fn a_histogram_counts_each_value_in_every_bucket_at_or_above_it() {
        let m = Metrics::default();
        m.observe(
            "sidecar_log_mask_delay_seconds",
            [0.004, 0.1, 0.2, 1000.0, f64::NAN, -1.0],
        );
        m.observe("not_a_histogram", [1.0]);
        let text = m.render();
        for want in [
            "# TYPE sidecar_log_mask_delay_seconds histogram\n",
            "sidecar_log_mask_delay_seconds_bucket{le=\"0.005\"} 2\n",
            "sidecar_log_mask_delay_seconds_bucket{le=\"0.1\"} 3\n",
            "sidecar_log_mask_delay_seconds_bucket{le=\"0.15\"} 3\n",
            "sidecar_log_mask_delay_seconds_bucket{le=\"0.25\"} 4\n",
            "sidecar_log_mask_delay_seconds_bucket{le=\"300\"} 4\n",
            "sidecar_log_mask_delay_seconds_bucket{le=\"+Inf\"} 5\n",
            "sidecar_log_mask_delay_seconds_count 5\n",
        ] {
            assert!(text.contains(want), "{want} in {text}");
        }
        assert!(!text.contains("not_a_histogram"), "{text}");
    }

    #[test]
    fn render_and_serve() {
        let m = Metrics::default();
        let sample = |status| AuditSample {
            check: "privileged",
            status,
            severity: "high",
        };
        m.audit([sample("fail"), sample("pass")], AuditScope::Full);
        m.backup("ok", Some(1234));
        let text = m.render();
        assert!(text.contains("sidecar_audit_runs_total 1\n"), "{text}");
        assert!(
            text.contains("sidecar_audit_failing{check=\"privileged\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("sidecar_audit_results{status=\"pass\",severity=\"high\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("sidecar_backups_total{result=\"ok\"} 1\n"), "{text}");
        assert!(text.contains("sidecar_backup_last_bytes 1234\n"), "{text}");

        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| serve(listener, &m, &stop));
            let mut c = TcpStream::connect(addr).unwrap();
            c.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
            let mut got = String::new();
            c.read_to_string(&mut got).unwrap();
            assert!(
                got.starts_with("HTTP/1.1 200 OK") && got.contains("sidecar_audit_runs_total 1"),
                "{got}"
            );
            stop.store(true, Ordering::Relaxed);
        });
    }
}
