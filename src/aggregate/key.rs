//! The registry's key: a [`metrics::Key`] that compares by address before it compares text.
//!
//! Every `counter!("name", "label" => "value")` call with static parts passes the same
//! `static` key, and the registry stores a clone of it that borrows the same name and label
//! memory. Comparing the two by content (what `Key`'s own `eq` does: the name, then each
//! label's key and value) was more than half of a macro call's lookup. Two keys whose name is
//! the same bytes at the same address and whose labels are the same slice are equal whatever
//! their lifetime, so that case answers at once; any other pair falls back to `Key`'s own
//! comparison, so keys built at run time (owned names and labels) compare exactly as before.
//! The hash is `Key`'s own precomputed one.

use std::hash::{Hash, Hasher};

use metrics::Key;
use metrics_util::Hashable;
use ref_cast::RefCast;

/// A [`metrics::Key`] as the registry stores and looks it up (see the module docs).
#[derive(Debug, Clone, RefCast)]
#[repr(transparent)]
pub(crate) struct RegistryKey(Key);

impl RegistryKey {
    /// The caller's key, viewed as a registry key without a copy.
    pub(crate) fn of(key: &Key) -> &Self {
        Self::ref_cast(key)
    }

    /// The `metrics` key.
    pub(crate) fn key(&self) -> &Key {
        &self.0
    }
}

/// The same name and labels in the same memory: equal without reading them.
fn same_memory(a: &Key, b: &Key) -> bool {
    let (name_a, name_b) = (a.name(), b.name());
    let (labels_a, labels_b) = (a.labels().as_slice(), b.labels().as_slice());
    std::ptr::eq(name_a.as_ptr(), name_b.as_ptr())
        && name_a.len() == name_b.len()
        && std::ptr::eq(labels_a.as_ptr(), labels_b.as_ptr())
        && labels_a.len() == labels_b.len()
}

impl PartialEq for RegistryKey {
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (&self.0, &other.0);
        a.get_hash() == b.get_hash() && (same_memory(a, b) || a == b)
    }
}

impl Eq for RegistryKey {}

impl Hash for RegistryKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl Hashable for RegistryKey {
    type Hasher = <Key as Hashable>::Hasher;

    fn hashable(&self) -> u64 {
        self.0.get_hash()
    }
}

#[cfg(test)]
mod tests {
    use metrics::Label;

    use super::*;

    static LABELS: [Label; 2] = [
        Label::from_static_parts("a", "1"),
        Label::from_static_parts("b", "2"),
    ];

    fn eq(a: &Key, b: &Key) -> bool {
        RegistryKey::of(a) == RegistryKey::of(b)
    }

    #[test]
    fn a_static_key_equals_its_clone_and_an_owned_key_with_the_same_text() {
        let key = Key::from_static_parts("requests", &LABELS);
        assert!(same_memory(&key, &key.clone()));
        assert!(eq(&key, &key.clone()));
        let owned = Key::from_parts(
            String::from("requests"),
            vec![Label::new("a", String::from("1")), Label::new("b", "2")],
        );
        assert!(!same_memory(&key, &owned));
        assert!(eq(&key, &owned));
        assert!(eq(&owned, &owned.clone()));
    }

    #[test]
    fn keys_that_share_a_name_or_labels_in_memory_but_differ_elsewhere_are_not_equal() {
        let name: &'static str = "requests_total";
        // The same address, a shorter length: a different name.
        let short = Key::from_static_parts(&name[..8], &LABELS);
        let long = Key::from_static_parts(name, &LABELS);
        assert!(!same_memory(&short, &long) && !eq(&short, &long));
        // The same name memory, fewer labels from the same slice.
        let fewer = Key::from_static_parts(name, &LABELS[..1]);
        assert!(!same_memory(&long, &fewer) && !eq(&long, &fewer));
        // The same name memory, the labels from elsewhere.
        let moved = Key::from_static_parts(name, &LABELS[1..]);
        assert!(!same_memory(&fewer, &moved) && !eq(&fewer, &moved));
        // The same label memory, another name.
        let other = Key::from_static_parts("errors_total", &LABELS);
        assert!(!same_memory(&long, &other) && !eq(&long, &other));
        // The same label memory, a name of the same length elsewhere.
        let (one, two) = (
            Key::from_static_parts("requests_a", &LABELS),
            Key::from_static_parts("requests_b", &LABELS),
        );
        assert!(!same_memory(&one, &two) && !eq(&one, &two));
        let copied = Key::from_static_labels(String::from("requests_a"), &LABELS);
        assert!(!same_memory(&one, &copied) && eq(&one, &copied));
        // Owned keys with other values.
        let a = Key::from_parts(String::from("x"), vec![Label::new("a", String::from("1"))]);
        let b = Key::from_parts(String::from("x"), vec![Label::new("a", String::from("2"))]);
        assert!(!eq(&a, &b));
    }

    #[test]
    fn a_registry_key_hashes_exactly_as_the_metrics_key_it_wraps() {
        use std::hash::{BuildHasher, BuildHasherDefault};
        let hasher = BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default();
        for key in [
            Key::from_static_parts("x", &LABELS),
            Key::from_parts("x", vec![Label::new("b", "2")]),
            Key::from_name("y"),
        ] {
            let wrapped = RegistryKey::of(&key);
            assert_eq!(wrapped.hashable(), key.get_hash(), "{key:?}");
            assert_eq!(hasher.hash_one(wrapped), hasher.hash_one(&key), "{key:?}");
        }
    }

    #[test]
    fn label_order_does_not_matter_as_with_metrics_own_keys() {
        let ab = Key::from_static_parts("x", &LABELS);
        let ba = Key::from_parts("x", vec![Label::new("b", "2"), Label::new("a", "1")]);
        assert_eq!(ab == ba, eq(&ab, &ba));
        assert_eq!(
            ab.get_hash() == ba.get_hash(),
            RegistryKey::of(&ab).hashable() == RegistryKey::of(&ba).hashable()
        );
    }
}
