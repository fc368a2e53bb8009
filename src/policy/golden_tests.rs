//! The audit's output for fixed facts, compared byte for byte with fixtures captured before the
//! checks were restructured: a change in any check's evidence, order, severity or fix, or in the
//! table, JSON or SARIF rendering, shows here. Regenerate deliberately with
//! `SIDECAR_UPDATE_GOLDEN=1 cargo test --lib policy::golden_tests`.
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use bollard::models::{ChangeType, FilesystemChange};
use serde_json::json;

use super::container::{ContainerFacts, SecretHit};
use super::daemon::DaemonFacts;
use super::host::HostPaths;
use super::{apply_accepted, parse_accept, CheckResult, ACCEPT_LABEL, REASON_LABEL};
use crate::render::{write_audit, AuditFormat};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/policy/testdata")
        .join(name)
}

fn compare(name: &str, actual: &str) {
    let path = fixture(name);
    if std::env::var_os("SIDECAR_UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if expected != actual {
        let line = expected
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(expected.lines().count().min(actual.lines().count()));
        panic!(
            "{name} differs from the fixture at line {}:\nexpected: {:?}\nactual:   {:?}",
            line + 1,
            expected.lines().nth(line),
            actual.lines().nth(line)
        );
    }
}

/// A fake scanner: `tok…` after `=` or in a RUN line is a secret, with a fingerprint derived from
/// the text so different values give different fingerprints.
fn scan(text: &str) -> Vec<SecretHit> {
    let mut hits = Vec::new();
    for (i, _) in text.match_indices("tok") {
        let fp: String = text[i..].bytes().take(8).map(|b| format!("{b:02x}")).collect();
        hits.push(SecretHit {
            rule: if text[i..].starts_with("tokgh") {
                "github-pat".into()
            } else {
                "generic".into()
            },
            fingerprint: fp,
        });
    }
    hits
}

fn change(path: &str, kind: ChangeType) -> FilesystemChange {
    FilesystemChange {
        path: path.into(),
        kind,
    }
}

fn containers() -> Vec<ContainerFacts> {
    let facts = |inspect: serde_json::Value, history: Result<Vec<String>, String>, changes| ContainerFacts {
        inspect: serde_json::from_value(inspect).unwrap(),
        history,
        changes,
    };
    let layers = || Ok(vec!["/bin/sh -c #(nop) ADD file:abc in /".to_string()]);
    vec![
        facts(
            json!({
                "Name": "/openclaw",
                "Config": {"User": "1000:1000", "Image": "openclaw/openclaw@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                           "Env": ["PATH=/usr/bin", "NODE_ENV=production"],
                           "Healthcheck": {"Test": ["CMD", "node", "health.js"]}},
                "HostConfig": {"Privileged": false, "CapDrop": ["ALL"], "CapAdd": ["NET_BIND_SERVICE"],
                               "ReadonlyRootfs": true, "NetworkMode": "openclaw_internal",
                               "Memory": 2147483648i64, "NanoCpus": 2000000000i64, "PidsLimit": 256,
                               "SecurityOpt": ["no-new-privileges:true"],
                               "PortBindings": {"18789/tcp": [{"HostIp": "127.0.0.1", "HostPort": "18789"}],
                                                "9000/tcp": [{"HostIp": "::1", "HostPort": "9000"}]},
                               "LogConfig": {"Type": "json-file", "Config": {"max-size": "10m", "max-file": "3"}}},
                "Mounts": [{"Type": "volume", "Name": "openclaw_data", "Source": "/var/lib/docker/volumes/openclaw_data/_data",
                            "Destination": "/home/node/.openclaw", "RW": true},
                           {"Type": "bind", "Source": "/srv/Caddyfile", "Destination": "/etc/caddy/Caddyfile", "RW": false}],
                "NetworkSettings": {"Networks": {"openclaw_internal": {}, "proxy": {}}}
            }),
            layers(),
            Ok(vec![
                change("/etc", ChangeType::_0),
                change("/etc/caddy/Caddyfile", ChangeType::_1),
                change("/tmp/x", ChangeType::_1),
            ]),
        ),
        facts(
            json!({
                "Name": "/bad",
                "Config": {"User": "", "Image": "busybox:latest", "Env": ["TOKEN=tok1", "TOKEN=tok1", "GH=tokgh2", "HOME=/root"],
                           "Healthcheck": {"Test": ["NONE"]}},
                "HostConfig": {"Privileged": true, "CapAdd": ["sys_admin", "cap_net_raw", "chown"], "CapDrop": ["mknod"],
                               "NetworkMode": "host", "PidMode": "host", "IpcMode": "host",
                               "SecurityOpt": ["seccomp=unconfined", "label=disable"],
                               "PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "8080"}, {"HostIp": "127.0.0.1", "HostPort": "8081"}],
                                                "443/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8443"}]},
                               "PublishAllPorts": true,
                               "LogConfig": {"Type": "json-file", "Config": {"max-size": "-1", "max-file": "3"}}},
                "Mounts": [{"Type": "bind", "Source": "/var/run/docker.sock", "Destination": "/var/run/docker.sock", "RW": true},
                           {"Type": "bind", "Source": "/etc", "Destination": "/host-etc", "RW": true},
                           {"Source": "/", "Destination": "/host"},
                           {"Type": "bind", "Source": "/usr", "Destination": "/host-usr", "RW": false},
                           {"Type": "bind", "Source": "/etcetera", "Destination": "/e", "RW": true}]
            }),
            Ok(vec![
                "/bin/sh -c #(nop) ADD file:abc in /".to_string(),
                "RUN echo tokgh9 > /x && echo tok3".to_string(),
            ]),
            Ok((0..13)
                .map(|i| {
                    change(
                        &format!("/usr/bin/tool{i:02}"),
                        [ChangeType::_0, ChangeType::_1, ChangeType::_2][i % 3],
                    )
                })
                .collect()),
        ),
        facts(
            json!({
                "Name": "/accepting",
                "Config": {"User": "root:root", "Image": "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                           "Env": ["GATEWAY_TOKEN=tok5", "HOME=/x"],
                           "Labels": {"sidecar.audit.accept": "ports.loopback, env.secrets:GATEWAY_TOKEN limits.cpu,privileged",
                                      "sidecar.audit.reason": "the gateway takes its token from the environment"}},
                "HostConfig": {"NetworkMode": "bridge", "CpuQuota": 50000, "CpuPeriod": 200000, "Memory": 0,
                               "SecurityOpt": ["no-new-privileges"], "PortBindings": {"53/udp": [{"HostIp": "127.0.0.53", "HostPort": "53"}]},
                               "LogConfig": {"Type": "local"}},
                "NetworkSettings": {"Networks": {"bridge": {}}}
            }),
            Err("no such image".into()),
            Err("container gone".into()),
        ),
        facts(
            json!({
                "Name": "/mixed",
                "Config": {"User": "0", "Image": "sha256:short", "Env": ["A=tok6", "B=tok7"],
                           "Labels": {"sidecar.audit.accept": "env.secrets:A,healthcheck", "sidecar.audit.reason": ""}},
                "HostConfig": {"NetworkMode": "none", "CpuQuota": 25000, "SecurityOpt": ["no-new-privileges=true"],
                               "LogConfig": {"Type": "syslog", "Config": {}}}
            }),
            Ok(vec![]),
            Ok(vec![change("/etc/passwd", ChangeType::_2)]),
        ),
        facts(
            json!({
                "Id": "0123456789abcdef0123",
                "Config": {"User": "nobody", "Labels": {"sidecar.audit.accept": "env.secrets:A"}},
                "HostConfig": {"NetworkMode": "default", "LogConfig": {"Type": "none"}}
            }),
            Ok(vec!["tok8".to_string()]),
            Ok(vec![]),
        ),
        facts(
            json!({
                "Name": "/json-partial",
                "HostConfig": {"LogConfig": {"Type": "json-file", "Config": {"max-size": "10m"}}}
            }),
            layers(),
            Ok(vec![]),
        ),
        facts(json!({"Name": "/empty"}), layers(), Ok(vec![])),
    ]
}

fn daemons() -> Vec<DaemonFacts> {
    let unix = "unix:///var/run/docker.sock".to_string();
    let base = DaemonFacts {
        security_options: Some(vec!["name=seccomp,profile=builtin".into(), "name=userns".into()]),
        logging_driver: "json-file".into(),
        daemon_json: Ok(Some(json!({
            "userns-remap": "default", "log-driver": "json-file",
            "log-opts": {"max-size": "10m", "max-file": "3"}
        }))),
        dockerd_args: Some(vec!["/usr/bin/dockerd".into(), "-H".into(), "fd://".into()]),
        endpoint: unix.clone(),
    };
    vec![
        base.clone(),
        DaemonFacts {
            security_options: Some(vec![]),
            daemon_json: Ok(Some(
                json!({"hosts": ["unix:///var/run/docker.sock", "tcp://0.0.0.0:2375"], "log-opts": {"max-file": "3"}}),
            )),
            dockerd_args: None,
            ..base.clone()
        },
        DaemonFacts {
            security_options: None,
            daemon_json: Ok(Some(json!({"tlsverify": true, "log-driver": "local"}))),
            dockerd_args: Some(vec![
                "dockerd".into(),
                "--host=tcp://0.0.0.0:2376".into(),
                "-Hunix:///run/d.sock".into(),
                "-H=fd://".into(),
            ]),
            ..base.clone()
        },
        DaemonFacts {
            daemon_json: Ok(Some(json!({}))),
            dockerd_args: Some(vec![
                "dockerd".into(),
                "-H".into(),
                "tcp://1.2.3.4:2376".into(),
                "--tlsverify".into(),
            ]),
            logging_driver: "journald".into(),
            ..base.clone()
        },
        DaemonFacts {
            security_options: None,
            daemon_json: Ok(None),
            dockerd_args: None,
            ..base.clone()
        },
        DaemonFacts {
            daemon_json: Err("/etc/docker/daemon.json: permission denied".into()),
            dockerd_args: None,
            ..base.clone()
        },
        DaemonFacts {
            daemon_json: Err("/etc/docker/daemon.json: not valid JSON".into()),
            dockerd_args: Some(vec!["dockerd".into()]),
            logging_driver: "json-file".into(),
            ..base.clone()
        },
        DaemonFacts {
            daemon_json: Ok(None),
            dockerd_args: Some(vec!["/usr/bin/dockerd".into()]),
            ..base
        },
    ]
}

fn host_check(p: &HostPaths) -> Vec<CheckResult> {
    super::checks::host::run(&super::host::HostFacts::read(p))
}

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Host checks on a temporary tree (good and bad), and on missing paths; the temporary path and
/// the test's own uid/gid are replaced by placeholders.
fn hosts(tmp: &Path) -> Vec<CheckResult> {
    let root = tmp.join("docker");
    let c = root.join("containers/abc");
    std::fs::create_dir_all(&c).unwrap();
    std::fs::write(c.join("abc-json.log"), "{}\n").unwrap();
    std::fs::write(c.join("abc-json.log.1.gz"), "x").unwrap();
    std::fs::write(c.join("config.v2.json"), "{}").unwrap();
    chmod(&root.join("containers"), 0o700);
    chmod(&c.join("abc-json.log"), 0o640);
    chmod(&c.join("abc-json.log.1.gz"), 0o600);
    chmod(&c.join("config.v2.json"), 0o644);
    let data = tmp.join("data");
    std::fs::create_dir_all(data.join("credentials")).unwrap();
    std::fs::write(data.join("openclaw.json"), "{}").unwrap();
    std::fs::write(data.join("credentials/telegram"), "x").unwrap();
    std::fs::write(data.join(".env.local"), "x").unwrap();
    chmod(&data.join("openclaw.json"), 0o600);
    chmod(&data.join("credentials/telegram"), 0o600);
    chmod(&data.join(".env.local"), 0o600);
    let me = {
        let md = std::fs::metadata(&data).unwrap();
        (md.uid(), md.gid())
    };
    let mut out = host_check(&HostPaths {
        docker_root: root.clone(),
        data_dir: Some(data.clone()),
        data_owner: me,
    });
    out.extend(host_check(&HostPaths {
        docker_root: root.clone(),
        data_dir: None,
        data_owner: me,
    }));
    // One offender per list: the order of a directory listing depends on the file system.
    chmod(&root.join("containers"), 0o750);
    let f = c.join("abc-json.log.2");
    std::fs::write(&f, "x").unwrap();
    chmod(&f, 0o644);
    chmod(&data.join("credentials/telegram"), 0o640);
    out.extend(host_check(&HostPaths {
        docker_root: root.clone(),
        data_dir: Some(data),
        data_owner: me,
    }));
    let single = tmp.join("single");
    std::fs::create_dir_all(&single).unwrap();
    std::fs::write(single.join(".env"), "x").unwrap();
    chmod(&single.join(".env"), 0o604);
    out.extend(host_check(&HostPaths {
        docker_root: root,
        data_dir: Some(single),
        data_owner: (me.0 + 1, me.1 + 1),
    }));
    out.extend(host_check(&HostPaths {
        docker_root: "/nonexistent-sidecar".into(),
        data_dir: Some("/nonexistent-sidecar/data".into()),
        data_owner: (1000, 1000),
    }));
    let tmp = tmp.display().to_string();
    let other = format!("{}:{}", me.0 + 1, me.1 + 1);
    let mine = format!("{}:{}", me.0, me.1);
    for r in &mut out {
        r.evidence = r
            .evidence
            .replace(&tmp, "$TMP")
            .replace(&other, "$OTHER_UID:$OTHER_GID")
            .replace(&mine, "$UID:$GID");
    }
    out
}

/// Every result of the fixed facts, as `audit::run` assembles them (containers with their labels'
/// accepted risks, then the daemon and the host with the config's).
fn results(tmp: &Path) -> Vec<CheckResult> {
    let mut out = Vec::new();
    for facts in containers() {
        let mut r = super::checks::container::run(&facts, &scan);
        let accepted = facts.label(ACCEPT_LABEL).map(parse_accept).unwrap_or_default();
        apply_accepted(&mut r, &accepted, facts.label(REASON_LABEL).unwrap_or(""));
        out.extend(r);
    }
    let mut rest = Vec::new();
    for d in daemons() {
        rest.extend(super::checks::daemon::run(&d));
    }
    rest.extend(hosts(tmp));
    let accept = [("daemon.userns", "rootless Docker"), ("host.data-owner", "")];
    for r in rest.iter_mut() {
        if let Some((_, reason)) = accept.iter().find(|(id, _)| *id == r.check) {
            let id = [r.check.clone()];
            apply_accepted(std::slice::from_mut(r), &id, reason);
        }
    }
    out.extend(rest);
    out
}

fn render(format: AuditFormat, results: &[CheckResult]) -> String {
    let mut out = Vec::new();
    write_audit(format, results, &mut out).unwrap();
    String::from_utf8(out)
        .unwrap()
        .replace(env!("CARGO_PKG_VERSION"), "$VERSION")
}

#[test]
fn audit_output_for_fixed_facts_is_unchanged() {
    let tmp = tempfile::tempdir().unwrap();
    let r = results(tmp.path());
    compare("audit.json", &render(AuditFormat::Json, &r));
    compare("audit.table", &render(AuditFormat::Table, &r));
    compare("audit.sarif", &render(AuditFormat::Sarif, &r));
}

#[test]
fn check_list_is_unchanged() {
    // The lines `sidecar audit --list-checks` prints.
    let list: String = super::CHECKS
        .iter()
        .map(|c| format!("{:<22} {:<6} {}\n", c.id, c.severity.as_str(), c.title))
        .collect();
    compare("list-checks.txt", &list);
}
