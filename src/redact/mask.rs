//! The masking format: same length as the raw bytes it replaces, valid inside a JSON string.
//!
//! A mask keeps the rule's public prefix readable (`ghp_`, `sk-proj-`, …), then carries a tag
//! `[rule-id:fp6]` (rule and the first 6 hex digits of the fingerprint) when there is room, or `[fp6]`,
//! and pads the rest with `*`. Every byte is printable ASCII other than `"` and `\`, so a masked JSON
//! string stays valid, and every mask of 2 bytes or more ends in `**`, which the engine's global
//! allowlist treats as already masked, so a masked file scans clean.
//!
//! Examples (40 bytes): `ghp_[github-pat:3fa2c1]****************`;
//! 12 bytes: `[3fa2c1]****`; 5 bytes: `*****`.

/// Build the mask for a span of `len` raw bytes.
/// `prefix` is the public prefix to keep (ignored when it leaves fewer than 4 bytes to mask).
pub fn mask_bytes(rule_id: &str, fingerprint: &str, prefix: &[u8], len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    if !prefix.is_empty() && prefix.len() + 4 <= len && prefix.iter().all(|&b| is_mask_safe(b)) {
        out.extend_from_slice(prefix);
    }
    let room = len - out.len();
    let fp6 = &fingerprint[..fingerprint.len().min(6)];
    let long_tag = format!("[{}:{fp6}]", sanitize(rule_id));
    let short_tag = format!("[{fp6}]");
    if room >= long_tag.len() + 2 {
        out.extend_from_slice(long_tag.as_bytes());
    } else if room >= short_tag.len() + 2 {
        out.extend_from_slice(short_tag.as_bytes());
    }
    out.resize(len, b'*');
    out
}

/// A short preview for reports: the public prefix, then `*`s, then the length. Reveals nothing else.
pub fn preview(prefix: &[u8], secret_len: usize) -> String {
    let keep = if prefix.len() + 4 <= secret_len {
        prefix
    } else {
        &[][..]
    };
    let stars = (secret_len - keep.len()).min(8);
    format!(
        "{}{}… ({secret_len} chars)",
        String::from_utf8_lossy(keep),
        "*".repeat(stars)
    )
}

/// Printable ASCII other than `"` and `\`.
pub fn is_mask_safe(b: u8) -> bool {
    (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\'
}

fn sanitize(id: &str) -> String {
    id.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.' {
                b as char
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FP: &str = "3fa2c1d4e5f60718293a4b5c6d7e8f90112233445566778899aabbccddeeff00";

    #[test]
    fn formats() {
        let m = mask_bytes("github-pat", FP, b"ghp_", 40);
        assert_eq!(m, b"ghp_[github-pat:3fa2c1]*****************".to_vec());
        assert_eq!(mask_bytes("github-pat", FP, b"", 12), b"[3fa2c1]****".to_vec());
        assert_eq!(mask_bytes("x", FP, b"sk-", 5), b"*****".to_vec());
        assert_eq!(mask_bytes("r", FP, b"", 0), b"".to_vec());
        for len in 0..200 {
            let m = mask_bytes("some rule\"id", FP, b"sk-proj-", len);
            assert_eq!(m.len(), len);
            assert!(m.iter().all(|&b| is_mask_safe(b)));
            if len >= 2 {
                assert!(m.ends_with(b"**"), "{len}");
            }
        }
    }

    #[test]
    fn preview_reveals_only_prefix() {
        assert_eq!(preview(b"ghp_", 40), "ghp_********… (40 chars)");
        assert_eq!(preview(b"sk-", 5), "*****… (5 chars)");
    }
}
