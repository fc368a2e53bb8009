//! The audit stream, `<state_dir>/audit/audit.jsonl`: what `sidecar run` appends after each audit
//! (one [`AuditRecord`] per container and check, JSONL, 0600 in a 0700 directory, fsynced once per
//! batch, rotated to `.1` past [`AUDIT_STREAM_MAX`]), and its read-back by `sidecar report` (the
//! latest result per container and check: the posture shown beside the secrets). Writer and reader
//! share [`AuditRecord`]. Evidence never holds a secret (the checks give rule and fingerprint only).
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Version of the audit stream's records.
pub const AUDIT_SCHEMA: u32 = 1;
/// The audit stream is rotated (to `.1`, one kept) past this size.
pub const AUDIT_STREAM_MAX: u64 = 16 << 20;

/// One check's result for one container (or the daemon, or the host) at one audit, as the stream
/// holds it. The policy's result with its status and severity as text, the record's schema and the
/// audit's time. Fields in name order: the order the stream has always had, and the order of the
/// `audit` entries of `sidecar report --format json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Check id.
    #[serde(default)]
    pub check: String,
    /// Container name, `daemon` or `host`.
    #[serde(default)]
    pub container: String,
    /// What was seen (never a secret value).
    #[serde(default)]
    pub evidence: String,
    /// How to fix a failure.
    #[serde(default)]
    pub fix: String,
    /// Why the risk is accepted (status `accepted`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// [`AUDIT_SCHEMA`].
    #[serde(default)]
    pub schema: u32,
    /// Severity of a failure: `low`, `medium`, `high`.
    #[serde(default)]
    pub severity: String,
    /// Outcome: `pass`, `fail`, `accepted`, `error`.
    #[serde(default)]
    pub status: String,
    /// When the audit ran (RFC 3339 UTC).
    #[serde(default)]
    pub time: String,
}

impl AuditRecord {
    /// A failure, or a failure whose risk is accepted: what the report's posture lists.
    pub fn is_failing_or_accepted(&self) -> bool {
        self.status == "fail" || self.status == "accepted"
    }
}

/// `<state_dir>/audit/audit.jsonl`.
pub fn audit_stream_path(state_dir: &Path) -> PathBuf {
    crate::state::StateDir::new(state_dir).audit_stream()
}

/// Append `records` to the audit stream at `path` (created with its directory; the file 0600, the
/// directory 0700), fsynced once per batch; rotated to `.1` first when over [`AUDIT_STREAM_MAX`].
pub fn append_audit_stream(path: &Path, records: &[AuditRecord]) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        crate::fsutil::create_private_dir(dir)?;
    }
    if std::fs::metadata(path).is_ok_and(|m| m.len() > AUDIT_STREAM_MAX) {
        let mut old = path.as_os_str().to_owned();
        old.push(".1");
        std::fs::rename(path, old)?;
    }
    let mut buf = Vec::new();
    for r in records {
        serde_json::to_writer(&mut buf, r)?;
        buf.push(b'\n');
    }
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(&buf)?;
    f.sync_data()
}

/// The latest audit result per container and check, from the audit stream under `state_dir` (and
/// its rotated `.1`), by container and check. Lines that are not records are skipped.
pub fn latest_audit(state_dir: &Path) -> io::Result<Vec<AuditRecord>> {
    let stream = audit_stream_path(state_dir);
    let mut latest: BTreeMap<(String, String), AuditRecord> = BTreeMap::new();
    for path in [stream.with_extension("jsonl.1"), stream] {
        let Ok(file) = File::open(&path) else { continue };
        for line in BufReader::new(file).lines() {
            let Ok(r) = serde_json::from_str::<AuditRecord>(&line?) else {
                continue;
            };
            latest.insert((r.container.clone(), r.check.clone()), r);
        }
    }
    Ok(latest.into_values().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(status: &str, time: &str) -> AuditRecord {
        AuditRecord {
            check: "privileged".into(),
            container: "openclaw".into(),
            evidence: "x".into(),
            fix: "drop it".into(),
            reason: None,
            schema: AUDIT_SCHEMA,
            severity: "high".into(),
            status: status.into(),
            time: time.into(),
        }
    }

    #[test]
    fn latest_audit_result_per_container_and_check() {
        let tmp = tempfile::tempdir().unwrap();
        let stream = audit_stream_path(tmp.path());
        append_audit_stream(&stream, &[record("fail", "2026-11-01T00:00:00Z")]).unwrap();
        append_audit_stream(&stream, &[record("pass", "2026-11-02T00:00:00Z")]).unwrap();
        let latest = latest_audit(tmp.path()).unwrap();
        assert_eq!(latest, vec![record("pass", "2026-11-02T00:00:00Z")]);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&stream).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_written_record_reads_back_equal_and_keeps_the_stream_format() {
        let mut r = record("accepted", "2026-11-01T00:00:00Z");
        r.reason = Some("audit reads the API".into());
        let line = serde_json::to_string(&r).unwrap();
        assert_eq!(
            line,
            r#"{"check":"privileged","container":"openclaw","evidence":"x","fix":"drop it","reason":"audit reads the API","schema":1,"severity":"high","status":"accepted","time":"2026-11-01T00:00:00Z"}"#
        );
        assert_eq!(serde_json::from_str::<AuditRecord>(&line).unwrap(), r);
        assert!(r.is_failing_or_accepted());
    }
}
