//! Rule files: the built-in rules, user rules in the same schema, and gitleaks configs.
//!
//! Schema (TOML):
//! ```toml
//! [[rule]]
//! id = "github-pat"                      # stable id, [a-z0-9-]
//! description = "GitHub personal access token"
//! severity = "high"                      # critical | high | medium | low (default high)
//! priority = 80                          # higher wins when two rules match overlapping text (default 50)
//! keywords = ["ghp_"]                    # literal, case-insensitive prefilter
//! requires = ["@"]                       # optional: the text must also contain one of these literals
//! window = 1024                          # optional: in texts over 16 KiB, look only this far around keywords
//! regex = '''{{lb}}(?P<secret>ghp_[A-Za-z0-9]{36})'''   # {{name}}: a fragment from [define]
//! secret_group = "secret"                # name or number; default: group "secret", else 1, else 0
//! entropy = 3.0                          # optional minimum Shannon entropy of the secret (bits/byte)
//! validator = "discord-token"            # optional structural check that gates the match, see validate.rs
//! checksum = "github-crc32"              # optional check that raises confidence (never gates; a passing CRC32 overrides the placeholder check)
//! confidence = "format"                  # format (the token's own shape) | context (found by its name)
//! placeholders = "loose"                 # loose | strict | off: how hard to look for fakes, see placeholder.rs
//! public_prefixes = ["ghp_"]             # left readable when masking
//! examples = ["token ghp_…"]             # must match (tested)
//! negative_examples = ["ghp_xxxx"]       # must not match (tested)
//! [rule.allowlist]                       # optional: matches to ignore
//! regexes = ['''^ghp_0+$''']
//! stopwords = ["example"]
//! target = "secret"                      # secret | match | line (default secret)
//!
//! [allowlist]                            # global, same fields
//!
//! [define]                               # named regex fragments, used as {{name}} in regexes
//! lb = '''(?:^|[^0-9A-Za-z_-])'''
//! ```
//! Fragments are expanded before compiling, also inside other fragments; a user rule file may use the
//! built-in fragments and define its own (the same name replaces a built-in one).
use serde::{Deserialize, Serialize};

/// How severe a leak of this kind of secret is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Low.
    Low,
    /// Medium.
    Medium,
    /// High (default).
    #[default]
    High,
    /// Critical.
    Critical,
}

impl Severity {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// How a finding was confirmed, reported in every finding's `confidence` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Confidence {
    /// Found by a name or context around a value (`DB_PASSWORD=…`, `Authorization: Bearer …`).
    Context,
    /// The value has a provider's distinctive format (`ghp_…`, `sk-ant-api03-…`, `AKIA…`).
    #[default]
    Format,
    /// The format's own checksum or structure verified (GitHub's CRC32, a JWT that decodes).
    Checksum,
}

impl Confidence {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Confidence::Context => "context",
            Confidence::Format => "format",
            Confidence::Checksum => "checksum",
        }
    }
}

/// What an allowlist regex is matched against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum AllowTarget {
    /// The secret group (default).
    #[default]
    Secret,
    /// The whole regex match.
    Match,
    /// The whole text unit (log entry or line) the match is in.
    Line,
}

/// Matches to ignore: regexes and stopwords (case-insensitive substrings of the secret).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AllowlistSpec {
    /// Regexes; a match of any of them against `target` drops the finding.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub regexes: Vec<String>,
    /// Case-insensitive substrings of the secret that drop the finding.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stopwords: Vec<String>,
    /// What `regexes` are matched against.
    #[serde(default)]
    pub target: AllowTarget,
}

impl AllowlistSpec {
    /// True when there is nothing in it.
    pub fn is_empty(&self) -> bool {
        self.regexes.is_empty() && self.stopwords.is_empty()
    }
}

/// One detection rule, as written in a rule file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// Stable identifier.
    pub id: String,
    /// What the rule finds.
    #[serde(default)]
    pub description: String,
    /// Severity of a leak.
    #[serde(default)]
    pub severity: Severity,
    /// Overlap resolution: the higher priority wins.
    #[serde(default = "default_priority")]
    pub priority: i32,
    /// Literal, case-insensitive keywords; the regex runs only on text containing one of them.
    /// A rule without keywords runs on every text (slow; user rules only).
    #[serde(default)]
    pub keywords: Vec<String>,
    /// Literals (case-insensitive) of which the text must also contain at least one for the regex to
    /// run: a cheap second gate for rules whose keyword is common (`://` for passwords in URLs, with `@`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requires: Vec<String>,
    /// In texts over 16 KiB, search only this many bytes before and after each keyword (a match that
    /// reaches a window's edge still makes the rule search the whole text). Default: the regex's
    /// longest match when it is bounded, else the whole text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<usize>,
    /// The regex (Rust `regex` syntax, which accepts gitleaks' RE2 syntax).
    pub regex: String,
    /// Capture group holding the secret: a name or a number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_group: Option<String>,
    /// Minimum Shannon entropy of the secret, in bits per byte.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entropy: Option<f64>,
    /// Structural validator that gates the match, see [`crate::redact::validate::Validator`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validator: Option<String>,
    /// A validator that only raises the finding's confidence to `checksum` when it passes; a match
    /// that fails it is still a finding (test tokens and typos are still tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
    /// Whether the rule recognises a format (`format`, default) or a context (`context`).
    #[serde(default)]
    pub confidence: Confidence,
    /// How hard to look for placeholders and fakes in a match: `loose` (default), `strict` or `off`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placeholders: Option<String>,
    /// Public prefixes left readable in masks and previews (the longest that the secret starts with).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub public_prefixes: Vec<String>,
    /// Texts the rule must find something in.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub examples: Vec<String>,
    /// Texts the rule must find nothing in.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub negative_examples: Vec<String>,
    /// Per-rule allowlist.
    #[serde(default, skip_serializing_if = "AllowlistSpec::is_empty")]
    pub allowlist: AllowlistSpec,
}

fn default_priority() -> i32 {
    50
}

/// A rule file: rules and a global allowlist.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RuleFile {
    /// The rules.
    #[serde(default)]
    pub rule: Vec<RuleSpec>,
    /// Global allowlist.
    #[serde(default)]
    pub allowlist: AllowlistSpec,
    /// Named regex fragments, written `{{name}}` in regexes and allowlist regexes.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub define: std::collections::BTreeMap<String, String>,
    /// Hints for the keyword prefilter.
    #[serde(default, skip_serializing_if = "PrefilterSpec::is_empty")]
    pub prefilter: PrefilterSpec,
}

/// Hints for the keyword prefilter (performance only: what is found does not change).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PrefilterSpec {
    /// Beginnings of keywords (case-insensitive) that are rare in logs: when the keywords do not
    /// fit one SIMD searcher, those starting with one of these are searched by these bytes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rare_prefixes: Vec<String>,
}

impl PrefilterSpec {
    /// True when there is nothing in it.
    pub fn is_empty(&self) -> bool {
        self.rare_prefixes.is_empty()
    }
}

/// The built-in rules, embedded in the binary.
pub const BUILTIN_RULES: &str = include_str!("builtin.toml");

/// Errors loading rule files. Messages name the rule and what to fix; they never quote scanned text.
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    /// The TOML did not parse.
    #[error("rule file {source_name}: {message}")]
    Parse {
        /// Which file.
        source_name: String,
        /// The parser's message.
        message: String,
    },
    /// A rule's regex did not compile.
    #[error("rule `{rule}`: invalid regex: {message}")]
    Regex {
        /// Rule id.
        rule: String,
        /// The regex compiler's message.
        message: String,
    },
    /// Something else about a rule is wrong.
    #[error("rule `{rule}`: {message}")]
    Invalid {
        /// Rule id.
        rule: String,
        /// What is wrong and how to fix it.
        message: String,
    },
}

impl RuleFile {
    /// Parse a rule file in sidecar's schema.
    pub fn from_toml(text: &str, source_name: &str) -> Result<Self, RuleError> {
        toml::from_str(text).map_err(|e| RuleError::Parse {
            source_name: source_name.to_string(),
            message: e.to_string(),
        })
    }

    /// The built-in rules.
    pub fn builtin() -> Self {
        Self::from_toml(BUILTIN_RULES, "built-in rules").expect("built-in rules parse (tested)")
    }

    /// Parse a gitleaks config (`[[rules]]` with `id, description, regex, secretGroup, keywords,
    /// entropy, allowlist(s)`, and a global `[allowlist]` or `[[allowlists]]`). Fields sidecar does not
    /// use (`tags`, `path`, `[extend]`, …) are ignored; rules that only match paths are skipped.
    pub fn from_gitleaks_toml(text: &str, source_name: &str) -> Result<Self, RuleError> {
        let parsed: gitleaks::Config = toml::from_str(text).map_err(|e| RuleError::Parse {
            source_name: source_name.to_string(),
            message: e.to_string(),
        })?;
        Ok(parsed.into_rule_file())
    }

    /// Append another file's rules and allowlist. Later rules with an id already present replace it.
    pub fn merge(&mut self, other: RuleFile) {
        for rule in other.rule {
            if let Some(existing) = self.rule.iter_mut().find(|r| r.id == rule.id) {
                *existing = rule;
            } else {
                self.rule.push(rule);
            }
        }
        self.allowlist.regexes.extend(other.allowlist.regexes);
        self.allowlist.stopwords.extend(other.allowlist.stopwords);
        self.define.extend(other.define);
        self.prefilter.rare_prefixes.extend(other.prefilter.rare_prefixes);
    }

    /// `pattern` with every `{{name}}` replaced by its fragment from `[define]`, recursively. A
    /// `{{` not followed by a name and `}}` is kept as it is.
    pub fn expand(&self, pattern: &str, rule: &str) -> Result<String, RuleError> {
        let is_name = |n: &str| !n.is_empty() && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        let mut out = pattern.to_string();
        for _ in 0..8 {
            let mut next = String::with_capacity(out.len());
            let mut rest = out.as_str();
            let mut changed = false;
            while let Some(open) = rest.find("{{") {
                let after = &rest[open + 2..];
                match after.find("}}") {
                    Some(close) if is_name(&after[..close]) => {
                        let name = &after[..close];
                        let fragment = self.define.get(name).ok_or_else(|| RuleError::Invalid {
                            rule: rule.to_string(),
                            message: format!("`{{{{{name}}}}}` is not defined in [define]"),
                        })?;
                        next.push_str(&rest[..open]);
                        next.push_str(fragment);
                        rest = &after[close + 2..];
                        changed = true;
                    }
                    _ => {
                        next.push_str(&rest[..open + 2]);
                        rest = after;
                    }
                }
            }
            next.push_str(rest);
            if !changed {
                return Ok(next);
            }
            out = next;
        }
        Err(RuleError::Invalid {
            rule: rule.to_string(),
            message: "[define] fragments nest more than 8 deep (a fragment that uses itself?)".into(),
        })
    }
}

mod gitleaks {
    use super::{AllowTarget, AllowlistSpec, RuleFile, RuleSpec, Severity};
    use serde::Deserialize;

    #[derive(Deserialize, Default)]
    pub struct Allowlist {
        #[serde(default)]
        regexes: Vec<String>,
        #[serde(default)]
        stopwords: Vec<String>,
        #[serde(default, rename = "regexTarget")]
        regex_target: Option<String>,
    }

    impl Allowlist {
        fn into_spec(self) -> AllowlistSpec {
            AllowlistSpec {
                regexes: self.regexes,
                stopwords: self.stopwords,
                target: match self.regex_target.as_deref() {
                    Some("match") => AllowTarget::Match,
                    Some("line") => AllowTarget::Line,
                    _ => AllowTarget::Secret,
                },
            }
        }
    }

    #[derive(Deserialize)]
    pub struct Rule {
        id: String,
        #[serde(default)]
        description: String,
        #[serde(default)]
        regex: Option<String>,
        #[serde(default, rename = "secretGroup")]
        secret_group: Option<u32>,
        #[serde(default)]
        entropy: Option<f64>,
        #[serde(default)]
        keywords: Vec<String>,
        #[serde(default)]
        allowlist: Option<Allowlist>,
        #[serde(default)]
        allowlists: Vec<Allowlist>,
    }

    #[derive(Deserialize)]
    pub struct Config {
        #[serde(default)]
        rules: Vec<Rule>,
        #[serde(default)]
        allowlist: Option<Allowlist>,
        #[serde(default)]
        allowlists: Vec<Allowlist>,
    }

    fn merge_allowlists(one: Option<Allowlist>, many: Vec<Allowlist>) -> AllowlistSpec {
        // sidecar's allowlist has one target; gitleaks lists with different targets are kept by
        // turning "line"/"match" lists into the widest target used.
        let mut spec = AllowlistSpec::default();
        for a in one.into_iter().chain(many) {
            let a = a.into_spec();
            if a.target != AllowTarget::Secret && !a.regexes.is_empty() {
                spec.target = a.target;
            }
            spec.regexes.extend(a.regexes);
            spec.stopwords.extend(a.stopwords);
        }
        spec
    }

    impl Config {
        pub fn into_rule_file(self) -> RuleFile {
            let rules = self
                .rules
                .into_iter()
                .filter_map(|r| {
                    let regex = r.regex?;
                    Some(RuleSpec {
                        id: r.id,
                        description: r.description,
                        severity: Severity::High,
                        priority: 50,
                        keywords: r.keywords,
                        requires: Vec::new(),
                        window: None,
                        regex,
                        secret_group: r.secret_group.filter(|g| *g > 0).map(|g| g.to_string()),
                        entropy: r.entropy,
                        validator: None,
                        checksum: None,
                        confidence: super::Confidence::Format,
                        placeholders: None,
                        public_prefixes: Vec::new(),
                        examples: Vec::new(),
                        negative_examples: Vec::new(),
                        allowlist: merge_allowlists(r.allowlist, r.allowlists),
                    })
                })
                .collect();
            RuleFile {
                rule: rules,
                allowlist: merge_allowlists(self.allowlist, self.allowlists),
                define: Default::default(),
                prefilter: Default::default(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_gitleaks_config() {
        let cfg = r#"
title = "custom"
[extend]
useDefault = true
[[rules]]
id = "acme-key"
description = "Acme key"
regex = '''acme_(?:live|test)_([a-z0-9]{24})'''
secretGroup = 1
entropy = 3.0
keywords = ["acme_"]
tags = ["key"]
[[rules.allowlists]]
stopwords = ["example"]
[[rules]]
id = "path-only"
path = '''\.pem$'''
[allowlist]
regexes = ['''^dummy''']
"#;
        let file = RuleFile::from_gitleaks_toml(cfg, "test").unwrap();
        assert_eq!(file.rule.len(), 1);
        let r = &file.rule[0];
        assert_eq!(r.id, "acme-key");
        assert_eq!(r.secret_group.as_deref(), Some("1"));
        assert_eq!(r.entropy, Some(3.0));
        assert_eq!(r.allowlist.stopwords, vec!["example"]);
        assert_eq!(file.allowlist.regexes, vec!["^dummy"]);
    }

    #[test]
    fn fragments_expand_recursively_and_unknown_ones_are_errors() {
        let file = RuleFile::from_toml("[define]\nws = '[ \\t]'\nsep = '{{ws}}*[:=]{{ws}}*'\n", "t").unwrap();
        assert_eq!(file.expand("key{{sep}}(v)", "r").unwrap(), "key[ \\t]*[:=][ \\t]*(v)");
        assert_eq!(file.expand("a{2}{{ {x} }}", "r").unwrap(), "a{2}{{ {x} }}");
        let err = file.expand("{{nope}}", "r").unwrap_err();
        assert!(err.to_string().contains("`{{nope}}` is not defined"), "{err}");
        let looped = RuleFile::from_toml("[define]\na = '{{a}}'\n", "t").unwrap();
        assert!(looped.expand("{{a}}", "r").unwrap_err().to_string().contains("nest"));
    }

    #[test]
    fn unknown_fields_are_rejected_in_own_schema() {
        let err = RuleFile::from_toml("[[rule]]\nid='x'\nregex='x'\nkeyword=['x']\n", "t").unwrap_err();
        assert!(err.to_string().contains("keyword"), "{err}");
    }
}
