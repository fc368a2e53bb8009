//! Checking a backup without its key: complete (the ciphertext hash matches the checksum file
//! written with it) and encrypted to exactly the expected recipients. One streamed read from the
//! store. (With the key, [`super::restore::verify`] also checks every file against the manifest.)
use std::io::{self, Read};

use super::catalog::checksum_name;
use super::crypto::{self, Recipient};
use super::error::BackupError;
use super::index::get_small;
use crate::store::Store;

/// Hashes what is read through it.
struct HashingReader<R> {
    inner: R,
    hasher: blake3::Hasher,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// Check a backup without any key, in one streamed read from its store: it is complete (its
/// ciphertext hash matches the checksum file written with it) and its age header holds exactly the
/// expected recipient stanzas (when `recipients` is given). Returns the stanza types.
pub fn verify_without_key(
    store: &dyn Store,
    backup: &str,
    recipients: Option<&[Recipient]>,
) -> Result<Vec<String>, BackupError> {
    let bad = |problem: String| BackupError::Invalid {
        file: store.locate(backup),
        problem,
    };
    let sums = checksum_name(backup);
    let recorded = get_small(store, &sums, 4096).map_err(|e| match e {
        BackupError::Io { source, .. } => BackupError::io(
            format!(
                "checksum file {} (written with every backup; missing: the backup did not finish)",
                store.locate(&sums)
            ),
            source,
        ),
        e => e,
    })?;
    let recorded = String::from_utf8_lossy(&recorded)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string();
    let mut reader = io::BufReader::with_capacity(
        1 << 20,
        HashingReader {
            inner: store.open(backup)?,
            hasher: blake3::Hasher::new(),
        },
    );
    let stanzas = crypto::header_stanzas(&mut reader, &store.locate(backup));
    io::copy(&mut reader, &mut io::sink())
        .map_err(|e| BackupError::io(format!("reading {}", store.locate(backup)), e))?;
    let actual = reader.into_inner().hasher.finalize().to_hex().to_string();
    if recorded != actual {
        return Err(bad(format!(
            "ciphertext BLAKE3 hash {actual} differs from the recorded {recorded}: the file is damaged or incomplete"
        )));
    }
    let stanzas = stanzas?;
    if let Some(recipients) = recipients {
        let mut want: Vec<&str> = recipients.iter().map(crypto::stanza_tag).collect();
        let mut got: Vec<&str> = stanzas.iter().map(String::as_str).collect();
        want.sort_unstable();
        got.sort_unstable();
        if want != got {
            return Err(bad(format!(
                "encrypted to {got:?}, but the configured recipients are {want:?}"
            )));
        }
    }
    Ok(stanzas)
}
