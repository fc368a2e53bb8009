//! Docker json-file line codec: parses `{"log":…,"stream":…,"attrs":{…},"time":…}` lines and decodes
//! JSON strings with an exact map from every decoded byte back to the raw bytes it came from, so that a
//! secret found in decoded text can be masked in the exact raw bytes of the file.
//!
//! Encoding ([`encode_log_string`], [`encode_line`]) writes what the daemon's writer (moby's
//! `ffjsonWriteJSONBytesAsString`) writes: `\"` `\\` `\n` `\r`, every other byte below 0x20 (a tab
//! too) as `\u00xx`, `<` `>` `&` as `\u003c` `\u003e` `\u0026`, each byte of invalid UTF-8 as
//! `\ufffd` and U+2028 / U+2029 as `\u2028` / `\u2029`; all other UTF-8 passes through raw. (`attrs`,
//! written by Go's `encoding/json`, use `\t` for a tab; the decoder accepts both.)
//!
//! Decoding ([`parse_line`]) accepts every JSON escape (`\/`, `\b`, `\f`, `\uXXXX`, surrogate pairs; a
//! lone surrogate decodes to U+FFFD) and copies raw bytes ≥ 0x20 through unchanged, even invalid UTF-8.
//! It never allocates in steady state when its output [`JsonFileLine`] is reused, and its errors never
//! carry bytes of the line.
use std::ops::Range;

/// Nesting limit for values of unknown keys (Docker writes no nesting beyond `attrs`).
const MAX_DEPTH: usize = 64;

/// A decoded JSON string value with a map back to the raw bytes it came from.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DecodedString {
    /// The decoded bytes.
    pub bytes: Vec<u8>,
    /// For each decoded byte, the raw offset (relative to the start of the line) of the character or
    /// escape sequence that produced it. Several decoded bytes share one start when one escape yields
    /// several bytes (`\u00e9` gives 2, a surrogate pair `\ud83d\ude00` gives 4). A raw byte copied
    /// through (even one byte of a multi-byte UTF-8 character) has its own start.
    pub starts: Vec<u32>,
    /// Raw offset of the closing quote (end of the string's content).
    pub raw_end: u32,
}

impl DecodedString {
    /// Raw byte range (relative to the line) covering decoded bytes `range`; always covers whole escape
    /// sequences and whole UTF-8 characters (a range that cuts one is widened to all of it on both
    /// ends, so that mask bytes written over the raw range leave valid UTF-8 and JSON). An empty range
    /// gives an empty raw range at the raw position of `range.start`.
    ///
    /// # Panics
    /// When `range` is not within `0..self.bytes.len()` (or is reversed).
    pub fn raw_range(&self, range: Range<usize>) -> Range<u32> {
        assert!(
            range.start <= range.end && range.end <= self.starts.len(),
            "decoded range out of bounds"
        );
        let continues = |i: usize| self.bytes.get(i).is_some_and(|&b| b & 0xc0 == 0x80);
        let mut range = range;
        if range.start < range.end {
            while range.start > 0 && continues(range.start) {
                range.start -= 1;
            }
            while continues(range.end) {
                range.end += 1;
            }
        }
        if range.start == range.end {
            let at = self.starts.get(range.start).copied().unwrap_or(self.raw_end);
            return at..at;
        }
        let start = self.starts[range.start];
        let last = self.starts[range.end - 1];
        // The end is where the next escape (or raw byte) begins: skip the rest of the last escape's bytes.
        let end = self.starts[range.end..]
            .iter()
            .copied()
            .find(|&s| s != last)
            .unwrap_or(self.raw_end);
        start..end
    }

    /// Raw offset of the opening content (just after the opening quote).
    pub fn raw_start(&self) -> u32 {
        self.starts.first().copied().unwrap_or(self.raw_end)
    }

    /// Reset for reuse, keeping allocations.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.starts.clear();
        self.raw_end = 0;
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
#[derive(Debug, Default, Clone)]
pub struct JsonFileLine {
    /// The decoded `log` field.
    pub log: DecodedString,
    /// The `stream` field ([`Stream::Other`] when missing, unknown or not a string).
    pub stream: Stream,
    /// The `time` field as written (RFC 3339 text; JSON escapes decoded, invalid UTF-8 replaced), empty
    /// if missing or not a string.
    pub time: String,
    /// `attrs` values (key, decoded value), in file order. Keys are decoded (invalid UTF-8 replaced);
    /// attributes whose value is not a string are left out.
    pub attrs: Vec<(String, DecodedString)>,
}

impl JsonFileLine {
    /// True when `log` does not end in `\n`: Docker split a line longer than 16 KiB into 16384-byte parts
    /// and this is not the last part.
    pub fn is_partial(&self) -> bool {
        self.log.bytes.last() != Some(&b'\n')
    }
}

/// What is wrong with a line (never its content).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JsonLineErrorKind {
    /// The line is empty (or only spaces and tabs).
    Empty,
    /// The line does not start with `{`.
    NotAnObject,
    /// The line ends inside the object.
    UnexpectedEnd,
    /// A byte that JSON does not allow here.
    UnexpectedByte,
    /// An invalid escape sequence inside a string.
    BadEscape,
    /// A raw control byte (below 0x20) inside a string.
    ControlInString,
    /// Expected a string (a key, or the `log` value).
    ExpectedString,
    /// No `log` field.
    MissingLog,
    /// A second `log` field (which one Docker would show is ambiguous, so the line is refused).
    DuplicateLog,
    /// Bytes after the closing `}` (only spaces and tabs may follow; a trailing `\r` is refused).
    TrailingData,
    /// Nesting deeper than 64 levels.
    TooDeep,
    /// The line is longer than 4 GiB (offsets are `u32`).
    TooLong,
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
            Self::MissingLog => "no \"log\" field",
            Self::DuplicateLog => "more than one \"log\" field",
            Self::TrailingData => "data after the JSON object",
            Self::TooDeep => "nesting too deep",
            Self::TooLong => "line too long",
        })
    }
}

/// Why a line is not a json-file line. Never holds any bytes of the line (they may contain secrets):
/// only a kind and a byte column.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed json-file line at byte {column}: {kind}")]
pub struct JsonLineError {
    /// Byte offset in the line where the problem was found.
    pub column: usize,
    /// What is wrong.
    pub kind: JsonLineErrorKind,
}

type PResult<T> = Result<T, JsonLineError>;

/// Where decoded string bytes go. Monomorphised, so skipping and key matching cost nothing extra.
trait Sink {
    /// Raw bytes copied through verbatim; `at` is the raw offset of the first one.
    fn run(&mut self, bytes: &[u8], at: u32);
    /// The bytes one escape sequence (starting at raw offset `at`) decodes to.
    fn escaped(&mut self, bytes: &[u8], at: u32);
}

impl Sink for DecodedString {
    #[inline]
    fn run(&mut self, bytes: &[u8], at: u32) {
        self.bytes.extend_from_slice(bytes);
        // `at + len` is at most the line length, which `parse_line` checked fits in u32.
        self.starts.extend(at..at + bytes.len() as u32);
    }

    #[inline]
    fn escaped(&mut self, bytes: &[u8], at: u32) {
        self.bytes.extend_from_slice(bytes);
        self.starts.extend(std::iter::repeat_n(at, bytes.len()));
    }
}

impl Sink for Vec<u8> {
    #[inline]
    fn run(&mut self, bytes: &[u8], _at: u32) {
        self.extend_from_slice(bytes);
    }

    #[inline]
    fn escaped(&mut self, bytes: &[u8], _at: u32) {
        self.extend_from_slice(bytes);
    }
}

/// Validates a string and drops its value.
struct Skip;

impl Sink for Skip {
    #[inline]
    fn run(&mut self, _bytes: &[u8], _at: u32) {}

    #[inline]
    fn escaped(&mut self, _bytes: &[u8], _at: u32) {}
}

/// A short decoded string on the stack (keys, the `stream` value); longer ones only flag `overflow`.
#[derive(Default)]
struct ShortBuf {
    buf: [u8; 8],
    len: usize,
    overflow: bool,
}

impl ShortBuf {
    fn get(&self) -> Option<&[u8]> {
        (!self.overflow).then(|| &self.buf[..self.len])
    }
}

impl Sink for ShortBuf {
    #[inline]
    fn run(&mut self, bytes: &[u8], _at: u32) {
        match self.buf.get_mut(self.len..self.len + bytes.len()) {
            Some(dst) if !self.overflow => {
                dst.copy_from_slice(bytes);
                self.len += bytes.len();
            }
            _ => self.overflow = true,
        }
    }

    #[inline]
    fn escaped(&mut self, bytes: &[u8], at: u32) {
        self.run(bytes, at);
    }
}

/// The keys of the top-level object that matter.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Key {
    Log,
    Stream,
    Time,
    Attrs,
    Other,
}

/// Index of the first byte below 0x20, if any. The common "none" answer is a branch-free min-reduction
/// that the compiler vectorises.
#[inline]
fn first_control(s: &[u8]) -> Option<usize> {
    if s.iter().fold(0xff, |m: u8, &b| m.min(b)) >= 0x20 {
        return None;
    }
    s.iter().position(|&b| b < 0x20)
}

/// Value of the 4 hex digits at `raw[at..at + 4]`, or where and why they are not 4 hex digits.
#[inline]
fn hex4(raw: &[u8], at: usize) -> Result<u32, (usize, JsonLineErrorKind)> {
    let mut v = 0u32;
    for i in at..at + 4 {
        let d = match raw.get(i) {
            None => return Err((i, JsonLineErrorKind::UnexpectedEnd)),
            Some(&b @ b'0'..=b'9') => b - b'0',
            Some(&b @ b'a'..=b'f') => b - b'a' + 10,
            Some(&b @ b'A'..=b'F') => b - b'A' + 10,
            Some(_) => return Err((i, JsonLineErrorKind::BadEscape)),
        };
        v = v << 4 | u32::from(d);
    }
    Ok(v)
}

/// `String` from decoded bytes, keeping the allocation when they are valid UTF-8.
fn into_string(v: Vec<u8>) -> String {
    String::from_utf8(v).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

struct Parser<'a> {
    raw: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    #[cold]
    fn fail<T>(&self, column: usize, kind: JsonLineErrorKind) -> PResult<T> {
        Err(JsonLineError { column, kind })
    }

    #[inline]
    fn peek(&self) -> Option<u8> {
        self.raw.get(self.pos).copied()
    }

    /// Skip JSON whitespace.
    #[inline]
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    /// Skip spaces and tabs (the only whitespace allowed before `{` and after `}`).
    fn blanks(&mut self) {
        while let Some(b' ' | b'\t') = self.peek() {
            self.pos += 1;
        }
    }

    /// Skip whitespace and step over `byte`; anything else is a `wrong` error.
    #[inline]
    fn expect_byte(&mut self, byte: u8, wrong: JsonLineErrorKind) -> PResult<()> {
        self.ws();
        match self.peek() {
            Some(b) if b == byte => {
                self.pos += 1;
                Ok(())
            }
            Some(_) => self.fail(self.pos, wrong),
            None => self.fail(self.pos, JsonLineErrorKind::UnexpectedEnd),
        }
    }

    /// Skip whitespace and step over the opening quote of a string.
    #[inline]
    fn open_string(&mut self) -> PResult<()> {
        self.expect_byte(b'"', JsonLineErrorKind::ExpectedString)
    }

    /// Skip whitespace and step over `:`.
    #[inline]
    fn colon(&mut self) -> PResult<()> {
        self.expect_byte(b':', JsonLineErrorKind::UnexpectedByte)
    }

    /// After a member or element: `,` gives `false` (more follow), `close` gives `true` (done).
    #[inline]
    fn next_or_close(&mut self, close: u8) -> PResult<bool> {
        self.ws();
        match self.peek() {
            Some(b',') => {
                self.pos += 1;
                Ok(false)
            }
            Some(b) if b == close => {
                self.pos += 1;
                Ok(true)
            }
            Some(_) => self.fail(self.pos, JsonLineErrorKind::UnexpectedByte),
            None => self.fail(self.pos, JsonLineErrorKind::UnexpectedEnd),
        }
    }

    /// Decode a string's content into `sink`; the cursor is just after the opening quote. Leaves the
    /// cursor after the closing quote and returns the quote's raw offset.
    #[inline]
    fn string_body<S: Sink>(&mut self, sink: &mut S) -> PResult<u32> {
        let raw = self.raw;
        loop {
            let rest = &raw[self.pos..];
            let run = memchr::memchr2(b'"', b'\\', rest).unwrap_or(rest.len());
            if let Some(i) = first_control(&rest[..run]) {
                return self.fail(self.pos + i, JsonLineErrorKind::ControlInString);
            }
            if run > 0 {
                sink.run(&rest[..run], self.pos as u32);
                self.pos += run;
            }
            match self.peek() {
                Some(b'"') => {
                    let end = self.pos as u32;
                    self.pos += 1;
                    return Ok(end);
                }
                Some(_) => self.escape(sink)?,
                None => return self.fail(self.pos, JsonLineErrorKind::UnexpectedEnd),
            }
        }
    }

    /// Decode one escape sequence; the cursor is on its backslash.
    #[inline]
    fn escape<S: Sink>(&mut self, sink: &mut S) -> PResult<()> {
        let at = self.pos;
        let c = match self.raw.get(at + 1) {
            Some(b'"') => b'"',
            Some(b'\\') => b'\\',
            Some(b'/') => b'/',
            Some(b'b') => 0x08,
            Some(b'f') => 0x0c,
            Some(b'n') => b'\n',
            Some(b'r') => b'\r',
            Some(b't') => b'\t',
            Some(b'u') => return self.unicode_escape(sink),
            Some(_) => return self.fail(at, JsonLineErrorKind::BadEscape),
            None => return self.fail(at + 1, JsonLineErrorKind::UnexpectedEnd),
        };
        sink.escaped(&[c], at as u32);
        self.pos = at + 2;
        Ok(())
    }

    /// Decode `\uXXXX` (with a following low surrogate when it is a high one); the cursor is on `\`.
    fn unicode_escape<S: Sink>(&mut self, sink: &mut S) -> PResult<()> {
        let raw = self.raw;
        let at = self.pos;
        let cp = match hex4(raw, at + 2) {
            Ok(cp) => cp,
            Err((col, kind)) => return self.fail(if kind == JsonLineErrorKind::BadEscape { at } else { col }, kind),
        };
        let mut end = at + 6;
        let ch = match cp {
            0xD800..=0xDBFF => {
                // A high surrogate: joined with a directly following `\uDC00`..`\uDFFF`. Otherwise it is
                // lone; whatever follows is decoded on its own (and reported there if it is malformed).
                let low = match raw.get(end..end + 2) {
                    Some(b"\\u") => hex4(raw, end + 2).ok().filter(|lo| (0xDC00..=0xDFFF).contains(lo)),
                    _ => None,
                };
                match low {
                    Some(lo) => {
                        end += 6;
                        char::from_u32(0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00))
                            .unwrap_or(char::REPLACEMENT_CHARACTER)
                    }
                    None => char::REPLACEMENT_CHARACTER,
                }
            }
            _ => char::from_u32(cp).unwrap_or(char::REPLACEMENT_CHARACTER),
        };
        let mut buf = [0u8; 4];
        sink.escaped(ch.encode_utf8(&mut buf).as_bytes(), at as u32);
        self.pos = end;
        Ok(())
    }

    /// Read a key of the top-level object.
    fn key(&mut self) -> PResult<Key> {
        self.open_string()?;
        let mut k = ShortBuf::default();
        self.string_body(&mut k)?;
        Ok(match k.get() {
            Some(b"log") => Key::Log,
            Some(b"stream") => Key::Stream,
            Some(b"time") => Key::Time,
            Some(b"attrs") => Key::Attrs,
            _ => Key::Other,
        })
    }

    /// Skip (and validate) any JSON value at `depth`.
    fn skip_value(&mut self, depth: usize) -> PResult<()> {
        self.ws();
        let Some(b) = self.peek() else {
            return self.fail(self.pos, JsonLineErrorKind::UnexpectedEnd);
        };
        match b {
            b'"' => {
                self.pos += 1;
                self.string_body(&mut Skip).map(drop)
            }
            b'{' | b'[' => {
                if depth >= MAX_DEPTH {
                    return self.fail(self.pos, JsonLineErrorKind::TooDeep);
                }
                self.pos += 1;
                let close = if b == b'{' { b'}' } else { b']' };
                self.ws();
                if self.peek() == Some(close) {
                    self.pos += 1;
                    return Ok(());
                }
                loop {
                    if close == b'}' {
                        self.open_string()?;
                        self.string_body(&mut Skip)?;
                        self.colon()?;
                    }
                    self.skip_value(depth + 1)?;
                    if self.next_or_close(close)? {
                        return Ok(());
                    }
                }
            }
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => self.number(),
            _ => self.fail(self.pos, JsonLineErrorKind::UnexpectedByte),
        }
    }

    fn literal(&mut self, word: &[u8]) -> PResult<()> {
        let rest = &self.raw[self.pos..];
        if rest.starts_with(word) {
            self.pos += word.len();
            return Ok(());
        }
        let same = rest.iter().zip(word).take_while(|(a, b)| a == b).count();
        let kind = if same == rest.len() {
            JsonLineErrorKind::UnexpectedEnd
        } else {
            JsonLineErrorKind::UnexpectedByte
        };
        self.fail(self.pos + same, kind)
    }

    /// One or more digits from the cursor.
    fn digits(&mut self) -> PResult<()> {
        match self.peek() {
            Some(b'0'..=b'9') => {}
            Some(_) => return self.fail(self.pos, JsonLineErrorKind::UnexpectedByte),
            None => return self.fail(self.pos, JsonLineErrorKind::UnexpectedEnd),
        }
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        Ok(())
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
    fn number(&mut self) -> PResult<()> {
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        if self.peek() == Some(b'0') {
            self.pos += 1;
        } else {
            self.digits()?;
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            self.digits()?;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            self.digits()?;
        }
        Ok(())
    }

    /// Decode a string value into `d` (cleared first); the cursor is on the opening quote.
    #[inline]
    fn decoded(&mut self, d: &mut DecodedString) -> PResult<()> {
        d.clear();
        self.pos += 1;
        d.raw_end = self.string_body(d)?;
        Ok(())
    }

    /// Decode a string value into `s` (reusing its buffer); the cursor is on the opening quote.
    fn text(&mut self, s: &mut String) -> PResult<()> {
        let mut v = std::mem::take(s).into_bytes();
        v.clear();
        self.pos += 1;
        let r = self.string_body(&mut v);
        *s = into_string(v);
        r.map(drop)
    }

    /// The `attrs` object; the cursor is on `{`. String members go to `attrs[*n..]` (reusing entries).
    fn attrs(&mut self, attrs: &mut Vec<(String, DecodedString)>, n: &mut usize) -> PResult<()> {
        self.pos += 1;
        self.ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            self.ws();
            if self.peek() != Some(b'"') {
                // not a key: this reports why
                return self.open_string();
            }
            if *n == attrs.len() {
                attrs.push(Default::default());
            }
            let (key, value) = &mut attrs[*n];
            self.text(key)?;
            self.colon()?;
            self.ws();
            if self.peek() == Some(b'"') {
                self.decoded(value)?;
                *n += 1;
            } else {
                self.skip_value(2)?;
            }
            if self.next_or_close(b'}')? {
                return Ok(());
            }
        }
    }

    /// The whole line.
    fn line(&mut self, out: &mut JsonFileLine, n_attrs: &mut usize) -> PResult<()> {
        if u32::try_from(self.raw.len()).is_err() {
            return self.fail(0, JsonLineErrorKind::TooLong);
        }
        self.blanks();
        match self.peek() {
            Some(b'{') => self.pos += 1,
            Some(_) => return self.fail(self.pos, JsonLineErrorKind::NotAnObject),
            None => return self.fail(0, JsonLineErrorKind::Empty),
        }
        let mut have_log = false;
        self.ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
        } else {
            loop {
                self.ws();
                let key_at = self.pos;
                let key = self.key()?;
                self.colon()?;
                self.ws();
                let is_string = self.peek() == Some(b'"');
                match key {
                    Key::Log => {
                        if have_log {
                            return self.fail(key_at, JsonLineErrorKind::DuplicateLog);
                        }
                        if !is_string {
                            return match self.peek() {
                                Some(_) => self.fail(self.pos, JsonLineErrorKind::ExpectedString),
                                None => self.fail(self.pos, JsonLineErrorKind::UnexpectedEnd),
                            };
                        }
                        self.decoded(&mut out.log)?;
                        have_log = true;
                    }
                    Key::Stream if is_string => {
                        self.pos += 1;
                        let mut s = ShortBuf::default();
                        self.string_body(&mut s)?;
                        out.stream = match s.get() {
                            Some(b"stdout") => Stream::Stdout,
                            Some(b"stderr") => Stream::Stderr,
                            _ => Stream::Other,
                        };
                    }
                    Key::Time if is_string => self.text(&mut out.time)?,
                    Key::Attrs if self.peek() == Some(b'{') => self.attrs(&mut out.attrs, n_attrs)?,
                    _ => self.skip_value(1)?,
                }
                if self.next_or_close(b'}')? {
                    break;
                }
            }
        }
        let close = self.pos - 1;
        self.blanks();
        if self.pos != self.raw.len() {
            return self.fail(self.pos, JsonLineErrorKind::TrailingData);
        }
        if !have_log {
            return self.fail(close, JsonLineErrorKind::MissingLog);
        }
        Ok(())
    }
}

/// Parse one line (without its trailing `\n`; a trailing `\r` is not allowed) into `out`.
///
/// Requires a JSON object with a string `log` field; other members may come in any order, unknown ones
/// (any JSON value) are validated and skipped. Spaces and tabs may surround the object. A second `log`
/// member is an error. Fast: no allocation in steady state when `out` is reused. On error `out` holds
/// whatever was decoded before the error.
pub fn parse_line(raw: &[u8], out: &mut JsonFileLine) -> Result<(), JsonLineError> {
    out.log.clear();
    out.stream = Stream::Other;
    out.time.clear();
    let mut n_attrs = 0;
    let r = Parser { raw, pos: 0 }.line(out, &mut n_attrs);
    out.attrs.truncate(n_attrs);
    r
}

/// Cheap format sniff: does this first line of a file look like a Docker json-file line (`{"log":` after
/// optional ASCII whitespace, or an object that parses with [`parse_line`])? One trailing `\n` is ignored.
pub fn looks_like_json_file(first_line: &[u8]) -> bool {
    let line = first_line.strip_suffix(b"\n").unwrap_or(first_line);
    let body = line.trim_ascii_start();
    if body.starts_with(b"{\"log\":") {
        return true;
    }
    body.first() == Some(&b'{') && parse_line(line, &mut JsonFileLine::default()).is_ok()
}

/// How [`encode_log_string`] treats a byte of valid UTF-8: 0 = copy, 1 = ASCII escape, 2 = maybe U+2028/9.
const ENCODE_CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 0x20 {
        t[b] = 1;
        b += 1;
    }
    t[b'"' as usize] = 1;
    t[b'\\' as usize] = 1;
    t[b'<' as usize] = 1;
    t[b'>' as usize] = 1;
    t[b'&' as usize] = 1;
    t[0xE2] = 2;
    t
};

/// Encode valid UTF-8 `s`.
fn encode_valid(s: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut copied = 0;
    let mut i = 0;
    while i < s.len() {
        let b = s[i];
        match ENCODE_CLASS[b as usize] {
            0 => i += 1,
            1 => {
                out.extend_from_slice(&s[copied..i]);
                match b {
                    b'"' => out.extend_from_slice(b"\\\""),
                    b'\\' => out.extend_from_slice(b"\\\\"),
                    b'\n' => out.extend_from_slice(b"\\n"),
                    b'\r' => out.extend_from_slice(b"\\r"),
                    // moby's json-file writer names only \" \\ \n \r; a tab is \u0009.
                    _ => out.extend_from_slice(&[
                        b'\\',
                        b'u',
                        b'0',
                        b'0',
                        HEX[usize::from(b >> 4)],
                        HEX[usize::from(b & 15)],
                    ]),
                }
                i += 1;
                copied = i;
            }
            _ => match s.get(i + 1..i + 3) {
                Some([0x80, last @ (0xA8 | 0xA9)]) => {
                    out.extend_from_slice(&s[copied..i]);
                    out.extend_from_slice(if *last == 0xA8 { b"\\u2028" } else { b"\\u2029" });
                    i += 3;
                    copied = i;
                }
                _ => i += 1,
            },
        }
    }
    out.extend_from_slice(&s[copied..]);
}

/// Docker's encoder for the `log` string content (without quotes): `\"` `\\` `\n` `\r`, every other
/// byte below 0x20 (a tab too) as `\u00xx`, `<` `>` `&` as `\u003c` `\u003e` `\u0026`, each byte that is not part of
/// valid UTF-8 as `\ufffd`, U+2028 / U+2029 as `\u2028` / `\u2029`; all other UTF-8 passes through raw.
pub fn encode_log_string(bytes: &[u8], out: &mut Vec<u8>) {
    out.reserve(bytes.len());
    let mut rest = bytes;
    loop {
        match std::str::from_utf8(rest) {
            Ok(_) => return encode_valid(rest, out),
            Err(e) => {
                let (valid, after) = rest.split_at(e.valid_up_to());
                encode_valid(valid, out);
                // Like Go's utf8.DecodeRune: every byte that does not start a valid sequence is one error.
                let bad = e.error_len().unwrap_or(after.len());
                for _ in 0..bad {
                    out.extend_from_slice(b"\\ufffd");
                }
                rest = &after[bad..];
            }
        }
    }
}

/// Build a complete json-file line as Docker writes it, including the trailing `\n`:
/// `{"log":"…","stream":"stdout","time":"…"}`, with `"attrs":{…}` between stream and time when `attrs`
/// is non-empty (in the given order; Docker sorts attribute keys). Every string goes through
/// [`encode_log_string`]. `log` is always written; `stream` is left out when empty, as Docker does.
pub fn encode_line(log: &[u8], stream: &str, attrs: &[(&str, &str)], time: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"log\":\"");
    encode_log_string(log, out);
    out.push(b'"');
    if !stream.is_empty() {
        out.extend_from_slice(b",\"stream\":\"");
        encode_log_string(stream.as_bytes(), out);
        out.push(b'"');
    }
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

/// Bytes that may replace raw bytes inside a JSON string without breaking it and keeping the length:
/// returns true for printable ASCII other than `"` and `\`.
pub fn is_safe_mask_byte(b: u8) -> bool {
    (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\'
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tiny deterministic xorshift64 generator.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }

        fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
            &items[self.below(items.len())]
        }
    }

    fn parse(raw: &[u8]) -> JsonFileLine {
        let mut l = JsonFileLine::default();
        if let Err(e) = parse_line(raw, &mut l) {
            panic!("{e} in {}", String::from_utf8_lossy(raw));
        }
        l
    }

    /// `encode_line` without its trailing newline.
    fn line_of(log: &[u8], stream: &str, attrs: &[(&str, &str)]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_line(log, stream, attrs, "2026-11-26T20:18:57.123456789Z", &mut out);
        assert_eq!(out.pop(), Some(b'\n'));
        out
    }

    /// Decode raw string content (no quotes) with `parse_line`.
    fn decode_content(content: &[u8]) -> Vec<u8> {
        let raw = [b"{\"log\":\"".as_slice(), content, b"\"}"].concat();
        parse(&raw).log.bytes
    }

    /// What Go's encoder + a decoder give for arbitrary bytes: each byte that does not start a valid
    /// UTF-8 sequence becomes U+FFFD (Go's utf8.DecodeRune), checked independently of the encoder.
    fn go_lossy(x: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < x.len() {
            match (1..=4).find(|&k| i + k <= x.len() && std::str::from_utf8(&x[i..i + k]).is_ok()) {
                Some(k) => {
                    out.extend_from_slice(&x[i..i + k]);
                    i += k;
                }
                None => {
                    out.extend_from_slice("\u{FFFD}".as_bytes());
                    i += 1;
                }
            }
        }
        out
    }

    /// Random bytes rich in everything the codec treats specially.
    fn random_bytes(rng: &mut Rng, max_len: usize) -> Vec<u8> {
        let n = rng.below(max_len + 1);
        let mut x = Vec::new();
        while x.len() < n {
            match rng.below(10) {
                0..=2 => x.push(b'a' + rng.below(26) as u8),
                3 => x.push(rng.below(0x80) as u8),
                4 => x.push(*rng.pick(b"\"\\<>&\n\r\t\x00\x1b\x7f /")),
                5 => x.push(0x80 + rng.below(0x80) as u8),
                6 => {
                    let c = *rng.pick(&['é', '€', '😀', '\u{2028}', '\u{2029}', '\u{FFFD}', '\u{10FFFF}', '中']);
                    x.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                }
                7 => {
                    // a truncated multi-byte sequence
                    let c = *rng.pick(&['€', '😀', '\u{2028}']);
                    let mut buf = [0; 4];
                    let enc = c.encode_utf8(&mut buf).as_bytes();
                    x.extend_from_slice(&enc[..1 + rng.below(enc.len() - 1)]);
                }
                8 => {
                    if let Some(c) = char::from_u32(rng.below(0x11_0000) as u32) {
                        x.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                    }
                }
                _ => {
                    const BAD: [&[u8]; 3] = [b"\xed\xa0\x80", b"\xc0\xaf", b"\xf4\x90\x80\x80"];
                    x.extend_from_slice(BAD[rng.below(BAD.len())]);
                }
            }
        }
        x
    }

    /// A random valid JSON string literal content using every escape form, and the text it denotes.
    fn random_json_content(rng: &mut Rng, max_parts: usize) -> (Vec<u8>, String) {
        let mut raw = Vec::new();
        let mut text = String::new();
        for _ in 0..rng.below(max_parts + 1) {
            match rng.below(9) {
                0 | 1 => {
                    let c = (b' ' + rng.below(95) as u8) as char;
                    if c != '"' && c != '\\' {
                        raw.push(c as u8);
                        text.push(c);
                    }
                }
                2 => {
                    let (e, c) = *rng.pick(&[
                        ("\\\"", '"'),
                        ("\\\\", '\\'),
                        ("\\/", '/'),
                        ("\\b", '\u{8}'),
                        ("\\f", '\u{c}'),
                        ("\\n", '\n'),
                        ("\\r", '\r'),
                        ("\\t", '\t'),
                    ]);
                    raw.extend_from_slice(e.as_bytes());
                    text.push(c);
                }
                3 | 4 => {
                    let cp = match rng.below(3) {
                        0 => rng.below(0x80) as u32,
                        1 => rng.below(0x800) as u32,
                        _ => rng.below(0x1_0000) as u32,
                    };
                    if let Some(c) = char::from_u32(cp) {
                        let e = if rng.below(2) == 0 {
                            format!("\\u{cp:04x}")
                        } else {
                            format!("\\u{cp:04X}")
                        };
                        raw.extend_from_slice(e.as_bytes());
                        text.push(c);
                    }
                }
                5 => {
                    let c = char::from_u32(0x1_0000 + rng.below(0x10_0000) as u32).unwrap();
                    let mut units = [0u16; 2];
                    let u = c.encode_utf16(&mut units);
                    raw.extend_from_slice(format!("\\u{:04x}\\u{:04X}", u[0], u[1]).as_bytes());
                    text.push(c);
                }
                6 => {
                    let c = *rng.pick(&['é', '€', '😀', '\u{2028}', '\u{7f}', '中', '\u{FFFD}']);
                    raw.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                    text.push(c);
                }
                _ => {
                    for _ in 0..rng.below(12) {
                        let c = (b'a' + rng.below(26) as u8) as char;
                        raw.push(c as u8);
                        text.push(c);
                    }
                }
            }
        }
        (raw, text)
    }

    /// Check `raw_range` on every decoded sub-range of `d` (from line `raw`).
    fn check_raw_ranges(raw: &[u8], d: &DecodedString) {
        let n = d.bytes.len();
        assert_eq!(d.starts.len(), n);
        assert_eq!(d.raw_range(0..n), d.raw_start()..d.raw_end);
        assert_eq!(raw[d.raw_end as usize], b'"');
        assert_eq!(raw[d.raw_start() as usize - 1], b'"');
        for a in 0..n {
            for b in a + 1..=n {
                let r = d.raw_range(a..b);
                assert!(d.raw_start() <= r.start && r.start < r.end && r.end <= d.raw_end);
                // the decoded bytes of the escapes and UTF-8 characters the range touches, whole
                let continues = |i: usize| i < n && d.bytes[i] & 0xc0 == 0x80;
                let (mut wa, mut wb) = (a, b);
                while wa > 0 && continues(wa) {
                    wa -= 1;
                }
                while continues(wb) {
                    wb += 1;
                }
                let (ca, cb) = (wa, wb);
                while wa > 0 && d.starts[wa - 1] == d.starts[ca] {
                    wa -= 1;
                }
                while wb < n && d.starts[wb] == d.starts[cb - 1] {
                    wb += 1;
                }
                let back = decode_content(&raw[r.start as usize..r.end as usize]);
                assert_eq!(back, &d.bytes[wa..wb], "range {a}..{b}");
                assert_eq!(d.raw_range(wa..wb), r);
                if (wa, wb) == (a, b) {
                    assert_eq!(back, &d.bytes[a..b]);
                }
            }
        }
        for i in 0..=n {
            let at = d.starts.get(i).copied().unwrap_or(d.raw_end);
            assert_eq!(d.raw_range(i..i), at..at);
        }
    }

    #[test]
    fn every_byte_value_round_trips() {
        for b in 0..=255u8 {
            let mut enc = Vec::new();
            encode_log_string(&[b], &mut enc);
            let expected: Vec<u8> = match b {
                b'"' => b"\\\"".to_vec(),
                b'\\' => b"\\\\".to_vec(),
                b'\n' => b"\\n".to_vec(),
                b'\r' => b"\\r".to_vec(),
                0..0x20 | b'<' | b'>' | b'&' => format!("\\u{:04x}", b).into_bytes(),
                0x20..0x80 => vec![b],
                _ => b"\\ufffd".to_vec(),
            };
            assert_eq!(enc, expected, "byte {b:#x}");
            let raw = line_of(&[b], "stdout", &[]);
            let l = parse(&raw);
            let want = if b < 0x80 {
                vec![b]
            } else {
                "\u{FFFD}".as_bytes().to_vec()
            };
            assert_eq!(l.log.bytes, want, "byte {b:#x}");
            let v: serde_json::Value = serde_json::from_slice(&raw).unwrap();
            assert_eq!(v["log"].as_str().unwrap().as_bytes(), want);
            check_raw_ranges(&raw, &l.log);
        }
        let all: Vec<u8> = (0..=255).collect();
        let raw = line_of(&all, "stdout", &[]);
        assert_eq!(parse(&raw).log.bytes, go_lossy(&all));
    }

    #[test]
    fn random_bytes_round_trip() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut l = JsonFileLine::default();
        for i in 0..4000 {
            let x = random_bytes(&mut rng, if i % 100 == 0 { 2000 } else { 48 });
            let tag = String::from_utf8_lossy(&random_bytes(&mut rng, 12)).into_owned();
            let raw = line_of(&x, "stderr", &[("tag", &tag)]);
            // the encoding is valid UTF-8 JSON without raw controls, `<>&` or raw U+2028/9
            let text = std::str::from_utf8(&raw).expect("encoding is UTF-8");
            assert!(!text.contains(|c: char| c < ' ' || "<>&\u{2028}\u{2029}".contains(c)));
            parse_line(&raw, &mut l).unwrap();
            assert_eq!(l.log.bytes, go_lossy(&x));
            if std::str::from_utf8(&x).is_ok() {
                assert_eq!(l.log.bytes, x);
            } else {
                assert!(raw.windows(6).any(|w| w == b"\\ufffd"));
            }
            assert_eq!(l.stream, Stream::Stderr);
            assert_eq!(l.time, "2026-11-26T20:18:57.123456789Z");
            assert_eq!(l.attrs.len(), 1);
            assert_eq!(
                (l.attrs[0].0.as_str(), l.attrs[0].1.bytes.as_slice()),
                ("tag", tag.as_bytes())
            );
            let v: serde_json::Value = serde_json::from_slice(&raw).unwrap();
            assert_eq!(v["log"].as_str().unwrap().as_bytes(), l.log.bytes);
            if x.len() <= 48 {
                check_raw_ranges(&raw, &l.log);
                check_raw_ranges(&raw, &l.attrs[0].1);
            }
        }
    }

    #[test]
    fn agrees_with_serde_json_on_every_escape_form() {
        let mut rng = Rng(7);
        for _ in 0..3000 {
            let (content, text) = random_json_content(&mut rng, 16);
            let raw = [
                b"{\"time\":\"t\",\"log\":\"".as_slice(),
                &content,
                b"\",\"stream\":\"stdout\"}",
            ]
            .concat();
            let l = parse(&raw);
            assert_eq!(l.log.bytes, text.as_bytes());
            let v: serde_json::Value = serde_json::from_slice(&raw).unwrap();
            assert_eq!(v["log"].as_str().unwrap(), text);
            check_raw_ranges(&raw, &l.log);
        }
    }

    #[test]
    fn unicode_escapes_surrogates_and_starts() {
        const FFFD: &[u8] = b"\xef\xbf\xbd";
        let cases: &[(&[u8], &[u8], &[u32])] = &[
            (br"\u003c", b"<", &[0]),
            (br"\u003C\u003e\u0026", b"<>&", &[0, 6, 12]),
            (br"\ufffd", FFFD, &[0, 0, 0]),
            (br"\u00e9x", b"\xc3\xa9x", &[0, 0, 6]),
            (br"\u0000", b"\0", &[0]),
            (br"\u2028", "\u{2028}".as_bytes(), &[0, 0, 0]),
            (br"\ud83d\ude00", "😀".as_bytes(), &[0, 0, 0, 0]),
            (br"\uD83D\uDE00!", "😀!".as_bytes(), &[0, 0, 0, 0, 12]),
            (br"\ud83d", FFFD, &[0, 0, 0]),
            (br"\ud83dx", b"\xef\xbf\xbdx", &[0, 0, 0, 6]),
            (br"\ud83d\u0041", b"\xef\xbf\xbdA", &[0, 0, 0, 6]),
            (br"\ud83d\n", b"\xef\xbf\xbd\n", &[0, 0, 0, 6]),
            (
                br"\ud83d\ud83d\ude00",
                b"\xef\xbf\xbd\xf0\x9f\x98\x80",
                &[0, 0, 0, 6, 6, 6, 6],
            ),
            (br"\ude00", FFFD, &[0, 0, 0]),
            (br"\ude00\ud83d", b"\xef\xbf\xbd\xef\xbf\xbd", &[0, 0, 0, 6, 6, 6]),
            (
                br#"\/\b\f\n\r\t\"\\"#,
                b"/\x08\x0c\n\r\t\"\\",
                &[0, 2, 4, 6, 8, 10, 12, 14],
            ),
            ("é€".as_bytes(), "é€".as_bytes(), &[0, 1, 2, 3, 4]),
            (b"\xff\xfe\x7f", b"\xff\xfe\x7f", &[0, 1, 2]),
            ("\u{2028}".as_bytes(), "\u{2028}".as_bytes(), &[0, 1, 2]),
            (b"", b"", &[]),
        ];
        for &(content, bytes, starts) in cases {
            let raw = [b"{\"log\":\"".as_slice(), content, b"\"}"].concat();
            let l = parse(&raw);
            let name = String::from_utf8_lossy(content);
            assert_eq!(l.log.bytes, bytes, "{name}");
            let rel: Vec<u32> = l.log.starts.iter().map(|s| s - 8).collect();
            assert_eq!(rel, starts, "{name}");
            assert_eq!(l.log.raw_start(), 8);
            assert_eq!(l.log.raw_end as usize, 8 + content.len());
            check_raw_ranges(&raw, &l.log);
        }
        // a range cutting the 4 bytes of a surrogate pair is widened to the whole 12-byte pair
        let raw = br#"{"log":"a\ud83d\ude00b"}"#;
        let l = parse(raw);
        for (a, b) in [(1, 2), (2, 4), (4, 5), (1, 5)] {
            let r = l.log.raw_range(a..b);
            assert_eq!(&raw[r.start as usize..r.end as usize], br"\ud83d\ude00");
        }
        assert_eq!(l.log.raw_range(0..2), 8..21);
    }

    #[test]
    fn encoder_matches_docker_byte_for_byte() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"plain text 123 ~\x7f", b"plain text 123 ~\x7f"),
            (
                b"<a href=\"x\">&amp;</a>",
                br#"\u003ca href=\"x\"\u003e\u0026amp;\u003c/a\u003e"#,
            ),
            (
                b"a\\b\n\r\t\x08\x0c\x00\x1b[0m",
                br"a\\b\n\r\u0009\u0008\u000c\u0000\u001b[0m",
            ),
            ("é€😀\u{FFFD}中".as_bytes(), "é€😀\u{FFFD}中".as_bytes()),
            ("x\u{2028}y\u{2029}z".as_bytes(), br"x\u2028y\u2029z"),
            (b"\xe2\x80\x41", br"\ufffd\ufffdA"),
            (b"\xed\xa0\x80", br"\ufffd\ufffd\ufffd"),
            (b"\xf4\x90\x80\x80", br"\ufffd\ufffd\ufffd\ufffd"),
            (b"\xc0\xaf", br"\ufffd\ufffd"),
            (b"ok\xf0\x9f\x98", br"ok\ufffd\ufffd\ufffd"),
            (b"\xff\xe2\x80\xa8", br"\ufffd\u2028"),
            (b"", b""),
        ];
        for &(input, want) in cases {
            let mut out = b"keep".to_vec();
            encode_log_string(input, &mut out);
            assert_eq!(&out[..4], b"keep");
            assert_eq!(
                String::from_utf8_lossy(&out[4..]),
                String::from_utf8_lossy(want),
                "{input:?}"
            );
        }
        let mut out = Vec::new();
        encode_line(b"hi <you>\n", "stdout", &[], "2026-11-26T20:18:57.123456789Z", &mut out);
        assert_eq!(
            out,
            b"{\"log\":\"hi \\u003cyou\\u003e\\n\",\"stream\":\"stdout\",\"time\":\"2026-11-26T20:18:57.123456789Z\"}\n"
        );
        out.clear();
        encode_line(b"x", "stderr", &[("a", "1"), ("tag", "q\"")], "T", &mut out);
        assert_eq!(
            out,
            b"{\"log\":\"x\",\"stream\":\"stderr\",\"attrs\":{\"a\":\"1\",\"tag\":\"q\\\"\"},\"time\":\"T\"}\n"
        );
        out.clear();
        encode_line(b"x", "", &[], "T", &mut out);
        assert_eq!(out, b"{\"log\":\"x\",\"time\":\"T\"}\n");
    }

    #[test]
    fn attrs_are_parsed_and_mapped() {
        let raw = line_of(b"msg\n", "stdout", &[("com.example.name", "v<1>"), ("tag", "sk-&x")]);
        let l = parse(&raw);
        assert_eq!(l.log.bytes, b"msg\n");
        assert_eq!(l.attrs.len(), 2);
        assert_eq!(l.attrs[0].0, "com.example.name");
        assert_eq!(l.attrs[0].1.bytes, b"v<1>");
        assert_eq!(l.attrs[1].0, "tag");
        assert_eq!(l.attrs[1].1.bytes, b"sk-&x");
        let r = l.attrs[1].1.raw_range(3..4);
        assert_eq!(&raw[r.start as usize..r.end as usize], br"\u0026");
        let r = l.attrs[0].1.raw_range(0..4);
        assert_eq!(&raw[r.start as usize..r.end as usize], br"v\u003c1\u003e");
        for (_, v) in &l.attrs {
            check_raw_ranges(&raw, v);
        }
        // non-string attribute values are skipped; escaped keys are decoded; empty and odd `attrs`
        let raw = br#"{"log":"a","attrs":{"n":1,"o":{"p":[true]},"k\u00e9y":"v\n","e":""}}"#;
        let l = parse(raw);
        let got: Vec<(&str, &[u8])> = l.attrs.iter().map(|(k, v)| (k.as_str(), v.bytes.as_slice())).collect();
        assert_eq!(got, [("kéy", b"v\n".as_slice()), ("e", b"")]);
        assert_eq!(l.attrs[1].1.raw_start(), l.attrs[1].1.raw_end);
        assert_eq!(raw[l.attrs[1].1.raw_end as usize - 1], b'"');
        assert!(parse(br#"{"log":"a","attrs":{}}"#).attrs.is_empty());
        assert!(parse(br#"{"log":"a","attrs":null}"#).attrs.is_empty());
        assert!(parse(br#"{"log":"a","attrs":["x"]}"#).attrs.is_empty());
        assert_eq!(
            parse(br#"{"attrs":{"a":"1"},"log":"a","attrs":{"b":"2"}}"#).attrs.len(),
            2
        );
    }

    #[test]
    fn keys_in_any_order_and_unknown_values_skipped() {
        let raw =
            br#" { "time" : "T" , "extra":{"a":[1,-2.5e+3,0,-0,1E9,0.001,{"b":null}],"c":true,"d":false,"e":"x\"}"},
            "attrs":{"tag":"sk\u0026x","n":3}, "x":[], "y":{}, "z":[[[]]], "stream":"stderr","\u006cog":"hi\n"	}	 "#;
        let l = parse(raw);
        assert_eq!(l.log.bytes, b"hi\n");
        assert!(!l.is_partial());
        assert_eq!(l.stream, Stream::Stderr);
        assert_eq!(l.time, "T");
        assert_eq!(l.attrs.len(), 1);
        assert_eq!(l.attrs[0].0, "tag");
        assert_eq!(l.attrs[0].1.bytes, b"sk&x");
        let r = l.log.raw_range(2..3);
        assert_eq!(&raw[r.start as usize..r.end as usize], br"\n");
        // missing or unknown stream and time
        let l = parse(br#"{"log":"x","stream":"stdin"}"#);
        assert_eq!((l.stream, l.time.as_str()), (Stream::Other, ""));
        assert_eq!(parse(br#"{"log":"x","stream":"stdoutx"}"#).stream, Stream::Other);
        assert_eq!(parse(br#"{"log":"x","stream":"std\u006fut"}"#).stream, Stream::Stdout);
        assert_eq!(parse(br#"{"log":"x","stream":7,"time":null}"#).stream, Stream::Other);
        assert_eq!(parse(br#"{"log":"x","logs":"y","Log":"z"}"#).log.bytes, b"x");
        assert_eq!(parse(b"{\"log\":\"x\",\"time\":\"\xff\"}").time, "\u{FFFD}");
    }

    #[test]
    fn docker_16k_parts() {
        let message: Vec<u8> = (0..40_000).map(|i| b'a' + (i % 26) as u8).collect();
        let mut full = message.clone();
        full.push(b'\n');
        let mut joined = Vec::new();
        let parts: Vec<&[u8]> = full.chunks(16384).collect();
        let mut l = JsonFileLine::default();
        for (i, part) in parts.iter().enumerate() {
            let raw = line_of(part, "stdout", &[]);
            parse_line(&raw, &mut l).unwrap();
            assert_eq!(l.is_partial(), i + 1 < parts.len());
            assert_eq!(l.log.bytes.len(), part.len());
            joined.extend_from_slice(&l.log.bytes);
        }
        assert_eq!(joined, full);
        let raw = line_of(&[b'x'; 16384], "stdout", &[]);
        assert!(parse(&raw).is_partial());
        assert!(parse(br#"{"log":""}"#).is_partial());
        assert!(!parse(br#"{"log":"\n"}"#).is_partial());
        assert!(parse(br#"{"log":"\\n"}"#).is_partial());
    }

    #[test]
    fn malformed_lines_give_errors_without_content() {
        use JsonLineErrorKind::*;
        let deep = format!(r#"{{"log":"SECRET","x":{}{}}}"#, "[".repeat(100), "]".repeat(100));
        let cases: &[(&[u8], JsonLineErrorKind, usize)] = &[
            (b"", Empty, 0),
            (b" \t ", Empty, 0),
            (b"SECRET plain text", NotAnObject, 0),
            (b"  [\"SECRET\"]", NotAnObject, 2),
            (b"\r{\"log\":\"SECRET\"}", NotAnObject, 0),
            (br#"{"log":"SECRET"#, UnexpectedEnd, 14),
            (br#"{"log":"SECRET""#, UnexpectedEnd, 15),
            (br#"{"log":"SECRET","#, UnexpectedEnd, 16),
            (br#"{"log":"SECRET\"#, UnexpectedEnd, 15),
            (br#"{"log""#, UnexpectedEnd, 6),
            (br#"{"log":"#, UnexpectedEnd, 7),
            (br#"{"#, UnexpectedEnd, 1),
            (br#"{"log":"SECRET\x"}"#, BadEscape, 14),
            (br#"{"log":"SECRET\u12"}"#, BadEscape, 14),
            (br#"{"log":"SECRET\u12"#, UnexpectedEnd, 18),
            (br#"{"log":"\ud83d\u12x"}"#, BadEscape, 14),
            (br#"{"log":"\ud83d\"#, UnexpectedEnd, 15),
            (br#"{"stream":"stdout","time":"SECRET"}"#, MissingLog, 34),
            (br#"{}"#, MissingLog, 1),
            (br#"{"log":"a"} SECRET"#, TrailingData, 12),
            (b"{\"log\":\"SECRET\"}\r", TrailingData, 16),
            (b"{\"log\":\"SECRET\"}\n", TrailingData, 16),
            (br#"{"log":"SECRET"}}"#, TrailingData, 16),
            (b"{\"log\":\"SECRET\x01\"}", ControlInString, 14),
            (b"{\"log\":\"SECRET\x1f\"}", ControlInString, 14),
            (b"{\"log\":\"a\",\"SE\nCRET\":1}", ControlInString, 14),
            (b"{\"log\":\"a\",\xff:1}", ExpectedString, 11),
            (b"{\"log\":\"a\",\"n\":\xffSECRET}", UnexpectedByte, 15),
            (b"{\"log\"\xff:\"a\"}", UnexpectedByte, 6),
            (br#"{"log":"a","n":SECRET}"#, UnexpectedByte, 15),
            (br#"{"log":"a","n":nope}"#, UnexpectedByte, 16),
            (br#"{"log":"a","n":tru"#, UnexpectedEnd, 18),
            (br#"{"log":"a","n":01}"#, UnexpectedByte, 16),
            (br#"{"log":"a","n":-}"#, UnexpectedByte, 16),
            (br#"{"log":"a","n":1.}"#, UnexpectedByte, 17),
            (br#"{"log":"a","n":1e}"#, UnexpectedByte, 17),
            (br#"{"log":"a","n":1e+}"#, UnexpectedByte, 18),
            (br#"{"log":"a","n":.5}"#, UnexpectedByte, 15),
            (br#"{"log":"a","n":+1}"#, UnexpectedByte, 15),
            (br#"{"log":"a","n":[1,]}"#, UnexpectedByte, 18),
            (br#"{"log":"a","n":[1 2]}"#, UnexpectedByte, 18),
            (br#"{"log":"a","n":{"x":1,}}"#, ExpectedString, 22),
            (br#"{"log":"a","n":{"x" 1}}"#, UnexpectedByte, 20),
            (br#"{"log":"a","n":{"x":1]}"#, UnexpectedByte, 21),
            (br#"{"log":"a" "stream":"SECRET"}"#, UnexpectedByte, 11),
            (br#"{"log":"a",}"#, ExpectedString, 11),
            (br#"{"log":123}"#, ExpectedString, 7),
            (br#"{"log":null}"#, ExpectedString, 7),
            (br#"{"log":"#, UnexpectedEnd, 7),
            (br#"{"log":"SECRET","log":"SECRET"}"#, DuplicateLog, 16),
            (br#"{"log":"SECRET","\u006cog":"b"}"#, DuplicateLog, 16),
            (br#"{log:"SECRET"}"#, ExpectedString, 1),
            (br#"{"log":"a","attrs":{"k":"SECRET",}}"#, ExpectedString, 33),
            (br#"{"log":"a","attrs":{"k":"SECRET""#, UnexpectedEnd, 32),
            (br#"{"log":"a","attrs":{"k" "SECRET"}}"#, UnexpectedByte, 24),
            (br#"{"log":"a","attrs":{"k":"SECRET\q"}}"#, BadEscape, 31),
            (br#"{"log":"a","time":"SECRET\q"}"#, BadEscape, 25),
            (br#"{"log":"a","stream":"SECRET\q"}"#, BadEscape, 27),
            (deep.as_bytes(), TooDeep, 83),
        ];
        for &(raw, kind, column) in cases {
            let name = String::from_utf8_lossy(raw);
            let mut l = JsonFileLine::default();
            let err = parse_line(raw, &mut l).unwrap_err();
            assert_eq!((err.kind, err.column), (kind, column), "{name}");
            // the message is made of the column and a fixed text only
            let msg = err.to_string();
            assert_eq!(msg, format!("malformed json-file line at byte {column}: {kind}"));
            assert!(!msg.contains("SECRET"), "{msg}");
        }
        // every proper prefix of a valid line is an error (and none panics)
        let raw =
            br#"{"log":"a\u00e9\ud83d\ude00\n","stream":"stdout","attrs":{"k":"v"},"x":[1,{"y":-2.5e3}],"time":"T"}"#;
        parse(raw);
        for n in 0..raw.len() {
            let err = parse_line(&raw[..n], &mut JsonFileLine::default()).unwrap_err();
            assert!(err.column <= n, "{n}: {err}");
        }
    }

    #[test]
    fn mutated_lines_never_panic_and_agree_with_serde_json() {
        let mut rng = Rng(0xDEAD_BEEF);
        let seeds: Vec<Vec<u8>> = vec![
            line_of(b"hello <world> \"q\" \\ \xe2\x82\xac \x01\n", "stdout", &[("tag", "a&b")]),
            br#"{"time":"T","x":{"a":[1,-2.5e+3,true,null,{"b":"c"}]},"log":"\ud83d\ude00\u00e9\/\t","stream":"stderr"}"#.to_vec(),
        ];
        let alphabet = b"{}[]\":,\\u0aefd19-.+eE ntrl\xff\x01";
        let mut l = JsonFileLine::default();
        let (mut ok, mut both) = (0, 0);
        for _ in 0..20_000 {
            let mut raw = rng.pick(&seeds).clone();
            for _ in 0..1 + rng.below(3) {
                let at = rng.below(raw.len() + 1);
                match rng.below(3) {
                    0 if at < raw.len() => {
                        raw.remove(at);
                    }
                    1 if at < raw.len() => raw[at] = *rng.pick(alphabet),
                    _ => raw.insert(at, *rng.pick(alphabet)),
                }
            }
            let ours = parse_line(&raw, &mut l);
            if let Err(e) = &ours {
                assert!(e.column <= raw.len());
            }
            let theirs = serde_json::from_slice::<serde_json::Value>(&raw).ok();
            let theirs_log = theirs
                .as_ref()
                .filter(|v| v.is_object())
                .and_then(|v| v["log"].as_str());
            match (&ours, theirs_log) {
                (Ok(()), Some(log)) => {
                    both += 1;
                    assert_eq!(l.log.bytes, log.as_bytes(), "{}", String::from_utf8_lossy(&raw));
                }
                (Ok(()), None) => ok += 1,
                (Err(e), Some(_)) => {
                    assert_eq!(
                        e.kind,
                        JsonLineErrorKind::DuplicateLog,
                        "{e}: {}",
                        String::from_utf8_lossy(&raw)
                    );
                }
                (Err(_), None) => {}
            }
        }
        assert!(both > 1000, "{both} {ok}");
    }

    #[test]
    fn sniff() {
        assert!(looks_like_json_file(br#"{"log":"x\n","stream":"stdout","time":"t"}"#));
        assert!(looks_like_json_file(
            b"{\"log\":\"x\\n\",\"stream\":\"stdout\",\"time\":\"t\"}\n"
        ));
        assert!(looks_like_json_file(br#"  {"log":"truncated by the read buffe"#));
        assert!(looks_like_json_file(br#"{"stream":"stdout","log":"x"}"#));
        assert!(looks_like_json_file(br#"{ "log" : "x" }"#));
        assert!(!looks_like_json_file(b"plain text"));
        assert!(!looks_like_json_file(b""));
        assert!(!looks_like_json_file(br#"{"level":30,"msg":"pino"}"#));
        assert!(!looks_like_json_file(br#"{"stream":"stdout","log":"trunc"#));
        assert!(!looks_like_json_file(br#"["log"]"#));
    }

    #[test]
    fn mask_bytes() {
        let safe: Vec<u8> = (0..=255).filter(|&b| is_safe_mask_byte(b)).collect();
        assert_eq!(safe.len(), 93);
        assert!(is_safe_mask_byte(b'*') && is_safe_mask_byte(b' ') && is_safe_mask_byte(b'~'));
        for b in [b'"', b'\\', b'\n', 0x7f, 0x80, 0xff, 0] {
            assert!(!is_safe_mask_byte(b));
        }
        // masking raw bytes with a safe byte keeps the line valid and the decoded length mapped
        let mut raw = line_of(b"token=sk-abcdef\n", "stdout", &[]);
        let l = parse(&raw);
        let r = l.log.raw_range(6..15);
        raw[r.start as usize..r.end as usize].fill(b'*');
        assert_eq!(parse(&raw).log.bytes, b"token=*********\n");
    }

    #[test]
    fn reuse_keeps_allocations() {
        let a = line_of(&[b'a'; 300], "stdout", &[("tag", "one"), ("name", "two")]);
        let b = line_of(&[b'b'; 200], "stderr", &[("tag", "1"), ("name", "2")]);
        let mut l = JsonFileLine::default();
        parse_line(&a, &mut l).unwrap();
        let ptrs = |l: &JsonFileLine| {
            (
                l.log.bytes.as_ptr(),
                l.log.starts.as_ptr(),
                l.time.as_ptr(),
                l.attrs.as_ptr(),
                l.attrs[1].0.as_ptr(),
                l.attrs[1].1.bytes.as_ptr(),
            )
        };
        let before = ptrs(&l);
        parse_line(&b, &mut l).unwrap();
        assert_eq!(ptrs(&l), before);
        assert_eq!(
            (l.log.bytes.len(), l.attrs[1].1.bytes.as_slice()),
            (200, b"2".as_slice())
        );
        // an error in between leaves nothing stale behind
        assert!(parse_line(br#"{"log":"x","attrs":{"k":"v"},"bad"}"#, &mut l).is_err());
        assert_eq!(l.attrs.len(), 1);
        parse_line(br#"{"log":"x"}"#, &mut l).unwrap();
        assert!(l.attrs.is_empty() && l.time.is_empty() && l.stream == Stream::Other);
    }

    /// Throughput of `parse_line` on a typical 300-byte line. Run with
    /// `cargo test --release --lib logs::jsonfile::tests::decode_throughput -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn decode_throughput() {
        let msg = b"2026-11-26T20:18:57.123Z INFO  [gateway] POST /v1/chat/completions 200 1234ms \
            model=gpt-4o user=u_8f3a9c session=7d1e2b4f tokens_in=812 tokens_out=233 \"upstream\": \
            \"api.example.com\" <ok> retry=0 cache=miss region=eu-west-1 trace=4bf92f3577b34da6a3ce929d0e0e4736\n";
        let mut l = JsonFileLine::default();
        let typical = line_of(msg, "stdout", &[]);
        let long = line_of(&msg.repeat(80)[..16384], "stdout", &[("tag", "openclaw-gateway")]);
        let mut typical_mbps = 0.0;
        for (name, raw, iters) in [("typical", &typical, 400_000), ("16 KiB part", &long, 10_000)] {
            for _ in 0..1000 {
                parse_line(std::hint::black_box(raw), &mut l).unwrap();
            }
            // best of several rounds: the machine may be shared
            let mut best = f64::MAX;
            for _ in 0..7 {
                let t = std::time::Instant::now();
                for _ in 0..iters {
                    parse_line(std::hint::black_box(raw), &mut l).unwrap();
                }
                best = best.min(t.elapsed().as_secs_f64());
            }
            let mbps = (raw.len() * iters) as f64 / best / 1e6;
            println!(
                "parse_line, {name} {}-byte line: {:.0} ns/line, {mbps:.0} MB/s",
                raw.len(),
                best * 1e9 / iters as f64
            );
            if name == "typical" {
                typical_mbps = mbps;
            }
        }
        parse_line(&typical, &mut l).unwrap();
        assert_eq!(l.log.bytes, msg);
        assert!(
            typical_mbps >= 500.0 || cfg!(debug_assertions),
            "{typical_mbps:.0} MB/s"
        );
    }
}
