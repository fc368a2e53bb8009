//! sidecar: guards an OpenClaw Docker host.
//!
//! The crate is a library holding all logic; `src/main.rs` is a thin shell around [`cli::run`].
//! Domains live in their own modules and could be lifted into crates of their own; DESIGN.md's map
//! says which may use which (checked by a test), bottom up:
//! - base: [`escape`] (outside text made safe for a terminal or CSV), [`fsutil`] (the one atomic,
//!   private file writer, temporary names), [`diag`] (stderr that never blocks the guard),
//!   [`shutdown`] (one signal that stops every task), [`runtime`] (the one tokio runtime),
//!   [`timefmt`], [`metrics`] (Prometheus registry and server).
//! - [`redact`]: the pure detection engine (bytes in, matches out) and the masking format.
//! - [`state`]: every path under the state directory, and the fingerprint key.
//! - [`docker`]: the Docker API and Docker's own files; [`store`]: a local directory or S3.
//! - [`policy`]: the audit's checks and enforcement.
//! - [`findings`]: the finding record, the guard's findings log, read-back, triage, alerts, fleet.
//! - [`logs`]: Docker's json-file codec, the streaming scanner, the live guard, log rotation.
//! - [`render`]: output formats (table, JSON, JSONL, CSV, SARIF, HTML).
//! - [`backup`]: encrypted (age), compressed (zstd), streaming tar backups with a manifest, and restore.
//! - [`config`]: the one TOML configuration file with `SIDECAR_…` environment overrides, typed.
//! - [`app`]: configuration turned into working objects; `sidecar run`'s tasks and wiring.
//! - [`cli`]: command-line parsing, the commands, one error path.
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
