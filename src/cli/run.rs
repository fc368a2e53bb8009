//! `sidecar run`: the long-running service. Scheduled backups, the audit (periodically and for
//! each container that starts) and enforcement, each on its own thread, until SIGTERM or SIGINT.
//! (The live log guard joins it with issue 3.)
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
        eprintln!("error: state directory {}: {e}", config.state_dir.display());
        return EXIT_ERROR;
    }
    let stop = match super::backup::stop_on_signals() {
        Ok(s) => s,
        Err(code) => return code,
    };
    eprintln!(
        "sidecar run: docker root {}, state {} (the live log guard is not part of this version)",
        config.docker_root.display(),
        config.state_dir.display()
    );
    let config = Arc::new(config);
    let metrics = Arc::new(crate::report::metrics::Metrics::default());
    let mut threads = Vec::new();

    if !config.run.metrics_listen.is_empty() {
        match std::net::TcpListener::bind(&config.run.metrics_listen) {
            Ok(listener) => {
                eprintln!("metrics: http://{}/metrics", config.run.metrics_listen);
                let (metrics, stop) = (metrics.clone(), stop.clone());
                threads.push(std::thread::spawn(move || {
                    crate::report::metrics::serve(listener, &metrics, &stop)
                }));
            }
            Err(e) => {
                eprintln!("error: run.metrics_listen {}: {e}", config.run.metrics_listen);
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
            Ok(_) => eprintln!("backups: off (no backup.recipients configured)"),
            Err(_) => eprintln!("backups: off (see the error above)"),
        }
    }

    // The audit: at start, every `audit_minutes`, and for each container that starts.
    if config.run.audit_minutes > 0 {
        let auditor = match super::audit::Auditor::new(&config) {
            Ok(a) => a,
            Err(e) => {
                eprintln!("error: audit: {e:#}");
                return EXIT_ERROR;
            }
        };
        let (tx, rx) = mpsc::channel::<String>();
        {
            let stop = stop.clone();
            // Detached: it reconnects to the event stream until stopped.
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match crate::docker::Docker::connect() {
                        Ok(d) => {
                            if let Err(e) = d.watch_starts(&tx, &stop) {
                                tracing::warn!("audit: {e}");
                            }
                        }
                        Err(e) => tracing::warn!("audit: {e}"),
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
                        eprintln!("enforce: {line}");
                    }
                    for (path, why) in errors {
                        tracing::warn!("enforce: {}: {why}", path.display());
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
                            eprintln!("alerts: {sent} sent");
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
            eprintln!("error: {e}");
            return EXIT_ERROR;
        }
    }

    // Shipping findings to the fleet destination.
    if !config.fleet.ship_to.is_empty() && config.run.ship_seconds > 0 {
        let (config, stop) = (config.clone(), stop.clone());
        threads.push(std::thread::spawn(move || loop {
            match crate::report::fleet::ship(&config.state_dir, &config.fleet.ship_to, &config.fleet.host_name()) {
                Ok(0) => {}
                Ok(n) => eprintln!("fleet: {n} object(s) shipped"),
                Err(e) => tracing::warn!("fleet: {e}"),
            }
            if sleep_until(Instant::now() + Duration::from_secs(config.run.ship_seconds), &stop) {
                break;
            }
        }));
    }

    if threads.len() == usize::from(!config.run.metrics_listen.is_empty()) {
        stop.store(true, Ordering::Relaxed);
        eprintln!("error: nothing to run: backups, audit and enforcement are all off");
        return EXIT_ERROR;
    }
    for t in threads {
        let _ = t.join();
    }
    eprintln!("sidecar run: stopped");
    EXIT_OK
}

/// Audit (everything, or the started containers) and append the results to the audit stream.
fn audit_once(
    config: &Config,
    auditor: &super::audit::Auditor,
    containers: Vec<String>,
    metrics: &crate::report::metrics::Metrics,
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
    let results =
        crate::docker::Docker::connect().and_then(|d| crate::policy::audit::run(&d, &opts, &|t: &str| auditor.scan(t)));
    match results {
        Ok(results) => {
            metrics.audit(&results, full);
            let failed = results
                .iter()
                .filter(|r| r.status == crate::policy::Status::Fail)
                .count();
            match crate::report::audit::append_audit_stream(&audit_stream(config), &results, &now()) {
                Ok(()) => eprintln!("audit ({what}): {} checks, {failed} failed", results.len()),
                Err(e) => tracing::warn!("audit: writing {}: {e}", audit_stream(config).display()),
            }
        }
        // A container that started and stopped at once is gone by now: not worth a warning.
        Err(e) => tracing::warn!("audit ({what}): {e}"),
    }
}
