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
    /// `mixed-chars`: looks machine-made: a letter and a digit, or upper- and lowercase letters and a
    /// symbol (a password like `OOiEgu%XOKLl~-G`); not a word, a number or a lowercase-hyphenated name.
    MixedChars,
    /// `discord-token`: three base64url parts, the first of which decodes to the bot's numeric
    /// (snowflake) id.
    DiscordToken,
}

impl Validator {
    /// Parse a validator name.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "github-crc32" => Validator::GithubCrc32,
            "jwt" => Validator::Jwt,
            "basic-auth" => Validator::BasicAuth,
            "mixed-alnum" => Validator::MixedAlnum,
            "upper-lower-digit" => Validator::UpperLowerDigit,
            "mixed-chars" => Validator::MixedChars,
            "discord-token" => Validator::DiscordToken,
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
        "mixed-chars",
        "discord-token",
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
            Validator::MixedChars => {
                let has = |f: fn(&u8) -> bool| secret.iter().any(f);
                has(u8::is_ascii_alphabetic)
                    && (has(u8::is_ascii_digit)
                        || (has(u8::is_ascii_uppercase)
                            && has(u8::is_ascii_lowercase)
                            && has(u8::is_ascii_punctuation)))
            }
            Validator::DiscordToken => discord_token(secret),
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
    fn basic_auth_decodes() {
        assert!(Validator::BasicAuth.check(b"YWRtaW46czNjcjN0UGFzcw=="));
        assert!(!Validator::BasicAuth.check(b"bm9jb2xvbg=="));
        assert!(!Validator::BasicAuth.check(b"!!!"));
    }
}
