//! The detection engine and baseline, built from the configuration (shared by `scan`, the audit,
//! enforcement's log rotation, `config check` and the guard).
use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::config::Config;
use crate::fsutil::{open_input, read_input_string, InputKind};
use crate::redact::{Engine, EngineBuilder, RuleFile};

/// Build the engine from the config plus extra rule files; returns it with the merged specs.
pub fn build_engine(
    config: &Config,
    extra_rules: &[PathBuf],
    extra_gitleaks: &[PathBuf],
) -> Result<(Engine, RuleFile)> {
    let mut builder = EngineBuilder::with_builtin();
    for path in config.rules.files.iter().chain(extra_rules) {
        let text = read_input_string(path, InputKind::RULES)?;
        builder = builder.with_rules(RuleFile::from_toml(&text, &path.display().to_string())?);
    }
    for path in config.rules.gitleaks_configs.iter().chain(extra_gitleaks) {
        let text = read_input_string(path, InputKind::GITLEAKS)?;
        builder = builder.with_rules(RuleFile::from_gitleaks_toml(&text, &path.display().to_string())?);
    }
    builder = builder.with_rules(RuleFile {
        rule: Vec::new(),
        allowlist: config.rules.allowlist.clone(),
        define: Default::default(),
        prefilter: Default::default(),
    });
    builder = builder.disable(config.rules.disable.iter().cloned());
    let specs = builder.specs().clone();
    Ok((builder.build()?, specs))
}

/// Fingerprints listed in a baseline file: one per line, or JSON/JSONL finding records.
pub fn load_baseline(path: &Path) -> Result<HashSet<String>> {
    let mut reader = BufReader::new(open_input(path, InputKind::BASELINE)?);
    let mut set = HashSet::new();
    let first = reader.fill_buf()?.iter().copied().find(|b| !b.is_ascii_whitespace());
    if first == Some(b'[') {
        let records: Vec<serde_json::Value> = serde_json::from_reader(reader)
            .with_context(|| format!("baseline {}: not a JSON array of findings", path.display()))?;
        for r in records {
            if let Some(fp) = r.get("fingerprint").and_then(|v| v.as_str()) {
                set.insert(fp.to_string());
            }
        }
        return Ok(set);
    }
    for (i, line) in reader.lines().enumerate() {
        let line = line.with_context(|| format!("baseline {}: cannot read line {}", path.display(), i + 1))?;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.starts_with('{') {
            let v: serde_json::Value = serde_json::from_str(line)
                .with_context(|| format!("baseline {}:{}: not a JSON record", path.display(), i + 1))?;
            if let Some(fp) = v.get("fingerprint").and_then(|v| v.as_str()) {
                set.insert(fp.to_string());
            }
        } else if line.len() == 64 && line.bytes().all(|b| b.is_ascii_hexdigit()) {
            set.insert(line.to_ascii_lowercase());
        } else {
            bail!(
                "baseline {}:{}: expected a 64-hex-digit fingerprint or a JSON finding record",
                path.display(),
                i + 1
            );
        }
    }
    Ok(set)
}
