//! Where backups (and shipped fleet findings) live: a local directory or an S3-compatible bucket.
//! Both give the same guarantees: a file appears under its final name only when it is complete
//! (local: temporary dot name, fsync, rename; S3: a multipart upload, which is invisible until
//! completed and aborted on failure), and sidecar only ever lists, reads or deletes names it could
//! have written.
//!
//! Errors are [`StoreError`]s: they name the file or destination and keep the underlying
//! [`io::ErrorKind`] (S3 errors are mapped to one), so callers can give hints by kind.
mod local;
mod s3;

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::escape::terminal;
pub use local::LocalStore;
pub use s3::S3Store;

/// Errors of a store. Messages name the file or destination; every field is shown escaped for a
/// terminal, on one line ([`crate::escape::terminal`]): object names come from a bucket listing.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// An I/O error (or an S3 error mapped to its [`io::ErrorKind`]) while doing `what`.
    #[error("{}: {}", terminal(.what), terminal(&.source.to_string()))]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The destination as given cannot be used (unknown scheme, no bucket, bad S3 settings).
    #[error("{}", terminal(.0))]
    Destination(String),
}

impl StoreError {
    /// An I/O error while doing `what`.
    pub fn io(what: impl Into<String>, source: io::Error) -> Self {
        StoreError::Io {
            what: what.into(),
            source,
        }
    }
}

fn ioerr(what: String) -> impl FnOnce(io::Error) -> StoreError {
    move |e| StoreError::io(what, e)
}

/// One file in a store.
#[derive(Debug, Clone)]
pub struct Object {
    /// File name (no directory or prefix).
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// Last modification, when the store knows it.
    pub modified: Option<SystemTime>,
}

/// A file being written. Dropping it without [`Upload::commit`] discards it: nothing appears.
pub trait Upload: Write + Send {
    /// Make the file durable and visible under its final name.
    fn commit(self: Box<Self>) -> Result<(), StoreError>;
    /// What removes the partial file when the upload cannot be dropped normally (a backup stopped
    /// by SIGTERM leaks its pipeline rather than wait for the compressor to drain).
    fn cleanup(&self) -> Box<dyn FnOnce() + Send>;
}

/// A place that holds backups (or shipped findings).
pub trait Store: Send + Sync + std::fmt::Debug {
    /// `/backups` or `s3://bucket/prefix`, for messages.
    fn describe(&self) -> String;
    /// Full location of one file, for messages.
    fn locate(&self, name: &str) -> String {
        format!("{}/{name}", self.describe().trim_end_matches('/'))
    }
    /// Create the destination if needed (local: a 0700 directory).
    fn prepare(&self) -> Result<(), StoreError>;
    /// Files directly in the store, any order.
    fn list(&self) -> Result<Vec<Object>, StoreError>;
    /// Names of the sub-stores (local subdirectories, S3 common prefixes) directly in the store,
    /// sorted: open one with [`open_store`] on `<spec>/<name>`.
    fn children(&self) -> Result<Vec<String>, StoreError>;
    /// Start writing `name`.
    fn create(&self, name: &str) -> Result<Box<dyn Upload>, StoreError>;
    /// Stream `name`.
    fn open(&self, name: &str) -> Result<Box<dyn Read + Send>, StoreError>;
    /// Delete `name` (already gone is fine).
    fn delete(&self, name: &str) -> Result<(), StoreError>;
    /// Whether `name` exists.
    fn exists(&self, name: &str) -> Result<bool, StoreError>;
    /// An exclusive lock held while a backup runs, so that runs never overlap: `None` when another
    /// process holds it.
    fn lock(&self) -> Result<Option<File>, StoreError>;
    /// Remove leftovers of killed backups (local `.partial` files older than `age` whose name starts
    /// with `.{prefix}`). Returns how many.
    fn sweep(&self, prefix: &str, age: Duration) -> Result<usize, StoreError>;
}

/// `DEST` as given by the operator: `s3://bucket/prefix` or a local directory.
pub fn open_store(spec: &str) -> Result<Arc<dyn Store>, StoreError> {
    if let Some(rest) = spec.strip_prefix("s3://") {
        return Ok(Arc::new(S3Store::new(rest)?));
    }
    if spec.contains("://") {
        return Err(StoreError::Destination(format!(
            "destination {spec}: unsupported scheme; use a local directory or s3://bucket/prefix"
        )));
    }
    Ok(Arc::new(LocalStore::new(spec)))
}

/// An exclusive lock on `<dest>/.sidecar-backup.lock`, held while a backup runs; `None` when another
/// process holds it.
pub(crate) fn try_lock(dest: &Path) -> io::Result<Option<File>> {
    crate::fsutil::create_private_dir(dest)?;
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(dest.join(".sidecar-backup.lock"))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_parse() {
        assert!(open_store("/backups").unwrap().describe() == "/backups");
        assert!(open_store("ftp://x").is_err());
        assert!(open_store("s3://").is_err());
    }

    #[test]
    fn a_second_lock_holder_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let first = try_lock(dir.path()).unwrap();
        assert!(first.is_some());
        assert!(try_lock(dir.path()).unwrap().is_none());
        drop(first);
        assert!(try_lock(dir.path()).unwrap().is_some());
    }
}
