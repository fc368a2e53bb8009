#!/usr/bin/env python3
"""One-command end-to-end benchmark of `sidecar backup` / `sidecar restore` against `tar | zstd | age`
and restic, on a generated OpenClaw state directory and on a tree of many tiny files.

    python3 benches/backup_bench.py [--size-mb 1024] [--small-files 200000] [--runs 3] [--level 3]
                                    [--out bench-out/backup] [--sidecar target/release/sidecar] [--seed 1]
                                    [--quick] [--self-test] [--skip-restic] [--regenerate] [--keep]

1. `cargo build --release` unless --sidecar is given. Generates (or reuses) the two cases with
   benches/gen_state.py under OUT/data: `openclaw_data` (--size-mb MiB of SQLite in WAL mode, JSONL
   transcripts, a small-file workspace, random media, a sparse file, hardlinks, symlinks, 0600 secrets)
   and `small_files` (--small-files tiny files). `age-keygen -o OUT/age.key` makes the key.
2. Per case, after reading the source once (warm page cache), each step runs --runs times; the best wall
   time counts, peak RSS (/usr/bin/time %M, else wait4 ru_maxrss, KiB) is the largest over the runs:
   a. sidecar backup --source SRC --to DEST -r RECIPIENT --level L   (SIDECAR_STATE_DIR=<temp dir>)
   b. bash -c 'set -o pipefail; tar -cf - -C SRC . | zstd -L -T0 -q | age -r RECIPIENT > F'
   c. sidecar restore FILE --to EMPTY --identity KEY
   d. bash -c 'set -o pipefail; age -d -i KEY F | zstd -d -q | tar -xf - -C EMPTY'
   e. restic init (untimed, a fresh repository per run), restic backup SRC, restic restore latest --target DIR
   Outputs are deleted between runs (untimed); every restore goes into a fresh empty directory.
   A pipeline's peak RSS is the sum of its stages' peaks (each stage runs under /usr/bin/time).
3. The last restore of each tool is compared with the source: relative paths, type, size, mode, mtime
   (ns), symlink targets and SHA-256 of every file (`.sidecar-manifest.jsonl` at the root is skipped).
   Only sidecar's count is a target (0); the others are shown for information, as are hardlinks kept
   and the allocated size of the restored sparse file.
4. Prints a Markdown report and writes OUT/results.md and OUT/results.json. Exit status 0 even when
   targets are missed; 1 when sidecar cannot be built or fails to back up or restore; 3 when
   --self-test finds the tree comparison wrong.

--quick is `--size-mb 32 --small-files 2000 --runs 1`. --self-test is --quick plus a check that the
comparison catches deliberately broken restores (a flipped byte, a mode, an mtime, a symlink target, a
missing and an extra file). Uses only the Python standard library.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import gen_state  # noqa: E402
from benchutil import host_basics, loadavg, run_measured, sidecar_binary  # noqa: E402

MIB = 1 << 20
TIME_BIN = "/usr/bin/time"
SKIP_AT_ROOT = {".sidecar-manifest.jsonl"}
TARGET_RATIO = 1.0
TARGET_RSS_MIB = 64.0
RESTIC_PASSWORD = "backup-bench"


def log(msg):
    print(f"[backup_bench] {msg}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------------------------
# Running and measuring
# ----------------------------------------------------------------------------------------------------
def pipeline(stages, redirect_out, rss_dir):
    """A bash pipeline with `set -o pipefail`; each stage under /usr/bin/time -f %M into rss_dir/stageN.
    -> (argv, list of rss files, shown command)."""
    shown = " | ".join(shlex.join(s) for s in stages) + (f" > {shlex.quote(redirect_out)}" if redirect_out else "")
    files = []
    parts = []
    timed = os.access(TIME_BIN, os.X_OK)
    for i, s in enumerate(stages):
        if timed:
            f = os.path.join(rss_dir, f"stage{i}.rss")
            files.append(f)
            parts.append(shlex.join([TIME_BIN, "-o", f, "-f", "%M"] + s))
        else:
            parts.append(shlex.join(s))
    script = "set -o pipefail; " + " | ".join(parts) + (f" > {shlex.quote(redirect_out)}" if redirect_out else "")
    return ["bash", "-c", script], files, "set -o pipefail; " + shown


def read_stage_rss(files):
    vals = []
    for f in files:
        try:
            with open(f) as fh:
                vals.append(int([ln for ln in fh.read().split() if ln.strip()][-1]))
        except (OSError, ValueError, IndexError):
            return None
    return vals


class Step:
    """One measured operation of one tool on one case (e.g. sidecar backup)."""

    def __init__(self, tool, op, command):
        self.tool, self.op, self.command = tool, op, command
        self.runs = []
        self.error = None
        self.output_bytes = None
        self.note = ""
        self.stage_rss = []  # per run, per stage (pipelines)

    def add(self, m):
        self.runs.append(m)

    def best(self):
        ok = [r for r in self.runs if r["rc"] == 0]
        if not ok or self.error:
            return None
        b = min(ok, key=lambda r: r["wall"])
        rss = [r["rss_kib"] for r in ok if r["rss_kib"] is not None]
        return {"wall": b["wall"], "cpu": (b["user"] + b["sys"]) if b["user"] is not None else None,
                "rss_kib": max(rss) if rss else None, "runs": len(ok), "walls": [round(r["wall"], 3) for r in ok]}


def tail(path, n=800):
    try:
        with open(path, "rb") as fh:
            fh.seek(0, 2)
            size = fh.tell()
            fh.seek(max(0, size - n))
            return fh.read().decode(errors="replace").strip()
    except OSError:
        return ""


# ext4 skips inodes deleted in the last 60 s (300 s while their inode table block is dirty) when it
# allocates new ones (fs/ext4/ialloc.c, recently_deleted()). A restore that starts right after a
# large tree was deleted spends most of its time in that scan (measured: two thirds of a 200 000-file
# restore in find_inode_bit), so whichever tool ran first after a deletion lost. Every restore now
# starts at least SETTLE_S after the last deletion, with the deletions synced.
SETTLE_S = 65
last_delete = [0.0]


def rmtree(path):
    if os.path.lexists(path):
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
            last_delete[0] = time.time()
        else:
            os.unlink(path)


def settle():
    """Wait until deleted inodes no longer slow down inode allocation (see SETTLE_S)."""
    os.sync()
    wait = SETTLE_S - (time.time() - last_delete[0])
    if wait > 0:
        log(f"waiting {wait:.0f} s after the last deletion (ext4 skips recently deleted inodes)")
        time.sleep(wait)


def tree_size(path):
    total = 0
    for dp, _, fns in os.walk(path):
        for f in fns:
            try:
                total += os.lstat(os.path.join(dp, f)).st_size
            except OSError:
                pass
    return total


def warm_cache(src):
    t0 = time.perf_counter()
    n = 0
    buf = bytearray(MIB)
    for dp, _, fns in os.walk(src):
        for f in fns:
            p = os.path.join(dp, f)
            if os.path.islink(p):
                continue
            with open(p, "rb", buffering=0) as fh:
                while True:
                    k = fh.readinto(buf)
                    if not k:
                        break
                    n += k
    return n, time.perf_counter() - t0


# ----------------------------------------------------------------------------------------------------
# Tree comparison
# ----------------------------------------------------------------------------------------------------
def sha256_file(path):
    h = hashlib.sha256()
    buf = bytearray(MIB)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as fh:
        while True:
            k = fh.readinto(buf)
            if not k:
                break
            h.update(view[:k])
    return h.hexdigest()


def kind(mode):
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISLNK(mode):
        return "symlink"
    return "other"


def compare_trees(src, dst, skip_at_root=SKIP_AT_ROOT, sparse_rel=None):
    """Compare dst (a restore) with src. -> dict(mismatches, by_attr, examples, entries, hardlinks...)."""
    res = {"mismatches": 0, "by_attr": {}, "examples": [], "entries": 0, "hardlinks_total": 0, "hardlinks_kept": 0,
           "sparse_allocated": None}

    def bad(attr, rel, detail=""):
        res["mismatches"] += 1
        res["by_attr"][attr] = res["by_attr"].get(attr, 0) + 1
        if len(res["examples"]) < 25:
            res["examples"].append(f"{attr}: {rel or '.'} {detail}".rstrip())

    def walk(rel):
        a_dir, b_dir = os.path.join(src, rel), os.path.join(dst, rel)
        a = set(os.listdir(a_dir))
        b = set(os.listdir(b_dir))
        if rel == "":
            b -= skip_at_root
        for name in sorted(a - b):
            bad("missing", os.path.join(rel, name))
        for name in sorted(b - a):
            bad("extra", os.path.join(rel, name))
        for name in sorted(a & b):
            r = os.path.join(rel, name)
            sa, sb = os.lstat(os.path.join(src, r)), os.lstat(os.path.join(dst, r))
            res["entries"] += 1
            ka, kb = kind(sa.st_mode), kind(sb.st_mode)
            if ka != kb:
                bad("type", r, f"{ka} -> {kb}")
                continue
            if ka != "symlink" and stat.S_IMODE(sa.st_mode) != stat.S_IMODE(sb.st_mode):
                bad("mode", r, f"{oct(stat.S_IMODE(sa.st_mode))} -> {oct(stat.S_IMODE(sb.st_mode))}")
            if sa.st_mtime_ns != sb.st_mtime_ns:
                bad("mtime", r, f"{sa.st_mtime_ns} -> {sb.st_mtime_ns}")
            if ka == "file":
                if sa.st_size != sb.st_size:
                    bad("size", r, f"{sa.st_size} -> {sb.st_size}")
                elif sha256_file(os.path.join(src, r)) != sha256_file(os.path.join(dst, r)):
                    bad("sha256", r)
                if sa.st_nlink > 1:
                    res["hardlinks_total"] += 1
                    res["hardlinks_kept"] += sb.st_nlink == sa.st_nlink
                if sparse_rel and r == sparse_rel:
                    res["sparse_allocated"] = sb.st_blocks * 512
            elif ka == "symlink":
                ta, tb = os.readlink(os.path.join(src, r)), os.readlink(os.path.join(dst, r))
                if ta != tb:
                    bad("symlink", r, f"{ta} -> {tb}")
            elif ka == "dir":
                walk(r)

    walk("")
    return res


def self_test_compare(src, restored, sparse_rel):
    """Break a copy of a correct restore in known ways; the comparison must find exactly those."""
    problems = []
    base = compare_trees(src, restored, sparse_rel=sparse_rel)
    if base["mismatches"]:
        problems.append(f"the restore to break is not exact to begin with ({base['mismatches']} mismatches)")
        return problems
    files, links = [], []
    for dp, dns, fns in os.walk(restored):
        for f in sorted(fns):
            p = os.path.join(dp, f)
            rel = os.path.relpath(p, restored)
            if rel in SKIP_AT_ROOT:
                continue
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                links.append(p)
            elif stat.S_ISREG(st.st_mode) and st.st_size > 0 and st.st_nlink == 1:
                files.append(p)
        for d in dns:
            if os.path.islink(os.path.join(dp, d)):
                links.append(os.path.join(dp, d))
    files.sort()
    links.sort()
    if len(files) < 4:
        return ["not enough files to break"]
    f0, f1, f2, f3 = files[0], files[1], files[2], files[3]
    parents = {d: os.stat(d) for d in {os.path.dirname(p) for p in [f0, f1, f2, f3] + links[:1]}}
    st = os.stat(f0)
    with open(f0, "r+b") as fh:  # flip a byte, keep size and mtime
        b = fh.read(1)
        fh.seek(0)
        fh.write(bytes([b[0] ^ 1]))
    os.utime(f0, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.chmod(f1, stat.S_IMODE(os.stat(f1).st_mode) ^ 0o004)
    st2 = os.stat(f2)
    os.utime(f2, ns=(st2.st_atime_ns, st2.st_mtime_ns + 1))
    want = {"sha256": 1, "mode": 1, "mtime": 1, "missing": 1, "extra": 1}
    if links:
        ln = links[0]
        lst = os.lstat(ln)
        os.unlink(ln)
        os.symlink("elsewhere", ln)
        os.utime(ln, ns=(lst.st_atime_ns, lst.st_mtime_ns), follow_symlinks=False)
        want["symlink"] = 1
    d3 = os.path.dirname(f3)
    os.unlink(f3)
    with open(os.path.join(d3, "zz-extra-file"), "wb") as fh:
        fh.write(b"x")
    for d, st in parents.items():  # creating and deleting entries changed their directories' mtimes
        os.utime(d, ns=(st.st_atime_ns, st.st_mtime_ns))
    got = compare_trees(src, restored, sparse_rel=sparse_rel)
    if got["by_attr"] != want or got["mismatches"] != sum(want.values()):
        problems.append(f"expected {want}, got {got['by_attr']}")
    return problems


# ----------------------------------------------------------------------------------------------------
# Tools
# ----------------------------------------------------------------------------------------------------
def version_of(argv):
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        return (r.stdout or r.stderr).strip().splitlines()[0]
    except (OSError, subprocess.TimeoutExpired, IndexError):
        return "?"


def ensure_restic(skip):
    if skip:
        return None, "skipped (--skip-restic)"
    r = shutil.which("restic")
    if r:
        return r, ""
    if os.geteuid() == 0 and shutil.which("apt-get"):
        log("restic not installed: trying apt-get install -y -qq restic")
        try:
            subprocess.run(["apt-get", "install", "-y", "-qq", "restic"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=600)
        except (OSError, subprocess.TimeoutExpired):
            pass
        r = shutil.which("restic")
        if r:
            return r, ""
    return None, "not installed"


def make_key(out):
    key = os.path.join(out, "age.key")
    if os.path.exists(key):
        os.unlink(key)
    r = subprocess.run(["age-keygen", "-o", key], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"age-keygen failed: {r.stderr.strip()}")
    with open(key) as fh:
        for line in fh:
            if line.startswith("# public key: "):
                return key, line.split(": ", 1)[1].strip()
    raise SystemExit("age-keygen wrote no public key")


# ----------------------------------------------------------------------------------------------------
# One case
# ----------------------------------------------------------------------------------------------------
def run_case(name, src, meta, a, sidecar, key, recipient, restic, work):
    """Run every step on one source tree. -> dict with steps and comparisons."""
    rmtree(work)
    os.makedirs(work)
    logs = os.path.join(work, "logs")
    os.makedirs(logs)
    nbytes = meta["apparent_bytes"]
    warm_bytes, warm_s = warm_cache(src)
    log(f"{name}: warmed page cache ({warm_bytes / MIB:.0f} MiB read in {warm_s:.1f} s)")
    steps = {}
    fatal = None
    sparse_rel = (meta.get("sparse") or {}).get("path")

    def more(step):
        return step.error is None and not (len(step.runs) == 1 and step.runs[0]["wall"] > a.repeat_limit)

    def attempt(step, i, argv, env=None, stdout=None):
        load_before = loadavg()
        m = run_measured(argv, env=env, stdout=stdout or os.path.join(logs, f"{step.tool}-{step.op}.stdout"),
                         stderr=os.path.join(logs, f"{step.tool}-{step.op}.stderr"))
        m["load1_before"], m["load1_after"] = load_before, loadavg()
        step.add(m)
        log(f"{name}: {step.tool} {step.op} run {i + 1}/{a.runs}: {m['wall']:.2f} s, "
            f"rss {m['rss_kib'] / 1024 if m['rss_kib'] else 0:.1f} MiB, rc {m['rc']}")
        if m["wall"] > a.repeat_limit and i == 0 and a.runs > 1:
            step.note = (step.note + "; " if step.note else "") + f"not repeated: first run > {a.repeat_limit:.0f} s"
            log(f"{name}: {step.tool} {step.op}: first run took > {a.repeat_limit:.0f} s, not repeating it")
        if m["rc"] != 0:
            step.error = f"exit {m['rc']}: " + tail(os.path.join(logs, f"{step.tool}-{step.op}.stderr"))
            log(f"{name}: {step.tool} {step.op} failed: {step.error}")
            return False
        return True

    # a. sidecar backup
    dest = os.path.join(work, "sidecar-dest")
    st_argv = lambda: [sidecar, "backup", "--source", src, "--to", dest, "-r", recipient, "--level", str(a.level)]  # noqa: E731
    s = steps["sidecar backup"] = Step("sidecar", "backup", "SIDECAR_STATE_DIR=$(mktemp -d) " + shlex.join(st_argv()))
    backup_file = None
    for i in range(a.runs):
        if i and not more(s):
            break
        rmtree(dest)
        os.makedirs(dest)
        state_dir = tempfile.mkdtemp(prefix="state-", dir=work)
        env = dict(os.environ, SIDECAR_STATE_DIR=state_dir)
        env.pop("SIDECAR_CONFIG", None)
        out_file = os.path.join(logs, "sidecar-backup.stdout")
        ok = attempt(s, i, st_argv(), env=env, stdout=out_file)
        rmtree(state_dir)
        if not ok:
            break
        with open(out_file) as fh:
            lines = [ln.strip() for ln in fh if ln.strip()]
        backup_file = lines[-1] if lines else None
        if not backup_file or not os.path.isfile(backup_file):
            s.error = f"printed no backup path (stdout: {lines[-3:]!r})"
            break
        s.output_bytes = os.path.getsize(backup_file)
    if s.error:
        fatal = f"sidecar backup: {s.error}"

    # b. reference backup
    ref_file = os.path.join(work, "ref.tar.zst.age")
    argv, rss_files, shown = pipeline([["tar", "-cf", "-", "-C", src, "."], ["zstd", f"-{a.level}", "-T0", "-q"],
                                       ["age", "-r", recipient]], ref_file, logs)
    r = steps["tar|zstd|age backup"] = Step("tar|zstd|age", "backup", shown)
    for i in range(a.runs):
        if i and not more(r):
            break
        rmtree(ref_file)
        ok = attempt(r, i, argv)
        r.stage_rss.append(read_stage_rss(rss_files))
        if not ok:
            break
        r.output_bytes = os.path.getsize(ref_file)

    # c. sidecar restore
    restored_sidecar = os.path.join(work, "restore-sidecar")
    c = steps["sidecar restore"] = Step("sidecar", "restore",
                                        shlex.join([sidecar, "restore", "BACKUP", "--to", "EMPTYDIR", "--identity", key]))
    if backup_file:
        c.command = shlex.join([sidecar, "restore", backup_file, "--to", restored_sidecar, "--identity", key])
        for i in range(a.runs):
            if i and not more(c):
                break
            rmtree(restored_sidecar)
            os.makedirs(restored_sidecar)
            settle()
            env = dict(os.environ, SIDECAR_STATE_DIR=tempfile.mkdtemp(prefix="state-", dir=work))
            env.pop("SIDECAR_CONFIG", None)
            ok = attempt(c, i, [sidecar, "restore", backup_file, "--to", restored_sidecar, "--identity", key], env=env)
            rmtree(env["SIDECAR_STATE_DIR"])
            if not ok:
                break
        if c.error:
            fatal = fatal or f"sidecar restore: {c.error}"
    else:
        c.error = "no backup to restore"

    # d. reference restore
    restored_ref = os.path.join(work, "restore-ref")
    argv, rss_files, shown = pipeline([["age", "-d", "-i", key, ref_file], ["zstd", "-d", "-q"],
                                       ["tar", "-xf", "-", "-C", restored_ref]], None, logs)
    d = steps["tar|zstd|age restore"] = Step("tar|zstd|age", "restore", shown)
    if r.error is None:
        for i in range(a.runs):
            if i and not more(d):
                break
            rmtree(restored_ref)
            os.makedirs(restored_ref)
            settle()
            ok = attempt(d, i, argv)
            d.stage_rss.append(read_stage_rss(rss_files))
            if not ok:
                break
    else:
        d.error = "no reference backup"

    # e. restic
    restored_restic = os.path.join(work, "restore-restic")
    restic_repo = os.path.join(work, "restic-repo")
    restic_cache = os.path.join(work, "restic-cache")
    eb = steps["restic backup"] = Step("restic", "backup", "")
    er = steps["restic restore"] = Step("restic", "restore", "")
    if restic:
        env = dict(os.environ, RESTIC_PASSWORD=RESTIC_PASSWORD, RESTIC_REPOSITORY=restic_repo,
                   RESTIC_CACHE_DIR=restic_cache)
        init = [restic, "init", "-q"]
        bk = [restic, "backup", "-q", src]
        rs = [restic, "restore", "latest", "-q", "--target", restored_restic]
        eb.command = f"RESTIC_PASSWORD=… RESTIC_REPOSITORY={restic_repo} {shlex.join(bk)}   (after an untimed {shlex.join(init)})"
        er.command = shlex.join(rs)
        for i in range(a.runs):
            if i and not more(eb):
                break
            rmtree(restic_repo)
            rmtree(restic_cache)
            p = subprocess.run(init, env=env, capture_output=True, text=True)
            if p.returncode != 0:
                eb.error = f"restic init failed: {p.stderr.strip()[-400:]}"
                break
            if not attempt(eb, i, bk, env=env):
                break
            eb.output_bytes = tree_size(restic_repo)
        if eb.error is None:
            cfg = subprocess.run([restic, "cat", "config"], env=env, capture_output=True, text=True)
            try:
                eb.note = "; ".join(x for x in (eb.note, f"repository version {json.loads(cfg.stdout)['version']}") if x)
            except (ValueError, KeyError):
                pass
            for i in range(a.runs):
                if i and not more(er):
                    break
                rmtree(restored_restic)
                os.makedirs(restored_restic)
                settle()
                if not attempt(er, i, rs, env=env):
                    break
        else:
            er.error = "no restic backup"
    else:
        eb.error = er.error = a.restic_note

    # correctness of the last restore of each tool
    checks = {}
    for tool, path, step in (("sidecar", restored_sidecar, c), ("tar|zstd|age", restored_ref, d),
                             ("restic", os.path.join(restored_restic, src.lstrip("/")), er)):
        if step.error is None and step.runs and os.path.isdir(path):
            t0 = time.perf_counter()
            checks[tool] = compare_trees(src, path, sparse_rel=sparse_rel)
            log(f"{name}: {tool} restore vs source: {checks[tool]['mismatches']} mismatches "
                f"{checks[tool]['by_attr']} ({time.perf_counter() - t0:.1f} s)")
    self_test = None
    if a.self_test and "sidecar" in checks and checks["sidecar"]["mismatches"] == 0:
        self_test = self_test_compare(src, restored_sidecar, sparse_rel)
        log(f"{name}: self-test of the comparison: {'ok' if not self_test else self_test}")
    if not a.keep:
        for p in (restored_sidecar, restored_ref, restored_restic, restic_repo, restic_cache):
            rmtree(p)
    return {"steps": steps, "checks": checks, "fatal": fatal, "self_test": self_test, "bytes": nbytes,
            "backup_file": backup_file}


# ----------------------------------------------------------------------------------------------------
# Report
# ----------------------------------------------------------------------------------------------------
def floor2(x):
    return f"{math.floor(x * 100) / 100:.2f}"


def ceil1(x):
    return f"{math.ceil(x * 10) / 10:.1f}"


def md_table(head, rows):
    out = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
    out[0] = out[0].replace("tar|zstd|age", "tar\\|zstd\\|age")
    out += ["| " + " | ".join(str(c).replace("|", "\\|") for c in r) + " |" for r in rows]
    return "\n".join(out)


def step_rss(step, b):
    """Peak RSS in KiB: the measured one, or for a pipeline the largest per-run sum of its stages."""
    sums = [sum(v) for v in step.stage_rss if v]
    if sums:
        return max(sums)
    return b["rss_kib"] if b else None


def case_report(name, meta, res, a):
    steps, checks = res["steps"], res["checks"]
    nbytes = res["bytes"]
    lines = [f"### {name}", ""]
    if name == gen_state.CASE_STATE:
        cnt = meta.get("counts", {})
        sp = meta.get("sparse", {})
        lines.append(f"{nbytes / MIB:.1f} MiB apparent ({meta['allocated_bytes'] / MIB:.1f} MiB allocated), "
                     f"{meta['files']} files, {meta['dirs']} directories, {meta['symlinks']} symlinks "
                     f"(1 dangling), {cnt.get('hardlinks', 0)} hardlinks; "
                     f"{cnt.get('sqlite_dbs', 0)} SQLite databases in WAL mode ({cnt.get('sqlite_files', 0)} files with -wal/-shm), "
                     f"{cnt.get('transcripts', 0)} JSONL transcripts, {cnt.get('workspace_files', 0)} workspace files, "
                     f"{cnt.get('media_files', 0)} random media files, sparse `{sp.get('path')}` "
                     f"{sp.get('apparent_bytes', 0) / MIB:.0f} MiB apparent / {sp.get('data_bytes', 0) / MIB:.1f} MiB data.")
    else:
        lines.append(f"{meta['files']} files of 100–2000 bytes ({nbytes / MIB:.1f} MiB apparent, "
                     f"{meta['allocated_bytes'] / MIB:.1f} MiB allocated) in {meta['dirs']} directories.")
    lines.append("")
    rows = []
    for key in ("sidecar backup", "tar|zstd|age backup", "restic backup",
                "sidecar restore", "tar|zstd|age restore", "restic restore"):
        st = steps[key]
        b = st.best()
        if b is None:
            rows.append([f"{st.tool} {st.op}", "—", "—", "—", "—", "—", st.error or "not run"])
            continue
        rss = step_rss(st, b)
        out = st.output_bytes if st.op == "backup" else None
        note = f"best of {b['runs']}: {', '.join(f'{w:.2f}' for w in b['walls'])}"
        if st.stage_rss and any(st.stage_rss):
            note += "; RSS = sum of stages " + "+".join(ceil1(v / 1024) for v in max((x for x in st.stage_rss if x), key=sum))
        if st.note:
            note += "; " + st.note
        rows.append([f"{st.tool} {st.op}", f"{b['wall']:.2f}", f"{nbytes / MIB / b['wall']:.1f}",
                     f"{b['cpu']:.2f}" if b["cpu"] is not None else "n/a",
                     ceil1(rss / 1024) if rss is not None else "n/a",
                     f"{out / MIB:.1f}" if out is not None else "", note])
    lines.append(md_table(["tool", "wall s", "MiB/s", "CPU s", "peak RSS MiB", "output MiB", "runs (wall s)"], rows))
    loads = [x for st in steps.values() for r in st.runs for x in (r.get("load1_before"), r.get("load1_after")) if x is not None]
    if loads:
        lines.append("")
        lines.append(f"1-minute load average around the runs: {min(loads):.2f}–{max(loads):.2f} "
                     f"(on {os.cpu_count()} cores; above 1 per core means other work competed for the CPU).")
    lines.append("")

    ratios = {}
    rrows = []
    for op in ("backup", "restore"):
        side = steps[f"sidecar {op}"].best()
        for ref in ("tar|zstd|age", "restic"):
            rb = steps[f"{ref} {op}"].best()
            if side and rb:
                ratios[(op, ref)] = rb["wall"] / side["wall"]
                rrows.append([op, ref, f"{floor2(ratios[(op, ref)])}×", f"{rb['wall']:.2f} / {side['wall']:.2f}"])
            else:
                rrows.append([op, ref, "—", "not measured"])
    lines.append(md_table(["operation", "reference", "sidecar speed × (reference wall / sidecar wall)", "walls s"], rrows))
    lines.append("")

    chk_rows = []
    for tool in ("sidecar", "tar|zstd|age", "restic"):
        ch = checks.get(tool)
        if ch is None:
            chk_rows.append([tool, "—", "—", "—", "—"])
            continue
        by = ", ".join(f"{k} {v}" for k, v in sorted(ch["by_attr"].items())) or "none"
        sp = ch["sparse_allocated"]
        chk_rows.append([tool, f"{ch['mismatches']} ({by})", ch["entries"],
                         f"{ch['hardlinks_kept']}/{ch['hardlinks_total']}" if ch["hardlinks_total"] else "n/a",
                         f"{sp / MIB:.1f}" if sp is not None else "n/a"])
    lines.append("Restore vs source (paths, type, size, mode, mtime ns, symlink target, SHA-256):")
    lines.append("")
    lines.append(md_table(["restored by", "mismatches", "entries compared", "hardlinked files kept linked",
                           "sparse file allocated MiB"], chk_rows))
    side_ex = checks.get("sidecar", {}).get("examples") or []
    if side_ex:
        lines += ["", "sidecar mismatches (first 25):", ""] + [f"- `{e}`" for e in side_ex]
    ref_ex = checks.get("tar|zstd|age", {}).get("examples") or []
    if ref_ex:
        lines += ["", f"tar|zstd|age mismatches, e.g.: `{ref_ex[0]}`"]
    lines.append("")

    # targets
    sb, sr = steps["sidecar backup"].best(), steps["sidecar restore"].best()
    targets = []

    def target(label, ok, measured, goal):
        targets.append({"case": name, "target": label, "pass": bool(ok), "measured": measured, "goal": goal})

    rb = ratios.get(("backup", "tar|zstd|age"))
    target("backup speed vs tar|zstd|age", rb is not None and rb >= TARGET_RATIO,
           f"{floor2(rb)}×" if rb is not None else "not measured", "≥ 1.0×")
    rr = ratios.get(("restore", "tar|zstd|age"))
    target("restore speed vs tar|zstd|age", rr is not None and rr >= TARGET_RATIO,
           f"{floor2(rr)}×" if rr is not None else "not measured", "≥ 1.0×")
    rss = [x["rss_kib"] for x in (sb, sr) if x and x["rss_kib"] is not None]
    peak = max(rss) / 1024 if rss else None
    target("sidecar peak RSS (backup and restore)", peak is not None and peak <= TARGET_RSS_MIB,
           f"{ceil1(peak)} MiB" if peak is not None else "not measured", f"≤ {TARGET_RSS_MIB:.0f} MiB")
    ch = checks.get("sidecar")
    target("restore exact", ch is not None and ch["mismatches"] == 0,
           f"{ch['mismatches']} mismatches" if ch else "not checked", "0 mismatches")
    return "\n".join(lines), targets, ratios


def build_report(a, machine, cases_meta, results, commands, gen_seconds):
    lines = ["# Backup benchmark", ""]
    lines.append(f"Machine: {machine['cores']} cores ({machine['cpu']}), {machine['mem_gib']:.1f} GiB RAM, "
                 f"Linux {machine['kernel']}, file system of OUT: {machine['fs']}. Python {platform.python_version()}.")
    lines.append(f"Tools: {machine['versions']}.")
    lines.append(f"Settings: zstd level {a.level}, best of {a.runs} run(s) by wall time, warm page cache, "
                 f"peak RSS = largest over the runs (pipelines: sum of the stages' peaks). MiB/s = apparent source bytes "
                 f"(regular files, hardlinked data once, the sparse file at its apparent size) / wall. "
                 f"Ratios are rounded down, RSS up.")
    lines.append("")
    all_targets = []
    for name, res in results.items():
        text, targets, _ = case_report(name, cases_meta[name], res, a)
        lines += [text, ""]
        all_targets += targets
    lines += ["## Targets", ""]
    lines.append(md_table(["case", "target", "goal", "measured", "result"],
                          [[t["case"], t["target"], t["goal"], t["measured"], "PASS" if t["pass"] else "MISS"]
                           for t in all_targets]))
    lines.append("")
    lines += ["## Commands", "", "```sh"] + commands + ["```", ""]
    if gen_seconds:
        lines.append("Generation: " + ", ".join(f"{k} {v:.1f} s" for k, v in gen_seconds.items()) + ".")
        lines.append("")
    return "\n".join(lines), all_targets


def machine_info(out, sidecar, restic):
    fs = "?"
    try:
        fs = subprocess.run(["stat", "-f", "-c", "%T", out], capture_output=True, text=True).stdout.strip() or "?"
    except OSError:
        pass
    versions = [version_of([sidecar, "--version"]), version_of(["tar", "--version"]),
                version_of(["zstd", "--version"]), "age " + version_of(["age", "--version"])]
    if restic:
        versions.append(version_of([restic, "version"]))
    return {**host_basics(), "fs": fs, "versions": "; ".join(versions)}


# ----------------------------------------------------------------------------------------------------
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size-mb", type=float, default=None, help="apparent size of the OpenClaw state (default 1024)")
    ap.add_argument("--small-files", type=int, default=None, help="files in the small-files case (default 200000; 0 = skip)")
    ap.add_argument("--runs", type=int, default=None, help="runs per step, best wall time counts (default 3)")
    ap.add_argument("--level", type=int, default=3, help="zstd level for sidecar and the reference (default 3)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default=os.path.join(ROOT, "bench-out", "backup"))
    ap.add_argument("--sidecar", help="sidecar binary (default: cargo build --release, target/release/sidecar)")
    ap.add_argument("--quick", action="store_true", help="--size-mb 32 --small-files 2000 --runs 1")
    ap.add_argument("--self-test", action="store_true", help="--quick plus a check of the tree comparison")
    ap.add_argument("--skip-restic", action="store_true")
    ap.add_argument("--regenerate", action="store_true", help="regenerate the cases even when state.json matches")
    ap.add_argument("--repeat-limit", type=float, default=60.0,
                    help="a step whose first run takes longer than this many seconds is not repeated (default 60)")
    ap.add_argument("--keep", action="store_true", help="keep restored trees and the restic repository")
    a = ap.parse_args(argv)
    quick = a.quick or a.self_test
    a.size_mb = a.size_mb if a.size_mb is not None else (32 if quick else 1024)
    a.small_files = a.small_files if a.small_files is not None else (2000 if quick else 200000)
    a.runs = a.runs if a.runs is not None else (1 if quick else 3)
    out = os.path.abspath(a.out)
    os.makedirs(out, exist_ok=True)

    missing = [t for t in ("tar", "zstd", "age", "age-keygen", "bash") if not shutil.which(t)]
    if missing:
        log(f"missing: {', '.join(missing)} (Debian: apt-get install age zstd tar bash)")
        return 1

    # 1. sidecar
    sidecar, err = sidecar_binary(a.sidecar, ROOT, out, log)
    if err:
        log(err)
        return 1
    restic, a.restic_note = ensure_restic(a.skip_restic)

    # 2. data and key
    data = os.path.join(out, "data")
    meta = gen_state.ensure(data, a.size_mb, a.seed, a.small_files, a.regenerate, log=log)
    cases = []
    if a.size_mb > 0:
        cases.append(gen_state.CASE_STATE)
    if a.small_files > 0:
        cases.append(gen_state.CASE_SMALL)
    gen_seconds = {c: meta["cases"][c].get("generate_seconds", 0.0) for c in cases}
    key, recipient = make_key(out)
    machine = machine_info(out, sidecar, restic)
    log(f"{machine['cores']} cores; {machine['versions']}")

    results = {}
    for c in cases:
        src = os.path.join(data, c)
        results[c] = run_case(c, src, meta["cases"][c], a, sidecar, key, recipient, restic, os.path.join(out, "work", c))

    commands = [f"# {machine['cores']} cores; SRC = {os.path.join(data, '<case>')}; KEY = {key}; RECIPIENT = {recipient}"]
    res_file = lambda r: r["backup_file"] or "\0"  # noqa: E731
    commands[0] += f"; WORK = {os.path.join(out, 'work', '<case>')}"
    seen = set()
    for c in cases:
        for st in results[c]["steps"].values():
            cmd = st.command.replace(res_file(results[c]), "<path printed by sidecar backup>").replace(os.path.join(out, "work", c), "WORK").replace(os.path.join(data, c), "SRC")
            if cmd and cmd not in seen:
                seen.add(cmd)
                commands.append(cmd)
    report, targets = build_report(a, machine, {c: meta["cases"][c] for c in cases}, results, commands, gen_seconds)
    with open(os.path.join(out, "results.md"), "w") as fh:
        fh.write(report)
    js = {"settings": {"size_mb": a.size_mb, "small_files": a.small_files, "runs": a.runs, "level": a.level, "seed": a.seed},
          "machine": machine, "targets": targets, "cases": {}}
    for c in cases:
        res = results[c]
        js["cases"][c] = {
            "source": {k: v for k, v in meta["cases"][c].items() if k != "links"},
            "steps": {k: {"command": s.command, "runs": s.runs, "best": s.best(), "error": s.error,
                          "output_bytes": s.output_bytes, "stage_rss_kib": s.stage_rss, "note": s.note}
                      for k, s in res["steps"].items()},
            "checks": res["checks"], "self_test": res["self_test"], "fatal": res["fatal"]}
    with open(os.path.join(out, "results.json"), "w") as fh:
        json.dump(js, fh, indent=2)
    print(report)
    log(f"wrote {os.path.join(out, 'results.md')} and results.json")
    if any(results[c]["fatal"] for c in cases):
        log("sidecar failed: " + "; ".join(results[c]["fatal"] for c in cases if results[c]["fatal"]))
        return 1
    if a.self_test:
        probs = [p for c in cases for p in (results[c]["self_test"] or [])]
        ran = any(results[c]["self_test"] is not None for c in cases)
        if probs or not ran:
            log(f"self-test failed: {probs or 'it did not run (sidecar restore not exact)'}")
            return 3
        log("self-test ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
