//! The module map, checked: which top-level module may use which, and no cycle between files.
//!
//! `LAYERS` lists the top-level modules from the bottom up (DESIGN.md's map says why each sits
//! where it does). A file may use a module of its own layer's lower neighbours only: a reference to
//! a module listed after its own is a failure, as is a cycle between two files that are not parent
//! and child (a parent module and its submodules use each other by design). References are read from
//! the source: `crate::…` and `super::…` paths in code, including grouped `use crate::{a, b}`.
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top-level modules, lowest first. A module may use only modules listed before it.
const LAYERS: &[&str] = &[
    "escape", "fsutil", "diag", "shutdown", "runtime", "timefmt", "metrics", "redact", "state", "docker", "store",
    "policy", "findings", "logs", "render", "backup", "config", "app", "cli",
];

/// The crate's source files, with their module path (`logs::guard::gz` for src/logs/guard/gz.rs).
fn source_files(src: &Path) -> Vec<(Vec<String>, PathBuf)> {
    fn walk(dir: &Path, prefix: &[String], out: &mut Vec<(Vec<String>, PathBuf)>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
        entries.sort();
        for path in entries {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                let mut p = prefix.to_vec();
                p.push(name);
                walk(&path, &p, out);
            } else if let Some(stem) = name.strip_suffix(".rs") {
                let mut p = prefix.to_vec();
                if !matches!(stem, "mod" | "lib" | "main") {
                    p.push(stem.to_string());
                }
                out.push((p, path));
            }
        }
    }
    let mut out = Vec::new();
    walk(src, &[], &mut out);
    out
}

/// The code of a file without comments, string contents and its `#[cfg(test)]` tail (tests may use
/// anything).
fn code_of(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => text,
    };
    let mut out = String::with_capacity(text.len());
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i..].starts_with(b"/*") {
            i += 2;
            while i < b.len() && !b[i..].starts_with(b"*/") {
                i += 1;
            }
            i += 2;
        } else if b[i] == b'"' && !(i > 0 && b[i - 1] == b'\'') {
            // Skip a string literal (raw strings in this crate hold no `"` that would confuse this).
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.push_str("\"\"");
        } else {
            out.push(b[i] as char);
            i += 1;
        }
    }
    out
}

/// Every path a file's code names, as segments starting with `crate` or `super`.
fn paths_in(code: &str) -> Vec<Vec<String>> {
    let b = code.as_bytes();
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let at_word = i == 0 || !ident(b[i - 1]);
        let start = ["crate::", "super::"]
            .iter()
            .find(|p| at_word && b[i..].starts_with(p.as_bytes()));
        let Some(start) = start else {
            i += 1;
            continue;
        };
        let mut segs = vec![start.trim_end_matches("::").to_string()];
        i += start.len();
        loop {
            if b.get(i) == Some(&b'{') {
                // A group: each first-level item continues the path.
                let mut depth = 0;
                let mut item = String::new();
                while i < b.len() {
                    let c = b[i];
                    i += 1;
                    match c {
                        b'{' => {
                            depth += 1;
                            if depth > 1 {
                                item.push('{');
                            }
                        }
                        b'}' if depth == 1 => {
                            push_item(&segs, &item, &mut out);
                            break;
                        }
                        b'}' => {
                            depth -= 1;
                            item.push('}');
                        }
                        b',' if depth == 1 => {
                            push_item(&segs, &item, &mut out);
                            item.clear();
                        }
                        _ => item.push(c as char),
                    }
                }
                segs.clear();
                break;
            }
            let s = i;
            while i < b.len() && ident(b[i]) {
                i += 1;
            }
            if s == i {
                break;
            }
            segs.push(code[s..i].to_string());
            if b[i..].starts_with(b"::") {
                i += 2;
            } else {
                break;
            }
        }
        if segs.len() > 1 {
            out.push(segs);
        }
    }
    out
}

fn push_item(prefix: &[String], item: &str, out: &mut Vec<Vec<String>>) {
    let first: String = item
        .trim()
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    if !first.is_empty() && first != "self" {
        let mut p = prefix.to_vec();
        p.push(first);
        out.push(p);
    }
}

/// The module path a reference lands in, resolved against `from` (a file's module path: `super` in
/// `a/b.rs` and in `a/b/mod.rs` alike is `a`).
fn resolve(from: &[String], path: &[String]) -> Vec<String> {
    let mut base: Vec<String> = from.to_vec();
    let mut rest = path;
    if rest[0] == "crate" {
        base.clear();
        rest = &rest[1..];
    } else {
        while rest.first().map(String::as_str) == Some("super") {
            base.pop();
            rest = &rest[1..];
        }
    }
    base.extend(rest.iter().cloned());
    base
}

#[test]
fn modules_use_only_the_layers_below_them_and_files_form_no_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files = source_files(&src);
    let modules: BTreeSet<Vec<String>> = files.iter().map(|(m, _)| m.clone()).collect();
    let rank = |m: &str| LAYERS.iter().position(|l| *l == m);
    let mut failures = Vec::new();
    let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for (module, path) in &files {
        // lib.rs and main.rs declare the modules; test-only files (`tests.rs`, `*_tests.rs`) may
        // use anything.
        let test_only = module.last().is_some_and(|m| m == "tests" || m.ends_with("_tests"));
        if module.is_empty() || module[0] == "layering" || test_only {
            continue;
        }
        if rank(&module[0]).is_none() {
            failures.push(format!(
                "src/{} is in a top-level module missing from LAYERS",
                module.join("/")
            ));
            continue;
        }
        let code = code_of(&std::fs::read_to_string(path).unwrap());
        for reference in paths_in(&code) {
            let target = resolve(module, &reference);
            // The longest module path that exists is the file referenced.
            let Some(file) = (1..=target.len())
                .rev()
                .map(|n| target[..n].to_vec())
                .find(|t| modules.contains(t))
            else {
                continue; // a crate-root item (a macro such as `say!`)
            };
            if file[0] != module[0] {
                match (rank(&module[0]), rank(&file[0])) {
                    (Some(a), Some(b)) if b > a => failures.push(format!(
                        "{} uses {}: `{}` sits above `{}` in LAYERS",
                        module.join("::"),
                        target.join("::"),
                        file[0],
                        module[0]
                    )),
                    _ => {}
                }
            }
            let parent_or_child = file.starts_with(module) || module.starts_with(&file);
            if !parent_or_child {
                edges.entry(module.clone()).or_default().insert(file);
            }
        }
    }
    // Cycles between files (Tarjan-free: a depth-first search that reports a back edge).
    fn visit(
        n: &Vec<String>,
        edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        state: &mut BTreeMap<Vec<String>, u8>,
        stack: &mut Vec<Vec<String>>,
        failures: &mut Vec<String>,
    ) {
        state.insert(n.clone(), 1);
        stack.push(n.clone());
        for m in edges.get(n).into_iter().flatten() {
            match state.get(m).copied().unwrap_or(0) {
                0 => visit(m, edges, state, stack, failures),
                1 => {
                    let at = stack.iter().position(|s| s == m).unwrap();
                    let cycle: Vec<String> = stack[at..].iter().chain([m]).map(|s| s.join("::")).collect();
                    failures.push(format!("import cycle: {}", cycle.join(" -> ")));
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(n.clone(), 2);
    }
    let mut state = BTreeMap::new();
    for n in edges.keys() {
        if !state.contains_key(n) {
            visit(n, &edges, &mut state, &mut Vec::new(), &mut failures);
        }
    }
    assert!(
        failures.is_empty(),
        "the module map is broken:\n{}",
        failures.join("\n")
    );
}

/// Functions a reader can hold: none over this many lines outside tests.
const MAX_FN_LINES: usize = 120;

#[test]
fn no_function_outside_tests_is_longer_than_a_screenful_and_none_takes_too_many_arguments() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut failures = Vec::new();
    for (_, path) in source_files(&src) {
        let text = std::fs::read_to_string(&path).unwrap();
        let text = match text.find("#[cfg(test)]\nmod tests") {
            Some(i) => &text[..i],
            None => &text[..],
        };
        let shown = path.strip_prefix(&src).unwrap().display().to_string();
        if text.contains(&format!("{}({})", "allow", "clippy::too_many_arguments")) {
            failures.push(format!(
                "src/{shown}: allows too_many_arguments (pass an options struct)"
            ));
        }
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let trimmed = line.trim_start();
            let indent = &line[..line.len() - trimmed.len()];
            let def = trimmed
                .trim_start_matches("pub ")
                .trim_start_matches("pub(crate) ")
                .trim_start_matches("pub(super) ")
                .trim_start_matches("const ")
                .trim_start_matches("async ");
            let Some(rest) = def.strip_prefix("fn ") else {
                continue;
            };
            let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            let close = format!("{indent}}}");
            if let Some(len) = lines[i + 1..].iter().position(|l| *l == close) {
                if len + 2 > MAX_FN_LINES {
                    failures.push(format!("src/{shown}:{}: fn {name} is {} lines", i + 1, len + 2));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "split these where the domain splits (at most {MAX_FN_LINES} lines):\n{}",
        failures.join("\n")
    );
}

#[test]
fn the_checker_sees_grouped_uses_super_paths_and_ignores_comments_and_strings() {
    let code = code_of(
        "use crate::{escape::terminal, fsutil::{self, x}};\n// crate::cli::run\nlet s = \"crate::app\";\nsuper::super::logs::scan::f();\n/* crate::backup */ crate::policy::Status::Fail",
    );
    let got: Vec<String> = paths_in(&code).iter().map(|p| p.join("::")).collect();
    assert_eq!(
        got,
        [
            "crate::escape",
            "crate::fsutil",
            "super::super::logs::scan::f",
            "crate::policy::Status::Fail"
        ]
    );
    let from = ["logs".to_string(), "guard".to_string(), "gz".to_string()];
    let r = resolve(&from, &["super".into(), "carry".into(), "f".into()]);
    assert_eq!(r.join("::"), "logs::guard::carry::f");
}
