//! The detection engine: pure, no I/O. Bytes in, matches out.
//!
//! Design:
//! - Rules are data ([`rules::RuleSpec`], TOML). The built-in set is embedded in the binary
//!   (`src/redact/builtin.toml`); users add rules in the same schema or load a gitleaks config.
//! - [`Engine`] runs a case-insensitive Aho-Corasick automaton over all rule keywords; only the rules
//!   whose keywords occur in a text run their regex. A regex match is then confirmed by its secret group,
//!   minimum entropy, validator (checksums, structure) and allowlists, and overlapping matches of
//!   different rules are resolved in favour of the most specific rule (highest priority).
//! - [`mask`] defines the same-length masking format; [`fingerprint`] the keyed fingerprint.
//!   Neither the engine nor anything it returns ever formats a secret into a message.
pub mod engine;
pub mod finding;
pub mod fingerprint;
pub mod mask;
pub mod placeholder;
pub mod rules;
pub mod validate;

pub use engine::{Engine, EngineBuilder, KeywordCursor, KeywordHit, Match, Scratch};
pub use finding::Finding;
pub use fingerprint::FingerprintKey;
pub use rules::{Confidence, RuleFile, RuleSpec, Severity};

/// Shannon entropy of a byte string, in bits per byte.
pub fn shannon_entropy(bytes: &[u8]) -> f64 {
    if bytes.is_empty() {
        return 0.0;
    }
    let mut counts = [0u32; 256];
    for &b in bytes {
        counts[b as usize] += 1;
    }
    let n = bytes.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / n;
            -p * p.log2()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::shannon_entropy;

    #[test]
    fn entropy_values() {
        assert_eq!(shannon_entropy(b""), 0.0);
        assert_eq!(shannon_entropy(b"aaaa"), 0.0);
        assert!((shannon_entropy(b"abcd") - 2.0).abs() < 1e-9);
        assert!((shannon_entropy(b"0123456789abcdef") - 4.0).abs() < 1e-9);
    }
}
