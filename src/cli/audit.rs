//! `sidecar audit`: the guide's checklist against the live daemon (or Docker's files) and the host.
use std::io::Write;

use anyhow::{Context, Result};

use super::{AuditArgs, AuditSource, EXIT_FINDINGS, EXIT_OK};
use crate::config::Config;
use crate::escape::{terminal, terminal_path};
use crate::policy::audit::{run, AuditOptions, Source};
use crate::policy::container::SecretHit;
use crate::policy::host::HostPaths;
use crate::policy::{failures_at_or_above, CHECKS};
use crate::redact::Scratch;
use crate::render::write_audit;

/// Exit statuses of `sidecar audit`.
pub const AUDIT_EXIT_CODES: &str = "Exit status: 0 no failure at or above --fail-on (accepted risks and passes only), 1 such failures remain, 2 error (neither the Docker API nor Docker's files readable, bad configuration, output not writable).";

/// The detection engine and fingerprint key the audit scans environment variables and image
/// history with.
pub(crate) struct Auditor {
    engine: crate::redact::Engine,
    key: crate::redact::FingerprintKey,
}

impl Auditor {
    pub(crate) fn new(config: &Config) -> Result<Self> {
        let (engine, _) = super::scan::build_engine(config, &[], &[])?;
        let key = crate::state::load_or_create_key(&config.state_dir)?;
        Ok(Self { engine, key })
    }

    /// Secrets in `text`, by rule and fingerprint.
    pub(crate) fn scan(&self, text: &str) -> Vec<SecretHit> {
        let mut scratch = Scratch::default();
        let mut found = Vec::new();
        self.engine.find(text.as_bytes(), &mut scratch, &mut found);
        found
            .iter()
            .map(|m| SecretHit {
                rule: self.engine.rules()[m.rule].id.clone(),
                fingerprint: self.key.fingerprint(&text.as_bytes()[m.secret.clone()]),
            })
            .collect()
    }
}

/// What to audit, from the config: `containers` (empty: everything).
pub(crate) fn audit_options(config: &Config, containers: Vec<String>) -> Result<AuditOptions> {
    let data_dir = (!config.audit.data_dir.as_os_str().is_empty()).then(|| config.audit.data_dir.clone());
    Ok(AuditOptions {
        containers,
        host: HostPaths {
            docker_root: config.docker_root.clone(),
            data_dir,
            data_owner: config.audit.owner()?,
        },
        daemon_json: config.audit.daemon_json.clone(),
        accept: config.audit.accept.clone(),
    })
}

/// What the audit reads: the Docker API, or Docker's own files.
pub(crate) enum Connection {
    /// The Docker API.
    Api(crate::docker::Docker),
    /// Docker's files under `docker_root`.
    Files(crate::docker::files::DockerFiles),
}

impl Connection {
    /// Said once when `auto` falls back to the files.
    pub(crate) const FALLBACK_NOTE: &'static str = "audit: no Docker API (no socket mounted): containers are audited from Docker's files under docker_root; image history, drift and the daemon's SecurityOptions need the API (docker-compose.audit.yml, or `sidecar audit` on the host)";

    /// Connect as `source` says.
    pub(crate) fn open(config: &Config, source: AuditSource) -> Result<Self> {
        let files = || {
            let f = crate::docker::files::DockerFiles::new(&config.docker_root);
            f.running().with_context(|| {
                format!(
                    "no Docker API, and Docker's files under {} cannot be read",
                    config.docker_root.display()
                )
            })?;
            Ok::<_, anyhow::Error>(Connection::Files(f))
        };
        match source {
            AuditSource::Api => Ok(Connection::Api(crate::docker::Docker::connect()?)),
            AuditSource::Files => files(),
            AuditSource::Auto => match crate::docker::Docker::connect() {
                Ok(d) => Ok(Connection::Api(d)),
                Err(api) => files().map_err(|e| anyhow::anyhow!("{api}; {e:#}")),
            },
        }
    }

    /// The audit's view of it.
    pub(crate) fn source(&self) -> Source<'_> {
        match self {
            Connection::Api(d) => Source::Api(d),
            Connection::Files(f) => Source::Files(f),
        }
    }
}

pub fn run_audit(config: &Config, args: AuditArgs) -> Result<u8> {
    if args.list_checks {
        for c in CHECKS {
            println!("{:<22} {:<6} {}", c.id, c.severity.as_str(), c.title);
        }
        return Ok(EXIT_OK);
    }
    let mut config = config.clone();
    if let Some(dir) = &args.state_dir {
        config.state_dir = dir.clone();
    }
    let fail_on = match args.fail_on {
        Some(s) => s,
        None => config.audit.fail_on()?,
    };
    let auditor = Auditor::new(&config)?;
    let opts = audit_options(&config, args.container.clone())?;
    let conn = Connection::open(&config, args.source)?;
    if let Connection::Files(_) = conn {
        if args.source == AuditSource::Auto {
            crate::say!("{}", Connection::FALLBACK_NOTE);
        }
    }
    let results = run(conn.source(), &opts, &|t: &str| auditor.scan(t))?;
    let mut text = Vec::new();
    write_audit(args.format, &results, &mut text)?;
    match &args.output {
        Some(path) => crate::fsutil::write_atomic(path, &text)
            .with_context(|| format!("--output {}: cannot write", path.display()))?,
        None => std::io::stdout().write_all(&text)?,
    }
    let failing = failures_at_or_above(&results, fail_on);
    if failing > 0 {
        crate::say!(
            "{failing} failed check(s) at or above {}; fix them or declare accepted risks (sidecar.audit.accept label)",
            fail_on.as_str()
        );
        return Ok(EXIT_FINDINGS);
    }
    Ok(EXIT_OK)
}

/// `sidecar enforce`: fix what the host checks find, as switched on in `[enforce]`.
pub fn run_enforce(config: &Config, args: super::EnforceArgs) -> Result<u8> {
    let (done, errors) = enforce_once(config, args.dry_run)?;
    for line in &done {
        println!("{line}");
    }
    for (path, why) in &errors {
        crate::say!("error: {}: {}", terminal_path(path), terminal(why));
    }
    crate::say!(
        "{} change(s) {}, {} error(s)",
        done.len(),
        if args.dry_run { "planned" } else { "made" },
        errors.len()
    );
    Ok(if errors.is_empty() { EXIT_OK } else { super::EXIT_ERROR })
}

/// Paths that could not be changed, with the reason.
pub(crate) type Failures = Vec<(std::path::PathBuf, String)>;

/// One enforcement pass: the changes made (or planned) as lines, and the paths that failed.
pub(crate) fn enforce_once(config: &Config, dry_run: bool) -> Result<(Vec<String>, Failures)> {
    let mut lines = Vec::new();
    use crate::policy::enforce::{enforce, EnforceOptions};
    let e = &config.enforce;
    let data_dir =
        (e.data_volume && !config.audit.data_dir.as_os_str().is_empty()).then(|| config.audit.data_dir.clone());
    let opts = EnforceOptions {
        docker_root: config.docker_root.clone(),
        containers_dir: e.containers_dir,
        log_files: e.log_files,
        data_dir,
        data_owner: config.audit.owner()?,
        dry_run,
    };
    let (changes, mut errors) = enforce(&opts);
    // Paths in the data volume and under Docker's root are named by containers: escaped.
    let verb = if dry_run { "would change" } else { "changed" };
    for c in &changes {
        lines.push(format!("{verb} {}: {}", terminal_path(&c.path), c.what));
    }
    // Rotation of logs without max-size, and retention.
    if e.rotate_mib > 0 || e.retention_days > 0 {
        use crate::policy::rotate::{rotate, Action, RotateOptions};
        let (engine, _) = super::scan::build_engine(config, &[], &[])?;
        let key = crate::state::load_or_create_key(&config.state_dir)?;
        let scan_opts = crate::logs::scan::ScanOptions::default();
        let scanner = crate::logs::scan::Scanner {
            engine: &engine,
            key: &key,
            options: &scan_opts,
        };
        let (daemon_json, _) = crate::policy::daemon::DaemonFacts::read_local(&config.audit.daemon_json);
        let daemon_max_size = daemon_json.map(|j| {
            j.and_then(|j| {
                let driver = j.get("log-driver").and_then(|d| d.as_str()).unwrap_or("json-file");
                if driver != "json-file" {
                    return Some(format!("{driver} driver"));
                }
                j.get("log-opts")?.get("max-size")?.as_str().map(String::from)
            })
        });
        let ropts = RotateOptions {
            docker_root: config.docker_root.clone(),
            archive_dir: config.state_dir.join("log-archive"),
            max_bytes: e.rotate_mib.saturating_mul(1 << 20),
            keep: (e.retention_days > 0).then(|| std::time::Duration::from_secs(e.retention_days * 86_400)),
            daemon_max_size,
            dry_run,
        };
        let (actions, errs) = rotate(&scanner, &ropts);
        let (rotated, removed) = if dry_run {
            ("would rotate", "would remove")
        } else {
            ("rotated", "removed")
        };
        for a in &actions {
            match a {
                Action::Rotated {
                    log,
                    archive_dir,
                    segments,
                    bytes,
                    masked,
                } => lines.push(format!(
                    "{rotated} {}: {bytes} bytes into {segments} archive(s) in {} ({masked} secret(s) masked)",
                    terminal_path(log),
                    terminal_path(archive_dir)
                )),
                Action::Removed(p) => lines.push(format!("{removed} {}", terminal_path(p))),
            }
        }
        errors.extend(errs);
    }
    Ok((lines, errors))
}
