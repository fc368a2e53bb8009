//! Restoring a backup: decrypt, decompress and extract into a staging directory inside the target,
//! check every file against the manifest, and only then move the result into place. Hostile entries
//! (`..`, absolute paths, device files, hardlinks out of the tree) are refused, nothing is ever
//! written through a symlink, and a failed restore leaves the target as it was.
//!
//! A backup is input from outside the moment it leaves the host: unless asked to, a restore gives
//! no privileges back (setuid, setgid and sticky bits, `security.*` and `trusted.*` extended
//! attributes such as file capabilities), and [`verify`] refuses exactly what a restore refuses (one
//! [`TreeCheck`] for both).
use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use tar::EntryType;

use super::manifest::{Kind, Line, MANIFEST_NAME, MANIFEST_VERSION};
use super::BackupError;

/// Restore options.
#[derive(Debug)]
pub struct RestoreOptions {
    /// The backup.
    pub backup: super::BackupRef,
    /// Identity file (age or SSH private key).
    pub identity: PathBuf,
    /// Target directory (created if missing; must be empty unless `force`).
    pub target: PathBuf,
    /// Move existing content of the target aside instead of refusing.
    pub force: bool,
    /// Decrypt and check everything, extract into staging, then discard instead of moving into place.
    pub dry_run: bool,
    /// Restore only these paths (relative to the backed-up directory) and what is below them; empty:
    /// everything. The whole backup is still read and checked against the manifest.
    pub paths: Vec<PathBuf>,
    /// Counters: backup bytes read, files restored.
    pub progress: Option<std::sync::Arc<super::Progress>>,
    /// What to take from the backup beyond content, names and permissions.
    pub keep: Keep,
}

/// What a restore takes from a backup beyond content, names and plain permissions.
#[derive(Debug, Clone, Copy)]
pub struct Keep {
    /// Setuid, setgid and sticky bits, `security.*` and `trusted.*` extended attributes (file
    /// capabilities, SELinux labels), and a world-writable root: dropped unless set
    /// (`--preserve-privileges`).
    pub privileges: bool,
    /// Owners and groups, when running as root (like `tar --same-owner`); else everything belongs to
    /// whoever runs the restore (`--no-same-owner`).
    pub owner: bool,
}

impl Default for Keep {
    fn default() -> Self {
        Keep {
            privileges: false,
            owner: true,
        }
    }
}

/// Counts the backup bytes read into the progress counters.
struct CountingReader<R> {
    inner: R,
    progress: Option<std::sync::Arc<super::Progress>>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        super::Progress::add(&self.progress, n as u64, 0);
        Ok(n)
    }
}

/// Reads `inner` on a thread of its own, up to `DEPTH` chunks ahead: decryption and decompression
/// run on one core while the caller parses, hashes and writes on another (as in `age -d | zstd -d |
/// tar -x`). Memory stays bounded by the chunks in flight.
struct ReadAhead {
    rx: std::sync::mpsc::Receiver<io::Result<Vec<u8>>>,
    chunk: Vec<u8>,
    pos: usize,
}

impl ReadAhead {
    const CHUNK: usize = 1 << 20;
    const DEPTH: usize = 4;

    fn spawn(mut inner: impl Read + Send + 'static) -> io::Result<Self> {
        let (tx, rx) = std::sync::mpsc::sync_channel(Self::DEPTH);
        std::thread::Builder::new()
            .name("sidecar-restore-read".into())
            .spawn(move || loop {
                let mut buf = vec![0u8; Self::CHUNK];
                let mut filled = 0;
                let result = loop {
                    match inner.read(&mut buf[filled..]) {
                        Ok(0) => break Ok(()),
                        Ok(n) => {
                            filled += n;
                            if filled == buf.len() {
                                break Ok(());
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => break Err(e),
                    }
                };
                buf.truncate(filled);
                let end = filled < Self::CHUNK;
                if filled > 0 && tx.send(Ok(buf)).is_err() {
                    return; // the reader is gone (restore failed): stop
                }
                if let Err(e) = result {
                    let _ = tx.send(Err(e));
                    return;
                }
                if end {
                    return; // dropping tx is the end of the stream
                }
            })?;
        Ok(ReadAhead {
            rx,
            chunk: Vec::new(),
            pos: 0,
        })
    }
}

impl Read for ReadAhead {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.chunk.len() {
            match self.rx.recv() {
                Ok(Ok(c)) => {
                    self.chunk = c;
                    self.pos = 0;
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(0),
            }
        }
        let n = out.len().min(self.chunk.len() - self.pos);
        out[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// What a restore did.
#[derive(Debug, Default)]
pub struct RestoreSummary {
    /// Entries restored.
    pub entries: u64,
    /// Regular files restored, all matching their manifest hash.
    pub files: u64,
    /// Bytes of file content.
    pub bytes: u64,
    /// Where the target's previous content was moved (`--force`).
    pub moved_aside: Option<PathBuf>,
    /// Warnings (entries not restorable here, e.g. ownership without root).
    pub warnings: Vec<String>,
    /// Owner, mode and mtime of the backed-up directory, from the manifest (given to the target by a
    /// full restore).
    pub root: Option<super::manifest::RootMeta>,
    /// Privileges the backup asked for and the restore did not give (see [`Keep::privileges`]).
    pub dropped: Dropped,
}

/// Privileges left out of a restore: a count, and the first [`Dropped::SHOWN`] as `path: what`.
#[derive(Debug, Default)]
pub struct Dropped {
    /// Entries that lost something.
    pub entries: u64,
    /// The first of them, `` `path`: setuid bit, xattr security.capability ``.
    pub examples: Vec<String>,
}

impl Dropped {
    /// Examples kept (the count goes on).
    pub const SHOWN: usize = 20;

    fn note(&mut self, rel: &Path, what: &[String]) {
        if what.is_empty() {
            return;
        }
        self.entries += 1;
        if self.examples.len() < Self::SHOWN {
            self.examples.push(format!("`{}`: {}", rel.display(), what.join(", ")));
        }
    }
}

/// Extended attribute namespaces that grant privileges (file capabilities, security labels) or are
/// reserved to root: never restored unless [`Keep::privileges`].
const PRIVILEGED_XATTRS: [&str; 2] = ["security.", "trusted."];

/// Take away what `keep` does not allow from `meta`, noting it in `dropped`. `root`: the backed-up
/// directory itself, which also loses world write (anyone could replace what is in it).
fn clamp(meta: &mut Meta, keep: Keep, root: bool, dropped: &mut Dropped) {
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
    if root && meta.mode & 0o002 != 0 {
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

/// The tree an archive builds, entry by entry, as far as its validity goes: what each path is. One
/// check for [`verify`] and [`restore`], so that a restore drill fails exactly when a restore would.
/// Memory: a 16-byte hash of each path and its kind (about 40 bytes per entry).
#[derive(Default)]
struct TreeCheck {
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
    fn add(&mut self, file: &str, rel: &Path, kind: EntryType, link: Option<&Path>) -> Result<(), BackupError> {
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

fn invalid(file: &str, problem: impl Into<String>) -> BackupError {
    BackupError::Invalid {
        file: file.to_string(),
        problem: problem.into(),
    }
}

/// A relative path of normal components only, else None.
fn safe_relative(bytes: &[u8]) -> Option<PathBuf> {
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

struct Meta {
    rel: PathBuf,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: filetime::FileTime,
    xattrs: Vec<(String, Vec<u8>)>,
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

/// Running as root (ownership can be restored)? `/proc/self` belongs to the effective uid.
fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false)
}

/// Names of the staging directories a restore makes inside its target.
const STAGING_PREFIX: &str = ".sidecar-restore-";

/// Restore `opts.backup` into `opts.target`.
pub fn restore(opts: &RestoreOptions) -> Result<RestoreSummary, BackupError> {
    let identities = super::crypto::read_identities(&opts.identity)?;
    let selection = opts
        .paths
        .iter()
        .map(|p| {
            safe_relative(p.as_os_str().as_bytes()).ok_or_else(|| {
                BackupError::Target(format!(
                    "--path {}: give a path relative to the backed-up directory, without `..`",
                    p.display()
                ))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let target = &opts.target;
    match fs::symlink_metadata(target) {
        Ok(md) if md.is_dir() => {}
        Ok(_) => {
            return Err(BackupError::Target(format!(
                "{}: exists and is not a directory",
                target.display()
            )))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => crate::fsutil::create_private_dir(target)
            .map_err(|e| BackupError::io(format!("creating {}", target.display()), e))?,
        Err(e) => return Err(BackupError::io(format!("restore target {}", target.display()), e)),
    }
    let (leftovers, existing): (Vec<_>, Vec<_>) = fs::read_dir(target)
        .map_err(|e| BackupError::io(format!("reading {}", target.display()), e))?
        .filter_map(|e| e.ok())
        .partition(|e| e.file_name().as_bytes().starts_with(STAGING_PREFIX.as_bytes()));
    // Staging directories of a restore that was killed: refused like any content, removed by --force
    // (they hold nothing that was ever in place).
    if !leftovers.is_empty() && !opts.force {
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
    let mut removed_leftovers = Vec::new();
    for e in &leftovers {
        let path = e.path();
        // Never through a symlink: a link named like a staging directory is removed itself.
        let removed = match fs::symlink_metadata(&path) {
            Ok(md) if md.is_dir() => fs::remove_dir_all(&path),
            Ok(_) => fs::remove_file(&path),
            Err(e) => Err(e),
        };
        removed.map_err(|err| BackupError::io(format!("removing the leftover {}", path.display()), err))?;
        removed_leftovers.push(path);
    }
    if !existing.is_empty() && !opts.force && !opts.dry_run {
        return Err(BackupError::Target(format!(
            "{} is not empty ({} entries); restore into an empty directory, or pass --force to move the current content aside",
            target.display(),
            existing.len()
        )));
    }
    let mut rnd = [0u8; 6];
    getrandom::fill(&mut rnd).map_err(|e| BackupError::io("random name", io::Error::other(e.to_string())))?;
    let staging = target.join(format!("{STAGING_PREFIX}{}", hex::encode(rnd)));
    fs::create_dir(&staging).map_err(|e| BackupError::io(format!("creating {}", staging.display()), e))?;
    fs::set_permissions(&staging, fs::Permissions::from_mode(0o700))
        .map_err(|e| BackupError::io(format!("chmod {}", staging.display()), e))?;
    let result = extract(
        &opts.backup,
        &opts.identity,
        &identities,
        Some(&staging),
        &selection,
        &opts.progress,
        opts.keep,
    );
    let mut summary = match result {
        Ok(mut s) => {
            for p in removed_leftovers {
                s.warnings
                    .push(format!("removed {}, left by an interrupted restore", p.display()));
            }
            s
        }
        Err(e) => {
            let _ = fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    if opts.dry_run {
        let _ = fs::remove_dir_all(&staging);
        return Ok(summary);
    }
    if !existing.is_empty() {
        let aside = target.join(format!(
            ".sidecar-replaced-{}",
            super::stamp(std::time::SystemTime::now())
        ));
        fs::create_dir(&aside).map_err(|e| BackupError::io(format!("creating {}", aside.display()), e))?;
        for e in &existing {
            fs::rename(e.path(), aside.join(e.file_name()))
                .map_err(|err| BackupError::io(format!("moving {} aside", e.path().display()), err))?;
        }
        summary.moved_aside = Some(aside);
    }
    // One syncfs for the whole tree (per-file fsync made small-file restores several times slower):
    // everything is on disk before anything is moved into place.
    let fs_handle = File::open(&staging).map_err(|e| BackupError::io(format!("opening {}", staging.display()), e))?;
    rustix::fs::syncfs(&fs_handle).map_err(|e| BackupError::io(format!("syncfs {}", staging.display()), e.into()))?;
    let children: Vec<_> = fs::read_dir(&staging)
        .map_err(|e| BackupError::io(format!("reading {}", staging.display()), e))?
        .filter_map(|e| e.ok())
        .collect();
    for c in children {
        fs::rename(c.path(), target.join(c.file_name()))
            .map_err(|e| BackupError::io(format!("moving {} into place", c.path().display()), e))?;
    }
    fs::remove_dir(&staging).map_err(|e| BackupError::io(format!("removing {}", staging.display()), e))?;
    // A full restore gives the target the backed-up directory's owner, mode and mtime: a volume
    // restored into a fresh (root-owned) mount point is again writable by its service.
    if let (Some(m), true) = (summary.root, selection.is_empty()) {
        let mut meta = Meta {
            rel: PathBuf::from("."),
            mode: m.mode,
            uid: m.uid.into(),
            gid: m.gid.into(),
            mtime: filetime::FileTime::from_unix_time(
                m.mtime_ns.div_euclid(1_000_000_000),
                m.mtime_ns.rem_euclid(1_000_000_000) as u32,
            ),
            xattrs: Vec::new(),
        };
        clamp(&mut meta, opts.keep, true, &mut summary.dropped);
        // Everything is in place by now: a target that cannot take them (not ours, no root) is a
        // warning, not a failed restore.
        if let Err(e) = apply_meta(target, &meta, is_root() && opts.keep.owner, Special::No, &mut summary) {
            summary
                .warnings
                .push(format!("owner and mode of {} not restored: {e}", target.display()));
        }
    }
    File::open(target)
        .and_then(|d| d.sync_all())
        .map_err(|e| BackupError::io(format!("fsync {}", target.display()), e))?;
    Ok(summary)
}

/// Decrypt and read the whole backup, checking every entry and every file hash against the manifest.
/// With `staging`, the tree is extracted there; without, nothing is written (verification).
fn extract(
    backup: &super::BackupRef,
    identity_path: &Path,
    identities: &[Box<dyn age::Identity + Send + Sync>],
    staging: Option<&Path>,
    select: &[PathBuf],
    progress: &Option<std::sync::Arc<super::Progress>>,
    keep: Keep,
) -> Result<RestoreSummary, BackupError> {
    let mut matched = vec![false; select.len()];
    let label = backup.label();
    let file_path = label.as_str();
    let file = backup.store.open(&backup.name)?;
    let file = CountingReader {
        inner: file,
        progress: progress.clone(),
    };
    let decryptor = age::Decryptor::new_buffered(BufReader::with_capacity(1 << 20, file)).map_err(|e| {
        invalid(
            file_path,
            format!("not a readable age file ({e}); is this a sidecar backup?"),
        )
    })?;
    let plain = decryptor
        .decrypt(identities.iter().map(|i| i.as_ref() as &dyn age::Identity))
        .map_err(|e| match e {
            age::DecryptError::NoMatchingKeys => invalid(
                file_path,
                format!(
                    "none of the identities in {} can decrypt it (wrong key?)",
                    identity_path.display()
                ),
            ),
            e => invalid(file_path, format!("cannot decrypt the header: {e}")),
        })?;
    let zstd = zstd::stream::read::Decoder::new(plain).map_err(|e| invalid(file_path, format!("zstd: {e}")))?;
    let tar_stream = ReadAhead::spawn(zstd).map_err(|e| BackupError::io("starting the restore reader", e))?;
    let mut archive = tar::Archive::new(tar_stream);
    let root = staging.is_some() && is_root() && keep.owner;
    let mut tree = TreeCheck::default();
    let mut summary = RestoreSummary::default();
    // (path, SHA-256) of every file entry in archive order, spooled to an unnamed temporary file and
    // merged with the manifest at the end: memory stays flat whatever the file count.
    let spool_err = |e: io::Error| BackupError::io("restore spool file", e);
    let mut file_hashes =
        io::BufWriter::new(tempfile::tempfile().map_err(|e| BackupError::temp("restore spool file", e))?);
    let mut record_hash = |rel: &Path, hash: String| -> Result<(), BackupError> {
        serde_json::to_writer(&mut file_hashes, &(rel.display().to_string(), hash)).map_err(|e| spool_err(e.into()))?;
        file_hashes.write_all(b"\n").map_err(spool_err)
    };
    let mut dirs: Vec<Meta> = Vec::new();
    let mut last_parent: Option<PathBuf> = None;
    // One copy buffer for every entry (zeroing a fresh one per file dominated small-file restores).
    let mut scratch = vec![0u8; 256 << 10];
    let mut manifest: Option<tempfile::NamedTempFile> = None;
    // Content errors (corruption, truncation) surface as I/O errors from the decrypting reader.
    let corrupt = |e: io::Error| invalid(file_path, format!("damaged or truncated ({e})"));
    let entries = archive.entries().map_err(corrupt)?;
    for entry in entries {
        let mut entry = entry.map_err(corrupt)?;
        if manifest.is_some() {
            return Err(invalid(
                file_path,
                "entries after the manifest (not written by sidecar?)",
            ));
        }
        let raw_path = entry.path_bytes().into_owned();
        let Some(rel) = safe_relative(&raw_path) else {
            return Err(invalid(
                file_path,
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
            io::copy(&mut entry, &mut spool).map_err(corrupt)?;
            manifest = Some(spool);
            continue;
        }
        if matches!(kind, EntryType::Char | EntryType::Block) {
            return Err(invalid(file_path, format!("refused device file `{}`", rel.display())));
        }
        let link = match kind {
            EntryType::Link => Some(hardlink_target(file_path, &header, &rel)?),
            _ => None,
        };
        tree.add(file_path, &rel, kind, link.as_deref())?;
        let (pax_mtime, xattrs) = pax_meta(&mut entry);
        let mut meta = Meta {
            rel: rel.clone(),
            mode: header.mode().unwrap_or(0o600) & 0o7777,
            uid: header.uid().unwrap_or(0),
            gid: header.gid().unwrap_or(0),
            mtime: pax_mtime
                .unwrap_or_else(|| filetime::FileTime::from_unix_time(header.mtime().unwrap_or(0) as i64, 0)),
            xattrs,
        };
        // With --path: entries at or below a selected path, and the directories above one.
        let mut wanted = select.is_empty();
        for (i, s) in select.iter().enumerate() {
            if rel.starts_with(s) {
                matched[i] = true;
                wanted = true;
            } else if kind == EntryType::Directory && s.starts_with(&rel) {
                wanted = true;
            }
        }
        // (Hardlinks carry no metadata of their own.) Verification reports what a restore would drop.
        if wanted && kind != EntryType::Link {
            clamp(&mut meta, keep, false, &mut summary.dropped);
        }
        let Some(staging) = staging.filter(|_| wanted) else {
            // Verification only (or not selected): hash contents, check links, write nothing.
            match kind {
                EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                    let (hash, n) =
                        hash_entry(&mut entry, None, &mut scratch).map_err(|e| e.into_backup_error(file_path))?;
                    record_hash(&rel, hash)?;
                    summary.bytes += n;
                }
                EntryType::Directory | EntryType::Symlink | EntryType::Fifo | EntryType::Link => {}
                other => return Err(unknown_entry(file_path, &rel, other)),
            }
            summary.entries += 1;
            continue;
        };
        let dest = staging.join(&rel);
        let ioerr = |what: &str, e: io::Error| BackupError::io(format!("{what} {}", dest.display()), e);
        // Entries come in walk order, so consecutive ones share their parent: once checked to be
        // real directories, the same parents need no new check (in the private staging directory,
        // an existing directory is never replaced: later entries cannot turn it into a symlink).
        let parent = rel.parent().map(Path::to_path_buf);
        let known = parent.is_some() && parent == last_parent;
        (if known { Ok(()) } else { prepare_parents(staging, &rel) }).map_err(|e| match e.kind() {
            io::ErrorKind::NotADirectory => invalid(
                file_path,
                format!(
                    "refused entry `{}`: a parent is not a directory (a symlink or file from an earlier entry), {e}",
                    rel.display()
                ),
            ),
            _ => ioerr("restoring", e),
        })?;
        last_parent = parent;
        match kind {
            EntryType::Directory => {
                match fs::symlink_metadata(&dest) {
                    Ok(md) if md.is_dir() => {}
                    Ok(_) => {
                        return Err(invalid(
                            file_path,
                            format!("`{}` is both a file and a directory", rel.display()),
                        ))
                    }
                    Err(_) => fs::create_dir(&dest).map_err(|e| ioerr("creating", e))?,
                }
                dirs.push(meta);
            }
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                clear_slot(&dest).map_err(|e| ioerr("replacing", e))?;
                let mut out = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&dest)
                    .map_err(|e| ioerr("creating", e))?;
                let (hash, n_total) = hash_entry(&mut entry, Some(&mut out), &mut scratch).map_err(|e| match e {
                    CopyError::Read(e) => corrupt(e),
                    CopyError::Write(e) => ioerr("writing", e),
                })?;
                // Through the open file: no path lookups, and nothing else can be reached.
                apply_file_meta(&out, &dest, &meta, root, &mut summary)?;
                drop(out);
                record_hash(&rel, hash)?;
                summary.bytes += n_total;
                super::Progress::add(progress, 0, 1);
            }
            EntryType::Symlink => {
                let target = header
                    .link_name_bytes()
                    .ok_or_else(|| invalid(file_path, format!("symlink `{}` without a target", rel.display())))?;
                clear_slot(&dest).map_err(|e| ioerr("replacing", e))?;
                std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(&target), &dest)
                    .map_err(|e| ioerr("creating symlink", e))?;
                apply_meta(&dest, &meta, root, Special::Symlink, &mut summary)?;
            }
            EntryType::Link => {
                let Some(target_rel) = link.as_deref() else {
                    return Err(hardlink_refused(file_path, &rel));
                };
                let src = staging.join(target_rel);
                match fs::symlink_metadata(&src) {
                    Ok(md) if md.is_file() => {}
                    _ => return Err(hardlink_refused(file_path, &rel)),
                }
                clear_slot(&dest).map_err(|e| ioerr("replacing", e))?;
                fs::hard_link(&src, &dest).map_err(|e| ioerr("linking", e))?;
            }
            EntryType::Fifo => {
                clear_slot(&dest).map_err(|e| ioerr("replacing", e))?;
                rustix::fs::mknodat(
                    rustix::fs::CWD,
                    &dest,
                    rustix::fs::FileType::Fifo,
                    rustix::fs::Mode::from_raw_mode(0o600),
                    0,
                )
                .map_err(|e| ioerr("creating named pipe", e.into()))?;
                apply_meta(&dest, &meta, root, Special::Fifo, &mut summary)?;
            }
            other => return Err(unknown_entry(file_path, &rel, other)),
        }
        summary.entries += 1;
    }
    // The manifest is the last entry: its absence means truncation (or not a sidecar backup).
    let Some(spool) = manifest else {
        return Err(invalid(
            file_path,
            "no manifest at the end: the backup is truncated or was not written by sidecar",
        ));
    };
    let mut file_hashes = file_hashes.into_inner().map_err(|e| spool_err(e.into_error()))?;
    file_hashes.seek(io::SeekFrom::Start(0)).map_err(spool_err)?;
    let mut archived = BufReader::new(file_hashes)
        .lines()
        .map(|l| -> Result<(String, String), BackupError> {
            let l = l.map_err(spool_err)?;
            serde_json::from_str(&l).map_err(|e| spool_err(e.into()))
        });
    let mut pending: Option<(String, String)> = None;
    let reader = BufReader::new(spool.reopen().map_err(|e| BackupError::io("manifest spool", e))?);
    let mut saw_totals = false;
    for line in reader.lines() {
        let line = line.map_err(|e| BackupError::io("manifest spool", e))?;
        let parsed: Line = serde_json::from_str(&line).map_err(|e| invalid(file_path, format!("manifest: {e}")))?;
        match parsed {
            Line::Entry(r) if r.kind == Kind::File => {
                let want_path = safe_relative(r.path.as_bytes())
                    .unwrap_or_default()
                    .display()
                    .to_string();
                // The archive lists files in manifest order; a file stored twice (it changed while
                // read) is two consecutive entries, and the later one counts.
                let mut got = match pending.take() {
                    Some(p) => Some(p),
                    None => archived.next().transpose()?,
                };
                match &got {
                    Some((path, _)) if *path == want_path => {}
                    Some((path, _)) => {
                        return Err(invalid(
                            file_path,
                            format!("the archive holds `{path}` where the manifest lists `{}`", r.path),
                        ))
                    }
                    None => {
                        return Err(invalid(
                            file_path,
                            format!("`{}` is in the manifest but not in the archive", r.path),
                        ))
                    }
                }
                loop {
                    match archived.next().transpose()? {
                        Some(next) if next.0 == want_path => got = Some(next),
                        other => {
                            pending = other;
                            break;
                        }
                    }
                }
                let (_, hash) = got.expect("checked above");
                match &r.blake3 {
                    Some(want) if *want == hash => summary.files += 1,
                    Some(_) => {
                        return Err(invalid(
                            file_path,
                            format!("`{}`: content does not match the manifest hash", r.path),
                        ))
                    }
                    None => {}
                }
            }
            Line::Header(h) if h.version == MANIFEST_VERSION => summary.root = h.root,
            Line::Header(h) => {
                return Err(invalid(
                    file_path,
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
            file_path,
            format!("the archive holds `{path}`, which the manifest does not list"),
        ));
    }
    if !saw_totals {
        return Err(invalid(file_path, "manifest is incomplete (no totals line)"));
    }
    if let Some(i) = matched.iter().position(|m| !m) {
        return Err(BackupError::Target(format!(
            "--path {}: no such path in the backup (paths are relative to the backed-up directory)",
            select[i].display()
        )));
    }
    // Directories last, deepest first, so that their mtimes and read-only modes hold.
    if let Some(staging) = staging {
        dirs.sort_by_key(|d| std::cmp::Reverse(d.rel.components().count()));
        for d in &dirs {
            apply_meta(&staging.join(&d.rel), d, root, Special::No, &mut summary)?;
        }
    }
    Ok(summary)
}

enum CopyError {
    Read(io::Error),
    Write(io::Error),
}

impl CopyError {
    fn into_backup_error(self, file: &str) -> BackupError {
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
fn hash_entry(entry: &mut impl Read, mut out: Option<&mut File>, buf: &mut [u8]) -> Result<(String, u64), CopyError> {
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

/// The in-tree path a hardlink entry points to, or a refusal.
fn hardlink_target(file: &str, header: &tar::Header, rel: &Path) -> Result<PathBuf, BackupError> {
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

fn hardlink_refused(file: &str, rel: &Path) -> BackupError {
    invalid(
        file,
        format!(
            "refused hardlink `{}`: target is not a file restored before it",
            rel.display()
        ),
    )
}

fn unknown_entry(file: &str, rel: &Path, kind: EntryType) -> BackupError {
    invalid(file, format!("refused entry `{}` of type {kind:?}", rel.display()))
}

/// Verify a backup end to end with the identity: decrypt, decompress, read every entry, check every
/// file against the manifest. Writes nothing.
pub fn verify(
    backup: &super::BackupRef,
    identity: &Path,
    progress: Option<std::sync::Arc<super::Progress>>,
) -> Result<RestoreSummary, BackupError> {
    let identities = super::crypto::read_identities(identity)?;
    extract(backup, identity, &identities, None, &[], &progress, Keep::default())
}

/// Owner, xattrs, mode and mtime of a restored regular file, set through its open handle.
fn apply_file_meta(
    file: &File,
    dest: &Path,
    meta: &Meta,
    root: bool,
    summary: &mut RestoreSummary,
) -> Result<(), BackupError> {
    use xattr::FileExt as _;
    let ioerr = |what: &str, e: io::Error| BackupError::io(format!("{what} {}", dest.display()), e);
    if root {
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
enum Special {
    No,
    Symlink,
    Fifo,
}

fn apply_meta(
    dest: &Path,
    meta: &Meta,
    root: bool,
    special: Special,
    summary: &mut RestoreSummary,
) -> Result<(), BackupError> {
    let ioerr = |what: &str, e: io::Error| BackupError::io(format!("{what} {}", dest.display()), e);
    if root {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_ahead_passes_every_byte_and_the_error_after_them() {
        let data: Vec<u8> = (0..(3 * ReadAhead::CHUNK + 12_345))
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        let mut got = Vec::new();
        ReadAhead::spawn(io::Cursor::new(data.clone()))
            .unwrap()
            .read_to_end(&mut got)
            .unwrap();
        assert_eq!(got, data);

        struct Failing(io::Cursor<Vec<u8>>);
        impl Read for Failing {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                match self.0.read(buf)? {
                    0 => Err(io::Error::new(io::ErrorKind::InvalidData, "bad tag")),
                    n => Ok(n),
                }
            }
        }
        let mut r = ReadAhead::spawn(Failing(io::Cursor::new(data.clone()))).unwrap();
        let mut got = Vec::new();
        let err = r.read_to_end(&mut got).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert_eq!(got, data, "everything before the error arrives first");
    }

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
