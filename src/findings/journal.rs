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
//! Each batch's aggregates are preceded by a line of the keys ([`OccurrenceId`]) of the
//! occurrences they count, and followed by a `masked` line once the batch's masks are written.
//! After a kill between the two the rescan finds those occurrences still in clear: their keys
//! ([`Leftover::in_flight`]) tell the guard they are counted already (it masks them, and counts
//! them no more; a flood run counted 4 403 twice after one kill before).
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
use super::sink::{id_from_hex, id_to_hex, OccurrenceId};
use crate::fsutil;

/// The first line of a generation.
#[derive(Debug, Serialize, Deserialize)]
struct Header {
    generation: String,
}

/// A line of the journal that is not an aggregate: the keys of the occurrences the aggregates
/// after it count, or the note that their masks are written.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Control {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    ids: Vec<String>,
    /// Keys of occurrences that are not masked (a container sidecar only reports): in flight
    /// whatever comes after.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    unmasked: Vec<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    masked: bool,
}

/// What an earlier run left in the journal.
#[derive(Debug, Default)]
pub struct Leftover {
    /// Its generation (absent: no journal, or no readable header).
    pub generation: Option<String>,
    /// Its aggregates.
    pub records: Vec<FindingRecord>,
    /// Keys of the occurrences counted in batches whose masks were not noted written: the kill
    /// may have come before the masks (the rescan is to mask them without counting them again).
    pub in_flight: Vec<OccurrenceId>,
    /// Lines that could not be read (cut short by a crash, or damaged).
    pub damaged: u64,
}

/// The journal being appended to.
#[derive(Debug)]
pub struct AggregateJournal {
    path: PathBuf,
    file: File,
    generation: String,
    /// A batch's keys were appended and its masks not noted written yet.
    in_flight: bool,
    /// Keys an earlier run left in flight, carried into each new generation until a checkpoint
    /// holds them ([`Self::checkpointed`]).
    carried_keys: Vec<OccurrenceId>,
    /// Keys of occurrences that are not masked appended to this generation: carried into the next
    /// until the checkpoint that covers them is saved.
    unmasked_keys: Vec<OccurrenceId>,
    /// Nothing appended since it was created with `carried_keys`.
    only_carried_keys: bool,
    /// Some masks could not be written: no `masked` line until the next generation.
    held: bool,
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
        let mut unmasked = Vec::new();
        for line in lines {
            let line = line?;
            if let Ok(c) = serde_json::from_slice::<Control>(&line) {
                if c.masked {
                    out.in_flight.clear();
                }
                out.damaged += parse_keys(&c.ids, &mut out.in_flight) + parse_keys(&c.unmasked, &mut unmasked);
                continue;
            }
            match serde_json::from_slice::<FindingRecord>(&line) {
                Ok(r) if r.occurrences.is_some() => out.records.push(r),
                _ => out.damaged += 1,
            }
        }
        out.in_flight.extend(unmasked);
        Ok(out)
    }

    /// Start a new generation holding `carried` (aggregates of an earlier run not in the report
    /// yet) and `in_flight` (keys an earlier run left in flight, kept until a checkpoint holds
    /// them), replacing whatever the journal held: written to a temporary name and renamed, so
    /// that a kill leaves one generation or the other whole (not fsynced, as the lines: this runs
    /// at every checkpoint on the guard's thread).
    pub fn create(state_dir: &Path, carried: &[FindingRecord], in_flight: &[OccurrenceId]) -> io::Result<Self> {
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
        // Kept in flight whatever comes after (a `masked` line notes this run's masks only).
        append_keys(&mut buf, in_flight, true)?;
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
        Ok(Self {
            path,
            file,
            generation,
            in_flight: false,
            only_carried_keys: carried.is_empty() && !in_flight.is_empty(),
            carried_keys: in_flight.to_vec(),
            unmasked_keys: Vec::new(),
            held: false,
        })
    }

    /// The generation being appended to.
    pub fn generation(&self) -> &str {
        &self.generation
    }

    /// Append aggregates taken and the keys of the occurrences they count (one write), before
    /// their masks are written; [`Self::masked`] notes them written. `masked_later`: false for
    /// occurrences that are not masked (a container sidecar only reports), which stay in flight.
    pub fn append(&mut self, records: &[FindingRecord], ids: &[OccurrenceId], masked_later: bool) -> io::Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::new();
        append_keys(&mut buf, ids, !masked_later)?;
        if !masked_later {
            self.unmasked_keys.extend_from_slice(ids);
        }
        append_lines(&mut buf, records)?;
        self.only_carried_keys = false;
        self.file.write_all(&buf)?;
        self.in_flight = true;
        Ok(())
    }

    /// Keys to carry into the next generation: those an earlier run left in flight that no
    /// checkpoint holds yet, and those of occurrences not masked appended to this one (the
    /// checkpoint that covers them is saved after the next generation starts).
    pub fn keys_to_carry(&self) -> Vec<OccurrenceId> {
        self.carried_keys.iter().chain(&self.unmasked_keys).copied().collect()
    }

    /// Some masks of the batches appended could not be written (an error, a panic): their keys
    /// stay in flight until the generation ends (at the checkpoint that covers them).
    pub fn hold(&mut self) {
        self.held = true;
    }

    /// A checkpoint saved after this journal was opened holds the keys an earlier run left in
    /// flight (`Checkpoints::recovered`): new generations no longer carry them, and a journal
    /// that holds nothing else starts afresh.
    pub fn checkpointed(&mut self) -> io::Result<()> {
        if self.carried_keys.is_empty() {
            return Ok(());
        }
        self.carried_keys.clear();
        if self.only_carried_keys {
            self.restart()?;
        }
        Ok(())
    }

    /// The masks of the batches appended since the last call are written (a no-op when none, or
    /// after [`Self::hold`]).
    pub fn masked(&mut self) -> io::Result<()> {
        if !self.in_flight || self.held {
            return Ok(());
        }
        self.file.write_all(b"{\"masked\":true}\n")?;
        self.in_flight = false;
        Ok(())
    }

    /// The aggregates it holds are in the report: start a new generation, empty but for the keys
    /// it carries until a checkpoint holds them.
    pub fn restart(&mut self) -> io::Result<()> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        *self = Self::create(dir, &[], &self.keys_to_carry())?;
        Ok(())
    }
}

/// Parse hexadecimal keys into `out`; returns how many could not be.
fn parse_keys(hex: &[String], out: &mut Vec<OccurrenceId>) -> u64 {
    let before = out.len();
    out.extend(hex.iter().filter_map(|h| id_from_hex(h)));
    (hex.len() - (out.len() - before)) as u64
}

/// Append a line of keys: `unmasked` ones stay in flight whatever comes after, the others until
/// the next `masked` line.
fn append_keys(buf: &mut Vec<u8>, ids: &[OccurrenceId], unmasked: bool) -> io::Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let hex: Vec<String> = ids.iter().map(|&id| id_to_hex(id)).collect();
    let line = if unmasked {
        Control {
            unmasked: hex,
            ..Control::default()
        }
    } else {
        Control {
            ids: hex,
            ..Control::default()
        }
    };
    serde_json::to_writer(&mut *buf, &line)?;
    buf.push(b'\n');
    Ok(())
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
        let mut j = AggregateJournal::create(dir.path(), &[aggregate(3)], &[]).unwrap();
        assert_eq!(fsutil::mode(&AggregateJournal::path(dir.path())).unwrap(), 0o600);
        j.append(&[aggregate(4), aggregate(5)], &[], true).unwrap();
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
        j.append(&[aggregate(1)], &[], true).unwrap();
        assert_eq!(AggregateJournal::read(dir.path()).unwrap().records.len(), 1);
    }

    #[test]
    fn the_keys_of_a_batch_whose_masks_are_not_noted_written_are_left_in_flight() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = AggregateJournal::create(dir.path(), &[], &[7]).unwrap();
        let left = AggregateJournal::read(dir.path()).unwrap();
        assert_eq!(left.in_flight, vec![7], "carried keys stay in flight");
        // ... in each new generation, until a checkpoint holds them.
        j.restart().unwrap();
        assert_eq!(AggregateJournal::read(dir.path()).unwrap().in_flight, vec![7]);
        j.checkpointed().unwrap();
        assert!(AggregateJournal::read(dir.path()).unwrap().in_flight.is_empty());
        let mut j = AggregateJournal::create(dir.path(), &[aggregate(1)], &[7]).unwrap();
        j.checkpointed().unwrap();
        let left = AggregateJournal::read(dir.path()).unwrap();
        assert_eq!(
            (left.in_flight.len(), left.records.len()),
            (1, 1),
            "kept with its records"
        );
        j.restart().unwrap();
        assert!(AggregateJournal::read(dir.path()).unwrap().in_flight.is_empty());
        j.append(&[aggregate(2)], &[1, u128::MAX], true).unwrap();
        j.masked().unwrap();
        let left = AggregateJournal::read(dir.path()).unwrap();
        assert!(left.in_flight.is_empty(), "{:?}", left.in_flight);
        assert_eq!(left.records.len(), 1);
        // A second batch, killed before its masks.
        j.append(&[aggregate(3)], &[3, 4], true).unwrap();
        let left = AggregateJournal::read(dir.path()).unwrap();
        assert_eq!(left.in_flight, vec![3, 4]);
        assert_eq!((left.records.len(), left.damaged), (2, 0));
        // Keys of occurrences not masked stay in flight whatever comes after.
        j.append(&[aggregate(1)], &[9], false).unwrap();
        j.masked().unwrap();
        assert_eq!(AggregateJournal::read(dir.path()).unwrap().in_flight, vec![9]);
        // Noting twice writes once.
        j.masked().unwrap();
        let len = fs_len(&AggregateJournal::path(dir.path()));
        j.masked().unwrap();
        assert_eq!(fs_len(&AggregateJournal::path(dir.path())), len);
        assert_eq!(AggregateJournal::read(dir.path()).unwrap().in_flight, vec![9]);
    }

    #[test]
    fn carried_keys_and_keys_not_masked_stay_until_a_checkpoint_holds_them() {
        let dir = tempfile::tempdir().unwrap();
        // An earlier run's keys: a note that this run's masks are written does not cover them.
        let mut j = AggregateJournal::create(dir.path(), &[], &[7]).unwrap();
        j.append(&[aggregate(1)], &[1], true).unwrap();
        j.masked().unwrap();
        assert_eq!(AggregateJournal::read(dir.path()).unwrap().in_flight, vec![7]);
        // Keys not masked are carried into the next generation, which starts before the
        // checkpoint that covers them is saved.
        j.append(&[aggregate(1)], &[5], false).unwrap();
        j.restart().unwrap();
        let mut left = AggregateJournal::read(dir.path()).unwrap().in_flight;
        left.sort_unstable();
        assert_eq!(left, vec![5, 7]);
        assert!(AggregateJournal::read(dir.path()).unwrap().records.is_empty());
        j.checkpointed().unwrap();
        assert!(AggregateJournal::read(dir.path()).unwrap().in_flight.is_empty());
        j.restart().unwrap();
        assert!(AggregateJournal::read(dir.path()).unwrap().in_flight.is_empty());
        // Masks that may not have been written (an error): no note until the next generation.
        j.append(&[aggregate(1)], &[8], true).unwrap();
        j.hold();
        j.masked().unwrap();
        j.append(&[aggregate(1)], &[9], true).unwrap();
        j.masked().unwrap();
        assert_eq!(AggregateJournal::read(dir.path()).unwrap().in_flight, vec![8, 9]);
        j.restart().unwrap();
        j.append(&[aggregate(1)], &[10], true).unwrap();
        j.masked().unwrap();
        assert!(AggregateJournal::read(dir.path()).unwrap().in_flight.is_empty());
    }

    fn fs_len(p: &Path) -> u64 {
        std::fs::metadata(p).unwrap().len()
    }
}
