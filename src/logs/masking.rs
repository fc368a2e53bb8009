//! Applying findings to bytes: the mask plan and masked copies of files (`scan --redact-to`).
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::Path;

use crate::fsutil::AtomicFile;
use crate::redact::Finding;

/// Byte edits, sorted and non-overlapping, each replacing `[start, start + bytes.len())`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct MaskPlan {
    edits: Vec<(u64, Vec<u8>)>,
}

impl MaskPlan {
    /// Spread each finding's mask over its ranges; where findings overlap, the first one wins.
    pub fn from_findings(findings: &[Finding]) -> Self {
        let mut edits = Vec::new();
        for f in findings {
            let mut used = 0usize;
            for [s, e] in &f.ranges {
                let len = (e - s) as usize;
                let bytes = f
                    .mask
                    .get(used..used + len)
                    .map(<[u8]>::to_vec)
                    .unwrap_or_else(|| vec![b'*'; len]);
                used += len;
                edits.push((*s, bytes));
            }
        }
        edits.sort_by_key(|(s, _)| *s);
        let mut out: Vec<(u64, Vec<u8>)> = Vec::with_capacity(edits.len());
        for (s, bytes) in edits {
            let (s, bytes) = match out.last() {
                Some((ps, pb)) if ps + pb.len() as u64 > s => {
                    let skip = (ps + pb.len() as u64 - s) as usize;
                    if skip >= bytes.len() {
                        continue;
                    }
                    (s + skip as u64, bytes[skip..].to_vec())
                }
                _ => (s, bytes),
            };
            out.push((s, bytes));
        }
        Self { edits: out }
    }

    /// True when there is nothing to mask.
    pub fn is_empty(&self) -> bool {
        self.edits.is_empty()
    }

    /// The edits: (offset, replacement bytes).
    pub fn edits(&self) -> &[(u64, Vec<u8>)] {
        &self.edits
    }

    /// Whether `src` lacks some planned bytes at their offsets (a mask not written, or written in
    /// part), or ends before one. Streaming.
    pub fn missing_in<R: Read>(&self, src: R) -> io::Result<bool> {
        let mut src = BufReader::with_capacity(256 << 10, src);
        let mut pos = 0u64;
        let mut next = 0usize;
        while next < self.edits.len() {
            let buf = src.fill_buf()?;
            if buf.is_empty() {
                return Ok(true);
            }
            let len = buf.len();
            let end = pos + len as u64;
            let mut i = next;
            while i < self.edits.len() && self.edits[i].0 < end {
                let (s, bytes) = &self.edits[i];
                let e = s + bytes.len() as u64;
                if e > pos {
                    let from = (s.max(&pos) - pos) as usize;
                    let to = (e.min(end) - pos) as usize;
                    let off = (pos.max(*s) - s) as usize;
                    if buf[from..to] != bytes[off..off + (to - from)] {
                        return Ok(true);
                    }
                }
                if e <= end {
                    next = i + 1;
                }
                i += 1;
            }
            src.consume(len);
            pos = end;
        }
        Ok(false)
    }

    /// Copy `src` to `dst` replacing the planned bytes; returns bytes copied. Streaming.
    pub fn apply_stream<R: Read, W: Write>(&self, src: R, dst: &mut W) -> io::Result<u64> {
        let mut src = BufReader::with_capacity(256 << 10, src);
        let mut pos = 0u64;
        let mut next = 0usize;
        loop {
            let buf = src.fill_buf()?;
            if buf.is_empty() {
                break;
            }
            let mut chunk = buf.to_vec();
            let len = chunk.len();
            src.consume(len);
            self.apply_at(&mut chunk, pos, &mut next);
            dst.write_all(&chunk)?;
            pos += len as u64;
        }
        self.all_applied(pos, next)?;
        Ok(pos)
    }

    /// Replace the planned bytes in `chunk`, the bytes at offset `pos`; `next`: the first edit
    /// that may touch it, moved past those that end within it.
    fn apply_at(&self, chunk: &mut [u8], pos: u64, next: &mut usize) {
        let end = pos + chunk.len() as u64;
        let mut i = *next;
        while i < self.edits.len() && self.edits[i].0 < end {
            let (s, bytes) = &self.edits[i];
            let e = s + bytes.len() as u64;
            if e > pos {
                let from = s.max(&pos) - pos;
                let to = e.min(end) - pos;
                let off = (pos.max(*s) - s) as usize;
                chunk[from as usize..to as usize].copy_from_slice(&bytes[off..off + (to - from) as usize]);
            }
            if e <= end {
                *next = i + 1;
            }
            i += 1;
        }
    }

    /// An error when an edit from `next` on starts at or after `len`, the length of the content.
    fn all_applied(&self, len: u64, next: usize) -> io::Result<()> {
        match self.edits.get(next) {
            Some((s, _)) if *s >= len => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file is shorter than the findings say (it changed since the scan); scan it again",
            )),
            _ => Ok(()),
        }
    }

    /// A writer that passes what it is given on to `dst` with the planned bytes replaced (offsets
    /// counted from its first byte).
    pub fn writer<W: Write>(&self, dst: W) -> MaskWriter<'_, W> {
        MaskWriter {
            plan: self,
            inner: dst,
            pos: 0,
            next: 0,
            chunk: Vec::new(),
        }
    }
}

/// See [`MaskPlan::writer`].
pub struct MaskWriter<'p, W> {
    plan: &'p MaskPlan,
    inner: W,
    pos: u64,
    next: usize,
    chunk: Vec<u8>,
}

impl<W: Write> MaskWriter<'_, W> {
    /// The writer given, once every planned edit was applied (`UnexpectedEof` when the content
    /// ended before one).
    pub fn finish(self) -> io::Result<W> {
        self.plan.all_applied(self.pos, self.next)?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for MaskWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.next >= self.plan.edits.len() {
            self.inner.write_all(buf)?;
            self.pos += buf.len() as u64;
            return Ok(buf.len());
        }
        self.chunk.clear();
        self.chunk.extend_from_slice(buf);
        self.plan.apply_at(&mut self.chunk, self.pos, &mut self.next);
        self.inner.write_all(&self.chunk)?;
        self.pos += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A gzip writer that repeats `header` (Extra field verbatim: Docker keeps `{"lastTime":…}` there,
/// and `docker logs --since` reads it; file name, comment, mtime).
pub fn gzip_like(header: Option<&flate2::GzHeader>) -> flate2::GzBuilder {
    let mut builder = flate2::GzBuilder::new();
    if let Some(h) = header {
        if let Some(x) = h.extra() {
            builder = builder.extra(x);
        }
        if let Some(f) = h.filename() {
            builder = builder.filename(f);
        }
        if let Some(c) = h.comment() {
            builder = builder.comment(c);
        }
        builder = builder.mtime(h.mtime());
    }
    builder
}

/// Write a masked copy of `src` to `dst` (atomically, 0600). Gzip input gives gzip output with the
/// same header (Docker keeps `{"lastTime":…}` in the Extra field).
pub fn write_masked_copy(src: &Path, dst: &Path, findings: &[Finding], gzip: bool) -> io::Result<u64> {
    let plan = MaskPlan::from_findings(findings);
    let file = File::open(src)?;
    let mut out = AtomicFile::create(dst)?;
    let n = if gzip {
        let mut decoder = BufReader::new(flate2::read::GzDecoder::new(file));
        decoder.fill_buf()?;
        let mut enc = gzip_like(decoder.get_ref().header()).write(&mut out, flate2::Compression::default());
        let n = plan.apply_stream(decoder, &mut enc)?;
        enc.finish()?;
        n
    } else {
        plan.apply_stream(file, &mut out)?
    };
    out.commit()?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redact::Severity;

    fn f(ranges: Vec<[u64; 2]>, mask: &[u8]) -> Finding {
        Finding {
            partial: false,
            schema: 1,
            rule: "r".into(),
            description: String::new(),
            severity: Severity::High,
            confidence: None,
            file: "x".into(),
            line: 1,
            end_line: 1,
            start: ranges[0][0],
            end: ranges.last().unwrap()[1],
            ranges,
            container_id: None,
            stream: None,
            time: None,
            fingerprint: "00".repeat(32),
            preview: String::new(),
            mask: mask.to_vec(),
        }
    }

    #[test]
    fn applies_across_ranges_and_buffer_edges() {
        let src: Vec<u8> = (0..600_000u32).map(|i| b'a' + (i % 26) as u8).collect();
        let findings = vec![
            f(vec![[10, 14], [20, 22]], b"ABCDEF"),
            f(vec![[262_140, 262_150]], b"0123456789"),
        ];
        let plan = MaskPlan::from_findings(&findings);
        let mut out = Vec::new();
        assert_eq!(plan.apply_stream(&src[..], &mut out).unwrap(), src.len() as u64);
        assert_eq!(out.len(), src.len());
        assert_eq!(&out[10..14], b"ABCD");
        assert_eq!(&out[20..22], b"EF");
        assert_eq!(&out[262_140..262_150], b"0123456789");
        assert_eq!(&out[..10], &src[..10]);
        assert_eq!(&out[262_150..], &src[262_150..]);
    }

    #[test]
    fn overlapping_edits_keep_the_first() {
        let plan = MaskPlan::from_findings(&[f(vec![[0, 4]], b"AAAA"), f(vec![[2, 6]], b"BBBB")]);
        let mut out = Vec::new();
        plan.apply_stream(&b"xxxxxxxx"[..], &mut out).unwrap();
        assert_eq!(out, b"AAAABBxx");
    }

    #[test]
    fn the_writer_masks_as_the_stream_does_whatever_the_sizes_of_the_writes() {
        let src: Vec<u8> = (0..5_000u32).map(|i| b'a' + (i % 26) as u8).collect();
        let plan = MaskPlan::from_findings(&[
            f(vec![[0, 3]], b"XYZ"),
            f(vec![[10, 14], [20, 22]], b"ABCDEF"),
            f(vec![[997, 1_013]], b"0123456789abcdef"),
            f(vec![[4_990, 5_000]], b"0123456789"),
        ]);
        let mut want = Vec::new();
        plan.apply_stream(&src[..], &mut want).unwrap();
        for step in [1, 3, 7, 16, 1_000, 5_000] {
            let mut w = plan.writer(Vec::new());
            for part in src.chunks(step) {
                w.write_all(part).unwrap();
            }
            assert_eq!(w.finish().unwrap(), want, "writes of {step} bytes");
        }
        // An edit at or past the end of what was written: an error at the end.
        let mut w = plan.writer(Vec::new());
        w.write_all(&src[..4_000]).unwrap();
        assert!(w.finish().unwrap_err().to_string().contains("changed since the scan"));
    }

    #[test]
    fn a_shorter_file_is_an_error() {
        let plan = MaskPlan::from_findings(&[f(vec![[100, 104]], b"AAAA")]);
        let err = plan.apply_stream(&b"short"[..], &mut Vec::new()).unwrap_err();
        assert!(err.to_string().contains("changed since the scan"));
    }
}
