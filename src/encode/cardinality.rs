//! [`Cardinality`]: DogStatsD's tag cardinality levels, as sent in `|card:` and read from
//! `DD_CARDINALITY`.

/// DogStatsD tag cardinality, `|card:<level>` (see the crate docs'
/// [DogStatsD](crate#dogstatsd) section): how many of the tags the
/// Agent adds from origin detection go on the metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Cardinality {
    /// `none`.
    None,
    /// `low`.
    Low,
    /// `orchestrator`.
    Orchestrator,
    /// `high`.
    High,
}

impl Cardinality {
    /// The level as sent: `none`, `low`, `orchestrator` or `high`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Low => "low",
            Self::Orchestrator => "orchestrator",
            Self::High => "high",
        }
    }

    /// Parses a level as the official clients read `DD_CARDINALITY`: one of the four names,
    /// in any case.
    pub fn parse(text: &str) -> Option<Self> {
        [Self::None, Self::Low, Self::Orchestrator, Self::High]
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(text))
    }
}
