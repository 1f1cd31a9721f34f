#![allow(clippy::unwrap_used, reason = "a test")]

use metrics::{Key, Label};
use proptest::prelude::*;

use super::*;

static LABELS: [Label; 2] = [
    Label::from_static_parts("a", "1"),
    Label::from_static_parts("b", "2"),
];

fn owned(name: &str, labels: &[(&str, &str)]) -> Key {
    Key::from_parts(
        name.to_owned(),
        labels
            .iter()
            .map(|(k, v)| Label::new((*k).to_owned(), (*v).to_owned()))
            .collect::<Vec<_>>(),
    )
}

#[test]
fn a_static_key_is_kept_as_its_clone_and_an_owned_one_packed_in_one_allocation() {
    let key = Key::from_static_parts("requests", &LABELS);
    assert!(matches!(StoredKey::new(&key), StoredKey::Shared(_)));
    let dynamic = owned("requests", &[("route", "/api/12345"), ("status", "200")]);
    let StoredKey::Packed(bytes) = StoredKey::new(&dynamic) else {
        panic!("an owned key is packed");
    };
    // The hash, then each part's length (one byte each here) and bytes.
    let text = "requests".len() + "route/api/12345status200".len();
    assert_eq!(bytes.len(), 8 + text + 6);
    // A static name with owned labels (what `counter!("x", "k" => string)` builds) too.
    let mixed = Key::from_parts("requests", vec![Label::new("route", String::from("/a"))]);
    assert!(matches!(StoredKey::new(&mixed), StoredKey::Packed(_)));
}

#[test]
fn a_stored_key_matches_the_same_key_in_either_form_and_gives_back_its_parts() {
    let key = Key::from_static_parts("requests", &LABELS);
    let same_text = owned("requests", &[("a", "1"), ("b", "2")]);
    for stored in [StoredKey::new(&key), StoredKey::new(&same_text)] {
        assert!(stored.matches(&key) && stored.matches(&same_text));
        assert!(stored.matches(&key.clone()));
        assert_eq!(stored.hash(), key.get_hash());
        assert_eq!(stored.name(), "requests");
        let labels: Vec<_> = stored.labels().collect();
        assert_eq!(labels, [(&b"a"[..], &b"1"[..]), (&b"b"[..], &b"2"[..])]);
        for other in [
            owned("requests", &[("a", "1")]),
            owned("requests", &[("a", "1"), ("b", "3")]),
            owned("request", &[("a", "1"), ("b", "2")]),
            owned("requests", &[("a", "1"), ("b", "2"), ("c", "3")]),
            Key::from_static_parts("requests", &LABELS[..1]),
            Key::from_static_parts("requests", &LABELS[1..]),
            Key::from_static_parts(&"requests_total"[..8], &LABELS[..1]),
        ] {
            assert!(!stored.matches(&other), "{other:?}");
        }
    }
}

#[test]
fn keys_that_share_a_name_or_labels_in_memory_but_differ_elsewhere_do_not_match() {
    let name: &'static str = "requests_total";
    let short = Key::from_static_parts(&name[..8], &LABELS);
    let long = Key::from_static_parts(name, &LABELS);
    assert!(!StoredKey::new(&short).matches(&long));
    let fewer = Key::from_static_parts(name, &LABELS[..1]);
    assert!(!StoredKey::new(&long).matches(&fewer));
    let moved = Key::from_static_parts(name, &LABELS[1..]);
    assert!(!StoredKey::new(&fewer).matches(&moved));
    let (one, two) = (
        Key::from_static_parts("requests_a", &LABELS),
        Key::from_static_parts("requests_b", &LABELS),
    );
    assert!(!StoredKey::new(&one).matches(&two));
    let copied = Key::from_static_labels(String::from("requests_a"), &LABELS);
    assert!(StoredKey::new(&one).matches(&copied) && StoredKey::new(&copied).matches(&one));
}

#[test]
fn names_and_values_longer_than_one_length_byte_round_trip() {
    for len in [127, 128, 300, 16_383, 16_384, 70_000] {
        let long = "é".repeat(len / 2) + &"x".repeat(len % 2);
        let key = owned(&long, &[(&long, "v"), ("k", &long)]);
        let stored = StoredKey::new(&key);
        assert!(stored.matches(&key), "{len}");
        assert_eq!(stored.name(), long);
        assert_eq!(
            stored.labels().map(|(_, v)| v.len()).collect::<Vec<_>>(),
            [1, long.len()]
        );
        assert!(!stored.matches(&owned(&long, &[(&long, "v"), ("k", "x")])));
    }
}

/// Names and label parts from a small alphabet, so equal keys come up often: empty, ASCII,
/// a space, unicode.
fn part() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("a".to_owned()),
        Just("b".to_owned()),
        Just("a b".to_owned()),
        Just("é".to_owned()),
        Just("日本".to_owned()),
    ]
}

fn labels(max: usize) -> impl Strategy<Value = Vec<(String, String)>> {
    proptest::collection::vec((part(), part()), 0..=max)
}

fn key_of(name: &str, labels: &[(String, String)]) -> Key {
    Key::from_parts(
        name.to_owned(),
        labels
            .iter()
            .map(|(k, v)| Label::new(k.clone(), v.clone()))
            .collect::<Vec<_>>(),
    )
}

proptest! {
    /// Whatever the labels (none to more than the stack sort takes, duplicates, any order),
    /// a stored key matches exactly the keys `Key::eq` calls equal, and keeps the hash, name
    /// and labels it was made from.
    #[test]
    fn a_stored_key_matches_exactly_what_metrics_calls_the_same_key(
        (name, ours) in (part(), labels(10)),
        other_name in part(),
        theirs in labels(10),
        shuffled in labels(10).prop_flat_map(|l| Just(l).prop_shuffle()),
        reorder in any::<bool>(),
    ) {
        let key = key_of(&name, &ours);
        let stored = StoredKey::new(&key);
        prop_assert_eq!(stored.hash(), key.get_hash());
        prop_assert_eq!(stored.name(), key.name());
        let parts: Vec<(Vec<u8>, Vec<u8>)> =
            stored.labels().map(|(k, v)| (k.to_vec(), v.to_vec())).collect();
        let want: Vec<(Vec<u8>, Vec<u8>)> =
            ours.iter().map(|(k, v)| (k.clone().into_bytes(), v.clone().into_bytes())).collect();
        prop_assert_eq!(parts, want);
        let mut permuted = ours.clone();
        if reorder {
            permuted.reverse();
        } else {
            let by = usize::from(!permuted.is_empty());
            permuted.rotate_left(by);
        }
        for other in [
            key_of(&name, &permuted),
            key_of(&other_name, &ours),
            key_of(&name, &theirs),
            key_of(&name, &shuffled),
            key.clone(),
        ] {
            prop_assert_eq!(stored.matches(&other), key == other, "{:?} vs {:?}", key, other);
            // The other way round, as the registry never does but equality must allow.
            prop_assert_eq!(StoredKey::new(&other).matches(&key), key == other);
        }
    }
}

#[test]
fn byte_parts_are_equal_exactly_when_every_byte_is_whatever_their_length() {
    for n in 0..40_u8 {
        let a: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37)).collect();
        assert!(same_bytes(&a, &a.clone()), "{n}");
        for i in 0..usize::from(n) {
            let mut b = a.clone();
            b[i] ^= 0x80;
            assert!(!same_bytes(&a, &b) && !same_bytes(&b, &a), "{n} at {i}");
        }
        let mut longer = a.clone();
        longer.push(0);
        assert!(!same_bytes(&a, &longer) && !same_bytes(&longer, &a), "{n}");
    }
}

#[cfg(target_pointer_width = "64")]
#[test]
fn a_stored_key_is_two_words_so_a_registry_slot_is_three() {
    assert_eq!(size_of::<StoredKey>(), 16);
    assert_eq!(size_of::<(StoredKey, std::sync::Arc<u64>)>(), 24);
}

/// A name in static memory that is also the start of a longer one.
static LONGER: &str = "requestsx";

/// [`LABELS`] with another value.
static OTHER: [Label; 2] = [
    Label::from_static_parts("a", "1"),
    Label::from_static_parts("b", "3"),
];

#[test]
fn a_shared_key_is_a_key_in_other_memory_only_when_every_part_has_the_same_contents() {
    let name: &'static str = &LONGER[..8];
    let shared = |key: &Key| match StoredKey::new(key) {
        StoredKey::Shared(shared) => shared,
        StoredKey::Packed(_) => panic!("a static key is shared"),
    };
    let ours = shared(&Key::from_static_parts(name, &LABELS));
    // Equal contents elsewhere: the same key, by comparison.
    assert!(ours.is(&Key::from_static_parts("requests", &LABELS)));
    assert!(ours.is(&owned("requests", &[("a", "1"), ("b", "2")])));
    // A part at the same address with another length, or other contents: another key.
    assert!(
        !ours.is(&Key::from_static_parts(LONGER, &LABELS)),
        "a longer name"
    );
    assert!(
        !ours.is(&Key::from_static_parts(name, &LABELS[..1])),
        "fewer labels"
    );
    assert!(
        !ours.is(&Key::from_static_parts(name, &OTHER)),
        "other labels"
    );
}
