//! `sidecar backup`, `restore`, `verify` and `backups list`.
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};

use anyhow::Context;

use super::{EXIT_FINDINGS, EXIT_OK};
use crate::app::backup::{backup_options, human, recipients, report_error, report_pause, run_schedule, BackupFlags};
use crate::backup::{self, restore, BackupError, BackupOptions, Progress, Recipient};
use crate::config::Config;
use crate::escape::terminal;
use crate::shutdown::Shutdown;
use crate::store::{open_store, Store};

pub(super) const BACKUP_EXIT_CODES: &str = "Exit status: 0 success, 1 the backup is invalid (damaged, truncated, wrong key, hostile entries, wrong recipients), 2 any other error (usage, configuration, permissions, disk).";

/// `sidecar backup` flags. Defaults come from `[backup]` in the config.
#[derive(Debug, Default, Args)]
pub struct BackupArgs {
    /// Directory to back up (default `backup.source`, /data).
    #[arg(long, value_name = "DIR")]
    pub source: Option<PathBuf>,
    /// Destination: a directory or `s3://bucket/prefix` (default `backup.dest`, /backups). S3
    /// endpoint, region and credentials come from `AWS_ENDPOINT_URL`, `AWS_REGION`,
    /// `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY` (or their `*_FILE` forms, or
    /// `~/.aws/credentials`).
    #[arg(long = "to", value_name = "DEST")]
    pub to: Option<String>,
    /// age recipient (`age1…` or an SSH public key); repeatable. Replaces `backup.recipients`.
    #[arg(long = "recipient", short = 'r', value_name = "R")]
    pub recipients: Vec<String>,
    /// File of recipients, one per line (replaces `backup.recipients_file`).
    #[arg(long, value_name = "FILE")]
    pub recipients_file: Option<PathBuf>,
    /// zstd level 1–19 (default `backup.level`, 3).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i32).range(1..=19))]
    pub level: Option<i32>,
    /// Keep running and back up on `backup.schedule` (in `backup.timezone`, with
    /// `backup.jitter_seconds`), pruning with `backup.retention` after each backup. A backup missed
    /// while sidecar was not running runs at start. Stops cleanly on SIGTERM or SIGINT (a running
    /// backup is abandoned and its partial file removed).
    #[arg(long)]
    pub schedule: bool,
    /// Do not show progress, even on a terminal.
    #[arg(long)]
    pub no_progress: bool,
}

/// `sidecar restore` flags.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The backup: a path, a file name in the destination, or `latest`.
    #[arg(value_name = "BACKUP")]
    pub backup: String,
    /// Where backups are: a directory or `s3://bucket/prefix` (default `backup.dest`, /backups).
    #[arg(long = "from", value_name = "DEST")]
    pub from: Option<String>,
    /// Directory to restore into: created if missing, must be empty unless --force.
    #[arg(long = "to", value_name = "DIR")]
    pub to: PathBuf,
    /// age identity file (`AGE-SECRET-KEY-1…`) or unencrypted SSH private key. Keep it off the host.
    #[arg(long, value_name = "FILE")]
    pub identity: PathBuf,
    /// Restore into a non-empty directory: its current content is moved aside into
    /// `.sidecar-replaced-<stamp>/` inside it first.
    #[arg(long)]
    pub force: bool,
    /// Decrypt, extract into a staging directory and check everything, then discard it.
    #[arg(long)]
    pub dry_run: bool,
    /// Restore only this path (relative to the backed-up directory, e.g. `workspace/notes`) and what
    /// is below it; repeatable. The whole backup is still read and checked.
    #[arg(long = "path", value_name = "SUB")]
    pub paths: Vec<PathBuf>,
    /// Also restore what grants privileges: setuid, setgid and sticky bits, `security.*` and
    /// `trusted.*` extended attributes (file capabilities), a world-writable root. Dropped by
    /// default, and listed: a backup is input from outside once it has left the host.
    #[arg(long)]
    pub preserve_privileges: bool,
    /// Give every restored file to the user running the restore, not to the owners in the backup
    /// (owners are restored only when running as root).
    #[arg(long)]
    pub no_same_owner: bool,
    /// Do not show progress, even on a terminal.
    #[arg(long)]
    pub no_progress: bool,
}

/// `sidecar verify` flags.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The backup: a path, a file name in the destination, or `latest`. Omit with --all.
    #[arg(value_name = "BACKUP", required_unless_present = "all", conflicts_with = "all")]
    pub backup: Option<String>,
    /// Verify every backup in the destination, oldest first (a restore drill); exit 1 if any fails.
    #[arg(long)]
    pub all: bool,
    /// Where backups are: a directory or `s3://bucket/prefix` (default `backup.dest`, /backups).
    #[arg(long = "from", value_name = "DEST")]
    pub from: Option<String>,
    /// With an identity, also decrypt and check every file against the manifest (writes nothing).
    /// Without, check the ciphertext hash and that the header is encrypted to the configured recipients.
    #[arg(long, value_name = "FILE")]
    pub identity: Option<PathBuf>,
    /// Do not show progress, even on a terminal.
    #[arg(long)]
    pub no_progress: bool,
}

/// `sidecar prune` flags: each `--keep-…` replaces the configured `backup.retention` value.
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Where backups are: a directory or `s3://bucket/prefix` (default `backup.dest`, /backups).
    #[arg(long = "from", value_name = "DEST")]
    pub from: Option<String>,
    /// Show what would be deleted and why the rest is kept; delete nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Keep the N newest backups.
    #[arg(long, value_name = "N")]
    pub keep_last: Option<u32>,
    /// Keep the newest backup of each of the last N hours.
    #[arg(long, value_name = "N")]
    pub keep_hourly: Option<u32>,
    /// … of each of the last N days.
    #[arg(long, value_name = "N")]
    pub keep_daily: Option<u32>,
    /// … of each of the last N ISO weeks.
    #[arg(long, value_name = "N")]
    pub keep_weekly: Option<u32>,
    /// … of each of the last N months.
    #[arg(long, value_name = "N")]
    pub keep_monthly: Option<u32>,
    /// … of each of the last N years.
    #[arg(long, value_name = "N")]
    pub keep_yearly: Option<u32>,
    /// Keep everything younger than this, counted from the newest backup (`36h`, `30d`, `1y6m`).
    #[arg(long, value_name = "DURATION")]
    pub keep_within: Option<String>,
}

/// `sidecar backups …`.
#[derive(Debug, Subcommand)]
pub enum BackupsCommand {
    /// List the backups in a destination, oldest first.
    List {
        /// Where backups are: a directory or `s3://bucket/prefix` (default `backup.dest`, /backups).
        #[arg(long = "from", value_name = "DEST")]
        from: Option<String>,
        /// Skip re-reading each backup to check its ciphertext hash (the `verified` column shows `-`).
        #[arg(long)]
        fast: bool,
        /// Decrypt each backup's small index (`<backup>.index.age`) to show file counts and sizes.
        #[arg(long, value_name = "FILE")]
        identity: Option<PathBuf>,
    },
}

/// Run `work` with live counters shown on stderr when it is a terminal: a bar when the total is
/// known (bytes of the backup file being read), else a spinner with files and bytes.
fn with_progress<T>(show: bool, total: Option<u64>, what: &str, work: impl FnOnce(Option<Arc<Progress>>) -> T) -> T {
    if !show || !std::io::stderr().is_terminal() {
        return work(None);
    }
    let counters = Arc::new(Progress::default());
    let bar = match total {
        Some(t) => {
            let bar = indicatif::ProgressBar::new(t);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:40} {bytes}/{total_bytes} ({bytes_per_sec}) {msg}",
                )
                .expect("valid template"),
            );
            bar
        }
        None => {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.set_style(
                indicatif::ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}").expect("valid template"),
            );
            bar
        }
    };
    let done = AtomicBool::new(false);
    let result = std::thread::scope(|scope| {
        scope.spawn(|| {
            while !done.load(Ordering::Relaxed) {
                let bytes = counters.bytes.load(Ordering::Relaxed);
                let files = counters.files.load(Ordering::Relaxed);
                if total.is_some() {
                    bar.set_position(bytes);
                    bar.set_message(format!("{what}: {files} files"));
                } else {
                    bar.set_message(format!("{what}: {files} files, {}", human(bytes)));
                    bar.tick();
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        let r = work(Some(counters.clone()));
        done.store(true, Ordering::Relaxed);
        r
    });
    bar.finish_and_clear();
    result
}

/// `sidecar backup`.
pub fn run_backup(config: &Config, args: BackupArgs) -> super::CmdResult {
    let flags = BackupFlags {
        source: args.source.clone(),
        to: args.to.clone(),
        recipients: args.recipients.clone(),
        recipients_file: args.recipients_file.clone(),
        level: args.level,
    };
    let opts = backup_options(config, &flags)?;
    // SIGTERM or SIGINT abandons the backup (its partial file is removed) or ends the schedule.
    let shutdown = Shutdown::on_signals().context("cannot handle SIGTERM and SIGINT")?;
    let stop = shutdown.flag().clone();
    if args.schedule {
        return Ok(run_schedule(config, opts, stop, None));
    }
    let started = Instant::now();
    let result = with_progress(!args.no_progress, None, "backing up", |progress| {
        backup::create_backup(&BackupOptions {
            progress,
            stop: Some(stop),
            ..opts
        })
    });
    match result {
        Ok(r) => {
            report_pause(&r);
            let t = &r.summary.totals;
            crate::say!(
                "backup {} written and verified: {}, {} files ({}) in {} entries, {} changed while read, {} skipped, {:.1} s",
                r.location,
                human(r.bytes),
                t.files,
                human(t.bytes),
                t.entries,
                t.changed,
                t.skipped,
                started.elapsed().as_secs_f64()
            );
            println!("{}", r.location);
            Ok(EXIT_OK)
        }
        Err(e) => Err(e.into()),
    }
}

fn store_or_default(config: &Config, from: Option<String>) -> Result<Arc<dyn Store>, BackupError> {
    Ok(open_store(&from.unwrap_or_else(|| config.backup.dest.clone()))?)
}

/// Size of a backup in its store, for the progress bar.
fn backup_size(b: &backup::BackupRef) -> Option<u64> {
    b.store
        .list()
        .ok()?
        .into_iter()
        .find(|o| o.name == b.name)
        .map(|o| o.size)
}

/// `sidecar restore`.
pub fn run_restore(config: &Config, args: RestoreArgs) -> super::CmdResult {
    let found = store_or_default(config, args.from).and_then(|store| backup::resolve(&args.backup, store));
    let found = found?;
    let started = Instant::now();
    let opts = restore::RestoreOptions {
        backup: found.clone(),
        identity: args.identity,
        target: args.to.clone(),
        force: args.force,
        dry_run: args.dry_run,
        paths: args.paths,
        progress: None,
        keep: restore::Keep {
            privileges: args.preserve_privileges,
            owner: !args.no_same_owner,
        },
    };
    let total = backup_size(&found);
    let result = with_progress(!args.no_progress, total, "restoring", |progress| {
        restore::restore(&restore::RestoreOptions { progress, ..opts })
    });
    match result {
        Ok(s) => {
            // Warnings quote archive entries and their extended attributes: one line each.
            for w in &s.warnings {
                crate::say!("warning: {}", terminal(w));
            }
            if let Some(aside) = &s.moved_aside {
                crate::say!("previous content of {} moved to {}", args.to.display(), aside.display());
            }
            say_dropped(&s.dropped, "not restored");
            crate::say!(
                "{} {}: {} entries, {} files ({}) checked against the manifest, {:.1} s",
                if args.dry_run { "dry run of" } else { "restored" },
                terminal(&found.label()),
                s.entries,
                s.files,
                human(s.bytes),
                started.elapsed().as_secs_f64()
            );
            Ok(EXIT_OK)
        }
        Err(e) => Err(e.into()),
    }
}

/// `sidecar verify`.
pub fn run_verify(config: &Config, args: VerifyArgs) -> super::CmdResult {
    let store = store_or_default(config, args.from)?;
    let targets = if args.all {
        match backup::list_backups(store.as_ref()) {
            Ok(names) if names.is_empty() => {
                anyhow::bail!("no backup in {}", store.describe());
            }
            Ok(names) => names
                .into_iter()
                .map(|name| backup::BackupRef {
                    store: store.clone(),
                    name,
                })
                .collect(),
            Err(e) => return Err(e.into()),
        }
    } else {
        match backup::resolve(args.backup.as_deref().unwrap_or("latest"), store) {
            Ok(b) => vec![b],
            Err(e) => return Err(e.into()),
        }
    };
    let configured = recipients(config, &[], None)?;
    let expected = (!configured.is_empty()).then_some(configured.as_slice());
    let mut worst = EXIT_OK;
    for b in &targets {
        let code = verify_one(b, expected, args.identity.as_deref(), args.no_progress);
        worst = worst.max(code);
    }
    if targets.len() > 1 {
        let failed = worst != EXIT_OK;
        crate::say!(
            "{} backup(s) checked: {}",
            targets.len(),
            if failed { "some FAILED (see above)" } else { "all good" }
        );
    }
    Ok(worst)
}

fn verify_one(
    b: &backup::BackupRef,
    expected: Option<&[Recipient]>,
    identity: Option<&std::path::Path>,
    no_progress: bool,
) -> u8 {
    // One backup's failure is reported here and the others are still checked.
    let stanzas = match backup::verify_without_key(b.store.as_ref(), &b.name, expected) {
        Ok(s) => s,
        Err(e) => return report_error(&e),
    };
    crate::say!(
        "{}: ciphertext hash matches, encrypted to {} recipient(s) {:?}{}",
        terminal(&b.label()),
        stanzas.len(),
        stanzas,
        if expected.is_some() { " as configured" } else { "" }
    );
    if let Some(identity) = identity {
        let total = backup_size(b);
        let result = with_progress(!no_progress, total, "verifying", |progress| {
            restore::verify(b, identity, progress)
        });
        match result {
            Ok(s) => {
                crate::say!(
                    "{}: decrypted, {} entries, {} files ({}) match the manifest",
                    terminal(&b.label()),
                    s.entries,
                    s.files,
                    human(s.bytes)
                );
                say_dropped(&s.dropped, "a restore drops");
            }
            Err(e) => return report_error(&e),
        }
    }
    EXIT_OK
}

/// `sidecar backups list`.
pub fn run_list(config: &Config, from: Option<String>, identity: Option<PathBuf>, fast: bool) -> super::CmdResult {
    let store = store_or_default(config, from)?;
    let identities = identity.as_deref().map(backup::crypto::read_identities).transpose()?;
    let objects = store.list().map_err(BackupError::from)?;
    let list = backup::sorted_backups(&objects);
    println!(
        "{:<48} {:<20} {:>10}  {:<8} {:>8} {:>10}",
        "backup", "created (UTC)", "size", "verified", "files", "content"
    );
    let mut bad = 0;
    for name in &list {
        // Names are whatever the destination (a bucket) lists: shown escaped.
        let shown = terminal(name);
        let size = objects.iter().find(|o| &o.name == name).map(|o| o.size).unwrap_or(0);
        let verified = if fast {
            "-"
        } else {
            match backup::verify_without_key(store.as_ref(), name, None) {
                Ok(_) => "yes",
                Err(e) => {
                    bad += 1;
                    crate::say!("{shown}: {e}");
                    "FAILED"
                }
            }
        };
        let created = backup::backup_time(name)
            .map(|t| crate::timefmt::rfc3339(std::time::UNIX_EPOCH + Duration::from_secs(t.max(0) as u64)))
            .unwrap_or_default();
        let (files, content) = match &identities {
            Some(ids) => match backup::read_index(store.as_ref(), name, ids) {
                Ok(ix) => (ix.totals.files.to_string(), human(ix.totals.bytes)),
                Err(_) => ("?".into(), "no index".into()),
            },
            None => ("-".into(), "-".into()),
        };
        println!(
            "{shown:<48} {created:<20} {:>10}  {verified:<8} {files:>8} {content:>10}",
            human(size)
        );
    }
    crate::say!("{} backup(s) in {}", list.len(), store.describe());
    if bad > 0 {
        crate::say!("{bad} backup(s) FAILED the ciphertext check: run `sidecar verify NAME` for details");
        return Ok(EXIT_FINDINGS);
    }
    Ok(EXIT_OK)
}

/// `sidecar prune`.
pub fn run_prune(config: &Config, args: PruneArgs) -> super::CmdResult {
    let store = store_or_default(config, args.from)?;
    let mut policy = config.backup.retention.clone();
    let set = |field: &mut u32, v: Option<u32>| {
        if let Some(v) = v {
            *field = v;
        }
    };
    set(&mut policy.keep_last, args.keep_last);
    set(&mut policy.keep_hourly, args.keep_hourly);
    set(&mut policy.keep_daily, args.keep_daily);
    set(&mut policy.keep_weekly, args.keep_weekly);
    set(&mut policy.keep_monthly, args.keep_monthly);
    set(&mut policy.keep_yearly, args.keep_yearly);
    if let Some(w) = args.keep_within {
        policy.keep_within = w;
    }
    if policy.is_empty() {
        anyhow::bail!(
            "the retention policy keeps nothing but the newest backup; set backup.retention or a --keep-… flag"
        );
    }
    let mode = if args.dry_run {
        backup::PruneMode::DryRun
    } else {
        backup::PruneMode::Delete
    };
    match backup::prune(store.as_ref(), &config.backup.name, &policy, mode) {
        Ok(decisions) => {
            let mut deleted = 0;
            for d in &decisions {
                let name = terminal(&d.name);
                if d.reasons.is_empty() {
                    deleted += 1;
                    println!("{} {name}", if args.dry_run { "would delete" } else { "deleted" });
                } else {
                    println!("keep {name} ({})", d.reasons.join(", "));
                }
            }
            crate::say!(
                "{} of {} backup(s) {} in {}",
                deleted,
                decisions.len(),
                if args.dry_run { "would be deleted" } else { "deleted" },
                store.describe()
            );
            Ok(EXIT_OK)
        }
        Err(e) => Err(e.into()),
    }
}

/// The privileges a restore leaves out (or, for verify, would), and how to keep them.
fn say_dropped(dropped: &restore::Dropped, done: &str) {
    if dropped.entries == 0 {
        return;
    }
    crate::say!(
        "privileges {done}, on {} entr{} (restore --preserve-privileges keeps them):",
        dropped.entries,
        if dropped.entries == 1 { "y" } else { "ies" }
    );
    for e in &dropped.examples {
        crate::say!("  {}", terminal(e));
    }
    if dropped.entries > dropped.examples.len() as u64 {
        crate::say!("  … and {} more", dropped.entries - dropped.examples.len() as u64);
    }
}
