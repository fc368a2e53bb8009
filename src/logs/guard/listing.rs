//! A container's log files as found in its directory, and one sync of them all, oldest first: an
//! entry split across a rotation is joined only when each file is scanned after the one before it.
//! After a sync that visited every file without an error, the marks of files Docker deleted are
//! forgotten.
use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

use super::carry::Prev;
use super::plain::PlainFile;
use super::{unix_now, Guard, SyncStats};
use crate::logs::containers::ContainerLog;

/// How long the mark of a file Docker deleted is kept after it was last seen (a `.gz` made of it is
/// checked well within this, unless the guard is that far behind).
pub(super) const GONE_AFTER: Duration = Duration::from_secs(600);

/// The files of one container's log, as found in its directory.
#[derive(Debug, Default)]
pub(super) struct Listing {
    /// Rotated plain files, oldest (highest number) first.
    pub(super) rotated: Vec<(u32, PathBuf)>,
    /// Compressed rotated files, oldest first.
    pub(super) gz: Vec<(u32, PathBuf)>,
    pub(super) live: Option<PathBuf>,
    /// Log-named entries that are not regular files (symbolic links, directories, devices): never
    /// read or written.
    pub(super) refused: Vec<PathBuf>,
}

pub(super) fn list_files(c: &ContainerLog) -> io::Result<Listing> {
    let base = c
        .log_path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_string();
    let mut out = Listing::default();
    for entry in fs::read_dir(c.dir())? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !name.starts_with(base.as_str()) {
            continue;
        }
        // The entry itself, not what a link points to.
        if !entry.file_type()?.is_file() {
            out.refused.push(entry.path());
            continue;
        }
        if name == base {
            out.live = Some(entry.path());
        } else if let Some(rest) = name.strip_prefix(&base).and_then(|r| r.strip_prefix('.')) {
            if let Some(n) = rest.strip_suffix(".gz").and_then(|n| n.parse::<u32>().ok()) {
                out.gz.push((n, entry.path()));
            } else if let Ok(n) = rest.parse::<u32>() {
                out.rotated.push((n, entry.path()));
            }
        }
    }
    out.rotated.sort_by_key(|e| std::cmp::Reverse(e.0));
    out.gz.sort_by_key(|e| std::cmp::Reverse(e.0));
    Ok(out)
}

/// The file before the `i`th of `order` (number, path, compressed; oldest first, the live file
/// numbered 0): the next older number (`name.N.gz` beside `name.N` is its copy), flagged as a gap
/// when it is not the number just after (see [`Prev::gap`]). The end of a file Docker may be
/// compressing is masked through its `.gz` (`gz_owed`): Docker may have read it already, and the
/// `.gz` check may not know of these masks.
pub(super) fn prev_in(order: &[(u32, PathBuf, bool)], i: usize, masks: bool, compressing: bool) -> Option<Prev> {
    let n = order[i].0;
    order[..i].iter().rev().find(|e| e.0 != n).map(|(k, p, g)| Prev {
        path: p.clone(),
        gz: *g,
        masks: masks && !compressing && !*g,
        owe_here: masks && compressing,
        gap: *k != n + 1,
    })
}

impl Guard<'_> {
    /// Sync every file of container `c`, oldest first.
    pub(super) fn sync_listed(&mut self, c: &ContainerLog) -> SyncStats {
        let c = c.clone();
        let listing = match list_files(&c) {
            Ok(l) => l,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return SyncStats::default(),
            Err(e) => {
                self.error(&format!("{}: cannot list: {e}", c.dir().display()));
                return SyncStats::default();
            }
        };
        for p in &listing.refused {
            self.warn_once(format!("refused {}", p.display()), || {
                format!(
                    "log guard: {}: not a regular file (a symbolic link?): not read or masked",
                    p.display()
                )
            });
        }
        let masks = self.masks(&c);
        let errors_before = self.errors_seen;
        // A container whose rotated files are compressed: Docker may be reading a plain rotated file.
        let compressing = c.compress || !listing.gz.is_empty();
        // Oldest first: name.N… (plain or compressed), then the live file. A log entry split into
        // 16 KiB parts may straddle a rotation: each plain file is scanned after the one before it.
        let mut order: Vec<(u32, PathBuf, bool)> = listing
            .rotated
            .iter()
            .map(|(n, p)| (*n, p.clone(), false))
            .chain(listing.gz.iter().map(|(n, p)| (*n, p.clone(), true)))
            .collect();
        order.sort_by_key(|e| (std::cmp::Reverse(e.0), !e.2));
        if let Some(p) = &listing.live {
            order.push((0, p.clone(), false));
        }
        let plain: HashSet<u32> = listing.rotated.iter().map(|(n, _)| *n).collect();
        let mut stats = SyncStats::default();
        for (i, (n, path, gz)) in order.iter().enumerate() {
            let prev = prev_in(&order, i, masks, compressing);
            if *gz {
                // `name.N` still there: Docker is writing `name.N.gz`.
                if !plain.contains(n) {
                    stats += self.sync_gz(&c, path, masks, prev);
                }
                continue;
            }
            let live = *n == 0 && listing.live.as_ref() == Some(path);
            // A rotated file Docker is compressing is masked in place too: a mask written before
            // Docker created the `.gz` is in it, and one written later is applied when the `.gz`
            // is checked (see `gz_from_written`).
            stats += self.sync_plain(
                &c,
                PlainFile {
                    path,
                    live,
                    masks,
                    prev,
                },
            );
        }
        // The scan of a file masked the end of a compressed file before it: check that one again.
        if std::mem::take(&mut self.recheck_gz) {
            let again: Vec<PathBuf> = listing
                .gz
                .iter()
                .filter(|(n, _)| !plain.contains(n))
                .map(|(_, p)| p.clone())
                .collect();
            stats += self.recheck_gz_files(&c, &again, masks);
        }
        // Every file there was visited (its mark seen at most a minute ago): marks not seen for
        // long are of files Docker deleted.
        if self.errors_seen == errors_before {
            self.forget_deleted(&c.id);
        }
        stats
    }

    /// Forget the marks of container `id`'s files that Docker deleted (rotated beyond `max-file`),
    /// right after a sync that visited every file of it without an error (a file there has its
    /// mark seen at most a minute before): marks not seen for [`GONE_AFTER`] and needed by no
    /// `.gz` copy, entry held open or mask owed. (Not by inode: the file system gives a deleted
    /// file's inode to the next new file at once, and Docker makes one at each rotation.) They were
    /// kept for an hour: on a busy host (20 containers at 2 000 lines/s, `max-file` 3)
    /// `checkpoints.json` grew by about 85 KB a minute, rewritten at every checkpoint.
    pub(super) fn forget_deleted(&mut self, id: &str) {
        let cutoff = unix_now().saturating_sub(GONE_AFTER.as_secs());
        let gz_before = self.marks.gz.len();
        self.marks.gz.retain(|_, m| m.container != id || m.seen >= cutoff);
        let gz_idents: HashSet<&str> = self.marks.gz.values().map(|m| m.ident.as_str()).collect();
        let files_before = self.marks.files.len();
        let (held, owed) = (&self.held, &self.marks.gz_owed);
        self.marks.files.retain(|ident, m| {
            m.container != id
                || m.seen >= cutoff
                || gz_idents.contains(ident.as_str())
                || held.contains_key(ident)
                || owed.contains_key(ident)
        });
        if self.marks.gz.len() != gz_before || self.marks.files.len() != files_before {
            let files = &self.marks.files;
            self.marks.aliases.retain(|_, ident| files.contains_key(ident));
            self.written.retain(|k, _| files.contains_key(k));
            self.marks_dirty = true;
        }
    }

    /// Check compressed files again (a mask was written into their end) by the names of a listing
    /// that may be stale: Docker may have rotated since, and a name may now hold a file never
    /// scanned. Such a file may continue the file before it, which only a listing tells: it is left
    /// to the next listing (a scan here, with nothing before it, would mark it scanned, and the
    /// entry it finishes would never be joined).
    pub(super) fn recheck_gz_files(&mut self, c: &ContainerLog, paths: &[PathBuf], masks: bool) -> SyncStats {
        self.rechecking = true;
        let mut stats = SyncStats::default();
        for path in paths {
            stats += self.sync_gz(c, path, masks, None);
        }
        self.rechecking = false;
        stats
    }
}
