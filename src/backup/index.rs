//! The small encrypted index beside each backup (`<backup>.index.age`), and the small-file helpers
//! it and the checksum file share: written atomically through the store, read with a size limit
//! (anything larger was not written by sidecar).
use std::io::{Read, Write};

use super::catalog::index_name;
use super::crypto::Recipient;
use super::error::BackupError;
use super::manifest;
use crate::store::Store;

/// The small encrypted index written beside each backup (`<backup>.index.age`): what `backups
/// list --identity` shows without reading the backup itself. Encrypted to the same recipients, so the
/// host cannot read it either.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Index {
    /// The backup's file name.
    pub backup: String,
    /// When it started (RFC 3339 UTC).
    pub created: String,
    /// The directory backed up.
    pub source: String,
    /// The sidecar version that wrote it.
    pub sidecar: String,
    /// BLAKE3 hash (hex) of the backup file.
    pub blake3: String,
    /// Size of the backup file.
    pub bytes: u64,
    /// What it holds.
    pub totals: manifest::Totals,
}

/// Write a small file to the store, atomically.
pub(super) fn put_small(store: &dyn Store, name: &str, data: &[u8]) -> Result<(), BackupError> {
    let mut up = store.create(name)?;
    up.write_all(data)
        .map_err(|e| BackupError::io(format!("writing {}", store.locate(name)), e))?;
    Ok(up.commit()?)
}

/// Read a small file from the store (at most `limit` bytes; larger is an error).
pub(super) fn get_small(store: &dyn Store, name: &str, limit: u64) -> Result<Vec<u8>, BackupError> {
    let mut data = Vec::new();
    store
        .open(name)?
        .take(limit + 1)
        .read_to_end(&mut data)
        .map_err(|e| BackupError::io(format!("reading {}", store.locate(name)), e))?;
    if data.len() as u64 > limit {
        return Err(BackupError::Invalid {
            file: store.locate(name),
            problem: format!("larger than {limit} bytes: not a file sidecar wrote"),
        });
    }
    Ok(data)
}

pub(super) fn write_index(
    store: &dyn Store,
    name: &str,
    index: &Index,
    recipients: &[Recipient],
) -> Result<(), BackupError> {
    let ctx = || format!("writing {}", store.locate(name));
    let json = serde_json::to_vec(index).map_err(|e| BackupError::io(ctx(), e.into()))?;
    let encryptor = age::Encryptor::with_recipients(recipients.iter().map(|r| r.as_dyn()))
        .map_err(|e| BackupError::Recipient(e.to_string()))?;
    let mut sealed = Vec::new();
    let mut w = encryptor
        .wrap_output(&mut sealed)
        .map_err(|e| BackupError::io(ctx(), e))?;
    w.write_all(&json).map_err(|e| BackupError::io(ctx(), e))?;
    w.finish().map_err(|e| BackupError::io(ctx(), e))?;
    put_small(store, name, &sealed)
}

/// Decrypt a backup's index with the identities.
pub fn read_index(
    store: &dyn Store,
    backup: &str,
    identities: &[Box<dyn age::Identity + Send + Sync>],
) -> Result<Index, BackupError> {
    let name = index_name(backup);
    let bad = |problem: String| BackupError::Invalid {
        file: store.locate(&name),
        problem,
    };
    // An index is a few hundred bytes; refuse anything large.
    let sealed = get_small(store, &name, 1 << 20)?;
    let dec = age::Decryptor::new_buffered(&sealed[..]).map_err(|e| bad(format!("not an age file ({e})")))?;
    let mut reader = dec
        .decrypt(identities.iter().map(|i| i.as_ref() as &dyn age::Identity))
        .map_err(|e| bad(format!("cannot decrypt ({e})")))?;
    let mut text = Vec::new();
    reader
        .read_to_end(&mut text)
        .map_err(|e| bad(format!("damaged ({e})")))?;
    serde_json::from_slice(&text).map_err(|e| bad(format!("not an index ({e})")))
}
