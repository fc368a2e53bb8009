//! Reading a whole backup, entry by entry, and handing each to the plan and then to the staging
//! directory: collect (path, type, link, metadata) → plan (refuse what is hostile, select, clamp
//! privileges) → apply (write into staging, or only hash when verifying or not selected). At the
//! end the spooled hashes are checked against the manifest and directories get their metadata.
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tar::EntryType;

use super::apply::{hash_entry, Owner, Staging};
use super::check::{self, HashSpool};
use super::options::{invalid, Keep, RestoreSummary};
use super::plan::{clamp, hardlink_target, safe_relative, unknown_entry, Meta, Position, Selection, TreeCheck};
use super::stream::{open_archive, Identities, ReadAhead};
use crate::backup::catalog::BackupRef;
use crate::backup::error::BackupError;
use crate::backup::manifest::MANIFEST_NAME;
use crate::backup::progress::Progress;

/// What to read, and where to write it.
pub(super) struct ExtractOptions<'a> {
    /// The backup.
    pub backup: &'a BackupRef,
    /// The identity file (named in messages).
    pub identity_path: &'a Path,
    /// Its identities.
    pub identities: &'a Identities,
    /// Where the tree is extracted; `None`: nothing is written (verification).
    pub staging: Option<&'a Path>,
    /// `--path` selection (empty: everything).
    pub select: &'a [PathBuf],
    /// Counters.
    pub progress: &'a Option<Arc<Progress>>,
    /// What to take beyond content.
    pub keep: Keep,
}

/// One archive entry, checked and planned.
struct Planned {
    rel: PathBuf,
    header: tar::Header,
    kind: EntryType,
    /// A hardlink's in-tree target.
    link: Option<PathBuf>,
    meta: Meta,
}

/// The state of one pass over the archive.
struct Extraction<'a> {
    /// The backup's location, for messages.
    file: &'a str,
    keep: Keep,
    progress: &'a Option<Arc<Progress>>,
    tree: TreeCheck,
    select: Selection<'a>,
    staging: Option<Staging<'a>>,
    summary: RestoreSummary,
    hashes: HashSpool,
    /// The manifest, spooled once its entry (the last) is read.
    manifest: Option<tempfile::NamedTempFile>,
    /// One copy buffer for every entry (zeroing a fresh one per file dominated small-file restores).
    scratch: Vec<u8>,
}

/// Decrypt and read the whole backup, checking every entry and every file hash against the manifest.
/// With `staging`, the tree is extracted there; without, nothing is written (verification).
pub(super) fn extract(opts: &ExtractOptions<'_>) -> Result<RestoreSummary, BackupError> {
    let label = opts.backup.label();
    let mut archive = open_archive(opts.backup, opts.identity_path, opts.identities, opts.progress)?;
    let mut x = Extraction {
        file: &label,
        keep: opts.keep,
        progress: opts.progress,
        tree: TreeCheck::default(),
        select: Selection::new(opts.select),
        staging: opts.staging.map(|dir| Staging::new(dir, Owner::for_restore(opts.keep))),
        summary: RestoreSummary::default(),
        hashes: HashSpool::new()?,
        manifest: None,
        scratch: vec![0u8; 256 << 10],
    };
    let entries = archive.entries().map_err(|e| x.corrupt(e))?;
    for entry in entries {
        let entry = entry.map_err(|e| x.corrupt(e))?;
        x.entry(entry)?;
    }
    x.finish()
}

impl Extraction<'_> {
    /// Content errors (corruption, truncation) surface as I/O errors from the decrypting reader.
    fn corrupt(&self, e: io::Error) -> BackupError {
        invalid(self.file, format!("damaged or truncated ({e})"))
    }

    /// One archive entry: the manifest is spooled; anything else is checked, planned and applied.
    fn entry(&mut self, mut entry: tar::Entry<'_, ReadAhead>) -> Result<(), BackupError> {
        if self.manifest.is_some() {
            return Err(invalid(
                self.file,
                "entries after the manifest (not written by sidecar?)",
            ));
        }
        let raw_path = entry.path_bytes().into_owned();
        let Some(rel) = safe_relative(&raw_path) else {
            return Err(invalid(
                self.file,
                format!(
                    "refused entry `{}`: absolute path or `..` component",
                    String::from_utf8_lossy(&raw_path)
                ),
            ));
        };
        let header = entry.header().clone();
        let kind = header.entry_type();
        if rel == Path::new(MANIFEST_NAME) && kind == EntryType::Regular {
            let mut spool = tempfile::NamedTempFile::new().map_err(|e| BackupError::temp("manifest spool", e))?;
            io::copy(&mut entry, &mut spool).map_err(|e| self.corrupt(e))?;
            self.manifest = Some(spool);
            return Ok(());
        }
        let (planned, wanted) = self.plan(rel, header, &mut entry)?;
        if wanted && self.staging.is_some() {
            self.write(planned, &mut entry)?;
        } else {
            // Verification only (or not selected): hash contents, check links, write nothing.
            self.hash_only(&planned, &mut entry)?;
        }
        self.summary.entries += 1;
        Ok(())
    }

    /// Refuse what is hostile (device files, links out of the tree, a path through a non-directory),
    /// take the entry's metadata, decide whether it is selected, and clamp its privileges.
    fn plan(
        &mut self,
        rel: PathBuf,
        header: tar::Header,
        entry: &mut tar::Entry<'_, ReadAhead>,
    ) -> Result<(Planned, bool), BackupError> {
        let kind = header.entry_type();
        if matches!(kind, EntryType::Char | EntryType::Block) {
            return Err(invalid(self.file, format!("refused device file `{}`", rel.display())));
        }
        let link = match kind {
            EntryType::Link => Some(hardlink_target(self.file, &header, &rel)?),
            _ => None,
        };
        self.tree.add(self.file, &rel, kind, link.as_deref())?;
        let mut meta = Meta::of_entry(&rel, &header, entry);
        let wanted = self.select.wants(&rel, kind);
        // (Hardlinks carry no metadata of their own.) Verification reports what a restore would drop.
        if wanted && kind != EntryType::Link {
            clamp(&mut meta, self.keep, Position::Entry, &mut self.summary.dropped);
        }
        let planned = Planned {
            rel,
            header,
            kind,
            link,
            meta,
        };
        Ok((planned, wanted))
    }

    /// Read an entry without writing it: files are hashed for the manifest check.
    fn hash_only(&mut self, p: &Planned, entry: &mut impl Read) -> Result<(), BackupError> {
        match p.kind {
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                let (hash, n) =
                    hash_entry(entry, None, &mut self.scratch).map_err(|e| e.into_backup_error(self.file))?;
                self.hashes.record(&p.rel, hash)?;
                self.summary.bytes += n;
            }
            EntryType::Directory | EntryType::Symlink | EntryType::Fifo | EntryType::Link => {}
            other => return Err(unknown_entry(self.file, &p.rel, other)),
        }
        Ok(())
    }

    /// Write an entry into the staging directory, by kind.
    fn write(&mut self, p: Planned, entry: &mut impl Read) -> Result<(), BackupError> {
        let file = self.file;
        let staging = self.staging.as_mut().expect("checked by the caller");
        let dest = staging.slot(file, &p.rel)?;
        match p.kind {
            EntryType::Directory => staging.dir(file, &dest, p.meta)?,
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                let (hash, n) = staging.file(file, entry, &dest, &p.meta, &mut self.scratch, &mut self.summary)?;
                self.hashes.record(&p.rel, hash)?;
                self.summary.bytes += n;
                Progress::add(self.progress, 0, 1);
            }
            EntryType::Symlink => staging.symlink(file, &p.header, &dest, &p.meta, &mut self.summary)?,
            EntryType::Link => staging.hardlink(file, &p.rel, p.link.as_deref(), &dest)?,
            EntryType::Fifo => staging.fifo(&dest, &p.meta, &mut self.summary)?,
            other => return Err(unknown_entry(file, &p.rel, other)),
        }
        Ok(())
    }

    /// After the last entry: the manifest check, the selection check, directory metadata.
    fn finish(mut self) -> Result<RestoreSummary, BackupError> {
        // The manifest is the last entry: its absence means truncation (or not a sidecar backup).
        let Some(spool) = self.manifest.take() else {
            return Err(invalid(
                self.file,
                "no manifest at the end: the backup is truncated or was not written by sidecar",
            ));
        };
        check::against_manifest(self.file, self.hashes, &spool, &mut self.summary)?;
        self.select.all_found()?;
        if let Some(staging) = self.staging {
            staging.finish(&mut self.summary)?;
        }
        Ok(self.summary)
    }
}
