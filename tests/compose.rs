//! The compose files validate with the Compose this machine has, and `compose/sidecar.toml` lists
//! every configuration key with its default (except the documented container-specific values).

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use crate::common::{compose, run, sidecar};

#[test]
fn the_compose_files_validate() {
    let Some(cmd) = compose() else { return };
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("compose");
    // Compose reads `compose/.env`, which a user creates: the test gives it an empty env file
    // instead, and sets (or removes) every variable it depends on.
    let tmp = tempfile::tempdir().unwrap();
    let env_file = tmp.path().join("empty.env");
    std::fs::write(&env_file, "").unwrap();
    // `compose -f FILE… config` from compose/, with the empty env file.
    let config = |files: &[&str]| {
        let mut c = Command::new(cmd[0]);
        c.args(&cmd[1..]).current_dir(&dir).arg("--env-file").arg(&env_file);
        for f in files {
            c.args(["-f", f]);
        }
        c.arg("config");
        c
    };
    for files in [
        vec!["docker-compose.yml"],
        vec!["docker-compose.yml", "docker-compose.audit.yml"],
    ] {
        let out = config(&files)
            .env("OPENCLAW_GATEWAY_TOKEN", "0".repeat(64))
            .env("SIDECAR_BACKUP_RECIPIENT", "age1example")
            .env_remove("SIDECAR_NETWORK")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{files:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("internal: true"), "{text}");
        assert!(text.contains("network_mode: none"), "sidecar has no network by default");
        assert!(text.contains("- restore"), "the restore service is behind its profile");
        assert_eq!(
            text.contains("docker.sock"),
            files.len() == 2,
            "the socket only with the audit override"
        );
    }
    // A required secret that is not set is an error, not an empty token.
    let out = config(&["docker-compose.yml"])
        .env_remove("OPENCLAW_GATEWAY_TOKEN")
        .env("SIDECAR_BACKUP_RECIPIENT", "age1example")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("OPENCLAW_GATEWAY_TOKEN"));
    // No backup recipient yet (a first `up`): valid, and sidecar gets no recipient (backups off).
    let out = config(&["docker-compose.yml"])
        .env("OPENCLAW_GATEWAY_TOKEN", "0".repeat(64))
        .env_remove("SIDECAR_BACKUP_RECIPIENT")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains(r#"SIDECAR_BACKUP__RECIPIENTS: '[""]'"#), "{text}");
}

#[test]
fn the_compose_config_file_lists_every_key_with_its_default() {
    let tmp = tempfile::tempdir().unwrap();
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("compose/sidecar.toml");
    let show = |config: Option<&Path>| {
        let mut c = sidecar(tmp.path());
        c.env_remove("SIDECAR_STATE_DIR");
        if let Some(f) = config {
            c.arg("--config").arg(f);
        }
        let out = run(c.args(["config", "show"]));
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let with_file = show(Some(&file));
    let defaults = show(None);
    let differ: BTreeSet<String> = with_file
        .lines()
        .zip(defaults.lines())
        .filter(|(a, b)| a != b)
        .map(|(a, _)| a.to_string())
        .collect();
    let expected: BTreeSet<String> = ["pause = false"].iter().map(|s| s.to_string()).collect();
    assert_eq!(differ, expected, "only the documented container-specific values differ");
    // Every key sidecar knows appears in the file (set, or commented when it has no default).
    let text = std::fs::read_to_string(&file).unwrap();
    for line in defaults.lines() {
        if let Some((key, _)) = line.split_once(" = ") {
            assert!(
                text.lines()
                    .any(|l| l.trim_start_matches("# ").starts_with(&format!("{key} = "))),
                "{key} is missing from compose/sidecar.toml"
            );
        }
    }
}
