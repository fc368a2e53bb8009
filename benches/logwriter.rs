//! The container of `benches/guard_bench.py`: writes realistic OpenClaw gateway lines to stdout at a
//! fixed rate, every K-th line with a unique, valid GitHub classic token, then exits.
//! Single file, no dependencies; built static for a `FROM scratch` image:
//!
//!     rustc -O -C target-feature=+crt-static --target x86_64-unknown-linux-gnu benches/logwriter.rs -o logwriter
//!
//! Usage: logwriter [--rate N] [--seconds S | --lines N] [--secret-every K] [--seed X] [--start-delay-ms D]
//!                  [--burst ON_MS:OFF_MS] [--straddle-every K] [--long-every K] [--long-mb A:B]
//!                  [--print-tokens]
//!        logwriter --sleep
//!
//! --rate N           lines per second (default 1000; 0 writes nothing, unless --lines is given:
//!                    then 0 means as fast as stdout takes them)
//! --seconds S        how long to write (default 10); exits when done
//! --lines N          write exactly N lines, then exit (instead of rate × seconds)
//! --secret-every K   line K, 2K, 3K… carries a token (default 100; 0 = never)
//! --seed X           mixed into the tokens, so that runs with different seeds use different tokens
//! --start-delay-ms D wait D ms before the first line (lets a reader attach to the log first)
//! --burst ON:OFF     write for ON ms, pause OFF ms, repeat (the rate holds within the ON phases)
//! --straddle-every K line K, 2K… (moved one line on when it is a --secret-every line) is one line of
//!                    16–36 KiB whose token starts 1–35 bytes before byte 16384 of the line (every
//!                    third one: before byte 32768), across Docker's 16 KiB split of the message
//!                    (default 0 = never)
//! --long-every K     line K, 2K… (moved on past --secret-every and --straddle-every lines) is one
//!                    line of A..B MB (10^6 bytes, --long-mb, default 1:10) with four tokens: near its
//!                    start, in the middle, across a 16 KiB boundary, near its end (default 0 = never)
//! --print-tokens     write nothing; print `seq index kind token` for every token the same
//!                    arguments would write (--lines, or rate × seconds), one per line
//! --sleep            write one line, then sleep until killed (idle containers)
//!
//! Pacing: lines go out in batches of about 1 ms worth (rate / 1000 lines, at least 1); batch b
//! starts at its scheduled time start + b·batch/rate (plus the pauses of --burst), so the average
//! rate is exact unless the writer falls behind (then it writes without sleeping until it has caught
//! up). Each line is one `write(2)` on the unbuffered stdout. Nothing else is printed (usage errors
//! go to stderr, exit 2).
//!
//! Token kinds (`--print-tokens`): `plain` (a --secret-every line), `straddle16k`, `straddle32k`,
//! `long-start`, `long-mid`, `long-split`, `long-end`. Token `index` i of line `seq` is
//! `token(seed, seq ^ (i << 48))` (index 0 is the token of line `seq`). The filler of the long and
//! straddling lines is words, spaces and punctuation (no run of 12 or more letters and digits, no
//! character JSON escapes), so that it neither looks like a secret nor moves bytes in Docker's file.
//!
//! A token is `ghp_` + 30 base62 characters (xorshift64 seeded by the seed and the line number)
//! + the CRC32 (IEEE, as zlib.crc32) of those 30 characters in base62, 6 digits, most significant
//! first, alphabet 0-9A-Za-z, padded with `0` on the left: the format GitHub uses and sidecar checks.
#![allow(clippy::disallowed_macros)] // test output; a dead stderr is not tested here
use std::fs::File;
use std::io::Write;
use std::os::unix::io::FromRawFd;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

fn crc32_table() -> [u32; 256] {
    let mut t = [0u32; 256];
    for (i, e) in t.iter_mut().enumerate() {
        let mut c = i as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
        }
        *e = c;
    }
    t
}

fn crc32(table: &[u32; 256], data: &[u8]) -> u32 {
    let mut c = 0xFFFF_FFFFu32;
    for &b in data {
        c = table[((c ^ b as u32) & 0xFF) as usize] ^ (c >> 8);
    }
    c ^ 0xFFFF_FFFF
}

fn base62(mut n: u64, width: usize) -> Vec<u8> {
    let mut out = Vec::new();
    while n > 0 {
        out.push(BASE62[(n % 62) as usize]);
        n /= 62;
    }
    while out.len() < width {
        out.push(b'0');
    }
    out.reverse();
    out
}

struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> Self {
        // splitmix64 of the seed: neighbouring line numbers give unrelated streams; never 0.
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        XorShift(if z == 0 { 0x2545_F491_4F6C_DD1D } else { z })
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

/// The token of line `seq`.
fn token(table: &[u32; 256], seed: u64, seq: u64) -> String {
    let mut rng = XorShift::new(seed.wrapping_mul(0x1000_0000_01B3) ^ seq);
    let body: Vec<u8> = (0..30).map(|_| BASE62[(rng.next() >> 32) as usize % 62]).collect();
    let tail = base62(crc32(table, &body) as u64, 6);
    let mut t = b"ghp_".to_vec();
    t.extend_from_slice(&body);
    t.extend_from_slice(&tail);
    String::from_utf8(t).expect("ascii")
}

fn epoch_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

const ROUTES: &[(&str, &str)] = &[
    ("POST", "/v1/chat/completions"),
    ("GET", "/v1/models"),
    ("POST", "/v1/agents/main/sessions/4f1c2a9e/messages"),
    ("GET", "/health"),
    ("POST", "/hooks/telegram/update"),
    ("GET", "/v1/sessions?limit=50&cursor=eyJpZCI6MTIzfQ"),
    ("POST", "/v1/tools/browser/invoke"),
    ("GET", "/ui/assets/index-3b7f9c1e.js"),
];
const STATUS: &[u16] = &[200, 200, 200, 200, 200, 201, 204, 304, 400, 404, 429, 500];
const CLIENTS: &[&str] = &["172.18.0.1", "172.18.0.7", "10.0.3.15", "192.168.1.42"];

/// A pino-style access line of the gateway (about 190–260 bytes).
fn request_line(seq: u64, r: u64) -> String {
    let (method, url) = ROUTES[(r % ROUTES.len() as u64) as usize];
    let status = STATUS[((r >> 8) % STATUS.len() as u64) as usize];
    let ip = CLIENTS[((r >> 16) % CLIENTS.len() as u64) as usize];
    let ms = (r >> 24) % 4000;
    let level = if status >= 500 {
        50
    } else if status >= 400 {
        40
    } else {
        30
    };
    format!(
        "{{\"level\":{level},\"time\":{},\"pid\":1,\"hostname\":\"openclaw\",\"reqId\":\"req-{seq:x}\",\
         \"req\":{{\"method\":\"{method}\",\"url\":\"{url}\",\"remoteAddress\":\"{ip}\"}},\
         \"res\":{{\"statusCode\":{status}}},\"responseTime\":{}.{},\"msg\":\"request completed\"}}\n",
        epoch_ms(),
        ms / 10,
        ms % 10
    )
}

/// A line with the token of line `seq`, in one of a few contexts.
fn secret_line(table: &[u32; 256], seed: u64, seq: u64, n_secret: u64) -> String {
    let t = token(table, seed, seq);
    match n_secret % 4 {
        0 => format!("gateway: authenticating to GitHub with {t} seq={seq}\n"),
        1 => format!("GITHUB_TOKEN={t}\n"),
        2 => format!(
            "{{\"level\":30,\"time\":{},\"pid\":1,\"hostname\":\"openclaw-gateway\",\"plugin\":\"github\",\
             \"config\":{{\"owner\":\"acme\",\"token\":\"{t}\"}},\"msg\":\"provider config loaded\",\"seq\":{seq}}}\n",
            epoch_ms()
        ),
        _ => format!(
            "[tools/github] request GET https://api.github.com/repos/acme/site/pulls?state=open \
             headers={{\"Accept\":\"application/vnd.github+json\",\"Authorization\":\"token {t}\",\"User-Agent\":\"openclaw\"}} seq={seq}\n"
        ),
    }
}

/// Token `index` of line `seq` (index 0 is `token(seed, seq)`).
fn token_at(table: &[u32; 256], seed: u64, seq: u64, index: u64) -> String {
    token(table, seed, seq ^ (index << 48))
}

/// What line `seq` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Plain,
    Secret,
    Straddle,
    Long,
}

#[derive(Debug, Clone, Copy)]
struct Layout {
    every: u64,
    straddle: u64,
    long: u64,
}

impl Layout {
    fn is_secret(&self, seq: u64) -> bool {
        self.every > 0 && seq > 0 && seq.is_multiple_of(self.every)
    }
    /// Line K, 2K…; when that is a secret line, the line after it.
    fn is_straddle(&self, seq: u64) -> bool {
        let k = self.straddle;
        k > 0
            && seq > 0
            && !self.is_secret(seq)
            && (seq.is_multiple_of(k) || (seq > 1 && (seq - 1).is_multiple_of(k) && self.is_secret(seq - 1)))
    }
    /// Line K, 2K…; when that is a secret or straddling line, the first line after it that is neither.
    fn is_long(&self, seq: u64) -> bool {
        let k = self.long;
        if k == 0 || seq == 0 || self.is_secret(seq) || self.is_straddle(seq) {
            return false;
        }
        (0..4u64).any(|d| {
            d < seq && (seq - d).is_multiple_of(k) && (seq - d..seq).all(|s| self.is_secret(s) || self.is_straddle(s))
        })
    }
    fn kind(&self, seq: u64) -> Kind {
        if self.is_secret(seq) {
            Kind::Secret
        } else if self.is_straddle(seq) {
            Kind::Straddle
        } else if self.is_long(seq) {
            Kind::Long
        } else {
            Kind::Plain
        }
    }
}

/// A random stream for the shape of line `seq` (where its tokens go, how long it is).
fn shape_rng(seed: u64, seq: u64) -> XorShift {
    XorShift::new(seed ^ seq.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ 0x5354_5241_4444_4c45)
}

/// Where the token of a straddling line starts: (split 1 or 2, bytes before split·16384: 1..=35).
fn straddle_shape(seed: u64, seq: u64) -> (u64, u64) {
    let h = shape_rng(seed, seq).next();
    let before = 1 + (h >> 8) % 35;
    let split = if (h >> 24).is_multiple_of(3) { 2 } else { 1 };
    (split, before)
}

/// The byte length (newline included) of a long line and the offsets of its four tokens.
fn long_shape(seed: u64, seq: u64, mb: (u64, u64)) -> (usize, [usize; 4]) {
    let mut r = shape_rng(seed, seq);
    let (a, b) = mb;
    let len = ((a + r.next() % (b - a + 1)) * 1_000_000) as usize;
    let start = 128 + (r.next() % 256) as usize;
    // The middle: away from a 16 KiB boundary (that is the third token's job).
    let mut mid = len / 2 + (r.next() % 4096) as usize;
    if mid % 16384 < 64 || mid % 16384 > 16384 - 64 {
        mid += 256;
    }
    // Across the boundary about three quarters in, 1..=35 bytes before it.
    let split = (len * 3 / 4) / 16384 * 16384 - 1 - (r.next() % 35) as usize;
    let end = len - 1 - 40 - 64 - (r.next() % 256) as usize;
    (len, [start, mid, split, end])
}

const WORDS: &[&str] = &[
    "the", "request", "was", "queued", "for", "worker", "pool", "and", "retried", "after", "a", "short", "delay",
    "status", "ok", "cache", "miss", "on", "shard", "session", "resumed", "from", "disk", "reading", "chunk",
    "of", "transcript", "tool", "call", "returned", "rows", "in", "ms", "with", "no", "errors", "agent", "main",
    "replied", "to", "user", "message", "stream", "closed", "by", "peer", "browser", "page", "loaded", "title",
    "index", "file", "written", "bytes", "total", "model", "context", "window", "trimmed", "old", "turns",
    "summary", "updated", "plugin", "github", "listed", "open", "pulls", "state", "draft", "review", "pending",
];
const PUNCT: &[&str] = &[" ", " ", " ", " ", " ", ", ", ". ", ": ", " - ", " (", ") ", "; ", " / ", " = ", " #"];

/// `n` bytes of words, spaces and punctuation: no run of 12 letters or digits, nothing JSON escapes.
fn filler(rng: &mut XorShift, n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n + 16);
    while out.len() < n {
        let r = rng.next();
        out.extend_from_slice(WORDS[(r % WORDS.len() as u64) as usize].as_bytes());
        if (r >> 20).is_multiple_of(5) {
            out.push(b' ');
            out.extend_from_slice(((r >> 32) % 1000).to_string().as_bytes());
        }
        out.extend_from_slice(PUNCT[((r >> 40) % PUNCT.len() as u64) as usize].as_bytes());
    }
    out.truncate(n);
    out
}

const CONTEXTS: &[&str] = &[" using GitHub token ", " GITHUB_TOKEN=", " Authorization: token ", " --token "];

/// Put `ctx` + `tok` + a space into `line` so that the token starts at `at`.
fn place(line: &mut [u8], at: usize, ctx: &str, tok: &str) {
    line[at - ctx.len()..at].copy_from_slice(ctx.as_bytes());
    line[at..at + tok.len()].copy_from_slice(tok.as_bytes());
    line[at + tok.len()] = b' ';
}

/// A single line longer than 16 KiB (Docker splits it) whose token straddles the split.
fn straddle_line(table: &[u32; 256], seed: u64, seq: u64) -> Vec<u8> {
    let (split, before) = straddle_shape(seed, seq);
    let mut r = shape_rng(seed, seq ^ 0xF111);
    let len = (split * 16384) as usize + 512 + (r.next() % 3072) as usize;
    let head = format!("[tools/exec] command output, {} bytes: ", len - 1);
    let mut line = filler(&mut r, len);
    line[..head.len()].copy_from_slice(head.as_bytes());
    let at = (split * 16384 - before) as usize;
    let ctx = CONTEXTS[(r.next() % CONTEXTS.len() as u64) as usize];
    place(&mut line, at, ctx, &token_at(table, seed, seq, 0));
    line[len - 1] = b'\n';
    line
}

/// A line of A..B MB with four tokens.
fn long_line(table: &[u32; 256], seed: u64, seq: u64, mb: (u64, u64)) -> Vec<u8> {
    let (len, at) = long_shape(seed, seq, mb);
    let mut r = shape_rng(seed, seq ^ 0xF222);
    let head = format!("[tools/browser] page text, {} bytes: ", len - 1);
    let mut line = filler(&mut r, len);
    line[..head.len()].copy_from_slice(head.as_bytes());
    for (i, &a) in at.iter().enumerate() {
        let ctx = CONTEXTS[(r.next() % CONTEXTS.len() as u64) as usize];
        place(&mut line, a, ctx, &token_at(table, seed, seq, i as u64));
    }
    line[len - 1] = b'\n';
    line
}

/// The tokens of line `seq`: (index, kind, token).
fn tokens_of(table: &[u32; 256], layout: &Layout, seed: u64, seq: u64) -> Vec<(u64, &'static str, String)> {
    match layout.kind(seq) {
        Kind::Plain => vec![],
        Kind::Secret => vec![(0, "plain", token(table, seed, seq))],
        Kind::Straddle => {
            let kind = if straddle_shape(seed, seq).0 == 2 { "straddle32k" } else { "straddle16k" };
            vec![(0, kind, token(table, seed, seq))]
        }
        Kind::Long => ["long-start", "long-mid", "long-split", "long-end"]
            .iter()
            .enumerate()
            .map(|(i, k)| (i as u64, *k, token_at(table, seed, seq, i as u64)))
            .collect(),
    }
}

fn usage(msg: &str) -> ! {
    eprintln!(
        "logwriter: {msg}\nusage: logwriter [--rate N] [--seconds S | --lines N] [--secret-every K] [--seed X] \
         [--start-delay-ms D] [--burst ON_MS:OFF_MS] [--straddle-every K] [--long-every K] [--long-mb A:B] \
         [--print-tokens] | --sleep"
    );
    std::process::exit(2)
}

fn main() {
    let (mut rate, mut seconds, mut every, mut seed, mut delay_ms, mut sleep) =
        (1000u64, 10u64, 100u64, 0u64, 0u64, false);
    let (mut lines, mut burst, mut straddle, mut long, mut long_mb, mut print_tokens) =
        (None::<u64>, None::<(u64, u64)>, 0u64, 0u64, (1u64, 10u64), false);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut num = |name: &str| -> u64 {
            args.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| usage(&format!("{name} needs a non-negative integer")))
        };
        match a.as_str() {
            "--rate" => rate = num("--rate"),
            "--seconds" => seconds = num("--seconds"),
            "--secret-every" => every = num("--secret-every"),
            "--seed" => seed = num("--seed"),
            "--start-delay-ms" => delay_ms = num("--start-delay-ms"),
            "--lines" => lines = Some(num("--lines")),
            "--straddle-every" => straddle = num("--straddle-every"),
            "--long-every" => long = num("--long-every"),
            "--burst" | "--long-mb" => {
                let pair = args
                    .next()
                    .and_then(|v| {
                        let (x, y) = v.split_once(':')?;
                        Some((x.parse::<u64>().ok()?, y.parse::<u64>().ok()?))
                    })
                    .unwrap_or_else(|| usage(&format!("{a} needs X:Y (non-negative integers)")));
                if a == "--burst" {
                    if pair.0 == 0 {
                        usage("--burst: ON_MS must be at least 1");
                    }
                    burst = Some(pair);
                } else {
                    if pair.0 == 0 || pair.1 < pair.0 || pair.1 > 1000 {
                        usage("--long-mb A:B needs 1 <= A <= B <= 1000");
                    }
                    long_mb = pair;
                }
            }
            "--print-tokens" => print_tokens = true,
            "--sleep" => sleep = true,
            _ => usage(&format!("unknown argument {a}")),
        }
    }
    let layout = Layout { every, straddle, long };
    // SAFETY: fd 1 is stdout, open for the life of the process; the File is never dropped.
    let mut out = std::mem::ManuallyDrop::new(unsafe { File::from_raw_fd(1) });
    let table = crc32_table();
    let total = lines.unwrap_or_else(|| rate.saturating_mul(seconds));
    if print_tokens {
        let mut text = String::new();
        for seq in 1..=total {
            for (i, kind, t) in tokens_of(&table, &layout, seed, seq) {
                text.push_str(&format!("{seq} {i} {kind} {t}\n"));
            }
        }
        if out.write_all(text.as_bytes()).is_err() {
            std::process::exit(1);
        }
        return;
    }
    if sleep {
        let _ = out.write_all(request_line(0, 0x5a5a_1234).as_bytes());
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }
    if delay_ms > 0 {
        std::thread::sleep(Duration::from_millis(delay_ms));
    }
    // Rate 0: nothing, unless --lines asks for lines (then as fast as possible).
    if rate == 0 && lines.is_none() {
        return;
    }
    let unpaced = rate == 0;
    let batch = if unpaced { total.max(1) } else { (rate / 1000).max(1) };
    let start = Instant::now();
    let mut paused = Duration::ZERO; // --burst pauses so far, shifting the schedule
    let mut phase = start; // start of the current --burst ON phase
    let mut rng = XorShift::new(seed ^ 0xA5A5_A5A5);
    let mut n = 0u64; // lines written
    let mut secrets = 0u64;
    while n < total {
        if !unpaced {
            let due = start + paused + Duration::from_nanos((n as u128 * 1_000_000_000 / rate as u128) as u64);
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
        }
        let end = (n + batch).min(total);
        while n < end {
            if let Some((on, off)) = burst {
                if phase.elapsed() >= Duration::from_millis(on) {
                    let t = Instant::now();
                    std::thread::sleep(Duration::from_millis(off));
                    paused += t.elapsed();
                    phase = Instant::now();
                }
            }
            let seq = n + 1;
            let line = match layout.kind(seq) {
                Kind::Secret => {
                    secrets += 1;
                    secret_line(&table, seed, seq, secrets).into_bytes()
                }
                Kind::Straddle => straddle_line(&table, seed, seq),
                Kind::Long => long_line(&table, seed, seq, long_mb),
                Kind::Plain => request_line(seq, rng.next()).into_bytes(),
            };
            if out.write_all(&line).is_err() {
                std::process::exit(1);
            }
            n += 1;
        }
    }
}
