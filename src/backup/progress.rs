//! Live counters of a running backup, restore or verification, for a caller to show as progress.
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Live counters a caller can show as progress: content bytes read (backup) or backup bytes read
/// (restore), and files done.
#[derive(Debug, Default)]
pub struct Progress {
    /// Bytes so far.
    pub bytes: AtomicU64,
    /// Files so far.
    pub files: AtomicU64,
}

impl Progress {
    pub(crate) fn add(p: &Option<Arc<Progress>>, bytes: u64, files: u64) {
        if let Some(p) = p {
            p.bytes.fetch_add(bytes, Ordering::Relaxed);
            p.files.fetch_add(files, Ordering::Relaxed);
        }
    }
}
