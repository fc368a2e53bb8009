//! Masks owed to compressed copies, and masks remembered as written into plain files.
//!
//! A mask that must land in a `.gz` (the file was compressed before the mask was written, or a
//! rewrite could not be placed) is owed to it in `Checkpoints::gz_owed` (persisted) until a check of
//! that `.gz` writes it, or Docker deletes the file. The masks this process wrote into a plain file
//! it scanned whole are remembered, bounded, so that its `.gz` can be checked without a scan.
use std::collections::HashSet;
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::time::SystemTime;

use super::Guard;
use crate::redact::Finding;

/// A mask owed to a `.gz` (`Checkpoints::gz_owed`) as it is kept: what writing and checking it
/// needs (ranges, mask bytes, rule, log time, offsets), without the report's text (path,
/// description, preview, fingerprint, container): under a flood, when Docker renames each `.gz`
/// before the guard's rewrite of it lands, thousands are owed per file until rotation pauses.
pub(super) fn slim_owed(mut f: Finding) -> Finding {
    f.description = String::new();
    f.file = String::new();
    f.preview = String::new();
    f.fingerprint = String::new();
    f.container_id = None;
    f.stream = None;
    f.confidence = None;
    f
}

/// [`slim_owed`] of a copy, without copying the text it drops (the guard notes every mask it
/// writes: thousands a second under a flood).
pub(super) fn slim_copy(f: &Finding) -> Finding {
    Finding {
        rule: f.rule.clone(),
        time: f.time.clone(),
        ranges: f.ranges.clone(),
        mask: f.mask.clone(),
        description: String::new(),
        file: String::new(),
        preview: String::new(),
        fingerprint: String::new(),
        container_id: None,
        stream: None,
        confidence: None,
        ..*f
    }
}

/// Add masks owed to a `.gz` to those it is owed already, each once (by its byte ranges: a file
/// scanned again while Docker renames it finds the same secrets again).
pub(super) fn merge_owed(owed: &mut Vec<Finding>, more: impl IntoIterator<Item = Finding>) {
    let mut have: HashSet<Vec<[u64; 2]>> = owed.iter().map(|f| f.ranges.clone()).collect();
    for f in more {
        if have.insert(f.ranges.clone()) {
            owed.push(slim_owed(f));
        }
    }
}

/// What the guard wrote into one plain file (see `Guard::written`).
#[derive(Debug)]
pub(super) struct Written {
    /// When this process started on the file: a mask from an earlier run (or from before a
    /// container's state was reloaded) came before this, and is not in `masks`.
    pub(super) since: SystemTime,
    /// Every mask written to it (positions and mask bytes, never a secret), or `None` after
    /// [`WRITTEN_MAX`] of them (its `.gz` is then scanned).
    pub(super) masks: Option<Vec<Finding>>,
    /// When the last mask was written (after `pwrite` returned).
    pub(super) last: Option<SystemTime>,
}

/// The most masks remembered per file for its `.gz`.
pub(super) const WRITTEN_MAX: usize = 4096;

/// The most masks remembered for all files together: a mask is kept whole (about 1 KB), and busy
/// containers with many files each would otherwise hold hundreds of MB (20 containers logging a new
/// token per line reached the compose service's 256 MiB). Beyond it a file's masks are dropped and
/// its `.gz` is scanned instead.
pub(super) const WRITTEN_TOTAL_MAX: usize = 16_384;

impl Guard<'_> {
    /// Owe masks to the `.gz` of the file known as `ident` (written when it is next checked); `gz`:
    /// that `.gz`, open, when a rewrite of it could not be placed.
    pub(super) fn owe(&mut self, ident: &str, findings: Vec<Finding>, gz: Option<&File>) {
        merge_owed(self.marks.gz_owed.entry(ident.to_string()).or_default(), findings);
        self.marks_dirty = true;
        if let Some(f) = gz.and_then(|f| f.try_clone().ok()) {
            self.owed_open.insert(ident.to_string(), f);
        }
    }

    /// The masks owed to the `.gz` of `ident` are written, or it is gone.
    pub(super) fn forget_owed(&mut self, ident: &str) {
        if self.marks.gz_owed.remove(ident).is_some() {
            self.marks_dirty = true;
        }
        self.owed_open.remove(ident);
    }

    /// Masks owed to a `.gz` that Docker has deleted since (no name left: rotated beyond
    /// `max-file`) are dropped: what they would mask is gone. Under a fast writer Docker renames
    /// every `.gz` at each rotation, and one owed masks may be deleted before a rewrite lands.
    pub(super) fn drop_owed_of_deleted(&mut self) {
        let gone: Vec<String> = self
            .owed_open
            .iter()
            .filter(|(_, f)| f.metadata().is_ok_and(|m| m.nlink() == 0))
            .map(|(i, _)| i.clone())
            .collect();
        for i in gone {
            self.forget_owed(&i);
        }
    }

    /// Remember masks written (or attempted: a failed `pwrite` may have written part) into the
    /// plain file known as `key`.
    pub(super) fn note_written(&mut self, key: &str, findings: &[Finding]) {
        let total: usize = self
            .written
            .values()
            .filter_map(|w| w.masks.as_ref().map(Vec::len))
            .sum();
        if let Some(w) = self.written.get_mut(key) {
            w.last = Some(SystemTime::now());
            match &mut w.masks {
                Some(m) if m.len() + findings.len() <= WRITTEN_MAX && total + findings.len() <= WRITTEN_TOTAL_MAX => {
                    m.extend(findings.iter().map(slim_copy))
                }
                _ => w.masks = None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::finding_at;
    use super::*;
    use crate::logs::masking::MaskPlan;

    #[test]
    fn masks_owed_to_a_gz_keep_what_writing_them_needs_and_none_of_the_reports_text() {
        let f = finding_at(vec![[100, 120], [130, 150]]);
        let s = slim_owed(f.clone());
        assert_eq!(slim_copy(&f), s);
        assert_eq!(
            MaskPlan::from_findings(std::slice::from_ref(&s)),
            MaskPlan::from_findings(std::slice::from_ref(&f))
        );
        assert_eq!(
            (&s.rule, &s.time, &s.ranges, s.start, s.end),
            (&f.rule, &f.time, &f.ranges, f.start, f.end)
        );
        assert!(s.file.is_empty() && s.description.is_empty() && s.preview.is_empty() && s.fingerprint.is_empty());
        assert!(s.container_id.is_none() && s.stream.is_none());
    }

    #[test]
    fn masks_owed_again_by_a_file_scanned_again_are_kept_once() {
        let a = finding_at(vec![[10, 50]]);
        let b = finding_at(vec![[60, 80], [90, 110]]);
        let mut owed = Vec::new();
        merge_owed(&mut owed, [a.clone(), b.clone()]);
        // Docker renamed the `.gz` at every try: each scan finds the same secrets again.
        for _ in 0..5 {
            merge_owed(&mut owed, [a.clone(), b.clone()]);
        }
        assert_eq!(owed, vec![slim_owed(a), slim_owed(b)]);
        merge_owed(&mut owed, [finding_at(vec![[200, 240]])]);
        assert_eq!(owed.len(), 3);
    }
}
