//! Making one backup: the pipeline tar → zstd → age → store, written to a temporary name, hashed as
//! written, committed only when complete, then re-read from the store and checked (the host cannot
//! decrypt it). The checksum file and the encrypted index are written beside it.
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use super::catalog::{checksum_name, index_name, SUFFIX};
use super::crypto::Recipient;
use super::error::BackupError;
use super::index::{put_small, write_index, Index};
use super::progress::Progress;
use super::verify::verify_without_key;
use super::write_behind::{HashingWriter, WriteBehind};
use super::{archive, manifest, pause};
use crate::store::{Store, Upload};
use crate::timefmt::{rfc3339, stamp};

/// zstd job size in multithreaded mode.
const ZSTD_JOB_SIZE: u32 = 2 << 20;

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
    pub progress: Option<Arc<Progress>>,
    /// Set to stop a running backup (SIGTERM): it ends with [`BackupError::Interrupted`].
    pub stop: Option<Arc<AtomicBool>>,
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

/// Make one backup of `opts.source` into `opts.store`.
pub fn create_backup(opts: &BackupOptions) -> Result<BackupResult, BackupError> {
    if opts.recipients.is_empty() {
        return Err(BackupError::Recipient(
            "missing: give --recipient age1… or --recipients-file FILE (the host needs only the public key)".into(),
        ));
    }
    let started = SystemTime::now();
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
            let stopped = opts.stop.as_ref().is_some_and(|s| s.load(Ordering::Relaxed));
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

fn write_backup(
    opts: &BackupOptions,
    started: SystemTime,
    upload: Box<dyn Upload>,
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
        let stopping = opts.stop.as_ref().is_some_and(|s| s.load(Ordering::Relaxed));
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
