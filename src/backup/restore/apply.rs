//! Applying a restore: entries are written into the private staging directory (never through a
//! symlink, never over a directory, parents checked to be real directories), files hashed as they
//! are written, sparse runs left as holes; metadata goes on each entry as it lands, on directories
//! last (deepest first, so their mtimes and read-only modes hold); and at the end the staged tree
//! is synced and moved into place, the target's old content moved aside first with `--force`.
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::options::{invalid, Keep, RestoreSummary};
use super::plan::{clamp, hardlink_refused, Meta, Position, TargetPlan};
use crate::backup::error::BackupError;

/// Who owns restored entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Owner {
    /// The owners recorded in the backup (running as root, with [`Keep::owner`]).
    FromBackup,
    /// Whoever runs the restore.
    RestoringUser,
}

impl Owner {
    /// The owners a restore gives: those in the backup only as root with [`Keep::owner`].
    pub(super) fn for_restore(keep: Keep) -> Self {
        if is_root() && keep.owner {
            Owner::FromBackup
        } else {
            Owner::RestoringUser
        }
    }
}

/// The staging directory being filled, entry by entry.
pub(super) struct Staging<'a> {
    /// The directory.
    pub dir: &'a Path,
    /// Who owns what is written.
    pub owner: Owner,
    /// The parent of the last entry, already checked to be a real directory.
    last_parent: Option<PathBuf>,
    /// Directories written, whose metadata is applied at the end.
    dirs: Vec<Meta>,
}

impl<'a> Staging<'a> {
    /// Fill `dir`.
    pub(super) fn new(dir: &'a Path, owner: Owner) -> Self {
        Staging {
            dir,
            owner,
            last_parent: None,
            dirs: Vec::new(),
        }
    }

    /// Where entry `rel` goes, once its parents are real directories (created as needed).
    pub(super) fn slot(&mut self, file: &str, rel: &Path) -> Result<PathBuf, BackupError> {
        let dest = self.dir.join(rel);
        // Entries come in walk order, so consecutive ones share their parent: once checked to be
        // real directories, the same parents need no new check (in the private staging directory,
        // an existing directory is never replaced: later entries cannot turn it into a symlink).
        let parent = rel.parent().map(Path::to_path_buf);
        let known = parent.is_some() && parent == self.last_parent;
        (if known { Ok(()) } else { prepare_parents(self.dir, rel) }).map_err(|e| match e.kind() {
            io::ErrorKind::NotADirectory => invalid(
                file,
                format!(
                    "refused entry `{}`: a parent is not a directory (a symlink or file from an earlier entry), {e}",
                    rel.display()
                ),
            ),
            _ => BackupError::io(format!("restoring {}", dest.display()), e),
        })?;
        self.last_parent = parent;
        Ok(dest)
    }

    /// A directory: created unless it exists (as a directory); its metadata comes at the end.
    pub(super) fn dir(&mut self, file: &str, dest: &Path, meta: Meta) -> Result<(), BackupError> {
        match fs::symlink_metadata(dest) {
            Ok(md) if md.is_dir() => {}
            Ok(_) => {
                return Err(invalid(
                    file,
                    format!("`{}` is both a file and a directory", meta.rel.display()),
                ))
            }
            Err(_) => fs::create_dir(dest).map_err(|e| ioerr("creating", dest, e))?,
        }
        self.dirs.push(meta);
        Ok(())
    }

    /// A regular file: created new (0600), filled from `entry`, then given its metadata through the
    /// open handle. Returns the content's BLAKE3 hash and length.
    pub(super) fn file(
        &self,
        file: &str,
        entry: &mut impl Read,
        dest: &Path,
        meta: &Meta,
        scratch: &mut [u8],
        summary: &mut RestoreSummary,
    ) -> Result<(String, u64), BackupError> {
        clear_slot(dest).map_err(|e| ioerr("replacing", dest, e))?;
        let mut out = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(dest)
            .map_err(|e| ioerr("creating", dest, e))?;
        let hashed = hash_entry(entry, Some(&mut out), scratch).map_err(|e| match e {
            CopyError::Read(e) => invalid(file, format!("damaged or truncated ({e})")),
            CopyError::Write(e) => ioerr("writing", dest, e),
        })?;
        // Through the open file: no path lookups, and nothing else can be reached.
        apply_file_meta(&out, dest, meta, self.owner, summary)?;
        Ok(hashed)
    }

    /// A symlink, pointing wherever the backup says (it is never followed by the restore).
    pub(super) fn symlink(
        &self,
        file: &str,
        header: &tar::Header,
        dest: &Path,
        meta: &Meta,
        summary: &mut RestoreSummary,
    ) -> Result<(), BackupError> {
        let target = header
            .link_name_bytes()
            .ok_or_else(|| invalid(file, format!("symlink `{}` without a target", meta.rel.display())))?;
        clear_slot(dest).map_err(|e| ioerr("replacing", dest, e))?;
        std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(&target), dest)
            .map_err(|e| ioerr("creating symlink", dest, e))?;
        apply_meta(dest, meta, self.owner, Special::Symlink, summary)
    }

    /// A hardlink to a regular file restored before it, in the tree.
    pub(super) fn hardlink(&self, file: &str, rel: &Path, link: Option<&Path>, dest: &Path) -> Result<(), BackupError> {
        let Some(target_rel) = link else {
            return Err(hardlink_refused(file, rel));
        };
        let src = self.dir.join(target_rel);
        match fs::symlink_metadata(&src) {
            Ok(md) if md.is_file() => {}
            _ => return Err(hardlink_refused(file, rel)),
        }
        clear_slot(dest).map_err(|e| ioerr("replacing", dest, e))?;
        fs::hard_link(&src, dest).map_err(|e| ioerr("linking", dest, e))
    }

    /// A named pipe (made 0600, then given its metadata without being opened).
    pub(super) fn fifo(&self, dest: &Path, meta: &Meta, summary: &mut RestoreSummary) -> Result<(), BackupError> {
        clear_slot(dest).map_err(|e| ioerr("replacing", dest, e))?;
        rustix::fs::mknodat(
            rustix::fs::CWD,
            dest,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .map_err(|e| ioerr("creating named pipe", dest, e.into()))?;
        apply_meta(dest, meta, self.owner, Special::Fifo, summary)
    }

    /// Directories last, deepest first, so that their mtimes and read-only modes hold.
    pub(super) fn finish(mut self, summary: &mut RestoreSummary) -> Result<(), BackupError> {
        self.dirs.sort_by_key(|d| std::cmp::Reverse(d.rel.components().count()));
        for d in &self.dirs {
            apply_meta(&self.dir.join(&d.rel), d, self.owner, Special::No, summary)?;
        }
        Ok(())
    }
}

fn ioerr(what: &str, dest: &Path, e: io::Error) -> BackupError {
    BackupError::io(format!("{what} {}", dest.display()), e)
}

/// Move the staged tree into `target`: its old content aside first (`--force`), one syncfs so
/// that everything is on disk before anything is moved, then each top-level entry renamed.
pub(super) fn move_into_place(
    target: &Path,
    plan: &TargetPlan,
    summary: &mut RestoreSummary,
) -> Result<(), BackupError> {
    let staging = &plan.staging;
    if !plan.existing.is_empty() {
        let aside = target.join(format!(
            ".sidecar-replaced-{}",
            crate::timefmt::stamp(std::time::SystemTime::now())
        ));
        fs::create_dir(&aside).map_err(|e| BackupError::io(format!("creating {}", aside.display()), e))?;
        for e in &plan.existing {
            fs::rename(e.path(), aside.join(e.file_name()))
                .map_err(|err| BackupError::io(format!("moving {} aside", e.path().display()), err))?;
        }
        summary.moved_aside = Some(aside);
    }
    // One syncfs for the whole tree (per-file fsync made small-file restores several times slower):
    // everything is on disk before anything is moved into place.
    let fs_handle = File::open(staging).map_err(|e| BackupError::io(format!("opening {}", staging.display()), e))?;
    rustix::fs::syncfs(&fs_handle).map_err(|e| BackupError::io(format!("syncfs {}", staging.display()), e.into()))?;
    let children: Vec<_> = fs::read_dir(staging)
        .map_err(|e| BackupError::io(format!("reading {}", staging.display()), e))?
        .filter_map(|e| e.ok())
        .collect();
    for c in children {
        fs::rename(c.path(), target.join(c.file_name()))
            .map_err(|e| BackupError::io(format!("moving {} into place", c.path().display()), e))?;
    }
    fs::remove_dir(staging).map_err(|e| BackupError::io(format!("removing {}", staging.display()), e))
}

/// A full restore gives the target the backed-up directory's owner, mode and mtime: a volume
/// restored into a fresh (root-owned) mount point is again writable by its service.
pub(super) fn root_meta(target: &Path, keep: Keep, summary: &mut RestoreSummary) {
    let Some(m) = summary.root else { return };
    let mut meta = Meta::of_root(&m);
    clamp(&mut meta, keep, Position::TreeRoot, &mut summary.dropped);
    // Everything is in place by now: a target that cannot take them (not ours, no root) is a
    // warning, not a failed restore.
    if let Err(e) = apply_meta(target, &meta, Owner::for_restore(keep), Special::No, summary) {
        summary
            .warnings
            .push(format!("owner and mode of {} not restored: {e}", target.display()));
    }
}

/// Create the parents of `rel` under `root`, refusing any existing ancestor that is not a real directory.
fn prepare_parents(root: &Path, rel: &Path) -> io::Result<()> {
    let mut cur = root.to_path_buf();
    let parents: Vec<_> = rel.parent().map(|p| p.components().collect()).unwrap_or_default();
    for c in parents {
        cur.push(c);
        match fs::symlink_metadata(&cur) {
            Ok(md) if md.is_dir() => {}
            Ok(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::NotADirectory,
                    format!("{} is not a directory", cur.display()),
                ))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => fs::create_dir(&cur)?,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Remove what an earlier entry put at `dest` (a file stored twice), never following a symlink.
fn clear_slot(dest: &Path) -> io::Result<()> {
    match fs::symlink_metadata(dest) {
        Ok(md) if md.is_dir() => Ok(()),
        Ok(_) => fs::remove_file(dest),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Where copying an entry failed: the backup, or the restored file.
pub(super) enum CopyError {
    /// Reading the entry (the backup is damaged).
    Read(io::Error),
    /// Writing the restored file.
    Write(io::Error),
}

impl CopyError {
    pub(super) fn into_backup_error(self, file: &str) -> BackupError {
        match self {
            CopyError::Read(e) => invalid(file, format!("damaged or truncated ({e})")),
            CopyError::Write(e) => BackupError::io("writing", e),
        }
    }
}

/// Blocks of zeros this large are left as holes when restoring (like `cp --sparse=auto`).
const HOLE_BLOCK: usize = 4096;

/// BLAKE3 hash and length of an entry's content, copied to `out` when given. Whole blocks of zeros are
/// skipped with a seek, so sparse files come back sparse.
pub(super) fn hash_entry(
    entry: &mut impl Read,
    mut out: Option<&mut File>,
    buf: &mut [u8],
) -> Result<(String, u64), CopyError> {
    use std::io::Seek;
    let mut hasher = blake3::Hasher::new();
    let mut total = 0u64;
    let mut hole_at_end = false;
    loop {
        let n = read_full(entry, buf).map_err(CopyError::Read)?;
        if n == 0 {
            if let (Some(out), true) = (out.as_mut(), hole_at_end) {
                out.set_len(total).map_err(CopyError::Write)?;
            }
            return Ok((hasher.finalize().to_hex().to_string(), total));
        }
        hasher.update(&buf[..n]);
        if let Some(out) = out.as_mut() {
            // Runs of data blocks are written with one call, runs of zero blocks skipped.
            let data = &buf[..n];
            let mut at = 0;
            while at < n {
                let zero = |i: usize| i + HOLE_BLOCK <= n && data[i..i + HOLE_BLOCK].iter().all(|&b| b == 0);
                let mut end = at;
                if zero(at) {
                    while end < n && zero(end) {
                        end += HOLE_BLOCK;
                    }
                    out.seek(io::SeekFrom::Current((end - at) as i64))
                        .map_err(CopyError::Write)?;
                    hole_at_end = true;
                } else {
                    while end < n && !zero(end) {
                        end = (end + HOLE_BLOCK).min(n);
                    }
                    out.write_all(&data[at..end]).map_err(CopyError::Write)?;
                    hole_at_end = false;
                }
                at = end;
            }
        }
        total += n as u64;
    }
}

/// Read until `buf` is full or the end (so hole detection sees whole blocks).
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Owner, xattrs, mode and mtime of a restored regular file, set through its open handle.
pub(super) fn apply_file_meta(
    file: &File,
    dest: &Path,
    meta: &Meta,
    owner: Owner,
    summary: &mut RestoreSummary,
) -> Result<(), BackupError> {
    use xattr::FileExt as _;
    let ioerr = |what: &str, e: io::Error| BackupError::io(format!("{what} {}", dest.display()), e);
    if owner == Owner::FromBackup {
        std::os::unix::fs::fchown(file, Some(meta.uid as u32), Some(meta.gid as u32)).map_err(|e| ioerr("chown", e))?;
    }
    for (name, value) in &meta.xattrs {
        if let Err(e) = file.set_xattr(name, value) {
            summary
                .warnings
                .push(format!("xattr {name} on {}: {e}", meta.rel.display()));
        }
    }
    file.set_permissions(fs::Permissions::from_mode(meta.mode))
        .map_err(|e| ioerr("chmod", e))?;
    filetime::set_file_handle_times(file, Some(meta.mtime), Some(meta.mtime)).map_err(|e| ioerr("setting times of", e))
}

/// What `apply_meta` must not do to an entry: follow a symlink, or open a named pipe (which blocks).
#[derive(PartialEq, Eq, Clone, Copy)]
pub(super) enum Special {
    /// A directory or regular file.
    No,
    /// A symlink: only owner and times, on the link itself.
    Symlink,
    /// A named pipe: times on the path.
    Fifo,
}

/// Owner, xattrs, mode and mtime of a restored entry, set by path (never following a symlink,
/// never opening a named pipe).
pub(super) fn apply_meta(
    dest: &Path,
    meta: &Meta,
    owner: Owner,
    special: Special,
    summary: &mut RestoreSummary,
) -> Result<(), BackupError> {
    let ioerr = |what: &str, e: io::Error| BackupError::io(format!("{what} {}", dest.display()), e);
    if owner == Owner::FromBackup {
        std::os::unix::fs::lchown(dest, Some(meta.uid as u32), Some(meta.gid as u32)).map_err(|e| ioerr("chown", e))?;
    }
    if special == Special::Symlink {
        filetime::set_symlink_file_times(dest, meta.mtime, meta.mtime).map_err(|e| ioerr("setting times of", e))?;
        return Ok(());
    }
    for (name, value) in &meta.xattrs {
        if let Err(e) = xattr::set(dest, name, value) {
            summary
                .warnings
                .push(format!("xattr {name} on {}: {e}", meta.rel.display()));
        }
    }
    fs::set_permissions(dest, fs::Permissions::from_mode(meta.mode)).map_err(|e| ioerr("chmod", e))?;
    if special == Special::Fifo {
        // utimensat on the path itself: opening a pipe would wait for a writer.
        filetime::set_symlink_file_times(dest, meta.mtime, meta.mtime).map_err(|e| ioerr("setting times of", e))?;
    } else {
        filetime::set_file_times(dest, meta.mtime, meta.mtime).map_err(|e| ioerr("setting times of", e))?;
    }
    Ok(())
}

/// Running as root (ownership can be restored)? `/proc/self` belongs to the effective uid.
pub(super) fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false)
}
