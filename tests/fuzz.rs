//! Bounded fuzzing (proptest) of what reads input from outside: the json-file codec on any bytes and
//! on Docker-encoded lines, masks written through it, and the config and rules loaders on any text
//! and on mutations of real files. Archives are fuzzed in `backup_hostile.rs`.
//!
//! `.ci/run` runs these with `FUZZ_CASES` cases each (default 256 here); a longer run:
//! `FUZZ_CASES=20000 cargo test --release --test tests fuzz::`.
use proptest::prelude::*;
use sidecar::config::Config;
use sidecar::logs::jsonfile::{encode_line, is_safe_mask_byte, parse_line, JsonFileLine};
use sidecar::redact::{EngineBuilder, RuleFile};

fn cases() -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// A few byte-level edits of `base`: overwrite, insert, delete, truncate.
fn mutate(base: &[u8], edits: &[(u8, usize, u8)]) -> Vec<u8> {
    let mut out = base.to_vec();
    for &(op, at, byte) in edits {
        let at = if out.is_empty() { 0 } else { at % (out.len() + 1) };
        match op % 4 {
            0 if at < out.len() => out[at] = byte,
            1 => out.insert(at, byte),
            2 if at < out.len() => {
                out.remove(at);
            }
            3 => out.truncate(at),
            _ => {}
        }
    }
    out
}

fn edits() -> impl Strategy<Value = Vec<(u8, usize, u8)>> {
    proptest::collection::vec((any::<u8>(), any::<usize>(), any::<u8>()), 1..6)
}

/// Docker-like bytes: mostly JSON punctuation, escapes and text, so that the parser goes deep.
fn jsonish() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"{\"log\":\"".to_vec()),
        Just(b"\",\"stream\":\"stdout\"".to_vec()),
        Just(b",\"attrs\":{\"tag\":\"x\"}".to_vec()),
        Just(b",\"time\":\"2026-12-04T00:00:00.000000001Z\"}".to_vec()),
        Just(b"\\u003c".to_vec()),
        Just(b"\\ud83d\\ude00".to_vec()),
        Just(b"\\ud800".to_vec()),
        Just(b"\\n".to_vec()),
        Just(b"\\\"".to_vec()),
        Just(b"\\".to_vec()),
        Just(b"\"".to_vec()),
        Just(vec![0xe2, 0x82]),
        Just(vec![0xff]),
        proptest::collection::vec(any::<u8>(), 0..12),
        "[a-zA-Z0-9 _=:-]{0,20}".prop_map(|s| s.into_bytes()),
    ];
    proptest::collection::vec(piece, 0..12).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(config())]

    /// Any bytes: an error or a line, never a panic or a hang.
    #[test]
    fn the_json_file_parser_takes_any_bytes(raw in prop_oneof![jsonish(), proptest::collection::vec(any::<u8>(), 0..300)]) {
        let mut line = JsonFileLine::default();
        if parse_line(&raw, &mut line).is_ok() {
            // Every decoded byte maps back into the raw line.
            let n = line.log.bytes.len();
            let r = line.log.raw_range(0..n);
            prop_assert!(r.end as usize <= raw.len());
        }
    }

    /// What Docker writes decodes to what was logged, and a mask written over any decoded range
    /// (through its raw range, with mask bytes) keeps the line's length and leaves valid JSON that
    /// still parses.
    #[test]
    fn docker_lines_round_trip_and_survive_any_mask(
        log in prop_oneof![
            ".{0,80}".prop_map(String::into_bytes),
            proptest::collection::vec(any::<u8>(), 0..80),
        ],
        stderr in any::<bool>(),
        attr in "[a-z<>&\"\\\\]{0,8}",
        cut in (any::<usize>(), any::<usize>()),
    ) {
        let mut raw = Vec::new();
        let stream = if stderr { "stderr" } else { "stdout" };
        encode_line(&log, stream, &[("tag", attr.as_str())], "2026-12-04T00:00:00.000000001Z", &mut raw);
        let mut line = JsonFileLine::default();
        parse_line(&raw[..raw.len() - 1], &mut line).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
        if std::str::from_utf8(&log).is_ok() {
            prop_assert_eq!(&line.log.bytes, &log);
        }
        let n = line.log.bytes.len();
        if n > 0 {
            let (a, b) = (cut.0 % n, cut.1 % n);
            let range = a.min(b)..a.max(b) + 1;
            let r = line.log.raw_range(range);
            let mut masked = raw.clone();
            for b in &mut masked[r.start as usize..r.end as usize] {
                *b = b'*';
            }
            prop_assert!(is_safe_mask_byte(b'*'));
            prop_assert_eq!(masked.len(), raw.len());
            let v: Result<serde_json::Value, _> = serde_json::from_slice(&masked);
            prop_assert!(v.is_ok(), "masked line is not JSON: {}", String::from_utf8_lossy(&masked));
            let mut again = JsonFileLine::default();
            prop_assert!(parse_line(&masked[..masked.len() - 1], &mut again).is_ok());
        }
    }

    /// Any text as the config file: a config or an error, never a panic.
    #[test]
    fn the_config_loader_takes_any_text(text in prop_oneof![".{0,200}", "[a-z_.\\[\\]=\" 0-9\n]{0,200}"]) {
        let _ = Config::from_toml_str(&text);
    }

    /// The example config with a few bytes changed.
    #[test]
    fn the_config_loader_takes_a_damaged_config(e in edits()) {
        let base = include_bytes!("../compose/sidecar.toml");
        let text = mutate(base, &e);
        if let Ok(text) = std::str::from_utf8(&text) {
            let _ = Config::from_toml_str(text);
        }
    }

    /// Any text as a rule file, in both schemas, compiled when it parses.
    #[test]
    fn the_rule_loaders_take_any_text(text in prop_oneof![
        ".{0,200}",
        "\\[\\[rule\\]\\]\nid = \"[a-z]{1,5}\"\nregex = '''[a-z\\\\\\[\\]\\(\\)\\{\\}\\+\\*\\?\\|0-9,]{0,30}'''\nkeywords = \\[\"[a-z]{0,4}\"\\]\n",
        "\\[\\[rules\\]\\]\nid = \"[a-z]{1,5}\"\nregex = '''[a-z\\\\\\[\\]\\(\\)\\{\\}\\+\\*\\?\\|0-9,]{0,30}'''\nkeywords = \\[\"[a-z]{0,4}\"\\]\nentropy = [0-9.]{1,3}\n",
    ]) {
        if let Ok(file) = RuleFile::from_toml(&text, "fuzz") {
            let _ = EngineBuilder::empty().with_rules(file).build();
        }
        if let Ok(file) = RuleFile::from_gitleaks_toml(&text, "fuzz") {
            let _ = EngineBuilder::empty().with_rules(file).build();
        }
    }

    /// The built-in rules with a few bytes changed: a rule file or an error, and an engine or an
    /// error, never a panic.
    #[test]
    fn the_rule_loader_takes_damaged_built_in_rules(e in edits()) {
        let text = mutate(sidecar::redact::rules::BUILTIN_RULES.as_bytes(), &e);
        if let Ok(text) = std::str::from_utf8(&text) {
            if let Ok(file) = RuleFile::from_toml(text, "fuzz") {
                let _ = EngineBuilder::empty().with_rules(file).build();
            }
        }
    }
}
