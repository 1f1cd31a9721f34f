//! DogStatsD events (`_e{..}`) and service checks (`_sc|..`): their own formats, from the
//! datagram-shell documentation (`protocols.md` A2), checked as the Agent reads them.

use crate::parse::{Bad, Kind, Parsed, series, tags};

/// `_e{<title bytes>,<text bytes>}:<title>|<text>[|field...]`.
pub(crate) fn event(line: &str) -> Result<Parsed, Bad> {
    let rest = &line[3..];
    let (lengths, rest) = rest
        .split_once("}:")
        .ok_or(Bad::Event("want `_e{title,text}:`"))?;
    let (title_len, text_len) = lengths
        .split_once(',')
        .and_then(|(a, b)| Some((a.parse::<usize>().ok()?, b.parse::<usize>().ok()?)))
        .ok_or(Bad::Event("lengths are not two numbers"))?;
    if title_len == 0 {
        return Err(Bad::Event("empty title"));
    }
    let (title, rest) = split_at_len(rest, title_len, "title")?;
    let rest = rest
        .strip_prefix('|')
        .ok_or(Bad::Event("title length does not match"))?;
    let (_text, rest) = split_at_len(rest, text_len, "text")?;
    if !(rest.is_empty() || rest.starts_with('|')) {
        return Err(Bad::Event("text length does not match"));
    }
    let mut sorted = Vec::new();
    for field in rest.split('|').skip(1) {
        let ok = match field.split_once(':') {
            _ if field.starts_with('#') => {
                sorted = tags(field)?;
                true
            }
            Some(("d", v)) => v.parse::<u64>().is_ok(),
            Some(("p", v)) => matches!(v, "normal" | "low"),
            Some(("t", v)) => matches!(v, "error" | "warning" | "info" | "success"),
            Some(("h" | "k" | "s" | "c" | "e" | "card", _)) => true,
            _ => false,
        };
        if !ok {
            return Err(Bad::UnknownField(field.into()));
        }
    }
    Ok(Parsed {
        kind: Kind::Event,
        series: series(title, "e", &sorted),
        values: 1,
    })
}

/// The first `len` bytes of `text` and the rest; `what` names the part in the error.
fn split_at_len<'a>(text: &'a str, len: usize, what: &str) -> Result<(&'a str, &'a str), Bad> {
    if text.len() < len {
        return Err(Bad::Event(if what == "title" {
            "title shorter than its length"
        } else {
            "text shorter than its length"
        }));
    }
    if !text.is_char_boundary(len) {
        return Err(Bad::Event(if what == "title" {
            "title length does not match"
        } else {
            "text length does not match"
        }));
    }
    Ok(text.split_at(len))
}

/// `_sc|<name>|<0..3>[|d:<ts>][|h:<host>][|#tags][|m:<message>]`, `m:` last.
pub(crate) fn service_check(line: &str) -> Result<Parsed, Bad> {
    let mut fields = line.split('|').skip(1);
    let name = fields.next().unwrap_or_default();
    if name.is_empty() {
        return Err(Bad::ServiceCheck("empty name"));
    }
    if !matches!(fields.next(), Some("0" | "1" | "2" | "3")) {
        return Err(Bad::ServiceCheck("status must be 0, 1, 2 or 3"));
    }
    let mut sorted = Vec::new();
    for field in fields {
        if field.starts_with('#') {
            sorted = tags(field)?;
        } else if field.starts_with("m:") {
            // The message runs to the end of the line.
            break;
        } else if let Some(ts) = field.strip_prefix("d:") {
            if ts.parse::<u64>().is_err() {
                return Err(Bad::Timestamp {
                    value: ts.into(),
                    why: "want whole unix seconds",
                });
            }
        } else if !["h:", "c:", "e:", "card:"]
            .iter()
            .any(|p| field.starts_with(p))
        {
            return Err(Bad::UnknownField(field.into()));
        }
    }
    Ok(Parsed {
        kind: Kind::ServiceCheck,
        series: series(name, "sc", &sorted),
        values: 1,
    })
}
