//! sidecar: guards an OpenClaw Docker host.
//!
//! The crate is a library holding all logic; `src/main.rs` is a thin shell around [`cli::run`].
//! Domains live in their own modules and could be lifted into crates of their own:
//! - [`redact`]: the pure detection engine (bytes in, matches out) and the masking format.
//! - [`logs`]: Docker's json-file codec and the streaming file scanner that maps findings to file bytes.
//! - [`findings`]: the finding record, the guard's findings log, read-back, triage, alerts, fleet.
//! - [`render`]: output formats (table, JSON, JSONL, CSV, SARIF, HTML); [`metrics`]: Prometheus.
//! - [`backup`]: encrypted (age), compressed (zstd), streaming tar backups with a manifest, and restore.
//! - [`config`]: the one TOML configuration file with `SIDECAR_…` environment overrides.
//! - [`cli`]: command-line parsing and the commands.
//! - [`diag`]: where sidecar's own messages go (stderr, never blocking the guard).
//! - [`escape`]: text from outside (archive entries, container names, paths) made safe for a
//!   terminal or a CSV file.
//! - [`fsutil`]: the one atomic, private file writer; [`state`]: the state directory and its key.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

/// `eprintln!` that never panics nor blocks the log guard: a message to a closed, full or broken
/// stderr is dropped, and in `sidecar run` messages go through [`diag`]'s queue (a fault in logging
/// must never stop the log guard). Use it instead of `eprintln!` everywhere.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {{
        $crate::diag::say(format_args!($($arg)*));
    }};
}

pub mod app;
pub mod backup;
pub mod cli;
pub mod config;
pub mod diag;
pub mod docker;
pub mod escape;
pub mod findings;
pub mod fsutil;
#[cfg(test)]
mod layering;
pub mod logs;
pub mod metrics;
pub mod policy;
pub mod redact;
pub mod render;
pub mod runtime;
pub mod shutdown;
pub mod state;
pub mod store;
pub mod timefmt;
