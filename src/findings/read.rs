//! Reading finding records back from `<state_dir>/findings/` (and from any stream of records:
//! fleet objects, one rotated file): the files the report reads (see [`finding_files`]), gzip
//! detected by its magic, damaged lines counted and skipped, never fatal. Safe to run while the
//! guard rotates and folds the files ([`fold_findings_dir`] reads again when they change).
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use super::record::FindingRecord;

/// The finding files under `dir` that `sidecar report` reads, oldest name first: the newest summary
/// (`secrets-<stamp>.jsonl`), the rotated occurrence files not folded into it yet
/// (`findings-<stamp>.jsonl`, names after the summary's stamp), other `*.jsonl*` files (rotated
/// `.N`, compressed `.gz`, copies) and the current `findings.jsonl`. Temporary (dot-named) files,
/// older summaries and folded files a crash left behind are skipped (the guard removes them).
pub fn finding_files(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let n = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            !n.starts_with('.') && n.contains(".jsonl") && p.is_file()
        })
        .collect();
    v.sort();
    let stamp_of = |p: &PathBuf, prefix: &str| -> Option<String> {
        let n = p.file_name()?.to_str()?;
        Some(n.strip_prefix(prefix)?.strip_suffix(".jsonl")?.to_string())
    };
    let summary = v.iter().filter_map(|p| stamp_of(p, SUMMARY_PREFIX)).max();
    if let Some(folded) = summary {
        v.retain(|p| match (stamp_of(p, SUMMARY_PREFIX), stamp_of(p, ROTATED_PREFIX)) {
            (Some(s), _) => s == folded,
            (None, Some(r)) => r > folded,
            (None, None) => true,
        });
    }
    Ok(v)
}

/// Every finding record under `dir` (see [`finding_files`]), read while the guard may be rotating
/// and folding the files: when a file vanished under the reader, or the listing changed while it
/// read, it reads again (at most 10 times, then an error). Returns the records and the number of
/// damaged lines; no directory, no records.
pub fn read_findings_dir(dir: &Path) -> io::Result<(Vec<FindingRecord>, u64)> {
    fold_findings_dir(dir, Vec::new, |v, r| v.push(r))
}

/// [`read_findings_dir`] without holding the records: each is passed to `each` with an accumulator
/// made by `init` (made again when the files changed during the reading and it starts over).
pub fn fold_findings_dir<A>(
    dir: &Path,
    mut init: impl FnMut() -> A,
    mut each: impl FnMut(&mut A, FindingRecord),
) -> io::Result<(A, u64)> {
    for attempt in 0..10 {
        if attempt > 0 {
            std::thread::sleep(std::time::Duration::from_millis(20 * attempt));
        }
        let files = match finding_files(dir) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((init(), 0)),
            Err(e) => return Err(e),
        };
        let mut records = init();
        let damaged = match read_findings(&files, |r| each(&mut records, r)) {
            Ok(damaged) => damaged,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if finding_files(dir).is_ok_and(|now| now == files) {
            return Ok((records, damaged));
        }
    }
    Err(io::Error::other(format!(
        "{}: the findings files changed during each of 10 readings (the guard is rotating them); try again",
        dir.display()
    )))
}

/// Name prefix of a summary file: `secrets-<stamp>.jsonl` holds one aggregate record per secret,
/// container and file for every occurrence record up to the rotated file `findings-<stamp>.jsonl`.
pub const SUMMARY_PREFIX: &str = "secrets-";
/// Name prefix of a rotated occurrence file, `findings-<stamp>.jsonl`.
pub const ROTATED_PREFIX: &str = "findings-";

/// Longest finding record accepted (a larger line is reported as damaged, not read whole).
const MAX_RECORD: usize = 1 << 20;

/// Read every finding record of `files` (gzip detected by its magic), calling `each`. Damaged lines
/// are counted, not fatal. Returns the number of damaged lines.
pub fn read_findings(files: &[PathBuf], mut each: impl FnMut(FindingRecord)) -> io::Result<u64> {
    let mut damaged = 0;
    for path in files {
        let file = File::open(path).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        damaged += read_findings_from(file, &mut each)?;
    }
    Ok(damaged)
}

/// Read the finding records of one stream (gzip detected by its magic).
pub fn read_findings_from(src: impl Read, each: &mut dyn FnMut(FindingRecord)) -> io::Result<u64> {
    let mut damaged = 0;
    let mut head = BufReader::new(src);
    let gz = head.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    let mut reader: Box<dyn BufRead + '_> = if gz {
        Box::new(BufReader::new(flate2::bufread::MultiGzDecoder::new(head)))
    } else {
        Box::new(head)
    };
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = match reader.by_ref().take(MAX_RECORD as u64 + 1).read_until(b'\n', &mut line) {
            Ok(n) => n,
            Err(_) => {
                // A truncated or corrupted gzip member: what was read counts, the rest is damaged.
                damaged += 1;
                break;
            }
        };
        if n == 0 {
            break;
        }
        if line.len() > MAX_RECORD {
            damaged += 1;
            // Skip the rest of the overlong line, in bounded pieces.
            while !line.ends_with(b"\n") {
                line.clear();
                match reader.by_ref().take(64 << 10).read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
            continue;
        }
        let text = line.strip_suffix(b"\n").unwrap_or(&line);
        if text.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<FindingRecord>(text) {
            Ok(r) => each(r),
            Err(_) => damaged += 1,
        }
    }
    Ok(damaged)
}
