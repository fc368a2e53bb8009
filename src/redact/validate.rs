//! Structural validators that confirm a regex match: checksums and encodings.
use base64::Engine as _;

/// A validator named in a rule's `validator` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validator {
    /// `github-crc32`: classic GitHub tokens (`ghp_`, `gho_`, `ghu_`, `ghs_`, `ghr_`) end in the
    /// base62 CRC32 of their 30 random characters.
    GithubCrc32,
    /// `jwt`: three base64url parts; header and payload decode to JSON objects, header has `alg`.
    Jwt,
    /// `basic-auth`: base64 that decodes to printable `user:password`.
    BasicAuth,
    /// `mixed-alnum`: has at least one digit and one letter (random tokens do; words and numbers don't).
    MixedAlnum,
    /// `upper-lower-digit`: has an uppercase letter, a lowercase letter and a digit (random base62 or
    /// base64 strings of 30+ characters do; hex digests, UUIDs, ULIDs and words don't).
    UpperLowerDigit,
    /// `upper-lower`: has an uppercase and a lowercase letter (random base64 does; hex digests don't).
    UpperLower,
    /// `mixed-chars`: looks machine-made: a letter and a digit, or upper- and lowercase letters and a
    /// symbol (a password like `OOiEgu%XOKLl~-G`); not a word, a number or a lowercase-hyphenated name.
    MixedChars,
    /// `discord-token`: three base64url parts, the first of which decodes to the bot's numeric
    /// (snowflake) id.
    DiscordToken,
    /// `gitlab-crc32`: a routable GitLab token (`glpat-<payload>[.01].<2><7>`) whose last 7
    /// characters are the base36 CRC32 of everything before them.
    GitlabCrc32,
    /// `base64-jwt`: base64 (standard or URL-safe) of a JWT (`ZXlK…` decodes to `eyJ….…`).
    Base64Jwt,
    /// `base64-private-key`: base64 of a PEM block whose header names a private key
    /// (`LS0tLS1CRUdJTi…` decodes to `-----BEGIN … PRIVATE KEY-----`), not a certificate or public key.
    Base64PrivateKey,
}

impl Validator {
    /// A checksum that a made-up value fails (a CRC32 of the token's own characters): one that
    /// holds proves the token real, whatever it spells (see the placeholder check in the engine).
    /// The structural checks (`jwt`, `mixed-alnum`, …) do not: a dummy passes them.
    pub fn is_digest(&self) -> bool {
        matches!(self, Validator::GithubCrc32 | Validator::GitlabCrc32)
    }

    /// Parse a validator name.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "github-crc32" => Validator::GithubCrc32,
            "jwt" => Validator::Jwt,
            "basic-auth" => Validator::BasicAuth,
            "mixed-alnum" => Validator::MixedAlnum,
            "upper-lower-digit" => Validator::UpperLowerDigit,
            "upper-lower" => Validator::UpperLower,
            "mixed-chars" => Validator::MixedChars,
            "discord-token" => Validator::DiscordToken,
            "gitlab-crc32" => Validator::GitlabCrc32,
            "base64-jwt" => Validator::Base64Jwt,
            "base64-private-key" => Validator::Base64PrivateKey,
            _ => return None,
        })
    }

    /// All validator names.
    pub const NAMES: &'static [&'static str] = &[
        "github-crc32",
        "jwt",
        "basic-auth",
        "mixed-alnum",
        "upper-lower-digit",
        "upper-lower",
        "mixed-chars",
        "discord-token",
        "gitlab-crc32",
        "base64-jwt",
        "base64-private-key",
    ];

    /// Does `secret` pass?
    pub fn check(self, secret: &[u8]) -> bool {
        match self {
            Validator::GithubCrc32 => github_crc32(secret),
            Validator::Jwt => jwt(secret),
            Validator::BasicAuth => basic_auth(secret),
            Validator::MixedAlnum => {
                secret.iter().any(u8::is_ascii_digit) && secret.iter().any(u8::is_ascii_alphabetic)
            }
            Validator::UpperLowerDigit => {
                secret.iter().any(u8::is_ascii_digit)
                    && secret.iter().any(u8::is_ascii_uppercase)
                    && secret.iter().any(u8::is_ascii_lowercase)
            }
            Validator::UpperLower => {
                secret.iter().any(u8::is_ascii_uppercase) && secret.iter().any(u8::is_ascii_lowercase)
            }
            Validator::MixedChars => {
                let has = |f: fn(&u8) -> bool| secret.iter().any(f);
                has(u8::is_ascii_alphabetic)
                    && (has(u8::is_ascii_digit)
                        || (has(u8::is_ascii_uppercase)
                            && has(u8::is_ascii_lowercase)
                            && has(u8::is_ascii_punctuation)))
            }
            Validator::DiscordToken => discord_token(secret),
            Validator::GitlabCrc32 => gitlab_crc32(secret),
            Validator::Base64Jwt => base64_prefix(secret, 96)
                .is_some_and(|d| d.starts_with(b"eyJ") && d.contains(&b'.') && d.iter().all(u8::is_ascii_graphic)),
            Validator::Base64PrivateKey => base64_prefix(secret, 96).is_some_and(|d| {
                d.starts_with(b"-----BEGIN ") && {
                    let header = d[11..].split(|&b| b == b'-').next().unwrap_or_default();
                    header.ends_with(b"PRIVATE KEY") || header.ends_with(b"PRIVATE KEY BLOCK")
                }
            }),
        }
    }
}

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Base62 encoding of `n`, left-padded with `0` to `width`.
pub fn base62(mut n: u64, width: usize) -> String {
    let mut out = Vec::new();
    while n > 0 {
        out.push(BASE62[(n % 62) as usize]);
        n /= 62;
    }
    while out.len() < width {
        out.push(b'0');
    }
    out.reverse();
    String::from_utf8(out).expect("ascii")
}

fn github_crc32(secret: &[u8]) -> bool {
    // prefix (4 bytes) + 30 random + 6 checksum
    if secret.len() != 40 {
        return false;
    }
    let body = &secret[4..34];
    let check = &secret[34..];
    base62(crc32fast::hash(body) as u64, 6).as_bytes() == check
}

fn gitlab_crc32(secret: &[u8]) -> bool {
    // …<payload>.<2 base36 length><7 base36 CRC32 of all before>
    if secret.len() < 10 || secret[secret.len() - 10] != b'.' {
        return false;
    }
    let (head, crc) = secret.split_at(secret.len() - 7);
    let Ok(crc) = std::str::from_utf8(crc) else {
        return false;
    };
    u32::from_str_radix(crc, 36).is_ok_and(|c| c == crc32fast::hash(head))
}

/// Decode the first `max` characters (rounded down to whole 4-character groups) of base64 text,
/// standard or URL-safe alphabet.
fn base64_prefix(secret: &[u8], max: usize) -> Option<Vec<u8>> {
    let n = secret.len().min(max) / 4 * 4;
    let part = &secret[..n];
    if part.iter().any(|&b| b == b'-' || b == b'_') {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).ok()
    } else {
        base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(
                part.strip_suffix(b"==")
                    .or_else(|| part.strip_suffix(b"="))
                    .unwrap_or(part),
            )
            .ok()
    }
}

fn b64url_json_object(part: &[u8]) -> Option<serde_json::Map<String, serde_json::Value>> {
    let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part.strip_suffix(b"=").unwrap_or(part))
        .ok()?;
    match serde_json::from_slice(&decoded).ok()? {
        serde_json::Value::Object(m) => Some(m),
        _ => None,
    }
}

fn jwt(secret: &[u8]) -> bool {
    let mut parts = secret.split(|&b| b == b'.');
    let (Some(h), Some(p)) = (parts.next(), parts.next()) else {
        return false;
    };
    match b64url_json_object(h) {
        Some(header) if header.contains_key("alg") => b64url_json_object(p).is_some(),
        _ => false,
    }
}

fn basic_auth(secret: &[u8]) -> bool {
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(secret) else {
        return false;
    };
    let Some(colon) = decoded.iter().position(|&b| b == b':') else {
        return false;
    };
    colon > 0 && decoded.len() > colon + 1 && decoded.iter().all(|b| (0x20..0x7f).contains(b))
}

fn discord_token(secret: &[u8]) -> bool {
    let mut parts = secret.split(|&b| b == b'.');
    let (Some(id), Some(_), Some(_), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let id = id.strip_suffix(b"==").or_else(|| id.strip_suffix(b"=")).unwrap_or(id);
    let Ok(decoded) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(id) else {
        return false;
    };
    // A snowflake: 17 to 20 decimal digits, no leading zero.
    (17..=20).contains(&decoded.len()) && decoded[0] != b'0' && decoded.iter().all(u8::is_ascii_digit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn github_token(prefix: &str, body: &str) -> String {
        format!("{prefix}{body}{}", base62(crc32fast::hash(body.as_bytes()) as u64, 6))
    }

    #[test]
    fn github_checksum() {
        let t = github_token("ghp_", "aBcDeFgHiJkLmNoPqRsTuVwXyZ0123");
        assert!(Validator::GithubCrc32.check(t.as_bytes()));
        let mut bad = t.into_bytes();
        bad[10] ^= 1;
        assert!(!Validator::GithubCrc32.check(&bad));
    }

    #[test]
    fn jwt_structure() {
        let ok = b"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
        assert!(Validator::Jwt.check(ok));
        assert!(!Validator::Jwt.check(b"eyJub3QiOiJqd3QifQ.eyJ4IjoxfQ.sig"));
        assert!(!Validator::Jwt.check(b"abc.def.ghi"));
    }

    #[test]
    fn upper_lower_digit() {
        assert!(Validator::UpperLowerDigit.check(b"4OoleNOAdOXbjRRt3BgAQMJC0Zvt7Y2f"));
        assert!(!Validator::UpperLowerDigit.check(b"237f92fda66ab127e725ee89e3a3954f"));
        assert!(!Validator::UpperLowerDigit.check(b"01JD2X4K9QZ7M3N5P8R0T2V4W6"));
        assert!(!Validator::UpperLowerDigit.check(b"CorrectHorseBatteryStaple"));
        assert_eq!(
            Validator::from_name("upper-lower-digit"),
            Some(Validator::UpperLowerDigit)
        );
    }

    #[test]
    fn mixed_chars() {
        assert!(Validator::MixedChars.check(b"3Lc0FHsGuy5LOT6vEkibDp58"));
        assert!(Validator::MixedChars.check(b"OOiEguEutFm%XOKLl~-G"));
        assert!(!Validator::MixedChars.check(b"your-api-key-here"));
        assert!(!Validator::MixedChars.check(b"CorrectHorseBatteryStaple"));
        assert!(!Validator::MixedChars.check(b"12345678"));
        assert_eq!(Validator::from_name("mixed-chars"), Some(Validator::MixedChars));
    }

    #[test]
    fn discord_token_id_part() {
        // base64("115278440094376474") . 6 . 27+
        let ok = b"MTE1Mjc4NDQwMDk0Mzc2NDc0.GZ-a1b.0123456789abcdefghijABCDEFGHIJ_-x";
        assert!(Validator::DiscordToken.check(ok));
        // base64("34abcdefghijklmnop"): not a numeric id
        assert!(!Validator::DiscordToken.check(b"MzRhYmNkZWZnaGlqa2xtbm9w.GZ-a1b.0123456789abcdefghijABCDEFGHIJ_-x"));
        assert!(!Validator::DiscordToken.check(b"MTE1Mjc4NDQwMDk0Mzc2NDc0.GZ-a1b"));
        assert!(!Validator::DiscordToken.check(b"!!!.a.b"));
        assert_eq!(Validator::from_name("discord-token"), Some(Validator::DiscordToken));
    }

    #[test]
    fn gitlab_routable_checksum() {
        // <prefix><payload>.01.<2 base36 length><7 base36 CRC32 of all before>
        let head = "glpat-Yzoxcm86YWJjZAp1OmRlZmdoAcw4XvT1kQ2Zl0Q8.01.1i";
        let crc = crc32fast::hash(head.as_bytes());
        let mut b36 = String::new();
        let mut n = crc as u64;
        for _ in 0..7 {
            b36.insert(0, char::from_digit((n % 36) as u32, 36).unwrap());
            n /= 36;
        }
        let ok = format!("{head}{b36}");
        assert!(Validator::GitlabCrc32.check(ok.as_bytes()));
        let mut bad = ok.into_bytes();
        let last = bad.len() - 1;
        bad[last] = if bad[last] == b'0' { b'1' } else { b'0' };
        assert!(!Validator::GitlabCrc32.check(&bad));
        assert!(!Validator::GitlabCrc32.check(b"glpat-aBcDeFgHiJkLmNoPqRsT"));
    }

    #[test]
    fn base64_wrapped() {
        use base64::Engine as _;
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
        assert!(Validator::Base64Jwt.check(b64(jwt).as_bytes()));
        assert!(!Validator::Base64Jwt.check(b64("eyJ hello world, not a token at all").as_bytes()));
        let key = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAq8Vn3Lp0Zr7Xs2Wd5Fh9Jt1\n";
        assert!(Validator::Base64PrivateKey.check(b64(key).as_bytes()));
        let cert = "-----BEGIN CERTIFICATE-----\nMIIDdzCCAl+gAwIBAgIEAgAAuTANBgkqhkiG9w0BAQUF\n";
        assert!(!Validator::Base64PrivateKey.check(b64(cert).as_bytes()));
        let public = "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA\n";
        assert!(!Validator::Base64PrivateKey.check(b64(public).as_bytes()));
    }

    #[test]
    fn basic_auth_decodes() {
        assert!(Validator::BasicAuth.check(b"YWRtaW46czNjcjN0UGFzcw=="));
        assert!(!Validator::BasicAuth.check(b"bm9jb2xvbg=="));
        assert!(!Validator::BasicAuth.check(b"!!!"));
    }
}
