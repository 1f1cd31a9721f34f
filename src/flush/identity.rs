//! [`Identities`]: which series share one wire identity, so their values are merged into one
//! line instead of going out as several lines that overwrite each other at the receiver.
//!
//! Two series share an identity when they render to the same name and tags (`x` and
//! `x{route=""}`, `y.a b` and `y.a_b`) and the receiver keeps them in one place: the encoder
//! says which kinds share a namespace there ([`Encoder::name_class`]). The first series
//! seen with an identity owns it; later ones of the same kind merge into it, and later ones
//! of another kind that the receiver would store in the same place *clash*: they are not sent
//! (their values are counted as dropped), since no merge of a counter with a gauge is right.
//!
//! The index keeps only a 64-bit hash per identity and the owner's position; a hit is
//! confirmed by comparing the owner's rendered bytes, so two different identities are never
//! merged. A true 64-bit hash collision between two different identities (a chance of about
//! n²/2⁶⁵ for n series, keyed randomly per process) leaves the second one unindexed: it is
//! sent on its own, as every series was before merging existed.

use std::collections::HashMap;
use std::collections::hash_map::{Entry, RandomState};
use std::hash::{BuildHasher, Hash, Hasher};

use crate::encode::{Encoder, Rendered, SeriesKind};

/// The first series seen with an identity: its kind and its position in that kind's list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Owner {
    pub(crate) kind: SeriesKind,
    /// 32 bits keep an index entry at 16 bytes; a list longer than that is never indexed
    /// past it (such a series is sent on its own).
    pub(crate) index: u32,
    /// The receiver's namespace of the identity ([`Encoder::name_class`]).
    pub(crate) class: u8,
}

impl Owner {
    /// The owner's position in its kind's list.
    pub(crate) fn at(self) -> usize {
        // Lossless: built from a `usize` (see `SeriesSet::place`).
        self.index as usize
    }
}

/// What a lookup found for a new series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Found {
    /// Nobody owns the identity yet.
    Free,
    /// A series of the same kind owns it: merge into it.
    Merge(Owner),
    /// A series of another kind owns it, stored in the same place by the receiver.
    Clash(Owner),
    /// Another identity has the same hash (see the module docs): send on its own, unindexed.
    Unindexed,
}

/// See the module docs. Owned by the flusher, like the series lists it indexes.
#[derive(Debug, Default)]
pub(crate) struct Identities {
    by_hash: HashMap<u64, Owner>,
    keys: RandomState,
}

impl Identities {
    /// The namespace class and the hash of the identity of a series of `kind` rendered as
    /// `r`.
    pub(crate) fn hash(&self, encoder: &Encoder, kind: SeriesKind, r: &Rendered) -> (u8, u64) {
        let class = encoder.name_class(kind, r.histogram);
        let mut h = self.keys.build_hasher();
        class.hash(&mut h);
        r.name().hash(&mut h);
        r.tail().hash(&mut h);
        (class, h.finish())
    }

    /// Looks up the identity of a series of `kind` rendered as `r` (of `class`, hashed as
    /// `hash`); `rendered` gives the rendered form of an owner.
    pub(crate) fn find<'a>(
        &self,
        (class, hash): (u8, u64),
        kind: SeriesKind,
        r: &Rendered,
        rendered: impl Fn(Owner) -> &'a Rendered,
    ) -> Found {
        let Some(&owner) = self.by_hash.get(&hash) else {
            return Found::Free;
        };
        let theirs = rendered(owner);
        if owner.class != class || theirs.name() != r.name() || theirs.tail() != r.tail() {
            Found::Unindexed
        } else if owner.kind == kind {
            Found::Merge(owner)
        } else {
            Found::Clash(owner)
        }
    }

    /// Records `owner` for the identity hashed as `hash`, unless one is recorded already.
    pub(crate) fn insert(&mut self, hash: u64, owner: Owner) {
        if let Entry::Vacant(slot) = self.by_hash.entry(hash) {
            slot.insert(owner);
        }
    }

    /// Forgets every identity (before re-indexing after series were removed).
    pub(crate) fn clear(&mut self) {
        self.by_hash.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(name: &str) -> Rendered {
        Rendered::of(name.as_bytes(), b"")
    }

    #[test]
    fn a_hash_hit_with_other_bytes_or_another_class_is_never_merged() {
        let mut ids = Identities::default();
        let owner = Owner {
            kind: SeriesKind::Counter,
            index: 0,
            class: 0,
        };
        ids.insert(7, owner);
        let theirs = rendered("a");
        let look =
            |class, kind, name: &str| ids.find((class, 7), kind, &rendered(name), |_| &theirs);
        assert_eq!(look(0, SeriesKind::Counter, "a"), Found::Merge(owner));
        assert_eq!(look(0, SeriesKind::Gauge, "a"), Found::Clash(owner));
        // The same 64-bit hash for other bytes, or for the same bytes in another class.
        assert_eq!(look(0, SeriesKind::Counter, "b"), Found::Unindexed);
        assert_eq!(look(1, SeriesKind::Counter, "a"), Found::Unindexed);
        assert_eq!(
            ids.find((0, 8), SeriesKind::Counter, &theirs, |_| &theirs),
            Found::Free
        );
        // The first owner of a hash keeps it.
        ids.insert(7, Owner { index: 5, ..owner });
        let again = ids.find((0, 7), SeriesKind::Counter, &theirs, |_| &theirs);
        assert_eq!(again, Found::Merge(owner));
    }
}
