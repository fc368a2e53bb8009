//! The error of backups and restores, [`BackupError`]: messages name the file and say what to do,
//! and the variant decides the exit status (`Invalid`: the backup is bad; anything else: the
//! environment). Store errors convert into it with their messages and [`io::ErrorKind`] kept.
use std::io;

use crate::escape::terminal;
use crate::store::StoreError;

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

/// A store error keeps its message and, for I/O, its [`io::ErrorKind`] (the CLI hints by kind): an
/// unusable destination is reported as a source problem, as it always was.
impl From<StoreError> for BackupError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Io { what, source } => BackupError::Io { what, source },
            StoreError::Destination(problem) => BackupError::Source(problem),
        }
    }
}
