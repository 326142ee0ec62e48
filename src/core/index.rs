//! Sessions by client id. The table holds only session keys (4 bytes a slot) and hashes
//! and compares through the session each key points to, so the client id is stored once,
//! in the session: an index entry per idle client costs a fraction of a `HashMap` entry.

use std::hash::BuildHasher;

use hashbrown::HashTable;

use super::keys::{SessionKey, Slab};
use super::session::Session;

type Sessions = Slab<SessionKey, Session>;

#[derive(Default)]
pub struct SessionIndex {
    table: HashTable<SessionKey>,
    hasher: std::collections::hash_map::RandomState,
}

impl SessionIndex {
    pub fn find(&self, client_id: &str, sessions: &Sessions) -> Option<SessionKey> {
        let hash = self.hasher.hash_one(client_id);
        self.table
            .find(hash, |&key| is(sessions, key, client_id))
            .copied()
    }

    /// Adds `key`, whose session must already be in `sessions` and not yet indexed.
    pub fn insert(&mut self, key: SessionKey, sessions: &Sessions) {
        let hash = self.hasher.hash_one(&*sessions[key].client_id);
        let hasher = &self.hasher;
        self.table.insert_unique(hash, key, |&k| {
            hasher.hash_one(sessions.get(k).map_or("", |s| &*s.client_id))
        });
    }

    /// Removes `key`, found by its client id (call before the session leaves the slab).
    pub fn remove(&mut self, client_id: &str, key: SessionKey) {
        let hash = self.hasher.hash_one(client_id);
        if let Ok(entry) = self.table.find_entry(hash, |&k| k == key) {
            entry.remove();
        }
    }
}

fn is(sessions: &Sessions, key: SessionKey, client_id: &str) -> bool {
    sessions
        .get(key)
        .is_some_and(|s| &*s.client_id == client_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_inserts_and_removes_by_client_id() {
        let mut sessions = Slab::default();
        let mut index = SessionIndex::default();
        let a = sessions.insert(Session::new("alpha".into(), 0));
        let b = sessions.insert(Session::new("beta".into(), 0));
        index.insert(a, &sessions);
        index.insert(b, &sessions);
        for i in 0..200 {
            let k = sessions.insert(Session::new(format!("c{i}").into(), 0));
            index.insert(k, &sessions);
        }
        assert_eq!(index.find("alpha", &sessions), Some(a));
        assert_eq!(index.find("beta", &sessions), Some(b));
        assert_eq!(index.find("gamma", &sessions), None);
        index.remove("alpha", a);
        sessions.remove(a);
        assert_eq!(index.find("alpha", &sessions), None);
        assert_eq!(
            index
                .find("c199", &sessions)
                .map(|k| &*sessions[k].client_id),
            Some("c199")
        );
    }
}
