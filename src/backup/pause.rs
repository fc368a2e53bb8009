//! Consistent backups of live applications: containers labelled `sidecar.backup.pause=true` are
//! paused (frozen by the kernel's cgroup freezer, not stopped) while the volume is read, so that a
//! SQLite database and its `-wal` file are captured at one instant. They are always unpaused: when
//! the backup ends, fails or is stopped by SIGTERM, when the maximum pause time runs out (the backup
//! then goes on, with a warning), and, after a crash of sidecar itself, at the start of the next
//! backup (a journal in the state directory lists what was paused).
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use super::error::BackupError;
use crate::docker::{Container, Docker};

/// What to pause.
#[derive(Debug, Clone)]
pub struct PauseOptions {
    /// The Docker API.
    pub docker: Arc<Docker>,
    /// Label filter, `key=value` or `key`.
    pub label: String,
    /// Longest pause; then the containers are unpaused and the backup goes on.
    pub max: Duration,
    /// Journal of paused containers (in the state directory).
    pub journal: PathBuf,
}

fn docker_err(e: crate::docker::DockerError) -> BackupError {
    BackupError::Source(format!("consistency pause: {e}"))
}

/// Unpause containers a crashed sidecar left paused (listed in the journal). Returns their names.
pub fn recover(opts: &PauseOptions) -> Result<Vec<String>, BackupError> {
    let text = match crate::fsutil::read_input(&opts.journal, crate::fsutil::InputKind::STATE) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(BackupError::io("reading the pause journal", e)),
    };
    let listed: Vec<Container> = serde_json::from_slice(&text).unwrap_or_default();
    let mut names = Vec::new();
    for c in listed {
        // Gone containers are fine; paused ones are ours to release.
        if opts.docker.is_paused(&c.id).unwrap_or(false) {
            opts.docker.unpause(&c.id).map_err(docker_err)?;
            names.push(c.name);
        }
    }
    remove_journal(opts)?;
    Ok(names)
}

fn remove_journal(opts: &PauseOptions) -> Result<(), BackupError> {
    match std::fs::remove_file(&opts.journal) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(BackupError::io(format!("removing {}", opts.journal.display()), e))
        }
        _ => Ok(()),
    }
}

struct Inner {
    opts: PauseOptions,
    /// Paused and not yet released.
    paused: Mutex<Vec<Container>>,
    /// Set when the backup is over (wakes the watchdog).
    over: Mutex<bool>,
    wake: Condvar,
    expired: std::sync::atomic::AtomicBool,
}

impl Inner {
    /// Unpause everything still paused. A container that cannot be unpaused stays in the journal,
    /// so the next backup retries.
    fn release(&self) {
        let mut paused = self.paused.lock().unwrap_or_else(|p| p.into_inner());
        let mut failed = Vec::new();
        for c in paused.drain(..) {
            if let Err(e) = self.opts.docker.unpause(&c.id) {
                tracing::error!(container = %c.name, error = %e, "cannot unpause; the next backup retries");
                failed.push(c);
            }
        }
        if failed.is_empty() {
            if let Err(e) = remove_journal(&self.opts) {
                tracing::error!(error = %e, "cannot remove the pause journal");
            }
        }
    }
}

/// Containers paused for a backup; dropping it unpauses them.
pub struct PauseGuard {
    inner: Arc<Inner>,
    names: Vec<String>,
    watchdog: Option<std::thread::JoinHandle<()>>,
}

impl PauseGuard {
    /// Names of the paused containers.
    pub fn names(&self) -> &[String] {
        &self.names
    }
    /// Whether the maximum pause time ran out (the containers were unpaused before the end).
    pub fn expired(&self) -> bool {
        self.inner.expired.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for PauseGuard {
    fn drop(&mut self) {
        *self.inner.over.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.inner.wake.notify_all();
        if let Some(w) = self.watchdog.take() {
            let _ = w.join();
        }
        self.inner.release();
    }
}

/// Pause the running containers carrying the label (after releasing any a crash left paused).
pub fn pause(opts: &PauseOptions) -> Result<PauseGuard, BackupError> {
    for name in recover(opts)? {
        tracing::warn!(container = %name, "unpaused a container left paused by an interrupted backup");
    }
    let targets = opts.docker.labelled(&opts.label, &["running"]).map_err(docker_err)?;
    let inner = Arc::new(Inner {
        opts: opts.clone(),
        paused: Mutex::new(Vec::new()),
        over: Mutex::new(false),
        wake: Condvar::new(),
        expired: Default::default(),
    });
    let names: Vec<String> = targets.iter().map(|c| c.name.clone()).collect();
    if targets.is_empty() {
        return Ok(PauseGuard {
            inner,
            names,
            watchdog: None,
        });
    }
    // The journal is on disk before the first pause: a crash from here on is recovered.
    let journal = serde_json::to_vec(&targets).map_err(|e| BackupError::io("pause journal", e.into()))?;
    if let Some(dir) = opts.journal.parent() {
        crate::fsutil::create_private_dir(dir)
            .map_err(|e| BackupError::io(format!("creating {}", dir.display()), e))?;
    }
    crate::fsutil::write_atomic(&opts.journal, &journal)
        .map_err(|e| BackupError::io(format!("writing {}", opts.journal.display()), e))?;
    let mut guard = PauseGuard {
        inner: inner.clone(),
        names,
        watchdog: None,
    };
    for c in targets {
        opts.docker.pause(&c.id).map_err(docker_err)?; // the guard unpauses the earlier ones
        inner.paused.lock().unwrap_or_else(|p| p.into_inner()).push(c);
    }
    let w = inner.clone();
    let watchdog = std::thread::Builder::new()
        .name("sidecar-pause-watchdog".into())
        .spawn(move || {
            let over = w.over.lock().unwrap_or_else(|p| p.into_inner());
            let (over, timeout) = w
                .wake
                .wait_timeout_while(over, w.opts.max, |over| !*over)
                .unwrap_or_else(|p| p.into_inner());
            if timeout.timed_out() && !*over {
                drop(over);
                w.expired.store(true, std::sync::atomic::Ordering::SeqCst);
                tracing::warn!(
                    max_seconds = w.opts.max.as_secs(),
                    "maximum pause time reached: containers unpaused, the rest of this backup may be inconsistent"
                );
                w.release();
            }
        })
        .map_err(|e| BackupError::io("starting the pause watchdog", e))?;
    guard.watchdog = Some(watchdog);
    Ok(guard)
}
