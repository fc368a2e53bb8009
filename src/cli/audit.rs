//! `sidecar audit`: the guide's checklist against the live daemon (or Docker's files) and the host.
use std::io::Write;

use anyhow::Context;

use super::{AuditArgs, EXIT_FINDINGS, EXIT_OK};
use crate::app::audit::{audit_options, AuditSource, Auditor, Connection};
use crate::app::enforce::enforce_once;
use crate::config::Config;
use crate::escape::{terminal, terminal_path};
use crate::policy::audit::run;
use crate::policy::{failures_at_or_above, CHECKS};
use crate::render::write_audit;

/// Exit statuses of `sidecar audit`.
pub const AUDIT_EXIT_CODES: &str = "Exit status: 0 no failure at or above --fail-on (accepted risks and passes only), 1 such failures remain, 2 error (neither the Docker API nor Docker's files readable, bad configuration, output not writable).";

pub fn run_audit(config: &Config, args: AuditArgs) -> super::CmdResult {
    if args.list_checks {
        for c in CHECKS {
            println!("{:<22} {:<6} {}", c.id, c.severity.as_str(), c.title);
        }
        return Ok(EXIT_OK);
    }
    let fail_on = match args.fail_on {
        Some(s) => s,
        None => config.audit.fail_on(),
    };
    let auditor = Auditor::new(config)?;
    let opts = audit_options(config, args.container.clone())?;
    let conn = Connection::open(config, args.source)?;
    if let Connection::Files(_) = conn {
        if args.source == AuditSource::Auto {
            crate::say!("{}", Connection::FALLBACK_NOTE);
        }
    }
    let results = run(conn.source(), &opts, &|t: &str| auditor.scan(t))?;
    let mut text = Vec::new();
    write_audit(args.format, &results, &mut text)?;
    match &args.output {
        Some(path) => crate::fsutil::write_atomic(path, &text)
            .with_context(|| format!("--output {}: cannot write", path.display()))?,
        None => std::io::stdout().write_all(&text)?,
    }
    let failing = failures_at_or_above(&results, fail_on);
    if failing > 0 {
        crate::say!(
            "{failing} failed check(s) at or above {}; fix them or declare accepted risks (sidecar.audit.accept label)",
            fail_on.as_str()
        );
        return Ok(EXIT_FINDINGS);
    }
    Ok(EXIT_OK)
}

/// `sidecar enforce`: fix what the host checks find, as switched on in `[enforce]`.
pub fn run_enforce(config: &Config, args: super::EnforceArgs) -> super::CmdResult {
    let (done, errors) = enforce_once(config, args.dry_run)?;
    for line in &done {
        println!("{line}");
    }
    for (path, why) in &errors {
        crate::say!("error: {}: {}", terminal_path(path), terminal(why));
    }
    crate::say!(
        "{} change(s) {}, {} error(s)",
        done.len(),
        if args.dry_run { "planned" } else { "made" },
        errors.len()
    );
    Ok(if errors.is_empty() { EXIT_OK } else { super::EXIT_ERROR })
}
