//! Text from outside (archive entry names, container names and labels, rule ids, triage notes, file
//! paths found on disk) escaped for the output it goes to, so that it can neither rewrite the
//! operator's terminal nor run as a spreadsheet formula.
//!
//! - [`terminal`]: one line of a table or message. Every control character is shown as an escape:
//!   `\t`, `\n`, `\r`, other C0 characters and DEL as `\xHH` (`\x1b` for ESC), C1 characters
//!   (U+0080–U+009F) and the Unicode controls that reorder or break text (bidi embeddings,
//!   overrides and isolates, the bidi marks, the line and paragraph separators) as `\u{H…}`
//!   (`\u{202e}`): Rust's escape syntax. A backslash is left as it is: the escaped form is for
//!   reading, not for parsing back.
//! - [`terminal_lines`]: the same, but newlines and tabs are kept (multi-line messages).
//! - [`csv_cell`]: a cell of a CSV file (RFC 4180), with formulas neutralised as OWASP advises.
//! - [`slack`]: text of a chat message in Slack's `mrkdwn` (also read by Mattermost and others):
//!   `&`, `<` and `>` escaped as Slack documents, so that a name cannot become a link or a mention
//!   (`<!channel>`), and control characters as in [`terminal`].
//!
//! Text that needs no escaping is returned borrowed, without allocating. JSON output needs none of
//! this (serde escapes it) and the HTML report has its own escaper (`render::html::esc`).
use std::borrow::Cow;
use std::fmt::Write as _;
use std::path::Path;

/// Whether `c` is shown as an escape on a terminal (see the module documentation).
fn is_hostile(c: char) -> bool {
    matches!(c,
        '\0'..='\x1f' | '\x7f' | '\u{80}'..='\u{9f}'
        // Arabic letter mark, left-to-right and right-to-left marks.
        | '\u{61c}' | '\u{200e}' | '\u{200f}'
        // Line and paragraph separators.
        | '\u{2028}' | '\u{2029}'
        // Bidi embeddings and overrides (LRE, RLE, PDF, LRO, RLO), isolates (LRI, RLI, FSI, PDI).
        | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn escape_with(s: &str, keep: impl Fn(char) -> bool) -> Cow<'_, str> {
    let Some(first) = s.find(|c: char| is_hostile(c) && !keep(c)) else {
        return Cow::Borrowed(s);
    };
    let mut out = String::with_capacity(s.len() + 8);
    out.push_str(&s[..first]);
    for c in s[first..].chars() {
        if !is_hostile(c) || keep(c) {
            out.push(c);
            continue;
        }
        match c {
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\0'..='\x7f' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            _ => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
        }
    }
    Cow::Owned(out)
}

/// `s` for one line of a table or message: every control character escaped (see the module
/// documentation); borrowed when there is none.
pub fn terminal(s: &str) -> Cow<'_, str> {
    escape_with(s, |_| false)
}

/// `s` for a multi-line message: like [`terminal`], but newlines and tabs are kept.
pub fn terminal_lines(s: &str) -> Cow<'_, str> {
    escape_with(s, |c| c == '\n' || c == '\t')
}

/// A path for one line of a table or message: [`terminal`] of its text (bytes that are not UTF-8
/// are shown as U+FFFD).
pub fn terminal_path(p: &Path) -> Cow<'_, str> {
    match p.to_string_lossy() {
        Cow::Borrowed(s) => terminal(s),
        Cow::Owned(s) => Cow::Owned(terminal(&s).into_owned()),
    }
}

/// Whether a spreadsheet may read a cell starting with `c` as a formula: OWASP's `=`, `+`, `-`,
/// `@`, and their fullwidth forms (cheap to include, in case a spreadsheet's locale folds them).
fn starts_formula(c: char) -> bool {
    matches!(
        c,
        '=' | '+' | '-' | '@' | '\u{ff1d}' | '\u{ff0b}' | '\u{ff0d}' | '\u{ff20}'
    )
}

/// `s` made inert for a spreadsheet (OWASP, "CSV Injection"): a cell that starts with `=`, `+`,
/// `-`, `@`, a tab or a carriage return gets a single quote in front, so that it is read as text.
/// Spreadsheets may skip leading spaces and quotes before they look for a formula, so a cell whose
/// first character after those is a formula character gets the quote too. OWASP's other concern,
/// separators and quotes inside the text opening a new cell, is [`csv_cell`]'s quoting.
pub fn csv_formula(s: &str) -> Cow<'_, str> {
    let starts_tab_or_cr = s.starts_with(['\t', '\r']);
    let after_padding = s.trim_start_matches(|c: char| c.is_whitespace() || c == '"' || c == '\'');
    if starts_tab_or_cr || after_padding.starts_with(starts_formula) {
        Cow::Owned(format!("'{s}"))
    } else {
        Cow::Borrowed(s)
    }
}

/// `s` for the text of a Slack-style message: control characters as in [`terminal`], then `&`,
/// `<` and `>` as `&amp;`, `&lt;` and `&gt;` (Slack's own escaping: the only characters its
/// `mrkdwn` gives a meaning that can link or notify); borrowed when there is none.
pub fn slack(s: &str) -> Cow<'_, str> {
    let shown = terminal(s);
    if !shown.contains(['&', '<', '>']) {
        return shown;
    }
    Cow::Owned(shown.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;"))
}

/// One cell of a CSV file (RFC 4180) holding text from outside: a formula neutralised
/// ([`csv_formula`]), control characters escaped as in [`terminal`] (the file is read by people, in
/// a spreadsheet or on a terminal), then quoted when it holds a comma, a semicolon (the separator
/// of spreadsheets in many locales), a quote, or starts or ends with a space; quotes are doubled.
/// Numbers sidecar computes (counts) need none of this.
pub fn csv_cell(s: &str) -> Cow<'_, str> {
    let neutral = csv_formula(s);
    let shown: Cow<'_, str> = match neutral {
        Cow::Borrowed(b) => terminal(b),
        Cow::Owned(o) => Cow::Owned(terminal(&o).into_owned()),
    };
    let needs_quotes = shown.contains([',', ';', '"']) || shown.starts_with(' ') || shown.ends_with(' ');
    if needs_quotes {
        Cow::Owned(format!("\"{}\"", shown.replace('"', "\"\"")))
    } else {
        shown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    macro_rules! case {
        ($f:ident, $input:expr, $want:expr) => {
            assert_eq!($f($input), $want, "{}({:?})", stringify!($f), $input);
        };
    }

    #[test]
    fn terminal_escapes_every_control_character() {
        case!(terminal, "a\x1bb", "a\\x1bb");
        case!(terminal, "\x1b[2J\x1b]0;title\x07", "\\x1b[2J\\x1b]0;title\\x07");
        case!(terminal, "tab\there\r\nnext", "tab\\there\\r\\nnext");
        case!(terminal, "nul\0 del\x7f", "nul\\x00 del\\x7f");
        case!(terminal, "c1 csi \u{9b}2J", "c1 csi \\u{9b}2J");
        case!(terminal, "\u{80}\u{9f}", "\\u{80}\\u{9f}");
        case!(terminal, "evil\u{202e}gpj.exe", "evil\\u{202e}gpj.exe");
        case!(terminal, "\u{2066}x\u{2069}", "\\u{2066}x\\u{2069}");
        case!(terminal, "\u{200f}\u{61c}\u{2028}", "\\u{200f}\\u{61c}\\u{2028}");
    }

    #[test]
    fn plain_text_is_unchanged_and_not_copied() {
        for s in [
            "",
            "openclaw-gateway",
            "logs/a b.log:3",
            "ghp_****… (40 chars)",
            "naïve 日本 ✓",
            "back\\slash",
        ] {
            assert!(matches!(terminal(s), Cow::Borrowed(b) if b == s), "{s:?}");
            assert!(matches!(terminal_lines(s), Cow::Borrowed(b) if b == s), "{s:?}");
            assert!(matches!(csv_formula(s), Cow::Borrowed(b) if b == s), "{s:?}");
        }
        assert!(matches!(csv_cell("openclaw"), Cow::Borrowed("openclaw")));
    }

    #[test]
    fn terminal_lines_keeps_newlines_and_tabs_only() {
        case!(terminal_lines, "line 1\n\tline 2", "line 1\n\tline 2");
        case!(terminal_lines, "a\x1b[2Jb\rc\u{202e}", "a\\x1b[2Jb\\rc\\u{202e}");
    }

    #[test]
    fn paths_are_escaped_too() {
        use std::os::unix::ffi::OsStrExt;
        assert_eq!(terminal_path(Path::new("/data/x\x1b[2J.txt")), "/data/x\\x1b[2J.txt");
        let raw = std::ffi::OsStr::from_bytes(b"/data/\xff\x1b");
        assert_eq!(terminal_path(Path::new(raw)), "/data/\u{fffd}\\x1b");
        assert!(matches!(
            terminal_path(Path::new("/data/ok")),
            Cow::Borrowed("/data/ok")
        ));
    }

    #[test]
    fn formulas_get_a_quote_in_front() {
        case!(csv_formula, "=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0");
        case!(csv_formula, "+1", "'+1");
        case!(csv_formula, "-1", "'-1");
        case!(csv_formula, "@SUM(A1:A9)", "'@SUM(A1:A9)");
        case!(csv_formula, "\tx", "'\tx");
        case!(csv_formula, "\rx", "'\rx");
        case!(csv_formula, "  =1+1", "'  =1+1");
        case!(csv_formula, "\"=1+1", "'\"=1+1");
        case!(csv_formula, "'=1+1", "''=1+1");
        case!(csv_formula, "\u{ff1d}1+1", "'\u{ff1d}1+1");
        case!(csv_formula, "a=b", "a=b");
        case!(csv_formula, "key-1", "key-1");
    }

    #[test]
    fn csv_cells_are_neutralised_escaped_and_quoted() {
        case!(csv_cell, "=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0");
        case!(
            csv_cell,
            "=HYPERLINK(\"http://x\",\"y\")",
            "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\""
        );
        case!(csv_cell, "a,b", "\"a,b\"");
        case!(csv_cell, "a;=1+1", "\"a;=1+1\"");
        case!(csv_cell, " padded", "\" padded\"");
        case!(csv_cell, "\tx", "'\\tx");
        case!(csv_cell, "x\x1b[2J\ny", "x\\x1b[2J\\ny");
        case!(csv_cell, "-1", "'-1");
    }

    #[test]
    fn slack_text_cannot_link_or_notify() {
        assert!(matches!(slack("gateway-1"), Cow::Borrowed(_)));
        assert_eq!(
            slack("<!channel> & <https://x|y>"),
            "&lt;!channel&gt; &amp; &lt;https://x|y&gt;"
        );
        assert_eq!(slack("a\x1b[2Jb"), "a\\x1b[2Jb");
    }
}
