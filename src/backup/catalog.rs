//! Which backups a store holds, and how they are named: `<name>-<UTC stamp>.tar.zst.age`, with the
//! checksum file `<backup>.b3` and the encrypted index `<backup>.index.age` beside each. Also
//! resolves `BACKUP` as given on the command line (`latest`, a name in the store, or a path).
use std::io;
use std::path::Path;
use std::sync::Arc;

use super::error::BackupError;
use crate::store::{LocalStore, Object, Store};

/// Suffix of every backup file.
pub const SUFFIX: &str = ".tar.zst.age";

/// The UTC time a backup file's name carries.
pub fn backup_time(n: &str) -> Option<i64> {
    let stem = n.strip_suffix(SUFFIX)?;
    crate::timefmt::parse_stamp(stem.rsplit('-').next()?)
}

/// The checksum file written beside each backup: `<backup>.b3`: the ciphertext's BLAKE3 hash in `b3sum` format (`b3sum -c` checks it).
pub fn checksum_name(backup: &str) -> String {
    format!("{backup}.b3")
}

/// `<backup>.index.age`.
pub fn index_name(backup: &str) -> String {
    format!("{backup}.index.age")
}

/// Backup file names among `objects`, oldest first (names carry a UTC timestamp).
pub fn sorted_backups(objects: &[Object]) -> Vec<String> {
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
