//! sidecar's state directory: the per-install fingerprint key (and, later, checkpoints and findings).
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::fsutil;
use crate::redact::FingerprintKey;

/// File name of the fingerprint key inside the state directory.
pub const KEY_FILE: &str = "fingerprint.key";

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
    let path = state_dir.join(KEY_FILE);
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
