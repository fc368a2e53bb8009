//! The per-container checks: pure functions of what `docker inspect`, `docker history` and
//! `docker diff` return.
use bollard::models::{ChangeType, ContainerInspectResponse, FilesystemChange};

use super::{error, result, CheckResult};

/// A secret found in a text: the rule and the keyed fingerprint, never the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretHit {
    /// Rule id.
    pub rule: String,
    /// Keyed fingerprint (see [`crate::redact::FingerprintKey`]).
    pub fingerprint: String,
}

/// Everything the container checks look at.
#[derive(Debug, Clone)]
pub struct ContainerFacts {
    /// `docker inspect`.
    pub inspect: ContainerInspectResponse,
    /// `CreatedBy` of each image layer, or why it could not be read.
    pub history: Result<Vec<String>, String>,
    /// `docker diff`, or why it could not be read.
    pub changes: Result<Vec<FilesystemChange>, String>,
}

impl ContainerFacts {
    /// Name without the leading `/` (the short ID when there is none).
    pub fn name(&self) -> String {
        match self.inspect.name.as_deref() {
            Some(n) if !n.is_empty() => n.trim_start_matches('/').to_string(),
            _ => self.inspect.id.as_deref().unwrap_or("?").chars().take(12).collect(),
        }
    }

    /// The container's labels.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.inspect
            .config
            .as_ref()
            .and_then(|c| c.labels.as_ref())
            .and_then(|l| l.get(key))
            .map(String::as_str)
    }
}

/// Capabilities a service like OpenClaw never needs and that widen an escape.
pub const DANGEROUS_CAPS: &[&str] = &[
    "ALL",
    "SYS_ADMIN",
    "NET_RAW",
    "SYS_PTRACE",
    "MKNOD",
    "AUDIT_WRITE",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_BOOT",
    "SYS_TIME",
    "DAC_READ_SEARCH",
    "NET_ADMIN",
    "BPF",
    "PERFMON",
    "SYSLOG",
];

/// Host paths that must never be mounted writable (the path itself or anything under it; `/` only
/// itself).
pub const SENSITIVE_PATHS: &[&str] = &[
    "/etc",
    "/usr",
    "/var/run",
    "/run",
    "/root",
    "/proc",
    "/sys",
    "/boot",
    "/var/lib/docker",
    "/bin",
    "/sbin",
    "/lib",
];

/// Directories where `docker diff` changes mean the container's software was altered.
pub const DRIFT_PATHS: &[&str] = &["/usr", "/bin", "/sbin", "/lib", "/lib64", "/etc"];

fn under(path: &str, dir: &str) -> bool {
    path == dir || path.strip_prefix(dir).is_some_and(|rest| rest.starts_with('/'))
}

fn cap_name(c: &str) -> String {
    c.trim().to_ascii_uppercase().trim_start_matches("CAP_").to_string()
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

/// Run every container check. `scan` finds secrets in a text (by rule and fingerprint).
pub fn check(facts: &ContainerFacts, scan: &dyn Fn(&str) -> Vec<SecretHit>) -> Vec<CheckResult> {
    let name = facts.name();
    let name = name.as_str();
    let inspect = &facts.inspect;
    let config = inspect.config.clone().unwrap_or_default();
    let host = inspect.host_config.clone().unwrap_or_default();
    let mut out = Vec::new();

    // user.non-root
    let user = config.user.clone().unwrap_or_default();
    let uid = user.split(':').next().unwrap_or("").trim();
    let root = uid.is_empty() || uid == "root" || uid == "0";
    out.push(result(
        name,
        "user.non-root",
        !root,
        if user.is_empty() {
            "User is unset (root)".to_string()
        } else {
            format!("User: {user}")
        },
    ));

    let privileged = host.privileged.unwrap_or(false);
    out.push(result(
        name,
        "privileged",
        !privileged,
        format!("Privileged: {privileged}"),
    ));

    // Capabilities.
    let drop: Vec<String> = host
        .cap_drop
        .clone()
        .unwrap_or_default()
        .iter()
        .map(|c| cap_name(c))
        .collect();
    let add: Vec<String> = host
        .cap_add
        .clone()
        .unwrap_or_default()
        .iter()
        .map(|c| cap_name(c))
        .collect();
    out.push(result(
        name,
        "caps.drop-all",
        drop.iter().any(|c| c == "ALL"),
        format!("CapDrop: {}", list(&drop)),
    ));
    let dangerous: Vec<String> = add
        .iter()
        .filter(|c| DANGEROUS_CAPS.contains(&c.as_str()))
        .cloned()
        .collect();
    out.push(result(
        name,
        "caps.add-dangerous",
        dangerous.is_empty() && !privileged,
        if privileged {
            "privileged: every capability".to_string()
        } else if dangerous.is_empty() {
            format!("CapAdd: {}", list(&add))
        } else {
            format!("CapAdd includes {}", dangerous.join(", "))
        },
    ));

    let ro = host.readonly_rootfs.unwrap_or(false);
    out.push(result(name, "rootfs.read-only", ro, format!("ReadonlyRootfs: {ro}")));

    // Mounts: the socket and sensitive host paths.
    let mounts = inspect.mounts.clone().unwrap_or_default();
    let socket: Vec<String> = mounts
        .iter()
        .filter_map(|m| {
            let src = m.source.as_deref().unwrap_or("");
            let dst = m.destination.as_deref().unwrap_or("");
            (src.ends_with("docker.sock") || dst.ends_with("docker.sock")).then(|| format!("{src} -> {dst}"))
        })
        .collect();
    out.push(result(
        name,
        "docker-socket",
        socket.is_empty(),
        if socket.is_empty() {
            "no docker.sock mount".to_string()
        } else {
            format!("mounted: {}", socket.join(", "))
        },
    ));
    let writable_sensitive: Vec<String> = mounts
        .iter()
        .filter(|m| m.rw.unwrap_or(true))
        .filter(|m| matches!(m.typ.as_deref(), Some("bind") | None))
        .filter_map(|m| {
            let src = m.source.as_deref().unwrap_or("");
            let hit = src == "/" || SENSITIVE_PATHS.iter().any(|p| under(src, p));
            hit.then(|| format!("{src} -> {} (rw)", m.destination.as_deref().unwrap_or("")))
        })
        .collect();
    let binds: Vec<String> = mounts
        .iter()
        .map(|m| {
            format!(
                "{} -> {}{}",
                m.source.as_deref().or(m.name.as_deref()).unwrap_or(""),
                m.destination.as_deref().unwrap_or(""),
                if m.rw.unwrap_or(true) { "" } else { " (ro)" }
            )
        })
        .collect();
    out.push(result(
        name,
        "mounts.sensitive",
        writable_sensitive.is_empty(),
        if writable_sensitive.is_empty() {
            format!("mounts: {}", list(&binds))
        } else {
            format!("writable: {}", writable_sensitive.join(", "))
        },
    ));

    // Namespaces.
    for (id, mode) in [
        ("namespace.pid", host.pid_mode.clone()),
        ("namespace.network", host.network_mode.clone()),
        ("namespace.ipc", host.ipc_mode.clone()),
    ] {
        let mode = mode.unwrap_or_default();
        out.push(result(
            name,
            id,
            mode != "host",
            format!("mode: {}", if mode.is_empty() { "private" } else { &mode }),
        ));
    }

    // Limits.
    let memory = host.memory.unwrap_or(0);
    out.push(result(
        name,
        "limits.memory",
        memory > 0,
        if memory > 0 {
            format!("Memory: {memory} bytes")
        } else {
            "no memory limit".to_string()
        },
    ));
    let nano = host.nano_cpus.unwrap_or(0);
    let quota = host.cpu_quota.unwrap_or(0);
    let cpus = if nano > 0 {
        Some(nano as f64 / 1e9)
    } else if quota > 0 {
        Some(quota as f64 / host.cpu_period.filter(|p| *p > 0).unwrap_or(100_000) as f64)
    } else {
        None
    };
    out.push(result(
        name,
        "limits.cpu",
        cpus.is_some(),
        match cpus {
            Some(c) => format!("CPUs: {c}"),
            None => "no CPU limit".to_string(),
        },
    ));
    let pids = host.pids_limit.unwrap_or(0);
    out.push(result(
        name,
        "limits.pids",
        pids > 0,
        if pids > 0 {
            format!("PidsLimit: {pids}")
        } else {
            "no PID limit".to_string()
        },
    ));

    // Networks.
    let mode = host.network_mode.clone().unwrap_or_default();
    let networks: Vec<String> = inspect
        .network_settings
        .as_ref()
        .and_then(|n| n.networks.as_ref())
        .map(|n| {
            let mut v: Vec<String> = n.keys().cloned().collect();
            v.sort();
            v
        })
        .unwrap_or_default();
    let on_default = mode == "default" || mode == "bridge" || networks.iter().any(|n| n == "bridge");
    let isolated = !on_default && mode != "host";
    out.push(result(
        name,
        "network.isolation",
        isolated || mode == "none",
        format!(
            "NetworkMode: {}; networks: {}",
            if mode.is_empty() { "?" } else { &mode },
            list(&networks)
        ),
    ));

    // Published ports.
    let mut open = Vec::new();
    let mut published = Vec::new();
    if let Some(ports) = host.port_bindings.as_ref() {
        let mut keys: Vec<&String> = ports.keys().collect();
        keys.sort();
        for port in keys {
            for b in ports[port].clone().unwrap_or_default() {
                let ip = b.host_ip.clone().unwrap_or_default();
                let hp = b.host_port.clone().unwrap_or_default();
                let shown = format!("{}:{hp}->{port}", if ip.is_empty() { "0.0.0.0" } else { &ip });
                let loopback = ip == "127.0.0.1" || ip == "::1" || ip.starts_with("127.");
                if !loopback {
                    open.push(shown.clone());
                }
                published.push(shown);
            }
        }
    }
    if host.publish_all_ports.unwrap_or(false) {
        open.push("PublishAllPorts: true".into());
    }
    out.push(result(
        name,
        "ports.loopback",
        open.is_empty(),
        if open.is_empty() {
            format!("published: {}", list(&published))
        } else {
            format!("published on all interfaces: {}", open.join(", "))
        },
    ));

    // Image.
    let image = config.image.clone().unwrap_or_default();
    let pinned = image.contains("@sha256:")
        || image
            .strip_prefix("sha256:")
            .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
    out.push(result(name, "image.digest", pinned, format!("image: {image}")));

    // Security options.
    let opts: Vec<String> = host.security_opt.clone().unwrap_or_default();
    let nnp = opts.iter().any(|o| {
        let o = o.replace('=', ":");
        o == "no-new-privileges" || o == "no-new-privileges:true"
    });
    out.push(result(
        name,
        "no-new-privileges",
        nnp,
        format!("SecurityOpt: {}", list(&opts)),
    ));
    let unconfined = opts.iter().any(|o| o.replace('=', ":") == "seccomp:unconfined");
    out.push(result(
        name,
        "seccomp",
        !unconfined && !privileged,
        if privileged {
            "privileged: seccomp disabled".to_string()
        } else if unconfined {
            "seccomp=unconfined".to_string()
        } else {
            format!("SecurityOpt: {}", list(&opts))
        },
    ));

    // Log rotation (the container's effective log config: daemon defaults are merged into it).
    let log = host.log_config.clone().unwrap_or_default();
    let driver = log.typ.clone().unwrap_or_default();
    let lopts = log.config.clone().unwrap_or_default();
    let (ok, evidence) = match driver.as_str() {
        "json-file" => {
            let size = lopts.get("max-size").cloned().unwrap_or_default();
            let files = lopts.get("max-file").cloned().unwrap_or_default();
            // The guide's settings: both set (max-size bounds each file, max-file how many are kept).
            let ok = !size.is_empty() && size != "-1" && !files.is_empty();
            (
                ok,
                format!(
                    "json-file, max-size={}, max-file={}",
                    if size.is_empty() { "unset" } else { &size },
                    if files.is_empty() { "unset" } else { &files }
                ),
            )
        }
        "local" => (true, "local driver (rotates by default)".to_string()),
        "none" => (true, "logging disabled".to_string()),
        "" => (false, "no log config".to_string()),
        other => (true, format!("{other} driver (rotation is the receiver's job)")),
    };
    out.push(result(name, "logs.rotation", ok, evidence));

    // Secrets in the environment: by variable name, rule and fingerprint. `env.secrets:NAME` in the
    // accept label accepts the secrets of that one variable (a service that takes its token from
    // the environment); a secret in any other variable still fails.
    let accepted_vars: Vec<String> = facts
        .label(super::ACCEPT_LABEL)
        .map(super::parse_accept)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|a| a.strip_prefix("env.secrets:").map(String::from))
        .collect();
    let mut env_hits = Vec::new();
    let mut unaccepted = 0;
    for var in config.env.clone().unwrap_or_default() {
        // The whole `NAME=value`: the name is the context that generic rules key on.
        let key = var.split('=').next().unwrap_or("");
        let accepted = accepted_vars.iter().any(|a| a == key);
        for h in scan(&var) {
            unaccepted += usize::from(!accepted);
            env_hits.push(format!(
                "{key}: {} fingerprint {}{}",
                h.rule,
                short(&h.fingerprint),
                if accepted { " (accepted)" } else { "" }
            ));
        }
    }
    env_hits.dedup();
    let mut env = result(
        name,
        "env.secrets",
        env_hits.is_empty(),
        if env_hits.is_empty() {
            format!("{} variables, no secret found", config.env.as_ref().map_or(0, Vec::len))
        } else {
            env_hits.join("; ")
        },
    );
    if !env_hits.is_empty() && unaccepted == 0 {
        env.status = super::Status::Accepted;
        env.reason = Some(
            facts
                .label(super::REASON_LABEL)
                .filter(|r| !r.is_empty())
                .unwrap_or("(no reason given)")
                .to_string(),
        );
    }
    out.push(env);

    // Secrets in the image history.
    match &facts.history {
        Ok(lines) => {
            let mut hits = Vec::new();
            for (i, line) in lines.iter().enumerate() {
                for h in scan(line) {
                    hits.push(format!("layer {i}: {} fingerprint {}", h.rule, short(&h.fingerprint)));
                }
            }
            out.push(result(
                name,
                "image.history-secrets",
                hits.is_empty(),
                if hits.is_empty() {
                    format!("{} history entries, no secret found", lines.len())
                } else {
                    hits.join("; ")
                },
            ));
        }
        Err(e) => out.push(error(
            name,
            "image.history-secrets",
            format!("history unavailable: {e}"),
        )),
    }

    // Drift.
    let mount_points: Vec<&str> = facts
        .inspect
        .mounts
        .iter()
        .flatten()
        .filter_map(|m| m.destination.as_deref())
        .collect();
    match &facts.changes {
        Ok(changes) => {
            let mut drift: Vec<String> = changes
                .iter()
                .filter(|c| DRIFT_PATHS.iter().any(|d| under(&c.path, d)))
                // Docker creates each bind mount's mount point (and changes its parents) in the
                // writable layer: `A /etc/caddy/Caddyfile` for a mounted file is not drift.
                .filter(|c| !(c.kind != ChangeType::_2 && mount_points.iter().any(|m| under(m, &c.path))))
                .map(|c| {
                    let k = match c.kind {
                        ChangeType::_0 => "C",
                        ChangeType::_1 => "A",
                        ChangeType::_2 => "D",
                    };
                    format!("{k} {}", c.path)
                })
                .collect();
            let total = drift.len();
            drift.truncate(10);
            out.push(result(
                name,
                "drift",
                total == 0,
                if total == 0 {
                    format!("{} changes, none under {}", changes.len(), DRIFT_PATHS.join(", "))
                } else {
                    format!(
                        "{total} changed paths: {}{}",
                        drift.join(", "),
                        if total > 10 { ", …" } else { "" }
                    )
                },
            ));
        }
        Err(e) => out.push(error(name, "drift", format!("changes unavailable: {e}"))),
    }

    // Healthcheck (the image's, merged into the container's config, or the container's own).
    let test = config
        .healthcheck
        .as_ref()
        .and_then(|h| h.test.clone())
        .unwrap_or_default();
    let has = !test.is_empty() && test[0] != "NONE";
    out.push(result(
        name,
        "healthcheck",
        has,
        if has {
            format!("test: {}", test.join(" "))
        } else {
            "no healthcheck".to_string()
        },
    ));
    out
}

fn short(fp: &str) -> &str {
    &fp[..12.min(fp.len())]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Status;

    fn facts(json: serde_json::Value) -> ContainerFacts {
        ContainerFacts {
            inspect: serde_json::from_value(json).unwrap(),
            history: Ok(vec!["/bin/sh -c #(nop) ADD file:abc in /".into()]),
            changes: Ok(vec![]),
        }
    }

    fn status(r: &[CheckResult], id: &str) -> (Status, String) {
        let x = r.iter().find(|x| x.check == id).unwrap();
        (x.status, x.evidence.clone())
    }

    fn no_secrets(_: &str) -> Vec<SecretHit> {
        Vec::new()
    }

    #[test]
    fn hardened_container_passes_everything() {
        let f = facts(serde_json::json!({
            "Name": "/openclaw",
            "Config": {"User": "1000:1000", "Image": "openclaw/openclaw@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                       "Env": ["PATH=/usr/bin", "NODE_ENV=production"],
                       "Healthcheck": {"Test": ["CMD", "node", "health.js"]}},
            "HostConfig": {"Privileged": false, "CapDrop": ["ALL"], "CapAdd": ["NET_BIND_SERVICE"],
                           "ReadonlyRootfs": true, "NetworkMode": "openclaw_internal",
                           "Memory": 2147483648i64, "NanoCpus": 2000000000i64, "PidsLimit": 256,
                           "SecurityOpt": ["no-new-privileges:true"],
                           "PortBindings": {"18789/tcp": [{"HostIp": "127.0.0.1", "HostPort": "18789"}]},
                           "LogConfig": {"Type": "json-file", "Config": {"max-size": "10m", "max-file": "3"}}},
            "Mounts": [{"Type": "volume", "Name": "openclaw_data", "Source": "/var/lib/docker/volumes/openclaw_data/_data",
                        "Destination": "/home/node/.openclaw", "RW": true}],
            "NetworkSettings": {"Networks": {"openclaw_internal": {}}}
        }));
        let r = check(&f, &no_secrets);
        let failed: Vec<_> = r.iter().filter(|x| x.status != Status::Pass).collect();
        assert!(failed.is_empty(), "{failed:#?}");
        assert_eq!(r.len(), 23);
    }

    #[test]
    fn bad_container_fails_what_it_breaks() {
        let f = ContainerFacts {
            changes: Ok(vec![FilesystemChange {
                path: "/etc/evil".into(),
                kind: ChangeType::_1,
            }]),
            ..facts(serde_json::json!({
                "Name": "/bad",
                "Config": {"User": "", "Image": "busybox:latest", "Env": ["TOKEN=x"]},
                "HostConfig": {"Privileged": true, "CapAdd": ["sys_admin"], "NetworkMode": "host", "PidMode": "host",
                               "IpcMode": "host", "SecurityOpt": ["seccomp=unconfined"],
                               "PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]},
                               "LogConfig": {"Type": "json-file", "Config": {}}},
                "Mounts": [{"Type": "bind", "Source": "/var/run/docker.sock", "Destination": "/var/run/docker.sock", "RW": true},
                           {"Type": "bind", "Source": "/etc", "Destination": "/host-etc", "RW": true},
                           {"Type": "bind", "Source": "/usr", "Destination": "/host-usr", "RW": false}]
            }))
        };
        let scan = |t: &str| {
            if t.starts_with("TOKEN=") {
                vec![SecretHit {
                    rule: "generic".into(),
                    fingerprint: "00112233445566778899".into(),
                }]
            } else {
                vec![]
            }
        };
        let r = check(&f, &scan);
        let mut failed: Vec<&str> = r
            .iter()
            .filter(|x| x.status == Status::Fail)
            .map(|x| x.check.as_str())
            .collect();
        failed.sort_unstable();
        assert_eq!(
            failed,
            [
                "caps.add-dangerous",
                "caps.drop-all",
                "docker-socket",
                "drift",
                "env.secrets",
                "healthcheck",
                "image.digest",
                "limits.cpu",
                "limits.memory",
                "limits.pids",
                "logs.rotation",
                "mounts.sensitive",
                "namespace.ipc",
                "namespace.network",
                "namespace.pid",
                "network.isolation",
                "no-new-privileges",
                "ports.loopback",
                "privileged",
                "rootfs.read-only",
                "seccomp",
                "user.non-root",
            ]
        );
        let (_, ev) = status(&r, "env.secrets");
        assert_eq!(ev, "TOKEN: generic fingerprint 001122334455");
        let (_, ev) = status(&r, "mounts.sensitive");
        assert!(ev.contains("/etc -> /host-etc") && !ev.contains("/usr"), "{ev}");
        let (_, ev) = status(&r, "drift");
        assert!(ev.contains("A /etc/evil"), "{ev}");
    }

    #[test]
    fn a_secret_variable_can_be_accepted_by_name_and_no_other() {
        let scan = |t: &str| {
            if t.contains("=tok") {
                vec![SecretHit {
                    rule: "generic".into(),
                    fingerprint: "00112233445566778899".into(),
                }]
            } else {
                vec![]
            }
        };
        let labels = serde_json::json!({
            "sidecar.audit.accept": "ports.loopback, env.secrets:GATEWAY_TOKEN",
            "sidecar.audit.reason": "the gateway takes its token from the environment"
        });
        let f = facts(serde_json::json!({"Config": {"Env": ["GATEWAY_TOKEN=tok1", "HOME=/x"], "Labels": labels}}));
        let r = check(&f, &scan);
        let env = r.iter().find(|x| x.check == "env.secrets").unwrap();
        assert_eq!(env.status, Status::Accepted);
        assert_eq!(
            env.reason.as_deref(),
            Some("the gateway takes its token from the environment")
        );
        assert!(env.evidence.contains("GATEWAY_TOKEN: generic") && env.evidence.contains("(accepted)"));
        // Another variable holding a secret fails the check, the accepted one notwithstanding.
        let f = facts(serde_json::json!({"Config": {"Env": ["GATEWAY_TOKEN=tok1", "OTHER=tok2"], "Labels": labels}}));
        let (s, ev) = status(&check(&f, &scan), "env.secrets");
        assert_eq!(s, Status::Fail, "{ev}");
        assert!(
            ev.contains("OTHER: generic fingerprint 001122334455;")
                || ev.ends_with("OTHER: generic fingerprint 001122334455"),
            "{ev}"
        );
        // A secret only in another variable: nothing accepted.
        let f = facts(serde_json::json!({"Config": {"Env": ["OTHER=tok2"], "Labels": labels}}));
        let (s, _) = status(&check(&f, &scan), "env.secrets");
        assert_eq!(s, Status::Fail);
    }

    #[test]
    fn mount_points_docker_created_are_not_drift() {
        let change = |path: &str, kind| FilesystemChange {
            path: path.into(),
            kind,
        };
        let f = ContainerFacts {
            changes: Ok(vec![
                change("/etc", ChangeType::_0),
                change("/etc/caddy", ChangeType::_0),
                change("/etc/caddy/Caddyfile", ChangeType::_1),
                change("/etc/passwd", ChangeType::_0),
            ]),
            ..facts(serde_json::json!({
                "Mounts": [{"Type": "bind", "Source": "/srv/Caddyfile", "Destination": "/etc/caddy/Caddyfile", "RW": false}]
            }))
        };
        let (s, ev) = status(&check(&f, &no_secrets), "drift");
        assert_eq!(s, Status::Fail);
        assert_eq!(ev, "1 changed paths: C /etc/passwd");
        let f = ContainerFacts {
            changes: Ok(vec![
                change("/etc", ChangeType::_0),
                change("/etc/caddy/Caddyfile", ChangeType::_1),
            ]),
            ..f
        };
        let (s, ev) = status(&check(&f, &no_secrets), "drift");
        assert_eq!(s, Status::Pass, "{ev}");
    }

    #[test]
    fn log_rotation_needs_max_size_and_max_file() {
        for (config, ok) in [
            (serde_json::json!({"max-size": "10m", "max-file": "3"}), true),
            (serde_json::json!({"max-size": "10m"}), false),
            (serde_json::json!({"max-file": "3"}), false),
            (serde_json::json!({}), false),
        ] {
            let f = facts(serde_json::json!({"HostConfig": {"LogConfig": {"Type": "json-file", "Config": config}}}));
            let (s, ev) = status(&check(&f, &no_secrets), "logs.rotation");
            assert_eq!(s == Status::Pass, ok, "{ev}");
        }
    }

    #[test]
    fn image_ids_count_as_pinned_and_tags_do_not() {
        for (image, pinned) in [
            (
                "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                true,
            ),
            (
                "busybox@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                true,
            ),
            ("busybox:1.36", false),
            ("sha256:short", false),
        ] {
            let f = facts(serde_json::json!({"Config": {"Image": image}}));
            let (s, _) = status(&check(&f, &no_secrets), "image.digest");
            assert_eq!(s == Status::Pass, pinned, "{image}");
        }
    }

    #[test]
    fn unavailable_history_is_an_error_not_a_pass() {
        let f = ContainerFacts {
            history: Err("no such image".into()),
            ..facts(serde_json::json!({}))
        };
        let (s, _) = status(&check(&f, &no_secrets), "image.history-secrets");
        assert_eq!(s, Status::Error);
    }
}
