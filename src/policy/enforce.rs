//! Enforcement of what the host checks find: modes of Docker's containers directory and log files,
//! and owner and modes in the data volume. Each part is switched on or off in `[enforce]`; a dry
//! run only lists what would change. Symlinks are never followed, and a mode is only ever made
//! stricter, never looser.
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::host::{is_credential, is_log_file};

/// What to enforce, and where.
#[derive(Debug, Clone)]
pub struct EnforceOptions {
    /// Docker's data root.
    pub docker_root: PathBuf,
    /// `chmod 0700` `<docker_root>/containers`.
    pub containers_dir: bool,
    /// `chmod 0640` (or stricter) every `*-json.log*` file.
    pub log_files: bool,
    /// The data volume, when its owner and modes are enforced (it must be mounted writable).
    pub data_dir: Option<PathBuf>,
    /// Owner given to the data volume's entries.
    pub data_owner: (u32, u32),
    /// Only list what would change.
    pub dry_run: bool,
}

/// One change, made or (dry run) planned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The path.
    pub path: PathBuf,
    /// What changes, `mode 0710 -> 0700` or `owner 0:0 -> 1000:1000`.
    pub what: String,
}

/// Enforce; returns the changes (made, or planned in a dry run) and the paths that could not be
/// changed, with the reason.
pub fn enforce(opts: &EnforceOptions) -> (Vec<Change>, Vec<(PathBuf, String)>) {
    let mut changes = Vec::new();
    let mut errors = Vec::new();
    let containers = opts.docker_root.join("containers");
    if opts.containers_dir {
        tighten(&containers, 0o700, opts.dry_run, &mut changes, &mut errors);
    }
    if opts.log_files {
        walk(&containers, &mut errors, &mut |path, md| {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if md.is_file() && is_log_file(&name) {
                Some((0o640, None))
            } else {
                None
            }
        })
        .into_iter()
        .for_each(|(p, mode, _)| tighten(&p, mode, opts.dry_run, &mut changes, &mut errors));
    }
    if let Some(data) = &opts.data_dir {
        let owner = opts.data_owner;
        let targets = walk(data, &mut errors, &mut |path, md| {
            let rel = path.strip_prefix(data).unwrap_or(path);
            let mode = if md.is_file() && is_credential(rel) {
                0o600
            } else {
                0o7777
            };
            Some((mode, Some(owner)))
        });
        for (p, mode, owner) in targets {
            if let Some((uid, gid)) = owner {
                chown(&p, uid, gid, opts.dry_run, &mut changes, &mut errors);
            }
            if mode != 0o7777 {
                tighten(&p, mode, opts.dry_run, &mut changes, &mut errors);
            }
        }
    }
    (changes, errors)
}

/// A mode mask and an optional owner for one path.
type Wanted = (u32, Option<(u32, u32)>);
type Target = (PathBuf, u32, Option<(u32, u32)>);

/// Collect the entries under `dir` (not following symlinks; symlinks themselves are skipped) for
/// which `pick` returns a mode mask and an optional owner.
fn walk(
    dir: &Path,
    errors: &mut Vec<(PathBuf, String)>,
    pick: &mut dyn FnMut(&Path, &std::fs::Metadata) -> Option<Wanted>,
) -> Vec<Target> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let rd = match std::fs::read_dir(&d) {
            Ok(rd) => rd,
            Err(e) => {
                errors.push((d, e.to_string()));
                continue;
            }
        };
        for entry in rd.flatten() {
            let path = entry.path();
            let Ok(md) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            if md.file_type().is_symlink() {
                continue;
            }
            if let Some((mode, owner)) = pick(&path, &md) {
                out.push((path.clone(), mode, owner));
            }
            if md.is_dir() {
                stack.push(path);
            }
        }
    }
    out.sort();
    out
}

/// Clear the permission bits not in `allowed` (never adds any).
fn tighten(path: &Path, allowed: u32, dry_run: bool, changes: &mut Vec<Change>, errors: &mut Vec<(PathBuf, String)>) {
    let md = match std::fs::symlink_metadata(path) {
        Ok(m) if !m.file_type().is_symlink() => m,
        Ok(_) => return,
        Err(e) => {
            errors.push((path.to_path_buf(), e.to_string()));
            return;
        }
    };
    let mode = md.mode() & 0o7777;
    let new = mode & allowed;
    if new == mode {
        return;
    }
    if !dry_run {
        if let Err(e) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(new)) {
            errors.push((path.to_path_buf(), e.to_string()));
            return;
        }
    }
    changes.push(Change {
        path: path.to_path_buf(),
        what: format!("mode {mode:04o} -> {new:04o}"),
    });
}

fn chown(
    path: &Path,
    uid: u32,
    gid: u32,
    dry_run: bool,
    changes: &mut Vec<Change>,
    errors: &mut Vec<(PathBuf, String)>,
) {
    let Ok(md) = std::fs::symlink_metadata(path) else {
        return;
    };
    if md.uid() == uid && md.gid() == gid {
        return;
    }
    if !dry_run {
        if let Err(e) = std::os::unix::fs::lchown(path, Some(uid), Some(gid)) {
            errors.push((path.to_path_buf(), e.to_string()));
            return;
        }
    }
    changes.push(Change {
        path: path.to_path_buf(),
        what: format!("owner {}:{} -> {uid}:{gid}", md.uid(), md.gid()),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chmod(p: &Path, mode: u32) {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    fn mode(p: &Path) -> u32 {
        std::fs::symlink_metadata(p).unwrap().mode() & 0o7777
    }

    #[test]
    fn modes_are_only_tightened_and_dry_run_changes_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("docker");
        let c = root.join("containers/abc");
        std::fs::create_dir_all(&c).unwrap();
        let log = c.join("abc-json.log");
        let gz = c.join("abc-json.log.1.gz");
        let cfg = c.join("config.v2.json");
        for f in [&log, &gz, &cfg] {
            std::fs::write(f, "x").unwrap();
        }
        chmod(&root.join("containers"), 0o710);
        chmod(&log, 0o666);
        chmod(&gz, 0o600);
        chmod(&cfg, 0o644);
        let data = tmp.path().join("data");
        std::fs::create_dir_all(data.join("credentials")).unwrap();
        std::fs::write(data.join(".env"), "K=v").unwrap();
        std::fs::write(data.join("credentials/t"), "x").unwrap();
        std::fs::write(data.join("notes.md"), "x").unwrap();
        chmod(&data.join(".env"), 0o644);
        chmod(&data.join("credentials/t"), 0o400);
        chmod(&data.join("notes.md"), 0o644);
        std::os::unix::fs::symlink("/etc/passwd", data.join("link")).unwrap();
        let me = {
            let md = std::fs::metadata(&data).unwrap();
            (md.uid(), md.gid())
        };
        let mut opts = EnforceOptions {
            docker_root: root.clone(),
            containers_dir: true,
            log_files: true,
            data_dir: Some(data.clone()),
            data_owner: me,
            dry_run: true,
        };
        let (planned, errors) = enforce(&opts);
        assert!(errors.is_empty(), "{errors:?}");
        let shown: Vec<String> = planned
            .iter()
            .map(|c| format!("{} {}", c.path.strip_prefix(tmp.path()).unwrap().display(), c.what))
            .collect();
        assert_eq!(
            shown,
            [
                "docker/containers mode 0710 -> 0700",
                "docker/containers/abc/abc-json.log mode 0666 -> 0640",
                "data/.env mode 0644 -> 0600",
            ]
        );
        assert_eq!(mode(&log), 0o666, "dry run changed nothing");
        opts.dry_run = false;
        let (made, _) = enforce(&opts);
        assert_eq!(made, planned);
        assert_eq!(mode(&root.join("containers")), 0o700);
        assert_eq!(mode(&log), 0o640);
        assert_eq!(mode(&gz), 0o600, "already stricter: kept");
        assert_eq!(mode(&cfg), 0o644, "not a log file: untouched");
        assert_eq!(mode(&data.join(".env")), 0o600);
        assert_eq!(mode(&data.join("credentials/t")), 0o400);
        assert_eq!(mode(&data.join("notes.md")), 0o644);
        assert_eq!(enforce(&opts).0, vec![], "a second run has nothing to do");
        let host =
            crate::policy::checks::host::run(&crate::policy::host::HostFacts::read(&crate::policy::host::HostPaths {
                docker_root: root,
                data_dir: Some(data),
                data_owner: me,
            }));
        assert!(host.iter().all(|r| r.status == super::super::Status::Pass), "{host:#?}");
    }

    #[test]
    fn ownership_is_given_to_the_service_user() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        std::fs::create_dir_all(data.join("sub")).unwrap();
        std::fs::write(data.join("sub/f"), "x").unwrap();
        let opts = EnforceOptions {
            docker_root: tmp.path().join("none"),
            containers_dir: false,
            log_files: false,
            data_dir: Some(data.clone()),
            data_owner: (4321, 4321),
            // chown needs root; as another user the plan is still checked.
            dry_run: std::fs::metadata(&data).unwrap().uid() != 0,
        };
        let (changes, _) = enforce(&opts);
        assert_eq!(changes.len(), 2, "{changes:?}");
        assert!(changes[0].what.ends_with("-> 4321:4321"));
        if !opts.dry_run {
            assert_eq!(std::fs::metadata(data.join("sub/f")).unwrap().uid(), 4321);
        }
    }
}
