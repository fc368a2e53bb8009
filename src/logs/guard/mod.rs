//! The live log guard: follows every container's json-file log, masks each secret in Docker's own
//! files and appends one report record per occurrence.
//!
//! Per container, a *sync* looks at the live log, its rotated files and their compressed copies:
//! - A plain file is scanned from its checkpoint to the end of its last complete line. Findings are
//!   appended to the report (fsynced) first, then masked in place with `pwrite` on a descriptor
//!   opened without `O_APPEND`, then the checkpoint moves. A crash between any two steps leaves the
//!   checkpoint behind: the rescan masks again (masks are idempotent) and the report records past
//!   the checkpoint are read back, so nothing is recorded twice. A secret that spans entries is
//!   masked in several writes, and a crash between them leaves a rest no rescan can find: its
//!   masks are saved first (`pending-masks.json`, `pending-spans.jsonl`) and replayed at the next
//!   start.
//! - A unit still open at the end of the live file (a 16 KiB split without its last part, a PEM key
//!   without its END line) is left for the next sync, up to [`GuardOptions::hold`]. Docker may rotate
//!   between two parts: a unit open at the end of a rotated file (plain or compressed) is carried
//!   into the scan of the next file, and each file gets the masks of its part. Files are therefore
//!   synced oldest first.
//! - Docker compresses `name.1` to `name.1.gz` and then removes `name.1`: while `name.1` exists the
//!   compressed file is not touched (`name.1` is masked in place like any plain file). Each complete
//!   `.gz` is checked once: from the masks written into the plain file when this process scanned
//!   that file whole (see `Guard::gz_from_written`), otherwise decompressed, scanned, and when it
//!   holds a secret, rewritten masked under a temporary name with Docker's gzip header
//!   (its Extra field holds `{"lastTime":…}`), owner and mode, then renamed over the original if the
//!   original is still the same inode.
//!
//! Files are known by identity (see [`super::checkpoint`]), so renames and compression keep their
//! progress. Events come from inotify; a slow rescan catches anything missed.
//!
//! One job per file: `start` (what an earlier run left), `run` (the follow loop), `listing` (a
//! container's files, synced oldest first), `plain` and `gz` (one file of each kind), `carry`
//! (joining across rotations), `pending` and `owed` (masks saved before they are written, masks
//! owed to compressed copies), `record` (the report), `commit` (checkpoints), `heartbeat`, and
//! `rewrite` (a `.gz` rewritten masked).

mod carry;
mod commit;
mod gz;
mod heartbeat;
mod listing;
mod owed;
mod pending;
mod plain;
mod record;
mod rewrite;
mod run;
mod start;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use super::checkpoint::{Checkpoints, PendingFile, SpansLog};
use super::containers::ContainerLog;
use super::masking::MaskPlan;
use super::scan::Scanner;
use crate::findings::budget::Budget;
use crate::findings::journal::AggregateJournal;
use crate::findings::sink::{FindingLog, OccurrenceId};
use crate::metrics::Metrics;
use crate::redact::Finding;
use commit::Syncing;
use owed::Written;
use plain::Stamp;

pub use commit::Commit;
pub use heartbeat::{heartbeat_age, write_heartbeat, Heartbeat};
pub use rewrite::{rewrite_gz, GzRewrite, PlainTail};

/// A finding of a scan, and whether it is new: to be recorded (otherwise an earlier scan recorded
/// it, and it is only masked again).
#[derive(Debug, Clone)]
struct Found {
    finding: Finding,
    is_new: bool,
}

/// How the guard behaves.
#[derive(Debug, Clone)]
pub struct GuardOptions {
    /// Docker's data root (its `containers/` directory is followed).
    pub docker_root: PathBuf,
    /// sidecar's state directory (checkpoints, findings, heartbeat).
    pub state_dir: PathBuf,
    /// Mask in place (`false`: report only, for every container).
    pub mask: bool,
    /// Only these containers are followed (see [`selects`]); empty = every container.
    pub containers: Vec<String>,
    /// Containers (by name or id) that are reported but never masked.
    pub report_only: Vec<String>,
    /// This guard's name: containers labelled `sidecar.guard` with another name are reported, not
    /// masked (see [`ContainerLog::masked_by`](super::containers::ContainerLog::masked_by)).
    pub name: String,
    /// Fingerprints that are masked but not reported (the baseline).
    pub baseline: HashSet<String>,
    /// Full rescan interval (a safety net under inotify).
    pub rescan: Duration,
    /// How long a unit still open at the end of a live log waits for its end.
    pub hold: Duration,
    /// Checkpoints are written at most this often (and at exit).
    pub checkpoint_every: Duration,
    /// Findings file rotation size.
    pub findings_max_bytes: u64,
    /// Rotated findings files kept.
    pub findings_keep: usize,
    /// Findings recorded one by one per container and second (see [`Budget`]).
    pub findings_per_second: u32,
    /// This process's own container (never scanned).
    pub own_container: Option<String>,
    /// The identity of the running boot (`None`: the kernel's, see [`checkpoint::boot_id`]):
    /// checkpoints of another boot have every file scanned again.
    pub boot_id: Option<String>,
}

/// What a file was to a sync.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SyncStats {
    /// Bytes scanned.
    pub bytes: u64,
    /// Of those, bytes of plain files: what the containers wrote (not compressed copies scanned
    /// again).
    pub plain_bytes: u64,
    /// Findings recorded.
    pub recorded: u64,
    /// Byte ranges masked.
    pub masked: u64,
}

impl std::ops::AddAssign for SyncStats {
    fn add_assign(&mut self, o: Self) {
        self.bytes += o.bytes;
        self.plain_bytes += o.plain_bytes;
        self.recorded += o.recorded;
        self.masked += o.masked;
    }
}

/// The guard's state.
pub struct Guard<'a> {
    scanner: Scanner<'a>,
    opts: GuardOptions,
    marks: Checkpoints,
    marks_dirty: bool,
    last_commit: Instant,
    /// Log bytes scanned since the last checkpoint was handed off (see [`commit::BUSY_CHECKPOINT_BYTES`]).
    scanned_since_commit: u64,
    sink: FindingLog,
    /// Keys of findings recorded since the last checkpoint was handed to the syncer.
    uncommitted: HashSet<OccurrenceId>,
    /// Findings recorded one by one per container, and the aggregates beyond.
    budget: Budget,
    /// The aggregates taken since the last checkpoint, as they are taken (absent when it cannot
    /// be opened: a warning, and counts may then be lost in a crash).
    journal: Option<AggregateJournal>,
    /// A checkpoint being made durable off this thread (see [`Guard::commit`]).
    syncing: Option<Syncing>,
    /// Keys of findings recorded before the last crash past its checkpoint (`Checkpoints::recovered`).
    recovered: HashSet<OccurrenceId>,
    containers: BTreeMap<String, ContainerLog>,
    /// Identity → since when a unit has been held open at its end.
    held: HashMap<String, (String, Instant)>,
    /// Live file (dev, inode) → bytes not scanned yet, for the lag gauge.
    lag: HashMap<String, u64>,
    /// Container → since when its live log has had bytes not scanned yet (for "seconds behind").
    lag_since: HashMap<String, Instant>,
    metrics: &'a Metrics,
    warned: HashSet<String>,
    /// Repeated errors are logged at most once a minute each (all are counted in the metrics).
    errors_logged: RateLimit,
    /// "secret found" lines, by container and rule.
    found_logged: RateLimit,
    /// When the heartbeat is to be written next.
    next_beat: Instant,
    /// Files to sync before the next checkpoint (by dev, inode): masks of secrets that span files,
    /// or every mask when `sync_masks`.
    unsynced: HashMap<(u64, u64), File>,
    /// Sync every masked file before a checkpoint: the boot cannot be told (see
    /// [`Checkpoints::after_reboot`]).
    sync_masks: bool,
    /// Container id → the live log's (dev, inode), once followed past its start.
    live_known: HashMap<String, (u64, u64)>,
    /// The `.gz` files owed masks that a rewrite could not place (Docker renamed them at every
    /// try), open, by identity: one Docker deletes (rotated beyond `max-file`) takes its owed masks
    /// with it (see [`Guard::drop_owed_of_deleted`]).
    owed_open: HashMap<String, File>,
    /// The inode the live-only sync expects (another one: a full sync instead).
    expect_live: Option<(u64, u64)>,
    /// Errors reported so far (a full sync with new errors is retried soon).
    errors_seen: u64,
    /// Containers whose sync panicked: consecutive failures and when to try again.
    quarantine: HashMap<String, (u32, Instant)>,
    /// A compressed file must be checked again in this sync (it is owed masks, `gz_owed`).
    recheck_gz: bool,
    /// Inside [`Guard::recheck_gz_files`]: a compressed file never scanned is left to the next listing.
    rechecking: bool,
    /// Files left with nothing to do at their last sync, by (dev, inode): their stamp then and
    /// their checkpoint. A file whose stamp has not changed since is not opened again, whatever
    /// its name now.
    settled: HashMap<(u64, u64), (Stamp, String)>,
    /// Containers with a file waiting for the file before it to be compressed: synced again then.
    retry: HashMap<String, Instant>,
    /// The masks this process wrote into plain files it scanned from their first byte, by
    /// checkpoint key: when Docker compresses such a file, its `.gz` is checked against them
    /// instead of being decompressed and scanned again (see `gz_from_written`).
    written: HashMap<String, Written>,
    /// New files (dev, inode) waiting for the file before them to be listed again (see
    /// `carry_from`): since when.
    carry_waits: HashMap<(u64, u64), (Instant, (i64, i64))>,
    /// Masks of entries joined across a rotation since the last checkpoint, saved before they
    /// are written (see [`PendingMasks`]).
    pending: Vec<PendingFile>,
    /// Masks an earlier run saved as pending, for plain files, by checkpoint key: written in
    /// place when the file is next opened (and owed to its `.gz`, see `gz_owed`).
    replay: HashMap<String, PendingFile>,
    /// `pending` or `replay` changed since the pending masks were last saved.
    pending_dirty: bool,
    /// Where the pending masks of secrets that span entries of one file are appended (`None`:
    /// it could not be opened; they are saved in `pending-masks.json` instead).
    spans: Option<SpansLog>,
}

/// When a file was created (its birth time; its change time where the file system records none):
/// with (dev, inode), it tells a file from a later one that got the inode of a removed file.
fn born(meta: &fs::Metadata) -> (i64, i64) {
    match meta
        .created()
        .ok()
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
    {
        Some(d) => (d.as_secs() as i64, i64::from(d.subsec_nanos())),
        None => (meta.ctime(), meta.ctime_nsec()),
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A `Read` over `[pos, end)` of a file by positioned reads (never moves a shared offset).
struct RangeReader<'f> {
    file: &'f File,
    pos: u64,
    end: u64,
}

impl Read for RangeReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = (self.end - self.pos).min(buf.len() as u64) as usize;
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file became shorter while it was read",
            ));
        }
        self.pos += n as u64;
        Ok(n)
    }
}

/// When a file waits for the file before it to be compressed, how soon it is tried again.
const RETRY_AFTER: Duration = Duration::from_millis(100);

/// At most one message per key and period: a fault that repeats on every pass (a full disk, an
/// unreadable file) is shown once a minute with how often it happened meanwhile, not hundreds of
/// times a second. Holds at most 1 024 keys (then starts afresh).
#[derive(Debug)]
struct RateLimit {
    period: Duration,
    seen: HashMap<String, (Instant, u64)>,
}

impl RateLimit {
    fn new(period: Duration) -> Self {
        Self {
            period,
            seen: HashMap::new(),
        }
    }

    /// `Some(suppressed)` when a message with this key is to be shown now (`suppressed`: how many
    /// were held back since the last one shown), `None` when it is held back.
    fn allow(&mut self, key: &str, now: Instant) -> Option<u64> {
        if let Some((last, suppressed)) = self.seen.get_mut(key) {
            if now.duration_since(*last) < self.period {
                *suppressed += 1;
                return None;
            }
            let n = std::mem::take(suppressed);
            *last = now;
            return Some(n);
        }
        if self.seen.len() >= 1024 {
            self.seen.clear();
        }
        self.seen.insert(key.to_string(), (now, 0));
        Some(0)
    }
}

/// Whether the `guard.containers` entry `selector` names container `c`: its name, a name prefix
/// ending in `*`, an id of at least 12 characters, or a label `key=value`.
pub fn selects(selector: &str, c: &ContainerLog) -> bool {
    if let Some((key, value)) = selector.split_once('=') {
        return c.labels.get(key).is_some_and(|v| v == value);
    }
    if let Some(prefix) = selector.strip_suffix('*') {
        return c.name.starts_with(prefix);
    }
    selector == c.name || (selector.len() >= 12 && c.id.starts_with(selector))
}

/// The first 12 characters of a container id, as `docker ps` shows it.
fn short_id(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

/// Write every finding's mask at its offsets with `pwrite` (the file must not be `O_APPEND`).
/// Returns the number of byte ranges written. Not synced here: the guard syncs every file it
/// masked before the checkpoint that covers the masks (see `Guard::commit`).
pub fn mask_in_place(file: &File, findings: &[Finding]) -> io::Result<u64> {
    let plan = MaskPlan::from_findings(findings);
    for (offset, bytes) in plan.edits() {
        file.write_all_at(bytes, *offset)?;
    }
    Ok(plan.edits().len() as u64)
}

impl Guard<'_> {
    fn warn_once(&mut self, key: String, message: impl FnOnce() -> String) {
        if self.warned.insert(key) {
            tracing::warn!("{}", message());
        }
    }

    fn error(&mut self, what: &str) {
        self.errors_seen += 1;
        self.metrics.add("sidecar_guard_errors_total", 1.0);
        match self.errors_logged.allow(what, Instant::now()) {
            Some(0) => tracing::warn!("log guard: {what}"),
            Some(n) => tracing::warn!("log guard: {what} ({n} more like this since it was last shown)"),
            None => {}
        }
    }

    fn masks(&self, c: &ContainerLog) -> bool {
        self.opts.mask
            && !c.redact_label_off()
            && c.masked_by().is_none_or(|n| n == self.opts.name)
            && !self
                .opts
                .report_only
                .iter()
                .any(|n| n == &c.name || (n.len() >= 12 && c.id.starts_with(n.as_str())))
    }
}
