//! The flagged-secret report as the log guard writes it: append-only JSONL under
//! `<state_dir>/findings/`, 0600, fsynced per batch, one record per occurrence (the engine's finding
//! plus container name and image, never the secret), rotated by size with retention.
//!
//! Crash safety works with the guard's checkpoints: the checkpoint records how long the current
//! file was when it was committed. Records past that length were written for log bytes the
//! checkpoint does not cover yet; after a restart they are read back ([`FindingLog::open`]) so that
//! rescanning those bytes records nothing twice. The file is only rotated right after a checkpoint.
use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::fsutil;
use crate::redact::Finding;

/// Name of the file being appended to; rotated files are `findings-<UTC stamp>.jsonl`.
pub const CURRENT: &str = "findings.jsonl";

/// What identifies one occurrence across rescans: container, log timestamp, offset, rule, fingerprint.
pub type OccurrenceKey = (Option<String>, Option<String>, u64, String, String);

/// The key of a finding.
pub fn occurrence_key(f: &Finding) -> OccurrenceKey {
    (
        f.container_id.clone(),
        f.time.clone(),
        f.start,
        f.rule.clone(),
        f.fingerprint.clone(),
    )
}

#[derive(Serialize)]
struct Record<'a> {
    #[serde(flatten)]
    finding: &'a Finding,
    container: &'a str,
    image: &'a str,
}

/// The append-only findings file and its rotation.
#[derive(Debug)]
pub struct FindingLog {
    dir: PathBuf,
    file: File,
    len: u64,
    max_bytes: u64,
    keep: usize,
}

impl FindingLog {
    /// Open (creating) `<dir>/findings.jsonl`. A record cut short by a crash is removed. Returns the
    /// keys of the records past `committed_len`, the ones a checkpoint does not cover yet.
    pub fn open(
        dir: &Path,
        max_bytes: u64,
        keep: usize,
        committed_len: u64,
    ) -> io::Result<(Self, HashSet<OccurrenceKey>)> {
        fsutil::create_private_dir(dir)?;
        let path = dir.join(CURRENT);
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&path)?;
        let mut len = file.metadata()?.len();
        // A crash in the middle of an append leaves a line without its newline: cut it off (its
        // findings are past the checkpoint, so they are found and written again).
        let complete = fsutil::last_line_end(&file, 0, len)?;
        if complete < len {
            file.set_len(complete)?;
            file.sync_all()?;
            len = complete;
        }
        let mut pending = HashSet::new();
        if committed_len < len {
            file.seek(SeekFrom::Start(committed_len))?;
            let reader = BufReader::new((&mut file).take(len - committed_len));
            for line in reader.split(b'\n') {
                if let Ok(f) = serde_json::from_slice::<Finding>(&line?) {
                    pending.insert(occurrence_key(&f));
                }
            }
        }
        Ok((
            Self {
                dir: dir.to_path_buf(),
                file,
                len,
                max_bytes: max_bytes.max(1),
                keep,
            },
            pending,
        ))
    }

    /// Current length of `findings.jsonl` (what a checkpoint records).
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when nothing has been written to the current file.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Append one record per finding and fsync.
    pub fn append<'a>(
        &mut self,
        findings: impl IntoIterator<Item = &'a Finding>,
        container: &str,
        image: &str,
    ) -> io::Result<()> {
        let mut buf = Vec::new();
        for finding in findings {
            serde_json::to_writer(
                &mut buf,
                &Record {
                    finding,
                    container,
                    image,
                },
            )?;
            buf.push(b'\n');
        }
        if buf.is_empty() {
            return Ok(());
        }
        if let Err(e) = self.file.write_all(&buf).and_then(|()| self.file.sync_data()) {
            // A full disk may have taken part of the batch: cut it off, so that the next append
            // does not glue a record onto half of one.
            let _ = self.file.set_len(self.len);
            return Err(e);
        }
        self.len += buf.len() as u64;
        Ok(())
    }

    /// Rotate when the file is over its size, and drop rotated files beyond `keep`. Call only right
    /// after a checkpoint that covers everything written. Returns true when it rotated.
    pub fn rotate_if_due(&mut self) -> io::Result<bool> {
        if self.len < self.max_bytes {
            return Ok(false);
        }
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.9fZ");
        let current = self.dir.join(CURRENT);
        fs::rename(&current, self.dir.join(format!("findings-{stamp}.jsonl")))?;
        self.file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&current)?;
        File::open(&self.dir)?.sync_all()?;
        self.len = 0;
        let mut rotated: Vec<PathBuf> = fs::read_dir(&self.dir)?
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("findings-") && n.contains(".jsonl"))
            })
            .collect();
        rotated.sort();
        let excess = rotated.len().saturating_sub(self.keep);
        for old in &rotated[..excess] {
            fs::remove_file(old)?;
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redact::Severity;

    fn finding(start: u64) -> Finding {
        Finding {
            schema: 1,
            rule: "github-pat".into(),
            description: "d".into(),
            severity: Severity::High,
            confidence: None,
            file: "f".into(),
            line: 1,
            end_line: 1,
            start,
            end: start + 40,
            ranges: vec![[start, start + 40]],
            container_id: Some("c".into()),
            stream: Some("stdout".into()),
            time: Some("2026-11-27T10:00:00.000000001Z".into()),
            fingerprint: "ab".repeat(32),
            preview: "ghp_****".into(),
            mask: vec![b'*'; 40],
        }
    }

    #[test]
    fn appends_privately_and_reads_back_what_the_checkpoint_lacks() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("findings");
        let (mut log, pending) = FindingLog::open(&d, 1 << 20, 3, 0).unwrap();
        assert!(pending.is_empty());
        log.append([&finding(10)], "openclaw", "openclaw:1").unwrap();
        let committed = log.len();
        log.append([&finding(99)], "openclaw", "openclaw:1").unwrap();
        drop(log);
        assert_eq!(fsutil::mode(&d.join(CURRENT)).unwrap(), 0o600);
        assert_eq!(fsutil::mode(&d).unwrap(), 0o700);
        let text = fs::read_to_string(d.join(CURRENT)).unwrap();
        assert!(
            text.contains("\"container\":\"openclaw\"") && text.contains("\"schema\":1"),
            "{text}"
        );
        // A half-written record after a crash is cut off; the uncommitted one is read back.
        let mut f = OpenOptions::new().append(true).open(d.join(CURRENT)).unwrap();
        f.write_all(b"{\"schema\":1,\"rule\":\"git").unwrap();
        let (log, pending) = FindingLog::open(&d, 1 << 20, 3, committed).unwrap();
        assert_eq!(pending.len(), 1);
        assert!(pending.contains(&occurrence_key(&finding(99))));
        assert_eq!(log.len(), text.len() as u64);
        assert!(fs::read(d.join(CURRENT)).unwrap().ends_with(b"\n"));
    }

    #[test]
    fn rotates_by_size_and_keeps_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = FindingLog::open(dir.path(), 100, 2, 0).unwrap();
        for i in 0..4 {
            log.append([&finding(i)], "c", "i").unwrap();
            assert!(log.rotate_if_due().unwrap());
            assert!(log.is_empty());
        }
        let rotated = crate::report::review::finding_files(dir.path()).unwrap();
        // Two rotated files and the (empty) current one.
        assert_eq!(rotated.len(), 3, "{rotated:?}");
        assert!(rotated.last().unwrap().ends_with(CURRENT));
    }
}
