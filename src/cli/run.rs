//! `sidecar run`: the long-running service. The live log guard, scheduled backups, the audit
//! (periodically and for each container that starts), enforcement, alerts and fleet shipping, each
//! on its own thread, until SIGTERM or SIGINT.
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use super::{RunArgs, EXIT_ERROR, EXIT_OK};
use crate::config::Config;

/// Where the audit results go.
pub fn audit_stream(config: &Config) -> std::path::PathBuf {
    config.state_dir.join("audit").join("audit.jsonl")
}

fn now() -> String {
    crate::backup::rfc3339(std::time::SystemTime::now())
}

/// Sleep until `deadline` or `stop`; true when stopped.
fn sleep_until(deadline: Instant, stop: &AtomicBool) -> bool {
    while Instant::now() < deadline {
        if stop.load(Ordering::Relaxed) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200).min(deadline.saturating_duration_since(Instant::now())));
    }
    stop.load(Ordering::Relaxed)
}

pub fn run(config: &Config, args: RunArgs) -> u8 {
    let mut config = config.clone();
    if let Some(d) = args.docker_root {
        config.docker_root = d;
    }
    if let Some(d) = args.state_dir {
        config.state_dir = d;
    }
    if let Err(e) = crate::fsutil::create_private_dir(&config.state_dir) {
        crate::say!("error: state directory {}: {e}", config.state_dir.display());
        return EXIT_ERROR;
    }
    let stop = match super::backup::stop_on_signals() {
        Ok(s) => s,
        Err(code) => return code,
    };
    crate::say!(
        "sidecar run: docker root {}, state {}",
        config.docker_root.display(),
        config.state_dir.display()
    );
    let config = Arc::new(config);
    let metrics = Arc::new(crate::metrics::Metrics::default());
    let mut threads = Vec::new();

    // The live log guard.
    if config.guard.enabled {
        match start_guard(&config, &stop, &metrics) {
            Ok(t) => threads.push(t),
            Err(e) => {
                stop.store(true, Ordering::Relaxed);
                crate::say!("error: log guard: {e:#}");
                return EXIT_ERROR;
            }
        }
    }

    if !config.run.metrics_listen.is_empty() {
        match std::net::TcpListener::bind(&config.run.metrics_listen) {
            Ok(listener) => {
                crate::say!("metrics: http://{}/metrics", config.run.metrics_listen);
                let (metrics, stop) = (metrics.clone(), stop.clone());
                threads.push(std::thread::spawn(move || {
                    crate::metrics::serve(listener, &metrics, &stop)
                }));
            }
            Err(e) => {
                crate::say!("error: run.metrics_listen {}: {e}", config.run.metrics_listen);
                return EXIT_ERROR;
            }
        }
    }

    // Scheduled backups.
    if config.run.backup {
        match super::backup::backup_options(&config, &Default::default()) {
            Ok(opts) if !opts.recipients.is_empty() => {
                let (config, stop, metrics) = (config.clone(), stop.clone(), metrics.clone());
                threads.push(std::thread::spawn(move || {
                    super::backup::run_schedule(&config, opts, stop, Some(&metrics));
                }));
            }
            Ok(_) => crate::say!(
                "backups: off until a recipient is set (backup.recipients; with compose, SIDECAR_BACKUP_RECIPIENT in compose/.env: the age1… public key of an identity kept off this host)"
            ),
            Err(_) => crate::say!("backups: off (see the error above)"),
        }
    }

    // The audit: at start, every `audit_minutes`, and for each container that starts.
    if config.run.audit_minutes > 0 {
        let auditor = match super::audit::Auditor::new(&config) {
            Ok(a) => a,
            Err(e) => {
                crate::say!("error: audit: {e:#}");
                return EXIT_ERROR;
            }
        };
        let (tx, rx) = mpsc::channel::<String>();
        {
            let stop = stop.clone();
            // Detached: it reconnects to the event stream until stopped.
            std::thread::spawn(move || {
                // Without the API (an audit from Docker's files) there are no start events: said
                // once, not every 2 s.
                let mut said = false;
                while !stop.load(Ordering::Relaxed) {
                    match crate::docker::Docker::connect() {
                        Ok(d) => {
                            said = false;
                            if let Err(e) = d.watch_starts(&tx, &stop) {
                                tracing::warn!("audit: {e}");
                            }
                        }
                        Err(e) if !said => {
                            said = true;
                            tracing::info!("audit: no container start events ({e}); full audits only");
                        }
                        Err(_) => {}
                    }
                    if sleep_until(Instant::now() + Duration::from_secs(2), &stop) {
                        break;
                    }
                }
            });
        }
        let (config, stop, metrics) = (config.clone(), stop.clone(), metrics.clone());
        threads.push(std::thread::spawn(move || {
            let every = Duration::from_secs(config.run.audit_minutes * 60);
            let mut next = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                let containers = if Instant::now() >= next {
                    next = Instant::now() + every;
                    Vec::new()
                } else {
                    match rx.recv_timeout(Duration::from_millis(200)) {
                        Ok(id) => vec![id],
                        Err(mpsc::RecvTimeoutError::Timeout) => continue,
                        Err(mpsc::RecvTimeoutError::Disconnected) => {
                            if sleep_until(next, &stop) {
                                break;
                            }
                            continue;
                        }
                    }
                };
                audit_once(&config, &auditor, containers, &metrics);
            }
        }));
    }

    // Enforcement.
    if config.run.enforce_minutes > 0 {
        let (config, stop, metrics) = (config.clone(), stop.clone(), metrics.clone());
        threads.push(std::thread::spawn(move || loop {
            match super::audit::enforce_once(&config, false) {
                Ok((done, errors)) => {
                    metrics.add("sidecar_enforce_changes_total", done.len() as f64);
                    metrics.add("sidecar_enforce_errors_total", errors.len() as f64);
                    for line in done {
                        crate::say!("enforce: {line}");
                    }
                    for (path, why) in errors {
                        tracing::warn!(
                            "enforce: {}: {}",
                            crate::escape::terminal_path(&path),
                            crate::escape::terminal(&why)
                        );
                    }
                }
                Err(e) => tracing::warn!("enforce: {e:#}"),
            }
            if sleep_until(
                Instant::now() + Duration::from_secs(config.run.enforce_minutes * 60),
                &stop,
            ) {
                break;
            }
        }));
    }

    // Alerts on new secrets.
    match config.alerts.webhook() {
        Ok(Some(hook)) if config.run.alert_seconds > 0 => {
            let (config, stop) = (config.clone(), stop.clone());
            threads.push(std::thread::spawn(move || loop {
                match super::report::alert_once(&config.state_dir, &hook) {
                    Ok((sent, failed)) => {
                        if sent > 0 {
                            crate::say!("alerts: {sent} sent");
                        }
                        for f in failed {
                            tracing::warn!("alerts: {f} (will be tried again)");
                        }
                    }
                    Err(e) => tracing::warn!("alerts: {e:#}"),
                }
                if sleep_until(Instant::now() + Duration::from_secs(config.run.alert_seconds), &stop) {
                    break;
                }
            }));
        }
        Ok(_) => {}
        Err(e) => {
            crate::say!("error: {e}");
            return EXIT_ERROR;
        }
    }

    // Shipping findings to the fleet destination.
    if !config.fleet.ship_to.is_empty() && config.run.ship_seconds > 0 {
        let (config, stop) = (config.clone(), stop.clone());
        threads.push(std::thread::spawn(move || loop {
            match crate::findings::fleet::ship(&config.state_dir, &config.fleet.ship_to, &config.fleet.host_name()) {
                Ok(0) => {}
                Ok(n) => crate::say!("fleet: {n} object(s) shipped"),
                Err(e) => tracing::warn!("fleet: {e}"),
            }
            if sleep_until(Instant::now() + Duration::from_secs(config.run.ship_seconds), &stop) {
                break;
            }
        }));
    }

    if threads.len() == usize::from(!config.run.metrics_listen.is_empty()) {
        stop.store(true, Ordering::Relaxed);
        crate::say!("error: nothing to run: the log guard, backups, audit and enforcement are all off");
        return EXIT_ERROR;
    }
    for t in threads {
        let _ = t.join();
    }
    crate::say!("sidecar run: stopped");
    EXIT_OK
}

/// Start the log guard on its own thread; returns once its checkpoints and report are open and
/// its first pass is under way, or with the reason it cannot start.
fn start_guard(
    config: &Arc<Config>,
    stop: &Arc<std::sync::atomic::AtomicBool>,
    metrics: &Arc<crate::metrics::Metrics>,
) -> anyhow::Result<std::thread::JoinHandle<()>> {
    use anyhow::Context;
    let masks = config.guard.masks()?;
    let containers = config.docker_root.join("containers");
    std::fs::read_dir(&containers).with_context(|| {
        format!(
            "cannot read {} (mount Docker's containers directory there, read-write, and run as root; or set docker_root)",
            containers.display()
        )
    })?;
    let (engine, _) = super::scan::build_engine(config, &[], &[])?;
    let key = crate::state::load_or_create_key(&config.state_dir)?;
    let baseline = match &config.rules.baseline {
        Some(p) => super::scan::load_baseline(p)?,
        None => Default::default(),
    };
    let own = crate::logs::containers::own_container_id();
    let opts = crate::logs::follow::GuardOptions {
        docker_root: config.docker_root.clone(),
        state_dir: config.state_dir.clone(),
        mask: masks,
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
        own_container: own.clone(),
    };
    let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
    let (stop, metrics) = (stop.clone(), metrics.clone());
    let t = std::thread::Builder::new().name("log-guard".into()).spawn(move || {
        let options = crate::logs::scan::ScanOptions {
            buffer_bytes: 256 << 10,
            ..Default::default()
        };
        let scanner = crate::logs::scan::Scanner {
            engine: &engine,
            key: &key,
            options: &options,
        };
        let mut guard = match crate::logs::follow::Guard::open(scanner, opts.clone(), &metrics) {
            Ok(g) => g,
            Err(e) => {
                let _ = ready_tx.send(Err(e.to_string()));
                return;
            }
        };
        let _ = ready_tx.send(Ok(()));
        // A panic outside one container's work (those are contained in the guard) restarts the
        // guard from its checkpoints after a back-off: masking must not stop for good.
        let mut failures = 0u32;
        loop {
            let started = Instant::now();
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| guard.run(&stop))) {
                Ok(Ok(())) => return,
                Ok(Err(e)) => {
                    crate::say!("error: log guard stopped: {e}");
                    stop.store(true, Ordering::Relaxed);
                    return;
                }
                Err(_) => {
                    metrics.add("sidecar_guard_panics_total", 1.0);
                    if started.elapsed() > Duration::from_secs(600) {
                        failures = 0;
                    }
                    failures += 1;
                    let wait = Duration::from_secs(1u64 << (failures - 1).min(6));
                    crate::say!(
                        "error: log guard: internal error (failure {failures}); restarting from its checkpoints in {} s",
                        wait.as_secs()
                    );
                    if sleep_until(Instant::now() + wait, &stop) {
                        return;
                    }
                    match crate::logs::follow::Guard::open(scanner, opts.clone(), &metrics) {
                        Ok(g) => guard = g,
                        Err(e) => {
                            crate::say!("error: log guard cannot restart: {e}");
                            stop.store(true, Ordering::Relaxed);
                            return;
                        }
                    }
                }
            }
        }
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
            Ok(t)
        }
        Ok(Err(e)) => anyhow::bail!("{e}"),
        Err(_) => anyhow::bail!("the guard thread ended at start"),
    }
}

/// `sidecar health`: 0 when the guard's heartbeat is fresh.
pub fn health(config: &Config, args: super::HealthArgs) -> u8 {
    let state_dir = args.state_dir.unwrap_or_else(|| config.state_dir.clone());
    match crate::logs::follow::heartbeat_age(&state_dir) {
        Ok((age, beat)) if age <= args.max_age && (args.max_lag == 0 || beat.lag_seconds <= args.max_lag) => {
            println!(
                "healthy: log guard alive {age} s ago, following {} container(s), {} s and {} bytes behind",
                beat.containers, beat.lag_seconds, beat.lag_bytes
            );
            EXIT_OK
        }
        Ok((age, beat)) if age <= args.max_age => {
            crate::say!(
                "unhealthy: the log guard is {} s behind the log of container {} ({} bytes not scanned yet; more than {} s): the host writes logs faster than the guard scans them; see sidecar_log_container_lag_seconds in the metrics for every container",
                beat.lag_seconds,
                beat.behind.escape_debug(),
                beat.lag_bytes,
                args.max_lag
            );
            1
        }
        Ok((age, _)) => {
            crate::say!(
                "unhealthy: the log guard's last heartbeat is {age} s old (more than {} s); see sidecar run's output",
                args.max_age
            );
            1
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            crate::say!(
                "unhealthy: no heartbeat in {} (is `sidecar run` running with guard.enabled and this state_dir?)",
                state_dir.display()
            );
            1
        }
        Err(e) => {
            crate::say!(
                "error: {}: {e}",
                state_dir.join(crate::logs::follow::HEARTBEAT_FILE).display()
            );
            EXIT_ERROR
        }
    }
}

/// The audit fell back to Docker's files once already (said once per process).
static FILES_NOTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Audit (everything, or the started containers) and append the results to the audit stream.
fn audit_once(
    config: &Config,
    auditor: &super::audit::Auditor,
    containers: Vec<String>,
    metrics: &crate::metrics::Metrics,
) {
    let full = containers.is_empty();
    let what = if containers.is_empty() {
        "full audit".to_string()
    } else {
        format!("container {}", &containers[0][..12.min(containers[0].len())])
    };
    let opts = match super::audit::audit_options(config, containers) {
        Ok(o) => o,
        Err(e) => {
            tracing::warn!("audit: {e:#}");
            return;
        }
    };
    let results = super::audit::Connection::open(config, super::AuditSource::Auto).and_then(|conn| {
        if let super::audit::Connection::Files(_) = conn {
            if !FILES_NOTED.swap(true, Ordering::Relaxed) {
                crate::say!("{}", super::audit::Connection::FALLBACK_NOTE);
            }
        }
        Ok(crate::policy::audit::run(conn.source(), &opts, &|t: &str| {
            auditor.scan(t)
        })?)
    });
    match results {
        Ok(results) => {
            let samples = results.iter().map(|r| crate::metrics::AuditSample {
                check: &r.check,
                status: r.status.as_str(),
                severity: r.severity.as_str(),
            });
            let scope = if full {
                crate::metrics::AuditScope::Full
            } else {
                crate::metrics::AuditScope::Containers
            };
            metrics.audit(samples, scope);
            let failed = results
                .iter()
                .filter(|r| r.status == crate::policy::Status::Fail)
                .count();
            match crate::render::audit::append_audit_stream(&audit_stream(config), &results, &now()) {
                Ok(()) => crate::say!("audit ({what}): {} checks, {failed} failed", results.len()),
                Err(e) => tracing::warn!("audit: writing {}: {e}", audit_stream(config).display()),
            }
        }
        // A container that started and stopped at once is gone by now: not worth a warning.
        Err(e) => tracing::warn!("audit ({what}): {e}"),
    }
}
