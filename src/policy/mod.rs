//! The guide's checklist, checked: per container (through the Docker API), for the daemon and for
//! the host's files.
//!
//! Every check has a stable id ([`CheckId`], spelt as in [`CHECKS`]), a severity, and gives its
//! evidence and the fix. The facts are gathered first ([`container::ContainerFacts`] from the
//! Docker API or Docker's files, [`daemon::DaemonFacts`], [`host::HostFacts`] from the host's
//! files; [`audit`] does it for a live system); the checks ([`checks`]) are then pure functions of
//! those facts, one function per check, run from a table in report order, so they are tested on
//! fixtures. Secrets found in environment variables or image history are reported by rule and
//! keyed fingerprint only, never by value.
//!
//! Accepted risks are declared on the container (`sidecar.audit.accept=<id>[,<id>…]` with a
//! `sidecar.audit.reason` label) or, for daemon and host checks, in `[audit] accept` in the
//! config; they are shown as `accepted`, never hidden.
use serde::Serialize;

pub mod audit;
pub mod checks;
pub mod container;
pub mod daemon;
pub mod enforce;
#[cfg(test)]
mod golden_tests;
pub mod host;

/// Label listing the check ids accepted for a container.
pub const ACCEPT_LABEL: &str = "sidecar.audit.accept";
/// Label giving the reason for the accepted risks.
pub const REASON_LABEL: &str = "sidecar.audit.reason";
/// The `container` field of daemon checks.
pub const DAEMON: &str = "(daemon)";
/// The `container` field of host checks.
pub const HOST: &str = "(host)";

/// How bad a failed check is: the detection engine's severity, so the audit and the findings
/// rank on one scale (`low` < `medium` < `high` < `critical`). No audit check is `critical` today;
/// `--fail-on critical` and `audit.fail_on = "critical"` are accepted and gate on nothing.
pub use crate::redact::Severity;

/// `--fail-on` values, with what each severity means for an audit check.
impl clap::ValueEnum for Severity {
    fn value_variants<'a>() -> &'a [Self] {
        &[Severity::Low, Severity::Medium, Severity::High, Severity::Critical]
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        let help = match self {
            Severity::Low => "Hardening that limits damage",
            Severity::Medium => "A weakness an attacker can use",
            Severity::High => "A direct path to the host or to secrets",
            Severity::Critical => "Above high (no audit check has it; as a threshold, nothing fails)",
        };
        Some(clap::builder::PossibleValue::new(self.as_str()).help(help))
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

/// What one check found, before it is tied to a container and the catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Outcome.
    pub status: Status,
    /// What was seen (never a secret value).
    pub evidence: String,
    /// Why the risk is accepted (status `accepted`).
    pub reason: Option<String>,
}

impl Verdict {
    /// [`Status::Pass`] when `holds`, else [`Status::Fail`].
    pub fn pass_if(holds: bool, evidence: impl Into<String>) -> Self {
        Verdict {
            status: if holds { Status::Pass } else { Status::Fail },
            evidence: evidence.into(),
            reason: None,
        }
    }

    /// The check holds.
    pub fn pass(evidence: impl Into<String>) -> Self {
        Self::pass_if(true, evidence)
    }

    /// The check does not hold.
    pub fn fail(evidence: impl Into<String>) -> Self {
        Self::pass_if(false, evidence)
    }

    /// The check could not be evaluated; `evidence` says why.
    pub fn error(evidence: impl Into<String>) -> Self {
        Verdict {
            status: Status::Error,
            ..Self::fail(evidence)
        }
    }
}

/// A check of the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Check {
    /// Stable id, as reports and `sidecar.audit.accept` labels spell it.
    pub id: &'static str,
    /// Severity of a failure.
    pub severity: Severity,
    /// What must hold.
    pub title: &'static str,
    /// How to fix it.
    pub fix: &'static str,
}

/// Declares [`CheckId`] and [`CHECKS`] from one list, so every id has exactly one catalogue entry
/// (severity, title, fix) and the catalogue's order is the enum's.
macro_rules! checks {
    ($($variant:ident = $id:literal, $sev:ident, $title:literal, $fix:literal;)*) => {
        /// A check of the catalogue, by name: the ids the code refers to, so a misspelt id does
        /// not compile (the stable string is [`CheckId::as_str`]).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum CheckId {
            $(
                #[doc = concat!("`", $id, "`: ", $title, ".")]
                $variant,
            )*
        }

        impl CheckId {
            /// Every id, in catalogue order.
            pub const ALL: &'static [CheckId] = &[$(CheckId::$variant),*];
        }

        /// Every check, in report order (the order of [`CheckId`]).
        pub const CHECKS: &[Check] = &[$(Check { id: $id, severity: Severity::$sev, title: $title, fix: $fix }),*];
    };
}

checks! {
    UserNonRoot = "user.non-root", High, "runs as a non-root user",
        "set `user: \"1000:1000\"` in compose (or USER in the Dockerfile)";
    Privileged = "privileged", High, "not privileged",
        "remove `privileged: true`";
    CapsDropAll = "caps.drop-all", Medium, "drops all capabilities",
        "add `cap_drop: [ALL]` and add back only what is needed";
    CapsAddDangerous = "caps.add-dangerous", High, "adds no dangerous capability",
        "remove SYS_ADMIN, NET_RAW, SYS_PTRACE, MKNOD, AUDIT_WRITE, … from `cap_add`";
    RootfsReadOnly = "rootfs.read-only", Medium, "read-only root file system",
        "set `read_only: true` and give scratch space with `tmpfs:`";
    DockerSocket = "docker-socket", High, "no Docker socket mounted",
        "remove the docker.sock mount (anyone in the container controls the host through it)";
    NamespacePid = "namespace.pid", High, "not in the host PID namespace",
        "remove `pid: host`";
    NamespaceNetwork = "namespace.network", High, "not in the host network namespace",
        "remove `network_mode: host`; use a user-defined network";
    NamespaceIpc = "namespace.ipc", High, "not in the host IPC namespace",
        "remove `ipc: host`";
    LimitsMemory = "limits.memory", Medium, "memory limit set",
        "set `deploy.resources.limits.memory` (or `mem_limit`)";
    LimitsCpu = "limits.cpu", Low, "CPU limit set",
        "set `deploy.resources.limits.cpus` (or `cpus`)";
    LimitsPids = "limits.pids", Medium, "PID limit set",
        "set `deploy.resources.limits.pids` (or `pids_limit`)";
    NetworkIsolation = "network.isolation", Medium, "on a user-defined network, not the default bridge",
        "put the service on a user-defined network (`internal: true` for what needs no internet)";
    PortsLoopback = "ports.loopback", Medium, "published ports bound to loopback",
        "publish as `127.0.0.1:PORT:PORT` and reach the service through the reverse proxy";
    MountsSensitive = "mounts.sensitive", High, "no writable mount of a sensitive host path",
        "do not mount /, /etc, /usr, /var/run, /run, /root, /proc, /sys, /boot or /var/lib/docker writable; mount what is needed read-only (`:ro`)";
    ImageDigest = "image.digest", Low, "image pinned by digest",
        "reference the image as `name@sha256:<digest>`";
    NoNewPrivileges = "no-new-privileges", Medium, "no-new-privileges set",
        "add `security_opt: [\"no-new-privileges:true\"]`";
    Seccomp = "seccomp", High, "seccomp profile applied",
        "remove `seccomp=unconfined` (and `privileged`); use the default or a custom profile";
    LogsRotation = "logs.rotation", Medium, "log rotation configured",
        "set `logging: {driver: json-file, options: {max-size: \"10m\", max-file: \"3\"}}` (or the `local` driver)";
    EnvSecrets = "env.secrets", High, "no secrets in environment variables",
        "pass secrets as files (Docker secrets, `*_FILE` variables) instead of environment values; rotate the ones found";
    ImageHistorySecrets = "image.history-secrets", High, "no secrets in the image history",
        "rebuild without secrets in build arguments or RUN lines (use BuildKit `--secret`); rotate the ones found";
    Drift = "drift", Medium, "no changes under /usr, /bin, /sbin, /lib, /etc since start",
        "recreate the container from its image and find out what wrote there; `read_only: true` prevents it";
    Healthcheck = "healthcheck", Low, "has a healthcheck",
        "add a HEALTHCHECK to the image or `healthcheck:` in compose";
    DaemonUserns = "daemon.userns", Medium, "user-namespace remapping enabled",
        "set `\"userns-remap\": \"default\"` in /etc/docker/daemon.json and restart dockerd";
    DaemonTcpTls = "daemon.tcp-tls", High, "no TCP socket without TLS",
        "remove `tcp://` from the daemon's hosts, or use `--tlsverify` with client certificates";
    DaemonLogDefaults = "daemon.log-defaults", Medium, "default log options rotate",
        "set `\"log-driver\": \"json-file\", \"log-opts\": {\"max-size\": \"10m\", \"max-file\": \"3\"}` in /etc/docker/daemon.json";
    DaemonSeccomp = "daemon.seccomp", High, "seccomp available",
        "run Docker on a kernel built with seccomp and a dockerd with seccomp support";
    HostContainersDir = "host.containers-dir", Medium, "containers directory is 0700",
        "`chmod 700 /var/lib/docker/containers` (or `sidecar enforce`, `enforce.containers_dir`)";
    HostLogFiles = "host.log-files", Medium, "container log files are 0640 or stricter",
        "`chmod 640` the `*-json.log*` files (or `sidecar enforce`, `enforce.log_files`)";
    HostDataOwner = "host.data-owner", Low, "data volume files owned by the service user",
        "`chown -R 1000:1000` the volume (or `sidecar enforce` with `enforce.data_volume`)";
    HostCredentials = "host.credentials", High, "credential files not readable by group or others",
        "`chmod 600` `.env`, `openclaw.json` and `credentials/**` (or `sidecar enforce` with `enforce.data_volume`)";
}

impl CheckId {
    /// The catalogue entry.
    pub fn check(self) -> &'static Check {
        // In range: `CHECKS` and the enum are generated from the same list, in the same order.
        &CHECKS[self as usize]
    }

    /// The stable id (`user.non-root`, `daemon.tcp-tls`, …).
    pub fn as_str(self) -> &'static str {
        self.check().id
    }

    /// The id spelt `id`, if the catalogue has it (ids from labels and the config).
    pub fn parse(id: &str) -> Option<CheckId> {
        CheckId::ALL.iter().copied().find(|c| c.as_str() == id)
    }
}

impl std::fmt::Display for CheckId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// The result of check `id` for `container` (severity and fix from the catalogue).
pub fn result(container: &str, id: CheckId, verdict: Verdict) -> CheckResult {
    let c = id.check();
    CheckResult {
        container: container.to_string(),
        check: c.id.to_string(),
        severity: c.severity,
        status: verdict.status,
        evidence: verdict.evidence,
        fix: c.fix.to_string(),
        reason: verdict.reason,
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
    fn every_id_has_one_entry_with_severity_title_and_fix() {
        assert_eq!(CheckId::ALL.len(), CHECKS.len());
        for (i, &id) in CheckId::ALL.iter().enumerate() {
            let c = id.check();
            assert_eq!(c, &CHECKS[i], "{id:?} out of catalogue order");
            assert!(!c.id.is_empty() && !c.title.is_empty() && !c.fix.is_empty(), "{id:?}");
            assert_eq!(CheckId::parse(c.id), Some(id), "{} spelt twice", c.id);
            assert_eq!(id.to_string(), c.id);
        }
        assert_eq!(CheckId::parse("no.such-check"), None);
        assert_eq!(CheckId::Privileged.check().severity, Severity::High);
        assert_eq!(format!("{:<12}|", CheckId::Seccomp), "seccomp     |");
    }

    #[test]
    fn fail_on_accepts_every_severity() {
        use clap::ValueEnum;
        for (s, want) in [
            ("low", Severity::Low),
            ("Medium", Severity::Medium),
            ("high", Severity::High),
            ("critical", Severity::Critical),
        ] {
            assert_eq!(Severity::from_str(s, true), Ok(want));
        }
        assert!(Severity::from_str("severe", true).is_err());
        let r = [result("c", CheckId::LimitsCpu, Verdict::fail("none"))];
        assert_eq!(failures_at_or_above(&r, Severity::Critical), 0);
    }

    #[test]
    fn accepted_failures_do_not_gate() {
        let mut r = vec![
            result("c", CheckId::DockerSocket, Verdict::fail("mounted")),
            result("c", CheckId::Privileged, Verdict::pass("false")),
            result("c", CheckId::LimitsCpu, Verdict::fail("none")),
        ];
        apply_accepted(&mut r, &parse_accept("docker-socket, image.digest"), "audit needs it");
        assert_eq!(r[0].status, Status::Accepted);
        assert_eq!(r[0].reason.as_deref(), Some("audit needs it"));
        assert_eq!(r[1].status, Status::Pass, "a pass stays a pass");
        assert_eq!(failures_at_or_above(&r, Severity::High), 0);
        assert_eq!(failures_at_or_above(&r, Severity::Low), 1);
    }
}
