//! Gathering the facts from a live daemon and the host, and running every check on them.
use std::collections::BTreeMap;
use std::path::PathBuf;

use super::container::{ContainerFacts, SecretHit};
use super::daemon::DaemonFacts;
use super::host::{HostFacts, HostPaths};
use super::{apply_accepted, parse_accept, CheckResult, Status, ACCEPT_LABEL, DAEMON, HOST, REASON_LABEL};
use crate::docker::files::DockerFiles;
use crate::docker::{Docker, DockerError};

/// What to audit.
#[derive(Debug, Clone)]
pub struct AuditOptions {
    /// Container names or IDs (a unique ID prefix works); empty: every running container plus the
    /// daemon and host checks.
    pub containers: Vec<String>,
    /// Where the host checks look.
    pub host: HostPaths,
    /// dockerd's configuration file.
    pub daemon_json: PathBuf,
    /// Accepted daemon and host checks: id → reason.
    pub accept: BTreeMap<String, String>,
}

/// Where the audit reads containers and the daemon.
#[derive(Debug, Clone, Copy)]
pub enum Source<'a> {
    /// The Docker API (everything).
    Api(&'a Docker),
    /// Docker's own files under its data root, without the socket: no image history, no `docker
    /// diff` and no daemon `SecurityOptions` (those checks say so).
    Files(&'a DockerFiles),
}

/// Why a check needs the API, for an audit from Docker's files.
const NEEDS_API: &str = "not in Docker's files (audited without the Docker API): run `sidecar audit` on the host, or add docker-compose.audit.yml";

impl Source<'_> {
    fn running(&self) -> Result<Vec<(String, String)>, DockerError> {
        match self {
            Source::Api(d) => Ok(d.running()?.into_iter().map(|c| (c.name, c.id)).collect()),
            Source::Files(f) => f.running(),
        }
    }

    fn inspect(&self, id: &str) -> Result<bollard::models::ContainerInspectResponse, DockerError> {
        match self {
            Source::Api(d) => d.inspect(id),
            Source::Files(f) => f.inspect(&f.resolve(id)?),
        }
    }
}

/// Run the audit. `scan` finds secrets (environment variables, image history) by rule and
/// fingerprint. Containers are in name order; the daemon's and host's results follow.
pub fn run(
    source: Source<'_>,
    opts: &AuditOptions,
    scan: &dyn Fn(&str) -> Vec<SecretHit>,
) -> Result<Vec<CheckResult>, DockerError> {
    let mut ids: Vec<(String, String)> = Vec::new();
    if opts.containers.is_empty() {
        ids = source.running()?;
    } else {
        for want in &opts.containers {
            let inspect = source.inspect(want)?;
            let id = inspect.id.clone().unwrap_or_else(|| want.clone());
            let name = inspect
                .name
                .clone()
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_string();
            ids.push((name, id));
        }
    }
    ids.sort();
    ids.dedup();
    let mut out = Vec::new();
    for (_, id) in &ids {
        let inspect = match source.inspect(id) {
            Ok(i) => i,
            // Removed between listing and inspecting.
            Err(_) if opts.containers.is_empty() => continue,
            Err(e) => return Err(e),
        };
        let image = inspect
            .image
            .clone()
            .or_else(|| inspect.config.as_ref().and_then(|c| c.image.clone()))
            .unwrap_or_default();
        let facts = match source {
            Source::Api(docker) => ContainerFacts {
                history: docker.history(&image).map_err(|e| e.to_string()),
                changes: docker.changes(id).map_err(|e| e.to_string()),
                inspect,
            },
            Source::Files(_) => ContainerFacts {
                history: Err(NEEDS_API.to_string()),
                changes: Err(NEEDS_API.to_string()),
                inspect,
            },
        };
        let mut results = super::checks::container::run(&facts, scan);
        let accepted = facts.label(ACCEPT_LABEL).map(parse_accept).unwrap_or_default();
        apply_accepted(&mut results, &accepted, facts.label(REASON_LABEL).unwrap_or(""));
        out.extend(results);
    }
    if opts.containers.is_empty() {
        let (security_options, logging_driver) = match source {
            Source::Api(docker) => {
                let info = docker.info()?;
                (
                    Some(info.security_options.unwrap_or_default()),
                    info.logging_driver.unwrap_or_default(),
                )
            }
            Source::Files(_) => (None, "json-file".to_string()),
        };
        let (daemon_json, dockerd_args) = DaemonFacts::read_local(&opts.daemon_json);
        let facts = DaemonFacts {
            security_options,
            logging_driver,
            daemon_json,
            dockerd_args,
            endpoint: crate::docker::endpoint(),
        };
        let mut rest = super::checks::daemon::run(&facts);
        rest.extend(super::checks::host::run(&HostFacts::read(&opts.host)));
        for r in rest.iter_mut() {
            if let Some(reason) = opts.accept.get(&r.check) {
                let id = [r.check.clone()];
                apply_accepted(std::slice::from_mut(r), &id, reason);
            }
        }
        out.extend(rest);
    }
    debug_assert!(out
        .iter()
        .all(|r| r.container != DAEMON || r.check.starts_with("daemon.")));
    debug_assert!(out.iter().all(|r| r.container != HOST || r.check.starts_with("host.")));
    Ok(out)
}

/// Counts by status.
pub fn counts(results: &[CheckResult]) -> BTreeMap<&'static str, usize> {
    let mut m = BTreeMap::new();
    for s in [Status::Pass, Status::Fail, Status::Accepted, Status::Error] {
        m.insert(s.as_str(), results.iter().filter(|r| r.status == s).count());
    }
    m
}
