//! Joining across rotations: a unit open at the end of one file (a 16 KiB split without its last
//! part, a PEM key without its END line) is carried into the scan of the next file, and each file
//! gets the masks of its part. The file before may not be readable yet (Docker renamed, removed or
//! is compressing it): the new file then waits for it, for a bounded time.
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{mask_in_place, Found, Guard, RangeReader};
use crate::logs::checkpoint;
use crate::logs::containers::ContainerLog;
use crate::logs::scan::OpenUnit;
use crate::redact::Finding;

/// The file before the one being scanned, in Docker's rotation order.
#[derive(Debug, Clone)]
pub(super) struct Prev {
    pub(super) path: PathBuf,
    pub(super) gz: bool,
    /// It may be masked in place.
    pub(super) masks: bool,
    /// Docker compresses this container's rotated files: the parts of findings joined from the
    /// file before that land in the file being scanned are also owed to its `.gz` (persisted, so
    /// that a `.gz` Docker made before the mask was written is rewritten even after a restart).
    pub(super) owe_here: bool,
    /// The listing had no file numbered just after this one: it was read while Docker was
    /// renaming (each rotation renames the files one by one, oldest first, and a directory read
    /// meanwhile may miss one), or a file was removed by hand. `path` may then not be the file
    /// before, and by the time it is opened Docker may have finished the rotation, so that it holds
    /// a file two rotations older: joined with it, a secret split across the rotation was left in
    /// clear on both sides (seen in the stress benchmark). The file waits for a new listing.
    pub(super) gap: bool,
}

/// The file being joined with the end of the file before it.
#[derive(Debug, Clone, Copy)]
pub(super) struct This<'p> {
    /// Its name when it was opened.
    pub(super) path: &'p Path,
    /// Its (dev, inode).
    pub(super) at: (u64, u64),
    /// Its birth time (see `born`).
    pub(super) born: (i64, i64),
}

/// The end of the file before, carried into the scan of the next file.
#[derive(Debug)]
pub(super) struct Carry {
    pub(super) ident: String,
    pub(super) path: PathBuf,
    /// That file, open for writing when it may be masked in place (Docker may rename it meanwhile).
    pub(super) file: File,
    pub(super) masks: bool,
    /// That file is compressed.
    pub(super) gz: bool,
    /// See [`Prev::owe_here`].
    pub(super) owe_here: bool,
    /// Offset of the carried bytes in that file.
    pub(super) start: u64,
    /// Offset just past them.
    pub(super) end: u64,
    /// Where that file's bytes not scanned yet began (its checkpoint).
    pub(super) fresh_from: u64,
    /// Lines before `start` in that file.
    pub(super) start_line: u64,
    /// Units open at the end of that file (never reported).
    pub(super) open: Vec<OpenUnit>,
    pub(super) bytes: Vec<u8>,
    pub(super) lines: u64,
}

/// The units at or after `from`, in the offsets of a scan that starts there.
pub(super) fn units_from(units: &[OpenUnit], from: u64) -> Vec<OpenUnit> {
    units
        .iter()
        .filter(|o| o.line_start >= from)
        .map(|o| OpenUnit {
            line_start: o.line_start - from,
            seen: o.seen,
        })
        .collect()
}

impl Carry {
    /// The open units of the file before, in the offsets of a scan that starts with the carried bytes.
    pub(super) fn reopened(&self) -> Vec<OpenUnit> {
        units_from(&self.open, self.start)
    }

    /// A part of a finding in the carried bytes (their offsets), in the offsets of the file before.
    pub(super) fn in_before(&self, mut f: Finding) -> Finding {
        for r in &mut f.ranges {
            r[0] += self.start;
            r[1] += self.start;
        }
        f.start += self.start;
        f.end += self.start;
        f
    }

    /// The findings of the combined scan that span both files, split: their parts in this file
    /// (its offsets) and in the file before (that file's offsets).
    pub(super) fn joined_parts(&self, findings: &[Found]) -> (Vec<Finding>, Vec<Finding>) {
        let shift = self.bytes.len() as u64;
        let (mut here, mut before) = (Vec::new(), Vec::new());
        for f in findings
            .iter()
            .map(|x| &x.finding)
            .filter(|f| f.start < shift && f.end > shift)
        {
            let (b, h) = split_finding(f.clone(), shift, self.lines);
            here.extend(h);
            before.extend(b.map(|b| self.in_before(b)));
        }
        (here, before)
    }

    /// A finding of the combined scan that lies wholly in the carried bytes, in the offsets and
    /// lines of the file before.
    pub(super) fn to_before(&self, f: Finding) -> Finding {
        let mut f = self.in_before(f);
        f.line += self.start_line;
        f.end_line += self.start_line;
        f.file = self.path.display().to_string();
        f
    }
}

/// Split a finding of a scan that began with `shift` carried bytes into its part in the file
/// before (offsets relative to the carried bytes) and its part in this file.
pub(super) fn split_finding(f: Finding, shift: u64, carried_lines: u64) -> (Option<Finding>, Option<Finding>) {
    let mut mask_at = 0usize;
    let mut before = (Vec::new(), Vec::new());
    let mut here = (Vec::new(), Vec::new());
    for [s, e] in &f.ranges {
        let len = (e - s) as usize;
        let m = f
            .mask
            .get(mask_at..mask_at + len)
            .map(<[u8]>::to_vec)
            .unwrap_or_else(|| vec![b'*'; len]);
        mask_at += len;
        if *e <= shift {
            before.0.push([*s, *e]);
            before.1.extend(m);
        } else if *s >= shift {
            here.0.push([s - shift, e - shift]);
            here.1.extend(m);
        } else {
            let k = (shift - s) as usize;
            before.0.push([*s, shift]);
            before.1.extend_from_slice(&m[..k]);
            here.0.push([0, e - shift]);
            here.1.extend_from_slice(&m[k..]);
        }
    }
    let make = |(ranges, mask): (Vec<[u64; 2]>, Vec<u8>), base: &Finding| -> Option<Finding> {
        let first = ranges.first()?[0];
        let last = ranges.last()?[1];
        Some(Finding {
            start: first,
            end: last,
            ranges,
            mask,
            ..base.clone()
        })
    };
    let b = make(before, &f);
    let h = make(here, &f).map(|mut h| {
        h.line = f.line.saturating_sub(carried_lines).max(1);
        h.end_line = f.end_line.saturating_sub(carried_lines).max(h.line);
        h
    });
    (b, h)
}

/// Split the findings of a scan that began with the carried bytes `carry`: the findings (or parts)
/// in this file; the parts in the file before (to mask there, offsets of the carried bytes); and
/// the new findings wholly in the file before (to record, in that file's offsets and lines).
pub(super) fn split_carried(carry: Option<&Carry>, findings: Vec<Found>) -> Split {
    let Some(k) = carry else {
        return Split {
            here: findings,
            before: Vec::new(),
            before_new: Vec::new(),
        };
    };
    let shift = k.bytes.len() as u64;
    let mut here = Vec::with_capacity(findings.len());
    let (mut before, mut before_new) = (Vec::new(), Vec::new());
    for Found { finding, is_new } in findings {
        let (b, h) = split_finding(finding, shift, k.lines);
        match (b, h) {
            (Some(b), None) if is_new => {
                before_new.push(Found {
                    finding: k.to_before(b.clone()),
                    is_new: true,
                });
                before.push(b);
            }
            (b, h) => {
                if let (Some(b), true) = (b, is_new) {
                    before.push(b);
                }
                if let Some(h) = h {
                    here.push(Found { finding: h, is_new });
                }
            }
        }
    }
    Split {
        here,
        before,
        before_new,
    }
}

/// The findings of a scan that began with carried bytes, split (see [`split_carried`]).
pub(super) struct Split {
    /// The findings (or their parts) in this file, in its offsets.
    pub(super) here: Vec<Found>,
    /// The parts in the file before, to mask there (offsets of the carried bytes).
    pub(super) before: Vec<Finding>,
    /// The new findings wholly in the file before, to record (that file's offsets and lines).
    pub(super) before_new: Vec<Found>,
}

/// How long a new file waits for the file before it to be compressed (see `carry_from`).
pub(super) const CARRY_WAIT: Duration = Duration::from_secs(3);

/// How long a new file waits for the file before it to be listed again (after Docker rotated during
/// a sync) before it is scanned alone.
pub(super) const CARRY_RELIST: Duration = Duration::from_millis(500);

impl Guard<'_> {
    /// The entry left open at the end of the file before this one (a 16 KiB split that Docker
    /// finished in the next file), to be scanned together with this file's first lines.
    ///
    /// `WouldBlock` when the file before cannot be told yet: Docker removed it meanwhile (its
    /// compressed copy is listed next time), renamed this file to its name, or is compressing it.
    pub(super) fn carry_from(&mut self, c: &ContainerLog, prev: Prev, this: This<'_>) -> io::Result<Option<Carry>> {
        let This {
            at: this_at,
            born: this_born,
            ..
        } = this;
        if prev.gap {
            // Listed again shortly; a gap that stays (a file removed by hand) ends the wait.
            if self.still_waiting(this_at, this_born, CARRY_RELIST) {
                return Err(moved());
            }
            return Ok(None);
        }
        let write = prev.masks && !prev.gz;
        let Some(Before { file, meta, ident }) = self.open_before(c, &prev, this)? else {
            return Ok(None);
        };
        // (A file before with a checkpoint at its start has not been scanned: it waits for the
        // file before it in turn, or it waited as a plain file and Docker compressed it since.)
        let mark = self.marks.files.get(&ident).filter(|m| m.end > 0 || m.resume > 0);
        let Some(mark) = mark else {
            // Files are synced oldest first, so the file before has been scanned unless Docker
            // rotated after the listing (the name now holds a file not synced yet, and this file
            // may continue it), or it is a compressed file that could not be scanned yet (Docker
            // is still writing it; after a restart the guard may never have seen it plain).
            // Listed again shortly, for a while at most, then this file is scanned alone.
            // A file before that is waiting in turn (its checkpoint at its start) is waited for as
            // long as it may wait itself: a shorter wait here would end first, and this file would
            // be scanned without the end of that one.
            let waiting = self.marks.files.contains_key(&ident);
            let wait = if prev.gz || waiting { CARRY_WAIT } else { CARRY_RELIST };
            if self.still_waiting(this_at, this_born, wait) {
                return Err(moved());
            }
            return Ok(None);
        };
        // A compressed file before that has not been checked as it is now may hold more than its
        // checkpoint says: Docker wrote to it after its last scan as a plain file (a guard killed
        // meanwhile, or Docker still compressing it when the listing looked). Files are synced
        // oldest first: the next listing checks it, then this file is joined with its real end.
        let unchecked_gz = prev.gz
            && self
                .marks
                .gz
                .get(&format!("{}:{}", meta.dev(), meta.ino()))
                .is_none_or(|g| g.size != meta.len());
        let (start, fresh_from, start_line, open) = (mark.resume, mark.end, mark.resume_line, mark.open.clone());
        if unchecked_gz && self.still_waiting(this_at, this_born, CARRY_WAIT) {
            return Err(moved());
        }
        self.carry_waits.remove(&this_at);
        // A plain file may have grown after its last scan (Docker wrote and renamed it since):
        // its unscanned lines are carried as well.
        let end = if prev.gz {
            fresh_from
        } else {
            crate::fsutil::last_line_end(&file, fresh_from, meta.len())?.max(fresh_from)
        };
        // The open unit is at most one window of text (a longer one was matched in windows), but its
        // raw bytes may be several times that (JSON escapes); and a rotated file is short.
        if start >= end || end - start > 4 * self.scanner.options.max_unit_bytes as u64 {
            return Ok(None);
        }
        let bytes = read_before(&file, &meta, prev.gz, start..end)?;
        let lines = memchr::memchr_iter(b'\n', &bytes).count() as u64;
        Ok(Some(Carry {
            ident,
            path: prev.path,
            file,
            masks: write,
            gz: prev.gz,
            owe_here: prev.owe_here,
            start,
            end,
            fresh_from,
            start_line,
            open,
            bytes,
            lines,
        }))
    }

    /// Open the file before `this` (for writing when it may be masked in place) and find its
    /// checkpoint key by its first line (`None`: it has no complete line). `WouldBlock` when the
    /// name no longer holds it or holds `this` file, `this` file's name no longer holds it (Docker
    /// rotated meanwhile), or a compressed file before is still being written.
    fn open_before(&self, c: &ContainerLog, prev: &Prev, this: This<'_>) -> io::Result<Option<Before>> {
        let file = OpenOptions::new()
            .read(true)
            .write(prev.masks && !prev.gz)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(&prev.path)
            .map_err(|e| {
                if e.kind() == io::ErrorKind::NotFound {
                    moved()
                } else {
                    e
                }
            })?;
        let meta = file.metadata()?;
        if (meta.dev(), meta.ino()) == this.at {
            return Err(moved());
        }
        // Still at its name now that the file before is open: no rotation came between the two
        // opens (one would have renamed it), so the two names held neighbours at once. Otherwise
        // the name before may already hold a newer file than the one before this.
        if fs::symlink_metadata(this.path).map(|m| (m.dev(), m.ino())).ok() != Some(this.at) {
            return Err(moved());
        }
        let first = if prev.gz {
            checkpoint::first_line(flate2::read::MultiGzDecoder::new(&file), 1 << 20)
                .map_err(|e| unfinished(&meta, e))?
        } else {
            checkpoint::first_line(
                RangeReader {
                    file: &file,
                    pos: 0,
                    end: meta.len(),
                },
                1 << 20,
            )?
        };
        let Some(first) = first else { return Ok(None) };
        let ident = self.known(checkpoint::identity(&c.id, &first));
        let ident = if prev.gz {
            ident
        } else {
            self.plain_ident(ident, meta.dev(), meta.ino())
        };
        Ok(Some(Before { file, meta, ident }))
    }

    /// Whether the file `this` is still within `wait` of the moment it started waiting for the file
    /// before it (the wait is over, and forgotten, otherwise).
    pub(super) fn still_waiting(&mut self, this: (u64, u64), this_born: (i64, i64), wait: Duration) -> bool {
        let now = Instant::now();
        let (since, born) = self.carry_waits.entry(this).or_insert((now, this_born));
        if *born != this_born || now.duration_since(*since) > 10 * wait {
            // Left by a file that went away (Docker removes the oldest file at each rotation, and
            // a new file may get its inode; at a few dozen rotations a second this happens within
            // a wait): a new wait.
            *since = now;
            *born = this_born;
        }
        if now.duration_since(*since) < wait {
            return true;
        }
        self.carry_waits.remove(&this);
        false
    }

    /// The end of the file before was scanned with the file after it.
    pub(super) fn carried(&mut self, k: &Carry) {
        let mut container = None;
        if let Some(m) = self.marks.files.get_mut(&k.ident) {
            // (Masks may have been written before the end: the hash of the tail changed too.)
            let end = m.end.max(k.end);
            match checkpoint::tail_hash(&k.file, end) {
                Ok(tail) if k.masks || end > m.end => {
                    m.end = end;
                    m.tail = tail;
                }
                _ => m.end = end,
            }
            container = Some(m.container.clone());
            m.resume = m.end;
            m.resume_line = k.start_line + k.lines;
            m.open.clear();
        }
        self.held.remove(&k.ident);
        // A `.gz` checked from memory while this entry was open kept what was written into its
        // plain file for a check after this one: needed only when it is owed masks now.
        if k.gz && !self.marks.gz_owed.contains_key(&k.ident) {
            self.written.remove(&k.ident);
        }
        self.settled.retain(|_, (_, ident)| *ident != k.ident);
        if let (Some(container), true) = (container, k.masks && k.start == 0) {
            self.alias_first_line(&container, &k.ident, &k.file, None);
        }
    }

    /// Mask the parts of findings that lie in the file before (in place when it is plain and not
    /// being compressed; otherwise when its compressed copy is checked).
    pub(super) fn mask_before(&mut self, k: &Carry, parts: Vec<Finding>) -> io::Result<u64> {
        if parts.is_empty() {
            return Ok(0);
        }
        let parts: Vec<Finding> = parts.into_iter().map(|f| k.in_before(f)).collect();
        if k.masks {
            // The same inode, whatever Docker renamed it to meanwhile.
            if let Some(container) = self.marks.files.get(&k.ident).map(|m| m.container.clone()) {
                self.alias_ahead(&container, &k.ident, &k.file, &parts);
            }
            let n = mask_in_place(&k.file, &parts);
            self.note_written(&k.ident, &parts);
            self.masked_in_place(&k.file, true);
            let n = n?;
            self.observe_delays(&parts, "before");
            return Ok(n);
        }
        // Compressed (or being compressed): masked when the .gz is checked; check it again.
        self.marks.gz.retain(|_, m| m.ident != k.ident);
        self.owe(&k.ident, parts, None);
        self.recheck_gz = true;
        Ok(0)
    }
}

/// The file before, open, and its checkpoint key.
struct Before {
    file: File,
    meta: fs::Metadata,
    ident: String,
}

/// The file before cannot be told yet (see `Guard::carry_from`).
fn moved() -> io::Error {
    io::Error::new(io::ErrorKind::WouldBlock, "Docker moved the files meanwhile")
}

/// Docker compresses in place: a compressed file (with metadata `meta`) that ends early and was
/// written a moment ago is still being written (`WouldBlock`: try again shortly). Other errors
/// are returned as they are.
fn unfinished(meta: &fs::Metadata, e: io::Error) -> io::Error {
    let recent = meta
        .modified()
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age < CARRY_WAIT);
    if recent && e.kind() == io::ErrorKind::UnexpectedEof {
        io::Error::new(io::ErrorKind::WouldBlock, "the file before is still being compressed")
    } else {
        e
    }
}

/// The bytes `range` of the file before, open as `file` (decompressed when it is compressed).
fn read_before(file: &File, meta: &fs::Metadata, gz: bool, range: std::ops::Range<u64>) -> io::Result<Vec<u8>> {
    let mut bytes = vec![0u8; (range.end - range.start) as usize];
    if gz {
        // Reading the first line moved the file's offset: decompress from the start again.
        let mut again = file.try_clone()?;
        again.seek(io::SeekFrom::Start(0))?;
        let mut d = flate2::read::MultiGzDecoder::new(io::BufReader::new(again));
        io::copy(&mut (&mut d).take(range.start), &mut io::sink()).map_err(|e| unfinished(meta, e))?;
        d.read_exact(&mut bytes).map_err(|e| unfinished(meta, e))?;
    } else {
        file.read_exact_at(&mut bytes, range.start)?;
    }
    Ok(bytes)
}
