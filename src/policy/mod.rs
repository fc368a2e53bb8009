//! The guide's checklist, checked: per container (through the Docker API), for the daemon and for
//! the host's files.
//!
//! Every check has a stable id ([`CHECKS`]), a severity, and gives its evidence and the fix. The
//! container and daemon checks are pure functions of what the Docker API returned
//! ([`container::ContainerFacts`], [`daemon::DaemonFacts`]), so they are tested on fixtures;
//! [`audit`] gathers those facts from a live daemon. Secrets found in environment variables or
//! image history are reported by rule and keyed fingerprint only, never by value.
//!
//! Accepted risks are declared on the container (`sidecar.audit.accept=<id>[,<id>…]` with a
//! `sidecar.audit.reason` label) or, for daemon and host checks, in `[audit] accept` in the
//! config; they are shown as `accepted`, never hidden.
use serde::Serialize;

pub mod audit;
pub mod container;
pub mod daemon;
pub mod enforce;
#[cfg(test)]
mod golden_tests;
pub mod host;
pub mod rotate;

/// Label listing the check ids accepted for a container.
pub const ACCEPT_LABEL: &str = "sidecar.audit.accept";
/// Label giving the reason for the accepted risks.
pub const REASON_LABEL: &str = "sidecar.audit.reason";
/// The `container` field of daemon checks.
pub const DAEMON: &str = "(daemon)";
/// The `container` field of host checks.
pub const HOST: &str = "(host)";

/// How bad a failed check is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Hardening that limits damage.
    Low,
    /// A weakness an attacker can use.
    Medium,
    /// A direct path to the host or to secrets.
    High,
}

impl Severity {
    /// `low`, `medium`, `high`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
        }
    }
}

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Holds.
    Pass,
    /// Does not hold.
    Fail,
    /// Does not hold, and the risk is declared accepted.
    Accepted,
    /// Could not be checked (the evidence says why).
    Error,
}

impl Status {
    /// `pass`, `fail`, `accepted`, `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::Accepted => "accepted",
            Status::Error => "error",
        }
    }
}

/// One check's result for one container (or the daemon, or the host).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckResult {
    /// Container name, [`DAEMON`] or [`HOST`].
    pub container: String,
    /// Check id (see [`CHECKS`]).
    pub check: String,
    /// Severity of a failure.
    pub severity: Severity,
    /// Outcome.
    pub status: Status,
    /// What was seen (never a secret value).
    pub evidence: String,
    /// How to fix a failure.
    pub fix: String,
    /// Why the risk is accepted (status `accepted`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A check of the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Check {
    /// Stable id.
    pub id: &'static str,
    /// Severity of a failure.
    pub severity: Severity,
    /// What must hold.
    pub title: &'static str,
    /// How to fix it.
    pub fix: &'static str,
}

macro_rules! checks {
    ($($id:literal, $sev:ident, $title:literal, $fix:literal;)*) => {
        /// Every check, in report order.
        pub const CHECKS: &[Check] = &[$(Check { id: $id, severity: Severity::$sev, title: $title, fix: $fix }),*];
    };
}

checks! {
    "user.non-root", High, "runs as a non-root user",
        "set `user: \"1000:1000\"` in compose (or USER in the Dockerfile)";
    "privileged", High, "not privileged",
        "remove `privileged: true`";
    "caps.drop-all", Medium, "drops all capabilities",
        "add `cap_drop: [ALL]` and add back only what is needed";
    "caps.add-dangerous", High, "adds no dangerous capability",
        "remove SYS_ADMIN, NET_RAW, SYS_PTRACE, MKNOD, AUDIT_WRITE, … from `cap_add`";
    "rootfs.read-only", Medium, "read-only root file system",
        "set `read_only: true` and give scratch space with `tmpfs:`";
    "docker-socket", High, "no Docker socket mounted",
        "remove the docker.sock mount (anyone in the container controls the host through it)";
    "namespace.pid", High, "not in the host PID namespace",
        "remove `pid: host`";
    "namespace.network", High, "not in the host network namespace",
        "remove `network_mode: host`; use a user-defined network";
    "namespace.ipc", High, "not in the host IPC namespace",
        "remove `ipc: host`";
    "limits.memory", Medium, "memory limit set",
        "set `deploy.resources.limits.memory` (or `mem_limit`)";
    "limits.cpu", Low, "CPU limit set",
        "set `deploy.resources.limits.cpus` (or `cpus`)";
    "limits.pids", Medium, "PID limit set",
        "set `deploy.resources.limits.pids` (or `pids_limit`)";
    "network.isolation", Medium, "on a user-defined network, not the default bridge",
        "put the service on a user-defined network (`internal: true` for what needs no internet)";
    "ports.loopback", Medium, "published ports bound to loopback",
        "publish as `127.0.0.1:PORT:PORT` and reach the service through the reverse proxy";
    "mounts.sensitive", High, "no writable mount of a sensitive host path",
        "do not mount /, /etc, /usr, /var/run, /run, /root, /proc, /sys, /boot or /var/lib/docker writable; mount what is needed read-only (`:ro`)";
    "image.digest", Low, "image pinned by digest",
        "reference the image as `name@sha256:<digest>`";
    "no-new-privileges", Medium, "no-new-privileges set",
        "add `security_opt: [\"no-new-privileges:true\"]`";
    "seccomp", High, "seccomp profile applied",
        "remove `seccomp=unconfined` (and `privileged`); use the default or a custom profile";
    "logs.rotation", Medium, "log rotation configured",
        "set `logging: {driver: json-file, options: {max-size: \"10m\", max-file: \"3\"}}` (or the `local` driver)";
    "env.secrets", High, "no secrets in environment variables",
        "pass secrets as files (Docker secrets, `*_FILE` variables) instead of environment values; rotate the ones found";
    "image.history-secrets", High, "no secrets in the image history",
        "rebuild without secrets in build arguments or RUN lines (use BuildKit `--secret`); rotate the ones found";
    "drift", Medium, "no changes under /usr, /bin, /sbin, /lib, /etc since start",
        "recreate the container from its image and find out what wrote there; `read_only: true` prevents it";
    "healthcheck", Low, "has a healthcheck",
        "add a HEALTHCHECK to the image or `healthcheck:` in compose";
    "daemon.userns", Medium, "user-namespace remapping enabled",
        "set `\"userns-remap\": \"default\"` in /etc/docker/daemon.json and restart dockerd";
    "daemon.tcp-tls", High, "no TCP socket without TLS",
        "remove `tcp://` from the daemon's hosts, or use `--tlsverify` with client certificates";
    "daemon.log-defaults", Medium, "default log options rotate",
        "set `\"log-driver\": \"json-file\", \"log-opts\": {\"max-size\": \"10m\", \"max-file\": \"3\"}` in /etc/docker/daemon.json";
    "daemon.seccomp", High, "seccomp available",
        "run Docker on a kernel built with seccomp and a dockerd with seccomp support";
    "host.containers-dir", Medium, "containers directory is 0700",
        "`chmod 700 /var/lib/docker/containers` (or `sidecar enforce`, `enforce.containers_dir`)";
    "host.log-files", Medium, "container log files are 0640 or stricter",
        "`chmod 640` the `*-json.log*` files (or `sidecar enforce`, `enforce.log_files`)";
    "host.data-owner", Low, "data volume files owned by the service user",
        "`chown -R 1000:1000` the volume (or `sidecar enforce` with `enforce.data_volume`)";
    "host.credentials", High, "credential files not readable by group or others",
        "`chmod 600` `.env`, `openclaw.json` and `credentials/**` (or `sidecar enforce` with `enforce.data_volume`)";
}

/// The catalogue entry of `id`.
pub fn check(id: &str) -> &'static Check {
    CHECKS
        .iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("unknown check id {id}"))
}

/// A result for catalogue check `id`.
pub fn result(container: &str, id: &str, pass: bool, evidence: impl Into<String>) -> CheckResult {
    let c = check(id);
    CheckResult {
        container: container.to_string(),
        check: id.to_string(),
        severity: c.severity,
        status: if pass { Status::Pass } else { Status::Fail },
        evidence: evidence.into(),
        fix: c.fix.to_string(),
        reason: None,
    }
}

/// A result for a check that could not be evaluated.
pub fn error(container: &str, id: &str, evidence: impl Into<String>) -> CheckResult {
    CheckResult {
        status: Status::Error,
        ..result(container, id, false, evidence)
    }
}

/// Turn failures of the `accepted` ids into [`Status::Accepted`] with `reason`.
pub fn apply_accepted(results: &mut [CheckResult], accepted: &[String], reason: &str) {
    for r in results.iter_mut() {
        if r.status == Status::Fail && accepted.iter().any(|a| a == &r.check) {
            r.status = Status::Accepted;
            r.reason = Some(if reason.is_empty() {
                "(no reason given)".to_string()
            } else {
                reason.to_string()
            });
        }
    }
}

/// Parse an accept label's value: ids separated by commas or spaces.
pub fn parse_accept(value: &str) -> Vec<String> {
    value
        .split([',', ' '])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// Failures at or above `threshold` that are neither passed nor accepted.
pub fn failures_at_or_above(results: &[CheckResult], threshold: Severity) -> usize {
    results
        .iter()
        .filter(|r| r.status == Status::Fail && r.severity >= threshold)
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_ids_are_unique_and_known() {
        let mut ids: Vec<&str> = CHECKS.iter().map(|c| c.id).collect();
        ids.sort_unstable();
        let n = ids.len();
        ids.dedup();
        assert_eq!(ids.len(), n, "duplicate check id");
        assert_eq!(check("privileged").severity, Severity::High);
    }

    #[test]
    fn accepted_failures_do_not_gate() {
        let mut r = vec![
            result("c", "docker-socket", false, "mounted"),
            result("c", "privileged", true, "false"),
            result("c", "limits.cpu", false, "none"),
        ];
        apply_accepted(&mut r, &parse_accept("docker-socket, image.digest"), "audit needs it");
        assert_eq!(r[0].status, Status::Accepted);
        assert_eq!(r[0].reason.as_deref(), Some("audit needs it"));
        assert_eq!(r[1].status, Status::Pass, "a pass stays a pass");
        assert_eq!(failures_at_or_above(&r, Severity::High), 0);
        assert_eq!(failures_at_or_above(&r, Severity::Low), 1);
    }
}
