//! Where each shared-subscription group stands in its round robin. Looked up by group
//! name and filter as borrowed strings, so routing a message to a group allocates nothing.

use std::hash::{BuildHasher, RandomState};

use hashbrown::hash_table::{Entry, HashTable};

/// Round-robin positions of shared groups, by (group, filter).
#[derive(Default)]
pub struct SharedCursors {
    table: HashTable<(Box<str>, Box<str>, usize)>,
    hasher: RandomState,
}

impl SharedCursors {
    /// The position of the group on `filter`, starting at 0 the first time it is asked.
    pub fn get_mut(&mut self, group: &str, filter: &str) -> &mut usize {
        let hasher = &self.hasher;
        let hash = hasher.hash_one((group, filter));
        let entry = self.table.entry(
            hash,
            |(g, f, _)| **g == *group && **f == *filter,
            |(g, f, _)| hasher.hash_one((&**g, &**f)),
        );
        let entry = match entry {
            Entry::Occupied(entry) => entry,
            Entry::Vacant(entry) => entry.insert((group.into(), filter.into(), 0)),
        };
        &mut entry.into_mut().2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_group_and_filter_has_its_own_position() {
        let mut cursors = SharedCursors::default();
        *cursors.get_mut("g", "a/#") = 3;
        *cursors.get_mut("g", "b/#") = 5;
        *cursors.get_mut("h", "a/#") = 7;
        assert_eq!(*cursors.get_mut("g", "a/#"), 3);
        assert_eq!(*cursors.get_mut("g", "b/#"), 5);
        assert_eq!(*cursors.get_mut("h", "a/#"), 7);
        // "g\0a" + "b" must not collide with "g" + "a\0b" the way a joined key could.
        assert_eq!(*cursors.get_mut("g\0a", "b"), 0);
        assert_eq!(*cursors.get_mut("g", "a\0b"), 0);
    }
}
