//! Rewriting a compressed log masked: decompress, mask, recompress under a temporary name with
//! Docker's gzip header, owner and mode, fsync, then swap it in for the same inode under whatever
//! name that inode has then. A hard-linked file is never rewritten; a file Docker deleted
//! meanwhile is told from one it renamed by the rewrite's own open descriptor.
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::RangeReader;
use crate::logs::checkpoint;
use crate::logs::masking::MaskPlan;
use crate::logs::watch::TMP_PREFIX;
use crate::redact::Finding;

/// What came of [`rewrite_gz`].
#[derive(Debug, PartialEq)]
pub enum GzRewrite {
    /// Replaced: the new file's (dev, inode, size), and its name now (Docker may have renamed the
    /// file during the rewrite: the rewrite replaces it under the name it has then).
    Done((u64, u64, u64), PathBuf),
    /// Docker renamed it again at every try: not replaced (it is checked again later).
    Moved,
    /// Docker deleted it (rotated beyond `max-file`): nothing of it is left to mask.
    Gone,
}

/// Times a finished rewrite looks for the file's name again when Docker renamed it meanwhile.
pub(super) const REWRITE_TRIES: usize = 8;

/// The name in `dir` of the file `at` (dev, inode), if it has one there (temporaries excluded).
pub(super) fn name_of(dir: &Path, at: (u64, u64)) -> io::Result<Option<PathBuf>> {
    use std::os::unix::fs::DirEntryExt;
    for e in fs::read_dir(dir)? {
        let e = e?;
        if e.ino() != at.1 || e.file_name().to_string_lossy().starts_with(TMP_PREFIX) {
            continue;
        }
        let p = e.path();
        match fs::symlink_metadata(&p) {
            Ok(m) if (m.dev(), m.ino()) == at && m.file_type().is_file() => return Ok(Some(p)),
            _ => {}
        }
    }
    Ok(None)
}

/// Rewrite a compressed log masked: decompress, mask, recompress to a temporary name that does not
/// look like a log (same directory, same owner and mode, Docker's gzip header kept), fsync, and
/// swap it in for the inode `expect`, under whatever name that inode has in the directory then
/// (`path`, or the name Docker renamed it to: Docker renames every `.gz` at each rotation, which
/// under a fast writer comes more often than a rewrite takes).
///
/// With `tail`, the file must be the plain file it was taken for: masked as that was, it must
/// have its length and end with bytes of its hash, or nothing is replaced (`InvalidData`).
/// `findings` are written over that.
pub fn rewrite_gz(
    path: &Path,
    expect: (u64, u64),
    findings: &[Finding],
    tail: Option<PlainTail<'_>>,
) -> io::Result<GzRewrite> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let Some(src) = open_expected(path, dir, expect)? else {
        return Ok(GzRewrite::Moved);
    };
    let meta = src.metadata()?;
    if meta.nlink() > 1 {
        // Another name for the same file may lie outside the container's directory: replacing it
        // here would leave the other name with the secret, and writing it would reach that name.
        return Err(io::Error::other(format!(
            "{}: has {} hard links: not rewritten",
            path.display(),
            meta.nlink()
        )));
    }
    // The same open file, to tell a file Docker deleted (no name left) from one it renamed.
    let probe = src.try_clone()?;
    let tmp = dir.join(format!("{TMP_PREFIX}{}.tmp", crate::fsutil::random_suffix()?));
    let out = OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
    let keep_tmp = std::cell::Cell::new(false);
    let result = (|| -> io::Result<GzRewrite> {
        write_masked(src, &out, &meta, findings, tail)?;
        let cwd = rustix::fs::CWD;
        let mut at = path.to_path_buf();
        for _ in 0..REWRITE_TRIES {
            let here = fs::symlink_metadata(&at).ok().map(|m| (m.dev(), m.ino()));
            if here != Some(expect) {
                match name_of(dir, expect)? {
                    Some(p) => at = p,
                    None if probe.metadata()?.nlink() == 0 => return Ok(GzRewrite::Gone),
                    // Between two names (a rename under way): looked for again.
                    None => continue,
                }
            }
            // Swapped in atomically, then what came out is checked: Docker may have renamed `at`
            // (and another file to its name) since the look above, and a plain rename would
            // replace that other file.
            match rustix::fs::renameat_with(cwd, &tmp, cwd, &at, rustix::fs::RenameFlags::EXCHANGE) {
                Ok(()) => {
                    let came = fs::symlink_metadata(&tmp)?;
                    if (came.dev(), came.ino()) != expect {
                        // Put back, and looked for again. Should that fail, the temporary holds
                        // Docker's file: it is left for the operator (a warning).
                        if let Err(e) =
                            rustix::fs::renameat_with(cwd, &tmp, cwd, &at, rustix::fs::RenameFlags::EXCHANGE)
                        {
                            keep_tmp.set(true);
                            return Err(io::Error::other(format!(
                                "{}: Docker renamed it during the rewrite, and putting its file back failed ({e}): that file is {}",
                                at.display(),
                                tmp.display()
                            )));
                        }
                        continue;
                    }
                    fs::remove_file(&tmp)?;
                }
                // A file system without the exchange: a plain rename.
                Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS | rustix::io::Errno::OPNOTSUPP) => {
                    fs::rename(&tmp, &at)?
                }
                Err(e) => return Err(e.into()),
            }
            File::open(dir)?.sync_all()?;
            let m = out.metadata()?;
            return Ok(GzRewrite::Done((m.dev(), m.ino(), m.len()), at));
        }
        Ok(GzRewrite::Moved)
    })();
    if !matches!(result, Ok(GzRewrite::Done(..))) && !keep_tmp.get() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Open the file `expect` (dev, inode) at `path`, or under the name it has in `dir` now. `None`:
/// no name of it was found.
fn open_expected(path: &Path, dir: &Path, expect: (u64, u64)) -> io::Result<Option<File>> {
    let opened = match crate::fsutil::open_nofollow(path) {
        Ok(f) => f
            .metadata()
            .map(|m| (m.dev(), m.ino()))
            .ok()
            .filter(|at| *at == expect)
            .map(|_| f),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    match opened {
        Some(f) => Ok(Some(f)),
        None => match name_of(dir, expect)? {
            Some(p) => match crate::fsutil::open_nofollow(&p) {
                Ok(f) if f.metadata().map(|m| (m.dev(), m.ino())).ok() == Some(expect) => Ok(Some(f)),
                Ok(_) => Ok(None),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e),
            },
            // No name found: deleted, or between two names while Docker renames it (a directory
            // read may miss an entry renamed meanwhile). Without the file open, only its caller
            // (which holds it) can tell: see `Guard::drop_owed_of_deleted`.
            None => Ok(None),
        },
    }
}

/// The plain file a compressed file is taken for.
#[derive(Debug, Clone, Copy)]
pub struct PlainTail<'a> {
    /// Its length.
    pub len: u64,
    /// The [`checkpoint::tail_hash`] of its end.
    pub hash: &'a str,
    /// The masks written into it before that hash was taken.
    pub masks: &'a [Finding],
}

/// Write the compressed file `src` (metadata `meta`) masked with `findings` into `out`: same owner
/// and mode, Docker's gzip header, [`REWRITE_LEVEL`]; synced. With `tail`, the content with its
/// masks must have its length and end with bytes of its hash (`InvalidData` otherwise); the
/// `findings` are written over that (a mask the plain file never got, such as one owed to the
/// `.gz` by the file after it, may change those bytes).
fn write_masked(
    src: File,
    out: &File,
    meta: &fs::Metadata,
    findings: &[Finding],
    tail: Option<PlainTail<'_>>,
) -> io::Result<()> {
    std::os::unix::fs::fchown(out, Some(meta.uid()), Some(meta.gid()))?;
    out.set_permissions(fs::Permissions::from_mode(meta.mode() & 0o7777))?;
    let mut decoder = io::BufReader::new(flate2::read::GzDecoder::new(src));
    io::BufRead::fill_buf(&mut decoder)?;
    let builder = crate::logs::masking::gzip_like(decoder.get_ref().header());
    let enc = builder.write(io::BufWriter::with_capacity(256 << 10, out), REWRITE_LEVEL);
    // The plain file's masks, then (past the tail's check) the findings.
    let over = MaskPlan::from_findings(findings);
    let mut enc = TailWriter {
        inner: over.writer(enc),
        last: Vec::with_capacity(128),
        len: 0,
    };
    MaskPlan::from_findings(tail.map_or(&[][..], |t| t.masks)).apply_stream(decoder, &mut enc)?;
    if let Some(t) = tail {
        let start = enc.last.len().saturating_sub(64);
        if enc.len != t.len || checkpoint::tail_hash_of(&enc.last[start..]) != t.hash {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the compressed file is not the plain file it was taken for",
            ));
        }
    }
    let mut w = enc.inner.finish()?.finish()?;
    w.flush()?;
    drop(w);
    out.sync_all()
}

/// Whether the compressed file open as `file` holds every mask of `findings` already and is the
/// plain file it was taken for (`tail`: its length and the hash of its last 64 bytes; an error of
/// kind `InvalidData` otherwise, as from [`rewrite_gz`]).
pub(super) fn gz_holds(file: &File, findings: &[Finding], tail: (u64, &str)) -> io::Result<bool> {
    let mut src = CountTail {
        inner: flate2::read::MultiGzDecoder::new(RangeReader {
            file,
            pos: 0,
            end: file.metadata()?.len(),
        }),
        last: Vec::with_capacity(128),
        len: 0,
    };
    if MaskPlan::from_findings(findings).missing_in(&mut src)? {
        return Ok(false);
    }
    io::copy(&mut src, &mut io::sink())?;
    let start = src.last.len().saturating_sub(64);
    if src.len != tail.0 || checkpoint::tail_hash_of(&src.last[start..]) != tail.1 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "the compressed file is not the plain file it was taken for",
        ));
    }
    Ok(true)
}

/// Keep in `last` at least the last 64 bytes of what it held followed by `more` (at most 128).
pub(super) fn keep_last(last: &mut Vec<u8>, more: &[u8]) {
    if more.len() >= 64 {
        last.clear();
        last.extend_from_slice(&more[more.len() - 64..]);
    } else {
        if last.len() + more.len() > 128 {
            last.drain(..last.len() - 64);
        }
        last.extend_from_slice(more);
    }
}

/// A reader that keeps the last bytes read (at least 64) and counts them.
pub(super) struct CountTail<R> {
    inner: R,
    last: Vec<u8>,
    len: u64,
}

impl<R: Read> Read for CountTail<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.len += n as u64;
        keep_last(&mut self.last, &buf[..n]);
        Ok(n)
    }
}

/// A writer that keeps the last bytes written (at least 64) and counts them.
pub(super) struct TailWriter<W> {
    inner: W,
    last: Vec<u8>,
    len: u64,
}

impl<W: Write> Write for TailWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.len += n as u64;
        keep_last(&mut self.last, &buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// When `file` was created (`statx` birth time), where the file system records it.
pub(super) fn birth_time(file: &File) -> Option<SystemTime> {
    let st = rustix::fs::statx(file, "", rustix::fs::AtFlags::EMPTY_PATH, rustix::fs::StatxFlags::BTIME).ok()?;
    if st.stx_mask & rustix::fs::StatxFlags::BTIME.bits() == 0 {
        return None;
    }
    let t = st.stx_btime;
    let secs = u64::try_from(t.tv_sec).ok()?;
    SystemTime::UNIX_EPOCH.checked_add(Duration::new(secs, t.tv_nsec))
}

/// The compression level of a rewritten `.gz`. Compressing at Docker's level (6) was the largest
/// part of the guard's CPU under fast rotation. On a 770 KB `max10-kill` log of the stress
/// benchmark (zlib-rs, one core): level 6 4.4 ms a MB for 8.1 % of the size, level 2 1.7 ms for
/// 10.2 %, level 1 1.1 ms for 12.6 %. Under fast rotation with restarts (`max10-kill`) the rewrites
/// were about a third of the guard's CPU: level 1.
pub(super) const REWRITE_LEVEL: flate2::Compression = flate2::Compression::new(1);

#[cfg(test)]
mod tests {
    use super::super::tests::{assert_clean, finding_at, gunzip, gzip_like_docker, line, token, T1};
    use super::*;

    #[test]
    fn a_gz_rewrite_lands_under_the_name_docker_gave_the_file_meanwhile_and_a_missing_name_is_not_taken_for_a_deletion()
    {
        let tmp = tempfile::tempdir().unwrap();
        let text = line(&format!("key {}", token(T1)), 1);
        let at = String::from_utf8_lossy(&text).find("ghp_").unwrap() as u64;
        let f = finding_at(vec![[at, at + 40]]);
        let gz = tmp.path().join("c-json.log.1.gz");
        gzip_like_docker(&text, &gz);
        let m = fs::metadata(&gz).unwrap();
        let expect = (m.dev(), m.ino());
        // Docker's rotation renamed it after the scan that found the secret.
        let moved = tmp.path().join("c-json.log.2.gz");
        fs::rename(&gz, &moved).unwrap();
        match rewrite_gz(&gz, expect, std::slice::from_ref(&f), None).unwrap() {
            GzRewrite::Done((dev, ino, size), now) => {
                assert_eq!(now, moved);
                let m = fs::metadata(&moved).unwrap();
                assert_eq!((dev, ino, size), (m.dev(), m.ino(), m.len()));
                assert_eq!(m.permissions().mode() & 0o777, 0o640, "Docker's mode kept");
            }
            other => panic!("{other:?}"),
        }
        assert!(!gz.exists());
        let now = gunzip(&moved);
        assert_eq!(now.len(), text.len());
        assert_clean(&now, &[T1]);
        let left: Vec<_> = fs::read_dir(tmp.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(left.len(), 1, "no temporary left: {left:?}");
        // Deleted (rotated beyond max-file) before the rewrite began: no name is found, which a
        // rename under way looks like too, so it is left to the caller (which holds it open).
        let m = fs::metadata(&moved).unwrap();
        fs::remove_file(&moved).unwrap();
        assert_eq!(
            rewrite_gz(&moved, (m.dev(), m.ino()), &[f], None).unwrap(),
            GzRewrite::Moved
        );
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 0);
    }
}
