//! A strict, test-only Graphite plaintext parser, written from the protocol notes (carbon
//! `protocols.py`, Twisted's `LineOnlyReceiver`, graphite-web `docs/tags.rst` and its query
//! grammar), not from this crate's encoder.
//!
//! One line is `<path> <value> <timestamp>\n`. Carbon strips the line, splits it on whitespace
//! and wants exactly three fields; this parser is stricter, so it catches what carbon would
//! silently drop, misfile or read differently:
//!
//! - fields are separated by exactly one space, and nothing else is whitespace;
//! - a line is at most 16384 bytes without its newline (Twisted's `MAX_LENGTH`: a longer line
//!   makes carbon drop the connection);
//! - the path is `name` or a Graphite 1.1 tagged `name;tag=value;...`. The name is
//!   `.`-separated nodes, none empty (carbon#417), each printable ASCII without `/` (a
//!   directory), the query grammar's specials `( ) { } , ' " \ |`, the wildcards `* ? [ ]`,
//!   `;` `=` `!` `^` `~` or `:`. A tag key is non-empty ASCII without `; ! ^ =` or space; a tag
//!   value is non-empty printable ASCII without `;` and does not start with `~`; no key is
//!   given twice (carbon keeps one of them, so the other is lost) and `name` is reserved;
//! - the value is a plain finite decimal number (carbon drops NaN silently); the timestamp a
//!   non-negative integer of Unix seconds.
//!
//! Include with `#[path = ".../graphite_parser.rs"] mod graphite_parser;`.
#![allow(dead_code, reason = "each includer uses a different subset")]

/// Twisted `LineOnlyReceiver.MAX_LENGTH`, which carbon's line receiver keeps.
pub(crate) const MAX_LINE: usize = 16_384;

/// One parsed line.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Line {
    /// The name part of the path (before any `;`).
    pub(crate) name: String,
    /// The tags, in wire order.
    pub(crate) tags: Vec<(String, String)>,
    /// The value as written.
    pub(crate) value_text: String,
    pub(crate) value: f64,
    pub(crate) timestamp: u64,
}

/// Checks a path and splits it into its name and tags.
pub(crate) fn parse_path(path: &str) -> Result<(String, Vec<(String, String)>), String> {
    let mut parts = path.split(';');
    let name = parts.next().unwrap_or_default();
    if name.is_empty() {
        return Err(format!("empty name in path {path:?}"));
    }
    for node in name.split('.') {
        if node.is_empty() {
            return Err(format!("empty node in path {path:?}"));
        }
        if let Some(c) = node
            .chars()
            .find(|c| !c.is_ascii_graphic() || "/(){},'\"\\|*?[];=!^~:".contains(*c))
        {
            return Err(format!("node character {c:?} in path {path:?}"));
        }
    }
    let mut tags: Vec<(String, String)> = Vec::new();
    for tag in parts {
        let Some((key, value)) = tag.split_once('=') else {
            return Err(format!("tag {tag:?} without '=' in path {path:?}"));
        };
        if key.is_empty()
            || key
                .chars()
                .any(|c| !c.is_ascii_graphic() || ";!^=".contains(c))
        {
            return Err(format!("bad tag key {key:?} in path {path:?}"));
        }
        if key == "name" {
            return Err(format!("tag key 'name' is carbon's own, in path {path:?}"));
        }
        if value.is_empty()
            || value.starts_with('~')
            || value.chars().any(|c| !c.is_ascii_graphic() || c == ';')
        {
            return Err(format!("bad tag value {value:?} in path {path:?}"));
        }
        if tags.iter().any(|(k, _)| k == key) {
            return Err(format!("tag key {key:?} given twice in path {path:?}"));
        }
        tags.push((key.to_owned(), value.to_owned()));
    }
    Ok((name.to_owned(), tags))
}

/// Parses one line (without its newline).
pub(crate) fn parse_line(line: &str) -> Result<Line, String> {
    if line.len() > MAX_LINE {
        return Err(format!(
            "line of {} bytes, over carbon's {MAX_LINE}",
            line.len()
        ));
    }
    let fields: Vec<&str> = line.split(' ').collect();
    let [path, value_text, ts] = fields[..] else {
        return Err(format!("not three space-separated fields: {line:?}"));
    };
    if line.chars().any(|c| c.is_whitespace() && c != ' ') {
        return Err(format!("whitespace other than single spaces: {line:?}"));
    }
    let (name, tags) = parse_path(path)?;
    if !is_plain_number(value_text) {
        return Err(format!(
            "value {value_text:?} is not a plain number: {line:?}"
        ));
    }
    let value: f64 = value_text
        .parse()
        .map_err(|e| format!("value {value_text:?}: {e}"))?;
    if !value.is_finite() {
        return Err(format!("value {value_text:?} is not finite: {line:?}"));
    }
    if ts.is_empty() || !ts.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("timestamp {ts:?} is not an integer: {line:?}"));
    }
    let timestamp = ts.parse().map_err(|e| format!("timestamp {ts:?}: {e}"))?;
    Ok(Line {
        name,
        tags,
        value_text: value_text.to_owned(),
        value,
        timestamp,
    })
}

/// `-?\d+(\.\d+)?([eE][+-]?\d+)?`: what carbon's `float()` reads the same way as every other
/// receiver (no `nan`, `inf`, `+`, `_` or surrounding space).
fn is_plain_number(s: &str) -> bool {
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    let s = s.strip_prefix('-').unwrap_or(s);
    let (mantissa, exponent) = s
        .split_once(['e', 'E'])
        .map_or((s, None), |(m, e)| (m, Some(e)));
    let mantissa_ok = mantissa
        .split_once('.')
        .map_or(digits(mantissa), |(int, frac)| digits(int) && digits(frac));
    mantissa_ok && exponent.is_none_or(|e| digits(e.strip_prefix(['+', '-']).unwrap_or(e)))
}

/// Parses one payload: `stream` (TCP, Unix stream), every line ends with `\n`; otherwise (UDP)
/// lines are separated by `\n` with none after the last.
pub(crate) fn parse_payload(payload: &[u8], stream: bool) -> Result<Vec<Line>, String> {
    let text = std::str::from_utf8(payload).map_err(|e| format!("payload not UTF-8: {e}"))?;
    let body = if stream {
        text.strip_suffix('\n')
            .ok_or("stream payload without a final newline")?
    } else {
        text
    };
    body.split('\n')
        .map(|line| {
            if line.is_empty() {
                Err("empty line in payload".to_owned())
            } else {
                parse_line(line)
            }
        })
        .collect()
}

/// Checks the parser on a table of accepted and rejected lines. Call it from one test.
pub(crate) fn self_check() {
    let ok = parse_line("a.b-c_D.9 1.5 1700000000").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (ok.name.as_str(), ok.value, ok.timestamp),
        ("a.b-c_D.9", 1.5, 1_700_000_000)
    );
    let ok = parse_line("n;k=v;url.x:1=http://x/?a=b,c 0 0").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        ok.tags,
        vec![
            ("k".to_owned(), "v".to_owned()),
            ("url.x:1".to_owned(), "http://x/?a=b,c".to_owned())
        ]
    );
    let long = format!("{} 1 1", "a".repeat(MAX_LINE - 4));
    assert!(parse_line(&long).is_ok(), "exactly at the limit");
    let too_long = format!("{} 1 1", "a".repeat(MAX_LINE - 3));
    for line in [
        too_long.as_str(),
        "",
        "a 1",
        "a 1 1 1",
        "a  1 1",
        "a\t1 1",
        " a 1 1",
        "a b 1 1",
        "a..b 1 1",
        ".a 1 1",
        "a. 1 1",
        "a/b 1 1",
        "a(b) 1 1",
        "a* 1 1",
        "caf\u{e9} 1 1",
        "a=b 1 1",
        "a;k 1 1",
        "a;=v 1 1",
        "a;k= 1 1",
        "a;k=~v 1 1",
        "a;k=v;k=w 1 1",
        "a;name=x 1 1",
        "a;k!=v 1 1",
        "a;k=v\u{e9} 1 1",
        ";k=v 1 1",
        "a nan 1",
        "a inf 1",
        "a 1e400 1",
        "a +1 1",
        "a 1 -1",
        "a 1 1.5",
        "a 1 1\r",
    ] {
        assert!(parse_line(line).is_err(), "{line:?} must be rejected");
    }
    assert_eq!(
        parse_payload(b"a 1 1\nb 2 2\n", true).map(|l| l.len()),
        Ok(2)
    );
    assert_eq!(
        parse_payload(b"a 1 1\nb 2 2", false).map(|l| l.len()),
        Ok(2)
    );
    assert!(parse_payload(b"a 1 1", true).is_err());
    assert!(parse_payload(b"a 1 1\n", false).is_err());
    assert!(parse_payload(b"", false).is_err());
}
