//! What the host checks look at, read from the host's files: the mode of Docker's containers
//! directory and of its log files, owner and modes in the data volume ([`HostFacts::read`]; the
//! checks are in [`checks::host`](super::checks::host)). Symlinks are never followed.
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Where the host checks look.
#[derive(Debug, Clone)]
pub struct HostPaths {
    /// Docker's data root (its `containers/` directory holds the logs).
    pub docker_root: PathBuf,
    /// The data volume as mounted into sidecar, if checked.
    pub data_dir: Option<PathBuf>,
    /// Expected owner of the data volume's files.
    pub data_owner: (u32, u32),
}

/// Is `name` a json-file log (live, rotated or compressed)?
pub fn is_log_file(name: &str) -> bool {
    name.contains("-json.log")
}

/// Is `rel` (relative to the data volume) a credential file?
pub fn is_credential(rel: &Path) -> bool {
    let name = rel
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    name == ".env"
        || name.starts_with(".env.")
        || name == "openclaw.json"
        || rel.components().any(|c| c.as_os_str() == "credentials")
}

/// One entry under a walked directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Path relative to the walked directory.
    pub rel: PathBuf,
    /// Permission bits (`mode & 0o7777`).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// A regular file (not a directory or a symlink).
    pub is_file: bool,
}

impl Entry {
    fn new(rel: &Path, md: &std::fs::Metadata) -> Self {
        Entry {
            rel: rel.to_path_buf(),
            mode: md.mode() & 0o7777,
            uid: md.uid(),
            gid: md.gid(),
            is_file: md.is_file(),
        }
    }
}

/// Docker's containers directory.
#[derive(Debug, Clone)]
pub struct ContainersDir {
    /// Its permission bits.
    pub mode: u32,
    /// Its json-file log files (regular files only), in walk order, or why the walk failed
    /// (`<path>: <error>`).
    pub log_files: Result<Vec<Entry>, String>,
}

/// What the host checks look at.
#[derive(Debug, Clone)]
pub struct HostFacts {
    /// `<docker_root>/containers`.
    pub containers_path: PathBuf,
    /// The containers directory, or why it could not be read (`<path>: <error>`).
    pub containers: Result<ContainersDir, String>,
    /// Every entry of the data volume, in walk order, or why it could not be read
    /// (`<path>: <error>`); `None` when no data volume is checked.
    pub data: Option<Result<Vec<Entry>, String>>,
    /// Expected owner of the data volume's files.
    pub data_owner: (u32, u32),
}

impl HostFacts {
    /// Read what the host checks need under `p`.
    pub fn read(p: &HostPaths) -> HostFacts {
        let containers_path = p.docker_root.join("containers");
        let shown = containers_path.display().to_string();
        let containers = std::fs::metadata(&containers_path)
            .map_err(|e| format!("{shown}: {e}"))
            .map(|md| {
                let mut logs = Vec::new();
                let walked = walk(&containers_path, Path::new(""), &mut |rel, md| {
                    let name = rel
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    if md.is_file() && is_log_file(&name) {
                        logs.push(Entry::new(rel, md));
                    }
                });
                ContainersDir {
                    mode: md.mode() & 0o7777,
                    log_files: walked.map(|()| logs).map_err(|e| format!("{shown}: {e}")),
                }
            });
        let data = p.data_dir.as_ref().map(|dir| {
            let mut entries = Vec::new();
            let walked = walk(dir, Path::new(""), &mut |rel, md| entries.push(Entry::new(rel, md)));
            walked.map(|()| entries).map_err(|e| format!("{}: {e}", dir.display()))
        });
        HostFacts {
            containers_path,
            containers,
            data,
            data_owner: p.data_owner,
        }
    }
}

/// Walk `dir` (not following symlinks), calling `f` with each entry's relative path and metadata.
fn walk(dir: &Path, rel: &Path, f: &mut dyn FnMut(&Path, &std::fs::Metadata)) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let rel = rel.join(entry.file_name());
        let Ok(md) = std::fs::symlink_metadata(&path) else {
            continue; // removed meanwhile
        };
        f(&rel, &md);
        if md.is_dir() {
            // An unreadable subdirectory is skipped, not fatal.
            let _ = walk(&path, &rel, f);
        }
    }
    Ok(())
}
