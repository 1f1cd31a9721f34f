//! A hostile corpus of series that render alike once sanitised, shared by the fidelity tests
//! against real receivers. Each [`Group`] is one class of collision (an empty label value,
//! characters that become `_`, empty segments, folded labels, label keys or values that
//! sanitise alike, label order, the reserved `name` tag) with the series of the class, and
//! the wire names they must end up as: under the folding renderings (Graphite
//! `GraphiteTags::FoldValues`, plain StatsD `LabelHandling::FoldIntoName`) and under
//! Graphite 1.1 tags. One group (case) is a control: it must *not* merge.
//!
//! Every series of a group gets a different value, so a receiver that stores only one of
//! them (carbon keeps the last write per path and slot) shows it: counter increments carry a
//! power of two per member, gauge values differ (the largest first, last or negative), and
//! histogram samples differ per member.
#![allow(dead_code, reason = "each test binary uses a different subset")]

/// One series of a group: a name and labels, `{k}` in the name standing for the kind's
/// first segment (`c`, `g` or `h`).
#[derive(Debug, Clone)]
pub(crate) struct Member {
    pub(crate) name: &'static str,
    pub(crate) labels: &'static [(&'static str, &'static str)],
}

/// One wire identity the members `members` of a group must merge into: `name` (with `{k}`)
/// and, for Graphite tags, `tail` (`;k=v...`, sorted, as carbon normalises it).
#[derive(Debug, Clone)]
pub(crate) struct Out {
    pub(crate) name: &'static str,
    pub(crate) tail: &'static str,
    pub(crate) members: &'static [usize],
}

/// One class of collision.
#[derive(Debug, Clone)]
pub(crate) struct Group {
    pub(crate) class: &'static str,
    pub(crate) members: &'static [Member],
    /// Outputs under the folding renderings.
    pub(crate) folded: &'static [Out],
    /// Outputs under Graphite 1.1 tags.
    pub(crate) tagged: &'static [Out],
    /// The members are one `metrics::Key` (labels in another order compare equal), so one
    /// series to the exporter: nothing to merge, and a gauge keeps the last value set.
    pub(crate) one_key: bool,
    /// Names longer than collectd keeps (it cuts them at 128 bytes): left out of [`Set::Short`].
    pub(crate) long: bool,
}

/// Which groups a test sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Set {
    /// Every group.
    Full,
    /// The groups whose names every receiver keeps whole (collectd cuts at 128 bytes).
    Short,
}

impl Set {
    fn has(self, group: &Group) -> bool {
        self == Self::Full || !group.long
    }
}

/// How labels are rendered by the exporter under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Render {
    /// Label values as path segments (Graphite `FoldValues`, StatsD `FoldIntoName`).
    Folded,
    /// Graphite 1.1 tags.
    Tagged,
}

/// The three kinds of series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    pub(crate) const ALL: [Self; 3] = [Self::Counter, Self::Gauge, Self::Histogram];

    /// The first path segment of this kind's copy of the corpus.
    pub(crate) fn letter(self) -> &'static str {
        match self {
            Self::Counter => "c",
            Self::Gauge => "g",
            Self::Histogram => "h",
        }
    }
}

const fn m(name: &'static str, labels: &'static [(&'static str, &'static str)]) -> Member {
    Member { name, labels }
}

const fn out(name: &'static str, tail: &'static str, members: &'static [usize]) -> Out {
    Out {
        name,
        tail,
        members,
    }
}

/// The corpus. See the module docs.
pub(crate) const GROUPS: &[Group] = &[
    Group {
        class: "an empty label value is left out",
        members: &[m("{k}.e", &[]), m("{k}.e", &[("route", "")])],
        folded: &[out("{k}.e", "", &[0, 1])],
        tagged: &[out("{k}.e", "", &[0, 1])],
        one_key: false,
        long: false,
    },
    Group {
        class: "space, slash, colon and semicolon become _",
        members: &[
            m("{k}.a b", &[]),
            m("{k}.a_b", &[]),
            m("{k}.a/b", &[]),
            m("{k}.a:b", &[]),
            m("{k}.a;b", &[]),
        ],
        folded: &[out("{k}.a_b", "", &[0, 1, 2, 3, 4])],
        tagged: &[out("{k}.a_b", "", &[0, 1, 2, 3, 4])],
        one_key: false,
        long: false,
    },
    Group {
        class: "a non-ASCII letter becomes _",
        members: &[
            m("{k}.caf\u{e9}", &[]),
            m("{k}.caf_", &[]),
            m("{k}.caf\u{e8}", &[]),
        ],
        folded: &[out("{k}.caf_", "", &[0, 1, 2])],
        tagged: &[out("{k}.caf_", "", &[0, 1, 2])],
        one_key: false,
        long: false,
    },
    Group {
        class: "an emoji becomes one _",
        members: &[m("{k}.smile\u{1F600}", &[]), m("{k}.smile_", &[])],
        folded: &[out("{k}.smile_", "", &[0, 1])],
        tagged: &[out("{k}.smile_", "", &[0, 1])],
        one_key: false,
        long: false,
    },
    Group {
        class: "control characters become _",
        members: &[
            m("{k}.tab\there", &[]),
            m("{k}.tab_here", &[]),
            m("{k}.tab\nhere", &[]),
        ],
        folded: &[out("{k}.tab_here", "", &[0, 1, 2])],
        tagged: &[out("{k}.tab_here", "", &[0, 1, 2])],
        one_key: false,
        long: false,
    },
    Group {
        class: "leading, trailing and doubled dots vanish",
        members: &[
            m(".{k}.dots.", &[]),
            m("{k}..dots", &[]),
            m("{k}.dots", &[]),
        ],
        folded: &[out("{k}.dots", "", &[0, 1, 2])],
        tagged: &[out("{k}.dots", "", &[0, 1, 2])],
        one_key: false,
        long: false,
    },
    Group {
        class: "case is kept: no collision",
        members: &[m("{k}.Case", &[]), m("{k}.case", &[])],
        folded: &[out("{k}.Case", "", &[0]), out("{k}.case", "", &[1])],
        tagged: &[out("{k}.Case", "", &[0]), out("{k}.case", "", &[1])],
        one_key: false,
        long: false,
    },
    Group {
        class: "a folded label value is a path segment",
        members: &[m("{k}.m", &[("k", "v")]), m("{k}.m.v", &[])],
        folded: &[out("{k}.m.v", "", &[0, 1])],
        tagged: &[out("{k}.m", ";k=v", &[0]), out("{k}.m.v", "", &[1])],
        one_key: false,
        long: false,
    },
    Group {
        class: "a dot inside a folded label value becomes _",
        members: &[m("{k}.fd", &[("k", "v.w")]), m("{k}.fd", &[("k", "v_w")])],
        folded: &[out("{k}.fd.v_w", "", &[0, 1])],
        tagged: &[out("{k}.fd", ";k=v.w", &[0]), out("{k}.fd", ";k=v_w", &[1])],
        one_key: false,
        long: false,
    },
    Group {
        class: "replacements at the edges of a folded label value are trimmed",
        members: &[
            m("{k}.rt", &[("route", " home")]),
            m("{k}.rt", &[("route", "home\u{e9}")]),
            m("{k}.rt", &[("route", "home")]),
        ],
        folded: &[out("{k}.rt.home", "", &[0, 1, 2])],
        tagged: &[
            out("{k}.rt", ";route=_home", &[0]),
            out("{k}.rt", ";route=home_", &[1]),
            out("{k}.rt", ";route=home", &[2]),
        ],
        one_key: false,
        long: false,
    },
    Group {
        class: "a folded label value of only replaced characters is one _",
        members: &[
            m("{k}.rr", &[("route", "  ")]),
            m("{k}.rr", &[("route", "_")]),
        ],
        folded: &[out("{k}.rr._", "", &[0, 1])],
        tagged: &[
            out("{k}.rr", ";route=__", &[0]),
            out("{k}.rr", ";route=_", &[1]),
        ],
        one_key: false,
        long: false,
    },
    Group {
        class: "label keys that sanitise alike",
        members: &[m("{k}.tk", &[("a b", "1")]), m("{k}.tk", &[("a_b", "1")])],
        folded: &[out("{k}.tk.1", "", &[0, 1])],
        tagged: &[out("{k}.tk", ";a_b=1", &[0, 1])],
        one_key: false,
        long: false,
    },
    Group {
        class: "label values that sanitise alike",
        members: &[
            m("{k}.tv", &[("t", "x y")]),
            m("{k}.tv", &[("t", "x_y")]),
            m("{k}.tv", &[("t", "x;y")]),
            m("{k}.tv", &[("t", "x\u{e9}y")]),
        ],
        folded: &[out("{k}.tv.x_y", "", &[0, 1, 2, 3])],
        tagged: &[out("{k}.tv", ";t=x_y", &[0, 1, 2, 3])],
        one_key: false,
        long: false,
    },
    Group {
        class: "the same labels in another order (one metrics key: a control, not a merge)",
        members: &[
            m("{k}.lo", &[("a", "1"), ("b", "2")]),
            m("{k}.lo", &[("b", "2"), ("a", "1")]),
        ],
        folded: &[out("{k}.lo.1.2", "", &[0, 1])],
        tagged: &[out("{k}.lo", ";a=1;b=2", &[0, 1])],
        one_key: true,
        long: false,
    },
    Group {
        class: "a label called name is sent as name_",
        members: &[
            m("{k}.nm", &[("name", "z")]),
            m("{k}.nm", &[("name_", "z")]),
        ],
        folded: &[out("{k}.nm.z", "", &[0, 1])],
        tagged: &[out("{k}.nm", ";name_=z", &[0, 1])],
        one_key: false,
        long: false,
    },
    Group {
        class: "an empty label key is left out",
        members: &[m("{k}.ek", &[("", "v")]), m("{k}.ek.v", &[])],
        folded: &[out("{k}.ek.v", "", &[0, 1])],
        tagged: &[out("{k}.ek", "", &[0]), out("{k}.ek.v", "", &[1])],
        one_key: false,
        long: false,
    },
    Group {
        class: "long components that sanitise alike are shortened alike (hash of the sanitised component)",
        members: &[
            m(
                "{k}.long.LLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLL a",
                &[],
            ),
            m(
                "{k}.long.LLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLL_a",
                &[],
            ),
        ],
        folded: &[out(
            "{k}.long.LLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLL-096269bae7d60b9d",
            "",
            &[0, 1],
        )],
        tagged: &[out(
            "{k}.long.LLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLL-096269bae7d60b9d",
            "",
            &[0, 1],
        )],
        one_key: false,
        long: true,
    },
];

/// The outputs of `group` under `render`.
pub(crate) fn outputs(group: &Group, render: Render) -> &'static [Out] {
    match render {
        Render::Folded => group.folded,
        Render::Tagged => group.tagged,
    }
}

/// `text` with `{k}` replaced by the kind's letter.
pub(crate) fn expand(text: &str, kind: Kind) -> String {
    text.replace("{k}", kind.letter())
}

/// The increment of member `j` of group `i`: a power of two per member over a per-group base,
/// so a sum says which members arrived.
pub(crate) fn increment(i: usize, j: usize) -> u64 {
    (u64::try_from(i).unwrap_or(0) + 1) * 1000 + (1 << j)
}

/// The gauge value of member `j` of group `i` (of `n` members): distinct, with the largest
/// the last member (i % 3 == 0), the first (i % 3 == 1), or all negative with the largest
/// first (i % 3 == 2, so Etsy's `0|g` + `-v|g` pair is exercised too).
pub(crate) fn gauge_value(i: usize, j: usize, n: usize) -> f64 {
    let base = f64::from(u32::try_from(i).unwrap_or(0) + 1) * 100.0;
    let j = f64::from(u32::try_from(j).unwrap_or(0));
    let n = f64::from(u32::try_from(n).unwrap_or(0));
    match i % 3 {
        0 => base + j + 1.0,
        1 => base + n - j,
        _ => -base - j,
    }
}

/// The histogram samples of member `j` of group `i` (whole numbers: collectd cuts
/// fractional milliseconds).
pub(crate) fn samples(i: usize, j: usize) -> [f64; 2] {
    let v = f64::from(u32::try_from((i + 1) * 10 + j).unwrap_or(0));
    [v, v + 5.0]
}

/// Records every member of every group as `kind` into the current recorder (call inside
/// `metrics::with_local_recorder`).
pub(crate) fn record(kind: Kind, set: Set) {
    for (i, group) in GROUPS.iter().enumerate().filter(|(_, g)| set.has(g)) {
        for (j, member) in group.members.iter().enumerate() {
            let name = expand(member.name, kind);
            let labels: Vec<metrics::Label> = member
                .labels
                .iter()
                .map(|(k, v)| metrics::Label::new(*k, *v))
                .collect();
            match kind {
                Kind::Counter => metrics::counter!(name, labels).increment(increment(i, j)),
                Kind::Gauge => {
                    metrics::gauge!(name, labels).set(gauge_value(i, j, group.members.len()));
                }
                Kind::Histogram => {
                    let h = metrics::histogram!(name, labels);
                    for v in samples(i, j) {
                        h.record(v);
                    }
                }
            }
        }
    }
}

/// What one output must hold.
#[derive(Debug, Clone)]
pub(crate) struct Expected {
    /// The name without tags (`{k}` expanded).
    pub(crate) name: String,
    /// `;k=v...` or empty.
    pub(crate) tail: String,
    /// How many series merge into it.
    pub(crate) merged_from: usize,
    /// See [`Group::one_key`].
    pub(crate) one_key: bool,
    /// The class of its group.
    pub(crate) class: &'static str,
    /// Counter: the sum. Gauge: the largest value. Histogram: unused (see `samples`).
    pub(crate) value: f64,
    /// Histogram: every sample of every member, sorted.
    pub(crate) samples: Vec<f64>,
}

/// Every output of the corpus for `kind` under `render`.
pub(crate) fn expected(kind: Kind, render: Render, set: Set) -> Vec<Expected> {
    let mut all = Vec::new();
    for (i, group) in GROUPS.iter().enumerate().filter(|(_, g)| set.has(g)) {
        for o in outputs(group, render) {
            let n = group.members.len();
            #[allow(
                clippy::cast_precision_loss,
                reason = "sums of a few thousand are exact in f64"
            )]
            let value = match kind {
                Kind::Counter => o.members.iter().map(|&j| increment(i, j)).sum::<u64>() as f64,
                Kind::Gauge if group.one_key => {
                    o.members.last().map_or(f64::NAN, |&j| gauge_value(i, j, n))
                }
                Kind::Gauge => o
                    .members
                    .iter()
                    .map(|&j| gauge_value(i, j, n))
                    .fold(f64::NEG_INFINITY, f64::max),
                Kind::Histogram => 0.0,
            };
            let mut merged: Vec<f64> = o.members.iter().flat_map(|&j| samples(i, j)).collect();
            merged.sort_by(f64::total_cmp);
            all.push(Expected {
                name: expand(o.name, kind),
                tail: o.tail.to_owned(),
                merged_from: o.members.len(),
                one_key: group.one_key,
                class: group.class,
                value,
                samples: merged,
            });
        }
    }
    all
}

/// Series merged into another under `render`, per kind: members minus outputs.
pub(crate) fn merges(render: Render, set: Set) -> u64 {
    GROUPS
        .iter()
        .filter(|g| !g.one_key && set.has(g))
        .map(|g| {
            let outs = outputs(g, render);
            let members: usize = outs.iter().map(|o| o.members.len()).sum();
            u64::try_from(members - outs.len()).unwrap_or(0)
        })
        .sum()
}
