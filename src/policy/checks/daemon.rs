//! The daemon checks: pure functions of [`DaemonFacts`] (`docker info`, `daemon.json`, dockerd's
//! command line), one function per check, run from [`TABLE`] in report order.
use crate::policy::daemon::DaemonFacts;
use crate::policy::{result, CheckId, CheckResult, Verdict, DAEMON};

/// One daemon check.
type Check = fn(&DaemonFacts) -> Verdict;

/// The daemon checks, in report order.
const TABLE: &[(CheckId, Check)] = &[
    (CheckId::DaemonUserns, userns),
    (CheckId::DaemonSeccomp, seccomp),
    (CheckId::DaemonTcpTls, tcp_tls),
    (CheckId::DaemonLogDefaults, log_defaults),
];

/// The ids of the daemon checks, in report order.
pub fn ids() -> impl Iterator<Item = CheckId> {
    TABLE.iter().map(|&(id, _)| id)
}

/// Run every daemon check.
pub fn run(f: &DaemonFacts) -> Vec<CheckResult> {
    TABLE.iter().map(|&(id, check)| result(DAEMON, id, check(f))).collect()
}

/// Why `SecurityOptions` are unknown without the Docker API.
const UNSEEN_SECURITY_OPTIONS: &str = "the daemon's SecurityOptions are only visible through the Docker API: run `sidecar audit` on the host, or add docker-compose.audit.yml";

/// The daemon lists security option `name` (`name=userns`, `name=seccomp,profile=builtin`).
fn security_option(f: &DaemonFacts, name: &str) -> Verdict {
    let Some(options) = &f.security_options else {
        return Verdict::error(UNSEEN_SECURITY_OPTIONS);
    };
    let has = options
        .iter()
        .any(|o| o.split(',').any(|kv| kv == format!("name={name}")));
    let opts = if options.is_empty() {
        "none".to_string()
    } else {
        options.join("; ")
    };
    Verdict::pass_if(has, format!("SecurityOptions: {opts}"))
}

fn userns(f: &DaemonFacts) -> Verdict {
    security_option(f, "userns")
}

fn seccomp(f: &DaemonFacts) -> Verdict {
    security_option(f, "seccomp")
}

/// `daemon.json`, when it was read.
fn daemon_json(f: &DaemonFacts) -> Option<&serde_json::Value> {
    f.daemon_json.as_ref().ok().and_then(|j| j.as_ref())
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

/// Where the daemon listens: `daemon.json`'s hosts, dockerd's arguments, and the endpoint
/// sidecar uses (unless `DOCKER_TLS_VERIFY` says it speaks TLS); and whether TLS is verified.
fn listeners(f: &DaemonFacts) -> (Vec<String>, bool) {
    let json = daemon_json(f);
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
    (hosts, tls)
}

/// No TCP socket without TLS.
fn tcp_tls(f: &DaemonFacts) -> Verdict {
    let (hosts, tls) = listeners(f);
    let tcp: Vec<&str> = hosts
        .iter()
        .filter(|h| h.starts_with("tcp://"))
        .map(String::as_str)
        .collect();
    if !tcp.is_empty() {
        return Verdict::pass_if(
            tls,
            format!(
                "listens on {}{}",
                tcp.join(", "),
                if tls {
                    " with --tlsverify"
                } else {
                    " without --tlsverify"
                }
            ),
        );
    }
    let seen = f.dockerd_args.is_some() || matches!(f.daemon_json, Ok(Some(_)));
    if seen {
        return Verdict::pass(format!(
            "hosts: {}",
            if hosts.is_empty() {
                "default unix socket".into()
            } else {
                hosts.join(", ")
            }
        ));
    }
    Verdict::error(match &f.daemon_json {
        Err(e) => format!("daemon.json unreadable ({e}) and dockerd not visible"),
        _ => "no daemon.json and dockerd's command line not visible: mount /etc/docker/daemon.json read-only into sidecar".to_string(),
    })
}

/// The default log options rotate.
fn log_defaults(f: &DaemonFacts) -> Verdict {
    let json = daemon_json(f);
    let driver = json
        .and_then(|j| j.get("log-driver"))
        .and_then(|v| v.as_str())
        .map(String::from)
        .unwrap_or_else(|| f.logging_driver.clone());
    let opt = |k: &str| {
        json.and_then(|j| j.get("log-opts"))
            .and_then(|o| o.get(k))
            .and_then(|v| v.as_str())
            .map(String::from)
    };
    match (driver.as_str(), &f.daemon_json) {
        ("local", _) => Verdict::pass("log-driver local (rotates by default)"),
        // No daemon.json where sidecar looks, and dockerd not visible (sidecar in a container
        // without the file mounted): the daemon's defaults cannot be seen, which is not a failure.
        ("json-file", Ok(None)) if f.dockerd_args.is_none() => Verdict::error(
            "log-driver json-file; daemon.json not visible (not mounted, or absent on the host) and dockerd's \
             command line not visible, so its default log options are unknown: mount the host's /etc/docker \
             read-only into sidecar (not the file alone: where it does not exist, Docker would create a \
             directory in its place), or run `sidecar audit` on the host",
        ),
        ("json-file", Ok(_)) => {
            let size = opt("max-size");
            let files = opt("max-file");
            Verdict::pass_if(
                size.is_some() && files.is_some(),
                format!(
                    "log-driver json-file, max-size={}, max-file={}",
                    size.as_deref().unwrap_or("unset"),
                    files.as_deref().unwrap_or("unset")
                ),
            )
        }
        ("json-file", Err(e)) => Verdict::error(format!("log-driver json-file; {e}")),
        (other, _) => Verdict::pass_if(other != "json-file", format!("log-driver {other}")),
    }
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
        let r = run(&f);
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
        let r = run(&f);
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
        let r = run(&f);
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
        assert_eq!(status(&run(&on_host), "daemon.log-defaults"), Status::Fail);
    }
}
