//! The application layer: configuration and flags resolved once, the objects that do the work
//! built from them, and the long-running service's wiring (threads, one shutdown signal).
//!
//! Domain modules (`logs`, `backup`, `policy`, …) know nothing of the configuration file or of each
//! other's threads; `cli` parses flags and prints. Everything in between lives here:
//! - [`alerts`]: new secrets sent to the webhook.
//! - [`backup`]: backup options and the scheduled loop, from the configuration.
//! - [`engine`]: the detection engine and baseline from the configured rule files.
//! - [`audit`]: what the audit reads (API or Docker's files) and scans with, from the config.
//! - [`enforce`]: one enforcement pass (modes, owners, rotation, retention) from the config.
//! - [`guard`]: the live log guard as a supervised task.
//! - [`service`]: tasks on threads of their own under one [`Shutdown`](crate::shutdown::Shutdown).
//! - [`daemon`]: `sidecar run`: the guard, backups, audit, enforcement, alerts, shipping and
//!   metrics wired as tasks of one service.
pub mod alerts;
pub mod audit;
pub mod backup;
pub mod daemon;
pub mod enforce;
pub mod engine;
pub mod guard;
pub mod service;
