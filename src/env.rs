//! Configuration from the environment: the DogStatsD variables as the official Datadog
//! clients read them, and `STATSD_*` / `GRAPHITE_*` as StatsD and Graphite clients do.
//!
//! Pure functions over a lookup closure (`std::env::var` in production, a table in tests), so
//! precedence rules are tested without touching the process environment.
//!
//! Which variables are read, what each one sets, their defaults and how [`detect`] picks the
//! protocol are documented once, in the crate docs' "Configuration reference" (`src/lib.rs`);
//! this module implements that table, and a change to one is a change to the other.

use metrics::Label;

use crate::encode::{Cardinality, sanitize_external};
use crate::protocol::Protocol;

/// A variable that is set but unusable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EnvError {
    pub(crate) variable: &'static str,
    pub(crate) value: String,
    pub(crate) reason: &'static str,
}

impl EnvError {
    /// Whether the variable names the endpoint (a URL, host or port), which
    /// `with_remote_address` replaces.
    pub(crate) fn is_endpoint(&self) -> bool {
        ["_URL", "_HOST", "_PORT"]
            .iter()
            .any(|suffix| self.variable.ends_with(suffix))
    }
}

/// The endpoint, and the variable and raw value it came from (`None`: the default).
pub(crate) type EnvEndpoint = (String, Option<(&'static str, String)>);

/// What the environment says about a DogStatsD exporter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DogStatsdEnv {
    pub(crate) endpoint: EnvEndpoint,
    pub(crate) labels: Vec<Label>,
    /// `DD_CARDINALITY`, or else `DATADOG_CARDINALITY`, as datadog-go reads them.
    pub(crate) cardinality: Option<Cardinality>,
    /// Every variable that is set but unusable, in reading order.
    pub(crate) errors: Vec<EnvError>,
}

/// Reads the DogStatsD variables through `lookup`. Empty values count as unset.
pub(crate) fn dogstatsd(lookup: impl Fn(&str) -> Option<String>) -> DogStatsdEnv {
    let get = |name: &str| {
        lookup(name)
            .filter(|v| !v.trim().is_empty())
            .map(|v| v.trim().to_owned())
    };
    let raw = |name: &'static str| Some((name, lookup(name).unwrap_or_default()));
    let mut errors = Vec::new();
    let mut port = || match get("DD_DOGSTATSD_PORT") {
        None => 8125,
        Some(p) => p.parse::<u16>().ok().filter(|p| *p > 0).unwrap_or_else(|| {
            errors.push(EnvError {
                variable: "DD_DOGSTATSD_PORT",
                value: lookup("DD_DOGSTATSD_PORT").unwrap_or_default(),
                reason: "not a port number (1-65535)",
            });
            8125
        }),
    };
    let endpoint = if let Some(url) = get("DD_DOGSTATSD_URL") {
        (url, raw("DD_DOGSTATSD_URL"))
    } else if let Some(host) = get("DD_AGENT_HOST") {
        let url = if host.contains("://") || carries_port(&host) {
            // A URL, or `host:port` (the official clients add the port only when none is
            // given).
            host
        } else if host.contains(':') && !host.starts_with('[') {
            format!("udp://[{host}]:{}", port())
        } else {
            format!("udp://{host}:{}", port())
        };
        (url, raw("DD_AGENT_HOST"))
    } else if get("DD_DOGSTATSD_PORT").is_some() {
        (
            format!("udp://127.0.0.1:{}", port()),
            raw("DD_DOGSTATSD_PORT"),
        )
    } else {
        ("udp://127.0.0.1:8125".to_owned(), None)
    };
    // `DD_TAGS` (else `DATADOG_TAGS`) first: a unified service tag set by its own variable
    // wins over the same key there (the later label wins).
    let mut labels: Vec<Label> = ["DD_TAGS", "DATADOG_TAGS"]
        .into_iter()
        .find_map(&get)
        .map(|tags| dd_tags(&tags))
        .unwrap_or_default();
    labels.extend(
        [
            ("DD_ENV", "env"),
            ("DD_SERVICE", "service"),
            ("DD_VERSION", "version"),
            ("DD_ENTITY_ID", "dd.internal.entity_id"),
        ]
        .into_iter()
        .filter_map(|(var, tag)| get(var).map(|v| Label::new(tag, v))),
    );
    // datadog-go reads `DATADOG_CARDINALITY` when `DD_CARDINALITY` is unset (or invalid: we
    // refuse an invalid value instead of ignoring it).
    let cardinality = ["DD_CARDINALITY", "DATADOG_CARDINALITY"]
        .into_iter()
        .find_map(|variable| get(variable).map(|value| (variable, value)))
        .and_then(|(variable, value)| {
            let parsed = Cardinality::parse(&value);
            if parsed.is_none() {
                errors.push(EnvError {
                    variable,
                    value: lookup(variable).unwrap_or(value),
                    reason: "not a tag cardinality (none, low, orchestrator or high)",
                });
            }
            parsed
        });
    DogStatsdEnv {
        endpoint,
        labels,
        cardinality,
        errors,
    }
}

/// Whether a host variable's value carries its own port: `host:port` (one `:`) or
/// `[v6]:port`. The official Datadog clients add `DD_DOGSTATSD_PORT` only when none is given.
pub(crate) fn carries_port(host: &str) -> bool {
    host.matches(':').count() == 1 || host.starts_with('[') && host.contains("]:")
}

/// The global tags of a `DD_TAGS` value, as Datadog's clients and Agent read it: separated
/// by commas if it has any, else by whitespace; each `key:value` (split at the first `:`) or
/// a bare `tag` (an empty value); empty entries skipped.
fn dd_tags(value: &str) -> Vec<Label> {
    let entries: Vec<&str> = if value.contains(',') {
        value.split(',').collect()
    } else {
        value.split_whitespace().collect()
    };
    entries
        .into_iter()
        .map(str::trim)
        .filter(|tag| !tag.is_empty())
        .map(|tag| {
            let (k, v) = tag.split_once(':').unwrap_or((tag, ""));
            Label::new(k.to_owned(), v.to_owned())
        })
        .collect()
}

/// What the environment asks for, whichever protocol it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EnvSettings {
    pub(crate) protocol: Protocol,
    pub(crate) endpoint: EnvEndpoint,
    pub(crate) prefix: Option<String>,
    pub(crate) labels: Vec<Label>,
    /// DogStatsD's default tag cardinality.
    pub(crate) cardinality: Option<Cardinality>,
    /// `STATSD_ENABLED`: `None` when unset (enabled).
    pub(crate) enabled: Option<bool>,
    /// Every variable that is set but unusable, in reading order.
    pub(crate) errors: Vec<EnvError>,
}

impl From<DogStatsdEnv> for EnvSettings {
    fn from(dd: DogStatsdEnv) -> Self {
        Self {
            protocol: Protocol::DogStatsd,
            endpoint: dd.endpoint,
            prefix: None,
            labels: dd.labels,
            cardinality: dd.cardinality,
            enabled: None,
            errors: dd.errors,
        }
    }
}

/// The variable names of one plain-protocol family.
struct Family {
    url: &'static str,
    host: &'static str,
    port: &'static str,
    protocol: &'static str,
    prefix: &'static str,
}

const STATSD: Family = Family {
    url: "STATSD_URL",
    host: "STATSD_HOST",
    port: "STATSD_PORT",
    protocol: "STATSD_PROTOCOL",
    prefix: "STATSD_PREFIX",
};

const GRAPHITE: Family = Family {
    url: "GRAPHITE_URL",
    host: "GRAPHITE_HOST",
    port: "GRAPHITE_PORT",
    protocol: "GRAPHITE_PROTOCOL",
    prefix: "GRAPHITE_PREFIX",
};

/// Reads every supported variable through `lookup` and decides the protocol, as the crate
/// docs' "Configuration reference" describes. Empty values count as unset.
pub(crate) fn detect(lookup: impl Fn(&str) -> Option<String>) -> EnvSettings {
    let set = |name: &str| lookup(name).is_some_and(|v| !v.trim().is_empty());
    let settings = if set("DD_DOGSTATSD_URL") || set("DD_AGENT_HOST") {
        dogstatsd(&lookup).into()
    } else if set(GRAPHITE.url) || set(GRAPHITE.host) {
        plain(&GRAPHITE, &lookup)
    } else {
        plain(&STATSD, &lookup)
    };
    with_switch(settings, lookup)
}

/// The DogStatsD variables only (see [`dogstatsd`]), and the off switch.
pub(crate) fn dogstatsd_settings(lookup: impl Fn(&str) -> Option<String>) -> EnvSettings {
    with_switch(dogstatsd(&lookup).into(), lookup)
}

/// The off switch every from-env constructor reads.
pub(crate) const ENABLED: &str = "STATSD_ENABLED";

/// `settings` with [`ENABLED`] read: `false`, `0`, `no`, `off` disable and `true`, `1`,
/// `yes`, `on` enable (in any case); anything else is an error.
fn with_switch(mut settings: EnvSettings, lookup: impl Fn(&str) -> Option<String>) -> EnvSettings {
    match switch(lookup) {
        Ok(enabled) => settings.enabled = enabled,
        Err(error) => settings.errors.push(error),
    }
    settings
}

/// [`ENABLED`] parsed; `None` when unset or empty.
pub(crate) fn switch(lookup: impl Fn(&str) -> Option<String>) -> Result<Option<bool>, EnvError> {
    let Some(value) = lookup(ENABLED).filter(|v| !v.trim().is_empty()) else {
        return Ok(None);
    };
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(Some(true)),
        "false" | "0" | "no" | "off" => Ok(Some(false)),
        _ => Err(EnvError {
            variable: ENABLED,
            value,
            reason: "not a switch (true, 1, yes, on; false, 0, no, off)",
        }),
    }
}

/// StatsD or Graphite settings from `family`'s variables.
fn plain(family: &Family, lookup: impl Fn(&str) -> Option<String>) -> EnvSettings {
    let get = |name: &str| {
        lookup(name)
            .filter(|v| !v.trim().is_empty())
            .map(|v| v.trim().to_owned())
    };
    let raw = |name: &'static str| lookup(name).unwrap_or_default();
    let mut errors = Vec::new();
    let mut fail = |variable, reason| {
        errors.push(EnvError {
            variable,
            value: raw(variable),
            reason,
        });
    };
    let graphite = family.url == GRAPHITE.url;
    let (protocol, scheme) = match get(family.protocol).map(|p| p.to_ascii_lowercase()) {
        None => (
            if graphite {
                Protocol::Graphite
            } else {
                Protocol::Statsd
            },
            None,
        ),
        Some(p) => match (graphite, p.as_str()) {
            (false, "udp" | "tcp") => (Protocol::Statsd, Some(p)),
            (true, "udp" | "tcp") => (Protocol::Graphite, Some(p)),
            (true, "pickle") => (Protocol::GraphitePickle, Some("tcp".to_owned())),
            _ => {
                let reason = if graphite {
                    "not a Graphite protocol (tcp, udp or pickle)"
                } else {
                    "not a StatsD protocol (udp or tcp)"
                };
                fail(family.protocol, reason);
                (
                    if graphite {
                        Protocol::Graphite
                    } else {
                        Protocol::Statsd
                    },
                    None,
                )
            }
        },
    };
    let default_port = match protocol {
        Protocol::GraphitePickle => 2004,
        Protocol::Graphite => 2003,
        Protocol::Statsd | Protocol::DogStatsd => 8125,
    };
    let endpoint = if let Some(url) = get(family.url) {
        (url, Some((family.url, raw(family.url))))
    } else {
        let port = match get(family.port) {
            None => default_port,
            Some(p) => p.parse::<u16>().ok().filter(|p| *p > 0).unwrap_or_else(|| {
                fail(family.port, "not a port number (1-65535)");
                default_port
            }),
        };
        let host = get(family.host);
        let source = if host.is_some() {
            Some(family.host)
        } else {
            get(family.port).map(|_| family.port)
        }
        .map(|variable| (variable, raw(variable)));
        let host = host.unwrap_or_else(|| "127.0.0.1".to_owned());
        let scheme = scheme.unwrap_or_else(|| if graphite { "tcp" } else { "udp" }.to_owned());
        // `host:port` (one `:`) or `[v6]:port` carries its own port, as `DD_AGENT_HOST` does;
        // a bare IPv6 address gets brackets and the port.
        let url = if carries_port(&host) {
            format!("{scheme}://{host}")
        } else if host.contains(':') && !host.starts_with('[') {
            format!("{scheme}://[{host}]:{port}")
        } else {
            format!("{scheme}://{host}:{port}")
        };
        (url, source)
    };
    EnvSettings {
        protocol,
        endpoint,
        prefix: get(family.prefix),
        labels: Vec::new(),
        cardinality: None,
        enabled: None,
        errors,
    }
}

/// DogStatsD external data from `DD_EXTERNAL_ENV` (set by the Datadog admission controller),
/// sanitised as datadog-go does (printable characters other than `|`); a value with nothing
/// left is an error.
pub(crate) fn external_data(
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Option<String>, EnvError> {
    const VARIABLE: &str = "DD_EXTERNAL_ENV";
    let Some(value) = lookup(VARIABLE).filter(|v| !v.trim().is_empty()) else {
        return Ok(None);
    };
    let clean = sanitize_external(value.trim());
    if clean.is_empty() {
        return Err(EnvError {
            variable: VARIABLE,
            value,
            reason: "has no printable character other than `|`",
        });
    }
    Ok(Some(clean))
}

/// The container id in the text of `/proc/self/cgroup`, if any: the 64-hex-digit id that
/// Docker, containerd and CRI-O put in the cgroup path (`.../docker-<id>.scope`,
/// `.../<id>`, `.../cri-containerd-<id>.scope`).
pub(crate) fn container_id_from_cgroup(text: &str) -> Option<String> {
    text.lines()
        .filter_map(|line| line.rsplit(':').next())
        .flat_map(|path| path.split('/'))
        .map(|segment| segment.strip_suffix(".scope").unwrap_or(segment))
        .map(|segment| segment.rsplit(['-', ':']).next().unwrap_or(segment))
        .find(|id| id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_owned)
}

/// The container id in the text of `/proc/self/mountinfo`, for cgroup v2 with a private
/// cgroup namespace (where `/proc/self/cgroup` only says `0::/`): the runtime mounts the
/// container's `hostname`, `hosts` and `resolv.conf` from `.../containers/<id>/`.
pub(crate) fn container_id_from_mountinfo(text: &str) -> Option<String> {
    text.split_whitespace()
        .filter_map(|field| field.split_once("/containers/").map(|(_, rest)| rest))
        .filter_map(|rest| rest.split('/').next())
        .find(|id| id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_owned)
}

#[cfg(test)]
#[path = "env_tests.rs"]
mod tests;
