//! The streaming scanner: reads a file (plain, json-file or gzip), assembles log entries into text
//! units, runs the engine on them and maps every secret back to exact raw byte ranges of the file.
//!
//! How it stays fast and bounded:
//! - The keyword prefilter runs on raw bytes, a buffer at a time; only lines holding a keyword are
//!   parsed and decoded. Docker's 16 KiB partial entries and PEM keys printed one line per entry are
//!   assembled into one unit per stream before matching.
//! - Memory is bounded by the read buffer ([`ScanOptions::buffer_bytes`]) and the largest unit
//!   ([`ScanOptions::max_unit_bytes`]); a longer line or unit is scanned in overlapping windows.
//! - A large plain file is cut into chunks at line starts and the chunks are scanned in parallel. Each
//!   chunk reads a warm-up stretch before its start to learn what entries are open there; a unit
//!   belongs to the chunk in which its first line starts and is completed by that chunk even past its end.
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::ops::Range;
use std::path::Path;

use memchr::memmem;

use super::jsonfile::{self, JsonFileLine, Stream};
use crate::redact::{mask, Engine, Finding, FingerprintKey, Match, Scratch};

/// What the keyword prefilter says of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LineHit {
    /// No keyword: no rule can match.
    None,
    /// Keywords of rules with a `requires` gate only: [`Engine::might_match_lowered`] decides.
    Maybe,
    /// A keyword of a rule without a gate: decode and match.
    Sure,
}

impl LineHit {
    fn any(self) -> bool {
        self != LineHit::None
    }
}

/// Tunables of the scanner.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    /// Read buffer size; also the longest line handled in one piece.
    pub buffer_bytes: usize,
    /// Longest text unit matched in one go; longer units are matched in overlapping windows.
    pub max_unit_bytes: usize,
    /// Overlap between windows of a long line or unit.
    pub window_overlap: usize,
    /// Most log entries joined into one PEM block.
    pub pem_max_lines: usize,
    /// Plain files larger than this are split into chunks of this size scanned in parallel.
    pub chunk_bytes: u64,
    /// Warm-up read before each chunk.
    pub warmup_bytes: u64,
}

impl Default for ScanOptions {
    fn default() -> Self {
        Self {
            buffer_bytes: 1 << 20,
            max_unit_bytes: 1 << 20,
            window_overlap: 16 << 10,
            pem_max_lines: 256,
            chunk_bytes: 32 << 20,
            warmup_bytes: 1 << 20,
        }
    }
}

/// What a file turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Docker json-file log lines.
    JsonFile,
    /// Plain text.
    Text,
    /// Looks binary (NUL bytes near the start): skipped.
    Binary,
    /// No bytes.
    Empty,
}

impl Format {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::JsonFile => "json-file",
            Format::Text => "text",
            Format::Binary => "binary",
            Format::Empty => "empty",
        }
    }
}

/// A file-level problem that did not stop the scan. Carries line numbers, never line content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// A line of a json-file log is not valid json-file JSON; it was scanned as text.
    MalformedLine {
        /// 1-based line.
        line: u64,
        /// What is wrong (no content).
        reason: String,
    },
    /// A line longer than the buffer was scanned as text in overlapping windows.
    LongLine {
        /// 1-based line.
        line: u64,
    },
}

/// The result of scanning one file.
#[derive(Debug, Default)]
pub struct FileScan {
    /// Findings, ordered by position, without duplicates.
    pub findings: Vec<Finding>,
    /// Problems that did not stop the scan.
    pub notices: Vec<Notice>,
    /// Bytes scanned (decompressed bytes for gzip).
    pub bytes: u64,
    /// Lines scanned.
    pub lines: u64,
    /// Detected format.
    pub format: Option<Format>,
    /// The file was gzip-compressed.
    pub gzip: bool,
}

/// Errors scanning a file: messages name the file and what to do, never file content.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// Opening or reading failed.
    #[error("{path}: {action}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What was being done.
        action: &'static str,
        /// The OS error.
        source: io::Error,
    },
}

impl ScanError {
    /// The file does not exist (any more): it vanished between listing and reading.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ScanError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound)
    }
}

/// What a scan needs besides the bytes: engine, key and tunables.
#[derive(Debug, Clone, Copy)]
pub struct Scanner<'a> {
    /// The engine.
    pub engine: &'a Engine,
    /// Fingerprint key.
    pub key: &'a FingerprintKey,
    /// Tunables.
    pub options: &'a ScanOptions,
}

/// Docker container id from a path like `…/containers/<id>/<id>-json.log[.N][.gz]`.
pub fn container_id_from_path(path: &Path) -> Option<String> {
    let is_id = |s: &str| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit());
    let name = path.file_name()?.to_str()?;
    if let Some(id) = name
        .split("-json.log")
        .next()
        .filter(|id| is_id(id) && name.contains("-json.log"))
    {
        return Some(id.to_string());
    }
    let parent = path.parent()?.file_name()?.to_str()?;
    is_id(parent).then(|| parent.to_string())
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const SNIFF: usize = 8 << 10;

/// A planned piece of work on one file.
#[derive(Debug, Clone)]
struct Job {
    read_from: u64,
    own: Range<u64>,
}

impl<'a> Scanner<'a> {
    /// Scan a file on disk, in parallel chunks when it is large and plain.
    pub fn scan_path(&self, path: &Path, label: &str) -> Result<FileScan, ScanError> {
        let io_err = |action: &'static str| {
            move |source: io::Error| ScanError::Io {
                path: label.to_string(),
                action,
                source,
            }
        };
        let mut file = File::open(path).map_err(io_err(
            "cannot open (check that it exists and that sidecar may read it)",
        ))?;
        let size = file.metadata().map_err(io_err("cannot stat"))?.len();
        let mut head = [0u8; 2];
        let n = read_full(&mut file, &mut head).map_err(io_err("cannot read"))?;
        file.seek(SeekFrom::Start(0)).map_err(io_err("cannot seek"))?;
        let container = container_id_from_path(path);
        // Gzip is one sequential stream, and a small file is not worth chunking: scan from the start
        // (scan_reader detects gzip itself).
        if (n == 2 && head == GZIP_MAGIC) || size <= self.options.chunk_bytes + self.options.chunk_bytes / 2 {
            return self.scan_reader(file, label, container.as_deref());
        }
        let format = {
            let mut sniff = vec![0u8; SNIFF.max(64 << 10)];
            let n = read_full(&mut file, &mut sniff).map_err(io_err("cannot read"))?;
            sniff.truncate(n);
            detect_format(&sniff)
        };
        if matches!(format, Format::Binary | Format::Empty) {
            return Ok(FileScan {
                format: Some(format),
                bytes: size,
                ..FileScan::default()
            });
        }
        // Cut into chunks at line starts.
        let mut starts = vec![0u64];
        let mut at = self.options.chunk_bytes;
        while at < size {
            match next_line_start(&mut file, at).map_err(io_err("cannot read"))? {
                Some(s) if s < size => {
                    starts.push(s);
                    at = s + self.options.chunk_bytes;
                }
                _ => break,
            }
        }
        let mut jobs = Vec::with_capacity(starts.len());
        for (i, &s) in starts.iter().enumerate() {
            let end = starts.get(i + 1).copied().unwrap_or(u64::MAX);
            let read_from = if s == 0 {
                0
            } else {
                next_line_start(&mut file, s.saturating_sub(self.options.warmup_bytes))
                    .map_err(io_err("cannot read"))?
                    .unwrap_or(s)
                    .min(s)
            };
            jobs.push(Job { read_from, own: s..end });
        }
        use rayon::prelude::*;
        let parts: Vec<Result<ChunkScan, ScanError>> = jobs
            .par_iter()
            .map(|job| {
                let mut f = File::open(path).map_err(io_err("cannot open"))?;
                f.seek(SeekFrom::Start(job.read_from)).map_err(io_err("cannot seek"))?;
                let mut chunk = ChunkScanner::new(self, label, container.as_deref(), format, job.clone());
                chunk.run(f).map_err(io_err("cannot read"))?;
                Ok(chunk.finish())
            })
            .collect();
        let mut out = FileScan {
            format: Some(format),
            ..FileScan::default()
        };
        let mut lines_before = 0u64;
        for part in parts {
            let mut part = part?;
            for f in &mut part.findings {
                f.line += lines_before;
                f.end_line += lines_before;
            }
            for n in &mut part.notices {
                match n {
                    Notice::MalformedLine { line, .. } | Notice::LongLine { line } => *line += lines_before,
                }
            }
            lines_before += part.lines;
            out.bytes += part.bytes;
            out.findings.extend(part.findings);
            out.notices.extend(part.notices);
        }
        out.lines = lines_before;
        dedupe(&mut out.findings);
        Ok(out)
    }

    /// Scan a stream from its start (standard input, a small file); gzip is detected and decompressed.
    pub fn scan_reader<R: Read>(&self, reader: R, label: &str, container: Option<&str>) -> Result<FileScan, ScanError> {
        let io_err = |source: io::Error| ScanError::Io {
            path: label.to_string(),
            action: "cannot read",
            source,
        };
        let mut reader = BufReader::with_capacity(64 << 10, reader);
        let head = reader.fill_buf().map_err(io_err)?;
        if head.len() >= 2 && head[..2] == GZIP_MAGIC {
            let decoder = flate2::bufread::MultiGzDecoder::new(reader);
            let mut scan = self.scan_decompressed(decoder, label, container)?;
            scan.gzip = true;
            return Ok(scan);
        }
        self.scan_plain(reader, label, container, "cannot read")
    }

    /// Scan the decompressed stream of a gzip file: read errors mean a damaged file.
    fn scan_decompressed<R: Read>(
        &self,
        reader: R,
        label: &str,
        container: Option<&str>,
    ) -> Result<FileScan, ScanError> {
        self.scan_plain(
            BufReader::with_capacity(64 << 10, reader),
            label,
            container,
            "cannot decompress (the gzip file is truncated or corrupted; findings before the damage are reported)",
        )
    }

    fn scan_plain<R: BufRead>(
        &self,
        mut reader: R,
        label: &str,
        container: Option<&str>,
        action: &'static str,
    ) -> Result<FileScan, ScanError> {
        let io_err = |source: io::Error| ScanError::Io {
            path: label.to_string(),
            action,
            source,
        };
        // Sniff the format from the first bytes (at least one full line when it is short).
        let mut sniff = Vec::with_capacity(SNIFF);
        while sniff.len() < SNIFF {
            let buf = reader.fill_buf().map_err(io_err)?;
            if buf.is_empty() {
                break;
            }
            let take = buf.len().min(SNIFF - sniff.len());
            sniff.extend_from_slice(&buf[..take]);
            reader.consume(take);
        }
        let format = detect_format(&sniff);
        if matches!(format, Format::Binary | Format::Empty) {
            let mut rest = 0u64;
            if format == Format::Binary {
                rest = io::copy(&mut reader, &mut io::sink()).map_err(io_err)?;
            }
            return Ok(FileScan {
                format: Some(format),
                bytes: sniff.len() as u64 + rest,
                ..FileScan::default()
            });
        }
        let mut chunk = ChunkScanner::new(
            self,
            label,
            container,
            format,
            Job {
                read_from: 0,
                own: 0..u64::MAX,
            },
        );
        chunk.run(io::Cursor::new(sniff).chain(reader)).map_err(io_err)?;
        let part = chunk.finish();
        let mut out = FileScan {
            format: Some(format),
            bytes: part.bytes,
            lines: part.lines,
            findings: part.findings,
            notices: part.notices,
            gzip: false,
        };
        dedupe(&mut out.findings);
        Ok(out)
    }

    /// Scan a stretch of a file that is still growing (the log guard's unit of work).
    ///
    /// `reader` yields the file's bytes from `start.from` (a line start, `start.from_line` lines into
    /// the file) up to the end of its last complete line. Units whose last line starts before
    /// `start.new_from` were reported by an earlier scan: their findings come back with
    /// `is_new == false` (to be masked again, never reported twice), unless the unit was open at the
    /// end of that scan (`start.reopened`). With [`AtEnd::Wait`], a unit still open at the end
    /// (a 16 KiB split waiting for its last part, a PEM key waiting for its END line) is not matched:
    /// [`Segment::resume`] points at its first line, where the next scan must start.
    pub fn scan_segment<R: Read>(
        &self,
        reader: R,
        label: &str,
        container: Option<&str>,
        format: Format,
        start: &SegmentStart,
        at_end: AtEnd,
    ) -> io::Result<Segment> {
        let (from, from_line, new_from) = (start.from, start.from_line, start.new_from);
        let mut chunk = ChunkScanner::new(
            self,
            label,
            container,
            format,
            Job {
                read_from: from,
                own: from..u64::MAX,
            },
        );
        chunk.new_from = new_from;
        chunk.reopened = start.reopened.clone();
        chunk.run(reader)?;
        let end = from + chunk.bytes;
        let mut resume = (end, chunk.lines);
        for unit in chunk.pending.values() {
            if let Some(first) = unit.pieces.first() {
                if first.line_start < resume.0 {
                    resume = (first.line_start, first.line.saturating_sub(1));
                }
            }
        }
        let open_from = (resume.0 < end).then_some(resume.0);
        let mut open_units: Vec<OpenUnit> = chunk
            .pending
            .values()
            .filter_map(|u| {
                u.pieces.first().map(|p| OpenUnit {
                    line_start: p.line_start,
                    seen: u.seen_upto as u64,
                })
            })
            .collect();
        open_units.sort_by_key(|o| o.line_start);
        let complete_units = chunk.findings.len();
        if at_end == AtEnd::Close {
            let streams: Vec<Stream> = chunk.pending.keys().copied().collect();
            for s in streams {
                if let Some(unit) = chunk.pending.remove(&s) {
                    chunk.scan_unit_at_end(unit);
                }
            }
            resume = (end, chunk.lines);
        }
        let mut findings = Vec::with_capacity(chunk.findings.len());
        for (i, (mut finding, is_new)) in chunk.findings.into_iter().zip(chunk.finding_new).enumerate() {
            finding.line += from_line;
            finding.end_line += from_line;
            findings.push(SegmentFinding {
                finding,
                is_new,
                open: i >= complete_units,
            });
        }
        findings.sort_by(|a, b| {
            a.finding
                .start
                .cmp(&b.finding.start)
                .then(b.finding.end.cmp(&a.finding.end))
        });
        let mut notices = chunk.notices;
        for n in &mut notices {
            match n {
                Notice::MalformedLine { line, .. } | Notice::LongLine { line } => *line += from_line,
            }
        }
        Ok(Segment {
            findings,
            open_from,
            open_units,
            notices,
            end,
            lines: chunk.lines,
            resume: resume.0,
            resume_line: from_line + resume.1,
        })
    }
}

/// What a [`Scanner::scan_segment`] does with a unit still open at the end of what it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AtEnd {
    /// Not matched: it may continue in what is written next ([`Segment::resume`] points at its
    /// first line).
    Wait,
    /// Matched as it is (its findings are marked [`SegmentFinding::open`]).
    Close,
}

/// One finding of a [`Scanner::scan_segment`].
#[derive(Debug, Clone)]
pub struct SegmentFinding {
    /// The finding, in the offsets and lines of the file.
    pub finding: Finding,
    /// Its unit is new (ends at or after [`SegmentStart::new_from`], or was open at the end of the
    /// earlier scan): to be recorded. Otherwise it was reported already and is only masked again.
    pub is_new: bool,
    /// Its unit was still open at the end and matched only because [`AtEnd::Close`] was asked
    /// for (it may continue in the next file).
    pub open: bool,
}

/// Where a [`Scanner::scan_segment`] starts, and what the scans before it have reported.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SegmentStart {
    /// Offset of the reader's first byte (a line start).
    pub from: u64,
    /// Lines before `from`.
    pub from_line: u64,
    /// Units whose last line starts before this offset were reported by an earlier scan.
    pub new_from: u64,
    /// Units that were open at the end of the earlier scan: never reported.
    pub reopened: Vec<OpenUnit>,
}

/// A unit open at the end of a scan (a 16 KiB split or PEM block waiting for its end).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OpenUnit {
    /// Offset of its first line.
    pub line_start: u64,
    /// Text bytes at its start that an earlier window already matched.
    pub seen: u64,
}

/// The result of [`Scanner::scan_segment`].
#[derive(Debug, Default)]
pub struct Segment {
    /// Findings by position.
    pub findings: Vec<SegmentFinding>,
    /// The first line of the earliest unit open at the end, before [`AtEnd::Close`] closed it.
    pub open_from: Option<u64>,
    /// Every unit open at the end, before [`AtEnd::Close`] closed it (their findings are not
    /// reported unless closed: the next scan passes them as [`SegmentStart::reopened`]).
    pub open_units: Vec<OpenUnit>,
    /// Problems on lines at or after `new_from`.
    pub notices: Vec<Notice>,
    /// Offset just past the last byte read.
    pub end: u64,
    /// Lines read.
    pub lines: u64,
    /// Where the next scan starts: the first line of the earliest unit still open, or `end`.
    pub resume: u64,
    /// Lines before `resume`.
    pub resume_line: u64,
}

fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Offset of the first line start at or after `at` (`at` itself when `at == 0` or the byte before
/// it is a newline); `None` at end of file.
fn next_line_start(file: &mut File, at: u64) -> io::Result<Option<u64>> {
    if at == 0 {
        return Ok(Some(0));
    }
    file.seek(SeekFrom::Start(at - 1))?;
    let mut buf = vec![0u8; 64 << 10];
    let mut pos = at - 1;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(None);
        }
        if let Some(i) = memchr::memchr(b'\n', &buf[..n]) {
            return Ok(Some(pos + i as u64 + 1));
        }
        pos += n as u64;
    }
}

/// Detect the format of a file from its first bytes.
pub fn detect_format(head: &[u8]) -> Format {
    if head.is_empty() {
        return Format::Empty;
    }
    if memchr::memchr(0, head).is_some() {
        return Format::Binary;
    }
    let first = head
        .split(|&b| b == b'\n')
        .find(|l| !l.iter().all(u8::is_ascii_whitespace))
        .unwrap_or(&[]);
    if jsonfile::looks_like_json_file(first) {
        Format::JsonFile
    } else {
        Format::Text
    }
}

/// Sort by position and drop findings that a window overlap produced twice: of two overlapping
/// findings of the same rule, the longer is kept.
fn dedupe(findings: &mut Vec<Finding>) {
    findings.sort_by(|a, b| a.start.cmp(&b.start).then(b.end.cmp(&a.end)));
    let mut kept: Vec<Finding> = Vec::with_capacity(findings.len());
    for f in findings.drain(..) {
        if let Some(prev) = kept
            .iter()
            .rev()
            .take(8)
            .find(|k| k.rule == f.rule && k.start < f.end && f.start < k.end)
        {
            if prev.end >= f.end {
                continue;
            }
        }
        kept.push(f);
    }
    *findings = kept;
}

/// How a piece's decoded bytes map back to the raw line.
#[derive(Debug, Clone)]
enum PieceMap {
    /// Decoded byte `i` is raw byte `line_start + offset + i` (plain text).
    Identity { offset: u32 },
    /// Decoded byte `i` came from the escape starting at `starts[i]`; `raw_end` closes the string.
    Json { starts: Vec<u32>, raw_end: u32 },
}

#[derive(Debug, Clone)]
struct Piece {
    line: u64,
    line_start: u64,
    text_start: usize,
    text_len: usize,
    time: Option<String>,
    map: PieceMap,
    /// Its raw line held a keyword (in any form it is searched in): its text may hold one.
    hit: bool,
}

impl Piece {
    /// Raw absolute range of local decoded range `r` (which does not cut an escape's bytes apart).
    fn raw(&self, r: Range<usize>) -> Range<u64> {
        match &self.map {
            PieceMap::Identity { offset } => {
                let base = self.line_start + *offset as u64;
                base + r.start as u64..base + r.end as u64
            }
            PieceMap::Json { starts, raw_end } => {
                let s = starts[r.start];
                // the end: the start of the first decoded byte after r that begins a new escape
                let mut e = *raw_end;
                let last = starts[r.end - 1];
                for &st in &starts[r.end..] {
                    if st != last {
                        e = st;
                        break;
                    }
                }
                self.line_start + s as u64..self.line_start + e as u64
            }
        }
    }

    /// Whether local decoded bytes `r` are exactly their raw bytes (no escapes).
    fn is_verbatim(&self, r: Range<usize>) -> bool {
        match &self.map {
            PieceMap::Identity { .. } => true,
            PieceMap::Json { starts, .. } => {
                let raw = self.raw(r.clone());
                raw.end - raw.start == r.len() as u64 && r.clone().skip(1).all(|i| starts[i] == starts[i - 1] + 1)
            }
        }
    }
}

/// Text assembled from one or more pieces (log entries or lines) of one stream.
#[derive(Debug, Default)]
struct Unit {
    text: Vec<u8>,
    pieces: Vec<Piece>,
    stream: Option<Stream>,
    owned: bool,
    /// Waiting for the rest of a 16 KiB-split entry.
    partial_open: bool,
    /// Inside a PEM block whose END line has not come yet.
    pem_open: bool,
    /// Text bytes at the start already matched (the overlap carried from the window before):
    /// secrets that end within them were found there.
    seen_upto: usize,
    /// The unit was open at the end of the previous scan of this file: its findings were never
    /// reported, whatever its last line.
    reopened: bool,
    /// The unit began before a unit open at the end of the previous scan (this scan started
    /// earlier in the file, as a compressed copy is read from its start): secrets that end after
    /// this text offset were never reported, those before it were.
    fresh_at: Option<usize>,
}

/// Where the text of a unit joined from several lines can hold a keyword: the text of each part
/// whose raw line held one (a line is searched in every form a keyword takes in it, JSON-escaped
/// included, so a part whose line held none holds none either; a keyword the prefilter passes over
/// inside a run of base64 counts, since an escape such as `\n` may end that run in the decoded
/// text), and `reach` bytes on each side of every join (a keyword cut by Docker's 16 KiB split,
/// or by a line end, is in neither line whole). Ascending, merged.
/// On a 10 MB entry with four secrets, the keyword search reads a few parts and the joins
/// instead of all 10 MB a second time.
fn keyword_zones(unit: &Unit, reach: usize) -> Vec<Range<usize>> {
    let len = unit.text.len();
    let mut all: Vec<Range<usize>> = Vec::with_capacity(unit.pieces.len() * 2);
    for (i, p) in unit.pieces.iter().enumerate() {
        if i > 0 {
            all.push(p.text_start.saturating_sub(reach)..(p.text_start + reach).min(len));
        }
        if p.hit {
            all.push(p.text_start..(p.text_start + p.text_len).min(len));
        }
    }
    all.sort_by_key(|z| z.start);
    let mut zones: Vec<Range<usize>> = Vec::with_capacity(all.len());
    for z in all {
        match zones.last_mut() {
            Some(last) if z.start <= last.end => last.end = last.end.max(z.end),
            _ => zones.push(z),
        }
    }
    zones
}

/// How a unit being scanned ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UnitEnds {
    /// With its last part (or as far as anything will come).
    Whole,
    /// In a 16 KiB part whose next part will not come: a secret it cuts off is masked as far as
    /// it is visible.
    CutOff,
}

/// One complete line, as [`ChunkScanner::run`] hands it on.
struct RawLine<'b> {
    /// The line's bytes, without its newline.
    raw: &'b [u8],
    /// The same bytes ASCII-lowercased.
    lowered: &'b [u8],
    /// It ends in a newline (the last line of what is read may not).
    has_nl: bool,
    /// Offset of its first byte.
    line_start: u64,
    /// Its line number (0 before the owned range).
    line_no: u64,
    /// What the keyword prefilter says of it.
    hit: LineHit,
    /// A keyword starts in it, counting those the prefilter passes over as part of a base64 run
    /// (in the decoded text, an escape may end that run): the decoded text may hold one.
    any_keyword: bool,
    /// It starts in the owned range.
    in_own: bool,
}

/// A piece of text (a log entry's `log`, or a plain line) for a stream's unit.
struct NewPiece<'t> {
    stream: Stream,
    text: &'t [u8],
    /// Append a newline after `text` (plain text lines, so joined lines stay lines).
    add_newline: bool,
    /// Offset of its line's first byte.
    line_start: u64,
    line_no: u64,
    /// Docker's timestamp of the entry.
    time: Option<String>,
    /// From decoded bytes of `text` to raw bytes of the line.
    map: PieceMap,
    /// It may open a unit when its stream has none open (otherwise it only continues one).
    may_open: bool,
    /// Its line starts in the owned range.
    in_own: bool,
    /// A 16 KiB part whose entry continues in the next line.
    partial: bool,
    /// Its raw line held a keyword.
    hit: bool,
}

struct ChunkScan {
    findings: Vec<Finding>,
    notices: Vec<Notice>,
    bytes: u64,
    lines: u64,
}

struct ChunkScanner<'s, 'a> {
    scanner: &'s Scanner<'a>,
    label: &'s str,
    container: Option<&'s str>,
    format: Format,
    job: Job,
    line: JsonFileLine,
    pending: HashMap<Stream, Unit>,
    scratch: Scratch,
    matches: Vec<Match>,
    findings: Vec<Finding>,
    notices: Vec<Notice>,
    /// Lines in the owned range seen so far.
    lines: u64,
    /// Bytes of the owned range seen.
    bytes: u64,
    /// Lines read past the end of the owned range (to complete open units).
    lines_after: u64,
    /// Units whose last line starts before this offset were reported by an earlier scan.
    new_from: u64,
    /// Parallel to `findings`: the finding's unit ends at or after `new_from`.
    finding_new: Vec<bool>,
    /// Units open at the end of the previous scan (see [`OpenUnit`]).
    reopened: Vec<OpenUnit>,

    stream_end_finder: memmem::Finder<'static>,
}

fn stream_name(s: Stream) -> &'static str {
    match s {
        Stream::Stdout => "stdout",
        Stream::Stderr => "stderr",
        Stream::Other => "other",
    }
}

/// Opens a PEM block: `-----BEGIN … PRIVATE KEY-----` without an END after it.
fn opens_pem(text: &[u8]) -> bool {
    let Some(b) = memmem::rfind(text, b"-----BEGIN ") else {
        return false;
    };
    let rest = &text[b..];
    let header_end = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
    memmem::find(&rest[..header_end], b"PRIVATE KEY").is_some() && memmem::find(rest, b"-----END").is_none()
}

impl<'s, 'a> ChunkScanner<'s, 'a> {
    fn new(scanner: &'s Scanner<'a>, label: &'s str, container: Option<&'s str>, format: Format, job: Job) -> Self {
        Self {
            scanner,
            label,
            container,
            format,
            job,
            line: JsonFileLine::default(),
            pending: HashMap::new(),
            scratch: Scratch::default(),
            matches: Vec::new(),
            findings: Vec::new(),
            notices: Vec::new(),
            lines: 0,
            bytes: 0,
            lines_after: 0,
            new_from: 0,
            finding_new: Vec::new(),
            reopened: Vec::new(),
            stream_end_finder: memmem::Finder::new(b"\",\"stream\":\"").into_owned(),
        }
    }

    fn finish(mut self) -> ChunkScan {
        let streams: Vec<Stream> = self.pending.keys().copied().collect();
        for s in streams {
            if let Some(unit) = self.pending.remove(&s) {
                self.scan_unit_at_end(unit);
            }
        }
        ChunkScan {
            findings: self.findings,
            notices: self.notices,
            bytes: self.bytes,
            lines: self.lines,
        }
    }

    fn run<R: Read>(&mut self, mut reader: R) -> io::Result<()> {
        let cap = self.scanner.options.buffer_bytes.max(4096);
        let overlap = self.scanner.options.window_overlap.min(cap / 4);
        // `buf[..filled]` holds unprocessed bytes.
        let mut buffers = Buffers::take(cap);
        let Buffers(buf, lowered) = &mut buffers;
        let mut filled = 0usize;
        let mut abs = self.job.read_from; // offset of buf[0]
        let mut eof = false;
        // Inside a line longer than the buffer: its line number (0 outside the owned range).
        let mut long_line: Option<u64> = None;
        loop {
            while !eof && filled < cap {
                match reader.read(&mut buf[filled..]) {
                    Ok(0) => eof = true,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            if filled == 0 {
                break;
            }
            let data = &buf[..filled];
            let mut pos = 0usize;
            crate::redact::engine::lowercase_into(data, lowered);
            let mut keywords = self.scanner.engine.keyword_cursor();
            let mut next_hit = keywords.next_hit(lowered, 0);
            while pos < data.len() {
                let (end, has_nl) = match memchr::memchr(b'\n', &data[pos..]) {
                    Some(i) => (pos + i, true),
                    None if eof => (data.len(), false),
                    None => break,
                };
                let line_start = abs + pos as u64;
                if line_start >= self.job.own.end && self.pending.is_empty() {
                    return Ok(());
                }
                while let Some(h) = next_hit {
                    if h.at >= pos {
                        break;
                    }
                    next_hit = keywords.next_hit(lowered, pos);
                }
                let hit = match next_hit {
                    Some(h) if h.at < end && h.decides => LineHit::Sure,
                    Some(h) if h.at < end => LineHit::Maybe,
                    _ => LineHit::None,
                };
                let any_keyword = hit.any() || keywords.skipped_in(pos..end);
                let in_own = self.job.own.contains(&line_start);
                if let Some(first) = long_line.take() {
                    // The tail of a long line whose earlier windows were scanned below.
                    if first > 0 {
                        self.bytes += (end - pos + has_nl as usize) as u64;
                    }
                    self.scan_text_window(&data[pos..end], line_start, first, first > 0);
                } else {
                    let line_no = if in_own {
                        self.lines += 1;
                        self.bytes += (end - pos + has_nl as usize) as u64;
                        self.lines
                    } else if line_start >= self.job.own.end {
                        // After the chunk: only units opened inside it continue here.
                        self.lines_after += 1;
                        self.lines + self.lines_after
                    } else {
                        0
                    };
                    self.on_line(RawLine {
                        raw: &data[pos..end],
                        lowered: &lowered[pos..end],
                        has_nl,
                        line_start,
                        line_no,
                        hit,
                        any_keyword,
                        in_own,
                    });
                }
                pos = end + has_nl as usize;
                if hit.any() {
                    next_hit = keywords.next_hit(lowered, pos);
                }
            }
            if pos == 0 && !eof && filled >= cap {
                // No newline in a full buffer: scan it as a window of a long line, keep an overlap.
                let line_no = match long_line {
                    Some(n) => n,
                    None if self.job.own.contains(&abs) => {
                        self.lines += 1;
                        if abs >= self.new_from {
                            self.notices.push(Notice::LongLine { line: self.lines });
                        }
                        self.lines
                    }
                    None => 0,
                };
                long_line = Some(line_no);
                let keep_from = filled - overlap;
                self.scan_text_window(&buf[..filled], abs, line_no, line_no > 0);
                if line_no > 0 {
                    self.bytes += keep_from as u64;
                }
                buf.copy_within(keep_from..filled, 0);
                filled -= keep_from;
                abs += keep_from as u64;
                continue;
            }
            buf.copy_within(pos..filled, 0);
            filled -= pos;
            abs += pos as u64;
            if eof && filled == 0 {
                break;
            }
        }
        Ok(())
    }

    /// One window of an overlong line, scanned as plain text on its own.
    fn scan_text_window(&mut self, bytes: &[u8], start: u64, line_no: u64, owned: bool) {
        if !owned || self.scanner.engine.next_keyword(bytes, 0).is_none() {
            return;
        }
        let unit = Unit {
            text: bytes.to_vec(),
            pieces: vec![Piece {
                line: line_no,
                line_start: start,
                text_start: 0,
                text_len: bytes.len(),
                time: None,
                map: PieceMap::Identity { offset: 0 },
                hit: true,
            }],
            stream: None,
            owned,
            ..Unit::default()
        };
        self.scan_unit(unit);
    }

    /// Quick test on a Docker-ordered raw line: `Some(true)` when its `log` does not end in `\n`.
    fn quick_partial(&self, raw: &[u8]) -> Option<bool> {
        if !raw.starts_with(b"{\"log\":\"") {
            return None;
        }
        let close = self.stream_end_finder.find(raw)?;
        let content = &raw[8..close];
        if !content.ends_with(b"\\n") {
            return Some(true);
        }
        // `\n` only if the backslash before `n` is not itself escaped.
        let backslashes = content[..content.len() - 1]
            .iter()
            .rev()
            .take_while(|&&b| b == b'\\')
            .count();
        Some(backslashes % 2 == 0)
    }

    /// One complete line.
    fn on_line(&mut self, l: RawLine<'_>) {
        let RawLine {
            raw,
            lowered,
            has_nl,
            line_start,
            line_no,
            hit,
            any_keyword,
            in_own,
        } = l;
        let may_start = line_start < self.job.own.end;
        let sure = hit == LineHit::Sure;
        let hit = hit.any();
        if self.format == Format::Text {
            if !hit && self.pending.is_empty() {
                return;
            }
            let map = PieceMap::Identity { offset: 0 };
            self.add_piece(NewPiece {
                stream: Stream::Other,
                text: raw,
                add_newline: has_nl,
                line_start,
                line_no,
                time: None,
                map,
                may_open: hit && may_start,
                in_own,
                partial: false,
                hit: any_keyword,
            });
            return;
        }
        // json-file
        if self.pending.is_empty() {
            match self.quick_partial(raw) {
                // A complete entry: decode it only if a rule could match it.
                Some(false) if !hit || (!sure && !self.scanner.engine.might_match_lowered(lowered, 0)) => return,
                _ => {}
            }
        }
        let mut line = std::mem::take(&mut self.line);
        match jsonfile::parse_line(raw, &mut line) {
            Ok(()) => {
                let stream = line.stream;
                let partial = line.is_partial();
                let open_here = (hit || partial) && may_start;
                if open_here || self.pending.contains_key(&stream) {
                    let time = (!line.time.is_empty()).then(|| line.time.clone());
                    let starts = std::mem::take(&mut line.log.starts);
                    let map = PieceMap::Json {
                        starts,
                        raw_end: line.log.raw_end,
                    };
                    self.add_piece(NewPiece {
                        stream,
                        text: &line.log.bytes,
                        add_newline: false,
                        line_start,
                        line_no,
                        time,
                        map,
                        may_open: open_here,
                        in_own,
                        partial,
                        hit: any_keyword,
                    });
                }
                if hit && in_own {
                    self.scan_attrs(&mut line, line_no, line_start);
                }
            }
            Err(e) => {
                if in_own && line_start >= self.new_from {
                    self.notices.push(Notice::MalformedLine {
                        line: line_no,
                        reason: e.kind.to_string(),
                    });
                }
                if hit && may_start {
                    self.add_piece(NewPiece {
                        stream: Stream::Other,
                        text: raw,
                        add_newline: has_nl,
                        line_start,
                        line_no,
                        time: None,
                        map: PieceMap::Identity { offset: 0 },
                        may_open: true,
                        in_own,
                        partial: false,
                        hit: any_keyword,
                    });
                }
            }
        }
        self.line = line;
    }

    /// The values of the entry's `attrs` (labels, env Docker logs with each line) that hold a
    /// keyword, each scanned as a unit of its own.
    fn scan_attrs(&mut self, line: &mut JsonFileLine, line_no: u64, line_start: u64) {
        let attrs = std::mem::take(&mut line.attrs);
        for (_, value) in &attrs {
            if self.scanner.engine.next_keyword(&value.bytes, 0).is_some() {
                let unit = Unit {
                    text: value.bytes.clone(),
                    pieces: vec![Piece {
                        line: line_no,
                        line_start,
                        text_start: 0,
                        text_len: value.bytes.len(),
                        time: (!line.time.is_empty()).then(|| line.time.clone()),
                        map: PieceMap::Json {
                            starts: value.starts.clone(),
                            raw_end: value.raw_end,
                        },
                        hit: true,
                    }],
                    stream: Some(line.stream),
                    owned: true,
                    ..Unit::default()
                };
                self.scan_unit(unit);
            }
        }
        line.attrs = attrs;
    }

    /// Append a piece to the stream's open unit, or open a unit with it when `may_open`.
    fn add_piece(&mut self, piece: NewPiece<'_>) {
        let NewPiece {
            stream,
            text,
            add_newline,
            line_start,
            line_no,
            time,
            map,
            may_open,
            in_own,
            partial,
            hit,
        } = piece;
        let max_unit = self.scanner.options.max_unit_bytes;
        let pem_max = self.scanner.options.pem_max_lines;
        let mut unit = match self.pending.remove(&stream) {
            Some(u) => u,
            None if may_open => {
                let again = self.reopened.iter().find(|o| o.line_start == line_start);
                Unit {
                    stream: (self.format == Format::JsonFile && stream != Stream::Other).then_some(stream),
                    owned: in_own,
                    seen_upto: again.map_or(0, |o| o.seen as usize),
                    reopened: again.is_some(),
                    ..Unit::default()
                }
            }
            None => return,
        };
        let text_start = unit.text.len();
        if text_start > 0 && !unit.reopened && unit.fresh_at.is_none() {
            if let Some(o) = self.reopened.iter().find(|o| o.line_start == line_start) {
                unit.fresh_at = Some(text_start + (o.seen as usize).min(text.len()));
            }
        }
        unit.text.extend_from_slice(text);
        let mut text_len = text.len();
        if add_newline {
            // Plain text lines keep their newline so that joined lines stay lines; it maps to the
            // raw newline byte, and newlines are never masked.
            unit.text.push(b'\n');
            text_len += 1;
        }
        let map = match map {
            PieceMap::Json { mut starts, raw_end } if add_newline => {
                starts.push(raw_end);
                PieceMap::Json {
                    starts,
                    raw_end: raw_end + 1,
                }
            }
            m => m,
        };
        unit.pieces.push(Piece {
            line: line_no,
            line_start,
            text_start,
            text_len,
            time,
            map,
            hit,
        });
        let piece_text = &unit.text[text_start..];
        unit.partial_open = partial;
        if unit.pem_open {
            if memmem::find(piece_text, b"-----END").is_some() || unit.pieces.len() >= pem_max {
                unit.pem_open = false;
            }
        } else if memmem::find(piece_text, b"-----BEGIN ").is_some() && opens_pem(&unit.text) {
            unit.pem_open = true;
        }
        if unit.partial_open || unit.pem_open {
            if unit.text.len() > max_unit {
                // Scan what we have; carry the last piece on as the overlap of the next window.
                let last = unit.pieces.last().expect("a piece was just pushed").clone();
                let text = unit.text[last.text_start..].to_vec();
                let next = Unit {
                    seen_upto: text.len(),
                    text,
                    pieces: vec![Piece { text_start: 0, ..last }],
                    stream: unit.stream,
                    owned: unit.owned,
                    partial_open: unit.partial_open,
                    pem_open: unit.pem_open,
                    // What follows a window that reached the unreported part is unreported.
                    reopened: unit.reopened || unit.fresh_at.is_some(),
                    fresh_at: None,
                };
                self.scan_unit(unit);
                self.pending.insert(stream, next);
            } else {
                self.pending.insert(stream, unit);
            }
        } else {
            self.scan_unit(unit);
        }
    }

    /// Scan a unit left open at the end of what is read: when it ends in a 16 KiB part whose next
    /// part will not come, a secret it cuts off is masked as far as it is visible
    /// ([`Engine::find_cut`](crate::redact::Engine::find_cut)) and reported as partial.
    fn scan_unit_at_end(&mut self, unit: Unit) {
        let ends = if unit.partial_open {
            UnitEnds::CutOff
        } else {
            UnitEnds::Whole
        };
        self.scan_unit_as(unit, ends);
    }

    fn scan_unit(&mut self, unit: Unit) {
        self.scan_unit_as(unit, UnitEnds::Whole);
    }

    fn scan_unit_as(&mut self, unit: Unit, ends: UnitEnds) {
        let cut = ends == UnitEnds::CutOff;
        if !unit.owned || unit.text.is_empty() {
            return;
        }
        // Rejoined 16 KiB parts are assembled whether or not a part held a keyword (one may span a
        // split): the SIMD prefilter decides whether the engine needs to see the whole.
        let gated = !cut && unit.pieces.len() > 1;
        self.matches.clear();
        if gated {
            let zones = keyword_zones(&unit, self.scanner.engine.max_keyword_len());
            if zones.iter().map(|z| z.end - z.start).sum::<usize>() < unit.text.len() / 2 {
                self.scanner
                    .engine
                    .find_if_keyword_in(&unit.text, &zones, &mut self.scratch, &mut self.matches);
            } else {
                self.scanner
                    .engine
                    .find_if_keyword(&unit.text, &mut self.scratch, &mut self.matches);
            }
        } else {
            self.scanner
                .engine
                .find(&unit.text, &mut self.scratch, &mut self.matches);
        }
        let cut = if cut {
            self.scanner.engine.find_cut(&unit.text, &self.matches)
        } else {
            None
        };
        let matches = std::mem::take(&mut self.matches);
        let is_new = unit.reopened || unit.pieces.last().is_some_and(|p| p.line_start >= self.new_from);
        for (m, partial) in matches.iter().map(|m| (m, false)).chain(cut.iter().map(|m| (m, true))) {
            if m.secret.end <= unit.seen_upto {
                continue; // found by the window before
            }
            if let Some(mut f) = self.finding(&unit, m) {
                if partial {
                    f.partial = true;
                    f.description = format!("{} (partial: the rest was cut off)", f.description);
                }
                self.findings.push(f);
                self.finding_new.push(match unit.fresh_at {
                    Some(t) => m.secret.end > t,
                    None => is_new,
                });
            }
        }
        self.matches = matches;
    }

    fn finding(&self, unit: &Unit, m: &Match) -> Option<Finding> {
        let rule = &self.scanner.engine.rules()[m.rule];
        let secret = &unit.text[m.secret.clone()];
        let mut ranges: Vec<[u64; 2]> = Vec::new();
        let mut first_line = None;
        let mut last_line = 0;
        let mut time = None;
        // Map every decoded sub-range between newlines to raw bytes, piece by piece.
        for piece in &unit.pieces {
            let ps = piece.text_start;
            let pe = ps + piece.text_len;
            let s = m.secret.start.max(ps);
            let e = m.secret.end.min(pe);
            if s >= e {
                continue;
            }
            let local = &unit.text[s..e];
            let mut i = 0;
            while i < local.len() {
                if local[i] == b'\n' || local[i] == b'\r' {
                    i += 1;
                    continue;
                }
                let j = local[i..]
                    .iter()
                    .position(|&b| b == b'\n' || b == b'\r')
                    .map_or(local.len(), |k| i + k);
                let raw = piece.raw(s - ps + i..s - ps + j);
                match ranges.last_mut() {
                    Some(last) if last[1] == raw.start => last[1] = raw.end,
                    _ => ranges.push([raw.start, raw.end]),
                }
                i = j;
            }
            if first_line.is_none() {
                first_line = Some(piece.line);
                time = piece.time.clone();
            }
            last_line = piece.line;
        }
        let first_line = first_line?;
        let fingerprint = self.scanner.key.fingerprint(secret);
        let prefix = rule.public_prefix(secret);
        // The prefix stays readable only when its bytes are written verbatim in the file.
        let prefix_piece = unit
            .pieces
            .iter()
            .find(|p| p.text_start <= m.secret.start && m.secret.start < p.text_start + p.text_len);
        let prefix_ok = !prefix.is_empty()
            && prefix_piece.is_some_and(|p| {
                let ls = m.secret.start - p.text_start;
                ls + prefix.len() <= p.text_len && p.is_verbatim(ls..ls + prefix.len())
            });
        let prefix = if prefix_ok { prefix } else { &[][..] };
        let total: u64 = ranges.iter().map(|[s, e]| e - s).sum();
        Some(Finding {
            schema: crate::redact::finding::FINDING_SCHEMA,
            rule: rule.id.clone(),
            description: rule.description.clone(),
            severity: rule.severity,
            confidence: Some(m.confidence),
            file: self.label.to_string(),
            line: first_line,
            end_line: last_line,
            start: ranges.first()?[0],
            end: ranges.last()?[1],
            ranges,
            container_id: self.container.map(str::to_string),
            stream: unit.stream.map(|s| stream_name(s).to_string()),
            time,
            mask: mask::mask_bytes(&rule.id, &fingerprint, prefix, total as usize),
            preview: mask::preview(prefix, secret.len()),
            fingerprint,
            partial: false,
        })
    }
}

thread_local! {
    /// The read buffer of [`ChunkScanner::run`] and its lowercased copy, kept between the scans
    /// made on this thread: the guard scans a few kilobytes many times a second, and allocating
    /// and zeroing the whole buffer each time was a visible share of its CPU.
    static BUFFERS: std::cell::RefCell<(Vec<u8>, Vec<u8>)> = const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
}

/// The buffers of one scan, taken from this thread's and given back when dropped.
struct Buffers(Vec<u8>, Vec<u8>);

impl Buffers {
    /// A read buffer of `cap` bytes (holding whatever the last scan left) and an empty lowercase
    /// buffer.
    fn take(cap: usize) -> Self {
        let (mut buf, mut lowered) = BUFFERS.with(|b| std::mem::take(&mut *b.borrow_mut()));
        buf.resize(cap, 0);
        lowered.clear();
        Self(buf, lowered)
    }
}

impl Drop for Buffers {
    fn drop(&mut self) {
        let kept = (std::mem::take(&mut self.0), std::mem::take(&mut self.1));
        let _ = BUFFERS.try_with(|b| {
            if let Ok(mut slot) = b.try_borrow_mut() {
                if slot.0.capacity() <= kept.0.capacity() {
                    *slot = kept;
                }
            }
        });
    }
}
