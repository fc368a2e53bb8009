//! Checking what was read against the manifest: the (path, BLAKE3) of every file entry is spooled,
//! in archive order, to an unnamed temporary file while the archive is read (memory stays flat
//! whatever the file count), then merged with the manifest, the archive's last entry. Every file
//! the manifest lists must be there with its hash, and nothing else.
use std::fs::File;
use std::io::{self, BufRead, BufReader, Seek, Write};
use std::path::Path;

use super::options::{invalid, RestoreSummary};
use super::plan::safe_relative;
use crate::backup::error::BackupError;
use crate::backup::manifest::{Kind, Line, MANIFEST_VERSION};

fn spool_err(e: io::Error) -> BackupError {
    BackupError::io("restore spool file", e)
}

/// The hashes of the file entries read so far, in archive order.
pub(super) struct HashSpool {
    out: io::BufWriter<File>,
}

impl HashSpool {
    /// An empty spool, in an unnamed temporary file.
    pub(super) fn new() -> Result<Self, BackupError> {
        let file = tempfile::tempfile().map_err(|e| BackupError::temp("restore spool file", e))?;
        Ok(HashSpool {
            out: io::BufWriter::new(file),
        })
    }

    /// Record the hash of file entry `rel`.
    pub(super) fn record(&mut self, rel: &Path, hash: String) -> Result<(), BackupError> {
        serde_json::to_writer(&mut self.out, &(rel.display().to_string(), hash)).map_err(|e| spool_err(e.into()))?;
        self.out.write_all(b"\n").map_err(spool_err)
    }

    /// The recorded (path, hash) pairs, in order.
    fn read_back(self) -> Result<impl Iterator<Item = Result<(String, String), BackupError>>, BackupError> {
        let mut file = self.out.into_inner().map_err(|e| spool_err(e.into_error()))?;
        file.seek(io::SeekFrom::Start(0)).map_err(spool_err)?;
        Ok(BufReader::new(file)
            .lines()
            .map(|l| -> Result<(String, String), BackupError> {
                let l = l.map_err(spool_err)?;
                serde_json::from_str(&l).map_err(|e| spool_err(e.into()))
            }))
    }
}

/// Merge the spooled hashes with the manifest in `manifest` (the spooled last entry of backup
/// `file`): counts matching files into `summary.files` and takes the root's metadata from the
/// header.
pub(super) fn against_manifest(
    file: &str,
    hashes: HashSpool,
    manifest: &tempfile::NamedTempFile,
    summary: &mut RestoreSummary,
) -> Result<(), BackupError> {
    let mut archived = hashes.read_back()?;
    let mut pending: Option<(String, String)> = None;
    let reader = BufReader::new(manifest.reopen().map_err(|e| BackupError::io("manifest spool", e))?);
    let mut saw_totals = false;
    for line in reader.lines() {
        let line = line.map_err(|e| BackupError::io("manifest spool", e))?;
        let parsed: Line = serde_json::from_str(&line).map_err(|e| invalid(file, format!("manifest: {e}")))?;
        match parsed {
            Line::Entry(r) if r.kind == Kind::File => {
                let hash = next_file(file, &r.path, &mut archived, &mut pending)?;
                match &r.blake3 {
                    Some(want) if *want == hash => summary.files += 1,
                    Some(_) => {
                        return Err(invalid(
                            file,
                            format!("`{}`: content does not match the manifest hash", r.path),
                        ))
                    }
                    None => {}
                }
            }
            Line::Header(h) if h.version == MANIFEST_VERSION => summary.root = h.root,
            Line::Header(h) => {
                return Err(invalid(
                    file,
                    format!(
                        "manifest version {} (this sidecar reads version {MANIFEST_VERSION}): restore it with the sidecar that wrote it ({}), or with `age -d | zstd -d | tar -x`",
                        h.version, h.sidecar
                    ),
                ))
            }
            Line::Totals(_) => saw_totals = true,
            _ => {}
        }
    }
    if let Some((path, _)) = pending.or(archived.next().transpose()?) {
        return Err(invalid(
            file,
            format!("the archive holds `{path}`, which the manifest does not list"),
        ));
    }
    if !saw_totals {
        return Err(invalid(file, "manifest is incomplete (no totals line)"));
    }
    Ok(())
}

/// The hash of the archive's entry for manifest file `listed`, which must come next. The archive
/// lists files in manifest order; a file stored twice (it changed while read) is two consecutive
/// entries, and the later one counts. `pending`: an entry read ahead, for the next file.
fn next_file(
    file: &str,
    listed: &str,
    archived: &mut impl Iterator<Item = Result<(String, String), BackupError>>,
    pending: &mut Option<(String, String)>,
) -> Result<String, BackupError> {
    let want_path = safe_relative(listed.as_bytes())
        .unwrap_or_default()
        .display()
        .to_string();
    let mut got = match pending.take() {
        Some(p) => Some(p),
        None => archived.next().transpose()?,
    };
    match &got {
        Some((path, _)) if *path == want_path => {}
        Some((path, _)) => {
            return Err(invalid(
                file,
                format!("the archive holds `{path}` where the manifest lists `{listed}`"),
            ))
        }
        None => {
            return Err(invalid(
                file,
                format!("`{listed}` is in the manifest but not in the archive"),
            ))
        }
    }
    loop {
        match archived.next().transpose()? {
            Some(next) if next.0 == want_path => got = Some(next),
            other => {
                *pending = other;
                break;
            }
        }
    }
    let (_, hash) = got.expect("checked above");
    Ok(hash)
}
