//! A TCP listener on loopback that keeps what its first connection sends, for benches that
//! need the exact lines an exporter sends (`benches/compare`'s and `benches/pickle`'s ideal
//! loops): TCP, because a burst of a million datagrams would overflow a receive buffer.

use std::io::Read;
use std::net::TcpListener;
use std::thread::JoinHandle;

/// The listener's `tcp://` address, and a reader that returns what arrived once it holds
/// `lines` newlines (or the connection closed).
pub(crate) fn capture(lines: usize) -> (String, JoinHandle<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = format!("tcp://{}", listener.local_addr().expect("addr"));
    let reader = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().expect("accept");
        let (mut text, mut buf, mut seen) = (Vec::new(), vec![0u8; 65_536], 0);
        while seen < lines {
            match conn.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(got) => {
                    #[allow(clippy::naive_bytecount, reason = "setup, not measured")]
                    let newlines = buf[..got].iter().filter(|&&b| b == b'\n').count();
                    seen += newlines;
                    text.extend_from_slice(&buf[..got]);
                }
            }
        }
        text
    });
    (addr, reader)
}
