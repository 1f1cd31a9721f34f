use super::*;
use crate::encode::Encoder;

fn never(_: &[u8], _: &[u8]) -> bool {
    false
}

pub(crate) fn statsd_pairs(prev: &[u8], line: &[u8]) -> bool {
    let e = crate::encode::StatsdEncoder::new(
        None,
        crate::LabelHandling::Drop,
        vec![],
        crate::encode::HistogramRules::default(),
    );
    Encoder::Statsd(e).chunk_rule()(prev, line)
}

fn lines(b: &[u8]) -> Lines<'_> {
    Lines::new(b).unwrap()
}

#[test]
fn only_empty_or_newline_terminated_bytes_are_lines() {
    assert!(Lines::new(b"").is_some());
    assert!(Lines::new(b"a:1|c\n").is_some());
    assert!(Lines::new(b"a:1|c").is_none(), "an unterminated line");
    assert!(
        Lines::new(b"a:1|c\nb:2|c").is_none(),
        "an unterminated last line"
    );
    assert_eq!(lines(b"a\nb\n").count(), 2);
    assert_eq!(lines(b"a\nb\n").body(), b"a\nb");
}

#[test]
fn a_partially_written_line_is_resent_from_its_start() {
    let p = lines(b"aaa\nbbb\nccc\n");
    let at = |n| {
        let (done, rest) = p.split_at_chunk(n, never);
        (done.bytes(), rest.bytes())
    };
    assert_eq!(at(0), (&b""[..], &b"aaa\nbbb\nccc\n"[..]));
    assert_eq!(at(4), (&b"aaa\n"[..], &b"bbb\nccc\n"[..]));
    assert_eq!(at(6), (&b"aaa\n"[..], &b"bbb\nccc\n"[..]));
    assert_eq!(at(12), (&b"aaa\nbbb\nccc\n"[..], &b""[..]));
    assert_eq!(at(99), (&b"aaa\nbbb\nccc\n"[..], &b""[..]));
}

#[test]
fn a_write_that_stops_inside_a_pair_resends_the_whole_pair() {
    let p = lines(b"c:1|c\ng:0|g\ng:-5|g\n");
    // Stopped inside "g:-5|g": resume at "g:0|g" (re-sending 0 first is harmless).
    assert_eq!(p.split_at_chunk(14, statsd_pairs).0.len(), 6);
    assert_eq!(p.split_at_chunk(8, statsd_pairs).0.len(), 6);
    assert_eq!(p.split_at_chunk(3, statsd_pairs).0.len(), 0);
}

#[test]
fn the_front_is_cut_at_a_chunk_boundary_within_the_limit() {
    let p = lines(b"aaa\nbbb\nccc\n");
    assert_eq!(p.front(9, never).bytes(), b"aaa\nbbb\n");
    assert_eq!(p.front(8, never).bytes(), b"aaa\nbbb\n");
    assert_eq!(p.front(7, never).bytes(), b"aaa\n");
    assert_eq!(p.front(100, never).bytes(), p.bytes());
    // A line longer than the limit still goes out, whole.
    assert_eq!(p.front(2, never).bytes(), b"aaa\n");
}

#[test]
fn the_front_never_separates_a_negative_gauge_pair() {
    let p = lines(b"c:1|c\ng:0|g\ng:-5|g\nd:1|c\n");
    // 12 bytes would end after "g:0|g": the pair stays together in the next piece.
    assert_eq!(p.front(12, statsd_pairs).bytes(), b"c:1|c\n");
    assert_eq!(p.front(19, statsd_pairs).bytes(), b"c:1|c\ng:0|g\ng:-5|g\n");
    // A pair first and too long for the limit goes out whole.
    let q = lines(b"g:0|g\ng:-5|g\nd:1|c\n");
    assert_eq!(q.front(8, statsd_pairs).bytes(), b"g:0|g\ng:-5|g\n");
}
