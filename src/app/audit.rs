//! What the audit reads and scans with, from the configuration: the Docker API or Docker's own
//! files, the engine that finds secrets in environment variables and image history, and the paths
//! and owner the host checks look at.
use anyhow::{Context, Result};

use crate::config::Config;
use crate::policy::audit::{AuditOptions, Source};
use crate::policy::container::SecretHit;
use crate::policy::host::HostPaths;
use crate::redact::Scratch;

/// Where the audit reads containers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AuditSource {
    /// The Docker API when it answers, else Docker's files.
    Auto,
    /// The Docker API only.
    Api,
    /// Docker's files only.
    Files,
}

/// The detection engine and fingerprint key the audit scans environment variables and image
/// history with.
pub struct Auditor {
    engine: crate::redact::Engine,
    key: crate::redact::FingerprintKey,
}

impl Auditor {
    /// The configured engine and this install's fingerprint key.
    pub fn new(config: &Config) -> Result<Self> {
        let (engine, _) = super::engine::build_engine(config, &[], &[])?;
        let key = crate::state::load_or_create_key(&config.state_dir)?;
        Ok(Self { engine, key })
    }

    /// Secrets in `text`, by rule and fingerprint.
    pub fn scan(&self, text: &str) -> Vec<SecretHit> {
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
pub fn audit_options(config: &Config, containers: Vec<String>) -> Result<AuditOptions> {
    let data_dir = (!config.audit.data_dir.as_os_str().is_empty()).then(|| config.audit.data_dir.clone());
    Ok(AuditOptions {
        containers,
        host: HostPaths {
            docker_root: config.docker_root.clone(),
            data_dir,
            data_owner: config.audit.owner(),
        },
        daemon_json: config.audit.daemon_json.clone(),
        accept: config.audit.accept.clone(),
    })
}

/// What the audit reads: the Docker API, or Docker's own files.
pub enum Connection {
    /// The Docker API.
    Api(crate::docker::Docker),
    /// Docker's files under `docker_root`.
    Files(crate::docker::files::DockerFiles),
}

impl Connection {
    /// Said once when `auto` falls back to the files.
    pub const FALLBACK_NOTE: &'static str = "audit: no Docker API (no socket mounted): containers are audited from Docker's files under docker_root; image history, drift and the daemon's SecurityOptions need the API (docker-compose.audit.yml, or `sidecar audit` on the host)";

    /// Connect as `source` says.
    pub fn open(config: &Config, source: AuditSource) -> Result<Self> {
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
    pub fn source(&self) -> Source<'_> {
        match self {
            Connection::Api(d) => Source::Api(d),
            Connection::Files(f) => Source::Files(f),
        }
    }
}
