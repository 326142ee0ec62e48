//! Session queues: message bodies stored once (`messages`) and the rows that
//! deliver them to each session (`session_queue`), the in-flight window
//! included. A body that no row references at the end of a commit is deleted
//! ([`delete_orphans`]); every write that may drop a reference notes the id.
//! Only the in-flight window is loaded at start; queued rows are read a page
//! at a time ([`Store::load_queue_page`]).

use std::collections::HashMap;

use rusqlite::{params, Connection, Transaction};

use super::{Store, StoreError, StoredMessage, StoredSession};

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
    /// Every message body, with its id; all are referenced by some queue row.
    #[cfg(test)]
    pub fn load_messages(&self) -> Result<Vec<(u64, StoredMessage)>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, topic, payload, qos, retain, properties, expires_at
             FROM messages ORDER BY id",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, StoredMessage::from_row(r, 1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The bodies of messages in flight (queue rows in state 1 or 2), with their ids:
    /// all the start-up load needs, however deep the queues on disk are.
    pub fn load_inflight_messages(&self) -> Result<Vec<(u64, StoredMessage)>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, topic, payload, qos, retain, properties, expires_at FROM messages
             WHERE id IN (SELECT message_id FROM session_queue WHERE state > 0) ORDER BY id",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, StoredMessage::from_row(r, 1)?)))?;
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
                message: StoredMessage::from_row(r, 3)?,
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
}

/// Fills in each session's in-flight window ([`StoredQueued`] rows in state 1
/// or 2) and the count, bytes and last seq of its queued rows; `index` finds
/// a session by client id.
pub(super) fn load_windows(
    conn: &Connection,
    index: &HashMap<String, usize>,
    sessions: &mut [StoredSession],
) -> Result<(), StoreError> {
    let mut stmt = conn.prepare_cached(
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

    let mut stmt = conn.prepare_cached(
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
    Ok(())
}

/// [`super::Write::MessagePut`]: stores body `id`, noted in `maybe_orphaned`
/// in case no row of the batch references it.
pub(super) fn put_message(
    tx: &Transaction<'_>,
    id: u64,
    msg: &StoredMessage,
    maybe_orphaned: &mut Vec<u64>,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO messages (id, topic, payload, qos, retain, properties, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (id) DO UPDATE SET topic = excluded.topic,
             payload = excluded.payload, qos = excluded.qos, retain = excluded.retain,
             properties = excluded.properties, expires_at = excluded.expires_at",
    )?
    .execute(params![
        id,
        msg.topic,
        msg.payload,
        msg.qos,
        msg.retain,
        msg.properties,
        msg.expires_at
    ])?;
    maybe_orphaned.push(id);
    Ok(())
}

/// [`super::Write::QueuePut`]: creates or updates row `seq` of `client_id`'s
/// queue. Fails with [`StoreError::QueueMessageChanged`] when the row exists
/// with another message.
pub(super) fn put(
    tx: &Transaction<'_>,
    client_id: &str,
    seq: u64,
    message_id: u64,
    qos: u8,
    packet_id: Option<u16>,
    state: u8,
) -> Result<(), StoreError> {
    // The WHERE makes a re-put with another message change no row.
    let changed = tx
        .prepare_cached(
            "INSERT INTO session_queue (client_id, seq, message_id, qos, packet_id, state)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (client_id, seq) DO UPDATE SET qos = excluded.qos,
                 packet_id = excluded.packet_id, state = excluded.state
             WHERE session_queue.message_id = excluded.message_id",
        )?
        .execute(params![client_id, seq, message_id, qos, packet_id, state])?;
    if changed == 0 {
        return Err(StoreError::QueueMessageChanged {
            client_id: client_id.to_owned(),
            seq,
        });
    }
    Ok(())
}

/// [`super::Write::QueueDelete`]: removes row `seq`, noting its body.
pub(super) fn delete(
    tx: &Transaction<'_>,
    client_id: &str,
    seq: u64,
    maybe_orphaned: &mut Vec<u64>,
) -> Result<(), StoreError> {
    let mut delete = tx.prepare_cached(
        "DELETE FROM session_queue WHERE client_id = ?1 AND seq = ?2 RETURNING message_id",
    )?;
    for id in delete.query_map(params![client_id, seq], |r| r.get::<_, u64>(0))? {
        maybe_orphaned.push(id?);
    }
    Ok(())
}

/// Notes the bodies `client_id`'s queue references, before a session delete
/// cascades to its rows.
pub(super) fn note_bodies_of(
    tx: &Transaction<'_>,
    client_id: &str,
    maybe_orphaned: &mut Vec<u64>,
) -> Result<(), StoreError> {
    let mut ids =
        tx.prepare_cached("SELECT DISTINCT message_id FROM session_queue WHERE client_id = ?1")?;
    for id in ids.query_map(params![client_id], |r| r.get::<_, u64>(0))? {
        maybe_orphaned.push(id?);
    }
    Ok(())
}

/// Deletes those of `ids` that no queue row references any more. Only ids
/// the batch touched are checked, never the whole table.
pub(super) fn delete_orphans(tx: &Transaction<'_>, ids: &mut Vec<u64>) -> Result<(), StoreError> {
    ids.sort_unstable();
    ids.dedup();
    let mut delete = tx.prepare_cached(
        "DELETE FROM messages WHERE id = ?1
         AND NOT EXISTS (SELECT 1 FROM session_queue WHERE message_id = ?1)",
    )?;
    for id in ids.iter() {
        delete.execute(params![id])?;
    }
    Ok(())
}

/// Deletes queued rows (state 0) whose message expired before `now`, then
/// the expired bodies no row references any more; rows in flight keep theirs.
/// Returns how many rows went.
pub(super) fn purge_expired(tx: &Transaction<'_>, now: i64) -> Result<usize, StoreError> {
    let rows = tx
        .prepare_cached(
            "DELETE FROM session_queue WHERE state = 0 AND message_id IN
             (SELECT id FROM messages WHERE expires_at < ?1)",
        )?
        .execute(params![now])?;
    let bodies = tx
        .prepare_cached(
            "DELETE FROM messages WHERE expires_at < ?1
         AND NOT EXISTS (SELECT 1 FROM session_queue WHERE message_id = messages.id)",
        )?
        .execute(params![now])?;
    Ok(rows + bodies)
}

#[cfg(test)]
mod tests {
    use crate::store::testing::{commit, message_ids, msg, queued, session, store};
    use crate::store::{StoreError, Write};

    #[test]
    fn a_queue_row_keeps_its_message() {
        let (_dir, mut store) = store();
        commit(
            &mut store,
            vec![
                session("c1"),
                Write::MessagePut {
                    id: 1,
                    msg: msg("m", None),
                },
                Write::MessagePut {
                    id: 2,
                    msg: msg("m", None),
                },
                queued("c1", 1, 1),
                queued("c1", 2, 2),
            ],
        )
        .unwrap();
        let err = commit(&mut store, vec![queued("c1", 1, 2)]).unwrap_err();
        assert!(matches!(
            err,
            StoreError::QueueMessageChanged { seq: 1, .. }
        ));
    }

    #[test]
    fn unreferenced_bodies_are_collected() {
        let (_dir, mut store) = store();
        commit(
            &mut store,
            vec![
                session("c1"),
                session("c2"),
                Write::MessagePut {
                    id: 1,
                    msg: msg("shared", None),
                },
                Write::MessagePut {
                    id: 2,
                    msg: msg("one", None),
                },
                Write::MessagePut {
                    id: 3,
                    msg: msg("never queued", None),
                },
                queued("c1", 1, 1),
                queued("c2", 1, 1),
                queued("c1", 2, 2),
            ],
        )
        .unwrap();
        assert_eq!(
            message_ids(&store),
            [1, 2],
            "a body no row references is not kept"
        );

        commit(
            &mut store,
            vec![Write::QueueDelete {
                client_id: "c1".into(),
                seq: 1,
            }],
        )
        .unwrap();
        assert_eq!(message_ids(&store), [1, 2], "still referenced by c2");

        commit(
            &mut store,
            vec![Write::QueueDelete {
                client_id: "c2".into(),
                seq: 1,
            }],
        )
        .unwrap();
        assert_eq!(message_ids(&store), [2]);

        commit(
            &mut store,
            vec![Write::SessionDelete {
                client_id: "c1".into(),
            }],
        )
        .unwrap();
        assert!(
            message_ids(&store).is_empty(),
            "a session delete frees its bodies"
        );
        assert_eq!(store.max_message_id().unwrap(), 0);
    }

    #[test]
    fn queue_pages_come_in_order_after_a_seq_and_skip_rows_in_flight() {
        let (_dir, mut store) = store();
        let mut writes = vec![session("c1"), session("c2")];
        for seq in 1..=10 {
            writes.push(Write::MessagePut {
                id: seq,
                msg: msg(&format!("m{seq}"), None),
            });
            writes.push(queued("c1", seq, seq));
        }
        writes.push(queued("c2", 1, 1));
        writes.push(Write::QueuePut {
            client_id: "c1".into(),
            seq: 2,
            message_id: 2,
            qos: 1,
            packet_id: Some(7),
            state: 1,
        });
        commit(&mut store, writes).unwrap();
        let seqs = |after, limit| -> Vec<u64> {
            store
                .load_queue_page("c1", after, limit)
                .unwrap()
                .iter()
                .map(|row| row.seq)
                .collect()
        };
        assert_eq!(seqs(0, 3), [1, 3, 4], "the row in flight is not queued");
        assert_eq!(seqs(4, 100), [5, 6, 7, 8, 9, 10]);
        assert!(seqs(10, 100).is_empty());
        let page = store.load_queue_page("c1", 4, 1).unwrap();
        assert_eq!((page[0].message_id, page[0].qos), (5, 1));
        assert_eq!(page[0].message, msg("m5", None));
        let sessions = store.load_sessions().unwrap();
        assert_eq!((sessions[0].queued, sessions[0].queue.len()), (9, 1));
        assert_eq!(sessions[0].queued_bytes, 9 * (2 + 4) + 1);
        assert_eq!(sessions[1].queued, 1);
        let in_flight: Vec<u64> = store
            .load_inflight_messages()
            .unwrap()
            .iter()
            .map(|(id, _)| *id)
            .collect();
        assert_eq!(in_flight, [2]);
    }
}
