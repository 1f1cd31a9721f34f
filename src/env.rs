//! Configuration from the environment: the DogStatsD variables as the official Datadog
//! clients read them, and `STATSD_*` / `GRAPHITE_*` as StatsD and Graphite clients do.
//!
//! Pure functions over a lookup closure (`std::env::var` in production, a table in tests), so
//! precedence rules are tested without touching the process environment.
//!
//! [`detect`] picks the protocol: DogStatsD if `DD_DOGSTATSD_URL` or `DD_AGENT_HOST` is set,
//! else Graphite if `GRAPHITE_URL` or `GRAPHITE_HOST` is, else plain StatsD.
//!
//! | variable | effect |
//! |---|---|
//! | `STATSD_URL` | the StatsD endpoint (`udp://`, `tcp://`, `unix://`); wins over the next three |
//! | `STATSD_HOST`, `STATSD_PORT` | host (default `127.0.0.1`) and port (default 8125) |
//! | `STATSD_PROTOCOL` | `udp` (default) or `tcp` |
//! | `STATSD_PREFIX` | prefix for every metric name |
//! | `GRAPHITE_URL` | the Graphite endpoint (`tcp://`, `udp://`, `unix://`); wins over the next three |
//! | `GRAPHITE_HOST`, `GRAPHITE_PORT` | host and port (default 2003, or 2004 for pickle) |
//! | `GRAPHITE_PROTOCOL` | `tcp` (plaintext, default), `udp` (plaintext) or `pickle` |
//! | `GRAPHITE_PREFIX` | prefix for every metric path |
//!
//! The DogStatsD variables:
//!
//! | variable | effect |
//! |---|---|
//! | `DD_DOGSTATSD_URL` | the endpoint (`udp://host:port`, `unix:///path`, `unixgram:///path`); wins over the next two |
//! | `DD_AGENT_HOST` | the host (or a `unix://` URL); port from `DD_DOGSTATSD_PORT`, default 8125 |
//! | `DD_DOGSTATSD_PORT` | the port for `DD_AGENT_HOST` |
//! | `DD_ENV`, `DD_SERVICE`, `DD_VERSION` | global tags `env:`, `service:`, `version:` |
//! | `DD_ENTITY_ID` | global tag `dd.internal.entity_id:` (set by the Datadog admission controller) |
//!
//! With none of the endpoint variables set, the endpoint is `udp://127.0.0.1:8125`.

use metrics::Label;

use crate::builder::Protocol;

/// A variable that is set but unusable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EnvError {
    pub(crate) variable: &'static str,
    pub(crate) value: String,
    pub(crate) reason: &'static str,
}

/// What the environment says about a DogStatsD exporter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DogStatsdEnv {
    /// The endpoint and the variable it came from (`None`: the default).
    pub(crate) endpoint: (String, Option<&'static str>),
    pub(crate) labels: Vec<Label>,
    pub(crate) error: Option<EnvError>,
}

/// Reads the DogStatsD variables through `lookup`. Empty values count as unset.
pub(crate) fn dogstatsd(lookup: impl Fn(&str) -> Option<String>) -> DogStatsdEnv {
    let get = |name: &str| {
        lookup(name)
            .filter(|v| !v.trim().is_empty())
            .map(|v| v.trim().to_owned())
    };
    let mut error = None;
    let mut port = || match get("DD_DOGSTATSD_PORT") {
        None => 8125,
        Some(p) => p.parse::<u16>().ok().filter(|p| *p > 0).unwrap_or_else(|| {
            error = Some(EnvError {
                variable: "DD_DOGSTATSD_PORT",
                value: p,
                reason: "not a port number (1-65535)",
            });
            8125
        }),
    };
    let endpoint = if let Some(url) = get("DD_DOGSTATSD_URL") {
        (url, Some("DD_DOGSTATSD_URL"))
    } else if let Some(host) = get("DD_AGENT_HOST") {
        let url = if host.contains("://")
            || host.matches(':').count() == 1
            || host.starts_with('[') && host.contains("]:")
        {
            // A URL, or `host:port` (the official clients add the port only when none is
            // given).
            host
        } else if host.contains(':') && !host.starts_with('[') {
            format!("udp://[{host}]:{}", port())
        } else {
            format!("udp://{host}:{}", port())
        };
        (url, Some("DD_AGENT_HOST"))
    } else if get("DD_DOGSTATSD_PORT").is_some() {
        (
            format!("udp://127.0.0.1:{}", port()),
            Some("DD_DOGSTATSD_PORT"),
        )
    } else {
        ("udp://127.0.0.1:8125".to_owned(), None)
    };
    let labels = [
        ("DD_ENV", "env"),
        ("DD_SERVICE", "service"),
        ("DD_VERSION", "version"),
        ("DD_ENTITY_ID", "dd.internal.entity_id"),
    ]
    .into_iter()
    .filter_map(|(var, tag)| get(var).map(|v| Label::new(tag, v)))
    .collect();
    DogStatsdEnv {
        endpoint,
        labels,
        error,
    }
}

/// What the environment asks for, whichever protocol it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EnvSettings {
    pub(crate) protocol: Protocol,
    /// The endpoint and the variable it came from (`None`: the default).
    pub(crate) endpoint: (String, Option<&'static str>),
    pub(crate) prefix: Option<String>,
    pub(crate) labels: Vec<Label>,
    /// The first variable that is set but unusable.
    pub(crate) error: Option<EnvError>,
}

impl From<DogStatsdEnv> for EnvSettings {
    fn from(dd: DogStatsdEnv) -> Self {
        Self {
            protocol: Protocol::DogStatsd,
            endpoint: dd.endpoint,
            prefix: None,
            labels: dd.labels,
            error: dd.error,
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

/// Reads every supported variable through `lookup` and decides the protocol (see the module
/// docs). Empty values count as unset.
pub(crate) fn detect(lookup: impl Fn(&str) -> Option<String>) -> EnvSettings {
    let set = |name: &str| lookup(name).is_some_and(|v| !v.trim().is_empty());
    if set("DD_DOGSTATSD_URL") || set("DD_AGENT_HOST") {
        return dogstatsd(lookup).into();
    }
    if set(GRAPHITE.url) || set(GRAPHITE.host) {
        plain(&GRAPHITE, lookup)
    } else {
        plain(&STATSD, lookup)
    }
}

/// StatsD or Graphite settings from `family`'s variables.
fn plain(family: &Family, lookup: impl Fn(&str) -> Option<String>) -> EnvSettings {
    let get = |name: &str| {
        lookup(name)
            .filter(|v| !v.trim().is_empty())
            .map(|v| v.trim().to_owned())
    };
    let mut error = None;
    let mut fail = |variable, value: String, reason| {
        error.get_or_insert(EnvError {
            variable,
            value,
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
                fail(family.protocol, p, reason);
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
        (url, Some(family.url))
    } else {
        let port = match get(family.port) {
            None => default_port,
            Some(p) => p.parse::<u16>().ok().filter(|p| *p > 0).unwrap_or_else(|| {
                fail(family.port, p, "not a port number (1-65535)");
                default_port
            }),
        };
        let host = get(family.host);
        let source = if host.is_some() {
            Some(family.host)
        } else {
            get(family.port).map(|_| family.port)
        };
        let host = host.unwrap_or_else(|| "127.0.0.1".to_owned());
        let host = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]")
        } else {
            host
        };
        let scheme = scheme.unwrap_or_else(|| if graphite { "tcp" } else { "udp" }.to_owned());
        (format!("{scheme}://{host}:{port}"), source)
    };
    EnvSettings {
        protocol,
        endpoint,
        prefix: get(family.prefix),
        labels: Vec::new(),
        error,
    }
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
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(vars: &[(&str, &str)]) -> DogStatsdEnv {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        dogstatsd(|name| map.get(name).cloned())
    }

    #[test]
    fn the_endpoint_follows_the_official_clients_precedence() {
        assert_eq!(env(&[]).endpoint, ("udp://127.0.0.1:8125".into(), None));
        assert_eq!(
            env(&[("DD_AGENT_HOST", "agent")]).endpoint,
            ("udp://agent:8125".into(), Some("DD_AGENT_HOST"))
        );
        assert_eq!(
            env(&[("DD_AGENT_HOST", "agent"), ("DD_DOGSTATSD_PORT", "9125")]).endpoint,
            ("udp://agent:9125".into(), Some("DD_AGENT_HOST"))
        );
        assert_eq!(
            env(&[("DD_AGENT_HOST", "::1")]).endpoint.0,
            "udp://[::1]:8125"
        );
        assert_eq!(
            env(&[("DD_AGENT_HOST", "unix:///var/run/datadog/dsd.socket")])
                .endpoint
                .0,
            "unix:///var/run/datadog/dsd.socket"
        );
        assert_eq!(
            env(&[
                ("DD_DOGSTATSD_URL", "unixgram:///tmp/d.sock"),
                ("DD_AGENT_HOST", "agent")
            ])
            .endpoint,
            ("unixgram:///tmp/d.sock".into(), Some("DD_DOGSTATSD_URL"))
        );
        assert_eq!(
            env(&[("DD_AGENT_HOST", "  ")]).endpoint.1,
            None,
            "blank counts as unset"
        );
    }

    #[test]
    fn agent_host_may_carry_its_port_and_the_port_alone_applies_to_the_default_host() {
        assert_eq!(
            env(&[("DD_AGENT_HOST", "agent:9000")]).endpoint.0,
            "agent:9000"
        );
        assert_eq!(
            env(&[("DD_AGENT_HOST", "[::1]:9000")]).endpoint.0,
            "[::1]:9000"
        );
        assert_eq!(
            env(&[("DD_AGENT_HOST", "agent:9000"), ("DD_DOGSTATSD_PORT", "1")])
                .endpoint
                .0,
            "agent:9000"
        );
        assert_eq!(
            env(&[("DD_DOGSTATSD_PORT", "9125")]).endpoint,
            ("udp://127.0.0.1:9125".into(), Some("DD_DOGSTATSD_PORT"))
        );
    }

    #[test]
    fn a_malformed_port_is_reported_with_its_variable_and_value() {
        let e = env(&[("DD_AGENT_HOST", "agent"), ("DD_DOGSTATSD_PORT", "81x")]);
        assert_eq!(
            e.error,
            Some(EnvError {
                variable: "DD_DOGSTATSD_PORT",
                value: "81x".into(),
                reason: "not a port number (1-65535)"
            })
        );
    }

    #[test]
    fn unified_service_tags_and_the_entity_id_become_global_labels() {
        let e = env(&[
            ("DD_ENV", "prod"),
            ("DD_SERVICE", "api"),
            ("DD_VERSION", "1.2"),
            ("DD_ENTITY_ID", "pod-uid"),
        ]);
        let tags: Vec<(String, String)> = e
            .labels
            .iter()
            .map(|l| (l.key().to_owned(), l.value().to_owned()))
            .collect();
        assert_eq!(
            tags,
            [
                ("env", "prod"),
                ("service", "api"),
                ("version", "1.2"),
                ("dd.internal.entity_id", "pod-uid")
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
    }

    fn settings(vars: &[(&str, &str)]) -> EnvSettings {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        detect(|name| map.get(name).cloned())
    }

    #[test]
    fn the_protocol_follows_which_variables_are_set() {
        let p = |vars: &[(&str, &str)]| settings(vars).protocol;
        assert_eq!(p(&[]), Protocol::Statsd);
        assert_eq!(p(&[("STATSD_HOST", "s")]), Protocol::Statsd);
        assert_eq!(p(&[("GRAPHITE_HOST", "g")]), Protocol::Graphite);
        assert_eq!(
            p(&[("GRAPHITE_HOST", "g"), ("GRAPHITE_PROTOCOL", "Pickle")]),
            Protocol::GraphitePickle
        );
        assert_eq!(
            p(&[("GRAPHITE_HOST", "g"), ("DD_AGENT_HOST", "agent")]),
            Protocol::DogStatsd,
            "the Datadog variables win: an Agent is there"
        );
        assert_eq!(
            p(&[("DD_ENV", "prod")]),
            Protocol::Statsd,
            "tags alone name no Agent"
        );
    }

    #[test]
    fn statsd_variables_give_host_port_protocol_and_prefix_as_python_clients_read_them() {
        let s = settings(&[
            ("STATSD_HOST", "statsd.internal"),
            ("STATSD_PORT", "9125"),
            ("STATSD_PROTOCOL", "tcp"),
            ("STATSD_PREFIX", "myapp"),
        ]);
        assert_eq!(
            s.endpoint,
            ("tcp://statsd.internal:9125".into(), Some("STATSD_HOST"))
        );
        assert_eq!(s.prefix.as_deref(), Some("myapp"));
        assert_eq!(s.error, None);
        assert_eq!(
            settings(&[]).endpoint,
            ("udp://127.0.0.1:8125".into(), None)
        );
        assert_eq!(
            settings(&[("STATSD_PORT", "9000")]).endpoint,
            ("udp://127.0.0.1:9000".into(), Some("STATSD_PORT"))
        );
        assert_eq!(
            settings(&[("STATSD_HOST", "::1")]).endpoint.0,
            "udp://[::1]:8125"
        );
        assert_eq!(
            settings(&[
                ("STATSD_URL", "unix:///run/statsd.sock"),
                ("STATSD_HOST", "x")
            ])
            .endpoint,
            ("unix:///run/statsd.sock".into(), Some("STATSD_URL"))
        );
    }

    #[test]
    fn graphite_variables_default_to_plaintext_over_tcp_and_pickle_moves_the_port() {
        assert_eq!(
            settings(&[("GRAPHITE_HOST", "carbon"), ("GRAPHITE_PREFIX", "svc")]),
            EnvSettings {
                protocol: Protocol::Graphite,
                endpoint: ("tcp://carbon:2003".into(), Some("GRAPHITE_HOST")),
                prefix: Some("svc".into()),
                labels: Vec::new(),
                error: None,
            }
        );
        assert_eq!(
            settings(&[("GRAPHITE_HOST", "carbon"), ("GRAPHITE_PROTOCOL", "pickle")])
                .endpoint
                .0,
            "tcp://carbon:2004"
        );
        assert_eq!(
            settings(&[("GRAPHITE_HOST", "carbon"), ("GRAPHITE_PROTOCOL", "udp")])
                .endpoint
                .0,
            "udp://carbon:2003"
        );
    }

    #[test]
    fn malformed_values_are_reported_with_their_variable_never_defaulted_silently() {
        let e = |vars: &[(&str, &str)]| settings(vars).error.map(|e| (e.variable, e.value));
        assert_eq!(
            e(&[("STATSD_PROTOCOL", "http")]),
            Some(("STATSD_PROTOCOL", "http".into()))
        );
        assert_eq!(
            e(&[("STATSD_PORT", "99999")]),
            Some(("STATSD_PORT", "99999".into()))
        );
        assert_eq!(
            e(&[("GRAPHITE_HOST", "c"), ("GRAPHITE_PROTOCOL", "amqp")]),
            Some(("GRAPHITE_PROTOCOL", "amqp".into()))
        );
        assert_eq!(
            e(&[("STATSD_PROTOCOL", "pickle")]),
            Some(("STATSD_PROTOCOL", "pickle".into())),
            "pickle is Graphite's"
        );
    }

    #[test]
    fn container_ids_are_found_in_the_cgroup_paths_of_common_runtimes() {
        let id = "3e0c5d5f6c2d4e9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a";
        for text in [
            format!("0::/system.slice/docker-{id}.scope"),
            format!("12:pids:/docker/{id}\n11:cpu:/docker/{id}"),
            format!("0::/kubepods/besteffort/pod1234/cri-containerd-{id}.scope"),
            format!("0::/kubepods.slice/kubepods-pod.slice/crio-{id}.scope"),
        ] {
            assert_eq!(
                container_id_from_cgroup(&text).as_deref(),
                Some(id),
                "{text}"
            );
        }
        assert_eq!(
            container_id_from_cgroup("0::/user.slice/user-0.slice/session-1.scope"),
            None
        );
        assert_eq!(container_id_from_cgroup(""), None);
    }

    #[test]
    fn container_ids_are_found_in_mountinfo_under_a_private_cgroup_namespace() {
        let id = "3e0c5d5f6c2d4e9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a";
        let text = format!(
            "681 660 254:1 /var/lib/docker/containers/{id}/hostname /etc/hostname rw,relatime - ext4 /dev/vda1 rw\n\
             682 660 0:26 / /sys/fs/cgroup ro,nosuid - cgroup2 cgroup rw"
        );
        assert_eq!(container_id_from_mountinfo(&text).as_deref(), Some(id));
        assert_eq!(
            container_id_from_mountinfo("22 1 254:1 / / rw - ext4 /dev/vda1 rw"),
            None
        );
    }
}
