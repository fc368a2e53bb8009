//! The host checks: pure functions of [`HostFacts`] (modes of Docker's containers directory and
//! log files, owner and modes in the data volume), one function per check, run from [`TABLE`] in
//! report order.
use crate::policy::host::{is_credential, HostFacts};
use crate::policy::{result, CheckId, CheckResult, Verdict, HOST};

/// One host check; `None` when it does not apply (the data volume checks without a data volume).
type Check = fn(&HostFacts) -> Option<Verdict>;

/// The host checks, in report order.
const TABLE: &[(CheckId, Check)] = &[
    (CheckId::HostContainersDir, containers_dir),
    (CheckId::HostLogFiles, log_files),
    (CheckId::HostDataOwner, data_owner),
    (CheckId::HostCredentials, credentials),
];

/// The ids of the host checks, in report order.
pub fn ids() -> impl Iterator<Item = CheckId> {
    TABLE.iter().map(|&(id, _)| id)
}

/// Run every host check that applies.
pub fn run(f: &HostFacts) -> Vec<CheckResult> {
    TABLE
        .iter()
        .filter_map(|&(id, check)| Some(result(HOST, id, check(f)?)))
        .collect()
}

fn sample(items: &[String]) -> String {
    let mut s = items.iter().take(5).cloned().collect::<Vec<_>>().join(", ");
    if items.len() > 5 {
        s.push_str(", …");
    }
    s
}

/// Why Docker's containers directory is unseen, with what to do.
fn containers_unseen(e: &str) -> Verdict {
    Verdict::error(format!("{e} (mount Docker's containers directory into sidecar)"))
}

/// Why the data volume is unseen, with what to do.
fn data_unseen(e: &str) -> Verdict {
    Verdict::error(format!("{e} (mount the data volume into sidecar, read-only is enough)"))
}

fn containers_dir(f: &HostFacts) -> Option<Verdict> {
    Some(match &f.containers {
        Ok(dir) => Verdict::pass_if(
            dir.mode & 0o077 == 0,
            format!("{} is {:04o}", f.containers_path.display(), dir.mode),
        ),
        Err(e) => containers_unseen(e),
    })
}

fn log_files(f: &HostFacts) -> Option<Verdict> {
    let logs = match &f.containers {
        Ok(dir) => match &dir.log_files {
            Ok(logs) => logs,
            Err(e) => return Some(Verdict::error(e.as_str())),
        },
        Err(e) => return Some(containers_unseen(e)),
    };
    let n = logs.len();
    let bad: Vec<String> = logs
        .iter()
        .filter(|l| l.mode & 0o137 != 0)
        .map(|l| format!("{} {:04o}", l.rel.display(), l.mode))
        .collect();
    Some(if bad.is_empty() {
        Verdict::pass(format!("{n} log files, all 0640 or stricter"))
    } else {
        Verdict::fail(format!("{} of {n} log files too open: {}", bad.len(), sample(&bad)))
    })
}

fn data_owner(f: &HostFacts) -> Option<Verdict> {
    let entries = match f.data.as_ref()? {
        Ok(entries) => entries,
        Err(e) => return Some(data_unseen(e)),
    };
    let (uid, gid) = f.data_owner;
    let n = entries.len();
    let foreign: Vec<String> = entries
        .iter()
        .filter(|e| e.uid != uid || e.gid != gid)
        .map(|e| format!("{} {}:{}", e.rel.display(), e.uid, e.gid))
        .collect();
    Some(if foreign.is_empty() {
        Verdict::pass(format!("{n} entries, all owned by {uid}:{gid}"))
    } else {
        Verdict::fail(format!(
            "{} of {n} entries not owned by {uid}:{gid}: {}",
            foreign.len(),
            sample(&foreign)
        ))
    })
}

fn credentials(f: &HostFacts) -> Option<Verdict> {
    let entries = match f.data.as_ref()? {
        Ok(entries) => entries,
        Err(e) => return Some(data_unseen(e)),
    };
    let open: Vec<String> = entries
        .iter()
        .filter(|e| e.is_file && is_credential(&e.rel) && e.mode & 0o044 != 0)
        .map(|e| format!("{} {:04o}", e.rel.display(), e.mode))
        .collect();
    Some(if open.is_empty() {
        Verdict::pass("credential files readable by their owner only")
    } else {
        Verdict::fail(format!("readable by group or others: {}", sample(&open)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::host::HostPaths;
    use crate::policy::Status;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    use std::path::Path;

    fn check(p: &HostPaths) -> Vec<CheckResult> {
        run(&HostFacts::read(p))
    }

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
