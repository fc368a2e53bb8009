//! The manifest: one JSON line per archived path plus a header and a totals line, stored as the
//! archive's last entry ([`MANIFEST_NAME`]) so that a restore can check every byte it wrote.
use serde::{Deserialize, Serialize};

/// Name of the manifest entry, the last one in every archive.
pub const MANIFEST_NAME: &str = ".sidecar-manifest.jsonl";
/// Manifest format version.
pub const MANIFEST_VERSION: u32 = 2;

/// The first line.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Header {
    /// Always `sidecar-backup-manifest`.
    pub format: String,
    /// [`MANIFEST_VERSION`].
    pub version: u32,
    /// The directory that was backed up.
    pub source: String,
    /// When the backup started (RFC 3339, UTC).
    pub created: String,
    /// The sidecar version that wrote it.
    pub sidecar: String,
    /// Owner, mode and mtime of the backed-up directory itself (a full restore gives them to the
    /// target, so a volume's root keeps its owner); absent in older backups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<RootMeta>,
}

/// Owner, mode and mtime of the backed-up directory.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct RootMeta {
    /// Permission bits (`st_mode & 0o7777`).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Modification time, nanoseconds since the epoch.
    pub mtime_ns: i64,
}

/// Kinds of archived entries.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A directory.
    Dir,
    /// A regular file (content stored).
    File,
    /// A symbolic link (stored, never followed).
    Symlink,
    /// A second name of a regular file already stored.
    Hardlink,
    /// A named pipe.
    Fifo,
}

/// One archived path.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Record {
    /// Path relative to the source, `/`-separated.
    pub path: String,
    /// What it is.
    #[serde(rename = "type")]
    pub kind: Kind,
    /// Content size in bytes (files), else 0.
    pub size: u64,
    /// Permission bits (`st_mode & 0o7777`).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Modification time, nanoseconds since the epoch.
    pub mtime_ns: i64,
    /// BLAKE3 hash (hex) of the content as stored (files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blake3: Option<String>,
    /// Symlink target, or the path a hardlink points to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// The file kept changing while it was read (stored twice, both reads differed from the stat).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub changed: bool,
}

/// The last line.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Totals {
    /// Entries archived.
    pub entries: u64,
    /// Regular files.
    pub files: u64,
    /// Bytes of file content.
    pub bytes: u64,
    /// Files recorded as changed while read.
    pub changed: u64,
    /// Paths skipped (sockets, devices, unreadable), each warned about.
    pub skipped: u64,
}

/// A manifest line, tagged by `line`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "line", rename_all = "lowercase")]
pub enum Line {
    /// The first line.
    Header(Header),
    /// One per archived path, in archive order.
    Entry(Record),
    /// The last line.
    Totals(Totals),
}
