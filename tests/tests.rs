//! The integration tests: one binary with a module per area (ripgrep's `tests/tests.rs`), so the
//! library is linked once, not once per file. Each module runs the real binary, the real Docker
//! engine and a real S3-compatible server (moto) as its tests need; `common` holds the helpers.
//! Run one area with a filter: `cargo test --test tests guard_docker::`.
mod common;

mod audit_docker;
mod backup_cli;
mod backup_disk;
mod backup_hostile;
mod backup_pause;
mod backup_roundtrip;
mod backup_s3;
mod compose;
mod corpus_recall;
mod e2e_compose;
mod fuzz;
mod guard_docker;
mod guard_faults;
mod report_cli;
mod report_memory;
mod run_daemon;
mod scan_bounds;
mod scan_cli;
