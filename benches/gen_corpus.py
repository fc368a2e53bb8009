#!/usr/bin/env python3
"""Deterministic generator of realistic Docker json-file logs with planted secrets and ground truth.

    python3 benches/gen_corpus.py --out DIR --size-mb N [--seed S] [--check]
    python3 benches/gen_corpus.py --out DIR --check          # verify an existing corpus

Writes a Docker-root-like tree for an OpenClaw host:

    DIR/containers/<64-hex id>/<id>-json.log[.1|.2]   six containers, rotated files for three of them
    DIR/truth.jsonl                                    one record per planted secret or decoy
    DIR/corpus.json                                    totals, per-kind and per-context counts, seed

Lines are byte-exact what Docker's json-file driver writes (moby's jsonlog encoder: `\\"` `\\\\` `\\n`
`\\r` `\\t`, other control bytes as `\\u00xx`, `<` `>` `&` as `\\u003c` `\\u003e` `\\u0026`, U+2028/2029
escaped, each invalid UTF-8 byte as `\\ufffd`, RFC3339Nano time with trailing zeros trimmed); a message
of 16384 bytes or more is split into 16384-byte parts (same stream and time, only the last part's log
ends in `\\n`).

A truth record: {"file","kind","context","decoy","ranges":[[start,end],...],"value"} where ranges are
raw byte offsets into the file (end exclusive) covering exactly the bytes of the secret as written
(escape sequences included) and `value` is the secret as the application printed it (so that decoding
the ranges' JSON escapes and concatenating them gives `value`). A secret across a 16 KiB split or a PEM
printed one line per entry has several ranges (PEM: the body lines; BEGIN/END lines are not covered).

Only the standard library is used. Same arguments => byte-identical output. Sizes are MiB.
"""
from __future__ import annotations

import argparse
import base64
import bisect
import calendar
import json
import os
import random
import re
import shutil
import string
import sys
import time
import zlib
from json.encoder import encode_basestring as _enc_str  # C implementation when available

GENERATOR_VERSION = 2
MIB = 1 << 20
PART = 16384  # Docker's copier buffer: longer messages are split into parts of this many bytes
EPOCH = calendar.timegm((2026, 11, 26, 0, 0, 0))

CONTEXTS = ["plain", "json", "json2", "ansi", "tab", "url-path", "url-query", "env", "header", "split",
            "multiline"]

# ----------------------------------------------------------------------------------------------------
# Docker's escaping
# ----------------------------------------------------------------------------------------------------
_RARE = re.compile("[\x08\x0c\u2028\u2029\ud800-\udfff]")
_ASCII_ESC = {}
for _i in range(0x80):
    _c = chr(_i)
    if _c == '"':
        _ASCII_ESC[_c] = '\\"'
    elif _c == "\\":
        _ASCII_ESC[_c] = "\\\\"
    elif _c == "\n":
        _ASCII_ESC[_c] = "\\n"
    elif _c == "\r":
        _ASCII_ESC[_c] = "\\r"
    elif _c == "\t":
        _ASCII_ESC[_c] = "\\t"
    elif _i < 0x20 or _c in "<>&":
        _ASCII_ESC[_c] = "\\u%04x" % _i


def _dq_slow(s: str) -> str:
    out = []
    for ch in s:
        e = _ASCII_ESC.get(ch)
        if e is not None:
            out.append(e)
            continue
        o = ord(ch)
        if 0xD800 <= o <= 0xDFFF:  # a raw byte carried by surrogateescape, or a cut character
            out.append("\\ufffd")
        elif o == 0x2028 or o == 0x2029:
            out.append("\\u%04x" % o)
        else:
            out.append(ch)
    return "".join(out)


def dq(s: str) -> str:
    """Escape `s` as Docker's json-file encoder does (without the surrounding quotes)."""
    if _RARE.search(s):
        return _dq_slow(s)
    e = _enc_str(s)[1:-1]
    if "<" in e:
        e = e.replace("<", "\\u003c")
    if ">" in e:
        e = e.replace(">", "\\u003e")
    if "&" in e:
        e = e.replace("&", "\\u0026")
    return e


def js(s: str) -> str:
    """Escape `s` as JSON.stringify / json.dumps(ensure_ascii=False) do (no quotes)."""
    return _enc_str(s)[1:-1]


def blen(s: str) -> int:
    return len(s) if s.isascii() else len(s.encode("utf-8", "surrogateescape"))


def docker_time(ns: int, _cache={}) -> str:
    sec, frac = divmod(ns, 1_000_000_000)
    base = _cache.get(sec)
    if base is None:
        if len(_cache) > 4096:
            _cache.clear()
        base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
        _cache[sec] = base
    if frac:
        return base + "." + ("%09d" % frac).rstrip("0") + "Z"
    return base + "Z"


# ----------------------------------------------------------------------------------------------------
# Random helpers and value generators
# ----------------------------------------------------------------------------------------------------
DIG = string.digits
LOW = string.ascii_lowercase
UP = string.ascii_uppercase
LET = string.ascii_letters
ALNUM = LET + DIG
B62 = DIG + UP + LOW
URLSAFE = ALNUM + "-_"
HEXL = "0123456789abcdef"
B64 = UP + LOW + DIG + "+/"
B32 = UP + "234567"
UPDIG = UP + DIG
CROCK = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_LOOKS_FAKE = re.compile(r"(?i)x{3}|example|placeholder|redact|test|dummy|sample|fake|\*|changeme|your")


def rs(r: random.Random, alphabet: str, n: int) -> str:
    return "".join(r.choices(alphabet, k=n))


def rsafe(r, alphabet, n):
    """Random string that no allowlist could mistake for a placeholder, with a letter and a digit."""
    while True:
        v = rs(r, alphabet, n)
        if not _LOOKS_FAKE.search(v) and any(c.isdigit() for c in v) and any(c.isalpha() for c in v):
            return v


def b62(n: int, width: int) -> str:
    out = ""
    while n:
        n, d = divmod(n, 62)
        out = B62[d] + out
    return out.rjust(width, "0")


def digits(r, lo, hi):
    return str(r.randint(10 ** (lo - 1), 10 ** hi - 1))


def uuid4(r):
    h = rs(r, HEXL, 32)
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{r.choice('89ab')}{h[17:20]}-{h[20:]}"


def b64url(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).decode().rstrip("=")


def g_openai(r):
    x = r.random()
    if x < 0.40:
        v = "sk-proj-" + rsafe(r, URLSAFE, 74) + "T3BlbkFJ" + rsafe(r, URLSAFE, 74)
    elif x < 0.52:
        v = "sk-proj-" + rsafe(r, ALNUM, 48)
    elif x < 0.67:
        v = "sk-svcacct-" + rsafe(r, URLSAFE, 74) + "T3BlbkFJ" + rsafe(r, URLSAFE, 74)
    elif x < 0.77:
        v = "sk-admin-" + rsafe(r, URLSAFE, 74) + "T3BlbkFJ" + rsafe(r, URLSAFE, 74)
    else:  # legacy: sk- + 48 (20 + T3BlbkFJ + 20)
        v = "sk-" + rsafe(r, ALNUM, 20) + "T3BlbkFJ" + rsafe(r, ALNUM, 20)
    return v


def g_github(r, prefix=None):
    body = rsafe(r, ALNUM, 30)
    return (prefix or r.choice(["ghp_", "ghp_", "gho_", "ghu_", "ghs_", "ghr_"])) + body + b62(
        zlib.crc32(body.encode()), 6)


def g_jwt(r):
    if r.random() < 0.6:
        hdr = {"alg": "HS256", "typ": "JWT"}
        sig = rs(r, URLSAFE, 43)
    else:
        hdr = {"alg": "RS256", "typ": "JWT", "kid": rs(r, HEXL, 16)}
        sig = rs(r, URLSAFE, 342)
    now = 1795737600 + r.randint(0, 86400)
    kind = r.random()
    if kind < 0.33:
        pl = {"sub": uuid4(r), "email": f"user{r.randint(1, 9999)}@example.org", "role": "authenticated",
              "iat": now, "exp": now + 3600, "iss": "https://auth.claw.example.net"}
    elif kind < 0.66:
        pl = {"iss": "supabase", "ref": rs(r, LOW, 20), "role": "service_role", "iat": now - 86400 * 90,
              "exp": now + 86400 * 3650}
    else:
        pl = {"sub": digits(r, 9, 10), "scope": "gateway:admin operator.write", "sid": uuid4(r),
              "aud": "openclaw-gateway", "iat": now, "exp": now + 900}
    enc = lambda o: b64url(json.dumps(o, separators=(",", ":")).encode())  # noqa: E731
    return enc(hdr) + "." + enc(pl) + "." + sig


PEM_TYPES = [
    # label, DER prefix, random length, line width
    ("RSA PRIVATE KEY", bytes.fromhex("308204a40201000282010100"), 1180, 64),
    ("PRIVATE KEY", bytes.fromhex("308204bd020100300d06092a864886f70d0101010500048204a7308204a30201000282010100"),
     1180, 64),
    ("EC PRIVATE KEY", bytes.fromhex("307702010104"), 115, 64),
    ("OPENSSH PRIVATE KEY", b"openssh-key-v1\x00\x00\x00\x00\x04none\x00\x00\x00\x04none\x00\x00\x00\x00\x00\x00\x00"
     b"\x01\x00\x00\x00\x33\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20", 330, 70),
]


def pem_parts(r, types=PEM_TYPES):
    label, prefix, n, width = r.choice(types)
    body = base64.b64encode(prefix + r.randbytes(n)).decode()
    lines = [body[i:i + width] for i in range(0, len(body), width)]
    return label, lines


def g_pem(r, K):
    label, lines = pem_parts(r)
    return [(f"-----BEGIN {label}-----\n", None), ("\n".join(lines), K), (f"\n-----END {label}-----", None)]


def gcp_sa(r, K, pretty=False):
    """Pieces of a service-account JSON document (JSON text; the key body carries literal \\n)."""
    proj = r.choice(["openclaw-prod", "claw-agents", "runclaw-vps"]) + "-" + digits(r, 6, 6)
    acct = r.choice(["openclaw-bot", "gateway-sa", "vertex-runner"])
    email = f"{acct}@{proj}.iam.gserviceaccount.com"
    _, lines = pem_parts(r, [PEM_TYPES[1]])
    f1 = [("type", "service_account"), ("project_id", proj), ("private_key_id", rs(r, HEXL, 40))]
    f2 = [("client_email", email), ("client_id", digits(r, 21, 21)),
          ("auth_uri", "https://accounts.google.com/o/oauth2/auth"),
          ("token_uri", "https://oauth2.googleapis.com/token"),
          ("auth_provider_x509_cert_url", "https://www.googleapis.com/oauth2/v1/certs"),
          ("client_x509_cert_url", "https://www.googleapis.com/robot/v1/metadata/x509/" + email.replace("@", "%40")),
          ("universe_domain", "googleapis.com")]
    if pretty:
        return [f'  "{k}": "{v}",' for k, v in f1], lines, [f'  "{k}": "{v}"' + ("," if i < len(f2) - 1 else "")
                                                            for i, (k, v) in enumerate(f2)]
    head = "{" + ",".join(f'"{k}":"{v}"' for k, v in f1) + ',"private_key":"-----BEGIN PRIVATE KEY-----\\n'
    tail = '\\n-----END PRIVATE KEY-----\\n",' + ",".join(f'"{k}":"{v}"' for k, v in f2) + "}"
    return [(head, None), ("\\n".join(lines), K), (tail, None)]


def password(r, lo=12, hi=24, special="-_.~!*"):
    n = r.randint(lo, hi)
    v = rsafe(r, ALNUM, n)
    if r.random() < 0.4:
        v = list(v)
        for _ in range(r.randint(1, 3)):
            v[r.randrange(1, n - 1)] = r.choice(special)
        v = "".join(v)
    return v


def g_generic(r):
    n = r.randint(20, 40)
    if r.random() < 0.35:
        return password(r, n, n, "!#$%&*+-.=?^_~<>")
    return rsafe(r, r.choice([ALNUM, ALNUM, HEXL + UP, URLSAFE]), n)


USERS = ["openclaw", "admin", "app", "claw", "agent", "ops", "deploy", "postgres", "svc_gateway"]


def g_pw_url(r, K):
    x = r.random()
    pw = password(r) if r.random() < 0.85 else rsafe(r, ALNUM, 14) + "%21" + rsafe(r, ALNUM, 4)
    u = r.choice(USERS)
    if x < 0.4:
        return [(f"postgres{r.choice(['', 'ql'])}://{u}:", None), (pw, K),
                (f"@{r.choice(['db', 'postgres', '10.0.3.7', 'pg.internal'])}:5432/{r.choice(['openclaw', 'app'])}"
                 + r.choice(["", "?sslmode=disable", "?sslmode=require&connect_timeout=10"]), None)]
    if x < 0.65:
        return [(r.choice(["redis://:", "rediss://default:"]), None), (pw, K),
                (f"@{r.choice(['redis', 'cache', '10.0.3.9'])}:6379/{r.randint(0, 3)}", None)]
    if x < 0.82:
        return [(f"amqp://{u}:", None), (pw, K), (f"@{r.choice(['rabbitmq', 'mq'])}:5672/{r.choice(['', '%2F', 'claw'])}",
                                               None)]
    return [(f"https://{u}:", None), (pw, K), ("@" + r.choice(["registry.claw.example.net/v2/", "git.example.net/ops/infra.git",
                                                                  "webdav.example.net/backup/", "proxy.corp.example:3128"]), None)]


def g_basic(r):
    u = r.choice(USERS + ["caddy", "alice", "openclaw-ui"])
    return base64.b64encode(f"{u}:{password(r, 10, 20)}".encode()).decode()


# ----------------------------------------------------------------------------------------------------
# Kind specs
# ----------------------------------------------------------------------------------------------------
class Spec:
    def __init__(self, name, gen, *, env=(), jkey=(), hdr=(), say=(), upath=(), uquery=(), ctx=None,
                 mult=1.0, decoy=False, labeled=False, jfmt=(), json_raw=False, tabfmt=()):
        self.name, self.gen, self.env, self.jkey, self.hdr = name, gen, list(env), list(jkey), list(hdr)
        self.say, self.upath, self.uquery = list(say), list(upath), list(uquery)
        labeled = labeled or decoy  # decoys always carry their own label (uuid "runId", not "key <uuid>")
        self.mult, self.decoy, self.labeled, self.json_raw = mult, decoy, labeled, json_raw
        self.tabfmt = list(tabfmt)
        self.provider = name.split("-")[0]  # names the service in unlabeled forms: "discord token <v>"
        self.jfmt = list(jfmt) or (
            [f'"{k}":"{{v}}"' for k in self.jkey] + [f'"env":{{"{e}":"{{v}}"}}' for e in self.env[:2]]
            + [f'"headers":{{"{h.lower()}":"{p}{{v}}","content-type":"application/json"}}' for h, p in self.hdr[:2]]
            + [f'"url":"{u}"' for u in (self.upath + self.uquery)[:2]])
        if ctx is None:
            ctx = {"plain": 1, "json": 1, "json2": 1, "ansi": 1, "tab": 1, "env": 1, "split": 1}
            if self.hdr:
                ctx["header"] = 1
            if self.upath:
                ctx["url-path"] = 1
            if self.uquery:
                ctx["url-query"] = 1
        self.ctx = ctx

    def pieces(self, r, K):
        v = self.gen(r) if not getattr(self.gen, "wants_key", False) else self.gen(r, K)
        return [(v, K)] if isinstance(v, str) else v


def wants_key(f):
    f.wants_key = True
    return f


def _slack_wh(r, K):
    return [(f"https://hooks.slack.com/services/T{rsafe(r, UPDIG, r.randint(8, 10))}/B{rsafe(r, UPDIG, r.randint(8, 10))}/", None),
            (rsafe(r, ALNUM, 24), K)]


def _paired(r, K):
    raise AssertionError("the AWS pair is generated by Planter.aws")


BEARER = ("Authorization", "Bearer ")
S_ = Spec
SECRETS = [
    S_("openai-api-key", g_openai, env=["OPENAI_API_KEY"], jkey=["apiKey", "openaiApiKey"], hdr=[BEARER, ("authorization", "Bearer ")],
       say=["openai: request failed (401) with key {v}", "[auth] profile openai:default -> {v}",
            "using OpenAI key {v} for model gpt-5-mini", "OPENAI_API_KEY={v}"]),
    S_("anthropic-api-key", lambda r: "sk-ant-api03-" + rsafe(r, URLSAFE, 93) + "AA", env=["ANTHROPIC_API_KEY"],
       jkey=["apiKey", "anthropicApiKey", "key"], hdr=[("x-api-key", ""), ("X-Api-Key", "")],
       say=["anthropic 401 authentication_error: invalid x-api-key {v}", "[auth] profile anthropic:default -> {v}",
            "ANTHROPIC_API_KEY={v} (from .env)"]),
    S_("anthropic-admin-key", lambda r: "sk-ant-admin01-" + rsafe(r, URLSAFE, 93) + "AA", env=["ANTHROPIC_ADMIN_KEY"],
       jkey=["adminKey", "apiKey"], hdr=[("x-api-key", "")], say=["usage sync: admin key {v} accepted",
                                                                  "ANTHROPIC_ADMIN_KEY={v}"]),
    S_("anthropic-oauth-token", lambda r: "sk-ant-oat01-" + rsafe(r, URLSAFE, 93) + "AA",
       env=["CLAUDE_CODE_OAUTH_TOKEN", "ANTHROPIC_AUTH_TOKEN"], jkey=["access", "accessToken", "token"],
       hdr=[BEARER], say=["[auth] anthropic oauth token refreshed: {v} (expires in 28800s)", "setup-token: {v}"]),
    S_("google-api-key", lambda r: "AIza" + rsafe(r, URLSAFE, 35), env=["GEMINI_API_KEY", "GOOGLE_API_KEY"],
       jkey=["apiKey", "geminiApiKey"], hdr=[("x-goog-api-key", "")],
       uquery=["https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent?key={v}",
               "https://maps.googleapis.com/maps/api/geocode/json?address=Berlin&key={v}",
               "https://www.googleapis.com/customsearch/v1?key={v}&cx=017576662512468239146:omuauf_lfve&q=openclaw"],
       say=["gemini: using key {v}", "google places lookup failed: API key {v} not valid"]),
    S_("groq-api-key", lambda r: "gsk_" + rsafe(r, ALNUM, 52), env=["GROQ_API_KEY"], jkey=["apiKey", "groqApiKey"],
       hdr=[BEARER], say=["groq: transcription with key {v}", "whisper provider groq key={v}"]),
    S_("openrouter-api-key", lambda r: "sk-or-v1-" + rs(r, HEXL, 64), env=["OPENROUTER_API_KEY"], jkey=["apiKey"],
       hdr=[BEARER], say=["openrouter: routing anthropic/claude-sonnet-4.5 with key {v}"]),
    S_("xai-api-key", lambda r: "xai-" + rsafe(r, ALNUM, 80), env=["XAI_API_KEY"], jkey=["apiKey", "xaiApiKey"],
       hdr=[BEARER], say=["xai: grok-4 request with key {v}"]),
    S_("mistral-api-key", lambda r: rsafe(r, ALNUM, 32), env=["MISTRAL_API_KEY"], labeled=True,
       jkey=["MISTRAL_API_KEY", "mistralApiKey", "mistral_api_key"],
       jfmt=['"MISTRAL_API_KEY":"{v}"', '"mistralApiKey":"{v}"', '"providers":{"mistral":{"apiKey":"{v}","baseUrl":"https://api.mistral.ai/v1"}}',
             '"env":{"MISTRAL_API_KEY":"{v}"}'],
       say=["MISTRAL_API_KEY={v} loaded from /home/node/.openclaw/.env", "provider mistral: mistral_api_key='{v}'"]),
    S_("deepseek-api-key", lambda r: "sk-" + rs(r, HEXL, 32), env=["DEEPSEEK_API_KEY"], labeled=True,
       jkey=["DEEPSEEK_API_KEY", "deepseekApiKey"],
       jfmt=['"DEEPSEEK_API_KEY":"{v}"', '"deepseekApiKey":"{v}"', '"providers":{"deepseek":{"apiKey":"{v}","baseUrl":"https://api.deepseek.com"}}'],
       say=["DEEPSEEK_API_KEY={v}", "deepseek provider: api key {v} rejected (401)", "models: deepseek/deepseek-chat uses key {v}"]),
    S_("perplexity-api-key", lambda r: "pplx-" + rsafe(r, ALNUM, 48), env=["PERPLEXITY_API_KEY"], jkey=["apiKey"],
       hdr=[BEARER], say=["web_search: perplexity key {v}"]),
    S_("huggingface-token", lambda r: "hf_" + rs(r, LET, 34),
       env=["HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"], jkey=["hfToken", "token"], hdr=[BEARER],
       upath=["https://user:{v}@huggingface.co/spaces/openclaw/demo", "https://hf_user:{v}@huggingface.co/datasets/claw/logs"],
       say=["huggingface: logged in with token {v}"]),
    S_("telegram-bot-token", lambda r: digits(r, 8, 10) + ":AA" + rsafe(r, URLSAFE, 33), env=["TELEGRAM_BOT_TOKEN"],
       jkey=["botToken", "token"], upath=["https://api.telegram.org/bot{v}/sendMessage", "https://api.telegram.org/bot{v}/getUpdates?offset=0&timeout=30",
                                          "https://api.telegram.org/file/bot{v}/photos/file_12.jpg"],
       say=["[telegram] starting provider with token {v}", "telegram: bot token {v} (@openclaw_helper_bot)"]),
    S_("discord-bot-token", lambda r: b64url(digits(r, 18, 19).encode()) + "." + rsafe(r, URLSAFE, 6) + "." + rsafe(
        r, URLSAFE, r.choice([27, 38])), env=["DISCORD_BOT_TOKEN"], jkey=["token", "botToken"], hdr=[("Authorization", "Bot ")],
       say=["[discord] logging in with token {v}", "discord gateway identify token={v}"]),
    S_("discord-webhook", wants_key(lambda r, K: [(f"https://{r.choice(['discord.com', 'discordapp.com'])}/api/webhooks/{digits(r, 18, 19)}/", None),
                                                   (rsafe(r, URLSAFE, 68), K)]),
       env=["DISCORD_WEBHOOK_URL"], jkey=["webhookUrl", "url"], upath=["{v}", "{v}?wait=true"],
       say=["alert sink discord -> {v}", "POST {v} 204"]),
    S_("slack-bot-token", lambda r: f"xoxb-{digits(r, 10, 13)}-{digits(r, 10, 13)}-{rsafe(r, ALNUM, 24)}", env=["SLACK_BOT_TOKEN"],
       jkey=["botToken", "token"], hdr=[BEARER], uquery=["https://slack.com/api/conversations.history?token={v}&channel=C08AB12CD34"],
       say=["[slack] socket mode connected, bot token {v}"]),
    S_("slack-user-token", lambda r: f"xoxp-{digits(r, 10, 13)}-{digits(r, 10, 13)}-{digits(r, 10, 13)}-{rs(r, HEXL, 32)}",
       env=["SLACK_USER_TOKEN"], jkey=["userToken"], hdr=[BEARER], uquery=["https://slack.com/api/search.messages?token={v}&query=deploy"],
       say=["[slack] user token {v} used for search"]),
    S_("slack-app-token", lambda r: f"xapp-1-A{rsafe(r, UPDIG, 10)}-{digits(r, 13, 13)}-{rs(r, HEXL, 64)}", env=["SLACK_APP_TOKEN"],
       jkey=["appToken"], hdr=[BEARER], say=["[slack] apps.connections.open with app token {v}"]),
    S_("slack-webhook", wants_key(_slack_wh), env=["SLACK_WEBHOOK_URL"], jkey=["webhookUrl", "url"],
       upath=["{v}"], say=["alert sink slack -> {v}", "POST {v} 200 ok"]),
    S_("github-pat", g_github, env=["GITHUB_TOKEN", "GH_TOKEN"], jkey=["token", "githubToken"],
       hdr=[("Authorization", "token "), BEARER],
       upath=["https://x-access-token:{v}@github.com/openclaw/skills.git", "https://oauth2:{v}@github.com/acme/infra.git"],
       say=["gh auth: logged in as claw-bot with token {v}", "git clone failed for token {v}"]),
    S_("github-fine-grained-pat", lambda r: "github_pat_11" + rsafe(r, UPDIG, 20) + "_" + rsafe(r, ALNUM, 59),
       env=["GITHUB_TOKEN", "GH_TOKEN"], jkey=["token", "githubToken"], hdr=[BEARER, ("Authorization", "token ")],
       upath=["https://x-access-token:{v}@github.com/openclaw/skills.git"], say=["github skill: token {v} (fine-grained)"]),
    S_("gitlab-pat", lambda r: "glpat-" + rsafe(r, URLSAFE, 20), env=["GITLAB_TOKEN"], jkey=["token"],
       hdr=[("PRIVATE-TOKEN", "")], upath=["https://oauth2:{v}@gitlab.com/acme/claw-config.git"], say=["gitlab: token {v}"]),
    S_("npm-token", lambda r: "npm_" + rsafe(r, ALNUM, 36), env=["NPM_TOKEN"], jkey=["npmToken", "token"], hdr=[BEARER],
       say=["//registry.npmjs.org/:_authToken={v}", "npm publish using token {v}"]),
    S_("stripe-secret-key", lambda r: r.choice(["sk_live_", "sk_live_", "rk_live_"]) + rsafe(r, ALNUM, r.randint(24, 99)),
       env=["STRIPE_SECRET_KEY", "STRIPE_API_KEY"], jkey=["stripeKey", "secretKey", "apiKey"], hdr=[BEARER],
       upath=["https://{v}:@api.stripe.com/v1/charges"], say=["stripe: using key {v}"]),
    S_("aws-access-key-id", wants_key(_paired), env=["AWS_ACCESS_KEY_ID"], hdr=[("Authorization", "AWS4-HMAC-SHA256 Credential=")],
       uquery=["https://claw-media.s3.eu-central-1.amazonaws.com/in/img_8812.jpg?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={v}%2F20261126%2Feu-central-1%2Fs3%2Faws4_request&X-Amz-Date=20261126T201857Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&X-Amz-Signature=3f1c"],
       ctx={"plain": 1, "json": 1, "json2": 1, "ansi": 1, "tab": 1, "env": 1, "split": 1, "header": 1, "url-query": 1}),
    S_("aws-secret-access-key", wants_key(_paired), env=["AWS_SECRET_ACCESS_KEY"], labeled=True,
       ctx={"plain": 1, "json": 1, "json2": 1, "ansi": 1, "tab": 1, "env": 1, "split": 1}),
    S_("gcp-service-account", wants_key(lambda r, K: gcp_sa(r, K)), env=["GOOGLE_APPLICATION_CREDENTIALS_JSON", "GCP_SA_KEY"],
       json_raw=True, jfmt=['"credentials":{v}', '"serviceAccount":{v}', '"config":{"vertex":{"credentials":{v}}}'],
       say=["vertex: loaded service account {v}", "GOOGLE_APPLICATION_CREDENTIALS_JSON={v}"],
       ctx={"plain": 1, "json": 2, "json2": 2, "env": 1, "split": 1, "multiline": 1}),
    S_("jwt", g_jwt, env=["SUPABASE_SERVICE_ROLE_KEY", "SESSION_JWT", "AUTH_TOKEN"], jkey=["id_token", "access_token", "jwt"],
       hdr=[BEARER], uquery=["/auth/callback?access_token={v}&token_type=bearer&expires_in=3600", "/?token={v}"],
       say=["verified session token {v}", "supabase client init with {v}"]),
    S_("private-key-pem", wants_key(lambda r, K: g_pem(r, K)), env=["SSH_PRIVATE_KEY", "DEPLOY_KEY", "JWT_PRIVATE_KEY"],
       jkey=["privateKey", "private_key", "key"], say=["deploy key loaded: {v}", "signing with {v}"],
       ctx={"plain": 1, "json": 1, "json2": 1, "env": 1, "split": 1, "multiline": 6}, mult=2.0),
    S_("password-in-url", wants_key(g_pw_url), env=["DATABASE_URL", "REDIS_URL", "AMQP_URL", "PROXY_URL"],
       jkey=["url", "connectionString", "dsn"], say=["connecting to {v}", "db: pool created for {v}", "retrying connection to {v} in 5s"],
       ctx={"plain": 2, "json": 1, "json2": 1, "ansi": 1, "tab": 1, "env": 2, "split": 1}),
    S_("authorization-bearer", lambda r: rsafe(r, ALNUM + r.choice(["", "-._~", "-_"]), r.randint(32, 64)),
       hdr=[BEARER, ("authorization", "Bearer "), ("Proxy-Authorization", "Bearer ")],
       say=["curl -H 'Authorization: Bearer {v}' https://api.internal.example/v2/jobs", "upstream auth: Authorization: Bearer {v}"],
       jfmt=['"headers":{"authorization":"Bearer {v}","accept":"application/json"}', '"authorization":"Bearer {v}"'], labeled=True,
       ctx={"header": 4, "plain": 1, "json": 1, "json2": 1, "ansi": 1, "split": 1}),
    S_("authorization-basic", g_basic, hdr=[("Authorization", "Basic "), ("authorization", "Basic "), ("Proxy-Authorization", "Basic ")],
       say=["curl -H 'Authorization: Basic {v}' http://127.0.0.1:18789/api/status", "webdav auth header Basic {v}"],
       jfmt=['"headers":{"authorization":"Basic {v}"}', '"authorization":"Basic {v}"'], labeled=True,
       ctx={"header": 4, "plain": 1, "json": 1, "json2": 1, "ansi": 1, "split": 1}),
    S_("openclaw-gateway-token", lambda r: rs(r, HEXL, 48), env=["OPENCLAW_GATEWAY_TOKEN"], hdr=[BEARER],
       jfmt=['"gateway":{"mode":"local","bind":"lan","port":18789,"auth":{"mode":"token","token":"{v}"}}',
             '"auth":{"token":"{v}"}', '"OPENCLAW_GATEWAY_TOKEN":"{v}"', '"url":"http://127.0.0.1:18789/#token={v}"'],
       uquery=["/?token={v}", "/__openclaw__/ws?token={v}", "http://127.0.0.1:18789/#token={v}",
               "https://claw.example.net/#token={v}", "/api/v1/status?token={v}&verbose=1"],
       say=["Dashboard: http://127.0.0.1:18789/#token={v}", "gateway auth token: {v}", "[gateway] auth mode=token token={v}"],
       labeled=True,
       ctx={"plain": 1, "json": 2, "json2": 1, "ansi": 1, "tab": 1, "env": 1, "split": 1, "header": 1, "url-query": 2}),
    S_("generic-secret", g_generic,
       env=["FOO_API_KEY", "DB_PASSWORD", "JWT_SECRET", "SESSION_SECRET", "ENCRYPTION_KEY", "ADMIN_PASSWORD",
            "WEBHOOK_SECRET", "BRAVE_API_KEY", "SMTP_PASSWORD", "POSTGRES_PASSWORD", "MINIO_SECRET_KEY"],
       jkey=["clientSecret", "client_secret", "password", "apiSecret", "webhookSecret", "secretKey"],
       hdr=[("x-api-token", ""), ("X-Client-Secret", ""), ("X-Telegram-Bot-Api-Secret-Token", "")],
       uquery=["/oauth/token?grant_type=client_credentials&client_id=claw&client_secret={v}", "/api/search?q=weather&api_key={v}"],
       say=["exec: node scripts/sync.js --api-token {v} --dry-run", "spawn: backup --password={v} --target s3://claw-bak",
            "DB_PASSWORD={v}", "\"clientSecret\": \"{v}\""], labeled=True,
       ctx={"plain": 2, "json": 2, "json2": 1, "ansi": 1, "tab": 1, "env": 2, "split": 1, "header": 1, "url-query": 1}),
]




# Decoys: never secrets.
_B64_POOL: list[str] = []


def g_b64img(r, K):
    pool = _B64_POOL[r.randrange(len(_B64_POOL))]
    n = r.randint(12_000, 60_000) // 4 * 4
    off = r.randrange(0, len(pool) - n) // 4 * 4
    head, mime = r.choice([("iVBORw0KGgoAAAANSUhEUgAA", "png"), ("/9j/4AAQSkZJRgABAQAAAQABAAD", "jpeg"),
                           ("UklGRlYAAABXRUJQVlA4", "webp")])
    return [(f"data:image/{mime};base64,", None), (head + pool[off:off + n], K)]


def masked_value(r):
    return r.choice([
        lambda: "sk-" + rs(r, LOW, 3) + "…" + rs(r, LOW, 4), lambda: "sk-proj-" + "*" * r.choice([4, 8, 16]),
        lambda: "***", lambda: "[REDACTED]", lambda: "ghp_" + "*" * 36, lambda: "sk-ant-api03-…" + rs(r, ALNUM, 4),
        lambda: "*" * r.randint(8, 20) + rs(r, ALNUM, 4), lambda: "<redacted>", lambda: "REDACTED",
        lambda: "xoxb-****-****", lambda: "********"])()


DECOYS = [
    S_("uuid", uuid4, decoy=True, env=["INSTANCE_ID", "OPENCLAW_INSTANCE_ID"], jkey=["runId", "sessionId", "traceId", "messageId"],
       hdr=[("x-correlation-id", ""), ("x-amzn-trace-id", "")], say=["run {v} finished in 8123ms", "session {v} resumed"],
       upath=["https://claw.example.net/api/sessions/{v}/history", "/api/v1/runs/{v}"], uquery=["/api/v1/runs?after={v}&limit=50"]),
    S_("git-commit", lambda r: rs(r, HEXL, 40), decoy=True, env=["OPENCLAW_GIT_SHA", "GIT_COMMIT", "SOURCE_COMMIT"],
       jkey=["commit", "gitSha", "revision"], say=["openclaw 2026.11.24 ({v})", "build commit {v}", "skills repo at {v}"],
       upath=["https://github.com/openclaw/openclaw/commit/{v}"],
       ctx={"plain": 1, "json": 1, "json2": 1, "env": 1, "url-path": 1, "ansi": 1, "tab": 1, "split": 1}),
    S_("image-digest", lambda r: "sha256:" + rs(r, HEXL, 64), decoy=True, env=["IMAGE_DIGEST"], jkey=["imageDigest", "digest"],
       say=["pulled ghcr.io/openclaw/openclaw@{v}", "image openclaw:latest resolved to {v}"],
       upath=["https://ghcr.io/v2/openclaw/openclaw/manifests/{v}"],
       ctx={"plain": 1, "json": 1, "json2": 1, "env": 1, "url-path": 1, "tab": 1, "split": 1}),
    S_("sha256-digest", lambda r: rs(r, HEXL, 64), decoy=True, env=["ARCHIVE_SHA256"], jkey=["sha256", "checksum", "contentHash"],
       hdr=[("x-amz-content-sha256", "")], say=["verified download {v}  node-v22.11.0-linux-x64.tar.xz", "media stored as {v}.png"],
       ctx={"plain": 1, "json": 1, "json2": 1, "env": 1, "header": 1, "tab": 1, "split": 1}),
    S_("base64-image", wants_key(g_b64img), decoy=True, jkey=["data", "image"], jfmt=['"attachment":{"mime":"image/png","data":"{v}"}',
                                                                                   '"image":"{v}"'],
       ctx={"json": 2, "json2": 1, "split": 1}),
    S_("request-id", lambda r: r.choice([lambda: "req_01J" + rs(r, CROCK, 23), lambda: "req_011C" + rs(r, ALNUM, 20),
                                          lambda: rs(r, HEXL, 32), lambda: "req-" + rs(r, HEXL, 8)])(), decoy=True,
       jkey=["requestId", "request_id"], hdr=[("x-request-id", ""), ("request-id", "")],
       say=["anthropic API error 529 overloaded (request_id={v})", "openai 500 request {v}"], uquery=["/v1/requests?id={v}"],
       ctx={"plain": 1, "json": 1, "json2": 1, "header": 1, "url-query": 1, "tab": 1}),
    S_("masked", masked_value, decoy=True, env=["OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GITHUB_TOKEN", "DB_PASSWORD"],
       jkey=["apiKey", "token", "password"], hdr=[BEARER, ("x-api-key", "")],
       upath=["postgres://openclaw:{v}@db:5432/openclaw"], uquery=["/?token={v}"],
       say=["openai 401: Incorrect API key provided: {v}", "[auth] anthropic:default key={v}", "token {v} rejected"]),
    S_("placeholder", lambda r: r.choice(["your-api-key-here", "<token>", "${OPENAI_API_KEY}", "xxxxxxxxxxxxxxxx", "sk-...",
                                          "sk-xxxxxxxxxxxxxxxxxxxxxxxx", "<YOUR_TOKEN>", "${env:GITHUB_TOKEN}", "YOUR_API_KEY_HERE",
                                          "<paste-token-here>", "${OPENCLAW_GATEWAY_TOKEN}"]), decoy=True,
       env=["OPENAI_API_KEY", "TELEGRAM_BOT_TOKEN", "ANTHROPIC_API_KEY"], jkey=["apiKey", "token"], hdr=[BEARER],
       uquery=["/?token={v}"], say=["set OPENAI_API_KEY={v} in .env first", "example: openclaw config set gateway.auth.token {v}"],
       ctx={"plain": 1, "json": 1, "json2": 1, "env": 1, "header": 1, "url-query": 1, "tab": 1}),
    S_("max-tokens", lambda r: r.choice(["4096", "8192", "1024", "200000", "64000", str(r.randint(1, 90000))]), decoy=True,
       env=["MAX_TOKENS", "OPENCLAW_MAX_TOKENS"], jfmt=['"max_tokens":{v}', '"usage":{"input_tokens":{v},"output_tokens":812}',
                                                    '"maxTokens":{v}', '"max_output_tokens":{v}'],
       say=["max_tokens={v}", "context window: {v} tokens", "token usage: input_tokens={v} output_tokens=512"],
       tabfmt=["max_tokens\t{v}", "tokens:\t{v}"], ctx={"plain": 1, "json": 2, "json2": 1, "ansi": 1, "tab": 1, "env": 1}),
    S_("session-key", lambda r: r.choice([lambda: f"agent:main:telegram:dm:{digits(r, 9, 10)}", lambda: "agent:main:main",
                                          lambda: f"agent:ops:discord:channel:{digits(r, 18, 19)}",
                                          lambda: f"agent:main:slack:channel:C0{rs(r, UPDIG, 9)}"])(), decoy=True,
       jkey=["sessionKey", "key"], say=["session {v} compacted (tokens 41234 -> 9120)", "routing inbound to {v}"],
       uquery=["/api/sessions/history?key={v}"], ctx={"plain": 1, "json": 2, "json2": 1, "ansi": 1, "url-query": 1, "tab": 1}),
    S_("idempotency-key", lambda r: r.choice(["", "idem-"]) + uuid4(r), decoy=True, jkey=["idempotencyKey"],
       hdr=[("Idempotency-Key", ""), ("idempotency-key", "")], ctx={"header": 2, "json": 1, "json2": 1, "plain": 1},
       say=["chat.send idempotencyKey={v} deduplicated"]),
    S_("public-key", lambda r: r.choice([lambda: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI" + rs(r, B64, 43),
                                         lambda: "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABgQ" + rs(r, B64, 512)])(), decoy=True,
       env=["SSH_PUBLIC_KEY", "AUTHORIZED_KEY"], jkey=["publicKey", "sshKey"], say=["added authorized key {v} claw@laptop"],
       ctx={"plain": 1, "json": 1, "json2": 1, "env": 1, "tab": 1, "multiline": 2}),
]
SPECS = {s.name: s for s in SECRETS + DECOYS}

# ----------------------------------------------------------------------------------------------------
# Background text pools
# ----------------------------------------------------------------------------------------------------
WORDS = ("the agent session model tool call result cache request response stream chunk message user assistant system "
         "prompt context window compaction memory file search browser fetch page summary plan step retry queue worker "
         "gateway channel telegram discord slack whatsapp heartbeat cron job schedule config reload health status "
         "latency budget thinking output input reasoning image audio voice transcript skill plugin sandbox exec shell").split()
FILL_LINES = [
    "<div class=\"content\"><p>OpenClaw routes every channel through one gateway process.</p></div>",
    "total 48", "drwxr-xr-x  5 node node 4096 Nov 26 20:11 .", "-rw-r--r--  1 node node 1820 Nov 26 19:02 package.json",
    "  \"dependencies\": { \"undici\": \"^7.16.0\", \"ws\": \"^8.18.3\", \"zod\": \"^4.1.12\" },",
    "[2026-11-26 19:58:01] nginx: worker process started", "Step 3/9 : RUN pnpm install --frozen-lockfile",
    "## Installation\n\nRun the installer, then open the dashboard.", "def handler(event, context):",
    "    return {\"statusCode\": 200, \"body\": json.dumps(result)}", "SELECT id, created_at FROM runs ORDER BY created_at DESC LIMIT 50;",
    "The quick brown fox jumps over the lazy dog while the scheduler waits for the next heartbeat tick.",
    "Weather for Berlin: 7 C, light rain, wind 14 km/h from the west; tomorrow cloudy with sunny spells.",
    "| model | input | output |", "|---|---|---|", "| claude-sonnet-4-5 | 3.00 | 15.00 |",
    "function summarize(text, maxTokens = 1024) { return llm.complete({ prompt: text, max_tokens: maxTokens }); }",
    "PID   USER     TIME  COMMAND", "    1 node      0:03 node dist/index.js gateway --port 18789",
    "Reading package lists... Done", "Building dependency tree... Done", "0 upgraded, 0 newly installed, 0 to remove.",
    "commit 4b825dc642cb6eb9a060e54bf8d69288fbee4904", "Author: Claw Bot <bot@claw.example.net>",
    "    fix(gateway): keep websocket alive during long tool calls",
]
for _i in range(120):
    _r = random.Random(_i)
    FILL_LINES.append(" ".join(_r.choice(WORDS) for _ in range(_r.randint(6, 18))).capitalize() + ".")
FILL_LINES = [ln for ln in FILL_LINES if ln.isascii()]
PAD = ("lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore et dolore "
       "magna aliqua ") * 4

BENIGN_ENV = [
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "NODE_VERSION=22.11.0", "YARN_VERSION=1.22.22",
    "HOME=/home/node", "NODE_ENV=production", "OPENCLAW_STATE_DIR=/home/node/.openclaw", "TZ=UTC", "LANG=C.UTF-8",
    "OPENCLAW_GATEWAY_PORT=18789", "OPENCLAW_GATEWAY_BIND=lan", "PWD=/app", "SHLVL=1", "TERM=xterm",
    "npm_config_cache=/tmp/.npm", "ANTHROPIC_MODEL=claude-sonnet-4-5", "OPENAI_BASE_URL=https://api.openai.com/v1",
    "LOG_LEVEL=info", "TELEGRAM_ALLOWED_USERS=123456789", "MAX_TOKENS=4096", "KEY_PREFIX=oc:",
    "OPENCLAW_GATEWAY_TOKEN_FILE=/run/secrets/gateway_token", "PASSWORD_MIN_LENGTH=12", "TOKEN_TTL_SECONDS=3600",
    "API_KEY_HEADER=x-api-key", "SECRET_STORE=file", "COREPACK_ENABLE_DOWNLOAD_PROMPT=0", "PNPM_HOME=/home/node/.local/share/pnpm",
    "OPENCLAW_CONFIG_PATH=/home/node/.openclaw/openclaw.json", "CHROME_PATH=/usr/bin/chromium", "UV_THREADPOOL_SIZE=8",
]

NODE_FRAMES = [
    "    at TLSSocket.onConnectEnd (node:_tls_wrap:1727:19)", "    at TLSSocket.emit (node:events:530:35)",
    "    at endReadableNT (node:internal/streams/readable:1698:12)",
    "    at process.processTicksAndRejections (node:internal/process/task_queues:82:21)",
    "    at async AgentRunner.run (/app/dist/agents/runner.js:412:17)",
    "    at async Gateway.handleChatSend (/app/dist/gateway/server-methods/chat.js:1288:9)",
    "    at async Promise.all (index 0)", "    at Object.fetch (node:internal/deps/undici/undici:13502:13)",
    "    at async streamAnthropic (/app/dist/providers/anthropic.js:221:22)",
    "    at TCPConnectWrap.afterConnect [as oncomplete] (node:net:1607:16)",
    "    at WebSocket.emit (node:events:518:28)", "    at Receiver.receiverOnMessage (/app/node_modules/ws/lib/websocket.js:1220:20)",
    "    at async runEmbeddedPiAgent (/app/dist/agents/pi-embedded-runner.js:780:5)",
]
NODE_ERRORS = [
    "Error: connect ECONNREFUSED 172.18.0.4:6379", "AbortError: This operation was aborted",
    "TypeError: Cannot read properties of undefined (reading 'content')",
    "FetchError: request to https://api.anthropic.com/v1/messages failed, reason: socket hang up",
    "Error [ERR_STREAM_PREMATURE_CLOSE]: Premature close", "Error: 429 {\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\"}}",
    "SyntaxError: Unexpected token '<', \"<!DOCTYPE \"... is not valid JSON",
]
MODELS = [("anthropic", "claude-sonnet-4-5"), ("anthropic", "claude-opus-4-1"), ("anthropic", "claude-haiku-4-5"),
          ("openai", "gpt-5"), ("openai", "gpt-5-mini"), ("google", "gemini-2.5-pro"), ("openrouter", "deepseek/deepseek-chat"),
          ("groq", "llama-3.3-70b-versatile"), ("xai", "grok-4")]
TOOLS = ["exec", "read", "write", "edit", "web_fetch", "web_search", "browser", "message", "cron", "sessions_send",
         "image", "canvas", "nodes", "memory_search"]
CHANNELS = ["telegram", "discord", "slack", "whatsapp", "webchat", "signal"]
SUBSYS = ["gateway", "ws", "agent/embedded", "telegram", "discord", "slack", "diagnostic", "heartbeat", "canvas",
          "browser/service", "hooks", "cron", "memory", "models", "auth"]
CHAT_TEXTS = ["Привет! Can you summarize this article? 🙂", "remind me tomorrow at 9 to call the dentist",
              "what's the weather in Zürich?", "please deploy the staging branch", "¿Puedes traducir esto al inglés?",
              "check my calendar for next week", "今日の予定は？", "grazie mille 🙏", "open the PR and review the diff",
              "turn the living room lights off"]
UA = ["Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
      "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
      "TelegramBot (like TwitterBot)", "Slackbot 1.0 (+https://api.slack.com/robots)", "curl/8.11.0", "openclaw-cli/2026.11.24",
      "Uptime-Kuma/2.0.2"]
URIS = ["/", "/api/v1/status", "/api/sessions?limit=20", "/__openclaw__/ws", "/assets/index-4f3c2a.js", "/favicon.ico",
        "/telegram/webhook", "/slack/events", "/api/v1/runs?after=0&limit=50", "/__openclaw__/canvas/index.html",
        "/health", "/api/media/inbound/img_4412.jpg", "/robots.txt", "/.env", "/wp-login.php"]
ANSI_OPEN = ["\x1b[33m", "\x1b[32m", "\x1b[36m", "\x1b[1m", "\x1b[38;5;214m", "\x1b[35m", "\x1b[31m"]
ANSI_CLOSE = ["\x1b[39m", "\x1b[0m", "\x1b[22m", "\x1b[m"]
LEVELS = {"debug": ("\x1b[34mDEBUG\x1b[39m", 20), "info": ("\x1b[32mINFO\x1b[39m", 30), "warn": ("\x1b[33mWARN\x1b[39m", 40),
          "error": ("\x1b[31mERROR\x1b[39m", 50)}

# ----------------------------------------------------------------------------------------------------
# Output: one json-file log
# ----------------------------------------------------------------------------------------------------


class Rec:
    __slots__ = ("kind", "context", "decoy", "ranges", "value", "file")

    def __init__(self, kind, context, decoy):
        self.kind, self.context, self.decoy, self.ranges, self.value, self.file = kind, context, decoy, [], [], None


class LogFile:
    HEAD = '{"log":"'

    def __init__(self, root, rel, attrs):
        self.rel = rel
        self.f = open(os.path.join(root, rel), "wb")
        self.buf = []
        self.pending = 0
        self.off = 0
        self.lines = 0
        a = ('"attrs":' + attrs + ",") if attrs else ""
        self.mid = ('","stream":"stdout",' + a + '"time":"', '","stream":"stderr",' + a + '"time":"')
        self.recs: list[Rec] = []

    def _put(self, line):
        self.buf.append(line)
        n = len(line) if line.isascii() else len(line.encode("utf-8"))
        self.off += n
        self.lines += 1
        self.pending += n
        if self.pending > 4 * MIB:
            self.flush()

    def flush(self):
        if self.buf:
            self.f.write("".join(self.buf).encode("utf-8"))
            self.buf = []
            self.pending = 0

    def close(self):
        self.flush()
        self.f.close()

    def emit(self, text, err, ts):
        """One message without planted values (`text` without its newline)."""
        if len(text) < 4000:
            self._put('{"log":"' + dq(text) + "\\n" + self.mid[err] + ts + '"}\n')
        else:
            self.emit_segs([(text, None)], err, ts)

    def emit_segs(self, segs, err, ts):
        """One message made of segments (text, Rec|None); records get their raw byte ranges."""
        content = "".join(t for t, _ in segs)
        b = content.encode("utf-8", "surrogateescape")
        tagged = []
        pos = 0
        for t, rec in segs:
            n = blen(t)
            if rec is not None and n:
                tagged.append((pos, pos + n, rec))
                rec.value.append(t)
                if rec.file is None:
                    rec.file = self
                    self.recs.append(rec)
                assert rec.file is self
            pos += n
        L = len(b)
        parts = []
        i = 0
        while L - i >= PART:
            parts.append((i, i + PART, False))
            i += PART
        parts.append((i, L, True))
        mid = self.mid[err]
        for ps, pe, last in parts:
            pb = b[ps:pe]
            esc = dq(pb.decode("utf-8", "surrogateescape"))
            cstart = self.off + 8
            for s, e, rec in tagged:
                a, z = max(s, ps), min(e, pe)
                if a < z:
                    ra = cstart + blen(dq(b[ps:a].decode("utf-8", "surrogateescape")))
                    rz = cstart + blen(dq(b[ps:z].decode("utf-8", "surrogateescape")))
                    rec.ranges.append([ra, rz])
            self._put('{"log":"' + esc + ("\\n" if last else "") + mid + ts + '"}\n')


# ----------------------------------------------------------------------------------------------------
# Containers
# ----------------------------------------------------------------------------------------------------
CONTAINERS = [
    # key, compose name, image, share of bytes, rotated files, attrs tag
    ("gw", "openclaw-gateway", "ghcr.io/openclaw/openclaw:2026.11.24", 0.655, 2, None),
    ("caddy", "caddy", "caddy:2.8-alpine", 0.15, 2, None),
    ("worker", "openclaw-worker", "ghcr.io/openclaw/worker:2026.11.24", 0.11, 1, "worker"),
    ("pg", "postgres", "postgres:16.4", 0.045, 0, None),
    ("redis", "redis", "redis:7.2-alpine", 0.035, 0, None),
    ("bot", "telegram-bot", "ghcr.io/acme/claw-telegram-bot:1.4.2", 0.005, 0, "bot"),
]
ROT_SPLIT = {0: [1.0], 1: [0.55, 0.45], 2: [0.36, 0.36, 0.28]}
FAM_CTX = {
    "gw": set(CONTEXTS),
    "bot": {"plain", "json", "ansi", "tab", "env", "header", "url-path", "url-query"},
    "worker": {"plain", "json", "json2", "tab", "env", "header", "ansi", "split", "multiline", "url-path"},
    "caddy": {"header", "url-query", "url-path"},
    "pg": {"plain"},
    "redis": {"plain"},
}
CADDY_KINDS = {"openclaw-gateway-token", "authorization-bearer", "authorization-basic", "jwt", "generic-secret",
               "openai-api-key", "anthropic-api-key"}
PG_KINDS = {"password-in-url", "generic-secret"}
BOT_AFFINITY = {"telegram-bot-token": 25, "discord-bot-token": 15, "discord-webhook": 10, "slack-bot-token": 5}


def allowed(key, kind, ctx):
    S = SPECS[kind]
    if ctx not in FAM_CTX[key]:
        return False
    if key == "caddy":
        if S.decoy:
            return (ctx == "header" and S.hdr) or (ctx == "url-query" and any(u.startswith("/") for u in S.uquery)) or (
                ctx == "url-path" and any(u.startswith("/") for u in S.upath))
        return kind in CADDY_KINDS and ((ctx == "header" and S.hdr) or (ctx == "url-query" and any(
            u.startswith("/") for u in S.uquery)))
    if key == "pg":
        return kind in PG_KINDS or (S.decoy and kind in ("uuid", "git-commit", "sha256-digest"))
    if key == "redis":
        return S.decoy and kind in ("uuid", "sha256-digest", "git-commit")
    return True


class Ctr:
    def __init__(self, key, name, image, seed, root, budgets, nfiles):
        self.key, self.name, self.image = key, name, image
        self.r = random.Random(f"{seed}/container/{key}")
        self.id = rs(random.Random(f"{seed}/id/{key}"), HEXL, 64)
        self.host = self.id[:12]
        self.pid = {"gw": 7, "bot": 1, "worker": 1, "pg": 1, "redis": 1, "caddy": 1}[key]
        self.ns = (EPOCH + self.r.randint(0, 3600)) * 1_000_000_000 + self.r.randint(0, 999_999_999)
        self.gap = {"gw": 45e6, "caddy": 60e6, "worker": 300e6, "pg": 2e9, "redis": 3e9, "bot": 5e9}[key]
        self.sessions = [f"agent:main:{c}:dm:{digits(self.r, 9, 10)}" for c in CHANNELS] + ["agent:main:main"]
        self.run = uuid4(self.r)
        self.conn = rs(self.r, HEXL, 12)

    # clock
    def tick(self, small=False):
        self.ns += int(self.r.expovariate(1.0 / (2e4 if small else self.gap))) + 1
        return docker_time(self.ns)

    def ms(self):
        return self.ns // 1_000_000 - self.r.randint(0, 3)

    def iso(self):
        ms = self.ns // 1_000_000
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + ".%03dZ" % (ms % 1000)

    def clock(self):
        ms = self.ns // 1_000_000
        return time.strftime("%H:%M:%S", time.gmtime(ms // 1000)) + ".%03d" % (ms % 1000)

    def pyts(self):
        ms = self.ns // 1_000_000
        return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ms // 1000)) + ",%03d" % (ms % 1000)

    # line heads used by planted and background lines
    def pino(self, level=30, module=None):
        h = f'{{"level":{level},"time":{self.ms()},"pid":{self.pid},"hostname":"{self.host}"'
        return h + (f',"module":"{module}"' if module else "")

    def json_head(self, r, msg, level=30):
        if self.key == "worker":
            return (f'{{"level":"{ {20: "debug", 30: "info", 40: "warning", 50: "error"}[level] }",'
                    f'"logger":"openclaw.worker.{r.choice(["jobs", "providers", "http", "sync"])}","event":"{msg}",')
        return self.pino(level, r.choice(["agents/auth", "providers", "gateway/http", "config", "tools", None])) + f',"msg":"{msg}",'

    def json_tail(self, r):
        if self.key == "worker":
            return f',"timestamp":"{self.iso()[:-1]}{r.randint(0, 999):03d}Z"}}'
        return r.choice(["}", f',"durationMs":{r.randint(3, 9000)}}}', f',"reqId":"req-{rs(r, B62, 6)}"}}'])

    def plain_head(self, r, level="info"):
        k = self.key
        if k == "worker":
            return f"{self.pyts()} {level.upper()} [openclaw.worker.{r.choice(['jobs', 'providers', 'http'])}] "
        if k == "bot":
            return f"[bot] {self.iso()} {level} "
        if k == "pg":
            return f"{self.pyts().replace(',', '.')} UTC [{r.randint(30, 9000)}] LOG:  "
        if k == "redis":
            return f"1:M {time.strftime('%d %b %Y %H:%M:%S', time.gmtime(self.ns // 10**9))}.{r.randint(0, 999):03d} * "
        return f"{self.iso()} [{r.choice(SUBSYS)}] "

    def ansi_head(self, r, level="info"):
        lv = LEVELS[level][0]
        return f"\x1b[90m{self.clock()}\x1b[39m {lv} \x1b[36m[{r.choice(SUBSYS)}]\x1b[39m "


# ----------------------------------------------------------------------------------------------------
# Planted values in each context
# ----------------------------------------------------------------------------------------------------


def lit(P):
    """Pieces as a non-JSON log prints them: real newlines become literal \\n."""
    return [(t.replace("\n", "\\n"), k) for t, k in P]


def jsp(S, P):
    """Pieces as a JSON value string content (or raw JSON when the value is a JSON document)."""
    return list(P) if S.json_raw else [(js(t), k) for t, k in P]


def fill(tpl, P):
    """Template text with one {v} -> segments."""
    pre, post = tpl.split("{v}", 1)
    return [(pre, None)] + list(P) + [(post, None)]


def label_of(S, r):
    if S.env:
        return r.choice(S.env)
    if S.jkey:
        return r.choice(S.jkey)
    return S.name.upper().replace("-", "_")


def pick_say(S, r):
    forms = list(S.say)
    if not S.labeled and S.env:
        forms += ["{env}={v}", "resolved {env} -> {v}"]
    elif S.env:
        forms += ["{env}={v}", "{env}: '{v}'"]
    if not forms:
        forms = ["value {v}"]
    return r.choice(forms).replace("{env}", label_of(S, r))


def seg_escape(segs, f):
    return [(f(t), k) for t, k in segs]


def _aws_segs(r, recs, style):
    """The AWS pair in one style; returns list of messages-as-segments (one or two)."""
    kid = "AKIA" + rs(r, B32, 16)
    sec = rsafe(r, ALNUM + "/+", 40)
    Ki, Ks = recs
    if style == "env":
        return [[("AWS_ACCESS_KEY_ID=", None), (kid, Ki)], [("AWS_SECRET_ACCESS_KEY=", None), (sec, Ks)]]
    if style == "tab":
        return [[("aws_access_key_id\t", None), (kid, Ki)], [("aws_secret_access_key\t", None), (sec, Ks)]]
    if style == "json":
        return [[('"credentials":{"accessKeyId":"', None), (kid, Ki), ('","secretAccessKey":"', None), (sec, Ks),
                 ('","region":"eu-central-1"}', None)]]
    if style == "ansi":
        return [[("aws: accessKeyId=\x1b[33m", None), (kid, Ki), ("\x1b[39m secretAccessKey=\x1b[33m", None), (sec, Ks),
                 ("\x1b[39m", None)]]
    return [[("s3 upload: using AWS credentials aws_access_key_id=", None), (kid, Ki), (" aws_secret_access_key=", None),
             (sec, Ks), (" region=eu-central-1", None)]]


class Planter:
    def __init__(self, C: Ctr):
        self.C = C
        self.r = C.r

    def make(self, kind, ctx):
        """-> (list of (segs, err)), list of Rec"""
        S = SPECS[kind]
        r = self.r
        recs = []

        def new(k):
            rec = Rec(k, ctx, SPECS[k].decoy)
            recs.append(rec)
            return rec

        if kind in ("aws-access-key-id", "aws-secret-access-key"):
            Ki, Ks = new("aws-access-key-id"), new("aws-secret-access-key")
            msgs = self.aws(ctx, (Ki, Ks), kind)
            return msgs, recs
        K = new(kind)
        if ctx == "multiline":
            return self.multiline(S, K), recs
        P = S.pieces(r, K)
        fn = getattr(self, "c_" + ctx.replace("-", "_"))
        return fn(S, P), recs

    # -- contexts ------------------------------------------------------------------------------------
    def c_plain(self, S, P):
        C, r = self.C, self.r
        if C.key == "pg":
            if S.name == "password-in-url":
                tpl = r.choice(["statement: SELECT dblink_connect('{v}');", "statement: CREATE SERVER fdw OPTIONS (dsn '{v}');"])
            elif S.name == "generic-secret":
                tpl = r.choice(["statement: ALTER ROLE openclaw WITH PASSWORD '{v}';",
                                "statement: CREATE USER grafana WITH LOGIN PASSWORD '{v}';"])
            else:
                tpl = r.choice(["statement: SELECT * FROM runs WHERE id = '{v}';", "checkpoint {v} written"])
            return [([(C.plain_head(r), None)] + fill(tpl, lit(P)), True)]
        if C.key == "redis":
            return [([(C.plain_head(r) + "Loading RDB produced by version 7.2.5 (build ", None)] + lit(P) + [(")", None)],
                     False)]
        say = pick_say(S, r)
        lv = r.choice(["info", "info", "warn", "error", "debug"])
        return [([(C.plain_head(r, lv), None)] + fill(say, lit(P))[0:], lv in ("warn", "error") and r.random() < 0.7)]

    def c_json(self, S, P):
        C, r = self.C, self.r
        frag = r.choice(S.jfmt)
        head = C.json_head(r, r.choice(["provider configured", "auth profile resolved", "request failed", "config loaded",
                                        "tool call", "outbound request"]), r.choice([20, 30, 30, 40, 50]))
        return [([(head, None)] + fill(frag, jsp(S, P)) + [(C.json_tail(r), None)], False)]

    def c_json2(self, S, P):
        C, r = self.C, self.r
        frag = r.choice(S.jfmt)
        inner = [("{" + r.choice(['"provider":"' + r.choice(MODELS)[0] + '",', '"id":"' + uuid4(r) + '",', ""]), None)]
        inner += fill(frag, jsp(S, P)) + [(r.choice(["}", ',"timeout":60000}', ',"retries":2}']), None)]
        inner = seg_escape(inner, js)
        if C.key == "worker":
            head = C.json_head(r, "http.request", 20) + '"body":"'
            return [([(head, None)] + inner + [('"' + C.json_tail(r), None)], False)]
        head = C.pino(r.choice([20, 30, 40]), r.choice(["gateway/ws", "providers", "tools"]))
        field = r.choice(['"msg":"' + r.choice(["provider config ", "request body: ", "tool args: ", "ws frame "]),
                          '"msg":"outbound","body":"', '"msg":"tool call","args":"'])
        return [([(head + "," + field, None)] + inner + [('"}', None)], False)]

    def c_ansi(self, S, P):
        C, r = self.C, self.r
        o, c = r.choice(ANSI_OPEN), r.choice(ANSI_CLOSE)
        lv = r.choice(["info", "warn", "debug", "error"])
        forms = []
        if S.env:
            forms.append(label_of(S, r) + "=")
        if S.jkey:
            forms.append("    " + r.choice(S.jkey) + ": ")
        if S.hdr:
            h, p = r.choice(S.hdr)
            forms.append(f"{h}: {p}")
        if not S.labeled:
            forms.append(S.provider + r.choice([" key ", " token ", " credential "]))
        lab = r.choice(forms) if forms else ""
        head = C.ansi_head(r, lv) + r.choice(["resolved ", "config ", "auth ", ""]) + lab
        return [([(head + o, None)] + lit(P) + [(c + r.choice(["", " \x1b[2m(env)\x1b[22m", " ok"]), None)],
                 lv == "error")]

    def c_tab(self, S, P):
        C, r = self.C, self.r
        if S.tabfmt:
            tpl = r.choice(S.tabfmt)
        else:
            forms = []
            if S.env:
                forms.append(label_of(S, r) + "\t{v}")
            if S.jkey:
                forms.append("  " + r.choice(S.jkey) + ":\t{v}")
            hd = [h for h, p in S.hdr if not p]
            if hd:
                forms.append(r.choice(hd) + ":\t{v}")
            if not S.labeled:
                forms.append(S.provider + "\tdefault\t{v}")
            tpl = r.choice(forms) + r.choice(["", "\tactive", "\t(env)", "\t2026-11-26"])
        head = C.plain_head(r) if r.random() < 0.4 else ""
        return [([(head, None)] + fill(tpl, lit(P)), False)]

    def c_env(self, S, P):
        C, r = self.C, self.r
        name = label_of(S, r)
        style = r.random()
        if style < 0.7:
            line = [(name + "=", None)] + lit(P)
        elif style < 0.85:
            line = [("+ export " + name + "=", None)] + lit(P)
        else:
            line = [("declare -x " + name + '="', None)] + lit(P) + [('"', None)]
        return self.env_dump([line])

    def env_dump(self, lines):
        C, r = self.C, self.r
        msgs = []
        if r.random() < 0.4:
            msgs.append(([(r.choice(["Environment:", "+ env", "[entrypoint] effective environment:", "printenv"]), None)], False))
        benign = r.sample(BENIGN_ENV, r.randint(6, 18))
        benign.insert(0, "HOSTNAME=" + C.host)
        body = [[(b, None)] for b in benign]
        for ln in lines:
            body.insert(r.randint(0, len(body)), ln)
        msgs += [(b, False) for b in body]
        return msgs

    def c_header(self, S, P):
        C, r = self.C, self.r
        h, p = r.choice(S.hdr)
        if C.key == "caddy":
            return [(self.caddy_access(extra_hdr=[(f'"{h[:1].upper() + h[1:]}":["{p}', None)] + jsp(S, P) + [('"]', None)]), True)]
        host = r.choice(["api.anthropic.com", "api.openai.com", "api.telegram.org", "slack.com", "api.github.com",
                         "claw.example.net", "generativelanguage.googleapis.com"])
        if C.key == "worker" and r.random() < 0.6:
            segs = [(f"send: b'POST /v1/{r.choice(['messages', 'chat/completions', 'jobs'])} HTTP/1.1\\r\\nHost: {host}\\r\\n"
                     f"Accept-Encoding: gzip, deflate\\r\\n{h}: {p}", None)] + P + [
                (f"\\r\\nContent-Type: application/json\\r\\nContent-Length: {r.randint(80, 9000)}\\r\\n\\r\\n'", None)]
            return [(segs, False)]
        pre = r.choice(["> ", "", "  ", "-> "])
        lines = [[(f"{pre}{r.choice(['POST', 'GET'])} /{r.choice(['v1/messages', 'v1/chat/completions', 'api/v1/status', 'bot/sendMessage'])} HTTP/1.1", None)],
                 [(f"{pre}Host: {host}", None)], [(f"{pre}user-agent: openclaw/2026.11.24 node/22.11.0", None)],
                 [(f"{pre}content-type: application/json", None)], [(f"{pre}accept: */*", None)]]
        lines.insert(r.randint(2, len(lines)), [(f"{pre}{h}: {p}", None)] + P)
        if r.random() < 0.5:
            lines.append([(r.choice(["< HTTP/1.1 401 Unauthorized", "< HTTP/1.1 200 OK", "< HTTP/2 429"]), None)])
        head = [([(C.plain_head(r, "debug") + "http request headers:", None)], False)] if r.random() < 0.5 else []
        return head + [(ln, False) for ln in lines]

    def url_line(self, S, P, tpls):
        C, r = self.C, self.r
        tpl = r.choice(tpls)
        if C.key == "caddy":
            rel = [t for t in tpls if t.startswith("/")]
            return [(self.caddy_access(uri=fill(r.choice(rel), P)), True)]
        if C.key in ("gw", "bot") and r.random() < 0.45:
            head = C.pino(r.choice([30, 40, 50]), r.choice(["http", "channels", "tools"]))
            return [([(head + ',"msg":"' + r.choice(["outbound request", "fetch failed", "webhook"]) + '","url":"', None)] +
                     fill(tpl, jsp(S, P)) + [('","status":' + str(r.choice([200, 204, 401, 404, 429, 502])) + "}", None)], False)]
        verb = r.choice(["POST ", "GET ", "fetch ", "webhook -> ", "open "])
        return [([(C.plain_head(r) + verb, None)] + fill(tpl, P) + [(r.choice(["", " -> 200", " failed: ETIMEDOUT", " (429, retry in 2s)"]),
                                                                        None)], False)]

    def c_url_path(self, S, P):
        return self.url_line(S, P, S.upath)

    def c_url_query(self, S, P):
        return self.url_line(S, P, S.uquery)

    def c_split(self, S, P):
        C, r = self.C, self.r
        tgt = next(i for i, (t, k) in enumerate(P) if k is not None)
        if C.key == "worker" or r.random() < 0.3:
            # a long plain line: "response body: ..." with the value inside text (newlines shown as spaces)
            head = C.plain_head(r, "debug") + r.choice(["response body: ", "page text: ", "tool output: "])
            snippet = fill(pick_say(S, r), lit(P)) if S.say or S.env else lit(P)
            inner_esc = lambda s: s  # noqa: E731
            joiner = " "
            tail = ""
        else:
            head = (C.pino(20, "tools") + ',"msg":"tool result","tool":"' + r.choice(["exec", "read", "web_fetch", "browser"])
                    + '","toolCallId":"toolu_01' + rs(r, ALNUM, 22) + '","output":"')
            style = r.random()
            if style < 0.4 and S.env:
                snippet = [(label_of(S, r) + "=", None)] + lit(P)
            elif style < 0.7 and S.jfmt:
                snippet = fill(r.choice(S.jfmt), jsp(S, P))
            else:
                snippet = fill(pick_say(S, r), lit(P))
            snippet = seg_escape(snippet, js)
            inner_esc = js
            joiner = "\n"
            tail = '","exitCode":0}'
        # locate the value inside the snippet
        ti = next(i for i, (t, k) in enumerate(snippet) if k is not None and k is P[tgt][1])
        sep = inner_esc(joiner)
        before = blen(head) + blen(sep) + sum(blen(t) for t, _ in snippet[:ti])
        val = snippet[ti][0]
        # cut on a character boundary (Docker would cut inside a character too, but then the decoded value changes)
        k = blen(val[:r.randint(1, max(1, min(len(val) - 1, PART - before - 200)))])
        need = PART - k - before
        assert need > 0
        filler1 = self.filler(need, inner_esc, joiner)
        filler2 = self.filler(r.randint(500, 20000), inner_esc, joiner)
        segs = [(head + filler1 + sep, None)] + snippet + [(inner_esc(joiner) + filler2 + tail, None)]
        return [(segs, False)]

    def filler(self, n, esc, joiner):
        r = self.r
        out = []
        L = 0
        while True:
            ln = r.choice(FILL_LINES)
            ln = esc((ln if joiner == "\n" else ln.replace("\n", " ")) + joiner)
            if L + len(ln) > n:
                break
            out.append(ln)
            L += len(ln)
        pad = n - L
        start = r.randrange(0, 100)
        out.append(PAD[start:start + pad] if pad <= len(PAD) - start else (PAD * (pad // len(PAD) + 2))[start:start + pad])
        s = "".join(out)
        assert len(s) == n and s.isascii()
        return s

    def multiline(self, S, K):
        C, r = self.C, self.r
        err = r.random() < 0.3
        msgs = []
        if S.name == "gcp-service-account":
            f1, lines, f2 = gcp_sa(r, K, pretty=True)
            if r.random() < 0.5:
                msgs.append(([(C.plain_head(r, "debug") + "loaded credentials file:", None)], err))
            msgs.append(([("{", None)], err))
            msgs += [([(x, None)], err) for x in f1]
            msgs.append(([('  "private_key": "-----BEGIN PRIVATE KEY-----\\n', None), ("\\n".join(lines), K),
                          ('\\n-----END PRIVATE KEY-----\\n",', None)], err))
            msgs += [([(x, None)], err) for x in f2]
            msgs.append(([("}", None)], err))
            return msgs
        if S.name == "public-key":
            if r.random() < 0.5:
                label = "PUBLIC KEY"
                body = base64.b64encode(bytes.fromhex("30820122300d06092a864886f70d01010105000382010f00") + r.randbytes(270)).decode()
            else:
                label = "CERTIFICATE"
                body = base64.b64encode(bytes.fromhex("308203") + r.randbytes(r.randint(700, 1000))).decode()
            lines = [body[i:i + 64] for i in range(0, len(body), 64)]
        else:
            label, lines = pem_parts(r)
        intro = r.random()
        if intro < 0.3:
            msgs.append(([(C.plain_head(r, "info") + r.choice(["generated deploy key:", "using key:", "contents of id_rsa:"]), None)], err))
        elif intro < 0.5:
            msgs.append(([(r.choice(["+ cat /run/secrets/deploy_key", "$ cat ~/.ssh/id_ed25519"]), None)], err))
        msgs.append(([(f"-----BEGIN {label}-----", None)], err))
        msgs += [([(ln, K)], err) for ln in lines]
        msgs.append(([(f"-----END {label}-----", None)], err))
        return msgs

    def aws(self, ctx, recs, kind):
        C, r = self.C, self.r
        Ki, Ks = recs
        if ctx == "env":
            return self.env_dump(_aws_segs(r, recs, "env"))
        if ctx == "tab":
            m = _aws_segs(r, recs, "tab")
            return [([(r.choice(["[default]", "      Name                    Value"]), None)], False)] + [(x, False) for x in m]
        if ctx == "json":
            seg = _aws_segs(r, recs, "json")[0]
            return [([(C.json_head(r, "s3 client init"), None)] + seg + [(C.json_tail(r), None)], False)]
        if ctx == "json2":
            seg = seg_escape([("{", None)] + _aws_segs(r, recs, "json")[0] + [("}", None)], js)
            return [([(C.pino(20, "tools") + ',"msg":"tool call","args":"', None)] + seg + [('"}', None)], False)]
        if ctx == "ansi":
            return [([(C.ansi_head(r, "debug"), None)] + _aws_segs(r, recs, "ansi")[0], False)]
        if ctx == "plain":
            return [([(C.plain_head(r, "info"), None)] + _aws_segs(r, recs, "plain")[0], False)]
        if ctx == "header":
            kid = "AKIA" + rs(r, B32, 16)
            Ks.context = None  # not planted in this context
            P = [(kid, Ki), ("/20261126/eu-central-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=" + rs(r, HEXL, 64), None)]
            return self.c_header(SPECS["aws-access-key-id"], P)
        if ctx == "url-query":
            Ks.context = None
            return self.url_line(SPECS["aws-access-key-id"], [("AKIA" + rs(r, B32, 16), Ki)], SPECS["aws-access-key-id"].uquery)
        if ctx == "split":
            seg = _aws_segs(r, recs, "plain")[0]
            # put whichever kind was drawn on the boundary
            tgt = Ki if kind == "aws-access-key-id" else Ks
            other = Ks if tgt is Ki else Ki
            S = SPECS[kind]
            fake = Spec(S.name, None, say=["{v}"])
            P = [(t, (k if k is tgt else None)) for t, k in seg]
            out = self.c_split(fake, P)
            # c_split only tags the target; the other value is inside untagged text: find and tag it
            oval = next(t for t, k in seg if k is other)
            res = []
            for segs, err in out:
                ns = []
                for t, k in segs:
                    if k is None and oval in t:
                        a = t.index(oval)
                        ns += [(t[:a], None), (oval, other), (t[a + len(oval):], None)]
                    else:
                        ns.append((t, k))
                res.append((ns, err))
            return res
        raise ValueError(ctx)

    # -- caddy ---------------------------------------------------------------------------------------
    def caddy_access(self, uri=None, extra_hdr=None):
        C, r = self.C, self.r
        ip = f"{r.choice([203, 198, 185, 172])}.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(1, 254)}"
        ts = C.ns / 1e9
        u = uri if uri is not None else [(r.choice(URIS), None)]
        hdrs = [('"User-Agent":["' + r.choice(UA) + '"],"Accept":["*/*"],"Accept-Encoding":["gzip, deflate, br"]', None)]
        if extra_hdr:
            hdrs += [(",", None)] + extra_hdr
        else:
            hdrs += [(r.choice(['', ',"Authorization":["REDACTED"]', ',"Cookie":["REDACTED"]']), None)]
        segs = [(f'{{"level":"info","ts":{ts:.7f},"logger":"http.log.access.log0","msg":"handled request","request":{{'
                 f'"remote_ip":"{ip}","remote_port":"{r.randint(1024, 65535)}","client_ip":"{ip}","proto":"HTTP/2.0",'
                 f'"method":"{r.choice(["GET", "GET", "POST"])}","host":"claw.example.net","uri":"', None)] + u + [
            ('","headers":{', None)] + hdrs + [
            (f'}},"tls":{{"resumed":false,"version":772,"cipher_suite":4865,"proto":"h2","server_name":"claw.example.net"}}}},'
             f'"bytes_read":{r.choice([0, 0, 312, 1204])},"user_id":"","duration":{r.random() / 20:.6f},"size":{r.randint(0, 90000)},'
             f'"status":{r.choice([200, 200, 200, 101, 204, 304, 401, 404])},"resp_headers":{{"Server":["Caddy"],'
             f'"Content-Type":["application/json; charset=utf-8"]}}}}', None)]
        return segs


# ----------------------------------------------------------------------------------------------------
# Background traffic
# ----------------------------------------------------------------------------------------------------


class Background:
    """Emits ordinary traffic for one container into a LogFile."""

    def __init__(self, C: Ctr, planter: Planter):
        self.C, self.r, self.pl = C, C.r, planter
        self.big_ok = True
        k = C.key
        table = {
            "gw": [(self.gw_pino_llm, 14), (self.gw_pino_usage, 10), (self.gw_pino_ws, 16), (self.gw_pino_tool, 10),
                   (self.gw_plain, 18), (self.gw_ansi, 8), (self.gw_inbound, 6), (self.gw_stack, 1.2), (self.gw_err_json, 2),
                   (self.gw_heartbeat, 3), (self.gw_b64, 0.15), (self.gw_long, 0.15), (self.gw_config, 0.2)],
            "caddy": [(self.caddy_line, 50), (self.caddy_misc, 1)],
            "worker": [(self.wk_plain, 10), (self.wk_json, 10), (self.wk_tb, 0.4), (self.wk_badbytes, 0.3)],
            "pg": [(self.pg_line, 10), (self.pg_startup, 0.05)],
            "redis": [(self.redis_line, 10), (self.redis_startup, 0.05)],
            "bot": [(self.bot_line, 10), (self.gw_ansi, 2)],
        }[k]
        self.fns = [f for f, _ in table]
        self.cum = []
        acc = 0
        for _, w in table:
            acc += w
            self.cum.append(acc)
        self.total = acc

    def step(self, w: LogFile):
        r = self.r
        i = bisect.bisect(self.cum, r.random() * self.total)
        self.fns[i](w)

    # gateway --------------------------------------------------------------------------------------
    def gw_pino_llm(self, w):
        C, r = self.C, self.r
        prov, model = r.choice(MODELS)
        w.emit(C.pino(30, "providers") + f',"reqId":"req-{rs(r, B62, 8)}","runId":"{C.run}","provider":"{prov}","model":"{model}",'
               f'"max_tokens":{r.choice([1024, 4096, 8192, 16000, 32000])},"temperature":{r.choice([0, 0.2, 0.7, 1])},'
               f'"stream":true,"thinking":"{r.choice(["off", "low", "medium", "high"])}","messages":{r.randint(2, 140)},'
               f'"msg":"llm request"}}', False, C.tick())

    def gw_pino_usage(self, w):
        C, r = self.C, self.r
        prov, model = r.choice(MODELS)
        w.emit(C.pino(30, "providers") + f',"reqId":"req-{rs(r, B62, 8)}","model":"{model}","usage":{{"input_tokens":{r.randint(20, 180000)},'
               f'"output_tokens":{r.randint(1, 8000)},"cache_creation_input_tokens":{r.choice([0, 0, r.randint(0, 30000)])},'
               f'"cache_read_input_tokens":{r.randint(0, 150000)}}},"stop_reason":"{r.choice(["end_turn", "tool_use", "max_tokens"])}",'
               f'"durationMs":{r.randint(300, 90000)},"requestId":"req_011C{rs(r, ALNUM, 20)}","msg":"llm response"}}', False, C.tick())

    def gw_pino_ws(self, w):
        C, r = self.C, self.r
        if r.random() < 0.5:
            w.emit(C.pino(20, "gateway/ws") + f',"connId":"{C.conn}","method":"{r.choice(["chat.send", "chat.history", "sessions.list", "node.invoke", "status", "config.get"])}",'
                   f'"id":"{uuid4(r)}","bytes":{r.randint(40, 60000)},"sessionKey":"{r.choice(C.sessions)}","msg":"ws frame"}}', False, C.tick())
        else:
            w.emit(f"{C.iso()} [ws] ⇄ res ✓ {r.choice(['chat.send', 'chat.history', 'sessions.list', 'status', 'agent.wait'])} "
                   f"{r.randint(1, 900)}ms conn={C.conn[:8]}…{C.conn[-4:]} id={uuid4(r)[:8]}…", False, C.tick())

    def gw_pino_tool(self, w):
        C, r = self.C, self.r
        tool = r.choice(TOOLS)
        if r.random() < 0.5:
            args = r.choice([f'{{"command":"ls -la /home/node/.openclaw/workspace","timeout":{r.randint(10, 600)}}}',
                             f'{{"url":"https://docs.python.org/3/library/json.html","maxChars":{r.randint(2000, 50000)}}}',
                             f'{{"query":"{r.choice(WORDS)} {r.choice(WORDS)} news","count":5}}',
                             f'{{"path":"/home/node/.openclaw/workspace/notes/{r.choice(WORDS)}.md"}}'])
            w.emit(C.pino(30, "tools") + f',"runId":"{C.run}","tool":"{tool}","toolCallId":"toolu_01{rs(r, ALNUM, 22)}","args":{args},"msg":"tool call"}}',
                   False, C.tick())
        else:
            w.emit(f"{C.iso()} [agent/embedded] embedded run tool {r.choice(['start', 'end'])}: runId={C.run} tool={tool} "
                   f"toolCallId=toolu_01{rs(r, ALNUM, 22)}", False, C.tick())

    def gw_plain(self, w):
        C, r = self.C, self.r
        x = r.randrange(9)
        if x == 0:
            C.run = uuid4(r)
            prov, model = r.choice(MODELS)
            t = (f"[agent/embedded] embedded run start: runId={C.run} sessionId={uuid4(r)} provider={prov} model={model} "
                 f"thinking={r.choice(['off', 'low', 'high'])} messageChannel={r.choice(CHANNELS)}")
        elif x == 1:
            t = f"[diagnostic] lane task done: lane=main durationMs={r.randint(100, 90000)} active={r.randint(0, 3)} queued={r.randint(0, 5)}"
        elif x == 2:
            t = f"[{r.choice(CHANNELS)}] [default] delivered reply to {digits(r, 9, 10)} ({r.randint(10, 4000)} chars)"
        elif x == 3:
            t = f"[agent/embedded] embedded run done: runId={C.run} durationMs={r.randint(900, 200000)} aborted=false"
        elif x == 4:
            t = f"[memory] indexed {r.randint(1, 40)} files ({r.randint(1, 900)} chunks) in {r.randint(5, 4000)}ms"
        elif x == 5:
            t = f"[models] auth profile {r.choice(MODELS)[0]}:default ok (cooldown none, lastUsed {r.randint(1, 600)}s ago)"
        elif x == 6:
            t = f"[cron] job {uuid4(r)[:8]} \"{r.choice(['morning brief', 'inbox sweep', 'backup check'])}\" next run in {r.randint(1, 1440)}m"
        elif x == 7:
            t = f"[session] {r.choice(C.sessions)} compacted: {r.randint(40000, 190000)} -> {r.randint(5000, 30000)} tokens"
        else:
            t = f"[browser/service] tab {r.randint(1, 9)} navigated to https://{r.choice(['news.ycombinator.com', 'github.com/openclaw/openclaw', 'docs.openclaw.ai'])}/"
        w.emit(f"{C.iso()} {t}", False, C.tick())

    def gw_ansi(self, w):
        C, r = self.C, self.r
        lv = r.choice(["info", "info", "debug", "warn"])
        msg = r.choice(["client connected \x1b[2m(ws, 127.0.0.1:%d)\x1b[22m" % r.randint(30000, 65000),
                        "heartbeat ok \x1b[2m%dms\x1b[22m" % r.randint(1, 80),
                        "reply sent to \x1b[1m%s\x1b[22m" % r.choice(C.sessions),
                        "max_tokens=\x1b[33m%d\x1b[39m model=\x1b[36m%s\x1b[39m" % (r.choice([4096, 8192]), r.choice(MODELS)[1]),
                        "config hot-reloaded \x1b[32m✓\x1b[39m"])
        w.emit(C.ansi_head(r, lv) + msg, lv == "warn", C.tick())

    def gw_inbound(self, w):
        C, r = self.C, self.r
        w.emit(C.pino(30, "channels") + f',"channel":"{r.choice(CHANNELS)}","from":"{digits(r, 9, 10)}","sessionKey":"{r.choice(C.sessions)}",'
               f'"text":{json.dumps(r.choice(CHAT_TEXTS), ensure_ascii=False)},"msg":"inbound message"}}', False, C.tick())

    def gw_stack(self, w):
        C, r = self.C, self.r
        ts = C.tick()
        w.emit(r.choice(NODE_ERRORS), True, ts)
        for fr in r.sample(NODE_FRAMES, r.randint(4, 10)):
            w.emit(fr, True, C.tick(small=True))
        if r.random() < 0.3:
            w.emit("    at <anonymous>", True, C.tick(small=True))
            w.emit("  cause: Error: read ECONNRESET", True, C.tick(small=True))

    def gw_err_json(self, w):
        C, r = self.C, self.r
        e = r.choice(NODE_ERRORS)
        stack = e + "".join("\n" + f for f in r.sample(NODE_FRAMES, 5))
        w.emit(C.pino(50, "gateway") + f',"err":{{"type":"{e.split(":")[0]}","message":{json.dumps(e)},"stack":{json.dumps(stack)}}},'
               f'"msg":"request failed"}}', True, C.tick())

    def gw_heartbeat(self, w):
        C, r = self.C, self.r
        w.emit(C.pino(30, "heartbeat") + f',"sessions":{r.randint(1, 12)},"uptimeSec":{(C.ns // 10**9) % 100000},'
               f'"rssMb":{r.randint(150, 700)},"eventLoopLagMs":{r.random() * 30:.2f},"msg":"heartbeat"}}', False, C.tick())

    def gw_b64(self, w):
        if not self.big_ok:
            return self.gw_heartbeat(w)
        C, r = self.C, self.r
        K = Rec("base64-image", "json", True)
        P = g_b64img(r, K)
        head = C.pino(20, "channels") + f',"channel":"{r.choice(CHANNELS)}","mime":"image/{P[0][0][11:-8]}","msg":"inbound media","data":"'
        w.emit_segs([(head, None)] + P + [('"}', None)], False, C.tick())
        if len(K.ranges) > 1:
            K.context = "split"

    def gw_long(self, w):
        if not self.big_ok:
            return self.gw_plain(w)
        C, r = self.C, self.r
        out = self.pl.filler(r.randint(3000, 40000), js, "\n")
        w.emit(C.pino(20, "tools") + f',"msg":"tool result","tool":"{r.choice(["web_fetch", "exec", "read"])}","output":"' + out + '"}',
               False, C.tick())

    def gw_config(self, w):
        C, r = self.C, self.r
        w.emit(C.pino(30, "config") + ',"msg":"config loaded","config":{"gateway":{"mode":"local","bind":"lan","port":18789,'
               '"auth":{"mode":"token","token":"${OPENCLAW_GATEWAY_TOKEN}"}},"agents":{"defaults":{"model":"anthropic/claude-sonnet-4-5",'
               '"maxTokens":8192,"workspace":"/home/node/.openclaw/workspace"}},"channels":{"telegram":{"enabled":true,'
               '"botToken":"${TELEGRAM_BOT_TOKEN}"}},"logging":{"redactSensitive":"tools"}}}', False, C.tick())

    # caddy -----------------------------------------------------------------------------------------
    def caddy_line(self, w):
        w.emit("".join(t for t, _ in self.pl.caddy_access()), True, self.C.tick())

    def caddy_misc(self, w):
        C, r = self.C, self.r
        w.emit(f'{{"level":"info","ts":{C.ns / 1e9:.7f},"logger":"{r.choice(["tls", "tls.cache.maintenance", "http"])}",'
               f'"msg":"{r.choice(["certificate is valid", "attempting to renew certificate", "served key authentication", "server running"])}",'
               f'"identifier":"claw.example.net"}}', True, C.tick())

    # worker ---------------------------------------------------------------------------------------
    def wk_plain(self, w):
        C, r = self.C, self.r
        t = r.choice([f"job {r.randint(1000, 99999)} done in {r.random() * 9:.2f}s",
                      f"fetched {r.randint(1, 50)} items from queue default",
                      f"transcribed voice note ({r.randint(1, 300)}s audio, {r.randint(10, 900)} tokens)",
                      f"thumbnail created for media/{uuid4(r)}.jpg",
                      f"retrying POST https://api.openai.com/v1/audio/transcriptions (attempt {r.randint(2, 5)})"])
        w.emit(C.plain_head(r, r.choice(["info", "info", "debug", "warning"])) + t, False, C.tick())

    def wk_json(self, w):
        C, r = self.C, self.r
        w.emit(C.json_head(r, r.choice(["job.completed", "job.started", "queue.poll", "cache.hit"]), r.choice([20, 30]))
               + f'"job_id":"{uuid4(r)}","queue":"{r.choice(["default", "media", "sync"])}","duration_ms":{r.randint(1, 9000)},'
               f'"sha256":"{rs(r, HEXL, 64)}"' + C.json_tail(r), False, C.tick())

    def wk_tb(self, w):
        C, r = self.C, self.r
        w.emit(C.plain_head(r, "error") + "job failed", True, C.tick())
        for ln in ["Traceback (most recent call last):", '  File "/app/worker/jobs.py", line 88, in run',
                   "    result = handler(payload)", '  File "/usr/local/lib/python3.12/site-packages/httpx/_client.py", line 1014, in send',
                   "    raise exc", "httpx.ReadTimeout: timed out"]:
            w.emit(ln, True, C.tick(small=True))

    def wk_badbytes(self, w):
        C, r = self.C, self.r
        # raw Latin-1 / truncated UTF-8 bytes written by a library: Docker turns each bad byte into \ufffd
        bad = r.choice([b"caf\xe9 cr\xe8me.txt", b"\xff\xfe\x00binary", b"na\xc3ve trunc\xe2\x82", b"Stra\xdfe 12"])
        w.emit(C.plain_head(r, "warning") + "could not decode filename " + bad.decode("utf-8", "surrogateescape"), True, C.tick())

    # postgres / redis / bot -----------------------------------------------------------------------
    def pg_line(self, w):
        C, r = self.C, self.r
        t = r.choice(["checkpoint starting: time",
                      f"checkpoint complete: wrote {r.randint(1, 900)} buffers ({r.random():.1f}%); 0 WAL file(s) added, 0 removed, "
                      f"{r.randint(0, 3)} recycled; write={r.random() * 30:.3f} s, sync={r.random():.3f} s, total={r.random() * 30:.3f} s",
                      f"automatic vacuum of table \"openclaw.public.runs\": index scans: {r.randint(0, 2)}",
                      f"connection received: host=172.18.0.{r.randint(2, 9)} port={r.randint(30000, 60000)}",
                      "connection authorized: user=openclaw database=openclaw application_name=openclaw-gateway"])
        w.emit(C.plain_head(r) + t, True, C.tick())
        if r.random() < 0.05:
            w.emit(C.plain_head(r).replace("LOG:", "FATAL:") + 'password authentication failed for user "openclaw"', True, C.tick(True))
            w.emit(C.plain_head(r).replace("LOG:", "DETAIL:") + 'Connection matched file "/var/lib/postgresql/data/pg_hba.conf" line 128: "host all all all scram-sha-256"', True, C.tick(True))

    def pg_startup(self, w):
        C = self.C
        w.emit("PostgreSQL Database directory appears to contain a database; Skipping initialization", True, C.tick())
        w.emit("", True, C.tick(True))
        for t in ["starting PostgreSQL 16.4 (Debian 16.4-1.pgdg120+2) on x86_64-pc-linux-gnu, compiled by gcc (Debian 12.2.0-14) 12.2.0, 64-bit",
                  'listening on IPv4 address "0.0.0.0", port 5432', 'listening on Unix socket "/var/run/postgresql/.s.PGSQL.5432"',
                  "database system is ready to accept connections"]:
            w.emit(C.plain_head(self.r) + t, True, C.tick(True))

    def redis_line(self, w):
        C, r = self.C, self.r
        t = r.choice([f"{r.choice([1, 10, 100])} changes in {r.choice([60, 300, 3600])} seconds. Saving...",
                      f"Background saving started by pid {r.randint(20, 9000)}", "DB saved on disk",
                      "Background saving terminated with success",
                      f"Fork CoW for RDB: current {r.randint(0, 9)} MB, peak {r.randint(0, 9)} MB, average {r.randint(0, 9)} MB"])
        w.emit(C.plain_head(r) + t, False, C.tick())

    def redis_startup(self, w):
        C, r = self.C, self.r
        for t in ["1:C 26 Nov 2026 00:00:01.201 # oO0OoO0OoO0Oo Redis is starting oO0OoO0OoO0Oo",
                  "1:C 26 Nov 2026 00:00:01.201 # Redis version=7.2.5, bits=64, commit=00000000, modified=0, pid=1, just started",
                  "1:M 26 Nov 2026 00:00:01.202 * monotonic clock: POSIX clock_gettime", "1:M 26 Nov 2026 00:00:01.202 * Running mode=standalone, port=6379.",
                  "1:M 26 Nov 2026 00:00:01.203 * Server initialized", "1:M 26 Nov 2026 00:00:01.203 * Ready to accept connections tcp"]:
            w.emit(t, False, C.tick(True))

    def bot_line(self, w):
        C, r = self.C, self.r
        t = r.choice([f"polling getUpdates offset={r.randint(10**8, 10**9)}", f"message from {digits(r, 9, 10)}: {r.choice(CHAT_TEXTS)}",
                      "forwarded to gateway ws://openclaw-gateway:18789 (200)", "typing action sent"])
        w.emit(C.plain_head(r) + t, False, C.tick())


# ----------------------------------------------------------------------------------------------------
# Plan and generation
# ----------------------------------------------------------------------------------------------------
SECRET_RATE = 0.6  # planted secrets per kind per MiB
DECOY_RATE = 0.45
MIN_PER_KIND = 4


def alloc(n, weights):
    tot = sum(w for _, w in weights)
    raw = [(c, n * w / tot) for c, w in weights]
    out = {c: int(x) for c, x in raw}
    rest = n - sum(out.values())
    for c, x in sorted(raw, key=lambda cx: -(cx[1] - int(cx[1])))[:rest]:
        out[c] += 1
    return out


def make_plan(size_mib, seed, budgets):
    r = random.Random(f"{seed}/plan")
    items = []
    for S in SECRETS + DECOYS:
        rate = DECOY_RATE if S.decoy else SECRET_RATE
        n = max(MIN_PER_KIND, round(rate * size_mib * S.mult))
        ctxw = list(S.ctx.items())
        if n >= len(ctxw):  # every context at least once
            counts = {c: 1 for c, _ in ctxw}
            for c, k in alloc(n - len(ctxw), ctxw).items():
                counts[c] += k
        else:  # fewer samples than contexts: the main context and a random subset of the others
            top = max(ctxw, key=lambda cw: cw[1])[0]
            counts = {c: 1 for c in [top] + r.sample([c for c, _ in ctxw if c != top], n - 1)}
        for c, k in counts.items():
            items += [(S.name, c)] * k
    shares = {c[0]: c[3] for c in CONTAINERS}
    plan = {c[0]: [] for c in CONTAINERS}
    for kind, ctx in items:
        cands = [(key, shares[key] * (BOT_AFFINITY.get(kind, 1) if key == "bot" else 1))
                 for key in shares if allowed(key, kind, ctx)]
        if not cands:
            raise SystemExit(f"no container for {kind}/{ctx}")
        tot = sum(w for _, w in cands)
        x = r.random() * tot
        for key, w in cands:
            x -= w
            if x <= 0:
                break
        pos = r.uniform(0.01, 0.96) * budgets[key]
        plan[key].append((pos, kind, ctx))
    for key in plan:
        plan[key].sort()
    return plan


def generate(out, size_mib, seed):
    t0 = time.time()
    random.seed(0)
    pool_r = random.Random(f"{seed}/pools")
    _B64_POOL[:] = [base64.b64encode(pool_r.randbytes(200_000)).decode() for _ in range(4)]
    total = int(size_mib * MIB)
    if os.path.exists(os.path.join(out, "containers")):
        if not os.path.exists(os.path.join(out, "corpus.json")):
            raise SystemExit(f"{out}/containers exists but is not a generated corpus; refusing to overwrite")
        shutil.rmtree(os.path.join(out, "containers"))
    os.makedirs(os.path.join(out, "containers"), exist_ok=True)
    budgets = {c[0]: total * c[3] for c in CONTAINERS}
    plan = make_plan(size_mib, seed, budgets)
    files_meta = []
    all_recs = []
    written = 0
    target_cum = 0.0
    for key, name, image, share, nrot, tag in CONTAINERS:
        C = Ctr(key, name, image, seed, out, budgets[key], nrot + 1)
        os.makedirs(os.path.join(out, "containers", C.id), exist_ok=True)
        attrs = json.dumps({"tag": f"{tag}/{C.host}"}, separators=(",", ":")) if tag else None
        pl = Planter(C)
        bg = Background(C, pl)
        items = plan[key]
        ii = 0
        cpos = 0.0  # bytes of this container written so far
        suffixes = [f".{i}" for i in range(nrot, 0, -1)] + [""]
        for fi, (suf, frac) in enumerate(zip(suffixes, ROT_SPLIT[nrot])):
            target_cum += budgets[key] * frac
            budget = target_cum - written
            rel = f"containers/{C.id}/{C.id}-json.log{suf}"
            w = LogFile(out, rel, attrs)
            if key in ("pg", "redis") and fi == 0:
                (bg.pg_startup if key == "pg" else bg.redis_startup)(w)
            last = fi == len(suffixes) - 1
            while w.off < budget or w.lines == 0:
                bg.big_ok = budget - w.off > 200_000
                if ii < len(items) and items[ii][0] <= cpos + w.off:
                    _, kind, ctx = items[ii]
                    ii += 1
                    msgs, recs = pl.make(kind, ctx)
                    for segs, err in msgs:
                        w.emit_segs(segs, err, C.tick(small=True))
                    continue
                bg.step(w)
            if last:  # plants positioned past the end (rounding): emit them now
                while ii < len(items):
                    _, kind, ctx = items[ii]
                    ii += 1
                    msgs, recs = pl.make(kind, ctx)
                    for segs, err in msgs:
                        w.emit_segs(segs, err, C.tick(small=True))
            w.close()
            cpos += w.off
            written += w.off
            files_meta.append({"file": rel, "container": name, "container_id": C.id, "image": image,
                               "bytes": w.off, "lines": w.lines})
            for rec in w.recs:
                if rec.context is None:
                    continue
                all_recs.append((rel, rec))
    # truth
    with open(os.path.join(out, "truth.jsonl"), "w", encoding="utf-8") as f:
        for rel, rec in all_recs:
            if not rec.ranges:
                raise AssertionError(f"record without ranges: {rec.kind}/{rec.context}")
            f.write(json.dumps({"file": rel, "kind": rec.kind, "context": rec.context, "decoy": rec.decoy,
                                "ranges": rec.ranges, "value": "".join(rec.value)}, ensure_ascii=False) + "\n")
    counts = {"secrets": {"kind": {}, "context": {}, "kind_context": {}}, "decoys": {"kind": {}, "context": {}, "kind_context": {}}}
    for rel, rec in all_recs:
        d = counts["decoys" if rec.decoy else "secrets"]
        d["kind"][rec.kind] = d["kind"].get(rec.kind, 0) + 1
        d["context"][rec.context] = d["context"].get(rec.context, 0) + 1
        kc = f"{rec.kind}/{rec.context}"
        d["kind_context"][kc] = d["kind_context"].get(kc, 0) + 1
    for d in counts.values():
        for k in d:
            d[k] = dict(sorted(d[k].items()))
    meta = {
        "generator": "benches/gen_corpus.py", "version": GENERATOR_VERSION, "seed": seed, "size_mb": float(size_mib),
        "bytes": written, "lines": sum(m["lines"] for m in files_meta), "files": len(files_meta),
        "truth_records": len(all_recs), "secrets": sum(1 for _, r in all_recs if not r.decoy),
        "decoys": sum(1 for _, r in all_recs if r.decoy), "counts": counts, "file_list": files_meta,
        "containers": [{"name": c[1], "image": c[2], "id": Ctr(c[0], c[1], c[2], seed, out, 0, 0).id} for c in CONTAINERS],
    }
    with open(os.path.join(out, "corpus.json"), "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=1, sort_keys=False)
        f.write("\n")
    dt = time.time() - t0
    print(f"generated {written / MIB:.1f} MiB ({written} bytes, target {total}), {meta['lines']} lines, "
          f"{len(files_meta)} files, {meta['secrets']} secrets, {meta['decoys']} decoys in {dt:.1f}s", file=sys.stderr)
    return meta


# ----------------------------------------------------------------------------------------------------
# Self-check
# ----------------------------------------------------------------------------------------------------
_TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$")


def _escape_boundaries(raw: str):
    """Positions (char offsets into the escaped log content) that are not inside an escape sequence."""
    bad = set()
    i = 0
    n = len(raw)
    while i < n:
        if raw[i] == "\\":
            ln = 6 if raw[i + 1] == "u" else 2
            bad.update(range(i + 1, i + ln))
            i += ln
        else:
            i += 1
    return bad


def check(out, targets=True):
    t0 = time.time()
    meta = json.load(open(os.path.join(out, "corpus.json"), encoding="utf-8"))
    truth = [json.loads(l) for l in open(os.path.join(out, "truth.jsonl"), encoding="utf-8")]
    by_file = {}
    for i, rec in enumerate(truth):
        by_file.setdefault(rec["file"], []).append(i)
    errors = []
    total_bytes = total_lines = 0
    files = sorted(os.path.relpath(os.path.join(dp, f), out) for dp, _, fs in os.walk(os.path.join(out, "containers")) for f in fs)
    listed = sorted(m["file"] for m in meta["file_list"])
    if files != listed:
        errors.append(f"files on disk {files} != corpus.json {listed}")
    for rel in files:
        data = open(os.path.join(out, rel), "rb").read()
        total_bytes += len(data)
        if not data.endswith(b"\n"):
            errors.append(f"{rel}: does not end with a newline")
        starts = [0]
        content = []  # (content_start, content_end) raw offsets of the log string
        pending = {}
        lines = data.split(b"\n")[:-1]
        total_lines += len(lines)
        off = 0
        for ln_no, line in enumerate(lines, 1):
            try:
                obj = json.loads(line)
            except ValueError as e:
                errors.append(f"{rel}:{ln_no}: invalid JSON: {e}")
                obj = None
            if obj is not None:
                keys = list(obj)
                if keys not in (["log", "stream", "time"], ["log", "stream", "attrs", "time"]):
                    errors.append(f"{rel}:{ln_no}: keys {keys}")
                if obj.get("stream") not in ("stdout", "stderr"):
                    errors.append(f"{rel}:{ln_no}: stream {obj.get('stream')}")
                if not _TIME_RE.match(obj.get("time", "")):
                    errors.append(f"{rel}:{ln_no}: time {obj.get('time')}")
                log = obj["log"]
                a = ('"attrs":' + json.dumps(obj["attrs"], separators=(",", ":")) + ",") if "attrs" in obj else ""
                # a decoded U+FFFD stands for a byte Docker could not decode (the generator never writes U+FFFD)
                re_enc = ('{"log":"' + dq(log.replace("\ufffd", "\udcff")) + '","stream":"' + obj["stream"] + '",' + a + '"time":"' + obj["time"] + '"}').encode()
                if re_enc != line:
                    errors.append(f"{rel}:{ln_no}: not byte-identical to Docker's encoding of its decoded content")
                st = obj["stream"]
                if "\n" in log[:-1]:
                    errors.append(f"{rel}:{ln_no}: newline inside a log entry")
                rawlen = len(log.encode("utf-8")) - 2 * log.count("\ufffd")
                if log.endswith("\n"):
                    if st in pending:
                        p = pending.pop(st)
                        if p["time"] != obj["time"]:
                            errors.append(f"{rel}:{ln_no}: last part time differs from first part")
                        if rawlen > PART:
                            errors.append(f"{rel}:{ln_no}: last part longer than {PART}")
                    elif rawlen - 1 >= PART:
                        errors.append(f"{rel}:{ln_no}: message of {rawlen - 1} bytes not split")
                else:
                    if rawlen != PART:
                        errors.append(f"{rel}:{ln_no}: partial entry of {rawlen} bytes (expected {PART})")
                    p = pending.setdefault(st, {"time": obj["time"]})
                    if p["time"] != obj["time"]:
                        errors.append(f"{rel}:{ln_no}: partial entries with different times")
            cs = off + 8
            ce = off + line.index(b'","stream":"')
            content.append((cs, ce))
            off += len(line) + 1
            starts.append(off)
        if pending:
            errors.append(f"{rel}: unterminated partial message at end of file")
        # truth ranges
        for i in by_file.get(rel, []):
            rec = truth[i]
            pieces = []
            prev_end = -1
            for a, z in rec["ranges"]:
                if not (0 <= a < z <= len(data)) or a < prev_end:
                    errors.append(f"{rel}: {rec['kind']} range {a},{z} out of order or bounds")
                    continue
                prev_end = z
                li = bisect.bisect_right(starts, a) - 1
                cs, ce = content[li]
                if not (cs <= a and z <= ce):
                    errors.append(f"{rel}:{li + 1}: {rec['kind']}/{rec['context']} range {a},{z} not inside the log string [{cs},{ce})")
                    continue
                raw = data[cs:ce].decode("utf-8")
                bad = _escape_boundaries(raw)
                ca = len(data[cs:a].decode("utf-8"))
                cz = len(data[cs:z].decode("utf-8"))
                if ca in bad or cz in bad:
                    errors.append(f"{rel}:{li + 1}: {rec['kind']} range {a},{z} cuts an escape sequence")
                    continue
                pieces.append(json.loads('"' + data[a:z].decode("utf-8") + '"'))
            if "".join(pieces) != rec["value"]:
                errors.append(f"{rel}: {rec['kind']}/{rec['context']} ranges {rec['ranges']} decode to {''.join(pieces)[:60]!r}, "
                              f"expected {rec['value'][:60]!r}")
        if len(errors) > 50:
            break
    if total_bytes != meta["bytes"] or total_lines != meta["lines"]:
        errors.append(f"totals {total_bytes} bytes / {total_lines} lines != corpus.json {meta['bytes']} / {meta['lines']}")
    target = meta["size_mb"] * MIB
    if abs(total_bytes - target) > 0.02 * target:
        errors.append(f"size {total_bytes} not within 2% of {target}")
    sec = meta["counts"]["secrets"]
    warn = []
    for S in SECRETS:
        n = sec["kind"].get(S.name, 0)
        if n < 3:
            errors.append(f"kind {S.name}: only {n} planted")
        elif targets and meta["size_mb"] >= 256 and n < 60:
            warn.append(f"kind {S.name}: {n} < 60")
    for c in CONTEXTS:
        n = sec["context"].get(c, 0)
        if n == 0:
            (errors if meta["size_mb"] >= 4 else warn).append(f"context {c}: nothing planted")
        elif targets and meta["size_mb"] >= 256 and n < 100:
            warn.append(f"context {c}: {n} < 100")
    for w in warn:
        print("check: warning:", w, file=sys.stderr)
    for e in errors[:50]:
        print("check: FAIL:", e, file=sys.stderr)
    print(f"check: {len(files)} files, {total_lines} lines, {total_bytes} bytes, {len(truth)} truth records: "
          f"{'OK' if not errors else f'{len(errors)} problems'} ({time.time() - t0:.1f}s)", file=sys.stderr)
    return not errors


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output directory (Docker-root-like: DIR/containers/...)")
    ap.add_argument("--size-mb", type=float, help="total size of the logs in MiB (generates the corpus)")
    ap.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    ap.add_argument("--check", action="store_true", help="verify the corpus in --out (after generating, if --size-mb)")
    a = ap.parse_args(argv)
    if a.size_mb is None and not a.check:
        ap.error("give --size-mb to generate and/or --check to verify")
    if a.size_mb is not None:
        if a.size_mb < 1:
            ap.error("--size-mb must be at least 1 (the minimum samples per kind need about 1 MiB)")
        generate(a.out, a.size_mb, a.seed)
    if a.check:
        return 0 if check(a.out) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
