//! Command-line interface: flags are parsed into plain values, then handed to the library.
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::app::audit::AuditSource;
use crate::config::{Config, ENV_CONFIG};
use crate::render::OutputFormat;

mod audit;
mod backup;
mod report;
mod run;
mod scan;

pub use backup::{BackupArgs, BackupsCommand, PruneArgs, RestoreArgs, VerifyArgs};

/// Exit status: success, nothing found.
pub const EXIT_OK: u8 = 0;
/// Exit status: findings were reported.
pub const EXIT_FINDINGS: u8 = 1;
/// Exit status: an error (bad usage, bad config, unreadable input); other inputs were still processed.
pub const EXIT_ERROR: u8 = 2;

const TOP_EXIT_CODES: &str = "Exit status: 0 success, 1 something was found or failed a check (findings, failed audit checks, new report items, an invalid backup), 2 error. Each command's --help gives its exact meaning.";

const EXIT_CODES: &str = "Exit status: 0 nothing found, 1 findings reported, 2 error (bad usage or configuration, or an input that could not be read; the other inputs are still scanned and reported).";

/// sidecar guards an OpenClaw Docker host: it finds and masks secrets in Docker's json-file logs.
#[derive(Debug, Parser)]
#[command(name = "sidecar", version, about, long_about = None, after_help = TOP_EXIT_CODES)]
pub struct Cli {
    /// Config file (TOML). Every key can also be set by a SIDECAR_… environment variable.
    #[arg(long, global = true, env = ENV_CONFIG, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// sidecar's state directory: the fingerprint key, checkpoints, `findings/`, `audit/`,
    /// `triage.json` (overrides `state_dir`, default /var/lib/sidecar).
    #[arg(long, global = true, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Scan files, directories or standard input for secrets and report them (never the secrets).
    ///
    /// Directories are walked recursively (symlinks are not followed). Each file's format is
    /// detected: Docker json-file logs are decoded exactly (16 KiB partial entries rejoined, PEM keys
    /// printed over several entries found as one), gzip files are decompressed, anything else is read
    /// as text, binary files are skipped. Every core is used; memory stays bounded whatever the size.
    #[command(after_help = EXIT_CODES)]
    Scan(ScanArgs),
    /// Check containers, the daemon and the host against the Docker security checklist.
    ///
    /// Through the Docker API (the socket must be reachable): per running container non-root user,
    /// privileged, capabilities, read-only root, docker.sock, host namespaces, limits, networks,
    /// published ports, sensitive writable mounts, image digest, no-new-privileges, seccomp, log
    /// rotation, secrets in environment variables and image history (reported by rule and
    /// fingerprint only), drift under /usr /bin /sbin /lib /etc, healthcheck; the daemon's user
    /// namespaces, TCP socket, default log options and seccomp; the host's containers directory,
    /// log file modes, data volume owner and credential files. A container accepts risks with the
    /// labels `sidecar.audit.accept=<id>[,<id>…]` and `sidecar.audit.reason=…`; they show as
    /// `accepted`. `--list-checks` prints every check id.
    #[command(after_help = audit::AUDIT_EXIT_CODES)]
    Audit(AuditArgs),
    /// Fix the host settings the audit checks, rotate logs that have no max-size, expire old logs.
    ///
    /// Modes of Docker's containers directory (0700) and log files (0640), owner and credential-file
    /// modes in the data volume; each part on or off in `[enforce]` (`containers_dir` and
    /// `log_files` on, `data_volume` off by default). Modes are only made stricter; symlinks are
    /// never followed. Live logs of containers without any max-size that pass `enforce.rotate_mib`
    /// are archived (masked, gzip) under `<state_dir>/log-archive/` and truncated; rotated logs and
    /// archives older than `enforce.retention_days` are removed. Prints each change.
    #[command(
        after_help = "Exit status: 0 done (or nothing to do), 2 some paths could not be changed (listed on stderr)."
    )]
    Enforce(EnforceArgs),
    /// The flagged-secret report: findings grouped by secret (fingerprint), with triage.
    ///
    /// Reads `<state_dir>/findings/` (JSONL finding records, rotated and gzip-compressed files too;
    /// damaged records are counted and skipped) and groups them by fingerprint: rule, severity, first
    /// and last seen, count, containers, masked preview, review status. `ack FINGERPRINT --note …`
    /// marks a secret as dealt with; it shows as new again if it is seen after that. The latest audit
    /// results appear in their own section. Never shows a secret.
    #[command(after_help = "Exit status: 0 no new item, 1 new items listed, 2 error.")]
    Report(ReportArgs),
    /// Run as a service: the live log guard, scheduled backups, audit, enforcement, alerts and
    /// fleet shipping, until SIGTERM.
    ///
    /// The log guard (`[guard]`) follows every container's json-file log under
    /// `<docker_root>/containers` (inotify, plus a full rescan every `guard.rescan_seconds`),
    /// including rotated and compressed files. Each secret is masked in Docker's own file (same
    /// length, the line stays valid JSON, so `docker logs` keeps working) unless `guard.mode` is
    /// `report-only`, the container is in `guard.report_only` or carries `sidecar.redact=false`;
    /// one record per occurrence goes to `<state_dir>/findings/findings.jsonl` (never the secret).
    /// Checkpoints in `<state_dir>/checkpoints.json` make a restart resume exactly. sidecar's own
    /// container is never scanned. `sidecar health` checks the guard's heartbeat.
    ///
    /// Backups run on `backup.schedule` when `backup.recipients` are set (a run missed while
    /// sidecar was down runs at start). The audit runs at start, every `run.audit_minutes` and for
    /// each container that starts (Docker events); its results are appended to
    /// `<state_dir>/audit/audit.jsonl`. `sidecar enforce` runs every `run.enforce_minutes`. With a
    /// webhook (`[alerts]`), new secrets are alerted every `run.alert_seconds`; with
    /// `fleet.ship_to`, findings are shipped every `run.ship_seconds`. Metrics on
    /// `run.metrics_listen`. SIGTERM or SIGINT stops everything within seconds (checkpoints and the
    /// report are flushed; a running backup is abandoned and its partial file removed).
    #[command(
        after_help = "Exit status: 0 stopped by a signal, 2 error at start (bad configuration, state directory not writable, Docker's containers directory not readable, nothing enabled)."
    )]
    Run(RunArgs),
    /// Exit 0 when `sidecar run`'s log guard is alive (its heartbeat is fresh): for a Docker
    /// HEALTHCHECK. Works without a shell, in a scratch image.
    #[command(after_help = "Exit status: 0 healthy, 1 no heartbeat or too old (the reason on stderr), 2 error.")]
    Health(HealthArgs),
    /// Check or print the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// List the detection rules in effect (built-in plus configured).
    Rules(RulesArgs),
    /// Back up a directory (the openclaw_data volume) into one encrypted `.tar.zst.age` file.
    ///
    /// Streams: nothing is staged. In a local directory the file is written under a temporary name,
    /// fsynced and renamed; on S3 (`--to s3://bucket/prefix`) it is a multipart upload that appears
    /// only when complete. Then it is re-read from the destination and verified (ciphertext BLAKE3
    /// hash, recorded in `<backup>.b3` in `b3sum` format, and the age header's recipients). Containers labelled
    /// `sidecar.backup.pause=true` are paused while the source is read. `age -d -i KEY F | zstd -d |
    /// tar -x` restores a backup without sidecar.
    #[command(after_help = backup::BACKUP_EXIT_CODES)]
    Backup(BackupArgs),
    /// Restore a backup into a directory, checking every file against the backup's manifest.
    ///
    /// Extracts into a staging directory inside the target and moves the result into place only
    /// when everything checked out; a failed restore leaves the target as it was. Entries with
    /// `..` or absolute paths, device files and hardlinks out of the tree are refused; nothing is
    /// written through a symlink. Setuid/setgid/sticky bits and `security.*`/`trusted.*` extended
    /// attributes are dropped (and listed) unless --preserve-privileges is given.
    #[command(after_help = backup::BACKUP_EXIT_CODES)]
    Restore(RestoreArgs),
    /// Verify a backup: its hash and recipients without a key; with --identity, every file.
    #[command(after_help = backup::BACKUP_EXIT_CODES)]
    Verify(VerifyArgs),
    /// Work with the backups in a destination.
    #[command(subcommand)]
    Backups(BackupsCommand),
    /// Delete the backups the retention policy (`backup.retention`) does not keep.
    ///
    /// Only files named `<backup.name>-<stamp>.tar.zst.age` (and their `.b3` and `.index.age`)
    /// and day-old `.partial` files of killed backups are touched; the newest complete backup is
    /// always kept.
    #[command(after_help = backup::BACKUP_EXIT_CODES)]
    Prune(PruneArgs),
}

/// `sidecar scan` flags.
#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Files or directories to scan; `-` reads standard input. Default: Docker's container logs,
    /// `<docker_root>/containers` (`docker_root` defaults to /var/lib/docker).
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Output format of the findings.
    #[arg(long, value_enum, default_value = "table")]
    pub format: OutputFormat,
    /// Write findings to FILE (created 0600, atomically) instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Write a masked copy of every input file under DIR, at the same relative path.
    #[arg(long, value_name = "DIR")]
    pub redact_to: Option<PathBuf>,
    /// Extra rule file(s) in sidecar's schema (adds to `rules.files`).
    #[arg(long = "rules", value_name = "FILE")]
    pub rules: Vec<PathBuf>,
    /// gitleaks config file(s) to load (adds to `rules.gitleaks_configs`).
    #[arg(long = "gitleaks-config", value_name = "FILE")]
    pub gitleaks_config: Vec<PathBuf>,
    /// Baseline: do not report findings whose fingerprint is listed in FILE (one fingerprint per
    /// line, or a previous `--format jsonl`/`json` output).
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    /// Worker threads; 0 uses every core (overrides `scan.threads`).
    #[arg(long, short = 'j', value_name = "N")]
    pub threads: Option<usize>,
    /// Do not show a progress bar, even on a terminal.
    #[arg(long)]
    pub no_progress: bool,
}

/// `sidecar audit` flags.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Audit only this container (name or ID; repeatable). Without it: every running container,
    /// plus the daemon and host checks.
    #[arg(long, value_name = "NAME")]
    pub container: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: crate::render::AuditFormat,
    /// Exit 1 when a failure of this severity or higher remains (default `audit.fail_on`, low):
    /// low, medium, high or critical (no check is critical today, so `critical` fails nothing).
    #[arg(long, value_enum, value_name = "SEVERITY")]
    pub fail_on: Option<crate::policy::Severity>,
    /// Write the results to FILE (created 0600, atomically) instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Print the checks (id, severity, what must hold) and exit.
    #[arg(long)]
    pub list_checks: bool,
    /// Where containers are read: `api` (the Docker socket, every check), `files` (Docker's
    /// `containers/*/config.v2.json` and `hostconfig.json` under `docker_root`, no socket needed;
    /// image history, drift and the daemon's SecurityOptions are then `error`), `auto` (the API when
    /// it answers, else the files, saying so).
    #[arg(long, value_enum, default_value = "auto")]
    pub source: AuditSource,
}

/// `sidecar report` flags.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ReportArgs {
    /// Triage instead of reporting.
    #[command(subcommand)]
    pub action: Option<ReportAction>,
    /// Report on the findings shipped by every host to DEST (`s3://bucket/prefix` or a directory,
    /// as in `fleet.ship_to`) instead of this host's; containers show as `host/container`.
    #[arg(long, value_name = "DEST")]
    pub from: Option<String>,
    /// Only occurrences at or after T (RFC 3339, YYYY-MM-DD, or an age: 24h, 7d).
    #[arg(long, value_name = "T")]
    pub since: Option<String>,
    /// Only occurrences before T.
    #[arg(long, value_name = "T")]
    pub until: Option<String>,
    /// Only this container (name or ID prefix; repeatable).
    #[arg(long, value_name = "NAME")]
    pub container: Vec<String>,
    /// Only this rule (repeatable).
    #[arg(long, value_name = "ID")]
    pub rule: Vec<String>,
    /// `new` (not acknowledged, or seen again after the acknowledgement), `acked` or `all`.
    #[arg(long, default_value = "all", value_name = "STATUS")]
    pub status: String,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: crate::render::ReviewFormat,
    /// Write to FILE (created 0600, atomically) instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// `sidecar report ack|unack`.
#[derive(Debug, Subcommand)]
pub enum ReportAction {
    /// Acknowledge a secret (all its occurrences, by fingerprint or a unique prefix of it). It stays
    /// acknowledged until the secret is seen again after the acknowledgement.
    Ack {
        /// Fingerprint (at least 8 characters).
        fingerprint: String,
        /// What was done about it ("key rotated").
        #[arg(long)]
        note: String,
        /// Who (default: $USER).
        #[arg(long)]
        by: Option<String>,
    },
    /// Take an acknowledgement back.
    Unack {
        /// Fingerprint (at least 8 characters).
        fingerprint: String,
    },
    /// POST one alert per new secret not alerted before to the `[alerts]` webhook (`sidecar run`
    /// does this every `run.alert_seconds`).
    Alert,
    /// Ship the findings not shipped yet to `fleet.ship_to` under this host's name (`sidecar run`
    /// does this every `run.ship_seconds`).
    Ship,
}

/// `sidecar run` flags.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Docker's data root (overrides `docker_root`, default /var/lib/docker).
    #[arg(long, value_name = "DIR")]
    pub docker_root: Option<PathBuf>,
}

/// `sidecar health` flags.
#[derive(Debug, Args)]
pub struct HealthArgs {
    /// Unhealthy when the guard's heartbeat is older than this many seconds.
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    pub max_age: u64,
    /// Unhealthy when a container's live log has had bytes not scanned yet for longer than this
    /// many seconds (the guard is falling behind its busiest container); 0 = not checked.
    #[arg(long, default_value_t = 120, value_name = "SECONDS")]
    pub max_lag: u64,
}

/// `sidecar enforce` flags.
#[derive(Debug, Args)]
pub struct EnforceArgs {
    /// Only print what would change.
    #[arg(long)]
    pub dry_run: bool,
}

/// `sidecar config …`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate the config file, the environment overrides and every configured rule file.
    Check,
    /// Print the effective configuration (defaults, file, environment) as TOML.
    Show,
}

/// `sidecar rules` flags.
#[derive(Debug, Args)]
pub struct RulesArgs {
    /// Print the rules as TOML in sidecar's schema instead of a table.
    #[arg(long)]
    pub toml: bool,
}

/// A command's failure: printed once by [`run`] (`error: …`, and a hint where one helps), with
/// the exit status it ends the process with.
#[derive(Debug)]
pub struct CliError {
    error: anyhow::Error,
}

impl<E: Into<anyhow::Error>> From<E> for CliError {
    fn from(e: E) -> Self {
        Self { error: e.into() }
    }
}

impl CliError {
    /// Print the error (and its hint) and return the exit status: 1 for an invalid backup, 2 for
    /// everything else.
    fn report(self) -> u8 {
        if let Some(e) = self.error.downcast_ref::<crate::backup::BackupError>() {
            return crate::app::backup::report_error(e);
        }
        crate::say!("error: {:#}", self.error);
        EXIT_ERROR
    }
}

/// What a command returns: its exit status (0 success, 1 something found or failed a check), or
/// the error that ended it, turned into a [`CliError`] in one place.
pub type CmdResult = anyhow::Result<u8>;

/// Parse the command line and run; returns the process exit status.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    ExitCode::from(run_cli(cli))
}

fn run_cli(cli: Cli) -> u8 {
    let mut config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            crate::say!("error: {e}");
            return EXIT_ERROR;
        }
    };
    // Flags over the configuration, resolved once: every command sees the same state directory.
    if let Some(dir) = cli.state_dir {
        config.state_dir = dir;
    }
    // `sidecar run` must never wait for its stderr: messages are queued and dropped when full.
    let stderr_queue = matches!(cli.command, Command::Run(_))
        .then(crate::diag::detach)
        .flatten();
    init_tracing(&config.log);
    let code = dispatch(config, cli.command).unwrap_or_else(CliError::report);
    if let Some(queue) = stderr_queue {
        if crate::diag::dropped() > 0 {
            // stderr is not taking messages: dropping the queue would wait for it and then report
            // the failure on stdout. Its last messages are lost like the ones before.
            std::mem::forget(queue);
        }
    }
    code
}

fn dispatch(config: Config, command: Command) -> Result<u8, CliError> {
    let code = match command {
        Command::Scan(args) => scan::run(config, args)?,
        Command::Config(ConfigCommand::Show) => {
            print!("{}", config.to_toml());
            EXIT_OK
        }
        Command::Config(ConfigCommand::Check) => {
            let (engine, _) = crate::app::engine::build_engine(&config, &[], &[])?;
            let recipients = crate::app::backup::recipients(&config, &[], None)?.len();
            println!(
                "configuration ok: {} rules ({} built-in), state_dir {}, {} backup recipient(s)",
                engine.rules().len(),
                crate::redact::RuleFile::builtin().rule.len(),
                config.state_dir.display(),
                recipients
            );
            EXIT_OK
        }
        Command::Rules(args) => scan::list_rules(&config, args.toml)?,
        Command::Audit(args) => audit::run_audit(&config, args)?,
        Command::Enforce(args) => audit::run_enforce(&config, args)?,
        Command::Run(args) => run::run(&config, args)?,
        Command::Health(args) => run::health(&config, args)?,
        Command::Report(args) => report::run_report(&config, args)?,
        Command::Backup(args) => backup::run_backup(&config, args)?,
        Command::Restore(args) => backup::run_restore(&config, args)?,
        Command::Verify(args) => backup::run_verify(&config, args)?,
        Command::Backups(BackupsCommand::List { from, identity, fast }) => {
            backup::run_list(&config, from, identity, fast)?
        }
        Command::Prune(args) => backup::run_prune(&config, args)?,
    };
    Ok(code)
}

fn init_tracing(filter: &str) {
    let filter =
        tracing_subscriber::EnvFilter::try_new(filter).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    // A write to a full or closed stderr is dropped: with internal error logging on, the
    // subscriber would report it with `eprintln!`, which panics on the same dead stderr.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(crate::diag::writer)
        .log_internal_errors(false)
        .try_init();
    quiet_panics();
}

/// A panic reports its place, never its message: messages can quote the data being processed
/// (`byte index 9 is not a char boundary … of `<log text>``), and log text may hold a secret. The
/// report goes through [`crate::say!`], so a panic with a dead stderr does not panic again.
fn quiet_panics() {
    std::panic::set_hook(Box::new(|info| {
        let place = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_else(|| "an unknown place".into());
        let thread = std::thread::current();
        crate::say!(
            "internal error: thread '{}' panicked at {place} (message withheld: it may quote log content); please report it",
            thread.name().unwrap_or("unnamed")
        );
    }));
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }
}
