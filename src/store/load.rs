//! Reads: at start-up everything the broker keeps in memory while it runs
//! (sessions with their subscriptions and in-flight messages, retained
//! messages), and the purge of what expired while it was down; while it runs,
//! pages of a session's queue that live on disk only.

use std::collections::HashMap;

use rusqlite::{params, Row, TransactionBehavior};

use super::{Store, StoreError, StoredMessage};

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

/// One row of a [`StoredSession`]'s queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredQueued {
    /// Position in the queue; new rows continue after the largest.
    pub seq: u64,
    /// The QoS of this delivery.
    pub qos: u8,
    /// The packet id it was sent with, to resend with the same id.
    pub packet_id: Option<u16>,
    /// 0 queued, 1 sent awaiting PUBACK/PUBREC, 2 PUBREL sent awaiting PUBCOMP.
    pub state: u8,
    /// The body, among [`Store::load_inflight_messages`].
    pub message_id: u64,
}

/// One queued row of a page read with [`Store::load_queue_page`], with its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedPageRow {
    /// Position in the queue.
    pub seq: u64,
    /// The QoS of this delivery.
    pub qos: u8,
    /// The body's id, shared with other sessions' rows.
    pub message_id: u64,
    /// The body.
    pub message: StoredMessage,
}

impl Store {
    /// Every retained message, by topic.
    pub fn load_retained(&self) -> Result<Vec<StoredMessage>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT topic, payload, qos, properties, expires_at FROM retained ORDER BY topic",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(StoredMessage {
                topic: r.get(0)?,
                payload: r.get(1)?,
                qos: r.get(2)?,
                retain: true,
                properties: r.get(3)?,
                expires_at: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every message body, with its id; all are referenced by some queue row.
    #[cfg(test)]
    pub fn load_messages(&self) -> Result<Vec<(u64, StoredMessage)>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, topic, payload, qos, retain, properties, expires_at
             FROM messages ORDER BY id",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, message_from_row(r, 1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The bodies of messages in flight (queue rows in state 1 or 2), with their ids:
    /// all the start-up load needs, however deep the queues on disk are.
    pub fn load_inflight_messages(&self) -> Result<Vec<(u64, StoredMessage)>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, topic, payload, qos, retain, properties, expires_at FROM messages
             WHERE id IN (SELECT message_id FROM session_queue WHERE state > 0) ORDER BY id",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, message_from_row(r, 1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Up to `limit` queued rows (state 0) of `client_id` after `after_seq`, in
    /// order, with their bodies: the next page of a queue that lives on disk.
    pub fn load_queue_page(
        &self,
        client_id: &str,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<QueuedPageRow>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT q.seq, q.qos, q.message_id, m.topic, m.payload, m.qos, m.retain,
                    m.properties, m.expires_at
             FROM session_queue q JOIN messages m ON m.id = q.message_id
             WHERE q.client_id = ?1 AND q.state = 0 AND q.seq > ?2
             ORDER BY q.seq LIMIT ?3",
        )?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt.query_map(params![client_id, after_seq, limit], |r| {
            Ok(QueuedPageRow {
                seq: r.get(0)?,
                qos: r.get(1)?,
                message_id: r.get(2)?,
                message: message_from_row(r, 3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The largest message id stored (0 when none), so new ids continue after it.
    pub fn max_message_id(&self) -> Result<u64, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT coalesce(max(id), 0) FROM messages")?;
        Ok(stmt.query_row([], |r| r.get(0))?)
    }

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

        let mut stmt = self.conn.prepare_cached(
            "SELECT client_id, seq, qos, packet_id, state, message_id FROM session_queue
             WHERE state > 0 ORDER BY client_id, seq",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let queued = StoredQueued {
                seq: r.get(1)?,
                qos: r.get(2)?,
                packet_id: r.get(3)?,
                state: r.get(4)?,
                message_id: r.get(5)?,
            };
            if let Some(&i) = index.get(&r.get::<_, String>(0)?) {
                sessions[i].queue.push(queued);
            }
        }

        let mut stmt = self.conn.prepare_cached(
            "SELECT q.client_id, count(*),
                    sum(length(CAST(m.topic AS BLOB)) + length(m.payload)), max(q.seq)
             FROM session_queue q JOIN messages m ON m.id = q.message_id
             WHERE q.state = 0 GROUP BY q.client_id",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            if let Some(&i) = index.get(&r.get::<_, String>(0)?) {
                sessions[i].queued = r.get(1)?;
                sessions[i].queued_bytes = r.get(2)?;
                sessions[i].queued_last_seq = r.get(3)?;
            }
        }

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
                sessions[i].will = Some((message_from_row(r, 1)?, r.get(7)?));
            }
        }
        Ok(sessions)
    }

    /// Deletes what expired before `now` (unix seconds): retained messages,
    /// queue rows not yet sent (state 0) whose message expired, and expired
    /// bodies no row references any more. Messages already in flight are kept:
    /// their exchange must complete. Call once at start-up, before the loads.
    /// Returns how many rows were deleted.
    pub fn purge_expired(&mut self, now: i64) -> Result<usize, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut deleted = tx
            .prepare_cached("DELETE FROM retained WHERE expires_at < ?1")?
            .execute(params![now])?;
        deleted += tx
            .prepare_cached(
                "DELETE FROM session_queue WHERE state = 0 AND message_id IN
                     (SELECT id FROM messages WHERE expires_at < ?1)",
            )?
            .execute(params![now])?;
        deleted += tx
            .prepare_cached(
                "DELETE FROM messages WHERE expires_at < ?1
                 AND NOT EXISTS (SELECT 1 FROM session_queue WHERE message_id = messages.id)",
            )?
            .execute(params![now])?;
        tx.commit()?;
        Ok(deleted)
    }
}

/// Reads a message body from the columns topic, payload, qos, retain,
/// properties, expires_at starting at `first`.
fn message_from_row(r: &Row<'_>, first: usize) -> rusqlite::Result<StoredMessage> {
    Ok(StoredMessage {
        topic: r.get(first)?,
        payload: r.get(first + 1)?,
        qos: r.get(first + 2)?,
        retain: r.get(first + 3)?,
        properties: r.get(first + 4)?,
        expires_at: r.get(first + 5)?,
    })
}
