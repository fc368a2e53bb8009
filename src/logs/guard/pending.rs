//! Masks saved before they are written. A secret masked in several writes (it spans entries of
//! one file, or an entry joined across a rotation) leaves, after a crash between two writes, a rest
//! no rescan can find: its masks are appended to the spans log (or saved in `pending-masks.json`)
//! first, and replayed at the next start. A mask that changes a file's first line changes the
//! identity the file is known by: the new identity is saved ahead as an alias of its key.
use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;

use super::carry::Carry;
use super::{Found, Guard, RangeReader};
use crate::logs::checkpoint::{self, PendingFile, PendingMasks};
use crate::logs::containers::ContainerLog;
use crate::logs::masking::MaskPlan;
use crate::redact::Finding;

impl Guard<'_> {
    /// Save the masks of entries joined across a rotation before any of them is written (see
    /// [`PendingMasks`]). `here`: the parts in the file being scanned (its key, and its device and
    /// inode when plain); the parts in the file before are in `k`'s offsets. A failure to save
    /// is reported and the masks are written all the same.
    /// Returns the parts in this file.
    pub(super) fn save_pending(
        &mut self,
        c: &ContainerLog,
        here: (&str, u64, u64),
        k: &Carry,
        findings: &[Found],
    ) -> Vec<Finding> {
        let (this, before) = k.joined_parts(findings);
        if this.is_empty() && before.is_empty() {
            return this;
        }
        let (pdev, pino) = match k.file.metadata() {
            Ok(m) if !k.gz => (m.dev(), m.ino()),
            _ => (0, 0),
        };
        let files = [(here.0, here.1, here.2, &this), (k.ident.as_str(), pdev, pino, &before)]
            .into_iter()
            .filter(|(_, _, _, findings)| !findings.is_empty())
            .map(|(ident, dev, inode, findings)| PendingFile {
                container: c.id.clone(),
                ident: ident.to_string(),
                dev,
                inode,
                findings: findings.clone(),
                alias: None,
            })
            .collect();
        self.keep_pending(files);
        this
    }

    /// Keep pending masks until the checkpoint that covers their writes: appended to the spans log
    /// (one write, no fsync), or, where that cannot be done, saved in `pending-masks.json` at once.
    fn keep_pending(&mut self, files: Vec<PendingFile>) {
        let mut appended = self.spans.is_some();
        for p in files {
            appended &= self.spans.as_mut().is_some_and(|log| log.append(&p).is_ok());
            self.pending.push(p);
        }
        self.pending_dirty = true;
        if !appended {
            if let Err(e) = self.save_pending_file() {
                self.error(&format!("cannot save the pending masks: {e}"));
            }
        }
    }

    /// Save the masks of secrets that span entries of one file (a 16 KiB split, a PEM key) before
    /// they are written: each of their ranges is a write of its own, and a crash between two
    /// would leave a secret masked in part, whose rest no scan can find again. Appended to the
    /// [`SpansLog`] (one write, no fsync); the next checkpoint saves them durably (see
    /// [`PendingMasks`]). `here`: the file's key, device and inode.
    pub(super) fn save_pending_spans(&mut self, c: &ContainerLog, here: (&str, u64, u64), findings: &[Finding]) {
        let spans: Vec<Finding> = findings.iter().filter(|f| f.ranges.len() > 1).cloned().collect();
        if spans.is_empty() {
            return;
        }
        let p = PendingFile {
            container: c.id.clone(),
            ident: here.0.to_string(),
            dev: here.1,
            inode: here.2,
            findings: spans,
            alias: None,
        };
        self.keep_pending(vec![p]);
    }

    /// Before masks are written into the plain file `file` (key `key`): when they change its first
    /// line, the identity it will have is made an alias of the key and written ahead (see
    /// [`PendingFile::alias`]; one append to the spans log, as for spanning masks).
    pub(super) fn alias_ahead(&mut self, container: &str, key: &str, file: &File, findings: &[Finding]) {
        self.alias_ahead_of(container, key, file, findings, false);
    }

    /// [`Guard::alias_ahead`] for a `.gz` about to be rewritten with `findings` (offsets decompressed).
    pub(super) fn alias_ahead_gz(&mut self, container: &str, key: &str, file: &File, findings: &[Finding]) {
        self.alias_ahead_of(container, key, file, findings, true);
    }

    pub(super) fn alias_ahead_of(&mut self, container: &str, key: &str, file: &File, findings: &[Finding], gz: bool) {
        let plan = MaskPlan::from_findings(findings);
        let Some(&(first_edit, _)) = plan.edits().first() else {
            return;
        };
        if first_edit >= 1 << 20 {
            return; // past any first line an identity is taken of
        }
        let Ok(meta) = file.metadata() else { return };
        let reader = RangeReader {
            file,
            pos: 0,
            end: meta.len(),
        };
        let first = if gz {
            checkpoint::first_line(flate2::read::MultiGzDecoder::new(reader), 1 << 20)
        } else {
            checkpoint::first_line(reader, 1 << 20)
        };
        let Ok(Some(mut line)) = first else {
            return;
        };
        let len = line.len() as u64;
        let mut changed = false;
        for (at, bytes) in plan.edits() {
            if *at >= len {
                break;
            }
            let end = (*at as usize + bytes.len()).min(line.len());
            let part = &bytes[..end - *at as usize];
            changed |= line[*at as usize..end] != *part;
            line[*at as usize..end].copy_from_slice(part);
        }
        if !changed {
            return;
        }
        let alias = checkpoint::identity(container, &line);
        if alias == key || self.marks.files.contains_key(&alias) {
            return;
        }
        self.marks.aliases.insert(alias.clone(), key.to_string());
        self.marks_dirty = true;
        let (dev, inode) = if gz { (0, 0) } else { (meta.dev(), meta.ino()) };
        let p = PendingFile {
            container: container.to_string(),
            ident: key.to_string(),
            dev,
            inode,
            findings: Vec::new(),
            alias: Some(alias),
        };
        self.keep_pending(vec![p]);
    }

    /// Write `pending-masks.json`: this run's pending masks and an earlier run's not yet replayed.
    /// It then holds whatever the spans log held, which is emptied.
    pub(super) fn save_pending_file(&mut self) -> io::Result<()> {
        if !self.pending_dirty {
            return Ok(());
        }
        // A save handed to the syncer must not land after this one.
        if self.syncing.is_some() {
            let _ = self.finish_sync();
        }
        let files = self.pending.iter().chain(self.replay.values()).cloned().collect();
        PendingMasks { files }.save(&self.opts.state_dir)?;
        self.pending_dirty = false;
        if let Some(log) = &mut self.spans {
            log.clear()?;
        }
        Ok(())
    }
}
