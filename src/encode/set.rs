//! Set lines: a set's distinct members of one interval, as each protocol carries them.
//!
//! Rules, each pinned by the exact-bytes table in the tests:
//! - StatsD and DogStatsD: one `name:member|s` line per member, followed by the series' tail
//!   as the other kinds have it (DogStatsD `|#tags` and `|c:<id>`, plain StatsD with
//!   DogStatsD-style tags); no `|T` timestamp and no `|@rate` (a set is never sampled). The
//!   server counts the distinct members itself, and merges what several hosts send;
//! - Graphite (plaintext and pickle): carbon cannot count members, so the set is one gauge
//!   point, `name <distinct members> <timestamp>`;
//! - members arrive sanitised (`sanitize::sanitized_member`) and deduped by the caller; a
//!   line longer than the payload limit on its own is dropped and counted like any other.
//!
//! Pure: no I/O, no clock.

use super::{EncodeTally, Encoder, FlushContext, PayloadWriter, Rendered, commit};

impl Encoder {
    /// Encodes one interval of the set rendered as `s`: its distinct `members`, in order.
    /// Out of line, like [`Encoder::histogram`].
    #[inline(never)]
    pub(crate) fn set(
        &self,
        s: &Rendered,
        members: &[String],
        cx: &FlushContext,
        w: &mut PayloadWriter,
        t: &mut EncodeTally,
    ) {
        match self {
            Self::Statsd(_) | Self::DogStatsd(_) => {
                for member in members {
                    let buf = w.line_buf();
                    buf.extend_from_slice(s.name());
                    buf.push(b':');
                    buf.extend_from_slice(member.as_bytes());
                    buf.extend_from_slice(b"|s");
                    buf.extend_from_slice(s.tail());
                    buf.push(b'\n');
                    commit(w, 1, 1, t);
                }
            }
            Self::Graphite(e) => {
                #[allow(
                    clippy::cast_precision_loss,
                    reason = "a member count is far below 2^53"
                )]
                let count = members.len() as f64;
                e.gauge(s, count, cx, w, t);
            }
        }
    }
}

#[cfg(test)]
#[path = "set_tests.rs"]
mod tests;
