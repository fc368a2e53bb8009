//! The live log guard as a task of the service: built from the configuration, started on its own
//! thread, and restarted from its checkpoints after an internal error (a panic outside one
//! container's work, which the guard contains itself), with a back-off: masking must not stop for
//! good.
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::service::Service;
use crate::config::Config;
use crate::logs::guard::{Guard, GuardOptions};
use crate::metrics::Metrics;
use crate::shutdown::Shutdown;

/// Start the guard; returns once its checkpoints and report are open and its first pass is under
/// way, or with the reason it cannot start.
pub fn start(service: &mut Service, config: &Arc<Config>, metrics: &Arc<Metrics>) -> Result<()> {
    let masks = config.guard.masks();
    let containers = config.docker_root.join("containers");
    std::fs::read_dir(&containers).with_context(|| {
        format!(
            "cannot read {} (mount Docker's containers directory there, read-write, and run as root; or set docker_root)",
            containers.display()
        )
    })?;
    let (engine, _) = super::engine::build_engine(config, &[], &[])?;
    let key = crate::state::load_or_create_key(&config.state_dir)?;
    let baseline = match &config.rules.baseline {
        Some(p) => super::engine::load_baseline(p)?,
        None => Default::default(),
    };
    let own = crate::logs::containers::own_container_id();
    let opts = options(config, baseline, own.clone());
    let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
    let metrics = metrics.clone();
    service.spawn("log-guard", move |shutdown| {
        let options = crate::logs::scan::ScanOptions {
            buffer_bytes: 256 << 10,
            max_unit_bytes: GUARD_UNIT_BYTES,
            ..Default::default()
        };
        let scanner = crate::logs::scan::Scanner {
            engine: &engine,
            key: &key,
            options: &options,
        };
        let guard = match Guard::open(scanner, opts.clone(), &metrics) {
            Ok(g) => g,
            Err(e) => {
                let _ = ready_tx.send(Err(e.to_string()));
                return;
            }
        };
        let _ = ready_tx.send(Ok(()));
        supervise(
            guard,
            || Guard::open(scanner, opts.clone(), &metrics),
            &shutdown,
            &metrics,
        );
    })?;
    match ready_rx.recv() {
        Ok(Ok(())) => {
            crate::say!(
                "log guard: following {} ({}{})",
                containers.display(),
                if masks { "masking" } else { "report only" },
                own.map(|id| format!(", not its own container {}", &id[..12]))
                    .unwrap_or_default()
            );
            Ok(())
        }
        Ok(Err(e)) => anyhow::bail!("{e}"),
        Err(_) => anyhow::bail!("the guard thread ended at start"),
    }
}

/// The guard matches an entry split into 16 KiB parts (a long line) in windows of this many bytes
/// while its parts keep coming, not at `scan.max_unit_kib` (1 MiB): a secret in the first part of a
/// 10 MB line is masked once the next 256 KiB are written, before Docker (at `max-size=1m`)
/// rotates and compresses its file, and an open entry re-read on each pass is at most this long.
const GUARD_UNIT_BYTES: usize = 256 << 10;

/// The guard's options from the configuration.
fn options(
    config: &Config,
    baseline: std::collections::HashSet<String>,
    own_container: Option<String>,
) -> GuardOptions {
    GuardOptions {
        docker_root: config.docker_root.clone(),
        state_dir: config.state_dir.clone(),
        mask: config.guard.masks(),
        containers: config.guard.containers.clone(),
        report_only: config.guard.report_only.clone(),
        name: config.guard.name.clone(),
        baseline,
        rescan: Duration::from_secs(config.guard.rescan_seconds),
        hold: Duration::from_secs(config.guard.hold_seconds),
        checkpoint_every: Duration::from_millis(config.guard.checkpoint_ms),
        findings_max_bytes: config.guard.findings_max_mib << 20,
        findings_keep: config.guard.findings_keep,
        findings_per_second: config.guard.findings_per_second,
        own_container,
        boot_id: None,
    }
}

/// Run the guard until shutdown; after a panic, open it again from its checkpoints (waiting 1 s,
/// 2 s, … up to 64 s between failures; the count resets after 10 minutes without one). An error
/// it returns (not a panic) stops the whole service: the guard cannot go on and says why.
fn supervise<'a, E: std::fmt::Display>(
    mut guard: Guard<'a>,
    reopen: impl Fn() -> Result<Guard<'a>, E>,
    shutdown: &Shutdown,
    metrics: &Metrics,
) {
    let mut failures = 0u32;
    loop {
        let started = Instant::now();
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| guard.run(shutdown.flag()))) {
            Ok(Ok(())) => return,
            Ok(Err(e)) => {
                crate::say!("error: log guard stopped: {e}");
                shutdown.trigger();
                return;
            }
            Err(_) => {
                metrics.add(crate::metrics::GUARD_PANICS_TOTAL, 1.0);
                if started.elapsed() > Duration::from_secs(600) {
                    failures = 0;
                }
                failures += 1;
                let wait = Duration::from_secs(1u64 << (failures - 1).min(6));
                crate::say!(
                    "error: log guard: internal error (failure {failures}); restarting from its checkpoints in {} s",
                    wait.as_secs()
                );
                if shutdown.wait_timeout(wait) {
                    return;
                }
                match reopen() {
                    Ok(g) => guard = g,
                    Err(e) => {
                        crate::say!("error: log guard cannot restart: {e}");
                        shutdown.trigger();
                        return;
                    }
                }
            }
        }
    }
}
