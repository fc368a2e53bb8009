//! Containers as Docker keeps them on disk: `<docker_root>/containers/<id>/config.v2.json` (name,
//! image, labels, log path) and `hostconfig.json` (log driver and options). Read from the files, so
//! the log guard needs no access to the Docker API.
use std::collections::BTreeMap;
use std::io::{self, BufReader};
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Label that turns masking off for a container (`sidecar.redact=false`): its findings are
/// reported, its log is left as it is.
pub const REDACT_LABEL: &str = "sidecar.redact";

/// Label naming the one guard that masks a container (`sidecar.guard=<guard.name>`); any other
/// guard reports its findings and leaves its log as it is.
pub const GUARD_LABEL: &str = "sidecar.guard";

/// One container's log as the guard follows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerLog {
    /// Full container id.
    pub id: String,
    /// Name without the leading `/`.
    pub name: String,
    /// Image as the container was created with it.
    pub image: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// The live json-file log (`<dir>/<id>-json.log`).
    pub log_path: PathBuf,
    /// Docker compresses rotated files (`compress=true`).
    pub compress: bool,
}

impl ContainerLog {
    /// The container's directory, which holds the live log and its rotated files.
    pub fn dir(&self) -> &Path {
        self.log_path.parent().unwrap_or(Path::new("/"))
    }

    /// The name of the only guard that masks this container (label `sidecar.guard`), if any.
    pub fn masked_by(&self) -> Option<&str> {
        self.labels.get(GUARD_LABEL).map(String::as_str)
    }

    /// The label asks for report-only (`sidecar.redact=false`, `0`, `no`, `off`).
    pub fn redact_label_off(&self) -> bool {
        self.labels
            .get(REDACT_LABEL)
            .is_some_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "false" | "0" | "no" | "off"))
    }
}

#[derive(Deserialize)]
struct ConfigV2 {
    #[serde(rename = "ID", default)]
    id: String,
    #[serde(rename = "Name", default)]
    name: String,
    #[serde(rename = "LogPath", default)]
    log_path: String,
    #[serde(rename = "Config", default)]
    config: Option<InnerConfig>,
}

#[derive(Deserialize, Default)]
struct InnerConfig {
    #[serde(rename = "Image", default)]
    image: String,
    #[serde(rename = "Labels", default)]
    labels: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
struct HostConfig {
    #[serde(rename = "LogConfig", default)]
    log_config: Option<LogConfig>,
}

#[derive(Deserialize, Default)]
struct LogConfig {
    #[serde(rename = "Type", default)]
    kind: String,
    #[serde(rename = "Config", default)]
    config: Option<BTreeMap<String, String>>,
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> io::Result<T> {
    let f = crate::fsutil::open_input(path, crate::fsutil::InputKind::CONTAINER_CONFIG)?;
    serde_json::from_reader(BufReader::new(f)).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
}

/// Read one container directory. `Ok(None)`: not a json-file container (another log driver, or
/// Docker has not finished writing its config yet).
pub fn read_container(dir: &Path) -> io::Result<Option<ContainerLog>> {
    let cfg: ConfigV2 = match read_json(&dir.join("config.v2.json")) {
        Ok(c) => c,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let host: Option<HostConfig> = match read_json(&dir.join("hostconfig.json")) {
        Ok(h) => Some(h),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    let log = host.and_then(|h| h.log_config).unwrap_or_default();
    if !(log.kind.is_empty() || log.kind == "json-file") || cfg.id.is_empty() {
        return Ok(None);
    }
    let log_path = if cfg.log_path.is_empty() {
        dir.join(format!("{}-json.log", cfg.id))
    } else {
        // Docker records the path under its own root; the guard may see that root mounted elsewhere.
        let p = PathBuf::from(&cfg.log_path);
        dir.join(p.file_name().unwrap_or_default())
    };
    let opts = log.config.unwrap_or_default();
    let inner = cfg.config.unwrap_or_default();
    Ok(Some(ContainerLog {
        name: cfg.name.trim_start_matches('/').to_string(),
        image: inner.image,
        labels: inner.labels.unwrap_or_default(),
        log_path,
        compress: opts.get("compress").is_some_and(|v| v == "true"),
        id: cfg.id,
    }))
}

/// Container directories that could not be read, with the reason.
pub type Unreadable = Vec<(PathBuf, io::Error)>;

/// Every json-file container under `<docker_root>/containers`. Directories that cannot be read are
/// returned as errors next to the containers that could.
pub fn discover(docker_root: &Path) -> io::Result<(Vec<ContainerLog>, Unreadable)> {
    let root = docker_root.join("containers");
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for entry in std::fs::read_dir(&root)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.len() != 64 || !name.bytes().all(|b| b.is_ascii_hexdigit()) {
            continue;
        }
        // Docker's own directory, not a link to somewhere else (masks would be written there).
        if entry.file_type()?.is_symlink() {
            errors.push((
                entry.path(),
                io::Error::other("is a symbolic link: not followed (a container directory must be Docker's own)"),
            ));
            continue;
        }
        match read_container(&entry.path()) {
            Ok(Some(c)) => found.push(c),
            Ok(None) => {}
            Err(e) => errors.push((entry.path(), e)),
        }
    }
    found.sort_by(|a, b| a.id.cmp(&b.id));
    Ok((found, errors))
}

/// The id of the container this process runs in, if any: Docker bind-mounts
/// `<docker_root>/containers/<id>/hostname` (and `hosts`, `resolv.conf`) into every container.
pub fn own_container_id() -> Option<String> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    own_container_id_from(&text)
}

fn own_container_id_from(mountinfo: &str) -> Option<String> {
    for line in mountinfo.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let (Some(root), Some(mount_point)) = (fields.get(3), fields.get(4)) else {
            continue;
        };
        if !matches!(*mount_point, "/etc/hostname" | "/etc/hosts" | "/etc/resolv.conf") {
            continue;
        }
        let mut parts = root.rsplit('/');
        let _file = parts.next();
        if let (Some(id), Some("containers")) = (parts.next(), parts.next()) {
            if id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Some(id.to_string());
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_name_image_labels_and_log_options() {
        let dir = tempfile::tempdir().unwrap();
        let id = "a".repeat(64);
        let cdir = dir.path().join("containers").join(&id);
        std::fs::create_dir_all(&cdir).unwrap();
        std::fs::write(
            cdir.join("config.v2.json"),
            format!(
                r#"{{"ID":"{id}","Name":"/openclaw","LogPath":"/elsewhere/containers/{id}/{id}-json.log",
                "Config":{{"Image":"openclaw:1","Labels":{{"sidecar.redact":"false"}}}},"State":{{}}}}"#
            ),
        )
        .unwrap();
        std::fs::write(
            cdir.join("hostconfig.json"),
            r#"{"LogConfig":{"Type":"json-file","Config":{"compress":"true","max-size":"1m"}}}"#,
        )
        .unwrap();
        // A container of another log driver, and a directory Docker is still creating.
        let other = dir.path().join("containers").join("b".repeat(64));
        std::fs::create_dir_all(&other).unwrap();
        std::fs::write(
            other.join("config.v2.json"),
            format!(r#"{{"ID":"{}"}}"#, "b".repeat(64)),
        )
        .unwrap();
        std::fs::write(other.join("hostconfig.json"), r#"{"LogConfig":{"Type":"journald"}}"#).unwrap();
        std::fs::create_dir_all(dir.path().join("containers").join("c".repeat(64))).unwrap();

        let (found, errors) = discover(dir.path()).unwrap();
        assert!(errors.is_empty());
        assert_eq!(found.len(), 1);
        let c = &found[0];
        assert_eq!(c.name, "openclaw");
        assert_eq!(c.image, "openclaw:1");
        assert!(c.compress);
        assert!(c.redact_label_off());
        assert_eq!(c.log_path, cdir.join(format!("{id}-json.log")));
    }

    #[test]
    fn finds_its_own_container_in_mountinfo() {
        let id = "0123456789abcdef".repeat(4);
        let text = format!(
            "10 1 0:1 / / rw - overlay overlay rw\n\
             20 1 8:1 /var/lib/docker/containers/{id}/hostname /etc/hostname rw,relatime - ext4 /dev/sda1 rw\n"
        );
        assert_eq!(own_container_id_from(&text), Some(id));
        assert_eq!(own_container_id_from("10 1 0:1 / / rw - overlay overlay rw\n"), None);
    }
}
