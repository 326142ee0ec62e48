//! Typed slab keys, so a connection's key cannot be passed where a session's is meant:
//! [`ConnKey`] (a connection in `Broker::conns`), [`SessionKey`] (a session in
//! `Broker::sessions`, also a message's publisher for No Local) and [`BridgeKey`] (a
//! bridge). [`Slab`] is a slab indexed only by its own key type. The poll tokens the shell
//! registers sockets under are made from them in `broker/tokens.rs`.
//!
//! Keys are reused once their entry is removed; whatever must tell an old holder of a key
//! from a new one (timers, held publishers) pairs it with a serial or a generation.
//!
//! Keys hold a `u32`: they are bounded by the number of connections and sessions, far
//! below 2^32, and connections and sessions store each other's keys (idle ones should
//! stay small).

use std::fmt;
use std::marker::PhantomData;

/// A key of one slab: made only by that slab (or from a mio `Token`), read back as its index.
pub trait Key: Copy {
    fn from_index(index: usize) -> Self;
    fn index(self) -> usize;
}

macro_rules! key {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(u32);

        impl Key for $name {
            fn from_index(index: usize) -> Self {
                $name(u32::try_from(index).expect("fewer than 2^32 slab entries"))
            }

            fn index(self) -> usize {
                self.0 as usize
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }
    };
}

key!(
    /// A connection's slot in `Broker::conns`; its socket polls under the same number.
    ConnKey
);

key!(
    /// A session's slot in `Broker::sessions`.
    SessionKey
);

key!(
    /// A closed connection's socket lingering in `Broker::lingering` (see `linger.rs`).
    LingerKey
);

key!(
    /// A bridge's slot in `Bridges::list`, in config order; its socket polls under
    /// `BridgeKey::token` (`broker/tokens.rs`).
    BridgeKey
);

/// A slab whose entries are reached only by keys of type `K`.
pub struct Slab<K, T> {
    inner: slab::Slab<T>,
    key: PhantomData<K>,
}

impl<K, T> Default for Slab<K, T> {
    fn default() -> Self {
        Slab {
            inner: slab::Slab::new(),
            key: PhantomData,
        }
    }
}

impl<K: Key, T> Slab<K, T> {
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    /// The key the next `insert` will return.
    pub fn vacant_key(&self) -> K {
        K::from_index(self.inner.vacant_key())
    }

    pub fn insert(&mut self, value: T) -> K {
        K::from_index(self.inner.insert(value))
    }

    pub fn get(&self, key: K) -> Option<&T> {
        self.inner.get(key.index())
    }

    pub fn get_mut(&mut self, key: K) -> Option<&mut T> {
        self.inner.get_mut(key.index())
    }

    pub fn contains(&self, key: K) -> bool {
        self.inner.contains(key.index())
    }

    /// Removes the entry; panics if there is none, like indexing.
    pub fn remove(&mut self, key: K) -> T {
        self.inner.remove(key.index())
    }

    pub fn iter(&self) -> impl Iterator<Item = (K, &T)> {
        self.inner.iter().map(|(i, v)| (K::from_index(i), v))
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (K, &mut T)> {
        self.inner.iter_mut().map(|(i, v)| (K::from_index(i), v))
    }

    /// Every key, collected: for loops that change the slab's entries as they go.
    pub fn keys(&self) -> Vec<K> {
        self.iter().map(|(key, _)| key).collect()
    }
}

impl<K: Key, T> std::ops::Index<K> for Slab<K, T> {
    type Output = T;

    fn index(&self, key: K) -> &T {
        &self.inner[key.index()]
    }
}

impl<K: Key, T> std::ops::IndexMut<K> for Slab<K, T> {
    fn index_mut(&mut self, key: K) -> &mut T {
        &mut self.inner[key.index()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_come_from_their_slab_and_reach_only_it() {
        let mut conns: Slab<ConnKey, &str> = Slab::default();
        let next = conns.vacant_key();
        let a = conns.insert("a");
        assert_eq!(a, next);
        let b = conns.insert("b");
        assert_eq!((conns[a], conns[b], conns.len()), ("a", "b", 2));
        assert_eq!(conns.remove(a), "a");
        assert!(!conns.contains(a) && conns.get(a).is_none());
        assert_eq!(conns.keys(), [b]);
        // The freed slot is reused: holders of old keys need a serial to tell.
        assert_eq!(conns.insert("c"), a);
    }
}
