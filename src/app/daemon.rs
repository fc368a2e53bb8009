//! `sidecar run`: every part of the service wired as tasks of one [`Service`], until the shutdown
//! signal (SIGTERM or SIGINT, or a task that cannot go on) stops them all.
//!
//! The parts: the live log guard (its own thread, restarted from its checkpoints after an internal
//! error), the metrics server, scheduled backups, the audit (at start, every `run.audit_minutes` and
//! for each container that starts), enforcement, alerts on new secrets and fleet shipping. A part
//! that is off in the configuration is not started; a part that cannot start stops the service with
//! an error that says which part and why.
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::audit::{audit_options, AuditSource, Auditor, Connection};
use super::service::Service;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::shutdown::Shutdown;

/// Run every enabled part until `shutdown` is triggered, then wait for each to finish its step.
pub fn run(config: Arc<Config>, shutdown: Shutdown) -> Result<()> {
    let metrics = Arc::new(Metrics::default());
    let mut service = Service::new(shutdown.clone());
    let started = start_all(&mut service, &config, &metrics);
    if let Err(e) = started {
        shutdown.trigger();
        return Err(e);
    }
    let serving_metrics = !config.run.metrics_listen.is_empty();
    if service.len() == usize::from(serving_metrics) {
        shutdown.trigger();
        bail!("nothing to run: the log guard, backups, audit and enforcement are all off");
    }
    service.join();
    Ok(())
}

fn start_all(service: &mut Service, config: &Arc<Config>, metrics: &Arc<Metrics>) -> Result<()> {
    if config.guard.enabled {
        super::guard::start(service, config, metrics).context("log guard")?;
    }
    if !config.run.metrics_listen.is_empty() {
        start_metrics(service, config, metrics)?;
    }
    if config.run.backup {
        start_backups(service, config, metrics)?;
    }
    if config.run.audit_minutes > 0 {
        start_audit(service, config, metrics).context("audit")?;
    }
    if config.run.enforce_minutes > 0 {
        start_enforce(service, config, metrics)?;
    }
    start_alerts(service, config)?;
    if !config.fleet.ship_to.is_empty() && config.run.ship_seconds > 0 {
        start_shipping(service, config)?;
    }
    Ok(())
}

fn start_metrics(service: &mut Service, config: &Config, metrics: &Arc<Metrics>) -> Result<()> {
    let listen = &config.run.metrics_listen;
    let listener =
        std::net::TcpListener::bind(listen).map_err(|e| anyhow::anyhow!("run.metrics_listen {listen}: {e}"))?;
    crate::say!("metrics: http://{listen}/metrics");
    let metrics = metrics.clone();
    service.spawn("metrics", move |shutdown| {
        crate::metrics::serve(listener, &metrics, shutdown.flag())
    })?;
    Ok(())
}

fn start_backups(service: &mut Service, config: &Arc<Config>, metrics: &Arc<Metrics>) -> Result<()> {
    match super::backup::backup_options(config, &Default::default()) {
        Ok(opts) if !opts.recipients.is_empty() => {
            let (config, metrics) = (config.clone(), metrics.clone());
            service.spawn("backups", move |shutdown| {
                super::backup::run_schedule(&config, opts, shutdown.flag().clone(), Some(&metrics));
            })?;
        }
        Ok(_) => crate::say!(
            "backups: off until a recipient is set (backup.recipients; with compose, SIDECAR_BACKUP_RECIPIENT in compose/.env: the age1… public key of an identity kept off this host)"
        ),
        Err(e) => {
            super::backup::report_error(&e);
            crate::say!("backups: off (see the error above)");
        }
    }
    Ok(())
}

/// The audit: a full one at start and every `run.audit_minutes`, and one of each container that
/// starts (Docker's events, while the API answers).
fn start_audit(service: &mut Service, config: &Arc<Config>, metrics: &Arc<Metrics>) -> Result<()> {
    let auditor = Auditor::new(config)?;
    let (tx, rx) = crossbeam_channel::unbounded::<String>();
    // Not joined at shutdown: connecting to the API may take its timeout, and the watcher holds
    // nothing that needs flushing.
    let watcher_shutdown = service.shutdown().clone();
    std::thread::Builder::new()
        .name("audit-events".into())
        .spawn(move || watch_starts(&tx, &watcher_shutdown))?;
    let (config, metrics) = (config.clone(), metrics.clone());
    let every = Duration::from_secs(config.run.audit_minutes * 60);
    service.spawn("audit", move |shutdown| {
        let mut next = Instant::now();
        while !shutdown.is_triggered() {
            let containers = if Instant::now() >= next {
                next = Instant::now() + every;
                Vec::new()
            } else {
                crossbeam_channel::select! {
                    recv(rx) -> id => match id {
                        Ok(id) => vec![id],
                        // No event watcher any more: full audits only.
                        Err(_) => {
                            shutdown.wait_until(next);
                            continue;
                        }
                    },
                    recv(shutdown.receiver()) -> _ => break,
                    default(next.saturating_duration_since(Instant::now())) => continue,
                }
            };
            audit_once(&config, &auditor, containers, &metrics);
        }
    })?;
    Ok(())
}

/// Send the id of each container that starts to `tx`, reconnecting to the event stream until
/// shutdown.
fn watch_starts(tx: &crossbeam_channel::Sender<String>, shutdown: &Shutdown) {
    // Without the API (an audit from Docker's files) there are no start events: said once, not
    // every 2 s.
    let mut said = false;
    while !shutdown.is_triggered() {
        match crate::docker::Docker::connect() {
            Ok(d) => {
                said = false;
                if let Err(e) = d.watch_starts(tx, shutdown.flag()) {
                    tracing::warn!("audit: {e}");
                }
            }
            Err(e) if !said => {
                said = true;
                tracing::info!("audit: no container start events ({e}); full audits only");
            }
            Err(_) => {}
        }
        if shutdown.wait_timeout(Duration::from_secs(2)) {
            break;
        }
    }
}

/// The audit fell back to Docker's files once already (said once per process).
static FILES_NOTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Audit (everything, or the started containers) and append the results to the audit stream.
fn audit_once(config: &Config, auditor: &Auditor, containers: Vec<String>, metrics: &Metrics) {
    use std::sync::atomic::Ordering;
    let full = containers.is_empty();
    let what = match containers.first() {
        None => "full audit".to_string(),
        Some(id) => format!("container {}", &id[..12.min(id.len())]),
    };
    let opts = match audit_options(config, containers) {
        Ok(o) => o,
        Err(e) => {
            tracing::warn!("audit: {e:#}");
            return;
        }
    };
    let results = Connection::open(config, AuditSource::Auto).and_then(|conn| {
        if let Connection::Files(_) = conn {
            if !FILES_NOTED.swap(true, Ordering::Relaxed) {
                crate::say!("{}", Connection::FALLBACK_NOTE);
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
            let stream = crate::state::StateDir::new(&config.state_dir).audit_stream();
            let now = crate::timefmt::rfc3339(std::time::SystemTime::now());
            match crate::render::audit::append_audit_stream(&stream, &results, &now) {
                Ok(()) => crate::say!("audit ({what}): {} checks, {failed} failed", results.len()),
                Err(e) => tracing::warn!("audit: writing {}: {e}", stream.display()),
            }
        }
        // A container that started and stopped at once is gone by now: not worth a warning.
        Err(e) => tracing::warn!("audit ({what}): {e}"),
    }
}

fn start_enforce(service: &mut Service, config: &Arc<Config>, metrics: &Arc<Metrics>) -> Result<()> {
    let (config, metrics) = (config.clone(), metrics.clone());
    let every = Duration::from_secs(config.run.enforce_minutes * 60);
    service.every("enforce", every, move || {
        match super::enforce::enforce_once(&config, false) {
            Ok((done, errors)) => {
                metrics.add(crate::metrics::ENFORCE_CHANGES_TOTAL, done.len() as f64);
                metrics.add(crate::metrics::ENFORCE_ERRORS_TOTAL, errors.len() as f64);
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
    })?;
    Ok(())
}

/// Alerts on new secrets, when a webhook is configured.
fn start_alerts(service: &mut Service, config: &Arc<Config>) -> Result<()> {
    let hook = match config.alerts.webhook()? {
        Some(hook) if config.run.alert_seconds > 0 => hook,
        _ => return Ok(()),
    };
    let state_dir = config.state_dir.clone();
    let every = Duration::from_secs(config.run.alert_seconds);
    service.every("alerts", every, move || {
        match super::alerts::alert_once(&state_dir, &hook) {
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
    })?;
    Ok(())
}

/// Shipping findings to the fleet destination.
fn start_shipping(service: &mut Service, config: &Arc<Config>) -> Result<()> {
    let config2 = config.clone();
    let every = Duration::from_secs(config.run.ship_seconds);
    service.every("fleet", every, move || {
        let config = &config2;
        match crate::findings::fleet::ship(&config.state_dir, &config.fleet.ship_to, &config.fleet.host_name()) {
            Ok(0) => {}
            Ok(n) => crate::say!("fleet: {n} object(s) shipped"),
            Err(e) => tracing::warn!("fleet: {e}"),
        }
    })?;
    Ok(())
}
