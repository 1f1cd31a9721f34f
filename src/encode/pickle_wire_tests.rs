use super::*;
use crate::encode::number::write_f64;
use crate::encode::pickle::MAX_PICKLE_FRAME;
use proptest::prelude::*;
use serde_pickle::{DeOptions, Value};

/// What the transcoder did before it read lines in one pass (issue 15): every line split at
/// its last two spaces, both numbers read by the standard library, the path copied. The
/// one-pass reader must give exactly the same bytes.
fn reference(payload: &[u8], max_frame: usize) -> Vec<u8> {
    let mut frames = PickleFrames::new(max_frame, usize::MAX);
    for line in payload.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let mut fields = line.rsplitn(3, |&b| b == b' ');
        let (Some(ts), Some(value), Some(path)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let ts = std::str::from_utf8(ts)
            .ok()
            .and_then(|t| t.parse::<u64>().ok());
        let value = std::str::from_utf8(value)
            .ok()
            .and_then(|v| v.parse::<f64>().ok());
        if let (Some(ts), Some(value)) = (ts, value) {
            frames.push(path, ts, value);
        }
    }
    let (mut out, mut ranges) = (Vec::new(), Vec::new());
    frames.finish(&mut out, &mut ranges);
    out
}

/// The `(path, (timestamp, value))` points of concatenated frames.
fn points(mut frames: &[u8]) -> Vec<(String, u64, u64)> {
    let mut all = Vec::new();
    while !frames.is_empty() {
        let len = u32::from_be_bytes(frames[..4].try_into().unwrap()) as usize;
        let Value::List(list) =
            serde_pickle::value_from_slice(&frames[4..4 + len], DeOptions::new()).unwrap()
        else {
            panic!("not a list");
        };
        for point in list {
            let Value::Tuple(pair) = point else {
                panic!("not a tuple")
            };
            let (Value::String(path), Value::Tuple(tv)) = (&pair[0], &pair[1]) else {
                panic!("not (str, tuple)");
            };
            let ts = match &tv[0] {
                Value::I64(t) => u64::try_from(*t).unwrap(),
                Value::Int(t) => t.to_string().parse().unwrap(),
                other => panic!("timestamp {other:?}"),
            };
            let Value::F64(v) = tv[1] else {
                panic!("value {:?}", tv[1])
            };
            all.push((path.clone(), ts, v.to_bits()));
        }
        frames = &frames[4 + len..];
    }
    all
}

fn encode(payload: &[u8]) -> Vec<u8> {
    PickleWire::new(MAX_PICKLE_FRAME).encode(payload).to_vec()
}

#[test]
fn counter_lines_arrive_as_the_points_they_were_written_from() {
    let payload = b"a.b;k=v 5 1700000000\nc -12 1700000000\nd 0 0\n";
    assert_eq!(
        points(&encode(payload)),
        [
            ("a.b;k=v".to_owned(), 1_700_000_000, 5f64.to_bits()),
            ("c".to_owned(), 1_700_000_000, (-12f64).to_bits()),
            ("d".to_owned(), 0, 0f64.to_bits()),
        ]
    );
}

#[test]
fn values_past_15_digits_and_fractions_are_read_as_the_standard_parser_reads_them() {
    // 2^53 + 1 has 16 digits and is not an f64: it rounds, as `f64::from_str` rounds it.
    let payload = b"a 9007199254740993 1\nb 999999999999999 1\nc 1.5e-7 1\nd -0 1\ne 0.1 1\n";
    let got = points(&encode(payload));
    let bits: Vec<u64> = got.iter().map(|p| p.2).collect();
    assert_eq!(
        bits,
        [
            9_007_199_254_740_992f64.to_bits(),
            999_999_999_999_999f64.to_bits(),
            1.5e-7f64.to_bits(),
            (-0f64).to_bits(),
            0.1f64.to_bits(),
        ]
    );
    assert_eq!(encode(payload), reference(payload, MAX_PICKLE_FRAME));
}

#[test]
fn timestamps_of_19_and_20_digits_are_read_exactly_or_skipped_as_before() {
    // 19 digits fit a u64; 20 digits may not (this one does not): the line is skipped.
    let payload = b"a 1 9999999999999999999\nb 1 99999999999999999999\nc 1 +7\n";
    assert_eq!(
        points(&encode(payload)),
        [
            ("a".to_owned(), 9_999_999_999_999_999_999, 1f64.to_bits()),
            ("c".to_owned(), 7, 1f64.to_bits()),
        ]
    );
    assert_eq!(encode(payload), reference(payload, MAX_PICKLE_FRAME));
}

#[test]
fn a_path_with_spaces_keeps_everything_before_the_last_two() {
    let payload = b"a b 5 7\na 5 7 9\n";
    assert_eq!(
        points(&encode(payload)),
        [
            ("a b".to_owned(), 7, 5f64.to_bits()),
            ("a 5".to_owned(), 9, 7f64.to_bits()),
        ]
    );
}

#[test]
fn a_payload_that_is_not_utf8_keeps_its_utf8_lines() {
    let payload = b"good 1 2\nb\xffd 3 4\nalso.good 5 6\n";
    assert_eq!(
        points(&encode(payload)),
        [
            ("good".to_owned(), 2, 1f64.to_bits()),
            ("also.good".to_owned(), 6, 5f64.to_bits()),
        ]
    );
    assert_eq!(encode(payload), reference(payload, MAX_PICKLE_FRAME));
}

#[test]
fn the_space_search_finds_the_first_space_or_newline_at_every_offset() {
    for len in 0..40 {
        for at in 0..len {
            for stop in [b' ', b'\n'] {
                let mut bytes = vec![b'x'; len];
                bytes[at] = stop;
                // A later match must not hide the first one.
                if at + 1 < len {
                    bytes[len - 1] = b' ';
                }
                assert_eq!(find_space_or_newline(&bytes, 0), Some(at), "{len} {at}");
                if at > 0 {
                    assert_eq!(find_space_or_newline(&bytes, 1), Some(at), "{len} {at}");
                }
            }
        }
        assert_eq!(find_space_or_newline(&vec![b'y'; len], 0), None);
    }
}

#[test]
fn a_warm_encode_of_the_same_payload_does_not_grow_any_buffer() {
    let mut payload = Vec::new();
    for i in 0..5000 {
        payload.extend_from_slice(
            format!("bench.requests;route=/api/{i} {i} 1700000000\n").as_bytes(),
        );
    }
    let mut wire = PickleWire::new(MAX_PICKLE_FRAME);
    let first = wire.encode(&payload).to_vec();
    let caps = (
        wire.out.capacity(),
        wire.ranges.capacity(),
        wire.frames.entries.capacity(),
    );
    assert_eq!(wire.encode(&payload), first.as_slice());
    assert_eq!(
        (
            wire.out.capacity(),
            wire.ranges.capacity(),
            wire.frames.entries.capacity()
        ),
        caps
    );
}

/// A value field: what the encoder writes (integers, shortest floats), and what it never
/// writes but the transcoder still reads as before (long integers, other spellings, junk).
fn value_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|v| v.to_string()),
        (0u64..1000).prop_map(|v| v.to_string()),
        any::<u64>().prop_map(|v| v.to_string()),
        any::<f64>()
            .prop_filter("finite", |v| v.is_finite())
            .prop_map(|v| {
                let mut out = Vec::new();
                write_f64(&mut out, v);
                String::from_utf8(out).unwrap()
            }),
        "[-+]?[0-9]{0,22}",
        // Overflowing to infinity is not a value the encoder writes (nor may push take it).
        "[-+0-9.eE]{0,8}".prop_filter("finite", |v| v.parse::<f64>().map_or(true, f64::is_finite)),
        Just("-0".to_owned()),
    ]
}

fn timestamp_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        (0u64..0x8000_0000).prop_map(|t| t.to_string()),
        any::<u64>().prop_map(|t| t.to_string()),
        "[+]?[0-9]{0,21}",
    ]
}

proptest! {
    #[test]
    fn one_pass_transcoding_writes_the_same_bytes_as_splitting_and_parsing(
        lines in prop::collection::vec(
            ("[a-z0-9_.;=/-]{0,40}|[a-z ]{1,12}|\\PC{1,8}", value_strategy(), timestamp_strategy()),
            0..40,
        ),
        max_frame in prop_oneof![Just(MAX_PICKLE_FRAME), 40usize..600],
        unterminated in any::<bool>(),
    ) {
        let mut payload = Vec::new();
        for (path, value, ts) in &lines {
            let path = path.replace('\n', "_");
            payload.extend_from_slice(format!("{path} {value} {ts}\n").as_bytes());
        }
        if unterminated {
            payload.pop();
        }
        let mut wire = PickleWire::new(max_frame);
        let expected = reference(&payload, max_frame);
        prop_assert_eq!(wire.encode(&payload), expected.as_slice());
    }
}

/// One thing a flush writes as Graphite lines, for [`frames_from_points_match_frames_read_back_from_the_text`].
#[derive(Debug, Clone)]
enum Written {
    Counter(usize, u64),
    Gauge(usize, f64),
    Histogram(usize, Vec<f64>),
    /// A direct client's point, its own timestamp.
    Point(usize, f64, u64),
}

/// Names and labels as the hostile-input tests use them: tags, unicode, characters the
/// sanitiser rewrites, a long one.
fn rendered_names() -> Vec<crate::encode::Rendered> {
    use crate::encode::test_util::labels;
    use crate::encode::{CounterMode, GraphiteEncoder, GraphiteTags, Rendered};
    let e = GraphiteEncoder::new(
        Some("app"),
        labels(&[]),
        GraphiteTags::Tagged,
        CounterMode::Delta,
        10,
        &[0.5, 0.99],
        true,
    );
    let long = "x".repeat(300);
    let names: [(&str, &[(&str, &str)]); 6] = [
        ("requests", &[("route", "/api/1"), ("status", "200")]),
        ("héllo wörld", &[]),
        ("日本.指標", &[("ключ", "значение")]),
        ("a b\tc\n;d=e", &[("k ey", "v;al")]),
        (&long, &[("t", "v")]),
        ("", &[]),
    ];
    names
        .iter()
        .map(|(name, l)| {
            let mut r = Rendered::default();
            e.render(
                &metrics::Key::from_parts((*name).to_string(), labels(l)),
                &mut r,
            );
            r
        })
        .collect()
}

fn real_strategy() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>().prop_filter("finite", |v| v.is_finite()),
        Just(-0.0),
        Just(f64::MIN_POSITIVE),
        Just(5e-324),
        Just(9_007_199_254_740_993.0),
        -1e6..1e6f64,
        (-1_000_000i32..1_000_000).prop_map(f64::from),
    ]
}

fn written_strategy() -> impl Strategy<Value = Written> {
    prop_oneof![
        (0..6usize, any::<u64>()).prop_map(|(i, v)| Written::Counter(i, v)),
        (0..6usize, 0..1000u64).prop_map(|(i, v)| Written::Counter(i, v)),
        (0..6usize, real_strategy()).prop_map(|(i, v)| Written::Gauge(i, v)),
        (0..6usize, prop::collection::vec(real_strategy(), 1..5))
            .prop_map(|(i, v)| Written::Histogram(i, v)),
        (0..6usize, real_strategy(), any::<u64>()).prop_map(|(i, v, ts)| Written::Point(i, v, ts)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    /// The points the encoder records beside its lines give exactly the frames that reading
    /// the lines back gives: same paths, timestamps and value bits, in every payload.
    #[test]
    fn frames_from_points_match_frames_read_back_from_the_text(
        written in prop::collection::vec(written_strategy(), 1..40),
        limit in 200..4000usize,
        unix_secs in 0..4_000_000_000u64,
    ) {
        use crate::encode::test_util::labels;
        use crate::encode::{
            CounterMode, EncodeTally, Encoder, Framing, GraphiteEncoder, GraphiteTags,
            PayloadWriter, SlotCarry,
        };
        let e = GraphiteEncoder::new(Some("app"), labels(&[]), GraphiteTags::Tagged, CounterMode::Total, 10, &[0.5, 0.99], true);
        let cx = Encoder::Graphite(e.clone()).context(unix_secs);
        let names = rendered_names();
        let mut w = PayloadWriter::new(limit, Framing::Stream).keeping_points(true);
        let mut t = EncodeTally::default();
        for op in &written {
            match op {
                Written::Counter(i, v) => e.counter(&names[*i], *v, &mut SlotCarry::default(), &cx, &mut w, &mut t),
                Written::Gauge(i, v) => e.gauge(&names[*i], *v, &cx, &mut w, &mut t),
                Written::Histogram(i, samples) => {
                    let mut samples = samples.clone();
                    let n = samples.len() as u64;
                    e.histogram(&names[*i], &mut samples, n, &mut SlotCarry::default(), &cx, &mut w, &mut t);
                }
                Written::Point(i, v, ts) => e.point(&names[*i], *v, *ts, &mut w, &mut t),
            }
        }
        w.finish();
        let (mut from_points, mut from_text) = (PickleWire::new(MAX_PICKLE_FRAME), PickleWire::new(MAX_PICKLE_FRAME));
        let mut sent = 0;
        for i in 0..w.len() {
            let (lines, n) = w.lines(i).unwrap();
            let (points, start) = w.points(i).expect("one point per line");
            let read = from_text.encode(lines.bytes()).to_vec();
            prop_assert_eq!(from_points.encode_points(lines.bytes(), points, start), &read[..]);
            sent += n;
        }
        prop_assert_eq!(u64::from(sent), t.lines);
    }
}

#[test]
fn points_that_do_not_fit_the_payload_fall_back_to_reading_the_text() {
    use crate::encode::Point;
    let payload = b"a.b 1 100\ncc 2.5 100\n";
    let expected = encode(payload);
    let mut wire = PickleWire::new(MAX_PICKLE_FRAME);
    let wrong = [
        Point {
            path: 1000..1003,
            timestamp: 100,
            value: 1.0,
        },
        Point {
            path: 1010..1012,
            timestamp: 100,
            value: 2.5,
        },
    ];
    // Offsets before the payload's start, and past its end.
    assert_eq!(wire.encode_points(payload, &wrong, 1001), &expected[..]);
    assert_eq!(wire.encode_points(payload, &wrong, 0), &expected[..]);
    let right = [
        Point {
            path: 1000..1003,
            timestamp: 7,
            value: 9.0,
        },
        Point {
            path: 1010..1012,
            timestamp: 7,
            value: 9.0,
        },
    ];
    assert_ne!(
        wire.encode_points(payload, &right, 1000),
        &expected[..],
        "in range, the points are trusted, not the text"
    );
}
