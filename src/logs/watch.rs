//! Which containers' logs changed: inotify on Docker's `containers/` directory and on each container
//! directory (no recursion beyond, no symlink followed), read in batches by the guard's own thread.
//!
//! The guard reads the queue only once per batch: the kernel merges an event identical to the last
//! one queued (the same file modified again), so a container writing thousands of lines a second
//! costs a few events per batch, not one wake-up per line.
//!
//! A second, quiet queue holds only renames in container directories: the guard waits between
//! batches on it, and a rotation of a live log (Docker renames `<id>-json.log` to `.1` and, with
//! `compress`, compresses `.1` at once and removes it) ends the wait, so that the last lines of the
//! rotated file are masked in place before Docker's compression reads them (otherwise in a rewrite
//! of the `.gz`: a decompression, a scan and a compression). It takes a second watch per container
//! directory from `fs.inotify.max_user_watches`, and is given up when those run out.
use std::collections::{HashMap, HashSet};
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::fs::inotify::{self, CreateFlags, ReadFlags, WatchFlags};

/// The start of the names of the guard's own temporary files in container directories (a `.gz`
/// being rewritten): their events are the guard's own doing and are not changes to look at.
pub const TMP_PREFIX: &str = ".sidecar-";

/// What a batch of events says.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// Container directories (ids) where something changed.
    pub containers: HashSet<String>,
    /// Those where something else happened than writes to the live log (`<id>-json.log`): a file
    /// created, renamed, removed or closed, or the directory itself created or removed.
    pub structural: HashSet<String>,
    /// Events were lost (queue overflow) or a watch could not be added: check everything.
    pub everything: bool,
}

#[derive(Debug, PartialEq, Eq)]
enum Kind {
    /// Nothing to look at: writes to a file other than the live log (Docker writing a `.gz`, the
    /// guard's own masks in a rotated file), or anything about the guard's temporary files.
    Ignored,
    /// Writes to the live log (`<id>-json.log`): only that file needs a look.
    LiveWrite,
    /// A file created, renamed or removed, a `.gz` complete (closed), or the directory itself.
    Structural,
}

/// What an event on `file` in the directory of container `id` calls for.
fn kind_of(flags: ReadFlags, file: &[u8], id: &str) -> Kind {
    if file.starts_with(TMP_PREFIX.as_bytes()) {
        return Kind::Ignored;
    }
    let writes = flags.difference(ReadFlags::MODIFY | ReadFlags::CLOSE_WRITE).is_empty();
    if !writes || file.is_empty() {
        return Kind::Structural;
    }
    if file.strip_suffix(b"-json.log") == Some(id.as_bytes()) {
        Kind::LiveWrite
    } else if flags.contains(ReadFlags::CLOSE_WRITE) && file.ends_with(b".gz") {
        Kind::Structural
    } else {
        Kind::Ignored
    }
}

/// inotify watches on `containers/` and on each container directory in it.
#[derive(Debug)]
pub struct Watch {
    fd: OwnedFd,
    root: PathBuf,
    root_wd: i32,
    /// Watch descriptor → container directory name.
    dirs: HashMap<i32, String>,
    buf: Vec<MaybeUninit<u8>>,
    /// Renames in container directories only (see the module's documentation); `None` when a
    /// second inotify instance could not be made (waits are then plain sleeps).
    moves: Option<OwnedFd>,
    /// Container directories left without a watch when `fs.inotify.max_user_watches` ran out
    /// (see [`Self::unwatched`]).
    unwatched: HashSet<String>,
    /// When watching them was last tried again.
    retried: Option<Instant>,
    /// When [`Self::unwatched_due`] last gave them.
    looked: Option<Instant>,
    /// Their number as [`Self::unwatched_changed`] last gave it.
    reported: Option<usize>,
    /// The warning that watches ran out was logged, and no note since that every directory is
    /// watched again.
    warned: bool,
}

/// `add_watch` failed for want of a watch (or of kernel memory for one): worth trying again.
fn no_watch_left(e: &io::Error) -> bool {
    [rustix::io::Errno::NOSPC, rustix::io::Errno::NOMEM]
        .iter()
        .any(|n| e.raw_os_error() == Some(n.raw_os_error()))
}

/// How often the directories without a watch are given to be looked at ([`Watch::unwatched_due`]).
pub const UNWATCHED_LOOK: Duration = Duration::from_millis(100);

const ROOT_EVENTS: WatchFlags = WatchFlags::CREATE
    .union(WatchFlags::DELETE)
    .union(WatchFlags::MOVED_FROM)
    .union(WatchFlags::MOVED_TO)
    .union(WatchFlags::ONLYDIR)
    .union(WatchFlags::DONT_FOLLOW);

const DIR_EVENTS: WatchFlags = WatchFlags::MODIFY
    .union(WatchFlags::CLOSE_WRITE)
    .union(WatchFlags::CREATE)
    .union(WatchFlags::DELETE)
    .union(WatchFlags::MOVED_FROM)
    .union(WatchFlags::MOVED_TO)
    .union(WatchFlags::ONLYDIR)
    .union(WatchFlags::DONT_FOLLOW);

/// What the quiet queue watches in each container directory: a file renamed away.
const MOVE_EVENTS: WatchFlags = WatchFlags::MOVED_FROM
    .union(WatchFlags::ONLYDIR)
    .union(WatchFlags::DONT_FOLLOW);

impl Watch {
    /// Watch `root` (Docker's `containers/`) and every directory in it. Fails when inotify is not
    /// available or `root` cannot be watched (e.g. `fs.inotify.max_user_watches` reached).
    pub fn new(root: &Path) -> io::Result<Self> {
        let fd = inotify::init(CreateFlags::NONBLOCK | CreateFlags::CLOEXEC)?;
        let root_wd = inotify::add_watch(&fd, root, ROOT_EVENTS)?;
        let moves = inotify::init(CreateFlags::NONBLOCK | CreateFlags::CLOEXEC)
            .map_err(|e| tracing::debug!("log guard: no second inotify instance ({e}): rotations wait for the batch"))
            .ok();
        let mut w = Self {
            fd,
            root: root.to_path_buf(),
            root_wd,
            dirs: HashMap::new(),
            buf: vec![MaybeUninit::uninit(); 64 << 10],
            moves,
            unwatched: HashSet::new(),
            retried: None,
            looked: None,
            reported: None,
            warned: false,
        };
        std::fs::read_dir(root)?;
        w.rewatch();
        Ok(w)
    }

    /// Watch every directory in the root (again: adding a watch twice is harmless). After lost
    /// events, a directory created meanwhile would otherwise be seen only by the periodic rescan.
    pub fn rewatch(&mut self) {
        let Ok(entries) = std::fs::read_dir(&self.root) else {
            return;
        };
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                let name = e.file_name().to_string_lossy().into_owned();
                if let Err(err) = self.add(&name) {
                    // Removed meanwhile, or no watch left (see `Self::unwatched`).
                    tracing::debug!("log guard: cannot watch {}: {err}", self.root.join(&name).display());
                }
            }
        }
    }

    /// Container directories inotify has no watch left for: nothing tells of their writes.
    /// Watching each is tried again at most once a second, at a [`Self::drain`], whose changes then
    /// name each of them (a container that was not followed yet, its configuration written after
    /// its directory, is then found). A warning is logged when the first one is left out, and a
    /// note when every directory is watched again.
    pub fn unwatched(&self) -> &HashSet<String> {
        &self.unwatched
    }

    /// How many directories are without a watch, when that changed since the last call (the first
    /// call gives it).
    pub fn unwatched_changed(&mut self) -> Option<usize> {
        let n = self.unwatched.len();
        (self.reported != Some(n)).then(|| {
            self.reported = Some(n);
            n
        })
    }

    /// The directories without a watch, to be looked at: at most every [`UNWATCHED_LOOK`] (each
    /// look lists a directory and `lstat`s its files; a busy guard wakes every few milliseconds),
    /// and none otherwise.
    pub fn unwatched_due(&mut self) -> Vec<String> {
        if self.unwatched.is_empty() || self.looked.is_some_and(|t| t.elapsed() < UNWATCHED_LOOK) {
            return Vec::new();
        }
        self.looked = Some(Instant::now());
        self.unwatched.iter().cloned().collect()
    }

    fn add(&mut self, name: &str) -> io::Result<()> {
        let r = self.try_add(name);
        match &r {
            Ok(()) => {
                if self.unwatched.remove(name) && self.unwatched.is_empty() && self.warned {
                    self.warned = false;
                    tracing::info!("log guard: every container directory is watched again");
                }
            }
            Err(e) if no_watch_left(e) => {
                if !self.warned {
                    self.warned = true;
                    tracing::warn!(
                        "log guard: no inotify watch left for {} (fs.inotify.max_user_watches reached): such \
                         containers are listed several times a second instead of being read on each write, \
                         which costs CPU; raise the limit",
                        self.root.join(name).display()
                    );
                }
                self.unwatched.insert(name.to_string());
            }
            // Gone, or not a directory (a symlink is never followed).
            Err(_) => {
                self.unwatched.remove(name);
            }
        }
        r
    }

    /// Try again, at most once a second, to watch the directories left without a watch; returns
    /// those still there, watched now or not (what was written before a new watch caused no
    /// event).
    fn retry_unwatched(&mut self) -> Vec<String> {
        if self.unwatched.is_empty() || self.retried.is_some_and(|t| t.elapsed() < Duration::from_secs(1)) {
            return Vec::new();
        }
        self.retried = Some(Instant::now());
        let names: Vec<String> = self.unwatched.iter().cloned().collect();
        names
            .into_iter()
            .filter(|name| self.add(name).as_ref().map_or_else(no_watch_left, |_| true))
            .collect()
    }

    fn try_add(&mut self, name: &str) -> io::Result<()> {
        let path = self.root.join(name);
        let wd = match inotify::add_watch(&self.fd, &path, DIR_EVENTS) {
            Err(rustix::io::Errno::NOSPC) if self.moves.is_some() => {
                // `fs.inotify.max_user_watches` reached: the rename watches give their places to
                // the watches that find changes (rotations then wait for the end of the batch).
                tracing::debug!("log guard: inotify watches exhausted: rotations wait for the batch");
                self.moves = None;
                inotify::add_watch(&self.fd, &path, DIR_EVENTS)?
            }
            r => r?,
        };
        self.dirs.insert(wd, name.to_string());
        if let Some(moves) = &self.moves {
            if let Err(e) = inotify::add_watch(moves, &path, MOVE_EVENTS) {
                // Its rotations then wait for the end of the batch.
                tracing::debug!("log guard: cannot watch {} for rotations: {e}", path.display());
            }
        }
        Ok(())
    }

    /// Sleep for `timeout`, or less when a live log (`*-json.log`) is renamed meanwhile (Docker
    /// rotating it; or events were lost): true then. Renames before the last [`Self::drain`] that
    /// were not waited for also end it at once.
    pub fn pause(&mut self, timeout: Duration) -> bool {
        let Some(moves) = &self.moves else {
            std::thread::sleep(timeout);
            return false;
        };
        let deadline = Instant::now() + timeout;
        let mut buf = [MaybeUninit::<u8>::uninit(); 4096];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            match rustix::event::poll(&mut [PollFd::new(moves, PollFlags::IN)], Some(&timespec(left))) {
                Ok(0) => return false,
                Ok(_) | Err(rustix::io::Errno::INTR) => {}
                Err(e) => {
                    tracing::debug!("log guard: waiting for rotations: {e}");
                    std::thread::sleep(left);
                    return false;
                }
            }
            let mut reader = inotify::Reader::new(moves, &mut buf);
            let mut rotated = false;
            loop {
                match reader.next() {
                    Ok(ev) => {
                        let live = ev.file_name().is_some_and(|n| n.to_bytes().ends_with(b"-json.log"));
                        rotated |= ev.events().contains(ReadFlags::QUEUE_OVERFLOW) || live;
                    }
                    Err(rustix::io::Errno::WOULDBLOCK) | Err(rustix::io::Errno::INTR) => break,
                    Err(e) => {
                        tracing::debug!("log guard: reading rotations: {e}");
                        std::thread::sleep(left);
                        return false;
                    }
                }
            }
            if rotated {
                return true;
            }
        }
    }

    /// Discard the renames queued for [`Self::pause`]: read before the main queue, they are in it.
    fn discard_moves(&mut self) {
        let Some(moves) = &self.moves else { return };
        let mut buf = [MaybeUninit::<u8>::uninit(); 4096];
        let mut reader = inotify::Reader::new(moves, &mut buf);
        while reader.next().is_ok() {}
    }

    /// Wait at most `timeout` for an event; true when one is queued.
    pub fn wait(&self, timeout: Duration) -> io::Result<bool> {
        let mut fds = [PollFd::new(&self.fd, PollFlags::IN)];
        match rustix::event::poll(&mut fds, Some(&timespec(timeout))) {
            Ok(n) => Ok(n > 0),
            Err(rustix::io::Errno::INTR) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Read every queued event.
    pub fn drain(&mut self) -> io::Result<Changes> {
        self.discard_moves();
        let mut changes = Changes::default();
        let mut new_dirs = Vec::new();
        for name in self.retry_unwatched() {
            changes.structural.insert(name.clone());
            changes.containers.insert(name);
        }
        let mut reader = inotify::Reader::new(&self.fd, &mut self.buf);
        loop {
            let ev = match reader.next() {
                Ok(ev) => ev,
                Err(rustix::io::Errno::WOULDBLOCK) | Err(rustix::io::Errno::INTR) => break,
                Err(e) => return Err(e.into()),
            };
            let flags = ev.events();
            if flags.contains(ReadFlags::QUEUE_OVERFLOW) {
                changes.everything = true;
                continue;
            }
            if ev.wd() == self.root_wd {
                let Some(name) = ev.file_name().map(|n| n.to_string_lossy().into_owned()) else {
                    continue;
                };
                if flags.intersects(ReadFlags::CREATE | ReadFlags::MOVED_TO) && flags.contains(ReadFlags::ISDIR) {
                    new_dirs.push(name.clone());
                } else if flags.intersects(ReadFlags::DELETE | ReadFlags::MOVED_FROM) {
                    self.unwatched.remove(&name);
                }
                changes.structural.insert(name.clone());
                changes.containers.insert(name);
            } else if flags.contains(ReadFlags::IGNORED) {
                // The directory is gone (or the watch removed).
                if let Some(name) = self.dirs.remove(&ev.wd()) {
                    changes.structural.insert(name.clone());
                    changes.containers.insert(name);
                }
            } else if let Some(name) = self.dirs.get(&ev.wd()) {
                let file = ev.file_name().map(|f| f.to_bytes()).unwrap_or_default();
                // Thousands of events a second from a few containers: a name is copied once.
                let note = |set: &mut HashSet<String>| {
                    if !set.contains(name) {
                        set.insert(name.clone());
                    }
                };
                match kind_of(flags, file, name) {
                    Kind::Ignored => {}
                    Kind::LiveWrite => note(&mut changes.containers),
                    Kind::Structural => {
                        note(&mut changes.structural);
                        note(&mut changes.containers);
                    }
                }
            }
        }
        for name in new_dirs {
            match self.add(&name) {
                // In the changes already, and then looked at as `Self::unwatched` says.
                Err(e) if no_watch_left(&e) => {}
                Err(e) => {
                    // Not watched: a full look now (then the rescans).
                    tracing::debug!("log guard: cannot watch {}: {e}", self.root.join(&name).display());
                    changes.everything = true;
                }
                Ok(()) => {}
            }
        }
        Ok(changes)
    }

    /// Directories watched (the containers' and the root).
    pub fn watched(&self) -> usize {
        self.dirs.len() + 1
    }
}

/// `d` as poll(2) takes it.
fn timespec(d: Duration) -> Timespec {
    Timespec {
        tv_sec: d.as_secs() as _,
        tv_nsec: d.subsec_nanos() as _,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::time::Instant;

    #[test]
    fn changes_in_container_directories_are_batched_per_container() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        std::fs::create_dir(root.join("aaa")).unwrap();
        let mut w = Watch::new(root).unwrap();
        assert!(!w.wait(Duration::from_millis(10)).unwrap(), "nothing yet");
        let mut log = std::fs::File::create(root.join("aaa/aaa-json.log")).unwrap();
        for _ in 0..10_000 {
            log.write_all(b"{\"log\":\"x\\n\"}\n").unwrap();
        }
        // A new container directory, and a file in it right away.
        std::fs::create_dir(root.join("bbb")).unwrap();
        assert!(w.wait(Duration::from_secs(1)).unwrap());
        let c = w.drain().unwrap();
        assert_eq!(c.containers, HashSet::from(["aaa".to_string(), "bbb".to_string()]));
        assert!(!c.everything);
        // Created in aaa/ (structural); bbb/ itself is new.
        assert_eq!(c.structural, c.containers);
        // Only writes to the live log: not structural.
        log.write_all(b"{\"log\":\"y\\n\"}\n").unwrap();
        assert!(w.wait(Duration::from_secs(1)).unwrap());
        let c = w.drain().unwrap();
        assert_eq!(c.containers, HashSet::from(["aaa".to_string()]));
        assert!(c.structural.is_empty());
        std::fs::write(root.join("bbb/bbb-json.log"), b"x\n").unwrap();
        std::fs::rename(root.join("aaa/aaa-json.log"), root.join("aaa/aaa-json.log.1")).unwrap();
        let t = Instant::now();
        assert!(w.wait(Duration::from_secs(1)).unwrap());
        assert!(t.elapsed() < Duration::from_millis(500));
        let c = w.drain().unwrap();
        assert_eq!(c.containers, HashSet::from(["aaa".to_string(), "bbb".to_string()]));
        assert_eq!(c.structural, c.containers, "a rename, a new file");
        std::fs::remove_dir_all(root.join("bbb")).unwrap();
        assert!(w.wait(Duration::from_secs(1)).unwrap());
        assert!(w.drain().unwrap().containers.contains("bbb"));
        assert_eq!(w.watched(), 2, "the removed directory's watch is gone");
    }

    #[test]
    fn a_rotation_ends_the_pause_and_writes_do_not() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        std::fs::create_dir(root.join("aaa")).unwrap();
        let mut w = Watch::new(root).unwrap();
        let live = root.join("aaa/aaa-json.log");
        let mut log = std::fs::File::create(&live).unwrap();
        log.write_all(b"{\"log\":\"x\\n\"}\n").unwrap();
        std::fs::write(root.join("aaa/aaa-json.log.3.gz"), b"x").unwrap();
        std::fs::rename(root.join("aaa/aaa-json.log.3.gz"), root.join("aaa/aaa-json.log.4.gz")).unwrap();
        let t = Instant::now();
        assert!(
            !w.pause(Duration::from_millis(150)),
            "writes and other renames do not end it"
        );
        assert!(t.elapsed() >= Duration::from_millis(150));
        // A rename before the pause, not drained: it ends the pause at once.
        std::fs::rename(&live, root.join("aaa/aaa-json.log.1")).unwrap();
        let t = Instant::now();
        assert!(w.pause(Duration::from_secs(5)));
        assert!(t.elapsed() < Duration::from_secs(1));
        // Drained with the main queue: the next pause waits again.
        let c = w.drain().unwrap();
        assert!(c.structural.contains("aaa"));
        assert!(!w.pause(Duration::from_millis(50)));
        // A rotation during the pause ends it.
        let renamer = std::thread::spawn({
            let (from, to) = (live.clone(), root.join("aaa/aaa-json.log.1"));
            move || {
                std::thread::sleep(Duration::from_millis(100));
                std::fs::write(&from, b"{}\n").unwrap();
                std::fs::rename(from, to).unwrap();
            }
        });
        let t = Instant::now();
        assert!(w.pause(Duration::from_secs(5)));
        assert!(t.elapsed() < Duration::from_secs(2));
        renamer.join().unwrap();
    }

    #[test]
    fn writes_to_rotated_files_and_the_guards_temporaries_are_not_changes() {
        let m = ReadFlags::MODIFY;
        let c = ReadFlags::CLOSE_WRITE;
        let id = "aaa";
        assert_eq!(kind_of(m, b"aaa-json.log", id), Kind::LiveWrite);
        assert_eq!(kind_of(c, b"aaa-json.log", id), Kind::LiveWrite);
        assert_eq!(kind_of(m | c, b"aaa-json.log", id), Kind::LiveWrite);
        assert_eq!(
            kind_of(m, b"bbb-json.log", id),
            Kind::Ignored,
            "not this container's live log"
        );
        assert_eq!(kind_of(m, b"aaa-json.log.1", id), Kind::Ignored, "the guard's masks");
        assert_eq!(
            kind_of(m, b"aaa-json.log.1.gz", id),
            Kind::Ignored,
            "Docker still writing it"
        );
        assert_eq!(kind_of(c, b"aaa-json.log.1.gz", id), Kind::Structural, "complete");
        assert_eq!(kind_of(c, b"aaa-json.log.1", id), Kind::Ignored);
        for f in [
            ReadFlags::CREATE,
            ReadFlags::DELETE,
            ReadFlags::MOVED_FROM,
            ReadFlags::MOVED_TO,
        ] {
            assert_eq!(kind_of(f, b"aaa-json.log", id), Kind::Structural);
            assert_eq!(kind_of(f, b"aaa-json.log.3.gz", id), Kind::Structural);
            assert_eq!(kind_of(f | m, b"aaa-json.log.1", id), Kind::Structural);
            assert_eq!(kind_of(f, b".sidecar-0a1b2c.tmp", id), Kind::Ignored);
        }
        assert_eq!(kind_of(ReadFlags::DELETE_SELF, b"", id), Kind::Structural);
    }

    #[test]
    fn after_lost_events_every_directory_is_watched_again() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let mut w = Watch::new(root).unwrap();
        // Its creation event is never read (as after a queue overflow).
        std::fs::create_dir(root.join("ddd")).unwrap();
        assert_eq!(w.watched(), 1);
        w.rewatch();
        assert_eq!(w.watched(), 2);
        w.rewatch();
        assert_eq!(w.watched(), 2, "watching twice is harmless");
        std::fs::write(root.join("ddd/ddd-json.log"), b"x\n").unwrap();
        assert!(w.wait(Duration::from_secs(1)).unwrap());
        assert!(w.drain().unwrap().containers.contains("ddd"));
    }

    #[test]
    fn a_symlinked_container_directory_is_not_watched_through() {
        let tmp = tempfile::tempdir().unwrap();
        let (root, outside) = (tmp.path().join("containers"), tmp.path().join("outside"));
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("ccc")).unwrap();
        let mut w = Watch::new(&root).unwrap();
        assert_eq!(w.watched(), 1);
        std::fs::write(outside.join("x-json.log"), b"x\n").unwrap();
        assert!(!w.wait(Duration::from_millis(100)).unwrap());
        assert!(w.drain().unwrap().containers.is_empty());
    }

    /// With `fs.inotify.max_user_watches` reached, the rename watches give their places to the
    /// watches that find changes: every container directory is still watched, rotations wait for
    /// the end of the batch, and a directory that cannot be watched asks for a full look. Runs in a
    /// user namespace of its own (`unshare --user`), whose limit is lowered without touching the
    /// host's.
    #[test]
    fn when_inotify_watches_run_out_the_rename_watches_give_way() {
        const INSIDE: &str = "SIDECAR_TEST_INSIDE_USER_NAMESPACE";
        const NAME: &str = "logs::watch::tests::when_inotify_watches_run_out_the_rename_watches_give_way";
        const NO_LIMIT: &str = "no inotify limit of its own";
        if std::env::var_os(INSIDE).is_none() {
            let out = std::process::Command::new("unshare")
                .args(["--user", "--map-root-user"])
                .arg(std::env::current_exe().unwrap())
                .args(["--exact", NAME, "--nocapture", "--test-threads", "1"])
                .env(INSIDE, "1")
                .output()
                .expect("unshare (util-linux) runs this test in a user namespace");
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            if !text.contains("running 1 test") || text.contains(NO_LIMIT) {
                // Where unprivileged user namespaces are restricted.
                assert!(std::env::var_os("CI").is_none(), "CI: {text}");
                crate::say!("skipped: a user namespace with an inotify limit of its own cannot be made: {text}");
                return;
            }
            assert!(out.status.success() && text.contains("1 passed"), "{text}");
            return;
        }
        // The root, one directory in both queues, one in the main queue: then none left.
        if let Err(e) = std::fs::write("/proc/sys/user/max_inotify_watches", "4") {
            crate::say!("{NO_LIMIT}: {e}");
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        for d in ["aaa", "bbb", "ccc"] {
            std::fs::create_dir(root.join(d)).unwrap();
        }
        let mut w = Watch::new(root).unwrap();
        assert_eq!(w.watched(), 4, "every container directory is watched");
        assert!(w.moves.is_none(), "the rename watches gave way");
        for d in ["aaa", "bbb", "ccc"] {
            std::fs::write(root.join(format!("{d}/{d}-json.log")), b"x\n").unwrap();
        }
        assert!(w.wait(Duration::from_secs(1)).unwrap());
        let c = w.drain().unwrap();
        assert_eq!(c.containers.len(), 3);
        assert!(!c.everything);
        // A rotation no longer ends the pause, but is in the next batch.
        std::fs::rename(root.join("bbb/bbb-json.log"), root.join("bbb/bbb-json.log.1")).unwrap();
        let t = Instant::now();
        assert!(!w.pause(Duration::from_millis(200)));
        assert!(t.elapsed() >= Duration::from_millis(200));
        let c = w.drain().unwrap();
        assert!(c.structural.contains("bbb"));
        // A new container that cannot be watched: a full look (the periodic rescan follows it).
        std::fs::create_dir(root.join("ddd")).unwrap();
        assert!(w.wait(Duration::from_secs(1)).unwrap());
        let c = w.drain().unwrap();
        assert!(c.containers.contains("ddd") && c.structural.contains("ddd"));
        assert!(!c.everything, "no full look of every container for it");
        assert_eq!(w.watched(), 4);
        assert_eq!(w.unwatched(), &HashSet::from(["ddd".to_string()]));
        assert_eq!(w.unwatched_changed(), Some(1));
        assert_eq!(w.unwatched_changed(), None, "unchanged");
        // Given to be looked at, at most every UNWATCHED_LOOK.
        assert_eq!(w.unwatched_due(), vec!["ddd".to_string()]);
        assert!(w.unwatched_due().is_empty());
        std::thread::sleep(UNWATCHED_LOOK);
        assert_eq!(w.unwatched_due(), vec!["ddd".to_string()]);
        // A watch freed (a container removed): the directory left out is watched at the next
        // retry (at most one a second).
        std::fs::remove_dir_all(root.join("aaa")).unwrap();
        assert!(w.wait(Duration::from_secs(1)).unwrap());
        let mut looked = w.drain().unwrap().structural;
        std::thread::sleep(Duration::from_millis(1100));
        looked.extend(w.drain().unwrap().structural);
        assert!(w.unwatched().is_empty());
        assert_eq!(w.unwatched_changed(), Some(0));
        assert!(
            looked.contains("ddd"),
            "a look at it once watched: what came before caused no event"
        );
        std::fs::write(root.join("ddd/ddd-json.log"), b"x\n").unwrap();
        assert!(w.wait(Duration::from_secs(1)).unwrap());
        assert!(w.drain().unwrap().containers.contains("ddd"));
        assert_eq!(w.watched(), 4);
        // None at all: the guard checks every second instead (see `Guard::run`).
        std::fs::write("/proc/sys/user/max_inotify_watches", "0").unwrap();
        assert!(Watch::new(root).is_err());
    }
}
