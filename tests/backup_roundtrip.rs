//! Backups on real files: a tree with files, modes, nanosecond mtimes, symlinks and hardlinks goes
//! through `create_backup` and `restore` and comes back identical; wrong keys, truncation and a
//! flipped byte are refused with the target left as it was.
use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use age::secrecy::ExposeSecret;
use sidecar::backup::{self, restore, BackupOptions, Recipient};

fn tree(root: &Path) {
    fs::create_dir_all(root.join("agents/main/sessions")).unwrap();
    fs::write(root.join("openclaw.json"), b"{\"gateway\":{\"port\":18789}}\n").unwrap();
    fs::set_permissions(root.join("openclaw.json"), fs::Permissions::from_mode(0o600)).unwrap();
    let mut big = fs::File::create(root.join("agents/main/sessions/s1.jsonl")).unwrap();
    for i in 0..20_000 {
        writeln!(
            big,
            "{{\"i\":{i},\"role\":\"user\",\"text\":\"hello {}\"}}",
            i * 7919 % 1000
        )
        .unwrap();
    }
    drop(big);
    fs::write(root.join("empty"), b"").unwrap();
    std::os::unix::fs::symlink("openclaw.json", root.join("config-link")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", root.join("outside-link")).unwrap();
    fs::hard_link(root.join("openclaw.json"), root.join("agents/hardlinked.json")).unwrap();
    fs::set_permissions(root.join("agents"), fs::Permissions::from_mode(0o750)).unwrap();
    let t = filetime::FileTime::from_unix_time(1_700_000_000, 123_456_789);
    filetime::set_file_times(root.join("empty"), t, t).unwrap();
    // A named pipe (some agents' tools leave one): restored as a pipe, with its mode.
    let ok = std::process::Command::new("mkfifo")
        .args(["-m", "0640"])
        .arg(root.join("agents/control.fifo"))
        .status()
        .unwrap();
    assert!(ok.success());
}

/// path → (kind, mode, mtime s, mtime ns, content or link target, inode group)
fn snapshot(root: &Path) -> Vec<(String, String, u32, i64, i64, Vec<u8>)> {
    let mut out = Vec::new();
    for e in walkdir::WalkDir::new(root).min_depth(1).sort_by_file_name() {
        let e = e.unwrap();
        let md = e.path().symlink_metadata().unwrap();
        let rel = e.path().strip_prefix(root).unwrap().display().to_string();
        let (kind, content) = if md.file_type().is_symlink() {
            (
                "symlink",
                fs::read_link(e.path()).unwrap().into_os_string().into_encoded_bytes(),
            )
        } else if md.is_dir() {
            ("dir", Vec::new())
        } else if std::os::unix::fs::FileTypeExt::is_fifo(&md.file_type()) {
            ("fifo", Vec::new())
        } else {
            ("file", fs::read(e.path()).unwrap())
        };
        let (mtime, nsec) = if md.is_dir() {
            (0, 0)
        } else {
            (md.mtime(), md.mtime_nsec())
        };
        let mode = if kind == "symlink" { 0 } else { md.mode() & 0o7777 };
        out.push((rel, kind.to_string(), mode, mtime, nsec, content));
    }
    out
}

fn keys(dir: &Path) -> (Recipient, std::path::PathBuf) {
    let id = age::x25519::Identity::generate();
    let path = dir.join("key.txt");
    fs::write(&path, format!("# test identity\n{}\n", id.to_string().expose_secret())).unwrap();
    (Recipient::parse(&id.to_public().to_string()).unwrap(), path)
}

fn local_ref(p: &Path) -> backup::BackupRef {
    backup::BackupRef {
        store: std::sync::Arc::new(sidecar::store::LocalStore::new(p.parent().unwrap())),
        name: p.file_name().unwrap().to_string_lossy().into_owned(),
    }
}

fn make_backup(src: &Path, dest: &Path, recipient: Recipient) -> backup::BackupResult {
    backup::create_backup(&BackupOptions {
        source: src.to_path_buf(),
        store: std::sync::Arc::new(sidecar::store::LocalStore::new(dest)),
        name: "openclaw_data".into(),
        recipients: vec![recipient],
        level: 3,
        threads: 2,
        progress: None,
        stop: None,
        pause: None,
    })
    .unwrap()
}

#[test]
fn backup_and_restore_reproduce_the_tree() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("data");
    tree(&src);
    // The backed-up directory's own owner, mode and mtime come back too (a volume's root).
    let is_root = fs::metadata("/proc/self").unwrap().uid() == 0;
    if is_root {
        std::os::unix::fs::chown(&src, Some(4242), Some(4343)).unwrap();
    }
    fs::set_permissions(&src, fs::Permissions::from_mode(0o750)).unwrap();
    let src_time = filetime::FileTime::from_unix_time(1_600_000_000, 42);
    filetime::set_file_times(&src, src_time, src_time).unwrap();
    let (recipient, identity) = keys(tmp.path());
    let result = make_backup(&src, &tmp.path().join("backups"), recipient);
    let result_path = tmp.path().join("backups").join(&result.name);
    let name = result.name.clone();
    assert!(
        name.starts_with("openclaw_data-") && name.ends_with(".tar.zst.age"),
        "{name}"
    );
    assert_eq!(fs::metadata(&result_path).unwrap().mode() & 0o777, 0o600);
    assert_eq!(result.bytes, fs::metadata(&result_path).unwrap().len());
    assert_eq!(result.summary.totals.files, 3, "{:?}", result.summary);
    // Nothing but the backup, its checksum file and its index in the destination (no temporary file left).
    let mut names: Vec<String> = fs::read_dir(tmp.path().join("backups"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        vec![name.clone(), format!("{name}.b3"), format!("{name}.index.age")]
    );
    // The backup is not plaintext.
    let raw = fs::read(&result_path).unwrap();
    assert!(raw.starts_with(b"age-encryption.org/v1\n"));
    assert!(memchr::memmem::find(&raw, b"gateway").is_none());

    let target = tmp.path().join("restored");
    let summary = restore::restore(&restore::RestoreOptions {
        backup: local_ref(&result_path),
        identity: identity.clone(),
        target: target.clone(),
        force: false,
        dry_run: false,
        paths: Vec::new(),
        progress: None,
        keep: Default::default(),
    })
    .unwrap();
    assert_eq!(summary.files, 3);
    assert_eq!(snapshot(&src), snapshot(&target));
    let root = fs::metadata(&target).unwrap();
    assert_eq!(root.mode() & 0o7777, 0o750, "the target takes the source's mode");
    assert_eq!(filetime::FileTime::from_last_modification_time(&root), src_time);
    if is_root {
        assert_eq!((root.uid(), root.gid()), (4242, 4343), "and its owner");
    }
    let a = fs::metadata(target.join("openclaw.json")).unwrap();
    let b = fs::metadata(target.join("agents/hardlinked.json")).unwrap();
    assert_eq!(a.ino(), b.ino(), "hardlink restored as a link");
    assert_eq!(
        fs::read_link(target.join("outside-link")).unwrap(),
        Path::new("/etc/passwd")
    );

    // A non-empty target is refused without --force; with it, the old content is moved aside.
    let err = restore::restore(&restore::RestoreOptions {
        backup: local_ref(&result_path),
        identity: identity.clone(),
        target: target.clone(),
        force: false,
        dry_run: false,
        paths: Vec::new(),
        progress: None,
        keep: Default::default(),
    })
    .unwrap_err()
    .to_string();
    assert!(err.contains("not empty") && err.contains("--force"), "{err}");
    let forced = restore::restore(&restore::RestoreOptions {
        backup: local_ref(&result_path),
        identity,
        target: target.clone(),
        force: true,
        dry_run: false,
        paths: Vec::new(),
        progress: None,
        keep: Default::default(),
    })
    .unwrap();
    let aside = forced.moved_aside.expect("old content moved aside");
    assert!(aside.join("openclaw.json").exists());
}

#[test]
fn wrong_key_truncation_and_corruption_are_refused_and_leave_the_target_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("data");
    tree(&src);
    let (recipient, identity) = keys(tmp.path());
    let result = make_backup(&src, &tmp.path().join("backups"), recipient);
    let result_path = tmp.path().join("backups").join(&result.name);
    let target = tmp.path().join("target");
    fs::create_dir(&target).unwrap();
    let run = |backup: &Path, identity: &Path| {
        restore::restore(&restore::RestoreOptions {
            backup: local_ref(backup),
            identity: identity.to_path_buf(),
            target: target.clone(),
            force: false,
            dry_run: false,
            paths: Vec::new(),
            progress: None,
            keep: Default::default(),
        })
        .unwrap_err()
        .to_string()
    };
    let other = tempfile::tempdir().unwrap();
    let (_, wrong) = keys(other.path());
    let err = run(&result_path, &wrong);
    assert!(err.contains("wrong key"), "{err}");

    let raw = fs::read(&result_path).unwrap();
    for (label, bytes) in [
        ("truncated mid-chunk", raw[..raw.len() / 2 + 17].to_vec()),
        (
            "truncated at a chunk boundary",
            raw[..raw.len() - raw.len() % 65_536].to_vec(),
        ),
        ("flipped byte", {
            let mut b = raw.clone();
            let i = b.len() * 2 / 3;
            b[i] ^= 0x40;
            b
        }),
        ("not an age file", b"hello, this is not a backup\n".to_vec()),
    ] {
        let bad = tmp.path().join("bad.tar.zst.age");
        fs::write(&bad, &bytes).unwrap();
        let err = run(&bad, &identity);
        assert!(err.contains("bad.tar.zst.age"), "{label}: {err}");
        assert_eq!(fs::read_dir(&target).unwrap().count(), 0, "{label}: target untouched");
    }
}

#[test]
fn sparse_files_are_stored_and_restored_sparse() {
    use std::io::{Seek, SeekFrom};
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("data");
    fs::create_dir_all(&src).unwrap();
    let size: u64 = 64 << 20;
    let mut f = fs::File::create(src.join("disk.img")).unwrap();
    f.seek(SeekFrom::Start(8 << 20)).unwrap();
    f.write_all(&[0xAB; 100_000]).unwrap();
    f.seek(SeekFrom::Start(40 << 20)).unwrap();
    f.write_all(b"middle of the image").unwrap();
    f.set_len(size).unwrap();
    drop(f);
    let md = fs::metadata(src.join("disk.img")).unwrap();
    assert!(md.blocks() * 512 < 4 << 20, "the test file system keeps holes");
    let (recipient, identity) = keys(tmp.path());
    let result = make_backup(&src, &tmp.path().join("backups"), recipient);
    let result_path = tmp.path().join("backups").join(&result.name);
    assert!(result.bytes < 1 << 20, "holes are not stored: {} bytes", result.bytes);
    let target = tmp.path().join("restored");
    restore::restore(&restore::RestoreOptions {
        backup: local_ref(&result_path),
        identity,
        target: target.clone(),
        force: false,
        dry_run: false,
        paths: Vec::new(),
        progress: None,
        keep: Default::default(),
    })
    .unwrap();
    let back = fs::metadata(target.join("disk.img")).unwrap();
    assert_eq!(back.len(), size);
    assert!(
        back.blocks() * 512 < 4 << 20,
        "restored sparse: {} blocks",
        back.blocks()
    );
    assert_eq!(snapshot(&src), snapshot(&target));
}
