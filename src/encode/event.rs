//! DogStatsD events and service checks: pure encoders into caller-owned buffers. The wire
//! rules, and what the Datadog Agent does with them, are stated once, for users, in the
//! crate docs' "DogStatsD events and service checks" section.

use metrics::{Key, Label};

use super::number::write_u64;
use super::sanitize::{push_dd_path, push_tag_key, push_tag_value};
use super::sanitized_tags;
use super::shared::write_dogstatsd_tags;
use crate::error::EncodeError;

/// How an event is listed in Datadog's event stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EventPriority {
    /// `p:normal`, the Agent's default.
    Normal,
    /// `p:low`.
    Low,
}

/// What kind of news an event is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AlertType {
    /// `t:error`.
    Error,
    /// `t:warning`.
    Warning,
    /// `t:info`, the Agent's default.
    Info,
    /// `t:success`.
    Success,
}

/// A DogStatsD event: a title, a text and optional fields, encoded by [`Event::encode`].
///
/// ```
/// use metrics_exporter_statsd_graphite::{AlertType, Event};
///
/// let event = Event::new("Deploy", "v1.2 is out\nall green")
///     .with_alert_type(AlertType::Success)
///     .with_tag("env", "prod");
/// let mut line = Vec::new();
/// event.encode(&mut line)?;
/// assert_eq!(line, b"_e{6,22}:Deploy|v1.2 is out\\nall green|t:success|#env:prod");
/// # Ok::<(), metrics_exporter_statsd_graphite::EncodeError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Event {
    /// The title; must not be empty.
    pub title: String,
    /// The text (may be empty).
    pub text: String,
    /// `d:`, Unix seconds; the Agent uses the time it received the event when there is none.
    pub timestamp: Option<u64>,
    /// `h:`, the host the event is about.
    pub hostname: Option<String>,
    /// `k:`, which groups events in Datadog's stream.
    pub aggregation_key: Option<String>,
    /// `p:`.
    pub priority: Option<EventPriority>,
    /// `s:`, the integration the event came from.
    pub source_type: Option<String>,
    /// `t:`.
    pub alert_type: Option<AlertType>,
    /// The event's tags (`#k:v,...`).
    pub tags: Vec<Label>,
}

impl Event {
    /// An event with `title` and `text` and no optional field.
    pub fn new(title: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            text: text.into(),
            timestamp: None,
            hostname: None,
            aggregation_key: None,
            priority: None,
            source_type: None,
            alert_type: None,
            tags: Vec::new(),
        }
    }

    /// Sets `d:`, in Unix seconds.
    #[must_use]
    pub fn with_timestamp(mut self, unix_secs: u64) -> Self {
        self.timestamp = Some(unix_secs);
        self
    }

    /// Sets `h:`.
    #[must_use]
    pub fn with_hostname(mut self, hostname: impl Into<String>) -> Self {
        self.hostname = Some(hostname.into());
        self
    }

    /// Sets `k:`.
    #[must_use]
    pub fn with_aggregation_key(mut self, key: impl Into<String>) -> Self {
        self.aggregation_key = Some(key.into());
        self
    }

    /// Sets `p:`.
    #[must_use]
    pub fn with_priority(mut self, priority: EventPriority) -> Self {
        self.priority = Some(priority);
        self
    }

    /// Sets `s:`.
    #[must_use]
    pub fn with_source_type(mut self, source: impl Into<String>) -> Self {
        self.source_type = Some(source.into());
        self
    }

    /// Sets `t:`.
    #[must_use]
    pub fn with_alert_type(mut self, alert: AlertType) -> Self {
        self.alert_type = Some(alert);
        self
    }

    /// Adds a tag (a later one of the same key wins, as with labels).
    #[must_use]
    pub fn with_tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.tags.push(Label::new(key.into(), value.into()));
        self
    }

    /// Appends the event's line, without a trailing newline, to `out`.
    ///
    /// # Errors
    /// [`EncodeError::EmptyTitle`] when the title is empty (`out` is then unchanged).
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        if self.title.is_empty() {
            return Err(EncodeError::EmptyTitle);
        }
        let (title, text) = (escaped_len(&self.title), escaped_len(&self.text));
        out.extend_from_slice(b"_e{");
        write_u64(out, title as u64);
        out.push(b',');
        write_u64(out, text as u64);
        out.extend_from_slice(b"}:");
        push_escaped(out, &self.title);
        out.push(b'|');
        push_escaped(out, &self.text);
        if let Some(ts) = self.timestamp {
            out.extend_from_slice(b"|d:");
            write_u64(out, ts);
        }
        push_field(out, b"|h:", self.hostname.as_deref());
        push_field(out, b"|k:", self.aggregation_key.as_deref());
        if let Some(p) = self.priority {
            out.extend_from_slice(match p {
                EventPriority::Normal => b"|p:normal",
                EventPriority::Low => b"|p:low",
            });
        }
        push_field(out, b"|s:", self.source_type.as_deref());
        if let Some(t) = self.alert_type {
            out.extend_from_slice(match t {
                AlertType::Error => &b"|t:error"[..],
                AlertType::Warning => b"|t:warning",
                AlertType::Info => b"|t:info",
                AlertType::Success => b"|t:success",
            });
        }
        push_tags(out, &self.tags);
        Ok(())
    }
}

/// A service check's status, as the Agent numbers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServiceCheckStatus {
    /// `0`.
    Ok,
    /// `1`.
    Warning,
    /// `2`.
    Critical,
    /// `3`.
    Unknown,
}

/// A DogStatsD service check: a name, a status and optional fields, encoded by
/// [`ServiceCheck::encode`].
///
/// ```
/// use metrics_exporter_statsd_graphite::{ServiceCheck, ServiceCheckStatus};
///
/// let check = ServiceCheck::new("db.reachable", ServiceCheckStatus::Critical)
///     .with_message("timeout | retrying");
/// let mut line = Vec::new();
/// check.encode(&mut line)?;
/// assert_eq!(line, "_sc|db.reachable|2|m:timeout ¦ retrying".as_bytes());
/// # Ok::<(), metrics_exporter_statsd_graphite::EncodeError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ServiceCheck {
    /// The check's name, sanitised like a DogStatsD metric name.
    pub name: String,
    /// Its status.
    pub status: ServiceCheckStatus,
    /// `d:`, Unix seconds.
    pub timestamp: Option<u64>,
    /// `h:`.
    pub hostname: Option<String>,
    /// The check's tags (`#k:v,...`).
    pub tags: Vec<Label>,
    /// `m:`, sent last.
    pub message: Option<String>,
}

impl ServiceCheck {
    /// A service check `name` with `status` and no optional field.
    pub fn new(name: impl Into<String>, status: ServiceCheckStatus) -> Self {
        Self {
            name: name.into(),
            status,
            timestamp: None,
            hostname: None,
            tags: Vec::new(),
            message: None,
        }
    }

    /// Sets `d:`, in Unix seconds.
    #[must_use]
    pub fn with_timestamp(mut self, unix_secs: u64) -> Self {
        self.timestamp = Some(unix_secs);
        self
    }

    /// Sets `h:`.
    #[must_use]
    pub fn with_hostname(mut self, hostname: impl Into<String>) -> Self {
        self.hostname = Some(hostname.into());
        self
    }

    /// Adds a tag (a later one of the same key wins, as with labels).
    #[must_use]
    pub fn with_tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.tags.push(Label::new(key.into(), value.into()));
        self
    }

    /// Sets `m:`.
    #[must_use]
    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = Some(message.into());
        self
    }

    /// Appends the service check's line, without a trailing newline, to `out`.
    ///
    /// # Errors
    /// [`EncodeError::EmptyName`] when the name has nothing usable left after sanitising
    /// (`out` is then unchanged).
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let mut name = Vec::new();
        if !push_dd_path(&mut name, &self.name) {
            return Err(EncodeError::EmptyName);
        }
        out.extend_from_slice(b"_sc|");
        out.extend_from_slice(&name);
        out.extend_from_slice(match self.status {
            ServiceCheckStatus::Ok => b"|0",
            ServiceCheckStatus::Warning => b"|1",
            ServiceCheckStatus::Critical => b"|2",
            ServiceCheckStatus::Unknown => b"|3",
        });
        if let Some(ts) = self.timestamp {
            out.extend_from_slice(b"|d:");
            write_u64(out, ts);
        }
        push_field(out, b"|h:", self.hostname.as_deref());
        push_tags(out, &self.tags);
        // An empty message is not sent, like any empty field.
        if let Some(message) = self.message.as_deref().filter(|m| !m.is_empty()) {
            out.extend_from_slice(b"|m:");
            for c in message.chars() {
                match c {
                    '\n' => out.extend_from_slice(b"\\n"),
                    '|' => out.extend_from_slice("\u{a6}".as_bytes()),
                    c => push_char(out, c),
                }
            }
        }
        Ok(())
    }
}

/// The length of `text` with each newline sent as the two characters `\n`.
fn escaped_len(text: &str) -> usize {
    text.len() + text.bytes().filter(|&b| b == b'\n').count()
}

/// Appends `text` with each newline as the two characters `\n`.
fn push_escaped(out: &mut Vec<u8>, text: &str) {
    for (i, part) in text.split('\n').enumerate() {
        if i > 0 {
            out.extend_from_slice(b"\\n");
        }
        out.extend_from_slice(part.as_bytes());
    }
}

/// Appends `prefix` and `value` with `|` and control characters as `_`, unless nothing is
/// left of it.
fn push_field(out: &mut Vec<u8>, prefix: &[u8], value: Option<&str>) {
    let Some(value) = value.filter(|v| !v.is_empty()) else {
        return;
    };
    out.extend_from_slice(prefix);
    for c in value.chars() {
        push_char(out, if c == '|' || c.is_control() { '_' } else { c });
    }
}

fn push_char(out: &mut Vec<u8>, c: char) {
    let mut buf = [0u8; 4];
    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
}

/// Appends `|#` and the tags, sanitised, de-duplicated and sorted as metrics' tags are.
fn push_tags(out: &mut Vec<u8>, tags: &[Label]) {
    if tags.is_empty() {
        return;
    }
    let key = Key::from_parts("", tags.to_vec());
    let tags = sanitized_tags(&[], &key, push_tag_key, push_tag_value);
    write_dogstatsd_tags(out, &tags);
}

#[cfg(test)]
#[path = "event_tests.rs"]
mod tests;
