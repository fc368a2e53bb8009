//! Log rotation for containers whose json-file log has no `max-size` (neither their own nor the
//! daemon's default), and retention of rotated and archived logs.
//!
//! A live log past the policy size is archived, masked and gzip-compressed, under sidecar's own
//! directory (`<state_dir>/log-archive/<container id>/`), and then truncated in place. Truncating is
//! safe only because Docker opens the file with `O_APPEND` (its next write lands at the new end)
//! and, without `max-size`, keeps no size of its own. What remains is a window of microseconds
//! between the last size check and the truncate: a line written in it is lost (see README).
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::fsutil::{create_private_dir, AtomicFile};
use crate::logs::masking::MaskPlan;
use crate::logs::scan::Scanner;

/// What to rotate and keep.
#[derive(Debug, Clone)]
pub struct RotateOptions {
    /// Docker's data root.
    pub docker_root: PathBuf,
    /// Where archives go (`<state_dir>/log-archive`).
    pub archive_dir: PathBuf,
    /// Live logs larger than this are archived and truncated (0: never).
    pub max_bytes: u64,
    /// Rotated Docker logs and archives older than this are removed (`None`: kept).
    pub keep: Option<Duration>,
    /// The daemon's default `max-size` from daemon.json (`Err`: daemon.json unreadable, so
    /// nothing is rotated: a container may have a size Docker tracks).
    pub daemon_max_size: Result<Option<String>, String>,
    /// Only list what would be done.
    pub dry_run: bool,
}

/// One action, done or (dry run) planned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// A live log was archived (in `segments` files under `archive_dir`) and truncated.
    Rotated {
        /// The live log.
        log: PathBuf,
        /// Where its archives are.
        archive_dir: PathBuf,
        /// Archive files written by this rotation.
        segments: usize,
        /// Bytes archived.
        bytes: u64,
        /// Secrets masked in the archive.
        masked: usize,
    },
    /// An old rotated log or archive was removed.
    Removed(PathBuf),
}

/// The `max-size` a container's log effectively has, from its `hostconfig.json` and the daemon's
/// default; `Ok(None)`: none (a json-file log that grows without bound); `Err`: unknown.
pub fn effective_max_size(
    container_dir: &Path,
    daemon_default: &Result<Option<String>, String>,
) -> Result<Option<String>, String> {
    let path = container_dir.join("hostconfig.json");
    let file =
        crate::fsutil::open_input(&path, crate::fsutil::InputKind::CONTAINER_CONFIG).map_err(|e| e.to_string())?;
    let v: serde_json::Value =
        serde_json::from_reader(std::io::BufReader::new(file)).map_err(|e| format!("{}: {e}", path.display()))?;
    let log = &v["LogConfig"];
    let driver = log["Type"].as_str().unwrap_or("");
    if !(driver.is_empty() || driver == "json-file") {
        return Ok(Some(format!("{driver} driver")));
    }
    if let Some(size) = log["Config"]["max-size"].as_str() {
        return Ok(Some(size.to_string()));
    }
    daemon_default.clone()
}

/// Rotate and clean up; returns what was done and the problems (path, reason).
pub fn rotate(scanner: &Scanner<'_>, opts: &RotateOptions) -> (Vec<Action>, Vec<(PathBuf, String)>) {
    let mut actions = Vec::new();
    let mut errors = Vec::new();
    let containers = opts.docker_root.join("containers");
    let dirs = match fs::read_dir(&containers) {
        Ok(rd) => {
            let mut v: Vec<PathBuf> = rd.flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect();
            v.sort();
            v
        }
        Err(e) => {
            errors.push((containers, e.to_string()));
            return (actions, errors);
        }
    };
    for dir in dirs {
        let Some(id) = dir.file_name().map(|n| n.to_string_lossy().into_owned()) else {
            continue;
        };
        let live = dir.join(format!("{id}-json.log"));
        if opts.max_bytes > 0 {
            match fs::metadata(&live) {
                Ok(md) if md.len() > opts.max_bytes => match effective_max_size(&dir, &opts.daemon_max_size) {
                    Ok(None) => match rotate_one(scanner, &live, &opts.archive_dir.join(&id), opts.dry_run) {
                        Ok(Some(a)) => actions.push(a),
                        Ok(None) => {}
                        Err(e) => errors.push((live.clone(), e.to_string())),
                    },
                    Ok(Some(_)) => {} // Docker rotates it.
                    Err(e) => errors.push((live.clone(), format!("log config unknown, not rotated: {e}"))),
                },
                _ => {}
            }
        }
        if let Some(keep) = opts.keep {
            // Docker's rotated files (`<id>-json.log.N[.gz]`), never the live one.
            let prefix = format!("{id}-json.log.");
            remove_old(&dir, keep, opts.dry_run, &mut actions, &mut errors, |n| {
                n.starts_with(&prefix)
            });
        }
    }
    if let Some(keep) = opts.keep {
        if let Ok(rd) = fs::read_dir(&opts.archive_dir) {
            let mut subdirs: Vec<PathBuf> = rd.flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect();
            subdirs.sort();
            for d in subdirs {
                remove_old(&d, keep, opts.dry_run, &mut actions, &mut errors, |n| {
                    n.ends_with(".gz") && !n.starts_with('.')
                });
            }
        }
    }
    (actions, errors)
}

fn remove_old(
    dir: &Path,
    keep: Duration,
    dry_run: bool,
    actions: &mut Vec<Action>,
    errors: &mut Vec<(PathBuf, String)>,
    wanted: impl Fn(&str) -> bool,
) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    let now = SystemTime::now();
    let mut old: Vec<PathBuf> = rd
        .flatten()
        .filter(|e| wanted(&e.file_name().to_string_lossy()))
        .filter(|e| {
            e.metadata()
                .ok()
                .filter(|m| m.is_file())
                .and_then(|m| m.modified().ok())
                .is_some_and(|t| now.duration_since(t).is_ok_and(|age| age > keep))
        })
        .map(|e| e.path())
        .collect();
    old.sort();
    for p in old {
        if !dry_run {
            if let Err(e) = fs::remove_file(&p) {
                if e.kind() != io::ErrorKind::NotFound {
                    errors.push((p, e.to_string()));
                }
                continue;
            }
        }
        actions.push(Action::Removed(p));
    }
}

/// Where rotation of one live log stands: its bytes up to `archived_to` are in committed archives.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Progress {
    /// Inode of the live log.
    ino: u64,
    /// Bytes archived so far.
    archived_to: u64,
    /// BLAKE3 of the (up to) 64 bytes before `archived_to`: tells a file truncated and refilled
    /// since (start again at 0) from the same file grown further (go on from `archived_to`).
    tail: String,
}

const PROGRESS_NAME: &str = "rotation.json";

fn tail_hash(file: &mut File, end: u64) -> io::Result<String> {
    let start = end.saturating_sub(64);
    let mut buf = vec![0u8; (end - start) as usize];
    file.seek(SeekFrom::Start(start))?;
    file.read_exact(&mut buf)?;
    Ok(blake3::hash(&buf).to_hex().to_string())
}

/// Where archiving of `file` resumes: after the committed archives of an earlier, interrupted
/// rotation of the same content, else 0.
fn resume_at(file: &mut File, progress_path: &Path) -> io::Result<u64> {
    let Ok(text) = crate::fsutil::read_input(progress_path, crate::fsutil::InputKind::STATE) else {
        return Ok(0);
    };
    let Ok(p) = serde_json::from_slice::<Progress>(&text) else {
        return Ok(0);
    };
    let md = file.metadata()?;
    if md.ino() != p.ino || md.len() < p.archived_to || tail_hash(file, p.archived_to)? != p.tail {
        return Ok(0);
    }
    Ok(p.archived_to)
}

/// Archive (masked, gzip) the complete lines of `live` in segments until none is left, then
/// truncate it. Each segment is committed (fsynced, renamed) and recorded in `rotation.json`
/// before the next, so a kill at any moment loses nothing and archives nothing twice; the file is
/// truncated only when its size equals what is archived. `None`: nothing to do, or Docker kept
/// writing through every round (left for the next run).
fn rotate_one(scanner: &Scanner<'_>, live: &Path, archive_dir: &Path, dry_run: bool) -> io::Result<Option<Action>> {
    let id = live
        .file_name()
        .map(|n| n.to_string_lossy().trim_end_matches("-json.log").to_string())
        .unwrap_or_default();
    let progress_path = archive_dir.join(PROGRESS_NAME);
    let mut file = File::open(live)?;
    let mut start = resume_at(&mut file, &progress_path)?;
    let first = start;
    let mut masked = 0;
    let mut segments = 0;
    for seq in 0..ROUNDS {
        let len = file.metadata()?.len();
        let cut = crate::fsutil::last_line_end(&file, start, len)?;
        if cut > start {
            let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.9fZ");
            let archive = archive_dir.join(format!("{id}-json.log.{stamp}-{seq:02}.gz"));
            if dry_run {
                let _ = archive;
                return Ok(Some(Action::Rotated {
                    log: live.to_path_buf(),
                    archive_dir: archive_dir.to_path_buf(),
                    segments: 1,
                    bytes: cut - start,
                    masked: 0,
                }));
            }
            file.seek(SeekFrom::Start(start))?;
            let scan = scanner
                .scan_reader((&mut file).take(cut - start), &live.display().to_string(), Some(&id))
                .map_err(|e| io::Error::other(e.to_string()))?;
            masked += scan.findings.len();
            create_private_dir(archive_dir)?;
            let plan = MaskPlan::from_findings(&scan.findings);
            let mut out = AtomicFile::create(&archive)?;
            {
                let mut gz = flate2::write::GzEncoder::new(&mut out, flate2::Compression::default());
                file.seek(SeekFrom::Start(start))?;
                let n = plan.apply_stream((&mut file).take(cut - start), &mut gz)?;
                if n != cut - start {
                    return Err(io::Error::other(format!("read {n} of {} bytes", cut - start)));
                }
                gz.finish()?;
            }
            out.commit()?;
            let progress = Progress {
                ino: file.metadata()?.ino(),
                archived_to: cut,
                tail: tail_hash(&mut file, cut)?,
            };
            crate::fsutil::write_atomic(&progress_path, &serde_json::to_vec(&progress)?)?;
            start = cut;
            segments += 1;
        }
        if start == 0 {
            return Ok(None);
        }
        // Everything archived: truncate, if Docker wrote nothing since (else one more round).
        let w = OpenOptions::new().write(true).open(live)?;
        if w.metadata()?.ino() == file.metadata()?.ino() && w.metadata()?.len() == start {
            w.set_len(0)?;
            w.sync_all()?;
            fs::remove_file(&progress_path)?;
            return Ok(Some(Action::Rotated {
                log: live.to_path_buf(),
                archive_dir: archive_dir.to_path_buf(),
                segments,
                bytes: start - first,
                masked,
            }));
        }
    }
    Ok(None)
}

/// Archive rounds per rotation: each archives what Docker wrote during the previous one.
const ROUNDS: usize = 20;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redact::{Engine, FingerprintKey};
    use std::io::Write;

    /// What a [`Scanner`] borrows: the built-in engine, a fixed key, default options.
    struct ScannerParts {
        engine: Engine,
        key: FingerprintKey,
        options: crate::logs::scan::ScanOptions,
    }

    impl ScannerParts {
        fn new() -> Self {
            Self {
                engine: Engine::builtin(),
                key: FingerprintKey::from_bytes([7; 32]),
                options: Default::default(),
            }
        }
        fn scanner(&self) -> Scanner<'_> {
            Scanner {
                engine: &self.engine,
                key: &self.key,
                options: &self.options,
            }
        }
    }

    /// Append like Docker does (`O_APPEND`).
    fn append(path: &Path, bytes: &[u8]) {
        let mut f = OpenOptions::new().append(true).create(true).open(path).unwrap();
        f.write_all(bytes).unwrap();
    }

    fn line(text: &str) -> Vec<u8> {
        let mut out = Vec::new();
        crate::logs::jsonfile::encode_line(
            text.as_bytes(),
            "stdout",
            &[],
            "2026-11-27T00:00:00.000000000Z",
            &mut out,
        );
        out
    }

    fn setup(hostconfig: &str) -> (tempfile::TempDir, PathBuf, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let id = "a".repeat(64);
        let dir = tmp.path().join("docker/containers").join(&id);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("hostconfig.json"), hostconfig).unwrap();
        let live = dir.join(format!("{id}-json.log"));
        (tmp, dir, live)
    }

    #[test]
    fn a_log_without_max_size_is_archived_masked_and_truncated() {
        let (tmp, _dir, live) = setup(r#"{"LogConfig":{"Type":"json-file","Config":{}}}"#);
        let token = {
            let body = "Zq3xT7wK9mB2vN5cR8yL4pF6hJ1dG0";
            format!(
                "ghp_{body}{}",
                crate::redact::validate::base62(crc32fast::hash(body.as_bytes()) as u64, 6)
            )
        };
        for i in 0..2000 {
            append(&live, &line(&format!("request {i} ok")));
        }
        append(&live, &line(&format!("using token {token}")));
        append(&live, b"{\"log\":\"partial"); // not a complete line: stays
        let parts = ScannerParts::new();
        let scanner = parts.scanner();
        let opts = RotateOptions {
            docker_root: tmp.path().join("docker"),
            archive_dir: tmp.path().join("state/log-archive"),
            max_bytes: 10_000,
            keep: None,
            daemon_max_size: Ok(None),
            dry_run: false,
        };
        let before = fs::metadata(&live).unwrap().len();
        let (actions, errors) = rotate(&scanner, &opts);
        // The trailing partial line prevents the truncate (the size never matches a line end).
        assert!(errors.is_empty(), "{errors:?}");
        assert!(actions.is_empty(), "{actions:?}");
        assert_eq!(fs::metadata(&live).unwrap().len(), before, "left as it was");
        let progress: Progress =
            serde_json::from_slice(&fs::read(opts.archive_dir.join("a".repeat(64)).join(PROGRESS_NAME)).unwrap())
                .unwrap();
        assert_eq!(
            progress.archived_to,
            before - 15,
            "complete lines archived and recorded"
        );
        // Complete the line: now it is archived and truncated.
        let rest = b"\",\"stream\":\"stdout\",\"time\":\"2026-11-27T00:00:00Z\"}\n";
        append(&live, rest);
        let (actions, errors) = rotate(&scanner, &opts);
        assert!(errors.is_empty(), "{errors:?}");
        let Some(Action::Rotated {
            archive_dir, masked, ..
        }) = actions.first()
        else {
            panic!("{actions:?}")
        };
        assert_eq!(*masked, 0, "the token was in the segment archived by the first call");
        assert_eq!(fs::metadata(&live).unwrap().len(), 0);
        // The first attempt archived the complete lines (and recorded it), the second the rest.
        let mut names: Vec<PathBuf> = fs::read_dir(archive_dir).unwrap().map(|e| e.unwrap().path()).collect();
        names.sort();
        assert_eq!(names.len(), 2, "{names:?}: two segments, no progress file left");
        let mut text = Vec::new();
        for a in &names {
            flate2::read::GzDecoder::new(File::open(a).unwrap())
                .read_to_end(&mut text)
                .unwrap();
            assert_eq!(fs::metadata(a).unwrap().mode() & 0o777, 0o600);
        }
        assert_eq!(
            text.len() as u64,
            before + rest.len() as u64,
            "every byte archived once"
        );
        assert!(
            memchr::memmem::find(&text, token.as_bytes()).is_none(),
            "masked in the archive"
        );
        assert_eq!(text.iter().filter(|&&b| b == b'\n').count(), 2002);
        for l in text.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            serde_json::from_slice::<serde_json::Value>(l).unwrap();
        }
    }

    /// A writer appending like Docker while rotation runs, in bursts (100 lines, then 20 ms idle):
    /// every line that survives is whole and valid, none is duplicated, and the lines lost in the
    /// truncate window are counted. (A writer that never pauses for longer than one archive round,
    /// a few ms, is not rotated until it does: each round must catch up with it.)
    #[test]
    fn rotation_while_the_container_writes() {
        let (tmp, _dir, live) = setup(r#"{"LogConfig":{"Type":"json-file","Config":{}}}"#);
        append(&live, b"");
        let parts = ScannerParts::new();
        let scanner = parts.scanner();
        let opts = RotateOptions {
            docker_root: tmp.path().join("docker"),
            archive_dir: tmp.path().join("state/log-archive"),
            max_bytes: 20_000,
            keep: None,
            daemon_max_size: Ok(None),
            dry_run: false,
        };
        const LINES: usize = 20_000;
        let writer = {
            let live = live.clone();
            std::thread::spawn(move || {
                let mut f = OpenOptions::new().append(true).open(&live).unwrap();
                for i in 0..LINES {
                    f.write_all(&line(&format!("line {i:06}"))).unwrap();
                    if i % 100 == 99 {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
            })
        };
        let mut rotations = 0;
        while !writer.is_finished() {
            let (actions, errors) = rotate(&scanner, &opts);
            assert!(errors.is_empty(), "{errors:?}");
            rotations += actions.len();
        }
        writer.join().unwrap();
        let mut seen = std::collections::BTreeSet::new();
        let mut texts = Vec::new();
        for e in fs::read_dir(tmp.path().join("state/log-archive").join("a".repeat(64))).unwrap() {
            let mut t = Vec::new();
            flate2::read::GzDecoder::new(File::open(e.unwrap().path()).unwrap())
                .read_to_end(&mut t)
                .unwrap();
            texts.push(t);
        }
        texts.push(fs::read(&live).unwrap());
        for t in &texts {
            for l in t.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                let v: serde_json::Value = serde_json::from_slice(l).unwrap();
                assert!(seen.insert(v["log"].as_str().unwrap().to_string()), "duplicate line");
            }
        }
        let lost = LINES - seen.len();
        crate::say!("{rotations} rotations, {lost} of {LINES} lines lost in the truncate window");
        assert!(rotations >= 3, "{rotations}");
        assert!(lost * 100 <= LINES, "{lost} lines lost");
    }

    #[test]
    fn progress_resumes_only_on_the_same_content() {
        let tmp = tempfile::tempdir().unwrap();
        let live = tmp.path().join("x-json.log");
        let progress_path = tmp.path().join(PROGRESS_NAME);
        append(&live, &line("first"));
        append(&live, &line("second"));
        let mut f = File::open(&live).unwrap();
        let end = f.metadata().unwrap().len();
        let p = Progress {
            ino: f.metadata().unwrap().ino(),
            archived_to: end,
            tail: tail_hash(&mut f, end).unwrap(),
        };
        fs::write(&progress_path, serde_json::to_vec(&p).unwrap()).unwrap();
        append(&live, &line("third"));
        assert_eq!(resume_at(&mut f, &progress_path).unwrap(), end, "grown further: go on");
        // Truncated (the kill came after the truncate) and refilled past the old size.
        OpenOptions::new().write(true).open(&live).unwrap().set_len(0).unwrap();
        for _ in 0..3 {
            append(&live, &line("refilled"));
        }
        assert!(f.metadata().unwrap().len() >= end);
        assert_eq!(
            resume_at(&mut f, &progress_path).unwrap(),
            0,
            "other content: from the start"
        );
        fs::write(&progress_path, b"{not json").unwrap();
        assert_eq!(resume_at(&mut f, &progress_path).unwrap(), 0);
    }

    #[test]
    fn logs_with_a_max_size_are_left_to_docker() {
        let parts = ScannerParts::new();
        let scanner = parts.scanner();
        for (hostconfig, daemon) in [
            (
                r#"{"LogConfig":{"Type":"json-file","Config":{"max-size":"10m"}}}"#,
                Ok(None),
            ),
            (
                r#"{"LogConfig":{"Type":"json-file","Config":{}}}"#,
                Ok(Some("10m".to_string())),
            ),
            (r#"{"LogConfig":{"Type":"local","Config":{}}}"#, Ok(None)),
        ] {
            let (tmp, _dir, live) = setup(hostconfig);
            for i in 0..500 {
                append(&live, &line(&format!("request {i} ok")));
            }
            let opts = RotateOptions {
                docker_root: tmp.path().join("docker"),
                archive_dir: tmp.path().join("state/log-archive"),
                max_bytes: 1000,
                keep: None,
                daemon_max_size: daemon,
                dry_run: false,
            };
            let (actions, errors) = rotate(&scanner, &opts);
            assert!(
                actions.is_empty() && errors.is_empty(),
                "{hostconfig}: {actions:?} {errors:?}"
            );
        }
        // daemon.json unreadable: unknown, so not rotated, and said so.
        let (tmp, _dir, live) = setup(r#"{"LogConfig":{"Type":"json-file","Config":{}}}"#);
        append(&live, &line(&"x".repeat(2000)));
        let opts = RotateOptions {
            docker_root: tmp.path().join("docker"),
            archive_dir: tmp.path().join("state/log-archive"),
            max_bytes: 1000,
            keep: None,
            daemon_max_size: Err("permission denied".into()),
            dry_run: false,
        };
        let (actions, errors) = rotate(&scanner, &opts);
        assert!(actions.is_empty());
        assert!(errors[0].1.contains("not rotated"), "{errors:?}");
    }

    #[test]
    fn retention_removes_old_rotated_files_and_archives_only() {
        let (tmp, dir, live) = setup(r#"{"LogConfig":{"Type":"json-file","Config":{"max-size":"1m"}}}"#);
        let id = "a".repeat(64);
        append(&live, &line("live"));
        let old = dir.join(format!("{id}-json.log.2.gz"));
        let new = dir.join(format!("{id}-json.log.1"));
        let other = dir.join("config.v2.json");
        let archive = tmp
            .path()
            .join(format!("state/log-archive/{id}/{id}-json.log.20260101T000000Z.gz"));
        fs::create_dir_all(archive.parent().unwrap()).unwrap();
        for p in [&old, &new, &other, &archive] {
            fs::write(p, "x").unwrap();
        }
        let past = filetime::FileTime::from_unix_time(1_700_000_000, 0);
        for p in [&old, &other, &archive, &live] {
            filetime::set_file_mtime(p, past).unwrap();
        }
        let parts = ScannerParts::new();
        let scanner = parts.scanner();
        let mut opts = RotateOptions {
            docker_root: tmp.path().join("docker"),
            archive_dir: tmp.path().join("state/log-archive"),
            max_bytes: 0,
            keep: Some(Duration::from_secs(86_400)),
            daemon_max_size: Ok(None),
            dry_run: true,
        };
        let (planned, _) = rotate(&scanner, &opts);
        assert_eq!(
            planned,
            vec![Action::Removed(old.clone()), Action::Removed(archive.clone())]
        );
        assert!(old.exists());
        opts.dry_run = false;
        let (done, errors) = rotate(&scanner, &opts);
        assert!(errors.is_empty());
        assert_eq!(done, planned);
        assert!(!old.exists() && !archive.exists());
        assert!(
            new.exists() && other.exists() && live.exists(),
            "recent, foreign and live files stay"
        );
    }
}
