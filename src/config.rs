//! The one configuration file: TOML at `--config` (default `/etc/sidecar/sidecar.toml`), with a
//! `SIDECAR_…` environment variable overriding every key. Nested keys join with `__`:
//! `state_dir` ← `SIDECAR_STATE_DIR`, `scan.threads` ← `SIDECAR_SCAN__THREADS`,
//! `rules.disable` ← `SIDECAR_RULES__DISABLE='["jwt","generic-secret"]'` (values are TOML).
//! Unknown keys are errors, in the file and in the environment.
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

use crate::redact::rules::AllowlistSpec;

/// Default location of the config file.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/sidecar/sidecar.toml";
/// Environment variables with this prefix override config keys.
pub const ENV_PREFIX: &str = "SIDECAR_";
/// `SIDECAR_CONFIG` names the config file; it is not a config key.
pub const ENV_CONFIG: &str = "SIDECAR_CONFIG";

/// The effective configuration.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Directory for sidecar's own state: the fingerprint key (`fingerprint.key`), checkpoints,
    /// findings. Created 0700.
    pub state_dir: PathBuf,
    /// Docker's data root; its `containers/` directory holds every container's json-file log.
    pub docker_root: PathBuf,
    /// Log verbosity of sidecar itself (`error`, `warn`, `info`, `debug`, `trace` or a tracing filter).
    pub log: String,
    /// Scanning.
    pub scan: ScanConfig,
    /// The live log guard of `sidecar run`.
    pub guard: GuardConfig,
    /// Detection rules.
    pub rules: RulesConfig,
    /// Backups of the data volume.
    pub backup: BackupConfig,
    /// The security audit (`sidecar audit`).
    pub audit: AuditConfig,
    /// What `sidecar enforce` changes on the host.
    pub enforce: EnforceConfig,
    /// What `sidecar run` does besides guarding logs.
    pub run: RunConfig,
    /// Webhook alerts on new secrets.
    pub alerts: AlertsConfig,
    /// Shipping findings to a fleet-wide destination.
    pub fleet: FleetConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            state_dir: PathBuf::from("/var/lib/sidecar"),
            docker_root: PathBuf::from("/var/lib/docker"),
            log: "warn".into(),
            scan: ScanConfig::default(),
            guard: GuardConfig::default(),
            rules: RulesConfig::default(),
            backup: BackupConfig::default(),
            audit: AuditConfig::default(),
            enforce: EnforceConfig::default(),
            run: RunConfig::default(),
            alerts: AlertsConfig::default(),
            fleet: FleetConfig::default(),
        }
    }
}

/// `[scan]`: how files are read.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ScanConfig {
    /// Worker threads; 0 uses every core.
    pub threads: usize,
    /// Read buffer in KiB; a line longer than this is scanned as text in overlapping windows.
    pub buffer_kib: usize,
    /// Largest text unit (a log entry rejoined from 16 KiB parts, a PEM block) matched in one go, in KiB.
    pub max_unit_kib: usize,
    /// Plain files larger than this many MiB are split into chunks scanned in parallel.
    pub chunk_mib: u64,
}

impl Default for ScanConfig {
    fn default() -> Self {
        Self {
            threads: 0,
            buffer_kib: 1024,
            max_unit_kib: 1024,
            chunk_mib: 32,
        }
    }
}

/// `[guard]`: the live log guard of `sidecar run`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct GuardConfig {
    /// Follow every container's json-file log under `docker_root` (off: `sidecar run` only does
    /// backups, audit and the rest).
    pub enabled: bool,
    /// `mask`: mask each secret in Docker's own files (same length, valid JSON) and report it;
    /// `report-only`: report, never write to Docker's files.
    pub mode: GuardMode,
    /// Only these containers are followed; empty (the default) = every container. Each entry is a
    /// name (`openclaw-gateway`), a name prefix ending in `*` (`openclaw-*`), an id of at least 12
    /// characters, or a label `key=value` (`com.docker.compose.project=openclaw`).
    pub containers: Vec<String>,
    /// Containers (by name, or an id of at least 12 characters) that are reported but never masked.
    /// The label `sidecar.redact=false` does the same from the container's side.
    pub report_only: Vec<String>,
    /// This guard's name: a container labelled `sidecar.guard=<name>` is masked only by the guard
    /// of that name; every other guard reports it and leaves its log as it is (two guards on one
    /// engine, e.g. a test suite's beside the host's, never write into each other's containers).
    pub name: String,
    /// A full rescan of every container every this many seconds, under inotify (a safety net).
    pub rescan_seconds: u64,
    /// How long a log entry still open at the end of a live log (a 16 KiB split without its last
    /// part, a PEM key without its END line) waits for its end before it is scanned as it is.
    pub hold_seconds: u64,
    /// Checkpoints are written this often (an eighth of it on a busy host, and at exit), in milliseconds.
    pub checkpoint_ms: u64,
    /// Size cap of the `findings/` directory in MiB: `findings.jsonl` rotates at an eighth of it and
    /// the oldest rotated files are folded into per-secret aggregates (never dropped).
    pub findings_max_mib: u64,
    /// Rotated findings files kept one record per occurrence (`findings-<stamp>.jsonl`); older ones
    /// are folded into the summary `secrets-<stamp>.jsonl`.
    pub findings_keep: usize,
    /// Findings recorded one by one per container and second, after a burst of 200 seconds' worth;
    /// beyond it (a container logging a new secret on every line) they are masked all the same and
    /// counted per secret, or per rule for secrets not recorded yet, at each checkpoint.
    pub findings_per_second: u32,
}

impl Default for GuardConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            mode: GuardMode::Mask,
            containers: Vec::new(),
            report_only: Vec::new(),
            name: String::new(),
            rescan_seconds: 30,
            hold_seconds: 5,
            checkpoint_ms: 1000,
            findings_max_mib: 64,
            findings_keep: 10,
            findings_per_second: 50,
        }
    }
}

impl GuardConfig {
    /// True for `mask`, false for `report-only`.
    pub fn masks(&self) -> bool {
        self.mode == GuardMode::Mask
    }
}

/// `guard.mode`: whether the guard writes masks into Docker's files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum GuardMode {
    /// Mask each secret in place and report it (`mask`).
    Mask,
    /// Report only; never write to Docker's files (`report-only`).
    ReportOnly,
}

impl TryFrom<String> for GuardMode {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        match s.as_str() {
            "mask" => Ok(Self::Mask),
            "report-only" => Ok(Self::ReportOnly),
            other => Err(format!("guard.mode is {other:?}; use \"mask\" or \"report-only\"")),
        }
    }
}

impl From<GuardMode> for String {
    fn from(m: GuardMode) -> String {
        match m {
            GuardMode::Mask => "mask".into(),
            GuardMode::ReportOnly => "report-only".into(),
        }
    }
}

/// `audit.data_owner`: a numeric owner, written `uid:gid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Owner {
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
}

impl TryFrom<String> for Owner {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let bad = || format!("audit.data_owner = {s:?}: expected \"uid:gid\" (numbers)");
        let (u, g) = s.split_once(':').ok_or_else(bad)?;
        Ok(Self {
            uid: u.trim().parse().map_err(|_| bad())?,
            gid: g.trim().parse().map_err(|_| bad())?,
        })
    }
}

impl From<Owner> for String {
    fn from(o: Owner) -> String {
        format!("{}:{}", o.uid, o.gid)
    }
}

/// `[rules]`: which rules run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct RulesConfig {
    /// Extra rule files in sidecar's schema (see docs/configuration.md, "Rules").
    pub files: Vec<PathBuf>,
    /// gitleaks config files to load (`[[rules]]`, allowlists).
    pub gitleaks_configs: Vec<PathBuf>,
    /// Built-in or loaded rule ids to turn off.
    pub disable: Vec<String>,
    /// Baseline file: findings whose fingerprint it lists are not reported.
    pub baseline: Option<PathBuf>,
    /// Extra global allowlist (regexes on the secret, stopwords).
    pub allowlist: AllowlistSpec,
}

/// `[backup]`: what is backed up, where to, and to whom it is encrypted.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BackupConfig {
    /// Directory backed up (the `openclaw_data` volume, mounted read-only).
    pub source: PathBuf,
    /// Where backup files go: a local directory (created 0700) or `s3://bucket/prefix` (endpoint and
    /// credentials from the `AWS_*` variables).
    pub dest: String,
    /// Backup file name prefix: `<name>-<UTC stamp>.tar.zst.age`.
    pub name: String,
    /// age recipients (`age1…` or SSH public keys) that can decrypt; the host holds no identity.
    pub recipients: Vec<String>,
    /// A file of recipients, one per line (`#` comments), added to `recipients`.
    pub recipients_file: Option<PathBuf>,
    /// zstd level, 1 (fast) to 19 (small).
    pub level: i32,
    /// zstd worker threads; 0 uses every core.
    pub threads: u32,
    /// When `sidecar backup --schedule` runs backups: 5 cron fields (`30 3 * * *`), optionally
    /// with seconds first (6 fields), or `@hourly`, `@daily`, `@weekly`, `@monthly`.
    pub schedule: String,
    /// IANA time zone the schedule is read in (`UTC`, `Europe/Berlin`).
    pub timezone: String,
    /// Up to this many seconds of per-host delay added to each scheduled run (spreads a fleet).
    pub jitter_seconds: u64,
    /// Pause running containers carrying `pause_label` through the Docker API while the source is
    /// read (consistent SQLite databases and their `-wal` files). Without the Docker socket, a warning.
    pub pause: bool,
    /// Label of the containers to pause, `key=value` or `key`. A hosting provider running several
    /// stacks on one host gives each its own value.
    pub pause_label: String,
    /// Longest pause in seconds; then the containers are unpaused and the backup goes on with a
    /// warning that it may be inconsistent.
    pub pause_max_seconds: u64,
    /// Which backups `sidecar prune` keeps (also applied after each scheduled backup).
    pub retention: crate::backup::retention::Policy,
}

impl Default for BackupConfig {
    fn default() -> Self {
        Self {
            source: PathBuf::from("/data"),
            dest: "/backups".into(),
            name: "openclaw_data".into(),
            recipients: Vec::new(),
            recipients_file: None,
            level: 3,
            threads: 0,
            schedule: "@daily".into(),
            timezone: "UTC".into(),
            jitter_seconds: 0,
            pause: true,
            pause_label: "sidecar.backup.pause=true".into(),
            pause_max_seconds: 600,
            retention: crate::backup::retention::Policy::default(),
        }
    }
}

/// `[audit]`: where the host and daemon checks look, and the risks accepted for them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// The data volume as mounted into sidecar (owner and credential-file checks); empty: skip them.
    pub data_dir: PathBuf,
    /// Expected owner of the data volume's files, `uid:gid` (OpenClaw's `node` user).
    pub data_owner: Owner,
    /// dockerd's configuration file (mount it read-only into sidecar for the daemon checks).
    pub daemon_json: PathBuf,
    /// Lowest severity of a failure that makes `sidecar audit` exit 1: `low`, `medium`, `high` or
    /// `critical`.
    pub fail_on: FailOn,
    /// Accepted daemon and host checks: check id → reason (containers declare theirs with the
    /// `sidecar.audit.accept` and `sidecar.audit.reason` labels).
    pub accept: std::collections::BTreeMap<String, String>,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("/data"),
            data_owner: Owner { uid: 1000, gid: 1000 },
            daemon_json: PathBuf::from("/etc/docker/daemon.json"),
            fail_on: FailOn(crate::policy::Severity::Low),
            accept: Default::default(),
        }
    }
}

impl AuditConfig {
    /// `data_owner` as numbers.
    pub fn owner(&self) -> (u32, u32) {
        (self.data_owner.uid, self.data_owner.gid)
    }

    /// `fail_on` as a severity.
    pub fn fail_on(&self) -> crate::policy::Severity {
        self.fail_on.0
    }
}

/// `audit.fail_on`: a severity, parsed at load (any case), written in lower case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct FailOn(pub crate::policy::Severity);

impl TryFrom<String> for FailOn {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        use clap::ValueEnum;
        crate::policy::Severity::from_str(&s, true)
            .map(FailOn)
            .map_err(|_| format!("audit.fail_on = {s:?}: expected low, medium, high or critical"))
    }
}

impl From<FailOn> for String {
    fn from(f: FailOn) -> String {
        f.0.as_str().to_string()
    }
}

/// `[enforce]`: which host settings `sidecar enforce` fixes (modes only ever get stricter).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct EnforceConfig {
    /// `chmod 0700` `<docker_root>/containers` (Docker creates it 0710).
    pub containers_dir: bool,
    /// `chmod 0640` (or stricter) every container log file, rotated and compressed ones too.
    pub log_files: bool,
    /// Give `audit.data_dir`'s entries the owner `audit.data_owner` and make credential files 0600;
    /// off by default because sidecar mounts the volume read-only.
    pub data_volume: bool,
    /// Live json-file logs without any `max-size` (their own or the daemon's default) that grow past
    /// this many MiB are archived, masked and gzipped, under `<state_dir>/log-archive/` and
    /// truncated; 0 turns this off.
    pub rotate_mib: u64,
    /// Docker's rotated logs (`<id>-json.log.N[.gz]`) and sidecar's archives older than this many
    /// days are removed; 0 keeps them.
    pub retention_days: u64,
}

impl Default for EnforceConfig {
    fn default() -> Self {
        Self {
            containers_dir: true,
            log_files: true,
            data_volume: false,
            rotate_mib: 100,
            retention_days: 0,
        }
    }
}

/// `[run]`: the periodic work of `sidecar run`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RunConfig {
    /// Scheduled backups (`backup.schedule`) when `backup.recipients` are set.
    pub backup: bool,
    /// Full audit every this many minutes, plus an audit of each container when it starts (Docker
    /// events); results appended to `<state_dir>/audit/audit.jsonl`. 0 turns the audit off.
    pub audit_minutes: u64,
    /// `sidecar enforce` every this many minutes (what `[enforce]` switches on); 0 turns it off.
    pub enforce_minutes: u64,
    /// Serve Prometheus metrics at `http://<this>/metrics` (`127.0.0.1:9464`); empty: off.
    pub metrics_listen: String,
    /// Check the findings for new secrets and alert (`[alerts]`) every this many seconds; 0: off.
    pub alert_seconds: u64,
    /// Ship new findings to `fleet.ship_to` every this many seconds; 0: off.
    pub ship_seconds: u64,
}

impl Default for RunConfig {
    fn default() -> Self {
        Self {
            backup: true,
            audit_minutes: 60,
            enforce_minutes: 10,
            metrics_listen: String::new(),
            alert_seconds: 30,
            ship_seconds: 300,
        }
    }
}

/// `[fleet]`: where this host ships its findings, for one report across hosts.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct FleetConfig {
    /// Destination (`s3://bucket/prefix` or a directory); each host writes under `<ship_to>/<host>/`.
    /// Empty: no shipping.
    pub ship_to: String,
    /// This host's name in the fleet (default: the kernel's host name).
    pub host: String,
}

impl FleetConfig {
    /// The host name to ship under.
    pub fn host_name(&self) -> String {
        if !self.host.is_empty() {
            return self.host.clone();
        }
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "unknown".into())
    }
}

/// `[alerts]`: a webhook POSTed once per new secret (fingerprint).
#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    /// Webhook URL (Slack-compatible: the payload has a `text` field); empty: no alerts. Such URLs
    /// are credentials: prefer `webhook_url_file`.
    pub webhook_url: String,
    /// A file holding the webhook URL (a Docker secret); used when `webhook_url` is empty.
    pub webhook_url_file: Option<PathBuf>,
    /// Attempts per alert.
    pub attempts: u32,
    /// First wait between attempts, in seconds; doubled after each failure.
    pub backoff_seconds: u64,
    /// Timeout of one request, in seconds.
    pub timeout_seconds: u64,
}

impl std::fmt::Debug for AlertsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertsConfig")
            .field("webhook_url", &if self.webhook_url.is_empty() { "" } else { "(set)" })
            .field("webhook_url_file", &self.webhook_url_file)
            .field("attempts", &self.attempts)
            .field("backoff_seconds", &self.backoff_seconds)
            .field("timeout_seconds", &self.timeout_seconds)
            .finish()
    }
}

impl Default for AlertsConfig {
    fn default() -> Self {
        Self {
            webhook_url: String::new(),
            webhook_url_file: None,
            attempts: 5,
            backoff_seconds: 1,
            timeout_seconds: 10,
        }
    }
}

impl AlertsConfig {
    /// The webhook, if one is configured.
    pub fn webhook(&self) -> Result<Option<crate::findings::alert::Webhook>, ConfigError> {
        let url = if !self.webhook_url.is_empty() {
            self.webhook_url.clone()
        } else if let Some(f) = &self.webhook_url_file {
            crate::fsutil::read_input_string(f, crate::fsutil::InputKind::SECRET)
                .map_err(|e| ConfigError::Invalid(format!("alerts.webhook_url_file: {e}")))?
                .trim()
                .to_string()
        } else {
            return Ok(None);
        };
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(ConfigError::Invalid(
                "alerts webhook: the URL must start with https:// or http://".into(),
            ));
        }
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "unknown".into());
        Ok(Some(crate::findings::alert::Webhook {
            url,
            attempts: self.attempts.max(1),
            backoff: std::time::Duration::from_secs(self.backoff_seconds),
            timeout: std::time::Duration::from_secs(self.timeout_seconds.max(1)),
            host,
        }))
    }
}

/// Errors loading the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The named file is missing.
    #[error("config file {0} does not exist; create it (see docs/configuration.md) or drop --config/SIDECAR_CONFIG to use the defaults")]
    Missing(PathBuf),
    /// Parsing or validation failed.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl Config {
    /// Load defaults, then the file (if `path` is given it must exist; the default path may be
    /// absent), then `SIDECAR_…` environment variables.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        let (p, given) = match path {
            Some(p) => (p, true),
            None => (Path::new(DEFAULT_CONFIG_PATH), false),
        };
        match ConfigFile::read(p) {
            Ok(file) => fig = fig.merge(file),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && given => {
                return Err(ConfigError::Missing(p.to_path_buf()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(ConfigError::Invalid(e.to_string())),
        }
        fig = fig.merge(Env::prefixed(ENV_PREFIX).split("__").ignore(&["config"]));
        let cfg: Config = fig.extract().map_err(|e| ConfigError::Invalid(describe(e)))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Parse a TOML text on top of the defaults, without the environment (tests, `config check`).
    pub fn from_toml_str(text: &str) -> Result<Self, ConfigError> {
        let cfg: Config = Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::string(text))
            .extract()
            .map_err(|e| ConfigError::Invalid(describe(e)))?;
        cfg.validate()?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.scan.buffer_kib < 64 {
            return Err(ConfigError::Invalid("scan.buffer_kib must be at least 64".into()));
        }
        if self.scan.max_unit_kib < 64 {
            return Err(ConfigError::Invalid("scan.max_unit_kib must be at least 64".into()));
        }
        if self.scan.chunk_mib == 0 {
            return Err(ConfigError::Invalid("scan.chunk_mib must be at least 1".into()));
        }
        if self.state_dir.as_os_str().is_empty() {
            return Err(ConfigError::Invalid("state_dir must not be empty".into()));
        }
        if self.guard.rescan_seconds == 0 || self.guard.findings_max_mib == 0 {
            return Err(ConfigError::Invalid(
                "guard.rescan_seconds and guard.findings_max_mib must be at least 1".into(),
            ));
        }
        for id in self.audit.accept.keys() {
            if !crate::policy::CHECKS.iter().any(|c| c.id == id) {
                return Err(ConfigError::Invalid(format!(
                    "audit.accept: unknown check id {id:?} (see `sidecar audit --list-checks`)"
                )));
            }
        }
        if !(1..=19).contains(&self.backup.level) {
            return Err(ConfigError::Invalid("backup.level must be between 1 and 19".into()));
        }
        self.backup
            .retention
            .validate()
            .map_err(|e| ConfigError::Invalid(format!("backup.retention.keep_within: {e}")))?;
        crate::backup::schedule::Schedule::new(
            &self.backup.schedule,
            &self.backup.timezone,
            self.backup.jitter_seconds,
        )
        .map_err(|e| ConfigError::Invalid(format!("backup.schedule / backup.timezone: {e}")))?;
        let name_ok = |n: &str| {
            !n.is_empty()
                && n.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
        };
        if !name_ok(&self.backup.name) || self.backup.name.starts_with('.') {
            return Err(ConfigError::Invalid(
                "backup.name must be letters, digits, `_`, `-` or `.` and not start with `.`".into(),
            ));
        }
        if self.backup.pause && (self.backup.pause_label.trim().is_empty() || self.backup.pause_max_seconds == 0) {
            return Err(ConfigError::Invalid(
                "backup.pause_label must not be empty and backup.pause_max_seconds must be at least 1 (or set backup.pause = false)".into(),
            ));
        }
        if self.docker_root.as_os_str().is_empty() {
            return Err(ConfigError::Invalid("docker_root must not be empty".into()));
        }
        Ok(())
    }

    /// The effective configuration as TOML.
    pub fn to_toml(&self) -> String {
        // A webhook URL is a credential: shown as set, not printed.
        let mut shown = self.clone();
        if !shown.alerts.webhook_url.is_empty() {
            shown.alerts.webhook_url = "(set, not shown)".into();
        }
        toml::to_string_pretty(&shown).expect("config serializes")
    }
}

/// The config file, read once through [`crate::fsutil::read_input_string`] (a regular file of at
/// most 1 MiB: `--config /dev/zero` fails at once), as a figment provider whose errors name it.
struct ConfigFile {
    path: PathBuf,
    text: String,
}

impl ConfigFile {
    fn read(path: &Path) -> std::io::Result<Self> {
        Ok(Self {
            path: path.to_path_buf(),
            text: crate::fsutil::read_input_string(path, crate::fsutil::InputKind::CONFIG)?,
        })
    }
}

impl figment::Provider for ConfigFile {
    fn metadata(&self) -> figment::Metadata {
        figment::Metadata::from("TOML file", self.path.as_path())
    }

    fn data(&self) -> Result<figment::value::Map<figment::Profile, figment::value::Dict>, figment::Error> {
        Toml::string(&self.text).data()
    }
}

fn describe(e: figment::Error) -> String {
    e.into_iter()
        .map(|e| {
            let key = if e.path.is_empty() {
                String::new()
            } else {
                format!("`{}`: ", e.path.join("."))
            };
            let source = match &e.metadata {
                Some(m) => match &m.source {
                    Some(s) => format!(" (from {s})"),
                    None => format!(" (from {})", m.name),
                },
                None => String::new(),
            };
            format!("{key}{}{source}", e.kind)
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The keys of `v` (dotted) with their values; an empty map (`audit.accept`) is one key.
    fn leaves(prefix: &str, v: &serde_json::Value, out: &mut Vec<(String, serde_json::Value)>) {
        match v {
            serde_json::Value::Object(m) if !m.is_empty() => {
                for (k, x) in m {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    leaves(&key, x, out);
                }
            }
            _ => out.push((prefix.to_string(), v.clone())),
        }
    }

    /// The configuration reference (docs/configuration.md) is checked against the struct: every
    /// key, its environment variable and its default, and no key that does not exist.
    #[test]
    fn the_configuration_reference_lists_every_key_its_variable_and_its_default() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/configuration.md");
        let doc = std::fs::read_to_string(path).unwrap();
        let mut rows = std::collections::BTreeMap::new();
        let mut in_table = false;
        for line in doc.lines() {
            if line.starts_with("| key | env | default | meaning |") {
                in_table = true;
                continue;
            }
            if in_table && !line.starts_with('|') {
                in_table = false;
            }
            if !in_table || line.starts_with("|---") {
                continue;
            }
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let unquote = |c: &str| c.strip_prefix('`').and_then(|c| c.strip_suffix('`')).map(String::from);
            let key = unquote(cells[1]).unwrap_or_else(|| panic!("a key in backticks: {line}"));
            let env = unquote(cells[2]).unwrap_or_else(|| panic!("a variable in backticks: {line}"));
            let default = unquote(cells[3]).unwrap_or_else(|| cells[3].to_string());
            assert!(
                rows.insert(key.clone(), (env, default)).is_none(),
                "{key} twice in {path}"
            );
        }
        let mut keys = Vec::new();
        leaves("", &serde_json::to_value(Config::default()).unwrap(), &mut keys);
        let mut problems = Vec::new();
        for (key, value) in &keys {
            let Some((env, default)) = rows.remove(key) else {
                problems.push(format!("{key} is not in the table"));
                continue;
            };
            let want_env = format!("SIDECAR_{}", key.to_uppercase().replace('.', "__"));
            if env != want_env {
                problems.push(format!("{key}: variable {env}, expected {want_env}"));
            }
            let shown = match value {
                serde_json::Value::Null => "none".to_string(),
                serde_json::Value::String(s) if s.is_empty() => "\"\"".to_string(),
                serde_json::Value::String(s) => s.clone(),
                v => v.to_string(),
            };
            // Computed at run time when empty.
            let computed = key == "fleet.host" && default == "host name";
            if default != shown && !computed {
                problems.push(format!("{key}: default {default}, the code's is {shown}"));
            }
        }
        // Keys left out of the serialized defaults while empty (`skip_serializing_if`) must still
        // be keys the loader takes (unknown keys are errors).
        for (key, (_, default)) in &rows {
            let (section, leaf) = key.rsplit_once('.').unwrap_or(("", key));
            let text = format!("[{section}]\n{leaf} = {default}\n");
            if default != "[]" || Config::from_toml_str(&text).is_err() {
                problems.push(format!("{key} is in the table but not a configuration key"));
            }
        }
        assert!(problems.is_empty(), "{path}:\n{}", problems.join("\n"));
    }

    #[test]
    fn defaults_round_trip() {
        let text = Config::default().to_toml();
        assert_eq!(Config::from_toml_str(&text).unwrap(), Config::default());
    }

    #[test]
    fn unknown_keys_are_errors_naming_the_key() {
        let err = Config::from_toml_str("[scan]\nthreds = 2\n").unwrap_err();
        assert!(err.to_string().contains("threds"), "{err}");
        let err = Config::from_toml_str("stat_dir = '/x'\n").unwrap_err();
        assert!(err.to_string().contains("stat_dir"), "{err}");
    }

    #[test]
    #[allow(clippy::result_large_err)]
    fn file_and_env_layers() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("s.toml", "state_dir = '/from/file'\n[scan]\nthreads = 3\n")?;
            jail.set_env("SIDECAR_SCAN__THREADS", "5");
            jail.set_env("SIDECAR_RULES__DISABLE", "[\"jwt\"]");
            jail.set_env("SIDECAR_CONFIG", "ignored-here");
            let cfg = Config::load(Some(Path::new("s.toml"))).map_err(|e| e.to_string())?;
            assert_eq!(cfg.state_dir, PathBuf::from("/from/file"));
            assert_eq!(cfg.scan.threads, 5);
            assert_eq!(cfg.rules.disable, vec!["jwt".to_string()]);
            jail.set_env("SIDECAR_SCAN__NOPE", "1");
            let err = Config::load(Some(Path::new("s.toml"))).unwrap_err().to_string();
            assert!(err.contains("nope"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn missing_explicit_file_is_an_error() {
        let err = Config::load(Some(Path::new("/nonexistent/sidecar.toml"))).unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
    }
}
