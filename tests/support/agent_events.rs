//! How the Datadog Agent reads DogStatsD events and service checks, re-stated from its parser
//! (`parse_events.go` and `parse_service_checks.go` in `comp/dogstatsd/server/impl`) and not
//! from this crate's encoder, so tests and fuzz targets can check the encoder against it.
//!
//! - An event: the header up to the first `:` is `_e{<title bytes>,<text bytes>}` (an empty
//!   title is an error); the title and the text are cut from the rest by those byte lengths,
//!   and each `\n` (two characters) in them becomes a newline; what follows the text is split
//!   at `|` into fields read by prefix (`d:`, `h:`, `k:`, `p:`, `s:`, `t:`, `#`).
//! - A service check: split at every `|` after `_sc|`: the name (not empty), the status, then
//!   fields read by prefix (`d:`, `h:`, `#`, `m:`); nothing is unescaped.
//!
//! Include with `#[path = ".../tests/support/agent_events.rs"] mod agent_events;`.
#![allow(dead_code, reason = "each includer uses a different subset")]

/// What the Agent keeps of an event or a service check.
#[derive(Debug, PartialEq, Eq, Default)]
pub(crate) struct AgentView {
    /// The event's title, or the service check's name.
    pub(crate) title: String,
    /// The event's text, or the service check's status.
    pub(crate) text: String,
    /// The fields after them, by prefix (`d:`, `h:`..., `#` for tags), in order.
    pub(crate) fields: Vec<(String, String)>,
}

/// Splits a field into its prefix (`#`, or the two characters `x:`) and its value.
fn field(raw: &str) -> (String, String) {
    if let Some(tags) = raw.strip_prefix('#') {
        return ("#".to_owned(), tags.to_owned());
    }
    let cut = raw.char_indices().nth(2).map_or(raw.len(), |(i, _)| i);
    (raw[..cut].to_owned(), raw[cut..].to_owned())
}

/// The Agent's reading of an event line; `None` where the Agent rejects it.
pub(crate) fn parse_event(line: &[u8]) -> Option<AgentView> {
    let colon = line.iter().position(|&b| b == b':')?;
    let header = std::str::from_utf8(&line[..colon]).ok()?;
    let lengths = header.strip_prefix("_e{")?.strip_suffix('}')?;
    let (t, x) = lengths.split_once(',')?;
    let (t, x): (usize, usize) = (t.parse().ok()?, x.parse().ok()?);
    let body = &line[colon + 1..];
    if t == 0 || body.len() < t + 1 + x {
        return None;
    }
    let unescape = |b: &[u8]| {
        String::from_utf8(b.to_vec())
            .ok()
            .map(|s| s.replace("\\n", "\n"))
    };
    let mut view = AgentView {
        title: unescape(&body[..t])?,
        text: unescape(&body[t + 1..t + 1 + x])?,
        fields: Vec::new(),
    };
    // The Agent does not check the byte between title and text; we do, to catch a wrong
    // length that would still parse.
    if body[t] != b'|' {
        return None;
    }
    let rest = std::str::from_utf8(&body[t + 1 + x..]).ok()?;
    if !rest.is_empty() && !rest.starts_with('|') {
        return None;
    }
    view.fields = rest.split('|').skip(1).map(field).collect();
    Some(view)
}

/// The Agent's reading of a service check line; `None` where the Agent rejects it.
pub(crate) fn parse_service_check(line: &[u8]) -> Option<AgentView> {
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.strip_prefix("_sc|")?.split('|');
    let name = parts.next().filter(|n| !n.is_empty())?;
    let status = parts
        .next()
        .filter(|s| matches!(*s, "0" | "1" | "2" | "3"))?;
    Some(AgentView {
        title: name.to_owned(),
        text: status.to_owned(),
        fields: parts.map(field).collect(),
    })
}
