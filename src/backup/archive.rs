//! Writing the tar stream: our own directory walk (sorted, symlinks never followed, one file system),
//! PAX records for nanosecond mtimes, large ids and xattrs, hardlinks stored once, sockets and
//! devices skipped with a warning, and the manifest appended as the last entry.
use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, BufReader, Read, Seek, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use tar::{EntryType, Header};

use super::error::BackupError;
use super::manifest::{self, Kind, Line, Record, Totals, MANIFEST_NAME};
use super::progress::Progress;

/// What a finished archive holds.
#[derive(Debug, Clone, Default)]
pub struct ArchiveSummary {
    /// Totals, as in the manifest's last line.
    pub totals: Totals,
    /// Warnings (skipped or changed paths), already logged.
    pub warnings: Vec<String>,
}

/// Builds the archive of one source directory into `out`.
pub struct ArchiveWriter<W: Write> {
    tar: tar::Builder<W>,
    /// Manifest lines, spooled to an unnamed temporary file (bounded memory for any file count).
    manifest: io::BufWriter<File>,
    hardlinks: HashMap<(u64, u64), String>,
    root_dev: u64,
    summary: ArchiveSummary,
    progress: Option<std::sync::Arc<Progress>>,
    stop: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
    /// The read buffer for file contents, [`READ_BLOCK`] bytes, reused.
    block: Vec<u8>,
}

/// Open `name` in `dir` for reading if it is (still) a regular file: never follows a symlink and
/// never blocks on a FIFO that replaced it meanwhile. `None`: look again by path.
fn open_regular(dir: &File, name: &std::ffi::OsStr) -> Option<(File, fs::Metadata)> {
    use rustix::fs::{Mode, OFlags};
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY;
    let file = File::from(rustix::fs::openat(dir, name, flags, Mode::empty()).ok()?);
    let md = file.metadata().ok()?;
    md.file_type().is_file().then_some((file, md))
}

fn rel_string(rel: &Path) -> String {
    String::from_utf8_lossy(rel.as_os_str().as_bytes()).into_owned()
}

/// `"%d %s=%s\n"` PAX records, where the leading length counts the whole record.
fn pax_records(records: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in records {
        let body = k.len() + v.len() + 3; // ' ', '=', '\n'
        let mut len = body + 1;
        while len != body + len.to_string().len() {
            len = body + len.to_string().len();
        }
        out.extend_from_slice(len.to_string().as_bytes());
        out.push(b' ');
        out.extend_from_slice(k.as_bytes());
        out.push(b'=');
        out.extend_from_slice(v);
        out.push(b'\n');
    }
    out
}

/// A file counts as sparse when at least this many bytes of it are holes.
const SPARSE_SLACK: u64 = 1 << 20;

fn mtime_ns(md: &fs::Metadata) -> i64 {
    md.mtime().saturating_mul(1_000_000_000).saturating_add(md.mtime_nsec())
}

impl<W: Write> ArchiveWriter<W> {
    /// Start an archive of `source` (its device bounds the walk) into `out`.
    pub fn new(
        out: W,
        source: &Path,
        mut header: manifest::Header,
        progress: Option<std::sync::Arc<Progress>>,
        stop: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
    ) -> Result<Self, BackupError> {
        let md = fs::metadata(source).map_err(|e| BackupError::io(format!("source {}", source.display()), e))?;
        if !md.is_dir() {
            return Err(BackupError::Source(format!("{} is not a directory", source.display())));
        }
        header.root = Some(manifest::RootMeta {
            mode: md.mode() & 0o7777,
            uid: md.uid(),
            gid: md.gid(),
            mtime_ns: mtime_ns(&md),
        });
        let spool = tempfile::tempfile().map_err(|e| BackupError::temp("manifest spool file", e))?;
        let mut w = ArchiveWriter {
            tar: tar::Builder::new(out),
            manifest: io::BufWriter::new(spool),
            hardlinks: HashMap::new(),
            root_dev: md.dev(),
            summary: ArchiveSummary::default(),
            progress,
            stop,
            block: vec![0; READ_BLOCK],
        };
        w.line(&Line::Header(header))?;
        Ok(w)
    }

    fn line(&mut self, line: &Line) -> Result<(), BackupError> {
        serde_json::to_writer(&mut self.manifest, line)
            .map_err(|e| BackupError::io("manifest spool file", e.into()))?;
        self.manifest
            .write_all(b"\n")
            .map_err(|e| BackupError::io("manifest spool file", e))
    }

    fn warn(&mut self, msg: String) {
        tracing::warn!("{msg}");
        self.summary.warnings.push(msg);
    }

    /// Archive everything under `source`, depth first, names sorted.
    pub fn add_tree(&mut self, source: &Path) -> Result<(), BackupError> {
        self.add_dir_contents(source, Path::new(""))
    }

    fn add_dir_contents(&mut self, dir: &Path, rel: &Path) -> Result<(), BackupError> {
        let rd = match fs::read_dir(dir) {
            Ok(rd) => rd,
            Err(e) => {
                self.summary.totals.skipped += 1;
                self.warn(format!("skipped directory {}: {e}", dir.display()));
                return Ok(());
            }
        };
        let mut names: Vec<(std::ffi::OsString, bool)> = rd
            .filter_map(|e| {
                let e = e.ok()?;
                let is_file = e.file_type().is_ok_and(|t| t.is_file());
                Some((e.file_name(), is_file))
            })
            .collect();
        names.sort_unstable();
        // Regular files are opened relative to the directory (no path walk each time) and their
        // metadata taken from the open handle: one lookup per file instead of three.
        let dirfd = File::open(dir).ok();
        for (name, is_file) in names {
            let path = dir.join(&name);
            let rel = rel.join(&name);
            if let (true, Some(dirfd)) = (is_file, dirfd.as_ref()) {
                if let Some((file, md)) = open_regular(dirfd, &name) {
                    self.add_entry(&path, &rel, &md, Some(file))?;
                    continue;
                }
            }
            let md = match fs::symlink_metadata(&path) {
                Ok(md) => md,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue, // removed meanwhile
                Err(e) => {
                    self.summary.totals.skipped += 1;
                    self.warn(format!("skipped {}: {e}", path.display()));
                    continue;
                }
            };
            self.add_entry(&path, &rel, &md, None)?;
        }
        Ok(())
    }

    fn base_header(md: &fs::Metadata, kind: EntryType) -> (Header, Vec<(String, Vec<u8>)>) {
        let mut h = Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(md.mode() & 0o7777);
        h.set_uid(md.uid() as u64);
        h.set_gid(md.gid() as u64);
        h.set_mtime(md.mtime().max(0) as u64);
        h.set_size(0);
        let pax = vec![(
            "mtime".to_string(),
            format!("{}.{:09}", md.mtime(), md.mtime_nsec()).into_bytes(),
        )];
        (h, pax)
    }

    /// The same, read through an open handle.
    fn xattrs_fd(file: &File, pax: &mut Vec<(String, Vec<u8>)>) {
        use xattr::FileExt;
        if let Ok(names) = file.list_xattr() {
            for name in names {
                if let Ok(Some(value)) = file.get_xattr(&name) {
                    pax.push((format!("SCHILY.xattr.{}", name.to_string_lossy()), value));
                }
            }
        }
    }

    fn xattrs(path: &Path, pax: &mut Vec<(String, Vec<u8>)>) {
        if let Ok(names) = xattr::list(path) {
            for name in names {
                if let Ok(Some(value)) = xattr::get(path, &name) {
                    pax.push((format!("SCHILY.xattr.{}", name.to_string_lossy()), value));
                }
            }
        }
    }

    /// A PAX extended header for the entry that follows.
    fn append_pax(&mut self, pax: &[(String, Vec<u8>)], rel: &Path) -> Result<(), BackupError> {
        if pax.is_empty() {
            return Ok(());
        }
        let body = pax_records(pax);
        let mut x = Header::new_ustar();
        x.set_entry_type(EntryType::XHeader);
        x.set_size(body.len() as u64);
        x.set_mode(0o644);
        let name = format!(
            "PaxHeaders/{}",
            rel.file_name().map(|n| n.to_string_lossy()).unwrap_or_default()
        );
        let name: String = name.chars().take(99).collect();
        self.tar
            .append_data(&mut x, name, &body[..])
            .map_err(|e| BackupError::io("writing the archive", e))
    }

    fn append(
        &mut self,
        mut header: Header,
        pax: &[(String, Vec<u8>)],
        rel: &Path,
        data: impl Read,
    ) -> Result<(), BackupError> {
        self.append_pax(pax, rel)?;
        self.tar
            .append_data(&mut header, rel, data)
            .map_err(|e| BackupError::io("writing the archive", e))
    }

    /// Store a sparse file as a GNU sparse entry (only its data segments), if it stays unchanged
    /// while read. Returns its content hash, or `None` when it changed (the caller stores it densely).
    fn append_sparse(
        &mut self,
        path: &Path,
        rel: &Path,
        file: &mut File,
        before: &fs::Metadata,
    ) -> Result<Option<String>, BackupError> {
        let ctx = || format!("reading {}", path.display());
        let mut hasher = blake3::Hasher::new();
        let progress = self.progress.clone();
        let stop = self.stop.clone();
        let read = io::copy(
            &mut HashingReader {
                inner: (&mut *file).take(before.len()),
                hasher: &mut hasher,
                progress: &progress,
                stop: &stop,
            },
            &mut io::sink(),
        )
        .map_err(|e| BackupError::io(ctx(), e))?;
        let same = |m: &fs::Metadata| {
            m.len() == before.len() && m.mtime() == before.mtime() && m.mtime_nsec() == before.mtime_nsec()
        };
        if read != before.len() || !file.metadata().map(|m| same(&m)).unwrap_or(false) {
            return Ok(None);
        }
        file.seek(io::SeekFrom::Start(0))
            .map_err(|e| BackupError::io(ctx(), e))?;
        let (_, mut pax) = Self::base_header(before, EntryType::Regular);
        Self::xattrs(path, &mut pax);
        self.append_pax(&pax, rel)?;
        self.tar
            .append_file(rel, file)
            .map_err(|e| BackupError::io("writing the archive", e))?;
        Ok(Some(hasher.finalize().to_hex().to_string()))
    }

    /// Archive one path; `opened` is the regular file `md` describes, already open.
    fn add_entry(
        &mut self,
        path: &Path,
        rel: &Path,
        md: &fs::Metadata,
        opened: Option<File>,
    ) -> Result<(), BackupError> {
        if self
            .stop
            .as_ref()
            .is_some_and(|s| s.load(std::sync::atomic::Ordering::Relaxed))
        {
            return Err(BackupError::Interrupted);
        }
        let ft = md.file_type();
        let record = Record {
            path: rel_string(rel),
            kind: Kind::File,
            size: 0,
            mode: md.mode() & 0o7777,
            uid: md.uid(),
            gid: md.gid(),
            mtime_ns: mtime_ns(md),
            blake3: None,
            link: None,
            changed: false,
        };
        if ft.is_dir() {
            return self.add_dir(path, rel, md, record);
        }
        if ft.is_symlink() {
            return self.add_symlink(path, rel, md, record);
        }
        if ft.is_fifo() {
            let (h, pax) = Self::base_header(md, EntryType::Fifo);
            self.append(h, &pax, rel, io::empty())?;
            return self.finish_record(Record {
                kind: Kind::Fifo,
                ..record
            });
        }
        if ft.is_socket() || ft.is_block_device() || ft.is_char_device() {
            self.summary.totals.skipped += 1;
            let what = if ft.is_socket() { "socket" } else { "device file" };
            self.warn(format!("skipped {what} {}", path.display()));
            return Ok(());
        }
        self.add_regular(path, rel, md, opened, record)
    }

    /// A directory, then what is in it (unless it is another file system's mount point).
    fn add_dir(&mut self, path: &Path, rel: &Path, md: &fs::Metadata, record: Record) -> Result<(), BackupError> {
        let (h, mut pax) = Self::base_header(md, EntryType::Directory);
        Self::xattrs(path, &mut pax);
        self.append(h, &pax, rel, io::empty())?;
        self.finish_record(Record {
            kind: Kind::Dir,
            ..record
        })?;
        if md.dev() != self.root_dev {
            self.warn(format!(
                "{}: another file system, its contents are not backed up",
                path.display()
            ));
            return Ok(());
        }
        self.add_dir_contents(path, rel)
    }

    /// A symlink, stored as it is (never followed); one that cannot be read or stored is skipped.
    fn add_symlink(&mut self, path: &Path, rel: &Path, md: &fs::Metadata, record: Record) -> Result<(), BackupError> {
        let target = match fs::read_link(path) {
            Ok(t) => t,
            Err(e) => {
                self.summary.totals.skipped += 1;
                self.warn(format!("skipped symlink {}: {e}", path.display()));
                return Ok(());
            }
        };
        let (mut h, pax) = Self::base_header(md, EntryType::Symlink);
        h.set_mode(0o777);
        if let Err(e) = h.set_link_name_literal(target.as_os_str().as_bytes()) {
            self.summary.totals.skipped += 1;
            self.warn(format!("skipped symlink {}: {e}", path.display()));
            return Ok(());
        }
        self.append(h, &pax, rel, io::empty())?;
        self.finish_record(Record {
            kind: Kind::Symlink,
            link: Some(String::from_utf8_lossy(target.as_os_str().as_bytes()).into_owned()),
            ..record
        })
    }

    /// A regular file: a hardlink entry when another name of it was stored already; else its
    /// content, stored again (once) when it changed while read.
    fn add_regular(
        &mut self,
        path: &Path,
        rel: &Path,
        md: &fs::Metadata,
        mut opened: Option<File>,
        mut record: Record,
    ) -> Result<(), BackupError> {
        if md.nlink() > 1 {
            if let Some(first) = self.hardlinks.get(&(md.dev(), md.ino())).cloned() {
                let (mut h, pax) = Self::base_header(md, EntryType::Link);
                h.set_link_name_literal(first.as_bytes())
                    .map_err(|e| BackupError::io(format!("hardlink {}", path.display()), e))?;
                self.append(h, &pax, rel, io::empty())?;
                return self.finish_record(Record {
                    kind: Kind::Hardlink,
                    link: Some(first),
                    ..record
                });
            }
            self.hardlinks.insert((md.dev(), md.ino()), record.path.clone());
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            let Some(mut file) = self.open_source(path, opened.take()) else {
                return Ok(());
            };
            let before = file
                .metadata()
                .map_err(|e| BackupError::io(format!("reading {}", path.display()), e))?;
            let size = before.len();
            // Sparse (far fewer blocks allocated than its size): store only its data segments.
            if attempt == 1 && before.blocks().saturating_mul(512).saturating_add(SPARSE_SLACK) < size {
                if let Some(hash) = self.append_sparse(path, rel, &mut file, &before)? {
                    stat_into(&mut record, &before);
                    record.blake3 = Some(hash);
                    return self.finish_file(record);
                }
                continue;
            }
            let read = self.append_dense(rel, &mut file, &before)?;
            let after = file.metadata().ok();
            let changed = read.short
                || after.is_none_or(|a| {
                    a.len() != before.len() || a.mtime() != before.mtime() || a.mtime_nsec() != before.mtime_nsec()
                });
            stat_into(&mut record, &before);
            record.blake3 = Some(read.blake3);
            if changed && attempt == 1 {
                // Stored again below: the later entry wins on extraction, the manifest describes it.
                continue;
            }
            if changed {
                record.changed = true;
                self.summary.totals.changed += 1;
                self.warn(format!(
                    "{} changed while it was read (twice); stored as last read",
                    path.display()
                ));
            }
            return self.finish_file(record);
        }
    }

    /// The source file to read: `opened`, else opened now. `None`: gone meanwhile, or skipped
    /// (with a warning) when it cannot be opened.
    fn open_source(&mut self, path: &Path, opened: Option<File>) -> Option<File> {
        let reopened = match opened {
            Some(f) => Ok(f),
            None => File::open(path),
        };
        match reopened {
            Ok(f) => Some(f),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => {
                self.summary.totals.skipped += 1;
                self.warn(format!("skipped {}: {e}", path.display()));
                None
            }
        }
    }

    /// Store a file's content densely: exactly `before.len()` bytes go into the entry whatever the
    /// file does meanwhile (a file that grew is cut, one that shrank is padded with zeros).
    fn append_dense(&mut self, rel: &Path, file: &mut File, before: &fs::Metadata) -> Result<DenseRead, BackupError> {
        let size = before.len();
        let (mut h, mut pax) = Self::base_header(before, EntryType::Regular);
        Self::xattrs_fd(file, &mut pax);
        h.set_size(size);
        let mut hasher = blake3::Hasher::new();
        let mut short = false;
        // One block buffer for all files (a fresh one per file would be zeroed every time).
        let mut block = std::mem::take(&mut self.block);
        let progress = self.progress.clone();
        let stop = self.stop.clone();
        {
            let limited = (&mut *file).take(size);
            // tar copies in 8 KiB pieces; reading and hashing in large blocks below it saves
            // syscalls and lets BLAKE3 hash many chunks at once.
            let mut reader = BlockReader {
                inner: HashingReader {
                    inner: limited,
                    hasher: &mut hasher,
                    progress: &progress,
                    stop: &stop,
                },
                buf: &mut block,
                pos: 0,
                end: 0,
            };
            let padded = PadTo {
                inner: &mut reader,
                want: size,
                given: 0,
                padded: &mut short,
            };
            let appended = self.append(h, &pax, rel, padded);
            self.block = block;
            appended?;
        }
        Ok(DenseRead {
            blake3: hasher.finalize().to_hex().to_string(),
            short,
        })
    }

    /// A file's record is complete: count it.
    fn finish_file(&mut self, record: Record) -> Result<(), BackupError> {
        self.summary.totals.files += 1;
        self.summary.totals.bytes += record.size;
        Progress::add(&self.progress, 0, 1);
        self.finish_record(record)
    }

    fn finish_record(&mut self, record: Record) -> Result<(), BackupError> {
        self.summary.totals.entries += 1;
        self.line(&Line::Entry(record))
    }

    /// Append the manifest as the last entry, finish the tar stream and return the inner writer.
    pub fn finish(mut self) -> Result<(W, ArchiveSummary), BackupError> {
        let totals = self.summary.totals.clone();
        self.line(&Line::Totals(totals))?;
        let spool = self
            .manifest
            .into_inner()
            .map_err(|e| BackupError::io("manifest spool file", e.into_error()))?;
        let mut spool = BufReader::new(spool);
        let len = spool
            .get_mut()
            .seek(io::SeekFrom::End(0))
            .map_err(|e| BackupError::io("manifest spool file", e))?;
        spool
            .get_mut()
            .seek(io::SeekFrom::Start(0))
            .map_err(|e| BackupError::io("manifest spool file", e))?;
        let mut h = Header::new_gnu();
        h.set_entry_type(EntryType::Regular);
        h.set_mode(0o600);
        h.set_size(len);
        h.set_mtime(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        );
        self.tar
            .append_data(&mut h, MANIFEST_NAME, spool)
            .map_err(|e| BackupError::io("writing the archive", e))?;
        let out = self
            .tar
            .into_inner()
            .map_err(|e| BackupError::io("writing the archive", e))?;
        Ok((out, self.summary))
    }
}

/// What storing a file's content densely read.
struct DenseRead {
    /// BLAKE3 hash (hex) of the bytes stored.
    blake3: String,
    /// The file ended before its size: zeros were stored for the rest.
    short: bool,
}

/// Size, mode, owner and mtime of the file as opened, into its manifest record.
fn stat_into(record: &mut Record, before: &fs::Metadata) {
    record.size = before.len();
    record.mode = before.mode() & 0o7777;
    record.uid = before.uid();
    record.gid = before.gid();
    record.mtime_ns = mtime_ns(before);
}

/// Size of the reads from source files.
const READ_BLOCK: usize = 256 * 1024;

struct HashingReader<'h, R> {
    inner: R,
    hasher: &'h mut blake3::Hasher,
    progress: &'h Option<std::sync::Arc<Progress>>,
    stop: &'h Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

impl<R: Read> Read for HashingReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self
            .stop
            .as_ref()
            .is_some_and(|s| s.load(std::sync::atomic::Ordering::Relaxed))
        {
            return Err(io::Error::other("stop requested"));
        }
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Progress::add(self.progress, n as u64, 0);
        Ok(n)
    }
}

/// Reads `inner` in blocks of `buf`'s size and hands them out in whatever pieces are asked for.
struct BlockReader<'b, R> {
    inner: R,
    buf: &'b mut [u8],
    pos: usize,
    end: usize,
}

impl<R: Read> Read for BlockReader<'_, R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.end {
            self.end = self.inner.read(self.buf)?;
            self.pos = 0;
        }
        let n = out.len().min(self.end - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Reads `inner`, then zeros up to `want` bytes in all (a file that shrank while being read), also hashed.
struct PadTo<'a, 'h, R> {
    inner: &'a mut BlockReader<'a, HashingReader<'h, R>>,
    want: u64,
    given: u64,
    padded: &'a mut bool,
}

impl<R: Read> Read for PadTo<'_, '_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.given >= self.want {
            return Ok(0);
        }
        let n = self.inner.read(buf)?;
        if n > 0 {
            self.given += n as u64;
            return Ok(n);
        }
        let k = ((self.want - self.given) as usize).min(buf.len());
        buf[..k].fill(0);
        self.inner.inner.hasher.update(&buf[..k]);
        self.given += k as u64;
        *self.padded = true;
        Ok(k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_lengths_count_themselves() {
        for v in [0usize, 1, 5, 6, 7, 90, 95, 96, 97, 990, 995] {
            let rec = pax_records(&[("k".into(), vec![b'a'; v])]);
            let text = String::from_utf8(rec.clone()).unwrap();
            let (len, _) = text.split_once(' ').unwrap();
            assert_eq!(len.parse::<usize>().unwrap(), rec.len(), "value length {v}");
        }
    }
}
