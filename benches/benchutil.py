"""Helpers shared by the benchmark scripts (standard library only)."""
from __future__ import annotations

import os
import subprocess
import tempfile
import time

TIME_BIN = "/usr/bin/time"


def run_measured(argv, *, env=None, stdout=None, stderr=None, cwd=None):
    """Run argv; -> dict(wall, rss_kib, user, sys, rc). Peak RSS from /usr/bin/time, else wait4."""
    out = open(stdout or os.devnull, "wb")
    err = open(stderr or os.devnull, "wb")
    try:
        if os.access(TIME_BIN, os.X_OK):
            fd, tf = tempfile.mkstemp(prefix="bench-time-")
            os.close(fd)
            t0 = time.perf_counter()
            p = subprocess.run([TIME_BIN, "-o", tf, "-f", "%e %M %U %S"] + argv, stdout=out, stderr=err, env=env, cwd=cwd)
            wall = time.perf_counter() - t0
            with open(tf) as fh:
                lines = [ln for ln in fh.read().splitlines() if ln.strip()]
            os.unlink(tf)
            try:
                _, rss, user, sys_ = lines[-1].split()
                rss, user, sys_ = int(rss), float(user), float(sys_)
            except (IndexError, ValueError):
                rss, user, sys_ = None, None, None
            return {"wall": wall, "rss_kib": rss, "user": user, "sys": sys_, "rc": p.returncode, "meter": "/usr/bin/time"}
        t0 = time.perf_counter()
        p = subprocess.Popen(argv, stdout=out, stderr=err, env=env, cwd=cwd)
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        return {"wall": wall, "rss_kib": ru.ru_maxrss, "user": ru.ru_utime, "sys": ru.ru_stime,
                "rc": os.waitstatus_to_exitcode(status), "meter": "wait4"}
    finally:
        out.close()
        err.close()


def host_basics():
    """-> dict(cores, cpu, mem_gib, kernel): what every benchmark report states about the machine."""
    import platform
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = 0.0
    try:
        with open("/proc/meminfo") as fh:
            mem = int(fh.readline().split()[1]) / (1 << 20)
    except (OSError, ValueError, IndexError):
        pass
    return {"cores": os.cpu_count(), "cpu": cpu, "mem_gib": mem, "kernel": platform.release()}


def sidecar_binary(given, root, out, log):
    """The sidecar binary to measure: `given`, or `cargo build --release` in `root` (output kept in
    OUT/cargo-build.log). -> (path, None) or (None, error message)."""
    if given:
        path = os.path.abspath(given)
    else:
        log("cargo build --release")
        r = subprocess.run(["cargo", "build", "--release"], cwd=root, capture_output=True, text=True)
        with open(os.path.join(out, "cargo-build.log"), "w") as fh:
            fh.write(r.stdout + r.stderr)
        if r.returncode != 0:
            return None, "cargo build --release failed:\n" + r.stderr.strip()[-1500:]
        path = os.path.join(root, "target", "release", "sidecar")
    if not os.access(path, os.X_OK):
        return None, f"no sidecar binary at {path}"
    return path, None


def loadavg():
    """The 1-minute load average, or None."""
    try:
        with open("/proc/loadavg") as fh:
            return float(fh.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
