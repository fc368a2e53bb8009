//! Restoring a backup: decrypt, decompress and extract into a staging directory inside the target,
//! check every file against the manifest, and only then move the result into place. Hostile entries
//! (`..`, absolute paths, device files, hardlinks out of the tree) are refused, nothing is ever
//! written through a symlink, and a failed restore leaves the target as it was.
//!
//! A backup is input from outside the moment it leaves the host: unless asked to, a restore gives
//! no privileges back (setuid, setgid and sticky bits, `security.*` and `trusted.*` extended
//! attributes such as file capabilities), and [`verify`] refuses exactly what a restore refuses (one
//! `TreeCheck` for both).
//!
//! The steps, each in its own module (in the spirit of rustic's restore): `stream` opens and
//! decrypts the backup; `extract` reads every entry; `plan` decides what a restore will do
//! (target, staging, selection, what each entry may be and which metadata it keeps); `apply`
//! writes into the staging directory, then moves the result into place and sets metadata; `check`
//! holds the tree to the manifest. `options` holds what a restore is asked and what it reports.
use std::fs::{self, File};
use std::path::Path;
use std::sync::Arc;

mod apply;
mod check;
mod extract;
mod options;
mod plan;
mod stream;

use crate::backup::catalog::BackupRef;
use crate::backup::crypto;
use crate::backup::error::BackupError;
use crate::backup::progress::Progress;
use extract::{extract, ExtractOptions};
pub use options::{Dropped, Keep, RestoreOptions, RestoreSummary};

/// Restore `opts.backup` into `opts.target`.
pub fn restore(opts: &RestoreOptions) -> Result<RestoreSummary, BackupError> {
    let identities = crypto::read_identities(&opts.identity)?;
    let selection = plan::selection(&opts.paths)?;
    let target = &opts.target;
    let staged = plan::prepare_target(opts)?;
    let result = extract(&ExtractOptions {
        backup: &opts.backup,
        identity_path: &opts.identity,
        identities: &identities,
        staging: Some(&staged.staging),
        select: &selection,
        progress: &opts.progress,
        keep: opts.keep,
    });
    let mut summary = match result {
        Ok(mut s) => {
            for p in &staged.removed_leftovers {
                s.warnings
                    .push(format!("removed {}, left by an interrupted restore", p.display()));
            }
            s
        }
        Err(e) => {
            let _ = fs::remove_dir_all(&staged.staging);
            return Err(e);
        }
    };
    if opts.dry_run {
        let _ = fs::remove_dir_all(&staged.staging);
        return Ok(summary);
    }
    apply::move_into_place(target, &staged, &mut summary)?;
    if selection.is_empty() {
        apply::root_meta(target, opts.keep, &mut summary);
    }
    File::open(target)
        .and_then(|d| d.sync_all())
        .map_err(|e| BackupError::io(format!("fsync {}", target.display()), e))?;
    Ok(summary)
}

/// Verify a backup end to end with the identity: decrypt, decompress, read every entry, check every
/// file against the manifest. Writes nothing.
pub fn verify(
    backup: &BackupRef,
    identity: &Path,
    progress: Option<Arc<Progress>>,
) -> Result<RestoreSummary, BackupError> {
    let identities = crypto::read_identities(identity)?;
    extract(&ExtractOptions {
        backup,
        identity_path: identity,
        identities: &identities,
        staging: None,
        select: &[],
        progress: &progress,
        keep: Keep::default(),
    })
}
