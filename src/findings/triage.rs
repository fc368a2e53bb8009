//! Triage: reviewers' acknowledgements of secrets, by fingerprint, in `<state_dir>/triage.json`
//! (0600, written atomically). An acknowledged secret stays acknowledged until it shows up again
//! after the acknowledgement (see [`super::group`]).
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// A reviewer's acknowledgement of one fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    /// What was done ("key rotated").
    pub note: String,
    /// Who acknowledged it.
    pub by: String,
    /// When (RFC 3339 UTC).
    pub at: String,
}

/// The triage state: acknowledgements by fingerprint. Written atomically (0600).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Triage {
    /// Format version.
    #[serde(default)]
    pub version: u32,
    /// Acknowledged fingerprints.
    #[serde(default)]
    pub acks: BTreeMap<String, Ack>,
}

impl Triage {
    /// `<state_dir>/triage.json`.
    pub fn path(state_dir: &Path) -> PathBuf {
        crate::state::StateDir::new(state_dir).triage()
    }

    /// Load (an absent file is an empty triage).
    pub fn load(state_dir: &Path) -> io::Result<Triage> {
        let path = Self::path(state_dir);
        match crate::fsutil::open_input(&path, crate::fsutil::InputKind::TRIAGE) {
            Ok(f) => serde_json::from_reader(io::BufReader::new(f))
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{}: {e}", path.display()))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Triage::default()),
            Err(e) => Err(e),
        }
    }

    /// Save atomically.
    pub fn save(&self, state_dir: &Path) -> io::Result<()> {
        crate::fsutil::create_private_dir(state_dir)?;
        let mut t = self.clone();
        t.version = 1;
        crate::fsutil::write_atomic(&Self::path(state_dir), &serde_json::to_vec_pretty(&t)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_triage_file_that_is_not_a_regular_file_is_an_error_naming_it() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(Triage::path(tmp.path())).unwrap();
        let err = Triage::load(tmp.path()).unwrap_err().to_string();
        assert!(
            err.contains("triage file") && err.contains("is a directory, not a regular file"),
            "{err}"
        );
    }

    #[test]
    fn triage_round_trip_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let mut t = Triage::default();
        t.acks.insert(
            "f".repeat(64),
            Ack {
                note: "n".into(),
                by: "b".into(),
                at: "2026-11-27T00:00:00Z".into(),
            },
        );
        t.save(tmp.path()).unwrap();
        let back = Triage::load(tmp.path()).unwrap();
        assert_eq!(back.acks, t.acks);
        let mode = std::fs::metadata(Triage::path(tmp.path()))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
