//! Backups from the configuration: recipients, destination, pausing, the options of one backup,
//! and the scheduled loop `sidecar backup --schedule` and `sidecar run` share, with what each event
//! says on stderr.
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use crate::backup::{self, BackupError, BackupOptions, Recipient};
use crate::config::Config;
use crate::escape::terminal;
use crate::store::open_store;

/// Exit status for an invalid backup (damaged, wrong key, hostile entries, wrong recipients).
const EXIT_INVALID: u8 = 1;
/// Exit status for any other error.
const EXIT_ERROR: u8 = 2;

/// Print a backup error with its hint; returns its exit status (1: the backup is invalid).
pub fn report_error(e: &BackupError) -> u8 {
    crate::say!("error: {e}");
    if let BackupError::Io { source, .. } = e {
        let hint = match source.kind() {
            std::io::ErrorKind::StorageFull => Some(
                "the file system is full: free space (`sidecar prune` removes old backups) or use another directory",
            ),
            std::io::ErrorKind::ReadOnlyFilesystem => {
                Some("the file system is mounted read-only: mount it read-write or use another directory")
            }
            std::io::ErrorKind::PermissionDenied => {
                Some("permission denied: run as a user that can write there (or as root)")
            }
            _ => None,
        };
        if let Some(h) = hint {
            crate::say!("hint: {h}");
        }
    }
    match e {
        BackupError::Invalid { .. } => EXIT_INVALID,
        _ => EXIT_ERROR,
    }
}

/// The recipients given (`-r`, `--recipients-file`), else the configured ones.
pub fn recipients(
    config: &Config,
    args_list: &[String],
    args_file: Option<&PathBuf>,
) -> Result<Vec<Recipient>, BackupError> {
    let (list, file) = if args_list.is_empty() && args_file.is_none() {
        (
            config.backup.recipients.as_slice(),
            config.backup.recipients_file.as_ref(),
        )
    } else {
        (args_list, args_file)
    };
    // An empty entry is no recipient: compose passes `[""]` while SIDECAR_BACKUP_RECIPIENT is unset.
    let mut out = list
        .iter()
        .filter(|r| !r.trim().is_empty())
        .map(|r| Recipient::parse(r))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(f) = file {
        out.extend(backup::crypto::read_recipients_file(f)?);
    }
    Ok(out)
}

/// What `sidecar backup`'s flags override (all empty: the configuration alone, as `sidecar run`).
#[derive(Debug, Default, Clone)]
pub struct BackupFlags {
    /// `--source`.
    pub source: Option<PathBuf>,
    /// `--to`.
    pub to: Option<String>,
    /// `-r`.
    pub recipients: Vec<String>,
    /// `--recipients-file`.
    pub recipients_file: Option<PathBuf>,
    /// `--level`.
    pub level: Option<i32>,
}

/// The backup options from the config (and the flags of `sidecar backup`, when given).
pub fn backup_options(config: &Config, flags: &BackupFlags) -> Result<BackupOptions, BackupError> {
    let recipients = recipients(config, &flags.recipients, flags.recipients_file.as_ref())?;
    let threads = match config.backup.threads {
        0 => std::thread::available_parallelism()
            .map(|n| n.get() as u32)
            .unwrap_or(1),
        n => n,
    };
    Ok(BackupOptions {
        source: flags.source.clone().unwrap_or_else(|| config.backup.source.clone()),
        store: open_store(&flags.to.clone().unwrap_or_else(|| config.backup.dest.clone()))?,
        name: config.backup.name.clone(),
        recipients,
        level: flags.level.unwrap_or(config.backup.level),
        threads,
        progress: None,
        stop: None,
        pause: pause_options(config),
    })
}

/// What to pause during backups: `None` when pausing is off or the Docker API is unreachable (then
/// with a warning, since labelled containers would be backed up live).
pub fn pause_options(config: &Config) -> Option<backup::pause::PauseOptions> {
    if !config.backup.pause {
        return None;
    }
    match crate::docker::Docker::connect() {
        Ok(docker) => Some(backup::pause::PauseOptions {
            docker: Arc::new(docker),
            label: config.backup.pause_label.clone(),
            max: Duration::from_secs(config.backup.pause_max_seconds),
            journal: crate::state::StateDir::new(&config.state_dir).backup_paused(),
        }),
        Err(e) => {
            crate::say!(
                "warning: containers labelled {} cannot be paused during backups: {e} (or set backup.pause = false)",
                config.backup.pause_label
            );
            None
        }
    }
}

/// Say which containers a backup paused, and whether the pause ran out.
pub fn report_pause(r: &backup::BackupResult) {
    if !r.paused.is_empty() {
        crate::say!("paused while reading the source: {}", terminal(&r.paused.join(", ")));
    }
    if r.pause_expired {
        crate::say!(
            "warning: the maximum pause time (backup.pause_max_seconds) ran out before the source was read; containers were unpaused early and this backup may be inconsistent"
        );
    }
}

/// Back up on `backup.schedule` until `stop` is set (`sidecar backup --schedule`, `sidecar run`).
pub fn run_schedule(
    config: &Config,
    opts: BackupOptions,
    stop: Arc<AtomicBool>,
    metrics: Option<&crate::metrics::Metrics>,
) -> u8 {
    let schedule = match backup::schedule::Schedule::new(
        &config.backup.schedule,
        &config.backup.timezone,
        config.backup.jitter_seconds,
    ) {
        Ok(s) => s,
        Err(e) => {
            crate::say!("error: {e}");
            return EXIT_ERROR;
        }
    };
    let plan = backup::schedule::ScheduledBackups {
        backup: &opts,
        schedule: &schedule,
        retention: Some(&config.backup.retention),
        host_seed: backup::schedule::host_seed(),
    };
    let ran = backup::run_scheduled(&plan, stop, |event| match event {
        backup::ScheduledEvent::Started => crate::say!(
            "scheduled backups of {} to {}: `{}` in {}",
            opts.source.display(),
            opts.store.describe(),
            schedule.spec,
            config.backup.timezone
        ),
        backup::ScheduledEvent::Next(t) => crate::say!(
            "next backup at {}",
            crate::timefmt::rfc3339(std::time::UNIX_EPOCH + Duration::from_secs(t.max(0) as u64))
        ),
        backup::ScheduledEvent::Starting { missed } => {
            crate::say!(
                "backup starting{}",
                if missed { " (catching up on a missed run)" } else { "" }
            )
        }
        backup::ScheduledEvent::Done(r) => {
            if let Some(m) = metrics {
                m.backup("ok", Some(r.bytes));
            }
            report_pause(&r);
            crate::say!("backup {} written and verified: {}", r.location, human(r.bytes));
            println!("{}", r.location);
        }
        backup::ScheduledEvent::Failed(e) => {
            if let Some(m) = metrics {
                m.backup("failed", None);
            }
            report_error(&e);
        }
        backup::ScheduledEvent::Skipped => {
            if let Some(m) = metrics {
                m.backup("skipped", None);
            }
            crate::say!("backup skipped: another backup holds the destination's lock")
        }
        backup::ScheduledEvent::Pruned(n) => {
            if n > 0 {
                crate::say!("retention: {n} old backup(s) deleted")
            }
        }
    });
    match ran {
        Ok(summary) => {
            crate::say!("stopped ({} failed run(s))", summary.failures);
            0
        }
        Err(e) => report_error(&e),
    }
}

/// A byte count for people (`1.5 MiB`).
pub fn human(bytes: u64) -> String {
    let mut v = bytes as f64;
    for unit in ["B", "KiB", "MiB", "GiB", "TiB"] {
        if v < 1024.0 || unit == "TiB" {
            return if unit == "B" {
                format!("{bytes} B")
            } else {
                format!("{v:.1} {unit}")
            };
        }
        v /= 1024.0;
    }
    unreachable!()
}
