//! Values that are not secrets although a rule matched them: placeholders and fakes (`xxxx`,
//! `changeme`, `your-api-key-here`, `AIzaaaaa…`, `abcdef…`), references to a secret kept elsewhere
//! (`${VAR}`, `process.env.X`, `/run/secrets/x`, `vault:…`, `arn:…`) and status words (`true`,
//! `required`, `none`).
//!
//! Two strengths, chosen per rule (`placeholders` in the rule file):
//! - [`Strictness::Loose`], for tokens with a distinctive format (`ghp_…`, `sk-ant-…`): only what a
//!   random token cannot look like by chance. The body (the secret without its public prefix) is
//!   fake when one character makes up 40% of it, when it holds a long run of one character or an
//!   ascending run (`abcdef`, `12345678`), or when one of its *segments* is a fake word. Segments are
//!   split at separators, at lower→upper case changes and at letter↔digit changes, so `-test-`,
//!   `…KeyHere`, `7EXAMPLE` count but `…atTeStq…` in random text does not.
//! - [`Strictness::Strict`], for values found by their context (a password field, an `…_API_KEY=`
//!   name): also a fake word *anywhere* in the value, whole-value status words, references and
//!   identifier-like names (`openclaw-db-password`). A password rule masks `hunter2` whatever its
//!   entropy, so this is what keeps it from masking `changeme` or `${DB_PASSWORD}`.
//!
//! The checks are pure functions of the value's bytes; none formats the value into anything.

/// How hard to look for placeholders in a matched value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strictness {
    /// No check (PEM bodies and other long binary encodings, where runs occur naturally).
    Off,
    /// Tokens with a distinctive format (default).
    #[default]
    Loose,
    /// Values found by their context.
    Strict,
}

impl Strictness {
    /// Parse a rule file's `placeholders` value.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "off" => Strictness::Off,
            "loose" => Strictness::Loose,
            "strict" => Strictness::Strict,
            _ => return None,
        })
    }
}

/// Words that placeholders and documentation fakes are made of (lowercase).
const FAKE_WORDS: &[&[u8]] = &[
    b"example",
    b"examples",
    b"sample",
    b"dummy",
    b"fake",
    b"placeholder",
    b"test",
    b"testing",
    b"changeme",
    b"change",
    b"your",
    b"yours",
    b"insert",
    b"replace",
    b"redacted",
    b"redact",
    b"masked",
    b"mock",
    b"demo",
    b"todo",
    b"fixme",
    b"here",
    b"random",
    b"randomstring",
    b"notset",
    b"unset",
    b"xxx",
    b"xxxx",
];

/// Substrings that make a context-found value a placeholder wherever they occur (lowercase).
const FAKE_SUBSTRINGS: &[&[u8]] = &[
    b"example",
    b"sample",
    b"dummy",
    b"fake",
    b"placeholder",
    b"test",
    b"changeme",
    b"change_me",
    b"change-me",
    b"your_",
    b"your-",
    b"yourkey",
    b"yourtoken",
    b"yourpass",
    b"yoursecret",
    b"insert",
    b"replace",
    b"redacted",
    b"notset",
    b"not-set",
    b"not_set",
    b"xxxx",
    b"mock",
    b"todo",
    b"fixme",
    b"randomstring",
];

/// Whole values that are words about a secret, not a secret (lowercase).
const STATUS_WORDS: &[&[u8]] = &[
    b"true",
    b"false",
    b"null",
    b"nil",
    b"none",
    b"undefined",
    b"empty",
    b"required",
    b"optional",
    b"invalid",
    b"missing",
    b"hidden",
    b"set",
    b"unset",
    b"ok",
    b"yes",
    b"no",
    b"on",
    b"off",
    b"enabled",
    b"disabled",
    b"default",
    b"prompt",
    b"stdin",
    b"secret",
    b"secrets",
    b"password",
    b"passwd",
    b"pass",
    b"token",
    b"apikey",
    b"api_key",
    b"api-key",
    b"string",
    b"value",
    b"changeit",
];

/// Segment words that make a lowercase dotted/dashed name an identifier of a secret, not a secret.
const NAMING_WORDS: &[&[u8]] = &[
    b"key",
    b"keys",
    b"token",
    b"tokens",
    b"secret",
    b"secrets",
    b"password",
    b"passwd",
    b"pass",
    b"creds",
    b"credentials",
    b"credential",
    b"api",
    b"auth",
    b"env",
];

/// References to a secret kept elsewhere: the value starts with one of these (lowercase).
const REFERENCE_PREFIXES: &[&[u8]] = &[
    b"process.env",
    b"os.environ",
    b"os.getenv",
    b"env.",
    b"env[",
    b"env(",
    b"system.getenv",
    b"getenv(",
    b"secretref",
    b"secretkeyref",
    b"valuefrom",
    b"!env",
    b"file:",
    b"vault:",
    b"arn:",
    b"op://",
    b"secret/data/",
    b"kv/",
    b"projects/",
    b"akv://",
    b"sm://",
    b"ssm:",
    b"./",
    b"~/",
    b"classpath:",
    b"config.",
    b"settings.",
    b"secrets.",
    b"params.",
    b"self.",
    b"this.",
    b"env:",
    b"fd:",
    b"stdin",
];

/// Is `value` a placeholder, fake, reference or status word at this strictness? `prefix_len`
/// bytes at the start (the rule's public prefix) are not looked at.
pub fn is_placeholder(value: &[u8], prefix_len: usize, strictness: Strictness) -> bool {
    let body = &value[prefix_len.min(value.len())..];
    match strictness {
        Strictness::Off => false,
        Strictness::Loose => looks_fake(body),
        Strictness::Strict => looks_fake(body) || strict_only(body),
    }
}

/// A lowercase word after a colon or a blank and followed by a blank and another lowercase word:
/// prose after a password-like name (`invalid password: expected at least 12 characters`), not a
/// value. After `=` it is a value (`db_password=monkey latency=12ms`).
pub fn is_prose(before: &[u8], value: &[u8], after: &[u8]) -> bool {
    let assigned = before
        .iter()
        .rev()
        .find(|&&b| !matches!(b, b' ' | b'"' | b'\'' | b'\\'))
        == Some(&b'=');
    !assigned && value.iter().all(u8::is_ascii_lowercase) && matches!(after, [b' ', c, ..] if c.is_ascii_lowercase())
}

/// The value is already masked or shortened for display: it touches or holds an ellipsis (`...`,
/// `…` or its JSON escape `\u2026`: `sk-proj-abcd...wxyz`), it is followed by a mask's stars
/// (`ghp_[github-pat:3fa2c1]****`), or it is a bracketed marker (`[FILTERED]`).
pub fn is_elided(before: &[u8], value: &[u8], after: &[u8]) -> bool {
    const MARKS: [&[u8]; 3] = [b"...", "\u{2026}".as_bytes(), b"\\u2026"];
    MARKS
        .iter()
        .any(|m| after.starts_with(m) || before.ends_with(m) || memchr::memmem::find(value, m).is_some())
        || after.starts_with(b"]*")
        || after.starts_with(b"**")
        || (before.ends_with(b"[") && after.starts_with(b"]") && is_marker_word(value))
}

/// A bracketed marker's word (`FILTERED`, `hidden`, `secure value`): letters, `_`, `-` and blanks only.
/// A token in brackets (`[ghp_…]`, a Go slice or a Markdown link) has digits and is not one.
fn is_marker_word(value: &[u8]) -> bool {
    value
        .iter()
        .all(|&b| b.is_ascii_alphabetic() || matches!(b, b'_' | b'-' | b' '))
}

/// The "value" is the next field of a dump whose own value is empty (`password= user=app`,
/// `Password: SSLMode:disable}`): a name, then `=` or `:`, after a blank.
pub fn is_next_field(before: &[u8], value: &[u8]) -> bool {
    let after_blank = matches!(before.last(), Some(b' ' | b'\t'));
    let name_len = value
        .iter()
        .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        .count();
    after_blank
        && name_len > 0
        && value[0].is_ascii_alphabetic()
        && matches!(value.get(name_len), Some(b'=' | b':'))
        && value.get(name_len + 1).is_some_and(|&b| b != b'=' && b != b':')
}

/// The match sits inside a run of base64 characters (`A-Za-z0-9+/=`): 8 or more on each side and 32
/// or more in all. A piece of an image or another payload that spells a token's shape by chance; a
/// URL path (`/v1/keys/AIza…/rotate`) or a key id glued to its secret (`AKIA…/wJalr…`) is not.
pub fn in_base64_run(before: &[u8], after: &[u8]) -> bool {
    let b64 = |b: &&u8| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=');
    let left = before.iter().rev().take(64).take_while(b64).count();
    let right = after.iter().take(64).take_while(b64).count();
    left >= 8 && right >= 8 && left + right >= 32
}

/// The value is followed by a quote and a colon: it is a JSON or YAML key (`"password":…`), and
/// what a context rule took for an assignment was the end of the previous value.
pub fn is_key(after: &[u8]) -> bool {
    let rest = after
        .iter()
        .position(|&b| b != b'\\')
        .map_or(&after[after.len()..], |i| &after[i..]);
    matches!(rest, [b'"' | b'\'', b':', ..])
}

fn looks_fake(body: &[u8]) -> bool {
    if body.is_empty() {
        return false;
    }
    dominant_char(body) || long_run(body) || ascending_run(body) || fake_segment(body)
}

fn strict_only(v: &[u8]) -> bool {
    static SUBSTRINGS: std::sync::OnceLock<aho_corasick::AhoCorasick> = std::sync::OnceLock::new();
    let substrings = SUBSTRINGS.get_or_init(|| {
        aho_corasick::AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .build(FAKE_SUBSTRINGS)
            .expect("a handful of literals")
    });
    let lower = v.to_ascii_lowercase();
    STATUS_WORDS.contains(&lower.as_slice())
        || substrings.is_match(&lower)
        || lower.ends_with(b"here")
        || is_reference(v, &lower)
        || names_a_secret(&lower)
}

/// One character is at least 40% of a body of 8 or more bytes (`AIzaaaaa…`, `x-x-x-x`).
fn dominant_char(body: &[u8]) -> bool {
    if body.len() < 8 {
        return false;
    }
    let mut counts = [0u32; 256];
    let mut max = 0;
    for &b in body {
        let c = &mut counts[b.to_ascii_lowercase() as usize];
        *c += 1;
        max = max.max(*c);
    }
    max as usize * 5 >= body.len() * 2
}

/// A run of one character: 6 or more in a body of up to 100 bytes, 16 or more in a longer one.
fn long_run(body: &[u8]) -> bool {
    let need = if body.len() <= 100 { 6 } else { 16 };
    run_reaches(body, |a, b| (a == b).then_some(need))
}

/// An ascending run of letters (6: `abcdef`) or digits (8: `12345678`); random tokens hold one
/// about once in a million.
fn ascending_run(body: &[u8]) -> bool {
    run_reaches(body, |a, b| {
        let (a, b) = (a.to_ascii_lowercase(), b.to_ascii_lowercase());
        let same_class =
            (a.is_ascii_lowercase() && b.is_ascii_lowercase()) || (a.is_ascii_digit() && b.is_ascii_digit());
        (same_class && b == a + 1).then_some(if a.is_ascii_digit() { 8 } else { 6 })
    })
}

/// Does a run of neighbours that `step` links grow as long as `step` asks? `step(a, b)` returns the
/// length a run must reach when `b` continues a run ending in `a`, or `None` when it breaks it.
fn run_reaches(body: &[u8], step: impl Fn(u8, u8) -> Option<usize>) -> bool {
    let mut run = 1;
    for w in body.windows(2) {
        match step(w[0], w[1]) {
            Some(need) => {
                run += 1;
                if run >= need {
                    return true;
                }
            }
            None => run = 1,
        }
    }
    false
}

/// A segment of the body is a fake word (of 4 letters: at the start or the end of the body).
/// Segments end at bytes that are not letters or digits, at a lowercase letter followed by an
/// uppercase one, and where letters and digits meet.
fn fake_segment(body: &[u8]) -> bool {
    let mut start = 0;
    for i in 0..=body.len() {
        let boundary = i == body.len() || {
            let b = body[i];
            !b.is_ascii_alphanumeric()
                || (i > start && {
                    let p = body[i - 1];
                    (p.is_ascii_lowercase() && b.is_ascii_uppercase())
                        || (p.is_ascii_alphabetic() != b.is_ascii_alphabetic())
                })
        };
        if boundary {
            if i > start {
                let seg = &body[start..i];
                // A word of 4 letters turns up as a segment of random text about once in 10^5
                // tokens: it counts only where a fake is written, at the start or the end.
                let at_edge = start == 0 || i == body.len();
                if (seg.len() >= 5 || at_edge) && FAKE_WORDS.iter().any(|w| w.eq_ignore_ascii_case(seg)) {
                    return true;
                }
            }
            start = if i < body.len() && !body[i].is_ascii_alphanumeric() {
                i + 1
            } else {
                i
            };
        }
    }
    false
}

/// `${X}`, `$X`, `$(cmd)`, `%X%`, `%s`, `{{ x }}`, `{0}`, `<x>`, `[x]`, `@X@`, `:bind`, a call, an
/// absolute path, or one of [`REFERENCE_PREFIXES`].
fn is_reference(v: &[u8], lower: &[u8]) -> bool {
    let (first, last) = (v[0], v[v.len() - 1]);
    matches!(first, b'$' | b'{' | b'<' | b'[' | b'(' | b'\\')
        || (first == b'/' && looks_like_path(v))
        || v.starts_with(b"#{")
        || (first == b'%' && (last == b'%' || v.len() <= 3))
        || (first == b'@' && last == b'@' && v.len() > 2)
        || (first == b':' && v.len() > 1 && v[1].is_ascii_alphabetic())
        || memchr::memmem::find(v, b"{{").is_some()
        || memchr::memmem::find(v, b"${").is_some()
        || (v.len() > 2 && v[1] == b':' && v[0].is_ascii_alphabetic() && v[2] == b'\\')
        || REFERENCE_PREFIXES.iter().any(|p| lower.starts_with(p))
        || (memchr::memchr(b'(', v).is_some() && last == b')')
}

/// A path (`/run/secrets/db`, `/etc/app/key.pem`), not a base64 value that starts with `/` (an AWS
/// secret key `/mB3xwGczre…`): no part between slashes is a random-looking run (12 or more bytes
/// mixing upper- and lowercase letters and digits).
fn looks_like_path(v: &[u8]) -> bool {
    v.split(|&b| b == b'/').all(|part| {
        part.len() < 12
            || !(part.iter().any(u8::is_ascii_uppercase)
                && part.iter().any(u8::is_ascii_lowercase)
                && part.iter().any(u8::is_ascii_digit))
    })
}

/// A lowercase name of three or more words, one of which names a secret (`openclaw-db-password`,
/// `prod.api.key`): the name of a secret, such as a Kubernetes secret or a config key.
fn names_a_secret(lower: &[u8]) -> bool {
    if !lower[0].is_ascii_lowercase() {
        return false;
    }
    let mut words = 0;
    let mut naming = false;
    for seg in lower.split(|&b| b == b'-' || b == b'_' || b == b'.') {
        if seg.is_empty()
            || !seg[0].is_ascii_lowercase()
            || !seg.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        {
            return false;
        }
        words += 1;
        naming |= NAMING_WORDS.contains(&seg);
    }
    words >= 3 && naming
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loose(v: &str, prefix: usize) -> bool {
        is_placeholder(v.as_bytes(), prefix, Strictness::Loose)
    }
    fn strict(v: &str) -> bool {
        is_placeholder(v.as_bytes(), 0, Strictness::Strict)
    }

    #[test]
    fn loose_catches_fakes_not_random_tokens() {
        for (fake, prefix) in [
            ("AIzaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 4),
            ("AIzaSyXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX", 4),
            ("AKIAIOSFODNN7EXAMPLE", 4),
            ("AKIAXXXXXXXXXXXXXXXX", 4),
            ("sk-abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKL", 3),
            ("ghp_000000000000000000000000000000000000", 4),
            ("sk_live_your-key-here-please", 8),
            ("xoxb-12345678-dummy-token", 5),
            ("sk-ant-api03-test-key", 13),
            ("TXXXXXXXX/BXXXXXXXX/XXXXXXXXXXXXXXXXXXXXXXXX", 0),
            ("glpat-ReplaceWithYourKeyHere1", 6),
        ] {
            assert!(loose(fake, prefix), "{fake}");
        }
        // A 4-letter fake word inside random text (here after a separator) is chance, not a fake.
        assert!(!loose(
            "sk-svcacct-e5Ep0BUbeEbC6-FSiimL6OIHzIm0os09E6t89_TODO0BD0mlnwnAZVZAYoZfGPslH7E",
            11
        ));
        for (real, prefix) in [
            ("ghp_q8W3nZ0rT5vB1xK7mP4sD9fG2hJ6kL3aQ0wE", 4),
            ("AKIAZ7QK3MNB2XWL5RTD", 4),
            (
                "sk-proj-84ekLPCLn0SFqZYVVA-jEnTYGUHe1Ldw6RxrrBR7RZ53l3a-rfzk1J-o82PYnILGwQGvBSBBXKT3BlbkFJd5t5T33",
                8,
            ),
            ("xoxb-239827340912-2398273409123-Kq8Vn3Lp0Zr7Xs2Wd5Fh9Jt1", 5),
            (
                "sk_test_51H8xkLJm3N2pQ7rS9tU1vW3xY5zA7bC9dE1fG3hJ5kL7mN9pQ1rS3tU5vW7",
                8,
            ),
            ("ae98947dbb0382f9fc3e7f368af5285aaa70e8001d1f9a4b", 0),
            ("hunter2", 0),
        ] {
            assert!(!loose(real, prefix), "{real}");
        }
        // A fake word glued inside random text is not a segment; one of 4 letters counts at an edge only.
        assert!(!loose("q8WatTestq9Z", 0));
        assert!(!loose("q8W-test-q9Z", 0));
        assert!(loose("test-q8Wq9Z", 0));
        assert!(loose("q8W-sample-q9Z", 0));
    }

    #[test]
    fn strict_catches_words_references_and_status() {
        for v in [
            "changeme",
            "mytestpassword",
            "your_api_key",
            "INSERT_KEY_HERE",
            "RANDOMSTRING",
            "not-set",
            "required",
            "true",
            "None",
            "${DB_PASSWORD}",
            "$DB_PASSWORD",
            "$(cat /run/secrets/db)",
            "%DB_PASSWORD%",
            "%s",
            "{{ .Values.db.password }}",
            "<password>",
            "[REDACTED]",
            "@DB_PASS@",
            ":password",
            "process.env.DB_PASSWORD",
            "os.environ[\"DB_PASSWORD\"]",
            "os.getenv('X')",
            "/run/secrets/db_password",
            "file:/run/secrets/x",
            "vault:secret/data/openclaw#db",
            "arn:aws:secretsmanager:eu-central-1:1:secret:x",
            "secret/data/prod/db",
            "openclaw-db-password",
            "prod.api.key",
            "get_secret()",
            "C:\\secrets\\db.txt",
            "~/.config/key",
            "********",
        ] {
            assert!(strict(v), "{v}");
        }
        for v in [
            "hunter2",
            "super$ecret",
            "P@ssw0rd!",
            "letmein",
            "Summer2024",
            "correct-horse-battery-staple",
            "Xk9#mQ2vLp7",
            // An AWS secret key may start with `/`: not a path.
            "/mB3xwGczreuSVOfDMYVX1XKF0/xQOdHuuxYsFRu",
        ] {
            assert!(!strict(v), "{v}");
        }
        assert_eq!(Strictness::from_name("strict"), Some(Strictness::Strict));
        assert!(!is_placeholder(b"xxxxxxxxxxxx", 0, Strictness::Off));
    }

    #[test]
    fn prose_and_elisions() {
        assert!(is_prose(b"invalid password: ", b"expected", b" at least 12 characters"));
        assert!(!is_prose(b"password: ", b"hunter2", b" at least"));
        assert!(!is_prose(b"password: ", b"letmein", b""));
        assert!(!is_prose(b"password: ", b"letmein", b"\" }"));
        assert!(!is_prose(b"db_password=", b"monkey", b" latency=12ms"));
        assert!(is_elided(b"key=", b"sk-proj-", b"...wxyz"));
        assert!(is_elided(b"", b"sk-", "\u{2026}wxyz".as_bytes()));
        assert!(is_elided(b"x...", b"sk-", b""));
        assert!(is_elided(b"key=", b"sk-ant-api03-abcd...wxyz", b""));
        assert!(!is_elided(b"key=", b"sk-proj-abcd", b" done."));
        assert!(is_elided(b"password=[", b"FILTERED", b"]"));
        assert!(!is_elided(
            b"tokens: [",
            b"ghp_u8jzPde0IgxLd6GncfBAepfJBd0Kh8oOOL8d",
            b"]"
        ));
        assert!(is_next_field(b"password= ", b"user=app"));
        assert!(is_next_field(b"Password: ", b"SSLMode:disable}"));
        assert!(!is_next_field(b"password=", b"user=app"));
        assert!(!is_next_field(b"password: ", b"hunter2"));
        assert!(!is_next_field(b"password: ", b"dGVzdA==x"));
        assert!(is_elided(b"{\"token\":\"[", b"generic-secret:3fa2c1", b"]*********\"}"));
        assert!(is_elided(b"'", b"ghp_[github-pat:3fa2c1", b"]****'"));
        assert!(is_elided(b"\"[", b"FILTERED", b"]\""));
        assert!(is_key(b"\":true"));
        assert!(is_key(b"\\\":true"));
        assert!(!is_key(b"\",\"retry\":true"));
        assert!(!is_key(b""));
        let blob = "iVBORw0KGgoAAAANSUhEUgAAMMGMOsDGbbBdRiJ8u+8T9Mek87593ghfaZ88xNNrPWsgVDN6CDaRjTBn4/";
        assert!(in_base64_run(blob.as_bytes(), b"/2xhd0Jvdw=="));
        assert!(!in_base64_run(b"POST https://api.host.test/v1/keys/", b"/rotate 200"));
    }
}
