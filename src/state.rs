//! sidecar's state directory: every path under it, in one place ([`StateDir`]), and the
//! per-install fingerprint key.
//!
//! Everything sidecar keeps between runs lives under one directory (`state_dir`, 0700): the key
//! fingerprints are made with, the guard's checkpoints and write-ahead files, the findings report,
//! the audit stream, triage, alert and shipping bookkeeping, the backup pause journal and the
//! archives of rotated logs. Modules ask [`StateDir`] for a path instead of joining names by hand.
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::fsutil;
use crate::redact::FingerprintKey;

/// File name of the fingerprint key inside the state directory.
pub const KEY_FILE: &str = "fingerprint.key";

/// The state directory: the one place that knows the name of everything under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateDir {
    root: PathBuf,
}

impl StateDir {
    /// The state directory at `root` (nothing is created).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The install's fingerprint key (32 random bytes, 0600).
    pub fn key(&self) -> PathBuf {
        self.root.join(KEY_FILE)
    }

    /// The findings report: `findings.jsonl` and its rotated, compressed files.
    pub fn findings(&self) -> PathBuf {
        self.root.join("findings")
    }

    /// The guard's checkpoints (`checkpoints.json`).
    pub fn checkpoints(&self) -> PathBuf {
        self.root.join("checkpoints.json")
    }

    /// Masks of one batch saved before they are written (`pending-masks.json`, older releases).
    pub fn pending_masks(&self) -> PathBuf {
        self.root.join("pending-masks.json")
    }

    /// Masks written ahead of their writes (`pending-spans.jsonl`).
    pub fn pending_spans(&self) -> PathBuf {
        self.root.join("pending-spans.jsonl")
    }

    /// Counts past the recording budget, appended per batch (`aggregates.jsonl`).
    pub fn aggregates_journal(&self) -> PathBuf {
        self.root.join("aggregates.jsonl")
    }

    /// The guard's heartbeat, read by `sidecar health` (`health.json`).
    pub fn heartbeat(&self) -> PathBuf {
        self.root.join("health.json")
    }

    /// The audit results, appended by `sidecar run` (`audit/audit.jsonl`).
    pub fn audit_stream(&self) -> PathBuf {
        self.root.join("audit").join("audit.jsonl")
    }

    /// Acknowledgements of secrets (`triage.json`).
    pub fn triage(&self) -> PathBuf {
        self.root.join("triage.json")
    }

    /// Secrets already alerted (`alerted.json`).
    pub fn alerted(&self) -> PathBuf {
        self.root.join("alerted.json")
    }

    /// How far findings were shipped to the fleet destination (`shipped.json`).
    pub fn shipped(&self) -> PathBuf {
        self.root.join("shipped.json")
    }

    /// Containers paused by a backup, to unpause after a crash (`backup-paused.json`).
    pub fn backup_paused(&self) -> PathBuf {
        self.root.join("backup-paused.json")
    }

    /// Archives of live logs that had no max-size (`log-archive/<container id>/`).
    pub fn log_archive(&self) -> PathBuf {
        self.root.join("log-archive")
    }
}

/// Errors with the state directory. They name the path and what to do.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Creating or reading failed.
    #[error("state directory {dir}: {action}: {source}; pass --state-dir (or set SIDECAR_STATE_DIR) to a directory sidecar may write")]
    Io {
        /// The directory.
        dir: PathBuf,
        /// What failed.
        action: &'static str,
        /// The OS error.
        source: io::Error,
    },
    /// The key file is not 32 bytes.
    #[error("fingerprint key {0} is corrupt (expected 32 bytes); restore it from a backup, or delete it to start a new key (fingerprints and baselines made with the old key will no longer match)")]
    CorruptKey(PathBuf),
}

/// Load the install's fingerprint key from `state_dir`, creating the directory (0700) and a new
/// random key (0600) on first use.
pub fn load_or_create_key(state_dir: &Path) -> Result<FingerprintKey, StateError> {
    let io_err = |action: &'static str| {
        move |source| StateError::Io {
            dir: state_dir.to_path_buf(),
            action,
            source,
        }
    };
    fsutil::create_private_dir(state_dir).map_err(io_err("cannot create"))?;
    let path = StateDir::new(state_dir).key();
    if !path.exists() {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|e| StateError::Io {
            dir: state_dir.to_path_buf(),
            action: "cannot get random bytes for a new key",
            source: io::Error::other(e.to_string()),
        })?;
        fsutil::create_atomic_exclusive(&path, &key).map_err(io_err("cannot write the fingerprint key"))?;
    }
    let mut file = match fsutil::open_input(&path, fsutil::InputKind::KEY) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::FileTooLarge => return Err(StateError::CorruptKey(path)),
        Err(e) => return Err(io_err("cannot read the fingerprint key")(e)),
    };
    let mut key = [0u8; 32];
    let mut extra = [0u8; 1];
    file.read_exact(&mut key)
        .map_err(|_| StateError::CorruptKey(path.clone()))?;
    match file.read(&mut extra) {
        Ok(0) => {}
        Ok(_) => return Err(StateError::CorruptKey(path)),
        Err(e) if e.kind() == io::ErrorKind::FileTooLarge => return Err(StateError::CorruptKey(path)),
        Err(e) => return Err(io_err("cannot read the fingerprint key")(e)),
    }
    Ok(FingerprintKey::from_bytes(key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn key_is_created_once_privately() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let a = load_or_create_key(&state).unwrap();
        let b = load_or_create_key(&state).unwrap();
        assert_eq!(a.as_bytes(), b.as_bytes());
        assert_eq!(fsutil::mode(&state).unwrap(), 0o700);
        assert_eq!(fsutil::mode(&state.join(KEY_FILE)).unwrap(), 0o600);
    }

    #[test]
    fn a_key_that_is_a_fifo_or_too_long_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join(KEY_FILE);
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &key,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        let err = load_or_create_key(dir.path()).unwrap_err();
        assert!(
            err.to_string().contains("is a FIFO (named pipe), not a regular file"),
            "{err}"
        );
        fs::remove_file(&key).unwrap();
        fs::write(&key, [7u8; 4096]).unwrap();
        let err = load_or_create_key(dir.path()).unwrap_err();
        assert!(err.to_string().contains("corrupt"), "{err}");
    }

    #[test]
    fn corrupt_key_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(KEY_FILE), b"short").unwrap();
        let err = load_or_create_key(dir.path()).unwrap_err();
        assert!(err.to_string().contains("corrupt"), "{err}");
    }
}
