//! Applying a retention policy to a store: which backups go (planned by [`super::retention`]), with
//! their checksum and index files, plus leftovers of killed backups. Only sidecar's own file names
//! are ever touched; the newest complete backup is always kept.
use std::collections::HashSet;
use std::time::Duration;

use super::catalog::{backup_time, checksum_name, index_name, sorted_backups};
use super::error::BackupError;
use super::retention;
use super::verify::verify_without_key;
use crate::store::Store;

/// What pruning decided for one backup.
#[derive(Debug)]
pub struct PruneDecision {
    /// The backup's file name.
    pub name: String,
    /// Why it is kept; empty: deleted (or would be, in a dry run).
    pub reasons: retention::Reasons,
}

/// Whether pruning deletes, or only says what it would delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PruneMode {
    /// Delete what the policy does not keep.
    Delete,
    /// Delete nothing; the decisions say what would go.
    DryRun,
}

/// Apply `policy` to the backups in `store` whose name starts with `name-`: delete the others (with
/// their checksum and index files) unless `mode` is a dry run. Also removes leftovers of killed backups older
/// than a day. Only sidecar's own file names are ever touched.
pub fn prune(
    store: &dyn Store,
    name: &str,
    policy: &retention::Policy,
    mode: PruneMode,
) -> Result<Vec<PruneDecision>, BackupError> {
    policy
        .validate()
        .map_err(|e| BackupError::Source(format!("retention: {e}")))?;
    let dry_run = mode == PruneMode::DryRun;
    let prefix = format!("{name}-");
    let objects = store.list()?;
    let names: Vec<String> = sorted_backups(&objects)
        .into_iter()
        .filter(|n| n.starts_with(&prefix) && backup_time(n).is_some())
        .collect();
    let mut items: Vec<retention::Item> = names
        .iter()
        .map(|n| retention::Item {
            time: backup_time(n).unwrap_or(0),
            good: false,
        })
        .collect();
    // Only the newest complete backup matters to the policy: check from the newest down.
    for i in (0..names.len()).rev() {
        if verify_without_key(store, &names[i], None).is_ok() {
            items[i].good = true;
            break;
        }
    }
    let reasons = retention::plan(&items, policy);
    let mut out = Vec::new();
    for (n, reasons) in names.into_iter().zip(reasons) {
        if reasons.is_empty() && !dry_run {
            store.delete(&n)?;
            store.delete(&checksum_name(&n))?;
            store.delete(&index_name(&n))?;
        }
        out.push(PruneDecision { name: n, reasons });
    }
    if !dry_run {
        // Checksum and index files whose backup is gone (deleted by hand).
        let present: HashSet<&str> = objects.iter().map(|o| o.name.as_str()).collect();
        for o in &objects {
            let Some(base) = o.name.strip_suffix(".b3").or_else(|| o.name.strip_suffix(".index.age")) else {
                continue;
            };
            if base.starts_with(&prefix) && backup_time(base).is_some() && !present.contains(base) {
                store.delete(&o.name)?;
            }
        }
        store.sweep(&prefix, Duration::from_secs(86_400))?;
    }
    Ok(out)
}
