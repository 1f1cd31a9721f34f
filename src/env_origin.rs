//! Where a configuration from the environment came from: which variables chose the protocol,
//! the endpoint, the tags and the rest, and which were set but ignored (`DD_AGENT_HOST`, set
//! in most pods that run Datadog APM, silently wins over `STATSD_HOST` otherwise).
//!
//! [`origin`] is a pure function over the same lookup closure as `env`; the builder logs the
//! record once, at `build`/`install` ([`EnvOrigin::log`]).

use crate::env::{EnvSettings, carries_port};
use crate::protocol::Protocol;

/// Which constructor read the environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// `from_env`: every family, which also picks the protocol.
    Detect,
    /// `dogstatsd_from_env`: the `DD_*` variables only.
    DogStatsd,
}

/// What a from-env builder chose, and from which variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EnvOrigin {
    pub(crate) protocol: Protocol,
    pub(crate) endpoint: String,
    /// The variables the endpoint came from; empty: the defaults.
    pub(crate) from: Vec<&'static str>,
    /// The variables the global tags came from.
    pub(crate) tags_from: Vec<&'static str>,
    /// The other variables read (protocol, prefix, cardinality, the off switch).
    pub(crate) also_from: Vec<&'static str>,
    /// Variables that are set but ignored, each with why: `STATSD_HOST (DD_AGENT_HOST wins)`.
    pub(crate) ignored: Vec<String>,
}

/// The variables of one family, endpoint first.
struct Names {
    url: &'static str,
    host: &'static str,
    port: &'static str,
    /// The family's other variables.
    rest: &'static [&'static str],
}

const STATSD: Names = Names {
    url: "STATSD_URL",
    host: "STATSD_HOST",
    port: "STATSD_PORT",
    rest: &["STATSD_PROTOCOL", "STATSD_PREFIX"],
};

const GRAPHITE: Names = Names {
    url: "GRAPHITE_URL",
    host: "GRAPHITE_HOST",
    port: "GRAPHITE_PORT",
    rest: &["GRAPHITE_PROTOCOL", "GRAPHITE_PREFIX"],
};

const DOGSTATSD: Names = Names {
    url: "DD_DOGSTATSD_URL",
    host: "DD_AGENT_HOST",
    port: "DD_DOGSTATSD_PORT",
    rest: &[
        "DD_TAGS",
        "DATADOG_TAGS",
        "DD_ENV",
        "DD_SERVICE",
        "DD_VERSION",
        "DD_ENTITY_ID",
        "DD_CARDINALITY",
        "DATADOG_CARDINALITY",
    ],
};

impl Names {
    fn all(&self) -> impl Iterator<Item = &'static str> + '_ {
        [self.url, self.host, self.port]
            .into_iter()
            .chain(self.rest.iter().copied())
    }
}

/// The record of `settings`, read by `scope` through `lookup`. Empty values count as unset,
/// as in `env`.
pub(crate) fn origin(
    scope: Scope,
    settings: &EnvSettings,
    lookup: impl Fn(&str) -> Option<String>,
) -> EnvOrigin {
    let get = |name: &str| {
        lookup(name)
            .filter(|v| !v.trim().is_empty())
            .map(|v| v.trim().to_owned())
    };
    let set = |name: &str| get(name).is_some();
    let mut record = EnvOrigin {
        protocol: settings.protocol,
        endpoint: settings.endpoint.0.clone(),
        from: Vec::new(),
        tags_from: Vec::new(),
        also_from: Vec::new(),
        ignored: Vec::new(),
    };
    let (own, others): (&Names, &[&Names]) = match settings.protocol {
        Protocol::DogStatsd => (&DOGSTATSD, &[&STATSD, &GRAPHITE]),
        Protocol::Graphite | Protocol::GraphitePickle => (&GRAPHITE, &[&STATSD, &DOGSTATSD]),
        Protocol::Statsd => (&STATSD, &[&GRAPHITE, &DOGSTATSD]),
    };
    // The endpoint: a URL wins over host and port; a host that carries a port wins over the
    // port variable.
    let mut ignore = |name: &str, why: &str| record.ignored.push(format!("{name} ({why})"));
    match settings.endpoint.1.as_ref().map(|(variable, _)| *variable) {
        Some(url) if url == own.url => {
            record.from.push(url);
            for name in [own.host, own.port].into_iter().filter(|n| set(n)) {
                ignore(name, &format!("{url} wins"));
            }
        }
        Some(host) if host == own.host => {
            record.from.push(host);
            if set(own.port) {
                let value = get(host).unwrap_or_default();
                if value.contains("://") || carries_port(&value) {
                    ignore(own.port, &format!("{host} carries a port"));
                } else {
                    record.from.push(own.port);
                }
            }
        }
        Some(port) => record.from.push(port),
        None => {}
    }
    if settings.protocol == Protocol::DogStatsd {
        let first =
            |a: &'static str, b: &'static str, record: &mut EnvOrigin| match (set(a), set(b)) {
                (true, also) => {
                    if also {
                        record.ignored.push(format!("{b} ({a} wins)"));
                    }
                    Some(a)
                }
                (false, true) => Some(b),
                (false, false) => None,
            };
        let tags = first("DD_TAGS", "DATADOG_TAGS", &mut record);
        record.tags_from.extend(tags);
        record.tags_from.extend(
            ["DD_ENV", "DD_SERVICE", "DD_VERSION", "DD_ENTITY_ID"]
                .into_iter()
                .filter(|n| set(n)),
        );
        let cardinality = first("DD_CARDINALITY", "DATADOG_CARDINALITY", &mut record);
        record.also_from.extend(cardinality);
    } else {
        record
            .also_from
            .extend(own.rest.iter().copied().filter(|n| set(n)));
    }
    if set(crate::env::ENABLED) {
        record.also_from.push(crate::env::ENABLED);
    }
    if scope == Scope::Detect {
        // Only a URL or host variable picks DogStatsD or Graphite, and it is the endpoint's.
        let winner = settings
            .endpoint
            .1
            .as_ref()
            .map_or("", |(variable, _)| *variable);
        for family in others {
            let why = if family.url == DOGSTATSD.url {
                "DogStatsD needs DD_AGENT_HOST or DD_DOGSTATSD_URL".to_owned()
            } else if settings.protocol == Protocol::Statsd {
                "Graphite needs GRAPHITE_HOST or GRAPHITE_URL".to_owned()
            } else {
                format!("{winner} wins")
            };
            for name in family.all().filter(|n| set(n)) {
                record.ignored.push(format!("{name} ({why})"));
            }
        }
    }
    record
}

impl EnvOrigin {
    /// `with_remote_address` replaced the environment's endpoint: the variables it came from
    /// are now ignored.
    pub(crate) fn endpoint_replaced(&mut self, endpoint: &str) {
        endpoint.clone_into(&mut self.endpoint);
        for name in self.from.drain(..) {
            self.ignored
                .push(format!("{name} (with_remote_address wins)"));
        }
        self.from.push("with_remote_address");
    }

    /// The one info line that says what was chosen and why.
    pub(crate) fn log(&self) {
        let list = |names: &[&str], empty: &str| {
            if names.is_empty() {
                empty.to_owned()
            } else {
                names.join(", ")
            }
        };
        let ignored: Vec<&str> = self.ignored.iter().map(String::as_str).collect();
        tracing::info!(
            protocol = protocol_name(self.protocol),
            endpoint = %self.endpoint,
            from = ?list(&self.from, "defaults"),
            tags_from = ?list(&self.tags_from, "none"),
            also_from = ?list(&self.also_from, "none"),
            ignored = ?list(&ignored, "none"),
            "metrics exporter configured from the environment"
        );
    }
}

fn protocol_name(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Statsd => "StatsD",
        Protocol::DogStatsd => "DogStatsD",
        Protocol::Graphite => "Graphite",
        Protocol::GraphitePickle => "Graphite pickle",
    }
}

#[cfg(test)]
#[path = "env_origin_tests.rs"]
mod tests;
