//! The benchmark's generator, small: every planted secret found and fully masked, nothing on decoys,
//! and the masked copy keeps every line valid JSON of the same length. Needs python3.

use std::collections::HashMap;
use std::fs;
use std::path::Path;
use std::process::Command;

use crate::common::*;

fn overlaps(a: &[u64], b: &[u64]) -> bool {
    a[0] < b[1] && b[0] < a[1]
}

#[test]
fn generator_corpus_recall_decoys_and_masking() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("corpus");
    let gen = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/gen_corpus.py");
    let status = Command::new("python3")
        .arg(&gen)
        .args(["--out"])
        .arg(&corpus)
        .args(["--size-mb", "6", "--seed", "7"])
        .status()
        .expect("python3 is installed (CI installs it)");
    assert!(status.success());
    let state = dir.path().join("state");
    let masked = dir.path().join("masked");
    let out = run(sidecar(&state)
        .arg("scan")
        .arg(corpus.join("containers"))
        .args(["--format", "jsonl", "--redact-to"])
        .arg(&masked));
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let found = findings(&out.stdout);
    let root = corpus.join("containers");
    let prefix = format!("{}/", root.display());
    // file (relative to corpus/) -> finding ranges
    let mut by_file: HashMap<String, Vec<Vec<u64>>> = HashMap::new();
    for f in &found {
        let rel = format!(
            "containers/{}",
            f["file"].as_str().unwrap().strip_prefix(&prefix).unwrap()
        );
        for r in f["ranges"].as_array().unwrap() {
            by_file
                .entry(rel.clone())
                .or_default()
                .push(vec![r[0].as_u64().unwrap(), r[1].as_u64().unwrap()]);
        }
    }
    let truth = fs::read_to_string(corpus.join("truth.jsonl")).unwrap();
    let (mut planted, mut missed, mut decoy_hits) = (0, Vec::new(), Vec::new());
    for line in truth.lines() {
        let t: serde_json::Value = serde_json::from_str(line).unwrap();
        let file = t["file"].as_str().unwrap();
        let ranges: Vec<Vec<u64>> = t["ranges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| vec![r[0].as_u64().unwrap(), r[1].as_u64().unwrap()])
            .collect();
        let empty = Vec::new();
        let fr = by_file.get(file).unwrap_or(&empty);
        let hit = ranges.iter().any(|r| fr.iter().any(|f| overlaps(r, f)));
        if t["decoy"].as_bool().unwrap() {
            if hit {
                decoy_hits.push(format!("{} {}", t["kind"], t["context"]));
            }
        } else {
            planted += 1;
            if !hit {
                missed.push(format!("{} {}", t["kind"], t["context"]));
            }
        }
    }
    assert!(planted > 100, "the generator planted {planted} secrets");
    assert!(missed.is_empty(), "missed {} of {planted}: {missed:?}", missed.len());
    assert!(decoy_hits.is_empty(), "findings on decoys: {decoy_hits:?}");

    // The masked copies: same length, every line valid JSON, same line count.
    for entry in walkdir::WalkDir::new(&root)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
    {
        let rel = entry.path().strip_prefix(&root).unwrap();
        let original = fs::read(entry.path()).unwrap();
        let copy = fs::read(masked.join(rel)).unwrap();
        assert_eq!(original.len(), copy.len(), "{}", rel.display());
        let (a, b): (Vec<&[u8]>, Vec<&[u8]>) = (
            original.split(|&c| c == b'\n').collect(),
            copy.split(|&c| c == b'\n').collect(),
        );
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(&b) {
            if x.is_empty() {
                continue;
            }
            let vx: serde_json::Value = serde_json::from_slice(x).unwrap();
            let vy: serde_json::Value = serde_json::from_slice(y).expect("masked line is valid JSON");
            assert_eq!(
                vx["log"].as_str().unwrap().matches('\n').count(),
                vy["log"].as_str().unwrap().matches('\n').count()
            );
        }
    }
    // ... and scan clean.
    let again = run(sidecar(&state).arg("scan").arg(&masked).args(["--format", "jsonl"]));
    assert_eq!(
        again.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&again.stdout)
    );
}
