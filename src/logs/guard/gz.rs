//! Compressed rotated files. While `name.1` exists its `.gz` is not touched (the plain file is
//! masked in place). Each complete `.gz` is checked once: from the masks written into its plain
//! file when this process scanned that file whole (`gz_from_written`), otherwise decompressed and
//! scanned; when it holds a secret (or is owed masks), it is rewritten masked
//! (see [`rewrite_gz`](super::rewrite_gz)).
use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read, Seek};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use super::carry::{split_carried, units_from, Carry, Prev, Split, This};
use super::rewrite::{birth_time, gz_holds, rewrite_gz, GzRewrite, PlainTail};
use super::{born, unix_now, Found, Guard, SyncStats, RETRY_AFTER};
use crate::logs::checkpoint::{self, FileMark, GzMark};
use crate::logs::containers::ContainerLog;
use crate::logs::masking::MaskPlan;
use crate::logs::scan::{detect_format, AtEnd, Format, Segment, SegmentStart};
use crate::redact::Finding;

/// A compressed file that ends early and was modified this recently may still be being written.
pub(super) const GZ_SETTLE: Duration = Duration::from_secs(120);

impl Guard<'_> {
    /// After a `.gz` was rewritten masked (now the inode `at` at `path`): when a mask changed its
    /// first line, the new line's identity is an alias of its key `key`. Otherwise the file after
    /// it would no longer find its checkpoint, and an entry split across the two would not be
    /// joined.
    pub(super) fn alias_gz_first_line(&mut self, container: &str, key: &str, path: &Path, at: (u64, u64)) {
        let Ok(file) = crate::fsutil::open_nofollow(path) else {
            return;
        };
        if file.metadata().map(|m| (m.dev(), m.ino())).ok() != Some(at) {
            return;
        }
        let Ok(Some(now)) = checkpoint::first_line(flate2::read::MultiGzDecoder::new(&file), 1 << 20) else {
            return;
        };
        let ident = checkpoint::identity(container, &now);
        if ident != key && !self.marks.files.contains_key(&ident) {
            self.marks.aliases.insert(ident, key.to_string());
            self.marks_dirty = true;
        }
    }

    /// Whether the complete `.gz` open as `file` (of `size` bytes) can be checked from what this
    /// process wrote into its plain file, known as `key`: `Some((open, born))` (an entry open at
    /// the end of the plain file waits for the next file; the `.gz`'s birth time), or `None`
    /// (logged why): it is scanned.
    fn checkable_from_written(
        &self,
        c: &ContainerLog,
        path: &Path,
        file: &File,
        size: u64,
        key: &str,
    ) -> io::Result<Option<(bool, SystemTime)>> {
        let scan = |why: &str| {
            tracing::debug!("log guard: {}: scanned ({why})", path.display());
            Ok(None)
        };
        let (Some(w), Some(m)) = (self.written.get(key), self.marks.files.get(key)) else {
            return scan("its plain file was not scanned whole by this process");
        };
        if m.container != c.id || m.end == 0 || size < 18 {
            return scan("its plain file was not scanned by this process");
        }
        // An entry open at the end of the plain file is finished by the next file: that file reads
        // its start from this `.gz` (once checked) and owes it the masks of what it finds there,
        // which a check from memory writes then. Until the hold time is over this `.gz` is checked
        // like any other, and what was written into its plain file is kept for that check.
        let open = m.resume != m.end || !m.open.is_empty() || self.held.contains_key(key);
        if open
            && self
                .held
                .get(key)
                .is_none_or(|(_, since)| since.elapsed() >= self.opts.hold)
        {
            return scan("an entry open at the end of its plain file is not waiting for the next file");
        }
        // The gzip trailer's size (modulo 2^32) is the plain file's, scanned to its end.
        let mut isize = [0u8; 4];
        file.read_exact_at(&mut isize, size - 4)?;
        if u64::from(u32::from_le_bytes(isize)) != m.end & 0xffff_ffff {
            return scan("its plain file was not scanned to its end");
        }
        // Masks this process does not know of (an earlier run's) came before `since`: unless
        // Docker made the `.gz` after that, they may be missing from it, and only a scan can tell.
        match birth_time(file).filter(|born| *born > w.since) {
            Some(born) => Ok(Some((open, born))),
            None => scan("made before this process began on its plain file"),
        }
    }

    /// Check a complete `.gz` of a plain file this process scanned whole, from what it wrote into
    /// that file, without decompressing it: Docker creates the `.gz` and then reads the plain
    /// file, so a mask written before the `.gz` was created (its birth time) is in it. When a
    /// mask came later, the `.gz` is rewritten with every mask the file got, and the rewrite is
    /// kept only if, with the masks of the plain file, its last bytes hash as that file's did.
    /// `None`: check it by a scan.
    pub(super) fn gz_from_written(
        &mut self,
        c: &ContainerLog,
        path: &Path,
        file: &File,
        (dev, ino, size): (u64, u64, u64),
        key: &str,
        masks: bool,
    ) -> io::Result<Option<SyncStats>> {
        let Some((open, born)) = self.checkable_from_written(c, path, file, size, key)? else {
            return Ok(None);
        };
        let (Some(w), Some(m)) = (self.written.get(key), self.marks.files.get(key)) else {
            return Ok(None);
        };
        // Masks owed to the `.gz` (not written into the plain file, or written where Docker may
        // have read it already) are written now whatever its birth time.
        let owed = self.marks.gz_owed.get(key);
        let clean = owed.is_none() && w.last.is_none_or(|last| last < born);
        let mut stats = SyncStats::default();
        let mut checked = (format!("{dev}:{ino}"), size);
        if !clean && masks {
            let Some(written) = w.masks.clone() else {
                return Ok(None);
            };
            let late = w.last.is_some_and(|last| last >= born);
            let owed: Vec<Finding> = owed.into_iter().flatten().cloned().collect();
            let all: Vec<Finding> = written.iter().chain(&owed).cloned().collect();
            let tail = (m.end, m.tail.clone());
            // Docker often reads the end of the file after the masks were written: then the `.gz`
            // holds them already and is not rewritten (one decompression instead of a
            // decompression and a compression).
            let held = gz_holds(file, &all, (tail.0, &tail.1));
            let already = matches!(held, Ok(true));
            let result = match held {
                Ok(true) => Ok(GzRewrite::Done((dev, ino, size), path.to_path_buf())),
                Ok(false) => {
                    self.alias_ahead_gz(&c.id, key, file, &all);
                    let plain = PlainTail {
                        len: tail.0,
                        hash: &tail.1,
                        masks: &written,
                    };
                    rewrite_gz(path, (dev, ino), &owed, Some(plain))
                }
                Err(e) => Err(e),
            };
            match result {
                Ok(GzRewrite::Done(..)) if already => {
                    self.metrics.add(crate::metrics::LOG_GZ_MASKS_FOUND_TOTAL, 1.0);
                }
                Ok(GzRewrite::Done((ndev, nino, nsize), now)) => {
                    // Counted: the masks this `.gz` lacked (written ones made before it was are
                    // in it: a rewrite while an entry was open at its end put them there).
                    let placed = if late { &all } else { &owed };
                    let n: u64 = placed.iter().map(|f| f.ranges.len() as u64).sum();
                    stats.masked += n;
                    self.metrics.add(crate::metrics::MASKS_WRITTEN_TOTAL, n as f64);
                    self.observe_delays(placed, "gz-late");
                    checked = (format!("{ndev}:{nino}"), nsize);
                    self.alias_gz_first_line(&c.id, key, &now, (ndev, nino));
                }
                // Docker kept moving it: checked again under its new name (what it is owed is
                // dropped should Docker delete it first).
                Ok(GzRewrite::Moved) => {
                    if self.marks.gz_owed.contains_key(key) {
                        if let Ok(f) = file.try_clone() {
                            self.owed_open.insert(key.to_string(), f);
                        }
                    }
                    return Ok(Some(stats));
                }
                // Docker deleted it: nothing is left to mask.
                Ok(GzRewrite::Gone) => {
                    self.written.remove(key);
                    self.forget_owed(key);
                    return Ok(Some(stats));
                }
                // Not the file remembered (or not readable as one): scanned instead.
                Err(e) if e.kind() == io::ErrorKind::InvalidData || e.kind() == io::ErrorKind::UnexpectedEof => {
                    tracing::debug!("log guard: {}: {e}; scanned instead", path.display());
                    return Ok(None);
                }
                Err(e) => return Err(e),
            }
        }
        if !open {
            self.written.remove(key);
        }
        if masks {
            self.forget_owed(key);
        }
        self.metrics.add(crate::metrics::LOG_GZ_CHECKED_TOTAL, 1.0);
        self.marks.gz.insert(
            checked.0,
            GzMark {
                container: c.id.clone(),
                ident: key.to_string(),
                size: checked.1,
                damaged: false,
                seen: unix_now(),
            },
        );
        self.marks_dirty = true;
        Ok(Some(stats))
    }

    pub(super) fn sync_gz(&mut self, c: &ContainerLog, path: &Path, masks: bool, prev: Option<Prev>) -> SyncStats {
        match self.try_sync_gz(c, path, masks, prev) {
            Ok(s) => s,
            Err(e) if e.kind() == io::ErrorKind::NotFound => SyncStats::default(),
            Err(e) => {
                self.error(&format!("{}: {e}", path.display()));
                SyncStats::default()
            }
        }
    }

    /// The end of the file before a `.gz` never scanned as a plain file, which may hold the start of
    /// an entry this file continues; `None` when that file cannot be read yet (the `.gz` is checked
    /// again shortly).
    fn gz_carry(
        &mut self,
        c: &ContainerLog,
        prev: Prev,
        this: (&Path, &fs::Metadata),
        label: &str,
    ) -> Option<Option<Carry>> {
        let (path, meta) = this;
        let this = This {
            path,
            at: (meta.dev(), meta.ino()),
            born: born(meta),
        };
        match self.carry_from(c, prev, this) {
            Ok(k) => Some(k),
            // Checked once the file before can be read.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.retry.insert(c.id.clone(), Instant::now() + RETRY_AFTER);
                None
            }
            Err(e) => {
                tracing::debug!("log guard: the end of the file before {label}: {e}");
                Some(None)
            }
        }
    }

    /// [`Self::sync_gz`]: check the compressed file at `path` once it is complete, record what is
    /// new in it and rewrite it masked when it holds a secret or is owed masks.
    pub(super) fn try_sync_gz(
        &mut self,
        c: &ContainerLog,
        path: &Path,
        masks: bool,
        prev: Option<Prev>,
    ) -> io::Result<SyncStats> {
        if self.gz_unchanged(path) {
            return Ok(SyncStats::default());
        }
        let file = crate::fsutil::open_nofollow(path)?;
        let meta = file.metadata()?;
        let (dev, ino, size) = (meta.dev(), meta.ino(), meta.len());
        let key = format!("{dev}:{ino}");
        let now = unix_now();
        let hold = self.opts.hold;
        if let Some(m) = self.marks.gz.get_mut(&key) {
            // Checked, unless its open end has waited too long for the next file.
            if m.size == size && !held_past(&self.held, &m.ident, hold) {
                m.seen = now;
                return Ok(SyncStats::default());
            }
        }
        let label = path.display().to_string();
        let first = checkpoint::first_line(flate2::read::MultiGzDecoder::new(&file), 1 << 20);
        // A file scanned whole as a plain file (so it continues nothing): checked from memory.
        if let Ok(Some(l)) = &first {
            let key = self.known(checkpoint::identity(&c.id, l));
            if let Some(stats) = self.gz_from_written(c, path, &file, (dev, ino, size), &key, masks)? {
                return Ok(stats);
            }
        }
        // A file never scanned as a plain file (Docker compressed it before the guard saw it) may
        // continue an entry left open at the end of the file before.
        let unscanned = matches!(&first, Ok(Some(l)) if self
            .marks
            .files
            .get(&self.known(checkpoint::identity(&c.id, l)))
            .is_none_or(|m| m.end == 0));
        if unscanned && self.rechecking {
            self.retry.insert(c.id.clone(), Instant::now() + RETRY_AFTER);
            return Ok(SyncStats::default());
        }
        let carry = match (&first, prev) {
            (Ok(Some(_)), Some(p)) if unscanned => match self.gz_carry(c, p, (path, &meta), &label) {
                Some(carry) => carry,
                None => return Ok(SyncStats::default()),
            },
            _ => None,
        };
        let shift = carry.as_ref().map_or(0, |k| k.bytes.len() as u64);
        let (ident, mut seg) = match self.scan_gz(c, &file, &label, first, carry.as_ref()) {
            Ok(s) => s,
            Err(e) => {
                self.gz_unreadable(c, &meta, key, &label, e);
                return Ok(SyncStats::default());
            }
        };
        // Checked by a scan, not from what was written into the plain file: the masks this process
        // wrote into the plain file, with that file's length and tail.
        let plain_written = ident.as_ref().and_then(|i| self.take_written(i));
        // The file's progress: a log entry open at its end continues in the next file, which
        // completes it (see `carry_from`); until then, or until the hold time is over, its partial
        // findings are neither recorded nor masked here.
        let held_open = self.gz_progress(c, ident.as_ref(), &seg, shift, now);
        let seg_end = seg.end.saturating_sub(shift);
        let findings: Vec<Found> = std::mem::take(&mut seg.findings)
            .into_iter()
            .filter(|s| !(held_open && s.open))
            .map(|s| Found {
                finding: s.finding,
                is_new: s.is_new,
            })
            .collect();
        // Split between the carried bytes (the file before) and this file.
        let consumed = carry.is_some() && !(held_open && seg.open_from.is_some_and(|t| t < shift));
        if let (Some(k), true, Some(i)) = (carry.as_ref(), consumed && masks, &ident) {
            self.save_pending(c, (i, 0, 0), k, &findings);
        }
        let Split {
            here: mut findings,
            before,
            before_new,
        } = split_carried(carry.as_ref(), findings);
        let here_len = findings.len();
        if consumed {
            findings.extend(before_new);
        }
        let mut stats = self.record_or_count(c, &findings);
        findings.truncate(here_len);
        if let Some(k) = carry.filter(|_| consumed) {
            stats.masked += self.mask_before(&k, before)?;
            self.carried(&k);
        }
        stats.bytes = seg_end;
        self.metrics
            .add(crate::metrics::LOG_BYTES_SCANNED_TOTAL, seg_end as f64);
        // Docker may have compressed the plain file while this process was masking it: a mask it
        // read in part (a secret cut by Docker's 16 KiB split is masked in two writes) leaves the
        // rest in clear where no scan finds it again. The masks written into the plain file are
        // applied to the `.gz` as well when it lacks some, and kept only if the rewrite has the
        // plain file's length and tail (it is that file).
        let torn = match plain_written.filter(|w| masks && w.end == seg_end) {
            Some(w) => torn_in(&file, w)?,
            None => None,
        };
        let gz = OpenGz {
            path,
            file: &file,
            at: (dev, ino, size),
            ident: ident.as_deref(),
            masks,
        };
        self.finish_gz(c, &gz, findings, torn, stats)
    }

    /// Write what the compressed file `gz` needs (the findings of its scan `findings`, the masks
    /// owed to it, and `torn`, see `torn_in`) and mark it checked, under the inode it has then.
    fn finish_gz(
        &mut self,
        c: &ContainerLog,
        gz: &OpenGz<'_>,
        findings: Vec<Found>,
        torn: Option<PlainWritten>,
        mut stats: SyncStats,
    ) -> io::Result<SyncStats> {
        let (ident, masks) = (gz.ident, gz.masks);
        let (dev, ino, size) = gz.at;
        let mut checked = (format!("{dev}:{ino}"), size);
        // Masks owed to this file, taken out (put back unless written).
        let extra = match (ident, masks) {
            (Some(i), true) => self.marks.gz_owed.remove(i).unwrap_or_default(),
            _ => Vec::new(),
        };
        if masks && !(findings.is_empty() && extra.is_empty() && torn.is_none()) {
            let all: Vec<Finding> = findings.into_iter().map(|f| f.finding).chain(extra).collect();
            match self.mask_gz(c, gz, all, torn)? {
                GzMasked::Checked { masked, now } => {
                    stats.masked += masked;
                    checked = now;
                }
                GzMasked::NotHere => return Ok(stats),
            }
        }
        self.marks.gz.insert(
            checked.0,
            GzMark {
                container: c.id.clone(),
                ident: ident.unwrap_or_default().to_string(),
                size: checked.1,
                damaged: false,
                seen: unix_now(),
            },
        );
        // Masks a crash interrupted in the plain file are in this `.gz` now (`gz_owed`), and the
        // plain file is gone.
        if ident.is_some_and(|i| self.replay.remove(i).is_some()) {
            self.pending_dirty = true;
        }
        self.marks_dirty = true;
        Ok(stats)
    }

    /// The compressed file at `path` was checked already and is not waiting for the next file:
    /// one `lstat`, no open (its mark is only seen).
    fn gz_unchanged(&mut self, path: &Path) -> bool {
        let Ok(meta) = fs::symlink_metadata(path) else {
            return false;
        };
        if !meta.file_type().is_file() {
            return false;
        }
        let now = unix_now();
        let Some(m) = self.marks.gz.get_mut(&format!("{}:{}", meta.dev(), meta.ino())) else {
            return false;
        };
        if m.size != meta.len() || self.held.contains_key(&m.ident) {
            return false;
        }
        if m.seen + 60 <= now {
            m.seen = now;
            self.marks_dirty = true;
        }
        true
    }

    /// Scan the compressed file open as `file` from its start, after the carried end of the file
    /// before when there is one. `first`: its first line as read before (an error here is the
    /// scan's). Returns its checkpoint key (none without a complete line) and the segment.
    fn scan_gz(
        &self,
        c: &ContainerLog,
        file: &File,
        label: &str,
        first: io::Result<Option<Vec<u8>>>,
        carry: Option<&Carry>,
    ) -> io::Result<(Option<String>, Segment)> {
        let first = first?;
        let shift = carry.map_or(0, |k| k.bytes.len() as u64);
        let ident = first.as_ref().map(|l| self.known(checkpoint::identity(&c.id, l)));
        let format = first.as_deref().map_or(Format::Text, detect_format);
        let format = if format == Format::JsonFile {
            format
        } else {
            Format::Text
        };
        // Units whose last line starts before the plain file's checkpoint were recorded from it,
        // except those still open at its end.
        let plain = ident.as_ref().and_then(|i| self.marks.files.get(i));
        let start = match carry {
            Some(k) => SegmentStart {
                from: 0,
                from_line: 0,
                new_from: k.fresh_from.saturating_sub(k.start).min(shift),
                reopened: k.reopened(),
            },
            None => SegmentStart {
                from: 0,
                from_line: 0,
                new_from: plain.map_or(0, |m| m.end),
                reopened: plain.map(|m| m.open.clone()).unwrap_or_default(),
            },
        };
        // The same open file from its start (Docker may rename it meanwhile).
        let mut again = file.try_clone()?;
        again.seek(io::SeekFrom::Start(0))?;
        let carried = io::Cursor::new(carry.map_or(&[][..], |k| &k.bytes[..]));
        let reader = carried.chain(flate2::read::MultiGzDecoder::new(io::BufReader::new(again)));
        let seg = self
            .scanner
            .scan_segment(reader, label, Some(&c.id), format, &start, AtEnd::Close)?;
        Ok((ident, seg))
    }

    /// The compressed file (metadata `meta`, mark key `key`) cannot be decompressed (`e`). Docker
    /// writes a `.gz` in place: a recent one may still be growing, and is checked again later.
    /// Otherwise it is truncated or corrupted: reported once and left as it is (rewriting what
    /// could be read would lose the rest).
    fn gz_unreadable(&mut self, c: &ContainerLog, meta: &fs::Metadata, key: String, label: &str, e: io::Error) {
        let recent = meta
            .modified()
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age < GZ_SETTLE);
        if recent && e.kind() == io::ErrorKind::UnexpectedEof {
            return;
        }
        self.marks.gz.insert(
            key,
            GzMark {
                container: c.id.clone(),
                ident: String::new(),
                size: meta.len(),
                damaged: true,
                seen: unix_now(),
            },
        );
        self.marks_dirty = true;
        self.error(&format!(
            "{label}: cannot decompress ({e}); the file is truncated or corrupted, it is left as it is and not checked again"
        ));
    }

    /// Take the masks this process wrote into the plain file known as `ident` (forgotten: its
    /// `.gz` is being checked by a scan), with that file's length and tail, when it was scanned
    /// to its end.
    fn take_written(&mut self, ident: &str) -> Option<PlainWritten> {
        let masks = self
            .written
            .remove(ident)
            .and_then(|w| w.masks)
            .filter(|v| !v.is_empty())?;
        let m = self
            .marks
            .files
            .get(ident)
            .filter(|m| m.resume == m.end && m.open.is_empty())?;
        Some(PlainWritten {
            masks,
            end: m.end,
            tail: m.tail.clone(),
        })
    }

    /// Move the checkpoint of the compressed file known as `ident` past the segment `seg` (whose
    /// first `shift` bytes were carried from the file before). A unit open at its end is held
    /// until the next file completes it, or until the hold time is over. Returns whether one is
    /// held now (its findings are then neither recorded nor masked here).
    fn gz_progress(&mut self, c: &ContainerLog, ident: Option<&String>, seg: &Segment, shift: u64, now: u64) -> bool {
        let Some(i) = ident else { return false };
        // This file's offsets (the carried bytes came first).
        let seg_end = seg.end.saturating_sub(shift);
        let open_from = seg.open_from.map(|t| t.saturating_sub(shift));
        let hold = self.opts.hold;
        let m = self.marks.files.entry(i.clone()).or_insert_with(|| FileMark {
            container: c.id.clone(),
            ..FileMark::default()
        });
        let (old_end, was_held) = (m.end, m.resume < m.end);
        m.end = m.end.max(seg_end);
        if !was_held {
            m.resume = match open_from {
                Some(t) if t >= old_end => t,
                _ => m.end,
            };
        }
        m.seen = now;
        if m.resume >= m.end {
            return false;
        }
        if held_past(&self.held, i, hold) {
            m.resume = m.end;
            m.open.clear();
            self.held.remove(i);
            return false;
        }
        if m.open.is_empty() {
            m.open = units_from(&seg.open_units, shift);
        }
        self.held
            .entry(i.clone())
            .or_insert_with(|| (c.id.clone(), Instant::now()));
        true
    }

    /// Write `all` (the findings of the scan and the masks owed) into the compressed file `gz`: with
    /// the masks written into its plain file as well when Docker compressed some of them in part
    /// (`torn`, kept only if the rewrite is that plain file), otherwise only `all`. A rewrite that
    /// fails leaves them owed (and the file to be checked again).
    fn mask_gz(
        &mut self,
        c: &ContainerLog,
        gz: &OpenGz<'_>,
        mut all: Vec<Finding>,
        torn: Option<PlainWritten>,
    ) -> io::Result<GzMasked> {
        let (path, file, ident) = (gz.path, gz.file, gz.ident);
        let (dev, ino, size) = gz.at;
        let mut r = Err(io::Error::from(io::ErrorKind::InvalidData));
        if let Some(w) = &torn {
            let with: Vec<Finding> = all.iter().cloned().chain(w.masks.iter().cloned()).collect();
            if let Some(i) = ident {
                self.alias_ahead_gz(&c.id, i, file, &with);
            }
            let plain = PlainTail {
                len: w.end,
                hash: &w.tail,
                masks: &w.masks,
            };
            r = rewrite_gz(path, (dev, ino), &all, Some(plain));
            if matches!(r, Ok(GzRewrite::Done(..))) {
                all = with;
            }
        }
        if matches!(&r, Err(e) if e.kind() == io::ErrorKind::InvalidData) {
            // Nothing torn, or not the plain file after all: what the scan found.
            r = if all.is_empty() {
                Ok(GzRewrite::Done((dev, ino, size), path.to_path_buf()))
            } else {
                if let Some(i) = ident {
                    self.alias_ahead_gz(&c.id, i, file, &all);
                }
                rewrite_gz(path, (dev, ino), &all, None)
            };
        }
        let r = match r {
            // Renamed between the scan and the rewrite: as below.
            Err(e) if e.kind() == io::ErrorKind::NotFound => GzRewrite::Moved,
            Err(e) => {
                // Owed, and tried again at the next check (the findings are recorded).
                if let Some(i) = ident {
                    self.owe(i, all, Some(file));
                    self.marks.gz.retain(|_, m| m.ident != *i);
                }
                return Err(e);
            }
            Ok(r) => r,
        };
        match r {
            GzRewrite::Done((ndev, nino, nsize), now) => {
                let n: u64 = all.iter().map(|f| f.ranges.len() as u64).sum();
                self.metrics.add(crate::metrics::MASKS_WRITTEN_TOTAL, n as f64);
                self.observe_delays(&all, "gz-scan");
                if let Some(i) = ident {
                    self.forget_owed(i);
                    self.alias_gz_first_line(&c.id, i, &now, (ndev, nino));
                }
                Ok(GzMasked::Checked {
                    masked: n,
                    now: (format!("{ndev}:{nino}"), nsize),
                })
            }
            // Docker kept moving it: the next sync finds it under its new name and writes
            // these masks then (some may not be found without the carried bytes).
            GzRewrite::Moved => {
                if let Some(i) = ident {
                    self.owe(i, all, Some(file));
                }
                Ok(GzMasked::NotHere)
            }
            // Docker deleted it: nothing of it is left to mask.
            GzRewrite::Gone => {
                if let Some(i) = ident {
                    self.forget_owed(i);
                }
                Ok(GzMasked::NotHere)
            }
        }
    }
}

/// A unit held open at the end of the file known as `ident` has waited `hold`.
fn held_past(held: &HashMap<String, (String, Instant)>, ident: &str, hold: Duration) -> bool {
    held.get(ident).is_some_and(|(_, since)| since.elapsed() >= hold)
}

/// The masks this process wrote into a plain file scanned to its end (see `Guard::written`), with
/// that file's length and [`checkpoint::tail_hash`].
struct PlainWritten {
    masks: Vec<Finding>,
    end: u64,
    tail: String,
}

/// The masks `w` written into the plain file, when the compressed file open as `file` lacks some
/// of them (Docker read the plain file between two writes of one secret).
fn torn_in(file: &File, w: PlainWritten) -> io::Result<Option<PlainWritten>> {
    let mut again = file.try_clone()?;
    again.seek(io::SeekFrom::Start(0))?;
    let decoder = flate2::read::MultiGzDecoder::new(io::BufReader::new(again));
    Ok(MaskPlan::from_findings(&w.masks)
        .missing_in(decoder)
        .unwrap_or(false)
        .then_some(w))
}

/// A compressed file open for its check.
struct OpenGz<'f> {
    path: &'f Path,
    file: &'f File,
    /// Its (dev, inode, size) when it was opened.
    at: (u64, u64, u64),
    /// Its checkpoint key (none without a complete line).
    ident: Option<&'f str>,
    /// It may be masked.
    masks: bool,
}

/// What came of writing the masks of a compressed file.
enum GzMasked {
    /// Rewritten masked (or left as it was when there was nothing to write): the byte ranges
    /// written, and the file now (its `dev:inode` mark key and size), to be marked checked.
    Checked { masked: u64, now: (String, u64) },
    /// Docker moved or deleted it meanwhile: not marked checked (the masks are owed, or moot).
    NotHere,
}
