//! Plain (uncompressed) log files. A file is scanned from its checkpoint to the end of its last
//! complete line (at most [`PASS_MAX`] bytes a pass); findings are appended to the report first,
//! then masked in place with `pwrite` on a descriptor opened without `O_APPEND`, then the
//! checkpoint moves. A file left with nothing to do is not opened again while its `lstat` stamp
//! stays the same, whatever Docker renames it to.
use crate::metrics;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::time::{Instant, SystemTime};

use super::carry::{split_carried, units_from, Carry, Prev, Split, This};
use super::owed::Written;
use super::{born, mask_in_place, unix_now, Found, Guard, RangeReader, SyncStats, RETRY_AFTER};
use crate::logs::checkpoint::{self, FileMark};
use crate::logs::containers::ContainerLog;
use crate::logs::scan::{detect_format, AtEnd, Format, SegmentStart};
use crate::redact::Finding;

/// Bytes of a plain file scanned in one pass, at most (see `scan_plain`).
pub(super) const PASS_MAX: u64 = 8 << 20;

/// The most files remembered as settled (beyond it, the memory is dropped and files are read again).
pub(super) const SETTLED_MAX: usize = 1 << 16;

/// What `lstat` says of a file: any write or truncation changes it, and a new file at the same
/// inode too (its birth time, where the file system records one; its change time otherwise, which a
/// rename changes as well). A rename keeps it where the birth time is known: Docker's rotation
/// renames every file of a container, and a file left with nothing to do is not read again for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Stamp {
    pub(super) size: u64,
    pub(super) mtime: (i64, i64),
    pub(super) born: (i64, i64),
}

impl Stamp {
    pub(super) fn of(meta: &fs::Metadata) -> Self {
        Self {
            size: meta.len(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            born: born(meta),
        }
    }
}

/// A plain file to sync.
pub(super) struct PlainFile<'p> {
    /// Its name now.
    pub(super) path: &'p Path,
    /// It is the container's live log: its lag is measured, and once it is followed past its start
    /// a write to it alone needs no listing of the container's files.
    pub(super) live: bool,
    /// It may be masked in place.
    pub(super) masks: bool,
    /// The file before it in Docker's rotation order.
    pub(super) prev: Option<Prev>,
}

/// A plain file open for its sync.
pub(super) struct OpenPlain<'f> {
    path: &'f Path,
    file: &'f File,
    /// Its (dev, inode).
    at: (u64, u64),
    /// Its length when it was opened.
    size: u64,
    /// It may be masked in place.
    masks: bool,
    /// Its checkpoint key.
    ident: &'f str,
}

/// One pass over a plain file (see `Guard::pass`).
struct Pass {
    /// Offset just past the last line scanned.
    end: u64,
    /// A unit held open at the checkpoint has waited `hold`: it is scanned as it is.
    held_too_long: bool,
}

impl Guard<'_> {
    /// Sync one plain file: scan what is new in it, record it, mask it in place, and move its
    /// checkpoint. An error is reported (a file Docker removed meanwhile is not an error).
    pub(super) fn sync_plain(&mut self, c: &ContainerLog, job: PlainFile<'_>) -> SyncStats {
        let path = job.path;
        if self.unchanged(path, job.live.then_some(&c.id)) {
            return SyncStats::default();
        }
        match self.try_sync_plain(c, job) {
            Ok(s) => s,
            Err(e) if e.kind() == io::ErrorKind::NotFound => SyncStats::default(),
            Err(e) => {
                self.error(&format!("{}: {e}", path.display()));
                SyncStats::default()
            }
        }
    }

    /// The file at `path` is as it was when its last sync left nothing to do (one `lstat`, no
    /// open or read): its checkpoint is only marked as seen. `live` names the container whose
    /// live log it is (then it is not behind).
    pub(super) fn unchanged(&mut self, path: &Path, live: Option<&String>) -> bool {
        if self.settled.is_empty() {
            return false;
        }
        let Ok(meta) = fs::symlink_metadata(path) else {
            return false;
        };
        let at = (meta.dev(), meta.ino());
        let Some((stamp, ident)) = self.settled.get(&at) else {
            return false;
        };
        let same = meta.file_type().is_file() && Stamp::of(&meta) == *stamp;
        let mark = self.marks.files.get_mut(ident);
        match mark {
            Some(m) if same => {
                let now = unix_now();
                if m.seen + 60 <= now {
                    m.seen = now;
                    self.marks_dirty = true;
                }
                if let Some(id) = live {
                    self.lag.insert(id.clone(), 0);
                    self.lag_since.remove(id);
                }
                true
            }
            _ => {
                self.settled.remove(&at);
                false
            }
        }
    }

    /// Remember that the file open as `file` has nothing left to do, unless it changed while it
    /// was scanned.
    pub(super) fn settle(&mut self, file: &File, ident: &str, mark: &FileMark) {
        let Ok(meta) = file.metadata() else { return };
        let at = (meta.dev(), meta.ino());
        if mark.resume == mark.end && mark.end == meta.len() && mark.open.is_empty() && !self.held.contains_key(ident) {
            if self.settled.len() >= SETTLED_MAX {
                self.settled.clear();
            }
            self.settled.insert(at, (Stamp::of(&meta), ident.to_string()));
        } else {
            self.settled.remove(&at);
        }
    }

    /// The checkpoint key of a plain file. Files are known by their first line, which follows them
    /// through renames and compression (a plain file keeps its inode through Docker's renames).
    /// When the file known by this first line is another inode (an application that starts every
    /// file alike), this one is known by its inode as well: otherwise the two would take turns with
    /// one checkpoint, be scanned again on every pass, or a new file would inherit the progress of
    /// a removed one.
    pub(super) fn plain_ident(&self, ident: String, dev: u64, ino: u64) -> String {
        let own = format!("{ident}@{dev}:{ino}");
        if self.marks.files.contains_key(&own)
            || self
                .marks
                .files
                .get(&ident)
                .is_some_and(|m| m.inode != 0 && (m.dev, m.inode) != (dev, ino))
        {
            own
        } else {
            ident
        }
    }

    /// The checkpoint key of a first line's identity (the same unless the guard masked that line).
    pub(super) fn known(&self, ident: String) -> String {
        self.marks.aliases.get(&ident).cloned().unwrap_or(ident)
    }

    /// After masks were written to `file` (checkpoint key `key`, first line `before` then): when
    /// they changed its first line, the new line's identity is an alias of the key.
    pub(super) fn alias_first_line(&mut self, container: &str, key: &str, file: &File, before: Option<&[u8]>) {
        let Ok(meta) = file.metadata() else { return };
        let reader = RangeReader {
            file,
            pos: 0,
            end: meta.len(),
        };
        let Ok(Some(now)) = checkpoint::first_line(reader, 1 << 20) else {
            return;
        };
        if before.is_some_and(|b| b == now.as_slice()) {
            return;
        }
        let ident = checkpoint::identity(container, &now);
        if ident != key && !self.marks.files.contains_key(&ident) {
            self.marks.aliases.insert(ident, key.to_string());
            self.marks_dirty = true;
        }
    }

    /// [`Self::sync_plain`] after the `lstat` that found the file changed: opens it, finds its
    /// checkpoint by its first line, writes the masks an earlier run left pending, joins it with
    /// the end of the file before when it is new, and scans it.
    pub(super) fn try_sync_plain(&mut self, c: &ContainerLog, job: PlainFile<'_>) -> io::Result<SyncStats> {
        let PlainFile {
            path,
            live,
            masks,
            prev,
        } = job;
        let file = OpenOptions::new()
            .read(true)
            .write(masks)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(path)?;
        let meta = file.metadata()?;
        let (dev, ino, size) = (meta.dev(), meta.ino(), meta.len());
        let fast = self.expect_live.take();
        if let Some(expect) = fast {
            if (dev, ino) != expect {
                // Rotated since the look: the new file may continue the old one's last entry.
                self.live_known.remove(&c.id);
                return Ok(SyncStats::default());
            }
        }
        // Computed every time: Docker's new live file may get the inode of a file it just removed.
        let Some(first) = checkpoint::first_line(
            RangeReader {
                file: &file,
                pos: 0,
                end: size,
            },
            1 << 20,
        )?
        else {
            return Ok(SyncStats::default()); // no complete line yet
        };
        let ident = self.plain_ident(self.known(checkpoint::identity(&c.id, &first)), dev, ino);
        let mut mark = self.marks.files.remove(&ident).unwrap_or_else(|| FileMark {
            container: c.id.clone(),
            ..FileMark::default()
        });
        if fast.is_some() && mark.end == 0 && mark.resume == 0 {
            // A file the guard has not started (Docker reused the inode): it may continue the file
            // before, which only a full sync looks at.
            self.marks.files.insert(ident, mark);
            self.live_known.remove(&c.id);
            return Ok(SyncStats::default());
        }
        let open = OpenPlain {
            path,
            file: &file,
            at: (dev, ino),
            size,
            masks,
            ident: &ident,
        };
        self.prepare_mark(&open, &mut mark)?;
        self.replay_pending(c, &open);
        let carry = match prev {
            Some(p) if mark.end == 0 && mark.resume == 0 => match self.carry_from(
                c,
                p,
                This {
                    path,
                    at: (dev, ino),
                    born: born(&meta),
                },
            ) {
                Ok(k) => k,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // Scanned once the file before can be read: it may hold this file's first part.
                    self.marks.files.insert(ident, mark);
                    self.retry.insert(c.id.clone(), Instant::now() + RETRY_AFTER);
                    return Ok(SyncStats::default());
                }
                Err(e) => {
                    tracing::debug!("log guard: the end of the file before {}: {e}", path.display());
                    None
                }
            },
            _ => None,
        };
        let result = self.scan_plain(c, &open, &mut mark, carry);
        if live {
            let behind = size.saturating_sub(mark.end);
            self.lag.insert(c.id.clone(), behind);
            if behind == 0 {
                self.lag_since.remove(&c.id);
            } else {
                self.lag_since.entry(c.id.clone()).or_insert_with(Instant::now);
            }
        }
        if result.is_ok() {
            self.settle(&file, &ident, &mark);
            if mark.end > 0 {
                // Started: whatever it waited for is over.
                self.carry_waits.remove(&(dev, ino));
            }
        }
        if live {
            // Past its start (joined with the file before, if that was due): while it stays this
            // inode, a write to it needs no look at the container's other files.
            if result.is_ok() && mark.end > 0 {
                self.live_known.insert(c.id.clone(), (dev, ino));
            } else {
                self.live_known.remove(&c.id);
            }
        }
        let masked = result.as_ref().is_ok_and(|s| s.masked > 0);
        self.marks.files.insert(ident.clone(), mark);
        if masked {
            self.alias_first_line(&c.id, &ident, &file, Some(&first));
        }
        self.marks_dirty = true;
        result
    }

    /// Bring the checkpoint `mark` of the open file `p` up to date before a scan: seen now, at this
    /// inode. A file this process starts on from its first byte has every mask it gets remembered
    /// (see `Guard::written`); a file shorter than scanned, or changed beneath its checkpoint, is
    /// scanned again from its start (what was recorded stays recorded).
    fn prepare_mark(&mut self, p: &OpenPlain<'_>, mark: &mut FileMark) -> io::Result<()> {
        let ((dev, ino), ident) = (p.at, p.ident);
        mark.seen = unix_now();
        mark.dev = dev;
        mark.inode = ino;
        if mark.end == 0 && mark.resume == 0 && !ident.contains('@') {
            // Scanned from its first byte by this process: every mask it gets is known here.
            self.written.entry(ident.to_string()).or_insert_with(|| Written {
                since: SystemTime::now(),
                masks: Some(Vec::new()),
                last: None,
            });
        }
        if p.size < mark.end && mark.rescan {
            // Docker's last writes before a power cut were lost with the page cache: what is left
            // was scanned (and recorded) already.
            mark.end = crate::fsutil::last_line_end(p.file, 0, p.size)?;
        } else if p.size < mark.end {
            // Truncated and written again with the same first line: start over.
            self.warn_once(format!("shorter {ident} {dev}:{ino}"), || {
                format!(
                    "log guard: {} is shorter than already scanned; scanning it again",
                    p.path.display()
                )
            });
            mark.end = 0;
            mark.resume = 0;
            mark.resume_line = 0;
            self.written.remove(ident);
        } else if mark.end > 0 && checkpoint::tail_hash(p.file, mark.end)? != mark.tail {
            // Changed beneath us: rescan (and mask) from the start; what was recorded stays recorded.
            mark.resume = 0;
            mark.resume_line = 0;
            self.written.remove(ident);
        }
        Ok(())
    }

    /// Write the masks an earlier run was writing into the open file `p` when it stopped (see
    /// `Guard::replay`). Pending masks of another key at this inode are dropped: known by that key,
    /// its first line has changed since (their masks were written), or Docker reused the inode of
    /// a removed file.
    fn replay_pending(&mut self, c: &ContainerLog, p: &OpenPlain<'_>) {
        if let Some(pending) = self.replay.remove(p.ident) {
            self.pending_dirty = true;
            if p.masks && (pending.dev, pending.inode) == p.at {
                self.alias_ahead(&c.id, p.ident, p.file, &pending.findings);
                let n = mask_in_place(p.file, &pending.findings);
                self.note_written(p.ident, &pending.findings);
                self.masked_in_place(p.file, true);
                match n {
                    Ok(n) => {
                        self.metrics.add(metrics::MASKS_WRITTEN_TOTAL, n as f64);
                        self.observe_delays(&pending.findings, "replay");
                    }
                    Err(e) => self.error(&format!("{}: {e}", p.path.display())),
                }
            }
        }
        if !self.replay.is_empty() {
            let before = self.replay.len();
            self.replay.retain(|_, pending| (pending.dev, pending.inode) != p.at);
            self.pending_dirty |= self.replay.len() != before;
        }
    }

    /// Where this pass over the open file `p` ends: the end of its last complete line, at most
    /// [`PASS_MAX`] bytes past its checkpoint. The findings of a pass are held in memory until they
    /// are recorded and masked, and a backlog (a log without max-size, written while sidecar was
    /// down) may hold one on every line: the container is then synced again at once. `None`:
    /// nothing to scan.
    fn pass(&mut self, c: &ContainerLog, p: &OpenPlain<'_>, mark: &FileMark) -> io::Result<Option<Pass>> {
        let from = mark.resume.max(mark.end);
        let mut end = crate::fsutil::last_line_end(p.file, from, p.size)?;
        if end > from.saturating_add(PASS_MAX) {
            let cut = crate::fsutil::last_line_end(p.file, from, from + PASS_MAX)?;
            if cut > from {
                end = cut;
                self.retry.insert(c.id.clone(), Instant::now());
            }
        }
        let held_too_long = self
            .held
            .get(p.ident)
            .is_some_and(|(_, since)| since.elapsed() >= self.opts.hold);
        if end <= mark.end && !(mark.resume < mark.end && (held_too_long || mark.rescan)) {
            return Ok(None);
        }
        Ok(Some(Pass { end, held_too_long }))
    }

    /// Scan the open file `p` from its checkpoint `mark` (after the end of the file before,
    /// `carry`, when this file continues it), record what is new, mask it in place (and the parts
    /// of joined findings in the file before), and move the checkpoint.
    pub(super) fn scan_plain(
        &mut self,
        c: &ContainerLog,
        p: &OpenPlain<'_>,
        mark: &mut FileMark,
        carry: Option<Carry>,
    ) -> io::Result<SyncStats> {
        let (file, ident) = (p.file, p.ident);
        let Some(Pass { end, held_too_long }) = self.pass(c, p, mark)? else {
            return Ok(SyncStats::default());
        };
        let format = format_of(file, end)?;
        // The carried bytes come first, at offsets [0, shift) of the scan.
        let shift = carry.as_ref().map_or(0, |k| k.bytes.len() as u64);
        let carried_lines = carry.as_ref().map_or(0, |k| k.lines);
        let reader = io::Cursor::new(carry.as_ref().map_or(&[][..], |k| &k.bytes[..])).chain(RangeReader {
            file,
            pos: mark.resume,
            end,
        });
        let start = SegmentStart {
            from: mark.resume,
            from_line: mark.resume_line,
            // With carried bytes this file is new (`mark.end` is 0), and so are the carried bytes
            // that the file before had not been scanned up to.
            new_from: carry
                .as_ref()
                .map_or(mark.end + shift, |k| k.fresh_from.saturating_sub(k.start).min(shift)),
            reopened: match &carry {
                Some(k) => k.reopened(),
                None => mark.open.clone(),
            },
        };
        let mut seg = self.scanner.scan_segment(
            reader,
            &p.path.display().to_string(),
            Some(&c.id),
            format,
            &start,
            if held_too_long { AtEnd::Close } else { AtEnd::Wait },
        )?;
        let consumed = carry.as_ref().is_some_and(|_| seg.resume >= shift);
        if carry.is_some() && !consumed {
            // The entry begun in the file before has not ended in this one yet: scan both again
            // when more has come (or once the file before has waited `hold`, this one alone).
            return Ok(SyncStats::default());
        }
        for n in &seg.notices {
            if let crate::logs::scan::Notice::MalformedLine { line, reason } = n {
                self.metrics.add(metrics::GUARD_MALFORMED_LINES_TOTAL, 1.0);
                tracing::debug!("{}:{line}: {reason}; scanned as text", p.path.display());
            }
        }
        let found: Vec<Found> = std::mem::take(&mut seg.findings)
            .into_iter()
            .map(|s| Found {
                finding: s.finding,
                is_new: s.is_new,
            })
            .collect();
        // The parts in this file of findings joined with the file before: saved before they are
        // written, and owed to this file's `.gz` as well when Docker compresses (`Prev::owe_here`).
        let owed_here: Vec<Finding> = match carry.as_ref().filter(|_| p.masks) {
            Some(k) => {
                let here = self.save_pending(c, (ident, mark.dev, mark.inode), k, &found);
                if k.owe_here {
                    here
                } else {
                    Vec::new()
                }
            }
            None => Vec::new(),
        };
        // Split each finding between the carried bytes (the file before) and this file.
        let Split {
            mut here,
            before,
            before_new,
        } = split_carried(carry.as_ref(), found);
        let scanned = end - mark.end.min(end);
        let here_len = here.len();
        if consumed {
            here.extend(before_new);
        }
        let mut stats = self.record_or_count(c, &here);
        here.truncate(here_len);
        (stats.bytes, stats.plain_bytes) = (scanned, scanned);
        self.metrics.add(metrics::LOG_BYTES_SCANNED_TOTAL, scanned as f64);
        self.metrics.add(metrics::LOG_LINES_SCANNED_TOTAL, seg.lines as f64);
        stats.masked = self.mask_here(c, p, mark, (here, consumed))?;
        if consumed && !owed_here.is_empty() {
            self.owe(ident, owed_here, None);
        }
        if let Some(k) = carry.filter(|_| consumed) {
            stats.masked += self.mask_before(&k, before)?;
            self.carried(&k);
        }
        mark.end = end;
        mark.rescan = false;
        mark.resume = seg.resume.saturating_sub(shift);
        mark.resume_line = seg.resume_line.saturating_sub(carried_lines);
        mark.open = if held_too_long {
            Vec::new()
        } else {
            units_from(&seg.open_units, shift)
        };
        mark.tail = if end > 0 {
            checkpoint::tail_hash(file, end)?
        } else {
            String::new()
        };
        if mark.resume < mark.end {
            self.held
                .entry(ident.to_string())
                .or_insert_with(|| (c.id.clone(), Instant::now()));
        } else {
            self.held.remove(ident);
        }
        Ok(stats)
    }

    /// Mask the findings `here` (recorded already) in place in the open file `p`, whose
    /// checkpoint is `mark`; a secret that spans entries is saved as pending first; `spans`: some
    /// span this file and the one before (the file is synced before the next checkpoint). When
    /// the file is not masked, what checks its `.gz` must scan it. Returns the byte ranges written.
    fn mask_here(
        &mut self,
        c: &ContainerLog,
        p: &OpenPlain<'_>,
        mark: &FileMark,
        (here, spans): (Vec<Found>, bool),
    ) -> io::Result<u64> {
        if here.is_empty() {
            return Ok(0);
        }
        if !p.masks {
            // Found and not masked here: whatever checks its `.gz` must scan it.
            self.written.remove(p.ident);
            return Ok(0);
        }
        let all: Vec<Finding> = here.into_iter().map(|f| f.finding).collect();
        self.save_pending_spans(c, (p.ident, mark.dev, mark.inode), &all);
        self.alias_ahead(&c.id, p.ident, p.file, &all);
        let written = mask_in_place(p.file, &all);
        self.note_written(p.ident, &all);
        self.masked_in_place(p.file, spans);
        let masked = written?;
        self.metrics.add(metrics::MASKS_WRITTEN_TOTAL, masked as f64);
        self.observe_delays(&all, "scan");
        Ok(masked)
    }
}

/// How a plain file's text is matched: json-file or plain text (binary and empty files as text).
fn format_of(file: &File, end: u64) -> io::Result<Format> {
    let mut head = vec![0u8; 4096.min(end as usize)];
    file.read_exact_at(&mut head, 0)?;
    Ok(match detect_format(&head) {
        Format::Binary | Format::Empty => Format::Text,
        f => f,
    })
}
