//! `sidecar report`: the flagged-secret report for reviewers, and its triage (`ack`, `unack`).
use std::io::Write;

use anyhow::{bail, Context, Result};

use super::{ReportAction, ReportArgs, EXIT_FINDINGS, EXIT_OK};
use crate::config::Config;
use crate::escape::terminal;
use crate::findings::audit_stream::latest_audit;
use crate::findings::group::{parse_time, Filter, Grouper, Item, ItemStatus};
use crate::findings::read::fold_findings_dir;
use crate::findings::record::short_fingerprint;
use crate::findings::triage::{Ack, Triage};
use crate::render::{write_review, Review};

pub fn run_report(config: &Config, args: ReportArgs) -> super::CmdResult {
    let state_dir = &config.state_dir;
    // The findings are read one record at a time into per-secret items (memory grows with the
    // distinct secrets, not with the records), and only by the actions that need them.
    let items_of = |filter: &Filter, triage: &Triage| -> Result<(Vec<Item>, u64)> {
        match &args.from {
            Some(dest) => {
                let mut g = Grouper::new(filter);
                let damaged = crate::findings::fleet::read_fleet(dest, |r| g.add(r))?;
                Ok((g.finish(triage), damaged))
            }
            None => {
                let findings_dir = crate::state::StateDir::new(state_dir).findings();
                let (g, damaged) = fold_findings_dir(&findings_dir, || Grouper::new(filter), |g, r| g.add(r))
                    .with_context(|| format!("findings directory {}", findings_dir.display()))?;
                Ok((g.finish(triage), damaged))
            }
        }
    };
    let triage = Triage::load(state_dir)?;
    match args.action {
        Some(ReportAction::Ack { fingerprint, note, by }) => {
            let (all, _) = items_of(&Filter::default(), &triage)?;
            let fp = resolve(&fingerprint, all.iter().map(|i| i.fingerprint.as_str()))?;
            let mut triage = triage;
            let at = crate::timefmt::rfc3339(std::time::SystemTime::now());
            let by = by.unwrap_or_else(|| std::env::var("USER").unwrap_or_else(|_| "unknown".into()));
            triage.acks.insert(fp.clone(), Ack { note, by, at });
            triage.save(state_dir)?;
            println!("acknowledged {}", terminal(short_fingerprint(&fp)));
            Ok(EXIT_OK)
        }
        Some(ReportAction::Unack { fingerprint }) => {
            let mut triage = triage;
            let fp = resolve(&fingerprint, triage.acks.keys().map(String::as_str))?;
            triage.acks.remove(&fp);
            triage.save(state_dir)?;
            println!("no longer acknowledged: {}", terminal(short_fingerprint(&fp)));
            Ok(EXIT_OK)
        }
        Some(ReportAction::Ship) => {
            if config.fleet.ship_to.is_empty() {
                bail!("no fleet destination: set fleet.ship_to (s3://bucket/prefix or a directory)");
            }
            let n = crate::findings::fleet::ship(state_dir, &config.fleet.ship_to, &config.fleet.host_name())?;
            println!(
                "{n} object(s) shipped to {}/{}",
                config.fleet.ship_to.trim_end_matches('/'),
                config.fleet.host_name()
            );
            Ok(EXIT_OK)
        }
        Some(ReportAction::Alert) => {
            let Some(hook) = config.alerts.webhook()? else {
                bail!("no webhook configured: set alerts.webhook_url or alerts.webhook_url_file");
            };
            let (sent, failed) = crate::app::alerts::alert_once(state_dir, &hook)?;
            println!("{sent} alert(s) sent");
            for f in &failed {
                crate::say!("error: alert for {} (will be tried again)", terminal(f));
            }
            Ok(if failed.is_empty() { EXIT_OK } else { super::EXIT_ERROR })
        }
        None => {
            let time = |t: &Option<String>, flag: &str| -> Result<_> {
                t.as_deref()
                    .map(parse_time)
                    .transpose()
                    .map_err(|e| anyhow::anyhow!("{flag} {e}"))
            };
            let filter = Filter {
                since: time(&args.since, "--since")?,
                until: time(&args.until, "--until")?,
                containers: args.container.clone(),
                rules: args.rule.clone(),
            };
            let (mut items, damaged) = items_of(&filter, &triage)?;
            match args.status.as_str() {
                "all" => {}
                "new" => items.retain(|i| i.status == ItemStatus::New),
                "acked" => items.retain(|i| i.status == ItemStatus::Acked),
                other => bail!("--status {other}: expected new, acked or all"),
            }
            let audit = latest_audit(state_dir)?;
            let mut text = Vec::new();
            let review = Review {
                items: &items,
                audit: &audit,
                damaged,
            };
            write_review(args.format, &review, &mut text)?;
            match &args.output {
                Some(path) => crate::fsutil::write_atomic(path, &text)
                    .with_context(|| format!("--output {}: cannot write", path.display()))?,
                None => std::io::stdout().write_all(&text)?,
            }
            if damaged > 0 {
                crate::say!("warning: {damaged} damaged finding record(s) skipped (truncated or corrupted files)");
            }
            Ok(if items.iter().any(|i| i.status == ItemStatus::New) {
                EXIT_FINDINGS
            } else {
                EXIT_OK
            })
        }
    }
}

/// A full fingerprint from a unique prefix (at least 8 characters) among `known`.
fn resolve<'a>(given: &str, known: impl Iterator<Item = &'a str>) -> Result<String> {
    if given.len() < 8 {
        bail!("fingerprint {given:?}: give at least 8 characters (the report shows 12)");
    }
    let matches: Vec<&str> = known.filter(|k| k.starts_with(given)).collect();
    match matches.as_slice() {
        [one] => Ok(one.to_string()),
        [] if given.len() == 64 && given.bytes().all(|b| b.is_ascii_hexdigit()) => Ok(given.to_string()),
        [] => bail!("fingerprint {given}: not in the findings (see `sidecar report`)"),
        _ => bail!(
            "fingerprint {given}: matches {} items; give more characters",
            matches.len()
        ),
    }
}
