//! A backup is input from outside once it has left the host: a restore gives no privileges back unless
//! asked, `verify` refuses exactly what `restore` refuses (generated hostile archives fed to both),
//! and the staging directories of an interrupted restore are never silently ignored.
#![allow(clippy::disallowed_macros)] // test output; a dead stderr is not tested here

use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::common::{keys, run, sidecar};
use proptest::prelude::*;
use sidecar::backup::{self, restore};

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `sidecar backup --source src` to `<tmp>/backups` for recipient `public`; that directory.
fn back_up(tmp: &Path, src: &Path, public: &str) -> PathBuf {
    let dest = tmp.join("backups");
    let out = run(sidecar(tmp)
        .args(["backup", "--source"])
        .arg(src)
        .arg("--to")
        .arg(&dest)
        .args(["-r", public]));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    dest
}

fn is_root() -> bool {
    fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false)
}

/// `security.capability` granting `cap_sys_admin=ep` (VFS_CAP_REVISION_2, effective).
const CAP_SYS_ADMIN: [u8; 20] = [1, 0, 0, 2, 0, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];

#[test]
fn a_restore_gives_no_privileges_back_unless_asked() {
    let tmp = tempfile::tempdir().unwrap();
    let k = keys(tmp.path());
    let src = tmp.path().join("data");
    fs::create_dir_all(src.join("shared")).unwrap();
    let tool = src.join("tool");
    fs::write(&tool, b"#!/bin/sh\n").unwrap();
    fs::set_permissions(&tool, fs::Permissions::from_mode(0o4755)).unwrap();
    fs::set_permissions(src.join("shared"), fs::Permissions::from_mode(0o3775)).unwrap();
    fs::write(src.join("plain"), b"x").unwrap();
    let root = is_root();
    if root {
        xattr::set(&tool, "security.capability", &CAP_SYS_ADMIN).expect("root sets a file capability");
        std::os::unix::fs::chown(src.join("plain"), Some(4242), Some(4242)).unwrap();
    }
    fs::set_permissions(&src, fs::Permissions::from_mode(0o7777)).unwrap();
    let dest = back_up(tmp.path(), &src, &k.public);
    fs::set_permissions(&src, fs::Permissions::from_mode(0o755)).unwrap();

    let restore_to = |target: &Path, extra: &[&str]| {
        let out = run(sidecar(tmp.path())
            .args(["restore", "latest", "--no-progress", "--from"])
            .arg(&dest)
            .arg("--to")
            .arg(target)
            .arg("--identity")
            .arg(&k.identity)
            .args(extra));
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        format!("{}{}", stdout(&out), stderr(&out))
    };
    let mode = |p: &Path| fs::symlink_metadata(p).unwrap().mode() & 0o7777;

    // By default: no setuid/setgid/sticky bits, no capability, no world-writable root; all listed.
    let plain = tmp.path().join("plain-restore");
    let said = restore_to(&plain, &[]);
    assert_eq!(mode(&plain.join("tool")), 0o755, "{said}");
    assert_eq!(mode(&plain.join("shared")), 0o775, "{said}");
    assert_eq!(
        mode(&plain),
        0o775,
        "the root: special bits and world write dropped; {said}"
    );
    assert!(
        xattr::get(plain.join("tool"), "security.capability").unwrap().is_none(),
        "{said}"
    );
    for what in [
        "`tool`: setuid bit",
        "`shared`: setgid bit, sticky bit",
        "world write",
        "--preserve-privileges",
    ] {
        assert!(said.contains(what), "`{what}` listed: {said}");
    }
    if root {
        assert!(said.contains("xattr security.capability"), "{said}");
        assert_eq!(
            fs::metadata(plain.join("plain")).unwrap().uid(),
            4242,
            "owners kept as root"
        );
    }
    // verify tells what a restore would drop, and still succeeds.
    let out = run(sidecar(tmp.path())
        .args(["verify", "latest", "--no-progress", "--from"])
        .arg(&dest)
        .arg("--identity")
        .arg(&k.identity));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        format!("{}{}", stdout(&out), stderr(&out)).contains("privileges a restore drops"),
        "{}",
        stderr(&out)
    );

    // Asked for: everything as it was.
    let kept = tmp.path().join("kept");
    let said = restore_to(&kept, &["--preserve-privileges"]);
    assert_eq!(mode(&kept.join("tool")), 0o4755, "{said}");
    assert_eq!(mode(&kept.join("shared")), 0o3775, "{said}");
    assert_eq!(mode(&kept), 0o7777, "{said}");
    assert!(!said.contains("privileges not restored"), "{said}");
    if root {
        assert_eq!(
            xattr::get(kept.join("tool"), "security.capability").unwrap().as_deref(),
            Some(&CAP_SYS_ADMIN[..]),
            "{said}"
        );
        // --no-same-owner: everything belongs to whoever restores.
        let mine = tmp.path().join("mine");
        restore_to(&mine, &["--no-same-owner"]);
        assert_eq!(fs::metadata(mine.join("plain")).unwrap().uid(), 0);
    }
}

#[test]
fn leftover_staging_directories_are_refused_then_removed_by_force() {
    let tmp = tempfile::tempdir().unwrap();
    let k = keys(tmp.path());
    let src = tmp.path().join("data");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("a"), b"a").unwrap();
    let dest = back_up(tmp.path(), &src, &k.public);
    let target = tmp.path().join("target");
    // What a restore killed midway leaves: its staging directory, with part of the tree.
    fs::create_dir_all(target.join(".sidecar-restore-0123456789ab/half")).unwrap();
    fs::write(target.join(".sidecar-restore-0123456789ab/half/file"), b"partial").unwrap();
    // And a symlink named like one, pointing outside: removed itself, never followed.
    let outside = tmp.path().join("outside");
    fs::create_dir_all(&outside).unwrap();
    fs::write(outside.join("keep"), b"keep").unwrap();
    std::os::unix::fs::symlink(&outside, target.join(".sidecar-restore-link")).unwrap();
    let restore = |force: bool| {
        let mut cmd = sidecar(tmp.path());
        cmd.args(["restore", "latest", "--no-progress", "--from"])
            .arg(&dest)
            .arg("--to")
            .arg(&target)
            .arg("--identity")
            .arg(&k.identity);
        if force {
            cmd.arg("--force");
        }
        run(&mut cmd)
    };
    let out = restore(false);
    assert_eq!(
        out.status.code(),
        Some(2),
        "a problem of the target, not of the backup: {}",
        stderr(&out)
    );
    let err = stderr(&out);
    assert!(err.contains("interrupted restore") && err.contains("--force"), "{err}");
    assert!(err.contains(".sidecar-restore-0123456789ab"), "{err}");
    assert!(
        target.join(".sidecar-restore-0123456789ab/half/file").exists(),
        "refused: untouched"
    );

    let out = restore(true);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let said = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        said.contains("removed") && said.contains(".sidecar-restore-0123456789ab"),
        "{said}"
    );
    let names: Vec<String> = fs::read_dir(&target)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names.iter().filter(|n| n.starts_with(".sidecar-restore-")).count(),
        0,
        "{names:?}"
    );
    assert_eq!(fs::read(target.join("a")).unwrap(), b"a");
    assert_eq!(
        fs::read(outside.join("keep")).unwrap(),
        b"keep",
        "the link was not followed"
    );
}

// ---------------------------------------------------------------------------------------------
// verify and restore agree on every archive.

/// One entry of a generated archive.
#[derive(Debug, Clone)]
struct Gen {
    path: usize,
    kind: usize,
    link: usize,
}

const PATHS: [&str; 6] = ["a", "b", "a/b", "a/c", "b/a", "a/b/c"];
const LINKS: [&str; 5] = ["a", "a/b", "b", "../outside", "/etc/passwd"];

fn build_tar(entries: &[Gen], manifest: bool) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut lines = vec![
        "{\"line\":\"header\",\"format\":\"sidecar-backup-manifest\",\"version\":2,\"source\":\"/data\",\"created\":\"2026-12-04T00:00:00Z\",\"sidecar\":\"0.1.0\"}".to_string(),
    ];
    for (i, e) in entries.iter().enumerate() {
        let path = PATHS[e.path % PATHS.len()];
        let link = LINKS[e.link % LINKS.len()];
        let data = format!("content {i}\n").into_bytes();
        let (kind, body, link) = match e.kind % 6 {
            0 => (tar::EntryType::Regular, &data[..], None),
            1 => (tar::EntryType::Directory, &[][..], None),
            2 => (tar::EntryType::Symlink, &[][..], Some(link)),
            3 => (tar::EntryType::Link, &[][..], Some(link)),
            4 => (tar::EntryType::Fifo, &[][..], None),
            _ => (tar::EntryType::Regular, &data[..], None),
        };
        let mut h = tar::Header::new_gnu();
        h.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
        h.set_entry_type(kind);
        h.set_mode(if kind == tar::EntryType::Directory {
            0o755
        } else {
            0o644
        });
        h.set_size(body.len() as u64);
        if let Some(l) = link {
            h.as_old_mut().linkname[..l.len()].copy_from_slice(l.as_bytes());
        }
        h.set_cksum();
        b.append(&h, body).unwrap();
        if kind == tar::EntryType::Regular {
            lines.push(format!(
                "{{\"line\":\"entry\",\"path\":\"{path}\",\"type\":\"file\",\"size\":{},\"mode\":420,\"uid\":0,\"gid\":0,\"mtime_ns\":0,\"blake3\":\"{}\"}}",
                body.len(),
                blake3::hash(body).to_hex()
            ));
        }
    }
    if manifest {
        lines.push("{\"line\":\"totals\",\"entries\":0,\"files\":0,\"bytes\":0,\"changed\":0,\"skipped\":0}".into());
        let m = lines.join("\n") + "\n";
        let mut h = tar::Header::new_gnu();
        h.set_path(".sidecar-manifest.jsonl").unwrap();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o600);
        h.set_size(m.len() as u64);
        h.set_cksum();
        b.append(&h, m.as_bytes()).unwrap();
    }
    b.into_inner().unwrap()
}

fn encrypt(tar: &[u8], public: &str, path: &Path) {
    let zst = zstd::encode_all(tar, 1).unwrap();
    let r: age::x25519::Recipient = public.parse().unwrap();
    let enc = age::Encryptor::with_recipients(std::iter::once(&r as &dyn age::Recipient)).unwrap();
    let mut w = enc.wrap_output(fs::File::create(path).unwrap()).unwrap();
    w.write_all(&zst).unwrap();
    w.finish().unwrap();
}

struct Fixture {
    dir: tempfile::TempDir,
    public: String,
    identity: PathBuf,
}

fn fixture() -> &'static Fixture {
    static F: std::sync::OnceLock<Fixture> = std::sync::OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let k = keys(dir.path());
        Fixture {
            public: k.public,
            identity: k.identity,
            dir,
        }
    })
}

fn verify_and_restore(entries: &[Gen], manifest: bool) -> (Result<(), String>, Result<(), String>) {
    verify_and_restore_tar(&build_tar(entries, manifest))
}

fn verify_and_restore_tar(tar: &[u8]) -> (Result<(), String>, Result<(), String>) {
    let f = fixture();
    let work = tempfile::tempdir_in(f.dir.path()).unwrap();
    let archive = work.path().join("hostile.tar.zst.age");
    encrypt(tar, &f.public, &archive);
    let backup = backup::BackupRef {
        store: std::sync::Arc::new(sidecar::store::LocalStore::new(work.path())),
        name: "hostile.tar.zst.age".into(),
    };
    let verified = restore::verify(&backup, &f.identity, None)
        .map(|_| ())
        .map_err(|e| e.to_string());
    let target = work.path().join("target");
    let restored = restore::restore(&restore::RestoreOptions {
        backup,
        identity: f.identity.clone(),
        target: target.clone(),
        force: false,
        dry_run: false,
        paths: Vec::new(),
        progress: None,
        keep: Default::default(),
    })
    .map(|_| ())
    .map_err(|e| e.to_string());
    if restored.is_err() {
        assert_eq!(
            fs::read_dir(&target).unwrap().count(),
            0,
            "a failed restore leaves nothing"
        );
    }
    assert!(!work.path().join("outside").exists());
    (verified, restored)
}

#[test]
fn verify_refuses_the_archives_restore_refuses_with_the_same_message() {
    let g = |path, kind, link| Gen { path, kind, link };
    let cases: Vec<(&str, Vec<Gen>, &str)> = vec![
        // symlink `a` → a, then a file under it
        (
            "symlink then file",
            vec![g(0, 2, 3), g(2, 0, 0)],
            "a parent is not a directory",
        ),
        // file `a`, symlink `b` → a, hardlink `a/..`: hardlink `b/a`?; simpler: hardlink to a symlink
        (
            "hardlink to a symlink",
            vec![g(0, 0, 0), g(1, 2, 0), g(0, 3, 2)],
            "refused hardlink",
        ),
        (
            "directory then file",
            vec![g(0, 1, 0), g(0, 0, 0)],
            "is both a directory and a file",
        ),
        (
            "file then directory",
            vec![g(1, 0, 0), g(1, 1, 0)],
            "is both a file and a directory",
        ),
        ("hardlink to itself", vec![g(0, 0, 0), g(0, 3, 0)], "refused hardlink"),
    ];
    for (label, entries, expect) in cases {
        let (verified, restored) = verify_and_restore(&entries, true);
        let v = verified.expect_err(label);
        assert!(v.contains(expect), "{label}: {v}");
        assert_eq!(Err(v), restored, "{label}");
    }
    // And a sound archive passes both.
    let (verified, restored) = verify_and_restore(&[g(0, 1, 0), g(2, 0, 0), g(1, 2, 1), g(3, 3, 1)], true);
    assert_eq!(verified, Ok(()));
    assert_eq!(restored, Ok(()));
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(96),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Whatever the archive, a restore drill (`verify`) fails exactly when a restore does, with the
    /// same message.
    #[test]
    fn verify_fails_exactly_when_restore_does(
        entries in proptest::collection::vec((0usize..6, 0usize..6, 0usize..5).prop_map(|(path, kind, link)| Gen { path, kind, link }), 0..8),
        manifest in proptest::bool::weighted(0.9),
    ) {
        let (verified, restored) = verify_and_restore(&entries, manifest);
        prop_assert_eq!(verified, restored);
    }

    /// A sound archive with a few bytes changed (tar headers, PAX records, names, sizes, the
    /// manifest): never a panic, and verify and restore still agree.
    #[test]
    fn damaged_archives_are_refused_alike(
        edits in proptest::collection::vec((0u8..4, any::<usize>(), any::<u8>()), 1..5),
    ) {
        let g = |path, kind, link| Gen { path, kind, link };
        let mut tar = build_tar(&[g(0, 1, 0), g(2, 0, 0), g(1, 2, 1), g(3, 3, 1)], true);
        for (op, at, byte) in edits {
            let at = at % (tar.len() + 1);
            match op {
                0 if at < tar.len() => tar[at] = byte,
                1 => tar.insert(at, byte),
                2 if at < tar.len() => {
                    tar.remove(at);
                }
                3 => tar.truncate(at.max(512)),
                _ => {}
            }
        }
        let (verified, restored) = verify_and_restore_tar(&tar);
        prop_assert_eq!(verified, restored);
    }
}
