//! The container of `benches/guard_bench.py`: writes realistic OpenClaw gateway lines to stdout at a
//! fixed rate, every K-th line with a unique, valid GitHub classic token, then exits.
//! Single file, no dependencies; built static for a `FROM scratch` image:
//!
//!     rustc -O -C target-feature=+crt-static --target x86_64-unknown-linux-gnu benches/logwriter.rs -o logwriter
//!
//! Usage: logwriter [--rate N] [--seconds S] [--secret-every K] [--seed X] [--start-delay-ms D]
//!        logwriter --sleep
//!
//! --rate N           lines per second (default 1000; 0 writes nothing)
//! --seconds S        how long to write (default 10); exits when done
//! --secret-every K   line K, 2K, 3K… carries a token (default 100; 0 = never)
//! --seed X           mixed into the tokens, so that runs with different seeds use different tokens
//! --start-delay-ms D wait D ms before the first line (lets a reader attach to the log first)
//! --sleep            write one line, then sleep until killed (idle containers)
//!
//! Pacing: lines go out in batches of about 1 ms worth (rate / 1000 lines, at least 1); batch b
//! starts at its scheduled time start + b·batch/rate, so the average rate is exact unless the
//! writer falls behind (then it writes without sleeping until it has caught up). Each line is one
//! `write(2)` on the unbuffered stdout. Nothing else is printed (usage errors go to stderr, exit 2).
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

fn usage(msg: &str) -> ! {
    eprintln!("logwriter: {msg}\nusage: logwriter [--rate N] [--seconds S] [--secret-every K] [--seed X] [--start-delay-ms D] | --sleep");
    std::process::exit(2)
}

fn main() {
    let (mut rate, mut seconds, mut every, mut seed, mut delay_ms, mut sleep) =
        (1000u64, 10u64, 100u64, 0u64, 0u64, false);
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
            "--sleep" => sleep = true,
            _ => usage(&format!("unknown argument {a}")),
        }
    }
    // SAFETY: fd 1 is stdout, open for the life of the process; the File is never dropped.
    let mut out = std::mem::ManuallyDrop::new(unsafe { File::from_raw_fd(1) });
    let table = crc32_table();
    if sleep {
        let _ = out.write_all(request_line(0, 0x5a5a_1234).as_bytes());
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }
    if delay_ms > 0 {
        std::thread::sleep(Duration::from_millis(delay_ms));
    }
    if rate == 0 {
        return;
    }
    let total = rate.saturating_mul(seconds);
    let batch = (rate / 1000).max(1);
    let start = Instant::now();
    let mut rng = XorShift::new(seed ^ 0xA5A5_A5A5);
    let mut n = 0u64; // lines written
    let mut secrets = 0u64;
    while n < total {
        let due = start + Duration::from_nanos((n as u128 * 1_000_000_000 / rate as u128) as u64);
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        let end = (n + batch).min(total);
        while n < end {
            let seq = n + 1;
            let line = if every > 0 && seq % every == 0 {
                secrets += 1;
                secret_line(&table, seed, seq, secrets)
            } else {
                request_line(seq, rng.next())
            };
            if out.write_all(line.as_bytes()).is_err() {
                std::process::exit(1);
            }
            n += 1;
        }
    }
}
