//! The daemon checks: `docker info`, the daemon's configuration file and, where it is visible,
//! dockerd's command line.
use std::path::Path;

use super::{error, result, CheckResult, DAEMON};

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

/// The `-H`/`--host` values and whether `--tlsverify` is given, from dockerd's arguments.
fn hosts_from_args(args: &[String]) -> (Vec<String>, bool) {
    let mut hosts = Vec::new();
    let mut tls = false;
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        if a == "-H" || a == "--host" {
            if let Some(v) = it.next() {
                hosts.push(v.clone());
            }
        } else if let Some(v) = a.strip_prefix("--host=").or_else(|| a.strip_prefix("-H=")) {
            hosts.push(v.to_string());
        } else if let Some(v) = a.strip_prefix("-H").filter(|v| !v.is_empty()) {
            hosts.push(v.to_string());
        } else if a == "--tlsverify" || a == "--tlsverify=true" {
            tls = true;
        }
    }
    (hosts, tls)
}

/// Run every daemon check.
pub fn check(f: &DaemonFacts) -> Vec<CheckResult> {
    let mut out = Vec::new();
    if let Some(options) = &f.security_options {
        let has = |name: &str| {
            options
                .iter()
                .any(|o| o.split(',').any(|kv| kv == format!("name={name}")))
        };
        let opts = if options.is_empty() {
            "none".to_string()
        } else {
            options.join("; ")
        };
        out.push(result(
            DAEMON,
            "daemon.userns",
            has("userns"),
            format!("SecurityOptions: {opts}"),
        ));
        out.push(result(
            DAEMON,
            "daemon.seccomp",
            has("seccomp"),
            format!("SecurityOptions: {opts}"),
        ));
    } else {
        let unseen = "the daemon's SecurityOptions are only visible through the Docker API: run `sidecar audit` on the host, or add docker-compose.audit.yml";
        out.push(error(DAEMON, "daemon.userns", unseen));
        out.push(error(DAEMON, "daemon.seccomp", unseen));
    }

    // TCP without TLS: daemon.json hosts, dockerd's arguments, and the endpoint sidecar uses.
    let json = f.daemon_json.as_ref().ok().and_then(|j| j.as_ref());
    let mut hosts: Vec<String> = json
        .and_then(|j| j.get("hosts"))
        .and_then(|h| h.as_array())
        .map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect())
        .unwrap_or_default();
    let mut tls = json
        .and_then(|j| j.get("tlsverify"))
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    if let Some(args) = &f.dockerd_args {
        let (h, t) = hosts_from_args(args);
        hosts.extend(h);
        tls |= t;
    }
    let tls_env = std::env::var_os("DOCKER_TLS_VERIFY").is_some_and(|v| !v.is_empty() && v != "0");
    if f.endpoint.starts_with("tcp://") && !tls_env {
        hosts.push(f.endpoint.clone());
    }
    let tcp: Vec<&String> = hosts.iter().filter(|h| h.starts_with("tcp://")).collect();
    let seen = f.dockerd_args.is_some() || matches!(f.daemon_json, Ok(Some(_)));
    if !tcp.is_empty() {
        let plain = !tls;
        out.push(result(
            DAEMON,
            "daemon.tcp-tls",
            !plain,
            format!(
                "listens on {}{}",
                tcp.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "),
                if plain {
                    " without --tlsverify"
                } else {
                    " with --tlsverify"
                }
            ),
        ));
    } else if seen {
        out.push(result(
            DAEMON,
            "daemon.tcp-tls",
            true,
            format!(
                "hosts: {}",
                if hosts.is_empty() {
                    "default unix socket".into()
                } else {
                    hosts.join(", ")
                }
            ),
        ));
    } else {
        out.push(error(
            DAEMON,
            "daemon.tcp-tls",
            match &f.daemon_json {
                Err(e) => format!("daemon.json unreadable ({e}) and dockerd not visible"),
                _ => "no daemon.json and dockerd's command line not visible: mount /etc/docker/daemon.json read-only into sidecar".to_string(),
            },
        ));
    }

    // Default log options.
    let driver = json
        .and_then(|j| j.get("log-driver"))
        .and_then(|v| v.as_str())
        .map(String::from)
        .unwrap_or_else(|| f.logging_driver.clone());
    let log_opts = json.and_then(|j| j.get("log-opts"));
    let opt = |k: &str| {
        log_opts
            .and_then(|o| o.get(k))
            .and_then(|v| v.as_str())
            .map(String::from)
    };
    match (driver.as_str(), &f.daemon_json) {
        ("local", _) => out.push(result(
            DAEMON,
            "daemon.log-defaults",
            true,
            "log-driver local (rotates by default)",
        )),
        // No daemon.json where sidecar looks, and dockerd not visible (sidecar in a container
        // without the file mounted): the daemon's defaults cannot be seen, which is not a failure.
        ("json-file", Ok(None)) if f.dockerd_args.is_none() => out.push(error(
            DAEMON,
            "daemon.log-defaults",
            "log-driver json-file; daemon.json not visible (not mounted, or absent on the host) and dockerd's \
             command line not visible, so its default log options are unknown: mount the host's /etc/docker \
             read-only into sidecar (not the file alone: where it does not exist, Docker would create a \
             directory in its place), or run `sidecar audit` on the host",
        )),
        ("json-file", Ok(_)) => {
            let size = opt("max-size");
            let files = opt("max-file");
            let ok = size.is_some() && files.is_some();
            out.push(result(
                DAEMON,
                "daemon.log-defaults",
                ok,
                format!(
                    "log-driver json-file, max-size={}, max-file={}",
                    size.as_deref().unwrap_or("unset"),
                    files.as_deref().unwrap_or("unset")
                ),
            ));
        }
        ("json-file", Err(e)) => out.push(error(
            DAEMON,
            "daemon.log-defaults",
            format!("log-driver json-file; {e}"),
        )),
        (other, _) => out.push(result(
            DAEMON,
            "daemon.log-defaults",
            other != "json-file",
            format!("log-driver {other}"),
        )),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Status;

    fn status(r: &[CheckResult], id: &str) -> Status {
        r.iter().find(|x| x.check == id).unwrap().status
    }

    #[test]
    fn hardened_daemon() {
        let f = DaemonFacts {
            security_options: Some(vec!["name=seccomp,profile=builtin".into(), "name=userns".into()]),
            logging_driver: "json-file".into(),
            daemon_json: Ok(Some(serde_json::json!({
                "userns-remap": "default", "log-driver": "json-file",
                "log-opts": {"max-size": "10m", "max-file": "3"}
            }))),
            dockerd_args: Some(vec!["/usr/bin/dockerd".into(), "-H".into(), "fd://".into()]),
            endpoint: "unix:///var/run/docker.sock".into(),
        };
        let r = check(&f);
        assert!(r.iter().all(|x| x.status == Status::Pass), "{r:#?}");
    }

    #[test]
    fn plain_tcp_and_no_rotation_fail() {
        let f = DaemonFacts {
            security_options: Some(vec!["name=seccomp,profile=builtin".into()]),
            logging_driver: "json-file".into(),
            daemon_json: Ok(Some(
                serde_json::json!({"hosts": ["unix:///var/run/docker.sock", "tcp://0.0.0.0:2375"]}),
            )),
            dockerd_args: None,
            endpoint: "unix:///var/run/docker.sock".into(),
        };
        let r = check(&f);
        assert_eq!(status(&r, "daemon.tcp-tls"), Status::Fail);
        assert_eq!(status(&r, "daemon.log-defaults"), Status::Fail);
        assert_eq!(status(&r, "daemon.userns"), Status::Fail);
        assert_eq!(status(&r, "daemon.seccomp"), Status::Pass);
        let args: Vec<String> = ["dockerd", "-H", "tcp://0.0.0.0:2376", "--tlsverify"]
            .map(String::from)
            .to_vec();
        assert_eq!(hosts_from_args(&args), (vec!["tcp://0.0.0.0:2376".to_string()], true));
    }

    #[test]
    fn nothing_visible_is_an_error() {
        let f = DaemonFacts {
            logging_driver: "json-file".into(),
            daemon_json: Ok(None),
            endpoint: "unix:///var/run/docker.sock".into(),
            security_options: None,
            dockerd_args: None,
        };
        let r = check(&f);
        assert_eq!(status(&r, "daemon.tcp-tls"), Status::Error);
        // Without the Docker API (an audit from Docker's files) SecurityOptions are unknown.
        assert_eq!(status(&r, "daemon.userns"), Status::Error);
        assert_eq!(status(&r, "daemon.seccomp"), Status::Error);
        // No daemon.json where sidecar looks and no dockerd in sight (a container without the file
        // mounted): unknown, not a failure.
        let log = r.iter().find(|x| x.check == "daemon.log-defaults").unwrap();
        assert_eq!(log.status, Status::Error, "{log:?}");
        assert!(log.evidence.contains("/etc/docker"), "{log:?}");
        // On the host (dockerd visible) a missing daemon.json is known: json-file without options
        // does not rotate.
        let on_host = DaemonFacts {
            dockerd_args: Some(vec!["/usr/bin/dockerd".into()]),
            ..f
        };
        assert_eq!(status(&check(&on_host), "daemon.log-defaults"), Status::Fail);
    }
}
