//! Encrypted, compressed, streaming backups of a directory (the `openclaw_data` volume) and their
//! restore. One backup is one standard `.tar.zst.age` file: `age -d | zstd -d | tar -x` restores it
//! without sidecar. Nothing is staged: the tar stream is compressed, encrypted and written to a
//! temporary name in the destination, fsynced, and renamed only when complete.
pub mod archive;
pub mod crypto;
pub mod manifest;
pub mod pause;
pub mod restore;
pub mod retention;
pub mod schedule;
pub mod store;

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::escape::terminal;
pub use crypto::Recipient;
pub use store::{open_store, LocalStore, Store};

/// Errors of backups and restores. Messages name the file and say what to do.
///
/// Messages quote archive entries, object names in a bucket and paths: every field is shown
/// escaped for a terminal, on one line ([`crate::escape::terminal`]).
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// An I/O error while doing `what`.
    #[error("{}: {}", terminal(.what), terminal(&.source.to_string()))]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The source directory cannot be backed up.
    #[error("source: {}", terminal(.0))]
    Source(String),
    /// A recipient is malformed, or none was given.
    #[error("recipient {}", terminal(.0))]
    Recipient(String),
    /// The identity file is unusable.
    #[error("identity: {}", terminal(.0))]
    Identity(String),
    /// The backup file is not a valid sidecar backup (corrupted, truncated, wrong key, hostile).
    #[error("backup {}: {}", terminal(.file), terminal(.problem))]
    Invalid {
        /// The backup file.
        file: String,
        /// What is wrong.
        problem: String,
    },
    /// The restore target cannot be used.
    #[error("restore target {}", terminal(.0))]
    Target(String),
    /// Stopped by a signal; the partial file was removed.
    #[error("backup interrupted (stop requested); the partial file was removed")]
    Interrupted,
}

impl BackupError {
    pub(crate) fn io(what: impl Into<String>, source: io::Error) -> Self {
        BackupError::Io {
            what: what.into(),
            source,
        }
    }

    /// A temporary file could not be created: says where, and what to do.
    pub(crate) fn temp(what: &str, source: io::Error) -> Self {
        BackupError::io(
            format!(
                "creating the {what} in {} (sidecar needs a writable temporary directory: set TMPDIR, or mount a tmpfs at /tmp)",
                std::env::temp_dir().display()
            ),
            source,
        )
    }
}

/// Live counters a caller can show as progress: content bytes read (backup) or backup bytes read
/// (restore), and files done.
#[derive(Debug, Default)]
pub struct Progress {
    /// Bytes so far.
    pub bytes: std::sync::atomic::AtomicU64,
    /// Files so far.
    pub files: std::sync::atomic::AtomicU64,
}

impl Progress {
    pub(crate) fn add(p: &Option<std::sync::Arc<Progress>>, bytes: u64, files: u64) {
        if let Some(p) = p {
            p.bytes.fetch_add(bytes, std::sync::atomic::Ordering::Relaxed);
            p.files.fetch_add(files, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// zstd job size in multithreaded mode.
const ZSTD_JOB_SIZE: u32 = 2 << 20;

/// Suffix of every backup file.
pub const SUFFIX: &str = ".tar.zst.age";

/// Options of one backup.
#[derive(Debug)]
pub struct BackupOptions {
    /// Directory to back up.
    pub source: PathBuf,
    /// Where backups go (local directory or S3).
    pub store: Arc<dyn Store>,
    /// File name prefix (`openclaw_data`).
    pub name: String,
    /// Who can decrypt.
    pub recipients: Vec<Recipient>,
    /// zstd level (1–19).
    pub level: i32,
    /// zstd worker threads (0 = compress on the calling thread).
    pub threads: u32,
    /// Counters updated while the backup runs.
    pub progress: Option<std::sync::Arc<Progress>>,
    /// Set to stop a running backup (SIGTERM): it ends with [`BackupError::Interrupted`].
    pub stop: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
    /// Containers to pause while the source is read (`None`: pause nothing).
    pub pause: Option<pause::PauseOptions>,
}

/// A finished backup.
#[derive(Debug)]
pub struct BackupResult {
    /// The backup's file name in the store.
    pub name: String,
    /// Its full location, for messages.
    pub location: String,
    /// Its size.
    pub bytes: u64,
    /// BLAKE3 hash (hex) of the ciphertext, as written.
    pub blake3: String,
    /// What it holds.
    pub summary: archive::ArchiveSummary,
    /// Containers paused while the source was read.
    pub paused: Vec<String>,
    /// The maximum pause time ran out before the source was read: not consistent.
    pub pause_expired: bool,
}

/// A UTC timestamp for file names: `20261127T013000Z`.
pub fn stamp(t: std::time::SystemTime) -> String {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// RFC 3339 UTC time.
pub fn rfc3339(t: std::time::SystemTime) -> String {
    let s = stamp(t);
    format!(
        "{}-{}-{}T{}:{}:{}Z",
        &s[0..4],
        &s[4..6],
        &s[6..8],
        &s[9..11],
        &s[11..13],
        &s[13..15]
    )
}

/// Seconds since the epoch of a `20261127T013000Z` stamp.
pub fn parse_stamp(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> { s.get(r)?.parse().ok() };
    let (y, m, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (hh, mm, ss) = (num(9..11)?, num(11..13)?, num(13..15)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    // Howard Hinnant's days_from_civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

/// The UTC time a backup file's name carries.
pub fn backup_time(n: &str) -> Option<i64> {
    let stem = n.strip_suffix(SUFFIX)?;
    parse_stamp(stem.rsplit('-').next()?)
}

/// What pruning decided for one backup.
#[derive(Debug)]
pub struct PruneDecision {
    /// The backup's file name.
    pub name: String,
    /// Why it is kept; empty: deleted (or would be, in a dry run).
    pub reasons: retention::Reasons,
}

/// Apply `policy` to the backups in `store` whose name starts with `name-`: delete the others (with
/// their checksum and index files) unless `dry_run`. Also removes leftovers of killed backups older
/// than a day. Only sidecar's own file names are ever touched.
pub fn prune(
    store: &dyn Store,
    name: &str,
    policy: &retention::Policy,
    dry_run: bool,
) -> Result<Vec<PruneDecision>, BackupError> {
    policy
        .validate()
        .map_err(|e| BackupError::Source(format!("retention: {e}")))?;
    let prefix = format!("{name}-");
    let objects = store.list()?;
    let names: Vec<String> = sorted_backups(&objects)
        .into_iter()
        .filter(|n| n.starts_with(&prefix) && backup_time(n).is_some())
        .collect();
    let mut items: Vec<retention::Item> = names
        .iter()
        .map(|n| retention::Item {
            time: backup_time(n).unwrap_or(0),
            good: false,
        })
        .collect();
    // Only the newest complete backup matters to the policy: check from the newest down.
    for i in (0..names.len()).rev() {
        if verify_without_key(store, &names[i], None).is_ok() {
            items[i].good = true;
            break;
        }
    }
    let reasons = retention::plan(&items, policy);
    let mut out = Vec::new();
    for (n, reasons) in names.into_iter().zip(reasons) {
        if reasons.is_empty() && !dry_run {
            store.delete(&n)?;
            store.delete(&checksum_name(&n))?;
            store.delete(&index_name(&n))?;
        }
        out.push(PruneDecision { name: n, reasons });
    }
    if !dry_run {
        // Checksum and index files whose backup is gone (deleted by hand).
        let present: std::collections::HashSet<&str> = objects.iter().map(|o| o.name.as_str()).collect();
        for o in &objects {
            let Some(base) = o.name.strip_suffix(".b3").or_else(|| o.name.strip_suffix(".index.age")) else {
                continue;
            };
            if base.starts_with(&prefix) && backup_time(base).is_some() && !present.contains(base) {
                store.delete(&o.name)?;
            }
        }
        store.sweep(&prefix, std::time::Duration::from_secs(86_400))?;
    }
    Ok(out)
}

/// What a scheduled run did, for the caller to report.
#[derive(Debug)]
pub enum ScheduledEvent {
    /// A run starts (`missed`: it catches up on a run missed while sidecar was not running).
    Starting {
        /// Catching up.
        missed: bool,
    },
    /// A backup was written and verified.
    Done(BackupResult),
    /// A backup failed; the next one runs at the next scheduled time.
    Failed(BackupError),
    /// Another process holds the destination's backup lock: this run is skipped.
    Skipped,
    /// Retention ran after a backup: how many backups were deleted.
    Pruned(usize),
    /// The next run is due at this time (epoch seconds, jitter included).
    Next(i64),
}

/// Run backups on `schedule` until `stop` is set: a run missed while sidecar was down runs first,
/// runs never overlap, and after each successful backup `retention` (if any) prunes the destination.
pub fn run_scheduled(
    opts: &BackupOptions,
    schedule: &schedule::Schedule,
    retention: Option<&retention::Policy>,
    host_seed: u64,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    mut on_event: impl FnMut(ScheduledEvent),
) {
    let newest = || -> Option<i64> {
        let prefix = format!("{}-", opts.name);
        list_backups(opts.store.as_ref())
            .ok()?
            .iter()
            .filter(|n| n.starts_with(&prefix))
            .filter_map(|n| backup_time(n))
            .max()
    };
    let mut catch_up = schedule.missed(schedule::now(), newest());
    loop {
        if !catch_up {
            let Some(fire) = schedule.next_after(schedule::now()) else {
                return;
            };
            let due = fire + schedule.jitter_for(fire, host_seed) as i64;
            on_event(ScheduledEvent::Next(due));
            if schedule::sleep_until(due, &stop) {
                return;
            }
        }
        on_event(ScheduledEvent::Starting { missed: catch_up });
        catch_up = false;
        let lock = match opts.store.lock() {
            Ok(Some(lock)) => lock,
            Ok(None) => {
                on_event(ScheduledEvent::Skipped);
                continue;
            }
            Err(e) => {
                on_event(ScheduledEvent::Failed(e));
                continue;
            }
        };
        let run = BackupOptions {
            recipients: opts.recipients.iter().map(Recipient::clone_parsed).collect(),
            source: opts.source.clone(),
            store: opts.store.clone(),
            name: opts.name.clone(),
            level: opts.level,
            threads: opts.threads,
            progress: None,
            stop: Some(stop.clone()),
            pause: opts.pause.clone(),
        };
        match create_backup(&run) {
            Ok(result) => {
                on_event(ScheduledEvent::Done(result));
                if let Some(policy) = retention.filter(|p| !p.is_empty()) {
                    match prune(opts.store.as_ref(), &opts.name, policy, false) {
                        Ok(d) => on_event(ScheduledEvent::Pruned(
                            d.iter().filter(|d| d.reasons.is_empty()).count(),
                        )),
                        Err(e) => on_event(ScheduledEvent::Failed(e)),
                    }
                }
            }
            Err(BackupError::Interrupted) => {
                drop(lock);
                on_event(ScheduledEvent::Failed(BackupError::Interrupted));
                return;
            }
            Err(e) => on_event(ScheduledEvent::Failed(e)),
        }
        drop(lock);
        if stop.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
    }
}

/// Days since 1970-01-01 → (year, month, day), Howard Hinnant's algorithm.
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// The checksum file written beside each backup: `<backup>.b3`: the ciphertext's BLAKE3 hash in `b3sum` format (`b3sum -c` checks it).
pub fn checksum_name(backup: &str) -> String {
    format!("{backup}.b3")
}

/// The small encrypted index written beside each backup (`<backup>.index.age`): what `backups
/// list --identity` shows without reading the backup itself. Encrypted to the same recipients, so the
/// host cannot read it either.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Index {
    /// The backup's file name.
    pub backup: String,
    /// When it started (RFC 3339 UTC).
    pub created: String,
    /// The directory backed up.
    pub source: String,
    /// The sidecar version that wrote it.
    pub sidecar: String,
    /// BLAKE3 hash (hex) of the backup file.
    pub blake3: String,
    /// Size of the backup file.
    pub bytes: u64,
    /// What it holds.
    pub totals: manifest::Totals,
}

/// `<backup>.index.age`.
pub fn index_name(backup: &str) -> String {
    format!("{backup}.index.age")
}

/// Write a small file to the store, atomically.
fn put_small(store: &dyn Store, name: &str, data: &[u8]) -> Result<(), BackupError> {
    let mut up = store.create(name)?;
    up.write_all(data)
        .map_err(|e| BackupError::io(format!("writing {}", store.locate(name)), e))?;
    up.commit()
}

/// Read a small file from the store (at most `limit` bytes; larger is an error).
fn get_small(store: &dyn Store, name: &str, limit: u64) -> Result<Vec<u8>, BackupError> {
    let mut data = Vec::new();
    store
        .open(name)?
        .take(limit + 1)
        .read_to_end(&mut data)
        .map_err(|e| BackupError::io(format!("reading {}", store.locate(name)), e))?;
    if data.len() as u64 > limit {
        return Err(BackupError::Invalid {
            file: store.locate(name),
            problem: format!("larger than {limit} bytes: not a file sidecar wrote"),
        });
    }
    Ok(data)
}

fn write_index(store: &dyn Store, name: &str, index: &Index, recipients: &[Recipient]) -> Result<(), BackupError> {
    let ctx = || format!("writing {}", store.locate(name));
    let json = serde_json::to_vec(index).map_err(|e| BackupError::io(ctx(), e.into()))?;
    let encryptor = age::Encryptor::with_recipients(recipients.iter().map(|r| r.as_dyn()))
        .map_err(|e| BackupError::Recipient(e.to_string()))?;
    let mut sealed = Vec::new();
    let mut w = encryptor
        .wrap_output(&mut sealed)
        .map_err(|e| BackupError::io(ctx(), e))?;
    w.write_all(&json).map_err(|e| BackupError::io(ctx(), e))?;
    w.finish().map_err(|e| BackupError::io(ctx(), e))?;
    put_small(store, name, &sealed)
}

/// Decrypt a backup's index with the identities.
pub fn read_index(
    store: &dyn Store,
    backup: &str,
    identities: &[Box<dyn age::Identity + Send + Sync>],
) -> Result<Index, BackupError> {
    let name = index_name(backup);
    let bad = |problem: String| BackupError::Invalid {
        file: store.locate(&name),
        problem,
    };
    // An index is a few hundred bytes; refuse anything large.
    let sealed = get_small(store, &name, 1 << 20)?;
    let dec = age::Decryptor::new_buffered(&sealed[..]).map_err(|e| bad(format!("not an age file ({e})")))?;
    let mut reader = dec
        .decrypt(identities.iter().map(|i| i.as_ref() as &dyn age::Identity))
        .map_err(|e| bad(format!("cannot decrypt ({e})")))?;
    let mut text = Vec::new();
    reader
        .read_to_end(&mut text)
        .map_err(|e| bad(format!("damaged ({e})")))?;
    serde_json::from_slice(&text).map_err(|e| bad(format!("not an index ({e})")))
}

/// Hashes what is read through it.
struct HashingReader<R> {
    inner: R,
    hasher: blake3::Hasher,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// Check a backup without any key, in one streamed read from its store: it is complete (its
/// ciphertext hash matches the checksum file written with it) and its age header holds exactly the
/// expected recipient stanzas (when `recipients` is given). Returns the stanza types.
pub fn verify_without_key(
    store: &dyn Store,
    backup: &str,
    recipients: Option<&[Recipient]>,
) -> Result<Vec<String>, BackupError> {
    let bad = |problem: String| BackupError::Invalid {
        file: store.locate(backup),
        problem,
    };
    let sums = checksum_name(backup);
    let recorded = get_small(store, &sums, 4096).map_err(|e| match e {
        BackupError::Io { source, .. } => BackupError::io(
            format!(
                "checksum file {} (written with every backup; missing: the backup did not finish)",
                store.locate(&sums)
            ),
            source,
        ),
        e => e,
    })?;
    let recorded = String::from_utf8_lossy(&recorded)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string();
    let mut reader = io::BufReader::with_capacity(
        1 << 20,
        HashingReader {
            inner: store.open(backup)?,
            hasher: blake3::Hasher::new(),
        },
    );
    let stanzas = crypto::header_stanzas(&mut reader, &store.locate(backup));
    io::copy(&mut reader, &mut io::sink())
        .map_err(|e| BackupError::io(format!("reading {}", store.locate(backup)), e))?;
    let actual = reader.into_inner().hasher.finalize().to_hex().to_string();
    if recorded != actual {
        return Err(bad(format!(
            "ciphertext BLAKE3 hash {actual} differs from the recorded {recorded}: the file is damaged or incomplete"
        )));
    }
    let stanzas = stanzas?;
    if let Some(recipients) = recipients {
        let mut want: Vec<&str> = recipients.iter().map(crypto::stanza_tag).collect();
        let mut got: Vec<&str> = stanzas.iter().map(String::as_str).collect();
        want.sort_unstable();
        got.sort_unstable();
        if want != got {
            return Err(bad(format!(
                "encrypted to {got:?}, but the configured recipients are {want:?}"
            )));
        }
    }
    Ok(stanzas)
}

/// Backup file names among `objects`, oldest first (names carry a UTC timestamp).
pub fn sorted_backups(objects: &[store::Object]) -> Vec<String> {
    let mut out: Vec<String> = objects
        .iter()
        .map(|o| o.name.clone())
        .filter(|n| n.ends_with(SUFFIX) && !n.starts_with('.'))
        .collect();
    out.sort_by_key(|n| {
        // `<name>-<stamp>.tar.zst.age`: order by the stamp, then the name.
        let stem = n.trim_end_matches(SUFFIX);
        (stem.rsplit('-').next().unwrap_or_default().to_string(), n.clone())
    });
    out
}

/// Backups in a store, oldest first.
pub fn list_backups(store: &dyn Store) -> Result<Vec<String>, BackupError> {
    Ok(sorted_backups(&store.list()?))
}

/// One backup: its store and file name.
#[derive(Debug, Clone)]
pub struct BackupRef {
    /// Where it is.
    pub store: Arc<dyn Store>,
    /// Its file name there.
    pub name: String,
}

impl BackupRef {
    /// Full location, for messages.
    pub fn label(&self) -> String {
        self.store.locate(&self.name)
    }
}

/// `BACKUP` as given on the command line: `latest`, a file name in `store`, or a local path.
pub fn resolve(spec: &str, store: Arc<dyn Store>) -> Result<BackupRef, BackupError> {
    if spec == "latest" {
        let name = list_backups(store.as_ref())?.pop().ok_or_else(|| {
            BackupError::io(
                format!("no backup in {}", store.describe()),
                io::Error::new(io::ErrorKind::NotFound, "no *.tar.zst.age file"),
            )
        })?;
        return Ok(BackupRef { store, name });
    }
    let p = Path::new(spec);
    if !spec.contains('/') && store.exists(spec)? {
        return Ok(BackupRef {
            store,
            name: spec.to_string(),
        });
    }
    if p.is_file() {
        let dir = p
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let name = p.file_name().unwrap_or_default().to_string_lossy().into_owned();
        return Ok(BackupRef {
            store: Arc::new(LocalStore::new(dir)),
            name,
        });
    }
    Err(BackupError::io(
        format!("backup {spec} (looked in {} and at the path)", store.describe()),
        io::Error::new(io::ErrorKind::NotFound, "not found"),
    ))
}

/// Make one backup of `opts.source` into `opts.store`.
pub fn create_backup(opts: &BackupOptions) -> Result<BackupResult, BackupError> {
    if opts.recipients.is_empty() {
        return Err(BackupError::Recipient(
            "missing: give --recipient age1… or --recipients-file FILE (the host needs only the public key)".into(),
        ));
    }
    let started = std::time::SystemTime::now();
    let store = opts.store.as_ref();
    store.prepare()?;
    let name = format!("{}-{}{}", opts.name, stamp(started), SUFFIX);
    let upload = store.create(&name)?;
    let guard = opts.pause.as_ref().map(pause::pause).transpose()?;
    let result = write_backup(opts, started, upload, &store.locate(&name));
    let (paused, pause_expired) = match &guard {
        Some(g) => (g.names().to_vec(), g.expired()),
        None => (Vec::new(), false),
    };
    drop(guard); // unpause now, also when the backup failed
    let (bytes, blake3, summary) = match result {
        Ok(r) => r,
        Err(e) => {
            let stopped = opts
                .stop
                .as_ref()
                .is_some_and(|s| s.load(std::sync::atomic::Ordering::Relaxed));
            return Err(if stopped { BackupError::Interrupted } else { e });
        }
    };
    let line = format!("{blake3}  {name}\n");
    put_small(store, &checksum_name(&name), line.as_bytes())?;
    let index = Index {
        backup: name.clone(),
        created: rfc3339(started),
        source: opts.source.display().to_string(),
        sidecar: env!("CARGO_PKG_VERSION").into(),
        blake3: blake3.clone(),
        bytes,
        totals: summary.totals.clone(),
    };
    write_index(store, &index_name(&name), &index, &opts.recipients)?;
    // Verify what landed: re-read it from the destination (the host cannot decrypt it).
    verify_without_key(store, &name, Some(&opts.recipients))?;
    Ok(BackupResult {
        location: store.locate(&name),
        name,
        bytes,
        blake3,
        summary,
        paused,
        pause_expired,
    })
}

/// Bytes of tar stream handed to zstd at once.
const TAR_BATCH: usize = 128 * 1024;

/// Counts and hashes what passes through.
struct HashingWriter<W> {
    inner: W,
    hasher: blake3::Hasher,
    written: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The encrypting end of the pipeline (age, SHA-256, the destination), run on a thread of its own
/// so that it overlaps reading and compressing (as `tar | zstd | age` does with three processes).
/// Chunks of 1 MiB, at most `DEPTH` in flight: memory stays bounded.
type Sealed = HashingWriter<Box<dyn store::Upload>>;

struct WriteBehind {
    tx: Option<std::sync::mpsc::SyncSender<Vec<u8>>>,
    worker: Option<std::thread::JoinHandle<io::Result<Sealed>>>,
    buf: Vec<u8>,
}

impl WriteBehind {
    const CHUNK: usize = 1 << 20;
    const DEPTH: usize = 4;

    fn spawn(mut sink: age::stream::StreamWriter<Sealed>) -> io::Result<Self> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(Self::DEPTH);
        let worker = std::thread::Builder::new()
            .name("sidecar-backup-write".into())
            .spawn(move || {
                for chunk in rx {
                    sink.write_all(&chunk)?;
                }
                let mut hashing = sink.finish()?;
                hashing.flush()?;
                Ok(hashing)
            })?;
        Ok(WriteBehind {
            tx: Some(tx),
            worker: Some(worker),
            buf: Vec::with_capacity(Self::CHUNK),
        })
    }

    /// The writer thread stopped early: its error (disk full, upload failed) is the one to report.
    fn worker_error(&mut self) -> io::Error {
        self.tx = None;
        match self.worker.take().map(|w| w.join()) {
            Some(Ok(Err(e))) => e,
            Some(Err(_)) => io::Error::other("the backup writer thread panicked"),
            _ => io::Error::other("the backup writer stopped"),
        }
    }

    fn send(&mut self) -> io::Result<()> {
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(Self::CHUNK));
        let sent = self.tx.as_ref().map(|tx| tx.send(chunk).is_ok()).unwrap_or(false);
        if sent {
            Ok(())
        } else {
            Err(self.worker_error())
        }
    }

    /// Flush, close age's stream, and hand back the hashing writer (the upload not yet committed).
    fn finish(mut self) -> io::Result<Sealed> {
        if !self.buf.is_empty() {
            self.send()?;
        }
        self.tx = None;
        match self.worker.take().map(|w| w.join()) {
            Some(Ok(r)) => r,
            _ => Err(io::Error::other("the backup writer thread panicked")),
        }
    }
}

impl Write for WriteBehind {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(Self::CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == Self::CHUNK {
            self.send()?;
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn write_backup(
    opts: &BackupOptions,
    started: std::time::SystemTime,
    upload: Box<dyn store::Upload>,
    label: &str,
) -> Result<(u64, String, archive::ArchiveSummary), BackupError> {
    let ctx = || format!("writing {label}");
    // On every error path the partial upload is removed here: the write-behind thread may still
    // hold it when the process exits.
    let mut cleanup = CleanupOnDrop(Some(upload.cleanup()));
    let hashing = HashingWriter {
        inner: upload,
        hasher: blake3::Hasher::new(),
        written: 0,
    };
    let encryptor = age::Encryptor::with_recipients(opts.recipients.iter().map(|r| r.as_dyn()))
        .map_err(|e| BackupError::Recipient(e.to_string()))?;
    let encrypted = encryptor.wrap_output(hashing).map_err(|e| BackupError::io(ctx(), e))?;
    let encrypted = WriteBehind::spawn(encrypted).map_err(|e| BackupError::io(ctx(), e))?;
    let mut zstd = zstd::stream::write::Encoder::new(encrypted, opts.level).map_err(|e| BackupError::io(ctx(), e))?;
    zstd.include_checksum(true).map_err(|e| BackupError::io(ctx(), e))?;
    if opts.threads > 0 {
        zstd.multithread(opts.threads).map_err(|e| BackupError::io(ctx(), e))?;
        // Smaller jobs than zstd's default (4 windows) keep the workers' buffers, and so peak
        // memory, down.
        zstd.set_parameter(zstd::zstd_safe::CParameter::JobSize(ZSTD_JOB_SIZE))
            .map_err(|e| BackupError::io(ctx(), e))?;
    }
    let header = manifest::Header {
        format: "sidecar-backup-manifest".into(),
        version: manifest::MANIFEST_VERSION,
        source: opts.source.display().to_string(),
        created: rfc3339(started),
        sidecar: env!("CARGO_PKG_VERSION").into(),
        root: None, // filled in by the archive writer from the source itself
    };
    // tar writes headers, PAX records and padding in pieces of 512 bytes; each write into zstd's
    // multithreaded stream takes its lock, so batch them.
    let zstd = io::BufWriter::with_capacity(TAR_BATCH, zstd);
    let mut writer = archive::ArchiveWriter::new(zstd, &opts.source, header, opts.progress.clone(), opts.stop.clone())?;
    if let Err(e) = writer.add_tree(&opts.source) {
        let stopping = opts
            .stop
            .as_ref()
            .is_some_and(|s| s.load(std::sync::atomic::Ordering::Relaxed));
        if stopping {
            // Shutting down: dropping the pipeline would finish the tar stream and wait for zstd's
            // workers to compress everything queued (tens of seconds at high levels), past the
            // container's stop timeout. The partial file is removed on return; the rest is left to exit.
            std::mem::forget(writer);
        }
        return Err(e);
    }
    let (zstd, summary) = writer.finish()?;
    let zstd = zstd.into_inner().map_err(|e| BackupError::io(ctx(), e.into_error()))?;
    let encrypted = zstd.finish().map_err(|e| BackupError::io(ctx(), e))?;
    let mut hashing = encrypted.finish().map_err(|e| BackupError::io(ctx(), e))?;
    hashing.flush().map_err(|e| BackupError::io(ctx(), e))?;
    let (written, blake3) = (hashing.written, hashing.hasher.finalize().to_hex().to_string());
    hashing.inner.commit()?;
    cleanup.0 = None;
    Ok((written, blake3, summary))
}

/// Runs the cleanup it holds when dropped (unless taken).
struct CleanupOnDrop(Option<Box<dyn FnOnce() + Send>>);

impl Drop for CleanupOnDrop {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_are_utc_calendar_dates() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_795_740_245);
        assert_eq!(stamp(t), "20261127T004405Z");
        assert_eq!(rfc3339(t), "2026-11-27T00:44:05Z");
        assert_eq!(stamp(std::time::UNIX_EPOCH), "19700101T000000Z");
        let leap = std::time::UNIX_EPOCH + std::time::Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(&stamp(leap)[..8], "20000229");
        for secs in [0i64, 951_782_400, 1_795_740_245, 4_102_444_799] {
            let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs as u64);
            assert_eq!(parse_stamp(&stamp(t)), Some(secs));
        }
        assert_eq!(parse_stamp("20261327T000000Z"), None);
        assert_eq!(parse_stamp("nonsense"), None);
    }
}
