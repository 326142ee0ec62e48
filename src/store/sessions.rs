//! Persistent sessions (`sessions`) and what belongs to each: its
//! subscriptions (`subscriptions`), the inbound QoS 2 ids not yet released
//! (`qos2_received`) and its will (`wills`). Deleting a session cascades to
//! all of them and to its queue (`store::queues`).

use std::collections::HashMap;

use rusqlite::{params, Transaction};

use super::{queues, Store, StoreError, StoredMessage, StoredQueued};

/// A persistent session as it was last committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSession {
    /// Whose session; the key a reconnect finds it by.
    pub client_id: String,
    /// Seconds the session outlives a disconnect.
    pub expiry_interval: u32,
    /// Who owns it, so a reconnect under another user can be refused.
    pub username: Option<String>,
    /// Unix seconds of the disconnect; `None` if the broker stopped while the
    /// client was connected (treat it as disconnected at start-up).
    pub disconnected_at: Option<i64>,
    /// Subscriptions to put back into the topic trie.
    pub subscriptions: Vec<StoredSubscription>,
    /// The in-flight window (rows in state 1 or 2), in `seq` order. Queued
    /// rows (state 0) stay on disk; see [`Store::load_queue_page`].
    pub queue: Vec<StoredQueued>,
    /// How many queued rows (state 0) the session has on disk.
    pub queued: usize,
    /// Their topic and payload bytes, against the queue limits.
    pub queued_bytes: usize,
    /// The largest seq among them (0 without any), so new rows continue after it.
    pub queued_last_seq: u64,
    /// Inbound QoS 2 packet ids received but not yet released.
    pub qos2_received: Vec<u16>,
    /// The will and its Will Delay Interval (seconds), if the session has one.
    pub will: Option<(StoredMessage, u32)>,
}

/// One subscription of a [`StoredSession`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSubscription {
    /// The full filter text, `$share/group/` prefix included.
    pub filter: String,
    /// The MQTT 5 subscription options byte.
    pub options: u8,
    /// The subscription identifier sent back with matching messages.
    pub identifier: Option<u32>,
}

impl Store {
    /// Every persistent session with its subscriptions, queue and inbound
    /// QoS 2 ids.
    pub fn load_sessions(&self) -> Result<Vec<StoredSession>, StoreError> {
        let mut sessions: Vec<StoredSession> = {
            let mut stmt = self.conn.prepare_cached(
                "SELECT client_id, expiry_interval, username, disconnected_at
                 FROM sessions ORDER BY client_id",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(StoredSession {
                    client_id: r.get(0)?,
                    expiry_interval: r.get(1)?,
                    username: r.get(2)?,
                    disconnected_at: r.get(3)?,
                    subscriptions: Vec::new(),
                    queue: Vec::new(),
                    queued: 0,
                    queued_bytes: 0,
                    queued_last_seq: 0,
                    qos2_received: Vec::new(),
                    will: None,
                })
            })?;
            rows.collect::<Result<_, _>>()?
        };
        let index: HashMap<String, usize> = sessions
            .iter()
            .enumerate()
            .map(|(i, s)| (s.client_id.clone(), i))
            .collect();

        let mut stmt = self.conn.prepare_cached(
            "SELECT client_id, filter, options, identifier FROM subscriptions
             ORDER BY client_id, filter",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let sub = StoredSubscription {
                filter: r.get(1)?,
                options: r.get(2)?,
                identifier: r.get(3)?,
            };
            if let Some(&i) = index.get(&r.get::<_, String>(0)?) {
                sessions[i].subscriptions.push(sub);
            }
        }

        queues::load_windows(&self.conn, &index, &mut sessions)?;

        let mut stmt = self.conn.prepare_cached(
            "SELECT client_id, packet_id FROM qos2_received ORDER BY client_id, packet_id",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            if let Some(&i) = index.get(&r.get::<_, String>(0)?) {
                sessions[i].qos2_received.push(r.get(1)?);
            }
        }

        let mut stmt = self.conn.prepare_cached(
            "SELECT client_id, topic, payload, qos, retain, properties, expires_at, delay
             FROM wills",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            if let Some(&i) = index.get(&r.get::<_, String>(0)?) {
                sessions[i].will = Some((StoredMessage::from_row(r, 1)?, r.get(7)?));
            }
        }
        Ok(sessions)
    }
}

/// [`super::Write::SessionPut`]: creates the session or updates its fields.
pub(super) fn put(
    tx: &Transaction<'_>,
    client_id: &str,
    expiry_interval: u32,
    username: Option<&str>,
    disconnected_at: Option<i64>,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO sessions (client_id, expiry_interval, username, disconnected_at)
         VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (client_id) DO UPDATE SET
             expiry_interval = excluded.expiry_interval,
             username = excluded.username, disconnected_at = excluded.disconnected_at",
    )?
    .execute(params![
        client_id,
        expiry_interval,
        username,
        disconnected_at
    ])?;
    Ok(())
}

/// [`super::Write::SessionDelete`]: the session row; the foreign keys delete
/// the rest.
pub(super) fn delete(tx: &Transaction<'_>, client_id: &str) -> Result<(), StoreError> {
    tx.prepare_cached("DELETE FROM sessions WHERE client_id = ?1")?
        .execute(params![client_id])?;
    Ok(())
}

/// [`super::Write::SubscriptionPut`]: creates or replaces one subscription.
pub(super) fn subscribe(
    tx: &Transaction<'_>,
    client_id: &str,
    filter: &str,
    options: u8,
    identifier: Option<u32>,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO subscriptions (client_id, filter, options, identifier)
         VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (client_id, filter) DO UPDATE SET
             options = excluded.options, identifier = excluded.identifier",
    )?
    .execute(params![client_id, filter, options, identifier])?;
    Ok(())
}

/// [`super::Write::SubscriptionDelete`].
pub(super) fn unsubscribe(
    tx: &Transaction<'_>,
    client_id: &str,
    filter: &str,
) -> Result<(), StoreError> {
    tx.prepare_cached("DELETE FROM subscriptions WHERE client_id = ?1 AND filter = ?2")?
        .execute(params![client_id, filter])?;
    Ok(())
}

/// [`super::Write::Qos2Received`]; receiving the same id again changes nothing.
pub(super) fn qos2_received(
    tx: &Transaction<'_>,
    client_id: &str,
    packet_id: u16,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO qos2_received (client_id, packet_id) VALUES (?1, ?2)
         ON CONFLICT DO NOTHING",
    )?
    .execute(params![client_id, packet_id])?;
    Ok(())
}

/// [`super::Write::Qos2Released`].
pub(super) fn qos2_released(
    tx: &Transaction<'_>,
    client_id: &str,
    packet_id: u16,
) -> Result<(), StoreError> {
    tx.prepare_cached("DELETE FROM qos2_received WHERE client_id = ?1 AND packet_id = ?2")?
        .execute(params![client_id, packet_id])?;
    Ok(())
}

/// [`super::Write::WillPut`]: sets or replaces the session's will.
pub(super) fn put_will(
    tx: &Transaction<'_>,
    client_id: &str,
    msg: &StoredMessage,
    delay: u32,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO wills (client_id, topic, payload, qos, retain, properties,
             expires_at, delay)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (client_id) DO UPDATE SET topic = excluded.topic,
             payload = excluded.payload, qos = excluded.qos, retain = excluded.retain,
             properties = excluded.properties, expires_at = excluded.expires_at,
             delay = excluded.delay",
    )?
    .execute(params![
        client_id,
        msg.topic,
        msg.payload,
        msg.qos,
        msg.retain,
        msg.properties,
        msg.expires_at,
        delay
    ])?;
    Ok(())
}

/// [`super::Write::WillDelete`].
pub(super) fn delete_will(tx: &Transaction<'_>, client_id: &str) -> Result<(), StoreError> {
    tx.prepare_cached("DELETE FROM wills WHERE client_id = ?1")?
        .execute(params![client_id])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::store::testing::{commit, msg, queued, session, store};
    use crate::store::Write;

    #[test]
    fn session_delete_cascades() {
        let (_dir, mut store) = store();
        commit(
            &mut store,
            vec![
                session("c1"),
                Write::SubscriptionPut {
                    client_id: "c1".into(),
                    filter: "#".into(),
                    options: 1,
                    identifier: None,
                },
                Write::Qos2Received {
                    client_id: "c1".into(),
                    packet_id: 1,
                },
                Write::MessagePut {
                    id: 1,
                    msg: msg("m", None),
                },
                queued("c1", 1, 1),
                Write::WillPut {
                    client_id: "c1".into(),
                    msg: msg("will", None),
                    delay: 5,
                },
            ],
        )
        .unwrap();
        commit(
            &mut store,
            vec![Write::SessionDelete {
                client_id: "c1".into(),
            }],
        )
        .unwrap();
        assert!(store.load_sessions().unwrap().is_empty());
        let rows: i64 = store
            .conn
            .query_row(
                "SELECT (SELECT count(*) FROM subscriptions) + (SELECT count(*) FROM session_queue)
                      + (SELECT count(*) FROM qos2_received) + (SELECT count(*) FROM messages)
                      + (SELECT count(*) FROM wills)",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(rows, 0);
    }
}
