//! Criterion benchmarks of the detection engine and the json-file scanner on in-memory data.
//! Run: `cargo bench --bench engine`. The end-to-end benchmark against grep and reference scanners
//! is `python3 benches/e2e.py` (see README).
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use sidecar::logs::jsonfile::encode_line;
use sidecar::logs::scan::{ScanOptions, Scanner};
use sidecar::redact::{Engine, FingerprintKey, Scratch};

/// Deterministic pseudo-random lines resembling an OpenClaw gateway's pino output, ~1 in 200 with a secret.
fn corpus(lines: usize) -> Vec<Vec<u8>> {
    let mut x: u64 = 0x9e3779b97f4a7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let alnum = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    (0..lines)
        .map(|i| {
            let mut rnd = |n: usize| -> String { (0..n).map(|_| alnum[(next() % 62) as usize] as char).collect() };
            let msg = match i % 200 {
                0 => format!("{{\"level\":50,\"msg\":\"provider error\",\"apiKey\":\"sk-proj-{}\"}}", rnd(64)),
                1 => format!("connecting to postgres://openclaw:{}@db:5432/app", rnd(16)),
                n if n % 3 == 0 => format!(
                    "{{\"level\":30,\"time\":1764188337000,\"pid\":7,\"hostname\":\"gw\",\"reqId\":\"req-{}\",\"msg\":\"llm request\",\"model\":\"claude-sonnet-4\",\"max_tokens\":4096,\"usage\":{{\"input_tokens\":{},\"output_tokens\":{}}}}}",
                    rnd(8),
                    i * 7 % 5000,
                    i % 900
                ),
                n if n % 3 == 1 => format!(
                    "{{\"level\":30,\"msg\":\"ws message\",\"sessionKey\":\"agent:main:telegram:dm:{}\",\"bytes\":{}}}",
                    i * 13,
                    i % 4096
                ),
                _ => format!("GET /api/v1/status 200 {}ms trace={}", i % 300, rnd(24)),
            };
            let mut out = Vec::new();
            encode_line(format!("{msg}\n").as_bytes(), "stdout", &[], "2026-11-26T20:18:57.123456789Z", &mut out);
            out
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let engine = Engine::builtin();
    let key = FingerprintKey::from_bytes([7; 32]);
    let lines = corpus(20_000);
    let file: Vec<u8> = lines.concat();

    let mut g = c.benchmark_group("engine");
    let texts: Vec<String> = lines
        .iter()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_slice(l).unwrap();
            v["log"].as_str().unwrap().to_string()
        })
        .collect();
    let text_bytes: usize = texts.iter().map(String::len).sum();
    g.throughput(Throughput::Bytes(text_bytes as u64));
    g.bench_function("find_per_entry", |b| {
        let mut scratch = Scratch::default();
        let mut out = Vec::new();
        b.iter(|| {
            out.clear();
            for t in &texts {
                engine.find(black_box(t.as_bytes()), &mut scratch, &mut out);
            }
            out.len()
        })
    });
    g.throughput(Throughput::Bytes(file.len() as u64));
    g.bench_function("prefilter_raw", |b| {
        b.iter(|| {
            let mut n = 0;
            let mut at = 0;
            while let Some(h) = engine.next_keyword(black_box(&file), at) {
                n += 1;
                at = memchr::memchr(b'\n', &file[h..]).map_or(file.len(), |i| h + i + 1);
            }
            n
        })
    });
    g.finish();

    let mut g = c.benchmark_group("scanner");
    g.throughput(Throughput::Bytes(file.len() as u64));
    let options = ScanOptions::default();
    let scanner = Scanner {
        engine: &engine,
        key: &key,
        options: &options,
    };
    g.bench_function("json_file_scan", |b| {
        b.iter(|| {
            scanner
                .scan_reader(black_box(&file[..]), "bench", None)
                .unwrap()
                .findings
                .len()
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = bench
}
criterion_main!(benches);
