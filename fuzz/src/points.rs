//! The Graphite points fuzz target: explicit points pushed into `GraphitePoints` (the pure
//! encoder of the direct client), every line and frame it writes checked with the spec
//! parsers (`tests/support/points_oracle.rs`).

use arbitrary::Arbitrary;

use crate::{Float, Text};
// `points_oracle` reaches the parsers through `super::`.
use crate::{graphite_parser, pickle_parser};

#[path = "../../tests/support/points_oracle.rs"]
mod points_oracle;

/// Explicit Graphite points for the pure encoder (`GraphitePoints`).
#[derive(Debug, Arbitrary)]
pub struct PointsInput {
    tag_hash_filenames: bool,
    points: Vec<(ArbPath, Float, u64)>,
}

/// A path: any text (which may hold `;` and `=` itself), or a name and tags joined as
/// `name;k=v;k2=v2`.
#[derive(Debug, Arbitrary)]
pub enum ArbPath {
    Text(Text),
    Tagged(Text, Vec<(Text, Text)>),
}

impl ArbPath {
    fn get(&self) -> String {
        match self {
            Self::Text(t) => t.get(),
            Self::Tagged(name, tags) => {
                let mut path = name.get();
                for (k, v) in tags {
                    path.push(';');
                    path.push_str(&k.get());
                    path.push('=');
                    path.push_str(&v.get());
                }
                path
            }
        }
    }
}

/// Pushes the points into `GraphitePoints` and checks every line and frame it writes with
/// the spec parsers (`tests/support/points_oracle.rs`).
///
/// # Panics
/// On a broken property: that is the crash libFuzzer reports.
pub fn graphite_points(input: &PointsInput) {
    let points: Vec<(String, f64, u64)> = input
        .points
        .iter()
        .map(|(path, value, ts)| (path.get(), value.get(), *ts))
        .collect();
    if let Err(e) = points_oracle::check_points(&points, input.tag_hash_filenames) {
        panic!("{e}\npoints: {points:?}");
    }
}
