//! A TCP receiver that reads carbon pickle frames (a 4-byte big-endian length, then that many
//! bytes of pickle) and tallies them, so the pickle row's fill is computed on the pickled
//! bytes that reached the receiver, frame by frame.

use std::io::Read;
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// What the frame receiver saw.
#[derive(Debug, Default)]
pub(crate) struct FrameTally {
    frames: AtomicU64,
    /// Payload bytes (headers excluded).
    payload_bytes: AtomicU64,
    largest: AtomicU64,
    /// Frames whose pickle did not end with `STOP` (`.`): a framing error.
    malformed: AtomicU64,
}

impl FrameTally {
    /// Frames, payload bytes, largest payload and malformed frames so far.
    pub(crate) fn read(&self) -> [u64; 4] {
        [
            &self.frames,
            &self.payload_bytes,
            &self.largest,
            &self.malformed,
        ]
        .map(|c| c.load(Ordering::Relaxed))
    }

    fn frame(&self, len: u64, last: u8) {
        self.frames.fetch_add(1, Ordering::Relaxed);
        self.payload_bytes.fetch_add(len, Ordering::Relaxed);
        self.largest.fetch_max(len, Ordering::Relaxed);
        if last != b'.' {
            self.malformed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The largest pickle frame our encoder writes (`MAX_PICKLE_FRAME` in src/encode/pickle.rs,
/// under carbon's 1 MiB `PICKLE_RECEIVER_MAX_LENGTH`). Not exported outside the crate.
pub(crate) const PICKLE_FRAME_CAP: u64 = 1_000_000;

/// The fill of the frames received between two reads of a [`FrameTally`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fill {
    pub(crate) percent: f64,
    /// The limit the fill is against: the payload limit when every frame kept within it,
    /// else the frame cap (the payload limit then bounded the plaintext before pickling).
    pub(crate) limit: u64,
    pub(crate) frames: u64,
    pub(crate) largest: u64,
    pub(crate) malformed: u64,
}

impl FrameTally {
    /// The fill of the frames received since `before` (an earlier [`read`](Self::read)),
    /// whose sender was configured with `payload_limit`. `largest` is over the whole tally,
    /// so read it fresh for each exporter.
    pub(crate) fn fill_since(&self, before: [u64; 4], payload_limit: u64) -> Fill {
        let [frames, bytes, largest, malformed] = self.read();
        let (frames, bytes) = (frames - before[0], bytes - before[1]);
        let limit = if largest <= payload_limit {
            payload_limit
        } else {
            PICKLE_FRAME_CAP
        };
        Fill {
            percent: 100.0 * bytes as f64 / (frames.max(1) * limit) as f64,
            limit,
            frames,
            largest,
            malformed: malformed - before[3],
        }
    }
}

/// Where a stream is in its frames.
#[derive(Debug, Default)]
pub(crate) struct Parser {
    header: Vec<u8>,
    /// Payload bytes of the current frame still to come (0: reading a header).
    remaining: usize,
    len: u64,
    last: u8,
}

impl Parser {
    /// Tallies the frames completed by `bytes`, the next bytes of the stream.
    pub(crate) fn feed(&mut self, mut bytes: &[u8], tally: &FrameTally) {
        while !bytes.is_empty() {
            if self.remaining == 0 {
                let take = (4 - self.header.len()).min(bytes.len());
                self.header.extend_from_slice(&bytes[..take]);
                bytes = &bytes[take..];
                if self.header.len() == 4 {
                    let len = u32::from_be_bytes(self.header[..4].try_into().expect("4 bytes"));
                    self.header.clear();
                    self.len = u64::from(len);
                    self.remaining = len as usize;
                    if len == 0 {
                        tally.frame(0, 0);
                    }
                }
            } else {
                let take = self.remaining.min(bytes.len());
                self.last = bytes[take - 1];
                self.remaining -= take;
                bytes = &bytes[take..];
                if self.remaining == 0 {
                    tally.frame(self.len, self.last);
                }
            }
        }
    }
}

/// A TCP listener on 127.0.0.1 that parses every connection into pickle frames. Returns its
/// `host:port`.
pub(crate) fn pickle_sink() -> (String, Arc<FrameTally>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let tally = Arc::new(FrameTally::default());
    let t = Arc::clone(&tally);
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let t = Arc::clone(&t);
            std::thread::spawn(move || {
                let (mut buf, mut parser) = (vec![0u8; 65_536], Parser::default());
                while let Ok(n @ 1..) = conn.read(&mut buf) {
                    parser.feed(&buf[..n], &t);
                }
            });
        }
    });
    (addr, tally)
}
