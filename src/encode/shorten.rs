//! Deterministic shortening of names carbon could not store.
//!
//! The rules (component limit, whole-name bound, readable tagged file names, the
//! `<cut>-<16 hex>` form and its FNV-1a hash) are stated once, for users, in the crate docs'
//! "Long names" section; this module implements them. Everything here runs when a series is
//! rendered, never on a warm flush, and only allocates when something is too long.

/// Bytes of one path component carbon can store: a file name has at most 255 bytes, less
/// `.wsp` for the leaf. Used for every component, so a component shortens the same way
/// whether it ends up a directory or the leaf (a histogram summary adds a leaf after it).
pub(crate) const COMPONENT_LIMIT: usize = 251;

/// Bytes a whole name may have, tags included and before a histogram summary's suffix: well
/// under Linux's 4096-byte path limit, with room for carbon's storage directory and for the
/// prefixes and suffixes Etsy statsd's Graphite backend adds (`stats.timers.`, `.upper_90`).
pub(crate) const NAME_LIMIT: usize = 2048;

/// Bytes of the file name carbon makes from a tagged name when `TAG_HASH_FILENAMES` is off:
/// 255 less `.wsp`.
pub(crate) const TAGGED_FILE_LIMIT: usize = 251;

/// Hexadecimal digits of the hash suffix: the full 64 bits of FNV-1a.
const HASH_DIGITS: usize = 16;

/// Bytes the suffix adds: `-` and the digits.
const SUFFIX_LEN: usize = 1 + HASH_DIGITS;

/// The shortest a shortened element gets: one byte of text and the suffix.
const MIN_SHORTENED: usize = 1 + SUFFIX_LEN;

/// FNV-1a, 64 bits: simple, stable across versions and platforms, and ours.
pub(crate) fn fnv1a64(bytes: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes
        .iter()
        .fold(OFFSET, |hash, &b| (hash ^ u64::from(b)).wrapping_mul(PRIME))
}

/// The largest index at most `at` that starts a UTF-8 character of `text` (or its end).
fn char_boundary(text: &[u8], mut at: usize) -> usize {
    if at >= text.len() {
        return text.len();
    }
    while at > 0 && text[at] & 0xC0 == 0x80 {
        at -= 1;
    }
    at
}

/// Appends `text[..keep]` (`keep` moved down to a character boundary) and the suffix `-`
/// plus the 16 lowercase hex digits of the FNV-1a hash of the whole of `text`.
fn push_cut(out: &mut Vec<u8>, text: &[u8], keep: usize) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let keep = char_boundary(text, keep);
    out.extend_from_slice(&text[..keep]);
    out.push(b'-');
    let hash = fnv1a64(text);
    for i in (0..HASH_DIGITS).rev() {
        // Four bits at a time, most significant first.
        #[allow(clippy::cast_possible_truncation, reason = "masked to four bits")]
        let digit = ((hash >> (i * 4)) & 0xF) as usize;
        out.push(HEX[digit]);
    }
}

/// `text` shortened to at most `limit` bytes (`limit` at least [`MIN_SHORTENED`]), or
/// unchanged when it fits.
#[cfg(test)]
pub(crate) fn shorten_text(text: &[u8], limit: usize) -> Vec<u8> {
    if text.len() <= limit {
        return text.to_vec();
    }
    let mut out = Vec::with_capacity(limit);
    push_cut(&mut out, text, limit - SUFFIX_LEN);
    out
}

/// Shortens a dot-separated path in place: each component over [`COMPONENT_LIMIT`] bytes,
/// then the whole path to `total` bytes (at least a few hundred). Returns whether it changed.
pub(crate) fn shorten_path(path: &mut Vec<u8>, total: usize) -> bool {
    let long_component = path
        .split(|&b| b == b'.')
        .any(|c| c.len() > COMPONENT_LIMIT);
    if !long_component && path.len() <= total {
        return false;
    }
    if long_component {
        let mut out = Vec::with_capacity(path.len().min(total + SUFFIX_LEN));
        for (i, component) in path.split(|&b| b == b'.').enumerate() {
            if i > 0 {
                out.push(b'.');
            }
            if component.len() > COMPONENT_LIMIT {
                push_cut(&mut out, component, COMPONENT_LIMIT - SUFFIX_LEN);
            } else {
                out.extend_from_slice(component);
            }
        }
        *path = out;
    }
    if path.len() > total {
        // Cut the whole path, keeping the component the suffix joins within the limit.
        let mut keep = char_boundary(path, total - SUFFIX_LEN);
        let start = path[..keep]
            .iter()
            .rposition(|&b| b == b'.')
            .map_or(0, |dot| dot + 1);
        keep = keep.min(start + COMPONENT_LIMIT - SUFFIX_LEN);
        let mut out = Vec::with_capacity(total);
        push_cut(&mut out, path, keep);
        *path = out;
    }
    true
}

/// How a tagged name's length is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TaggedBound {
    /// Carbon names the file after a hash: only the whole name is bounded, in bytes.
    Hashed,
    /// Carbon names the file after the name: every `.` is written `_DOT_` (5 bytes).
    Readable,
}

impl TaggedBound {
    /// The stored length of `text`.
    fn cost(self, text: &[u8]) -> usize {
        match self {
            Self::Hashed => text.len(),
            Self::Readable => {
                #[allow(
                    clippy::naive_bytecount,
                    reason = "names are short; no dependency for it"
                )]
                let dots = text.iter().filter(|&&b| b == b'.').count();
                text.len() + 4 * dots
            }
        }
    }

    /// The most bytes of `text` whose stored length is at most `budget`.
    fn keep_within(self, text: &[u8], budget: usize) -> usize {
        let mut used = 0;
        for (i, &b) in text.iter().enumerate() {
            used += if self == Self::Readable && b == b'.' {
                5
            } else {
                1
            };
            if used > budget {
                return i;
            }
        }
        text.len()
    }

    /// The bound on a tagged name's stored length, `reserve` bytes (stored) kept for a
    /// histogram summary's suffix.
    pub(crate) fn limit(self, reserve: usize) -> usize {
        match self {
            Self::Hashed => NAME_LIMIT - reserve,
            Self::Readable => TAGGED_FILE_LIMIT - reserve,
        }
    }
}

/// One tag: key and value.
type Tag = (Vec<u8>, Vec<u8>);

/// Which element of a tagged name to shorten next: tag values first, then keys, then the
/// name; within each, the longest (the first in key order on a tie).
fn next_to_shorten(bound: TaggedBound, name: &[u8], tags: &[Tag]) -> Option<(usize, usize)> {
    let longest = |pick: fn(&Tag) -> &[u8]| {
        tags.iter()
            .enumerate()
            .map(|(i, t)| (i, bound.cost(pick(t))))
            .filter(|&(_, cost)| cost > MIN_SHORTENED)
            .fold(None, |best: Option<(usize, usize)>, (i, cost)| match best {
                Some((_, c)) if c >= cost => best,
                _ => Some((i, cost)),
            })
    };
    if let Some((i, cost)) = longest(|t| &t.1) {
        return Some((2 * i + 1, cost));
    }
    if let Some((i, cost)) = longest(|t| &t.0) {
        return Some((2 * i, cost));
    }
    let cost = bound.cost(name);
    (cost > MIN_SHORTENED).then_some((usize::MAX, cost))
}

/// Shortens a tagged name (`name;k=v;...`, tags sorted by key as carbon sorts them) until
/// its stored length is at most `limit` (see [`TaggedBound::limit`]): the longest tag value
/// first, cut just enough (but to no less than one byte and the suffix), then the next, then
/// the keys the same way, then the name. Each element is shortened at most once, so its
/// suffix always hashes its original text. `reserve` stored bytes are kept free (see
/// [`TaggedBound::limit`]); the tags are sorted again when a key changed (a shortened key may
/// sort differently). Returns whether anything changed, or `None` when even everything
/// shortened does not fit (too many tags).
pub(crate) fn fit_tagged(
    bound: TaggedBound,
    reserve: usize,
    name: &mut Vec<u8>,
    tags: &mut [Tag],
) -> Option<bool> {
    let limit = bound.limit(reserve);
    let stored = |name: &[u8], tags: &[Tag]| {
        bound.cost(name)
            + tags
                .iter()
                .map(|(k, v)| 2 + bound.cost(k) + bound.cost(v))
                .sum::<usize>()
    };
    let mut total = stored(name, tags);
    let mut changed = false;
    while total > limit {
        let (which, cost) = next_to_shorten(bound, name, tags)?;
        let target = cost.saturating_sub(total - limit).max(MIN_SHORTENED);
        let element = match which {
            usize::MAX => &mut *name,
            i if i % 2 == 1 => &mut tags[i / 2].1,
            i => &mut tags[i / 2].0,
        };
        let keep = bound.keep_within(element, target - SUFFIX_LEN);
        let mut out = Vec::with_capacity(target);
        push_cut(&mut out, element, keep);
        *element = out;
        changed = true;
        total = stored(name, tags);
    }
    if changed {
        tags.sort();
    }
    Some(changed)
}

#[cfg(test)]
#[path = "shorten_tests.rs"]
mod tests;
