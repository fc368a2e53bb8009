//! Checkpoints. What a checkpoint covers is made durable first: the records appended to the report,
//! and the masks of secrets that span files. A power cut before that rolls back to the last
//! checkpoint, and the rescan redoes both (masks are idempotent, records past the checkpoint are
//! read back). Other masks written into Docker's files are not synced: only a power cut or a crash
//! of the host loses them, and checkpoints of another boot have every file scanned again
//! (`Checkpoints::after_reboot`); they are synced too where the boot cannot be told. Syncing every
//! masked file cost 5–9 % of the guard's CPU in the stress benchmark (writing back Docker's own
//! writes, most of them to files Docker deletes once it has compressed them). The fsyncs and the
//! save run on a syncer thread while masking goes on; a failed sync leaves what it covered owed to
//! the next checkpoint.
use std::collections::HashSet;
use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::Instant;

use super::Guard;
use crate::findings::journal::AggregateJournal;
use crate::findings::sink::OccurrenceId;
use crate::logs::checkpoint::{Checkpoints, PendingMasks};

/// What the syncer thread reports: its result, and the masked files it could not sync (by dev,
/// inode), owed to the next checkpoint.
pub(super) type SyncResult = (io::Result<()>, Vec<((u64, u64), File)>);

/// A checkpoint handed to the syncer thread: it syncs the masked files, then saves the checkpoint.
pub(super) struct Syncing {
    pub(super) done: std::sync::mpsc::Receiver<SyncResult>,
    /// The result, once received.
    pub(super) result: Option<SyncResult>,
    /// How many of `Guard::pending` (the first ones) the checkpoint covers.
    pub(super) pending: usize,
    /// Keys of the findings recorded before the hand-off (`Guard::uncommitted` then).
    pub(super) recorded: HashSet<OccurrenceId>,
    /// When the pending masks were handed over to be saved too: the length the spans log had then
    /// (what it held is in the saved file).
    pub(super) spans_at: Option<u64>,
}

impl Syncing {
    /// Whether the sync is over (its result is then kept).
    pub(super) fn finished(&mut self) -> bool {
        if self.result.is_none() {
            match self.done.try_recv() {
                Ok(r) => self.result = Some(r),
                Err(std::sync::mpsc::TryRecvError::Empty) => return false,
                Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                    self.result = Some((
                        Err(io::Error::other("the checkpoint's sync stopped unexpectedly")),
                        Vec::new(),
                    ))
                }
            }
        }
        true
    }
}

impl Drop for Guard<'_> {
    /// Masks written since the last checkpoint are made durable also when the guard stops without
    /// one (an error, a contained panic that restarts it).
    fn drop(&mut self) {
        let _ = self.finish_sync();
        for f in self.unsynced.values() {
            let _ = f.sync_data();
        }
    }
}

/// When [`Guard::commit`] writes the checkpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commit {
    /// When they are due: `checkpoint_every` after the last (an eighth of it on a busy host, see
    /// [`BUSY_CHECKPOINT_BYTES`]), or at once when the report's file is due for rotation.
    IfDue,
    /// Now, after waiting for the checkpoint handed to the syncer before (at start and at exit).
    Now,
}

/// Log bytes scanned since the last checkpoint that make the next one due after an eighth of
/// `checkpoint_every`. A guard killed (or its host's power cut) redoes what it did since its last
/// checkpoint, and on a busy host most of that is in files Docker has compressed since: decompressed,
/// scanned and rewritten. Measured with `benches/guard_stress.py` (`max10-kill`: 10 containers at
/// about 160 000 lines/s, two SIGKILLs): checkpoints every second cost the guard 1.21–1.52 s of CPU
/// (five runs), a quarter of it after 4 MiB 1.14–1.22 s, an eighth 1.06–1.09 s (three runs
/// each, alternating); `max1` and `rotate3` (about 50 MB/s, eight checkpoints a second) did not
/// change. A host at 10 000 lines/s stays below this, and a quiet host with many containers does
/// not rewrite its checkpoints eight times a second.
pub(super) const BUSY_CHECKPOINT_BYTES: u64 = 4 << 20;

impl Guard<'_> {
    /// Whether a checkpoint is due: `checkpoint_every` after the last, or an eighth of that after
    /// [`BUSY_CHECKPOINT_BYTES`] of log were scanned.
    fn checkpoint_due(&self) -> bool {
        let since = self.last_commit.elapsed();
        since >= self.opts.checkpoint_every
            || (since >= self.opts.checkpoint_every / 8 && self.scanned_since_commit >= BUSY_CHECKPOINT_BYTES)
    }

    /// Write the checkpoints (and rotate the report) when due, or now (see [`Commit`]).
    pub fn commit(&mut self, when: Commit) -> io::Result<()> {
        // The report is rotated (and its oldest files folded) only right after a checkpoint: one
        // is made as soon as the report's file is due, whatever the time since the last (a
        // restart's backlog recorded 32 MB between two checkpoints, and folding that file took
        // 60 MB of memory).
        let force = when == Commit::Now || self.sink.rotation_due();
        // The checkpoint handed over last time: done (or, when forced, waited for)?
        if self.syncing.is_some() {
            if !force && !self.syncing.as_mut().is_some_and(Syncing::finished) {
                return Ok(());
            }
            self.finish_sync()?;
        }
        if !self.marks_dirty || (!force && !self.checkpoint_due()) {
            return Ok(());
        }
        // What the checkpoint covers is durable first: the records appended to the report and the
        // masked files to sync (once per checkpoint, not once per batch: a power cut before this
        // point rolls back to the last checkpoint, and the rescan redoes both). They and the
        // checkpoint itself are synced on another thread (an fsync of a file Docker is writing
        // takes tens of milliseconds), while masking goes on.
        // Every fsync runs on the syncer thread: one on this thread stalls masking for as long as
        // the disk takes to write back what Docker wrote (measured: up to 200 ms at 125k lines/s).
        // The aggregates of findings beyond the recording budget go in before the checkpoint that
        // covers their log bytes.
        self.report_aggregates();
        let (handoff, work) = self.hand_off()?;
        let spans_at = handoff.spans_at;
        self.syncing = Some(handoff);
        self.marks_dirty = false;
        self.last_commit = Instant::now();
        self.scanned_since_commit = 0;
        let here = force || self.sink.rotation_due();
        if here {
            // Run here: the report's rotation below saves the checkpoint again, after this one.
            work.run();
        } else if let Err(e) = std::thread::Builder::new()
            .name("guard-sync".into())
            .spawn(move || work.run())
        {
            self.marks_dirty = true;
            self.pending_dirty |= spans_at.is_some();
            if let Some(s) = self.syncing.take() {
                self.uncommitted.extend(s.recorded);
            }
            return Err(io::Error::new(
                e.kind(),
                format!("cannot start the checkpoint's sync: {e}"),
            ));
        }
        if here {
            self.finish_sync()?;
            self.save_pending_file()?;
            if self.sink.rotate_if_due()? {
                self.marks.report_len = 0;
                self.marks.save(&self.opts.state_dir)?;
            }
        }
        self.publish_lag();
        Ok(())
    }

    /// Append the aggregates of findings beyond the recording budget to the report, tagged with
    /// the journal's generation, which then starts afresh: after a crash the tag in the report
    /// says the journal's counts are in it. On an error they stay in the budget (and the journal).
    fn report_aggregates(&mut self) {
        if !self.budget.has_aggregates() {
            return;
        }
        // Tagged with the journal's generation, which then starts afresh: after a crash the
        // tag in the report says the journal's counts are in it.
        let mut records = self.budget.take_aggregates();
        let batch = self.journal.as_ref().map(|j| j.generation().to_string());
        for r in &mut records {
            r.batch.clone_from(&batch);
        }
        match self.sink.append_records(&records) {
            Ok(()) => {
                self.marks.aggregates_written = batch;
                let keys = self
                    .journal
                    .as_ref()
                    .map(AggregateJournal::keys_to_carry)
                    .unwrap_or_default();
                match AggregateJournal::create(&self.opts.state_dir, &[], &keys) {
                    Ok(j) => self.journal = Some(j),
                    Err(e) => {
                        self.journal = None;
                        self.error(&format!(
                            "cannot write {} ({e}): counts of secrets past the recording budget are lost if sidecar stops before the next checkpoint (free space in the state directory)",
                            AggregateJournal::path(&self.opts.state_dir).display()
                        ));
                    }
                }
            }
            Err(e) => {
                let n: u64 = records
                    .iter()
                    .filter_map(|r| r.occurrences.as_ref())
                    .map(|o| o.count)
                    .sum();
                self.error(&format!(
                    "cannot append {n} aggregated finding(s) to the report: {e}; the secrets are masked, and the counts are kept and written at a later checkpoint (free space in the state directory)"
                ));
                // Still in the journal, which keeps its generation.
                self.budget.restore(records);
            }
        }
    }

    /// Wait for the checkpoint handed to the syncer, and take its result: the pending masks it
    /// covers are dropped; on an error, what it covered is owed to the next checkpoint.
    pub(super) fn finish_sync(&mut self) -> io::Result<()> {
        let Some(mut s) = self.syncing.take() else {
            return Ok(());
        };
        let (result, failed) = match s.result.take() {
            Some(r) => r,
            None => s.done.recv().unwrap_or_else(|_| {
                (
                    Err(io::Error::other("the checkpoint's sync stopped unexpectedly")),
                    Vec::new(),
                )
            }),
        };
        if let Err(e) = result {
            self.unsynced.extend(failed);
            self.uncommitted.extend(s.recorded);
            self.marks_dirty = true;
            self.pending_dirty |= s.spans_at.is_some();
            return Err(e);
        }
        // The checkpoint holds the keys an earlier run left in flight (`Checkpoints::recovered`):
        // the journal need not keep them any more.
        if let Some(Err(e)) = self.journal.as_mut().map(AggregateJournal::checkpointed) {
            tracing::debug!("log guard: cannot start the aggregates journal afresh: {e}");
        }
        // The checkpoint covers these pending masks now (written and synced, or owed to a `.gz`).
        if s.pending > 0 {
            self.pending.drain(..s.pending.min(self.pending.len()));
        }
        match (s.spans_at, self.spans.as_mut()) {
            // What the spans log held at the hand-off is covered by the checkpoint or in the saved
            // file now.
            (Some(at), Some(log)) => {
                if let Err(e) = log.keep_from(at) {
                    // Kept whole: its masks are replayed again at the next start, which is harmless.
                    tracing::debug!("log guard: cannot shorten the spans log: {e}");
                }
                Ok(())
            }
            _ => {
                if s.pending > 0 {
                    self.pending_dirty = true;
                }
                self.save_pending_file()
            }
        }
    }

    /// A file was masked in place: synced before the next checkpoint when the boot cannot be told
    /// (see [`Checkpoints::after_reboot`]), or `spans` (a secret that spans files: a rescan after
    /// a reboot scans each file alone, and would not find it again).
    pub(super) fn masked_in_place(&mut self, file: &File, spans: bool) {
        if spans || self.sync_masks {
            self.sync_later(file);
        }
    }

    /// Remember a file masked in place, to be synced before the next checkpoint.
    fn sync_later(&mut self, file: &File) {
        let Ok(m) = file.metadata() else { return };
        if let std::collections::hash_map::Entry::Vacant(e) = self.unsynced.entry((m.dev(), m.ino())) {
            match file.try_clone() {
                Ok(f) => {
                    e.insert(f);
                }
                // Out of descriptors: sync it now.
                Err(_) => {
                    let _ = file.sync_data();
                }
            }
        }
    }
}

impl Guard<'_> {
    /// Take what the next checkpoint covers and make the work that makes it durable: the report's
    /// file, the masked files, a snapshot of the checkpoints and of the pending masks to save
    /// after them. The pending masks this checkpoint covers (all of `pending` now) are left out of
    /// that save, an earlier run's not yet replayed are kept, and those that come later are in the
    /// spans log meanwhile (a kill between the two saves leaves the older file, which holds more).
    fn hand_off(&mut self) -> io::Result<(Syncing, CheckpointWork)> {
        let report = self.sink.sync_handle()?;
        self.marks.report_len = self.sink.len();
        let files: Vec<((u64, u64), File)> = std::mem::take(&mut self.unsynced).into_iter().collect();
        self.drop_owed_of_deleted();
        let snapshot = self.marks.clone();
        let state_dir = self.opts.state_dir.clone();
        // The pending masks, saved by the syncer after the checkpoint: those this checkpoint
        // covers (all of `pending` now) are left out, an earlier run's not yet replayed are kept,
        // and those that come later are in the spans log meanwhile. A kill between the two saves
        // leaves the older file, which holds more.
        let pending_snapshot =
            ((self.pending_dirty || !self.pending.is_empty()) && self.spans.is_some()).then(|| PendingMasks {
                files: self.replay.values().cloned().collect(),
            });
        let spans_at = pending_snapshot
            .as_ref()
            .and_then(|_| self.spans.as_ref().map(|l| l.len()));
        if pending_snapshot.is_some() {
            self.pending_dirty = false;
        }
        let (tx, done) = std::sync::mpsc::channel();
        let handoff = Syncing {
            done,
            result: None,
            pending: self.pending.len(),
            recorded: std::mem::take(&mut self.uncommitted),
            spans_at,
        };
        let work = CheckpointWork {
            report,
            files,
            snapshot,
            state_dir,
            pending: pending_snapshot,
            tx,
        };
        Ok((handoff, work))
    }
}

/// What the syncer thread does for one checkpoint (see [`Guard::commit`]).
struct CheckpointWork {
    /// The report's file.
    report: File,
    /// The files masked in place since the last checkpoint, by (dev, inode).
    files: Vec<((u64, u64), File)>,
    /// The checkpoint.
    snapshot: Checkpoints,
    state_dir: PathBuf,
    /// The pending masks to save after the checkpoint (see [`Guard::hand_off`]).
    pending: Option<PendingMasks>,
    tx: std::sync::mpsc::Sender<SyncResult>,
}

impl CheckpointWork {
    /// Sync the report and the masked files, then save the checkpoint and the pending masks (none
    /// of them when a sync failed: the masked files it could not sync are reported back).
    fn run(self) {
        let Self {
            report,
            files,
            snapshot,
            state_dir,
            pending: pending_snapshot,
            tx,
        } = self;
        let mut failed = Vec::new();
        let mut error = None;
        if let Err(e) = report.sync_data() {
            error = Some(io::Error::new(e.kind(), format!("cannot sync the findings file: {e}")));
        }
        for (key, f) in files {
            if let Err(e) = f.sync_data() {
                // Kept, and no checkpoint until it is durable.
                error = Some(io::Error::new(e.kind(), format!("cannot sync a masked log file: {e}")));
                failed.push((key, f));
            }
        }
        let result = match error {
            Some(e) => Err(e),
            None => match snapshot.save(&state_dir) {
                Ok(()) => pending_snapshot.map_or(Ok(()), |p| p.save(&state_dir)),
                Err(e) => Err(e),
            },
        };
        let _ = tx.send((result, failed));
    }
}
