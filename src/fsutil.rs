//! The one way sidecar writes files: private (0600 files, 0700 directories), to a temporary name,
//! fsynced, then renamed, so a kill at any moment never leaves a half-written file under the final name.
//!
//! And the one way it reads the files it is given or keeps (config, rules, baselines, identities,
//! triage, state): [`open_input`] and [`read_input`] accept only a regular file (checked on the
//! opened handle, so a FIFO never blocks and `/dev/zero` is never read) of at most its
//! [`InputKind`]'s size limit, with errors that name the file and say what to do. Scan inputs and
//! Docker's logs are streams of any size and are read elsewhere.
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Create `dir` and its missing parents with mode 0700 (existing directories are left as they are).
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

/// A file being written under a temporary name next to its final path.
/// You MUST call [`AtomicFile::commit`]; dropping it removes the temporary file.
#[derive(Debug)]
pub struct AtomicFile {
    file: Option<io::BufWriter<File>>,
    tmp: PathBuf,
    dest: PathBuf,
}

/// A random part for a temporary or unique name (12 hex digits from the OS's random source): the
/// one way sidecar makes such names, so two writers (or a writer and a killed one's leftover) never
/// pick the same one.
pub fn random_suffix() -> io::Result<String> {
    let mut rnd = [0u8; 6];
    getrandom::fill(&mut rnd).map_err(|e| io::Error::other(e.to_string()))?;
    Ok(hex::encode(rnd))
}

impl AtomicFile {
    /// Start writing `dest` (mode 0600). The temporary name starts with `.` and ends in `.sidecar-tmp`.
    pub fn create(dest: &Path) -> io::Result<Self> {
        let dir = dest
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let name = dest
            .file_name()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
        let tmp = dir.join(format!(".{}.{}.sidecar-tmp", name.to_string_lossy(), random_suffix()?));
        let file = OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
        Ok(Self {
            file: Some(io::BufWriter::with_capacity(256 << 10, file)),
            tmp,
            dest: dest.to_path_buf(),
        })
    }

    /// Flush, fsync, rename into place and fsync the directory.
    pub fn commit(mut self) -> io::Result<()> {
        let file = self.file.take().expect("not committed twice");
        let file = file.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        drop(file);
        fs::rename(&self.tmp, &self.dest)?;
        if let Some(dir) = self.dest.parent().filter(|p| !p.as_os_str().is_empty()) {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.as_mut().expect("open").write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.as_mut().expect("open").flush()
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// The end of the last complete line (just past its `\n`) in `[from, len)` of `file`, or `from` when
/// there is none. Reads backwards with positioned reads: the last 4 KiB first, then blocks growing to 64 KiB.
pub fn last_line_end(file: &File, from: u64, len: u64) -> io::Result<u64> {
    use std::os::unix::fs::FileExt;
    let mut end = len;
    // Lines are short: the last one usually ends in the last few KiB (the bytes before it are
    // about to be read by the scan; reading them here as well doubled a busy guard's reads).
    let mut buf = vec![0u8; 4 << 10];
    while end > from {
        let start = end.saturating_sub(buf.len() as u64).max(from);
        let n = (end - start) as usize;
        file.read_exact_at(&mut buf[..n], start)?;
        if let Some(i) = memchr::memrchr(b'\n', &buf[..n]) {
            return Ok(start + i as u64 + 1);
        }
        end = start;
        if buf.len() < 64 << 10 {
            buf.resize(buf.len() * 4, 0);
        }
    }
    Ok(from)
}

/// Write `bytes` to `dest` atomically (0600).
pub fn write_atomic(dest: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut f = AtomicFile::create(dest)?;
    f.write_all(bytes)?;
    f.commit()
}

/// Create `dest` with `bytes` only if it does not exist yet (atomically: no reader ever sees a
/// partial file, and of two racing creators exactly one wins). Returns false when it already existed.
pub fn create_atomic_exclusive(dest: &Path, bytes: &[u8]) -> io::Result<bool> {
    let mut f = AtomicFile::create(dest)?;
    f.write_all(bytes)?;
    let file = f.file.take().expect("open").into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    drop(file);
    let linked = fs::hard_link(&f.tmp, dest);
    let _ = fs::remove_file(&f.tmp);
    match linked {
        Ok(()) => {
            if let Some(dir) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
                File::open(dir)?.sync_all()?;
            }
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

/// Mode bits of a path (for checks and tests).
pub fn mode(path: &Path) -> io::Result<u32> {
    Ok(fs::metadata(path)?.permissions().mode() & 0o7777)
}

/// Open `path` for reading without following a symbolic link in its last component: a link gives a
/// clear error (`ELOOP` is reported as "is a symbolic link: not followed"). Files under Docker's
/// root are opened this way, so that a link planted there cannot send reads or writes elsewhere.
pub fn open_nofollow(path: &Path) -> io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) {
                io::Error::other(format!("{}: is a symbolic link: not followed", path.display()))
            } else {
                e
            }
        })
}

/// What a file read by [`open_input`] is, and the largest size accepted for it. The limits are far
/// above anything legitimate: they only stop a wrong path (a disk image, a log) or a hostile file
/// from filling memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputKind {
    /// What the file is, for messages ("config file").
    pub what: &'static str,
    /// Largest size accepted, in bytes.
    pub limit: u64,
    /// What to do about a file over the limit.
    pub advice: &'static str,
    /// Follow a symbolic link in the last component. Files under Docker's root and the heartbeat
    /// are not followed.
    pub follow: bool,
}

const RIGHT_FILE: &str = "is this the right file?";

impl InputKind {
    /// The TOML config file: a complete one is about 5 KiB.
    pub const CONFIG: InputKind = InputKind::new("config file", 1 << 20, RIGHT_FILE);
    /// A rule file: gitleaks' own config has about 200 rules in 100 KiB.
    pub const RULES: InputKind = InputKind::new("rule file", 16 << 20, RIGHT_FILE);
    /// A gitleaks config (the same limit as rule files).
    pub const GITLEAKS: InputKind = InputKind::new("gitleaks config", 16 << 20, RIGHT_FILE);
    /// A baseline: fingerprints, or a previous `sidecar scan` JSON/JSONL output (about 500 bytes a
    /// finding: half a million findings).
    pub const BASELINE: InputKind = InputKind::new(
        "baseline",
        256 << 20,
        "is this the right file? A baseline of fingerprints alone, one a line, is 65 bytes a finding",
    );
    /// An age identity file or SSH private key (an age key is 74 bytes, an RSA key about 3 KiB).
    pub const IDENTITY: InputKind = InputKind::new("identity file", 64 << 10, RIGHT_FILE);
    /// A file of age or SSH recipients, one a line (an SSH RSA key is about 750 bytes).
    pub const RECIPIENTS: InputKind = InputKind::new("recipients file", 1 << 20, RIGHT_FILE);
    /// A file holding one secret (`alerts.webhook_url_file`, `AWS_…_FILE`).
    pub const SECRET: InputKind = InputKind::new("secret file", 64 << 10, RIGHT_FILE);
    /// An AWS shared credentials file.
    pub const AWS_CREDENTIALS: InputKind = InputKind::new("AWS credentials file", 1 << 20, RIGHT_FILE);
    /// Docker's `daemon.json`.
    pub const DAEMON_JSON: InputKind = InputKind::new("Docker daemon config", 16 << 20, RIGHT_FILE);
    /// A container's `config.v2.json` or `hostconfig.json`, under Docker's root (not followed).
    pub const CONTAINER_CONFIG: InputKind =
        InputKind::new("container config", 16 << 20, "it is not Docker's").nofollow();
    /// `triage.json`: one acknowledgement (a note, a name, a time) per secret.
    pub const TRIAGE: InputKind = InputKind::new(
        "triage file",
        64 << 20,
        "move it away (the acknowledgements in it are then forgotten)",
    );
    /// The guard's checkpoints and pending masks: a few hundred bytes per log file followed.
    pub const CHECKPOINTS: InputKind = InputKind::new(
        "state file",
        256 << 20,
        "move it away (logs are then scanned again from the start)",
    );
    /// A small state file: alerted fingerprints, the pause journal, a rotation's progress, the
    /// fleet's shipped list.
    pub const STATE: InputKind = InputKind::new("state file", 64 << 20, "move it away");
    /// The guard's heartbeat, a few hundred bytes (not followed).
    pub const HEARTBEAT: InputKind = InputKind::new("heartbeat", 64 << 10, "move it away").nofollow();
    /// The fingerprint key: exactly 32 bytes.
    pub const KEY: InputKind = InputKind::new("fingerprint key", 32, "it must hold exactly 32 bytes");

    const fn new(what: &'static str, limit: u64, advice: &'static str) -> Self {
        Self {
            what,
            limit,
            advice,
            follow: true,
        }
    }

    const fn nofollow(self) -> Self {
        Self { follow: false, ..self }
    }
}

/// `limit` bytes in words ("1 MiB").
fn human_limit(limit: u64) -> String {
    match limit {
        l if l >= 1 << 20 && l % (1 << 20) == 0 => format!("{} MiB", l >> 20),
        l if l >= 1 << 10 && l % (1 << 10) == 0 => format!("{} KiB", l >> 10),
        l => format!("{l} bytes"),
    }
}

fn too_large(path: &Path, kind: InputKind) -> io::Error {
    io::Error::new(
        io::ErrorKind::FileTooLarge,
        format!(
            "{} {}: larger than {}, the limit for a {}; {}",
            kind.what,
            crate::escape::terminal_path(path),
            human_limit(kind.limit),
            kind.what,
            kind.advice
        ),
    )
}

/// A file opened by [`open_input`]: reads fail once more than its kind's limit has been read (the
/// file grew after it was opened).
#[derive(Debug)]
pub struct InputFile {
    file: File,
    left: u64,
    path: PathBuf,
    kind: InputKind,
}

impl InputFile {
    /// The open file (for metadata, positioned reads).
    pub fn file(&self) -> &File {
        &self.file
    }
}

impl Read for InputFile {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // One byte past the limit is allowed through to tell "exactly the limit" from "larger".
        let room = (self.left + 1).min(buf.len() as u64) as usize;
        let n = self.file.read(&mut buf[..room])?;
        if n as u64 > self.left {
            return Err(too_large(&self.path, self.kind));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// Open `path` as a `kind` of input: it must be a regular file (a device, FIFO, socket or directory
/// is refused without reading or blocking) no larger than `kind.limit`. The type is checked on the
/// opened handle, which is opened non-blocking (a FIFO without a writer would block the open) and
/// made blocking again once it is known to be a regular file. Errors name the file and keep the
/// kind of the underlying error (`NotFound` for a missing file).
pub fn open_input(path: &Path, kind: InputKind) -> io::Result<InputFile> {
    use rustix::fs::OFlags;
    let shown = || crate::escape::terminal_path(path).into_owned();
    let mut flags = OFlags::NONBLOCK | OFlags::NOCTTY;
    if !kind.follow {
        flags |= OFlags::NOFOLLOW;
    }
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(flags.bits() as i32)
        .open(path)
        .map_err(|e| {
            let why = if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) && !kind.follow {
                "is a symbolic link: not followed; give the file itself".to_string()
            } else {
                format!("cannot open: {e}")
            };
            io::Error::new(e.kind(), format!("{} {}: {why}", kind.what, shown()))
        })?;
    let meta = file.metadata()?;
    let ft = meta.file_type();
    if !ft.is_file() {
        use std::os::unix::fs::FileTypeExt;
        let is = if ft.is_dir() {
            "a directory"
        } else if ft.is_fifo() {
            "a FIFO (named pipe)"
        } else if ft.is_char_device() {
            "a character device"
        } else if ft.is_block_device() {
            "a block device"
        } else if ft.is_socket() {
            "a socket"
        } else {
            "a special file"
        };
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{} {}: is {is}, not a regular file; give the path of the {} itself",
                kind.what,
                shown(),
                kind.what
            ),
        ));
    }
    if meta.len() > kind.limit {
        return Err(too_large(path, kind));
    }
    let blocking = rustix::fs::fcntl_getfl(&file)? - OFlags::NONBLOCK;
    rustix::fs::fcntl_setfl(&file, blocking)?;
    Ok(InputFile {
        file,
        left: kind.limit,
        path: path.to_path_buf(),
        kind,
    })
}

/// The whole content of `path`, opened as [`open_input`] does.
pub fn read_input(path: &Path, kind: InputKind) -> io::Result<Vec<u8>> {
    let mut f = open_input(path, kind)?;
    let mut bytes = Vec::with_capacity(f.file.metadata()?.len().min(kind.limit) as usize);
    f.read_to_end(&mut bytes).map_err(|e| match e.kind() {
        io::ErrorKind::FileTooLarge => e,
        k => io::Error::new(
            k,
            format!("{} {}: cannot read: {e}", kind.what, crate::escape::terminal_path(path)),
        ),
    })?;
    Ok(bytes)
}

/// The whole content of `path` as UTF-8 text, opened as [`open_input`] does.
pub fn read_input_string(path: &Path, kind: InputKind) -> io::Result<String> {
    String::from_utf8(read_input(path, kind)?).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{} {}: not UTF-8 text; is this the right file?",
                kind.what,
                crate::escape::terminal_path(path)
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_line_end_is_found_however_far_back_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log");
        // Newlines at these offsets, in a file of 300 000 bytes.
        for nl in [
            None,
            Some(0u64),
            Some(10),
            Some(4095),
            Some(4096),
            Some(20_000),
            Some(150_000),
            Some(299_999),
        ] {
            let mut bytes = vec![b'x'; 300_000];
            if let Some(i) = nl {
                bytes[i as usize] = b'\n';
            }
            fs::write(&p, &bytes).unwrap();
            let f = File::open(&p).unwrap();
            let want = nl.map_or(0, |i| i + 1);
            assert_eq!(last_line_end(&f, 0, 300_000).unwrap(), want, "newline at {nl:?}");
            // Not before `from`, nor past `len`.
            let from = 5;
            let want_from = nl.filter(|i| *i >= from).map_or(from, |i| i + 1);
            assert_eq!(
                last_line_end(&f, from, 300_000).unwrap(),
                want_from,
                "from 5, newline at {nl:?}"
            );
            assert_eq!(
                last_line_end(&f, 0, 10).unwrap(),
                nl.filter(|i| *i < 10).map_or(0, |i| i + 1)
            );
        }
    }

    #[test]
    fn atomic_write_is_private_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.txt");
        write_atomic(&p, b"hello").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"hello");
        assert_eq!(mode(&p).unwrap(), 0o600);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn dropped_without_commit_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.txt");
        let mut f = AtomicFile::create(&p).unwrap();
        f.write_all(b"partial").unwrap();
        drop(f);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn exclusive_create_keeps_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("key");
        assert!(create_atomic_exclusive(&p, b"first").unwrap());
        assert!(!create_atomic_exclusive(&p, b"second").unwrap());
        assert_eq!(fs::read(&p).unwrap(), b"first");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    const SMALL: InputKind = InputKind::new("test file", 16, "is this the right file?");

    fn input_err(path: &Path, kind: InputKind) -> io::Error {
        let started = std::time::Instant::now();
        let e = read_input(path, kind).unwrap_err();
        assert!(started.elapsed() < std::time::Duration::from_secs(1), "{e}");
        assert!(
            e.to_string().contains(&path.display().to_string()),
            "names the file: {e}"
        );
        e
    }

    #[test]
    fn inputs_up_to_the_limit_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        fs::write(&p, b"0123456789abcdef").unwrap();
        assert_eq!(read_input(&p, SMALL).unwrap(), b"0123456789abcdef");
        assert_eq!(read_input_string(&p, SMALL).unwrap(), "0123456789abcdef");
        fs::write(&p, b"").unwrap();
        assert_eq!(read_input(&p, SMALL).unwrap(), b"");
    }

    #[test]
    fn an_input_over_its_limit_is_refused_saying_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big.toml");
        fs::write(&p, vec![b'#'; 17]).unwrap();
        let e = input_err(&p, SMALL);
        assert_eq!(e.kind(), io::ErrorKind::FileTooLarge);
        assert!(
            e.to_string()
                .contains("larger than 16 bytes, the limit for a test file"),
            "{e}"
        );
        fs::write(&p, vec![b'#'; (1 << 20) + 1]).unwrap();
        let e = input_err(&p, InputKind::CONFIG);
        assert!(e.to_string().starts_with("config file "), "{e}");
        assert!(e.to_string().contains("larger than 1 MiB"), "{e}");
    }

    #[test]
    fn an_input_that_grows_past_its_limit_after_the_open_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("grows");
        fs::write(&p, b"0123456789").unwrap();
        let mut f = open_input(&p, SMALL).unwrap();
        fs::OpenOptions::new()
            .append(true)
            .open(&p)
            .unwrap()
            .write_all(b"0123456789")
            .unwrap();
        let e = f.read_to_end(&mut Vec::new()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::FileTooLarge, "{e}");
    }

    #[test]
    fn devices_fifos_and_directories_are_refused_without_reading() {
        let dir = tempfile::tempdir().unwrap();
        let e = input_err(Path::new("/dev/zero"), InputKind::CONFIG);
        assert!(
            e.to_string()
                .contains("is a character device, not a regular file; give the path of the config file itself"),
            "{e}"
        );
        let e = input_err(Path::new("/dev/urandom"), InputKind::IDENTITY);
        assert!(
            e.to_string()
                .contains("identity file /dev/urandom: is a character device"),
            "{e}"
        );
        let e = input_err(dir.path(), InputKind::RULES);
        assert!(e.to_string().contains("is a directory"), "{e}");
        let fifo = dir.path().join("fifo");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        let e = input_err(&fifo, InputKind::BASELINE);
        assert!(e.to_string().contains("is a FIFO (named pipe)"), "{e}");
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn state_inputs_do_not_follow_links_and_missing_files_keep_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("real");
        fs::write(&target, b"{}").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert_eq!(read_input(&link, InputKind::CONFIG).unwrap(), b"{}");
        let e = input_err(&link, InputKind::HEARTBEAT);
        assert!(e.to_string().contains("is a symbolic link: not followed"), "{e}");
        let e = input_err(&dir.path().join("absent"), InputKind::TRIAGE);
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert!(e.to_string().starts_with("triage file "), "{e}");
    }

    #[test]
    fn private_dirs() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a/b");
        create_private_dir(&p).unwrap();
        assert_eq!(mode(&p).unwrap(), 0o700);
    }
}
