#!/usr/bin/env python3
"""Deterministic generator of a realistic OpenClaw state directory (what the `openclaw_data` volume holds),
for the backup benchmark (benches/backup_bench.py). Standard library only.

    python3 benches/gen_state.py --out DIR [--size-mb 1024] [--seed 1] [--small-files N] [--regenerate]

Writes up to two cases under DIR, each reused when DIR/state.json says it was made by the same
generator version with the same parameters:

* DIR/openclaw_data/ (unless --size-mb 0), about --size-mb MiB of apparent data:
  - `openclaw.json`, `.env`, `credentials/*.json` with mode 0600 (`credentials/` 0700);
  - SQLite databases in WAL mode made with Python's sqlite3 (`memory/main.sqlite`: text chunks and
    1536-byte embedding blobs; `tasks/tasks.sqlite`; `cron/runs.sqlite`). The last batch of rows of
    each is committed by a forked child that exits without closing its connection (as a running
    gateway would leave them), so `<db>-wal` and `<db>-shm` stay on disk. Their rows are
    deterministic; the WAL header salts and the -shm bytes are chosen by SQLite, so those bytes are not;
  - JSONL chat transcripts `agents/<id>/sessions/<uuid>.jsonl` (one JSON object a line: user and
    assistant messages, tool calls and tool results, usage), plus `agents/<id>/sessions.json`;
  - `workspace/`: many small files (markdown, Python, TypeScript, JSON) in nested directories;
  - `media/`: incompressible random bytes with JPEG/PNG/MP4 magic, 100 KB to 5 MB each;
  - `sandbox/disk.img`: a sparse file (apparent size min(256 MiB, size/4), about 1.5% of it data);
  - hardlinks (a media file, a transcript, a workspace file) and relative symlinks (a directory, a
    file, and one dangling);
  - deterministic mtimes with nanosecond fractions on every entry (symlinks and directories too).
* DIR/small_files/ (when --small-files N > 0): N tiny text files of 100–2000 bytes, 100 per directory.

DIR/state.json describes both (generator version, size, seed, counts, apparent and allocated bytes).
Everything except the SQLite WAL salts and -shm bytes is the same for the same seed and size.
Memory stays small: files are written in chunks of at most 1 MiB.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import sys
import random
import stat
import time

GENERATOR_VERSION = 1
MIB = 1 << 20
BASE_MTIME = 1_764_000_000  # 2025-11-24
CASE_STATE = "openclaw_data"
CASE_SMALL = "small_files"

WORDS = ("the a to of and in is for that it on with as this be you are at by or from not can have will we your "
         "an if but all so do what my they use file run more one check error need new config just our when also "
         "tool output agent session user message channel gateway model token request response container docker "
         "volume backup restore memory search result function return value string list update build test deploy "
         "server client api endpoint status log line time date task schedule cron job queue retry timeout "
         "telegram discord slack whatsapp signal webhook browser page screenshot image video audio transcript "
         "workspace project repository branch commit merge diff patch issue pull review comment note summary "
         "plan step next done failed success warning info debug trace stack python typescript node rust bash "
         "shell command script install package version release changelog readme docs example usage option flag "
         "default path directory folder write read open close create delete move copy rename permission owner "
         "group mode size bytes kilobytes megabytes hash checksum encrypt decrypt key secret password account "
         "email calendar meeting reminder weather price stock news article link url domain host port network "
         "database table row column index query insert select where order limit json yaml toml markdown html css "
         "please thanks sure here let me look into that I will now first then after before because however "
         "maybe probably should could would might must really quite very much many few some any each every other "
         "same different important simple complex quick slow fast small large big little good bad better best "
         "Monday Tuesday Wednesday Thursday Friday morning afternoon evening tonight tomorrow yesterday week month").split()
# Zipf-like weights: common words much more frequent, so text compresses like prose (about 3x with zstd -3).
CUM = []
_acc = 0.0
for _i in range(len(WORDS)):
    _acc += 1.0 / (_i + 1.5)
    CUM.append(_acc)
TOOLS = ("exec", "read", "write", "edit", "web_search", "web_fetch", "browser", "message", "cron", "memory_search",
         "image", "sessions_send")
CODE_LINES = (
    "import os", "import json", "from pathlib import Path", "def main(argv=None):", "    return 0",
    "    for item in items:", "        if item is None:", "            continue", "    data = json.load(fh)",
    "export async function handler(req: Request): Promise<Response> {", "  const body = await req.json();",
    "  return new Response(JSON.stringify(result), { status: 200 });", "}", "const config = loadConfig();",
    "if (!token) throw new Error('missing token');", "    print(f\"{name}: {value}\")", "class Store:",
    "    def __init__(self, path):", "        self.path = path", "#!/usr/bin/env bash", "set -euo pipefail",
    "docker compose up -d", "curl -fsSL https://example.com/install.sh | sh", "SELECT id, title FROM notes;",
)


def words(rng, n):
    return " ".join(rng.choices(WORDS, cum_weights=CUM, k=n))


def sentence_block(rng, n_words):
    out, left = [], n_words
    while left > 0:
        k = min(left, rng.randint(6, 22))
        s = words(rng, k)
        out.append(s[0].upper() + s[1:] + rng.choice((".", ".", ".", "?", "!", ":")))
        left -= k
    return " ".join(out)


def code_block(rng, n_lines):
    return "\n".join(rng.choice(CODE_LINES) for _ in range(n_lines))


def hexid(rng, n):
    return "%0*x" % (n, rng.getrandbits(4 * n))


def uuid4(rng):
    h = hexid(rng, 32)
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) % 4]}{h[17:20]}-{h[20:]}"


def iso(ts):
    ms = int((ts - int(ts)) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(int(ts))) + f".{ms:03d}Z"


class Gen:
    def __init__(self, root, rng):
        self.root, self.rng = root, rng
        self.counts = {}
        self.mtimes = {}  # rel -> ns, applied at the end (directories after their content)

    def count(self, what, n=1):
        self.counts[what] = self.counts.get(what, 0) + n

    def path(self, rel):
        p = os.path.join(self.root, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        return p

    def stamp(self, rel):
        self.mtimes[rel] = (BASE_MTIME + self.rng.randint(0, 30 * 86400)) * 1_000_000_000 + self.rng.randint(0, 999_999_999)

    def write(self, rel, data, mode=0o644):
        p = self.path(rel)
        with open(p, "wb") as fh:
            fh.write(data)
        os.chmod(p, mode)
        self.stamp(rel)
        return len(data)

    def write_random(self, rel, size, magic=b"", mode=0o644):
        p = self.path(rel)
        with open(p, "wb") as fh:
            fh.write(magic)
            left = size - len(magic)
            while left > 0:
                n = min(left, MIB)
                fh.write(self.rng.randbytes(n))
                left -= n
        os.chmod(p, mode)
        self.stamp(rel)
        return size

    def finish(self):
        """Apply mtimes: files and symlinks, then directories deepest first, the root last."""
        dirs = []
        for dp, dns, _ in os.walk(self.root):
            for d in dns:
                dirs.append(os.path.relpath(os.path.join(dp, d), self.root))
        for rel, ns in self.mtimes.items():
            os.utime(os.path.join(self.root, rel), ns=(ns, ns), follow_symlinks=False)
        for rel in sorted(dirs, key=lambda r: (-r.count(os.sep), r)):
            ns = (BASE_MTIME + 31 * 86400 + self.rng.randint(0, 86400)) * 1_000_000_000 + self.rng.randint(0, 999_999_999)
            os.utime(os.path.join(self.root, rel), ns=(ns, ns), follow_symlinks=False)
        os.utime(self.root, ns=(BASE_MTIME * 1_000_000_000 + 123_456_789,) * 2)


# ----------------------------------------------------------------------------------------------------
# The mixed OpenClaw state
# ----------------------------------------------------------------------------------------------------
def gen_config(g: Gen):
    rng = g.rng
    cfg = {
        "meta": {"lastTouchedVersion": "2026.1.29", "lastTouchedAt": iso(BASE_MTIME + 3600)},
        "gateway": {"mode": "local", "port": 18789, "bind": "loopback",
                    "auth": {"mode": "token", "token": hexid(rng, 48)}},
        "agents": {"defaults": {"model": {"primary": "anthropic/claude-opus-4-5"}, "workspace": "/data/workspace",
                                "sandbox": {"mode": "non-main"}},
                   "list": [{"id": "main"}, {"id": "research"}, {"id": "ops"}]},
        "channels": {"telegram": {"enabled": True, "botToken": f"{rng.randint(10**9, 10**10 - 1)}:AA{hexid(rng, 33)}",
                                  "dmPolicy": "pairing"},
                     "discord": {"enabled": False}},
        "tools": {"web": {"search": {"provider": "brave", "apiKey": "BSA" + hexid(rng, 28)}}},
    }
    g.write("openclaw.json", (json.dumps(cfg, indent=2) + "\n").encode(), 0o600)
    env = "".join(f"{k}={v}\n" for k, v in (
        ("ANTHROPIC_API_KEY", "sk-ant-api03-" + hexid(rng, 80)),
        ("OPENAI_API_KEY", "sk-proj-" + hexid(rng, 48)),
        ("OPENCLAW_GATEWAY_TOKEN", hexid(rng, 48)),
        ("TZ", "Europe/Berlin"),
    ))
    g.write(".env", env.encode(), 0o600)
    for name in ("telegram-allowFrom.json", "whatsapp/creds.json", "oauth.json", "anthropic-auth.json"):
        body = {"version": 1, "createdAt": iso(BASE_MTIME), "token": hexid(rng, 64), "refresh": hexid(rng, 64),
                "allow": [str(rng.randint(10**8, 10**9)) for _ in range(rng.randint(1, 4))]}
        g.write(f"credentials/{name}", (json.dumps(body, indent=2) + "\n").encode(), 0o600)
        g.count("credentials")
    for d in ("credentials", "credentials/whatsapp"):
        os.chmod(os.path.join(g.root, d), 0o700)
    g.write("identity/device.json", json.dumps({"deviceId": uuid4(rng), "publicKey": hexid(rng, 64)}).encode(), 0o600)


def sqlite_db(g: Gen, rel, schema, row_fn, target_bytes, wal_rows):
    """A WAL-mode database of about target_bytes; the last wal_rows rows stay in the -wal file."""
    p = g.path(rel)
    for suffix in ("", "-wal", "-shm", "-journal"):
        if os.path.exists(p + suffix):
            os.unlink(p + suffix)
    con = sqlite3.connect(p)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=OFF")
    con.executescript(schema)
    insert = None
    sizes = n = 0
    batch = []
    while sizes < target_bytes:
        row, size = row_fn(n)
        insert = insert or "INSERT INTO t VALUES (" + ",".join("?" * len(row)) + ")"
        batch.append(row)
        sizes += size
        n += 1
        if len(batch) == 2000:
            con.executemany(insert, batch)
            con.commit()
            batch = []
    con.executemany(insert, batch)
    con.commit()
    con.close()  # the last connection checkpoints the WAL and removes <db>-wal and <db>-shm
    tail = [row_fn(n + i)[0] for i in range(wal_rows)]
    n += wal_rows
    # The rest is committed by a child that exits without closing (like a running gateway): the WAL
    # is not checkpointed, so <db>-wal and <db>-shm remain.
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            c = sqlite3.connect(p)
            c.execute("PRAGMA wal_autocheckpoint=0")
            c.execute("PRAGMA synchronous=OFF")
            c.executemany(insert, tail)
            c.commit()
            code = 0
        finally:
            os._exit(code)  # no close, no checkpoint
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"sqlite child for {rel} failed")
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(p + suffix):
            g.stamp(rel + suffix)
            os.chmod(p + suffix, 0o644)
            g.count("sqlite_files")
    g.count("sqlite_rows", n)
    g.count("sqlite_dbs")


def gen_sqlite(g: Gen, budget):
    rng = g.rng

    def memory_row(i):
        text = sentence_block(rng, rng.randint(60, 220))
        emb = rng.randbytes(1536)
        return (i, f"memory/{rng.randint(2025, 2026)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}.md",
                rng.randint(1, 400), text, emb, hexid(rng, 64), BASE_MTIME + i), len(text) + 1536 + 120

    def task_row(i):
        body = json.dumps({"prompt": sentence_block(rng, rng.randint(10, 60)), "channel": rng.choice(("telegram", "cron", "web")),
                           "attempts": rng.randint(0, 3)})
        return (i, uuid4(rng), rng.choice(("queued", "running", "done", "failed")), body,
                sentence_block(rng, rng.randint(5, 80)), BASE_MTIME + i * 7), len(body) + 300

    def cron_row(i):
        out = sentence_block(rng, rng.randint(20, 120))
        return (i, f"job-{rng.randint(1, 40)}", BASE_MTIME + i * 60, rng.randint(0, 1), rng.randint(20, 90000), out), len(out) + 60

    sqlite_db(g, "memory/main.sqlite",
              "CREATE TABLE t (id INTEGER PRIMARY KEY, path TEXT, line INTEGER, text TEXT, embedding BLOB, hash TEXT, updated_at INTEGER);"
              "CREATE INDEX t_path ON t(path);", memory_row, budget * 0.55, 300)
    sqlite_db(g, "tasks/tasks.sqlite",
              "CREATE TABLE t (id INTEGER PRIMARY KEY, uuid TEXT, state TEXT, input TEXT, result TEXT, created_at INTEGER);"
              "CREATE INDEX t_state ON t(state);", task_row, budget * 0.30, 500)
    sqlite_db(g, "cron/runs.sqlite",
              "CREATE TABLE t (id INTEGER PRIMARY KEY, job TEXT, started_at INTEGER, ok INTEGER, duration_ms INTEGER, output TEXT);",
              cron_row, budget * 0.15, 400)
    g.write("cron/jobs.json", json.dumps({"version": 1, "jobs": [
        {"id": f"job-{i}", "schedule": f"{rng.randint(0, 59)} {rng.randint(0, 23)} * * *", "agentId": "main",
         "message": words(rng, 12)} for i in range(1, 41)]}, indent=2).encode())


def transcript_line(rng, ts, sid, kind):
    if kind == "user":
        msg = {"role": "user", "content": [{"type": "text", "text": sentence_block(rng, rng.randint(5, 60))}]}
    elif kind == "assistant":
        content = [{"type": "text", "text": sentence_block(rng, rng.randint(20, 300))}]
        if rng.random() < 0.5:
            content.append({"type": "toolCall", "id": "toolu_" + hexid(rng, 24), "name": rng.choice(TOOLS),
                            "arguments": {"command": rng.choice(CODE_LINES), "path": f"/data/workspace/{words(rng, 1)}.md",
                                          "timeout": rng.choice((30, 60, 120))}})
        msg = {"role": "assistant", "content": content, "api": "anthropic-messages", "provider": "anthropic",
               "model": "claude-opus-4-5", "stopReason": rng.choice(("stop", "toolUse")),
               "usage": {"input": rng.randint(100, 90000), "output": rng.randint(10, 4000),
                         "cacheRead": rng.randint(0, 80000), "cacheWrite": 0, "totalTokens": rng.randint(200, 100000),
                         "cost": {"total": round(rng.random() / 10, 6)}}}
    else:
        text = code_block(rng, rng.randint(3, 60)) if rng.random() < 0.5 else sentence_block(rng, rng.randint(20, 400))
        msg = {"role": "toolResult", "toolCallId": "toolu_" + hexid(rng, 24), "toolName": rng.choice(TOOLS),
               "content": [{"type": "text", "text": text}], "isError": rng.random() < 0.05}
    rec = {"type": "message", "id": hexid(rng, 8), "parentId": hexid(rng, 8), "timestamp": iso(ts), "message": msg}
    return json.dumps(rec, ensure_ascii=False) + "\n"


def gen_transcripts(g: Gen, budget):
    rng = g.rng
    agents = ("main", "research", "ops")
    written = 0
    sessions = {a: {} for a in agents}
    first = None
    while written < budget:
        agent = rng.choices(agents, weights=(6, 3, 1))[0]
        sid = uuid4(rng)
        rel = f"agents/{agent}/sessions/{sid}.jsonl"
        size = min(budget - written, int(rng.paretovariate(1.2) * 60_000), 24 * MIB)
        ts = BASE_MTIME + rng.randint(0, 30 * 86400) + rng.random()
        p = g.path(rel)
        n = 0
        with open(p, "w", encoding="utf-8") as fh:
            head = json.dumps({"type": "session", "version": 3, "id": sid, "timestamp": iso(ts), "cwd": "/data/workspace"}) + "\n"
            fh.write(head)
            n += len(head.encode())
            buf, blen = [], 0
            while n < size:
                ts += rng.random() * 40
                line = transcript_line(rng, ts, sid, rng.choices(("user", "assistant", "tool"), weights=(2, 3, 2))[0])
                buf.append(line)
                blen += len(line)
                n += len(line.encode())
                if blen > 256 * 1024:
                    fh.write("".join(buf))
                    buf, blen = [], 0
            fh.write("".join(buf))
        os.chmod(p, 0o644)
        g.stamp(rel)
        sessions[agent][f"agent:{agent}:{sid[:8]}"] = {"sessionId": sid, "updatedAt": int(ts * 1000)}
        written += n
        g.count("transcripts")
        first = first or rel
    for a in agents:
        g.write(f"agents/{a}/sessions/sessions.json", (json.dumps(sessions[a], indent=2) + "\n").encode())
        g.write(f"agents/{a}/agent/auth-profiles.json",
                json.dumps({"profiles": {"anthropic:default": {"type": "api_key", "key": "sk-ant-" + hexid(rng, 40)}}}).encode(),
                0o600)
    return first


def gen_workspace(g: Gen, budget):
    rng = g.rng
    written = 0
    projects = [f"projects/{words(rng, 1)}-{i}" for i in range(max(3, int(budget // (8 * MIB))))]
    first = {}
    while written < budget:
        kind = rng.choices(("md", "py", "ts", "json", "txt"), weights=(4, 2, 2, 1, 1))[0]
        top = rng.random()
        if top < 0.25:
            rel_dir = rng.choice(("memory", "notes", "skills/" + words(rng, 1), "docs"))
        else:
            proj = rng.choice(projects)
            rel_dir = proj + "/" + "/".join(rng.choice(("src", "lib", "tests", "docs", "utils", "api", "components", "scripts"))
                                              for _ in range(rng.randint(0, 3)))
        name = f"{words(rng, 1)}_{hexid(rng, 4)}.{kind}"
        size = min(int(rng.lognormvariate(8.3, 1.0)), 256 * 1024)  # median about 4 KB
        if kind == "md":
            body = f"# {sentence_block(rng, 6)}\n\n" + "\n\n".join(sentence_block(rng, 40) for _ in range(max(1, size // 300)))
        elif kind in ("py", "ts"):
            body = code_block(rng, max(1, size // 30))
        elif kind == "json":
            body = json.dumps({"name": name, "items": [{"id": i, "title": words(rng, 5), "done": rng.random() < 0.5}
                                                       for i in range(max(1, size // 80))]}, indent=2)
        else:
            body = sentence_block(rng, max(1, size // 6))
        rel = f"workspace/{rel_dir}/{name}".replace("//", "/").rstrip("/")
        written += g.write(rel, (body + "\n").encode())
        g.count("workspace_files")
        first.setdefault(kind, rel)
    for name in ("AGENTS.md", "SOUL.md", "USER.md", "TOOLS.md", "HEARTBEAT.md", "MEMORY.md"):
        g.write(f"workspace/{name}", (f"# {name[:-3]}\n\n" + sentence_block(rng, 300) + "\n").encode())
    return projects, first


MAGIC = {"jpg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "png": b"\x89PNG\r\n\x1a\n", "mp4": b"\x00\x00\x00\x18ftypmp42",
         "ogg": b"OggS\x00\x02"}


def gen_media(g: Gen, budget):
    rng = g.rng
    written = 0
    rels = []
    while written < budget:
        ext = rng.choices(list(MAGIC), weights=(6, 2, 1, 1))[0]
        size = rng.randint(100_000, 5_000_000)
        if budget - written < size:
            size = max(100_000, budget - written)
        rel = f"media/{rng.choice(('inbound', 'outbound', 'browser'))}/{uuid4(rng)}.{ext}"
        written += g.write_random(rel, size, MAGIC[ext][:size])
        rels.append(rel)
        g.count("media_files")
    return rels


def gen_sparse(g: Gen, apparent):
    """A sparse file: `apparent` bytes long, 8 data extents (about 1.5% of it), holes elsewhere."""
    rel = "sandbox/disk.img"
    p = g.path(rel)
    data = 0
    with open(p, "wb") as fh:
        fh.truncate(apparent)
        chunk = max(4096, (apparent // 512) // 4096 * 4096)  # 1/512 of the size per extent
        for k in range(8):
            off = (apparent // 8) * k // 4096 * 4096
            fh.seek(off)
            fh.write(rng_text_or_random(g.rng, chunk, k))
            data += chunk
    os.chmod(p, 0o644)
    g.stamp(rel)
    g.count("sparse_files")
    return rel, data


def rng_text_or_random(rng, n, k):
    if k % 2:
        return rng.randbytes(n)
    b = (sentence_block(rng, n // 5) + "\n").encode()
    while len(b) < n:
        b += b
    return b[:n]


def gen_links(g: Gen, media, transcript, projects, ws_first):
    root = g.root
    links = []

    def hard(src, dst):
        os.makedirs(os.path.dirname(os.path.join(root, dst)), exist_ok=True)
        os.link(os.path.join(root, src), os.path.join(root, dst))
        links.append(("hardlink", dst, src))
        g.count("hardlinks")

    def sym(target, dst):
        os.makedirs(os.path.dirname(os.path.join(root, dst)), exist_ok=True)
        os.symlink(target, os.path.join(root, dst))
        g.stamp(dst)
        links.append(("symlink", dst, target))
        g.count("symlinks")

    hard(media[0], "media/outbound/forwarded-" + os.path.basename(media[0]))
    hard(transcript, "agents/main/sessions/archive/" + os.path.basename(transcript))
    hard(ws_first["md"], "workspace/notes/pinned.md")
    proj = next((p for p in projects if os.path.isdir(os.path.join(root, "workspace", p))), projects[0])
    sym(proj, "workspace/current")  # a directory symlink
    sym(os.path.relpath(os.path.join(root, transcript), os.path.join(root, "agents/main")), "agents/main/latest.jsonl")
    sym("../openclaw.json", "config/openclaw.json")
    sym("../nowhere/missing.md", "workspace/broken-link.md")  # dangling
    return links


def generate_state(out, size_mb, seed):
    if os.path.exists(out):
        shutil.rmtree(out)
    os.makedirs(out)
    rng = random.Random(f"openclaw-state/{seed}")
    g = Gen(out, rng)
    total = int(size_mb * MIB)
    sparse_apparent = min(256 * MIB, total // 4) // 4096 * 4096
    rest = total - sparse_apparent
    gen_config(g)
    gen_sqlite(g, rest * 0.16)
    transcript = gen_transcripts(g, rest * 0.26)
    projects, ws_first = gen_workspace(g, rest * 0.08)
    used = tree_bytes(out)[0]
    media = gen_media(g, max(200_000, rest - used))
    sparse_rel, sparse_data = gen_sparse(g, sparse_apparent)
    links = gen_links(g, media, transcript, projects, ws_first)
    g.finish()
    apparent, allocated, files, dirs, symlinks = tree_bytes(out)
    return {"dir": os.path.basename(out), "size_mb": float(size_mb), "seed": seed,
            "apparent_bytes": apparent, "allocated_bytes": allocated, "files": files, "dirs": dirs,
            "symlinks": symlinks, "counts": g.counts,
            "sparse": {"path": sparse_rel, "apparent_bytes": sparse_apparent, "data_bytes": sparse_data},
            "links": links}


def generate_small(out, n, seed):
    if os.path.exists(out):
        shutil.rmtree(out)
    os.makedirs(out)
    rng = random.Random(f"small-files/{seed}")
    g = Gen(out, rng)
    per_dir = 100
    for i in range(n):
        d = i // per_dir
        rel = f"d{d // 100:04d}/d{d % 100:02d}/f{i:07d}.{rng.choice(('md', 'json', 'txt', 'py'))}"
        size = rng.randint(100, 2000)
        body = (sentence_block(rng, size // 5 + 2)).encode()[:size]
        if i % per_dir == 0:
            os.makedirs(os.path.dirname(os.path.join(out, rel)), exist_ok=True)
        p = os.path.join(out, rel)
        with open(p, "wb") as fh:
            fh.write(body)
        ns = (BASE_MTIME + rng.randint(0, 30 * 86400)) * 1_000_000_000 + rng.randint(0, 999_999_999)
        os.utime(p, ns=(ns, ns))
    g.finish()
    apparent, allocated, files, dirs, symlinks = tree_bytes(out)
    return {"dir": os.path.basename(out), "small_files": n, "seed": seed, "apparent_bytes": apparent,
            "allocated_bytes": allocated, "files": files, "dirs": dirs, "symlinks": symlinks}


def tree_bytes(root):
    """(apparent bytes of regular files, hardlinked inodes once; allocated bytes; files; dirs; symlinks)."""
    seen = set()
    apparent = allocated = files = dirs = symlinks = 0
    for dp, dns, fns in os.walk(root):
        for name in dns + fns:
            st = os.lstat(os.path.join(dp, name))
            if stat.S_ISLNK(st.st_mode):
                symlinks += 1
            elif stat.S_ISDIR(st.st_mode):
                dirs += 1
            elif stat.S_ISREG(st.st_mode):
                files += 1
                if st.st_nlink > 1:
                    if (st.st_dev, st.st_ino) in seen:
                        continue
                    seen.add((st.st_dev, st.st_ino))
                apparent += st.st_size
                allocated += st.st_blocks * 512
    return apparent, allocated, files, dirs, symlinks


def ensure(out, size_mb=1024.0, seed=1, small_files=0, regenerate=False, log=None):
    """Generate (or reuse) the cases in `out`; -> the state.json dict."""
    log = log or (lambda m: print(f"[gen_state] {m}", file=sys.stderr, flush=True))
    os.makedirs(out, exist_ok=True)
    meta_path = os.path.join(out, "state.json")
    try:
        meta = json.load(open(meta_path))
        if meta.get("version") != GENERATOR_VERSION:
            meta = {}
    except (OSError, ValueError):
        meta = {}
    meta.update({"generator": "benches/gen_state.py", "version": GENERATOR_VERSION})
    cases = meta.setdefault("cases", {})
    if size_mb > 0:
        c = cases.get(CASE_STATE)
        d = os.path.join(out, CASE_STATE)
        if not regenerate and c and c.get("size_mb") == float(size_mb) and c.get("seed") == seed and os.path.isdir(d):
            log(f"reusing {d} ({c['apparent_bytes']} bytes apparent, seed {seed})")
        else:
            cases.pop(CASE_STATE, None)
            json.dump(meta, open(meta_path, "w"), indent=2)
            log(f"generating {size_mb} MiB OpenClaw state (seed {seed}) in {d}")
            t0 = time.perf_counter()
            cases[CASE_STATE] = generate_state(d, size_mb, seed)
            cases[CASE_STATE]["generate_seconds"] = round(time.perf_counter() - t0, 2)
            json.dump(meta, open(meta_path, "w"), indent=2)
    if small_files > 0:
        c = cases.get(CASE_SMALL)
        d = os.path.join(out, CASE_SMALL)
        if not regenerate and c and c.get("small_files") == small_files and c.get("seed") == seed and os.path.isdir(d):
            log(f"reusing {d} ({c['files']} files, seed {seed})")
        else:
            cases.pop(CASE_SMALL, None)
            json.dump(meta, open(meta_path, "w"), indent=2)
            log(f"generating {small_files} small files (seed {seed}) in {d}")
            t0 = time.perf_counter()
            cases[CASE_SMALL] = generate_small(d, small_files, seed)
            cases[CASE_SMALL]["generate_seconds"] = round(time.perf_counter() - t0, 2)
            json.dump(meta, open(meta_path, "w"), indent=2)
    return meta


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="directory to write the cases and state.json into")
    ap.add_argument("--size-mb", type=float, default=1024, help="apparent size of the OpenClaw state (0: skip it)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--small-files", type=int, default=0, help="also make a tree of N tiny files (default 0: none)")
    ap.add_argument("--regenerate", action="store_true", help="generate even when state.json matches")
    a = ap.parse_args(argv)
    meta = ensure(a.out, a.size_mb, a.seed, a.small_files, a.regenerate)
    for name, c in meta["cases"].items():
        print(f"{name}: {c['apparent_bytes'] / MIB:.1f} MiB apparent, {c['allocated_bytes'] / MIB:.1f} MiB allocated, "
              f"{c['files']} files, {c['dirs']} dirs, {c['symlinks']} symlinks")
    return 0


if __name__ == "__main__":
    sys.exit(main())
