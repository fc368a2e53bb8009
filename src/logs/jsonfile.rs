//! Docker json-file line codec: parses `{"log":…,"stream":…,"attrs":{…},"time":…}` lines and decodes
//! JSON strings with an exact map from every decoded byte back to the raw bytes it came from.
//!
//! Docker's encoder (Go's encoding/json) writes `\"` `\\` `\n` `\r` `\t`, other bytes below 0x20 as
//! `\u00xx`, `<` `>` `&` as `\u003c` `\u003e` `\u0026`, invalid UTF-8 as `\ufffd` and U+2028/9 escaped.
//! The decoder accepts every JSON escape and copies other raw bytes through unchanged, even invalid UTF-8.
use std::ops::Range;

/// A decoded JSON string value with a map back to the raw bytes it came from.
#[derive(Debug, Default, Clone)]
pub struct DecodedString {
    /// The decoded bytes.
    pub bytes: Vec<u8>,
    /// For each decoded byte, the raw offset (relative to the start of the line) of the character or
    /// escape sequence that produced it. One escape that yields several bytes gives them one start.
    pub starts: Vec<u32>,
    /// Raw offset of the closing quote (end of the string's content).
    pub raw_end: u32,
    raw_begin: u32,
}

impl DecodedString {
    /// Raw byte range (relative to the line) covering decoded bytes `range`, widened to whole escapes.
    pub fn raw_range(&self, range: Range<usize>) -> Range<u32> {
        if range.start >= range.end {
            let at = self.starts.get(range.start).copied().unwrap_or(self.raw_end);
            return at..at;
        }
        let s = self.starts[range.start];
        let last = self.starts[range.end - 1];
        let e = self.starts[range.end..]
            .iter()
            .copied()
            .find(|&st| st != last)
            .unwrap_or(self.raw_end);
        s..e
    }

    /// Raw offset just after the opening quote.
    pub fn raw_start(&self) -> u32 {
        self.raw_begin
    }

    /// Reset for reuse, keeping allocations.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.starts.clear();
        self.raw_end = 0;
        self.raw_begin = 0;
    }
}

/// Which stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Stream {
    /// stdout
    Stdout,
    /// stderr
    Stderr,
    /// anything else, or missing
    #[default]
    Other,
}

/// One parsed json-file line. Reusable: [`parse_line`] clears and refills it.
#[derive(Debug, Default)]
pub struct JsonFileLine {
    /// The decoded `log` field.
    pub log: DecodedString,
    /// The `stream` field.
    pub stream: Stream,
    /// The `time` field as written, empty if missing.
    pub time: String,
    /// `attrs` values (key, decoded value), in file order.
    pub attrs: Vec<(String, DecodedString)>,
}

impl JsonFileLine {
    /// True when `log` does not end in `\n`: Docker split a message longer than 16 KiB into
    /// 16384-byte parts and this is not the last part.
    pub fn is_partial(&self) -> bool {
        self.log.bytes.last() != Some(&b'\n')
    }
}

/// What is wrong with a line (never its content).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonLineErrorKind {
    /// Empty line.
    Empty,
    /// Does not start with `{`.
    NotAnObject,
    /// The line ends inside the object.
    UnexpectedEnd,
    /// A byte that JSON does not allow here.
    UnexpectedByte,
    /// An invalid escape sequence.
    BadEscape,
    /// A raw control byte inside a string.
    ControlInString,
    /// Expected a string.
    ExpectedString,
    /// No `log` string field.
    MissingLog,
    /// Bytes after the closing `}`.
    TrailingData,
    /// Nesting deeper than 64 levels.
    TooDeep,
}

impl std::fmt::Display for JsonLineErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Empty => "empty line",
            Self::NotAnObject => "not a JSON object",
            Self::UnexpectedEnd => "line ends inside the JSON object",
            Self::UnexpectedByte => "unexpected byte",
            Self::BadEscape => "invalid escape sequence",
            Self::ControlInString => "raw control character inside a string",
            Self::ExpectedString => "expected a string",
            Self::MissingLog => "no \"log\" string field",
            Self::TrailingData => "data after the JSON object",
            Self::TooDeep => "nesting too deep",
        })
    }
}

/// Why a line is not a json-file line: a kind and a byte column, never bytes of the line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed json-file line at byte {column}: {kind}")]
pub struct JsonLineError {
    /// Byte offset in the line.
    pub column: usize,
    /// What is wrong.
    pub kind: JsonLineErrorKind,
}

struct Parser<'a> {
    raw: &'a [u8],
    pos: usize,
}

type PResult<T> = Result<T, JsonLineError>;

fn hexval(b: u8) -> Option<u32> {
    (b as char).to_digit(16)
}

impl<'a> Parser<'a> {
    fn err<T>(&self, kind: JsonLineErrorKind) -> PResult<T> {
        Err(JsonLineError { column: self.pos, kind })
    }

    fn ws(&mut self) {
        while self.pos < self.raw.len() && matches!(self.raw[self.pos], b' ' | b'\t' | b'\n' | b'\r') {
            self.pos += 1;
        }
    }

    fn expect(&mut self, b: u8) -> PResult<()> {
        self.ws();
        match self.raw.get(self.pos) {
            Some(&c) if c == b => {
                self.pos += 1;
                Ok(())
            }
            Some(_) => self.err(JsonLineErrorKind::UnexpectedByte),
            None => self.err(JsonLineErrorKind::UnexpectedEnd),
        }
    }

    fn hex4(&mut self) -> PResult<u32> {
        let h = self.raw.get(self.pos..self.pos + 4).ok_or(JsonLineError {
            column: self.pos,
            kind: JsonLineErrorKind::BadEscape,
        })?;
        let mut v = 0;
        for &b in h {
            v = v * 16
                + hexval(b).ok_or(JsonLineError {
                    column: self.pos,
                    kind: JsonLineErrorKind::BadEscape,
                })?;
        }
        self.pos += 4;
        Ok(v)
    }

    /// Decode a string at the cursor (which is on the opening quote) into `out`.
    fn string(&mut self, out: &mut DecodedString) -> PResult<()> {
        self.ws();
        match self.raw.get(self.pos) {
            Some(b'"') => self.pos += 1,
            Some(_) => return self.err(JsonLineErrorKind::ExpectedString),
            None => return self.err(JsonLineErrorKind::UnexpectedEnd),
        }
        out.clear();
        out.raw_begin = self.pos as u32;
        let raw = self.raw;
        loop {
            // Copy the run of ordinary bytes in bulk.
            let rest = &raw[self.pos..];
            let run = rest
                .iter()
                .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
                .unwrap_or(rest.len());
            if run > 0 {
                out.bytes.extend_from_slice(&rest[..run]);
                let base = self.pos as u32;
                out.starts.extend(base..base + run as u32);
                self.pos += run;
            }
            let Some(&b) = raw.get(self.pos) else {
                return self.err(JsonLineErrorKind::UnexpectedEnd);
            };
            match b {
                b'"' => {
                    out.raw_end = self.pos as u32;
                    self.pos += 1;
                    return Ok(());
                }
                b'\\' => {
                    let start = self.pos as u32;
                    let Some(&e) = raw.get(self.pos + 1) else {
                        return self.err(JsonLineErrorKind::UnexpectedEnd);
                    };
                    self.pos += 2;
                    let simple = match e {
                        b'"' => Some(b'"'),
                        b'\\' => Some(b'\\'),
                        b'/' => Some(b'/'),
                        b'b' => Some(8),
                        b'f' => Some(12),
                        b'n' => Some(b'\n'),
                        b'r' => Some(b'\r'),
                        b't' => Some(b'\t'),
                        b'u' => None,
                        _ => {
                            self.pos -= 2;
                            return self.err(JsonLineErrorKind::BadEscape);
                        }
                    };
                    if let Some(c) = simple {
                        out.bytes.push(c);
                        out.starts.push(start);
                        continue;
                    }
                    let mut cp = self.hex4()?;
                    if (0xD800..0xDC00).contains(&cp) {
                        // A high surrogate: pair it with a following low surrogate if there is one.
                        if raw.get(self.pos) == Some(&b'\\') && raw.get(self.pos + 1) == Some(&b'u') {
                            let save = self.pos;
                            self.pos += 2;
                            let lo = self.hex4()?;
                            if (0xDC00..0xE000).contains(&lo) {
                                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                            } else {
                                self.pos = save;
                                cp = 0xFFFD;
                            }
                        } else {
                            cp = 0xFFFD;
                        }
                    } else if (0xDC00..0xE000).contains(&cp) {
                        cp = 0xFFFD;
                    }
                    let ch = char::from_u32(cp).unwrap_or('\u{FFFD}');
                    let mut buf = [0u8; 4];
                    let enc = ch.encode_utf8(&mut buf).as_bytes();
                    out.bytes.extend_from_slice(enc);
                    out.starts.extend(std::iter::repeat_n(start, enc.len()));
                }
                _ => return self.err(JsonLineErrorKind::ControlInString),
            }
        }
    }

    /// Skip any JSON value.
    fn skip_value(&mut self, depth: usize, scratch: &mut DecodedString) -> PResult<()> {
        if depth > 64 {
            return self.err(JsonLineErrorKind::TooDeep);
        }
        self.ws();
        match self.raw.get(self.pos) {
            None => self.err(JsonLineErrorKind::UnexpectedEnd),
            Some(b'"') => self.string(scratch),
            Some(b'{') => {
                self.pos += 1;
                self.ws();
                if self.raw.get(self.pos) == Some(&b'}') {
                    self.pos += 1;
                    return Ok(());
                }
                loop {
                    self.string(scratch)?;
                    self.expect(b':')?;
                    self.skip_value(depth + 1, scratch)?;
                    self.ws();
                    match self.raw.get(self.pos) {
                        Some(b',') => self.pos += 1,
                        Some(b'}') => {
                            self.pos += 1;
                            return Ok(());
                        }
                        Some(_) => return self.err(JsonLineErrorKind::UnexpectedByte),
                        None => return self.err(JsonLineErrorKind::UnexpectedEnd),
                    }
                }
            }
            Some(b'[') => {
                self.pos += 1;
                self.ws();
                if self.raw.get(self.pos) == Some(&b']') {
                    self.pos += 1;
                    return Ok(());
                }
                loop {
                    self.skip_value(depth + 1, scratch)?;
                    self.ws();
                    match self.raw.get(self.pos) {
                        Some(b',') => self.pos += 1,
                        Some(b']') => {
                            self.pos += 1;
                            return Ok(());
                        }
                        Some(_) => return self.err(JsonLineErrorKind::UnexpectedByte),
                        None => return self.err(JsonLineErrorKind::UnexpectedEnd),
                    }
                }
            }
            Some(_) => {
                // number, true, false, null
                let start = self.pos;
                while self.pos < self.raw.len()
                    && matches!(self.raw[self.pos], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E' | b'a'..=b'z')
                {
                    self.pos += 1;
                }
                let tok = &self.raw[start..self.pos];
                let ok = matches!(tok, b"true" | b"false" | b"null")
                    || (!tok.is_empty() && tok.iter().all(|b| b"0123456789-+.eE".contains(b)) && tok[0] != b'+');
                if ok {
                    Ok(())
                } else {
                    self.pos = start;
                    self.err(JsonLineErrorKind::UnexpectedByte)
                }
            }
        }
    }
}

/// Parse one line (without its trailing `\n`) into `out`. Requires a JSON object with a string `log`.
/// Steady state allocates nothing when `out` is reused.
pub fn parse_line(raw: &[u8], out: &mut JsonFileLine) -> Result<(), JsonLineError> {
    out.log.clear();
    out.stream = Stream::Other;
    out.time.clear();
    out.attrs.clear();
    let mut p = Parser { raw, pos: 0 };
    p.ws();
    match raw.get(p.pos) {
        None => return p.err(JsonLineErrorKind::Empty),
        Some(b'{') => p.pos += 1,
        Some(_) => return p.err(JsonLineErrorKind::NotAnObject),
    }
    let mut key = DecodedString::default();
    let mut scratch = DecodedString::default();
    let mut have_log = false;
    p.ws();
    if raw.get(p.pos) == Some(&b'}') {
        p.pos += 1;
    } else {
        loop {
            p.string(&mut key)?;
            p.expect(b':')?;
            p.ws();
            match key.bytes.as_slice() {
                b"log" => {
                    p.string(&mut out.log)?;
                    have_log = true;
                }
                b"stream" => {
                    p.string(&mut scratch)?;
                    out.stream = match scratch.bytes.as_slice() {
                        b"stdout" => Stream::Stdout,
                        b"stderr" => Stream::Stderr,
                        _ => Stream::Other,
                    };
                }
                b"time" => {
                    p.string(&mut scratch)?;
                    out.time.push_str(&String::from_utf8_lossy(&scratch.bytes));
                }
                b"attrs" if raw.get(p.pos) == Some(&b'{') => {
                    p.pos += 1;
                    p.ws();
                    if raw.get(p.pos) == Some(&b'}') {
                        p.pos += 1;
                    } else {
                        loop {
                            p.string(&mut scratch)?;
                            let name = String::from_utf8_lossy(&scratch.bytes).into_owned();
                            p.expect(b':')?;
                            p.ws();
                            if raw.get(p.pos) == Some(&b'"') {
                                let mut value = DecodedString::default();
                                p.string(&mut value)?;
                                out.attrs.push((name, value));
                            } else {
                                p.skip_value(1, &mut scratch)?;
                            }
                            p.ws();
                            match raw.get(p.pos) {
                                Some(b',') => p.pos += 1,
                                Some(b'}') => {
                                    p.pos += 1;
                                    break;
                                }
                                Some(_) => return p.err(JsonLineErrorKind::UnexpectedByte),
                                None => return p.err(JsonLineErrorKind::UnexpectedEnd),
                            }
                        }
                    }
                }
                _ => p.skip_value(1, &mut scratch)?,
            }
            p.ws();
            match raw.get(p.pos) {
                Some(b',') => p.pos += 1,
                Some(b'}') => {
                    p.pos += 1;
                    break;
                }
                Some(_) => return p.err(JsonLineErrorKind::UnexpectedByte),
                None => return p.err(JsonLineErrorKind::UnexpectedEnd),
            }
        }
    }
    p.ws();
    if p.pos != raw.len() {
        return p.err(JsonLineErrorKind::TrailingData);
    }
    if !have_log {
        return Err(JsonLineError {
            column: 0,
            kind: JsonLineErrorKind::MissingLog,
        });
    }
    Ok(())
}

/// Cheap format sniff: does this first line of a file look like a Docker json-file line?
pub fn looks_like_json_file(first_line: &[u8]) -> bool {
    let trimmed = first_line.strip_suffix(b"\r").unwrap_or(first_line);
    let start = trimmed
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(trimmed.len());
    if trimmed[start..].starts_with(b"{\"log\":") {
        return true;
    }
    let mut line = JsonFileLine::default();
    trimmed.first() == Some(&b'{') && parse_line(trimmed, &mut line).is_ok()
}

/// Docker's encoder for the `log` string content (without the quotes).
pub fn encode_log_string(bytes: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b < 0x80 {
            match b {
                b'"' => out.extend_from_slice(b"\\\""),
                b'\\' => out.extend_from_slice(b"\\\\"),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                b'\t' => out.extend_from_slice(b"\\t"),
                b'<' | b'>' | b'&' | 0..=0x1f => {
                    out.extend_from_slice(b"\\u00");
                    out.push(HEX[(b >> 4) as usize]);
                    out.push(HEX[(b & 15) as usize]);
                }
                _ => out.push(b),
            }
            i += 1;
            continue;
        }
        // Multi-byte UTF-8: copy valid sequences, escape U+2028/9, replace invalid bytes.
        let len = match b {
            0xC2..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF4 => 4,
            _ => 0,
        };
        let valid = len > 0 && i + len <= bytes.len() && std::str::from_utf8(&bytes[i..i + len]).is_ok();
        if !valid {
            out.extend_from_slice(b"\\ufffd");
            i += 1;
            continue;
        }
        match &bytes[i..i + len] {
            [0xE2, 0x80, 0xA8] => out.extend_from_slice(b"\\u2028"),
            [0xE2, 0x80, 0xA9] => out.extend_from_slice(b"\\u2029"),
            seq => out.extend_from_slice(seq),
        }
        i += len;
    }
}

/// A complete json-file line as Docker writes it, with its trailing `\n`.
pub fn encode_line(log: &[u8], stream: &str, attrs: &[(&str, &str)], time: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"log\":\"");
    encode_log_string(log, out);
    out.extend_from_slice(b"\",\"stream\":\"");
    encode_log_string(stream.as_bytes(), out);
    out.push(b'"');
    if !attrs.is_empty() {
        out.extend_from_slice(b",\"attrs\":{");
        for (i, (k, v)) in attrs.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.push(b'"');
            encode_log_string(k.as_bytes(), out);
            out.extend_from_slice(b"\":\"");
            encode_log_string(v.as_bytes(), out);
            out.push(b'"');
        }
        out.push(b'}');
    }
    out.extend_from_slice(b",\"time\":\"");
    encode_log_string(time.as_bytes(), out);
    out.extend_from_slice(b"\"}\n");
}

/// Bytes that may replace raw bytes inside a JSON string keeping it valid: printable ASCII but `"` and `\`.
pub fn is_safe_mask_byte(b: u8) -> bool {
    (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &[u8]) -> JsonFileLine {
        let mut l = JsonFileLine::default();
        parse_line(raw, &mut l).unwrap();
        l
    }

    fn xorshift(seed: &mut u64) -> u64 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        *seed
    }

    #[test]
    fn round_trip_every_byte_and_random_utf8() {
        for b in 0u8..0x80 {
            let mut line = Vec::new();
            encode_line(&[b, b'\n'], "stdout", &[], "t", &mut line);
            let l = parse(&line[..line.len() - 1]);
            assert_eq!(l.log.bytes, vec![b, b'\n'], "byte {b}");
        }
        let mut seed = 42u64;
        let alphabet = [
            "a", "Z", "\"", "\\", "\n", "\t", "<", ">", "&", "\u{1b}", "é", "€", "😀", "\u{2028}", " ", "\u{0}",
        ];
        for _ in 0..2000 {
            let n = (xorshift(&mut seed) % 40) as usize;
            let s: String = (0..n)
                .map(|_| alphabet[(xorshift(&mut seed) % alphabet.len() as u64) as usize])
                .collect();
            let mut line = Vec::new();
            encode_line(s.as_bytes(), "stderr", &[("tag", "x<y")], "2026", &mut line);
            let raw = &line[..line.len() - 1];
            let l = parse(raw);
            assert_eq!(l.log.bytes, s.as_bytes());
            assert_eq!(l.stream, Stream::Stderr);
            let v: serde_json::Value = serde_json::from_slice(raw).unwrap();
            assert_eq!(v["log"].as_str().unwrap(), s);
            // every sub-range maps to raw bytes that decode back to it (when on char boundaries)
            for a in 0..=s.len() {
                for b in a..=s.len() {
                    if !s.is_char_boundary(a) || !s.is_char_boundary(b) || a == b {
                        continue;
                    }
                    let r = l.log.raw_range(a..b);
                    let piece = &raw[r.start as usize..r.end as usize];
                    let quoted = [b"\"".as_slice(), piece, b"\""].concat();
                    let back: String = serde_json::from_slice(&quoted).unwrap();
                    assert_eq!(back, s[a..b]);
                }
            }
        }
    }

    #[test]
    fn docker_escapes() {
        let mut out = Vec::new();
        encode_log_string(b"<a>&\"\\\x01\xff\xe2\x80\xa8ok\n", &mut out);
        assert_eq!(out, br#"\u003ca\u003e\u0026\"\\\u0001\ufffd\u2028ok\n"#.to_vec());
    }

    #[test]
    fn escapes_surrogates_and_map() {
        let raw = br#"{"log":"a\u003cb\ud83d\ude00c\ud800d\/","stream":"stdout","time":"T"}"#;
        let l = parse(raw);
        assert_eq!(l.log.bytes, "a<b😀c\u{FFFD}d/".as_bytes());
        // the 4 bytes of the emoji all map to the 12-byte surrogate pair
        let emoji = 3..7;
        let r = l.log.raw_range(emoji);
        assert_eq!(&raw[r.start as usize..r.end as usize], br"\ud83d\ude00");
        // a range cutting the emoji is widened
        let r = l.log.raw_range(4..5);
        assert_eq!(&raw[r.start as usize..r.end as usize], br"\ud83d\ude00");
        assert_eq!(l.time, "T");
        assert!(l.is_partial());
        assert_eq!(l.log.raw_start(), 8);
    }

    #[test]
    fn attrs_other_order_and_unknown_keys() {
        let raw = br#"{"time":"T","extra":{"a":[1,2.5e3,{"b":null}],"c":true},"attrs":{"tag":"sk\u0026x","n":3},"stream":"stderr","log":"hi\n"}"#;
        let l = parse(raw);
        assert_eq!(l.log.bytes, b"hi\n");
        assert!(!l.is_partial());
        assert_eq!(l.stream, Stream::Stderr);
        assert_eq!(l.attrs.len(), 1);
        assert_eq!(l.attrs[0].0, "tag");
        assert_eq!(l.attrs[0].1.bytes, b"sk&x");
        let r = l.attrs[0].1.raw_range(2..3);
        assert_eq!(&raw[r.start as usize..r.end as usize], br"\u0026");
    }

    #[test]
    fn malformed_lines_give_errors_without_content() {
        let cases: &[(&[u8], JsonLineErrorKind)] = &[
            (b"", JsonLineErrorKind::Empty),
            (b"secret-text", JsonLineErrorKind::NotAnObject),
            (br#"{"log":"sk-secret"#, JsonLineErrorKind::UnexpectedEnd),
            (br#"{"log":"sk-secret\x"}"#, JsonLineErrorKind::BadEscape),
            (br#"{"log":"sk-secret\u12"}"#, JsonLineErrorKind::BadEscape),
            (br#"{"stream":"stdout"}"#, JsonLineErrorKind::MissingLog),
            (br#"{"log":"a"} sk-secret"#, JsonLineErrorKind::TrailingData),
            (b"{\"log\":\"a\x01b\"}", JsonLineErrorKind::ControlInString),
            (b"{\"log\":\"a\",\xff:1}", JsonLineErrorKind::ExpectedString),
            (br#"{"log":"a","n":nope}"#, JsonLineErrorKind::UnexpectedByte),
        ];
        for (raw, kind) in cases {
            let mut l = JsonFileLine::default();
            let err = parse_line(raw, &mut l).unwrap_err();
            assert_eq!(err.kind, *kind, "{}", String::from_utf8_lossy(raw));
            assert!(!err.to_string().contains("secret"));
        }
    }

    #[test]
    fn raw_invalid_utf8_passes_through() {
        let raw = b"{\"log\":\"\xff\xfeab\",\"stream\":\"stdout\"}";
        let l = parse(raw);
        assert_eq!(l.log.bytes, b"\xff\xfeab");
        assert_eq!(l.log.raw_range(0..2), 8..10);
    }

    #[test]
    fn sniff() {
        assert!(looks_like_json_file(br#"{"log":"x\n","stream":"stdout","time":"t"}"#));
        assert!(looks_like_json_file(br#"{"stream":"stdout","log":"x"}"#));
        assert!(!looks_like_json_file(b"plain text"));
        assert!(!looks_like_json_file(br#"{"level":30,"msg":"pino"}"#));
    }

    #[test]
    fn mask_bytes() {
        assert!(is_safe_mask_byte(b'*'));
        assert!(!is_safe_mask_byte(b'"'));
        assert!(!is_safe_mask_byte(b'\\'));
        assert!(!is_safe_mask_byte(b'\n'));
    }
}
