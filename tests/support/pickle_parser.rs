//! A strict, test-only reader of carbon pickle frames, written from the protocol notes (carbon
//! `protocols.py` and its `SafeUnpickler`, Twisted's `Int32StringReceiver`, go-carbon's
//! `receiver/parse/pickle.go`), not from this crate's encoder.
//!
//! A frame is a 4-byte big-endian unsigned length and that many bytes of pickle. The pickle is
//! decoded with `serde-pickle` (so no globals: carbon's safe unpickler rejects any other than
//! `copy_reg._reconstructor`) and must be a non-empty list of `(str, (int, float))` tuples:
//! the path a unicode string (a byte string needs a global under protocol 2), the timestamp a
//! non-negative integer, the value a finite float (go-carbon refuses string values, and both
//! servers skip NaN). Each path must also pass the plaintext path rules of
//! `graphite_parser::parse_path`, since carbon files pickled and plaintext points alike.
//!
//! Include next to `graphite_parser.rs` (it uses `super::graphite_parser`).
#![allow(dead_code, reason = "each includer uses a different subset")]

use serde_pickle::{DeOptions, Value};

/// Carbon's `PICKLE_RECEIVER_MAX_LENGTH`: a longer frame is refused.
pub(crate) const CARBON_MAX_FRAME: usize = 1 << 20;

/// One decoded point.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Point {
    pub(crate) path: String,
    pub(crate) name: String,
    pub(crate) tags: Vec<(String, String)>,
    pub(crate) timestamp: u64,
    pub(crate) value: f64,
}

/// Splits a byte stream into frame payloads, checking every header.
pub(crate) fn split_frames(bytes: &[u8]) -> Result<Vec<&[u8]>, String> {
    let mut frames = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let Some((header, after)) = rest.split_first_chunk::<4>() else {
            return Err(format!("truncated header: {} bytes", rest.len()));
        };
        let len = u32::from_be_bytes(*header) as usize;
        if len == 0 {
            return Err("empty frame".into());
        }
        if len > CARBON_MAX_FRAME {
            return Err(format!(
                "frame of {len} bytes over carbon's {CARBON_MAX_FRAME}"
            ));
        }
        if after.len() < len {
            return Err(format!("frame of {len} bytes with {} left", after.len()));
        }
        let (frame, next) = after.split_at(len);
        frames.push(frame);
        rest = next;
    }
    Ok(frames)
}

/// Decodes one frame's pickle into its points.
pub(crate) fn parse_frame(payload: &[u8]) -> Result<Vec<Point>, String> {
    let value = serde_pickle::value_from_slice(payload, DeOptions::new())
        .map_err(|e| format!("not a plain pickle: {e}"))?;
    let Value::List(items) = value else {
        return Err(format!("not a list: {value:?}"));
    };
    if items.is_empty() {
        return Err("empty list".into());
    }
    items.iter().map(point).collect()
}

fn point(item: &Value) -> Result<Point, String> {
    let shape = || format!("not (str, (int, float)): {item:?}");
    let Value::Tuple(outer) = item else {
        return Err(shape());
    };
    let [Value::String(path), Value::Tuple(inner)] = &outer[..] else {
        return Err(shape());
    };
    let [ts, Value::F64(value)] = &inner[..] else {
        return Err(shape());
    };
    let timestamp = match ts {
        Value::I64(t) => u64::try_from(*t).map_err(|_| format!("negative timestamp {t}"))?,
        Value::Int(big) => big
            .to_string()
            .parse()
            .map_err(|e| format!("timestamp {big}: {e}"))?,
        _ => return Err(shape()),
    };
    if !value.is_finite() {
        return Err(format!("value {value} is not finite"));
    }
    let (name, tags) = super::graphite_parser::parse_path(path)?;
    Ok(Point {
        path: path.clone(),
        name,
        tags,
        timestamp,
        value: *value,
    })
}

/// Checks the reader on hand-made pickles. Call it from one test.
pub(crate) fn self_check() {
    let opts = || serde_pickle::SerOptions::new().proto_v2();
    let good =
        serde_pickle::to_vec(&vec![("a.b;k=v", (1_u64, 2.5_f64))], opts()).unwrap_or_default();
    let points = parse_frame(&good).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(points.len(), 1);
    assert_eq!((points[0].timestamp, points[0].value), (1, 2.5));
    assert_eq!(points[0].tags, vec![("k".to_owned(), "v".to_owned())]);
    let big = serde_pickle::to_vec(&vec![("a", (u64::MAX, 0.0_f64))], opts()).unwrap_or_default();
    assert_eq!(parse_frame(&big).map(|p| p[0].timestamp), Ok(u64::MAX));
    let rejected = [
        serde_pickle::to_vec(&Vec::<(String, (u64, f64))>::new(), opts()),
        serde_pickle::to_vec(&vec![("a", (1_u64, "2"))], opts()),
        serde_pickle::to_vec(&vec![("a", (1_u64, 2_u64))], opts()),
        serde_pickle::to_vec(&vec![("a", (-1_i64, 2.0_f64))], opts()),
        serde_pickle::to_vec(&vec![("a", (1.5_f64, 2.0_f64))], opts()),
        serde_pickle::to_vec(&vec![("a", (1_u64, f64::NAN))], opts()),
        serde_pickle::to_vec(&vec![("a b", (1_u64, 2.0_f64))], opts()),
        serde_pickle::to_vec(&vec![(("a", 1_u64), 2.0_f64)], opts()),
        serde_pickle::to_vec(&("a", (1_u64, 2.0_f64)), opts()),
    ];
    for bad in rejected {
        let bad = bad.unwrap_or_default();
        assert!(parse_frame(&bad).is_err(), "{bad:?} must be rejected");
    }
    let mut stream = Vec::new();
    stream.extend_from_slice(&u32::try_from(good.len()).unwrap_or(0).to_be_bytes());
    stream.extend_from_slice(&good);
    assert_eq!(split_frames(&stream).map(|f| f.len()), Ok(1));
    assert!(split_frames(&stream[..stream.len() - 1]).is_err());
    assert!(split_frames(&stream[..3]).is_err());
    assert!(split_frames(&[0, 0, 0, 0]).is_err());
    assert!(split_frames(&[0, 0x10, 0, 1]).is_err(), "over 1 MiB");
}
