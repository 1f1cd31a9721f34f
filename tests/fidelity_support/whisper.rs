//! Reads the points of a whisper file directly (format of whisper 1.1: a 16-byte header of
//! aggregation type, max retention, x-files factor and archive count, then 12 bytes of
//! offset, seconds per point and point count per archive, then 12-byte points of a
//! big-endian `u32` timestamp and `f64` value). `whisper-fetch` costs ~70 ms of Python per
//! file, too slow to poll a hundred files; this reads them in microseconds. The fidelity
//! tests cross-check it against `Carbon::points` (whisper-fetch) on a few files.
#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::fs;
use std::io;
use std::path::Path;

fn be_u32(bytes: &[u8], at: usize) -> io::Result<u32> {
    bytes
        .get(at..at + 4)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_be_bytes)
        .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "whisper file too short"))
}

fn be_f64(bytes: &[u8], at: usize) -> io::Result<f64> {
    bytes
        .get(at..at + 8)
        .and_then(|b| b.try_into().ok())
        .map(f64::from_be_bytes)
        .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "whisper file too short"))
}

/// Every point written to the first (finest) archive of the whisper file at `path`, as
/// `(timestamp, value)` sorted by timestamp. A slot never written has timestamp 0 and is
/// left out. Meant for files created during the test (shorter-lived than their retention),
/// where no slot holds a stale point from an earlier lap of the ring.
///
/// # Errors
///
/// When the file cannot be read or is shorter than its header says.
pub(crate) fn points(path: &Path) -> io::Result<Vec<(u64, f64)>> {
    let bytes = fs::read(path)?;
    let archives = be_u32(&bytes, 12)?;
    if archives == 0 {
        return Ok(Vec::new());
    }
    let offset = usize::try_from(be_u32(&bytes, 16)?).map_err(io::Error::other)?;
    let count = usize::try_from(be_u32(&bytes, 24)?).map_err(io::Error::other)?;
    let mut out = Vec::new();
    for i in 0..count {
        let at = offset + 12 * i;
        let ts = be_u32(&bytes, at)?;
        if ts != 0 {
            out.push((u64::from(ts), be_f64(&bytes, at + 4)?));
        }
    }
    out.sort_by_key(|p| p.0);
    Ok(out)
}
