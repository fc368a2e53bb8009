#!/usr/bin/env python3
"""The labelled detection suite: positives and negatives for every secret family in every syntax.

    python3 benches/detect_suite.py --out DIR [--seed S]     # write DIR/plain, DIR/docker, DIR/truth.jsonl
    python3 benches/detect_suite.py --list                   # families, syntaxes and counts

Written for sidecar's detection benchmark (benches/detect.py), from what the open-source scanners
document in their rule definitions (gitleaks, betterleaks, noseyparker, kingfisher: token shapes, length
variants, keywords, and the false-positive traps in their allowlists and negative examples), rewritten
here as generators: no case is copied from another project.

Every case is one line of text. A positive names the characters that must be masked (`secret`) and those
a mask may cover (`allowed`: the value, never its name or a neighbour); a negative must produce no finding
at all. The same cases are written twice:

    DIR/plain/suite.log                                         one case per line
    DIR/docker/containers/<id>/<id>-json.log                    each case as a json-file entry
    DIR/truth.jsonl                                             one record per case, in line order

A truth record: {"n", "family", "syntax", "kind": "pos"|"neg", "label", "secret": [s, e] | null,
"allowed": [s, e] | null, "plain": [s, e] | null, "docker": [s, e] | null, "docker_allowed", "plain_allowed"}
where `secret`/`allowed` are character offsets in the line and `plain`/`docker` the byte offsets of the
secret in the line as written in each file (the json-file line escapes the text as Docker does).

Only the standard library is used. Same arguments => byte-identical output.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import random
import string
import sys
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from gen_corpus import dq, js  # noqa: E402  (Docker's and JSON.stringify's escaping)

SUITE_VERSION = 1
DIG = string.digits
LOW = string.ascii_lowercase
UP = string.ascii_uppercase
ALNUM = string.ascii_letters + DIG
URLSAFE = ALNUM + "-_"
HEX = "0123456789abcdef"
B64 = UP + LOW + DIG + "+/"
B32 = UP + "234567"
ESC = "\x1b"

# A random value that no placeholder check could mistake for a fake: no word a fake is made of, no long
# run of one character, no ascending run, a letter and a digit.
_FAKE_WORDS = ("test", "example", "sample", "dummy", "fake", "xxx", "placeholder", "redact", "changeme", "your",
               "abcd", "bcde", "cdef", "1234", "2345", "3456", "4567", "5678", "6789", "0000", "secret", "token",
               "passw", "here", "insert", "replace", "mock", "demo")


def rs(r: random.Random, alphabet: str, n: int) -> str:
    return "".join(r.choices(alphabet, k=n))


def rsafe(r: random.Random, alphabet: str, n: int, need_digit=True) -> str:
    while True:
        v = rs(r, alphabet, n)
        low = v.lower()
        if any(w in low for w in _FAKE_WORDS):
            continue
        if any(v[i] == v[i + 1] == v[i + 2] == v[i + 3] for i in range(len(v) - 3)):
            continue
        if need_digit and not (any(c.isdigit() for c in v) and any(c.isalpha() for c in v)):
            continue
        return v


def b62(n: int, width: int) -> str:
    chars = DIG + UP + LOW
    out = ""
    while n:
        n, d = divmod(n, 62)
        out = chars[d] + out
    return out.rjust(width, "0")


def b64url(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).decode().rstrip("=")


def digits(r, n):
    return str(r.randint(10 ** (n - 1), 10 ** n - 1))


def uuid4(r):
    h = rs(r, HEX, 32)
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{r.choice('89ab')}{h[17:20]}-{h[20:]}"


# ----------------------------------------------------------------------------------------------------
# Names: one family's name for a value in each naming style
# ----------------------------------------------------------------------------------------------------
class Names:
    def __init__(self, *words, header=None):
        w = [x.lower() for x in words]
        self.fam = w[0]
        self.ENV = "_".join(x.upper() for x in w)
        self.snake = "_".join(w)
        self.kebab = "-".join(w)
        self.dotted = ".".join(w)
        self.camel = w[0] + "".join(x.capitalize() for x in w[1:])
        self.Pascal = "".join(x.capitalize() for x in w)
        # header lines: "<name>: {V}" forms, most specific first
        self.header = header or ["Authorization: Bearer {V}", "x-api-key: {V}"]

    def fill(self, tpl: str) -> str:
        for k in ("ENV", "snake", "kebab", "dotted", "camel", "Pascal", "fam"):
            tpl = tpl.replace("{" + k + "}", getattr(self, k))
        return tpl


# ----------------------------------------------------------------------------------------------------
# Syntaxes: templates with one {V}; the value is escaped as the syntax requires (`esc`)
# ----------------------------------------------------------------------------------------------------
def _xml(v):
    return v.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


ESCAPES = {
    "json": js,
    "json-esc": lambda v: js(js(v)),
    "json-esc2": lambda v: js(js(js(v))),
    "xml-elem": _xml,
    "xml-attr": _xml,
}

SYNTAXES = {
    "env": ["{ENV}={V}", "{ENV}='{V}'", '{ENV}="{V}"'],
    "export": ["export {ENV}={V}", 'export {ENV}="{V}"', 'declare -x {ENV}="{V}"'],
    "json": ['{"level":30,"time":1764188337000,"msg":"provider config","{camel}":"{V}"}',
             '{"{snake}": "{V}", "timeout": 30}',
             '{"config":{"providers":{"{fam}":{"{camel}":"{V}","enabled":true}}}}'],
    "json-esc": ['{"level":50,"err":"{\\"{camel}\\":\\"{V}\\",\\"retry\\":true}"}',
                 '{"msg":"request body","body":"{\\"{snake}\\": \\"{V}\\"}"}'],
    "json-esc2": ['{"msg":"upstream error","detail":"{\\"body\\":\\"{\\\\\\"{camel}\\\\\\":\\\\\\"{V}\\\\\\"}\\"}"}',
                  '{"err":"{\\"cause\\":\\"{\\\\\\"{snake}\\\\\\": \\\\\\"{V}\\\\\\"}\\"}"}'],
    "yaml": ["  {snake}: {V}", '    {snake}: "{V}"', "{snake}: '{V}'"],
    "toml": ['{snake} = "{V}"', "{snake} = '{V}'"],
    "ini": ["{snake}={V}", "{snake} = {V}"],
    "xml-elem": ["<{camel}>{V}</{camel}>", "  <{Pascal}>{V}</{Pascal}>"],
    "xml-attr": ['<provider name="{fam}" {camel}="{V}" />', '<add key="{Pascal}" value="{V}" />'],
    "go": ['{camel} := "{V}"', 'cfg := Config{{Pascal}: "{V}", Timeout: 30}', 'os.Setenv("{ENV}", "{V}")'],
    "js": ["const {camel} = '{V}';", 'process.env.{ENV} = "{V}";', "client = new Client({ {camel}: '{V}' });"],
    "python": ['os.environ["{ENV}"] = "{V}"', "{snake} = '{V}'", 'client = Client({snake}="{V}", timeout=30)'],
    "php": ["define('{ENV}', '{V}');", "    '{snake}' => '{V}',", '${camel} = "{V}";'],
    "java": ['System.setProperty("{dotted}", "{V}");', 'props.put("{dotted}", "{V}");',
             'private static final String {ENV} = "{V}";'],
    "make": ["{ENV} := {V}", "{ENV} ?= {V}"],
    "header": None,  # the family's header lines
    "url-query": ["GET https://api.host.test/v1/models?{snake}={V}&alt=json HTTP/1.1",
                  '10.0.0.7 - - [26/Nov/2026:10:00:00 +0000] "GET /callback?state=af0ifjsldkj&{snake}={V} HTTP/1.1" 200 512'],
    "url-userinfo": ["git clone https://oauth2:{V}@git.host.test/team/repo.git",
                     "fetching https://x-access-token:{V}@github.com/acme/app.git"],
    "url-path": ["POST https://api.host.test/v1/keys/{V}/rotate 200 12ms"],
    "cli-flag": ["exec: openclaw models auth add --{kebab} {V} --non-interactive", "run: sync-tool --{kebab}={V} --dry-run"],
    "logfmt": ['time=2026-11-26T10:00:00Z level=info msg="provider ready" {snake}={V} latency=12ms',
               'level=debug component=gateway {snake}="{V}"'],
    "ansi": ["{ENV}=" + ESC + "[33m{V}" + ESC + "[0m",
             ESC + "[2m10:00:01" + ESC + "[22m " + ESC + "[36m[config]" + ESC + "[39m {camel}: " + ESC + "[32m{V}" + ESC + "[39m"],
    "tab": ["{ENV}\t{V}\t(env)", "{snake}:\t{V}"],
    "bare": ["provider ready, using {V} for requests", "rotated credential {V} at 10:00:01"],
}
# Syntaxes whose only context is the value itself (no name): families that need a name skip them.
NAMELESS = {"bare", "url-path", "url-userinfo"}
ALL_SYNTAXES = list(SYNTAXES)


def render(syntax: str, names: Names, value: str, k: int, templates=None):
    """-> (text, start, end) of the value in the text, with the value escaped for the syntax."""
    tpls = templates or (names.header if syntax == "header" else SYNTAXES[syntax])
    tpl = tpls[k % len(tpls)]
    esc = ESCAPES.get(syntax, lambda v: v)(value)
    head, tail = names.fill(tpl).split("{V}")
    return head + esc + tail, len(head), len(head) + len(esc)


# ----------------------------------------------------------------------------------------------------
# Families: token generators (positives) and shape negatives
# ----------------------------------------------------------------------------------------------------
class Family:
    """A family of secrets. `variants`: [(label, gen(r) -> str | (value, (s, e) of the secret in it))].
    `syntaxes`: where it is tested (default: all; families that need a name skip the nameless ones).
    `shape_negatives`: [(label, gen(r) -> str)] values that look close but are not this family's secrets,
    tested in neutral contexts (no secret-like name) and, for fakes, under the family's own name."""

    def __init__(self, fid, names, variants, *, needs_name=False, syntaxes=None, extra=None, shape_negatives=(),
                 fakes=(), whole_line_allowed=()):
        self.id = fid
        self.names = names
        self.variants = variants
        if syntaxes is None:
            syntaxes = [s for s in ALL_SYNTAXES if not (needs_name and s in NAMELESS)]
        self.syntaxes = syntaxes
        self.extra = extra or {}  # syntax -> own templates
        self.shape_negatives = list(shape_negatives)
        self.fakes = list(fakes)
        # syntaxes whose templates put another secret beside the value (an access key id beside its
        # secret): a mask may cover the whole line there
        self.whole_line_allowed = set(whole_line_allowed)


def gh_token(r, prefix, valid=True):
    body = rsafe(r, ALNUM, 30)
    crc = b62(zlib.crc32(body.encode()), 6)
    if not valid:
        crc = crc[:-1] + ("A" if crc[-1] != "A" else "B")
    return prefix + body + crc


def npm_token(r):
    body = rsafe(r, ALNUM, 30)
    return "npm_" + body + b62(zlib.crc32(body.encode()), 6)


def jwt(r, header=None, payload=None, sig_len=43):
    h = header or {"alg": "HS256", "typ": "JWT"}
    now = 1795737600 + r.randint(0, 86400)
    p = payload or {"sub": uuid4(r), "role": r.choice(["authenticated", "service_role", "admin"]), "iat": now,
                    "exp": now + 3600}
    enc = lambda o: b64url(json.dumps(o, separators=(",", ":")).encode())  # noqa: E731
    return enc(h) + "." + enc(p) + "." + rs(r, URLSAFE, sig_len)


def pem_body(r, n=600):
    return base64.b64encode(bytes.fromhex("308204bd020100300d06092a864886f70d0101010500") + r.randbytes(n)).decode()


def discord_token(r, new=True):
    # part 1: base64 of the decimal snowflake id (18 digits: 24 chars, 19 digits: 26), part 2: 6, part 3:
    # 27 (old) or 38 (since 2022)
    sid = str(r.randint(10 ** 18, 14 * 10 ** 18)) if new else str(r.randint(10 ** 17, 9 * 10 ** 17))
    first = base64.b64encode(sid.encode()).decode().rstrip("=")
    return first + "." + rs(r, URLSAFE, 6) + "." + rsafe(r, URLSAFE, 38 if new else 27)


def slack_xoxd(r):
    # xoxd- session cookies: 100+ characters of base64, often URL-encoded (%2B %2F %3D)
    body = rsafe(r, ALNUM, 110)
    return "xoxd-" + body[:30] + "%2F" + body[30:75] + "%2B" + body[75:] + "%3D%3D"


def google_refresh(r):
    # 103 characters: 1//0, 12, the protobuf markers CgYIARAAG . SNwF-L9Ir, then 68
    return "1//0" + rsafe(r, URLSAFE, 12) + "CgYIARAAG" + rsafe(r, ALNUM, 1, need_digit=False) + "SNwF-L9Ir" + rsafe(r, URLSAFE, 68)


def aws_key(r, prefix):
    return prefix + rsafe(r, UP + "234567", 16)


def aws_secret(r):
    return rsafe(r, ALNUM + "+/", 40)


def gitlab_routable(r, prefix, versioned):
    # <prefix><base64url payload>[.01].<2 base36: payload length><7 base36: CRC32 of all before>
    payload = b64url(b"c:1\no:" + rs(r, LOW + DIG, 4).encode() + b"\nu:" + rs(r, LOW + DIG, 5).encode() + b"\n" +
                     r.randbytes(16) + b"\x10")
    head = prefix + payload + (".01" if versioned else "") + "."
    n = len(payload)
    b36 = lambda v, w: (lambda d: d.rjust(w, "0"))(  # noqa: E731
        "".join(reversed([("0123456789abcdefghijklmnopqrstuvwxyz")[v // 36 ** i % 36] for i in range(w)])).lstrip("0") or "0")
    head += b36(n, 2)
    return head + b36(zlib.crc32(head.encode()), 7)


def pypi_token(r):
    # pypi- + base64url macaroon: "AgEIcHlwaS5vcmc" encodes the location pypi.org
    return "pypi-AgEIcHlwaS5vcmc" + rsafe(r, URLSAFE, r.choice([50, 130, 160]))


def w(*words, header=None):
    return Names(*words, header=header)


def with_span(value, secret):
    i = value.index(secret)
    return value, (i, i + len(secret))


def build_families():
    F = []
    bearer = ["Authorization: Bearer {V}", "x-api-key: {V}"]
    F.append(Family("openai", w("openai", "api", "key", header=bearer), [
        ("sk-proj (T3BlbkFJ)", lambda r: "sk-proj-" + rsafe(r, URLSAFE, 74) + "T3BlbkFJ" + rsafe(r, URLSAFE, 74)),
        ("sk-svcacct", lambda r: "sk-svcacct-" + rsafe(r, URLSAFE, 74) + "T3BlbkFJ" + rsafe(r, URLSAFE, 74)),
        ("sk-admin", lambda r: "sk-admin-" + rsafe(r, URLSAFE, 58) + "T3BlbkFJ" + rsafe(r, URLSAFE, 58)),
        ("sk-None", lambda r: "sk-None-" + rsafe(r, URLSAFE, 74) + "T3BlbkFJ" + rsafe(r, URLSAFE, 74)),
        ("legacy sk- T3BlbkFJ", lambda r: "sk-" + rsafe(r, ALNUM, 20) + "T3BlbkFJ" + rsafe(r, ALNUM, 20)),
        ("sk-proj 20+20", lambda r: "sk-proj-" + rsafe(r, ALNUM, 20) + "T3BlbkFJ" + rsafe(r, ALNUM, 20)),
        ("legacy sk- 48", lambda r: "sk-" + rsafe(r, ALNUM, 48)),
    ], shape_negatives=[
        ("sk- too short", lambda r: "sk-" + rsafe(r, ALNUM, 16)),
        ("task- id", lambda r: "task-" + rsafe(r, ALNUM, 48)),
        ("disk- name", lambda r: "disk-" + rsafe(r, LOW + DIG, 40)),
    ], fakes=[
        ("sk- repeated", lambda r: "sk-proj-" + "a" * 48),
        ("sk- x's", lambda r: "sk-" + "x" * 48),
        ("sk- sequential", lambda r: "sk-" + "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKL"),
        ("sk- truncated ...", lambda r: "sk-proj-" + rsafe(r, ALNUM, 4) + "..." + rsafe(r, ALNUM, 4)),
        ("sk- truncated …", lambda r: "sk-" + rsafe(r, ALNUM, 3) + "…" + rsafe(r, ALNUM, 4)),
        ("sk- stars", lambda r: "sk-proj-" + "*" * 40 + rsafe(r, ALNUM, 4)),
    ]))
    F.append(Family("anthropic", w("anthropic", "api", "key", header=["x-api-key: {V}", "Authorization: Bearer {V}"]), [
        ("sk-ant-api03", lambda r: "sk-ant-api03-" + rsafe(r, URLSAFE, 93) + "AA"),
        ("sk-ant-admin01", lambda r: "sk-ant-admin01-" + rsafe(r, URLSAFE, 93) + "AA"),
        ("sk-ant-oat01", lambda r: "sk-ant-oat01-" + rsafe(r, URLSAFE, 93) + "AA"),
        ("sk-ant-ort01", lambda r: "sk-ant-ort01-" + rsafe(r, URLSAFE, 93) + "AA"),
        ("sk-ant-sid01", lambda r: "sk-ant-sid01-" + rsafe(r, URLSAFE, 93) + "AA"),
    ], shape_negatives=[
        ("sk-ant- short", lambda r: "sk-ant-api03-" + rsafe(r, URLSAFE, 24)),
    ], fakes=[
        ("sk-ant- x's", lambda r: "sk-ant-api03-" + "x" * 93 + "AA"),
        ("sk-ant- truncated", lambda r: "sk-ant-api03-" + rsafe(r, ALNUM, 4) + "..." + rsafe(r, ALNUM, 4)),
        ("sk-ant- wrong suffix", lambda r: "sk-ant-api03-" + rsafe(r, URLSAFE, 93) + "QQ"),
    ]))
    F.append(Family("xai", w("xai", "api", "key", header=bearer), [
        ("xai- 80", lambda r: "xai-" + rsafe(r, ALNUM, 80)),
        ("xai- 80 with _", lambda r: "xai-" + rsafe(r, ALNUM + "_", 80)),
    ], shape_negatives=[("xai- short", lambda r: "xai-" + rsafe(r, ALNUM, 20))],
        fakes=[("xai- repeated", lambda r: "xai-" + "0" * 80)]))
    F.append(Family("mistral", w("mistral", "api", "key", header=[
        "POST https://api.mistral.ai/v1/chat/completions Authorization: Bearer {V}", "mistral-api-key: {V}"]), [
        ("32 alnum", lambda r: rsafe(r, ALNUM, 32)),
    ], needs_name=True, fakes=[("32 x's", lambda r: "x" * 32)]))
    F.append(Family("deepseek", w("deepseek", "api", "key", header=bearer), [
        ("sk- 32 hex", lambda r: "sk-" + rsafe(r, HEX, 32)),
    ], fakes=[("sk- 32 zeros", lambda r: "sk-" + "0" * 32)]))
    F.append(Family("groq", w("groq", "api", "key", header=bearer), [
        ("gsk_ 52", lambda r: "gsk_" + rsafe(r, ALNUM, 52)),
    ], shape_negatives=[("gsk_ short", lambda r: "gsk_" + rsafe(r, ALNUM, 20))],
        fakes=[("gsk_ x's", lambda r: "gsk_" + "x" * 52)]))
    F.append(Family("openrouter", w("openrouter", "api", "key", header=bearer), [
        ("sk-or-v1 64 hex", lambda r: "sk-or-v1-" + rsafe(r, HEX, 64)),
    ], fakes=[("sk-or-v1 zeros", lambda r: "sk-or-v1-" + "0" * 64)]))
    F.append(Family("perplexity", w("perplexity", "api", "key", header=bearer), [
        ("pplx- 48", lambda r: "pplx-" + rsafe(r, ALNUM, 48)),
        ("pplx- 48 hex", lambda r: "pplx-" + rsafe(r, HEX, 48)),
    ], fakes=[("pplx- x's", lambda r: "pplx-" + "x" * 48)]))
    F.append(Family("huggingface", w("hf", "token", header=bearer), [
        ("hf_ 34", lambda r: "hf_" + rsafe(r, string.ascii_letters, 34, need_digit=False)),
        ("api_org_ 34", lambda r: "api_org_" + rsafe(r, string.ascii_letters, 34, need_digit=False)),
    ], shape_negatives=[("hf_ short", lambda r: "hf_" + rsafe(r, LOW, 10, need_digit=False))],
        fakes=[("hf_ x's", lambda r: "hf_" + "x" * 34)]))
    F.append(Family("google", w("gemini", "api", "key", header=["x-goog-api-key: {V}", "Authorization: Bearer {V}"]), [
        ("AIza 39", lambda r: "AIza" + rsafe(r, URLSAFE, 35)),
        ("AQ. Gemini/Vertex", lambda r: "AQ.Ab8RN6" + rsafe(r, URLSAFE, 44)),
        ("GOCSPX- client secret", lambda r: "GOCSPX-" + rsafe(r, URLSAFE, 28)),
        ("1// refresh token", google_refresh),
        ("ya29. access token", lambda r: "ya29.a0" + rsafe(r, URLSAFE, 150)),
        ("ya29.c. service account", lambda r: "ya29.c.c0ASRK0G" + rsafe(r, URLSAFE, 180)),
    ], shape_negatives=[
        ("AIza short", lambda r: "AIza" + rsafe(r, URLSAFE, 20)),
        ("AIza in base64", lambda r: rsafe(r, B64, 20) + "AIza" + rsafe(r, B64, 35) + "+" + rsafe(r, B64, 10)),
    ], fakes=[
        ("AIza repeated", lambda r: "AIza" + "a" * 35),
        ("AIza x's", lambda r: "AIzaSy" + "X" * 33),
    ]))
    F.append(Family("telegram", w("telegram", "bot", "token", header=None), [
        ("id:AA…", lambda r: digits(r, r.choice([9, 10])) + ":AA" + rsafe(r, URLSAFE, 33)),
        ("id:other first chars", lambda r: digits(r, r.choice([8, 9, 10])) + ":" + r.choice(UP) + r.choice(LOW) +
         rsafe(r, URLSAFE, 33)),
    ], syntaxes=[s for s in ALL_SYNTAXES if s not in ("bare", "url-userinfo", "url-path", "header")] + ["url-path", "bare"],
        extra={
        "url-path": ["POST https://api.telegram.org/bot{V}/sendMessage 200",
                     "GET https://api.telegram.org/bot{V}/getUpdates?offset=0&timeout=30"],
        "bare": ["telegram bot {V} started", "bot token {V} registered"],
    }, shape_negatives=[
        ("time range", lambda r: "10:00:01-10:00:59"),
        ("digits:short", lambda r: digits(r, 9) + ":" + rsafe(r, ALNUM, 12)),
    ], fakes=[("id:x's", lambda r: "123456789:" + "x" * 35)]))
    F.append(Family("discord", w("discord", "bot", "token", header=["Authorization: Bot {V}"]), [
        ("bot token 26.6.38", discord_token),
        ("bot token 24.6.27", lambda r: discord_token(r, new=False)),
        ("webhook", lambda r: with_span(*(lambda t: ("https://discord.com/api/webhooks/" + digits(r, 18) + "/" + t, t))(
            rsafe(r, URLSAFE, 68)))),
        ("webhook discordapp v10", lambda r: with_span(*(lambda t: ("https://discordapp.com/api/v10/webhooks/" + digits(r, 19) + "/" + t, t))(
            rsafe(r, URLSAFE, 68)))),
        ("webhook canary", lambda r: with_span(*(lambda t: ("https://canary.discord.com/api/webhooks/" + digits(r, 19) + "/" + t + "?wait=true", t))(
            rsafe(r, URLSAFE, 68)))),
    ], syntaxes=[s for s in ALL_SYNTAXES if s not in ("url-userinfo", "url-path")] + ["url-path"], extra={
        "url-path": ["POST https://discord.com/api/v10/channels/" + "1103849283776622211" + "/messages Authorization: Bot {V}"],
        "bare": ["discord client.login('{V}')", "logged in with {V} as claw#4411"],
    }, shape_negatives=[
        ("snowflake ids", lambda r: digits(r, 18) + "." + digits(r, 6)),
    ]))
    F.append(Family("discord-client-secret", w("discord", "client", "secret", header=["x-discord-client-secret: {V}"]), [
        ("32 urlsafe", lambda r: rsafe(r, URLSAFE, 32)),
    ], needs_name=True, fakes=[("x's", lambda r: "x" * 32)]))
    F.append(Family("slack", w("slack", "bot", "token", header=bearer), [
        ("xoxb", lambda r: f"xoxb-{digits(r, 12)}-{digits(r, 13)}-{rsafe(r, ALNUM, 24)}"),
        ("xoxb legacy", lambda r: f"xoxb-{digits(r, 11)}-{rsafe(r, ALNUM, 24)}"),
        ("xoxp", lambda r: f"xoxp-{digits(r, 12)}-{digits(r, 12)}-{digits(r, 13)}-{rsafe(r, HEX, 32)}"),
        ("xapp", lambda r: f"xapp-1-A{rsafe(r, UP + DIG, 10)}-{digits(r, 13)}-{rsafe(r, HEX, 64)}"),
        ("xoxa-2", lambda r: f"xoxa-2-{digits(r, 12)}-{digits(r, 12)}-{digits(r, 13)}-{rsafe(r, HEX, 32)}"),
        ("xoxr", lambda r: f"xoxr-{digits(r, 12)}-{digits(r, 13)}-{rsafe(r, ALNUM, 24)}"),
        ("xoxs", lambda r: f"xoxs-{digits(r, 12)}-{digits(r, 12)}-{digits(r, 13)}-{rsafe(r, HEX, 64)}"),
        ("xoxc", lambda r: f"xoxc-{digits(r, 12)}-{digits(r, 12)}-{digits(r, 13)}-{rsafe(r, HEX, 64)}"),
        ("xoxd", slack_xoxd),
        ("xoxe.xoxp", lambda r: "xoxe.xoxp-1-Mi0y" + rsafe(r, ALNUM, 159)),
        ("xoxe-1", lambda r: "xoxe-1-My0x" + rsafe(r, ALNUM, 142)),
        ("webhook services", lambda r: with_span(*(lambda t: (f"https://hooks.slack.com/services/T{rsafe(r, UP + DIG, 10)}/B{rsafe(r, UP + DIG, 10)}/{t}", t))(
            rsafe(r, ALNUM, 24)))),
        ("webhook workflows", lambda r: with_span(*(lambda t: (f"https://hooks.slack.com/workflows/T{rsafe(r, UP + DIG, 10)}/A{rsafe(r, UP + DIG, 10)}/{digits(r, 18)}/{t}", t))(
            rsafe(r, ALNUM, 24)))),
        ("webhook triggers", lambda r: with_span(*(lambda t: (f"https://hooks.slack.com/triggers/T{rsafe(r, UP + DIG, 10)}/{digits(r, 13)}/{t}", t))(
            rsafe(r, HEX, 32)))),
    ], fakes=[
        ("xoxb x's", lambda r: "xoxb-xxxxxxxxxxx-xxxxxxxxxxxxx-xxxxxxxxxxxxxxxxxxxxxxxx"),
        ("xoxb truncated", lambda r: "xoxb-" + digits(r, 4) + "..."),
        ("webhook x's", lambda r: "https://hooks.slack.com/services/TXXXXXXXX/BXXXXXXXX/XXXXXXXXXXXXXXXXXXXXXXXX"),
    ]))
    F.append(Family("github", w("github", "token", header=["Authorization: token {V}", "Authorization: Bearer {V}"]), [
        ("ghp_ (crc ok)", lambda r: gh_token(r, "ghp_")),
        ("ghp_ (crc fails)", lambda r: gh_token(r, "ghp_", valid=False)),
        ("gho_", lambda r: gh_token(r, "gho_")),
        ("ghu_", lambda r: gh_token(r, "ghu_")),
        ("ghs_", lambda r: gh_token(r, "ghs_")),
        ("ghr_ 76", lambda r: "ghr_" + rsafe(r, ALNUM, 76)),
        ("ghs_ stateless app id + JWT", lambda r: "ghs_" + digits(r, 7) + "_" + jwt(r, {"alg": "RS256", "typ": "JWT"}, sig_len=342)),
        ("github_pat_", lambda r: "github_pat_11" + rsafe(r, UP + DIG, 20) + "_" + rsafe(r, ALNUM, 59)),
    ], shape_negatives=[("ghp_ short", lambda r: "ghp_" + rsafe(r, ALNUM, 12))],
        fakes=[("ghp_ x's", lambda r: "ghp_" + "x" * 36), ("ghp_ truncated", lambda r: "ghp_" + rsafe(r, ALNUM, 4) + "...")]))
    F.append(Family("gitlab", w("gitlab", "token", header=["PRIVATE-TOKEN: {V}", "Authorization: Bearer {V}"]), [
        ("glpat-", lambda r: "glpat-" + rsafe(r, URLSAFE, 20)),
        ("glpat- routable versioned", lambda r: gitlab_routable(r, "glpat-", True)),
        ("glpat- routable", lambda r: gitlab_routable(r, "glpat-", False)),
        ("glrt- runner", lambda r: "glrt-" + rsafe(r, URLSAFE, 20)),
        ("glrt-t runner routable", lambda r: gitlab_routable(r, "glrt-t1_", True)),
        ("GR1348941 runner reg", lambda r: "GR1348941" + rsafe(r, URLSAFE, 20)),
        ("glptt- trigger", lambda r: "glptt-" + rsafe(r, HEX, 40)),
        ("gldt- deploy", lambda r: "gldt-" + rsafe(r, URLSAFE, 20)),
        ("glcbt- CI job", lambda r: "glcbt-" + rsafe(r, HEX, 2) + "_" + rsafe(r, URLSAFE, 20)),
        ("glcbt- CI job JWT", lambda r: "glcbt-" + jwt(r, {"alg": "RS256", "typ": "JWT", "kid": rs(r, URLSAFE, 43)}, sig_len=342)),
        ("glft- feed", lambda r: "glft-" + rsafe(r, URLSAFE, 20)),
        ("gloas- OAuth app secret", lambda r: "gloas-" + rsafe(r, HEX, 64)),
        ("glimt- incoming mail", lambda r: "glimt-" + rsafe(r, LOW + DIG, 25)),
        ("glsoat- SCIM", lambda r: "glsoat-" + rsafe(r, URLSAFE, 20)),
        ("glagent- cluster agent", lambda r: "glagent-" + rsafe(r, URLSAFE, 50)),
        ("glffct- feature flags", lambda r: "glffct-" + rsafe(r, URLSAFE, 20)),
    ], fakes=[("glpat- x's", lambda r: "glpat-" + "x" * 20), ("glpat- truncated", lambda r: "glpat-" + rsafe(r, ALNUM, 4) + "...")]))
    F.append(Family("aws", w("aws", "access", "key", "id", header=["X-Amz-Security-Token: {V}"]), [
        ("AKIA", lambda r: aws_key(r, "AKIA")),
        ("ASIA", lambda r: aws_key(r, "ASIA")),
        ("ABIA", lambda r: aws_key(r, "ABIA")),
        ("ACCA", lambda r: aws_key(r, "ACCA")),
    ], shape_negatives=[
        ("AKIA short", lambda r: "AKIA" + rsafe(r, UP, 8, need_digit=False)),
        ("AROA role id", lambda r: "AROA" + rsafe(r, UP + DIG, 17)),
    ], fakes=[("AKIA EXAMPLE", lambda r: "AKIAIOSFODNN7EXAMPLE"), ("AKIA X's", lambda r: "AKIAXXXXXXXXXXXXXXXX")]))
    F.append(Family("aws-secret", w("aws", "secret", "access", "key", header=["x-aws-secret-access-key: {V}"]), [
        ("40 base64", aws_secret),
        ("40 letters only", lambda r: rsafe(r, string.ascii_letters, 40, need_digit=False)),
        ("40 low-entropy looking", lambda r: "wJalrXUtnFEMIK7MDENGbPxRfiCY" + rsafe(r, UP + DIG, 12)),
    ], needs_name=True, syntaxes=[s for s in ALL_SYNTAXES if s not in NAMELESS] + ["bare"], extra={
        "bare": ["aws credentials AKIAZ7QK3MNB2XWL5RTD {V} eu-central-1", "AKIAZ7QK3MNB2XWL5RTD,{V},default"],
    }, whole_line_allowed={"bare"}, fakes=[("EXAMPLEKEY", lambda r: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
                               ("40 x's", lambda r: "x" * 40)]))
    F.append(Family("stripe", w("stripe", "secret", "key", header=["Authorization: Bearer {V}"]), [
        ("sk_live_", lambda r: "sk_live_" + rsafe(r, ALNUM, 99)),
        ("sk_test_", lambda r: "sk_test_" + rsafe(r, ALNUM, 99)),
        ("rk_live_", lambda r: "rk_live_" + rsafe(r, ALNUM, 99)),
        ("rk_test_", lambda r: "rk_test_" + rsafe(r, ALNUM, 24)),
        ("whsec_", lambda r: "whsec_" + rsafe(r, ALNUM, 32)),
        ("whsec_ CLI 64 hex", lambda r: "whsec_" + rsafe(r, HEX, 64)),
    ], shape_negatives=[("pk_live_ publishable", lambda r: "pk_live_" + rsafe(r, ALNUM, 99))],
        fakes=[("sk_live_ x's", lambda r: "sk_live_" + "x" * 24)]))
    F.append(Family("npm", w("npm", "token", header=["Authorization: Bearer {V}"]), [
        ("npm_ (crc ok)", npm_token),
        ("npm_ (crc fails)", lambda r: "npm_" + rsafe(r, ALNUM, 36)),
    ], fakes=[("npm_ x's", lambda r: "npm_" + "x" * 36)]))
    F.append(Family("pypi", w("pypi", "api", "token", header=["Authorization: Bearer {V}"]), [
        ("pypi- macaroon", pypi_token),
        ("pypi- TestPyPI", lambda r: "pypi-AgENdGVzdC5weXBpLm9yZw" + rsafe(r, URLSAFE, 150)),
    ], fakes=[("pypi- truncated", lambda r: "pypi-AgEIcHlwaS5vcmc...")]))
    F.append(Family("dockerhub", w("docker", "hub", "token", header=["Authorization: Bearer {V}"]), [
        ("dckr_pat_", lambda r: "dckr_pat_" + rsafe(r, URLSAFE, 27)),
        ("dckr_oat_", lambda r: "dckr_oat_" + rsafe(r, URLSAFE, 32)),
    ], fakes=[("dckr_pat_ x's", lambda r: "dckr_pat_" + "x" * 27)]))
    F.append(Family("jwt", w("access", "token", header=["Authorization: Bearer {V}", "Cookie: session={V}"]), [
        ("HS256", lambda r: jwt(r)),
        ("RS256 kid", lambda r: jwt(r, {"alg": "RS256", "typ": "JWT", "kid": rs(r, HEX, 16)}, sig_len=342)),
        ("undecodable", lambda r: "eyJ" + rsafe(r, URLSAFE, 30) + ".eyJ" + rsafe(r, URLSAFE, 60) + "." + rsafe(r, URLSAFE, 43)),
        ("unsigned", lambda r: jwt(r, {"alg": "none", "typ": "JWT"}, sig_len=0)),
    ], shape_negatives=[("eyJ in base64 image", lambda r: "iVBORw0KGgo" + rsafe(r, B64, 40) + ".eyJ" + rsafe(r, B64, 8))]))
    F.append(Family("private-key", w("ssh", "private", "key", header=None), [
        ("RSA PEM one line (\\n)", lambda r: with_span(*(lambda b: ("-----BEGIN RSA PRIVATE KEY-----\n" + b + "\n-----END RSA PRIVATE KEY-----\n", b))(
            pem_body(r)))),
        ("PKCS8 PEM spaces", lambda r: with_span(*(lambda b: ("-----BEGIN PRIVATE KEY----- " + b + " -----END PRIVATE KEY-----", b))(
            pem_body(r)))),
        ("OPENSSH", lambda r: with_span(*(lambda b: ("-----BEGIN OPENSSH PRIVATE KEY----- " + b + " -----END OPENSSH PRIVATE KEY-----", b))(
            base64.b64encode(b"openssh-key-v1\x00" + r.randbytes(300)).decode()))),
        ("EC PEM", lambda r: with_span(*(lambda b: ("-----BEGIN EC PRIVATE KEY-----\n" + b + "\n-----END EC PRIVATE KEY-----\n", b))(
            base64.b64encode(bytes.fromhex("30770201010420") + r.randbytes(100)).decode()))),
    ], syntaxes=[s for s in ALL_SYNTAXES if s not in ("url-query", "url-userinfo", "url-path", "header", "cli-flag", "xml-attr")],
        shape_negatives=[
        ("certificate", lambda r: "-----BEGIN CERTIFICATE-----\\n" + pem_body(r) + "\\n-----END CERTIFICATE-----"),
        ("public key", lambda r: "-----BEGIN PUBLIC KEY-----\\n" + pem_body(r, 200) + "\\n-----END PUBLIC KEY-----"),
    ]))
    F.append(Family("base64-wrapped", w("kube", "secret", "data", header=None), [
        ("base64 JWT", lambda r: base64.b64encode(jwt(r).encode()).decode()),
        ("base64 PEM", lambda r: base64.b64encode(("-----BEGIN RSA PRIVATE KEY-----\n" + pem_body(r, 300) +
                                                   "\n-----END RSA PRIVATE KEY-----\n").encode()).decode()),
    ], syntaxes=[s for s in ALL_SYNTAXES if s not in ("url-query", "url-userinfo", "url-path", "header")], extra={
        "bare": ["  tls.key: {V}", "token: {V}"],
    }, shape_negatives=[
        ("base64 certificate", lambda r: base64.b64encode(("-----BEGIN CERTIFICATE-----\n" + pem_body(r, 300) +
                                                           "\n-----END CERTIFICATE-----\n").encode()).decode()),
        ("base64 text", lambda r: base64.b64encode(b"hello from the openclaw gateway, all systems nominal today").decode()),
    ]))
    F.append(Family("password", w("db", "password", header=["X-Db-Password: {V}"]), [
        ("low entropy word+digit", lambda r: r.choice(["hunter2", "letmein1", "Summer2024", "trustno1", "dragon99"])),
        ("symbols", lambda r: r.choice(["super$ecret", "P@ssw0rd!", "s3cr3t#Pass", "C0rrect-Horse"])),
        ("random", lambda r: rsafe(r, ALNUM + "!#%^*+=-_.~", r.randint(12, 24))),
        ("lowercase word", lambda r: r.choice(["letmein", "sunshine", "qwerty", "monkey", "dragon"])),
    ], needs_name=True, syntaxes=[s for s in ALL_SYNTAXES if s not in NAMELESS] + ["url-userinfo"], extra={
        "url-userinfo": ["DATABASE_URL=postgres://openclaw:{V}@db:5432/app", "connecting to redis://default:{V}@cache:6379/0",
                         "amqp://claw:{V}@mq:5672/%2F", "mongodb+srv://admin:{V}@cluster0.host.test/db?retryWrites=true"],
    }))
    F.append(Family("cli-credentials", w("cmd", header=None), [
        ("curl -u", lambda r: ("curl -u", rsafe(r, ALNUM, 14))),
        ("curl --user", lambda r: ("curl --user", rsafe(r, ALNUM + "!", 12))),
        ("curl -H Authorization", lambda r: ("curl -H auth", rsafe(r, ALNUM, 40))),
        ("mysql -p", lambda r: ("mysql -p", rsafe(r, ALNUM, 12))),
        ("mysql --password=", lambda r: ("mysql --password=", rsafe(r, ALNUM, 12))),
        ("PGPASSWORD", lambda r: ("PGPASSWORD", rsafe(r, ALNUM, 16))),
        ("sshpass -p", lambda r: ("sshpass -p", rsafe(r, ALNUM, 10))),
        ("git clone user:token@", lambda r: ("git clone", rsafe(r, ALNUM, 40))),
        ("docker login -p", lambda r: ("docker login -p", rsafe(r, ALNUM, 16))),
        ("docker login --password", lambda r: ("docker login --password", rsafe(r, ALNUM, 16))),
        (".netrc", lambda r: (".netrc", rsafe(r, ALNUM, 14))),
        ("redis-cli -a", lambda r: ("redis-cli -a", rsafe(r, ALNUM, 20))),
        ("openssl -passin pass:", lambda r: ("openssl pass:", rsafe(r, ALNUM, 14))),
        ("wget --password", lambda r: ("wget --password", rsafe(r, ALNUM, 14))),
    ], syntaxes=["bare", "json", "json-esc", "logfmt", "yaml", "ansi", "tab"]))
    F.append(Family("generic", w("acme", "api", "key", header=["X-Acme-Api-Key: {V}", "x-api-key: {V}"]), [
        ("32 alnum", lambda r: rsafe(r, ALNUM, 32)),
        ("40 hex", lambda r: rsafe(r, HEX, 40)),
        ("24 symbols", lambda r: rsafe(r, ALNUM + "%~-_.", 24)),
    ], needs_name=True))
    F.append(Family("openclaw", w("openclaw", "gateway", "token", header=["Authorization: Bearer {V}"]), [
        ("48 hex", lambda r: rsafe(r, HEX, 48)),
        ("64 hex", lambda r: rsafe(r, HEX, 64)),
    ], needs_name=True, syntaxes=[s for s in ALL_SYNTAXES if s not in NAMELESS] + ["url-path"], extra={
        "url-path": ["Dashboard: http://127.0.0.1:18789/#token={V}", "open http://localhost:18789/?token={V}&session=main"],
    }))
    return F


# CLI-credential commands: the label's first element picks the command shape; the value is the secret.
def cli_command(kind: str, secret: str, r: random.Random) -> str:
    user = r.choice(["admin", "deploy", "openclaw", "ops"])
    return {
        "curl -u": f"curl -sS -u {user}:{{V}} https://api.host.test/v1/status",
        "curl --user": f"curl --user '{user}:{{V}}' -X POST https://hooks.host.test/run",
        "curl -H auth": "curl -H 'Authorization: Bearer {V}' https://api.host.test/v2/items",
        "mysql -p": f"mysql -h db -u {user} -p{{V}} app",
        "mysql --password=": f"mysql --host=db --user={user} --password={{V}} app",
        "PGPASSWORD": "PGPASSWORD={V} psql -h db -U openclaw app -c 'select 1'",
        "sshpass -p": f"sshpass -p {{V}} ssh {user}@10.0.0.5 uptime",
        "git clone": f"git clone https://{user}:{{V}}@git.host.test/team/infra.git",
        "docker login -p": f"docker login -u {user} -p {{V}} registry.host.test",
        "docker login --password": f"docker login registry.host.test --username {user} --password {{V}}",
        ".netrc": f"machine api.host.test login {user} password {{V}}",
        "redis-cli -a": "redis-cli -h cache -a {V} ping",
        "openssl pass:": "openssl pkcs12 -export -in cert.pem -inkey key.pem -passout pass:{V} -out bundle.p12",
        "wget --password": f"wget --user={user} --password={{V}} https://files.host.test/backup.tar",
    }[kind].replace("{V}", secret)


CLI_WRAP = {
    "bare": ["{C}", "exec: {C}"],
    "json": ['{"level":30,"msg":"tool call","tool":"exec","command":"{C}"}'],
    "json-esc": ['{"level":30,"msg":"tool result","result":"{\\"cmd\\":\\"{C}\\",\\"exit\\":0}"}'],
    "logfmt": ['level=info tool=exec cmd="{C}" exit=0'],
    "yaml": ["    command: {C}"],
    "ansi": [ESC + "[35m$" + ESC + "[0m {C}"],
    "tab": ["exec\t{C}\t0"],
}

# ----------------------------------------------------------------------------------------------------
# Negatives
# ----------------------------------------------------------------------------------------------------
# Values that are references, placeholders or already masked: tested under secret-like names of several
# families, in every syntax.
REFERENCE_VALUES = [
    ("${VAR}", "${{ENV}}"), ("$VAR", "${ENV}"), ("%VAR%", "%{ENV}%"), ("process.env.X", "process.env.{ENV}"),
    ("os.environ[X]", 'os.environ["{ENV}"]'), ("os.getenv(X)", "os.getenv('{ENV}')"), ("env.X", "env.{ENV}"),
    ("{{ .Values }}", "{{ .Values.{camel} }}"), ("{{ secrets.X }}", "${{ secrets.{ENV} }}"), ("!ENV", "!ENV ${{ENV}}"),
    ("secretRef", "secretRef:{snake}"), ("valueFrom", "valueFrom.secretKeyRef.{snake}"),
    ("file path", "/run/secrets/{snake}"), ("file path 2", "/etc/openclaw/keys/{kebab}.txt"),
    ("vault path", "vault:secret/data/openclaw#{snake}"), ("vault kv", "secret/data/prod/{kebab}"),
    ("arn", "arn:aws:secretsmanager:eu-central-1:123456789012:secret:prod/{kebab}-AbCdEf"),
    ("ssm arn", "arn:aws:ssm:eu-central-1:123456789012:parameter/openclaw/{snake}"),
    ("format %s", "%s"), ("format {}", "{}"), ("format {0}", "{0}"), ("sql bind", ":{snake}"),
    ("angle placeholder", "<{kebab}>"), ("env file ref", "file:/run/secrets/{snake}"),
    ("k8s secret name", "openclaw-{kebab}"),
]
PLACEHOLDER_VALUES = [
    "changeme", "change-me", "CHANGE_ME", "not-set", "notset", "unset", "none", "null", "nil", "undefined", "empty",
    "required", "true", "false", "xxxxxxxx", "XXXX-XXXX-XXXX-XXXX", "########", "your-api-key-here",
    "YOUR_API_KEY_HERE", "<your-token>", "INSERT_KEY_HERE", "ReplaceWithYourKeyHere", "RANDOMSTRING",
    "example-key-123", "dummy-token-value", "test-token-123", "mytestpassword", "aaaaaaaaaaaaaaaaaaaa",
    "abcdefghijklmnopqrstuvwxyz", "0123456789abcdef0123456789abcdef", "1234567890", "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "secret", "password", "token", "sample_secret_value",
]
MASKED_VALUES = [
    "***", "********", "****abcd", "sk-abc…wxyz", "sk-proj-abcd...wxyz", "[REDACTED]", "<redacted>", "REDACTED",
    "__REDACTED__", "[FILTERED]", "[hidden]", "xxxx", "***REMOVED***", "[openai-api-key:3fa2c1]****************",
    "ghp_[github-pat:3fa2c1]*****************", "[3fa2c1]*******",
]
# Identifiers that sit under names close to secret names, or have secret-like shapes.
IDENTIFIER_LINES = [
    '{"max_tokens":4096,"input_tokens":1200,"output_tokens":873,"cache_read_input_tokens":0}',
    '{"sessionKey":"agent:main:telegram:dm:123456789","tokenType":"Bearer","token_count":512}',
    '{"idempotencyKey":"6f1c2e7a-3b4d-4c5e-9f60-718293a4b5c6"}',
    '{"keyId":"k-2026-11","kid":"a1b2c3d4e5","api_key_id":"key_01JD2X4K9QZ7M3N5P8R0T2V4W6"}',
    '{"cache_key":"237f92fda66ab127e725ee89e3a3954f5b152b1c8de5afd6812da3dc93119b5f"}',
    '{"publicKey":"MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE3f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5"}',
    'STRIPE_PUBLISHABLE_KEY=pk_live_51H8xkLJm3N2pQ7rS9tU1vW3xY5zA7bC9dE1fG3hJ5kL7mN9pQ1rS3tU5vW7xY9zA1bC3dE5fG7hJ9kL1mN3pQ5',
    '{"publishableKey":"pk_test_TYooMQauvdEDq54NiTphI7jx","publicToken":"pub_7f3a9c1e5b2d8f4a6c0e9b1d3f5a7c9e"}',
    'GOOGLE_CLIENT_ID=123456789012-abc123def456ghi789jkl012mno345pq.apps.googleusercontent.com',
    '{"client_id":"claw-gateway","clientId":"0oa1b2c3d4E5F6G7H8i9","redirect_uri":"https://host.test/cb"}',
    'x-request-id: 9f1c2e7a-3b4d-4c5e-9f60-718293a4b5c6',
    'traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
    '{"reqId":"req-1a2b","requestId":"req_01JD2X4K9QZ7M3N5P8R0T2V4W6","id":"msg_01XFDUDYJgAACzvnptvVoYEL"}',
    'anthropic API error 529 overloaded (request_id=req_011CUxz8m3Xk2pQ9aB7cD4eF)',
    'pulled ghcr.io/openclaw/openclaw@sha256:237f92fda66ab127e725ee89e3a3954f5b152b1c8de5afd6812da3dc93119b5f',
    'commit 00c77c14dbc9fd82c3ef16e10fc55b286f99ad21 Merge pull request #4411 from acme/token-refresh',
    '<dependency><groupId>org.springframework.security</groupId><artifactId>spring-security-oauth2-jose</artifactId><version>6.2.1</version></dependency>',
    'resolved org.apache.commons:commons-crypto:1.2.0 and io.jsonwebtoken:jjwt-api:0.12.5',
    'added @aws-sdk/credential-providers@3.450.0 and @octokit/auth-token@4.0.0',
    'java.lang.IllegalStateException: javax.crypto.SecretKeyFactory not available at com.acme.auth.TokenProvider.init(TokenProvider.java:42)',
    'class SecretKeySpec implements KeySpec, SecretKey; field private final PasswordEncoder passwordEncoder;',
    'type ApiKeyAuth struct { Header string; Prefix string } // api_key_header: x-api-key',
    '{"secretName":"openclaw-env-2","secretKey":"OPENAI_API_KEY","optional":false}',
    'Error: secret "db-creds-2" not found in namespace openclaw',
    'password authentication failed for user "openclaw"',
    'gateway token missing: set OPENCLAW_GATEWAY_TOKEN',
    'Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.',
    '{"level":40,"msg":"token refresh scheduled","expires_in":3599,"token_type":"Bearer","scope":"openid email"}',
    'PASSWORD_MIN_LENGTH=12 TOKEN_TTL_SECONDS=3600 API_KEY_HEADER=x-api-key SECRET_STORE=file',
    'PWD=/home/node/app2 OLDPWD=/srv/openclaw/v2 HOME=/home/node',
    '{"password_hash":"$2b$12$3Lc0FHsGuy5LOT6vEkibDp3Lc0FHsGuy5LOT6vEkibDp58higA9Sf"}',
    'added authorized key ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGmJ3rK7vQ0pX2Tq8yZ4bN6cW1sH9fD5eL3aR0uM2kVo claw@laptop',
    'integrity sha512-v2kDEe57lecTulaDIuNTPy3Ry4gLGJ6Z1O3vE1krgXZNrsQ+LFTGHVxVjcXGOVt9CQeq6ja6TwUGBW3PbnZSg==',
    '{"etag":"W/\\"237f92fda66ab127e725ee89e3a3954f\\"","digest":"sha256:237f92fda66ab127e725ee89e3a3954f5b152b1c8de5afd6812da3dc93119b5f"}',
    'toolCallId=toolu_01A09q90qw90lq917835lq9 runId=0b8e7f3c-1d2a-4b5c-8d9e-0f1a2b3c4d5e',
    '{"model":"mistral-large-latest","id":"cmpl-237f92fda66ab127e725ee89e3a3954f"}',
    '{"model":"claude-sonnet-4-5","usage":{"input_tokens":12,"output_tokens":873},"stop_reason":"end_turn"}',
    'GET /api/sessions/history?key=agent:main:telegram:dm:123456789 200 4ms',
    'GET https://cdn.host.test/get?key=uploads/2026/11/img_1234.jpg&w=640 200',
    'https://www.googleapis.com/customsearch/v1?cx=017576662512468239146:omuauf_lfve&q=openclaw',
    'Authorization: AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20261126/eu-central-1/s3/aws4_request',
    '{"token":"00000000-0000-4000-8000-000000000000"}',
    '{"nextPageToken":"CiAKGjBpNDd2Nmp2Zml2cXRwYjBpOXA","pageSize":50}',
    'csrf middleware: token mismatch (expected 32 bytes, got 0)',
    'auth scheme basic enabled; bearer tokens accepted from /etc/openclaw/tokens.d',
    'OPENCLAW_GATEWAY_TOKEN_FILE=/run/secrets/gateway_token',
    '{"tokenizer":"cl100k_base","encoding":"o200k_base"}',
    'ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABgQC7x9 deploy@ci public key installed',
    'telegram: getUpdates ok, update_id=834502731, chat_id=-1001234567890, message_id=4411',
    'discord: READY session_id=9f1c2e7a3b4d4c5e9f60718293a4b5c6 shard=[0, 1] user=claw#4411',
    'slack: event_callback team_id=T0123ABCD api_app_id=A0123ABCD event_id=Ev0123ABCDEF',
    '{"aws_access_key_id_name":"AWS_ACCESS_KEY_ID","region":"eu-central-1","role_arn":"arn:aws:iam::123456789012:role/openclaw"}',
    '{"data":"data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="}',
    'uploaded blob sha1=da39a3ee5e6b4b0d3255bfef95601890afd80709 md5=d41d8cd98f00b204e9800998ecf8427e',
    'Using keyring backend: file; gpg fingerprint 3AA5C34371567BD2 (ssh key SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8)',
]

# Realistic gateway and tool lines that hold no secret (the content a false positive would destroy).
GATEWAY_LINES = [
    '{"level":30,"time":1764188337000,"pid":7,"hostname":"openclaw","msg":"gateway listening","port":18789,"bind":"lan"}',
    '{"level":30,"msg":"agent run finished","runId":"0b8e7f3c-1d2a-4b5c-8d9e-0f1a2b3c4d5e","durationMs":8123,"tokens":{"input":5123,"output":812}}',
    '{"level":40,"msg":"rate limited by provider","provider":"anthropic","retryAfterMs":2000,"attempt":2}',
    '{"level":30,"msg":"telegram message","chatId":123456789,"text":"what is the weather in Berlin?","from":"alice"}',
    '{"level":30,"msg":"tool call","tool":"web_search","args":{"query":"openclaw docker hardening secrets"}}',
    '{"level":30,"msg":"tool result","tool":"exec","stdout":"total 12\\ndrwxr-xr-x 2 node node 4096 Nov 26 10:00 .\\n","exit":0}',
    '{"level":50,"msg":"provider error","status":401,"error":{"type":"authentication_error","message":"invalid x-api-key"}}',
    '{"level":30,"msg":"config reloaded","changed":["models.providers.anthropic.apiKey","gateway.auth.mode"]}',
    '{"level":30,"msg":"session compacted","sessionKey":"agent:main:main","before":182345,"after":40211}',
    '{"level":20,"msg":"ws frame","dir":"out","type":"chat.delta","len":412,"seq":8812}',
    '10.0.0.7 - - [26/Nov/2026:10:00:00 +0000] "GET /health HTTP/1.1" 200 15 "-" "curl/8.5.0"',
    '{"level":"info","ts":1764188337.123,"logger":"http.log.access","msg":"handled request","request":{"remote_ip":"10.0.0.7","method":"GET","uri":"/api/chat?session=main"},"status":200}',
    '2026-11-26 10:00:01,387 INFO [openclaw.worker] processed 12 jobs in 1.82s (queue=openclaw:jobs)',
    'Traceback (most recent call last):\n  File "/app/worker.py", line 42, in run\nKeyError: \'api_key\'',
    '2026-11-26 10:00:01.123 UTC [42] LOG:  checkpoint complete: wrote 1204 buffers (7.3%); 0 WAL file(s) added',
    '1:M 26 Nov 2026 10:00:01.123 * Background saving terminated with success',
    '[gateway] auth mode=token (token from env OPENCLAW_GATEWAY_TOKEN); dashboard at http://127.0.0.1:18789/',
    '[models] provider openai: 14 models, default gpt-5-mini; provider anthropic: key from env ANTHROPIC_API_KEY',
    '[skills] installed 23 skills from clawhub (signature ok: 3f9a1c2e)',
    'npm warn deprecated inflight@1.0.6: This module is not supported, and leaks memory.',
    'Downloading https://files.pythonhosted.org/packages/ab/cd/requests-2.32.3-py3-none-any.whl (64 kB)',
    ' => => writing image sha256:4b2f3c1d9e8a7f6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1 0.0s',
    'Step 7/12 : RUN --mount=type=secret,id=npmrc npm ci --omit=dev',
    'ok 14 - rejects requests without a bearer token # time=12.4ms',
    'WARN: key "models.default" is deprecated; use "agents.defaults.model"',
    'monitor: 3 containers, 0 restarts, memory 412MiB/2GiB, cpu 4.2%',
]


# ----------------------------------------------------------------------------------------------------
# Building the cases
# ----------------------------------------------------------------------------------------------------
def positives(r: random.Random, fam: Family):
    out = []
    for si, syntax in enumerate(fam.syntaxes):
        for vi, (label, gen) in enumerate(fam.variants):
            k = si + vi
            if fam.id == "cli-credentials":
                kind, secret = gen(r)
                cmd = cli_command(kind, secret, r)
                tpl = CLI_WRAP[syntax][k % len(CLI_WRAP[syntax])]
                esc = ESCAPES.get(syntax, lambda v: v)(cmd)
                head, tail = tpl.split("{C}")
                text = head + esc + tail
                i = text.index(ESCAPES.get(syntax, lambda v: v)(secret), len(head))
                s, e = i, i + len(secret)
                out.append(case(fam.id, syntax, "pos", label, text, (s, e), (s, e)))
                continue
            got = gen(r)
            value, span = (got, (0, len(got))) if isinstance(got, str) else got
            tpls = fam.extra.get(syntax)
            if syntax == "header" and tpls is None and fam.names.header is None:
                continue
            secret = value[span[0]:span[1]]
            if "\n" in value and syntax not in ("json", "json-esc", "json-esc2"):
                # one line: a multi-line value (PEM) is printed with literal \n escapes
                value, secret = value.replace("\n", "\\n"), secret.replace("\n", "\\n")
            start = value.index(secret)
            text, vs, ve = render(syntax, fam.names, value, k, tpls)
            esc = ESCAPES.get(syntax, lambda v: v)
            s = vs + len(esc(value[:start]))
            allowed = (0, len(text)) if syntax in fam.whole_line_allowed else (vs, ve)
            out.append(case(fam.id, syntax, "pos", label, text, (s, s + len(esc(secret))), allowed))
    return out


def negatives(r: random.Random, families):
    out = []
    named = [f for f in families if f.id not in ("cli-credentials", "private-key", "base64-wrapped", "jwt")]
    values = ([("reference", lbl, v) for lbl, v in REFERENCE_VALUES] + [("placeholder", v, v) for v in PLACEHOLDER_VALUES]
              + [("masked", v, v) for v in MASKED_VALUES])
    n = 0
    for syntax in ALL_SYNTAXES:
        if syntax in ("bare", "url-path", "url-userinfo"):
            continue
        for group, label, v in values:
            fam = named[n % len(named)]
            n += 1
            value = fam.names.fill(v)
            if syntax == "header" and fam.names.header is None:
                fam = named[0]
                value = fam.names.fill(v)
            text, _, _ = render(syntax, fam.names, value, n)
            out.append(case(group, syntax, "neg", f"{label} ({fam.id})", text, None, None))
    # shape negatives in neutral contexts, fakes under the family's name too
    neutral = ["{\"level\":30,\"msg\":\"cache hit\",\"id\":\"{V}\"}", "object {V} stored", "ref={V} status=ok",
               "GET /v1/objects/{V} 404"]
    for fam in families:
        for i, (label, gen) in enumerate(fam.shape_negatives):
            for j, tpl in enumerate(neutral):
                value = gen(r)
                text = tpl.replace("{V}", js(value) if tpl.startswith("{") else value)
                out.append(case("shape", "neutral", "neg", f"{fam.id}: {label}", text, None, None))
        for i, (label, gen) in enumerate(fam.fakes):
            for j, syntax in enumerate(["env", "json", "yaml", "header", "bare", "logfmt"]):
                value = gen(r)
                names = fam.names if fam.names.header else named[0].names
                text, _, _ = render(syntax, names, value, i + j)
                out.append(case("fake", syntax, "neg", f"{fam.id}: {label}", text, None, None))
    for i, line in enumerate(IDENTIFIER_LINES):
        out.append(case("identifier", "log", "neg", f"identifier #{i}", line, None, None))
    for i, line in enumerate(GATEWAY_LINES):
        for part in line.split("\n"):
            out.append(case("gateway-log", "log", "neg", f"gateway line #{i}", part, None, None))
    return out


def case(family, syntax, kind, label, text, secret, allowed):
    assert "\n" not in text and "\r" not in text, (family, label)
    return {"family": family, "syntax": syntax, "kind": kind, "label": label, "text": text,
            "secret": list(secret) if secret else None, "allowed": list(allowed) if allowed else None}


def build(seed: int):
    r = random.Random(seed)
    fams = build_families()
    cases = []
    for fam in fams:
        cases.extend(positives(r, fam))
    cases.extend(negatives(r, fams))
    return cases


def bpos(text: str, i: int, enc=lambda s: s) -> int:
    return len(enc(text[:i]).encode("utf-8"))


DOCKER_ID = hashlib.sha256(b"sidecar detection suite").hexdigest()
DOCKER_PREFIX = '{"log":"'


def write(out: str, seed: int):
    cases = build(seed)
    plain_dir = os.path.join(out, "plain")
    cdir = os.path.join(out, "docker", "containers", DOCKER_ID)
    os.makedirs(plain_dir, exist_ok=True)
    os.makedirs(cdir, exist_ok=True)
    with open(os.path.join(plain_dir, "suite.log"), "w", encoding="utf-8", newline="\n") as p, \
            open(os.path.join(cdir, f"{DOCKER_ID}-json.log"), "w", encoding="utf-8", newline="\n") as d, \
            open(os.path.join(out, "truth.jsonl"), "w", encoding="utf-8") as t:
        for n, c in enumerate(cases):
            text = c["text"]
            p.write(text + "\n")
            sec = (f"2026-11-26T10:{n // 3600 % 60:02d}:{n // 60 % 60:02d}.{n % 60:02d}0000001Z")
            d.write(DOCKER_PREFIX + dq(text + "\n") + '","stream":"stdout","time":"' + sec + '"}\n')
            rec = dict(c, n=n)
            del rec["text"]
            for key, span in (("secret", c["secret"]), ("allowed", c["allowed"])):
                if span:
                    rec["plain" if key == "secret" else "plain_allowed"] = [bpos(text, span[0]), bpos(text, span[1])]
                    rec["docker" if key == "secret" else "docker_allowed"] = [
                        len(DOCKER_PREFIX) + bpos(text, span[0], dq), len(DOCKER_PREFIX) + bpos(text, span[1], dq)]
            rec["value_len"] = (c["secret"][1] - c["secret"][0]) if c["secret"] else 0
            t.write(json.dumps(rec, separators=(",", ":")) + "\n")
    meta = {"version": SUITE_VERSION, "seed": seed, "cases": len(cases),
            "positives": sum(c["kind"] == "pos" for c in cases), "negatives": sum(c["kind"] == "neg" for c in cases),
            "docker_id": DOCKER_ID}
    with open(os.path.join(out, "suite.json"), "w") as f:
        json.dump(meta, f, indent=1)
    return meta


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", help="output directory")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--list", action="store_true", help="print families, syntaxes and case counts")
    a = ap.parse_args(argv)
    if a.list or not a.out:
        cases = build(a.seed)
        from collections import Counter
        pos = Counter((c["family"]) for c in cases if c["kind"] == "pos")
        neg = Counter((c["family"]) for c in cases if c["kind"] == "neg")
        for k, v in sorted(pos.items()):
            print(f"pos {k:24} {v}")
        for k, v in sorted(neg.items()):
            print(f"neg {k:24} {v}")
        print(f"total {len(cases)}: {sum(pos.values())} positives, {sum(neg.values())} negatives")
        return 0
    meta = write(a.out, a.seed)
    print(json.dumps(meta))
    return 0


if __name__ == "__main__":
    sys.exit(main())
