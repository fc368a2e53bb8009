//! One enforcement pass from the configuration: modes and owners made stricter, live logs without
//! max-size rotated (masked into archives), old logs and archives expired.
use anyhow::Result;

use crate::config::Config;
use crate::escape::terminal_path;

/// Paths that could not be changed, with the reason.
pub type Failures = Vec<(std::path::PathBuf, String)>;

/// One enforcement pass: the changes made (or planned) as lines, and the paths that failed.
pub fn enforce_once(config: &Config, dry_run: bool) -> Result<(Vec<String>, Failures)> {
    let mut lines = Vec::new();
    use crate::policy::enforce::{enforce, EnforceOptions};
    let e = &config.enforce;
    let data_dir =
        (e.data_volume && !config.audit.data_dir.as_os_str().is_empty()).then(|| config.audit.data_dir.clone());
    let opts = EnforceOptions {
        docker_root: config.docker_root.clone(),
        containers_dir: e.containers_dir,
        log_files: e.log_files,
        data_dir,
        data_owner: config.audit.owner(),
        dry_run,
    };
    let (changes, mut errors) = enforce(&opts);
    // Paths in the data volume and under Docker's root are named by containers: escaped.
    let verb = if dry_run { "would change" } else { "changed" };
    for c in &changes {
        lines.push(format!("{verb} {}: {}", terminal_path(&c.path), c.what));
    }
    // Rotation of logs without max-size, and retention.
    if e.rotate_mib > 0 || e.retention_days > 0 {
        use crate::logs::rotate::{rotate, Action, RotateOptions};
        let (engine, _) = super::engine::build_engine(config, &[], &[])?;
        let key = crate::state::load_or_create_key(&config.state_dir)?;
        let scan_opts = crate::logs::scan::ScanOptions::default();
        let scanner = crate::logs::scan::Scanner {
            engine: &engine,
            key: &key,
            options: &scan_opts,
        };
        let (daemon_json, _) = crate::policy::daemon::DaemonFacts::read_local(&config.audit.daemon_json);
        let daemon_max_size = daemon_json.map(|j| {
            j.and_then(|j| {
                let driver = j.get("log-driver").and_then(|d| d.as_str()).unwrap_or("json-file");
                if driver != "json-file" {
                    return Some(format!("{driver} driver"));
                }
                j.get("log-opts")?.get("max-size")?.as_str().map(String::from)
            })
        });
        let ropts = RotateOptions {
            docker_root: config.docker_root.clone(),
            archive_dir: crate::state::StateDir::new(&config.state_dir).log_archive(),
            max_bytes: e.rotate_mib.saturating_mul(1 << 20),
            keep: (e.retention_days > 0).then(|| std::time::Duration::from_secs(e.retention_days * 86_400)),
            daemon_max_size,
            dry_run,
        };
        let (actions, errs) = rotate(&scanner, &ropts);
        let (rotated, removed) = if dry_run {
            ("would rotate", "would remove")
        } else {
            ("rotated", "removed")
        };
        for a in &actions {
            match a {
                Action::Rotated {
                    log,
                    archive_dir,
                    segments,
                    bytes,
                    masked,
                } => lines.push(format!(
                    "{rotated} {}: {bytes} bytes into {segments} archive(s) in {} ({masked} secret(s) masked)",
                    terminal_path(log),
                    terminal_path(archive_dir)
                )),
                Action::Removed(p) => lines.push(format!("{removed} {}", terminal_path(p))),
            }
        }
        errors.extend(errs);
    }
    Ok((lines, errors))
}
