//! The whole deployment on the real engine, as an operator runs it: sidecar's image built without a
//! registry (`sidecar/build-image.sh`), the compose stack of `compose/` brought up with the audit
//! override and an override file that swaps openclaw and caddy for local stand-in images, then:
//! the stand-in prints secrets and `docker logs` shows them masked while `sidecar report` lists
//! them; `docker-compose exec sidecar sidecar backup` backs the volume up; the volume is deleted and
//! restored with `docker-compose run --rm restore …`; the trees (content, owner, mode) match; the
//! stack comes back on the restored volume; `sidecar audit` passes the hardened services; and
//! `docker-compose down -v` leaves no container, volume or network behind.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::common::{assert_no_secret, compose, docker_ok, free_port, github_token, keys, wait_for, Rng};

const STANDIN_OPENCLAW: &str = "sidecar-e2e-openclaw:1";
const STANDIN_CADDY: &str = "sidecar-e2e-caddy:1";
const SIDECAR_TAG: &str = "sidecar-e2e-sidecar:1";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn docker(args: &[&str]) -> Output {
    Command::new("docker").args(args).output().unwrap()
}

fn docker_ok_out(args: &[&str]) -> String {
    let o = docker(args);
    assert!(o.status.success(), "docker {args:?}: {}", text(&o));
    String::from_utf8(o.stdout).unwrap()
}

/// What the openclaw stand-in prints (lines `e2e-0 …` to `e2e-5 …`; `e2e-6` comes from its
/// environment), and each secret in them with the rule that must find it.
struct Printed {
    lines: Vec<String>,
    secrets: Vec<(String, &'static str)>,
}

fn printed(rng: &mut Rng) -> Printed {
    // The real shape: sk-ant-api03- + 93 characters + AA (a key one character short is not one).
    let anthropic = format!("sk-ant-api03-{}-{}AA", rng.base62(60), rng.base62(32));
    let github = github_token(&rng.base62(30));
    let telegram = format!("{}:AA{}", rng.digits(10), rng.base62(33));
    let slack = format!("xoxb-{}-{}-{}", rng.digits(12), rng.digits(13), rng.base62(24));
    let lines = vec![
        "e2e-0 openclaw stand-in starting".to_string(),
        format!("e2e-1 provider ready, using {anthropic} for requests"),
        format!("{{\"level\":40,\"msg\":\"e2e-2 tool config\",\"env\":{{\"GITHUB_TOKEN\":\"{github}\"}}}}"),
        format!("e2e-3 telegram: polling https://api.telegram.org/bot{telegram}/getUpdates"),
        format!("e2e-4 slack: connected with {slack}"),
        "e2e-5 gateway listening on :18789".to_string(),
    ];
    Printed {
        lines,
        secrets: vec![
            (anthropic, "anthropic-api-key"),
            (github, "github-pat"),
            (telegram, "telegram-bot-token"),
            (slack, "slack-bot-token"),
        ],
    }
}

fn write(path: &Path, content: &[u8], mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn mkdir(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(path).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn build(tag: &str, ctx: &Path) {
    let o = Command::new("docker")
        .args(["build", "-q", "-t", tag])
        .arg(ctx)
        .output()
        .unwrap();
    assert!(o.status.success(), "docker build {tag}: {}", text(&o));
}

/// The stand-in images: busybox-static on `scratch`. openclaw ships a data tree at
/// /home/node/.openclaw (owned by uid 1000, modes from 0600 to 0755, a symlink, an empty directory,
/// a name with spaces), which Docker copies into the fresh `openclaw_data` volume, as the real image
/// does; at start it writes a file of its own there, prints `lines` (one of them with the gateway
/// token from its environment, like OpenClaw's dashboard URL), serves /health on 18789 and ships
/// a `node` that the compose healthcheck's `node -e fetch(…)` runs. caddy serves :80 and its admin
/// endpoint on 127.0.0.1:2019 (the compose healthcheck).
fn build_standins(lines: &[String]) {
    assert!(
        Path::new("/bin/busybox").exists(),
        "/bin/busybox is needed for the stand-in images (apt-get install busybox-static)"
    );
    let tmp = tempfile::tempdir().unwrap();
    let oc = tmp.path().join("openclaw");
    std::fs::create_dir_all(&oc).unwrap();
    std::fs::copy("/bin/busybox", oc.join("busybox")).unwrap();
    let home = oc.join("home/node");
    mkdir(&home, 0o755);
    let data = home.join(".openclaw");
    mkdir(&data, 0o700);
    write(
        &data.join("openclaw.json"),
        b"{\"gateway\":{\"mode\":\"local\",\"port\":18789,\"auth\":{\"mode\":\"token\"}}}\n",
        0o600,
    );
    mkdir(&data.join("credentials"), 0o700);
    write(
        &data.join("credentials/whatsapp-session.json"),
        b"{\"session\":\"stand-in\"}\n",
        0o600,
    );
    mkdir(&data.join("workspace/empty"), 0o750);
    write(
        &data.join("workspace/notes.md"),
        b"# Notes\n\nremember the milk\n",
        0o644,
    );
    write(
        &data.join("workspace/meeting notes 2026.txt"),
        b"spaces in the name\n",
        0o640,
    );
    write(&data.join("workspace/tool.sh"), b"#!/bin/sh\necho tool\n", 0o755);
    std::os::unix::fs::symlink("notes.md", data.join("workspace/current")).unwrap();
    let mut session = Vec::new();
    for i in 0..5000 {
        session.extend(
            format!(
                "{{\"i\":{i},\"role\":\"user\",\"text\":\"hello {}\"}}\n",
                i * 7919 % 1000
            )
            .as_bytes(),
        );
    }
    write(&data.join("agents/main/sessions/s1.jsonl"), &session, 0o640);
    let mut script = String::from(
        "#!/bin/sh\n# openclaw stand-in for the end-to-end test\ntrap 'exit 0' TERM INT\n\
         date -u +%Y-%m-%dT%H:%M:%SZ > /home/node/.openclaw/last-start\n\
         httpd -p 0.0.0.0:18789 -h /www\n",
    );
    for l in lines {
        assert!(!l.contains('\''));
        script.push_str(&format!("printf '%s\\n' '{l}'\n"));
    }
    script.push_str("printf 'e2e-6 Dashboard: http://127.0.0.1:18789/#token=%s\\n' \"$OPENCLAW_GATEWAY_TOKEN\"\n");
    script.push_str("while :; do sleep 1 & wait $!; done\n");
    write(&oc.join("openclaw"), script.as_bytes(), 0o755);
    write(
        &oc.join("node"),
        b"#!/bin/sh\n# the healthcheck's node -e \"fetch('http://127.0.0.1:18789/health')...\"\nexec wget -q -O /dev/null http://127.0.0.1:18789/health\n",
        0o755,
    );
    write(&oc.join("www/health"), b"ok\n", 0o644);
    write(
        &oc.join("Dockerfile"),
        b"FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n\
          COPY --chown=1000:1000 home /home\nCOPY www /www\nCOPY openclaw node /usr/local/bin/\n\
          USER 1000:1000\nENTRYPOINT [\"/usr/local/bin/openclaw\"]\n",
        0o644,
    );
    build(STANDIN_OPENCLAW, &oc);

    let caddy = tmp.path().join("caddy");
    std::fs::create_dir_all(&caddy).unwrap();
    std::fs::copy("/bin/busybox", caddy.join("busybox")).unwrap();
    write(
        &caddy.join("caddy"),
        b"#!/bin/sh\n# caddy stand-in: the site on :80, the admin endpoint on 127.0.0.1:2019\ntrap 'exit 0' TERM INT\n\
          httpd -p 0.0.0.0:80 -h /srv\nhttpd -p 127.0.0.1:2019 -h /admin\n\
          while :; do sleep 1 & wait $!; done\n",
        0o755,
    );
    write(&caddy.join("srv/index.html"), b"stand-in site\n", 0o644);
    write(&caddy.join("admin/config/index.html"), b"{}\n", 0o644);
    for d in ["etc/caddy", "data", "config"] {
        mkdir(&caddy.join("fs").join(d), 0o755);
    }
    write(
        &caddy.join("Dockerfile"),
        b"FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n\
          COPY fs /\nCOPY srv /srv\nCOPY admin /admin\nCOPY caddy /usr/bin/caddy\n\
          ENTRYPOINT [\"/usr/bin/caddy\"]\nCMD [\"run\", \"--config\", \"/etc/caddy/Caddyfile\", \"--adapter\", \"caddyfile\"]\n",
        0o644,
    );
    build(STANDIN_CADDY, &caddy);
}

fn image_id(tag: &str) -> String {
    docker_ok_out(&["image", "inspect", "-f", "{{.Id}}", tag])
        .trim()
        .to_string()
}

/// The stack under test: compose with the project's files, the audit override and the test's
/// override, under a project name of its own. Dropping it takes everything down (`down -v`).
struct Stack {
    cmd: Vec<&'static str>,
    project: String,
    /// An empty env file in place of `compose/.env`: the test does not read what a user put there.
    env_file: PathBuf,
    files: Vec<PathBuf>,
    env: Vec<(String, String)>,
}

impl Stack {
    fn compose(&self, args: &[&str]) -> Command {
        let mut c = Command::new(self.cmd[0]);
        c.args(&self.cmd[1..]).arg("-p").arg(&self.project);
        c.arg("--env-file").arg(&self.env_file);
        for f in &self.files {
            c.arg("-f").arg(f);
        }
        c.args(args).current_dir(repo()).stdin(Stdio::null());
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.compose(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(o.status.success(), "compose {args:?}: {}", text(&o));
        String::from_utf8(o.stdout).unwrap()
    }

    /// The container id of a service.
    fn id(&self, service: &str) -> String {
        let id = self.ok(&["ps", "-q", service]).trim().to_string();
        assert!(!id.is_empty(), "{service} has no container");
        id
    }

    fn name(&self, service: &str) -> String {
        docker_ok_out(&["inspect", "-f", "{{.Name}}", &self.id(service)])
            .trim()
            .trim_start_matches('/')
            .to_string()
    }

    fn volume(&self, name: &str) -> String {
        format!("{}_{name}", self.project)
    }

    /// Everything Docker still holds for the project: containers, volumes, networks.
    fn leftovers(&self) -> Vec<String> {
        let label = format!("label=com.docker.compose.project={}", self.project);
        let mut out = Vec::new();
        for (what, args) in [
            ("container", vec!["ps", "-a", "-q", "--filter", &label]),
            ("volume", vec!["volume", "ls", "-q", "--filter", &label]),
            ("network", vec!["network", "ls", "-q", "--filter", &label]),
        ] {
            for l in docker_ok_out(&args).lines().filter(|l| !l.trim().is_empty()) {
                out.push(format!("{what} {l}"));
            }
        }
        out
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = self
            .compose(&["--profile", "restore", "down", "-v", "--remove-orphans", "-t", "5"])
            .output();
    }
}

/// Each entry of a volume, listed from inside a container: path, type, owner, group, mode, size,
/// SHA-256 of files and targets of symlinks.
fn tree(volume: &str) -> Vec<String> {
    let script = "cd /v && find . | sort | while IFS= read -r p; do \
        s=$(stat -c '%F|%u:%g|%a|%s' \"$p\"); \
        if [ -L \"$p\" ]; then echo \"$p|$(stat -c '%F|%u:%g' \"$p\")|-> $(readlink \"$p\")\"; \
        elif [ -f \"$p\" ]; then echo \"$p|$s|$(sha256sum < \"$p\" | cut -d' ' -f1)\"; \
        else echo \"$p|$(stat -c '%F|%u:%g|%a' \"$p\")\"; fi; done";
    let out = docker_ok_out(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--user",
        "0:0",
        "-v",
        &format!("{volume}:/v:ro"),
        "--entrypoint",
        "/bin/sh",
        STANDIN_OPENCLAW,
        "-c",
        script,
    ]);
    out.lines().map(String::from).collect()
}

/// `sidecar report --format json` in the sidecar container: (rule, container) of each secret.
fn report(stack: &Stack) -> BTreeSet<(String, String)> {
    // Exit status 1: new (unacknowledged) secrets are listed.
    let o = stack.run(&["exec", "-T", "sidecar", "sidecar", "report", "--format", "json"]);
    assert!(matches!(o.status.code(), Some(0 | 1)), "report: {}", text(&o));
    let out = String::from_utf8(o.stdout).unwrap();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("report json: {e}\n{out}"));
    let mut got = BTreeSet::new();
    for s in v["items"].as_array().unwrap_or_else(|| panic!("no items array: {out}")) {
        for c in s["containers"].as_array().unwrap() {
            got.insert((s["rule"].as_str().unwrap().to_string(), c.as_str().unwrap().to_string()));
        }
    }
    got
}

#[test]
fn the_compose_stack_guards_backs_up_restores_and_audits_on_the_engine() {
    if !docker_ok() {
        return;
    }
    let Some(cmd) = compose() else { return };

    // The image, without a registry: a static binary on the Dockerfile's final stage.
    // Without the variables cargo sets for tests (some build scripts rerun when they change, which
    // would rebuild everything when an operator runs the script afterwards).
    let mut build = Command::new("bash");
    build
        .arg(repo().join("sidecar/build-image.sh"))
        .args(["--tag", SIDECAR_TAG]);
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if (k.starts_with("CARGO") && k != "CARGO_HOME") || k == "OUT_DIR" || k.starts_with("RUST_") {
            build.env_remove(k.as_ref());
        }
    }
    let o = build.output().unwrap();
    assert!(o.status.success(), "build-image.sh: {}", text(&o));
    let size: u64 = docker_ok_out(&["image", "inspect", "-f", "{{.Size}}", SIDECAR_TAG])
        .trim()
        .parse()
        .unwrap();
    assert!(size <= 20_000_000, "the image is {size} bytes, over 20 MB");
    let labels = docker_ok_out(&[
        "image",
        "inspect",
        "-f",
        "{{json .Config.Labels}} {{json .Config.Healthcheck}}",
        SIDECAR_TAG,
    ]);
    assert!(
        labels.contains("org.opencontainers.image.title") && labels.contains("\"health\""),
        "{labels}"
    );

    let mut rng = Rng::from_time();
    let printed = printed(&mut rng);
    build_standins(&printed.lines);

    let tmp = tempfile::tempdir().unwrap();
    let key_dir = tmp.path().join("keys");
    std::fs::create_dir(&key_dir).unwrap();
    let key = keys(&key_dir);
    std::fs::rename(&key.identity, key_dir.join("age.key")).unwrap();
    let gateway_token = rng.pick(b"0123456789abcdef", 64);
    // The test's override: local stand-ins for openclaw and caddy, pinned by image id (the audit's
    // image.digest accepts ids, as it does name@sha256:… digests).
    // Its sidecar follows the project's containers only (the engine is shared), and masks them as
    // the guard named after the project: another sidecar on the engine (the host's own, after
    // `sidecar/up.sh`) reports them and leaves their files to this one.
    let project = format!("sidecare2e{}", std::process::id());
    let override_file = tmp.path().join("docker-compose.e2e.yml");
    std::fs::write(
        &override_file,
        format!(
            "# The end-to-end test's override: local stand-in images, this test's guard.\nservices:\n  \
             openclaw:\n    image: {}\n    labels:\n      sidecar.guard: {project}\n  \
             caddy:\n    image: {}\n    labels:\n      sidecar.guard: {project}\n  \
             sidecar:\n    environment:\n      SIDECAR_GUARD__NAME: {project}\n      \
             SIDECAR_GUARD__CONTAINERS: '[\"com.docker.compose.project={project}\"]'\n",
            image_id(STANDIN_OPENCLAW),
            image_id(STANDIN_CADDY)
        ),
    )
    .unwrap();
    let env_file = tmp.path().join("empty.env");
    std::fs::write(&env_file, "").unwrap();
    let stack = Stack {
        cmd,
        project,
        env_file,
        files: vec![
            repo().join("compose/docker-compose.yml"),
            repo().join("compose/docker-compose.audit.yml"),
            override_file,
        ],
        env: vec![
            ("OPENCLAW_GATEWAY_TOKEN".into(), gateway_token.clone()),
            ("SIDECAR_BACKUP_RECIPIENT".into(), key.public.clone()),
            ("SIDECAR_IMAGE".into(), image_id(SIDECAR_TAG)),
            ("SIDECAR_KEYS_DIR".into(), key_dir.display().to_string()),
            ("CADDY_HTTP_PORT".into(), free_port().to_string()),
            ("CADDY_HTTPS_PORT".into(), free_port().to_string()),
        ],
    };
    let mut secrets: Vec<String> = printed.secrets.iter().map(|(s, _)| s.clone()).collect();
    secrets.push(gateway_token.clone());
    let secret_refs: Vec<&str> = secrets.iter().map(String::as_str).collect();

    stack.ok(&["up", "-d"]);
    let openclaw = stack.name("openclaw");

    // The guard masks what the stand-in printed, in Docker's own file: `docker logs` shows every
    // line, and no secret.
    wait_for("the stand-in's lines, masked", Duration::from_secs(90), || {
        let s = logs_of(&openclaw);
        (0..=6).all(|i| s.contains(&format!("e2e-{i} "))) && !secrets.iter().any(|x| s.contains(x.as_str()))
    });
    let o = docker(&["logs", &openclaw]);
    assert!(o.status.success(), "{}", text(&o));
    let shown = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_no_secret(shown.as_bytes(), &secret_refs, "docker logs openclaw");
    assert!(
        shown.contains("provider ready, using sk-ant-api03-"),
        "the mask keeps the public prefix:\n{shown}"
    );

    // The report lists each secret, with its rule, for the openclaw container.
    let mut want: BTreeSet<(String, String)> = printed
        .secrets
        .iter()
        .map(|(_, rule)| (rule.to_string(), openclaw.clone()))
        .collect();
    want.insert(("openclaw-gateway-token".into(), openclaw.clone()));
    wait_for("the report", Duration::from_secs(30), || {
        let got = report(&stack);
        want.iter().all(|w| got.contains(w))
    });
    let got = report(&stack);
    let from_openclaw: BTreeSet<_> = got.iter().filter(|(_, c)| *c == openclaw).cloned().collect();
    assert_eq!(from_openclaw, want, "report of the openclaw container");

    // A backup, from inside the running stack (openclaw paused while its volume is read).
    let out = stack.ok(&["exec", "-T", "sidecar", "sidecar", "backup"]);
    assert!(out.contains("openclaw_data-"), "{out}");
    let before = tree(&stack.volume("openclaw_data"));
    assert!(
        before
            .iter()
            .any(|l| l.starts_with("./last-start|regular file|1000:1000|")),
        "{before:#?}"
    );
    assert!(
        before
            .iter()
            .any(|l| l.starts_with("./credentials/whatsapp-session.json|regular file|1000:1000|600|")),
        "{before:#?}"
    );
    assert!(
        before.iter().any(|l| l.starts_with(".|directory|1000:1000|700")),
        "{before:#?}"
    );
    let state = docker_ok_out(&["inspect", "-f", "{{.State.Status}}", &openclaw]);
    assert_eq!(state.trim(), "running", "openclaw unpaused after the backup");

    // Lose the volume, and restore it by the runbook (docs/backups.md, "With the compose stack"),
    // its commands as written there: `docker-compose` is this stack's compose command and
    // `openclaw_openclaw_data` its volume.
    let runbook = runbook_commands();
    assert_eq!(
        runbook
            .iter()
            .map(|c| c.split(' ').take(3).collect::<Vec<_>>().join(" "))
            .collect::<Vec<_>>(),
        [
            "docker-compose run --rm",
            "docker-compose exec -T",
            "docker-compose stop openclaw",
            "docker-compose rm -f",
            "docker volume rm",
            "docker-compose run --rm",
        ],
        "the runbook's commands: {runbook:#?}"
    );
    for command in &runbook {
        let words: Vec<&str> = command.split(' ').collect();
        let o = match words[0] {
            "docker-compose" => stack.run(&words[1..]),
            _ => {
                let volume = stack.volume("openclaw_data");
                let args: Vec<&str> = words[1..]
                    .iter()
                    .map(|w| {
                        if *w == "openclaw_openclaw_data" {
                            volume.as_str()
                        } else {
                            w
                        }
                    })
                    .collect();
                docker(&args)
            }
        };
        assert!(o.status.success(), "runbook: {command}: {}", text(&o));
        assert_no_secret(&[o.stdout, o.stderr].concat(), &secret_refs, "the runbook's output");
        if command.contains("docker volume rm") {
            assert!(!docker(&["volume", "inspect", &stack.volume("openclaw_data")])
                .status
                .success());
        }
    }
    let after = tree(&stack.volume("openclaw_data"));
    assert_eq!(before, after, "the restored volume differs from the backed-up one");

    // The stack comes back on the restored volume; the guard resumes from its checkpoints.
    stack.ok(&["up", "-d"]);
    let openclaw = stack.name("openclaw");
    wait_for("the stand-in running again, masked", Duration::from_secs(90), || {
        let o = logs_of(&openclaw);
        o.contains("e2e-6 ") && !secrets.iter().any(|x| o.contains(x.as_str()))
    });
    let restarted = tree(&stack.volume("openclaw_data"));
    assert!(
        restarted
            .iter()
            .any(|l| l.starts_with("./last-start|regular file|1000:1000|")),
        "openclaw (uid 1000) writes to its restored volume: {restarted:#?}"
    );

    // The audit passes the hardened services, every exception declared and shown as accepted.
    let names: Vec<String> = ["openclaw", "caddy", "sidecar"].iter().map(|s| stack.name(s)).collect();
    wait_for("the healthchecks", Duration::from_secs(120), || {
        names
            .iter()
            .all(|n| docker_ok_out(&["inspect", "-f", "{{.State.Health.Status}}", n]).trim() == "healthy")
    });
    let mut args = vec!["exec", "-T", "sidecar", "sidecar", "audit", "--format", "json"];
    for n in &names {
        args.extend(["--container", n.as_str()]);
    }
    let o = stack.run(&args);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "audit: {}", text(&o));
    assert_no_secret(out.as_bytes(), &secret_refs, "audit output");
    let results: Vec<serde_json::Value> =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("audit json: {e}\n{out}"));
    assert!(results.len() > 60, "every check of three containers: {out}");
    let mut accepted = BTreeSet::new();
    for r in &results {
        let (c, check, status) = (
            r["container"].as_str().unwrap(),
            r["check"].as_str().unwrap(),
            r["status"].as_str().unwrap(),
        );
        assert!(names.iter().any(|n| n == c), "only the stack's containers: {r}");
        assert!(
            status == "pass" || status == "accepted",
            "{c}: {check} is {status}: {r}"
        );
        if status == "accepted" {
            assert!(!r["reason"].as_str().unwrap_or("").is_empty(), "{r}");
            accepted.insert(format!("{}:{check}", stack_service(c)));
        }
    }
    let want: BTreeSet<String> = [
        "caddy:ports.loopback",
        "caddy:user.non-root",
        "openclaw:env.secrets",
        "sidecar:caps.add-dangerous",
        "sidecar:docker-socket",
        "sidecar:mounts.sensitive",
        "sidecar:user.non-root",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(accepted, want, "the declared exceptions, and no others");

    // The same audit from Docker's files, as the stack runs it without the audit override: the same
    // verdicts, except the checks that need the API, which say so.
    args.extend(["--source", "files"]);
    let o = stack.run(&args);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "audit from files: {}", text(&o));
    let from_files: Vec<serde_json::Value> =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("audit json: {e}\n{out}"));
    assert_eq!(from_files.len(), results.len(), "{out}");
    for r in &from_files {
        let (c, check, status) = (
            r["container"].as_str().unwrap(),
            r["check"].as_str().unwrap(),
            &r["status"],
        );
        if check == "drift" || check == "image.history-secrets" {
            assert_eq!(status, "error", "{r}");
            continue;
        }
        let api = results
            .iter()
            .find(|x| x["container"] == c && x["check"] == check)
            .unwrap_or_else(|| panic!("{c}: {check} only from files"));
        assert_eq!(status, &api["status"], "{c}: {check}: files {r} api {api}");
    }

    // sidecar's own output never shows a secret.
    let o = stack.run(&["logs", "--no-color", "sidecar"]);
    assert_no_secret(&[o.stdout, o.stderr].concat(), &secret_refs, "sidecar's logs");

    // `down -v` leaves nothing of the project behind.
    stack.ok(&["--profile", "restore", "down", "-v", "-t", "5"]);
    assert_eq!(stack.leftovers(), Vec::<String>::new());
    for image in [STANDIN_OPENCLAW, STANDIN_CADDY, SIDECAR_TAG] {
        let _ = docker(&["rmi", image]);
    }
}

/// The commands of the restore runbook with the compose stack, in order: the backticked spans of
/// docs/backups.md's "With the compose stack" that start with `docker-compose` or `docker volume rm`.
fn runbook_commands() -> Vec<String> {
    let doc = std::fs::read_to_string(repo().join("docs/backups.md")).unwrap();
    let section = doc
        .split("### With the compose stack")
        .nth(1)
        .and_then(|s| s.split("\n### ").next())
        .expect("docs/backups.md has the section");
    // Spans may wrap across lines in the Markdown source.
    let flat = section.split_whitespace().collect::<Vec<_>>().join(" ");
    flat.split('`')
        .skip(1)
        .step_by(2)
        .filter(|c| c.starts_with("docker-compose ") || c.starts_with("docker volume rm "))
        .map(String::from)
        .collect()
}

fn logs_of(name: &str) -> String {
    let o = docker(&["logs", name]);
    String::from_utf8_lossy(&[o.stdout, o.stderr].concat()).into_owned()
}

/// The compose service of a container name (`<project>_<service>_1` or `<project>-<service>-1`).
fn stack_service(container: &str) -> &str {
    ["openclaw", "caddy", "sidecar"]
        .into_iter()
        .find(|s| container.contains(&format!("_{s}_")) || container.contains(&format!("-{s}-")))
        .unwrap_or(container)
}
