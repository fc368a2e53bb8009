//! `sidecar run` (the service: see [`crate::app::daemon`]) and `sidecar health`.
use std::sync::Arc;

use anyhow::Context;

use super::{CmdResult, RunArgs, EXIT_OK};
use crate::config::Config;

/// `sidecar run`: until SIGTERM or SIGINT.
pub fn run(config: &Config, args: RunArgs) -> CmdResult {
    let mut config = config.clone();
    if let Some(d) = args.docker_root {
        config.docker_root = d;
    }
    crate::fsutil::create_private_dir(&config.state_dir)
        .with_context(|| format!("state directory {}", config.state_dir.display()))?;
    let shutdown = crate::shutdown::Shutdown::on_signals().context("cannot handle SIGTERM and SIGINT")?;
    crate::say!(
        "sidecar run: docker root {}, state {}",
        config.docker_root.display(),
        config.state_dir.display()
    );
    crate::app::daemon::run(Arc::new(config), shutdown)?;
    crate::say!("sidecar run: stopped");
    Ok(EXIT_OK)
}

/// `sidecar health`: 0 when the guard's heartbeat is fresh.
pub fn health(config: &Config, args: super::HealthArgs) -> CmdResult {
    let state_dir = &config.state_dir;
    let code = match crate::logs::guard::heartbeat_age(state_dir) {
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
        Err(e) => anyhow::bail!("{}: {e}", crate::state::StateDir::new(state_dir).heartbeat().display()),
    };
    Ok(code)
}
