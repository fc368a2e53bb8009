//! Encrypted, compressed, streaming backups of a directory (the `openclaw_data` volume) and their
//! restore. One backup is one standard `.tar.zst.age` file: `age -d | zstd -d | tar -x` restores it
//! without sidecar. Nothing is staged: the tar stream is compressed, encrypted and written to a
//! temporary name in the destination, fsynced, and renamed only when complete.
//!
//! Where backups live is [`crate::store`]'s job; this module makes ([`create`]), checks
//! ([`verify`], [`restore::verify`]), finds ([`catalog`]), prunes ([`prune`]), schedules
//! ([`schedule`]) and restores ([`restore`]) them.
pub mod archive;
pub mod catalog;
pub mod create;
pub mod crypto;
pub mod error;
pub mod index;
pub mod manifest;
pub mod pause;
pub mod progress;
pub mod prune;
pub mod restore;
pub mod retention;
pub mod schedule;
pub mod verify;
mod write_behind;

pub use catalog::{backup_time, checksum_name, index_name, list_backups, resolve, sorted_backups, BackupRef, SUFFIX};
pub use create::{create_backup, BackupOptions, BackupResult};
pub use crypto::Recipient;
pub use error::BackupError;
pub use index::{read_index, Index};
pub use progress::Progress;
pub use prune::{prune, PruneDecision, PruneMode};
pub use schedule::{run_scheduled, ScheduledEvent};
pub use verify::verify_without_key;
