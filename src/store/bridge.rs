//! The bridges' forward queues (`bridge_queue`): one row per message bound upstream,
//! written in the group commit that acknowledges it locally, updated when a QoS 2 message
//! is sent or released, deleted once the upstream acknowledged it. Also the inbound QoS 2
//! ids delivered and not yet released (`bridge_qos2_in`).

use rusqlite::{params, Transaction};

use super::{Store, StoreError, StoredMessage};

/// A change to a forward queue, staged like every other [`super::Write`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BridgeWrite {
    /// A new message for bridge `bridge` at position `seq`; `msg.topic` is the upstream
    /// topic and `msg.qos` the QoS it is forwarded with.
    Put {
        bridge: String,
        seq: u64,
        msg: StoredMessage,
    },
    /// Row `seq` was sent with `packet_id` (state 1) or released (state 2).
    Sent {
        bridge: String,
        seq: u64,
        packet_id: u16,
        state: u8,
    },
    /// Row `seq` is acknowledged upstream, refused, expired or dropped.
    Delete { bridge: String, seq: u64 },
    /// An inbound QoS 2 id from the upstream was delivered locally (`held`), or released.
    Inbound {
        bridge: String,
        packet_id: u16,
        held: bool,
    },
}

/// One row read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardRow {
    pub seq: u64,
    pub msg: StoredMessage,
    /// Set once a QoS 2 row was sent: resend with this id.
    pub packet_id: Option<u16>,
    /// 0 waiting, 1 sent, 2 released.
    pub state: u8,
}

/// What a bridge's queue holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ForwardTotals {
    pub count: u64,
    /// Topic, payload and property bytes.
    pub bytes: u64,
    pub last_seq: Option<u64>,
}

pub(super) fn apply(tx: &Transaction<'_>, w: &BridgeWrite) -> Result<(), StoreError> {
    match w {
        BridgeWrite::Put { bridge, seq, msg } => {
            tx.prepare_cached(
                "INSERT INTO bridge_queue (bridge, seq, topic, payload, qos, retain, properties,
                     expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                bridge,
                seq,
                msg.topic,
                msg.payload,
                msg.qos,
                msg.retain,
                msg.properties,
                msg.expires_at
            ])?;
        }
        BridgeWrite::Sent {
            bridge,
            seq,
            packet_id,
            state,
        } => {
            tx.prepare_cached(
                "UPDATE bridge_queue SET packet_id = ?3, state = ?4 WHERE bridge = ?1 AND seq = ?2",
            )?
            .execute(params![bridge, seq, packet_id, state])?;
        }
        BridgeWrite::Delete { bridge, seq } => {
            tx.prepare_cached("DELETE FROM bridge_queue WHERE bridge = ?1 AND seq = ?2")?
                .execute(params![bridge, seq])?;
        }
        BridgeWrite::Inbound {
            bridge,
            packet_id,
            held: true,
        } => {
            tx.prepare_cached(
                "INSERT OR IGNORE INTO bridge_qos2_in (bridge, packet_id) VALUES (?1, ?2)",
            )?
            .execute(params![bridge, packet_id])?;
        }
        BridgeWrite::Inbound {
            bridge,
            packet_id,
            held: false,
        } => {
            tx.prepare_cached("DELETE FROM bridge_qos2_in WHERE bridge = ?1 AND packet_id = ?2")?
                .execute(params![bridge, packet_id])?;
        }
    }
    Ok(())
}

impl Store {
    /// How many messages bridge `bridge` has queued, their bytes and the last seq.
    pub fn forward_totals(&self, bridge: &str) -> Result<ForwardTotals, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT count(*),
                    coalesce(sum(length(CAST(topic AS BLOB)) + length(payload)
                                 + length(properties)), 0),
                    max(seq)
             FROM bridge_queue WHERE bridge = ?1",
        )?;
        let totals = stmt.query_row(params![bridge], |r| {
            Ok(ForwardTotals {
                count: r.get(0)?,
                bytes: r.get(1)?,
                last_seq: r.get(2)?,
            })
        })?;
        Ok(totals)
    }

    /// The inbound QoS 2 ids of bridge `bridge` delivered and not released yet.
    pub fn load_bridge_inbound(&self, bridge: &str) -> Result<Vec<u16>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT packet_id FROM bridge_qos2_in WHERE bridge = ?1 ORDER BY packet_id",
        )?;
        let ids = stmt
            .query_map(params![bridge], |r| r.get(0))?
            .collect::<Result<Vec<u16>, _>>()?;
        Ok(ids)
    }

    /// Up to `limit` rows of bridge `bridge` from `from_seq` on, in order.
    pub fn load_forward(
        &self,
        bridge: &str,
        from_seq: u64,
        limit: usize,
    ) -> Result<Vec<ForwardRow>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT seq, topic, payload, qos, retain, properties, expires_at, packet_id, state
             FROM bridge_queue WHERE bridge = ?1 AND seq >= ?2 ORDER BY seq LIMIT ?3",
        )?;
        let rows = stmt
            .query_map(params![bridge, from_seq, limit as i64], |r| {
                Ok(ForwardRow {
                    seq: r.get(0)?,
                    msg: StoredMessage {
                        topic: r.get(1)?,
                        payload: r.get(2)?,
                        qos: r.get(3)?,
                        retain: r.get(4)?,
                        properties: r.get(5)?,
                        expires_at: r.get(6)?,
                    },
                    packet_id: r.get(7)?,
                    state: r.get(8)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{SyncMode, Write};

    fn msg(topic: &str) -> StoredMessage {
        StoredMessage {
            topic: topic.into(),
            payload: b"hello".to_vec(),
            qos: 2,
            retain: false,
            properties: vec![],
            expires_at: None,
        }
    }

    fn put(bridge: &str, seq: u64, topic: &str) -> Write {
        Write::Bridge(BridgeWrite::Put {
            bridge: bridge.into(),
            seq,
            msg: msg(topic),
        })
    }

    #[test]
    fn rows_round_trip_per_bridge_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("db"), SyncMode::Normal).unwrap();
        for w in [
            put("a", 2, "t/2"),
            put("a", 1, "t/1"),
            put("b", 1, "other"),
            put("a", 3, "t/3"),
            Write::Bridge(BridgeWrite::Sent {
                bridge: "a".into(),
                seq: 1,
                packet_id: 7,
                state: 2,
            }),
            Write::Bridge(BridgeWrite::Delete {
                bridge: "a".into(),
                seq: 2,
            }),
        ] {
            store.stage(w);
        }
        store.commit().unwrap();
        assert_eq!(
            store.forward_totals("a").unwrap(),
            ForwardTotals {
                count: 2,
                bytes: 2 * (3 + 5),
                last_seq: Some(3)
            }
        );
        assert_eq!(
            store.forward_totals("none").unwrap(),
            ForwardTotals::default()
        );
        let rows = store.load_forward("a", 0, 10).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            (rows[0].seq, rows[0].packet_id, rows[0].state),
            (1, Some(7), 2)
        );
        assert_eq!(
            (rows[1].seq, rows[1].packet_id, rows[1].state),
            (3, None, 0)
        );
        assert_eq!(rows[1].msg, msg("t/3"));
        assert_eq!(store.load_forward("a", 2, 10).unwrap().len(), 1);
        assert_eq!(store.load_forward("a", 0, 1).unwrap().len(), 1);
    }

    #[test]
    fn inbound_ids_are_held_until_released() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("db"), SyncMode::Normal).unwrap();
        let inbound = |id, held| {
            Write::Bridge(BridgeWrite::Inbound {
                bridge: "a".into(),
                packet_id: id,
                held,
            })
        };
        for w in [
            inbound(9, true),
            inbound(9, true),
            inbound(3, true),
            inbound(9, false),
        ] {
            store.stage(w);
        }
        store.commit().unwrap();
        assert_eq!(store.load_bridge_inbound("a").unwrap(), vec![3]);
        assert!(store.load_bridge_inbound("b").unwrap().is_empty());
    }

    #[test]
    fn a_duplicate_seq_fails_the_commit() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("db"), SyncMode::Normal).unwrap();
        store.stage(put("a", 1, "x"));
        store.stage(put("a", 1, "y"));
        assert!(store.commit().is_err());
        assert_eq!(store.forward_totals("a").unwrap().count, 0);
    }
}
