//! A `tracing` subscriber that keeps every event (level and fields as `name=value; ` pairs,
//! the message first), for tests that check what the exporter logs. Shared by the
//! integration tests and, through `#[path]`, by unit tests under `src/`.
#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// One captured event.
#[derive(Debug, Clone)]
pub(crate) struct Captured {
    pub(crate) level: Level,
    pub(crate) text: String,
}

/// Captures every event, at every level, from every thread it is the subscriber of.
#[derive(Debug, Clone, Default)]
pub(crate) struct Capture(Arc<Mutex<Vec<Captured>>>);

impl Capture {
    /// Takes the events captured so far.
    pub(crate) fn take(&self) -> Vec<Captured> {
        std::mem::take(&mut *self.events())
    }

    /// The events captured so far, left in place.
    pub(crate) fn all(&self) -> Vec<Captured> {
        self.events().clone()
    }

    /// The texts of the events at `level`.
    pub(crate) fn at(&self, level: Level) -> Vec<String> {
        self.events()
            .iter()
            .filter(|e| e.level == level)
            .map(|e| e.text.clone())
            .collect()
    }

    /// How many events at `level` contain `text`.
    pub(crate) fn count(&self, level: Level, text: &str) -> usize {
        self.events()
            .iter()
            .filter(|e| e.level == level && e.text.contains(text))
            .count()
    }

    /// A test that panicked while holding the lock must not hide the events from the next.
    fn events(&self) -> std::sync::MutexGuard<'_, Vec<Captured>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Events at INFO or above (WARN, ERROR): the ones a default log configuration shows.
pub(crate) fn shown(events: &[Captured]) -> Vec<&Captured> {
    events.iter().filter(|e| e.level <= Level::INFO).collect()
}

/// Formats an event's fields.
struct Fields(String);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        // `message` is a `format_args!`, whose Debug is the formatted text.
        let _ = write!(self.0, "{}={value:?}; ", field.name());
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut fields = Fields(String::new());
        event.record(&mut fields);
        self.events().push(Captured {
            level: *event.metadata().level(),
            text: fields.0,
        });
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}
