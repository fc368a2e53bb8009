//! `sidecar backup`, `verify`, `backups list` and `restore` as an operator runs them, the standard
//! `age -d | zstd -d | tar -x` path, and hostile archives crafted by hand.
#![allow(clippy::disallowed_macros)] // test output; a dead stderr is not tested here

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::Command;

use crate::common::{keys, run, sidecar, tree_bytes};

fn data(root: &Path) {
    fs::create_dir_all(root.join("workspace/notes")).unwrap();
    fs::write(root.join("openclaw.json"), b"{\"agents\":{}}\n").unwrap();
    fs::write(root.join("workspace/notes/a.md"), b"# notes\n".repeat(1000)).unwrap();
    std::os::unix::fs::symlink("notes/a.md", root.join("workspace/latest.md")).unwrap();
}

/// `sidecar backup --source SRC --to DEST -r PUBLIC`, which must succeed.
fn backup_ok(state: &Path, src: &Path, dest: &Path, public: &str) -> std::process::Output {
    let out = run(sidecar(state)
        .args(["backup", "--source"])
        .arg(src)
        .arg("--to")
        .arg(dest)
        .args(["-r", public]));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    out
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn operator_round_trip_through_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("data");
    data(&src);
    let k = keys(tmp.path());
    let dest = tmp.path().join("backups");
    let out = backup_ok(tmp.path(), &src, &dest, &k.public);
    let path = stdout(&out).trim().to_string();
    assert!(Path::new(&path).exists() && path.ends_with(".tar.zst.age"), "{path}");
    assert!(stderr(&out).contains("written and verified"), "{}", stderr(&out));
    let sums = fs::read_to_string(format!("{path}.b3")).unwrap();
    assert!(sums.ends_with(".tar.zst.age\n") && sums.len() > 66, "{sums}");

    let out = run(sidecar(tmp.path()).args(["backups", "list", "--from"]).arg(&dest));
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stdout(&out).contains("openclaw_data-") && stdout(&out).contains(" yes "),
        "{}",
        stdout(&out)
    );

    // No writable temporary directory (a read-only container without a tmpfs at /tmp): backup and
    // restore say so and what to do, and leave nothing.
    for args in [
        vec![
            "backup".to_string(),
            "--source".into(),
            src.display().to_string(),
            "--to".into(),
            dest.display().to_string(),
            "-r".into(),
            k.public.clone(),
        ],
        vec![
            "restore".into(),
            path.clone(),
            "--to".into(),
            tmp.path().join("r0").display().to_string(),
            "--identity".into(),
            k.identity.display().to_string(),
        ],
    ] {
        let out = run(sidecar(tmp.path()).env("TMPDIR", tmp.path().join("no-tmp")).args(&args));
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("writable temporary directory") && stderr(&out).contains("TMPDIR"),
            "{}",
            stderr(&out)
        );
    }
    let names: Vec<_> = fs::read_dir(&dest).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names.len(), 3, "still one backup, its .b3 and its index: {names:?}");
    assert_eq!(fs::read_dir(tmp.path().join("r0")).map(|d| d.count()).unwrap_or(0), 0);

    // Verify with the configured recipient (environment, as compose users set it) and the identity.
    let out = run(sidecar(tmp.path())
        .env("SIDECAR_BACKUP__RECIPIENTS", format!("[\"{}\"]", k.public))
        .args(["verify", "latest", "--from"])
        .arg(&dest)
        .arg("--identity")
        .arg(&k.identity));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("as configured") && stderr(&out).contains("match the manifest"),
        "{}",
        stderr(&out)
    );

    // Configured for another recipient: the header check fails (exit 1).
    let other = keys(&tmp.path().join("other").tap_mkdir());
    let out = run(sidecar(tmp.path())
        .env(
            "SIDECAR_BACKUP__RECIPIENTS",
            format!("[\"{}\", \"{}\"]", k.public, other.public),
        )
        .args(["verify", "latest", "--from"])
        .arg(&dest));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("configured recipients"), "{}", stderr(&out));

    let target = tmp.path().join("restored");
    let out = run(sidecar(tmp.path())
        .args(["restore", "latest", "--from"])
        .arg(&dest)
        .arg("--to")
        .arg(&target)
        .arg("--identity")
        .arg(&k.identity));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(tree_bytes(&src), tree_bytes(&target));

    // Only a subtree: `--path workspace/notes` restores it (and its parent directory), nothing else.
    let partial = tmp.path().join("partial");
    let out = run(sidecar(tmp.path())
        .args(["restore", "latest", "--path", "workspace/notes", "--from"])
        .arg(&dest)
        .arg("--to")
        .arg(&partial)
        .arg("--identity")
        .arg(&k.identity));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let got: Vec<String> = tree_bytes(&partial).into_iter().map(|(p, _)| p).collect();
    assert_eq!(got, ["workspace", "workspace/notes", "workspace/notes/a.md"]);
    assert_eq!(
        fs::read(partial.join("workspace/notes/a.md")).unwrap(),
        fs::read(src.join("workspace/notes/a.md")).unwrap()
    );
    let out = run(sidecar(tmp.path())
        .args(["restore", "latest", "--path", "no/such/dir", "--from"])
        .arg(&dest)
        .arg("--to")
        .arg(tmp.path().join("none"))
        .arg("--identity")
        .arg(&k.identity));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("no such path in the backup"), "{}", stderr(&out));
    assert_eq!(fs::read_dir(tmp.path().join("none")).unwrap().count(), 0);

    // A second backup, then a restore drill over both.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    backup_ok(tmp.path(), &src, &dest, &k.public);
    let out = run(sidecar(tmp.path())
        .args(["verify", "--all", "--from"])
        .arg(&dest)
        .arg("--identity")
        .arg(&k.identity));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("2 backup(s) checked: all good"),
        "{}",
        stderr(&out)
    );

    // A flipped byte: verify without a key sees it (exit 1), and so does a restore.
    let mut raw = fs::read(&path).unwrap();
    let i = raw.len() - 100;
    raw[i] ^= 1;
    fs::write(&path, &raw).unwrap();
    let out = run(sidecar(tmp.path()).args(["verify", &path]));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("damaged or incomplete"), "{}", stderr(&out));
    let out = run(sidecar(tmp.path())
        .args(["restore", &path, "--to"])
        .arg(tmp.path().join("r2"))
        .arg("--identity")
        .arg(&k.identity));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(fs::read_dir(tmp.path().join("r2")).unwrap().count(), 0);
    // The drill and the listing both flag it; the other backup still checks out.
    let out = run(sidecar(tmp.path()).args(["verify", "--all", "--from"]).arg(&dest));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("some FAILED"), "{}", stderr(&out));
    let out = run(sidecar(tmp.path()).args(["backups", "list", "--from"]).arg(&dest));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(" FAILED ") && stdout(&out).contains(" yes "),
        "{}",
        stdout(&out)
    );
}

trait TapMkdir {
    fn tap_mkdir(self) -> Self;
}

impl TapMkdir for std::path::PathBuf {
    fn tap_mkdir(self) -> Self {
        fs::create_dir_all(&self).unwrap();
        self
    }
}

fn tool(name: &str) -> bool {
    let found = Command::new(name).arg("--version").output().is_ok();
    if !found && std::env::var_os("CI").is_some() {
        panic!("{name} is required in CI (.ci/run installs it with apt-get)");
    }
    found
}

#[test]
fn the_standard_tools_restore_a_backup_without_sidecar() {
    if !(tool("age") && tool("zstd") && tool("tar") && tool("b3sum")) {
        eprintln!("skipped: age, zstd, tar or b3sum not installed");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("data");
    data(&src);
    let k = keys(tmp.path());
    let out = backup_ok(tmp.path(), &src, &tmp.path().join("b"), &k.public);
    let path = stdout(&out).trim().to_string();
    // The checksum file beside it checks with b3sum, and fails once the backup is damaged.
    let check = || {
        Command::new("b3sum")
            .arg("-c")
            .arg(format!("{path}.b3"))
            .current_dir(tmp.path().join("b"))
            .output()
            .unwrap()
    };
    let ok = check();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let original = fs::read(&path).unwrap();
    let mut damaged = original.clone();
    let mid = damaged.len() / 2;
    damaged[mid] ^= 1;
    fs::write(&path, &damaged).unwrap();
    assert!(!check().status.success(), "b3sum -c must notice a flipped byte");
    fs::write(&path, &original).unwrap();
    let target = tmp.path().join("by-hand").tap_mkdir();
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "age -d -i '{}' '{path}' | zstd -d | tar -x -C '{}'",
            k.identity.display(),
            target.display()
        ))
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(tree_bytes(&src), tree_bytes(&target));
    assert!(target.join(".sidecar-manifest.jsonl").exists());
}

/// Encrypt a hand-made tar stream as a backup would be.
fn hostile_backup(dir: &Path, public: &str, build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> std::path::PathBuf {
    let mut b = tar::Builder::new(Vec::new());
    build(&mut b);
    let tar = b.into_inner().unwrap();
    let zst = zstd::encode_all(&tar[..], 3).unwrap();
    let r: age::x25519::Recipient = public.parse().unwrap();
    let enc = age::Encryptor::with_recipients(std::iter::once(&r as &dyn age::Recipient)).unwrap();
    let path = dir.join("hostile.tar.zst.age");
    let mut w = enc.wrap_output(fs::File::create(&path).unwrap()).unwrap();
    w.write_all(&zst).unwrap();
    w.finish().unwrap();
    path
}

fn raw_entry(b: &mut tar::Builder<Vec<u8>>, name: &[u8], kind: tar::EntryType, link: Option<&[u8]>, data: &[u8]) {
    let mut h = tar::Header::new_gnu();
    h.as_old_mut().name[..name.len()].copy_from_slice(name);
    h.set_entry_type(kind);
    h.set_mode(0o644);
    h.set_size(data.len() as u64);
    if let Some(l) = link {
        h.as_old_mut().linkname[..l.len()].copy_from_slice(l);
    }
    h.set_cksum();
    b.append(&h, data).unwrap();
}

#[test]
fn hostile_entries_are_refused_and_nothing_escapes() {
    let tmp = tempfile::tempdir().unwrap();
    let k = keys(tmp.path());
    let outside = tmp.path().join("outside").tap_mkdir();
    type Build = Box<dyn FnOnce(&mut tar::Builder<Vec<u8>>)>;
    let outside_s = outside.display().to_string();
    let cases: Vec<(&str, Build, &str)> = vec![
        (
            "dot-dot",
            Box::new(|b| raw_entry(b, b"a/../../evil", tar::EntryType::Regular, None, b"x")),
            "`..`",
        ),
        (
            "absolute",
            Box::new(|b| raw_entry(b, b"/tmp/sidecar-evil", tar::EntryType::Regular, None, b"x")),
            "absolute",
        ),
        (
            "symlink escape",
            Box::new(move |b| {
                raw_entry(b, b"link", tar::EntryType::Symlink, Some(outside_s.as_bytes()), b"");
                raw_entry(b, b"link/evil", tar::EntryType::Regular, None, b"x");
            }),
            "not a directory",
        ),
        (
            "hardlink out",
            Box::new(|b| raw_entry(b, b"h", tar::EntryType::Link, Some(b"../../etc/passwd"), b"")),
            "leaves the tree",
        ),
        (
            "device",
            Box::new(|b| raw_entry(b, b"dev", tar::EntryType::Char, None, b"")),
            "device",
        ),
        (
            "file missing from the manifest",
            Box::new(|b| {
                raw_entry(b, b"extra", tar::EntryType::Regular, None, b"x");
                let manifest = b"{\"line\":\"header\",\"format\":\"sidecar-backup-manifest\",\"version\":2,\"source\":\"/data\",\"created\":\"2026-11-27T00:00:00Z\",\"sidecar\":\"0.1.0\"}\n{\"line\":\"totals\",\"entries\":0,\"files\":0,\"bytes\":0,\"changed\":0,\"skipped\":0}\n";
                raw_entry(b, b".sidecar-manifest.jsonl", tar::EntryType::Regular, None, manifest);
            }),
            "does not list",
        ),
        (
            "manifest of another format version",
            Box::new(|b| {
                let manifest = b"{\"line\":\"header\",\"format\":\"sidecar-backup-manifest\",\"version\":1,\"source\":\"/data\",\"created\":\"2026-11-27T00:00:00Z\",\"sidecar\":\"0.1.0\"}\n{\"line\":\"totals\",\"entries\":0,\"files\":0,\"bytes\":0,\"changed\":0,\"skipped\":0}\n";
                raw_entry(b, b".sidecar-manifest.jsonl", tar::EntryType::Regular, None, manifest);
            }),
            "manifest version 1",
        ),
        (
            "no manifest",
            Box::new(|b| raw_entry(b, b"plain", tar::EntryType::Regular, None, b"x")),
            "no manifest",
        ),
    ];
    for (label, build, expect) in cases {
        let path = hostile_backup(tmp.path(), &k.public, build);
        let target = tmp.path().join("target");
        let out = run(sidecar(tmp.path())
            .args(["restore"])
            .arg(&path)
            .arg("--to")
            .arg(&target)
            .arg("--identity")
            .arg(&k.identity));
        assert_eq!(out.status.code(), Some(1), "{label}: {}", stderr(&out));
        assert!(stderr(&out).contains(expect), "{label}: {}", stderr(&out));
        assert_eq!(fs::read_dir(&target).unwrap().count(), 0, "{label}: target untouched");
        assert_eq!(
            fs::read_dir(&outside).unwrap().count(),
            0,
            "{label}: nothing written outside"
        );
        assert!(!Path::new("/tmp/sidecar-evil").exists(), "{label}");
    }
}

/// Archive entries and backup names are chosen by whoever wrote the archive or the destination:
/// one holding terminal escapes and a newline is shown escaped, on one line, by `restore`, `verify`
/// and `backups list`.
#[test]
fn hostile_names_in_archives_and_destinations_are_shown_escaped() {
    let tmp = tempfile::tempdir().unwrap();
    let k = keys(tmp.path());
    let dest = tmp.path().join("dest").tap_mkdir();
    let built = hostile_backup(tmp.path(), &k.public, |b| {
        raw_entry(
            b,
            b"\x1b[2J\x1b]0;owned\x07\nerror: forged\xe2\x80\xae",
            tar::EntryType::Char,
            None,
            b"",
        )
    });
    let path = dest.join("x\u{1b}[2J\nerror: forged.tar.zst.age");
    fs::rename(&built, &path).unwrap();
    let check = |what: &str, out: &std::process::Output| {
        for (stream, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
            let text = String::from_utf8_lossy(bytes);
            assert!(
                !text.contains(['\u{1b}', '\u{7}', '\u{202e}']),
                "{what} {stream}: {text:?}"
            );
            assert!(
                !text.lines().any(|l| l.starts_with("error: forged")),
                "{what} {stream}: {text}"
            );
        }
    };
    let out = run(sidecar(tmp.path())
        .arg("restore")
        .arg(&path)
        .arg("--to")
        .arg(tmp.path().join("target"))
        .arg("--identity")
        .arg(&k.identity));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    check("restore", &out);
    assert!(
        stderr(&out).contains("refused device file `\\x1b[2J\\x1b]0;owned\\x07\\nerror: forged\\u{202e}`"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("x\\x1b[2J\\nerror: forged.tar.zst.age"),
        "{}",
        stderr(&out)
    );
    // No `.b3` beside it: verify stops at the checksum file, whose name is shown escaped too.
    let out = run(sidecar(tmp.path())
        .arg("verify")
        .arg(&path)
        .arg("--identity")
        .arg(&k.identity));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    check("verify", &out);
    assert!(
        stderr(&out).contains("x\\x1b[2J\\nerror: forged.tar.zst.age.b3"),
        "{}",
        stderr(&out)
    );
    let out = run(sidecar(tmp.path())
        .args(["backups", "list", "--fast", "--from"])
        .arg(&dest));
    check("backups list", &out);
    assert!(
        stdout(&out).contains("x\\x1b[2J\\nerror: forged.tar.zst.age"),
        "{}",
        stdout(&out)
    );
}

/// An identity or recipients file must be a regular file of a sensible size: `/dev/urandom` or a
/// FIFO is refused at once, naming the file.
#[test]
fn identity_and_recipients_files_must_be_regular_files() {
    let tmp = tempfile::tempdir().unwrap();
    let k = keys(tmp.path());
    let backup = hostile_backup(tmp.path(), &k.public, |b| {
        raw_entry(b, b"plain", tar::EntryType::Regular, None, b"x")
    });
    let fifo = tmp.path().join("fifo");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let big = tmp.path().join("big-key.txt");
    fs::write(&big, vec![b'#'; (64 << 10) + 1]).unwrap();
    for (identity, expect) in [
        (
            Path::new("/dev/urandom"),
            "identity file /dev/urandom: is a character device, not a regular file".to_string(),
        ),
        (
            fifo.as_path(),
            format!("identity file {}: is a FIFO (named pipe)", fifo.display()),
        ),
        (
            big.as_path(),
            format!("identity file {}: larger than 64 KiB", big.display()),
        ),
    ] {
        let started = std::time::Instant::now();
        let out = run(sidecar(tmp.path())
            .arg("restore")
            .arg(&backup)
            .arg("--to")
            .arg(tmp.path().join("target"))
            .arg("--identity")
            .arg(identity));
        assert!(started.elapsed() < std::time::Duration::from_secs(2), "{identity:?}");
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(stderr(&out).contains(&expect), "{}", stderr(&out));
    }
    let src = tmp.path().join("data");
    data(&src);
    let out = run(sidecar(tmp.path())
        .args(["backup", "--source"])
        .arg(&src)
        .arg("--to")
        .arg(tmp.path().join("dest"))
        .arg("--recipients-file")
        .arg(&fifo));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("recipients file") && stderr(&out).contains("FIFO"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn prune_keeps_what_the_policy_says_and_touches_only_its_own_files() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("data");
    data(&src);
    let k = keys(tmp.path());
    let dest = tmp.path().join("backups");
    let out = backup_ok(tmp.path(), &src, &dest, &k.public);
    let made = std::path::PathBuf::from(stdout(&out).trim());
    // Ten daily backups, 2026-11-01 .. 2026-11-10, from copies of the real one.
    for day in 1..=10 {
        let name = format!("openclaw_data-202611{day:02}T030000Z.tar.zst.age");
        fs::copy(&made, dest.join(&name)).unwrap();
        let sums = fs::read_to_string(format!("{}.b3", made.display())).unwrap();
        let hash = sums.split_whitespace().next().unwrap();
        fs::write(dest.join(format!("{name}.b3")), format!("{hash}  {name}\n")).unwrap();
    }
    fs::remove_file(&made).unwrap();
    fs::remove_file(format!("{}.b3", made.display())).unwrap();
    fs::write(dest.join("notes.txt"), b"operator notes").unwrap();
    fs::copy(
        dest.join("openclaw_data-20261101T030000Z.tar.zst.age"),
        dest.join("other-20261101T030000Z.tar.zst.age"),
    )
    .unwrap();
    let stale = dest.join(".openclaw_data-20261001T030000Z.tar.zst.age.a1b2c3.partial");
    fs::write(&stale, b"killed").unwrap();
    let old = filetime::FileTime::from_unix_time(1_700_000_000, 0);
    filetime::set_file_mtime(&stale, old).unwrap();

    let count = || fs::read_dir(&dest).unwrap().count();
    let before = count();
    let out = run(sidecar(tmp.path())
        .args([
            "prune",
            "--dry-run",
            "--keep-last",
            "3",
            "--keep-daily",
            "0",
            "--keep-weekly",
            "0",
            "--keep-monthly",
            "0",
            "--from",
        ])
        .arg(&dest));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out).matches("would delete").count(), 7, "{}", stdout(&out));
    assert_eq!(count(), before, "dry run deletes nothing");

    let out = run(sidecar(tmp.path())
        .env("SIDECAR_BACKUP__RETENTION__KEEP_DAILY", "0")
        .env("SIDECAR_BACKUP__RETENTION__KEEP_WEEKLY", "2")
        .env("SIDECAR_BACKUP__RETENTION__KEEP_MONTHLY", "0")
        .args(["prune", "--keep-last", "3", "--from"])
        .arg(&dest));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mut left: Vec<String> = fs::read_dir(&dest)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    // Last 3 (08, 09, 10) plus the newest of each of 2 ISO weeks: 2026-11-08 is a Sunday (week of
    // 11-02), 11-10 is in the week of 11-09.
    let mut want: Vec<String> = ["08", "09", "10"]
        .iter()
        .flat_map(|d| {
            let n = format!("openclaw_data-202611{d}T030000Z.tar.zst.age");
            [n.clone(), format!("{n}.b3")]
        })
        .collect();
    want.push("notes.txt".into());
    want.push("other-20261101T030000Z.tar.zst.age".into());
    want.sort();
    assert_eq!(left, want);

    // No policy at all is refused rather than deleting all but one.
    let out = run(sidecar(tmp.path())
        .args([
            "prune",
            "--keep-last",
            "0",
            "--keep-daily",
            "0",
            "--keep-weekly",
            "0",
            "--keep-monthly",
            "0",
            "--from",
        ])
        .arg(&dest));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
fn a_file_stored_twice_restores_its_later_copy() {
    let tmp = tempfile::tempdir().unwrap();
    let k = keys(tmp.path());
    let hash = blake3::hash(b"second read").to_hex();
    let path = hostile_backup(tmp.path(), &k.public, |b| {
        raw_entry(b, b"db.sqlite", tar::EntryType::Regular, None, b"first read");
        raw_entry(b, b"db.sqlite", tar::EntryType::Regular, None, b"second read");
        let manifest = format!(
            "{{\"line\":\"header\",\"format\":\"sidecar-backup-manifest\",\"version\":2,\"source\":\"/data\",\"created\":\"2026-11-27T00:00:00Z\",\"sidecar\":\"0.1.0\"}}\n\
             {{\"line\":\"entry\",\"path\":\"db.sqlite\",\"type\":\"file\",\"size\":11,\"mode\":420,\"uid\":0,\"gid\":0,\"mtime_ns\":0,\"blake3\":\"{hash}\"}}\n\
             {{\"line\":\"totals\",\"entries\":1,\"files\":1,\"bytes\":11,\"changed\":0,\"skipped\":0}}\n"
        );
        raw_entry(
            b,
            b".sidecar-manifest.jsonl",
            tar::EntryType::Regular,
            None,
            manifest.as_bytes(),
        );
    });
    let target = tmp.path().join("t");
    let out = run(sidecar(tmp.path())
        .arg("restore")
        .arg(&path)
        .arg("--to")
        .arg(&target)
        .arg("--identity")
        .arg(&k.identity));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(fs::read(target.join("db.sqlite")).unwrap(), b"second read");
}

/// Start `sidecar backup --schedule`, wait for `lines` backups to be printed, stop it with SIGTERM.
fn scheduled(
    tmp: &Path,
    src: &Path,
    dest: &Path,
    public: &str,
    schedule: &str,
    wait: std::time::Duration,
) -> (std::process::ExitStatus, String, String) {
    use std::io::Read;
    let mut child = sidecar(tmp)
        .env("SIDECAR_BACKUP__SCHEDULE", schedule)
        .env("SIDECAR_BACKUP__RECIPIENTS", format!("[\"{public}\"]"))
        .args(["backup", "--schedule", "--no-progress", "--source"])
        .arg(src)
        .arg("--to")
        .arg(dest)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(wait);
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = child.wait().unwrap();
    let (mut out, mut err) = (String::new(), String::new());
    child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    (status, out, err)
}

#[test]
fn scheduled_backups_catch_up_run_on_time_and_stop_on_sigterm() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("data");
    data(&src);
    let k = keys(tmp.path());
    let dest = tmp.path().join("backups");
    // Daily at 03:00: nothing in the destination yet, so the missed run happens at start, and the
    // next is hours away.
    let (status, out, err) = scheduled(
        tmp.path(),
        &src,
        &dest,
        &k.public,
        "0 3 * * *",
        std::time::Duration::from_secs(3),
    );
    assert!(status.success(), "{err}");
    assert!(err.contains("catching up"), "{err}");
    assert_eq!(out.lines().count(), 1, "{out}\n{err}");
    assert!(
        err.contains("next backup at") && err.contains("stopped (0 failed"),
        "{err}"
    );
    // Every second (6 fields, seconds first). Names carry seconds, so runs one second apart get
    // distinct files.
    let (status, out, err) = scheduled(
        tmp.path(),
        &src,
        &dest,
        &k.public,
        "* * * * * *",
        std::time::Duration::from_millis(3500),
    );
    assert!(status.success(), "{err}");
    assert!(out.lines().count() >= 2, "{out}\n{err}");
    let backups = fs::read_dir(&dest)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".tar.zst.age")
        })
        .count();
    assert_eq!(backups, 1 + out.lines().count(), "every printed backup exists");
    for line in out.lines() {
        let v = run(sidecar(tmp.path())
            .args(["verify", line.trim(), "--identity"])
            .arg(&k.identity));
        assert_eq!(v.status.code(), Some(0), "{}", stderr(&v));
    }
}

#[test]
fn a_killed_backup_never_looks_like_a_backup() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("data");
    fs::create_dir_all(&src).unwrap();
    // 256 MiB of incompressible data: long enough to be killed mid-way.
    let mut f = fs::File::create(src.join("media.bin")).unwrap();
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut buf = vec![0u8; 1 << 20];
    for _ in 0..256 {
        for chunk in buf.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes());
        }
        f.write_all(&buf).unwrap();
    }
    drop(f);
    let k = keys(tmp.path());
    let dest = tmp.path().join("backups");
    for signal in ["-KILL", "-TERM"] {
        let mut child = sidecar(tmp.path())
            .args(["backup", "--no-progress", "--level", "9", "--source"])
            .arg(&src)
            .arg("--to")
            .arg(&dest)
            .args(["-r", &k.public])
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(700));
        assert!(Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .unwrap()
            .success());
        let status = child.wait().unwrap();
        assert!(
            !status.success(),
            "{signal}: the backup was expected to be still running"
        );
        let list = run(sidecar(tmp.path()).args(["backups", "list", "--from"]).arg(&dest));
        assert!(stderr(&list).contains("0 backup(s)"), "{signal}: {}", stdout(&list));
        for e in fs::read_dir(&dest).unwrap() {
            let n = e.unwrap().file_name().to_string_lossy().into_owned();
            assert!(n.starts_with('.') && !n.ends_with(".tar.zst.age"), "{signal}: {n}");
            // SIGTERM is handled: the partial file is removed (only the lock-free leftovers of
            // the earlier SIGKILL remain).
        }
    }
    let partials = fs::read_dir(&dest)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().ends_with(".partial"))
        .count();
    assert_eq!(partials, 1, "SIGKILL leaves its partial file, SIGTERM removes its own");
}
