//! The host checks: modes of Docker's containers directory and log files, owner and modes in the
//! data volume. Symlinks are never followed.
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::{error, result, CheckResult, HOST};

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

fn sample(items: &[String]) -> String {
    let mut s = items.iter().take(5).cloned().collect::<Vec<_>>().join(", ");
    if items.len() > 5 {
        s.push_str(", …");
    }
    s
}

/// Run every host check.
pub fn check(p: &HostPaths) -> Vec<CheckResult> {
    let mut out = Vec::new();
    let containers = p.docker_root.join("containers");
    match std::fs::metadata(&containers) {
        Ok(md) => {
            let mode = md.mode() & 0o7777;
            out.push(result(
                HOST,
                "host.containers-dir",
                mode & 0o077 == 0,
                format!("{} is {mode:04o}", containers.display()),
            ));
            let mut bad = Vec::new();
            let mut n = 0;
            let walked = walk(&containers, Path::new(""), &mut |rel, md| {
                let name = rel
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                if md.is_file() && is_log_file(&name) {
                    n += 1;
                    let mode = md.mode() & 0o7777;
                    if mode & 0o137 != 0 {
                        bad.push(format!("{} {mode:04o}", rel.display()));
                    }
                }
            });
            match walked {
                Err(e) => out.push(error(HOST, "host.log-files", format!("{}: {e}", containers.display()))),
                Ok(()) => out.push(result(
                    HOST,
                    "host.log-files",
                    bad.is_empty(),
                    if bad.is_empty() {
                        format!("{n} log files, all 0640 or stricter")
                    } else {
                        format!("{} of {n} log files too open: {}", bad.len(), sample(&bad))
                    },
                )),
            }
        }
        Err(e) => {
            let why = format!(
                "{}: {e} (mount Docker's containers directory into sidecar)",
                containers.display()
            );
            out.push(error(HOST, "host.containers-dir", why.clone()));
            out.push(error(HOST, "host.log-files", why));
        }
    }
    let Some(data) = &p.data_dir else {
        return out;
    };
    let (uid, gid) = p.data_owner;
    let mut foreign = Vec::new();
    let mut open = Vec::new();
    let mut n = 0;
    let walked = walk(data, Path::new(""), &mut |rel, md| {
        n += 1;
        if md.uid() != uid || md.gid() != gid {
            foreign.push(format!("{} {}:{}", rel.display(), md.uid(), md.gid()));
        }
        if md.is_file() && is_credential(rel) && md.mode() & 0o044 != 0 {
            open.push(format!("{} {:04o}", rel.display(), md.mode() & 0o7777));
        }
    });
    match walked {
        Err(e) => {
            let why = format!(
                "{}: {e} (mount the data volume into sidecar, read-only is enough)",
                data.display()
            );
            out.push(error(HOST, "host.data-owner", why.clone()));
            out.push(error(HOST, "host.credentials", why));
        }
        Ok(()) => {
            out.push(result(
                HOST,
                "host.data-owner",
                foreign.is_empty(),
                if foreign.is_empty() {
                    format!("{n} entries, all owned by {uid}:{gid}")
                } else {
                    format!(
                        "{} of {n} entries not owned by {uid}:{gid}: {}",
                        foreign.len(),
                        sample(&foreign)
                    )
                },
            ));
            out.push(result(
                HOST,
                "host.credentials",
                open.is_empty(),
                if open.is_empty() {
                    "credential files readable by their owner only".to_string()
                } else {
                    format!("readable by group or others: {}", sample(&open))
                },
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Status;
    use std::os::unix::fs::PermissionsExt;

    fn chmod(p: &Path, mode: u32) {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn modes_and_owners_on_real_files() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("docker");
        let c = root.join("containers/abc");
        std::fs::create_dir_all(&c).unwrap();
        std::fs::write(c.join("abc-json.log"), "{}\n").unwrap();
        std::fs::write(c.join("abc-json.log.1.gz"), "x").unwrap();
        std::fs::write(c.join("config.v2.json"), "{}").unwrap();
        chmod(&root.join("containers"), 0o700);
        chmod(&c.join("abc-json.log"), 0o640);
        chmod(&c.join("abc-json.log.1.gz"), 0o644);
        chmod(&c.join("config.v2.json"), 0o644);
        let data = tmp.path().join("data");
        std::fs::create_dir_all(data.join("credentials")).unwrap();
        std::fs::write(data.join("openclaw.json"), "{}").unwrap();
        std::fs::write(data.join("credentials/telegram"), "x").unwrap();
        std::fs::write(data.join("notes.md"), "x").unwrap();
        chmod(&data.join("openclaw.json"), 0o600);
        chmod(&data.join("credentials/telegram"), 0o640);
        let me = {
            let md = std::fs::metadata(&data).unwrap();
            (md.uid(), md.gid())
        };
        let paths = HostPaths {
            docker_root: root.clone(),
            data_dir: Some(data.clone()),
            data_owner: me,
        };
        let r = check(&paths);
        let get = |id: &str| r.iter().find(|x| x.check == id).unwrap().clone();
        assert_eq!(get("host.containers-dir").status, Status::Pass);
        let logs = get("host.log-files");
        assert_eq!(logs.status, Status::Fail);
        assert!(
            logs.evidence.contains("abc-json.log.1.gz 0644") && logs.evidence.contains("1 of 2"),
            "{logs:?}"
        );
        assert_eq!(get("host.data-owner").status, Status::Pass);
        let cred = get("host.credentials");
        assert_eq!(cred.status, Status::Fail);
        assert!(cred.evidence.contains("credentials/telegram 0640"), "{cred:?}");

        chmod(&root.join("containers"), 0o755);
        chmod(&c.join("abc-json.log.1.gz"), 0o600);
        chmod(&data.join("credentials/telegram"), 0o600);
        let r = check(&HostPaths {
            data_owner: (me.0 + 1, me.1),
            ..paths
        });
        let get = |id: &str| r.iter().find(|x| x.check == id).unwrap().clone();
        assert_eq!(get("host.containers-dir").status, Status::Fail);
        assert_eq!(get("host.log-files").status, Status::Pass);
        assert_eq!(get("host.credentials").status, Status::Pass);
        assert_eq!(get("host.data-owner").status, Status::Fail);
    }

    #[test]
    fn missing_paths_are_errors() {
        let r = check(&HostPaths {
            docker_root: "/nonexistent-sidecar".into(),
            data_dir: Some("/nonexistent-sidecar/data".into()),
            data_owner: (1000, 1000),
        });
        assert!(r.iter().all(|x| x.status == Status::Error), "{r:#?}");
        assert_eq!(r.len(), 4);
    }
}
