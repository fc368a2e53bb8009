//! The per-container checks: pure functions of what `docker inspect`, `docker history` and
//! `docker diff` return ([`ContainerFacts`]), one function per check, run from [`TABLE`] in report
//! order.
use bollard::models::{ChangeType, ContainerConfig, HostConfig, MountPoint};

use crate::policy::container::{ContainerFacts, SecretHit};
use crate::policy::{parse_accept, result, CheckId, CheckResult, Status, Verdict, ACCEPT_LABEL, REASON_LABEL};

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

/// Prefix, in the accept label, of the one environment variable whose secrets are accepted
/// (`env.secrets:NAME`).
const ACCEPT_ENV_PREFIX: &str = "env.secrets:";

/// What a container check looks at: the facts, the parts of `docker inspect` most checks read
/// (absent parts as their defaults), and the secret scanner.
struct Subject<'a> {
    facts: &'a ContainerFacts,
    config: ContainerConfig,
    host: HostConfig,
    mounts: Vec<MountPoint>,
    scan: &'a dyn Fn(&str) -> Vec<SecretHit>,
}

impl Subject<'_> {
    fn privileged(&self) -> bool {
        self.host.privileged.unwrap_or(false)
    }

    fn security_opts(&self) -> Vec<String> {
        self.host.security_opt.clone().unwrap_or_default()
    }
}

/// One container check.
type Check = fn(&Subject<'_>) -> Verdict;

/// The container checks, in report order.
const TABLE: &[(CheckId, Check)] = &[
    (CheckId::UserNonRoot, user_non_root),
    (CheckId::Privileged, privileged),
    (CheckId::CapsDropAll, caps_drop_all),
    (CheckId::CapsAddDangerous, caps_add_dangerous),
    (CheckId::RootfsReadOnly, rootfs_read_only),
    (CheckId::DockerSocket, docker_socket),
    (CheckId::MountsSensitive, mounts_sensitive),
    (CheckId::NamespacePid, namespace_pid),
    (CheckId::NamespaceNetwork, namespace_network),
    (CheckId::NamespaceIpc, namespace_ipc),
    (CheckId::LimitsMemory, limits_memory),
    (CheckId::LimitsCpu, limits_cpu),
    (CheckId::LimitsPids, limits_pids),
    (CheckId::NetworkIsolation, network_isolation),
    (CheckId::PortsLoopback, ports_loopback),
    (CheckId::ImageDigest, image_digest),
    (CheckId::NoNewPrivileges, no_new_privileges),
    (CheckId::Seccomp, seccomp),
    (CheckId::LogsRotation, logs_rotation),
    (CheckId::EnvSecrets, env_secrets),
    (CheckId::ImageHistorySecrets, image_history_secrets),
    (CheckId::Drift, drift),
    (CheckId::Healthcheck, healthcheck),
];

/// The ids of the container checks, in report order.
pub fn ids() -> impl Iterator<Item = CheckId> {
    TABLE.iter().map(|&(id, _)| id)
}

/// Run every container check. `scan` finds secrets in a text (by rule and fingerprint).
pub fn run(facts: &ContainerFacts, scan: &dyn Fn(&str) -> Vec<SecretHit>) -> Vec<CheckResult> {
    let subject = Subject {
        facts,
        config: facts.inspect.config.clone().unwrap_or_default(),
        host: facts.inspect.host_config.clone().unwrap_or_default(),
        mounts: facts.inspect.mounts.clone().unwrap_or_default(),
        scan,
    };
    let name = facts.name();
    TABLE
        .iter()
        .map(|&(id, check)| result(&name, id, check(&subject)))
        .collect()
}

fn under(path: &str, dir: &str) -> bool {
    path == dir || path.strip_prefix(dir).is_some_and(|rest| rest.starts_with('/'))
}

fn cap_names(caps: &Option<Vec<String>>) -> Vec<String> {
    caps.iter()
        .flatten()
        .map(|c| c.trim().to_ascii_uppercase().trim_start_matches("CAP_").to_string())
        .collect()
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

fn short(fp: &str) -> &str {
    &fp[..12.min(fp.len())]
}

fn user_non_root(s: &Subject<'_>) -> Verdict {
    let user = s.config.user.clone().unwrap_or_default();
    let uid = user.split(':').next().unwrap_or("").trim();
    let root = uid.is_empty() || uid == "root" || uid == "0";
    Verdict::pass_if(
        !root,
        if user.is_empty() {
            "User is unset (root)".to_string()
        } else {
            format!("User: {user}")
        },
    )
}

fn privileged(s: &Subject<'_>) -> Verdict {
    let privileged = s.privileged();
    Verdict::pass_if(!privileged, format!("Privileged: {privileged}"))
}

fn caps_drop_all(s: &Subject<'_>) -> Verdict {
    let drop = cap_names(&s.host.cap_drop);
    Verdict::pass_if(drop.iter().any(|c| c == "ALL"), format!("CapDrop: {}", list(&drop)))
}

fn caps_add_dangerous(s: &Subject<'_>) -> Verdict {
    let add = cap_names(&s.host.cap_add);
    let dangerous: Vec<String> = add
        .iter()
        .filter(|c| DANGEROUS_CAPS.contains(&c.as_str()))
        .cloned()
        .collect();
    let privileged = s.privileged();
    Verdict::pass_if(
        dangerous.is_empty() && !privileged,
        if privileged {
            "privileged: every capability".to_string()
        } else if dangerous.is_empty() {
            format!("CapAdd: {}", list(&add))
        } else {
            format!("CapAdd includes {}", dangerous.join(", "))
        },
    )
}

fn rootfs_read_only(s: &Subject<'_>) -> Verdict {
    let ro = s.host.readonly_rootfs.unwrap_or(false);
    Verdict::pass_if(ro, format!("ReadonlyRootfs: {ro}"))
}

fn docker_socket(s: &Subject<'_>) -> Verdict {
    let socket: Vec<String> = s
        .mounts
        .iter()
        .filter_map(|m| {
            let src = m.source.as_deref().unwrap_or("");
            let dst = m.destination.as_deref().unwrap_or("");
            (src.ends_with("docker.sock") || dst.ends_with("docker.sock")).then(|| format!("{src} -> {dst}"))
        })
        .collect();
    Verdict::pass_if(
        socket.is_empty(),
        if socket.is_empty() {
            "no docker.sock mount".to_string()
        } else {
            format!("mounted: {}", socket.join(", "))
        },
    )
}

fn mounts_sensitive(s: &Subject<'_>) -> Verdict {
    let writable_sensitive: Vec<String> = s
        .mounts
        .iter()
        .filter(|m| m.rw.unwrap_or(true))
        .filter(|m| matches!(m.typ.as_deref(), Some("bind") | None))
        .filter_map(|m| {
            let src = m.source.as_deref().unwrap_or("");
            let hit = src == "/" || SENSITIVE_PATHS.iter().any(|p| under(src, p));
            hit.then(|| format!("{src} -> {} (rw)", m.destination.as_deref().unwrap_or("")))
        })
        .collect();
    if !writable_sensitive.is_empty() {
        return Verdict::fail(format!("writable: {}", writable_sensitive.join(", ")));
    }
    let binds: Vec<String> = s
        .mounts
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
    Verdict::pass(format!("mounts: {}", list(&binds)))
}

/// Not in the host's namespace: `mode` is the container's `PidMode`, `NetworkMode` or `IpcMode`.
fn namespace(mode: &Option<String>) -> Verdict {
    let mode = mode.clone().unwrap_or_default();
    Verdict::pass_if(
        mode != "host",
        format!("mode: {}", if mode.is_empty() { "private" } else { &mode }),
    )
}

fn namespace_pid(s: &Subject<'_>) -> Verdict {
    namespace(&s.host.pid_mode)
}

fn namespace_network(s: &Subject<'_>) -> Verdict {
    namespace(&s.host.network_mode)
}

fn namespace_ipc(s: &Subject<'_>) -> Verdict {
    namespace(&s.host.ipc_mode)
}

fn limits_memory(s: &Subject<'_>) -> Verdict {
    let memory = s.host.memory.unwrap_or(0);
    if memory > 0 {
        Verdict::pass(format!("Memory: {memory} bytes"))
    } else {
        Verdict::fail("no memory limit")
    }
}

fn limits_cpu(s: &Subject<'_>) -> Verdict {
    let host = &s.host;
    let nano = host.nano_cpus.unwrap_or(0);
    let quota = host.cpu_quota.unwrap_or(0);
    let cpus = if nano > 0 {
        Some(nano as f64 / 1e9)
    } else if quota > 0 {
        Some(quota as f64 / host.cpu_period.filter(|p| *p > 0).unwrap_or(100_000) as f64)
    } else {
        None
    };
    match cpus {
        Some(c) => Verdict::pass(format!("CPUs: {c}")),
        None => Verdict::fail("no CPU limit"),
    }
}

fn limits_pids(s: &Subject<'_>) -> Verdict {
    let pids = s.host.pids_limit.unwrap_or(0);
    if pids > 0 {
        Verdict::pass(format!("PidsLimit: {pids}"))
    } else {
        Verdict::fail("no PID limit")
    }
}

fn network_isolation(s: &Subject<'_>) -> Verdict {
    let mode = s.host.network_mode.clone().unwrap_or_default();
    let networks: Vec<String> = s
        .facts
        .inspect
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
    Verdict::pass_if(
        isolated || mode == "none",
        format!(
            "NetworkMode: {}; networks: {}",
            if mode.is_empty() { "?" } else { &mode },
            list(&networks)
        ),
    )
}

fn ports_loopback(s: &Subject<'_>) -> Verdict {
    let mut open = Vec::new();
    let mut published = Vec::new();
    if let Some(ports) = s.host.port_bindings.as_ref() {
        let mut keys: Vec<&String> = ports.keys().collect();
        keys.sort();
        for port in keys {
            for b in ports[port].iter().flatten() {
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
    if s.host.publish_all_ports.unwrap_or(false) {
        open.push("PublishAllPorts: true".into());
    }
    if open.is_empty() {
        Verdict::pass(format!("published: {}", list(&published)))
    } else {
        Verdict::fail(format!("published on all interfaces: {}", open.join(", ")))
    }
}

fn image_digest(s: &Subject<'_>) -> Verdict {
    let image = s.config.image.clone().unwrap_or_default();
    let pinned = image.contains("@sha256:")
        || image
            .strip_prefix("sha256:")
            .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
    Verdict::pass_if(pinned, format!("image: {image}"))
}

fn no_new_privileges(s: &Subject<'_>) -> Verdict {
    let opts = s.security_opts();
    let nnp = opts.iter().any(|o| {
        let o = o.replace('=', ":");
        o == "no-new-privileges" || o == "no-new-privileges:true"
    });
    Verdict::pass_if(nnp, format!("SecurityOpt: {}", list(&opts)))
}

fn seccomp(s: &Subject<'_>) -> Verdict {
    let opts = s.security_opts();
    let unconfined = opts.iter().any(|o| o.replace('=', ":") == "seccomp:unconfined");
    if s.privileged() {
        Verdict::fail("privileged: seccomp disabled")
    } else if unconfined {
        Verdict::fail("seccomp=unconfined")
    } else {
        Verdict::pass(format!("SecurityOpt: {}", list(&opts)))
    }
}

/// The container's effective log config: the daemon's defaults are merged into it.
fn logs_rotation(s: &Subject<'_>) -> Verdict {
    let log = s.host.log_config.clone().unwrap_or_default();
    let driver = log.typ.clone().unwrap_or_default();
    let lopts = log.config.clone().unwrap_or_default();
    match driver.as_str() {
        "json-file" => {
            let size = lopts.get("max-size").cloned().unwrap_or_default();
            let files = lopts.get("max-file").cloned().unwrap_or_default();
            // The guide's settings: both set (max-size bounds each file, max-file how many are kept).
            let ok = !size.is_empty() && size != "-1" && !files.is_empty();
            Verdict::pass_if(
                ok,
                format!(
                    "json-file, max-size={}, max-file={}",
                    if size.is_empty() { "unset" } else { &size },
                    if files.is_empty() { "unset" } else { &files }
                ),
            )
        }
        "local" => Verdict::pass("local driver (rotates by default)"),
        "none" => Verdict::pass("logging disabled"),
        "" => Verdict::fail("no log config"),
        other => Verdict::pass(format!("{other} driver (rotation is the receiver's job)")),
    }
}

/// Secrets in the environment: by variable name, rule and fingerprint. `env.secrets:NAME` in the
/// accept label accepts the secrets of that one variable (a service that takes its token from
/// the environment); a secret in any other variable still fails.
fn env_secrets(s: &Subject<'_>) -> Verdict {
    let accepted_vars: Vec<String> = s
        .facts
        .label(ACCEPT_LABEL)
        .map(parse_accept)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|a| a.strip_prefix(ACCEPT_ENV_PREFIX).map(String::from))
        .collect();
    let env = s.config.env.as_deref().unwrap_or_default();
    let mut hits = Vec::new();
    let mut unaccepted = 0;
    for var in env {
        // The whole `NAME=value`: the name is the context that generic rules key on.
        let key = var.split('=').next().unwrap_or("");
        let accepted = accepted_vars.iter().any(|a| a == key);
        for h in (s.scan)(var) {
            unaccepted += usize::from(!accepted);
            hits.push(format!(
                "{key}: {} fingerprint {}{}",
                h.rule,
                short(&h.fingerprint),
                if accepted { " (accepted)" } else { "" }
            ));
        }
    }
    hits.dedup();
    if hits.is_empty() {
        return Verdict::pass(format!("{} variables, no secret found", env.len()));
    }
    let verdict = Verdict::fail(hits.join("; "));
    if unaccepted > 0 {
        return verdict;
    }
    let reason = s
        .facts
        .label(REASON_LABEL)
        .filter(|r| !r.is_empty())
        .unwrap_or("(no reason given)");
    Verdict {
        status: Status::Accepted,
        reason: Some(reason.to_string()),
        ..verdict
    }
}

fn image_history_secrets(s: &Subject<'_>) -> Verdict {
    let lines = match &s.facts.history {
        Ok(lines) => lines,
        Err(e) => return Verdict::error(format!("history unavailable: {e}")),
    };
    let mut hits = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        for h in (s.scan)(line) {
            hits.push(format!("layer {i}: {} fingerprint {}", h.rule, short(&h.fingerprint)));
        }
    }
    if hits.is_empty() {
        Verdict::pass(format!("{} history entries, no secret found", lines.len()))
    } else {
        Verdict::fail(hits.join("; "))
    }
}

fn drift(s: &Subject<'_>) -> Verdict {
    let changes = match &s.facts.changes {
        Ok(changes) => changes,
        Err(e) => return Verdict::error(format!("changes unavailable: {e}")),
    };
    let mount_points: Vec<&str> = s.mounts.iter().filter_map(|m| m.destination.as_deref()).collect();
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
    if total == 0 {
        return Verdict::pass(format!(
            "{} changes, none under {}",
            changes.len(),
            DRIFT_PATHS.join(", ")
        ));
    }
    drift.truncate(10);
    Verdict::fail(format!(
        "{total} changed paths: {}{}",
        drift.join(", "),
        if total > 10 { ", …" } else { "" }
    ))
}

/// The image's healthcheck (merged into the container's config) or the container's own.
fn healthcheck(s: &Subject<'_>) -> Verdict {
    let test = s
        .config
        .healthcheck
        .as_ref()
        .and_then(|h| h.test.clone())
        .unwrap_or_default();
    let has = !test.is_empty() && test[0] != "NONE";
    if has {
        Verdict::pass(format!("test: {}", test.join(" ")))
    } else {
        Verdict::fail("no healthcheck")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::FilesystemChange;

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
        let r = run(&f, &no_secrets);
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
        let r = run(&f, &scan);
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
        let r = run(&f, &scan);
        let env = r.iter().find(|x| x.check == "env.secrets").unwrap();
        assert_eq!(env.status, Status::Accepted);
        assert_eq!(
            env.reason.as_deref(),
            Some("the gateway takes its token from the environment")
        );
        assert!(env.evidence.contains("GATEWAY_TOKEN: generic") && env.evidence.contains("(accepted)"));
        // Another variable holding a secret fails the check, the accepted one notwithstanding.
        let f = facts(serde_json::json!({"Config": {"Env": ["GATEWAY_TOKEN=tok1", "OTHER=tok2"], "Labels": labels}}));
        let (s, ev) = status(&run(&f, &scan), "env.secrets");
        assert_eq!(s, Status::Fail, "{ev}");
        assert!(
            ev.contains("OTHER: generic fingerprint 001122334455;")
                || ev.ends_with("OTHER: generic fingerprint 001122334455"),
            "{ev}"
        );
        // A secret only in another variable: nothing accepted.
        let f = facts(serde_json::json!({"Config": {"Env": ["OTHER=tok2"], "Labels": labels}}));
        let (s, _) = status(&run(&f, &scan), "env.secrets");
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
        let (s, ev) = status(&run(&f, &no_secrets), "drift");
        assert_eq!(s, Status::Fail);
        assert_eq!(ev, "1 changed paths: C /etc/passwd");
        let f = ContainerFacts {
            changes: Ok(vec![
                change("/etc", ChangeType::_0),
                change("/etc/caddy/Caddyfile", ChangeType::_1),
            ]),
            ..f
        };
        let (s, ev) = status(&run(&f, &no_secrets), "drift");
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
            let (s, ev) = status(&run(&f, &no_secrets), "logs.rotation");
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
            let (s, _) = status(&run(&f, &no_secrets), "image.digest");
            assert_eq!(s == Status::Pass, pinned, "{image}");
        }
    }

    #[test]
    fn unavailable_history_is_an_error_not_a_pass() {
        let f = ContainerFacts {
            history: Err("no such image".into()),
            ..facts(serde_json::json!({}))
        };
        let (s, _) = status(&run(&f, &no_secrets), "image.history-secrets");
        assert_eq!(s, Status::Error);
    }
}
