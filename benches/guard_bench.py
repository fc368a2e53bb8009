#!/usr/bin/env python3
"""Benchmark of the live log guard of `sidecar run` against real Docker containers: the exposure
window of a secret (Docker writes it → its masked bytes are in Docker's log file), and the guard's
CPU and memory, busy and idle.

    python3 benches/guard_bench.py [--rates 1000,10000] [--seconds 20] [--secret-every 100]
                                   [--idle-containers 50] [--idle-seconds 60] [--settle 5] [--grace 5]
                                   [--out bench-out/guard] [--sidecar target/release/sidecar]
                                   [--docker-root DIR] [--env KEY=VALUE ...] [--quick] [--keep]

1. `cargo build --release` unless --sidecar is given. benches/logwriter.rs is compiled static
   (`rustc -O -C target-feature=+crt-static --target x86_64-unknown-linux-gnu`) and put into a
   `FROM scratch` image, sidecar-bench-writer:1 (`docker build`; nothing is pulled).
2. The guard starts alone (audit and enforcement off, no config file, a temporary state directory):
       SIDECAR_STATE_DIR=<tmp> SIDECAR_DOCKER_ROOT=<docker root> SIDECAR_RUN__AUDIT_MINUTES=0 \\
       SIDECAR_RUN__ENFORCE_MINUTES=0 sidecar run
   and the benchmark waits until `sidecar health --state-dir <tmp>` exits 0.
3. Per rate: a writer container (`--log-driver json-file --log-opt max-size=500m`) writes pino-style
   gateway lines at the rate for --seconds, every --secret-every-th line with a unique valid GitHub
   token (`ghp_`, CRC32 tail). The benchmark tails the container's log file (`docker inspect
   .LogPath`), notes each token's byte offset and Docker's timestamp (the line's "time"), and polls
   the token's bytes with pread about every 0.5 ms; when they change, exposure = now − Docker's
   timestamp. Tokens still unmasked --grace seconds after the writer exited are "never masked".
   Reported: p50/p99/max exposure, the guard's CPU (utime+stime from /proc/PID/stat, % of one core)
   over the run and its VmRSS (largest sample) and VmHWM (/proc/PID/status); then the log is checked
   (every token masked as `ghp_[github-pat:<fp6>]***…`, every line still valid JSON) and the report
   `<state>/findings/*.jsonl` must hold exactly one record per token (matched by byte offset).
4. Idle and scale: --idle-containers containers of the same image that write one line and sleep;
   after they are followed (the health output counts them) and --settle seconds, the guard's CPU is
   measured over --idle-seconds, with VmRSS (largest sample in that window) and VmHWM.
5. SIGTERM to the guard (its exit status is reported). Prints a Markdown report with the targets
   (exposure p99 ≤ 100 ms at 10k lines/s, idle CPU < 1 %, RSS ≤ 32 MiB with 50 containers, plus
   every secret masked and recorded exactly once) and writes OUT/results.md and OUT/results.json.

Exit status 0 even when targets are missed; 1 when something could not run (build, Docker, the guard
not starting or dying, a writer failing). Every container started carries the label
sidecar-bench=guard-<pid> and is removed at the end, also on Ctrl-C or an error.
--quick is `--rates 1000 --seconds 5 --idle-containers 10 --idle-seconds 3` (a smoke test).
Uses only the Python standard library.
"""
from __future__ import annotations

import argparse
import calendar
import json
import math
import os
import platform
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from benchutil import host_basics, loadavg, sidecar_binary  # noqa: E402

IMAGE = "sidecar-bench-writer:1"
TARGET_P99_MS = 100.0
TARGET_P99_RATE = 10000
TARGET_IDLE_CPU = 1.0
TARGET_RSS_MIB = 32.0
TARGET_RSS_CONTAINERS = 50
MIB = 1 << 20
CLK_TCK = os.sysconf("SC_CLK_TCK")
POLL_S = 0.0005
B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
TOKEN_LEN = 40
MASK_RE = re.compile(rb"^ghp_\[github-pat:([0-9a-f]{6})\]\*+$")


# The benchmark's containers are masked by its own guard only: another sidecar on the engine (the host's)
# reports them and leaves their files alone (label sidecar.guard, guard.name).
GUARD_NAME = f"bench-{os.getpid()}"

def log(msg):
    print(f"[guard_bench] {msg}", file=sys.stderr, flush=True)


class BenchError(Exception):
    """Something the benchmark needs could not run."""


# ----------------------------------------------------------------------------------------------------
# Small helpers
# ----------------------------------------------------------------------------------------------------
def sh(argv, *, check=True, timeout=300, **kw):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)
    if check and r.returncode != 0:
        raise BenchError(f"{shlex.join(argv)}: exit {r.returncode}: {(r.stderr or r.stdout).strip()[-800:]}")
    return r


def docker(*args, check=True, timeout=300):
    return sh(["docker", *args], check=check, timeout=timeout)


def base62(n, width=6):
    s = ""
    while n:
        s = B62[n % 62] + s
        n //= 62
    return s.rjust(width, "0")


def valid_token(tok: bytes) -> bool:
    """A complete GitHub classic token with a correct CRC32 tail (i.e. not masked)."""
    if len(tok) != TOKEN_LEN or not tok.startswith(b"ghp_"):
        return False
    try:
        t = tok.decode("ascii")
    except UnicodeDecodeError:
        return False
    if not all(c in B62 for c in t[4:]):
        return False
    return base62(zlib.crc32(t[4:34].encode())) == t[34:]


def parse_rfc3339_ns(s: bytes) -> int:
    """Docker's RFC 3339 time (`2026-11-27T10:17:44.123456789Z`, trailing zeros of the fraction
    dropped, or an offset instead of Z) -> nanoseconds since the epoch, exactly."""
    t = s.decode("ascii")
    secs = calendar.timegm((int(t[0:4]), int(t[5:7]), int(t[8:10]), int(t[11:13]), int(t[14:16]), int(t[17:19]), 0, 0, 0))
    rest = t[19:]
    ns = 0
    if rest.startswith("."):
        j = 1
        while j < len(rest) and rest[j].isdigit():
            j += 1
        ns = int(rest[1:j][:9].ljust(9, "0"))
        rest = rest[j:]
    off = 0
    if rest and rest[0] in "+-":
        off = (int(rest[1:3]) * 3600 + int(rest[4:6]) * 60) * (1 if rest[0] == "+" else -1)
    return (secs - off) * 1_000_000_000 + ns


def line_time_ns(line: bytes):
    i = line.rfind(b'"time":"')
    if i < 0:
        return None
    j = line.find(b'"', i + 8)
    try:
        return parse_rfc3339_ns(line[i + 8:j])
    except (ValueError, IndexError, UnicodeDecodeError):
        return None


def cpu_seconds(pid):
    """utime + stime of the whole process (all threads), seconds."""
    with open(f"/proc/{pid}/stat") as fh:
        f = fh.read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / CLK_TCK


def mem_kib(pid):
    out = {}
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line.split(":")[0]] = int(line.split()[1])
    return out.get("VmRSS"), out.get("VmHWM")


def pct(sorted_vals, p):
    """Nearest-rank percentile of an ascending list."""
    if not sorted_vals:
        return None
    return sorted_vals[max(0, math.ceil(p / 100 * len(sorted_vals)) - 1)]


def tail_text(path, n=1500):
    try:
        with open(path, "rb") as fh:
            fh.seek(0, 2)
            fh.seek(max(0, fh.tell() - n))
            return fh.read().decode(errors="replace").strip()
    except OSError:
        return ""


# ----------------------------------------------------------------------------------------------------
# The guard process
# ----------------------------------------------------------------------------------------------------
class Guard:
    def __init__(self, sidecar, state, docker_root, extra_env, stderr_path):
        self.sidecar, self.state, self.stderr_path = sidecar, state, stderr_path
        env = {k: v for k, v in os.environ.items() if not k.startswith("SIDECAR_")}
        env.update(SIDECAR_STATE_DIR=state, SIDECAR_DOCKER_ROOT=docker_root,
                   SIDECAR_RUN__AUDIT_MINUTES="0", SIDECAR_RUN__ENFORCE_MINUTES="0")
        env.update(extra_env)
        self.env = env
        self.shown_env = {k: v for k, v in env.items() if k.startswith("SIDECAR_")}
        self.command = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(self.shown_env.items())) + \
            f" {shlex.quote(sidecar)} run"
        self.proc = None
        self.exit_code = None
        self.stop_seconds = None

    def start(self, timeout=30.0):
        self._err = open(self.stderr_path, "wb")
        # Its own session: a Ctrl-C in the terminal reaches the benchmark, which stops the guard with
        # SIGTERM after removing its containers.
        self.proc = subprocess.Popen([self.sidecar, "run"], env=self.env, stdout=self._err, stderr=self._err,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"sidecar run exited at start with {self.proc.returncode}: {tail_text(self.stderr_path)}")
            if self.health()[0] == 0:
                return
            time.sleep(0.2)
        raise BenchError(f"sidecar health did not become healthy within {timeout:.0f} s: {tail_text(self.stderr_path)}")

    def health(self):
        r = subprocess.run([self.sidecar, "health", "--state-dir", self.state], capture_output=True, text=True,
                           env=self.env, timeout=30)
        m = re.search(r"following (\d+) container", r.stdout)
        return r.returncode, int(m.group(1)) if m else None

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def check_alive(self):
        if not self.alive():
            raise BenchError(f"sidecar run died (exit {self.proc.returncode}): {tail_text(self.stderr_path)}")

    def stop(self, timeout=20.0):
        if self.proc is None or self.exit_code is not None:
            return
        if self.proc.poll() is None:
            t0 = time.monotonic()
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.exit_code = self.proc.wait(timeout)
                self.stop_seconds = time.monotonic() - t0
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self.exit_code = f"did not stop within {timeout:.0f} s of SIGTERM (killed)"
        else:
            self.exit_code = f"had already exited with {self.proc.returncode}"
        self._err.close()


# ----------------------------------------------------------------------------------------------------
# Containers
# ----------------------------------------------------------------------------------------------------
class Containers:
    """Every container the benchmark starts: labelled, named with a unique prefix, removed at the end."""

    def __init__(self):
        self.label = f"sidecar-bench=guard-{os.getpid()}"
        self.prefix = f"sidecar-bench-guard-{os.getpid()}"
        self.ids = []

    def create(self, name_suffix, args, log_opts=("max-size=500m",)):
        argv = ["create", "--name", f"{self.prefix}-{name_suffix}", "--label", self.label, "--label", f"sidecar.guard={GUARD_NAME}",
                "--log-driver", "json-file"]
        for o in log_opts:
            argv += ["--log-opt", o]
        r = docker(*argv, IMAGE, *args)
        cid = r.stdout.strip().splitlines()[-1]
        self.ids.append(cid)
        return cid, f"{self.prefix}-{name_suffix}"

    def remove(self, ids):
        ids = [i for i in ids if i]
        for k in range(0, len(ids), 50):
            docker("rm", "-f", *ids[k:k + 50], check=False, timeout=300)
        self.ids = [i for i in self.ids if i not in set(ids)]

    def remove_all(self):
        found = docker("ps", "-aq", "--filter", f"label={self.label}", check=False).stdout.split()
        self.remove(list(dict.fromkeys(self.ids + found)))
        left = docker("ps", "-aq", "--filter", f"label={self.label}", check=False).stdout.split()
        return left


def build_writer(image_dir):
    src = os.path.join(HERE, "logwriter.rs")
    binary = os.path.join(image_dir, "logwriter")
    argv = ["rustc", "-O", "-C", "target-feature=+crt-static", "--target", "x86_64-unknown-linux-gnu", src, "-o", binary]
    log(shlex.join(argv))
    sh(argv, timeout=600)
    with open(os.path.join(image_dir, "Dockerfile"), "w") as fh:
        fh.write("FROM scratch\nCOPY logwriter /logwriter\nENTRYPOINT [\"/logwriter\"]\n")
    log(f"docker build -t {IMAGE} (FROM scratch)")
    old = docker("image", "inspect", "-f", "{{.Id}}", IMAGE, check=False).stdout.strip()
    new = sh(["docker", "build", "-q", "-t", IMAGE, image_dir], timeout=600).stdout.strip()
    if old and old != new:  # an earlier writer, now untagged
        docker("rmi", old, check=False)
    return new


# ----------------------------------------------------------------------------------------------------
# Findings
# ----------------------------------------------------------------------------------------------------
def read_findings(state):
    d = os.path.join(state, "findings")
    recs = []
    if not os.path.isdir(d):
        return recs
    for name in sorted(os.listdir(d)):
        if name.endswith(".jsonl"):
            with open(os.path.join(d, name), "rb") as fh:
                for line in fh:
                    if line.strip():
                        try:
                            recs.append(json.loads(line))
                        except ValueError:
                            recs.append({"_invalid": line[:200].decode(errors="replace")})
    return recs


# ----------------------------------------------------------------------------------------------------
# One rate
# ----------------------------------------------------------------------------------------------------
def rate_run(rate, a, guard, cs):
    every = a.secret_every
    args = ["--rate", str(rate), "--seconds", str(a.seconds), "--secret-every", str(every),
            "--seed", str(rate), "--start-delay-ms", "1000"]
    cid, name = cs.create(f"rate{rate}", args)
    load0 = loadavg()
    docker("start", cid)  # the writer waits 1 s before its first line; Docker sets LogPath at start
    waiter = subprocess.Popen(["docker", "wait", cid], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    log_path = docker("inspect", "-f", "{{.LogPath}}", cid).stdout.strip()
    if not log_path:
        raise BenchError(f"docker inspect gives no LogPath for {name}")
    res = {"rate": rate, "container": name, "id": cid, "log_path": log_path, "writer_args": args,
           "expected_lines": rate * a.seconds, "expected_secrets": (rate * a.seconds) // every if every else 0}
    try:
        deadline = time.monotonic() + 20
        while not os.path.exists(log_path):
            if time.monotonic() > deadline:
                raise BenchError(f"{log_path} did not appear")
            time.sleep(0.005)
        fd = os.open(log_path, os.O_RDONLY)
        try:
            m = monitor(fd, waiter, guard, a.grace)
        finally:
            os.close(fd)
    finally:
        if waiter.poll() is None:
            waiter.kill()
            waiter.wait()
    res.update(m)
    res["load1_before"], res["load1_after"] = load0, loadavg()
    if m["writer_exit"] != "0":
        raise BenchError(f"writer container {name} exited with {m['writer_exit']!r}")

    # After the run: the whole file, and the report.
    time.sleep(0.3)
    with open(log_path, "rb") as fh:
        data = fh.read()
    lines = data.split(b"\n")
    invalid = 0
    for ln in lines[:-1]:
        try:
            json.loads(ln)
        except ValueError:
            invalid += 1
    res["invalid_json_lines"] = invalid
    res["valid_tokens_left"] = sum(1 for mt in re.finditer(rb"ghp_[0-9A-Za-z]{36}", data) if valid_token(mt.group(0)))
    fp6 = {}
    bad_masks = []
    for off in m["offsets"]:
        cur = data[off:off + TOKEN_LEN]
        mm = MASK_RE.match(cur)
        if mm:
            fp6[off] = mm.group(1).decode()
        elif not valid_token(cur):
            bad_masks.append({"offset": off, "bytes": cur.decode(errors="replace")})
    res["mask_format_ok"] = len(fp6)
    res["mask_format_bad"] = bad_masks[:10]
    res["mask_format_bad_count"] = len(bad_masks)

    all_recs = read_findings(guard.state)
    res["unparsable_report_lines"] = sum(1 for r in all_recs if "_invalid" in r)
    recs = [r for r in all_recs if r.get("container") == name]
    res["records"] = len(recs)
    by_rule = {}
    for r in recs:
        by_rule[r.get("rule")] = by_rule.get(r.get("rule"), 0) + 1
    res["records_by_rule"] = by_rule
    by_start = {}
    for r in recs:
        if r.get("rule") == "github-pat":
            by_start.setdefault(r.get("start"), []).append(r)
    offsets = set(m["offsets"])
    res["tokens_without_record"] = sorted(o for o in offsets if o not in by_start)
    dups = {o: len(v) for o, v in by_start.items() if len(v) > 1}
    res["duplicate_records"] = sum(n - 1 for n in dups.values())
    res["duplicate_examples"] = [{"start": o, "records": n, "line": by_start[o][0].get("line")} for o, n in sorted(dups.items())[:10]]
    res["records_not_at_a_token"] = sorted(o for o in by_start if o not in offsets)[:20]
    res["records_not_at_a_token_count"] = sum(1 for o in by_start if o not in offsets)
    mismatch = [o for o in offsets if o in by_start and o in fp6
                and not any(str(r.get("fingerprint", "")).startswith(fp6[o]) for r in by_start[o])]
    res["fingerprint_mismatch"] = len(mismatch)
    del res["offsets"]
    cs.remove([cid])
    return res


def monitor(fd, waiter, guard, grace):
    """Tail the log, watch every token until it is masked. See the module docstring."""
    pos = 0
    partial = b""
    pending = {}  # offset -> (token bytes, docker ns, first seen ns)
    exposures = []  # ms, token masked while watched
    early = []  # ms upper bounds: already masked when first read
    seen_delay = []  # ms, Docker's timestamp -> the monitor first read the line
    offsets = []
    lines = 0
    first_ts = last_ts = None
    cpu0 = t0 = None
    rss_max = 0
    next_mem = 0.0
    writer_exit = None
    writer_done = None
    last_data = time.monotonic()
    cpu_self0 = os.times()
    loops = 0
    while True:
        loops += 1
        chunk = os.pread(fd, 8 << 20, pos)
        if chunk:
            if cpu0 is None:
                cpu0, t0 = cpu_seconds(guard.pid), time.monotonic()
            last_data = time.monotonic()
            buf = partial + chunk
            base = pos - len(partial)
            pos += len(chunk)
            cut = buf.rfind(b"\n") + 1
            complete, partial = buf[:cut], buf[cut:]
            if complete:
                lines += complete.count(b"\n")
                if first_ts is None:
                    first_ts = line_time_ns(complete[:complete.find(b"\n")])
                last_ts = line_time_ns(complete[complete.rfind(b"\n", 0, len(complete) - 1) + 1:]) or last_ts
                i = complete.find(b"ghp_")
                while i >= 0:
                    ls = complete.rfind(b"\n", 0, i) + 1
                    le = complete.find(b"\n", i)
                    ts = line_time_ns(complete[ls:le])
                    tok = complete[i:i + TOKEN_LEN]
                    now = time.time_ns()
                    off = base + i
                    offsets.append(off)
                    if ts is not None:
                        seen_delay.append((now - ts) / 1e6)
                        if valid_token(tok):
                            pending[off] = (tok, ts, now)
                        else:
                            early.append((now - ts) / 1e6)
                    i = complete.find(b"ghp_", le)
        if pending:
            for off, (tok, ts, _) in list(pending.items()):
                if os.pread(fd, TOKEN_LEN, off) != tok:
                    exposures.append((time.time_ns() - ts) / 1e6)
                    del pending[off]
        mono = time.monotonic()
        if mono >= next_mem:
            next_mem = mono + 0.1
            guard.check_alive()
            rss, _ = mem_kib(guard.pid)
            rss_max = max(rss_max, rss or 0)
        if writer_done is None and waiter.poll() is not None:
            writer_done = mono
            writer_exit = (waiter.stdout.read() or "").strip() or f"docker wait exit {waiter.returncode}"
        if writer_done is not None and not chunk:
            settled = mono - writer_done > 0.2 and mono - last_data > 0.2
            if (settled and not pending) or mono - writer_done > grace:
                break
        time.sleep(POLL_S)
    # Stragglers: one last read of anything not seen yet.
    tail = os.pread(fd, 64 << 20, pos)
    if tail:
        log(f"{len(tail)} bytes arrived after the end of monitoring (not measured)")
    cpu1, t1 = cpu_seconds(guard.pid), time.monotonic()
    _, hwm = mem_kib(guard.pid)
    me = os.times()
    wall = (t1 - t0) if t0 else None
    exposures.sort()
    early.sort()
    allx = sorted(exposures + early)
    seen_delay.sort()
    return {
        "lines": lines, "secrets": len(offsets), "masked_watched": len(exposures),
        "masked_before_seen": len(early), "never_masked": len(pending),
        "never_masked_offsets": sorted(pending)[:50], "offsets": offsets,
        "docker_span_s": (last_ts - first_ts) / 1e9 if first_ts and last_ts else None,
        "achieved_rate": (lines - 1) / ((last_ts - first_ts) / 1e9) if first_ts and last_ts and last_ts > first_ts else None,
        "exposure_ms": {"p50": pct(allx, 50), "p90": pct(allx, 90), "p99": pct(allx, 99),
                        "max": allx[-1] if allx else None, "min": allx[0] if allx else None},
        "exposure_all_ms": [round(x, 3) for x in allx],
        "seen_delay_ms": {"p50": pct(seen_delay, 50), "p99": pct(seen_delay, 99),
                          "max": seen_delay[-1] if seen_delay else None},
        "cpu_pct": (cpu1 - cpu0) / wall * 100 if wall else None, "cpu_s": (cpu1 - cpu0) if wall else None,
        "wall_s": wall, "vmrss_max_kib": rss_max, "vmhwm_kib": hwm,
        "monitor_cpu_pct": ((me.user + me.system) - (cpu_self0.user + cpu_self0.system)) / wall * 100 if wall else None,
        "monitor_loops": loops, "writer_exit": writer_exit,
    }


# ----------------------------------------------------------------------------------------------------
# Idle and scale
# ----------------------------------------------------------------------------------------------------
def idle_run(a, guard, cs):
    ids = []
    t0 = time.monotonic()
    for i in range(a.idle_containers):
        cid, _ = cs.create(f"idle{i:03d}", ["--sleep"], log_opts=("max-size=10m",))
        ids.append(cid)
    for k in range(0, len(ids), 25):
        docker("start", *ids[k:k + 25])
    started = time.monotonic() - t0
    log(f"{len(ids)} idle containers started in {started:.1f} s")
    # The guard follows every container directory; its heartbeat (every 5 s) counts them.
    want = len(docker("ps", "-aq").stdout.split())
    deadline = time.monotonic() + 30
    followed = None
    while time.monotonic() < deadline:
        guard.check_alive()
        _, followed = guard.health()
        if followed is not None and followed >= want:
            break
        time.sleep(1)
    else:
        log(f"the guard reports {followed} containers followed, docker ps -a lists {want}")
    time.sleep(a.settle)
    guard.check_alive()
    load0 = loadavg()
    c0, w0 = cpu_seconds(guard.pid), time.monotonic()
    rss_max = 0
    end = w0 + a.idle_seconds
    while True:
        rss, _ = mem_kib(guard.pid)
        rss_max = max(rss_max, rss or 0)
        now = time.monotonic()
        if now >= end:
            break
        time.sleep(min(0.5, end - now))
    c1, w1 = cpu_seconds(guard.pid), time.monotonic()
    rss, hwm = mem_kib(guard.pid)
    rss_max = max(rss_max, rss or 0)
    _, followed_end = guard.health()
    res = {"containers": len(ids), "docker_ps_a": want, "followed": followed_end, "start_seconds": started,
           "cpu_pct": (c1 - c0) / (w1 - w0) * 100, "cpu_s": c1 - c0, "wall_s": w1 - w0,
           "vmrss_max_kib": rss_max, "vmrss_end_kib": rss, "vmhwm_kib": hwm,
           "load1_before": load0, "load1_after": loadavg()}
    t = time.monotonic()
    cs.remove(ids)
    log(f"idle containers removed in {time.monotonic() - t:.1f} s")
    return res


# ----------------------------------------------------------------------------------------------------
# Report
# ----------------------------------------------------------------------------------------------------
def md_table(head, rows):
    out = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
    out += ["| " + " | ".join(str(c).replace("|", "\\|") for c in r) + " |" for r in rows]
    return "\n".join(out)


def f1(x, unit=""):
    return "n/a" if x is None else f"{x:.1f}{unit}"


def mib(kib):
    return None if kib is None else kib / 1024


def build_report(a, machine, rates, idle, guard_info, warnings, command):
    L = ["# Live log guard benchmark", ""]
    L.append(f"Machine: {machine['cores']} cores ({machine['cpu']}), {machine['mem_gib']:.1f} GiB RAM, Linux "
             f"{machine['kernel']}, Docker {machine['docker']} (root {machine['docker_root']}, file system "
             f"{machine['fs']}). {machine['sidecar']}. Python {platform.python_version()}.")
    L.append(f"Guard: `{guard_info['command']}`; other containers on the host at start: {machine['other_containers']}.")
    L.append("")
    L.append("## Exposure window")
    L.append("")
    L.append(f"A `FROM scratch` container writes pino-style gateway lines (190–260 bytes, ~240 on average) at the rate for {a.seconds} s, every "
             f"{a.secret_every}th line with a unique valid GitHub token in one of four contexts. Exposure = the time "
             "the benchmark saw the token's bytes change in Docker's log file (pread every ~0.5 ms) − Docker's timestamp of "
             "the line. CPU = the guard's utime+stime over the run / wall (100 % = one core). Percentiles are nearest-rank.")
    L.append("")
    rows = []
    for r in rates:
        e = r["exposure_ms"]
        rows.append([f"{r['rate']:,}", f1(r["achieved_rate"]), f"{r['lines']:,}", r["secrets"],
                     f1(e["p50"]), f1(e["p99"]), f1(e["max"]), r["never_masked"], r["masked_before_seen"],
                     f1(r["cpu_pct"]), f1(mib(r["vmrss_max_kib"])), f1(mib(r["vmhwm_kib"])),
                     r["records"], r["duplicate_records"], len(r["tokens_without_record"]),
                     f1(r["seen_delay_ms"]["p50"]) + " / " + f1(r["seen_delay_ms"]["p99"]), f1(r["monitor_cpu_pct"])])
    L.append(md_table(["lines/s", "achieved lines/s", "lines", "secrets", "p50 ms", "p99 ms", "max ms", "never masked",
                       "masked before read", "guard CPU %", "VmRSS max MiB", "VmHWM MiB", "records", "duplicate records",
                       "tokens without record", "line read by monitor p50 / p99 ms", "monitor CPU %"], rows))
    L.append("")
    for r in rates:
        notes = []
        if r["records_by_rule"].keys() - {"github-pat"}:
            notes.append("records of other rules (false positives on the gateway lines?): " +
                         ", ".join(f"{k} {v}" for k, v in sorted(r["records_by_rule"].items()) if k != "github-pat"))
        problems = [
            ("never_masked", lambda r: f"{r['never_masked']} token(s) never masked within {a.grace:.0f} s after the "
                                       f"writer exited (offsets {r['never_masked_offsets'][:10]})"),
            ("valid_tokens_left", lambda r: f"{r['valid_tokens_left']} valid token(s) still in the log at the end"),
            ("invalid_json_lines", lambda r: f"{r['invalid_json_lines']} line(s) of the masked log are not valid JSON"),
            ("mask_format_bad_count", lambda r: f"{r['mask_format_bad_count']} masked token(s) not in the "
                                                f"`ghp_[github-pat:<fp6>]***` form, e.g. {r['mask_format_bad'][:3]}"),
            ("unparsable_report_lines", lambda r: f"{r['unparsable_report_lines']} line(s) of the report are not valid JSON"),
            ("fingerprint_mismatch", lambda r: f"{r['fingerprint_mismatch']} mask tag(s) disagree with their record's "
                                               "fingerprint"),
            ("duplicate_records", lambda r: f"{r['duplicate_records']} duplicate record(s), e.g. "
                                            f"{r['duplicate_examples'][:3]}"),
            ("tokens_without_record", lambda r: f"{len(r['tokens_without_record'])} token(s) without a record "
                                                f"(offsets {r['tokens_without_record'][:10]})"),
            ("records_not_at_a_token_count", lambda r: f"{r['records_not_at_a_token_count']} github-pat record(s) at "
                                                       f"no token's offset ({r['records_not_at_a_token'][:10]})"),
        ]
        notes.extend(say(r) for key, say in problems if r[key])
        if r["achieved_rate"] and r["achieved_rate"] < 0.95 * r["rate"]:
            notes.append(f"the writer reached only {r['achieved_rate']:.0f} lines/s (Docker did not keep up)")
        if r["lines"] != r["expected_lines"]:
            notes.append(f"{r['lines']} lines in the log, {r['expected_lines']} written")
        L.append(f"- {r['rate']:,} lines/s (`{r['container']}`): exposure p90 {f1(r['exposure_ms']['p90'])} ms, min "
                 f"{f1(r['exposure_ms']['min'])} ms; {r['mask_format_ok']}/{r['secrets']} masks in the expected form; "
                 f"load average {f1(r['load1_before'])} → {f1(r['load1_after'])}" +
                 ("; **" + "; ".join(notes) + "**" if notes else "; every token masked and recorded once, all lines valid JSON"))
    L.append("")
    L.append("## Idle")
    L.append("")
    if idle:
        L.append(md_table(["idle containers started", "followed (health)", "CPU %", "CPU s", "window s",
                           "VmRSS max MiB", "VmHWM MiB (lifetime)"],
                          [[idle["containers"], idle["followed"], f"{idle['cpu_pct']:.2f}", f"{idle['cpu_s']:.2f}",
                            f"{idle['wall_s']:.1f}", f1(mib(idle["vmrss_max_kib"])), f1(mib(idle["vmhwm_kib"]))]]))
        L.append("")
        L.append(f"Containers write one line and sleep; measured {a.settle:.0f} s after the guard followed them "
                 f"(rescan every {guard_info['rescan']} s: a window shorter than that may or may not contain one). "
                 f"Load average {f1(idle['load1_before'])} → {f1(idle['load1_after'])}.")
    else:
        L.append("not run")
    L.append("")
    L.append("## Targets")
    L.append("")
    targets = targets_of(a, rates, idle, guard_info)
    L.append(md_table(["target", "goal", "measured", "result"],
                      [[t["target"], t["goal"], t["measured"], t["result"]] for t in targets]))
    L.append("")
    L.append(f"Guard exit after SIGTERM: {guard_info['exit_code']}"
             + (f" after {guard_info['stop_seconds']:.1f} s" if guard_info.get("stop_seconds") is not None else "") + ".")
    if warnings:
        L.append("")
        L.append(f"Guard warnings/errors on stderr ({len(warnings)}; first 10):")
        L.append("")
        L += [f"    {w}" for w in warnings[:10]]
    L += ["", "## Command", "", "```sh", command, "```", ""]
    return "\n".join(L), targets


def targets_of(a, rates, idle, guard_info):
    out = []

    def t(name, goal, measured, ok):
        out.append({"target": name, "goal": goal, "measured": measured,
                    "result": "NOT RUN" if ok is None else ("PASS" if ok else "MISS")})

    r10 = next((r for r in rates if r["rate"] == TARGET_P99_RATE), None)
    p99 = r10["exposure_ms"]["p99"] if r10 else None
    t(f"exposure p99 at {TARGET_P99_RATE:,} lines/s", f"≤ {TARGET_P99_MS:.0f} ms",
      f"{p99:.1f} ms" if p99 is not None else "not measured",
      None if r10 is None else (p99 is not None and p99 <= TARGET_P99_MS and r10["never_masked"] == 0))
    if idle:
        t(f"idle CPU with {idle['containers']} containers", f"< {TARGET_IDLE_CPU:.0f} % (≈ 0)",
          f"{idle['cpu_pct']:.2f} %", idle["cpu_pct"] < TARGET_IDLE_CPU)
        label = f"RSS with {idle['containers']} containers"
        if idle["containers"] != TARGET_RSS_CONTAINERS:
            label += f" (target is for {TARGET_RSS_CONTAINERS})"
        rss = mib(idle["vmrss_max_kib"])
        t(label, f"≤ {TARGET_RSS_MIB:.0f} MiB", f"{rss:.1f} MiB (VmHWM {mib(idle['vmhwm_kib']):.1f})",
          rss <= TARGET_RSS_MIB)
    else:
        t("idle CPU", f"< {TARGET_IDLE_CPU:.0f} %", "not measured", None)
        t("RSS with 50 containers", f"≤ {TARGET_RSS_MIB:.0f} MiB", "not measured", None)
    if rates:
        secrets = sum(r["secrets"] for r in rates)
        never = sum(r["never_masked"] + r["valid_tokens_left"] for r in rates)
        t("every secret masked", "0 left", f"{never} of {secrets} not masked", never == 0)
        bad = sum(r["duplicate_records"] + len(r["tokens_without_record"]) + r["records_not_at_a_token_count"]
                  for r in rates)
        t("one report record per secret", "0 missing/duplicate",
          f"{sum(len(r['tokens_without_record']) for r in rates)} missing, "
          f"{sum(r['duplicate_records'] for r in rates)} duplicate, "
          f"{sum(r['records_not_at_a_token_count'] for r in rates)} elsewhere", bad == 0)
        inval = sum(r["invalid_json_lines"] for r in rates)
        t("masked log stays valid JSON", "0 invalid lines", f"{inval}", inval == 0)
    code = guard_info["exit_code"]
    t("sidecar run exits 0 on SIGTERM", "exit 0", f"exit {code}" if isinstance(code, int) else str(code), code == 0)
    return out


def machine_info(sidecar, docker_root):
    fs = sh(["stat", "-f", "-c", "%T", docker_root], check=False).stdout.strip() or "?"
    ver = sh([sidecar, "--version"], check=False).stdout.strip() or "sidecar ?"
    dv = docker("version", "--format", "{{.Server.Version}}", check=False).stdout.strip() or "?"
    others = len(docker("ps", "-aq", check=False).stdout.split())
    return {**host_basics(), "fs": fs,
            "sidecar": ver, "docker": dv, "docker_root": docker_root, "other_containers": others}


# ----------------------------------------------------------------------------------------------------
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rates", default=None, help="comma-separated lines/s (default 1000,10000)")
    ap.add_argument("--seconds", type=int, default=None, help="seconds each writer runs (default 20)")
    ap.add_argument("--secret-every", type=int, default=100,
                    help="every K-th line carries a token (default 100: 10/s at 1k, 100/s at 10k lines/s)")
    ap.add_argument("--idle-containers", type=int, default=None, help="containers for the idle phase (default 50; 0 = skip)")
    ap.add_argument("--idle-seconds", type=float, default=None, help="idle CPU window (default 60: two full rescans at guard.rescan_seconds = 30)")
    ap.add_argument("--settle", type=float, default=5.0, help="seconds between following the idle containers and measuring")
    ap.add_argument("--grace", type=float, default=5.0, help="seconds after a writer exits before a token counts as never masked")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench-out", "guard"))
    ap.add_argument("--sidecar", help="sidecar binary (default: cargo build --release, target/release/sidecar)")
    ap.add_argument("--docker-root", help="Docker's data root (default: docker info .DockerRootDir)")
    ap.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                    help="extra environment for sidecar run, e.g. SIDECAR_GUARD__RESCAN_SECONDS=10")
    ap.add_argument("--quick", action="store_true", help="--rates 1000 --seconds 5 --idle-containers 10 --idle-seconds 3")
    ap.add_argument("--keep", action="store_true", help="keep the guard's state directory")
    a = ap.parse_args(argv)
    a.rates = [int(x) for x in (a.rates or ("1000" if a.quick else "1000,10000")).split(",") if x.strip()]
    a.seconds = a.seconds if a.seconds is not None else (5 if a.quick else 20)
    a.idle_containers = a.idle_containers if a.idle_containers is not None else (10 if a.quick else 50)
    a.idle_seconds = a.idle_seconds if a.idle_seconds is not None else (3 if a.quick else 60)
    extra_env = {}
    for kv in a.env:
        k, sep, v = kv.partition("=")
        if not sep:
            ap.error(f"--env {kv}: expected KEY=VALUE")
        extra_env[k] = v
    out = os.path.abspath(a.out)
    os.makedirs(out, exist_ok=True)
    command = "python3 benches/guard_bench.py " + shlex.join(argv if argv is not None else sys.argv[1:])

    def on_term(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    for tool in ("docker", "rustc"):
        if not shutil.which(tool):
            log(f"{tool} not found")
            return 1

    cs = Containers()
    guard = None
    state = None
    image_dir = tempfile.mkdtemp(prefix="writer-image-", dir=out)
    rates, idle = [], None
    failure = None
    try:
        sidecar, err = sidecar_binary(a.sidecar, ROOT, out, log)
        if err:
            raise BenchError(err)
        docker_root = a.docker_root or docker("info", "--format", "{{.DockerRootDir}}").stdout.strip()
        image_id = build_writer(image_dir)
        machine = machine_info(sidecar, docker_root)
        machine["writer_image"] = image_id
        log(f"{machine['cores']} cores; {machine['sidecar']}; Docker {machine['docker']}; {machine['other_containers']} other containers")

        state = tempfile.mkdtemp(prefix="state-", dir=out)
        # Only this benchmark's containers (a shared engine may run others): guard.containers by label.
        env = {"SIDECAR_GUARD__CONTAINERS": json.dumps([cs.label]), "SIDECAR_GUARD__NAME": GUARD_NAME, **extra_env}
        guard = Guard(sidecar, state, docker_root, env, os.path.join(out, "sidecar-run.stderr"))
        log(f"starting the guard: {guard.command}")
        guard.start()
        log(f"guard healthy (pid {guard.pid}, following {guard.health()[1]} containers)")

        for rate in a.rates:
            log(f"rate {rate} lines/s for {a.seconds} s, a token every {a.secret_every} lines")
            r = rate_run(rate, a, guard, cs)
            rates.append(r)
            e = r["exposure_ms"]
            log(f"rate {rate}: {r['lines']} lines ({f1(r['achieved_rate'])}/s), {r['secrets']} secrets, exposure p50 "
                f"{f1(e['p50'])} p99 {f1(e['p99'])} max {f1(e['max'])} ms, never masked {r['never_masked']}, "
                f"CPU {f1(r['cpu_pct'])} %, VmRSS max {f1(mib(r['vmrss_max_kib']))} MiB, records {r['records']}, "
                f"duplicates {r['duplicate_records']}, without record {len(r['tokens_without_record'])}")
        if a.idle_containers > 0:
            log(f"idle: {a.idle_containers} containers")
            idle = idle_run(a, guard, cs)
            log(f"idle: CPU {idle['cpu_pct']:.2f} % over {idle['wall_s']:.1f} s, VmRSS max "
                f"{f1(mib(idle['vmrss_max_kib']))} MiB, VmHWM {f1(mib(idle['vmhwm_kib']))} MiB, followed {idle['followed']}")
        guard.check_alive()
    except BenchError as e:
        failure = str(e)
        log(f"failed: {failure}")
    except KeyboardInterrupt as e:
        failure = f"interrupted ({e or 'Ctrl-C'})"
        log(failure)
    finally:
        left = cs.remove_all()
        if left:
            log(f"containers left after docker rm -f: {left}")
        if guard is not None:
            guard.stop()
            log(f"guard stopped: exit {guard.exit_code}")
        shutil.rmtree(image_dir, ignore_errors=True)
    if failure and failure.startswith("interrupted"):
        if state and not a.keep:
            shutil.rmtree(state, ignore_errors=True)
        return 130

    warnings = []
    if guard is not None:
        try:
            with open(guard.stderr_path, errors="replace") as fh:
                warnings = [ln.rstrip() for ln in fh if re.search(r"\b(WARN|ERROR|error:)", ln)]
        except OSError:
            pass
    if guard is None or failure and not rates and not idle:
        if state and not a.keep:
            shutil.rmtree(state, ignore_errors=True)
        return 1
    guard_info = {"command": guard.command.replace(state, "<tmp>"), "exit_code": guard.exit_code,
                  "stop_seconds": guard.stop_seconds,
                  "rescan": extra_env.get("SIDECAR_GUARD__RESCAN_SECONDS", "30")}
    report, targets = build_report(a, machine, rates, idle, guard_info, warnings, command)
    if failure:
        report += f"\n**The benchmark did not complete: {failure}**\n"
    with open(os.path.join(out, "results.md"), "w") as fh:
        fh.write(report)
    js = {"settings": {"rates": a.rates, "seconds": a.seconds, "secret_every": a.secret_every,
                       "idle_containers": a.idle_containers, "idle_seconds": a.idle_seconds, "settle": a.settle,
                       "grace": a.grace, "poll_s": POLL_S},
          "command": command, "machine": machine, "guard": guard_info, "rates": rates, "idle": idle,
          "targets": targets, "guard_warnings": warnings[:100], "failure": failure}
    with open(os.path.join(out, "results.json"), "w") as fh:
        json.dump(js, fh, indent=2)
    print(report)
    log(f"wrote {os.path.join(out, 'results.md')} and results.json")
    if a.keep:
        log(f"state kept in {state}")
    else:
        shutil.rmtree(state, ignore_errors=True)
    return 1 if failure else 0


if __name__ == "__main__":
    sys.exit(main())
