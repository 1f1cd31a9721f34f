//! Tests of the Graphite receiver harness itself (tests/support/carbon.rs), independent of this
//! crate's API: raw plaintext lines and hand-built pickle frames go to carbon-cache and
//! carbon-c-relay over plain sockets and are read back through the harness. Receivers are
//! installed by `scripts/install-receivers.sh`; without them these tests are skipped locally
//! and fail under CI.

#![allow(
    clippy::float_cmp,
    reason = "the values stored here are exact: small integers and binary fractions"
)]

#[path = "support/carbon.rs"]
mod carbon;

use std::time::{Duration, Instant};

use carbon::{Carbon, CarbonRelay, send_tcp, send_udp, unix_now};

/// Upper bound for any wait; only reached when something is wrong.
const WAIT: Duration = Duration::from_secs(10);

#[allow(
    clippy::expect_used,
    reason = "test helper: a failure here fails the test"
)]
fn start_carbon() -> Option<Carbon> {
    if !carbon::require_carbon() {
        return None;
    }
    Some(Carbon::start().expect("carbon-cache starts"))
}

/// A pickle protocol-2 frame as carbon's pickle receiver wants it, written opcode by opcode:
/// 4-byte big-endian length, then `[(path, (ts, value)), ...]`.
fn pickle_frame(points: &[(&str, u32, f64)]) -> Vec<u8> {
    let mut p = vec![0x80, 2]; // PROTO 2
    p.push(b']'); // EMPTY_LIST
    p.push(b'('); // MARK
    for (path, ts, value) in points {
        p.push(b'X'); // BINUNICODE: u32 LE length + UTF-8
        let len = u32::try_from(path.len()).unwrap_or(u32::MAX);
        p.extend_from_slice(&len.to_le_bytes());
        p.extend_from_slice(path.as_bytes());
        p.push(b'J'); // BININT: i32 LE
        p.extend_from_slice(&ts.to_le_bytes());
        p.push(b'G'); // BINFLOAT: f64 BE
        p.extend_from_slice(&value.to_be_bytes());
        p.push(0x86); // TUPLE2 (ts, value)
        p.push(0x86); // TUPLE2 (path, (ts, value))
    }
    p.push(b'e'); // APPENDS
    p.push(b'.'); // STOP
    let len = u32::try_from(p.len()).unwrap_or(u32::MAX);
    let mut frame = len.to_be_bytes().to_vec();
    frame.extend_from_slice(&p);
    frame
}

#[test]
#[allow(clippy::unwrap_used, reason = "test")]
fn plaintext_over_tcp_is_stored_with_its_exact_value_and_timestamp() {
    let Some(carbon) = start_carbon() else { return };
    let now = unix_now();
    send_tcp(
        carbon.line_addr(),
        format!("harness.tcp.a 42.5 {now}\nharness.tcp.b -3 {now}\n").as_bytes(),
    )
    .unwrap();
    let a = carbon.wait_for_points("harness.tcp.a", WAIT, |p| !p.is_empty());
    assert_eq!(a, vec![(now, 42.5)], "{}", carbon.log());
    let b = carbon.wait_for_points("harness.tcp.b", WAIT, |p| !p.is_empty());
    assert_eq!(b, vec![(now, -3.0)], "{}", carbon.log());
    assert!(carbon.log_errors().is_empty(), "{:?}", carbon.log_errors());
}

#[test]
#[allow(clippy::unwrap_used, reason = "test")]
fn plaintext_over_udp_is_stored_with_its_exact_value_and_timestamp() {
    let Some(carbon) = start_carbon() else { return };
    let now = unix_now();
    let two_lines = format!("harness.udp.a 7 {now}\nharness.udp.b 0.25 {now}\n");
    send_udp(carbon.line_addr(), &[two_lines.as_bytes()]).unwrap();
    let a = carbon.wait_for_points("harness.udp.a", WAIT, |p| !p.is_empty());
    assert_eq!(a, vec![(now, 7.0)], "{}", carbon.log());
    let b = carbon.wait_for_points("harness.udp.b", WAIT, |p| !p.is_empty());
    assert_eq!(b, vec![(now, 0.25)], "{}", carbon.log());
}

#[test]
#[allow(clippy::unwrap_used, reason = "test")]
fn a_tagged_series_is_read_back_under_its_normalised_name() {
    let Some(carbon) = start_carbon() else { return };
    let now = unix_now();
    send_tcp(
        carbon.line_addr(),
        format!("harness.tagged;b=2;a=1 11 {now}\n").as_bytes(),
    )
    .unwrap();
    let points = carbon.wait_for_points("harness.tagged;a=1;b=2", WAIT, |p| !p.is_empty());
    assert_eq!(points, vec![(now, 11.0)], "{}", carbon.log());
    // Tag order in the query does not matter: both name the same file.
    assert_eq!(carbon.points("harness.tagged;b=2;a=1"), points);
    assert_eq!(
        carbon.series(),
        vec!["harness.tagged;a=1;b=2".to_owned()],
        "{}",
        carbon.log()
    );
}

#[test]
#[allow(clippy::unwrap_used, reason = "test")]
fn series_lists_plain_and_tagged_series_by_name() {
    let Some(carbon) = start_carbon() else { return };
    let now = unix_now();
    send_tcp(
        carbon.line_addr(),
        format!("harness.list.plain 1 {now}\nreadable.tagged;host=a.b;env=prod 2 {now}\n")
            .as_bytes(),
    )
    .unwrap();
    let want = vec![
        "harness.list.plain".to_owned(),
        "readable.tagged;env=prod;host=a.b".to_owned(),
    ];
    let deadline = Instant::now() + WAIT;
    while carbon.series() != want && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(carbon.series(), want, "{}", carbon.log());
    assert_eq!(
        carbon.points("readable.tagged;env=prod;host=a.b"),
        vec![(now, 2.0)]
    );
}

#[test]
#[allow(clippy::unwrap_used, reason = "test")]
fn a_hand_written_pickle_frame_is_stored() {
    let Some(carbon) = start_carbon() else { return };
    let now = unix_now();
    let ts = u32::try_from(now).unwrap();
    let frame = pickle_frame(&[
        ("harness.pickle.a", ts, 1.5),
        ("harness.pickle.b;k=v", ts, -2.5),
    ]);
    send_tcp(carbon.pickle_addr(), &frame).unwrap();
    let a = carbon.wait_for_points("harness.pickle.a", WAIT, |p| !p.is_empty());
    assert_eq!(a, vec![(now, 1.5)], "{}", carbon.log());
    let b = carbon.wait_for_points("harness.pickle.b;k=v", WAIT, |p| !p.is_empty());
    assert_eq!(b, vec![(now, -2.5)], "{}", carbon.log());
    assert!(carbon.log_errors().is_empty(), "{:?}", carbon.log_errors());
}

#[test]
#[allow(clippy::unwrap_used, reason = "test")]
fn an_invalid_line_shows_up_in_log_errors_and_is_not_stored() {
    let Some(carbon) = start_carbon() else { return };
    let now = unix_now();
    send_tcp(
        carbon.line_addr(),
        format!("harness.invalid.nots 5\nharness.invalid.ok 1 {now}\n").as_bytes(),
    )
    .unwrap();
    // The valid line after it is the marker that carbon has read the invalid one.
    let ok = carbon.wait_for_points("harness.invalid.ok", WAIT, |p| !p.is_empty());
    assert_eq!(ok, vec![(now, 1.0)], "{}", carbon.log());
    let errors = carbon.log_errors();
    assert!(
        errors
            .iter()
            .any(|e| e.contains("invalid line") && e.contains("harness.invalid.nots 5")),
        "{errors:?}\n{}",
        carbon.log()
    );
    assert!(carbon.points("harness.invalid.nots").is_empty());
    assert_eq!(carbon.series(), vec!["harness.invalid.ok".to_owned()]);
}

#[test]
#[allow(clippy::unwrap_used, reason = "test")]
fn an_invalid_pickle_frame_shows_up_in_log_errors() {
    let Some(carbon) = start_carbon() else { return };
    let junk = b"not a pickle";
    let mut frame = u32::try_from(junk.len()).unwrap().to_be_bytes().to_vec();
    frame.extend_from_slice(junk);
    send_tcp(carbon.pickle_addr(), &frame).unwrap();
    let deadline = Instant::now() + WAIT;
    while carbon.log_errors().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let errors = carbon.log_errors();
    assert!(
        errors.iter().any(|e| e.contains("invalid pickle")),
        "{errors:?}\n{}",
        carbon.log()
    );
}

#[test]
#[allow(clippy::unwrap_used, reason = "test")]
fn points_sent_before_and_after_a_restart_are_both_stored() {
    let Some(mut carbon) = start_carbon() else {
        return;
    };
    let before = unix_now();
    send_tcp(
        carbon.line_addr(),
        format!("harness.restart 1 {before}\n").as_bytes(),
    )
    .unwrap();
    let points = carbon.wait_for_points("harness.restart", WAIT, |p| !p.is_empty());
    assert_eq!(points, vec![(before, 1.0)], "{}", carbon.log());
    let old_pid = carbon.pid();
    let addr = carbon.line_addr();

    carbon.restart().unwrap();
    assert_ne!(carbon.pid(), old_pid);
    assert_eq!(carbon.line_addr(), addr);

    let after = unix_now().max(before + 1);
    send_tcp(
        carbon.line_addr(),
        format!("harness.restart 2 {after}\n").as_bytes(),
    )
    .unwrap();
    let points = carbon.wait_for_points("harness.restart", WAIT, |p| p.len() >= 2);
    assert_eq!(
        points,
        vec![(before, 1.0), (after, 2.0)],
        "{}",
        carbon.log()
    );
    assert!(
        carbon.log().contains("after restart"),
        "log covers both processes"
    );
}

#[test]
#[allow(clippy::unwrap_used, reason = "test")]
fn a_line_through_the_relay_reaches_the_capture_file_and_carbon() {
    let Some(carbon) = start_carbon() else { return };
    if !carbon::require_carbon_relay() {
        return;
    }
    let relay = CarbonRelay::start(carbon.line_addr()).unwrap();
    let now = unix_now();
    send_tcp(
        relay.addr(),
        format!("harness.relay.tcp 9 {now}\n").as_bytes(),
    )
    .unwrap();
    let udp_line = format!("harness.relay.udp 4 {now}\n");
    send_udp(relay.addr(), &[udp_line.as_bytes()]).unwrap();
    let want = [
        format!("harness.relay.tcp 9 {now}"),
        format!("harness.relay.udp 4 {now}"),
    ];
    let lines = relay.wait_for_captured(WAIT, |l| want.iter().all(|w| l.contains(w)));
    for w in &want {
        assert!(lines.contains(w), "{w} not in {lines:?}\n{}", relay.log());
    }
    let tcp = carbon.wait_for_points("harness.relay.tcp", WAIT, |p| !p.is_empty());
    assert_eq!(tcp, vec![(now, 9.0)], "{}\n{}", carbon.log(), relay.log());
    let udp = carbon.wait_for_points("harness.relay.udp", WAIT, |p| !p.is_empty());
    assert_eq!(udp, vec![(now, 4.0)], "{}\n{}", carbon.log(), relay.log());
}

#[test]
fn dropping_the_receivers_stops_their_processes_and_removes_their_temp_dirs() {
    let Some(carbon) = start_carbon() else { return };
    if !carbon::require_carbon_relay() {
        return;
    }
    #[allow(clippy::unwrap_used, reason = "test")]
    let relay = CarbonRelay::start(carbon.line_addr()).unwrap();
    let procs = [
        (carbon.pid(), carbon.dir().to_owned()),
        (relay.pid(), relay.dir().to_owned()),
    ];
    let addrs = [carbon.line_addr(), carbon.pickle_addr(), relay.addr()];
    let started = Instant::now();
    drop(relay);
    drop(carbon);
    let took = started.elapsed();
    for (pid, dir) in &procs {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "process {pid} still exists"
        );
        assert!(!dir.exists(), "{} still exists", dir.display());
    }
    for addr in addrs {
        assert!(
            std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err(),
            "{addr} still accepts"
        );
    }
    assert!(took < Duration::from_secs(12), "stopping took {took:?}");
}

#[test]
fn the_whisper_path_of_a_tagged_name_uses_the_sha256_of_the_normalised_name() {
    // Values from receivers.md 5.3 and a run of carbon 1.1.7.
    assert_eq!(
        carbon::wsp_relative_path("readable.tagged;host=a.b;env=prod"),
        std::path::Path::new("_tagged/7a4/805/readable_DOT_tagged;env=prod;host=a_DOT_b.wsp")
    );
    assert_eq!(
        carbon::wsp_relative_path("x;b=2;a=1"),
        std::path::Path::new("_tagged/d1a/339/x;a=1;b=2.wsp")
    );
    assert_eq!(
        carbon::wsp_relative_path("a.b.c"),
        std::path::Path::new("a/b/c.wsp")
    );
}

#[test]
#[allow(clippy::unwrap_used, reason = "test")]
fn tags_are_normalised_in_carbons_order_of_the_tag_strings_not_of_the_keys() {
    // `;k2=b` sorts before `;k=a`: `2` comes before `=`.
    assert_eq!(carbon::normalise_series("m;k=a;k2=b"), "m;k2=b;k=a");
    assert_eq!(carbon::normalise_series("m;b=1;a=2;b=3"), "m;a=2;b=3");
    let Some(carbon) = start_carbon() else { return };
    let now = unix_now();
    send_tcp(
        carbon.line_addr(),
        format!("harness.order;k=a;k2=b 5 {now}\n").as_bytes(),
    )
    .unwrap();
    let points = carbon.wait_for_points("harness.order;k=a;k2=b", WAIT, |p| !p.is_empty());
    assert_eq!(points, vec![(now, 5.0)], "{}", carbon.log());
    assert_eq!(carbon.series(), vec!["harness.order;k2=b;k=a".to_owned()]);
}
