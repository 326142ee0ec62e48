//! Helpers for the store's unit tests: a store in a temporary directory and
//! the few writes most tests start from.

use super::{Store, StoreError, StoredMessage, SyncMode, Write};

/// A new store in a directory that lives as long as the returned guard.
pub fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("writes.db"), SyncMode::Normal).unwrap();
    (dir, store)
}

/// A small message on `topic`.
pub fn msg(topic: &str, expires_at: Option<i64>) -> StoredMessage {
    StoredMessage {
        topic: topic.into(),
        payload: vec![0, 1, 2, 255],
        qos: 1,
        retain: false,
        properties: vec![0x01, 0x01],
        expires_at,
    }
}

/// A persistent session of alice, connected.
pub fn session(client_id: &str) -> Write {
    Write::SessionPut {
        client_id: client_id.into(),
        expiry_interval: u32::MAX,
        username: Some("alice".into()),
        disconnected_at: None,
    }
}

/// Row `seq` of `client_id`'s queue, QoS 1, not yet sent.
pub fn queued(client_id: &str, seq: u64, message_id: u64) -> Write {
    Write::QueuePut {
        client_id: client_id.into(),
        seq,
        message_id,
        qos: 1,
        packet_id: None,
        state: 0,
    }
}

/// Stages `writes` and commits them as one batch.
pub fn commit(store: &mut Store, writes: Vec<Write>) -> Result<usize, StoreError> {
    for w in writes {
        store.stage(w);
    }
    store.commit()
}

/// The ids of the message bodies on disk.
pub fn message_ids(store: &Store) -> Vec<u64> {
    store
        .load_messages()
        .unwrap()
        .into_iter()
        .map(|(id, _)| id)
        .collect()
}
