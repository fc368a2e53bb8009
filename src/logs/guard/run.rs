//! The follow loop: container discovery, syncs driven by inotify events and a slow rescan, and the
//! containment of a panic in one container's sync (that container is retried with back-off while
//! the others go on, its state rebuilt from the checkpoints on disk).
use std::collections::HashSet;
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::plain::PlainFile;
use super::{selects, short_id, unix_now, Commit, Guard, SyncStats};
use crate::escape::terminal;
use crate::findings::sink::OccurrenceId;
use crate::logs::checkpoint::Checkpoints;
use crate::logs::containers;
use crate::logs::watch::{Changes, Watch, TMP_PREFIX};

/// Shortest time between two syncs driven by events (a container's first write after a quiet
/// spell is synced at once). Each sync has a cost of its own besides the bytes (waking, `lstat`,
/// caches gone cold while dockerd ran): `rate10k` of `benches/guard_stress.py` (10 000 lines/s,
/// compressed rotations) took 0.52–0.61 CPU-s of the guard with 20 ms, 0.49–0.51 with 40 ms and
/// 0.44–0.49 with 50 ms (four, two and four runs, alternating), with an exposure p99 of 21, 41 and
/// 51 ms.
pub(super) const BATCH: Duration = Duration::from_millis(50);

/// The batch instead of [`BATCH`] while the containers write [`BUSY_RATE`] or more: a backlog grows
/// faster than linearly on a busy host (longer passes, preempted more often). Measured with
/// `benches/guard_stress.py` at 150 000–165 000 lines/s (`max1`, three runs each, alternating): 20 ms
/// gave an exposure p99 of 171–234 ms (69–78 % of masks within 100 ms), and with `max-file` 3 Docker
/// deleted 359–801 of 2 499 secrets before the guard saw them (eight runs); 5 ms gave 39–58 ms
/// (100 %) and 0–31 (four runs). Always 5 ms cost 5–10 % more CPU at 10 000 lines/s than 20 ms (then
/// [`BATCH`]), which kept the p99 near 20 ms; switched by rate, `max1` gave 49–73 ms and `rate10k`
/// the CPU of 20 ms (three and two runs).
pub(super) const BATCH_BUSY: Duration = Duration::from_millis(5);

/// Bytes a second of plain files scanned (over the last sync and the wait before it: what the
/// containers wrote, not compressed copies scanned again) that call for [`BATCH_BUSY`]: about
/// 17 000 lines a second of a gateway's log.
pub(super) const BUSY_RATE: f64 = 4.0 * 1024.0 * 1024.0;

pub(super) fn remove_stale_temporaries(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(TMP_PREFIX) && name.ends_with(".tmp") {
            let _ = fs::remove_file(e.path());
        }
    }
}

/// What a sync looks at in a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Look {
    /// Every file of its log (listed).
    Everything,
    /// Only the live log was written to since the last sync (no file created, renamed or
    /// removed): only it is looked at when it is a file the guard already followed past its start
    /// (otherwise, everything).
    LiveOnly,
}

impl Guard<'_> {
    /// Read the container directories again: pick up new containers, drop removed ones.
    pub fn discover(&mut self) -> io::Result<()> {
        let (found, errors) = containers::discover(&self.opts.docker_root)?;
        for (path, e) in errors {
            self.warn_once(format!("discover {}", path.display()), || {
                format!("log guard: {}: cannot read the container config: {e}", path.display())
            });
        }
        let own = self.opts.own_container.clone();
        if self.containers.is_empty() {
            // At start: temporary files of a rewrite that was killed (no other guard is running).
            for c in &found {
                remove_stale_temporaries(c.dir());
            }
        }
        self.containers = found
            .into_iter()
            .filter(|c| Some(&c.id) != own.as_ref())
            .filter(|c| self.opts.containers.is_empty() || self.opts.containers.iter().any(|s| selects(s, c)))
            .map(|c| (c.id.clone(), c))
            .collect();
        let alive: HashSet<String> = self.containers.keys().cloned().collect();
        self.budget.retain(|id| alive.contains(id));
        self.marks
            .prune(unix_now().saturating_sub(3600), &|id| alive.contains(id));
        let files = &self.marks.files;
        self.written.retain(|k, _| files.contains_key(k));
        let replaying = self.replay.len();
        self.replay.retain(|k, _| files.contains_key(k));
        self.pending_dirty |= self.replay.len() != replaying;
        if self.carry_waits.len() > 4096 {
            self.carry_waits.clear();
        }
        if self.marks.recovered.is_empty() {
            self.recovered.clear();
        }
        self.lag.retain(|id, _| alive.contains(id));
        self.lag_since.retain(|id, _| alive.contains(id));
        self.metrics
            .set(crate::metrics::LOG_CONTAINERS_FOLLOWED, self.containers.len() as f64);
        // Containers this guard reports but does not mask: counted, and those labelled for
        // another guard named once each (a label can come from an image, not only from the
        // operator: it must not pass unseen).
        let mut unmasked = 0;
        let mut other_guard = Vec::new();
        for c in self.containers.values() {
            if self.opts.mask && !self.masks(c) {
                unmasked += 1;
                if let Some(name) = c.masked_by().filter(|n| *n != self.opts.name) {
                    other_guard.push((c.id.clone(), c.name.clone(), name.to_string()));
                }
            }
        }
        self.metrics
            .set(crate::metrics::LOG_CONTAINERS_UNMASKED, unmasked as f64);
        for (id, name, guard) in other_guard {
            let own = self.opts.name.clone();
            self.warn_once(format!("guard label {id}"), || {
                format!(
                    "log guard: container {} is labelled sidecar.guard={}: another guard masks it; this one (guard.name = {:?}) only reports its secrets",
                    terminal(&name),
                    terminal(&guard),
                    terminal(&own)
                )
            });
        }
        Ok(())
    }

    /// Sync every container.
    pub fn sync_all(&mut self) -> SyncStats {
        let ids: Vec<String> = self.containers.keys().cloned().collect();
        self.sync_each(ids, None)
    }

    /// Sync these containers one after the other; between two, the heartbeat is written when due
    /// (a long pass over a backlog is not a dead guard) and `stop` is honoured.
    pub(super) fn sync_each(&mut self, ids: impl IntoIterator<Item = String>, stop: Option<&AtomicBool>) -> SyncStats {
        self.sync_each_as(ids.into_iter().map(|id| (id, Look::Everything)), stop)
    }

    /// [`Self::sync_each`], with what to look at in each container (see [`Look`]).
    pub(super) fn sync_each_as(
        &mut self,
        ids: impl IntoIterator<Item = (String, Look)>,
        stop: Option<&AtomicBool>,
    ) -> SyncStats {
        let mut total = SyncStats::default();
        for (id, look) in ids {
            if stop.is_some_and(|s| s.load(Ordering::Relaxed)) {
                break;
            }
            total += self.sync_container_as(&id, look);
            self.beat();
            // A long pass (a backlog after a start, many busy containers) checkpoints as it goes,
            // at most every `checkpoint_every`: what is held until a checkpoint (the keys of the
            // occurrences recorded since) follows a checkpoint's worth of work, not the pass.
            if stop.is_some() {
                if let Err(e) = self.commit(Commit::IfDue) {
                    self.error(&format!("cannot write checkpoints: {e}"));
                }
            }
        }
        total
    }

    /// Scan what is new in one container's files, record and mask it. A panic in this work is
    /// contained: the container is retried with back-off (1 s doubling to 5 min) while the others
    /// go on, and its state is rebuilt from the last checkpoint (nothing is recorded twice).
    pub fn sync_container(&mut self, id: &str) -> SyncStats {
        if let Some((_, retry_at)) = self.quarantine.get(id) {
            if Instant::now() < *retry_at {
                return SyncStats::default();
            }
        }
        self.sync_container_as(id, Look::Everything)
    }

    /// [`Self::sync_container`], looking at what `look` says.
    pub(super) fn sync_container_as(&mut self, id: &str, look: Look) -> SyncStats {
        if let Some((_, retry_at)) = self.quarantine.get(id) {
            if Instant::now() < *retry_at {
                return SyncStats::default();
            }
        }
        let errors_before = self.errors_seen;
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.sync_container_once(id, look)));
        // The aggregates journal notes the masks written, unless some may not be.
        if result.is_err() || self.errors_seen != errors_before {
            if let Some(j) = self.journal.as_mut() {
                j.hold();
            }
        }
        self.masked_all();
        match result {
            Ok(stats) => {
                self.scanned_since_commit += stats.bytes;
                if self.quarantine.remove(id).is_some() {
                    tracing::warn!("log guard: container {}: recovered", short_id(id));
                }
                stats
            }
            Err(_) => {
                let (failures, wait) = self.contain_panic(id);
                self.error(&format!(
                    "container {}: internal error while scanning (failure {failures}); the other containers go on, retrying this one in {} s",
                    short_id(id),
                    wait.as_secs()
                ));
                SyncStats::default()
            }
        }
    }

    /// After a panic in container `id`'s work: quarantine it (back-off) and forget what its work
    /// held in memory, which may be half-updated, so that the next attempt starts again from the
    /// checkpoints on disk. Returns the failures in a row and the wait.
    pub(super) fn contain_panic(&mut self, id: &str) -> (u32, Duration) {
        let failures = self.quarantine.get(id).map_or(0, |(n, _)| *n) + 1;
        let wait = Duration::from_secs(1u64 << (failures - 1).min(8)).min(Duration::from_secs(300));
        self.quarantine
            .insert(id.to_string(), (failures, Instant::now() + wait));
        self.metrics.add(crate::metrics::GUARD_PANICS_TOTAL, 1.0);
        // (Masks waiting in `gz_owed` stay: each is a confirmed secret, whoever's sync found it.)
        self.held.retain(|_, (held_id, _)| held_id != id);
        self.recheck_gz = false;
        self.settled.clear();
        self.written.clear();
        if let Ok(mut disk) = Checkpoints::load(&self.opts.state_dir) {
            // Not saved in this boot yet: its files are to be scanned again all the same.
            disk.after_reboot(&self.marks.boot_id);
            self.marks.files.retain(|_, m| m.container != id);
            self.marks.gz.retain(|_, m| m.container != id);
            self.marks
                .files
                .extend(disk.files.into_iter().filter(|(_, m)| m.container == id));
            self.marks
                .gz
                .extend(disk.gz.into_iter().filter(|(_, m)| m.container == id));
        }
        // Its files are there while it waits, however long it keeps failing: their marks are not
        // taken for those of files Docker deleted (pruned an hour after they were last seen).
        let now = unix_now();
        for m in self.marks.files.values_mut().filter(|m| m.container == id) {
            m.seen = now;
        }
        for m in self.marks.gz.values_mut().filter(|m| m.container == id) {
            m.seen = now;
        }
        // Its files are scanned again from checkpoints that may predate what it recorded since:
        // those occurrences are recovered keys (as after a crash), kept in the checkpoints, so
        // that a checkpoint taken during the quarantine does not forget them. (Keys are digests:
        // the other containers' recorded since go along, which is harmless.)
        let recorded: Vec<OccurrenceId> = self
            .uncommitted
            .iter()
            .chain(self.syncing.iter().flat_map(|s| s.recorded.iter()))
            .filter(|k| !self.recovered.contains(k))
            .copied()
            .collect();
        self.recovered.extend(recorded.iter().copied());
        super::start::keep_recovered(&mut self.marks, recorded.into_iter());
        if !self.marks.recovered.is_empty() {
            // Kept while the container keeps failing (they are forgotten an hour after the last).
            self.marks.recovered_at = unix_now();
        }
        if self.recovered.len() > super::start::RECOVERED_MAX {
            // Bounded as the checkpoint's are (the newest kept).
            self.recovered = self.marks.recovered.iter().map(|k| k.0).collect();
        }
        self.marks_dirty = true;
        (failures, wait)
    }

    pub(super) fn sync_container_once(&mut self, id: &str, look: Look) -> SyncStats {
        #[cfg(debug_assertions)]
        if std::env::var("FAULT_SIDECAR_PANIC_CONTAINER").is_ok_and(|p| !p.is_empty() && id.starts_with(&p)) {
            // Fault injection for the tests (debug builds only): the message holds a would-be
            // secret, which must not reach the output.
            panic!("injected fault ghp_PANICMESSAGEMUSTNOTLEAK0000000000000");
        }
        let Some(c) = self.containers.get(id).cloned() else {
            return SyncStats::default();
        };
        if look == Look::LiveOnly && !self.retry.contains_key(id) {
            let known = self.live_known.get(id).copied();
            if known.is_some()
                && fs::symlink_metadata(&c.log_path)
                    .is_ok_and(|m| m.file_type().is_file() && Some((m.dev(), m.ino())) == known)
            {
                let masks = self.masks(&c);
                self.expect_live = known;
                let stats = self.sync_plain(
                    &c,
                    PlainFile {
                        path: &c.log_path,
                        live: true,
                        masks,
                        prev: None,
                    },
                );
                self.expect_live = None;
                if !self.recheck_gz && self.live_known.contains_key(id) {
                    return stats;
                }
            }
        }
        self.live_known.remove(id);
        let errors_before = self.errors_seen;
        let stats = self.sync_listed(&c);
        if self.errors_seen > errors_before {
            // A rotated or compressed file failed (a full disk, no descriptors left): try the whole
            // container again soon, not only at the next rotation or rescan.
            self.retry
                .entry(id.to_string())
                .or_insert_with(|| Instant::now() + Duration::from_secs(1));
        }
        stats
    }

    /// Containers whose work panicked and whose back-off is over.
    pub(super) fn quarantine_due(&self) -> Vec<String> {
        let now = Instant::now();
        self.quarantine
            .iter()
            .filter(|(_, (_, at))| *at <= now)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Containers with a unit held past the hold time (their next sync completes it), and those
    /// waiting for a file to be compressed.
    pub(super) fn held_due(&mut self) -> Vec<String> {
        let now = Instant::now();
        let mut due: Vec<String> = self
            .held
            .values()
            .filter(|(_, since)| since.elapsed() >= self.opts.hold)
            .map(|(id, _)| id.clone())
            .collect();
        self.retry.retain(|id, at| {
            if *at <= now {
                due.push(id.clone());
                false
            } else {
                true
            }
        });
        due
    }

    /// Add the events the watch holds to `changes` (all of them on an error), and the containers
    /// whose directories inotify has no watch left for, when a look at them is due (nothing tells
    /// of their writes; see `Watch::unwatched_due`).
    fn drain_into(&mut self, w: &mut Watch, root: &Path, changes: &mut Changes) {
        match w.drain() {
            Ok(c) => {
                changes.containers.extend(c.containers);
                changes.structural.extend(c.structural);
                changes.everything |= c.everything;
            }
            Err(e) => {
                self.error(&format!("{}: inotify: {e}", root.display()));
                changes.everything = true;
            }
        }
        if let Some(n) = w.unwatched_changed() {
            self.metrics.set(crate::metrics::LOG_DIRS_UNWATCHED, n as f64);
        }
        for id in w.unwatched_due() {
            if self.containers.contains_key(&id) {
                changes.containers.insert(id.clone());
                changes.structural.insert(id);
            }
        }
    }

    /// Follow until `stop`: inotify events trigger syncs of their container; every `rescan` all
    /// containers are discovered and synced again. Checkpoints are written at the end.
    pub fn run(&mut self, stop: &AtomicBool) -> io::Result<()> {
        let root = self.opts.docker_root.join("containers");
        let mut watch = match crate::logs::watch::Watch::new(&root) {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!(
                    "log guard: cannot watch {} ({e}); checking every second instead (raise fs.inotify.max_user_watches)",
                    root.display()
                );
                None
            }
        };
        // Masks written by a guard that died before its checkpoint was synced may still be only in
        // memory; the checkpoints about to be written would cover them. Flush the file system.
        if let Ok(dir) = File::open(&root) {
            let _ = rustix::fs::syncfs(&dir);
        }
        self.beat();
        self.discover()?;
        let ids: Vec<String> = self.containers.keys().cloned().collect();
        self.sync_each(ids, Some(stop));
        if let Err(e) = self.commit(Commit::Now) {
            self.error(&format!("cannot write checkpoints: {e}"));
        }
        let mut next_rescan = Instant::now() + self.opts.rescan;
        let mut last_sync = Instant::now();
        let mut busy = false;
        while !stop.load(Ordering::Relaxed) {
            let mut dirty: HashSet<String> = HashSet::new();
            let mut structural: HashSet<String> = HashSet::new();
            let mut everything = watch.is_none();
            match &watch {
                Some(w) => {
                    if let Err(e) = w.wait(Duration::from_millis(200)) {
                        self.error(&format!("{}: inotify: {e}", root.display()));
                        everything = true;
                        std::thread::sleep(Duration::from_secs(1));
                    }
                }
                None => std::thread::sleep(Duration::from_secs(1)),
            }
            // A busy container writes thousands of times a second: one sync per batch of events,
            // at most one batch every BATCH, or BATCH_BUSY while they write fast (a quiet
            // container's first write is handled at once). A rotation is not kept waiting a
            // BATCH (it ends the pause): Docker compresses the rotated file at once, and its last lines are masked
            // in the plain file before Docker's compression reads them, or in a rewrite of the
            // `.gz` after (a decompression and a compression).
            let batch = if busy { BATCH_BUSY } else { BATCH };
            if let Some(w) = &mut watch {
                let mut changes = Changes::default();
                let since = last_sync.elapsed();
                if busy || since >= batch {
                    w.pause(batch.saturating_sub(since));
                    self.drain_into(w, &root, &mut changes);
                } else {
                    self.drain_into(w, &root, &mut changes);
                    if changes.structural.is_empty() {
                        w.pause(batch.saturating_sub(last_sync.elapsed()));
                        self.drain_into(w, &root, &mut changes);
                    }
                }
                dirty = changes.containers;
                structural = changes.structural;
                everything |= changes.everything;
                if everything {
                    // Events may have been lost: watch every container directory there is.
                    w.rewatch();
                }
            }
            if Instant::now() >= next_rescan {
                everything = true;
                next_rescan = Instant::now() + self.opts.rescan;
            }
            if everything || dirty.iter().any(|id| !self.containers.contains_key(id)) {
                if let Err(e) = self.discover() {
                    self.error(&format!("{}: cannot list containers: {e}", root.display()));
                }
            }
            let written = if everything {
                let ids: Vec<String> = self.containers.keys().cloned().collect();
                self.sync_each(ids, Some(stop)).plain_bytes
            } else {
                // Held units, retries and quarantined containers need a full look.
                let due: Vec<String> = self.held_due().into_iter().chain(self.quarantine_due()).collect();
                structural.extend(due.iter().cloned());
                dirty.extend(due);
                let mut each: Vec<(String, Look)> = dirty
                    .into_iter()
                    .map(|id| {
                        let look = if structural.contains(&id) {
                            Look::Everything
                        } else {
                            Look::LiveOnly
                        };
                        (id, look)
                    })
                    .collect();
                // Live files first: a container that rotated may have compressed files to
                // decompress, scan and rewrite, while the others' new lines are a read and a scan
                // each, and are masked before Docker compresses them only if they are not kept
                // waiting.
                each.sort_by_key(|(_, look)| *look != Look::LiveOnly);
                self.sync_each_as(each, Some(stop)).plain_bytes
            };
            // Busy by what the containers wrote: compressed copies scanned again are not new.
            let now = Instant::now();
            busy = written as f64 >= BUSY_RATE * now.duration_since(last_sync).as_secs_f64();
            last_sync = now;
            if let Err(e) = self.commit(Commit::IfDue) {
                self.error(&format!("cannot write checkpoints: {e}"));
            }
            self.beat();
        }
        self.commit(Commit::Now)
    }
}
