//! Tests of the whole guard: syncs of real files in a temporary Docker root.
use super::*;
use super::{carry::*, commit::*, gz::*, listing::*, owed::*, plain::*};
use crate::logs::checkpoint::{self, FileMark, PendingMasks};
use crate::logs::jsonfile;
use crate::redact::{Engine, FingerprintKey};
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

struct Parts {
    engine: Engine,
    key: FingerprintKey,
    options: crate::logs::scan::ScanOptions,
    metrics: Metrics,
}

impl Parts {
    fn new() -> Self {
        Self {
            engine: Engine::builtin(),
            key: FingerprintKey::from_bytes([7; 32]),
            options: crate::logs::scan::ScanOptions {
                buffer_bytes: 256 << 10,
                ..Default::default()
            },
            metrics: Metrics::default(),
        }
    }
    fn guard(&self, root: &Path) -> Guard<'_> {
        self.guard_with(root, |_| ())
    }
    fn guard_with(&self, root: &Path, adjust: impl FnOnce(&mut GuardOptions)) -> Guard<'_> {
        let scanner = Scanner {
            engine: &self.engine,
            key: &self.key,
            options: &self.options,
        };
        let mut opts = GuardOptions {
            docker_root: root.join("docker"),
            state_dir: root.join("state"),
            mask: true,
            containers: Vec::new(),
            report_only: vec!["audit-me".into()],
            name: "this-guard".into(),
            baseline: HashSet::new(),
            rescan: Duration::from_secs(30),
            hold: Duration::from_secs(3600),
            checkpoint_every: Duration::ZERO,
            findings_max_bytes: 1 << 20,
            findings_keep: 3,
            findings_per_second: 50,
            own_container: None,
            boot_id: Some("boot-1".into()),
        };
        adjust(&mut opts);
        let mut g = Guard::open(scanner, opts, &self.metrics).unwrap();
        g.discover().unwrap();
        g
    }
}

pub(super) fn token(body: &str) -> String {
    format!(
        "ghp_{body}{}",
        crate::redact::validate::base62(crc32fast::hash(body.as_bytes()) as u64, 6)
    )
}

pub(super) const T1: &str = "Zq3xT7wK9mB2vN5cR8yL4pF6hJ1dG0";
const T2: &str = "Ab3xT7wK9mB2vN5cR8yL4pF6hJ1dQ9";
const T3: &str = "Cd3xT7wK9mB2vN5cR8yL4pF6hJ1dW4";

pub(super) fn line(text: &str, n: u64) -> Vec<u8> {
    let mut out = Vec::new();
    let time = format!("2026-11-27T00:00:00.{n:09}Z");
    jsonfile::encode_line(format!("{text}\n").as_bytes(), "stdout", &[], &time, &mut out);
    out
}

/// A container directory as Docker writes it; returns the live log path.
fn container(root: &Path, id_char: char, name: &str, compress: bool, labels: &str) -> PathBuf {
    let id: String = std::iter::repeat_n(id_char, 64).collect();
    let dir = root.join("docker/containers").join(&id);
    fs::create_dir_all(&dir).unwrap();
    fs::write(
        dir.join("config.v2.json"),
        format!(r#"{{"ID":"{id}","Name":"/{name}","Config":{{"Image":"img:1","Labels":{{{labels}}}}}}}"#),
    )
    .unwrap();
    fs::write(
        dir.join("hostconfig.json"),
        format!(r#"{{"LogConfig":{{"Type":"json-file","Config":{{"compress":"{compress}"}}}}}}"#),
    )
    .unwrap();
    dir.join(format!("{id}-json.log"))
}

/// The first part of an entry Docker split at 16 KiB, ending in the first 14 characters of `tok`.
fn split_head(tok: &str) -> Vec<u8> {
    let mut text = "y".repeat(16384 - 20);
    text.push_str("token=");
    text.push_str(&tok[..14]);
    let mut out = Vec::new();
    jsonfile::encode_line(text.as_bytes(), "stdout", &[], "2026-11-27T00:00:00.1Z", &mut out);
    out
}

/// A 16 KiB part of an entry (no end) whose message ends in `token=` and `visible`.
fn cut_part(visible: &str) -> Vec<u8> {
    let mut text = "y".repeat(16384 - 30);
    text.push_str("token=");
    text.push_str(visible);
    let mut out = Vec::new();
    jsonfile::encode_line(text.as_bytes(), "stdout", &[], "2026-11-27T00:00:00.1Z", &mut out);
    out
}

/// Two files: a first line and the first part of an entry split at 16 KiB (see `split_head`);
/// the entry's last part with the rest of `tok`, and a line after it.
fn split_across(tok: &str) -> (Vec<u8>, Vec<u8>) {
    let first = [line("first line", 0), split_head(tok)].concat();
    let second = [line(&format!("{} done", &tok[14..]), 2), line("after", 3)].concat();
    (first, second)
}

/// A json-file entry of 16 KiB of message without its end: one part of a split line.
fn split_part(text: String) -> Vec<u8> {
    let mut text = text;
    text.push(' ');
    while text.len() < 16384 {
        text.push('y');
    }
    let mut out = Vec::new();
    jsonfile::encode_line(text.as_bytes(), "stdout", &[], "2026-11-27T00:00:00.1Z", &mut out);
    out
}

fn append(path: &Path, bytes: &[u8]) {
    let mut f = OpenOptions::new().append(true).create(true).open(path).unwrap();
    f.write_all(bytes).unwrap();
}

fn records(root: &Path) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    let files = crate::findings::read::finding_files(&root.join("state/findings")).unwrap();
    for f in files {
        for l in fs::read_to_string(f).unwrap().lines() {
            out.push(serde_json::from_str(l).unwrap());
        }
    }
    out
}

/// Every line parses as a json-file line and the file holds none of the tokens.
pub(super) fn assert_clean(bytes: &[u8], tokens: &[&str]) {
    let text = String::from_utf8_lossy(bytes);
    for t in tokens {
        assert!(!text.contains(&token(t)[..20]), "a token is still in the file");
    }
    let mut l = jsonfile::JsonFileLine::default();
    for raw in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        jsonfile::parse_line(raw, &mut l).expect("valid json-file line");
    }
}

#[test]
fn masks_the_live_log_in_place_and_records_each_occurrence_once() {
    let tmp = tempfile::tempdir().unwrap();
    let live = container(tmp.path(), 'a', "openclaw", false, "");
    for i in 0..100 {
        append(&live, &line(&format!("GET /health {i} ok"), i));
    }
    append(&live, &line(&format!("export GITHUB_TOKEN={}", token(T1)), 100));
    append(&live, b"{\"log\":\"not yet complete"); // Docker is mid-write: left alone
    let parts = Parts::new();
    let mut g = parts.guard(tmp.path());
    let before = fs::metadata(&live).unwrap().len();
    let s = g.sync_all();
    assert_eq!((s.recorded, s.masked), (1, 1));
    assert_eq!(fs::metadata(&live).unwrap().len(), before, "same length");
    let bytes = fs::read(&live).unwrap();
    let complete = &bytes[..bytes.iter().rposition(|&b| b == b'\n').unwrap() + 1];
    assert_clean(complete, &[T1]);
    assert_eq!(g.sync_all().recorded, 0, "nothing new");
    g.commit(Commit::Now).unwrap();
    let recs = records(tmp.path());
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0]["container"], "openclaw");
    assert_eq!(recs[0]["image"], "img:1");
    assert_eq!(recs[0]["rule"], "github-pat");
    assert_eq!(recs[0]["line"], 101);
    assert!(!fs::read_to_string(tmp.path().join("state/findings/findings.jsonl"))
        .unwrap()
        .contains(&token(T1)[4..]));
    drop(g);

    // A restart resumes at the checkpoint: the rest of the line and a new secret, once each.
    append(&live, b"\",\"stream\":\"stdout\",\"time\":\"2026-11-27T00:00:01Z\"}\n");
    append(&live, &line(&format!("again {}", token(T2)), 200));
    let mut g = parts.guard(tmp.path());
    assert_eq!(g.sync_all().recorded, 1);
    g.commit(Commit::Now).unwrap();
    assert_eq!(records(tmp.path()).len(), 2);
    assert_clean(&fs::read(&live).unwrap(), &[T1, T2]);
    assert_eq!(
        fsutil_mode(&tmp.path().join("state/checkpoints.json")),
        0o600,
        "checkpoints are private"
    );
}

fn fsutil_mode(p: &Path) -> u32 {
    crate::fsutil::mode(p).unwrap()
}

#[test]
fn a_split_entry_waits_for_its_last_part() {
    let tmp = tempfile::tempdir().unwrap();
    let live = container(tmp.path(), 'b', "gw", false, "");
    let tok = token(T1);
    // Docker's 16 KiB split: the first part ends in the middle of the token.
    let mut text = "x".repeat(16384 - 20);
    text.push_str("token=");
    text.push_str(&tok[..14]);
    // A partial entry: its log does not end in a newline.
    let mut first = Vec::new();
    jsonfile::encode_line(text.as_bytes(), "stdout", &[], "2026-11-27T00:00:00.1Z", &mut first);
    append(&live, &line("first line", 0));
    append(&live, &first);
    let parts = Parts::new();
    let mut g = parts.guard(tmp.path());
    assert_eq!(g.sync_all().recorded, 0, "held until the last part arrives");
    // A unit held open waits for Docker, not for the guard: it is not lag.
    assert_eq!(g.lag.values().sum::<u64>(), 0);
    assert_eq!(g.lag_seconds(), Duration::ZERO);
    g.commit(Commit::Now).unwrap();
    drop(g);
    append(&live, &line(&format!("{} done", &tok[14..]), 2));
    let mut g = parts.guard(tmp.path());
    let s = g.sync_all();
    assert_eq!((s.recorded, s.masked), (1, 2), "one finding over two entries");
    assert_eq!(g.lag_seconds(), Duration::ZERO, "caught up");
    assert_clean(&fs::read(&live).unwrap(), &[T1]);
    let text = String::from_utf8(fs::read(&live).unwrap()).unwrap();
    assert!(!text.contains(&tok[..14]) && !text.contains(&tok[14..]));
}

/// A guard records a secret written to `live` and is killed before its next checkpoint;
/// returns the file as it was before the mask.
fn record_then_crash(parts: &Parts, root: &Path, live: &Path) -> Vec<u8> {
    append(live, &line("start", 0));
    let mut g = parts.guard(root);
    g.sync_all();
    g.commit(Commit::Now).unwrap();
    append(live, &line(&format!("key {}", token(T1)), 1));
    let unmasked = fs::read(live).unwrap();
    assert_eq!(g.sync_all().recorded, 1);
    unmasked // dropped without a checkpoint
}

#[test]
fn a_crash_after_recording_records_nothing_twice_and_still_masks() {
    let tmp = tempfile::tempdir().unwrap();
    let live = container(tmp.path(), 'c', "gw", false, "");
    let parts = Parts::new();
    let unmasked = record_then_crash(&parts, tmp.path(), &live);
    // As if killed before the pwrite too: the secret back on disk.
    fs::write(&live, &unmasked).unwrap();
    let mut g = parts.guard(tmp.path());
    assert_eq!(g.sync_all().recorded, 0, "already in the report");
    g.commit(Commit::Now).unwrap();
    assert_clean(&fs::read(&live).unwrap(), &[T1]);
    assert_eq!(records(tmp.path()).len(), 1);
}

#[test]
fn a_checkpoint_during_the_quarantine_after_a_panic_records_nothing_twice() {
    // A report-only container: its secret stays in the file, and the scan after the panic sees it
    // again from the checkpoint before it.
    let tmp = tempfile::tempdir().unwrap();
    let live = container(tmp.path(), 'd', "audit-me", false, "");
    append(&live, &line("first line", 0));
    let parts = Parts::new();
    let mut g = parts.guard(tmp.path());
    g.sync_all();
    g.commit(Commit::Now).unwrap();
    append(&live, &line(&format!("export GITHUB_TOKEN={}", token(T1)), 1));
    assert_eq!(g.sync_all().recorded, 1);
    // Its work panics: its checkpoints are reloaded from disk (before the secret), and a
    // checkpoint is taken while it waits.
    let id: String = std::iter::repeat_n('d', 64).collect();
    g.contain_panic(&id);
    g.commit(Commit::Now).unwrap();
    // It fails again more than an hour later: what it recorded is still known, and its files'
    // checkpoints are kept.
    g.marks.recovered_at -= 4000;
    for m in g.marks.files.values_mut() {
        m.seen -= 4000;
    }
    g.marks_dirty = true;
    g.commit(Commit::Now).unwrap();
    g.contain_panic(&id);
    g.discover().unwrap();
    assert_eq!(g.marks.files.len(), 1, "not taken for a deleted file's");
    g.quarantine.clear();
    assert_eq!(g.sync_all().recorded, 0, "recorded before the panic");
    g.commit(Commit::Now).unwrap();
    drop(g);
    let mut g = parts.guard(tmp.path());
    assert_eq!(g.sync_all().recorded, 0, "nor after a restart");
    assert_eq!(records(tmp.path()).len(), 1);
}

#[test]
fn after_a_reboot_every_file_is_masked_again_and_nothing_is_recorded_twice() {
    // Masks are not synced to disk before a checkpoint: a power cut may lose them while the
    // checkpoint (synced) survives. Checkpoints of another boot have every file scanned again.
    let tmp = tempfile::tempdir().unwrap();
    let live = container(tmp.path(), 'c', "gw", false, "");
    let rotated = live.with_file_name(format!("{}.1", live.file_name().unwrap().to_str().unwrap()));
    let parts = Parts::new();
    append(&live, &line(&format!("old key {}", token(T1)), 0));
    append(&live, &line("end of the first file", 1));
    let mut g = parts.guard(tmp.path());
    g.sync_all();
    assert!(g.unsynced.is_empty(), "a mask within one file is not synced");
    fs::rename(&live, &rotated).unwrap();
    append(&live, &line(&format!("new key {}", token(T2)), 2));
    append(&live, &line(&format!("last key {}", token(T3)), 3));
    g.sync_all();
    g.commit(Commit::Now).unwrap();
    assert_eq!(records(tmp.path()).len(), 3);
    drop(g);
    // The power cut: both files as Docker wrote them, the masks lost.
    let lost = |p: &Path, lines: &[(String, u64)]| {
        fs::write(p, b"").unwrap();
        for (text, n) in lines {
            append(p, &line(text, *n));
        }
    };
    lost(
        &rotated,
        &[
            (format!("old key {}", token(T1)), 0),
            ("end of the first file".into(), 1),
        ],
    );
    // The same boot (a restart of sidecar alone): the masks are trusted to be there.
    let mut g = parts.guard(tmp.path());
    g.sync_all();
    drop(g);
    assert!(String::from_utf8(fs::read(&rotated).unwrap()).unwrap().contains(T1));
    // Docker's last line lost with the page cache too: the live file is shorter than scanned.
    lost(&live, &[(format!("new key {}", token(T2)), 2)]);
    // Another boot: both files masked again, nothing recorded twice.
    let mut g = parts.guard_with(tmp.path(), |o| o.boot_id = Some("boot-2".into()));
    let s = g.sync_all();
    assert_eq!(s.recorded, 0, "{s:?}");
    g.commit(Commit::Now).unwrap();
    assert_clean(&fs::read(&rotated).unwrap(), &[T1]);
    assert_clean(&fs::read(&live).unwrap(), &[T2]);
    assert_eq!(records(tmp.path()).len(), 3);
    // What Docker writes next is new.
    append(&live, &line(&format!("after key {}", token(T1)), 4));
    assert_eq!(g.sync_all().recorded, 1);
    g.commit(Commit::Now).unwrap();
    assert_eq!(Checkpoints::load(&tmp.path().join("state")).unwrap().boot_id, "boot-2");
    // Once: the next start of that boot scans nothing again.
    drop(g);
    let mut g = parts.guard_with(tmp.path(), |o| o.boot_id = Some("boot-2".into()));
    assert_eq!(g.sync_all().bytes, 0);
}

#[test]
fn a_finding_recovered_after_a_crash_is_not_recorded_again_after_later_checkpoints() {
    let tmp = tempfile::tempdir().unwrap();
    let live = container(tmp.path(), 'c', "gw", true, "");
    let gz = live.with_file_name(format!("{}.1.gz", live.file_name().unwrap().to_str().unwrap()));
    let aside = tmp.path().join("aside.log");
    let parts = Parts::new();
    let unmasked = record_then_crash(&parts, tmp.path(), &live);
    // While it was down Docker rotated the file and began compressing it (copied before the
    // mask): the next guard sees it only as a .gz, after it has written checkpoints of its own.
    fs::rename(&live, &aside).unwrap();
    append(&live, &line("next file", 2));
    let mut g = parts.guard(tmp.path());
    g.sync_all();
    g.commit(Commit::Now).unwrap();
    drop(g);
    let mut g = parts.guard(tmp.path());
    g.sync_all();
    g.commit(Commit::Now).unwrap();
    gzip_like_docker(&unmasked, &gz);
    fs::remove_file(&aside).unwrap();
    let s = g.sync_all();
    assert_eq!(s.recorded, 0, "already in the report");
    assert!(s.masked >= 1);
    assert_eq!(records(tmp.path()).len(), 1);
}

pub(super) fn gzip_like_docker(src: &[u8], dst: &Path) {
    let f = File::create(dst).unwrap();
    let mut enc = flate2::GzBuilder::new()
        .extra(br#"{"lastTime":"2026-11-27T00:00:00.000000100Z"}"#.to_vec())
        .write(f, flate2::Compression::default());
    enc.write_all(src).unwrap();
    enc.finish().unwrap();
    fs::set_permissions(dst, fs::Permissions::from_mode(0o640)).unwrap();
}

#[test]
fn repeated_errors_are_shown_once_a_period_with_a_count() {
    let mut r = RateLimit::new(Duration::from_secs(60));
    let t0 = Instant::now();
    assert_eq!(r.allow("disk full", t0), Some(0));
    for i in 1..1500 {
        assert_eq!(r.allow("disk full", t0 + Duration::from_millis(i)), None);
    }
    assert_eq!(r.allow("other", t0), Some(0), "keys are separate");
    assert_eq!(r.allow("disk full", t0 + Duration::from_secs(61)), Some(1499));
    assert_eq!(r.allow("disk full", t0 + Duration::from_secs(62)), None);
    // Bounded: many distinct keys do not grow it past 1 024.
    for i in 0..5000 {
        r.allow(&format!("file {i}"), t0);
    }
    assert!(r.seen.len() <= 1024);
}

#[test]
fn files_that_start_alike_are_not_scanned_again_and_again() {
    let tmp = tempfile::tempdir().unwrap();
    let live = container(tmp.path(), '9', "alike", false, "");
    let dir = live.parent().unwrap().to_path_buf();
    let name = live.file_name().unwrap().to_str().unwrap().to_string();
    let rotated = dir.join(format!("{name}.1"));
    // Both files start with the same line (same text, same time).
    append(&rotated, &line("starting", 0));
    append(&rotated, &line(&format!("old {}", token(T1)), 1));
    append(&live, &line("starting", 0));
    append(&live, &line(&format!("new {}", token(T2)), 2));
    append(&live, &line("more lines in the live file than in the rotated one", 3));
    let parts = Parts::new();
    let mut g = parts.guard(tmp.path());
    assert_eq!(g.sync_all().recorded, 2);
    for _ in 0..3 {
        assert_eq!(g.sync_all(), SyncStats::default(), "nothing new: nothing scanned");
    }
    g.commit(Commit::Now).unwrap();
    assert_clean(&fs::read(&rotated).unwrap(), &[T1]);
    assert_clean(&fs::read(&live).unwrap(), &[T2]);
    assert!(!g.warned.iter().any(|w| w.starts_with("shorter")), "{:?}", g.warned);
    // Docker rotates (max-file 3): .1 becomes .2, live becomes .1; a new live file starts alike.
    fs::rename(&rotated, dir.join(format!("{name}.2"))).unwrap();
    fs::rename(&live, &rotated).unwrap();
    append(&live, &line("starting", 0));
    append(&live, &line(&format!("newer {}", token(T3)), 4));
    assert_eq!(g.sync_all().recorded, 1, "only the new secret");
    assert_eq!(g.sync_all(), SyncStats::default());
    assert_clean(&fs::read(&live).unwrap(), &[T3]);
    assert_eq!(records(tmp.path()).len(), 3);
}

#[test]
fn links_under_the_docker_root_are_never_followed() {
    let tmp = tempfile::tempdir().unwrap();
    let outside = tmp.path().join("outside");
    fs::create_dir_all(&outside).unwrap();
    // A container directory that is a link to a directory elsewhere.
    let real = container(tmp.path(), 'e', "real", true, "");
    let elsewhere = outside.join("container");
    fs::rename(real.parent().unwrap(), &elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, real.parent().unwrap()).unwrap();
    let outside_log = elsewhere.join(real.file_name().unwrap());
    append(&outside_log, &line(&format!("a {}", token(T1)), 0));
    // In a real container: the live log, a rotated file and a compressed one are links to files
    // elsewhere, and a compressed file has a second (hard) link elsewhere.
    let live = container(tmp.path(), 'f', "gw", true, "");
    let dir = live.parent().unwrap().to_path_buf();
    let name = live.file_name().unwrap().to_str().unwrap().to_string();
    let target_live = outside.join("live.log");
    append(&target_live, &line(&format!("b {}", token(T2)), 1));
    std::os::unix::fs::symlink(&target_live, &live).unwrap();
    let target_plain = outside.join("plain.log");
    append(&target_plain, &line(&format!("c {}", token(T2)), 2));
    std::os::unix::fs::symlink(&target_plain, dir.join(format!("{name}.1"))).unwrap();
    let target_gz = outside.join("old.gz");
    gzip_like_docker(&line(&format!("d {}", token(T3)), 3), &target_gz);
    std::os::unix::fs::symlink(&target_gz, dir.join(format!("{name}.2.gz"))).unwrap();
    let hard_other = outside.join("hard.gz");
    gzip_like_docker(&line(&format!("e {}", token(T1)), 4), &hard_other);
    fs::hard_link(&hard_other, dir.join(format!("{name}.3.gz"))).unwrap();
    let before: Vec<Vec<u8>> = [&outside_log, &target_live, &target_plain, &target_gz, &hard_other]
        .iter()
        .map(|p| fs::read(p).unwrap())
        .collect();

    let parts = Parts::new();
    let mut g = parts.guard(tmp.path());
    assert!(
        !g.containers.contains_key(&"e".repeat(64)),
        "the linked container directory is skipped"
    );
    for _ in 0..3 {
        g.sync_all();
    }
    g.commit(Commit::Now).unwrap();
    let after: Vec<Vec<u8>> = [&outside_log, &target_live, &target_plain, &target_gz, &hard_other]
        .iter()
        .map(|p| fs::read(p).unwrap())
        .collect();
    assert!(before == after, "nothing outside the Docker root was written");
    // Read only through links: nothing reported from the linked files. The hard-linked .gz is a
    // regular file (read and reported), but it is not rewritten: its other name would keep the
    // secret, and the rewrite would reach that name.
    let recorded = records(tmp.path());
    assert_eq!(recorded.len(), 1, "only the hard-linked .gz: {recorded:?}");
    assert!(recorded[0]["file"].as_str().unwrap().ends_with(".3.gz"));
    // Each refusal is warned about once, and the guard settles (no work on the next passes).
    assert_eq!(g.sync_all(), SyncStats::default());
    assert!(g.warned.iter().any(|w| w.contains(&format!("{name}.2.gz"))));
}

/// `sidecar_log_bytes_scanned_total` of the guard `g`.
fn bytes_scanned(g: &Guard) -> f64 {
    metric(g.metrics, crate::metrics::LOG_BYTES_SCANNED_TOTAL)
}

fn metric(m: &Metrics, name: &str) -> f64 {
    m.render()
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0.0)
}

pub(super) fn gunzip(path: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(File::open(path).unwrap())
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// Docker's rotation with compression, done by hand: the live log is renamed `.1`, compressed
/// (from `content`, what Docker read) to `.1.gz` and, unless `keep_plain`, removed.
fn rotate_compressed(live: &Path, content: &[u8], keep_plain: bool) -> (PathBuf, PathBuf) {
    let name = live.file_name().unwrap().to_str().unwrap();
    let (plain, gz) = (
        live.with_file_name(format!("{name}.1")),
        live.with_file_name(format!("{name}.1.gz")),
    );
    fs::rename(live, &plain).unwrap();
    gzip_like_docker(content, &gz);
    if !keep_plain {
        fs::remove_file(&plain).unwrap();
    }
    (plain, gz)
}

#[test]
fn the_marks_of_files_docker_deleted_are_forgotten_after_a_while_and_no_others() {
    let tmp = tempfile::tempdir().unwrap();
    let live = container(tmp.path(), 'b', "gw", true, "");
    let parts = Parts::new();
    let mut g = parts.guard(tmp.path());
    let name = live.file_name().unwrap().to_str().unwrap().to_string();
    // Three generations: the oldest compressed (then deleted), one plain rotated, the live file.
    append(
        &live,
        &[line("first file", 0), line(&format!("one {}", token(T1)), 1)].concat(),
    );
    g.sync_all();
    let content = fs::read(&live).unwrap();
    let (_, gz) = rotate_compressed(&live, &content, false);
    append(&live, &line("second file", 2));
    g.sync_all();
    let second = live.with_file_name(format!("{name}.2"));
    fs::rename(&live, &second).unwrap();
    append(&live, &line("third file", 3));
    g.sync_all();
    g.commit(Commit::Now).unwrap();
    assert_eq!(g.marks.files.len(), 3);
    assert_eq!(g.marks.gz.len(), 1);
    // Docker deletes the oldest two (beyond max-file).
    fs::remove_file(&gz).unwrap();
    fs::remove_file(&second).unwrap();
    g.sync_all();
    assert_eq!(g.marks.files.len(), 3, "kept while recently seen");
    // Not seen for longer than GONE_AFTER.
    let old = unix_now() - GONE_AFTER.as_secs() - 1;
    for m in g.marks.files.values_mut() {
        m.seen = old;
    }
    for m in g.marks.gz.values_mut() {
        m.seen = old;
    }
    let live_ino = fs::metadata(&live).unwrap().ino();
    g.sync_all();
    let left: Vec<u64> = g.marks.files.values().map(|m| m.inode).collect();
    assert_eq!(left, vec![live_ino], "only the live file's mark is left");
    assert!(g.marks.gz.is_empty());
    g.commit(Commit::Now).unwrap();
    assert_eq!(Checkpoints::load(&g.opts.state_dir).unwrap().files.len(), 1);
    // Nothing is recorded again.
    assert_eq!(records(tmp.path()).len(), 1);
    append(&live, &line(&format!("two {}", token(T2)), 4));
    assert_eq!(g.sync_all().recorded, 1);
}

#[test]
fn a_guard_down_for_hours_rescans_nothing_it_had_checkpointed() {
    let tmp = tempfile::tempdir().unwrap();
    let live = container(tmp.path(), 'a', "gw", true, "");
    let parts = Parts::new();
    let mut g = parts.guard(tmp.path());
    append(
        &live,
        &[line("first file", 0), line(&format!("one {}", token(T1)), 1)].concat(),
    );
    g.sync_all();
    let content = fs::read(&live).unwrap();
    rotate_compressed(&live, &content, false);
    append(&live, &line(&format!("two {}", token(T2)), 2));
    assert_eq!(g.sync_all().recorded, 1);
    g.commit(Commit::Now).unwrap();
    drop(g);
    assert_eq!(records(tmp.path()).len(), 2);
    // The host was off for two hours: every mark was last seen then.
    let state = tmp.path().join("state");
    let mut cp = Checkpoints::load(&state).unwrap();
    let then = unix_now() - 7200;
    for m in cp.files.values_mut() {
        m.seen = then;
    }
    for m in cp.gz.values_mut() {
        m.seen = then;
    }
    cp.save(&state).unwrap();
    let mut g = parts.guard(tmp.path());
    g.discover().unwrap();
    assert_eq!(g.sync_all().recorded, 0, "nothing recorded again");
    g.commit(Commit::Now).unwrap();
    assert_eq!(records(tmp.path()).len(), 2);
}

#[test]
fn the_mask_delay_is_measured_from_dockers_timestamp_of_the_entry() {
    let tmp = tempfile::tempdir().unwrap();
    let live = container(tmp.path(), 'd', "gw", false, "");
    let parts = Parts::new();
    let mut g = parts.guard(tmp.path());
    let two_s_ago =
        (chrono::Utc::now() - chrono::Duration::seconds(2)).to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    let mut entry = Vec::new();
    let text = format!("key {}\n", token(T1));
    jsonfile::encode_line(text.as_bytes(), "stdout", &[], &two_s_ago, &mut entry);
    append(&live, &[line("no secret", 0), entry].concat());
    assert_eq!(g.sync_all().masked, 1);
    // One write, between 2 s and 2.5 s after its entry (the test's own time is well under 0.5 s).
    assert_eq!(metric(g.metrics, "sidecar_log_mask_delay_seconds_count"), 1.0);
    assert_eq!(
        metric(g.metrics, "sidecar_log_mask_delay_seconds_bucket{le=\"1\"}"),
        0.0
    );
    assert_eq!(
        metric(g.metrics, "sidecar_log_mask_delay_seconds_bucket{le=\"2.5\"}"),
        1.0
    );
    let sum = metric(g.metrics, "sidecar_log_mask_delay_seconds_sum");
    assert!((2.0..2.5).contains(&sum), "{sum}");
}

#[test]
fn the_masks_remembered_for_gz_checks_are_bounded_for_all_files_together() {
    let tmp = tempfile::tempdir().unwrap();
    fs::create_dir_all(tmp.path().join("docker/containers")).unwrap();
    let parts = Parts::new();
    let mut g = parts.guard(tmp.path());
    let f = Finding {
        partial: false,
        schema: 1,
        rule: "github-pat".into(),
        description: "d".into(),
        severity: crate::redact::Severity::High,
        confidence: None,
        file: "f".into(),
        line: 1,
        end_line: 1,
        start: 0,
        end: 40,
        ranges: vec![[0, 40]],
        container_id: Some("c".into()),
        stream: Some("stdout".into()),
        time: None,
        fingerprint: "ab".repeat(32),
        preview: "ghp_****".into(),
        mask: vec![b'*'; 40],
    };
    let fresh = || Written {
        since: SystemTime::now(),
        masks: Some(Vec::new()),
        last: None,
    };
    // Files filled to their own bound, until the total is reached.
    let files = WRITTEN_TOTAL_MAX / WRITTEN_MAX;
    for i in 0..files {
        g.written.insert(format!("file{i}"), fresh());
        g.note_written(&format!("file{i}"), &vec![f.clone(); WRITTEN_MAX]);
        assert_eq!(
            g.written[&format!("file{i}")].masks.as_ref().map(Vec::len),
            Some(WRITTEN_MAX)
        );
    }
    // One more file: its masks are not remembered (its .gz will be scanned), the others keep theirs.
    g.written.insert("one-more".into(), fresh());
    g.note_written("one-more", std::slice::from_ref(&f));
    assert!(g.written["one-more"].masks.is_none());
    assert!(g.written["one-more"].last.is_some(), "the write itself is still noted");
    assert_eq!(g.written["file0"].masks.as_ref().map(Vec::len), Some(WRITTEN_MAX));
}

/// A finding as the scanner makes it, masking `ranges`.
pub(super) fn finding_at(ranges: Vec<[u64; 2]>) -> Finding {
    let len: u64 = ranges.iter().map(|[s, e]| e - s).sum();
    let mut mask = b"[github-pat:abcdef]".to_vec();
    mask.resize(len as usize, b'*');
    Finding {
        schema: 1,
        rule: "github-pat".into(),
        description: "GitHub token".into(),
        severity: crate::redact::Severity::High,
        confidence: Some(crate::redact::Confidence::Checksum),
        file: "/var/lib/docker/containers/x/x-json.log".into(),
        line: 3,
        end_line: 3,
        start: ranges[0][0],
        end: ranges[ranges.len() - 1][1],
        ranges,
        container_id: Some("c".repeat(64)),
        stream: Some("stdout".into()),
        time: Some("2026-12-04T10:00:00.000000001Z".into()),
        fingerprint: "ab".repeat(32),
        preview: "ghp_****".into(),
        partial: false,
        mask,
    }
}

#[test]
fn masks_owed_to_a_gz_docker_deleted_are_dropped_at_the_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    container(tmp.path(), 'd', "gone", true, "");
    let parts = Parts::new();
    let mut g = parts.guard(tmp.path());
    let (kept, deleted) = (tmp.path().join("kept.gz"), tmp.path().join("deleted.gz"));
    for p in [&kept, &deleted] {
        gzip_like_docker(b"x\n", p);
        let f = File::open(p).unwrap();
        g.owe(&p.display().to_string(), vec![finding_at(vec![[0, 1]])], Some(&f));
    }
    g.owe("not-open", vec![finding_at(vec![[0, 1]])], None);
    fs::remove_file(&deleted).unwrap();
    g.commit(Commit::Now).unwrap();
    let owed: Vec<&String> = g.marks.gz_owed.keys().collect();
    assert_eq!(owed, vec![&kept.display().to_string(), &"not-open".to_string()]);
    assert_eq!(g.owed_open.len(), 1);
    let disk = Checkpoints::load(&g.opts.state_dir).unwrap();
    assert_eq!(disk.gz_owed.len(), 2);
}

#[test]
fn a_backlog_with_a_secret_on_every_line_is_worked_through_in_bounded_passes() {
    let tmp = tempfile::tempdir().unwrap();
    let live = container(tmp.path(), 'f', "flood", false, "");
    let parts = Parts::new();
    let mut g = parts.guard(tmp.path());
    let mut bytes = Vec::new();
    let n = 130_000u64;
    for i in 0..n {
        let t = token(&format!("Fl{i:07}T7wK9mB2vN5cR8yL4pF6hJ"));
        bytes.extend(line(&format!("request {i} key={t}"), i));
    }
    assert!(bytes.len() as u64 > 2 * PASS_MAX);
    append(&live, &bytes);
    let (mut passes, mut recorded, mut scanned) = (0, 0, 0);
    while scanned < bytes.len() as u64 {
        let s = g.sync_all();
        assert!(s.bytes <= PASS_MAX, "one pass scanned {} bytes", s.bytes);
        assert!(s.bytes > 0, "a pass scanned nothing");
        // The container is due again at once.
        assert!(scanned + s.bytes == bytes.len() as u64 || g.held_due().contains(&"f".repeat(64)));
        scanned += s.bytes;
        recorded += s.recorded;
        passes += 1;
    }
    assert_eq!(passes, bytes.len().div_ceil(PASS_MAX as usize));
    let text = fs::read(&live).unwrap();
    assert_eq!(text.len(), bytes.len());
    assert!(recorded >= n - 20, "{recorded} of {n} recorded");
    for i in [n / 3, n / 2, n - 1] {
        let t = token(&format!("Fl{i:07}T7wK9mB2vN5cR8yL4pF6hJ"));
        assert!(
            !String::from_utf8_lossy(&text).contains(t.as_str()),
            "token {i} is still in the file"
        );
    }
}

#[test]
fn a_flood_of_distinct_secrets_is_masked_and_counted_within_the_recording_budget() {
    let tmp = tempfile::tempdir().unwrap();
    let live = container(tmp.path(), 'f', "flood", false, "");
    let parts = Parts::new();
    let mut g = parts.guard_with(tmp.path(), |o| o.findings_per_second = 1);
    let burst = crate::findings::budget::BURST_SECONDS as usize;
    let tokens: Vec<String> = (0..1000)
        .map(|i| token(&format!("Fl{i:05}xT7wK9mB2vN5cR8yL4pF6hJ")))
        .collect();
    let mut bytes = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        bytes.extend(line(&format!("request {i} key={t}"), i as u64));
    }
    // A secret recorded one by one (in the burst), repeated 50 times past it.
    for i in 0..50u64 {
        bytes.extend(line(&format!("again key={}", tokens[0]), 1000 + i));
    }
    append(&live, &bytes);
    let s = g.sync_all();
    assert_eq!(s.recorded, 1050);
    g.commit(Commit::Now).unwrap();
    let text = fs::read(&live).unwrap();
    assert_eq!(text.len(), bytes.len());
    for t in &tokens {
        assert!(
            !String::from_utf8_lossy(&text).contains(t.as_str()),
            "a token is still in the file"
        );
    }
    let recs = records(tmp.path());
    let count = |r: &serde_json::Value| r["occurrences"]["count"].as_u64().unwrap_or(1);
    let ones: Vec<&serde_json::Value> = recs.iter().filter(|r| r.get("occurrences").is_none()).collect();
    assert_eq!(ones.len(), burst, "the burst is recorded one by one");
    let aggs: Vec<&serde_json::Value> = recs.iter().filter(|r| r.get("occurrences").is_some()).collect();
    assert_eq!(aggs.len(), 2, "{aggs:?}");
    let over = aggs
        .iter()
        .find(|r| r["fingerprint"].as_str().unwrap().starts_with("over-cap:"))
        .unwrap();
    assert_eq!(count(over), 1000 - burst as u64);
    assert_eq!(over["container"], "flood");
    let again = aggs
        .iter()
        .find(|r| r["fingerprint"] == ones[0]["fingerprint"])
        .unwrap();
    assert_eq!(count(again), 50);
    assert_eq!(
        recs.iter().map(count).sum::<u64>(),
        1050,
        "every occurrence counted once"
    );
    assert_eq!(
        metric(g.metrics, crate::metrics::FINDINGS_OVER_CAP_TOTAL),
        (1000 - burst) as f64
    );
    assert_eq!(metric(g.metrics, crate::metrics::FINDINGS_AGGREGATED_TOTAL), 50.0);
    // A restart records nothing again.
    drop(g);
    let mut g = parts.guard_with(tmp.path(), |o| o.findings_per_second = 1);
    assert_eq!(g.sync_all(), SyncStats::default());
    g.commit(Commit::Now).unwrap();
    assert_eq!(records(tmp.path()).len(), recs.len());
}

#[test]
fn a_report_at_its_cap_counts_new_secrets_per_rule_and_never_unlists_a_listed_one() {
    let tmp = tempfile::tempdir().unwrap();
    let live = container(tmp.path(), 'a', "flood", false, "");
    let parts = Parts::new();
    let cap: u64 = 256 << 10;
    let opts = |o: &mut GuardOptions| {
        o.findings_per_second = 1_000_000;
        o.findings_max_bytes = cap;
    };
    let mut g = parts.guard_with(tmp.path(), opts);
    let fps = |recs: &[serde_json::Value]| -> HashSet<String> {
        recs.iter()
            .map(|r| r["fingerprint"].as_str().unwrap().to_string())
            .filter(|f| !f.starts_with("over-cap:"))
            .collect()
    };
    let count = |r: &serde_json::Value| r["occurrences"]["count"].as_u64().unwrap_or(1);
    // 3 000 distinct secrets (about 2.5 MB of records at one a secret) in batches, each batch
    // checkpointed (the report rotates and folds), and the guard restarted halfway.
    let mut listed_early = HashSet::new();
    for b in 0..30u64 {
        let bytes: Vec<u8> = (b * 100..b * 100 + 100)
            .flat_map(|i| {
                line(
                    &format!("request {i} key={}", token(&format!("Rc{i:05}xT7wK9mB2vN5cR8yL4pF6hJ"))),
                    i,
                )
            })
            .collect();
        append(&live, &bytes);
        g.sync_all();
        g.commit(Commit::Now).unwrap();
        if b == 2 {
            listed_early = fps(&records(tmp.path()));
        }
        if b == 15 {
            drop(g);
            g = parts.guard_with(tmp.path(), opts);
        }
    }
    let recs = records(tmp.path());
    let listed = fps(&recs);
    assert!(!listed_early.is_empty());
    assert!(
        listed_early.is_subset(&listed),
        "{} secret(s) listed earlier are no longer listed",
        listed_early.difference(&listed).count()
    );
    assert!(
        (listed.len() as u64) < 3000 && (listed.len() as u64) * 500 <= cap / 2,
        "{} listed one by one",
        listed.len()
    );
    assert_eq!(
        recs.iter().map(count).sum::<u64>(),
        3000,
        "every occurrence counted once"
    );
    let over: u64 = recs
        .iter()
        .filter(|r| r["fingerprint"].as_str().unwrap().starts_with("over-cap:"))
        .map(count)
        .sum();
    assert_eq!(over + listed.len() as u64, 3000);
    let dir: u64 = fs::read_dir(tmp.path().join("state/findings"))
        .unwrap()
        .flatten()
        .map(|e| e.metadata().unwrap().len())
        .sum();
    assert!(
        dir <= cap,
        "the report's directory ({dir} bytes) is over its cap ({cap})"
    );
    assert!(metric(g.metrics, crate::metrics::FINDINGS_OVER_CAP_TOTAL) > 0.0);
}

#[test]
fn a_kill_during_a_flood_neither_loses_nor_doubles_the_counts_past_the_budget() {
    let tmp = tempfile::tempdir().unwrap();
    let live = container(tmp.path(), 'c', "flood", false, "");
    let parts = Parts::new();
    let burst = crate::findings::budget::BURST_SECONDS as u64;
    // (No rotation of the report: it comes only after a checkpoint, which the kills below
    // undo by putting the files back.)
    let opts = |o: &mut GuardOptions| {
        o.findings_per_second = 1;
        o.findings_max_bytes = 64 << 20;
    };
    let mut g = parts.guard_with(tmp.path(), opts);
    let batch = |from: u64, n: u64| -> Vec<u8> {
        (from..from + n)
            .flat_map(|i| {
                line(
                    &format!("request {i} key={}", token(&format!("Kl{i:05}xT7wK9mB2vN5cR8yL4pF6hJ"))),
                    i,
                )
            })
            .collect()
    };
    append(&live, &batch(0, 600));
    g.sync_all();
    g.commit(Commit::Now).unwrap();
    // Counted past the budget, and killed before the next checkpoint.
    append(&live, &batch(600, 400));
    g.sync_all();
    drop(g);
    let mut g = parts.guard_with(tmp.path(), opts);
    g.sync_all();
    g.commit(Commit::Now).unwrap();
    let count = |r: &serde_json::Value| r["occurrences"]["count"].as_u64().unwrap_or(1);
    let total = || records(tmp.path()).iter().map(count).sum::<u64>();
    assert_eq!(total(), 1000, "every occurrence counted once");
    let recs = records(tmp.path());
    assert!(recs.iter().filter(|r| r.get("occurrences").is_none()).count() as u64 >= burst);
    // Killed after the aggregates reached the report, before the journal started afresh and
    // before the checkpoint: neither is on disk (their files as before the checkpoint).
    let state = tmp.path().join("state");
    let keep = |names: &[&str]| -> Vec<(PathBuf, Vec<u8>)> {
        names
            .iter()
            .map(|n| (state.join(n), fs::read(state.join(n)).unwrap()))
            .collect()
    };
    let put_back = |saved: Vec<(PathBuf, Vec<u8>)>| {
        for (p, bytes) in saved {
            fs::write(p, bytes).unwrap();
        }
    };
    append(&live, &batch(1000, 300));
    g.sync_all();
    let saved = keep(&["checkpoints.json", "aggregates.jsonl"]);
    g.commit(Commit::Now).unwrap();
    drop(g);
    put_back(saved);
    let mut g = parts.guard_with(tmp.path(), opts);
    g.sync_all();
    g.commit(Commit::Now).unwrap();
    assert_eq!(
        total(),
        1300,
        "a journal whose counts are in the report is not counted again"
    );
    // Killed after the checkpoint, before the journal started afresh.
    append(&live, &batch(1300, 200));
    g.sync_all();
    let saved = keep(&["aggregates.jsonl"]);
    g.commit(Commit::Now).unwrap();
    drop(g);
    put_back(saved);
    let mut g = parts.guard_with(tmp.path(), opts);
    g.sync_all();
    g.commit(Commit::Now).unwrap();
    assert_eq!(
        total(),
        1500,
        "a journal the checkpoint says was written is not counted again"
    );
    // Killed after the counts were journaled, before the masks were written (and noted so in
    // the journal): the rescan masks them and counts them no more, also when a second kill comes
    // before any checkpoint.
    append(&live, &batch(1500, 250));
    let unmasked = fs::read(&live).unwrap();
    g.sync_all();
    drop(g);
    let journal = fs::read_to_string(state.join("aggregates.jsonl")).unwrap();
    let cut = journal
        .strip_suffix("{\"masked\":true}\n")
        .expect("the masks noted written");
    assert!(cut.contains("{\"ids\":["));
    fs::write(state.join("aggregates.jsonl"), cut).unwrap();
    fs::write(&live, &unmasked).unwrap();
    let mut g = parts.guard_with(tmp.path(), opts);
    assert_eq!(g.sync_all().recorded, 0, "counted or recorded already");
    drop(g);
    fs::write(&live, &unmasked).unwrap();
    let mut g = parts.guard_with(tmp.path(), opts);
    g.sync_all();
    g.commit(Commit::Now).unwrap();
    assert_eq!(total(), 1750, "occurrences counted before their masks are counted once");
    let text = String::from_utf8(fs::read(&live).unwrap()).unwrap();
    assert!(!text.contains("xT7wK9mB2vN5cR8yL4pF6hJ"), "every secret masked");
    // The checkpoint holds the keys: the journal no longer does.
    assert!(!fs::read_to_string(state.join("aggregates.jsonl"))
        .unwrap()
        .contains("\"ids\""));
    assert!(!Checkpoints::load(&state).unwrap().recovered.is_empty());
    assert_eq!(fsutil_mode(&state.join("aggregates.jsonl")), 0o600);
}

#[test]
fn a_kill_of_a_guard_that_only_reports_counts_nothing_twice_past_the_budget() {
    let tmp = tempfile::tempdir().unwrap();
    let live = container(tmp.path(), 'c', "flood", false, "");
    let parts = Parts::new();
    let opts = |o: &mut GuardOptions| {
        o.findings_per_second = 1;
        o.mask = false;
    };
    let lines: Vec<u8> = (0..400u64)
        .flat_map(|i| {
            line(
                &format!("request {i} key={}", token(&format!("Rp{i:05}xT7wK9mB2vN5cR8yL4pF6hJ"))),
                i,
            )
        })
        .collect();
    append(&live, &lines);
    let mut g = parts.guard_with(tmp.path(), opts);
    g.sync_all();
    drop(g);
    let mut g = parts.guard_with(tmp.path(), opts);
    assert_eq!(g.sync_all().recorded, 0, "counted or recorded already");
    g.commit(Commit::Now).unwrap();
    let count = |r: &serde_json::Value| r["occurrences"]["count"].as_u64().unwrap_or(1);
    assert_eq!(records(tmp.path()).iter().map(count).sum::<u64>(), 400);
    assert_eq!(fs::read(&live).unwrap(), lines, "reported, not masked");
}

#[test]
fn the_gz_of_a_file_scanned_whole_is_checked_from_the_masks_written_without_a_scan() {
    let tmp = tempfile::tempdir().unwrap();
    let live = container(tmp.path(), 'e', "gw", true, "");
    let parts = Parts::new();
    let mut g = parts.guard(tmp.path());

    // 1. Masked before Docker made the .gz (Docker read the masked bytes): nothing to do.
    append(
        &live,
        &[line("first file", 0), line(&format!("one {}", token(T1)), 1)].concat(),
    );
    assert_eq!(g.sync_all().masked, 1);
    let masked = fs::read(&live).unwrap();
    assert_clean(&masked, &[T1]);
    // File times come from the kernel's coarse clock (a tick of up to 10 ms): a .gz made
    // within a tick of the mask may look born before it and is then checked (decompressed),
    // which is safe but not what this step tests.
    std::thread::sleep(Duration::from_millis(20));
    let (_, gz) = rotate_compressed(&live, &masked, false);
    let gz_bytes = fs::read(&gz).unwrap();
    append(&live, &line("second file", 2));
    let before = bytes_scanned(&g);
    g.sync_all();
    assert_eq!(fs::read(&gz).unwrap(), gz_bytes, "not rewritten");
    assert_eq!(metric(g.metrics, crate::metrics::LOG_GZ_CHECKED_TOTAL), 1.0);
    assert_eq!(
        bytes_scanned(&g) - before,
        line("second file", 2).len() as f64,
        "only the new live file"
    );

    // 2. Masked after Docker made the .gz (it read the secret in clear): rewritten with the
    // masks written, without a scan.
    append(&live, &line(&format!("two {}", token(T2)), 3));
    let content = fs::read(&live).unwrap();
    fs::rename(
        &gz,
        gz.with_file_name(format!("{}.2.gz", live.file_name().unwrap().to_str().unwrap())),
    )
    .unwrap();
    let (plain, gz) = rotate_compressed(&live, &content, true);
    std::thread::sleep(Duration::from_millis(20));
    append(&live, &line("third file", 4));
    let s = g.sync_all();
    assert_eq!(
        (s.recorded, s.masked),
        (1, 1),
        "T2 found and masked in {}",
        plain.display()
    );
    fs::remove_file(&plain).unwrap();
    let before = bytes_scanned(&g);
    let s = g.sync_all();
    assert_eq!(s.masked, 1);
    assert_eq!(bytes_scanned(&g), before, "not scanned");
    assert_eq!(metric(g.metrics, crate::metrics::LOG_GZ_CHECKED_TOTAL), 2.0);
    let now = gunzip(&gz);
    assert_eq!(now.len(), content.len());
    assert_clean(&now, &[T2]);
    assert_eq!(records(tmp.path()).len(), 2, "T1 and T2, once each");
    assert_eq!(g.sync_all(), SyncStats::default());

    // 3. Masked after Docker created the .gz but before it read that part (the .gz holds the
    // masks): checked, not rewritten.
    let name = live.file_name().unwrap().to_str().unwrap().to_string();
    fs::rename(&gz, gz.with_file_name(format!("{name}.3.gz"))).unwrap();
    append(&live, &line(&format!("three {}", token(T3)), 5));
    let content = fs::read(&live).unwrap();
    let (plain, gz) = rotate_compressed(&live, &content, true);
    std::thread::sleep(Duration::from_millis(20));
    append(&live, &line("fourth file", 6));
    assert_eq!(g.sync_all().masked, 1);
    let masked = fs::read(&plain).unwrap();
    assert_clean(&masked, &[T3]);
    // Docker's compression reads the masked bytes (same .gz file, written again in place).
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(&masked).unwrap();
    fs::write(&gz, enc.finish().unwrap()).unwrap();
    fs::remove_file(&plain).unwrap();
    let ino = fs::metadata(&gz).unwrap().ino();
    let before = bytes_scanned(&g);
    let s = g.sync_all();
    assert_eq!(bytes_scanned(&g), before, "not scanned");
    assert_eq!(s.masked, 0, "nothing left to mask");
    assert_eq!(fs::metadata(&gz).unwrap().ino(), ino, "not rewritten");
    assert_eq!(metric(g.metrics, crate::metrics::LOG_GZ_MASKS_FOUND_TOTAL), 1.0);
    assert_eq!(metric(g.metrics, crate::metrics::LOG_GZ_CHECKED_TOTAL), 3.0);
    assert_clean(&gunzip(&gz), &[T3]);
    assert_eq!(g.sync_all(), SyncStats::default());
}

#[test]
fn the_gz_of_a_file_scanned_whole_with_an_entry_open_at_its_end_is_joined_and_masked_without_a_scan() {
    let tmp = tempfile::tempdir().unwrap();
    let live = container(tmp.path(), 'f', "gw", true, "");
    let parts = Parts::new();
    let mut g = parts.guard(tmp.path());
    let tok = token(T1);
    // A secret masked in place, and the first part of an entry split at 16 KiB: held.
    append(
        &live,
        &[line(&format!("one {}", token(T2)), 0), split_head(&tok)].concat(),
    );
    let s = g.sync_all();
    assert_eq!((s.recorded, s.masked), (1, 1), "T2; T1 held");
    let content = fs::read(&live).unwrap();
    // Docker rotates, compresses the file and deletes it before the guard's next sync; the
    // entry's last part opens the new file.
    std::thread::sleep(Duration::from_millis(20));
    let (_, gz) = rotate_compressed(&live, &content, false);
    let rest = [line(&format!("{} done", &tok[14..]), 2), line("after", 3)].concat();
    append(&live, &rest);
    let before = bytes_scanned(&g);
    let s = g.sync_all();
    assert_eq!(s.recorded, 1, "T1, joined");
    // The new file and the carried entry, not the whole `.gz` (decompressed and scanned).
    let read = bytes_scanned(&g) - before;
    assert!(
        read < (rest.len() + split_head(&tok).len()) as f64 + 1.0,
        "{read} bytes scanned, more than {} + {}",
        rest.len(),
        split_head(&tok).len()
    );
    let now = gunzip(&gz);
    assert_eq!(now.len(), content.len());
    assert!(
        !String::from_utf8_lossy(&now).contains(&tok[..14]),
        "T1's start masked in the .gz"
    );
    assert_clean(&now, &[T2]);
    assert!(!String::from_utf8(fs::read(&live).unwrap())
        .unwrap()
        .contains(&tok[14..]));
    // Checked: nothing more, also after a restart.
    assert_eq!(g.sync_all(), SyncStats::default());
    g.commit(Commit::Now).unwrap();
    drop(g);
    let parts = Parts::new();
    let mut g = parts.guard(tmp.path());
    assert_eq!(g.sync_all().recorded, 0);
    let recs = records(tmp.path());
    assert_eq!(recs.len(), 2, "T1 and T2 once each: {recs:?}");
}

#[test]
fn a_gz_whose_plain_file_was_scanned_in_part_is_never_taken_as_clean_from_the_masks_written() {
    let tmp = tempfile::tempdir().unwrap();
    let live = container(tmp.path(), 'a', "gw", true, "");
    let parts = Parts::new();
    let mut g = parts.guard(tmp.path());
    append(
        &live,
        &[line("first file", 0), line(&format!("one {}", token(T1)), 1)].concat(),
    );
    assert_eq!(g.sync_all().masked, 1);
    // More is written, and Docker rotates and compresses before the guard reads it.
    append(&live, &line(&format!("two {}", token(T2)), 2));
    let content = fs::read(&live).unwrap();
    let (_, gz) = rotate_compressed(&live, &content, false);
    append(&live, &line("second file", 3));
    g.sync_all();
    assert_clean(&gunzip(&gz), &[T1, T2]);
    // Had that rewrite lost a race with Docker's renames, the `.gz` met next is the one
    // Docker made: the masks written into the plain file are not all it needs.
    std::thread::sleep(Duration::from_millis(20));
    fs::remove_file(&gz).unwrap();
    gzip_like_docker(&content, &gz);
    g.sync_all();
    assert_clean(&gunzip(&gz), &[T2]);
    assert_eq!(records(tmp.path()).len(), 2);
}

#[test]
fn a_gz_made_before_this_run_started_on_its_plain_file_is_scanned() {
    let tmp = tempfile::tempdir().unwrap();
    let live = container(tmp.path(), 'c', "gw", true, "");
    append(
        &live,
        &[line("first file", 0), line(&format!("one {}", token(T1)), 1)].concat(),
    );
    // Docker rotates and compresses: it reads T1 in clear.
    let content = fs::read(&live).unwrap();
    let (plain, gz) = rotate_compressed(&live, &content, true);
    std::thread::sleep(Duration::from_millis(20));
    // A run masks name.1 and is killed before its checkpoint.
    let parts = Parts::new();
    let mut g = parts.guard(tmp.path());
    assert_eq!(g.sync_all().masked, 1);
    std::mem::forget(g);
    // The next run scans name.1 from its start (nothing left to mask there), then Docker
    // removes it: the .gz still holds T1, which only a scan finds.
    let parts = Parts::new();
    let mut g = parts.guard(tmp.path());
    assert_eq!(g.sync_all().masked, 0);
    fs::remove_file(&plain).unwrap();
    append(&live, &line("second file", 2));
    g.sync_all();
    assert_eq!(metric(g.metrics, crate::metrics::LOG_GZ_CHECKED_TOTAL), 0.0);
    assert_clean(&gunzip(&gz), &[T1]);
}

#[test]
fn a_gz_that_is_not_the_file_remembered_is_scanned() {
    let tmp = tempfile::tempdir().unwrap();
    let live = container(tmp.path(), 'f', "gw", true, "");
    let parts = Parts::new();
    let mut g = parts.guard(tmp.path());
    let first = line("first file", 0);
    let last = line(&format!("one {}", token(T1)), 1);
    append(&live, &[first.clone(), last.clone()].concat());
    assert_eq!(g.sync_all().masked, 1);
    // A .gz with the same first line and size, and another end (T3 for T1, another time).
    let other = [first, line(&format!("one {}", token(T3)), 9)].concat();
    assert_eq!(other.len(), fs::metadata(&live).unwrap().len() as usize);
    let (plain, gz) = rotate_compressed(&live, &other, true);
    std::thread::sleep(Duration::from_millis(20));
    // A mask after the .gz was made: the rewrite from memory finds another tail and is dropped.
    g.note_written(&g.written.keys().next().unwrap().clone(), &[]);
    fs::remove_file(&plain).unwrap();
    append(&live, &line("second file", 2));
    let s = g.sync_all();
    // (Recorded as the occurrence of the plain file's last line: not recorded again.)
    assert_eq!(s.masked, 1, "T3, found by the scan");
    assert_eq!(metric(g.metrics, crate::metrics::LOG_GZ_CHECKED_TOTAL), 0.0);
    assert_clean(&gunzip(&gz), &[T1, T3]);
}

#[test]
fn rotated_and_compressed_files_are_masked_and_not_recorded_twice() {
    let tmp = tempfile::tempdir().unwrap();
    let live = container(tmp.path(), 'd', "gw", true, "");
    let dir = live.parent().unwrap().to_path_buf();
    let name = live.file_name().unwrap().to_str().unwrap().to_string();
    append(&live, &line("start", 0));
    append(&live, &line(&format!("one {}", token(T1)), 1));
    let parts = Parts::new();
    let mut g = parts.guard(tmp.path());
    assert_eq!(g.sync_all().recorded, 1);
    // More is written, then Docker rotates and compresses while the guard is away; the
    // compressed copy was made before the guard masked T2 (it never saw it).
    append(&live, &line(&format!("two {}", token(T2)), 2));
    // The compressed copy holds T1 unmasked too (compressed before the mask was written).
    let content = [
        line("start", 0),
        line(&format!("one {}", token(T1)), 1),
        line(&format!("two {}", token(T2)), 2),
    ]
    .concat();
    assert_eq!(content.len() as u64, fs::metadata(&live).unwrap().len());
    gzip_like_docker(&content, &dir.join(format!("{name}.1.gz")));
    fs::remove_file(&live).unwrap();
    append(&live, &line(&format!("three {}", token(T3)), 3));
    // While name.1 exists, the .gz is being written: left alone.
    fs::write(dir.join(format!("{name}.1")), b"").unwrap();
    g.sync_all();
    let gz = dir.join(format!("{name}.1.gz"));
    let gz_before = fs::read(&gz).unwrap();
    fs::remove_file(dir.join(format!("{name}.1"))).unwrap();
    let s = g.sync_all();
    g.commit(Commit::Now).unwrap();
    assert_ne!(fs::read(&gz).unwrap(), gz_before, "rewritten");
    let mut dec = flate2::read::GzDecoder::new(File::open(&gz).unwrap());
    let mut plain = Vec::new();
    dec.read_to_end(&mut plain).unwrap();
    assert_eq!(plain.len(), content.len(), "same length");
    assert_clean(&plain, &[T1, T2]);
    assert_eq!(
        dec.header().unwrap().extra().unwrap(),
        br#"{"lastTime":"2026-11-27T00:00:00.000000100Z"}"#,
        "Docker's lastTime is kept"
    );
    assert_eq!(fs::metadata(&gz).unwrap().permissions().mode() & 0o777, 0o640);
    assert_clean(&fs::read(&live).unwrap(), &[T3]);
    let rules: Vec<String> = records(tmp.path())
        .iter()
        .map(|r| r["fingerprint"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        rules.len(),
        3,
        "T1 once, T2 from the .gz, T3 from the new live file: {s:?}"
    );
    // No temporary file is left, and nothing is checked twice.
    assert!(fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .all(|e| !e.file_name().to_string_lossy().ends_with(".tmp")));
    assert_eq!(g.sync_all(), SyncStats::default());
}

#[test]
fn a_new_file_whose_file_before_docker_rotated_in_after_the_listing_waits_for_a_new_listing() {
    let tmp = tempfile::tempdir().unwrap();
    let live = container(tmp.path(), '9', "gw", false, "");
    let name = live.file_name().unwrap().to_str().unwrap().to_string();
    let (one, two) = (
        live.with_file_name(format!("{name}.1")),
        live.with_file_name(format!("{name}.2")),
    );
    let parts = Parts::new();
    let mut g = parts.guard(tmp.path());
    append(&live, &line("file a", 0));
    g.sync_all();
    // Two rotations after the guard's last listing: B (never synced) ends with the first part
    // of a split entry whose last part opens C, the new live file.
    let tok = token(T1);
    let part = split_head(&tok);
    fs::rename(&live, &one).unwrap();
    append(&live, &[line("file b", 1), part].concat());
    fs::rename(&one, &two).unwrap();
    fs::rename(&live, &one).unwrap();
    append(&live, &line(&format!("{} done", &tok[14..]), 2));
    // C synced as the listing before these rotations said: its file before is `name.1`, now B.
    let c = g.containers.values().next().unwrap().clone();
    let prev = || {
        Some(Prev {
            path: one.clone(),
            gz: false,
            masks: true,
            owe_here: false,
            gap: false,
        })
    };
    let s = g
        .try_sync_plain(
            &c,
            PlainFile {
                path: &live,
                live: true,
                masks: true,
                prev: prev(),
            },
        )
        .unwrap();
    assert_eq!(s, SyncStats::default(), "C waits");
    assert!(g.retry.contains_key(&c.id), "listed again soon");
    // A file after C (Docker rotated once more) waits too: C has a checkpoint, at its start.
    let d = live.with_file_name(format!("{name}.after"));
    append(&d, &line("file d", 3));
    let next = Some(Prev {
        path: live.clone(),
        gz: false,
        masks: true,
        owe_here: false,
        gap: false,
    });
    let s = g
        .try_sync_plain(
            &c,
            PlainFile {
                path: &d,
                live: false,
                masks: true,
                prev: next,
            },
        )
        .unwrap();
    assert_eq!(s, SyncStats::default(), "D waits for C");
    fs::remove_file(&d).unwrap();
    // With a new listing, B first and C with B's end: one finding, masked in both files.
    g.retry.clear();
    let s = g.sync_all();
    assert_eq!(s.recorded, 1, "{s:?}");
    assert_clean(
        &[fs::read(&one).unwrap(), fs::read(&live).unwrap()].concat(),
        &[&tok[..14], &tok[14..]],
    );
    // A new file whose file before never gets a checkpoint is scanned alone after a few tries.
    let other = container(tmp.path(), '8', "gw2", false, "");
    g.discover().unwrap();
    let c2 = g.containers.get(&"8".repeat(64)).unwrap().clone();
    append(&other, &line(&format!("alone {}", token(T2)), 0));
    let nowhere = other.with_file_name("missing-first-line.1");
    fs::write(&nowhere, b"no complete line").unwrap();
    append(&nowhere, &line("x", 0));
    let mut scanned = SyncStats::default();
    let t = Instant::now();
    while scanned.recorded == 0 && t.elapsed() < 2 * CARRY_RELIST {
        std::thread::sleep(Duration::from_millis(20));
        scanned += g
            .try_sync_plain(
                &c2,
                PlainFile {
                    path: &other,
                    live: true,
                    masks: true,
                    prev: Some(Prev {
                        path: nowhere.clone(),
                        gz: false,
                        masks: true,
                        owe_here: false,
                        gap: false,
                    }),
                },
            )
            .unwrap();
    }
    assert_eq!(scanned.recorded, 1, "scanned alone at last");
    assert!(t.elapsed() >= CARRY_RELIST, "after waiting");
}

/// Whether `bytes` holds `piece` in clear.
fn holds(bytes: &[u8], piece: &str) -> bool {
    memchr::memmem::find(bytes, piece.as_bytes()).is_some()
}

#[test]
fn a_listing_read_while_docker_renamed_does_not_join_a_file_with_one_two_rotations_older() {
    // Seen in the stress benchmark at ~170 000 lines/s: the listing was read in the middle of a
    // rotation (`name.2` already renamed to `name.3`, `name.1` not yet to `name.2`), so that
    // `name.1`'s file before was taken to be `name.3`; by the time `name.1` was opened Docker had
    // finished the rotation, and the new file there was joined with the end of the file two
    // rotations older. Both secrets split across the two rotations in between were left in clear.
    let tmp = tempfile::tempdir().unwrap();
    let live = container(tmp.path(), '9', "gw", false, "");
    let name = live.file_name().unwrap().to_str().unwrap().to_string();
    let n = |k: u32| live.with_file_name(format!("{name}.{k}"));
    let parts = Parts::new();
    let mut g = parts.guard(tmp.path());
    let (a, b) = (token(T1), token(T2));
    // E: ends with the first part of an entry carrying A.
    append(&live, &[line("file e", 0), split_head(&a)].concat());
    g.sync_all();
    // F continues A and ends with the first part of an entry carrying B; G continues B.
    fs::rename(&live, n(1)).unwrap();
    append(
        &live,
        &[
            line(&format!("{} done", &a[14..]), 1),
            line("file f", 2),
            split_head(&b),
        ]
        .concat(),
    );
    fs::rename(n(1), n(2)).unwrap();
    fs::rename(&live, n(1)).unwrap();
    append(
        &live,
        &[line(&format!("{} done", &b[14..]), 3), line("file g", 4)].concat(),
    );
    // A third rotation: E is `name.3`, F `name.2`, G `name.1`, H the live file.
    fs::rename(n(2), n(3)).unwrap();
    fs::rename(n(1), n(2)).unwrap();
    fs::rename(&live, n(1)).unwrap();
    append(&live, &line("file h", 5));
    // `name.1` synced as the listing read mid-rotation said: `name.3` before it, no `name.2`.
    let c = g.containers.values().next().unwrap().clone();
    let s = g
        .try_sync_plain(
            &c,
            PlainFile {
                path: &n(1),
                live: false,
                masks: true,
                prev: Some(Prev {
                    path: n(3),
                    gz: false,
                    masks: true,
                    owe_here: false,
                    gap: true,
                }),
            },
        )
        .unwrap();
    assert_eq!(s, SyncStats::default(), "waits for a listing without a gap");
    assert!(g.retry.contains_key(&c.id), "listed again soon");
    // The next listing joins each file with the one before it.
    g.retry.clear();
    let s = g.sync_all();
    assert_eq!(s.recorded, 2, "{s:?}");
    let all: Vec<u8> = [n(3), n(2), n(1), live.clone()]
        .iter()
        .flat_map(|p| fs::read(p).unwrap())
        .collect();
    for piece in [&a[..14], &a[14..], &b[..14], &b[14..]] {
        assert!(!holds(&all, piece), "a part of a split secret is left in clear");
    }
    assert_clean(&all, &[T1, T2]);
    // The order of a listing: a gap is flagged, neighbours are not.
    let order = vec![(3, n(3), false), (1, n(1), false), (0, live.clone(), false)];
    let prev = |i| super::listing::prev_in(&order, i, true, false).map(|p| (p.path, p.gap));
    assert_eq!(prev(0), None);
    assert_eq!(prev(1), Some((n(3), true)));
    assert_eq!(prev(2), Some((n(1), false)));
}

#[test]
fn a_new_file_with_the_inode_of_a_removed_file_that_waited_waits_anew() {
    let tmp = tempfile::tempdir().unwrap();
    let live = container(tmp.path(), '9', "gw", false, "");
    let name = live.file_name().unwrap().to_str().unwrap().to_string();
    let (one, two) = (
        live.with_file_name(format!("{name}.1")),
        live.with_file_name(format!("{name}.2")),
    );
    let parts = Parts::new();
    let mut g = parts.guard(tmp.path());
    append(&live, &line("file a", 0));
    g.sync_all();
    // As above: B, never synced, ends with the first part of an entry that C continues.
    let tok = token(T1);
    fs::rename(&live, &one).unwrap();
    append(&live, &[line("file b", 1), split_head(&tok)].concat());
    fs::rename(&one, &two).unwrap();
    fs::rename(&live, &one).unwrap();
    append(&live, &line(&format!("{} done", &tok[14..]), 2));
    // C's inode was a removed file's, which waited a moment ago (at dozens of rotations a
    // second, Docker removes a file while it waits and gives its inode to a new one).
    let meta = fs::metadata(&live).unwrap();
    let earlier = Instant::now().checked_sub(2 * CARRY_RELIST).unwrap();
    g.carry_waits.insert((meta.dev(), meta.ino()), (earlier, (1, 0)));
    let c = g.containers.values().next().unwrap().clone();
    let prev = Some(Prev {
        path: one.clone(),
        gz: false,
        masks: true,
        owe_here: false,
        gap: false,
    });
    let s = g
        .try_sync_plain(
            &c,
            PlainFile {
                path: &live,
                live: true,
                masks: true,
                prev,
            },
        )
        .unwrap();
    assert_eq!(s, SyncStats::default(), "C waits: the earlier wait was another file's");
    g.retry.clear();
    assert_eq!(g.sync_all().recorded, 1, "joined with the end of B");
    assert_clean(
        &[fs::read(&one).unwrap(), fs::read(&live).unwrap()].concat(),
        &[&tok[..14], &tok[14..]],
    );
    assert!(g.carry_waits.is_empty(), "forgotten once C is scanned");
}

#[test]
fn a_new_file_waits_as_long_as_the_file_before_it_is_waiting_itself() {
    let tmp = tempfile::tempdir().unwrap();
    let live = container(tmp.path(), '7', "gw", false, "");
    let name = live.file_name().unwrap().to_str().unwrap().to_string();
    let one = live.with_file_name(format!("{name}.1"));
    let parts = Parts::new();
    let mut g = parts.guard(tmp.path());
    let c = g.containers.values().next().unwrap().clone();
    // `name.1` waits for the file before it (its checkpoint is at its start).
    let first = line("file b", 0);
    append(&one, &first);
    let ident = checkpoint::identity(&c.id, &first);
    g.marks.files.insert(
        ident,
        FileMark {
            container: c.id.clone(),
            ..FileMark::default()
        },
    );
    append(&live, &line(&format!("c {}", token(T1)), 1));
    let prev = || {
        Some(Prev {
            path: one.clone(),
            gz: false,
            masks: true,
            owe_here: false,
            gap: false,
        })
    };
    let t = Instant::now();
    while t.elapsed() < CARRY_RELIST + Duration::from_millis(200) {
        let s = g
            .try_sync_plain(
                &c,
                PlainFile {
                    path: &live,
                    live: true,
                    masks: true,
                    prev: prev(),
                },
            )
            .unwrap();
        assert_eq!(s, SyncStats::default(), "waits");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_new_file_waits_for_a_compressed_file_before_it_that_waited_as_a_plain_file() {
    let tmp = tempfile::tempdir().unwrap();
    let live = container(tmp.path(), '6', "gw", true, "");
    let name = live.file_name().unwrap().to_str().unwrap().to_string();
    let gz = live.with_file_name(format!("{name}.1.gz"));
    let parts = Parts::new();
    let mut g = parts.guard(tmp.path());
    let c = g.containers.values().next().unwrap().clone();
    // The file before waited as a plain file (a checkpoint at its start); Docker compressed it.
    let tok = token(T1);
    let (first, second) = split_across(&tok);
    gzip_like_docker(&first, &gz);
    let ident = checkpoint::identity(&c.id, &line("first line", 0));
    g.marks.files.insert(
        ident,
        FileMark {
            container: c.id.clone(),
            ..FileMark::default()
        },
    );
    append(&live, &second);
    waits_for_the_gz_then_joins(&mut g, &live, &gz, &tok);
}

#[test]
fn an_entry_split_across_a_rotation_is_one_finding_masked_in_both_files() {
    // (compressed, the guard was away while Docker rotated and compressed)
    for (compress, away) in [(false, false), (true, false), (true, true)] {
        let tmp = tempfile::tempdir().unwrap();
        let live = container(tmp.path(), 'a', "gw", compress, "");
        let dir = live.parent().unwrap().to_path_buf();
        let rotated = dir.join(format!("{}.1", live.file_name().unwrap().to_str().unwrap()));
        let gz = rotated.with_extension("1.gz");
        let tok = token(T1);
        let first = split_head(&tok);
        append(&live, &line("first line", 0));
        if away {
            // The guard saw only the first line before it went away.
            let parts = Parts::new();
            let mut g = parts.guard(tmp.path());
            g.sync_all();
            g.commit(Commit::Now).unwrap();
        }
        append(&live, &first);
        let parts = Parts::new();
        let mut g = parts.guard(tmp.path());
        if !away {
            assert_eq!(g.sync_all().recorded, 0, "held");
        }
        // Docker rotates between the two parts; the last part opens the new file.
        fs::rename(&live, &rotated).unwrap();
        append(&live, &line(&format!("{} done", &tok[14..]), 2));
        append(&live, &line("after", 3));
        let old = fs::read(&rotated).unwrap();
        if away {
            gzip_like_docker(&old, &gz);
            fs::remove_file(&rotated).unwrap();
        }
        let s = g.sync_all();
        assert_eq!(s.recorded, 1, "compress={compress} away={away}");
        if !compress {
            // Both files are synced before the next checkpoint: after a power cut each is
            // scanned alone, which would not find the secret again.
            assert_eq!(g.unsynced.len(), 2, "compress={compress} away={away}");
        }
        if compress {
            if !away {
                // Docker compresses name.1 and removes it; the compressed copy is masked.
                gzip_like_docker(&old, &gz);
                fs::remove_file(&rotated).unwrap();
                g.sync_all();
            }
            let mut plain = Vec::new();
            flate2::read::GzDecoder::new(File::open(&gz).unwrap())
                .read_to_end(&mut plain)
                .unwrap();
            assert_eq!(plain.len(), old.len());
            assert!(!String::from_utf8(plain).unwrap().contains(&tok[..14]), "away={away}");
        } else {
            assert!(!String::from_utf8(fs::read(&rotated).unwrap())
                .unwrap()
                .contains(&tok[..14]));
        }
        assert!(!String::from_utf8(fs::read(&live).unwrap())
            .unwrap()
            .contains(&tok[14..]));
        g.commit(Commit::Now).unwrap();
        assert_eq!(g.sync_all().recorded, 0);
        let recs = records(tmp.path());
        assert_eq!(recs.len(), 1, "away={away}: {recs:?}");
        assert_eq!(recs[0]["rule"], "github-pat");
    }
}

#[test]
fn the_part_of_a_joined_entry_in_the_new_file_is_owed_to_its_gz_across_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let live = container(tmp.path(), 'b', "gw", true, "");
    let dir = live.parent().unwrap().to_path_buf();
    let name = live.file_name().unwrap().to_str().unwrap().to_string();
    let (one, one_gz, two_gz) = (
        dir.join(format!("{name}.1")),
        dir.join(format!("{name}.1.gz")),
        dir.join(format!("{name}.2.gz")),
    );
    let tok = token(T1);
    let first = split_head(&tok);
    append(&live, &[line("first line", 0), first].concat());
    let parts = Parts::new();
    let mut g = parts.guard(tmp.path());
    g.sync_all();
    // Docker rotates between the two parts; the last part opens the new file.
    fs::rename(&live, &one).unwrap();
    append(
        &live,
        &[line(&format!("{} done", &tok[14..]), 2), line("after", 3)].concat(),
    );
    let (old, new) = (fs::read(&one).unwrap(), fs::read(&live).unwrap());
    assert_eq!(g.sync_all().recorded, 1);
    g.commit(Commit::Now).unwrap();
    // Docker had read the new file before the guard masked its first line: when it rotates
    // and compresses again, its `.gz` holds the last part in clear. The guard was killed
    // before it saw that `.gz`.
    std::mem::forget(g);
    gzip_like_docker(&old, &two_gz);
    fs::remove_file(&one).unwrap();
    fs::rename(&live, &one).unwrap();
    gzip_like_docker(&new, &one_gz);
    fs::remove_file(&one).unwrap();
    append(&live, &line("third file", 4));
    let parts = Parts::new();
    let mut g = parts.guard(tmp.path());
    g.sync_all();
    let (older, newer) = (gunzip(&two_gz), gunzip(&one_gz));
    assert_eq!((older.len(), newer.len()), (old.len(), new.len()));
    assert!(!String::from_utf8(older).unwrap().contains(&tok[..14]));
    assert!(
        !String::from_utf8(newer).unwrap().contains(&tok[14..]),
        "the .gz of the new file"
    );
    g.commit(Commit::Now).unwrap();
    assert_eq!(g.sync_all().recorded, 0);
    assert_eq!(records(tmp.path()).len(), 1);
}

#[test]
fn a_crash_between_the_masks_of_an_entry_joined_across_a_rotation_is_finished_at_the_next_start() {
    for compress in [false, true] {
        let tmp = tempfile::tempdir().unwrap();
        let live = container(tmp.path(), 'd', "gw", compress, "");
        let one = live.with_file_name(format!("{}.1", live.file_name().unwrap().to_str().unwrap()));
        let tok = token(T1);
        let first = split_head(&tok);
        append(&live, &[line("first line", 0), first].concat());
        let parts = Parts::new();
        let mut g = parts.guard(tmp.path());
        g.sync_all();
        g.commit(Commit::Now).unwrap();
        fs::rename(&live, &one).unwrap();
        append(
            &live,
            &[line(&format!("{} done", &tok[14..]), 2), line("after", 3)].concat(),
        );
        let old = fs::read(&one).unwrap();
        assert_eq!(g.sync_all().recorded, 1);
        // Saved before the masks: appended to the spans log (no fsync on the guard thread).
        let state = tmp.path().join("state");
        assert!(!SpansLog::load(&state).unwrap().is_empty());
        // Killed after the mask in the new file, before the one in the file before: what is
        // left of the secret can no longer be found by a scan.
        std::mem::forget(g);
        fs::write(&one, &old).unwrap();
        let parts = Parts::new();
        let mut g = parts.guard(tmp.path());
        g.sync_all();
        let text = |p: &Path| String::from_utf8(fs::read(p).unwrap()).unwrap();
        assert!(!text(&one).contains(&tok[..14]), "compress={compress}");
        assert!(!text(&live).contains(&tok[14..]), "compress={compress}");
        g.commit(Commit::Now).unwrap();
        assert!(!PendingMasks::path(&tmp.path().join("state")).exists());
        if compress {
            // Docker had compressed the file before from its state at the crash.
            let gz = one.with_extension("1.gz");
            gzip_like_docker(&old, &gz);
            fs::remove_file(&one).unwrap();
            g.sync_all();
            assert!(!String::from_utf8(gunzip(&gz)).unwrap().contains(&tok[..14]));
        }
        assert_eq!(g.sync_all().recorded, 0);
        assert_eq!(records(tmp.path()).len(), 1, "compress={compress}");
    }
}

#[test]
fn a_file_whose_first_line_a_mask_changed_before_a_crash_is_still_known_by_its_gz() {
    // A file is known by its first line. The guard masked a secret in the live file's first
    // line, joined an entry split across the next rotation (the part in the file before owed
    // to its `.gz`: Docker compresses) and was killed before a checkpoint. Docker compressed
    // the file before. Without the new first line's identity written ahead with the masks,
    // the `.gz` was a stranger to the next guard: the owed mask was never written, and the
    // start of the secret stayed in clear (seen in the stress benchmark's max10-kill).
    let tmp = tempfile::tempdir().unwrap();
    let live = container(tmp.path(), 'e', "gw", true, "");
    let one = live.with_file_name(format!("{}.1", live.file_name().unwrap().to_str().unwrap()));
    let gz = one.with_extension("1.gz");
    let (t1, t2) = (token(T1), token(T2));
    let parts = Parts::new();
    let mut g = parts.guard(tmp.path());
    g.sync_all();
    g.commit(Commit::Now).unwrap();
    append(&live, &[line(&format!("key {t1}"), 0), split_head(&t2)].concat());
    assert_eq!(g.sync_all().recorded, 1);
    fs::rename(&live, &one).unwrap();
    append(
        &live,
        &[line(&format!("{} done", &t2[14..]), 2), line("after", 3)].concat(),
    );
    assert_eq!(g.sync_all().recorded, 1);
    std::mem::forget(g);
    let now = fs::read(&one).unwrap();
    assert!(
        !String::from_utf8_lossy(&now).contains(&t1[4..]),
        "the first line was masked"
    );
    gzip_like_docker(&now, &gz);
    fs::remove_file(&one).unwrap();
    let parts = Parts::new();
    let mut g = parts.guard(tmp.path());
    g.sync_all();
    let text = String::from_utf8(gunzip(&gz)).unwrap();
    assert!(!text.contains(&t2[..14]), "the start of the secret in the .gz");
    assert!(!String::from_utf8(fs::read(&live).unwrap()).unwrap().contains(&t2[14..]));
    g.commit(Commit::Now).unwrap();
    assert_eq!(g.sync_all().recorded, 0);
    assert_eq!(records(tmp.path()).len(), 2);
}

#[test]
fn the_identity_a_gz_rewrite_gives_a_first_line_survives_a_crash() {
    // A `.gz` the guard never saw plain opens with the end of a secret from the file before:
    // its rewrite masks its first line, so the file is known by a new identity (an alias of
    // its key). Killed before a checkpoint, the next guard must still know it by that alias:
    // masks owed to it under its key (the start of a secret joined across the next rotation)
    // are written only to a `.gz` known by its key (seen in the stress benchmark's max10-kill).
    let tmp = tempfile::tempdir().unwrap();
    let live = container(tmp.path(), 'f', "gw", true, "");
    let name = live.file_name().unwrap().to_str().unwrap().to_string();
    let gz = |n: u32| live.with_file_name(format!("{name}.{n}.gz"));
    let tok = token(T1);
    let (first, second) = split_across(&tok);
    gzip_like_docker(&first, &gz(2));
    gzip_like_docker(&[second, line("after", 3)].concat(), &gz(1));
    append(&live, &line("live", 4));
    let parts = Parts::new();
    let mut g = parts.guard(tmp.path());
    assert_eq!(g.sync_all().recorded, 1);
    let masked = gunzip(&gz(1));
    let now = checkpoint::identity(
        &"f".repeat(64),
        &masked[..=masked.iter().position(|&b| b == b'\n').unwrap()],
    );
    let key = g.known(now.clone());
    assert_ne!(key, now, "the rewrite changed the first line");
    std::mem::forget(g);
    let parts = Parts::new();
    let g = parts.guard(tmp.path());
    assert_eq!(g.known(now), key, "known by its key after the crash");
}

#[test]
fn a_crash_between_the_masks_of_an_entry_split_in_one_file_is_finished_at_the_next_start() {
    for compress in [false, true] {
        let tmp = tempfile::tempdir().unwrap();
        let live = container(tmp.path(), 'd', "gw", compress, "");
        let one = live.with_file_name(format!("{}.1", live.file_name().unwrap().to_str().unwrap()));
        let tok = token(T1);
        let head = [line("first line", 0), split_head(&tok)].concat();
        let clear = [head.clone(), line(&format!("{} done", &tok[14..]), 2)].concat();
        append(&live, &clear);
        let parts = Parts::new();
        let mut g = parts.guard(tmp.path());
        let s = g.sync_all();
        assert_eq!((s.recorded, s.masked), (1, 2), "one finding over two entries");
        let spans = SpansLog::path(&tmp.path().join("state"));
        assert!(fs::metadata(&spans).unwrap().len() > 0, "saved before the writes");
        // Killed after the mask in the first part, before the one in the last: what is left
        // of the secret can no longer be found by a scan.
        std::mem::forget(g);
        let masked = fs::read(&live).unwrap();
        let torn = [&masked[..head.len()], &clear[head.len()..]].concat();
        assert!(!String::from_utf8_lossy(&torn).contains(&tok[..14]));
        assert!(String::from_utf8_lossy(&torn).contains(&tok[14..]));
        fs::write(&live, &torn).unwrap();
        if compress {
            // Docker rotated and compressed the file as the crash left it.
            let gz = one.with_extension("1.gz");
            gzip_like_docker(&torn, &gz);
            fs::remove_file(&live).unwrap();
            append(&live, &line("next file", 3));
        }
        let parts = Parts::new();
        let mut g = parts.guard(tmp.path());
        g.sync_all();
        let after = if compress {
            gunzip(&one.with_extension("1.gz"))
        } else {
            fs::read(&live).unwrap()
        };
        assert!(
            !String::from_utf8_lossy(&after).contains(&tok[14..]),
            "compress={compress}: the rest of the secret is masked"
        );
        assert_clean(&after, &[T1]);
        g.commit(Commit::Now).unwrap();
        assert!(!PendingMasks::path(&tmp.path().join("state")).exists());
        assert_eq!(fs::metadata(&spans).unwrap().len(), 0, "emptied by the checkpoint");
        assert_eq!(g.sync_all().recorded, 0);
        assert_eq!(records(tmp.path()).len(), 1, "compress={compress}");
    }
}

#[test]
fn a_file_left_with_nothing_to_do_is_not_opened_again_when_docker_renames_it() {
    let tmp = tempfile::tempdir().unwrap();
    let live = container(tmp.path(), 'e', "gw", false, "");
    let one = live.with_file_name(format!("{}.1", live.file_name().unwrap().to_str().unwrap()));
    append(
        &live,
        &[line("first line", 0), line(&format!("key {}", token(T1)), 1)].concat(),
    );
    let parts = Parts::new();
    let mut g = parts.guard(tmp.path());
    assert_eq!(g.sync_all().recorded, 1);
    assert!(g.unchanged(&live, None), "settled");
    fs::rename(&live, &one).unwrap();
    append(&live, &line("new file", 0));
    if fs::metadata(&one).unwrap().created().is_ok() {
        // Known by its inode and birth time: the rename changes neither.
        assert!(g.unchanged(&one, None), "still settled under its new name");
    }
    assert!(!g.unchanged(&live, None), "a new file at the old name is read");
    append(&one, &line("late write", 2));
    assert!(!g.unchanged(&one, None), "a write is seen");
    assert_eq!(g.sync_all().recorded, 0);
    assert_clean(&fs::read(&one).unwrap(), &[T1]);
}

#[test]
fn a_checkpoint_synced_off_the_guard_thread_covers_only_what_came_before_its_hand_off() {
    let tmp = tempfile::tempdir().unwrap();
    let live = container(tmp.path(), 'e', "gw", false, "");
    let name = live.file_name().unwrap().to_str().unwrap().to_string();
    let rotated = |n: u32| live.with_file_name(format!("{name}.{n}"));
    let state = tmp.path().join("state");
    let (t1, t2) = (token(T1), token(T2));
    let parts = Parts::new();
    let mut g = parts.guard(tmp.path());
    append(&live, &[line("first line", 0), split_head(&t1)].concat());
    g.sync_all();
    g.commit(Commit::Now).unwrap();
    let first = fs::metadata(&live).unwrap().ino();
    fs::rename(&live, rotated(1)).unwrap();
    append(
        &live,
        &[
            line(&format!("{} done", &t1[14..]), 2),
            line("second file", 3),
            split_head(&t2),
        ]
        .concat(),
    );
    assert_eq!(g.sync_all().recorded, 1);
    assert!(!g.pending.is_empty(), "the joined entry's masks are pending");
    // Handed to the syncer thread; the guard goes on meanwhile.
    g.commit(Commit::IfDue).unwrap();
    assert!(g.syncing.is_some());
    let covered = g.marks.report_len;
    fs::rename(rotated(1), rotated(2)).unwrap();
    fs::rename(&live, rotated(1)).unwrap();
    append(
        &live,
        &[line(&format!("{} done", &t2[14..]), 5), line("third file", 6)].concat(),
    );
    let third = fs::metadata(&live).unwrap().ino();
    assert_eq!(g.sync_all().recorded, 1);
    g.finish_sync().unwrap();
    // On disk: the checkpoint as it was at the hand-off, and the pending masks of the entry
    // joined after it (still owed to a checkpoint), not those of the entry before it.
    assert_eq!(Checkpoints::load(&state).unwrap().report_len, covered);
    assert!(fs::metadata(state.join("findings/findings.jsonl")).unwrap().len() > covered);
    let mut pending = PendingMasks::load(&state).unwrap().files;
    pending.extend(SpansLog::load(&state).unwrap());
    assert!(pending.iter().any(|p| p.inode == third), "{pending:?}");
    assert!(pending.iter().all(|p| p.inode != first), "{pending:?}");
    g.commit(Commit::Now).unwrap();
    assert!(!PendingMasks::path(&state).exists());
    assert_eq!(records(tmp.path()).len(), 2);
    assert_eq!(g.sync_all().recorded, 0);
    for p in [rotated(2), rotated(1), live.clone()] {
        assert_clean(&fs::read(&p).unwrap(), &[T1, T2]);
    }
}

#[test]
fn secrets_in_the_first_parts_of_an_entry_split_across_a_rotation_are_recorded_once() {
    // (compressed, restart between the two scans, entry longer than one scan window)
    for compress in [false, true] {
        for restart in [false, true] {
            for long in [false, true] {
                let case = format!("compress={compress} restart={restart} long={long}");
                let tmp = tempfile::tempdir().unwrap();
                let live = container(tmp.path(), 'a', "gw", compress, "");
                let dir = live.parent().unwrap().to_path_buf();
                let rotated = dir.join(format!("{}.1", live.file_name().unwrap().to_str().unwrap()));
                let gz = rotated.with_extension("1.gz");
                append(&live, &line("first line", 0));
                append(&live, &split_part(format!("token={}", token(T1))));
                append(&live, &split_part("middle".into()));
                if long {
                    append(&live, &split_part(format!("key {}", token(T2))));
                }
                let mut parts = Parts::new();
                parts.options.max_unit_bytes = 40 << 10;
                let mut g = parts.guard(tmp.path());
                let s = g.sync_all();
                // A long entry is matched window by window; a short one waits for its end.
                assert_eq!(s.recorded, if long { 2 } else { 0 }, "{case}");
                g.commit(Commit::Now).unwrap();
                if restart {
                    g = parts.guard(tmp.path());
                }
                // Docker rotates before the last part, which opens the new file.
                fs::rename(&live, &rotated).unwrap();
                append(&live, &line("end of the entry", 2));
                append(&live, &line("after", 3));
                let s = g.sync_all();
                assert_eq!(s.recorded, if long { 0 } else { 1 }, "{case}");
                if compress {
                    let old = fs::read(&rotated).unwrap();
                    gzip_like_docker(&old, &gz);
                    fs::remove_file(&rotated).unwrap();
                    g.commit(Commit::Now).unwrap();
                    if restart {
                        g = parts.guard(tmp.path());
                    }
                    assert_eq!(g.sync_all().recorded, 0, "{case}");
                    let mut plain = Vec::new();
                    flate2::read::GzDecoder::new(File::open(&gz).unwrap())
                        .read_to_end(&mut plain)
                        .unwrap();
                    assert_eq!(plain.len(), old.len(), "{case}");
                    assert_clean(&plain, &[T1, T2]);
                } else {
                    assert_clean(&fs::read(&rotated).unwrap(), &[T1, T2]);
                }
                g.commit(Commit::Now).unwrap();
                assert_eq!(g.sync_all().recorded, 0, "{case}");
                let recs = records(tmp.path());
                assert_eq!(recs.len(), if long { 2 } else { 1 }, "{case}: {recs:?}");
            }
        }
    }
}

#[test]
fn an_entry_split_across_two_compressed_files_the_guard_never_saw_plain_is_masked_in_both() {
    let tmp = tempfile::tempdir().unwrap();
    let live = container(tmp.path(), 'c', "fast", true, "");
    let name = live.file_name().unwrap().to_str().unwrap().to_string();
    let (older, newer) = (
        live.with_file_name(format!("{name}.2.gz")),
        live.with_file_name(format!("{name}.1.gz")),
    );
    let tok = token(T1);
    let (first, second) = split_across(&tok);
    gzip_like_docker(&first, &older);
    gzip_like_docker(&second, &newer);
    append(&live, &line("live", 4));
    let parts = Parts::new();
    let mut g = parts.guard(tmp.path());
    let s = g.sync_all();
    assert_eq!(s.recorded, 1);
    g.commit(Commit::Now).unwrap();
    for (path, plain) in [(&older, &first), (&newer, &second)] {
        let mut now = Vec::new();
        flate2::read::GzDecoder::new(File::open(path).unwrap())
            .read_to_end(&mut now)
            .unwrap();
        assert_eq!(now.len(), plain.len());
        let text = String::from_utf8(now).unwrap();
        assert!(
            !text.contains(&tok[..14]) && !text.contains(&tok[14..]),
            "{}",
            path.display()
        );
    }
    assert_eq!(g.sync_all().recorded, 0);
    assert_eq!(records(tmp.path()).len(), 1);
}

#[test]
fn a_compressed_file_a_stale_listing_names_is_not_scanned_apart_from_the_file_before_it() {
    // The guard re-checks compressed files by the names of a listing taken before Docker
    // rotated again: `name.1.gz` then holds a file never scanned, which finishes an entry left
    // open at the end of the file now called `name.2.gz`. Scanned alone, with nothing before
    // it, it was marked as scanned and the entry was never joined: the start of the secret
    // stayed in clear (seen once in the stress benchmark's max10-kill).
    let tmp = tempfile::tempdir().unwrap();
    let live = container(tmp.path(), 'c', "fast", true, "");
    let name = live.file_name().unwrap().to_str().unwrap().to_string();
    let gz = |n: u32| live.with_file_name(format!("{name}.{n}.gz"));
    let tok = token(T1);
    let (first, second) = split_across(&tok);
    gzip_like_docker(&[line("before", 1), first.clone()].concat(), &gz(1));
    fs::write(&live, b"").unwrap();
    let parts = Parts::new();
    let mut g = parts.guard(tmp.path());
    assert_eq!(g.sync_all().recorded, 0, "the entry is open at the end");
    // Docker rotates: the file becomes name.2.gz, the one continuing it name.1.gz.
    fs::rename(gz(1), gz(2)).unwrap();
    gzip_like_docker(&[second.clone(), line("after", 3)].concat(), &gz(1));
    let c = g.containers.values().next().unwrap().clone();
    let masks = g.masks(&c);
    g.recheck_gz_files(&c, &[gz(1)], masks);
    let s = g.sync_all();
    assert_eq!(s.recorded, 1, "{s:?}");
    for p in [gz(2), gz(1)] {
        let text = String::from_utf8(gunzip(&p)).unwrap();
        assert!(
            !text.contains(&tok[..14]) && !text.contains(&tok[14..]),
            "{}: {text}",
            p.display()
        );
    }
    g.commit(Commit::Now).unwrap();
    assert_eq!(g.sync_all().recorded, 0);
    assert_eq!(records(tmp.path()).len(), 1);
}

#[test]
fn a_compressed_file_whose_first_line_a_rewrite_masked_is_still_joined_with_the_next() {
    let tmp = tempfile::tempdir().unwrap();
    let live = container(tmp.path(), 'c', "fast", true, "");
    let name = live.file_name().unwrap().to_str().unwrap().to_string();
    let gz = |n: u32| live.with_file_name(format!("{name}.{n}.gz"));
    // Three files the guard never saw plain: the middle one opens with the end of a secret
    // from the first (its rewrite masks its first line) and ends with the start of another,
    // which the live file ends.
    let (t1, t2) = (token(T1), token(T2));
    let (first, second) = split_across(&t1);
    let second = [second, split_head(&t2)].concat();
    gzip_like_docker(&first, &gz(2));
    gzip_like_docker(&second, &gz(1));
    append(
        &live,
        &[line(&format!("{} done", &t2[14..]), 5), line("live", 6)].concat(),
    );
    let parts = Parts::new();
    let mut g = parts.guard(tmp.path());
    let s = g.sync_all();
    assert_eq!(s.recorded, 2, "both joined in one pass: {s:?}");
    for p in [gz(2), gz(1)] {
        let text = String::from_utf8(gunzip(&p)).unwrap();
        for t in [&t1, &t2] {
            assert!(!text.contains(&t[..14]) && !text.contains(&t[14..]), "{}", p.display());
        }
    }
    assert_clean(&fs::read(&live).unwrap(), &[T2]);
    g.commit(Commit::Now).unwrap();
    assert_eq!(g.sync_all().recorded, 0);
    assert_eq!(records(tmp.path()).len(), 2);
}

#[test]
fn a_mask_docker_compressed_in_part_is_completed_in_the_compressed_file() {
    // A secret cut by Docker's 16 KiB split is masked in two writes. What the file looks like
    // masked (another guard, another state directory):
    let tok = token(T1);
    let (first, second) = split_across(&tok);
    let clear = [first.clone(), second].concat();
    let masked = {
        let tmp = tempfile::tempdir().unwrap();
        let live = container(tmp.path(), 'f', "gw", true, "");
        let one = live.with_file_name(format!("{}.1", live.file_name().unwrap().to_str().unwrap()));
        fs::write(&one, &clear).unwrap();
        append(&live, &line("live", 9));
        let parts = Parts::new();
        let mut g = parts.guard(tmp.path());
        assert_eq!(g.sync_all().recorded, 1);
        fs::read(&one).unwrap()
    };
    assert_eq!(masked.len(), clear.len());
    // Docker compressed the file between the two writes: the first part masked, not the rest.
    let torn = [&masked[..first.len()], &clear[first.len()..]].concat();
    assert_ne!(torn, masked);
    let tmp = tempfile::tempdir().unwrap();
    let live = container(tmp.path(), 'f', "gw", true, "");
    let name = live.file_name().unwrap().to_str().unwrap().to_string();
    let (one, gz) = (
        live.with_file_name(format!("{name}.1")),
        live.with_file_name(format!("{name}.1.gz")),
    );
    fs::write(&one, &clear).unwrap();
    gzip_like_docker(&torn, &gz);
    std::thread::sleep(Duration::from_millis(20));
    append(&live, &line("live", 9));
    let parts = Parts::new();
    let mut g = parts.guard(tmp.path());
    // The plain file is scanned whole and masked; then Docker removes it.
    assert_eq!(g.sync_all().recorded, 1);
    assert_eq!(fs::read(&one).unwrap(), masked);
    fs::remove_file(&one).unwrap();
    g.sync_all();
    let now = gunzip(&gz);
    assert!(now == masked, "the .gz lacks a mask");
    g.commit(Commit::Now).unwrap();
    assert_eq!(g.sync_all().recorded, 0);
    assert_eq!(records(tmp.path()).len(), 1);
}

#[test]
fn a_new_file_waits_for_the_check_of_a_compressed_file_before_it_that_grew_after_its_last_scan() {
    let tmp = tempfile::tempdir().unwrap();
    let live = container(tmp.path(), '7', "gw", true, "");
    let name = live.file_name().unwrap().to_str().unwrap().to_string();
    let gz = live.with_file_name(format!("{name}.1.gz"));
    let parts = Parts::new();
    let mut g = parts.guard(tmp.path());
    // Scanned as the live file; then Docker wrote the first part of a split entry, rotated,
    // compressed it and removed the plain file before the guard looked again.
    append(&live, &line("first line", 0));
    g.sync_all();
    let tok = token(T1);
    let (first, second) = split_across(&tok);
    let before = fs::read(&live).unwrap();
    fs::remove_file(&live).unwrap();
    gzip_like_docker(&[before, first[line("first line", 0).len()..].to_vec()].concat(), &gz);
    append(&live, &second);
    // The new file's sync comes before the check of the .gz (the check found it still being
    // written a moment before).
    waits_for_the_gz_then_joins(&mut g, &live, &gz, &tok);
}

/// The new file `live` (the last part of `tok`'s entry) synced with the compressed file `gz`
/// (its first part) as the file before: it waits; the next listing checks the `.gz` (its end
/// held open), then joins the new file with that end and masks both parts.
fn waits_for_the_gz_then_joins(g: &mut Guard<'_>, live: &Path, gz: &Path, tok: &str) {
    let c = g.containers.values().next().unwrap().clone();
    let prev = Some(Prev {
        path: gz.to_path_buf(),
        gz: true,
        masks: true,
        owe_here: true,
        gap: false,
    });
    let s = g
        .try_sync_plain(
            &c,
            PlainFile {
                path: live,
                live: true,
                masks: true,
                prev,
            },
        )
        .unwrap();
    assert_eq!(s, SyncStats::default(), "waits for the .gz to be checked");
    assert!(g.retry.contains_key(&c.id));
    g.retry.clear();
    assert_eq!(g.sync_all().recorded, 1);
    assert!(!fs::read_to_string(live).unwrap().contains(&tok[14..]));
    assert!(!String::from_utf8(gunzip(gz)).unwrap().contains(&tok[..14]));
}

#[test]
fn a_new_file_waits_for_the_compressed_file_before_it_that_docker_is_still_writing() {
    let tmp = tempfile::tempdir().unwrap();
    let live = container(tmp.path(), 'e', "fast", true, "");
    let name = live.file_name().unwrap().to_str().unwrap().to_string();
    let (gz, one) = (
        live.with_file_name(format!("{name}.2.gz")),
        live.with_file_name(format!("{name}.1")),
    );
    let tok = token(T1);
    let (first, second) = split_across(&tok);
    // After a restart: the file with the entry's first part is being compressed (its first
    // line can be read, not its end); the file after it is plain.
    gzip_like_docker(&first, &gz);
    let whole = fs::read(&gz).unwrap();
    fs::write(&gz, &whole[..whole.len() - 12]).unwrap();
    append(&one, &second);
    append(&live, &line("live", 4));
    let parts = Parts::new();
    let mut g = parts.guard(tmp.path());
    let s = g.sync_all();
    assert_eq!(s.recorded, 0, "name.1 waits for name.2.gz");
    assert!(fs::read_to_string(&one).unwrap().contains(&tok[14..]));
    // Docker finishes the .gz: both parts are found together and masked.
    fs::write(&gz, &whole).unwrap();
    std::thread::sleep(RETRY_AFTER);
    assert_eq!(g.sync_all().recorded, 1);
    assert!(!fs::read_to_string(&one).unwrap().contains(&tok[14..]));
    assert!(!String::from_utf8(gunzip(&gz)).unwrap().contains(&tok[..14]));
    g.commit(Commit::Now).unwrap();
    assert_eq!(g.sync_all().recorded, 0);
    assert_eq!(records(tmp.path()).len(), 1);
}

#[test]
fn a_long_entry_left_open_in_a_compressed_file_is_recorded_once_when_its_wait_is_over() {
    let tmp = tempfile::tempdir().unwrap();
    let live = container(tmp.path(), 'd', "died", true, "");
    let gz = live.with_file_name(format!("{}.1.gz", live.file_name().unwrap().to_str().unwrap()));
    append(&live, &line("first line", 0));
    for text in [
        format!("token={}", token(T1)),
        "middle".into(),
        format!("key {}", token(T2)),
    ] {
        append(&live, &split_part(text));
    }
    // The last part Docker wrote before the container died: the entry never ends.
    append(&live, &split_part(format!("late {}", token(T3))));
    let mut parts = Parts::new();
    parts.options.max_unit_bytes = 40 << 10;
    let mut g = parts.guard(tmp.path());
    assert_eq!(g.sync_all().recorded, 2, "the first window");
    // Rotated and compressed before the guard looked again; nothing follows.
    let old = fs::read(&live).unwrap();
    gzip_like_docker(&old, &gz);
    fs::remove_file(&live).unwrap();
    assert_eq!(g.sync_all().recorded, 0, "still waiting for the rest");
    g.opts.hold = Duration::ZERO;
    assert_eq!(g.sync_all().recorded, 1, "the open part, once");
    assert_eq!(g.sync_all().recorded, 0);
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(File::open(&gz).unwrap())
        .read_to_end(&mut plain)
        .unwrap();
    assert_clean(&plain, &[T1, T2, T3]);
    assert_eq!(records(tmp.path()).len(), 3);
}

#[test]
fn a_secret_cut_off_by_an_entry_that_never_ends_is_masked_as_far_as_it_is_visible() {
    let tmp = tempfile::tempdir().unwrap();
    let live = container(tmp.path(), 'd', "died", false, "");
    let tok = token(T1);
    append(&live, &line("first line", 0));
    // The last part Docker wrote before the container died ends in the first 24 characters
    // of a token (20 after `ghp_`): the entry never ends, the rest never comes.
    append(&live, &cut_part(&tok[..24]));
    let parts = Parts::new();
    let mut g = parts.guard(tmp.path());
    assert_eq!(g.sync_all().recorded, 0, "waiting for the rest");
    g.opts.hold = Duration::ZERO;
    let s = g.sync_all();
    assert_eq!((s.recorded, s.masked), (1, 1), "the visible part, once");
    assert_eq!(g.sync_all().recorded, 0);
    let after = fs::read(&live).unwrap();
    assert!(!String::from_utf8_lossy(&after).contains(&tok[4..16]), "masked");
    assert_clean(&after, &[T1]);
    let r = records(tmp.path());
    assert_eq!(r.len(), 1);
    assert_eq!(r[0]["partial"], serde_json::json!(true));
    assert!(r[0]["description"].as_str().unwrap().contains("partial"));
    // Too short to be worth masking: 8 characters after the prefix.
    let tmp = tempfile::tempdir().unwrap();
    let live = container(tmp.path(), 'd', "died", false, "");
    append(&live, &line("first line", 0));
    append(&live, &cut_part(&tok[..12]));
    let mut g = parts.guard(tmp.path());
    g.opts.hold = Duration::ZERO;
    assert_eq!(g.sync_all().recorded, 0);
}

#[test]
fn an_entry_whose_middle_part_opens_the_new_file_is_joined_once_its_end_comes() {
    let tmp = tempfile::tempdir().unwrap();
    let live = container(tmp.path(), 'e', "three-parts", false, "");
    let rotated = live.with_file_name(format!("{}.1", live.file_name().unwrap().to_str().unwrap()));
    let tok = token(T1);
    append(&live, &line("first line", 0));
    append(&live, &split_head(&tok));
    let parts = Parts::new();
    let mut g = parts.guard(tmp.path());
    assert_eq!(g.sync_all().recorded, 0, "held");
    fs::rename(&live, &rotated).unwrap();
    // The middle part opens the new file; the guard looks before the last part comes.
    let mut middle = tok[14..].to_string();
    middle.push(' ');
    middle.push_str(&"z".repeat(16384 - middle.len()));
    let mut part = Vec::new();
    jsonfile::encode_line(middle.as_bytes(), "stdout", &[], "2026-11-27T00:00:00.2Z", &mut part);
    append(&live, &part);
    assert_eq!(g.sync_all().recorded, 0, "still open");
    append(&live, &line("end", 3));
    assert_eq!(g.sync_all().recorded, 1);
    assert_clean(&fs::read(&rotated).unwrap(), &[]);
    for (path, piece) in [(&rotated, &tok[..14]), (&live, &tok[14..])] {
        assert!(!String::from_utf8(fs::read(path).unwrap()).unwrap().contains(piece));
    }
    g.commit(Commit::Now).unwrap();
    assert_eq!(g.sync_all().recorded, 0);
    assert_eq!(records(tmp.path()).len(), 1);
}

#[test]
fn a_file_whose_first_line_was_masked_is_still_joined_with_the_next() {
    let tmp = tempfile::tempdir().unwrap();
    let live = container(tmp.path(), 'f', "masked-first", false, "");
    let name = live.file_name().unwrap().to_str().unwrap().to_string();
    let (two, one) = (
        live.with_file_name(format!("{name}.2")),
        live.with_file_name(format!("{name}.1")),
    );
    let (t1, t2) = (token(T1), token(T2));
    let first_part = |tok: &str, time: &str| {
        let mut text = "y".repeat(16384 - 20);
        text.push_str("token=");
        text.push_str(&tok[..14]);
        let mut out = Vec::new();
        jsonfile::encode_line(text.as_bytes(), "stdout", &[], time, &mut out);
        out
    };
    append(&live, &line("first line", 0));
    append(&live, &first_part(&t1, "2026-11-27T00:00:00.1Z"));
    let parts = Parts::new();
    let mut g = parts.guard(tmp.path());
    assert_eq!(g.sync_all().recorded, 0, "held");
    // Two rotations before the guard looks again: the middle file begins with the end of the
    // first secret (its first line gets masked) and ends with the start of the second.
    fs::rename(&live, &two).unwrap();
    append(&one, &line(&format!("{} done", &t1[14..]), 2));
    append(&one, &line("between", 3));
    append(&one, &first_part(&t2, "2026-11-27T00:00:00.4Z"));
    append(&live, &line(&format!("{} done", &t2[14..]), 5));
    append(&live, &line("after", 6));
    assert_eq!(g.sync_all().recorded, 2);
    for (path, pieces) in [
        (&two, [&t1[..14]]),
        (&one, [&t1[14..]]),
        (&one, [&t2[..14]]),
        (&live, [&t2[14..]]),
    ] {
        let text = String::from_utf8(fs::read(path).unwrap()).unwrap();
        assert!(!text.contains(pieces[0]), "{}", path.display());
    }
    g.commit(Commit::Now).unwrap();
    assert_eq!(g.sync_all().recorded, 0);
    assert_eq!(records(tmp.path()).len(), 2);
}

#[test]
fn a_truncated_log_is_scanned_again_from_the_start() {
    let tmp = tempfile::tempdir().unwrap();
    let live = container(tmp.path(), 'c', "gw", false, "");
    append(&live, &line("start", 0));
    for i in 1..50 {
        append(&live, &line(&format!("request {i}"), i));
    }
    let parts = Parts::new();
    let mut g = parts.guard(tmp.path());
    g.sync_all();
    // Truncated by hand (same first line), then written again: shorter than the checkpoint.
    fs::write(&live, line("start", 0)).unwrap();
    append(&live, &line(&format!("after truncation {}", token(T2)), 60));
    assert_eq!(g.sync_all().recorded, 1);
    assert_clean(&fs::read(&live).unwrap(), &[T2]);
}

#[test]
fn only_the_selected_containers_are_followed() {
    let tmp = tempfile::tempdir().unwrap();
    let by_prefix = container(tmp.path(), 'a', "openclaw-gateway", false, "");
    let by_label = container(tmp.path(), 'b', "web", false, r#""tier":"front""#);
    let by_id = container(tmp.path(), 'c', "db", false, "");
    let other = container(tmp.path(), 'd', "openclaw", false, r#""tier":"back""#);
    for live in [&by_prefix, &by_label, &by_id, &other] {
        append(live, &line(&format!("k {}", token(T1)), 1));
    }
    let parts = Parts::new();
    let mut g = parts.guard(tmp.path());
    g.opts.containers = vec!["openclaw-*".into(), "tier=front".into(), "c".repeat(12)];
    g.discover().unwrap();
    assert_eq!(g.containers.len(), 3);
    assert_eq!(g.sync_all().recorded, 3);
    for live in [&by_prefix, &by_label, &by_id] {
        assert!(!String::from_utf8(fs::read(live).unwrap()).unwrap().contains(&token(T1)));
    }
    assert!(
        String::from_utf8(fs::read(&other).unwrap())
            .unwrap()
            .contains(&token(T1)),
        "not followed"
    );
    // A short id prefix names nothing (it could name several containers).
    g.opts.containers = vec!["ccc".into()];
    g.discover().unwrap();
    assert!(g.containers.is_empty());
}

#[test]
fn report_only_containers_and_damaged_gzip_are_left_as_they_are() {
    let tmp = tempfile::tempdir().unwrap();
    let by_label = container(tmp.path(), 'e', "labelled", false, r#""sidecar.redact":"false""#);
    let by_name = container(tmp.path(), 'f', "audit-me", false, "");
    for live in [&by_label, &by_name] {
        append(live, &line(&format!("k {}", token(T1)), 1));
    }
    let damaged = by_name.with_file_name(format!("{}.1.gz", by_name.file_name().unwrap().to_str().unwrap()));
    gzip_like_docker(&line(&format!("k {}", token(T2)), 0).repeat(50), &damaged);
    let full = fs::read(&damaged).unwrap();
    fs::write(&damaged, &full[..full.len() / 2]).unwrap();
    // Old enough not to be a file Docker is still compressing.
    let old = SystemTime::now() - GZ_SETTLE - Duration::from_secs(60);
    File::options()
        .write(true)
        .open(&damaged)
        .unwrap()
        .set_modified(old)
        .unwrap();
    let parts = Parts::new();
    let mut g = parts.guard(tmp.path());
    let s = g.sync_all();
    assert_eq!((s.recorded, s.masked), (2, 0));
    for live in [&by_label, &by_name] {
        assert!(String::from_utf8(fs::read(live).unwrap()).unwrap().contains(&token(T1)));
    }
    assert_eq!(fs::read(&damaged).unwrap(), &full[..full.len() / 2], "left as it is");
    assert!(parts.metrics.render().contains("sidecar_guard_errors_total 1"));
    assert_eq!(g.sync_all().recorded, 0, "reported once");
}

#[test]
fn a_container_labelled_for_another_guard_is_reported_not_masked() {
    let tmp = tempfile::tempdir().unwrap();
    let other = container(tmp.path(), 'a', "theirs", false, r#""sidecar.guard":"another-guard""#);
    let mine = container(tmp.path(), 'b', "mine", false, r#""sidecar.guard":"this-guard""#);
    let anyone = container(tmp.path(), 'c', "anyone", false, "");
    for live in [&other, &mine, &anyone] {
        append(live, &line(&format!("k {}", token(T1)), 1));
    }
    let parts = Parts::new();
    let mut g = parts.guard(tmp.path());
    let s = g.sync_all();
    assert_eq!((s.recorded, s.masked), (3, 2));
    assert!(String::from_utf8(fs::read(&other).unwrap())
        .unwrap()
        .contains(&token(T1)));
    assert_clean(&fs::read(&mine).unwrap(), &[T1]);
    assert_clean(&fs::read(&anyone).unwrap(), &[T1]);
    // Not unseen: counted, and named once.
    assert_eq!(metric(g.metrics, crate::metrics::LOG_CONTAINERS_UNMASKED), 1.0);
    assert!(g.warned.iter().any(|w| w.starts_with("guard label ")), "{:?}", g.warned);
}

#[test]
fn a_gzip_docker_is_still_writing_is_checked_again_when_complete() {
    let tmp = tempfile::tempdir().unwrap();
    let live = container(tmp.path(), 'a', "busy", false, "");
    append(&live, &line("nothing here", 1));
    let gz = live.with_file_name(format!("{}.1.gz", live.file_name().unwrap().to_str().unwrap()));
    gzip_like_docker(&line(&format!("k {}", token(T2)), 0).repeat(50), &gz);
    let full = fs::read(&gz).unwrap();
    fs::write(&gz, &full[..full.len() / 2]).unwrap();
    let parts = Parts::new();
    let mut g = parts.guard(tmp.path());
    let s = g.sync_all();
    assert_eq!((s.recorded, s.masked), (0, 0), "half-written: not read yet");
    assert!(!parts.metrics.render().contains("sidecar_guard_errors_total 1"));
    fs::write(&gz, &full).unwrap();
    let s = g.sync_all();
    assert!(s.recorded >= 1, "checked once complete");
    assert_eq!(s.masked, 50);
    let mut text = String::new();
    flate2::read::MultiGzDecoder::new(File::open(&gz).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    assert!(!text.contains(&token(T2)));
}

#[test]
fn a_busy_guard_checkpoints_after_an_eighth_of_the_interval() {
    let tmp = tempfile::tempdir().unwrap();
    let live = container(tmp.path(), 'f', "gw", false, "");
    let state = tmp.path().join("state");
    let parts = Parts::new();
    let mut g = parts.guard_with(tmp.path(), |o| o.checkpoint_every = Duration::from_secs(2));
    let saved = |g: &mut Guard| {
        g.commit(Commit::IfDue).unwrap();
        g.finish_sync().unwrap();
        !Checkpoints::load(&state).unwrap().files.is_empty()
    };
    // A quiet log: a checkpoint after the whole interval only.
    append(&live, &line("a quiet line", 0));
    g.sync_all();
    std::thread::sleep(Duration::from_millis(600));
    assert!(!saved(&mut g), "quiet: not due before checkpoint_every");
    // A busy one: after an eighth of it, once BUSY_CHECKPOINT_BYTES were scanned.
    let text = "x".repeat(1000);
    let mut busy = Vec::new();
    let mut n = 1;
    while (busy.len() as u64) < BUSY_CHECKPOINT_BYTES + (64 << 10) {
        busy.extend(line(&text, n));
        n += 1;
    }
    append(&live, &busy);
    assert!(g.sync_all().bytes >= BUSY_CHECKPOINT_BYTES);
    assert!(saved(&mut g), "busy: due after an eighth of checkpoint_every");
}
