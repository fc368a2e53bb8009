//! The flagged-secret report as the log guard writes it, under `<state_dir>/findings/` (0600 files,
//! 0700 directory); never a secret:
//! - `findings.jsonl`: one record per occurrence (the engine's finding plus container name and
//!   image), appended per batch and fsynced before each guard checkpoint; rotated to `findings-<UTC stamp>.jsonl` past an eighth of
//!   the size cap.
//! - `secrets-<stamp>.jsonl`: the summary. When the rotated files are more than `keep`, or the
//!   directory is over its cap or over three eighths of it, the oldest rotated files are folded into
//!   one aggregate record per secret and container (the first occurrence's record plus
//!   `occurrences`: count, first and last log time, count per day), so a noisy container never
//!   pushes an older secret out of the report. Folding writes the new summary under a temporary
//!   name, fsyncs and renames it, then removes the older summary and the files it folded: the stamp
//!   in the summary's name says which rotated files it already holds, so a crash at any point
//!   neither loses nor counts anything twice.
//! - Distinct secrets: the guard records new secrets one by one only while the directory is under
//!   three eighths of the cap ([`FindingLog::room_for_new_secrets`]); beyond, they are counted per
//!   rule. So the summary stays under half the cap and a secret once listed stays listed. Only
//!   records appended without that check (not the guard's) past half the cap are folded into the
//!   per-rule count.
//!
//! Crash safety works with the guard's checkpoints: the checkpoint records how long the current
//! file was when it was committed. Records past that length were written for log bytes the
//! checkpoint does not cover yet; after a restart they are read back ([`FindingLog::open`]) so that
//! rescanning those bytes records nothing twice. The file is only rotated right after a checkpoint.
use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::budget::{is_over_cap, mark_over_cap};
use super::read::{read_findings_from, ROTATED_PREFIX, SUMMARY_PREFIX};
use super::record::{FindingRecord, Occurrences};
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

/// A key's 128-bit digest: what the guard holds in memory for each occurrence recorded since its
/// last checkpoint (16 bytes instead of five strings; a collision, at 2^-64 for billions of keys,
/// would only leave one occurrence unrecorded).
pub type OccurrenceId = u128;

/// A key's digest as it is written in state files: 32 hex digits.
pub fn id_to_hex(id: OccurrenceId) -> String {
    format!("{id:032x}")
}

/// A key's digest read back from [`id_to_hex`] (`None` when it is not one).
pub fn id_from_hex(hex: &str) -> Option<OccurrenceId> {
    u128::from_str_radix(hex, 16).ok()
}

/// The digest of an occurrence key.
pub fn occurrence_id(k: &OccurrenceKey) -> OccurrenceId {
    let mut h = blake3::Hasher::new();
    let mut field = |s: Option<&str>| {
        match s {
            Some(s) => {
                h.update(&[1]);
                h.update(&(s.len() as u64).to_le_bytes());
                h.update(s.as_bytes());
            }
            None => {
                h.update(&[0]);
            }
        };
    };
    field(k.0.as_deref());
    field(k.1.as_deref());
    field(Some(&k.3));
    field(Some(&k.4));
    h.update(&k.2.to_le_bytes());
    digest128(&h)
}

/// The first 128 bits of what `h` hashed.
fn digest128(h: &blake3::Hasher) -> u128 {
    let mut out = [0u8; 16];
    out.copy_from_slice(&h.finalize().as_bytes()[..16]);
    u128::from_le_bytes(out)
}

/// The append-only findings file and its rotation.
#[derive(Debug)]
pub struct FindingLog {
    dir: PathBuf,
    file: File,
    len: u64,
    /// The directory's size cap.
    cap_bytes: u64,
    keep: usize,
    /// What the last fold found.
    folds: FoldStats,
    /// Bytes of the summary and the rotated files (all but the current file), as last listed.
    stored: u64,
    /// Rotation size other than an eighth of the cap (tests).
    rotate_at: Option<u64>,
    /// Records past the checkpoint at open beyond [`PENDING_MAX`] (not returned).
    pending_beyond: u64,
    /// The aggregates journal's generations (`batch`) of the records past the checkpoint at open.
    batches: HashSet<String>,
}

/// Keys of records past the checkpoint read back at open, at most: memory at start-up is bounded
/// whatever a crash left (the recording budget keeps what one checkpoint covers far below this).
pub const PENDING_MAX: usize = 16_384;

/// What folding rotated files into the summary did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FoldStats {
    /// Rotated files folded (in total, since open).
    pub files_folded: u64,
    /// Aggregate records in the newest summary.
    pub summary_records: u64,
    /// Size of the findings directory after the last rotation.
    pub dir_bytes: u64,
    /// The summary alone is over the cap (distinct secrets are kept all the same).
    pub over_cap: bool,
}

impl FindingLog {
    /// Open (creating) `<dir>/findings.jsonl`, keeping the directory under `cap_bytes` and at most
    /// `keep` rotated occurrence files. A record cut short by a crash is removed, and what a crash
    /// left of a fold is finished. Returns the keys of the records past `committed_len`, the ones a
    /// checkpoint does not cover yet.
    pub fn open(
        dir: &Path,
        cap_bytes: u64,
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
        let mut pending_beyond = 0;
        let mut batches = HashSet::new();
        if committed_len < len {
            file.seek(SeekFrom::Start(committed_len))?;
            let reader = BufReader::new((&mut file).take(len - committed_len));
            for line in reader.split(b'\n') {
                let line = line?;
                let Ok(r) = serde_json::from_slice::<FindingRecord>(&line) else {
                    continue;
                };
                if let Some(b) = r.batch {
                    batches.insert(b);
                }
                if pending.len() < PENDING_MAX {
                    pending.insert(occurrence_key(&r.finding));
                } else {
                    pending_beyond += 1;
                }
            }
        }
        let mut log = Self {
            dir: dir.to_path_buf(),
            file,
            len,
            cap_bytes: cap_bytes.max(1),
            keep,
            folds: FoldStats::default(),
            stored: 0,
            rotate_at: None,
            pending_beyond,
            batches,
        };
        log.fold_if_due()?;
        Ok((log, pending))
    }

    /// Records past the checkpoint at open that were not read back (beyond [`PENDING_MAX`]): the
    /// rescan of their log bytes may record them again.
    pub fn pending_beyond(&self) -> u64 {
        self.pending_beyond
    }

    /// The aggregates journal's generations found on the records past the checkpoint at open:
    /// those generations reached the report.
    pub fn batches_read_back(&self) -> &HashSet<String> {
        &self.batches
    }

    /// Bytes the report can still take in records of secrets new to it: what the directory holds
    /// (summary, rotated files, current file) up to [`NEW_SECRETS_SHARE`] of the cap. The guard
    /// records new secrets one by one only while this is not spent (beyond, per rule), so that
    /// folding never has to turn a secret already listed into a count per rule: every distinct
    /// secret listed stays in the report.
    pub fn room_for_new_secrets(&self) -> u64 {
        (self.cap_bytes / 8 * NEW_SECRETS_SHARE).saturating_sub(self.stored + self.len)
    }

    /// Current length of `findings.jsonl` (what a checkpoint records).
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when nothing has been written to the current file.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Append one record per finding (made durable by [`FindingLog::sync`]).
    pub fn append<'a>(
        &mut self,
        findings: impl IntoIterator<Item = &'a Finding>,
        container: &str,
        image: &str,
    ) -> io::Result<()> {
        let mut buf = Vec::new();
        // One record built per batch, its finding swapped per occurrence: nothing is copied.
        let mut record: Option<FindingRecord<&Finding>> = None;
        for finding in findings {
            let r = record.get_or_insert_with(|| FindingRecord::occurrence(finding, container, image));
            r.finding = finding;
            serde_json::to_writer(&mut buf, r)?;
            buf.push(b'\n');
        }
        self.write_batch(&buf)
    }

    fn write_batch(&mut self, buf: &[u8]) -> io::Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        if let Err(e) = self.file.write_all(buf) {
            // A full disk may have taken part of the batch: cut it off, so that the next append
            // does not glue a record onto half of one.
            let _ = self.file.set_len(self.len);
            return Err(e);
        }
        self.len += buf.len() as u64;
        Ok(())
    }

    /// Append aggregate records (their `occurrences` set), as the recording budget makes them.
    pub fn append_records(&mut self, records: &[FindingRecord]) -> io::Result<()> {
        let mut buf = Vec::new();
        for r in records {
            serde_json::to_writer(&mut buf, r)?;
            buf.push(b'\n');
        }
        self.write_batch(&buf)
    }

    /// Make what was appended durable (the guard does it before each checkpoint).
    pub fn sync(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    /// A second handle on the current findings file, to sync it on another thread (what was
    /// appended before the call is then durable).
    pub fn sync_handle(&self) -> io::Result<File> {
        self.file.try_clone()
    }

    /// What folding has done so far.
    pub fn fold_stats(&self) -> FoldStats {
        self.folds
    }

    /// Size at which `findings.jsonl` is rotated: an eighth of the cap.
    fn rotate_bytes(&self) -> u64 {
        self.rotate_at.unwrap_or((self.cap_bytes / 8).max(1))
    }

    #[cfg(test)]
    fn rotate_bytes_for_tests(&mut self, n: u64) {
        self.rotate_at = Some(n);
    }

    /// Whether [`FindingLog::rotate_if_due`] would rotate now.
    pub fn rotation_due(&self) -> bool {
        self.len >= self.rotate_bytes()
    }

    /// Rotate when the file is over its size, then fold the oldest rotated files into the summary
    /// while they are more than `keep` or the directory is over its cap. Call only right after a
    /// checkpoint that covers everything written. Returns true when it rotated.
    pub fn rotate_if_due(&mut self) -> io::Result<bool> {
        if self.len < self.rotate_bytes() {
            return Ok(false);
        }
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.9fZ");
        let current = self.dir.join(CURRENT);
        fs::rename(&current, self.dir.join(format!("{ROTATED_PREFIX}{stamp}.jsonl")))?;
        self.stored += self.len;
        self.file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&current)?;
        File::open(&self.dir)?.sync_all()?;
        self.len = 0;
        self.fold_if_due()?;
        Ok(true)
    }

    /// The summaries and rotated occurrence files, by stamp (oldest first), and the directory's size.
    fn listing(&self) -> io::Result<Listing> {
        let mut l = Listing::default();
        for e in fs::read_dir(&self.dir)?.flatten() {
            let Ok(md) = e.metadata() else { continue };
            if !md.is_file() {
                continue;
            }
            l.bytes += md.len();
            let name = e.file_name().to_string_lossy().into_owned();
            let stamp = |prefix: &str| {
                name.strip_prefix(prefix)
                    .and_then(|r| r.strip_suffix(".jsonl"))
                    .map(str::to_string)
            };
            if name == CURRENT {
                l.current = md.len();
            } else if let Some(s) = stamp(SUMMARY_PREFIX) {
                l.summaries.push((s, md.len()));
            } else if let Some(s) = stamp(ROTATED_PREFIX) {
                l.rotated.push((s, md.len()));
            }
        }
        l.summaries.sort();
        l.rotated.sort();
        Ok(l)
    }

    /// Remove what a finished fold left (older summaries, files already folded), then fold while
    /// the rotated files are too many or the directory is over its cap.
    fn fold_if_due(&mut self) -> io::Result<()> {
        let mut l = self.listing()?;
        let folded_through = l.summaries.last().map(|(s, _)| s.clone());
        if let Some(through) = &folded_through {
            for (s, len) in l.summaries.drain(..l.summaries.len() - 1) {
                fs::remove_file(self.dir.join(format!("{SUMMARY_PREFIX}{s}.jsonl")))?;
                l.bytes -= len;
            }
            let (done, todo): (Vec<_>, Vec<_>) = l.rotated.into_iter().partition(|(s, _)| s <= through);
            for (s, len) in done {
                fs::remove_file(self.dir.join(format!("{ROTATED_PREFIX}{s}.jsonl")))?;
                l.bytes -= len;
            }
            l.rotated = todo;
        }
        let summary_len = l.summaries.last().map_or(0, |(_, n)| *n);
        self.stored = l.bytes - l.current;
        // How many of the oldest rotated files to fold.
        let mut n = l.rotated.len().saturating_sub(self.keep);
        let mut bytes = l.bytes - l.rotated[..n].iter().map(|(_, b)| b).sum::<u64>();
        // Room is left for the current file to grow to its rotation size, and for new secrets
        // (folding repeats into one record per secret gives room back).
        let room = self
            .cap_bytes
            .saturating_sub(self.rotate_bytes())
            .min(self.cap_bytes / 8 * NEW_SECRETS_SHARE);
        while bytes > room && n < l.rotated.len() {
            bytes -= l.rotated[n].1;
            n += 1;
        }
        self.folds.dir_bytes = l.bytes;
        self.folds.over_cap = summary_len > self.cap_bytes / 2;
        if n == 0 {
            return Ok(());
        }
        let mut through = folded_through;
        for chunk in l.rotated[..n].chunks(FOLD_FILES) {
            self.fold(through.as_deref(), chunk)?;
            through = chunk.last().map(|(s, _)| s.clone());
        }
        let l = self.listing()?;
        self.folds.dir_bytes = l.bytes;
        self.stored = l.bytes - l.current;
        Ok(())
    }

    /// Fold `files` (oldest first) into the summary `folded_through` and write the new summary.
    /// Memory follows the distinct secrets of `files` (a 16-byte key and the occurrence counts
    /// each, at most [`FOLD_FILES`] rotated files), never their records nor the summary: a first
    /// pass over `files` counts the occurrences per secret and container; the summary is streamed
    /// into the new one, each of its records merged with those counts; a second pass over `files`
    /// writes the secrets new to the summary, each from its first record.
    fn fold(&mut self, folded_through: Option<&str>, files: &[(String, u64)]) -> io::Result<()> {
        type Key = (String, String);
        let key_of = |r: &FindingRecord| -> Key {
            (
                r.finding.fingerprint.clone(),
                r.finding.container_id.clone().unwrap_or_else(|| r.finding.file.clone()),
            )
        };
        let digest_of = |r: &FindingRecord| -> u128 {
            let (fp, owner) = key_of(r);
            let mut h = blake3::Hasher::new();
            h.update(&(fp.len() as u64).to_le_bytes());
            h.update(fp.as_bytes());
            h.update(owner.as_bytes());
            digest128(&h)
        };
        let rotated = |s: &str| fsutil::open_nofollow(&self.dir.join(format!("{ROTATED_PREFIX}{s}.jsonl")));
        let mut counts: HashMap<u128, Occurrences> = HashMap::new();
        for (s, _) in files {
            read_findings_from(rotated(s)?, &mut |r: FindingRecord| {
                let occ = r.occurrences.clone().unwrap_or_else(|| Occurrences::of(&r.finding));
                match counts.entry(digest_of(&r)) {
                    Entry::Occupied(mut a) => a.get_mut().merge(&occ),
                    Entry::Vacant(v) => {
                        v.insert(occ);
                    }
                }
            })?;
        }
        let through = &files.last().expect("something to fold").0;
        let dest = self.dir.join(format!("{SUMMARY_PREFIX}{through}.jsonl"));
        let mut out = SummaryWriter {
            out: fsutil::AtomicFile::create(&dest)?,
            len: 0,
            records: 0,
            failed: None,
        };
        // The per-rule aggregates of secrets beyond the cap (one per container and rule): written
        // last, with what this fold adds to them.
        let mut over: HashMap<Key, FindingRecord> = HashMap::new();
        let mut order_over: Vec<Key> = Vec::new();
        let mut add_over = |r: FindingRecord, over: &mut HashMap<Key, FindingRecord>| {
            let r = as_over_cap(r);
            let key = key_of(&r);
            let occ = r.occurrences.clone().unwrap_or_else(|| Occurrences::of(&r.finding));
            match over.get_mut(&key) {
                Some(a) => a.occurrences.get_or_insert_with(Occurrences::default).merge(&occ),
                None => {
                    order_over.push(key.clone());
                    over.insert(key, r);
                }
            }
        };
        if let Some(s) = folded_through {
            let file = fsutil::open_nofollow(&self.dir.join(format!("{SUMMARY_PREFIX}{s}.jsonl")))?;
            read_findings_from(file, &mut |mut r: FindingRecord| {
                if let Some(occ) = counts.remove(&digest_of(&r)) {
                    let mut merged = r.occurrences.take().unwrap_or_else(|| Occurrences::of(&r.finding));
                    merged.merge(&occ);
                    r.occurrences = Some(merged);
                }
                if is_over_cap(&r.finding.fingerprint) {
                    add_over(r, &mut over);
                } else {
                    out.write(&r);
                }
            })?;
        }
        // Secrets new to the summary, from their first record, while it is under half the cap;
        // beyond, per rule (the guard's recording budget stops recording new secrets one by one
        // well before: see `FindingLog::room_for_new_secrets`).
        let limit = self.cap_bytes / 2;
        for (s, _) in files {
            read_findings_from(rotated(s)?, &mut |mut r: FindingRecord| {
                let Some(occ) = counts.remove(&digest_of(&r)) else {
                    return;
                };
                r.occurrences = Some(occ);
                r.batch = None;
                if out.len > limit || is_over_cap(&r.finding.fingerprint) {
                    add_over(r, &mut over);
                } else {
                    out.write(&r);
                }
            })?;
        }
        for key in &order_over {
            if let Some(r) = over.remove(key) {
                out.write(&r);
            }
        }
        if let Some(e) = out.failed {
            return Err(e);
        }
        let (summary_len, records) = (out.len, out.records);
        out.out.commit()?;
        if let Some(s) = folded_through {
            fs::remove_file(self.dir.join(format!("{SUMMARY_PREFIX}{s}.jsonl")))?;
        }
        for (s, _) in files {
            fs::remove_file(self.dir.join(format!("{ROTATED_PREFIX}{s}.jsonl")))?;
        }
        File::open(&self.dir)?.sync_all()?;
        self.folds.files_folded += files.len() as u64;
        self.folds.summary_records = records;
        self.folds.over_cap = summary_len > self.cap_bytes / 2;
        Ok(())
    }
}

/// The new summary being written (the first error is kept; what follows it is skipped).
struct SummaryWriter {
    out: fsutil::AtomicFile,
    len: u64,
    records: u64,
    failed: Option<io::Error>,
}

impl SummaryWriter {
    fn write(&mut self, r: &FindingRecord) {
        if self.failed.is_some() {
            return;
        }
        let line = serde_json::to_vec(r).map_err(io::Error::from).and_then(|mut line| {
            line.push(b'\n');
            self.out.write_all(&line).map(|()| line.len() as u64)
        });
        match line {
            Ok(n) => {
                self.len += n;
                self.records += 1;
            }
            Err(e) => self.failed = Some(e),
        }
    }
}

/// `r` as (part of) its container's per-rule aggregate of secrets beyond the cap.
fn as_over_cap(mut r: FindingRecord) -> FindingRecord {
    if !is_over_cap(&r.finding.fingerprint) {
        r.occurrences = Some(r.occurrences.take().unwrap_or_else(|| Occurrences::of(&r.finding)));
        mark_over_cap(&mut r.finding);
    }
    r
}

/// Eighths of the cap that records of distinct secrets may fill
/// ([`FindingLog::room_for_new_secrets`]): below the half at which folding would count new
/// secrets per rule, with an eighth (a rotation's worth of records) to spare.
pub const NEW_SECRETS_SHARE: u64 = 3;

/// Rotated files folded at a time: a fold holds a key and the counts of each distinct secret of
/// theirs in memory, never their records nor the summary.
const FOLD_FILES: usize = 2;

/// Summaries and rotated occurrence files by stamp (with sizes), and the directory's total size.
#[derive(Debug, Default)]
struct Listing {
    summaries: Vec<(String, u64)>,
    rotated: Vec<(String, u64)>,
    bytes: u64,
    /// Size of the current file.
    current: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redact::Severity;

    fn finding(start: u64) -> Finding {
        Finding {
            partial: false,
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
    fn rotates_by_size_and_folds_beyond_keep() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = FindingLog::open(dir.path(), 1 << 20, 2, 0).unwrap();
        log.rotate_bytes_for_tests(100);
        for i in 0..4 {
            log.append([&finding(i)], "c", "i").unwrap();
            assert!(log.rotate_if_due().unwrap());
            assert!(log.is_empty());
        }
        let files = crate::findings::read::finding_files(dir.path()).unwrap();
        let names: Vec<String> = files
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        // The summary (two folded files), two rotated files and the (empty) current one.
        assert_eq!(names.len(), 4, "{names:?}");
        assert_eq!(
            names.iter().filter(|n| n.starts_with(ROTATED_PREFIX)).count(),
            2,
            "{names:?}"
        );
        assert_eq!(
            names.iter().filter(|n| n.starts_with(SUMMARY_PREFIX)).count(),
            1,
            "{names:?}"
        );
        assert!(names.iter().any(|n| n == CURRENT), "{names:?}");
        assert_eq!(log.fold_stats().files_folded, 2);
    }

    #[test]
    fn a_report_read_while_the_guard_rotates_and_folds_counts_every_occurrence_once() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_path_buf();
        let (mut log, _) = FindingLog::open(&d, 64 << 10, 2, 0).unwrap();
        log.rotate_bytes_for_tests(2000);
        let written = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writer = {
            let (written, done) = (written.clone(), done.clone());
            std::thread::spawn(move || {
                for i in 0..6000u64 {
                    log.append([&finding(100 + i)], "noisy", "i").unwrap();
                    written.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    log.rotate_if_due().unwrap();
                }
                done.store(true, std::sync::atomic::Ordering::SeqCst);
            })
        };
        let mut reads = 0;
        while !done.load(std::sync::atomic::Ordering::SeqCst) {
            let before = written.load(std::sync::atomic::Ordering::SeqCst);
            // Ten readings in a row may all overlap a rotation here (one every few records): an
            // error, never a wrong count.
            let Ok((recs, damaged)) = crate::findings::read::read_findings_dir(&d) else {
                continue;
            };
            let after = written.load(std::sync::atomic::Ordering::SeqCst);
            let items = crate::findings::group::group(recs, &Default::default(), &Default::default());
            let count = items.iter().map(|i| i.count).sum::<u64>();
            // A record being appended may be cut (damaged) at the moment it is read; one may be
            // written and not counted yet.
            assert!(
                count + damaged >= before && count <= after + 1,
                "read {count} occurrences ({damaged} damaged) while {before}..{after} were written"
            );
            reads += 1;
        }
        writer.join().unwrap();
        assert!(reads > 5, "only {reads} reads overlapped the writes");
    }

    #[test]
    fn a_noisy_container_never_pushes_an_older_secret_out_and_the_cap_holds() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let cap = 64 << 10;
        let (mut log, _) = FindingLog::open(d, cap, 2, 0).unwrap();
        let mut old = finding(1);
        old.fingerprint = "cd".repeat(32);
        log.append([&old], "quiet", "i").unwrap();
        // One container repeats one secret 4 000 times (~2 MB of records).
        for i in 0..4000u64 {
            log.append([&finding(100 + i)], "noisy", "i").unwrap();
            log.rotate_if_due().unwrap();
        }
        let stats = log.fold_stats();
        assert!(stats.files_folded > 0, "{stats:?}");
        let total: u64 = fs::read_dir(d)
            .unwrap()
            .flatten()
            .map(|e| e.metadata().unwrap().len())
            .sum();
        assert!(
            total <= cap + (cap / 8) + 1024,
            "directory {total} bytes over the cap {cap}"
        );
        let read_all = || {
            let mut recs = Vec::new();
            let files = crate::findings::read::finding_files(d).unwrap();
            crate::findings::read::read_findings(&files, |r| recs.push(r)).unwrap();
            crate::findings::group::group(recs, &Default::default(), &Default::default())
        };
        let items = read_all();
        assert_eq!(items.len(), 2, "both secrets are still in the report");
        let noisy = items.iter().find(|i| i.fingerprint == "ab".repeat(32)).unwrap();
        assert_eq!(noisy.count, 4000, "every occurrence counted once");
        assert_eq!(
            items.iter().find(|i| i.fingerprint == "cd".repeat(32)).unwrap().count,
            1
        );
        // A crash after the new summary was renamed but before the folded files were removed:
        // put a folded file back (and an older summary); nothing is counted twice, and reopening
        // removes them.
        let summary = fs::read_dir(d)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .find(|n| n.starts_with(SUMMARY_PREFIX))
            .unwrap();
        let stamp = summary
            .strip_prefix(SUMMARY_PREFIX)
            .unwrap()
            .strip_suffix(".jsonl")
            .unwrap();
        let stale = d.join(format!("{ROTATED_PREFIX}{stamp}.jsonl"));
        fs::write(&stale, fs::read(d.join(&summary)).unwrap()).unwrap();
        fs::write(d.join(format!("{SUMMARY_PREFIX}00000000.jsonl")), b"{}\n").unwrap();
        assert_eq!(read_all().iter().map(|i| i.count).sum::<u64>(), 4001);
        drop(log);
        let (_log, _) = FindingLog::open(d, cap, 2, 0).unwrap();
        assert!(!stale.exists());
        assert!(!d.join(format!("{SUMMARY_PREFIX}00000000.jsonl")).exists());
        assert_eq!(read_all().iter().map(|i| i.count).sum::<u64>(), 4001);
        assert_eq!(fsutil::mode(&d.join(&summary)).unwrap(), 0o600);
    }

    #[test]
    fn past_half_the_cap_secrets_new_to_the_summary_are_counted_per_rule_and_the_cap_holds() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let cap = 64 << 10;
        let (mut log, _) = FindingLog::open(d, cap, 2, 0).unwrap();
        let mut old = finding(1);
        old.fingerprint = "cd".repeat(32);
        log.append([&old], "quiet", "i").unwrap();
        // A flood: 5 000 distinct secrets (~3 MB of records), each once, and the old one again.
        for i in 0..5000u64 {
            let mut f = finding(100 + i);
            f.fingerprint = format!("{i:064x}");
            log.append([&f], "noisy", "i").unwrap();
            log.rotate_if_due().unwrap();
        }
        log.append([&old], "quiet", "i").unwrap();
        log.rotate_bytes_for_tests(1);
        log.rotate_if_due().unwrap();
        let total: u64 = fs::read_dir(d)
            .unwrap()
            .flatten()
            .map(|e| e.metadata().unwrap().len())
            .sum();
        assert!(
            total <= cap + (cap / 8) + 2048,
            "directory {total} bytes over the cap {cap}"
        );
        let mut recs = Vec::new();
        let files = crate::findings::read::finding_files(d).unwrap();
        crate::findings::read::read_findings(&files, |r| recs.push(r)).unwrap();
        let items = crate::findings::group::group(recs, &Default::default(), &Default::default());
        assert_eq!(
            items.iter().map(|i| i.count).sum::<u64>(),
            5002,
            "every occurrence counted once"
        );
        assert_eq!(
            items.iter().find(|i| i.fingerprint == "cd".repeat(32)).unwrap().count,
            2
        );
        let over = items
            .iter()
            .find(|i| is_over_cap(&i.fingerprint))
            .expect("an over-cap aggregate");
        assert_eq!(over.fingerprint, "over-cap:github-pat");
        assert_eq!(over.preview, crate::findings::budget::OVER_CAP_PREVIEW);
        assert!(over.count > 1000, "{}", over.count);
        // The secrets listed one by one are the first ones, while the summary was under half the cap.
        let listed = items.len() as u64 - 2;
        assert_eq!(listed + over.count, 5000);
        assert!(log.fold_stats().over_cap);
    }

    #[test]
    fn the_keys_read_back_at_open_are_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let (mut log, _) = FindingLog::open(d, 1 << 30, 3, 0).unwrap();
        let n = PENDING_MAX as u64 + 100;
        for i in 0..n {
            log.append([&finding(i)], "c", "i").unwrap();
        }
        drop(log);
        let (log, pending) = FindingLog::open(d, 1 << 30, 3, 0).unwrap();
        assert_eq!(pending.len(), PENDING_MAX);
        assert_eq!(log.pending_beyond(), 100);
    }
}
