//! Opening a guard: what an earlier run left behind is taken over before anything is scanned.
//!
//! - Keys of the occurrences the report holds past the last checkpoint (a crash between recording
//!   and checkpointing) are kept as `Checkpoints::recovered`, bounded, so the rescan records none of
//!   them twice.
//! - Masks a crash interrupted (`pending-masks.json`, `pending-spans.jsonl`) are owed to each file's
//!   `.gz` and replayed in place when their plain file is next opened.
//! - Counts past the recording budget that an earlier run journaled and did not report are restored
//!   into the budget (reported at the next checkpoint).
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

use super::owed::merge_owed;
use super::{unix_now, Guard, GuardOptions, RateLimit};
use crate::findings::budget::Budget;
use crate::findings::journal::AggregateJournal;
use crate::findings::record::FindingRecord;
use crate::findings::sink::{occurrence_id, FindingLog, OccurrenceId};
use crate::logs::checkpoint::{self, Checkpoints, FileMark, PendingFile, PendingMasks, SpansLog};
use crate::logs::scan::Scanner;
use crate::metrics::Metrics;

/// Keys of recovered occurrences kept across crashes (`Checkpoints::recovered`), at most.
pub(super) const RECOVERED_MAX: usize = 2 * crate::findings::sink::PENDING_MAX;

impl<'a> Guard<'a> {
    /// Load the checkpoints and open the report.
    pub fn open(scanner: Scanner<'a>, opts: GuardOptions, metrics: &'a Metrics) -> io::Result<Self> {
        crate::fsutil::create_private_dir(&opts.state_dir)?;
        let mut marks = Checkpoints::load(&opts.state_dir)?;
        let boot = opts.boot_id.clone().or_else(checkpoint::boot_id);
        let rebooted = boot.as_deref().is_some_and(|b| marks.after_reboot(b));
        if rebooted {
            tracing::warn!(
                "log guard: the host restarted since the last checkpoint: every log file is scanned again from its start and masked (masks written before a power cut may be lost), and nothing is recorded twice"
            );
        }
        let (sink, uncommitted) = FindingLog::open(
            &crate::state::StateDir::new(&opts.state_dir).findings(),
            opts.findings_max_bytes,
            opts.findings_keep,
            marks.report_len,
        )?;
        if sink.pending_beyond() > 0 {
            tracing::warn!(
                "log guard: the report holds {} more records than can be remembered past the last checkpoint ({}); the rescan may record some of them twice",
                sink.pending_beyond(),
                crate::findings::sink::PENDING_MAX
            );
        }
        // Counts past the recording budget that an earlier run journaled and did not report, and
        // the keys of those it counted and may not have masked.
        let (journal, carried, in_flight) = open_journal(&opts.state_dir, &marks, &sink);
        let mut marks_dirty = !in_flight.is_empty() || rebooted;
        keep_recovered(
            &mut marks,
            uncommitted.iter().map(occurrence_id).chain(in_flight.iter().copied()),
        );
        let recovered: HashSet<OccurrenceId> = marks.recovered.iter().map(|k| k.0).collect();
        let uncommitted: HashSet<OccurrenceId> = uncommitted.iter().map(occurrence_id).collect();
        let (replay, spans_left) = take_pending(&mut marks, &opts.state_dir)?;
        marks_dirty |= !replay.is_empty() || marks.gz_owed.values().any(|v| !v.is_empty());
        let spans = open_spans_log(&opts.state_dir);
        let mut budget = Budget::new(opts.findings_per_second);
        if !carried.is_empty() {
            budget.restore(carried);
            marks_dirty = true;
        }
        Ok(Self {
            scanner,
            budget,
            journal,
            opts,
            marks,
            marks_dirty,
            last_commit: Instant::now(),
            scanned_since_commit: 0,
            sink,
            uncommitted,
            syncing: None,
            recovered,
            containers: BTreeMap::new(),
            held: HashMap::new(),
            lag: HashMap::new(),
            lag_since: HashMap::new(),
            metrics,
            warned: HashSet::new(),
            errors_logged: RateLimit::new(Duration::from_secs(60)),
            found_logged: RateLimit::new(Duration::from_secs(10)),
            next_beat: Instant::now(),
            unsynced: HashMap::new(),
            sync_masks: boot.is_none(),
            live_known: HashMap::new(),
            owed_open: HashMap::new(),
            expect_live: None,
            errors_seen: 0,
            quarantine: HashMap::new(),
            recheck_gz: false,
            rechecking: false,
            settled: HashMap::new(),
            retry: HashMap::new(),
            written: HashMap::new(),
            carry_waits: HashMap::new(),
            pending: Vec::new(),
            replay,
            // What the spans log holds is saved in `pending-masks.json` by the first checkpoint.
            pending_dirty: spans_left,
            spans,
        })
    }
}

/// Keep the keys of the occurrences the report holds past the last checkpoint (`uncommitted`: a
/// crash came between recording them and the checkpoint) as `Checkpoints::recovered`, so that the
/// rescan records none of them twice. Bounded across crashes (the newest kept); forgotten after
/// an hour.
pub(super) fn keep_recovered(marks: &mut Checkpoints, uncommitted: impl Iterator<Item = OccurrenceId>) {
    let mut uncommitted = uncommitted.peekable();
    if uncommitted.peek().is_none() {
        return;
    }
    if marks.recovered_at + 3600 < unix_now() {
        marks.recovered.clear();
    }
    marks.recovered.extend(uncommitted.map(checkpoint::RecoveredKey));
    // Bounded across crashes too (the newest kept).
    let over = marks.recovered.len().saturating_sub(RECOVERED_MAX);
    marks.recovered.drain(..over);
    marks.recovered_at = unix_now();
}

/// Masks a crash interrupted (`pending-masks.json` and the spans log): owed to each file's `.gz`
/// (checked again), and returned by checkpoint key, to be written in place into a plain file when
/// it is next opened. Also whether the spans log held any (the first checkpoint saves them in
/// `pending-masks.json`).
fn take_pending(marks: &mut Checkpoints, state_dir: &Path) -> io::Result<(HashMap<String, PendingFile>, bool)> {
    let mut replay = HashMap::new();
    let spanned = SpansLog::load(state_dir)?;
    let spans_left = !spanned.is_empty();
    for p in PendingMasks::load(state_dir)?.files.into_iter().chain(spanned) {
        if let Some(alias) = &p.alias {
            if !marks.files.contains_key(alias) {
                marks.aliases.insert(alias.clone(), p.ident.clone());
            }
        }
        if p.findings.is_empty() {
            continue;
        }
        marks.files.entry(p.ident.clone()).or_insert_with(|| FileMark {
            container: p.container.clone(),
            dev: p.dev,
            inode: p.inode,
            seen: unix_now(),
            ..FileMark::default()
        });
        marks.gz.retain(|_, m| m.ident != p.ident);
        // The same masks may be both in `pending-masks.json` and in the spans log (a kill
        // between saving the one and shortening the other): each is taken once.
        merge_owed(
            marks.gz_owed.entry(p.ident.clone()).or_default(),
            p.findings.iter().cloned(),
        );
        if p.inode != 0 {
            match replay.entry(p.ident.clone()) {
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(p);
                }
                std::collections::hash_map::Entry::Occupied(mut e) => {
                    let have = &mut e.get_mut().findings;
                    for f in p.findings {
                        if !have.contains(&f) {
                            have.push(f);
                        }
                    }
                }
            }
        }
    }
    Ok((replay, spans_left))
}

/// The log the pending masks of secrets that span entries are appended to (`None` when it cannot
/// be opened: they are saved in `pending-masks.json` instead).
fn open_spans_log(state_dir: &Path) -> Option<SpansLog> {
    match SpansLog::open(state_dir) {
        Ok(l) => Some(l),
        Err(e) => {
            tracing::warn!(
                "log guard: cannot open {} ({e}); masks that span entries are saved in {} instead",
                SpansLog::path(state_dir).display(),
                PendingMasks::path(state_dir).display()
            );
            None
        }
    }
}

/// A fresh journal of the aggregates past the recording budget, the counts an earlier run
/// journaled and did not report (restored into the budget), and the keys of the occurrences it
/// counted and may not have masked (the new journal holds both, until a checkpoint holds them).
fn open_journal(
    state_dir: &Path,
    marks: &Checkpoints,
    sink: &FindingLog,
) -> (Option<AggregateJournal>, Vec<FindingRecord>, Vec<OccurrenceId>) {
    let left = AggregateJournal::read(state_dir).unwrap_or_else(|e| {
        tracing::warn!(
            "log guard: cannot read {} ({e}); counts of secrets past the recording budget before the last stop may be missing from the report",
            AggregateJournal::path(state_dir).display()
        );
        Default::default()
    });
    if left.damaged > 0 {
        tracing::warn!(
            "log guard: {} line(s) of {} could not be read (cut short by a crash, or damaged): counts of secrets past the recording budget before the last stop may be missing from the report, or counted twice",
            left.damaged,
            AggregateJournal::path(state_dir).display()
        );
    }
    let reported = left
        .generation
        .as_ref()
        .is_some_and(|g| marks.aggregates_written.as_ref() == Some(g) || sink.batches_read_back().contains(g));
    let carried = if reported { Vec::new() } else { left.records };
    let journal = match AggregateJournal::create(state_dir, &carried, &left.in_flight) {
        Ok(j) => Some(j),
        Err(e) => {
            tracing::warn!(
                "log guard: cannot write {} ({e}); counts of secrets past the recording budget are lost if sidecar stops between two checkpoints",
                AggregateJournal::path(state_dir).display()
            );
            None
        }
    };
    (journal, carried, left.in_flight)
}
