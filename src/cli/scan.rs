//! `sidecar scan` and `sidecar rules`.
use std::collections::HashSet;
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use rayon::prelude::*;

use super::{ScanArgs, EXIT_ERROR, EXIT_FINDINGS, EXIT_OK};
use crate::app::engine::{build_engine, load_baseline};
use crate::config::Config;
use crate::escape::terminal;
use crate::logs::masking::write_masked_copy;
use crate::logs::scan::{FileScan, Format, Notice, ScanOptions, Scanner};
use crate::redact::{Finding, RuleFile};
use crate::render::write_findings;

/// `sidecar rules`.
pub fn list_rules(config: &Config, as_toml: bool) -> super::CmdResult {
    let (engine, specs) = build_engine(config, &[], &[])?;
    let active: HashSet<&str> = engine.rules().iter().map(|r| r.id.as_str()).collect();
    let mut out = io::stdout().lock();
    if as_toml {
        let kept = RuleFile {
            rule: specs
                .rule
                .into_iter()
                .filter(|r| active.contains(r.id.as_str()))
                .collect(),
            allowlist: specs.allowlist,
            define: specs.define,
            prefilter: specs.prefilter,
        };
        write!(out, "{}", toml::to_string_pretty(&kept)?)?;
    } else {
        writeln!(out, "{:<32} {:<9} {:<40} DESCRIPTION", "RULE", "SEVERITY", "KEYWORDS")?;
        for r in specs.rule.iter().filter(|r| active.contains(r.id.as_str())) {
            let mut kw = r.keywords.join(",");
            if kw.chars().count() > 40 {
                kw = kw.chars().take(37).chain("...".chars()).collect();
            }
            // Rules come from files, some downloaded (gitleaks configs): shown escaped.
            writeln!(
                out,
                "{:<32} {:<9} {:<40} {}",
                terminal(&r.id),
                r.severity.as_str(),
                terminal(&kw),
                terminal(&r.description)
            )?;
        }
    }
    Ok(EXIT_OK)
}

/// One input file: where to read it, how to label it, where its masked copy goes.
#[derive(Debug)]
struct Input {
    path: PathBuf,
    label: String,
    rel: PathBuf,
    size: u64,
}

/// Walk the arguments into input files. Problems are reported and counted, never fatal.
fn collect_inputs(paths: &[PathBuf], errors: &mut Vec<String>) -> Vec<Input> {
    let mut inputs = Vec::new();
    for root in paths {
        let meta = match std::fs::metadata(root) {
            Ok(m) => m,
            Err(e) => {
                errors.push(format!("{}: cannot read: {e}", root.display()));
                continue;
            }
        };
        if meta.is_file() {
            inputs.push(Input {
                path: root.clone(),
                label: root.display().to_string(),
                rel: PathBuf::from(root.file_name().unwrap_or(root.as_os_str())),
                size: meta.len(),
            });
            continue;
        }
        for entry in walkdir::WalkDir::new(root).follow_links(false).sort_by_file_name() {
            match entry {
                Ok(e) if e.file_type().is_file() => {
                    let size = e.metadata().map(|m| m.len()).unwrap_or(0);
                    let rel = e.path().strip_prefix(root).unwrap_or(e.path()).to_path_buf();
                    inputs.push(Input {
                        path: e.path().to_path_buf(),
                        label: e.path().display().to_string(),
                        rel,
                        size,
                    });
                }
                Ok(_) => {}
                Err(e) => {
                    // A directory entry that vanished during the walk is not an error.
                    if e.io_error().map(|io| io.kind()) == Some(io::ErrorKind::NotFound) {
                        tracing::info!(path = %e.path().map(|p| p.display().to_string()).unwrap_or_default(), "vanished during the scan");
                    } else {
                        errors.push(format!(
                            "{}: cannot read: {}",
                            e.path().unwrap_or(root).display(),
                            e.io_error().map(|io| io.to_string()).unwrap_or_else(|| e.to_string())
                        ));
                    }
                }
            }
        }
    }
    inputs
}

/// `sidecar scan`.
pub fn run(mut config: Config, mut args: ScanArgs) -> super::CmdResult {
    if let Some(t) = args.threads {
        config.scan.threads = t;
    }
    if let Some(b) = &args.baseline {
        config.rules.baseline = Some(b.clone());
    }
    if args.paths.is_empty() {
        args.paths.push(config.docker_root.join("containers"));
    }
    let stdin_count = args.paths.iter().filter(|p| p.as_os_str() == "-").count();
    if stdin_count > 1 {
        bail!("`-` (standard input) can be given once");
    }
    if stdin_count == 1 && args.redact_to.is_some() {
        bail!("--redact-to cannot copy standard input; save it to a file first and scan the file");
    }
    let (engine, _) = build_engine(&config, &args.rules, &args.gitleaks_config)?;
    let key = crate::state::load_or_create_key(&config.state_dir)?;
    let baseline = match &config.rules.baseline {
        Some(p) => load_baseline(p)?,
        None => HashSet::new(),
    };
    let options = ScanOptions {
        buffer_bytes: config.scan.buffer_kib << 10,
        max_unit_bytes: config.scan.max_unit_kib << 10,
        chunk_bytes: config.scan.chunk_mib << 20,
        ..ScanOptions::default()
    };
    let scanner = Scanner {
        engine: &engine,
        key: &key,
        options: &options,
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(config.scan.threads)
        .build()
        .context("cannot start worker threads")?;
    if let Some(dir) = &args.redact_to {
        crate::fsutil::create_private_dir(dir)
            .with_context(|| format!("--redact-to {}: cannot create", dir.display()))?;
    }

    let started = Instant::now();
    let mut errors: Vec<String> = Vec::new();
    let file_paths: Vec<PathBuf> = args.paths.iter().filter(|p| p.as_os_str() != "-").cloned().collect();
    let inputs = collect_inputs(&file_paths, &mut errors);
    let mut results: Vec<(String, Result<FileScan, String>)> = Vec::new();
    if stdin_count == 1 {
        let scan = scanner
            .scan_reader(io::stdin().lock(), "-", None)
            .map_err(|e| e.to_string());
        results.push(("-".into(), scan));
    }
    let show_progress = !args.no_progress && io::stderr().is_terminal();
    results.extend(pool.install(|| scan_all(&scanner, &inputs, args.redact_to.as_deref(), show_progress)));

    let mut tally = Tally {
        errors,
        ..Tally::default()
    };
    for (label, result) in results {
        tally.add(&label, result, &baseline, options.buffer_bytes);
    }
    if tally.malformed > 20 {
        crate::say!("warning: {} more malformed lines not listed", tally.malformed - 20);
    }
    for e in &tally.errors {
        // One line each, naming paths found on disk: escaped whole.
        crate::say!("error: {}", terminal(e));
    }
    write_output(&args, &tally.findings)?;
    crate::say!("{}", tally.summary(started.elapsed().as_secs_f64()));
    Ok(if !tally.errors.is_empty() {
        EXIT_ERROR
    } else if !tally.findings.is_empty() {
        EXIT_FINDINGS
    } else {
        EXIT_OK
    })
}

/// Scan `inputs` on the current rayon pool, with a progress bar on stderr when `show_progress`.
fn scan_all(
    scanner: &Scanner<'_>,
    inputs: &[Input],
    redact_to: Option<&Path>,
    show_progress: bool,
) -> Vec<(String, Result<FileScan, String>)> {
    let total_bytes: u64 = inputs.iter().map(|i| i.size).sum();
    let progress = show_progress.then(|| {
        let bar = indicatif::ProgressBar::new(total_bytes);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:40} {bytes}/{total_bytes} ({bytes_per_sec}) {msg}",
            )
            .expect("valid template"),
        );
        bar
    });
    let done_bytes = AtomicU64::new(0);
    let results = inputs
        .par_iter()
        .map(|input| {
            let result = scan_one(scanner, input, redact_to);
            let done = done_bytes.fetch_add(input.size, Ordering::Relaxed) + input.size;
            if let Some(bar) = &progress {
                bar.set_position(done);
            }
            (input.label.clone(), result)
        })
        .collect();
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    results
}

/// What the scan of every input came to.
#[derive(Default)]
struct Tally {
    findings: Vec<Finding>,
    errors: Vec<String>,
    bytes: u64,
    lines: u64,
    files: u64,
    binary: u64,
    malformed: u64,
    baselined: u64,
}

impl Tally {
    /// Add one input's scan (warnings for its notices are said here, the first 20 malformed lines
    /// by line number).
    fn add(&mut self, label: &str, result: Result<FileScan, String>, baseline: &HashSet<String>, buffer_bytes: usize) {
        // File names are whatever the scanned directory holds: shown escaped (a newline too).
        let shown = terminal(label);
        let scan = match result {
            Ok(scan) if scan.format.is_none() => return,
            Ok(scan) => scan,
            Err(e) => return self.errors.push(e),
        };
        self.files += 1;
        self.bytes += scan.bytes;
        self.lines += scan.lines;
        if scan.format == Some(Format::Binary) {
            self.binary += 1;
        }
        for n in &scan.notices {
            match n {
                Notice::MalformedLine { line, reason } => {
                    self.malformed += 1;
                    if self.malformed <= 20 {
                        crate::say!("warning: {shown}:{line}: not a valid json-file line ({reason}); scanned as text");
                    }
                }
                Notice::LongLine { line } => {
                    crate::say!(
                        "warning: {shown}:{line}: line longer than {} KiB; scanned as text in overlapping windows",
                        buffer_bytes >> 10
                    );
                }
            }
        }
        for f in scan.findings {
            if baseline.contains(&f.fingerprint) {
                self.baselined += 1;
            } else {
                self.findings.push(f);
            }
        }
    }

    /// The closing line on stderr.
    fn summary(&self, secs: f64) -> String {
        let mut rules: Vec<&str> = self.findings.iter().map(|f| f.rule.as_str()).collect();
        rules.sort();
        rules.dedup();
        let extra = |n: u64, what: &str| if n > 0 { format!(", {n} {what}") } else { String::new() };
        format!(
            "scanned {} files, {:.1} MB, {} lines in {secs:.2} s ({:.0} MB/s): {} findings ({} rules){}{}{}{}",
            self.files,
            self.bytes as f64 / 1e6,
            self.lines,
            self.bytes as f64 / 1e6 / secs.max(1e-9),
            self.findings.len(),
            rules.len(),
            extra(self.baselined, "in baseline"),
            extra(self.malformed, "malformed lines"),
            extra(self.binary, "binary files skipped"),
            extra(self.errors.len() as u64, "errors"),
        )
    }
}

/// The findings to `--output` (atomically, 0600) or standard output.
fn write_output(args: &ScanArgs, findings: &[Finding]) -> Result<()> {
    match &args.output {
        Some(path) => {
            let mut out = crate::fsutil::AtomicFile::create(path)
                .with_context(|| format!("--output {}: cannot create", path.display()))?;
            write_findings(args.format, findings, &mut out)?;
            out.commit()
                .with_context(|| format!("--output {}: cannot write", path.display()))?;
        }
        None => {
            let mut out = io::BufWriter::new(io::stdout().lock());
            write_findings(args.format, findings, &mut out)?;
            out.flush()?;
        }
    }
    Ok(())
}

fn scan_one(scanner: &Scanner<'_>, input: &Input, redact_to: Option<&Path>) -> Result<FileScan, String> {
    let scan = match scanner.scan_path(&input.path, &input.label) {
        Ok(scan) => scan,
        // The directory changed during the scan: a file listed a moment ago is gone. Not an error.
        Err(e) if e.is_not_found() => {
            tracing::info!(file = %input.label, "vanished during the scan");
            return Ok(FileScan::default());
        }
        Err(e) => return Err(e.to_string()),
    };
    if let Some(dir) = redact_to {
        let dest = dir.join(&input.rel);
        if let Some(parent) = dest.parent() {
            crate::fsutil::create_private_dir(parent)
                .map_err(|e| format!("{}: cannot create: {e}", parent.display()))?;
        }
        // Every finding is masked, baselined ones too: a baseline silences reporting, not masking.
        write_masked_copy(&input.path, &dest, &scan.findings, scan.gzip).map_err(|e| {
            format!(
                "{}: cannot write the masked copy to {}: {e}",
                input.label,
                dest.display()
            )
        })?;
    }
    Ok(scan)
}
