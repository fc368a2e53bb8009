//! A finding: where a secret is, which rule found it, and a keyed fingerprint. Never the secret.
use serde::{Deserialize, Serialize};

use super::rules::{Confidence, Severity};

/// Version of the finding record format (`schema` field of every JSON/JSONL record).
pub const FINDING_SCHEMA: u32 = 1;

/// One secret occurrence in one file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Finding {
    /// Record format version.
    pub schema: u32,
    /// Rule id.
    pub rule: String,
    /// Rule description.
    pub description: String,
    /// Severity.
    pub severity: Severity,
    /// How the match was confirmed: `checksum` (the format's checksum or structure verified),
    /// `format` (a provider's distinctive format) or `context` (found by its name). Absent in
    /// records written before sidecar reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<Confidence>,
    /// File path as given on the command line (joined with the path below a given directory),
    /// or `-` for standard input.
    pub file: String,
    /// 1-based line of the first byte of the secret.
    pub line: u64,
    /// 1-based line of the last byte of the secret.
    pub end_line: u64,
    /// Byte offset of the first masked byte in the file (in the decompressed stream for `.gz`).
    pub start: u64,
    /// Byte offset just past the last masked byte.
    pub end: u64,
    /// Exact raw byte ranges `[start, end)` to mask: several when the secret spans log entries;
    /// newlines inside a secret are never part of a range.
    pub ranges: Vec<[u64; 2]>,
    /// Docker container id, when the path is a Docker container log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_id: Option<String>,
    /// `stdout` or `stderr` for Docker json-file logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    /// The log entry's timestamp, as Docker wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    /// HMAC-SHA256 of the secret under the install's key (hex).
    pub fingerprint: String,
    /// Public prefix, stars and length: never any other character of the secret.
    pub preview: String,
    /// Only the start of a secret is here: its entry was cut off (a 16 KiB part whose next part
    /// never came) and the visible part, found by the rule's public prefix, is what was masked.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub partial: bool,
    /// The bytes that replace the ranges when masking (concatenated; same total length).
    #[serde(skip)]
    pub mask: Vec<u8>,
}

impl Finding {
    /// Total number of masked bytes.
    pub fn masked_len(&self) -> u64 {
        self.ranges.iter().map(|[s, e]| e - s).sum()
    }
}
