//! What a restore is asked to do ([`RestoreOptions`], [`Keep`]) and what it reports
//! ([`RestoreSummary`], [`Dropped`]); and the error of an invalid backup every step raises.
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::backup::catalog::BackupRef;
use crate::backup::error::BackupError;
use crate::backup::progress::Progress;

/// Restore options.
#[derive(Debug)]
pub struct RestoreOptions {
    /// The backup.
    pub backup: BackupRef,
    /// Identity file (age or SSH private key).
    pub identity: PathBuf,
    /// Target directory (created if missing; must be empty unless `force`).
    pub target: PathBuf,
    /// Move existing content of the target aside instead of refusing.
    pub force: bool,
    /// Decrypt and check everything, extract into staging, then discard instead of moving into place.
    pub dry_run: bool,
    /// Restore only these paths (relative to the backed-up directory) and what is below them; empty:
    /// everything. The whole backup is still read and checked against the manifest.
    pub paths: Vec<PathBuf>,
    /// Counters: backup bytes read, files restored.
    pub progress: Option<Arc<Progress>>,
    /// What to take from the backup beyond content, names and permissions.
    pub keep: Keep,
}

/// What a restore takes from a backup beyond content, names and plain permissions.
#[derive(Debug, Clone, Copy)]
pub struct Keep {
    /// Setuid, setgid and sticky bits, `security.*` and `trusted.*` extended attributes (file
    /// capabilities, SELinux labels), and a world-writable root: dropped unless set
    /// (`--preserve-privileges`).
    pub privileges: bool,
    /// Owners and groups, when running as root (like `tar --same-owner`); else everything belongs to
    /// whoever runs the restore (`--no-same-owner`).
    pub owner: bool,
}

impl Default for Keep {
    fn default() -> Self {
        Keep {
            privileges: false,
            owner: true,
        }
    }
}

/// What a restore did.
#[derive(Debug, Default)]
pub struct RestoreSummary {
    /// Entries restored.
    pub entries: u64,
    /// Regular files restored, all matching their manifest hash.
    pub files: u64,
    /// Bytes of file content.
    pub bytes: u64,
    /// Where the target's previous content was moved (`--force`).
    pub moved_aside: Option<PathBuf>,
    /// Warnings (entries not restorable here, e.g. ownership without root).
    pub warnings: Vec<String>,
    /// Owner, mode and mtime of the backed-up directory, from the manifest (given to the target by a
    /// full restore).
    pub root: Option<crate::backup::manifest::RootMeta>,
    /// Privileges the backup asked for and the restore did not give (see [`Keep::privileges`]).
    pub dropped: Dropped,
}

/// Privileges left out of a restore: a count, and the first [`Dropped::SHOWN`] as `path: what`.
#[derive(Debug, Default)]
pub struct Dropped {
    /// Entries that lost something.
    pub entries: u64,
    /// The first of them, `` `path`: setuid bit, xattr security.capability ``.
    pub examples: Vec<String>,
}

impl Dropped {
    /// Examples kept (the count goes on).
    pub const SHOWN: usize = 20;

    pub(super) fn note(&mut self, rel: &Path, what: &[String]) {
        if what.is_empty() {
            return;
        }
        self.entries += 1;
        if self.examples.len() < Self::SHOWN {
            self.examples.push(format!("`{}`: {}", rel.display(), what.join(", ")));
        }
    }
}

/// The backup `file` is not valid: `problem`.
pub(super) fn invalid(file: &str, problem: impl Into<String>) -> BackupError {
    BackupError::Invalid {
        file: file.to_string(),
        problem: problem.into(),
    }
}
