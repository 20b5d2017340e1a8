//! The dedupe index: which delivery each endpoint's dedupe key names, and when it was
//! received.
//!
//! It is held in memory by the writer and built at open from the rows (each row, and each
//! arrival, stores its endpoint and key), so that an arrival's commit writes no index page
//! of its own: on a disk whose flush costs by the places written, that was a tenth of the
//! queued bot's speed (BENCHMARKS.md, twelfth session). An entry is a 128-bit hash of the
//! endpoint and the key (two SipHash-1-3 with keys drawn at each open) and the delivery it
//! names: about 50 bytes per delivery kept (done deliveries are kept for the dedupe window).

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};

/// An endpoint's dedupe key, hashed.
pub(super) type Digest = u128;

/// The delivery a key names, and when it was received (ms since the epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Named {
    pub(super) id: u64,
    pub(super) received: u64,
}

/// Every stored delivery's key, by digest.
#[derive(Debug)]
pub(super) struct KeyIndex {
    hashers: [RandomState; 2],
    named: HashMap<Digest, Named>,
}

impl KeyIndex {
    pub(super) fn new() -> Self {
        KeyIndex {
            hashers: [RandomState::new(), RandomState::new()],
            named: HashMap::new(),
        }
    }

    /// The digest of `key` at `endpoint`.
    pub(super) fn digest(&self, endpoint: &str, key: &str) -> Digest {
        let [high, low] = &self.hashers;
        // A `str` hashes with a terminator: ("ab", "c") and ("a", "bc") differ.
        (u128::from(high.hash_one((endpoint, key))) << 64)
            | u128::from(low.hash_one((endpoint, key)))
    }

    /// The key now names `named` (a later delivery replaces an earlier one).
    pub(super) fn name(&mut self, digest: Digest, named: Named) {
        self.named.insert(digest, named);
    }

    fn get(&self, digest: Digest) -> Option<Named> {
        self.named.get(&digest).copied()
    }

    /// Applies a committed transaction's changes.
    pub(super) fn apply(&mut self, changes: KeyChanges) {
        for (digest, change) in changes.0 {
            match change {
                Some(named) => self.named.insert(digest, named),
                None => self.named.remove(&digest),
            };
        }
    }

    /// How many keys it holds.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.named.len()
    }
}

/// One transaction's changes to the index (`None`: removed), applied once it is
/// committed: a transaction that fails leaves the index as the file is.
#[derive(Debug, Default)]
pub(super) struct KeyChanges(HashMap<Digest, Option<Named>>);

impl KeyChanges {
    /// What the key names, this transaction's changes included.
    pub(super) fn get(&self, index: &KeyIndex, digest: Digest) -> Option<Named> {
        match self.0.get(&digest) {
            Some(change) => *change,
            None => index.get(digest),
        }
    }

    pub(super) fn name(&mut self, digest: Digest, named: Named) {
        self.0.insert(digest, Some(named));
    }

    /// Removes the key when it still names `id` (a later delivery with the same key keeps it).
    pub(super) fn forget(&mut self, index: &KeyIndex, digest: Digest, id: u64) {
        if self.get(index, digest).is_some_and(|named| named.id == id) {
            self.0.insert(digest, None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_digest_tells_endpoints_and_keys_apart() {
        let index = KeyIndex::new();
        let digest = index.digest("/webhooks/a", "id:1");
        assert_eq!(digest, index.digest("/webhooks/a", "id:1"));
        assert_ne!(digest, index.digest("/webhooks/b", "id:1"));
        assert_ne!(digest, index.digest("/webhooks/a", "id:2"));
        // The split between endpoint and key counts.
        assert_ne!(
            index.digest("/webhooks/ab", "c"),
            index.digest("/webhooks/a", "bc")
        );
    }

    #[test]
    fn changes_count_only_once_applied_and_forget_spares_a_later_delivery() {
        let mut index = KeyIndex::new();
        let key = index.digest("/webhooks/a", "id:1");
        let first = Named {
            id: 1,
            received: 10,
        };
        let mut changes = KeyChanges::default();
        changes.name(key, first);
        assert_eq!(changes.get(&index, key), Some(first));
        assert_eq!(KeyChanges::default().get(&index, key), None);
        index.apply(changes);
        assert_eq!(KeyChanges::default().get(&index, key), Some(first));

        // A later delivery took the key: forgetting the first leaves it.
        let later = Named {
            id: 2,
            received: 20,
        };
        let mut changes = KeyChanges::default();
        changes.name(key, later);
        changes.forget(&index, key, 1);
        assert_eq!(changes.get(&index, key), Some(later));
        changes.forget(&index, key, 2);
        assert_eq!(changes.get(&index, key), None);
        // Not applied (its transaction failed): the index is unchanged.
        drop(changes);
        assert_eq!(index.len(), 1);
        let mut changes = KeyChanges::default();
        changes.forget(&index, key, 1);
        index.apply(changes);
        assert_eq!(index.len(), 0);
    }
}
