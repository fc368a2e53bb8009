//! SARIF 2.1.0, for code-scanning dashboards: one writer for the three logs sidecar makes, the scan
//! findings ([`findings`], tool `sidecar`), the reviewer's items ([`items`], tool `sidecar-report`)
//! and the audit results ([`audit`], tool `sidecar-audit`). They share the log and run envelope,
//! the rule and result shapes, levels and suppressions; each adds what only it knows (physical
//! locations of a scan, the count of an item, the fix of a check). Fingerprints are keyed digests
//! and previews masked: a log holds no secret.
use serde_json::{json, Value};

use crate::findings::group::{Item, ItemStatus};
use crate::findings::record::short_fingerprint;
use crate::policy::{CheckResult, Status, CHECKS};
use crate::redact::{Finding, Severity};

/// The schema every log names.
const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

/// One run of one tool: what a log holds.
struct Run<'a> {
    /// The driver's name.
    tool: &'a str,
    /// The rules (`reportingDescriptor`s), in the order `ruleIndex` counts.
    rules: Vec<Value>,
    /// The results.
    results: Vec<Value>,
    /// `columnKind`, for runs whose regions count columns.
    column_kind: Option<&'a str>,
}

/// The log of one run.
fn log(run: Run<'_>) -> Value {
    let mut r = json!({
        "tool": {"driver": {"name": run.tool, "version": env!("CARGO_PKG_VERSION"), "rules": run.rules}},
        "results": run.results,
    });
    if let Some(kind) = run.column_kind {
        r["columnKind"] = json!(kind);
    }
    json!({"$schema": SCHEMA, "version": "2.1.0", "runs": [r]})
}

/// A rule: its id (also its name), a short description and its default level.
fn rule(id: &str, description: &str, level: &str) -> Value {
    json!({
        "id": id,
        "name": id,
        "shortDescription": {"text": description},
        "defaultConfiguration": {"level": level},
    })
}

/// A result of rule `id` (at `index` among the run's rules, when it is one of them).
fn result(id: &str, index: Option<usize>, level: &str, message: String) -> Value {
    json!({"ruleId": id, "ruleIndex": index, "level": level, "message": {"text": message}})
}

/// A location that is not a file: a container (or the daemon, or the host).
fn resource(name: &str) -> Value {
    json!({"logicalLocations": [{"name": name, "kind": "resource"}]})
}

/// The suppressions of a result that was looked at and accepted.
fn suppressed(justification: &str) -> Value {
    json!([{"kind": "external", "justification": justification}])
}

/// The distinct rule ids of `xs` in sorted order, each with the first element of that rule (which
/// describes it).
fn distinct_rules<T>(xs: &[T], rule_of: impl Fn(&T) -> &str) -> Vec<(&str, &T)> {
    let mut ids: Vec<&str> = xs.iter().map(&rule_of).collect();
    ids.sort_unstable();
    ids.dedup();
    ids.into_iter()
        .map(|id| (id, xs.iter().find(|x| rule_of(x) == id).expect("id from the elements")))
        .collect()
}

/// The level of a secret of severity `s`.
fn secret_level(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low => "note",
    }
}

/// The SARIF 2.1.0 log of `sidecar scan`: one result per finding, at its file, lines and bytes.
pub fn findings(findings: &[Finding]) -> Value {
    let rules = distinct_rules(findings, |f| f.rule.as_str());
    let rule_objs: Vec<Value> = rules
        .iter()
        .map(|(id, f)| {
            let mut r = rule(id, &f.description, secret_level(f.severity));
            let security_severity = match f.severity {
                Severity::Critical => "9.5",
                Severity::High => "8.0",
                Severity::Medium => "5.0",
                Severity::Low => "2.0",
            };
            r["properties"] = json!({"security-severity": security_severity, "tags": ["security", "secret"]});
            r
        })
        .collect();
    let results = findings
        .iter()
        .map(|f| {
            let message = format!(
                "{} found: {} (fingerprint {})",
                f.description,
                f.preview,
                short_fingerprint(&f.fingerprint)
            );
            let index = rules.iter().position(|(id, _)| *id == f.rule);
            let mut r = result(&f.rule, index, secret_level(f.severity), message);
            r["locations"] = json!([{"physicalLocation": {
                "artifactLocation": {"uri": uri(&f.file)},
                "region": {
                    "startLine": f.line,
                    "endLine": f.end_line,
                    "byteOffset": f.start,
                    "byteLength": f.end - f.start,
                }
            }}]);
            r["partialFingerprints"] = json!({"sidecarFingerprint/v1": f.fingerprint});
            r["properties"] = json!({
                "containerId": f.container_id,
                "stream": f.stream,
                "time": f.time,
                "ranges": f.ranges,
            });
            r
        })
        .collect();
    log(Run {
        tool: "sidecar",
        rules: rule_objs,
        results,
        column_kind: Some("utf16CodeUnits"),
    })
}

/// The SARIF 2.1.0 log of `sidecar report`: one result per secret, the containers as logical
/// locations, the fingerprint as the partial fingerprint, and an external suppression for
/// acknowledged items.
pub fn items(items: &[Item]) -> Value {
    let rules = distinct_rules(items, |i| i.rule.as_str());
    let rule_objs: Vec<Value> = rules
        .iter()
        .map(|(id, i)| rule(id, &i.description, secret_level(i.severity)))
        .collect();
    let results = items
        .iter()
        .map(|i| {
            let message = format!(
                "{} seen {} time(s), {} to {}: {}",
                i.description, i.count, i.first_seen, i.last_seen, i.preview
            );
            let index = rules.iter().position(|(id, _)| *id == i.rule);
            let mut r = result(&i.rule, index, secret_level(i.severity), message);
            r["locations"] = i.containers.iter().map(|c| resource(c)).collect();
            r["partialFingerprints"] = json!({"sidecarFingerprint/v1": i.fingerprint});
            r["properties"] = json!({"count": i.count, "firstSeen": i.first_seen, "lastSeen": i.last_seen, "againAfterAck": i.again_after_ack});
            if let (ItemStatus::Acked, Some(a)) = (i.status, &i.ack) {
                r["suppressions"] = suppressed(&format!("{} ({}, {})", a.note, a.by, a.at));
            }
            r
        })
        .collect();
    log(Run {
        tool: "sidecar-report",
        rules: rule_objs,
        results,
        column_kind: None,
    })
}

/// The level of a failed check of severity `s`.
fn check_level(s: crate::policy::Severity) -> &'static str {
    use crate::policy::Severity;
    match s {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low => "note",
    }
}

/// The SARIF 2.1.0 log of `sidecar audit`: every check as a rule, every failure or accepted risk
/// as a result (accepted ones carry an external suppression with the reason).
pub fn audit(results: &[CheckResult]) -> Value {
    use crate::policy::Severity;
    let rules = CHECKS
        .iter()
        .map(|c| {
            let mut r = rule(c.id, c.title, check_level(c.severity));
            r["help"] = json!({"text": c.fix});
            let security_severity = match c.severity {
                Severity::Critical => "9.5",
                Severity::High => "8.0",
                Severity::Medium => "5.0",
                Severity::Low => "2.0",
            };
            r["properties"] = json!({"security-severity": security_severity, "tags": ["security", "docker"]});
            r
        })
        .collect();
    let results = results
        .iter()
        .filter(|r| matches!(r.status, Status::Fail | Status::Accepted))
        .map(|r| {
            let message = format!("{}: {} (fix: {})", r.container, r.evidence, r.fix);
            let index = CHECKS.iter().position(|c| c.id == r.check);
            let mut v = result(&r.check, index, check_level(r.severity), message);
            v["locations"] = json!([resource(&r.container)]);
            v["partialFingerprints"] = json!({"sidecarAudit/v1": format!("{}/{}", r.container, r.check)});
            if let Some(reason) = &r.reason {
                v["suppressions"] = suppressed(reason);
            }
            v
        })
        .collect();
    log(Run {
        tool: "sidecar-audit",
        rules,
        results,
        column_kind: None,
    })
}

/// A file path as a URI reference: unreserved bytes kept, every other byte percent-encoded.
fn uri(path: &str) -> String {
    let mut s = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"/-_.~".contains(&b) {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}
