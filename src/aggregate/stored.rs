//! [`StoredKey`]: a series' key as the registry keeps it, compact when the caller's key owns
//! its text.
//!
//! A `metrics::Key` built at run time (`counter!("requests", "route" => route)`) owns its
//! parts: cloning it, as a registry that stores `Key`s must, allocates the label list (48
//! bytes a label) and each owned string again. At 100k such series that was about half of
//! our memory per series. So a key with owned parts is kept *packed*: its hash, name and
//! labels in one allocation of their bytes and their lengths (see [`pack`]).
//!
//! A key whose clone shares the caller's memory (a `static` key from a macro with literal
//! labels, or parts in `Arc`s) costs nothing to clone, and is kept as that clone (one small
//! box). Every macro call with static parts passes the same `static` key, so the lookup
//! answers by comparing addresses: the same name bytes at the same address and the same
//! label slice are the same key whatever their lifetime, and the clone we keep holds that
//! memory alive, so an address can never be reused by another key. Any other pair is
//! compared by content.
//!
//! Equality is `metrics::Key`'s own in both forms: the same hash, the same name, and the
//! same labels whatever their order (two labels as a pair either way round, more sorted by
//! label name, as `Key::eq` does); a packed key compares its labels in their stored order
//! first, which answers at once when the caller lists them in the same order.

use metrics::Key;

/// See the module docs.
#[derive(Debug)]
pub(crate) enum StoredKey {
    /// A key whose clone shares the caller's memory.
    Shared(Box<SharedKey>),
    /// A key with owned parts: see [`pack`].
    Packed(Box<[u8]>),
}

/// Labels in another order are compared by sorting them on the stack, up to this many (as
/// `Key::eq` does below 8); more are sorted on the heap, an allocation per lookup of such a
/// key given in another order than it was registered in.
const STACK_LABELS: usize = 8;

impl StoredKey {
    /// The stored form of `key` (see the module docs).
    pub(crate) fn new(key: &Key) -> Self {
        let clone = key.clone();
        // A clone that shares the caller's memory: its parts need not be copied.
        let at = Address::of(&clone);
        if at == Address::of(key) {
            Self::Shared(Box::new(SharedKey { at, key: clone }))
        } else {
            Self::Packed(pack(key))
        }
    }

    /// `Key::get_hash` of the key.
    pub(crate) fn hash(&self) -> u64 {
        match self {
            Self::Shared(shared) => shared.key.get_hash(),
            Self::Packed(bytes) => Reader(bytes).hash(),
        }
    }

    /// Whether `key` is this key, as `Key::eq` would say (see the module docs).
    #[inline]
    pub(crate) fn matches(&self, key: &Key) -> bool {
        match self {
            Self::Shared(ours) => ours.key.get_hash() == key.get_hash() && ours.is(key),
            Self::Packed(bytes) => packed_matches(bytes, key),
        }
    }

    /// The metric name.
    pub(crate) fn name(&self) -> &str {
        match self {
            Self::Shared(shared) => shared.key.name(),
            // Packed from a `&str`, so always UTF-8.
            Self::Packed(bytes) => std::str::from_utf8(Reader(bytes).name()).unwrap_or_default(),
        }
    }

    /// The labels, in the order the key was first registered with: (name, value) bytes.
    pub(crate) fn labels(&self) -> Labels<'_> {
        match self {
            Self::Shared(shared) => Labels::Shared(shared.key.labels()),
            Self::Packed(bytes) => {
                let mut r = Reader(bytes);
                r.name();
                let n = r.len();
                Labels::Packed(r, n)
            }
        }
    }
}

/// The labels of a [`StoredKey`].
#[derive(Debug)]
pub(crate) enum Labels<'a> {
    Shared(std::slice::Iter<'a, metrics::Label>),
    Packed(Reader<'a>, usize),
}

impl<'a> Iterator for Labels<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Self::Shared(labels) => labels
                .next()
                .map(|l| (l.key().as_bytes(), l.value().as_bytes())),
            Self::Packed(r, left) => {
                *left = left.checked_sub(1)?;
                Some((r.bytes(), r.bytes()))
            }
        }
    }
}

/// A [`StoredKey::Shared`] key, with where its parts are, read once (the accessors are calls
/// into `metrics`).
#[derive(Debug)]
pub(crate) struct SharedKey {
    key: Key,
    at: Address,
}

impl SharedKey {
    /// Whether `key` has this key's name and labels: the same memory, or equal contents.
    /// (The hash is compared first, by [`StoredKey::matches`].)
    #[inline]
    fn is(&self, key: &Key) -> bool {
        self.at == Address::of(key) || self.key == *key
    }
}

/// Where a key's name and labels are: their addresses and lengths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Address {
    name: (usize, usize),
    labels: (usize, usize),
}

impl Address {
    #[inline]
    fn of(key: &Key) -> Self {
        let (name, labels) = (key.name(), key.labels().as_slice());
        Self {
            name: (name.as_ptr().addr(), name.len()),
            labels: (labels.as_ptr().addr(), labels.len()),
        }
    }
}

/// `key` packed: its hash (8 bytes, little-endian), then its name, its number of labels and
/// each label's name and value, every length as a LEB128 varint before its bytes.
pub(crate) fn pack(key: &Key) -> Box<[u8]> {
    let text: usize = key.name().len()
        + key
            .labels()
            .map(|l| l.key().len() + l.value().len())
            .sum::<usize>();
    let mut out = Vec::with_capacity(8 + text + 2 * key.labels().len() + 2);
    out.extend_from_slice(&key.get_hash().to_le_bytes());
    put_bytes(&mut out, key.name().as_bytes());
    put_len(&mut out, key.labels().len());
    for label in key.labels() {
        put_bytes(&mut out, label.key().as_bytes());
        put_bytes(&mut out, label.value().as_bytes());
    }
    out.into_boxed_slice()
}

fn put_len(out: &mut Vec<u8>, mut n: usize) {
    while n >= 0x80 {
        // The low seven bits, with the "more" bit: truncation is the point.
        #[allow(clippy::cast_possible_truncation, reason = "seven bits at a time")]
        out.push((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    #[allow(clippy::cast_possible_truncation, reason = "below 0x80 here")]
    out.push(n as u8);
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_len(out, bytes.len());
    out.extend_from_slice(bytes);
}

/// Reads a [`pack`]ed key front to back. Reads past the end give empty parts and zero
/// lengths (never a panic); nothing but [`pack`] writes what it reads.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    #[inline]
    fn hash(self) -> u64 {
        let mut hash = [0; 8];
        if let Some(bytes) = self.0.get(..8) {
            hash.copy_from_slice(bytes);
        }
        u64::from_le_bytes(hash)
    }

    /// Skips the hash and reads the name.
    #[inline]
    fn name(&mut self) -> &'a [u8] {
        self.0 = self.0.get(8..).unwrap_or_default();
        self.bytes()
    }

    /// A length: one byte below 128 (the usual case, read inline), else LEB128.
    #[inline]
    fn len(&mut self) -> usize {
        match self.0 {
            [byte, rest @ ..] if *byte < 0x80 => {
                self.0 = rest;
                usize::from(*byte)
            }
            _ => self.long_len(),
        }
    }

    #[inline(never)]
    fn long_len(&mut self) -> usize {
        let mut n = 0;
        let mut shift = 0;
        while let Some((&byte, rest)) = self.0.split_first() {
            self.0 = rest;
            if shift < usize::BITS {
                n |= usize::from(byte & 0x7f) << shift;
            }
            if byte & 0x80 == 0 {
                break;
            }
            shift += 7;
        }
        n
    }

    #[inline]
    fn bytes(&mut self) -> &'a [u8] {
        let n = self.len();
        let (bytes, rest) = self.0.split_at_checked(n).unwrap_or((self.0, &[]));
        self.0 = rest;
        bytes
    }
}

/// `Key::eq` between a packed key and `key` (see the module docs).
fn packed_matches(bytes: &[u8], key: &Key) -> bool {
    let mut r = Reader(bytes);
    if r.hash() != key.get_hash() || !same_bytes(r.name(), key.name().as_bytes()) {
        return false;
    }
    let labels = key.labels().as_slice();
    if r.len() != labels.len() {
        return false;
    }
    let stored = r;
    let in_order = labels.iter().all(|l| {
        same_bytes(r.bytes(), l.key().as_bytes()) && same_bytes(r.bytes(), l.value().as_bytes())
    });
    in_order || labels_match_unordered(stored, labels)
}

/// `a == b`, with parts of up to 16 bytes (most names, label names and values) compared
/// in two overlapping 8-byte words or two 4-byte ones, not through a `memcmp` call: a lookup
/// by a key built at run time compares three parts or more.
#[inline]
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    fn word<const N: usize>(bytes: &[u8], at: usize) -> [u8; N] {
        let mut out = [0; N];
        if let Some(part) = bytes.get(at..at + N) {
            out.copy_from_slice(part);
        }
        out
    }
    let n = a.len();
    if n != b.len() {
        return false;
    }
    match n {
        0 => true,
        1..4 => a[0] == b[0] && a[n / 2] == b[n / 2] && a[n - 1] == b[n - 1],
        4..8 => word::<4>(a, 0) == word::<4>(b, 0) && word::<4>(a, n - 4) == word::<4>(b, n - 4),
        8..=16 => word::<8>(a, 0) == word::<8>(b, 0) && word::<8>(a, n - 8) == word::<8>(b, n - 8),
        _ => a == b,
    }
}

/// The rest of `Key::eq` for labels not in the same order: two labels either way round;
/// more sorted (stably) by label name and compared pairwise.
#[cold]
#[inline(never)]
fn labels_match_unordered<'a>(mut stored: Reader<'a>, labels: &'a [metrics::Label]) -> bool {
    fn theirs(l: &metrics::Label) -> Pair<'_> {
        (l.key().as_bytes(), l.value().as_bytes())
    }
    match labels {
        [] | [_] => false,
        [a, b] => {
            let x = (stored.bytes(), stored.bytes());
            let y = (stored.bytes(), stored.bytes());
            (x, y) == (theirs(b), theirs(a))
        }
        _ if labels.len() <= STACK_LABELS => {
            let mut x = [(&[][..], &[][..]); STACK_LABELS];
            let mut y = x;
            for slot in x.iter_mut().take(labels.len()) {
                *slot = (stored.bytes(), stored.bytes());
            }
            for (slot, l) in y.iter_mut().zip(labels) {
                *slot = theirs(l);
            }
            sorted_eq(&mut x[..labels.len()], &mut y[..labels.len()])
        }
        _ => {
            let mut x: Vec<Pair<'a>> = labels
                .iter()
                .map(|_| (stored.bytes(), stored.bytes()))
                .collect();
            let mut y: Vec<Pair<'a>> = labels.iter().map(theirs).collect();
            sorted_eq(&mut x, &mut y)
        }
    }
}

/// A label as bytes: (name, value).
type Pair<'a> = (&'a [u8], &'a [u8]);

/// Whether `x` and `y`, each sorted stably by label name, are equal.
fn sorted_eq<'a>(x: &mut [Pair<'a>], y: &mut [Pair<'a>]) -> bool {
    x.sort_by_key(|p| p.0);
    y.sort_by_key(|p| p.0);
    x == y
}

#[cfg(test)]
#[path = "stored_tests.rs"]
mod tests;
