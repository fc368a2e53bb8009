//! The aggregates journal, `<state_dir>/aggregates.jsonl` (0600): the counts of findings past the
//! recording budget (see [`super::budget`]) as they are taken, before their masks are written.
//!
//! A finding recorded one by one is appended to the report before its mask is written, so a kill
//! never leaves a secret masked and unreported. Past the budget, findings are counted in
//! aggregates written to the report only at the next checkpoint: without this journal, a kill in
//! between lost the counts of every secret masked since (the rescan after the restart finds them
//! masked; a flood run lost 12 021 of 600 000 in one kill).
//!
//! The journal holds one generation: a header line with a random id, then one line per aggregate
//! taken since the last checkpoint (each a [`FindingRecord`] with its occurrences). At a
//! checkpoint the guard appends the aggregates to the report tagged with the generation
//! (`batch`), then starts a new generation. After a crash the old generation's lines are added to
//! the aggregates again unless the report already holds its tag (the guard checks the records
//! past the checkpoint and the checkpoint's own note of the last generation written).
//!
//! Lines are not fsynced (as the report's appends between checkpoints): a kill of the process
//! loses nothing; a power cut rolls back to the last checkpoint, whose rescan counts again what
//! had not been masked durably.
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::record::FindingRecord;
use crate::fsutil;

/// The first line of a generation.
#[derive(Debug, Serialize, Deserialize)]
struct Header {
    generation: String,
}

/// What an earlier run left in the journal.
#[derive(Debug, Default)]
pub struct Leftover {
    /// Its generation (absent: no journal, or no readable header).
    pub generation: Option<String>,
    /// Its aggregates.
    pub records: Vec<FindingRecord>,
    /// Lines that could not be read (cut short by a crash, or damaged).
    pub damaged: u64,
}

/// The journal being appended to.
#[derive(Debug)]
pub struct AggregateJournal {
    path: PathBuf,
    file: File,
    generation: String,
}

impl AggregateJournal {
    /// `<state_dir>/aggregates.jsonl`.
    pub fn path(state_dir: &Path) -> PathBuf {
        crate::state::StateDir::new(state_dir).aggregates_journal()
    }

    /// What an earlier run left (empty when there is no journal).
    pub fn read(state_dir: &Path) -> io::Result<Leftover> {
        let file = match fsutil::open_input(&Self::path(state_dir), fsutil::InputKind::CHECKPOINTS) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Leftover::default()),
            Err(e) => return Err(e),
        };
        let mut out = Leftover::default();
        let mut lines = BufReader::new(file).split(b'\n');
        match lines.next().transpose()? {
            Some(first) => match serde_json::from_slice::<Header>(&first) {
                Ok(h) => out.generation = Some(h.generation),
                // Without its header a generation cannot be told apart: nothing is taken from it.
                Err(_) => return Ok(out),
            },
            None => return Ok(out),
        }
        for line in lines {
            match serde_json::from_slice::<FindingRecord>(&line?) {
                Ok(r) if r.occurrences.is_some() => out.records.push(r),
                _ => out.damaged += 1,
            }
        }
        Ok(out)
    }

    /// Start a new generation holding `carried` (aggregates of an earlier run not in the report
    /// yet), replacing whatever the journal held: written to a temporary name and renamed, so that
    /// a kill leaves one generation or the other whole (not fsynced, as the lines: this runs at
    /// every checkpoint on the guard's thread).
    pub fn create(state_dir: &Path, carried: &[FindingRecord]) -> io::Result<Self> {
        let path = Self::path(state_dir);
        let generation = new_generation()?;
        let mut buf = Vec::new();
        serde_json::to_writer(
            &mut buf,
            &Header {
                generation: generation.clone(),
            },
        )?;
        buf.push(b'\n');
        append_lines(&mut buf, carried)?;
        let tmp = path.with_extension("jsonl.tmp");
        let _ = std::fs::remove_file(&tmp);
        let mut out = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(&tmp)?;
        out.write_all(&buf)?;
        drop(out);
        std::fs::rename(&tmp, &path)?;
        let file = OpenOptions::new()
            .append(true)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(&path)?;
        Ok(Self { path, file, generation })
    }

    /// The generation being appended to.
    pub fn generation(&self) -> &str {
        &self.generation
    }

    /// Append aggregates taken (one write).
    pub fn append(&mut self, records: &[FindingRecord]) -> io::Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::new();
        append_lines(&mut buf, records)?;
        self.file.write_all(&buf)
    }

    /// The aggregates it holds are in the report: start a new, empty generation.
    pub fn restart(&mut self) -> io::Result<()> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        *self = Self::create(dir, &[])?;
        Ok(())
    }
}

fn append_lines(buf: &mut Vec<u8>, records: &[FindingRecord]) -> io::Result<()> {
    for r in records {
        serde_json::to_writer(&mut *buf, r)?;
        buf.push(b'\n');
    }
    Ok(())
}

fn new_generation() -> io::Result<String> {
    let mut rnd = [0u8; 8];
    getrandom::fill(&mut rnd).map_err(|e| io::Error::other(e.to_string()))?;
    Ok(hex::encode(rnd))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::findings::record::Occurrences;

    fn aggregate(count: u64) -> FindingRecord {
        FindingRecord {
            finding: crate::redact::Finding {
                schema: 1,
                rule: "github-pat".into(),
                description: "d".into(),
                severity: crate::redact::Severity::High,
                confidence: None,
                file: "f".into(),
                line: 1,
                end_line: 1,
                start: 0,
                end: 10,
                ranges: Vec::new(),
                container_id: Some("c1".into()),
                stream: None,
                time: Some("2026-12-04T10:00:00Z".into()),
                fingerprint: "over-cap:github-pat".into(),
                preview: "(counted)".into(),
                partial: false,
                mask: Vec::new(),
            },
            container: Some("gw".into()),
            image: Some("img".into()),
            occurrences: Some(Occurrences {
                count,
                ..Occurrences::default()
            }),
            batch: None,
        }
    }

    #[test]
    fn a_generation_is_read_back_whole_and_a_cut_line_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        assert!(AggregateJournal::read(dir.path()).unwrap().generation.is_none());
        let mut j = AggregateJournal::create(dir.path(), &[aggregate(3)]).unwrap();
        assert_eq!(fsutil::mode(&AggregateJournal::path(dir.path())).unwrap(), 0o600);
        j.append(&[aggregate(4), aggregate(5)]).unwrap();
        // A kill in the middle of a write.
        j.file.write_all(br#"{"rule":"github-pat","desc"#).unwrap();
        let left = AggregateJournal::read(dir.path()).unwrap();
        assert_eq!(left.generation.as_deref(), Some(j.generation()));
        let counts: Vec<u64> = left
            .records
            .iter()
            .map(|r| r.occurrences.as_ref().unwrap().count)
            .collect();
        assert_eq!(counts, vec![3, 4, 5]);
        assert_eq!(left.damaged, 1);
        // A new generation starts empty, under another id.
        let before = j.generation().to_string();
        j.restart().unwrap();
        assert_ne!(j.generation(), before);
        let left = AggregateJournal::read(dir.path()).unwrap();
        assert_eq!(left.generation.as_deref(), Some(j.generation()));
        assert!(left.records.is_empty());
        j.append(&[aggregate(1)]).unwrap();
        assert_eq!(AggregateJournal::read(dir.path()).unwrap().records.len(), 1);
    }
}
