//! The compiled engine: keyword prefilter, regex confirmation, entropy, validators, allowlists.
use std::ops::Range;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use regex::bytes::{CaptureLocations, Regex, RegexBuilder};

use super::placeholder::{self, Strictness};
use super::rules::{AllowTarget, AllowlistSpec, Confidence, RuleError, RuleFile, RuleSpec, Severity};
use super::shannon_entropy;
use super::validate::Validator;

/// A compiled rule.
#[derive(Debug)]
pub struct Rule {
    /// Stable identifier.
    pub id: String,
    /// What the rule finds.
    pub description: String,
    /// Severity of a leak.
    pub severity: Severity,
    /// Overlap resolution priority.
    pub priority: i32,
    regex: Regex,
    group: usize,
    entropy: Option<f64>,
    validator: Option<Validator>,
    /// Raises a match's confidence to `checksum` when it passes; never drops a match (a passing
    /// CRC32, [`Validator::is_digest`], also overrides the placeholder check).
    checksum: Option<Validator>,
    /// `format` or `context`: the confidence of a match that has no passing checksum.
    confidence: Confidence,
    placeholders: Strictness,
    /// Public prefixes, longest first.
    public_prefixes: Vec<Vec<u8>>,
    /// Lowercase literals of which one must occur in the text (empty: no such gate).
    requires: Vec<memchr::memmem::Finder<'static>>,
    /// How far from a keyword this rule's matches can reach: the regex's maximum match length when
    /// it is bounded and small, else `None` (the rule always searches the whole text).
    reach: Option<usize>,
    allow: Allowlist,
}

impl Rule {
    /// Does `lowered` (text passed through [`lowercase_into`]) pass the rule's `requires` gate?
    fn required_present(&self, lowered: &[u8]) -> bool {
        self.requires.is_empty() || self.requires.iter().any(|r| r.find(lowered).is_some())
    }
}

impl Rule {
    /// The longest public prefix that `secret` starts with, or an empty slice.
    pub fn public_prefix<'s>(&self, secret: &'s [u8]) -> &'s [u8] {
        for p in &self.public_prefixes {
            if secret.len() >= p.len() && secret[..p.len()].eq_ignore_ascii_case(p) {
                return &secret[..p.len()];
            }
        }
        &[]
    }
}

#[derive(Debug, Default)]
struct Allowlist {
    regexes: Vec<Regex>,
    stopwords: Vec<Vec<u8>>,
    target: AllowTarget,
}

impl Allowlist {
    fn compile(spec: &AllowlistSpec, rule: &str, file: &RuleFile) -> Result<Self, RuleError> {
        let regexes = spec
            .regexes
            .iter()
            .map(|r| compile_regex(&file.expand(r, rule)?, rule))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            regexes,
            stopwords: spec
                .stopwords
                .iter()
                .map(|s| s.to_ascii_lowercase().into_bytes())
                .collect(),
            target: spec.target,
        })
    }

    fn allows(&self, secret: &[u8], whole: &[u8], unit: &[u8]) -> bool {
        if !self.stopwords.is_empty() {
            let lower = secret.to_ascii_lowercase();
            if self.stopwords.iter().any(|w| memchr::memmem::find(&lower, w).is_some()) {
                return true;
            }
        }
        let target = match self.target {
            AllowTarget::Secret => secret,
            AllowTarget::Match => whole,
            AllowTarget::Line => unit,
        };
        self.regexes.iter().any(|r| r.is_match(target))
    }
}

fn compile_regex(pattern: &str, rule: &str) -> Result<Regex, RuleError> {
    RegexBuilder::new(pattern)
        .size_limit(8 << 20)
        .dfa_size_limit(2 << 20)
        .build()
        .map_err(|e| RuleError::Regex {
            rule: rule.to_string(),
            message: e.to_string(),
        })
}

/// A confirmed match in a text. Offsets are into the text given to [`Engine::find`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    /// Index of the rule in [`Engine::rules`].
    pub rule: usize,
    /// The secret.
    pub secret: Range<usize>,
    /// The whole regex match.
    pub whole: Range<usize>,
    /// How the match was confirmed.
    pub confidence: Confidence,
}

/// The fewest characters after its public prefix that make a cut-off secret worth masking (see
/// [`Engine::find_cut`]): 12 random base62 characters are 71 bits.
pub const CUT_MIN_VISIBLE: usize = 12;
/// How far before the run of token characters at a cut a public prefix may start (prefixes such as
/// `1//0` or `ya29.` hold characters that end the run).
const CUT_PREFIX_MAX: usize = 16;
/// The least Shannon entropy (bits per byte) of a cut-off secret's visible characters.
const CUT_MIN_ENTROPY: f64 = 3.0;

/// Texts longer than this are matched in windows around keywords.
const WINDOW_MIN_TEXT: usize = 16 << 10;
/// The most patterns Teddy accepts.
const TEDDY_MAX_PATTERNS: usize = 64;

/// The patterns not containing another pattern (a line containing one of those contains one of these).
fn minimal_cover(mut patterns: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    patterns.sort();
    patterns.dedup();
    let all = patterns.clone();
    patterns.retain(|p| {
        !all.iter()
            .any(|q| q.len() < p.len() && memchr::memmem::find(p, q).is_some())
    });
    patterns
}

/// Rules whose longest possible match is longer than this search whole texts, never windows.
const MAX_WINDOW_REACH: usize = 8 << 10;

/// The longest match of a regex in bytes, if it is bounded.
fn max_match_len(pattern: &str) -> Option<usize> {
    let hir = regex_syntax::ParserBuilder::new()
        .utf8(false)
        .build()
        .parse(pattern)
        .ok()?;
    hir.properties().maximum_len()
}

/// Per-thread reusable buffers for [`Engine::find`].
#[derive(Debug, Default)]
pub struct Scratch {
    triggered: Vec<bool>,
    order: Vec<usize>,
    candidates: Vec<Match>,
    locs: Vec<Option<CaptureLocations>>,
    windows: Vec<Vec<Range<usize>>>,
    /// The text, ASCII-lowercased (the keyword search and the `requires` gates read it).
    lowered: Vec<u8>,
    /// Keyword occurrences: (start, end, pattern index).
    hits: Vec<(usize, usize, usize)>,
}

/// Builds an [`Engine`] from rule files.
#[derive(Debug, Default)]
pub struct EngineBuilder {
    rules: RuleFile,
    disabled: Vec<String>,
}

impl EngineBuilder {
    /// Start from the built-in rules.
    pub fn with_builtin() -> Self {
        Self {
            rules: RuleFile::builtin(),
            disabled: Vec::new(),
        }
    }

    /// Start from no rules at all.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Add rules (same id replaces).
    pub fn with_rules(mut self, file: RuleFile) -> Self {
        self.rules.merge(file);
        self
    }

    /// Disable rules by id.
    pub fn disable<I: IntoIterator<Item = S>, S: Into<String>>(mut self, ids: I) -> Self {
        self.disabled.extend(ids.into_iter().map(Into::into));
        self
    }

    /// The rule specs as they stand (for `config show` and the example test).
    pub fn specs(&self) -> &RuleFile {
        &self.rules
    }

    /// Compile. Errors name the rule and the problem.
    pub fn build(self) -> Result<Engine, RuleError> {
        for id in &self.disabled {
            if !self.rules.rule.iter().any(|r| &r.id == id) {
                return Err(RuleError::Invalid {
                    rule: id.clone(),
                    message: "cannot disable: no rule has this id (see `sidecar rules`)".into(),
                });
            }
        }
        let specs: Vec<&RuleSpec> = self
            .rules
            .rule
            .iter()
            .filter(|r| !self.disabled.contains(&r.id))
            .collect();
        let mut rules = Vec::with_capacity(specs.len());
        let mut patterns: Vec<Vec<u8>> = Vec::new();
        let mut pattern_rules: Vec<Vec<usize>> = Vec::new();
        let mut unconditional = Vec::new();
        // Compiling the regexes is most of the start-up time: one thread per core (at most 4),
        // each taking every n-th rule; errors are reported in rule order.
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 4);
        let mut compiled: Vec<Option<Result<Rule, RuleError>>> = (0..specs.len()).map(|_| None).collect();
        std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads)
                .map(|t| {
                    let (specs, file) = (&specs, &self.rules);
                    scope.spawn(move || {
                        (t..specs.len())
                            .step_by(threads)
                            .map(|i| (i, compile_rule(specs[i], file)))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            for w in workers {
                for (i, r) in w.join().expect("rule compilation does not panic") {
                    compiled[i] = Some(r);
                }
            }
        });
        for (idx, (spec, rule)) in specs.iter().zip(compiled).enumerate() {
            rules.push(rule.expect("every rule compiled")?);
            if spec.keywords.is_empty() {
                unconditional.push(idx);
            }
            for kw in &spec.keywords {
                if kw.is_empty() {
                    return Err(RuleError::Invalid {
                        rule: spec.id.clone(),
                        message: "empty keyword".into(),
                    });
                }
                let lower = kw.to_ascii_lowercase().into_bytes();
                // Docker writes a tab as \u0009, Go's encoding/json (attrs, app JSON) as \t.
                let escaped = json_escaped(&lower, false);
                let escaped_tab = json_escaped(&lower, true);
                for variant in [lower, escaped, escaped_tab] {
                    match patterns.iter().position(|p| *p == variant) {
                        Some(p) => {
                            if !pattern_rules[p].contains(&idx) {
                                pattern_rules[p].push(idx)
                            }
                        }
                        None => {
                            patterns.push(variant);
                            pattern_rules.push(vec![idx]);
                        }
                    }
                }
            }
        }
        let rare_prefixes: Vec<Vec<u8>> = self
            .rules
            .prefilter
            .rare_prefixes
            .iter()
            .map(|p| p.to_ascii_lowercase().into_bytes())
            .filter(|p| !p.is_empty())
            .collect();
        let mut prefilter =
            Prefilter::new(&patterns, &pattern_rules, &rare_prefixes).map_err(|e| RuleError::Invalid {
                rule: "*".into(),
                message: format!("keyword prefilter: {e}"),
            })?;
        prefilter.cover_decides = prefilter
            .cover_rules
            .iter()
            .map(|rs| rs.iter().any(|&r| rules[r].requires.is_empty()))
            .collect();
        let mut format_prefixes: Vec<Vec<u8>> = rules
            .iter()
            .filter(|r| r.confidence == Confidence::Format)
            .flat_map(|r| r.public_prefixes.iter().filter(|p| p.len() >= 4).cloned())
            .collect();
        format_prefixes.sort_by_key(|p| std::cmp::Reverse(p.len()));
        format_prefixes.dedup();
        Ok(Engine {
            format_prefixes,
            rules,
            prefilter,
            max_keyword_len: patterns.iter().map(Vec::len).max().unwrap_or(0),
            patterns,
            pattern_rules,
            unconditional,
            global: Allowlist::compile(&self.rules.allowlist, "global allowlist", &self.rules)?,
        })
    }
}

fn compile_rule(spec: &RuleSpec, file: &RuleFile) -> Result<Rule, RuleError> {
    let invalid = |message: String| RuleError::Invalid {
        rule: spec.id.clone(),
        message,
    };
    if spec.id.is_empty() {
        return Err(invalid("empty id".into()));
    }
    let pattern = file.expand(&spec.regex, &spec.id)?;
    let regex = compile_regex(&pattern, &spec.id)?;
    let group = match spec.secret_group.as_deref() {
        Some(g) => match g.parse::<usize>() {
            Ok(n) if n < regex.captures_len() => n,
            Ok(n) => return Err(invalid(format!("secret_group {n} does not exist in the regex"))),
            Err(_) => regex
                .capture_names()
                .position(|n| n == Some(g))
                .ok_or_else(|| invalid(format!("secret_group `{g}` is not a named group of the regex")))?,
        },
        None => regex
            .capture_names()
            .position(|n| n == Some("secret"))
            .unwrap_or(if regex.captures_len() > 1 { 1 } else { 0 }),
    };
    let validator_named = |name: Option<&str>, field: &str| -> Result<Option<Validator>, RuleError> {
        name.map(|name| {
            Validator::from_name(name).ok_or_else(|| {
                invalid(format!(
                    "unknown {field} `{name}`; known: {}",
                    Validator::NAMES.join(", ")
                ))
            })
        })
        .transpose()
    };
    let validator = validator_named(spec.validator.as_deref(), "validator")?;
    let checksum = validator_named(spec.checksum.as_deref(), "checksum")?;
    let placeholders = match spec.placeholders.as_deref() {
        None => Strictness::default(),
        Some(name) => Strictness::from_name(name)
            .ok_or_else(|| invalid(format!("unknown placeholders `{name}`; known: loose, strict, off")))?,
    };
    let mut public_prefixes: Vec<Vec<u8>> = spec.public_prefixes.iter().map(|p| p.as_bytes().to_vec()).collect();
    public_prefixes.sort_by_key(|p| std::cmp::Reverse(p.len()));
    Ok(Rule {
        id: spec.id.clone(),
        description: spec.description.clone(),
        severity: spec.severity,
        priority: spec.priority,
        regex,
        group,
        entropy: spec.entropy,
        validator,
        checksum,
        confidence: spec.confidence,
        placeholders,
        public_prefixes,
        reach: spec
            .window
            .or_else(|| max_match_len(&pattern).filter(|&n| n <= MAX_WINDOW_REACH)),
        requires: spec
            .requires
            .iter()
            .filter(|r| !r.is_empty())
            .map(|r| memchr::memmem::Finder::new(r.to_ascii_lowercase().as_bytes()).into_owned())
            .collect(),
        allow: Allowlist::compile(&spec.allowlist, &spec.id, file)?,
    })
}

/// ASCII-lowercase `bytes` into `out` (cleared first). Fast: a straight byte loop the compiler vectorizes.
pub fn lowercase_into(bytes: &[u8], out: &mut Vec<u8>) {
    out.clear();
    out.extend(bytes.iter().map(u8::to_ascii_lowercase));
}

/// The raw-bytes keyword prefilter: the smallest set of lowercase keywords that every keyword
/// contains (a keyword containing another is redundant here), searched with SIMD Teddy on lowercased
/// bytes when the set is small enough, else with a DFA.
///
/// Teddy compares a fingerprint of the first `min(4, shortest pattern)` bytes; on lowercased text a
/// 3-byte fingerprint over ~60 patterns lets roughly one position in ten through to verification.
/// So the patterns of 4 bytes or more get their own searcher (a 4-byte fingerprint) and the few
/// shorter ones (`sk-`, `://`, …) another: two passes that together cost about half of one.
#[derive(Debug)]
struct Prefilter {
    groups: Vec<PrefilterGroup>,
    /// For each cover pattern, the rules with a keyword (in any form) containing it.
    cover_rules: Vec<Vec<usize>>,
    /// For each cover pattern, every (pattern index, offset) where it occurs inside a keyword
    /// pattern: a keyword occurrence is found from the cover occurrences in it.
    cover_keywords: Vec<Vec<(usize, usize)>>,
    /// For each cover pattern: does a hit decide alone that the text may match (one of its rules has
    /// no `requires` gate)?
    cover_decides: Vec<bool>,
}

#[derive(Debug)]
struct PrefilterGroup {
    searcher: PrefilterSearcher,
    /// Pattern index in this group's searcher → index in the whole cover.
    cover_index: Vec<usize>,
    /// Pattern index → the pattern is made of base64 characters only (`pass`, `akia`, `zxlk`), so
    /// that an image or another base64 payload can spell it by chance.
    base64_only: Vec<bool>,
}

/// Bytes of base64 on each side of a keyword made of base64 characters that make it part of a
/// base64 payload rather than a word (such a payload is decoded only for other keywords).
const BASE64_RUN: usize = 16;

fn is_base64(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=')
}

/// Whether a backslash escape (`\n`, `\u00e9`: JSON's, as on a raw json-file line) may reach into
/// the text from `start` on: its backslash is among the 6 bytes before. Its letters look like
/// base64 on the raw line, but the text decoded from it has a newline or a non-ASCII character
/// there, which ends a base64 run (the keyword after it has fewer than 16 base64 bytes before it).
fn escape_reaches(lowered: &[u8], start: usize) -> bool {
    lowered[start.saturating_sub(6)..start].contains(&b'\\')
}

#[derive(Debug)]
enum PrefilterSearcher {
    Packed(aho_corasick::packed::Searcher),
    Automaton(AhoCorasick),
}

/// Teddy's fingerprint is at most this long: patterns at least this long share one searcher.
const TEDDY_FINGERPRINT: usize = 4;

/// Merge the patterns sharing the longest common prefix (of 3 bytes or more) until at most `max`
/// remain. Coarser patterns only let more lines through to the exact check in `might_match`.
fn coarsen(mut cover: Vec<Vec<u8>>, max: usize) -> Vec<Vec<u8>> {
    while cover.len() > max {
        cover.sort();
        let best = cover
            .windows(2)
            .map(|w| w[0].iter().zip(&w[1]).take_while(|(a, b)| a == b).count())
            .enumerate()
            .max_by_key(|&(_, lcp)| lcp);
        match best {
            Some((i, lcp)) if lcp >= 3 => {
                let prefix = cover[i][..lcp].to_vec();
                cover.retain(|p| !p.starts_with(&prefix));
                cover.push(prefix);
                cover = minimal_cover(cover);
            }
            _ => break,
        }
    }
    cover
}

impl Prefilter {
    fn new(
        patterns: &[Vec<u8>],
        pattern_rules: &[Vec<usize>],
        rare_prefixes: &[Vec<u8>],
    ) -> Result<Self, aho_corasick::BuildError> {
        let cover = minimal_cover(patterns.to_vec());
        let (long, short): (Vec<Vec<u8>>, Vec<Vec<u8>>) = cover.into_iter().partition(|p| p.len() >= TEDDY_FINGERPRINT);
        // Teddy takes at most 64 patterns per searcher (a Fat one, reading 16 bytes a step; up to
        // 32 fit a Slim one, reading 32). Past 64, the keywords beginning with one of the rule
        // files' rare prefixes move to a searcher of their own: rare, so it lets few candidates
        // through (measured on the benchmark corpus: mixing them into the short keywords' searcher
        // cost as much as a third pass). What still exceeds 64 is split evenly over as many
        // searchers as needed, a pass each.
        let mut long = long;
        let mut rare = Vec::new();
        for prefix in rare_prefixes {
            if long.len() <= TEDDY_MAX_PATTERNS {
                break;
            }
            let (moved, kept): (Vec<Vec<u8>>, Vec<Vec<u8>>) = long.into_iter().partition(|p| p.starts_with(prefix));
            long = kept;
            rare.extend(moved);
        }
        let short = coarsen(minimal_cover(short), TEDDY_MAX_PATTERNS);
        let n_long = long.len().div_ceil(TEDDY_MAX_PATTERNS).max(1);
        let per = long.len().div_ceil(n_long).max(1);
        let n_rare = rare.len().div_ceil(TEDDY_MAX_PATTERNS).max(1);
        let per_rare = rare.len().div_ceil(n_rare).max(1);
        let mut cover: Vec<Vec<u8>> = Vec::new();
        let mut groups = Vec::new();
        let chunks = long
            .chunks(per)
            .map(<[Vec<u8>]>::to_vec)
            .chain(rare.chunks(per_rare).map(<[Vec<u8>]>::to_vec))
            .chain([short]);
        for group in chunks {
            if group.is_empty() {
                continue;
            }
            let group = teddy_bucket_order(group);
            let cover_index = (cover.len()..cover.len() + group.len()).collect();
            let refs: Vec<&Vec<u8>> = group.iter().collect();
            groups.push(PrefilterGroup {
                searcher: PrefilterSearcher::build(&refs)?,
                cover_index,
                base64_only: group.iter().map(|p| p.iter().all(|&b| is_base64(b))).collect(),
            });
            cover.extend(group);
        }
        let cover_rules = cover
            .iter()
            .map(|c| {
                let mut rules: Vec<usize> = patterns
                    .iter()
                    .zip(pattern_rules)
                    .filter(|(p, _)| memchr::memmem::find(p, c).is_some())
                    .flat_map(|(_, r)| r.iter().copied())
                    .collect();
                rules.sort_unstable();
                rules.dedup();
                rules
            })
            .collect();
        let cover_keywords = cover
            .iter()
            .map(|c| {
                patterns
                    .iter()
                    .enumerate()
                    .flat_map(|(i, p)| memchr::memmem::find_iter(p, c).map(move |off| (i, off)))
                    .collect()
            })
            .collect();
        Ok(Prefilter {
            groups,
            cover_rules,
            cover_keywords,
            cover_decides: Vec::new(),
        })
    }

    /// First cover-pattern match at or after `from`: (start, cover index).
    fn find(&self, lowered: &[u8], from: usize) -> Option<(usize, usize)> {
        self.groups
            .iter()
            .filter_map(|g| g.find(lowered, from))
            .min_by_key(|&(at, _)| at)
    }
}

impl PrefilterGroup {
    /// First match of this group's patterns at or after `from`: (start, cover index). A match of
    /// a base64-only pattern inside a run of base64 (16 bytes or more on each side) is not one.
    fn find(&self, lowered: &[u8], from: usize) -> Option<(usize, usize)> {
        self.find_noting(lowered, from, &mut Vec::new())
    }

    /// [`Self::find`], pushing onto `skipped` where each match it passes over starts.
    fn find_noting(&self, lowered: &[u8], mut from: usize, skipped: &mut Vec<usize>) -> Option<(usize, usize)> {
        loop {
            let (at, cover, inside_base64) = self.find_any(lowered, from)?;
            if !inside_base64 {
                return Some((at, cover));
            }
            skipped.push(at);
            from = at + 1;
        }
    }

    /// First match of this group's patterns at or after `from`, wherever it is: (start, cover
    /// index, whether [`Self::find`] passes over it as part of a base64 run).
    fn find_any(&self, lowered: &[u8], from: usize) -> Option<(usize, usize, bool)> {
        self.find_any_before(lowered, from, lowered.len())
    }

    /// [`Self::find_any`] of a match that ends at or before `until`.
    fn find_any_before(&self, lowered: &[u8], from: usize, until: usize) -> Option<(usize, usize, bool)> {
        if from >= until {
            return None;
        }
        let (at, end, i) = match &self.searcher {
            PrefilterSearcher::Packed(s) => s
                .find_in(lowered, aho_corasick::Span::from(from..until))
                .map(|m| (m.start(), m.end(), m.pattern().as_usize())),
            PrefilterSearcher::Automaton(a) => a
                .find(aho_corasick::Input::new(lowered).span(from..until))
                .map(|m| (m.start(), m.end(), m.pattern().as_usize())),
        }?;
        let inside_base64 = self.base64_only[i]
            && at >= BASE64_RUN
            && end + BASE64_RUN <= lowered.len()
            && lowered[at - BASE64_RUN..at].iter().all(|&b| is_base64(b))
            && lowered[end..end + BASE64_RUN].iter().all(|&b| is_base64(b))
            && !escape_reaches(lowered, at - BASE64_RUN);
        Some((at, self.cover_index[i], inside_base64))
    }
}

/// A keyword occurrence found by a [`KeywordCursor`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeywordHit {
    /// Where it starts.
    pub at: usize,
    /// Whether it alone makes a text worth matching: a rule it may belong to has no `requires`
    /// gate. When false, [`Engine::might_match_lowered`] decides.
    pub decides: bool,
}

/// Order patterns so that Teddy puts alike ones in the same bucket. Teddy puts the pattern with id
/// `i` in bucket `B - 1 - i % B` (B = 8 for up to 32 patterns, else 16) and reports a candidate
/// wherever a bucket's merged fingerprint fits; a bucket holding `token"`, `token=` and `token:`
/// fits far fewer places than one holding `token"`, `glpat-` and `1//0`. So: sort by the low
/// nybbles of the first four bytes, cut into B
/// runs, and hand out ids so that each run lands in one bucket. Only speed depends on this.
fn teddy_bucket_order(mut group: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    // Teddy's fingerprint looks at the low and high nybbles of the first bytes; alike low nybbles
    // first (Teddy itself keeps patterns with equal low nybbles together), then the bytes.
    group.sort_by_cached_key(|p| (p.iter().take(4).map(|b| b & 15).collect::<Vec<u8>>(), p.clone()));
    let buckets = if group.len() > 32 { 16 } else { 8 };
    let (base, extra) = (group.len() / buckets, group.len() % buckets);
    let mut runs: Vec<std::collections::VecDeque<Vec<u8>>> = Vec::with_capacity(buckets);
    let mut rest = group.into_iter();
    for b in 0..buckets {
        runs.push(rest.by_ref().take(base + usize::from(b < extra)).collect());
    }
    let total: usize = runs.iter().map(|r| r.len()).sum();
    let mut out = Vec::with_capacity(total);
    for id in 0..total {
        let bucket = buckets - 1 - id % buckets;
        let next = match runs[bucket].pop_front() {
            Some(p) => p,
            None => runs.iter_mut().find_map(|r| r.pop_front()).expect("one left per id"),
        };
        out.push(next);
    }
    out
}

/// Successive keyword positions in one lowercased buffer, for queries at increasing offsets: each
/// prefilter searcher's next match is remembered, so a query only re-runs the searchers whose
/// remembered match lies before it. Made by [`Engine::keyword_cursor`]; use one per buffer.
#[derive(Debug)]
pub struct KeywordCursor<'e> {
    engine: &'e Engine,
    /// Per prefilter group: `None` = not searched yet, `Some(None)` = no match left,
    /// `Some(Some((at, cover)))` = its next match starts at `at`, of cover pattern `cover`.
    next: Vec<Option<Option<(usize, usize)>>>,
    /// Where the matches passed over as part of a base64 run start (any group, found so far).
    skipped: Vec<usize>,
    /// How many of `skipped` were sorted when last asked (the groups push in their own order).
    sorted: usize,
}

impl KeywordCursor<'_> {
    /// Whether a match passed over as part of a base64 run starts in `range`, among those before
    /// the last hit returned (or anywhere, once none is left). In decoded text such a keyword may
    /// stand alone: Docker's escapes (`\n`, `\u0009`) put base64 letters around it in the raw line.
    pub fn skipped_in(&mut self, range: Range<usize>) -> bool {
        if self.skipped.is_empty() {
            return false;
        }
        if self.sorted != self.skipped.len() {
            self.skipped.sort_unstable();
            self.sorted = self.skipped.len();
        }
        let i = self.skipped.partition_point(|&at| at < range.start);
        self.skipped.get(i).is_some_and(|&at| at < range.end)
    }

    /// Offset of the first keyword at or after `from` in `lowered` (the same buffer on every call;
    /// `from` never decreasing), like [`Engine::next_keyword_lowered`].
    pub fn next(&mut self, lowered: &[u8], from: usize) -> Option<usize> {
        self.next_hit(lowered, from).map(|h| h.at)
    }

    /// Like [`KeywordCursor::next`], with what was found there.
    pub fn next_hit(&mut self, lowered: &[u8], from: usize) -> Option<KeywordHit> {
        if !self.engine.unconditional.is_empty() {
            return (from < lowered.len()).then_some(KeywordHit {
                at: from,
                decides: true,
            });
        }
        let mut best: Option<(usize, usize)> = None;
        for (g, slot) in self.engine.prefilter.groups.iter().zip(self.next.iter_mut()) {
            let hit = match *slot {
                Some(Some((at, cover))) if at >= from => Some((at, cover)),
                Some(None) => None,
                _ => {
                    let h = g.find_noting(lowered, from, &mut self.skipped);
                    *slot = Some(h);
                    h
                }
            };
            if let Some(h) = hit {
                best = Some(best.map_or(h, |b| if h.0 < b.0 { h } else { b }));
            }
        }
        best.map(|(at, cover)| KeywordHit {
            at,
            decides: self.engine.prefilter.cover_decides[cover],
        })
    }
}

impl PrefilterSearcher {
    fn build(cover: &[&Vec<u8>]) -> Result<Self, aho_corasick::BuildError> {
        if !cover.is_empty() {
            let mut builder = aho_corasick::packed::Config::new()
                .match_kind(aho_corasick::packed::MatchKind::LeftmostFirst)
                .builder();
            builder.extend(cover.iter());
            if let Some(searcher) = builder.build() {
                return Ok(PrefilterSearcher::Packed(searcher));
            }
        }
        Ok(PrefilterSearcher::Automaton(
            AhoCorasickBuilder::new()
                .kind(Some(aho_corasick::AhoCorasickKind::DFA))
                .match_kind(MatchKind::LeftmostFirst)
                .build(cover)?,
        ))
    }
}

/// The keyword as it appears inside a JSON string written by Docker (`<` → `\u003c`, …), so that
/// the prefilter can run on raw json-file lines without decoding them.
fn json_escaped(keyword: &[u8], tab_as_unicode: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(keyword.len());
    for &b in keyword {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' if !tab_as_unicode => out.extend_from_slice(b"\\t"),
            b'<' | b'>' | b'&' => out.extend_from_slice(format!("\\u{:04x}", b).as_bytes()),
            0..=0x1f => out.extend_from_slice(format!("\\u{:04x}", b).as_bytes()),
            _ => out.push(b),
        }
    }
    out
}

/// The compiled detection engine. Cheap to share across threads (`&Engine` is `Sync`).
#[derive(Debug)]
pub struct Engine {
    rules: Vec<Rule>,
    prefilter: Prefilter,
    /// Every keyword in every form it is searched in (lowercase; plain and JSON-escaped).
    patterns: Vec<Vec<u8>>,
    /// Pattern index → the rules it is a keyword of.
    pattern_rules: Vec<Vec<usize>>,
    /// The longest of `patterns`.
    max_keyword_len: usize,
    unconditional: Vec<usize>,
    global: Allowlist,
    /// Public prefixes (4 bytes or more) of the format rules, longest first.
    format_prefixes: Vec<Vec<u8>>,
}

impl Engine {
    /// Does `secret` start with a format rule's public prefix? A value found by its context that
    /// does (`ANTHROPIC_API_KEY=sk-ant-api03-…` with the wrong length or ending) is that format's
    /// business: when the format rule did not match it, it is not a token of that format.
    fn format_prefix(&self, secret: &[u8]) -> bool {
        self.format_prefixes.iter().any(|p| secret.starts_with(p))
    }

    /// The visible start of a secret that `text` cuts off: a 16 KiB-split entry whose last part
    /// will never come (Docker deleted the file that held it, or the writer stopped). A rule's
    /// public prefix (`ghp_`, `sk-proj-`, …) at a token boundary, followed by token characters
    /// (`[A-Za-z0-9_-]`) that run to the very end of `text`, at least [`CUT_MIN_VISIBLE`] of them,
    /// random enough and not a placeholder or a mask, and not inside a match in `found`. The
    /// rule's regex cannot confirm it (its rest is missing), so the match is `context`
    /// confidence. `None` when nothing is cut.
    pub fn find_cut(&self, text: &[u8], found: &[Match]) -> Option<Match> {
        let is_token = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'-';
        // The run of token characters at the end, and a little before it for the prefix.
        let run = text.iter().rev().take_while(|&&b| is_token(b)).count();
        if run < CUT_MIN_VISIBLE {
            return None;
        }
        let from = text.len() - run;
        let look = from.saturating_sub(CUT_PREFIX_MAX);
        // Where a prefix can lie, with at least `CUT_MIN_VISIBLE` characters after it.
        let hay = &text[look..text.len() - CUT_MIN_VISIBLE];
        let mut best: Option<(usize, usize, usize)> = None; // (start, prefix len, rule)
        for (r, rule) in self.rules.iter().enumerate() {
            for p in rule.public_prefixes.iter().filter(|p| p.len() >= 3) {
                // Everything after the prefix is in the run; the byte before it is a boundary.
                let Some(at) = memchr::memmem::rfind_iter(hay, p)
                    .map(|i| look + i)
                    .find(|&at| at + p.len() >= from && (at == 0 || !text[at - 1].is_ascii_alphanumeric()))
                else {
                    continue;
                };
                let better = match best {
                    None => true,
                    Some((s, l, _)) => at < s || (at == s && p.len() > l),
                };
                if better {
                    best = Some((at, p.len(), r));
                }
            }
        }
        let (start, plen, r) = best?;
        let secret = &text[start..];
        let body = &secret[plen..];
        let rule = &self.rules[r];
        if found.iter().any(|m| m.secret.end > start)
            || shannon_entropy(body) < CUT_MIN_ENTROPY
            || placeholder::is_placeholder(secret, plen, rule.placeholders)
            || self.global.allows(secret, secret, text)
            || rule.allow.allows(secret, secret, text)
        {
            return None;
        }
        Some(Match {
            rule: r,
            secret: start..text.len(),
            whole: start..text.len(),
            confidence: Confidence::Context,
        })
    }

    /// The built-in rules, compiled.
    pub fn builtin() -> Self {
        EngineBuilder::with_builtin()
            .build()
            .expect("built-in rules compile (tested)")
    }

    /// The compiled rules.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// True when some rule runs on every text (a user rule without keywords).
    pub fn has_unconditional_rules(&self) -> bool {
        !self.unconditional.is_empty()
    }

    /// Offset of the first keyword in `bytes` at or after `from`, if any. Keywords are searched in
    /// their plain and their JSON-escaped forms, so this works on raw json-file lines as well as on
    /// decoded text. With unconditional rules, every position is a hit. For scanning many lines,
    /// lowercase the buffer once with [`lowercase_into`] and use [`Engine::next_keyword_lowered`].
    pub fn next_keyword(&self, bytes: &[u8], from: usize) -> Option<usize> {
        let mut lowered = Vec::with_capacity(bytes.len());
        lowercase_into(bytes, &mut lowered);
        self.next_keyword_lowered(&lowered, from)
    }

    /// [`Engine::next_keyword`] on bytes already passed through [`lowercase_into`].
    pub fn next_keyword_lowered(&self, lowered: &[u8], from: usize) -> Option<usize> {
        if !self.unconditional.is_empty() {
            return (from < lowered.len()).then_some(from);
        }
        if from >= lowered.len() {
            return None;
        }
        self.prefilter.find(lowered, from).map(|(at, _)| at)
    }

    /// A cursor for successive [`Engine::next_keyword_lowered`] queries over one buffer.
    pub fn keyword_cursor(&self) -> KeywordCursor<'_> {
        KeywordCursor {
            engine: self,
            next: vec![None; self.prefilter.groups.len()],
            skipped: Vec::new(),
            sorted: 0,
        }
    }

    /// Which searcher the raw prefilter uses (for benchmarks and diagnostics).
    pub fn prefilter_kind(&self) -> &'static str {
        let packed = |g: &PrefilterGroup| matches!(g.searcher, PrefilterSearcher::Packed(_));
        if self.prefilter.groups.iter().all(packed) {
            "teddy"
        } else if self.prefilter.groups.iter().any(packed) {
            "teddy+aho-corasick-dfa"
        } else {
            "aho-corasick-dfa"
        }
    }

    /// Every keyword occurrence in `lowered` (ASCII-lowercased), as (start, end, pattern index),
    /// in order of start, each once. Found with the prefilter's SIMD searchers: every keyword
    /// occurrence holds a cover pattern occurrence, and no two cover patterns of one group start
    /// at one position, so stepping one byte past each cover match visits them all; each is then
    /// checked against the keywords holding that cover pattern.
    /// Returns whether the prefilter passes the text: a keyword of a rule without a gate occurs
    /// outside a base64 run ([`Engine::next_keyword_lowered`] finds one), or a rule has no keywords.
    fn keyword_hits(
        &self,
        lowered: &[u8],
        zones: Option<&[Range<usize>]>,
        hits: &mut Vec<(usize, usize, usize)>,
    ) -> bool {
        hits.clear();
        let mut passes = !self.unconditional.is_empty();
        let whole = 0..lowered.len();
        for zone in zones.unwrap_or(std::slice::from_ref(&whole)) {
            let until = zone.end.min(lowered.len());
            for group in &self.prefilter.groups {
                let mut at = zone.start;
                while let Some((start, cover, inside_base64)) = group.find_any_before(lowered, at, until) {
                    passes |= !inside_base64;
                    for &(p, off) in &self.prefilter.cover_keywords[cover] {
                        let pattern = &self.patterns[p];
                        if let Some(ks) = start.checked_sub(off) {
                            if lowered.get(ks..ks + pattern.len()) == Some(&pattern[..]) {
                                hits.push((ks, ks + pattern.len(), p));
                            }
                        }
                    }
                    at = start + 1;
                }
            }
        }
        hits.sort_unstable();
        hits.dedup();
        passes
    }

    /// The longest keyword, in any form it is searched in.
    pub fn max_keyword_len(&self) -> usize {
        self.max_keyword_len
    }

    /// [`Engine::might_match`] on a lowercased line: the keyword prefilter's matches from `from` on,
    /// and the `requires` gate of the rules they may belong to.
    pub fn might_match_lowered(&self, lowered: &[u8], from: usize) -> bool {
        if !self.unconditional.is_empty() {
            return true;
        }
        // Every keyword occurrence contains a cover pattern occurrence, and no two cover patterns
        // of one group start at one position (none contains another), so stepping one byte past
        // each match visits every occurrence; its rules are all rules whose keyword contains that
        // pattern. The order of the groups does not matter here.
        for group in &self.prefilter.groups {
            let mut at = from;
            while let Some((start, cover)) = group.find(lowered, at) {
                if self.prefilter.cover_rules[cover]
                    .iter()
                    .any(|&r| self.rules[r].required_present(lowered))
                {
                    return true;
                }
                at = start + 1;
            }
        }
        false
    }

    /// Could `text` (decoded, or a raw json-file line: keywords are matched in escaped form too) hold a
    /// secret? True when a keyword occurs and the `requires` gate of a rule it may belong to passes.
    /// Much cheaper than decoding a line and calling [`Engine::find`].
    pub fn might_match(&self, text: &[u8]) -> bool {
        let mut lowered = Vec::with_capacity(text.len());
        lowercase_into(text, &mut lowered);
        self.might_match_lowered(&lowered, 0)
    }

    /// Find the secrets in `text`, in order of position, without overlaps.
    pub fn find(&self, text: &[u8], scratch: &mut Scratch, out: &mut Vec<Match>) {
        self.find_as(text, None, scratch, out, false);
    }

    /// [`Engine::find`], only when [`Engine::next_keyword`] finds a keyword in `text` (one pass of
    /// the keyword search instead of two).
    pub fn find_if_keyword(&self, text: &[u8], scratch: &mut Scratch, out: &mut Vec<Match>) {
        self.find_as(text, None, scratch, out, true);
    }

    /// [`Engine::find_if_keyword`] when every keyword in `text` lies inside one of `zones`
    /// (ascending, not overlapping): the keyword search reads only those. A caller that knows
    /// where keywords can be (the 16 KiB parts of an entry whose raw lines held one, and the
    /// joins between parts) saves a pass over the rest; a keyword outside the zones is missed.
    pub fn find_if_keyword_in(&self, text: &[u8], zones: &[Range<usize>], scratch: &mut Scratch, out: &mut Vec<Match>) {
        self.find_as(text, Some(zones), scratch, out, true);
    }

    fn find_as(
        &self,
        text: &[u8],
        zones: Option<&[Range<usize>]>,
        scratch: &mut Scratch,
        out: &mut Vec<Match>,
        gated: bool,
    ) {
        let Scratch {
            triggered,
            order,
            candidates,
            locs,
            windows,
            lowered,
            hits,
        } = scratch;
        triggered.clear();
        triggered.resize(self.rules.len(), false);
        if locs.len() != self.rules.len() {
            locs.clear();
            locs.resize_with(self.rules.len(), || None);
        }
        // Large texts (rejoined 16 KiB parts, long lines): each rule's regex runs only in windows
        // around its keywords, not over the whole text.
        let windowed = text.len() > WINDOW_MIN_TEXT;
        if windows.len() != self.rules.len() {
            windows.clear();
            windows.resize_with(self.rules.len(), Vec::new);
        }
        order.clear();
        for &r in &self.unconditional {
            triggered[r] = true;
            order.push(r);
        }
        lowercase_into(text, lowered);
        if !self.keyword_hits(lowered, zones, hits) && gated {
            return;
        }
        for &(start, end, p) in hits.iter() {
            for &r in &self.pattern_rules[p] {
                if !triggered[r] {
                    triggered[r] = true;
                    order.push(r);
                    windows[r].clear();
                }
                if let (true, Some(reach)) = (windowed, self.rules[r].reach) {
                    // A match within `reach` of the keyword lies inside this window.
                    let w = start.saturating_sub(reach)..(end + reach).min(text.len());
                    match windows[r].last_mut() {
                        Some(last) if w.start <= last.end => last.end = last.end.max(w.end),
                        _ => windows[r].push(w),
                    }
                }
            }
        }
        if order.is_empty() {
            return;
        }
        candidates.clear();
        for &r in order.iter() {
            let rule = &self.rules[r];
            if !rule.requires.is_empty() && !rule.required_present(lowered) {
                continue;
            }
            let loc = locs[r].get_or_insert_with(|| rule.regex.capture_locations());
            let before = candidates.len();
            let mut complete = true;
            if windowed && rule.reach.is_some() && !self.unconditional.contains(&r) {
                for w in windows[r].iter() {
                    let at_edge = |m: &regex::bytes::Match<'_>| {
                        (m.start() == w.start && w.start > 0) || (m.end() == w.end && w.end < text.len())
                    };
                    if !self.search(r, loc, text, w.clone(), candidates, at_edge) {
                        complete = false;
                        break;
                    }
                }
                if !complete {
                    // A match touched a window's edge: it may continue beyond it. Search it all.
                    candidates.truncate(before);
                }
            } else {
                complete = false;
            }
            if !complete {
                self.search(r, loc, text, 0..text.len(), candidates, |_| false);
            }
        }
        // Most specific first, then longest; keep what does not overlap something kept.
        candidates.sort_by(|a, b| {
            let pa = self.rules[a.rule].priority;
            let pb = self.rules[b.rule].priority;
            pb.cmp(&pa)
                .then((b.secret.len()).cmp(&a.secret.len()))
                .then(a.secret.start.cmp(&b.secret.start))
        });
        let first = out.len();
        for c in candidates.drain(..) {
            let overlaps = out[first..]
                .iter()
                .any(|k| k.secret.start < c.secret.end && c.secret.start < k.secret.end);
            if !overlaps {
                out.push(c);
            }
        }
        out[first..].sort_by_key(|m| m.secret.start);
    }

    /// Run rule `r` over `text[range]` (with the whole text as context), pushing confirmed matches.
    /// Returns false, having pushed nothing more, as soon as a match satisfies `stop`.
    fn search(
        &self,
        r: usize,
        loc: &mut CaptureLocations,
        text: &[u8],
        range: Range<usize>,
        candidates: &mut Vec<Match>,
        stop: impl Fn(&regex::bytes::Match<'_>) -> bool,
    ) -> bool {
        let rule = &self.rules[r];
        let hay = &text[..range.end];
        let mut at = range.start;
        while at <= hay.len() {
            let Some(whole) = rule.regex.captures_read_at(loc, hay, at) else {
                break;
            };
            if stop(&whole) {
                return false;
            }
            at = if whole.end() > whole.start() {
                whole.end()
            } else {
                whole.end() + 1
            };
            let Some((s, e)) = loc.get(rule.group) else {
                continue;
            };
            if s == e {
                continue;
            }
            let secret = &text[s..e];
            if let Some(min) = rule.entropy {
                if shannon_entropy(secret) < min {
                    continue;
                }
            }
            if let Some(v) = rule.validator {
                if !v.check(secret) {
                    continue;
                }
            }
            let checksum_ok = rule.checksum.is_some_and(|c| c.check(secret));
            // A token whose CRC32 holds is real, whatever it spells: a random GitHub token reads
            // `ghp_TOdo…` about once in 40 000 (seen in the stress benchmark), and a made-up one
            // passes a 32-bit checksum once in four billion. (Not so a structural check like `jwt`.)
            let proven = checksum_ok && rule.checksum.is_some_and(|c| c.is_digest());
            if (!proven && placeholder::is_placeholder(secret, rule.public_prefix(secret).len(), rule.placeholders))
                || (rule.placeholders == Strictness::Strict
                    && (placeholder::is_prose(&text[..s], secret, &text[e..])
                        || placeholder::is_key(&text[e..])
                        || placeholder::is_next_field(&text[..s], secret)))
                || placeholder::is_elided(&text[..s], secret, &text[e..])
                || (rule.confidence == Confidence::Context && self.format_prefix(secret))
                || (rule.confidence == Confidence::Format && placeholder::in_base64_run(&text[..s], &text[e..]))
            {
                continue;
            }
            let whole_bytes = &text[whole.range()];
            if rule.allow.allows(secret, whole_bytes, text) || self.global.allows(secret, whole_bytes, text) {
                continue;
            }
            let confidence = if checksum_ok {
                Confidence::Checksum
            } else {
                rule.confidence
            };
            candidates.push(Match {
                rule: r,
                secret: s..e,
                whole: whole.range(),
                confidence,
            });
        }
        true
    }

    /// Run every rule's examples and negative examples through this engine. Returns one message
    /// per failure (empty when all hold): an example must yield a match of its own rule, and a
    /// negative example must yield no match at all.
    pub fn check_examples(&self, specs: &RuleFile) -> Vec<String> {
        let mut failures = Vec::new();
        let mut scratch = Scratch::default();
        let mut out = Vec::new();
        for spec in &specs.rule {
            for (i, ex) in spec.examples.iter().enumerate() {
                out.clear();
                self.find(ex.as_bytes(), &mut scratch, &mut out);
                if !out.iter().any(|m| self.rules[m.rule].id == spec.id) {
                    let got: Vec<&str> = out.iter().map(|m| self.rules[m.rule].id.as_str()).collect();
                    failures.push(format!("rule `{}`: example #{i} not found (got {got:?})", spec.id));
                }
            }
            for (i, ex) in spec.negative_examples.iter().enumerate() {
                out.clear();
                self.find(ex.as_bytes(), &mut scratch, &mut out);
                if let Some(m) = out.first() {
                    failures.push(format!(
                        "rule `{}`: negative example #{i} matched rule `{}`",
                        spec.id, self.rules[m.rule].id
                    ));
                }
            }
        }
        failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine(toml: &str) -> Engine {
        EngineBuilder::empty()
            .with_rules(RuleFile::from_toml(toml, "test").unwrap())
            .build()
            .unwrap()
    }

    #[test]
    fn the_keyword_search_in_zones_reads_only_the_zones() {
        let e = Engine::builtin();
        let gh = format!("ghp_{}", "q8W3nZ0rT5vB1xK7mP4sD9fG2hJ6kLa7Qe9c");
        let text = format!("{} token {gh} {}", "x".repeat(4000), "y".repeat(4000));
        let at = text.find("ghp_").unwrap();
        let found = |zones: &[(usize, usize)]| {
            let zones: Vec<Range<usize>> = zones.iter().map(|&(s, e)| s..e).collect();
            let mut out = Vec::new();
            e.find_if_keyword_in(text.as_bytes(), &zones, &mut Scratch::default(), &mut out);
            out.iter().map(|m| e.rules()[m.rule].id.clone()).collect::<Vec<_>>()
        };
        let mut whole = Vec::new();
        e.find_if_keyword(text.as_bytes(), &mut Scratch::default(), &mut whole);
        assert_eq!(whole.len(), 1);
        assert_eq!(found(&[(0, text.len())]), ["github-pat"]);
        assert_eq!(found(&[(at - 10, at + 4)]), ["github-pat"]);
        // The keyword must lie whole inside a zone; outside every zone it is not searched for.
        assert!(found(&[(0, at + 3)]).is_empty());
        assert!(found(&[(0, 100), (at + 1, text.len())]).is_empty());
    }

    #[test]
    fn a_base64_only_keyword_after_an_escape_is_not_taken_for_part_of_a_base64_run() {
        let e = Engine::builtin();
        let at = |raw: &str| e.next_keyword_lowered(raw.to_ascii_lowercase().as_bytes(), 0);
        // In a run of base64 it is passed over...
        assert_eq!(at("x Qm9ic0tleXNBbGljZS9pAKIAQ3NCWV6BR4FSP7D4 y"), None);
        // ...but Docker's escapes put base64 letters before it on the raw line that the decoded
        // text does not have: a newline, a non-ASCII character.
        for raw in [
            r"GET ok\n/alice/bobkeys/AKIAQ3NCWV6BR4FSP7D4 done",
            r"caf\u00e9/alice/bobkeyAKIAQ3NCWV6BR4FSP7D4 done",
        ] {
            assert_eq!(at(raw), raw.find("AKIA"), "{raw}");
        }
    }

    fn ids(e: &Engine, text: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        e.find(text.as_bytes(), &mut Scratch::default(), &mut out);
        out.iter()
            .map(|m| (e.rules()[m.rule].id.clone(), text[m.secret.clone()].to_string()))
            .collect()
    }

    const TWO: &str = r#"
[[rule]]
id = "specific"
priority = 90
keywords = ["tok_"]
regex = '''(tok_[a-z0-9]{8})'''
[[rule]]
id = "generic"
priority = 10
keywords = ["token"]
regex = '''(?i)token\s*=\s*(?P<secret>[a-z0-9_]{8,})'''
entropy = 2.5
[allowlist]
stopwords = ["example"]
"#;

    #[test]
    fn prefilter_gates_regex_and_priority_resolves_overlap() {
        let e = engine(TWO);
        assert_eq!(
            ids(&e, "TOKEN=tok_a1b2c3d4"),
            vec![("specific".into(), "tok_a1b2c3d4".into())]
        );
        assert_eq!(
            ids(&e, "token = q8w7e6r5t4"),
            vec![("generic".into(), "q8w7e6r5t4".into())]
        );
        // low entropy
        assert!(ids(&e, "token=aaaaaaaaaa").is_empty());
        // global stopword
        assert!(ids(&e, "token=example123").is_empty());
        // no keyword, no regex run
        assert!(ids(&e, "tik_a1b2c3d4").is_empty());
    }

    #[test]
    fn keywords_found_in_escaped_and_plain_forms() {
        let e = engine(
            r#"[[rule]]
id = "amp"
keywords = ["a&b"]
regex = '''a&b=(\w+)'''
"#,
        );
        assert_eq!(e.next_keyword(br#"{"log":"x a\u0026b=1"}"#, 0), Some(10));
        assert_eq!(e.next_keyword(b"x A&B=1", 0), Some(2));
        assert_eq!(e.next_keyword(b"nothing", 0), None);
    }

    #[test]
    fn large_texts_are_matched_in_windows_without_losing_matches() {
        let e = Engine::builtin();
        let key = "sk-proj-Q3tX9vB2mK7pL4wR8nZ1yH6jF5dS0aG2cV7bN3mQ8xT4eW9uI1oP6lK2jH5gF8dS3aZ7xC4vB";
        let b64 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut x: u64 = 0x2545F4914F6CDD1D;
        let pem_body: String = (0..160)
            .map(|_| {
                let line: String = (0..64)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        b64[(x % 64) as usize] as char
                    })
                    .collect();
                line + "\n"
            })
            .collect();
        let filler = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk".repeat(400);
        let text = format!(
            "{filler} OPENAI_API_KEY={key} {filler}\n-----BEGIN RSA PRIVATE KEY-----\n{pem_body}-----END RSA PRIVATE KEY-----\n{filler}"
        );
        assert!(text.len() > 3 * WINDOW_MIN_TEXT && pem_body.len() > MAX_WINDOW_REACH);
        let mut out = Vec::new();
        e.find(text.as_bytes(), &mut Scratch::default(), &mut out);
        let found: Vec<(&str, usize)> = out
            .iter()
            .map(|m| (e.rules()[m.rule].id.as_str(), m.secret.len()))
            .collect();
        assert!(found.contains(&("openai-api-key", key.len())), "{found:?}");
        assert!(
            found
                .iter()
                .any(|(id, len)| *id == "private-key-pem" && *len > MAX_WINDOW_REACH),
            "{found:?}"
        );
        // Windows are an optimisation only: the same text in small and large form finds the same.
        let small = format!(" OPENAI_API_KEY={key} ");
        let mut small_out = Vec::new();
        e.find(small.as_bytes(), &mut Scratch::default(), &mut small_out);
        assert_eq!(small_out.len(), 1);
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn builtin_prefilter_uses_teddy() {
        let e = Engine::builtin();
        assert_eq!(e.prefilter_kind(), "teddy");
        // Built-in keywords: long ones (at most 64: one Fat Teddy pass), the rare-prefixed ones that
        // do not fit (a Slim pass: at most 32) and short ones (`sk-`, `://`; Slim). A keyword more
        // can cost a pass: measure (benches/e2e.py).
        assert_eq!(e.prefilter.groups.len(), 3);
        assert!(e.prefilter.groups[0].cover_index.len() <= TEDDY_MAX_PATTERNS);
        for g in &e.prefilter.groups[1..] {
            assert!(g.cover_index.len() <= 32, "{}", g.cover_index.len());
        }
    }

    #[test]
    fn keyword_cursor_agrees_with_stateless_search_across_groups() {
        let e = Engine::builtin();
        let text = b"x sk-a y https://h/ z AKIA token= w hf_q \"private_key\" sk-b gsk_ ://";
        let mut lowered = Vec::new();
        lowercase_into(text, &mut lowered);
        let mut stateless = Vec::new();
        let mut at = 0;
        while let Some(h) = e.next_keyword_lowered(&lowered, at) {
            stateless.push(h);
            at = h + 1;
        }
        assert!(stateless.len() >= 9, "{stateless:?}");
        let mut cursor = e.keyword_cursor();
        let mut with_cursor = Vec::new();
        let mut at = 0;
        while let Some(h) = cursor.next(&lowered, at) {
            with_cursor.push(h);
            at = h + 1;
        }
        assert_eq!(stateless, with_cursor);
        // Queries that skip ahead past remembered matches.
        let mut cursor = e.keyword_cursor();
        for from in [0, 5, 6, 30, 31, 60, text.len()] {
            assert_eq!(
                cursor.next(&lowered, from),
                e.next_keyword_lowered(&lowered, from),
                "from {from}"
            );
        }
    }

    #[test]
    fn a_secret_cut_off_at_the_end_is_found_by_its_prefix_as_far_as_it_is_visible() {
        let e = Engine::builtin();
        let cut = |text: &str| {
            let mut scratch = Scratch::default();
            let mut found = Vec::new();
            e.find(text.as_bytes(), &mut scratch, &mut found);
            e.find_cut(text.as_bytes(), &found)
                .map(|m| (e.rules()[m.rule].id.clone(), text[m.secret].to_string()))
        };
        let (id, visible) = cut("token=ghp_Zq3xT7wK9mB2vN5cR8yL").expect("cut off after 20 characters");
        assert_eq!(
            (id.as_str(), visible.as_str()),
            ("github-pat", "ghp_Zq3xT7wK9mB2vN5cR8yL")
        );
        assert_eq!(
            cut("key sk-proj-Ab3xT7wK9mB2vN5c").map(|(_, v)| v),
            Some("sk-proj-Ab3xT7wK9mB2vN5c".to_string()),
            "the longest prefix"
        );
        for (text, why) in [
            ("token=ghp_Zq3xT7wK9m", "fewer than 12 characters after the prefix"),
            ("token=ghp_Zq3xT7wK9mB2vN5cR8yL done", "not at the end"),
            ("the disk-Zq3xT7wK9mB2vN5cR8yL", "no token boundary before the prefix"),
            ("token=ghp_xxxxxxxxxxxxxxxxxxxxxxxx", "a placeholder"),
            ("token=ghp_aaaaaaaaaaaabbbbbbbbbbbb", "not random"),
            ("token=ghp_[github-pat:3fa2c1]**********", "already masked"),
            ("no prefix Zq3xT7wK9mB2vN5cR8yLZq3xT7wK9mB2vN5cR8yL", "no prefix"),
        ] {
            assert_eq!(cut(text), None, "{why}");
        }
        // A whole token that the rules confirm is theirs, not a cut.
        let body = "Zq3xT7wK9mB2vN5cR8yL4pF6hJ1dG0";
        let checksum = crate::redact::validate::base62(crc32fast::hash(body.as_bytes()) as u64, 6);
        let whole = format!("token=ghp_{body}{checksum}");
        assert_eq!(cut(&whole), None);
    }

    #[test]
    fn bad_rules_give_clear_errors() {
        let err = EngineBuilder::empty()
            .with_rules(RuleFile::from_toml("[[rule]]\nid='r'\nregex='(unclosed'\n", "t").unwrap())
            .build()
            .unwrap_err();
        assert!(err.to_string().starts_with("rule `r`: invalid regex"), "{err}");
        let err = EngineBuilder::empty()
            .with_rules(RuleFile::from_toml("[[rule]]\nid='r'\nregex='(a)'\nsecret_group='nope'\n", "t").unwrap())
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("not a named group"), "{err}");
        let err = EngineBuilder::with_builtin()
            .disable(["no-such-rule"])
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("no rule has this id"), "{err}");
    }

    #[test]
    fn every_builtin_rule_has_keywords_and_examples() {
        let specs = RuleFile::builtin();
        assert!(!specs.rule.is_empty());
        for r in &specs.rule {
            assert!(!r.keywords.is_empty(), "rule {} has no keywords", r.id);
            assert!(!r.examples.is_empty(), "rule {} has no examples", r.id);
            assert!(!r.description.is_empty(), "rule {} has no description", r.id);
        }
        let mut ids: Vec<&str> = specs.rule.iter().map(|r| r.id.as_str()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), specs.rule.len(), "duplicate rule ids");
    }

    #[test]
    fn every_builtin_rule_matches_its_examples_and_not_its_negatives() {
        let builder = EngineBuilder::with_builtin();
        let specs = builder.specs().clone();
        let engine = builder.build().unwrap();
        let failures = engine.check_examples(&specs);
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn pem_bodies_end_at_the_first_end_line_in_every_escaping() {
        let e = Engine::builtin();
        let body = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQD9mteUE99Dvaj";
        let tail = "Ruec/wOesUzsPNsScgAYC1ctS4egx9pneDY6uVqW4MWfv5n0n6ow+Pn18W6I8vFA==";
        for nl in ["\n", "\r\n", "\\n", "\\\\n", "\\r\\n"] {
            let key = format!("{body}{nl}{tail}");
            let text = format!("k=-----BEGIN RSA PRIVATE KEY-----{nl}{key}{nl}-----END RSA PRIVATE KEY-----{nl} next");
            assert_eq!(
                ids(&e, &text),
                vec![("private-key-pem".to_string(), key.clone())],
                "{nl:?}"
            );
            // Two keys in one text: two findings, neither spanning the text between them.
            let two = format!("{text} and {text}");
            assert_eq!(ids(&e, &two).len(), 2, "{nl:?}");
            // Truncated (no END): the body runs to the end of the text.
            let cut = format!("-----BEGIN PRIVATE KEY-----{nl}{key}");
            assert_eq!(
                ids(&e, &cut),
                vec![("private-key-pem".to_string(), key.clone())],
                "{nl:?}"
            );
        }
        // JSON-escaped slashes (\/) inside a service-account key.
        let key = format!("{body}\\/{tail}");
        let text = format!(r#"{{"private_key": "-----BEGIN PRIVATE KEY-----\n{key}\n-----END PRIVATE KEY-----\n"}}"#);
        assert_eq!(ids(&e, &text), vec![("gcp-service-account".to_string(), key)]);
    }
}
