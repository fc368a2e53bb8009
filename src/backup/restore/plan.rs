//! Planning a restore before anything is written: which target and staging directory (refusing a
//! non-empty target without `--force`, clearing leftovers of killed restores), which entries are
//! wanted (`--path`), whether each entry is acceptable ([`TreeCheck`], shared with verification,
//! so a restore drill fails exactly when a restore would), and what metadata each entry gets once
//! privileges are taken away ([`clamp`]).
use std::collections::HashMap;
use std::fs;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use tar::EntryType;

use super::options::{invalid, Dropped, Keep, RestoreOptions};
use crate::backup::error::BackupError;
use crate::backup::manifest::RootMeta;

/// Names of the staging directories a restore makes inside its target.
const STAGING_PREFIX: &str = ".sidecar-restore-";

/// Where a restore writes: the target as found, and the private staging directory made in it.
pub(super) struct TargetPlan {
    /// The staging directory (0700, inside the target): everything is extracted here first.
    pub staging: PathBuf,
    /// The target's content before the restore (moved aside by `--force`).
    pub existing: Vec<fs::DirEntry>,
    /// Staging directories of killed restores that were removed (`--force`), to warn about.
    pub removed_leftovers: Vec<PathBuf>,
}

/// `--path` values as safe relative paths, or a refusal.
pub(super) fn selection(paths: &[PathBuf]) -> Result<Vec<PathBuf>, BackupError> {
    paths
        .iter()
        .map(|p| {
            safe_relative(p.as_os_str().as_bytes()).ok_or_else(|| {
                BackupError::Target(format!(
                    "--path {}: give a path relative to the backed-up directory, without `..`",
                    p.display()
                ))
            })
        })
        .collect()
}

/// Check (or create) the target, deal with what is in it, and make the staging directory.
pub(super) fn prepare_target(opts: &RestoreOptions) -> Result<TargetPlan, BackupError> {
    let target = &opts.target;
    ensure_target_dir(target)?;
    let (leftovers, existing): (Vec<_>, Vec<_>) = fs::read_dir(target)
        .map_err(|e| BackupError::io(format!("reading {}", target.display()), e))?
        .filter_map(|e| e.ok())
        .partition(|e| e.file_name().as_bytes().starts_with(STAGING_PREFIX.as_bytes()));
    let removed_leftovers = remove_leftovers(target, &leftovers, opts.force)?;
    if !existing.is_empty() && !opts.force && !opts.dry_run {
        return Err(BackupError::Target(format!(
            "{} is not empty ({} entries); restore into an empty directory, or pass --force to move the current content aside",
            target.display(),
            existing.len()
        )));
    }
    Ok(TargetPlan {
        staging: make_staging(target)?,
        existing,
        removed_leftovers,
    })
}

/// The target is a directory (created 0700 if missing), never a file or a symlink to one.
fn ensure_target_dir(target: &Path) -> Result<(), BackupError> {
    match fs::symlink_metadata(target) {
        Ok(md) if md.is_dir() => Ok(()),
        Ok(_) => Err(BackupError::Target(format!(
            "{}: exists and is not a directory",
            target.display()
        ))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => crate::fsutil::create_private_dir(target)
            .map_err(|e| BackupError::io(format!("creating {}", target.display()), e)),
        Err(e) => Err(BackupError::io(format!("restore target {}", target.display()), e)),
    }
}

/// Staging directories of a restore that was killed: refused like any content, removed by --force
/// (they hold nothing that was ever in place). Returns what was removed.
fn remove_leftovers(target: &Path, leftovers: &[fs::DirEntry], force: bool) -> Result<Vec<PathBuf>, BackupError> {
    if !leftovers.is_empty() && !force {
        return Err(BackupError::Target(format!(
            "{} holds {} left by an interrupted restore ({}); remove {} or pass --force",
            target.display(),
            if leftovers.len() == 1 {
                "a staging directory"
            } else {
                "staging directories"
            },
            leftovers
                .iter()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join(", "),
            if leftovers.len() == 1 { "it" } else { "them" },
        )));
    }
    let mut removed = Vec::new();
    for e in leftovers {
        let path = e.path();
        // Never through a symlink: a link named like a staging directory is removed itself.
        let result = match fs::symlink_metadata(&path) {
            Ok(md) if md.is_dir() => fs::remove_dir_all(&path),
            Ok(_) => fs::remove_file(&path),
            Err(e) => Err(e),
        };
        result.map_err(|err| BackupError::io(format!("removing the leftover {}", path.display()), err))?;
        removed.push(path);
    }
    Ok(removed)
}

/// A fresh, private (0700) staging directory with a random name inside the target.
fn make_staging(target: &Path) -> Result<PathBuf, BackupError> {
    let rnd = crate::fsutil::random_suffix().map_err(|e| BackupError::io("random name", e))?;
    let staging = target.join(format!("{STAGING_PREFIX}{rnd}"));
    fs::create_dir(&staging).map_err(|e| BackupError::io(format!("creating {}", staging.display()), e))?;
    fs::set_permissions(&staging, fs::Permissions::from_mode(0o700))
        .map_err(|e| BackupError::io(format!("chmod {}", staging.display()), e))?;
    Ok(staging)
}

/// The `--path` selection while the archive is read: which entries are wanted, and which paths
/// were found.
pub(super) struct Selection<'a> {
    paths: &'a [PathBuf],
    matched: Vec<bool>,
}

impl<'a> Selection<'a> {
    /// Select `paths` (empty: everything).
    pub(super) fn new(paths: &'a [PathBuf]) -> Self {
        Selection {
            paths,
            matched: vec![false; paths.len()],
        }
    }

    /// With --path: entries at or below a selected path, and the directories above one.
    pub(super) fn wants(&mut self, rel: &Path, kind: EntryType) -> bool {
        let mut wanted = self.paths.is_empty();
        for (i, s) in self.paths.iter().enumerate() {
            if rel.starts_with(s) {
                self.matched[i] = true;
                wanted = true;
            } else if kind == EntryType::Directory && s.starts_with(rel) {
                wanted = true;
            }
        }
        wanted
    }

    /// Every selected path was in the backup.
    pub(super) fn all_found(&self) -> Result<(), BackupError> {
        match self.matched.iter().position(|m| !m) {
            Some(i) => Err(BackupError::Target(format!(
                "--path {}: no such path in the backup (paths are relative to the backed-up directory)",
                self.paths[i].display()
            ))),
            None => Ok(()),
        }
    }
}

/// Extended attribute namespaces that grant privileges (file capabilities, security labels) or are
/// reserved to root: never restored unless [`Keep::privileges`].
const PRIVILEGED_XATTRS: [&str; 2] = ["security.", "trusted."];

/// Which entry metadata is for: one in the tree, or the backed-up directory itself (the target).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Position {
    /// An entry of the archive.
    Entry,
    /// The backed-up directory itself, which also loses world write (anyone could replace what is
    /// in it).
    TreeRoot,
}

/// Take away what `keep` does not allow from `meta`, noting it in `dropped`.
pub(super) fn clamp(meta: &mut Meta, keep: Keep, position: Position, dropped: &mut Dropped) {
    if keep.privileges {
        return;
    }
    let mut what = Vec::new();
    for (bit, name) in [(0o4000, "setuid bit"), (0o2000, "setgid bit"), (0o1000, "sticky bit")] {
        if meta.mode & bit != 0 {
            what.push(name.to_string());
        }
    }
    meta.mode &= 0o777;
    if position == Position::TreeRoot && meta.mode & 0o002 != 0 {
        what.push("world write".to_string());
        meta.mode &= !0o002;
    }
    meta.xattrs.retain(|(name, _)| {
        let privileged = PRIVILEGED_XATTRS.iter().any(|p| name.starts_with(p));
        if privileged {
            what.push(format!("xattr {name}"));
        }
        !privileged
    });
    dropped.note(&meta.rel, &what);
}

/// What a restored entry gets beyond its content: mode, owner, mtime and extended attributes.
pub(super) struct Meta {
    /// The entry's path in the tree (for messages).
    pub rel: PathBuf,
    /// Permission bits, with setuid, setgid and sticky unless [`clamp`]ed.
    pub mode: u32,
    /// Owner, given back only when running as root with [`Keep::owner`].
    pub uid: u64,
    /// Group, likewise.
    pub gid: u64,
    /// Modification time (nanoseconds from PAX, else the header's seconds).
    pub mtime: filetime::FileTime,
    /// Extended attributes, from `SCHILY.xattr.*` PAX records.
    pub xattrs: Vec<(String, Vec<u8>)>,
}

impl Meta {
    /// An archive entry's metadata, from its header and PAX records.
    pub(super) fn of_entry(rel: &Path, header: &tar::Header, entry: &mut tar::Entry<'_, impl Read>) -> Self {
        let (pax_mtime, xattrs) = pax_meta(entry);
        Meta {
            rel: rel.to_path_buf(),
            mode: header.mode().unwrap_or(0o600) & 0o7777,
            uid: header.uid().unwrap_or(0),
            gid: header.gid().unwrap_or(0),
            mtime: pax_mtime
                .unwrap_or_else(|| filetime::FileTime::from_unix_time(header.mtime().unwrap_or(0) as i64, 0)),
            xattrs,
        }
    }

    /// The backed-up directory's metadata, as the manifest records it.
    pub(super) fn of_root(m: &RootMeta) -> Self {
        Meta {
            rel: PathBuf::from("."),
            mode: m.mode,
            uid: m.uid.into(),
            gid: m.gid.into(),
            mtime: filetime::FileTime::from_unix_time(
                m.mtime_ns.div_euclid(1_000_000_000),
                m.mtime_ns.rem_euclid(1_000_000_000) as u32,
            ),
            xattrs: Vec::new(),
        }
    }
}

fn pax_meta(entry: &mut tar::Entry<'_, impl Read>) -> (Option<filetime::FileTime>, Vec<(String, Vec<u8>)>) {
    let mut mtime = None;
    let mut xattrs = Vec::new();
    if let Ok(Some(exts)) = entry.pax_extensions() {
        for ext in exts.flatten() {
            let Ok(key) = ext.key() else { continue };
            if key == "mtime" {
                if let Ok(v) = ext.value() {
                    let (s, ns) = v.split_once('.').unwrap_or((v, "0"));
                    let ns = format!("{ns:0<9}");
                    if let (Ok(s), Ok(ns)) = (s.parse::<i64>(), ns[..9].parse::<u32>()) {
                        mtime = Some(filetime::FileTime::from_unix_time(s, ns));
                    }
                }
            } else if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
                xattrs.push((name.to_string(), ext.value_bytes().to_vec()));
            }
        }
    }
    (mtime, xattrs)
}

/// The tree an archive builds, entry by entry, as far as its validity goes: what each path is. One
/// check for [`super::verify`] and [`super::restore`], so that a restore drill fails exactly when a restore would.
/// Memory: a 16-byte hash of each path and its kind (about 40 bytes per entry).
#[derive(Default)]
pub(super) struct TreeCheck {
    nodes: HashMap<[u8; 16], Node>,
    /// The parent of the last entry, already checked.
    last_parent: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Node {
    Dir,
    File,
    Symlink,
    Fifo,
}

impl Node {
    fn name(self) -> &'static str {
        match self {
            Node::Dir => "a directory",
            Node::File => "a file",
            Node::Symlink => "a symlink",
            Node::Fifo => "a named pipe",
        }
    }
}

impl TreeCheck {
    fn key(p: &Path) -> [u8; 16] {
        let h = blake3::hash(p.as_os_str().as_bytes());
        let mut k = [0u8; 16];
        k.copy_from_slice(&h.as_bytes()[..16]);
        k
    }

    /// Check entry `rel` of type `kind` against the entries before it, and record it.
    pub(super) fn add(
        &mut self,
        file: &str,
        rel: &Path,
        kind: EntryType,
        link: Option<&Path>,
    ) -> Result<(), BackupError> {
        let parent = rel
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(Path::to_path_buf);
        if parent.is_some() && parent != self.last_parent {
            for a in rel.ancestors().skip(1).filter(|a| !a.as_os_str().is_empty()) {
                match self.nodes.get(&Self::key(a)) {
                    Some(Node::Dir) => break, // its own ancestors were checked when it was added
                    Some(other) => {
                        return Err(invalid(
                            file,
                            format!(
                                "refused entry `{}`: a parent is not a directory (`{}` is {} from an earlier entry)",
                                rel.display(),
                                a.display(),
                                other.name()
                            ),
                        ))
                    }
                    None => {
                        self.nodes.insert(Self::key(a), Node::Dir);
                    }
                }
            }
        }
        self.last_parent = parent;
        let node = match kind {
            EntryType::Directory => Node::Dir,
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse | EntryType::Link => Node::File,
            EntryType::Symlink => Node::Symlink,
            EntryType::Fifo => Node::Fifo,
            other => return Err(unknown_entry(file, rel, other)),
        };
        if kind == EntryType::Link {
            let target = link.ok_or_else(|| hardlink_refused(file, rel))?;
            if target == rel || self.nodes.get(&Self::key(target)) != Some(&Node::File) {
                return Err(hardlink_refused(file, rel));
            }
        }
        let key = Self::key(rel);
        match (self.nodes.get(&key).copied(), node) {
            (None, _) | (Some(Node::Dir), Node::Dir) => {}
            (Some(Node::Dir), _) | (Some(_), Node::Dir) => {
                let before = self.nodes[&key];
                return Err(invalid(
                    file,
                    format!("`{}` is both {} and {}", rel.display(), before.name(), node.name()),
                ));
            }
            // A file stored twice (it changed while read), or replaced by another kind: the
            // later entry counts.
            (Some(_), _) => {}
        }
        self.nodes.insert(key, node);
        Ok(())
    }
}

/// A relative path of normal components only, else None.
pub(super) fn safe_relative(bytes: &[u8]) -> Option<PathBuf> {
    let p = Path::new(std::ffi::OsStr::from_bytes(bytes));
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            _ => return None,
        }
    }
    (!out.as_os_str().is_empty()).then_some(out)
}

/// The in-tree path a hardlink entry points to, or a refusal.
pub(super) fn hardlink_target(file: &str, header: &tar::Header, rel: &Path) -> Result<PathBuf, BackupError> {
    let target = header
        .link_name_bytes()
        .ok_or_else(|| invalid(file, format!("hardlink `{}` without a target", rel.display())))?;
    safe_relative(&target).ok_or_else(|| {
        invalid(
            file,
            format!("refused hardlink `{}`: its target leaves the tree", rel.display()),
        )
    })
}

pub(super) fn hardlink_refused(file: &str, rel: &Path) -> BackupError {
    invalid(
        file,
        format!(
            "refused hardlink `{}`: target is not a file restored before it",
            rel.display()
        ),
    )
}

pub(super) fn unknown_entry(file: &str, rel: &Path, kind: EntryType) -> BackupError {
    invalid(file, format!("refused entry `{}` of type {kind:?}", rel.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_relative_paths_are_safe() {
        assert_eq!(safe_relative(b"a/b"), Some(PathBuf::from("a/b")));
        assert_eq!(safe_relative(b"./a"), Some(PathBuf::from("a")));
        assert_eq!(safe_relative(b"../a"), None);
        assert_eq!(safe_relative(b"a/../../b"), None);
        assert_eq!(safe_relative(b"/etc/passwd"), None);
        assert_eq!(safe_relative(b""), None);
    }
}
