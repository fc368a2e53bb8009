//! What the audit needs of a container, read from Docker's own files under its data root
//! (`containers/<id>/config.v2.json` and `hostconfig.json`) instead of the API: what sidecar sees in
//! its compose service, which mounts `/var/lib/docker/containers` (to mask logs) and, by default, not
//! the Docker socket (root on the host for whoever holds it).
//!
//! `hostconfig.json` is the `HostConfig` of `docker inspect`, and `config.v2.json` holds its `Config`,
//! `Name`, `Image`, `State` and the mounts (`MountPoints`, keyed by destination). The image history
//! and `docker diff` are not in these files: those checks say so.
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use bollard::models::{ContainerConfig, ContainerInspectResponse, HostConfig, MountPoint};
use serde_json::Value;

use super::DockerError;

/// Largest `config.v2.json` or `hostconfig.json` read (Docker's are a few KiB).
const MAX_FILE: u64 = 4 << 20;

/// Docker's data root, read for the audit.
#[derive(Debug, Clone)]
pub struct DockerFiles {
    root: PathBuf,
}

fn unreadable(what: String, e: impl std::fmt::Display) -> DockerError {
    DockerError::Request {
        what,
        problem: e.to_string(),
    }
}

/// A JSON file under the data root: never through a symlink, bounded in size.
fn read_json(path: &Path) -> Result<Value, DockerError> {
    let what = format!("reading {}", path.display());
    let file: File = crate::fsutil::open_nofollow(path).map_err(|e| unreadable(what.clone(), e))?;
    let meta = file.metadata().map_err(|e| unreadable(what.clone(), e))?;
    if !meta.is_file() || meta.len() > MAX_FILE {
        return Err(unreadable(what, "not a regular file of at most 4 MiB"));
    }
    let mut text = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_FILE)
        .read_to_end(&mut text)
        .map_err(|e| unreadable(what.clone(), e))?;
    serde_json::from_slice(&text).map_err(|e| unreadable(what, shape_only(&e)))
}

/// A JSON error without the values serde quotes in it (an environment variable holding a secret
/// must not reach a message): its kind and, when known, where.
fn shape_only(e: &serde_json::Error) -> String {
    let kind = match e.classify() {
        serde_json::error::Category::Io => "unreadable",
        serde_json::error::Category::Syntax => "not valid JSON",
        serde_json::error::Category::Data => "not in the shape Docker writes",
        serde_json::error::Category::Eof => "cut short",
    };
    if e.line() > 0 {
        format!("{kind} (line {}, column {})", e.line(), e.column())
    } else {
        kind.to_string()
    }
}

impl DockerFiles {
    /// Read containers under `docker_root` (its `containers/` directory).
    pub fn new(docker_root: &Path) -> Self {
        DockerFiles {
            root: docker_root.to_path_buf(),
        }
    }

    fn dir(&self, id: &str) -> Result<PathBuf, DockerError> {
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(unreadable(format!("container {id:?}"), "not a container ID"));
        }
        Ok(self.root.join("containers").join(id))
    }

    /// Running containers (name, ID): those whose `config.v2.json` says `State.Running`. An
    /// unreadable directory is skipped; an unreadable `containers/` is an error.
    pub fn running(&self) -> Result<Vec<(String, String)>, DockerError> {
        let dir = self.root.join("containers");
        let entries = std::fs::read_dir(&dir).map_err(|e| unreadable(format!("listing {}", dir.display()), e))?;
        let mut out = Vec::new();
        for e in entries.flatten() {
            let id = e.file_name().to_string_lossy().into_owned();
            if id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
                continue;
            }
            let Ok(cfg) = read_json(&e.path().join("config.v2.json")) else {
                continue;
            };
            if cfg.pointer("/State/Running").and_then(Value::as_bool) != Some(true) {
                continue;
            }
            out.push((name_of(&cfg, &id), id));
        }
        out.sort();
        Ok(out)
    }

    /// A container's ID from its full ID, a unique prefix or its name.
    pub fn resolve(&self, want: &str) -> Result<String, DockerError> {
        let dir = self.root.join("containers");
        let entries = std::fs::read_dir(&dir).map_err(|e| unreadable(format!("listing {}", dir.display()), e))?;
        let mut found = Vec::new();
        for e in entries.flatten() {
            let id = e.file_name().to_string_lossy().into_owned();
            if id.len() != 64 {
                continue;
            }
            if id.starts_with(want)
                || read_json(&e.path().join("config.v2.json")).is_ok_and(|c| name_of(&c, &id) == want)
            {
                found.push(id);
            }
        }
        match found.len() {
            1 => Ok(found.remove(0)),
            0 => Err(unreadable(format!("container {want}"), "no such container")),
            _ => Err(unreadable(
                format!("container {want}"),
                "more than one container matches",
            )),
        }
    }

    /// What `docker inspect` says of the container, as far as its files tell.
    pub fn inspect(&self, id: &str) -> Result<ContainerInspectResponse, DockerError> {
        let dir = self.dir(id)?;
        let cfg = read_json(&dir.join("config.v2.json"))?;
        let host = read_json(&dir.join("hostconfig.json"))?;
        let field = |what: &str, e: serde_json::Error| unreadable(format!("container {id}: {what}"), shape_only(&e));
        let config: Option<ContainerConfig> = match cfg.get("Config") {
            Some(c) => Some(serde_json::from_value(c.clone()).map_err(|e| field("Config", e))?),
            None => None,
        };
        let host_config: HostConfig = serde_json::from_value(host).map_err(|e| field("hostconfig.json", e))?;
        let mut mounts: Vec<MountPoint> = cfg
            .get("MountPoints")
            .and_then(Value::as_object)
            .map(|m| m.values().map(mount_of).collect())
            .unwrap_or_default();
        mounts.sort_by(|a, b| a.destination.cmp(&b.destination));
        Ok(ContainerInspectResponse {
            id: Some(id.to_string()),
            name: Some(format!("/{}", name_of(&cfg, id))),
            image: cfg.get("Image").and_then(Value::as_str).map(String::from),
            config,
            host_config: Some(host_config),
            mounts: Some(mounts),
            ..Default::default()
        })
    }
}

fn name_of(cfg: &Value, id: &str) -> String {
    match cfg.get("Name").and_then(Value::as_str) {
        Some(n) if !n.trim_start_matches('/').is_empty() => n.trim_start_matches('/').to_string(),
        _ => id.chars().take(12).collect(),
    }
}

/// One of `config.v2.json`'s `MountPoints` as `docker inspect` shows it.
fn mount_of(m: &Value) -> MountPoint {
    let s = |k: &str| {
        m.get(k)
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
            .map(String::from)
    };
    let typ = s("Type");
    let volume = s("Name");
    // A named volume's files are under the data root; `docker inspect` shows that path as Source.
    MountPoint {
        typ,
        name: volume,
        source: s("Source"),
        destination: s("Destination"),
        driver: s("Driver"),
        mode: s("Mode"),
        rw: m.get("RW").and_then(Value::as_bool),
        propagation: s("Propagation"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(root: &Path, id: &str, running: bool) {
        let dir = root.join("containers").join(id);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("config.v2.json"),
            format!(
                r#"{{"ID":"{id}","Name":"/gw","Image":"sha256:abc","State":{{"Running":{running}}},
                "Config":{{"User":"1000:1000","Image":"openclaw:1","Env":["A=b"],"Labels":{{"k":"v"}}}},
                "MountPoints":{{"/data":{{"Source":"/var/lib/docker/volumes/d/_data","Destination":"/data","RW":true,"Name":"d","Driver":"local","Type":"volume"}},
                "/var/run/docker.sock":{{"Source":"/var/run/docker.sock","Destination":"/var/run/docker.sock","RW":true,"Type":"bind"}}}}}}"#
            ),
        )
        .unwrap();
        std::fs::write(
            dir.join("hostconfig.json"),
            r#"{"Privileged":false,"ReadonlyRootfs":true,"CapDrop":["ALL"],"SecurityOpt":["no-new-privileges:true"],
               "Memory":536870912,"PidsLimit":128,"PortBindings":{"18789/tcp":[{"HostIp":"127.0.0.1","HostPort":"18789"}]},
               "LogConfig":{"Type":"json-file","Config":{"max-size":"10m"}}}"#,
        )
        .unwrap();
    }

    #[test]
    fn inspect_from_the_files_has_what_the_checks_read() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = ("a".repeat(64), "b".repeat(64));
        container(tmp.path(), &a, true);
        container(tmp.path(), &b, false);
        std::fs::create_dir_all(tmp.path().join("containers/not-an-id")).unwrap();
        let files = DockerFiles::new(tmp.path());
        assert_eq!(files.running().unwrap(), vec![("gw".to_string(), a.clone())]);
        let i = files.inspect(&a).unwrap();
        assert_eq!(i.name.as_deref(), Some("/gw"));
        let c = i.config.unwrap();
        assert_eq!(c.user.as_deref(), Some("1000:1000"));
        assert_eq!(c.env.unwrap(), vec!["A=b".to_string()]);
        let h = i.host_config.unwrap();
        assert_eq!(h.readonly_rootfs, Some(true));
        assert_eq!(h.cap_drop.unwrap(), vec!["ALL".to_string()]);
        assert_eq!(h.pids_limit, Some(128));
        let m = i.mounts.unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m[1].source.as_deref(), Some("/var/run/docker.sock"));
        assert_eq!(m[1].typ.as_deref(), Some("bind"));
        assert!(files.resolve("gw").unwrap_err().to_string().contains("more than one"));
        assert_eq!(files.resolve("aaaa").unwrap(), a);
        assert!(files.inspect("../../etc").is_err());
    }

    #[test]
    fn a_symlinked_or_huge_config_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let a = "a".repeat(64);
        container(tmp.path(), &a, true);
        let dir = tmp.path().join("containers").join(&a);
        std::fs::remove_file(dir.join("hostconfig.json")).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", dir.join("hostconfig.json")).unwrap();
        assert!(DockerFiles::new(tmp.path()).inspect(&a).is_err());
        std::fs::remove_file(dir.join("hostconfig.json")).unwrap();
        std::fs::File::create(dir.join("hostconfig.json"))
            .unwrap()
            .set_len(MAX_FILE + 1)
            .unwrap();
        let e = DockerFiles::new(tmp.path()).inspect(&a).unwrap_err().to_string();
        assert!(e.contains("at most 4 MiB"), "{e}");
    }

    #[test]
    fn a_malformed_config_is_an_error_that_quotes_none_of_its_values() {
        let tmp = tempfile::tempdir().unwrap();
        let a = "a".repeat(64);
        container(tmp.path(), &a, true);
        let cfg = tmp.path().join("containers").join(&a).join("config.v2.json");
        std::fs::write(
            &cfg,
            r#"{"Name":"/gw","State":{"Running":true},"Config":{"Env":"TOKEN=ghp_secretvalue"}}"#,
        )
        .unwrap();
        let e = DockerFiles::new(tmp.path()).inspect(&a).unwrap_err().to_string();
        assert!(
            e.contains("not in the shape Docker writes") && !e.contains("secretvalue"),
            "{e}"
        );
    }
}
