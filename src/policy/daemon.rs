//! What the daemon checks look at: `docker info`, the daemon's configuration file and, where it is
//! visible, dockerd's command line (the checks are in [`checks::daemon`](super::checks::daemon)).
use std::path::Path;

/// What the daemon checks look at.
#[derive(Debug, Clone)]
pub struct DaemonFacts {
    /// `SecurityOptions` from `docker info` (`name=seccomp,profile=builtin`, `name=userns`, …);
    /// `None` without the Docker API (an audit from Docker's files).
    pub security_options: Option<Vec<String>>,
    /// `LoggingDriver` from `docker info` (Docker's default, `json-file`, without the API).
    pub logging_driver: String,
    /// `/etc/docker/daemon.json` (parsed), `Ok(None)` when there is none, `Err` when unreadable.
    pub daemon_json: Result<Option<serde_json::Value>, String>,
    /// dockerd's arguments, when its process is visible (host PID namespace or a host run).
    pub dockerd_args: Option<Vec<String>>,
    /// The endpoint sidecar itself uses (`DOCKER_HOST` or the local socket).
    pub endpoint: String,
}

impl DaemonFacts {
    /// Read `daemon.json` at `path` and look for dockerd in `/proc`.
    pub fn read_local(path: &Path) -> (Result<Option<serde_json::Value>, String>, Option<Vec<String>>) {
        let json = match crate::fsutil::read_input(path, crate::fsutil::InputKind::DAEMON_JSON) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| format!("{}: not valid JSON ({e})", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.to_string()),
        };
        (json, dockerd_args())
    }
}

/// dockerd's command line, if its process is visible in `/proc`.
fn dockerd_args() -> Option<Vec<String>> {
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(comm) = std::fs::read_to_string(entry.path().join("comm")) else {
            continue;
        };
        if comm.trim() != "dockerd" {
            continue;
        }
        let Ok(raw) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        return Some(
            raw.split(|&b| b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect(),
        );
    }
    None
}
