//! sidecar's state directory: the per-install fingerprint key (and, later, checkpoints and findings).
use std::fs;
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
    let mut file = fs::File::open(&path).map_err(io_err("cannot read the fingerprint key"))?;
    let mut key = [0u8; 32];
    let mut extra = [0u8; 1];
    file.read_exact(&mut key)
        .map_err(|_| StateError::CorruptKey(path.clone()))?;
    if file
        .read(&mut extra)
        .map_err(io_err("cannot read the fingerprint key"))?
        != 0
    {
        return Err(StateError::CorruptKey(path));
    }
    Ok(FingerprintKey::from_bytes(key))
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn corrupt_key_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(KEY_FILE), b"short").unwrap();
        let err = load_or_create_key(dir.path()).unwrap_err();
        assert!(err.to_string().contains("corrupt"), "{err}");
    }
}
