use super::*;
use proptest::prelude::*;
use serde_pickle::{DeOptions, Value};

type Decoded = Vec<(String, (u64, f64))>;

fn finish(frames: &mut PickleFrames) -> (Vec<u8>, Vec<Range<usize>>) {
    let mut out = Vec::new();
    let mut ranges = Vec::new();
    frames.finish(&mut out, &mut ranges);
    (out, ranges)
}

/// Checks the header of one frame and returns its payload.
fn payload<'a>(out: &'a [u8], range: &Range<usize>) -> &'a [u8] {
    let frame = &out[range.clone()];
    let (header, payload) = frame.split_at(HEADER_LEN);
    let len = u32::from_be_bytes(header.try_into().unwrap());
    assert_eq!(
        len as usize,
        payload.len(),
        "header is the big-endian payload length"
    );
    payload
}

fn decode(payload: &[u8]) -> Decoded {
    serde_pickle::from_slice(payload, DeOptions::new()).unwrap()
}

/// Walks the opcodes of a pickle, failing on any opcode outside the small set a list of
/// `(str, (int, float))` tuples needs (so no `GLOBAL`, `STACK_GLOBAL`, `REDUCE`, memo or
/// byte-string opcodes), and checks that it starts with `PROTO 2` and ends at `STOP`.
fn assert_plain_opcodes(payload: &[u8]) {
    assert_eq!(&payload[..2], b"\x80\x02", "starts with PROTO 2");
    let mut i = 2;
    loop {
        let op = payload[i];
        i += 1;
        let arg = match op {
            b']' | b'(' | b'e' | b't' => 0,      // EMPTY_LIST MARK APPENDS TUPLE
            b'J' => 4,                           // BININT
            b'G' => 8,                           // BINFLOAT
            0x8a => 1 + usize::from(payload[i]), // LONG1
            b'X' => {
                // BINUNICODE
                let len = u32::from_le_bytes(payload[i..i + 4].try_into().unwrap());
                4 + len as usize
            }
            b'.' => {
                assert_eq!(i, payload.len(), "STOP is the last byte");
                return;
            }
            other => panic!("unexpected opcode {other:#04x} at offset {}", i - 1),
        };
        i += arg;
    }
}

/// Decodes every frame, checking headers, opcodes and limits, and returns all points.
fn decode_all(out: &[u8], ranges: &[Range<usize>], max_frame: usize, max_points: usize) -> Decoded {
    let mut all = Vec::new();
    let mut expected_start = 0;
    for range in ranges {
        assert_eq!(range.start, expected_start, "frames are back to back");
        expected_start = range.end;
        let payload = payload(out, range);
        assert!(
            payload.len() <= max_frame,
            "payload {} > {max_frame}",
            payload.len()
        );
        assert_plain_opcodes(payload);
        let points = decode(payload);
        assert!(!points.is_empty(), "no empty frames");
        assert!(
            points.len() <= max_points,
            "{} points > {max_points}",
            points.len()
        );
        all.extend(points);
    }
    assert_eq!(expected_start, out.len(), "frames cover the whole output");
    all
}

#[test]
fn points_round_trip_as_str_int_float_tuples_in_one_frame() {
    let mut frames = PickleFrames::new(1 << 20, 500);
    assert!(frames.push(b"a.b.c", 1_700_000_000, 1.5));
    assert!(frames.push(b"x;k=v", 0, -0.0));
    assert!(frames.push(b"big.ts", 1 << 40, 1e300));
    let (out, ranges) = finish(&mut frames);
    assert_eq!(ranges.len(), 1);
    let expected = vec![
        ("a.b.c".to_owned(), (1_700_000_000, 1.5)),
        ("x;k=v".to_owned(), (0, -0.0)),
        ("big.ts".to_owned(), (1 << 40, 1e300)),
    ];
    assert_eq!(decode_all(&out, &ranges, 1 << 20, 500), expected);
}

#[test]
fn paths_are_unicode_strings_not_bytes() {
    let mut frames = PickleFrames::new(1 << 20, 500);
    assert!(frames.push("héllo.wörld.日本".as_bytes(), 1, 2.0));
    let (out, ranges) = finish(&mut frames);
    let payload = payload(&out, &ranges[0]);
    let value = serde_pickle::value_from_slice(payload, DeOptions::new()).unwrap();
    let expected = Value::List(vec![Value::Tuple(vec![
        Value::String("héllo.wörld.日本".to_owned()),
        Value::Tuple(vec![Value::I64(1), Value::F64(2.0)]),
    ])]);
    assert_eq!(value, expected);
}

#[test]
fn the_payload_is_the_exact_protocol_2_opcode_sequence() {
    let mut frames = PickleFrames::new(1 << 20, 500);
    assert!(frames.push(b"a", 1, 0.5));
    let (out, ranges) = finish(&mut frames);
    let mut expected = vec![0, 0, 0, 0, 0x80, 2, b']', b'('];
    expected.extend_from_slice(b"(X\x01\x00\x00\x00a(J\x01\x00\x00\x00G");
    expected.extend_from_slice(&0.5f64.to_be_bytes());
    expected.extend_from_slice(b"tte.");
    let len = u32::try_from(expected.len() - HEADER_LEN).unwrap();
    expected[..HEADER_LEN].copy_from_slice(&len.to_be_bytes());
    assert_eq!(out, expected);
    assert_eq!(ranges, vec![0..out.len()]);
}

/// Concatenates byte pieces (the expected frames below are written piece by piece).
fn cat(pieces: &[&[u8]]) -> Vec<u8> {
    pieces.concat()
}

/// `("a", (ts, 0.5))` written out from the protocol-2 opcode table, for the batch cases:
/// `MARK`, `BINUNICODE` (`X`, u32 little-endian byte length 1, `a`), `MARK`, `BININT`
/// (`J`, i32 little-endian), `BINFLOAT` (`G`, f64 big-endian: 0.5 is 3fe0 0000 0000 0000),
/// `TUPLE`, `TUPLE`: 24 bytes.
fn point_a(ts: u32) -> Vec<u8> {
    assert!(ts < 0x8000_0000, "BININT range");
    cat(&[
        b"(X\x01\x00\x00\x00a(J",
        &ts.to_le_bytes(),
        b"G\x3f\xe0\x00\x00\x00\x00\x00\x00tt",
    ])
}

/// One exact-bytes case: what goes in, the frame limit, and every frame expected out
/// (4-byte big-endian length header included), all written by hand from the pickle
/// protocol-2 opcode table, not produced by the encoder or by `serde-pickle`. The limit
/// is the exact payload size for one-frame cases (a size prediction that is too large
/// splits them) or one byte less (one that is too small overfills and splits elsewhere).
struct ExactCase {
    name: &'static str,
    max_frame: usize,
    points: Vec<(Vec<u8>, u64, f64)>,
    frames: Vec<Vec<u8>>,
}

/// Opcodes used: `\x80\x02` `PROTO 2`, `]` `EMPTY_LIST`, `(` `MARK`, `e` `APPENDS`,
/// `X` `BINUNICODE`, `J` `BININT`, `\x8a` `LONG1`, `G` `BINFLOAT`, `t` `TUPLE`, `.` `STOP`.
#[allow(clippy::too_many_lines, reason = "a table of hand-written frames")]
fn exact_cases() -> Vec<ExactCase> {
    let p = |path: &str, ts: u64, value: f64| (path.as_bytes().to_vec(), ts, value);
    // The batch cases: 999, 1000 and 1001 points `("a", (i, 0.5))`. Like Python's pickler,
    // the encoder closes a MARK…APPENDS batch after 1000 list items and opens another;
    // at exactly 1000 the second batch is empty (`e(` then `e.`), which unpickles fine.
    let batch = |n: u32| -> Vec<u8> { (0..n).flat_map(point_a).collect() };
    vec![
        ExactCase {
            // 2 + 1 + 1 + (26 + 24 + 24) + 1 + 1 = 80 = 0x50 payload bytes.
            name: "several points in one frame",
            max_frame: 80,
            points: vec![
                p("a.b", 1_700_000_000, 1.5),
                p("x", 0, 2.0),
                p("y", 60, 100.0),
            ],
            frames: vec![cat(&[
                b"\x00\x00\x00\x50",
                b"\x80\x02](",
                // 1_700_000_000 = 0x6553f100; 1.5 = 3ff8 0000 0000 0000
                b"(X\x03\x00\x00\x00a.b(J\x00\xf1\x53\x65G\x3f\xf8\x00\x00\x00\x00\x00\x00tt",
                // 0; 2.0 = 4000 0000 0000 0000
                b"(X\x01\x00\x00\x00x(J\x00\x00\x00\x00G\x40\x00\x00\x00\x00\x00\x00\x00tt",
                // 60 = 0x3c; 100.0 = 4059 0000 0000 0000
                b"(X\x01\x00\x00\x00y(J\x3c\x00\x00\x00G\x40\x59\x00\x00\x00\x00\x00\x00tt",
                b"e.",
            ])],
        },
        ExactCase {
            // 4 + 28 + 2 = 34 = 0x22.
            name: "a tagged path is one str, semicolons and all",
            max_frame: 34,
            points: vec![p("a;k=v", 60, 1.0)],
            frames: vec![cat(&[
                b"\x00\x00\x00\x22\x80\x02](",
                b"(X\x05\x00\x00\x00a;k=v(J\x3c\x00\x00\x00G\x3f\xf0\x00\x00\x00\x00\x00\x00tt",
                b"e.",
            ])],
        },
        ExactCase {
            // "é.日" is 6 UTF-8 bytes (c3a9 2e e697a5): BINUNICODE counts bytes, not
            // characters. 4 + 29 + 2 = 35 = 0x23.
            name: "a non-ASCII path is BINUNICODE with its UTF-8 byte length",
            max_frame: 35,
            points: vec![p("\u{e9}.\u{65e5}", 60, 1.0)],
            frames: vec![cat(&[
                b"\x00\x00\x00\x23\x80\x02](",
                b"(X\x06\x00\x00\x00\xc3\xa9.\xe6\x97\xa5",
                b"(J\x3c\x00\x00\x00G\x3f\xf0\x00\x00\x00\x00\x00\x00tt",
                b"e.",
            ])],
        },
        ExactCase {
            // BININT is a signed i32, so 2^31 - 1 is its last timestamp; from 2^31 on a
            // timestamp is LONG1: a length byte (9 here) and that many bytes of
            // little-endian two's complement, the 9th a zero sign byte so the value
            // stays positive. (Python's pickler would write the shortest form, 5 bytes
            // for 2^31; any length is valid and decodes to the same int.)
            // 4 + 24 + 3 * 30 + 2 = 120 = 0x78.
            name: "timestamps from 2^31 on are LONG1 big ints",
            max_frame: 120,
            points: vec![
                p("t", 0x7fff_ffff, 1.0),
                p("t", 0x8000_0000, 1.0),
                p("t", 1 << 32, 1.0),
                p("t", u64::MAX, 1.0),
            ],
            frames: vec![cat(&[
                b"\x00\x00\x00\x78\x80\x02](",
                b"(X\x01\x00\x00\x00t(J\xff\xff\xff\x7f",
                b"G\x3f\xf0\x00\x00\x00\x00\x00\x00tt",
                b"(X\x01\x00\x00\x00t(\x8a\x09\x00\x00\x00\x80\x00\x00\x00\x00\x00",
                b"G\x3f\xf0\x00\x00\x00\x00\x00\x00tt",
                b"(X\x01\x00\x00\x00t(\x8a\x09\x00\x00\x00\x00\x01\x00\x00\x00\x00",
                b"G\x3f\xf0\x00\x00\x00\x00\x00\x00tt",
                b"(X\x01\x00\x00\x00t(\x8a\x09\xff\xff\xff\xff\xff\xff\xff\xff\x00",
                b"G\x3f\xf0\x00\x00\x00\x00\x00\x00tt",
                b"e.",
            ])],
        },
        ExactCase {
            // The same four points with a limit one byte short: the first three fill
            // 4 + 24 + 30 + 30 + 2 = 90 = 0x5a bytes, the last goes alone (4 + 30 + 2 = 36
            // = 0x24). A prediction that sized LONG1 too small would try all four.
            name: "a frame limit one byte short of the LONG1 frame splits before the last",
            max_frame: 119,
            points: vec![
                p("t", 0x7fff_ffff, 1.0),
                p("t", 0x8000_0000, 1.0),
                p("t", 1 << 32, 1.0),
                p("t", u64::MAX, 1.0),
            ],
            frames: vec![
                cat(&[
                    b"\x00\x00\x00\x5a\x80\x02](",
                    b"(X\x01\x00\x00\x00t(J\xff\xff\xff\x7f",
                    b"G\x3f\xf0\x00\x00\x00\x00\x00\x00tt",
                    b"(X\x01\x00\x00\x00t(\x8a\x09\x00\x00\x00\x80\x00\x00\x00\x00\x00",
                    b"G\x3f\xf0\x00\x00\x00\x00\x00\x00tt",
                    b"(X\x01\x00\x00\x00t(\x8a\x09\x00\x00\x00\x00\x01\x00\x00\x00\x00",
                    b"G\x3f\xf0\x00\x00\x00\x00\x00\x00tt",
                    b"e.",
                ]),
                cat(&[
                    b"\x00\x00\x00\x24\x80\x02](",
                    b"(X\x01\x00\x00\x00t(\x8a\x09\xff\xff\xff\xff\xff\xff\xff\xff\x00",
                    b"G\x3f\xf0\x00\x00\x00\x00\x00\x00tt",
                    b"e.",
                ]),
            ],
        },
        ExactCase {
            // -2.5 = c004 0000 0000 0000; 0.1 = 3fb9 9999 9999 999a (the nearest double);
            // -0.0 = 8000 0000 0000 0000. 4 + 3 * 24 + 2 = 78 = 0x4e.
            name: "negative, fractional and negative-zero values are BINFLOAT bits",
            max_frame: 78,
            points: vec![p("n", 1, -2.5), p("f", 1, 0.1), p("z", 1, -0.0)],
            frames: vec![cat(&[
                b"\x00\x00\x00\x4e\x80\x02](",
                b"(X\x01\x00\x00\x00n(J\x01\x00\x00\x00G\xc0\x04\x00\x00\x00\x00\x00\x00tt",
                b"(X\x01\x00\x00\x00f(J\x01\x00\x00\x00G\x3f\xb9\x99\x99\x99\x99\x99\x9att",
                b"(X\x01\x00\x00\x00z(J\x01\x00\x00\x00G\x80\x00\x00\x00\x00\x00\x00\x00tt",
                b"e.",
            ])],
        },
        ExactCase {
            // 4 + 999 * 24 + 2 = 23982 = 0x5dae: one batch. Each batch case sets the
            // frame limit to exactly its payload, so a size prediction that counted a
            // batch too many would split the frame.
            name: "999 points are one MARK…APPENDS batch and fill a frame exactly",
            max_frame: 23_982,
            points: (0..999).map(|i| p("a", i, 0.5)).collect(),
            frames: vec![cat(&[b"\x00\x00\x5d\xae\x80\x02](", &batch(999), b"e."])],
        },
        ExactCase {
            // 4 + 1000 * 24 + 2 + 2 = 24008 = 0x5dc8.
            name: "1000 points close the batch and open an empty one",
            max_frame: 24_008,
            points: (0..1000).map(|i| p("a", i, 0.5)).collect(),
            frames: vec![cat(&[b"\x00\x00\x5d\xc8\x80\x02](", &batch(1000), b"e(e."])],
        },
        ExactCase {
            // One byte short of the 1000-point frame: 999 points (23982 bytes) fit, the
            // 1000th goes alone (4 + 24 + 2 = 30 = 0x1e). A prediction that forgot the
            // `e(` written after the 1000th item would try 1000 and split elsewhere.
            name: "a frame limit one byte short of 1000 points splits after 999",
            max_frame: 24_007,
            points: (0..1000).map(|i| p("a", i, 0.5)).collect(),
            frames: vec![
                cat(&[b"\x00\x00\x5d\xae\x80\x02](", &batch(999), b"e."]),
                cat(&[b"\x00\x00\x00\x1e\x80\x02](", &point_a(999), b"e."]),
            ],
        },
        ExactCase {
            // 4 + 1000 * 24 + 2 + 24 + 2 = 24032 = 0x5de0.
            name: "the 1001st point goes in a second batch",
            max_frame: 24_032,
            points: (0..1001).map(|i| p("a", i, 0.5)).collect(),
            frames: vec![cat(&[
                b"\x00\x00\x5d\xe0\x80\x02](",
                &batch(1000),
                b"e(",
                &point_a(1000),
                b"e.",
            ])],
        },
        ExactCase {
            // One byte short of the 1001-point frame: the first frame takes 1000 points
            // (24008 bytes, the empty second batch included), the last goes alone.
            name: "a frame limit one byte short of 1001 points splits after 1000",
            max_frame: 24_031,
            points: (0..1001).map(|i| p("a", i, 0.5)).collect(),
            frames: vec![
                cat(&[b"\x00\x00\x5d\xc8\x80\x02](", &batch(1000), b"e(e."]),
                cat(&[b"\x00\x00\x00\x1e\x80\x02](", &point_a(1000), b"e."]),
            ],
        },
    ]
}

#[test]
fn frames_match_hand_written_protocol_2_bytes_and_decode_to_the_points() {
    for case in exact_cases() {
        let name = case.name;
        let mut frames = PickleFrames::new(case.max_frame, usize::MAX);
        for (path, ts, value) in &case.points {
            assert!(frames.push(path, *ts, *value), "{name}: push");
        }
        let (out, ranges) = finish(&mut frames);
        let got: Vec<&[u8]> = ranges.iter().map(|r| &out[r.clone()]).collect();
        assert_eq!(got.len(), case.frames.len(), "{name}: frame count");
        for (i, (got, want)) in got.iter().zip(&case.frames).enumerate() {
            if got != want {
                let at = got.iter().zip(want).position(|(g, w)| g != w);
                panic!(
                    "{name}: frame {i} differs at byte {at:?} (lengths {} and {})",
                    got.len(),
                    want.len()
                );
            }
        }
        // And serde-pickle reads the hand-written frames back as the points pushed
        // (values compared bit for bit, so -0.0 is not 0.0).
        let mut decoded = Vec::new();
        for frame in &case.frames {
            let value = serde_pickle::value_from_slice(&frame[HEADER_LEN..], DeOptions::new())
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let Value::List(items) = value else {
                panic!("{name}: not a list")
            };
            decoded.extend(items);
        }
        let expected: Vec<Value> = case
            .points
            .iter()
            .map(|(path, ts, value)| {
                let path = std::str::from_utf8(path).unwrap().to_owned();
                let ts = i64::try_from(*ts).map_or_else(|_| Value::Int((*ts).into()), Value::I64);
                Value::Tuple(vec![
                    Value::String(path),
                    Value::Tuple(vec![ts, Value::F64(*value)]),
                ])
            })
            .collect();
        assert_eq!(decoded.len(), expected.len(), "{name}: decoded count");
        for (d, e) in decoded.iter().zip(&expected) {
            let bits = |v: &Value| match v {
                Value::Tuple(t) => match &t[1] {
                    Value::Tuple(inner) => match inner[1] {
                        Value::F64(f) => f.to_bits(),
                        _ => panic!("{name}: value not a float: {v:?}"),
                    },
                    _ => panic!("{name}: not a pair: {v:?}"),
                },
                _ => panic!("{name}: not a tuple: {v:?}"),
            };
            assert_eq!(d, e, "{name}");
            assert_eq!(bits(d), bits(e), "{name}: value bits");
        }
    }
}

#[test]
fn predicted_sizes_match_serde_pickle_output_exactly() {
    let timestamps = [0, 1, 0x7fff_ffff, 0x8000_0000, 1 << 32, u64::MAX];
    for count in [1, 2, 999, 1000, 1001, 2000, 2500] {
        for ts in timestamps {
            let mut frames = PickleFrames::new(usize::MAX, usize::MAX);
            for i in 0..count {
                assert!(frames.push(format!("p.{i}").as_bytes(), ts, 1.0));
            }
            let predicted =
                frame_overhead(count) + frames.entries.iter().map(Entry::size).sum::<usize>();
            let (out, ranges) = finish(&mut frames);
            assert_eq!(ranges.len(), 1);
            assert_eq!(out.len() - HEADER_LEN, predicted, "count {count}, ts {ts}");
            assert_plain_opcodes(&out[HEADER_LEN..]);
        }
    }
}

#[test]
fn timestamps_past_i64_max_are_written_as_python_ints() {
    let mut frames = PickleFrames::new(1 << 20, 500);
    assert!(frames.push(b"a", u64::MAX, 1.0));
    let (out, ranges) = finish(&mut frames);
    let value =
        serde_pickle::value_from_slice(payload(&out, &ranges[0]), DeOptions::new()).unwrap();
    let Value::List(items) = value else {
        panic!("not a list: {value:?}")
    };
    let Value::Tuple(ref pair) = items[0] else {
        panic!("not a tuple")
    };
    let Value::Tuple(ref inner) = pair[1] else {
        panic!("not a tuple")
    };
    assert_eq!(inner[0], Value::Int(u64::MAX.into()));
}

#[test]
fn frames_split_at_max_points() {
    let mut frames = PickleFrames::new(1 << 20, 3);
    let expected: Decoded = (0..8u32)
        .map(|i| (format!("m.{i}"), (u64::from(i), f64::from(i))))
        .collect();
    for (path, (ts, value)) in &expected {
        assert!(frames.push(path.as_bytes(), *ts, *value));
    }
    let (out, ranges) = finish(&mut frames);
    assert_eq!(ranges.len(), 3);
    let counts: Vec<usize> = ranges
        .iter()
        .map(|r| decode(payload(&out, r)).len())
        .collect();
    assert_eq!(counts, [3, 3, 2]);
    assert_eq!(decode_all(&out, &ranges, 1 << 20, 3), expected);
}

#[test]
fn frames_split_at_max_frame_and_a_full_frame_is_filled_exactly() {
    // Each point "m.N" is 26 bytes, so 6 + 3 * 26 = 84 bytes hold exactly three.
    let max_frame = frame_overhead(3) + 3 * point_size(3, 1);
    assert_eq!(max_frame, 84);
    let mut frames = PickleFrames::new(max_frame, 500);
    let expected: Decoded = (0..7u32).map(|i| (format!("m.{i}"), (1, 0.25))).collect();
    for (path, (ts, value)) in &expected {
        assert!(frames.push(path.as_bytes(), *ts, *value));
    }
    let (out, ranges) = finish(&mut frames);
    let lens: Vec<usize> = ranges.iter().map(|r| r.len() - HEADER_LEN).collect();
    assert_eq!(lens, [84, 84, 32]);
    assert_eq!(decode_all(&out, &ranges, max_frame, 500), expected);
}

#[test]
fn a_point_too_big_for_any_frame_is_refused_and_the_rest_still_sent() {
    let max_frame = frame_overhead(1) + point_size(10, 1);
    let mut frames = PickleFrames::new(max_frame, 500);
    assert!(frames.push(b"0123456789", 1, 1.0), "exactly fits");
    assert!(!frames.push(b"0123456789a", 1, 1.0), "one byte over");
    assert!(
        !frames.push(b"0123456789", 1 << 31, 1.0),
        "LONG1 timestamp pushes it over"
    );
    let (out, ranges) = finish(&mut frames);
    assert_eq!(ranges.len(), 1);
    assert_eq!(ranges[0].len() - HEADER_LEN, max_frame);
    assert_eq!(
        decode(payload(&out, &ranges[0])),
        vec![("0123456789".to_owned(), (1, 1.0))]
    );
}

#[test]
fn a_path_that_is_not_utf8_is_refused() {
    let mut frames = PickleFrames::new(1 << 20, 500);
    assert!(!frames.push(b"a.\xff.b", 1, 1.0));
    let (out, ranges) = finish(&mut frames);
    assert!(out.is_empty());
    assert!(ranges.is_empty());
}

#[test]
fn finish_appends_to_the_buffers_and_clears_the_queue() {
    let mut frames = PickleFrames::new(1 << 20, 500);
    let mut out = b"prefix".to_vec();
    let mut ranges = Vec::new();
    ranges.push(0..6);
    assert!(frames.push(b"a", 1, 1.0));
    frames.finish(&mut out, &mut ranges);
    assert_eq!(&out[..6], b"prefix");
    assert_eq!(ranges.len(), 2);
    assert_eq!(ranges[1].start, 6);
    assert_eq!(
        decode(payload(&out, &ranges[1])),
        vec![("a".to_owned(), (1, 1.0))]
    );

    let before = out.len();
    frames.finish(&mut out, &mut ranges);
    assert_eq!(out.len(), before, "an empty queue writes nothing");
    assert_eq!(ranges.len(), 2);

    assert!(frames.push(b"b", 2, 2.0));
    frames.finish(&mut out, &mut ranges);
    assert_eq!(
        decode(payload(&out, &ranges[2])),
        vec![("b".to_owned(), (2, 2.0))]
    );
}

#[test]
fn a_warm_finish_does_not_grow_any_buffer() {
    let mut frames = PickleFrames::new(300, 4);
    let mut out = Vec::new();
    let mut ranges = Vec::new();
    let push_all = |frames: &mut PickleFrames| {
        for i in 0..50u32 {
            assert!(frames.push(format!("svc.host{i}.metric").as_bytes(), 1_700_000_000, 0.5));
        }
    };
    push_all(&mut frames);
    frames.finish(&mut out, &mut ranges);
    let caps = (
        out.capacity(),
        ranges.capacity(),
        frames.paths.capacity(),
        frames.entries.capacity(),
    );
    for _ in 0..3 {
        out.clear();
        ranges.clear();
        push_all(&mut frames);
        frames.finish(&mut out, &mut ranges);
        let now = (
            out.capacity(),
            ranges.capacity(),
            frames.paths.capacity(),
            frames.entries.capacity(),
        );
        assert_eq!(now, caps);
    }
}

fn path_strategy() -> impl Strategy<Value = String> {
    prop_oneof!["[a-z0-9_.;=-]{1,40}", "\\PC{1,20}", "[a-z]{100,300}",]
}

proptest! {
    #[test]
    fn every_point_arrives_once_in_order_within_the_limits(
        points in prop::collection::vec(
            (path_strategy(), prop_oneof![0..0x8000_0000u64, 0..=i64::MAX as u64], any::<f64>()
                .prop_filter("finite", |v| v.is_finite())),
            0..60,
        ),
        max_frame in 30usize..2000,
        max_points in 0usize..20,
    ) {
        let mut frames = PickleFrames::new(max_frame, max_points);
        let mut expected = Vec::new();
        for (path, ts, value) in points {
            let fits = frame_overhead(1) + point_size(path.len(), ts) <= max_frame;
            prop_assert_eq!(frames.push(path.as_bytes(), ts, value), fits);
            if fits {
                expected.push((path, (ts, value)));
            }
        }
        let (out, ranges) = finish(&mut frames);
        let got = decode_all(&out, &ranges, max_frame, max_points.max(1));
        prop_assert_eq!(got.len(), expected.len());
        for (g, e) in got.iter().zip(&expected) {
            prop_assert_eq!(&g.0, &e.0);
            prop_assert_eq!(g.1.0, e.1.0);
            prop_assert_eq!(g.1.1.to_bits(), e.1.1.to_bits());
        }
        // Greedy packing: no frame could have taken the next frame's first point.
        for pair in ranges.windows(2) {
            let this = decode(payload(&out, &pair[0]));
            let next = decode(payload(&out, &pair[1]));
            let (path, (ts, _)) = &next[0];
            let grown = pair[0].len() - HEADER_LEN + point_size(path.len(), *ts)
                + frame_overhead(this.len() + 1) - frame_overhead(this.len());
            prop_assert!(this.len() == max_points.max(1) || grown > max_frame);
        }
    }
}
