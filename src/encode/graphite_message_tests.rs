use super::*;

const TS: u64 = 1_700_000_000;

fn plaintext(points: &[(&str, f64, u64)]) -> String {
    let mut batch = GraphitePoints::new();
    for &(path, value, ts) in points {
        batch.push(path, value, ts).unwrap();
    }
    String::from_utf8(batch.plaintext().to_vec()).unwrap()
}

#[test]
fn each_point_is_one_plaintext_line_exactly_as_the_client_writes_it() {
    let table: &[(&str, f64, u64, &str)] = &[
        ("a.b.c", 1.0, TS, "a.b.c 1 1700000000\n"),
        ("a.b.c", -2.5, TS, "a.b.c -2.5 1700000000\n"),
        ("a.b.c", -0.0, TS, "a.b.c 0 1700000000\n"),
        ("a.b.c", 1e300, TS, "a.b.c 1e300 1700000000\n"),
        ("a.b.c", 0.1, 0, "a.b.c 0.1 0\n"),
        ("a.b.c", 7.0, u64::MAX, "a.b.c 7 18446744073709551615\n"),
        ("a b/c\nd", 1.0, TS, "a_b_c_d 1 1700000000\n"),
        (".a..b.", 1.0, TS, "a.b 1 1700000000\n"),
        ("caf\u{e9}.\u{1F600}", 1.0, TS, "caf_._ 1 1700000000\n"),
        // Tags: sorted by key, sanitised, empty values and `=`-less tags left out.
        ("x;b=2;a=1", 1.0, TS, "x;a=1;b=2 1 1700000000\n"),
        ("x;k=a b;e=;bare", 1.0, TS, "x;k=a_b 1 1700000000\n"),
        ("x;name=n;k=~v", 1.0, TS, "x;k=_v;name_=n 1 1700000000\n"),
        ("x;k=v=w;k2=a:b", 1.0, TS, "x;k=v=w;k2=a:b 1 1700000000\n"),
        ("x;e=", 1.0, TS, "x 1 1700000000\n"),
        ("x;;;", 1.0, TS, "x 1 1700000000\n"),
    ];
    for &(path, value, ts, want) in table {
        assert_eq!(plaintext(&[(path, value, ts)]), want, "{path:?}");
    }
}

#[test]
fn a_batch_is_its_points_lines_in_the_order_pushed() {
    assert_eq!(
        plaintext(&[("b", 2.0, TS), ("a", 1.0, TS + 1), ("b", 3.0, TS)]),
        "b 2 1700000000\na 1 1700000001\nb 3 1700000000\n"
    );
}

#[test]
fn a_refused_point_leaves_the_batch_as_it_was() {
    let mut batch = GraphitePoints::new();
    batch.push("ok", 1.0, TS).unwrap();
    let table: &[(&str, f64, EncodeError)] = &[
        ("x", f64::NAN, EncodeError::NotFinite),
        ("x", f64::INFINITY, EncodeError::NotFinite),
        ("x", f64::NEG_INFINITY, EncodeError::NotFinite),
        ("", 1.0, EncodeError::EmptyPath),
        ("...", 1.0, EncodeError::EmptyPath),
        (";k=v", 1.0, EncodeError::EmptyPath),
        ("NaN-path", f64::NAN, EncodeError::NotFinite),
    ];
    for &(path, value, ref want) in table {
        assert_eq!(batch.push(path, value, TS), Err(*want), "{path:?} {value}");
    }
    assert_eq!(batch.len(), 1);
    assert_eq!(batch.plaintext(), b"ok 1 1700000000\n");
}

#[test]
fn a_path_too_long_for_carbon_is_shortened_as_the_recorders_names_are() {
    let long = "x".repeat(300);
    let text = plaintext(&[(long.as_str(), 1.0, TS)]);
    let path = text.split(' ').next().unwrap();
    assert_eq!(path.len(), 251, "{path}");
    assert!(path.starts_with(&"x".repeat(234)), "{path}");
    assert_eq!(path.as_bytes()[234], b'-', "{path}");
}

/// The pickle frame for `points`, written opcode by opcode as `serde-pickle` writes protocol 2
/// (independently of `PickleFrames`): `MARK ... TUPLE` for each tuple.
fn frame(points: &[(&str, u32, f64)]) -> Vec<u8> {
    let mut p = vec![0x80, 2, b']', b'('];
    for (path, ts, value) in points {
        p.extend_from_slice(b"(X");
        p.extend_from_slice(&u32::try_from(path.len()).unwrap().to_le_bytes());
        p.extend_from_slice(path.as_bytes());
        p.extend_from_slice(b"(J");
        p.extend_from_slice(&ts.to_le_bytes());
        p.push(b'G');
        p.extend_from_slice(&value.to_be_bytes());
        p.extend_from_slice(b"tt");
    }
    p.extend_from_slice(b"e.");
    let mut out = u32::try_from(p.len()).unwrap().to_be_bytes().to_vec();
    out.extend_from_slice(&p);
    out
}

#[test]
fn the_pickle_message_is_one_big_endian_length_and_the_points_as_tuples() {
    let mut batch = GraphitePoints::new();
    batch.push("a.b", 1.5, TS).unwrap();
    batch.push("x;b=2;a=1", -3.0, TS + 60).unwrap();
    batch.push("we ird", 0.0, 0).unwrap();
    let mut out = b"kept".to_vec();
    batch.write_pickle(&mut out);
    let ts = u32::try_from(TS).unwrap();
    let mut want = b"kept".to_vec();
    want.extend(frame(&[
        ("a.b", ts, 1.5),
        ("x;a=1;b=2", ts + 60, -3.0),
        ("we_ird", 0, 0.0),
    ]));
    assert_eq!(out, want);
}

#[test]
fn an_empty_batch_writes_no_bytes_at_all() {
    let mut batch = GraphitePoints::new();
    assert!(batch.is_empty());
    assert_eq!(batch.plaintext(), b"");
    let mut out = Vec::new();
    batch.write_pickle(&mut out);
    assert!(out.is_empty());
    batch.push("a", 1.0, TS).unwrap();
    batch.clear();
    batch.write_pickle(&mut out);
    assert!(out.is_empty() && batch.is_empty() && batch.plaintext().is_empty());
}

#[test]
fn the_pickle_message_comes_from_the_points_kept_for_the_accepted_lines_and_matches_their_text() {
    let mut batch = GraphitePoints::new();
    let long = format!("x{}", "y".repeat(17_000));
    for (i, (path, value)) in [
        ("a.b;k=v", 1.5),
        ("refused", f64::NAN),
        ("-0", -0.0),
        (long.as_str(), 1.0),
        ("ünï.cödé", 9_007_199_254_740_993.0),
        ("tiny", 5e-324),
    ]
    .into_iter()
    .enumerate()
    {
        let _ = batch.push(path, value, TS + i as u64);
    }
    // The NaN is refused; the long path is shortened for carbon's file names, not refused.
    assert_eq!(batch.len(), 5);
    assert_eq!(
        batch.lines.committed_points().map(<[_]>::len),
        Some(5),
        "one point per line kept"
    );
    let mut out = Vec::new();
    batch.write_pickle(&mut out);
    let mut from_text = PickleWire::new(MAX_PICKLE_FRAME);
    assert_eq!(out, from_text.encode(batch.plaintext()));
}

#[test]
fn a_large_batch_is_cut_into_frames_under_carbons_limit_holding_every_point_once() {
    let mut batch = GraphitePoints::new();
    let n: u32 = 40_000;
    for i in 0..n {
        batch
            .push(&format!("bulk.series{i}"), f64::from(i), TS)
            .unwrap();
    }
    let mut out = Vec::new();
    batch.write_pickle(&mut out);
    let (mut at, mut frames, mut points) = (0, 0, 0);
    while at < out.len() {
        let len = u32::from_be_bytes(out[at..at + 4].try_into().unwrap()) as usize;
        // Carbon's `PICKLE_RECEIVER_MAX_LENGTH` (1 MiB): a longer frame closes the connection.
        assert!(len <= 1 << 20, "frame of {len} bytes");
        let payload = &out[at + 4..at + 4 + len];
        assert_eq!(&payload[..2], &[0x80, 2]);
        assert_eq!(payload.last(), Some(&b'.'));
        points += payload.windows(11).filter(|w| w == b"bulk.series").count();
        frames += 1;
        at += 4 + len;
    }
    assert_eq!(at, out.len());
    assert!(frames > 1, "{frames} frames");
    assert_eq!(points, n as usize);
}

#[test]
fn tagged_names_shorten_for_the_carbon_file_naming_asked_for() {
    let path = format!("t;k={}", "v".repeat(300));
    let mut hashed = GraphitePoints::new();
    let mut readable = GraphitePoints::with_tag_hash_filenames(false);
    hashed.push(&path, 1.0, TS).unwrap();
    readable.push(&path, 1.0, TS).unwrap();
    assert!(
        hashed.plaintext().len() > 300,
        "kept: carbon names the file by a hash"
    );
    assert!(
        readable.plaintext().len() < 260,
        "shortened to a readable file name"
    );
}
