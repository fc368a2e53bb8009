//! The log guard's checkpoints: how far each log file has been scanned, written atomically to
//! `<state_dir>/checkpoints.json`.
//!
//! A file is known by its *identity*: a hash of its container id and its first complete line.
//! Docker's lines end in a nanosecond timestamp, so the identity is unique, and it survives every
//! move Docker makes: `name` → `name.1` (same inode) and `name.1` → `name.1.gz` (a new inode with the
//! same decompressed bytes). So a file rotated or compressed while sidecar was down is recognised
//! and scanned from where it was left.
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::scan::OpenUnit;
use crate::fsutil;
use crate::redact::Finding;

/// Checkpoint format version.
pub const CHECKPOINT_VERSION: u32 = 1;

/// Progress on one log file (by identity).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileMark {
    /// Container id.
    pub container: String,
    /// Device and inode where the plain file was last seen.
    pub dev: u64,
    /// Inode.
    pub inode: u64,
    /// Bytes scanned: every finding in a unit that ends before this offset is in the report.
    pub end: u64,
    /// Where the next scan starts: `end`, or the first line of a unit still waiting for its end.
    pub resume: u64,
    /// Lines before `resume`.
    pub resume_line: u64,
    /// Hash of the (up to) 64 bytes before `end`, after masking: tells a file rewritten beneath us.
    pub tail: String,
    /// Unix time the file was last seen (marks of files gone for an hour are dropped).
    pub seen: u64,
    /// Units open at `end` (from `resume` on): their findings are not reported yet.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub open: Vec<OpenUnit>,
    /// To be scanned again from `resume` (0) up to `end` even without new bytes, masking and not
    /// recording: the host restarted since this mark, and masks written into the file before may
    /// have been lost with the page cache (see [`Checkpoints::after_reboot`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rescan: bool,
}

/// A compressed rotated file that has been checked (and masked when needed).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GzMark {
    /// Container id.
    pub container: String,
    /// Identity of its content.
    #[serde(default)]
    pub ident: String,
    /// Size when checked.
    pub size: u64,
    /// The file could not be decompressed (it is reported once, and left as it is).
    #[serde(default)]
    pub damaged: bool,
    /// Unix time last seen.
    pub seen: u64,
}

/// An occurrence recovered after a crash (`Checkpoints::recovered`), kept as its digest: written as
/// 32 hex digits (after a crash under a flood, 10 000 keys written out in full made each checkpoint
/// 1.9 MB for an hour); the full keys of checkpoints written before are read as well.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RecoveredKey(pub crate::findings::sink::OccurrenceId);

impl Serialize for RecoveredKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::findings::sink::id_to_hex(self.0))
    }
}

impl<'de> Deserialize<'de> for RecoveredKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            Digest(String),
            Key(crate::findings::sink::OccurrenceKey),
        }
        match Either::deserialize(d)? {
            Either::Digest(h) => crate::findings::sink::id_from_hex(&h)
                .map(RecoveredKey)
                .ok_or_else(|| serde::de::Error::custom("a recovered key is not 32 hex digits")),
            Either::Key(k) => Ok(RecoveredKey(crate::findings::sink::occurrence_id(&k))),
        }
    }
}

/// Everything the guard persists between runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Checkpoints {
    /// Format version.
    pub version: u32,
    /// Length of `findings/findings.jsonl` when this checkpoint was written.
    pub report_len: u64,
    /// Plain-file progress by identity.
    pub files: BTreeMap<String, FileMark>,
    /// Checked compressed files by `dev:inode`.
    pub gz: BTreeMap<String, GzMark>,
    /// Masks owed to compressed files (by content identity): parts of secrets found while scanning
    /// the file after them, written when the compressed file is next checked. Kept here so that a
    /// restart in between does not forget them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub gz_owed: BTreeMap<String, Vec<Finding>>,
    /// Identities of first lines the guard masked → the file's checkpoint key (the identity of its
    /// first line as first seen): a file stays the same file, and its compressed copy (made
    /// before or after the mask) finds the same checkpoint.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub aliases: BTreeMap<String, String>,
    /// Occurrences found in the report past a checkpoint after a crash (recorded, but the files
    /// holding them were checkpointed before them): never recorded again, for an hour after
    /// `recovered_at` (a file may be scanned again only after later checkpoints, e.g. as a `.gz`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recovered: Vec<RecoveredKey>,
    /// Unix time of the last crash recovery that added to `recovered`.
    #[serde(default)]
    pub recovered_at: u64,
    /// The generation of the aggregates journal whose counts were appended to the report before
    /// this checkpoint (see [`crate::findings::journal`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aggregates_written: Option<String>,
    /// The boot these checkpoints were written in (`/proc/sys/kernel/random/boot_id`). Masks
    /// written into Docker's files are not synced to disk before a checkpoint: only a power cut
    /// or a crash of the host loses them, and a checkpoint of another boot has every file scanned
    /// again ([`Checkpoints::after_reboot`]).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub boot_id: String,
}

/// The identity of the running boot (`/proc/sys/kernel/random/boot_id`; `None` where it cannot be
/// read).
pub fn boot_id() -> Option<String> {
    let id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let id = id.trim();
    (!id.is_empty()).then(|| id.to_string())
}

impl Checkpoints {
    /// Checkpoints written in another boot than `boot`: masks written into Docker's files before
    /// the host stopped may have been lost with its page cache (they are not synced, to spare the
    /// host a flush of Docker's own writes at every checkpoint), so every plain file checkpointed
    /// is scanned again from its start and masked, recording nothing it recorded before. Returns
    /// whether that is so (the checkpoints then carry `boot`).
    pub fn after_reboot(&mut self, boot: &str) -> bool {
        if self.boot_id == boot {
            return false;
        }
        let before = std::mem::replace(&mut self.boot_id, boot.to_string());
        if before.is_empty() {
            // First start, or checkpoints of a build that synced every masked file.
            return false;
        }
        for m in self.files.values_mut().filter(|m| m.end > 0) {
            m.resume = 0;
            m.resume_line = 0;
            m.rescan = true;
        }
        true
    }

    /// `<state_dir>/checkpoints.json`.
    pub fn path(state_dir: &Path) -> PathBuf {
        crate::state::StateDir::new(state_dir).checkpoints()
    }

    /// Load (an absent file is a first start).
    pub fn load(state_dir: &Path) -> io::Result<Self> {
        let path = Self::path(state_dir);
        let Some(cp) = read_json::<Self>(
            &path,
            "move it away to rescan every log from the start (findings already reported will be reported again)",
        )?
        else {
            return Ok(Self {
                version: CHECKPOINT_VERSION,
                ..Self::default()
            });
        };
        if cp.version != CHECKPOINT_VERSION {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{} has format version {}, this sidecar reads version {CHECKPOINT_VERSION}",
                    path.display(),
                    cp.version
                ),
            ));
        }
        Ok(cp)
    }

    /// Write atomically (0600).
    pub fn save(&self, state_dir: &Path) -> io::Result<()> {
        // Streamed (buffered) into the temporary file: no copy of the whole JSON in memory (masks
        // owed to `.gz` files made it 33 MB under a flood of secrets).
        let mut out = fsutil::AtomicFile::create(&Self::path(state_dir))?;
        serde_json::to_writer(&mut out, self)?;
        out.commit()
    }

    /// Drop marks of files not seen since `before` (unix seconds) and of containers not in `alive`.
    pub fn prune(&mut self, before: u64, alive: &dyn Fn(&str) -> bool) {
        self.files.retain(|_, m| m.seen >= before && alive(&m.container));
        self.gz.retain(|_, m| m.seen >= before && alive(&m.container));
        let files = &self.files;
        self.gz_owed.retain(|ident, _| files.contains_key(ident));
        self.aliases.retain(|_, ident| files.contains_key(ident));
        if self.recovered_at < before {
            self.recovered.clear();
        }
    }
}

/// A JSON state file, a regular file of at most 256 MiB (`None` when absent); a damaged one is an
/// error that says what to do.
fn read_json<T: serde::de::DeserializeOwned>(path: &Path, what_to_do: &str) -> io::Result<Option<T>> {
    let file = match fsutil::open_input(path, fsutil::InputKind::CHECKPOINTS) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    serde_json::from_reader(io::BufReader::new(file))
        .map(Some)
        .map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} is damaged ({e}); {what_to_do}", path.display()),
            )
        })
}

/// Masks that take more than one write: the parts of a secret in an entry that Docker split at
/// 16 KiB (across a rotation into two files, or in one file), or a PEM key over several entries.
/// Saved before the first of them is written, and replayed at the next start: a crash between the
/// writes would leave the secret partly masked, and what is left of it could no longer be found by
/// a scan. Those across a rotation are saved here (atomically, synced); those in one file, far
/// more frequent, are appended to the [`SpansLog`] and saved here by the next checkpoint, which
/// covers the writes and empties both.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PendingMasks {
    /// The masks, by file.
    pub files: Vec<PendingFile>,
}

/// The masks owed to one file (see [`PendingMasks`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingFile {
    /// Container id.
    pub container: String,
    /// The file's checkpoint key.
    pub ident: String,
    /// The plain file's device and inode (0 and 0 for a compressed file).
    pub dev: u64,
    /// Inode.
    pub inode: u64,
    /// Offsets in the file (decompressed for a compressed file).
    pub findings: Vec<Finding>,
    /// The identity the file's first line has once masks about to be written change it: an alias
    /// of `ident`, written ahead with them. Otherwise a crash before the next checkpoint loses it,
    /// and the file (or its `.gz`) would no longer be known by its key: masks owed to it never
    /// written, the entry it starts never joined. Such a record may hold no findings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
}

impl PendingMasks {
    /// `<state_dir>/pending-masks.json`.
    pub fn path(state_dir: &Path) -> PathBuf {
        crate::state::StateDir::new(state_dir).pending_masks()
    }

    /// Load (absent: nothing pending).
    pub fn load(state_dir: &Path) -> io::Result<Self> {
        let what_to_do =
            "move it away (masks of secrets split across a rotation that a crash interrupted are then not finished)";
        Ok(read_json(&Self::path(state_dir), what_to_do)?.unwrap_or_default())
    }

    /// Write atomically (0600) and durably; with nothing pending, remove the file.
    pub fn save(&self, state_dir: &Path) -> io::Result<()> {
        let path = Self::path(state_dir);
        if self.files.is_empty() {
            return match std::fs::remove_file(&path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            };
        }
        fsutil::write_atomic(&path, &serde_json::to_vec(self)?)
    }
}

/// The pending masks of secrets that span entries of one file (see [`PendingMasks`]), appended
/// one JSON line per batch before its masks are written: one `write` on a descriptor kept open,
/// no fsync (a rewrite of `pending-masks.json` per batch cost a fifth of the guard's CPU at 10 000
/// lines/s). A kill of sidecar at any moment finds them (the kernel has them); a power cut before
/// the next checkpoint may not, and may then leave such a secret masked in part. Emptied once the
/// checkpoint has saved them in `pending-masks.json`.
#[derive(Debug)]
pub struct SpansLog {
    file: File,
    path: PathBuf,
    /// Bytes it holds.
    len: u64,
}

impl SpansLog {
    /// `<state_dir>/pending-spans.jsonl`.
    pub fn path(state_dir: &Path) -> PathBuf {
        crate::state::StateDir::new(state_dir).pending_spans()
    }

    /// Open for appending (created 0600; what it holds is kept).
    pub fn open(state_dir: &Path) -> io::Result<Self> {
        let path = Self::path(state_dir);
        let file = Self::append_to(&path)?;
        let len = file.metadata()?.len();
        Ok(Self { file, path, len })
    }

    /// `path` opened for appending (created 0600; a symbolic link is refused).
    fn append_to(path: &Path) -> io::Result<File> {
        std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(path)
    }

    /// Bytes it holds.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Drop its first `from` bytes (whole lines, saved in `pending-masks.json` meanwhile), keeping
    /// what was appended after them: the rest goes to a temporary file renamed over the log, so
    /// that a kill at any moment leaves one or the other whole (not fsynced, as the log itself).
    pub fn keep_from(&mut self, from: u64) -> io::Result<()> {
        if from >= self.len {
            return self.clear();
        }
        if from == 0 {
            return Ok(());
        }
        let reader = crate::fsutil::open_nofollow(&self.path)?;
        let len = reader.metadata()?.len().max(from);
        let mut tail = vec![0u8; (len - from) as usize];
        std::os::unix::fs::FileExt::read_exact_at(&reader, &mut tail, from)?;
        let tmp = self.path.with_extension("jsonl.tmp");
        let _ = std::fs::remove_file(&tmp);
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(&tmp)?;
        io::Write::write_all(&mut out, &tail)?;
        drop(out);
        std::fs::rename(&tmp, &self.path)?;
        self.file = Self::append_to(&self.path)?;
        self.len = tail.len() as u64;
        Ok(())
    }

    /// What an earlier run appended (absent: nothing). A line cut short by a crash or damaged is
    /// skipped. Emptied at every checkpoint, it is far below the 256 MiB a state file may hold.
    pub fn load(state_dir: &Path) -> io::Result<Vec<PendingFile>> {
        let file = match fsutil::open_input(&Self::path(state_dir), fsutil::InputKind::CHECKPOINTS) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        for line in io::BufRead::split(io::BufReader::new(file), b'\n') {
            if let Ok(p) = serde_json::from_slice::<PendingFile>(&line?) {
                out.push(p);
            }
        }
        Ok(out)
    }

    /// Append one file's pending masks (one `write`).
    pub fn append(&mut self, p: &PendingFile) -> io::Result<()> {
        let mut line = serde_json::to_vec(p)?;
        line.push(b'\n');
        let written = io::Write::write_all(&mut self.file, &line);
        // After a failed write part of the line may be there: take the length from the file.
        self.len = match &written {
            Ok(()) => self.len + line.len() as u64,
            Err(_) => self.file.metadata().map_or(self.len, |m| m.len()),
        };
        written
    }

    /// Empty it (its masks are saved in `pending-masks.json`).
    pub fn clear(&mut self) -> io::Result<()> {
        self.file.set_len(0)?;
        self.len = 0;
        Ok(())
    }
}

/// The identity of a log file from its container id and its first line (including the `\n`).
pub fn identity(container: &str, first_line: &[u8]) -> String {
    let mut h = blake3::Hasher::new();
    h.update(container.as_bytes());
    h.update(&[0]);
    h.update(first_line);
    hex::encode(&h.finalize().as_bytes()[..16])
}

/// Hash of the (up to) 64 bytes before `end` of `file`.
pub fn tail_hash(file: &File, end: u64) -> io::Result<String> {
    let start = end.saturating_sub(64);
    let mut buf = vec![0u8; (end - start) as usize];
    file.read_exact_at(&mut buf, start)?;
    Ok(tail_hash_of(&buf))
}

/// [`tail_hash`] of bytes already read (the last 64 of a file, or all of a shorter one).
pub fn tail_hash_of(last: &[u8]) -> String {
    hex::encode(&blake3::hash(last).as_bytes()[..8])
}

/// The first complete line of a stream (with its `\n`), reading at most `max` bytes; `None` when
/// there is no complete line yet.
pub fn first_line<R: Read>(mut r: R, max: usize) -> io::Result<Option<Vec<u8>>> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while out.len() < max {
        let n = match r.read(&mut buf) {
            Ok(0) => return Ok(None),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if let Some(i) = memchr::memchr(b'\n', &buf[..n]) {
            out.extend_from_slice(&buf[..=i]);
            return Ok(Some(out));
        }
        out.extend_from_slice(&buf[..n]);
    }
    // A first line longer than `max`: its first `max` bytes stand for it.
    out.truncate(max);
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovered_keys_are_written_as_digests_and_full_keys_of_older_checkpoints_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let key: crate::findings::sink::OccurrenceKey = (
            Some("c".repeat(64)),
            Some("2026-12-04T10:00:00.000000001Z".into()),
            1234,
            "github-pat".into(),
            "ab".repeat(32),
        );
        let id = crate::findings::sink::occurrence_id(&key);
        // As a checkpoint of an earlier version wrote it.
        let old = serde_json::json!({"version": CHECKPOINT_VERSION, "report_len": 0, "files": {}, "gz": {},
            "recovered": [key], "recovered_at": 5});
        std::fs::write(Checkpoints::path(dir.path()), old.to_string()).unwrap();
        let cp = Checkpoints::load(dir.path()).unwrap();
        assert_eq!(cp.recovered, vec![RecoveredKey(id)]);
        cp.save(dir.path()).unwrap();
        let text = std::fs::read_to_string(Checkpoints::path(dir.path())).unwrap();
        assert!(text.contains(&format!("\"recovered\":[\"{id:032x}\"]")), "{text}");
        assert!(!text.contains("github-pat"));
        assert_eq!(Checkpoints::load(dir.path()).unwrap().recovered, vec![RecoveredKey(id)]);
    }

    #[test]
    fn round_trips_and_refuses_damage() {
        let dir = tempfile::tempdir().unwrap();
        let mut cp = Checkpoints::load(dir.path()).unwrap();
        assert_eq!(cp.version, CHECKPOINT_VERSION);
        cp.files.insert(
            identity("c", b"{\"log\":\"a\\n\"}\n"),
            FileMark {
                container: "c".into(),
                end: 42,
                resume: 40,
                seen: 10,
                ..FileMark::default()
            },
        );
        cp.save(dir.path()).unwrap();
        assert_eq!(fsutil::mode(&Checkpoints::path(dir.path())).unwrap(), 0o600);
        assert_eq!(Checkpoints::load(dir.path()).unwrap(), cp);
        cp.prune(11, &|_| true);
        assert!(cp.files.is_empty());
        std::fs::write(Checkpoints::path(dir.path()), b"{\"version\":1,").unwrap();
        let err = Checkpoints::load(dir.path()).unwrap_err();
        assert!(err.to_string().contains("move it away"), "{err}");
        std::fs::remove_file(Checkpoints::path(dir.path())).unwrap();
        std::fs::create_dir(Checkpoints::path(dir.path())).unwrap();
        let err = Checkpoints::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("is a directory, not a regular file"), "{err}");
    }

    /// A pending entry of inode `inode`, with nothing else.
    fn pending_of(inode: u64) -> PendingFile {
        PendingFile {
            container: "c".into(),
            ident: "i".into(),
            dev: 1,
            inode,
            findings: Vec::new(),
            alias: None,
        }
    }

    #[test]
    fn the_spans_log_keeps_what_was_appended_and_skips_a_line_cut_short() {
        let dir = tempfile::tempdir().unwrap();
        assert!(SpansLog::load(dir.path()).unwrap().is_empty(), "absent: nothing");
        let p = pending_of;
        let mut log = SpansLog::open(dir.path()).unwrap();
        log.append(&p(7)).unwrap();
        log.append(&p(8)).unwrap();
        drop(log);
        // A crash in the middle of a write.
        let path = SpansLog::path(dir.path());
        let mut f = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
        io::Write::write_all(&mut f, br#"{"container":"c","ide"#).unwrap();
        let got: Vec<u64> = SpansLog::load(dir.path()).unwrap().iter().map(|p| p.inode).collect();
        assert_eq!(got, vec![7, 8]);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let mut log = SpansLog::open(dir.path()).unwrap();
        log.clear().unwrap();
        log.append(&p(9)).unwrap();
        let got: Vec<u64> = SpansLog::load(dir.path()).unwrap().iter().map(|p| p.inode).collect();
        assert_eq!(got, vec![9], "appends after a clear start at the beginning");
    }

    #[test]
    fn the_spans_log_drops_a_saved_prefix_and_keeps_what_came_after() {
        let dir = tempfile::tempdir().unwrap();
        let p = pending_of;
        let inodes = |dir: &Path| -> Vec<u64> { SpansLog::load(dir).unwrap().iter().map(|p| p.inode).collect() };
        let mut log = SpansLog::open(dir.path()).unwrap();
        log.append(&p(1)).unwrap();
        log.append(&p(2)).unwrap();
        let saved = log.len();
        log.append(&p(3)).unwrap();
        log.keep_from(saved).unwrap();
        assert_eq!(inodes(dir.path()), vec![3]);
        log.append(&p(4)).unwrap();
        assert_eq!(inodes(dir.path()), vec![3, 4], "appends go on after the kept part");
        use std::os::unix::fs::PermissionsExt;
        let path = SpansLog::path(dir.path());
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        log.keep_from(log.len()).unwrap();
        assert!(inodes(dir.path()).is_empty());
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
        // Reopened: the length is the file's.
        log.append(&p(5)).unwrap();
        let log = SpansLog::open(dir.path()).unwrap();
        assert_eq!(log.len(), std::fs::metadata(&path).unwrap().len());
    }

    #[test]
    fn first_line_needs_a_newline() {
        assert_eq!(first_line(&b"abc"[..], 100).unwrap(), None);
        assert_eq!(first_line(&b"ab\ncd\n"[..], 100).unwrap(), Some(b"ab\n".to_vec()));
        assert_eq!(first_line(&[b'x'; 10_000][..], 5000).unwrap().unwrap().len(), 5000);
        assert_ne!(identity("a", b"x\n"), identity("b", b"x\n"));
    }
}
